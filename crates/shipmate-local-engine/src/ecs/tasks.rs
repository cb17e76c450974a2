//! RunTask, DescribeTasks, ListTasks and StopTask, and the task interface the service scheduler
//! (`services.rs`) builds on: [`Ecs::launch_tasks`] and [`Ecs::stop_task_with`].
//!
//! Launching is bookkeeping only: it validates, places (or fails to place) each task, records it
//! as PROVISIONING with a plan of its containers, and hands the plan to a supervisor task that
//! does the process work.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use shipmate_local_api::ecs::*;
use shipmate_local_protocol::AwsError;
use tokio::sync::Notify;

use super::client_tokens::{self, TokenTask};
use super::clusters::{active_cluster, includes};
use super::lifecycle::{TaskEvent, TaskStatus, stop_code};
use super::supervisor::{AwsLogs, ContainerPlan, TaskPlan};
use super::tags::validate_tags;
use super::task_definitions::{lookup, parse_task_memory};
use super::{
    ClientTokenRecord, Ecs, EcsState, TaskRecord, arns, client_exception, invalid_parameter,
};
use crate::DEFAULT_REGION;

/// How long a STOPPED task stays describable.
const STOPPED_TASK_RETENTION: Duration = Duration::from_secs(60 * 60);
const LAUNCH_TYPES: [&str; 4] = ["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"];
/// Default and maximum seconds between SIGTERM and SIGKILL.
const DEFAULT_STOP_TIMEOUT: u64 = 30;
const MAX_STOP_TIMEOUT: u64 = 120;

/// Everything RunTask says about the tasks to start, minus the clientToken; the service
/// scheduler fills one in for each launch.
#[derive(Debug, Clone, Default)]
pub(crate) struct LaunchRequest {
    /// Cluster name or ARN.
    pub(crate) cluster: String,
    /// `family`, `family:revision` or task-definition ARN.
    pub(crate) task_definition: String,
    pub(crate) count: i32,
    pub(crate) started_by: Option<String>,
    /// Defaults to `family:<family>`; services use `service:<name>`.
    pub(crate) group: Option<String>,
    pub(crate) launch_type: Option<String>,
    pub(crate) capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub(crate) platform_version: Option<String>,
    pub(crate) network_configuration: Option<NetworkConfiguration>,
    pub(crate) overrides: Option<TaskOverride>,
    pub(crate) tags: Vec<Tag>,
    pub(crate) enable_execute_command: bool,
}

/// The outcome of a launch: started tasks (PROVISIONING) and placement failures.
#[derive(Debug, Clone, Default)]
pub(crate) struct Launched {
    pub(crate) tasks: Vec<Task>,
    pub(crate) failures: Vec<Failure>,
}

/// A recorded task whose supervisor still has to be started (outside the state lock).
struct Start {
    plan: TaskPlan,
    wake: Arc<Notify>,
}

impl Ecs {
    /// Starts `request.count` tasks. Invalid requests are errors; tasks that cannot be placed
    /// are `failures` (as RunTask reports them).
    pub(crate) fn launch_tasks(&self, request: LaunchRequest) -> Result<Launched, AwsError> {
        let (launched, starts) = {
            let mut state = self.state();
            self.prepare_launch(&mut state, &request)?
        };
        self.start_supervisors(starts);
        Ok(launched)
    }

    /// Asks a task to stop with `code` (e.g. `ServiceSchedulerInitiated`) and `reason`; the
    /// first request wins. Returns the task, or `None` if there is no such task.
    pub(crate) fn stop_task_with(&self, task: &str, code: &str, reason: &str) -> Option<Task> {
        self.request_stop(arns::task_id(task), code, reason)
    }

    pub(super) fn request_stop(&self, id: &str, code: &str, reason: &str) -> Option<Task> {
        let now = self.now();
        let mut state = self.state();
        let record = state.tasks.get_mut(id)?;
        let event = TaskEvent::StopRequested {
            code: code.to_owned(),
            reason: reason.to_owned(),
        };
        let changed = !record.is_stopped()
            && super::lifecycle::apply(&mut record.task, &event, now).unwrap_or(false);
        if changed && let Some(wake) = &record.wake {
            wake.notify_one();
        }
        let task = record.task.clone();
        drop(state);
        if changed {
            self.changed();
        }
        Some(task)
    }

