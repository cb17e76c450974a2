//! ECS services: CreateService, UpdateService, DescribeServices, ListServices, DeleteService, and
//! the service scheduler that keeps each service's tasks running and rolls deployments. Service
//! revisions and deployment records, and their operations, are in `deployments.rs`; the
//! deployment lifecycle (stages, PAUSE hooks, bake times, rollbacks) in `stages.rs`; the
//! validation of `deploymentConfiguration` and `loadBalancers` in `configuration.rs`.
//!
//! The decisions are made by [`scheduler::reconcile`], a pure function; this module holds the
//! operations, turns tasks into the scheduler's view of them, and carries out its actions
//! (launching through [`Ecs::launch_tasks`], stopping through [`Ecs::stop_task_with`]) in a loop
//! woken by every task change and by a short tick (health is time-based without health checks).

mod configuration;
mod deployments;
mod model;
mod records;
mod scheduler;
mod stages;
pub(crate) mod throttle;

use std::time::{Duration, SystemTime};

use shipmate_local_api::ecs::{
    CreateServiceRequest, CreateServiceResponse, DeleteServiceRequest, DeleteServiceResponse,
    DeploymentController, DescribeServicesRequest, DescribeServicesResponse, Failure,
    ListServicesRequest, ListServicesResponse, Scale, Service, ServiceEvent as ServiceEventShape,
    TaskDefinition, TaskSet, UpdateServiceRequest, UpdateServiceResponse, epoch_seconds,
};
use shipmate_local_protocol::AwsError;

use configuration::{check_traffic, configuration_shape, deployment_configuration};
pub(crate) use model::ServiceRecord;
use model::{Controller, Deployment, LaunchSettings};
use records::ServiceRevisionRecord;
use scheduler::{Action, TaskHealth, TaskView};

use super::tags::validate_tags;
use super::{
    Ecs, EcsState, LaunchRequest, arns, check_name, clusters, invalid_parameter, task_definitions,
};

/// How often the scheduler looks again when nothing changed (tasks become healthy with time).
const TICK: Duration = Duration::from_millis(250);

fn service_arn(cluster_arn: &str, name: &str) -> String {
    let (prefix, cluster) = cluster_arn
        .rsplit_once(":cluster/")
        .unwrap_or((cluster_arn, "default"));
    format!("{prefix}:service/{cluster}/{name}")
}

/// What changes in a pass that clients (and the state file) must hear about: the newest event,
/// the status, the deployments' states, and when the newest service deployment last changed.
fn observable(service: &ServiceRecord) -> Observable {
    (
        service.events.front().map(|event| event.id.clone()),
        service.status.clone(),
        service
            .deployments
            .iter()
            .map(|d| (d.id.clone(), d.rollout_state.as_str()))
            .collect(),
        service
            .service_deployments
            .last()
            .map(|record| (record.status.as_str(), record.updated_at)),
    )
}

