//! The binlog stream of a live server: a dump request from a position (MariaDB and MySQL), with row events decoded
//! against the task's table shapes into ferry's values.

use super::decode;
use super::position::Position;
use crate::codes;
use crate::error::{Error, Result};
use crate::mysql::conn::{Flavor, Server};
use crate::mysql::quote::string;
use crate::schema::model::Table;
use crate::value::Value;
use futures_util::StreamExt;
use mysql_async::binlog::events::{EventData, RowsEventData};
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest};
use std::collections::HashMap;
use std::sync::Arc;

/// MariaDB's own event type numbers (not in mysql_common's table).
const MARIADB_GTID_EVENT: u8 = 162;

/// Insert, update or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Insert,
    Update,
    Delete,
}

/// A row's (before, after) images.
pub type RowImages = (Option<Vec<Value>>, Option<Vec<Value>>);

/// One decoded item of the stream.
#[derive(Debug, Clone)]
pub enum Item {
    /// A transaction starts (MySQL GTID `uuid:n`, MariaDB `domain-server-seq`, or empty when anonymous).
    Begin { gtid: String },
    /// Row images of one table: (before, after), before None for inserts, after None for deletes.
    Rows {
        table: Arc<Table>,
        kind: RowKind,
        rows: Vec<RowImages>,
    },
    /// A statement (DDL, or BEGIN/COMMIT of a non-transactional statement group).
    Query { db: String, sql: String, end: u64 },
    /// A transaction committed; `end` is the offset just after it in `file`.
    Commit { file: String, end: u64 },
    /// The server moved to another binlog file.
    Rotate { file: String, pos: u64 },
}

/// Reads a server's binlog from a position.
pub struct BinlogReader {
    stream: BinlogStream,
    tables: HashMap<(String, String), Arc<Table>>,
    file: String,
}

impl BinlogReader {
    /// Opens a dump from `from` (file and offset) as replica `server_id`; rows of tables outside `tables` are skipped.
    pub async fn open(
        server: &Server,
        from: &Position,
        server_id: u32,
        tables: &[Table],
    ) -> Result<BinlogReader> {
        let mut conn = server.dedicated().await?;
        if server.info.flavor == Flavor::MariaDb {
            // 4 = MARIA_SLAVE_CAPABILITY_GTID: send GTID events instead of rewriting them into dummy events.
            conn.query_drop("SET @mariadb_slave_capability = 4").await?;
            if let Position::MariaDb { gtid_list, .. } = from {
                conn.query_drop(format!("SET @slave_connect_state = {}", string(gtid_list)))
                    .await?;
            }
        }
        let request = BinlogStreamRequest::new(server_id)
            .with_filename(from.file().as_bytes())
            .with_pos(from.pos());
        let stream = conn.get_binlog_stream(request).await.map_err(|e| {
            Error::from(e).context(format!("{} binlog dump from {from}", server.label()))
        })?;
        Ok(BinlogReader {
            stream,
            tables: tables
                .iter()
                .map(|t| ((t.db.clone(), t.name.clone()), Arc::new(t.clone())))
                .collect(),
            file: from.file().to_string(),
        })
    }

    /// Replaces the shape of a table (after DDL) so later row events decode against it.
    pub fn set_table(&mut self, t: Table) {
        self.tables
            .insert((t.db.clone(), t.name.clone()), Arc::new(t));
    }

