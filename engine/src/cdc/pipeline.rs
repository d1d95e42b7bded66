//! Statements queued for the destination and sent many to one round trip (a multi-statement query), each checked
//! against the number of rows it must affect; the first that fails or affects the wrong number is handed back.
//!
//! Exact-mode apply is bound by round trips, not by the server: a source transaction of four row events on
//! different tables costs four statements, and sending them one by one spends most of the time waiting.

use crate::error::Error;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

/// Queued bytes of SQL at which the queue is sent (well under the server's max_allowed_packet).
const BYTES_MAX: usize = 1 << 20;
/// Queued statements at which the queue is sent.
const STATEMENTS_MAX: usize = 2_000;

struct Pending<T> {
    sql: String,
    /// Rows the statement must affect (matched rows for UPDATE: sessions use CLIENT_FOUND_ROWS).
    expect: Option<u64>,
    tag: T,
}

/// Why a send stopped; statements before the failing one took effect in the open transaction, those after it
/// were not run.
#[derive(Debug)]
pub enum Failed<T> {
    /// The server refused the statement (or the connection failed; `tag` None when the failure cannot be tied
    /// to a statement).
    Server { tag: Option<T>, error: Error },
    /// The statement ran but affected another number of rows than it had to.
    Affected {
        tag: T,
        affected: u64,
        expected: u64,
    },
}

/// An ordered queue of statements with their checks; `T` says what each statement was, for the caller's report.
pub struct Pipeline<T> {
    items: Vec<Pending<T>>,
    bytes: usize,
}

impl<T> Default for Pipeline<T> {
    fn default() -> Self {
        Pipeline {
            items: Vec::new(),
            bytes: 0,
        }
    }
}

impl<T> Pipeline<T> {
    pub fn push(&mut self, sql: String, expect: Option<u64>, tag: T) {
        self.bytes += sql.len() + 2;
        self.items.push(Pending { sql, expect, tag });
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether the queue should be sent before more is added.
    pub fn is_full(&self) -> bool {
        self.bytes >= BYTES_MAX || self.items.len() >= STATEMENTS_MAX
    }

    /// Sends every queued statement in one query and checks each answer in order.
    pub async fn send(&mut self, conn: &mut Conn) -> std::result::Result<(), Failed<T>> {
        let items = std::mem::take(&mut self.items);
        self.bytes = 0;
        let Some(first) = items.first() else {
            return Ok(());
        };
        let sql = if items.len() == 1 {
            first.sql.clone()
        } else {
            let mut s = String::with_capacity(items.iter().map(|p| p.sql.len() + 2).sum());
            for (i, p) in items.iter().enumerate() {
                if i > 0 {
                    s.push_str(";\n");
                }
                s.push_str(&p.sql);
            }
            s
        };
        let mut items = items.into_iter();
        let answers = answers(conn, sql, items.len()).await;
        let (affected, error) = match answers {
            Ok(a) => (a, None),
            Err((a, e)) => (a, Some(e)),
        };
        for n in affected {
            let Some(p) = items.next() else { break };
            if let Some(expected) = p.expect {
                if n != expected {
                    return Err(Failed::Affected {
                        tag: p.tag,
                        affected: n,
                        expected,
                    });
                }
            }
        }
        match error {
            Some(error) => Err(Failed::Server {
                tag: items.next().map(|p| p.tag),
                error,
            }),
            None => Ok(()),
        }
    }
}

/// The affected-row counts of each statement's answer, in order; on an error, the counts before it and the error.
async fn answers(
    conn: &mut Conn,
    sql: String,
    statements: usize,
) -> std::result::Result<Vec<u64>, (Vec<u64>, Error)> {
    let mut out = Vec::with_capacity(statements);
    let mut result = match conn.query_iter(sql).await {
        Ok(r) => r,
        Err(e) => return Err((out, Error::from(e))),
    };
    loop {
        out.push(result.affected_rows());
        if result.is_empty() {
            break;
        }
        // Moves to the next statement's answer. The driver keeps an error answer pending rather than returning
        // it here (and the affected-row count then reads 0), so look for one before counting.
        if let Err(e) = result.collect::<mysql_async::Row>().await {
            return Err((out, Error::from(e)));
        }
        if result.columns().is_none() {
            let e = match result.collect::<mysql_async::Row>().await {
                Err(e) => Error::from(e),
                Ok(_) => Error::transient("the server's answer to a statement is missing"),
            };
            return Err((out, e));
        }
    }
    if let Err(e) = result.drop_result().await {
        return Err((out, Error::from(e)));
    }
    if out.len() != statements {
        let n = out.len();
        return Err((
            out,
            Error::transient(format!(
                "the server answered {n} of {statements} statements"
            )),
        ));
    }
    Ok(out)
}
