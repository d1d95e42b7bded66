//! The task's durable state in the destination's metadata schema; the task phase is always derived from it.

use crate::cdc::position::Position;
use crate::codes;
use crate::error::{Error, Result, ResultExt};
use crate::mysql::quote::{ident, string};
use crate::schema::model::ObjectKind;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

/// A chunk as stored: number, low bound, high bound (JSON), done, rows.
type ChunkRecord = (u32, Option<String>, Option<String>, bool, Option<u64>);

/// Bumped when the metadata tables change shape.
pub const FORMAT: u32 = 1;

/// Where a task stands, derived from the metadata tables (never kept only in memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// No metadata yet: the task never ran against this destination.
    Created,
    /// Creating databases, tables, routines and views.
    Schema,
    /// Copying rows.
    Full,
    /// Applying the source's binlog, until cutover.
    Incremental,
    /// Creating triggers and events.
    PostData,
    /// Everything the task's types ask for is done.
    Done,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Created => "created",
            Phase::Schema => "schema",
            Phase::Full => "full",
            Phase::Incremental => "incremental",
            Phase::PostData => "post_data",
            Phase::Done => "done",
        }
    }
}

/// The task row.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TaskRow {
    pub exists: bool,
    pub schema_pre_done: bool,
    pub full_done: bool,
    pub schema_post_done: bool,
    /// A binlog start position was recorded: the task runs incremental until cutover.
    pub incremental: bool,
    pub failed_code: Option<String>,
    pub failed_detail: Option<String>,
}

impl TaskRow {
    pub fn phase(&self) -> Phase {
        if !self.exists {
            Phase::Created
        } else if !self.schema_pre_done {
            Phase::Schema
        } else if !self.full_done {
            Phase::Full
        } else if self.incremental && !self.schema_post_done {
            Phase::Incremental
        } else if !self.schema_post_done {
            Phase::PostData
        } else {
            Phase::Done
        }
    }
}

/// Handle on one task's metadata.
#[derive(Debug, Clone)]
pub struct Meta {
    pub schema: String,
    pub task: String,
}

/// A step whose completion is recorded.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    SchemaPre,
    Full,
    SchemaPost,
}

impl Step {
    fn column(self) -> &'static str {
        match self {
            Step::SchemaPre => "schema_pre_done_at",
            Step::Full => "full_done_at",
            Step::SchemaPost => "schema_post_done_at",
        }
    }
}

/// A chunk's durable record.
#[derive(Debug, Clone)]
pub struct ChunkRow {
    pub chunk_no: u32,
    /// JSON of `Vec<Value>`; None is open-ended.
    pub lo: Option<String>,
    pub hi: Option<String>,
    pub done: bool,
    pub rows: u64,
}

/// Per-table progress, derived from the chunk records.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableProgress {
    pub db: String,
    pub name: String,
    pub rows_estimate: u64,
    pub rows_copied: u64,
    pub chunks_total: u64,
    pub chunks_done: u64,
}

/// The incremental state: start position, end-of-copy position, checkpoint and counters.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CdcState {
    pub p0: Option<Position>,
    pub p1: Option<Position>,
    /// The end of the last source transaction fully applied on the destination.
    pub checkpoint: Option<Position>,
    /// When the checkpoint was written (destination clock, UTC).
    pub checkpoint_at: Option<String>,
    /// Source commit time (unix seconds) of the checkpointed transaction.
    pub source_ts: Option<i64>,
    pub transactions: u64,
    pub rows: u64,
}

impl CdcState {
    /// Where reading resumes: the checkpoint, else P0.
    pub fn resume_from(&self) -> Option<&Position> {
        self.checkpoint.as_ref().or(self.p0.as_ref())
    }
}

