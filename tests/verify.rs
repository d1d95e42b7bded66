//! The verifier against real servers: every kind of difference found (server digests and client hashing), written
//! as a diff and a repair that makes a re-verify pass; sample, since and online modes; a killed run resumes.

mod common;

use common::*;
use ferry_engine::config::{MigrationType, TaskConfig};
use ferry_engine::migration::{self, RunOptions};
use ferry_sim::datagen;
use ferry_verifier::digest::Strategy;
use ferry_verifier::{Mode, TableResult, VerifyOptions, VerifyReport};
use std::process::Command;
use std::time::{Duration, Instant};

async fn run_once(cfg: &TaskConfig) {
    migration::run(
        cfg,
        &RunOptions {
            progress: false,
            control: None,
            live: None,
        },
    )
    .await
    .expect("migration");
}

async fn verify_with(cfg: &TaskConfig, opts: VerifyOptions) -> VerifyReport {
    ferry_verifier::verify(cfg, &opts)
        .await
        .expect("verifier ran")
}

fn table<'a>(r: &'a VerifyReport, name: &str) -> &'a TableResult {
    r.tables
        .iter()
        .find(|t| t.table == name)
        .unwrap_or_else(|| panic!("{name} not in the report: {r:?}"))
}

/// (missing, extra, different) of a table.
fn counts(r: &VerifyReport, name: &str) -> (u64, u64, u64) {
    let t = table(r, name);
    (t.missing, t.extra, t.different)
}

const SETUP: &[&str] = &[
    "SET GLOBAL max_allowed_packet = 67108864",
    "CREATE DATABASE vk CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
    "CREATE TABLE vk.main (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NULL, c CHAR(5) NULL, bin BINARY(4) NULL, \
     j JSON NULL, s VARCHAR(20) COLLATE utf8mb4_general_ci NULL, n INT NULL)",
    "INSERT INTO vk.main (id, v, c, bin, j, s, n) WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k \
     WHERE i < 249), seq(i) AS (SELECT a.i * 250 + b.i + 1 FROM k a, k b) SELECT i, CONCAT('v', i), 'a', 'ab', \
     '{\"a\": 1, \"b\": [1, 2]}', 'abc', i FROM seq WHERE i <= 5000",
    "UPDATE vk.main SET v = NULL WHERE id = 3",
    "UPDATE vk.main SET v = '' WHERE id = 4",
    "UPDATE vk.main SET v = 'abc' WHERE id = 5",
    "CREATE TABLE vk.floats (id INT NOT NULL PRIMARY KEY, d DOUBLE NULL, f FLOAT NULL)",
    "INSERT INTO vk.floats VALUES (1, 0.0, 0.5), (2, 1.0, 1.5), (3, 3.25, 2.5)",
    "CREATE TABLE vk.nokey (a INT NULL, b VARCHAR(10) NULL)",
    "INSERT INTO vk.nokey VALUES (1, 'a'), (1, 'a'), (2, 'b'), (NULL, 'NULL')",
    "CREATE TABLE vk.big (id INT NOT NULL PRIMARY KEY, data LONGBLOB NOT NULL)",
    "INSERT INTO vk.big VALUES (1, REPEAT('x', 16777216)), (2, 'small')",
];