type Observable = (
    Option<String>,
    String,
    Vec<(String, &'static str)>,
    Option<(&'static str, SystemTime)>,
);

/// The service name from a name or a service ARN (`…:service/<cluster>/<name>` or `…:service/<name>`).
fn service_name(reference: &str) -> &str {
    if reference.starts_with("arn:") {
        reference.rsplit('/').next().unwrap_or(reference)
    } else {
        reference
    }
}

fn service_not_found() -> AwsError {
    AwsError::client("ServiceNotFoundException", "Service not found.")
}

impl Ecs {
    pub(crate) fn create_service(
        &self,
        input: CreateServiceRequest,
    ) -> Result<CreateServiceResponse, AwsError> {
        let now = self.now();
        let name = input.service_name.clone();
        check_name("Service", &name)?;
        if let Some(tags) = &input.tags {
            validate_tags(tags)?;
        }
        if let Some(strategy) = input
            .scheduling_strategy
            .as_deref()
            .filter(|s| *s != "REPLICA")
        {
            return Err(AwsError::client(
                "UnsupportedFeatureException",
                format!(
                    "shipmate local supports the REPLICA scheduling strategy only, not {strategy}."
                ),
            ));
        }
        let controller = match &input.deployment_controller {
            None => Controller::Ecs,
            Some(DeploymentController { controller_type }) => Controller::parse(controller_type)
                .ok_or_else(|| {
                    invalid_parameter(format!(
                        "Invalid deployment controller type {controller_type}: one of ECS, CODE_DEPLOY, EXTERNAL."
                    ))
                })?,
        };
        let desired = desired_count(input.desired_count.unwrap_or(0))?;
        let configuration =
            deployment_configuration(input.deployment_configuration.as_ref(), None, controller)?;
        let launch = launch_settings(
            input.launch_type.clone(),
            input.capacity_provider_strategy.clone(),
            input.platform_version.clone(),
            input.network_configuration.clone(),
        )?;

        let mut state = self.state();
        let cluster_arn = clusters::active_cluster(&state, input.cluster.as_deref())?
            .cluster_arn
            .clone()
            .unwrap_or_default();
        // EXTERNAL services get their task definition from CreateTaskSet in ECS; shipmate local
        // has no task sets of its own making, so it asks for it here (our choice).
        let Some(reference) = input.task_definition.as_deref() else {
            return Err(invalid_parameter(format!(
                "A task definition must be specified for the {} deployment controller.",
                controller.as_str()
            )));
        };
        let definition = task_definitions::lookup(&state, reference, false)?;
        check_network(definition.network_mode.as_deref(), &launch)?;
        check_traffic(
            &configuration,
            input.load_balancers.as_deref(),
            input.service_connect_configuration.as_ref(),
            definition,
        )?;
        let revision = revision_of(
            definition,
            &launch,
            input.load_balancers.clone(),
            input.service_registries.clone(),
            input.service_connect_configuration.clone(),
            now,
        );
        let task_definition = definition.task_definition_arn.clone().unwrap_or_default();
        let arn = service_arn(&cluster_arn, &name);
        if state
            .services
            .get(&arn)
            .is_some_and(|existing| existing.status != "INACTIVE")
        {
            return Err(invalid_parameter("Creation of service was not idempotent."));
        }

        let spec = Service {
            load_balancers: input.load_balancers,
            service_registries: input.service_registries,
            launch_type: launch.launch_type.clone(),
            capacity_provider_strategy: launch.capacity_provider_strategy.clone(),
            platform_version: launch.platform_version.clone(),
            role_arn: input.role,
            placement_constraints: input.placement_constraints,
            placement_strategy: input.placement_strategy,
            network_configuration: launch.network_configuration.clone(),
            health_check_grace_period_seconds: input.health_check_grace_period_seconds,
            scheduling_strategy: Some("REPLICA".into()),
            deployment_controller: Some(DeploymentController {
                controller_type: controller.as_str().into(),
            }),
            enable_ecs_managed_tags: input.enable_ecs_managed_tags.unwrap_or(false),
            propagate_tags: input.propagate_tags,
            enable_execute_command: input.enable_execute_command.unwrap_or(false),
            availability_zone_rebalancing: input.availability_zone_rebalancing,
            ..Service::default()
        };
        let mut record = ServiceRecord {
            arn: arn.clone(),
            name,
            cluster_arn,
            status: "ACTIVE".into(),
            desired_count: desired,
            running_count: 0,
            pending_count: 0,
            task_definition: task_definition.clone(),
            deployment_configuration: configuration,
            deployments: vec![Deployment::new(task_definition, desired, launch, now)],
            events: Default::default(),
            created_at: now,
            steady_state_reported: false,
            spec,
            throttle: Default::default(),
            controller,
            revisions: Vec::new(),
            service_deployments: Vec::new(),
        };
        // CODE_DEPLOY and EXTERNAL services roll out through task sets: no service deployments.
        if controller == Controller::Ecs {
            deployments::start_deployment(&mut record, revision, now);
        }
        match input.tags.filter(|tags| !tags.is_empty()) {
            Some(tags) => state.tags.insert(arn.clone(), tags),
            None => state.tags.remove(&arn),
        };
        state.services.insert(arn.clone(), record);
        let service = describe(&state, &arn, false);
        drop(state);
        self.changed();
        Ok(CreateServiceResponse { service })
    }

    pub(crate) fn update_service(
        &self,
        input: UpdateServiceRequest,
    ) -> Result<UpdateServiceResponse, AwsError> {
        let now = self.now();
        let mut state = self.state();
        let arn = find_service(&state, input.cluster.as_deref(), &input.service)?;
        let new_definition = match input.task_definition.as_deref() {
            Some(reference) => Some(task_definitions::lookup(&state, reference, false)?.clone()),
            None => None,
        };
        let service = state.services.get(&arn).expect("found above");
        if service.status != "ACTIVE" {
            return Err(AwsError::client(
                "ServiceNotActiveException",
                "Service was not ACTIVE.",
            ));
        }
        let controller = service.controller;
        if let Some(requested) = &input.deployment_controller
            && requested.controller_type != controller.as_str()
        {
            return Err(invalid_parameter(format!(
                "shipmate local cannot change the deployment controller of a service ({} to {}).",
                controller.as_str(),
                requested.controller_type
            )));
        }
        let definition_changes = new_definition
            .as_ref()
            .and_then(|d| d.task_definition_arn.as_deref())
            .is_some_and(|arn| arn != service.task_definition);
        check_controller_update(controller, &input, definition_changes)?;
        let configuration = deployment_configuration(
            input.deployment_configuration.as_ref(),
            Some(&service.deployment_configuration),
            controller,
        )?;
        let desired = input.desired_count.map(desired_count).transpose()?;
        let current = &service.primary().launch;
        let launch = launch_settings(
            updated_launch_type(&input, current.launch_type.clone()),
            input
                .capacity_provider_strategy
                .clone()
                .or_else(|| current.capacity_provider_strategy.clone()),
            input
                .platform_version
                .clone()
                .or_else(|| current.platform_version.clone()),
            input
                .network_configuration
                .clone()
                .or_else(|| current.network_configuration.clone()),
        )?;
        let definition_arn = new_definition
            .as_ref()
            .and_then(|d| d.task_definition_arn.clone())
            .unwrap_or_else(|| service.task_definition.clone());
        let definition = match &new_definition {
            Some(definition) => definition.clone(),
            None => task_definitions::lookup(&state, &definition_arn, true)
                .cloned()
                .unwrap_or_default(),
        };
        check_network(definition.network_mode.as_deref(), &launch)?;
        let current_connect = service
            .revisions
            .last()
            .and_then(|r| r.service_connect.clone());
        let load_balancers = input
            .load_balancers
            .clone()
            .or_else(|| service.spec.load_balancers.clone());
        let service_connect = input
            .service_connect_configuration
            .clone()
            .or(current_connect.clone());
        check_traffic(
            &configuration,
            load_balancers.as_deref(),
            service_connect.as_ref(),
            &definition,
        )?;
        // A new task definition, new network, platform, load balancer, Service Connect or
        // registry settings, or a forced deployment start a new deployment; desiredCount and
        // deploymentConfiguration changes (lifecycle hooks included) do not.
        let new_deployment = controller == Controller::Ecs
            && (input.force_new_deployment.unwrap_or(false)
                || definition_arn != service.task_definition
                || launch != service.primary().launch
                || load_balancers != service.spec.load_balancers
                || service_connect != current_connect
                || input
                    .service_registries
                    .as_ref()
                    .is_some_and(|r| Some(r) != service.spec.service_registries.as_ref()));

        let service = state.services.get_mut(&arn).expect("found above");
        service.deployment_configuration = configuration;
        if let Some(desired) = desired {
            service.desired_count = desired;
            service.primary_mut().desired_count = desired;
        }
        service.spec.load_balancers = load_balancers.clone();
        if input.service_registries.is_some() {
            service.spec.service_registries = input.service_registries.clone();
        }
        if new_deployment {
            for deployment in &mut service.deployments {
                deployment.status = "ACTIVE".into();
                deployment.updated_at = now;
            }
            let deployment = Deployment::new(
                definition_arn.clone(),
                service.desired_count,
                launch.clone(),
                now,
            );
            service.deployments.insert(0, deployment);
            service.task_definition = definition_arn;
            service.steady_state_reported = false;
            let revision = revision_of(
                &definition,
                &launch,
                load_balancers,
                service.spec.service_registries.clone(),
                service_connect,
                now,
            );
            deployments::start_deployment(service, revision, now);
        }
        service.spec.launch_type = launch.launch_type.clone();
        service.spec.capacity_provider_strategy = launch.capacity_provider_strategy.clone();
        service.spec.platform_version = launch.platform_version.clone();
        service.spec.network_configuration = launch.network_configuration.clone();
        if let Some(seconds) = input.health_check_grace_period_seconds {
            service.spec.health_check_grace_period_seconds = Some(seconds);
        }
        if let Some(enable) = input.enable_execute_command {
            service.spec.enable_execute_command = enable;
        }
        if let Some(enable) = input.enable_ecs_managed_tags {
            service.spec.enable_ecs_managed_tags = enable;
        }
        if input.propagate_tags.is_some() {
            service.spec.propagate_tags = input.propagate_tags.clone();
        }
        if input.placement_constraints.is_some() {
            service.spec.placement_constraints = input.placement_constraints.clone();
        }
        if input.placement_strategy.is_some() {
            service.spec.placement_strategy = input.placement_strategy.clone();
        }
        let service = describe(&state, &arn, false);
        drop(state);
        self.changed();
        Ok(UpdateServiceResponse { service })
    }

    pub(crate) fn describe_services(
        &self,
        input: DescribeServicesRequest,
    ) -> Result<DescribeServicesResponse, AwsError> {
        if input.services.is_empty() || input.services.len() > 10 {
            return Err(invalid_parameter(
                "services can have at most 10 items and at least 1.",
            ));
        }
        let state = self.state();
        let cluster_arn = clusters::active_cluster(&state, input.cluster.as_deref())?
            .cluster_arn
            .clone()
            .unwrap_or_default();
        let with_tags = clusters::includes(&input.include, "TAGS");
        let mut response = DescribeServicesResponse::default();
        for reference in &input.services {
            let arn = service_arn(&cluster_arn, service_name(reference));
            match describe(&state, &arn, with_tags) {
                Some(service) => response.services.push(service),
                None => response.failures.push(Failure {
                    arn: Some(arn),
                    reason: Some("MISSING".into()),
                    detail: None,
                }),
            }
        }
        Ok(response)
    }

    pub(crate) fn list_services(
        &self,
        input: ListServicesRequest,
    ) -> Result<ListServicesResponse, AwsError> {
        let state = self.state();
        let cluster_arn = clusters::active_cluster(&state, input.cluster.as_deref())?
            .cluster_arn
            .clone()
            .unwrap_or_default();
        let arns: Vec<String> = state
            .services
            .values()
            .filter(|service| service.cluster_arn == cluster_arn && service.status != "INACTIVE")
            .filter(|service| {
                input.launch_type.is_none() || service.spec.launch_type == input.launch_type
            })
            .filter(|_| {
                input
                    .scheduling_strategy
                    .as_deref()
                    .is_none_or(|s| s == "REPLICA")
            })
            .map(|service| service.arn.clone())
            .collect();
        // ListServices returns 10 per page unless told otherwise.
        let (service_arns, next_token) = super::pagination::paginate(
            arns,
            input.next_token.as_deref(),
            Some(input.max_results.unwrap_or(10)),
        )?;
        Ok(ListServicesResponse {
            service_arns,
            next_token,
        })
    }

    pub(crate) fn delete_service(
        &self,
        input: DeleteServiceRequest,
    ) -> Result<DeleteServiceResponse, AwsError> {
        let now = self.now();
        let mut state = self.state();
        let arn = find_service(&state, input.cluster.as_deref(), &input.service)?;
        let service = state.services.get_mut(&arn).expect("found above");
        if service.status == "INACTIVE" {
            return Err(AwsError::client(
                "ServiceNotActiveException",
                "Service was not ACTIVE.",
            ));
        }
        if service.desired_count > 0 && !input.force.unwrap_or(false) {
            return Err(invalid_parameter(
                "The service cannot be stopped while it is scaled above 0.",
            ));
        }
        service.status = "DRAINING".into();
        service.desired_count = 0;
        for deployment in &mut service.deployments {
            deployment.desired_count = 0;
            deployment.updated_at = now;
        }
        let service = describe(&state, &arn, false);
        drop(state);
        self.changed();
        Ok(DeleteServiceResponse { service })
    }

    /// Runs the service scheduler until the engine is dropped.
    pub(super) fn start_service_scheduler(&self) {
        let engine = std::sync::Arc::downgrade(&self.inner);
        let mut changes = self.subscribe();
        tokio::spawn(async move {
            let mut wait = TICK;
            loop {
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return },
                    () = tokio::time::sleep(wait) => {}
                }
                let Some(inner) = engine.upgrade() else {
                    return;
                };
                let ecs = Ecs { inner };
                if ecs
                    .inner
                    .shutting_down
                    .load(std::sync::atomic::Ordering::SeqCst)
                {
                    return;
                }
                // Wake for a throttled launch on time rather than up to a tick late.
                wait = ecs.schedule_services().map_or(TICK, |next| next.min(TICK));
            }
        });
    }

    /// The service throttle's first wait between launches from now on.
    pub fn set_service_throttle_base(&self, base: Duration) {
        *self
            .inner
            .service_throttle_base
            .lock()
            .expect("throttle lock") = base;
    }

    /// How fast deployment minutes pass from now on: `scale` ECS-seconds per real second, for
    /// bake times, step bake times and lifecycle hook timeouts only (1.0 is ECS's pace). A wait
    /// already started keeps the end it was given.
    pub fn set_deployment_time_scale(&self, scale: f64) {
        *self
            .inner
            .deployment_time_scale
            .lock()
            .expect("time scale lock") = scale;
    }

    /// ECS-seconds per real second for bake times and hook timeouts.
    pub fn deployment_time_scale(&self) -> f64 {
        *self
            .inner
            .deployment_time_scale
            .lock()
            .expect("time scale lock")
    }

    /// The service throttle's first wait between launches.
    pub fn service_throttle_base(&self) -> Duration {
        *self
            .inner
            .service_throttle_base
            .lock()
            .expect("throttle lock")
    }

    /// One pass over every service: decide under the lock, act outside it. Answers how long
    /// until the earliest throttled launch, if one is waiting.
    fn schedule_services(&self) -> Option<Duration> {
        let now = self.now();
        let settings = scheduler::Settings {
            throttle_base: self.service_throttle_base(),
            time_scale: self.deployment_time_scale(),
        };
        let mut work = Vec::new();
        let next_launch = {
            let mut state = self.state();
            let arns: Vec<String> = state
                .services
                .iter()
                .filter(|(_, s)| s.status != "INACTIVE")
                .map(|(arn, _)| arn.clone())
                .collect();
            for arn in arns {
                let views = task_views(&state, &state.services[&arn]);
                let service = state.services.get_mut(&arn).expect("listed above");
                let before = observable(service);
                let actions = scheduler::reconcile(service, &views, settings, now);
                if service.status == "DRAINING"
                    && views.iter().all(|task| task.last_status == "STOPPED")
                {
                    service.status = "INACTIVE".into();
                    service.deployments.truncate(1);
                    // Revisions and deployment records go with the service.
                    service.revisions.clear();
                    service.service_deployments.clear();
                }
                let after = observable(service);
                if !actions.is_empty() || before != after {
                    work.push((arn, actions));
                }
            }
            state
                .services
                .values()
                .filter(|service| service.status == "ACTIVE")
                .filter_map(|service| service.throttle.next_launch_at)
                .filter_map(|at| at.duration_since(now).ok())
                .min()
        };
        if work.is_empty() {
            return next_launch;
        }
        for (arn, actions) in work {
            self.carry_out(&arn, actions, now);
        }
        self.changed();
        next_launch
    }

    fn carry_out(&self, arn: &str, actions: Vec<Action>, now: SystemTime) {
        let Some((name, cluster_arn, deployments)) = self.state().services.get(arn).map(|s| {
            let launches: Vec<(String, LaunchSettings)> = s
                .deployments
                .iter()
                .map(|d| (d.id.clone(), d.launch.clone()))
                .collect();
            (s.name.clone(), s.cluster_arn.clone(), launches)
        }) else {
            return;
        };
        let mut events = Vec::new();
        let mut stopped = Vec::new();
        for action in actions {
            match action {
                Action::Launch {
                    deployment_id,
                    task_definition,
                    count,
                } => {
                    let launch = deployments
                        .iter()
                        .find(|(id, _)| *id == deployment_id)
                        .map(|(_, l)| l.clone())
                        .unwrap_or_default();
                    let request = LaunchRequest {
                        cluster: cluster_arn.clone(),
                        task_definition,
                        count: count as i32,
                        started_by: Some(deployment_id),
                        group: Some(format!("service:{name}")),
                        launch_type: launch.launch_type,
                        capacity_provider_strategy: launch.capacity_provider_strategy,
                        platform_version: launch.platform_version,
                        network_configuration: launch.network_configuration,
                        ..LaunchRequest::default()
                    };
                    match self.launch_tasks(request) {
                        Ok(launched) => {
                            if !launched.tasks.is_empty() {
                                let ids: Vec<String> = launched
                                    .tasks
                                    .iter()
                                    .map(|t| {
                                        format!(
                                            "(task {})",
                                            arns::task_id(
                                                t.task_arn.as_deref().unwrap_or_default()
                                            )
                                        )
                                    })
                                    .collect();
                                events.push(format!(
                                    "(service {name}) has started {} tasks: {}.",
                                    ids.len(),
                                    ids.join(" ")
                                ));
                            }
                            for failure in launched.failures {
                                events.push(format!(
                                    "(service {name}) was unable to place a task because no container instance met all of its requirements. Reason: {}.",
                                    failure.reason.unwrap_or_default()
                                ));
                            }
                        }
                        Err(error) => {
                            events.push(format!(
                                "(service {name}) was unable to place a task. Reason: {}.",
                                error.message
                            ));
                        }
                    }
                }
                Action::Stop { task_arn, reason } => {
                    if self
                        .stop_task_with(&task_arn, "ServiceSchedulerInitiated", &reason)
                        .is_some()
                    {
                        stopped.push(format!("(task {})", arns::task_id(&task_arn)));
                    }
                }
            }
        }
        if !stopped.is_empty() {
            events.push(format!(
                "(service {name}) has stopped {} running tasks: {}.",
                stopped.len(),
                stopped.join(" ")
            ));
        }
        if events.is_empty() {
            return;
        }
        let mut state = self.state();
        if let Some(service) = state.services.get_mut(arn) {
            for message in events {
                service.push_event(now, message);
            }
        }
    }
}

