//! The ECS calls a release makes, one function per AWS operation, converting SDK shapes into
//! the domain's views at the boundary. Nothing here decides anything.

use std::collections::HashMap;

use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionError;
use aws_sdk_ecs::operation::run_task::RunTaskError;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, ContainerDefinition,
    ContainerOverride, LaunchType, NetworkConfiguration, Service, SortOrder, Tag, Task,
    TaskDefinition, TaskDefinitionField, TaskDefinitionStatus, TaskOverride,
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
            }
        }),
    }
}

pub(crate) fn task_definition_view(td: &TaskDefinition) -> TaskDefinitionView {
    TaskDefinitionView {
        arn: td.task_definition_arn().unwrap_or_default().to_owned(),
        family: td.family().unwrap_or_default().to_owned(),
        revision: td.revision(),
        containers: td
            .container_definitions()
            .iter()
            .map(container_choice)
            .collect(),
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

/// The task definition as the release would register it: `base` with one container's image
/// replaced, output-only fields cleared.
pub(crate) fn with_image(base: &TaskDefinition, container: &str, image: &str) -> TaskDefinition {
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

/// `td` without the fields ECS sets on registration: two such values compare equal exactly
/// when registering one would produce the other.
pub(crate) fn registrable(td: &TaskDefinition) -> TaskDefinition {
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
    copy
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
    /// `None` when the service does not exist (DescribeServices' MISSING).
    pub(crate) async fn describe_service(&self, service: &str) -> Result<Option<Service>, Fault> {
        let output = self
            .clients
            .ecs
            .describe_services()
            .cluster(&self.cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| fault("DescribeServices", &e))?;
        Ok(output.services().first().cloned())
    }

    pub(crate) async fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> Result<TaskDefinition, Fault> {
        let output = self
            .clients
            .ecs
            .describe_task_definition()
            .task_definition(task_definition)
            .send()
            .await
            .map_err(|e| fault("DescribeTaskDefinition", &e))?;
        output.task_definition.ok_or_else(|| {
            Fault::unexpected(
                "DescribeTaskDefinition",
                format!("no task definition in the answer for `{task_definition}`"),
            )
        })
    }

    pub(crate) async fn register_task_definition(
        &self,
        candidate: TaskDefinition,
    ) -> Result<TaskDefinition, Fault> {
        let td = candidate;
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
            .map_err(|e| fault("RegisterTaskDefinition", &e))?;
        output.task_definition.ok_or_else(|| {
            Fault::unexpected("RegisterTaskDefinition", "no task definition in the answer")
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
        let overrides = TaskOverride::builder()
            .container_overrides(container.build())
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

    pub(crate) async fn update_service(
        &self,
        service: &str,
        task_definition: &str,
    ) -> Result<Service, Fault> {
        let output = self
            .clients
            .ecs
            .update_service()
            .cluster(&self.cluster)
            .service(service)
            .task_definition(task_definition)
            .send()
            .await
            .map_err(|e| fault("UpdateService", &e))?;
        output
            .service
            .ok_or_else(|| Fault::unexpected("UpdateService", "no service in the answer"))
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
}
