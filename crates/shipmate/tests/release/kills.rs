//! A release SIGKILLed at each point where dying matters, then the same command run again: it
//! carries on the interrupted run (its open ledger entry), so the release converges with exactly
//! one successful migration task, the service on the release, and exit 0.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::harness::{Env, eventually, finish};
use crate::interference::{assert_no_overlap, open_ledger_entries};
use crate::web::{deploy_args, describe_service, running_migration, wait_steady, web_env};

const MIGRATE: &str = "sh -c 'echo migrating; sleep 2; echo migrated'";

#[derive(Debug, Clone, Copy)]
enum KillPoint {
    AfterRegisterTaskDefinition,
    RightAfterRunTask,
    MidMigration,
    BeforeUpdateService,
    MidRollout,
}

/// How many times `operation` was answered with `status`.
fn answered(env: &Env, operation: &str, error: Option<&str>) -> usize {
    env.server
        .request_log()
        .records()
        .iter()
        .filter(|r| r.operation.as_deref() == Some(operation) && r.error_code.as_deref() == error)
        .count()
}

async fn until(env: &Env, what: &str, check: impl Fn(&Env) -> bool) {
    eventually(Duration::from_secs(60), || async {
        check(env).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("never: {what}"));
}

async fn kill_and_rerun(point: KillPoint) {
    let (env, old_td) = web_env().await;
    let args = deploy_args("web:2", MIGRATE, &["--output", "json"]);
    if let KillPoint::BeforeUpdateService = point {
        // Hold the update back (ECS throttling it) so the job can die right before it lands.
        env.server.throttle("UpdateService", 1_000);
    }
    let first = env.command(&args).spawn().expect("spawn");
    match point {
        KillPoint::AfterRegisterTaskDefinition => {
            // The ledger entry is the first registration, the release's revision the second.
            until(&env, "the revision is registered", |env| {
                answered(env, "RegisterTaskDefinition", None) >= 2
            })
            .await;
        }
        KillPoint::RightAfterRunTask => {
            until(&env, "RunTask answered", |env| {
                answered(env, "RunTask", None) >= 1
            })
            .await;
        }
        KillPoint::MidMigration => {
            running_migration(&env, "the migration runs").await;
        }
        KillPoint::BeforeUpdateService => {
            until(&env, "UpdateService was tried", |env| {
                answered(env, "UpdateService", Some("ThrottlingException")) >= 1
            })
            .await;
        }
        KillPoint::MidRollout => {
            until(&env, "UpdateService answered", |env| {
                answered(env, "UpdateService", None) >= 1
            })
            .await;
        }
    }
    kill(
        Pid::from_raw(i32::try_from(first.id().expect("pid")).expect("pid")),
        Signal::SIGKILL,
    )
    .expect("SIGKILL");
    assert_eq!(finish(first).await.code, None, "{point:?}: killed");
    env.server.clear_faults();
    if let KillPoint::BeforeUpdateService = point {
        assert_eq!(
            describe_service(&env, "web").await.task_definition(),
            Some(old_td.as_str()),
            "the update never landed"
        );
    }

    let again = env.shipmate(&args).await;
    assert_eq!(again.code, Some(0), "{point:?}: the re-run converges");
    assert!(
        again
            .stderr
            .contains("carrying on the interrupted run of this release"),
        "{point:?}: the re-run resumes the interrupted one"
    );
    let release = again.report()["release_id"]
        .as_str()
        .expect("release id")
        .to_owned();
    let ours = env.tasks_started_by(&format!("shipmate/{release}")).await;
    let succeeded: Vec<_> = ours
        .iter()
        .filter(|t| t.containers().iter().all(|c| c.exit_code() == Some(0)))
        .collect();
    assert_eq!(
        (ours.len(), succeeded.len()),
        (1, 1),
        "{point:?}: exactly one migration task, and it succeeded"
    );
    assert_no_overlap(&env).await;
    let service = wait_steady(&env, "web").await;
    let live = service.task_definition().unwrap_or_default();
    assert_eq!(
        again.report()["task_definition"].as_str(),
        Some(live),
        "{point:?}: the service is on the release"
    );
    assert_ne!(live, old_td);
    assert!(
        open_ledger_entries(&env).await.is_empty(),
        "{point:?}: the lock is free"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_registering_the_revision() {
    kill_and_rerun(KillPoint::AfterRegisterTaskDefinition).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_right_after_run_task() {
    kill_and_rerun(KillPoint::RightAfterRunTask).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_migration() {
    kill_and_rerun(KillPoint::MidMigration).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_migration_before_the_update() {
    kill_and_rerun(KillPoint::BeforeUpdateService).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_rollout() {
    kill_and_rerun(KillPoint::MidRollout).await;
}
