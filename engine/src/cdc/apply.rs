//! Applies decoded binlog items to the destination: idempotent upserts and deletes by key until the stream passes
//! P1 (catch-up), exact statements after; source transactions committed whole, with the checkpoint, in batches.

use super::compact::{Divergence, TableBatch};
use super::ddl::{self, Name};
use super::event::{Item, Reshape, RowKind};
use super::gtid::{parse_mariadb_gtid, split_mysql_gtid, GtidList, GtidSet};
use super::pipeline::{Failed, Pipeline};
use super::position::Position;
use super::scope::{excerpt, Plan, Scope};
use super::sql;
use crate::codes;
use crate::error::{Error, Result, ResultExt};
use crate::meta::{Meta, Parked};
use crate::schema::model::Table;
use crate::value::Value;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Catch-up (idempotent, before P1) or exact (every row must be where the binlog says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    CatchUp,
    Exact,
}

/// The mode an applier starts in at `from`: catch-up (idempotent by key) before P1 or when the task applies
/// idempotently throughout, exact from P1 on.
pub fn mode_at(from: &Position, p1: &Position, idempotent: bool) -> Result<Mode> {
    Ok(
        if idempotent || from.cmp_in_log(p1)? == std::cmp::Ordering::Less {
            Mode::CatchUp
        } else {
            Mode::Exact
        },
    )
}

/// Whether a transaction that ends at `at` takes catch-up into exact mode (the batch commits there first).
pub fn enters_exact(mode: Mode, at: &Position, p1: &Position, idempotent: bool) -> Result<bool> {
    Ok(!idempotent && mode == Mode::CatchUp && at.cmp_in_log(p1)?.is_ge())
}

/// The pending DDL mark of the statement at `at`, if the metadata holds one: the index of the statement of its plan
/// that was about to run and the catalogue fingerprint taken before it (None for a mark written without one).
fn pending_mark(mark: Option<&str>, at: &str) -> Option<(usize, Option<String>)> {
    let mark = mark?;
    if mark == at {
        return Some((0, None));
    }
    let rest = mark.strip_prefix(at)?.strip_prefix('|')?;
    let (i, fp) = rest.split_once('|')?;
    Some((i.parse().ok()?, Some(fp.to_string())))
}

/// The session variables a replayed DDL may set from the source's context, restored after it.
const CONTEXT_VARIABLES: [&str; 8] = [
    "sql_mode",
    "time_zone",
    "foreign_key_checks",
    "explicit_defaults_for_timestamp",
    "character_set_client",
    "collation_connection",
    "collation_server",
    "collation_database",
];

/// A statement of the stream outside any transaction, with what is needed to replay it as the source ran it.
struct Statement<'a> {
    db: &'a str,
    sql: &'a str,
    raw: &'a [u8],
    session: &'a super::session::SessionContext,
}

/// Rows of one table and one operation, applied with one statement (or one per row for keyless tables).
#[derive(Debug)]
struct Run {
    table: Arc<Table>,
    op: Op,
    /// After images (upsert, insert, update) or before images (delete).
    rows: Vec<Vec<Value>>,
    /// Before images of updates in exact mode, to check that the rows exist.
    before: Vec<Vec<Value>>,
    bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Upsert,
    Insert,
    Update,
    Delete,
    /// Catch-up: the old row of a key change leaves its key. The source changed the row, it did not delete it, so
    /// no ON DELETE rule follows (children of an unchanged `sku` stay where they are).
    Displace,
}

/// What a queued exact-mode statement was, to report it when it fails.
enum Tag {
    /// Session settings, transaction control, metadata.
    Session,
    Rows {
        table: Arc<Table>,
        op: Op,
        keys: Vec<Vec<Value>>,
        rows: Vec<Vec<Value>>,
    },
}

/// Counters of one applier's life.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ApplyStats {
    pub transactions: u64,
    pub rows: u64,
    pub commits: u64,
    pub parked: u64,
}

/// Row events, and bytes of row images, held in the per-key batches before they are written (a transaction of
/// millions of rows streams through in pieces).
const BATCHED_EVENTS_MAX: usize = 5_000;
const BATCHED_BYTES_MAX: usize = 8 << 20;

/// Apply rates (transactions/s, rows/s) are measured over windows of this length and stored with the checkpoint.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// Rows per statement, at most; and bytes of row images buffered before a statement is sent.
const RUN_ROWS_MAX: usize = 1_000;
const RUN_BYTES_MAX: usize = 2 << 20;

/// GTID bookkeeping of the checkpoint.
#[derive(Debug, Clone)]
enum Gtids {
    MySql(GtidSet),
    MariaDb(GtidList),
}

pub struct Applier {
    conn: Conn,
    meta: Meta,
    mode: Mode,
    p1: Position,
    in_tx: bool,
    /// Between a source transaction's GTID and its commit.
    in_source_tx: bool,
    /// Rows of a source transaction that has not ended yet are in the open destination transaction: it must not
    /// commit until that source transaction ends (a reader would see half of it, a resume would skip the rest).
    partial: bool,
    /// The position the last destination COMMIT recorded (what a restart resumes from).
    committed: Position,
    run: Option<Run>,
    /// Exact mode: statements queued for one round trip (sent when full and at every commit).
    pipeline: Pipeline<Tag>,
    /// Exact mode: the net changes per key of tables whose rows commute (see `compact`), and the row events
    /// they hold.
    batches: HashMap<Name, (Arc<Table>, TableBatch)>,
    batched_events: usize,
    batched_bytes: usize,
    /// Tables whose rows a foreign key cascade changes (children of a CASCADE / SET NULL parent): their rows must
    /// be applied in order with the parent's.
    cascade_children: HashSet<Name>,
    /// Every tracked table under its destination name, as rows are applied to it (for following cascades down).
    by_destination: HashMap<Name, Arc<Table>>,
    /// The tables tracked and the databases selected whole (what DDL may concern).
    scope: Scope,
    /// The shape of every tracked table as of `at` (DDL changes it).
    shapes: HashMap<Name, Arc<Table>>,
    /// Metadata statements that go into the next checkpoint's transaction (table states, warnings).
    extra: Vec<String>,
    /// The DDL sent to the destination before a crash whose checkpoint was never written (`file:pos`).
    ddl_pending: Option<String>,
    /// Conflict mode ignore_and_proceed: the destination had rows of its own, so every change is applied
    /// idempotently (catch-up) for the whole task; exact mode is never entered.
    idempotent: bool,
    /// `[mapping]` and `objects.columns`, and each tracked table under its destination names (for the source
    /// shape it was made from).
    names: crate::schema::model::NameMap,
    on_destination: HashMap<Name, (Arc<Table>, Arc<Table>)>,
    /// Apply rates are measured over windows of this length.
    window: (Instant, u64, u64),
    /// End of the last source transaction seen whole (the next checkpoint).
    at: Position,
    gtids: Gtids,
    current_gtid: String,
    /// Source transactions and rows in the open destination transaction.
    txns_open: u64,
    rows_open: u64,
    last_ts: u32,
    batch_rows: usize,
    parked: HashSet<(String, String, String)>,
    /// Catch-up: the tables (destination names) a replayed cascade may have changed rows of, recorded durably with
    /// the checkpoint; re-copied from a source snapshot when catch-up reaches P1 (see `recopy`).
    reached: HashSet<Name>,
    /// After that round: its snapshot (P1, moved there) and the tables it re-copied (destination names), whose rows
    /// are left alone for the source transactions the snapshot holds.
    recopied: Option<(Position, HashSet<Name>)>,
    /// Catch-up reached P1 with tables to re-copy: the batch is committed, and sync runs the round before it reads
    /// on.
    recopy_due: bool,
    pub stats: ApplyStats,
}

