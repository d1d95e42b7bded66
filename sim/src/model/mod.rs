//! The model simulator: the engine's pure decisions (row events to a batch's net effect, what exact mode checks and
//! what each mode writes, when catch-up becomes exact, which tables' changes cascade and which commute) driven with
//! the applier's rules against in-memory tables under seeded schedules, checking that the destination only ever shows
//! states that are prefixes of whole source transactions, and equals the source at the end.
//!
//! One schedule: a source (`source`) of a key/value table whose rows commute and, when drawn, a parent / child /
//! grandchild family and a self-referencing tree under ON DELETE CASCADE / SET NULL and ON UPDATE CASCADE rules
//! (`db`); a binlog of transactions (inserts, updates, key changes, key swaps, deletes, savepoints and rollbacks to
//! them) that carries no cascaded row, and a DDL whose value depends on its session's time zone and timestamp; P0
//! taken before the copy; chunks (of the key space, and one per family table) copied in a seeded order at seeded
//! moments while the source keeps writing, each atomic with its done mark; P1 after the last chunk; then sync from
//! the checkpoint (P0 first): the reader (`stream`) groups events into Begin .. items .. Commit, the applier
//! (`applier`) commits whole source transactions with their checkpoint, and before any item an idle tick, a pause
//! (which waits for the source transaction's end), a stop (which rolls back what is not whole) or a kill (which
//! loses everything uncommitted) may come, as may a crash at a commit or between a DDL and its checkpoint; a run
//! resumes from the durable state only. After every commit and at every stop and kill the invariant (`oracle`) is
//! checked on what a reader of the destination sees.

mod applier;
mod db;
mod oracle;
mod source;
mod stream;

use applier::{Dest, RecopyStep, Session, Step};
use db::{CHILD, GRANDCHILD, KV, NODE, PARENT};
use oracle::Oracle;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use source::{Ev, Source, Workload};
use stream::Reader;

/// A way the applier went wrong, put in on purpose (negative controls): with it the checks must fail. All but
/// `DdlUnderApplierContext` are defects the applier had (`FollowOneLevel` as the re-copy round would carry it:
/// a cascade's reach taken one level down); `DdlUnderApplierContext` is what the engine's applier still does (its
/// DDL session runs in UTC on its own clock, and the stream items carry no time zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// The reader takes a query inside a transaction (SAVEPOINT) for a statement of its own, so the applier ends
    /// the transaction there with its GTID.
    QueryEndsTransaction,
    /// An idle tick, a pause or a stop commits while a source transaction is partly applied.
    CommitMidTransaction,
    /// A key change is applied as DELETE + INSERT, running the children's ON DELETE rules.
    KeyChangeAsDeleteInsert,
    /// Catch-up takes a cascade's reach one level down: it follows, records for the re-copy and re-copies the
    /// direct children only.
    FollowOneLevel,
    /// The DDL runs under the applier's own session context (UTC, its clock) instead of the event's.
    DdlUnderApplierContext,
    /// Catch-up follows cascades every level down through the destination's rows and re-copies nothing at P1 (the
    /// applier before the re-copy round): rows copied after a cascade hide what it reached.
    NoRecopy,
}

impl Defect {
    pub const ALL: [Defect; 6] = [
        Defect::QueryEndsTransaction,
        Defect::CommitMidTransaction,
        Defect::KeyChangeAsDeleteInsert,
        Defect::FollowOneLevel,
        Defect::DdlUnderApplierContext,
        Defect::NoRecopy,
    ];
}

/// Knobs of one schedule, all drawn from its seed.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    pub keys: u64,
    pub initial_rows: u64,
    pub chunks: u64,
    pub transactions: usize,
    /// A crash during the copy (before a chunk), at a destination commit, or between a DDL and its checkpoint.
    pub crash_per_mille: u32,
    /// The parent / child / grandchild tables and the tree, under their foreign keys.
    pub fk: bool,
    /// Before each statement of a transaction: a SAVEPOINT, ROLLBACK TO SAVEPOINT or RELEASE SAVEPOINT.
    pub savepoint_per_mille: u32,
    /// One DDL with session context among the transactions after P1.
    pub ddl: bool,
    /// Before each item of the stream: an idle tick, a pause, a stop or a kill (evenly).
    pub fault_per_mille: u32,
    /// Statements the family's foreign keys cascade are written while the family's tables are being copied, and a
    /// restarted reader may re-deliver them: catch-up then follows cascades through rows copied after them, and
    /// only the re-copy round at P1 makes the tables they reach right. Off, they come after the family's copy only
    /// (still before P1), and a re-delivery starts after the last of them.
    pub cascades_during_copy: bool,
    pub defect: Option<Defect>,
}

