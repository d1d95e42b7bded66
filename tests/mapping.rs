//! Database name mapping across schema, full copy, sync (row events and DDL) and the verifier: `shop` on the
//! source becomes `shop_copy` on the destination, under a concurrent workload, and nothing is written to `shop`.

mod common;

use common::*;
use ferry_engine::cdc::sync::Control;
use ferry_engine::config::MigrationType;
use ferry_sim::datagen;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mapped_database_is_migrated_under_its_new_name_everywhere() {
    logs();
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 1).await.expect("shop");
    let mut cfg = task("mapped", &source, &destination, &[datagen::SHOP_DB]);
    cfg.task.types.push(MigrationType::Incremental);
    cfg.full.workers = 2;
    cfg.full.chunk_rows = 500;
    cfg.mapping.databases = [("shop".to_string(), "shop_copy".to_string())].into();

    let wl = ShopWorkload::start(&source);
    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "mapped", run, 30).await;
    for s in [
        "ALTER TABLE shop.customers ADD COLUMN nickname VARCHAR(20) NULL",
        "UPDATE shop.customers SET nickname = 'n' WHERE id % 5 = 0",
        "CREATE TABLE shop.added (id INT PRIMARY KEY, customer_id INT UNSIGNED, FOREIGN KEY (customer_id) REFERENCES shop.customers (id))",
        "INSERT INTO shop.added SELECT id, id FROM shop.customers WHERE id <= 20",
        "RENAME TABLE shop.added TO shop.added2",
        "CREATE VIEW shop.v_added AS SELECT a.id, c.email FROM shop.added2 a JOIN shop.customers c ON c.id = a.customer_id",
    ] {
        source.exec_as_app(s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    wl.finish().await;
    ctl.send(Control::Drain).expect("drain");
    tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("drained in time")
        .expect("run task")
        .expect("migration");

    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop'"
        )
        .await,
        0,
        "nothing may be written under the source's name"
    );
    let v = verify(&cfg).await;
    assert!(v.consistent(), "verifier: {v:?}");
    let tables = base_tables(&source, "shop").await;
    assert_eq!(tables, base_tables(&destination, "shop_copy").await);
    assert!(tables.contains(&"added2".to_string()));
    for t in &tables {
        assert_eq!(
            checksum(&source, &format!("shop.{t}")).await,
            checksum(&destination, &format!("shop_copy.{t}")).await,
            "{t}"
        );
    }
    // Views and FKs point into the new name.
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM shop_copy.v_added").await,
        count(&source, "SELECT COUNT(*) FROM shop.v_added").await
    );
    assert_eq!(
        rows(&destination, "SELECT DISTINCT REFERENCED_TABLE_SCHEMA FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = 'shop_copy' AND REFERENCED_TABLE_NAME IS NOT NULL").await,
        ["shop_copy"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_of_2000_tables_is_mapped_and_renamed_without_a_cap() {
    const TABLES: usize = 2_000;
    let (source, destination) = pair().await;
    source.exec("CREATE DATABASE wide").await.expect("db");
    let mut c = source.conn().await.expect("conn");
    for chunk in (0..TABLES).collect::<Vec<_>>().chunks(200) {
        let sql: String = chunk
            .iter()
            .map(|i| {
                format!(
                    "CREATE TABLE wide.t{i:04} (id INT PRIMARY KEY, v VARCHAR(20)); \
                     INSERT INTO wide.t{i:04} VALUES ({i}, 'row {i}'), ({}, 'more');",
                    i + 1_000_000
                )
            })
            .collect();
        mysql_async::prelude::Queryable::query_drop(&mut c, sql)
            .await
            .expect("tables");
    }
    drop(c);
    let mut cfg = task("wide", &source, &destination, &["wide"]);
    cfg.mapping.databases = [("wide".to_string(), "wide_copy".to_string())].into();
    // Every table renamed too: the seed caps a renaming task at 1,000 tables; ferry has no cap.
    cfg.mapping.tables = [(
        "wide".to_string(),
        (0..TABLES)
            .map(|i| (format!("t{i:04}"), format!("renamed_{i:04}")))
            .collect(),
    )]
    .into();
    let started = std::time::Instant::now();
    let report = ferry_engine::migration::run(&cfg, &Default::default())
        .await
        .expect("migration");
    eprintln!(
        "2000 tables mapped and copied in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(report.schema_pre.created.len(), TABLES, "every table");
    assert!(report
        .schema_pre
        .created
        .iter()
        .all(|c| c.starts_with("table wide_copy.renamed_")));
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'wide_copy'"
        )
        .await,
        TABLES as u64
    );
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM wide_copy.renamed_1999 WHERE v = 'row 1999'"
        )
        .await,
        1
    );
    let v = verify(&cfg).await;
    assert!(v.consistent(), "{v:?}");
    assert_eq!(v.tables.len(), TABLES);
}

