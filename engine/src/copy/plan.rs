//! Chunk planning by key range: the range predicates, the SQL that reads a chunk, and the boundary walk.

use crate::error::{Result, ResultExt};
use crate::mysql::quote::ident;
use crate::schema::model::{Column, Table};
use crate::value::Value;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

/// A comparison in a range predicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Gt,
    Lt,
}

/// A predicate in disjunctive normal form over key positions: OR of ANDs of `key[i] op bound[i]`.
pub type Dnf = Vec<Vec<(usize, Op)>>;

/// `key > bound` (lexicographic) as OR-expanded terms, which every optimizer turns into index ranges
/// (row-constructor comparisons are not range-optimized everywhere).
pub fn dnf_gt(n: usize) -> Dnf {
    (0..n)
        .map(|i| (0..i).map(|j| (j, Op::Eq)).chain([(i, Op::Gt)]).collect())
        .collect()
}

/// `key <= bound` (lexicographic).
pub fn dnf_le(n: usize) -> Dnf {
    let mut d: Dnf = (0..n)
        .map(|i| (0..i).map(|j| (j, Op::Eq)).chain([(i, Op::Lt)]).collect())
        .collect();
    d.push((0..n).map(|j| (j, Op::Eq)).collect());
    d
}

fn render(dnf: &Dnf, cols: &[&Column], bound: &[Value], out: &mut String) -> Result<()> {
    out.push('(');
    for (t, term) in dnf.iter().enumerate() {
        if t > 0 {
            out.push_str(" OR ");
        }
        out.push('(');
        for (k, (i, op)) in term.iter().enumerate() {
            if k > 0 {
                out.push_str(" AND ");
            }
            out.push_str(&ident(&cols[*i].name));
            out.push_str(match op {
                Op::Eq => " = ",
                Op::Gt => " > ",
                Op::Lt => " < ",
            });
            bound[*i].write_literal(cols[*i], out)?;
        }
        out.push(')');
    }
    out.push(')');
    Ok(())
}

/// `lo < key <= hi`, either side open when None.
pub fn range_where(table: &Table, lo: Option<&[Value]>, hi: Option<&[Value]>) -> Result<String> {
    let cols = table.key_columns();
    let mut parts = Vec::new();
    if let Some(lo) = lo {
        let mut s = String::new();
        render(&dnf_gt(cols.len()), &cols, lo, &mut s)?;
        parts.push(s);
    }
    if let Some(hi) = hi {
        let mut s = String::new();
        render(&dnf_le(cols.len()), &cols, hi, &mut s)?;
        parts.push(s);
    }
    Ok(if parts.is_empty() {
        "1 = 1".into()
    } else {
        parts.join(" AND ")
    })
}

