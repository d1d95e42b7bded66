//! DDL in the binlog while sync runs: every statement of the replicated list mid-stream under a concurrent workload,
//! a gh-ost style table swap, both rename modes for tables selected by name, and a DDL replayed after a crash.

mod common;

use common::*;
use ferry_engine::cdc::sync::Control;
use ferry_engine::config::{MigrationType, TaskConfig};
use ferry_engine::migration::RunReport;
use ferry_engine::status;
use ferry_sim::{datagen, Instance};
use std::time::Duration;
use tokio::sync::watch;

type Run = RunHandle;

async fn drain(ctl: watch::Sender<Control>, run: Run) -> RunReport {
    ctl.send(Control::Drain).expect("drain");
    let report = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("drained in time")
        .expect("run task")
        .expect("migration");
    assert_eq!(report.sync.as_ref().map(|s| s.ended), Some("drained"));
    report
}

async fn exec_all(inst: &Instance, statements: &[&str]) {
    for s in statements {
        inst.exec_as_app(s)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

async fn show_create(inst: &Instance, table: &str) -> String {
    let r: Option<(String, String)> = inst
        .query_first(&format!("SHOW CREATE TABLE {table}"))
        .await
        .unwrap_or_else(|e| panic!("{table}: {e}"));
    r.map(|(_, c)| c).unwrap_or_default()
}

/// The statements of the replicated list, each followed by row changes that only decode against the new shape.
const DDL_STEPS: &[&str] = &[
    "CREATE TABLE shop.ddl_t (id INT NOT NULL PRIMARY KEY, a VARCHAR(20) NOT NULL)",
    "INSERT INTO shop.ddl_t VALUES (1, 'one'), (2, 'two'), (3, 'three')",
    "ALTER TABLE shop.ddl_t ADD COLUMN b INT NOT NULL DEFAULT 7 AFTER id, ADD COLUMN c JSON NULL",
    "INSERT INTO shop.ddl_t (id, b, a, c) VALUES (4, 40, 'four', '{\"k\": [1, 2]}')",
    "UPDATE shop.ddl_t SET b = b + 1, a = CONCAT(a, '!') WHERE id <= 2",
    "ALTER TABLE shop.customers ADD COLUMN nickname VARCHAR(30) NULL",
    "UPDATE shop.customers SET nickname = CONCAT('n', id) WHERE id % 7 = 0",
    "CREATE UNIQUE INDEX u_a ON shop.ddl_t (a)",
    "INSERT INTO shop.ddl_t (id, b, a) VALUES (5, 50, 'five')",
    "DROP INDEX u_a ON shop.ddl_t",
    "CREATE INDEX i_b ON shop.ddl_t (b)",
    "CREATE DEFINER = CURRENT_USER SQL SECURITY DEFINER VIEW shop.v_ddl AS SELECT id, a FROM shop.ddl_t WHERE b > 7",
    "ALTER DEFINER = CURRENT_USER VIEW shop.v_ddl AS SELECT id, a, b FROM shop.ddl_t",
    "CREATE DEFINER = CURRENT_USER FUNCTION shop.f_ddl(x INT) RETURNS INT DETERMINISTIC RETURN x * 3",
    "CREATE DEFINER = CURRENT_USER PROCEDURE shop.p_ddl(IN x INT) BEGIN SELECT x + 1 AS y; END",
    "RENAME TABLE shop.ddl_t TO shop.ddl_t2",
    "INSERT INTO shop.ddl_t2 (id, b, a) VALUES (6, 60, 'six')",
    "DELETE FROM shop.ddl_t2 WHERE id = 3",
    "CREATE TABLE shop.ddl_scratch (id INT PRIMARY KEY, v INT)",
    "INSERT INTO shop.ddl_scratch VALUES (1, 1), (2, 2)",
    "TRUNCATE TABLE shop.ddl_scratch",
    "INSERT INTO shop.ddl_scratch VALUES (3, 3)",
    "DROP TABLE shop.ddl_scratch",
    // gh-ost style: shadow table, backfill, atomic swap, drop the old table.
    "CREATE TABLE shop._ddl_t2_gho LIKE shop.ddl_t2",
    "ALTER TABLE shop._ddl_t2_gho ADD COLUMN d VARCHAR(10) NOT NULL DEFAULT 'new'",
    "INSERT INTO shop._ddl_t2_gho (id, b, a, c) SELECT id, b, a, c FROM shop.ddl_t2",
    "RENAME TABLE shop.ddl_t2 TO shop._ddl_t2_del, shop._ddl_t2_gho TO shop.ddl_t2",
    "DROP TABLE shop._ddl_t2_del",
    "UPDATE shop.ddl_t2 SET d = 'after' WHERE id = 6",
    "ALTER TABLE shop.ddl_t2 ADD COLUMN e INT NULL, RENAME TO shop.ddl_t3",
    "INSERT INTO shop.ddl_t3 (id, b, a, e) VALUES (7, 70, 'seven', 1)",
    // Not applied while syncing: a coded warning; its effect arrives as row images.
    "CREATE DEFINER = CURRENT_USER TRIGGER shop.ddl_trg BEFORE INSERT ON shop.ddl_t3 FOR EACH ROW SET NEW.e = COALESCE(NEW.e, 0)",
    "INSERT INTO shop.ddl_t3 (id, b, a) VALUES (8, 80, 'eight')",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_listed_ddl_mid_stream_is_replicated_under_concurrent_writes() {
    logs();
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 1).await.expect("shop");
    let mut cfg = task("ddl", &source, &destination, &[datagen::SHOP_DB]);
    cfg.task.types.push(MigrationType::Incremental);
    cfg.full.workers = 2;
    cfg.full.chunk_rows = 500;
    // Nothing but the workload and the DDL writes to the source, so a drained task is exactly caught up.
    cfg.incremental.heartbeat = false;

    let wl = ShopWorkload::start(&source);
    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "ddl", run, 20).await;
    exec_all(&source, DDL_STEPS).await;
    // More workload after the last DDL, against the altered customers table.
    let applied = count(
        &destination,
        "SELECT CAST(transactions AS UNSIGNED) FROM ferry_meta.cdc",
    )
    .await;
    let run = wait_synced(&destination, "ddl", run, applied + 50).await;
    let stats = wl.finish().await;
    eprintln!("workload: {stats:?}");
    let report = drain(ctl, run).await;
    eprintln!("sync: {:?}", report.sync);

    // Rows and shapes.
    let v = verify(&cfg).await;
    assert!(v.consistent(), "verifier found differences: {v:?}");
    assert_same_data(&source, &destination, datagen::SHOP_DB).await;
    for t in ["shop.ddl_t3", "shop.customers"] {
        assert_eq!(
            show_create(&source, t).await,
            show_create(&destination, t).await,
            "{t}"
        );
    }
    assert_eq!(
        rows(
            &destination,
            "SELECT CONCAT_WS(',', id, b, a, d, IFNULL(e, 'null')) FROM shop.ddl_t3 ORDER BY id"
        )
        .await,
        vec![
            "1,8,one!,new,null",
            "2,8,two!,new,null",
            "4,40,four,new,null",
            "5,50,five,new,null",
            "6,60,six,after,null",
            "7,70,seven,new,1",
            "8,80,eight,new,0"
        ]
    );
    // Views and routines: replicated with the caller's rights (users are not copied).
    let views = "SELECT CONCAT_WS('|', TABLE_NAME, VIEW_DEFINITION) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'shop' ORDER BY 1";
    assert_eq!(rows(&source, views).await, rows(&destination, views).await);
    assert_eq!(
        rows(&destination, "SELECT SECURITY_TYPE FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'shop' AND TABLE_NAME = 'v_ddl'").await,
        vec!["INVOKER"]
    );
    assert_eq!(
        rows(&destination, "SELECT CONCAT(ROUTINE_NAME, ' ', SECURITY_TYPE) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'shop' AND ROUTINE_NAME LIKE '%_ddl' ORDER BY 1").await,
        vec!["f_ddl INVOKER", "p_ddl INVOKER"]
    );
    assert_eq!(count(&destination, "SELECT shop.f_ddl(5)").await, 15);
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_NAME = 'ddl_trg'"
        )
        .await,
        0,
        "triggers wait for cutover"
    );

    // What the task recorded: table states and the trigger's warning, in the status.
    let s = status::read(&cfg).await.expect("status");
    let inc = s.incremental.expect("incremental status");
    assert_eq!(inc.mode, "exact");
    assert_eq!(
        inc.lag_s,
        Some(0.0),
        "drained: the checkpoint is the source's position"
    );
    let state = |name: &str| {
        inc.tables
            .iter()
            .find(|t| t.db == "shop" && t.name == name)
            .map(|t| format!("{} {}", t.state, t.note))
            .unwrap_or_else(|| format!("{name} not listed"))
    };
    assert_eq!(state("ddl_t3"), "syncing ");
    assert_eq!(state("ddl_t"), "renamed shop.ddl_t2");
    assert_eq!(state("ddl_scratch"), "dropped ");
    assert_eq!(state("_ddl_t2_del"), "dropped ");
    assert_eq!(state("customers"), "syncing ");
    assert!(
        s.warnings
            .iter()
            .any(|w| w.code == "FERRY-CDC-010" && w.detail.contains("ddl_trg")),
        "{:?}",
        s.warnings
    );
}

