//! Helpers the integration tests share: throwaway server pairs, task configs for them, datasets, server-side probes.
#![allow(dead_code)] // each test binary uses its own subset

use ferry_engine::config::{
    FullSection, MetadataSection, MigrationType, Objects, TaskConfig, TaskSection,
};
use ferry_sim::{Backend, Instance, InstanceOptions};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

static ANNOUNCE: Once = Once::new();

/// Starts a source and a destination on the backend FERRY_BACKEND selects and prints which one, once per binary.
pub async fn pair() -> (Instance, Instance) {
    let backend = Backend::from_env().expect("FERRY_BACKEND");
    let (s, d) = pair_on(backend).await;
    ANNOUNCE.call_once(|| {
        eprintln!(
            "ferry tests: backend {}, server {}",
            backend.as_str(),
            s.version
        )
    });
    (s, d)
}

pub async fn pair_on(backend: Backend) -> (Instance, Instance) {
    tokio::try_join!(
        Instance::start_with(backend, InstanceOptions::default()),
        Instance::start_with(backend, InstanceOptions::default())
    )
    .unwrap_or_else(|e| panic!("starting servers on the {} backend: {e}", backend.as_str()))
}

/// A schema + full task between two instances over the given databases.
pub fn task(
    name: &str,
    source: &Instance,
    destination: &Instance,
    databases: &[&str],
) -> TaskConfig {
    TaskConfig {
        task: TaskSection {
            name: name.into(),
            types: vec![MigrationType::Schema, MigrationType::Full],
        },
        source: source.endpoint(),
        destination: destination.endpoint(),
        objects: Objects {
            databases: databases.iter().map(|s| s.to_string()).collect(),
            tables: vec![],
            exclude: vec![],
            columns: Default::default(),
        },
        full: FullSection {
            workers: 4,
            chunk_rows: 1_000,
            ..Default::default()
        },
        incremental: Default::default(),
        metadata: MetadataSection::default(),
        precheck: Default::default(),
        schema: Default::default(),
        mapping: Default::default(),
        cutover: Default::default(),
        retry: Default::default(),
        admin: Default::default(),
        alerts: Default::default(),
    }
}

/// `../shared/datasets` beside the project, or FERRY_DATASETS.
pub fn datasets() -> PathBuf {
    let dir = std::env::var_os("FERRY_DATASETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets"));
    assert!(
        dir.join("sakila").is_dir(),
        "the sample datasets are not at {} (set FERRY_DATASETS to the folder holding sakila/ and chinook/)",
        dir.display()
    );
    dir
}

