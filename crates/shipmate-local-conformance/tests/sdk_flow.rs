//! The seed buildspec's flow through aws-sdk-rust instead of the AWS CLI, with the SDK's own
//! TasksStopped waiter. The ServicesStable waiter after UpdateService: `services.rs`.

use std::time::Duration;

use aws_sdk_ecs::client::Waiters;
use aws_sdk_ecs::types::{ContainerOverride, KeyValuePair, LaunchType, TaskOverride, TaskStopCode};
use shipmate_local_conformance::{
    Endpoint, awslogs, container, network_configuration, register_fargate, task_id,
};

const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/migration/web:build-7";
const MIGRATION_LINES: [&str; 4] = [
    "Operations to perform:",
    "Running migrations:",
    "  Applying polls.0001_initial... OK",
    "  Applying polls.0002_question_votes... OK",
];
/// Waiters poll every 6 s (tasks) and 15 s (services) at least; this bounds a wait, not a test.
const WAITER_MAX: Duration = Duration::from_secs(180);

fn manage_sh() -> String {
    let mut script: String = MIGRATION_LINES
        .iter()
        .map(|line| format!("echo '{line}'\n"))
        .collect();
    script.push_str("exit \"${MIGRATE_EXIT:-0}\"\n");
    script
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buildspec_flow_with_the_tasks_stopped_waiter() {
    let endpoint = Endpoint::start().await;
    let (cluster, group) = ("django", "/ecs/migrate");
    endpoint.create_cluster(cluster).await;
    endpoint.create_log_group(group).await;
    let mut web = container("web", IMAGE, &["/bin/sh", "-c", "exit 99"]);
    web.log_configuration = Some(awslogs(group, "migrate"));
    let definition = register_fargate(&endpoint, "migrate-web", vec![web]).await;
    assert_eq!(definition.revision(), 1);
    assert_eq!(definition.cpu(), Some("256"));
    endpoint.push(IMAGE, &[("manage.sh", &manage_sh())]);

    let mut started = Vec::new();
    for exit_code in [0, 3] {
        let output = endpoint
            .ecs
            .run_task()
            .cluster(cluster)
            .task_definition("migrate-web")
            .launch_type(LaunchType::Fargate)
            .network_configuration(network_configuration())
            .overrides(
                TaskOverride::builder()
                    .container_overrides(
                        ContainerOverride::builder()
                            .name("web")
                            .command("/bin/sh")
                            .command("manage.sh")
                            .command("migrate")
                            .environment(
                                KeyValuePair::builder()
                                    .name("MIGRATE_EXIT")
                                    .value(exit_code.to_string())
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("RunTask");
        assert!(output.failures().is_empty(), "{:?}", output.failures());
        let [task] = output.tasks() else {
            panic!("one task expected: {output:?}")
        };
        started.push((task.task_arn().expect("taskArn").to_owned(), exit_code));
    }

    let final_poll = endpoint
        .ecs
        .wait_until_tasks_stopped()
        .cluster(cluster)
        .set_tasks(Some(started.iter().map(|(arn, _)| arn.clone()).collect()))
        .wait(WAITER_MAX)
        .await
        .expect("TasksStopped waiter succeeds");
    let described = final_poll.as_result().expect("the final poll is a success");
    assert_eq!(described.tasks().len(), 2);

    for (arn, exit_code) in &started {
        let task = described
            .tasks()
            .iter()
            .find(|task| task.task_arn() == Some(arn))
            .expect("both tasks described");
        assert_eq!(task.last_status(), Some("STOPPED"));
        assert_eq!(
            task.stop_code(),
            Some(&TaskStopCode::EssentialContainerExited)
        );
        assert_eq!(task.containers()[0].exit_code(), Some(*exit_code));
        let stream = format!("migrate/web/{}", task_id(arn));
        let messages = shipmate_local_conformance::poll(
            &format!("the lines of {stream}"),
            shipmate_local_conformance::DEADLINE,
            || async {
                let messages = endpoint.log_messages(group, &stream).await;
                (messages.len() >= MIGRATION_LINES.len()).then_some(messages)
            },
        )
        .await;
        assert_eq!(messages, MIGRATION_LINES);
    }
    endpoint.shutdown().await;
}
