//! Service revisions and service deployments as the engine remembers them (persisted with the
//! service): one revision and one deployment record per deployment-triggering CreateService or
//! UpdateService of an ECS-controller service, ROLLING included (reference §3.5).

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::model::{DeploymentConfiguration, LaunchSettings};

/// `ServiceDeploymentStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum DeploymentStatus {
    Pending,
    InProgress,
    Successful,
    Stopped,
    StopRequested,
    RollbackRequested,
    RollbackInProgress,
    RollbackSuccessful,
    RollbackFailed,
}

impl DeploymentStatus {
    pub(crate) const ALL: [DeploymentStatus; 9] = [
        DeploymentStatus::Pending,
        DeploymentStatus::InProgress,
        DeploymentStatus::Successful,
        DeploymentStatus::Stopped,
        DeploymentStatus::StopRequested,
        DeploymentStatus::RollbackRequested,
        DeploymentStatus::RollbackInProgress,
        DeploymentStatus::RollbackSuccessful,
        DeploymentStatus::RollbackFailed,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Pending => "PENDING",
            DeploymentStatus::InProgress => "IN_PROGRESS",
            DeploymentStatus::Successful => "SUCCESSFUL",
            DeploymentStatus::Stopped => "STOPPED",
            DeploymentStatus::StopRequested => "STOP_REQUESTED",
            DeploymentStatus::RollbackRequested => "ROLLBACK_REQUESTED",
            DeploymentStatus::RollbackInProgress => "ROLLBACK_IN_PROGRESS",
            DeploymentStatus::RollbackSuccessful => "ROLLBACK_SUCCESSFUL",
            DeploymentStatus::RollbackFailed => "ROLLBACK_FAILED",
        }
    }

    pub(crate) fn parse(value: &str) -> Option<DeploymentStatus> {
        DeploymentStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }

    /// Not finished: SUCCESSFUL, STOPPED, ROLLBACK_SUCCESSFUL and ROLLBACK_FAILED are final.
    pub(crate) fn is_active(self) -> bool {
        !matches!(
            self,
            DeploymentStatus::Successful
                | DeploymentStatus::Stopped
                | DeploymentStatus::RollbackSuccessful
                | DeploymentStatus::RollbackFailed
        )
    }
}

/// A lifecycle stage, in ECS's order. `PreProductionTrafficShift` is sent as ECS sends it,
/// although the model's `ServiceDeploymentLifecycleStage` enum lacks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Stage {
    ReconcileService,
    PreScaleUp,
    ScaleUp,
    PostScaleUp,
    TestTrafficShift,
    PostTestTrafficShift,
    PreProductionTrafficShift,
    ProductionTrafficShift,
    PostProductionTrafficShift,
    BakeTime,
    CleanUp,
}

impl Stage {
    const ALL: [Stage; 11] = [
        Stage::ReconcileService,
        Stage::PreScaleUp,
        Stage::ScaleUp,
        Stage::PostScaleUp,
        Stage::TestTrafficShift,
        Stage::PostTestTrafficShift,
        Stage::PreProductionTrafficShift,
        Stage::ProductionTrafficShift,
        Stage::PostProductionTrafficShift,
        Stage::BakeTime,
        Stage::CleanUp,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Stage::ReconcileService => "RECONCILE_SERVICE",
            Stage::PreScaleUp => "PRE_SCALE_UP",
            Stage::ScaleUp => "SCALE_UP",
            Stage::PostScaleUp => "POST_SCALE_UP",
            Stage::TestTrafficShift => "TEST_TRAFFIC_SHIFT",
            Stage::PostTestTrafficShift => "POST_TEST_TRAFFIC_SHIFT",
            Stage::PreProductionTrafficShift => "PRE_PRODUCTION_TRAFFIC_SHIFT",
            Stage::ProductionTrafficShift => "PRODUCTION_TRAFFIC_SHIFT",
            Stage::PostProductionTrafficShift => "POST_PRODUCTION_TRAFFIC_SHIFT",
            Stage::BakeTime => "BAKE_TIME",
            Stage::CleanUp => "CLEAN_UP",
        }
    }

    pub(crate) fn parse(value: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|stage| stage.as_str() == value)
    }

    /// The stages `DeploymentLifecycleHookStage` names: SCALE_UP, BAKE_TIME and CLEAN_UP take
    /// no hook.
    pub(crate) fn takes_hooks(self) -> bool {
        !matches!(self, Stage::ScaleUp | Stage::BakeTime | Stage::CleanUp)
    }
}

/// `DeploymentLifecycleHookAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum HookAction {
    Continue,
    Rollback,
}

impl HookAction {
    pub(crate) fn parse(value: &str) -> Option<HookAction> {
        match value {
            "CONTINUE" => Some(HookAction::Continue),
            "ROLLBACK" => Some(HookAction::Rollback),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            HookAction::Continue => "CONTINUE",
            HookAction::Rollback => "ROLLBACK",
        }
    }
}

/// `DeploymentLifecycleHookStatus` (PAUSE hooks never are IN_PROGRESS: that is Lambda's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum HookStatus {
    AwaitingAction,
    Succeeded,
    Failed,
    TimedOut,
}

impl HookStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            HookStatus::AwaitingAction => "AWAITING_ACTION",
            HookStatus::Succeeded => "SUCCEEDED",
            HookStatus::Failed => "FAILED",
            HookStatus::TimedOut => "TIMED_OUT",
        }
    }
}

/// One PAUSE hook reached by a deployment (`lifecycleHookDetails[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct HookRecord {
    /// `ecs-pause-<43 url-safe characters>`.
    pub(crate) hook_id: String,
    pub(crate) stage: Stage,
    /// Which production traffic step it paused (PRE_PRODUCTION_TRAFFIC_SHIFT repeats per step
    /// with a fresh hook id); 0 elsewhere.
    pub(crate) step: u32,
    pub(crate) status: HookStatus,
    pub(crate) expires_at: SystemTime,
    pub(crate) timeout_action: HookAction,
}

impl HookRecord {
    pub(crate) fn new_id() -> String {
        const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let tail: String = (0..43)
            .map(|_| URL_SAFE[rand::random_range(0..URL_SAFE.len())] as char)
            .collect();
        format!("ecs-pause-{tail}")
    }
}

/// A revision's part in a deployment (`ServiceRevisionSummary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RevisionPart {
    pub(crate) arn: String,
    /// The `ecs-svc/…` deployment running it.
    pub(crate) deployment_id: String,
    pub(crate) requested: u32,
    pub(crate) running: u32,
    pub(crate) pending: u32,
    /// Requested weights, 0-100; `None` without a load balancer or Service Connect.
    pub(crate) test_weight: Option<f64>,
    pub(crate) production_weight: Option<f64>,
}

/// `rollback{reason, startedAt, serviceRevisionArn}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RollbackRecord {
    pub(crate) reason: String,
    pub(crate) started_at: SystemTime,
    pub(crate) revision_arn: Option<String>,
}

/// One service deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ServiceDeploymentRecord {
    pub(crate) arn: String,
    pub(crate) status: DeploymentStatus,
    pub(crate) status_reason: Option<String>,
    /// `None` until the scheduler's first pass over it.
    pub(crate) stage: Option<Stage>,
    /// The production traffic step (LINEAR/CANARY), from 0.
    pub(crate) step: u32,
    /// No stage work before this (bake times); set when a wait starts.
    pub(crate) wait_until: Option<SystemTime>,
    /// Every stage has passed: the deployment ends as soon as its rollout completes.
    #[serde(default)]
    pub(crate) stage_passed: bool,
    pub(crate) hooks: Vec<HookRecord>,
    pub(crate) sources: Vec<RevisionPart>,
    pub(crate) target: RevisionPart,
    /// The service's settings when the deployment was created.
    pub(crate) configuration: DeploymentConfiguration,
    /// A load balancer or Service Connect carries traffic: weights are recorded.
    pub(crate) shifts_traffic: bool,
    pub(crate) rollback: Option<RollbackRecord>,
    pub(crate) breaker_triggered: bool,
    pub(crate) failure_count: u32,
    pub(crate) threshold: u32,
    pub(crate) created_at: SystemTime,
    pub(crate) started_at: Option<SystemTime>,
    pub(crate) finished_at: Option<SystemTime>,
    pub(crate) stopped_at: Option<SystemTime>,
    pub(crate) updated_at: SystemTime,
}

