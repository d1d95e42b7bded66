//! The binlog stream of a live server: a dump request from a position (MariaDB and MySQL), each event decoded into
//! ferry's stream items.

use super::event::{EventDecoder, Item};
use super::position::Position;
use crate::codes;
use crate::error::{Error, Result};
use crate::mysql::conn::{Flavor, Server};
use crate::mysql::quote::string;
use crate::schema::model::Table;
use futures_util::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest};

#[doc(no_inline)]
pub use super::event::{RowImages, RowKind};

/// How a dump starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartBy {
    /// File and offset of the position (any server).
    FilePos,
    /// MariaDB: the position's GTID list through `@slave_connect_state` (survives a change of binlog file names).
    Gtid,
}

/// Reads a server's binlog from a position.
pub struct BinlogReader {
    stream: BinlogStream,
    decoder: EventDecoder,
}

impl BinlogReader {
    /// Opens a dump from `from` as replica `server_id`; rows of tables outside `tables` are skipped.
    pub async fn open(
        server: &Server,
        from: &Position,
        server_id: u32,
        tables: &[Table],
    ) -> Result<BinlogReader> {
        Self::open_by(server, from, StartBy::FilePos, server_id, tables).await
    }

    /// Opens a dump, starting by file/offset or (MariaDB) by GTID.
    pub async fn open_by(
        server: &Server,
        from: &Position,
        by: StartBy,
        server_id: u32,
        tables: &[Table],
    ) -> Result<BinlogReader> {
        let mut conn = server.dedicated().await?;
        // The server checksums events (CRC32 by default); tell it we verify them.
        conn.query_drop("SET @master_binlog_checksum = @@global.binlog_checksum")
            .await?;
        // Keep-alive from an idle source every 5 s, so a dead connection is noticed.
        conn.query_drop("SET @master_heartbeat_period = 5000000000")
            .await?;
        let mut request = BinlogStreamRequest::new(server_id);
        match (server.info.flavor, by, from) {
            (Flavor::MariaDb, StartBy::Gtid, Position::MariaDb { gtid_list, .. }) => {
                // 4 = MARIA_SLAVE_CAPABILITY_GTID: GTID events as they are, not rewritten into dummies.
                conn.query_drop("SET @mariadb_slave_capability = 4").await?;
                conn.query_drop(format!("SET @slave_connect_state = {}", string(gtid_list)))
                    .await?;
                conn.query_drop("SET @slave_gtid_strict_mode = 0").await?;
                conn.query_drop("SET @slave_gtid_ignore_duplicates = 0")
                    .await?;
                // With a connect state the server ignores file and offset; it starts after the listed GTIDs.
                request = request.with_filename(b"".as_slice()).with_pos(4u64);
            }
            (Flavor::MariaDb, _, _) => {
                conn.query_drop("SET @mariadb_slave_capability = 4").await?;
                request = request
                    .with_filename(from.file().as_bytes())
                    .with_pos(from.pos());
            }
            (Flavor::MySql, _, _) => {
                request = request
                    .with_filename(from.file().as_bytes())
                    .with_pos(from.pos());
            }
        }
        let stream = conn.get_binlog_stream(request).await.map_err(|e| {
            let e = Error::from(e);
            match e.mysql_errno() {
                // ER_MASTER_FATAL_ERROR_READING_BINLOG: the file or GTID is gone (purged) or never existed.
                Some(1236) => Error::definite(
                    &codes::CDC_PURGED,
                    format!("{} binlog dump from {from}: {e}", server.label()),
                ),
                _ => e.context(format!("{} binlog dump from {from}", server.label())),
            }
        })?;
        Ok(BinlogReader {
            stream,
            decoder: EventDecoder::new(from.file(), tables),
        })
    }

    pub fn decoder_mut(&mut self) -> &mut EventDecoder {
        &mut self.decoder
    }

    /// Replaces the shape of a table (after DDL) so later row events decode against it.
    pub fn set_table(&mut self, t: Table) {
        self.decoder.set_table(t);
    }

    /// The next item, waiting for the server; None when the server ends the stream.
    pub async fn next(&mut self) -> Result<Option<Item>> {
        loop {
            let Some(event) = self.stream.next().await else {
                return Ok(None);
            };
            let event = event.map_err(|e| {
                let e = Error::from(e);
                match e.mysql_errno() {
                    Some(1236) => Error::definite(
                        &codes::CDC_PURGED,
                        format!("binlog stream after {}: {e}", self.decoder.file()),
                    ),
                    _ => e,
                }
            })?;
            let stream = &self.stream;
            if let Some(item) = self.decoder.decode(&event, |id| stream.get_tme(id))? {
                return Ok(Some(item));
            }
        }
    }
}
