//! What the engine remembers about a service and its deployments (persisted with the ECS state).

use std::collections::{BTreeSet, VecDeque};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

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
}

impl Default for DeploymentConfiguration {
    fn default() -> Self {
        DeploymentConfiguration {
            maximum_percent: 200,
            minimum_healthy_percent: 100,
            circuit_breaker: CircuitBreaker::default(),
        }
    }
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
