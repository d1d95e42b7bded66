//! Alerts and failed-task auto-resume against real servers and a local webhook listener: a failure is posted and
//! its command run; lag above the threshold for long enough alerts once and recovers once; a run whose retry window
//! ran out during an outage resumes from its checkpoint when the server is back.

mod common;

use common::*;
use ferry_engine::cdc::sync::Control;
use ferry_engine::config::MigrationType;
use ferry_engine::migration;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::mpsc;
use std::time::Duration;

/// A webhook receiver: every POST body arrives on the channel.
fn listener() -> (String, mpsc::Receiver<serde_json::Value>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", l.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().expect("clone"));
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if let Ok(v) = serde_json::from_slice(&body) {
                let _ = tx.send(v);
            }
        }
    });
    (url, rx)
}

fn next_event(
    rx: &mpsc::Receiver<serde_json::Value>,
    event: &str,
    within: Duration,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) if v["event"] == event => return v,
            Ok(_) => continue,
            Err(_) => panic!("no `{event}` alert within {within:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_and_lasting_lag_are_alerted_by_webhook_and_command() {
    std::env::set_var(ferry_engine::retry::TEST_MINUTE_ENV, "1");
    let (source, destination) = pair().await;
    source.exec("CREATE DATABASE al").await.expect("db");
    source
        .exec("CREATE TABLE al.t (id INT PRIMARY KEY)")
        .await
        .expect("table");
    let (url, rx) = listener();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("alerts.txt");

    // A failure that cannot heal: alerted at once, by both.
    let mut bad = task("alerted", &source, &destination, &["al", "missing_db"]);
    bad.alerts.webhook = url.clone();
    bad.alerts.command = format!(
        "echo \"$FERRY_ALERT_EVENT $FERRY_ALERT_TASK\" >> {}",
        out.display()
    );
    let e = migration::run_resuming(&bad, &Default::default())
        .await
        .expect_err("fails");
    assert_eq!(e.code().id, "FERRY-SCH-003", "{e}");
    let a = next_event(&rx, "failed", Duration::from_secs(10));
    assert_eq!(a["task"], "alerted");
    assert_eq!(a["code"], "FERRY-SCH-003");
    assert_eq!(
        std::fs::read_to_string(&out).expect("command ran").trim(),
        "failed alerted"
    );

    // Lag: synced, stopped, the source moves on; above 1 s for 1 s -> one alert; caught up -> recovered.
    let mut cfg = task("lagging", &source, &destination, &["al"]);
    cfg.task.types.push(MigrationType::Incremental);
    cfg.incremental.heartbeat = false;
    cfg.alerts.webhook = url;
    cfg.alerts.lag_s_threshold = 1;
    cfg.alerts.lag_s_for = 1;
    cfg.alerts.poll_s = 1;
    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "lagging", run, 0).await;
    source
        .exec("INSERT INTO al.t VALUES (0)")
        .await
        .expect("row");
    let run = wait_synced(&destination, "lagging", run, 1).await;
    ctl.send(Control::Stop).expect("stop");
    run.await.expect("run task").expect("run");
    source
        .exec("INSERT INTO al.t VALUES (1)")
        .await
        .expect("row");
    let watch = tokio::spawn(ferry_engine::alerts::watch_lag(cfg.clone()));
    let (lag, rx) = tokio::task::spawn_blocking(move || {
        let lag = next_event(&rx, "lag", Duration::from_secs(30));
        (lag, rx)
    })
    .await
    .expect("lag alert");
    assert!(lag["lag_s"].as_f64().unwrap_or(0.0) > 1.0, "{lag}");
    let mut caught = cfg.clone();
    caught.alerts.webhook.clear();
    let (ctl, run) = start_run(&caught);
    let run = wait_synced(&destination, "lagging", run, 2).await;
    let recovered = tokio::task::spawn_blocking(move || {
        next_event(&rx, "lag_recovered", Duration::from_secs(30))
    })
    .await
    .expect("recovered alert");
    assert_eq!(recovered["task"], "lagging");
    watch.abort();
    ctl.send(Control::Drain).expect("drain");
    run.await.expect("run task").expect("run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_that_outlasted_its_retry_window_resumes_from_its_checkpoint() {
    std::env::set_var(ferry_engine::retry::TEST_MINUTE_ENV, "1");
    let (source, mut destination) = pair().await;
    source.exec("CREATE DATABASE ar").await.expect("db");
    source
        .exec("CREATE TABLE ar.t (id INT PRIMARY KEY)")
        .await
        .expect("table");
    let (url, rx) = listener();
    let mut cfg = task("resumed", &source, &destination, &["ar"]);
    cfg.task.types.push(MigrationType::Incremental);
    cfg.retry.connection_minutes = 10; // 10 s
    cfg.retry.operation_minutes = 2;
    cfg.retry.auto_resume_hours = 1; // 60 s here
    cfg.alerts.webhook = url;

    let (tx, ctl_rx) = tokio::sync::watch::channel(Control::Run);
    let run = {
        let cfg = cfg.clone();
        tokio::spawn(async move {
            migration::run_resuming(
                &cfg,
                &migration::RunOptions {
                    control: Some(ctl_rx),
                    ..Default::default()
                },
            )
            .await
        })
    };
    let run = wait_synced(&destination, "resumed", run, 0).await;
    destination.kill().await.expect("kill destination");
    source
        .exec("INSERT INTO ar.t VALUES (1), (2), (3)")
        .await
        .expect("rows");
    // The sync gives up after its 10 s window; the resume is announced, then the destination comes back.
    let resuming =
        tokio::task::spawn_blocking(move || next_event(&rx, "resuming", Duration::from_secs(40)))
            .await
            .expect("resuming alert");
    assert_eq!(resuming["code"], "FERRY-NET-001", "{resuming}");
    destination.restart().await.expect("restart destination");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while count(&destination, "SELECT COUNT(*) FROM ar.t").await < 3 {
        assert!(!run.is_finished(), "the resumed run ended");
        assert!(std::time::Instant::now() < deadline, "not resumed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tx.send(Control::Drain).expect("drain");
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("drained")
        .expect("run task")
        .expect("run");
    let v = verify(&cfg).await;
    assert!(v.consistent(), "{v:?}");
}
