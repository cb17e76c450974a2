//! New service tasks that keep failing, and a fault of the endpoint itself. Without a circuit
//! breaker ECS would retry a crashing revision forever: shipmate counts the new tasks that
//! stopped, says why they stopped, and fails the release at the configured count. Tasks that
//! cannot even start are throttled by ECS (one event, reset by a new task definition). An answer
//! that cannot be right is shipmate's or the endpoint's fault, never bad input: exit 1.

use std::time::Duration;

use crate::web::{
    MIGRATE_OK, deploy_args, deploy_without_migration_args, describe_service, set_circuit_breaker,
    wait_steady, web_env,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_new_tasks_without_a_circuit_breaker_fail_the_release_at_the_count() {
    let (env, old_td) = web_env().await;
    set_circuit_breaker(&env, false, false).await;
    env.push_image("web:crash", &[("start.sh", "echo crashing; exit 1\n")]);
    let outcome = env
        .shipmate(&deploy_args(
            "web:crash",
            MIGRATE_OK,
            &["--max-failed-tasks", "3", "--output", "json"],
        ))
        .await;
    assert_eq!(outcome.code, Some(6), "the release fails");
    assert!(
        outcome.stderr.contains(
            "new tasks stopped: Essential container in task exited (exit 1) (the release fails at 3)"
        ),
        "names why the new tasks stop, with the count it fails at"
    );
    // Local tasks crash within milliseconds, so more than 3 may have stopped by the first poll
    // that sees 3: the release fails on that poll and says how many it saw.
    let reason = outcome.report()["deployment"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (count, rest) = reason.split_once(' ').expect("a count first");
    assert!(count.parse::<u32>().is_ok_and(|n| n >= 3), "{reason}");
    assert_eq!(
        rest, "new tasks stopped: Essential container in task exited (exit 1)",
        "{reason}"
    );
    assert!(
        outcome
            .stderr
            .contains("hint: ECS keeps trying to start the new revision"),
        "says the service is still trying, and how to go back"
    );
    // The old tasks still serve: without a circuit breaker, ECS keeps them.
    let service = describe_service(&env, "web").await;
    assert!(
        service
            .deployments()
            .iter()
            .any(|d| d.task_definition() == Some(old_td.as_str()) && d.running_count() > 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_that_cannot_start_are_throttled_once_and_a_new_revision_resets_it() {
    let (env, _) = web_env().await;
    set_circuit_breaker(&env, false, false).await;
    env.server
        .engine()
        .ecs
        .set_service_throttle_base(Duration::from_millis(200));
    let failing = env
        .shipmate(&deploy_without_migration_args(
            "web:never-pushed",
            &["--max-failed-tasks", "6"],
        ))
        .await;
    assert_eq!(failing.code, Some(6));
    assert!(
        failing.stderr.contains("CannotPullContainerError"),
        "names why"
    );
    assert_eq!(
        failing
            .stderr
            .matches("is unable to consistently start tasks successfully")
            .count(),
        1,
        "ECS's throttle event, once"
    );
    // A new task definition ends the throttle at once: the next release rolls out normally.
    env.server
        .engine()
        .ecs
        .set_service_throttle_base(Duration::from_secs(3_600));
    let fixed = env.shipmate(&deploy_args("web:2", MIGRATE_OK, &[])).await;
    assert_eq!(fixed.code, Some(0));
    wait_steady(&env, "web").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impossible_answer_is_a_failure_not_bad_input() {
    let (env, old_td) = web_env().await;
    env.server.answer_empty("DescribeTaskDefinition", 1);
    let outcome = env
        .shipmate(&deploy_args("web:2", MIGRATE_OK, &["--output", "json"]))
        .await;
    assert_eq!(outcome.code, Some(1), "exit 1, not 2");
    assert!(
        outcome
            .stderr
            .contains("DescribeTaskDefinition gave an answer shipmate cannot use"),
        "{}",
        outcome.stderr
    );
    assert_eq!(outcome.report()["result"], "failed");
    assert_eq!(
        describe_service(&env, "web").await.task_definition(),
        Some(old_td.as_str()),
        "nothing changed"
    );
    // Nothing is left locked: the next release goes through.
    let next = env.shipmate(&deploy_args("web:2", MIGRATE_OK, &[])).await;
    assert_eq!(next.code, Some(0));
}
