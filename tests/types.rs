//! Every column type with its edge values round-trips exactly, judged by the servers' own output on both sides.

mod common;

use common::*;
use ferry_engine::migration::{self, RunOptions};

const TABLE: &str = "CREATE TABLE types.edge (
    id INT NOT NULL PRIMARY KEY,
    i8 TINYINT NULL, u8 TINYINT UNSIGNED NULL, i16 SMALLINT NULL, u16 SMALLINT UNSIGNED NULL,
    i24 MEDIUMINT NULL, u24 MEDIUMINT UNSIGNED NULL, i32 INT NULL, u32 INT UNSIGNED NULL,
    i64 BIGINT NULL, u64 BIGINT UNSIGNED NULL,
    dec_wide DECIMAL(65,30) NULL, dec_money DECIMAL(10,2) NULL, dec_int DECIMAL(20,0) UNSIGNED NULL,
    f FLOAT NULL, d DOUBLE NULL,
    b1 BIT(1) NULL, b64 BIT(64) NULL, b13 BIT(13) NULL,
    dt DATE NULL, dtm DATETIME NULL, dtm6 DATETIME(6) NULL, ts TIMESTAMP(6) NULL DEFAULT NULL,
    tm TIME NULL, tm6 TIME(6) NULL, y YEAR NULL,
    c CHAR(10) NULL, vc VARCHAR(300) NULL, l1 VARCHAR(20) CHARACTER SET latin1 NULL,
    bin BINARY(4) NULL, vbin VARBINARY(300) NULL, bl BLOB NULL, lbl LONGBLOB NULL, tx MEDIUMTEXT NULL,
    e ENUM('', 'a', 'b c', 'ü') NULL, s SET('x', 'y', 'z') NULL, j JSON NULL,
    g VARCHAR(10) CHARACTER SET ascii COLLATE ascii_bin NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

/// Each row stresses a different end of the ranges; row 1 is all NULL.
const ROWS: &[&str] = &[
    "INSERT INTO types.edge (id) VALUES (1)",
    "INSERT INTO types.edge VALUES (2,
        -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
        -9223372036854775808, 18446744073709551615,
        -99999999999999999999999999999999999.999999999999999999999999999999, -12345678.99, 99999999999999999999,
        -3.40282e38, -1.7976931348623157e308,
        b'1', b'1111111111111111111111111111111111111111111111111111111111111111', b'1010101010101',
        '1000-01-01', '1000-01-01 00:00:00', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000000',
        '-838:59:59', '-838:59:59.000000', 1901,
        'a', '', 'café',
        0x00, 0x00, '', '', '',
        '', '', '[]', '')",
    "INSERT INTO types.edge VALUES (3,
        127, 0, 32767, 0, 8388607, 0, 2147483647, 0,
        9223372036854775807, 0,
        99999999999999999999999999999999999.999999999999999999999999999999, 99999999.99, 0,
        3.40282e38, 1.7976931348623157e308,
        b'0', b'0', b'0',
        '9999-12-31', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999',
        '838:59:59', '838:59:59.999999', 2155,
        'trail  ', 'trailing spaces   ', 'Kraków',
        0x01020304, 0x00FF00FF00, 0x00, 0xFF, 'x',
        'ü', 'x,y,z', '{\"k\": [1, 2.5, \"ü\", null, true, {\"n\": {}}], \"e\": \"\"}', 'Z')",
    "INSERT INTO types.edge VALUES (4,
        0, 1, 0, 1, 0, 1, 0, 1,
        0, 1,
        0.000000000000000000000000000001, -0.01, 1,
        1.17549e-38, 4.9406564584124654e-324,
        NULL, b'1000000000000000000000000000000000000000000000000000000000000000', NULL,
        '0000-00-00', '0000-00-00 00:00:00', '2024-02-29 12:34:56.000001', '2024-02-29 12:34:56.5',
        '00:00:00', '-00:00:00.000001', 0,
        'Ωmega', 'emoji 😀 and 山田 and O''Brien and back\\\\slash', NULL,
        0x01, 0x27225C, 0x000102030405060708090A0B0C0D0E0F, NULL, 'tab\there\nnewline',
        'b c', 'y', '\"just a string\"', '')",
    "INSERT INTO types.edge VALUES (5,
        -1, 128, -1, 32768, -1, 8388608, -1, 2147483648,
        -1, 9223372036854775808,
        -0.000000000000000000000000000001, 0.00, 10000000000000000000,
        0.1, 0.1,
        b'1', b'11', b'1111111111111',
        '2000-02-29', '1999-12-31 23:59:59', '1999-12-31 23:59:59.999999', '2000-01-01 00:00:00.000000',
        '-00:00:01', '12:00:00.5', 2000,
        NULL, NULL, NULL,
        NULL, NULL, NULL, NULL, NULL,
        NULL, '', 'null', NULL)",
];

