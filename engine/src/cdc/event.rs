//! Turns one binlog event (from a live dump or a binlog file) into ferry's stream items, row images decoded against
//! the task's table shapes.

use super::decode;
use crate::codes;
use crate::error::{Error, Result};
use crate::schema::model::Table;
use crate::value::Value;
use mysql_async::binlog::events::{Event, EventData, RowsEventData, TableMapEvent};
use std::collections::HashMap;
use std::sync::Arc;

/// MariaDB's own event type numbers (mysql_common does not know them).
pub mod mariadb {
    pub const BINLOG_CHECKPOINT: u8 = 161;
    pub const GTID: u8 = 162;
    pub const GTID_LIST: u8 = 163;
    pub const START_ENCRYPTION: u8 = 164;
    /// QUERY_COMPRESSED (165) through DELETE_ROWS_COMPRESSED_V1 (171): written with log_bin_compress=ON.
    pub const COMPRESSED_FIRST: u8 = 165;
    pub const COMPRESSED_LAST: u8 = 171;

    /// Flags of the GTID event (`flags2`), the byte after seq_no and domain_id.
    pub mod gtid_flags {
        /// The group is one statement that commits by itself (DDL, a non-transactional change): no XID/COMMIT
        /// follows. Without it the GTID event stands for BEGIN and the group ends at XID or a COMMIT/ROLLBACK query.
        pub const STANDALONE: u8 = 1;
        /// The group holds DDL. Without STANDALONE it is CREATE TABLE ... SELECT: the CREATE statement, then the
        /// new table's rows, then XID.
        pub const DDL: u8 = 32;
        /// The group is the prepare of an XA transaction (XA START .. XA END, XA PREPARE).
        pub const PREPARED_XA: u8 = 64;
        /// The group is the XA COMMIT or XA ROLLBACK of a prepared XA transaction.
        pub const COMPLETED_XA: u8 = 128;
    }
}

/// MySQL's XA_PREPARE_LOG_EVENT: ends the prepare of an XA transaction (its commit or rollback comes later).
const XA_PREPARE: u8 = 38;

/// MySQL's PARTIAL_UPDATE_ROWS_EVENT (binlog_row_value_options=PARTIAL_JSON).
const PARTIAL_UPDATE_ROWS: u8 = 39;
/// MySQL's TRANSACTION_PAYLOAD_EVENT (binlog_transaction_compression=ON): a zstd-compressed transaction whose
/// events follow it (the live stream and `file.rs` expand them) with no positions of their own.
const TRANSACTION_PAYLOAD: u8 = 40;

/// Insert, update or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Insert,
    Update,
    Delete,
}

/// A row's (before, after) images: before None for inserts, after None for deletes.
pub type RowImages = (Option<Vec<Value>>, Option<Vec<Value>>);

/// One decoded item of the stream.
#[derive(Debug, Clone)]
pub enum Item {
    /// A transaction starts (MySQL GTID `uuid:n`, MariaDB `domain-server-seq`, or empty when anonymous).
    Begin { gtid: String },
    /// Row images of one table in the task's scope.
    Rows {
        table: Arc<Table>,
        kind: RowKind,
        rows: Vec<RowImages>,
    },
    /// A statement. Outside a transaction (DDL) it is its own transaction and ends at `end` in `file`; inside
    /// one (`in_transaction`: SAVEPOINT, or a row change logged as a statement) it is part of that transaction.
    Query {
        db: String,
        /// The statement's text, decoded from its client character set.
        sql: String,
        /// The statement as the source logged it, in its client character set.
        raw: Vec<u8>,
        /// The source session's context the statement ran in (status variables, timestamp).
        session: Box<super::session::SessionContext>,
        file: String,
        end: u64,
        ts: u32,
        in_transaction: bool,
        /// The statement's transaction goes on after it (MariaDB's CREATE TABLE ... SELECT group): its end is the
        /// XID that follows the rows.
        opens_transaction: bool,
    },
    /// A transaction committed; `end` is the offset just after it in `file`, `ts` the source's commit time (s).
    Commit { file: String, end: u64, ts: u32 },
    /// The server moved to another binlog file.
    Rotate { file: String, pos: u64 },
    /// A keep-alive from an idle source (MySQL/MariaDB heartbeat event): nothing to apply.
    Idle,
    /// An administrative event between transactions (format description, GTID list, checkpoint): the position
    /// moves past it, nothing to apply.
    Skip { file: String, end: u64 },
}

