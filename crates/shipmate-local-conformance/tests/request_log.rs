//! The request log as a test of a client reads it: each call's body is the JSON aws-sdk-rust
//! sent, so a test can assert on exactly what a client asked ECS for.

use aws_sdk_ecs::types::{ContainerOverride, LaunchType, TaskOverride};
use serde_json::json;
use shipmate_local_conformance::{Endpoint, container, network_configuration, register_fargate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_record_holds_the_body_the_sdk_sent() {
    let endpoint = Endpoint::start().await;
    endpoint.create_cluster("bodies").await;
    endpoint.push("app:1", &[("run.sh", "exit 0\n")]);
    register_fargate(
        &endpoint,
        "app",
        vec![container("app", "app:1", &["/bin/sh", "run.sh"])],
    )
    .await;
    endpoint
        .ecs
        .run_task()
        .cluster("bodies")
        .task_definition("app")
        .launch_type(LaunchType::Fargate)
        .network_configuration(network_configuration())
        .overrides(
            TaskOverride::builder()
                .container_overrides(
                    ContainerOverride::builder()
                        .name("app")
                        .command("migrate")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("RunTask");

    let records = endpoint.server().request_log().records();
    let body_of = |operation: &str| {
        records
            .iter()
            .find(|record| record.operation.as_deref() == Some(operation))
            .and_then(|record| record.body.clone())
            .unwrap_or_else(|| panic!("no {operation} body in {records:?}"))
    };
    let registered = body_of("RegisterTaskDefinition");
    assert_eq!(registered["family"], "app");
    assert_eq!(registered["cpu"], "256");
    assert_eq!(registered["containerDefinitions"][0]["image"], "app:1");
    let run = body_of("RunTask");
    assert_eq!(
        run["overrides"],
        json!({"containerOverrides": [{"name": "app", "command": ["migrate"]}]})
    );
    assert_eq!(run["launchType"], "FARGATE");
    endpoint.shutdown().await;
}
