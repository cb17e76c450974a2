//! The ECS calls a release makes, one function per AWS operation, converting SDK shapes into
//! the domain's views at the boundary. Nothing here decides anything.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_ecs::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_ecs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionError;
use aws_sdk_ecs::operation::run_task::RunTaskError;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, ContainerDefinition,
    ContainerOverride, DeploymentConfiguration, DeploymentLifecycleHook,
    DeploymentLifecycleHookAction, DeploymentLifecycleHookStage, DeploymentLifecycleHookTargetType,
    DeploymentLifecycleHookTimeoutConfiguration, KeyValuePair, LaunchType, NetworkConfiguration,
    Service, ServiceDeployment, SortOrder, StopServiceDeploymentStopType, Tag, Task,
    TaskDefinition, TaskDefinitionField, TaskDefinitionStatus, TaskOverride,
};
use shipmate_release::deployment::{
    DeploymentShape, HookDetailView, LifecycleHookView, ServiceDeploymentView,
};
use shipmate_release::fault::Fault;
use shipmate_release::io::{TaskDefinitionView, TaskSpec};
use shipmate_release::ledger::{ENTRY_CONTAINER, ENTRY_IMAGE, Entry, Record};
use shipmate_release::plan::{CapacityItem, ContainerChoice, Launch, LogSettings, NetworkView};
use shipmate_release::service::{
    CircuitBreakerView, DeploymentView, ServiceEventView, ServiceView,
};
use shipmate_release::task::{ContainerView, TaskView};

use crate::client::Clients;
use crate::sdk_error::fault;

fn millis(time: Option<&aws_smithy_types::DateTime>) -> Option<i64> {
    time.and_then(|t| t.to_millis().ok())
}

pub(crate) fn service_view(service: &Service) -> ServiceView {
    let network = service
        .network_configuration()
        .and_then(NetworkConfiguration::awsvpc_configuration)
        .map(|vpc| NetworkView {
            subnets: vpc.subnets().to_vec(),
            security_groups: vpc.security_groups().to_vec(),
            assign_public_ip: vpc.assign_public_ip().map(|a| a.as_str().to_owned()),
        });
    let circuit_breaker = service
        .deployment_configuration()
        .and_then(|c| c.deployment_circuit_breaker())
        .filter(|breaker| breaker.enable())
        .map(|breaker| CircuitBreakerView {
            rollback: breaker.rollback(),
        });
    ServiceView {
        service_arn: service.service_arn().unwrap_or_default().to_owned(),
        service_name: service.service_name().unwrap_or_default().to_owned(),
        cluster_arn: service.cluster_arn().unwrap_or_default().to_owned(),
        status: service.status().unwrap_or_default().to_owned(),
        task_definition: service.task_definition().unwrap_or_default().to_owned(),
        desired_count: service.desired_count(),
        running_count: service.running_count(),
        pending_count: service.pending_count(),
        deployments: service
            .deployments()
            .iter()
            .map(|d| DeploymentView {
                id: d.id().unwrap_or_default().to_owned(),
                status: d.status().unwrap_or_default().to_owned(),
                task_definition: d.task_definition().unwrap_or_default().to_owned(),
                desired_count: d.desired_count(),
                running_count: d.running_count(),
                pending_count: d.pending_count(),
                failed_tasks: d.failed_tasks(),
                rollout_state: d.rollout_state().map(|s| s.as_str().to_owned()),
                rollout_state_reason: d.rollout_state_reason().map(str::to_owned),
            })
            .collect(),
        events: service
            .events()
            .iter()
            .map(|e| ServiceEventView {
                id: e.id().unwrap_or_default().to_owned(),
                created_at: millis(e.created_at()),
                message: e.message().unwrap_or_default().to_owned(),
            })
            .collect(),
        launch_type: service.launch_type().map(|t| t.as_str().to_owned()),
        capacity: service
            .capacity_provider_strategy()
            .iter()
            .map(|item| CapacityItem {
                capacity_provider: item.capacity_provider().to_owned(),
                weight: item.weight(),
                base: item.base(),
            })
            .collect(),
        platform_version: service.platform_version().map(str::to_owned),
        network,
        circuit_breaker,
        shape: deployment_shape(service),
        current_service_deployment: service.current_service_deployment().map(str::to_owned),
    }
}

