//! One release of several services (issue 8): `web` and `worker` built from one image (`shop`)
//! with different commands, released by one `shipmate deploy --service web --service worker`:
//! one migration, every service rolled and followed, all of them rolled back together; tasks
//! with several containers of the image and a sidecar; the migration's own shape (task size,
//! environment, roles, a family of its own).

use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, KeyValuePair, LogConfiguration, LogDriver, NetworkMode,
};

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::harness::{CLUSTER, Env, LOG_GROUP, eventually, finish};
use crate::interference::{assert_no_overlap, open_ledger_entries};
use crate::strategies::current_record;
use crate::web::{MIGRATE_OK, create_service, describe_service, wait_steady};

const SLEEP: &str = "exec sleep 600\n";

/// An `app`-style container of `image` running `command`, logging to awslogs.
fn container(name: &str, image: &str, command: &[&str], essential: bool) -> ContainerDefinition {
    ContainerDefinition::builder()
        .name(name)
        .image(image)
        .essential(essential)
        .memory(128)
        .set_command(Some(command.iter().map(|s| (*s).to_owned()).collect()))
        .log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", LOG_GROUP)
                .options("awslogs-region", "us-east-1")
                .options("awslogs-stream-prefix", name)
                .build()
                .expect("log configuration"),
        )
        .build()
}

/// Registers `family` (awsvpc, Fargate, 256/512) with `containers`; returns its ARN.
async fn register(env: &Env, family: &str, containers: Vec<ContainerDefinition>) -> String {
    env.ecs
        .register_task_definition()
        .family(family)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .set_container_definitions(Some(containers))
        .send()
        .await
        .expect("RegisterTaskDefinition")
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .expect("arn")
        .to_owned()
}

/// Services `web` (`sh start.sh`) and `worker` (`sh worker.sh`), 2 tasks each on `shop:1`.
/// `shop:2` and `shop:3` are good releases; in `shop:4` the worker crashes on start (the web
/// is healthy). Returns the two first revisions.
async fn shop_env() -> (Env, String, String) {
    let env = Env::start().await;
    for tag in ["shop:1", "shop:2", "shop:3"] {
        env.push_image(tag, &[("start.sh", SLEEP), ("worker.sh", SLEEP)]);
    }
    env.push_image(
        "shop:4",
        &[
            ("start.sh", SLEEP),
            ("worker.sh", "echo worker cannot start; exit 3\n"),
        ],
    );
    env.push_image("proxy:1", &[("start.sh", SLEEP)]);
    env.create_log_group(LOG_GROUP).await;
    let web = register(
        &env,
        "web",
        vec![container("app", "shop:1", &["sh", "start.sh"], true)],
    )
    .await;
    let worker = register(
        &env,
        "worker",
        vec![container("app", "shop:1", &["sh", "worker.sh"], true)],
    )
    .await;
    create_service(&env, "web", &web, 2).await;
    create_service(&env, "worker", &worker, 2).await;
    wait_steady(&env, "web").await;
    wait_steady(&env, "worker").await;
    (env, web, worker)
}

fn release_args<'a>(services: &[&'a str], image: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["deploy", "--cluster", CLUSTER];
    for service in services {
        args.extend(["--service", service]);
    }
    args.extend([
        "--image",
        image,
        "--poll-interval",
        "200ms",
        "--log-quiet-period",
        "500ms",
    ]);
    args.extend_from_slice(extra);
    args
}

/// The migration tasks (not post-deploy, not `shipmate run`).
async fn migrations(env: &Env) -> Vec<aws_sdk_ecs::types::Task> {
    env.tasks_started_by("shipmate/")
        .await
        .into_iter()
        .filter(|t| {
            t.started_by()
                .is_some_and(|b| !b.ends_with("/post-deploy") && b != "shipmate/run")
        })
        .collect()
}

