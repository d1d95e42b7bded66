//! Cutover against real servers: the fence holds when a stale `ferry run` resumes after the switch, a cutover
//! that cannot finish rolls back and leaves the task runnable, and the REVOKE safeguard takes ferry's rights away.

mod common;

use common::*;
use ferry_engine::config::MigrationType;
use ferry_engine::cutover;
use ferry_sim::datagen;
use std::process::Command;
use std::time::Duration;

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