/// One number from the server.
pub async fn count(inst: &Instance, sql: &str) -> u64 {
    inst.query_first::<u64>(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or(0)
}

/// Every row of a query as text, in order, as the server prints it.
pub async fn rows(inst: &Instance, sql: &str) -> Vec<String> {
    let rows: Vec<mysql_async::Row> = inst
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.into_iter()
        .map(|r| {
            (0..r.len())
                .map(|i| match r.as_ref(i) {
                    Some(mysql_async::Value::NULL) | None => "NULL".to_string(),
                    Some(mysql_async::Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
                    Some(v) => v.as_sql(true),
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

/// The server's own CHECKSUM TABLE value.
pub async fn checksum(inst: &Instance, table: &str) -> Option<u64> {
    let r: Option<(String, Option<u64>)> = inst
        .query_first(&format!("CHECKSUM TABLE {table} EXTENDED"))
        .await
        .unwrap_or_else(|e| panic!("{table}: {e}"));
    r.and_then(|(_, c)| c)
}

/// Server-side counts of the schema objects of `db`, in the shape the dataset READMEs give them.
#[derive(Debug, PartialEq, Eq)]
pub struct ObjectCounts {
    pub tables: u64,
    pub views: u64,
    pub triggers: u64,
    pub procedures: u64,
    pub functions: u64,
    pub foreign_keys: u64,
}

pub async fn object_counts(inst: &Instance, db: &str) -> ObjectCounts {
    let q = |sql: String| async move { count(inst, &sql).await };
    ObjectCounts {
        tables: q(format!("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' AND TABLE_TYPE = 'BASE TABLE'")).await,
        views: q(format!("SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '{db}'")).await,
        triggers: q(format!("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{db}'")).await,
        procedures: q(format!("SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{db}' AND ROUTINE_TYPE = 'PROCEDURE'")).await,
        functions: q(format!("SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{db}' AND ROUTINE_TYPE = 'FUNCTION'")).await,
        foreign_keys: q(format!("SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = '{db}'")).await,
    }
}

/// Base tables of `db`, sorted.
pub async fn base_tables(inst: &Instance, db: &str) -> Vec<String> {
    inst.query(&format!(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME"
    ))
    .await
    .expect("listing tables")
}

/// Asserts every base table of `db` has the same rows and the same server checksum on both sides.
pub async fn assert_same_data(source: &Instance, destination: &Instance, db: &str) {
    let tables = base_tables(source, db).await;
    assert_eq!(
        tables,
        base_tables(destination, db).await,
        "{db}: table lists differ"
    );
    for t in tables {
        let qt = format!("`{db}`.`{t}`");
        let n = count(source, &format!("SELECT COUNT(*) FROM {qt}")).await;
        assert_eq!(
            n,
            count(destination, &format!("SELECT COUNT(*) FROM {qt}")).await,
            "{qt}: row counts differ"
        );
        assert_eq!(
            checksum(source, &qt).await,
            checksum(destination, &qt).await,
            "{qt}: CHECKSUM TABLE differs"
        );
    }
}

/// Runs the verifier and returns its report.
pub async fn verify(cfg: &TaskConfig) -> ferry_verifier::VerifyReport {
    ferry_verifier::verify(
        cfg,
        &ferry_verifier::VerifyOptions {
            chunk_rows: 500,
            ..Default::default()
        },
    )
    .await
    .expect("verifier ran")
}

/// Polls `sql` on the destination until it reaches `at_least`; `None` when `alive` says the run ended first.
pub async fn wait_for(
    what: &str,
    destination: &Instance,
    sql: &str,
    at_least: u64,
    alive: &mut dyn FnMut() -> bool,
) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let n: Option<u64> = destination.query_first(sql).await.unwrap_or(None);
        if n.unwrap_or(0) >= at_least {
            return n;
        }
        if !alive() {
            eprintln!("the run ended while waiting for {what}");
            return None;
        }
        if Instant::now() >= deadline {
            let pl = rows(destination, "SELECT CONCAT_WS(' | ', ID, USER, COMMAND, TIME, STATE, LEFT(INFO, 200)) FROM information_schema.PROCESSLIST").await;
            panic!(
                "timed out waiting for {what}; destination sessions:\n{}",
                pl.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("ferry_engine=info")),
        )
        .with_test_writer()
        .try_init();
}

pub fn seed() -> u64 {
    let s = std::env::var("FERRY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::random::<u32>() as u64);
    eprintln!("workload seed {s} (FERRY_SEED={s} reproduces it)");
    s
}

/// A spawned `migration::run` of `cfg`, steered by the returned sender (Run, Drain, Stop).
pub type RunHandle =
    tokio::task::JoinHandle<ferry_engine::error::Result<ferry_engine::migration::RunReport>>;

pub fn start_run(
    cfg: &TaskConfig,
) -> (
    tokio::sync::watch::Sender<ferry_engine::cdc::sync::Control>,
    RunHandle,
) {
    let (ctl, rx) = tokio::sync::watch::channel(ferry_engine::cdc::sync::Control::Run);
    let cfg = cfg.clone();
    let run = tokio::spawn(async move {
        ferry_engine::migration::run(
            &cfg,
            &ferry_engine::migration::RunOptions {
                progress: false,
                control: Some(rx),
                live: None,
            },
        )
        .await
    });
    (ctl, run)
}

/// Waits until task `name` copied everything and applied `transactions` source transactions; a run that ends
/// first fails the test with its error.
pub async fn wait_synced(
    destination: &Instance,
    name: &str,
    run: RunHandle,
    transactions: u64,
) -> RunHandle {
    for (what, sql, n) in [
        (
            "the end of the copy",
            format!("SELECT COUNT(*) FROM ferry_meta.cdc WHERE p1 IS NOT NULL AND task = '{name}'"),
            1,
        ),
        (
            "sync",
            format!(
                "SELECT CAST(transactions AS UNSIGNED) FROM ferry_meta.cdc WHERE task = '{name}'"
            ),
            transactions,
        ),
    ] {
        if wait_for(what, destination, &sql, n, &mut || !run.is_finished())
            .await
            .is_none()
        {
            let r = run.await.expect("run task");
            panic!("the run ended while waiting for {what}: {:?}", r.err());
        }
    }
    run
}

/// Writes the task file a spawned `ferry` reads.
pub fn write_task(dir: &tempfile::TempDir, cfg: &TaskConfig) -> String {
    let path = dir.path().join("task.toml");
    std::fs::write(&path, cfg.to_toml()).expect("writing task file");
    path.to_string_lossy().into_owned()
}

/// Kills a `ferry run` left running when the test fails, so it does not outlive the test.
pub struct Reap(pub std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn running(child: &mut std::process::Child) -> bool {
    matches!(child.try_wait(), Ok(None))
}

/// Starts `ferry run` in the background; its debug log goes to a file kept after the test (path printed).
pub fn spawn_run(file: &str, n: u32) -> std::process::Child {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("run-logs");
    std::fs::create_dir_all(&dir).expect("log dir");
    let path = dir.join(format!("{}-{n}.log", file.replace(['/', '.'], "_")));
    eprintln!("ferry run #{n} logs to {}", path.display());
    let log = std::fs::File::create(&path).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "-c", file, "--json"])
        .env("RUST_LOG", "ferry_engine=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawning ferry run")
}

/// Where `spawn_run(file, n)` logged.
pub fn run_log(file: &str, n: u32) -> String {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("run-logs")
        .join(format!("{}-{n}.log", file.replace(['/', '.'], "_")));
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The shop workload (2 writers, seed printed) on the source until `finish`.
pub struct ShopWorkload {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<ferry_engine::error::Result<ferry_sim::workload::WorkloadStats>>,
}

impl ShopWorkload {
    pub fn start(source: &Instance) -> ShopWorkload {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (ep, flag, seed) = (source.endpoint(), stop.clone(), seed());
        let task = tokio::spawn(async move {
            ferry_sim::workload::run(
                &ep,
                ferry_sim::workload::Kind::Shop,
                seed,
                2,
                u64::MAX,
                flag,
            )
            .await
        });
        ShopWorkload { stop, task }
    }

    /// Stops the writers and waits for them; a workload error fails the test.
    pub async fn finish(self) -> ferry_sim::workload::WorkloadStats {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.expect("workload task").expect("workload")
    }
}