/// crm.accounts and crm.notes, 200 rows each.
async fn create_crm(source: &Instance, db: &str) {
    exec_all(
        source,
        &[
            &format!("CREATE DATABASE {db}"),
            &format!("CREATE TABLE {db}.accounts (id INT NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL, balance DECIMAL(12,2) NOT NULL)"),
            &format!("CREATE TABLE {db}.notes (id INT NOT NULL PRIMARY KEY, body TEXT)"),
            &format!("INSERT INTO {db}.accounts SELECT seq, CONCAT('acct ', seq), seq * 1.25 FROM {db}.seq_1_to_200"),
            &format!("INSERT INTO {db}.notes SELECT seq, REPEAT('n', seq) FROM {db}.seq_1_to_200"),
        ],
    )
    .await;
}

fn by_table(
    name: &str,
    source: &Instance,
    destination: &Instance,
    db: &str,
    follow: bool,
) -> TaskConfig {
    let mut cfg = task(name, source, destination, &[]);
    cfg.objects.tables = vec![format!("{db}.accounts"), format!("{db}.notes")];
    cfg.task.types.push(MigrationType::Incremental);
    cfg.incremental.follow_table_renames = follow;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_selected_by_name_and_renamed_is_detached_or_followed() {
    logs();
    let (source, destination) = pair().await;

    // Default: the renamed table stops being migrated, with a coded warning in the status.
    create_crm(&source, "crm").await;
    let cfg = by_table("rename-detach", &source, &destination, "crm", false);
    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "rename-detach", run, 1).await;
    exec_all(
        &source,
        &[
            "UPDATE crm.accounts SET balance = balance + 1 WHERE id <= 10",
            "RENAME TABLE crm.accounts TO crm.accounts_old",
            "UPDATE crm.accounts_old SET balance = 0",
            "INSERT INTO crm.accounts_old VALUES (1000, 'after the rename', 1)",
            "UPDATE crm.notes SET body = 'still migrated' WHERE id = 1",
        ],
    )
    .await;
    drain(ctl, run).await;
    assert_eq!(
        count(
            &destination,
            "SELECT CAST(SUM(balance) * 100 AS UNSIGNED) FROM crm.accounts"
        )
        .await,
        (200 * 201 / 2) as u64 * 125 + 10 * 100,
        "crm.accounts holds the rows up to the rename"
    );
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = 'accounts_old'"
        )
        .await,
        0
    );
    assert_eq!(
        rows(&destination, "SELECT body FROM crm.notes WHERE id = 1").await,
        vec!["still migrated"]
    );
    let s = status::read(&cfg).await.expect("status");
    let inc = s.incremental.expect("incremental");
    let accounts = inc
        .tables
        .iter()
        .find(|t| t.name == "accounts")
        .expect("accounts listed");
    assert_eq!(
        (accounts.state.as_str(), accounts.note.as_str()),
        ("detached", "crm.accounts_old")
    );
    assert!(
        s.warnings.iter().any(|w| w.code == "FERRY-CDC-011"),
        "{:?}",
        s.warnings
    );
    // The task resumes although a selected table is gone from the source.
    let (ctl, run) = start_run(&cfg);
    source
        .exec("UPDATE crm.notes SET body = 'after resume' WHERE id = 2")
        .await
        .expect("update");
    drain(ctl, run).await;
    assert_eq!(
        rows(&destination, "SELECT body FROM crm.notes WHERE id = 2").await,
        vec!["after resume"]
    );

    // follow_table_renames: the table is migrated on under its new name.
    create_crm(&source, "crm2").await;
    let cfg = by_table("rename-follow", &source, &destination, "crm2", true);
    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "rename-follow", run, 1).await;
    exec_all(
        &source,
        &[
            "RENAME TABLE crm2.accounts TO crm2.accounts_new",
            "UPDATE crm2.accounts_new SET balance = balance * 2 WHERE id % 3 = 0",
            "INSERT INTO crm2.accounts_new VALUES (1000, 'after the rename', 1)",
            "DELETE FROM crm2.accounts_new WHERE id = 5",
        ],
    )
    .await;
    drain(ctl, run).await;
    assert_eq!(
        base_tables(&destination, "crm2").await,
        vec!["accounts_new", "notes"]
    );
    for t in ["crm2.accounts_new", "crm2.notes"] {
        assert_eq!(
            checksum(&source, t).await,
            checksum(&destination, t).await,
            "{t}"
        );
    }
    let s = status::read(&cfg).await.expect("status");
    let inc = s.incremental.expect("incremental");
    let renamed = inc
        .tables
        .iter()
        .find(|t| t.name == "accounts")
        .expect("accounts listed");
    assert_eq!(
        (renamed.state.as_str(), renamed.note.as_str()),
        ("renamed", "crm2.accounts_new")
    );
}

