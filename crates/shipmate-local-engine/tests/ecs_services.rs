//! Services through `Engine::handle`: real processes, the real scheduler loop. Every wait polls
//! DescribeServices for a condition with a generous deadline.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shipmate_local_engine::{Engine, EngineConfig, Request};
use shipmate_local_protocol::{AwsError, Target};

const DEADLINE: Duration = Duration::from_secs(60);

struct Local {
    engine: Engine,
    _image: tempfile::TempDir,
}

impl Local {
    async fn start() -> Local {
        Local::start_with(EngineConfig::default()).await
    }

    async fn start_with(config: EngineConfig) -> Local {
        let engine = Engine::start(config).await.expect("engine starts");
        let image = tempfile::tempdir().unwrap();
        engine.images.push_dir("web:v1", image.path()).unwrap();
        engine.images.push_dir("web:v2", image.path()).unwrap();
        let local = Local {
            engine,
            _image: image,
        };
        local
            .ecs("CreateCluster", json!({"clusterName": "c1"}))
            .await
            .unwrap();
        local
    }

    async fn ecs(&self, operation: &str, body: Value) -> Result<Value, AwsError> {
        let target =
            Target::parse(&format!("AmazonEC2ContainerServiceV20141113.{operation}")).unwrap();
        let body = body.to_string();
        let output = self
            .engine
            .handle(Request {
                target: &target,
                region: "us-east-1",
                body: body.as_bytes(),
            })
            .await?;
        Ok(serde_json::from_slice(&output).expect("responses are JSON"))
    }

