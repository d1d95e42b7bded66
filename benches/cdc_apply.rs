//! Macro benchmark: ferry's binlog apply rate against native single-threaded replication on the same stream.
//!
//! `cargo bench --bench cdc_apply` (FERRY_BENCH_ROWS sets the number of row events, default 200000). Three local
//! servers: a source and two destinations loaded with the same sysbench-like tables. A write-only stream (per
//! transaction: an indexed update, a non-indexed update, a delete and an insert, so four row events) is written to
//! the source from P0; then one destination replicates it natively (CHANGE MASTER TO P0, START SLAVE, until the
//! SQL thread reaches the end) and ferry applies it to the other (incremental from P0, drained to the end). Both
//! destinations must end with the source's CHECKSUM TABLE values. Prints row events/s of each and the ratio.

use ferry_engine::cdc::sync::Control;
use ferry_engine::config::{MigrationType, StartPosition, TaskConfig};
use ferry_engine::migration::{self, RunOptions};
use ferry_sim::{Backend, Instance, InstanceOptions};
use mysql_async::prelude::Queryable;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const TABLES: usize = 4;
const ROWS_PER_TABLE: u64 = 50_000;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and expects a quick exit.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(bench()) {
        eprintln!("cdc_apply benchmark failed: {e}");
        std::process::exit(1);
    }
}

fn table_sql(t: usize) -> String {
    format!(
        "CREATE TABLE sbtest.sbtest{t} (id INT UNSIGNED NOT NULL PRIMARY KEY, k INT UNSIGNED NOT NULL DEFAULT 0, \
         c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_{t} (k)) ENGINE=InnoDB"
    )
}

/// The same tables and rows on any server (MariaDB's sequence engine generates them).
async fn load(server: &Instance) -> Result<(), Box<dyn std::error::Error>> {
    let mut c = server.conn().await?;
    c.query_drop("SET SESSION sql_log_bin = 0").await?;
    c.query_drop("CREATE DATABASE sbtest").await?;
    for t in 1..=TABLES {
        c.query_drop(table_sql(t)).await?;
        c.query_drop(format!(
            "INSERT INTO sbtest.sbtest{t} (id, k, c, pad) SELECT seq, (seq * 7919) % {ROWS_PER_TABLE} + 1, \
             LEFT(CONCAT(SHA2(seq, 256), SHA2(seq + 1, 256)), 119), LEFT(SHA2(seq + {t}, 256), 59) \
             FROM sbtest.seq_1_to_{ROWS_PER_TABLE}"
        ))
        .await?;
    }
    Ok(())
}

