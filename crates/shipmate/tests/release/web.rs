//! The `web` service the release tests deploy: a 2-task Fargate-style service of one `app`
//! container logging to awslogs, its images, and the helpers that read it through the SDK.

use std::time::Duration;

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition,
    DeploymentCircuitBreaker, DeploymentConfiguration, DeploymentController,
    DeploymentControllerType, LaunchType, LoadBalancer, LogConfiguration, LogDriver,
    NetworkConfiguration, NetworkMode,
};

use crate::harness::{CLUSTER, Env, LOG_GROUP, eventually};

pub(crate) const MIGRATE_OK: &str = "sh -c 'echo Applying app.0001_initial... OK; echo Applying app.0002_users... OK; echo the last migration line'";

/// A service `web` of 2 tasks on `web:1`, steady; images `web:2`, `web:3` pushed too.
pub(crate) async fn web_env() -> (Env, String) {
    let env = Env::start().await;
    for tag in ["web:1", "web:2", "web:3"] {
        env.push_image(tag, &[("start.sh", "exec sleep 600\n")]);
    }
    env.create_log_group(LOG_GROUP).await;
    let td = register_web(&env, "web:1", &["sh", "start.sh"], LOG_GROUP).await;
    create_service(&env, "web", &td, 2).await;
    wait_steady(&env, "web").await;
    (env, td)
}

pub(crate) fn deploy_args<'a>(image: &'a str, migrate: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    // shipmate local stores every line before the task stops: no need to wait long.
    deploy_args_quiet(image, migrate, "500ms", extra)
}

/// The same, with the log quiet period given.
pub(crate) fn deploy_args_quiet<'a>(
    image: &'a str,
    migrate: &'a str,
    quiet: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "deploy",
        "--cluster",
        CLUSTER,
        "--service",
        "web",
        "--image",
        image,
        "--migrate",
        migrate,
        "--poll-interval",
        "200ms",
        "--log-quiet-period",
        quiet,
    ];
    args.extend_from_slice(extra);
    args
}

/// `shipmate rollback` of `web`, polling every 200 ms.
pub(crate) fn rollback_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "rollback",
        "--cluster",
        CLUSTER,
        "--service",
        "web",
        "--poll-interval",
        "200ms",
    ];
    args.extend_from_slice(extra);
    args
}

/// A `--no-migrate` deploy of `image`.
pub(crate) fn deploy_without_migration_args<'a>(image: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "deploy",
        "--cluster",
        CLUSTER,
        "--service",
        "web",
        "--image",
        image,
        "--no-migrate",
        "--poll-interval",
        "200ms",
    ];
    args.extend_from_slice(extra);
    args
}

pub(crate) async fn running_task_arns(env: &Env) -> Vec<String> {
    let output = env
        .ecs
        .list_tasks()
        .cluster(CLUSTER)
        .service_name("web")
        .send()
        .await
        .expect("ListTasks");
    let mut arns = output.task_arns().to_vec();
    arns.sort();
    arns
}

/// Registers the `web` family: one essential `app` container (awsvpc, Fargate-compatible,
/// awslogs to `log_group`) running `command`.
pub(crate) async fn register_web(
    env: &Env,
    image: &str,
    command: &[&str],
    log_group: &str,
) -> String {
    register_web_with_role(env, image, command, log_group, None).await
}

