//! One column value as ferry carries it between servers, decoded from the wire and rendered as an exact SQL literal.

use crate::codes;
use crate::error::{Error, Result};
use crate::schema::model::Column;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// A value read from a server. Copy rows and (later) binlog rows share this type, so a value is encoded one way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Null,
    Int(i64),
    UInt(u64),
    Float(f32),
    Double(f64),
    /// DECIMAL as the server prints it (exact).
    Decimal(String),
    /// Strings, binary strings, BIT, ENUM, SET, spatial values: the bytes as stored, in the column's charset.
    Bytes(Vec<u8>),
    /// MySQL's JSON type, as the server's JSON text.
    Json(Vec<u8>),
    Date {
        year: u16,
        month: u8,
        day: u8,
    },
    DateTime {
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        micro: u32,
    },
    Time {
        negative: bool,
        hours: u32,
        minute: u8,
        second: u8,
        micro: u32,
    },
}

impl Value {
    /// The value's size as stored, roughly (what throttling counts as bytes of row data).
    pub fn size_bytes(&self) -> u64 {
        match self {
            Value::Null => 1,
            Value::Int(_) | Value::UInt(_) | Value::Double(_) => 8,
            Value::Float(_) => 4,
            Value::Decimal(d) => d.len() as u64,
            Value::Bytes(b) | Value::Json(b) => b.len() as u64,
            Value::Date { .. } => 3,
            Value::DateTime { .. } => 8,
            Value::Time { .. } => 6,
        }
    }

