//! Destination rows that hold a unique value of rows a chunk is about to insert, under another key.
//!
//! Chunks are read at different moments while the source takes writes, so a unique value can move from a row
//! copied earlier to a row copied later. The earlier copy is stale: the binlog after P0 carries the change that
//! freed the value, and catch-up replay re-creates that row from its full image. The copy parks such rows (kept in
//! the metadata, named in the log) and removes them; catch-up releases them when their key's event arrives, and
//! entering exact mode with a row still parked is an error naming both rows (FERRY-CDC-006).

use crate::cdc::sql;
use crate::error::{Result, ResultExt};
use crate::meta::values_json;
use crate::schema::model::Table;
use crate::value::Value;
use mysql_async::prelude::Queryable;
use mysql_async::Transaction;
use std::collections::HashSet;

/// A destination row in the way of a chunk row.
#[derive(Debug, Clone)]
pub struct Displaced {
    /// Key of the destination row (JSON of the key values).
    pub key_json: String,
    /// The destination row, every column.
    pub row_json: String,
    /// Its key values, to delete it by.
    pub key: Vec<Value>,
    /// Which chunk row takes which unique value.
    pub by: String,
}

/// Destination rows holding, under another key, a unique value of one of `rows` (values of the table's columns
/// `cols`, in that order). Unique keys with a column outside `cols` (generated columns) are not checked.
pub async fn find(
    tx: &mut Transaction<'_>,
    t: &Table,
    cols: &[usize],
    rows: &[Vec<Value>],
) -> Result<Vec<Displaced>> {
    let key = sql::key_of(t)?;
    let Some(key_pos) = positions(cols, &key) else {
        return Ok(Vec::new());
    };
    let ours: HashSet<String> = rows
        .iter()
        .map(|r| values_json(&sql::project(r, &key_pos)))
        .collect();
    let present = t.present_columns();
    let mut out: Vec<Displaced> = Vec::new();
    let mut seen = HashSet::new();
    for u in &t.uniques {
        let Some(pos) = positions(cols, &u.columns) else {
            continue;
        };
        let tuples: Vec<Vec<Value>> = rows
            .iter()
            .map(|r| sql::project(r, &pos))
            .filter(|v| !v.iter().any(Value::is_null))
            .collect();
        if tuples.is_empty() {
            continue;
        }
        let q = sql::select_where(t, &present, &sql::where_tuples(t, &u.columns, &tuples)?);
        let found: Vec<mysql_async::Row> = tx.exec(q, ()).await.ctx(t.display_name())?;
        for r in found {
            let row = super::plan::decode_present_row(r, t, &present)?;
            let k = sql::project(&row, &key);
            let kj = values_json(&k);
            if ours.contains(&kj) || !seen.insert(kj.clone()) {
                continue;
            }
            let value = sql::project(&row, &u.columns);
            let taker = rows
                .iter()
                .find(|r| sql::project(r, &pos) == value)
                .map(|r| values_json(&sql::project(r, &key_pos)))
                .unwrap_or_default();
            out.push(Displaced {
                key_json: kj,
                row_json: values_json(&row),
                key: k,
                by: format!(
                    "copied key {taker} taking {} = {}",
                    u.name,
                    values_json(&value)
                ),
            });
        }
    }
    Ok(out)
}

/// Where each of `wanted` (table column indexes) sits in `cols`; `None` if one is missing.
fn positions(cols: &[usize], wanted: &[usize]) -> Option<Vec<usize>> {
    wanted
        .iter()
        .map(|w| cols.iter().position(|c| c == w))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_map_table_columns_into_the_copied_subset() {
        assert_eq!(positions(&[0, 1, 3], &[3, 0]), Some(vec![2, 0]));
        assert_eq!(positions(&[0, 1, 3], &[2]), None);
        assert_eq!(positions(&[0, 1], &[]), Some(vec![]));
    }
}
