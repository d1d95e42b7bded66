//! The model's applier: the engine's rules for a stream of items over an in-memory destination (catch-up upserts and
//! deletes by key, parks rows displaced by unique values, follows cascades every level down recording the tables they
//! may reach, and displaces a key change's old row, until P1; there, when cascades were followed, the re-copy round:
//! those tables read again from a source snapshot chunk by chunk, P1 moved to the snapshot, their rows left alone for
//! the transactions it holds; exact after, FK rules left to the destination for the changed columns only; whole
//! source transactions per destination commit, none while one is partly applied), with the engine's own batch
//! compaction (`compact::TableBatch`), mode switch (`apply::mode_at`, `apply::enters_exact`) and re-copy decisions
//! (`recopy::reach`, `recopy::step`, `recopy::in_snapshot`, `recopy::due_at_p1`).

use super::db::{self, Db, Row, Stmt, DEFS, FKS, KV, NULL};
use super::source::{add_column, ddl_value, Query};
use super::stream::Item;
use super::Defect;
use ferry_engine::cdc::apply::{self, Mode};
use ferry_engine::cdc::compact::{Divergence, TableBatch};
use ferry_engine::cdc::ddl::Name;
use ferry_engine::cdc::position::Position;
use ferry_engine::cdc::recopy::{self, Recorded};
use ferry_engine::schema::model::FkRule;
use ferry_engine::value::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::OnceLock;

/// The model's binlog position after `n` groups.
pub fn pos(n: usize) -> Position {
    Position::MariaDb {
        file: "model-bin.000001".into(),
        pos: 4 + n as u64,
        gtid_list: String::new(),
    }
}

/// The groups a model position stands after.
fn groups_at(p: &Position) -> usize {
    p.pos().saturating_sub(4) as usize
}

/// A table catch-up recorded for the re-copy (the metadata's `recopy`): the snapshot (source groups) of the current
/// or last round, and whether the table is whole under it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recopy {
    pub snapshot: Option<usize>,
    pub copied: bool,
}

/// The destination's durable state: rows, rows parked by catch-up (the metadata's `parked`), chunks done, P0, P1,
/// the checkpoint (groups applied), the DDL marked pending before it ran, and the tables to re-copy.
#[derive(Clone, Debug, Default)]
pub struct Dest {
    pub db: Db,
    pub parked: BTreeSet<(usize, u64)>,
    pub chunks_done: Vec<bool>,
    pub p0: Option<usize>,
    pub p1: Option<usize>,
    pub checkpoint: Option<usize>,
    pub ddl_pending: Option<usize>,
    pub recopy: BTreeMap<usize, Recopy>,
    /// Negative control `FollowOneLevel`: a cascade's reach is taken one level down (not durable state).
    pub reach_one_level: bool,
}

/// What the durable re-copy state asks before sync reads (the engine's `recopy::Step`, in groups).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecopyStep {
    Nothing,
    Run,
    Finish(usize),
}

/// A table by its engine name.
fn table_index(n: &Name) -> Option<usize> {
    DEFS.iter().position(|d| d.name == n.name)
}

fn shape(n: &Name) -> Option<&'static ferry_engine::schema::model::Table> {
    table_index(n).map(|t| &db::engine_tables()[t])
}

impl Dest {
    fn recorded(&self) -> Vec<Recorded> {
        self.recopy
            .values()
            .map(|r| Recorded {
                snapshot: r.snapshot.map(pos),
                copied: r.copied,
            })
            .collect()
    }

    /// The engine's `recopy::step` on this state (nothing recorded is nothing to do, without building positions).
    pub fn recopy_step(&self) -> Result<RecopyStep, String> {
        if self.recopy.is_empty() {
            return Ok(RecopyStep::Nothing);
        }
        let (p1, at) = (
            self.p1.unwrap_or(0),
            self.checkpoint.or(self.p0).unwrap_or(0),
        );
        Ok(
            match recopy::step(&self.recorded(), &pos(p1), &pos(at), false)
                .map_err(|e| e.to_string())?
            {
                recopy::Step::Nothing => RecopyStep::Nothing,
                recopy::Step::Run => RecopyStep::Run,
                recopy::Step::Finish(s) => RecopyStep::Finish(groups_at(&s)),
            },
        )
    }

    /// The round is over: P1 is its snapshot (the engine's `recopy::round_done`; a table not whole yet settles it
    /// without building positions, the check runs at every commit).
    pub fn round_done(&self) -> bool {
        self.recopy.values().all(|r| r.copied)
            && recopy::round_done(&self.recorded(), &pos(self.p1.unwrap_or(0)))
    }

