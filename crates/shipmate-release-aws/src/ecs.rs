//! The ECS calls a release makes, one function per AWS operation, converting SDK shapes into
//! the domain's views at the boundary. Nothing here decides anything.

use std::collections::HashMap;

use aws_sdk_ecs::operation::run_task::RunTaskError;
use aws_sdk_ecs::types::{
    CapacityProviderStrategyItem, ContainerOverride, LaunchType, NetworkConfiguration, Service,
    Task, TaskDefinition, TaskOverride,
};
use shipmate_release::plan::{CapacityItem, ContainerChoice, Launch, NetworkView};
use shipmate_release::service::{DeploymentView, ServiceEventView, ServiceView};
use shipmate_release::task::{ContainerView, TaskView};

use crate::client::Clients;
use crate::error::{AwsError, ReleaseError};

fn millis(time: Option<&aws_smithy_types::DateTime>) -> Option<i64> {
    time.and_then(|t| t.to_millis().ok())
}

/// The service as read, plus the raw shapes the release copies settings from.
#[derive(Debug, Clone)]
pub struct ServiceSnapshot {
    pub view: ServiceView,
    pub raw: Service,
}

impl ServiceSnapshot {
    pub fn network(&self) -> Option<&NetworkConfiguration> {
        self.raw.network_configuration()
    }

    /// The lock token's base: the deployment the release starts from.
    pub fn lock_base(&self) -> String {
        self.view
            .primary()
            .map_or_else(|| self.view.task_definition.clone(), |d| d.id.clone())
    }

    pub fn capacity(&self) -> Vec<CapacityItem> {
        capacity_items(self.raw.capacity_provider_strategy())
    }

    pub fn launch_type(&self) -> Option<&str> {
        self.raw.launch_type().map(LaunchType::as_str)
    }
}

pub fn capacity_items(strategy: &[CapacityProviderStrategyItem]) -> Vec<CapacityItem> {
    strategy
        .iter()
        .map(|item| CapacityItem {
            capacity_provider: item.capacity_provider().to_owned(),
            weight: item.weight(),
            base: item.base(),
        })
        .collect()
}

pub fn network_view(network: &NetworkConfiguration) -> Option<NetworkView> {
    let vpc = network.awsvpc_configuration()?;
    Some(NetworkView {
        subnets: vpc.subnets().to_vec(),
        security_groups: vpc.security_groups().to_vec(),
        assign_public_ip: vpc.assign_public_ip().map(|a| a.as_str().to_owned()),
    })
}

pub fn service_view(service: &Service) -> ServiceView {
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
    }
}

/// Container name → essential, from a task definition (ECS's default is essential).
pub fn essential_map(task_definition: &TaskDefinition) -> HashMap<String, bool> {
    task_definition
        .container_definitions()
        .iter()
        .filter_map(|c| Some((c.name()?.to_owned(), c.essential().unwrap_or(true))))
        .collect()
}

pub fn task_view(task: &Task, essential: &HashMap<String, bool>) -> TaskView {
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

pub fn container_choices(task_definition: &TaskDefinition) -> Vec<ContainerChoice> {
    task_definition
        .container_definitions()
        .iter()
        .map(|c| ContainerChoice {
            name: c.name().unwrap_or_default().to_owned(),
            essential: c.essential().unwrap_or(true),
            image: c.image().unwrap_or_default().to_owned(),
        })
        .collect()
}

/// Where a container's awslogs go: (group, stream prefix).
pub fn awslogs_target(
    task_definition: &TaskDefinition,
    container: &str,
) -> Result<(String, Option<String>), String> {
    let definition = task_definition
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some(container))
        .ok_or_else(|| format!("no container `{container}`"))?;
    let Some(config) = definition.log_configuration() else {
        return Err(format!("container `{container}` has no logConfiguration"));
    };
    if config.log_driver().as_str() != "awslogs" {
        return Err(format!(
            "container `{container}` logs with `{}`, not awslogs",
            config.log_driver().as_str()
        ));
    }
    let options = config.options().cloned().unwrap_or_default();
    let group = options
        .get("awslogs-group")
        .cloned()
        .ok_or_else(|| format!("container `{container}` has no awslogs-group"))?;
    Ok((group, options.get("awslogs-stream-prefix").cloned()))
}

