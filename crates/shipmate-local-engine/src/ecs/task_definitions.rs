//! RegisterTaskDefinition, DescribeTaskDefinition, ListTaskDefinitions,
//! ListTaskDefinitionFamilies, DeregisterTaskDefinition, and the lookup every task launch uses.

use shipmate_local_api::ecs::*;
use shipmate_local_protocol::AwsError;

use super::clusters::includes;
use super::pagination::paginate;
use super::tags::validate_tags;
use super::{Ecs, EcsState, arns, client_exception};
use crate::ACCOUNT_ID;

const NETWORK_MODES: [&str; 4] = ["bridge", "host", "awsvpc", "none"];

impl Ecs {
    pub(crate) fn register_task_definition(
        &self,
        region: &str,
        input: RegisterTaskDefinitionRequest,
    ) -> Result<RegisterTaskDefinitionResponse, AwsError> {
        let tags = input.tags.clone().unwrap_or_default();
        validate_tags(&tags)?;
        let mut definition = validate(input)?;
        let family = definition.family.clone().expect("validated");
        let mut state = self.state();
        let revisions = state.task_definitions.entry(family.clone()).or_default();
        let revision = revisions.len() as i32 + 1;
        let arn = arns::task_definition(region, &family, revision);
        definition.task_definition_arn = Some(arn.clone());
        definition.revision = revision;
        definition.status = Some("ACTIVE".into());
        definition.registered_at = Some(epoch_seconds(self.now()));
        definition.registered_by = Some(format!("arn:aws:iam::{ACCOUNT_ID}:root"));
        revisions.push(definition.clone());
        if !tags.is_empty() {
            state.tags.insert(arn, tags.clone());
        }
        drop(state);
        self.changed();
        Ok(RegisterTaskDefinitionResponse {
            task_definition: definition,
            tags: (!tags.is_empty()).then_some(tags),
        })
    }

    pub(crate) fn describe_task_definition(
        &self,
        input: DescribeTaskDefinitionRequest,
    ) -> Result<DescribeTaskDefinitionResponse, AwsError> {
        let reference = input
            .task_definition
            .ok_or_else(|| client_exception("taskDefinition is required."))?;
        let state = self.state();
        let definition = lookup(&state, &reference, true)?.clone();
        let tags = includes(&input.include, "TAGS").then(|| {
            definition
                .task_definition_arn
                .as_ref()
                .and_then(|arn| state.tags.get(arn).cloned())
                .unwrap_or_default()
        });
        Ok(DescribeTaskDefinitionResponse {
            task_definition: definition,
            tags,
        })
    }

    pub(crate) fn list_task_definitions(
        &self,
        input: ListTaskDefinitionsRequest,
    ) -> Result<ListTaskDefinitionsResponse, AwsError> {
        let status = input.status.as_deref().unwrap_or("ACTIVE");
        let mut arns: Vec<String> = {
            let state = self.state();
            state
                .task_definitions
                .iter()
                .filter(|(family, _)| {
                    input
                        .family_prefix
                        .as_ref()
                        .is_none_or(|wanted| *family == wanted)
                })
                .flat_map(|(_, revisions)| revisions)
                .filter(|d| d.status.as_deref() == Some(status))
                .filter_map(|d| d.task_definition_arn.clone())
                .collect()
        };
        match input.sort.as_deref() {
            None | Some("ASC") => {}
            Some("DESC") => arns.reverse(),
            Some(other) => {
                return Err(super::invalid_parameter(format!(
                    "sort must be ASC or DESC, not {other}."
                )));
            }
        }
        let (task_definition_arns, next_token) =
            paginate(arns, input.next_token.as_deref(), input.max_results)?;
        Ok(ListTaskDefinitionsResponse {
            task_definition_arns,
            next_token,
        })
    }

    pub(crate) fn list_task_definition_families(
        &self,
        input: ListTaskDefinitionFamiliesRequest,
    ) -> Result<ListTaskDefinitionFamiliesResponse, AwsError> {
        let status = input.status.as_deref().unwrap_or("ACTIVE");
        let families: Vec<String> = self
            .state()
            .task_definitions
            .iter()
            .filter(|(family, _)| {
                input
                    .family_prefix
                    .as_ref()
                    .is_none_or(|prefix| family.starts_with(prefix.as_str()))
            })
            .filter(|(_, revisions)| {
                let active = revisions
                    .iter()
                    .any(|d| d.status.as_deref() == Some("ACTIVE"));
                match status {
                    "ALL" => true,
                    "INACTIVE" => !active,
                    _ => active,
                }
            })
            .map(|(family, _)| family.clone())
            .collect();
        let (families, next_token) =
            paginate(families, input.next_token.as_deref(), input.max_results)?;
        Ok(ListTaskDefinitionFamiliesResponse {
            families,
            next_token,
        })
    }

