//! The model's applier: the engine's rules for a stream of items over an in-memory destination (catch-up upserts and
//! deletes by key, parks rows displaced by unique values, follows cascades every level down and displaces a key
//! change's old row, until P1; exact after, FK rules left to the destination for the changed columns only; whole
//! source transactions per destination commit, none while one is partly applied), with the engine's own batch
//! compaction (`compact::TableBatch`) and mode switch (`apply::mode_at`, `apply::enters_exact`).

use super::db::{self, Db, Row, Stmt, DEFS, FKS, KV, NULL};
use super::source::{add_column, ddl_value, Query};
use super::stream::Item;
use super::Defect;
use ferry_engine::cdc::apply::{self, Mode};
use ferry_engine::cdc::compact::{Divergence, TableBatch};
use ferry_engine::cdc::position::Position;
use ferry_engine::schema::model::FkRule;
use ferry_engine::value::Value;
use std::collections::{BTreeSet, VecDeque};

/// The model's binlog position after `n` groups.
pub fn pos(n: usize) -> Position {
    Position::MariaDb {
        file: "model-bin.000001".into(),
        pos: 4 + n as u64,
        gtid_list: String::new(),
    }
}

/// The destination's durable state: rows, rows parked by catch-up (the metadata's `parked`), chunks done, P0, P1,
/// the checkpoint (groups applied), and the DDL marked pending before it ran.
#[derive(Clone, Debug, Default)]
pub struct Dest {
    pub db: Db,
    pub parked: BTreeSet<(usize, u64)>,
    pub chunks_done: Vec<bool>,
    pub p0: Option<usize>,
    pub p1: Option<usize>,
    pub checkpoint: Option<usize>,
    pub ddl_pending: Option<usize>,
}

/// The open destination transaction: what the applier's session sees, nobody else.
struct Open {
    db: Db,
    parked: BTreeSet<(usize, u64)>,
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
    /// Child rows catch-up changed following a cascade; child rows the destination's FK rules changed in exact mode.
    pub followed_rows: u64,
    pub cascaded_rows: u64,
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
    /// An applier resuming after `from` groups (the checkpoint, or P0).
    pub fn new(
        from: usize,
        p1: usize,
        defect: Option<Defect>,
        lag_s: u32,
    ) -> Result<Session, String> {
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
            followed_rows: 0,
            cascaded_rows: 0,
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
                    self.enter_exact(d)?;
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
        self.followed_rows += catch_up_row(o, t, before, after, self.defect) as u64;
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
) -> usize {
    let one_level = defect == Some(Defect::FollowOneLevel);
    let mut followed = 0;
    match (before, after) {
        (None, Some(a)) => upsert(o, t, a),
        (Some(b), None) => {
            displace(o, t, b[0]);
            if db::rules()[t].cascades_on_delete {
                followed = follow(o, t, b, None, one_level);
            }
        }
        (Some(b), Some(a)) if b[0] != a[0] && defect == Some(Defect::KeyChangeAsDeleteInsert) => {
            displace(o, t, b[0]);
            if db::rules()[t].cascades_on_delete {
                followed = follow(o, t, b, None, one_level);
            }
            upsert(o, t, a);
        }
        (Some(b), Some(a)) => {
            if cascading(t, &b, &a) {
                followed = follow(o, t, b, Some(a), one_level);
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
/// it changes when their table has followers of its own, which are followed in turn, each row once.
fn follow(o: &mut Open, t: usize, old: Row, new: Option<Row>, one_level: bool) -> usize {
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
            if db::has_null(&old, fk.referenced)
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
            catch_up_row(&mut o, table(&s), b, a, None);
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
        catch_up_row(&mut o, PARENT, b, a, d);
        assert_ne!(o.db, src);
        let mut o = open(&start);
        exact_row(&mut o, PARENT, b, a, d, &mut Vec::new()).expect("exact");
        assert_ne!(o.db, src);

        let mut src = start.clone();
        let (b, a) = db::execute(&mut src, &Stmt::Delete(NODE, 1), &mut Vec::new()).expect("del");
        let mut o = open(&start);
        catch_up_row(&mut o, NODE, b, a, Some(Defect::FollowOneLevel));
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
        catch_up_row(&mut o, PARENT, b, a, None);
        assert_eq!(o.db, src);
    }

    /// Replays `stmts` (run on `start`, the source) in catch-up onto `copy`: the destination's state at the end.
    fn catch_up_onto(start: &Db, copy: &Db, stmts: &[Stmt]) -> (Db, Db) {
        let mut src = start.clone();
        let mut o = open(copy);
        for s in stmts {
            let (b, a) = db::execute(&mut src, s, &mut Vec::new()).expect("statement");
            catch_up_row(&mut o, table(s), b, a, None);
        }
        (o.db, src)
    }

    /// Known gap (see `Shape::cascades_during_copy`): a grandchild's own older event re-creates it under the old
    /// values, and the cascade that moved it is followed through the child, which the copy already has under the
    /// new values: the grandchild is never reached.
    #[test]
    #[ignore = "the engine's catch-up follows cascades through rows copied after them (reported, not fixed yet)"]
    fn known_gap_a_deeper_row_behind_a_later_copy() {
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
        let (dst, src) = catch_up_onto(&start, &copy, &stmts);
        assert_eq!(dst, src);
    }

    /// Known gap: a parent's delete, replayed, deletes a child copied after another parent took the deleted one's
    /// sku and the child followed it there.
    #[test]
    #[ignore = "the engine's catch-up follows cascades through rows copied after them (reported, not fixed yet)"]
    fn known_gap_a_unique_value_taken_again() {
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
        let (dst, src) = catch_up_onto(&start, &copy, &stmts);
        assert_eq!(dst, src);
    }
}
