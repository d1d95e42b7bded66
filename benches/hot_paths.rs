//! criterion micro-benchmarks of the hot paths outside the verifier: binlog row decoding (rows/s), SQL batch
//! building for the applier (rows/s), and DDL rewriting (statements/s).
//!
//! The decoding input is a real MariaDB binlog: a throwaway local server writes sysbench-shaped inserts, updates
//! and deletes at set-up, and its binlog file is read back from the data directory; without a server binary that
//! group is skipped with a note.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferry_engine::cdc::event::Item;
use ferry_engine::cdc::{file::read_items, sql};
use ferry_engine::schema::model::{Column, Key, Object, ObjectKind, Table};
use ferry_engine::schema::rewrite;
use ferry_engine::value::Value;
use ferry_sim::{Backend, Instance, InstanceOptions};
use mysql_async::prelude::Queryable;
use std::hint::black_box;

const ROWS: u64 = 20_000;

/// A binlog with ROWS inserted, ROWS updated and ROWS / 2 deleted sysbench rows, or why there is none.
fn binlog() -> Result<Vec<u8>, String> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let server = Instance::start_with(Backend::Local, InstanceOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let mut c = server.conn().await.map_err(|e| e.to_string())?;
        let statements = [
            "CREATE DATABASE sbtest".to_string(),
            "CREATE TABLE sbtest.sbtest1 (id INT NOT NULL, k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', \
             pad CHAR(60) NOT NULL DEFAULT '', PRIMARY KEY (id), KEY k_1 (k))"
                .to_string(),
            "RESET MASTER".to_string(),
            format!(
                "INSERT INTO sbtest.sbtest1 SELECT seq, seq % 1000, LEFT(CONCAT(SHA2(seq, 256), SHA2(seq + 1, 256)), 119), \
                 LEFT(SHA2(seq + 2, 256), 59) FROM sbtest.seq_1_to_{ROWS}"
            ),
            "UPDATE sbtest.sbtest1 SET k = k + 1".to_string(),
            format!("DELETE FROM sbtest.sbtest1 WHERE id <= {}", ROWS / 2),
            "FLUSH BINARY LOGS".to_string(),
        ];
        for s in statements {
            c.query_drop(s).await.map_err(|e| e.to_string())?;
        }
        let dir: Option<String> = c
            .query_first("SELECT @@datadir")
            .await
            .map_err(|e| e.to_string())?;
        let path = std::path::Path::new(&dir.ok_or("no datadir")?).join("mysql-bin.000001");
        std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
    })
}

fn rows_in(items: &[Item]) -> u64 {
    items
        .iter()
        .map(|i| match i {
            Item::Rows { rows, .. } => rows.len() as u64,
            _ => 0,
        })
        .sum()
}

fn decoding(c: &mut Criterion) {
    let bytes = match binlog() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("binlog_decode skipped: no throwaway server ({e})");
            return;
        }
    };
    let rows = read_items(&bytes, None).map(|i| rows_in(&i)).unwrap_or(0);
    assert_eq!(rows, ROWS * 5 / 2, "row images decoded from the binlog");
    let mut g = c.benchmark_group("binlog_decode");
    g.throughput(Throughput::Elements(rows));
    g.sample_size(20);
    g.bench_function("sysbench_rows_from_a_mariadb_binlog", |b| {
        b.iter(|| black_box(read_items(black_box(&bytes), None).map(|i| i.len())))
    });
    g.finish();
}

fn sysbench_table() -> Table {
    let col = |n: &str, t: &str, ct: &str| Column {
        name: n.into(),
        data_type: t.into(),
        column_type: ct.into(),
        charset: (t == "char").then(|| "utf8mb4".to_string()),
        nullable: false,
        generated: false,
    };
    Table {
        db: "sbtest".into(),
        name: "sbtest1".into(),
        columns: vec![
            col("id", "int", "int(11)"),
            col("k", "int", "int(11)"),
            col("c", "char", "char(120)"),
            col("pad", "char", "char(60)"),
        ],
        key: Some(Key {
            name: "PRIMARY".into(),
            columns: vec![0],
        }),
        uniques: Vec::new(),
        followers: Vec::new(),
        engine: "InnoDB".into(),
        rows_estimate: 0,
        create_sql: String::new(),
        omitted: Vec::new(),
    }
}

fn sql_batches(c: &mut Criterion) {
    let table = sysbench_table();
    let rows: Vec<Vec<Value>> = (0..1_000i64)
        .map(|i| {
            vec![
                Value::Int(i),
                Value::Int(i * 7919 % 100_000),
                Value::Bytes(format!("{:0>120}", i * 31).into_bytes()),
                Value::Bytes(format!("{:0>60}", i * 17).into_bytes()),
            ]
        })
        .collect();
    let refs: Vec<&[Value]> = rows.iter().map(|r| r.as_slice()).collect();
    let keys: Vec<Vec<Value>> = rows.iter().map(|r| vec![r[0].clone()]).collect();
    let mut g = c.benchmark_group("sql_batch");
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_function("upsert_1000_sysbench_rows", |b| {
        b.iter(|| black_box(sql::upsert(&table, black_box(&refs))))
    });
    g.bench_function("insert_1000_sysbench_rows", |b| {
        b.iter(|| black_box(sql::insert(&table, black_box(&refs))))
    });
    g.bench_function("delete_1000_keys", |b| {
        b.iter(|| black_box(sql::delete_keys(&table, black_box(&keys))))
    });
    g.finish();
}

