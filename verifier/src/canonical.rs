//! The canonical row encoding the verifier hashes: every value tagged and length-prefixed, numbers by value,
//! floats by their bits, JSON by its exact text, so that equal rows hash equal and nothing else does.
//!
//! JSON is never compared through a parsed document: a parser that keeps the last of duplicate keys or reads
//! numbers as f64 calls `{"a":1,"a":2}` and `{"a":2}` (or `1.0000000000000001` and `1.0`) equal although the
//! server reads them differently. MariaDB's JSON is a LONGTEXT with a `json_valid` check: its bytes are the value.
//! MySQL's JSON is a binary document the server prints in one canonical text form (keys sorted, one spacing,
//! integers and decimals exact): equal text is an equal document. [`normalize_json`] only explains a difference.

use ferry_engine::value::Value;
use sha2::{Digest, Sha256};

/// The sha256 of a row's canonical encoding.
pub type RowHash = [u8; 32];

mod tag {
    pub const NULL: u8 = 0;
    pub const INT: u8 = 1;
    pub const FLOAT: u8 = 2;
    pub const DOUBLE: u8 = 3;
    pub const DECIMAL: u8 = 4;
    pub const BYTES: u8 = 5;
    pub const JSON: u8 = 6;
    // 7 was JSON text that did not parse: every JSON value is now its text.
    pub const DATE: u8 = 8;
    pub const DATETIME: u8 = 9;
    pub const TIME: u8 = 10;
}

fn put_len_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_be_bytes());
    out.extend_from_slice(b);
}

/// DECIMAL text by value: no sign on zero, no leading zeros, no trailing fraction zeros.
pub fn normalize_decimal(s: &str) -> String {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let mut out = String::new();
    if int.is_empty() && frac.is_empty() {
        return "0".into();
    }
    if neg {
        out.push('-');
    }
    out.push_str(if int.is_empty() { "0" } else { int });
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// A JSON text with object keys sorted and no insignificant whitespace, as serde_json reads it (duplicate keys:
/// the last wins; numbers: f64 where they do not fit an integer); None when the text is not JSON. For explaining a
/// difference in the report only ("the same document once normalised"): it never decides equality.
pub fn normalize_json(b: &[u8]) -> Option<String> {
    let doc = serde_json::from_slice::<serde_json::Value>(b).ok()?;
    let mut s = String::new();
    write_normalized(&doc, &mut s);
    Some(s)
}

fn write_normalized(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(x) = m.get(*k) {
                    write_normalized(x, out);
                }
            }
            out.push('}');
        }
        serde_json::Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_normalized(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Appends one value's canonical encoding. `json` says the column holds JSON (MySQL JSON, or a MariaDB JSON
/// alias): tagged as JSON, compared by its exact text (see the module documentation).
pub fn encode_value(v: &Value, json: bool, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(tag::NULL),
        Value::Int(i) => {
            out.push(tag::INT);
            out.extend_from_slice(&i128::from(*i).to_be_bytes());
        }
        Value::UInt(u) => {
            out.push(tag::INT);
            out.extend_from_slice(&i128::from(*u).to_be_bytes());
        }
        Value::Float(f) => {
            out.push(tag::FLOAT);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        Value::Double(d) => {
            out.push(tag::DOUBLE);
            out.extend_from_slice(&d.to_bits().to_be_bytes());
        }
        Value::Decimal(s) => {
            out.push(tag::DECIMAL);
            put_len_bytes(out, normalize_decimal(s).as_bytes());
        }
        Value::Json(b) => encode_json(b, out),
        Value::Bytes(b) if json => encode_json(b, out),
        Value::Bytes(b) => {
            out.push(tag::BYTES);
            put_len_bytes(out, b);
        }
        Value::Date { year, month, day } => {
            out.push(tag::DATE);
            out.extend_from_slice(&year.to_be_bytes());
            out.extend_from_slice(&[*month, *day]);
        }
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micro,
        } => {
            out.push(tag::DATETIME);
            out.extend_from_slice(&year.to_be_bytes());
            out.extend_from_slice(&[*month, *day, *hour, *minute, *second]);
            out.extend_from_slice(&micro.to_be_bytes());
        }
        Value::Time {
            negative,
            hours,
            minute,
            second,
            micro,
        } => {
            out.push(tag::TIME);
            out.push(u8::from(*negative));
            out.extend_from_slice(&hours.to_be_bytes());
            out.extend_from_slice(&[*minute, *second]);
            out.extend_from_slice(&micro.to_be_bytes());
        }
    }
}

fn encode_json(b: &[u8], out: &mut Vec<u8>) {
    out.push(tag::JSON);
    put_len_bytes(out, b);
}

/// The canonical encoding of a row; `json[i]` marks JSON columns.
pub fn encode_row(values: &[Value], json: &[bool], out: &mut Vec<u8>) {
    out.extend_from_slice(&(values.len() as u32).to_be_bytes());
    for (i, v) in values.iter().enumerate() {
        encode_value(v, json.get(i).copied().unwrap_or(false), out);
    }
}