/// Inserts ROWS; zero dates need a permissive sql_mode on the source (the destination must accept whatever the source
/// holds).
async fn insert_rows(source: &ferry_sim::Instance) {
    use mysql_async::prelude::Queryable;
    let mut c = source.conn().await.expect("conn");
    c.query_drop("SET SESSION sql_mode = '', time_zone = '+00:00'")
        .await
        .expect("session");
    for r in ROWS {
        c.query_drop(*r)
            .await
            .unwrap_or_else(|e| panic!("{r}: {e}"));
    }
    let _ = c.disconnect().await;
}

/// An expression that prints a column exactly as the server stores it, independent of the client's decoding.
fn exact(col: &str) -> String {
    format!("IFNULL(HEX(CAST(`{col}` AS BINARY)), 'NULL')")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_values_round_trip_exactly() {
    let (source, destination) = pair().await;
    source
        .exec("SET GLOBAL time_zone = '+00:00'")
        .await
        .expect("time zone");
    source.exec("CREATE DATABASE types").await.expect("db");
    source.exec(TABLE).await.expect("table");
    insert_rows(&source).await;
    // Big values: every byte value, a 4 MiB blob, 100k of multi-byte text.
    source
        .exec(
            "INSERT INTO types.edge (id, bl, lbl, tx) SELECT 6,
               UNHEX(CONCAT((SELECT GROUP_CONCAT(LPAD(HEX(n), 2, '0') ORDER BY n SEPARATOR '') FROM
                 (SELECT a.d * 16 + b.d AS n FROM (SELECT 0 d UNION SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 UNION SELECT 5 UNION SELECT 6 UNION SELECT 7 UNION SELECT 8 UNION SELECT 9 UNION SELECT 10 UNION SELECT 11 UNION SELECT 12 UNION SELECT 13 UNION SELECT 14 UNION SELECT 15) a,
                       (SELECT 0 d UNION SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 UNION SELECT 5 UNION SELECT 6 UNION SELECT 7 UNION SELECT 8 UNION SELECT 9 UNION SELECT 10 UNION SELECT 11 UNION SELECT 12 UNION SELECT 13 UNION SELECT 14 UNION SELECT 15) b) bytes))),
               REPEAT(UNHEX('00FF7F80'), 1048576), REPEAT('ü山😀', 100000 / 3)",
        )
        .await
        .expect("big row");
    // The same rows without the BIT and JSON columns: every column text-loadable, so its chunks go through
    // LOAD DATA (the full table's go through INSERT).
    source
        .exec(
            "CREATE TABLE types.text_edge LIKE types.edge; \
             ALTER TABLE types.text_edge DROP COLUMN b1, DROP COLUMN b64, DROP COLUMN b13, DROP COLUMN j; \
             SET SESSION sql_mode = ''; \
             INSERT INTO types.text_edge SELECT id, i8, u8, i16, u16, i24, u24, i32, u32, i64, u64, dec_wide, \
               dec_money, dec_int, f, d, dt, dtm, dtm6, ts, tm, tm6, y, c, vc, l1, bin, vbin, bl, lbl, tx, e, s, g \
             FROM types.edge",
        )
        .await
        .expect("text_edge");
    let mut probes = Vec::new();
    for (table, columns) in [("edge", 38), ("text_edge", 34)] {
        let cols: Vec<String> = source
            .query(&format!("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'types' AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION"))
            .await
            .expect("columns");
        assert_eq!(cols.len(), columns);
        let probe = format!(
            "SELECT id, {} FROM types.{table} ORDER BY id",
            cols.iter()
                .skip(1)
                .map(|c| exact(c))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let before = rows(&source, &probe).await;
        assert_eq!(before.len(), 6);
        assert!(
            before[0].ends_with("|NULL"),
            "row 1 should be NULL everywhere: {}",
            before[0]
        );
        probes.push((table, cols, probe, before));
    }

    let mut cfg = task("types", &source, &destination, &["types"]);
    cfg.full.chunk_rows = 2; // several chunks, bounded by edge-valued keys
    let report = migration::run(&cfg, &RunOptions::default())
        .await
        .expect("migration");
    let copy = report.copy.expect("copy report");
    let text_chunks = count(
        &destination,
        "SELECT COUNT(*) FROM ferry_meta.chunks WHERE task = 'types' AND name = 'text_edge' AND `rows` > 0",
    )
    .await;
    assert!(text_chunks >= 3, "{text_chunks}");
    assert_eq!(
        copy.chunks_loaded, text_chunks,
        "every text_edge chunk with rows loaded (an empty chunk sends nothing), no edge chunk (BIT, JSON): {copy:?}"
    );

    // Compare per column so a failure names the table, the column and the row.
    for (table, cols, probe, before) in &probes {
        let after = rows(&destination, probe).await;
        assert_eq!(after.len(), before.len());
        for (b, a) in before.iter().zip(after.iter()) {
            for (i, (bv, av)) in b.split('|').zip(a.split('|')).enumerate() {
                let col = if i == 0 { "id" } else { cols[i].as_str() };
                assert_eq!(
                    bv,
                    av,
                    "{table}: column {col} of row {} differs",
                    b.split('|').next().unwrap_or("?")
                );
            }
        }
    }
    // The servers' own text for values whose binary form hides the rendering (timestamps in UTC, floats, JSON).
    let text = "SELECT id, CAST(ts AS CHAR), CAST(f AS CHAR), CAST(d AS CHAR), CAST(j AS CHAR), CAST(e AS CHAR), CAST(s AS CHAR), CAST(y AS CHAR) FROM types.edge ORDER BY id";
    assert_eq!(rows(&source, text).await, rows(&destination, text).await);
    assert_eq!(
        checksum(&source, "types.edge").await,
        checksum(&destination, "types.edge").await
    );
    assert!(checksum(&source, "types.edge").await.is_some());
    assert_eq!(
        checksum(&source, "types.text_edge").await,
        checksum(&destination, "types.text_edge").await
    );
    let text = "SELECT id, CAST(ts AS CHAR), CAST(f AS CHAR), CAST(d AS CHAR), CAST(e AS CHAR), CAST(s AS CHAR), CAST(y AS CHAR) FROM types.text_edge ORDER BY id";
    assert_eq!(rows(&source, text).await, rows(&destination, text).await);
    let v = verify(&cfg).await;
    assert!(v.consistent(), "{:?}", v.tables);
    assert_eq!(v.rows_checked(), 12);
}

/// Every column's SQL literal, as the apply path would write it.
fn literals(
    vals: &[ferry_engine::value::Value],
    t: &ferry_engine::schema::model::Table,
) -> Vec<String> {
    vals.iter()
        .zip(&t.columns)
        .map(|(v, c)| {
            let mut s = String::new();
            v.write_literal(c, &mut s).expect("literal");
            s
        })
        .collect()
}

/// The table's rows as the copy path reads and writes them.
async fn select_literals(
    conn: &mut mysql_async::Conn,
    t: &ferry_engine::schema::model::Table,
) -> Vec<Vec<String>> {
    use mysql_async::prelude::Queryable;
    let cols: Vec<&ferry_engine::schema::model::Column> = t.columns.iter().collect();
    let rows: Vec<mysql_async::Row> = conn
        .exec("SELECT * FROM types.edge ORDER BY id", ())
        .await
        .expect("select");
    rows.into_iter()
        .map(|r| {
            literals(
                &ferry_engine::copy::plan::decode_row(r, &cols).expect("decode"),
                t,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binlog_rows_decode_to_the_values_select_reads() {
    use ferry_engine::cdc::event::{Item, RowKind};
    use ferry_engine::cdc::position::Position;
    use ferry_engine::cdc::stream::BinlogReader;
    use ferry_engine::mysql::conn::{Role, Server};

    let (source, _unused) = pair().await;
    source.exec("CREATE DATABASE types").await.expect("db");
    source.exec(TABLE).await.expect("table");
    let server = Server::connect(&source.endpoint(), "source")
        .await
        .expect("connect");
    let pool = server.pool(Role::ReadRows, 1);
    let mut conn = pool.get_conn().await.expect("conn");
    let p0 = Position::current(&mut conn, server.info.flavor)
        .await
        .expect("position");
    insert_rows(&source).await;
    let objects = ferry_engine::config::Objects {
        databases: vec!["types".into()],
        ..Default::default()
    };
    let schema = ferry_engine::schema::introspect::read(&mut conn, &objects, "ferry_meta")
        .await
        .expect("introspect");
    let table = schema.tables[0].clone();
    let snapshot = select_literals(&mut conn, &table).await;
    source.exec("UPDATE types.edge SET i24 = -5, e = 'ü', s = 'y,z', ts = '2001-01-01 00:00:00.5' WHERE id = 3").await.expect("update");
    source
        .exec("DELETE FROM types.edge WHERE id = 4")
        .await
        .expect("delete");
    let after = select_literals(&mut conn, &table).await;
    drop(conn);
    let _ = pool.disconnect().await;

    let mut reader = BinlogReader::open(&server, &p0, 4_000_000 + source.server_id, &schema.tables)
        .await
        .expect("open");
    let (mut inserts, mut updates, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
    let mut gtids = 0;
    let mut rotates = Vec::new();
    while inserts.len() < ROWS.len() || updates.is_empty() || deletes.is_empty() {
        let item = tokio::time::timeout(std::time::Duration::from_secs(20), reader.next())
            .await
            .expect("binlog stream stalled")
            .expect("binlog item")
            .expect("stream ended");
        match item {
            Item::Begin { gtid } => {
                gtids += usize::from(!gtid.is_empty());
            }
            Item::Rows {
                kind,
                rows,
                table: t,
            } => {
                for (before, after_img) in rows {
                    match kind {
                        RowKind::Insert => {
                            inserts.push(literals(&after_img.expect("after image"), &t))
                        }
                        RowKind::Update => updates.push((
                            literals(&before.expect("before image"), &t),
                            literals(&after_img.expect("after image"), &t),
                        )),
                        RowKind::Delete => {
                            deletes.push(literals(&before.expect("before image"), &t))
                        }
                    }
                }
            }
            Item::Rotate { file, .. } => rotates.push(file),
            _ => {}
        }
    }
    assert!(
        gtids >= ROWS.len() + 2,
        "MariaDB GTID events were not delivered"
    );
    assert_eq!(inserts.len(), snapshot.len());
    for (b, s) in inserts.iter().zip(&snapshot) {
        for ((bv, sv), c) in b.iter().zip(s).zip(&table.columns) {
            assert_eq!(
                bv, sv,
                "column {} of row {}: binlog vs SELECT",
                c.name, s[0]
            );
        }
    }
    assert_eq!(updates, vec![(snapshot[2].clone(), after[2].clone())]);
    assert_eq!(deletes, vec![snapshot[3].clone()]);
}
