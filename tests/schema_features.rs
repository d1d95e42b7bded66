//! Schema features beyond the sample databases: spatial columns and indexes, partitions, generated columns,
//! AUTO_INCREMENT counters, invisible-to-copy columns and odd identifiers.

mod common;

use common::*;
use ferry_engine::migration::{self, RunOptions};

const SETUP: &[&str] = &[
    "CREATE DATABASE `odd db` CHARACTER SET latin1 COLLATE latin1_swedish_ci",
    "CREATE TABLE `odd db`.`places` (
        id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        pt POINT NOT NULL,
        area POLYGON NULL,
        any_shape GEOMETRY NULL,
        name VARCHAR(40) NOT NULL,
        name_len INT AS (CHAR_LENGTH(name)) VIRTUAL,
        name_upper VARCHAR(40) AS (UPPER(name)) STORED,
        SPATIAL KEY sp_pt (pt),
        KEY ix_upper (name_upper)
     ) ENGINE=InnoDB",
    "INSERT INTO `odd db`.`places` (pt, area, any_shape, name) VALUES
        (ST_GeomFromText('POINT(1 2)'), ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0))'), NULL, 'one'),
        (ST_GeomFromText('POINT(-179.999999 89.123456789)'), NULL, ST_GeomFromText('LINESTRING(0 0,1 1,2 4)'), 'två'),
        (ST_GeomFromText('POINT(0 0)'), NULL, ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1),LINESTRING(0 0,3 3))'), 'three')",
    "DELETE FROM `odd db`.`places` WHERE id = 3",
    "CREATE TABLE `odd db`.`events by month` (
        id BIGINT NOT NULL,
        happened DATE NOT NULL,
        `select` VARCHAR(10) NULL,
        PRIMARY KEY (id, happened)
     ) ENGINE=InnoDB
     PARTITION BY RANGE (YEAR(happened)) (
        PARTITION p2022 VALUES LESS THAN (2023),
        PARTITION p2023 VALUES LESS THAN (2024),
        PARTITION pmax VALUES LESS THAN MAXVALUE)",
    "INSERT INTO `odd db`.`events by month` VALUES (1, '2022-05-01', 'a'), (2, '2023-07-01', 'b`c'), (3, '2030-01-01', NULL)",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spatial_partitions_generated_and_auto_increment() {
    let (source, destination) = pair().await;
    for sql in SETUP {
        source
            .exec(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let cfg = task("features", &source, &destination, &["odd db"]);
    migration::run(&cfg, &RunOptions::default())
        .await
        .expect("migration");

    // The table definitions are identical, AUTO_INCREMENT counter and partitions included.
    for t in ["places", "events by month"] {
        let sql = format!("SHOW CREATE TABLE `odd db`.`{t}`");
        let s: Option<(String, String)> = source.query_first(&sql).await.expect("source");
        let d: Option<(String, String)> = destination.query_first(&sql).await.expect("destination");
        assert_eq!(s, d, "{t}");
    }
    let ai = "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'odd db' AND TABLE_NAME = 'places'";
    assert_eq!(count(&destination, ai).await, 4);
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = 'odd db' AND TABLE_NAME = 'events by month'").await,
        3
    );
    assert_eq!(
        rows(&destination, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'odd db'").await,
        vec!["latin1|latin1_swedish_ci".to_string()]
    );

    // Spatial values byte for byte, and usable through the spatial index.
    let probe = "SELECT id, HEX(pt), IFNULL(HEX(area), 'NULL'), IFNULL(HEX(any_shape), 'NULL'), name, name_len, name_upper FROM `odd db`.`places` ORDER BY id";
    assert_eq!(rows(&source, probe).await, rows(&destination, probe).await);
    assert_eq!(rows(&destination, probe).await.len(), 2);
    let within = "SELECT name FROM `odd db`.`places` WHERE MBRWithin(pt, ST_GeomFromText('POLYGON((0 0,5 0,5 5,0 5,0 0))'))";
    assert_eq!(rows(&destination, within).await, vec!["one".to_string()]);
    let parts = "SELECT PARTITION_NAME, TABLE_ROWS FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = 'odd db' AND TABLE_NAME = 'events by month' ORDER BY PARTITION_ORDINAL_POSITION";
    assert_eq!(rows(&source, parts).await, rows(&destination, parts).await);

    assert_same_data(&source, &destination, "odd db").await;
    let v = verify(&cfg).await;
    assert!(v.consistent(), "{:?}", v.tables);
    assert_eq!(v.rows_checked(), 5);
}
