//! The start position P0 and the schema as of it: P0 is taken first, the schema read after it, and the binlog
//! between P0 and the end of the read must hold no DDL on the selection (else both are taken again).
//!
//! The shapes recorded with P0 are what every row event after P0 is decoded against until the next replicated DDL.
//! A DDL that ran after P0 but before the read would make the shapes newer than the rows after P0 (an added column
//! dropped from every replicated row, an INT widened to BIGINT decoded as INT); one that ran before P0 but after
//! the read would never be replayed. Reading the catalogue takes the tables' metadata locks, which a DDL holds
//! until it is in the binlog, so a DDL the read saw is in the binlog before the position taken after the read.

use super::ddl::{self, Statement};
use super::event::Item;
use super::position::Position;
use super::stream::BinlogReader;
use crate::error::Result;
use crate::mysql::conn::Server;
use std::collections::BTreeSet;
use std::time::Duration;

/// Times P0 and the schema are taken again when a DDL on the selection came between them.
pub const ATTEMPTS_MAX: u32 = 5;

/// The longest wait for one event of the window (the window is already in the binlog).
const EVENT_WAIT: Duration = Duration::from_secs(10);

/// The DDL statements concerning what the schema read returned, in the binlog from `from` up to `to` (excerpts).
pub async fn ddl_between(
    source: &Server,
    from: &Position,
    to: &Position,
    server_id: u32,
    read: &Read,
) -> Result<Vec<String>> {
    if from.cmp_in_log(to)?.is_ge() {
        return Ok(Vec::new());
    }
    let mut reader = BinlogReader::open(source, from, server_id, &[]).await?;
    let mut found = Vec::new();
    loop {
        let item = match tokio::time::timeout(EVENT_WAIT, reader.next()).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(crate::error::Error::transient(format!(
                    "reading the binlog from {from} to {to}: no event for {} s",
                    EVENT_WAIT.as_secs()
                )))
            }
        };
        let Some(item) = item else { break };
        let at = match &item {
            Item::Query {
                db,
                sql,
                file,
                end,
                in_transaction: false,
                ..
            } => {
                if concerns(sql, db, read) {
                    found.push(super::scope::excerpt(sql));
                }
                Some((file.clone(), *end))
            }
            Item::Query { file, end, .. }
            | Item::Commit { file, end, .. }
            | Item::Skip { file, end } => Some((file.clone(), *end)),
            _ => None,
        };
        if let Some((file, end)) = at {
            if from.moved_to(&file, end).cmp_in_log(to)?.is_ge() {
                break;
            }
        }
    }
    Ok(found)
}

/// What the schema read covers: the tables it returned, and the databases selected whole (where a new table, view
/// or routine would join the task).
#[derive(Debug, Clone, Default)]
pub struct Read {
    pub tables: BTreeSet<(String, String)>,
    pub whole: BTreeSet<String>,
}

impl Read {
    fn dbs(&self) -> impl Iterator<Item = &String> {
        self.tables.iter().map(|(d, _)| d).chain(self.whole.iter())
    }
}

/// Whether a statement may change what the schema read returned: a DDL naming one of its tables, any object of a
/// database selected whole, or one of those databases itself; a statement that cannot be read counts when its
/// default database is one of them. DDL on other tables of the same databases (an application's scratch tables)
/// does not.
pub fn concerns(sql: &str, default_db: &str, read: &Read) -> bool {
    match ddl::classify(sql, default_db) {
        Ok(Statement::Ddl(d)) => {
            let database_level = d.object == ddl::Object::Database;
            d.names
                .iter()
                .chain(d.renames.iter().flat_map(|(a, b)| [a, b]))
                .chain(d.like.iter())
                .any(|n| {
                    if database_level || n.name.is_empty() {
                        let db = if n.db.is_empty() { &n.name } else { &n.db };
                        read.dbs().any(|d| d == db)
                    } else {
                        read.tables.contains(&(n.db.clone(), n.name.clone()))
                            || read.whole.contains(&n.db)
                    }
                })
                || (d.names.is_empty() && read.dbs().any(|d| d == default_db))
        }
        Ok(_) => false,
        Err(_) => read.dbs().any(|d| d == default_db),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_on_what_was_read_is_found_and_other_statements_are_not() {
        let read = Read {
            tables: [("app".to_string(), "orders".to_string())].into(),
            whole: ["shop".to_string()].into(),
        };
        assert!(concerns("ALTER TABLE shop.t ADD COLUMN c INT", "", &read));
        assert!(concerns("CREATE TABLE t (id INT)", "shop", &read));
        assert!(concerns("ALTER TABLE orders MODIFY v BIGINT", "app", &read));
        assert!(concerns("RENAME TABLE other.a TO shop.a", "", &read));
        assert!(concerns("DROP DATABASE shop", "", &read));
        assert!(concerns(
            "ALTER DATABASE app CHARACTER SET latin1",
            "",
            &read
        ));
        // Scratch tables beside the selected ones, other databases, grants and rows do not count.
        assert!(!concerns("CREATE TABLE app.scratch (id INT)", "", &read));
        assert!(!concerns("DROP TABLE scratch", "app", &read));
        assert!(!concerns(
            "ALTER TABLE other.t ADD COLUMN c INT",
            "shop",
            &read
        ));
        assert!(!concerns("GRANT SELECT ON *.* TO 'u'@'%'", "shop", &read));
        assert!(!concerns("INSERT INTO shop.t VALUES (1)", "shop", &read));
    }
}
