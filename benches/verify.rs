//! Macro benchmark: ferry's verifier against pt-table-sync (Chunk algorithm, dry run with --print) and a sorted
//! SELECT piped through sha256sum, on the same servers in the same run.
//!
//! `cargo bench --bench verify` (FERRY_BENCH_ROWS sets the table size, default 2,000,000). Two local servers are
//! loaded with the same sysbench-shaped table (id, k, c CHAR(120), pad CHAR(60), index on k); 10 rows are then
//! changed on the destination outside the binlog. Every tool must see the difference: ferry reports the 10 rows,
//! pt-table-sync prints 10 statements, the two sha256 sums differ. Prints seconds and rows/s of each, and the
//! ratio ferry / pt-table-sync. pt-table-sync comes from Debian's percona-toolkit (`apt-get install
//! percona-toolkit`); without it that line is skipped.

use ferry_engine::config::TaskConfig;
use ferry_sim::{Backend, Instance, InstanceOptions};
use ferry_verifier::{Mode, VerifyOptions};
use mysql_async::prelude::Queryable;
use std::process::{Command, Stdio};
use std::time::Instant;

const CHANGED: u64 = 10;

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
        eprintln!("verify benchmark failed: {e}");
        std::process::exit(1);
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

async fn load(server: &Instance, rows: u64) -> Res<()> {
    let mut c = server.conn().await?;
    c.query_drop("SET SESSION sql_log_bin = 0").await?;
    c.query_drop("CREATE DATABASE sbtest").await?;
    c.query_drop(
        "CREATE TABLE sbtest.sbtest1 (id INT UNSIGNED NOT NULL PRIMARY KEY, k INT UNSIGNED NOT NULL DEFAULT 0, \
         c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k)) ENGINE=InnoDB",
    )
    .await?;
    let step = 200_000;
    let mut lo = 1;
    while lo <= rows {
        let hi = (lo + step - 1).min(rows);
        c.query_drop(format!(
            "INSERT INTO sbtest.sbtest1 (id, k, c, pad) SELECT seq, (seq * 7919) % {rows} + 1, \
             LEFT(CONCAT(SHA2(seq, 256), SHA2(seq + 1, 256)), 119), LEFT(SHA2(seq + 2, 256), 59) \
             FROM sbtest.seq_{lo}_to_{hi}"
        ))
        .await?;
        lo = hi + 1;
    }
    Ok(())
}

fn dsn(i: &Instance) -> String {
    let ep = i.endpoint();
    format!(
        "h=127.0.0.1,P={},u={},p={},D=sbtest,t=sbtest1",
        ep.port,
        ep.user,
        ep.password.unwrap_or_default()
    )
}