/// UpdateService has no launchType member: the launch type stays what it was, unless the update
/// switches to a capacity provider strategy.
fn updated_launch_type(input: &UpdateServiceRequest, current: Option<String>) -> Option<String> {
    if input.capacity_provider_strategy.is_some() {
        None
    } else {
        current
    }
}

/// What an UpdateService may not change on a service whose deployments CodeDeploy or an
/// external controller make (ECS's own messages for CODE_DEPLOY, reference §4; ours for
/// EXTERNAL, which would need CreateTaskSet).
fn check_controller_update(
    controller: Controller,
    input: &UpdateServiceRequest,
    definition_changes: bool,
) -> Result<(), AwsError> {
    let how = match controller {
        Controller::Ecs => return Ok(()),
        Controller::CodeDeploy => "Use AWS CodeDeploy to trigger a new deployment.",
        Controller::External => {
            "Use CreateTaskSet to deploy it (shipmate local does not implement task sets)."
        }
    };
    let kind = match controller {
        Controller::CodeDeploy => "a CODE_DEPLOY",
        _ => "an EXTERNAL",
    };
    if definition_changes {
        return Err(invalid_parameter(format!(
            "Unable to update task definition on services with {kind} deployment controller. {how}"
        )));
    }
    if input.force_new_deployment == Some(true) {
        return Err(invalid_parameter(format!(
            "Cannot force a new deployment on services with {kind} deployment controller. {how}"
        )));
    }
    let changed = [
        (
            "network configuration",
            input.network_configuration.is_some(),
        ),
        ("platform version", input.platform_version.is_some()),
        ("load balancers", input.load_balancers.is_some()),
        ("service registries", input.service_registries.is_some()),
        (
            "capacity provider strategy",
            input.capacity_provider_strategy.is_some(),
        ),
        (
            "Service Connect configuration",
            input.service_connect_configuration.is_some(),
        ),
    ];
    if let Some((member, _)) = changed.iter().find(|(_, given)| *given) {
        return Err(invalid_parameter(format!(
            "Unable to update {member} on services with {kind} deployment controller. {how}"
        )));
    }
    Ok(())
}

