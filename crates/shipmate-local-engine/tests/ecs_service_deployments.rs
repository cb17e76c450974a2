//! Service deployments and revisions through `Engine::handle`, with real processes and the
//! real scheduler loop: records of rolling deployments, a PAUSE hook at PRE_SCALE_UP continued
//! (also after a restart) and rolled back, StopServiceDeployment, blue/green with a fast deployment clock, the
//! operations' errors, and the CODE_DEPLOY and EXTERNAL controllers. Waits poll for a
//! condition with a generous deadline.

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
        Local::start_in(None).await
    }

    /// With state kept in `state_dir`, if given.
    async fn start_in(state_dir: Option<std::path::PathBuf>) -> Local {
        let engine = Engine::start(EngineConfig {
            state_dir,
            // A deployment minute passes in a tenth of a second.
            deployment_time_scale: 600.0,
            ..EngineConfig::default()
        })
        .await
        .expect("engine starts");
        let image = tempfile::tempdir().unwrap();
        engine.images.push_dir("web:v1", image.path()).unwrap();
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

    /// Registers a revision of family `web` running `script`, serving on port 8080.
    async fn register(&self, script: &str) -> String {
        let output = self
            .ecs(
                "RegisterTaskDefinition",
                json!({"family": "web", "memory": "512", "containerDefinitions": [{
                    "name": "app", "image": "web:v1", "command": ["sh", "-c", script],
                    "stopTimeout": 2, "portMappings": [{"containerPort": 8080}]
                }]}),
            )
            .await
            .unwrap();
        output["taskDefinition"]["taskDefinitionArn"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn create(&self, body: Value) -> Value {
        let mut request = json!({"cluster": "c1", "serviceName": "web", "desiredCount": 1});
        request
            .as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        self.ecs("CreateService", request).await.unwrap()["service"].clone()
    }

    async fn update(&self, body: Value) -> Result<Value, AwsError> {
        let mut request = json!({"cluster": "c1", "service": "web"});
        request
            .as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        Ok(self.ecs("UpdateService", request).await?["service"].clone())
    }

    async fn deployment(&self, arn: &str) -> Value {
        let output = self
            .ecs(
                "DescribeServiceDeployments",
                json!({"serviceDeploymentArns": [arn]}),
            )
            .await
            .unwrap();
        output["serviceDeployments"][0].clone()
    }

    async fn wait_deployment(&self, arn: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let deployment = self.deployment(arn).await;
            if done(&deployment) {
                return deployment;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "timed out waiting for {what}: {deployment:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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

    /// Task definitions of the service's tasks that are not stopped.
    async fn live_task_definitions(&self) -> Vec<String> {
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
        output["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["group"] == "service:web" && t["lastStatus"] != "STOPPED")
            .map(|t| t["taskDefinitionArn"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn pause_hook(stage: &str) -> Value {
    json!({"lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": [stage],
        "timeoutConfiguration": {"timeoutInMinutes": 1440, "action": "ROLLBACK"}}]})
}

fn awaiting_hook(deployment: &Value) -> Option<String> {
    deployment["lifecycleHookDetails"]
        .as_array()?
        .iter()
        .find(|hook| hook["status"] == "AWAITING_ACTION")
        .map(|hook| hook["hookId"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rolling_deployment_has_a_record_and_a_revision() {
    let local = Local::start().await;
    let v1 = local.register("exec sleep 600").await;
    let created = local.create(json!({"taskDefinition": v1})).await;
    let first = created["currentServiceDeployment"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        first.starts_with("arn:aws:ecs:us-east-1:000000000000:service-deployment/c1/web/"),
        "{first}"
    );
    let done = local
        .wait_deployment(&first, "the first deployment", |d| {
            d["status"] == "SUCCESSFUL"
        })
        .await;
    assert_eq!(done["lifecycleStage"], "POST_SCALE_UP");
    assert_eq!(done["sourceServiceRevisions"], json!([]));
    assert_eq!(done["targetServiceRevision"]["runningTaskCount"], 1);
    assert_eq!(done["deploymentConfiguration"]["strategy"], "ROLLING");
    assert_eq!(done["deploymentCircuitBreaker"]["status"], "DISABLED");
    assert!(done["finishedAt"].as_f64().unwrap() >= done["startedAt"].as_f64().unwrap());
    let first_revision = done["targetServiceRevision"]["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(first_revision.contains(":service-revision/c1/web/"));

    // Count and configuration changes (lifecycle hooks included) start no deployment.
    let scaled = local
        .update(json!({"desiredCount": 2, "deploymentConfiguration": pause_hook("PRE_SCALE_UP")}))
        .await
        .unwrap();
    assert_eq!(scaled["currentServiceDeployment"], first.as_str());
    assert_eq!(
        scaled["deploymentConfiguration"]["lifecycleHooks"][0]["targetType"],
        "PAUSE"
    );
    let removed = local
        .update(json!({"deploymentConfiguration": {"lifecycleHooks": []}}))
        .await
        .unwrap();
    assert_eq!(removed["currentServiceDeployment"], first.as_str());

    // A forced deployment does: a new record, a new revision of the same task definition.
    let forced = local
        .update(json!({"forceNewDeployment": true}))
        .await
        .unwrap();
    let second = forced["currentServiceDeployment"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second, first);
    let done = local
        .wait_deployment(&second, "the forced deployment", |d| {
            d["status"] == "SUCCESSFUL"
        })
        .await;
    assert_eq!(
        done["sourceServiceRevisions"][0]["arn"],
        first_revision.as_str()
    );
    let service = local.service().await;
    assert_eq!(
        service["currentServiceRevisions"][0]["arn"],
        done["targetServiceRevision"]["arn"]
    );
    assert_eq!(
        service["currentServiceRevisions"].as_array().unwrap().len(),
        1
    );

    let revisions = local
        .ecs(
            "DescribeServiceRevisions",
            json!({"serviceRevisionArns": [first_revision, "arn:aws:ecs:us-east-1:000000000000:service-revision/c1/web/1"]}),
        )
        .await
        .unwrap();
    let revision = &revisions["serviceRevisions"][0];
    assert_eq!(revision["taskDefinition"], v1.as_str());
    assert_eq!(
        revision["containerImages"],
        json!([{"containerName": "app", "image": "web:v1"}])
    );
    assert_eq!(revisions["failures"][0]["reason"], "MISSING");

    // Newest first; status and paging.
    let listed = local
        .ecs(
            "ListServiceDeployments",
            json!({"cluster": "c1", "service": "web"}),
        )
        .await
        .unwrap();
    let arns: Vec<&str> = listed["serviceDeployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["serviceDeploymentArn"].as_str().unwrap())
        .collect();
    assert_eq!(arns, [second.as_str(), first.as_str()]);
    let page = local
        .ecs(
            "ListServiceDeployments",
            json!({"cluster": "c1", "service": "web", "maxResults": 1}),
        )
        .await
        .unwrap();
    assert_eq!(page["serviceDeployments"].as_array().unwrap().len(), 1);
    let rest = local
        .ecs(
            "ListServiceDeployments",
            json!({"cluster": "c1", "service": "web", "maxResults": 1, "nextToken": page["nextToken"]}),
        )
        .await
        .unwrap();
    assert_eq!(
        rest["serviceDeployments"][0]["serviceDeploymentArn"],
        first.as_str()
    );
    assert!(rest.get("nextToken").is_none());
    let none = local
        .ecs(
            "ListServiceDeployments",
            json!({"cluster": "c1", "service": "web", "status": ["IN_PROGRESS"]}),
        )
        .await
        .unwrap();
    assert_eq!(none["serviceDeployments"], json!([]));
    let created_at = done["createdAt"].as_f64().unwrap();
    let after = local
        .ecs(
            "ListServiceDeployments",
            json!({"cluster": "c1", "service": "web", "createdAt": {"after": created_at}}),
        )
        .await
        .unwrap();
    assert_eq!(after["serviceDeployments"].as_array().unwrap().len(), 1);

    // A finished deployment cannot be stopped.
    let error = local
        .ecs(
            "StopServiceDeployment",
            json!({"serviceDeploymentArn": first}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code, "ConflictException");
    local.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_deployment_paused_before_scale_up_starts_nothing_until_continued() {
    let local = Local::start().await;
    let v1 = local.register("exec sleep 600").await;
    let created = local
        .create(
            json!({"taskDefinition": v1, "deploymentConfiguration": pause_hook("PRE_SCALE_UP")}),
        )
        .await;
    // The first deployment pauses too.
    let first = created["currentServiceDeployment"]
        .as_str()
        .unwrap()
        .to_owned();
    let paused = local
        .wait_deployment(&first, "the first pause", |d| awaiting_hook(d).is_some())
        .await;
    local
        .ecs(
            "ContinueServiceDeployment",
            json!({"serviceDeploymentArn": first, "hookId": awaiting_hook(&paused).unwrap()}),
        )
        .await
        .unwrap();
    local
        .wait_deployment(&first, "the first deployment", |d| {
            d["status"] == "SUCCESSFUL"
        })
        .await;

    let v2 = local.register("exec sleep 601").await;
    let updated = local.update(json!({"taskDefinition": v2})).await.unwrap();
    let arn = updated["currentServiceDeployment"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(arn, first);
    let paused = local
        .wait_deployment(&arn, "the pause", |d| awaiting_hook(d).is_some())
        .await;
    assert_eq!(paused["status"], "IN_PROGRESS");
    assert_eq!(paused["lifecycleStage"], "PRE_SCALE_UP");
    let hook = &paused["lifecycleHookDetails"][0];
    assert!(hook["hookId"].as_str().unwrap().starts_with("ecs-pause-"));
    assert_eq!(hook["targetType"], "PAUSE");
    assert_eq!(hook["timeoutAction"], "ROLLBACK");
    assert!(hook["expiresAt"].as_f64().unwrap() > paused["createdAt"].as_f64().unwrap());
    // A few scheduler passes later, still no task of v2.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        local.live_task_definitions().await,
        std::slice::from_ref(&v1)
    );
    let hook_id = awaiting_hook(&paused).unwrap();

    let error = local
        .ecs(
            "ContinueServiceDeployment",
            json!({"serviceDeploymentArn": arn, "hookId": "ecs-pause-nope"}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code, "InvalidParameterException");
    let unknown = format!("{arn}0");
    let error = local
        .ecs(
            "ContinueServiceDeployment",
            json!({"serviceDeploymentArn": unknown, "hookId": hook_id}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code, "ServiceDeploymentNotFoundException");

    local
        .ecs(
            "ContinueServiceDeployment",
            json!({"serviceDeploymentArn": arn, "hookId": hook_id, "action": "CONTINUE"}),
        )
        .await
        .unwrap();
    let done = local
        .wait_deployment(&arn, "success", |d| d["status"] == "SUCCESSFUL")
        .await;
    assert_eq!(done["lifecycleHookDetails"][0]["status"], "SUCCEEDED");
    assert_eq!(
        local.live_task_definitions().await,
        std::slice::from_ref(&v2)
    );
    let error = local
        .ecs(
            "ContinueServiceDeployment",
            json!({"serviceDeploymentArn": arn, "hookId": hook_id}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code, "InvalidParameterException");
    local.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_deployment_rolled_back_leaves_the_service_on_its_source_revision() {
    let local = Local::start().await;
    let v1 = local.register("exec sleep 600").await;
    let created = local.create(json!({"taskDefinition": v1})).await;
    let first = created["currentServiceDeployment"]
        .as_str()
        .unwrap()
        .to_owned();
    local
        .wait_deployment(&first, "the first deployment", |d| {
            d["status"] == "SUCCESSFUL"
        })
        .await;
    local
        .update(json!({"deploymentConfiguration": pause_hook("POST_SCALE_UP")}))
        .await
        .unwrap();
    let v2 = local.register("exec sleep 601").await;
    let updated = local.update(json!({"taskDefinition": v2})).await.unwrap();
    let arn = updated["currentServiceDeployment"]
        .as_str()
        .unwrap()
        .to_owned();
    let paused = local
        .wait_deployment(&arn, "the pause", |d| awaiting_hook(d).is_some())
        .await;
    assert_eq!(paused["lifecycleStage"], "POST_SCALE_UP");
    local
        .ecs(
            "ContinueServiceDeployment",
            json!({"serviceDeploymentArn": arn, "hookId": awaiting_hook(&paused).unwrap(), "action": "ROLLBACK"}),
        )
        .await
        .unwrap();
    let rolled_back = local
        .wait_deployment(&arn, "the rollback", |d| {
            d["status"] == "ROLLBACK_SUCCESSFUL"
        })
        .await;
    assert_eq!(rolled_back["lifecycleHookDetails"][0]["status"], "FAILED");
    assert_eq!(
        rolled_back["rollback"]["serviceRevisionArn"],
        rolled_back["sourceServiceRevisions"][0]["arn"]
    );
    assert!(rolled_back["rollback"]["startedAt"].as_f64().is_some());
    let service = local.service().await;
    assert_eq!(service["taskDefinition"], v1.as_str());
    assert_eq!(service["deployments"][0]["taskDefinition"], v1.as_str());
    assert_eq!(service["deployments"][0]["status"], "PRIMARY");
    let start = Instant::now();
    while local.live_task_definitions().await != [v1.clone()] {
        assert!(start.elapsed() < DEADLINE, "v2's task never went");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    local.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blue_green_deployment_keeps_blue_until_after_its_bake_and_stop_rolls_back() {
    let local = Local::start().await;
    let v1 = local.register("exec sleep 600").await;
    let created = local
        .create(json!({"taskDefinition": v1, "deploymentConfiguration": {
            "strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1}}))
        .await;
    let first = created["currentServiceDeployment"]
        .as_str()
        .unwrap()
        .to_owned();
    local
        .wait_deployment(&first, "the first deployment", |d| {
            d["status"] == "SUCCESSFUL"
        })
        .await;
    // A long bake for the next one: Stop ROLLBACK while baking.
    local
        .update(json!({"deploymentConfiguration": {"bakeTimeInMinutes": 1440}}))
        .await
        .unwrap();
    let v2 = local.register("exec sleep 601").await;
    let updated = local.update(json!({"taskDefinition": v2})).await.unwrap();
    let arn = updated["currentServiceDeployment"]
        .as_str()
        .unwrap()
        .to_owned();
    let baking = local
        .wait_deployment(&arn, "the bake", |d| d["lifecycleStage"] == "BAKE_TIME")
        .await;
    assert_eq!(baking["status"], "IN_PROGRESS");
    let service = local.service().await;
    assert_eq!(service["deployments"][0]["status"], "PRIMARY");
    assert_eq!(service["deployments"][0]["taskDefinition"], v2.as_str());
    assert_eq!(service["deployments"][1]["status"], "ACTIVE");
    let mut live = local.live_task_definitions().await;
    live.sort();
    assert_eq!(live, [v1.clone(), v2.clone()], "blue and green both run");

    local
        .ecs(
            "StopServiceDeployment",
            json!({"serviceDeploymentArn": arn, "stopType": "ROLLBACK"}),
        )
        .await
        .unwrap();
    local
        .wait_deployment(&arn, "the rollback", |d| {
            d["status"] == "ROLLBACK_SUCCESSFUL"
        })
        .await;
    assert_eq!(local.service().await["taskDefinition"], v1.as_str());
    local.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_deployment_errors_are_aws_shaped() {
    let local = Local::start().await;
    let v1 = local.register("exec sleep 600").await;
    local
        .create(json!({"taskDefinition": v1, "desiredCount": 0}))
        .await;
    let many: Vec<String> = (0..21)
        .map(|i| format!("arn:aws:ecs:us-east-1:000000000000:service-deployment/c1/web/{i}"))
        .collect();
    for (operation, body) in [
        (
            "DescribeServiceDeployments",
            json!({"serviceDeploymentArns": many}),
        ),
        (
            "DescribeServiceRevisions",
            json!({"serviceRevisionArns": []}),
        ),
        (
            "ListServiceDeployments",
            json!({"cluster": "c1", "service": "web", "maxResults": 101}),
        ),
        (
            "ListServiceDeployments",
            json!({"cluster": "c1", "service": "web", "status": ["DONE"]}),
        ),
        (
            "StopServiceDeployment",
            json!({"serviceDeploymentArn": many[0], "stopType": "PAUSE"}),
        ),
    ] {
        let error = local.ecs(operation, body).await.unwrap_err();
        assert_eq!(error.code, "InvalidParameterException", "{operation}");
    }
    let missing = local
        .ecs(
            "DescribeServiceDeployments",
            json!({"serviceDeploymentArns": ["nonsense", many[0]]}),
        )
        .await
        .unwrap();
    assert_eq!(missing["serviceDeployments"], json!([]));
    assert_eq!(
        missing["failures"][0],
        json!({"arn": "nonsense", "reason": "MISSING"})
    );
    let error = local
        .ecs(
            "StopServiceDeployment",
            json!({"serviceDeploymentArn": many[0]}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code, "ServiceDeploymentNotFoundException");
    let error = local
        .ecs(
            "ListServiceDeployments",
            json!({"cluster": "c1", "service": "nope"}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code, "ServiceNotFoundException");

    // Validation of the deployment configuration.
    for (configuration, expected) in [
        (
            json!({"lifecycleHooks": [{"lifecycleStages": ["PRE_SCALE_UP"], "hookTargetArn": "arn:aws:lambda:us-east-1:000000000000:function:f"}]}),
            "not supported by shipmate local",
        ),
        (
            json!({"strategy": "BLUE_GREEN", "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["TEST_TRAFFIC_SHIFT"]}]}),
            "TEST_TRAFFIC_SHIFT",
        ),
        (
            json!({"lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["BAKE_TIME"]}]}),
            "Invalid lifecycle stage",
        ),
        (
            json!({"lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["PRE_SCALE_UP"], "timeoutConfiguration": {"timeoutInMinutes": 20161}}]}),
            "timeoutInMinutes",
        ),
        (
            json!({"lifecycleHooks": (0..11).map(|_| json!({"targetType": "PAUSE", "lifecycleStages": ["PRE_SCALE_UP"]})).collect::<Vec<_>>()}),
            "at most 10",
        ),
        (json!({"strategy": "BLUE_GREEN"}), "bakeTimeInMinutes"),
        (
            json!({"strategy": "LINEAR", "bakeTimeInMinutes": 0}),
            "load balancer",
        ),
        (
            json!({"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 2.0}}),
            "stepPercent",
        ),
        (
            json!({"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 5.05}}),
            "canaryPercent",
        ),
        (
            json!({"linearConfiguration": {"stepPercent": 10.0}}),
            "only valid with the LINEAR",
        ),
        (
            json!({"minimumHealthyPercent": 50, "earlySuccessCriteria": {"enable": true, "healthyPercent": 40}}),
            "healthyPercent",
        ),
    ] {
        let error = local
            .update(json!({"deploymentConfiguration": configuration}))
            .await
            .unwrap_err();
        assert_eq!(error.code, "InvalidParameterException", "{configuration}");
        assert!(error.message.contains(expected), "{}", error.message);
    }
    // A blue/green load balancer needs advancedConfiguration and a container port that exists.
    let load_balancer = |port: i32, advanced: bool| {
        let mut lb = json!({"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/blue/1",
            "containerName": "app", "containerPort": port});
        if advanced {
            lb["advancedConfiguration"] = json!({
                "alternateTargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/green/2",
                "productionListenerRule": "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener-rule/app/x/1/2/3",
                "roleArn": "arn:aws:iam::000000000000:role/ecs-elb"});
        }
        lb
    };
    let blue_green = json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1});
    let error = local
        .update(json!({"deploymentConfiguration": blue_green, "loadBalancers": [load_balancer(8080, false)]}))
        .await
        .unwrap_err();
    assert!(
        error.message.contains("advancedConfiguration"),
        "{}",
        error.message
    );
    let error = local
        .update(json!({"deploymentConfiguration": blue_green, "loadBalancers": [load_balancer(9090, true)]}))
        .await
        .unwrap_err();
    assert!(
        error.message.contains("container port 9090"),
        "{}",
        error.message
    );
    let linear = local
        .update(
            json!({"deploymentConfiguration": {"strategy": "LINEAR", "bakeTimeInMinutes": 0},
            "loadBalancers": [load_balancer(8080, true)]}),
        )
        .await
        .unwrap();
    assert_eq!(
        linear["deploymentConfiguration"]["linearConfiguration"],
        json!({"stepPercent": 10.0, "stepBakeTimeInMinutes": 6})
    );
    local.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_deploy_and_external_services_run_a_task_set_and_refuse_deployments() {
    let local = Local::start().await;
    let v1 = local.register("exec sleep 600").await;
    let v2 = local.register("exec sleep 601").await;
    let created = local
        .create(json!({"taskDefinition": v1, "deploymentController": {"type": "CODE_DEPLOY"}}))
        .await;
    assert_eq!(created["deployments"], json!([]));
    assert!(created.get("currentServiceDeployment").is_none());
    let task_set = &created["taskSets"][0];
    assert_eq!(task_set["status"], "PRIMARY");
    assert_eq!(task_set["startedBy"], "CODE_DEPLOY");
    assert_eq!(
        task_set["scale"],
        json!({"value": 100.0, "unit": "PERCENT"})
    );
    let start = Instant::now();
    while local.live_task_definitions().await != [v1.clone()] {
        assert!(
            start.elapsed() < DEADLINE,
            "the task set's task never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (body, message) in [
        (
            json!({"taskDefinition": v2}),
            "Unable to update task definition on services with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment.",
        ),
        (
            json!({"forceNewDeployment": true}),
            "Cannot force a new deployment on services with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment.",
        ),
    ] {
        let error = local.update(body).await.unwrap_err();
        assert_eq!(error.code, "InvalidParameterException");
        assert_eq!(error.message, message);
    }
    let error = local
        .update(json!({"platformVersion": "1.4.0"}))
        .await
        .unwrap_err();
    assert_eq!(error.code, "InvalidParameterException");
    let error = local
        .update(
            json!({"deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1}}),
        )
        .await
        .unwrap_err();
    assert!(
        error.message.contains("ECS deployment controller"),
        "{}",
        error.message
    );
    let scaled = local
        .update(
            json!({"desiredCount": 2, "taskDefinition": v1, "healthCheckGracePeriodSeconds": 30}),
        )
        .await
        .unwrap();
    assert_eq!(scaled["taskSets"][0]["computedDesiredCount"], 2);
    let listed = local
        .ecs(
            "ListServiceDeployments",
            json!({"cluster": "c1", "service": "web"}),
        )
        .await
        .unwrap();
    assert_eq!(listed["serviceDeployments"], json!([]));

    let external = local
        .ecs(
            "CreateService",
            json!({"cluster": "c1", "serviceName": "ext", "taskDefinition": v1, "desiredCount": 0,
                "deploymentController": {"type": "EXTERNAL"}}),
        )
        .await
        .unwrap();
    assert_eq!(
        external["service"]["deploymentController"]["type"],
        "EXTERNAL"
    );
    let error = local
        .ecs(
            "UpdateService",
            json!({"cluster": "c1", "service": "ext", "taskDefinition": v2}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code, "InvalidParameterException");
    assert!(error.message.contains("EXTERNAL"), "{}", error.message);
    let error = local
        .ecs(
            "CreateService",
            json!({"cluster": "c1", "serviceName": "ext2", "taskDefinition": v1,
                "deploymentController": {"type": "EXTERNAL"},
                "deploymentConfiguration": {"strategy": "ROLLING"}}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code, "InvalidParameterException");
    local.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_deployment_survives_a_restart_and_can_be_continued() {
    let state = tempfile::tempdir().unwrap();
    let local = Local::start_in(Some(state.path().to_owned())).await;
    let v1 = local.register("exec sleep 600").await;
    let created = local
        .create(
            json!({"taskDefinition": v1, "deploymentConfiguration": pause_hook("PRE_SCALE_UP")}),
        )
        .await;
    let arn = created["currentServiceDeployment"]
        .as_str()
        .unwrap()
        .to_owned();
    let paused = local
        .wait_deployment(&arn, "the pause", |d| awaiting_hook(d).is_some())
        .await;
    let hook_id = awaiting_hook(&paused).unwrap();
    local.engine.shutdown().await;
    drop(local);

    let local = Local::start_in(Some(state.path().to_owned())).await;
    let again = local.deployment(&arn).await;
    assert_eq!(again["status"], "IN_PROGRESS");
    assert_eq!(again["lifecycleStage"], "PRE_SCALE_UP");
    assert_eq!(awaiting_hook(&again).as_deref(), Some(hook_id.as_str()));
    assert_eq!(
        local.service().await["currentServiceDeployment"],
        arn.as_str()
    );
    local
        .ecs(
            "ContinueServiceDeployment",
            json!({"serviceDeploymentArn": arn, "hookId": hook_id}),
        )
        .await
        .unwrap();
    local
        .wait_deployment(&arn, "success", |d| d["status"] == "SUCCESSFUL")
        .await;
    local.engine.shutdown().await;
}
