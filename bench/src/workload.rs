//! The sysbench-like write load on the data set (oltp_write_only's shape: an indexed update, a non-indexed update,
//! a delete and an insert of the same id: four row events per transaction), counted or paced, and the
//! heartbeat row the lag section reads.

use crate::dataset::DataSet;
use ferry_engine::error::{Error, Result, ResultExt};
use ferry_sim::Instance;
use mysql_async::prelude::Queryable;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Row events one transaction writes.
pub const EVENTS_PER_TRANSACTION: u64 = 4;

/// The heartbeat table (one row; `ts_us` is the source's clock in microseconds since the epoch).
pub const HEARTBEAT_TABLE: &str = "bench_heartbeat";

fn transaction_sql(rng: &mut StdRng, data: &DataSet) -> String {
    let n = data.rows_per_table;
    let t = rng.random_range(1..=data.tables);
    let (a, b, d) = (
        rng.random_range(1..=n),
        rng.random_range(1..=n),
        rng.random_range(1..=n),
    );
    let c: String = (0..10)
        .map(|_| format!("{:011}", rng.random::<u32>()))
        .collect::<Vec<_>>()
        .join("-");
    let db = &data.db;
    format!(
        "BEGIN; UPDATE `{db}`.`sbtest{t}` SET k = k + 1 WHERE id = {a}; \
         UPDATE `{db}`.`sbtest{t}` SET c = '{c}' WHERE id = {b}; \
         DELETE FROM `{db}`.`sbtest{t}` WHERE id = {d}; \
         INSERT INTO `{db}`.`sbtest{t}` (id, k, c, pad) VALUES ({d}, {a}, '{c}', 'pad'); COMMIT"
    )
}

/// Writes `transactions` transactions from `writers` sessions as fast as the source takes them; returns seconds.
pub async fn write_count(
    source: &Instance,
    data: &DataSet,
    transactions: u64,
    writers: u64,
) -> Result<f64> {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for w in 0..writers {
        let mut c = source.conn().await?;
        let data = data.clone();
        let share = transactions / writers + u64::from(w < transactions % writers);
        set.spawn(async move {
            let mut rng = StdRng::seed_from_u64(42 + w);
            for _ in 0..share {
                c.query_drop(transaction_sql(&mut rng, &data))
                    .await
                    .ctx("bench write load")?;
            }
            c.disconnect().await.ctx("bench write load")?;
            Ok::<(), Error>(())
        });
    }
    join(set).await?;
    Ok(started.elapsed().as_secs_f64())
}

/// Writes `tps` transactions per second in total from `writers` sessions for `window`, each session on its own
/// schedule (a session that falls behind catches up without bursting past the schedule). Returns the
/// transactions written and the seconds they took.
pub async fn write_paced(
    source: &Instance,
    data: &DataSet,
    tps: u64,
    window: Duration,
    writers: u64,
) -> Result<(u64, f64)> {
    let started = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let mut set = tokio::task::JoinSet::new();
    let interval = Duration::from_secs_f64(writers as f64 / tps as f64);
    for w in 0..writers {
        let mut c = source.conn().await?;
        let data = data.clone();
        let done = done.clone();
        set.spawn(async move {
            let mut rng = StdRng::seed_from_u64(7 + w);
            let mut next = tokio::time::Instant::now();
            let end = next + window;
            while next < end {
                tokio::time::sleep_until(next).await;
                c.query_drop(transaction_sql(&mut rng, &data))
                    .await
                    .ctx("bench write load")?;
                done.fetch_add(1, Ordering::Relaxed);
                next += interval;
            }
            c.disconnect().await.ctx("bench write load")?;
            Ok::<(), Error>(())
        });
    }
    join(set).await?;
    Ok((
        done.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    ))
}

async fn join(mut set: tokio::task::JoinSet<Result<()>>) -> Result<()> {
    while let Some(r) = set.join_next().await {
        r.map_err(|e| crate::setup(format!("bench write load: {e}")))??;
    }
    Ok(())
}

/// Creates the heartbeat table on a server, outside its binlog (each side gets its own copy before any
/// position is taken).
pub async fn create_heartbeat(server: &Instance, data: &DataSet) -> Result<()> {
    let mut c = server.conn().await?;
    for sql in [
        "SET SESSION sql_log_bin = 0".to_string(),
        format!(
            "CREATE TABLE IF NOT EXISTS `{}`.`{HEARTBEAT_TABLE}` (id INT NOT NULL PRIMARY KEY, ts_us BIGINT NOT NULL) ENGINE=InnoDB",
            data.db
        ),
        format!(
            "REPLACE INTO `{}`.`{HEARTBEAT_TABLE}` VALUES (1, 0)",
            data.db
        ),
    ] {
        c.query_drop(sql).await.ctx("heartbeat table")?;
    }
    c.disconnect().await.ctx("heartbeat table")?;
    Ok(())
}

/// Microseconds since the epoch on this host's clock (both servers run here).
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_writes_four_row_events_on_one_table() {
        let data = DataSet {
            db: "sbtest".into(),
            tables: 8,
            rows_per_table: 1000,
        };
        let mut rng = StdRng::seed_from_u64(1);
        let sql = transaction_sql(&mut rng, &data);
        assert_eq!(sql.matches("UPDATE").count(), 2);
        assert_eq!(sql.matches("DELETE").count(), 1);
        assert_eq!(sql.matches("INSERT").count(), 1);
        let tables: std::collections::BTreeSet<&str> = sql
            .split('`')
            .filter(|s| s.starts_with("sbtest") && s.len() > 6)
            .collect();
        assert_eq!(tables.len(), 1, "{sql}");
        assert!(sql.starts_with("BEGIN;") && sql.ends_with("COMMIT"));
    }
}