    /// The next item, waiting for the server; None when the server ends the stream.
    pub async fn next(&mut self) -> Result<Option<Item>> {
        loop {
            let Some(event) = self.stream.next().await else {
                return Ok(None);
            };
            let event = event?;
            let end = u64::from(event.header().log_pos());
            if event.header().event_type_raw() == MARIADB_GTID_EVENT {
                let d = event.data();
                if d.len() >= 12 {
                    let seq = u64::from_le_bytes(d[0..8].try_into().unwrap_or([0; 8]));
                    let domain = u32::from_le_bytes(d[8..12].try_into().unwrap_or([0; 4]));
                    let gtid = format!("{domain}-{}-{seq}", event.header().server_id());
                    return Ok(Some(Item::Begin { gtid }));
                }
                continue;
            }
            let data = event.read_data().map_err(|e| {
                Error::definite(
                    &codes::CDC_DECODE,
                    format!("event at {}:{end}: {e}", self.file),
                )
            })?;
            let Some(data) = data else { continue };
            match data {
                EventData::RotateEvent(r) => {
                    let name = r.name().into_owned();
                    self.file = name.clone();
                    return Ok(Some(Item::Rotate {
                        file: name,
                        pos: r.position(),
                    }));
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
                    return Ok(Some(Item::Begin {
                        gtid: format!("{uuid}:{}", g.gno()),
                    }));
                }
                EventData::AnonymousGtidEvent(_) => {
                    return Ok(Some(Item::Begin {
                        gtid: String::new(),
                    }))
                }
                EventData::XidEvent(_) => {
                    return Ok(Some(Item::Commit {
                        file: self.file.clone(),
                        end,
                    }))
                }
                EventData::QueryEvent(q) => {
                    let sql = q.query().to_string();
                    if sql == "COMMIT" {
                        return Ok(Some(Item::Commit {
                            file: self.file.clone(),
                            end,
                        }));
                    }
                    return Ok(Some(Item::Query {
                        db: q.schema().to_string(),
                        sql,
                        end,
                    }));
                }
                EventData::RowsEvent(rows) => {
                    if let Some(item) = self.rows(&rows)? {
                        return Ok(Some(item));
                    }
                }
                _ => {}
            }
        }
    }

    fn rows(&self, ev: &RowsEventData<'_>) -> Result<Option<Item>> {
        let Some(tme) = self.stream.get_tme(ev.table_id()) else {
            return Err(Error::definite(
                &codes::CDC_DECODE,
                format!("rows event for unknown table id {}", ev.table_id()),
            ));
        };
        let key = (
            tme.database_name().to_string(),
            tme.table_name().to_string(),
        );
        let Some(table) = self.tables.get(&key).cloned() else {
            return Ok(None);
        };
        let kind = match ev {
            RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => {
                RowKind::Insert
            }
            RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => {
                RowKind::Delete
            }
            _ => RowKind::Update,
        };
        if ev.num_columns() as usize != table.columns.len() {
            return Err(Error::definite(
                &codes::CDC_DECODE,
                format!(
                    "{}: the binlog row has {} columns, ferry knows {}",
                    table.display_name(),
                    ev.num_columns(),
                    table.columns.len()
                ),
            ));
        }
        let mut out = Vec::new();
        for r in ev.rows(tme) {
            let (before, after) = r.map_err(|e| {
                Error::definite(&codes::CDC_DECODE, format!("{}: {e}", table.display_name()))
            })?;
            let image =
                |row: Option<mysql_async::binlog::row::BinlogRow>| -> Result<Option<Vec<Value>>> {
                    let Some(mut row) = row else { return Ok(None) };
                    let mut vals = Vec::with_capacity(table.columns.len());
                    for (i, col) in table.columns.iter().enumerate() {
                        let v = match row.take(i) {
                        Some(v) => decode::value(v, col)
                            .map_err(|e| e.context(table.display_name()))?,
                        // A column missing from a MINIMAL image: ferry needs FULL images (precheck).
                        None => {
                            return Err(Error::definite(
                                &codes::CDC_DECODE,
                                format!("{}: column `{}` missing from the row image (binlog_row_image is not FULL)", table.display_name(), col.name),
                            ))
                        }
                    };
                        vals.push(v);
                    }
                    Ok(Some(vals))
                };
            out.push((image(before)?, image(after)?));
        }
        Ok(Some(Item::Rows {
            table,
            kind,
            rows: out,
        }))
    }
}
