//! ECS services through aws-sdk-rust: every service operation parses, the ServicesStable waiter
//! after an UpdateService, a rolling deployment to a good image reaching steady state, and a
//! crashing image tripping the deployment circuit breaker, which rolls back.

use std::time::Duration;

use aws_sdk_ecs::client::Waiters;
use aws_sdk_ecs::types::{
    DeploymentCircuitBreaker, DeploymentConfiguration, DeploymentRolloutState, LaunchType, Tag,
};
use shipmate_local_conformance::{
    Endpoint, container, network_configuration, poll, register_fargate,
};

/// Services roll tasks one batch at a time and ECS counts a task healthy only after a while.
const SERVICE_DEADLINE: Duration = Duration::from_secs(180);
/// Waiters poll every 15 s (services) at least; this bounds a wait, not a test.
const WAITER_MAX: Duration = Duration::from_secs(240);

/// A cluster `life` and revisions web:1 (serves) and web:2 (`second` as its script).
/// Service tasks carry their deployment's ID in `startedBy` and `service:web` as their group.
async fn setup(endpoint: &Endpoint, second: &str) {
    endpoint.create_cluster("life").await;
    endpoint.push(
        "web:1",
        &[("serve.sh", "echo serving v1\nexec sleep 3600\n")],
    );
    endpoint.push("web:2", &[("serve.sh", second)]);
    for image in ["web:1", "web:2"] {
        register_fargate(
            endpoint,
            "web",
            vec![container("web", image, &["/bin/sh", "serve.sh"])],
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_operation_parses() {
    let endpoint = Endpoint::start().await;
    let ecs = &endpoint.ecs;
    setup(&endpoint, "echo serving v2\nexec sleep 3600\n").await;
    let tag = |key: &str, value: &str| Tag::builder().key(key).value(value).build();
    ecs.create_service()
        .cluster("life")
        .service_name("web")
        .task_definition("web:1")
        .desired_count(2)
        .launch_type(LaunchType::Fargate)
        .network_configuration(network_configuration())
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .maximum_percent(200)
                .minimum_healthy_percent(50)
                .deployment_circuit_breaker(
                    DeploymentCircuitBreaker::builder()
                        .enable(true)
                        .rollback(true)
                        .build(),
                )
                .build(),
        )
        .tags(tag("app", "web"))
        .send()
        .await
        .expect("CreateService");
    let updated = ecs
        .update_service()
        .cluster("life")
        .service("web")
        .task_definition("web:2")
        .send()
        .await
        .expect("UpdateService");
    assert!(
        updated
            .service()
            .is_some_and(|s| s.deployments().len() == 2),
        "{updated:?}"
    );
    let services = ecs
        .describe_services()
        .cluster("life")
        .services("web")
        .services("missing")
        .send()
        .await
        .expect("DescribeServices");
    assert_eq!(services.services().len(), 1);
    assert_eq!(services.failures()[0].reason(), Some("MISSING"));
    let listed = ecs
        .list_services()
        .cluster("life")
        .send()
        .await
        .expect("ListServices");
    assert_eq!(listed.service_arns().len(), 1);
    ecs.update_service()
        .cluster("life")
        .service("web")
        .desired_count(0)
        .send()
        .await
        .expect("UpdateService desiredCount");
    let deleted = ecs
        .delete_service()
        .cluster("life")
        .service("web")
        .force(true)
        .send()
        .await
        .expect("DeleteService");
    assert!(
        deleted
            .service()
            .and_then(|s| s.status())
            .is_some_and(|status| status != "ACTIVE"),
        "{deleted:?}"
    );
    let error = ecs
        .update_service()
        .cluster("life")
        .service("nope")
        .desired_count(1)
        .send()
        .await
        .expect_err("no service");
    assert!(
        error
            .as_service_error()
            .is_some_and(|e| e.is_service_not_found_exception()),
        "{error:?}"
    );
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_stable_waiter_after_update_service() {
    let endpoint = Endpoint::start().await;
    setup(&endpoint, "echo serving v2\nexec sleep 3600\n").await;
    create_service(&endpoint, "web:1", 2, 50).await;
    endpoint
        .ecs
        .wait_until_services_stable()
        .cluster("life")
        .services("web")
        .wait(WAITER_MAX)
        .await
        .expect("the new service becomes stable");

    let updated = endpoint
        .ecs
        .update_service()
        .cluster("life")
        .service("web")
        .task_definition("web:2")
        .send()
        .await
        .expect("UpdateService");
    let service = updated.service().expect("service");
    assert_eq!(
        service.deployments().len(),
        2,
        "a new PRIMARY beside the old ACTIVE one: {service:?}"
    );

    let final_poll = endpoint
        .ecs
        .wait_until_services_stable()
        .cluster("life")
        .services("web")
        .wait(WAITER_MAX)
        .await
        .expect("ServicesStable waiter succeeds after the update");
    let described = final_poll.as_result().expect("success");
    let service = &described.services()[0];
    assert_eq!(service.running_count(), 2);
    let [deployment] = service.deployments() else {
        panic!("one deployment when stable: {service:?}")
    };
    assert!(
        deployment
            .task_definition()
            .is_some_and(|arn| arn.ends_with("web:2")),
        "{deployment:?}"
    );
    assert_eq!(deployment.status(), Some("PRIMARY"));

    let running = endpoint
        .ecs
        .list_tasks()
        .cluster("life")
        .service_name("web")
        .send()
        .await
        .expect("ListTasks");
    let tasks = endpoint
        .ecs
        .describe_tasks()
        .cluster("life")
        .set_tasks(Some(running.task_arns().to_vec()))
        .send()
        .await
        .expect("DescribeTasks");
    assert_eq!(tasks.tasks().len(), 2, "{tasks:?}");
    for task in tasks.tasks() {
        assert_eq!(task.last_status(), Some("RUNNING"));
        assert!(
            task.task_definition_arn()
                .is_some_and(|arn| arn.ends_with("web:2")),
            "{task:?}"
        );
        assert_eq!(task.group(), Some("service:web"));
    }
    endpoint.shutdown().await;
}

async fn create_service(endpoint: &Endpoint, revision: &str, desired: i32, minimum_healthy: i32) {
    endpoint
        .ecs
        .create_service()
        .cluster("life")
        .service_name("web")
        .task_definition(revision)
        .desired_count(desired)
        .launch_type(LaunchType::Fargate)
        .network_configuration(network_configuration())
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .minimum_healthy_percent(minimum_healthy)
                .maximum_percent(200)
                .deployment_circuit_breaker(
                    DeploymentCircuitBreaker::builder()
                        .enable(true)
                        .rollback(true)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("CreateService");
}

async fn describe_service(endpoint: &Endpoint) -> aws_sdk_ecs::types::Service {
    endpoint
        .ecs
        .describe_services()
        .cluster("life")
        .services("web")
        .send()
        .await
        .expect("DescribeServices")
        .services()
        .first()
        .cloned()
        .expect("service web")
}

/// Steady: one deployment, COMPLETED, on `revision`, with every desired task running.
async fn await_steady(endpoint: &Endpoint, revision: &str) -> aws_sdk_ecs::types::Service {
    poll(
        &format!("service web to be steady on {revision}"),
        SERVICE_DEADLINE,
        || async {
            let service = describe_service(endpoint).await;
            let [deployment] = service.deployments() else {
                return None;
            };
            let steady = deployment
                .task_definition()
                .is_some_and(|arn| arn.ends_with(revision))
                && deployment.rollout_state() == Some(&DeploymentRolloutState::Completed)
                && service.running_count() == service.desired_count();
            steady.then_some(service)
        },
    )
    .await
}

fn messages(service: &aws_sdk_ecs::types::Service) -> Vec<String> {
    service
        .events()
        .iter()
        .filter_map(|event| event.message().map(str::to_owned))
        .collect()
}

async fn update_to(endpoint: &Endpoint, revision: &str) -> aws_sdk_ecs::types::Service {
    endpoint
        .ecs
        .update_service()
        .cluster("life")
        .service("web")
        .task_definition(revision)
        .send()
        .await
        .expect("UpdateService")
        .service()
        .cloned()
        .expect("UpdateService returns the service")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_rolling_to_a_good_image_reaches_steady_state() {
    let endpoint = Endpoint::start().await;
    setup(&endpoint, "echo serving v2\nexec sleep 3600\n").await;
    create_service(&endpoint, "web:1", 2, 100).await;
    await_steady(&endpoint, "web:1").await;
    update_to(&endpoint, "web:2").await;
    let service = await_steady(&endpoint, "web:2").await;
    assert_eq!(service.running_count(), 2);
    assert_eq!(service.deployments()[0].status(), Some("PRIMARY"));
    let events = messages(&service);
    assert!(
        events
            .iter()
            .any(|message| message == "(service web) has reached a steady state."),
        "{events:?}"
    );
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_image_trips_the_circuit_breaker_and_rolls_back() {
    let endpoint = Endpoint::start().await;
    setup(&endpoint, "echo boom >&2\nexit 1\n").await;
    create_service(&endpoint, "web:1", 1, 100).await;
    let stable = await_steady(&endpoint, "web:1").await;
    let good_id = stable.deployments()[0]
        .id()
        .expect("deployment id")
        .to_owned();
    let updated = update_to(&endpoint, "web:2").await;
    let bad_id = updated
        .deployments()
        .iter()
        .find(|deployment| deployment.status() == Some("PRIMARY"))
        .and_then(|deployment| deployment.id())
        .expect("the new PRIMARY deployment")
        .to_owned();
    assert_ne!(good_id, bad_id);

    // The failed deployment is gone from deployments[] once the rollback completes, so the
    // outcome is read from the events and from the tasks the bad deployment started.
    let service = await_steady(&endpoint, "web:1").await;
    assert!(
        service
            .task_definition()
            .is_some_and(|arn| arn.ends_with("web:1")),
        "{service:?}"
    );
    let events = messages(&service);
    let failed =
        format!("(service web) (deployment {bad_id}) deployment failed: tasks failed to start.");
    let rolling_back = format!("(service web) rolling back to deployment {good_id}.");
    assert!(events.contains(&failed), "{events:?}");
    assert!(events.contains(&rolling_back), "{events:?}");

    // Desired 1: the breaker's threshold is clamped up to 3 failed tasks.
    let crashed = endpoint
        .ecs
        .list_tasks()
        .cluster("life")
        .started_by(&bad_id)
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
        .send()
        .await
        .expect("ListTasks of the failed deployment");
    assert!(crashed.task_arns().len() >= 3, "{crashed:?}");
    let described = endpoint
        .ecs
        .describe_tasks()
        .cluster("life")
        .set_tasks(Some(crashed.task_arns().to_vec()))
        .send()
        .await
        .expect("DescribeTasks");
    for task in described.tasks() {
        assert_eq!(task.containers()[0].exit_code(), Some(1), "{task:?}");
        assert_eq!(task.group(), Some("service:web"));
    }
    endpoint.shutdown().await;
}
