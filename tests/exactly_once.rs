//! Exactly once for the transactions applications really send: savepoints inside a MariaDB transaction (which
//! writes no BEGIN), a kill at the first commit after one, pause and stop in the middle of a large throttled
//! transaction with a reader watching the destination, XA refused with its code, key changes under foreign keys and
//! cascades several levels deep, in catch-up and in exact mode.

mod common;

use common::*;
use ferry_engine::cdc::sync::Control;
use ferry_engine::config::{MigrationType, TaskConfig};
use ferry_sim::Instance;
use mysql_async::prelude::Queryable;
use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn online(name: &str, source: &Instance, destination: &Instance, db: &str) -> TaskConfig {
    let mut cfg = task(name, source, destination, &[db]);
    cfg.task.types.push(MigrationType::Incremental);
    cfg.full.workers = 2;
    cfg.full.chunk_rows = 500;
    cfg
}

async fn on(inst: &Instance, statements: &[&str]) {
    let mut c = inst.conn().await.expect("connect");
    for s in statements {
        c.query_drop(*s)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    let _ = c.disconnect().await;
}

/// `ferry run --until-caught-up` of the task file with these failpoints armed; its exit code.
fn run_once(file: &str, failpoints: &str) -> i32 {
    run_with(&["run", "-c", file, "--until-caught-up"], failpoints)
}

fn run_with(args: &[&str], failpoints: &str) -> i32 {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env("FERRY_FAILPOINTS", failpoints)
        .env("RUST_LOG", "ferry_engine=info")
        .output()
        .expect("spawning ferry run");
    let code = out.status.code().unwrap_or(-1);
    eprintln!(
        "ferry run (failpoints `{failpoints}`) exited {code}\n{}",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .join("\n")
    );
    code
}

/// Item 1: a transaction with SAVEPOINT, ROLLBACK TO SAVEPOINT and RELEASE SAVEPOINT (what Django `atomic`, Rails
/// `requires_new` and Spring NESTED send) is one source transaction. ferry dies (kill -9) at its first commit after
/// it: the destination holds none of it or all of it, and the next run ends equal to the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn savepoints_never_split_a_transaction_across_a_kill() {
    logs();
    let (source, destination) = pair().await;
    on(
        &source,
        &[
            "CREATE DATABASE eo",
            "CREATE TABLE eo.t (id INT PRIMARY KEY, v VARCHAR(40) NOT NULL)",
            "INSERT INTO eo.t SELECT seq, CONCAT('seed ', seq) FROM mysql.seq_1_to_10",
        ],
    )
    .await;
    let mut cfg = online("eo-savepoints", &source, &destination, "eo");
    // Nothing but the test's transaction in the binlog after the first run: the first commit of the second run
    // is the one that decides.
    cfg.incremental.heartbeat = false;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_task(&dir, &cfg);
    assert_eq!(run_once(&file, ""), 0, "first run: copy and catch up");
    assert_eq!(count(&destination, "SELECT COUNT(*) FROM eo.t").await, 10);

    on(
        &source,
        &[
            "BEGIN",
            "INSERT INTO eo.t SELECT 100 + seq, 'before the savepoint' FROM mysql.seq_1_to_3000",
            "SAVEPOINT outer_sp",
            "INSERT INTO eo.t SELECT 10000 + seq, 'rolled back' FROM mysql.seq_1_to_50",
            "ROLLBACK TO SAVEPOINT outer_sp",
            "SAVEPOINT inner_sp",
            "UPDATE eo.t SET v = 'updated in the nested block' WHERE id <= 5",
            "RELEASE SAVEPOINT inner_sp",
            "INSERT INTO eo.t SELECT 20000 + seq, 'after the savepoints' FROM mysql.seq_1_to_3000",
            "COMMIT",
        ],
    )
    .await;
    let total = count(&source, "SELECT COUNT(*) FROM eo.t").await;
    assert_eq!(total, 6010);

    assert_eq!(
        run_once(&file, "apply.batch_committed=crash@1"),
        137,
        "the second run dies at its first commit"
    );
    let seen = count(&destination, "SELECT COUNT(*) FROM eo.t").await;
    assert!(
        seen == 10 || seen == total,
        "after the kill the destination holds {seen} rows: part of one source transaction (10 before it, {total} after)"
    );
    assert_eq!(run_once(&file, ""), 0, "the third run catches up");
    assert_same_data(&source, &destination, "eo").await;
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM eo.t WHERE v = 'rolled back'"
        )
        .await,
        0
    );
}

