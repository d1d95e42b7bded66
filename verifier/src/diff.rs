//! Row differences: locating them between two sets of rows (by key, or as multisets without one), which columns
//! differ (FLOAT/DOUBLE optionally within a tolerance), and their JSON form for the diff file.

use crate::canonical::{encode_value, normalize_json, row_hash, RowHash};
use ferry_engine::schema::model::Table;
use ferry_engine::value::Value;
use rayon::prelude::*;
use std::collections::HashMap;

/// What is wrong with a row on the destination.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// On the source, not on the destination.
    Missing,
    /// On the destination, not on the source.
    Extra,
    /// Same key, other values.
    Different,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Missing => "missing",
            Kind::Extra => "extra",
            Kind::Different => "different",
        }
    }
}

/// One differing row, with both images (over the table's compared columns, source layout).
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    pub kind: Kind,
    pub source: Option<Vec<Value>>,
    pub destination: Option<Vec<Value>>,
    /// Indexes of the columns whose values differ (`Different` only).
    pub columns: Vec<usize>,
}

impl Diff {
    /// The row the difference is about: the source image where there is one.
    pub fn row(&self) -> &[Value] {
        self.source
            .as_deref()
            .or(self.destination.as_deref())
            .unwrap_or(&[])
    }
}

/// Compares rows of one table (both sides laid out over the source's compared columns).
pub struct RowCompare<'a> {
    pub table: &'a Table,
    json: Vec<bool>,
    /// FLOAT/DOUBLE values closer than this (relative to the larger magnitude, or absolute below 1) are equal.
    tolerance: Option<f64>,
}

