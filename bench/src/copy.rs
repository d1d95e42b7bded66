//! Full copy: ferry against mariadb-dump | mariadb, mydumper + myloader and SELECT INTO OUTFILE + LOAD DATA, each
//! into an emptied destination, each checked by CHECKSUM TABLE against the source.

use crate::process;
use crate::report::{Measurement, Report};
use crate::task::{self, client_args, mydumper_args};
use crate::tools::Tools;
use crate::{setup, wrong, Options, Section, Servers};
use ferry_engine::error::{Result, ResultExt};
use mysql_async::prelude::Queryable;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub async fn run(
    opts: &Options,
    servers: &Servers,
    tools: &Tools,
    report: &mut Report,
) -> Result<()> {
    let data = &servers.data;
    let expected = data.checksums(&servers.source).await?;
    let threads = opts.threads;
    let limit = Duration::from_secs(task::LIMIT_S);
    let scratch = servers.scratch.path();

    let mut ferry = Measurement::new(
        Section::Copy,
        &format!("ferry run (schema + full, {threads} workers)"),
        data.rows(),
        data.bytes(),
    );
    ferry.reference = true;
    let file = task::write(
        servers,
        "bench_copy",
        &["schema", "full"],
        &format!("[full]\nworkers = {threads}\n"),
    )?;
    let mut dump = Measurement::new(
        Section::Copy,
        "mariadb-dump | mariadb",
        data.rows(),
        data.bytes(),
    );
    dump.note = Some("--single-transaction --quick, one stream".into());
    let mut myd = Measurement::new(
        Section::Copy,
        &format!("mydumper + myloader ({threads} threads each, dump then load)"),
        data.rows(),
        data.bytes(),
    );
    let mut outfile = Measurement::new(
        Section::Copy,
        &format!("OUTFILE + LOAD DATA ({threads} sessions, a table at a time each)"),
        data.rows(),
        data.bytes(),
    );

    let mut copy_phase_s = Vec::new();
    for run in 0..opts.runs {
        // ferry
        data.reset(&servers.destination).await?;
        let f = task::ferry(
            opts,
            servers,
            "ferry copy",
            vec![
                "run".into(),
                "-c".into(),
                file.display().to_string(),
                "--json".into(),
            ],
            None,
            &[0],
        )
        .await?;
        check(servers, &expected, &ferry.contender).await?;
        let v: serde_json::Value = serde_json::from_str(&f.stdout).map_err(|e| {
            setup(format!(
                "ferry run --json printed no report ({e}): {}",
                f.stdout
            ))
        })?;
        copy_phase_s.push(v["copy"]["seconds"].as_f64().unwrap_or(0.0));
        ferry.seconds.push(f.seconds);
        ferry.peak_rss_mb.push(f.peak_rss_mb);
        ferry.cpu_s.push(f.cpu_s);
        eprintln!(
            "  copy run {}: ferry {:.2} s, peak RSS {:.0} MiB",
            run + 1,
            f.seconds,
            f.peak_rss_mb
        );

        // mariadb-dump | mariadb
        if let (Some(d), Some(c)) = (&tools.dump, &tools.client) {
            data.reset(&servers.destination).await?;
            let script = format!(
                "{} {} --single-transaction --quick --databases {} | {} {}",
                d.display(),
                client_args(&servers.source),
                data.db,
                c.display(),
                client_args(&servers.destination)
            );
            let s = blocking(
                move |sc| process::shell("mariadb-dump | mariadb", &script, &sc, limit),
                scratch,
            )
            .await?;
            check(servers, &expected, &dump.contender).await?;
            dump.seconds.push(s.seconds);
            eprintln!(
                "  copy run {}: mariadb-dump | mariadb {:.2} s",
                run + 1,
                s.seconds
            );
        }

        // mydumper + myloader
        if let (Some(d), Some(l)) = (&tools.mydumper, &tools.myloader) {
            data.reset(&servers.destination).await?;
            let dir = scratch.join(format!("mydumper-{run}"));
            let script = format!(
                "rm -rf {dir} && {} {} --database {db} --threads {threads} --outputdir {dir} && \
                 {} {} --directory {dir} --threads {threads} --overwrite-tables; status=$?; rm -rf {dir}; exit $status",
                d.display(),
                mydumper_args(&servers.source),
                l.display(),
                mydumper_args(&servers.destination),
                db = data.db,
                dir = dir.display(),
            );
            let s = blocking(
                move |sc| process::shell("mydumper + myloader", &script, &sc, limit),
                scratch,
            )
            .await?;
            check(servers, &expected, &myd.contender).await?;
            myd.seconds.push(s.seconds);
            eprintln!(
                "  copy run {}: mydumper + myloader {:.2} s",
                run + 1,
                s.seconds
            );
        }

        // SELECT INTO OUTFILE + LOAD DATA INFILE
        data.reset(&servers.destination).await?;
        let s = outfile_copy(servers, threads).await?;
        check(servers, &expected, &outfile.contender).await?;
        outfile.seconds.push(s);
        eprintln!("  copy run {}: OUTFILE + LOAD DATA {s:.2} s", run + 1);
    }
    if let Some(c) = crate::report::Stat::of(&copy_phase_s) {
        ferry.note = Some(format!(
            "of which the chunk copy {:.2} s (median); the rest is connect, precheck, schema and post-data objects",
            c.median
        ));
    }
    report.measurements.push(ferry);
    for m in [dump, myd] {
        if m.seconds.is_empty() {
            report
                .notes
                .push(format!("copy: {} not measured (tool missing)", m.contender));
        } else {
            report.measurements.push(m);
        }
    }
    report.measurements.push(outfile);
    Ok(())
}

