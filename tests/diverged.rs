//! Exact mode against a destination that something else changed: each kind of divergence stops sync with its code,
//! names the rows, writes nothing of the failing batch, and sync goes on once the destination is put right.

mod common;

use common::*;
use ferry_engine::cdc::sync::Control;
use ferry_engine::config::{MigrationType, TaskConfig};
use ferry_engine::error::Error;
use ferry_engine::migration::{self, RunOptions, RunReport};
use ferry_sim::Instance;
use std::time::Duration;

/// Runs the task until it has applied the source's current position (or fails).
async fn run_drained(cfg: &TaskConfig) -> Result<RunReport, Error> {
    let (ctl, rx) = tokio::sync::watch::channel(Control::Drain);
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        migration::run(
            cfg,
            &RunOptions {
                progress: false,
                control: Some(rx),
                live: None,
            },
        ),
    )
    .await
    .expect("the run ended by itself");
    drop(ctl);
    out
}

/// Every row of both tables, as text.
const EVERY_ROW: &str = "SELECT CONCAT_WS(',', 'u', id, email, name) FROM acct.users \
     UNION ALL SELECT CONCAT_WS(',', 'l', id, amount) FROM acct.ledger ORDER BY 1";

async fn checkpoint(destination: &Instance) -> Vec<String> {
    rows(
        destination,
        "SELECT CONCAT_WS(' ', checkpoint, transactions) FROM ferry_meta.cdc",
    )
    .await
}

/// One divergence: `tamper` on the destination, `change` on the source, the code and the names the error must
/// carry, and the `fix` that puts the destination right.
struct Case<'a> {
    tamper: &'a str,
    change: &'a str,
    code: &'a str,
    names: &'a [&'a str],
    fix: &'a str,
}