/// Item 1, XA: XA branches of databases the task does not migrate pass (two-phase and one-phase); a prepared XA
/// branch that changes a migrated table stops sync with FERRY-CDC-014 before any of it is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn xa_transactions_are_refused_with_a_code_and_nothing_applied() {
    logs();
    let (source, destination) = pair().await;
    on(
        &source,
        &[
            "CREATE DATABASE xa",
            "CREATE TABLE xa.t (id INT PRIMARY KEY)",
            "INSERT INTO xa.t VALUES (1)",
        ],
    )
    .await;
    on(
        &source,
        &[
            "CREATE DATABASE other",
            "CREATE TABLE other.t (id INT PRIMARY KEY)",
        ],
    )
    .await;
    let cfg = online("xa", &source, &destination, "xa");
    let (_ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "xa", run, 0).await;
    // XA on a database the task does not migrate (a JTA service of another application) passes.
    on(
        &source,
        &[
            "XA START 'other-1'",
            "INSERT INTO other.t VALUES (1)",
            "XA END 'other-1'",
            "XA PREPARE 'other-1'",
            "XA COMMIT 'other-1'",
            "XA START 'other-2'",
            "INSERT INTO other.t VALUES (2)",
            "XA END 'other-2'",
            "XA COMMIT 'other-2' ONE PHASE",
            "INSERT INTO xa.t VALUES (10)",
        ],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&destination, "SELECT COUNT(*) FROM xa.t").await < 2 {
        if run.is_finished() {
            let r = run.await.expect("run task");
            panic!("sync stopped on XA outside the task: {:?}", r.err());
        }
        assert!(
            Instant::now() < deadline,
            "the row after the unrelated XA was not applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    on(
        &source,
        &[
            "XA START 'ferry-xa'",
            "INSERT INTO xa.t VALUES (2), (3)",
            "XA END 'ferry-xa'",
            "XA PREPARE 'ferry-xa'",
            "XA ROLLBACK 'ferry-xa'",
        ],
    )
    .await;
    let err = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("sync stops on the XA transaction")
        .expect("run task")
        .expect_err("XA is refused");
    assert_eq!(err.code().id, "FERRY-CDC-014", "{err}");
    assert_eq!(count(&destination, "SELECT COUNT(*) FROM xa.t").await, 2);
}

