//! The seeded source: transactions of statements on the model's tables (key changes and swaps; parents, children,
//! grandchildren and a tree under their foreign keys) with savepoints and partial rollbacks, and a DDL whose value
//! depends on its session's time zone and timestamp; its binlog as the server writes it: what survived a rollback to
//! a savepoint only, the savepoint statements kept inside the transaction, no cascaded child rows.

use super::db::{self, Change, Db, Row, Stmt, CHILD, GRANDCHILD, KV, NODE, NULL, PARENT};
use rand::rngs::SmallRng;
use rand::Rng;
use std::sync::OnceLock;

/// A statement the binlog carries as a query event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    Savepoint(u8),
    RollbackTo(u8),
    Release(u8),
    /// `ALTER TABLE kv ADD COLUMN c DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP`: the rows already there take the
    /// session's local time at the statement's timestamp.
    AddColumn,
}

impl Query {
    pub fn sql(self) -> String {
        match self {
            Query::Savepoint(n) => format!("SAVEPOINT `s{n}`"),
            Query::RollbackTo(n) => format!("ROLLBACK TO SAVEPOINT `s{n}`"),
            Query::Release(n) => format!("RELEASE SAVEPOINT `s{n}`"),
            Query::AddColumn => {
                "ALTER TABLE kv ADD COLUMN c DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP".into()
            }
        }
    }

    /// Whether the engine's statement classifier (`ddl::classify`, what the applier runs on every query) takes it
    /// for a row change logged as a statement, which the applier refuses inside a transaction.
    pub fn is_row_change(self) -> bool {
        static CLASSES: OnceLock<Vec<(Query, bool)>> = OnceLock::new();
        let classes = CLASSES.get_or_init(|| {
            let mut all = vec![Query::AddColumn];
            for n in 0..SAVEPOINTS_MAX {
                all.extend([Query::Savepoint(n), Query::RollbackTo(n), Query::Release(n)]);
            }
            all.into_iter()
                .map(|q| {
                    let dml = matches!(
                        ferry_engine::cdc::ddl::classify(&q.sql(), "m"),
                        Ok(ferry_engine::cdc::ddl::Statement::Dml { .. }) | Err(_)
                    );
                    (q, dml)
                })
                .collect()
        });
        classes.iter().any(|&(q, dml)| q == self && dml)
    }
}

/// An event of the model's binlog (MariaDB's shape: a GTID event opens every group, no BEGIN).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// `standalone`: the group is one statement that commits by itself (the GTID event's STANDALONE flag).
    Gtid {
        seq: u64,
        standalone: bool,
    },
    Rows {
        table: usize,
        before: Option<Row>,
        after: Option<Row>,
    },
    /// A query with the session context the server records with it (timestamp, time zone offset).
    Query {
        query: Query,
        ts_s: u32,
        tz_s: i32,
    },
    Xid,
}

/// A DDL's recorded session context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ddl {
    pub ts_s: u32,
    pub tz_s: i32,
}

/// The value `CURRENT_TIMESTAMP` gives a DATETIME column in a session at `tz_s` seconds from UTC at `ts_s`.
pub fn ddl_value(ts_s: u32, tz_s: i32) -> u64 {
    (i64::from(ts_s) + i64::from(tz_s)).max(0) as u64
}

/// The DDL's effect: the column, with `value` in every row already there.
pub fn add_column(db: &mut Db, value: u64) {
    db.kv_c = true;
    for r in db.rows[KV].values_mut() {
        r[2] = value;
    }
}

/// One binlog group (a transaction, or a statement that commits by itself) and what it did to the source, every
/// cascaded row change included (the binlog leaves those out).
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub events: Vec<Ev>,
    pub changes: Vec<Change>,
    pub ddl: Option<Ddl>,
}

impl Group {
    /// The group's effect on the source's state (a DDL under its recorded context).
    pub fn replay(&self, db: &mut Db) {
        for c in &self.changes {
            c.apply(db);
        }
        if let Some(d) = self.ddl {
            add_column(db, ddl_value(d.ts_s, d.tz_s));
        }
    }
}

/// What the source did, for the report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub savepoints: u64,
    pub rollbacks_to_savepoint: u64,
    pub cascaded_rows: u64,
    pub key_changes_under_fk: u64,
    pub ddl: u64,
}

/// Savepoint names `s0`..: at most this many at once.
const SAVEPOINTS_MAX: u8 = 3;
/// Key spaces of the tables under foreign keys (small, so values are reused and rows meet).
const FK_IDS: u64 = 10;
const SKUS: u64 = 8;
const NS: u64 = 3;

