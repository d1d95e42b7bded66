//! The schema objects ferry migrates, as plain data read from the source.

use serde::{Deserialize, Serialize};

/// A column as information_schema describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Key {
    pub name: String,
    /// Indexes into `Table::columns`.
    pub columns: Vec<usize>,
}

/// A base table.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Columns the destination's table does not have (conflict mode ignore_and_proceed with an existing table of
    /// another shape): read from the source, never written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub omitted: Vec<String>,
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

pub use super::names::NameMap;

impl Table {
    /// The table as it is on the destination under `names`: database, table, columns (and its followers') renamed,
    /// unique keys and followers over columns the destination leaves out dropped, and its CREATE statement
    /// reshaped to match (`reshape::create_table`, then database qualifiers by `rewrite::map_databases`). The
    /// precheck (FERRY-PRE-016) refuses a task whose reshape fails, so the fallback to the source's statement is
    /// never used by a task that runs.
    pub fn mapped(&self, names: &NameMap) -> Table {
        if names.is_empty() {
            return self.clone();
        }
        let (db, name) = (self.db.as_str(), self.name.as_str());
        let mut t = self.clone();
        t.db = names.db(db).to_string();
        t.name = names.table(db, name).to_string();
        for c in &mut t.columns {
            c.name = names.column(db, name, &c.name).to_string();
        }
        for c in &mut t.omitted {
            *c = names.column(db, name, c).to_string();
        }
        let dropped = |i: &usize| names.drops(db, name, &self.columns[*i].name);
        t.uniques.retain(|k| !k.columns.iter().any(dropped));
        t.followers.retain(|f| {
            !f.referenced.iter().any(dropped)
                && !f.columns.iter().any(|c| names.drops(&f.db, &f.table, c))
        });
        for f in &mut t.followers {
            for c in f.columns.iter_mut().chain(f.keep.iter_mut()) {
                *c = names.column(&f.db, &f.table, c).to_string();
            }
            f.table = names.table(&f.db, &f.table).to_string();
            f.db = names.db(&f.db).to_string();
        }
        t.create_sql = super::reshape::create_table(&self.create_sql, db, name, names)
            .and_then(|s| super::rewrite::map_databases(&s, names.databases()))
            .unwrap_or(t.create_sql);
        t
    }

    /// The table with only the columns the destination has (`omitted` left out, key indexes renumbered): what
    /// the verifier reads and compares on both sides.
    pub fn compared(&self) -> Table {
        if self.omitted.is_empty() {
            return self.clone();
        }
        let keep: Vec<usize> = (0..self.columns.len())
            .filter(|&i| !self.omitted.contains(&self.columns[i].name))
            .collect();
        let renumber = |k: &Key| -> Option<Key> {
            let columns = k
                .columns
                .iter()
                .map(|i| keep.iter().position(|j| j == i))
                .collect::<Option<Vec<usize>>>()?;
            Some(Key {
                name: k.name.clone(),
                columns,
            })
        };
        let mut t = self.clone();
        t.columns = keep.iter().map(|&i| self.columns[i].clone()).collect();
        t.key = self.key.as_ref().and_then(renumber);
        t.uniques = self.uniques.iter().filter_map(renumber).collect();
        t.followers.clear();
        t.omitted.clear();
        t
    }

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

    /// Columns that are written on insert (generated columns are computed by the destination; omitted ones are
    /// not on it).
    pub fn writable_columns(&self) -> impl Iterator<Item = (usize, &Column)> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.generated && !self.omitted.contains(&c.name))
    }

    /// Indexes of the columns the destination's table has (all but `omitted`), for reading rows back from it.
    pub fn present_columns(&self) -> Vec<usize> {
        (0..self.columns.len())
            .filter(|&i| !self.omitted.contains(&self.columns[i].name))
            .collect()
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

impl Object {
    /// The object as created on the destination (see `Table::mapped`).
    pub fn mapped(&self, names: &NameMap) -> Object {
        let mut o = self.clone();
        o.db = names.db(&self.db).to_string();
        o.create_sql = super::rewrite::map_databases(&self.create_sql, names.databases())
            .unwrap_or(o.create_sql);
        o
    }
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
    /// Views, routines, triggers and events left out because they use tables the task renames or reshapes
    /// (FERRY-PRE-017), as `kind db.name`.
    #[serde(default)]
    pub left_out: Vec<String>,
}

impl SourceSchema {
    /// The schema with every name as it is on the destination (`[mapping]`, `objects.columns`).
    pub fn mapped(&self, names: &NameMap) -> SourceSchema {
        if names.is_empty() {
            return self.clone();
        }
        SourceSchema {
            databases: self
                .databases
                .iter()
                .map(|d| Database {
                    name: names.db(&d.name).to_string(),
                    ..d.clone()
                })
                .collect(),
            tables: self.tables.iter().map(|t| t.mapped(names)).collect(),
            objects: self.objects.iter().map(|o| o.mapped(names)).collect(),
            skipped: self.skipped.clone(),
            left_out: self.left_out.clone(),
        }
    }

    /// Leaves out the objects whose text names a table `names` renames or reshapes (or that are triggers on one):
    /// their bodies use the source's table and column names, which the destination does not have.
    pub fn leave_out_reshaped(&mut self, names: &NameMap) {
        let touched = names.tables_touched();
        if touched.is_empty() {
            return;
        }
        let mut names: std::collections::BTreeSet<String> = touched
            .iter()
            .map(|(_, t)| t.to_ascii_lowercase())
            .collect();
        // An object using one left out goes too (a view over such a view, a procedure reading it): to a fixpoint.
        loop {
            let (out, keep): (Vec<Object>, Vec<Object>) = std::mem::take(&mut self.objects)
                .into_iter()
                .partition(|o| super::reshape::mentions(&o.create_sql, &names));
            self.objects = keep;
            if out.is_empty() {
                return;
            }
            for o in out {
                names.insert(o.name.to_ascii_lowercase());
                self.left_out
                    .push(format!("{} {}.{}", o.kind.as_str(), o.db, o.name));
            }
        }
    }

    pub fn count(&self, kind: ObjectKind) -> usize {
        match kind {
            ObjectKind::Database => self.databases.len(),
            ObjectKind::Table => self.tables.len(),
            k => self.objects.iter().filter(|o| o.kind == k).count(),
        }
    }
}