    pub(crate) fn run_task(&self, input: RunTaskRequest) -> Result<RunTaskResponse, AwsError> {
        let token = input.client_token.clone();
        if let Some(token) = &token
            && (token.is_empty()
                || token.len() > 64
                || !token.bytes().all(|b| (33..=126).contains(&b)))
        {
            return Err(invalid_parameter(
                "clientToken must be 1-64 ASCII characters (33-126).",
            ));
        }
        if let Some(overrides) = &input.overrides {
            let length = serde_json::to_string(overrides).map_or(0, |s| s.len());
            if length > 8192 {
                return Err(invalid_parameter(
                    "Task overrides can be at most 8192 characters.",
                ));
            }
        }
        if input.propagate_tags.as_deref() == Some("SERVICE") {
            return Err(invalid_parameter(
                "propagateTags SERVICE is not valid for RunTask: the task is not part of a service.",
            ));
        }
        let task_definition = input
            .task_definition
            .clone()
            .ok_or_else(|| invalid_parameter("taskDefinition is required."))?;
        let mut fingerprint_of = input.clone();
        fingerprint_of.client_token = None;
        fingerprint_of.count = Some(input.count.unwrap_or(1));
        let fingerprint = serde_json::to_string(&fingerprint_of).expect("requests serialize");
        let request = LaunchRequest {
            cluster: arns::cluster_name(input.cluster.as_deref()),
            task_definition,
            count: input.count.unwrap_or(1),
            started_by: input.started_by,
            group: input.group,
            launch_type: input.launch_type,
            capacity_provider_strategy: input.capacity_provider_strategy,
            platform_version: input.platform_version,
            network_configuration: input.network_configuration,
            overrides: input.overrides,
            tags: input.tags.unwrap_or_default(),
            enable_execute_command: input.enable_execute_command.unwrap_or(false),
        };
        let (launched, starts) = {
            let mut state = self.state();
            // An expired token must not be found below.
            self.forget_old(&mut state);
            let cluster_arn = active_cluster(&state, Some(&request.cluster))?
                .cluster_arn
                .clone()
                .unwrap_or_default();
            let key = token.as_ref().map(|t| format!("{cluster_arn} {t}"));
            if let Some(previous) = key.as_ref().and_then(|k| state.client_tokens.get(k)) {
                if previous.fingerprint != fingerprint {
                    return Err(AwsError::client(
                        "ConflictException",
                        "The request uses the same client token as a previous, but non-identical request. Do not reuse a client token with different requests, unless the requests are identical.",
                    )
                    .with_member("resourceIds", serde_json::json!(previous.task_arns)));
                }
                let tasks = previous
                    .task_arns
                    .iter()
                    .filter_map(|arn| state.tasks.get(arns::task_id(arn)))
                    .map(|record| client_tokens::replayed(with_tags(&state, record.task.clone())))
                    .collect();
                return Ok(RunTaskResponse {
                    tasks,
                    failures: previous.failures.clone(),
                });
            }
            let (launched, starts) = self.prepare_launch(&mut state, &request)?;
            if let Some(key) = key {
                state.client_tokens.insert(
                    key,
                    ClientTokenRecord {
                        fingerprint,
                        task_arns: launched
                            .tasks
                            .iter()
                            .filter_map(|t| t.task_arn.clone())
                            .collect(),
                        failures: launched.failures.clone(),
                        created_at: epoch_seconds(self.now()),
                    },
                );
            }
            (launched, starts)
        };
        self.start_supervisors(starts);
        Ok(RunTaskResponse {
            tasks: launched.tasks.into_iter().map(RunTaskTask::from).collect(),
            failures: launched.failures,
        })
    }

