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

/// The DDL statements concerning `databases` in the binlog from `from` up to `to` (as excerpts).
pub async fn ddl_between(
    source: &Server,
    from: &Position,
    to: &Position,
    server_id: u32,
    databases: &BTreeSet<String>,
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
                if concerns(sql, db, databases) {
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

/// Whether a statement may change the objects of `databases`: a DDL naming one of them (or, unqualified, run in
/// one), or a statement that cannot be read run in one of them.
pub fn concerns(sql: &str, default_db: &str, databases: &BTreeSet<String>) -> bool {
    match ddl::classify(sql, default_db) {
        Ok(Statement::Ddl(d)) => {
            d.names
                .iter()
                .chain(d.renames.iter().flat_map(|(a, b)| [a, b]))
                .chain(d.like.iter())
                .any(|n| {
                    databases.contains(&n.db) || (n.db.is_empty() && databases.contains(&n.name))
                })
                || (d.names.is_empty() && databases.contains(default_db))
        }
        Ok(_) => false,
        Err(_) => databases.contains(default_db),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_on_the_selection_is_found_and_other_statements_are_not() {
        let dbs: BTreeSet<String> = ["shop".to_string()].into();
        assert!(concerns("ALTER TABLE shop.t ADD COLUMN c INT", "", &dbs));
        assert!(concerns("ALTER TABLE t MODIFY v BIGINT", "shop", &dbs));
        assert!(concerns("RENAME TABLE other.a TO shop.a", "", &dbs));
        assert!(concerns("DROP DATABASE shop", "", &dbs));
        assert!(!concerns(
            "ALTER TABLE other.t ADD COLUMN c INT",
            "shop",
            &dbs
        ));
        assert!(!concerns("GRANT SELECT ON *.* TO 'u'@'%'", "shop", &dbs));
        assert!(!concerns("INSERT INTO shop.t VALUES (1)", "shop", &dbs));
    }
}
