//! The model simulator: the engine's pure decisions (row events to a batch's net effect, what each mode checks and
//! writes, when catch-up becomes exact, where a resumed run starts) driven against in-memory tables under seeded
//! schedules (crashes anywhere, re-delivered events, chunk reads interleaved with writes, key swaps), checking that
//! the destination equals the source after catch-up and that exact mode never sees a divergence.
//!
//! One schedule: a source table of (key, value) rows; a binlog of transactions (inserts, updates, key-changing
//! updates, deletes, swaps of two keys); P0 taken before the copy; chunks of the key space copied at seeded
//! moments while the source keeps writing (each chunk atomic with its done mark); P1 after the last chunk; then
//! sync from the checkpoint (P0 first) in batches of seeded size, each batch atomic with its checkpoint, the
//! process crashing at seeded points and resuming from the durable state only.

use ferry_engine::cdc::apply::{self, Mode};
use ferry_engine::cdc::compact::{Divergence, TableBatch};
use ferry_engine::cdc::position::Position;
use ferry_engine::value::Value;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// A row event of the model's binlog.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Insert(u64, u64),
    Update {
        before: (u64, u64),
        after: (u64, u64),
    },
    Delete(u64, u64),
}

/// Knobs of one schedule, all drawn from its seed.
#[derive(Debug, Clone)]
pub struct Shape {
    pub keys: u64,
    pub initial_rows: u64,
    pub chunks: u64,
    pub transactions: usize,
    pub crash_per_mille: u32,
}

/// What a schedule did (for the report and for a failure's message).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    pub transactions: usize,
    pub crashes: u32,
    pub batches: u32,
    pub redelivered: u64,
}

fn pos(n: usize) -> Position {
    Position::MariaDb {
        file: "model-bin.000001".into(),
        pos: 4 + n as u64,
        gtid_list: String::new(),
    }
}

fn row(k: u64, v: u64) -> Vec<Value> {
    vec![Value::UInt(k), Value::UInt(v)]
}

fn key(r: &[Value]) -> u64 {
    match r.first() {
        Some(Value::UInt(k)) => *k,
        _ => u64::MAX,
    }
}

fn val(r: &[Value]) -> u64 {
    match r.get(1) {
        Some(Value::UInt(v)) => *v,
        _ => u64::MAX,
    }
}

/// The source: its rows and its binlog (transactions of row events; position n = after transaction n).
struct Source {
    rows: BTreeMap<u64, u64>,
    binlog: Vec<Vec<Event>>,
}

impl Source {
    /// One seeded transaction of 1..4 row events, applied and logged.
    fn write(&mut self, rng: &mut StdRng, keys: u64, next_value: &mut u64) {
        let mut tx = Vec::new();
        for _ in 0..rng.random_range(1..=4) {
            *next_value += 1;
            let v = *next_value;
            let k = rng.random_range(0..keys);
            match (self.rows.get(&k).copied(), rng.random_range(0..10)) {
                (None, _) => {
                    self.rows.insert(k, v);
                    tx.push(Event::Insert(k, v));
                }
                (Some(old), 0..=3) => {
                    self.rows.insert(k, v);
                    tx.push(Event::Update {
                        before: (k, old),
                        after: (k, v),
                    });
                }
                (Some(old), 4..=5) => {
                    // The key itself changes (to a free key).
                    let nk = rng.random_range(0..keys);
                    if self.rows.contains_key(&nk) {
                        continue;
                    }
                    self.rows.remove(&k);
                    self.rows.insert(nk, old);
                    tx.push(Event::Update {
                        before: (k, old),
                        after: (nk, old),
                    });
                }
                (Some(old), 6..=7) => {
                    // Two rows swap keys through a free one, in one transaction (as a gh-ost-like swap would).
                    let other = rng.random_range(0..keys);
                    let tmp = keys + rng.random_range(0..keys);
                    match self.rows.get(&other).copied() {
                        Some(ov) if other != k && !self.rows.contains_key(&tmp) => {
                            for (b, a) in [
                                ((k, old), (tmp, old)),
                                ((other, ov), (k, ov)),
                                ((tmp, old), (other, old)),
                            ] {
                                self.rows.remove(&b.0);
                                self.rows.insert(a.0, a.1);
                                tx.push(Event::Update {
                                    before: b,
                                    after: a,
                                });
                            }
                        }
                        _ => {}
                    }
                }
                (Some(old), _) => {
                    self.rows.remove(&k);
                    tx.push(Event::Delete(k, old));
                }
            }
        }
        if !tx.is_empty() {
            self.binlog.push(tx);
        }
    }
}