    /// The tables a round re-copies: the recorded ones and every table any change of theirs may reach (the
    /// engine's `recopy::reach_any`, worked out once per table).
    pub fn round_tables(&self) -> BTreeSet<usize> {
        static REACH: OnceLock<Vec<BTreeSet<usize>>> = OnceLock::new();
        let reach = REACH.get_or_init(|| {
            (0..DEFS.len())
                .map(|t| {
                    recopy::reach_any(&db::engine_tables()[t], shape)
                        .iter()
                        .filter_map(table_index)
                        .collect()
                })
                .collect()
        });
        let mut out = BTreeSet::new();
        for &t in self.recopy.keys() {
            out.insert(t);
            if !self.reach_one_level {
                out.extend(reach[t].iter().copied());
            }
        }
        out
    }

    /// Tables whose rows no invariant holds for until a round re-copies them: recorded, round not over.
    pub fn awaiting_recopy(&self) -> BTreeSet<usize> {
        if self.recopy.is_empty() || self.round_done() {
            return BTreeSet::new();
        }
        self.round_tables()
    }

    /// A round starts under the snapshot after `snapshot` groups: every table it re-copies starts over.
    pub fn start_round(&mut self, snapshot: usize) -> Vec<usize> {
        let tables = self.round_tables();
        for &t in &tables {
            self.recopy.insert(
                t,
                Recopy {
                    snapshot: Some(snapshot),
                    copied: false,
                },
            );
        }
        tables.into_iter().collect()
    }

    /// One chunk of a round, in one destination transaction (the engine's `recopy::write_chunk`): the next
    /// `chunk_rows` rows of table `t` after key `lo` in `snapshot` (the source's state at the round's snapshot).
    /// Rows holding one of their unique values under another key go, then the destination's rows in the chunk's key
    /// range the snapshot lacks, then the snapshot's rows are upserted. Returns the chunk's upper key, None for the
    /// table's last chunk (the table is whole then).
    pub fn recopy_chunk(
        &mut self,
        t: usize,
        snapshot: &Db,
        lo: Option<u64>,
        chunk_rows: usize,
    ) -> Option<u64> {
        let rows: Vec<Row> = snapshot.rows[t]
            .values()
            .filter(|r| lo.is_none_or(|l| r[0] > l))
            .take(chunk_rows)
            .copied()
            .collect();
        let hi = if rows.len() >= chunk_rows {
            rows.last().map(|r| r[0])
        } else {
            None
        };
        let held = &mut self.db.rows[t];
        for u in DEFS[t].uniques {
            for r in rows.iter().filter(|r| !db::has_null(r, u)) {
                let holders: Vec<u64> = held
                    .values()
                    .filter(|x| x[0] != r[0] && db::same(x, u, r, u))
                    .map(|x| x[0])
                    .collect();
                for k in holders {
                    held.remove(&k);
                }
            }
        }
        let gone: Vec<u64> = held
            .keys()
            .copied()
            .filter(|&k| {
                lo.is_none_or(|l| k > l)
                    && hi.is_none_or(|h| k <= h)
                    && !rows.iter().any(|r| r[0] == k)
            })
            .collect();
        for k in gone {
            held.remove(&k);
        }
        for r in rows {
            held.insert(r[0], r);
        }
        if hi.is_none() {
            if let Some(r) = self.recopy.get_mut(&t) {
                r.copied = true;
            }
        }
        hi
    }

    /// The round's end: P1 moves to its snapshot, the rows parked in the re-copied tables are dropped.
    pub fn finish_round(&mut self, snapshot: usize) {
        self.p1 = Some(snapshot);
        let tables: BTreeSet<usize> = self.recopy.keys().copied().collect();
        self.parked.retain(|(t, _)| !tables.contains(t));
    }
}

/// The open destination transaction: what the applier's session sees, nobody else.
struct Open {
    db: Db,
    parked: BTreeSet<(usize, u64)>,
    /// Tables recorded for the re-copy, committed with the checkpoint.
    reached: BTreeSet<usize>,
}

/// What catch-up's following of a cascade knows of the re-copy: whether it records the tables a cascade may reach
/// (before the round), and which tables it leaves alone (re-copied under a snapshot that holds the transaction).
#[derive(Clone, Debug, Default)]
pub struct Recopying {
    pub record: bool,
    pub skip: BTreeSet<usize>,
}

/// What applying one item did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `committed`: a destination commit (with its checkpoint) happened.
    Done { committed: bool },
    /// A statement outside any transaction took effect (a DDL commits by itself); its checkpoint commits in
    /// `end_statement`.
    Statement { committed: bool },
}

