//! `shipmate doctor` against `shipmate local`: a sound setup passes, and each broken one fails
//! with its own check and hint (a missing log group, an image not pushed, no execution role on
//! Fargate with awslogs, an unknown container, a leftover lock, an unknown cluster), a
//! CODE_DEPLOY service warns, and `plan` shows the same findings as warnings. Only reads.

use aws_sdk_ecs::types::{ContainerDefinition, Tag};
use shipmate_release::ledger::{self, Kind, Record, State};

use crate::harness::{CLUSTER, Env, LOG_GROUP};
use crate::web::{create_code_deploy_service, create_service, is_mutating, register_web_with_role};

const EXECUTION_ROLE: &str = "arn:aws:iam::000000000000:role/ecsTaskExecutionRole";

/// How the `web` setup is broken (nothing: sound).
#[derive(Default)]
struct Setup {
    no_log_group: bool,
    no_execution_role: bool,
    code_deploy: bool,
}

/// `web` on Fargate (awsvpc, awslogs to /ecs/web), no tasks: `web:1` live, `web:2` pushed.
async fn web(setup: Setup) -> Env {
    let env = Env::start().await;
    for tag in ["web:1", "web:2"] {
        env.push_image(tag, &[("start.sh", "exec sleep 600\n")]);
    }
    if !setup.no_log_group {
        env.create_log_group(LOG_GROUP).await;
    }
    let td = register_web_with_role(
        &env,
        "web:1",
        &["sh", "start.sh"],
        LOG_GROUP,
        (!setup.no_execution_role).then_some(EXECUTION_ROLE),
    )
    .await;
    if setup.code_deploy {
        create_code_deploy_service(&env, "web", &td, 0).await;
    } else {
        create_service(&env, "web", &td, 0).await;
    }
    env
}

fn doctor_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "doctor",
        "--cluster",
        CLUSTER,
        "--service",
        "web",
        "--image",
        "web:2",
    ];
    args.extend_from_slice(extra);
    args
}

/// `shipmate doctor … --output json`: its exit code and report.
async fn doctor_json(env: &Env, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let outcome = env
        .shipmate(&doctor_args(&[extra, &["--output", "json"]].concat()))
        .await;
    let report = serde_json::from_str(outcome.stdout.trim())
        .unwrap_or_else(|e| panic!("doctor's JSON: {e}: {}", outcome.stdout));
    (outcome.code, report)
}

