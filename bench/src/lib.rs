//! `ferry bench`: ferry side by side with the tools a user would pick instead, on the same throwaway servers and data.
//!
//! One run starts a source and a destination (local server processes: OUTFILE + LOAD DATA needs a shared
//! filesystem), loads a sysbench-shaped data set, and measures each section against its anchors; every
//! contender's result is checked (checksums, differences found) before its time counts. Ferry itself runs as a
//! child process of the ferry binary so its peak RSS is its own.

pub mod apply;
pub mod chart;
pub mod copy;
pub mod dataset;
pub mod lag;
pub mod native;
pub mod process;
pub mod report;
pub mod task;
pub mod throttle;
pub mod tools;
pub mod verify;
pub mod workload;

use ferry_engine::codes;
use ferry_engine::error::{Error, Result};
use ferry_sim::{Backend, Instance, InstanceOptions};
use std::path::PathBuf;
use std::time::Instant;

/// The parts of the harness, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Copy,
    Apply,
    Lag,
    Verify,
    Throttle,
}

impl Section {
    pub const ALL: [Section; 5] = [
        Section::Copy,
        Section::Apply,
        Section::Lag,
        Section::Verify,
        Section::Throttle,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Section::Copy => "copy",
            Section::Apply => "apply",
            Section::Lag => "lag",
            Section::Verify => "verify",
            Section::Throttle => "throttle",
        }
    }

    pub fn parse(s: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// What to measure and how big.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Options {
    pub tables: usize,
    pub rows_per_table: u64,
    /// Each timing is the median of this many runs.
    pub runs: usize,
    /// Threads for every parallel contender (ferry's copy workers, mydumper/myloader, OUTFILE sessions,
    /// native replication's parallel SQL threads in its second variant).
    pub threads: usize,
    /// Row events in the apply backlog (four per transaction).
    pub backlog_events: u64,
    pub lag_window_s: u64,
    /// Write transactions per second of the steady-state load (four row events each).
    pub lag_tps: u64,
    pub throttle_window_s: u64,
    pub sections: Vec<Section>,
    /// Where report.md, report.json and ratios.svg go.
    pub out: PathBuf,
    /// The ferry binary run for ferry's contenders.
    pub ferry: PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tables: 8,
            rows_per_table: 250_000,
            runs: 3,
            threads: 4,
            backlog_events: 200_000,
            lag_window_s: 30,
            lag_tps: 250,
            throttle_window_s: 30,
            sections: Section::ALL.to_vec(),
            out: PathBuf::from("target/ferry-bench"),
            ferry: PathBuf::from("ferry"),
        }
    }
}

impl Options {
    pub fn check(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::definite(&codes::CFG_BAD_VALUE, what.to_string()));
        if self.tables == 0 || self.rows_per_table == 0 {
            return bad("ferry bench: --tables and --rows must be at least 1");
        }
        if self.runs == 0 || self.threads == 0 {
            return bad("ferry bench: --runs and --threads must be at least 1");
        }
        if self.sections.contains(&Section::Apply) && self.backlog_events < 4 {
            return bad("ferry bench: --backlog-events must be at least 4 (one transaction)");
        }
        if self.sections.contains(&Section::Lag) && (self.lag_window_s == 0 || self.lag_tps == 0) {
            return bad("ferry bench: --lag-s and --lag-tps must be at least 1");
        }
        Ok(())
    }
}

/// Both servers of a run, with the data set loaded on the source.
pub struct Servers {
    pub source: Instance,
    pub destination: Instance,
    pub data: dataset::DataSet,
    /// A scratch folder both servers can read and write (OUTFILE, mydumper's files, task files).
    pub scratch: tempfile::TempDir,
}

/// Starts the servers, runs the chosen sections, writes the report files and returns the report.
pub async fn run(opts: &Options) -> Result<report::Report> {
    opts.check()?;
    let started = Instant::now();
    // A buffer pool that holds the data set, as a production server's would: the tools then compete on the work
    // they make the servers do, not on reading pages from disk.
    let server_opts = || InstanceOptions {
        extra_args: vec![
            "--innodb-buffer-pool-size=2G".into(),
            "--secure-file-priv=".into(),
            // Native replication then writes the binlog on the destination as ferry's sessions do.
            "--log-slave-updates".into(),
        ],
        ..Default::default()
    };
    let (source, destination) = tokio::try_join!(
        Instance::start_with(Backend::Local, server_opts()),
        Instance::start_with(Backend::Local, server_opts()),
    )?;
    let data = dataset::DataSet {
        db: "sbtest".into(),
        tables: opts.tables,
        rows_per_table: opts.rows_per_table,
    };
    let t = Instant::now();
    data.load(&source).await?;
    eprintln!(
        "bench: {} on both servers; {} tables x {} rows loaded on the source in {:.1} s",
        source.version,
        data.tables,
        data.rows_per_table,
        t.elapsed().as_secs_f64()
    );
    let scratch = tempfile::Builder::new()
        .prefix("ferry-bench-")
        .tempdir()
        .map_err(|e| setup(format!("scratch folder: {e}")))?;
    let servers = Servers {
        source,
        destination,
        data,
        scratch,
    };
    let tools = tools::Tools::find();
    let mut report = report::Report::new(opts, &servers, &tools);
    for section in &opts.sections {
        eprintln!("bench: {} ...", section.as_str());
        let t = Instant::now();
        match section {
            Section::Copy => copy::run(opts, &servers, &tools, &mut report).await?,
            Section::Apply => apply::run(opts, &servers, &mut report).await?,
            Section::Lag => lag::run(opts, &servers, &mut report).await?,
            Section::Verify => verify::run(opts, &servers, &tools, &mut report).await?,
            Section::Throttle => throttle::run(opts, &servers, &mut report).await?,
        }
        eprintln!(
            "bench: {} done in {:.0} s",
            section.as_str(),
            t.elapsed().as_secs_f64()
        );
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.write(&opts.out)?;
    Ok(report)
}

/// FERRY-BEN-001 with the step's words.
pub fn setup(detail: impl Into<String>) -> Error {
    Error::definite(&codes::BENCH_SETUP, detail)
}

/// FERRY-BEN-002 with the contender's words.
pub fn wrong(detail: impl Into<String>) -> Error {
    Error::definite(&codes::BENCH_WRONG, detail)
}
