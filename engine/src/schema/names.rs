//! The destination's names and columns of the task: databases, tables and columns renamed by `[mapping]`, and the
//! columns `objects.columns` keeps.

use crate::config::{MappingSection, TaskConfig};
use std::collections::{BTreeMap, BTreeSet};

/// How the destination names what the source has. Table names are compared exactly (as the server does with
/// `lower_case_table_names = 0`), column names without regard to ASCII case (as the server always does).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameMap {
    databases: BTreeMap<String, String>,
    /// (source db, source table) -> destination table.
    tables: BTreeMap<(String, String), String>,
    /// (source db, source table) -> lowercase source column -> destination column.
    columns: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// (source db, source table) -> the lowercase source columns the destination has (unlisted tables keep all).
    kept: BTreeMap<(String, String), BTreeSet<String>>,
}

impl NameMap {
    pub fn new(cfg: &TaskConfig) -> NameMap {
        NameMap::from_parts(&cfg.mapping, &cfg.objects.columns)
    }

    /// From `[mapping]` and `objects.columns`.
    pub fn from_parts(
        m: &MappingSection,
        kept_columns: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
    ) -> NameMap {
        let mut out = NameMap {
            databases: m.databases.clone(),
            ..NameMap::default()
        };
        for (db, tables) in &m.tables {
            for (t, to) in tables {
                out.tables.insert((db.clone(), t.clone()), to.clone());
            }
        }
        for (db, tables) in &m.columns {
            for (t, cols) in tables {
                out.columns.insert(
                    (db.clone(), t.clone()),
                    cols.iter()
                        .map(|(c, to)| (c.to_ascii_lowercase(), to.clone()))
                        .collect(),
                );
            }
        }
        for (db, tables) in kept_columns {
            for (t, cols) in tables {
                out.kept.insert(
                    (db.clone(), t.clone()),
                    cols.iter().map(|c| c.to_ascii_lowercase()).collect(),
                );
            }
        }
        out
    }

    /// Database renames only (`[mapping] databases`).
    pub fn databases_only(databases: BTreeMap<String, String>) -> NameMap {
        NameMap {
            databases,
            ..NameMap::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.databases.is_empty()
            && self.tables.is_empty()
            && self.columns.is_empty()
            && self.kept.is_empty()
    }

    pub fn databases(&self) -> &BTreeMap<String, String> {
        &self.databases
    }

    /// The destination's name of a source database.
    pub fn db<'a>(&'a self, db: &'a str) -> &'a str {
        self.databases.get(db).map(String::as_str).unwrap_or(db)
    }

    /// The destination's name of a source table (its database is renamed by `db`).
    pub fn table<'a>(&'a self, db: &str, table: &'a str) -> &'a str {
        self.tables
            .get(&(db.to_string(), table.to_string()))
            .map(String::as_str)
            .unwrap_or(table)
    }

    /// The destination's name of a column of a source table.
    pub fn column<'a>(&'a self, db: &str, table: &str, column: &'a str) -> &'a str {
        self.columns
            .get(&(db.to_string(), table.to_string()))
            .and_then(|m| m.get(&column.to_ascii_lowercase()))
            .map(String::as_str)
            .unwrap_or(column)
    }

    /// Whether the destination leaves a column of a source table out (`objects.columns`).
    pub fn drops(&self, db: &str, table: &str, column: &str) -> bool {
        self.kept
            .get(&(db.to_string(), table.to_string()))
            .is_some_and(|k| !k.contains(&column.to_ascii_lowercase()))
    }

    /// The source database a destination database name comes from (`[mapping] databases` read backwards).
    pub fn source_db(&self, dest: &str) -> String {
        self.databases
            .iter()
            .find(|(_, to)| to.as_str() == dest)
            .map(|(from, _)| from.clone())
            .unwrap_or_else(|| dest.to_string())
    }

    /// The source table of source database `db` that a destination table name comes from (`[mapping] tables` read
    /// backwards; a destination name some mapping takes away from its source table is no source name).
    pub fn source_table(&self, db: &str, dest: &str) -> String {
        self.tables
            .iter()
            .find(|((d, _), to)| d == db && to.as_str() == dest)
            .map(|((_, from), _)| from.clone())
            .unwrap_or_else(|| dest.to_string())
    }

    /// Whether the table's columns differ on the destination (renamed or left out): its shape cannot be read back
    /// from the destination, so DDL on it is not replicated.
    pub fn reshapes(&self, db: &str, table: &str) -> bool {
        let k = (db.to_string(), table.to_string());
        self.columns.contains_key(&k) || self.kept.contains_key(&k)
    }

    /// Whether the table is renamed on the destination (its database aside).
    pub fn renames_table(&self, db: &str, table: &str) -> bool {
        self.tables
            .contains_key(&(db.to_string(), table.to_string()))
    }

    /// Whether any table or column is renamed or left out (database renames aside).
    pub fn touches_tables(&self) -> bool {
        !(self.tables.is_empty() && self.columns.is_empty() && self.kept.is_empty())
    }

    /// Tables renamed, with columns renamed or with columns left out, as (db, table) source names.
    pub fn tables_touched(&self) -> BTreeSet<(String, String)> {
        self.tables
            .keys()
            .chain(self.columns.keys())
            .chain(self.kept.keys())
            .cloned()
            .collect()
    }

    /// The column renames of a table as (source column lowercase, destination name).
    pub fn column_renames(&self, db: &str, table: &str) -> Vec<(String, String)> {
        self.columns
            .get(&(db.to_string(), table.to_string()))
            .map(|m| m.iter().map(|(a, b)| (a.clone(), b.clone())).collect())
            .unwrap_or_default()
    }

    /// The lowercase columns `objects.columns` keeps of a table, when it lists them.
    pub fn kept_columns(&self, db: &str, table: &str) -> Option<&BTreeSet<String>> {
        self.kept.get(&(db.to_string(), table.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_and_columns_ignore_case() {
        let mapping = MappingSection {
            databases: BTreeMap::from([("shop".into(), "shop2".into())]),
            tables: BTreeMap::from([(
                "shop".into(),
                BTreeMap::from([("customers".into(), "clients".into())]),
            )]),
            columns: BTreeMap::from([(
                "shop".into(),
                BTreeMap::from([(
                    "customers".into(),
                    BTreeMap::from([("EMAIL".into(), "mail".into())]),
                )]),
            )]),
        };
        let kept = BTreeMap::from([(
            "shop".into(),
            BTreeMap::from([("customers".into(), vec!["id".into(), "Email".into()])]),
        )]);
        let n = NameMap::from_parts(&mapping, &kept);
        assert_eq!(n.db("shop"), "shop2");
        assert_eq!(n.db("other"), "other");
        assert_eq!(n.table("shop", "customers"), "clients");
        assert_eq!(n.table("shop", "orders"), "orders");
        assert_eq!(n.source_db("shop2"), "shop");
        assert_eq!(n.source_table("shop", "clients"), "customers");
        assert_eq!(n.source_table("shop", "orders"), "orders");
        assert_eq!(n.column("shop", "customers", "email"), "mail");
        assert_eq!(n.column("shop", "customers", "id"), "id");
        assert!(!n.drops("shop", "customers", "EMAIL"));
        assert!(n.drops("shop", "customers", "name"));
        assert!(!n.drops("shop", "orders", "name"));
        assert!(n.reshapes("shop", "customers"));
        assert!(!n.reshapes("shop", "orders"));
        assert!(n.touches_tables());
        assert!(!NameMap::databases_only(Default::default()).touches_tables());
    }
}