/// The checks with `status`, as (name, message, hint).
fn with_status(report: &serde_json::Value, status: &str) -> Vec<(String, String, String)> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] == status)
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["message"].as_str().unwrap_or_default().to_owned(),
                c["hint"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Asserts that exactly one check failed, `name`, with `message` and `hint` in its text, and
/// that doctor exited 11.
fn assert_fails_only(
    code: Option<i32>,
    report: &serde_json::Value,
    name: &str,
    message: &str,
    hint: &str,
) {
    assert_eq!(code, Some(11), "{report:#}");
    assert_eq!(report["result"], "failed");
    let failed = with_status(report, "fail");
    assert_eq!(failed.len(), 1, "only {name} fails: {failed:#?}");
    let (failed_name, failed_message, failed_hint) = &failed[0];
    assert_eq!(failed_name, name);
    assert!(failed_message.contains(message), "{failed_message}");
    assert!(failed_hint.contains(hint), "{failed_hint}");
}

/// Stops the endpoint: its task processes and its temporary image store go with it.
async fn shut_down(env: Env) {
    let Env { server, .. } = env;
    server.shutdown().await;
}

fn assert_read_only(env: &Env) {
    let operations: Vec<String> = env
        .server
        .request_log()
        .records()
        .into_iter()
        .filter_map(|r| r.operation)
        .collect();
    assert!(operations.iter().any(|op| op == "DescribeLogGroups"));
    let mutating: Vec<&String> = operations.iter().filter(|op| is_mutating(op)).collect();
    assert!(mutating.is_empty(), "doctor called {mutating:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sound_setup_passes_reading_only() {
    let env = web(Setup::default()).await;
    env.server.request_log().clear();

    let human = env.shipmate(&doctor_args(&[])).await;
    assert_eq!(human.code, Some(0), "{}", human.stderr);
    for line in [
        "ok   credentials and region work (ECS answered for cluster prod)",
        "ok   cluster prod exists",
        "ok   service web is ACTIVE",
        "ok   service web is deployed by ECS",
        "ok   container app of web:1 gets the image",
        "ok   log group /ecs/web exists (container app)",
        &format!("ok   execution role {EXECUTION_ROLE} is set"),
        "ok   release lock ",
        "ok   no PAUSE hook left by shipmate on service web",
    ] {
        assert!(
            human.stdout.lines().any(|l| l.starts_with(line)),
            "{line:?} in\n{}",
            human.stdout
        );
    }
    assert!(
        human
            .stdout
            .contains("ok   image web:2 is in the store of shipmate local at http://127.0.0.1:"),
        "{}",
        human.stdout
    );
    assert!(!human.stdout.contains("FAIL"), "{}", human.stdout);
    assert!(!human.stdout.contains("hint:"), "{}", human.stdout);
    assert!(
        human
            .stdout
            .contains("doctor found nothing that would make the release fail"),
        "{}",
        human.stdout
    );

    let (code, report) = doctor_json(&env, &[]).await;
    assert_eq!(code, Some(0));
    assert_eq!(report["result"], "passed");
    assert_eq!(report["failed"], 0);
    assert!(with_status(&report, "fail").is_empty());
    let names: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for name in [
        "aws_access",
        "cluster",
        "service",
        "deployment_controller",
        "container",
        "log_group",
        "execution_role",
        "image",
        "network",
        "lock",
        "pause_hook",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    assert_read_only(&env);
    shut_down(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_log_group_fails_and_plan_warns_about_it() {
    let env = web(Setup {
        no_log_group: true,
        ..Setup::default()
    })
    .await;
    let (code, report) = doctor_json(&env, &[]).await;
    assert_fails_only(
        code,
        &report,
        "log_group",
        "log group /ecs/web does not exist",
        "aws logs create-log-group --log-group-name /ecs/web",
    );

    let human = env.shipmate(&doctor_args(&[])).await;
    assert_eq!(human.code, Some(11));
    let lines: Vec<&str> = human.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("FAIL log group /ecs/web does not exist"))
        .unwrap_or_else(|| panic!("the failing line in\n{}", human.stdout));
    assert!(
        lines[at + 1].starts_with("     hint: create it: aws logs create-log-group"),
        "{}",
        human.stdout
    );

    // plan shows it as a warning and exits as before.
    let plan = env
        .shipmate(&[
            "plan",
            "--cluster",
            CLUSTER,
            "--service",
            "web",
            "--image",
            "web:2",
        ])
        .await;
    assert_eq!(plan.code, Some(0), "{}", plan.stderr);
    assert!(
        plan.stderr
            .contains("warning: doctor FAIL: log group /ecs/web does not exist"),
        "{}",
        plan.stderr
    );
    assert!(
        plan.stderr
            .contains("hint: create it: aws logs create-log-group --log-group-name /ecs/web"),
        "{}",
        plan.stderr
    );
    shut_down(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_not_pushed_fails() {
    let env = web(Setup::default()).await;
    let outcome = env
        .shipmate(&[
            "doctor",
            "--cluster",
            CLUSTER,
            "--service",
            "web",
            "--image",
            "web:9",
            "--output",
            "json",
        ])
        .await;
    let report: serde_json::Value = serde_json::from_str(outcome.stdout.trim()).expect("JSON");
    assert_fails_only(
        outcome.code,
        &report,
        "image",
        "image web:9 is not in the store of shipmate local",
        "shipmate local push <dir> --image web:9",
    );
    shut_down(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_execution_role_on_fargate_with_awslogs_fails() {
    let env = web(Setup {
        no_execution_role: true,
        ..Setup::default()
    })
    .await;
    let (code, report) = doctor_json(&env, &[]).await;
    assert_fails_only(
        code,
        &report,
        "execution_role",
        "web:1 has no execution role, but container `app` logs to awslogs",
        "executionRoleArn",
    );
    shut_down(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_container_fails() {
    let env = web(Setup::default()).await;
    let (code, report) = doctor_json(&env, &["--container", "nope"]).await;
    assert_fails_only(
        code,
        &report,
        "container",
        "has no container named `nope` (containers: app)",
        "--container",
    );
    shut_down(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leftover_lock_fails() {
    let env = web(Setup::default()).await;
    // A release that died an hour ago under the lock web:2's release takes: its open ledger
    // entry, its last heartbeat an hour old.
    let family = ledger::family(&ledger::default_key(CLUSTER, "web:2"));
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("epoch ms");
    let mut record = Record::new("r-dead", Kind::Deploy, CLUSTER, &["web".to_owned()]);
    record.image = Some("web:2".to_owned());
    record.by = "ci@gone".to_owned();
    record.state = State::Migrating;
    record.heartbeat = Some(now - 3_600_000);
    env.ecs
        .register_task_definition()
        .family(&family)
        .container_definitions(
            ContainerDefinition::builder()
                .name("ledger")
                .image("scratch")
                .memory(6)
                .build(),
        )
        .set_tags(Some(
            record
                .to_tags()
                .into_iter()
                .map(|(key, value)| Tag::builder().key(key).value(value).build())
                .collect(),
        ))
        .send()
        .await
        .expect("RegisterTaskDefinition of the ledger entry");

    let (code, report) = doctor_json(&env, &[]).await;
    assert_fails_only(
        code,
        &report,
        "lock",
        "is held by release r-dead (deploy of web:2 by ci@gone, migrating), silent for 1h",
        "`shipmate unlock --cluster prod --service web` releases the lock",
    );
    shut_down(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_cluster_fails_with_nothing_else_checked() {
    let env = web(Setup::default()).await;
    let outcome = env
        .shipmate(&[
            "doctor",
            "--cluster",
            "nope",
            "--service",
            "web",
            "--image",
            "web:2",
            "--output",
            "json",
        ])
        .await;
    let report: serde_json::Value = serde_json::from_str(outcome.stdout.trim()).expect("JSON");
    assert_fails_only(
        outcome.code,
        &report,
        "cluster",
        "cluster nope does not exist",
        "check --cluster",
    );
    assert!(
        with_status(&report, "pass")
            .iter()
            .all(|(name, _, _)| name == "aws_access" || name == "image"),
        "{report:#}"
    );
    shut_down(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_deploy_service_warns_unless_migrate_only() {
    let env = web(Setup {
        code_deploy: true,
        ..Setup::default()
    })
    .await;
    let (code, report) = doctor_json(&env, &[]).await;
    assert_eq!(code, Some(0), "a warning is not a failure: {report:#}");
    let warned = with_status(&report, "warn");
    let controller = warned
        .iter()
        .find(|(name, _, _)| name == "deployment_controller")
        .unwrap_or_else(|| panic!("the controller warns: {warned:#?}"));
    assert!(controller.1.contains("CodeDeploy"), "{}", controller.1);
    assert!(controller.2.contains("--migrate-only"), "{}", controller.2);

    let (code, report) = doctor_json(&env, &["--migrate-only"]).await;
    assert_eq!(code, Some(0));
    assert!(
        with_status(&report, "warn")
            .iter()
            .all(|(name, _, _)| name != "deployment_controller"),
        "{report:#}"
    );
    shut_down(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_is_a_failed_check_not_a_crash() {
    let env = web(Setup::default()).await;
    let mut command = env.command(&doctor_args(&["--output", "json"]));
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let outcome = crate::harness::finish(command.spawn().expect("spawn shipmate")).await;
    let report: serde_json::Value = serde_json::from_str(outcome.stdout.trim()).expect("JSON");
    assert_fails_only(
        outcome.code,
        &report,
        "aws_access",
        "cannot call ECS",
        "AWS_PROFILE",
    );
    shut_down(env).await;
}