/// Item 2: a source transaction of 20,000 rows applied under a row throttle. A pause that arrives in its middle
/// takes effect at its end; a stop in its middle commits none of it; a reader polling the destination never sees a
/// count that is not a whole number of source transactions; the next run applies it and ends equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_and_stop_inside_a_large_transaction_never_commit_part_of_it() {
    logs();
    let (source, destination) = pair().await;
    on(
        &source,
        &[
            "CREATE DATABASE big",
            "CREATE TABLE big.t (id INT PRIMARY KEY, pad CHAR(40) NOT NULL)",
        ],
    )
    .await;
    let mut cfg = online("big", &source, &destination, "big");
    cfg.incremental.rows_per_s_max = 5_000;
    const TX_ROWS: u64 = 20_000;

    // The reader: every count it sees, until told to stop.
    let seen = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let (seen, done, ep) = (seen.clone(), done.clone(), destination.conn());
        let mut c = ep.await.expect("reader session");
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let n: Option<u64> = c
                    .query_first("SELECT COUNT(*) FROM big.t")
                    .await
                    .unwrap_or(None);
                if let Some(n) = n {
                    seen.lock().expect("lock").insert(n);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "big", run, 0).await;
    let big_tx = |lo: u64| {
        let mut s = vec!["BEGIN".to_string()];
        for part in 0..4 {
            s.push(format!(
                "INSERT INTO big.t SELECT {} + seq, REPEAT('x', 40) FROM mysql.seq_1_to_5000",
                lo + part * 5_000
            ));
        }
        s.push("COMMIT".into());
        s
    };

    // Pause in the middle of the first transaction.
    let tx: Vec<String> = big_tx(0);
    on(&source, &tx.iter().map(String::as_str).collect::<Vec<_>>()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM big.t").await,
        0,
        "the pause must arrive while the transaction is being applied (throttled to 4 s)"
    );
    ctl.send(Control::Pause).expect("pause");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM big.t").await,
        TX_ROWS,
        "the pause took effect at the transaction's end"
    );
    ctl.send(Control::Run).expect("resume");

    // Stop in the middle of the second.
    let tx: Vec<String> = big_tx(TX_ROWS);
    on(&source, &tx.iter().map(String::as_str).collect::<Vec<_>>()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM big.t").await,
        TX_ROWS,
        "the stop must arrive while the second transaction is being applied"
    );
    ctl.send(Control::Stop).expect("stop");
    let report = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("stopped in time")
        .expect("run task")
        .expect("a stop is not a failure");
    assert_eq!(report.sync.as_ref().map(|s| s.ended), Some("stopped"));
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM big.t").await,
        TX_ROWS,
        "nothing of the stopped transaction was committed"
    );

    // The next run applies the second transaction whole, in exact mode, without a conflict.
    cfg.incremental.rows_per_s_max = 0;
    let (ctl, run) = start_run(&cfg);
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&destination, "SELECT COUNT(*) FROM big.t").await < 2 * TX_ROWS {
        assert!(!run.is_finished(), "the resumed run ended early");
        assert!(
            Instant::now() < deadline,
            "the resumed run did not apply the transaction"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ctl.send(Control::Drain).expect("drain");
    run.await.expect("run task").expect("resumed run");
    done.store(true, Ordering::Relaxed);
    poller.await.expect("reader");
    let seen = seen.lock().expect("lock").clone();
    assert!(
        seen.iter().all(|n| n % TX_ROWS == 0),
        "a reader saw part of a source transaction: counts {seen:?}"
    );
    assert_same_data(&source, &destination, "big").await;
}

const FK_SCHEMA: &[&str] = &[
    "CREATE DATABASE fk",
    // A parent whose children follow a unique non-key column (`sku`) on delete, and its key on update.
    "CREATE TABLE fk.p (id INT PRIMARY KEY, sku VARCHAR(20) NOT NULL UNIQUE, name VARCHAR(40))",
    "CREATE TABLE fk.ch (id INT PRIMARY KEY, p_sku VARCHAR(20), \
     FOREIGN KEY (p_sku) REFERENCES fk.p (sku) ON DELETE CASCADE)",
    "CREATE TABLE fk.ch2 (id INT PRIMARY KEY, p_id INT, \
     FOREIGN KEY (p_id) REFERENCES fk.p (id) ON DELETE CASCADE ON UPDATE CASCADE)",
    // A parent whose only follower sets NULL on delete and has no ON UPDATE rule.
    "CREATE TABLE fk.p2 (id INT PRIMARY KEY, code VARCHAR(20) NOT NULL UNIQUE)",
    "CREATE TABLE fk.k2 (id INT PRIMARY KEY, p2_code VARCHAR(20), \
     FOREIGN KEY (p2_code) REFERENCES fk.p2 (code) ON DELETE SET NULL)",
    // Three levels: customers -> orders -> order lines -> line notes.
    "CREATE TABLE fk.c (id INT PRIMARY KEY)",
    "CREATE TABLE fk.o (id INT PRIMARY KEY, c_id INT NOT NULL, \
     FOREIGN KEY (c_id) REFERENCES fk.c (id) ON DELETE CASCADE)",
    "CREATE TABLE fk.l (id INT PRIMARY KEY, o_id INT NOT NULL, \
     FOREIGN KEY (o_id) REFERENCES fk.o (id) ON DELETE CASCADE)",
    "CREATE TABLE fk.n (id INT PRIMARY KEY, l_id INT, \
     FOREIGN KEY (l_id) REFERENCES fk.l (id) ON DELETE SET NULL)",
    // A self-referencing chain: deleting the top deletes every level below it.
    "CREATE TABLE fk.e (id INT PRIMARY KEY, boss INT NULL, \
     FOREIGN KEY (boss) REFERENCES fk.e (id) ON DELETE CASCADE)",
    // Rows to keep the copy busy (throttled) while the source changes the small tables, before P1.
    "CREATE TABLE fk.zz (id INT PRIMARY KEY, pad CHAR(20) NOT NULL)",
    "INSERT INTO fk.p VALUES (1, 'S1', 'one'), (2, 'S2', 'two'), (3, 'S3', 'three')",
    "INSERT INTO fk.ch SELECT seq, CONCAT('S', 1 + seq % 3) FROM mysql.seq_1_to_30",
    "INSERT INTO fk.ch2 SELECT seq, 1 + seq % 3 FROM mysql.seq_1_to_30",
    "INSERT INTO fk.p2 VALUES (1, 'C1'), (2, 'C2'), (3, 'C3')",
    "INSERT INTO fk.k2 SELECT seq, CONCAT('C', 1 + seq % 3) FROM mysql.seq_1_to_30",
    "INSERT INTO fk.c SELECT seq FROM mysql.seq_1_to_4",
    "INSERT INTO fk.o SELECT seq, 1 + seq % 4 FROM mysql.seq_1_to_40",
    "INSERT INTO fk.l SELECT seq, 1 + seq % 40 FROM mysql.seq_1_to_200",
    "INSERT INTO fk.n SELECT seq, 1 + seq % 200 FROM mysql.seq_1_to_400",
    "INSERT INTO fk.e VALUES (1, NULL), (2, 1), (3, 2), (4, 3), (5, 4), (6, 1), (7, NULL), (8, 7), (9, 8), (10, 9), (11, NULL)",
    "INSERT INTO fk.zz SELECT seq, 'filler' FROM mysql.seq_1_to_8000",
];

/// What the application does to the FK tables: key changes that leave the referenced unique column alone, a key
/// change that also changes it, deletes whose cascades go three and four levels deep.
fn fk_changes(p_id: u32, c_id: u32, e_id: u32) -> Vec<String> {
    vec![
        format!("UPDATE fk.p SET id = id + 1000 WHERE id = {p_id}"),
        format!("UPDATE fk.p2 SET id = id + 1000 WHERE id = {p_id}"),
        format!("DELETE FROM fk.c WHERE id = {c_id}"),
        format!("DELETE FROM fk.e WHERE id = {e_id}"),
    ]
}

/// Items 3 and 4: key-changing updates under foreign keys and cascades of every depth, first replayed in catch-up
/// (changed on the source while the copy runs, after the small tables were copied, before P1), then in exact mode.
/// The destination must end as the source, where only the rules of the columns that changed took effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_changes_under_foreign_keys_and_deep_cascades_match_the_source() {
    logs();
    let (source, destination) = pair().await;
    on(&source, FK_SCHEMA).await;
    let mut cfg = online("fk", &source, &destination, "fk");
    cfg.full.rows_per_s_max = 1_000;
    let (ctl, run) = start_run(&cfg);
    // Every small table copied, the filler still copying.
    let small = "SELECT COUNT(DISTINCT name) FROM ferry_meta.chunks WHERE db = 'fk' AND name <> 'zz' AND done_at IS NOT NULL";
    let meta_ready = "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'ferry_meta' AND TABLE_NAME = 'chunks'";
    wait_for("the metadata", &destination, meta_ready, 1, &mut || {
        !run.is_finished()
    })
    .await
    .expect("metadata created");
    wait_for(
        "the small tables' copy",
        &destination,
        small,
        10,
        &mut || !run.is_finished(),
    )
    .await
    .expect("small tables copied");
    let changes = fk_changes(1, 1, 1);
    on(
        &source,
        &changes.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM ferry_meta.cdc WHERE p1 IS NULL"
        )
        .await,
        1,
        "the changes must come before P1 (catch-up); raise the filler or lower the copy rate"
    );
    let run = wait_synced(&destination, "fk", run, 1).await;

    // Exact mode.
    let changes = fk_changes(2, 2, 7);
    on(
        &source,
        &changes.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    ctl.send(Control::Drain).expect("drain");
    let report = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("drained in time")
        .expect("run task")
        .expect("run");
    assert_eq!(
        format!("{:?}", report.sync.as_ref().expect("sync").mode),
        "Exact"
    );
    // What the source holds: the sku children stayed, the id children moved, SET NULL and the deep cascades ran.
    assert_eq!(count(&source, "SELECT COUNT(*) FROM fk.ch").await, 30);
    assert_eq!(
        count(&source, "SELECT COUNT(*) FROM fk.ch2 WHERE p_id > 1000").await,
        20
    );
    assert_eq!(
        count(&source, "SELECT COUNT(*) FROM fk.k2 WHERE p2_code IS NULL").await,
        0
    );
    assert_eq!(count(&source, "SELECT COUNT(*) FROM fk.e").await, 1);
    assert_same_data(&source, &destination, "fk").await;
    let v = verify(&cfg).await;
    assert!(v.consistent(), "verifier found differences: {v:?}");
}