fn deployment_shape(service: &Service) -> DeploymentShape {
    let configuration = service.deployment_configuration();
    let default = DeploymentShape::default();
    DeploymentShape {
        controller: service
            .deployment_controller()
            .map(|c| c.r#type())
            .map_or(default.controller, |t| t.as_str().to_owned()),
        strategy: configuration
            .and_then(|c| c.strategy())
            .map_or(default.strategy, |s| s.as_str().to_owned()),
        bake_time_minutes: configuration.and_then(|c| c.bake_time_in_minutes()),
        hooks: configuration
            .map(|c| c.lifecycle_hooks().iter().map(hook_view).collect())
            .unwrap_or_default(),
        load_balancers: service
            .load_balancers()
            .iter()
            .filter_map(|lb| {
                Some(shipmate_release::codedeploy::LoadBalancerView {
                    container_name: lb.container_name()?.to_owned(),
                    container_port: lb.container_port()?,
                })
            })
            .collect(),
        traffic: !service.load_balancers().is_empty()
            || service.deployments().iter().any(|d| {
                d.service_connect_configuration()
                    .is_some_and(|sc| sc.enabled())
            }),
    }
}

fn hook_view(hook: &DeploymentLifecycleHook) -> LifecycleHookView {
    LifecycleHookView {
        target_type: hook
            .target_type()
            .map_or_else(|| "AWS_LAMBDA".to_owned(), |t| t.as_str().to_owned()),
        target_arn: hook.hook_target_arn().map(str::to_owned),
        role_arn: hook.role_arn().map(str::to_owned),
        stages: hook
            .lifecycle_stages()
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        timeout_minutes: hook
            .timeout_configuration()
            .and_then(|t| t.timeout_in_minutes()),
        timeout_action: hook
            .timeout_configuration()
            .and_then(|t| t.action())
            .map(|a| a.as_str().to_owned()),
        details: hook
            .hook_details()
            .map(|d| crate::document::to_json(d).to_string()),
    }
}

/// The SDK's hook for one the release decided on.
pub(crate) fn sdk_hook(hook: &LifecycleHookView) -> DeploymentLifecycleHook {
    let timeout = (hook.timeout_minutes.is_some() || hook.timeout_action.is_some()).then(|| {
        DeploymentLifecycleHookTimeoutConfiguration::builder()
            .set_timeout_in_minutes(hook.timeout_minutes)
            .set_action(
                hook.timeout_action
                    .as_deref()
                    .map(DeploymentLifecycleHookAction::from),
            )
            .build()
    });
    DeploymentLifecycleHook::builder()
        .target_type(DeploymentLifecycleHookTargetType::from(
            hook.target_type.as_str(),
        ))
        .set_hook_target_arn(hook.target_arn.clone())
        .set_role_arn(hook.role_arn.clone())
        .set_lifecycle_stages(Some(
            hook.stages
                .iter()
                .map(|s| DeploymentLifecycleHookStage::from(s.as_str()))
                .collect(),
        ))
        .set_hook_details(
            hook.details
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
                .map(|v| crate::document::from_json(&v)),
        )
        .set_timeout_configuration(timeout)
        .build()
}

pub(crate) fn service_deployment_view(record: &ServiceDeployment) -> ServiceDeploymentView {
    let target = record.target_service_revision();
    ServiceDeploymentView {
        arn: record
            .service_deployment_arn()
            .unwrap_or_default()
            .to_owned(),
        service_arn: record.service_arn().unwrap_or_default().to_owned(),
        status: record
            .status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        status_reason: record.status_reason().map(str::to_owned),
        lifecycle_stage: record.lifecycle_stage().map(|s| s.as_str().to_owned()),
        hooks: record
            .lifecycle_hook_details()
            .iter()
            .map(|h| HookDetailView {
                hook_id: h.hook_id().unwrap_or_default().to_owned(),
                target_type: h
                    .target_type()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                status: h
                    .status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                expires_at: millis(h.expires_at()),
                timeout_action: h.timeout_action().map(|a| a.as_str().to_owned()),
            })
            .collect(),
        target_revision_arn: target.and_then(|t| t.arn()).map(str::to_owned),
        target_running: target.map_or(0, |t| t.running_task_count()),
        target_pending: target.map_or(0, |t| t.pending_task_count()),
        target_requested: target.map_or(0, |t| t.requested_task_count()),
        rollback_reason: record
            .rollback()
            .and_then(|r| r.reason())
            .map(str::to_owned),
        rollback_revision_arn: record
            .rollback()
            .and_then(|r| r.service_revision_arn())
            .map(str::to_owned),
        circuit_breaker_failures: record
            .deployment_circuit_breaker()
            .map(|c| c.failure_count()),
        created_at: millis(record.created_at()),
        finished_at: millis(record.finished_at()),
    }
}

fn container_choice(definition: &ContainerDefinition) -> ContainerChoice {
    ContainerChoice {
        name: definition.name().unwrap_or_default().to_owned(),
        essential: definition.essential().unwrap_or(true),
        image: definition.image().unwrap_or_default().to_owned(),
        logs: definition.log_configuration().map(|config| {
            let options = config.options();
            let option = |key: &str| options.and_then(|o| o.get(key)).cloned();
            LogSettings {
                driver: config.log_driver().as_str().to_owned(),
                group: option("awslogs-group"),
                stream_prefix: option("awslogs-stream-prefix"),
                create_group: option("awslogs-create-group")
                    .is_some_and(|value| value.eq_ignore_ascii_case("true")),
            }
        }),
        secrets: !definition.secrets().is_empty() || definition.repository_credentials().is_some(),
    }
}

pub(crate) fn task_definition_view(described: &Described) -> TaskDefinitionView {
    let td = &described.definition;
    TaskDefinitionView {
        arn: td.task_definition_arn().unwrap_or_default().to_owned(),
        family: td.family().unwrap_or_default().to_owned(),
        revision: td.revision(),
        containers: td
            .container_definitions()
            .iter()
            .map(container_choice)
            .collect(),
        cpu: td.cpu().map(str::to_owned),
        memory: td.memory().map(str::to_owned),
        execution_role_arn: td.execution_role_arn().map(str::to_owned),
        network_mode: td.network_mode().map(|mode| mode.as_str().to_owned()),
        requires_compatibilities: td
            .requires_compatibilities()
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
        unknown_members: described.unknown_members.clone(),
    }
}

/// Container name → essential (ECS's default is essential).
pub(crate) fn essential_map(task_definition: &TaskDefinition) -> HashMap<String, bool> {
    task_definition
        .container_definitions()
        .iter()
        .filter_map(|c| Some((c.name()?.to_owned(), c.essential().unwrap_or(true))))
        .collect()
}

pub(crate) fn task_view(task: &Task, essential: &HashMap<String, bool>) -> TaskView {
    TaskView {
        task_arn: task.task_arn().unwrap_or_default().to_owned(),
        last_status: task.last_status().unwrap_or_default().to_owned(),
        desired_status: task.desired_status().map(str::to_owned),
        started_by: task.started_by().map(str::to_owned),
        stop_code: task.stop_code().map(|c| c.as_str().to_owned()),
        stopped_reason: task.stopped_reason().map(str::to_owned),
        created_at: millis(task.created_at()),
        started_at: millis(task.started_at()),
        stopped_at: millis(task.stopped_at()),
        containers: task
            .containers()
            .iter()
            .map(|c| {
                let name = c.name().unwrap_or_default().to_owned();
                ContainerView {
                    essential: essential.get(&name).copied().unwrap_or(true),
                    name,
                    last_status: c.last_status().map(str::to_owned),
                    exit_code: c.exit_code(),
                    reason: c.reason().map(str::to_owned),
                }
            })
            .collect(),
    }
}

/// A task definition with its tags, as DescribeTaskDefinition answers with `include=TAGS`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Described {
    pub(crate) definition: TaskDefinition,
    pub(crate) tags: Vec<Tag>,
    /// Members of the answer the SDK does not know (see [`unknown_members`]).
    pub(crate) unknown_members: Vec<String>,
    /// The answer as ECS sent it.
    pub(crate) answer: Option<serde_json::Value>,
}