/// The position (`file:end`) of the last binlog event whose text contains `needle`.
async fn event_end(source: &Instance, needle: &str) -> String {
    let status: Option<mysql_async::Row> = source
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("status");
    let file: String = status.and_then(|r| r.get(0)).expect("binlog file");
    let events: Vec<mysql_async::Row> = source
        .query(&format!("SHOW BINLOG EVENTS IN '{file}'"))
        .await
        .expect("events");
    let end = events
        .iter()
        .filter(|r| {
            r.get::<String, _>("Info")
                .is_some_and(|i| i.contains(needle))
        })
        .filter_map(|r| r.get::<u64, _>("End_log_pos"))
        .next_back()
        .unwrap_or_else(|| panic!("no event with {needle} in {file}"));
    format!("{file}:{end}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ddl_applied_before_a_crash_is_replayed_only_when_marked_pending() {
    logs();
    let (source, destination) = pair().await;
    create_crm(&source, "crm").await;
    let mut cfg = task("ddl-replay", &source, &destination, &["crm"]);
    cfg.task.types.push(MigrationType::Incremental);
    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "ddl-replay", run, 1).await;
    drain(ctl, run).await;

    // The state a crash between the DDL and its checkpoint leaves: the destination already has the column.
    let alter = "ALTER TABLE crm.accounts ADD COLUMN tier INT NOT NULL DEFAULT 1";
    source.exec(alter).await.expect("alter");
    source
        .exec("UPDATE crm.accounts SET tier = 2 WHERE id <= 3")
        .await
        .expect("update");
    destination
        .exec(alter)
        .await
        .expect("alter on the destination");

    // Without the pending mark this is a destination that does not match the binlog: refused with a code.
    let err = tokio::time::timeout(Duration::from_secs(60), async {
        let (ctl, run) = start_run(&cfg);
        ctl.send(Control::Drain).expect("drain");
        run.await.expect("run task")
    })
    .await
    .expect("stopped by itself")
    .expect_err("an unmarked DDL that fails on the destination stops the task");
    assert_eq!(err.code().id, "FERRY-CDC-009", "{err}");

    // With the mark (what ferry writes before sending a DDL), the "duplicate column" answer means done.
    let at = event_end(&source, "ADD COLUMN tier").await;
    destination
        .exec(&format!(
            "UPDATE ferry_meta.cdc SET ddl_pending = '{at}' WHERE task = 'ddl-replay'"
        ))
        .await
        .expect("mark");
    let (ctl, run) = start_run(&cfg);
    drain(ctl, run).await;
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM ferry_meta.cdc WHERE ddl_pending IS NULL"
        )
        .await,
        1
    );
    assert_eq!(
        show_create(&source, "crm.accounts").await,
        show_create(&destination, "crm.accounts").await
    );
    assert_same_data(&source, &destination, "crm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn excluded_tables_stay_out_of_copy_sync_and_later_ddl() {
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 1).await.expect("shop");
    let mut cfg = task("excluded", &source, &destination, &[datagen::SHOP_DB]);
    cfg.task.types.push(MigrationType::Incremental);
    cfg.objects.exclude = vec!["shop.page_views".into(), "shop.tmp_*".into()];
    let r = ferry_engine::precheck::run(&cfg).await;
    let sel = r
        .items
        .iter()
        .find(|i| i.name == "selected objects")
        .expect("item");
    assert!(
        sel.found
            .contains("shop.page_views: excluded by objects.exclude"),
        "{}",
        sel.found
    );

    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "excluded", run, 1).await;
    exec_all(
        &source,
        &[
            "INSERT INTO shop.page_views (at, path, ms) VALUES (NOW(), '/excluded', 1)",
            "CREATE TABLE shop.tmp_scratch (id INT PRIMARY KEY)",
            "INSERT INTO shop.tmp_scratch VALUES (1)",
            "CREATE TABLE shop.kept (id INT PRIMARY KEY)",
            "INSERT INTO shop.kept VALUES (1), (2)",
        ],
    )
    .await;
    drain(ctl, run).await;
    let tables = base_tables(&destination, "shop").await;
    assert!(
        !tables
            .iter()
            .any(|t| t == "page_views" || t == "tmp_scratch"),
        "{tables:?}"
    );
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM shop.kept").await,
        2
    );
    let v = verify(&cfg).await;
    assert!(v.consistent(), "{v:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_empty_at_the_start_gets_the_tables_created_later() {
    let (source, destination) = pair().await;
    source.exec("CREATE DATABASE later").await.expect("db");
    let mut cfg = task("later", &source, &destination, &["later"]);
    cfg.task.types.push(MigrationType::Incremental);
    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "later", run, 0).await;
    exec_all(
        &source,
        &[
            "CREATE TABLE later.t (id INT PRIMARY KEY, v INT)",
            "INSERT INTO later.t VALUES (1, 1), (2, 2)",
            "UPDATE later.t SET v = 20 WHERE id = 2",
        ],
    )
    .await;
    drain(ctl, run).await;
    assert_eq!(
        rows(
            &destination,
            "SELECT CONCAT(id, ',', v) FROM later.t ORDER BY id"
        )
        .await,
        ["1,1", "2,20"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_patterns_select_databases_and_tables_at_the_start_and_later() {
    let (source, destination) = pair().await;
    let mut setup = Vec::new();
    for db in ["app_eu", "app_us", "other", "logs"] {
        setup.push(format!("CREATE DATABASE {db}"));
    }
    for t in [
        "app_eu.t",
        "app_us.t",
        "other.t",
        "logs.ev_2026",
        "logs.ev_2027",
        "logs.misc",
    ] {
        setup.push(format!(
            "CREATE TABLE {t} (id INT PRIMARY KEY, v VARCHAR(20))"
        ));
        setup.push(format!("INSERT INTO {t} VALUES (1, '{t}'), (2, 'two')"));
    }
    let setup: Vec<&str> = setup.iter().map(String::as_str).collect();
    exec_all(&source, &setup).await;

    // A pattern that matches nothing is a typo, not an empty selection.
    let mut typo = task("typo", &source, &destination, &["app_*"]);
    typo.objects.tables = vec!["logs.nope_*".into()];
    let r = ferry_engine::precheck::run(&typo).await;
    let sel = r
        .items
        .iter()
        .find(|i| i.name == "selected objects")
        .expect("item");
    assert_eq!(sel.code, Some("FERRY-SCH-003"), "{sel:?}");
    assert!(sel.found.contains("logs.nope_*"), "{}", sel.found);

    let mut cfg = task("patterns", &source, &destination, &["app_*"]);
    cfg.objects.tables = vec!["logs.ev_*".into()];
    cfg.task.types.push(MigrationType::Incremental);
    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "patterns", run, 0).await;
    exec_all(
        &source,
        &[
            "CREATE TABLE logs.ev_2028 (id INT PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO logs.ev_2028 VALUES (1, 'later')",
            "CREATE TABLE logs.misc2 (id INT PRIMARY KEY)",
            "INSERT INTO logs.misc2 VALUES (1)",
            "UPDATE app_us.t SET v = 'changed' WHERE id = 2",
            "INSERT INTO logs.ev_2026 VALUES (3, 'three')",
            "CREATE DATABASE app_asia",
            "CREATE TABLE app_asia.t (id INT PRIMARY KEY)",
            "INSERT INTO app_asia.t VALUES (7)",
        ],
    )
    .await;
    drain(ctl, run).await;
    let dbs = rows(
        &destination,
        "SELECT GROUP_CONCAT(SCHEMA_NAME ORDER BY SCHEMA_NAME) FROM information_schema.SCHEMATA \
         WHERE SCHEMA_NAME IN ('app_eu', 'app_us', 'app_asia', 'other', 'logs')",
    )
    .await;
    assert_eq!(
        dbs,
        ["app_asia,app_eu,app_us,logs"],
        "a database created later under a selected pattern is migrated too"
    );
    assert_eq!(rows(&destination, "SELECT id FROM app_asia.t").await, ["7"]);
    assert_eq!(
        base_tables(&destination, "logs").await,
        ["ev_2026", "ev_2027", "ev_2028"]
    );
    assert_eq!(
        rows(&destination, "SELECT v FROM app_us.t ORDER BY id").await,
        ["app_us.t", "changed"]
    );
    assert_eq!(
        rows(&destination, "SELECT v FROM logs.ev_2028").await,
        ["later"]
    );
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM logs.ev_2026").await,
        3
    );
    let v = verify(&cfg).await;
    assert!(v.consistent(), "{v:?}");
    assert_eq!(v.tables.len(), 6, "{v:?}");
}