/// Item 10: the COMMIT of a chunk reached the server but its reply was lost (a transient error right after the
/// commit, as a connection cut at that instant gives). The retry reads the chunk's done record first instead of
/// copying it again into rows that are already there (FERRY-DAT-001 before).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_chunk_whose_commit_reply_was_lost_is_not_copied_twice() {
    logs();
    let (source, destination) = pair().await;
    on(
        &source,
        &[
            "CREATE DATABASE lost",
            "CREATE TABLE lost.t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)",
            "INSERT INTO lost.t SELECT seq, 'row' FROM mysql.seq_1_to_3000",
        ],
    )
    .await;
    let mut cfg = task("lost", &source, &destination, &["lost"]);
    cfg.full.chunk_rows = 500;
    cfg.full.workers = 1;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_task(&dir, &cfg);
    assert_eq!(
        run_with(&["run", "-c", &file], "copy.chunk_committed=error@2"),
        0,
        "the run goes on past the lost reply"
    );
    assert_same_data(&source, &destination, "lost").await;
    assert_eq!(
        count(
            &destination,
            "SELECT CAST(SUM(`rows`) AS UNSIGNED) FROM ferry_meta.chunks WHERE task = 'lost'"
        )
        .await,
        3000
    );
}

/// Copied in name order by one worker (a chunk of 500 rows): order lines, a self-referencing chain cut in two
/// chunks, the lines' audit (no key), orders, customers, then a parent whose unique `sku` its children (and their
/// children) follow.
const CASCADE_SCHEMA: &[&str] = &[
    "CREATE DATABASE cas",
    "CREATE TABLE cas.d_customers (id INT PRIMARY KEY, name VARCHAR(40))",
    "CREATE TABLE cas.c_orders (id INT PRIMARY KEY, c_id INT NOT NULL, \
     FOREIGN KEY (c_id) REFERENCES cas.d_customers (id) ON DELETE CASCADE)",
    "CREATE TABLE cas.a_lines (id INT PRIMARY KEY, o_id INT NOT NULL, qty INT NOT NULL, \
     FOREIGN KEY (o_id) REFERENCES cas.c_orders (id) ON DELETE CASCADE)",
    "CREATE TABLE cas.b_staff (id INT PRIMARY KEY, boss INT NULL, \
     FOREIGN KEY (boss) REFERENCES cas.b_staff (id) ON DELETE CASCADE)",
    // Without a key (re-copied whole), below the order lines.
    "CREATE TABLE cas.b_trail (line_id INT NOT NULL, note VARCHAR(20), \
     FOREIGN KEY (line_id) REFERENCES cas.a_lines (id) ON DELETE CASCADE)",
    "CREATE TABLE cas.f_parent (id INT PRIMARY KEY, sku VARCHAR(8) NOT NULL UNIQUE)",
    "CREATE TABLE cas.e_child (id INT PRIMARY KEY, p_sku VARCHAR(8), n INT NOT NULL, UNIQUE (p_sku, n), \
     FOREIGN KEY (p_sku) REFERENCES cas.f_parent (sku) ON DELETE CASCADE ON UPDATE CASCADE)",
    "CREATE TABLE cas.e_grand (id INT PRIMARY KEY, csku VARCHAR(8), cn INT, v VARCHAR(20), \
     FOREIGN KEY (csku, cn) REFERENCES cas.e_child (p_sku, n) ON DELETE SET NULL ON UPDATE CASCADE)",
    "INSERT INTO cas.d_customers SELECT seq, CONCAT('customer ', seq) FROM mysql.seq_1_to_4",
    "INSERT INTO cas.c_orders SELECT seq, 1 + seq % 4 FROM mysql.seq_1_to_40",
    "INSERT INTO cas.a_lines SELECT seq, 1 + seq % 40, seq FROM mysql.seq_1_to_200",
    "INSERT INTO cas.b_trail SELECT 1 + seq % 200, 'audit' FROM mysql.seq_1_to_300",
    // Chains that cross the chunk boundary at 500: 900 -> 5 -> 901 -> 6 -> 902 -> 7, and 950 -> 10 -> 951 -> 11.
    "INSERT INTO cas.b_staff SELECT seq, NULL FROM mysql.seq_1_to_1000",
    "UPDATE cas.b_staff SET boss = 900 WHERE id = 5",
    "UPDATE cas.b_staff SET boss = 5 WHERE id = 901",
    "UPDATE cas.b_staff SET boss = 901 WHERE id = 6",
    "UPDATE cas.b_staff SET boss = 6 WHERE id = 902",
    "UPDATE cas.b_staff SET boss = 902 WHERE id = 7",
    "UPDATE cas.b_staff SET boss = 950 WHERE id = 10",
    "UPDATE cas.b_staff SET boss = 10 WHERE id = 951",
    "UPDATE cas.b_staff SET boss = 951 WHERE id = 11",
    "INSERT INTO cas.f_parent VALUES (1, 'A'), (2, 'B'), (3, 'C'), (4, 'D')",
    "INSERT INTO cas.e_child SELECT seq, ELT(1 + seq % 4, 'A', 'B', 'C', 'D'), seq FROM mysql.seq_1_to_40",
    "INSERT INTO cas.e_grand SELECT seq, ELT(1 + (1 + seq % 40) % 4, 'A', 'B', 'C', 'D'), 1 + seq % 40, 'grand' \
     FROM mysql.seq_1_to_80",
];

