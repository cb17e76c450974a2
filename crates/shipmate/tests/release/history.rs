//! What the release ledger remembers: a rollback returns to the last revision that was live
//! (never one whose migration never ran), `--rollback` after a re-run returns to what was live
//! before the release first rolled out, `rollback --dry-run` changes nothing, and deploying
//! the image the service already runs still migrates unless this very release already did.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::harness::{CLUSTER, Env, eventually, finish};
use crate::web::{
    MIGRATE_OK, deploy_args, describe_service, is_mutating, rollback_args, set_circuit_breaker,
    wait_steady, web_env,
};

async fn deployed(env: &Env, image: &str, migrate: &str) -> (Option<i32>, String) {
    let outcome = env
        .shipmate(&deploy_args(image, migrate, &["--output", "json"]))
        .await;
    let td = outcome.report()["task_definition"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (outcome.code, td)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_returns_to_the_last_live_release_never_to_a_gated_one() {
    let (env, _v1) = web_env().await;
    env.push_image("web:4", &[("start.sh", "exec sleep 600\n")]);
    let (code, v2) = deployed(&env, "web:2", MIGRATE_OK).await;
    assert_eq!(code, Some(0));
    let (code, v3) = deployed(&env, "web:3", "sh -c 'echo broken; exit 5'").await;
    assert_eq!(code, Some(4), "v3 is gated by its migration");
    let (code, v4) = deployed(&env, "web:4", MIGRATE_OK).await;
    assert_eq!(code, Some(0));
    assert_ne!(v3, v2);

    env.server.request_log().clear();
    let dry = env.shipmate(&rollback_args(&["--dry-run"])).await;
    assert_eq!(dry.code, Some(0));
    let short = |td: &str| td.rsplit('/').next().unwrap_or_default().to_owned();
    assert!(
        dry.stdout.contains(&format!(
            "would move service web from {} to {}",
            short(&v4),
            short(&v2)
        )),
        "names v2: {}",
        dry.stdout
    );
    let mutating: Vec<String> = env
        .server
        .request_log()
        .records()
        .iter()
        .filter_map(|r| r.operation.clone())
        .filter(|op| is_mutating(op))
        .collect();
    assert!(
        mutating.is_empty(),
        "a dry run changes nothing: {mutating:?}"
    );
    assert_eq!(
        describe_service(&env, "web").await.task_definition(),
        Some(v4.as_str())
    );

    let status = env
        .shipmate(&["status", "--cluster", CLUSTER, "--service", "web"])
        .await;
    assert!(
        status
            .stdout
            .contains(&format!("rollback would return to: {}", short(&v2))),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains(": migration-failed, migration "),
        "{}",
        status.stdout
    );

    let rollback = env.shipmate(&rollback_args(&[])).await;
    assert_eq!(rollback.code, Some(0));
    let service = wait_steady(&env, "web").await;
    assert_eq!(
        service.task_definition(),
        Some(v2.as_str()),
        "back on v2, not v3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_a_rerun_returns_to_what_was_live_before_the_release() {
    let (env, v1) = web_env().await;
    // ECS's circuit breaker marks the deployment FAILED but leaves the rollback to shipmate.
    set_circuit_breaker(&env, true, false).await;
    env.push_image("web:crash", &[("start.sh", "echo crashing; exit 1\n")]);
    let args = deploy_args("web:crash", MIGRATE_OK, &["--rollback", "--output", "json"]);
    env.server.request_log().clear();
    let first = env.command(&args).spawn().expect("spawn");
    // Killed mid-rollout: the service already points at the new revision.
    eventually(std::time::Duration::from_secs(60), || async {
        env.server
            .request_log()
            .records()
            .iter()
            .any(|r| r.operation.as_deref() == Some("UpdateService") && r.error_code.is_none())
            .then_some(())
    })
    .await
    .expect("the service was updated");
    kill(
        Pid::from_raw(i32::try_from(first.id().expect("pid")).expect("pid")),
        Signal::SIGKILL,
    )
    .expect("SIGKILL");
    finish(first).await;
    assert_ne!(
        describe_service(&env, "web").await.task_definition(),
        Some(v1.as_str())
    );

    let again = env.shipmate(&args).await;
    assert_eq!(again.code, Some(6), "the rollout fails");
    assert_eq!(
        again.report()["deployment"]["rolled_back_to"].as_str(),
        Some(v1.as_str()),
        "rolled back to what was live before the release, not to itself"
    );
    let service = wait_steady(&env, "web").await;
    assert_eq!(service.task_definition(), Some(v1.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploying_the_running_image_migrates_unless_this_release_already_did() {
    let (env, v1) = web_env().await;
    // The service was created on web:1 by someone else; its database is empty.
    let database = env.dir.path().join("database");
    let migrate = format!(
        "sh -c 'echo migrating; echo schema > {}'",
        database.display()
    );
    let outcome = env
        .shipmate(&deploy_args("web:1", &migrate, &["--output", "json"]))
        .await;
    assert_eq!(outcome.code, Some(0));
    assert!(database.exists(), "the migration ran");
    assert!(
        outcome
            .stderr
            .contains("deploy: web already runs web:1; its rollout is skipped"),
        "{}",
        outcome.stderr
    );
    assert_eq!(
        describe_service(&env, "web").await.task_definition(),
        Some(v1.as_str())
    );
    let first_release = env.tasks_started_by("shipmate/").await;
    assert_eq!(first_release.len(), 1);

    // The same release again: its record says it migrated, and nothing migrated since.
    let again = env.shipmate(&deploy_args("web:1", &migrate, &[])).await;
    assert_eq!(again.code, Some(0));
    assert!(
        again
            .stderr
            .contains("migrate: this release already migrated (task"),
        "{}",
        again.stderr
    );
    assert_eq!(
        env.tasks_started_by("shipmate/").await.len(),
        1,
        "no second migration"
    );
}
