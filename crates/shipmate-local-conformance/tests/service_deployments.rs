//! Service deployments through aws-sdk-rust: a blue/green service behind a load balancer with
//! PAUSE hooks, every service-deployment operation's response parsed by the SDK (including the
//! PRE_PRODUCTION_TRAFFIC_SHIFT stage its enum lacks, kept as `Unknown`), the deployment found
//! from UpdateService's `currentServiceDeployment`, a rollback by StopServiceDeployment, the
//! modeled errors, and a CODE_DEPLOY service's task set.

use std::time::Duration;

use aws_sdk_ecs::types::{
    AdvancedConfiguration, ContainerDefinition, DeploymentCircuitBreaker, DeploymentConfiguration,
    DeploymentController, DeploymentControllerType, DeploymentLifecycleHook,
    DeploymentLifecycleHookAction, DeploymentLifecycleHookStage, DeploymentLifecycleHookStatus,
    DeploymentLifecycleHookTargetType, DeploymentStrategy, LaunchType, LoadBalancer, PortMapping,
    ServiceDeployment, ServiceDeploymentLifecycleStage, ServiceDeploymentStatus,
    StopServiceDeploymentStopType,
};
use shipmate_local_conformance::{Endpoint, network_configuration, poll, register_fargate};

const SERVICE_DEADLINE: Duration = Duration::from_secs(120);
const TARGET_GROUP: &str = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup";

fn web(image: &str) -> ContainerDefinition {
    ContainerDefinition::builder()
        .name("web")
        .image(image)
        .essential(true)
        .set_command(Some(vec!["/bin/sh".into(), "serve.sh".into()]))
        .port_mappings(PortMapping::builder().container_port(8080).build())
        .stop_timeout(2)
        .build()
}

fn load_balancer() -> LoadBalancer {
    LoadBalancer::builder()
        .target_group_arn(format!("{TARGET_GROUP}/blue/1"))
        .container_name("web")
        .container_port(8080)
        .advanced_configuration(
            AdvancedConfiguration::builder()
                .alternate_target_group_arn(format!("{TARGET_GROUP}/green/2"))
                .production_listener_rule(
                    "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener-rule/app/lb/1/2/3",
                )
                .role_arn("arn:aws:iam::000000000000:role/ecsInfrastructureRole")
                .build(),
        )
        .build()
}

fn pause(stage: DeploymentLifecycleHookStage) -> DeploymentLifecycleHook {
    DeploymentLifecycleHook::builder()
        .target_type(DeploymentLifecycleHookTargetType::Pause)
        .lifecycle_stages(stage)
        .build()
}

async fn deployment(endpoint: &Endpoint, arn: &str) -> ServiceDeployment {
    let output = endpoint
        .ecs
        .describe_service_deployments()
        .service_deployment_arns(arn)
        .send()
        .await
        .expect("DescribeServiceDeployments");
    output.service_deployments()[0].clone()
}

/// Waits until the deployment awaits action at a hook; answers the hook id and the stage.
async fn paused(endpoint: &Endpoint, arn: &str) -> (String, String) {
    poll("a paused hook", SERVICE_DEADLINE, || async {
        let deployment = deployment(endpoint, arn).await;
        let hook = deployment
            .lifecycle_hook_details()
            .iter()
            .find(|hook| hook.status() == Some(&DeploymentLifecycleHookStatus::AwaitingAction))?;
        let stage = deployment.lifecycle_stage()?.as_str().to_owned();
        Some((hook.hook_id()?.to_owned(), stage))
    })
    .await
}