/// The members of a DescribeTaskDefinition answer, and of each of its containers, that are not
/// in the SDK's own schema of `TaskDefinition` and `ContainerDefinition`: the SDK reads past
/// them, so a copy made through it would drop them without a word.
pub(crate) fn unknown_members(body: &[u8]) -> Vec<String> {
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let Some(td) = answer.get("taskDefinition").and_then(|v| v.as_object()) else {
        return Vec::new();
    };
    let mut unknown: Vec<String> = td
        .keys()
        .filter(|key| TaskDefinition::SCHEMA.member_schema(key).is_none())
        .cloned()
        .collect();
    for container in td
        .get("containerDefinitions")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_object())
    {
        let name = container
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or("?");
        unknown.extend(
            container
                .keys()
                .filter(|key| ContainerDefinition::SCHEMA.member_schema(key).is_none())
                .map(|key| format!("containerDefinitions[{name}].{key}")),
        );
    }
    unknown
}

/// Keeps the raw answer, which only an interceptor sees: for [`unknown_members`], and for
/// CodeDeploy's taskdef.json, which must carry every member the SDK may not know.
#[derive(Debug, Clone, Default)]
struct RawAnswer(Arc<Mutex<Option<Vec<u8>>>>);

impl Intercept for RawAnswer {
    fn name(&self) -> &'static str {
        "UnknownTaskDefinitionMembers"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_ecs::error::BoxError> {
        if let (Some(body), Ok(mut kept)) = (context.response().body().bytes(), self.0.lock()) {
            *kept = Some(body.to_vec());
        }
        Ok(())
    }
}

