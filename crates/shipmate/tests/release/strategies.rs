//! Every kind of ECS service (issue 9): blue/green, linear and canary followed through ECS's
//! service-deployment records, `--wait-until deployed` and `shipmate finish`, the pause-hook
//! gate, and CODE_DEPLOY services refused or migrated with `--migrate-only`. The real binary
//! through aws-sdk-rust against an in-process `shipmate local`, its time scaled so that minutes
//! of bake time pass in seconds.

use std::time::Duration;

use aws_sdk_ecs::types::{
    AdvancedConfiguration, CanaryConfiguration, DeploymentConfiguration, DeploymentController,
    DeploymentControllerType, DeploymentLifecycleHookTargetType, DeploymentStrategy, LaunchType,
    LoadBalancer,
};

use crate::harness::{CLUSTER, Env, LOG_GROUP, eventually};
use crate::web::{
    MIGRATE_OK, create_code_deploy_service, deploy_args, describe_service, is_mutating, network,
    register_web, wait_steady, web_env,
};

const JSON: &[&str] = &["--output", "json"];

/// The operations the endpoint was asked, in order.
fn operations(env: &Env) -> Vec<String> {
    env.server
        .request_log()
        .records()
        .into_iter()
        .filter_map(|r| r.operation)
        .collect()
}

/// ECS's time for bake times and hook timeouts runs this many times faster.
async fn scale_time(env: &Env, scale: f64) {
    env.server.engine().ecs.set_deployment_time_scale(scale);
}

/// The service's newest service-deployment record.
pub(crate) async fn current_record(
    env: &Env,
    service: &str,
) -> aws_sdk_ecs::types::ServiceDeployment {
    let arn = describe_service(env, service)
        .await
        .current_service_deployment()
        .expect("currentServiceDeployment")
        .to_owned();
    env.ecs
        .describe_service_deployments()
        .service_deployment_arns(arn)
        .send()
        .await
        .expect("DescribeServiceDeployments")
        .service_deployments()
        .first()
        .cloned()
        .expect("the record")
}

/// `web` switched to `strategy` with `bake` minutes of bake time (and, for linear and canary, a
/// load balancer and the steps).
async fn set_strategy(env: &Env, strategy: DeploymentStrategy, bake: i32) {
    let mut configuration = DeploymentConfiguration::builder()
        .strategy(strategy.clone())
        .bake_time_in_minutes(bake)
        .deployment_circuit_breaker(
            aws_sdk_ecs::types::DeploymentCircuitBreaker::builder()
                .enable(true)
                .rollback(true)
                .build(),
        );
    if strategy == DeploymentStrategy::Canary {
        configuration = configuration.canary_configuration(
            CanaryConfiguration::builder()
                .canary_percent(10.0)
                .canary_bake_time_in_minutes(1)
                .build(),
        );
    }
    if strategy == DeploymentStrategy::Linear {
        configuration = configuration.linear_configuration(
            aws_sdk_ecs::types::LinearConfiguration::builder()
                .step_percent(50.0)
                .step_bake_time_in_minutes(1)
                .build(),
        );
    }
    let mut update = env
        .ecs
        .update_service()
        .cluster(CLUSTER)
        .service("web")
        .deployment_configuration(configuration.build());
    if strategy != DeploymentStrategy::BlueGreen {
        update = update.load_balancers(load_balancer());
    }
    update.send().await.expect("UpdateService strategy");
}

fn load_balancer() -> LoadBalancer {
    LoadBalancer::builder()
        .target_group_arn(
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web-blue/1",
        )
        .container_name("app")
        .container_port(8000)
        .advanced_configuration(
            AdvancedConfiguration::builder()
                .alternate_target_group_arn(
                    "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web-green/2",
                )
                .production_listener_rule(
                    "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener-rule/app/web/1/2/3",
                )
                .role_arn("arn:aws:iam::000000000000:role/ecs-infrastructure")
                .build(),
        )
        .build()
}

