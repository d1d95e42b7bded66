//! Server-side digests: the SQL that makes each server hash its own rows (per row, then per key range), and which
//! tables can use it.
//!
//! A row's digest input is the concatenation of one self-delimiting piece per column (`<length>:<bytes>`, or `N`
//! for NULL), so column boundaries cannot shift and `NULL`, `''` and `'NULL'` differ. Numbers and temporal values
//! go as the server's text, everything else as its stored bytes (`character_set_results = NULL` gives the client
//! path the same bytes). Both servers must produce equal text for equal values; a digest that differs only costs
//! a drill-down, because the rows inside are then compared client-side over the canonical encoding. The one
//! requirement for correctness is the other direction: equal digests must mean rows the canonical encoding calls
//! equal, which is why FLOAT/DOUBLE columns (whose text neither server prints bit-exactly) keep a table on the
//! client path.

use ferry_engine::cdc::sql;
use ferry_engine::copy::plan::{self, force_index, key_order};
use ferry_engine::error::Result;
use ferry_engine::mysql::quote::ident;
use ferry_engine::schema::model::{Column, Table};
use ferry_engine::value::Value;

/// The session setting a digest query needs (in the setup of the verifier's pools): GROUP_CONCAT holds 64 hex
/// characters per row of a chunk.
pub const SESSION_SQL: &str = "SET SESSION group_concat_max_len = 4294967295";

/// How a table's rows are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Each server digests its key ranges; only ranges whose digests differ are read and compared row by row.
    ServerDigest,
    /// Every row is read and hashed client-side.
    Client,
}

/// Whether `t` can be compared by server digests, and if not, why (shown in the report).
pub fn strategy_for(t: &Table, client_only: bool) -> (Strategy, Option<String>) {
    if client_only {
        return (
            Strategy::Client,
            Some("client-side hashing requested".into()),
        );
    }
    let floats: Vec<&str> = t
        .columns
        .iter()
        .filter(|c| is_float(c))
        .map(|c| c.name.as_str())
        .collect();
    if floats.is_empty() {
        (Strategy::ServerDigest, None)
    } else {
        (
            Strategy::Client,
            Some(format!(
                "FLOAT/DOUBLE column(s) {} are compared by their bits, which no SQL function of both servers \
                 yields: rows are hashed client-side",
                floats.join(", ")
            )),
        )
    }
}

fn is_float(c: &Column) -> bool {
    matches!(c.data_type.as_str(), "float" | "double" | "real")
}

/// One column's self-delimiting piece of the digest input. Numbers and temporal values print without a comma, so
/// their text ends at one (`12,`, `2026-01-01 00:00:00,`, NULL as `N,`); strings, bytes and JSON (which can hold
/// anything) are length-prefixed (`3:abc`, NULL as `N`). One evaluation per column: measured on MariaDB 10.11,
/// the length prefix on every column cost 40% more server time than this.
fn piece(c: &Column) -> String {
    let q = ident(&c.name);
    match c.data_type.as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "decimal"
        | "numeric" | "year" | "date" | "datetime" | "timestamp" | "time" => {
            format!("IFNULL(CONCAT(CAST({q} AS CHAR), ','), 'N,')")
        }
        "json" => format!("IFNULL(CONCAT(LENGTH(CAST({q} AS CHAR)), ':', CAST({q} AS CHAR)), 'N')"),
        _ => format!("IFNULL(CONCAT(LENGTH({q}), ':', CAST({q} AS BINARY)), 'N')"),
    }
}

/// The SQL expression of one row's digest (64 hex characters) over the table's columns, in column order.
pub fn row_digest_expr(t: &Table) -> String {
    let pieces: Vec<String> = t.columns.iter().map(piece).collect();
    format!("SHA2(CONCAT({}), 256)", pieces.join(", "))
}

/// A seeded sample of rows chosen by their key (or, without a key, their content), the same rows on both
/// servers: `ppm` rows per million.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub seed: u64,
    pub ppm: u32,
}