/// The service revision a deployment of `definition` with these settings deploys (its ARN is
/// given when the deployment is recorded).
fn revision_of(
    definition: &TaskDefinition,
    launch: &LaunchSettings,
    load_balancers: Option<Vec<shipmate_local_api::ecs::LoadBalancer>>,
    service_registries: Option<Vec<serde_json::Value>>,
    service_connect: Option<serde_json::Value>,
    now: SystemTime,
) -> ServiceRevisionRecord {
    ServiceRevisionRecord {
        arn: String::new(),
        task_definition: definition.task_definition_arn.clone().unwrap_or_default(),
        launch: launch.clone(),
        load_balancers,
        service_registries,
        service_connect,
        container_images: definition
            .container_definitions
            .iter()
            .flatten()
            .map(|c| {
                (
                    c.name.clone().unwrap_or_default(),
                    c.image.clone().unwrap_or_default(),
                )
            })
            .collect(),
        created_at: now,
    }
}

/// The service a request names, by name or ARN, in the named cluster.
fn find_service(
    state: &EcsState,
    cluster: Option<&str>,
    reference: &str,
) -> Result<String, AwsError> {
    let cluster_arn = clusters::active_cluster(state, cluster)?
        .cluster_arn
        .clone()
        .unwrap_or_default();
    let arn = service_arn(&cluster_arn, service_name(reference));
    state
        .services
        .contains_key(&arn)
        .then_some(arn)
        .ok_or_else(service_not_found)
}