impl Described {
    pub(crate) fn arn(&self) -> &str {
        self.definition.task_definition_arn().unwrap_or_default()
    }
}

/// The revision the release would register: `base` with the `containers`' image replaced,
/// output-only fields cleared, tags kept (but for the `aws:` ones, which only AWS may set).
pub(crate) fn with_image(base: &Described, containers: &[String], image: &str) -> Described {
    let mut candidate = registrable(base);
    if let Some(definitions) = candidate.definition.container_definitions.as_mut() {
        for definition in definitions
            .iter_mut()
            .filter(|d| d.name().is_some_and(|n| containers.iter().any(|c| c == n)))
        {
            definition.image = Some(image.to_owned());
        }
    }
    candidate
}

/// `td` without the fields ECS sets on registration: two such values compare equal exactly
/// when registering one would produce the other.
pub(crate) fn registrable(td: &Described) -> Described {
    let mut copy = td.definition.clone();
    copy.task_definition_arn = None;
    copy.revision = 0;
    copy.status = None;
    copy.requires_attributes = None;
    copy.compatibilities = None;
    copy.registered_at = None;
    copy.deregistered_at = None;
    copy.delete_requested_at = None;
    copy.registered_by = None;
    Described {
        definition: copy,
        tags: td
            .tags
            .iter()
            .filter(|t| !t.key().is_some_and(is_reserved_tag))
            .cloned()
            .collect(),
        unknown_members: Vec::new(),
        answer: None,
    }
}

/// Whether registering `candidate` would give `registered` (tags in any order).
pub(crate) fn same_revision(registered: &Described, candidate: &Described) -> bool {
    let registered = registrable(registered);
    let sorted = |tags: &[Tag]| {
        let mut pairs = tag_pairs(tags);
        pairs.sort();
        pairs
    };
    registered.definition == candidate.definition
        && sorted(&registered.tags) == sorted(&candidate.tags)
}

/// Tag keys ECS refuses on registration: the `aws:` prefix, in any case, is AWS's own
/// (CloudFormation marks what it created with `aws:cloudformation:*`).
fn is_reserved_tag(key: &str) -> bool {
    key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
}

fn sdk_tags(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect()
}

fn tag_pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

/// The revision number at the end of a task definition ARN (`…/family:7`).
pub(crate) fn revision_of(arn: &str) -> Option<i32> {
    arn.rsplit(':').next()?.parse().ok()
}

/// The family of a task definition ARN (`…/family:7`).
pub(crate) fn family_of(arn: &str) -> &str {
    let tail = arn.rsplit('/').next().unwrap_or(arn);
    tail.split(':').next().unwrap_or(tail)
}

fn network_configuration(network: &NetworkView) -> Result<NetworkConfiguration, Fault> {
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(network.subnets.clone()))
        .set_security_groups(Some(network.security_groups.clone()))
        .set_assign_public_ip(
            network
                .assign_public_ip
                .as_deref()
                .map(AssignPublicIp::from),
        )
        .build()
        .map_err(|e| Fault::unexpected("RunTask", e.to_string()))?;
    Ok(NetworkConfiguration::builder()
        .awsvpc_configuration(vpc)
        .build())
}

/// What RunTask answered.
pub(crate) enum RunTaskAnswer {
    Started(Box<Task>),
    /// ConflictException: the token belongs to these tasks, started with other parameters.
    Conflict(Vec<String>),
    /// Nothing placed: `failures[]` as `reason: detail`.
    Failures(Vec<String>),
}

/// ECS for one cluster.
#[derive(Debug, Clone)]
pub(crate) struct Ecs {
    pub(crate) clients: Clients,
    pub(crate) cluster: String,
}

impl Ecs {
    /// DescribeServices, ten services a call (ECS's limit): the services found, and the names
    /// ECS answered MISSING.
    pub(crate) async fn describe_services(
        &self,
        services: &[String],
    ) -> Result<(Vec<Service>, Vec<String>), Fault> {
        let mut found = Vec::with_capacity(services.len());
        let mut missing = Vec::new();
        for chunk in services.chunks(10) {
            let output = self
                .clients
                .ecs
                .describe_services()
                .cluster(&self.cluster)
                .set_services(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| fault("DescribeServices", &e))?;
            for failure in output.failures() {
                let arn = failure.arn().unwrap_or_default();
                let reason = failure.reason().unwrap_or_default();
                if reason != "MISSING" {
                    return Err(Fault::unexpected(
                        "DescribeServices",
                        format!("`{arn}` failed: {reason}"),
                    ));
                }
                // The failure names the ARN ECS built from what was asked.
                let name = chunk
                    .iter()
                    .find(|asked| arn == asked.as_str() || arn.ends_with(&format!("/{asked}")))
                    .cloned()
                    .unwrap_or_else(|| arn.to_owned());
                missing.push(name);
            }
            found.extend(output.services().iter().cloned());
        }
        Ok((found, missing))
    }

