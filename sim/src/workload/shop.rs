//! The `shop` workload: inserts, updates (including key changes and unique values moving between rows), deletes
//! with FK cascades, multi-statement transactions.

use super::{pick, Ctx};
use ferry_engine::error::{Result, ResultExt};
use mysql_async::prelude::Queryable;
use rand::rngs::StdRng;
use rand::Rng;

/// Product SKUs and the highest ids rows are picked below.
pub async fn context(c: &mut mysql_async::Conn) -> Result<Ctx> {
    let mut ctx = Ctx {
        skus: c
            .query("SELECT sku FROM shop.products")
            .await
            .ctx("workload")?,
        ..Ctx::default()
    };
    for (t, cond) in [
        ("customers", ""),
        ("orders", ""),
        ("audit_log", " WHERE id < 1000000000"),
    ] {
        let top: Option<u64> = c
            .query_first(format!(
                "SELECT CAST(COALESCE(MAX(id), 1) AS UNSIGNED) FROM shop.{t}{cond}"
            ))
            .await
            .ctx("workload")?;
        ctx.tops.insert(t, top.unwrap_or(1));
    }
    Ok(ctx)
}

/// The statements of one transaction.
pub fn transaction(rng: &mut StdRng, ctx: &Ctx, writer: usize, n: u64) -> Vec<String> {
    let skus = &ctx.skus;
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
            pick(rng, "@c", "shop.customers", "id", ctx.top("customers"), ""),
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
                pick(rng, "@a", "shop.customers", "id", ctx.top("customers"), ""),
                pick(rng, "@b", "shop.customers", "id", ctx.top("customers"), " AND id <> @a"),
                "SET @e = (SELECT email FROM shop.customers WHERE id = @a)".to_string(),
                format!("UPDATE shop.customers SET email = CONCAT('{tag}-', id, '@example.org') WHERE id = @a"),
                "UPDATE shop.customers SET email = @e WHERE id = @b".to_string(),
            ]
        }
        // An order with its lines, in one transaction.
        32..=51 => {
            let mut v = vec![pick(rng, "@c", "shop.customers", "id", ctx.top("customers"), "")];
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
            pick(rng, "@o", "shop.orders", "id", ctx.top("orders"), ""),
            format!(
                "UPDATE shop.orders SET status = '{}', version = version + 1 WHERE id = @o",
                ["paid", "shipped", "cancelled"][rng.random_range(0..3)]
            ),
        ],
        // An order is deleted; its lines go with it by ON DELETE CASCADE (not in the binlog).
        67..=73 => vec![
            pick(rng, "@o", "shop.orders", "id", ctx.top("orders"), ""),
            "DELETE FROM shop.orders WHERE id = @o".to_string(),
        ],
        // A primary key changes.
        74..=79 => vec![
            pick(rng, "@l", "shop.audit_log", "id", ctx.top("audit_log"), " AND id < 1000000000"),
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
