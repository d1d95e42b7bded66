//! The copy's LOAD DATA LOCAL path against a real server: a load is kept only when every row arrived as sent
//! (duplicates and values the column cannot hold are refused, not skipped), a server with local_infile off is
//! noticed and the copy goes on by INSERT, and the handler serves nothing but staged buffers.

mod common;

use common::*;
use ferry_engine::copy::load::{self, Outcome};
use ferry_engine::migration::{self, RunOptions};
use ferry_engine::mysql::conn::{Role, Server};
use ferry_engine::schema::model::{Column, Key, Table};
use ferry_engine::value::Value;
use ferry_sim::datagen;
use mysql_async::TxOpts;

fn table() -> Table {
    let col = |n: &str, t: &str| Column {
        name: n.into(),
        data_type: t.into(),
        column_type: t.into(),
        charset: None,
        nullable: false,
        generated: false,
    };
    Table {
        db: "ld".into(),
        name: "t".into(),
        columns: vec![col("id", "int"), col("u", "varchar")],
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

fn text(rows: &[(i64, &str)]) -> Vec<u8> {
    let t = table();
    let cols: Vec<&Column> = t.columns.iter().collect();
    let mut out = Vec::new();
    for (id, u) in rows {
        load::write_row(
            &[Value::Int(*id), Value::Bytes(u.as_bytes().to_vec())],
            &cols,
            &mut out,
        )
        .expect("row");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_is_kept_only_when_every_row_arrived_as_sent() {
    let (_source, destination) = pair().await;
    destination
        .exec("CREATE DATABASE ld; CREATE TABLE ld.t (id INT PRIMARY KEY, u VARCHAR(5) NOT NULL UNIQUE) ENGINE=InnoDB; INSERT INTO ld.t VALUES (1, 'taken')")
        .await
        .expect("table");
    let server = Server::connect(&destination.endpoint(), "destination")
        .await
        .expect("connect");
    let pool = server.pool(Role::Write, 1);
    let t = table();
    let mut conn = pool.get_conn().await.expect("conn");

    for (rows, why) in [
        (vec![(2, "a\tb"), (3, "ok")], None),
        (vec![(4, "fine"), (5, "taken")], Some("1 of 2 rows loaded")),
        (vec![(6, "too long for five")], Some("warnings")),
    ] {
        let mut tx = conn.start_transaction(TxOpts::default()).await.expect("tx");
        let n = rows.len() as u64;
        let outcome = load::load(&mut tx, &t, &[0, 1], text(&rows), n)
            .await
            .expect("load ran");
        match (outcome, why) {
            (Outcome::Taken, None) => tx.commit().await.expect("commit"),
            (Outcome::Refused { why: got, disabled }, Some(want)) => {
                assert!(got.contains(want), "{got}");
                assert!(!disabled);
                tx.rollback().await.expect("rollback");
            }
            (Outcome::Taken, Some(want)) => panic!("{rows:?} was taken, expected refused: {want}"),
            (Outcome::Refused { why, .. }, None) => panic!("{rows:?} refused: {why}"),
        }
    }
    assert_eq!(
        rows(
            &destination,
            "SELECT CONCAT(id, '=', HEX(u)) FROM ld.t ORDER BY id"
        )
        .await,
        ["1=74616B656E", "2=610962", "3=6F6B"],
        "the refused loads left nothing behind"
    );

    // A server with local_infile off: refused as `disabled`, so the copy switches to INSERT.
    destination
        .exec("SET GLOBAL local_infile = 0")
        .await
        .expect("local_infile off");
    drop(conn);
    let _ = pool.disconnect().await;
    let pool = server.pool(Role::Write, 1);
    let mut conn = pool.get_conn().await.expect("conn");
    let mut tx = conn.start_transaction(TxOpts::default()).await.expect("tx");
    match load::load(&mut tx, &t, &[0, 1], text(&[(7, "x")]), 1).await {
        Ok(Outcome::Refused { disabled: true, .. }) => {}
        Ok(Outcome::Refused { why, .. }) => panic!("refused, but not as disabled: {why}"),
        Ok(Outcome::Taken) => panic!("loaded with local_infile off"),
        Err(e) => panic!("an error instead of a refusal: {e}"),
    }
    tx.rollback().await.expect("rollback");
    drop(conn);
    let _ = pool.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_goes_on_by_insert_where_load_data_is_off_or_turned_off() {
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 1).await.expect("shop");
    for (name, local_infile, load_data) in [("on", 1, true), ("off", 0, true), ("cfg", 1, false)] {
        destination
            .exec(&format!("SET GLOBAL local_infile = {local_infile}"))
            .await
            .expect("local_infile");
        let mut cfg = task(name, &source, &destination, &[datagen::SHOP_DB]);
        cfg.full.load_data = load_data;
        cfg.mapping.databases = [(datagen::SHOP_DB.to_string(), format!("shop_{name}"))].into();
        let report = migration::run(&cfg, &RunOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let copy = report.copy.expect("copy report");
        if name == "on" {
            assert!(copy.chunks_loaded > 0, "{name}: {copy:?}");
        } else {
            assert_eq!(copy.chunks_loaded, 0, "{name}: {copy:?}");
        }
        let v = verify(&cfg).await;
        assert!(v.consistent(), "{name}: {:?}", v.tables);
    }
}
