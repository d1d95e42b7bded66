//! Sakila and Chinook migrate with every object and row, checked with the server's own catalogue and checksums.

mod common;

use common::*;
use ferry_engine::meta::Phase;
use ferry_engine::migration::{self, RunOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sakila_migrates_with_all_objects_and_rows() {
    let (source, destination) = pair().await;
    let dir = datasets().join("sakila");
    source
        .load_sql_file(&dir.join("sakila-schema.sql"))
        .await
        .expect("loading sakila schema");
    source
        .load_sql_file(&dir.join("sakila-data.sql.gz"))
        .await
        .expect("loading sakila data");
    let expected = ObjectCounts {
        tables: 16,
        views: 7,
        triggers: 6,
        procedures: 3,
        functions: 3,
        foreign_keys: 22,
    };
    assert_eq!(
        object_counts(&source, "sakila").await,
        expected,
        "the source is not the Sakila the README describes"
    );

    let cfg = task("sakila", &source, &destination, &["sakila"]);
    let report = migration::run(&cfg, &RunOptions::default())
        .await
        .expect("migration");
    eprintln!(
        "sakila: {} rows in {:.2}s on the {} backend",
        report.copy.as_ref().map(|c| c.rows_copied).unwrap_or(0),
        report.seconds,
        source.backend.as_str()
    );
    assert_eq!(report.phase, Phase::Done);
    assert_eq!(object_counts(&destination, "sakila").await, expected);

    // DEFINER rewritten: views and routines run with the caller's rights, owned by ferry's account.
    let definers = rows(
        &destination,
        "SELECT CONCAT('view ', TABLE_NAME, ' ', SECURITY_TYPE) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'sakila'
         UNION ALL SELECT CONCAT(ROUTINE_TYPE, ' ', ROUTINE_NAME, ' ', SECURITY_TYPE) FROM information_schema.ROUTINES
         WHERE ROUTINE_SCHEMA = 'sakila'",
    )
    .await;
    assert_eq!(definers.len(), 13);
    for d in &definers {
        assert!(
            d.ends_with(" INVOKER"),
            "not SQL SECURITY INVOKER on the destination: {d}"
        );
    }
    // The FULLTEXT index and the triggers' bodies came along.
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'sakila' AND INDEX_TYPE = 'FULLTEXT'").await,
        count(&source, "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'sakila' AND INDEX_TYPE = 'FULLTEXT'").await,
    );
    assert_eq!(
        rows(&source, "SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'sakila' ORDER BY 1").await,
        rows(&destination, "SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'sakila' ORDER BY 1").await,
    );
    // The routines work on the destination.
    assert_eq!(
        rows(
            &source,
            "SELECT sakila.get_customer_balance(1, '2005-08-01'), sakila.inventory_in_stock(1)"
        )
        .await,
        rows(
            &destination,
            "SELECT sakila.get_customer_balance(1, '2005-08-01'), sakila.inventory_in_stock(1)"
        )
        .await,
    );

    assert_same_data(&source, &destination, "sakila").await;
    let v = verify(&cfg).await;
    assert!(
        v.consistent(),
        "verifier: {:?}",
        v.tables.iter().filter(|t| !t.equal()).collect::<Vec<_>>()
    );
    assert_eq!(v.tables.len(), 16);
    let mut rows_source = 0;
    for t in base_tables(&source, "sakila").await {
        rows_source += count(&source, &format!("SELECT COUNT(*) FROM sakila.`{t}`")).await;
    }
    assert_eq!(v.rows_checked(), rows_source);

    // A second run finds everything done and changes nothing.
    let again = migration::run(&cfg, &RunOptions::default())
        .await
        .expect("second run");
    assert_eq!(again.phase_at_start, Phase::Done);
    assert!(again.copy.is_none(), "a finished task copied again");
    assert_same_data(&source, &destination, "sakila").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chinook_migrates_with_all_rows() {
    let (source, destination) = pair().await;
    source
        .load_sql_file(&datasets().join("chinook/Chinook_MySql.sql.gz"))
        .await
        .expect("loading chinook");
    let expected = ObjectCounts {
        tables: 11,
        views: 0,
        triggers: 0,
        procedures: 0,
        functions: 0,
        foreign_keys: 11,
    };
    assert_eq!(object_counts(&source, "Chinook").await, expected);

    let cfg = task("chinook", &source, &destination, &["Chinook"]);
    let report = migration::run(&cfg, &RunOptions::default())
        .await
        .expect("migration");
    assert_eq!(report.phase, Phase::Done);
    assert_eq!(object_counts(&destination, "Chinook").await, expected);
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM Chinook.PlaylistTrack").await,
        8_715
    );
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM Chinook.Track").await,
        3_503
    );
    // Non-ASCII text arrives byte for byte.
    assert_eq!(
        rows(
            &source,
            "SELECT HEX(Name) FROM Chinook.Artist ORDER BY ArtistId"
        )
        .await,
        rows(
            &destination,
            "SELECT HEX(Name) FROM Chinook.Artist ORDER BY ArtistId"
        )
        .await
    );
    assert_same_data(&source, &destination, "Chinook").await;
    let v = verify(&cfg).await;
    assert!(v.consistent());
    assert_eq!(v.tables.len(), 11);
}