/// [`register_web`] with a task execution role (`None`: none, as register_web).
pub(crate) async fn register_web_with_role(
    env: &Env,
    image: &str,
    command: &[&str],
    log_group: &str,
    execution_role: Option<&str>,
) -> String {
    let container = ContainerDefinition::builder()
        .name("app")
        .image(image)
        .essential(true)
        .memory(256)
        // A port for the load balancers of the blue/green, linear and canary tests.
        .port_mappings(
            aws_sdk_ecs::types::PortMapping::builder()
                .container_port(8000)
                .build(),
        )
        .set_command(Some(command.iter().map(|s| (*s).to_owned()).collect()))
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
    let output = env
        .ecs
        .register_task_definition()
        .family("web")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .set_execution_role_arn(execution_role.map(str::to_owned))
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

/// Sets the service's deployment circuit breaker (`enable`, and whether ECS rolls back itself).
pub(crate) async fn set_circuit_breaker(env: &Env, enable: bool, rollback: bool) {
    env.ecs
        .update_service()
        .cluster(CLUSTER)
        .service("web")
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .deployment_circuit_breaker(
                    DeploymentCircuitBreaker::builder()
                        .enable(enable)
                        .rollback(rollback)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("UpdateService");
}

pub(crate) async fn create_service(env: &Env, name: &str, task_definition: &str, desired: i32) {
    env.ecs
        .create_service()
        .cluster(CLUSTER)
        .service_name(name)
        .task_definition(task_definition)
        .desired_count(desired)
        .launch_type(LaunchType::Fargate)
        .network_configuration(network())
        .deployment_configuration(
            DeploymentConfiguration::builder()
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

/// A service whose deployments CodeDeploy makes (behind a blue target group, container `app`
/// port 8000), which `shipmate deploy` refuses.
pub(crate) async fn create_code_deploy_service(
    env: &Env,
    name: &str,
    task_definition: &str,
    desired: i32,
) {
    env.ecs
        .create_service()
        .cluster(CLUSTER)
        .service_name(name)
        .task_definition(task_definition)
        .desired_count(desired)
        .launch_type(LaunchType::Fargate)
        .network_configuration(network())
        .deployment_controller(
            DeploymentController::builder()
                .r#type(DeploymentControllerType::CodeDeploy)
                .build()
                .expect("controller"),
        )
        .load_balancers(
            LoadBalancer::builder()
                .target_group_arn(
                    "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web-blue/1",
                )
                .container_name("app")
                .container_port(8000)
                .build(),
        )
        .send()
        .await
        .expect("CreateService CODE_DEPLOY");
}

/// The ARN of a shipmate migration task once it is RUNNING; panics with `what` after 60 s.
pub(crate) async fn running_migration(env: &Env, what: &str) -> String {
    eventually(Duration::from_secs(60), || async {
        env.tasks_started_by("shipmate/")
            .await
            .into_iter()
            .find(|t| t.last_status() == Some("RUNNING"))
            .and_then(|t| t.task_arn().map(str::to_owned))
    })
    .await
    .unwrap_or_else(|| panic!("{what}"))
}

/// Waits until the service is steady (one deployment, running == desired).
pub(crate) async fn wait_steady(env: &Env, service: &str) -> aws_sdk_ecs::types::Service {
    eventually(Duration::from_secs(60), || async {
        let service = describe_service(env, service).await;
        // What the ServicesStable waiter checks, plus the rollout COMPLETED: a circuit-breaker
        // rollback needs a completed deployment to return to.
        (service.deployments().len() == 1
            && service.running_count() == service.desired_count()
            && service.running_count() > 0
            && service.deployments()[0]
                .rollout_state()
                .is_some_and(|state| state.as_str() == "COMPLETED"))
        .then_some(service)
    })
    .await
    .unwrap_or_else(|| panic!("service {service} never became steady"))
}

pub(crate) async fn describe_service(env: &Env, service: &str) -> aws_sdk_ecs::types::Service {
    let output = env
        .ecs
        .describe_services()
        .cluster(CLUSTER)
        .services(service)
        .send()
        .await
        .expect("DescribeServices");
    output.services().first().cloned().expect("service exists")
}

pub(crate) fn network() -> NetworkConfiguration {
    NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .subnets("subnet-0123")
                .security_groups("sg-0123")
                .assign_public_ip(AssignPublicIp::Disabled)
                .build()
                .expect("awsvpc"),
        )
        .build()
}

/// Mutating ECS operations (anything but Describe*/List*/Get*).
pub(crate) fn is_mutating(operation: &str) -> bool {
    !["Describe", "List", "Get"]
        .iter()
        .any(|p| operation.starts_with(p))
}