    pub(crate) fn describe_tasks(
        &self,
        input: DescribeTasksRequest,
    ) -> Result<DescribeTasksResponse, AwsError> {
        let references = input
            .tasks
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid_parameter("Tasks cannot be empty."))?;
        if references.len() > 100 {
            return Err(invalid_parameter(
                "DescribeTasks accepts at most 100 tasks.",
            ));
        }
        let with_tags = includes(&input.include, "TAGS");
        let mut state = self.state();
        self.forget_old(&mut state);
        let cluster = active_cluster(&state, input.cluster.as_deref())?;
        let cluster_arn = cluster.cluster_arn.clone();
        let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
        let region = cluster_arn
            .as_deref()
            .and_then(arns::region_of)
            .unwrap_or(DEFAULT_REGION)
            .to_owned();
        let mut output = DescribeTasksResponse::default();
        for reference in references {
            let id = arns::task_id(&reference);
            match state
                .tasks
                .get(id)
                .filter(|r| r.task.cluster_arn == cluster_arn)
            {
                Some(record) => {
                    let mut task = record.task.clone();
                    if with_tags {
                        task = with_tags_always(&state, task);
                    }
                    output.tasks.push(task);
                }
                None => output.failures.push(Failure {
                    arn: Some(if reference.starts_with("arn:") {
                        reference.clone()
                    } else {
                        arns::task(&region, &cluster_name, id)
                    }),
                    reason: Some("MISSING".into()),
                    detail: None,
                }),
            }
        }
        Ok(output)
    }

    pub(crate) fn list_tasks(
        &self,
        input: ListTasksRequest,
    ) -> Result<ListTasksResponse, AwsError> {
        let desired = input.desired_status.as_deref().unwrap_or("RUNNING");
        if !["RUNNING", "PENDING", "STOPPED"].contains(&desired) {
            return Err(invalid_parameter(format!(
                "desiredStatus must be RUNNING, PENDING or STOPPED, not {desired}."
            )));
        }
        let mut state = self.state();
        self.forget_old(&mut state);
        let cluster_arn = active_cluster(&state, input.cluster.as_deref())?
            .cluster_arn
            .clone();
        let service_group = match &input.service_name {
            None => None,
            Some(reference) => {
                let name = reference.rsplit('/').next().unwrap_or(reference);
                let known = state.services.values().any(|s| {
                    s.name == name
                        && s.cluster_arn.as_str() == cluster_arn.as_deref().unwrap_or_default()
                });
                if !known {
                    return Err(AwsError::client(
                        "ServiceNotFoundException",
                        "Service not found.",
                    ));
                }
                Some(format!("service:{name}"))
            }
        };
        let mut records: Vec<&TaskRecord> = state
            .tasks
            .values()
            .filter(|r| r.task.cluster_arn == cluster_arn)
            .filter(|r| r.task.desired_status.as_deref() == Some(desired))
            .filter(|_| input.container_instance.is_none())
            .filter(|r| {
                input.family.as_ref().is_none_or(|family| {
                    r.task
                        .task_definition_arn
                        .as_deref()
                        .is_some_and(|arn| arns::task_definition_reference(arn).0 == *family)
                })
            })
            .filter(|r| input.started_by.is_none() || r.task.started_by == input.started_by)
            .filter(|r| service_group.is_none() || r.task.group == service_group)
            .filter(|r| input.launch_type.is_none() || r.task.launch_type == input.launch_type)
            .collect();
        records.sort_by_key(|r| r.seq);
        let arns: Vec<String> = records
            .into_iter()
            .filter_map(|r| r.task.task_arn.clone())
            .collect();
        let (task_arns, next_token) =
            super::pagination::paginate(arns, input.next_token.as_deref(), input.max_results)?;
        Ok(ListTasksResponse {
            task_arns,
            next_token,
        })
    }

    pub(crate) fn stop_task(&self, input: StopTaskRequest) -> Result<StopTaskResponse, AwsError> {
        let reference = input
            .task
            .ok_or_else(|| invalid_parameter("task is required."))?;
        let id = arns::task_id(&reference).to_owned();
        {
            let state = self.state();
            let cluster_arn = active_cluster(&state, input.cluster.as_deref())?
                .cluster_arn
                .clone();
            let found = state
                .tasks
                .get(&id)
                .is_some_and(|r| r.task.cluster_arn == cluster_arn);
            if !found {
                return Err(invalid_parameter("The referenced task was not found."));
            }
        }
        let reason = input
            .reason
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "Task stopped by user".to_owned());
        let task = self
            .request_stop(&id, stop_code::USER_INITIATED, &reason)
            .ok_or_else(|| invalid_parameter("The referenced task was not found."))?;
        Ok(StopTaskResponse { task })
    }

    /// Forgets STOPPED tasks older than the retention and expired client tokens.
    fn forget_old(&self, state: &mut EcsState) {
        let now = epoch_seconds(self.now());
        // Tokens first: their retention depends on when their tasks stopped.
        let EcsState {
            client_tokens,
            tasks,
            ..
        } = state;
        client_tokens.retain(|_, token| {
            let lifetimes: Vec<TokenTask> = token
                .task_arns
                .iter()
                .map(|arn| match tasks.get(arns::task_id(arn)) {
                    None => TokenTask::Forgotten,
                    Some(record) if record.is_stopped() => {
                        TokenTask::StoppedAt(record.task.stopped_at.unwrap_or(token.created_at))
                    }
                    Some(_) => TokenTask::Live,
                })
                .collect();
            now <= client_tokens::expires_at(token.created_at, &lifetimes)
        });
        let retention = STOPPED_TASK_RETENTION.as_secs_f64();
        let forgotten: Vec<String> = state
            .tasks
            .iter()
            .filter(|(_, r)| {
                r.is_stopped() && r.task.stopped_at.is_some_and(|at| now - at > retention)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in forgotten {
            if let Some(record) = state.tasks.remove(&id)
                && let Some(arn) = record.task.task_arn
            {
                state.tags.remove(&arn);
            }
        }
    }

    /// Validates a launch and records its tasks; the caller starts the supervisors once the
    /// state lock is released.
    fn prepare_launch(
        &self,
        state: &mut EcsState,
        request: &LaunchRequest,
    ) -> Result<(Launched, Vec<Start>), AwsError> {
        if self
            .inner
            .shutting_down
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(AwsError::server(
                "ServerException",
                "shipmate local is shutting down.",
            ));
        }
        if !(1..=10).contains(&request.count) {
            return Err(invalid_parameter("count must be between 1 and 10."));
        }
        validate_tags(&request.tags)?;
        // The model documents letters, digits, `-`, `/` and `_`, but ECS accepts more: ecs-deploy has
        // always sent `startedBy: "ECS Deploy"`. Only the length and control characters are refused.
        if let Some(started_by) = &request.started_by
            && (started_by.chars().count() > 128 || started_by.chars().any(char::is_control))
        {
            return Err(invalid_parameter(
                "startedBy must be at most 128 characters, without control characters.",
            ));
        }
        self.forget_old(state);
        let cluster = active_cluster(state, Some(&request.cluster))?;
        let cluster_arn = cluster.cluster_arn.clone().unwrap_or_default();
        let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
        let region = arns::region_of(&cluster_arn)
            .unwrap_or(DEFAULT_REGION)
            .to_owned();
        let definition = match lookup(state, &request.task_definition, false) {
            Ok(definition) => definition.clone(),
            Err(error) => {
                if lookup(state, &request.task_definition, true).is_ok() {
                    return Err(client_exception("TaskDefinition is inactive"));
                }
                return Err(error);
            }
        };
        let placement = validate_placement(request, &definition)?;
        let mut launched = Launched::default();
        let mut starts = Vec::new();
        let now = self.now();
        for _ in 0..request.count {
            if let Some(reason) = self.inner.faults.take_placement_failure() {
                launched.failures.push(Failure {
                    arn: Some(cluster_arn.clone()),
                    reason: Some(reason),
                    detail: None,
                });
                continue;
            }
            let Some(address) = state.addresses.allocate() else {
                launched.failures.push(Failure {
                    arn: Some(cluster_arn.clone()),
                    reason: Some("RESOURCE:ENI".into()),
                    detail: Some("no free loopback address for the task".into()),
                });
                continue;
            };
            let id = uuid::Uuid::new_v4().simple().to_string();
            let (task, plan) = build_task(
                &region,
                &cluster_arn,
                &cluster_name,
                &id,
                address,
                request,
                &definition,
                &placement,
                now,
            );
            let task_arn = task.task_arn.clone().unwrap_or_default();
            if !request.tags.is_empty() {
                state.tags.insert(task_arn, request.tags.clone());
            }
            let wake = Arc::new(Notify::new());
            state.next_task_seq += 1;
            let seq = state.next_task_seq;
            state.tasks.insert(
                id,
                TaskRecord {
                    task: task.clone(),
                    seq,
                    address: Some(address),
                    wake: Some(wake.clone()),
                },
            );
            launched.tasks.push(with_tags(state, task));
            starts.push(Start { plan, wake });
        }
        Ok((launched, starts))
    }

    fn start_supervisors(&self, starts: Vec<Start>) {
        if starts.is_empty() {
            return;
        }
        for start in starts {
            let ecs = self.clone();
            self.inner
                .supervisors
                .spawn(super::supervisor::supervise(ecs, start.plan, start.wake));
        }
        self.changed();
    }
}