/// The key columns as an ORDER BY list.
pub fn key_order(table: &Table) -> String {
    table
        .key_columns()
        .iter()
        .map(|c| ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// ` FORCE INDEX (<key>)`, or nothing for a keyless table.
pub fn force_index(table: &Table) -> String {
    match &table.key {
        Some(k) => format!(" FORCE INDEX ({})", ident(&k.name)),
        None => String::new(),
    }
}

/// Reads the columns at `cols` of the rows in one chunk, in key order.
/// A row read from the destination over `Table::present_columns`, laid out over all the table's columns (NULL
/// where the destination has none), so key and unique indexes address it as they address source rows.
pub fn decode_present_row(
    row: mysql_async::Row,
    t: &Table,
    present: &[usize],
) -> Result<Vec<Value>> {
    let cols: Vec<&Column> = present.iter().map(|&i| &t.columns[i]).collect();
    let values = decode_row(row, &cols)?;
    let mut full = vec![Value::Null; t.columns.len()];
    for (&i, v) in present.iter().zip(values) {
        full[i] = v;
    }
    Ok(full)
}

pub fn select_chunk_sql(
    table: &Table,
    cols: &[usize],
    lo: Option<&[Value]>,
    hi: Option<&[Value]>,
) -> Result<String> {
    let list: Vec<String> = cols
        .iter()
        .map(|&i| ident(&table.columns[i].name))
        .collect();
    let mut sql = format!(
        "SELECT {} FROM {}{} WHERE {}",
        list.join(", "),
        table.qualified(),
        force_index(table),
        range_where(table, lo, hi)?
    );
    if table.key.is_some() {
        sql.push_str(" ORDER BY ");
        sql.push_str(&key_order(table));
    }
    Ok(sql)
}

/// The key `chunk_rows` rows after `lo`: the upper bound of the chunk that starts after `lo`.
pub fn boundary_sql(table: &Table, lo: Option<&[Value]>, chunk_rows: u64) -> Result<String> {
    Ok(format!(
        "SELECT {order} FROM {}{} WHERE {} ORDER BY {order} LIMIT 1 OFFSET {}",
        table.qualified(),
        force_index(table),
        range_where(table, lo, None)?,
        chunk_rows.saturating_sub(1),
        order = key_order(table),
    ))
}

/// A chunk: rows with `lo < key <= hi`.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    pub lo: Option<Vec<Value>>,
    pub hi: Option<Vec<Value>>,
}

/// Decodes a row of `cols` into values.
pub fn decode_row(row: mysql_async::Row, cols: &[&Column]) -> Result<Vec<Value>> {
    row.unwrap_raw()
        .into_iter()
        .zip(cols)
        .map(|(v, c)| Value::from_wire(v.unwrap_or(mysql_async::Value::NULL), c))
        .collect()
}

/// Walks the key index to cut the table into chunks of `chunk_rows` (the last one open-ended).
/// A table without a usable key is one chunk.
pub async fn plan_table(
    conn: &mut Conn,
    table: &Table,
    chunk_rows: u64,
    ranges_max: usize,
) -> Result<Vec<Range>> {
    plan_table_throttled(conn, table, chunk_rows, ranges_max, None).await
}

/// `plan_table`, each boundary query taken from `throttle`'s queries per second.
pub async fn plan_table_throttled(
    conn: &mut Conn,
    table: &Table,
    chunk_rows: u64,
    ranges_max: usize,
    throttle: Option<&crate::throttle::Throttle>,
) -> Result<Vec<Range>> {
    if table.key.is_none() {
        return Ok(vec![Range { lo: None, hi: None }]);
    }
    let cols = table.key_columns();
    let mut ranges = Vec::new();
    let mut lo: Option<Vec<Value>> = None;
    loop {
        let sql = boundary_sql(table, lo.as_deref(), chunk_rows)?;
        if let Some(t) = throttle {
            t.query().await;
        }
        let row: Option<mysql_async::Row> = conn
            .exec_first(sql, ())
            .await
            .ctx(format!("planning chunks of {}", table.display_name()))?;
        match row {
            Some(r) if ranges.len() + 1 < ranges_max => {
                let hi = decode_row(r, &cols)?;
                ranges.push(Range {
                    lo: lo.clone(),
                    hi: Some(hi.clone()),
                });
                lo = Some(hi);
            }
            _ => {
                ranges.push(Range { lo, hi: None });
                return Ok(ranges);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eval(dnf: &Dnf, key: &[i8], bound: &[i8]) -> bool {
        dnf.iter().any(|term| {
            term.iter().all(|(i, op)| match op {
                Op::Eq => key[*i] == bound[*i],
                Op::Gt => key[*i] > bound[*i],
                Op::Lt => key[*i] < bound[*i],
            })
        })
    }

    proptest! {
        #[test]
        fn dnf_matches_lexicographic_order(n in 1usize..5, a in proptest::collection::vec(-2i8..3, 5), b in proptest::collection::vec(-2i8..3, 5)) {
            let (a, b) = (&a[..n], &b[..n]);
            prop_assert_eq!(eval(&dnf_gt(n), a, b), a > b);
            prop_assert_eq!(eval(&dnf_le(n), a, b), a <= b);
        }
    }

    fn table() -> Table {
        let col = |n: &str, t: &str| Column {
            name: n.into(),
            data_type: t.into(),
            column_type: t.into(),
            charset: if t == "varchar" {
                Some("latin1".into())
            } else {
                None
            },
            nullable: false,
            generated: false,
        };
        Table {
            db: "d".into(),
            name: "t".into(),
            columns: vec![col("a", "int"), col("b", "varchar"), col("c", "blob")],
            key: Some(crate::schema::model::Key {
                name: "PRIMARY".into(),
                columns: vec![0, 1],
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
    fn chunk_sql() {
        let t = table();
        let lo = [Value::Int(1), Value::Bytes(b"x".to_vec())];
        let hi = [Value::Int(9), Value::Bytes(b"z".to_vec())];
        insta::assert_snapshot!(select_chunk_sql(&t, &[0, 1, 2], Some(&lo), Some(&hi)).unwrap(),
            @"SELECT `a`, `b`, `c` FROM `d`.`t` FORCE INDEX (`PRIMARY`) WHERE ((`a` > 1) OR (`a` = 1 AND `b` > _latin1 X'78')) AND ((`a` < 9) OR (`a` = 9 AND `b` < _latin1 X'7A') OR (`a` = 9 AND `b` = _latin1 X'7A')) ORDER BY `a`, `b`");
        insta::assert_snapshot!(boundary_sql(&t, None, 1000).unwrap(),
            @"SELECT `a`, `b` FROM `d`.`t` FORCE INDEX (`PRIMARY`) WHERE 1 = 1 ORDER BY `a`, `b` LIMIT 1 OFFSET 999");
    }
}
