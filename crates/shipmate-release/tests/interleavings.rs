//! The release lock's guarantees under random schedules (docs/lock.md): two or three releases,
//! forced deployments, foreign task definitions, a crashing deployment rolled back by ECS's
//! circuit breaker, jobs SIGKILLed and re-run, jobs that stall past the lease, and a list that
//! lags behind registrations, all against a model of ECS on a manual clock. After every step:
//! no two migrations run at once, and no release goes live after a release that took the lock
//! after it already went live. The same checker run against the earlier lock (a token keyed on
//! the service's PRIMARY deployment) finds the counterexample of the release-safety issue.

mod common;
mod sim;

use proptest::prelude::*;
use sim::{Interference, Kind, Protocol, Rng, Scenario, simulate};

fn deploy(image: &str) -> Kind {
    Kind::Deploy {
        image: image.to_owned(),
    }
}

/// Release A migrates for 6 s; a forced deployment lands a second later; release B starts a
/// second after that.
fn forced_deployment_between_two_releases(protocol: Protocol) -> Scenario {
    Scenario {
        protocol,
        releases: vec![
            (0, deploy("app:v3-ms6000")),
            (2_000, deploy("app:v4-ms1000")),
        ],
        interferences: vec![(1_000, Interference::ForcedDeployment)],
        kills: Vec::new(),
        pauses: Vec::new(),
        list_lag_ms: 0,
    }
}

#[test]
fn the_primary_token_lock_lets_a_second_migration_run_after_a_forced_deployment() {
    let run = simulate(
        &forced_deployment_between_two_releases(Protocol::PrimaryToken),
        1,
    );
    let violation = run
        .violation
        .expect("the old lock is broken by a forced deployment");
    assert!(violation.contains("migrations run at once"), "{violation}");
}

#[test]
fn the_ledger_lock_serialises_the_same_schedule_and_ends_on_the_last_release() {
    for seed in 0..50 {
        let run = simulate(
            &forced_deployment_between_two_releases(Protocol::Ledger),
            seed,
        );
        assert_eq!(run.violation, None, "seed {seed}: {:#?}", run.history);
        assert_eq!(run.exits, vec![Some(0), Some(0)], "seed {seed}");
        assert_eq!(run.final_image, "app:v4-ms1000", "seed {seed}");
        assert_eq!(run.open_entries, 0, "seed {seed}: the lock is left free");
    }
}

#[test]
fn the_checker_finds_the_old_locks_failure_on_random_schedules() {
    let found = (0..2_000u64).find(|seed| {
        let scenario = Scenario::random(&mut Rng::new(*seed), Protocol::PrimaryToken);
        simulate(&scenario, *seed).violation.is_some()
    });
    assert!(found.is_some(), "no schedule broke the PRIMARY-token lock");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_ledger_lock_holds_under_random_schedules(seed in any::<u64>()) {
        let scenario = Scenario::random(&mut Rng::new(seed), Protocol::Ledger);
        let run = simulate(&scenario, seed);
        prop_assert!(
            run.violation.is_none(),
            "{}\nscenario: {scenario:#?}\norders: {:?}\nhistory: {:#?}",
            run.violation.clone().unwrap_or_default(), run.orders, run.history
        );
        prop_assert!(
            run.exits.iter().all(Option::is_some),
            "a release never ended: {:?}\nscenario: {scenario:#?}", run.exits
        );
        // Every release ends with success, a failure of its own (a rollback with nothing to
        // return to, a deployment rolled back by ECS), or as superseded: never a lock timeout.
        for exit in run.exits.iter().flatten() {
            prop_assert!([0, 2, 6, 8].contains(exit), "exit {exit}\nscenario: {scenario:#?}\nhistory: {:#?}", run.history);
        }
        prop_assert_eq!(run.open_entries, 0, "an entry was left open\nscenario: {:#?}", scenario);
    }
}

/// One schedule of the property above, told in full:
/// `SIM_SEED=<seed> cargo test -p shipmate-release --test interleavings -- --ignored replay --nocapture`
#[test]
#[ignore = "replays the schedule named by SIM_SEED"]
#[expect(
    clippy::print_stdout,
    reason = "the story of one schedule is the output"
)]
fn replay() {
    let seed: u64 = std::env::var("SIM_SEED")
        .expect("SIM_SEED names the schedule")
        .parse()
        .expect("SIM_SEED is a number");
    let scenario = Scenario::random(&mut Rng::new(seed), Protocol::Ledger);
    let run = simulate(&scenario, seed);
    println!("{scenario:#?}\n{run:#?}");
    assert_eq!(run.violation, None);
}

/// A deeper search than CI runs (100,000 schedules by default, SIM_SEARCH to change):
/// `cargo test --release -p shipmate-release --test interleavings -- --ignored deep_search --nocapture`
#[test]
#[ignore = "a long search, run on demand"]
#[expect(clippy::print_stdout, reason = "the search reports what it covered")]
fn deep_search() {
    let count: u64 =
        std::env::var("SIM_SEARCH").map_or(100_000, |n| n.parse().expect("SIM_SEARCH is a number"));
    let mut failures = Vec::new();
    let mut exits = std::collections::BTreeMap::new();
    for seed in 0..count {
        let scenario = Scenario::random(&mut Rng::new(seed), Protocol::Ledger);
        let run = simulate(&scenario, seed);
        for exit in &run.exits {
            *exits.entry(*exit).or_insert(0) += 1;
        }
        let bad_exit = run.exits.iter().any(|e| !matches!(e, Some(0 | 2 | 6 | 8)));
        if run.violation.is_some() || bad_exit || run.open_entries != 0 {
            failures.push(seed);
        }
    }
    println!("{count} schedules; exit codes {exits:?}");
    assert!(
        failures.is_empty(),
        "failing seeds (replay them): {failures:?}"
    );
}