/// `SELECT * ... ORDER BY id` through the mariadb client into sha256sum: the sum.
fn sorted_sha256(i: &Instance) -> Res<String> {
    let ep = i.endpoint();
    let sh = format!(
        "mariadb -h127.0.0.1 -P{} -u{} -p{} --batch --skip-column-names --quick \
         -e 'SELECT * FROM sbtest.sbtest1 ORDER BY id' | sha256sum",
        ep.port,
        ep.user,
        ep.password.unwrap_or_default()
    );
    let out = Command::new("sh").args(["-c", &sh]).output()?;
    if !out.status.success() {
        return Err(format!("sorted select: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

async fn bench() -> Res<()> {
    let rows: u64 = std::env::var("FERRY_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    // A buffer pool that holds the table, as a production server's would: the tools then compete on the work
    // they make the servers do, not on reading pages from disk (with the default 128 MiB every tool measured
    // the same ~6 s of I/O).
    let opts = || InstanceOptions {
        extra_args: vec!["--innodb-buffer-pool-size=2G".into()],
        ..Default::default()
    };
    let (source, destination) = tokio::try_join!(
        Instance::start_with(Backend::Local, opts()),
        Instance::start_with(Backend::Local, opts()),
    )?;
    let started = Instant::now();
    tokio::try_join!(load(&source, rows), load(&destination, rows))?;
    println!(
        "verify bench: {rows} sysbench-shaped rows loaded on both servers in {:.0} s ({})",
        started.elapsed().as_secs_f64(),
        source.version
    );
    {
        let mut c = destination.conn().await?;
        c.query_drop("SET SESSION sql_log_bin = 0").await?;
        c.query_drop(format!(
            "UPDATE sbtest.sbtest1 SET pad = REVERSE(pad) WHERE id % {} = 0 LIMIT {CHANGED}",
            rows / CHANGED
        ))
        .await?;
        // Warm both buffer pools the same way before any tool runs.
        for s in [&source, &destination] {
            s.exec("SELECT COUNT(*), SUM(LENGTH(pad)) FROM sbtest.sbtest1")
                .await?;
        }
    }
    let ep = |i: &Instance| {
        let e = i.endpoint();
        format!(
            "host = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\npassword = \"{}\"\n",
            e.port,
            e.user,
            e.password.unwrap_or_default()
        )
    };
    let cfg = TaskConfig::parse(&format!(
        "[task]\nname = \"bench\"\ntypes = [\"schema\", \"full\"]\n[source]\n{}[destination]\n{}\
         [objects]\ndatabases = [\"sbtest\"]\n",
        ep(&source),
        ep(&destination)
    ))?;

    let mut lines = Vec::new();
    let mut ferry_exact_s = None;
    for (name, client_only, parallel, chunk_rows) in [
        (
            "ferry verify (digests, 4 ranges of 10,000 at once)",
            false,
            4,
            10_000,
        ),
        (
            "ferry verify (digests, 4 ranges of 50,000 at once)",
            false,
            4,
            50_000,
        ),
        (
            "ferry verify (digests, 1 range of 10,000 at a time)",
            false,
            1,
            10_000,
        ),
        (
            "ferry verify --client-hash (4 ranges of 10,000)",
            true,
            4,
            10_000,
        ),
    ] {
        let t = Instant::now();
        let r = ferry_verifier::verify(
            &cfg,
            &VerifyOptions {
                parallel,
                chunk_rows,
                client_only,
                mode: Mode::Full,
                ..Default::default()
            },
        )
        .await?;
        let s = t.elapsed().as_secs_f64();
        let different = r.total(|t| t.different);
        if different != CHANGED || r.rows_checked() != rows {
            return Err(format!(
                "{name}: {different} different of {} rows: {r:?}",
                r.rows_checked()
            )
            .into());
        }
        if !client_only && parallel == 4 && chunk_rows == 10_000 {
            ferry_exact_s = Some(s);
        }
        lines.push(format!(
            "  {name:<52} {s:>7.1} s {:>9.0} rows/s  ({different} different found)",
            rows as f64 / s
        ));
    }

    let pt = Command::new("pt-table-sync")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let mut pt_s = None;
    if pt {
        let t = Instant::now();
        let out = Command::new("pt-table-sync")
            .args([
                "--print",
                "--algorithms",
                "Chunk",
                "--chunk-size",
                "10000",
                "--no-check-triggers",
                "--no-bin-log",
                &dsn(&source),
                &dsn(&destination),
            ])
            .output()?;
        let s = t.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&out.stdout);
        let statements = text
            .lines()
            .filter(|l| {
                l.starts_with("REPLACE")
                    || l.starts_with("UPDATE")
                    || l.starts_with("INSERT")
                    || l.starts_with("DELETE")
            })
            .count() as u64;
        // pt-table-sync exits 2 when a table differed (0 when none did, 1 or 3 on an error).
        if !matches!(out.status.code(), Some(0) | Some(2)) || statements != CHANGED {
            return Err(format!(
                "pt-table-sync: {statements} statements, {:?}: {}\n{text}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        pt_s = Some(s);
        lines.push(format!(
            "  {:<52} {s:>7.1} s {:>9.0} rows/s  ({statements} statements printed)",
            "pt-table-sync --print --algorithms Chunk",
            rows as f64 / s
        ));
    } else {
        lines.push("  pt-table-sync: not installed (apt-get install percona-toolkit)".into());
    }

    let t = Instant::now();
    let (a, b) = std::thread::scope(|sc| {
        let a = sc.spawn(|| sorted_sha256(&source).map_err(|e| e.to_string()));
        let b = sc.spawn(|| sorted_sha256(&destination).map_err(|e| e.to_string()));
        (a.join(), b.join())
    });
    let s = t.elapsed().as_secs_f64();
    let (a, b) = match (a, b) {
        (Ok(Ok(a)), Ok(Ok(b))) => (a, b),
        other => return Err(format!("sorted select: {other:?}").into()),
    };
    if a == b {
        return Err("the sorted SELECT sums are equal although 10 rows differ".into());
    }
    lines.push(format!(
        "  {:<52} {s:>7.1} s {:>9.0} rows/s  (sums differ; no row located)",
        "sorted SELECT | sha256sum, both sides at once",
        rows as f64 / s
    ));
    for l in lines {
        println!("{l}");
    }
    if let (Some(f), Some(p)) = (ferry_exact_s, pt_s) {
        println!(
            "  ratio pt-table-sync time / ferry time (digests, 4 ranges of 10,000; pt-table-sync's chunks are 10,000 too): {:.2}x",
            p / f
        );
    }
    Ok(())
}