/// One applier's life, from a start position to a stop, a kill or the stream's end.
pub struct Session {
    mode: Mode,
    p1: usize,
    defect: Option<Defect>,
    open: Option<Open>,
    kv: TableBatch,
    /// Rows of a source transaction whose end has not been seen are in the open transaction.
    partial: bool,
    /// Source transactions applied since the last commit.
    txns_open: u32,
    /// Groups whole-applied: the next checkpoint.
    at: usize,
    /// Negative control (`DdlUnderApplierContext`): how far the applier's clock is behind the event's.
    lag_s: u32,
    scratch: Vec<db::Change>,
    /// Tables recorded for the re-copy (durable, and this transaction's); after the round, its snapshot and tables.
    reached: BTreeSet<usize>,
    recopied: Option<(usize, BTreeSet<usize>)>,
    recopy_due: bool,
    /// Child rows catch-up changed following a cascade; child rows the destination's FK rules changed in exact mode.
    pub followed_rows: u64,
    pub cascaded_rows: u64,
    /// Row events left alone because the round re-copied their table from a snapshot that holds them.
    pub in_snapshot_rows: u64,
}

fn kv_values(r: &Row) -> Vec<Value> {
    let mut v = vec![Value::UInt(r[0]), Value::UInt(r[1])];
    if r[2] != NULL {
        v.push(Value::UInt(r[2]));
    }
    v
}

fn kv_row(v: &[Value]) -> Row {
    let at = |i: usize| match v.get(i) {
        Some(Value::UInt(x)) => *x,
        _ => NULL,
    };
    [at(0), at(1), at(2), NULL]
}

fn kv_key(v: &[Value]) -> u64 {
    kv_row(v)[0]
}

impl Session {
    /// An applier resuming after `from` groups (the checkpoint, or P0, or earlier for a re-delivery), with P1 and
    /// the re-copy state from the destination's durable state.
    pub fn new(
        d: &Dest,
        from: usize,
        defect: Option<Defect>,
        lag_s: u32,
    ) -> Result<Session, String> {
        let p1 = d.p1.unwrap_or(from);
        let reached: BTreeSet<usize> = d.recopy.keys().copied().collect();
        let recopied = d.round_done().then(|| (p1, reached.clone()));
        Ok(Session {
            mode: apply::mode_at(&pos(from), &pos(p1), false).map_err(|e| e.to_string())?,
            p1,
            defect,
            open: None,
            kv: TableBatch::new(vec![0]),
            partial: false,
            txns_open: 0,
            at: from,
            lag_s,
            scratch: Vec::new(),
            reached,
            recopied,
            recopy_due: false,
            followed_rows: 0,
            cascaded_rows: 0,
            in_snapshot_rows: 0,
        })
    }

    /// Catch-up reached P1 after following cascades: the batch is committed, the round comes before anything else.
    pub fn recopy_due(&self) -> bool {
        self.recopy_due
    }

    /// The engine's `recopy::in_snapshot` for the transaction being applied: the tables left alone.
    fn recopying(&self) -> Result<Recopying, String> {
        let skip = match &self.recopied {
            Some((s, tables))
                if recopy::in_snapshot(&pos(self.at), &pos(*s)).map_err(|e| e.to_string())? =>
            {
                tables.clone()
            }
            _ => BTreeSet::new(),
        };
        Ok(Recopying {
            record: self.mode == Mode::CatchUp
                && self.recopied.is_none()
                && !self.has(Defect::NoRecopy),
            skip,
        })
    }

    /// Whether the end of group `group` commits (a batch big enough, an idle stream, or P1 reached).
    pub fn commit_due(&self, group: usize, idle: bool, batch_txns: u32) -> Result<bool, String> {
        let passed = apply::enters_exact(self.mode, &pos(group + 1), &pos(self.p1), false)
            .map_err(|e| e.to_string())?;
        Ok(idle || passed || self.txns_open + 1 >= batch_txns)
    }

    /// Whether part of a source transaction is applied and its end not seen yet.
    pub fn mid_transaction(&self) -> bool {
        self.partial
    }

    fn has(&self, d: Defect) -> bool {
        self.defect == Some(d)
    }

    fn begin(&mut self, d: &Dest) {
        if self.open.is_none() {
            self.open = Some(Open {
                db: d.db.clone(),
                parked: d.parked.clone(),
                reached: BTreeSet::new(),
            });
        }
    }

    fn end_transaction(&mut self, group: usize) {
        self.partial = false;
        self.at = group + 1;
        self.txns_open += 1;
    }