impl Sample {
    /// The predicate that selects the sample's rows of `t`.
    pub fn predicate(&self, t: &Table) -> String {
        let cols: Vec<String> = match &t.key {
            Some(_) => t
                .key_columns()
                .iter()
                .map(|c| format!("CAST({} AS BINARY)", ident(&c.name)))
                .collect(),
            None => vec![row_digest_expr(t)],
        };
        format!(
            "CRC32(CONCAT_WS(0x1f, '{}', {})) % 1000000 < {}",
            self.seed,
            cols.join(", "),
            self.ppm
        )
    }
}

fn sample_and(t: &Table, sample: Option<&Sample>) -> String {
    sample
        .map(|s| format!(" AND {}", s.predicate(t)))
        .unwrap_or_default()
}

/// `SELECT COUNT(*), <digest>` of the rows in `lo < key <= hi`: the row digests concatenated in the order the
/// key index returns them and hashed again (order-sensitive, so no two rows can cancel out as they do under XOR).
/// The forced key index gives key order on both servers without the sort an `ORDER BY` inside GROUP_CONCAT would
/// add (half the digest's server time, measured); a plan that returned another order would only make the digests
/// differ and the range be compared row by row.
pub fn range_digest_sql(
    t: &Table,
    lo: Option<&[Value]>,
    hi: Option<&[Value]>,
    sample: Option<&Sample>,
) -> Result<String> {
    Ok(format!(
        "SELECT COUNT(*), SHA2(GROUP_CONCAT({} SEPARATOR ''), 256) FROM {}{} WHERE {}{}",
        row_digest_expr(t),
        t.qualified(),
        force_index(t),
        plan::range_where(t, lo, hi)?,
        sample_and(t, sample),
    ))
}

/// The row digests of a keyless table, sorted, for a streaming multiset comparison.
pub fn keyless_digests_sql(t: &Table, sample: Option<&Sample>) -> String {
    format!(
        "SELECT {} AS h FROM {} WHERE 1 = 1{} ORDER BY h",
        row_digest_expr(t),
        t.qualified(),
        sample_and(t, sample),
    )
}

/// The rows of a keyless table whose digests are in `digests` (hex), over `cols`.
pub fn keyless_rows_sql(t: &Table, digests: &[String]) -> String {
    let list: Vec<String> = t.columns.iter().map(|c| ident(&c.name)).collect();
    let wanted: Vec<String> = digests.iter().map(|d| format!("'{d}'")).collect();
    format!(
        "SELECT {}, {} AS h FROM {} WHERE {} IN ({})",
        list.join(", "),
        row_digest_expr(t),
        t.qualified(),
        row_digest_expr(t),
        wanted.join(", ")
    )
}

/// The rows of `t` in `lo < key <= hi` (and in the sample), over every column, in key order.
pub fn range_rows_sql(
    t: &Table,
    lo: Option<&[Value]>,
    hi: Option<&[Value]>,
    sample: Option<&Sample>,
) -> Result<String> {
    let list: Vec<String> = t.columns.iter().map(|c| ident(&c.name)).collect();
    let order = if t.key.is_some() {
        format!(" ORDER BY {}", key_order(t))
    } else {
        String::new()
    };
    Ok(format!(
        "SELECT {} FROM {}{} WHERE {}{}{order}",
        list.join(", "),
        t.qualified(),
        force_index(t),
        plan::range_where(t, lo, hi)?,
        sample_and(t, sample),
    ))
}

/// The rows of `t` with the given keys, over every column (the applier's key lookup: an IN list for one key
/// column).
pub fn rows_by_key_sql(t: &Table, keys: &[Vec<Value>]) -> Result<String> {
    let key = sql::key_of(t)?;
    let all: Vec<usize> = (0..t.columns.len()).collect();
    Ok(sql::select_where(
        t,
        &all,
        &sql::where_tuples(t, &key, keys)?,
    ))
}

