//! Binlog apply: a backlog of row events written to the source after P0, caught up from P0 by ferry (an
//! incremental-only task) and by native replication with 1 and with N parallel SQL threads, each on a
//! destination reloaded with the data as it was at P0 and checked by CHECKSUM TABLE at the end.

use crate::native;
use crate::report::{Measurement, Report, Stat};
use crate::task;
use crate::workload::{self, EVENTS_PER_TRANSACTION};
use crate::{setup, wrong, Options, Section, Servers};
use ferry_engine::error::Result;
use std::time::Duration;

/// Native replication gets this long to catch up before the bench gives up.
const NATIVE_WAIT_S: u64 = 3600;

pub async fn run(opts: &Options, servers: &Servers, report: &mut Report) -> Result<()> {
    let data = &servers.data;
    let transactions = opts.backlog_events.div_ceil(EVENTS_PER_TRANSACTION);
    let events = transactions * EVENTS_PER_TRANSACTION;
    // The source as loaded is the state at P0; the backlog goes after it. Every contender starts from a
    // destination loaded the same way (the rows are a function of table and id).
    data.load(&servers.source).await?;
    let p0 = native::position(&servers.source).await?;
    let write_s = workload::write_count(&servers.source, data, transactions, 4).await?;
    let end = native::position(&servers.source).await?;
    let expected = data.checksums(&servers.source).await?;
    eprintln!(
        "  backlog: {transactions} transactions, {events} row events written in {write_s:.1} s ({}:{} .. {}:{})",
        p0.file, p0.pos, end.file, end.pos
    );
    let bytes = events * 188;

    let mut ferry = Measurement::new(
        Section::Apply,
        "ferry run --until-caught-up (incremental from P0)",
        events,
        bytes,
    );
    ferry.reference = true;
    ferry.note = Some(
        "time: the report's sync seconds (reading and applying; connect and precheck excluded)"
            .into(),
    );
    let start = format!(
        "[incremental]\nheartbeat = false\nstart = {{ file = \"{}\", pos = {}, gtid = \"{}\" }}\n",
        p0.file, p0.pos, p0.gtid
    );
    let file = task::write(servers, "bench_apply", &["incremental"], &start)?;
    let threads = opts.threads as u32;
    let mut native1 = Measurement::new(
        Section::Apply,
        "native replication, 1 SQL thread",
        events,
        bytes,
    );
    native1.note =
        Some("time: START SLAVE until Exec_Master_Log_Pos reaches the backlog's end".into());
    let mut native_n = Measurement::new(
        Section::Apply,
        &format!("native replication, {threads} parallel SQL threads (optimistic)"),
        events,
        bytes,
    );

    let (mut waits, mut commit_counts) = (Vec::new(), Vec::new());
    for run in 0..opts.runs {
        data.reset(&servers.destination).await?;
        data.load(&servers.destination).await?;
        let f = task::ferry(
            opts,
            servers,
            "ferry apply",
            vec![
                "run".into(),
                "-c".into(),
                file.display().to_string(),
                "--until-caught-up".into(),
                "--json".into(),
            ],
            None,
            &[0],
        )
        .await?;
        let (sync_s, rows, wait_s, commits) = sync_figures(&f.stdout)?;
        waits.push(wait_s);
        commit_counts.push(commits as f64);
        if rows < events {
            return Err(wrong(format!(
                "apply: ferry applied {rows} row events of {events}"
            )));
        }
        check(servers, &expected, &ferry.contender).await?;
        ferry.seconds.push(sync_s);
        ferry.peak_rss_mb.push(f.peak_rss_mb);
        ferry.cpu_s.push(f.cpu_s);
        eprintln!(
            "  apply run {}: ferry {sync_s:.2} s ({:.0} row events/s), peak RSS {:.0} MiB",
            run + 1,
            events as f64 / sync_s,
            f.peak_rss_mb
        );

        for (m, n) in [(&mut native1, 0u32), (&mut native_n, threads)] {
            data.reset(&servers.destination).await?;
            data.load(&servers.destination).await?;
            let t = std::time::Instant::now();
            native::start(&servers.destination, &servers.source, &p0, n).await?;
            native::wait_executed(
                &servers.destination,
                &end,
                Duration::from_secs(NATIVE_WAIT_S),
            )
            .await?;
            let s = t.elapsed().as_secs_f64();
            native::stop(&servers.destination).await?;
            check(servers, &expected, &m.contender).await?;
            m.seconds.push(s);
            eprintln!(
                "  apply run {}: {} {s:.2} s ({:.0} row events/s)",
                run + 1,
                m.contender,
                events as f64 / s
            );
        }
    }
    if let (Some(w), Some(c)) = (Stat::of(&waits), Stat::of(&commit_counts)) {
        ferry.note = Some(format!(
            "time: the report's sync seconds (reading and applying; connect and precheck excluded), of which {:.2} s \
             waiting for the binlog reader; {:.0} destination commits (medians)",
            w.median, c.median
        ));
    }
    report.measurements.extend([ferry, native1, native_n]);
    Ok(())
}

/// (sync seconds, rows applied, seconds the applier waited for the reader, destination commits) from
/// `ferry run --json`.
fn sync_figures(stdout: &str) -> Result<(f64, u64, f64, u64)> {
    let v: serde_json::Value = serde_json::from_str(stdout).map_err(|e| {
        setup(format!(
            "ferry run --json printed no report ({e}): {stdout}"
        ))
    })?;
    let sync = &v["sync"];
    match (sync["seconds"].as_f64(), sync["rows"].as_u64()) {
        (Some(s), Some(r)) => Ok((
            s,
            r,
            sync["reader_wait_s"].as_f64().unwrap_or(0.0),
            sync["commits"].as_u64().unwrap_or(0),
        )),
        _ => Err(setup(format!(
            "ferry run --json: no sync figures: {stdout}"
        ))),
    }
}

async fn check(servers: &Servers, expected: &[Option<u64>], contender: &str) -> Result<()> {
    let got = servers.data.checksums(&servers.destination).await?;
    if got != expected {
        return Err(wrong(format!(
            "apply: {contender}: destination checksums {got:?}, source {expected:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_figures_come_from_the_run_report() {
        assert_eq!(
            sync_figures(
                r#"{"task": "x", "sync": {"seconds": 2.5, "rows": 800, "reader_wait_s": 0.5, "commits": 3}}"#
            )
            .expect("figures"),
            (2.5, 800, 0.5, 3)
        );
        let e = sync_figures(r#"{"task": "x", "sync": null}"#).expect_err("no sync");
        assert!(e.to_string().contains("FERRY-BEN-001"), "{e}");
        assert!(sync_figures("not json").is_err());
    }
}
