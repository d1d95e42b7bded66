//! ferry's own demo data: a small shop schema with FKs, a view, a function, a procedure, a trigger, an event and
//! tens of thousands of rows of varied types, generated on the server.

use crate::instance::Instance;
use ferry_engine::error::Result;

/// The database the demo creates.
pub const SHOP_DB: &str = "shop";

/// Statements that create the schema (one per entry, routines included, no DELIMITER games).
pub fn shop_schema() -> Vec<String> {
    [
        "CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        "CREATE TABLE shop.customers (
            id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
            email VARCHAR(191) NOT NULL,
            name VARCHAR(100) NOT NULL,
            city VARCHAR(60) CHARACTER SET latin1 NULL,
            tier ENUM('bronze','silver','gold') NOT NULL DEFAULT 'bronze',
            flags SET('newsletter','sms','vip') NOT NULL DEFAULT '',
            created_at DATETIME(6) NOT NULL,
            updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
            UNIQUE KEY uk_email (email)
        ) ENGINE=InnoDB",
        "CREATE TABLE shop.products (
            sku CHAR(12) NOT NULL PRIMARY KEY,
            title VARCHAR(200) NOT NULL,
            price DECIMAL(12,2) NOT NULL,
            weight_kg DOUBLE NULL,
            rating FLOAT NULL,
            attrs JSON NULL,
            thumbnail VARBINARY(64) NULL,
            FULLTEXT KEY ft_title (title)
        ) ENGINE=InnoDB",
        "CREATE TABLE shop.orders (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            customer_id INT UNSIGNED NOT NULL,
            status ENUM('new','paid','shipped','cancelled') NOT NULL,
            ordered_on DATE NOT NULL,
            ship_window TIME NULL,
            note TEXT NULL,
            total DECIMAL(14,2) NOT NULL DEFAULT 0,
            version INT NOT NULL DEFAULT 0,
            KEY ix_customer (customer_id),
            CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES shop.customers (id)
        ) ENGINE=InnoDB",
        "CREATE TABLE shop.order_items (
            order_id BIGINT NOT NULL,
            line SMALLINT UNSIGNED NOT NULL,
            sku CHAR(12) NOT NULL,
            qty INT NOT NULL,
            unit_price DECIMAL(12,2) NOT NULL,
            line_total DECIMAL(14,2) AS (qty * unit_price) STORED,
            PRIMARY KEY (order_id, line),
            KEY ix_sku (sku),
            CONSTRAINT fk_items_order FOREIGN KEY (order_id) REFERENCES shop.orders (id) ON DELETE CASCADE,
            CONSTRAINT fk_items_product FOREIGN KEY (sku) REFERENCES shop.products (sku)
        ) ENGINE=InnoDB",
        "CREATE TABLE shop.audit_log (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            order_id BIGINT NOT NULL,
            old_status VARCHAR(16) NULL,
            new_status VARCHAR(16) NULL,
            at DATETIME(6) NOT NULL
        ) ENGINE=InnoDB",
        "CREATE TABLE shop.page_views (
            at DATETIME NOT NULL,
            path VARCHAR(255) NOT NULL,
            ms INT NOT NULL
        ) ENGINE=InnoDB",
        "CREATE VIEW shop.customer_totals AS
            SELECT c.id, c.email, COUNT(o.id) AS orders, COALESCE(SUM(o.total), 0) AS spent
            FROM shop.customers c LEFT JOIN shop.orders o ON o.customer_id = c.id GROUP BY c.id, c.email",
        "CREATE VIEW shop.gold_customers AS SELECT * FROM shop.customer_totals WHERE spent > 1000",
        "CREATE FUNCTION shop.order_total(p_order BIGINT) RETURNS DECIMAL(14,2) READS SQL DATA
            RETURN (SELECT COALESCE(SUM(qty * unit_price), 0) FROM shop.order_items WHERE order_id = p_order)",
        "CREATE PROCEDURE shop.top_customers(IN p_limit INT)
            READS SQL DATA
            BEGIN
              SELECT id, email, spent FROM shop.customer_totals ORDER BY spent DESC LIMIT p_limit;
            END",
        "CREATE TRIGGER shop.orders_status_audit AFTER UPDATE ON shop.orders FOR EACH ROW
            INSERT INTO shop.audit_log (order_id, old_status, new_status, at)
            SELECT NEW.id, OLD.status, NEW.status, NOW(6) FROM DUAL WHERE NOT (OLD.status <=> NEW.status)",
        "CREATE EVENT shop.purge_page_views ON SCHEDULE EVERY 1 DAY
            DO DELETE FROM shop.page_views WHERE at < NOW() - INTERVAL 30 DAY",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Rows, generated with set-based SQL (no recursion limits on either flavor).