impl<'a> RowCompare<'a> {
    pub fn new(table: &'a Table, tolerance: Option<f64>) -> RowCompare<'a> {
        let json = table
            .columns
            .iter()
            .map(|c| c.data_type == "json")
            .collect();
        RowCompare {
            table,
            json,
            tolerance,
        }
    }

    /// Also tags the columns `json` names as JSON (MariaDB's JSON, a LONGTEXT with a json_valid check, which
    /// information_schema reports as `longtext`); JSON compares by its exact text like any string.
    pub fn with_json_columns(mut self, json: &std::collections::HashSet<String>) -> Self {
        for (i, c) in self.table.columns.iter().enumerate() {
            if json.contains(&c.name) {
                self.json[i] = true;
            }
        }
        self
    }

    pub fn hash(&self, row: &[Value]) -> RowHash {
        row_hash(row, &self.json)
    }

    /// The hash of a row's key (of the whole row without a key).
    pub fn key_hash(&self, row: &[Value]) -> RowHash {
        match &self.table.key {
            Some(k) => {
                let kv: Vec<Value> = k.columns.iter().map(|&i| row[i].clone()).collect();
                row_hash(&kv, &[])
            }
            None => self.hash(row),
        }
    }

    pub fn key_of(&self, row: &[Value]) -> Vec<Value> {
        match &self.table.key {
            Some(k) => k.columns.iter().map(|&i| row[i].clone()).collect(),
            None => row.to_vec(),
        }
    }

    /// The columns whose values differ; empty when the rows are equal (FLOAT/DOUBLE within the tolerance).
    pub fn differing_columns(&self, a: &[Value], b: &[Value]) -> Vec<usize> {
        let mut out = Vec::new();
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        for i in 0..a.len().max(b.len()) {
            let (x, y) = (
                a.get(i).unwrap_or(&Value::Null),
                b.get(i).unwrap_or(&Value::Null),
            );
            if let (Some(tol), Some(fx), Some(fy)) = (self.tolerance, float(x), float(y)) {
                if fx.to_bits() == fy.to_bits() || within(fx, fy, tol) {
                    continue;
                }
                out.push(i);
                continue;
            }
            ea.clear();
            eb.clear();
            let json = self.json.get(i).copied().unwrap_or(false);
            encode_value(x, json, &mut ea);
            encode_value(y, json, &mut eb);
            if ea != eb {
                out.push(i);
            }
        }
        out
    }

    /// The differences between `src` and `dst`: by key when the table has one, else as multisets of whole rows.
    /// Rows are hashed on rayon's pool; only rows whose hashes differ are compared column by column.
    pub fn locate(&self, src: Vec<Vec<Value>>, dst: Vec<Vec<Value>>) -> Vec<Diff> {
        let hashes = |rows: &[Vec<Value>]| -> Vec<(RowHash, RowHash)> {
            rows.par_iter()
                .map(|r| (self.key_hash(r), self.hash(r)))
                .collect()
        };
        let (sh, dh) = rayon::join(|| hashes(&src), || hashes(&dst));
        let mut by_key: HashMap<RowHash, Vec<(RowHash, Vec<Value>)>> = HashMap::new();
        for ((k, h), row) in dh.into_iter().zip(dst) {
            by_key.entry(k).or_default().push((h, row));
        }
        let mut out = Vec::new();
        for ((k, h), row) in sh.into_iter().zip(src) {
            match by_key.get_mut(&k).and_then(Vec::pop) {
                None => out.push(Diff {
                    kind: Kind::Missing,
                    source: Some(row),
                    destination: None,
                    columns: vec![],
                }),
                Some((dh, _)) if dh == h => {}
                Some((_, d)) => {
                    let columns = self.differing_columns(&row, &d);
                    if !columns.is_empty() {
                        out.push(Diff {
                            kind: Kind::Different,
                            source: Some(row),
                            destination: Some(d),
                            columns,
                        });
                    }
                }
            }
        }
        let mut extra: Vec<(RowHash, Vec<Value>)> = by_key.into_values().flatten().collect();
        // Deterministic output whatever the hash map's order.
        extra.sort_by_key(|(h, _)| *h);
        out.extend(extra.into_iter().map(|(_, row)| Diff {
            kind: Kind::Extra,
            source: None,
            destination: Some(row),
            columns: vec![],
        }));
        out
    }
}

/// Why two JSON values that differ may look alike in the diff file: when serde_json's normalised forms are equal
/// (key order, spacing, duplicate keys, number precision), a note saying so. Explains only; equality is the text.
pub fn explain_json(a: &Value, b: &Value) -> Option<String> {
    let (Value::Json(x) | Value::Bytes(x), Value::Json(y) | Value::Bytes(y)) = (a, b) else {
        return None;
    };
    if x == y {
        return None;
    }
    let (nx, ny) = (normalize_json(x)?, normalize_json(y)?);
    (nx == ny).then(|| {
        "the same document once normalised (key order, spacing, duplicate keys or number precision differ), \
         but not the same JSON text: the server reads them differently, so they differ"
            .to_string()
    })
}

fn float(v: &Value) -> Option<f64> {
    match v {
        Value::Float(f) => Some(f64::from(*f)),
        Value::Double(d) => Some(*d),
        _ => None,
    }
}

fn within(a: f64, b: f64, tol: f64) -> bool {
    if !(a.is_finite() && b.is_finite()) {
        return false;
    }
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}

/// A value as JSON for the diff file: numbers as numbers, text as text, other bytes as `{"hex": ...}`, JSON as
/// its document, temporal values and DECIMAL as the text the server would print.
pub fn json_value(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Int(i) => J::from(*i),
        Value::UInt(u) => J::from(*u),
        Value::Float(f) => finite(f64::from(*f)),
        Value::Double(d) => finite(*d),
        Value::Decimal(s) => J::String(s.clone()),
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => J::String(s.to_string()),
            Err(_) => serde_json::json!({ "hex": hex::encode(b) }),
        },
        Value::Json(b) => serde_json::from_slice(b)
            .unwrap_or_else(|_| J::String(String::from_utf8_lossy(b).into_owned())),
        Value::Date { year, month, day } => J::String(format!("{year:04}-{month:02}-{day:02}")),
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micro,
        } => J::String(format!(
            "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}.{micro:06}"
        )),
        Value::Time {
            negative,
            hours,
            minute,
            second,
            micro,
        } => J::String(format!(
            "{}{hours:02}:{minute:02}:{second:02}.{micro:06}",
            if *negative { "-" } else { "" }
        )),
    }
}

fn finite(d: f64) -> serde_json::Value {
    serde_json::Number::from_f64(d)
        .map(serde_json::Value::Number)
        .unwrap_or_else(|| serde_json::Value::String(d.to_string()))
}

/// A row as a JSON object by column name (`names` in column order).
pub fn json_row(names: &[String], row: &[Value]) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (n, v) in names.iter().zip(row) {
        m.insert(n.clone(), json_value(v));
    }
    serde_json::Value::Object(m)
}

/// The key of a row as text for the report: `(5)`, `(7, 'x')`; the first four values without a key.
pub fn key_text(t: &Table, row: &[Value]) -> String {
    let parts: Vec<String> = match &t.key {
        Some(k) => k.columns.iter().map(|&i| show(&row[i])).collect(),
        None => row.iter().take(4).map(show).collect(),
    };
    format!("({})", parts.join(", "))
}