pub fn row_hash(values: &[Value], json: &[bool]) -> RowHash {
    let mut buf = Vec::with_capacity(64 * values.len());
    encode_row(values, json, &mut buf);
    Sha256::digest(&buf).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(v: &[Value]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_row(v, &[], &mut out);
        out
    }

    #[test]
    fn null_empty_and_the_word_null_differ() {
        let a = enc(&[Value::Null]);
        let b = enc(&[Value::Bytes(vec![])]);
        let c = enc(&[Value::Bytes(b"NULL".to_vec())]);
        assert_ne!(a, b);
        assert_ne!(b, c);
        assert_ne!(a, c);
    }

    #[test]
    fn numbers_compare_by_value() {
        assert_eq!(enc(&[Value::Int(5)]), enc(&[Value::UInt(5)]));
        assert_ne!(enc(&[Value::Int(-1)]), enc(&[Value::UInt(u64::MAX)]));
        assert_eq!(
            enc(&[Value::Decimal("01.500".into())]),
            enc(&[Value::Decimal("1.5".into())])
        );
        assert_eq!(
            enc(&[Value::Decimal("-0.00".into())]),
            enc(&[Value::Decimal("0".into())])
        );
        assert_ne!(enc(&[Value::Double(0.0)]), enc(&[Value::Double(-0.0)]));
    }

    fn json(b: &[u8], mysql: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let v = if mysql {
            Value::Json(b.to_vec())
        } else {
            Value::Bytes(b.to_vec())
        };
        encode_value(&v, true, &mut out);
        out
    }

    #[test]
    fn json_compares_by_its_exact_text() {
        for mysql in [false, true] {
            // serde_json calls each pair equal; the servers do not.
            for (a, b) in [
                (&br#"{"a":1,"a":2}"#[..], &br#"{"a":2}"#[..]),
                (b"1.0000000000000001", b"1.0"),
                (br#"{"a":1, "b":2}"#, br#"{"b":2, "a":1}"#),
                (br#"{"a": 1}"#, br#"{"a":1}"#),
                (b"1", b"1.0"),
                (b"not json", b"not  json"),
            ] {
                assert_ne!(json(a, mysql), json(b, mysql), "{a:?} {b:?}");
                assert_eq!(json(a, mysql), json(a, mysql));
            }
        }
        // The JSON tag keeps a JSON value apart from the same bytes in a text column.
        let mut text = Vec::new();
        encode_value(&Value::Bytes(b"{}".to_vec()), false, &mut text);
        assert_ne!(json(b"{}", false), text);
    }

    #[test]
    fn the_normalised_form_explains_but_is_lossy() {
        assert_eq!(
            normalize_json(br#"{"a":1,"a":2}"#),
            normalize_json(br#"{"a":2}"#)
        );
        assert_eq!(
            normalize_json(br#"{"b":2, "a":1}"#).as_deref(),
            Some(r#"{"a":1,"b":2}"#)
        );
        assert_eq!(normalize_json(b"{"), None);
    }

    #[test]
    fn column_boundaries_cannot_shift() {
        let a = enc(&[Value::Bytes(b"ab".to_vec()), Value::Bytes(b"c".to_vec())]);
        let b = enc(&[Value::Bytes(b"a".to_vec()), Value::Bytes(b"bc".to_vec())]);
        assert_ne!(a, b);
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::Int),
            any::<u64>().prop_map(Value::UInt),
            any::<u64>().prop_map(|b| Value::Double(f64::from_bits(b))),
            proptest::collection::vec(any::<u8>(), 0..6).prop_map(Value::Bytes),
            proptest::collection::vec(any::<u8>(), 0..6).prop_map(Value::Json),
            "[ {}\\[\\]\":,a0-9.eE+-]{0,8}".prop_map(|s| Value::Json(s.into_bytes())),
        ]
    }

    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Int(x), Value::UInt(y)) | (Value::UInt(y), Value::Int(x)) => {
                i128::from(*x) == i128::from(*y)
            }
            (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
            _ => a == b,
        }
    }

    proptest! {
        /// Documents serde_json reads alike (keys reordered, spacing, a duplicate key) are other JSON text.
        #[test]
        fn json_documents_read_alike_still_differ(k in "[a-z]{1,3}", v in any::<i64>(), w in any::<i64>(), mysql in any::<bool>()) {
            let x = format!(r#"{{"{k}":{v},"{k}0":{w}}}"#);
            let reordered = format!(r#"{{"{k}0":{w},"{k}":{v}}}"#);
            let spaced = format!(r#"{{"{k}": {v}, "{k}0": {w}}}"#);
            let duplicated = format!(r#"{{"{k}":{w},"{k}":{v},"{k}0":{w}}}"#);
            prop_assert_eq!(normalize_json(x.as_bytes()), normalize_json(reordered.as_bytes()));
            prop_assert_eq!(normalize_json(x.as_bytes()), normalize_json(duplicated.as_bytes()));
            for other in [&reordered, &spaced, &duplicated] {
                prop_assert_ne!(json(x.as_bytes(), mysql), json(other.as_bytes(), mysql));
            }
        }

        #[test]
        fn encoding_is_injective(a in proptest::collection::vec(value(), 0..4), b in proptest::collection::vec(value(), 0..4)) {
            let equal = a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| same(x, y));
            prop_assert_eq!(enc(&a) == enc(&b), equal);
        }
    }
}