pub fn shop_data(scale: u32) -> Vec<String> {
    let scale = scale.max(1);
    let customers = 2_000 * scale;
    let products = 500 * scale;
    let orders = 8_000 * scale;
    let digits = "(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 \
                  UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)";
    // 1..=n from as many cross-joined digit tables as n has digits.
    let seq = |n: u32| {
        let places = n.max(1).to_string().len();
        let sum: Vec<String> = (0..places)
            .map(|p| format!("{} * t{p}.d", 10u64.pow(p as u32)))
            .collect();
        let from: Vec<String> = (0..places).map(|p| format!("{digits} t{p}")).collect();
        format!(
            "(SELECT {} + 1 AS n FROM {} HAVING n <= {n}) seq",
            sum.join(" + "),
            from.join(", ")
        )
    };
    vec![
        format!(
            "INSERT INTO shop.customers (id, email, name, city, tier, flags, created_at, updated_at)
             SELECT n, CONCAT('user', n, '@example.com'),
               CASE n % 5 WHEN 0 THEN CONCAT('Zoë ', n) WHEN 1 THEN CONCAT('山田 ', n) WHEN 2 THEN CONCAT('Ana 🚀 ', n)
                          WHEN 3 THEN CONCAT('O''Brien ', n) ELSE CONCAT('Customer ', n) END,
               CASE WHEN n % 7 = 0 THEN NULL ELSE ELT(1 + n % 4, 'Zürich', 'São Paulo', 'Reykjavík', 'Kraków') END,
               ELT(1 + n % 3, 'bronze', 'silver', 'gold'),
               ELT(1 + n % 4, '', 'newsletter', 'newsletter,sms', 'vip'),
               TIMESTAMP('2020-01-01 00:00:00') + INTERVAL n * 3607 SECOND + INTERVAL (n % 1000) * 1000 MICROSECOND,
               TIMESTAMP('2024-01-01 00:00:00') + INTERVAL n * 61 SECOND
             FROM {}",
            seq(customers)
        ),
        format!(
            "INSERT INTO shop.products (sku, title, price, weight_kg, rating, attrs, thumbnail)
             SELECT CONCAT('SKU-', LPAD(n, 8, '0')), CONCAT('Product ', n, IF(n % 9 = 0, ' – édition spéciale', '')),
               ROUND(0.99 + (n * 7919 % 100000) / 100, 2),
               IF(n % 11 = 0, NULL, (n * 2654435761 % 1000003) / 7.0),
               IF(n % 13 = 0, NULL, (n % 50) / 10.0 + 0.1),
               IF(n % 4 = 0, NULL, JSON_OBJECT('color', ELT(1 + n % 3, 'red', 'green', 'blue'), 'size', n % 40, 'tags', JSON_ARRAY('a', n))),
               IF(n % 5 = 0, NULL, UNHEX(CONCAT(LPAD(HEX(n), 8, '0'), '00FF00')))
             FROM {}",
            seq(products)
        ),
        format!(
            "INSERT INTO shop.orders (id, customer_id, status, ordered_on, ship_window, note, version)
             SELECT n, 1 + (n * 7 % {customers}), ELT(1 + n % 4, 'new', 'paid', 'shipped', 'cancelled'),
               DATE('2021-01-01') + INTERVAL (n % 1500) DAY,
               IF(n % 3 = 0, NULL, SEC_TO_TIME(n % 86400)),
               IF(n % 6 = 0, NULL, REPEAT(CONCAT('note ', n, ' '), 1 + n % 5)), n % 3
             FROM {}",
            seq(orders)
        ),
        format!(
            "INSERT INTO shop.order_items (order_id, line, sku, qty, unit_price)
             SELECT seq.n, l.d + 1, CONCAT('SKU-', LPAD(1 + (seq.n * 31 + l.d * 17) % {products}, 8, '0')), 1 + (seq.n + l.d) % 5,
               ROUND(1 + ((seq.n * 13 + l.d) % 20000) / 100, 2)
             FROM {} JOIN {digits} l ON l.d < 1 + seq.n % 5",
            seq(orders)
        ),
        "UPDATE shop.orders o SET total = (SELECT COALESCE(SUM(qty * unit_price), 0) FROM shop.order_items i WHERE i.order_id = o.id)".into(),
        format!(
            "INSERT INTO shop.page_views (at, path, ms)
             SELECT TIMESTAMP('2024-06-01') + INTERVAL n MINUTE, CONCAT('/p/', n % 300), n % 900 FROM {}",
            seq(2_000 * scale)
        ),
    ]
}

/// Creates and fills the shop database on `inst`.
pub async fn create_shop(inst: &Instance, scale: u32) -> Result<()> {
    for sql in shop_schema().iter().chain(shop_data(scale).iter()) {
        let mut c = inst.conn().await?;
        use mysql_async::prelude::Queryable;
        c.query_drop("SET SESSION time_zone = '+00:00'").await?;
        c.query_drop(sql)
            .await
            .map_err(|e| ferry_engine::Error::from(e).context(sql.lines().next().unwrap_or("")))?;
        let _ = c.disconnect().await;
    }
    Ok(())
}
