//! Binlog row values into ferry's `Value`, shaped exactly like the values the copy reads with SELECT, fixing what the
//! binlog encoding loses: integer signedness and width, TIMESTAMP as epoch, YEAR 0, ENUM as index, SET as bitmask,
//! BINARY(n) trailing zero bytes.

use crate::codes;
use crate::error::{Error, Result};
use crate::schema::model::Column;
use crate::value::Value;
use mysql_async::binlog::value::BinlogValue;
use mysql_async::Value as W;

/// Converts one binlog value of `col`.
pub fn value(v: BinlogValue<'_>, col: &Column) -> Result<Value> {
    let w = match v {
        BinlogValue::Value(w) => w,
        BinlogValue::Jsonb(_) => {
            // mysql_common renders the binary JSON as text, the shape SELECT returns.
            let w = W::try_from(v).map_err(|e| bad(col, &format!("JSON: {e}")))?;
            return Value::from_wire(w, col);
        }
        BinlogValue::JsonDiff(_) => {
            return Err(bad(
                col,
                "partial JSON update (binlog_row_value_options=PARTIAL_JSON); set binlog_row_value_options='' on the source",
            ))
        }
    };
    let ty = col.data_type.as_str();
    Ok(match (ty, w) {
        (_, W::NULL) => Value::Null,
        ("tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint", w) => {
            integer(w, col)?
        }
        ("year", W::Bytes(b)) => {
            // The binlog stores YEAR as one byte y with 1900 + y; y = 0 is the year 0000.
            let y: i64 = text(&b, col)?.parse().map_err(|_| bad(col, "YEAR"))?;
            Value::Int(if y == 1900 { 0 } else { y })
        }
        ("timestamp", W::Bytes(b)) => timestamp(text(&b, col)?, col)?,
        ("timestamp", W::Int(secs)) => epoch_to_utc(secs, 0),
        ("enum", W::Int(i)) => Value::Bytes(enum_member(col, i)?),
        ("set", W::Bytes(mask)) => Value::Bytes(set_members(col, &mask)?),
        ("binary", W::Bytes(mut b)) => {
            let width = type_width(&col.column_type).unwrap_or(b.len());
            if b.len() < width {
                b.resize(width, 0);
            }
            Value::Bytes(b)
        }
        // Everything else arrives in the same shapes as over the binary protocol: the copy path's decoder.
        (_, w) => Value::from_wire(w, col)?,
    })
}

fn bad(col: &Column, what: &str) -> Error {
    Error::definite(
        &codes::CDC_DECODE,
        format!("column `{}` ({}): {what}", col.name, col.column_type),
    )
}

fn text<'a>(b: &'a [u8], col: &Column) -> Result<&'a str> {
    std::str::from_utf8(b).map_err(|_| bad(col, "non-text bytes"))
}

fn bits(data_type: &str) -> u32 {
    match data_type {
        "tinyint" => 8,
        "smallint" => 16,
        "mediumint" => 24,
        "int" | "integer" => 32,
        _ => 64,
    }
}

/// Integers by the column's declared width and signedness, whatever signedness the binlog metadata carried
/// (MINIMAL row metadata has none; signed MEDIUMINT can arrive unextended).
fn integer(w: W, col: &Column) -> Result<Value> {
    let unsigned = col.column_type.contains("unsigned");
    let n = bits(&col.data_type);
    let raw: i128 = match w {
        W::Int(i) => i128::from(i),
        W::UInt(u) => i128::from(u),
        other => return Err(bad(col, &format!("integer came as {other:?}"))),
    };
    let modulus: i128 = 1i128 << n;
    let mut v = raw.rem_euclid(modulus);
    if !unsigned && v >= modulus / 2 {
        v -= modulus;
    }
    Ok(if unsigned {
        Value::UInt(u64::try_from(v).map_err(|_| bad(col, "unsigned out of range"))?)
    } else {
        Value::Int(i64::try_from(v).map_err(|_| bad(col, "signed out of range"))?)
    })
}

/// TIMESTAMP(n) arrives as `seconds[.micro]` since the epoch; ferry's sessions read it in UTC.
fn timestamp(s: &str, col: &Column) -> Result<Value> {
    let (secs, micro) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, "0"),
    };
    let secs: i64 = secs.parse().map_err(|_| bad(col, "TIMESTAMP seconds"))?;
    let micro: u32 = micro.parse().map_err(|_| bad(col, "TIMESTAMP fraction"))?;
    Ok(epoch_to_utc(secs, micro))
}

/// Seconds since 1970-01-01 UTC to a civil date-time; 0 is the zero TIMESTAMP `0000-00-00 00:00:00`.
pub fn epoch_to_utc(secs: i64, micro: u32) -> Value {
    if secs == 0 && micro == 0 {
        return Value::DateTime {
            year: 0,
            month: 0,
            day: 0,
            hour: 0,
            minute: 0,
            second: 0,
            micro: 0,
        };
    }
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
    Value::DateTime {
        year,
        month,
        day,
        hour: (rem / 3600) as u8,
        minute: (rem % 3600 / 60) as u8,
        second: (rem % 60) as u8,
        micro,
    }
}

