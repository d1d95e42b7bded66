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
use std::process::{Command, Stdio};
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

/// Polls `sql` on the destination until it reaches `at_least`; `None` when `alive` says the run ended first.
async fn wait_for(
    what: &str,
    destination: &Instance,
    sql: &str,
    at_least: u64,
    alive: &mut dyn FnMut() -> bool,
) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let n: Option<u64> = destination.query_first(sql).await.unwrap_or(None);
        if n.unwrap_or(0) >= at_least {
            return n;
        }
        if !alive() {
            eprintln!("the run ended while waiting for {what}");
            return None;
        }
        if Instant::now() >= deadline {
            let pl = rows(destination, "SELECT CONCAT_WS(' | ', ID, USER, COMMAND, TIME, STATE, LEFT(INFO, 200)) FROM information_schema.PROCESSLIST").await;
            panic!(
                "timed out waiting for {what}; destination sessions:\n{}",
                pl.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("ferry_engine=info")),
        )
        .with_test_writer()
        .try_init();
}

fn seed() -> u64 {
    let s = std::env::var("FERRY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::random::<u32>() as u64);
    eprintln!("workload seed {s} (FERRY_SEED={s} reproduces it)");
    s
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
    let (ctl, rx) = tokio::sync::watch::channel(Control::Run);
    let run = {
        let cfg = cfg.clone();
        tokio::spawn(async move {
            migration::run(
                &cfg,
                &RunOptions {
                    progress: false,
                    control: Some(rx),
                },
            )
            .await
        })
    };
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

fn write_task(dir: &tempfile::TempDir, cfg: &TaskConfig) -> String {
    let path = dir.path().join("task.toml");
    std::fs::write(&path, cfg.to_toml()).expect("writing task file");
    path.to_string_lossy().into_owned()
}

/// Kills a `ferry run` left running when the test fails, so it does not outlive the test.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn running(child: &mut std::process::Child) -> bool {
    matches!(child.try_wait(), Ok(None))
}

/// Starts `ferry run` in the background; its debug log goes to a file kept after the test (path printed).
fn spawn_run(file: &str, n: u32) -> std::process::Child {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("incremental-logs");
    std::fs::create_dir_all(&dir).expect("log dir");
    let path = dir.join(format!("run-{n}.log"));
    eprintln!("ferry run #{n} logs to {}", path.display());
    let log = std::fs::File::create(&path).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "-c", file, "--json"])
        .env("RUST_LOG", "ferry_engine=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawning ferry run")
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
    child.0.kill().expect("kill -9");
    let _ = child.0.wait();
    stop.store(true, Ordering::Relaxed);
    let stats = wl.await.expect("workload task").expect("workload");
    eprintln!("workload: {stats:?}");

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
}