/// What a schedule did (for the report and for a failure's message).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    pub transactions: usize,
    pub crashes: u32,
    /// Destination commits.
    pub batches: u32,
    pub redelivered: u64,
    pub ticks: u32,
    pub pauses: u32,
    pub stops: u32,
    pub kills: u32,
    pub savepoints: u64,
    pub rollbacks_to_savepoint: u64,
    pub cascaded_rows: u64,
    pub key_changes_under_fk: u64,
    pub ddl: u64,
    /// Faults (tick, pause, stop, kill) that came while a source transaction was partly applied.
    pub faults_mid_transaction: u32,
    /// Child rows catch-up changed following a cascade, and rows the destination's own FK rules changed in exact
    /// mode.
    pub followed_in_catch_up: u64,
    pub cascaded_in_exact: u64,
    /// Re-copy rounds started, cut short by a crash (between chunks or before P1 moved), chunks committed, and row
    /// events left alone after a round because its snapshot held them.
    pub recopy_rounds: u32,
    pub recopy_rounds_cut: u32,
    pub recopy_chunks: u64,
    pub in_snapshot_rows: u64,
    /// Invariant checks made.
    pub checks: u64,
}

impl Trace {
    fn add(&mut self, t: &Trace) {
        self.transactions += t.transactions;
        self.crashes += t.crashes;
        self.batches += t.batches;
        self.redelivered += t.redelivered;
        self.ticks += t.ticks;
        self.pauses += t.pauses;
        self.stops += t.stops;
        self.kills += t.kills;
        self.savepoints += t.savepoints;
        self.rollbacks_to_savepoint += t.rollbacks_to_savepoint;
        self.cascaded_rows += t.cascaded_rows;
        self.key_changes_under_fk += t.key_changes_under_fk;
        self.ddl += t.ddl;
        self.faults_mid_transaction += t.faults_mid_transaction;
        self.followed_in_catch_up += t.followed_in_catch_up;
        self.cascaded_in_exact += t.cascaded_in_exact;
        self.recopy_rounds += t.recopy_rounds;
        self.recopy_rounds_cut += t.recopy_rounds_cut;
        self.recopy_chunks += t.recopy_chunks;
        self.in_snapshot_rows += t.in_snapshot_rows;
        self.checks += t.checks;
    }
}

/// Runs (copy or sync) restarted after crashes, stops and kills, at most: a schedule that needs more is reported.
const RESTARTS_MAX: u32 = 10_000;

/// The shape `seed` draws.
pub fn shape_of(seed: u64) -> Shape {
    let mut rng = SmallRng::seed_from_u64(seed);
    let keys = rng.random_range(4..64);
    Shape {
        keys,
        initial_rows: rng.random_range(0..keys),
        chunks: rng.random_range(1..6),
        transactions: rng.random_range(0..40),
        crash_per_mille: rng.random_range(0..300),
        fk: rng.random_bool(0.7),
        savepoint_per_mille: if rng.random_bool(0.5) {
            rng.random_range(0..400)
        } else {
            0
        },
        ddl: rng.random_bool(0.4),
        fault_per_mille: rng.random_range(0..100),
        cascades_during_copy: rng.random_bool(0.5),
        defect: None,
    }
}

/// Runs one seeded schedule; Err names what broke.
pub fn schedule(seed: u64) -> Result<Trace, String> {
    schedule_with(&shape_of(seed), seed)
}

/// Runs a schedule of a given shape (what proptest shrinks) with the rest drawn from `seed`.
pub fn schedule_with(shape: &Shape, seed: u64) -> Result<Trace, String> {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_f0e5);
    let shape = Shape {
        keys: shape.keys.max(1),
        initial_rows: shape.initial_rows.min(shape.keys.max(1)),
        chunks: shape.chunks.max(1),
        ..shape.clone()
    };
    run(&shape, &mut rng)
}

