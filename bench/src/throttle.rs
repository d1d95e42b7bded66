//! Throttle accuracy: each knob set alone, ferry run in a child process, the achieved rate measured on the servers
//! over a window that starts after the warm-up (connect, precheck, planning).
//!
//! full.source_qps_max as the source's Com_select; full.rows_per_s_max as the rows of committed chunks;
//! full.mb_per_s_max as the destination's Bytes_received; incremental.rows_per_s_max as ferry_meta.cdc's rows;
//! incremental.mb_per_s_max as those rows' row-image bytes.

use crate::native;
use crate::report::{Report, Throttle};
use crate::task;
use crate::{setup, Options, Servers};
use ferry_engine::error::{Result, ResultExt};
use ferry_sim::Instance;
use mysql_async::prelude::Queryable;
use std::future::Future;
use std::time::{Duration, Instant};

const DB: &str = "bench_throttle";
const ROWS: u64 = 150_000;
/// Bytes of the `pad` column: a row is 8 (id) + PAD bytes of row image.
const PAD: u64 = 400;
const WARMUP_S: u64 = 4;
const MIB: f64 = (1u64 << 20) as f64;

pub async fn run(opts: &Options, servers: &Servers, report: &mut Report) -> Result<()> {
    let window = Duration::from_secs(opts.throttle_window_s);
    let (src, dst) = (&servers.source, &servers.destination);
    let mut c = src.conn().await?;
    for sql in [
        "SET SESSION sql_log_bin = 0".to_string(),
        format!("DROP DATABASE IF EXISTS {DB}"),
        format!("CREATE DATABASE {DB}"),
        format!("CREATE TABLE {DB}.t (id BIGINT NOT NULL PRIMARY KEY, pad VARCHAR({PAD}) NOT NULL) ENGINE=InnoDB"),
        format!("INSERT INTO {DB}.t SELECT seq, RPAD(SHA2(seq, 256), {PAD}, 'x') FROM {DB}.seq_1_to_{ROWS}"),
    ] {
        c.query_drop(sql).await.ctx("throttle data")?;
    }
    c.disconnect().await.ctx("throttle data")?;

    let full = |name: &str, knob: &str| {
        task::write_objects(
            servers,
            name,
            &["schema", "full"],
            &format!(
                "databases = [\"{DB}\"]\n\n[mapping]\ndatabases = {{ {DB} = \"{DB}_{name}\" }}\n"
            ),
            &format!(
                "[full]\nchunk_rows = {}\n{knob}\n",
                if knob.contains("qps") { 50 } else { 500 }
            ),
        )
    };

    let file = full("qps", "source_qps_max = 50")?;
    let (achieved, rss) =
        measure(opts, servers, &file, window, || status(src, "Com_select")).await?;
    report.throttle.push(line(
        "full.source_qps_max",
        50.0,
        achieved,
        "queries/s",
        rss,
    ));

    let file = full("rows", "rows_per_s_max = 3000")?;
    let (achieved, rss) = measure(opts, servers, &file, window, || {
        number(dst, "SELECT CAST(COALESCE(SUM(`rows`), 0) AS UNSIGNED) FROM ferry_meta.chunks WHERE task = 'rows'")
    })
    .await?;
    report
        .throttle
        .push(line("full.rows_per_s_max", 3000.0, achieved, "rows/s", rss));

    let file = full("mb", "mb_per_s_max = 1")?;
    let (achieved, rss) = measure(opts, servers, &file, window, || {
        status(dst, "Bytes_received")
    })
    .await?;
    report
        .throttle
        .push(line("full.mb_per_s_max", 1.0, achieved / MIB, "MiB/s", rss));

    // Incremental: a backlog written to the binlog after a position, applied from it by an incremental-only task.
    for (name, knob, target) in [
        ("inc_rows", "rows_per_s_max = 3000", 3000.0),
        ("inc_mb", "mb_per_s_max = 1", 1.0),
    ] {
        dst.exec(&format!(
            "DROP DATABASE IF EXISTS {DB}_{name}; CREATE DATABASE {DB}_{name}; \
             CREATE TABLE {DB}_{name}.b (id BIGINT NOT NULL PRIMARY KEY, pad VARCHAR({PAD}) NOT NULL) ENGINE=InnoDB"
        ))
        .await?;
        src.exec(&format!(
            "CREATE TABLE {DB}.b_{name} (id BIGINT NOT NULL PRIMARY KEY, pad VARCHAR({PAD}) NOT NULL) ENGINE=InnoDB"
        ))
        .await?;
        let at = native::position(src).await?;
        let mut c = src.conn().await?;
        for k in 0..ROWS / 1_000 {
            c.query_drop(format!(
                "INSERT INTO {DB}.b_{name} SELECT seq, RPAD(SHA2(seq, 256), {PAD}, 'x') FROM {DB}.seq_{}_to_{}",
                k * 1_000 + 1,
                (k + 1) * 1_000
            ))
            .await
            .ctx("throttle backlog")?;
        }
        c.disconnect().await.ctx("throttle backlog")?;
        let file = task::write_objects(
            servers,
            name,
            &["incremental"],
            &format!("tables = [\"{DB}.b_{name}\"]\n\n[mapping]\ndatabases = {{ {DB} = \"{DB}_{name}\" }}\n\n[mapping.tables.{DB}]\nb_{name} = \"b\"\n"),
            &format!(
                "[incremental]\nheartbeat = false\n{knob}\nstart = {{ file = \"{}\", pos = {}, gtid = \"{}\" }}\n",
                at.file, at.pos, at.gtid
            ),
        )?;
        let sql =
            format!("SELECT CAST(`rows` AS UNSIGNED) FROM ferry_meta.cdc WHERE task = '{name}'");
        let (rows, rss) = measure(opts, servers, &file, window, || number(dst, &sql)).await?;
        report.throttle.push(if name == "inc_rows" {
            line("incremental.rows_per_s_max", target, rows, "rows/s", rss)
        } else {
            line(
                "incremental.mb_per_s_max",
                target,
                rows * (8 + PAD) as f64 / MIB,
                "MiB/s",
                rss,
            )
        });
    }
    Ok(())
}