    /// Applies one item of group `group`; `idle` says nothing else is waiting; `batch_txns` is when a batch is big
    /// enough to commit.
    pub fn apply(
        &mut self,
        d: &mut Dest,
        item: Item,
        group: usize,
        idle: bool,
        batch_txns: u32,
    ) -> Result<Step, String> {
        match item {
            Item::Begin => {}
            Item::Rows {
                table,
                before,
                after,
            } => {
                self.partial = true;
                self.begin(d);
                self.row(table, before, after)
                    .map_err(|e| format!("{e} (in group {group}, {:?} mode)", self.mode))?;
            }
            Item::Commit => {
                self.end_transaction(group);
                let passed = apply::enters_exact(self.mode, &pos(self.at), &pos(self.p1), false)
                    .map_err(|e| e.to_string())?;
                let mut committed = false;
                if idle || passed || self.txns_open >= batch_txns {
                    committed = self.commit(d)?;
                }
                if passed {
                    if recopy::due_at_p1(!self.reached.is_empty(), self.recopied.is_some(), false) {
                        self.recopy_due = true;
                    } else {
                        self.enter_exact(d)?;
                    }
                }
                return Ok(Step::Done { committed });
            }
            Item::Query {
                query,
                in_transaction: true,
                ..
            } => {
                // SAVEPOINT and the like pass; a row change logged as a statement is refused.
                if query.is_row_change() {
                    return Err(format!("group {group}: a row change logged as a statement"));
                }
            }
            Item::Query {
                query,
                ts_s,
                tz_s,
                in_transaction: false,
            } => {
                if self.partial {
                    return Err(format!(
                        "group {group}: a statement outside any transaction (`{}`) arrived while a transaction's rows were open",
                        query.sql()
                    ));
                }
                let committed = self.commit(d)?;
                if query == Query::AddColumn {
                    self.ddl(d, group, ts_s, tz_s)?;
                }
                return Ok(Step::Statement { committed });
            }
        }
        Ok(Step::Done { committed: false })
    }

    /// The checkpoint of a statement outside any transaction.
    pub fn end_statement(&mut self, d: &mut Dest, group: usize) -> Result<bool, String> {
        self.end_transaction(group);
        self.commit(d)
    }

    /// Commits the open transaction with its checkpoint; nothing while a source transaction is partly applied.
    pub fn commit(&mut self, d: &mut Dest) -> Result<bool, String> {
        if self.txns_open == 0 || (self.partial && !self.has(Defect::CommitMidTransaction)) {
            return Ok(false);
        }
        if let Some(mut o) = self.open.take() {
            self.flush_kv(&mut o)?;
            d.db = o.db;
            d.parked = o.parked;
            for t in o.reached {
                d.recopy.entry(t).or_default();
            }
        }
        d.checkpoint = Some(self.at);
        d.ddl_pending = None;
        self.txns_open = 0;
        Ok(true)
    }

    /// Catch-up is over: a row still parked was never re-created by a later event (the engine stops with
    /// FERRY-CDC-007 there).
    fn enter_exact(&mut self, d: &Dest) -> Result<(), String> {
        if let Some((t, k)) = d.parked.iter().next() {
            return Err(format!(
                "catch-up ended at P1 with {} parked row(s) never re-created; first {} key {k}",
                d.parked.len(),
                DEFS[*t].name
            ));
        }
        self.mode = Mode::Exact;
        Ok(())
    }

    /// The DDL, run under the session context the event recorded (its timestamp and time zone), as a replica
    /// does; marked pending first, and taken as done when it comes again after a crash before its checkpoint.
    fn ddl(&mut self, d: &mut Dest, group: usize, ts_s: u32, tz_s: i32) -> Result<(), String> {
        if self.open.is_some() {
            return Err(format!(
                "group {group}: a DDL with a destination transaction open"
            ));
        }
        let replay = d.ddl_pending == Some(group);
        d.ddl_pending = Some(group);
        if d.db.kv_c {
            if replay {
                return Ok(());
            }
            return Err(format!(
                "group {group}: the destination rejected the DDL (the column is there already)"
            ));
        }
        let (ts_s, tz_s) = if self.has(Defect::DdlUnderApplierContext) {
            // The applier's own session: UTC, its own clock.
            (ts_s + self.lag_s, 0)
        } else {
            (ts_s, tz_s)
        };
        add_column(&mut d.db, ddl_value(ts_s, tz_s));
        Ok(())
    }