/// Runs statements on one source session (session settings carry over between them); `bytes` are sent as they are.
async fn on_one_session(source: &Instance, statements: &[&[u8]]) {
    use mysql_async::prelude::Queryable;
    let mut c = source.conn().await.expect("source session");
    for s in statements {
        c.query_drop(*s)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(s)));
    }
    let _ = c.disconnect().await;
}

/// Issue 16 item 5: DDL replayed under the source session's context. Each statement below means something else
/// under ferry's own session settings (UTC, its sql_mode, utf8mb4, the destination's clock): existing rows filled
/// from CURRENT_TIMESTAMP(6) in a `+05:00` session, a TIMESTAMP literal default read in that zone, a latin1
/// client's non-ASCII default sent as latin1 bytes, generated columns whose expressions depend on PIPES_AS_CONCAT
/// and ANSI_QUOTES, and explicit_defaults_for_timestamp = 0. The destination must end with the source's rows and
/// the source's SHOW CREATE TABLE.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ddl_runs_in_the_source_sessions_context() {
    logs();
    let (source, destination) = pair().await;
    exec_all(
        &source,
        &[
            "CREATE DATABASE ctx",
            "CREATE TABLE ctx.t (id INT PRIMARY KEY, a VARCHAR(10) NOT NULL, b VARCHAR(10) NOT NULL)",
            "INSERT INTO ctx.t SELECT seq, CONCAT('a', seq), CONCAT('b', seq) FROM mysql.seq_1_to_20",
        ],
    )
    .await;
    let mut cfg = task("ctx", &source, &destination, &["ctx"]);
    cfg.task.types.push(MigrationType::Incremental);
    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "ctx", run, 0).await;
    // The destination's clock must not be the source's: the DDL is replayed a little later.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    on_one_session(
        &source,
        &[
            b"SET time_zone = '+05:00'",
            b"ALTER TABLE ctx.t ADD COLUMN added_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)",
            b"ALTER TABLE ctx.t ADD COLUMN since TIMESTAMP NOT NULL DEFAULT '2020-01-01 00:00:00'",
            b"SET NAMES latin1",
            b"ALTER TABLE ctx.t ADD COLUMN label VARCHAR(10) CHARACTER SET utf8mb4 NOT NULL DEFAULT '\xe9t\xe9'",
            b"SET NAMES utf8mb4",
            b"SET sql_mode = 'PIPES_AS_CONCAT'",
            b"ALTER TABLE ctx.t ADD COLUMN ab VARCHAR(30) AS (a || '-' || b) VIRTUAL",
            b"SET sql_mode = 'ANSI_QUOTES'",
            b"ALTER TABLE ctx.t ADD COLUMN qa VARCHAR(30) AS (CONCAT(\"a\", '!')) STORED",
            b"SET sql_mode = DEFAULT, explicit_defaults_for_timestamp = 0",
            b"CREATE TABLE ctx.legacy (id INT PRIMARY KEY, ts TIMESTAMP)",
            b"INSERT INTO ctx.legacy (id) VALUES (1)",
        ],
    )
    .await;
    exec_all(
        &source,
        &["INSERT INTO ctx.t (id, a, b) VALUES (100, 'x', 'y')"],
    )
    .await;
    drain(ctl, run).await;
    for t in ["ctx.t", "ctx.legacy"] {
        assert_eq!(
            show_create(&source, t).await,
            show_create(&destination, t).await,
            "{t}"
        );
    }
    let q = "SELECT id, a, b, added_at, UNIX_TIMESTAMP(since), HEX(label), ab, qa FROM ctx.t ORDER BY id";
    assert_eq!(rows(&source, q).await, rows(&destination, q).await);
    assert_eq!(
        rows(&source, "SELECT HEX(label), ab, qa FROM ctx.t WHERE id = 1").await,
        vec!["C3A974C3A9|a1-b1|a1!".to_string()],
        "the source itself reads the statements as their session meant them"
    );
    // CHECKSUM TABLE is not used here: MariaDB 10.11 includes a VIRTUAL column's record buffer, which it does not
    // compute for the checksum, so equal tables can checksum differently. Every column is compared by value.
    assert_eq!(
        rows(&source, "SELECT * FROM ctx.legacy").await,
        rows(&destination, "SELECT * FROM ctx.legacy").await
    );
    let v = verify(&cfg).await;
    assert!(v.consistent(), "verifier found differences: {v:?}");
}

