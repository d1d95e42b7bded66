//! A chunk written with LOAD DATA LOCAL INFILE: rows as tab-separated text served from memory, kept only when the
//! destination took every row without a warning.
//!
//! LOAD DATA parses a fraction of what a multi-row INSERT makes the server parse (no hex literals, no SQL
//! grammar per value), which is most of the copy's cost on the destination. LOCAL has IGNORE semantics: a
//! duplicate key or a value the column cannot hold becomes a warning and the row is skipped or changed. So a
//! load is kept only when the server counted exactly the rows sent and no warning; otherwise the chunk's
//! transaction is rolled back and the chunk is written by INSERT, which fails or parks rows the way it always has.
//!
//! The "file" is never a file: the pool's handler serves only buffers staged here under names of our own, and
//! refuses any other name a server asks for (LOCAL INFILE lets a server request any path from its client).

use crate::error::{Error, Result};
use crate::mysql::quote::ident;
use crate::schema::model::{Column, Table};
use crate::value::Value;
use futures_util::FutureExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

/// Column types whose LOAD DATA text is exactly the value `Value::write_text` writes. Others (BIT, JSON on MySQL,
/// spatial, MariaDB's INET6/UUID, ...) take the INSERT path.
const TEXT_TYPES: &[&str] = &[
    "tinyint",
    "smallint",
    "mediumint",
    "int",
    "bigint",
    "decimal",
    "float",
    "double",
    "char",
    "varchar",
    "tinytext",
    "text",
    "mediumtext",
    "longtext",
    "binary",
    "varbinary",
    "tinyblob",
    "blob",
    "mediumblob",
    "longblob",
    "date",
    "datetime",
    "timestamp",
    "time",
    "year",
    "enum",
    "set",
];

/// Whether every written column of `t` can go through LOAD DATA text.
pub fn eligible(t: &Table, cols: &[usize]) -> bool {
    cols.iter().all(|&i| {
        t.columns
            .get(i)
            .is_some_and(|c| TEXT_TYPES.contains(&c.data_type.to_ascii_lowercase().as_str()))
    })
}

/// One row as a line of LOAD DATA text.
pub fn write_row(values: &[Value], cols: &[&Column], out: &mut Vec<u8>) -> Result<()> {
    for (i, (v, c)) in values.iter().zip(cols).enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        v.write_text(c, out)?;
    }
    out.push(b'\n');
    Ok(())
}

