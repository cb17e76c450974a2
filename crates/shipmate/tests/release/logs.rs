//! Every log line, with CloudWatch Logs' ingestion delay made real by the endpoint: lines become
//! readable in batches flushed every 5 s, 3 s after the flush, also after the task stopped. A
//! migration that prints 500 lines reaches the CI output whole and in order when it fails, when
//! it times out and when the job is cancelled; the drain ends within the quiet period plus its
//! cap. Without a quiet period the same lines are lost, which is what the test guards against.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use shipmate_local_engine::logs::IngestionDelay;

use crate::harness::{Env, Outcome, finish};
use crate::web::{deploy_args_quiet, running_migration, web_env};

/// Prints `line 1` … `line 500` at once, then runs `then`.
fn five_hundred_lines(then: &str) -> String {
    format!("sh -c 'i=1; while [ $i -le 500 ]; do echo line $i; i=$((i+1)); done; {then}'")
}

/// The quiet period the tests use: above the 3 s the endpoint takes to make a batch visible.
const QUIET: &str = "4s";
const QUIET_MS: u64 = 4_000;
/// The drain's cap past the quiet period (shipmate_release::release::LOG_DRAIN_CAP_MS).
const CAP_MS: u64 = 60_000;

async fn delayed_env() -> Env {
    let (env, _) = web_env().await;
    env.server
        .engine()
        .ecs
        .faults()
        .delay_log_ingestion(IngestionDelay {
            batch: Duration::from_secs(5),
            visible_after: Duration::from_secs(3),
        });
    env
}

fn migration_lines(outcome: &Outcome) -> Vec<String> {
    outcome
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("migrate | "))
        .map(str::to_owned)
        .collect()
}

fn assert_every_line(outcome: &Outcome) {
    let expected: Vec<String> = (1..=500).map(|i| format!("line {i}")).collect();
    assert_eq!(
        migration_lines(outcome),
        expected,
        "every line, in order, once"
    );
    assert_eq!(outcome.report()["migration"]["log_lines"], 500);
}

/// The migrate phase's length: the task's run, then the drain.
fn migrate_phase_ms(outcome: &Outcome) -> u64 {
    outcome.report()["phases"]
        .as_array()
        .and_then(|phases| phases.iter().find(|p| p["phase"] == "migrate"))
        .and_then(|p| p["duration_ms"].as_u64())
        .expect("a migrate phase")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_migrations_last_lines_arrive_before_the_verdict() {
    let env = delayed_env().await;
    let outcome = env
        .shipmate(&deploy_args_quiet(
            "web:2",
            &five_hundred_lines("exit 3"),
            QUIET,
            &["--output", "json"],
        ))
        .await;
    assert_eq!(outcome.code, Some(4));
    assert_every_line(&outcome);
    let verdict = outcome
        .stderr
        .find("error: migrate task")
        .expect("the verdict");
    let last = outcome
        .stderr
        .find("migrate | line 500")
        .expect("the last line");
    assert!(last < verdict, "the drain completes before the verdict");
    assert!(
        migrate_phase_ms(&outcome) < QUIET_MS + CAP_MS,
        "the drain ends within the quiet period plus its cap"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_migrations_lines_are_drained_too() {
    let env = delayed_env().await;
    let outcome = env
        .shipmate(&deploy_args_quiet(
            "web:2",
            &five_hundred_lines("exec sleep 60"),
            QUIET,
            &["--migrate-timeout", "2s", "--output", "json"],
        ))
        .await;
    assert_eq!(outcome.code, Some(5));
    assert_every_line(&outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_migrations_lines_are_drained_too() {
    let env = delayed_env().await;
    let child = env
        .command(&deploy_args_quiet(
            "web:2",
            &five_hundred_lines("exec sleep 60"),
            QUIET,
            &["--output", "json"],
        ))
        .spawn()
        .expect("spawn");
    running_migration(&env, "the migration runs").await;
    kill(
        Pid::from_raw(i32::try_from(child.id().expect("pid")).expect("pid")),
        Signal::SIGINT,
    )
    .expect("SIGINT");
    let outcome = finish(child).await;
    assert_eq!(outcome.code, Some(130));
    assert_every_line(&outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quiet_period_the_delayed_lines_are_lost() {
    let env = delayed_env().await;
    let outcome = env
        .shipmate(&deploy_args_quiet(
            "web:2",
            &five_hundred_lines("exit 3"),
            "0s",
            &["--output", "json"],
        ))
        .await;
    assert_eq!(outcome.code, Some(4));
    assert!(
        migration_lines(&outcome).len() < 500,
        "the ingestion delay is real: reading only until the first empty page after STOPPED loses lines"
    );
}
