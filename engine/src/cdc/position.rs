//! Binlog positions of MySQL (file, offset, GTID set) and MariaDB (file, offset, GTID list), read from a server.

use crate::codes;
use crate::error::{Error, Result, ResultExt};
use crate::mysql::conn::Flavor;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use serde::{Deserialize, Serialize};

/// A point in a source's binlog. Positions of different flavors never compare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "flavor", rename_all = "snake_case")]
pub enum Position {
    MySql {
        file: String,
        pos: u64,
        /// `@@gtid_executed` at this position (empty when GTIDs are off).
        gtid_set: String,
    },
    MariaDb {
        file: String,
        pos: u64,
        /// `@@gtid_binlog_pos` at this position: one domain-server-seq per domain.
        gtid_list: String,
    },
}

impl Position {
    pub fn file(&self) -> &str {
        match self {
            Position::MySql { file, .. } | Position::MariaDb { file, .. } => file,
        }
    }

    pub fn pos(&self) -> u64 {
        match self {
            Position::MySql { pos, .. } | Position::MariaDb { pos, .. } => *pos,
        }
    }

    /// The same kind of position at another file and offset, GTIDs kept.
    pub fn moved_to(&self, file: &str, pos: u64) -> Position {
        match self {
            Position::MySql { gtid_set, .. } => Position::MySql {
                file: file.to_string(),
                pos,
                gtid_set: gtid_set.clone(),
            },
            Position::MariaDb { gtid_list, .. } => Position::MariaDb {
                file: file.to_string(),
                pos,
                gtid_list: gtid_list.clone(),
            },
        }
    }

    /// A position from the task file's `[incremental.start]`, of the server's flavor.
    pub fn given(flavor: Flavor, file: &str, pos: u64, gtid: &str) -> Position {
        match flavor {
            Flavor::MySql => Position::MySql {
                file: file.into(),
                pos,
                gtid_set: gtid.into(),
            },
            Flavor::MariaDb => Position::MariaDb {
                file: file.into(),
                pos,
                gtid_list: gtid.into(),
            },
        }
    }

    /// A start position every row read after it already reflects: on MariaDB the binlog position of a consistent
    /// snapshot (so a transaction written to the binlog but not yet visible cannot fall between), with its exact
    /// GTID list from BINLOG_GTID_POS. On MySQL, which has no snapshot position, the position is read under a
    /// global read lock held for those two reads only (what mysqldump --master-data does): the lock waits for the
    /// transactions already flushed to the binlog to commit, and holds new commits back, so the file, offset and
    /// gtid_executed agree and every transaction before them is visible. The wait for the lock is bounded by
    /// `START_LOCK_WAIT_S`; without the RELOAD privilege the lock is refused and the position is read without it
    /// (a transaction flushed but not yet committed at that instant could then be missed by the copy), with a
    /// warning.
    pub async fn start_point(conn: &mut Conn, flavor: Flavor) -> Result<Position> {
        if flavor == Flavor::MariaDb {
            let p = Self::snapshot(conn).await?;
            conn.query_drop("COMMIT")
                .await
                .ctx("taking the start position")?;
            return Ok(p);
        }
        match Self::under_read_lock(conn, flavor).await? {
            Some(p) => Ok(p),
            None => {
                tracing::warn!(
                    "no RELOAD privilege on the source: the start position is read without a global read lock; a \
                     transaction flushed to the binlog but not committed at that instant could be missed by the copy"
                );
                Self::current(conn, flavor).await
            }
        }
    }

