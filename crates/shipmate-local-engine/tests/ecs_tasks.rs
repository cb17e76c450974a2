//! Tasks run as real local processes, driven through `Engine::handle` with JSON bodies exactly as
//! the server hands them over. Every wait polls a condition with a generous deadline.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shipmate_local_engine::{Engine, EngineConfig, Request};
use shipmate_local_protocol::{AwsError, Target};

const DEADLINE: Duration = Duration::from_secs(60);

struct Local {
    engine: Engine,
    _images: tempfile::TempDir,
}

impl Local {
    async fn start() -> Local {
        Local::start_with(EngineConfig::default()).await
    }

    async fn start_with(config: EngineConfig) -> Local {
        let engine = Engine::start(config).await.expect("engine starts");
        let images = tempfile::tempdir().unwrap();
        std::fs::write(images.path().join("marker.txt"), "from the image\n").unwrap();
        engine.images.push_dir("app:v1", images.path()).unwrap();
        let local = Local {
            engine,
            _images: images,
        };
        local
            .ecs("CreateCluster", json!({"clusterName": "c1"}))
            .await
            .unwrap();
        local
    }

    async fn call(&self, target: &str, body: &[u8]) -> Result<Value, AwsError> {
        let target = Target::parse(target).unwrap();
        let request = Request {
            target: &target,
            region: "eu-west-1",
            body,
        };
        let output = self.engine.handle(request).await?;
        Ok(serde_json::from_slice(&output).expect("responses are JSON"))
    }

    async fn ecs(&self, operation: &str, body: Value) -> Result<Value, AwsError> {
        let target = format!("AmazonEC2ContainerServiceV20141113.{operation}");
        self.call(&target, body.to_string().as_bytes()).await
    }

    /// Registers family `family` with the given container definitions.
    async fn register(&self, family: &str, containers: Value) -> Value {
        self.ecs(
            "RegisterTaskDefinition",
            json!({"family": family, "containerDefinitions": containers, "memory": "512"}),
        )
        .await
        .unwrap()["taskDefinition"]
            .clone()
    }

    async fn run(&self, family: &str) -> Value {
        let output = self
            .ecs(
                "RunTask",
                json!({"cluster": "c1", "taskDefinition": family}),
            )
            .await
            .unwrap();
        assert_eq!(output["failures"], json!([]), "{output}");
        output["tasks"][0].clone()
    }

    async fn describe(&self, task_arn: &str) -> Value {
        let output = self
            .ecs(
                "DescribeTasks",
                json!({"cluster": "c1", "tasks": [task_arn]}),
            )
            .await
            .unwrap();
        output["tasks"][0].clone()
    }

    /// Polls DescribeTasks until `condition` holds.
    async fn wait_for(
        &self,
        task_arn: &str,
        what: &str,
        condition: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let task = self.describe(task_arn).await;
            if condition(&task) {
                return task;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "timed out waiting for {what}: {task:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_stopped(&self, task_arn: &str) -> Value {
        self.wait_for(task_arn, "STOPPED", |t| t["lastStatus"] == "STOPPED")
            .await
    }

    async fn wait_running(&self, task_arn: &str) -> Value {
        self.wait_for(task_arn, "RUNNING", |t| t["lastStatus"] == "RUNNING")
            .await
    }

    fn log_messages(&self, group: &str, stream: &str) -> Vec<String> {
        self.engine
            .logs
            .events(group, stream)
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.message)
            .collect()
    }
}

fn container(command: &[&str]) -> Value {
    json!({"name": "main", "image": "app:v1", "command": command, "memory": 256})
}