/// What the application does while the copy stands after the order lines and the first half of the chain were
/// copied, before the orders, customers, the chain's second half and the sku family were: the source's cascades
/// reach rows that the copy took before (order lines, the chain's lower half) through rows it takes after (gone
/// by then); a parent's sku goes and another parent takes it, its children following; a grandchild written just
/// before its parent's sku moved it.
const CASCADES_DURING_THE_COPY: &[&str] = &[
    "DELETE FROM cas.d_customers WHERE id = 1",
    "DELETE FROM cas.b_staff WHERE id = 900",
    "UPDATE cas.e_grand SET v = 'touched' WHERE id = 1",
    "DELETE FROM cas.f_parent WHERE id = 1",
    "UPDATE cas.f_parent SET sku = 'A' WHERE id = 2",
    "UPDATE cas.f_parent SET sku = 'Z' WHERE id = 3",
];

/// The same kinds of change once sync is exact.
const CASCADES_IN_EXACT_MODE: &[&str] = &[
    "DELETE FROM cas.d_customers WHERE id = 2",
    "DELETE FROM cas.b_staff WHERE id = 950",
    "UPDATE cas.e_grand SET v = 'touched again' WHERE id = 4",
    "DELETE FROM cas.f_parent WHERE id = 2",
    "UPDATE cas.f_parent SET sku = 'A' WHERE id = 4",
];

