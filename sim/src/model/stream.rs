//! The model's binlog reader: events to items the way the engine's decoder groups them (a GTID event without the
//! STANDALONE flag opens a transaction that only its XID ends, so a query inside it, SAVEPOINT included, is part of
//! it: Begin .. items .. Commit).

use super::db::Row;
use super::source::{Ev, Query};

/// One item, as the applier takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    Begin,
    Rows {
        table: usize,
        before: Option<Row>,
        after: Option<Row>,
    },
    Query {
        query: Query,
        ts_s: u32,
        tz_s: i32,
        in_transaction: bool,
    },
    Commit,
}

/// The reader's state between events.
#[derive(Debug, Default)]
pub struct Reader {
    in_group: bool,
    /// Negative control: the reader of old, which knew a transaction only by a BEGIN query (MariaDB writes none),
    /// so a query inside a MariaDB transaction came out as a statement of its own.
    pub queries_outside: bool,
}

impl Reader {
    /// A reader at the start of a group; `queries_outside` puts the old defect back.
    pub fn new(queries_outside: bool) -> Reader {
        Reader {
            in_group: false,
            queries_outside,
        }
    }

    pub fn read(&mut self, ev: &Ev) -> Item {
        match *ev {
            Ev::Gtid { standalone, .. } => {
                self.in_group = !standalone && !self.queries_outside;
                Item::Begin
            }
            Ev::Rows {
                table,
                before,
                after,
            } => Item::Rows {
                table,
                before,
                after,
            },
            Ev::Query { query, ts_s, tz_s } => Item::Query {
                query,
                ts_s,
                tz_s,
                in_transaction: self.in_group,
            },
            Ev::Xid => {
                self.in_group = false;
                Item::Commit
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_savepoint_never_ends_a_transaction() {
        let events = [
            Ev::Gtid {
                seq: 1,
                standalone: false,
            },
            Ev::Query {
                query: Query::Savepoint(0),
                ts_s: 1,
                tz_s: 0,
            },
            Ev::Query {
                query: Query::RollbackTo(0),
                ts_s: 1,
                tz_s: 0,
            },
            Ev::Xid,
            Ev::Gtid {
                seq: 2,
                standalone: true,
            },
            Ev::Query {
                query: Query::AddColumn,
                ts_s: 1,
                tz_s: 0,
            },
        ];
        let inside = |r: &mut Reader| -> Vec<bool> {
            events
                .iter()
                .filter_map(|e| match r.read(e) {
                    Item::Query { in_transaction, .. } => Some(in_transaction),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(inside(&mut Reader::default()), vec![true, true, false]);
        let mut old = Reader::new(true);
        assert_eq!(inside(&mut old), vec![false, false, false]);
    }
}