/// What is planted on the destination, and what each must be reported as.
const TAMPER: &[&str] = &[
    "DELETE FROM vk.main WHERE id = 1",                     // missing
    "INSERT INTO vk.main (id, v) VALUES (100000, 'extra')", // extra
    "UPDATE vk.main SET v = 'changed' WHERE id = 2",        // one column
    "UPDATE vk.main SET v = '' WHERE id = 3",               // NULL vs ''
    "UPDATE vk.main SET v = 'NULL' WHERE id = 4",           // '' vs 'NULL'
    "UPDATE vk.main SET v = 'abc ' WHERE id = 5",           // VARCHAR trailing space
    "UPDATE vk.main SET bin = 'ab ' WHERE id = 6",          // BINARY: 'ab\\0\\0' vs 'ab \\0'
    "UPDATE vk.main SET s = 'ABC' WHERE id = 8",            // equal under the collation only
    "UPDATE vk.main SET j = '{\"b\":[1,2],\"a\":1}' WHERE id = 7", // other JSON text: a difference on MariaDB only
    "UPDATE vk.main SET c = 'a ' WHERE id = 9", // CHAR: stored and returned as 'a' by both: not a difference
    "UPDATE vk.main SET n = 4005 WHERE id = 4004", // deep in the table: found by narrowing
    "UPDATE vk.floats SET d = -0.0e0 WHERE id = 1", // -0.0 vs 0.0
    "UPDATE vk.floats SET d = 1.0000000001e0 WHERE id = 2", // within a tolerance
    "DELETE FROM vk.nokey WHERE a = 1 LIMIT 1", // one of two equal rows
    "INSERT INTO vk.nokey VALUES (3, 'c')",
    "UPDATE vk.big SET data = INSERT(data, 8000000, 1, 'y') WHERE id = 1", // one byte inside 16 MiB
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_difference_is_found_located_and_repaired() {
    logs();
    let (source, destination) = pair().await;
    destination
        .exec("SET GLOBAL max_allowed_packet = 67108864")
        .await
        .expect("packet");
    for s in SETUP {
        source.exec(s).await.expect(s);
    }
    let cfg = task("kinds", &source, &destination, &["vk"]);
    run_once(&cfg).await;
    let opts = || VerifyOptions {
        chunk_rows: 2_000,
        ..Default::default()
    };
    let clean = verify_with(&cfg, opts()).await;
    assert!(clean.consistent(), "{clean:?}");
    assert_eq!(table(&clean, "vk.main").rows_source, 5_000);
    assert_eq!(
        table(&clean, "vk.main").strategy,
        Some(Strategy::ServerDigest)
    );
    assert_eq!(table(&clean, "vk.floats").strategy, Some(Strategy::Client));
    assert_eq!(
        table(&clean, "vk.main").chunks_located,
        0,
        "equal ranges are never read"
    );

    for s in TAMPER {
        destination.exec(s).await.expect(s);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let found = verify_with(
        &cfg,
        VerifyOptions {
            out: Some(dir.path().to_path_buf()),
            ..opts()
        },
    )
    .await;
    assert!(!found.consistent());
    // MariaDB's JSON is text: other key order and spacing are other bytes, a difference; MySQL stores one document.
    let mariadb = source.version.to_lowercase().contains("mariadb");
    let main_diffs = if mariadb { 8 } else { 7 };
    assert_eq!(counts(&found, "vk.main"), (1, 1, main_diffs), "{found:?}");
    // MariaDB stores -0.0 into a DOUBLE as 0.0 (MySQL keeps the sign): the planted difference exists only where the
    // server kept it, and the canonical encoding's unit tests cover the values themselves.
    let negative_zero_kept = count(
        &destination,
        "SELECT COUNT(*) FROM vk.floats WHERE id = 1 AND ATAN2(d, -1) < 0",
    )
    .await
        == 1;
    if !negative_zero_kept {
        eprintln!("this server stores -0.0 as 0.0: no -0.0 difference to find");
    }
    let float_diffs = if negative_zero_kept { 2 } else { 1 };
    assert_eq!(
        counts(&found, "vk.floats"),
        (0, 0, float_diffs),
        "{found:?}"
    );
    assert_eq!(counts(&found, "vk.nokey"), (1, 1, 0), "{found:?}");
    assert_eq!(counts(&found, "vk.big"), (0, 0, 1), "{found:?}");
    let main = table(&found, "vk.main");
    // 2,000-key ranges: up to 2000, 2001-4000, then the open-ended rest. The middle one holds no difference, so
    // its digests match and its rows are never read.
    assert_eq!(main.chunks, 3);
    assert_eq!(main.chunks_located, 2, "{main:?}");

    // The same differences by client-side hashing alone.
    let client = verify_with(
        &cfg,
        VerifyOptions {
            client_only: true,
            ..opts()
        },
    )
    .await;
    for t in ["vk.main", "vk.floats", "vk.nokey", "vk.big"] {
        assert_eq!(counts(&client, t), counts(&found, t), "{t}: {client:?}");
        assert_eq!(table(&client, t).strategy, Some(Strategy::Client));
    }
    // A tolerance makes 1.0 / 1.0000000001 and 0.0 / -0.0 equal; nothing else.
    let tolerant = verify_with(
        &cfg,
        VerifyOptions {
            float_tolerance: Some(1e-6),
            ..opts()
        },
    )
    .await;
    assert_eq!(counts(&tolerant, "vk.floats"), (0, 0, 0), "{tolerant:?}");
    assert_eq!(counts(&tolerant, "vk.main"), (1, 1, main_diffs));

    // The diff names rows, columns and both images.
    let diff = std::fs::read_to_string(dir.path().join("diff.jsonl")).expect("diff.jsonl");
    let lines: Vec<serde_json::Value> = diff
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(
        lines.len() as u64,
        main_diffs + 2 + float_diffs + 2 + 1,
        "{diff}"
    );
    let of = |id: i64| {
        lines
            .iter()
            .find(|l| l["table"] == "vk.main" && l["key"][0] == id)
            .unwrap_or_else(|| panic!("no diff line for id {id}: {diff}"))
    };
    assert_eq!(of(1)["kind"], "missing");
    assert_eq!(of(100000)["kind"], "extra");
    assert_eq!(of(2)["columns"], serde_json::json!(["v"]));
    assert_eq!(of(2)["source"]["v"], "v2");
    assert_eq!(of(2)["destination"]["v"], "changed");
    assert_eq!(of(3)["source"]["v"], serde_json::Value::Null);
    assert_eq!(of(3)["destination"]["v"], "");
    assert_eq!(of(4)["destination"]["v"], "NULL");
    assert_eq!(of(5)["destination"]["v"], "abc ");
    assert_eq!(of(6)["columns"], serde_json::json!(["bin"]));
    assert_eq!(of(8)["destination"]["s"], "ABC");
    assert_eq!(of(4004)["columns"], serde_json::json!(["n"]));
    assert!(lines.iter().all(|l| l["key"][0] != 9));
    if mariadb {
        assert_eq!(of(7)["columns"], serde_json::json!(["j"]));
    } else {
        assert!(lines.iter().all(|l| l["key"][0] != 7));
    }
    let big = lines
        .iter()
        .find(|l| l["table"] == "vk.big")
        .expect("big line");
    assert_eq!(big["columns"], serde_json::json!(["data"]));

    // A repair statement that no longer matches the destination rolls the whole repair back.
    destination
        .exec("DELETE FROM vk.main WHERE id = 2")
        .await
        .expect("tamper");
    let repair = dir.path().join("repair.sql");
    let err = ferry_verifier::repair::apply(&cfg, &repair)
        .await
        .expect_err("a stale repair fails");
    assert_eq!(err.code().id, "FERRY-VER-005", "{err}");
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM vk.main WHERE id = 100000"
        )
        .await,
        1,
        "nothing of the failed repair stays"
    );
    destination
        .exec("INSERT INTO vk.main (id, v) VALUES (2, 'changed')")
        .await
        .expect("put back");

    // `ferry verify --apply-repair` applies the file and verifies again.
    let file = write_task(&dir, &cfg);
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([
            "verify",
            "-c",
            &file,
            "--json",
            "--apply-repair",
            "--chunk-rows",
            "2000",
        ])
        .output()
        .expect("ferry verify --apply-repair");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        v["repair"]["statements"].as_u64().is_some_and(|n| n >= 13),
        "{v}"
    );
    assert!(v["after"]["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .all(|t| t["missing"] == 0 && t["extra"] == 0 && t["different"] == 0));
    let after = verify_with(&cfg, opts()).await;
    assert!(after.consistent(), "{after:?}");
    assert_eq!(
        rows(&destination, "SELECT CONCAT_WS(',', IFNULL(v, 'null!'), HEX(bin)) FROM vk.main WHERE id IN (3, 6) ORDER BY id").await,
        vec!["null!,61620000".to_string(), "v6,61620000".to_string()]
    );
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM vk.nokey WHERE a = 1").await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_and_since_modes_check_only_their_rows() {
    logs();
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 1).await.expect("shop");
    let mut cfg = task("modes", &source, &destination, &[datagen::SHOP_DB]);
    cfg.task.types.push(MigrationType::Incremental);
    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "modes", run, 0).await;

    // Online and since modes need the task's sync; a schema+full task has none.
    let plain = task("plain", &source, &destination, &[datagen::SHOP_DB]);
    let err = ferry_verifier::verify(
        &plain,
        &VerifyOptions {
            mode: Mode::Online,
            ..Default::default()
        },
    )
    .await
    .expect_err("no sync");
    assert_eq!(err.code().id, "FERRY-VER-002", "{err}");

    let total = count(&source, "SELECT COUNT(*) FROM shop.customers").await;
    let sample = |seed: u64| VerifyOptions {
        mode: Mode::Sample {
            percent: 25.0,
            seed,
        },
        chunk_rows: 500,
        ..Default::default()
    };
    let a = verify_with(&cfg, sample(7)).await;
    assert!(a.consistent(), "{a:?}");
    let n = table(&a, "shop.customers").rows_source;
    assert!(
        (total / 8..total / 2).contains(&n),
        "25% of {total} customers: {n}"
    );
    assert_eq!(table(&a, "shop.customers").rows_destination, n);
    assert_eq!(
        verify_with(&cfg, sample(7)).await.rows_checked(),
        a.rows_checked()
    );
    assert_eq!(a.seed, Some(7));

    // Rows changed after P: only they are checked; a tampered row outside them is not.
    let p = {
        let pool = mysql_async::Pool::new(source.url().as_str());
        let mut c = pool.get_conn().await.expect("conn");
        let p = ferry_engine::cdc::position::Position::current(
            &mut c,
            ferry_engine::mysql::conn::Flavor::MariaDb,
        )
        .await
        .expect("position");
        drop(c);
        pool.disconnect().await.expect("disconnect");
        p
    };
    source
        .exec("UPDATE shop.customers SET name = CONCAT(name, '!') WHERE id IN (3, 4, 5)")
        .await
        .expect("change");
    let before = count(
        &destination,
        "SELECT CAST(transactions AS UNSIGNED) FROM ferry_meta.cdc WHERE task = 'modes'",
    )
    .await;
    wait_for(
        "the change",
        &destination,
        "SELECT COUNT(*) FROM shop.customers WHERE id IN (3, 4, 5) AND name LIKE '%!'",
        3,
        &mut || true,
    )
    .await
    .expect("applied");
    assert!(before >= 1);
    destination
        .exec("UPDATE shop.customers SET name = 'tampered' WHERE id IN (4, 10)")
        .await
        .expect("tamper");
    let since = verify_with(
        &cfg,
        VerifyOptions {
            mode: Mode::Since {
                from: format!("{}:{}", p.file(), p.pos()),
            },
            ..Default::default()
        },
    )
    .await;
    let c = table(&since, "shop.customers");
    assert_eq!(c.rows_source, 3, "{since:?}");
    assert_eq!((c.missing, c.extra, c.different), (0, 0, 1), "{since:?}");
    assert_eq!(c.first_differences, vec!["different (4)".to_string()]);
    assert_eq!(table(&since, "shop.orders").rows_source, 0);
    // The full verification sees both.
    let full = verify_with(&cfg, VerifyOptions::default()).await;
    assert_eq!(counts(&full, "shop.customers"), (0, 0, 2));

    let _ = ctl.send(ferry_engine::cdc::sync::Control::Stop);
    run.await.expect("run task").expect("run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn online_mode_under_writes_reports_only_the_planted_differences() {
    logs();
    let (source, destination) = pair().await;
    datagen::create_shop(&source, 1).await.expect("shop");
    let mut cfg = task("online", &source, &destination, &[datagen::SHOP_DB]);
    cfg.task.types.push(MigrationType::Incremental);
    let wl = ShopWorkload::start(&source);
    let (ctl, run) = start_run(&cfg);
    let run = wait_synced(&destination, "online", run, 50).await;
    // Planted where no source change reaches: an order id the source never uses, a page view (the workload writes
    // none).
    destination
        .exec(
            "INSERT INTO shop.orders (id, customer_id, status, ordered_on) SELECT 900000001, MIN(id), 'new', \
             '2026-01-01' FROM shop.customers",
        )
        .await
        .expect("plant extra");
    destination
        .exec("UPDATE shop.page_views SET ms = ms + 1 ORDER BY at, path, ms LIMIT 1")
        .await
        .expect("plant different");
    let started = Instant::now();
    let report = verify_with(
        &cfg,
        VerifyOptions {
            mode: Mode::Online,
            chunk_rows: 500,
            ..Default::default()
        },
    )
    .await;
    let stats = wl.finish().await;
    eprintln!(
        "online verify in {:.1}s under {stats:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(stats.transactions > 100, "the workload ran: {stats:?}");
    for t in &report.tables {
        let expected = match t.table.as_str() {
            "shop.orders" => (0, 1, 0),
            "shop.page_views" => (1, 1, 0),
            _ => (0, 0, 0),
        };
        assert_eq!((t.missing, t.extra, t.different), expected, "{t:?}");
        assert_eq!(t.unsettled, 0, "{t:?}");
    }
    assert_eq!(
        table(&report, "shop.orders").first_differences,
        vec!["extra (900000001)".to_string()]
    );
    let _ = ctl.send(ferry_engine::cdc::sync::Control::Stop);
    run.await.expect("run task").expect("run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_verification_resumes_from_its_last_key_and_writes_each_difference_once() {
    logs();
    let (source, destination) = pair().await;
    for s in [
        "CREATE DATABASE r",
        "CREATE TABLE r.t (id INT NOT NULL PRIMARY KEY, v VARCHAR(40) NOT NULL)",
        "INSERT INTO r.t WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < 249) \
         SELECT a.i * 250 + b.i + 1, MD5(a.i * 250 + b.i + 1) FROM k a, k b WHERE a.i * 250 + b.i < 60000",
    ] {
        source.exec(s).await.expect(s);
    }
    let cfg = task("resume", &source, &destination, &["r"]);
    run_once(&cfg).await;
    destination
        .exec("UPDATE r.t SET v = 'x' WHERE id % 5000 = 0")
        .await
        .expect("tamper");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_task(&dir, &cfg);
    let out = dir.path().join("out");
    let out_s = out.display().to_string();
    let args = |resume: bool| {
        let mut a = vec![
            "verify",
            "-c",
            &file,
            "--json",
            "--out",
            &out_s,
            "--chunk-rows",
            "50",
            "--parallel",
            "1",
            "--client-hash",
        ];
        if resume {
            a.push("--resume");
        }
        a.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let mut child = Reap(
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(args(false))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("ferry verify"),
    );
    let progress = out.join("progress.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    let chunks_at_kill = loop {
        assert!(Instant::now() < deadline, "no progress");
        assert!(
            running(&mut child.0),
            "the verification ended before it was killed"
        );
        let p: Option<serde_json::Value> = std::fs::read_to_string(&progress)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let chunks = p
            .as_ref()
            .and_then(|p| p["tables"]["r.t"]["result"]["chunks"].as_u64())
            .unwrap_or(0);
        if chunks >= 300 {
            break chunks;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    child.0.kill().expect("kill -9");
    let _ = child.0.wait();
    let o = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args(true))
        .output()
        .expect("ferry verify --resume");
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let t = &r["tables"][0];
    assert_eq!(t["rows_source"], 60000, "{r}");
    assert_eq!(t["different"], 12, "{r}");
    // 1,200 ranges of 50 keys and the open-ended one after the last key (where extra rows would be).
    assert_eq!(t["chunks"], 1201, "{r}");
    assert!(chunks_at_kill < 1201);
    let diff = std::fs::read_to_string(out.join("diff.jsonl")).expect("diff");
    let mut ids: Vec<i64> = diff
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("line")["key"][0]
                .as_i64()
                .expect("id")
        })
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        (1..=12).map(|i| i * 5000).collect::<Vec<_>>(),
        "each difference once"
    );
    let repair = std::fs::read_to_string(out.join("repair.sql")).expect("repair");
    assert_eq!(
        repair.lines().filter(|l| l.starts_with("UPDATE")).count(),
        12
    );

    // Another mode cannot continue this run's progress.
    let err = ferry_verifier::verify(
        &cfg,
        &VerifyOptions {
            out: Some(out.clone()),
            resume: true,
            mode: Mode::Sample {
                percent: 5.0,
                seed: 1,
            },
            ..Default::default()
        },
    )
    .await
    .expect_err("other options");
    assert_eq!(err.code().id, "FERRY-VER-004", "{err}");
}

/// JSON compares by its text on MariaDB (where JSON is a LONGTEXT): a duplicate key, a number's digits and key order
/// are differences in both modes, and `--apply-repair` leaves the destination byte-equal to the source. On MySQL the
/// server stores each pair as one binary document (last duplicate wins, numbers as doubles, keys sorted): equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_differs_by_its_text_and_the_repair_leaves_the_bytes_equal() {
    logs();
    let (source, destination) = pair().await;
    let mariadb = source.version.to_lowercase().contains("mariadb");
    for s in [
        "CREATE DATABASE vj",
        "CREATE TABLE vj.docs (id INT NOT NULL PRIMARY KEY, j JSON NULL)",
        "INSERT INTO vj.docs VALUES (1, '{\"a\":2}'), (2, '1.0'), (3, '{\"a\":1, \"b\":2}'), (4, '[1, 2]')",
    ] {
        source.exec(s).await.expect(s);
    }
    let cfg = task("json", &source, &destination, &["vj"]);
    run_once(&cfg).await;
    let clean = verify_with(&cfg, VerifyOptions::default()).await;
    assert!(clean.consistent(), "{clean:?}");
    for s in [
        "UPDATE vj.docs SET j = '{\"a\":1,\"a\":2}' WHERE id = 1",
        "UPDATE vj.docs SET j = '1.0000000000000001' WHERE id = 2",
        "UPDATE vj.docs SET j = '{\"b\":2, \"a\":1}' WHERE id = 3",
    ] {
        destination.exec(s).await.expect(s);
    }
    let expected: Vec<String> = if mariadb {
        vec![
            "different (1)".into(),
            "different (2)".into(),
            "different (3)".into(),
        ]
    } else {
        vec![]
    };
    for client_only in [false, true] {
        let r = verify_with(
            &cfg,
            VerifyOptions {
                client_only,
                ..Default::default()
            },
        )
        .await;
        let t = table(&r, "vj.docs");
        assert_eq!(
            t.strategy,
            Some(if client_only {
                Strategy::Client
            } else {
                Strategy::ServerDigest
            })
        );
        assert_eq!(
            (t.missing, t.extra, t.different),
            (0, 0, expected.len() as u64),
            "client_only {client_only}: {r:?}"
        );
        assert_eq!(t.first_differences, expected, "client_only {client_only}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_task(&dir, &cfg);
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["verify", "-c", &file, "--json", "--apply-repair", "--out"])
        .arg(dir.path().join("check"))
        .output()
        .expect("ferry verify --apply-repair");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if mariadb {
        let diff = std::fs::read_to_string(dir.path().join("check/diff.jsonl")).expect("diff");
        assert_eq!(diff.lines().count(), 3, "{diff}");
        assert!(
            diff.lines()
                .all(|l| l.contains("the same document once normalised")),
            "{diff}"
        );
    }
    let bytes = "SELECT id, HEX(j) FROM vj.docs ORDER BY id";
    assert_eq!(rows(&destination, bytes).await, rows(&source, bytes).await);
    assert!(verify_with(&cfg, VerifyOptions::default())
        .await
        .consistent());
}

/// A repair is statements, and statements fire the destination's triggers (row-based replication would not): a
/// table with a trigger some repair statement would fire is refused with FERRY-VER-007 naming the triggers, before
/// anything is written. Triggers no statement fires (an AFTER DELETE trigger under an UPDATE) do not stand in the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_never_fires_the_destinations_triggers() {
    logs();
    let (source, destination) = pair().await;
    for s in [
        "CREATE DATABASE vt",
        "CREATE TABLE vt.t (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NULL)",
        "CREATE TABLE vt.calm (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NULL)",
        "CREATE TABLE vt.audit (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, what VARCHAR(40) NOT NULL)",
        "INSERT INTO vt.t VALUES (1, 'a'), (2, 'b'), (3, 'c')",
        "INSERT INTO vt.calm VALUES (1, 'a'), (2, 'b')",
    ] {
        source.exec(s).await.expect(s);
    }
    let cfg = task("triggers", &source, &destination, &["vt"]);
    run_once(&cfg).await;
    for s in [
        "DELETE FROM vt.t WHERE id = 1",             // missing: an INSERT
        "UPDATE vt.t SET v = 'x' WHERE id = 2",      // different: an UPDATE
        "INSERT INTO vt.t VALUES (4, 'd')",          // extra: a DELETE
        "UPDATE vt.calm SET v = 'x' WHERE id = 2",   // different: an UPDATE
        "CREATE TRIGGER vt.t_bi BEFORE INSERT ON vt.t FOR EACH ROW SET NEW.v = CONCAT(NEW.v, '!')",
        "CREATE TRIGGER vt.t_bu BEFORE UPDATE ON vt.t FOR EACH ROW SET NEW.v = UPPER(NEW.v)",
        "CREATE TRIGGER vt.t_ad AFTER DELETE ON vt.t FOR EACH ROW INSERT INTO vt.audit (what) VALUES (CONCAT('deleted ', OLD.id))",
        "CREATE TRIGGER vt.calm_ad AFTER DELETE ON vt.calm FOR EACH ROW INSERT INTO vt.audit (what) VALUES ('calm')",
    ] {
        destination.exec(s).await.expect(s);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let found = verify_with(
        &cfg,
        VerifyOptions {
            out: Some(dir.path().to_path_buf()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(counts(&found, "vt.t"), (1, 1, 1), "{found:?}");
    assert_eq!(counts(&found, "vt.calm"), (0, 0, 1), "{found:?}");
    let state = "SELECT CONCAT_WS(':', id, v) FROM vt.t UNION ALL SELECT CONCAT_WS(':', 'calm', id, v) FROM vt.calm \
                 UNION ALL SELECT what FROM vt.audit";
    let before = rows(&destination, state).await;
    let repair = dir.path().join("repair.sql");
    let err = ferry_verifier::repair::apply(&cfg, &repair)
        .await
        .expect_err("a repair through triggers is refused");
    assert_eq!(err.code().id, "FERRY-VER-007", "{err}");
    let text = err.to_string();
    for name in ["t_bi", "t_bu", "t_ad"] {
        assert!(text.contains(name), "{name} not named: {text}");
    }
    assert!(!text.contains("calm_ad"), "{text}");
    assert_eq!(rows(&destination, state).await, before, "nothing written");

    // The CLI refuses the same way and writes nothing.
    let file = write_task(&dir, &cfg);
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["verify", "-c", &file, "--apply-repair", "--out"])
        .arg(dir.path().join("cli"))
        .output()
        .expect("ferry verify --apply-repair");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("FERRY-VER-007")
            || String::from_utf8_lossy(&out.stdout).contains("FERRY-VER-007"),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rows(&destination, state).await, before, "nothing written");

    // Without t's triggers the same file applies; calm's AFTER DELETE trigger, which no UPDATE fires, stays.
    for s in [
        "DROP TRIGGER vt.t_bi",
        "DROP TRIGGER vt.t_bu",
        "DROP TRIGGER vt.t_ad",
    ] {
        destination.exec(s).await.expect(s);
    }
    let applied = ferry_verifier::repair::apply(&cfg, &repair)
        .await
        .expect("repair");
    assert_eq!(applied.statements, 4);
    let after = verify_with(&cfg, VerifyOptions::default()).await;
    assert!(after.consistent(), "{after:?}");
    assert_eq!(
        count(&destination, "SELECT COUNT(*) FROM vt.audit").await,
        0
    );
    assert_eq!(
        count(
            &destination,
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'vt'"
        )
        .await,
        1
    );
}