fn objects() -> Vec<Object> {
    let o = |kind, name: &str, sql: &str| Object {
        kind,
        db: "sakila".into(),
        name: name.into(),
        create_sql: sql.into(),
        sql_mode: None,
        time_zone: None,
    };
    vec![
        o(
            ObjectKind::View,
            "customer_list",
            "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `customer_list` AS \
             select `cu`.`customer_id` AS `ID`,concat(`cu`.`first_name`,' ',`cu`.`last_name`) AS `name`,`a`.`address` AS `address`,\
             `a`.`postal_code` AS `zip code`,`a`.`phone` AS `phone`,`city`.`city` AS `city`,`country`.`country` AS `country`,\
             if(`cu`.`active`,'active','') AS `notes`,`cu`.`store_id` AS `SID` from (((`customer` `cu` join `address` `a` \
             on(`cu`.`address_id` = `a`.`address_id`)) join `city` on(`a`.`city_id` = `city`.`city_id`)) join `country` \
             on(`city`.`country_id` = `country`.`country_id`))",
        ),
        o(
            ObjectKind::Procedure,
            "film_in_stock",
            "CREATE DEFINER=`root`@`%` PROCEDURE `film_in_stock`(IN p_film_id INT, IN p_store_id INT, OUT p_film_count INT)\n\
             READS SQL DATA\nBEGIN\n     SELECT inventory_id\n     FROM inventory\n     WHERE film_id = p_film_id\n     \
             AND store_id = p_store_id\n     AND inventory_in_stock(inventory_id);\n\n     SELECT COUNT(*)\n     FROM inventory\n     \
             WHERE film_id = p_film_id\n     AND store_id = p_store_id\n     AND inventory_in_stock(inventory_id)\n     INTO p_film_count;\nEND",
        ),
        o(
            ObjectKind::Trigger,
            "customer_create_date",
            "CREATE DEFINER=`root`@`localhost` TRIGGER customer_create_date BEFORE INSERT ON customer\n\tFOR EACH ROW SET NEW.create_date = NOW()",
        ),
        o(
            ObjectKind::Event,
            "purge",
            "CREATE DEFINER=`root`@`localhost` EVENT `purge` ON SCHEDULE EVERY 1 HOUR STARTS '2026-01-01 00:00:00' \
             ON COMPLETION NOT PRESERVE ENABLE DO DELETE FROM page_views WHERE seen_at < NOW() - INTERVAL 7 DAY",
        ),
    ]
}

fn ddl(c: &mut Criterion) {
    let objects = objects();
    let create_table = "CREATE TABLE `film` (\n  `film_id` smallint(5) unsigned NOT NULL AUTO_INCREMENT,\n  \
        `title` varchar(128) NOT NULL,\n  `description` text DEFAULT NULL,\n  `release_year` year(4) DEFAULT NULL,\n  \
        `language_id` tinyint(3) unsigned NOT NULL,\n  `rental_rate` decimal(4,2) NOT NULL DEFAULT 4.99,\n  \
        `last_update` timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),\n  \
        PRIMARY KEY (`film_id`),\n  KEY `idx_title` (`title`),\n  \
        CONSTRAINT `fk_film_language` FOREIGN KEY (`language_id`) REFERENCES `sakila`.`language` (`language_id`) ON UPDATE CASCADE\n\
        ) ENGINE=MyISAM AUTO_INCREMENT=1001 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci";
    let map: std::collections::BTreeMap<String, String> =
        [("sakila".to_string(), "sakila_v2".to_string())].into();
    let mut g = c.benchmark_group("ddl_rewrite");
    g.throughput(Throughput::Elements(objects.len() as u64));
    g.bench_function(
        "definer_and_security_of_view_procedure_trigger_event",
        |b| {
            b.iter(|| {
                for o in &objects {
                    let _ = black_box(rewrite::destination_sql(black_box(o)));
                }
            })
        },
    );
    g.throughput(Throughput::Elements(1));
    g.bench_function("create_table_engine_and_database_mapping", |b| {
        b.iter(|| {
            let sql = rewrite::set_engine(black_box(create_table), "InnoDB");
            black_box(sql.and_then(|s| rewrite::map_databases(&s, &map)))
        })
    });
    g.finish();
}

criterion_group!(benches, decoding, sql_batches, ddl);
criterion_main!(benches);