    /// DescribeTaskDefinition with its tags: what a faithful copy needs.
    pub(crate) async fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> Result<Described, Fault> {
        let raw = RawAnswer::default();
        let output = self
            .clients
            .ecs
            .describe_task_definition()
            .task_definition(task_definition)
            .include(TaskDefinitionField::Tags)
            .customize()
            .interceptor(raw.clone())
            .send()
            .await
            .map_err(|e| fault("DescribeTaskDefinition", &e))?;
        let tags = output.tags().to_vec();
        let definition = output.task_definition.ok_or_else(|| {
            Fault::unexpected(
                "DescribeTaskDefinition",
                format!("no task definition in the answer for `{task_definition}`"),
            )
        })?;
        let body = raw.0.lock().ok().and_then(|kept| kept.clone());
        Ok(Described {
            definition,
            tags,
            unknown_members: body.as_deref().map(unknown_members).unwrap_or_default(),
            answer: body.and_then(|b| serde_json::from_slice(&b).ok()),
        })
    }

    /// RegisterTaskDefinition of a copy: every member the request takes is carried, and the
    /// tags (which need `ecs:TagResource` besides). `TaskDefinition` is non-exhaustive, so the
    /// compiler cannot catch a member added later: the faithful-copy test compares the request
    /// sent against the RegisterTaskDefinition model of the pinned botocore.
    pub(crate) async fn register_task_definition(
        &self,
        candidate: Described,
    ) -> Result<Described, Fault> {
        let TaskDefinition {
            family,
            task_role_arn,
            execution_role_arn,
            network_mode,
            container_definitions,
            volumes,
            placement_constraints,
            requires_compatibilities,
            cpu,
            memory,
            pid_mode,
            ipc_mode,
            proxy_configuration,
            ephemeral_storage,
            runtime_platform,
            enable_fault_injection,
            // Set by ECS on registration, not accepted by RegisterTaskDefinition.
            task_definition_arn: _,
            revision: _,
            status: _,
            requires_attributes: _,
            compatibilities: _,
            registered_at: _,
            deregistered_at: _,
            delete_requested_at: _,
            registered_by: _,
            // Deprecated in the SDK: Elastic Inference is no longer available, and ECS
            // refuses registrations that still ask for it.
            inference_accelerators: _,
            ..
        } = candidate.definition;
        let tags = (!candidate.tags.is_empty()).then_some(candidate.tags);
        let output = self
            .clients
            .ecs
            .register_task_definition()
            .set_family(family)
            .set_task_role_arn(task_role_arn)
            .set_execution_role_arn(execution_role_arn)
            .set_network_mode(network_mode)
            .set_container_definitions(container_definitions)
            .set_volumes(volumes)
            .set_placement_constraints(placement_constraints)
            .set_requires_compatibilities(requires_compatibilities)
            .set_cpu(cpu)
            .set_memory(memory)
            .set_tags(tags)
            .set_pid_mode(pid_mode)
            .set_ipc_mode(ipc_mode)
            .set_proxy_configuration(proxy_configuration)
            .set_ephemeral_storage(ephemeral_storage)
            .set_runtime_platform(runtime_platform)
            .set_enable_fault_injection(enable_fault_injection)
            .send()
            .await
            .map_err(|e| fault("RegisterTaskDefinition", &e))?;
        let tags = output.tags().to_vec();
        let definition = output.task_definition.ok_or_else(|| {
            Fault::unexpected("RegisterTaskDefinition", "no task definition in the answer")
        })?;
        Ok(Described {
            definition,
            tags,
            unknown_members: Vec::new(),
            answer: None,
        })
    }