impl Applier {
    /// An applier resuming after `from` (the checkpoint, or P0) on a destination session set up for writing;
    /// `tables` are the tracked tables' shapes as of `from`.
    #[allow(clippy::too_many_arguments)]
    pub async fn new(
        mut conn: Conn,
        meta: Meta,
        from: Position,
        p1: Position,
        batch_rows: usize,
        scope: Scope,
        tables: &[Table],
        ddl_pending: Option<String>,
        idempotent: bool,
        names: crate::schema::model::NameMap,
    ) -> Result<Applier> {
        let mode = mode_at(&from, &p1, idempotent)?;
        let gtids = match &from {
            Position::MySql { gtid_set, .. } => Gtids::MySql(GtidSet::parse(gtid_set)?),
            Position::MariaDb { gtid_list, .. } => Gtids::MariaDb(GtidList::parse(gtid_list)?),
        };
        let parked = meta
            .parked(&mut conn)
            .await?
            .into_iter()
            .map(|p| (p.db, p.name, p.key_json))
            .collect();
        let recorded = meta.recopy(&mut conn).await?;
        let states: Vec<super::recopy::Recorded> = recorded.iter().map(Into::into).collect();
        let on_destination = |db: &str, name: &str| Name::new(names.db(db), names.table(db, name));
        let reached: HashSet<Name> = if idempotent {
            HashSet::new()
        } else {
            recorded
                .iter()
                .map(|r| on_destination(&r.db, &r.name))
                .collect()
        };
        let recopied = (!idempotent && super::recopy::round_done(&states, &p1))
            .then(|| (p1.clone(), reached.clone()));
        let mut applier = Applier {
            conn,
            meta,
            mode,
            p1,
            in_tx: false,
            in_source_tx: false,
            partial: false,
            committed: from.clone(),
            run: None,
            pipeline: Pipeline::default(),
            batches: HashMap::new(),
            batched_events: 0,
            batched_bytes: 0,
            cascade_children: HashSet::new(),
            by_destination: HashMap::new(),
            scope,
            shapes: tables
                .iter()
                .map(|t| (Name::new(&t.db, &t.name), Arc::new(t.clone())))
                .collect(),
            extra: Vec::new(),
            ddl_pending,
            idempotent,
            names,
            on_destination: HashMap::new(),
            window: (Instant::now(), 0, 0),
            at: from,
            gtids,
            current_gtid: String::new(),
            txns_open: 0,
            rows_open: 0,
            last_ts: 0,
            batch_rows,
            parked,
            reached,
            recopied,
            recopy_due: false,
            stats: ApplyStats::default(),
        };
        applier.refresh_cascade_children();
        Ok(applier)
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The end of the last source transaction applied or being applied.
    pub fn position(&self) -> &Position {
        &self.at
    }

    /// Source transactions applied but not committed yet.
    pub fn pending(&self) -> u64 {
        self.txns_open
    }

    /// Whether part of a source transaction is applied and its end not seen yet: nothing can commit until it is.
    pub fn mid_transaction(&self) -> bool {
        self.partial
    }

    /// The checkpoint the destination holds: where a restart resumes.
    pub fn committed(&self) -> &Position {
        &self.committed
    }

    /// Catch-up reached P1 after following cascades: the batch is committed, and nothing more may be applied until
    /// sync ran the re-copy round (see `recopy`).
    pub fn recopy_due(&self) -> bool {
        self.recopy_due
    }

    /// Between the re-copy round and its snapshot's position: the destination holds the re-copied tables as of
    /// the snapshot and the others as of the checkpoint, so a drain goes on to the snapshot.
    pub fn before_snapshot(&self) -> Result<bool> {
        match &self.recopied {
            Some((s, _)) => super::recopy::in_snapshot(&self.at, s),
            None => Ok(false),
        }
    }

    /// Whether rows of `t` (destination names) in the source transaction being applied are left alone: the round
    /// re-copied `t` from a snapshot that holds the transaction already.
    fn in_snapshot(&self, t: &Name) -> Result<bool> {
        match &self.recopied {
            Some((s, tables)) if tables.contains(t) => super::recopy::in_snapshot(&self.at, s),
            _ => Ok(false),
        }
    }

    /// Catch-up before the round: a cascade from `parent` is being followed through rows that may be copies from
    /// after it; the tables it may change are recorded (with the next checkpoint) for the round.
    fn record_reach(&mut self, parent: &Table, changes: &[(Vec<Value>, Option<Vec<Value>>)]) {
        if self.idempotent || self.mode != Mode::CatchUp || self.recopied.is_some() {
            return;
        }
        let mut reach = BTreeSet::new();
        for (old, new) in changes {
            let change = super::recopy::Change::between(old, new.as_deref());
            reach.extend(super::recopy::reach(parent, change, |n| {
                self.by_destination.get(n).map(|t| t.as_ref())
            }));
        }
        for n in reach {
            if self.reached.contains(&n) {
                continue;
            }
            let db = self.names.source_db(&n.db);
            let name = self.names.source_table(&db, &n.name);
            tracing::info!(table = %n, at = %self.at, "catch-up follows a foreign key cascade into the table: it is re-copied from a source snapshot at P1");
            self.extra.push(
                self.meta
                    .recopy_reached_sql(&db, &name, &self.at.to_string()),
            );
            self.reached.insert(n);
        }
    }

    /// Applies one item; `idle` says nothing else is waiting, so a finished batch should commit now. For a
    /// statement outside a transaction it returns the shape changes the reader must make before decoding on.
    pub async fn apply(&mut self, item: Item, idle: bool) -> Result<Option<Vec<Reshape>>> {
        match item {
            Item::Begin { gtid } => {
                self.current_gtid = gtid;
                self.in_source_tx = true;
            }
            Item::Rows { table, kind, rows } => {
                let table = self.destination_table(&table);
                self.partial = true;
                if self.in_snapshot(&Name::new(&table.db, &table.name))? {
                    // The re-copy read this table after the transaction: its rows show it already.
                    return Ok(None);
                }
                self.begin().await?;
                for (before, after) in rows {
                    self.row(&table, kind, before, after).await?;
                }
            }
            Item::Commit { file, end, ts } => {
                self.end_transaction(&file, end, ts)?;
                let passed_p1 = enters_exact(self.mode, &self.at, &self.p1, self.idempotent)?;
                if idle || passed_p1 || self.rows_open >= self.batch_rows as u64 {
                    self.commit().await?;
                }
                if passed_p1 {
                    if super::recopy::due_at_p1(
                        !self.reached.is_empty(),
                        self.recopied.is_some(),
                        self.idempotent,
                    ) {
                        tracing::info!(at = %self.at, tables = self.reached.len(), "catch-up reached P1 after following foreign key cascades: the tables they reached are re-copied first");
                        self.recopy_due = true;
                    } else {
                        self.enter_exact().await?;
                    }
                }
            }
            Item::Query {
                db,
                sql,
                raw,
                session,
                file,
                end,
                ts,
                in_transaction,
                opens_transaction: group_continues,
            } => {
                if in_transaction {
                    // SAVEPOINT and the like pass; a row change logged as a statement is refused.
                    let stmt = self.classify(&sql, &db)?;
                    if matches!(stmt, ddl::Statement::Dml { .. }) {
                        self.scope.plan(&stmt, &sql, &db)?;
                    }
                    return Ok(None);
                }
                if self.partial {
                    // A statement that commits by itself cannot come between a transaction's rows and its end:
                    // the stream's transaction boundaries were misread, and going on could split a transaction.
                    return Err(Error::definite(
                        &codes::CDC_DECODE,
                        format!(
                            "{file}:{end}: a statement outside any transaction (`{}`) arrived while a transaction's rows were open",
                            excerpt(&sql)
                        ),
                    ));
                }
                self.commit().await?;
                let source = Statement {
                    db: &db,
                    sql: &sql,
                    raw: &raw,
                    session: &session,
                };
                let (changes, opens_transaction) = self.statement(&source, &file, end).await?;
                if !opens_transaction && !group_continues {
                    self.end_transaction(&file, end, ts)?;
                    self.commit().await?;
                }
                return Ok(Some(changes));
            }
            Item::Rotate { .. } => {}
            Item::Skip { file, end } => {
                if !self.in_source_tx {
                    self.at = self.at.moved_to(&file, end);
                }
            }
            Item::Idle => {
                if idle {
                    self.commit().await?;
                }
            }
        }
        Ok(None)
    }

    /// The destination tables some tracked table's CASCADE / SET NULL foreign keys change (names as written,
    /// `[mapping]` applied, like the tables rows are applied to).
    fn refresh_cascade_children(&mut self) {
        let mapped: Vec<Table> = self
            .shapes
            .values()
            .map(|t| t.mapped(&self.names))
            .collect();
        self.cascade_children = mapped
            .iter()
            .flat_map(|t| t.followers.iter().map(|f| Name::new(&f.db, &f.table)))
            .collect();
        self.by_destination = mapped
            .into_iter()
            .map(|t| (Name::new(&t.db, &t.name), Arc::new(t)))
            .collect();
    }

    /// The table under its destination names (`[mapping]`), made once per source shape.
    fn destination_table(&mut self, source: &Arc<Table>) -> Arc<Table> {
        if self.names.is_empty() {
            return source.clone();
        }
        let key = Name::new(&source.db, &source.name);
        if let Some((s, d)) = self.on_destination.get(&key) {
            if Arc::ptr_eq(s, source) {
                return d.clone();
            }
        }
        let d = Arc::new(source.mapped(&self.names));
        self.on_destination.insert(key, (source.clone(), d.clone()));
        d
    }

    /// Commits the open batch with its checkpoint (nothing to do when no source transaction finished since). A
    /// destination transaction holds whole source transactions only: while one is partly applied this does nothing,
    /// and the commit comes at that transaction's end (or never, if the run stops first: the server rolls the
    /// destination transaction back when the session ends, and a restart reads the source transaction again).
    pub async fn commit(&mut self) -> Result<()> {
        if self.txns_open == 0 || self.partial {
            return Ok(());
        }
        self.flush().await?;
        self.flush_batches().await?;
        self.begin().await?;
        // Table states and warnings and the checkpoint go with the queued rows in one round trip.
        for sql in std::mem::take(&mut self.extra) {
            self.pipeline.push(sql, None, Tag::Session);
        }
        let (since, t0, r0) = self.window;
        let (t, r) = (
            self.stats.transactions + self.txns_open,
            self.stats.rows + self.rows_open,
        );
        let rates = (since.elapsed() >= RATE_WINDOW).then(|| {
            let secs = since.elapsed().as_secs_f64();
            ((t - t0) as f64 / secs, (r - r0) as f64 / secs)
        });
        let sql = self.meta.checkpoint_sql(
            &self.at,
            self.last_ts,
            self.txns_open,
            self.rows_open,
            rates,
        );
        self.pipeline.push(sql, Some(1), Tag::Session);
        // Every answer is checked before COMMIT is sent: a statement that affected the wrong rows does not stop
        // the server from running the ones after it.
        self.send()
            .await
            .map_err(|e| e.context("applying a batch with its checkpoint"))?;
        crate::failpoint::hit(crate::failpoint::names::APPLY_BEFORE_COMMIT).await?;
        self.conn
            .query_drop("COMMIT")
            .await
            .ctx("committing a batch")?;
        crate::failpoint::hit(crate::failpoint::names::APPLY_BATCH_COMMITTED).await?;
        if rates.is_some() {
            self.window = (Instant::now(), t, r);
        }
        self.ddl_pending = None;
        self.committed = self.at.clone();
        self.in_tx = false;
        self.stats.transactions += self.txns_open;
        self.stats.rows += self.rows_open;
        self.stats.commits += 1;
        self.txns_open = 0;
        self.rows_open = 0;
        Ok(())
    }

    /// Ends the destination session (an open batch is rolled back by the server).
    pub async fn close(self) {
        let _ = self.conn.disconnect().await;
    }

    fn end_transaction(&mut self, file: &str, end: u64, ts: u32) -> Result<()> {
        self.in_source_tx = false;
        self.partial = false;
        let gtid = std::mem::take(&mut self.current_gtid);
        match &mut self.gtids {
            Gtids::MySql(set) if !gtid.is_empty() => {
                if let Some((sid, gno)) = split_mysql_gtid(&gtid) {
                    set.add(sid, gno);
                }
            }
            Gtids::MariaDb(list) if !gtid.is_empty() => {
                let (d, s, n) = parse_mariadb_gtid(&gtid)?;
                list.set(d, s, n);
            }
            _ => {}
        }
        self.at = match &self.gtids {
            Gtids::MySql(set) => Position::MySql {
                file: file.to_string(),
                pos: end,
                gtid_set: set.to_string(),
            },
            Gtids::MariaDb(list) => Position::MariaDb {
                file: file.to_string(),
                pos: end,
                gtid_list: list.to_string(),
            },
        };
        self.txns_open += 1;
        self.last_ts = ts;
        Ok(())
    }

    async fn begin(&mut self) -> Result<()> {
        if !self.in_tx {
            if self.mode == Mode::Exact {
                self.pipeline.push("BEGIN".into(), None, Tag::Session);
            } else {
                self.conn.query_drop("BEGIN").await.ctx("destination")?;
            }
            self.in_tx = true;
        }
        Ok(())
    }

    /// Sends the queued statements; a statement that fails or affects the wrong rows becomes the coded error
    /// that names the rows involved.
    async fn send(&mut self) -> Result<()> {
        match self.pipeline.send(&mut self.conn).await {
            Ok(()) => Ok(()),
            Err(Failed::Server { tag, error }) => {
                let Some(Tag::Rows {
                    table,
                    op,
                    keys: _,
                    rows,
                }) = tag
                else {
                    return Err(error.context("destination"));
                };
                if error.mysql_errno() == Some(1062) && matches!(op, Op::Insert | Op::Update) {
                    // A unique key other than the primary key names both rows (CDC-006); else the key is taken.
                    let key = sql::key_of(&table)?;
                    self.check_uniques(&table, &key, &rows).await?;
                    // The keys the rows were to have (an update may change its row's key).
                    let keys: Vec<Vec<Value>> =
                        rows.iter().map(|r| sql::project(r, &key)).collect();
                    let found = self.existing(&table, &key, &keys).await?;
                    let present: Vec<String> = keys
                        .iter()
                        .filter(|k| found.contains(&key_json(k)))
                        .take(5)
                        .map(|k| shown(&table, &key, k))
                        .collect();
                    return Err(Error::definite(
                        &codes::CDC_DIVERGED,
                        format!(
                            "{}: row(s) {} to {} already on the destination (at {})",
                            table.display_name(),
                            present.join(", "),
                            if op == Op::Insert {
                                "insert"
                            } else {
                                "update to"
                            },
                            self.at
                        ),
                    ));
                }
                Err(error.context(table.display_name()))
            }
            Err(Failed::Affected { tag, affected, .. }) => match tag {
                Tag::Rows {
                    table, op, keys, ..
                } => {
                    let what = match op {
                        Op::Delete | Op::Displace => "delete",
                        Op::Update => "update",
                        Op::Insert | Op::Upsert => "insert",
                    };
                    Err(self.diverged(&table, what, &keys, affected).await)
                }
                // Only the checkpoint has an expected count among session statements: it is fenced.
                Tag::Session => {
                    let _ = self.conn.query_drop("ROLLBACK").await;
                    self.in_tx = false;
                    Err(self.meta.fenced_error(&mut self.conn, "checkpoint").await)
                }
            },
        }
    }

    /// Exact mode: the run's statements are queued (order kept), each with the rows it must affect. Updates are
    /// one `UPDATE ... WHERE key` per row, so a unique key never lets an upsert touch another row; the server's
    /// duplicate-key refusal is explained when it comes (see `send`).
    async fn queue_exact(&mut self, run: Run) -> Result<()> {
        let t = run.table.clone();
        let key = sql::key_of(&t)?;
        let keys: Vec<Vec<Value>> = run.rows.iter().map(|r| sql::project(r, &key)).collect();
        match run.op {
            Op::Delete | Op::Displace => {
                let distinct: HashSet<String> = keys.iter().map(|k| key_json(k)).collect();
                // The source cascaded this delete to child rows without logging them; the destination is the
                // source at this point, so FK checks on for this statement let it cascade the same way.
                let cascades = run.op == Op::Delete && t.cascades_on_delete();
                if cascades {
                    self.pipeline.push(
                        "SET SESSION foreign_key_checks = 1".into(),
                        None,
                        Tag::Session,
                    );
                }
                self.pipeline.push(
                    sql::delete_keys(&t, &keys)?,
                    Some(distinct.len() as u64),
                    Tag::Rows {
                        table: t.clone(),
                        op: Op::Delete,
                        keys,
                        rows: run.rows,
                    },
                );
                if cascades {
                    self.pipeline.push(
                        "SET SESSION foreign_key_checks = 0".into(),
                        None,
                        Tag::Session,
                    );
                }
            }
            Op::Update => {
                for (before, after) in run.before.iter().zip(run.rows) {
                    let bk = sql::project(before, &key);
                    self.pipeline.push(
                        sql::update_row(&t, &bk, &after)?,
                        Some(1),
                        Tag::Rows {
                            table: t.clone(),
                            op: Op::Update,
                            keys: vec![bk],
                            rows: vec![after],
                        },
                    );
                }
            }
            Op::Insert | Op::Upsert => {
                let rows: Vec<&[Value]> = run.rows.iter().map(Vec::as_slice).collect();
                let stmt = sql::insert(&t, &rows)?;
                let n = rows.len() as u64;
                self.pipeline.push(
                    stmt,
                    Some(n),
                    Tag::Rows {
                        table: t.clone(),
                        op: Op::Insert,
                        keys,
                        rows: run.rows,
                    },
                );
            }
        }
        if self.pipeline.is_full() {
            self.send().await?;
        }
        Ok(())
    }

    /// Catch-up is over: every copied row has been brought up to date. Rows still parked were never claimed by a
    /// later event, so two rows really hold the same unique value: report them.
    async fn enter_exact(&mut self) -> Result<()> {
        let parked = self.meta.parked(&mut self.conn).await?;
        if let Some(p) = parked.first() {
            return Err(Error::definite(
                &codes::CDC_UNIQUE_CONFLICT,
                format!(
                    "{} row(s) displaced during catch-up were never re-created by the binlog; first: {}.{} key {} \
                     (row {}) displaced by {} at {}; the rows are kept in {}.parked",
                    parked.len(),
                    p.db,
                    p.name,
                    p.key_json,
                    p.row_json,
                    p.displaced_by,
                    p.at_position,
                    self.meta.schema
                ),
            ));
        }
        tracing::info!(at = %self.at, "catch-up done: exact mode");
        self.mode = Mode::Exact;
        Ok(())
    }

    async fn row(
        &mut self,
        table: &Arc<Table>,
        kind: RowKind,
        before: Option<Vec<Value>>,
        after: Option<Vec<Value>>,
    ) -> Result<()> {
        self.rows_open += 1;
        let missing = || missing_image(table);
        let exact = self.mode == Mode::Exact;
        if table.key.is_none() {
            return self.keyless(table, kind, before, after).await;
        }
        if self.commutes(table) {
            return self.batch_row(table, kind, before, after).await;
        }
        match kind {
            RowKind::Insert => {
                let after = after.ok_or_else(missing)?;
                let op = if exact { Op::Insert } else { Op::Upsert };
                self.push(table, op, after, None).await
            }
            RowKind::Delete => {
                let before = before.ok_or_else(missing)?;
                self.push(table, Op::Delete, before, None).await
            }
            RowKind::Update => {
                let (before, after) = (before.ok_or_else(missing)?, after.ok_or_else(missing)?);
                let followed = table.cascade_update_columns();
                if !followed.is_empty()
                    && sql::project(&before, &followed) != sql::project(&after, &followed)
                {
                    return self.cascading_update(table, before, after).await;
                }
                let key = sql::key_of(table)?;
                let same_key = sql::project(&before, &key) == sql::project(&after, &key);
                match (same_key, exact) {
                    (true, false) => self.push(table, Op::Upsert, after, None).await,
                    // A key change too is one UPDATE by the old key, FK checks off: a DELETE + INSERT would run
                    // the children's ON DELETE rules, which the source never ran.
                    (_, true) => self.push(table, Op::Update, after, Some(before)).await,
                    (false, false) => {
                        self.push(table, Op::Displace, before, None).await?;
                        self.push(table, Op::Upsert, after, None).await
                    }
                }
            }
        }
    }

    /// Whether a table's row events may be merged per key and reordered against other tables' (see `compact`).
    fn commutes(&self, t: &Table) -> bool {
        t.key.is_some()
            && t.uniques.is_empty()
            && t.followers.is_empty()
            && !self.cascade_children.contains(&Name::new(&t.db, &t.name))
    }

    /// A table whose rows commute: the event joins the table's per-key batch (either mode; catch-up writes the
    /// net effect without the existence check).
    async fn batch_row(
        &mut self,
        table: &Arc<Table>,
        kind: RowKind,
        before: Option<Vec<Value>>,
        after: Option<Vec<Value>>,
    ) -> Result<()> {
        let missing = || missing_image(table);
        let key = sql::key_of(table)?;
        let entry = self
            .batches
            .entry(Name::new(&table.db, &table.name))
            .or_insert_with(|| (table.clone(), TableBatch::new(key.clone())));
        let bytes = entry.1.bytes;
        let r = match kind {
            RowKind::Insert => entry.1.insert(after.ok_or_else(missing)?),
            RowKind::Delete => entry.1.delete(before.ok_or_else(missing)?),
            RowKind::Update => entry
                .1
                .update(before.ok_or_else(missing)?, after.ok_or_else(missing)?),
        };
        self.batched_bytes += entry.1.bytes.saturating_sub(bytes);
        if let Err(c) = r {
            return Err(Error::definite(
                &codes::CDC_DIVERGED,
                format!(
                    "{}: {} {} (at {}): the binlog contradicts itself",
                    table.display_name(),
                    c.what,
                    shown(table, &key, &c.key),
                    self.at
                ),
            ));
        }
        self.batched_events += 1;
        if self.batched_events >= BATCHED_EVENTS_MAX || self.batched_bytes >= BATCHED_BYTES_MAX {
            self.flush_batches().await?;
        }
        Ok(())
    }

    /// Writes the per-key batches: in exact mode, for each table one locking read proves every key is present or
    /// absent as the batch's first event for it says; then one DELETE and multi-row upserts carry the net effect
    /// (idempotent as they are, so catch-up needs no read).
    async fn flush_batches(&mut self) -> Result<()> {
        if self.batched_events == 0 {
            return Ok(());
        }
        let exact = self.mode == Mode::Exact;
        self.batched_events = 0;
        self.batched_bytes = 0;
        // The read must run inside the destination transaction (BEGIN may still be queued).
        self.begin().await?;
        self.send().await?;
        let tables: Vec<Name> = self.batches.keys().cloned().collect();
        for name in tables {
            let Some((t, batch)) = self.batches.get_mut(&name) else {
                continue;
            };
            if batch.is_empty() {
                continue;
            }
            let t = t.clone();
            let net = batch.take();
            let key = sql::key_of(&t)?;
            let mut checked: Vec<&Vec<Value>> = net.keys_to_check(exact);
            let mut found = HashSet::new();
            while !checked.is_empty() {
                let part: Vec<Vec<Value>> = checked
                    .drain(..checked.len().min(RUN_ROWS_MAX))
                    .cloned()
                    .collect();
                let q = format!(
                    "{} FOR UPDATE",
                    sql::select_where(&t, &key, &sql::where_tuples(&t, &key, &part)?)
                );
                let cols: Vec<&crate::schema::model::Column> =
                    key.iter().map(|&i| &t.columns[i]).collect();
                // Binary protocol: keys decode to the same values as the binlog's (see `existing`).
                let rows: Vec<mysql_async::Row> =
                    self.conn.exec(q, ()).await.ctx(t.display_name())?;
                for r in rows {
                    found.insert(key_json(&crate::copy::plan::decode_row(r, &cols)?));
                }
            }
            match net.divergence(exact, |k| found.contains(&key_json(k))) {
                Some(Divergence::Missing(k)) => {
                    return Err(Error::definite(
                        &codes::CDC_DIVERGED,
                        format!(
                            "{}: row {} to update or delete is not on the destination (before {})",
                            t.display_name(),
                            shown(&t, &key, &k),
                            self.at
                        ),
                    ))
                }
                Some(Divergence::Present(k)) => {
                    return Err(Error::definite(
                        &codes::CDC_DIVERGED,
                        format!(
                            "{}: row {} to insert is already on the destination (before {})",
                            t.display_name(),
                            shown(&t, &key, &k),
                            self.at
                        ),
                    ))
                }
                None => {}
            }
            let (deletes, upserts) = net.into_writes(exact);
            for part in deletes.chunks(RUN_ROWS_MAX) {
                self.pipeline.push(
                    sql::delete_keys(&t, part)?,
                    exact.then_some(part.len() as u64),
                    Tag::Rows {
                        table: t.clone(),
                        op: Op::Delete,
                        keys: part.to_vec(),
                        rows: Vec::new(),
                    },
                );
            }
            let mut start = 0;
            while start < upserts.len() {
                let mut end = start;
                let mut bytes = 0;
                while end < upserts.len() && end - start < RUN_ROWS_MAX && bytes < RUN_BYTES_MAX {
                    bytes += upserts[end]
                        .iter()
                        .map(Value::literal_len_hint)
                        .sum::<usize>();
                    end += 1;
                }
                let rows: Vec<&[Value]> = upserts[start..end].iter().map(Vec::as_slice).collect();
                let stmt = sql::upsert(&t, &rows)?;
                self.pipeline.push(
                    stmt,
                    None,
                    Tag::Rows {
                        table: t.clone(),
                        op: Op::Upsert,
                        keys: upserts[start..end]
                            .iter()
                            .map(|r| sql::project(r, &key))
                            .collect(),
                        rows: Vec::new(),
                    },
                );
                if self.pipeline.is_full() {
                    self.send().await?;
                }
                start = end;
            }
        }
        // Emptied; a table's next events start a batch with its shape as of then (DDL may have changed it).
        self.batches.clear();
        Ok(())
    }

    async fn push(
        &mut self,
        table: &Arc<Table>,
        op: Op,
        row: Vec<Value>,
        before: Option<Vec<Value>>,
    ) -> Result<()> {
        let same = self
            .run
            .as_ref()
            .is_some_and(|r| r.op == op && Arc::ptr_eq(&r.table, table));
        if !same {
            self.flush().await?;
        }
        let run = self.run.get_or_insert_with(|| Run {
            table: table.clone(),
            op,
            rows: Vec::new(),
            before: Vec::new(),
            bytes: 0,
        });
        run.bytes += row.iter().map(Value::literal_len_hint).sum::<usize>();
        run.rows.push(row);
        if let Some(b) = before {
            run.before.push(b);
        }
        if run.rows.len() >= RUN_ROWS_MAX || run.bytes >= RUN_BYTES_MAX {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends the buffered run.
    async fn flush(&mut self) -> Result<()> {
        let Some(run) = self.run.take() else {
            return Ok(());
        };
        if self.mode == Mode::Exact {
            return self.queue_exact(run).await;
        }
        // Catch-up: each statement runs now (the unique-value check reads the destination before writing).
        let t = run.table.clone();
        let key = sql::key_of(&t)?;
        let keys: Vec<Vec<Value>> = run.rows.iter().map(|r| sql::project(r, &key)).collect();
        match run.op {
            Op::Delete | Op::Displace => {
                // The source cascaded a delete to child rows without logging them. Children may be copies
                // from later (FK checks could refuse the delete), so they are made to follow explicitly, every
                // level down. A displaced row was not deleted on the source: nothing follows it.
                self.conn
                    .query_drop(sql::delete_keys(&t, &keys)?)
                    .await
                    .ctx(t.display_name())?;
                if run.op == Op::Delete && t.cascades_on_delete() {
                    let changes = run.rows.iter().map(|r| (r.clone(), None)).collect();
                    self.follow_cascades(&t, changes).await?;
                }
            }
            Op::Update | Op::Insert => {
                return Err(Error::definite(
                    &codes::DATA_DECODE,
                    format!(
                        "{}: exact-mode statement in catch-up mode",
                        t.display_name()
                    ),
                ))
            }
            Op::Upsert => {
                self.check_uniques(&t, &key, &run.rows).await?;
                let rows: Vec<&[Value]> = run.rows.iter().map(Vec::as_slice).collect();
                self.conn
                    .query_drop(sql::upsert(&t, &rows)?)
                    .await
                    .ctx(t.display_name())?;
            }
        }
        if !self.parked.is_empty() {
            for k in &keys {
                let id = (t.db.clone(), t.name.clone(), key_json(k));
                if self.parked.remove(&id) {
                    // A later event for the displaced row's key: its parked image is superseded.
                    let sql = self.meta.unpark_sql(&id.0, &id.1, &id.2);
                    self.conn
                        .query_drop(sql)
                        .await
                        .ctx("releasing a parked row")?;
                }
            }
        }
        Ok(())
    }

    /// Keys (as JSON) among `keys` that exist on the destination.
    async fn existing(
        &mut self,
        t: &Table,
        key: &[usize],
        keys: &[Vec<Value>],
    ) -> Result<HashSet<String>> {
        let cols: Vec<&crate::schema::model::Column> = key.iter().map(|&i| &t.columns[i]).collect();
        let q = sql::select_where(t, key, &sql::where_tuples(t, key, keys)?);
        let rows: Vec<mysql_async::Row> = self.conn.exec(q, ()).await.ctx(t.display_name())?;
        let mut out = HashSet::new();
        for r in rows {
            out.insert(key_json(&crate::copy::plan::decode_row(r, &cols)?));
        }
        Ok(out)
    }

    async fn diverged(
        &mut self,
        t: &Table,
        what: &str,
        keys: &[Vec<Value>],
        affected: u64,
    ) -> Error {
        let key = sql::key_of(t).unwrap_or_default();
        let found = self.existing(t, &key, keys).await.unwrap_or_default();
        let missing: Vec<String> = keys
            .iter()
            .filter(|k| !found.contains(&key_json(k)))
            .take(5)
            .map(|k| shown(t, &key, k))
            .collect();
        Error::definite(
            &codes::CDC_DIVERGED,
            format!(
                "{}: {what} of {} row(s) affected {affected}; not on the destination: {} (at {})",
                t.display_name(),
                keys.len(),
                missing.join(", "),
                self.at
            ),
        )
    }

    /// Before writing `rows` (in order), finds destination rows that hold one of their unique values under another
    /// key. Catch-up: such a row is a copy from after the event being replayed, and a later event re-creates it;
    /// it is parked (kept in the metadata) and removed. Exact: the destination diverged; stop and name both rows.
    async fn check_uniques(
        &mut self,
        t: &Arc<Table>,
        key: &[usize],
        rows: &[Vec<Value>],
    ) -> Result<()> {
        if t.uniques.is_empty() {
            return Ok(());
        }
        // Destination rows that hold any of the unique values, or share a key with the run.
        let mut cond = Vec::new();
        for u in &t.uniques {
            let tuples: Vec<Vec<Value>> = rows
                .iter()
                .map(|r| sql::project(r, &u.columns))
                .filter(|v| !v.iter().any(Value::is_null))
                .collect();
            if !tuples.is_empty() {
                cond.push(sql::where_tuples(t, &u.columns, &tuples)?);
            }
        }
        if cond.is_empty() {
            return Ok(());
        }
        let keys: Vec<Vec<Value>> = rows.iter().map(|r| sql::project(r, key)).collect();
        cond.push(sql::where_tuples(t, key, &keys)?);
        let present = t.present_columns();
        let q = sql::select_where(t, &present, &cond.join(" OR "));
        let found: Vec<mysql_async::Row> = self.conn.exec(q, ()).await.ctx(t.display_name())?;
        let mut state: HashMap<String, Vec<Value>> = HashMap::new();
        let mut holders: HashMap<(usize, String), String> = HashMap::new();
        let hold =
            |holders: &mut HashMap<(usize, String), String>, row: &[Value], k: &str, on: bool| {
                for (ui, u) in t.uniques.iter().enumerate() {
                    let v = sql::project(row, &u.columns);
                    if v.iter().any(Value::is_null) {
                        continue;
                    }
                    let slot = (ui, key_json(&v));
                    if on {
                        holders.insert(slot, k.to_string());
                    } else if holders.get(&slot).is_some_and(|h| h == k) {
                        holders.remove(&slot);
                    }
                }
            };
        for r in found {
            let row = crate::copy::plan::decode_present_row(r, t, &present)?;
            let k = key_json(&sql::project(&row, key));
            hold(&mut holders, &row, &k, true);
            state.insert(k, row);
        }
        let mut displaced: Vec<(Vec<Value>, String)> = Vec::new();
        for r in rows {
            let kr = key_json(&sql::project(r, key));
            if let Some(old) = state.get(&kr).cloned() {
                hold(&mut holders, &old, &kr, false);
            }
            for (ui, u) in t.uniques.iter().enumerate() {
                let v = sql::project(r, &u.columns);
                if v.iter().any(Value::is_null) {
                    continue;
                }
                let Some(other) = holders.get(&(ui, key_json(&v))).cloned() else {
                    continue;
                };
                if other == kr {
                    continue;
                }
                let their = state.remove(&other).unwrap_or_default();
                let what = format!(
                    "row {} taking {} {}",
                    shown(t, key, &sql::project(r, key)),
                    u.name,
                    shown(t, &u.columns, &v)
                );
                if self.mode == Mode::Exact {
                    let all: Vec<usize> = (0..t.columns.len()).collect();
                    return Err(Error::definite(
                        &codes::CDC_UNIQUE_CONFLICT,
                        format!(
                            "{}: {what} {} conflicts with the destination's row {} {} at {}",
                            t.display_name(),
                            shown(t, &all, r),
                            shown(t, key, &sql::project(&their, key)),
                            shown(t, &all, &their),
                            self.at
                        ),
                    ));
                }
                hold(&mut holders, &their, &other, false);
                displaced.push((their, what));
            }
            hold(&mut holders, r, &kr, true);
            state.insert(kr, r.clone());
        }
        for (row, by) in displaced {
            let k = sql::project(&row, key);
            let p = Parked {
                db: t.db.clone(),
                name: t.name.clone(),
                key_json: key_json(&k),
                row_json: row_json(&row),
                displaced_by: by,
                at_position: self.at.to_string(),
            };
            tracing::warn!(table = %t.display_name(), key = %p.key_json, by = %p.displaced_by, "catch-up: parking a row that holds a unique value another row takes");
            self.conn
                .query_drop(self.meta.park_sql(&p))
                .await
                .ctx("parking a row")?;
            self.conn
                .query_drop(sql::delete_keys(t, &[k])?)
                .await
                .ctx(t.display_name())?;
            self.parked.insert((p.db, p.name, p.key_json));
            self.stats.parked += 1;
        }
        Ok(())
    }

    /// An update of columns other tables' FKs follow with ON UPDATE CASCADE / SET NULL: the source changed the
    /// child rows without logging them, so the destination must do the same. Exact: one UPDATE by the before-image
    /// key with FK checks on for that statement, the destination cascades as the source did. Catch-up: see below.
    async fn cascading_update(
        &mut self,
        t: &Arc<Table>,
        before: Vec<Value>,
        after: Vec<Value>,
    ) -> Result<()> {
        self.flush().await?;
        if self.mode == Mode::CatchUp {
            // Children may already be copies from after this change: move them explicitly (a child already
            // under the new values wins), every level down, then write the parent like any other key change.
            self.follow_cascades(t, vec![(before.clone(), Some(after.clone()))])
                .await?;
            let key = sql::key_of(t)?;
            if sql::project(&before, &key) != sql::project(&after, &key) {
                self.push(t, Op::Displace, before, None).await?;
            }
            return self.push(t, Op::Upsert, after, None).await;
        }
        let key = sql::key_of(t)?;
        let before_key = sql::project(&before, &key);
        let q = sql::update_row(t, &before_key, &after)?;
        self.pipeline.push(
            "SET SESSION foreign_key_checks = 1".into(),
            None,
            Tag::Session,
        );
        self.pipeline.push(
            q,
            Some(1),
            Tag::Rows {
                table: t.clone(),
                op: Op::Update,
                keys: vec![before_key],
                rows: vec![after],
            },
        );
        self.pipeline.push(
            "SET SESSION foreign_key_checks = 0".into(),
            None,
            Tag::Session,
        );
        Ok(())
    }

    /// Catch-up: makes on the destination what the source's foreign keys did below `parent` without logging it,
    /// for each `(old row, new row)` change of the parent (new None: deleted), every level down. Rows a rule changes
    /// are read before it runs when their own table has followers, and followed in turn (breadth first); a row is
    /// followed once, so cycles (a self-referencing table, two tables referencing each other) end.
    async fn follow_cascades(
        &mut self,
        parent: &Arc<Table>,
        changes: Vec<(Vec<Value>, Option<Vec<Value>>)>,
    ) -> Result<()> {
        type Change = (Arc<Table>, Vec<Value>, Option<Vec<Value>>);
        self.record_reach(parent, &changes);
        let mut work: std::collections::VecDeque<Change> = changes
            .into_iter()
            .map(|(old, new)| (parent.clone(), old, new))
            .collect();
        let mut seen: HashSet<(Name, String)> = HashSet::new();
        while let Some((t, old, new)) = work.pop_front() {
            for f in &t.followers {
                if self.in_snapshot(&Name::new(&f.db, &f.table))? {
                    // Re-copied from a snapshot that holds this cascade (and every level below: the round re-copies
                    // the cascade's whole reach).
                    continue;
                }
                let old_ref = sql::project(&old, &f.referenced);
                if old_ref.iter().any(Value::is_null) {
                    continue; // NULL references nothing
                }
                let new_ref = new.as_ref().map(|n| sql::project(n, &f.referenced));
                if new_ref.as_ref() == Some(&old_ref) {
                    continue;
                }
                let rule = if new_ref.is_some() {
                    f.on_update
                } else {
                    f.on_delete
                };
                if rule == crate::schema::model::FkRule::Restrict {
                    continue;
                }
                let child = self
                    .by_destination
                    .get(&Name::new(&f.db, &f.table))
                    .cloned();
                if let Some(child) = child.filter(|c| !c.followers.is_empty()) {
                    for row in self.child_rows(&child, f, &old_ref).await? {
                        let id = match &child.key {
                            Some(k) => key_json(&sql::project(&row, &k.columns)),
                            None => row_json(&row),
                        };
                        if !seen.insert((Name::new(&child.db, &child.name), id)) {
                            continue;
                        }
                        let changed = match (rule, &new_ref) {
                            (crate::schema::model::FkRule::Cascade, None) => None,
                            (_, to) => {
                                let mut r = row.clone();
                                for (n, c) in f.columns.iter().enumerate() {
                                    if let Some(i) = child.columns.iter().position(|x| &x.name == c)
                                    {
                                        r[i] = match to {
                                            Some(v)
                                                if rule
                                                    == crate::schema::model::FkRule::Cascade =>
                                            {
                                                v.get(n).cloned().unwrap_or(Value::Null)
                                            }
                                            _ => Value::Null,
                                        };
                                    }
                                }
                                Some(r)
                            }
                        };
                        work.push_back((child.clone(), row, changed));
                    }
                }
                for q in sql::follow(&t, f, &old_ref, new_ref.as_deref())? {
                    self.conn
                        .query_drop(q)
                        .await
                        .ctx(format!("{}.{}", f.db, f.table))?;
                }
            }
        }
        Ok(())
    }

    /// The destination rows of `child` whose FK `f` holds `values` (whole rows, omitted columns NULL).
    async fn child_rows(
        &mut self,
        child: &Table,
        f: &crate::schema::model::Follower,
        values: &[Value],
    ) -> Result<Vec<Vec<Value>>> {
        let Some(fk_cols) = f
            .columns
            .iter()
            .map(|c| child.columns.iter().position(|x| &x.name == c))
            .collect::<Option<Vec<usize>>>()
        else {
            return Ok(Vec::new());
        };
        let present = child.present_columns();
        let cond = sql::where_tuples(child, &fk_cols, &[values.to_vec()])?;
        let q = sql::select_where(child, &present, &cond);
        let cols: Vec<&crate::schema::model::Column> =
            present.iter().map(|&i| &child.columns[i]).collect();
        let found: Vec<mysql_async::Row> = self.conn.exec(q, ()).await.ctx(child.display_name())?;
        let mut out = Vec::with_capacity(found.len());
        for r in found {
            let vals = crate::copy::plan::decode_row(r, &cols)?;
            let mut row = vec![Value::Null; child.columns.len()];
            for (&i, v) in present.iter().zip(vals) {
                row[i] = v;
            }
            out.push(row);
        }
        Ok(out)
    }

    /// Tables without a key: one statement per row, matched on every column (duplicates are indistinguishable).
    async fn keyless(
        &mut self,
        t: &Arc<Table>,
        kind: RowKind,
        before: Option<Vec<Value>>,
        after: Option<Vec<Value>>,
    ) -> Result<()> {
        self.flush().await?;
        let q = match (kind, before, after) {
            (RowKind::Insert, _, Some(a)) => sql::insert(t, &[&a])?,
            (RowKind::Delete, Some(b), _) => format!(
                "DELETE FROM {} WHERE {} LIMIT 1",
                t.qualified(),
                sql::keyless_match(t, &b)?
            ),
            (RowKind::Update, Some(b), Some(a)) => {
                let mut set = String::new();
                for (n, (i, c)) in t.writable_columns().enumerate() {
                    if n > 0 {
                        set.push_str(", ");
                    }
                    set.push_str(&crate::mysql::quote::ident(&c.name));
                    set.push_str(" = ");
                    a[i].write_literal(c, &mut set)?;
                }
                format!(
                    "UPDATE {} SET {set} WHERE {} LIMIT 1",
                    t.qualified(),
                    sql::keyless_match(t, &b)?
                )
            }
            _ => return Err(missing_image(t)),
        };
        if self.mode == Mode::Exact {
            self.pipeline.push(q, None, Tag::Session);
            return Ok(());
        }
        self.conn.query_drop(q).await.ctx(t.display_name())
    }

    /// A statement outside a row transaction: DDL in the task's scope is applied to the destination (DEFINER
    /// rewritten), the tracked tables and their shapes follow it, and the changes are recorded with the next
    /// checkpoint. Returns the shape changes for the reader, and whether the statement opens a transaction whose
    /// rows follow (MySQL 8's CREATE TABLE ... SELECT).
    async fn statement(
        &mut self,
        source: &Statement<'_>,
        file: &str,
        end: u64,
    ) -> Result<(Vec<Reshape>, bool)> {
        let (db, sql_text) = (source.db, source.sql);
        let stmt = self.classify(sql_text, db)?;
        let opens_transaction = matches!(&stmt, ddl::Statement::Ddl(d) if d.opens_transaction);
        let Some(plan) = self
            .scope
            .plan(&stmt, sql_text, db)
            .map_err(|e| e.context(format!("at {file}:{end}")))?
        else {
            return Ok((Vec::new(), opens_transaction));
        };
        let at = format!("{file}:{end}");
        self.recopy_and_ddl(&plan, &at)?;
        tracing::info!(at = %at, statement = %excerpt(sql_text), "replicating DDL");
        if !plan.sql.is_empty() {
            if let Some(why) = &source.session.undecodable {
                return Err(Error::definite(
                    &codes::CDC_DDL,
                    format!("DDL at {at} cannot be replayed exactly: {why}"),
                ));
            }
            // The databases whose catalogue the statement may change: those it names, its default database (a
            // CREATE DATABASE names the new one as its default), and those of the tables it creates or drops.
            let mut dbs: BTreeSet<String> = BTreeSet::new();
            dbs.insert(self.names.db(db).to_string());
            if let ddl::Statement::Ddl(d) = &stmt {
                for n in d
                    .names
                    .iter()
                    .chain(d.renames.iter().flat_map(|(a, b)| [a, b]))
                {
                    if !n.db.is_empty() {
                        dbs.insert(self.names.db(&n.db).to_string());
                    }
                }
            }
            for n in plan.reread.iter().chain(plan.gone.iter().map(|(n, _)| n)) {
                dbs.insert(self.names.db(&n.db).to_string());
            }
            dbs.remove("");
            self.run_ddl(source, &plan, &at, &dbs).await?;
        }
        for (code, detail) in &plan.warnings {
            tracing::warn!(code = code.id, at = %at, "{detail}");
            self.extra.push(self.meta.warning_sql(code, detail, &at));
        }
        let mut changes = Vec::new();
        for (t, gone) in &plan.gone {
            self.shapes.remove(t);
            self.extra.push(self.meta.synced_table_sql(
                &t.db,
                &t.name,
                gone.state(),
                &gone.note(),
                None,
                &at,
            ));
            changes.push(Reshape::Remove {
                db: t.db.clone(),
                name: t.name.clone(),
            });
        }
        self.scope.apply(&plan);
        for t in self.reread(&plan).await? {
            self.extra.push(self.meta.synced_table_sql(
                &t.db,
                &t.name,
                "syncing",
                "",
                Some(&t),
                &at,
            ));
            self.shapes
                .insert(Name::new(&t.db, &t.name), Arc::new(t.clone()));
            changes.push(Reshape::Set(t));
        }
        self.refresh_cascade_children();
        Ok((changes, opens_transaction))
    }

    /// A DDL and the re-copy of the tables catch-up followed cascades into. Before the round, a recorded table
    /// renamed (and followed) is recorded under its new name too. After it and before its snapshot's position, a
    /// DDL on a re-copied table cannot be replayed: the re-copy read the table's rows under its shape as of the
    /// checkpoint, after the statement changed it.
    fn recopy_and_ddl(&mut self, plan: &Plan, at: &str) -> Result<()> {
        let on_destination = |names: &crate::schema::model::NameMap, n: &Name| {
            Name::new(names.db(&n.db), names.table(&n.db, &n.name))
        };
        if self.before_snapshot()? {
            let touched = plan
                .reread
                .iter()
                .chain(plan.gone.iter().map(|(n, _)| n))
                .find(|n| {
                    self.recopied
                        .as_ref()
                        .is_some_and(|(_, t)| t.contains(&on_destination(&self.names, n)))
                });
            if let Some(n) = touched {
                let snapshot = self
                    .recopied
                    .as_ref()
                    .map(|(s, _)| s.to_string())
                    .unwrap_or_default();
                return Err(Error::definite(
                    &codes::CDC_DDL,
                    format!(
                        "DDL at {at} changes {n}, which catch-up re-copied from a source snapshot at {snapshot} (the \
                         tables a replayed foreign key cascade reached) under its shape from before the statement; \
                         ferry cannot replay the statement under rows read after it: release the task and run it \
                         again on a fresh destination"
                    ),
                ));
            }
        }
        if self.idempotent || self.mode != Mode::CatchUp || self.recopied.is_some() {
            return Ok(());
        }
        for (old, gone) in &plan.gone {
            if let super::scope::Gone::Renamed(new) = gone {
                if self.reached.contains(&on_destination(&self.names, old))
                    && self.reached.insert(on_destination(&self.names, new))
                {
                    self.extra
                        .push(self.meta.recopy_reached_sql(&new.db, &new.name, at));
                }
            }
        }
        Ok(())
    }

    /// Classifies a statement; one the tokenizer cannot read stops the task only when it may concern it.
    fn classify(&self, sql_text: &str, db: &str) -> Result<ddl::Statement> {
        match ddl::classify(sql_text, db) {
            Ok(s) => Ok(s),
            Err(e) if self.scope.may_concern(db, sql_text) => Err(e.context(excerpt(sql_text))),
            Err(e) => {
                tracing::debug!(error = %e, "a statement outside the task's scope could not be read; passed");
                Ok(ddl::Statement::Ignored)
            }
        }
    }

    /// Runs a plan's statements on the destination. The DDL commits by itself, before its checkpoint can: it is
    /// marked pending first, and when the same statement comes again after a crash, errors that mean "already
    /// done" (the column, index or table is already there or already gone) are accepted.
    ///
    /// A DDL commits outside any transaction the fence could roll back, so it runs under the task's fence lock
    /// (`Meta::lock_fence`), which a cutover takes before it moves the generation on: the pending mark (fenced)
    /// and the statements happen either wholly before the cutover or not at all.
    async fn run_ddl(
        &mut self,
        source: &Statement<'_>,
        plan: &Plan,
        at: &str,
        dbs: &BTreeSet<String>,
    ) -> Result<()> {
        self.meta.lock_fence(&mut self.conn).await?;
        let result = self.run_ddl_fenced(source, plan, at, dbs).await;
        let unlocked = self.meta.unlock_fence(&mut self.conn).await;
        result.and(unlocked)
    }

    async fn run_ddl_fenced(
        &mut self,
        source: &Statement<'_>,
        plan: &Plan,
        at: &str,
        dbs: &BTreeSet<String>,
    ) -> Result<()> {
        let db = source.db;
        if self.scope.covers_db(db) && !plan.without_default_db {
            let dest = self.names.db(db);
            self.conn
                .query_drop(format!("USE {}", crate::mysql::quote::ident(dest)))
                .await
                .ctx("destination")?;
        }
        let statements: Vec<String> = plan
            .sql
            .iter()
            .map(|s| {
                let s = crate::schema::reshape::map_table_refs(s, db, &self.names)?;
                crate::schema::rewrite::map_databases(&s, self.names.databases())
            })
            .collect::<Result<_>>()?;
        // The statements run in the source session's context (sql_mode, time zone, client charset, timestamp,
        // ...), then the writer's own settings come back.
        let list: Vec<String> = CONTEXT_VARIABLES
            .iter()
            .map(|v| format!("@@session.{v}"))
            .collect();
        let saved: Option<mysql_async::Row> = self
            .conn
            .query_first(format!("SELECT {}", list.join(", ")))
            .await
            .ctx("reading the writer's session settings")?;
        let restore = saved.map(|row| {
            let sets: Vec<String> = CONTEXT_VARIABLES
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let value: String = row.get_opt(i).and_then(|r| r.ok()).unwrap_or_default();
                    if value.parse::<u64>().is_ok() {
                        format!("{v} = {value}")
                    } else {
                        format!("{v} = {}", crate::mysql::quote::string(&value))
                    }
                })
                .collect();
            vec![
                "SET TIMESTAMP = DEFAULT".to_string(),
                format!("SET SESSION {}", sets.join(", ")),
            ]
        });
        let pending = pending_mark(self.ddl_pending.as_deref(), at);
        let result = self
            .run_in_context(source, &statements, dbs, pending, at)
            .await;
        for q in restore.unwrap_or_default() {
            if let Err(e) = self.conn.query_drop(&q).await {
                if result.is_ok() {
                    return Err(Error::from(e).context("restoring the writer's session settings"));
                }
            }
        }
        if result.is_ok() {
            crate::failpoint::hit(crate::failpoint::names::APPLY_DDL_DONE).await?;
        }
        result
    }

    /// Runs `statements` (the source's statement, rewritten for the destination where needed) under the source
    /// session's context. A statement ferry did not change goes as the bytes the source logged; a rewritten one in
    /// the client's character set, or as utf8mb4 where a character does not map.
    ///
    /// Before each statement its pending mark records the catalogue's fingerprint (`catalog.rs`). After a crash,
    /// the statements before the marked one ran; the marked one ran exactly when the catalogue no longer matches
    /// its fingerprint, and is skipped then.
    async fn run_in_context(
        &mut self,
        source: &Statement<'_>,
        statements: &[String],
        dbs: &BTreeSet<String>,
        pending: Option<(usize, Option<String>)>,
        at: &str,
    ) -> Result<()> {
        // A mark written before fingerprints were recorded: "already done" errors are accepted instead.
        let replay = matches!(pending, Some((_, None)));
        let mariadb = matches!(self.gtids, Gtids::MariaDb(_));
        // Sent as UTF-8 text instead of the logged bytes when the destination does not know the source's client
        // character set or collations (another flavor's ids).
        let mut utf8_text = false;
        for q in source.session.set_statements(mariadb) {
            let Err(e) = self.conn.query_drop(&q).await else {
                continue;
            };
            let e = Error::from(e);
            let refused = |e: &Error, q: &str| {
                Error::definite(
                    &codes::CDC_DDL,
                    format!(
                        "the destination refused the source session's settings for DDL at {at}: {e}; statement: {q}"
                    ),
                )
            };
            // Unknown collation or character set, a value the variable does not take: the other flavor's ids and
            // sql_mode bits. The settings both flavors share are kept, the statement goes as utf8mb4 text.
            if !matches!(e.mysql_errno(), Some(1273 | 1115 | 1231 | 1232)) {
                return Err(refused(&e, &q));
            }
            tracing::warn!(at, error = %e, "the source session's character set or sql_mode is not the destination's: DDL replayed with the settings both servers share, as utf8mb4 text");
            for p in source.session.portable_statements(mariadb) {
                if let Err(e2) = self.conn.query_drop(&p).await {
                    return Err(refused(&Error::from(e2), &p));
                }
            }
            utf8_text = true;
        }
        for (i, sql) in statements.iter().enumerate() {
            let before = super::catalog::fingerprint(&mut self.conn, dbs).await?;
            match &pending {
                Some((k, Some(_))) if i < *k => continue,
                Some((k, Some(fp))) if i == *k && *fp != before => {
                    tracing::warn!(
                        at,
                        "DDL took effect before the crash (the catalogue changed since its mark); not run again: {}",
                        excerpt(sql)
                    );
                    continue;
                }
                _ => {}
            }
            self.conn
                .query_drop(
                    self.meta
                        .ddl_pending_sql(Some(&format!("{at}|{i}|{before}"))),
                )
                .await
                .ctx("marking a DDL statement pending")?;
            if self.conn.affected_rows() != 1 {
                return Err(self.meta.fenced_error(&mut self.conn, "DDL").await);
            }
            self.ddl_pending = Some(format!("{at}|{i}|{before}"));
            let bytes: Vec<u8> = if utf8_text {
                sql.as_bytes().to_vec()
            } else if sql == source.sql {
                source.raw.to_vec()
            } else if let Some(b) = source.session.encode(sql) {
                b
            } else {
                self.conn
                    .query_drop("SET SESSION character_set_client = utf8mb4")
                    .await
                    .ctx("destination")?;
                sql.as_bytes().to_vec()
            };
            if let Err(e) = self.conn.query_drop(bytes.as_slice()).await {
                let e = Error::from(e);
                match e.mysql_errno() {
                    Some(n) if replay && crate::mysql::classify::already_applied(n) => {
                        tracing::warn!(
                            at,
                            errno = n,
                            "DDL already applied before the crash: {}",
                            excerpt(sql)
                        );
                    }
                    _ if e.is_transient() => return Err(e.context(format!("DDL at {at}"))),
                    // Recovering a marked statement whose catalogue looked untouched, and the destination answers
                    // "already done": the fingerprint missed what the statement changed. Neither running it nor
                    // skipping it is known to be right; the mark stays and the task stops saying so.
                    Some(n)
                        if matches!(&pending, Some((k, Some(_))) if *k == i)
                            && crate::mysql::classify::already_applied(n) =>
                    {
                        return Err(Error::definite(
                            &codes::CDC_DDL,
                            format!(
                                "DDL at {at} was pending when ferry stopped; the destination's catalogue looked \
                                 unchanged, but running it again says it already took effect ({e}). Compare the \
                                 object with the source's and make the destination match the statement's result, then \
                                 clear {}.cdc.ddl_pending for the task; statement: {}",
                                self.meta.schema,
                                excerpt(sql)
                            ),
                        ));
                    }
                    _ => {
                        // Nothing took effect: the statement is not pending (a rerun must not take the same
                        // answer for "already done").
                        let _ = self.conn.query_drop(self.meta.ddl_pending_sql(None)).await;
                        return Err(Error::definite(
                            &codes::CDC_DDL,
                            format!("the destination rejected DDL from the binlog at {at}: {e}; statement: {}", excerpt(sql)),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The shapes of the tables a plan created, altered or renamed, read from the destination (which now holds
    /// the source's shape as of this statement), plus the tracked tables whose FK followers may have changed
    /// with them (their parents, and the tables that listed them as followers).
    async fn reread(&mut self, plan: &Plan) -> Result<Vec<Table>> {
        if plan.reread.is_empty() && plan.gone.is_empty() {
            return Ok(Vec::new());
        }
        let mut wanted: BTreeSet<Name> = plan.reread.iter().cloned().collect();
        let changed: Vec<Name> = plan
            .reread
            .iter()
            .chain(plan.gone.iter().map(|(n, _)| n))
            .cloned()
            .collect();
        for (name, shape) in &self.shapes {
            if shape
                .followers
                .iter()
                .any(|f| changed.iter().any(|c| c.db == f.db && c.name == f.table))
            {
                wanted.insert(name.clone());
            }
        }
        for t in &plan.reread {
            let parents: Vec<(String, String)> = self
                .conn
                .exec(
                    "SELECT DISTINCT REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME FROM information_schema.KEY_COLUMN_USAGE \
                     WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND REFERENCED_TABLE_NAME IS NOT NULL",
                    (self.names.db(&t.db), self.names.table(&t.db, &t.name)),
                )
                .await
                .ctx("reading foreign keys")?;
            for (d, n) in parents {
                let d = self.names.source_db(&d);
                let p = Name::new(&d, &self.names.source_table(&d, &n));
                if self.scope.tracks(&p) {
                    wanted.insert(p);
                }
            }
        }
        let wanted: Vec<Name> = wanted
            .into_iter()
            .filter(|n| self.scope.tracks(n))
            .collect();
        // A table whose columns differ on the destination cannot have its source shape read back from there.
        if let Some(n) = wanted.iter().find(|n| self.names.reshapes(&n.db, &n.name)) {
            return Err(Error::definite(
                &codes::CDC_DDL_RESHAPED,
                format!(
                    "DDL at {} changes the foreign keys of {n}, whose columns are renamed or left out on the destination",
                    self.at
                ),
            ));
        }
        // Read under the destination's names, kept under the source's (`[mapping]`).
        let on_destination: Vec<Name> = wanted
            .iter()
            .map(|n| Name::new(self.names.db(&n.db), self.names.table(&n.db, &n.name)))
            .collect();
        let mut tables =
            crate::schema::introspect::read_table_shapes(&mut self.conn, &on_destination).await?;
        for t in &mut tables {
            t.db = self.names.source_db(&t.db);
            t.name = self.names.source_table(&t.db, &t.name);
            for f in &mut t.followers {
                f.db = self.names.source_db(&f.db);
                f.table = self.names.source_table(&f.db, &f.table);
            }
        }
        for n in &wanted {
            if !tables.iter().any(|t| t.db == n.db && t.name == n.name) {
                return Err(Error::definite(
                    &codes::CDC_DDL,
                    format!(
                        "after DDL at {}, table {n} is not on the destination",
                        self.at
                    ),
                ));
            }
        }
        Ok(tables)
    }
}

fn key_json(k: &[Value]) -> String {
    crate::meta::values_json(k)
}

fn missing_image(t: &Table) -> Error {
    Error::definite(
        &codes::CDC_DECODE,
        format!("{}: row event without the image it needs", t.display_name()),
    )
}

/// Columns `cols` of a table with `vals` as a DBA reads them: `(id=7, email='a@b')`, long values cut short.
fn shown(t: &Table, cols: &[usize], vals: &[Value]) -> String {
    const VALUE_CHARS_MAX: usize = 80;
    let mut out = String::from("(");
    for (n, (&i, v)) in cols.iter().zip(vals).enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        let Some(c) = t.columns.get(i) else { continue };
        out.push_str(&c.name);
        out.push('=');
        let mut lit = String::new();
        match v {
            // Text reads as text in a message (the SQL literal form is hex, exact in any charset).
            Value::Bytes(b) | Value::Json(b)
                if c.charset.is_some() || matches!(v, Value::Json(_)) =>
            {
                match std::str::from_utf8(b) {
                    Ok(text) => lit = format!("'{}'", text.replace('\'', "''")),
                    Err(_) => lit = format!("0x{}", hex::encode(b)),
                }
            }
            _ => {
                if v.write_literal(c, &mut lit).is_err() {
                    lit = format!("{v:?}");
                }
            }
        }
        if lit.chars().count() > VALUE_CHARS_MAX {
            lit = lit.chars().take(VALUE_CHARS_MAX).collect::<String>() + "...";
        }
        out.push_str(&lit);
    }
    out.push(')');
    out
}

fn row_json(r: &[Value]) -> String {
    crate::meta::values_json(r)
}
