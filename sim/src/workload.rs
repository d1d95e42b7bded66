//! A seeded concurrent write workload on the demo `shop` database: inserts, updates (including key changes and
//! unique values moving between rows), deletes with FK cascades, multi-statement transactions.

use ferry_engine::config::Endpoint;
use ferry_engine::error::{Result, ResultExt};
use mysql_async::prelude::Queryable;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
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

/// Runs `writers` connections of seeded DML on `shop` until `stop` is set or `transactions_max` are done.
pub async fn run_shop(
    ep: &Endpoint,
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
    let skus: Vec<String> = c
        .query("SELECT sku FROM shop.products")
        .await
        .ctx("workload")?;
    let top = |t: &str| format!("SELECT CAST(COALESCE(MAX(id), 1) AS UNSIGNED) FROM shop.{t}");
    let ids = IdRanges {
        customers: c.query_first(top("customers")).await.ctx("workload")?.unwrap_or(1),
        orders: c.query_first(top("orders")).await.ctx("workload")?.unwrap_or(1),
        audit_log: c
            .query_first("SELECT CAST(COALESCE(MAX(id), 1) AS UNSIGNED) FROM shop.audit_log WHERE id < 1000000000")
            .await
            .ctx("workload")?
            .unwrap_or(1),
    };
    drop(c);
    let skus = Arc::new(skus);
    let per_writer = transactions_max.div_ceil(writers.max(1) as u64);
    let mut set = tokio::task::JoinSet::new();
    for w in 0..writers.max(1) {
        let (pool, stop, skus) = (pool.clone(), stop.clone(), skus.clone());
        set.spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(w as u64 * 7919));
            let mut conn = pool.get_conn().await.ctx("workload")?;
            let mut st = WorkloadStats::default();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && n < per_writer {
                n += 1;
                let stmts = transaction(&mut rng, &skus, ids, w, n);
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

/// The highest ids when the workload started: rows are picked by a random point in that range and the next id
/// at or above it, an index range read (ORDER BY RAND() would scan the table under lock on every statement).
#[derive(Debug, Clone, Copy)]
struct IdRanges {
    customers: u64,
    orders: u64,
    audit_log: u64,
}

/// A statement setting `@var` to the id of an existing row of `table` near a random point of `0..=top`.
fn pick(rng: &mut StdRng, var: &str, table: &str, top: u64, extra: &str) -> String {
    let at = rng.random_range(0..=top.max(1));
    format!(
        "SET {var} = COALESCE((SELECT id FROM shop.{table} WHERE id >= {at}{extra} ORDER BY id LIMIT 1), \
         (SELECT id FROM shop.{table} WHERE 1 = 1{extra} ORDER BY id LIMIT 1))"
    )
}

/// The statements of one transaction.
fn transaction(
    rng: &mut StdRng,
    skus: &[String],
    ids: IdRanges,
    writer: usize,
    n: u64,
) -> Vec<String> {
    let sku = |rng: &mut StdRng| {
        skus.get(rng.random_range(0..skus.len().max(1)))
            .cloned()
            .unwrap_or_default()
    };
    match rng.random_range(0..100) {
        // A new customer.
        0..=11 => vec![format!(
            "INSERT INTO shop.customers (email, name, city, tier, flags, created_at) VALUES \
             ('w{writer}-{n}-{}@example.org', 'Writer {writer} #{n}', {}, '{}', '{}', NOW(6))",
            rng.random::<u32>(),
            if rng.random_bool(0.2) { "NULL".to_string() } else { "'Zürich'".to_string() },
            ["bronze", "silver", "gold"][rng.random_range(0..3)],
            ["", "sms", "newsletter,vip"][rng.random_range(0..3)],
        )],
        // A customer changes name, tier and flags.
        12..=25 => vec![
            pick(rng, "@c", "customers", ids.customers, ""),
            format!(
                "UPDATE shop.customers SET name = CONCAT(name, '.'), tier = '{}', flags = '{}' WHERE id = @c",
                ["bronze", "silver", "gold"][rng.random_range(0..3)],
                ["", "vip", "sms,vip"][rng.random_range(0..3)],
            ),
        ],
        // An email address moves from one customer to another (unique key value changes hands).
        26..=31 => {
            let tag = format!("moved-{writer}-{n}");
            vec![
                pick(rng, "@a", "customers", ids.customers, ""),
                pick(rng, "@b", "customers", ids.customers, " AND id <> @a"),
                "SET @e = (SELECT email FROM shop.customers WHERE id = @a)".to_string(),
                format!("UPDATE shop.customers SET email = CONCAT('{tag}-', id, '@example.org') WHERE id = @a"),
                "UPDATE shop.customers SET email = @e WHERE id = @b".to_string(),
            ]
        }
        // An order with its lines, in one transaction.
        32..=51 => {
            let mut v = vec![pick(rng, "@c", "customers", ids.customers, "")];
            v.push(format!(
                "INSERT INTO shop.orders (customer_id, status, ordered_on, ship_window, note, total) VALUES \
                 (@c, 'new', CURDATE(), '{:02}:{:02}:00', {}, {}.{:02})",
                rng.random_range(0..24),
                rng.random_range(0..60),
                if rng.random_bool(0.5) { "NULL".to_string() } else { format!("'note {n} ✓'") },
                rng.random_range(1..900),
                rng.random_range(0..100)
            ));
            v.push("SET @o = LAST_INSERT_ID()".to_string());
            for line in 1..=rng.random_range(1..4u32) {
                v.push(format!(
                    "INSERT INTO shop.order_items (order_id, line, sku, qty, unit_price) VALUES (@o, {line}, '{}', {}, {}.{:02})",
                    sku(rng),
                    rng.random_range(1..9),
                    rng.random_range(1..300),
                    rng.random_range(0..100)
                ));
            }
            v
        }
        // An order moves on (the source's trigger writes audit_log; the binlog carries those rows).
        52..=66 => vec![
            pick(rng, "@o", "orders", ids.orders, ""),
            format!(
                "UPDATE shop.orders SET status = '{}', version = version + 1 WHERE id = @o",
                ["paid", "shipped", "cancelled"][rng.random_range(0..3)]
            ),
        ],
        // An order is deleted; its lines go with it by ON DELETE CASCADE (not in the binlog).
        67..=73 => vec![
            pick(rng, "@o", "orders", ids.orders, ""),
            "DELETE FROM shop.orders WHERE id = @o".to_string(),
        ],
        // A primary key changes.
        74..=79 => vec![
            pick(rng, "@l", "audit_log", ids.audit_log, " AND id < 1000000000"),
            format!(
                "UPDATE shop.audit_log SET id = id + {} WHERE id = @l",
                1_000_000_000u64 + u64::from(rng.random::<u16>()) * 100_000 + n
            ),
        ],
        // Price and JSON attributes change, several products in one statement.
        // (No writes to the keyless page_views: replaying them from P0 over a copy taken later duplicates rows;
        // keyless tables need a per-table snapshot position first.)
        _ => vec![format!(
            "UPDATE shop.products SET price = price + 0.01, attrs = JSON_SET(COALESCE(attrs, '{{}}'), '$.w', {}) \
             WHERE sku IN ('{}', '{}')",
            rng.random_range(0..1000),
            sku(rng),
            sku(rng)
        )],
    }
}