/// Whether process `pid` is stopped (SIGSTOP).
fn stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next())
        })
        .is_some_and(|c| c == 'T')
}

/// Item 7: DDL lands in the window around the start position, with a failpoint pausing ferry there: right after
/// P0 is taken (before the schema is read), and after the schema is created (the window before P0 where it used to
/// be taken). Rows written before the DDL have the old shape, rows after it the new one (an added column, INT
/// widened to BIGINT holding values past 2^32): the destination must end equal to the source. After the schema is
/// created the copy is next, and a type change under a table not copied yet is DDL during the copy (not handled
/// yet: it stops with a code), so that window gets the added column only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ddl_around_the_start_position_is_neither_lost_nor_replayed_twice() {
    logs();
    let wide = "ALTER TABLE win.t ADD COLUMN note VARCHAR(20) NOT NULL DEFAULT 'new', MODIFY v BIGINT NOT NULL";
    let added = "ALTER TABLE win.t ADD COLUMN note VARCHAR(20) NOT NULL DEFAULT 'new'";
    let big = "INSERT INTO win.t VALUES (102, 4294967296 * 3 + 7, 'wide')";
    let small = "INSERT INTO win.t VALUES (102, 2147483647, 'wide')";
    for (n, (failpoint, ddl, insert)) in [
        ("run.p0_taken=pause", wide, big),
        ("schema.created=pause", added, small),
    ]
    .into_iter()
    .enumerate()
    {
        let (source, destination) = pair().await;
        on(
            &source,
            &[
                "CREATE DATABASE win",
                "CREATE TABLE win.t (id INT PRIMARY KEY, v INT NOT NULL)",
                "INSERT INTO win.t SELECT seq, seq FROM mysql.seq_1_to_100",
            ],
        )
        .await;
        let cfg = online(&format!("win-{n}"), &source, &destination, "win");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write_task(&dir, &cfg);
        let mut child = Reap(
            Command::new(env!("CARGO_BIN_EXE_ferry"))
                .args(["run", "-c", &file, "--until-caught-up"])
                .env("FERRY_FAILPOINTS", failpoint)
                .env("RUST_LOG", "ferry_engine=info")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawning ferry run"),
        );
        let pid = child.0.id();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stopped(pid) {
            assert!(
                running(&mut child.0),
                "{failpoint}: ferry ended before its failpoint"
            );
            assert!(
                Instant::now() < deadline,
                "{failpoint}: ferry never reached its failpoint"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        on(
            &source,
            &[
                "INSERT INTO win.t VALUES (101, 101)",
                ddl,
                insert,
                "UPDATE win.t SET v = v + 1000, note = 'moved' WHERE id <= 3",
            ],
        )
        .await;
        let _ = Command::new("kill")
            .args(["-CONT", &pid.to_string()])
            .status();
        let out = tokio::task::spawn_blocking(move || {
            let status = child.0.wait().expect("wait");
            let mut err = String::new();
            if let Some(mut e) = child.0.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            (status, err)
        })
        .await
        .expect("waiting for ferry");
        assert!(
            out.0.success(),
            "{failpoint}: ferry failed: {}",
            out.1.lines().rev().take(6).collect::<Vec<_>>().join("\n")
        );
        assert_eq!(
            rows(&source, "SELECT * FROM win.t ORDER BY id").await,
            rows(&destination, "SELECT * FROM win.t ORDER BY id").await,
            "{failpoint}"
        );
        assert_same_data(&source, &destination, "win").await;
    }
}

/// Item 7: every row event's table map is checked against the shape ferry decodes with. An incremental-only task
/// told to start before an `INT -> BIGINT` change reads the table as BIGINT, while the rows before the change are
/// logged as INT: a coded stop naming the column, not a value read as another type.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_map_that_disagrees_with_the_shape_stops_with_a_code() {
    logs();
    let (source, destination) = pair().await;
    let ddl = "CREATE TABLE tm.t (id INT PRIMARY KEY, v INT NOT NULL)";
    on(&source, &["CREATE DATABASE tm", ddl]).await;
    on(&destination, &["CREATE DATABASE tm", ddl]).await;
    let (file, pos): (String, u64) = source
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("status")
        .map(|r: mysql_async::Row| (r.get(0).unwrap_or_default(), r.get(1).unwrap_or_default()))
        .expect("binlog on");
    on(
        &source,
        &[
            "INSERT INTO tm.t VALUES (1, -5)",
            "ALTER TABLE tm.t MODIFY v BIGINT NOT NULL",
            "INSERT INTO tm.t VALUES (2, 8589934592)",
        ],
    )
    .await;
    on(&destination, &["ALTER TABLE tm.t MODIFY v BIGINT NOT NULL"]).await;
    let mut cfg = task("tm", &source, &destination, &["tm"]);
    cfg.task.types = vec![MigrationType::Incremental];
    cfg.incremental.start = Some(ferry_engine::config::StartPosition {
        file,
        pos,
        gtid: String::new(),
    });
    let (ctl, run) = start_run(&cfg);
    ctl.send(Control::Drain).expect("drain");
    let err = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("stopped in time")
        .expect("run task")
        .expect_err("the shape disagrees with the binlog");
    assert_eq!(err.code().id, "FERRY-CDC-003", "{err}");
    assert!(err.to_string().contains("`v`"), "{err}");
    assert_eq!(count(&destination, "SELECT COUNT(*) FROM tm.t").await, 0);
}

