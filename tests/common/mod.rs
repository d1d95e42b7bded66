//! Helpers the integration tests share: throwaway server pairs, task configs for them, datasets, server-side probes.
#![allow(dead_code)] // each test binary uses its own subset

use ferry_engine::config::{
    FullSection, MetadataSection, MigrationType, Objects, TaskConfig, TaskSection,
};
use ferry_sim::{Backend, Instance, InstanceOptions};
use std::path::PathBuf;
use std::sync::Once;

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
        },
        full: FullSection {
            workers: 4,
            chunk_rows: 1_000,
        },
        incremental: Default::default(),
        metadata: MetadataSection::default(),
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