    pub(crate) fn deregister_task_definition(
        &self,
        input: DeregisterTaskDefinitionRequest,
    ) -> Result<DeregisterTaskDefinitionResponse, AwsError> {
        let reference = input
            .task_definition
            .ok_or_else(|| client_exception("taskDefinition is required."))?;
        let (family, revision) = arns::task_definition_reference(&reference);
        let revision = revision.ok_or_else(|| {
            client_exception(
                "A revision is required to deregister a task definition: use family:revision or the full ARN.",
            )
        })?;
        let now = epoch_seconds(self.now());
        let mut state = self.state();
        let definition = state
            .task_definitions
            .get_mut(&family)
            .and_then(|revisions| revisions.get_mut((revision as usize).wrapping_sub(1)))
            .ok_or_else(unable_to_describe)?;
        if definition.status.as_deref() == Some("ACTIVE") {
            definition.status = Some("INACTIVE".into());
            definition.deregistered_at = Some(now);
        }
        let task_definition = definition.clone();
        drop(state);
        self.changed();
        Ok(DeregisterTaskDefinitionResponse { task_definition })
    }
}

fn unable_to_describe() -> AwsError {
    client_exception("Unable to describe task definition.")
}

/// The task definition `reference` names: `family` (latest ACTIVE revision), `family:revision`
/// or an ARN. With `any_status`, INACTIVE revisions named by revision are found too.
pub(super) fn lookup<'a>(
    state: &'a EcsState,
    reference: &str,
    any_status: bool,
) -> Result<&'a TaskDefinition, AwsError> {
    let (family, revision) = arns::task_definition_reference(reference);
    let revisions = state
        .task_definitions
        .get(&family)
        .ok_or_else(unable_to_describe)?;
    match revision {
        None => revisions
            .iter()
            .rev()
            .find(|d| d.status.as_deref() == Some("ACTIVE"))
            .ok_or_else(unable_to_describe),
        Some(revision) => revisions
            .get((revision as usize).wrapping_sub(1))
            .filter(|d| any_status || d.status.as_deref() == Some("ACTIVE"))
            .ok_or_else(unable_to_describe),
    }
}