    pub(crate) async fn run_task(&self, spec: &TaskSpec) -> Result<RunTaskAnswer, Fault> {
        let mut container = ContainerOverride::builder().name(&spec.container);
        if let Some(command) = &spec.command {
            container = container.set_command(Some(command.clone()));
        }
        if let Some(cpu) = spec.cpu {
            container = container.cpu(cpu);
        }
        if let Some(memory) = spec.memory {
            container = container.memory(memory);
        }
        for (name, value) in &spec.environment {
            container =
                container.environment(KeyValuePair::builder().name(name).value(value).build());
        }
        let overrides = TaskOverride::builder()
            .container_overrides(container.build())
            .set_cpu(spec.task_cpu.clone())
            .set_memory(spec.task_memory.clone())
            .set_task_role_arn(spec.task_role_arn.clone())
            .set_execution_role_arn(spec.execution_role_arn.clone())
            .build();
        let network = spec
            .network
            .as_ref()
            .map(network_configuration)
            .transpose()?;
        let mut request = self
            .clients
            .ecs
            .run_task()
            .cluster(&self.cluster)
            .task_definition(&spec.task_definition)
            .count(1)
            .overrides(overrides)
            .set_network_configuration(network)
            .set_platform_version(spec.platform_version.clone())
            .started_by(&spec.started_by)
            .set_client_token(spec.client_token.clone());
        match &spec.launch {
            Launch::LaunchType { launch_type } => {
                request = request.launch_type(LaunchType::from(launch_type.as_str()));
            }
            Launch::CapacityProviders { strategy } => {
                for item in strategy {
                    request = request.capacity_provider_strategy(
                        CapacityProviderStrategyItem::builder()
                            .capacity_provider(&item.capacity_provider)
                            .weight(item.weight)
                            .base(item.base)
                            .build()
                            .map_err(|e| Fault::unexpected("RunTask", e.to_string()))?,
                    );
                }
            }
            Launch::ClusterDefault => {}
        }
        match request.send().await {
            Ok(output) => {
                if let Some(task) = output.tasks().first() {
                    return Ok(RunTaskAnswer::Started(Box::new(task.clone())));
                }
                let reasons = output
                    .failures()
                    .iter()
                    .map(|f| {
                        let mut text = f.reason().unwrap_or("unknown").to_owned();
                        if let Some(detail) = f.detail() {
                            text.push_str(": ");
                            text.push_str(detail);
                        }
                        text
                    })
                    .collect();
                Ok(RunTaskAnswer::Failures(reasons))
            }
            Err(error) => {
                if let Some(RunTaskError::ConflictException(conflict)) = error.as_service_error() {
                    return Ok(RunTaskAnswer::Conflict(conflict.resource_ids().to_vec()));
                }
                Err(fault("RunTask", &error))
            }
        }
    }

    pub(crate) async fn describe_tasks(&self, task_arns: &[String]) -> Result<Vec<Task>, Fault> {
        let mut tasks = Vec::new();
        // DescribeTasks takes up to 100 tasks per call.
        for chunk in task_arns.chunks(100) {
            let output = self
                .clients
                .ecs
                .describe_tasks()
                .cluster(&self.cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| fault("DescribeTasks", &e))?;
            tasks.extend(output.tasks().iter().cloned());
        }
        Ok(tasks)
    }

    pub(crate) async fn stop_task(&self, task_arn: &str, reason: &str) -> Result<(), Fault> {
        self.clients
            .ecs
            .stop_task()
            .cluster(&self.cluster)
            .task(task_arn)
            .reason(reason)
            .send()
            .await
            .map_err(|e| fault("StopTask", &e))?;
        Ok(())
    }

    /// UpdateService to `task_definition` (when given), with the service's lifecycle hooks
    /// replaced by `hooks` (when given) in the deployment configuration it has now.
    pub(crate) async fn update_service(
        &self,
        service: &str,
        task_definition: Option<&str>,
        hooks: Option<&[LifecycleHookView]>,
    ) -> Result<Service, Fault> {
        let configuration = match hooks {
            Some(hooks) => {
                let (found, _) = self.describe_services(&[service.to_owned()]).await?;
                let mut configuration = found
                    .first()
                    .and_then(|s| s.deployment_configuration().cloned())
                    .unwrap_or_else(|| DeploymentConfiguration::builder().build());
                // The whole configuration goes back: UpdateService resets members left out.
                configuration.lifecycle_hooks = Some(hooks.iter().map(sdk_hook).collect());
                Some(configuration)
            }
            None => None,
        };
        let output = self
            .clients
            .ecs
            .update_service()
            .cluster(&self.cluster)
            .service(service)
            .set_task_definition(task_definition.map(str::to_owned))
            .set_deployment_configuration(configuration)
            .send()
            .await
            .map_err(|e| fault("UpdateService", &e))?;
        output
            .service
            .ok_or_else(|| Fault::unexpected("UpdateService", "no service in the answer"))
    }