/// A change of the table shapes rows decode against, sent back to the reader after a DDL statement.
#[derive(Debug, Clone)]
pub enum Reshape {
    Set(Table),
    Remove { db: String, name: String },
}

/// Decodes events; keeps the current file name and the table shapes rows are decoded against.
#[derive(Debug)]
pub struct EventDecoder {
    tables: HashMap<(String, String), Arc<Table>>,
    file: String,
    /// Whether a FORMAT_DESCRIPTION has been seen: events before it are read without knowing the checksum setting.
    seen_fde: bool,
    /// Between a `BEGIN` statement (or a MariaDB GTID event opening a transaction) and the transaction's end.
    in_group: bool,
    /// In a MariaDB DDL group that is not standalone: its statement is followed by rows and an XID.
    ddl_group_continues: bool,
    /// Between XA START and XA PREPARE (or the end of a one-phase XA): rows of a tracked table are refused.
    xa_group: bool,
    /// XA branches seen prepared without rows of a tracked table: their XA COMMIT / ROLLBACK passes. Bounded; a
    /// branch not known here (prepared before ferry started reading, or forgotten) is refused at its commit.
    xa_untracked: std::collections::VecDeque<String>,
    /// The end of the TRANSACTION_PAYLOAD whose events are being read: they carry position 0, and the
    /// transaction ends where the payload does.
    payload_end: Option<u64>,
}

impl EventDecoder {
    pub fn new(file: &str, tables: &[Table]) -> EventDecoder {
        EventDecoder {
            tables: tables
                .iter()
                .map(|t| ((t.db.clone(), t.name.clone()), Arc::new(t.clone())))
                .collect(),
            file: file.to_string(),
            seen_fde: false,
            in_group: false,
            ddl_group_continues: false,
            xa_group: false,
            xa_untracked: std::collections::VecDeque::new(),
            payload_end: None,
        }
    }

    /// An XA branch's prepare ends its group; its rows touched no tracked table (they would have been refused), so
    /// the branch is remembered and its XA COMMIT or ROLLBACK passes too.
    fn xa_prepared(&mut self, xid: String, end: u64, ts: u32) -> Item {
        self.xa_group = false;
        self.in_group = false;
        if self.xa_untracked.len() >= XA_REMEMBERED_MAX {
            self.xa_untracked.pop_front();
        }
        self.xa_untracked.push_back(xid);
        Item::Commit {
            file: self.file.clone(),
            end,
            ts,
        }
    }

    /// An XA statement: START opens the branch's group, END passes, COMMIT/ROLLBACK of a branch ferry saw prepared
    /// without tracked rows (or a one-phase commit of the group being read) ends its group; any other is refused.
    fn xa_query(
        &mut self,
        verb: &str,
        xid: String,
        at: &str,
        end: u64,
        ts: u32,
    ) -> Result<Option<Item>> {
        match verb {
            "START" | "BEGIN" => {
                self.xa_group = true;
                self.in_group = true;
                Ok(None)
            }
            "END" => Ok(None),
            "PREPARE" => {
                if !self.xa_group {
                    return Err(xa_refused(at, "XA PREPARE outside an XA group"));
                }
                Ok(Some(self.xa_prepared(xid, end, ts)))
            }
            "COMMIT" | "ROLLBACK" => {
                let one_phase = self.xa_group && xid.to_ascii_uppercase().ends_with("ONE PHASE");
                let known = self.xa_untracked.iter().position(|x| *x == xid);
                if !one_phase && known.is_none() {
                    return Err(xa_refused(
                        at,
                        &format!(
                            "XA {verb} {xid}: ferry did not see that branch prepared without rows it migrates"
                        ),
                    ));
                }
                if let Some(i) = known {
                    self.xa_untracked.remove(i);
                }
                self.xa_group = false;
                self.in_group = false;
                Ok(Some(Item::Commit {
                    file: self.file.clone(),
                    end,
                    ts,
                }))
            }
            _ => Err(xa_refused(at, &format!("XA {verb} {xid}"))),
        }
    }