/// Checks a registration as ECS does and fills in the defaults ECS reports back.
fn validate(input: RegisterTaskDefinitionRequest) -> Result<TaskDefinition, AwsError> {
    let family = input
        .family
        .filter(|f| !f.is_empty())
        .ok_or_else(|| client_exception("Family cannot be blank."))?;
    if family.len() > 255
        || !family
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(client_exception(
            "Family must be 1-255 letters, numbers, hyphens and underscores.",
        ));
    }
    let network_mode = input.network_mode.unwrap_or_else(|| "bridge".to_owned());
    if !NETWORK_MODES.contains(&network_mode.as_str()) {
        return Err(client_exception(format!(
            "Invalid networkMode {network_mode}: must be one of bridge, host, awsvpc, none."
        )));
    }
    let fargate = input
        .requires_compatibilities
        .iter()
        .flatten()
        .any(|c| c == "FARGATE");
    if fargate && network_mode != "awsvpc" {
        return Err(client_exception(
            "Fargate only supports network mode 'awsvpc'.",
        ));
    }
    if fargate && input.cpu.is_none() {
        return Err(client_exception(
            "Fargate requires that 'cpu' be defined at the task level.",
        ));
    }
    if fargate && input.memory.is_none() {
        return Err(client_exception(
            "Fargate requires that 'memory' be defined at the task level.",
        ));
    }
    if let Some(memory) = &input.memory
        && parse_task_memory(memory).is_none()
    {
        return Err(client_exception(format!(
            "Invalid 'memory' setting for task: {memory}."
        )));
    }
    let mut containers = input
        .container_definitions
        .filter(|c| !c.is_empty())
        .ok_or_else(|| client_exception("Container list cannot be empty."))?;
    let mut names = std::collections::BTreeSet::new();
    for container in &mut containers {
        let name = container
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| client_exception("Container.name should not be null or empty."))?;
        if !names.insert(name.clone()) {
            return Err(client_exception(format!(
                "Duplicate container name {name} in the container definitions."
            )));
        }
        if container.image.as_deref().is_none_or(str::is_empty) {
            return Err(client_exception(
                "Container.image should not be null or empty.",
            ));
        }
        if input.memory.is_none()
            && container.memory.is_none()
            && container.memory_reservation.is_none()
        {
            return Err(client_exception(format!(
                "Invalid setting for container '{name}'. At least one of 'memory' or 'memoryReservation' must be specified."
            )));
        }
        if let (Some(hard), Some(soft)) = (container.memory, container.memory_reservation)
            && soft > hard
        {
            return Err(client_exception(format!(
                "Invalid setting for container '{name}'. The memory reservation must be less than or equal to the memory limit."
            )));
        }
        if let Some(check) = &container.health_check {
            validate_health_check(&name, check)?;
        }
        if let Some(log) = &container.log_configuration
            && log.log_driver == "awslogs"
        {
            let options = log.options.clone().unwrap_or_default();
            if options.get("awslogs-group").is_none_or(|g| g.is_empty()) {
                return Err(client_exception(
                    "Log driver awslogs option 'awslogs-group' should not be null or empty.",
                ));
            }
            if fargate && !options.contains_key("awslogs-stream-prefix") {
                return Err(client_exception(
                    "Log driver awslogs requires options: awslogs-stream-prefix",
                ));
            }
        }
        // What ECS reports back for members left out.
        container.essential.get_or_insert(true);
        container.cpu.get_or_insert(0);
        container.environment.get_or_insert_with(Vec::new);
        let mappings = container.port_mappings.get_or_insert_with(Vec::new);
        for mapping in mappings {
            if network_mode == "awsvpc" || network_mode == "host" {
                mapping.host_port = mapping.host_port.or(mapping.container_port);
            }
            mapping.protocol.get_or_insert_with(|| "tcp".to_owned());
        }
        for key in ["mountPoints", "volumesFrom"] {
            container
                .extra
                .entry(key)
                .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        }
    }
    super::dependencies::validate(&containers).map_err(client_exception)?;
    if !containers.iter().any(|c| c.essential != Some(false)) {
        return Err(client_exception(
            "Every task definition needs at least one essential container.",
        ));
    }
    let mut compatibilities = vec!["EC2".to_owned()];
    if network_mode == "awsvpc" && input.cpu.is_some() && input.memory.is_some() {
        compatibilities.push("FARGATE".to_owned());
    }
    Ok(TaskDefinition {
        container_definitions: Some(containers),
        family: Some(family),
        task_role_arn: input.task_role_arn,
        execution_role_arn: input.execution_role_arn,
        network_mode: Some(network_mode),
        volumes: Some(input.volumes.unwrap_or_default()),
        placement_constraints: Some(input.placement_constraints.unwrap_or_default()),
        compatibilities: Some(compatibilities),
        runtime_platform: input.runtime_platform,
        requires_compatibilities: input.requires_compatibilities,
        cpu: input.cpu,
        memory: input.memory,
        inference_accelerators: input.inference_accelerators,
        pid_mode: input.pid_mode,
        ipc_mode: input.ipc_mode,
        proxy_configuration: input.proxy_configuration,
        ephemeral_storage: input.ephemeral_storage,
        enable_fault_injection: input.enable_fault_injection,
        extra: input.extra,
        ..TaskDefinition::default()
    })
}

fn validate_health_check(container: &str, check: &HealthCheck) -> Result<(), AwsError> {
    let bad = |what: &str| {
        Err(client_exception(format!(
            "Invalid healthCheck for container '{container}': {what}"
        )))
    };
    match check.command.first().map(String::as_str) {
        Some("CMD") if check.command.len() >= 2 => {}
        Some("CMD-SHELL") if check.command.len() == 2 => {}
        _ => return bad("command must be [\"CMD\", exe, args...] or [\"CMD-SHELL\", command]."),
    }
    for (value, name, low, high) in [
        (check.interval, "interval", 5, 300),
        (check.timeout, "timeout", 2, 60),
        (check.retries, "retries", 1, 10),
        (check.start_period, "startPeriod", 0, 300),
    ] {
        if let Some(value) = value
            && !(low..=high).contains(&value)
        {
            return bad(&format!("{name} must be between {low} and {high}."));
        }
    }
    Ok(())
}

/// A task-level memory size in MiB: `"512"`, `"1GB"` or `"1 GB"`.
pub(super) fn parse_task_memory(memory: &str) -> Option<u64> {
    let memory = memory.trim();
    if let Some(gb) = memory
        .strip_suffix("GB")
        .or_else(|| memory.strip_suffix("gb"))
    {
        let gb: f64 = gb.trim().parse().ok()?;
        return (gb > 0.0).then_some((gb * 1024.0) as u64);
    }
    memory.parse().ok().filter(|&m| m > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_memory_sizes() {
        assert_eq!(parse_task_memory("512"), Some(512));
        assert_eq!(parse_task_memory("1GB"), Some(1024));
        assert_eq!(parse_task_memory("2 GB"), Some(2048));
        assert_eq!(parse_task_memory("0.5GB"), Some(512));
        assert_eq!(parse_task_memory("lots"), None);
        assert_eq!(parse_task_memory("0"), None);
    }
}
