//! Applies decoded binlog items to the destination: idempotent upserts and deletes by key until the stream passes
//! P1 (catch-up), exact statements after; source transactions committed whole, with the checkpoint, in batches.

use super::event::{Item, RowKind};
use super::gtid::{parse_mariadb_gtid, split_mysql_gtid, GtidList, GtidSet};
use super::position::Position;
use super::sql;
use crate::codes;
use crate::error::{Error, Result, ResultExt};
use crate::meta::{Meta, Parked};
use crate::schema::model::Table;
use crate::value::Value;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Catch-up (idempotent, before P1) or exact (every row must be where the binlog says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    CatchUp,
    Exact,
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
}

/// Counters of one applier's life.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ApplyStats {
    pub transactions: u64,
    pub rows: u64,
    pub commits: u64,
    pub parked: u64,
}

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
    run: Option<Run>,
    /// Databases in the task's scope (DDL there cannot be ignored).
    scope: Vec<String>,
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
    pub stats: ApplyStats,
}

impl Applier {
    /// An applier resuming after `from` (the checkpoint, or P0) on a destination session set up for writing.
    pub async fn new(
        mut conn: Conn,
        meta: Meta,
        from: Position,
        p1: Position,
        batch_rows: usize,
        scope: Vec<String>,
    ) -> Result<Applier> {
        let mode = if from.cmp_in_log(&p1)? == std::cmp::Ordering::Less {
            Mode::CatchUp
        } else {
            Mode::Exact
        };
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
        Ok(Applier {
            conn,
            meta,
            mode,
            p1,
            in_tx: false,
            in_source_tx: false,
            run: None,
            scope,
            at: from,
            gtids,
            current_gtid: String::new(),
            txns_open: 0,
            rows_open: 0,
            last_ts: 0,
            batch_rows,
            parked,
            stats: ApplyStats::default(),
        })
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

    /// Applies one item; `idle` says nothing else is waiting, so a finished batch should commit now.
    pub async fn apply(&mut self, item: Item, idle: bool) -> Result<()> {
        match item {
            Item::Begin { gtid } => {
                self.current_gtid = gtid;
                self.in_source_tx = true;
            }
            Item::Rows { table, kind, rows } => {
                self.begin().await?;
                for (before, after) in rows {
                    self.row(&table, kind, before, after).await?;
                }
            }
            Item::Commit { file, end, ts } => {
                self.end_transaction(&file, end, ts)?;
                let passed_p1 = self.mode == Mode::CatchUp && self.at.cmp_in_log(&self.p1)?.is_ge();
                if idle || passed_p1 || self.rows_open >= self.batch_rows as u64 {
                    self.commit().await?;
                }
                if passed_p1 {
                    self.enter_exact().await?;
                }
            }
            Item::Query {
                db,
                sql,
                file,
                end,
                ts,
            } => {
                self.commit().await?;
                self.statement(&db, &sql).await?;
                self.end_transaction(&file, end, ts)?;
                self.commit().await?;
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
        Ok(())
    }

    /// Commits the open batch with its checkpoint (nothing to do when no source transaction finished since).
    pub async fn commit(&mut self) -> Result<()> {
        if self.txns_open == 0 {
            return Ok(());
        }
        self.flush().await?;
        self.begin().await?;
        let sql = self
            .meta
            .checkpoint_sql(&self.at, self.last_ts, self.txns_open, self.rows_open);
        self.conn
            .query_drop(sql)
            .await
            .ctx("writing the checkpoint")?;
        self.conn
            .query_drop("COMMIT")
            .await
            .ctx("committing a batch")?;
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
            self.conn.query_drop("BEGIN").await.ctx("destination")?;
            self.in_tx = true;
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
        let missing = || {
            Error::definite(
                &codes::CDC_DECODE,
                format!(
                    "{}: row event without the image it needs",
                    table.display_name()
                ),
            )
        };
        let exact = self.mode == Mode::Exact;
        if table.key.is_none() {
            return self.keyless(table, kind, before, after).await;
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
                    (true, true) => self.push(table, Op::Update, after, Some(before)).await,
                    (false, false) => {
                        self.push(table, Op::Delete, before, None).await?;
                        self.push(table, Op::Upsert, after, None).await
                    }
                    (false, true) => {
                        self.push(table, Op::Delete, before, None).await?;
                        self.push(table, Op::Insert, after, None).await
                    }
                }
            }
        }
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
        let t = run.table.clone();
        let key = sql::key_of(&t)?;
        let keys: Vec<Vec<Value>> = run.rows.iter().map(|r| sql::project(r, &key)).collect();
        let exact = self.mode == Mode::Exact;
        match run.op {
            Op::Delete => {
                let distinct: HashSet<String> = keys.iter().map(|k| key_json(k)).collect();
                // The source cascaded this delete to child rows without logging them. Exact: the destination is
                // the source at this point, so FK checks on for this statement let it cascade the same way.
                // Catch-up: children may be copies from later (checks could refuse the delete), so the children
                // are made to follow explicitly below.
                let server_cascades = t.cascades_on_delete() && exact;
                if server_cascades {
                    self.conn
                        .query_drop("SET SESSION foreign_key_checks = 1")
                        .await
                        .ctx("destination")?;
                }
                let res = self.conn.query_iter(sql::delete_keys(&t, &keys)?).await;
                let affected = match res {
                    Ok(r) => {
                        let n = r.affected_rows();
                        drop(r);
                        Ok(n)
                    }
                    Err(e) => Err(e),
                };
                if server_cascades {
                    self.conn
                        .query_drop("SET SESSION foreign_key_checks = 0")
                        .await
                        .ctx("destination")?;
                }
                if t.cascades_on_delete() && !exact {
                    for row in &run.rows {
                        for f in &t.followers {
                            for q in sql::follow(&t, f, &sql::project(row, &f.referenced), None)? {
                                self.conn
                                    .query_drop(q)
                                    .await
                                    .ctx(format!("{}.{}", f.db, f.table))?;
                            }
                        }
                    }
                }
                let affected = affected.ctx(t.display_name())?;
                if exact && affected != distinct.len() as u64 {
                    return Err(self.diverged(&t, "delete", &keys, affected).await);
                }
            }
            Op::Update => {
                // Exact mode: every row to update must exist under its before-image key.
                let before_keys: Vec<Vec<Value>> =
                    run.before.iter().map(|r| sql::project(r, &key)).collect();
                let found = self.existing(&t, &key, &before_keys).await?;
                if let Some(k) = before_keys.iter().find(|k| !found.contains(&key_json(k))) {
                    return Err(Error::definite(
                        &codes::CDC_DIVERGED,
                        format!(
                            "{}: row {} to update is not on the destination (at {})",
                            t.display_name(),
                            key_json(k),
                            self.at
                        ),
                    ));
                }
                self.check_uniques(&t, &key, &run.rows).await?;
                let rows: Vec<&[Value]> = run.rows.iter().map(Vec::as_slice).collect();
                self.conn
                    .query_drop(sql::upsert(&t, &rows)?)
                    .await
                    .ctx(t.display_name())?;
            }
            Op::Insert => {
                self.check_uniques(&t, &key, &run.rows).await?;
                let rows: Vec<&[Value]> = run.rows.iter().map(Vec::as_slice).collect();
                if let Err(e) = self.conn.query_drop(sql::insert(&t, &rows)?).await {
                    let e = Error::from(e);
                    if e.mysql_errno() == Some(1062) {
                        let found = self.existing(&t, &key, &keys).await?;
                        return Err(Error::definite(
                            &codes::CDC_DIVERGED,
                            format!(
                                "{}: row(s) {} to insert already on the destination (at {})",
                                t.display_name(),
                                found.into_iter().collect::<Vec<_>>().join(", "),
                                self.at
                            ),
                        ));
                    }
                    return Err(e.context(t.display_name()));
                }
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
            .map(|k| key_json(k))
            .filter(|k| !found.contains(k))
            .take(5)
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
        let all: Vec<usize> = (0..t.columns.len()).collect();
        let cols: Vec<&crate::schema::model::Column> = t.columns.iter().collect();
        let q = sql::select_where(t, &all, &cond.join(" OR "));
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
            let row = crate::copy::plan::decode_row(r, &cols)?;
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
                let what = format!("key {kr} taking {} = {}", u.name, key_json(&v));
                if self.mode == Mode::Exact {
                    return Err(Error::definite(
                        &codes::CDC_UNIQUE_CONFLICT,
                        format!(
                            "{}: row {what} (row {}) conflicts with destination row key {other} (row {}) at {}",
                            t.display_name(),
                            row_json(r),
                            row_json(&their),
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
            // under the new values wins), then write the parent like any other key change.
            for f in &t.followers {
                let (old, new) = (
                    sql::project(&before, &f.referenced),
                    sql::project(&after, &f.referenced),
                );
                if old == new {
                    continue;
                }
                for q in sql::follow(t, f, &old, Some(&new))? {
                    self.conn
                        .query_drop(q)
                        .await
                        .ctx(format!("{}.{}", f.db, f.table))?;
                }
            }
            self.push(t, Op::Delete, before, None).await?;
            return self.push(t, Op::Upsert, after, None).await;
        }
        let key = sql::key_of(t)?;
        let before_key = sql::project(&before, &key);
        let q = sql::update_row(t, &before_key, &after)?;
        self.conn
            .query_drop("SET SESSION foreign_key_checks = 1")
            .await
            .ctx("destination")?;
        let res = match self.conn.query_iter(q).await {
            Ok(r) => {
                let n = r.affected_rows();
                drop(r);
                Ok(n)
            }
            Err(e) => Err(e),
        };
        self.conn
            .query_drop("SET SESSION foreign_key_checks = 0")
            .await
            .ctx("destination")?;
        if res.ctx(t.display_name())? == 0 {
            return Err(self.diverged(t, "update", &[before_key], 0).await);
        }
        Ok(())
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
            _ => {
                return Err(Error::definite(
                    &codes::CDC_DECODE,
                    format!("{}: row event without the image it needs", t.display_name()),
                ))
            }
        };
        self.conn.query_drop(q).await.ctx(t.display_name())
    }

    /// A statement outside a row transaction. DDL replication is not part of this version: a statement that may
    /// change an object in scope stops the task rather than letting the destination drift.
    async fn statement(&mut self, db: &str, sql_text: &str) -> Result<()> {
        if touches_scope(&self.scope, db, sql_text) {
            return Err(Error::definite(
                &codes::CDC_DDL,
                format!(
                    "at {} (default database `{db}`): {}",
                    self.at,
                    sql_text.chars().take(500).collect::<String>()
                ),
            ));
        }
        Ok(())
    }
}

/// Whether a statement may change an object of the scope: its first word is DDL and it runs in, or names, one of
/// the scope's databases. Statements elsewhere (another database, ferry's own heartbeat) pass.
pub fn touches_scope(scope: &[String], db: &str, sql_text: &str) -> bool {
    let first = sql_text
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    if !matches!(
        first.as_str(),
        "CREATE" | "ALTER" | "DROP" | "RENAME" | "TRUNCATE"
    ) {
        return false;
    }
    let lower = sql_text.to_ascii_lowercase();
    scope.iter().any(|s| {
        let s = s.to_ascii_lowercase();
        db.eq_ignore_ascii_case(&s)
            || lower.contains(&format!("`{s}`."))
            || lower.contains(&format!("{s}."))
    })
}

fn key_json(k: &[Value]) -> String {
    crate::meta::values_json(k)
}

fn row_json(r: &[Value]) -> String {
    crate::meta::values_json(r)
}
