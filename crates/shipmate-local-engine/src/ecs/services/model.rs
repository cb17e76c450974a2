//! What the engine remembers about a service and its deployments (persisted with the ECS state).

use std::collections::{BTreeSet, VecDeque};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::records::{ServiceDeploymentRecord, ServiceRevisionRecord};
use super::throttle::LaunchThrottle;

/// ECS keeps the 100 most recent service events.
pub(crate) const MAX_EVENTS: usize = 100;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ServiceRecord {
    pub(crate) arn: String,
    pub(crate) name: String,
    pub(crate) cluster_arn: String,
    /// ACTIVE, DRAINING (being deleted) or INACTIVE.
    pub(crate) status: String,
    pub(crate) desired_count: u32,
    pub(crate) running_count: u32,
    pub(crate) pending_count: u32,
    /// The primary deployment's task definition ARN.
    pub(crate) task_definition: String,
    pub(crate) deployment_configuration: DeploymentConfiguration,
    /// The PRIMARY deployment first, then older ACTIVE ones.
    pub(crate) deployments: Vec<Deployment>,
    /// Newest first.
    pub(crate) events: VecDeque<ServiceEvent>,
    pub(crate) created_at: SystemTime,
    pub(crate) steady_state_reported: bool,
    /// Members accepted at CreateService/UpdateService and echoed back as given (launchType,
    /// platformVersion, networkConfiguration, loadBalancers, propagateTags, ...).
    pub(crate) spec: shipmate_local_api::ecs::Service,
    /// The service throttle: start failures in a row and when the next launch may happen.
    #[serde(default)]
    pub(crate) throttle: LaunchThrottle,
    /// ECS, CODE_DEPLOY or EXTERNAL.
    #[serde(default)]
    pub(crate) controller: Controller,
    /// Every service revision, oldest first (ECS controller only).
    #[serde(default)]
    pub(crate) revisions: Vec<ServiceRevisionRecord>,
    /// Every service deployment, oldest first (ECS controller only).
    #[serde(default)]
    pub(crate) service_deployments: Vec<ServiceDeploymentRecord>,
}

/// `deploymentController.type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Controller {
    #[default]
    Ecs,
    CodeDeploy,
    External,
}

impl Controller {
    pub(crate) fn parse(value: &str) -> Option<Controller> {
        match value {
            "ECS" => Some(Controller::Ecs),
            "CODE_DEPLOY" => Some(Controller::CodeDeploy),
            "EXTERNAL" => Some(Controller::External),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Controller::Ecs => "ECS",
            Controller::CodeDeploy => "CODE_DEPLOY",
            Controller::External => "EXTERNAL",
        }
    }
}

impl ServiceRecord {
    pub(crate) fn primary(&self) -> &Deployment {
        &self.deployments[0]
    }

    pub(crate) fn primary_mut(&mut self) -> &mut Deployment {
        &mut self.deployments[0]
    }

    /// After a restart: none of the service's tasks runs any more.
    pub(crate) fn forget_live_tasks(&mut self) {
        self.running_count = 0;
        self.pending_count = 0;
        for deployment in &mut self.deployments {
            deployment.running_count = 0;
            deployment.pending_count = 0;
        }
    }

    /// The deployment settings in force: those the in-flight service deployment was created
    /// with (a later UpdateService of `deploymentConfiguration` applies to the next deployment
    /// only), else the service's.
    pub(crate) fn effective_configuration(&self) -> &DeploymentConfiguration {
        self.service_deployments
            .last()
            .filter(|record| record.status.is_active())
            .map_or(&self.deployment_configuration, |record| {
                &record.configuration
            })
    }