fn with_awslogs(mut container: Value, group: &str) -> Value {
    container["logConfiguration"] = json!({
        "logDriver": "awslogs",
        "options": {"awslogs-group": group, "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "ecs"}
    });
    container
}

fn task_id(task: &Value) -> String {
    task["taskArn"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_command_stops_the_task_with_its_exit_code_and_every_log_line() {
    let local = Local::start().await;
    local.engine.logs.ensure_group("/ecs/app");
    local
        .register(
            "app",
            json!([with_awslogs(
                container(&["sh", "-c", "echo a; echo b >&2; echo c; exit 3"]),
                "/ecs/app"
            )]),
        )
        .await;
    let task = local.run("app").await;
    assert_eq!(task["lastStatus"], "PROVISIONING");
    assert_eq!(task["desiredStatus"], "RUNNING");
    assert_eq!(task["group"], "family:app");
    assert!(
        task["taskArn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:ecs:eu-west-1:000000000000:task/c1/")
    );
    assert_eq!(task_id(&task).len(), 32);
    let task = local.wait_stopped(task["taskArn"].as_str().unwrap()).await;
    assert_eq!(task["containers"][0]["exitCode"], 3);
    assert_eq!(task["containers"][0]["lastStatus"], "STOPPED");
    assert_eq!(task["stopCode"], "EssentialContainerExited");
    assert_eq!(task["stoppedReason"], "Essential container in task exited");
    assert_eq!(task["desiredStatus"], "STOPPED");
    // Timestamps exist and follow the lifecycle order.
    let times: Vec<f64> = [
        "createdAt",
        "pullStartedAt",
        "pullStoppedAt",
        "startedAt",
        "stoppingAt",
        "executionStoppedAt",
        "stoppedAt",
    ]
    .iter()
    .map(|name| {
        task[*name]
            .as_f64()
            .unwrap_or_else(|| panic!("{name} missing: {task:#}"))
    })
    .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(task["version"].as_i64().unwrap() > 5);
    let stream = format!("ecs/main/{}", task_id(&task));
    let lines = local.log_messages("/ecs/app", &stream);
    // stdout lines keep their order; the stderr line is there too.
    let stdout: Vec<&String> = lines.iter().filter(|l| *l != "b").collect();
    assert_eq!(stdout, ["a", "c"], "{lines:?}");
    assert!(lines.contains(&"b".to_owned()), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_delayed_log_ingestion_the_last_lines_show_up_after_stopped_in_order() {
    let local = Local::start().await;
    local.engine.logs.ensure_group("/ecs/late");
    // Short batches, and a delay longer than the gap from the container's exit to STOPPED.
    local
        .engine
        .ecs
        .faults()
        .delay_log_ingestion(shipmate_local_engine::logs::IngestionDelay {
            batch: Duration::from_millis(200),
            visible_after: Duration::from_secs(3),
        });
    let script =
        "i=1; while [ $i -le 500 ]; do echo line-$i; [ $i -eq 250 ] && sleep 4; i=$((i+1)); done";
    local
        .register(
            "late",
            json!([with_awslogs(container(&["sh", "-c", script]), "/ecs/late")]),
        )
        .await;
    let arn = local.run("late").await["taskArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let task = local.wait_running(&arn).await;
    let stream = format!("ecs/main/{}", task_id(&task));

    // A reader that follows its forward token, as release tooling does.
    let mut token: Option<String> = None;
    let mut events: Vec<Value> = Vec::new();
    let mut seen_when_stopped = None;
    let start = Instant::now();
    while events.len() < 500 {
        assert!(
            start.elapsed() < DEADLINE,
            "{} of 500 lines after {DEADLINE:?}",
            events.len()
        );
        let stopped = local.describe(&arn).await["lastStatus"] == "STOPPED";
        loop {
            let mut request = json!({"logGroupName": "/ecs/late", "logStreamName": stream, "startFromHead": true});
            if let Some(token) = &token {
                request["nextToken"] = json!(token);
            }
            let page = local
                .call("Logs_20140328.GetLogEvents", request.to_string().as_bytes())
                .await
                .unwrap();
            events.extend(page["events"].as_array().unwrap().iter().cloned());
            let next = page["nextForwardToken"].as_str().unwrap().to_owned();
            if token.as_ref() == Some(&next) {
                break;
            }
            token = Some(next);
        }
        if stopped && seen_when_stopped.is_none() {
            seen_when_stopped = Some(events.len());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen_when_stopped = seen_when_stopped.expect("the task stopped before all lines showed");
    assert!(
        seen_when_stopped < 500,
        "{seen_when_stopped} lines visible at STOPPED"
    );
    let lines: Vec<&str> = events
        .iter()
        .map(|event| event["message"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (1..=500).map(|n| format!("line-{n}")).collect();
    assert_eq!(lines, expected, "every line once, in order");
    for event in &events {
        let (timestamp, ingested) = (
            event["timestamp"].as_i64().unwrap(),
            event["ingestionTime"].as_i64().unwrap(),
        );
        assert!(ingested >= timestamp + 3000, "{event}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_command_exits_zero_in_the_image_with_the_documented_environment() {
    let local = Local::start().await;
    local.engine.logs.ensure_group("/ecs/env");
    let script = "cat marker.txt; echo ip=$SHIPMATE_TASK_IP name=$ECS_CONTAINER_NAME region=$AWS_REGION/$AWS_DEFAULT_REGION greeting=$GREETING leaked=${CARGO_PKG_NAME:-no}; case $ECS_TASK_ARN in arn:aws:ecs:*) echo arn=ok;; esac";
    let mut definition = with_awslogs(container(&["sh", "-c", script]), "/ecs/env");
    definition["environment"] = json!([{"name": "GREETING", "value": "from-definition"}]);
    local.register("env", json!([definition])).await;
    let output = local
        .ecs(
            "RunTask",
            json!({"cluster": "c1", "taskDefinition": "env", "overrides": {"containerOverrides": [
                {"name": "main", "environment": [{"name": "GREETING", "value": "from-override"}]}
            ]}}),
        )
        .await
        .unwrap();
    let arn = output["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
    let task = local.wait_stopped(&arn).await;
    assert_eq!(task["containers"][0]["exitCode"], 0);
    assert_eq!(task["stopCode"], "EssentialContainerExited");
    let lines = local.log_messages("/ecs/env", &format!("ecs/main/{}", task_id(&task)));
    assert_eq!(lines[0], "from the image");
    assert!(lines[1].starts_with("ip=127."), "{lines:?}");
    assert!(!lines[1].starts_with("ip=127.0.0.1 "), "{lines:?}");
    assert!(
        lines[1].ends_with("name=main region=eu-west-1/eu-west-1 greeting=from-override leaked=no"),
        "{lines:?}"
    );
    assert_eq!(lines[2], "arn=ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_over_its_memory_limit_is_killed_as_out_of_memory() {
    let local = Local::start().await;
    let mut definition = container(&[
        "python3",
        "-c",
        "import time\nblock = 'x' * (400 * 1024 * 1024)\ntime.sleep(120)",
    ]);
    definition["memory"] = json!(64);
    local.register("hog", json!([definition])).await;
    let task = local.run("hog").await;
    let task = local.wait_stopped(task["taskArn"].as_str().unwrap()).await;
    assert_eq!(task["containers"][0]["exitCode"], 137, "{task:#}");
    assert_eq!(
        task["containers"][0]["reason"],
        "OutOfMemoryError: Container killed due to memory usage"
    );
    assert_eq!(
        task["stoppedReason"],
        "OutOfMemoryError: Container killed due to memory usage"
    );
    assert_eq!(task["stopCode"], "EssentialContainerExited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_task_sends_sigterm_then_sigkill_after_the_stop_timeout() {
    let local = Local::start().await;
    local
        .register("sleeper", json!([container(&["sleep", "300"])]))
        .await;
    // It says when its trap is set: a SIGTERM before that would end it with 143.
    local.engine.logs.ensure_group("/stop");
    let mut stubborn = with_awslogs(
        container(&[
            "sh",
            "-c",
            "trap '' TERM; echo trapped; while true; do sleep 1; done",
        ]),
        "/stop",
    );
    stubborn["stopTimeout"] = json!(2);
    local.register("stubborn", json!([stubborn])).await;

    let sleeper = local.run("sleeper").await;
    let stubborn = local.run("stubborn").await;
    let sleeper_arn = sleeper["taskArn"].as_str().unwrap();
    let stubborn_arn = stubborn["taskArn"].as_str().unwrap();
    local.wait_running(sleeper_arn).await;
    local.wait_running(stubborn_arn).await;
    let stream = format!("ecs/main/{}", task_id(&stubborn));
    let start = Instant::now();
    while !local
        .log_messages("/stop", &stream)
        .contains(&"trapped".to_owned())
    {
        assert!(
            start.elapsed() < DEADLINE,
            "the stubborn task never set its trap"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let stopped = local
        .ecs("StopTask", json!({"cluster": "c1", "task": sleeper_arn}))
        .await
        .unwrap();
    assert_eq!(stopped["task"]["desiredStatus"], "STOPPED");
    assert_eq!(stopped["task"]["stopCode"], "UserInitiated");
    local
        .ecs(
            "StopTask",
            json!({"cluster": "c1", "task": task_id(&stubborn), "reason": "release cancelled"}),
        )
        .await
        .unwrap();

    let sleeper = local.wait_stopped(sleeper_arn).await;
    assert_eq!(sleeper["containers"][0]["exitCode"], 143);
    assert_eq!(sleeper["stopCode"], "UserInitiated");
    assert_eq!(sleeper["stoppedReason"], "Task stopped by user");
    let stubborn = local.wait_stopped(stubborn_arn).await;
    assert_eq!(stubborn["containers"][0]["exitCode"], 137);
    assert_eq!(stubborn["stoppedReason"], "release cancelled");
    // SIGKILL came no earlier than the stopTimeout.
    let waited =
        stubborn["executionStoppedAt"].as_f64().unwrap() - stubborn["stoppingAt"].as_f64().unwrap();
    assert!(waited >= 1.9, "{waited}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_never_pushed_fails_to_start() {
    let local = Local::start().await;
    let mut definition = container(&["true"]);
    definition["image"] = json!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/missing:v9");
    local.register("missing", json!([definition])).await;
    let task = local.run("missing").await;
    let task = local.wait_stopped(task["taskArn"].as_str().unwrap()).await;
    assert_eq!(task["stopCode"], "TaskFailedToStart");
    let reason = task["stoppedReason"].as_str().unwrap();
    assert!(reason.starts_with("CannotPullContainerError: "), "{reason}");
    assert!(reason.contains("missing:v9"), "{reason}");
    assert_eq!(task["containers"][0]["reason"], reason);
    assert!(task.get("startedAt").is_none(), "{task:#}");
    assert!(task["containers"][0].get("exitCode").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_log_group_fails_the_task_unless_it_may_be_created() {
    let local = Local::start().await;
    local
        .register(
            "nolog",
            json!([with_awslogs(container(&["echo", "hi"]), "/ecs/absent")]),
        )
        .await;
    let task = local.run("nolog").await;
    let task = local.wait_stopped(task["taskArn"].as_str().unwrap()).await;
    assert_eq!(task["stopCode"], "TaskFailedToStart");
    let reason = task["stoppedReason"].as_str().unwrap();
    assert!(
        reason.starts_with("ResourceInitializationError: failed to validate logger args"),
        "{reason}"
    );
    assert!(
        reason.contains("The specified log group does not exist"),
        "{reason}"
    );

    let mut creating = with_awslogs(container(&["echo", "hi"]), "/ecs/created");
    creating["logConfiguration"]["options"]["awslogs-create-group"] = json!("true");
    local.register("creating", json!([creating])).await;
    let task = local.run("creating").await;
    let task = local.wait_stopped(task["taskArn"].as_str().unwrap()).await;
    assert_eq!(task["containers"][0]["exitCode"], 0);
    let lines = local.log_messages("/ecs/created", &format!("ecs/main/{}", task_id(&task)));
    assert_eq!(lines, ["hi"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_does_not_exist_fails_to_start() {
    let local = Local::start().await;
    local
        .register("typo", json!([container(&["no-such-program-here", "x"])]))
        .await;
    let task = local.run("typo").await;
    let task = local.wait_stopped(task["taskArn"].as_str().unwrap()).await;
    assert_eq!(task["stopCode"], "TaskFailedToStart");
    let reason = task["containers"][0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("CannotStartContainerError: "),
        "{reason}"
    );
    assert!(
        reason.contains("exec: \"no-such-program-here\": executable file not found in $PATH"),
        "{reason}"
    );

    // A later container that cannot start takes the already started ones down with it.
    let mut broken = container(&["no-such-program-here"]);
    broken["name"] = json!("broken");
    local
        .register("half", json!([container(&["sleep", "300"]), broken]))
        .await;
    let task = local.run("half").await;
    let task = local.wait_stopped(task["taskArn"].as_str().unwrap()).await;
    assert_eq!(task["stopCode"], "TaskFailedToStart");
    assert!(
        task["containers"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("executable file not found")
    );
    let pid = task["containers"][0]["runtimeId"].as_str().unwrap();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "sleep {pid} survived"
    );

    // A file in the image that is not executable.
    let image = tempfile::tempdir().unwrap();
    std::fs::write(image.path().join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    local
        .engine
        .images
        .push_dir("app:noexec", image.path())
        .unwrap();
    let mut definition = container(&["./run.sh"]);
    definition["image"] = json!("app:noexec");
    local.register("noexec", json!([definition])).await;
    let task = local.run("noexec").await;
    let task = local.wait_stopped(task["taskArn"].as_str().unwrap()).await;
    assert_eq!(task["stopCode"], "TaskFailedToStart");
    let reason = task["stoppedReason"].as_str().unwrap();
    assert!(
        reason.contains("exec: \"./run.sh\": permission denied"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_essential_sidecar_exiting_leaves_the_task_running() {
    let local = Local::start().await;
    let mut sidecar = container(&["sh", "-c", "exit 5"]);
    sidecar["name"] = json!("sidecar");
    sidecar["essential"] = json!(false);
    local
        .register("pair", json!([container(&["sleep", "300"]), sidecar]))
        .await;
    let task = local.run("pair").await;
    let arn = task["taskArn"].as_str().unwrap().to_owned();
    let task = local
        .wait_for(&arn, "the sidecar to exit", |t| {
            t["containers"][1]["lastStatus"] == "STOPPED"
        })
        .await;
    assert_eq!(task["containers"][1]["exitCode"], 5);
    assert_eq!(task["lastStatus"], "RUNNING");
    assert_eq!(task["desiredStatus"], "RUNNING");
    assert_eq!(task["containers"][0]["lastStatus"], "RUNNING");
    local
        .ecs("StopTask", json!({"cluster": "c1", "task": arn}))
        .await
        .unwrap();
    let task = local.wait_stopped(&arn).await;
    assert_eq!(task["containers"][0]["exitCode"], 143);
    assert_eq!(task["containers"][1]["exitCode"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_token_reuse_returns_the_same_tasks_or_a_conflict() {
    let local = Local::start().await;
    local
        .register("once", json!([container(&["sleep", "300"])]))
        .await;
    let request = json!({"cluster": "c1", "taskDefinition": "once", "clientToken": "release-42", "startedBy": "shipmate"});
    let first = local.ecs("RunTask", request.clone()).await.unwrap();
    let second = local.ecs("RunTask", request.clone()).await.unwrap();
    let arn = first["tasks"][0]["taskArn"].as_str().unwrap();
    assert_eq!(second["tasks"][0]["taskArn"], arn);
    let listed = local
        .ecs(
            "ListTasks",
            json!({"cluster": "c1", "startedBy": "shipmate"}),
        )
        .await
        .unwrap();
    assert_eq!(listed["taskArns"], json!([arn]));

    let mut changed = request.clone();
    changed["overrides"] =
        json!({"containerOverrides": [{"name": "main", "command": ["sleep", "1"]}]});
    let conflict = local.ecs("RunTask", changed).await.unwrap_err();
    assert_eq!(conflict.code, "ConflictException");
    assert_eq!(conflict.extra["resourceIds"], json!([arn]));
    // The same token is free on another cluster.
    local
        .ecs("CreateCluster", json!({"clusterName": "c2"}))
        .await
        .unwrap();
    let mut elsewhere = request.clone();
    elsewhere["cluster"] = json!("c2");
    let other = local.ecs("RunTask", elsewhere).await.unwrap();
    assert_ne!(other["tasks"][0]["taskArn"], arn);
    local.engine.shutdown().await;
    let task = local.describe(arn).await;
    assert_eq!(task["lastStatus"], "STOPPED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_and_list_tasks() {
    let local = Local::start().await;
    local
        .register("lister", json!([container(&["sleep", "300"])]))
        .await;
    local.register("quick", json!([container(&["true"])])).await;
    let running = local.run("lister").await;
    let quick = local.run("quick").await;
    let running_arn = running["taskArn"].as_str().unwrap();
    let quick_arn = quick["taskArn"].as_str().unwrap();
    local.wait_stopped(quick_arn).await;
    let task = local.wait_running(running_arn).await;
    assert_eq!(task["connectivity"], "CONNECTED");

    let missing_id = "0123456789abcdef0123456789abcdef";
    let output = local
        .ecs(
            "DescribeTasks",
            json!({"cluster": "c1", "tasks": [running_arn, missing_id]}),
        )
        .await
        .unwrap();
    assert_eq!(output["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(output["failures"][0]["reason"], "MISSING");
    assert!(
        output["failures"][0]["arn"]
            .as_str()
            .unwrap()
            .ends_with(missing_id)
    );

    let default = local
        .ecs("ListTasks", json!({"cluster": "c1"}))
        .await
        .unwrap();
    assert_eq!(default["taskArns"], json!([running_arn]));
    let stopped = local
        .ecs(
            "ListTasks",
            json!({"cluster": "c1", "desiredStatus": "STOPPED"}),
        )
        .await
        .unwrap();
    assert_eq!(stopped["taskArns"], json!([quick_arn]));
    let by_family = local
        .ecs(
            "ListTasks",
            json!({"cluster": "c1", "family": "quick", "desiredStatus": "STOPPED"}),
        )
        .await
        .unwrap();
    assert_eq!(by_family["taskArns"], json!([quick_arn]));
    let paged = local
        .ecs("ListTasks", json!({"cluster": "c1", "maxResults": 1}))
        .await
        .unwrap();
    assert_eq!(paged["taskArns"], json!([running_arn]));
    assert!(paged.get("nextToken").is_none());
    local.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awsvpc_tasks_get_their_own_address_and_need_a_network_configuration() {
    let local = Local::start().await;
    local
        .ecs(
            "RegisterTaskDefinition",
            json!({"family": "web", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
                   "cpu": "256", "memory": "512",
                   "containerDefinitions": [{"name": "main", "image": "app:v1", "command": ["sleep", "300"],
                                             "portMappings": [{"containerPort": 8000}]}]}),
        )
        .await
        .unwrap();
    let error = local
        .ecs(
            "RunTask",
            json!({"cluster": "c1", "taskDefinition": "web", "launchType": "FARGATE"}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code, "InvalidParameterException");
    let output = local
        .ecs(
            "RunTask",
            json!({"cluster": "c1", "taskDefinition": "web", "launchType": "FARGATE", "count": 2,
                   "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "ENABLED"}}}),
        )
        .await
        .unwrap();
    let tasks = output["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    let address = |task: &Value| {
        task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_ne!(address(&tasks[0]), address(&tasks[1]));
    assert!(address(&tasks[0]).starts_with("127."));
    assert_eq!(tasks[0]["cpu"], "256");
    assert_eq!(tasks[0]["memory"], "512");
    assert_eq!(tasks[0]["launchType"], "FARGATE");
    assert_eq!(tasks[0]["platformVersion"], "1.4.0");
    let details = &tasks[0]["attachments"][0]["details"];
    assert!(details.as_array().unwrap().iter().any(|d| d["name"] == "privateIPv4Address" && d["value"] == address(&tasks[0]).as_str()));
    for task in tasks {
        local.wait_running(task["taskArn"].as_str().unwrap()).await;
    }
    local.engine.shutdown().await;
    for task in tasks {
        let task = local.describe(task["taskArn"].as_str().unwrap()).await;
        assert_eq!(task["lastStatus"], "STOPPED");
        assert_eq!(task["containers"][0]["exitCode"], 143);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_drive_health_status_and_an_unhealthy_essential_container_stops_the_task() {
    let local = Local::start().await;
    let mut healthy = container(&["sleep", "300"]);
    healthy["healthCheck"] = json!({"command": ["CMD-SHELL", "test -f marker.txt"], "interval": 5, "timeout": 2, "retries": 1});
    local.register("healthy", json!([healthy])).await;
    let mut sick = container(&["sleep", "300"]);
    sick["healthCheck"] =
        json!({"command": ["CMD", "false"], "interval": 5, "timeout": 2, "retries": 1});
    local.register("sick", json!([sick])).await;

    let healthy = local.run("healthy").await;
    let sick = local.run("sick").await;
    assert_eq!(healthy["healthStatus"], "UNKNOWN");
    let healthy_arn = healthy["taskArn"].as_str().unwrap();
    let task = local
        .wait_for(healthy_arn, "HEALTHY", |t| t["healthStatus"] == "HEALTHY")
        .await;
    assert_eq!(task["containers"][0]["healthStatus"], "HEALTHY");
    let task = local.wait_stopped(sick["taskArn"].as_str().unwrap()).await;
    assert_eq!(task["containers"][0]["healthStatus"], "UNHEALTHY");
    assert_eq!(task["healthStatus"], "UNHEALTHY");
    assert_eq!(task["stoppedReason"], "Task failed container health checks");
    local.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_fail_placements_and_pulls_and_delay_transitions() {
    let local = Local::start().await;
    local
        .register("faulty", json!([container(&["true"])]))
        .await;
    let faults = local.engine.ecs.faults();
    faults.fail_next_placements(1, None);
    let output = local
        .ecs(
            "RunTask",
            json!({"cluster": "c1", "taskDefinition": "faulty", "count": 2}),
        )
        .await
        .unwrap();
    assert_eq!(output["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(output["failures"][0]["reason"], "RESOURCE:MEMORY");

    faults.fail_image_pulls("app:*");
    let task = local.run("faulty").await;
    let task = local.wait_stopped(task["taskArn"].as_str().unwrap()).await;
    assert!(
        task["stoppedReason"]
            .as_str()
            .unwrap()
            .starts_with("CannotPullContainerError")
    );
    faults.clear();

    faults.delay_transition(
        shipmate_local_engine::ecs::lifecycle::TaskStatus::Pending,
        Duration::from_secs(30),
    );
    let task = local.run("faulty").await;
    let arn = task["taskArn"].as_str().unwrap().to_owned();
    let held = local
        .wait_for(&arn, "PENDING", |t| t["lastStatus"] == "PENDING")
        .await;
    assert!(held.get("startedAt").is_none());
    // A stop request cuts the hold short.
    local
        .ecs("StopTask", json!({"cluster": "c1", "task": arn}))
        .await
        .unwrap();
    let task = local.wait_stopped(&arn).await;
    assert!(task.get("startedAt").is_none());
    assert_eq!(task["stopCode"], "UserInitiated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_aws_errors() {
    let local = Local::start().await;
    local.register("ok", json!([container(&["true"])])).await;
    let ecs = "AmazonEC2ContainerServiceV20141113";
    let error = local
        .call(&format!("{ecs}.RunTask"), b"{not json")
        .await
        .unwrap_err();
    assert_eq!(error.code, "SerializationException");
    let error = local
        .call(
            &format!("{ecs}.RunTask"),
            br#"{"taskDefinition": "ok", "count": "2"}"#,
        )
        .await
        .unwrap_err();
    assert_eq!(error.code, "SerializationException");
    let error = local
        .call(&format!("{ecs}.RegisterTaskDefinition"), br#"{"family": "x", "containerDefinitions": [{"name": "m", "image": "i", "memory": "512"}]}"#)
        .await
        .unwrap_err();
    assert_eq!(error.code, "SerializationException");
    let error = local
        .ecs("CreateCapacityProvider", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.code, "UnknownOperationException");
    assert!(error.message.contains("CreateCapacityProvider"));

    // What ecs-deploy's `ecs run` sends: ECS takes more than the model's documented characters.
    let started = local
        .ecs(
            "RunTask",
            json!({"cluster": "c1", "taskDefinition": "ok", "startedBy": "ECS Deploy"}),
        )
        .await
        .unwrap();
    assert_eq!(started["tasks"][0]["startedBy"], "ECS Deploy");

    let cases = [
        (
            "RunTask",
            json!({"cluster": "nope", "taskDefinition": "ok"}),
            "ClusterNotFoundException",
        ),
        (
            "RunTask",
            json!({"cluster": "c1", "taskDefinition": "unknown"}),
            "ClientException",
        ),
        (
            "RunTask",
            json!({"cluster": "c1", "taskDefinition": "ok", "count": 11}),
            "InvalidParameterException",
        ),
        (
            "RunTask",
            json!({"cluster": "c1", "taskDefinition": "ok", "startedBy": "x".repeat(129)}),
            "InvalidParameterException",
        ),
        (
            "RunTask",
            json!({"cluster": "c1", "taskDefinition": "ok", "startedBy": "a\nb"}),
            "InvalidParameterException",
        ),
        (
            "RunTask",
            json!({"cluster": "c1", "taskDefinition": "ok", "clientToken": "x".repeat(65)}),
            "InvalidParameterException",
        ),
        (
            "RunTask",
            json!({"cluster": "c1", "taskDefinition": "ok", "launchType": "EC2", "capacityProviderStrategy": [{"capacityProvider": "FARGATE"}]}),
            "InvalidParameterException",
        ),
        (
            "RunTask",
            json!({"cluster": "c1", "taskDefinition": "ok", "overrides": {"containerOverrides": [{"name": "other"}]}}),
            "InvalidParameterException",
        ),
        (
            "DescribeTasks",
            json!({"cluster": "c1", "tasks": []}),
            "InvalidParameterException",
        ),
        (
            "DescribeTasks",
            json!({"cluster": "c1", "tasks": vec!["x"; 101]}),
            "InvalidParameterException",
        ),
        (
            "StopTask",
            json!({"cluster": "c1", "task": "0123456789abcdef0123456789abcdef"}),
            "InvalidParameterException",
        ),
        (
            "DescribeTaskDefinition",
            json!({"taskDefinition": "unknown:3"}),
            "ClientException",
        ),
        (
            "RegisterTaskDefinition",
            json!({"family": "x", "containerDefinitions": []}),
            "ClientException",
        ),
        (
            "RegisterTaskDefinition",
            json!({"family": "x", "containerDefinitions": [{"name": "m", "image": "i"}]}),
            "ClientException",
        ),
        (
            "RegisterTaskDefinition",
            json!({"family": "x", "memory": "512", "containerDefinitions": [{"name": "m", "image": "i", "essential": false}]}),
            "ClientException",
        ),
        (
            "ListTasks",
            json!({"cluster": "c1", "maxResults": 0}),
            "InvalidParameterException",
        ),
        (
            "ListTasks",
            json!({"cluster": "c1", "nextToken": "bogus"}),
            "InvalidParameterException",
        ),
        (
            "DeleteCluster",
            json!({"cluster": "nope"}),
            "ClusterNotFoundException",
        ),
        (
            "ListTasks",
            json!({"cluster": "c1", "serviceName": "ghost"}),
            "ServiceNotFoundException",
        ),
        (
            "TagResource",
            json!({"resourceArn": "arn:aws:ecs:eu-west-1:000000000000:task/c1/0123456789abcdef0123456789abcdef", "tags": [{"key": "a", "value": "b"}]}),
            "ResourceNotFoundException",
        ),
    ];
    for (operation, body, code) in cases {
        let error = local.ecs(operation, body.clone()).await.unwrap_err();
        assert_eq!(error.code, code, "{operation} {body}: {error}");
        assert_eq!(error.status, 400);
    }
    let error = local
        .ecs(
            "DescribeTaskDefinition",
            json!({"taskDefinition": "unknown"}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.message, "Unable to describe task definition.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_task_definitions_and_tags() {
    let local = Local::start().await;
    let described = local
        .ecs("DescribeClusters", json!({"clusters": ["c1", "ghost"]}))
        .await
        .unwrap();
    assert_eq!(
        described["clusters"][0]["clusterArn"],
        "arn:aws:ecs:eu-west-1:000000000000:cluster/c1"
    );
    assert_eq!(described["clusters"][0]["status"], "ACTIVE");
    assert_eq!(described["failures"][0]["reason"], "MISSING");

    let mut definition = container(&["true"]);
    definition["dockerLabels"] = json!({"team": "web"});
    definition["ulimits"] = json!([{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}]);
    let first = local.register("fam", json!([definition.clone()])).await;
    assert_eq!(first["revision"], 1);
    assert_eq!(
        first["taskDefinitionArn"],
        "arn:aws:ecs:eu-west-1:000000000000:task-definition/fam:1"
    );
    assert_eq!(first["memory"], "512");
    let second = local.register("fam", json!([definition])).await;
    assert_eq!(second["revision"], 2);
    let latest = local
        .ecs("DescribeTaskDefinition", json!({"taskDefinition": "fam"}))
        .await
        .unwrap();
    let echoed = &latest["taskDefinition"]["containerDefinitions"][0];
    assert_eq!(echoed["dockerLabels"], json!({"team": "web"}));
    assert_eq!(echoed["ulimits"][0]["hardLimit"], 4096);
    assert_eq!(echoed["memory"], 256);
    assert_eq!(echoed["essential"], true);
    assert_eq!(latest["taskDefinition"]["revision"], 2);

    local
        .ecs(
            "DeregisterTaskDefinition",
            json!({"taskDefinition": "fam:2"}),
        )
        .await
        .unwrap();
    let latest = local
        .ecs("DescribeTaskDefinition", json!({"taskDefinition": "fam"}))
        .await
        .unwrap();
    assert_eq!(latest["taskDefinition"]["revision"], 1);
    let inactive = local
        .ecs(
            "RunTask",
            json!({"cluster": "c1", "taskDefinition": "fam:2"}),
        )
        .await
        .unwrap_err();
    assert_eq!(inactive.code, "ClientException");
    let listed = local
        .ecs("ListTaskDefinitions", json!({"familyPrefix": "fam"}))
        .await
        .unwrap();
    assert_eq!(
        listed["taskDefinitionArns"],
        json!([first["taskDefinitionArn"]])
    );
    let families = local
        .ecs("ListTaskDefinitionFamilies", json!({}))
        .await
        .unwrap();
    assert_eq!(families["families"], json!(["fam"]));

    let cluster_arn = "arn:aws:ecs:eu-west-1:000000000000:cluster/c1";
    local
        .ecs(
            "TagResource",
            json!({"resourceArn": cluster_arn, "tags": [{"key": "env", "value": "test"}]}),
        )
        .await
        .unwrap();
    let tags = local
        .ecs("ListTagsForResource", json!({"resourceArn": cluster_arn}))
        .await
        .unwrap();
    assert_eq!(tags["tags"], json!([{"key": "env", "value": "test"}]));
    local
        .ecs(
            "UntagResource",
            json!({"resourceArn": cluster_arn, "tagKeys": ["env"]}),
        )
        .await
        .unwrap();
    let tags = local
        .ecs("ListTagsForResource", json!({"resourceArn": cluster_arn}))
        .await
        .unwrap();
    assert_eq!(tags["tags"], json!([]));

    let clusters = local.ecs("ListClusters", json!({})).await.unwrap();
    assert_eq!(clusters["clusterArns"], json!([cluster_arn]));
    let deleted = local
        .ecs("DeleteCluster", json!({"cluster": "c1"}))
        .await
        .unwrap();
    assert_eq!(deleted["cluster"]["status"], "INACTIVE");
    let clusters = local.ecs("ListClusters", json!({})).await.unwrap();
    assert_eq!(clusters["clusterArns"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_restart_and_running_tasks_come_back_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        state_dir: Some(dir.path().to_owned()),
        ..EngineConfig::default()
    };
    let first = Local::start_with(config.clone()).await;
    first
        .register("keep", json!([container(&["sleep", "300"])]))
        .await;
    let task = first.run("keep").await;
    let arn = task["taskArn"].as_str().unwrap().to_owned();
    first.wait_running(&arn).await;
    // Wait until the state writer has recorded the task as RUNNING.
    let state_file = dir.path().join("ecs.json");
    let start = Instant::now();
    while !std::fs::read_to_string(&state_file)
        .is_ok_and(|s| s.contains(r#""lastStatus":"RUNNING""#))
    {
        assert!(start.elapsed() < DEADLINE, "the state was never written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let second = Engine::start(config).await.unwrap();
    let second = Local {
        engine: second,
        _images: tempfile::tempdir().unwrap(),
    };
    let task = second.describe(&arn).await;
    assert_eq!(task["lastStatus"], "STOPPED");
    assert_eq!(task["desiredStatus"], "STOPPED");
    assert_eq!(
        task["stoppedReason"],
        "Task stopped because shipmate local restarted"
    );
    let definition = second
        .ecs("DescribeTaskDefinition", json!({"taskDefinition": "keep"}))
        .await
        .unwrap();
    assert_eq!(definition["taskDefinition"]["revision"], 1);
    let next = second.register("keep", json!([container(&["true"])])).await;
    assert_eq!(next["revision"], 2);

    first.engine.shutdown().await;
    second.engine.shutdown().await;
    assert!(Path::new(&state_file).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lines_are_cut_at_16_kib_and_line_endings_dropped() {
    let local = Local::start().await;
    local.engine.logs.ensure_group("/ecs/long");
    let script = "import sys\nsys.stdout.write('x' * 40000 + '\\n' + 'crlf\\r\\n' + '\\n' + 'no newline at the end')";
    local
        .register(
            "long",
            json!([with_awslogs(
                container(&["python3", "-c", script]),
                "/ecs/long"
            )]),
        )
        .await;
    let task = local.run("long").await;
    let task = local.wait_stopped(task["taskArn"].as_str().unwrap()).await;
    assert_eq!(task["containers"][0]["exitCode"], 0);
    let lines = local.log_messages("/ecs/long", &format!("ecs/main/{}", task_id(&task)));
    let lengths: Vec<usize> = lines.iter().map(String::len).collect();
    assert_eq!(lengths[..3], [16384, 16384, 40000 - 2 * 16384]);
    assert!(lines[..3].iter().all(|l| l.bytes().all(|b| b == b'x')));
    assert_eq!(lines[3..], ["crlf", "no newline at the end"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_an_active_service_counts_it_and_cannot_be_deleted() {
    let local = Local::start().await;
    local
        .register("svc", json!([container(&["sleep", "300"])]))
        .await;
    local
        .ecs(
            "CreateService",
            json!({"cluster": "c1", "serviceName": "web", "taskDefinition": "svc", "desiredCount": 0}),
        )
        .await
        .unwrap();
    let described = local
        .ecs("DescribeClusters", json!({"clusters": ["c1"]}))
        .await
        .unwrap();
    assert_eq!(described["clusters"][0]["activeServicesCount"], 1);
    let error = local
        .ecs("DeleteCluster", json!({"cluster": "c1"}))
        .await
        .unwrap_err();
    assert_eq!(error.code, "ClusterContainsServicesException");
    let listed = local
        .ecs("ListTasks", json!({"cluster": "c1", "serviceName": "web"}))
        .await
        .unwrap();
    assert_eq!(listed["taskArns"], json!([]));
    local.engine.shutdown().await;
}

/// Set in the copy of this test binary that plays a killed endpoint.
const ORPHAN_CHILD: &str = "SHIPMATE_ENGINE_TEST_KILLED_ENDPOINT";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_processes_die_with_a_killed_endpoint() {
    if std::env::var_os(ORPHAN_CHILD).is_some() {
        // The endpoint: start a task, report its process id, then wait to be killed.
        let local = Local::start().await;
        local
            .register("orphan", json!([container(&["sleep", "300"])]))
            .await;
        let task = local.run("orphan").await;
        let task = local.wait_running(task["taskArn"].as_str().unwrap()).await;
        let pid = task["containers"][0]["runtimeId"].as_str().unwrap();
        // Straight to the real stdout: the parent test reads it.
        let mut stdout = std::io::stdout();
        std::io::Write::write_all(&mut stdout, format!("pid={pid}\n").as_bytes()).unwrap();
        std::io::Write::flush(&mut stdout).unwrap();
        std::future::pending::<()>().await;
    }
    // The killed endpoint cannot clean up after itself: its temporary files go here.
    let scratch = tempfile::tempdir().unwrap();
    let mut endpoint = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "task_processes_die_with_a_killed_endpoint",
            "--nocapture",
        ])
        .env(ORPHAN_CHILD, "1")
        .env("TMPDIR", scratch.path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        endpoint.stdout.take().unwrap(),
    ));
    let pid = tokio::time::timeout(DEADLINE, async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("the endpoint printed no pid");
            if let Some(pid) = line.strip_prefix("pid=") {
                return pid.parse::<i32>().unwrap();
            }
        }
    })
    .await
    .expect("the endpoint never reported its task running");
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    };
    assert!(alive(pid));
    endpoint.start_kill().unwrap();
    endpoint.wait().await.unwrap();
    let start = Instant::now();
    while alive(pid) {
        assert!(
            start.elapsed() < DEADLINE,
            "task process {pid} outlived the endpoint"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An engine whose clock only moves when the test says so, starting at epoch second 1.8e9.
async fn on_manual_clock() -> (Local, shipmate_local_engine::clock::ManualClock) {
    let clock = shipmate_local_engine::clock::ManualClock::starting_at(
        std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    );
    let local = Local::start_with(EngineConfig {
        clock: std::sync::Arc::new(clock.clone()),
        ..EngineConfig::default()
    })
    .await;
    (local, clock)
}

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_is_kept_until_an_hour_after_its_task_stopped_and_replays_it_trimmed() {
    let (local, clock) = on_manual_clock().await;
    local.register("brief", json!([container(&["true"])])).await;
    let request = json!({"cluster": "c1", "taskDefinition": "brief", "clientToken": "t-1"});
    let first = local.ecs("RunTask", request.clone()).await.unwrap();
    let arn = first["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
    let task = local.wait_stopped(&arn).await;
    assert_eq!(task["stoppedAt"], 1_800_000_000.0);

    clock.advance(59 * MINUTE);
    assert_eq!(local.describe(&arn).await["lastStatus"], "STOPPED");
    let again = local.ecs("RunTask", request.clone()).await.unwrap();
    assert_eq!(
        again,
        json!({
            "tasks": [{"taskArn": arn, "lastStatus": "STOPPED", "desiredStatus": "STOPPED"}],
            "failures": [],
        }),
        "a stopped task is replayed with only the three members ECS keeps"
    );
    let mut changed = request.clone();
    changed["startedBy"] = json!("someone-else");
    let conflict = local.ecs("RunTask", changed.clone()).await.unwrap_err();
    assert_eq!(conflict.code, "ConflictException");
    assert_eq!(conflict.extra["resourceIds"], json!([arn]));

    // One hour after the stop the token (and the task) are forgotten: the token is free again.
    clock.advance(2 * MINUTE);
    let output = local
        .ecs("DescribeTasks", json!({"cluster": "c1", "tasks": [arn]}))
        .await
        .unwrap();
    assert_eq!(output["failures"][0]["reason"], "MISSING");
    let later = local.ecs("RunTask", changed).await.unwrap();
    let new_arn = later["tasks"][0]["taskArn"].as_str().unwrap();
    assert_ne!(new_arn, arn.as_str());
    assert_eq!(later["tasks"][0]["startedBy"], "someone-else");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_whose_task_still_runs_is_replayed_in_full_and_forgotten_after_a_day() {
    let (local, clock) = on_manual_clock().await;
    local
        .register("long", json!([container(&["sleep", "300"])]))
        .await;
    let request = json!({"cluster": "c1", "taskDefinition": "long", "clientToken": "t-2"});
    let first = local.ecs("RunTask", request.clone()).await.unwrap();
    let arn = first["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
    local.wait_running(&arn).await;

    clock.advance(23 * 60 * MINUTE + 59 * MINUTE);
    let again = local.ecs("RunTask", request.clone()).await.unwrap();
    let replayed = &again["tasks"][0];
    assert_eq!(replayed["taskArn"], arn.as_str());
    assert_eq!(replayed["lastStatus"], "RUNNING");
    assert_eq!(
        replayed["clusterArn"],
        "arn:aws:ecs:eu-west-1:000000000000:cluster/c1"
    );
    assert_eq!(
        replayed["containers"][0]["lastStatus"], "RUNNING",
        "{replayed}"
    );
    assert!(replayed["version"].as_i64().unwrap() > 1, "{replayed}");

    clock.advance(2 * MINUTE);
    let later = local.ecs("RunTask", request).await.unwrap();
    assert_ne!(later["tasks"][0]["taskArn"], arn.as_str());
    local.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_that_started_no_task_is_kept_for_an_hour() {
    let (local, clock) = on_manual_clock().await;
    local.register("brief", json!([container(&["true"])])).await;
    local.engine.ecs.faults().fail_next_placements(1, None);
    let request = json!({"cluster": "c1", "taskDefinition": "brief", "clientToken": "t-3"});
    let first = local.ecs("RunTask", request.clone()).await.unwrap();
    assert_eq!(first["tasks"], json!([]));
    assert_eq!(first["failures"][0]["reason"], "RESOURCE:MEMORY");

    // The placement fault is used up, so only a replay can answer without a task.
    clock.advance(59 * MINUTE);
    let again = local.ecs("RunTask", request.clone()).await.unwrap();
    assert_eq!(again, first);

    clock.advance(2 * MINUTE);
    let later = local.ecs("RunTask", request).await.unwrap();
    assert_eq!(later["failures"], json!([]));
    assert_eq!(later["tasks"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depends_on_orders_containers_and_a_failed_success_dependency_fails_the_task() {
    let local = Local::start().await;
    let marks = tempfile::tempdir().unwrap();
    let mark = marks.path().join("migrated");
    let environment = json!([{"name": "MARK", "value": mark.to_str().unwrap()}]);
    let definitions = |migrate_exit: i32| {
        let mut migrate = container(&[
            "sh",
            "-c",
            &format!("sleep 1; touch \"$MARK\"; exit {migrate_exit}"),
        ]);
        migrate["name"] = json!("migrate");
        migrate["essential"] = json!(false);
        migrate["environment"] = environment.clone();
        // Exits 0 only if the migration finished before it started.
        let mut web = container(&["sh", "-c", "test -f \"$MARK\""]);
        web["environment"] = environment.clone();
        web["dependsOn"] = json!([{"containerName": "migrate", "condition": "SUCCESS"}]);
        json!([migrate, web])
    };
    local.register("ordered", definitions(0)).await;
    let task = local.run("ordered").await;
    let task = local.wait_stopped(task["taskArn"].as_str().unwrap()).await;
    assert_eq!(task["containers"][0]["exitCode"], 0, "{task:#}");
    assert_eq!(task["containers"][1]["exitCode"], 0, "{task:#}");
    assert_eq!(task["stopCode"], "EssentialContainerExited");
    assert!(task["startedAt"].as_f64().is_some());

    std::fs::remove_file(&mark).unwrap();
    local.register("failing", definitions(4)).await;
    let task = local.run("failing").await;
    let task = local.wait_stopped(task["taskArn"].as_str().unwrap()).await;
    assert_eq!(task["stopCode"], "TaskFailedToStart", "{task:#}");
    assert_eq!(task["containers"][0]["exitCode"], 4);
    assert!(task["containers"][1].get("exitCode").is_none());
    let reason = task["containers"][1]["reason"].as_str().unwrap();
    assert!(reason.contains("SUCCESS of container migrate"), "{reason}");
    assert!(reason.contains("exited with 4"), "{reason}");
    assert!(task.get("startedAt").is_none());

    let invalid = local
        .ecs(
            "RegisterTaskDefinition",
            json!({"family": "cycle", "memory": "512", "containerDefinitions": [
                {"name": "a", "image": "app:v1", "dependsOn": [{"containerName": "b", "condition": "START"}]},
                {"name": "b", "image": "app:v1", "dependsOn": [{"containerName": "a", "condition": "START"}]}
            ]}),
        )
        .await
        .unwrap_err();
    assert_eq!(invalid.code, "ClientException");
}

/// What the release half relies on: tags on task definitions (also INACTIVE ones),
/// DeregisterTaskDefinition, ListTaskDefinitions' filters and order, ListTasks by startedBy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_definitions_keep_their_tags_through_deregistration_and_list_as_ecs_lists_them() {
    let local = Local::start().await;
    let tags = json!([{"key": "shipmate:release", "value": "r1"}]);
    let registered = local
        .ecs(
            "RegisterTaskDefinition",
            json!({"family": "web", "memory": "512", "tags": tags,
                   "containerDefinitions": [container(&["sleep", "300"])]}),
        )
        .await
        .unwrap();
    assert_eq!(registered["tags"], tags);
    let first = registered["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = local
        .register("web", json!([container(&["sleep", "300"])]))
        .await;
    let third = local
        .register("web", json!([container(&["sleep", "300"])]))
        .await;
    local
        .register("web-other", json!([container(&["true"])]))
        .await;
    let described = local
        .ecs(
            "DescribeTaskDefinition",
            json!({"taskDefinition": "web:1", "include": ["TAGS"]}),
        )
        .await
        .unwrap();
    assert_eq!(described["tags"], tags);
    let untagged = local
        .ecs(
            "DescribeTaskDefinition",
            json!({"taskDefinition": "web", "include": ["TAGS"]}),
        )
        .await
        .unwrap();
    assert_eq!(untagged["taskDefinition"]["revision"], 3);
    assert_eq!(untagged["tags"], json!([]));

    let deregistered = local
        .ecs("DeregisterTaskDefinition", json!({"taskDefinition": first}))
        .await
        .unwrap();
    assert_eq!(deregistered["taskDefinition"]["status"], "INACTIVE");
    assert!(deregistered["taskDefinition"]["deregisteredAt"].is_number());
    let again = local
        .ecs(
            "DeregisterTaskDefinition",
            json!({"taskDefinition": "web:1"}),
        )
        .await
        .unwrap();
    assert_eq!(again["taskDefinition"]["status"], "INACTIVE");
    let no_revision = local
        .ecs("DeregisterTaskDefinition", json!({"taskDefinition": "web"}))
        .await
        .unwrap_err();
    assert_eq!(no_revision.code, "ClientException");
    for reference in ["web:1", first.as_str()] {
        let inactive = local
            .ecs(
                "DescribeTaskDefinition",
                json!({"taskDefinition": reference, "include": ["TAGS"]}),
            )
            .await
            .unwrap();
        assert_eq!(
            inactive["taskDefinition"]["status"], "INACTIVE",
            "{reference}"
        );
        assert_eq!(inactive["tags"], tags, "{reference}");
    }
    local
        .ecs(
            "TagResource",
            json!({"resourceArn": first, "tags": [{"key": "shipmate:outcome", "value": "rolled-back"}]}),
        )
        .await
        .unwrap();
    local
        .ecs(
            "UntagResource",
            json!({"resourceArn": first, "tagKeys": ["shipmate:release"]}),
        )
        .await
        .unwrap();
    let listed = local
        .ecs("ListTagsForResource", json!({"resourceArn": first}))
        .await
        .unwrap();
    assert_eq!(
        listed["tags"],
        json!([{"key": "shipmate:outcome", "value": "rolled-back"}])
    );
    let unknown = local
        .ecs(
            "ListTagsForResource",
            json!({"resourceArn": "arn:aws:ecs:eu-west-1:000000000000:task-definition/web:9"}),
        )
        .await
        .unwrap_err();
    assert_eq!(unknown.code, "ResourceNotFoundException");

    let local = &local;
    let list = |body: Value| async move {
        local.ecs("ListTaskDefinitions", body).await.unwrap()["taskDefinitionArns"].clone()
    };
    let second = second["taskDefinitionArn"].clone();
    let third = third["taskDefinitionArn"].clone();
    assert_eq!(
        list(json!({"familyPrefix": "web"})).await,
        json!([second, third])
    );
    assert_eq!(
        list(json!({"familyPrefix": "web", "sort": "DESC"})).await,
        json!([third, second])
    );
    assert_eq!(
        list(json!({"familyPrefix": "web", "status": "INACTIVE"})).await,
        json!([first])
    );
    assert_eq!(
        list(json!({"familyPrefix": "we"})).await,
        json!([]),
        "the exact family"
    );
    assert_eq!(
        list(json!({})).await.as_array().unwrap().len(),
        3,
        "every ACTIVE revision of every family"
    );

    for started_by in ["shipmate/r1", "shipmate/r1", "someone-else"] {
        local
            .ecs(
                "RunTask",
                json!({"cluster": "c1", "taskDefinition": "web", "startedBy": started_by}),
            )
            .await
            .unwrap();
    }
    let mine = local
        .ecs(
            "ListTasks",
            json!({"cluster": "c1", "startedBy": "shipmate/r1"}),
        )
        .await
        .unwrap();
    assert_eq!(mine["taskArns"].as_array().unwrap().len(), 2, "{mine}");
    local.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_get_distinct_consecutive_revisions() {
    let local = Local::start().await;
    let registrations: Vec<_> = (0..20)
        .map(|n| {
            let engine = local.engine.clone();
            tokio::spawn(async move {
                let target =
                    Target::parse("AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition")
                        .unwrap();
                let body = json!({"family": "busy", "memory": "512", "containerDefinitions": [
                    {"name": "main", "image": "app:v1", "command": ["echo", n.to_string()]}
                ]})
                .to_string();
                let output = engine
                    .handle(Request {
                        target: &target,
                        region: "eu-west-1",
                        body: body.as_bytes(),
                    })
                    .await
                    .unwrap();
                let output: Value = serde_json::from_slice(&output).unwrap();
                output["taskDefinition"]["revision"].as_i64().unwrap()
            })
        })
        .collect();
    let mut revisions = Vec::new();
    for registration in registrations {
        revisions.push(registration.await.unwrap());
    }
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=20).collect::<Vec<i64>>());
    let listed = local
        .ecs("ListTaskDefinitions", json!({"familyPrefix": "busy"}))
        .await
        .unwrap();
    let expected: Vec<String> = (1..=20)
        .map(|n| format!("arn:aws:ecs:eu-west-1:000000000000:task-definition/busy:{n}"))
        .collect();
    assert_eq!(listed["taskDefinitionArns"], json!(expected));
}