async fn blue_green_release(strategy: DeploymentStrategy) {
    let (env, v1) = web_env().await;
    // One minute of bake time in a little over a second.
    scale_time(&env, 50.0).await;
    set_strategy(&env, strategy.clone(), 1).await;
    // Adding a load balancer is a deployment of its own (still web:1): let it end first.
    wait_steady(&env, "web").await;
    let blue = crate::web::running_task_arns(&env).await;
    let outcome = env.shipmate(&deploy_args("web:2", MIGRATE_OK, JSON)).await;
    assert_eq!(outcome.code, Some(0), "{strategy:?}: {}", outcome.stderr);
    let record = current_record(&env, "web").await;
    assert_eq!(
        record.status().map(|s| s.as_str()),
        Some("SUCCESSFUL"),
        "{record:?}"
    );
    let target = record
        .target_service_revision()
        .and_then(|t| t.arn())
        .expect("target revision")
        .to_owned();
    let revision = env
        .ecs
        .describe_service_revisions()
        .service_revision_arns(target)
        .send()
        .await
        .expect("DescribeServiceRevisions");
    assert!(
        revision.service_revisions()[0]
            .task_definition()
            .is_some_and(|td| td.ends_with("web:2")),
        "the record's target is the release's revision"
    );
    // Blue's tasks stopped only after the bake time: a (scaled) minute after green served.
    let blue_stops: Vec<i64> = service_tasks_of(&env, &v1)
        .await
        .iter()
        .filter(|t| {
            t.task_arn()
                .is_some_and(|arn| blue.iter().any(|b| b == arn))
        })
        .filter_map(|t| t.stopped_at().and_then(|d| d.to_millis().ok()))
        .collect();
    assert_eq!(blue_stops.len(), blue.len(), "every blue task stopped");
    let v2 = describe_service(&env, "web")
        .await
        .task_definition()
        .expect("td")
        .to_owned();
    let green_started = first_service_task_of(&env, &v2).await.expect("green ran");
    let bake_ms = 60_000 / 50;
    for stop in blue_stops {
        assert!(
            stop - green_started >= bake_ms,
            "a blue task stopped {} ms after green started, before the bake time of {bake_ms} ms",
            stop - green_started
        );
    }
    let lines = outcome.json_lines();
    let stages: Vec<String> = lines
        .iter()
        .filter(|l| l["event"] == "deployment_stage")
        .filter_map(|l| l["stage"].as_str().map(str::to_owned))
        .collect();
    assert!(
        stages.iter().any(|s| s == "BAKE_TIME"),
        "shipmate showed the bake time: {stages:?}"
    );
    let report = outcome.report();
    crate::schema::assert_valid_report(&report);
    assert_eq!(report["services"][0]["outcome"], "completed");
}

/// The service tasks (started by a deployment) of `task_definition` ECS still knows, running
/// and stopped.
async fn service_tasks_of(env: &Env, task_definition: &str) -> Vec<aws_sdk_ecs::types::Task> {
    let mut arns = Vec::new();
    for status in [
        aws_sdk_ecs::types::DesiredStatus::Running,
        aws_sdk_ecs::types::DesiredStatus::Stopped,
    ] {
        arns.extend(
            env.ecs
                .list_tasks()
                .cluster(CLUSTER)
                .desired_status(status)
                .send()
                .await
                .expect("ListTasks")
                .task_arns()
                .to_vec(),
        );
    }
    if arns.is_empty() {
        return Vec::new();
    }
    env.ecs
        .describe_tasks()
        .cluster(CLUSTER)
        .set_tasks(Some(arns))
        .send()
        .await
        .expect("DescribeTasks")
        .tasks()
        .iter()
        .filter(|t| t.task_definition_arn() == Some(task_definition))
        .filter(|t| t.started_by().is_some_and(|s| s.starts_with("ecs-svc/")))
        .cloned()
        .collect()
}

