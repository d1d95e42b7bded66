//! Seeded concurrent write workloads: several writers run generated multi-statement transactions against a
//! source until stopped; each data set (`shop`, `sakila`) has its own generator.

pub mod sakila;
pub mod shop;

use ferry_engine::config::Endpoint;
use ferry_engine::error::{Result, ResultExt};
use mysql_async::prelude::Queryable;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What a workload did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WorkloadStats {
    pub transactions: u64,
    pub statements: u64,
    /// Transactions the server refused (deadlock, duplicate from a racing writer): rolled back, not counted above.
    pub rolled_back: u64,
}

/// The data set a workload writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Shop,
    Sakila,
}

/// What a generator knows about the data when the workload starts.
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    /// Highest id of each table the generator picks rows from (see `pick`).
    pub tops: HashMap<&'static str, u64>,
    /// Product SKUs (shop).
    pub skus: Vec<String>,
}

impl Ctx {
    pub fn top(&self, table: &str) -> u64 {
        self.tops.get(table).copied().unwrap_or(1)
    }
}

/// A statement setting `@var` to the `id` of an existing row of `table` near a random point of `0..=top`: an index
/// range read (ORDER BY RAND() would scan and lock the table on every statement).
pub fn pick(rng: &mut StdRng, var: &str, table: &str, id: &str, top: u64, extra: &str) -> String {
    let at = rng.random_range(0..=top.max(1));
    format!(
        "SET {var} = COALESCE((SELECT {id} FROM {table} WHERE {id} >= {at}{extra} ORDER BY {id} LIMIT 1), \
         (SELECT {id} FROM {table} WHERE 1 = 1{extra} ORDER BY {id} LIMIT 1))"
    )
}

/// Runs the `shop` workload (see `run`).
pub async fn run_shop(
    ep: &Endpoint,
    seed: u64,
    writers: usize,
    transactions_max: u64,
    stop: Arc<AtomicBool>,
) -> Result<WorkloadStats> {
    run(ep, Kind::Shop, seed, writers, transactions_max, stop).await
}

/// Runs `writers` connections of seeded DML on `kind`'s database until `stop` is set or `transactions_max` are
/// done. A transaction the server refuses (a race between writers) is rolled back and counted.
pub async fn run(
    ep: &Endpoint,
    kind: Kind,
    seed: u64,
    writers: usize,
    transactions_max: u64,
    stop: Arc<AtomicBool>,
) -> Result<WorkloadStats> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(ep.host.clone())
        .tcp_port(ep.port)
        .user(Some(ep.user.clone()))
        .pass(ep.password.clone())
        .prefer_socket(false);
    let pool = mysql_async::Pool::new(opts);
    let mut c = pool.get_conn().await.ctx("workload")?;
    let ctx = Arc::new(match kind {
        Kind::Shop => shop::context(&mut c).await?,
        Kind::Sakila => sakila::context(&mut c).await?,
    });
    drop(c);
    let per_writer = transactions_max.div_ceil(writers.max(1) as u64);
    let mut set = tokio::task::JoinSet::new();
    for w in 0..writers.max(1) {
        let (pool, stop, ctx) = (pool.clone(), stop.clone(), ctx.clone());
        set.spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(w as u64 * 7919));
            let mut conn = pool.get_conn().await.ctx("workload")?;
            let mut st = WorkloadStats::default();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && n < per_writer {
                n += 1;
                let stmts = match kind {
                    Kind::Shop => shop::transaction(&mut rng, &ctx, w, n),
                    Kind::Sakila => sakila::transaction(&mut rng, &ctx, w, n),
                };
                let mut ok = true;
                conn.query_drop("BEGIN").await.ctx("workload")?;
                for s in &stmts {
                    if let Err(e) = conn.query_drop(s).await {
                        match e {
                            // Races between writers (deadlock, lock wait, duplicate, FK): roll back and go on.
                            mysql_async::Error::Server(_) => {
                                ok = false;
                                break;
                            }
                            other => return Err(other.into()),
                        }
                    }
                }
                if ok {
                    conn.query_drop("COMMIT").await.ctx("workload")?;
                    st.transactions += 1;
                    st.statements += stmts.len() as u64;
                } else {
                    conn.query_drop("ROLLBACK").await.ctx("workload")?;
                    st.rolled_back += 1;
                }
            }
            Ok::<WorkloadStats, ferry_engine::error::Error>(st)
        });
    }
    let mut total = WorkloadStats::default();
    let mut first_err = None;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(s)) => {
                total.transactions += s.transactions;
                total.statements += s.statements;
                total.rolled_back += s.rolled_back;
            }
            Ok(Err(e)) => first_err = first_err.or(Some(e)),
            Err(e) => {
                first_err = first_err.or(Some(ferry_engine::error::Error::definite(
                    &ferry_engine::codes::SIM_SERVER,
                    format!("workload writer died: {e}"),
                )))
            }
        }
    }
    let _ = pool.disconnect().await;
    match first_err {
        Some(e) => Err(e),
        None => Ok(total),
    }
}
