//! The task file (TOML): its shape, defaults, and validation with coded errors that name the key.

use crate::codes;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullSection {
    #[serde(default = "default_workers")]
    pub workers: usize,
    #[serde(default = "default_chunk_rows")]
    pub chunk_rows: u64,
}

impl Default for FullSection {
    fn default() -> Self {
        FullSection {
            workers: default_workers(),
            chunk_rows: default_chunk_rows(),
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
    /// How long the same transient failure (connection lost, deadlock) may persist before the task stops.
    #[serde(default = "default_retry_window_s")]
    pub retry_window_s: u64,
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
            retry_window_s: default_retry_window_s(),
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
fn default_retry_window_s() -> u64 {
    600
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
        let inc = &self.incremental;
        if !(1..=100_000).contains(&inc.batch_rows) {
            return bad("incremental.batch_rows", "must be 1..=100000".into());
        }
        if !(16..=65_536).contains(&inc.queue_items) {
            return bad("incremental.queue_items", "must be 16..=65536".into());
        }
        if !(1..=86_400).contains(&inc.retry_window_s) {
            return bad("incremental.retry_window_s", "must be 1..=86400".into());
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
