//! The task file (TOML): its shape, defaults, and validation with coded errors that name the key.

use crate::codes;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    pub task: TaskSection,
    pub source: Endpoint,
    pub destination: Endpoint,
    pub objects: Objects,
    #[serde(default)]
    pub full: FullSection,
    #[serde(default)]
    pub incremental: IncrementalSection,
    #[serde(default)]
    pub metadata: MetadataSection,
    #[serde(default)]
    pub precheck: PrecheckSection,
    #[serde(default)]
    pub schema: SchemaSection,
    #[serde(default)]
    pub mapping: MappingSection,
    #[serde(default)]
    pub cutover: CutoverSection,
    #[serde(default)]
    pub retry: RetrySection,
    #[serde(default)]
    pub admin: AdminSection,
    #[serde(default)]
    pub alerts: AlertsSection,
}

/// The admin endpoint of `ferry run` (`[admin]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A loopback address; port 0 picks a free port (recorded in the metadata for `ferry pause` and friends).
    #[serde(default = "default_admin_listen")]
    pub listen: String,
}

fn default_admin_listen() -> String {
    "127.0.0.1:0".into()
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            enabled: true,
            listen: default_admin_listen(),
        }
    }
}

/// Retry windows (`[retry]`): how long one transient failure may last before the task stops (see `retry.rs`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySection {
    /// The server unreachable or the connection lost, in minutes (10..=1440).
    #[serde(default = "default_connection_minutes")]
    pub connection_minutes: u64,
    /// A statement the server refuses for now (deadlock, lock wait, ...), in minutes (1..=1440, less than
    /// connection_minutes).
    #[serde(default = "default_operation_minutes")]
    pub operation_minutes: u64,
    /// A run that failed with something that may heal (its retry window ran out, the server was unreachable) is
    /// started again from its checkpoint for this many hours after the first such failure; 0 = never.
    #[serde(default = "default_auto_resume_hours")]
    pub auto_resume_hours: u64,
}

fn default_auto_resume_hours() -> u64 {
    168
}

/// Alerts (`[alerts]`): where to send them and when lag counts as an incident.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// JSON POST target (http://...); empty = none.
    #[serde(default)]
    pub webhook: String,
    /// Shell command run with FERRY_ALERT_JSON / FERRY_ALERT_EVENT / FERRY_ALERT_TASK set; empty = none.
    #[serde(default)]
    pub command: String,
    #[serde(default = "default_lag_s_threshold")]
    pub lag_s_threshold: u64,
    /// How long lag must stay above the threshold before the alert.
    #[serde(default = "default_lag_s_for")]
    pub lag_s_for: u64,
    /// How often `ferry run` looks at the lag.
    #[serde(default = "default_poll_s")]
    pub poll_s: u64,
}

fn default_lag_s_threshold() -> u64 {
    30
}
fn default_lag_s_for() -> u64 {
    60
}
fn default_poll_s() -> u64 {
    5
}

impl Default for AlertsSection {
    fn default() -> Self {
        AlertsSection {
            webhook: String::new(),
            command: String::new(),
            lag_s_threshold: default_lag_s_threshold(),
            lag_s_for: default_lag_s_for(),
            poll_s: default_poll_s(),
        }
    }
}

fn default_connection_minutes() -> u64 {
    720
}
fn default_operation_minutes() -> u64 {
    10
}

impl Default for RetrySection {
    fn default() -> Self {
        RetrySection {
            connection_minutes: default_connection_minutes(),
            operation_minutes: default_operation_minutes(),
            auto_resume_hours: default_auto_resume_hours(),
        }
    }
}