/// Item 8: the start position MySQL sources get (no snapshot position there) is read under a global read lock, so
/// its file, offset and GTIDs agree even while transactions commit. Exercised here on MariaDB, the only server this
/// machine runs, where the same statements exist: every position read under the lock is the one its GTID list
/// names (BINLOG_GTID_POS), under a concurrent workload. (Whether a transaction flushed to the binlog but not yet
/// committed is waited for is MySQL's group-commit behaviour, which no server here can show.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_start_position_under_a_read_lock_agrees_with_its_gtids_under_load() {
    use ferry_engine::cdc::position::Position;
    use ferry_engine::mysql::conn::Flavor;
    logs();
    let (source, _destination) = pair().await;
    ferry_sim::datagen::create_shop(&source, 1)
        .await
        .expect("shop");
    let load = ShopWorkload::start(&source);
    let mut c = source.conn().await.expect("session");
    let mut locked_ok = 0;
    let mut reads = 0;
    let started = Instant::now();
    // At least 30 reads over at least 3 s, so they interleave with the writers' commits.
    while reads < 30 || started.elapsed() < Duration::from_secs(3) {
        reads += 1;
        let p = Position::under_read_lock(&mut c, Flavor::MariaDb)
            .await
            .expect("position")
            .expect("root may take the lock");
        let Position::MariaDb {
            file,
            pos,
            gtid_list,
        } = &p
        else {
            panic!("MariaDB position expected, got {p}");
        };
        let named: Option<String> = c
            .query_first(format!("SELECT BINLOG_GTID_POS('{file}', {pos})"))
            .await
            .expect("BINLOG_GTID_POS");
        if named.as_deref() == Some(gtid_list.as_str()) {
            locked_ok += 1;
        }
    }
    let stats = load.finish().await;
    assert!(stats.transactions >= 10, "the workload ran: {stats:?}");
    assert_eq!(
        locked_ok, reads,
        "every position read under the lock agrees with its GTID list"
    );
}

