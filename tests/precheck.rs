//! Precheck against real servers: each item that can be provoked here is provoked and its code asserted; `ferry run`
//! refuses to start on a failure and writes nothing; acknowledged warnings.

mod common;

use common::*;
use ferry_engine::config::{MigrationType, TaskConfig};
use ferry_engine::migration::{self, RunOptions};
use ferry_engine::precheck::{self, Outcome, PrecheckReport};
use ferry_sim::{datagen, Instance};

/// The outcome and code of the item named `name`.
fn item(r: &PrecheckReport, name: &str) -> (Outcome, Option<&'static str>, String) {
    let i = r
        .items
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no item `{name}` in {:#?}", r.items));
    (i.outcome, i.code, i.found.clone())
}

fn incremental(mut cfg: TaskConfig) -> TaskConfig {
    cfg.task.types.push(MigrationType::Incremental);
    cfg
}

async fn nothing_written(destination: &Instance) {
    assert_eq!(
        count(
            destination,
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('shop', 'crm', 'ferry_meta')"
        )
        .await,
        0,
        "the destination was written to"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_item_is_provoked_and_reported_with_its_code() {
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 1).await.expect("shop");
    for s in [
        "CREATE DATABASE crm",
        "CREATE TABLE crm.parent (id INT PRIMARY KEY) ENGINE=InnoDB",
        "CREATE TABLE crm.child (id INT PRIMARY KEY, parent_id INT, FOREIGN KEY (parent_id) REFERENCES crm.parent (id)) ENGINE=InnoDB",
        "CREATE TABLE crm.legacy (id INT PRIMARY KEY, v INT) ENGINE=MyISAM",
        "CREATE TABLE crm.nokey (a INT, b INT) ENGINE=InnoDB",
    ] {
        source.exec(s).await.expect(s);
    }

    // A clean task passes (the shop's keyless page_views table warns).
    let cfg = incremental(task("pre", &source, &destination, &[datagen::SHOP_DB]));
    let r = precheck::run(&cfg).await;
    assert!(!r.failed(), "{:#?}", r.items);
    for name in [
        "source connection",
        "destination connection",
        "server versions",
        "destination is not the source",
        "source binlog_format",
        "source binlog retention",
        "ferry's replica server_id",
        "names free on the destination",
        "foreign keys inside the selection",
        "transactional engines",
        "collations known to the destination",
    ] {
        assert_eq!(
            item(&r, name).0,
            Outcome::Pass,
            "{name}: {:?}",
            item(&r, name)
        );
    }
    assert_eq!(item(&r, "a key on every table").1, Some("FERRY-PRE-006"));
    assert_eq!(item(&r, "a key on every table").0, Outcome::Warning);

    // Acknowledged in the task file.
    let mut acked = cfg.clone();
    acked.precheck.ignore = vec!["FERRY-PRE-006".into()];
    let r = precheck::run(&acked).await;
    assert_eq!(item(&r, "a key on every table").0, Outcome::Acknowledged);

    // Tables selected by name: a MyISAM table, a keyless one, an FK to an unselected table.
    let mut crm = incremental(task("pre-crm", &source, &destination, &[]));
    crm.objects.tables = vec!["crm.child".into(), "crm.legacy".into(), "crm.nokey".into()];
    let r = precheck::run(&crm).await;
    assert!(!r.failed(), "{:#?}", r.items);
    let (o, c, found) = item(&r, "transactional engines");
    assert_eq!((o, c), (Outcome::Warning, Some("FERRY-PRE-007")));
    assert!(found.contains("crm.legacy (MyISAM)"), "{found}");
    let (o, c, found) = item(&r, "foreign keys inside the selection");
    assert_eq!((o, c), (Outcome::Warning, Some("FERRY-PRE-008")));
    assert!(
        found.contains("crm.child") && found.contains("crm.parent"),
        "{found}"
    );
    let (_, c, found) = item(&r, "a key on every table");
    assert_eq!(c, Some("FERRY-PRE-006"));
    assert!(found.contains("crm.nokey"), "{found}");

    // The whole crm database: a view reaching into shop, a view owned by an account the destination lacks.
    for s in [
        "CREATE USER 'app'@'%' IDENTIFIED BY 'x'",
        "GRANT SELECT ON crm.* TO 'app'@'%'",
        "CREATE DEFINER = 'app'@'%' VIEW crm.v_app AS SELECT id FROM crm.parent",
        "CREATE VIEW crm.v_out AS SELECT p.sku FROM shop.products p",
    ] {
        source.exec(s).await.expect(s);
    }
    let whole = incremental(task("pre-crm-db", &source, &destination, &["crm"]));
    let r = precheck::run(&whole).await;
    let (o, c, found) = item(&r, "objects reference only selected databases");
    assert_eq!((o, c), (Outcome::Warning, Some("FERRY-PRE-009")), "{found}");
    assert!(found.contains("view crm.v_out -> shop.products"), "{found}");
    let (o, c, found) = item(&r, "definer accounts on the destination");
    assert_eq!((o, c), (Outcome::Warning, Some("FERRY-PRE-010")), "{found}");
    assert!(found.contains("`app`@`%`"), "{found}");
    assert_eq!(
        item(&r, "foreign keys inside the selection").0,
        Outcome::Pass
    );
    // The same database by table names: its views are listed as left out.
    let r = precheck::run(&crm).await;
    let (_, _, found) = item(&r, "objects left out (tables selected by name)");
    assert!(
        found.contains("view crm.v_app") && found.contains("view crm.v_out"),
        "{found}"
    );

    // The destination is the source.
    let mut same = cfg.clone();
    same.destination = source.endpoint();
    let r = precheck::run(&same).await;
    assert_eq!(
        item(&r, "destination is not the source").1,
        Some("FERRY-PRE-003")
    );
    assert!(r.failed());

    // ferry's dump would take the source's own server id.
    let mut clash = cfg.clone();
    let sid: Option<u32> = source
        .query_first("SELECT @@server_id")
        .await
        .expect("server_id");
    clash.incremental.server_id = sid;
    let r = precheck::run(&clash).await;
    assert_eq!(
        item(&r, "ferry's replica server_id").1,
        Some("FERRY-PRE-005")
    );

    // A name taken on the destination.
    destination.exec("CREATE DATABASE shop").await.expect("db");
    destination
        .exec("CREATE TABLE shop.products (x INT)")
        .await
        .expect("table");
    let r = precheck::run(&cfg).await;
    let (o, c, found) = item(&r, "names free on the destination");
    assert_eq!((o, c), (Outcome::Failure, Some("FERRY-SCH-001")));
    assert!(found.contains("table shop.products"), "{found}");
    destination.exec("DROP DATABASE shop").await.expect("drop");

    // Accounts: a source account that cannot read the binlog, a destination account without ALL.
    source
        .create_user(
            "reader",
            "pw",
            &["SELECT, SHOW VIEW, TRIGGER, EVENT ON shop.*"],
        )
        .await
        .expect("user");
    destination
        .create_user("writer", "pw", &["SELECT, INSERT ON shop.*"])
        .await
        .expect("user");
    let mut weak = cfg.clone();
    weak.source = source.endpoint_as("reader", "pw");
    weak.destination = destination.endpoint_as("writer", "pw");
    let r = precheck::run(&weak).await;
    for name in [
        "source account reads binlog positions",
        "source account may dump the binlog",
    ] {
        let (o, c, found) = item(&r, name);
        assert_eq!(
            (o, c),
            (Outcome::Failure, Some("FERRY-PRI-001")),
            "{name}: {found}"
        );
    }
    let (o, c, found) = item(&r, "destination account may create and write");
    assert_eq!((o, c), (Outcome::Warning, Some("FERRY-PRI-001")), "{found}");
    // Without SUPER a binlogging destination refuses the shop's function and trigger unless it trusts creators.
    let routines = "destination accepts routines and triggers from this account";
    let (o, c, why) = item(&r, routines);
    assert_eq!((o, c), (Outcome::Warning, Some("FERRY-PRE-018")), "{why}");
    destination
        .exec("SET GLOBAL log_bin_trust_function_creators = 1")
        .await
        .expect("trust");
    let (o, _, why) = item(&precheck::run(&weak).await, routines);
    assert_eq!(o, Outcome::Pass, "{why}");
    destination
        .exec("SET GLOBAL log_bin_trust_function_creators = 0")
        .await
        .expect("trust off");
    assert_eq!(item(&precheck::run(&cfg).await, routines).0, Outcome::Pass);
    assert!(
        found.contains("shop") && found.contains("ferry_meta"),
        "{found}"
    );
    let root = item(
        &precheck::run(&cfg).await,
        "source account may dump the binlog",
    );
    assert_eq!(root.0, Outcome::Pass, "{root:?}");

    // Binlog kept for an hour: too short for a copy followed by sync; `ferry run` refuses and writes nothing.
    source
        .exec("SET GLOBAL binlog_expire_logs_seconds = 3600")
        .await
        .expect("retention");
    let r = precheck::run(&cfg).await;
    let (o, c, found) = item(&r, "source binlog retention");
    assert_eq!((o, c), (Outcome::Failure, Some("FERRY-PRE-004")), "{found}");
    let err = migration::run(&cfg, &RunOptions::default())
        .await
        .expect_err("refused");
    assert_eq!(err.code().id, "FERRY-PRE-004", "{err}");
    nothing_written(&destination).await;
    // A full-only task does not need the binlog.
    let full_only = task("pre-full", &source, &destination, &[datagen::SHOP_DB]);
    assert!(!precheck::run(&full_only).await.failed());
    // Without `schema` in its types the task creates nothing: the destination must have the tables.
    let mut data_only = task("pre-data", &source, &destination, &[]);
    data_only.task.types = vec![MigrationType::Full];
    data_only.objects.tables = vec!["crm.parent".into()];
    let r = precheck::run(&data_only).await;
    let (o, c, found) = item(&r, "selected tables on the destination");
    assert_eq!((o, c), (Outcome::Failure, Some("FERRY-PRE-015")), "{found}");
    destination.exec("CREATE DATABASE crm").await.expect("db");
    destination
        .exec("CREATE TABLE crm.parent (id INT PRIMARY KEY)")
        .await
        .expect("table");
    let r = precheck::run(&data_only).await;
    assert_eq!(
        item(&r, "selected tables on the destination").0,
        Outcome::Pass
    );
}

#[test]
fn only_known_codes_can_be_acknowledged() {
    let toml = "[task]\nname = \"t\"\ntypes = [\"full\"]\n[source]\nhost = \"h\"\nuser = \"u\"\n\
                [destination]\nhost = \"h\"\nuser = \"u\"\n[objects]\ndatabases = [\"d\"]\n\
                [precheck]\nignore = [\"FERRY-PRE-999\"]\n";
    let err = TaskConfig::parse(toml).expect_err("unknown code");
    assert_eq!(err.code().id, "FERRY-CFG-005", "{err}");
    assert!(err.to_string().contains("precheck.ignore"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_destination_engine_is_imposed_in_schema_copy_and_replicated_ddl() {
    let (source, destination) = pair().await;
    for s in [
        "CREATE DATABASE eng",
        "CREATE TABLE eng.legacy (id INT PRIMARY KEY, v INT) ENGINE=MyISAM",
        "CREATE TABLE eng.current (id INT PRIMARY KEY, v INT) ENGINE=InnoDB",
        "INSERT INTO eng.legacy SELECT seq, seq FROM eng.seq_1_to_50",
        "INSERT INTO eng.current SELECT seq, seq FROM eng.seq_1_to_50",
    ] {
        source.exec(s).await.expect(s);
    }
    let mut cfg = incremental(task("engine", &source, &destination, &["eng"]));
    cfg.precheck.ignore = vec!["FERRY-PRE-007".into()];

    // An engine the destination does not have stops the task before anything is written.
    let mut missing = cfg.clone();
    missing.schema.destination_engine = Some("NOSUCH".into());
    let r = precheck::run(&missing).await;
    assert_eq!(
        item(&r, "destination engine available").1,
        Some("FERRY-PRE-011")
    );
    let err = migration::run(&missing, &RunOptions::default())
        .await
        .expect_err("refused");
    assert_eq!(err.code().id, "FERRY-PRE-011");
    nothing_written(&destination).await;

    cfg.schema.destination_engine = Some("InnoDB".into());
    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "engine", run, 0).await;
    for s in [
        "CREATE TABLE eng.added (id INT PRIMARY KEY, v INT) ENGINE=MyISAM",
        "INSERT INTO eng.added VALUES (1, 1), (2, 2)",
        "ALTER TABLE eng.current ENGINE=Aria",
        "UPDATE eng.legacy SET v = v + 1 WHERE id <= 10",
    ] {
        source.exec(s).await.expect(s);
    }
    ctl.send(ferry_engine::cdc::sync::Control::Drain)
        .expect("drain");
    run.await.expect("run task").expect("migration");
    assert_eq!(
        rows(
            &destination,
            "SELECT CONCAT(TABLE_NAME, ' ', ENGINE) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'eng' ORDER BY 1"
        )
        .await,
        ["added InnoDB", "current InnoDB", "legacy InnoDB"]
    );
    assert_same_data(&source, &destination, "eng").await;
}