/// `ferry cutover` (`[cutover]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutoverSection {
    /// Refuse to start while the destination is further behind the source than this.
    #[serde(default = "default_lag_s_max")]
    pub lag_s_max: u64,
    /// Set the source `super_read_only` where the server has it, else `read_only` (naming the sessions it does not
    /// stop, FERRY-CUT-005), and take the final position once the source's binlog stands still; without it the
    /// operator stops the application's writes, and cutover waits until the source's binlog stands still.
    #[serde(default)]
    pub set_source_read_only: bool,
    /// REVOKE ferry's write privileges on the migrated databases of the destination after the switch, and check
    /// they are gone.
    #[serde(default)]
    pub revoke_destination_writes: bool,
    /// How long the source's binlog may take to stand still (after read_only, or operator-stopped writes), and
    /// setting read_only may wait for table locks, at most.
    #[serde(default = "default_quiet_wait_s")]
    pub quiet_wait_s: u64,
    /// How long applying up to the final position may take before the cutover rolls back.
    #[serde(default = "default_drain_s_max")]
    pub drain_s_max: u64,
}

fn default_lag_s_max() -> u64 {
    5
}
fn default_quiet_wait_s() -> u64 {
    60
}
fn default_drain_s_max() -> u64 {
    600
}

impl Default for CutoverSection {
    fn default() -> Self {
        CutoverSection {
            lag_s_max: default_lag_s_max(),
            set_source_read_only: false,
            revoke_destination_writes: false,
            quiet_wait_s: default_quiet_wait_s(),
            drain_s_max: default_drain_s_max(),
        }
    }
}

/// Name mapping (`[mapping]`): the names objects get on the destination.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSection {
    /// Source database -> destination database, for schema, copy, sync (rows and DDL) and verify.
    #[serde(default)]
    pub databases: std::collections::BTreeMap<String, String>,
    /// Source database -> source table -> destination table name (in the database's destination name):
    /// `[mapping.tables.shop] customers = "clients"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tables: BTreeMap<String, BTreeMap<String, String>>,
    /// Source database -> source table -> source column -> destination column name:
    /// `[mapping.columns.shop.customers] email = "email_address"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
}

/// Schema migration settings (`[schema]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaSection {
    /// The storage engine of every table ferry creates on the destination (ENGINE= rewritten, also in DDL
    /// replicated from the binlog); unset keeps the source's engines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_engine: Option<String>,
    /// What to do with objects of the selection that already exist on the destination.
    #[serde(default)]
    pub conflict_mode: ConflictMode,
}

/// How a task treats destination objects with the names of the objects it migrates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictMode {
    /// Any such object fails the precheck (FERRY-SCH-001): ferry never writes into what it did not create.
    #[default]
    PrecheckAndReport,
    /// Existing objects are adopted: the copy keeps destination rows whose key exists, sync overwrites them (it
    /// stays idempotent throughout); with another table shape only the common columns are written, and a
    /// destination column that cannot be filled fails the precheck (FERRY-PRE-013).
    IgnoreAndProceed,
}