fn run(shape: &Shape, rng: &mut SmallRng) -> Result<Trace, String> {
    let mut trace = Trace::default();
    let w = Workload {
        keys: shape.keys,
        fk: shape.fk,
        savepoint_per_mille: shape.savepoint_per_mille,
        cascades: true,
    };
    let mut src = Source::new();
    src.seed_rows(rng, &w, shape.initial_rows);
    let base = src.db.clone();
    let kv_chunks = shape.chunks as usize;
    let family: &[usize] = if shape.fk {
        &[PARENT, CHILD, GRANDCHILD, NODE]
    } else {
        &[]
    };
    // Chunks 0..kv_chunks cut the key/value table's key space; then one per family table.
    let mut order: Vec<usize> = (0..kv_chunks + family.len()).collect();
    order.shuffle(rng);
    let mut d = Dest {
        chunks_done: vec![false; order.len()],
        reach_one_level: shape.defect == Some(Defect::FollowOneLevel),
        ..Default::default()
    };
    let chunk_of = |k: u64| -> usize {
        // Keys above the initial space (swap temporaries, moved keys) fall into the last chunk, open-ended as the
        // engine's last range is.
        ((k * shape.chunks) / shape.keys).min(shape.chunks - 1) as usize
    };
    let crash = |rng: &mut SmallRng| rng.random_range(0..1000) < shape.crash_per_mille;
    let mut written = 0;
    let mut write_some = |src: &mut Source, rng: &mut SmallRng, n: usize, cascades: bool| {
        let w = Workload { cascades, ..w };
        for _ in 0..n {
            if written < shape.transactions {
                src.write(rng, &w);
                written += 1;
            }
        }
    };
    // The copy, restarted after each crash; the durable destination state is all it resumes from.
    let mut restarts = 0;
    loop {
        restarts += 1;
        if restarts > RESTARTS_MAX {
            return Err(format!("the copy made no progress in {RESTARTS_MAX} runs"));
        }
        // P0 before any row is copied.
        if d.p0.is_none() {
            let n = rng.random_range(0..3);
            write_some(&mut src, rng, n, shape.cascades_during_copy);
            d.p0 = Some(src.groups.len());
        }
        let mut crashed = false;
        for &c in &order {
            if d.chunks_done[c] {
                continue;
            }
            let n = rng.random_range(0..4);
            let family_copied = (kv_chunks..order.len()).all(|c| d.chunks_done[c]);
            write_some(
                &mut src,
                rng,
                n,
                shape.cascades_during_copy || family_copied,
            );
            if crash(rng) {
                crashed = true;
                break;
            }
            // One transaction: the chunk's rows and its done mark.
            let (t, rows): (usize, Vec<_>) = match family.get(c.wrapping_sub(kv_chunks)) {
                Some(&t) if c >= kv_chunks => (t, src.db.rows[t].values().copied().collect()),
                _ => (
                    KV,
                    src.db.rows[KV]
                        .values()
                        .filter(|r| chunk_of(r[0]) == c)
                        .copied()
                        .collect(),
                ),
            };
            for r in rows {
                if d.db.rows[t].insert(r[0], r).is_some() {
                    return Err(format!(
                        "chunk {c} copied {} key {} onto an existing row",
                        db::DEFS[t].name,
                        r[0]
                    ));
                }
            }
            d.chunks_done[c] = true;
        }
        if crashed {
            trace.crashes += 1;
            continue;
        }
        break;
    }
    d.p1 = Some(src.groups.len());
    // The rest of the writes; the DDL among them (after the copy: ferry does not handle DDL on a table being copied).
    let remaining = shape.transactions.saturating_sub(written);
    let ddl_at = rng.random_range(0..=remaining);
    for i in 0..=remaining {
        if shape.ddl && i == ddl_at {
            src.write_ddl(rng);
        }
        if i < remaining {
            src.write(rng, &w);
        }
    }
    trace.transactions = src.groups.len();
    let s = &src.stats;
    trace.savepoints = s.savepoints;
    trace.rollbacks_to_savepoint = s.rollbacks_to_savepoint;
    trace.cascaded_rows = s.cascaded_rows;
    trace.key_changes_under_fk = s.key_changes_under_fk;
    trace.ddl = s.ddl;
    let (p0, p1) = (d.p0.unwrap_or(0), d.p1.unwrap_or(0));
    let groups = &src.groups;
    let mut oracle = Oracle::new(&base, groups, p0, p1);
    if *oracle.state(groups.len()) != src.db {
        return Err("model: the binlog does not replay to the source".into());
    }
    oracle.check(&d, "after the copy")?;
    let lag_s = rng.random_range(1..600);
    // The newest snapshot a re-copy round took (the source only moves forward).
    let mut last_snapshot = 0;
    // Sync from the checkpoint (P0 first), restarted after each stop, kill or crash.
    let mut restarts = 0;
    loop {
        restarts += 1;
        if restarts > RESTARTS_MAX {
            return Err(format!("sync made no progress in {RESTARTS_MAX} runs"));
        }
        // Before reading, what the durable re-copy state asks (the engine's `recopy::step`): a round when catch-up
        // reached P1 after following cascades, or only P1's move when a round was whole before a crash.
        match d.recopy_step()? {
            RecopyStep::Nothing => {}
            RecopyStep::Finish(s) => {
                d.finish_round(s);
                oracle.check(&d, "after P1 moved to a re-copy's snapshot")?;
            }
            RecopyStep::Run => {
                trace.recopy_rounds += 1;
                let c = d.checkpoint.unwrap_or(p0);
                let s = rng.random_range(c.max(last_snapshot)..=groups.len());
                last_snapshot = s;
                let snapshot = oracle.state(s).clone();
                let chunk_rows = rng.random_range(1..=4);
                let mut cut = false;
                'round: for t in d.start_round(s) {
                    let mut lo = None;
                    loop {
                        if crash(rng) {
                            cut = true;
                            break 'round;
                        }
                        let hi = d.recopy_chunk(t, &snapshot, lo, chunk_rows);
                        trace.recopy_chunks += 1;
                        oracle.check(&d, "after a re-copy chunk")?;
                        match hi {
                            Some(h) => lo = Some(h),
                            None => break,
                        }
                    }
                }
                // A crash between chunks, or after the last one before P1 moved.
                if cut || crash(rng) {
                    trace.crashes += 1;
                    trace.recopy_rounds_cut += 1;
                    oracle.check(&d, "at a crash in a re-copy")?;
                    continue;
                }
                d.finish_round(s);
                oracle.check(&d, "after a re-copy")?;
            }
        }
        let mut from = d.checkpoint.unwrap_or(p0);
        // Duplicated delivery: while still before the copy's P1 (catch-up over copies), a restarted reader may start
        // anywhere between P0 and the checkpoint and deliver transactions that were applied already, cascades among
        // them (followed through later rows, like those written during the copy: the round re-copies what they
        // reach). From P1 on the engine resumes from the checkpoint only.
        if from < p1 && from > p0 && rng.random_bool(0.3) {
            from = rng.random_range(p0..from);
            trace.redelivered += 1;
        }
        let mut s = Session::new(&d, from, shape.defect, lag_s)?;
        let mut reader = Reader::new(shape.defect == Some(Defect::QueryEndsTransaction));
        let batch_txns = rng.random_range(1..=5);
        let mut pause_pending = false;
        let mut ended = false;
        'stream: for (g, group) in groups.iter().enumerate().skip(from) {
            for ev in &group.events {
                if rng.random_range(0..1000) < shape.fault_per_mille {
                    if s.mid_transaction() {
                        trace.faults_mid_transaction += 1;
                    }
                    match rng.random_range(0..4) {
                        0 => {
                            trace.ticks += 1;
                            if s.commit(&mut d)? {
                                trace.batches += 1;
                                oracle.check(&d, "after an idle tick's commit")?;
                            }
                        }
                        1 => {
                            trace.pauses += 1;
                            if s.mid_transaction() {
                                pause_pending = true;
                            } else if s.commit(&mut d)? {
                                trace.batches += 1;
                                oracle.check(&d, "after a pause's commit")?;
                            }
                        }
                        2 => {
                            // Stop: commit what is whole, the server rolls back the rest with the session.
                            trace.stops += 1;
                            if s.commit(&mut d)? {
                                trace.batches += 1;
                                oracle.check(&d, "after a stop's commit")?;
                            }
                            oracle.check(&d, "at a stop")?;
                            ended = true;
                            break 'stream;
                        }
                        _ => {
                            trace.kills += 1;
                            oracle.check(&d, "at a kill")?;
                            ended = true;
                            break 'stream;
                        }
                    }
                }
                let item = reader.read(ev);
                let commit_item = matches!(ev, Ev::Xid);
                let idle = commit_item && rng.random_range(0..8) == 0;
                if commit_item && s.commit_due(g, idle, batch_txns)? && crash(rng) {
                    // The batch rolls back with its checkpoint.
                    trace.crashes += 1;
                    oracle.check(&d, "at a crash before a commit")?;
                    ended = true;
                    break 'stream;
                }
                match s.apply(&mut d, item, g, idle, batch_txns)? {
                    Step::Done { committed } => {
                        if committed {
                            trace.batches += 1;
                            oracle.check(&d, "after a commit")?;
                        }
                        if s.recopy_due() {
                            // The next run re-copies before it reads on.
                            ended = true;
                            break 'stream;
                        }
                    }
                    Step::Statement { committed } => {
                        if committed {
                            trace.batches += 1;
                            oracle.check(&d, "after the commit before a statement")?;
                        }
                        if crash(rng) {
                            trace.crashes += 1;
                            oracle
                                .check(&d, "at a crash between a statement and its checkpoint")?;
                            ended = true;
                            break 'stream;
                        }
                        if s.end_statement(&mut d, g)? {
                            trace.batches += 1;
                            oracle.check(&d, "after a statement's checkpoint")?;
                        }
                    }
                }
                if pause_pending && !s.mid_transaction() {
                    pause_pending = false;
                    if s.commit(&mut d)? {
                        trace.batches += 1;
                        oracle.check(&d, "after a pause's commit at a transaction's end")?;
                    }
                }
            }
        }
        trace.followed_in_catch_up += s.followed_rows;
        trace.cascaded_in_exact += s.cascaded_rows;
        trace.in_snapshot_rows += s.in_snapshot_rows;
        if ended {
            continue;
        }
        // Caught up: the last batch commits.
        if s.commit(&mut d)? {
            trace.batches += 1;
            oracle.check(&d, "after the last commit")?;
        }
        break;
    }
    trace.checks = oracle.checks;
    if d.db != src.db {
        return Err(format!(
            "destination differs from source: {}",
            oracle::diff(&d.db, &src.db)
        ));
    }
    Ok(trace)
}