    /// The binlog file the last event came from.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Replaces (or adds) the shape of a table so later row events decode against it.
    pub fn set_table(&mut self, t: Table) {
        self.tables
            .insert((t.db.clone(), t.name.clone()), Arc::new(t));
    }

    pub fn reshape(&mut self, change: Reshape) {
        match change {
            Reshape::Set(t) => self.set_table(t),
            Reshape::Remove { db, name } => self.remove_table(&db, &name),
        }
    }

    /// Stops decoding a table's rows (dropped, or renamed out of the task's scope).
    pub fn remove_table(&mut self, db: &str, name: &str) {
        self.tables.remove(&(db.to_string(), name.to_string()));
    }

    pub fn table(&self, db: &str, name: &str) -> Option<Arc<Table>> {
        self.tables
            .get(&(db.to_string(), name.to_string()))
            .cloned()
    }

    /// The item an event stands for, if any. `tme` finds the TABLE_MAP of a rows event's table id.
    pub fn decode<'t>(
        &mut self,
        event: &Event,
        tme: impl Fn(u64) -> Option<&'t TableMapEvent<'static>>,
    ) -> Result<Option<Item>> {
        let header = event.header();
        let mut end = u64::from(header.log_pos());
        let ts = header.timestamp();
        let raw = header.event_type_raw();
        if raw == TRANSACTION_PAYLOAD {
            self.payload_end = Some(end);
            return Ok(None);
        }
        match self.payload_end {
            Some(p) if end == 0 => end = p,
            _ => self.payload_end = None,
        }
        let at = || format!("event at {}:{end}", self.file);
        match raw {
            mariadb::GTID => {
                let (gtid, flags) = mariadb_gtid(event)?;
                // An XA prepare opens a group like a transaction (its rows are judged as they come); an XA
                // COMMIT/ROLLBACK group is one statement, judged when it comes.
                self.xa_group = flags & mariadb::gtid_flags::PREPARED_XA != 0;
                // MariaDB writes no BEGIN: a transactional group opens here and only its XID (or a COMMIT or
                // ROLLBACK query) ends it. A SAVEPOINT or any other query inside it is part of the transaction.
                // A DDL group's statement is applied as DDL; one that is not standalone (CREATE TABLE ... SELECT)
                // goes on with the new table's rows until its XID.
                let ddl = flags & mariadb::gtid_flags::DDL != 0;
                let standalone = flags & mariadb::gtid_flags::STANDALONE != 0;
                self.in_group = !standalone && !ddl;
                self.ddl_group_continues = ddl && !standalone;
                return Ok(Some(Item::Begin { gtid }));
            }
            // The prepare of an XA branch ends its group. Its rows touched no tracked table (they would have been
            // refused): the branch is remembered, so its XA COMMIT or ROLLBACK passes too.
            XA_PREPARE => {
                if !self.xa_group {
                    return Err(xa_refused(&at(), "XA PREPARE outside an XA group"));
                }
                // The xid comes with the event (MariaDB has no XA START statement: its GTID event opens the branch).
                let xid = prepared_xid(event.data())
                    .ok_or_else(|| xa_refused(&at(), "XA PREPARE event without a readable xid"))?;
                return Ok(Some(self.xa_prepared(xid, end, ts)));
            }
            mariadb::BINLOG_CHECKPOINT | mariadb::GTID_LIST => {
                return Ok((end > 0).then(|| Item::Skip { file: self.file.clone(), end }))
            }
            mariadb::START_ENCRYPTION => {
                return Err(Error::definite(
                    &codes::CDC_UNSUPPORTED_BINLOG,
                    format!("{}: the source encrypts its binlog (encrypt_binlog=ON)", at()),
                ))
            }
            mariadb::COMPRESSED_FIRST..=mariadb::COMPRESSED_LAST => {
                return Err(Error::definite(
                    &codes::CDC_UNSUPPORTED_BINLOG,
                    format!(
                        "{}: compressed event (log_bin_compress=ON); set log_bin_compress=OFF on the source",
                        at()
                    ),
                ))
            }
            _ => {}
        }
        let data = event
            .read_data()
            .map_err(|e| Error::definite(&codes::CDC_DECODE, format!("{}: {e}", at())))?;
        let Some(data) = data else { return Ok(None) };
        Ok(match data {
            EventData::RotateEvent(r) => {
                let mut name = r.name_raw().to_vec();
                if !self.seen_fde && ends_with_own_crc32(event) {
                    // The artificial ROTATE a live dump opens with comes before the FORMAT_DESCRIPTION that tells
                    // mysql_common whether events carry a CRC32, so its four checksum bytes are still on the name.
                    name.truncate(name.len().saturating_sub(4));
                }
                self.file = String::from_utf8(name).map_err(|_| {
                    Error::definite(
                        &codes::CDC_DECODE,
                        format!("{}: binlog file name is not UTF-8", at()),
                    )
                })?;
                Some(Item::Rotate {
                    file: self.file.clone(),
                    pos: r.position(),
                })
            }
            EventData::GtidEvent(g) => {
                let sid = g.sid();
                let uuid = format!(
                    "{}-{}-{}-{}-{}",
                    hex::encode(&sid[0..4]),
                    hex::encode(&sid[4..6]),
                    hex::encode(&sid[6..8]),
                    hex::encode(&sid[8..10]),
                    hex::encode(&sid[10..16])
                );
                self.in_group = false;
                self.xa_group = false;
                let gtid = match g.tag() {
                    Some(tag) if !tag.as_str().is_empty() => {
                        format!("{uuid}:{}:{}", tag.as_str(), g.gno())
                    }
                    _ => format!("{uuid}:{}", g.gno()),
                };
                Some(Item::Begin { gtid })
            }
            EventData::AnonymousGtidEvent(_) => {
                self.in_group = false;
                self.xa_group = false;
                Some(Item::Begin {
                    gtid: String::new(),
                })
            }
            EventData::XidEvent(_) => {
                self.in_group = false;
                Some(Item::Commit {
                    file: self.file.clone(),
                    end,
                    ts,
                })
            }
            EventData::QueryEvent(q) => {
                let raw = q.query_raw();
                let mut session = super::session::SessionContext::parse(q.status_vars_raw(), ts);
                // A statement ferry does not replay may be in any charset; one it replays must read exactly.
                let sql = session.decode(raw).unwrap_or_else(|e| {
                    session.undecodable = Some(format!("{}: {e}", at()));
                    String::from_utf8_lossy(raw).into_owned()
                });
                if let Some((verb, xid)) = xa_statement(&sql) {
                    return self.xa_query(&verb, xid, &at(), end, ts);
                }
                match sql.trim() {
                    "BEGIN" => {
                        self.in_group = true;
                        None
                    }
                    // ROLLBACK ends a group whose non-transactional changes the source could not undo.
                    "COMMIT" | "ROLLBACK" => {
                        self.in_group = false;
                        Some(Item::Commit {
                            file: self.file.clone(),
                            end,
                            ts,
                        })
                    }
                    _ => Some(Item::Query {
                        db: q.schema().into_owned(),
                        raw: raw.to_vec(),
                        session: Box::new(session),
                        sql,
                        file: self.file.clone(),
                        end,
                        ts,
                        in_transaction: self.in_group,
                        opens_transaction: std::mem::take(&mut self.ddl_group_continues),
                    }),
                }
            }
            EventData::HeartbeatEvent => Some(Item::Idle),
            EventData::FormatDescriptionEvent(_) if end == 0 => {
                self.seen_fde = true;
                None
            }
            EventData::FormatDescriptionEvent(_) | EventData::PreviousGtidsEvent(_) if end > 0 => {
                if matches!(data, EventData::FormatDescriptionEvent(_)) {
                    self.seen_fde = true;
                }
                Some(Item::Skip {
                    file: self.file.clone(),
                    end,
                })
            }
            EventData::RowsEvent(rows) => {
                let Some(map) = tme(rows.table_id()) else {
                    return Err(Error::definite(
                        &codes::CDC_DECODE,
                        format!(
                            "{}: rows event for unknown table id {}",
                            at(),
                            rows.table_id()
                        ),
                    ));
                };
                let item = self.rows(&rows, map, raw)?;
                if self.xa_group {
                    if let Some(Item::Rows { table, .. }) = &item {
                        return Err(xa_refused(
                            &at(),
                            &format!(
                                "it changes {}, which the task migrates",
                                table.display_name()
                            ),
                        ));
                    }
                }
                item
            }
            _ => None,
        })
    }

    fn rows(
        &self,
        ev: &RowsEventData<'_>,
        tme: &TableMapEvent<'_>,
        raw_type: u8,
    ) -> Result<Option<Item>> {
        let key = (
            tme.database_name().into_owned(),
            tme.table_name().into_owned(),
        );
        let Some(table) = self.tables.get(&key).cloned() else {
            return Ok(None);
        };
        if raw_type == PARTIAL_UPDATE_ROWS {
            return Err(Error::definite(
                &codes::CDC_UNSUPPORTED_BINLOG,
                format!(
                    "{}: partial JSON update (binlog_row_value_options=PARTIAL_JSON); set binlog_row_value_options='' on the source",
                    table.display_name()
                ),
            ));
        }
        let kind = match ev {
            RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => {
                RowKind::Insert
            }
            RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => {
                RowKind::Delete
            }
            _ => RowKind::Update,
        };
        let binlog_cols = binlog_columns(&table, tme)?;
        check_types(&table, tme, &binlog_cols)?;
        let n = ev.num_columns() as usize;
        let before_pos = present(&binlog_cols, n, |j| {
            ev.columns_before_image()
                .is_none_or(|b| b.get(j).is_some_and(|x| *x))
        });
        let after_pos = present(&binlog_cols, n, |j| {
            ev.columns_after_image()
                .is_none_or(|b| b.get(j).is_some_and(|x| *x))
        });
        let mut out = Vec::new();
        for r in ev.rows(tme) {
            let (before, after) = r.map_err(|e| {
                Error::definite(&codes::CDC_DECODE, format!("{}: {e}", table.display_name()))
            })?;
            out.push((
                image(&table, before, &before_pos)?,
                image(&table, after, &after_pos)?,
            ));
        }
        Ok(Some(Item::Rows {
            table,
            kind,
            rows: out,
        }))
    }
}

