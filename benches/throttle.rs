//! Macro benchmark: every throttle knob, target vs achieved over a 30-second window.
//!
//! `cargo bench --bench throttle` (local server processes; FERRY_BENCH_WINDOW_S changes the window). Full copy:
//! `source_qps_max` measured as the source's Com_select, `rows_per_s_max` as the rows of committed chunks,
//! `mb_per_s_max` as the destination's Bytes_received. Incremental: a backlog of binlog row events is applied with
//! `rows_per_s_max` / `mb_per_s_max`, measured as the rows applied (ferry_meta.cdc) and their row-image bytes.
//! Each measurement skips the first seconds (connect, precheck, planning start) and stops the run after the window.

use ferry_engine::config::{MigrationType, StartPosition, TaskConfig};
use ferry_engine::migration::{self, RunOptions};
use ferry_sim::{Backend, Instance, InstanceOptions};
use mysql_async::prelude::Queryable;
use std::time::{Duration, Instant};

const ROWS: u64 = 150_000;
/// Bytes of the `pad` column: each row is 8 (id) + PAD row-image bytes.
const PAD: u64 = 400;
const WARMUP_S: u64 = 4;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(bench()) {
        eprintln!("throttle benchmark failed: {e}");
        std::process::exit(1);
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

async fn global_status(server: &Instance, name: &str) -> Res<u64> {
    let row: Option<(String, String)> = server
        .query_first(&format!("SHOW GLOBAL STATUS LIKE '{name}'"))
        .await?;
    Ok(row.ok_or(format!("no status {name}"))?.1.parse()?)
}

async fn number(server: &Instance, sql: String) -> Res<u64> {
    let v: Option<Option<u64>> = server.query_first(&sql).await?;
    Ok(v.flatten().unwrap_or(0))
}

fn base_cfg(name: &str, source: &Instance, destination: &Instance) -> Res<TaskConfig> {
    let (s, d) = (source.endpoint(), destination.endpoint());
    Ok(TaskConfig::parse(&format!(
        "[task]\nname = \"{name}\"\ntypes = [\"schema\", \"full\"]\n\
         [source]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\npassword = \"{}\"\n\
         [destination]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\npassword = \"{}\"\n\
         [objects]\ndatabases = [\"tb\"]\n[mapping.databases]\ntb = \"tb_{name}\"\n",
        s.port,
        s.user,
        s.password.clone().unwrap_or_default(),
        d.port,
        d.user,
        d.password.clone().unwrap_or_default()
    ))?)
}

/// Runs `cfg` in the background, samples `counter` after the warm-up and after the window, stops the run.
async fn measure<F, Fut>(cfg: TaskConfig, window_s: u64, counter: F) -> Res<f64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Res<u64>>,
{
    let run = tokio::spawn(async move { migration::run(&cfg, &RunOptions::default()).await });
    tokio::time::sleep(Duration::from_secs(WARMUP_S)).await;
    let (a, t0) = (counter().await?, Instant::now());
    tokio::time::sleep(Duration::from_secs(window_s)).await;
    let (b, t1) = (counter().await?, Instant::now());
    let finished = run.is_finished();
    run.abort();
    if finished {
        return Err(
            "the run finished inside the window: the data set is too small for the target".into(),
        );
    }
    Ok((b - a) as f64 / (t1 - t0).as_secs_f64())
}

struct Line {
    knob: &'static str,
    target: f64,
    achieved: f64,
    unit: &'static str,
}

async fn bench() -> Res<()> {
    let window_s: u64 = std::env::var("FERRY_BENCH_WINDOW_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let backend = Backend::Local;
    let (source, destination) = tokio::try_join!(
        Instance::start_with(backend, InstanceOptions::default()),
        Instance::start_with(backend, InstanceOptions::default()),
    )?;
    eprintln!(
        "servers: {} (local processes), window {window_s} s",
        source.version
    );
    let mut c = source.conn().await?;
    c.query_drop("CREATE DATABASE tb").await?;
    c.query_drop(format!(
        "CREATE TABLE tb.t (id BIGINT NOT NULL PRIMARY KEY, pad VARCHAR({PAD}) NOT NULL) ENGINE=InnoDB"
    ))
    .await?;
    c.query_drop(format!(
        "INSERT INTO tb.t SELECT seq, RPAD(SHA2(seq, 256), {PAD}, 'x') FROM tb.seq_1_to_{ROWS}"
    ))
    .await?;
    drop(c);
    let mut lines = Vec::new();

    // Full copy, one knob at a time.
    let mut cfg = base_cfg("qps", &source, &destination)?;
    cfg.full.chunk_rows = 50;
    cfg.full.source_qps_max = 50;
    let achieved = measure(cfg, window_s, || global_status(&source, "Com_select")).await?;
    lines.push(Line {
        knob: "full.source_qps_max",
        target: 50.0,
        achieved,
        unit: "queries/s",
    });

    let mut cfg = base_cfg("rows", &source, &destination)?;
    cfg.full.chunk_rows = 500;
    cfg.full.rows_per_s_max = 3_000;
    let achieved = measure(cfg, window_s, || {
        number(&destination, "SELECT CAST(COALESCE(SUM(`rows`), 0) AS UNSIGNED) FROM ferry_meta.chunks WHERE task = 'rows'".to_string())
    })
    .await?;
    lines.push(Line {
        knob: "full.rows_per_s_max",
        target: 3_000.0,
        achieved,
        unit: "rows/s",
    });

    let mut cfg = base_cfg("mb", &source, &destination)?;
    cfg.full.chunk_rows = 500;
    cfg.full.mb_per_s_max = 1;
    let achieved = measure(cfg, window_s, || {
        global_status(&destination, "Bytes_received")
    })
    .await?;
    lines.push(Line {
        knob: "full.mb_per_s_max",
        target: 1.0,
        achieved: achieved / (1u64 << 20) as f64,
        unit: "MiB/s",
    });

    // Incremental: a backlog written to the binlog, applied from its start by an incremental-only task.
    for (name, rows_max, mb_max) in [("inc_rows", 3_000u64, 0u64), ("inc_mb", 0, 1)] {
        destination
            .exec(&format!(
                "CREATE DATABASE tb_{name}; CREATE TABLE tb_{name}.b (id BIGINT NOT NULL PRIMARY KEY, pad VARCHAR({PAD}) NOT NULL) ENGINE=InnoDB"
            ))
            .await?;
        source
            .exec(&format!("CREATE TABLE tb.b_{name} (id BIGINT NOT NULL PRIMARY KEY, pad VARCHAR({PAD}) NOT NULL) ENGINE=InnoDB"))
            .await?;
        let row: Option<mysql_async::Row> = source.query_first("SHOW MASTER STATUS").await?;
        let row = row.ok_or("no binlog")?;
        let (file, pos): (String, u64) = (row.get(0).ok_or("file")?, row.get(1).ok_or("pos")?);
        let mut c = source.conn().await?;
        let gtid: Option<String> = c.query_first("SELECT @@GLOBAL.gtid_binlog_pos").await?;
        for k in 0..ROWS / 1_000 {
            c.query_drop(format!(
                "INSERT INTO tb.b_{name} SELECT seq, RPAD(SHA2(seq, 256), {PAD}, 'x') FROM tb.seq_{}_to_{}",
                k * 1_000 + 1,
                (k + 1) * 1_000
            ))
            .await?;
        }
        drop(c);
        let mut cfg = base_cfg(name, &source, &destination)?;
        cfg.task.types = vec![MigrationType::Incremental];
        cfg.objects.databases.clear();
        cfg.objects.tables = vec![format!("tb.b_{name}")];
        cfg.mapping.tables = [(
            "tb".to_string(),
            [(format!("b_{name}"), "b".to_string())].into(),
        )]
        .into();
        cfg.incremental.start = Some(StartPosition {
            file,
            pos,
            gtid: gtid.unwrap_or_default(),
        });
        cfg.incremental.heartbeat = false;
        cfg.incremental.rows_per_s_max = rows_max;
        cfg.incremental.mb_per_s_max = mb_max;
        let task = name.to_string();
        let rows = measure(cfg, window_s, || {
            number(
                &destination,
                format!(
                    "SELECT CAST(`rows` AS UNSIGNED) FROM ferry_meta.cdc WHERE task = '{task}'"
                ),
            )
        })
        .await?;
        lines.push(if rows_max > 0 {
            Line {
                knob: "incremental.rows_per_s_max",
                target: rows_max as f64,
                achieved: rows,
                unit: "rows/s",
            }
        } else {
            Line {
                knob: "incremental.mb_per_s_max",
                target: mb_max as f64,
                achieved: rows * (8 + PAD) as f64 / (1u64 << 20) as f64,
                unit: "MiB/s",
            }
        });
    }

    println!("\n| knob | target | achieved | difference |");
    println!("|---|---|---|---|");
    for l in &lines {
        println!(
            "| {} | {} {} | {:.2} {} | {:+.1}% |",
            l.knob,
            l.target,
            l.unit,
            l.achieved,
            l.unit,
            100.0 * (l.achieved - l.target) / l.target
        );
    }
    Ok(())
}