    fn row(&mut self, t: usize, before: Option<Row>, after: Option<Row>) -> Result<(), String> {
        let exact = self.mode == Mode::Exact;
        let recopying = self.recopying()?;
        if recopying.skip.contains(&t) {
            // The round re-copied the table from a snapshot that holds this transaction.
            self.in_snapshot_rows += 1;
            return Ok(());
        }
        if db::rules()[t].commutes {
            if t != KV {
                return Err(format!("model: {} commutes", DEFS[t].name));
            }
            let r = match (before, after) {
                (None, Some(a)) => self.kv.insert(kv_values(&a)),
                (Some(b), None) => self.kv.delete(kv_values(&b)),
                (Some(b), Some(a)) => self.kv.update(kv_values(&b), kv_values(&a)),
                (None, None) => Ok(()),
            };
            return r.map_err(|c| format!("batch conflict {c:?}"));
        }
        let Some(o) = self.open.as_mut() else {
            return Err("model: rows without a destination transaction".into());
        };
        if exact {
            self.scratch.clear();
            let r = exact_row(o, t, before, after, self.defect, &mut self.scratch)
                .map_err(|e| format!("exact mode: {}: {e}", DEFS[t].name));
            self.cascaded_rows += self.scratch.len().saturating_sub(1) as u64;
            return r;
        }
        self.followed_rows += catch_up_row(o, t, before, after, self.defect, &recopying) as u64;
        self.reached.extend(o.reached.iter().copied());
        Ok(())
    }

    /// Writes the batch of the table whose rows commute: exact mode first checks every key is present or absent
    /// as the batch's first event for it says.
    fn flush_kv(&mut self, o: &mut Open) -> Result<(), String> {
        if self.kv.is_empty() {
            return Ok(());
        }
        let exact = self.mode == Mode::Exact;
        let net = self.kv.take();
        if let Some(d) = net.divergence(exact, |k| o.db.rows[KV].contains_key(&kv_key(k))) {
            return Err(match d {
                Divergence::Missing(k) => {
                    format!(
                        "exact mode: kv key {} missing before group {}",
                        kv_key(&k),
                        self.at
                    )
                }
                Divergence::Present(k) => format!(
                    "exact mode: kv key {} already present before group {}",
                    kv_key(&k),
                    self.at
                ),
            });
        }
        let (deletes, upserts) = net.into_writes(exact);
        for k in deletes {
            o.db.rows[KV].remove(&kv_key(&k));
        }
        for r in upserts {
            let r = kv_row(&r);
            o.db.rows[KV].insert(r[0], r);
        }
        Ok(())
    }
}

/// Whether an update changes columns that some child rows follow (ON UPDATE CASCADE / SET NULL).
fn cascading(t: usize, b: &Row, a: &Row) -> bool {
    db::rules()[t]
        .cascade_update_columns
        .iter()
        .any(|&i| b[i] != a[i])
}

/// Exact mode: an insert must find its key free, an update or delete its row; a delete whose rows cascade, and an
/// update of columns children follow, run with FK checks on (the destination is the source at this point, so it
/// cascades as the source did); everything else with them off, a key change as one UPDATE by the old key.
fn exact_row(
    o: &mut Open,
    t: usize,
    before: Option<Row>,
    after: Option<Row>,
    defect: Option<Defect>,
    scratch: &mut Vec<db::Change>,
) -> Result<(), db::Refusal> {
    let cascades = db::rules()[t].cascades_on_delete;
    let mut delete = |o: &mut Open, b: Row| {
        if cascades {
            db::execute(&mut o.db, &Stmt::Delete(t, b[0]), scratch).map(|_| ())
        } else {
            db::raw_delete(&mut o.db, t, b[0])
        }
    };
    match (before, after) {
        (None, Some(a)) => db::raw_insert(&mut o.db, t, a),
        (Some(b), None) => delete(o, b),
        (Some(b), Some(a)) if b[0] != a[0] && defect == Some(Defect::KeyChangeAsDeleteInsert) => {
            delete(o, b)?;
            db::raw_insert(&mut o.db, t, a)
        }
        (Some(b), Some(a)) if cascading(t, &b, &a) => {
            db::execute(&mut o.db, &Stmt::Update(t, b[0], a), scratch).map(|_| ())
        }
        (Some(b), Some(a)) => db::raw_update(&mut o.db, t, b[0], a),
        (None, None) => Ok(()),
    }
}

/// Catch-up: every change idempotent by key. The destination may hold rows copied later than the event, so a row
/// holding a unique value the written row takes is parked (a later event re-creates it); a delete's cascades and
/// an update's are made explicitly, every level down; a key change's old row is displaced (no ON DELETE rule).
fn catch_up_row(
    o: &mut Open,
    t: usize,
    before: Option<Row>,
    after: Option<Row>,
    defect: Option<Defect>,
    recopying: &Recopying,
) -> usize {
    let one_level = defect == Some(Defect::FollowOneLevel);
    let mut followed = 0;
    match (before, after) {
        (None, Some(a)) => upsert(o, t, a),
        (Some(b), None) => {
            displace(o, t, b[0]);
            if db::rules()[t].cascades_on_delete {
                followed = follow(o, t, b, None, one_level, recopying);
            }
        }
        (Some(b), Some(a)) if b[0] != a[0] && defect == Some(Defect::KeyChangeAsDeleteInsert) => {
            displace(o, t, b[0]);
            if db::rules()[t].cascades_on_delete {
                followed = follow(o, t, b, None, one_level, recopying);
            }
            upsert(o, t, a);
        }
        (Some(b), Some(a)) => {
            if cascading(t, &b, &a) {
                followed = follow(o, t, b, Some(a), one_level, recopying);
            }
            if b[0] != a[0] {
                displace(o, t, b[0]);
            }
            upsert(o, t, a);
        }
        (None, None) => {}
    }
    followed
}