    /// Registers a revision of family `web` whose container runs `script` with sh.
    async fn register(&self, image: &str, script: &str) -> String {
        let output = self
            .ecs(
                "RegisterTaskDefinition",
                json!({"family": "web", "memory": "512", "containerDefinitions": [
                    {"name": "app", "image": image, "command": ["sh", "-c", script], "stopTimeout": 2}
                ]}),
            )
            .await
            .unwrap();
        output["taskDefinition"]["taskDefinitionArn"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn service(&self) -> Value {
        let output = self
            .ecs(
                "DescribeServices",
                json!({"cluster": "c1", "services": ["web"]}),
            )
            .await
            .unwrap();
        output["services"][0].clone()
    }

    async fn wait_for(&self, what: &str, condition: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let service = self.service().await;
            if condition(&service) {
                return service;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "timed out waiting for {what}: {service:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the ServicesStable waiter checks, and the rollout COMPLETED.
    async fn wait_stable(&self) -> Value {
        self.wait_for("steady state", |s| {
            s["deployments"].as_array().unwrap().len() == 1
                && s["runningCount"] == s["desiredCount"]
                && s["deployments"][0]["rolloutState"] == "COMPLETED"
        })
        .await
    }

    async fn running_tasks(&self) -> Vec<Value> {
        let list = self
            .ecs("ListTasks", json!({"cluster": "c1", "serviceName": "web"}))
            .await
            .unwrap();
        let arns = list["taskArns"].clone();
        if arns.as_array().unwrap().is_empty() {
            return Vec::new();
        }
        let output = self
            .ecs("DescribeTasks", json!({"cluster": "c1", "tasks": arns}))
            .await
            .unwrap();
        output["tasks"].as_array().unwrap().clone()
    }
}

fn messages(service: &Value) -> Vec<String> {
    service["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_starts_its_tasks_and_rolls_to_a_new_revision() {
    let local = Local::start().await;
    let v1 = local.register("web:v1", "exec sleep 600").await;
    let created = local
        .ecs(
            "CreateService",
            json!({"cluster": "c1", "serviceName": "web", "taskDefinition": v1, "desiredCount": 2}),
        )
        .await
        .unwrap();
    assert_eq!(created["service"]["status"], "ACTIVE");
    assert_eq!(
        created["service"]["deployments"][0]["rolloutState"],
        "IN_PROGRESS"
    );

    let service = local.wait_stable().await;
    assert_eq!(service["deployments"][0]["rolloutState"], "COMPLETED");
    assert_eq!(service["runningCount"], 2);
    let clusters = local
        .ecs(
            "DescribeClusters",
            json!({"clusters": ["c1"], "include": ["STATISTICS"]}),
        )
        .await
        .unwrap();
    let statistics = &clusters["clusters"][0]["statistics"];
    assert!(
        statistics
            .as_array()
            .unwrap()
            .contains(&json!({"name": "runningEC2TasksCount", "value": "2"})),
        "{statistics}"
    );
    assert!(
        statistics
            .as_array()
            .unwrap()
            .contains(&json!({"name": "activeEC2ServiceCount", "value": "1"})),
        "{statistics}"
    );
    let first_deployment = service["deployments"][0]["id"].as_str().unwrap().to_owned();
    assert!(first_deployment.starts_with("ecs-svc/"));
    for task in local.running_tasks().await {
        assert_eq!(task["group"], "service:web");
        assert_eq!(task["startedBy"], first_deployment.as_str());
    }

    let v2 = local.register("web:v2", "exec sleep 600").await;
    let updated = local
        .ecs(
            "UpdateService",
            json!({"cluster": "c1", "service": "web", "taskDefinition": v2}),
        )
        .await
        .unwrap();
    let deployments = updated["service"]["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 2);
    assert_eq!(deployments[0]["status"], "PRIMARY");
    assert_eq!(deployments[1]["status"], "ACTIVE");

    let service = local
        .wait_for("the new deployment completes", |s| {
            s["deployments"].as_array().unwrap().len() == 1
                && s["deployments"][0]["taskDefinition"] == v2.as_str()
                && s["deployments"][0]["rolloutState"] == "COMPLETED"
                && s["runningCount"] == 2
        })
        .await;
    assert_eq!(service["taskDefinition"], v2.as_str());
    let tasks = local.running_tasks().await;
    assert_eq!(tasks.len(), 2, "{tasks:#?}");
    assert!(tasks.iter().all(|t| t["taskDefinitionArn"] == v2.as_str()));
    let messages = messages(&service);
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("(service web) has started 2 tasks: (task ")),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("(service web) has stopped ")),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.ends_with("deployment completed.")),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m == "(service web) has reached a steady state."),
        "{messages:#?}"
    );
    local.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_revision_trips_the_circuit_breaker_and_rolls_back() {
    let local = Local::start().await;
    let good = local.register("web:v1", "exec sleep 600").await;
    local
        .ecs(
            "CreateService",
            json!({"cluster": "c1", "serviceName": "web", "taskDefinition": good, "desiredCount": 2,
                   "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}}}),
        )
        .await
        .unwrap();
    local.wait_stable().await;

    let crashing = local.register("web:v2", "echo boom; exit 1").await;
    local
        .ecs(
            "UpdateService",
            json!({"cluster": "c1", "service": "web", "taskDefinition": crashing}),
        )
        .await
        .unwrap();
    let service = local
        .wait_for("the rollback completes", |s| {
            messages(s)
                .iter()
                .any(|m| m.starts_with("(service web) rolling back to deployment"))
                && s["deployments"].as_array().unwrap().len() == 1
                && s["deployments"][0]["rolloutState"] == "COMPLETED"
                && s["runningCount"] == 2
        })
        .await;
    assert_eq!(
        service["taskDefinition"],
        good.as_str(),
        "back on the good revision"
    );
    let messages = messages(&service);
    assert!(
        messages
            .iter()
            .any(|m| m.ends_with("deployment failed: tasks failed to start.")),
        "{messages:#?}"
    );
    // The old tasks never stopped: minimumHealthyPercent 100 kept them while the new ones crashed.
    let tasks = local.running_tasks().await;
    assert!(
        tasks
            .iter()
            .all(|t| t["taskDefinitionArn"] == good.as_str()),
        "{tasks:#?}"
    );
    local.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_errors_are_aws_shaped() {
    let local = Local::start().await;
    let v1 = local.register("web:v1", "exec sleep 600").await;
    let missing = local
        .ecs(
            "UpdateService",
            json!({"cluster": "c1", "service": "nope", "desiredCount": 1}),
        )
        .await
        .unwrap_err();
    assert_eq!(missing.code, "ServiceNotFoundException");
    let no_cluster = local
        .ecs("CreateService", json!({"cluster": "nope", "serviceName": "web", "taskDefinition": v1, "desiredCount": 1}))
        .await
        .unwrap_err();
    assert_eq!(no_cluster.code, "ClusterNotFoundException");
    let described = local
        .ecs(
            "DescribeServices",
            json!({"cluster": "c1", "services": ["nope"]}),
        )
        .await
        .unwrap();
    assert_eq!(described["failures"][0]["reason"], "MISSING");
    assert_eq!(
        described["failures"][0]["arn"],
        "arn:aws:ecs:us-east-1:000000000000:service/c1/nope"
    );

    local
        .ecs(
            "CreateService",
            json!({"cluster": "c1", "serviceName": "web", "taskDefinition": v1, "desiredCount": 1}),
        )
        .await
        .unwrap();
    let scaled = local
        .ecs("DeleteService", json!({"cluster": "c1", "service": "web"}))
        .await
        .unwrap_err();
    assert_eq!(scaled.code, "InvalidParameterException");
    let deleted = local
        .ecs(
            "DeleteService",
            json!({"cluster": "c1", "service": "web", "force": true}),
        )
        .await
        .unwrap();
    assert_eq!(deleted["service"]["status"], "DRAINING");
    local
        .wait_for("INACTIVE", |s| s["status"] == "INACTIVE")
        .await;
    let listed = local
        .ecs("ListServices", json!({"cluster": "c1"}))
        .await
        .unwrap();
    assert_eq!(listed["serviceArns"], json!([]));
    local.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_survive_a_restart_and_get_their_tasks_back() {
    let state = tempfile::tempdir().unwrap();
    let config = || EngineConfig {
        state_dir: Some(state.path().to_owned()),
        ..EngineConfig::default()
    };
    let local = Local::start_with(config()).await;
    let v1 = local.register("web:v1", "exec sleep 600").await;
    local
        .ecs(
            "CreateService",
            json!({"cluster": "c1", "serviceName": "web", "taskDefinition": v1, "desiredCount": 2}),
        )
        .await
        .unwrap();
    local.wait_stable().await;
    let before: Vec<Value> = local.running_tasks().await;
    local.engine.shutdown().await;
    drop(local);

    let local = Local::start_with(config()).await;
    let service = local.wait_stable().await;
    assert_eq!(service["taskDefinition"], v1.as_str());
    let after = local.running_tasks().await;
    assert_eq!(after.len(), 2);
    for task in &after {
        assert!(
            before.iter().all(|old| old["taskArn"] != task["taskArn"]),
            "tasks of the previous run came back STOPPED and were replaced"
        );
    }
    local.engine.shutdown().await;
}

/// The seconds (epoch, ms precision) at which the service's tasks were created, oldest first,
/// and how many of them are STOPPED.
async fn launches(local: &Local) -> (Vec<f64>, usize) {
    let mut arns = Vec::new();
    for status in ["RUNNING", "STOPPED"] {
        let list = local
            .ecs(
                "ListTasks",
                json!({"cluster": "c1", "serviceName": "web", "desiredStatus": status}),
            )
            .await
            .unwrap();
        arns.extend(list["taskArns"].as_array().unwrap().iter().cloned());
    }
    let mut created = Vec::new();
    let mut stopped = 0;
    for chunk in arns.chunks(100) {
        let output = local
            .ecs("DescribeTasks", json!({"cluster": "c1", "tasks": chunk}))
            .await
            .unwrap();
        for task in output["tasks"].as_array().unwrap() {
            created.push(task["createdAt"].as_f64().unwrap());
            stopped += usize::from(task["lastStatus"] == "STOPPED");
        }
    }
    created.sort_by(f64::total_cmp);
    (created, stopped)
}

const IMPAIRED: &str = "(service web) is unable to consistently start tasks successfully.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_whose_tasks_cannot_start_is_throttled_until_a_new_task_definition() {
    let local = Local::start_with(EngineConfig {
        service_throttle_base: Duration::from_millis(300),
        ..EngineConfig::default()
    })
    .await;
    let never_pushed = local.register("web:never-pushed", "exec sleep 600").await;
    local
        .ecs(
            "CreateService",
            json!({"cluster": "c1", "serviceName": "web", "taskDefinition": never_pushed, "desiredCount": 1}),
        )
        .await
        .unwrap();
    let mut created = Vec::new();
    let start = Instant::now();
    while created.len() < 7 {
        assert!(
            start.elapsed() < DEADLINE,
            "only {} launches",
            created.len()
        );
        created = launches(&local).await.0;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Failures at scheduler speed until the third, then waits of 300, 600, 1200 ms… after each
    // failure: the gaps grow. Which launch the first wait follows depends on whether a failure is
    // seen before or after the next launch, so it is found, not assumed.
    let gaps: Vec<f64> = created.windows(2).map(|w| w[1] - w[0]).take(6).collect();
    let first_wait = gaps
        .iter()
        .position(|gap| *gap >= 0.25)
        .unwrap_or_else(|| panic!("no wait between launches: {gaps:?}"));
    assert!(
        (2..=3).contains(&first_wait),
        "throttled from the third failure on: {gaps:?}"
    );
    let waits = &gaps[first_wait..];
    assert!(waits.len() >= 2, "{gaps:?}");
    assert!(waits[0] >= 0.3, "{gaps:?}");
    assert!(
        waits.windows(2).all(|w| w[1] > w[0] * 1.5),
        "the waits grow: {gaps:?}"
    );
    let service = local.service().await;
    let impaired = messages(&service).iter().filter(|m| *m == IMPAIRED).count();
    assert_eq!(impaired, 1, "{:#?}", messages(&service));

    // From the next failure on the wait is hours; a new task definition must not wait for it.
    local
        .engine
        .ecs
        .set_service_throttle_base(Duration::from_secs(3600));
    let failed_before = launches(&local).await.1;
    let start = Instant::now();
    while launches(&local).await.1 <= failed_before {
        assert!(start.elapsed() < DEADLINE, "no further failure");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let good = local.register("web:v1", "exec sleep 600").await;
    local
        .ecs(
            "UpdateService",
            json!({"cluster": "c1", "service": "web", "taskDefinition": good}),
        )
        .await
        .unwrap();
    let service = local.wait_stable().await;
    assert_eq!(service["taskDefinition"], good.as_str());
    let impaired = messages(&service).iter().filter(|m| *m == IMPAIRED).count();
    assert_eq!(impaired, 1, "{:#?}", messages(&service));
    local.engine.shutdown().await;
}
