//! The admin endpoint of a real `ferry run` process, driven by the CLI: pause holds the destination still while
//! the source moves on, metrics say so, the throttle changes at runtime, resume catches up, stop ends the process,
//! and the data is equal afterwards; with no process, the commands fail with their code.

mod common;

use common::*;
use ferry_engine::config::MigrationType;
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

fn ferry(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .output()
        .expect("ferry");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A plain HTTP GET (the test has no HTTP client of its own).
fn get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the admin endpoint");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("response");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_throttle_resume_and_stop_through_the_admin_endpoint() {
    let (source, destination) = pair().await;
    source.exec("CREATE DATABASE adm").await.expect("db");
    source
        .exec("CREATE TABLE adm.t (id INT PRIMARY KEY, v VARCHAR(20))")
        .await
        .expect("table");
    source
        .exec("INSERT INTO adm.t VALUES (1, 'one')")
        .await
        .expect("row");
    let mut cfg = task("admin", &source, &destination, &["adm"]);
    cfg.task.types.push(MigrationType::Incremental);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_task(&dir, &cfg);

    let mut child = Reap(spawn_run(&file, 1));
    wait_for(
        "sync",
        &destination,
        "SELECT COUNT(*) FROM ferry_meta.cdc WHERE task = 'admin' AND p1 IS NOT NULL",
        1,
        &mut || running(&mut child.0),
    )
    .await
    .expect("the run ended");
    let addr = rows(
        &destination,
        "SELECT admin_addr FROM ferry_meta.task WHERE task = 'admin'",
    )
    .await;
    let addr = addr.first().cloned().expect("admin address recorded");

    let (ok, out) = ferry(&["pause", "-c", &file]);
    assert!(ok, "{out}");
    assert!(out.contains("\"control\":\"pause\""), "{out}");
    source
        .exec("INSERT INTO adm.t VALUES (2, 'paused')")
        .await
        .expect("row");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM adm.t WHERE id = 2").await,
        0,
        "applied while paused"
    );
    let (ok, out) = ferry(&["status", "-c", &file, "--json"]);
    assert!(ok && out.contains("\"state\": \"paused\""), "{out}");
    let metrics = get(&addr, "/metrics");
    assert!(
        metrics.contains("ferry_paused{task=\"admin\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ferry_phase_info{task=\"admin\",phase=\"incremental\"} 1"),
        "{metrics}"
    );
    let status = get(&addr, "/status");
    assert!(status.contains("\"phase\":\"incremental\""), "{status}");

    let (ok, out) = ferry(&[
        "throttle",
        "-c",
        &file,
        "--phase",
        "incremental",
        "--rows-per-s-max",
        "500",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("\"rows_per_s\":500"), "{out}");
    let (ok, out) = ferry(&[
        "throttle",
        "-c",
        &file,
        "--phase",
        "incremental",
        "--source-qps-max",
        "5",
    ]);
    assert!(
        !ok && out.contains("FERRY-ADM-001"),
        "a bad knob is refused: {out}"
    );

    let (ok, out) = ferry(&["resume", "-c", &file]);
    assert!(ok, "{out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&destination, "SELECT COUNT(*) FROM adm.t WHERE id = 2").await == 0 {
        assert!(Instant::now() < deadline, "not applied after resume");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (ok, out) = ferry(&["status", "-c", &file, "--json"]);
    assert!(ok && out.contains("\"state\": \"incremental\""), "{out}");
    let (ok, out) = ferry(&["stop", "-c", &file]);
    assert!(ok, "{out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while running(&mut child.0) {
        assert!(Instant::now() < deadline, "the run did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        child.0.wait().expect("wait").success(),
        "{}",
        run_log(&file, 1)
    );
    let v = verify(&cfg).await;
    assert!(v.consistent(), "{v:?}");

    // No process: the commands say so with their code.
    let (ok, out) = ferry(&["pause", "-c", &file]);
    assert!(!ok, "{out}");
    assert!(out.contains("FERRY-ADM-001"), "{out}");
}