/// A row moved aside in catch-up mode because another row took its unique value; a later event for its key
/// supersedes it, otherwise it is reported when catch-up ends.
/// The JSON form of a key or row stored in the metadata (`[{"UInt":7}]`): one encoding for the copy and the
/// applier, so a key parked by one is found by the other.
pub fn values_json(v: &[crate::value::Value]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A destination row removed because another row took one of its unique values (see `copy::displace`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Parked {
    pub db: String,
    pub name: String,
    pub key_json: String,
    pub row_json: String,
    pub displaced_by: String,
    pub at_position: String,
}

impl Meta {
    pub fn new(schema: &str, task: &str) -> Meta {
        Meta {
            schema: schema.to_string(),
            task: task.to_string(),
        }
    }

    fn t(&self, table: &str) -> String {
        format!("{}.{}", ident(&self.schema), ident(table))
    }

    /// Creates the metadata schema and tables if missing, and the task row.
    pub async fn ensure(&self, conn: &mut Conn) -> Result<()> {
        let s = ident(&self.schema);
        let stmts = [
            format!("CREATE DATABASE IF NOT EXISTS {s} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (task VARCHAR(64) NOT NULL PRIMARY KEY, format INT NOT NULL, \
                 created_at DATETIME(6) NOT NULL, updated_at DATETIME(6) NOT NULL, \
                 schema_pre_done_at DATETIME(6) NULL, full_done_at DATETIME(6) NULL, \
                 schema_post_done_at DATETIME(6) NULL, failed_code VARCHAR(32) NULL, failed_detail TEXT NULL \
                 ) ENGINE=InnoDB",
                self.t("task")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (task VARCHAR(64) NOT NULL PRIMARY KEY, p0 TEXT NULL, p1 TEXT NULL, \
                 checkpoint TEXT NULL, checkpoint_at DATETIME(6) NULL, source_ts BIGINT NULL, \
                 transactions BIGINT UNSIGNED NOT NULL DEFAULT 0, `rows` BIGINT UNSIGNED NOT NULL DEFAULT 0) ENGINE=InnoDB",
                self.t("cdc")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (task VARCHAR(64) NOT NULL, db VARCHAR(64) NOT NULL, \
                 name VARCHAR(64) NOT NULL, key_hash CHAR(64) NOT NULL, key_json LONGTEXT NOT NULL, \
                 row_json LONGTEXT NOT NULL, displaced_by LONGTEXT NOT NULL, at_position TEXT NOT NULL, \
                 parked_at DATETIME(6) NOT NULL, PRIMARY KEY (task, db, name, key_hash)) ENGINE=InnoDB",
                self.t("parked")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (task VARCHAR(64) NOT NULL, kind VARCHAR(16) NOT NULL, \
                 db VARCHAR(64) NOT NULL, name VARCHAR(64) NOT NULL, state VARCHAR(16) NOT NULL, \
                 updated_at DATETIME(6) NOT NULL, PRIMARY KEY (task, kind, db, name)) ENGINE=InnoDB",
                self.t("objects")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (task VARCHAR(64) NOT NULL, db VARCHAR(64) NOT NULL, \
                 name VARCHAR(64) NOT NULL, key_name VARCHAR(64) NULL, rows_estimate BIGINT UNSIGNED NOT NULL, \
                 chunks_total INT UNSIGNED NOT NULL, planned_at DATETIME(6) NOT NULL, \
                 PRIMARY KEY (task, db, name)) ENGINE=InnoDB",
                self.t("tables")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (task VARCHAR(64) NOT NULL, db VARCHAR(64) NOT NULL, \
                 name VARCHAR(64) NOT NULL, chunk_no INT UNSIGNED NOT NULL, lo LONGTEXT NULL, hi LONGTEXT NULL, \
                 done_at DATETIME(6) NULL, `rows` BIGINT UNSIGNED NULL, PRIMARY KEY (task, db, name, chunk_no)) \
                 ENGINE=InnoDB",
                self.t("chunks")
            ),
        ];
        for sql in stmts {
            conn.query_drop(&sql)
                .await
                .ctx("creating the metadata schema on the destination")?;
        }
        let format: Option<u32> = conn
            .query_first(format!(
                "SELECT format FROM {} WHERE task = {}",
                self.t("task"),
                string(&self.task)
            ))
            .await
            .ctx("reading the task row")?;
        match format {
            Some(f) if f != FORMAT => Err(Error::definite(
                &codes::META_CORRUPT,
                format!(
                    "task `{}` has metadata format {f}, this ferry writes {FORMAT}",
                    self.task
                ),
            )),
            Some(_) => Ok(()),
            None => {
                conn.query_drop(format!(
                    "INSERT INTO {} (task, format, created_at, updated_at) VALUES ({}, {FORMAT}, NOW(6), NOW(6))",
                    self.t("task"),
                    string(&self.task)
                ))
                .await
                .ctx("creating the task row")?;
                Ok(())
            }
        }
    }

    /// Reads the task row; a missing schema or row means the task never ran here.
    pub async fn load(&self, conn: &mut Conn) -> Result<TaskRow> {
        let exists: Option<String> = conn
            .exec_first(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'task'",
                (&self.schema,),
            )
            .await
            .ctx("looking for the metadata schema")?;
        if exists.is_none() {
            return Ok(TaskRow::default());
        }
        let row: Option<Row> = conn
            .query_first(format!(
                "SELECT schema_pre_done_at IS NOT NULL, full_done_at IS NOT NULL, schema_post_done_at IS NOT NULL, \
                 failed_code, failed_detail, (SELECT COUNT(*) FROM {} c WHERE c.task = t.task AND c.p0 IS NOT NULL) \
                 FROM {} t WHERE task = {}",
                self.t("cdc"),
                self.t("task"),
                string(&self.task)
            ))
            .await
            .ctx("reading the task row")?;
        let Some(row) = row else {
            return Ok(TaskRow::default());
        };
        let flag = |i: usize| crate::schema::introspect::text(&row, i).as_deref() == Some("1");
        Ok(TaskRow {
            exists: true,
            schema_pre_done: flag(0),
            full_done: flag(1),
            schema_post_done: flag(2),
            failed_code: crate::schema::introspect::text(&row, 3),
            failed_detail: crate::schema::introspect::text(&row, 4),
            incremental: crate::schema::introspect::text(&row, 5).as_deref() == Some("1"),
        })
    }

    pub async fn mark_done(&self, conn: &mut Conn, step: Step) -> Result<()> {
        conn.query_drop(format!(
            "UPDATE {} SET {} = NOW(6), updated_at = NOW(6), failed_code = NULL, failed_detail = NULL WHERE task = {}",
            self.t("task"),
            step.column(),
            string(&self.task)
        ))
        .await
        .ctx("recording a finished step")
    }

    pub async fn mark_failed(&self, conn: &mut Conn, e: &Error) -> Result<()> {
        conn.query_drop(format!(
            "UPDATE {} SET failed_code = {}, failed_detail = {}, updated_at = NOW(6) WHERE task = {}",
            self.t("task"),
            string(e.code().id),
            string(&e.to_string()),
            string(&self.task)
        ))
        .await
        .ctx("recording the failure")
    }

    /// The recorded state of an object this task creates: None, Some("creating") or Some("created").
    pub async fn object_state(
        &self,
        conn: &mut Conn,
        kind: ObjectKind,
        db: &str,
        name: &str,
    ) -> Result<Option<String>> {
        conn.query_first(format!(
            "SELECT state FROM {} WHERE task = {} AND kind = {} AND db = {} AND name = {}",
            self.t("objects"),
            string(&self.task),
            string(kind.as_str()),
            string(db),
            string(name)
        ))
        .await
        .ctx("reading object state")
    }

    pub async fn set_object_state(
        &self,
        conn: &mut Conn,
        kind: ObjectKind,
        db: &str,
        name: &str,
        state: &str,
    ) -> Result<()> {
        conn.query_drop(format!(
            "INSERT INTO {} (task, kind, db, name, state, updated_at) VALUES ({}, {}, {}, {}, {}, NOW(6)) \
             ON DUPLICATE KEY UPDATE state = VALUES(state), updated_at = VALUES(updated_at)",
            self.t("objects"),
            string(&self.task),
            string(kind.as_str()),
            string(db),
            string(name),
            string(state)
        ))
        .await
        .ctx("recording object state")
    }

    /// The durable chunk plan of a table, or None when the table was not planned yet.
    pub async fn chunks(
        &self,
        conn: &mut Conn,
        db: &str,
        name: &str,
    ) -> Result<Option<Vec<ChunkRow>>> {
        let planned: Option<u32> = conn
            .query_first(format!(
                "SELECT chunks_total FROM {} WHERE task = {} AND db = {} AND name = {}",
                self.t("tables"),
                string(&self.task),
                string(db),
                string(name)
            ))
            .await
            .ctx("reading table plan")?;
        let Some(total) = planned else {
            return Ok(None);
        };
        let rows: Vec<ChunkRecord> = conn
            .query(format!(
                "SELECT chunk_no, lo, hi, done_at IS NOT NULL, `rows` FROM {} WHERE task = {} AND db = {} AND name = {} \
                 ORDER BY chunk_no",
                self.t("chunks"),
                string(&self.task),
                string(db),
                string(name)
            ))
            .await
            .ctx("reading chunk plan")?;
        if rows.len() as u64 != u64::from(total) {
            return Err(Error::definite(
                &codes::META_CORRUPT,
                format!(
                    "table {db}.{name} has {} chunk records, its plan says {total}",
                    rows.len()
                ),
            ));
        }
        Ok(Some(
            rows.into_iter()
                .map(|(chunk_no, lo, hi, done, n)| ChunkRow {
                    chunk_no,
                    lo,
                    hi,
                    done,
                    rows: n.unwrap_or(0),
                })
                .collect(),
        ))
    }

    /// Stores a table's chunk plan in one transaction.
    pub async fn save_plan(
        &self,
        conn: &mut Conn,
        db: &str,
        name: &str,
        key_name: Option<&str>,
        rows_estimate: u64,
        chunks: &[ChunkRow],
    ) -> Result<()> {
        let mut tx = conn
            .start_transaction(Default::default())
            .await
            .ctx("saving a chunk plan")?;
        tx.query_drop(format!(
            "DELETE FROM {} WHERE task = {} AND db = {} AND name = {}",
            self.t("chunks"),
            string(&self.task),
            string(db),
            string(name)
        ))
        .await
        .ctx("saving a chunk plan")?;
        for batch in chunks.chunks(500) {
            let values: Vec<String> = batch
                .iter()
                .map(|c| {
                    format!(
                        "({}, {}, {}, {}, {}, {})",
                        string(&self.task),
                        string(db),
                        string(name),
                        c.chunk_no,
                        c.lo.as_deref().map(string).unwrap_or_else(|| "NULL".into()),
                        c.hi.as_deref().map(string).unwrap_or_else(|| "NULL".into())
                    )
                })
                .collect();
            tx.query_drop(format!(
                "INSERT INTO {} (task, db, name, chunk_no, lo, hi) VALUES {}",
                self.t("chunks"),
                values.join(",")
            ))
            .await
            .ctx("saving a chunk plan")?;
        }
        tx.query_drop(format!(
            "REPLACE INTO {} (task, db, name, key_name, rows_estimate, chunks_total, planned_at) \
             VALUES ({}, {}, {}, {}, {rows_estimate}, {}, NOW(6))",
            self.t("tables"),
            string(&self.task),
            string(db),
            string(name),
            key_name.map(string).unwrap_or_else(|| "NULL".into()),
            chunks.len()
        ))
        .await
        .ctx("saving a chunk plan")?;
        tx.commit().await.ctx("saving a chunk plan")
    }

    /// The statement that marks a chunk copied; run in the same transaction as the chunk's rows.
    pub fn chunk_done_sql(&self, db: &str, name: &str, chunk_no: u32, rows: u64) -> String {
        format!(
            "UPDATE {} SET done_at = NOW(6), `rows` = {rows} WHERE task = {} AND db = {} AND name = {} AND chunk_no = {chunk_no}",
            self.t("chunks"),
            string(&self.task),
            string(db),
            string(name)
        )
    }

    /// Progress of every planned table.
    pub async fn progress(&self, conn: &mut Conn) -> Result<Vec<TableProgress>> {
        let rows: Vec<(String, String, u64, u64, u64, u64)> = conn
            .query(format!(
                "SELECT t.db, t.name, t.rows_estimate, CAST(COALESCE(SUM(c.`rows`), 0) AS UNSIGNED), t.chunks_total, \
                 CAST(COUNT(c.done_at) AS UNSIGNED) FROM {} t LEFT JOIN {} c ON c.task = t.task AND c.db = t.db AND c.name = t.name \
                 WHERE t.task = {} GROUP BY t.db, t.name, t.rows_estimate, t.chunks_total ORDER BY t.db, t.name",
                self.t("tables"),
                self.t("chunks"),
                string(&self.task)
            ))
            .await
            .ctx("reading progress")?;
        Ok(rows
            .into_iter()
            .map(
                |(db, name, rows_estimate, rows_copied, chunks_total, chunks_done)| TableProgress {
                    db,
                    name,
                    rows_estimate,
                    rows_copied,
                    chunks_total,
                    chunks_done,
                },
            )
            .collect())
    }

    /// The incremental state; all None when the task never recorded a start position.
    pub async fn cdc(&self, conn: &mut Conn) -> Result<CdcState> {
        type R = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
            u64,
            u64,
        );
        let row: Option<R> = conn
            .query_first(format!(
                "SELECT p0, p1, checkpoint, CAST(checkpoint_at AS CHAR), source_ts, transactions, `rows` FROM {} WHERE task = {}",
                self.t("cdc"),
                string(&self.task)
            ))
            .await
            .ctx("reading the incremental state")?;
        let Some((p0, p1, cp, at, ts, transactions, rows)) = row else {
            return Ok(CdcState::default());
        };
        let pos = |s: Option<String>| -> Result<Option<Position>> {
            s.map(|s| {
                serde_json::from_str(&s).map_err(|e| {
                    Error::definite(
                        &codes::META_CORRUPT,
                        format!("stored binlog position `{s}`: {e}"),
                    )
                })
            })
            .transpose()
        };
        Ok(CdcState {
            p0: pos(p0)?,
            p1: pos(p1)?,
            checkpoint: pos(cp)?,
            checkpoint_at: at,
            source_ts: ts,
            transactions,
            rows,
        })
    }

    /// Records the start position P0 (before any row is copied).
    pub async fn record_p0(&self, conn: &mut Conn, p0: &Position) -> Result<()> {
        conn.query_drop(format!(
            "INSERT INTO {} (task, p0) VALUES ({}, {}) ON DUPLICATE KEY UPDATE p0 = VALUES(p0)",
            self.t("cdc"),
            string(&self.task),
            string(&json(p0))
        ))
        .await
        .ctx("recording the binlog start position")
    }

    /// Records P1, the source position after the last row was copied: catch-up mode ends there.
    pub async fn record_p1(&self, conn: &mut Conn, p1: &Position) -> Result<()> {
        conn.query_drop(format!(
            "UPDATE {} SET p1 = {} WHERE task = {}",
            self.t("cdc"),
            string(&json(p1)),
            string(&self.task)
        ))
        .await
        .ctx("recording the end-of-copy position")
    }

    /// The statement that moves the checkpoint; run in the same transaction as the rows it covers.
    pub fn checkpoint_sql(
        &self,
        at: &Position,
        source_ts: u32,
        transactions: u64,
        rows: u64,
    ) -> String {
        format!(
            "UPDATE {} SET checkpoint = {}, checkpoint_at = NOW(6), source_ts = {source_ts}, \
             transactions = transactions + {transactions}, `rows` = `rows` + {rows} WHERE task = {}",
            self.t("cdc"),
            string(&json(at)),
            string(&self.task)
        )
    }

    /// Rows parked in catch-up mode and not superseded yet.
    pub async fn parked(&self, conn: &mut Conn) -> Result<Vec<Parked>> {
        let rows: Vec<(String, String, String, String, String, String)> = conn
            .query(format!(
                "SELECT db, name, key_json, row_json, displaced_by, at_position FROM {} WHERE task = {} ORDER BY parked_at",
                self.t("parked"),
                string(&self.task)
            ))
            .await
            .ctx("reading parked rows")?;
        Ok(rows
            .into_iter()
            .map(
                |(db, name, key_json, row_json, displaced_by, at_position)| Parked {
                    db,
                    name,
                    key_json,
                    row_json,
                    displaced_by,
                    at_position,
                },
            )
            .collect())
    }

    pub fn park_sql(&self, p: &Parked) -> String {
        format!(
            "REPLACE INTO {} (task, db, name, key_hash, key_json, row_json, displaced_by, at_position, parked_at) \
             VALUES ({}, {}, {}, SHA2({k}, 256), {k}, {}, {}, {}, NOW(6))",
            self.t("parked"),
            string(&self.task),
            string(&p.db),
            string(&p.name),
            string(&p.row_json),
            string(&p.displaced_by),
            string(&p.at_position),
            k = string(&p.key_json)
        )
    }

    pub fn unpark_sql(&self, db: &str, name: &str, key_json: &str) -> String {
        format!(
            "DELETE FROM {} WHERE task = {} AND db = {} AND name = {} AND key_hash = SHA2({}, 256)",
            self.t("parked"),
            string(&self.task),
            string(db),
            string(name),
            string(key_json)
        )
    }
}

fn json(p: &Position) -> String {
    serde_json::to_string(p).unwrap_or_default()
}