/// The task definition as the release would register it: `base` with one container's image
/// replaced, output-only fields cleared so that two such values compare equal exactly when
/// registering one would produce the other.
pub fn with_image(base: &TaskDefinition, container: &str, image: &str) -> TaskDefinition {
    let mut candidate = registrable(base);
    if let Some(definitions) = candidate.container_definitions.as_mut() {
        for definition in definitions
            .iter_mut()
            .filter(|d| d.name() == Some(container))
        {
            definition.image = Some(image.to_owned());
        }
    }
    candidate
}

/// `td` without the fields ECS sets on registration.
pub fn registrable(td: &TaskDefinition) -> TaskDefinition {
    let mut copy = td.clone();
    copy.task_definition_arn = None;
    copy.revision = 0;
    copy.status = None;
    copy.requires_attributes = None;
    copy.compatibilities = None;
    copy.registered_at = None;
    copy.deregistered_at = None;
    copy.delete_requested_at = None;
    copy.registered_by = None;
    // Deprecated in the API; never registered, so never compared.
    copy.inference_accelerators = None;
    copy
}

/// Everything RunTask needs for one one-off task.
#[derive(Debug, Clone)]
pub struct RunTaskParams {
    pub task_definition: String,
    pub container: String,
    pub command: Option<Vec<String>>,
    pub cpu: Option<i32>,
    pub memory: Option<i32>,
    pub network: Option<NetworkConfiguration>,
    pub launch: Launch,
    pub platform_version: Option<String>,
    pub started_by: Option<String>,
    pub client_token: Option<String>,
}

pub enum RunTaskResult {
    Started(Box<Task>),
    /// ConflictException: the token belongs to these tasks, started with other parameters.
    Conflict(Vec<String>),
}

/// ECS for one cluster.
#[derive(Debug, Clone)]
pub struct Ecs {
    pub clients: Clients,
    pub cluster: String,
}

impl Ecs {
    fn err(&self, source: AwsError) -> ReleaseError {
        ReleaseError::aws(&self.cluster, source)
    }

    pub async fn describe_service(&self, service: &str) -> Result<ServiceSnapshot, ReleaseError> {
        let output = self
            .clients
            .ecs
            .describe_services()
            .cluster(&self.cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| self.err(AwsError::from_sdk("DescribeServices", &e)))?;
        let Some(raw) = output.services().first().cloned() else {
            return Err(ReleaseError::ServiceNotFound {
                cluster: self.cluster.clone(),
                service: service.to_owned(),
            });
        };
        Ok(ServiceSnapshot {
            view: service_view(&raw),
            raw,
        })
    }

    pub async fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> Result<TaskDefinition, ReleaseError> {
        let output = self
            .clients
            .ecs
            .describe_task_definition()
            .task_definition(task_definition)
            .send()
            .await
            .map_err(|e| self.err(AwsError::from_sdk("DescribeTaskDefinition", &e)))?;
        output.task_definition.ok_or_else(|| {
            ReleaseError::Invalid(format!(
                "DescribeTaskDefinition returned no task definition for `{task_definition}`"
            ))
        })
    }

    pub async fn register_task_definition(
        &self,
        candidate: &TaskDefinition,
    ) -> Result<TaskDefinition, ReleaseError> {
        let td = candidate.clone();
        let output = self
            .clients
            .ecs
            .register_task_definition()
            .set_family(td.family)
            .set_task_role_arn(td.task_role_arn)
            .set_execution_role_arn(td.execution_role_arn)
            .set_network_mode(td.network_mode)
            .set_container_definitions(td.container_definitions)
            .set_volumes(td.volumes)
            .set_placement_constraints(td.placement_constraints)
            .set_requires_compatibilities(td.requires_compatibilities)
            .set_cpu(td.cpu)
            .set_memory(td.memory)
            .set_pid_mode(td.pid_mode)
            .set_ipc_mode(td.ipc_mode)
            .set_proxy_configuration(td.proxy_configuration)
            .set_ephemeral_storage(td.ephemeral_storage)
            .set_runtime_platform(td.runtime_platform)
            .set_enable_fault_injection(td.enable_fault_injection)
            .send()
            .await
            .map_err(|e| self.err(AwsError::from_sdk("RegisterTaskDefinition", &e)))?;
        output.task_definition.ok_or_else(|| {
            ReleaseError::Invalid("RegisterTaskDefinition returned no task definition".to_owned())
        })
    }

