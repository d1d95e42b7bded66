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
pub const FORMAT: u32 = 3;
/// How long a DDL waits for the fence lock a cutover holds.
pub const FENCE_LOCK_WAIT_S: u64 = 60;

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
    /// `ferry cutover` is switching the application over (generation raised, final position being applied).
    CuttingOver,
    /// Cut over: the destination belongs to the application; the task does not run again.
    CutOver,
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
            Phase::CuttingOver => "cutting_over",
            Phase::CutOver => "cut_over",
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
    /// The generation writes are fenced by (raised by each cutover attempt).
    pub generation: u64,
    /// `cutting_over` or `cut_over` once `ferry cutover` ran.
    pub cutover_state: Option<String>,
    /// The last cutover's report (JSON).
    pub cutover_json: Option<String>,
    /// The run that last started passed its precheck.
    pub prechecked: bool,
    /// Paused through the admin endpoint (cleared when a run starts).
    pub paused: bool,
    /// The schema step has recorded at least one object.
    pub objects_started: bool,
}

impl TaskRow {
    /// The state an operator sees: `released`, `cut_over`, `cutting_over`, `failed` (with `failed_code`),
    /// `paused`, `prechecked` (before the schema step wrote anything), or else the phase.
    pub fn state(&self) -> &'static str {
        match self.cutover_state.as_deref() {
            Some("released") => return "released",
            Some("cut_over") => return "cut_over",
            Some("cutting_over") => return "cutting_over",
            _ => {}
        }
        if self.failed_code.is_some() {
            "failed"
        } else if self.paused {
            "paused"
        } else if self.exists && self.prechecked && !self.schema_pre_done && !self.objects_started {
            "prechecked"
        } else {
            self.phase().as_str()
        }
    }

    pub fn phase(&self) -> Phase {
        match self.cutover_state.as_deref() {
            Some("cut_over") => return Phase::CutOver,
            Some("cutting_over") => return Phase::CuttingOver,
            _ => {}
        }
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
    /// The task generation this process writes under (`claim`); a cutover raises the task's generation, and every
    /// destination write of an older one then matches nothing and stops with FERRY-CUT-001 (the fence).
    pub generation: u64,
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
    /// `file:pos` of a DDL statement sent to the destination whose checkpoint is not written yet (a DDL commits
    /// on its own, so a crash can fall between the two).
    pub ddl_pending: Option<String>,
    /// Apply rates over the last measuring window of the running (or last) sync.
    pub transactions_per_s: f64,
    pub rows_per_s: f64,
}

/// A table incremental sync tracks (or tracked): its state and the shape its row events decode against.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncedTable {
    pub db: String,
    pub name: String,
    /// `syncing`, `dropped`, `renamed` (followed; `note` has the new name) or `detached` (renamed where the task
    /// does not follow; no longer migrated).
    pub state: String,
    pub note: String,
    #[serde(skip)]
    pub shape: Option<crate::schema::model::Table>,
    pub at_position: String,
}

/// A coded warning recorded while the task ran.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Warning {
    pub code: String,
    pub detail: String,
    pub at_position: String,
    pub created_at: String,
}

impl CdcState {
    /// Where reading resumes: the checkpoint, else P0.
    pub fn resume_from(&self) -> Option<&Position> {
        self.checkpoint.as_ref().or(self.p0.as_ref())
    }
}

