//! Test-only crate: the conformance suites of `shipmate local` live in `tests/`. They drive the
//! endpoint the way users do, through the official aws-sdk-rust clients, and fuzz its request
//! decoder with inputs shaped after botocore's service models (`fixtures/input-shapes.json`).
//!
//! This library is their harness: an in-process endpoint on a free loopback port with ECS and
//! CloudWatch Logs clients pointed at it, image pushes, and polling with a deadline.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, LogConfiguration,
    LogDriver, NetworkConfiguration, NetworkMode,
};
use shipmate_local_server::{RunningServer, ServerConfig};

/// Generous: the machine running the tests is shared and often loaded.
pub const DEADLINE: Duration = Duration::from_secs(60);
pub const REGION: &str = "us-east-1";

/// `shipmate local` running in this process, and SDK clients that reach it only through the
/// endpoint URL, as a user's would.
pub struct Endpoint {
    server: RunningServer,
    pub ecs: aws_sdk_ecs::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
}

impl Endpoint {
    pub async fn start() -> Endpoint {
        Endpoint::start_with(ServerConfig::default()).await
    }

    /// The same with a configuration of its own (rate limits, …); `listen` stays as given.
    pub async fn start_with(config: ServerConfig) -> Endpoint {
        let server = shipmate_local_server::start(config)
            .await
            .expect("the in-process endpoint starts");
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(server.endpoint_url())
            .region(aws_config::Region::new(REGION))
            .test_credentials()
            .load()
            .await;
        Endpoint {
            ecs: aws_sdk_ecs::Client::new(&config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            server,
        }
    }

    pub fn server(&self) -> &RunningServer {
        &self.server
    }

    /// Pushes an image made of `files` (name, content) under `image`.
    pub fn push(&self, image: &str, files: &[(&str, &str)]) {
        let directory = tempfile::tempdir().expect("temporary image directory");
        for (name, content) in files {
            write_file(&directory.path().join(name), content);
        }
        self.server
            .engine()
            .images
            .push_dir(image, directory.path())
            .unwrap_or_else(|error| panic!("pushing image `{image}`: {error}"));
    }

    /// Stops the endpoint and every process it started.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }

    pub async fn create_cluster(&self, name: &str) {
        self.ecs
            .create_cluster()
            .cluster_name(name)
            .send()
            .await
            .unwrap_or_else(|error| panic!("CreateCluster {name}: {error:?}"));
    }

    pub async fn create_log_group(&self, name: &str) {
        self.logs
            .create_log_group()
            .log_group_name(name)
            .send()
            .await
            .unwrap_or_else(|error| panic!("CreateLogGroup {name}: {error:?}"));
    }

    /// DescribeTasks of one task, which must exist.
    pub async fn describe_task(&self, cluster: &str, task_arn: &str) -> aws_sdk_ecs::types::Task {
        let output = self
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .tasks(task_arn)
            .send()
            .await
            .unwrap_or_else(|error| panic!("DescribeTasks {task_arn}: {error:?}"));
        output
            .tasks()
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("DescribeTasks: no task {task_arn}: {output:?}"))
    }

    /// Polls DescribeTasks until the task's lastStatus is `status`.
    pub async fn await_task_status(
        &self,
        cluster: &str,
        task_arn: &str,
        status: &str,
    ) -> aws_sdk_ecs::types::Task {
        poll(
            &format!("task {task_arn} to be {status}"),
            DEADLINE,
            || async {
                let task = self.describe_task(cluster, task_arn).await;
                (task.last_status() == Some(status)).then_some(task)
            },
        )
        .await
    }

    /// All messages of a log stream, oldest first (GetLogEvents from the head, every page).
    pub async fn log_messages(&self, group: &str, stream: &str) -> Vec<String> {
        let mut messages = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .logs
                .get_log_events()
                .log_group_name(group)
                .log_stream_name(stream)
                .start_from_head(true)
                .set_next_token(token.clone())
                .send()
                .await
                .unwrap_or_else(|error| panic!("GetLogEvents {group} {stream}: {error:?}"));
            messages.extend(
                page.events()
                    .iter()
                    .filter_map(|event| event.message().map(str::to_owned)),
            );
            let next = page.next_forward_token().map(str::to_owned);
            if next.is_none() || next == token {
                return messages;
            }
            token = next;
        }
    }
}

/// Calls `check` until it returns `Some`, every 100 ms, failing with `what` after `deadline`.
pub async fn poll<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The awsvpc network configuration of the seed buildspec's `run-task`.
pub fn network_configuration() -> NetworkConfiguration {
    NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .subnets("subnet-1")
                .security_groups("sg-1")
                .assign_public_ip(AssignPublicIp::Enabled)
                .build()
                .expect("subnets are set"),
        )
        .build()
}

/// An awslogs configuration writing to `group` with stream prefix `prefix`.
pub fn awslogs(group: &str, prefix: &str) -> LogConfiguration {
    LogConfiguration::builder()
        .log_driver(LogDriver::Awslogs)
        .options("awslogs-group", group)
        .options("awslogs-region", REGION)
        .options("awslogs-stream-prefix", prefix)
        .build()
        .expect("log driver is set")
}

/// A container named `name` running `command` (no shell unless the command has one).
pub fn container(name: &str, image: &str, command: &[&str]) -> ContainerDefinition {
    ContainerDefinition::builder()
        .name(name)
        .image(image)
        .essential(true)
        .set_command(Some(command.iter().map(|part| part.to_string()).collect()))
        .build()
}

/// A Fargate-shaped RegisterTaskDefinition (awsvpc, 256 CPU units, 512 MiB) with `containers`.
pub async fn register_fargate(
    endpoint: &Endpoint,
    family: &str,
    containers: Vec<ContainerDefinition>,
) -> aws_sdk_ecs::types::TaskDefinition {
    endpoint
        .ecs
        .register_task_definition()
        .family(family)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .set_container_definitions(Some(containers))
        .send()
        .await
        .unwrap_or_else(|error| panic!("RegisterTaskDefinition {family}: {error:?}"))
        .task_definition()
        .cloned()
        .expect("RegisterTaskDefinition returns the task definition")
}

/// The task ID (last ARN segment) of a task ARN.
pub fn task_id(task_arn: &str) -> &str {
    task_arn.rsplit('/').next().unwrap_or(task_arn)
}

fn write_file(path: &Path, content: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("image subdirectory");
    }
    std::fs::write(path, content).unwrap_or_else(|error| panic!("writing {path:?}: {error}"));
}