/// DELETE by key; a later event for a parked row's key supersedes its parked image.
fn displace(o: &mut Open, t: usize, key: u64) {
    o.db.rows[t].remove(&key);
    o.parked.remove(&(t, key));
}

fn upsert(o: &mut Open, t: usize, row: Row) {
    while let Some(other) = db::unique_taken(&o.db, t, row[0], &row) {
        o.db.rows[t].remove(&other);
        o.parked.insert((t, other));
    }
    o.db.rows[t].insert(row[0], row);
    o.parked.remove(&(t, row[0]));
}

/// The engine's `follow_cascades`: for a parent row's change (new None: deleted), the rule of each FK that follows
/// it, as `sql::follow` writes it (SET NULL: UPDATE ... SET fk = NULL; CASCADE on delete: DELETE; CASCADE on
/// update: UPDATE IGNORE to the new values, then DELETE of the rows that could not move), after reading the rows
/// it changes when their table has followers of its own, which are followed in turn, each row once. Before the
/// re-copy round the tables the change may reach are recorded (`recopy::reach`); after it, a table the round
/// re-copied from a snapshot that holds the transaction is left alone.
fn follow(
    o: &mut Open,
    t: usize,
    old: Row,
    new: Option<Row>,
    one_level: bool,
    recopying: &Recopying,
) -> usize {
    if recopying.record && one_level {
        o.reached.extend(
            FKS.iter()
                .filter(|f| {
                    f.parent == t
                        && (f.on_delete, f.on_update) != (FkRule::Restrict, FkRule::Restrict)
                })
                .map(|f| f.child),
        );
    } else if recopying.record {
        let change = recopy::Change::between(&old, new.as_ref().map(|n| &n[..]));
        o.reached.extend(
            recopy::reach(&db::engine_tables()[t], change, shape)
                .iter()
                .filter_map(table_index),
        );
    }
    let mut changed_rows = 0;
    let mut work: VecDeque<(usize, Row, Option<Row>)> = VecDeque::from([(t, old, new)]);
    let mut seen: BTreeSet<(usize, u64)> = BTreeSet::new();
    // Each row is queued once at most; the bound only guards the model.
    let mut steps = 0;
    while let Some((t, old, new)) = work.pop_front() {
        steps += 1;
        if steps > db::CASCADE_STEPS_MAX {
            break;
        }
        for fk in FKS.iter().filter(|f| f.parent == t) {
            if recopying.skip.contains(&fk.child)
                || db::has_null(&old, fk.referenced)
                || new.is_some_and(|n| db::same(&n, fk.referenced, &old, fk.referenced))
            {
                continue;
            }
            let rule = if new.is_some() {
                fk.on_update
            } else {
                fk.on_delete
            };
            if rule == FkRule::Restrict {
                continue;
            }
            let to = |row: &Row| -> Row {
                let mut r = *row;
                for (n, &c) in fk.columns.iter().enumerate() {
                    r[c] = match new {
                        Some(v) if rule == FkRule::Cascade => v[fk.referenced[n]],
                        _ => NULL,
                    };
                }
                r
            };
            let deeper = FKS.iter().any(|f| f.parent == fk.child);
            if deeper && !one_level {
                for row in db::children(&o.db, fk, &old) {
                    if !seen.insert((fk.child, row[0])) {
                        continue;
                    }
                    let changed = match (rule, new) {
                        (FkRule::Cascade, None) => None,
                        _ => Some(to(&row)),
                    };
                    work.push_back((fk.child, row, changed));
                }
            }
            let rows = db::children(&o.db, fk, &old);
            changed_rows += rows.len();
            match (rule, new) {
                (FkRule::Cascade, None) => {
                    for r in rows {
                        o.db.rows[fk.child].remove(&r[0]);
                    }
                }
                (FkRule::Cascade, Some(_)) => {
                    // UPDATE IGNORE: a row whose new values a unique key holds already stays, and is deleted.
                    for r in rows {
                        let moved = to(&r);
                        if db::unique_taken(&o.db, fk.child, r[0], &moved).is_none() {
                            o.db.rows[fk.child].insert(r[0], moved);
                        } else {
                            o.db.rows[fk.child].remove(&r[0]);
                        }
                    }
                }
                _ => {
                    for r in rows {
                        o.db.rows[fk.child].insert(r[0], to(&r));
                    }
                }
            }
        }
    }
    changed_rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::db::{CHILD, GRANDCHILD, NODE, PARENT};

    fn open(db: &Db) -> Open {
        Open {
            db: db.clone(),
            parked: BTreeSet::new(),
            reached: BTreeSet::new(),
        }
    }

    /// Catch-up before the round: it records what the cascades may reach.
    fn before_round() -> Recopying {
        Recopying {
            record: true,
            skip: BTreeSet::new(),
        }
    }

    fn family() -> Db {
        let mut db = Db::default();
        let mut log = Vec::new();
        for s in [
            Stmt::Insert(PARENT, [1, 10, 0, NULL]),
            Stmt::Insert(CHILD, [1, 10, 0, 0]),
            Stmt::Insert(CHILD, [2, 10, 1, 0]),
            Stmt::Insert(GRANDCHILD, [1, 10, 0, 0]),
            Stmt::Insert(GRANDCHILD, [2, 10, 1, 0]),
            Stmt::Insert(NODE, [1, NULL, 0, NULL]),
            Stmt::Insert(NODE, [2, 1, 0, NULL]),
            Stmt::Insert(NODE, [3, 2, 0, NULL]),
            Stmt::Insert(NODE, [4, 3, 0, NULL]),
        ] {
            db::execute(&mut db, &s, &mut log).expect("family");
        }
        db
    }

    /// Catch-up on a destination equal to the source ends where the source does, for each kind of change.
    #[test]
    fn catch_up_follows_every_level() {
        for s in [
            Stmt::Delete(PARENT, 1),
            Stmt::Update(PARENT, 1, [1, 11, 0, NULL]),
            Stmt::Update(PARENT, 1, [5, 10, 0, NULL]),
            Stmt::Update(PARENT, 1, [5, 12, 0, NULL]),
            Stmt::Update(CHILD, 1, [7, 10, 0, 0]),
            Stmt::Delete(CHILD, 2),
            Stmt::Delete(NODE, 1),
            Stmt::Delete(NODE, 3),
        ] {
            let start = family();
            let mut src = start.clone();
            let (b, a) = db::execute(&mut src, &s, &mut Vec::new()).expect("statement");
            let mut o = open(&start);
            catch_up_row(&mut o, table(&s), b, a, None, &before_round());
            assert_eq!(o.db, src, "{s:?}");
            let mut o = open(&start);
            exact_row(&mut o, table(&s), b, a, None, &mut Vec::new()).expect("exact");
            assert_eq!(o.db, src, "{s:?} in exact mode");
        }
    }

    fn table(s: &Stmt) -> usize {
        match *s {
            Stmt::Insert(t, _) | Stmt::Update(t, _, _) | Stmt::Delete(t, _) => t,
        }
    }

    /// The negative controls diverge on the cases they are about.
    #[test]
    fn the_defects_diverge() {
        let start = family();
        let key_change = Stmt::Update(PARENT, 1, [5, 10, 0, NULL]);
        let mut src = start.clone();
        let (b, a) = db::execute(&mut src, &key_change, &mut Vec::new()).expect("statement");
        let d = Some(Defect::KeyChangeAsDeleteInsert);
        let mut o = open(&start);
        catch_up_row(&mut o, PARENT, b, a, d, &before_round());
        assert_ne!(o.db, src);
        let mut o = open(&start);
        exact_row(&mut o, PARENT, b, a, d, &mut Vec::new()).expect("exact");
        assert_ne!(o.db, src);

        let mut src = start.clone();
        let (b, a) = db::execute(&mut src, &Stmt::Delete(NODE, 1), &mut Vec::new()).expect("del");
        let mut o = open(&start);
        catch_up_row(
            &mut o,
            NODE,
            b,
            a,
            Some(Defect::FollowOneLevel),
            &before_round(),
        );
        assert_ne!(o.db, src);
    }

    /// A child copied after its parent's sku moved is already under the new value: catch-up leaves it there.
    #[test]
    fn a_later_copy_under_the_new_values_wins() {
        let start = family();
        let mut src = start.clone();
        let (b, a) = db::execute(
            &mut src,
            &Stmt::Update(PARENT, 1, [1, 11, 0, NULL]),
            &mut Vec::new(),
        )
        .expect("statement");
        let mut copy = start.clone();
        copy.rows[CHILD].insert(1, [1, 11, 0, 0]);
        copy.rows[GRANDCHILD].insert(1, [1, 11, 0, 0]);
        let mut o = open(&copy);
        catch_up_row(&mut o, PARENT, b, a, None, &before_round());
        assert_eq!(o.db, src);
    }

    /// Replays `stmts` (run on `start`, the source) in catch-up onto `copy`, then, as at P1, re-copies the tables
    /// the followed cascades recorded from the source after them (chunks of two rows): the destination's state at
    /// the end, the source's, and the tables re-copied.
    fn catch_up_onto(start: &Db, copy: &Db, stmts: &[Stmt]) -> (Db, Db, Vec<usize>) {
        let mut src = start.clone();
        let mut o = open(copy);
        for s in stmts {
            let (b, a) = db::execute(&mut src, s, &mut Vec::new()).expect("statement");
            catch_up_row(&mut o, table(s), b, a, None, &before_round());
        }
        let mut d = Dest {
            db: o.db,
            parked: o.parked,
            p1: Some(stmts.len()),
            checkpoint: Some(stmts.len()),
            ..Default::default()
        };
        for t in o.reached {
            d.recopy.entry(t).or_default();
        }
        assert_eq!(
            d.recopy_step().expect("step"),
            if d.recopy.is_empty() {
                RecopyStep::Nothing
            } else {
                RecopyStep::Run
            }
        );
        let tables = d.start_round(stmts.len());
        for &t in &tables {
            let mut lo = None;
            while let Some(hi) = d.recopy_chunk(t, &src, lo, 2) {
                lo = Some(hi);
            }
        }
        d.finish_round(stmts.len());
        assert!(d.recopy.is_empty() || d.round_done());
        (d.db, src, tables)
    }

    /// A grandchild's own older event re-creates it under the old values, and the cascade that moved it is followed
    /// through the child, which the copy already has under the new values: the grandchild is never reached by
    /// following. The re-copy of the tables the parent's cascade may reach (child, grandchild) puts it right.
    #[test]
    fn a_deeper_row_behind_a_later_copy_is_re_copied() {
        let start = family();
        let stmts = [
            Stmt::Update(GRANDCHILD, 1, [1, 10, 0, 7]),
            Stmt::Update(PARENT, 1, [1, 11, 0, NULL]),
        ];
        let mut copy = start.clone();
        let mut log = Vec::new();
        for s in &stmts {
            db::execute(&mut copy, s, &mut log).expect("statement");
        }
        let (dst, src, tables) = catch_up_onto(&start, &copy, &stmts);
        assert_eq!(dst, src);
        assert_eq!(tables, vec![CHILD, GRANDCHILD]);
    }

    /// A parent's delete, replayed, deletes a child copied after another parent took the deleted one's sku and the
    /// child followed it there; the re-copy of the children brings it back.
    #[test]
    fn a_unique_value_taken_again_is_re_copied() {
        let mut start = Db::default();
        let mut log = Vec::new();
        for s in [
            Stmt::Insert(PARENT, [1, 10, 0, NULL]),
            Stmt::Insert(PARENT, [2, 11, 0, NULL]),
            Stmt::Insert(CHILD, [1, 11, 0, 0]),
        ] {
            db::execute(&mut start, &s, &mut log).expect("family");
        }
        let stmts = [
            Stmt::Delete(PARENT, 1),
            Stmt::Update(PARENT, 2, [2, 10, 0, NULL]),
        ];
        let mut copy = start.clone();
        for s in &stmts {
            db::execute(&mut copy, s, &mut log).expect("statement");
        }
        let (dst, src, tables) = catch_up_onto(&start, &copy, &stmts);
        assert_eq!(dst, src);
        assert_eq!(tables, vec![CHILD, GRANDCHILD]);
    }

    /// A chunk of the re-copy whose unique values the destination holds under other keys, one of them a row of the
    /// same chunk (a swap of `(psku, n)` between two children): after it the snapshot's rows hold them.
    #[test]
    fn a_re_copy_chunk_takes_unique_values_from_the_rows_holding_them() {
        let mut d = Dest::default();
        for r in [[1, 10, 0, 0], [2, 10, 1, 0], [3, 10, 2, 0], [9, 10, 5, 0]] {
            d.db.rows[CHILD].insert(r[0], r);
        }
        let mut snapshot = Db::default();
        for r in [[1, 10, 1, 0], [2, 10, 0, 0], [4, 10, 2, 0]] {
            snapshot.rows[CHILD].insert(r[0], r);
        }
        d.recopy.insert(CHILD, Recopy::default());
        d.start_round(7);
        let mut lo = None;
        while let Some(hi) = d.recopy_chunk(CHILD, &snapshot, lo, 2) {
            lo = Some(hi);
        }
        assert_eq!(d.db.rows[CHILD], snapshot.rows[CHILD]);
        assert!(d.recopy[&CHILD].copied);
    }
}