    /// Decodes a binary-protocol value of a column whose information_schema type is `col.data_type`.
    pub fn from_wire(v: mysql_async::Value, col: &Column) -> Result<Value> {
        use mysql_async::Value as W;
        Ok(match v {
            W::NULL => Value::Null,
            // One integer variant per column, whichever the protocol chose: the binary protocol sends INT UNSIGNED
            // as Int and the binlog decoder gives UInt, and keys from both are compared.
            W::Int(i) if col.column_type.contains("unsigned") && i >= 0 => Value::UInt(i as u64),
            W::UInt(u) if !col.column_type.contains("unsigned") && i64::try_from(u).is_ok() => {
                Value::Int(u as i64)
            }
            W::Int(i) => Value::Int(i),
            W::UInt(u) => Value::UInt(u),
            W::Float(f) => Value::Float(f),
            W::Double(d) => Value::Double(d),
            W::Bytes(b) => match col.data_type.as_str() {
                "decimal" | "numeric" => Value::Decimal(String::from_utf8(b).map_err(|_| {
                    Error::definite(
                        &codes::DATA_DECODE,
                        format!("DECIMAL column `{}` sent non-text bytes", col.name),
                    )
                })?),
                "json" if col.charset.is_none() => Value::Json(b),
                _ => Value::Bytes(b),
            },
            W::Date(year, month, day, hour, minute, second, micro) => {
                if col.data_type == "date" {
                    Value::Date { year, month, day }
                } else {
                    Value::DateTime {
                        year,
                        month,
                        day,
                        hour,
                        minute,
                        second,
                        micro,
                    }
                }
            }
            W::Time(negative, days, hour, minute, second, micro) => Value::Time {
                negative,
                hours: days * 24 + u32::from(hour),
                minute,
                second,
                micro,
            },
        })
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Appends the SQL literal that stores exactly this value into `col` (or compares with it in `col`'s collation).
    pub fn write_literal(&self, col: &Column, out: &mut String) -> Result<()> {
        match self {
            Value::Null => out.push_str("NULL"),
            Value::Bytes(b) => write_bytes(b, col.charset.as_deref(), out),
            Value::Json(b) => write_bytes(b, Some("utf8mb4"), out),
            Value::Date { .. } | Value::DateTime { .. } | Value::Time { .. } => {
                let _ = write!(out, "'{}'", Bare(self));
            }
            Value::Decimal(s) => {
                check_decimal(s, col)?;
                out.push_str(s);
            }
            _ => {
                let _ = write!(out, "{}", Bare(self));
            }
        }
        Ok(())
    }

    /// Writes the value as a field of LOAD DATA text (tab-separated, backslash escapes, `\N` for NULL) read
    /// with `CHARACTER SET binary`: bytes go in as they are, so each column keeps the source's encoding.
    pub fn write_text(&self, col: &Column, out: &mut Vec<u8>) -> Result<()> {
        use std::io::Write as _;
        match self {
            Value::Null => out.extend_from_slice(b"\\N"),
            // LOAD DATA reads a field as a string, and the string '0' is YEAR 2000: year 0 must be '0000'.
            Value::Int(i) if col.data_type.eq_ignore_ascii_case("year") => {
                let _ = write!(out, "{i:04}");
            }
            Value::UInt(u) if col.data_type.eq_ignore_ascii_case("year") => {
                let _ = write!(out, "{u:04}");
            }
            Value::Decimal(s) => {
                check_decimal(s, col)?;
                out.extend_from_slice(s.as_bytes());
            }
            Value::Bytes(b) | Value::Json(b) => {
                out.reserve(b.len());
                for &c in b {
                    match c {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        0 => out.extend_from_slice(b"\\0"),
                        _ => out.push(c),
                    }
                }
            }
            _ => {
                let _ = write!(out, "{}", Bare(self));
            }
        }
        Ok(())
    }

    pub fn literal(&self, col: &Column) -> Result<String> {
        let mut s = String::new();
        self.write_literal(col, &mut s)?;
        Ok(s)
    }

    /// An estimate of the literal's size, for batching by bytes.
    pub fn literal_len_hint(&self) -> usize {
        match self {
            Value::Bytes(b) | Value::Json(b) => 2 * b.len() + 24,
            Value::Decimal(s) => s.len(),
            _ => 28,
        }
    }
}

/// The unquoted text of a number or temporal value, the same in SQL literals and LOAD DATA text. Floats use
/// exponent notation: the literal is then a DOUBLE (no DECIMAL detour), and Rust prints the shortest text that
/// parses back to the same bits, so the stored value is bit-exact (a FLOAT widens to f64 and narrows back exactly).
/// Strings, bytes and NULL have their own forms in each and are written empty here.
struct Bare<'a>(&'a Value);

impl std::fmt::Display for Bare<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Value::Int(i) => write!(f, "{i}"),
            Value::UInt(u) => write!(f, "{u}"),
            Value::Float(x) => write!(f, "{:e}", f64::from(*x)),
            Value::Double(d) => write!(f, "{d:e}"),
            Value::Decimal(s) => f.write_str(s),
            Value::Date { year, month, day } => write!(f, "{year:04}-{month:02}-{day:02}"),
            Value::DateTime {
                year,
                month,
                day,
                hour,
                minute,
                second,
                micro,
            } => write!(
                f,
                "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}.{micro:06}"
            ),
            Value::Time {
                negative,
                hours,
                minute,
                second,
                micro,
            } => {
                let sign = if *negative { "-" } else { "" };
                write!(f, "{sign}{hours:02}:{minute:02}:{second:02}.{micro:06}")
            }
            Value::Null | Value::Bytes(_) | Value::Json(_) => Ok(()),
        }
    }
}

/// A DECIMAL's text must be digits, sign and point: it goes into SQL and LOAD DATA text as it is.
fn check_decimal(s: &str, col: &Column) -> Result<()> {
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err(Error::definite(
            &codes::DATA_DECODE,
            format!("DECIMAL value {s:?} in `{}`", col.name),
        ));
    }
    Ok(())
}

