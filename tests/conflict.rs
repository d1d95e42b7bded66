//! Conflict modes against real servers: precheck_and_report refuses existing objects; ignore_and_proceed adopts
//! them, keeps destination rows during the copy, overwrites them during sync, writes only common columns, and
//! refuses a destination column nothing can fill.

mod common;

use common::*;
use ferry_engine::cdc::sync::Control;
use ferry_engine::config::{ConflictMode, MigrationType};
use ferry_engine::migration::{self, RunOptions};
use ferry_engine::precheck::{self, Outcome};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ignore_and_proceed_adopts_keeps_then_overwrites_and_writes_common_columns() {
    let (source, destination) = pair().await;
    for s in [
        "CREATE DATABASE cm",
        "CREATE TABLE cm.same (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(20))",
        "CREATE TABLE cm.narrow (id INT PRIMARY KEY, a INT, b INT)",
        "CREATE TABLE cm.fresh (id INT PRIMARY KEY, a INT)",
        "INSERT INTO cm.same SELECT seq, seq * 10, 'source' FROM cm.seq_1_to_100",
        "INSERT INTO cm.narrow SELECT seq, seq, seq FROM cm.seq_1_to_100",
        "INSERT INTO cm.fresh SELECT seq, seq FROM cm.seq_1_to_100",
    ] {
        source.exec(s).await.expect(s);
    }
    for s in [
        "CREATE DATABASE cm",
        "CREATE TABLE cm.same (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(20))",
        "INSERT INTO cm.same VALUES (5, 500, 'destination'), (1000, 1, 'only here')",
        "CREATE TABLE cm.narrow (id INT PRIMARY KEY, a INT)",
    ] {
        destination.exec(s).await.expect(s);
    }
    let mut cfg = task("conflicts", &source, &destination, &["cm"]);
    cfg.task.types.push(MigrationType::Incremental);

    // Default mode: refused, naming both existing tables.
    let r = precheck::run(&cfg).await;
    let names = r
        .items
        .iter()
        .find(|i| i.name == "names free on the destination")
        .expect("item");
    assert_eq!(
        (names.outcome, names.code),
        (Outcome::Failure, Some("FERRY-SCH-001"))
    );
    assert!(
        names.found.contains("cm.same") && names.found.contains("cm.narrow"),
        "{}",
        names.found
    );

    cfg.schema.conflict_mode = ConflictMode::IgnoreAndProceed;
    let r = precheck::run(&cfg).await;
    assert!(!r.failed(), "{:#?}", r.items);
    let common = r
        .items
        .iter()
        .find(|i| i.name == "existing tables have the source's columns")
        .expect("item");
    assert_eq!(
        (common.outcome, common.code),
        (Outcome::Warning, Some("FERRY-PRE-012"))
    );
    assert!(
        common.found.contains("cm.narrow lacks b"),
        "{}",
        common.found
    );

    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "conflicts", run, 0).await;
    // The copy kept the destination's row 5 and its own row 1000.
    assert_eq!(
        rows(
            &destination,
            "SELECT CONCAT_WS(',', id, v, note) FROM cm.same WHERE id IN (4, 5, 1000) ORDER BY id"
        )
        .await,
        ["4,40,source", "5,500,destination", "1000,1,only here"]
    );
    for s in [
        "UPDATE cm.same SET v = v + 1 WHERE id = 5",
        "INSERT INTO cm.same VALUES (101, 1010, 'new')",
        "UPDATE cm.narrow SET a = -a, b = -b WHERE id <= 3",
        "INSERT INTO cm.fresh VALUES (101, 101)",
    ] {
        source.exec(s).await.expect(s);
    }
    ctl.send(Control::Drain).expect("drain");
    let report = run.await.expect("run task").expect("migration");
    assert_eq!(
        report.schema_pre.adopted,
        ["table cm.narrow", "table cm.same"]
    );
    assert_eq!(
        format!("{:?}", report.sync.as_ref().map(|s| s.mode)),
        "Some(CatchUp)",
        "sync stays idempotent"
    );
    let st = ferry_engine::status::read(&cfg).await.expect("status");
    assert_eq!(st.incremental.map(|i| i.mode), Some("catch_up"));
    // Sync overwrote row 5 with the source's; the destination-only row stays.
    assert_eq!(
        rows(&destination, "SELECT CONCAT_WS(',', id, v, note) FROM cm.same WHERE id IN (5, 101, 1000) ORDER BY id").await,
        ["5,51,source", "101,1010,new", "1000,1,only here"]
    );
    assert_eq!(
        rows(
            &destination,
            "SELECT CONCAT_WS(',', id, a) FROM cm.narrow WHERE id <= 4 ORDER BY id"
        )
        .await,
        ["1,-1", "2,-2", "3,-3", "4,4"]
    );
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM cm.narrow").await,
        100
    );
    assert_eq!(
        checksum(&source, "cm.fresh").await,
        checksum(&destination, "cm.fresh").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_column_nothing_fills_is_refused() {
    let (source, destination) = pair().await;
    source.exec("CREATE DATABASE cm2").await.expect("db");
    source
        .exec("CREATE TABLE cm2.t (id INT PRIMARY KEY, a INT)")
        .await
        .expect("t");
    destination.exec("CREATE DATABASE cm2").await.expect("db");
    destination
        .exec("CREATE TABLE cm2.t (id INT PRIMARY KEY, a INT, must INT NOT NULL, fine INT NOT NULL DEFAULT 0)")
        .await
        .expect("t");
    let mut cfg = task("unfillable", &source, &destination, &["cm2"]);
    cfg.schema.conflict_mode = ConflictMode::IgnoreAndProceed;
    let r = precheck::run(&cfg).await;
    let i = r
        .items
        .iter()
        .find(|i| i.name == "existing tables can take the source's rows")
        .expect("item");
    assert_eq!(
        (i.outcome, i.code),
        (Outcome::Failure, Some("FERRY-PRE-013"))
    );
    assert!(
        i.found.contains("cm2.t: must") && !i.found.contains("fine"),
        "{}",
        i.found
    );
    let err = migration::run(&cfg, &RunOptions::default())
        .await
        .expect_err("refused");
    assert_eq!(err.code().id, "FERRY-PRE-013");
}
