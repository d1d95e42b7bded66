//! Every scenario in `scenarios/` replayed by the runner against throwaway servers: the fast subset by default,
//! all of them with FERRY_SIM_ALL=1 (`.ci/run` sets it). A failing scenario prints its record folder and the
//! command that reproduces it with the same seed.

use ferry_sim::runner::{self, RunOptions, Verdict};
use ferry_sim::{scenario, Backend};
use std::path::Path;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scenarios_end_as_their_files_expect() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let all = std::env::var("FERRY_SIM_ALL").is_ok_and(|v| v == "1");
    let only = std::env::var("FERRY_SIM_ONLY").unwrap_or_default();
    let scenarios = scenario::list(&root).expect("scenario files load");
    assert!(scenarios.len() >= 20, "{} scenarios", scenarios.len());
    let opts = RunOptions {
        seed: std::env::var("FERRY_SEED")
            .ok()
            .and_then(|s| s.parse().ok()),
        backend: Backend::from_env().expect("FERRY_BACKEND"),
        ferry_bin: env!("CARGO_BIN_EXE_ferry").into(),
        records: Path::new(env!("CARGO_TARGET_TMPDIR")).join("sim"),
    };
    let mut failed = Vec::new();
    let mut ran = Vec::new();
    for s in scenarios
        .iter()
        .filter(|s| (all || s.file.scenario.fast) && (only.is_empty() || s.name().contains(&only)))
    {
        let r = runner::run(s, &opts).await;
        ran.push(format!(
            "{:<44} {:>6.1}s  seed {:<10} {:?}",
            r.scenario, r.seconds, r.seed, r.verdict
        ));
        if r.verdict != Verdict::Pass {
            failed.push(format!(
                "{}: {:?}\n  record {}\n  reproduce: {}",
                r.scenario, r.verdict, r.record, r.reproduce
            ));
        }
    }
    eprintln!("{}", ran.join("\n"));
    assert!(!ran.is_empty(), "no scenario selected");
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