/// `ferry run --until-caught-up` with these failpoints armed; its exit code.
fn ferry_run(file: &str, failpoints: &str) -> i32 {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "-c", file, "--until-caught-up"])
        .env("FERRY_FAILPOINTS", failpoints)
        .env("RUST_LOG", "ferry_engine=info")
        .output()
        .expect("spawning ferry run");
    let code = out.status.code().unwrap_or(-1);
    if code != 0 && code != 137 {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    }
    code
}

/// What the catalogue of database `d` and its rows look like, for comparing the two sides.
async fn catalogue_and_rows(inst: &Instance) -> Vec<String> {
    let mut out = rows(
        inst,
        "SELECT CONCAT_WS(' ', TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IFNULL(COLUMN_DEFAULT, '-')) \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'd' ORDER BY TABLE_NAME, ORDINAL_POSITION",
    )
    .await;
    out.extend(rows(inst, "SELECT CONCAT_WS(' ', TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'd' ORDER BY 1").await);
    out.extend(rows(inst, "SELECT CONCAT_WS(' ', ROUTINE_TYPE, ROUTINE_NAME, ROUTINE_COMMENT) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'd' ORDER BY 1").await);
    out.extend(rows(inst, "SELECT CONCAT_WS(' ', TABLE_NAME, VIEW_DEFINITION) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'd' ORDER BY 1").await);
    out.extend(rows(inst, "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'd'").await);
    for t in base_tables(inst, "d").await {
        out.push(format!("-- rows of {t}"));
        out.extend(rows(inst, &format!("SELECT * FROM d.`{t}` ORDER BY 1")).await);
    }
    out
}