fn desired_count(count: i32) -> Result<u32, AwsError> {
    u32::try_from(count).map_err(|_| invalid_parameter("desiredCount cannot be negative."))
}

fn launch_settings(
    launch_type: Option<String>,
    capacity_provider_strategy: Option<Vec<shipmate_local_api::ecs::CapacityProviderStrategyItem>>,
    platform_version: Option<String>,
    network_configuration: Option<shipmate_local_api::ecs::NetworkConfiguration>,
) -> Result<LaunchSettings, AwsError> {
    if launch_type.is_some()
        && capacity_provider_strategy
            .as_ref()
            .is_some_and(|s| !s.is_empty())
    {
        return Err(invalid_parameter(
            "Specifying both a launch type and capacity provider strategy is not supported.",
        ));
    }
    let platform_version = platform_version
        .or_else(|| (launch_type.as_deref() == Some("FARGATE")).then(|| "LATEST".into()));
    Ok(LaunchSettings {
        launch_type,
        capacity_provider_strategy,
        platform_version,
        network_configuration,
    })
}

fn check_network(network_mode: Option<&str>, launch: &LaunchSettings) -> Result<(), AwsError> {
    let awsvpc = launch
        .network_configuration
        .as_ref()
        .and_then(|n| n.awsvpc_configuration.as_ref());
    match (network_mode, awsvpc) {
        (Some("awsvpc"), None) => Err(invalid_parameter(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
        )),
        (Some("awsvpc"), Some(vpc)) if vpc.subnets.as_ref().is_none_or(|s| s.is_empty()) => {
            Err(invalid_parameter("subnets can not be empty."))
        }
        (mode, Some(_)) if mode != Some("awsvpc") => Err(invalid_parameter(
            "Network Configuration is not valid for the given networkMode of this task definition.",
        )),
        _ => Ok(()),
    }
}