    /// The current position read under a global read lock held for those reads only: transactions already
    /// flushed to the binlog have committed, none commits meanwhile, so file, offset and GTIDs agree. None when
    /// the account may not take the lock (RELOAD).
    pub async fn under_read_lock(conn: &mut Conn, flavor: Flavor) -> Result<Option<Position>> {
        conn.query_drop(format!(
            "SET SESSION lock_wait_timeout = {START_LOCK_WAIT_S}"
        ))
        .await
        .ctx("taking the start position")?;
        match conn.query_drop("FLUSH TABLES WITH READ LOCK").await {
            Ok(()) => {
                let p = Self::current(conn, flavor).await;
                let unlocked = conn.query_drop("UNLOCK TABLES").await;
                let p = p?;
                unlocked.ctx("taking the start position")?;
                conn.query_drop("SET SESSION lock_wait_timeout = DEFAULT")
                    .await
                    .ctx("taking the start position")?;
                Ok(Some(p))
            }
            Err(e) => {
                let e = Error::from(e);
                let _ = conn
                    .query_drop("SET SESSION lock_wait_timeout = DEFAULT")
                    .await;
                if matches!(e.mysql_errno(), Some(1227 | 1045 | 1044)) {
                    return Ok(None);
                }
                Err(e.context("taking the start position under a global read lock"))
            }
        }
    }

    /// MariaDB: opens a consistent snapshot on `conn` (REPEATABLE READ) and returns the binlog position it
    /// holds the source at (`binlog_snapshot_file` / `binlog_snapshot_position`: the end of the last transaction
    /// the snapshot sees), with its GTID list. The transaction stays open: every read on `conn` until COMMIT sees
    /// the source exactly as of that position. MySQL reports no such position.
    pub async fn snapshot(conn: &mut Conn) -> Result<Position> {
        for q in [
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            "START TRANSACTION WITH CONSISTENT SNAPSHOT",
        ] {
            conn.query_drop(q).await.ctx("opening a source snapshot")?;
        }
        let rows: Vec<(String, String)> = conn
            .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
            .await
            .ctx("reading the snapshot's binlog position")?;
        let get = |n: &str| {
            rows.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        if let (Some(file), Some(pos)) =
            (get("binlog_snapshot_file"), get("binlog_snapshot_position"))
        {
            if let (false, Ok(pos)) = (file.is_empty(), pos.parse::<u64>()) {
                let gtid_list: Option<String> = conn
                    .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&file, pos))
                    .await
                    .ctx("BINLOG_GTID_POS")?;
                return Ok(Position::MariaDb {
                    file,
                    pos,
                    gtid_list: gtid_list.unwrap_or_default(),
                });
            }
        }
        Err(Error::definite(
            &codes::CDC_BINLOG_OFF,
            "the server reports no binlog snapshot position (log_bin is OFF)",
        ))
    }

    /// Orders two positions of the same log by file then offset (binlog file names sort by their numeric suffix).
    pub fn cmp_in_log(&self, other: &Position) -> Result<std::cmp::Ordering> {
        match (self, other) {
            (Position::MySql { .. }, Position::MySql { .. })
            | (Position::MariaDb { .. }, Position::MariaDb { .. }) => {
                Ok(file_order(self.file(), other.file()).then(self.pos().cmp(&other.pos())))
            }
            _ => Err(Error::definite(
                &codes::CDC_POSITION,
                format!("cannot compare a MySQL position with a MariaDB one ({self} vs {other})"),
            )),
        }
    }

    /// Reads the server's current binlog position (where the next transaction will be written).
    pub async fn current(conn: &mut Conn, flavor: Flavor) -> Result<Position> {
        let (file, pos) = master_status(conn).await?;
        Ok(match flavor {
            Flavor::MariaDb => {
                let gtid_list: Option<String> = conn
                    .query_first("SELECT @@GLOBAL.gtid_binlog_pos")
                    .await
                    .ctx("reading @@gtid_binlog_pos")?;
                Position::MariaDb {
                    file,
                    pos,
                    gtid_list: gtid_list.unwrap_or_default(),
                }
            }
            Flavor::MySql => {
                let gtid_set: Option<String> = conn
                    .query_first("SELECT @@GLOBAL.gtid_executed")
                    .await
                    .ctx("reading @@gtid_executed")?;
                Position::MySql {
                    file,
                    pos,
                    gtid_set: gtid_set.unwrap_or_default().replace('\n', ""),
                }
            }
        })
    }
}