/// Writes `transactions` write-only transactions (four row events each) from `writers` connections.
async fn stream(
    source: &Instance,
    transactions: u64,
    writers: u64,
) -> Result<f64, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for w in 0..writers {
        let url = source.url();
        set.spawn(async move {
            let opts = mysql_async::Opts::from_url(&url)?;
            let mut c = mysql_async::Conn::new(opts).await?;
            let mut rng = StdRng::seed_from_u64(42 + w);
            for _ in 0..transactions / writers {
                let t = rng.random_range(1..=TABLES);
                let (a, b, d) = (
                    rng.random_range(1..=ROWS_PER_TABLE),
                    rng.random_range(1..=ROWS_PER_TABLE),
                    rng.random_range(1..=ROWS_PER_TABLE),
                );
                let text: String = (0..10)
                    .map(|_| format!("{:011}", rng.random::<u32>()))
                    .collect::<Vec<_>>()
                    .join("-");
                c.query_drop(format!(
                    "BEGIN; UPDATE sbtest.sbtest{t} SET k = k + 1 WHERE id = {a}; \
                     UPDATE sbtest.sbtest{t} SET c = '{text}' WHERE id = {b}; \
                     DELETE FROM sbtest.sbtest{t} WHERE id = {d}; \
                     INSERT INTO sbtest.sbtest{t} (id, k, c, pad) VALUES ({d}, {a}, '{text}', 'pad'); COMMIT"
                ))
                .await?;
            }
            c.disconnect().await?;
            Ok::<(), mysql_async::Error>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(started.elapsed().as_secs_f64())
}

async fn status(server: &Instance) -> Result<(String, u64, u64), Box<dyn std::error::Error>> {
    let row: Option<mysql_async::Row> = server.query_first("SHOW MASTER STATUS").await?;
    let row = row.ok_or("SHOW MASTER STATUS: no binlog")?;
    let file: String = row.get(0).ok_or("file")?;
    let pos: u64 = row.get(1).ok_or("pos")?;
    let mut c = server.conn().await?;
    let gtid: Option<String> = c.query_first("SELECT @@GLOBAL.gtid_binlog_pos").await?;
    let seq = gtid
        .unwrap_or_default()
        .rsplit('-')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((file, pos, seq))
}

async fn checksums(server: &Instance) -> Result<Vec<(String, u64)>, Box<dyn std::error::Error>> {
    let list: Vec<String> = (1..=TABLES).map(|t| format!("sbtest.sbtest{t}")).collect();
    let rows: Vec<(String, Option<u64>)> = server
        .query(&format!("CHECKSUM TABLE {}", list.join(", ")))
        .await?;
    Ok(rows.into_iter().map(|(t, c)| (t, c.unwrap_or(0))).collect())
}

async fn bench() -> Result<(), Box<dyn std::error::Error>> {
    let row_events: u64 = std::env::var("FERRY_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let transactions = row_events.div_ceil(4);
    let backend = Backend::Local;
    let (source, native, ferry_dst) = tokio::try_join!(
        Instance::start_with(backend, InstanceOptions::default()),
        Instance::start_with(backend, InstanceOptions::default()),
        Instance::start_with(backend, InstanceOptions::default()),
    )?;
    eprintln!("servers: {} (local processes)", source.version);
    tokio::try_join!(load(&source), load(&native), load(&ferry_dst))?;

    let (p0_file, p0_pos, _) = status(&source).await?;
    let mut c = source.conn().await?;
    let p0_gtid: Option<String> = c.query_first("SELECT @@GLOBAL.gtid_binlog_pos").await?;
    drop(c);
    let write_s = stream(&source, transactions, 4).await?;
    let (end_file, end_pos, _) = status(&source).await?;
    eprintln!(
        "stream: {transactions} transactions, {} row events written in {write_s:.1} s, {p0_file}:{p0_pos} .. {end_file}:{end_pos}",
        transactions * 4
    );

    // Native replication, single-threaded (MariaDB's default slave_parallel_threads = 0).
    let ep = source.endpoint();
    native
        .exec(&format!(
            "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, MASTER_USER = '{}', MASTER_PASSWORD = '{}', \
             MASTER_LOG_FILE = '{p0_file}', MASTER_LOG_POS = {p0_pos}, MASTER_USE_GTID = no",
            ep.port,
            ep.user,
            ep.password.clone().unwrap_or_default()
        ))
        .await?;
    let started = Instant::now();
    native.exec("START SLAVE").await?;
    let deadline = started + Duration::from_secs(1800);
    loop {
        let row: Option<mysql_async::Row> = native.query_first("SHOW SLAVE STATUS").await?;
        let row = row.ok_or("SHOW SLAVE STATUS: not a replica")?;
        let file: Option<String> = row.get("Relay_Master_Log_File");
        let pos: Option<u64> = row.get("Exec_Master_Log_Pos");
        let err: Option<String> = row.get("Last_SQL_Error");
        if let Some(e) = err.filter(|e| !e.is_empty()) {
            return Err(format!("native replication stopped: {e}").into());
        }
        if file.as_deref() == Some(end_file.as_str()) && pos.unwrap_or(0) >= end_pos {
            break;
        }
        if Instant::now() > deadline {
            return Err("native replication did not catch up in 30 min".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let native_s = started.elapsed().as_secs_f64();
    native.exec("STOP SLAVE").await?;

    // ferry: incremental from P0, drained to the source's position.
    let mut cfg = TaskConfig::parse(&format!(
        "[task]\nname = \"bench\"\ntypes = [\"incremental\"]\n\
         [source]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\npassword = \"{}\"\n\
         [destination]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\npassword = \"{}\"\n\
         [objects]\ndatabases = [\"sbtest\"]\n",
        ep.port,
        ep.user,
        ep.password.clone().unwrap_or_default(),
        ferry_dst.port(),
        ferry_dst.endpoint().user,
        ferry_dst.endpoint().password.unwrap_or_default()
    ))?;
    cfg.task.types = vec![MigrationType::Incremental];
    cfg.incremental.heartbeat = false;
    cfg.incremental.start = Some(StartPosition {
        file: p0_file.clone(),
        pos: p0_pos,
        gtid: p0_gtid.unwrap_or_default(),
    });
    let (ctl, rx) = tokio::sync::watch::channel(Control::Run);
    ctl.send(Control::Drain)?;
    let report = migration::run(
        &cfg,
        &RunOptions {
            progress: false,
            control: Some(rx),
            live: None,
        },
    )
    .await?;
    let sync = report.sync.ok_or("no sync report")?;
    let ferry_s = sync.seconds;

    let (s, n, f) = tokio::try_join!(
        checksums(&source),
        checksums(&native),
        checksums(&ferry_dst)
    )?;
    let native_rate = (transactions * 4) as f64 / native_s;
    let ferry_rate = sync.rows as f64 / ferry_s;
    println!(
        "cdc_apply: {} row events in {} transactions",
        transactions * 4,
        transactions
    );
    println!(
        "  native replication (1 SQL thread): {native_s:.2} s, {native_rate:.0} row events/s, checksums {}",
        if n == s { "equal" } else { "DIFFERENT" }
    );
    println!(
        "  ferry ({:?} mode, batch {} rows):  {ferry_s:.2} s, {ferry_rate:.0} row events/s ({} rows applied, {} commits), checksums {}",
        sync.mode,
        cfg.incremental.batch_rows,
        sync.rows,
        sync.commits,
        if f == s { "equal" } else { "DIFFERENT" }
    );
    println!(
        "  ferry waited {:.2} s of {ferry_s:.2} s for the binlog reader",
        sync.reader_wait_s
    );
    println!("  ratio ferry / native: {:.2}", ferry_rate / native_rate);
    if n != s || f != s {
        return Err(format!("checksums differ: source {s:?} native {n:?} ferry {f:?}").into());
    }
    Ok(())
}