/// Launch type, platform and network as ECS resolves them for a task.
struct Placement {
    launch_type: Option<String>,
    capacity_provider: Option<String>,
    platform_version: Option<String>,
    awsvpc: Option<AwsVpcConfiguration>,
}

fn validate_placement(
    request: &LaunchRequest,
    definition: &TaskDefinition,
) -> Result<Placement, AwsError> {
    if request.launch_type.is_some() && request.capacity_provider_strategy.is_some() {
        return Err(invalid_parameter(
            "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.",
        ));
    }
    let strategy = request
        .capacity_provider_strategy
        .clone()
        .unwrap_or_default();
    if strategy.len() > 20 {
        return Err(invalid_parameter(
            "capacityProviderStrategy can have at most 20 items.",
        ));
    }
    let capacity_provider = strategy.first().map(|s| s.capacity_provider.clone());
    let launch_type = match (&request.launch_type, &capacity_provider) {
        (Some(launch_type), _) => {
            if !LAUNCH_TYPES.contains(&launch_type.as_str()) {
                return Err(invalid_parameter(format!(
                    "launchType must be one of EC2, FARGATE, EXTERNAL, MANAGED_INSTANCES, not {launch_type}."
                )));
            }
            Some(launch_type.clone())
        }
        (None, Some(provider)) if provider.starts_with("FARGATE") => Some("FARGATE".to_owned()),
        (None, Some(_)) => None,
        (None, None) => Some("EC2".to_owned()),
    };
    let fargate = launch_type.as_deref() == Some("FARGATE");
    let compatible = definition
        .compatibilities
        .iter()
        .flatten()
        .any(|c| Some(c.as_str()) == launch_type.as_deref());
    if fargate && !compatible {
        return Err(invalid_parameter(
            "Task definition does not support launch_type FARGATE.",
        ));
    }
    if launch_type.as_deref() == Some("EC2") && request.platform_version.is_some() {
        return Err(invalid_parameter(
            "The platform version must be null when specifying an EC2 launch type.",
        ));
    }
    let awsvpc_mode = definition.network_mode.as_deref() == Some("awsvpc");
    let awsvpc = request
        .network_configuration
        .as_ref()
        .and_then(|n| n.awsvpc_configuration.clone());
    match (&awsvpc, awsvpc_mode) {
        (None, true) => {
            return Err(invalid_parameter(
                "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
            ));
        }
        (Some(_), false) => {
            return Err(invalid_parameter(
                "Network Configuration is not valid for the given networkMode of this task definition.",
            ));
        }
        (Some(vpc), true) => {
            let subnets = vpc.subnets.as_deref().unwrap_or_default();
            if subnets.is_empty() {
                return Err(invalid_parameter("subnets can not be empty."));
            }
            if subnets.len() > 16 {
                return Err(invalid_parameter("subnets can have at most 16 items."));
            }
            if vpc.security_groups.as_ref().is_some_and(|g| g.len() > 5) {
                return Err(invalid_parameter(
                    "securityGroups can have at most 5 items.",
                ));
            }
            if let Some(assign) = &vpc.assign_public_ip
                && assign != "ENABLED"
                && assign != "DISABLED"
            {
                return Err(invalid_parameter(
                    "assignPublicIp must be ENABLED or DISABLED.",
                ));
            }
        }
        (None, false) => {}
    }
    let overrides = request
        .overrides
        .as_ref()
        .and_then(|o| o.container_overrides.as_ref())
        .into_iter()
        .flatten();
    let containers = definition
        .container_definitions
        .as_deref()
        .unwrap_or_default();
    for container_override in overrides {
        let name = container_override.name.as_deref().unwrap_or_default();
        if !containers.iter().any(|c| c.name.as_deref() == Some(name)) {
            return Err(invalid_parameter(format!(
                "Override for container named {name} is not a container in the TaskDefinition."
            )));
        }
    }
    Ok(Placement {
        platform_version: fargate.then(|| match request.platform_version.as_deref() {
            None | Some("LATEST") => "1.4.0".to_owned(),
            Some(version) => version.to_owned(),
        }),
        launch_type,
        capacity_provider,
        awsvpc: awsvpc.filter(|_| awsvpc_mode),
    })
}

