//! Steady-state lag: a paced sysbench-like write load on the source while ferry syncs (and then while native
//! replication runs), lag sampled as the age of the newest heartbeat the destination has applied.

use crate::native;
use crate::report::{percentile, Lag, Report};
use crate::task;
use crate::workload::{self, HEARTBEAT_TABLE};
use crate::{setup, Options, Servers};
use ferry_engine::error::{Result, ResultExt};
use ferry_sim::Instance;
use mysql_async::prelude::Queryable;
use std::time::Duration;

/// The load and the sampling start after this: connect, precheck, the first read of the binlog.
const WARMUP_S: u64 = 5;
/// The source writes a heartbeat this often, so a caught-up destination shows a lag below it.
const HEARTBEAT_MS: u64 = 10;
/// Not a multiple of the heartbeat period, so samples fall at every phase of it.
const SAMPLE_MS: u64 = 247;
const WRITERS: u64 = 4;

pub async fn run(opts: &Options, servers: &Servers, report: &mut Report) -> Result<()> {
    let data = &servers.data;
    let window = Duration::from_secs(opts.lag_window_s);

    // ferry
    prepare(servers).await?;
    let from = native::position(&servers.source).await?;
    let file = task::write(
        servers,
        "bench_lag",
        &["incremental"],
        &format!(
            "[incremental]\nstart = {{ file = \"{}\", pos = {}, gtid = \"{}\" }}\n",
            from.file, from.pos, from.gtid
        ),
    )?;
    let stop_after = Duration::from_secs(WARMUP_S) + window + Duration::from_secs(2);
    let ferry_run = task::ferry(
        opts,
        servers,
        "ferry sync under load",
        vec!["run".into(), "-c".into(), file.display().to_string()],
        Some(stop_after),
        &[0],
    );
    let measured = measure(servers, opts.lag_tps, window);
    let (f, m) = tokio::join!(ferry_run, measured);
    let f = f?;
    let (samples, tps) = m?;
    report
        .lag
        .push(lag("ferry run (sync)", &samples, tps, Some(f.peak_rss_mb)));

    // native replication, one SQL thread
    data.reset(&servers.destination).await?;
    prepare(servers).await?;
    let from = native::position(&servers.source).await?;
    native::start(&servers.destination, &servers.source, &from, 0).await?;
    tokio::time::sleep(Duration::from_secs(WARMUP_S)).await;
    let (samples, tps) = measure_now(servers, opts.lag_tps, window).await?;
    native::stop(&servers.destination).await?;
    report
        .lag
        .push(lag("native replication, 1 SQL thread", &samples, tps, None));
    Ok(())
}

/// Both servers hold the data set and the heartbeat table; the destination has no ferry metadata.
async fn prepare(servers: &Servers) -> Result<()> {
    let data = &servers.data;
    data.reset(&servers.destination).await?;
    tokio::try_join!(data.load(&servers.source), data.load(&servers.destination))?;
    workload::create_heartbeat(&servers.source, data).await?;
    workload::create_heartbeat(&servers.destination, data).await?;
    Ok(())
}

/// After the warm-up, `measure_now`.
async fn measure(servers: &Servers, tps: u64, window: Duration) -> Result<(Vec<f64>, f64)> {
    tokio::time::sleep(Duration::from_secs(WARMUP_S)).await;
    measure_now(servers, tps, window).await
}

/// Runs the paced load and the heartbeat on the source for `window` while sampling the destination's lag.
/// Returns the lag samples (ms) and the load's achieved transactions per second.
async fn measure_now(servers: &Servers, tps: u64, window: Duration) -> Result<(Vec<f64>, f64)> {
    let load = workload::write_paced(&servers.source, &servers.data, tps, window, WRITERS);
    let beat = heartbeat(&servers.source, &servers.data.db, window);
    let sample = sample(&servers.destination, &servers.data.db, window);
    let ((done, seconds), (), samples) = tokio::try_join!(load, beat, sample)?;
    Ok((samples, done as f64 / seconds.max(f64::MIN_POSITIVE)))
}

async fn heartbeat(source: &Instance, db: &str, window: Duration) -> Result<()> {
    let mut c = source.conn().await?;
    let end = tokio::time::Instant::now() + window;
    let mut tick = tokio::time::interval(Duration::from_millis(HEARTBEAT_MS));
    while tokio::time::Instant::now() < end {
        tick.tick().await;
        c.query_drop(format!(
            "UPDATE `{db}`.`{HEARTBEAT_TABLE}` SET ts_us = {} WHERE id = 1",
            workload::now_us()
        ))
        .await
        .ctx("heartbeat")?;
    }
    c.disconnect().await.ctx("heartbeat")?;
    Ok(())
}

async fn sample(destination: &Instance, db: &str, window: Duration) -> Result<Vec<f64>> {
    let mut c = destination.conn().await?;
    let end = tokio::time::Instant::now() + window;
    let mut tick = tokio::time::interval(Duration::from_millis(SAMPLE_MS));
    let mut out = Vec::new();
    // The first heartbeat must have arrived before a sample means anything.
    while tokio::time::Instant::now() < end {
        tick.tick().await;
        let ts: Option<i64> = c
            .query_first(format!(
                "SELECT ts_us FROM `{db}`.`{HEARTBEAT_TABLE}` WHERE id = 1"
            ))
            .await
            .ctx("lag sample")?;
        match ts {
            Some(ts) if ts > 0 => out.push((workload::now_us() - ts).max(0) as f64 / 1000.0),
            _ => {}
        }
    }
    c.disconnect().await.ctx("lag sample")?;
    if out.is_empty() {
        return Err(setup(
            "lag: no heartbeat reached the destination during the window",
        ));
    }
    Ok(out)
}

fn lag(contender: &str, samples: &[f64], tps: f64, rss: Option<f64>) -> Lag {
    Lag {
        contender: contender.to_string(),
        samples: samples.len(),
        p50_ms: percentile(samples, 50.0),
        p95_ms: percentile(samples, 95.0),
        max_ms: samples.iter().copied().fold(0.0, f64::max),
        tps,
        peak_rss_mb: rss,
    }
}