    pub(crate) fn push_event(&mut self, now: SystemTime, message: String) {
        self.events.push_front(ServiceEvent {
            id: uuid::Uuid::new_v4().to_string(),
            created_at: now,
            message,
        });
        self.events.truncate(MAX_EVENTS);
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Deployment {
    /// `ecs-svc/<19 digits>`; tasks of the deployment carry it in `startedBy`.
    pub(crate) id: String,
    /// PRIMARY or ACTIVE (INACTIVE ones are dropped).
    pub(crate) status: String,
    pub(crate) task_definition: String,
    pub(crate) desired_count: u32,
    pub(crate) running_count: u32,
    pub(crate) pending_count: u32,
    pub(crate) failed_tasks: u32,
    pub(crate) created_at: SystemTime,
    pub(crate) updated_at: SystemTime,
    pub(crate) rollout_state: RolloutState,
    pub(crate) rollout_state_reason: Option<String>,
    /// Failed tasks already counted in `failed_tasks`.
    pub(crate) counted_failures: BTreeSet<String>,
    /// How this deployment launches its tasks (the service's settings when it was created).
    pub(crate) launch: LaunchSettings,
    /// The service revision it deploys.
    #[serde(default)]
    pub(crate) revision_arn: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct LaunchSettings {
    pub(crate) launch_type: Option<String>,
    pub(crate) capacity_provider_strategy:
        Option<Vec<shipmate_local_api::ecs::CapacityProviderStrategyItem>>,
    pub(crate) platform_version: Option<String>,
    pub(crate) network_configuration: Option<shipmate_local_api::ecs::NetworkConfiguration>,
}

impl Deployment {
    pub(crate) fn new(
        task_definition: String,
        desired_count: u32,
        launch: LaunchSettings,
        now: SystemTime,
    ) -> Deployment {
        Deployment {
            id: format!(
                "ecs-svc/{}",
                rand::random_range(1_000_000_000_000_000_000u64..9_223_372_036_854_775_807)
            ),
            status: "PRIMARY".to_owned(),
            task_definition,
            desired_count,
            running_count: 0,
            pending_count: 0,
            failed_tasks: 0,
            created_at: now,
            updated_at: now,
            rollout_state: RolloutState::InProgress,
            rollout_state_reason: Some("ECS deployment started.".to_owned()),
            counted_failures: BTreeSet::new(),
            launch,
            revision_arn: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum RolloutState {
    InProgress,
    Completed,
    Failed,
}

impl RolloutState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RolloutState::InProgress => "IN_PROGRESS",
            RolloutState::Completed => "COMPLETED",
            RolloutState::Failed => "FAILED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DeploymentConfiguration {
    pub(crate) maximum_percent: u32,
    pub(crate) minimum_healthy_percent: u32,
    pub(crate) circuit_breaker: CircuitBreaker,
    #[serde(default)]
    pub(crate) strategy: Strategy,
    /// Minutes blue and green both run after production traffic moved (blue/green family).
    #[serde(default)]
    pub(crate) bake_time_minutes: Option<u32>,
    #[serde(default)]
    pub(crate) linear: Option<LinearSteps>,
    #[serde(default)]
    pub(crate) canary: Option<CanarySteps>,
    #[serde(default)]
    pub(crate) pause_hooks: Vec<PauseHook>,
    /// Accepted and echoed; no CloudWatch alarms exist here.
    #[serde(default)]
    pub(crate) alarms: Option<shipmate_local_api::ecs::DeploymentAlarms>,
    /// Accepted and echoed (rolling only); this endpoint always waits for 100 %.
    #[serde(default)]
    pub(crate) early_success_criteria: Option<serde_json::Value>,
}

impl Default for DeploymentConfiguration {
    fn default() -> Self {
        DeploymentConfiguration {
            maximum_percent: 200,
            minimum_healthy_percent: 100,
            circuit_breaker: CircuitBreaker::default(),
            strategy: Strategy::default(),
            bake_time_minutes: None,
            linear: None,
            canary: None,
            pause_hooks: Vec::new(),
            alarms: None,
            early_success_criteria: None,
        }
    }
}

/// `deploymentConfiguration.strategy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Strategy {
    #[default]
    Rolling,
    BlueGreen,
    Linear,
    Canary,
}

impl Strategy {
    pub(crate) fn parse(value: &str) -> Option<Strategy> {
        match value {
            "ROLLING" => Some(Strategy::Rolling),
            "BLUE_GREEN" => Some(Strategy::BlueGreen),
            "LINEAR" => Some(Strategy::Linear),
            "CANARY" => Some(Strategy::Canary),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Strategy::Rolling => "ROLLING",
            Strategy::BlueGreen => "BLUE_GREEN",
            Strategy::Linear => "LINEAR",
            Strategy::Canary => "CANARY",
        }
    }
}

/// `linearConfiguration` with its defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct LinearSteps {
    pub(crate) step_percent: f64,
    pub(crate) step_bake_minutes: u32,
}

impl Default for LinearSteps {
    fn default() -> Self {
        LinearSteps {
            step_percent: 10.0,
            step_bake_minutes: 6,
        }
    }
}

/// `canaryConfiguration` with its defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct CanarySteps {
    pub(crate) canary_percent: f64,
    pub(crate) canary_bake_minutes: u32,
}

impl Default for CanarySteps {
    fn default() -> Self {
        CanarySteps {
            canary_percent: 5.0,
            canary_bake_minutes: 10,
        }
    }
}

/// A `PAUSE` lifecycle hook: the deployment waits at each of `stages` for
/// ContinueServiceDeployment, or `timeout_minutes`, whichever comes first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PauseHook {
    pub(crate) stages: Vec<super::records::Stage>,
    pub(crate) timeout_minutes: u32,
    pub(crate) timeout_action: super::records::HookAction,
    /// `hookDetails` as given: ECS passes them to Lambda hooks only, but keeps the hook's
    /// configuration as it was set (shipmate marks its own PAUSE hook there).
    #[serde(default)]
    pub(crate) details: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CircuitBreaker {
    pub(crate) enable: bool,
    pub(crate) rollback: bool,
    pub(crate) reset_on_healthy_task: bool,
    pub(crate) threshold: Threshold,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        CircuitBreaker {
            enable: false,
            rollback: false,
            reset_on_healthy_task: true,
            threshold: Threshold::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) enum Threshold {
    Count(u32),
    BoundedPercent(u32),
    UnboundedPercent(u32),
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold::BoundedPercent(50)
    }
}

impl CircuitBreaker {
    /// Failed tasks that fail a deployment: BOUNDED_PERCENT is ⌈value% × desired⌉ clamped to
    /// [3, 200], UNBOUNDED_PERCENT the same without the clamp (at least 1), COUNT the value.
    pub(crate) fn threshold(&self, desired_count: u32) -> u32 {
        let percent_of_desired =
            |value: u32| (u64::from(value) * u64::from(desired_count)).div_ceil(100) as u32;
        match self.threshold {
            Threshold::Count(value) => value.max(1),
            Threshold::BoundedPercent(value) => percent_of_desired(value).clamp(3, 200),
            Threshold::UnboundedPercent(value) => percent_of_desired(value).max(1),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ServiceEvent {
    pub(crate) id: String,
    pub(crate) created_at: SystemTime,
    pub(crate) message: String,
}