/// Position of each ferry column among the columns present in an image (rows carry present columns only).
fn present(binlog_cols: &[usize], n: usize, on: impl Fn(usize) -> bool) -> Vec<Option<usize>> {
    let mut ranks = Vec::with_capacity(n);
    let mut k = 0usize;
    for j in 0..n {
        let here = on(j);
        ranks.push(here.then_some(k));
        k += usize::from(here);
    }
    binlog_cols
        .iter()
        .map(|&j| ranks.get(j).copied().flatten())
        .collect()
}

/// For each of the table's columns, its index among the TABLE_MAP's columns: the same index when the counts agree,
/// else by name (MySQL 8 logs hidden columns of functional indexes, which information_schema does not list).
fn binlog_columns(table: &Table, tme: &TableMapEvent<'_>) -> Result<Vec<usize>> {
    let n = tme.columns_count() as usize;
    if n == table.columns.len() {
        return Ok((0..n).collect());
    }
    let names: Vec<String> =
        mysql_common::binlog::events::OptionalMetaExtractor::new(tme.iter_optional_meta())
            .map(|x| {
                x.iter_column_name()
                    .flatten()
                    .map(|c| c.name().into_owned())
                    .collect()
            })
            .unwrap_or_default();
    let mismatch = || {
        Error::definite(
            &codes::CDC_DECODE,
            format!(
                "{}: the binlog row has {n} columns, ferry knows {}{}",
                table.display_name(),
                table.columns.len(),
                if names.is_empty() {
                    " (set binlog_row_metadata=FULL on the source so columns can be matched by name)"
                } else {
                    ""
                }
            ),
        )
    };
    if names.len() != n {
        return Err(mismatch());
    }
    table
        .columns
        .iter()
        .map(|c| names.iter().position(|x| *x == c.name).ok_or_else(mismatch))
        .collect()
}

