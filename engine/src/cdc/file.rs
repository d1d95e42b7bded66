//! Reads a binlog file from disk into stream items (zstd transaction payloads expanded), for tests and offline
//! inspection; table shapes can come from the TABLE_MAP metadata when no server is at hand.

use super::event::{EventDecoder, Item};
use crate::codes;
use crate::error::{Error, Result};
use crate::schema::model::{Column, Key, Table};
use mysql_common::binlog::events::{EventData, TableMapEvent};
use mysql_common::binlog::{consts::BinlogVersion, EventStreamReader};
use mysql_common::constants::ColumnType;
use std::io::{BufRead, Cursor};

/// Every item of a binlog file, in order. `tables` picks what is decoded; `None` decodes every table, shaped
/// from its TABLE_MAP (names, signedness and charsets when the server wrote full row metadata).
pub fn read_items(bytes: &[u8], tables: Option<&[Table]>) -> Result<Vec<Item>> {
    let mut input = Cursor::new(bytes);
    let mut header = [0u8; 4];
    std::io::Read::read_exact(&mut input, &mut header)
        .map_err(|e| Error::definite(&codes::CDC_DECODE, format!("binlog file header: {e}")))?;
    if header != [0xfe, b'b', b'i', b'n'] {
        return Err(Error::definite(
            &codes::CDC_DECODE,
            "not a binlog file (no \\xfebin magic)",
        ));
    }
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let mut decoder = EventDecoder::new("", tables.unwrap_or(&[]));
    let mut out = Vec::new();
    let io = |e: std::io::Error| Error::definite(&codes::CDC_DECODE, format!("binlog file: {e}"));
    while !input.fill_buf().map_err(io)?.is_empty() {
        let Some(event) = reader.read(&mut input).map_err(io)? else {
            break;
        };
        let mut inner = Vec::new();
        // A TRANSACTION_PAYLOAD (binlog_transaction_compression=ON) carries the transaction's events, compressed.
        if let Ok(Some(EventData::TransactionPayloadEvent(p))) = event.read_data() {
            let mut payload = p.decompressed().map_err(io)?;
            while let Some(e) = reader.read_decompressed(&mut payload).map_err(io)? {
                inner.push(e);
            }
        }
        let mut events = vec![event];
        events.extend(inner);
        for event in events {
            if tables.is_none() {
                if let Ok(Some(EventData::TableMapEvent(tme))) = event.read_data() {
                    // Shapes follow the stream: an ALTER TABLE shows up as a new TABLE_MAP.
                    decoder.set_table(table_from_map(&tme));
                }
            }
            if let Some(item) = decoder.decode(&event, |id| reader.get_tme(id))? {
                out.push(item);
            }
        }
    }
    Ok(out)
}

/// A table shape from a TABLE_MAP: column names (`@1`.. without full metadata), types, signedness, charsets.
pub fn table_from_map(tme: &TableMapEvent<'_>) -> Table {
    use mysql_common::binlog::events::{OptionalMetaExtractor, OptionalMetadataField as F};
    let n = tme.columns_count() as usize;
    let types: Vec<Option<ColumnType>> = (0..n).map(|i| real_type(tme, i)).collect();
    let mut names: Vec<String> = (1..=n).map(|i| format!("@{i}")).collect();
    let mut unsigned = vec![false; n];
    let mut charsets: Vec<Option<u16>> = vec![None; n];
    let mut enum_values: Vec<Vec<String>> = vec![Vec::new(); n];
    let mut set_values: Vec<Vec<String>> = vec![Vec::new(); n];
    let mut pk: Vec<usize> = Vec::new();
    let of = |pred: &dyn Fn(ColumnType) -> bool| -> Vec<usize> {
        (0..n).filter(|&i| types[i].is_some_and(pred)).collect()
    };
    if let Ok(x) = OptionalMetaExtractor::new(tme.iter_optional_meta()) {
        for (i, name) in x.iter_column_name().flatten().enumerate().take(n) {
            names[i] = name.name().into_owned();
        }
        for (&i, u) in of(&|t| t.is_numeric_type()).iter().zip(x.iter_signedness()) {
            unsigned[i] = u;
        }
        for (&i, cs) in of(&|t| t.is_character_type()).iter().zip(x.iter_charset()) {
            charsets[i] = cs.ok();
        }
        for (&i, cs) in of(&|t| t.is_enum_or_set_type())
            .iter()
            .zip(x.iter_enum_and_set_charset())
        {
            charsets[i] = cs.ok();
        }
        pk = x.iter_primary_key().flatten().map(|k| k as usize).collect();
    }
    for field in tme.iter_optional_meta().flatten() {
        match field {
            F::EnumStrValue(v) => {
                for (&i, vals) in of(&|t| t.is_enum_type())
                    .iter()
                    .zip(v.iter_values().flatten())
                {
                    enum_values[i] = vals
                        .values()
                        .iter()
                        .map(|s| String::from_utf8_lossy(s.value_raw()).into_owned())
                        .collect();
                }
            }
            F::SetStrValue(v) => {
                for (&i, vals) in of(&|t| t.is_set_type())
                    .iter()
                    .zip(v.iter_values().flatten())
                {
                    set_values[i] = vals
                        .values()
                        .iter()
                        .map(|s| String::from_utf8_lossy(s.value_raw()).into_owned())
                        .collect();
                }
            }
            _ => {}
        }
    }
    let columns = (0..n)
        .map(|i| {
            let (data_type, column_type) =
                sql_type(types[i], unsigned[i], &enum_values[i], &set_values[i]);
            Column {
                name: names[i].clone(),
                data_type,
                column_type,
                charset: charsets[i].and_then(charset_name),
                nullable: tme.null_bitmask().get(i).map(|b| *b).unwrap_or(true),
                generated: false,
            }
        })
        .collect();
    Table {
        db: tme.database_name().into_owned(),
        name: tme.table_name().into_owned(),
        columns,
        key: (!pk.is_empty()).then(|| Key {
            name: "PRIMARY".into(),
            columns: pk,
        }),
        uniques: Vec::new(),
        followers: Vec::new(),
        engine: "InnoDB".into(),
        rows_estimate: 0,
        create_sql: String::new(),
        omitted: Vec::new(),
    }
}