    pub async fn run_task(&self, params: &RunTaskParams) -> Result<RunTaskResult, ReleaseError> {
        let mut container = ContainerOverride::builder().name(&params.container);
        if let Some(command) = &params.command {
            container = container.set_command(Some(command.clone()));
        }
        if let Some(cpu) = params.cpu {
            container = container.cpu(cpu);
        }
        if let Some(memory) = params.memory {
            container = container.memory(memory);
        }
        let overrides = TaskOverride::builder()
            .container_overrides(container.build())
            .build();
        let mut request = self
            .clients
            .ecs
            .run_task()
            .cluster(&self.cluster)
            .task_definition(&params.task_definition)
            .count(1)
            .overrides(overrides)
            .set_network_configuration(params.network.clone())
            .set_platform_version(params.platform_version.clone())
            .set_started_by(params.started_by.clone())
            .set_client_token(params.client_token.clone());
        match &params.launch {
            Launch::LaunchType { launch_type } => {
                request = request.launch_type(LaunchType::from(launch_type.as_str()))
            }
            Launch::CapacityProviders { strategy } => {
                for item in strategy {
                    request = request.capacity_provider_strategy(
                        CapacityProviderStrategyItem::builder()
                            .capacity_provider(&item.capacity_provider)
                            .weight(item.weight)
                            .base(item.base)
                            .build()
                            .map_err(|e| ReleaseError::Invalid(e.to_string()))?,
                    );
                }
            }
            Launch::ClusterDefault => {}
        }
        match request.send().await {
            Ok(output) => {
                if let Some(task) = output.tasks().first() {
                    return Ok(RunTaskResult::Started(Box::new(task.clone())));
                }
                let reason = output
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
                    .collect::<Vec<_>>()
                    .join("; ");
                Err(ReleaseError::Placement {
                    role: "one-off",
                    cluster: self.cluster.clone(),
                    reason: if reason.is_empty() {
                        "RunTask returned no task".to_owned()
                    } else {
                        reason
                    },
                })
            }
            Err(error) => {
                if let Some(RunTaskError::ConflictException(conflict)) = error.as_service_error() {
                    return Ok(RunTaskResult::Conflict(conflict.resource_ids().to_vec()));
                }
                Err(self.err(AwsError::from_sdk("RunTask", &error)))
            }
        }
    }

    pub async fn describe_tasks(&self, task_arns: &[String]) -> Result<Vec<Task>, ReleaseError> {
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
                .map_err(|e| self.err(AwsError::from_sdk("DescribeTasks", &e)))?;
            tasks.extend(output.tasks().iter().cloned());
        }
        Ok(tasks)
    }

    pub async fn stop_task(&self, task_arn: &str, reason: &str) -> Result<(), ReleaseError> {
        self.clients
            .ecs
            .stop_task()
            .cluster(&self.cluster)
            .task(task_arn)
            .reason(reason)
            .send()
            .await
            .map_err(|e| self.err(AwsError::from_sdk("StopTask", &e)))?;
        Ok(())
    }

    pub async fn update_service(
        &self,
        service: &str,
        task_definition: &str,
    ) -> Result<ServiceSnapshot, ReleaseError> {
        let output = self
            .clients
            .ecs
            .update_service()
            .cluster(&self.cluster)
            .service(service)
            .task_definition(task_definition)
            .send()
            .await
            .map_err(|e| self.err(AwsError::from_sdk("UpdateService", &e)))?;
        let raw = output
            .service
            .ok_or_else(|| ReleaseError::Invalid("UpdateService returned no service".to_owned()))?;
        Ok(ServiceSnapshot {
            view: service_view(&raw),
            raw,
        })
    }

    /// Task definition ARNs of a family, newest first.
    pub async fn list_task_definitions(&self, family: &str) -> Result<Vec<String>, ReleaseError> {
        let output = self
            .clients
            .ecs
            .list_task_definitions()
            .family_prefix(family)
            .sort(aws_sdk_ecs::types::SortOrder::Desc)
            .max_results(100)
            .send()
            .await
            .map_err(|e| self.err(AwsError::from_sdk("ListTaskDefinitions", &e)))?;
        Ok(output.task_definition_arns().to_vec())
    }

    /// Tasks of a family with the given desired status.
    pub async fn list_tasks(
        &self,
        family: &str,
        desired_status: &str,
    ) -> Result<Vec<String>, ReleaseError> {
        let output = self
            .clients
            .ecs
            .list_tasks()
            .cluster(&self.cluster)
            .family(family)
            .desired_status(aws_sdk_ecs::types::DesiredStatus::from(desired_status))
            .max_results(100)
            .send()
            .await
            .map_err(|e| self.err(AwsError::from_sdk("ListTasks", &e)))?;
        Ok(output.task_arns().to_vec())
    }
}