/// Checks the TABLE_MAP's column types (and, where the source logs it, signedness) against the shape ferry decodes
/// with: a table changed outside ferry's view stops with a code naming the column, never a value read as another
/// type (an INT widened to BIGINT read as INT wraps, a signed column read as unsigned flips).
fn check_types(table: &Table, tme: &TableMapEvent<'_>, binlog_cols: &[usize]) -> Result<()> {
    // Signedness comes per numeric column of the TABLE_MAP, in order (binlog_row_metadata=FULL or MINIMAL).
    let unsigned: Vec<bool> =
        mysql_common::binlog::events::OptionalMetaExtractor::new(tme.iter_optional_meta())
            .map(|x| x.iter_signedness().collect())
            .unwrap_or_default();
    let mut numeric_rank = Vec::with_capacity(tme.columns_count() as usize);
    let mut k = 0usize;
    for j in 0..tme.columns_count() as usize {
        let numeric = tme
            .get_column_type(j)
            .ok()
            .flatten()
            .is_some_and(|t| t.is_numeric_type());
        numeric_rank.push(numeric.then_some(k));
        k += usize::from(numeric);
    }
    for (col, &j) in table.columns.iter().zip(binlog_cols) {
        let Ok(Some(t)) = tme.get_column_type(j) else {
            continue;
        };
        let mismatch = |found: String| {
            Error::definite(
                &codes::CDC_DECODE,
                format!(
                    "{}: the binlog's table map gives column `{}` as {found}, ferry's shape has `{}`: the table \
                     changed outside ferry's view",
                    table.display_name(),
                    col.name,
                    col.column_type
                ),
            )
        };
        if !type_matches(&col.data_type, t) {
            return Err(mismatch(format!("{t:?}")));
        }
        let is_int = matches!(
            col.data_type.as_str(),
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint"
        );
        if let Some(&u) = numeric_rank
            .get(j)
            .copied()
            .flatten()
            .and_then(|r| unsigned.get(r))
        {
            let ours = col.column_type.to_ascii_lowercase().contains("unsigned");
            if is_int && u != ours {
                return Err(mismatch(format!(
                    "{t:?} {}",
                    if u { "UNSIGNED" } else { "SIGNED" }
                )));
            }
        }
    }
    Ok(())
}