/// Issue 16 item 6: a crash between a replicated DDL and its checkpoint, for every DDL kind of the replicated
/// list. The next run must tell from the destination's catalogue that the statement took effect and not run it
/// again: a table swap (`RENAME TABLE a TO tmp, b TO a, tmp TO b`) or a column swap run twice undoes itself
/// without any error; the others would fail with an "already done" error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ddl_that_took_effect_before_a_crash_is_never_run_again() {
    logs();
    let (source, destination) = pair().await;
    exec_all(
        &source,
        &[
            "CREATE DATABASE d",
            "CREATE TABLE d.a (id INT PRIMARY KEY, p INT NOT NULL, q INT NOT NULL)",
            "CREATE TABLE d.b (id INT PRIMARY KEY, p INT NOT NULL, q INT NOT NULL)",
            "INSERT INTO d.a VALUES (1, 10, 20), (2, 11, 21)",
            "INSERT INTO d.b VALUES (1, 90, 80)",
        ],
    )
    .await;
    let mut cfg = task("ddl-crash", &source, &destination, &["d"]);
    cfg.task.types.push(MigrationType::Incremental);
    // Nothing but the test's statements in the stream: each run's first commit is the DDL's checkpoint.
    cfg.incremental.heartbeat = false;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_task(&dir, &cfg);
    assert_eq!(ferry_run(&file, ""), 0, "copy and catch up");
    let steps: &[&str] = &[
        "RENAME TABLE d.a TO d.tmp, d.b TO d.a, d.tmp TO d.b",
        "ALTER TABLE d.a RENAME COLUMN p TO q, RENAME COLUMN q TO p",
        "CREATE TABLE d.n (id INT PRIMARY KEY, v INT)",
        "ALTER TABLE d.a ADD COLUMN x INT NOT NULL DEFAULT 5",
        "ALTER TABLE d.a MODIFY COLUMN x BIGINT NOT NULL DEFAULT 6",
        "CREATE INDEX i_x ON d.a (x)",
        "DROP INDEX i_x ON d.a",
        "ALTER TABLE d.a DROP COLUMN x",
        "TRUNCATE TABLE d.b",
        "CREATE DEFINER = CURRENT_USER VIEW d.v AS SELECT id, p FROM d.a",
        "ALTER DEFINER = CURRENT_USER VIEW d.v AS SELECT id, p, q FROM d.a",
        "DROP VIEW d.v",
        "CREATE DEFINER = CURRENT_USER PROCEDURE d.pr() SELECT 1",
        "ALTER PROCEDURE d.pr COMMENT 'altered'",
        "DROP PROCEDURE d.pr",
        "CREATE DEFINER = CURRENT_USER FUNCTION d.f() RETURNS INT DETERMINISTIC RETURN 7",
        "DROP FUNCTION d.f",
        "DROP TABLE d.n",
        "ALTER DATABASE d CHARACTER SET latin1",
    ];
    for (n, ddl) in steps.iter().enumerate() {
        exec_all(&source, &[ddl]).await;
        exec_all(
            &source,
            &[&format!(
                "INSERT INTO d.a (id, p, q) VALUES ({}, 1, 2)",
                100 + n
            )],
        )
        .await;
        assert_eq!(
            ferry_run(&file, "apply.before_commit=crash@1"),
            137,
            "{ddl}: killed between the DDL and its checkpoint"
        );
        assert_eq!(ferry_run(&file, ""), 0, "{ddl}: the next run catches up");
        assert_eq!(
            catalogue_and_rows(&source).await,
            catalogue_and_rows(&destination).await,
            "after `{ddl}` and a crash before its checkpoint"
        );
    }
}

