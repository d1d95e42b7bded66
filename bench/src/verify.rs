//! Verify: ferry (server digests, and every row hashed client-side) against pt-table-sync --print and a sorted
//! SELECT | sha256sum of both sides, on servers equal but for a few changed rows each tool must find.

use crate::process;
use crate::report::{Measurement, Report};
use crate::task::{self, client_args};
use crate::tools::Tools;
use crate::{setup, wrong, Options, Section, Servers};
use ferry_engine::error::{Result, ResultExt};
use mysql_async::prelude::Queryable;
use std::time::Duration;

/// Rows changed on the destination before the tools run.
pub const CHANGED: u64 = 10;

pub async fn run(
    opts: &Options,
    servers: &Servers,
    tools: &Tools,
    report: &mut Report,
) -> Result<()> {
    let data = &servers.data;
    data.reset(&servers.destination).await?;
    tokio::try_join!(data.load(&servers.source), data.load(&servers.destination))?;
    let changed_tables = plant(servers).await?;
    let file = task::write(servers, "bench_verify", &["schema", "full"], "")?;
    let rows = data.rows();
    let limit = Duration::from_secs(task::LIMIT_S);

    let mut digest = Measurement::new(
        Section::Verify,
        &format!(
            "ferry verify (server digests, {} ranges at once)",
            opts.threads
        ),
        rows,
        data.bytes(),
    );
    digest.reference = true;
    let mut client = Measurement::new(
        Section::Verify,
        "ferry verify --client-hash (every row hashed by ferry)",
        rows,
        data.bytes(),
    );
    let mut pt = Measurement::new(
        Section::Verify,
        "pt-table-sync --print --algorithms Chunk --chunk-size 10000",
        rows,
        data.bytes(),
    );
    pt.note = Some("--print, not --dry-run: --dry-run stops before comparing any row".into());
    let mut sorted = Measurement::new(
        Section::Verify,
        "sorted SELECT | sha256sum, both sides at once (finds tables, not rows)",
        rows,
        data.bytes(),
    );

    for run in 0..opts.runs {
        for (m, extra) in [(&mut digest, None), (&mut client, Some("--client-hash"))] {
            let mut args = vec![
                "verify".to_string(),
                "-c".into(),
                file.display().to_string(),
                "--json".into(),
                "--parallel".into(),
                opts.threads.to_string(),
            ];
            args.extend(extra.map(String::from));
            // Exit 1: differences found, which is what this data set must give.
            let f = task::ferry(opts, servers, &m.contender, args, None, &[1]).await?;
            let v: serde_json::Value = serde_json::from_str(&f.stdout)
                .map_err(|e| setup(format!("ferry verify --json ({e}): {}", f.stdout)))?;
            let (different, checked) = (
                v["totals"]["different"].as_u64(),
                v["totals"]["rows_checked"].as_u64(),
            );
            if different != Some(CHANGED) || checked != Some(rows) {
                return Err(wrong(format!(
                    "verify: {}: {different:?} different of {checked:?} rows checked, {CHANGED} of {rows} expected",
                    m.contender
                )));
            }
            m.seconds.push(f.seconds);
            m.peak_rss_mb.push(f.peak_rss_mb);
            m.cpu_s.push(f.cpu_s);
            eprintln!(
                "  verify run {}: {} {:.2} s, peak RSS {:.0} MiB",
                run + 1,
                m.contender,
                f.seconds,
                f.peak_rss_mb
            );
        }

        if let Some(p) = &tools.pt_table_sync {
            let script = format!(
                "{} --print --algorithms Chunk --chunk-size 10000 --no-check-triggers --no-bin-log --databases {} {} {}; \
                 code=$?; [ $code -eq 0 ] || [ $code -eq 2 ]",
                p.display(),
                data.db,
                task::dsn(&servers.source),
                task::dsn(&servers.destination)
            );
            let sc = servers.scratch.path().to_path_buf();
            let f = tokio::task::spawn_blocking(move || {
                process::shell("pt-table-sync", &script, &sc, limit)
            })
            .await
            .map_err(|e| setup(format!("pt-table-sync: {e}")))??;
            let statements = f
                .stdout
                .lines()
                .filter(|l| {
                    ["REPLACE", "UPDATE", "INSERT", "DELETE"]
                        .iter()
                        .any(|k| l.starts_with(k))
                })
                .count() as u64;
            if statements != CHANGED {
                return Err(wrong(format!(
                    "verify: pt-table-sync printed {statements} statements, {CHANGED} expected: {}",
                    f.stderr_tail()
                )));
            }
            pt.seconds.push(f.seconds);
            eprintln!("  verify run {}: pt-table-sync {:.2} s", run + 1, f.seconds);
        }

        if let Some(c) = &tools.client {
            let side = |i: &ferry_sim::Instance| {
                let tables: Vec<String> = data.table_names();
                format!(
                    "for t in {}; do {} {} --batch --skip-column-names --quick -e \"SELECT * FROM {}.$t ORDER BY id\" | sha256sum; done",
                    tables.join(" "),
                    c.display(),
                    client_args(i),
                    data.db
                )
            };
            let script = format!(
                "({}) > {sc}/sorted-a & ({}) > {sc}/sorted-b; wait; diff {sc}/sorted-a {sc}/sorted-b | grep -c '^<'; true",
                side(&servers.source),
                side(&servers.destination),
                sc = servers.scratch.path().display()
            );
            let sc = servers.scratch.path().to_path_buf();
            let f = tokio::task::spawn_blocking(move || {
                process::shell("sorted SELECT", &script, &sc, limit)
            })
            .await
            .map_err(|e| setup(format!("sorted SELECT: {e}")))??;
            let differing: usize = f.stdout.trim().parse().unwrap_or(usize::MAX);
            if differing != changed_tables {
                return Err(wrong(format!(
                    "verify: sorted SELECT sums differ for {differing} tables, {changed_tables} expected: {}",
                    f.stderr_tail()
                )));
            }
            sorted.seconds.push(f.seconds);
            eprintln!("  verify run {}: sorted SELECT {:.2} s", run + 1, f.seconds);
        }
    }
    report.measurements.extend([digest, client]);
    for m in [pt, sorted] {
        if m.seconds.is_empty() {
            report.notes.push(format!(
                "verify: {} not measured (tool missing)",
                m.contender
            ));
        } else {
            report.measurements.push(m);
        }
    }
    Ok(())
}

/// Changes CHANGED rows on the destination (outside its binlog), spread over the tables, and reads every table
/// once on both servers so each tool starts from the same warm buffer pools. Returns how many tables differ.
async fn plant(servers: &Servers) -> Result<usize> {
    let data = &servers.data;
    let mut c = servers.destination.conn().await?;
    c.query_drop("SET SESSION sql_log_bin = 0")
        .await
        .ctx("planting differences")?;
    let mut tables = std::collections::BTreeSet::new();
    for i in 0..CHANGED {
        let t = (i as usize % data.tables) + 1;
        let id = 1 + (i * 7919) % data.rows_per_table;
        c.query_drop(format!(
            "UPDATE `{}`.`sbtest{t}` SET pad = CONCAT('changed ', {i}) WHERE id = {id}",
            data.db
        ))
        .await
        .ctx("planting differences")?;
        tables.insert(t);
    }
    c.disconnect().await.ctx("planting differences")?;
    for s in [&servers.source, &servers.destination] {
        for t in data.table_names() {
            s.exec(&format!(
                "SELECT COUNT(*), SUM(LENGTH(pad)) FROM `{}`.`{t}`",
                data.db
            ))
            .await?;
        }
    }
    Ok(tables.len())
}
