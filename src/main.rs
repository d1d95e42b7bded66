//! The `ferry` command line: argument parsing and output only; the work is in the engine, verifier and sim.

use clap::{Parser, Subcommand};
use ferry_engine::cdc::sync::Control;
use ferry_engine::config::TaskConfig;
use ferry_engine::error::Error;
use ferry_engine::precheck::{self, Outcome};
use ferry_engine::{migration, status};
use ferry_verifier::{Mode, VerifyOptions, VerifyReport};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ferry",
    version,
    about = "Moves MySQL-family databases between clusters and proves nothing was lost"
)]
struct Cli {
    /// Log level filter (also RUST_LOG), e.g. info, debug, ferry_engine=debug.
    #[arg(long, global = true, default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    Full,
    Sample,
    Online,
    Since,
}

/// A seed for a sample when none is given (printed with the report, so the sample can be taken again).
fn drawn_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 % 1_000_000_000)
        .unwrap_or(1)
}

#[derive(Subcommand)]
enum SimCmd {
    /// List the scenarios in a folder with their one-line incident descriptions.
    List {
        #[arg(default_value = "scenarios")]
        dir: PathBuf,
    },
    /// Run scenario folders (each prints its SEED first; records under target/sim/<scenario>/<seed>/).
    Run {
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Run with this seed (else the scenario's own, else one drawn and printed).
        #[arg(long)]
        seed: Option<u64>,
        /// docker, local or auto (FERRY_BACKEND).
        #[arg(long, default_value = "auto")]
        backend: String,
        /// Where records go.
        #[arg(long, default_value = "target/sim")]
        records: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Run the model simulator's seeded schedules (no server).
    Model {
        #[arg(long, default_value_t = 100_000)]
        schedules: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a task: schema, full copy and binlog sync, resuming where an earlier run stopped. With incremental,
    /// sync runs until Ctrl-C / SIGTERM (commits what is whole, then exits; run again to continue).
    Run {
        #[arg(short, long)]
        config: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Incremental: stop once the destination has applied everything the source had written when sync
        /// started (a rehearsal, or a catch-up before cutover).
        #[arg(long)]
        until_caught_up: bool,
    },
    /// Compare every selected table between source and destination; differences go to a JSON-lines diff and a
    /// repair SQL file in --out.
    Verify {
        #[arg(short, long)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
        /// Key ranges compared at once (one connection per side each).
        #[arg(long, default_value_t = 4)]
        parallel: usize,
        /// full: every row, writes stopped; sample: a seeded share of rows; online: every row while sync runs
        /// (differences rechecked after the destination caught up); since: rows changed after --since.
        #[arg(long, value_enum, default_value = "full")]
        mode: ModeArg,
        /// sample mode: percent of rows.
        #[arg(long, default_value_t = 10.0)]
        sample_percent: f64,
        /// sample mode: the seed choosing the rows (drawn and printed when not given).
        #[arg(long)]
        seed: Option<u64>,
        /// since mode: the source binlog position `<file>:<offset>` after which changed rows are verified.
        #[arg(long, required_if_eq("mode", "since"))]
        since: Option<String>,
        /// Folder for diff.jsonl, repair.sql, summary.json and progress.json.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Continue the verification recorded in --out, table by table from its last key.
        #[arg(long, requires = "out")]
        resume: bool,
        /// Apply the repair SQL to the destination (one transaction), then verify again.
        #[arg(long)]
        apply_repair: bool,
        /// FLOAT/DOUBLE values this close are equal (relative to the larger; absolute below 1). Default: bit-exact.
        #[arg(long)]
        float_tolerance: Option<f64>,
        /// Hash every row client-side instead of letting the servers digest key ranges.
        #[arg(long)]
        client_hash: bool,
        /// Rows per key range (default: the task's full.chunk_rows).
        #[arg(long)]
        chunk_rows: Option<u64>,
        /// online and since modes: the longest wait for the destination to apply past a source position.
        #[arg(long, default_value_t = 120)]
        recheck_wait_s: u64,
    },
    /// Check connectivity and server versions before running.
    Precheck {
        #[arg(short, long)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Show the task's phase and per-table progress from the destination's metadata.
    Status {
        #[arg(short, long)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Switch the application over: check lag, fence off every older ferry process of the task, stop the
    /// source's writes (read_only, or wait for the operator's stop), apply up to the final position, create
    /// triggers and enable events, optionally revoke ferry's write rights. Safe to run again. Exit 0: done,
    /// 1: rolled back (nothing switched) or a revoke that did not take, 2: unknown or error.
    Cutover {
        #[arg(short, long)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Pause the running task (sync commits and applies nothing more, the copy takes no new chunk).
    Pause {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Resume a paused task.
    Resume {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Stop the running task: sync commits what is whole and the process exits (run again to continue).
    Stop {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Change a running task's throttle (0 = unlimited); unset knobs keep their rate.
    Throttle {
        #[arg(short, long)]
        config: PathBuf,
        /// full or incremental.
        #[arg(long)]
        phase: String,
        #[arg(long)]
        source_qps_max: Option<u64>,
        #[arg(long)]
        rows_per_s_max: Option<u64>,
        #[arg(long)]
        mb_per_s_max: Option<u64>,
    },
    /// Remove the task's metadata from the destination (a cut-over task; --force for any other, abandoning it).
    Release {
        #[arg(short, long)]
        config: PathBuf,
        #[arg(long)]
        force: bool,
    },
    /// Rehearse incidents: scenario folders replayed against throwaway servers with faults, and the model
    /// simulator.
    Sim {
        #[command(subcommand)]
        command: SimCmd,
    },
    /// Measure ferry side by side with the tools a user would pick instead (mariadb-dump, mydumper/myloader,
    /// OUTFILE + LOAD DATA, native replication, pt-table-sync) on two throwaway servers: a markdown table
    /// (medians of --runs), report.json and ratios.svg in --out.
    Bench {
        /// sysbench-shaped tables (sbtest1..N).
        #[arg(long, default_value_t = 8)]
        tables: usize,
        /// Rows per table.
        #[arg(long, default_value_t = 250_000)]
        rows: u64,
        /// Runs per contender; each figure is their median (min and max shown).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Threads of every parallel contender.
        #[arg(long, default_value_t = 4)]
        threads: usize,
        /// Row events of the apply backlog.
        #[arg(long, default_value_t = 200_000)]
        backlog_events: u64,
        /// Seconds of steady write load for the lag section.
        #[arg(long, default_value_t = 30)]
        lag_s: u64,
        /// Write transactions per second of that load (four row events each).
        #[arg(long, default_value_t = 250)]
        lag_tps: u64,
        /// Seconds each throttle knob is measured over.
        #[arg(long, default_value_t = 30)]
        throttle_window_s: u64,
        /// Sections to run, comma-separated: copy, apply, lag, verify, throttle (default: all).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Folder for report.md, report.json and ratios.svg.
        #[arg(long, default_value = "target/ferry-bench")]
        out: PathBuf,
    },
    /// Start two throwaway servers, build a demo shop database, migrate it, verify it, stop the servers.
    Demo {
        /// Leave the servers running and print their URLs.
        #[arg(long)]
        keep: bool,
        /// Data size multiplier (1 = about 60k rows).
        #[arg(long, default_value_t = 1)]
        scale: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log));
    // Colors only on a terminal: logs redirected to a file stay plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            print_error(&e);
            ExitCode::from(2)
        }
    }
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn print_error(e: &Error) {
    // A transient failure reaches here only once its retry window ran out: it carries that code too.
    if e.is_transient() {
        eprintln!("error: {} {}: {e}", e.code().id, e.code().summary);
    } else {
        eprintln!("error: {e}");
    }
    eprintln!("  hint: {}", e.hint());
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Sends `path` to the running task's admin endpoint and prints the live state it answers with.
async fn admin_call(config: &std::path::Path, path: &str) -> Result<ExitCode, Error> {
    let cfg = TaskConfig::load(config)?;
    let state = ferry_engine::admin::call(&cfg, path).await?;
    println!("{state}");
    Ok(ExitCode::SUCCESS)
}

async fn dispatch(cmd: Cmd) -> Result<ExitCode, Error> {
    match cmd {
        Cmd::Run {
            config,
            json,
            until_caught_up,
        } => {
            let cfg = TaskConfig::load(&config)?;
            let first = if until_caught_up {
                Control::Drain
            } else {
                Control::Run
            };
            let (live, rx) = ferry_engine::admin::Live::new(&cfg, first);
            // The admin endpoint (loopback): status, metrics, pause / resume / drain / stop, throttle changes.
            let admin = if cfg.admin.enabled {
                let addr = ferry_engine::admin::serve(
                    &cfg.admin.listen,
                    cfg.clone(),
                    live.clone(),
                    tokio::runtime::Handle::current(),
                )?;
                eprintln!("admin endpoint: http://{addr}/status");
                Some((live.clone(), addr))
            } else {
                None
            };
            // Ctrl-C or SIGTERM: sync commits the transactions it holds whole and returns.
            let stopper = live.clone();
            tokio::spawn(async move {
                stop_signal().await;
                eprintln!("stopping: committing what is applied...");
                let _ = stopper.control.send(Control::Stop);
            });
            let opts = migration::RunOptions {
                progress: !json,
                control: Some(rx),
                live: admin,
            };
            let lag_watch = tokio::spawn(ferry_engine::alerts::watch_lag(cfg.clone()));
            let report = migration::run_resuming(&cfg, &opts).await;
            lag_watch.abort();
            let report = report?;
            if json {
                println!("{}", to_json(&report));
            } else {
                print_run(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Verify {
            config,
            json,
            parallel,
            mode,
            sample_percent,
            seed,
            since,
            out,
            resume,
            apply_repair,
            float_tolerance,
            client_hash,
            chunk_rows,
            recheck_wait_s,
        } => {
            let cfg = TaskConfig::load(&config)?;
            let mode = match mode {
                ModeArg::Full => Mode::Full,
                ModeArg::Online => Mode::Online,
                ModeArg::Sample => Mode::Sample {
                    percent: sample_percent,
                    seed: seed.unwrap_or_else(drawn_seed),
                },
                ModeArg::Since => Mode::Since {
                    from: since.unwrap_or_default(),
                },
            };
            let out = out.or_else(|| {
                apply_repair.then(|| {
                    std::env::temp_dir().join(format!(
                        "ferry-verify-{}-{}",
                        cfg.task.name,
                        std::process::id()
                    ))
                })
            });
            let opts = VerifyOptions {
                parallel,
                chunk_rows: chunk_rows.unwrap_or(cfg.full.chunk_rows),
                mode,
                client_only: client_hash,
                float_tolerance,
                out: out.clone(),
                resume,
                recheck: ferry_verifier::online::Recheck {
                    wait_s_max: recheck_wait_s,
                    ..Default::default()
                },
                ..Default::default()
            };
            let report = ferry_verifier::verify(&cfg, &opts).await?;
            let (Some(dir), true, false) = (out.as_ref(), apply_repair, report.consistent()) else {
                if json {
                    println!("{}", to_json(&report));
                } else {
                    print_verify(&report);
                }
                return Ok(verify_exit(&report));
            };
            let applied =
                ferry_verifier::repair::apply(&cfg, &dir.join(ferry_verifier::output::REPAIR_FILE))
                    .await?;
            let after = ferry_verifier::verify(
                &cfg,
                &VerifyOptions {
                    out: Some(dir.join("after-repair")),
                    resume: false,
                    ..opts
                },
            )
            .await?;
            if json {
                println!(
                    "{}",
                    to_json(
                        &serde_json::json!({"before": report, "repair": applied, "after": after})
                    )
                );
            } else {
                print_verify(&report);
                println!(
                    "repair applied: {} statements, {} rows changed; verifying again...",
                    applied.statements, applied.rows
                );
                print_verify(&after);
            }
            // The repaired rows are read back (the verification again) and must be the source's.
            let left: Vec<&str> = after
                .tables
                .iter()
                .filter(|t| !t.equal())
                .map(|t| t.table.as_str())
                .collect();
            if !left.is_empty() {
                return Err(ferry_engine::error::Error::definite(
                    &ferry_engine::codes::VERIFY_REPAIR_LEFT,
                    format!("{} (the report above lists the rows)", left.join(", ")),
                ));
            }
            Ok(verify_exit(&after))
        }
        Cmd::Precheck { config, json } => {
            let cfg = TaskConfig::load(&config)?;
            let report = precheck::run(&cfg).await;
            if json {
                println!("{}", to_json(&report));
            } else {
                for i in &report.items {
                    let mark = match i.outcome {
                        Outcome::Pass => "pass",
                        Outcome::Warning => "WARN",
                        Outcome::Acknowledged => "ack",
                        Outcome::Failure => "FAIL",
                    };
                    let code = i.code.map(|c| format!("{c} ")).unwrap_or_default();
                    println!("{mark:4}  {:<36} {code}{}", i.name, i.found);
                    if !i.expected.is_empty() && i.outcome != Outcome::Pass {
                        println!("      {:<36} expected: {}", "", i.expected);
                    }
                    if let Some(h) = i.hint.filter(|_| i.outcome != Outcome::Pass) {
                        println!("      {:<36} hint: {h}", "");
                    }
                }
            }
            Ok(if report.failed() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Release { config, force } => {
            let cfg = TaskConfig::load(&config)?;
            println!("{}", ferry_engine::release::run(&cfg, force).await?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Pause { config } => admin_call(&config, "/pause").await,
        Cmd::Resume { config } => admin_call(&config, "/resume").await,
        Cmd::Stop { config } => admin_call(&config, "/stop").await,
        Cmd::Throttle {
            config,
            phase,
            source_qps_max,
            rows_per_s_max,
            mb_per_s_max,
        } => {
            let mut q = format!("/throttle?phase={phase}");
            for (k, v) in [
                ("source_qps_max", source_qps_max),
                ("rows_per_s_max", rows_per_s_max),
                ("mb_per_s_max", mb_per_s_max),
            ] {
                if let Some(v) = v {
                    q.push_str(&format!("&{k}={v}"));
                }
            }
            admin_call(&config, &q).await
        }
        Cmd::Cutover { config, json } => {
            let cfg = TaskConfig::load(&config)?;
            let r = ferry_engine::cutover::run(&cfg).await?;
            if json {
                println!("{}", to_json(&r));
            } else {
                println!(
                    "cutover of task {}: {}{}",
                    r.task,
                    r.outcome,
                    if r.already {
                        " (already, nothing changed)"
                    } else {
                        ""
                    }
                );
                for step in &r.steps {
                    println!("  - {step}");
                }
                for w in &r.warnings {
                    println!("warning {}: {}", w.code, w.detail);
                    if let Some(c) = ferry_engine::codes::ALL.iter().find(|c| c.id == w.code) {
                        println!("hint: {}", c.hint);
                    }
                }
                if let (Some(code), Some(reason)) = (&r.code, &r.reason) {
                    println!("{code}: {reason}");
                    if let Some(c) = ferry_engine::codes::ALL.iter().find(|c| c.id == code) {
                        println!("hint: {}", c.hint);
                    }
                }
            }
            Ok(match (r.outcome.as_str(), &r.code) {
                ("done", None) => ExitCode::SUCCESS,
                ("done", Some(_)) | ("rolled_back", _) => ExitCode::from(1),
                _ => ExitCode::from(2),
            })
        }
        Cmd::Status { config, json } => {
            let cfg = TaskConfig::load(&config)?;
            let s = status::read(&cfg).await?;
            if json {
                println!("{}", to_json(&s));
            } else {
                if s.state == s.phase.as_str() {
                    println!("task {}: {}", s.task, s.state);
                } else {
                    println!("task {}: {} (phase {})", s.task, s.state, s.phase.as_str());
                }
                if let Some(code) = &s.failed_code {
                    println!(
                        "last failure: {code} {}",
                        s.failed_detail.as_deref().unwrap_or("")
                    );
                }
                for t in &s.tables {
                    let pct = if t.chunks_total == 0 {
                        100.0
                    } else {
                        100.0 * t.chunks_done as f64 / t.chunks_total as f64
                    };
                    println!(
                        "  {:<40} {:>10} rows  {:>5}/{:<5} chunks  {pct:5.1}%",
                        format!("{}.{}", t.db, t.name),
                        t.rows_copied,
                        t.chunks_done,
                        t.chunks_total
                    );
                }
                if let Some(i) = &s.incremental {
                    print_incremental(i);
                }
                for w in &s.warnings {
                    println!("warning {} at {}: {}", w.code, w.at_position, w.detail);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench {
            tables,
            rows,
            runs,
            threads,
            backlog_events,
            lag_s,
            lag_tps,
            throttle_window_s,
            only,
            out,
        } => {
            let mut sections = Vec::new();
            for name in &only {
                let Some(s) = ferry_bench::Section::parse(name) else {
                    return Err(Error::definite(
                        &ferry_engine::codes::CFG_BAD_VALUE,
                        format!("ferry bench --only: no section `{name}` (copy, apply, lag, verify, throttle)"),
                    ));
                };
                sections.push(s);
            }
            let opts = ferry_bench::Options {
                tables,
                rows_per_table: rows,
                runs,
                threads,
                backlog_events,
                lag_window_s: lag_s,
                lag_tps,
                throttle_window_s,
                sections: if sections.is_empty() {
                    ferry_bench::Section::ALL.to_vec()
                } else {
                    sections
                },
                out: out.clone(),
                ferry: std::env::current_exe()
                    .map_err(|e| ferry_bench::setup(format!("the ferry binary's path: {e}")))?,
            };
            let report = ferry_bench::run(&opts).await?;
            println!("{}", report.markdown());
            println!(
                "report.md, report.json and ratios.svg in {} ({:.0} s)",
                out.display(),
                report.seconds
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Demo { keep, scale } => demo(keep, scale).await,
        Cmd::Sim { command } => sim(command).await,
    }
}

fn print_incremental(i: &status::IncrementalStatus) {
    let pos = |p: &Option<ferry_engine::cdc::position::Position>| {
        p.as_ref()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".into())
    };
    println!("incremental ({} mode)", i.mode);
    println!(
        "  checkpoint      {} (at {})",
        pos(&i.checkpoint),
        i.checkpoint_at.as_deref().unwrap_or("-")
    );
    println!("  source position {}", pos(&i.source_position));
    println!(
        "  lag             {}",
        i.lag_s
            .map(|l| format!("{l:.1} s"))
            .unwrap_or_else(|| "unknown".into())
    );
    println!(
        "  applied         {} transactions, {} rows ({:.0} transactions/s, {:.0} rows/s)",
        i.transactions, i.rows, i.transactions_per_s, i.rows_per_s
    );
    for t in &i.tables {
        let note = if t.note.is_empty() {
            String::new()
        } else {
            format!(" -> {}", t.note)
        };
        println!("  {:<40} {}{note}", format!("{}.{}", t.db, t.name), t.state);
    }
    // Tables catch-up followed foreign key cascades into: re-copied from a source snapshot at P1.
    for r in &i.recopy {
        let state = match (&r.snapshot, r.copied) {
            (_, true) => format!("re-copied ({} rows)", r.rows),
            (Some(_), false) => format!("re-copying ({} rows so far)", r.rows),
            (None, false) => "to re-copy at P1 (cascades followed in catch-up)".into(),
        };
        println!("  {:<40} {state}", format!("{}.{}", r.db, r.name));
    }
}

fn verify_exit(r: &VerifyReport) -> ExitCode {
    if r.consistent() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_run(r: &migration::RunReport) {
    println!(
        "task {}: {} -> {}",
        r.task,
        r.phase_at_start.as_str(),
        r.phase.as_str()
    );
    println!("  source      {}", r.source.version);
    println!("  destination {}", r.destination.version);
    let objs: Vec<String> = r.objects.iter().map(|(k, n)| format!("{n} {k}s")).collect();
    println!("  selected    {}", objs.join(", "));
    println!(
        "  schema      {} created, {} already there; post-data {} created",
        r.schema_pre.created.len(),
        r.schema_pre.already_created.len(),
        r.schema_post.created.len()
    );
    if let Some(c) = &r.copy {
        println!(
            "  copy        {} rows in {} chunks ({} chunks done earlier), {:.1}s, {:.0} rows/s",
            c.rows_copied,
            c.chunks_copied,
            c.chunks_skipped,
            c.seconds,
            c.rows_copied as f64 / c.seconds.max(0.001)
        );
    }
    if let Some(x) = &r.sync {
        println!(
            "  sync        {} transactions, {} rows in {} commits, {:.1}s, mode {:?}, {}{}",
            x.transactions,
            x.rows,
            x.commits,
            x.seconds,
            x.mode,
            x.ended,
            if x.parked > 0 {
                format!(", {} rows parked", x.parked)
            } else {
                String::new()
            }
        );
        if let Some(c) = &x.checkpoint {
            println!("  checkpoint  {c}");
        }
    }
    for s in &r.skipped {
        println!("  skipped     {s}");
    }
    println!("  took        {:.1}s", r.seconds);
}

fn print_verify(r: &VerifyReport) {
    for t in &r.tables {
        let verdict = if t.equal() { "equal" } else { "DIFFERENT" };
        let unsettled = if t.unsettled > 0 {
            format!(" unsettled {}", t.unsettled)
        } else {
            String::new()
        };
        println!(
            "{verdict:9}  {:<40} {:>9} rows  missing {} extra {} different {}{unsettled}",
            t.table, t.rows_source, t.missing, t.extra, t.different
        );
        if let Some(n) = &t.note {
            println!("           note: {n}");
        }
        for d in &t.first_differences {
            println!("           {d}");
        }
    }
    let seed = r.seed.map(|s| format!(" (seed {s})")).unwrap_or_default();
    let t = &r.totals;
    let unsettled = if t.unsettled > 0 {
        format!(", {} unsettled", t.unsettled)
    } else {
        String::new()
    };
    println!(
        "{} mode{seed}: {} tables, {} rows checked in {:.1}s, {} missing, {} extra, {} different{unsettled}: {}",
        r.mode,
        t.tables,
        t.rows_checked,
        r.seconds,
        t.missing,
        t.extra,
        t.different,
        if r.consistent() {
            "consistent"
        } else {
            "NOT consistent"
        }
    );
    if let Some(dir) = &r.out {
        println!("diff and repair SQL in {dir}");
    }
}

async fn sim(command: SimCmd) -> Result<ExitCode, Error> {
    use ferry_sim::{model, runner, scenario};
    let bad = |e: String| Error::definite(&ferry_engine::codes::SIM_SCENARIO, e);
    match command {
        SimCmd::List { dir } => {
            for s in scenario::list(&dir).map_err(bad)? {
                let fast = if s.file.scenario.fast { " (fast)" } else { "" };
                println!(
                    "{:<44} {}{fast}",
                    s.dir.display(),
                    s.file.scenario.description
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SimCmd::Run {
            dirs,
            seed,
            backend,
            records,
            json,
        } => {
            let opts = runner::RunOptions {
                seed,
                backend: ferry_sim::Backend::parse(&backend)?,
                ferry_bin: std::env::current_exe()
                    .map_err(|e| bad(format!("locating the ferry binary: {e}")))?,
                records,
            };
            let mut worst = 0u8;
            let mut results = Vec::new();
            for d in dirs {
                let s = scenario::Scenario::load(&d).map_err(bad)?;
                let r = runner::run(&s, &opts).await;
                worst = worst.max(r.verdict.exit_code());
                results.push(r);
            }
            if json {
                println!("{}", to_json(&results));
            } else if results.len() > 1 {
                println!(
                    "{:<40} {:>8} {:>12}  verdict",
                    "scenario", "seconds", "seed"
                );
                for r in &results {
                    println!(
                        "{:<40} {:>8.1} {:>12}  {:?}",
                        r.scenario, r.seconds, r.seed, r.verdict
                    );
                }
            }
            // 0 pass, 1 wrong outcome, 2 data divergence, 3 timeout, 4 harness error (the worst run's).
            Ok(ExitCode::from(worst))
        }
        SimCmd::Model { schedules, seed } => {
            let started = std::time::Instant::now();
            match model::run_many(seed, schedules) {
                Ok(t) => {
                    println!(
                        "{schedules} schedules from seed {seed} in {:.1}s: {} transactions ({} rollbacks to a \
                         savepoint, {} key changes under FKs, {} DDL), {} commits, {} crashes and kills, {} stops, \
                         {} pauses, {} re-deliveries, {} re-copy rounds of tables cascades reached in catch-up, {} \
                         invariant checks; only prefixes of whole transactions shown, destination equal to source in \
                         every one",
                        started.elapsed().as_secs_f64(),
                        t.transactions,
                        t.rollbacks_to_savepoint,
                        t.key_changes_under_fk,
                        t.ddl,
                        t.batches,
                        u64::from(t.crashes) + u64::from(t.kills),
                        t.stops,
                        t.pauses,
                        t.redelivered,
                        t.recopy_rounds,
                        t.checks
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err((s, e)) => {
                    println!("schedule {s} failed: {e}");
                    println!("reproduce: ferry sim model --seed {s} --schedules 1");
                    Ok(ExitCode::from(2))
                }
            }
        }
    }
}

async fn demo(keep: bool, scale: u32) -> Result<ExitCode, Error> {
    use ferry_sim::{datagen, Backend, Instance, InstanceOptions};
    let backend = Backend::from_env()?;
    println!(
        "starting two throwaway servers ({} backend)...",
        backend.as_str()
    );
    let opts = InstanceOptions {
        keep,
        ..Default::default()
    };
    let (source, destination) = tokio::try_join!(
        Instance::start_with(backend, opts.clone()),
        Instance::start_with(backend, opts.clone())
    )?;
    println!("  source      {} on port {}", source.version, source.port());
    println!(
        "  destination {} on port {}",
        destination.version,
        destination.port()
    );
    println!(
        "building the demo database `{}` on the source...",
        datagen::SHOP_DB
    );
    datagen::create_shop(&source, scale).await?;

    let cfg = TaskConfig {
        task: ferry_engine::config::TaskSection {
            name: "demo".into(),
            types: vec![
                ferry_engine::config::MigrationType::Schema,
                ferry_engine::config::MigrationType::Full,
            ],
        },
        source: source.endpoint(),
        destination: destination.endpoint(),
        objects: ferry_engine::config::Objects {
            databases: vec![datagen::SHOP_DB.into()],
            ..Default::default()
        },
        full: ferry_engine::config::FullSection {
            workers: 4,
            chunk_rows: 2_000,
            ..Default::default()
        },
        incremental: Default::default(),
        metadata: Default::default(),
        precheck: Default::default(),
        schema: Default::default(),
        mapping: Default::default(),
        cutover: Default::default(),
        retry: Default::default(),
        admin: Default::default(),
        alerts: Default::default(),
    };
    println!("migrating...");
    let report = migration::run(
        &cfg,
        &migration::RunOptions {
            progress: true,
            control: None,
            live: None,
        },
    )
    .await?;
    print_run(&report);
    println!("verifying...");
    let v = ferry_verifier::verify(
        &cfg,
        &VerifyOptions {
            chunk_rows: 2_000,
            ..Default::default()
        },
    )
    .await?;
    print_verify(&v);
    if keep {
        println!("servers left running:");
        println!("  source      {}", source.url());
        println!("  destination {}", destination.url());
        println!("a task file for them:\n{}", cfg.to_toml());
    } else {
        println!("stopping the servers.");
    }
    drop(source);
    drop(destination);
    Ok(verify_exit(&v))
}