/// The new task's `Task` shape (PROVISIONING) and the plan its supervisor will carry out.
#[allow(clippy::too_many_arguments)]
fn build_task(
    region: &str,
    cluster_arn: &str,
    cluster_name: &str,
    id: &str,
    address: std::net::Ipv4Addr,
    request: &LaunchRequest,
    definition: &TaskDefinition,
    placement: &Placement,
    now: std::time::SystemTime,
) -> (Task, TaskPlan) {
    let task_arn = arns::task(region, cluster_name, id);
    let ip = address.to_string();
    let family = definition.family.clone().unwrap_or_default();
    let overrides = request.overrides.clone().unwrap_or_else(|| TaskOverride {
        container_overrides: Some(Vec::new()),
        inference_accelerator_overrides: Some(Vec::new()),
        ..TaskOverride::default()
    });
    let attachment_id = uuid::Uuid::new_v4().to_string();
    let attachments = placement.awsvpc.as_ref().map(|vpc| {
        let detail = |name: &str, value: String| KeyValuePair {
            name: Some(name.to_owned()),
            value: Some(value),
        };
        let eni = format!("eni-{}", &uuid::Uuid::new_v4().simple().to_string()[..17]);
        vec![Attachment {
            id: Some(attachment_id.clone()),
            attachment_type: Some("ElasticNetworkInterface".into()),
            status: Some("PRECREATED".into()),
            details: Some(vec![
                detail(
                    "subnetId",
                    vpc.subnets.clone().unwrap_or_default().join(","),
                ),
                detail("networkInterfaceId", eni),
                detail("macAddress", mac_address(address)),
                detail(
                    "privateDnsName",
                    format!("ip-{}.ec2.internal", ip.replace('.', "-")),
                ),
                detail("privateIPv4Address", ip.clone()),
            ]),
        }]
    });
    let task_memory_mib = overrides
        .memory
        .as_deref()
        .or(definition.memory.as_deref())
        .and_then(parse_task_memory);
    let mut containers = Vec::new();
    let mut plans = Vec::new();
    let all_containers = definition
        .container_definitions
        .as_deref()
        .unwrap_or_default();
    for definition in all_containers {
        let name = definition.name.clone().unwrap_or_default();
        let container_override = overrides
            .container_overrides
            .iter()
            .flatten()
            .find(|o| o.name.as_deref() == Some(name.as_str()));
        let mut argv: Vec<String> = definition.entry_point.clone().unwrap_or_default();
        argv.extend(
            container_override
                .and_then(|o| o.command.clone())
                .or_else(|| definition.command.clone())
                .unwrap_or_default(),
        );
        let mut environment: BTreeMap<String, String> = BTreeMap::new();
        let pairs = definition.environment.iter().flatten().chain(
            container_override
                .and_then(|o| o.environment.as_ref())
                .into_iter()
                .flatten(),
        );
        for pair in pairs {
            if let Some(key) = &pair.name {
                environment.insert(key.clone(), pair.value.clone().unwrap_or_default());
            }
        }
        let memory = container_override
            .and_then(|o| o.memory)
            .or(definition.memory);
        let reservation = container_override
            .and_then(|o| o.memory_reservation)
            .or(definition.memory_reservation);
        let cpu = container_override.and_then(|o| o.cpu).or(definition.cpu);
        let awslogs = definition
            .log_configuration
            .as_ref()
            .filter(|l| l.log_driver == "awslogs")
            .map(|log| {
                let options = log.options.clone().unwrap_or_default();
                let prefix = options.get("awslogs-stream-prefix").cloned();
                AwsLogs {
                    group: options.get("awslogs-group").cloned().unwrap_or_default(),
                    stream: match prefix {
                        Some(prefix) => format!("{prefix}/{name}/{id}"),
                        // Without a prefix ECS names the stream after the container id.
                        None => format!("{name}-{id}"),
                    },
                    create_group: options.get("awslogs-create-group").map(String::as_str)
                        == Some("true"),
                }
            });
        let network_bindings = (placement.awsvpc.is_none()).then(|| {
            definition
                .port_mappings
                .iter()
                .flatten()
                .map(|mapping| NetworkBinding {
                    bind_ip: Some(ip.clone()),
                    container_port: mapping.container_port,
                    host_port: mapping.host_port.or(mapping.container_port),
                    protocol: mapping.protocol.clone(),
                })
                .collect()
        });
        containers.push(Container {
            container_arn: Some(arns::container(
                region,
                cluster_name,
                id,
                &uuid::Uuid::new_v4().to_string(),
            )),
            task_arn: Some(task_arn.clone()),
            name: Some(name.clone()),
            image: definition.image.clone(),
            last_status: Some("PENDING".into()),
            network_bindings,
            network_interfaces: placement.awsvpc.as_ref().map(|_| {
                vec![NetworkInterface {
                    attachment_id: Some(attachment_id.clone()),
                    private_ipv4_address: Some(ip.clone()),
                    ipv6_address: None,
                }]
            }),
            health_status: definition
                .health_check
                .as_ref()
                .map(|_| "UNKNOWN".to_owned()),
            cpu: Some(cpu.unwrap_or(0).to_string()),
            memory: memory.map(|m| m.to_string()),
            memory_reservation: reservation.map(|m| m.to_string()),
            ..Container::default()
        });
        let stop_timeout = definition
            .stop_timeout
            .map_or(DEFAULT_STOP_TIMEOUT, |s| s.max(0) as u64)
            .min(MAX_STOP_TIMEOUT);
        plans.push(ContainerPlan {
            name,
            image: definition.image.clone().unwrap_or_default(),
            argv,
            environment,
            working_directory: definition.working_directory.clone(),
            essential: definition.essential != Some(false),
            stop_timeout: Duration::from_secs(stop_timeout),
            memory_limit_mib: memory.filter(|&m| m > 0).map(|m| m as u64),
            health_check: definition.health_check.clone(),
            awslogs,
            depends_on: super::dependencies::resolve(definition, all_containers),
        });
    }
    let task = Task {
        task_arn: Some(task_arn.clone()),
        cluster_arn: Some(cluster_arn.to_owned()),
        task_definition_arn: definition_arn(definition),
        capacity_provider_name: placement.capacity_provider.clone(),
        availability_zone: Some(format!("{region}a")),
        attachments,
        containers: Some(containers),
        cpu: overrides.cpu.clone().or_else(|| definition.cpu.clone()),
        memory: overrides
            .memory
            .clone()
            .or_else(|| definition.memory.clone()),
        created_at: Some(epoch_seconds(now)),
        connectivity: None,
        desired_status: Some("RUNNING".into()),
        last_status: Some(TaskStatus::Provisioning.as_str().into()),
        group: Some(
            request
                .group
                .clone()
                .unwrap_or_else(|| format!("family:{family}")),
        ),
        started_by: request.started_by.clone(),
        health_status: Some("UNKNOWN".into()),
        launch_type: placement.launch_type.clone(),
        platform_version: placement.platform_version.clone(),
        platform_family: placement.platform_version.as_ref().map(|_| "Linux".into()),
        overrides: Some(overrides),
        version: 1,
        enable_execute_command: request.enable_execute_command,
        ..Task::default()
    };
    let plan = TaskPlan {
        task_id: id.to_owned(),
        task_arn,
        region: region.to_owned(),
        address,
        task_memory_mib,
        in_service: task
            .group
            .as_deref()
            .is_some_and(|g| g.starts_with("service:")),
        containers: plans,
    };
    (task, plan)
}

fn definition_arn(definition: &TaskDefinition) -> Option<String> {
    definition.task_definition_arn.clone()
}

/// A stable, locally administered MAC address derived from the task's address.
fn mac_address(address: std::net::Ipv4Addr) -> String {
    let [a, b, c, d] = address.octets();
    format!("0a:{a:02x}:{b:02x}:{c:02x}:{d:02x}:00")
}

fn with_tags(state: &EcsState, mut task: Task) -> Task {
    if let Some(tags) = task.task_arn.as_ref().and_then(|arn| state.tags.get(arn)) {
        task.tags = Some(tags.clone());
    }
    task
}

fn with_tags_always(state: &EcsState, task: Task) -> Task {
    let mut task = with_tags(state, task);
    task.tags.get_or_insert_with(Vec::new);
    task
}
