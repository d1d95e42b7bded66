//! Cutover against real servers: the fence holds when a stale `ferry run` resumes after the switch, a cutover
//! that cannot finish rolls back and leaves the task runnable, the REVOKE safeguard takes ferry's rights away, and
//! read_only holds: sessions it does not stop are named, and the final position waits for the binlog to stand still.

mod common;

use common::*;
use ferry_engine::config::MigrationType;
use ferry_engine::cutover;
use ferry_sim::datagen;
use mysql_async::prelude::Queryable;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn signal(child: &std::process::Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_process_resuming_after_cutover_is_fenced_and_cutover_is_safe_to_run_again() {
    logs();
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 1).await.expect("shop");
    let mut cfg = task("switch", &source, &destination, &[datagen::SHOP_DB]);
    cfg.task.types.push(MigrationType::Incremental);
    cfg.cutover.set_source_read_only = true;
    cfg.cutover.lag_s_max = 60; // the frozen process falls behind; the lag bound has its own test
    cfg.cutover.drain_s_max = 120;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_task(&dir, &cfg);

    // A `ferry run` process syncs under a workload, then is frozen (SIGSTOP) the way a stalled host would be.
    let wl = ShopWorkload::start(&source);
    let mut child = Reap(spawn_run(&file, 1));
    wait_for(
        "sync",
        &destination,
        "SELECT CAST(transactions AS UNSIGNED) FROM ferry_meta.cdc WHERE task = 'switch'",
        50,
        &mut || running(&mut child.0),
    )
    .await
    .expect("the run ended during sync");
    wl.finish().await;
    signal(&child.0, "-STOP");
    source
        .exec("INSERT INTO shop.customers (email, name, created_at) VALUES ('before-cutover@example.org', 'b', NOW())")
        .await
        .expect("insert");

    // The cutover applies what the frozen process did not, creates the post-data objects, and switches.
    let r = cutover::run(&cfg).await.expect("cutover");
    assert_eq!(r.outcome, "done", "{r:?}");
    assert_eq!(r.code, None, "{r:?}");
    assert!(r.generation >= 2, "{r:?}");
    for needle in [
        "fenced off",
        "read_only = ON",
        "applied the source up to",
        "created trigger shop.orders_status_audit",
        "enabled event shop.purge_page_views",
    ] {
        assert!(
            r.steps.iter().any(|s| s.contains(needle)),
            "{needle}: {:?}",
            r.steps
        );
    }
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM shop.customers WHERE email = 'before-cutover@example.org'"
        )
        .await,
        1
    );
    assert_eq!(
        rows(
            &destination,
            "SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'shop'"
        )
        .await,
        ["ENABLED"]
    );
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'shop'"
        )
        .await,
        1
    );
    assert_eq!(count(&source, "SELECT @@GLOBAL.read_only").await, 1);
    let v = verify(&cfg).await;
    assert!(v.consistent(), "{v:?}");
    let status = ferry_engine::status::read(&cfg).await.expect("status");
    assert_eq!(status.phase.as_str(), "cut_over");

    // The source takes writes again (a mistake, or fail-back), and the frozen process wakes up: it reads them from
    // the binlog but may not write them: the fence stops it with its code.
    source
        .exec("SET GLOBAL read_only = OFF")
        .await
        .expect("read_only off");
    source
        .exec("INSERT INTO shop.customers (email, name, created_at) VALUES ('after-cutover@example.org', 'a', NOW())")
        .await
        .expect("insert");
    signal(&child.0, "-CONT");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while running(&mut child.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the stale process kept running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status_code = child.0.wait().expect("wait");
    assert!(!status_code.success(), "the stale process exited 0");
    let log = run_log(&file, 1);
    assert!(
        log.contains("FERRY-CUT-001"),
        "stale process log: {}",
        &log[log.len().saturating_sub(3000)..]
    );
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM shop.customers WHERE email = 'after-cutover@example.org'"
        )
        .await,
        0,
        "a fenced process wrote to the destination"
    );

    // Safe to run again: it says so and changes nothing; a new `ferry run` refuses.
    let again = cutover::run(&cfg).await.expect("cutover again");
    assert_eq!(
        (again.outcome.as_str(), again.already),
        ("done", true),
        "{again:?}"
    );
    assert_eq!(again.generation, r.generation);
    let e = ferry_engine::migration::run(&cfg, &Default::default())
        .await
        .expect_err("a cut-over task does not run");
    assert_eq!(e.code().id, "FERRY-CUT-002", "{e}");

    // Released: the metadata goes, the name stays taken.
    let msg = ferry_engine::release::run(&cfg, false)
        .await
        .expect("release");
    assert!(msg.contains("released (was cut_over)"), "{msg}");
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM ferry_meta.chunks WHERE task = 'switch'"
        )
        .await
            + count(
                &destination,
                "SELECT COUNT(*) FROM ferry_meta.cdc WHERE task = 'switch'"
            )
            .await,
        0
    );
    let status = ferry_engine::status::read(&cfg).await.expect("status");
    assert_eq!(status.state, "released");
    let e = ferry_engine::migration::run(&cfg, &Default::default())
        .await
        .expect_err("a released task does not run");
    assert_eq!(e.code().id, "FERRY-CUT-002", "{e}");
    assert!(e.to_string().contains("released"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cutover_that_cannot_finish_rolls_back_and_the_task_runs_on() {
    logs();
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 1).await.expect("shop");
    let mut cfg = task("rollback", &source, &destination, &[datagen::SHOP_DB]);
    cfg.task.types.push(MigrationType::Incremental);
    cfg.incremental.heartbeat = false;
    cfg.cutover.quiet_wait_s = 3;
    cfg.cutover.lag_s_max = 1;

    // Synced (one transaction applied, so lag is measurable), then stopped while the source takes a write: the
    // destination falls behind, and the cutover refuses before it changes anything.
    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "rollback", run, 0).await;
    source
        .exec("INSERT INTO shop.customers (email, name, created_at) VALUES ('applied@example.org', 'a', NOW())")
        .await
        .expect("insert");
    let run = wait_synced(&destination, "rollback", run, 1).await;
    ctl.send(ferry_engine::cdc::sync::Control::Stop)
        .expect("stop");
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("stopped")
        .expect("run task")
        .expect("run");
    source
        .exec("INSERT INTO shop.customers (email, name, created_at) VALUES ('behind@example.org', 'b', NOW())")
        .await
        .expect("insert");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = cutover::run(&cfg).await.expect("cutover");
    assert_eq!(r.outcome, "rolled_back", "{r:?}");
    assert_eq!(r.code.as_deref(), Some("FERRY-CUT-003"), "{r:?}");
    assert!(r.reason.as_deref().unwrap_or("").contains("lag"), "{r:?}");
    assert!(
        r.lag_s.is_some_and(|l| l > 1.0),
        "a measured lag above the bound: {r:?}"
    );
    assert_eq!(r.generation, 0, "nothing changed: {r:?}");
    assert_eq!(
        count(
            &destination,
            "SELECT generation FROM ferry_meta.task WHERE task = 'rollback'"
        )
        .await,
        1
    );
    cfg.cutover.lag_s_max = 30;

    let wl = ShopWorkload::start(&source);
    let (_ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "rollback", run, 20).await;

    // The application keeps writing (nobody stopped it, read_only not asked for): the cutover rolls back.
    let r = cutover::run(&cfg).await.expect("cutover");
    assert_eq!(r.outcome, "rolled_back", "{r:?}");
    assert_eq!(r.code.as_deref(), Some("FERRY-CUT-003"), "{r:?}");
    assert!(
        r.reason
            .as_deref()
            .unwrap_or("")
            .contains("still being written"),
        "{r:?}"
    );
    // The running process was fenced off by the attempt ...
    let e = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("fenced in time")
        .expect("run task")
        .expect_err("fenced");
    assert_eq!(e.code().id, "FERRY-CUT-001", "{e}");
    let status = ferry_engine::status::read(&cfg).await.expect("status");
    assert_eq!(status.phase.as_str(), "incremental");
    let e = ferry_engine::release::run(&cfg, false)
        .await
        .expect_err("a task not cut over is released only with force");
    assert_eq!(e.code().id, "FERRY-CUT-003", "{e}");

    // ... and a new one takes over under the raised generation and converges.
    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "rollback", run, 0).await;
    wl.finish().await;
    ctl.send(ferry_engine::cdc::sync::Control::Drain)
        .expect("drain");
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("drained")
        .expect("run task")
        .expect("run");
    let v = verify(&cfg).await;
    assert!(v.consistent(), "{v:?}");
    let r = cutover::run(&cfg).await.expect("cutover");
    assert_eq!(r.outcome, "done", "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_destination_writes_takes_ferrys_rights_away_or_says_why_not() {
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 1).await.expect("shop");
    for s in [
        // Routines on a destination that logs its binlog need SUPER or this (a DBA's setup step).
        "SET GLOBAL log_bin_trust_function_creators = 1",
        "CREATE USER 'ferry_dst'@'%' IDENTIFIED BY 'dst-pw'",
        "GRANT ALL PRIVILEGES ON `shop`.* TO 'ferry_dst'@'%' WITH GRANT OPTION",
        "GRANT ALL PRIVILEGES ON `ferry_meta`.* TO 'ferry_dst'@'%'",
    ] {
        destination.exec(s).await.expect(s);
    }
    let mut cfg = task("revoke", &source, &destination, &[datagen::SHOP_DB]);
    cfg.destination.user = "ferry_dst".into();
    cfg.destination.password = Some("dst-pw".into());
    cfg.destination.password_env = None;
    cfg.cutover.revoke_destination_writes = true;
    ferry_engine::migration::run(&cfg, &Default::default())
        .await
        .expect("migration");
    let r = cutover::run(&cfg).await.expect("cutover");
    assert_eq!(
        (r.outcome.as_str(), r.code.as_deref()),
        ("done", None),
        "{r:?}"
    );
    assert!(
        r.steps
            .iter()
            .any(|s| s.contains("revoked ferry's write privileges on shop")),
        "{r:?}"
    );
    let grants = rows(&destination, "SHOW GRANTS FOR 'ferry_dst'@'%'").await;
    let on_shop: Vec<&String> = grants.iter().filter(|g| g.contains("`shop`.*")).collect();
    assert!(!on_shop.is_empty(), "{grants:?}");
    for g in on_shop {
        for p in ["ALL PRIVILEGES", "INSERT", "UPDATE", "DELETE"] {
            assert!(!g.contains(p), "{p} still granted: {g}");
        }
    }

    // An account with a global grant cannot be limited per database: the cutover says so with its code.
    let mut global = task("revoke-global", &source, &destination, &[datagen::SHOP_DB]);
    global.mapping.databases = [("shop".to_string(), "shop_g".to_string())].into();
    global.cutover.revoke_destination_writes = true;
    ferry_engine::migration::run(&global, &Default::default())
        .await
        .expect("migration");
    let r = cutover::run(&global).await.expect("cutover");
    assert_eq!(
        (r.outcome.as_str(), r.code.as_deref()),
        ("done", Some("FERRY-CUT-004")),
        "{r:?}"
    );
}