/// Bytes as a hex literal; with a charset introducer for character columns so the column's collation applies.
fn write_bytes(b: &[u8], charset: Option<&str>, out: &mut String) {
    if let Some(cs) = charset {
        if cs.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
            out.push('_');
            out.push_str(cs);
            out.push(' ');
        }
    }
    out.reserve(3 + 2 * b.len());
    out.push_str("X'");
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in b {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0xF)] as char);
    }
    out.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn col(data_type: &str, charset: Option<&str>) -> Column {
        Column {
            name: "c".into(),
            data_type: data_type.into(),
            column_type: data_type.into(),
            charset: charset.map(str::to_string),
            nullable: true,
            generated: false,
        }
    }

    #[test]
    fn integers_take_the_variant_of_their_column_not_of_the_protocol() {
        let mut unsigned = col("int", None);
        unsigned.column_type = "int(10) unsigned".into();
        let signed = col("bigint", None);
        let w = mysql_async::Value::Int(42);
        assert_eq!(
            Value::from_wire(w, &unsigned).expect("value"),
            Value::UInt(42)
        );
        let w = mysql_async::Value::UInt(42);
        assert_eq!(Value::from_wire(w, &signed).expect("value"), Value::Int(42));
        let w = mysql_async::Value::UInt(u64::MAX);
        assert_eq!(
            Value::from_wire(w, &unsigned).expect("value"),
            Value::UInt(u64::MAX)
        );
        let w = mysql_async::Value::Int(-1);
        assert_eq!(Value::from_wire(w, &signed).expect("value"), Value::Int(-1));
    }

    #[test]
    fn literals() {
        let t = col("varchar", Some("utf8mb4"));
        assert_eq!(
            Value::Bytes(b"a'b".to_vec()).literal(&t).unwrap(),
            "_utf8mb4 X'612762'"
        );
        assert_eq!(Value::Bytes(vec![]).literal(&t).unwrap(), "_utf8mb4 X''");
        let b = col("varbinary", None);
        assert_eq!(Value::Bytes(vec![0, 255]).literal(&b).unwrap(), "X'00FF'");
        let d = col("double", None);
        assert_eq!(Value::Double(0.1).literal(&d).unwrap(), "1e-1");
        assert_eq!(Value::Double(-0.0).literal(&d).unwrap(), "-0e0");
        assert_eq!(
            Value::Double(f64::MAX).literal(&d).unwrap(),
            "1.7976931348623157e308"
        );
        let f = col("float", None);
        assert_eq!(
            Value::Float(0.1).literal(&f).unwrap(),
            "1.0000000149011612e-1"
        );
        let dt = col("datetime", None);
        let v = Value::DateTime {
            year: 0,
            month: 0,
            day: 0,
            hour: 0,
            minute: 0,
            second: 0,
            micro: 0,
        };
        assert_eq!(v.literal(&dt).unwrap(), "'0000-00-00 00:00:00.000000'");
        let tm = col("time", None);
        let v = Value::Time {
            negative: true,
            hours: 838,
            minute: 59,
            second: 59,
            micro: 0,
        };
        assert_eq!(v.literal(&tm).unwrap(), "'-838:59:59.000000'");
        let dec = col("decimal", None);
        assert!(Value::Decimal("1; DROP".into()).literal(&dec).is_err());
    }

    proptest! {
        #[test]
        fn double_literals_parse_back_to_the_same_bits(bits in any::<u64>()) {
            let d = f64::from_bits(bits);
            prop_assume!(d.is_finite());
            let lit = Value::Double(d).literal(&col("double", None)).unwrap();
            let back: f64 = lit.parse().unwrap();
            prop_assert_eq!(back.to_bits(), d.to_bits());
        }

        #[test]
        fn float_literals_parse_back_to_the_same_bits(bits in any::<u32>()) {
            let f = f32::from_bits(bits);
            prop_assume!(f.is_finite());
            let lit = Value::Float(f).literal(&col("float", None)).unwrap();
            let back: f64 = lit.parse().unwrap();
            prop_assert_eq!((back as f32).to_bits(), f.to_bits());
        }
    }
}
