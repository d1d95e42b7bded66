//! The model simulator in CI: 100,000 seeded schedules (FERRY_MODEL_SCHEDULES to change) of copy, catch-up and
//! exact sync, with savepoints and rollbacks to them, foreign key cascades several levels deep, key changes under
//! foreign keys, a DDL with session context, and ticks, pauses, stops, kills and crashes anywhere in the stream, must
//! each show only prefixes of whole source transactions and end with the destination equal to the source; each
//! defect put in on purpose must make the checks fail; proptest shrinks the shape of a failing schedule.

use ferry_sim::model::{self, Defect, Shape};
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
        Ok(t) => {
            eprintln!(
                "{n} schedules in {:.1}s: {} transactions ({} savepoints, {} rollbacks to one, {} key changes under \
                 FKs, {} rows cascaded on the source, {} DDL), {} commits, {} invariant checks, {} crashes, {} kills, \
                 {} stops, {} pauses, {} idle ticks ({} faults mid-transaction), {} re-deliveries, {} rows followed \
                 by catch-up, {} cascaded by the destination in exact mode",
                started.elapsed().as_secs_f64(),
                t.transactions,
                t.savepoints,
                t.rollbacks_to_savepoint,
                t.key_changes_under_fk,
                t.cascaded_rows,
                t.ddl,
                t.batches,
                t.checks,
                t.crashes,
                t.kills,
                t.stops,
                t.pauses,
                t.ticks,
                t.faults_mid_transaction,
                t.redelivered,
                t.followed_in_catch_up,
                t.cascaded_in_exact,
            );
            // Every mechanism was exercised.
            for (what, count) in [
                ("rollbacks to a savepoint", t.rollbacks_to_savepoint),
                ("key changes under FKs", t.key_changes_under_fk),
                ("DDL", t.ddl),
                ("faults mid-transaction", u64::from(t.faults_mid_transaction)),
                ("rows followed by catch-up", t.followed_in_catch_up),
                ("rows cascaded in exact mode", t.cascaded_in_exact),
            ] {
                assert!(n < 1_000 || count > 0, "no {what} in {n} schedules");
            }
        }
        Err((seed, e)) => panic!(
            "schedule {seed} failed: {e}\nreproduce: FERRY_MODEL_SEED={seed} FERRY_MODEL_SCHEDULES=1 cargo test --test model, \
             or ferry sim model --seed {seed} --schedules 1"
        ),
    }
}

/// Negative controls: each defect the applier had (and the DDL session context it still lacks), put in, is caught by
/// the checks in some schedules.
#[test]
fn every_defect_is_caught() {
    for defect in Defect::ALL {
        let (failed, first) = model::failures_with(defect, 1, 1_000);
        eprintln!("{defect:?}: {failed} of 1000 schedules failed; first: {first:?}");
        assert!(failed > 0, "{defect:?}: no schedule failed");
    }
}

/// A known gap of the engine's catch-up: it follows a cascade through the destination's rows, which during the copy
/// may be copies from after the cascade (a child already moved or gone, so the grandchildren that its own older
/// events re-created are never reached; or a child under a unique value a parent took again later, deleted for the
/// old parent's delete). Cascades written while the family's tables are copied, or re-delivered, diverge in a few
/// schedules of a thousand. Run with `--ignored`; when it passes, turn `cascades_during_copy` on in `shape_of`.
#[test]
#[ignore = "the engine's catch-up diverges on cascades replayed onto later copies (reported, not fixed yet)"]
fn known_gap_cascades_during_the_copy_converge() {
    let mut failed = Vec::new();
    for seed in 1..=20_000 {
        let shape = Shape {
            fk: true,
            cascades_during_copy: true,
            ..model::shape_of(seed)
        };
        if let Err(e) = model::schedule_with(&shape, seed) {
            failed.push((seed, e));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of 20000 schedules diverged; first: {:?}",
        failed.len(),
        failed.first()
    );
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