/// A connection to `inst` as `user` (an application account).
async fn conn_as(inst: &ferry_sim::Instance, user: &str, password: &str) -> mysql_async::Conn {
    let ep = inst.endpoint_as(user, password);
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(ep.host)
        .tcp_port(ep.port)
        .user(Some(user))
        .pass(Some(password))
        .prefer_socket(false);
    mysql_async::Conn::new(opts)
        .await
        .unwrap_or_else(|e| panic!("connecting as {user}: {e}"))
}

/// The application account of the privileged-writer tests: it writes shop's customers and holds the privilege
/// that lets it write despite read_only (READ_ONLY ADMIN on MariaDB, where SUPER no longer does since 10.11;
/// SUPER on MySQL, where super_read_only stops it anyway).
async fn privileged_app_account(source: &ferry_sim::Instance) -> &'static str {
    let bypass = if source.version.to_ascii_lowercase().contains("mariadb") {
        "READ_ONLY ADMIN ON *.*"
    } else {
        "SUPER ON *.*"
    };
    source
        .create_user("app_admin", "app-pw", &["SELECT, INSERT ON shop.*", bypass])
        .await
        .expect("application account");
    "app_admin"
}

/// An application session committing one customer every 50 ms until stopped (or refused by a read-only source).
struct Writer {
    id: u64,
    stop: Arc<AtomicBool>,
    committed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<u64>,
}

