//! `shipmate deploy` and `plan` end to end: every "Done when" of issue 3 that the local endpoint
//! can show.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::harness::{CLUSTER, Env, LOG_GROUP, eventually, finish};
use crate::schema::assert_valid_report;
use crate::web::{
    MIGRATE_OK, deploy_args, describe_service, is_mutating, running_migration, running_task_arns,
    set_circuit_breaker, wait_steady, web_env,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_migrates_then_rolls_the_service_to_the_new_revision() {
    let (env, old_td) = web_env().await;
    let definitions = env.dir.path().join("imagedefinitions.json");
    let definitions_arg = definitions.to_str().expect("utf-8 path");
    let outcome = env
        .shipmate(&deploy_args(
            "web:2",
            MIGRATE_OK,
            &[
                "--output",
                "json",
                "--image-definitions",
                definitions_arg,
                "--post-deploy",
                "sh -c 'echo post-deploy ran'",
            ],
        ))
        .await;
    assert_eq!(outcome.code, Some(0));
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&definitions).expect("written"))
            .expect("JSON");
    assert_eq!(
        written,
        serde_json::json!([{"name": "app", "imageUri": "web:2"}])
    );

    let service = describe_service(&env, "web").await;
    let new_td = service.task_definition().expect("td").to_owned();
    assert_ne!(new_td, old_td);
    assert!(new_td.ends_with("task-definition/web:2"), "{new_td}");
    assert_eq!(service.deployments().len(), 1);
    assert_eq!(service.running_count(), service.desired_count());
    assert_eq!(service.running_count(), 2);

    let lines: Vec<&str> = outcome
        .stderr
        .lines()
        .filter(|l| l.starts_with("migrate | "))
        .collect();
    assert_eq!(
        lines,
        [
            "migrate | Applying app.0001_initial... OK",
            "migrate | Applying app.0002_users... OK",
            "migrate | the last migration line"
        ]
    );
    // The migration ran from the new revision; the post-deploy task too, told apart by startedBy.
    let (post_deploy, migrations): (Vec<_>, Vec<_>) = env
        .tasks_started_by("shipmate/")
        .await
        .into_iter()
        .partition(|t| t.started_by().is_some_and(|b| b.ends_with("/post-deploy")));
    assert_eq!(migrations.len(), 1);
    assert_eq!(post_deploy.len(), 1);
    assert_eq!(migrations[0].task_definition_arn(), Some(new_td.as_str()));
    assert_eq!(post_deploy[0].task_definition_arn(), Some(new_td.as_str()));

    let report = outcome.report();
    assert_valid_report(&report);
    assert_eq!(report["result"], "succeeded");
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["task_definition"], new_td.as_str());
    assert_eq!(report["previous_task_definition"], old_td.as_str());
    assert_eq!(report["migration"]["exit_code"], 0);
    assert_eq!(report["migration"]["log_lines"], 3);
    assert_eq!(report["deployment"]["rollout_state"], "COMPLETED");
    assert!(outcome.stderr.contains("post-deploy | post-deploy ran"));
    assert_eq!(report["post_deploy"]["exit_code"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_over_its_timeout_is_stopped_and_times_out() {
    let (env, old_td) = web_env().await;
    let outcome = env
        .shipmate(&deploy_args(
            "web:2",
            "sh -c 'echo slow; exec sleep 60'",
            &["--migrate-timeout", "1s"],
        ))
        .await;
    assert_eq!(outcome.code, Some(5), "timed out");
    assert!(
        outcome
            .stderr
            .contains("did not finish within 1.0s; it was stopped")
    );
    let migrations = env.tasks_started_by("shipmate/").await;
    assert_eq!(migrations.len(), 1);
    assert_eq!(
        migrations[0].desired_status(),
        Some("STOPPED"),
        "StopTask was sent"
    );
    assert_eq!(
        describe_service(&env, "web").await.task_definition(),
        Some(old_td.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_past_lock_timeout_exits_7_naming_the_holder() {
    let (env, _) = web_env().await;
    let holder = env
        .command(&deploy_args(
            "web:2",
            "sh -c 'echo holding; exec sleep 60'",
            &[],
        ))
        .spawn()
        .expect("spawn holder");
    let task = running_migration(&env, "the holder's migration runs").await;
    let outcome = env
        .shipmate(&deploy_args("web:3", MIGRATE_OK, &["--lock-timeout", "1s"]))
        .await;
    assert_eq!(outcome.code, Some(7), "lock not acquired");
    assert!(
        outcome.stderr.contains("(deploy of web:2 by ci@runner pid"),
        "names the holder release, its image and who runs it"
    );
    assert!(
        outcome
            .stderr
            .contains("migrating) holds the release lock of `shipmate-ledger-prod-web-"),
        "says what the holder does"
    );
    assert!(
        outcome.stderr.contains(&task),
        "names the holder's migration task"
    );
    assert_eq!(
        env.tasks_started_by("shipmate/").await.len(),
        1,
        "no second migration"
    );
    kill(
        Pid::from_raw(i32::try_from(holder.id().expect("pid")).expect("pid")),
        Signal::SIGINT,
    )
    .expect("SIGINT");
    assert_eq!(finish(holder).await.code, Some(130));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_migration_leaves_the_service_untouched() {
    let (env, old_td) = web_env().await;
    let before = running_task_arns(&env).await;
    let summary = env.dir.path().join("step-summary.md");
    let outcome = env
        .shipmate_with_env(
            &deploy_args("web:2", "sh -c 'echo cannot migrate; exit 5'", &[]),
            &[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_STEP_SUMMARY", summary.to_str().expect("utf-8 path")),
            ],
        )
        .await;
    assert_eq!(outcome.code, Some(4), "migration exited non-zero");
    assert!(
        outcome
            .stdout
            .starts_with("::error title=shipmate deploy::migrate task "),
        "{}",
        outcome.stdout
    );
    let summary = std::fs::read_to_string(&summary).expect("step summary written");
    assert!(
        summary.contains("### shipmate deploy: migration_failed"),
        "{summary}"
    );
    assert!(
        summary.contains("| migration exit code | `5` |"),
        "{summary}"
    );
    assert!(outcome.stderr.contains("migrate | cannot migrate"));
    assert!(outcome.stderr.contains("exited with code 5"));
    let service = describe_service(&env, "web").await;
    assert_eq!(service.task_definition(), Some(old_td.as_str()));
    assert_eq!(service.deployments().len(), 1);
    assert_eq!(
        running_task_arns(&env).await,
        before,
        "the old tasks still run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_of_a_failed_release_runs_the_migration_again() {
    let (env, _) = web_env().await;
    let args = deploy_args("web:2", "sh -c 'echo still failing; exit 5'", &[]);
    assert_eq!(env.shipmate(&args).await.code, Some(4));
    let again = env.shipmate(&args).await;
    assert_eq!(again.code, Some(4));
    assert!(
        again.stderr.contains("failed; starting attempt 2"),
        "says it retries"
    );
    assert_eq!(
        env.tasks_started_by("shipmate/").await.len(),
        2,
        "a second attempt, not the first task reported again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_that_cannot_run_are_gated_with_hints() {
    let (env, old_td) = web_env().await;
    // Image never pushed.
    let outcome = env
        .shipmate(&deploy_args("web:never-pushed", MIGRATE_OK, &[]))
        .await;
    assert_eq!(outcome.code, Some(3));
    assert!(outcome.stderr.contains("CannotPullContainerError"));
    assert!(
        outcome.stderr.contains(
            "hint: the image is not in the store of the shipmate local at http://127.0.0.1:"
        ),
        "the hint knows it is shipmate local"
    );
    // Over its memory: 64 MiB for a process that takes far more.
    let hog = "python3 -c 'import time; x = bytearray(400 * 1024 * 1024); time.sleep(30)'";
    let outcome = env
        .shipmate(&deploy_args("web:2", hog, &["--migrate-memory", "64"]))
        .await;
    assert_eq!(outcome.code, Some(4));
    assert!(outcome.stderr.contains("exited with code 137"));
    assert!(
        outcome
            .stderr
            .contains("hint: the container ran out of memory")
    );
    // Log group gone (the running service tasks keep their streams).
    env.logs
        .delete_log_group()
        .log_group_name(LOG_GROUP)
        .send()
        .await
        .expect("DeleteLogGroup");
    let outcome = env.shipmate(&deploy_args("web:3", MIGRATE_OK, &[])).await;
    assert_eq!(outcome.code, Some(3));
    assert!(
        outcome
            .stderr
            .contains("hint: the awslogs log group does not exist")
    );
    assert_eq!(
        describe_service(&env, "web").await.task_definition(),
        Some(old_td.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_after_shipmate_was_killed_attaches_to_the_running_migration() {
    let (env, _) = web_env().await;
    let migrate = "sh -c 'echo migration starts; sleep 3; echo migration ends'";
    let args = deploy_args("web:2", migrate, &[]);
    let first = env.command(&args).spawn().expect("spawn");
    let task = running_migration(&env, "the migration runs").await;
    kill(
        Pid::from_raw(i32::try_from(first.id().expect("pid")).expect("pid")),
        Signal::SIGKILL,
    )
    .expect("SIGKILL");
    let killed = finish(first).await;
    assert_eq!(killed.code, None, "killed by a signal");

    let outcome = env.shipmate(&args).await;
    assert_eq!(outcome.code, Some(0));
    assert!(
        outcome.stderr.contains("attached to running task"),
        "says it attached"
    );
    assert!(
        outcome.stderr.contains("migrate | migration ends"),
        "reads the logs to the end"
    );
    let migrations = env.tasks_started_by("shipmate/").await;
    assert_eq!(migrations.len(), 1, "no second migration task");
    assert_eq!(migrations[0].task_arn(), Some(task.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deploys_never_run_their_migrations_at_the_same_time() {
    let (env, _) = web_env().await;
    for tag in ["web:4", "web:5"] {
        env.push_image(tag, &[("start.sh", "exec sleep 600\n")]);
    }
    let migrate = "sh -c 'echo migrating; sleep 2; echo migrated'";
    for (a, b) in [("web:2", "web:3"), ("web:4", "web:5")] {
        let first = env
            .command(&deploy_args(a, migrate, &[]))
            .spawn()
            .expect("spawn a");
        let second = env
            .command(&deploy_args(b, migrate, &[]))
            .spawn()
            .expect("spawn b");
        let (first, second) = tokio::join!(finish(first), finish(second));
        assert_eq!((first.code, second.code), (Some(0), Some(0)));
        assert!(
            first.stderr.contains("lock: waiting") || second.stderr.contains("lock: waiting"),
            "one of them waited for the other"
        );
    }
    let mut spans: Vec<(i64, i64)> = env
        .tasks_started_by("shipmate/")
        .await
        .iter()
        .map(|t| {
            let start = t.started_at().expect("startedAt").to_millis().expect("ms");
            let stop = t.stopped_at().expect("stoppedAt").to_millis().expect("ms");
            (start, stop)
        })
        .collect();
    assert_eq!(spans.len(), 4, "one migration per release");
    spans.sort_unstable();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "migrations overlap: {pair:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_errors_are_retried_and_shown() {
    let (env, _) = web_env().await;
    env.server.throttle("DescribeTasks", 3);
    env.server.throttle("RunTask", 1);
    env.server.fail_with_server_error("DescribeServices", 2);
    env.server.fail_with_server_error("GetLogEvents", 2);
    env.server.throttle("UpdateService", 2);
    let outcome = env
        .shipmate(&deploy_args("web:2", MIGRATE_OK, &["--output", "json"]))
        .await;
    assert_eq!(outcome.code, Some(0));
    assert!(
        outcome
            .stderr
            .contains("retrying DescribeTasks after ThrottlingException (attempt 2/8)")
    );
    assert!(
        outcome
            .stderr
            .contains("retrying DescribeServices after ServerException")
    );
    assert!(outcome.stderr.contains("migrate | the last migration line"));
    assert!(outcome.report()["retries"].as_u64().unwrap_or(0) >= 10);
    assert!(
        describe_service(&env, "web")
            .await
            .task_definition()
            .is_some_and(|td| td.ends_with("web:2"))
    );
}

/// Deploys an image whose tasks crash. `ecs_rollback` says whether the service's circuit breaker
/// rolls back by itself (else it only marks the deployment FAILED).
async fn crashing_release(
    ecs_rollback: bool,
    extra: &[&str],
) -> (Env, String, crate::harness::Outcome) {
    let (env, old_td) = web_env().await;
    if !ecs_rollback {
        set_circuit_breaker(&env, true, false).await;
    }
    env.push_image("web:crash", &[("start.sh", "echo crashing; exit 1\n")]);
    let mut args = deploy_args("web:crash", MIGRATE_OK, &["--output", "json"]);
    args.extend_from_slice(extra);
    let outcome = env.shipmate(&args).await;
    (env, old_td, outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_image_is_rolled_back_by_the_circuit_breaker_and_fails_the_job() {
    let (env, old_td, outcome) = crashing_release(true, &[]).await;
    assert_eq!(outcome.code, Some(6), "deployment failed");
    assert!(
        outcome
            .stderr
            .contains("the deployment of service `web` failed")
    );
    // ECS's own reason, from its service-deployment record.
    assert!(
        outcome
            .stderr
            .contains("failed: ECS deployment circuit breaker: tasks failed to start"),
        "{}",
        outcome.stderr
    );
    assert!(outcome.stderr.contains("; the service was rolled back to"));
    let report = outcome.report();
    assert_valid_report(&report);
    assert_eq!(report["result"], "deployment_failed");
    assert_eq!(report["deployment"]["rolled_back_to"], old_td.as_str());
    let service = wait_steady(&env, "web").await;
    assert_eq!(service.task_definition(), Some(old_td.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_image_fails_the_job_and_rollback_restores_the_previous_revision() {
    let (env, old_td, outcome) = crashing_release(false, &["--rollback"]).await;
    assert_eq!(outcome.code, Some(6), "deployment failed");
    assert!(
        outcome
            .stderr
            .contains("the deployment of service `web` failed: ECS deployment circuit breaker")
    );
    assert!(outcome.stderr.contains("rollback: web to web:1"));
    let report = outcome.report();
    assert_valid_report(&report);
    assert_eq!(report["result"], "deployment_failed");
    assert_eq!(report["deployment"]["rollout_state"], "FAILED");
    assert_eq!(report["rollback"]["task_definition"], old_td.as_str());
    let service = describe_service(&env, "web").await;
    assert_eq!(service.task_definition(), Some(old_td.as_str()));
    assert_eq!(service.running_count(), service.desired_count());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_the_migration_stops_it_and_leaves_the_service_alone() {
    let (env, old_td) = web_env().await;
    let child = env
        .command(&deploy_args(
            "web:2",
            "sh -c 'echo long; exec sleep 120'",
            &[],
        ))
        .spawn()
        .expect("spawn");
    let task = running_migration(&env, "the migration runs").await;
    kill(
        Pid::from_raw(i32::try_from(child.id().expect("pid")).expect("pid")),
        Signal::SIGINT,
    )
    .expect("SIGINT");
    let outcome = finish(child).await;
    assert_eq!(outcome.code, Some(130));
    assert!(outcome.stderr.contains("interrupted: stopping task"));
    let stop_code = eventually(Duration::from_secs(60), || async {
        let output = env
            .ecs
            .describe_tasks()
            .cluster(CLUSTER)
            .tasks(&task)
            .send()
            .await
            .expect("DescribeTasks");
        let task = output.tasks().first().cloned().expect("task");
        (task.last_status() == Some("STOPPED"))
            .then(|| task.stop_code().map(|c| c.as_str().to_owned()))
    })
    .await
    .expect("the migration stops");
    assert_eq!(stop_code.as_deref(), Some("UserInitiated"));
    assert_eq!(
        describe_service(&env, "web").await.task_definition(),
        Some(old_td.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_then_status_then_rollback() {
    let (env, old_td) = web_env().await;
    std::fs::write(
        env.dir.path().join("shipmate.toml"),
        "[service]\ncluster = \"${TEST_CLUSTER}\"\nservice = \"web\"\n\n[migrate]\ncommand = \"sh -c 'echo from the file'\"\n\n[deploy]\npoll_interval = \"200ms\"\n",
    )
    .expect("shipmate.toml");
    let vars = [("TEST_CLUSTER", CLUSTER)];
    let outcome = env
        .shipmate_with_env(&["deploy", "--image", "web:2"], &vars)
        .await;
    assert_eq!(outcome.code, Some(0));
    assert!(outcome.stderr.contains("migrate | from the file"));
    let new_td = describe_service(&env, "web")
        .await
        .task_definition()
        .expect("td")
        .to_owned();
    assert_ne!(new_td, old_td);

    let status = env.shipmate_with_env(&["status"], &vars).await;
    assert_eq!(status.code, Some(0));
    assert!(
        status
            .stdout
            .contains("service web (ACTIVE): 2 running / 2 desired"),
        "{}",
        status.stdout
    );
    assert!(status.stdout.contains("PRIMARY"));
    assert!(
        status.stdout.lines().any(|l| l.starts_with("  #1 ")
            && l.contains(" deploy ")
            && l.contains(": succeeded, migration ")),
        "{}",
        status.stdout
    );

    let rollback = env.shipmate_with_env(&["rollback"], &vars).await;
    assert_eq!(rollback.code, Some(0));
    let service = wait_steady(&env, "web").await;
    assert_eq!(service.task_definition(), Some(old_td.as_str()));

    // A bad key in the file is a configuration error naming file, line and key.
    std::fs::write(
        env.dir.path().join("shipmate.toml"),
        "[deploy]\npoll_intervall = \"1s\"\n",
    )
    .expect("write");
    let bad = env
        .shipmate_with_env(&["deploy", "--image", "web:2"], &vars)
        .await;
    assert_eq!(bad.code, Some(2));
    assert!(bad.stderr.contains("shipmate.toml:2:1: `deploy.poll_intervall`: unknown key (did you mean `poll_interval`?)"), "{}", bad.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_makes_no_mutating_call() {
    let (env, _) = web_env().await;
    env.server.request_log().clear();
    let outcome = env
        .shipmate(&[
            "plan",
            "--cluster",
            CLUSTER,
            "--service",
            "web",
            "--image",
            "web:2",
            "--migrate",
            "python manage.py migrate",
        ])
        .await;
    assert_eq!(outcome.code, Some(0));
    assert!(
        outcome
            .stdout
            .contains("    container    app: web:1 -> web:2"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome
            .stdout
            .contains("migration      python manage.py migrate")
    );
    assert!(outcome.stdout.contains("subnets subnet-0123"));
    let operations: Vec<String> = env
        .server
        .request_log()
        .records()
        .into_iter()
        .filter_map(|r| r.operation)
        .collect();
    assert!(!operations.is_empty(), "plan read the service");
    let mutating: Vec<&String> = operations.iter().filter(|op| is_mutating(op)).collect();
    assert!(mutating.is_empty(), "plan called {mutating:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_transcript() {
    let (env, _) = web_env().await;
    let outcome = env.shipmate(&deploy_args("web:2", MIGRATE_OK, &[])).await;
    assert_eq!(outcome.code, Some(0));
    // Progress lines that depend on timing (task status changes, rollout counts, ECS events)
    // are left out; the order of the rest is the contract.
    let stable: Vec<&str> = outcome
        .stderr
        .lines()
        .filter(|l| {
            !l.starts_with("ecs | ") && !l.contains("task is ") && !l.starts_with("deploy: ")
                || l.starts_with("deploy: web updated")
        })
        .collect();
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"release [0-9a-f]{12}", "release [ID]");
    settings.add_filter(r"task [0-9a-f]{32}", "task [TASK]");
    settings.add_filter(r"ecs-svc/[0-9]+", "ecs-svc/[ID]");
    settings.add_filter(r"\b\d+(\.\d+)?(ms|s)\b", "[T]");
    settings.add_filter(r"\b\d+m\d+s\b", "[T]");
    settings.bind(|| insta::assert_snapshot!("deploy_success", stable.join("\n")));
}