/// When the service first started a task of `task_definition` (epoch ms), if ever.
async fn first_service_task_of(env: &Env, task_definition: &str) -> Option<i64> {
    service_tasks_of(env, task_definition)
        .await
        .iter()
        .filter_map(|t| t.created_at().and_then(|d| d.to_millis().ok()))
        .min()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blue_green_release_succeeds_after_the_bake_time() {
    blue_green_release(DeploymentStrategy::BlueGreen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linear_release_succeeds() {
    blue_green_release(DeploymentStrategy::Linear).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_release_succeeds() {
    blue_green_release(DeploymentStrategy::Canary).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_green_is_rolled_back_by_ecs_and_the_release_exits_6_with_its_reason() {
    let (env, v1) = web_env().await;
    set_strategy(&env, DeploymentStrategy::BlueGreen, 1).await;
    scale_time(&env, 50.0).await;
    env.push_image("web:crash", &[("start.sh", "echo boom; exit 1\n")]);
    let outcome = env
        .shipmate(&deploy_args("web:crash", MIGRATE_OK, JSON))
        .await;
    assert_eq!(outcome.code, Some(6), "{}", outcome.stderr);
    let record = current_record(&env, "web").await;
    let reason = record
        .rollback()
        .and_then(|r| r.reason())
        .expect("ECS's rollback reason")
        .to_owned();
    assert!(
        outcome.stderr.contains(&reason),
        "shipmate names ECS's reason `{reason}`: {}",
        outcome.stderr
    );
    let service = wait_steady(&env, "web").await;
    assert_eq!(service.task_definition(), Some(v1.as_str()), "blue stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_until_deployed_returns_during_the_bake_and_finish_completes_it_once() {
    let (env, _) = web_env().await;
    set_strategy(&env, DeploymentStrategy::BlueGreen, 1).await;
    // A minute of bake time takes six seconds: deploy returns inside it.
    scale_time(&env, 10.0).await;
    let post = "sh -c 'echo post-deploy'";
    let args = deploy_args(
        "web:2",
        MIGRATE_OK,
        &[
            "--wait-until",
            "deployed",
            "--post-deploy",
            post,
            "--output",
            "json",
        ],
    );
    let outcome = env.shipmate(&args).await;
    assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
    let report = outcome.report();
    crate::schema::assert_valid_report(&report);
    assert_eq!(
        report["pending"],
        serde_json::json!(["deployment", "post_deploy"])
    );
    assert!(report["post_deploy"].is_null(), "the post-deploy waits");
    assert!(
        outcome.stderr.contains("shipmate finish"),
        "the command that finishes the release is printed: {}",
        outcome.stderr
    );
    let record = current_record(&env, "web").await;
    assert_eq!(
        record.status().map(|s| s.as_str()),
        Some("IN_PROGRESS"),
        "deploy returned before the deployment completed"
    );
    let mut finish: Vec<&str> = args.clone();
    finish[0] = "finish";
    let first = env.shipmate(&finish).await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let report = first.report();
    crate::schema::assert_valid_report(&report);
    assert_eq!(report["post_deploy"]["exit_code"], 0, "{report}");
    assert_eq!(
        current_record(&env, "web")
            .await
            .status()
            .map(|s| s.as_str()),
        Some("SUCCESSFUL")
    );
    let post_deploys = env.tasks_started_by("shipmate/").await;
    let count = post_deploys
        .iter()
        .filter(|t| t.started_by().is_some_and(|s| s.ends_with("/post-deploy")))
        .count();
    assert_eq!(count, 1);
    let second = env.shipmate(&finish).await;
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert!(second.stderr.contains("nothing to do"), "{}", second.stderr);
    let again = env
        .tasks_started_by("shipmate/")
        .await
        .iter()
        .filter(|t| t.started_by().is_some_and(|s| s.ends_with("/post-deploy")))
        .count();
    assert_eq!(again, 1, "the second finish ran nothing");
}

/// Adds a PAUSE-hook gate to `deploy_args`.
fn pause_args<'a>(image: &'a str, migrate: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = deploy_args(
        image,
        migrate,
        &["--gate", "pause-hook", "--output", "json"],
    );
    args.extend_from_slice(extra);
    args
}

fn our_hooks(service: &aws_sdk_ecs::types::Service) -> usize {
    service
        .deployment_configuration()
        .map(|c| {
            c.lifecycle_hooks()
                .iter()
                .filter(|h| {
                    h.target_type() == Some(&DeploymentLifecycleHookTargetType::Pause)
                        && h.hook_details().is_some()
                })
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pause_hook_gate_migrates_before_any_new_task_and_leaves_no_hook() {
    let (env, _) = web_env().await;
    let outcome = env
        .shipmate(&pause_args("web:2", "sh -c 'sleep 1; echo migrated'", &[]))
        .await;
    assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
    let service = describe_service(&env, "web").await;
    assert_eq!(
        our_hooks(&service),
        0,
        "no PAUSE hook is left on the service"
    );
    let record = current_record(&env, "web").await;
    assert_eq!(record.status().map(|s| s.as_str()), Some("SUCCESSFUL"));
    let migration = env
        .tasks_started_by("shipmate/")
        .await
        .into_iter()
        .find(|t| t.started_by().is_some_and(|s| !s.ends_with("/post-deploy")))
        .expect("the migration task");
    let migration_started = migration
        .created_at()
        .and_then(|d| d.to_millis().ok())
        .expect("createdAt");
    let deployment_created = record
        .created_at()
        .and_then(|d| d.to_millis().ok())
        .expect("record createdAt");
    assert!(
        deployment_created <= migration_started,
        "the migration started after ECS's deployment was created"
    );
    let v2 = service.task_definition().expect("td").to_owned();
    assert!(v2.ends_with("web:2"));
    let first_green = first_service_task_of(&env, &v2)
        .await
        .expect("green tasks ran");
    let migration_stopped = migration
        .stopped_at()
        .and_then(|d| d.to_millis().ok())
        .expect("the migration stopped");
    assert!(
        migration_stopped <= first_green,
        "no task of the target revision started before the migration ended"
    );
    let ops = operations(&env);
    assert!(ops.iter().any(|o| o == "ContinueServiceDeployment"));

    // A forced deployment afterwards is not paused.
    env.ecs
        .update_service()
        .cluster(CLUSTER)
        .service("web")
        .force_new_deployment(true)
        .send()
        .await
        .expect("force");
    let done = eventually(Duration::from_secs(60), || async {
        let record = current_record(&env, "web").await;
        (record.status().map(|s| s.as_str()) == Some("SUCCESSFUL")).then_some(record)
    })
    .await;
    assert!(
        done.is_some(),
        "the forced deployment completed without anyone continuing it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_migration_under_the_pause_hook_rolls_ecs_back_before_any_new_task() {
    let (env, v1) = web_env().await;
    let outcome = env
        .shipmate(&pause_args("web:2", "sh -c 'echo no; exit 3'", &[]))
        .await;
    assert_eq!(outcome.code, Some(4), "{}", outcome.stderr);
    let record = eventually(Duration::from_secs(30), || async {
        let record = current_record(&env, "web").await;
        (record.status().map(|s| s.as_str()) == Some("ROLLBACK_SUCCESSFUL")).then_some(record)
    })
    .await
    .expect("ECS rolled the deployment back");
    assert!(record.rollback().is_some());
    let service = wait_steady(&env, "web").await;
    assert_eq!(service.task_definition(), Some(v1.as_str()), "blue stays");
    assert_eq!(our_hooks(&service), 0);
    let v2 = v1.replace("web:1", "web:2");
    assert_eq!(
        first_service_task_of(&env, &v2).await,
        None,
        "no task of the target revision ever started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_paused_the_hook_times_out_and_the_next_release_removes_it() {
    let (env, v1) = web_env().await;
    // The hook's timeout is the migration timeout (1 min) plus 5: six minutes pass in 3.6 s.
    scale_time(&env, 100.0).await;
    let child = env
        .command(&pause_args(
            "web:2",
            "sh -c 'sleep 30'",
            &["--migrate-timeout", "1m"],
        ))
        .spawn()
        .expect("spawn shipmate");
    crate::web::running_migration(&env, "the migration never ran").await;
    let pid = child.id().expect("pid");
    // SIGKILL: no cleanup at all, as when a CI runner dies.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    let _ = crate::harness::finish(child).await;
    let record = eventually(Duration::from_secs(60), || async {
        let record = current_record(&env, "web").await;
        (record.status().map(|s| s.as_str()) == Some("ROLLBACK_SUCCESSFUL")).then_some(record)
    })
    .await
    .expect("the hook timed out and ECS rolled back");
    assert!(
        record
            .lifecycle_hook_details()
            .iter()
            .any(|h| h.status().map(|s| s.as_str()) == Some("TIMED_OUT")),
        "{record:?}"
    );
    let service = wait_steady(&env, "web").await;
    assert_eq!(service.task_definition(), Some(v1.as_str()));
    assert_eq!(
        our_hooks(&service),
        1,
        "the dead release's hook is left over: {:?}",
        service.deployment_configuration()
    );
    let status = env
        .shipmate(&["status", "--cluster", CLUSTER, "--service", "web"])
        .await;
    assert!(
        status.stdout.contains("leftover PAUSE hook"),
        "{}",
        status.stdout
    );
    // The lock of the dead release expires with its lease; the next release takes over.
    let next = env
        .shipmate(&crate::web::deploy_without_migration_args(
            "web:3",
            &["--lock-lease", "1s"],
        ))
        .await;
    assert_eq!(next.code, Some(0), "{}", next.stderr);
    let service = describe_service(&env, "web").await;
    assert_eq!(our_hooks(&service), 0, "the next release removed the hook");
    assert!(
        service
            .task_definition()
            .is_some_and(|td| td.ends_with("web:3"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_deploy_service_is_refused_before_anything_and_migrate_only_writes_the_artifacts() {
    let env = Env::start().await;
    env.push_image("web:1", &[("start.sh", "exec sleep 600\n")]);
    env.push_image("web:2", &[("start.sh", "exec sleep 600\n")]);
    env.create_log_group(LOG_GROUP).await;
    let td = register_web(&env, "web:1", &["sh", "start.sh"], LOG_GROUP).await;
    create_code_deploy_service(&env, "web", &td, 1).await;
    env.server.request_log().clear();
    let refused = env.shipmate(&deploy_args("web:2", MIGRATE_OK, JSON)).await;
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(refused.stderr.contains("CODE_DEPLOY"), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("--migrate-only"),
        "the hint: {}",
        refused.stderr
    );
    let mutating: Vec<String> = operations(&env)
        .into_iter()
        .filter(|op| is_mutating(op))
        .collect();
    assert!(
        mutating.is_empty(),
        "nothing changed, no RunTask: {mutating:?}"
    );

    let artifacts = env.dir.path().join("artifacts");
    let artifacts_arg = artifacts.to_str().expect("utf-8").to_owned();
    env.server.request_log().clear();
    let migrated = env
        .shipmate(&deploy_args(
            "web:2",
            MIGRATE_OK,
            &[
                "--migrate-only",
                "--artifacts",
                &artifacts_arg,
                "--output",
                "json",
            ],
        ))
        .await;
    assert_eq!(migrated.code, Some(0), "{}", migrated.stderr);
    let ops = operations(&env);
    assert_eq!(ops.iter().filter(|o| *o == "RunTask").count(), 1);
    assert!(!ops.iter().any(|o| o == "UpdateService"), "{ops:?}");
    let report = migrated.report();
    crate::schema::assert_valid_report(&report);
    assert_eq!(report["artifacts"].as_array().map(Vec::len), Some(3));

    let image_detail: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(artifacts.join("imageDetail.json")).expect("imageDetail.json"),
    )
    .expect("imageDetail.json is JSON");
    assert_eq!(image_detail, serde_json::json!({"ImageURI": "web:2"}));
    let taskdef: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(artifacts.join("taskdef.json")).expect("taskdef.json"),
    )
    .expect("taskdef.json is JSON");
    assert_eq!(taskdef["family"], "web");
    assert_eq!(taskdef["containerDefinitions"][0]["image"], "<IMAGE1_NAME>");
    for read_only in ["taskDefinitionArn", "revision", "status", "registeredAt"] {
        assert!(
            taskdef.get(read_only).is_none(),
            "{read_only} is not registrable"
        );
    }
    // Every member is one RegisterTaskDefinition takes (what CodeDeployToECS registers).
    let input =
        aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionInput::SCHEMA;
    for key in taskdef.as_object().expect("an object").keys() {
        assert!(
            input.member_schema(key).is_some(),
            "`{key}` is not a RegisterTaskDefinition member"
        );
    }
    let appspec = std::fs::read_to_string(artifacts.join("appspec.yaml")).expect("appspec.yaml");
    assert!(appspec.starts_with("version: 0.0\n"), "{appspec}");
    assert!(appspec.contains("Type: AWS::ECS::Service"));
    assert!(appspec.contains("TaskDefinition: <TASK_DEFINITION>"));
    assert!(appspec.contains("ContainerName: \"app\""));
    assert!(appspec.contains("ContainerPort: 8000"));
    let service = describe_service(&env, "web").await;
    assert_eq!(service.task_definition(), Some(td.as_str()), "untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_paused_stops_the_migration_and_rolls_the_deployment_back() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let (env, v1) = web_env().await;
    let child = env
        .command(&pause_args("web:2", "sh -c 'sleep 30'", &[]))
        .spawn()
        .expect("spawn shipmate");
    let migration = crate::web::running_migration(&env, "the migration never ran").await;
    kill(
        Pid::from_raw(i32::try_from(child.id().expect("pid")).expect("pid fits")),
        Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let outcome = crate::harness::finish(child).await;
    assert_eq!(outcome.code, Some(130), "{}", outcome.stderr);
    let record = eventually(Duration::from_secs(30), || async {
        let record = current_record(&env, "web").await;
        (record.status().map(|s| s.as_str()) == Some("ROLLBACK_SUCCESSFUL")).then_some(record)
    })
    .await;
    assert!(record.is_some(), "the paused deployment was rolled back");
    let stopped = env
        .ecs
        .describe_tasks()
        .cluster(CLUSTER)
        .tasks(&migration)
        .send()
        .await
        .expect("DescribeTasks");
    assert_eq!(
        stopped.tasks()[0].last_status(),
        Some("STOPPED"),
        "the migration was stopped"
    );
    let service = wait_steady(&env, "web").await;
    assert_eq!(service.task_definition(), Some(v1.as_str()));
    assert_eq!(our_hooks(&service), 0, "the hook went with the release");
    let v2 = v1.replace("web:1", "web:2");
    assert_eq!(first_service_task_of(&env, &v2).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_deployment_during_the_pause_waits_for_the_migration_and_the_release_succeeds() {
    let (env, _) = web_env().await;
    let child = env
        .command(&pause_args("web:2", "sh -c 'sleep 2; echo migrated'", &[]))
        .spawn()
        .expect("spawn shipmate");
    let migration = crate::web::running_migration(&env, "the migration never ran").await;
    // Someone forces a deployment while the release's is paused: ECS stops the paused one and
    // starts another of the same revision, which the release's hook pauses too.
    env.ecs
        .update_service()
        .cluster(CLUSTER)
        .service("web")
        .force_new_deployment(true)
        .send()
        .await
        .expect("force");
    let outcome = crate::harness::finish(child).await;
    assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
    let service = wait_steady(&env, "web").await;
    let v2 = service.task_definition().expect("td").to_owned();
    assert!(v2.ends_with("web:2"));
    assert_eq!(our_hooks(&service), 0);
    let record = current_record(&env, "web").await;
    assert_eq!(record.status().map(|s| s.as_str()), Some("SUCCESSFUL"));
    let migration_stopped = env
        .ecs
        .describe_tasks()
        .cluster(CLUSTER)
        .tasks(&migration)
        .send()
        .await
        .expect("DescribeTasks")
        .tasks()[0]
        .stopped_at()
        .and_then(|d| d.to_millis().ok())
        .expect("stopped");
    let first_green = first_service_task_of(&env, &v2).await.expect("green ran");
    assert!(
        migration_stopped <= first_green,
        "the forced deployment's tasks waited for the migration too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_service_is_refused_and_plan_and_status_show_the_deployment_shape() {
    let (env, _) = web_env().await;
    // plan names the strategy, the hooks and the gate; status shows ECS's records.
    let plan = env
        .shipmate(&[
            "plan",
            "--cluster",
            CLUSTER,
            "--service",
            "web",
            "--image",
            "web:2",
            "--migrate",
            "true",
            "--gate",
            "pause-hook",
        ])
        .await;
    assert_eq!(plan.code, Some(0), "{}", plan.stderr);
    assert!(
        plan.stdout.contains("deployment   ECS controller, ROLLING"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("gate           pause-hook"),
        "{}",
        plan.stdout
    );
    let status = env
        .shipmate(&["status", "--cluster", CLUSTER, "--service", "web"])
        .await;
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    assert!(
        status
            .stdout
            .contains("ECS's deployment records (newest first):"),
        "{}",
        status.stdout
    );
    assert!(status.stdout.contains("SUCCESSFUL"), "{}", status.stdout);

    let td = register_web(&env, "web:1", &["sh", "start.sh"], LOG_GROUP).await;
    env.ecs
        .create_service()
        .cluster(CLUSTER)
        .service_name("external")
        .task_definition(&td)
        .desired_count(0)
        .launch_type(LaunchType::Fargate)
        .network_configuration(network())
        .deployment_controller(
            DeploymentController::builder()
                .r#type(DeploymentControllerType::External)
                .build()
                .expect("controller"),
        )
        .send()
        .await
        .expect("CreateService EXTERNAL");
    env.server.request_log().clear();
    let mut args = deploy_args("web:2", MIGRATE_OK, JSON);
    args[4] = "external";
    let refused = env.shipmate(&args).await;
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(refused.stderr.contains("EXTERNAL"), "{}", refused.stderr);
    let mutating: Vec<String> = operations(&env)
        .into_iter()
        .filter(|op| is_mutating(op))
        .collect();
    assert!(mutating.is_empty(), "{mutating:?}");
}