fn show(v: &Value) -> String {
    match json_value(v) {
        serde_json::Value::String(s) => format!("'{s}'"),
        serde_json::Value::Null => "NULL".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_engine::schema::model::{Column, Key};

    fn table(key: bool) -> Table {
        let col = |n: &str, t: &str| Column {
            name: n.into(),
            data_type: t.into(),
            column_type: t.into(),
            charset: None,
            nullable: true,
            generated: false,
        };
        Table {
            db: "d".into(),
            name: "t".into(),
            columns: vec![col("id", "int"), col("f", "double"), col("s", "varchar")],
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

    fn row(id: i64, f: f64, s: &str) -> Vec<Value> {
        vec![Value::Int(id), Value::Double(f), Value::Bytes(s.into())]
    }

    #[test]
    fn keyed_rows_are_missing_extra_or_different_with_their_columns() {
        let t = table(true);
        let c = RowCompare::new(&t, None);
        let d = c.locate(
            vec![row(1, 1.0, "a"), row(2, 2.0, "b"), row(3, -0.0, "c")],
            vec![row(2, 2.0, "B"), row(3, 0.0, "c"), row(4, 4.0, "d")],
        );
        let kinds: Vec<(Kind, Vec<usize>)> =
            d.iter().map(|x| (x.kind, x.columns.clone())).collect();
        assert_eq!(
            kinds,
            vec![
                (Kind::Missing, vec![]),
                (Kind::Different, vec![2]),
                (Kind::Different, vec![1]),
                (Kind::Extra, vec![]),
            ]
        );
    }

    #[test]
    fn the_tolerance_applies_to_floats_only() {
        let t = table(true);
        let exact = RowCompare::new(&t, None);
        let loose = RowCompare::new(&t, Some(1e-9));
        let (a, b) = (row(1, 1.0, "a"), row(1, 1.0 + 1e-12, "a"));
        assert_eq!(exact.differing_columns(&a, &b), vec![1]);
        assert!(loose.differing_columns(&a, &b).is_empty());
        assert_eq!(loose.differing_columns(&a, &row(1, 1.001, "a")), vec![1]);
        assert_eq!(loose.differing_columns(&a, &row(1, 1.0, "a ")), vec![2]);
        assert!(loose
            .differing_columns(&row(1, -0.0, "a"), &row(1, 0.0, "a"))
            .is_empty());
        assert_eq!(loose.differing_columns(&row(1, f64::NAN, "a"), &a), vec![1]);
    }

    #[test]
    fn json_columns_differ_by_their_text_with_a_note_when_documents_look_alike() {
        let mut t = table(true);
        t.columns[2].data_type = "json".into();
        let c = RowCompare::new(&t, None);
        let j = |s: &str| vec![Value::Int(1), Value::Double(1.0), Value::Json(s.into())];
        for (a, b) in [
            (r#"{"a": 2}"#, r#"{"a": 1, "a": 2}"#),
            ("1.0", "1.0000000000000001"),
            (r#"{"a": 1, "b": 2}"#, r#"{"b": 2, "a": 1}"#),
        ] {
            assert_eq!(c.differing_columns(&j(a), &j(b)), vec![2], "{a} {b}");
            assert_eq!(c.locate(vec![j(a)], vec![j(b)]).len(), 1, "{a} {b}");
            assert!(explain_json(&j(a)[2], &j(b)[2]).is_some(), "{a} {b}");
        }
        assert!(c.differing_columns(&j("[1]"), &j("[1]")).is_empty());
        assert_eq!(explain_json(&j("[1]")[2], &j("[2]")[2]), None);
    }

    #[test]
    fn keyless_rows_compare_as_multisets() {
        let t = table(false);
        let c = RowCompare::new(&t, None);
        let d = c.locate(
            vec![row(1, 1.0, "a"), row(1, 1.0, "a"), row(2, 2.0, "b")],
            vec![row(1, 1.0, "a"), row(2, 2.0, "b"), row(2, 2.0, "b")],
        );
        let kinds: Vec<Kind> = d.iter().map(|x| x.kind).collect();
        assert_eq!(kinds, vec![Kind::Missing, Kind::Extra]);
        assert_eq!(d[0].row(), row(1, 1.0, "a").as_slice());
        assert_eq!(d[1].row(), row(2, 2.0, "b").as_slice());
    }

    #[test]
    fn json_values_keep_text_bytes_and_documents_apart() {
        assert_eq!(
            json_value(&Value::Bytes(b"NULL".to_vec())),
            serde_json::json!("NULL")
        );
        assert_eq!(json_value(&Value::Null), serde_json::Value::Null);
        assert_eq!(
            json_value(&Value::Bytes(vec![0xff, 0])),
            serde_json::json!({"hex": "ff00"})
        );
        assert_eq!(
            json_value(&Value::Json(br#"{"a": [1]}"#.to_vec())),
            serde_json::json!({"a": [1]})
        );
        assert_eq!(
            json_value(&Value::Double(f64::INFINITY)),
            serde_json::json!("inf")
        );
    }
}