/// Whether a binlog column type can hold a column of information_schema's `data_type` (types ferry does not
/// know are let through: their values decode by the binlog's own type).
fn type_matches(data_type: &str, t: mysql_common::constants::ColumnType) -> bool {
    use mysql_common::constants::ColumnType::*;
    match data_type {
        "tinyint" => t == MYSQL_TYPE_TINY,
        "smallint" => t == MYSQL_TYPE_SHORT,
        "mediumint" => t == MYSQL_TYPE_INT24,
        "int" | "integer" => t == MYSQL_TYPE_LONG,
        "bigint" => t == MYSQL_TYPE_LONGLONG,
        "float" => t == MYSQL_TYPE_FLOAT,
        "double" | "real" => t == MYSQL_TYPE_DOUBLE,
        "decimal" | "numeric" => matches!(t, MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL),
        "year" => t == MYSQL_TYPE_YEAR,
        "date" => matches!(t, MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE),
        "time" => matches!(t, MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2),
        "datetime" => matches!(t, MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2),
        "timestamp" => matches!(t, MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2),
        "bit" => t == MYSQL_TYPE_BIT,
        "char" | "varchar" | "binary" | "varbinary" => {
            matches!(
                t,
                MYSQL_TYPE_STRING | MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING
            )
        }
        "enum" => matches!(t, MYSQL_TYPE_ENUM | MYSQL_TYPE_STRING),
        "set" => matches!(t, MYSQL_TYPE_SET | MYSQL_TYPE_STRING),
        "tinytext" | "text" | "mediumtext" | "longtext" | "tinyblob" | "blob" | "mediumblob"
        | "longblob" => matches!(
            t,
            MYSQL_TYPE_BLOB | MYSQL_TYPE_TINY_BLOB | MYSQL_TYPE_MEDIUM_BLOB | MYSQL_TYPE_LONG_BLOB
        ),
        // MySQL's binary JSON; MariaDB's JSON is LONGTEXT.
        "json" => matches!(t, MYSQL_TYPE_JSON | MYSQL_TYPE_BLOB),
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => t == MYSQL_TYPE_GEOMETRY,
        _ => true,
    }
}