/// What a schedule writes.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub keys: u64,
    pub fk: bool,
    pub savepoint_per_mille: u32,
    /// Whether statements whose effect the family's foreign keys cascade (a delete of a row children follow, an
    /// update of columns they follow) are written now; the source refuses them otherwise (see `Shape`).
    pub cascades: bool,
}

/// Whether a statement is one the destination's FK rules follow (the engine's own rules: `cascades_on_delete`,
/// `cascade_update_columns`), whether or not rows follow it this time.
pub fn cascading(db: &Db, s: &Stmt) -> bool {
    let rules = db::rules();
    match *s {
        Stmt::Insert(..) => false,
        Stmt::Delete(t, _) => rules[t].cascades_on_delete,
        Stmt::Update(t, k, new) => db.rows[t].get(&k).is_some_and(|old| {
            rules[t]
                .cascade_update_columns
                .iter()
                .any(|&i| old[i] != new[i])
        }),
    }
}

pub struct Source {
    pub db: Db,
    pub groups: Vec<Group>,
    pub stats: Stats,
    next_value: u64,
    clock_s: u32,
}

fn pick(rng: &mut SmallRng, db: &Db, t: usize) -> Option<Row> {
    if db.rows[t].is_empty() {
        return None;
    }
    let n = db.rows[t].len();
    db.rows[t].values().nth(rng.random_range(0..n)).copied()
}

impl Source {
    pub fn new() -> Source {
        Source {
            db: Db::default(),
            groups: Vec::new(),
            stats: Stats::default(),
            next_value: 1_000_000,
            clock_s: 1_700_000_000,
        }
    }

    fn value(&mut self) -> u64 {
        self.next_value += 1;
        self.next_value
    }

    /// Rows there before P0 (never in the binlog).
    pub fn seed_rows(&mut self, rng: &mut SmallRng, w: &Workload, kv_rows: u64) {
        for v in 0..kv_rows {
            let k = rng.random_range(0..w.keys);
            self.db.rows[KV].insert(k, [k, v, NULL, NULL]);
        }
        if w.fk {
            let mut log = Vec::new();
            for _ in 0..rng.random_range(0..12) {
                let t = rng.random_range(PARENT..=NODE);
                let stmts = self.statement(rng, w, t, 0);
                for s in stmts {
                    if db::execute(&mut self.db, &s, &mut log).is_err() {
                        break;
                    }
                }
            }
        }
    }

    /// Statements on table `t` of one seeded kind (`kind` 0 inserts; a key swap is three).
    fn statement(&mut self, rng: &mut SmallRng, w: &Workload, t: usize, kind: u32) -> Vec<Stmt> {
        let v = self.value();
        let Some(old) = pick(rng, &self.db, t).filter(|_| kind > 0) else {
            return self.insert(rng, w, t, v);
        };
        let k = old[0];
        let any_id = |rng: &mut SmallRng| {
            if t == KV {
                rng.random_range(0..w.keys)
            } else {
                rng.random_range(0..FK_IDS)
            }
        };
        let mut new = old;
        match (t, kind) {
            (_, 1..=3) => {
                new[if t == KV {
                    1
                } else {
                    3.min(db::DEFS[t].columns.len() - 1)
                }] = v
            }
            (_, 4..=5) => new[0] = any_id(rng),
            (KV, 6..=7) => {
                // Two rows swap keys through a free one, in one transaction (as a gh-ost-like swap would).
                let other = pick(rng, &self.db, KV);
                let tmp = w.keys + rng.random_range(0..w.keys);
                return match other {
                    Some(o) if o[0] != k && !self.db.rows[KV].contains_key(&tmp) => vec![
                        Stmt::Update(KV, k, [tmp, old[1], old[2], NULL]),
                        Stmt::Update(KV, o[0], [k, o[1], o[2], NULL]),
                        Stmt::Update(KV, tmp, [o[0], old[1], old[2], NULL]),
                    ],
                    _ => Vec::new(),
                };
            }
            (PARENT, 6) => new[1] = rng.random_range(0..SKUS),
            (PARENT, 7) => {
                new[0] = any_id(rng);
                new[1] = rng.random_range(0..SKUS);
            }
            (CHILD | GRANDCHILD | NODE, 6..=7) => self.point(rng, t, &mut new),
            _ => return vec![Stmt::Delete(t, k)],
        }
        if new == old {
            return Vec::new();
        }
        vec![Stmt::Update(t, k, new)]
    }

