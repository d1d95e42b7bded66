//! The statements the binlog applier sends: multi-row upserts, inserts, deletes by key, and key lookups.

use crate::codes;
use crate::error::{Error, Result};
use crate::mysql::quote::ident;
use crate::schema::model::{FkRule, Follower, Table};
use crate::value::Value;

/// `INSERT INTO t (cols) VALUES (..),(..)`: the writable columns of full row images.
pub fn insert(table: &Table, rows: &[&[Value]]) -> Result<String> {
    let mut out = String::with_capacity(64 + rows.len() * 64);
    out.push_str("INSERT INTO ");
    out.push_str(&table.qualified());
    out.push_str(" (");
    let cols: Vec<usize> = table.writable_columns().map(|(i, _)| i).collect();
    for (n, &i) in cols.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        out.push_str(&ident(&table.columns[i].name));
    }
    out.push_str(") VALUES ");
    for (r, row) in rows.iter().enumerate() {
        if row.len() != table.columns.len() {
            return Err(Error::definite(
                &codes::CDC_DECODE,
                format!(
                    "{}: row image of {} values for {} columns",
                    table.display_name(),
                    row.len(),
                    table.columns.len()
                ),
            ));
        }
        if r > 0 {
            out.push(',');
        }
        out.push('(');
        for (n, &i) in cols.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            row[i].write_literal(&table.columns[i], &mut out)?;
        }
        out.push(')');
    }
    Ok(out)
}

/// An idempotent write of full row images keyed by the table's key: insert, or overwrite every column of the row
/// with the same key. Rows are applied in order, so the last image of a key wins.
pub fn upsert(table: &Table, rows: &[&[Value]]) -> Result<String> {
    let mut out = insert(table, rows)?;
    out.push_str(" ON DUPLICATE KEY UPDATE ");
    let key: Vec<usize> = table
        .key
        .as_ref()
        .map(|k| k.columns.clone())
        .unwrap_or_default();
    let set: Vec<String> = table
        .writable_columns()
        .filter(|(i, _)| !key.contains(i))
        .map(|(_, c)| format!("{0} = VALUES({0})", ident(&c.name)))
        .collect();
    if set.is_empty() {
        // Every column is in the key: an existing row is already this row.
        let first = table
            .columns
            .first()
            .map(|c| ident(&c.name))
            .unwrap_or_default();
        out.push_str(&format!("{first} = {first}"));
    } else {
        out.push_str(&set.join(", "));
    }
    Ok(out)
}

/// `(k1 = .. AND k2 = ..) OR (..)` over the columns `cols` for each tuple of values (in `cols` order).
pub fn where_tuples(table: &Table, cols: &[usize], tuples: &[Vec<Value>]) -> Result<String> {
    let mut out = String::new();
    // One key column and no NULL: `k IN (..)`, which the server parses and plans far faster than a long OR.
    if let [i] = cols {
        if !tuples.is_empty() && tuples.iter().all(|t| t.len() == 1 && !t[0].is_null()) {
            let c = &table.columns[*i];
            out.push_str(&ident(&c.name));
            out.push_str(" IN (");
            for (n, t) in tuples.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                t[0].write_literal(c, &mut out)?;
            }
            out.push(')');
            return Ok(out);
        }
    }
    for (t, vals) in tuples.iter().enumerate() {
        if t > 0 {
            out.push_str(" OR ");
        }
        out.push('(');
        for (n, (&i, v)) in cols.iter().zip(vals).enumerate() {
            if n > 0 {
                out.push_str(" AND ");
            }
            out.push_str(&ident(&table.columns[i].name));
            out.push_str(if v.is_null() { " <=> " } else { " = " });
            v.write_literal(&table.columns[i], &mut out)?;
        }
        out.push(')');
    }
    if out.is_empty() {
        out.push_str("1 = 0");
    }
    Ok(out)
}

/// `UPDATE t SET <every writable column> = <after> WHERE <key> = <before key>`: one row, as the source changed it.
pub fn update_row(table: &Table, before_key: &[Value], after: &[Value]) -> Result<String> {
    let key = key_of(table)?;
    let mut set = String::new();
    for (n, (i, c)) in table.writable_columns().enumerate() {
        if n > 0 {
            set.push_str(", ");
        }
        set.push_str(&ident(&c.name));
        set.push_str(" = ");
        after
            .get(i)
            .ok_or_else(|| {
                Error::definite(
                    &codes::CDC_DECODE,
                    format!("{}: row image too short", table.display_name()),
                )
            })?
            .write_literal(c, &mut set)?;
    }
    Ok(format!(
        "UPDATE {} SET {set} WHERE {}",
        table.qualified(),
        where_tuples(table, &key, &[before_key.to_vec()])?
    ))
}