/// The longest wait for the global read lock under which a MySQL start position is read (a long statement on the
/// source holds it back); past it the start fails and is retried like any transient error.
const START_LOCK_WAIT_S: u64 = 5;

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Position::MySql {
                file,
                pos,
                gtid_set,
            } if !gtid_set.is_empty() => write!(f, "{file}:{pos} ({gtid_set})"),
            Position::MariaDb {
                file,
                pos,
                gtid_list,
            } if !gtid_list.is_empty() => {
                write!(f, "{file}:{pos} ({gtid_list})")
            }
            _ => write!(f, "{}:{}", self.file(), self.pos()),
        }
    }
}

/// `mysql-bin.000010` after `mysql-bin.000009`, also past 999999 where the suffix grows a digit.
fn file_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn split(s: &str) -> (&str, u64) {
        let digits = s.len() - s.bytes().rev().take_while(u8::is_ascii_digit).count();
        (&s[..digits], s[digits..].parse::<u64>().unwrap_or(0))
    }
    split(a).cmp(&split(b))
}

/// File and offset from SHOW BINARY LOG STATUS (MySQL 8.2+) or SHOW MASTER STATUS (MariaDB, older MySQL).
async fn master_status(conn: &mut Conn) -> Result<(String, u64)> {
    let row: Option<mysql_async::Row> = match conn.query_first("SHOW BINARY LOG STATUS").await {
        Ok(r) => r,
        // 1064: this server does not know the statement (MariaDB, MySQL before 8.2).
        Err(mysql_async::Error::Server(e)) if e.code == 1064 => conn
            .query_first("SHOW MASTER STATUS")
            .await
            .ctx("SHOW MASTER STATUS")?,
        Err(e) => return Err(Error::from(e).context("SHOW BINARY LOG STATUS")),
    };
    let row = row.ok_or_else(|| {
        Error::definite(
            &codes::CDC_BINLOG_OFF,
            "the server reports no binary log position (log_bin is OFF)",
        )
    })?;
    let file: Option<String> = row.get(0);
    let pos: Option<u64> = row.get(1);
    match (file, pos) {
        (Some(file), Some(pos)) => Ok((file, pos)),
        _ => Err(Error::definite(
            &codes::CDC_POSITION,
            "unreadable SHOW MASTER STATUS row",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn my(file: &str, pos: u64) -> Position {
        Position::MySql {
            file: file.into(),
            pos,
            gtid_set: String::new(),
        }
    }

    #[test]
    fn positions_order_by_file_number_then_offset() {
        use std::cmp::Ordering::*;
        assert_eq!(
            my("b.000009", 900).cmp_in_log(&my("b.000010", 4)).ok(),
            Some(Less)
        );
        assert_eq!(
            my("b.999999", 4).cmp_in_log(&my("b.1000000", 4)).ok(),
            Some(Less)
        );
        assert_eq!(
            my("b.000010", 120).cmp_in_log(&my("b.000010", 4)).ok(),
            Some(Greater)
        );
        assert_eq!(
            my("b.000010", 4).cmp_in_log(&my("b.000010", 4)).ok(),
            Some(Equal)
        );
    }

    #[test]
    fn flavors_never_compare() {
        let m = Position::MariaDb {
            file: "b.000001".into(),
            pos: 4,
            gtid_list: "0-1-5".into(),
        };
        let e = my("b.000001", 4).cmp_in_log(&m).unwrap_err();
        assert_eq!(e.code().id, codes::CDC_POSITION.id);
    }

    #[test]
    fn positions_round_trip_through_json() {
        let m = Position::MariaDb {
            file: "mysql-bin.000002".into(),
            pos: 1234,
            gtid_list: "0-101-7,1-101-3".into(),
        };
        let s = serde_json::to_string(&m).unwrap_or_default();
        assert_eq!(serde_json::from_str::<Position>(&s).ok(), Some(m.clone()));
        assert_eq!(m.to_string(), "mysql-bin.000002:1234 (0-101-7,1-101-3)");
    }
}