/// Runs a blocking contender with the scratch folder.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce(std::path::PathBuf) -> Result<T> + Send + 'static,
    scratch: &std::path::Path,
) -> Result<T> {
    let sc = scratch.to_path_buf();
    tokio::task::spawn_blocking(move || f(sc))
        .await
        .map_err(|e| setup(format!("a contender's thread: {e}")))?
}

/// The destination's checksums must be the source's.
async fn check(servers: &Servers, expected: &[Option<u64>], contender: &str) -> Result<()> {
    let got = servers.data.checksums(&servers.destination).await?;
    if got != expected {
        return Err(wrong(format!(
            "copy: {contender}: destination checksums {got:?}, source {expected:?}"
        )));
    }
    Ok(())
}

/// Creates the tables on the destination, then `threads` sessions each take the next table: the source writes
/// it to a file (SELECT INTO OUTFILE), the destination reads it (LOAD DATA INFILE). Both servers run on this
/// host, so the file is where both can reach it. Returns wall seconds.
async fn outfile_copy(servers: &Servers, threads: usize) -> Result<f64> {
    let data = &servers.data;
    let started = Instant::now();
    let mut c = servers.destination.conn().await?;
    c.query_drop(format!("CREATE DATABASE `{}`", data.db))
        .await
        .ctx("OUTFILE copy")?;
    for t in 1..=data.tables {
        c.query_drop(data.create_sql(t)).await.ctx("OUTFILE copy")?;
    }
    drop(c);
    let queue = Arc::new(Mutex::new((1..=data.tables).collect::<Vec<usize>>()));
    let mut set = tokio::task::JoinSet::new();
    for w in 0..threads.min(data.tables) {
        let queue = queue.clone();
        let (mut src, mut dst) = (
            servers.source.conn().await?,
            servers.destination.conn().await?,
        );
        let db = data.db.clone();
        let dir = servers.scratch.path().to_path_buf();
        set.spawn(async move {
            loop {
                let next = queue.lock().map(|mut q| q.pop()).unwrap_or(None);
                let Some(t) = next else { break };
                let file = dir.join(format!("outfile-{w}-sbtest{t}.txt"));
                let _ = std::fs::remove_file(&file);
                src.query_drop(format!(
                    "SELECT * INTO OUTFILE '{}' FROM `{db}`.`sbtest{t}`",
                    file.display()
                ))
                .await
                .ctx("SELECT INTO OUTFILE")?;
                dst.query_drop(format!(
                    "LOAD DATA INFILE '{}' INTO TABLE `{db}`.`sbtest{t}`",
                    file.display()
                ))
                .await
                .ctx("LOAD DATA INFILE")?;
                let _ = std::fs::remove_file(&file);
            }
            Ok::<(), ferry_engine::error::Error>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r.map_err(|e| setup(format!("OUTFILE copy: {e}")))??;
    }
    Ok(started.elapsed().as_secs_f64())
}