/// The statement loading staged buffer `name` into `t` (destination names), columns `cols`.
pub fn statement(t: &Table, cols: &[usize], name: &str) -> String {
    format!(
        "LOAD DATA LOCAL INFILE '{name}' INTO TABLE {} CHARACTER SET binary \
         FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({})",
        t.qualified(),
        cols.iter()
            .map(|&i| ident(&t.columns[i].name))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Error numbers meaning LOAD DATA LOCAL is off on this server or connection (MySQL 1148 and 3948, MariaDB 4166):
/// the task goes on with INSERTs.
pub fn disabled_errno(errno: u16) -> bool {
    matches!(errno, 1148 | 3948 | 4166)
}

/// Buffers waiting for the server to ask for them, by name.
static STAGED: LazyLock<Mutex<HashMap<String, bytes::Bytes>>> = LazyLock::new(Default::default);
static NEXT_NAME: AtomicU64 = AtomicU64::new(0);

fn staged() -> std::sync::MutexGuard<'static, HashMap<String, bytes::Bytes>> {
    // A panic while holding the lock leaves a plain map behind: still usable.
    STAGED.lock().unwrap_or_else(|p| p.into_inner())
}

/// A buffer staged for one LOAD DATA; removed when dropped if the server never asked for it.
pub struct Staged {
    pub name: String,
}

impl Staged {
    pub fn new(data: Vec<u8>) -> Staged {
        let name = format!(
            "ferry-chunk-{}-{}",
            std::process::id(),
            NEXT_NAME.fetch_add(1, Ordering::Relaxed)
        );
        staged().insert(name.clone(), bytes::Bytes::from(data));
        Staged { name }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        staged().remove(&self.name);
    }
}

/// The write pools' LOCAL INFILE handler: serves a staged buffer once, refuses every other name.
pub fn handler(
    name: &[u8],
) -> futures_util::future::BoxFuture<
    'static,
    std::result::Result<mysql_async::InfileData, mysql_async::LocalInfileError>,
> {
    let name = String::from_utf8_lossy(name).into_owned();
    let data = staged().remove(&name);
    async move {
        match data {
            Some(d) => {
                let stream: mysql_async::InfileData =
                    Box::pin(futures_util::stream::once(async move { Ok(d) }));
                Ok(stream)
            }
            None => Err(mysql_async::LocalInfileError::PathIsNotInTheWhiteList(name)),
        }
    }
    .boxed()
}

/// What a load into the chunk's transaction came to.
pub enum Outcome {
    /// Every row counted, no warning.
    Taken,
    /// The server skipped or changed rows (duplicates, values the column cannot hold), or LOAD DATA LOCAL is
    /// off (`disabled`): roll back and write the chunk by INSERT.
    Refused { why: String, disabled: bool },
}

/// Loads `data` (`rows` lines) into `t` within `tx`.
pub async fn load(
    tx: &mut mysql_async::Transaction<'_>,
    t: &Table,
    cols: &[usize],
    data: Vec<u8>,
    rows: u64,
) -> Result<Outcome> {
    use mysql_async::prelude::Queryable;
    let staged = Staged::new(data);
    let sql = statement(t, cols, &staged.name);
    match tx.query_drop(&sql).await {
        Ok(()) => {
            let (affected, warnings) = (tx.affected_rows(), tx.get_warnings());
            if affected == rows && warnings == 0 {
                Ok(Outcome::Taken)
            } else {
                Ok(Outcome::Refused {
                    why: format!("{affected} of {rows} rows loaded, {warnings} warnings"),
                    disabled: false,
                })
            }
        }
        Err(e) => {
            let e = Error::from(e);
            match e.mysql_errno() {
                Some(n) if disabled_errno(n) => Ok(Outcome::Refused {
                    why: format!("LOAD DATA LOCAL is off on the destination: {e}"),
                    disabled: true,
                }),
                _ => Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::model::Key;

    fn col(name: &str, t: &str) -> Column {
        Column {
            name: name.into(),
            data_type: t.into(),
            column_type: t.into(),
            charset: None,
            nullable: true,
            generated: false,
        }
    }

    fn table(types: &[&str]) -> Table {
        Table {
            db: "d".into(),
            name: "t".into(),
            columns: types
                .iter()
                .enumerate()
                .map(|(i, t)| col(&format!("c{i}"), t))
                .collect(),
            key: Some(Key {
                name: "PRIMARY".into(),
                columns: vec![0],
            }),
            uniques: Vec::new(),
            followers: Vec::new(),
            engine: "InnoDB".into(),
            rows_estimate: 0,
            create_sql: String::new(),
            omitted: Vec::new(),
        }
    }

    #[test]
    fn only_tables_of_text_types_are_loaded() {
        assert!(eligible(
            &table(&["int", "varchar", "datetime", "BLOB"]),
            &[0, 1, 2, 3]
        ));
        assert!(!eligible(&table(&["int", "bit"]), &[0, 1]));
        assert!(!eligible(&table(&["int", "json"]), &[0, 1]));
        assert!(!eligible(&table(&["int", "point"]), &[0, 1]));
        // A column left out of the write does not count.
        assert!(eligible(&table(&["int", "geometry"]), &[0]));
    }

    #[test]
    fn rows_are_tab_separated_with_escapes_and_null() {
        let t = table(&["int", "varbinary", "varchar", "datetime", "decimal"]);
        let cols: Vec<&Column> = t.columns.iter().collect();
        let mut out = Vec::new();
        write_row(
            &[
                Value::Int(-7),
                Value::Bytes(b"a\tb\nc\\d\0e".to_vec()),
                Value::Null,
                Value::DateTime {
                    year: 2026,
                    month: 12,
                    day: 1,
                    hour: 0,
                    minute: 0,
                    second: 5,
                    micro: 42,
                },
                Value::Decimal("-1.50".into()),
            ],
            &cols,
            &mut out,
        )
        .expect("row");
        assert_eq!(
            out,
            b"-7\ta\\tb\\nc\\\\d\\0e\t\\N\t2026-12-01 00:00:05.000042\t-1.50\n".to_vec()
        );
        let year = table(&["year"]);
        let mut out = Vec::new();
        write_row(&[Value::Int(0)], &[&year.columns[0]], &mut out).expect("year");
        assert_eq!(out, b"0000\n".to_vec(), "the string '0' would be YEAR 2000");
        let bad = write_row(&[Value::Decimal("1e5".into())], &cols[4..], &mut Vec::new());
        assert!(bad.is_err(), "a DECIMAL text that is not digits is refused");
    }

    #[test]
    fn the_statement_names_the_staged_buffer_and_the_columns() {
        let t = table(&["int", "varchar", "int"]);
        insta::assert_snapshot!(statement(&t, &[0, 1], "ferry-chunk-1-2"), @r"LOAD DATA LOCAL INFILE 'ferry-chunk-1-2' INTO TABLE `d`.`t` CHARACTER SET binary FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n' (`c0`, `c1`)");
    }

    #[test]
    fn the_handler_serves_a_staged_buffer_once_and_nothing_else() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            use futures_util::StreamExt;
            let s = Staged::new(b"1\tx\n".to_vec());
            let mut stream = handler(s.name.as_bytes()).await.expect("served");
            let first = stream.next().await.expect("data").expect("bytes");
            assert_eq!(&first[..], b"1\tx\n");
            assert!(handler(s.name.as_bytes()).await.is_err(), "served once");
            assert!(handler(b"/etc/passwd").await.is_err(), "never a path");
            let never_asked = Staged::new(b"2\n".to_vec());
            let name = never_asked.name.clone();
            drop(never_asked);
            assert!(
                handler(name.as_bytes()).await.is_err(),
                "dropped with its stage"
            );
        });
    }
}