/// Makes the source change, expects sync to stop with the code and a message naming the rows, checks that nothing
/// moved, then puts the destination right and expects sync to go on.
async fn diverge(cfg: &TaskConfig, source: &Instance, destination: &Instance, case: Case<'_>) {
    let Case {
        tamper,
        change,
        code,
        names,
        fix,
    } = case;
    destination.exec(tamper).await.expect("tamper");
    source.exec(change).await.expect("source change");
    let before = checkpoint(destination).await;
    let users = rows(destination, EVERY_ROW).await;
    let err = run_drained(cfg).await.expect_err(change);
    assert_eq!(err.code().id, code, "{change}: {err}");
    // The stop is recorded where `ferry status` reads it.
    let st = ferry_engine::status::read(cfg).await.expect("status");
    assert_eq!(st.failed_code.as_deref(), Some(code), "{change}");
    assert_eq!(
        (st.state, st.phase.as_str()),
        ("failed", "incremental"),
        "{change}"
    );
    let text = err.to_string();
    for n in names {
        assert!(
            text.contains(n),
            "{change}: the message does not name {n}: {text}"
        );
    }
    assert_eq!(
        checkpoint(destination).await,
        before,
        "{change}: the checkpoint moved"
    );
    assert_eq!(
        rows(destination, EVERY_ROW).await,
        users,
        "{change}: the destination changed"
    );
    destination.exec(fix).await.expect("fix");
    run_drained(cfg)
        .await
        .unwrap_or_else(|e| panic!("after {fix}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_divergence_in_exact_mode_stops_with_its_code_and_names_the_rows() {
    logs();
    let (source, destination) = pair().await;
    for s in [
        "CREATE DATABASE acct",
        "CREATE TABLE acct.users (id INT NOT NULL PRIMARY KEY, email VARCHAR(64) NOT NULL, name VARCHAR(40) NOT NULL, UNIQUE KEY u_email (email))",
        "INSERT INTO acct.users SELECT seq, CONCAT('u', seq, '@example.org'), CONCAT('user ', seq) FROM acct.seq_1_to_100",
        // No unique key but the primary key: its rows are merged per key (see cdc::compact).
        "CREATE TABLE acct.ledger (id INT NOT NULL PRIMARY KEY, amount INT NOT NULL)",
        "INSERT INTO acct.ledger SELECT seq, seq * 10 FROM acct.seq_1_to_100",
    ] {
        source.exec(s).await.expect(s);
    }
    let mut cfg = task("diverged", &source, &destination, &["acct"]);
    cfg.task.types.push(MigrationType::Incremental);
    // Only the test's own changes in the binlog, so "the checkpoint did not move" is exact.
    cfg.incremental.heartbeat = false;
    run_drained(&cfg).await.expect("copy and catch up");
    source
        .exec("UPDATE acct.users SET name = 'exact' WHERE id = 1")
        .await
        .expect("update");
    let r = run_drained(&cfg).await.expect("exact mode");
    assert_eq!(
        r.sync.map(|s| format!("{:?}", s.mode)).as_deref(),
        Some("Exact")
    );

    // Another row holds the unique value: never resolved by deleting it.
    for case in [
        Case {
            tamper: "INSERT INTO acct.users VALUES (5000, 'taken@example.org', 'intruder')",
            change: "INSERT INTO acct.users VALUES (101, 'taken@example.org', 'legit')",
            code: "FERRY-CDC-006",
            names: &["5000", "101", "u_email", "intruder"],
            fix: "DELETE FROM acct.users WHERE id = 5000",
        },
        Case {
            tamper: "UPDATE acct.users SET email = 'moved@example.org' WHERE id = 9",
            change:
                "UPDATE acct.users SET email = 'moved@example.org', name = 'nine' WHERE id = 10",
            code: "FERRY-CDC-006",
            names: &["9", "10", "u_email"],
            fix: "UPDATE acct.users SET email = 'u9@example.org' WHERE id = 9",
        },
        Case {
            tamper: "DELETE FROM acct.users WHERE id = 7",
            change: "UPDATE acct.users SET name = 'renamed' WHERE id = 7",
            code: "FERRY-CDC-007",
            names: &["update", "7"],
            fix: "INSERT INTO acct.users VALUES (7, 'u7@example.org', 'user 7')",
        },
        Case {
            tamper: "INSERT INTO acct.users VALUES (102, 'pre@example.org', 'pre')",
            change: "INSERT INTO acct.users VALUES (102, 'real@example.org', 'real')",
            code: "FERRY-CDC-007",
            names: &["insert", "102"],
            fix: "DELETE FROM acct.users WHERE id = 102",
        },
        Case {
            tamper: "DELETE FROM acct.users WHERE id = 8",
            change: "DELETE FROM acct.users WHERE id = 8",
            code: "FERRY-CDC-007",
            names: &["delete", "8"],
            fix: "INSERT INTO acct.users VALUES (8, 'u8@example.org', 'user 8')",
        },
        Case {
            tamper: "DELETE FROM acct.ledger WHERE id = 17",
            change: "UPDATE acct.ledger SET amount = amount + 1 WHERE id IN (16, 17, 18)",
            code: "FERRY-CDC-007",
            names: &["acct.ledger", "update", "id=17"],
            fix: "INSERT INTO acct.ledger VALUES (17, 170)",
        },
        Case {
            tamper: "INSERT INTO acct.ledger VALUES (500, 1)",
            change: "INSERT INTO acct.ledger VALUES (499, 5), (500, 5)",
            code: "FERRY-CDC-007",
            names: &["acct.ledger", "insert", "id=500"],
            fix: "DELETE FROM acct.ledger WHERE id = 500",
        },
        Case {
            tamper: "DELETE FROM acct.ledger WHERE id = 30",
            change: "DELETE FROM acct.ledger WHERE id BETWEEN 29 AND 31",
            code: "FERRY-CDC-007",
            names: &["acct.ledger", "delete", "id=30"],
            fix: "INSERT INTO acct.ledger VALUES (30, 300)",
        },
    ] {
        diverge(&cfg, &source, &destination, case).await;
    }
    assert_same_data(&source, &destination, "acct").await;
}