impl ServiceDeploymentRecord {
    /// The hooks of the stage visit the deployment is in.
    pub(crate) fn hooks_here(&self) -> impl Iterator<Item = &HookRecord> {
        let (stage, step) = (self.stage, self.step);
        self.hooks
            .iter()
            .filter(move |hook| Some(hook.stage) == stage && hook.step == step)
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.status == DeploymentStatus::InProgress
            && self
                .hooks_here()
                .any(|hook| hook.status == HookStatus::AwaitingAction)
    }

    /// Ends the deployment as `status` (a final one).
    pub(crate) fn finish(&mut self, status: DeploymentStatus, now: SystemTime) {
        self.status = status;
        self.finished_at = Some(now);
        if status == DeploymentStatus::Stopped {
            self.stopped_at = Some(now);
        }
        self.wait_until = None;
        self.updated_at = now;
    }
}

/// One service revision: what a deployment deploys, immutable once created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ServiceRevisionRecord {
    pub(crate) arn: String,
    pub(crate) task_definition: String,
    pub(crate) launch: LaunchSettings,
    pub(crate) load_balancers: Option<Vec<shipmate_local_api::ecs::LoadBalancer>>,
    pub(crate) service_registries: Option<Vec<serde_json::Value>>,
    pub(crate) service_connect: Option<serde_json::Value>,
    /// (container name, image) of the task definition.
    pub(crate) container_images: Vec<(String, String)>,
    pub(crate) created_at: SystemTime,
}

/// `…:service/<cluster>/<name>` → `…:service-deployment/<cluster>/<name>/<id>` with a fresh id.
pub(crate) fn new_deployment_arn(service_arn: &str) -> String {
    const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let id: String = (0..21)
        .map(|_| ALPHANUMERIC[rand::random_range(0..ALPHANUMERIC.len())] as char)
        .collect();
    format!(
        "{}/{id}",
        service_arn.replacen(":service/", ":service-deployment/", 1)
    )
}

/// `…:service/<cluster>/<name>` → `…:service-revision/<cluster>/<name>/<id>` with a fresh id.
pub(crate) fn new_revision_arn(service_arn: &str) -> String {
    let id = rand::random_range(1_000_000_000_000_000_000u64..9_223_372_036_854_775_807);
    format!(
        "{}/{id}",
        service_arn.replacen(":service/", ":service-revision/", 1)
    )
}

/// The service ARN a service-deployment or service-revision ARN belongs to
/// (`…:service-deployment/<cluster>/<name>/<id>` → `…:service/<cluster>/<name>`).
pub(crate) fn owning_service_arn(arn: &str, kind: &str) -> Option<String> {
    let (prefix, rest) = arn.split_once(&format!(":{kind}/"))?;
    let mut parts = rest.split('/');
    let (cluster, name, id) = (parts.next()?, parts.next()?, parts.next()?);
    if !arn.starts_with("arn:") || cluster.is_empty() || name.is_empty() || id.is_empty() {
        return None;
    }
    parts
        .next()
        .is_none()
        .then(|| format!("{prefix}:service/{cluster}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_point_back_at_their_service() {
        let service = "arn:aws:ecs:eu-west-1:000000000000:service/c1/web";
        let deployment = new_deployment_arn(service);
        assert!(
            deployment.starts_with("arn:aws:ecs:eu-west-1:000000000000:service-deployment/c1/web/")
        );
        assert_eq!(
            owning_service_arn(&deployment, "service-deployment").as_deref(),
            Some(service)
        );
        let revision = new_revision_arn(service);
        assert_eq!(
            owning_service_arn(&revision, "service-revision").as_deref(),
            Some(service)
        );
        for bad in [
            "web",
            "arn:aws:ecs:eu-west-1:000000000000:service-deployment/c1/web",
            "arn:aws:ecs:eu-west-1:000000000000:service-deployment/c1/web/x/y",
            "arn:aws:ecs:eu-west-1:000000000000:service/c1/web",
        ] {
            assert_eq!(owning_service_arn(bad, "service-deployment"), None, "{bad}");
        }
    }

    #[test]
    fn hook_ids_look_like_ecs_ones() {
        let id = HookRecord::new_id();
        let tail = id.strip_prefix("ecs-pause-").unwrap();
        assert_eq!(tail.len(), 43);
        assert!(
            tail.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn stages_round_trip_and_only_eight_take_hooks() {
        for stage in Stage::ALL {
            assert_eq!(Stage::parse(stage.as_str()), Some(stage));
        }
        assert_eq!(Stage::ALL.iter().filter(|s| s.takes_hooks()).count(), 8);
    }
}