/// The scheduler's view of the service's tasks (those in its group, in its cluster).
fn task_views(state: &EcsState, service: &ServiceRecord) -> Vec<TaskView> {
    let group = format!("service:{}", service.name);
    let to_time = |seconds: f64| SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds.max(0.0));
    state
        .tasks
        .values()
        .map(|record| &record.task)
        .filter(|task| {
            task.group.as_deref() == Some(group.as_str())
                && task.cluster_arn.as_deref() == Some(&service.cluster_arn)
        })
        .map(|task| {
            let checked = task
                .containers
                .iter()
                .flatten()
                .any(|c| c.health_status.is_some());
            let health = match task.health_status.as_deref() {
                Some("HEALTHY") => Some(TaskHealth::Healthy),
                Some("UNHEALTHY") => Some(TaskHealth::Unhealthy),
                _ if checked => Some(TaskHealth::Unknown),
                _ => None,
            };
            TaskView {
                arn: task.task_arn.clone().unwrap_or_default(),
                deployment_id: task.started_by.clone().unwrap_or_default(),
                task_definition: task.task_definition_arn.clone().unwrap_or_default(),
                last_status: task.last_status.clone().unwrap_or_default(),
                desired_status: task.desired_status.clone().unwrap_or_default(),
                started_at: task.started_at.map(to_time),
                stop_code: task.stop_code.clone(),
                stopped_reason: task.stopped_reason.clone(),
                health,
            }
        })
        .collect()
}

