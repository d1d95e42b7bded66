//! The schema objects ferry migrates, as plain data read from the source.

use serde::Serialize;

/// A column as information_schema describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Column {
    pub name: String,
    /// information_schema DATA_TYPE, lowercase (`int`, `varchar`, `json`, ...).
    pub data_type: String,
    /// information_schema COLUMN_TYPE (`int(10) unsigned`, `enum('a','b')`, ...).
    pub column_type: String,
    /// Character set of character columns; None for numbers, binary strings, temporal and spatial types.
    pub charset: Option<String>,
    pub nullable: bool,
    /// VIRTUAL or STORED generated: never written, the destination computes it.
    pub generated: bool,
}

/// The key ferry chunks and compares a table by: the PRIMARY KEY, or a unique key over NOT NULL columns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Key {
    pub name: String,
    /// Indexes into `Table::columns`.
    pub columns: Vec<usize>,
}

/// A base table.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    pub db: String,
    pub name: String,
    pub columns: Vec<Column>,
    /// None when the table has no usable key: it is copied and compared as one chunk.
    pub key: Option<Key>,
    /// Unique keys other than `key` (whole columns; NULL never conflicts): the applier checks them before upserts.
    pub uniques: Vec<Key>,
    /// FKs of other tables that change their rows when this table's rows are deleted or their referenced columns
    /// updated (CASCADE, SET NULL). The server does not log those child changes in the binlog: the applier has to
    /// make them on the destination.
    pub followers: Vec<Follower>,
    pub engine: String,
    pub rows_estimate: u64,
    /// SHOW CREATE TABLE output.
    pub create_sql: String,
}

/// A foreign key of another table that follows this table's rows on delete or update.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Follower {
    pub db: String,
    pub table: String,
    /// The child's FK columns, in FK order.
    pub columns: Vec<String>,
    /// Indexes into this table's columns that the FK references, in FK order.
    pub referenced: Vec<usize>,
    /// The child's ON UPDATE CURRENT_TIMESTAMP columns: a cascade leaves them as they are, so must ferry.
    pub keep: Vec<String>,
    pub on_delete: FkRule,
    pub on_update: FkRule,
}

/// What a foreign key does to child rows when the parent row goes or its key changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FkRule {
    /// RESTRICT, NO ACTION, SET DEFAULT (InnoDB refuses SET DEFAULT): nothing follows.
    Restrict,
    Cascade,
    SetNull,
}

impl FkRule {
    pub fn parse(rule: &str) -> FkRule {
        match rule {
            "CASCADE" => FkRule::Cascade,
            "SET NULL" => FkRule::SetNull,
            _ => FkRule::Restrict,
        }
    }
}

impl Table {
    /// Some child rows change when a row of this table is deleted.
    pub fn cascades_on_delete(&self) -> bool {
        self.followers
            .iter()
            .any(|f| f.on_delete != FkRule::Restrict)
    }

    /// Columns whose change some child rows follow.
    pub fn cascade_update_columns(&self) -> Vec<usize> {
        let mut cols: Vec<usize> = self
            .followers
            .iter()
            .filter(|f| f.on_update != FkRule::Restrict)
            .flat_map(|f| f.referenced.iter().copied())
            .collect();
        cols.sort_unstable();
        cols.dedup();
        cols
    }

    pub fn qualified(&self) -> String {
        crate::mysql::quote::qualified(&self.db, &self.name)
    }

    pub fn display_name(&self) -> String {
        format!("{}.{}", self.db, self.name)
    }

    /// Columns that are written on insert (generated columns are computed by the destination).
    pub fn writable_columns(&self) -> impl Iterator<Item = (usize, &Column)> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.generated)
    }

    pub fn key_columns(&self) -> Vec<&Column> {
        match &self.key {
            Some(k) => k.columns.iter().map(|&i| &self.columns[i]).collect(),
            None => Vec::new(),
        }
    }
}

/// Kinds of objects other than tables, in the order they are created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ObjectKind {
    Database,
    Table,
    Function,
    Procedure,
    View,
    Trigger,
    Event,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Database => "database",
            ObjectKind::Table => "table",
            ObjectKind::Function => "function",
            ObjectKind::Procedure => "procedure",
            ObjectKind::View => "view",
            ObjectKind::Trigger => "trigger",
            ObjectKind::Event => "event",
        }
    }

    /// Triggers and events are created after the data: a trigger would fire again for copied rows,
    /// an event would write to the destination before cutover.
    pub fn is_post_data(self) -> bool {
        matches!(self, ObjectKind::Trigger | ObjectKind::Event)
    }
}

/// A view, routine, trigger or event, with the statement that creates it as the source printed it.
#[derive(Debug, Clone, Serialize)]
pub struct Object {
    pub kind: ObjectKind,
    pub db: String,
    pub name: String,
    pub create_sql: String,
    /// The sql_mode the object was created with (routines, triggers, events).
    pub sql_mode: Option<String>,
    /// The time zone an event's schedule is written in.
    pub time_zone: Option<String>,
}

/// A database with its defaults.
#[derive(Debug, Clone, Serialize)]
pub struct Database {
    pub name: String,
    pub charset: String,
    pub collation: String,
}

/// Everything selected on the source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceSchema {
    pub databases: Vec<Database>,
    pub tables: Vec<Table>,
    /// Views (in dependency order), routines, triggers (in action order), events.
    pub objects: Vec<Object>,
    /// Things seen but not migrated, with the reason (sequences, system-versioned tables, ...).
    pub skipped: Vec<String>,
}

impl SourceSchema {
    pub fn count(&self, kind: ObjectKind) -> usize {
        match kind {
            ObjectKind::Database => self.databases.len(),
            ObjectKind::Table => self.tables.len(),
            k => self.objects.iter().filter(|o| o.kind == k).count(),
        }
    }
}