/// The destination's durable state: its rows, the chunks marked done, the checkpoint.
#[derive(Default, Clone)]
struct Destination {
    rows: BTreeMap<u64, u64>,
    chunks_done: Vec<bool>,
    p0: Option<usize>,
    p1: Option<usize>,
    checkpoint: Option<usize>,
}

/// Runs one seeded schedule; Err names what broke.
pub fn schedule(seed: u64) -> Result<Trace, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let keys = rng.random_range(4..64);
    let shape = Shape {
        keys,
        initial_rows: rng.random_range(0..keys),
        chunks: rng.random_range(1..6),
        transactions: rng.random_range(0..40),
        crash_per_mille: rng.random_range(0..300),
    };
    run(&shape, &mut rng)
}

/// Runs a schedule of a given shape (what proptest shrinks) with the rest drawn from `seed`.
pub fn schedule_with(shape: &Shape, seed: u64) -> Result<Trace, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let shape = Shape {
        keys: shape.keys.max(1),
        initial_rows: shape.initial_rows.min(shape.keys.max(1)),
        chunks: shape.chunks.max(1),
        ..shape.clone()
    };
    run(&shape, &mut rng)
}

fn run(shape: &Shape, rng: &mut StdRng) -> Result<Trace, String> {
    let mut trace = Trace::default();
    let mut next_value = 1_000_000;
    let mut src = Source {
        rows: BTreeMap::new(),
        binlog: Vec::new(),
    };
    // Rows that exist before P0 (not in the binlog).
    for v in 0..shape.initial_rows {
        let k = rng.random_range(0..shape.keys);
        src.rows.insert(k, v);
    }
    let mut dst = Destination {
        chunks_done: vec![false; shape.chunks as usize],
        ..Default::default()
    };
    let chunk_of = |k: u64| -> usize {
        // Keys above the initial space (swap temporaries, moved keys) fall into the last chunk, open-ended as the
        // engine's last range is.
        ((k * shape.chunks) / shape.keys).min(shape.chunks - 1) as usize
    };
    let crash = |rng: &mut StdRng| rng.random_range(0..1000) < shape.crash_per_mille;
    let mut written = 0;
    let mut write_some = |src: &mut Source, rng: &mut StdRng, n: usize| {
        for _ in 0..n {
            if written < shape.transactions {
                src.write(rng, shape.keys, &mut next_value);
                written += 1;
            }
        }
    };
    // A run, restarted after each crash; the durable destination state is all it resumes from.
    loop {
        // P0 before any row is copied.
        if dst.p0.is_none() {
            let n = rng.random_range(0..3);
            write_some(&mut src, rng, n);
            dst.p0 = Some(src.binlog.len());
        }
        // The copy: chunks not yet done, read at seeded moments while the source writes.
        let mut crashed = false;
        for c in 0..shape.chunks as usize {
            if dst.chunks_done[c] {
                continue;
            }
            let n = rng.random_range(0..4);
            write_some(&mut src, rng, n);
            if crash(rng) {
                crashed = true;
                break;
            }
            // One transaction: the chunk's rows and its done mark.
            for (&k, &v) in src.rows.iter().filter(|(k, _)| chunk_of(**k) == c) {
                if dst.rows.insert(k, v).is_some() {
                    return Err(format!("chunk {c} copied key {k} onto an existing row"));
                }
            }
            dst.chunks_done[c] = true;
        }
        if crashed {
            trace.crashes += 1;
            continue;
        }
        if dst.p1.is_none() {
            dst.p1 = Some(src.binlog.len());
        }
        write_some(&mut src, rng, shape.transactions);
        trace.transactions = src.binlog.len();
        // Sync from the checkpoint (P0 first), in batches, each atomic with its checkpoint.
        let p1 = pos(dst.p1.unwrap_or(0));
        let p0 = dst.p0.unwrap_or(0);
        let mut from = dst.checkpoint.unwrap_or(p0);
        // Duplicated delivery: while still before P1 (catch-up), a restarted reader may start anywhere between P0
        // and the checkpoint and deliver transactions that were applied already. (Exact mode resumes from the
        // checkpoint only, as the engine does.)
        if from < dst.p1.unwrap_or(0) && from > p0 && rng.random_bool(0.3) {
            from = rng.random_range(p0..from);
            trace.redelivered += 1;
        }
        let mut mode = apply::mode_at(&pos(from), &p1, false).map_err(|e| e.to_string())?;
        let mut at = from;
        while at < src.binlog.len() {
            let mut staged = dst.rows.clone();
            let mut batch = TableBatch::new(vec![0]);
            let size = rng.random_range(1..=5);
            let mut end = at;
            let mut switch = false;
            while end < src.binlog.len() && end - at < size {
                for e in &src.binlog[end] {
                    let r = match e {
                        Event::Insert(k, v) => batch.insert(row(*k, *v)),
                        Event::Update { before, after } => {
                            batch.update(row(before.0, before.1), row(after.0, after.1))
                        }
                        Event::Delete(k, v) => batch.delete(row(*k, *v)),
                    };
                    r.map_err(|c| format!("batch conflict {c:?} at transaction {end}"))?;
                }
                end += 1;
                // The applier commits and turns exact where a transaction ends at or past P1.
                if apply::enters_exact(mode, &pos(end), &p1, false).map_err(|e| e.to_string())? {
                    switch = true;
                    break;
                }
            }
            let net = batch.take();
            let exact = mode == Mode::Exact;
            if let Some(d) = net.divergence(exact, |k| staged.contains_key(&key(k))) {
                return Err(match d {
                    Divergence::Missing(k) => {
                        format!("exact mode: key {:?} missing before transaction {at}", k)
                    }
                    Divergence::Present(k) => format!(
                        "exact mode: key {:?} already present before transaction {at}",
                        k
                    ),
                });
            }
            let (deletes, upserts) = net.into_writes(exact);
            for k in deletes {
                staged.remove(&key(&k));
            }
            for r in upserts {
                staged.insert(key(&r), val(&r));
            }
            if crash(rng) {
                // The batch rolls back with its checkpoint.
                trace.crashes += 1;
                crashed = true;
                break;
            }
            dst.rows = staged;
            dst.checkpoint = Some(end);
            trace.batches += 1;
            at = end;
            if switch {
                mode = Mode::Exact;
            }
        }
        if crashed {
            continue;
        }
        break;
    }
    if dst.rows != src.rows {
        let diff: Vec<String> = src
            .rows
            .iter()
            .filter(|(k, v)| dst.rows.get(k) != Some(v))
            .map(|(k, v)| format!("{k}={v} (destination {:?})", dst.rows.get(k)))
            .chain(
                dst.rows
                    .iter()
                    .filter(|(k, _)| !src.rows.contains_key(k))
                    .map(|(k, v)| format!("extra {k}={v}")),
            )
            .take(5)
            .collect();
        return Err(format!(
            "destination differs from source: {}",
            diff.join(", ")
        ));
    }
    Ok(trace)
}

/// Runs `n` schedules from `first_seed`; the first failure with its seed.
pub fn run_many(first_seed: u64, n: u64) -> Result<Trace, (u64, String)> {
    let mut total = Trace::default();
    for s in first_seed..first_seed + n {
        let t = schedule(s).map_err(|e| (s, e))?;
        total.transactions += t.transactions;
        total.crashes += t.crashes;
        total.batches += t.batches;
        total.redelivered += t.redelivered;
    }
    Ok(total)
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
}