/// Each row's key and digest in `lo < key <= hi`, in key order: how a range whose digests differ is narrowed to
/// the rows that differ without reading whole rows.
pub fn range_row_digests_sql(
    t: &Table,
    lo: Option<&[Value]>,
    hi: Option<&[Value]>,
    sample: Option<&Sample>,
) -> Result<String> {
    Ok(format!(
        "SELECT {order}, {} FROM {}{} WHERE {}{} ORDER BY {order}",
        row_digest_expr(t),
        t.qualified(),
        force_index(t),
        plan::range_where(t, lo, hi)?,
        sample_and(t, sample),
        order = key_order(t),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_engine::schema::model::Key;

    fn col(name: &str, data_type: &str) -> Column {
        Column {
            name: name.into(),
            data_type: data_type.into(),
            column_type: data_type.into(),
            charset: None,
            nullable: true,
            generated: false,
        }
    }

    fn table(cols: Vec<Column>, key: bool) -> Table {
        Table {
            db: "d".into(),
            name: "t".into(),
            columns: cols,
            key: key.then(|| Key {
                name: "PRIMARY".into(),
                columns: vec![0],
            }),
            uniques: vec![],
            followers: vec![],
            engine: "InnoDB".into(),
            rows_estimate: 0,
            create_sql: String::new(),
            omitted: vec![],
        }
    }

    #[test]
    fn pieces_are_self_delimiting_and_null_has_its_own_mark() {
        let t = table(vec![col("id", "int"), col("s", "varchar")], true);
        assert_eq!(
            row_digest_expr(&t),
            "SHA2(CONCAT(IFNULL(CONCAT(CAST(`id` AS CHAR), ','), 'N,'), \
             IFNULL(CONCAT(LENGTH(`s`), ':', CAST(`s` AS BINARY)), 'N')), 256)"
        );
    }

    #[test]
    fn range_digest_reads_the_range_through_the_key_index() {
        let t = table(vec![col("id", "bigint"), col("b", "blob")], true);
        let sql = range_digest_sql(&t, Some(&[Value::Int(10)]), Some(&[Value::Int(20)]), None)
            .expect("sql");
        assert!(sql.starts_with("SELECT COUNT(*), SHA2(GROUP_CONCAT(SHA2(CONCAT("));
        assert!(sql.contains(", 256) SEPARATOR ''), 256) FROM `d`.`t` FORCE INDEX (`PRIMARY`) WHERE ((`id` > 10)) AND ((`id` < 20) OR (`id` = 20))"), "{sql}");
    }

    #[test]
    fn float_columns_keep_a_table_on_the_client_path() {
        let t = table(vec![col("id", "int"), col("f", "double")], true);
        let (s, why) = strategy_for(&t, false);
        assert_eq!(s, Strategy::Client);
        assert!(why
            .expect("reason")
            .contains("column(s) f are compared by their bits"));
        let t = table(vec![col("id", "int"), col("j", "json")], true);
        assert_eq!(strategy_for(&t, false).0, Strategy::ServerDigest);
        assert_eq!(strategy_for(&t, true).0, Strategy::Client);
    }

    #[test]
    fn the_sample_predicate_goes_before_the_order() {
        let t = table(vec![col("id", "int")], true);
        let s = Sample {
            seed: 7,
            ppm: 100_000,
        };
        let sql = range_rows_sql(&t, None, None, Some(&s)).expect("sql");
        assert!(
            sql.ends_with(
                "WHERE 1 = 1 AND CRC32(CONCAT_WS(0x1f, '7', CAST(`id` AS BINARY))) % 1000000 < 100000 ORDER BY `id`"
            ),
            "{sql}"
        );
    }

    #[test]
    fn rows_by_key_lists_each_key() {
        let t = table(vec![col("id", "int"), col("s", "varchar")], true);
        let sql = rows_by_key_sql(&t, &[vec![Value::Int(1)], vec![Value::Int(2)]]).expect("sql");
        assert!(sql.ends_with("WHERE `id` IN (1, 2)"), "{sql}");
        assert!(rows_by_key_sql(&t, &[])
            .expect("sql")
            .ends_with("WHERE 1 = 0"));
    }
}