    fn insert(&mut self, rng: &mut SmallRng, w: &Workload, t: usize, v: u64) -> Vec<Stmt> {
        let mut row = [NULL; 4];
        match t {
            KV => {
                row[0] = rng.random_range(0..w.keys);
                row[1] = v;
                if self.db.kv_c {
                    row[2] = u64::from(self.clock_s);
                }
            }
            PARENT => {
                row = [
                    rng.random_range(0..FK_IDS),
                    rng.random_range(0..SKUS),
                    v,
                    NULL,
                ]
            }
            _ => {
                row[0] = rng.random_range(0..FK_IDS);
                row[db::DEFS[t].columns.len() - 1] = v;
                self.point(rng, t, &mut row);
            }
        }
        vec![Stmt::Insert(t, row)]
    }

    /// Points a row's foreign key at a row its parent table has (or at nothing).
    fn point(&self, rng: &mut SmallRng, t: usize, row: &mut Row) {
        let none = rng.random_range(0..5) == 0;
        match t {
            CHILD => {
                row[1] = match pick(rng, &self.db, PARENT) {
                    Some(p) if !none => p[1],
                    _ => NULL,
                };
                row[2] = rng.random_range(0..NS);
            }
            GRANDCHILD => {
                let (s, n) = match pick(rng, &self.db, CHILD) {
                    Some(c) if !none => (c[1], c[2]),
                    _ => (NULL, NULL),
                };
                row[1] = s;
                row[2] = if s == NULL { NULL } else { n };
            }
            NODE => {
                row[1] = match pick(rng, &self.db, NODE) {
                    Some(p) if !none => p[0],
                    _ => NULL,
                };
            }
            _ => {}
        }
    }

    /// One seeded transaction of 1..5 statements, savepoint statements between them; logged when it leaves
    /// anything in the binlog.
    pub fn write(&mut self, rng: &mut SmallRng, w: &Workload) {
        self.clock_s += rng.random_range(0..3);
        let ts_s = self.clock_s;
        let mut body: Vec<Ev> = Vec::new();
        let mut changes: Vec<Change> = Vec::new();
        // Savepoints set: name, the state then, and where the binlog cache and the change log were.
        let mut savepoints: Vec<(u8, Db, usize, usize)> = Vec::new();
        for _ in 0..rng.random_range(1..=5) {
            if rng.random_range(0..1000) < w.savepoint_per_mille {
                self.savepoint(rng, &mut savepoints, &mut body, &mut changes, ts_s);
            }
            let t = if w.fk && rng.random_range(0..2) == 0 {
                rng.random_range(PARENT..=NODE)
            } else {
                KV
            };
            let kind = rng.random_range(0..10);
            for s in self.statement(rng, w, t, kind) {
                let cascades = self::cascading(&self.db, &s);
                if cascades && !w.cascades {
                    break;
                }
                let first = changes.len();
                let Ok((before, after)) = db::execute(&mut self.db, &s, &mut changes) else {
                    // The server refused it: nothing changed, nothing logged (the transaction goes on).
                    break;
                };
                self.stats.cascaded_rows += changes.len().saturating_sub(first + 1) as u64;
                if t != KV {
                    if let (Some(b), Some(a)) = (before, after) {
                        if b[0] != a[0] {
                            self.stats.key_changes_under_fk += 1;
                        }
                    }
                }
                body.push(Ev::Rows {
                    table: t,
                    before,
                    after,
                });
            }
        }
        if body.is_empty() {
            return;
        }
        let mut events = Vec::with_capacity(body.len() + 2);
        events.push(Ev::Gtid {
            seq: self.groups.len() as u64 + 1,
            standalone: false,
        });
        events.extend(body);
        events.push(Ev::Xid);
        self.groups.push(Group {
            events,
            changes,
            ddl: None,
        });
    }

