//! The `ferry` command line: argument parsing and output only; the work is in the engine, verifier and sim.

use clap::{Parser, Subcommand};
use ferry_engine::cdc::sync::Control;
use ferry_engine::config::TaskConfig;
use ferry_engine::error::Error;
use ferry_engine::precheck::{self, Outcome};
use ferry_engine::{migration, status};
use ferry_verifier::{VerifyOptions, VerifyReport};
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
    /// Compare every selected table between source and destination.
    Verify {
        #[arg(short, long)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
        /// Chunks compared at once.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
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
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
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
    eprintln!("error: {e}");
    eprintln!("  hint: {}", e.hint());
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
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
            let (tx, rx) = tokio::sync::watch::channel(first);
            // Ctrl-C or SIGTERM: sync commits the transactions it holds whole and returns.
            tokio::spawn(async move {
                stop_signal().await;
                eprintln!("stopping: committing what is applied...");
                let _ = tx.send(Control::Stop);
            });
            let opts = migration::RunOptions {
                progress: !json,
                control: Some(rx),
            };
            let report = migration::run(&cfg, &opts).await?;
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
        } => {
            let cfg = TaskConfig::load(&config)?;
            let opts = VerifyOptions {
                parallel,
                chunk_rows: cfg.full.chunk_rows,
                ..Default::default()
            };
            let report = ferry_verifier::verify(&cfg, &opts).await?;
            if json {
                println!("{}", to_json(&report));
            } else {
                print_verify(&report);
            }
            Ok(verify_exit(&report))
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
                        Outcome::Failure => "FAIL",
                    };
                    println!("{mark:4}  {:<24} {}", i.name, i.found);
                    if let Some(h) = i.hint {
                        println!("      {:<24} hint: {h}", "");
                    }
                }
            }
            Ok(if report.failed() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Status { config, json } => {
            let cfg = TaskConfig::load(&config)?;
            let s = status::read(&cfg).await?;
            if json {
                println!("{}", to_json(&s));
            } else {
                println!("task {}: {}", s.task, s.phase.as_str());
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
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Demo { keep, scale } => demo(keep, scale).await,
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
        println!(
            "{verdict:9}  {:<40} {:>9} rows  missing {} extra {} different {}",
            t.table, t.rows_source, t.missing, t.extra, t.different
        );
        for d in &t.first_differences {
            println!("           {d}");
        }
    }
    println!(
        "{} tables, {} rows checked in {:.1}s: {}",
        r.tables.len(),
        r.rows_checked(),
        r.seconds,
        if r.consistent() {
            "consistent"
        } else {
            "NOT consistent"
        }
    );
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
            tables: vec![],
        },
        full: ferry_engine::config::FullSection {
            workers: 4,
            chunk_rows: 2_000,
        },
        incremental: Default::default(),
        metadata: Default::default(),
    };
    println!("migrating...");
    let report = migration::run(
        &cfg,
        &migration::RunOptions {
            progress: true,
            control: None,
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