/// The task file of the table/column test: shop -> shop_copy; customers -> clients (email -> email_address, city
/// and flags left out); orders -> purchases (customer_id -> client_id); page_views -> visits (name only).
fn reshaping(cfg: &mut ferry_engine::config::TaskConfig) {
    fn map<V>(pairs: Vec<(&str, V)>) -> std::collections::BTreeMap<String, V> {
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
    let names = |p: &[(&str, &str)]| map(p.iter().map(|(a, b)| (*a, b.to_string())).collect());
    cfg.mapping.databases = names(&[("shop", "shop_copy")]);
    cfg.mapping.tables = map(vec![(
        "shop",
        names(&[
            ("customers", "clients"),
            ("orders", "purchases"),
            ("page_views", "visits"),
        ]),
    )]);
    cfg.mapping.columns = map(vec![(
        "shop",
        map(vec![
            ("customers", names(&[("email", "email_address")])),
            ("orders", names(&[("customer_id", "client_id")])),
        ]),
    )]);
    let kept = ["id", "email", "name", "tier", "created_at", "updated_at"];
    cfg.objects.columns = map(vec![(
        "shop",
        map(vec![(
            "customers",
            kept.iter().map(|c| c.to_string()).collect(),
        )]),
    )]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tables_and_columns_are_renamed_and_selected_across_copy_sync_ddl_and_verify() {
    logs();
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 1).await.expect("shop");
    let mut cfg = task("reshaped", &source, &destination, &[datagen::SHOP_DB]);
    cfg.task.types.push(MigrationType::Incremental);
    cfg.full.chunk_rows = 500;
    reshaping(&mut cfg);

    // The precheck: the mapping passes; the objects that use renamed tables are left out, with their names.
    let r = ferry_engine::precheck::run(&cfg).await;
    assert!(!r.failed(), "{r:?}");
    let left_out = r
        .items
        .iter()
        .find(|i| i.code == Some("FERRY-PRE-017"))
        .expect("objects left out");
    for o in [
        "view shop.customer_totals",
        "view shop.gold_customers",
        "procedure shop.top_customers",
        "trigger shop.orders_status_audit",
    ] {
        assert!(left_out.found.contains(o), "{o}: {}", left_out.found);
    }
    // Leaving out a key column is refused before anything is written.
    let mut bad = cfg.clone();
    bad.task.name = "reshaped-bad".into();
    bad.objects
        .columns
        .get_mut("shop")
        .expect("shop")
        .insert("orders".into(), vec!["total".into()]);
    let r = ferry_engine::precheck::run(&bad).await;
    let item = r
        .items
        .iter()
        .find(|i| i.code == Some("FERRY-PRE-016"))
        .expect("mapping refused");
    assert!(
        item.found.contains("leaves out `id` of key PRIMARY"),
        "{}",
        item.found
    );
    let e = ferry_engine::migration::run(&bad, &Default::default())
        .await
        .expect_err("refused");
    assert_eq!(e.code().id, "FERRY-PRE-016", "{e}");
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('shop', 'shop_copy')").await,
        0
    );

    let wl = ShopWorkload::start(&source);
    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "reshaped", run, 30).await;
    // DDL on a table renamed by name only, and on an untouched one, is replicated under the destination's names.
    for s in [
        "ALTER TABLE shop.page_views ADD COLUMN referrer VARCHAR(40) NULL",
        "INSERT INTO shop.page_views VALUES (NOW(), '/mapped', 7, 'ferry')",
        "CREATE INDEX ix_path ON shop.page_views (path(20))",
        "ALTER TABLE shop.products ADD COLUMN color VARCHAR(20) NULL",
        "UPDATE shop.products SET color = 'red' WHERE sku LIKE '%1'",
    ] {
        source
            .exec_as_app(s)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    wl.finish().await;
    ctl.send(Control::Drain).expect("drain");
    tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("drained in time")
        .expect("run task")
        .expect("migration");

    let v = verify(&cfg).await;
    assert!(v.consistent(), "verifier: {v:?}");
    assert_eq!(
        base_tables(&destination, "shop_copy").await,
        [
            "audit_log",
            "clients",
            "order_items",
            "products",
            "purchases",
            "visits"
        ]
    );
    assert_eq!(
        rows(&destination, "SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'shop_copy' AND TABLE_NAME = 'clients'").await,
        ["id,email_address,name,tier,created_at,updated_at"]
    );
    // Rows equal column for column under both names, under the workload's updates, inserts and deletes.
    for (src, dst) in [
        (
            "SELECT id, email, name, tier, created_at, updated_at FROM shop.customers ORDER BY id",
            "SELECT id, email_address, name, tier, created_at, updated_at FROM shop_copy.clients ORDER BY id",
        ),
        (
            "SELECT id, customer_id, status, total, version FROM shop.orders ORDER BY id",
            "SELECT id, client_id, status, total, version FROM shop_copy.purchases ORDER BY id",
        ),
        (
            "SELECT at, path, ms, referrer FROM shop.page_views ORDER BY at, path, ms, referrer",
            "SELECT at, path, ms, referrer FROM shop_copy.visits ORDER BY at, path, ms, referrer",
        ),
    ] {
        let (a, b) = (rows(&source, src).await, rows(&destination, dst).await);
        assert!(!a.is_empty(), "{src}");
        assert_eq!(a, b, "{dst}");
    }
    for t in ["order_items", "products", "audit_log"] {
        assert_eq!(
            checksum(&source, &format!("shop.{t}")).await,
            checksum(&destination, &format!("shop_copy.{t}")).await,
            "{t}"
        );
    }
    // The foreign keys point at the renamed tables and columns; the index reached the renamed table.
    assert_eq!(
        rows(&destination, "SELECT CONCAT(TABLE_NAME, '.', COLUMN_NAME, '->', REFERENCED_TABLE_NAME, '.', REFERENCED_COLUMN_NAME) FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = 'shop_copy' AND REFERENCED_TABLE_NAME IS NOT NULL ORDER BY 1").await,
        ["order_items.order_id->purchases.id", "order_items.sku->products.sku", "purchases.client_id->clients.id"]
    );
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'shop_copy' AND TABLE_NAME = 'visits' AND INDEX_NAME = 'ix_path'").await,
        1
    );
    // Objects that do not use renamed tables are there; the others are not.
    assert_eq!(
        rows(&destination, "SELECT GROUP_CONCAT(ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'shop_copy'").await,
        ["order_total"]
    );
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'shop_copy'"
        )
        .await,
        0
    );

    // DDL on a table whose columns are renamed cannot be translated: sync stops with its code.
    let (_ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "reshaped", run, 0).await;
    source
        .exec_as_app("ALTER TABLE shop.customers ADD COLUMN nickname VARCHAR(20) NULL")
        .await
        .expect("alter");
    let e = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("stopped in time")
        .expect("run task")
        .expect_err("refused");
    assert_eq!(e.code().id, "FERRY-CDC-012", "{e}");
    assert!(e.to_string().contains("shop.customers"), "{e}");
}