/// Precheck settings (`[precheck]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrecheckSection {
    /// Warning codes the DBA has acknowledged: shown as acknowledged, never as warnings. Failures cannot be.
    #[serde(default)]
    pub ignore: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSection {
    pub name: String,
    pub types: Vec<MigrationType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationType {
    Schema,
    Full,
    Incremental,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    Disabled,
    #[default]
    Preferred,
    Required,
    VerifyCa,
    VerifyIdentity,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    #[serde(default)]
    pub tls: TlsMode,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password_env", &self.password_env)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Endpoint {
    /// `host:port`, for messages.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

fn default_port() -> u16 {
    3306
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objects {
    #[serde(default)]
    pub databases: Vec<String>,
    /// `db.table` names.
    #[serde(default)]
    pub tables: Vec<String>,
    /// `db.name` patterns (`*` any run of characters, `?` one) of tables, views and routines left out of the
    /// selection, also when created later on the source (incremental); triggers on excluded tables go with them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Column selection: database -> table -> the columns the destination gets (`[objects.columns.shop]
    /// customers = ["id", "email"]`); tables not listed keep every column.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

/// Whether a selection entry is a pattern (`*` any run of characters, `?` one) rather than a name.
pub fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?'])
}

impl Objects {
    /// Whether `db` is selected whole (by name or by a `databases` pattern).
    pub fn selects_db(&self, db: &str) -> bool {
        self.databases
            .iter()
            .any(|p| p == db || is_pattern(p) && wildmatch::WildMatch::new(p).matches(db))
    }

    /// Whether `db.name` is selected by a `tables` entry (a name or a pattern).
    pub fn selects_table(&self, db: &str, name: &str) -> bool {
        let full = format!("{db}.{name}");
        self.tables
            .iter()
            .any(|p| p == &full || is_pattern(p) && wildmatch::WildMatch::new(p).matches(&full))
    }

    /// Whether `db.name` matches an exclude pattern.
    pub fn excluded(&self, db: &str, name: &str) -> bool {
        let full = format!("{db}.{name}");
        self.exclude
            .iter()
            .any(|p| wildmatch::WildMatch::new(p).matches(&full))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullSection {
    #[serde(default = "default_workers")]
    pub workers: usize,
    #[serde(default = "default_chunk_rows")]
    pub chunk_rows: u64,
    /// Queries per second sent to the source by the copy (chunk reads and chunk planning); 0 = unlimited.
    #[serde(default)]
    pub source_qps_max: u64,
    /// Rows per second copied; 0 = unlimited.
    #[serde(default)]
    pub rows_per_s_max: u64,
    /// Megabytes (MiB) per second of row data written to the destination; 0 = unlimited.
    #[serde(default)]
    pub mb_per_s_max: u64,
    /// Write chunks with LOAD DATA LOCAL INFILE where every column is of a text-loadable type (a chunk the
    /// destination does not take row for row is written by INSERT instead); false: INSERT always.
    #[serde(default = "yes")]
    pub load_data: bool,
}

impl Default for FullSection {
    fn default() -> Self {
        FullSection {
            workers: default_workers(),
            chunk_rows: default_chunk_rows(),
            source_qps_max: 0,
            rows_per_s_max: 0,
            mb_per_s_max: 0,
            load_data: true,
        }
    }
}

impl FullSection {
    pub fn rates(&self) -> crate::throttle::Rates {
        crate::throttle::Rates {
            queries_per_s: self.source_qps_max,
            rows_per_s: self.rows_per_s_max,
            mb_per_s: self.mb_per_s_max,
        }
    }
}

fn default_workers() -> usize {
    4
}
fn default_chunk_rows() -> u64 {
    10_000
}

/// Binlog CDC settings (`[incremental]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncrementalSection {
    /// The replica server_id ferry's binlog dump uses; must differ from every server_id in the source's topology.
    /// Default: derived from the task name, in 1_000_000_000..2_000_000_000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<u32>,
    /// Update a row in the source's metadata schema every second, so an idle source still moves its position and
    /// lag is measured end to end. Turn off for a read-only source account.
    #[serde(default = "yes")]
    pub heartbeat: bool,
    /// Where an incremental-only task starts reading (default: the source's current position).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<StartPosition>,
    /// Source rows applied per destination transaction, at most (several source transactions are merged up to it).
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// Decoded binlog items buffered between the reader and the applier, at most.
    #[serde(default = "default_queue_items")]
    pub queue_items: usize,
    /// When a table selected by name (`objects.tables`) is renamed on the source, keep migrating it under the new
    /// name. Off: the table stops being migrated and the status shows FERRY-CDC-011. Renames inside a database
    /// selected whole are always followed.
    #[serde(default)]
    pub follow_table_renames: bool,
    /// Row events per second applied; 0 = unlimited.
    #[serde(default)]
    pub rows_per_s_max: u64,
    /// Megabytes (MiB) per second of row images applied; 0 = unlimited.
    #[serde(default)]
    pub mb_per_s_max: u64,
}

impl IncrementalSection {
    pub fn rates(&self) -> crate::throttle::Rates {
        crate::throttle::Rates {
            queries_per_s: 0,
            rows_per_s: self.rows_per_s_max,
            mb_per_s: self.mb_per_s_max,
        }
    }
}

/// A binlog position given in the task file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartPosition {
    pub file: String,
    pub pos: u64,
    /// MariaDB GTID list (`0-1-100,1-1-7`) or MySQL GTID set at that position, if known.
    #[serde(default)]
    pub gtid: String,
}

impl Default for IncrementalSection {
    fn default() -> Self {
        IncrementalSection {
            server_id: None,
            heartbeat: true,
            start: None,
            batch_rows: default_batch_rows(),
            queue_items: default_queue_items(),
            follow_table_renames: false,
            rows_per_s_max: 0,
            mb_per_s_max: 0,
        }
    }
}

fn yes() -> bool {
    true
}
fn default_batch_rows() -> usize {
    5_000
}
fn default_queue_items() -> usize {
    1_024
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataSection {
    #[serde(default = "default_meta_schema")]
    pub schema: String,
}

impl Default for MetadataSection {
    fn default() -> Self {
        MetadataSection {
            schema: default_meta_schema(),
        }
    }
}

fn default_meta_schema() -> String {
    "ferry_meta".to_string()
}

pub const WORKERS_MAX: usize = 64;
pub const CHUNK_ROWS_MAX: u64 = 1_000_000;

impl TaskConfig {
    /// Reads, parses and validates a task file; resolves `password_env`.
    pub fn load(path: &Path) -> Result<TaskConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::definite(&codes::CFG_UNREADABLE, format!("{}: {e}", path.display()))
        })?;
        let mut cfg = Self::parse(&text)?;
        cfg.resolve_passwords(|name| std::env::var(name).ok())?;
        Ok(cfg)
    }

    /// Parses and validates TOML text (passwords from the environment are not resolved here).
    pub fn parse(text: &str) -> Result<TaskConfig> {
        let de = toml::Deserializer::new(text);
        let cfg: TaskConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let message = inner.message().to_string();
            // serde's own wording for these two cases is stable (serde::de::Error::unknown_field/missing_field).
            let code = if message.starts_with("unknown field") {
                &codes::CFG_UNKNOWN_KEY
            } else if message.starts_with("missing field") {
                &codes::CFG_MISSING_KEY
            } else if inner.span().is_some() && path == "." {
                &codes::CFG_SYNTAX
            } else {
                &codes::CFG_BAD_VALUE
            };
            let at = if path == "." {
                String::new()
            } else {
                format!("at `{path}`: ")
            };
            let line = inner
                .span()
                .map(|s| {
                    format!(
                        " (line {})",
                        1 + text[..s.start.min(text.len())].matches('\n').count()
                    )
                })
                .unwrap_or_default();
            Error::definite(code, format!("{at}{message}{line}"))
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Fills `password` from `password_env` using `lookup` (the process environment in `load`).
    pub fn resolve_passwords(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<()> {
        for (section, ep) in [
            ("source", &mut self.source),
            ("destination", &mut self.destination),
        ] {
            if let Some(var) = &ep.password_env {
                match lookup(var) {
                    Some(v) => ep.password = Some(v),
                    None => {
                        return Err(Error::definite(
                            &codes::CFG_PASSWORD_ENV,
                            format!("`{section}.password_env` names {var}, which is not set"),
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        let bad = |key: &str, why: String| {
            Err(Error::definite(
                &codes::CFG_BAD_VALUE,
                format!("at `{key}`: {why}"),
            ))
        };
        if self.task.name.trim().is_empty() || self.task.name.len() > 64 {
            return bad("task.name", "must be 1 to 64 characters".into());
        }
        if self.task.types.is_empty() {
            return bad(
                "task.types",
                "must list at least one of schema, full, incremental".into(),
            );
        }
        for (section, ep) in [("source", &self.source), ("destination", &self.destination)] {
            if ep.host.trim().is_empty() {
                return bad(&format!("{section}.host"), "must not be empty".into());
            }
            if ep.port == 0 {
                return bad(&format!("{section}.port"), "must be 1..=65535".into());
            }
            if ep.user.is_empty() {
                return bad(&format!("{section}.user"), "must not be empty".into());
            }
            if ep.password.is_some() && ep.password_env.is_some() {
                return bad(
                    &format!("{section}.password"),
                    "give password or password_env, not both".into(),
                );
            }
        }
        if self.objects.databases.is_empty() && self.objects.tables.is_empty() {
            return bad(
                "objects",
                "select at least one database (databases = [...]) or table (tables = [\"db.t\"])"
                    .into(),
            );
        }
        for db in &self.objects.databases {
            if db.is_empty() || db.contains('.') && db.contains('`') {
                return bad(
                    "objects.databases",
                    format!("`{db}` is not a database name"),
                );
            }
            if is_system_schema(db) {
                return bad(
                    "objects.databases",
                    format!("`{db}` is a system schema and cannot be migrated"),
                );
            }
        }
        for p in &self.objects.exclude {
            if p.split_once('.')
                .is_none_or(|(d, t)| d.is_empty() || t.is_empty())
            {
                return bad(
                    "objects.exclude",
                    format!("`{p}` is not a `db.name` pattern (`shop.audit_*`, `*.tmp_*`)"),
                );
            }
        }
        for t in &self.objects.tables {
            match t.split_once('.') {
                Some((d, n)) if !d.is_empty() && !n.is_empty() => {}
                _ => {
                    return bad(
                        "objects.tables",
                        format!("`{t}` is not of the form db.table"),
                    )
                }
            }
        }
        if !(1..=WORKERS_MAX).contains(&self.full.workers) {
            return bad("full.workers", format!("must be 1..={WORKERS_MAX}"));
        }
        if !(1..=CHUNK_ROWS_MAX).contains(&self.full.chunk_rows) {
            return bad("full.chunk_rows", format!("must be 1..={CHUNK_ROWS_MAX}"));
        }
        let mut targets = std::collections::BTreeSet::new();
        for (from, to) in &self.mapping.databases {
            if to.is_empty() || to.len() > 64 || is_system_schema(to) || to == &self.metadata.schema
            {
                return bad(
                    "mapping.databases",
                    format!("`{from}` = `{to}`: not a database name ferry may write to"),
                );
            }
            let selected_elsewhere = from != to
                && (self.objects.databases.contains(to)
                    || self
                        .objects
                        .tables
                        .iter()
                        .any(|t| t.split_once('.').is_some_and(|(d, _)| d == to)));
            if selected_elsewhere {
                return bad(
                    "mapping.databases",
                    format!("`{from}` = `{to}`: `{to}` is itself a selected source database"),
                );
            }
            if !targets.insert(to.clone()) {
                return bad("mapping.databases", format!("two databases map to `{to}`"));
            }
        }
        self.validate_tables_and_columns()?;
        if let Some(e) = &self.schema.destination_engine {
            if e.is_empty() || !e.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return bad(
                    "schema.destination_engine",
                    format!("`{e}` is not an engine name (letters, digits, _)"),
                );
            }
        }
        for c in &self.precheck.ignore {
            if !crate::codes::ALL.iter().any(|k| k.id == c) {
                return bad(
                    "precheck.ignore",
                    format!("`{c}` is not a ferry code (the README lists them)"),
                );
            }
        }
        let inc = &self.incremental;
        if !(1..=100_000).contains(&inc.batch_rows) {
            return bad("incremental.batch_rows", "must be 1..=100000".into());
        }
        if !(16..=65_536).contains(&inc.queue_items) {
            return bad("incremental.queue_items", "must be 16..=65536".into());
        }
        let r = &self.retry;
        if !(10..=1440).contains(&r.connection_minutes) {
            return bad("retry.connection_minutes", "must be 10..=1440".into());
        }
        if !(1..=1440).contains(&r.operation_minutes) {
            return bad("retry.operation_minutes", "must be 1..=1440".into());
        }
        if r.operation_minutes >= r.connection_minutes {
            return bad(
                "retry.operation_minutes",
                format!(
                    "must be smaller than retry.connection_minutes ({} >= {})",
                    r.operation_minutes, r.connection_minutes
                ),
            );
        }
        if inc.server_id == Some(0) {
            return bad("incremental.server_id", "must be 1..=4294967295".into());
        }
        if let Some(start) = &inc.start {
            if start.file.trim().is_empty() || start.pos < 4 {
                return bad(
                    "incremental.start",
                    "needs a binlog file name and an offset of at least 4".into(),
                );
            }
            if self.has(MigrationType::Full) {
                return bad(
                    "incremental.start",
                    "only for incremental-only tasks: with a full copy, ferry takes the position itself before copying".into(),
                );
            }
        }
        match self.admin.listen.parse::<std::net::SocketAddr>() {
            Ok(a) if a.ip().is_loopback() => {}
            _ => {
                return bad(
                    "admin.listen",
                    format!(
                        "`{}` is not a loopback address with a port (127.0.0.1:0, [::1]:7070)",
                        self.admin.listen
                    ),
                )
            }
        }
        if r.auto_resume_hours > 24 * 30 {
            return bad("retry.auto_resume_hours", "must be 0..=720".into());
        }
        let w = &self.alerts.webhook;
        if !w.is_empty() && !w.starts_with("http://") {
            return bad(
                "alerts.webhook",
                format!("`{w}`: an http:// URL (TLS webhooks: put a local relay in front)"),
            );
        }
        if !(1..=3_600).contains(&self.alerts.poll_s) {
            return bad("alerts.poll_s", "must be 1..=3600".into());
        }
        let c = &self.cutover;
        if !(1..=86_400).contains(&c.quiet_wait_s) {
            return bad("cutover.quiet_wait_s", "must be 1..=86400".into());
        }
        if !(1..=86_400).contains(&c.drain_s_max) {
            return bad("cutover.drain_s_max", "must be 1..=86400".into());
        }
        let m = &self.metadata.schema;
        if m.is_empty() || m.len() > 64 || !m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return bad(
                "metadata.schema",
                "must be 1 to 64 characters of [A-Za-z0-9_]".into(),
            );
        }
        if self.objects.databases.iter().any(|d| d == m)
            || self
                .objects
                .tables
                .iter()
                .any(|t| t.split('.').next() == Some(m))
        {
            return bad(
                "metadata.schema",
                format!("`{m}` is also selected for migration"),
            );
        }
        Ok(())
    }

    /// `[mapping] tables / columns` and `objects.columns`: names only for selected databases, every destination
    /// name a usable identifier, no two names of one table or database the same. Whether the tables and columns
    /// exist is the precheck's (FERRY-PRE-016).
    fn validate_tables_and_columns(&self) -> Result<()> {
        let bad = |key: &str, detail: String| -> Result<()> {
            Err(Error::definite(
                &codes::CFG_BAD_VALUE,
                format!("{key}: {detail}"),
            ))
        };
        let in_selection = |db: &str| {
            self.objects.selects_db(db)
                || self.objects.tables.iter().any(|t| {
                    t.split_once('.')
                        .is_some_and(|(d, _)| d == db || is_pattern(d))
                })
        };
        let usable = |n: &str| !n.is_empty() && n.len() <= 64 && !n.ends_with(' ');
        for (db, tables) in &self.mapping.tables {
            if !in_selection(db) {
                return bad(
                    "mapping.tables",
                    format!("`{db}` is not a selected database"),
                );
            }
            let mut targets = std::collections::BTreeSet::new();
            for (from, to) in tables {
                if !usable(to) {
                    return bad(
                        "mapping.tables",
                        format!("`{db}.{from}` = `{to}`: not a table name"),
                    );
                }
                if !targets.insert(to) {
                    return bad(
                        "mapping.tables",
                        format!("two tables of `{db}` map to `{to}`"),
                    );
                }
            }
        }
        for (db, tables) in &self.mapping.columns {
            if !in_selection(db) {
                return bad(
                    "mapping.columns",
                    format!("`{db}` is not a selected database"),
                );
            }
            for (t, cols) in tables {
                let mut targets = std::collections::BTreeSet::new();
                for (from, to) in cols {
                    if !usable(to) {
                        return bad(
                            "mapping.columns",
                            format!("`{db}.{t}.{from}` = `{to}`: not a column name"),
                        );
                    }
                    if !targets.insert(to.to_ascii_lowercase()) {
                        return bad(
                            "mapping.columns",
                            format!("two columns of `{db}.{t}` map to `{to}`"),
                        );
                    }
                    let kept = self.objects.columns.get(db).and_then(|m| m.get(t));
                    if kept.is_some_and(|k| !k.iter().any(|c| c.eq_ignore_ascii_case(from))) {
                        return bad(
                            "mapping.columns",
                            format!(
                                "`{db}.{t}.{from}` is renamed but objects.columns leaves it out"
                            ),
                        );
                    }
                }
            }
        }
        for (db, tables) in &self.objects.columns {
            if !in_selection(db) {
                return bad(
                    "objects.columns",
                    format!("`{db}` is not a selected database"),
                );
            }
            for (t, cols) in tables {
                if cols.is_empty() {
                    return bad(
                        "objects.columns",
                        format!("`{db}.{t}`: list at least one column (or leave the table out)"),
                    );
                }
            }
        }
        Ok(())
    }

    pub fn has(&self, t: MigrationType) -> bool {
        self.task.types.contains(&t)
    }

    /// The server_id of ferry's binlog dump: the configured one, or one derived from the task name (FNV-1a), far
    /// from the small numbers DBAs give their servers.
    pub fn dump_server_id(&self) -> u32 {
        self.incremental.server_id.unwrap_or_else(|| {
            let h = self.task.name.bytes().fold(0x811c_9dc5u32, |h, b| {
                (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
            });
            1_000_000_000 + h % 1_000_000_000
        })
    }

    /// The destination's name for a source database.
    pub fn dest_db<'a>(&'a self, db: &'a str) -> &'a str {
        self.mapping
            .databases
            .get(db)
            .map(String::as_str)
            .unwrap_or(db)
    }

    /// The task as TOML (passwords included only if they were given inline).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// Schemas that belong to the server and are never migrated.
pub fn is_system_schema(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "mysql" | "information_schema" | "performance_schema" | "sys"
    )
}

#[cfg(test)]
mod mapping_tests {
    use super::*;

    fn cfg(mapping: &str) -> std::result::Result<TaskConfig, crate::error::Error> {
        TaskConfig::parse(&format!(
            "[task]\nname = \"t\"\ntypes = [\"full\"]\n[source]\nhost = \"h\"\nuser = \"u\"\n\
             [destination]\nhost = \"h\"\nuser = \"u\"\n[objects]\ndatabases = [\"shop\", \"crm\"]\n\
             [mapping]\ndatabases = {{ {mapping} }}\n"
        ))
    }

    #[test]
    fn database_mappings_must_not_collide() {
        assert!(cfg("shop = \"shop_v2\"").is_ok());
        for (m, why) in [
            ("shop = \"crm\"", "is itself a selected source database"),
            ("shop = \"x\", crm = \"x\"", "two databases map to `x`"),
            ("shop = \"mysql\"", "not a database name ferry may write to"),
            (
                "shop = \"ferry_meta\"",
                "not a database name ferry may write to",
            ),
        ] {
            let e = cfg(m).expect_err(m);
            assert_eq!(e.code().id, "FERRY-CFG-005", "{m}: {e}");
            assert!(e.to_string().contains(why), "{m}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[task]
name = "shop-to-new-cluster"
types = ["schema", "full"]
[source]
host = "127.0.0.1"
port = 3306
user = "ferry"
password_env = "FERRY_SOURCE_PASSWORD"
tls = "disabled"
[destination]
host = "127.0.0.1"
port = 3307
user = "ferry"
password = "secret"
[objects]
databases = ["shop"]
[full]
workers = 4
chunk_rows = 10000
[metadata]
schema = "ferry_meta"
"#;

    #[test]
    fn the_documented_example_parses() {
        let mut cfg = TaskConfig::parse(GOOD).expect("parses");
        assert_eq!(
            cfg.task.types,
            vec![MigrationType::Schema, MigrationType::Full]
        );
        assert_eq!(cfg.destination.port, 3307);
        assert_eq!(cfg.source.tls, TlsMode::Disabled);
        cfg.resolve_passwords(|v| (v == "FERRY_SOURCE_PASSWORD").then(|| "pw".into()))
            .expect("resolves");
        assert_eq!(cfg.source.password.as_deref(), Some("pw"));
    }

    fn code_of(text: &str) -> (&'static str, String) {
        let e = TaskConfig::parse(text).expect_err("must fail");
        (e.code().id, e.to_string())
    }

    #[test]
    fn retry_windows_are_bounded_and_ordered() {
        let with = |r: &str| code_of(&format!("{GOOD}\n[retry]\n{r}\n"));
        let (code, msg) = with("connection_minutes = 30\noperation_minutes = 30");
        assert_eq!(code, "FERRY-CFG-005");
        assert!(
            msg.contains("retry.operation_minutes") && msg.contains("smaller"),
            "{msg}"
        );
        let (code, msg) = with("connection_minutes = 5");
        assert_eq!(code, "FERRY-CFG-005");
        assert!(msg.contains("retry.connection_minutes"), "{msg}");
        assert!(TaskConfig::parse(&format!(
            "{GOOD}\n[retry]\nconnection_minutes = 20\noperation_minutes = 2\n"
        ))
        .is_ok());
    }

    #[test]
    fn unknown_key_is_named() {
        let (code, msg) = code_of(&GOOD.replace("port = 3307", "prot = 3307"));
        assert_eq!(code, "FERRY-CFG-003");
        assert!(msg.contains("destination.prot"), "{msg}");
    }

    #[test]
    fn missing_key_is_named() {
        let (code, msg) = code_of(&GOOD.replace("user = \"ferry\"\npassword_env", "password_env"));
        assert_eq!(code, "FERRY-CFG-004");
        assert!(msg.contains("user"), "{msg}");
        assert!(msg.contains("source"), "{msg}");
    }

    #[test]
    fn bad_values_are_named() {
        let (code, msg) = code_of(&GOOD.replace("port = 3307", "port = 70000"));
        assert_eq!(code, "FERRY-CFG-005");
        assert!(msg.contains("destination.port"), "{msg}");
        let (code, msg) = code_of(&GOOD.replace("workers = 4", "workers = 0"));
        assert_eq!(code, "FERRY-CFG-005");
        assert!(msg.contains("full.workers"), "{msg}");
        let (code, msg) = code_of(&GOOD.replace("tls = \"disabled\"", "tls = \"sometimes\""));
        assert_eq!(code, "FERRY-CFG-005");
        assert!(msg.contains("source.tls"), "{msg}");
        let (code, msg) = code_of(&GOOD.replace("\"schema\", \"full\"", "\"schema\", \"fast\""));
        assert_eq!(code, "FERRY-CFG-005");
        assert!(msg.contains("task.types"), "{msg}");
        let (code, _) = code_of(&GOOD.replace("databases = [\"shop\"]", "databases = [\"mysql\"]"));
        assert_eq!(code, "FERRY-CFG-005");
        let (code, msg) = code_of(&GOOD.replace("databases = [\"shop\"]", "tables = [\"nodot\"]"));
        assert_eq!(code, "FERRY-CFG-005");
        assert!(msg.contains("objects.tables"), "{msg}");
    }

    #[test]
    fn syntax_errors_have_their_own_code() {
        let (code, msg) = code_of("[task\nname = 1");
        assert_eq!(code, "FERRY-CFG-002", "{msg}");
    }

    #[test]
    fn unset_password_env_is_reported() {
        let mut cfg = TaskConfig::parse(GOOD).expect("parses");
        let e = cfg.resolve_passwords(|_| None).expect_err("must fail");
        assert_eq!(e.code().id, "FERRY-CFG-006");
        assert!(e.to_string().contains("FERRY_SOURCE_PASSWORD"));
    }

    #[test]
    fn debug_never_prints_passwords() {
        let cfg = TaskConfig::parse(GOOD).expect("parses");
        assert!(!format!("{cfg:?}").contains("secret"));
    }
}