fn image(
    table: &Table,
    row: Option<mysql_common::binlog::row::BinlogRow>,
    positions: &[Option<usize>],
) -> Result<Option<Vec<Value>>> {
    let Some(mut row) = row else { return Ok(None) };
    let mut vals = Vec::with_capacity(table.columns.len());
    for (col, pos) in table.columns.iter().zip(positions) {
        let v = match pos.and_then(|p| row.take(p)) {
            Some(v) => decode::value(v, col).map_err(|e| e.context(table.display_name()))?,
            // A column missing from a MINIMAL/NOBLOB image: ferry needs FULL images (precheck).
            None => {
                return Err(Error::definite(
                    &codes::CDC_DECODE,
                    format!(
                        "{}: column `{}` missing from the row image (binlog_row_image is not FULL)",
                        table.display_name(),
                        col.name
                    ),
                ))
            }
        };
        vals.push(v);
    }
    Ok(Some(vals))
}

/// MariaDB GTID event body: seq_no (8), domain_id (4), flags (1); the server id is the header's. Returns the GTID
/// and the flags.
fn mariadb_gtid(event: &Event) -> Result<(String, u8)> {
    let d = event.data();
    match (d.get(0..8), d.get(8..12), d.get(12)) {
        (Some(seq), Some(domain), Some(&flags)) => {
            let seq = u64::from_le_bytes(seq.try_into().unwrap_or([0; 8]));
            let domain = u32::from_le_bytes(domain.try_into().unwrap_or([0; 4]));
            Ok((
                format!("{domain}-{}-{seq}", event.header().server_id()),
                flags,
            ))
        }
        _ => Err(Error::definite(
            &codes::CDC_DECODE,
            format!("MariaDB GTID event of {} bytes", d.len()),
        )),
    }
}

/// The xid of an XA_PREPARE event (one_phase 1, formatID 4, gtrid length 4, bqual length 4, data) as XA COMMIT and
/// XA ROLLBACK statements spell it in the binlog: `X'<gtrid hex>',X'<bqual hex>',<formatID>`.
fn prepared_xid(body: &[u8]) -> Option<String> {
    let u32_at = |i: usize| -> Option<u32> {
        body.get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let format_id = u32_at(1)?;
    let gtrid = usize::try_from(u32_at(5)?).ok()?;
    let bqual = usize::try_from(u32_at(9)?).ok()?;
    let data = body.get(13..13usize.checked_add(gtrid)?.checked_add(bqual)?)?;
    Some(format!(
        "X'{}',X'{}',{format_id}",
        hex::encode(&data[..gtrid]),
        hex::encode(&data[gtrid..])
    ))
}

/// XA branches remembered as prepared without tracked rows.
const XA_REMEMBERED_MAX: usize = 100_000;

/// `XA START|BEGIN|END|PREPARE|COMMIT|ROLLBACK <xid>` (any case, any spacing): the verb (upper case) and the rest.
fn xa_statement(sql: &str) -> Option<(String, String)> {
    let t = sql.trim();
    let (first, rest) = t.split_once(|c: char| c.is_ascii_whitespace())?;
    if !first.eq_ignore_ascii_case("XA") {
        return None;
    }
    let rest = rest.trim_start();
    let (verb, xid) = rest
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((rest, ""));
    let verb = verb.to_ascii_uppercase();
    ["START", "BEGIN", "END", "PREPARE", "COMMIT", "ROLLBACK"]
        .contains(&verb.as_str())
        .then(|| (verb, xid.trim().to_string()))
}

/// An XA transaction's prepare and its commit or rollback are separate binlog groups, possibly far apart and
/// across a restart; applying them exactly once would mean holding a prepared transaction on the destination across
/// ferry's own restarts. ferry refuses them rather than apply half of one.
fn xa_refused(at: &str, what: &str) -> Error {
    Error::definite(
        &codes::CDC_XA,
        format!(
            "{at}: XA transaction{}",
            if what.is_empty() {
                String::new()
            } else {
                format!(" ({what})")
            }
        ),
    )
}

/// Whether the last four bytes of an event read without checksum handling are the CRC32 of the rest of it.
fn ends_with_own_crc32(event: &Event) -> bool {
    let mut raw = Vec::with_capacity(19 + event.data().len());
    if event
        .write(
            mysql_common::binlog::consts::BinlogVersion::Version4,
            &mut raw,
        )
        .is_err()
        || raw.len() < 19 + 4
    {
        return false;
    }
    let (body, crc) = raw.split_at(raw.len() - 4);
    crc32fast::hash(body).to_le_bytes() == crc
}