/// The `Service` shape of a recorded service.
fn describe(state: &EcsState, arn: &str, with_tags: bool) -> Option<Service> {
    let record = state.services.get(arn)?;
    let revision = |deployment: &Deployment| {
        let arn = deployment.revision_arn.as_ref()?;
        record.revisions.iter().find(|r| &r.arn == arn)
    };
    let deployments = record
        .deployments
        .iter()
        .map(|deployment| shipmate_local_api::ecs::Deployment {
            id: Some(deployment.id.clone()),
            status: Some(deployment.status.clone()),
            task_definition: Some(deployment.task_definition.clone()),
            desired_count: deployment.desired_count as i32,
            pending_count: deployment.pending_count as i32,
            running_count: deployment.running_count as i32,
            failed_tasks: deployment.failed_tasks as i32,
            created_at: Some(epoch_seconds(deployment.created_at)),
            updated_at: Some(epoch_seconds(deployment.updated_at)),
            capacity_provider_strategy: deployment.launch.capacity_provider_strategy.clone(),
            launch_type: deployment.launch.launch_type.clone(),
            platform_version: deployment.launch.platform_version.clone(),
            platform_family: platform_family(&deployment.launch),
            network_configuration: deployment.launch.network_configuration.clone(),
            rollout_state: Some(deployment.rollout_state.as_str().into()),
            rollout_state_reason: deployment.rollout_state_reason.clone(),
            service_connect_configuration: revision(deployment)
                .and_then(|r| r.service_connect.clone()),
        })
        .collect();
    let events = record
        .events
        .iter()
        .map(|event| ServiceEventShape {
            id: Some(event.id.clone()),
            created_at: Some(epoch_seconds(event.created_at)),
            message: Some(event.message.clone()),
        })
        .collect();
    let mut configuration = configuration_shape(&record.deployment_configuration);
    let ecs_controller = record.controller == Controller::Ecs;
    if !ecs_controller {
        configuration.strategy = None;
    }
    // CODE_DEPLOY and EXTERNAL services show task sets, not deployments (reference §4).
    let (deployments, task_sets) = if ecs_controller {
        (deployments, None)
    } else {
        (Vec::new(), Some(task_sets(record)))
    };
    Some(Service {
        service_arn: Some(record.arn.clone()),
        service_name: Some(record.name.clone()),
        cluster_arn: Some(record.cluster_arn.clone()),
        status: Some(record.status.clone()),
        desired_count: record.desired_count as i32,
        running_count: record.running_count as i32,
        pending_count: record.pending_count as i32,
        task_definition: Some(record.task_definition.clone()),
        platform_family: record
            .spec
            .launch_type
            .as_deref()
            .filter(|t| *t == "FARGATE")
            .map(|_| "Linux".into()),
        deployment_configuration: Some(configuration),
        task_sets,
        deployments: Some(deployments),
        current_service_deployment: record
            .service_deployments
            .last()
            .map(|deployment| deployment.arn.clone()),
        current_service_revisions: ecs_controller
            .then(|| deployments::current_revisions(record))
            .filter(|revisions| !revisions.is_empty()),
        events: Some(events),
        created_at: Some(epoch_seconds(record.created_at)),
        tags: if with_tags {
            state.tags.get(arn).cloned()
        } else {
            None
        },
        ..record.spec.clone()
    })
}

