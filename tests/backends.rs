//! The demo command works end to end, and the backend the suite does not use gets a smoke test where it exists.

mod common;

use common::*;
use ferry_engine::migration::{self, RunOptions};
use ferry_sim::{datagen, docker_image, docker_image_usable, find_binary, Backend};
use std::process::Command;

#[test]
fn demo_command_migrates_and_verifies() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("demo")
        .output()
        .expect("running ferry demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ferry demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("task demo: schema -> done"), "{stdout}");
    assert!(stdout.contains("6 tables, 36500 rows checked"), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("stopping the servers."),
        "{stdout}"
    );
    assert!(stdout.contains(": consistent"), "{stdout}");
}

/// The other provider than FERRY_BACKEND's: local when the suite runs on docker, docker when it runs locally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_backend_smoke() {
    let other = match Backend::from_env().expect("FERRY_BACKEND") {
        Backend::Docker => Backend::Local,
        Backend::Local => Backend::Docker,
    };
    let available = match other {
        Backend::Docker => docker_image_usable(&docker_image()),
        Backend::Local => find_binary(&["mariadbd", "mysqld"]).is_some(),
    };
    if !available {
        eprintln!(
            "other_backend_smoke: the {} backend is not available here; nothing to smoke-test",
            other.as_str()
        );
        return;
    }
    let (mut source, destination) = pair_on(other).await;
    eprintln!(
        "other_backend_smoke: {} backend, server {}",
        other.as_str(),
        source.version
    );
    datagen::create_shop(&source, 1).await.expect("shop");
    let cfg = task("smoke", &source, &destination, &[datagen::SHOP_DB]);
    migration::run(&cfg, &RunOptions::default())
        .await
        .expect("migration");
    assert!(verify(&cfg).await.consistent());
    assert_same_data(&source, &destination, datagen::SHOP_DB).await;

    // The provider's lifecycle operations keep the data.
    source.restart().await.expect("restart");
    assert_eq!(
        count(&source, "SELECT COUNT(*) FROM shop.order_items").await,
        24_000
    );
    source.pause().await.expect("pause");
    let paused = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        source.query_first::<u8>("SELECT 1"),
    )
    .await;
    assert!(paused.is_err(), "a paused server answered");
    source.resume().await.expect("resume");
    assert_eq!(count(&source, "SELECT 1").await, 1);
    source.kill().await.expect("kill");
    assert!(
        source.query_first::<u8>("SELECT 1").await.is_err(),
        "a killed server answered"
    );
}