    /// DescribeServiceDeployments, twenty a call: the records found, and the ARNs ECS could
    /// not describe.
    pub(crate) async fn describe_service_deployments(
        &self,
        arns: &[String],
    ) -> Result<(Vec<ServiceDeployment>, Vec<String>), Fault> {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for chunk in arns.chunks(20) {
            let output = self
                .clients
                .ecs
                .describe_service_deployments()
                .set_service_deployment_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| fault("DescribeServiceDeployments", &e))?;
            missing.extend(
                output
                    .failures()
                    .iter()
                    .map(|f| f.arn().unwrap_or_default().to_owned()),
            );
            found.extend(output.service_deployments().iter().cloned());
        }
        Ok((found, missing))
    }

    /// ListServiceDeployments, first page (ECS's default of 20), newest first.
    pub(crate) async fn list_service_deployments(
        &self,
        service: &str,
    ) -> Result<Vec<String>, Fault> {
        let output = self
            .clients
            .ecs
            .list_service_deployments()
            .cluster(&self.cluster)
            .service(service)
            .send()
            .await
            .map_err(|e| fault("ListServiceDeployments", &e))?;
        let mut briefs = output.service_deployments().to_vec();
        // ECS does not document the order.
        briefs.sort_by_key(|b| std::cmp::Reverse(millis(b.created_at())));
        Ok(briefs
            .iter()
            .filter_map(|b| b.service_deployment_arn().map(str::to_owned))
            .collect())
    }

    pub(crate) async fn continue_service_deployment(
        &self,
        arn: &str,
        hook_id: &str,
        action: &str,
    ) -> Result<(), Fault> {
        self.clients
            .ecs
            .continue_service_deployment()
            .service_deployment_arn(arn)
            .hook_id(hook_id)
            .action(DeploymentLifecycleHookAction::from(action))
            .send()
            .await
            .map_err(|e| fault("ContinueServiceDeployment", &e))?;
        Ok(())
    }

    pub(crate) async fn stop_service_deployment(
        &self,
        arn: &str,
        stop_type: &str,
    ) -> Result<(), Fault> {
        self.clients
            .ecs
            .stop_service_deployment()
            .service_deployment_arn(arn)
            .stop_type(StopServiceDeploymentStopType::from(stop_type))
            .send()
            .await
            .map_err(|e| fault("StopServiceDeployment", &e))?;
        Ok(())
    }

    /// ListTasks, every page.
    pub(crate) async fn list_tasks(
        &self,
        family: Option<&str>,
        started_by: Option<&str>,
        stopped: bool,
    ) -> Result<Vec<String>, Fault> {
        let status = if stopped {
            aws_sdk_ecs::types::DesiredStatus::Stopped
        } else {
            aws_sdk_ecs::types::DesiredStatus::Running
        };
        let mut arns = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let output = self
                .clients
                .ecs
                .list_tasks()
                .cluster(&self.cluster)
                .set_family(family.map(str::to_owned))
                .set_started_by(started_by.map(str::to_owned))
                .desired_status(status.clone())
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| fault("ListTasks", &e))?;
            arns.extend(output.task_arns().iter().cloned());
            match output.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => return Ok(arns),
            }
        }
    }

    // ------------------------------------------------------------------ the ledger

    /// Revisions of `family` (exactly: the prefix filter matches longer names too) with
    /// `status`, in `order`, every page unless `first_only`.
    pub(crate) async fn list_revisions(
        &self,
        family: &str,
        status: TaskDefinitionStatus,
        order: SortOrder,
        first_only: bool,
    ) -> Result<Vec<i32>, Fault> {
        let mut revisions = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let output = self
                .clients
                .ecs
                .list_task_definitions()
                .family_prefix(family)
                .status(status.clone())
                .sort(order.clone())
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| fault("ListTaskDefinitions", &e))?;
            revisions.extend(
                output
                    .task_definition_arns()
                    .iter()
                    .filter(|arn| family_of(arn) == family)
                    .filter_map(|arn| revision_of(arn)),
            );
            if first_only && !revisions.is_empty() {
                return Ok(revisions);
            }
            match output.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => return Ok(revisions),
            }
        }
    }

    /// One ledger entry with its tags, `None` when the revision does not exist.
    pub(crate) async fn describe_entry(
        &self,
        family: &str,
        revision: i32,
    ) -> Result<Option<Entry>, Fault> {
        let result = self
            .clients
            .ecs
            .describe_task_definition()
            .task_definition(format!("{family}:{revision}"))
            .include(TaskDefinitionField::Tags)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            // "Unable to describe task definition": no such revision.
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(DescribeTaskDefinitionError::ClientException(_))
                ) =>
            {
                return Ok(None);
            }
            Err(error) => return Err(fault("DescribeTaskDefinition", &error)),
        };
        let td = output.task_definition().ok_or_else(|| {
            Fault::unexpected(
                "DescribeTaskDefinition",
                format!("no task definition in the answer for `{family}:{revision}`"),
            )
        })?;
        Ok(Some(entry_of(td, output.tags())))
    }

    pub(crate) async fn register_entry(
        &self,
        family: &str,
        record: &Record,
    ) -> Result<Entry, Fault> {
        let container = ContainerDefinition::builder()
            .name(ENTRY_CONTAINER)
            .image(ENTRY_IMAGE)
            .essential(true)
            .memory(6)
            .build();
        let output = self
            .clients
            .ecs
            .register_task_definition()
            .family(family)
            .container_definitions(container)
            .set_tags(Some(sdk_tags(&record.to_tags())))
            .send()
            .await
            .map_err(|e| fault("RegisterTaskDefinition", &e))?;
        let td = output.task_definition().ok_or_else(|| {
            Fault::unexpected("RegisterTaskDefinition", "no task definition in the answer")
        })?;
        let mut entry = entry_of(td, output.tags());
        if entry.record.is_none() {
            // Some endpoints do not echo the tags they were given.
            entry.record = Some(record.clone());
        }
        Ok(entry)
    }

    pub(crate) async fn tag(&self, arn: &str, tags: &[(String, String)]) -> Result<(), Fault> {
        self.clients
            .ecs
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(sdk_tags(tags)))
            .send()
            .await
            .map_err(|e| fault("TagResource", &e))?;
        Ok(())
    }

    pub(crate) async fn deregister_task_definition(&self, arn: &str) -> Result<(), Fault> {
        self.clients
            .ecs
            .deregister_task_definition()
            .task_definition(arn)
            .send()
            .await
            .map_err(|e| fault("DeregisterTaskDefinition", &e))?;
        Ok(())
    }
}