/// The images of `arn`'s containers, by name.
async fn images(env: &Env, arn: &str) -> Vec<(String, String)> {
    let output = env
        .ecs
        .describe_task_definition()
        .task_definition(arn)
        .send()
        .await
        .expect("DescribeTaskDefinition");
    output
        .task_definition()
        .expect("task definition")
        .container_definitions()
        .iter()
        .map(|c| {
            (
                c.name().unwrap_or_default().to_owned(),
                c.image().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Waits until both services are steady, and checks they run these revisions.
async fn assert_back_on(env: &Env, web: &str, worker: &str) {
    assert_eq!(wait_steady(env, "web").await.task_definition(), Some(web));
    assert_eq!(
        wait_steady(env, "worker").await.task_definition(),
        Some(worker)
    );
}

fn service_report<'a>(report: &'a serde_json::Value, service: &str) -> &'a serde_json::Value {
    report["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["service"] == service)
        .unwrap_or_else(|| panic!("no {service} in {report}"))
}

/// The bodies of the requests of `operation` in the endpoint's log, oldest first.
fn request_bodies(env: &Env, operation: &str) -> Vec<serde_json::Value> {
    env.server
        .request_log()
        .records()
        .into_iter()
        .filter(|r| r.operation.as_deref() == Some(operation))
        .filter_map(|r| r.body)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_and_worker_are_one_release_with_one_migration() {
    let (env, web_1, worker_1) = shop_env().await;
    let dir = env.dir.path().join("imagedefinitions");
    let dir_arg = dir.to_str().expect("utf-8 path");
    let outcome = env
        .shipmate(&release_args(
            &["web", "worker"],
            "shop:2",
            &[
                "--migrate",
                MIGRATE_OK,
                "--output",
                "json",
                "--image-definitions",
                dir_arg,
            ],
        ))
        .await;
    assert_eq!(outcome.code, Some(0));

    // Exactly one migration, from the first service's new revision.
    let migrations = migrations(&env).await;
    assert_eq!(migrations.len(), 1, "one migration for the release");
    assert_eq!(request_bodies(&env, "RunTask").len(), 1);
    let web = describe_service(&env, "web").await;
    let worker = describe_service(&env, "worker").await;
    let web_2 = web.task_definition().expect("td").to_owned();
    let worker_2 = worker.task_definition().expect("td").to_owned();
    assert!(web_2.ends_with("task-definition/web:2"), "{web_2}");
    assert!(worker_2.ends_with("task-definition/worker:2"), "{worker_2}");
    assert_eq!(migrations[0].task_definition_arn(), Some(web_2.as_str()));
    for service in [&web, &worker] {
        assert_eq!(service.deployments().len(), 1);
        assert_eq!(service.running_count(), 2);
    }
    assert_eq!(
        images(&env, &worker_2).await,
        [("app".to_owned(), "shop:2".to_owned())]
    );

    let report = outcome.report();
    crate::schema::assert_valid_report(&report);
    for (name, from, to) in [("web", &web_1, &web_2), ("worker", &worker_1, &worker_2)] {
        let service = service_report(&report, name);
        assert_eq!(service["outcome"], "completed", "{service}");
        assert_eq!(service["previous_task_definition"], from.as_str());
        assert_eq!(service["task_definition"], to.as_str());
        assert_eq!(service["deployment"]["rollout_state"], "COMPLETED");
        assert_eq!(
            service["containers"],
            serde_json::json!([{"name": "app", "from": "shop:1", "to": "shop:2"}])
        );
        // CodePipeline's deploy action takes one imagedefinitions.json per service.
        let written: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.json"))).expect("written"),
        )
        .expect("JSON");
        assert_eq!(
            written,
            serde_json::json!([{"name": "app", "imageUri": "shop:2"}])
        );
    }
    assert!(outcome.stderr.contains("deploy: web updated to web:2"));
    assert!(
        outcome
            .stderr
            .contains("deploy: worker updated to worker:2")
    );
    assert!(
        outcome
            .stderr
            .contains("released shop:2 to services web (web:2), worker (worker:2)"),
        "{}",
        outcome.stderr
    );
    // Both services were read in one DescribeServices call (ECS takes ten a call).
    assert!(
        request_bodies(&env, "DescribeServices")
            .iter()
            .any(|body| body["services"] == serde_json::json!(["web", "worker"])),
        "the services are described together"
    );
    assert!(open_ledger_entries(&env).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_worker_fails_the_release_and_rollback_returns_both_services() {
    let (env, web_1, worker_1) = shop_env().await;
    let outcome = env
        .shipmate(&release_args(
            &["web", "worker"],
            "shop:4",
            &["--migrate", MIGRATE_OK, "--rollback", "--output", "json"],
        ))
        .await;
    assert_eq!(outcome.code, Some(6), "a failed rollout is exit 6");
    let report = outcome.report();
    crate::schema::assert_valid_report(&report);
    assert_eq!(report["result"], "deployment_failed");
    // The web completed on shop:4, and is returned with the worker all the same.
    assert_eq!(service_report(&report, "web")["outcome"], "rolled_back");
    assert_eq!(service_report(&report, "worker")["outcome"], "rolled_back");
    assert!(
        outcome.stderr.contains("rollback: web to web:1"),
        "{}",
        outcome.stderr
    );
    assert_back_on(&env, &web_1, &worker_1).await;
    assert!(open_ledger_entries(&env).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_rollback_the_output_says_where_each_service_is_and_rollback_returns_both() {
    let (env, web_1, worker_1) = shop_env().await;
    let outcome = env
        .shipmate(&release_args(
            &["web", "worker"],
            "shop:4",
            &["--migrate", MIGRATE_OK, "--output", "json"],
        ))
        .await;
    assert_eq!(outcome.code, Some(6));
    let report = outcome.report();
    let web = service_report(&report, "web");
    let worker = service_report(&report, "worker");
    assert_eq!(web["outcome"], "completed");
    // ECS's circuit breaker (rollback on) took the worker back itself.
    assert_eq!(worker["outcome"], "rolled_back", "{worker}");
    let message = report["message"].as_str().expect("message");
    assert!(
        message.contains("web is on web:2") && message.contains("worker was rolled back"),
        "{message}"
    );
    assert!(outcome.stderr.contains(message), "the message is printed");
    let web_2 = wait_steady(&env, "web")
        .await
        .task_definition()
        .expect("td")
        .to_owned();
    assert!(web_2.ends_with("web:2"));

    let rollback = env
        .shipmate(&[
            "rollback",
            "--cluster",
            CLUSTER,
            "--service",
            "web",
            "--service",
            "worker",
            "--poll-interval",
            "200ms",
        ])
        .await;
    assert_eq!(rollback.code, Some(0));
    assert!(rollback.stderr.contains("service web is on web:1"));
    assert!(rollback.stderr.contains("service worker is on worker:1"));
    assert_back_on(&env, &web_1, &worker_1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_app_containers_get_the_image_and_the_sidecar_keeps_its_own() {
    let env = Env::start().await;
    for tag in ["shop:1", "shop:2"] {
        env.push_image(tag, &[("start.sh", SLEEP), ("worker.sh", SLEEP)]);
    }
    env.push_image("proxy:1", &[("start.sh", SLEEP)]);
    env.create_log_group(LOG_GROUP).await;
    let combo = register(
        &env,
        "combo",
        vec![
            container("app", "shop:1", &["sh", "start.sh"], true),
            container("celery", "shop:1", &["sh", "worker.sh"], true),
            container("envoy", "proxy:1", &["sh", "start.sh"], false),
        ],
    )
    .await;
    create_service(&env, "combo", &combo, 1).await;
    wait_steady(&env, "combo").await;

    let plan = env
        .shipmate(&[
            "plan",
            "--cluster",
            CLUSTER,
            "--service",
            "combo",
            "--image",
            "shop:2",
        ])
        .await;
    assert_eq!(plan.code, Some(0));
    for line in [
        "    container    app: shop:1 -> shop:2",
        "    container    celery: shop:1 -> shop:2",
        "    container    envoy: proxy:1 (kept, not essential)",
    ] {
        assert!(
            plan.stdout.lines().any(|l| l == line),
            "{line:?} in\n{}",
            plan.stdout
        );
    }

    let outcome = env
        .shipmate(&release_args(
            &["combo"],
            "shop:2",
            &[
                "--migrate",
                "sh -c 'echo migrated in $0' app",
                "--output",
                "json",
            ],
        ))
        .await;
    assert_eq!(outcome.code, Some(0));
    let live = describe_service(&env, "combo").await;
    let combo_2 = live.task_definition().expect("td");
    assert_eq!(
        images(&env, combo_2).await,
        [
            ("app".to_owned(), "shop:2".to_owned()),
            ("celery".to_owned(), "shop:2".to_owned()),
            ("envoy".to_owned(), "proxy:1".to_owned())
        ]
    );
    let report = outcome.report();
    assert_eq!(
        report["services"][0]["containers"],
        serde_json::json!([
            {"name": "app", "from": "shop:1", "to": "shop:2"},
            {"name": "celery", "from": "shop:1", "to": "shop:2"}
        ])
    );
    // The migration replaces the first essential container's command.
    let run_task = &request_bodies(&env, "RunTask")[0];
    assert_eq!(
        run_task["overrides"]["containerOverrides"][0]["name"],
        "app"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_runs_with_its_own_size_environment_and_roles() {
    let (env, _, _) = shop_env().await;
    let task_role = "arn:aws:iam::123456789012:role/shop-migrate";
    let execution_role = "arn:aws:iam::123456789012:role/shop-migrate-exec";
    let outcome = env
        .shipmate(&release_args(
            &["web", "worker"],
            "shop:2",
            &[
                "--migrate",
                "sh -c 'echo mode=$MODE'",
                "--migrate-from",
                "worker",
                "--migrate-task-cpu",
                "1 vCPU",
                "--migrate-task-memory",
                "2048",
                "--migrate-env",
                "MODE=migrate",
                "--migrate-task-role",
                task_role,
                "--migrate-execution-role",
                execution_role,
            ],
        ))
        .await;
    assert_eq!(outcome.code, Some(0));
    assert!(
        outcome.stderr.contains("migrate | mode=migrate"),
        "{}",
        outcome.stderr
    );
    let bodies = request_bodies(&env, "RunTask");
    assert_eq!(bodies.len(), 1);
    let overrides = &bodies[0]["overrides"];
    assert_eq!(overrides["cpu"], "1024");
    assert_eq!(overrides["memory"], "2048");
    assert_eq!(overrides["taskRoleArn"], task_role);
    assert_eq!(overrides["executionRoleArn"], execution_role);
    assert_eq!(
        overrides["containerOverrides"][0]["environment"],
        serde_json::json!([{"name": "MODE", "value": "migrate"}])
    );
    // From the worker's new revision, with the worker's network.
    let worker_2 = describe_service(&env, "worker")
        .await
        .task_definition()
        .expect("td")
        .to_owned();
    assert_eq!(bodies[0]["taskDefinition"], worker_2.as_str());
    assert_eq!(
        bodies[0]["networkConfiguration"]["awsvpcConfiguration"]["subnets"],
        serde_json::json!(["subnet-0123"])
    );

    // A size Fargate does not offer is bad input before anything is changed.
    let bad = env
        .shipmate(&release_args(
            &["web"],
            "shop:3",
            &[
                "--migrate",
                MIGRATE_OK,
                "--migrate-task-cpu",
                "512",
                "--migrate-task-memory",
                "512",
            ],
        ))
        .await;
    assert_eq!(bad.code, Some(2));
    assert!(
        bad.stderr.contains(
            "Fargate offers no task of 512 CPU units with 512 MiB: with 512 units, memory is 1024 to 4096 MiB in steps of 1024"
        ),
        "{}",
        bad.stderr
    );
    assert_eq!(request_bodies(&env, "RunTask").len(), 1, "nothing ran");
    assert!(
        describe_service(&env, "web")
            .await
            .task_definition()
            .is_some_and(|td| td.ends_with("web:2")),
        "the service is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_migration_family_is_kept_in_step_with_the_release() {
    let (env, _, _) = shop_env().await;
    // The seed's shape: a family of its own with the DDL user's settings.
    let mut migrate = container("migrate", "shop:1", &["true"], true);
    migrate.environment = Some(vec![
        KeyValuePair::builder()
            .name("DB_USER")
            .value("ddl_owner")
            .build(),
    ]);
    let first = register(&env, "shop-migrate", vec![migrate]).await;
    assert!(first.ends_with("shop-migrate:1"));
    let outcome = env
        .shipmate(&release_args(
            &["web", "worker"],
            "shop:2",
            &[
                "--migrate",
                "sh -c 'echo migrating as $DB_USER'",
                "--migrate-task-definition",
                "shop-migrate",
            ],
        ))
        .await;
    assert_eq!(outcome.code, Some(0));
    assert!(
        outcome.stderr.contains("migrate | migrating as ddl_owner"),
        "{}",
        outcome.stderr
    );
    let migrations = migrations(&env).await;
    assert_eq!(migrations.len(), 1);
    let from = migrations[0].task_definition_arn().expect("td").to_owned();
    assert!(from.ends_with("task-definition/shop-migrate:2"), "{from}");
    assert_eq!(
        images(&env, &from).await,
        [("migrate".to_owned(), "shop:2".to_owned())]
    );
    // The next release moves it again.
    let next = env
        .shipmate(&release_args(
            &["web", "worker"],
            "shop:3",
            &[
                "--migrate",
                "true",
                "--migrate-task-definition",
                "shop-migrate",
            ],
        ))
        .await;
    assert_eq!(next.code, Some(0));
    let latest = env
        .ecs
        .describe_task_definition()
        .task_definition("shop-migrate")
        .send()
        .await
        .expect("DescribeTaskDefinition");
    let latest = latest.task_definition().expect("td");
    assert_eq!(latest.revision(), 3);
    assert_eq!(latest.container_definitions()[0].image(), Some("shop:3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_releases_sharing_a_service_never_migrate_at_once() {
    let (env, _, _) = shop_env().await;
    let migrate = "sh -c 'echo migrating; sleep 2; echo migrated'";
    let both = env
        .command(&release_args(
            &["web", "worker"],
            "shop:2",
            &["--migrate", migrate],
        ))
        .spawn()
        .expect("spawn web+worker");
    let web_only = env
        .command(&release_args(&["web"], "shop:3", &["--migrate", migrate]))
        .spawn()
        .expect("spawn web");
    let (both, web_only) = tokio::join!(finish(both), finish(web_only));
    assert_eq!((both.code, web_only.code), (Some(0), Some(0)));
    assert!(
        both.stderr.contains("lock: waiting") || web_only.stderr.contains("lock: waiting"),
        "one of them waited for the other"
    );
    assert_eq!(assert_no_overlap(&env).await, 2, "one migration each");
    assert!(open_ledger_entries(&env).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waves_go_live_in_order_and_a_failed_wave_stops_the_next() {
    let (env, web_1, worker_1) = shop_env().await;
    let config = env.dir.path().join("shipmate.toml");
    std::fs::write(
        &config,
        "[service]\nservices = [\"web\", \"worker\"]\n\n[deploy]\nwaves = [[\"worker\"], [\"web\"]]\n",
    )
    .expect("config");
    let config_arg = config.to_str().expect("utf-8 path");
    let release = |image: &'static str| {
        vec![
            "deploy",
            "--config",
            config_arg,
            "--cluster",
            CLUSTER,
            "--image",
            image,
            "--migrate",
            "true",
            "--poll-interval",
            "200ms",
            "--log-quiet-period",
            "500ms",
            "--output",
            "json",
        ]
    };
    let plan = env
        .shipmate(&[
            "plan",
            "--config",
            config_arg,
            "--cluster",
            CLUSTER,
            "--image",
            "shop:2",
        ])
        .await;
    assert!(
        plan.stdout.contains("  waves          worker, then web"),
        "{}",
        plan.stdout
    );

    let good = env.shipmate(&release("shop:2")).await;
    assert_eq!(good.code, Some(0));
    // The worker's rollout completed before the web's UpdateService was sent.
    let updates: Vec<(String, i64)> = env
        .server
        .request_log()
        .records()
        .into_iter()
        .filter(|r| r.operation.as_deref() == Some("UpdateService"))
        .filter_map(|r| Some((r.body?["service"].as_str()?.to_owned(), r.time)))
        .collect();
    assert_eq!(
        updates.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        ["worker", "web"]
    );
    let worker_completed = describe_service(&env, "worker")
        .await
        .events()
        .iter()
        .filter(|e| {
            e.message()
                .is_some_and(|m| m.contains("deployment completed"))
        })
        .filter_map(|e| e.created_at()?.to_millis().ok())
        .max()
        .expect("the worker's deployment completed");
    assert!(
        worker_completed <= updates[1].1,
        "{worker_completed} > {}",
        updates[1].1
    );

    // A wave that fails stops the release before the next wave: the web is not touched.
    let web_2 = describe_service(&env, "web")
        .await
        .task_definition()
        .expect("td")
        .to_owned();
    let bad = env.shipmate(&release("shop:4")).await;
    assert_eq!(bad.code, Some(6));
    let report = bad.report();
    assert_eq!(service_report(&report, "worker")["outcome"], "rolled_back");
    assert_eq!(service_report(&report, "web")["outcome"], "not_deployed");
    assert_eq!(
        describe_service(&env, "web").await.task_definition(),
        Some(web_2.as_str())
    );
    assert_ne!(web_2, web_1);
    assert!(wait_steady(&env, "worker").await.task_definition() != Some(worker_1.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_after_a_kill_between_waves_still_rolls_back_what_the_first_run_took_live() {
    let (env, web_1, worker_1) = shop_env().await;
    let config = env.dir.path().join("shipmate.toml");
    std::fs::write(
        &config,
        "[service]\nservices = [\"web\", \"worker\"]\n\n[deploy]\nwaves = [[\"web\"], [\"worker\"]]\nrollback = true\n",
    )
    .expect("config");
    let config_arg = config.to_str().expect("utf-8 path");
    let args = [
        "deploy",
        "--config",
        config_arg,
        "--cluster",
        CLUSTER,
        "--image",
        "shop:4",
        "--migrate",
        "true",
        "--poll-interval",
        "200ms",
        "--log-quiet-period",
        "500ms",
        "--output",
        "json",
    ];
    // Killed once the web's wave went live; the worker's may have started too. Either way the
    // re-run must find what the first run did and take both back.
    let first = env.command(&args).spawn().expect("spawn");
    eventually(Duration::from_secs(60), || async {
        let web = describe_service(&env, "web").await;
        (web.task_definition() != Some(web_1.as_str())
            && web.deployments().len() == 1
            && web.running_count() == 2)
            .then_some(())
    })
    .await
    .expect("the web went live");
    kill(
        Pid::from_raw(i32::try_from(first.id().expect("pid")).expect("pid")),
        Signal::SIGKILL,
    )
    .expect("SIGKILL");
    finish(first).await;

    let again = env.shipmate(&args).await;
    assert_eq!(again.code, Some(6), "the worker cannot start");
    let report = again.report();
    assert_eq!(service_report(&report, "web")["outcome"], "rolled_back");
    // The web the first run took live went back with the worker.
    assert_back_on(&env, &web_1, &worker_1).await;
    assert_eq!(
        migrations(&env).await.len(),
        1,
        "the re-run did not migrate again"
    );
    assert!(open_ledger_entries(&env).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_pause_hook_every_service_waits_for_the_one_migration() {
    let (env, _, _) = shop_env().await;
    let outcome = env
        .shipmate(&release_args(
            &["web", "worker"],
            "shop:2",
            &[
                "--migrate",
                MIGRATE_OK,
                "--gate",
                "pause-hook",
                "--output",
                "json",
            ],
        ))
        .await;
    assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
    let migrations = migrations(&env).await;
    assert_eq!(migrations.len(), 1, "one migration for both");
    let migration_started = migrations[0]
        .created_at()
        .and_then(|d| d.to_millis().ok())
        .expect("createdAt");
    for service in ["web", "worker"] {
        let record = current_record(&env, service).await;
        assert_eq!(record.status().map(|s| s.as_str()), Some("SUCCESSFUL"));
        let created = record
            .created_at()
            .and_then(|d| d.to_millis().ok())
            .expect("createdAt");
        assert!(
            created <= migration_started,
            "{service}'s deployment was started (and paused) before the migration"
        );
        let view = describe_service(&env, service).await;
        let hooks = view
            .deployment_configuration()
            .map_or(0, |c| c.lifecycle_hooks().len());
        assert_eq!(hooks, 0, "{service} keeps no hook");
    }
    let paused: Vec<String> = outcome
        .json_lines()
        .iter()
        .filter(|l| l["event"] == "deployment_paused")
        .filter_map(|l| l["service"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(paused.len(), 2, "both paused: {paused:?}");

    // A failing migration: both deployments roll back, both services stay.
    let failed = env
        .shipmate(&release_args(
            &["web", "worker"],
            "shop:3",
            &["--migrate", "sh -c 'exit 1'", "--gate", "pause-hook"],
        ))
        .await;
    assert_eq!(failed.code, Some(4), "{}", failed.stderr);
    for service in ["web", "worker"] {
        let rolled_back = eventually(Duration::from_secs(30), || async {
            let record = current_record(&env, service).await;
            (record.status().map(|s| s.as_str()) == Some("ROLLBACK_SUCCESSFUL")).then_some(())
        })
        .await;
        assert!(rolled_back.is_some(), "{service} rolled back");
        let steady = wait_steady(&env, service).await;
        assert!(
            steady
                .task_definition()
                .is_some_and(|td| td.ends_with(&format!("{service}:2"))),
            "{service} stays on the last release"
        );
    }
}
