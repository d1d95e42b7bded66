//! The model simulator in CI: 100,000 seeded schedules (FERRY_MODEL_SCHEDULES to change) of copy, catch-up and
//! exact sync with crashes and re-deliveries must each end with the destination equal to the source; proptest
//! shrinks the shape of a failing schedule.

use ferry_sim::model::{self, Shape};
use proptest::prelude::*;

#[test]
fn a_hundred_thousand_schedules_converge() {
    let n: u64 = std::env::var("FERRY_MODEL_SCHEDULES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let first: u64 = std::env::var("FERRY_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let started = std::time::Instant::now();
    match model::run_many(first, n) {
        Ok(t) => eprintln!(
            "{n} schedules in {:.1}s: {} transactions, {} batches, {} crashes, {} re-deliveries",
            started.elapsed().as_secs_f64(),
            t.transactions,
            t.batches,
            t.crashes,
            t.redelivered
        ),
        Err((seed, e)) => panic!(
            "schedule {seed} failed: {e}\nreproduce: FERRY_MODEL_SEED={seed} FERRY_MODEL_SCHEDULES=1 cargo test --test model, \
             or ferry sim model --seed {seed} --schedules 1"
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]
    #[test]
    fn any_shape_converges(
        keys in 1u64..80,
        initial_rows in 0u64..80,
        chunks in 1u64..8,
        transactions in 0usize..60,
        crash_per_mille in 0u32..500,
        fk in any::<bool>(),
        savepoint_per_mille in 0u32..600,
        ddl in any::<bool>(),
        fault_per_mille in 0u32..150,
        seed in any::<u64>(),
    ) {
        let shape = Shape {
            keys,
            initial_rows,
            chunks,
            transactions,
            crash_per_mille,
            fk,
            savepoint_per_mille,
            ddl,
            fault_per_mille,
            ..Shape::default()
        };
        let r = model::schedule_with(&shape, seed);
        prop_assert!(r.is_ok(), "{shape:?} seed {seed}: {r:?}");
    }
}
