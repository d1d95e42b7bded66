//! Throttling against real servers, with coarse bounds (the benchmark `cargo bench --bench throttle` gives the
//! precise figures): a throttled copy and a throttled sync keep under their rates and still end equal.

mod common;

use common::*;
use ferry_engine::cdc::sync::Control;
use ferry_engine::config::MigrationType;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_throttled_copy_and_sync_keep_under_their_rates_and_end_equal() {
    let (source, destination) = pair().await;
    source.exec("CREATE DATABASE th").await.expect("db");
    source
        .exec("CREATE TABLE th.t (id BIGINT PRIMARY KEY, pad VARCHAR(200) NOT NULL)")
        .await
        .expect("table");
    source
        .exec("INSERT INTO th.t SELECT seq, RPAD(seq, 200, 'x') FROM th.seq_1_to_12000")
        .await
        .expect("rows");
    let mut cfg = task("throttled", &source, &destination, &["th"]);
    cfg.task.types.push(MigrationType::Incremental);
    cfg.full.chunk_rows = 500;
    cfg.full.rows_per_s_max = 4_000;
    cfg.incremental.rows_per_s_max = 1_000;
    cfg.incremental.heartbeat = false;

    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "throttled", run, 0).await;
    // 3,000 row events while syncing, applied at 1,000 rows/s at most.
    let written = Instant::now();
    for k in 0..3 {
        source
            .exec(&format!(
                "INSERT INTO th.t SELECT seq, 'later' FROM th.seq_{}_to_{}",
                100_001 + k * 1_000,
                100_000 + (k + 1) * 1_000
            ))
            .await
            .expect("later rows");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(
        &destination,
        "SELECT COUNT(*) FROM th.t WHERE pad = 'later'",
    )
    .await
        < 3_000
    {
        assert!(Instant::now() < deadline, "sync did not apply the rows");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sync_s = written.elapsed().as_secs_f64();
    ctl.send(Control::Drain).expect("drain");
    let report = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("drained")
        .expect("run task")
        .expect("run");
    let copy = report.copy.expect("copy report");
    let copy_rate = copy.rows_copied as f64 / copy.seconds;
    eprintln!(
        "copy {} rows in {:.2} s ({copy_rate:.0} rows/s); 3000 row events applied in {sync_s:.2} s",
        copy.rows_copied, copy.seconds
    );
    assert_eq!(copy.rows_copied, 12_000);
    // At most the rate (a second's bank of tokens is the only burst), and not throttled to a crawl either.
    assert!(
        copy.seconds >= 12_000.0 / 4_000.0 - 1.0,
        "copy too fast: {copy:?}"
    );
    assert!(copy_rate >= 4_000.0 * 0.5, "copy too slow: {copy:?}");
    assert!(
        sync_s >= 3_000.0 / 1_000.0 - 1.0,
        "sync too fast: {sync_s:.2} s"
    );
    assert!(
        sync_s <= 3_000.0 / 1_000.0 * 3.0,
        "sync too slow: {sync_s:.2} s"
    );
    let v = verify(&cfg).await;
    assert!(v.consistent(), "{v:?}");
}
