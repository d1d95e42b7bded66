//! Online migration: full copy then binlog sync while a seeded workload writes to the source; a transaction spans
//! the copy start; kill -9 during copy and during sync; the destination ends verifier-equal with nothing lost or
//! duplicated.

mod common;

use common::*;
use ferry_engine::cdc::sync::Control;
use ferry_engine::config::{MigrationType, TaskConfig};
use ferry_engine::migration::{self, RunOptions};
use ferry_sim::{datagen, workload, Instance};
use mysql_async::prelude::Queryable;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn online_task(name: &str, source: &Instance, destination: &Instance) -> TaskConfig {
    let mut cfg = task(name, source, destination, &[datagen::SHOP_DB]);
    cfg.task.types.push(MigrationType::Incremental);
    cfg.full.workers = 2;
    cfg.full.chunk_rows = 500;
    cfg
}

async fn expect_equal(cfg: &TaskConfig, source: &Instance, destination: &Instance, db: &str) {
    let v = verify(cfg).await;
    assert!(v.consistent(), "verifier found differences: {v:?}");
    assert_same_data(source, destination, db).await;
}

/// Full copy then sync of `db` while `writers` run `kind`'s workload; at least `transactions_min` are applied
/// under load, then writes stop, ferry drains to the source's position and the two sides must be equal.
async fn online(
    name: &str,
    source: &Instance,
    destination: &Instance,
    db: &str,
    kind: workload::Kind,
    transactions_min: u64,
    before_copy: impl std::future::Future<Output = ()>,
) -> migration::RunReport {
    let mut cfg = task(name, source, destination, &[db]);
    cfg.task.types.push(MigrationType::Incremental);
    cfg.full.workers = 2;
    cfg.full.chunk_rows = 500;

    let stop = Arc::new(AtomicBool::new(false));
    let ep = source.endpoint();
    let wl = {
        let stop = stop.clone();
        let seed = seed();
        tokio::spawn(async move { workload::run(&ep, kind, seed, 3, u64::MAX, stop).await })
    };
    let (ctl, run) = start_run(&cfg);
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(destination, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'ferry_meta' AND TABLE_NAME = 'cdc'").await == 0
        || count(destination, "SELECT COUNT(*) FROM ferry_meta.cdc WHERE p0 IS NOT NULL").await == 0
    {
        if run.is_finished() {
            let r = run.await.expect("run task");
            panic!("the run ended before recording P0: {:?}", r.err());
        }
        assert!(Instant::now() < deadline, "timed out waiting for P0");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    before_copy.await;
    for (what, sql, at_least) in [
        (
            "the copy",
            "SELECT COUNT(*) FROM ferry_meta.task WHERE full_done_at IS NOT NULL",
            1,
        ),
        // Sync under load.
        (
            "sync",
            "SELECT CAST(transactions AS UNSIGNED) FROM ferry_meta.cdc",
            transactions_min,
        ),
    ] {
        if wait_for(what, destination, sql, at_least, &mut || !run.is_finished())
            .await
            .is_none()
        {
            let r = run.await.expect("run task");
            panic!("the run ended while waiting for {what}: {:?}", r.err());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let stats = wl.await.expect("workload task").expect("workload");
    eprintln!("workload: {stats:?}");
    assert!(
        stats.transactions >= transactions_min,
        "workload too small: {stats:?}"
    );
    ctl.send(Control::Drain).expect("drain");
    let report = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("drain finished in time")
        .expect("run task")
        .expect("migration");
    let sync = report.sync.as_ref().expect("sync report");
    eprintln!("sync: {sync:?}");
    assert_eq!(sync.ended, "drained");
    assert_eq!(format!("{:?}", sync.mode), "Exact", "P1 was passed");
    assert_eq!(report.phase.as_str(), "incremental");
    assert_eq!(
        count(destination, "SELECT COUNT(*) FROM ferry_meta.parked").await,
        0,
        "every parked row was re-created by a later event"
    );
    expect_equal(&cfg, source, destination, db).await;
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn online_migration_under_concurrent_writes_ends_verifier_equal() {
    logs();
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 1).await.expect("shop");

    // A transaction that starts before the copy and commits after P0 is recorded.
    let pool = mysql_async::Pool::new(
        mysql_async::OptsBuilder::default()
            .ip_or_hostname(source.endpoint().host)
            .tcp_port(source.port())
            .user(Some(source.endpoint().user))
            .pass(source.endpoint().password)
            .prefer_socket(false),
    );
    let mut long = pool.get_conn().await.expect("conn");
    long.query_drop("BEGIN").await.expect("begin");
    long.query_drop("UPDATE shop.customers SET name = 'spans the copy start' WHERE id <= 50")
        .await
        .expect("update");
    long.query_drop("DELETE FROM shop.orders WHERE id IN (SELECT id FROM (SELECT id FROM shop.orders ORDER BY id LIMIT 20) x)")
        .await
        .expect("delete");
    let commit = async {
        long.query_drop("COMMIT").await.expect("commit");
    };
    online(
        "online",
        &source,
        &destination,
        datagen::SHOP_DB,
        workload::Kind::Shop,
        200,
        commit,
    )
    .await;
    drop(long);
    let _ = pool.disconnect().await;
    // Triggers wait for cutover: the destination has none yet, so nothing fired twice.
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'shop'"
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sakila_online_under_concurrent_writes_ends_verifier_equal() {
    logs();
    let (source, destination) = pair().await;
    let dir = datasets().join("sakila");
    source
        .load_sql_file(&dir.join("sakila-schema.sql"))
        .await
        .expect("loading sakila schema");
    source
        .load_sql_file(&dir.join("sakila-data.sql.gz"))
        .await
        .expect("loading sakila data");
    online(
        "sakila-online",
        &source,
        &destination,
        "sakila",
        workload::Kind::Sakila,
        300,
        async {},
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_copy_and_during_sync_loses_and_duplicates_nothing() {
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 3).await.expect("shop");
    let mut cfg = online_task("killed", &source, &destination);
    cfg.full.workers = 1;
    cfg.full.chunk_rows = 300;
    cfg.incremental.batch_rows = 50;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_task(&dir, &cfg);

    let stop = Arc::new(AtomicBool::new(false));
    let ep = source.endpoint();
    let wl = {
        let stop = stop.clone();
        let seed = seed();
        tokio::spawn(async move { workload::run_shop(&ep, seed, 2, u64::MAX, stop).await })
    };

    // 1. Kill -9 in the middle of the copy.
    let mut child = Reap(spawn_run(&file, 1));
    wait_for(
        "copied chunks",
        &destination,
        "SELECT COUNT(*) FROM ferry_meta.chunks WHERE task = 'killed' AND done_at IS NOT NULL",
        10,
        &mut || running(&mut child.0),
    )
    .await
    .expect("the run ended during the copy");
    child.0.kill().expect("kill -9");
    let _ = child.0.wait();
    let full_done = count(
        &destination,
        "SELECT COUNT(*) FROM ferry_meta.task WHERE full_done_at IS NOT NULL",
    )
    .await;
    assert_eq!(
        full_done, 0,
        "the copy finished before the kill; make the data set larger"
    );

    // 2. Resume; kill -9 again while sync applies the binlog under load.
    let mut child = Reap(spawn_run(&file, 2));
    wait_for(
        "the copy",
        &destination,
        "SELECT COUNT(*) FROM ferry_meta.task WHERE full_done_at IS NOT NULL",
        1,
        &mut || running(&mut child.0),
    )
    .await
    .expect("the run ended during the copy");
    let before = wait_for(
        "sync",
        &destination,
        "SELECT CAST(transactions AS UNSIGNED) FROM ferry_meta.cdc",
        100,
        &mut || running(&mut child.0),
    )
    .await
    .expect("the run ended during sync");
    child.0.kill().expect("kill -9");
    let _ = child.0.wait();

    // 3. Writes go on while ferry is down; then a third run resumes from the checkpoint.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut child = Reap(spawn_run(&file, 3));
    wait_for(
        "sync after restart",
        &destination,
        "SELECT CAST(transactions AS UNSIGNED) FROM ferry_meta.cdc",
        before + 100,
        &mut || running(&mut child.0),
    )
    .await
    .expect("the run ended during sync after restart");
    // The status of a task syncing under load, read by another process.
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["status", "-c", &file, "--json"])
        .output()
        .expect("ferry status");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json status");
    let inc = &st["incremental"];
    assert_eq!(st["phase"], "incremental", "{st}");
    assert!(inc["checkpoint"]["file"].is_string(), "{st}");
    assert!(inc["source_position"]["file"].is_string(), "{st}");
    assert!(
        inc["lag_s"]
            .as_f64()
            .is_some_and(|l| (0.0..120.0).contains(&l)),
        "{st}"
    );
    assert!(
        inc["transactions"]
            .as_u64()
            .is_some_and(|t| t >= before + 100),
        "{st}"
    );
    let tables = inc["tables"].as_array().expect("tables");
    assert_eq!(tables.len(), 6, "{st}");
    assert!(tables.iter().all(|t| t["state"] == "syncing"), "{st}");
    child.0.kill().expect("kill -9");
    let _ = child.0.wait();
    stop.store(true, Ordering::Relaxed);
    let stats = wl.await.expect("workload task").expect("workload");
    eprintln!("workload: {stats:?}");

    // The MariaDB restarts resumed by GTID (the checkpoint's GTID list through @slave_connect_state).
    for n in [2, 3] {
        let log = run_log(&file, n);
        assert!(!log.is_empty(), "run {n} left no log");
        if source.version.contains("MariaDB") {
            assert!(log.contains("by=Gtid"), "run {n} did not resume by GTID");
        }
    }

    // 4. Catch up and compare.
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "-c", &file, "--until-caught-up", "--json"])
        .output()
        .expect("ferry run --until-caught-up");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["sync"]["ended"], "drained", "{report}");
    assert_eq!(report["phase_at_start"], "incremental", "{report}");
    assert_eq!(report["sync"]["mode"], "exact", "P1 was passed: {report}");
    // Rows the copy or catch-up parked were all re-created by later events.
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM ferry_meta.parked").await,
        0
    );
    expect_equal(&cfg, &source, &destination, datagen::SHOP_DB).await;
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["status", "-c", &file])
        .output()
        .expect("ferry status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("incremental (exact mode)"), "{text}");
    assert!(text.contains("shop.customers"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binlog_purged_past_the_checkpoint_stops_with_a_code_and_writes_nothing() {
    logs();
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 1).await.expect("shop");
    let cfg = online_task("purged", &source, &destination);
    let (ctl, run) = start_run(&cfg);
    // The row must come through the binlog (not the copy): write it once sync runs. Before that, with nothing
    // written to the source, the heartbeat alone moves the checkpoint.
    let run = wait_synced(&destination, "purged", run, 2).await;
    source
        .exec("INSERT INTO shop.customers (email, name, created_at) VALUES ('before-stop@example.org', 'b', NOW())")
        .await
        .expect("insert");
    wait_for(
        "the first row applied",
        &destination,
        "SELECT COUNT(*) FROM shop.customers WHERE email = 'before-stop@example.org'",
        1,
        &mut || !run.is_finished(),
    )
    .await
    .expect("the run ended early");
    ctl.send(Control::Stop).expect("stop");
    run.await.expect("run task").expect("first run");
    let checkpoint_file: String = destination
        .query_first("SELECT JSON_VALUE(checkpoint, '$.file') FROM ferry_meta.cdc")
        .await
        .expect("checkpoint")
        .expect("a checkpoint was written");

    // While ferry is down the source writes on, rotates its binlog and purges the files the checkpoint is in.
    // The server keeps a file a dump thread still reads, so wait until ferry's dump session is gone.
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(
        &source,
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
    )
    .await
        > 0
    {
        assert!(
            Instant::now() < deadline,
            "ferry's binlog dump session outlived the run"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    source
        .exec("INSERT INTO shop.customers (email, name, created_at) VALUES ('while-down@example.org', 'w', NOW())")
        .await
        .expect("insert");
    source.exec("FLUSH BINARY LOGS").await.expect("flush");
    let current: Vec<(String, u64)> = source.query("SHOW BINARY LOGS").await.expect("logs");
    let last = current.last().map(|(f, _)| f.clone()).expect("a binlog");
    // MariaDB keeps a file until its binlog checkpoint (InnoDB durability of the file's transactions) moved on.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        source
            .exec(&format!("PURGE BINARY LOGS TO '{last}'"))
            .await
            .expect("purge");
        let left: Vec<(String, u64)> = source.query("SHOW BINARY LOGS").await.expect("logs");
        if left.iter().all(|(f, _)| *f != checkpoint_file) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{checkpoint_file} was not purged: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let checkpoint = || async {
        rows(
            &destination,
            "SELECT CONCAT_WS(' ', checkpoint, transactions, `rows`) FROM ferry_meta.cdc",
        )
        .await
    };
    let before = checkpoint().await;
    let customers = count(&destination, "SELECT COUNT(*) FROM shop.customers").await;

    let err = tokio::time::timeout(
        Duration::from_secs(60),
        migration::run(&cfg, &RunOptions::default()),
    )
    .await
    .expect("the resumed run must stop by itself")
    .expect_err("resuming past a purged binlog must fail");
    assert_eq!(err.code().id, "FERRY-CDC-005", "{err}");
    assert!(err.hint().contains("binlog"), "{}", err.hint());
    assert_eq!(checkpoint().await, before, "the checkpoint moved");
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM shop.customers").await,
        customers,
        "rows were written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_binlog_ferry_cannot_read_is_refused_before_anything_is_written() {
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 1).await.expect("shop");
    source
        .exec("SET GLOBAL binlog_format = 'MIXED'")
        .await
        .expect("binlog_format");
    source
        .exec("SET GLOBAL binlog_row_image = 'MINIMAL'")
        .await
        .expect("binlog_row_image");
    let cfg = online_task("unreadable", &source, &destination);

    let report = ferry_engine::precheck::run(&cfg).await;
    assert!(report.failed());
    let failed: Vec<&str> = report
        .items
        .iter()
        .filter(|i| i.code == Some("FERRY-CDC-004"))
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(failed, ["source binlog_format", "source binlog_row_image"]);

    let err = migration::run(&cfg, &RunOptions::default())
        .await
        .expect_err("refused");
    assert_eq!(err.code().id, "FERRY-CDC-004", "{err}");
    let text = err.to_string();
    assert!(
        text.contains("source binlog_format [FERRY-CDC-004]: MIXED (expected ROW)")
            && text.contains("source binlog_row_image [FERRY-CDC-004]: MINIMAL (expected FULL)"),
        "{text}"
    );
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('shop', 'ferry_meta')"
        )
        .await,
        0,
        "nothing may be written to the destination"
    );
}