/// A table whose rows catch-up's replay of a foreign key cascade may have changed (see `cdc::recopy`), and its
/// re-copy from a source snapshot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecopyRow {
    pub db: String,
    pub name: String,
    /// Where catch-up first followed a cascade into it (or `round` when the round's closure added it).
    pub reached_at: String,
    /// The source snapshot of the current (or last) re-copy round.
    pub snapshot: Option<Position>,
    /// Rows re-copied in this round so far.
    pub rows: u64,
    /// Every row re-copied under `snapshot`.
    pub copied: bool,
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
            generation: 0,
        }
    }

    /// Takes the task's current generation for this process's writes; a task already cut over refuses
    /// (FERRY-CUT-002) and one being cut over too (FERRY-CUT-001).
    pub async fn claim(&mut self, conn: &mut Conn) -> Result<()> {
        let row: Option<(u64, Option<String>)> = conn
            .query_first(format!(
                "SELECT generation, cutover_state FROM {} WHERE task = {}",
                self.t("task"),
                string(&self.task)
            ))
            .await
            .ctx("reading the task generation")?;
        let Some((generation, state)) = row else {
            return Err(Error::definite(
                &codes::META_CORRUPT,
                format!("task `{}` has no task row", self.task),
            ));
        };
        match state.as_deref() {
            Some("cut_over") => Err(Error::definite(
                &codes::CUT_DONE,
                format!("task `{}` was cut over; the destination belongs to the application now", self.task),
            )),
            Some("released") => Err(Error::definite(
                &codes::CUT_DONE,
                format!("task `{}` was released (its metadata removed); use a new task name", self.task),
            )),
            Some("cutting_over") => Err(Error::definite(
                &codes::CUT_FENCED,
                format!(
                    "task `{}` is being cut over (generation {generation}); if that cutover died, run `ferry cutover` again to finish or roll it back",
                    self.task
                ),
            )),
            _ => {
                self.generation = generation;
                // This run passed its precheck; an earlier failure or pause is over.
                conn.query_drop(format!(
                    "UPDATE {} SET prechecked_at = NOW(6), failed_code = NULL, failed_detail = NULL, paused_at = NULL, \
                     updated_at = NOW(6) WHERE task = {} AND generation = {generation}",
                    self.t("task"),
                    string(&self.task)
                ))
                .await
                .ctx("recording the run's start")?;
                Ok(())
            }
        }
    }

    /// Records a pause (or its end) asked through the admin endpoint, for `ferry status`.
    pub async fn set_paused(&self, conn: &mut Conn, paused: bool) -> Result<()> {
        conn.query_drop(format!(
            "UPDATE {} SET paused_at = {}, updated_at = NOW(6) WHERE task = {}",
            self.t("task"),
            if paused { "NOW(6)" } else { "NULL" },
            string(&self.task)
        ))
        .await
        .ctx("recording the pause")
    }

    /// Removes the task's metadata (chunks, tables, objects, sync state, parked rows, warnings), keeping only the
    /// task row as `released` with a raised generation, so a process still running it is fenced off and a later
    /// `ferry run` of the name refuses. In one transaction.
    pub async fn release(&mut self, conn: &mut Conn) -> Result<()> {
        let mut tx = conn
            .start_transaction(mysql_async::TxOpts::default())
            .await
            .ctx("releasing the task")?;
        for t in [
            "chunks",
            "tables",
            "objects",
            "cdc",
            "cdc_tables",
            "parked",
            "warnings",
            "recopy",
        ] {
            tx.query_drop(format!(
                "DELETE FROM {} WHERE task = {}",
                self.t(t),
                string(&self.task)
            ))
            .await
            .ctx(format!("releasing the task: {t}"))?;
        }
        tx.query_drop(format!(
            "UPDATE {} SET generation = generation + 1, cutover_state = 'released', admin_addr = NULL, \
             updated_at = NOW(6) WHERE task = {}",
            self.t("task"),
            string(&self.task)
        ))
        .await
        .ctx("releasing the task")?;
        tx.commit().await.ctx("releasing the task")
    }

    /// `JOIN <task> ft ON ...` for a multi-table UPDATE of `alias`'s row: it matches only while the task's
    /// generation is this process's. The join reads the task row with a shared lock, so a cutover's generation
    /// change waits for the transaction and every later one sees it.
    fn fence_join(&self, alias: &str) -> String {
        format!(
            "JOIN {} ft ON ft.task = {alias}.task AND ft.generation = {}",
            self.t("task"),
            self.generation
        )
    }

    /// Records where this process serves its admin endpoint (fenced: a stale process does not take it over).
    pub async fn record_admin(&self, conn: &mut Conn, addr: &str) -> Result<()> {
        conn.query_drop(format!(
            "UPDATE {} SET admin_addr = {} WHERE task = {} AND generation = {}",
            self.t("task"),
            string(addr),
            string(&self.task),
            self.generation
        ))
        .await
        .ctx("recording the admin endpoint")
    }

    /// Where the task's last `ferry run` served its admin endpoint.
    pub async fn admin_addr(&self, conn: &mut Conn) -> Result<Option<String>> {
        if !self.exists(conn).await? {
            return Ok(None);
        }
        let a: Option<Option<String>> = conn
            .query_first(format!(
                "SELECT admin_addr FROM {} WHERE task = {}",
                self.t("task"),
                string(&self.task)
            ))
            .await
            .ctx("reading the admin endpoint")?;
        Ok(a.flatten())
    }

    /// Raises the task's generation (under the fence lock, which the caller holds) and marks it `cutting_over`:
    /// from this commit on, every write of a process of an older generation matches nothing. This handle then
    /// writes under the new generation.
    pub async fn raise_generation(&mut self, conn: &mut Conn) -> Result<u64> {
        conn.query_drop(format!(
            "UPDATE {} SET generation = generation + 1, cutover_state = 'cutting_over', updated_at = NOW(6) WHERE task = {}",
            self.t("task"),
            string(&self.task)
        ))
        .await
        .ctx("raising the task generation")?;
        let g: Option<u64> = conn
            .query_first(format!(
                "SELECT generation FROM {} WHERE task = {}",
                self.t("task"),
                string(&self.task)
            ))
            .await
            .ctx("reading the task generation")?;
        let g = g.ok_or_else(|| {
            Error::definite(
                &codes::META_CORRUPT,
                format!("task `{}` has no task row", self.task),
            )
        })?;
        self.generation = g;
        Ok(g)
    }

    /// Records `conn` as the task's applier session before it takes any lock: a process stopped (SIGSTOP, a stalled
    /// host) in its first transaction on a new session, a re-copy chunk or a batch, holds the task row's shared
    /// lock and row locks under a session a cutover must end, not under the one the last checkpoint named.
    pub async fn record_applier_session(&self, conn: &mut Conn) -> Result<()> {
        // Fenced (a process a cutover fenced off names no session), on its own (autocommit: no lock kept).
        conn.query_drop(format!(
            "UPDATE {} c {} SET c.applier_connection = CONNECTION_ID() WHERE c.task = {}",
            self.t("cdc"),
            self.fence_join("c"),
            string(&self.task)
        ))
        .await
        .ctx("recording the applier's session")
    }

    /// The destination session the task's applier last committed on (a cutover ends it: a stopped process may
    /// hold row locks there that the final drain would wait on).
    pub async fn applier_connection(&self, conn: &mut Conn) -> Result<Option<u64>> {
        let id: Option<Option<u64>> = conn
            .query_first(format!(
                "SELECT applier_connection FROM {} WHERE task = {}",
                self.t("cdc"),
                string(&self.task)
            ))
            .await
            .ctx("reading the applier's session")?;
        Ok(id.flatten())
    }

    /// Records the cutover's end: `cut_over` with its report, or (rolled back) no cutover state, so the task can
    /// run again under the generation the attempt raised.
    pub async fn record_cutover(
        &self,
        conn: &mut Conn,
        state: Option<&str>,
        report_json: &str,
    ) -> Result<()> {
        conn.query_drop(format!(
            "UPDATE {} SET cutover_state = {}, cutover_at = NOW(6), cutover_json = {}, updated_at = NOW(6) \
             WHERE task = {} AND generation = {}",
            self.t("task"),
            state.map(string).unwrap_or_else(|| "NULL".into()),
            string(report_json),
            string(&self.task),
            self.generation
        ))
        .await
        .ctx("recording the cutover")
    }

    /// The destination's named lock that serializes a task's DDL with its cutover (GET_LOCK names are at most 64
    /// characters: long schema/task names are hashed).
    pub fn fence_lock_name(&self) -> String {
        let name = format!("ferry.{}.{}", self.schema, self.task);
        if name.len() <= 64 {
            return name;
        }
        let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("ferry.{h:016x}")
    }

    /// Takes the fence lock, waiting at most `FENCE_LOCK_WAIT_S` (a transient failure after that: the cutover
    /// holding it takes seconds).
    pub async fn lock_fence(&self, conn: &mut Conn) -> Result<()> {
        let got: Option<Option<i64>> = conn
            .exec_first(
                "SELECT GET_LOCK(?, ?)",
                (self.fence_lock_name(), FENCE_LOCK_WAIT_S),
            )
            .await
            .ctx("taking the task's fence lock")?;
        match got.flatten() {
            Some(1) => Ok(()),
            _ => Err(Error::transient(format!(
                "the fence lock {} was not free within {FENCE_LOCK_WAIT_S} s",
                self.fence_lock_name()
            ))),
        }
    }

    pub async fn unlock_fence(&self, conn: &mut Conn) -> Result<()> {
        conn.exec_drop("SELECT RELEASE_LOCK(?)", (self.fence_lock_name(),))
            .await
            .ctx("releasing the task's fence lock")
    }

    /// The generation the task row holds now (None when it cannot be read or is gone).
    async fn generation_now(&self, conn: &mut Conn) -> Option<u64> {
        conn.query_first(format!(
            "SELECT generation FROM {} WHERE task = {}",
            self.t("task"),
            string(&self.task)
        ))
        .await
        .unwrap_or(None)
    }

    /// The fence error when a cutover moved the task's generation past this process's, else `e` as it is: a stale
    /// process that wakes up may first hit something else (its binlog session taken over by the cutover's drain,
    /// a session killed), and what it must say is that it was fenced off.
    pub async fn fenced_instead(&self, conn: &mut Conn, e: Error) -> Error {
        if e.code().id == codes::CUT_FENCED.id {
            return e;
        }
        let now = self.generation_now(conn).await;
        match now {
            Some(g) if g != self.generation => Error::definite(
                &codes::CUT_FENCED,
                format!(
                    "task `{}` is at generation {g} (a cutover), this process ran under {}; it stopped on: {e}",
                    self.task, self.generation
                ),
            ),
            _ => e,
        }
    }

    /// The error for a fenced statement that matched nothing: FERRY-CUT-001 when the generation moved on (the task
    /// was cut over by a newer process), else the task row is gone.
    pub async fn fenced_error(&self, conn: &mut Conn, what: &str) -> Error {
        let now = self.generation_now(conn).await;
        match now {
            Some(g) if g != self.generation => Error::definite(
                &codes::CUT_FENCED,
                format!(
                    "{what}: task `{}` is at generation {g} (a cutover), this process wrote under {}; it writes nothing more",
                    self.task, self.generation
                ),
            ),
            _ => Error::definite(
                &codes::META_CORRUPT,
                format!("{what}: the task row of `{}` is gone", self.task),
            ),
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
                 schema_post_done_at DATETIME(6) NULL, failed_code VARCHAR(32) NULL, failed_detail TEXT NULL, \
                 generation BIGINT UNSIGNED NOT NULL DEFAULT 1, cutover_state VARCHAR(16) NULL, \
                 cutover_at DATETIME(6) NULL, cutover_json LONGTEXT NULL, admin_addr VARCHAR(64) NULL, \
                 prechecked_at DATETIME(6) NULL, paused_at DATETIME(6) NULL \
                 ) ENGINE=InnoDB",
                self.t("task")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (task VARCHAR(64) NOT NULL PRIMARY KEY, p0 TEXT NULL, p1 TEXT NULL, \
                 checkpoint TEXT NULL, checkpoint_at DATETIME(6) NULL, source_ts BIGINT NULL, \
                 transactions BIGINT UNSIGNED NOT NULL DEFAULT 0, `rows` BIGINT UNSIGNED NOT NULL DEFAULT 0, \
                 ddl_pending VARCHAR(600) NULL, transactions_per_s DOUBLE NOT NULL DEFAULT 0, \
                 rows_per_s DOUBLE NOT NULL DEFAULT 0, applier_connection BIGINT UNSIGNED NULL) ENGINE=InnoDB",
                self.t("cdc")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (task VARCHAR(64) NOT NULL, db VARCHAR(64) NOT NULL, \
                 name VARCHAR(64) NOT NULL, state VARCHAR(16) NOT NULL, note TEXT NOT NULL, shape_json LONGTEXT NULL, \
                 at_position TEXT NOT NULL, updated_at DATETIME(6) NOT NULL, PRIMARY KEY (task, db, name)) ENGINE=InnoDB",
                self.t("cdc_tables")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, \
                 task VARCHAR(64) NOT NULL, code VARCHAR(32) NOT NULL, detail TEXT NOT NULL, at_position TEXT NOT NULL, \
                 created_at DATETIME(6) NOT NULL, KEY (task, id)) ENGINE=InnoDB",
                self.t("warnings")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (task VARCHAR(64) NOT NULL, db VARCHAR(64) NOT NULL, \
                 name VARCHAR(64) NOT NULL, key_hash CHAR(64) NOT NULL, key_json LONGTEXT NOT NULL, \
                 row_json LONGTEXT NOT NULL, displaced_by LONGTEXT NOT NULL, at_position TEXT NOT NULL, \
                 parked_at DATETIME(6) NOT NULL, PRIMARY KEY (task, db, name, key_hash)) ENGINE=InnoDB",
                self.t("parked")
            ),
            self.recopy_table_sql(),
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

    /// Whether the metadata schema (its `task` table) is on this server.
    pub async fn exists(&self, conn: &mut Conn) -> Result<bool> {
        let found: Option<String> = conn
            .exec_first(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'task'",
                (&self.schema,),
            )
            .await
            .ctx("looking for the metadata schema")?;
        Ok(found.is_some())
    }

    /// Reads the task row; a missing schema or row means the task never ran here.
    pub async fn load(&self, conn: &mut Conn) -> Result<TaskRow> {
        if !self.exists(conn).await? {
            return Ok(TaskRow::default());
        }
        let row: Option<Row> = conn
            .query_first(format!(
                "SELECT schema_pre_done_at IS NOT NULL, full_done_at IS NOT NULL, schema_post_done_at IS NOT NULL, \
                 failed_code, failed_detail, (SELECT COUNT(*) FROM {} c WHERE c.task = t.task AND c.p0 IS NOT NULL), \
                 generation, cutover_state, cutover_json, prechecked_at IS NOT NULL, paused_at IS NOT NULL, \
                 (SELECT COUNT(*) > 0 FROM {} o WHERE o.task = t.task) FROM {} t WHERE task = {}",
                self.t("cdc"),
                self.t("objects"),
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
            generation: crate::schema::introspect::text(&row, 6)
                .and_then(|g| g.parse().ok())
                .unwrap_or(0),
            cutover_state: crate::schema::introspect::text(&row, 7),
            cutover_json: crate::schema::introspect::text(&row, 8),
            prechecked: flag(9),
            paused: flag(10),
            objects_started: flag(11),
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
            "UPDATE {} SET failed_code = {}, failed_detail = {}, updated_at = NOW(6) WHERE task = {} AND generation = {}",
            self.t("task"),
            string(e.code().id),
            string(&e.to_string()),
            string(&self.task),
            self.generation
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

    /// The statement that marks a chunk copied; run in the same transaction as the chunk's rows. Fenced: it matches
    /// no row (and the chunk must roll back) once a cutover moved the task's generation on.
    pub fn chunk_done_sql(&self, db: &str, name: &str, chunk_no: u32, rows: u64) -> String {
        format!(
            "UPDATE {} ch {} SET ch.done_at = NOW(6), ch.`rows` = {rows} WHERE ch.task = {} AND ch.db = {} AND ch.name = {} \
             AND ch.chunk_no = {chunk_no}",
            self.t("chunks"),
            self.fence_join("ch"),
            string(&self.task),
            string(db),
            string(name)
        )
    }

    /// The rows a chunk was recorded done with, None while it is not done. Read before a chunk is retried: a
    /// COMMIT whose reply was lost may have committed it. A locking read, so a commit still in flight (the chunk's
    /// record locked by its transaction) is waited for, up to the server's lock wait timeout, not read past.
    pub async fn chunk_done_rows(
        &self,
        conn: &mut Conn,
        db: &str,
        name: &str,
        chunk_no: u32,
    ) -> Result<Option<u64>> {
        let row: Option<Option<u64>> = conn
            .query_first(format!(
                "SELECT CAST(`rows` AS UNSIGNED) FROM {} WHERE task = {} AND db = {} AND name = {} AND chunk_no = {chunk_no} \
                 AND done_at IS NOT NULL FOR UPDATE",
                self.t("chunks"),
                string(&self.task),
                string(db),
                string(name)
            ))
            .await
            .ctx("reading a chunk's done record")?;
        Ok(row.map(|r| r.unwrap_or(0)))
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
        let row: Option<Row> = conn
            .query_first(format!(
                "SELECT p0, p1, checkpoint, CAST(checkpoint_at AS CHAR), source_ts, transactions, `rows`, ddl_pending, \
                 transactions_per_s, rows_per_s FROM {} WHERE task = {}",
                self.t("cdc"),
                string(&self.task)
            ))
            .await
            .ctx("reading the incremental state")?;
        let Some(row) = row else {
            return Ok(CdcState::default());
        };
        let text = |i: usize| crate::schema::introspect::text(&row, i);
        let num = |i: usize| text(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
        let (p0, p1, cp, at, ts) = (text(0), text(1), text(2), text(3), text(4));
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
            source_ts: ts.and_then(|s| s.parse().ok()),
            transactions: num(5) as u64,
            rows: num(6) as u64,
            ddl_pending: text(7),
            transactions_per_s: num(8),
            rows_per_s: num(9),
        })
    }

    /// Records the start position P0 (before any row is copied) and, in the same transaction, the tables
    /// incremental tracks from there with the shapes their row events decode against.
    pub async fn record_p0(
        &self,
        conn: &mut Conn,
        p0: &Position,
        tables: &[crate::schema::model::Table],
    ) -> Result<()> {
        let mut stmts = vec![
            "BEGIN".to_string(),
            format!(
                "DELETE FROM {} WHERE task = {}",
                self.t("cdc_tables"),
                string(&self.task)
            ),
        ];
        for t in tables {
            stmts.push(self.synced_table_sql(
                &t.db,
                &t.name,
                "syncing",
                "",
                Some(t),
                &p0.to_string(),
            ));
        }
        stmts.push(format!(
            "INSERT INTO {} (task, p0) VALUES ({}, {}) ON DUPLICATE KEY UPDATE p0 = VALUES(p0)",
            self.t("cdc"),
            string(&self.task),
            string(&json(p0))
        ));
        stmts.push("COMMIT".into());
        for s in stmts {
            conn.query_drop(s)
                .await
                .ctx("recording the binlog start position")?;
        }
        Ok(())
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

    /// The statement that moves the checkpoint (and clears a pending DDL mark); run in the same transaction as
    /// the rows it covers. `rates` are (transactions/s, rows/s) of the current measuring window, if one ended.
    /// Fenced like `chunk_done_sql`: after a cutover it matches nothing and the batch rolls back.
    pub fn checkpoint_sql(
        &self,
        at: &Position,
        source_ts: u32,
        transactions: u64,
        rows: u64,
        rates: Option<(f64, f64)>,
    ) -> String {
        let rates = rates
            .map(|(t, r)| format!(", c.transactions_per_s = {t:.1}, c.rows_per_s = {r:.1}"))
            .unwrap_or_default();
        format!(
            "UPDATE {} c {} SET c.checkpoint = {}, c.checkpoint_at = NOW(6), c.source_ts = {source_ts}, \
             c.transactions = c.transactions + {transactions}, c.`rows` = c.`rows` + {rows}, c.ddl_pending = NULL, \
             c.applier_connection = CONNECTION_ID(){rates} WHERE c.task = {}",
            self.t("cdc"),
            self.fence_join("c"),
            string(&json(at)),
            string(&self.task)
        )
    }

    /// Marks a DDL statement (by the `file:pos` it ends at) as sent to the destination before its checkpoint,
    /// or (None) clears the mark.
    pub fn ddl_pending_sql(&self, at: Option<&str>) -> String {
        format!(
            "UPDATE {} c {} SET c.ddl_pending = {} WHERE c.task = {}",
            self.t("cdc"),
            self.fence_join("c"),
            at.map(string).unwrap_or_else(|| "NULL".into()),
            string(&self.task)
        )
    }

    /// Every table incremental tracks or tracked, with its state and stored shape.
    pub async fn synced_tables(&self, conn: &mut Conn) -> Result<Vec<SyncedTable>> {
        type R = (String, String, String, String, Option<String>, String);
        let rows: Vec<R> = conn
            .query(format!(
                "SELECT db, name, state, note, shape_json, at_position FROM {} WHERE task = {} ORDER BY db, name",
                self.t("cdc_tables"),
                string(&self.task)
            ))
            .await
            .ctx("reading the tables incremental tracks")?;
        rows.into_iter()
            .map(|(db, name, state, note, shape, at_position)| {
                let shape = shape
                    .map(|s| {
                        serde_json::from_str(&s).map_err(|e| {
                            Error::definite(
                                &codes::META_CORRUPT,
                                format!("stored shape of {db}.{name}: {e}"),
                            )
                        })
                    })
                    .transpose()?;
                Ok(SyncedTable {
                    db,
                    name,
                    state,
                    note,
                    shape,
                    at_position,
                })
            })
            .collect()
    }

    /// Records a table's state (and, while it is tracked, the shape its rows decode against).
    pub fn synced_table_sql(
        &self,
        db: &str,
        name: &str,
        state: &str,
        note: &str,
        shape: Option<&crate::schema::model::Table>,
        at: &str,
    ) -> String {
        let shape = shape
            .and_then(|t| serde_json::to_string(t).ok())
            .map(|s| string(&s))
            .unwrap_or_else(|| "NULL".into());
        format!(
            "REPLACE INTO {} (task, db, name, state, note, shape_json, at_position, updated_at) \
             VALUES ({}, {}, {}, {}, {}, {shape}, {}, NOW(6))",
            self.t("cdc_tables"),
            string(&self.task),
            string(db),
            string(name),
            string(state),
            string(note),
            string(at)
        )
    }

    pub fn warning_sql(&self, code: &crate::error::Code, detail: &str, at: &str) -> String {
        format!(
            "INSERT INTO {} (task, code, detail, at_position, created_at) VALUES ({}, {}, {}, {}, NOW(6))",
            self.t("warnings"),
            string(&self.task),
            string(code.id),
            string(detail),
            string(at)
        )
    }

    /// The task's warnings, oldest first (at most `limit`, the newest ones).
    pub async fn warnings(&self, conn: &mut Conn, limit: u32) -> Result<Vec<Warning>> {
        let rows: Vec<(String, String, String, String)> = conn
            .query(format!(
                "SELECT code, detail, at_position, CAST(created_at AS CHAR) FROM \
                 (SELECT * FROM {} WHERE task = {} ORDER BY id DESC LIMIT {limit}) w ORDER BY id",
                self.t("warnings"),
                string(&self.task)
            ))
            .await
            .ctx("reading warnings")?;
        Ok(rows
            .into_iter()
            .map(|(code, detail, at_position, created_at)| Warning {
                code,
                detail,
                at_position,
                created_at,
            })
            .collect())
    }

    fn recopy_table_sql(&self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {} (task VARCHAR(64) NOT NULL, db VARCHAR(64) NOT NULL, \
             name VARCHAR(64) NOT NULL, reached_at TEXT NOT NULL, snapshot TEXT NULL, after_key LONGTEXT NULL, \
             `rows` BIGINT UNSIGNED NOT NULL DEFAULT 0, started_at DATETIME(6) NULL, copied_at DATETIME(6) NULL, \
             PRIMARY KEY (task, db, name)) ENGINE=InnoDB",
            self.t("recopy")
        )
    }

    /// Creates the `recopy` table where metadata written by an earlier ferry lacks it (sync runs from `ferry
    /// cutover` too, which does not create the metadata schema).
    pub async fn ensure_recopy(&self, conn: &mut Conn) -> Result<()> {
        conn.query_drop(self.recopy_table_sql())
            .await
            .ctx("creating the metadata schema on the destination")
    }

    /// The tables catch-up recorded for a re-copy and their re-copy state.
    pub async fn recopy(&self, conn: &mut Conn) -> Result<Vec<RecopyRow>> {
        type R = (String, String, String, Option<String>, u64, bool);
        let rows: Vec<R> = conn
            .query(format!(
                "SELECT db, name, reached_at, snapshot, CAST(`rows` AS UNSIGNED), copied_at IS NOT NULL FROM {} \
                 WHERE task = {} ORDER BY db, name",
                self.t("recopy"),
                string(&self.task)
            ))
            .await
            .ctx("reading the tables to re-copy")?;
        rows.into_iter()
            .map(|(db, name, reached_at, snapshot, rows, copied)| {
                let snapshot = snapshot
                    .map(|s| {
                        serde_json::from_str(&s).map_err(|e| {
                            Error::definite(
                                &codes::META_CORRUPT,
                                format!("stored re-copy snapshot of {db}.{name} `{s}`: {e}"),
                            )
                        })
                    })
                    .transpose()?;
                Ok(RecopyRow {
                    db,
                    name,
                    reached_at,
                    snapshot,
                    rows,
                    copied,
                })
            })
            .collect()
    }

    /// Records (in the checkpoint's transaction) that a replayed cascade may have changed rows of a table.
    pub fn recopy_reached_sql(&self, db: &str, name: &str, at: &str) -> String {
        format!(
            "INSERT IGNORE INTO {} (task, db, name, reached_at) VALUES ({}, {}, {}, {})",
            self.t("recopy"),
            string(&self.task),
            string(db),
            string(name),
            string(at)
        )
    }

    /// Starts a re-copy round under `snapshot`: `tables` (any not recorded yet are added) start over, and the
    /// recorded tables not among them (no longer tracked) count as done. One transaction, fenced.
    pub async fn recopy_start(
        &self,
        conn: &mut Conn,
        tables: &[(String, String)],
        snapshot: &Position,
    ) -> Result<()> {
        let mut tx = conn
            .start_transaction(mysql_async::TxOpts::default())
            .await
            .ctx("starting a re-copy")?;
        for (db, name) in tables {
            tx.query_drop(self.recopy_reached_sql(db, name, "round"))
                .await
                .ctx("starting a re-copy")?;
        }
        let listed: Vec<String> = tables
            .iter()
            .map(|(d, n)| format!("({}, {})", string(d), string(n)))
            .collect();
        let listed = if listed.is_empty() {
            "FALSE".to_string()
        } else {
            format!("(r.db, r.name) IN ({})", listed.join(", "))
        };
        tx.query_drop(format!(
            "UPDATE {} r {} SET r.snapshot = {}, r.after_key = NULL, r.`rows` = 0, r.started_at = NOW(6), \
             r.copied_at = IF({listed}, NULL, NOW(6)) WHERE r.task = {}",
            self.t("recopy"),
            self.fence_join("r"),
            string(&json(snapshot)),
            string(&self.task)
        ))
        .await
        .ctx("starting a re-copy")?;
        if tx.affected_rows() == 0 {
            tx.rollback().await.ctx("starting a re-copy")?;
            return Err(self.fenced_error(conn, "starting a re-copy").await);
        }
        tx.commit().await.ctx("starting a re-copy")
    }

    /// The statement that records a re-copy chunk in its transaction: rows up to `after_key` (JSON) re-copied,
    /// `rows` more of them, the table whole when `done`. Fenced: it matches nothing after a cutover.
    pub fn recopy_chunk_sql(
        &self,
        db: &str,
        name: &str,
        after_key: Option<&str>,
        rows: u64,
        done: bool,
    ) -> String {
        format!(
            "UPDATE {} r {} SET r.after_key = {}, r.`rows` = r.`rows` + {rows}, r.copied_at = {} \
             WHERE r.task = {} AND r.db = {} AND r.name = {}",
            self.t("recopy"),
            self.fence_join("r"),
            after_key.map(string).unwrap_or_else(|| "NULL".into()),
            if done { "NOW(6)" } else { "NULL" },
            string(&self.task),
            string(db),
            string(name)
        )
    }

    /// Ends a re-copy round: P1 moves to its snapshot, and the rows catch-up parked in the re-copied tables are
    /// dropped (the snapshot holds those tables as they are). One transaction, fenced.
    pub async fn recopy_finish(
        &self,
        conn: &mut Conn,
        snapshot: &Position,
        tables: &[(String, String)],
    ) -> Result<()> {
        let mut tx = conn
            .start_transaction(mysql_async::TxOpts::default())
            .await
            .ctx("ending a re-copy")?;
        let p1 = string(&json(snapshot));
        tx.query_drop(format!(
            "UPDATE {} c {} SET c.p1 = {p1} WHERE c.task = {}",
            self.t("cdc"),
            self.fence_join("c"),
            string(&self.task)
        ))
        .await
        .ctx("ending a re-copy")?;
        let changed = tx.affected_rows();
        // A second try writes the same P1 (no row changed): read back what the fenced update left.
        let now: Option<Option<String>> = tx
            .query_first(format!(
                "SELECT p1 FROM {} WHERE task = {}",
                self.t("cdc"),
                string(&self.task)
            ))
            .await
            .ctx("ending a re-copy")?;
        if changed == 0 && now.flatten().as_deref() != Some(json(snapshot).as_str()) {
            tx.rollback().await.ctx("ending a re-copy")?;
            return Err(self.fenced_error(conn, "ending a re-copy").await);
        }
        for (db, name) in tables {
            tx.query_drop(format!(
                "DELETE FROM {} WHERE task = {} AND db = {} AND name = {}",
                self.t("parked"),
                string(&self.task),
                string(db),
                string(name)
            ))
            .await
            .ctx("ending a re-copy")?;
        }
        tx.commit().await.ctx("ending a re-copy")
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