fn line(knob: &str, target: f64, achieved: f64, unit: &str, rss: f64) -> Throttle {
    Throttle {
        knob: knob.into(),
        target,
        achieved,
        unit: unit.into(),
        peak_rss_mb: rss,
    }
}

/// Runs the task in a ferry process, reads `counter` after the warm-up and after the window, stops the process.
/// Returns the counter's rate over the window and the process's peak RSS.
async fn measure<F, Fut>(
    opts: &Options,
    servers: &Servers,
    file: &std::path::Path,
    window: Duration,
    counter: F,
) -> Result<(f64, f64)>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<u64>>,
{
    let stop_after = Duration::from_secs(WARMUP_S) + window + Duration::from_secs(1);
    let process = task::ferry(
        opts,
        servers,
        "ferry throttled",
        vec!["run".into(), "-c".into(), file.display().to_string()],
        Some(stop_after),
        &[0],
    );
    let counted = async {
        tokio::time::sleep(Duration::from_secs(WARMUP_S)).await;
        let (a, t0) = (counter().await?, Instant::now());
        tokio::time::sleep(window).await;
        let (b, t1) = (counter().await?, Instant::now());
        Ok::<f64, ferry_engine::error::Error>(b.saturating_sub(a) as f64 / (t1 - t0).as_secs_f64())
    };
    let (f, rate) = tokio::join!(process, counted);
    let f = f?;
    let rate = rate?;
    if f.seconds < stop_after.as_secs_f64() {
        return Err(setup(format!(
            "throttle: the run ended after {:.1} s, inside the {} s window: the data set is too small for the target",
            f.seconds,
            window.as_secs()
        )));
    }
    Ok((rate, f.peak_rss_mb))
}

async fn status(server: &Instance, name: &str) -> Result<u64> {
    let row: Option<(String, String)> = server
        .query_first(&format!("SHOW GLOBAL STATUS LIKE '{name}'"))
        .await?;
    let (_, v) = row.ok_or_else(|| setup(format!("no status variable {name}")))?;
    v.parse()
        .map_err(|e| setup(format!("status {name} = {v}: {e}")))
}

async fn number(server: &Instance, sql: &str) -> Result<u64> {
    let v: Option<Option<u64>> = server.query_first(sql).await?;
    Ok(v.flatten().unwrap_or(0))
}