    /// SAVEPOINT, ROLLBACK TO SAVEPOINT or RELEASE SAVEPOINT. A rollback to a savepoint truncates the transaction's
    /// binlog cache back to it, as MySQL and MariaDB do when only transactional tables changed: the rows after it
    /// are gone. Which of the savepoint statements themselves stay in the cache differs between servers; the model
    /// keeps them all, the hardest case for a reader that must not end the transaction at one.
    fn savepoint(
        &mut self,
        rng: &mut SmallRng,
        savepoints: &mut Vec<(u8, Db, usize, usize)>,
        body: &mut Vec<Ev>,
        changes: &mut Vec<Change>,
        ts_s: u32,
    ) {
        let query = |query| Ev::Query {
            query,
            ts_s,
            tz_s: 0,
        };
        if savepoints.is_empty()
            || (savepoints.len() < SAVEPOINTS_MAX as usize && rng.random_bool(0.5))
        {
            let name = savepoints.len() as u8;
            body.push(query(Query::Savepoint(name)));
            savepoints.push((name, self.db.clone(), body.len(), changes.len()));
            self.stats.savepoints += 1;
            return;
        }
        let i = rng.random_range(0..savepoints.len());
        let name = savepoints[i].0;
        if rng.random_bool(0.6) {
            let (_, state, rows_at, changes_at) = &savepoints[i];
            self.db = state.clone();
            let after = body.split_off(*rows_at);
            body.extend(after.into_iter().filter(|e| matches!(e, Ev::Query { .. })));
            changes.truncate(*changes_at);
            // Savepoints set after this one are gone; this one stays.
            savepoints.truncate(i + 1);
            body.push(query(Query::RollbackTo(name)));
            self.stats.rollbacks_to_savepoint += 1;
        } else {
            savepoints.truncate(i);
            body.push(query(Query::Release(name)));
        }
    }

    /// The DDL, as a statement that commits by itself, under a seeded session time zone.
    pub fn write_ddl(&mut self, rng: &mut SmallRng) {
        if self.db.kv_c {
            return;
        }
        self.clock_s += rng.random_range(0..3);
        let ddl = Ddl {
            ts_s: self.clock_s,
            tz_s: rng.random_range(-48..=56) * 900,
        };
        add_column(&mut self.db, ddl_value(ddl.ts_s, ddl.tz_s));
        self.groups.push(Group {
            events: vec![
                Ev::Gtid {
                    seq: self.groups.len() as u64 + 1,
                    standalone: true,
                },
                Ev::Query {
                    query: Query::AddColumn,
                    ts_s: ddl.ts_s,
                    tz_s: ddl.tz_s,
                },
            ],
            changes: Vec::new(),
            ddl: Some(ddl),
        });
        self.stats.ddl += 1;
    }
}

impl Default for Source {
    fn default() -> Source {
        Source::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn savepoint_statements_are_no_row_changes_to_the_engine() {
        for n in 0..SAVEPOINTS_MAX {
            for q in [Query::Savepoint(n), Query::RollbackTo(n), Query::Release(n)] {
                assert!(!q.is_row_change(), "{}", q.sql());
            }
        }
        assert!(!Query::AddColumn.is_row_change());
    }

    #[test]
    fn the_binlog_replays_to_the_source() {
        let w = Workload {
            keys: 16,
            fk: true,
            savepoint_per_mille: 400,
            cascades: true,
        };
        for seed in 0..200 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut src = Source::new();
            src.seed_rows(&mut rng, &w, 8);
            let mut db = src.db.clone();
            for i in 0..30 {
                if i == 20 {
                    src.write_ddl(&mut rng);
                }
                src.write(&mut rng, &w);
            }
            for g in &src.groups {
                g.replay(&mut db);
                // Every logged row image is a change the group made.
                for e in &g.events {
                    if let Ev::Rows {
                        table,
                        before,
                        after,
                    } = e
                    {
                        let c = Change {
                            table: *table,
                            before: *before,
                            after: *after,
                        };
                        assert!(
                            g.changes.contains(&c),
                            "seed {seed}: {c:?} logged, not made"
                        );
                    }
                }
            }
            assert_eq!(db, src.db, "seed {seed}");
        }
    }

    #[test]
    fn a_rollback_to_a_savepoint_leaves_only_what_survived() {
        let w = Workload {
            keys: 8,
            fk: false,
            savepoint_per_mille: 1000,
            cascades: true,
        };
        let mut seen = 0;
        for seed in 0..100 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut src = Source::new();
            src.write(&mut rng, &w);
            let Some(g) = src.groups.first() else {
                continue;
            };
            let rows = g
                .events
                .iter()
                .filter(|e| matches!(e, Ev::Rows { .. }))
                .count();
            if g.events.iter().any(|e| {
                matches!(
                    e,
                    Ev::Query {
                        query: Query::RollbackTo(_),
                        ..
                    }
                )
            }) {
                seen += 1;
            }
            // Each logged row is a change that survived, in the order made.
            assert_eq!(rows, g.changes.len(), "seed {seed}");
            assert!(matches!(
                g.events.first(),
                Some(Ev::Gtid {
                    standalone: false,
                    ..
                })
            ));
            assert_eq!(g.events.last(), Some(&Ev::Xid));
        }
        assert!(
            seen > 10,
            "{seen} rollbacks to a savepoint in 100 transactions"
        );
    }
}
