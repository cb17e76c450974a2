//! Every ECS cluster, task definition, task and tag operation through aws-sdk-rust, whose
//! deserializers are strict (a number where the model says string fails the whole call): each
//! call must succeed and parse, with inputs rich enough that optional members appear (tasks that
//! ran, failed, failed to start and were stopped; tags). Modeled errors must arrive as the SDK's
//! typed variants. Service operations: `services.rs`.

use aws_sdk_ecs::operation::run_task::RunTaskError;
use aws_sdk_ecs::types::{
    ClusterField, ClusterSetting, ClusterSettingName, ContainerOverride, LaunchType, SortOrder,
    Tag, Task, TaskDefinitionFamilyStatus, TaskDefinitionField, TaskDefinitionStatus, TaskField,
    TaskOverride,
};
use shipmate_local_conformance::{
    Endpoint, awslogs, container, network_configuration, poll, register_fargate,
};

const CLUSTER: &str = "every";
const GROUP: &str = "/every/app";

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ecs_operation_parses() {
    let endpoint = Endpoint::start().await;
    let ecs = &endpoint.ecs;
    endpoint.create_log_group(GROUP).await;
    endpoint.push("every:1", &[("app.sh", APP_SH)]);
    endpoint.push("every:2", &[("app.sh", APP_SH)]);

    let created = ecs
        .create_cluster()
        .cluster_name(CLUSTER)
        .tags(tag("team", "conformance"))
        .settings(
            ClusterSetting::builder()
                .name(ClusterSettingName::ContainerInsights)
                .value("disabled")
                .build(),
        )
        .send()
        .await
        .expect("CreateCluster");
    let cluster_arn = created
        .cluster()
        .and_then(|c| c.cluster_arn())
        .expect("clusterArn")
        .to_owned();
    ecs.create_cluster()
        .cluster_name("every-empty")
        .send()
        .await
        .expect("CreateCluster");
    let clusters = ecs
        .describe_clusters()
        .clusters(CLUSTER)
        .clusters("every-missing")
        .include(ClusterField::Statistics)
        .include(ClusterField::Tags)
        .include(ClusterField::Settings)
        .send()
        .await
        .expect("DescribeClusters");
    assert_eq!(clusters.clusters().len(), 1);
    assert_eq!(clusters.failures()[0].reason(), Some("MISSING"));
    let listed = ecs.list_clusters().send().await.expect("ListClusters");
    assert!(listed.cluster_arns().contains(&cluster_arn));

    let mut app = container("app", "every:1", &["/bin/sh", "app.sh", "serve"]);
    app.log_configuration = Some(awslogs(GROUP, "app"));
    app.stop_timeout = Some(5);
    let mut sidecar = container("sidecar", "every:1", &["/bin/sh", "app.sh", "exit", "0"]);
    sidecar.essential = Some(false);
    let v1 = register_fargate(&endpoint, "every", vec![app.clone(), sidecar]).await;
    let mut app2 = app.clone();
    app2.image = Some("every:2".into());
    register_fargate(&endpoint, "every", vec![app2]).await;
    register_fargate(&endpoint, "every-old", vec![app.clone()]).await;
    register_fargate(
        &endpoint,
        "every-nopull",
        vec![container("app", "every/never-pushed:1", &["/bin/true"])],
    )
    .await;
    let described = ecs
        .describe_task_definition()
        .task_definition("every")
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .expect("DescribeTaskDefinition");
    assert_eq!(described.task_definition().map(|d| d.revision()), Some(2));
    let families = ecs
        .list_task_definition_families()
        .family_prefix("every")
        .send()
        .await
        .expect("ListTaskDefinitionFamilies");
    assert_eq!(families.families().len(), 3, "{families:?}");
    let definitions = ecs
        .list_task_definitions()
        .family_prefix("every")
        .sort(SortOrder::Desc)
        .send()
        .await
        .expect("ListTaskDefinitions");
    assert_eq!(
        definitions.task_definition_arns().len(),
        2,
        "{definitions:?}"
    );
    let deregistered = ecs
        .deregister_task_definition()
        .task_definition("every-old:1")
        .send()
        .await
        .expect("DeregisterTaskDefinition");
    assert_eq!(
        deregistered.task_definition().and_then(|d| d.status()),
        Some(&TaskDefinitionStatus::Inactive)
    );
    ecs.list_task_definition_families()
        .status(TaskDefinitionFamilyStatus::Inactive)
        .send()
        .await
        .expect("ListTaskDefinitionFamilies INACTIVE");

    let run = |family: &'static str,
               command: &'static [&'static str],
               started_by: Option<&'static str>| {
        let ecs = ecs.clone();
        async move {
            let output = ecs
                .run_task()
                .cluster(CLUSTER)
                .task_definition(family)
                .launch_type(LaunchType::Fargate)
                .network_configuration(network_configuration())
                .set_started_by(started_by.map(str::to_owned))
                .tags(tag("kind", "one-off"))
                .overrides(
                    TaskOverride::builder()
                        .container_overrides(
                            ContainerOverride::builder()
                                .name("app")
                                .set_command(Some(command.iter().map(|c| c.to_string()).collect()))
                                .build(),
                        )
                        .build(),
                )
                .send()
                .await
                .expect("RunTask");
            output.tasks()[0].task_arn().expect("taskArn").to_owned()
        }
    };
    let exited = run(
        "every",
        &["/bin/sh", "app.sh", "exit", "3"],
        Some("every-test"),
    )
    .await;
    let sleeper = run("every:1", &["/bin/sh", "app.sh", "sleep", "300"], None).await;
    let never = run("every-nopull", &["/bin/true"], None).await;
    endpoint
        .await_task_status(CLUSTER, &sleeper, "RUNNING")
        .await;
    let running = ecs
        .list_tasks()
        .cluster(CLUSTER)
        .send()
        .await
        .expect("ListTasks");
    assert!(running.task_arns().contains(&sleeper), "{running:?}");
    let stopped = ecs
        .stop_task()
        .cluster(CLUSTER)
        .task(&sleeper)
        .reason("every: stop")
        .send()
        .await
        .expect("StopTask");
    assert_eq!(
        stopped.task().and_then(|t| t.desired_status()),
        Some("STOPPED")
    );
    let all = [exited.clone(), sleeper.clone(), never.clone()];
    let tasks = poll(
        "every task to stop",
        shipmate_local_conformance::DEADLINE,
        || async {
            let output = ecs
                .describe_tasks()
                .cluster(CLUSTER)
                .set_tasks(Some(all.to_vec()))
                .tasks("0123456789abcdef0123456789abcdef")
                .include(TaskField::Tags)
                .send()
                .await
                .expect("DescribeTasks");
            output
                .tasks()
                .iter()
                .all(|t| t.last_status() == Some("STOPPED"))
                .then_some(output)
        },
    )
    .await;
    assert_eq!(tasks.tasks().len(), 3);
    assert_eq!(tasks.failures()[0].reason(), Some("MISSING"));
    let by_starter = ecs
        .list_tasks()
        .cluster(CLUSTER)
        .started_by("every-test")
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
        .send()
        .await
        .expect("ListTasks startedBy");
    assert_eq!(by_starter.task_arns(), std::slice::from_ref(&exited));

    for arn in [cluster_arn.as_str(), v1.task_definition_arn().expect("arn")] {
        ecs.tag_resource()
            .resource_arn(arn)
            .tags(tag("stage", "test"))
            .tags(tag("x", ""))
            .send()
            .await
            .expect("TagResource");
        ecs.untag_resource()
            .resource_arn(arn)
            .tag_keys("x")
            .send()
            .await
            .expect("UntagResource");
        let tags = ecs
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .expect("ListTagsForResource");
        assert!(
            tags.tags().iter().any(|t| t.key() == Some("stage")),
            "{arn}: {tags:?}"
        );
        assert!(
            !tags.tags().iter().any(|t| t.key() == Some("x")),
            "{arn}: {tags:?}"
        );
    }

    let deleted_cluster = ecs
        .delete_cluster()
        .cluster("every-empty")
        .send()
        .await
        .expect("DeleteCluster");
    assert_eq!(
        deleted_cluster.cluster().and_then(|c| c.status()),
        Some("INACTIVE")
    );

    let error = ecs
        .run_task()
        .cluster("nope")
        .task_definition("every")
        .send()
        .await
        .expect_err("no cluster");
    assert!(
        error
            .as_service_error()
            .is_some_and(|e| e.is_cluster_not_found_exception()),
        "{error:?}"
    );
    let error = ecs
        .describe_task_definition()
        .task_definition("nope")
        .send()
        .await
        .expect_err("no family");
    assert!(
        error
            .as_service_error()
            .is_some_and(|e| e.is_client_exception()),
        "{error:?}"
    );
    endpoint.shutdown().await;
}