/// The statements that make a follower's child rows do what its FK does when parent rows with the referenced
/// values `old` go (`new` = None) or change to `new`: CASCADE deletes or re-points them, SET NULL nulls them. A
/// re-pointed child that already exists under the new values (a copy taken after the change) stays as it is and
/// the stale one goes (`UPDATE IGNORE` then `DELETE`).
pub fn follow(
    parent: &Table,
    f: &Follower,
    old: &[Value],
    new: Option<&[Value]>,
) -> Result<Vec<String>> {
    let child = format!("{}.{}", ident(&f.db), ident(&f.table));
    let mut cond = String::new();
    for (n, (col, &pi)) in f.columns.iter().zip(&f.referenced).enumerate() {
        if n > 0 {
            cond.push_str(" AND ");
        }
        cond.push_str(&ident(col));
        cond.push_str(" = ");
        old.get(n)
            .unwrap_or(&Value::Null)
            .write_literal(&parent.columns[pi], &mut cond)?;
    }
    let set = |vals: Option<&[Value]>| -> Result<String> {
        let mut out = String::new();
        for (n, (col, &pi)) in f.columns.iter().zip(&f.referenced).enumerate() {
            if n > 0 {
                out.push_str(", ");
            }
            out.push_str(&ident(col));
            out.push_str(" = ");
            match vals {
                Some(v) => v
                    .get(n)
                    .unwrap_or(&Value::Null)
                    .write_literal(&parent.columns[pi], &mut out)?,
                None => out.push_str("NULL"),
            }
        }
        for c in &f.keep {
            out.push_str(&format!(", {0} = {0}", ident(c)));
        }
        Ok(out)
    };
    let rule = if new.is_some() {
        f.on_update
    } else {
        f.on_delete
    };
    Ok(match (rule, new) {
        (FkRule::Restrict, _) => Vec::new(),
        (FkRule::SetNull, _) => vec![format!("UPDATE {child} SET {} WHERE {cond}", set(None)?)],
        (FkRule::Cascade, None) => vec![format!("DELETE FROM {child} WHERE {cond}")],
        (FkRule::Cascade, Some(v)) => vec![
            format!("UPDATE IGNORE {child} SET {} WHERE {cond}", set(Some(v))?),
            format!("DELETE FROM {child} WHERE {cond}"),
        ],
    })
}

/// `DELETE FROM t WHERE <key in keys>`.
pub fn delete_keys(table: &Table, keys: &[Vec<Value>]) -> Result<String> {
    let cols = key_of(table)?;
    Ok(format!(
        "DELETE FROM {} WHERE {}",
        table.qualified(),
        where_tuples(table, &cols, keys)?
    ))
}

/// `SELECT cols FROM t WHERE <cond>` (the caller builds `cond` with `where_tuples`).
pub fn select_where(table: &Table, cols: &[usize], cond: &str) -> String {
    let list: Vec<String> = cols
        .iter()
        .map(|&i| ident(&table.columns[i].name))
        .collect();
    format!(
        "SELECT {} FROM {} WHERE {cond}",
        list.join(", "),
        table.qualified()
    )
}

/// A keyless table's row is found by every column (NULL-safe); one row at a time, as the source changed it.
pub fn keyless_match(table: &Table, row: &[Value]) -> Result<String> {
    let cols: Vec<usize> = (0..table.columns.len())
        .filter(|&i| {
            !matches!(
                table.columns[i].data_type.as_str(),
                "float"
                    | "double"
                    | "json"
                    | "geometry"
                    | "point"
                    | "linestring"
                    | "polygon"
                    | "multipoint"
                    | "multilinestring"
                    | "multipolygon"
                    | "geometrycollection"
            )
        })
        .collect();
    let mut out = String::new();
    for (n, &i) in cols.iter().enumerate() {
        if n > 0 {
            out.push_str(" AND ");
        }
        out.push_str(&ident(&table.columns[i].name));
        out.push_str(" <=> ");
        row[i].write_literal(&table.columns[i], &mut out)?;
    }
    if out.is_empty() {
        out.push_str("1 = 1");
    }
    Ok(out)
}

/// The key's column indexes; a table without one has none to address rows by.
pub fn key_of(table: &Table) -> Result<Vec<usize>> {
    table
        .key
        .as_ref()
        .map(|k| k.columns.clone())
        .ok_or_else(|| {
            Error::definite(
                &codes::CDC_DECODE,
                format!(
                    "{} has no primary or unique not-null key",
                    table.display_name()
                ),
            )
        })
}