impl Writer {
    async fn start(source: &ferry_sim::Instance, user: &str, tag: &'static str) -> Writer {
        let mut c = conn_as(source, user, "app-pw").await;
        let id: u64 = c
            .query_first("SELECT CONNECTION_ID()")
            .await
            .expect("connection id")
            .expect("a row");
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(AtomicU64::new(0));
        let (flag, n) = (stop.clone(), committed.clone());
        let task = tokio::spawn(async move {
            while !flag.load(Ordering::Relaxed) {
                let i = n.load(Ordering::Relaxed);
                let r = c
                    .query_drop(format!(
                        "INSERT INTO shop.customers (email, name, created_at) VALUES ('{tag}-{i}@example.org', 'w', NOW())"
                    ))
                    .await;
                match r {
                    Ok(()) => {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                    // 1290: the server is read-only for this account (MySQL's super_read_only).
                    Err(mysql_async::Error::Server(e)) if e.code == 1290 => break,
                    Err(e) => panic!("writer {tag}: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = c.disconnect().await;
            n.load(Ordering::Relaxed)
        });
        Writer {
            id,
            stop,
            committed,
            task,
        }
    }

    /// Stops the writer `after` the source became read-only; the rows it had committed when it saw read_only.
    fn stop_after_read_only(
        &self,
        source: &ferry_sim::Instance,
        after: Duration,
    ) -> tokio::task::JoinHandle<u64> {
        let (stop, committed, root) = (self.stop.clone(), self.committed.clone(), source.url());
        tokio::spawn(async move {
            let mut c = mysql_async::Conn::from_url(root).await.expect("root");
            let deadline = Instant::now() + Duration::from_secs(300);
            loop {
                let ro: Option<u64> = c
                    .query_first("SELECT @@GLOBAL.read_only")
                    .await
                    .expect("read_only");
                if ro == Some(1) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the source never became read-only"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let at = committed.load(Ordering::Relaxed);
            tokio::time::sleep(after).await;
            stop.store(true, Ordering::Relaxed);
            let _ = c.disconnect().await;
            at
        })
    }

    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("writer task")
    }
}

/// The details of the task's recorded warnings with `code`.
async fn warnings(destination: &ferry_sim::Instance, task: &str, code: &str) -> Vec<String> {
    rows(
        destination,
        &format!(
            "SELECT detail FROM ferry_meta.warnings WHERE task = '{task}' AND code = '{code}' ORDER BY id"
        ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writer_read_only_does_not_stop_is_named_and_the_cutover_waits_for_it_or_rolls_back() {
    logs();
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 1).await.expect("shop");
    let mariadb = source.version.to_ascii_lowercase().contains("mariadb");
    let app = privileged_app_account(&source).await;
    let mut cfg = task("privileged", &source, &destination, &[datagen::SHOP_DB]);
    cfg.task.types.push(MigrationType::Incremental);
    cfg.cutover.set_source_read_only = true;
    cfg.cutover.lag_s_max = 30;
    cfg.cutover.drain_s_max = 120;
    cfg.cutover.quiet_wait_s = 5;

    // The application's privileged session never stops writing: the binlog never stands still, so the cutover
    // rolls back within its bound (read_only undone) and names the session.
    let (_ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "privileged", run, 1).await;
    let w = Writer::start(&source, app, "w1").await;
    let started = Instant::now();
    let r = cutover::run(&cfg).await.expect("cutover");
    let took = started.elapsed();
    let w1 = w.id;
    let n1 = w.finish().await;
    if mariadb {
        assert_eq!(
            (r.outcome.as_str(), r.code.as_deref()),
            ("rolled_back", Some("FERRY-CUT-003")),
            "{r:?}"
        );
        assert!(
            r.reason
                .as_deref()
                .unwrap_or("")
                .contains("still being written"),
            "{r:?}"
        );
        assert!(
            took < Duration::from_secs(5 + 30),
            "the rollback took {took:?}"
        );
        assert_eq!(count(&source, "SELECT @@GLOBAL.read_only").await, 0);
        let ws = warnings(&destination, "privileged", "FERRY-CUT-005").await;
        assert!(
            ws.iter()
                .any(|d| d.contains("app_admin") && d.contains(&format!("{w1}"))),
            "{ws:?}"
        );
        let e = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("fenced in time")
            .expect("run task")
            .expect_err("fenced");
        assert_eq!(e.code().id, "FERRY-CUT-001", "{e}");
        assert!(n1 > 0);
        eprintln!("a writer that never stops: rolled back after {took:?} ({n1} rows committed)");
        source
            .exec("SET GLOBAL read_only = OFF")
            .await
            .expect("read_only off");
    } else {
        // super_read_only stops every account: the writer was refused and the cutover went through.
        assert_eq!(r.outcome, "done", "{r:?}");
        let _ = run.await;
        let v = verify(&cfg).await;
        assert!(v.consistent(), "{v:?}");
        return;
    }

    // The next attempt: the application is stopped 2 s after the source became read-only. Its rows committed in
    // between (read_only did not stop its account) are on the destination: the final position waited for them.
    cfg.cutover.quiet_wait_s = 30;
    let (_ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "privileged", run, 0).await;
    let w = Writer::start(&source, app, "w2").await;
    let w2 = w.id;
    let stopper = w.stop_after_read_only(&source, Duration::from_secs(2));
    let r = cutover::run(&cfg).await.expect("cutover");
    let at_read_only = stopper.await.expect("stopper");
    let n2 = w.finish().await;
    assert_eq!(
        (r.outcome.as_str(), r.code.as_deref()),
        ("done", None),
        "{r:?}"
    );
    eprintln!(
        "a writer stopped 2 s after read_only: {at_read_only} rows when read_only was set, {n2} in all; cutover {:.2} s",
        r.seconds
    );
    assert!(
        n2 > at_read_only,
        "the writer committed nothing after read_only ({n2} rows): the test shows nothing"
    );
    for needle in ["read_only = ON", "stood still"] {
        assert!(
            r.steps.iter().any(|s| s.contains(needle)),
            "{needle}: {:?}",
            r.steps
        );
    }
    let ws = warnings(&destination, "privileged", "FERRY-CUT-005").await;
    assert!(
        ws.iter()
            .any(|d| d.contains("app_admin") && d.contains(&format!("{w2}"))),
        "{ws:?}"
    );
    assert!(
        r.warnings.iter().any(|w| w.code == "FERRY-CUT-005"
            && w.detail.contains("app_admin@% (READ_ONLY ADMIN; session")
            && w.detail.contains(&format!("{w2}"))),
        "{r:?}"
    );
    let w2_rows = "SELECT COUNT(*) FROM shop.customers WHERE email LIKE 'w2-%'";
    assert_eq!(count(&source, w2_rows).await, n2);
    assert_eq!(count(&destination, w2_rows).await, n2);
    let e = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("fenced in time")
        .expect("run task")
        .expect_err("fenced");
    assert_eq!(e.code().id, "FERRY-CUT-001", "{e}");
    let v = verify(&cfg).await;
    assert!(v.consistent(), "{v:?}");
    assert_eq!(count(&source, "SELECT @@GLOBAL.read_only").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_final_position_waits_for_the_binlog_to_stand_still_and_ferrys_heartbeat_stops_for_read_only(
) {
    logs();
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 1).await.expect("shop");
    let mariadb = source.version.to_ascii_lowercase().contains("mariadb");
    let app = privileged_app_account(&source).await;
    let mut cfg = task("standstill", &source, &destination, &[datagen::SHOP_DB]);
    cfg.task.types.push(MigrationType::Incremental);
    cfg.cutover.set_source_read_only = true;
    cfg.cutover.lag_s_max = 30;
    cfg.cutover.drain_s_max = 120;
    let (_ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "standstill", run, 1).await;

    // ferry's heartbeat writes the source every second under an account read_only does not stop (root here), but
    // not while the source is read-only: it would keep the binlog from standing still.
    let master = "SHOW MASTER STATUS";
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let beating = rows(&source, master).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_ne!(rows(&source, master).await, beating, "no heartbeat to stop");
    source
        .exec("SET GLOBAL read_only = ON")
        .await
        .expect("read_only");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still = rows(&source, master).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        rows(&source, master).await,
        still,
        "ferry's heartbeat wrote to a read-only source"
    );
    source
        .exec("SET GLOBAL read_only = OFF")
        .await
        .expect("read_only off");

    // A privileged session commits a burst of rows right after the cutover set read_only, one every 100 ms for
    // a second, then disconnects: all of them are before the final position.
    let mut c = conn_as(&source, app, "app-pw").await;
    let burst = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let ro: Option<u64> = c
                .query_first("SELECT @@GLOBAL.read_only")
                .await
                .expect("read_only");
            if ro == Some(1) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the source never became read-only"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut committed = 0u64;
        for i in 0..10 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match c
                .query_drop(format!(
                    "INSERT INTO shop.customers (email, name, created_at) VALUES ('late-{i}@example.org', 'l', NOW())"
                ))
                .await
            {
                Ok(()) => committed += 1,
                Err(mysql_async::Error::Server(e)) if e.code == 1290 => break,
                Err(e) => panic!("late writer: {e}"),
            }
        }
        let _ = c.disconnect().await;
        committed
    });
    let r = cutover::run(&cfg).await.expect("cutover");
    let committed = burst.await.expect("burst");
    assert_eq!(
        (r.outcome.as_str(), r.code.as_deref()),
        ("done", None),
        "{r:?}"
    );
    eprintln!(
        "{committed} rows committed after read_only; cutover {:.2} s, final position {:?}",
        r.seconds, r.final_position
    );
    if mariadb {
        assert_eq!(committed, 10, "read_only stopped the privileged session");
    }
    let late = "SELECT COUNT(*) FROM shop.customers WHERE email LIKE 'late-%'";
    assert_eq!(count(&source, late).await, committed);
    assert_eq!(
        count(&destination, late).await,
        committed,
        "rows committed after read_only and before the binlog stood still are missing: {:?}",
        r.steps
    );
    let _ = tokio::time::timeout(Duration::from_secs(60), run).await;
    let v = verify(&cfg).await;
    assert!(v.consistent(), "{v:?}");
}