const APP_SH: &str = "case \"$1\" in\n  exit) echo \"exiting $2\"; exit \"$2\" ;;\n  sleep) echo sleeping; exec sleep \"$2\" ;;\n  serve) echo serving; exec sleep 3600 ;;\nesac\n";

/// RunTask with a `clientToken`, as the SDK sends it.
async fn run_with_token(endpoint: &Endpoint, command: &[&str], token: &str) -> Vec<Task> {
    endpoint
        .ecs
        .run_task()
        .cluster(CLUSTER)
        .task_definition("token")
        .launch_type(LaunchType::Fargate)
        .network_configuration(network_configuration())
        .client_token(token)
        .overrides(
            TaskOverride::builder()
                .container_overrides(
                    ContainerOverride::builder()
                        .name("app")
                        .set_command(Some(command.iter().map(|c| c.to_string()).collect()))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|error| panic!("RunTask {token}: {error:?}"))
        .tasks()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_client_token_parses_trimmed_for_a_stopped_task_and_full_for_a_running_one() {
    let endpoint = Endpoint::start().await;
    endpoint.push("token:1", &[("app.sh", APP_SH)]);
    endpoint.create_cluster(CLUSTER).await;
    register_fargate(
        &endpoint,
        "token",
        vec![container(
            "app",
            "token:1",
            &["/bin/sh", "app.sh", "exit", "0"],
        )],
    )
    .await;

    let exits = ["/bin/sh", "app.sh", "exit", "0"];
    let first = run_with_token(&endpoint, &exits, "release-7-migrate").await;
    let arn = first[0].task_arn().expect("taskArn").to_owned();
    endpoint.await_task_status(CLUSTER, &arn, "STOPPED").await;
    let replayed = run_with_token(&endpoint, &exits, "release-7-migrate").await;
    assert_eq!(replayed.len(), 1);
    let task = &replayed[0];
    assert_eq!(task.task_arn(), Some(arn.as_str()));
    assert_eq!(task.last_status(), Some("STOPPED"));
    assert_eq!(task.desired_status(), Some("STOPPED"));
    // Nothing else: the SDK fills the plain members with their defaults.
    assert_eq!(task.cluster_arn(), None);
    assert!(task.containers().is_empty(), "{task:?}");
    assert_eq!(task.stopped_at(), None);
    assert_eq!(task.version(), 0);

    let sleeps = ["/bin/sh", "app.sh", "sleep", "300"];
    let first = run_with_token(&endpoint, &sleeps, "release-7-lock").await;
    let arn = first[0].task_arn().expect("taskArn").to_owned();
    endpoint.await_task_status(CLUSTER, &arn, "RUNNING").await;
    let replayed = run_with_token(&endpoint, &sleeps, "release-7-lock").await;
    let task = &replayed[0];
    assert_eq!(task.task_arn(), Some(arn.as_str()));
    assert_eq!(task.last_status(), Some("RUNNING"));
    assert!(task.cluster_arn().is_some(), "{task:?}");
    assert_eq!(task.containers().len(), 1, "{task:?}");

    let conflict = endpoint
        .ecs
        .run_task()
        .cluster(CLUSTER)
        .task_definition("token")
        .launch_type(LaunchType::Fargate)
        .network_configuration(network_configuration())
        .client_token("release-7-lock")
        .send()
        .await
        .expect_err("a different request with the same token");
    match conflict.as_service_error() {
        Some(RunTaskError::ConflictException(conflict)) => {
            assert_eq!(conflict.resource_ids(), std::slice::from_ref(&arn));
        }
        other => panic!("expected ConflictException, got {other:?}"),
    }
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_response_fault_reaches_the_sdk_as_a_success_with_every_member_missing() {
    let endpoint = Endpoint::start().await;
    endpoint.create_cluster(CLUSTER).await;
    register_fargate(
        &endpoint,
        "empty",
        vec![container("app", "empty:1", &["/bin/true"])],
    )
    .await;
    endpoint.server().answer_empty("DescribeTaskDefinition", 1);
    endpoint.server().answer_empty("DescribeTasks", 1);
    let described = endpoint
        .ecs
        .describe_task_definition()
        .task_definition("empty")
        .send()
        .await
        .expect("an empty object parses");
    assert!(described.task_definition().is_none(), "{described:?}");
    let tasks = endpoint
        .ecs
        .describe_tasks()
        .cluster(CLUSTER)
        .tasks("0123456789abcdef0123456789abcdef")
        .send()
        .await
        .expect("an empty object parses");
    assert!(tasks.tasks().is_empty() && tasks.failures().is_empty());
    // The faults are used up: the next call is answered by the engine.
    let described = endpoint
        .ecs
        .describe_task_definition()
        .task_definition("empty")
        .send()
        .await
        .expect("DescribeTaskDefinition");
    assert_eq!(described.task_definition().map(|d| d.revision()), Some(1));
    endpoint.shutdown().await;
}