fn entry_of(td: &TaskDefinition, tags: &[Tag]) -> Entry {
    Entry {
        revision: td.revision(),
        arn: td.task_definition_arn().unwrap_or_default().to_owned(),
        open: td.status() == Some(&TaskDefinitionStatus::Active),
        registered_at: millis(td.registered_at()),
        record: Record::from_tags(&tag_pairs(tags)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_definition_arns() {
        let arn = "arn:aws:ecs:us-east-1:1:task-definition/shipmate-ledger-prod-web:12";
        assert_eq!(revision_of(arn), Some(12));
        assert_eq!(family_of(arn), "shipmate-ledger-prod-web");
        assert_eq!(family_of("web:7"), "web");
    }

    fn tag(key: &str, value: &str) -> Tag {
        Tag::builder().key(key).value(value).build()
    }

    #[test]
    fn a_copy_moves_the_named_containers_and_keeps_the_tags_aws_does_not_own() {
        let container = |name: &str, image: &str| {
            ContainerDefinition::builder()
                .name(name)
                .image(image)
                .build()
        };
        let base = Described {
            definition: TaskDefinition::builder()
                .family("web")
                .task_definition_arn("arn:aws:ecs:us-east-1:1:task-definition/web:3")
                .revision(3)
                .container_definitions(container("app", "shop:1"))
                .container_definitions(container("celery", "shop:1"))
                .container_definitions(container("envoy", "proxy:1"))
                .build(),
            tags: vec![
                tag("team", "shop"),
                tag("aws:cloudformation:stack-name", "web"),
                tag("AWS:other", "x"),
            ],
            unknown_members: Vec::new(),
            answer: None,
        };
        let copy = with_image(&base, &["app".to_owned(), "celery".to_owned()], "shop:2");
        let images: Vec<_> = copy
            .definition
            .container_definitions()
            .iter()
            .map(|c| c.image().unwrap_or_default())
            .collect();
        assert_eq!(images, ["shop:2", "shop:2", "proxy:1"]);
        assert_eq!(copy.definition.task_definition_arn(), None);
        assert_eq!(copy.definition.revision(), 0);
        assert_eq!(
            tag_pairs(&copy.tags),
            [("team".to_owned(), "shop".to_owned())]
        );
        // Registering the copy gives a revision that compares the same, tags in any order.
        let mut registered = copy.clone();
        registered.definition.revision = 4;
        registered.tags = vec![tag("team", "shop")];
        assert!(same_revision(&registered, &copy));
        assert!(!same_revision(&base, &copy));
        registered.tags.push(tag("extra", "1"));
        assert!(!same_revision(&registered, &copy));
    }

    #[test]
    fn members_the_sdk_does_not_know_are_found_in_the_raw_answer() {
        let answer = serde_json::json!({
            "taskDefinition": {
                "family": "web",
                "cpu": "256",
                "trustedExecutionConfiguration": {"enabled": true},
                "containerDefinitions": [
                    {"name": "app", "image": "shop:1", "restartPolicy": {"enabled": true}},
                    {"name": "envoy", "image": "proxy:1", "futureKnob": 3}
                ]
            },
            "tags": []
        });
        let body = serde_json::to_vec(&answer).unwrap();
        assert_eq!(
            unknown_members(&body),
            [
                "trustedExecutionConfiguration",
                "containerDefinitions[envoy].futureKnob"
            ]
        );
        assert!(unknown_members(b"not json").is_empty());
    }
}