/// MariaDB logs CREATE TABLE ... SELECT as one group flagged DDL: the CREATE statement, the new table's rows, then
/// XID. In a database selected whole the table joins the task with its rows, and the group is one transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_table_select_mid_stream_arrives_with_its_rows() {
    logs();
    let (source, destination) = pair().await;
    exec_all(
        &source,
        &[
            "CREATE DATABASE cts",
            "CREATE TABLE cts.src (id INT PRIMARY KEY, v VARCHAR(10) NOT NULL)",
            "INSERT INTO cts.src SELECT seq, CONCAT('v', seq) FROM mysql.seq_1_to_50",
        ],
    )
    .await;
    let mut cfg = task("cts", &source, &destination, &["cts"]);
    cfg.task.types.push(MigrationType::Incremental);
    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "cts", run, 0).await;
    exec_all(
        &source,
        &[
            "CREATE TABLE cts.copy ENGINE=InnoDB SELECT id, v FROM cts.src WHERE id <= 20",
            "INSERT INTO cts.copy VALUES (1000, 'after')",
        ],
    )
    .await;
    drain(ctl, run).await;
    assert_eq!(
        show_create(&source, "cts.copy").await,
        show_create(&destination, "cts.copy").await
    );
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM cts.copy").await,
        21
    );
    assert_same_data(&source, &destination, "cts").await;
}
