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
    use crate::model::source::{Source, Workload};
    use ferry_engine::cdc::event::{self as engine, EventDecoder};
    use mysql_async::binlog::events::{Event, FormatDescriptionEvent};
    use mysql_async::binlog::BinlogVersion;
    use rand::SeedableRng;

    /// The event as MariaDB writes it (the row events left out: they do not open or end anything).
    fn raw(ev: &Ev, at: u32) -> Option<Vec<u8>> {
        let (kind, body): (u8, Vec<u8>) = match ev {
            Ev::Gtid { seq, standalone } => {
                let mut b = seq.to_le_bytes().to_vec();
                b.extend(0u32.to_le_bytes());
                b.push(if *standalone {
                    engine::mariadb::gtid_flags::STANDALONE
                } else {
                    0
                });
                b.extend([0; 6]);
                (engine::mariadb::GTID, b)
            }
            Ev::Query { query, .. } => {
                let mut b = Vec::new();
                b.extend(1u32.to_le_bytes()); // thread id
                b.extend(0u32.to_le_bytes()); // execution time
                b.push(1); // schema length
                b.extend(0u16.to_le_bytes()); // error code
                b.extend(0u16.to_le_bytes()); // status variables length
                b.extend(b"m\0");
                b.extend(query.sql().bytes());
                (2, b)
            }
            Ev::Xid => (16, 7u64.to_le_bytes().to_vec()),
            Ev::Rows { .. } => return None,
        };
        let mut out = Vec::new();
        out.extend(1_700_000_000u32.to_le_bytes());
        out.push(kind);
        out.extend(1u32.to_le_bytes());
        out.extend((19 + body.len() as u32).to_le_bytes());
        out.extend(at.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(body);
        Some(out)
    }

    /// What the engine's own decoder makes of the model's binlogs agrees with the model's reader: the same
    /// transaction boundaries, and every savepoint statement inside its transaction.
    #[test]
    fn the_engine_decoder_groups_the_model_binlog_alike() {
        let fde = FormatDescriptionEvent::new(BinlogVersion::Version4);
        let w = Workload {
            keys: 8,
            fk: false,
            savepoint_per_mille: 500,
            cascades: true,
        };
        let mut queries_inside = 0;
        for seed in 0..50 {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let mut src = Source::new();
            for i in 0..10 {
                if i == 5 {
                    src.write_ddl(&mut rng);
                }
                src.write(&mut rng, &w);
            }
            let mut decoder = EventDecoder::new("model-bin.000001", &[]);
            let mut reader = Reader::new(false);
            let mut at = 4;
            for ev in src.groups.iter().flat_map(|g| &g.events) {
                let model = reader.read(ev);
                let Some(bytes) = raw(ev, at) else { continue };
                at += bytes.len() as u32;
                let event = Event::read(&fde, &bytes[..]).expect("event");
                let item = decoder.decode(&event, |_| None).expect("decoded");
                match (model, item) {
                    (Item::Begin, Some(engine::Item::Begin { .. })) => {}
                    (Item::Commit, Some(engine::Item::Commit { .. })) => {}
                    (
                        Item::Query { in_transaction, .. },
                        Some(engine::Item::Query {
                            in_transaction: theirs,
                            ..
                        }),
                    ) => {
                        assert_eq!(in_transaction, theirs, "seed {seed}: {ev:?}");
                        queries_inside += usize::from(theirs);
                    }
                    (m, e) => panic!("seed {seed}: the model read {m:?}, the engine {e:?}"),
                }
            }
        }
        assert!(
            queries_inside > 50,
            "{queries_inside} queries inside transactions"
        );
    }

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