fn real_type(tme: &TableMapEvent<'_>, i: usize) -> Option<ColumnType> {
    // ENUM and SET travel as MYSQL_TYPE_STRING with the real type in the first metadata byte.
    let t = tme.get_column_type(i).ok().flatten()?;
    if t == ColumnType::MYSQL_TYPE_STRING {
        if let Some(meta) = tme.get_column_metadata(i) {
            if let Ok(real) = ColumnType::try_from(meta[0]) {
                if matches!(
                    real,
                    ColumnType::MYSQL_TYPE_ENUM | ColumnType::MYSQL_TYPE_SET
                ) {
                    return Some(real);
                }
            }
        }
    }
    Some(t)
}

fn sql_type(
    t: Option<ColumnType>,
    unsigned: bool,
    enums: &[String],
    sets: &[String],
) -> (String, String) {
    use ColumnType::*;
    let list = |v: &[String]| {
        v.iter()
            .map(|s| format!("'{}'", s.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(",")
    };
    let u = if unsigned { " unsigned" } else { "" };
    let dt = match t {
        Some(MYSQL_TYPE_TINY) => "tinyint",
        Some(MYSQL_TYPE_SHORT) => "smallint",
        Some(MYSQL_TYPE_INT24) => "mediumint",
        Some(MYSQL_TYPE_LONG) => "int",
        Some(MYSQL_TYPE_LONGLONG) => "bigint",
        Some(MYSQL_TYPE_NEWDECIMAL) => "decimal",
        Some(MYSQL_TYPE_FLOAT) => "float",
        Some(MYSQL_TYPE_DOUBLE) => "double",
        Some(MYSQL_TYPE_BIT) => "bit",
        Some(MYSQL_TYPE_DATE) => "date",
        Some(MYSQL_TYPE_DATETIME2 | MYSQL_TYPE_DATETIME) => "datetime",
        Some(MYSQL_TYPE_TIMESTAMP2 | MYSQL_TYPE_TIMESTAMP) => "timestamp",
        Some(MYSQL_TYPE_TIME2 | MYSQL_TYPE_TIME) => "time",
        Some(MYSQL_TYPE_YEAR) => "year",
        Some(MYSQL_TYPE_JSON) => "json",
        Some(MYSQL_TYPE_GEOMETRY) => "geometry",
        Some(MYSQL_TYPE_ENUM) => return ("enum".into(), format!("enum({})", list(enums))),
        Some(MYSQL_TYPE_SET) => return ("set".into(), format!("set({})", list(sets))),
        Some(MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING) => "varchar",
        Some(MYSQL_TYPE_STRING) => "char",
        Some(
            MYSQL_TYPE_BLOB | MYSQL_TYPE_TINY_BLOB | MYSQL_TYPE_MEDIUM_BLOB | MYSQL_TYPE_LONG_BLOB,
        ) => "longblob",
        Some(MYSQL_TYPE_VECTOR) => "vector",
        _ => "unknown",
    };
    (dt.to_string(), format!("{dt}{u}"))
}

/// Charset names of the collation ids a TABLE_MAP carries (the ones the fixtures and common servers use).
fn charset_name(collation: u16) -> Option<String> {
    Some(
        match collation {
            63 => return None,
            8 | 47 | 48 | 5 | 31 | 94 => "latin1",
            33 | 83 | 192..=215 | 223 => "utf8mb3",
            45 | 46 | 224..=247 | 255..=323 => "utf8mb4",
            11 | 65 => "ascii",
            _ => "utf8mb4",
        }
        .to_string(),
    )
}
