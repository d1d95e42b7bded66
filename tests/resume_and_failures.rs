//! The copy resumes after a kill without duplicates, the verifier catches a damaged destination, and bad input
//! (credentials, ports, names, task files) stops ferry with its code before it writes anything.

mod common;

use common::*;
use ferry_engine::migration::{self, RunOptions};
use ferry_sim::datagen;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn ferry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .output()
        .expect("running ferry")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write_task(dir: &tempfile::TempDir, cfg: &ferry_engine::config::TaskConfig) -> String {
    let path = dir.path().join("task.toml");
    std::fs::write(&path, cfg.to_toml()).expect("writing task file");
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_copy_resumes_without_duplicates() {
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 6).await.expect("shop");
    let mut cfg = task("resume", &source, &destination, &[datagen::SHOP_DB]);
    cfg.full.workers = 1;
    cfg.full.chunk_rows = 300;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_task(&dir, &cfg);

    // Start a run and SIGKILL it once some chunks are committed and the copy is not finished.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "-c", &file, "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning ferry run");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut done_at_kill = 0;
    while Instant::now() < deadline {
        let done: Option<u64> = destination
            .query_first("SELECT COUNT(*) FROM ferry_meta.chunks WHERE task = 'resume' AND done_at IS NOT NULL")
            .await
            .unwrap_or(None);
        if done.unwrap_or(0) >= 20 {
            child.kill().expect("killing ferry");
            done_at_kill = done.unwrap_or(0);
            break;
        }
        assert!(
            child.try_wait().expect("waiting").is_none(),
            "ferry run ended before it could be interrupted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.wait();
    assert!(done_at_kill >= 20, "the copy never got going");
    let full_done = count(
        &destination,
        "SELECT COUNT(*) FROM ferry_meta.task WHERE task = 'resume' AND full_done_at IS NOT NULL",
    )
    .await;
    assert_eq!(
        full_done, 0,
        "the copy finished before the kill; make the data set larger"
    );

    // The durable state says where it stopped.
    let status = ferry(&["status", "-c", &file]);
    assert!(
        text(&status.stdout).starts_with("task resume: full"),
        "{}",
        text(&status.stdout)
    );

    // Run again: committed chunks are skipped, the rest copied, nothing twice.
    let out = ferry(&["run", "-c", &file, "--json"]);
    assert!(
        out.status.success(),
        "second run failed: {}",
        text(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("run report JSON");
    assert_eq!(report["phase_at_start"], "full");
    assert_eq!(report["phase"], "done");
    let skipped = report["copy"]["chunks_skipped"]
        .as_u64()
        .expect("chunks_skipped");
    assert!(
        skipped >= done_at_kill,
        "only {skipped} chunks skipped, {done_at_kill} were committed before the kill"
    );
    let v = verify(&cfg).await;
    assert!(v.consistent(), "{:?}", v.tables);
    assert_same_data(&source, &destination, datagen::SHOP_DB).await;
    // The keyless table is compared as a multiset: a duplicated row would show as extra.
    assert!(v
        .tables
        .iter()
        .any(|t| t.table == "shop.page_views" && t.rows_destination == 12_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_copy_between_chunks_and_the_next_run_resumes() {
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 2).await.expect("shop");
    let mut cfg = task("term", &source, &destination, &[datagen::SHOP_DB]);
    cfg.full.workers = 2;
    cfg.full.chunk_rows = 200;
    cfg.full.rows_per_s_max = 4_000; // slow enough that the signal lands mid-copy
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_task(&dir, &cfg);
    let mut child = Reap(
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["run", "-c", &file])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning ferry run"),
    );
    let done = "SELECT COUNT(*) FROM ferry_meta.chunks WHERE task = 'term' AND done_at IS NOT NULL";
    wait_for("chunks", &destination, done, 5, &mut || {
        running(&mut child.0)
    })
    .await
    .expect("the run ended before it could be stopped");
    let signalled = Instant::now();
    let ok = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -TERM");
    while running(&mut child.0) {
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "ferry run did not stop within 10 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = child.0.wait().expect("wait");
    let mut stderr = String::new();
    if let Some(mut e) = child.0.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut stderr).expect("stderr");
    }
    assert!(!status.success(), "a stopped copy exits non-zero");
    assert!(stderr.contains("FERRY-RUN-001"), "{stderr}");
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM ferry_meta.task WHERE task = 'term' AND full_done_at IS NULL AND failed_code IS NULL"
        )
        .await,
        1,
        "stopped mid-copy, and not recorded as a failure"
    );
    let committed = count(&destination, done).await;

    cfg.full.rows_per_s_max = 0;
    let file = write_task(&dir, &cfg);
    let out = ferry(&["run", "-c", &file, "--json"]);
    assert!(
        out.status.success(),
        "second run failed: {}",
        text(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("run report JSON");
    assert_eq!(report["phase"], "done");
    assert!(
        report["copy"]["chunks_skipped"].as_u64().unwrap_or(0) >= committed,
        "{report}"
    );
    let v = verify(&cfg).await;
    assert!(v.consistent(), "{:?}", v.tables);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifier_fails_on_a_damaged_destination() {
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 1).await.expect("shop");
    let cfg = task("damage", &source, &destination, &[datagen::SHOP_DB]);
    migration::run(&cfg, &RunOptions::default())
        .await
        .expect("migration");
    assert!(verify(&cfg).await.consistent());

    // One changed row, one missing, one extra (in a keyless table), each in a different table.
    destination
        .exec("UPDATE shop.customers SET name = 'Mallory' WHERE id = 77")
        .await
        .expect("update");
    destination
        .exec("SET FOREIGN_KEY_CHECKS = 0")
        .await
        .expect("fk");
    destination
        .exec("DELETE FROM shop.order_items WHERE order_id = 5 AND line = 1")
        .await
        .expect("delete");
    destination
        .exec("INSERT INTO shop.page_views SELECT * FROM shop.page_views ORDER BY at LIMIT 1")
        .await
        .expect("insert");
    let v = verify(&cfg).await;
    assert!(!v.consistent());
    let get = |name: &str| v.tables.iter().find(|t| t.table == name).expect(name);
    let c = get("shop.customers");
    assert_eq!((c.missing, c.extra, c.different), (0, 0, 1));
    assert!(
        c.first_differences.iter().any(|d| d.contains("77")),
        "{:?}",
        c.first_differences
    );
    let i = get("shop.order_items");
    assert_eq!((i.missing, i.extra, i.different), (1, 0, 0));
    let p = get("shop.page_views");
    assert_eq!((p.missing, p.extra, p.different), (0, 1, 0));
    assert!(get("shop.orders").equal());
    assert_eq!(v.error().map(|e| e.code().id), Some("FERRY-VER-001"));

    // The command line says so with exit code 1.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_task(&dir, &cfg);
    let out = ferry(&["verify", "-c", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("DIFFERENT  shop.customers"),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stdout).contains("NOT consistent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_stops_with_a_code_before_writing() {
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 1).await.expect("shop");
    let dir = tempfile::tempdir().expect("tempdir");

    // Wrong password on the source: nothing is created on the destination.
    let mut cfg = task("bad", &source, &destination, &[datagen::SHOP_DB]);
    cfg.source.password = Some("wrong".into());
    let out = ferry(&["run", "-c", &write_task(&dir, &cfg)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("FERRY-CON-002"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("hint:"));
    assert_eq!(count(&destination, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('shop', 'ferry_meta')").await, 0);

    // Nothing listens on the destination port.
    let mut cfg = task("bad", &source, &destination, &[datagen::SHOP_DB]);
    cfg.destination.port = free_port();
    let out = ferry(&["run", "-c", &write_task(&dir, &cfg)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("FERRY-CON-001"),
        "{}",
        text(&out.stderr)
    );

    // A database that does not exist on the source.
    let cfg = task("bad", &source, &destination, &["no_such_db"]);
    let out = ferry(&["run", "-c", &write_task(&dir, &cfg)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("FERRY-SCH-003"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("no_such_db"));

    // A table on the destination that ferry did not create is never overwritten.
    destination.exec("CREATE DATABASE shop").await.expect("db");
    destination
        .exec("CREATE TABLE shop.products (keep_me INT)")
        .await
        .expect("table");
    destination
        .exec("INSERT INTO shop.products VALUES (42)")
        .await
        .expect("row");
    let cfg = task("conflict", &source, &destination, &[datagen::SHOP_DB]);
    let out = ferry(&["run", "-c", &write_task(&dir, &cfg)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("FERRY-SCH-001"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("shop.products"));
    assert_eq!(
        rows(&destination, "SELECT * FROM shop.products").await,
        vec!["42".to_string()]
    );
    // Refused by the precheck: not even the metadata schema was created, so the task has not started.
    assert!(text(&out.stderr).contains("nothing was written"));
    let status = ferry(&["status", "-c", &write_task(&dir, &cfg)]);
    assert!(
        text(&status.stdout).contains("task conflict: created"),
        "{}",
        text(&status.stdout)
    );
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'ferry_meta'"
        )
        .await,
        0
    );
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn task_file_errors_name_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = "[task]\nname = \"t\"\ntypes = [\"schema\", \"full\"]\n\
                [source]\nhost = \"127.0.0.1\"\nuser = \"u\"\npassword = \"p\"\n\
                [destination]\nhost = \"127.0.0.1\"\nport = 3307\nuser = \"u\"\npassword = \"p\"\n\
                [objects]\ndatabases = [\"shop\"]\n";
    let cases = [
        ("unknown_key", good.replace("port = 3307", "prot = 3307")),
        (
            "missing_key",
            good.replace(
                "user = \"u\"\npassword = \"p\"\n[destination]",
                "password = \"p\"\n[destination]",
            ),
        ),
        (
            "bad_value",
            good.replace("[\"schema\", \"full\"]", "[\"schema\", \"everything\"]"),
        ),
        ("bad_port", good.replace("port = 3307", "port = 70000")),
        ("syntax", good.replace("name = \"t\"", "name = t")),
        (
            "password_env",
            good.replace(
                "password = \"p\"\n[objects]",
                "password_env = \"FERRY_TEST_UNSET_VAR\"\n[objects]",
            ),
        ),
    ];
    let mut all = String::new();
    for (name, body) in cases {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, body).expect("write");
        let out = ferry(&["run", "-c", &path.to_string_lossy()]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        all.push_str(&format!("== {name}\n{}", text(&out.stderr)));
    }
    let out = ferry(&["run", "-c", "/nonexistent/task.toml"]);
    all.push_str(&format!("== unreadable\n{}", text(&out.stderr)));
    insta::assert_snapshot!(all);
}