/// `ferry run --until-caught-up` that stops itself (SIGSTOP) after the copy's second chunk commits: the order lines
/// and the chain's first half are copied, nothing else. `during` runs on the source then, and the run goes on with
/// the other failpoints of `failpoints` armed; its exit code.
async fn run_with_cascades_during_the_copy(
    file: &str,
    source: &Instance,
    destination: &Instance,
    failpoints: &str,
) -> i32 {
    let log =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cascades-during-the-copy.log");
    eprintln!("ferry run logs to {}", log.display());
    let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "-c", file, "--until-caught-up"])
        .env(
            "FERRY_FAILPOINTS",
            format!("copy.chunk_committed=pause@2{failpoints}"),
        )
        .env("RUST_LOG", "ferry_engine=info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawning ferry run");
    let mut child = Reap(child);
    let pid = child.0.id();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !stopped(pid) {
        assert!(running(&mut child.0), "ferry run ended before the pause");
        assert!(
            Instant::now() < deadline,
            "ferry run did not reach the pause"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        rows(
            destination,
            "SELECT CONCAT(name, ':', chunk_no) FROM ferry_meta.chunks WHERE done_at IS NOT NULL ORDER BY name, chunk_no"
        )
        .await,
        vec!["a_lines:0", "b_staff:0"],
        "the copy stands after the order lines and the chain's first chunk"
    );
    on(source, CASCADES_DURING_THE_COPY).await;
    let resumed = Command::new("kill")
        .args(["-CONT", &pid.to_string()])
        .status()
        .expect("kill -CONT");
    assert!(resumed.success());
    let deadline = Instant::now() + Duration::from_secs(300);
    let code = loop {
        if let Ok(Some(status)) = child.0.try_wait() {
            break status.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "ferry run did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "ferry run exited {code}\n{}",
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .rev()
            .take(12)
            .collect::<Vec<_>>()
            .join("\n")
    );
    code
}

/// Item 4, cascades replayed onto copies taken after them: the source deletes a customer after its order lines
/// were copied and before its orders were, cuts a self-referencing chain whose lower half was copied before, gives
/// a deleted parent's sku to another parent whose children follow it there, and moves a grandchild it had just
/// written. Catch-up cannot tell from the destination which rows those cascades reached, so it re-copies the
/// tables they may have changed from a source snapshot when it reaches P1, and the destination ends as the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cascades_replayed_onto_later_copies_match_the_source() {
    logs();
    let (source, destination) = pair().await;
    on(&source, CASCADE_SCHEMA).await;
    let mut cfg = online("cascades", &source, &destination, "cas");
    cfg.full.workers = 1;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_task(&dir, &cfg);
    assert_eq!(
        run_with_cascades_during_the_copy(&file, &source, &destination, "").await,
        0,
        "copy, catch-up and exact mode"
    );
    // What the source did: the customer's orders and lines, the chain below 900, the old `A` children are gone;
    // `B`'s children are `A`'s now, `C`'s are `Z`'s with their grandchildren.
    assert_eq!(
        count(&source, "SELECT COUNT(*) FROM cas.a_lines").await,
        150
    );
    assert_eq!(
        count(&source, "SELECT COUNT(*) FROM cas.b_staff").await,
        994
    );
    assert_eq!(
        count(
            &source,
            "SELECT COUNT(*) FROM cas.e_child WHERE p_sku = 'A'"
        )
        .await,
        10
    );
    assert_eq!(
        count(&source, "SELECT COUNT(*) FROM cas.e_grand WHERE csku = 'Z'").await,
        20
    );
    assert_same_data(&source, &destination, "cas").await;
    // Re-copied: the tables the cascades reached, not their parents.
    assert_eq!(
        rows(
            &destination,
            "SELECT name FROM ferry_meta.recopy WHERE copied_at IS NOT NULL ORDER BY name"
        )
        .await,
        vec!["a_lines", "b_staff", "b_trail", "c_orders", "e_child", "e_grand"]
    );

    on(&source, CASCADES_IN_EXACT_MODE).await;
    assert_eq!(run_once(&file, ""), 0, "exact mode");
    assert_same_data(&source, &destination, "cas").await;
    let v = verify(&cfg).await;
    assert!(v.consistent(), "verifier found differences: {v:?}");
}

/// The re-copy of the tables the cascades reached, killed in its middle and again after its last table: each run
/// resumes from the metadata (a round cut short starts again under a new snapshot; one whole but not recorded as
/// the new P1 only moves P1), cascades written while ferry is down included, and the destination ends as the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recopy_killed_anywhere_resumes_from_the_metadata() {
    logs();
    let (source, destination) = pair().await;
    on(&source, CASCADE_SCHEMA).await;
    let mut cfg = online("cascades-killed", &source, &destination, "cas");
    cfg.full.workers = 1;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_task(&dir, &cfg);
    // The round re-copies order lines (one chunk), the chain (two), then orders and the sku family: the second
    // chunk is the chain's first.
    assert_eq!(
        run_with_cascades_during_the_copy(
            &file,
            &source,
            &destination,
            ",recopy.chunk_committed=crash@2"
        )
        .await,
        137,
        "killed in the middle of the re-copy"
    );
    let copied = "SELECT COUNT(*) FROM ferry_meta.recopy WHERE copied_at IS NOT NULL";
    assert_eq!(count(&destination, copied).await, 1, "the order lines only");
    on(
        &source,
        &[
            "DELETE FROM cas.d_customers WHERE id = 3",
            "UPDATE cas.f_parent SET sku = 'Y' WHERE id = 4",
        ],
    )
    .await;
    assert_eq!(
        run_once(&file, "recopy.done=crash"),
        137,
        "killed after the last table, before P1 moved"
    );
    assert_eq!(count(&destination, copied).await, 6);
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM ferry_meta.recopy r JOIN ferry_meta.cdc c ON c.task = r.task WHERE r.snapshot = c.p1"
        )
        .await,
        0,
        "P1 has not moved to the snapshot yet"
    );
    on(&source, &["DELETE FROM cas.b_staff WHERE id = 950"]).await;
    assert_eq!(run_once(&file, ""), 0, "the third run finishes");
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM ferry_meta.recopy r JOIN ferry_meta.cdc c ON c.task = r.task WHERE r.snapshot = c.p1"
        )
        .await,
        6
    );
    assert_same_data(&source, &destination, "cas").await;
    on(&source, CASCADES_IN_EXACT_MODE).await;
    assert_eq!(run_once(&file, ""), 0, "exact mode");
    assert_same_data(&source, &destination, "cas").await;
    let v = verify(&cfg).await;
    assert!(v.consistent(), "verifier found differences: {v:?}");
}