async fn finished(
    endpoint: &Endpoint,
    arn: &str,
    status: ServiceDeploymentStatus,
) -> ServiceDeployment {
    poll(&format!("{status:?}"), SERVICE_DEADLINE, || async {
        let deployment = deployment(endpoint, arn).await;
        (deployment.status() == Some(&status)).then_some(deployment)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_deployment_operation_parses() {
    let endpoint = Endpoint::start().await;
    // A deployment minute passes in a tenth of a second.
    endpoint
        .server()
        .engine()
        .ecs
        .set_deployment_time_scale(600.0);
    let ecs = &endpoint.ecs;
    endpoint.create_cluster("deploy").await;
    for (image, text) in [("web:1", "v1"), ("web:2", "v2")] {
        endpoint.push(
            image,
            &[("serve.sh", &format!("echo {text}\nexec sleep 3600\n"))],
        );
        register_fargate(&endpoint, "web", vec![web(image)]).await;
    }
    let created = ecs
        .create_service()
        .cluster("deploy")
        .service_name("web")
        .task_definition("web:1")
        .desired_count(1)
        .launch_type(LaunchType::Fargate)
        .network_configuration(network_configuration())
        .load_balancers(load_balancer())
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .strategy(DeploymentStrategy::BlueGreen)
                .bake_time_in_minutes(1)
                .deployment_circuit_breaker(
                    DeploymentCircuitBreaker::builder()
                        .enable(true)
                        .rollback(true)
                        .build(),
                )
                .lifecycle_hooks(pause(DeploymentLifecycleHookStage::PostScaleUp))
                .lifecycle_hooks(pause(
                    DeploymentLifecycleHookStage::PreProductionTrafficShift,
                ))
                .build(),
        )
        .send()
        .await
        .expect("CreateService");
    let service = created.service().expect("service");
    let first = service
        .current_service_deployment()
        .expect("currentServiceDeployment")
        .to_owned();
    assert_eq!(
        service
            .deployment_configuration()
            .and_then(|c| c.strategy()),
        Some(&DeploymentStrategy::BlueGreen)
    );

    let (hook, stage) = paused(&endpoint, &first).await;
    assert_eq!(stage, "POST_SCALE_UP");
    ecs.continue_service_deployment()
        .service_deployment_arn(&first)
        .hook_id(&hook)
        .send()
        .await
        .expect("ContinueServiceDeployment");
    let (hook, stage) = paused(&endpoint, &first).await;
    assert_eq!(stage, "PRE_PRODUCTION_TRAFFIC_SHIFT");
    let described = deployment(&endpoint, &first).await;
    let stage = described.lifecycle_stage().expect("a stage");
    assert_eq!(stage.as_str(), "PRE_PRODUCTION_TRAFFIC_SHIFT");
    assert!(
        !ServiceDeploymentLifecycleStage::values().contains(&stage.as_str()),
        "the SDK's enum lacks the stage, so it parses as an unknown value: {stage:?}"
    );
    let continued = ecs
        .continue_service_deployment()
        .service_deployment_arn(&first)
        .hook_id(&hook)
        .action(DeploymentLifecycleHookAction::Continue)
        .send()
        .await
        .expect("ContinueServiceDeployment CONTINUE");
    assert_eq!(continued.service_deployment_arn(), Some(first.as_str()));
    let done = finished(&endpoint, &first, ServiceDeploymentStatus::Successful).await;
    let target = done.target_service_revision().expect("target revision");
    assert_eq!(target.requested_production_traffic_weight(), Some(100.0));
    assert_eq!(target.running_task_count(), 1);
    assert_eq!(done.lifecycle_hook_details().len(), 2);
    assert!(done.finished_at().is_some());

    let revisions = ecs
        .describe_service_revisions()
        .service_revision_arns(target.arn().unwrap())
        .service_revision_arns("arn:aws:ecs:us-east-1:000000000000:service-revision/deploy/web/1")
        .send()
        .await
        .expect("DescribeServiceRevisions");
    let revision = &revisions.service_revisions()[0];
    assert!(revision.task_definition().unwrap().ends_with("web:1"));
    assert_eq!(
        revision.load_balancers()[0]
            .advanced_configuration()
            .and_then(|a| a.alternate_target_group_arn()),
        Some(format!("{TARGET_GROUP}/green/2").as_str())
    );
    assert_eq!(revisions.failures()[0].reason(), Some("MISSING"));

    // The release half finds the deployment it started in UpdateService's answer.
    let updated = ecs
        .update_service()
        .cluster("deploy")
        .service("web")
        .task_definition("web:2")
        .send()
        .await
        .expect("UpdateService");
    let second = updated
        .service()
        .and_then(|s| s.current_service_deployment())
        .expect("currentServiceDeployment")
        .to_owned();
    assert_ne!(second, first);
    let (_, stage) = paused(&endpoint, &second).await;
    assert_eq!(stage, "POST_SCALE_UP");
    let stopped = ecs
        .stop_service_deployment()
        .service_deployment_arn(&second)
        .stop_type(StopServiceDeploymentStopType::Rollback)
        .send()
        .await
        .expect("StopServiceDeployment");
    assert_eq!(stopped.service_deployment_arn(), Some(second.as_str()));
    let rolled_back = finished(
        &endpoint,
        &second,
        ServiceDeploymentStatus::RollbackSuccessful,
    )
    .await;
    assert_eq!(
        rolled_back
            .rollback()
            .and_then(|r| r.service_revision_arn()),
        target.arn()
    );

    let listed = ecs
        .list_service_deployments()
        .cluster("deploy")
        .service("web")
        .send()
        .await
        .expect("ListServiceDeployments");
    let statuses: Vec<_> = listed
        .service_deployments()
        .iter()
        .map(|d| d.status().cloned())
        .collect();
    assert_eq!(
        statuses,
        [
            Some(ServiceDeploymentStatus::RollbackSuccessful),
            Some(ServiceDeploymentStatus::Successful)
        ]
    );

    let error = ecs
        .stop_service_deployment()
        .service_deployment_arn(&second)
        .send()
        .await
        .expect_err("finished");
    assert!(
        error
            .as_service_error()
            .is_some_and(|e| e.is_conflict_exception()),
        "{error:?}"
    );
    let error = ecs
        .continue_service_deployment()
        .service_deployment_arn(format!("{second}x"))
        .hook_id("ecs-pause-x")
        .send()
        .await
        .expect_err("unknown");
    assert!(
        error
            .as_service_error()
            .is_some_and(|e| e.is_service_deployment_not_found_exception()),
        "{error:?}"
    );
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_deploy_service_shows_its_task_set() {
    let endpoint = Endpoint::start().await;
    let ecs = &endpoint.ecs;
    endpoint.create_cluster("cd").await;
    endpoint.push("web:1", &[("serve.sh", "exec sleep 3600\n")]);
    register_fargate(&endpoint, "web", vec![web("web:1")]).await;
    let created = ecs
        .create_service()
        .cluster("cd")
        .service_name("web")
        .task_definition("web:1")
        .desired_count(1)
        .launch_type(LaunchType::Fargate)
        .network_configuration(network_configuration())
        .deployment_controller(
            DeploymentController::builder()
                .r#type(DeploymentControllerType::CodeDeploy)
                .build()
                .expect("type is set"),
        )
        .send()
        .await
        .expect("CreateService CODE_DEPLOY");
    let service = created.service().expect("service");
    assert!(service.deployments().is_empty());
    let task_set = &service.task_sets()[0];
    assert_eq!(task_set.status(), Some("PRIMARY"));
    assert_eq!(task_set.scale().map(|s| s.value()), Some(100.0));
    let error = ecs
        .update_service()
        .cluster("cd")
        .service("web")
        .force_new_deployment(true)
        .send()
        .await
        .expect_err("CodeDeploy deploys");
    assert!(
        error
            .as_service_error()
            .is_some_and(|e| e.is_invalid_parameter_exception()),
        "{error:?}"
    );
    endpoint.shutdown().await;
}
