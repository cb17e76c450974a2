//! One in-process `shipmate local` per test, an SDK client to set it up, and the `shipmate`
//! binary pointed at it through `AWS_ENDPOINT_URL`.

use std::process::Stdio;
use std::time::Duration;

use aws_sdk_ecs::types::{ContainerDefinition, LogConfiguration, LogDriver};
use shipmate_local_server::{RunningServer, ServerConfig};

pub(crate) const CLUSTER: &str = "prod";
pub(crate) const LOG_GROUP: &str = "/ecs/web";

pub(crate) struct Env {
    pub(crate) server: RunningServer,
    pub(crate) ecs: aws_sdk_ecs::Client,
    pub(crate) logs: aws_sdk_cloudwatchlogs::Client,
    pub(crate) dir: tempfile::TempDir,
}

/// What a `shipmate` run printed and how it ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Outcome {
    pub(crate) fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"))
            })
            .collect()
    }

    pub(crate) fn report(&self) -> serde_json::Value {
        self.json_lines()
            .into_iter()
            .find(|v| v["event"] == "report")
            .unwrap_or_else(|| panic!("no report in stdout:\n{}", self.stdout))
    }
}

pub(crate) fn shipmate_bin() -> &'static str {
    env!("CARGO_BIN_EXE_shipmate")
}

impl Env {
    pub(crate) async fn start() -> Env {
        let server = shipmate_local_server::start(ServerConfig::default())
            .await
            .expect("server starts");
        let shared = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ecs::config::SharedCredentialsProvider::new(
                aws_sdk_ecs::config::Credentials::new("AKIDTEST", "secret", None, None, "test"),
            ))
            .endpoint_url(server.endpoint_url())
            .build();
        let env = Env {
            ecs: aws_sdk_ecs::Client::new(&shared),
            logs: aws_sdk_cloudwatchlogs::Client::new(&shared),
            server,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        // Empty AWS config files: nothing from the machine's profiles leaks into the tests.
        for name in ["aws-config", "aws-credentials"] {
            std::fs::write(env.dir.path().join(name), "").expect("empty aws file");
        }
        env.ecs
            .create_cluster()
            .cluster_name(CLUSTER)
            .send()
            .await
            .expect("CreateCluster");
        env
    }

    /// Pushes a directory holding `files` as `image`.
    pub(crate) fn push_image(&self, image: &str, files: &[(&str, &str)]) {
        let source = self.dir.path().join(image.replace([':', '/'], "_"));
        std::fs::create_dir_all(&source).expect("image dir");
        for (name, content) in files {
            std::fs::write(source.join(name), content).expect("image file");
        }
        self.server
            .engine()
            .images
            .push_dir(image, &source)
            .expect("push_dir");
    }

    pub(crate) async fn create_log_group(&self, name: &str) {
        self.logs
            .create_log_group()
            .log_group_name(name)
            .send()
            .await
            .expect("CreateLogGroup");
    }

    /// A `tool` family for `shipmate run` without a service: bridge networking, EC2.
    pub(crate) async fn register_tool(&self, image: &str, log_group: &str, memory: i32) -> String {
        let container = ContainerDefinition::builder()
            .name("tool")
            .image(image)
            .essential(true)
            .memory(memory)
            .set_command(Some(vec!["true".to_owned()]))
            .log_configuration(
                LogConfiguration::builder()
                    .log_driver(LogDriver::Awslogs)
                    .options("awslogs-group", log_group)
                    .options("awslogs-region", "us-east-1")
                    .options("awslogs-stream-prefix", "ecs")
                    .build()
                    .expect("log configuration"),
            )
            .build();
        let output = self
            .ecs
            .register_task_definition()
            .family("tool")
            .container_definitions(container)
            .send()
            .await
            .expect("RegisterTaskDefinition");
        output
            .task_definition()
            .and_then(|t| t.task_definition_arn())
            .expect("arn")
            .to_owned()
    }

    /// Every task of the cluster (running and stopped) started with `started_by` prefix.
    pub(crate) async fn tasks_started_by(&self, prefix: &str) -> Vec<aws_sdk_ecs::types::Task> {
        let mut arns = Vec::new();
        for status in [
            aws_sdk_ecs::types::DesiredStatus::Running,
            aws_sdk_ecs::types::DesiredStatus::Stopped,
        ] {
            let output = self
                .ecs
                .list_tasks()
                .cluster(CLUSTER)
                .desired_status(status)
                .send()
                .await
                .expect("ListTasks");
            arns.extend(output.task_arns().iter().cloned());
        }
        if arns.is_empty() {
            return Vec::new();
        }
        let output = self
            .ecs
            .describe_tasks()
            .cluster(CLUSTER)
            .set_tasks(Some(arns))
            .send()
            .await
            .expect("DescribeTasks");
        output
            .tasks()
            .iter()
            .filter(|t| t.started_by().is_some_and(|b| b.starts_with(prefix)))
            .cloned()
            .collect()
    }

    pub(crate) fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(shipmate_bin());
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            // Who runs a release is recorded in the lock: the same in every test.
            .env("USER", "ci")
            .env("HOSTNAME", "runner")
            .env("AWS_ENDPOINT_URL", self.server.endpoint_url())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", self.dir.path().join("aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.path().join("aws-credentials"),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs `shipmate args…` to its end (bounded: a hung command fails the test).
    pub(crate) async fn shipmate(&self, args: &[&str]) -> Outcome {
        self.shipmate_with_env(args, &[]).await
    }

    /// The same, with extra environment variables.
    pub(crate) async fn shipmate_with_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Outcome {
        let mut command = self.command(args);
        command.envs(vars.iter().copied());
        let child = command.spawn().expect("spawn shipmate");
        finish(child).await
    }
}

#[expect(
    clippy::print_stderr,
    reason = "the transcript of a failing test is the first thing to read"
)]
pub(crate) async fn finish(child: tokio::process::Child) -> Outcome {
    let output = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("shipmate finished within 180 s")
        .expect("shipmate ran");
    let outcome = Outcome {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    eprintln!(
        "--- shipmate exit {:?}\n--- stdout\n{}--- stderr\n{}",
        outcome.code, outcome.stdout, outcome.stderr
    );
    outcome
}

/// Polls `check` every 100 ms until it returns `Some`, or `deadline` passes.
pub(crate) async fn eventually<T, F, Fut>(deadline: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if start.elapsed() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