/// The members of `enum('a','b')` / `set('x','y')` as the server prints COLUMN_TYPE ('' doubles a quote).
pub fn members(column_type: &str) -> Vec<Vec<u8>> {
    let Some(open) = column_type.find('(') else {
        return Vec::new();
    };
    let body = column_type[open + 1..].trim_end_matches(')').as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\'' {
            i += 1;
            continue;
        }
        i += 1;
        let mut m = Vec::new();
        while i < body.len() {
            if body[i] == b'\'' {
                if body.get(i + 1) == Some(&b'\'') {
                    m.push(b'\'');
                    i += 2;
                    continue;
                }
                i += 1;
                break;
            }
            if body[i] == b'\\' && i + 1 < body.len() {
                m.push(body[i + 1]);
                i += 2;
                continue;
            }
            m.push(body[i]);
            i += 1;
        }
        out.push(m);
    }
    out
}

fn enum_member(col: &Column, index: i64) -> Result<Vec<u8>> {
    if index == 0 {
        return Ok(Vec::new()); // the error value '' of an ENUM
    }
    let m = members(&col.column_type);
    usize::try_from(index - 1)
        .ok()
        .and_then(|i| m.get(i).cloned())
        .ok_or_else(|| bad(col, &format!("ENUM index {index} of {} members", m.len())))
}

fn set_members(col: &Column, mask: &[u8]) -> Result<Vec<u8>> {
    let m = members(&col.column_type);
    let mut out = Vec::new();
    for (bit, name) in m.iter().enumerate() {
        if mask.get(bit / 8).is_some_and(|b| b & (1 << (bit % 8)) != 0) {
            if !out.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(name);
        }
    }
    let beyond = (m.len()..mask.len() * 8).any(|bit| mask[bit / 8] & (1 << (bit % 8)) != 0);
    if beyond {
        return Err(bad(col, "SET bit beyond its members"));
    }
    Ok(out)
}

/// n of `binary(n)`.
fn type_width(column_type: &str) -> Option<usize> {
    let open = column_type.find('(')?;
    let close = column_type[open..].find(')')? + open;
    column_type[open + 1..close].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(data_type: &str, column_type: &str) -> Column {
        Column {
            name: "c".into(),
            data_type: data_type.into(),
            column_type: column_type.into(),
            charset: None,
            nullable: true,
            generated: false,
        }
    }

    fn v(w: W, c: &Column) -> Value {
        value(BinlogValue::Value(w), c).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn integers_take_the_columns_width_and_sign() {
        let mi = col("mediumint", "mediumint(9)");
        assert_eq!(v(W::Int(0xFF_FFFF), &mi), Value::Int(-1));
        assert_eq!(v(W::Int(0x80_0000), &mi), Value::Int(-8_388_608));
        assert_eq!(v(W::Int(-8_388_608), &mi), Value::Int(-8_388_608));
        let umi = col("mediumint", "mediumint(8) unsigned");
        assert_eq!(v(W::Int(-1), &umi), Value::UInt(16_777_215));
        let ti = col("tinyint", "tinyint(3) unsigned");
        assert_eq!(v(W::Int(-1), &ti), Value::UInt(255));
        let ub = col("bigint", "bigint(20) unsigned");
        assert_eq!(v(W::Int(-1), &ub), Value::UInt(u64::MAX));
        assert_eq!(v(W::UInt(u64::MAX), &ub), Value::UInt(u64::MAX));
        let b = col("bigint", "bigint(20)");
        assert_eq!(v(W::Int(i64::MIN), &b), Value::Int(i64::MIN));
    }

    #[test]
    fn year_zero_and_timestamps() {
        let y = col("year", "year(4)");
        assert_eq!(v(W::Bytes(b"1900".to_vec()), &y), Value::Int(0));
        assert_eq!(v(W::Bytes(b"2155".to_vec()), &y), Value::Int(2155));
        let ts = col("timestamp", "timestamp(6)");
        assert_eq!(
            v(W::Bytes(b"2147483647.999999".to_vec()), &ts),
            Value::DateTime {
                year: 2038,
                month: 1,
                day: 19,
                hour: 3,
                minute: 14,
                second: 7,
                micro: 999_999
            }
        );
        assert_eq!(
            v(W::Bytes(b"1".to_vec()), &ts),
            Value::DateTime {
                year: 1970,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 1,
                micro: 0
            }
        );
        assert_eq!(
            v(W::Bytes(b"951782400".to_vec()), &ts),
            Value::DateTime {
                year: 2000,
                month: 2,
                day: 29,
                hour: 0,
                minute: 0,
                second: 0,
                micro: 0
            }
        );
        assert!(matches!(
            v(W::Bytes(b"0".to_vec()), &ts),
            Value::DateTime {
                year: 0,
                month: 0,
                ..
            }
        ));
    }

    #[test]
    fn enum_set_and_binary_padding() {
        let e = col("enum", "enum('','a','b c','it''s')");
        assert_eq!(v(W::Int(4), &e), Value::Bytes(b"it's".to_vec()));
        assert_eq!(v(W::Int(1), &e), Value::Bytes(Vec::new()));
        assert_eq!(v(W::Int(0), &e), Value::Bytes(Vec::new()));
        assert!(value(BinlogValue::Value(W::Int(9)), &e).is_err());
        let s = col("set", "set('x','y','z')");
        assert_eq!(v(W::Bytes(vec![0b101]), &s), Value::Bytes(b"x,z".to_vec()));
        assert_eq!(v(W::Bytes(vec![0]), &s), Value::Bytes(Vec::new()));
        let b = col("binary", "binary(4)");
        assert_eq!(v(W::Bytes(vec![1]), &b), Value::Bytes(vec![1, 0, 0, 0]));
    }

    #[test]
    fn members_parse_quotes() {
        assert_eq!(
            members("enum('a','b,c','d''e','')"),
            vec![b"a".to_vec(), b"b,c".to_vec(), b"d'e".to_vec(), vec![]]
        );
    }
}