/// Runs `n` schedules from `first_seed`; the first failure (the lowest failing seed) with its seed. Schedules are
/// independent, so contiguous blocks of seeds run on the machine's cores; the answer does not depend on how many.
pub fn run_many(first_seed: u64, n: u64) -> Result<Trace, (u64, String)> {
    let end = first_seed.saturating_add(n);
    let threads = std::thread::available_parallelism()
        .map(|t| t.get() as u64)
        .unwrap_or(1)
        .clamp(1, n.max(1));
    let block = n.div_ceil(threads);
    let run_block = |from: u64| -> Result<Trace, (u64, String)> {
        let mut total = Trace::default();
        for s in from..from.saturating_add(block).min(end) {
            total.add(&schedule(s).map_err(|e| (s, e))?);
        }
        Ok(total)
    };
    let results: Vec<Result<Trace, (u64, String)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let from = first_seed.saturating_add(i * block);
                scope.spawn(move || run_block(from))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err((first_seed, "a schedule panicked".into())))
            })
            .collect()
    });
    let mut total = Trace::default();
    for r in results {
        // Blocks in seed order: the first error is the lowest failing seed.
        total.add(&r?);
    }
    Ok(total)
}

/// Runs `n` schedules from `first_seed` with `defect` put in: how many failed, and the first failure's message.
pub fn failures_with(defect: Defect, first_seed: u64, n: u64) -> (u64, Option<String>) {
    let mut failed = 0;
    let mut first = None;
    for s in first_seed..first_seed.saturating_add(n) {
        let mut shape = Shape {
            defect: Some(defect),
            ..shape_of(s)
        };
        if defect == Defect::NoRecopy {
            // It can only show where the family's cascades come during its copy.
            shape.fk = true;
            shape.cascades_during_copy = true;
        }
        if let Err(e) = schedule_with(&shape, s) {
            failed += 1;
            first.get_or_insert(e);
        }
    }
    (failed, first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_converge() {
        // The full 100k run is `tests/model.rs`; here a quick sample.
        if let Err((seed, e)) = run_many(1, 2_000) {
            panic!("schedule {seed}: {e} (reproduce: FERRY_MODEL_SEED={seed})");
        }
    }

    #[test]
    fn every_defect_is_caught() {
        // The 1,000-schedule run of each is `tests/model.rs`.
        for defect in Defect::ALL {
            let (failed, first) = failures_with(defect, 1, 300);
            assert!(failed > 0, "{defect:?}: no schedule of 300 failed");
            eprintln!("{defect:?}: {failed} of 300 schedules failed; first: {first:?}");
        }
    }
}