fn platform_family(launch: &LaunchSettings) -> Option<String> {
    launch
        .launch_type
        .as_deref()
        .filter(|t| *t == "FARGATE")
        .map(|_| "Linux".into())
}

/// The task sets of a CODE_DEPLOY or EXTERNAL service: one per internal deployment, the
/// newest PRIMARY.
fn task_sets(record: &ServiceRecord) -> Vec<TaskSet> {
    record
        .deployments
        .iter()
        .map(|deployment| {
            let steady = deployment.running_count == deployment.desired_count
                && deployment.pending_count == 0;
            TaskSet {
                id: Some(deployment.id.clone()),
                task_set_arn: Some(format!(
                    "{}/{}",
                    record.arn.replacen(":service/", ":task-set/", 1),
                    deployment.id
                )),
                service_arn: Some(record.arn.clone()),
                cluster_arn: Some(record.cluster_arn.clone()),
                started_by: (record.controller == Controller::CodeDeploy)
                    .then(|| "CODE_DEPLOY".into()),
                external_id: None,
                status: Some(deployment.status.clone()),
                task_definition: Some(deployment.task_definition.clone()),
                computed_desired_count: deployment.desired_count as i32,
                pending_count: deployment.pending_count as i32,
                running_count: deployment.running_count as i32,
                created_at: Some(epoch_seconds(deployment.created_at)),
                updated_at: Some(epoch_seconds(deployment.updated_at)),
                launch_type: deployment.launch.launch_type.clone(),
                capacity_provider_strategy: deployment.launch.capacity_provider_strategy.clone(),
                platform_version: deployment.launch.platform_version.clone(),
                platform_family: platform_family(&deployment.launch),
                network_configuration: deployment.launch.network_configuration.clone(),
                load_balancers: record.spec.load_balancers.clone(),
                service_registries: record.spec.service_registries.clone(),
                scale: Some(Scale {
                    value: Some(100.0),
                    unit: Some("PERCENT".into()),
                }),
                stability_status: Some(
                    if steady {
                        "STEADY_STATE"
                    } else {
                        "STABILIZING"
                    }
                    .into(),
                ),
                stability_status_at: Some(epoch_seconds(deployment.updated_at)),
            }
        })
        .collect()
}