/// The values of `cols` in a row image.
pub fn project(row: &[Value], cols: &[usize]) -> Vec<Value> {
    cols.iter()
        .map(|&i| row.get(i).cloned().unwrap_or(Value::Null))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::model::{Column, Key};

    fn table() -> Table {
        let col = |n: &str, t: &str, generated: bool| Column {
            name: n.into(),
            data_type: t.into(),
            column_type: t.into(),
            charset: (t == "varchar").then(|| "utf8mb4".to_string()),
            nullable: true,
            generated,
        };
        Table {
            db: "shop".into(),
            name: "t".into(),
            columns: vec![
                col("id", "int", false),
                col("email", "varchar", false),
                col("g", "int", true),
            ],
            key: Some(Key {
                name: "PRIMARY".into(),
                columns: vec![0],
            }),
            uniques: vec![Key {
                name: "email".into(),
                columns: vec![1],
            }],
            followers: Vec::new(),
            engine: "InnoDB".into(),
            rows_estimate: 0,
            create_sql: String::new(),
            omitted: Vec::new(),
        }
    }

    fn row(id: i64, email: &str) -> Vec<Value> {
        vec![
            Value::Int(id),
            Value::Bytes(email.as_bytes().to_vec()),
            Value::Int(id + 1),
        ]
    }

    #[test]
    fn upserts_write_every_writable_column_and_skip_generated_ones() {
        let (a, b) = (row(1, "a"), row(2, "b"));
        let sql = upsert(&table(), &[&a, &b]).expect("sql");
        insta::assert_snapshot!(sql, @"INSERT INTO `shop`.`t` (`id`, `email`) VALUES (1,_utf8mb4 X'61'),(2,_utf8mb4 X'62') ON DUPLICATE KEY UPDATE `email` = VALUES(`email`)");
    }

    #[test]
    fn deletes_address_rows_by_key_and_nulls_null_safely() {
        let sql = delete_keys(&table(), &[vec![Value::Int(1)], vec![Value::Int(7)]]).expect("sql");
        assert_eq!(sql, "DELETE FROM `shop`.`t` WHERE `id` IN (1, 7)");
        let w = where_tuples(&table(), &[1], &[vec![Value::Null]]).expect("sql");
        assert_eq!(w, "(`email` <=> NULL)");
        // A NULL among one column's values, or several columns: tuple by tuple.
        let w = where_tuples(
            &table(),
            &[1],
            &[vec![Value::Bytes(b"a".to_vec())], vec![Value::Null]],
        )
        .expect("sql");
        assert_eq!(w, "(`email` = _utf8mb4 X'61') OR (`email` <=> NULL)");
        let w = where_tuples(
            &table(),
            &[0, 1],
            &[vec![Value::Int(1), Value::Bytes(b"a".to_vec())]],
        )
        .expect("sql");
        assert_eq!(w, "(`id` = 1 AND `email` = _utf8mb4 X'61')");
        assert_eq!(where_tuples(&table(), &[0], &[]).expect("sql"), "1 = 0");
    }

    #[test]
    fn followers_cascade_and_null_child_rows_like_the_source_did() {
        let f = Follower {
            db: "shop".into(),
            table: "c".into(),
            columns: vec!["t_id".into()],
            referenced: vec![0],
            keep: vec!["at".into()],
            on_delete: FkRule::SetNull,
            on_update: FkRule::Cascade,
        };
        let t = table();
        let gone = follow(&t, &f, &[Value::Int(1)], None).expect("sql");
        assert_eq!(
            gone,
            vec!["UPDATE `shop`.`c` SET `t_id` = NULL, `at` = `at` WHERE `t_id` = 1"]
        );
        let moved = follow(&t, &f, &[Value::Int(1)], Some(&[Value::Int(9)])).expect("sql");
        assert_eq!(
            moved,
            vec![
                "UPDATE IGNORE `shop`.`c` SET `t_id` = 9, `at` = `at` WHERE `t_id` = 1",
                "DELETE FROM `shop`.`c` WHERE `t_id` = 1"
            ]
        );
        let restrict = Follower {
            on_delete: FkRule::Restrict,
            ..f
        };
        assert!(follow(&t, &restrict, &[Value::Int(1)], None)
            .expect("sql")
            .is_empty());
    }

    #[test]
    fn images_of_the_wrong_width_are_refused() {
        let short = vec![Value::Int(1)];
        assert!(insert(&table(), &[&short]).is_err());
    }
}
