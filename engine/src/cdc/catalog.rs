//! A fingerprint of the destination's catalogue for the databases a DDL statement concerns, taken before the
//! statement runs, so that after a crash between the statement and its checkpoint ferry can tell from the
//! catalogue alone whether the statement took effect (and must not run again) or not.
//!
//! A DDL commits by itself, before the checkpoint that records it can. Replaying it when it already took effect
//! is not always harmless: `RENAME TABLE a TO tmp, b TO a, tmp TO b` run twice swaps the tables back, and so does
//! a column swap. Errors such as "duplicate column" cannot tell those apart from a first run. The fingerprint
//! covers every table's columns, indexes, foreign keys and options, views, routines, the databases' options, and
//! each InnoDB table's internal id (which a rename keeps and a rebuild changes), so two tables of the same shape
//! that swapped names still fingerprint differently.

use crate::error::{Result, ResultExt};
use crate::mysql::quote::string;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// Catalogue queries, each returning text columns in a stable order, over the databases `{dbs}` (a list of
/// string literals).
const QUERIES: &[&str] = &[
    "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA \
     WHERE SCHEMA_NAME IN ({dbs}) ORDER BY 1",
    "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, ENGINE, ROW_FORMAT, TABLE_COLLATION, CREATE_OPTIONS, TABLE_COMMENT \
     FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ({dbs}) ORDER BY 1, 2",
    "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, \
     CHARACTER_SET_NAME, COLLATION_NAME, GENERATION_EXPRESSION, COLUMN_COMMENT FROM information_schema.COLUMNS \
     WHERE TABLE_SCHEMA IN ({dbs}) ORDER BY 1, 2, 4",
    "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE, SUB_PART, INDEX_TYPE \
     FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN ({dbs}) ORDER BY 1, 2, 3, 4",
    "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, REFERENCED_TABLE_NAME, UPDATE_RULE, DELETE_RULE \
     FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA IN ({dbs}) ORDER BY 1, 2, 3",
    "SELECT TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE FROM information_schema.VIEWS \
     WHERE TABLE_SCHEMA IN ({dbs}) ORDER BY 1, 2",
    "SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION, SECURITY_TYPE, SQL_MODE \
     FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA IN ({dbs}) ORDER BY 1, 2, 3",
];

/// Catalogue views some servers lack (CHECK constraints before MySQL 8.0.16 / MariaDB 10.2): read where present.
const OPTIONAL_QUERIES: &[&str] = &[
    "SELECT CONSTRAINT_SCHEMA, CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
     WHERE CONSTRAINT_SCHEMA IN ({dbs}) ORDER BY 1, 2, 3",
    "SELECT TABLE_SCHEMA, TABLE_NAME, PARTITION_NAME, SUBPARTITION_NAME, PARTITION_METHOD, PARTITION_EXPRESSION, \
     PARTITION_DESCRIPTION FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA IN ({dbs}) AND PARTITION_NAME IS NOT NULL \
     ORDER BY 1, 2, 3, 4",
];

/// The InnoDB table ids: MariaDB's view, then MySQL 8's.
const INNODB_IDS: &[&str] = &[
    "SELECT NAME, CAST(TABLE_ID AS CHAR) FROM information_schema.INNODB_SYS_TABLES ORDER BY 1",
    "SELECT NAME, CAST(TABLE_ID AS CHAR) FROM information_schema.INNODB_TABLES ORDER BY 1",
];

/// The fingerprint (64 hex characters) of the catalogue of `dbs` on the destination.
pub async fn fingerprint(conn: &mut Conn, dbs: &BTreeSet<String>) -> Result<String> {
    let mut h = Sha256::new();
    if dbs.is_empty() {
        return Ok(hex::encode(h.finalize()));
    }
    let list: Vec<String> = dbs.iter().map(|d| string(d)).collect();
    let list = list.join(", ");
    for q in QUERIES {
        let rows: Vec<mysql_async::Row> = conn
            .query(q.replace("{dbs}", &list))
            .await
            .ctx("reading the destination's catalogue")?;
        feed(&mut h, q, rows);
    }
    for q in OPTIONAL_QUERIES {
        match conn
            .query::<mysql_async::Row, _>(q.replace("{dbs}", &list))
            .await
        {
            Ok(rows) => feed(&mut h, q, rows),
            Err(e) => tracing::debug!(error = %e, "catalogue view not readable here"),
        }
    }
    // InnoDB's own names are `<db>/<table>` in the server's file-name encoding, which spells only letters,
    // digits and `_` as they are; for other database names every table's id is taken.
    let prefixes: Option<Vec<String>> = dbs
        .iter()
        .map(|d| {
            d.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                .then(|| format!("{d}/"))
        })
        .collect();
    for q in INNODB_IDS {
        match conn.query::<mysql_async::Row, _>(*q).await {
            Ok(rows) => {
                let rows: Vec<mysql_async::Row> = rows
                    .into_iter()
                    .filter(|r| {
                        let name: String = r.get_opt(0).and_then(|v| v.ok()).unwrap_or_default();
                        match &prefixes {
                            Some(p) => p.iter().any(|p| name.starts_with(p.as_str())),
                            None => !name.starts_with("mysql/") && !name.starts_with("SYS_"),
                        }
                    })
                    .collect();
                feed(&mut h, q, rows);
                break;
            }
            // Unknown table (the other flavor's view) or no PROCESS privilege: shapes and names still count, but a
            // swap of two tables of the same shape can no longer be told from no swap.
            Err(e) => {
                tracing::warn!(error = %e, "InnoDB table ids not readable (PROCESS privilege on the destination): a crash right after a swap of two tables of the same shape could replay it")
            }
        }
    }
    Ok(hex::encode(h.finalize()))
}

fn feed(h: &mut Sha256, query: &str, rows: Vec<mysql_async::Row>) {
    h.update(query.as_bytes());
    for r in rows {
        for v in r.unwrap_raw() {
            match v {
                None | Some(mysql_async::Value::NULL) => h.update(b"N"),
                Some(mysql_async::Value::Bytes(b)) => {
                    h.update((b.len() as u64).to_le_bytes());
                    h.update(&b);
                }
                Some(other) => {
                    let s = other.as_sql(true);
                    h.update((s.len() as u64).to_le_bytes());
                    h.update(s.as_bytes());
                }
            }
        }
        h.update(b"\n");
    }
}
