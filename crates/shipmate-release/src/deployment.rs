//! ECS's own deployments as the release sees them: which controller and strategy a service
//! uses, its lifecycle hooks, and the service-deployment record (DescribeServiceDeployments)
//! that says where a deployment is and how it ended. Every rule here is a pure function of
//! what ECS answered.

use serde::Serialize;

/// The marker shipmate puts in its own PAUSE hook's `hookDetails` (ECS passes `hookDetails`
/// to Lambda hooks only and keeps it as given for PAUSE hooks), so that the hook is found
/// again, by this release or the next, among the service's own hooks.
pub const HOOK_MARKER: &str = "shipmate";

/// The lifecycle stage shipmate pauses at: before any task of the new revision starts.
pub const PAUSE_STAGE: &str = "PRE_SCALE_UP";

/// How a service is deployed (`deploymentController`, `deploymentConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentShape {
    /// ECS, CODE_DEPLOY or EXTERNAL.
    pub controller: String,
    /// ROLLING, BLUE_GREEN, LINEAR or CANARY (ECS controller only).
    pub strategy: String,
    pub bake_time_minutes: Option<i32>,
    pub hooks: Vec<LifecycleHookView>,
    /// The service has load balancers or Service Connect (traffic really shifts).
    pub traffic: bool,
    pub load_balancers: Vec<crate::codedeploy::LoadBalancerView>,
}

impl Default for DeploymentShape {
    fn default() -> Self {
        DeploymentShape {
            controller: "ECS".to_owned(),
            strategy: "ROLLING".to_owned(),
            bake_time_minutes: None,
            hooks: Vec::new(),
            traffic: false,
            load_balancers: Vec::new(),
        }
    }
}

impl DeploymentShape {
    /// ECS moves traffic and keeps the old revision for a bake time: the deployment is
    /// "deployed" (production traffic on the new revision) before it is complete.
    pub fn has_bake(&self) -> bool {
        self.controller == "ECS" && self.strategy != "ROLLING"
    }

    /// shipmate's own PAUSE hooks among the service's hooks (left over when a release died).
    pub fn our_hooks(&self) -> impl Iterator<Item = &LifecycleHookView> {
        self.hooks.iter().filter(|h| h.is_ours())
    }

    /// Why shipmate cannot pause this service's deployment at [`PAUSE_STAGE`], if it cannot.
    pub fn pause_refusal(&self) -> Option<String> {
        if self.controller != "ECS" {
            return Some(format!(
                "its deployments are made by the {} controller, not by ECS",
                self.controller
            ));
        }
        let theirs = self
            .hooks
            .iter()
            .filter(|h| !h.is_ours() && h.target_type == "PAUSE")
            .count();
        if theirs >= MAX_PAUSE_HOOKS {
            return Some(format!(
                "it has {theirs} PAUSE hooks already, ECS's limit is {MAX_PAUSE_HOOKS}"
            ));
        }
        if self.hooks.iter().any(|h| {
            !h.is_ours() && h.target_type == "PAUSE" && h.stages.iter().any(|s| s == PAUSE_STAGE)
        }) {
            // Both would wait at the same stage, and ECS's record cannot tell whose hook is whose.
            return Some(format!(
                "it has a PAUSE hook of its own at {PAUSE_STAGE}; shipmate could not tell its pause from yours"
            ));
        }
        None
    }

    /// The service's hooks with shipmate's PAUSE hook for `release_id` in place of any
    /// earlier one of shipmate's.
    pub fn hooks_with_pause(
        &self,
        release_id: &str,
        timeout_minutes: i32,
    ) -> Vec<LifecycleHookView> {
        let mut hooks = self.hooks_without_ours();
        hooks.push(LifecycleHookView {
            target_type: "PAUSE".to_owned(),
            target_arn: None,
            role_arn: None,
            stages: vec![PAUSE_STAGE.to_owned()],
            timeout_minutes: Some(timeout_minutes.clamp(1, MAX_HOOK_TIMEOUT_MINUTES)),
            timeout_action: Some("ROLLBACK".to_owned()),
            details: Some(serde_json::json!({ HOOK_MARKER: release_id }).to_string()),
        });
        hooks
    }

    /// The service's hooks without any of shipmate's.
    pub fn hooks_without_ours(&self) -> Vec<LifecycleHookView> {
        self.hooks
            .iter()
            .filter(|h| !h.is_ours())
            .cloned()
            .collect()
    }
}

/// ECS allows at most 10 PAUSE hooks a service.
pub const MAX_PAUSE_HOOKS: usize = 10;
/// A PAUSE hook waits at most 14 days.
pub const MAX_HOOK_TIMEOUT_MINUTES: i32 = 20_160;

/// One `deploymentConfiguration.lifecycleHooks` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LifecycleHookView {
    /// AWS_LAMBDA or PAUSE.
    pub target_type: String,
    pub target_arn: Option<String>,
    pub role_arn: Option<String>,
    pub stages: Vec<String>,
    pub timeout_minutes: Option<i32>,
    /// CONTINUE or ROLLBACK.
    pub timeout_action: Option<String>,
    /// `hookDetails` as JSON text.
    pub details: Option<String>,
}

impl LifecycleHookView {
    /// A PAUSE hook shipmate added (its `hookDetails` carry [`HOOK_MARKER`]).
    pub fn is_ours(&self) -> bool {
        self.target_type == "PAUSE" && self.release_id().is_some()
    }

    /// The release that added this hook.
    pub fn release_id(&self) -> Option<String> {
        let details: serde_json::Value = serde_json::from_str(self.details.as_deref()?).ok()?;
        details.get(HOOK_MARKER)?.as_str().map(str::to_owned)
    }
}

/// One entry of a service deployment's `lifecycleHookDetails`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HookDetailView {
    pub hook_id: String,
    pub target_type: String,
    /// AWAITING_ACTION, IN_PROGRESS, SUCCEEDED, FAILED or TIMED_OUT.
    pub status: String,
    /// Epoch milliseconds.
    pub expires_at: Option<i64>,
    pub timeout_action: Option<String>,
}

/// A service-deployment record (DescribeServiceDeployments).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceDeploymentView {
    pub arn: String,
    pub service_arn: String,
    pub status: String,
    pub status_reason: Option<String>,
    /// Absent on some records; PRE_PRODUCTION_TRAFFIC_SHIFT is read as text (it is missing
    /// from the SDK's enum).
    pub lifecycle_stage: Option<String>,
    pub hooks: Vec<HookDetailView>,
    pub target_revision_arn: Option<String>,
    pub target_running: i32,
    pub target_pending: i32,
    pub target_requested: i32,
    pub rollback_reason: Option<String>,
    pub rollback_revision_arn: Option<String>,
    pub circuit_breaker_failures: Option<i32>,
    /// Epoch milliseconds.
    pub created_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// Where a service deployment is, as the release decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentProgress {
    /// Still going; the stage ECS reports.
    InProgress {
        stage: Option<String>,
    },
    /// Waiting at a PAUSE hook (ours or someone's).
    Paused {
        stage: Option<String>,
        hook_ids: Vec<String>,
    },
    /// Production traffic is on the new revision; the old one stays for the bake time.
    Deployed {
        stage: Option<String>,
    },
    Succeeded,
    /// ECS rolled it back (the circuit breaker, an alarm, a hook, a user).
    RolledBack {
        reason: String,
    },
    /// Stopped without a rollback, or its rollback failed.
    Stopped {
        status: String,
        reason: String,
    },
}

/// The stages at which production traffic is already on the target.
const AFTER_PRODUCTION_SHIFT: [&str; 3] =
    ["POST_PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"];

/// The record's verdict.
pub fn assess_deployment(record: &ServiceDeploymentView) -> DeploymentProgress {
    let reason = || {
        record
            .status_reason
            .clone()
            .unwrap_or_else(|| record.status.to_lowercase())
    };
    match record.status.as_str() {
        "SUCCESSFUL" => DeploymentProgress::Succeeded,
        "ROLLBACK_SUCCESSFUL" | "ROLLBACK_IN_PROGRESS" | "ROLLBACK_REQUESTED" => {
            DeploymentProgress::RolledBack {
                reason: record
                    .rollback_reason
                    .clone()
                    .or_else(|| record.status_reason.clone())
                    .unwrap_or_else(|| "ECS rolled the deployment back".to_owned()),
            }
        }
        "STOPPED" | "STOP_REQUESTED" | "ROLLBACK_FAILED" => DeploymentProgress::Stopped {
            status: record.status.clone(),
            reason: reason(),
        },
        _ => {
            let stage = record.lifecycle_stage.clone();
            let waiting: Vec<String> = record
                .hooks
                .iter()
                .filter(|h| h.status == "AWAITING_ACTION")
                .map(|h| h.hook_id.clone())
                .collect();
            if !waiting.is_empty() {
                DeploymentProgress::Paused {
                    stage,
                    hook_ids: waiting,
                }
            } else if stage
                .as_deref()
                .is_some_and(|s| AFTER_PRODUCTION_SHIFT.contains(&s))
            {
                DeploymentProgress::Deployed { stage }
            } else {
                DeploymentProgress::InProgress { stage }
            }
        }
    }
}

/// Errors that mean "this endpoint or role has no service-deployment records": follow the
/// rollout without them rather than fail the release.
pub fn records_unavailable(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "AccessDeniedException"
                | "AccessDenied"
                | "UnknownOperationException"
                | "UnsupportedFeatureException"
                | "InvalidAction"
        )
    )
}

/// The refusal of a service shipmate cannot deploy, before anything runs: `None` when its
/// controller is ECS (or CODE_DEPLOY with `migrate_only`).
pub fn controller_refusal(shape: &DeploymentShape, migrate_only: bool) -> Option<&'static str> {
    match shape.controller.as_str() {
        "CODE_DEPLOY" if !migrate_only => Some("CODE_DEPLOY"),
        "EXTERNAL" => Some("EXTERNAL"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: &str, stage: Option<&str>) -> ServiceDeploymentView {
        ServiceDeploymentView {
            arn: "arn:sd".to_owned(),
            status: status.to_owned(),
            lifecycle_stage: stage.map(str::to_owned),
            ..ServiceDeploymentView::default()
        }
    }

    #[test]
    fn verdicts() {
        use DeploymentProgress as P;
        let cases: Vec<(ServiceDeploymentView, P)> = vec![
            (record("PENDING", None), P::InProgress { stage: None }),
            (
                record("IN_PROGRESS", Some("SCALE_UP")),
                P::InProgress {
                    stage: Some("SCALE_UP".to_owned()),
                },
            ),
            (
                record("IN_PROGRESS", Some("BAKE_TIME")),
                P::Deployed {
                    stage: Some("BAKE_TIME".to_owned()),
                },
            ),
            (
                record("IN_PROGRESS", Some("PRE_PRODUCTION_TRAFFIC_SHIFT")),
                P::InProgress {
                    stage: Some("PRE_PRODUCTION_TRAFFIC_SHIFT".to_owned()),
                },
            ),
            (record("SUCCESSFUL", Some("CLEAN_UP")), P::Succeeded),
            (
                ServiceDeploymentView {
                    rollback_reason: Some(
                        "ECS deployment circuit breaker: tasks failed to start.".to_owned(),
                    ),
                    ..record("ROLLBACK_SUCCESSFUL", None)
                },
                P::RolledBack {
                    reason: "ECS deployment circuit breaker: tasks failed to start.".to_owned(),
                },
            ),
            (
                ServiceDeploymentView {
                    status_reason: Some("a newer deployment started".to_owned()),
                    ..record("STOPPED", None)
                },
                P::Stopped {
                    status: "STOPPED".to_owned(),
                    reason: "a newer deployment started".to_owned(),
                },
            ),
            (
                ServiceDeploymentView {
                    hooks: vec![
                        HookDetailView {
                            hook_id: "ecs-pause-a".to_owned(),
                            status: "AWAITING_ACTION".to_owned(),
                            ..HookDetailView::default()
                        },
                        HookDetailView {
                            hook_id: "ecs-pause-b".to_owned(),
                            status: "SUCCEEDED".to_owned(),
                            ..HookDetailView::default()
                        },
                    ],
                    ..record("IN_PROGRESS", Some("PRE_SCALE_UP"))
                },
                P::Paused {
                    stage: Some("PRE_SCALE_UP".to_owned()),
                    hook_ids: vec!["ecs-pause-a".to_owned()],
                },
            ),
        ];
        for (record, expected) in cases {
            assert_eq!(assess_deployment(&record), expected, "{record:?}");
        }
    }

    fn hook(stage: &str, details: Option<&str>) -> LifecycleHookView {
        LifecycleHookView {
            target_type: "PAUSE".to_owned(),
            stages: vec![stage.to_owned()],
            details: details.map(str::to_owned),
            ..LifecycleHookView::default()
        }
    }

    #[test]
    fn our_hook_is_added_once_and_removed_without_touching_theirs() {
        let theirs = hook("POST_SCALE_UP", None);
        let lambda = LifecycleHookView {
            target_type: "AWS_LAMBDA".to_owned(),
            target_arn: Some("arn:aws:lambda:eu-west-1:1:function:check".to_owned()),
            stages: vec!["POST_TEST_TRAFFIC_SHIFT".to_owned()],
            details: Some(r#"{"shipmate":"not ours, a lambda's"}"#.to_owned()),
            ..LifecycleHookView::default()
        };
        let leftover = hook(PAUSE_STAGE, Some(r#"{"shipmate":"r-old"}"#));
        let shape = DeploymentShape {
            hooks: vec![theirs.clone(), leftover, lambda.clone()],
            ..DeploymentShape::default()
        };
        assert_eq!(shape.our_hooks().count(), 1);
        let with = shape.hooks_with_pause("r-new", 99_999);
        assert_eq!(with.len(), 3);
        assert_eq!(&with[..2], &[theirs.clone(), lambda.clone()]);
        assert_eq!(with[2].release_id().as_deref(), Some("r-new"));
        assert_eq!(with[2].timeout_minutes, Some(MAX_HOOK_TIMEOUT_MINUTES));
        assert_eq!(with[2].timeout_action.as_deref(), Some("ROLLBACK"));
        assert_eq!(shape.hooks_without_ours(), vec![theirs, lambda]);
    }

    #[test]
    fn pause_refusals() {
        let mut shape = DeploymentShape::default();
        assert_eq!(shape.pause_refusal(), None);
        shape.hooks = vec![hook(PAUSE_STAGE, None)];
        assert!(
            shape
                .pause_refusal()
                .unwrap()
                .contains("PAUSE hook of its own")
        );
        shape.hooks = (0..10).map(|_| hook("POST_SCALE_UP", None)).collect();
        assert!(shape.pause_refusal().unwrap().contains("limit is 10"));
        shape.hooks = vec![hook(PAUSE_STAGE, Some(r#"{"shipmate":"r1"}"#))];
        assert_eq!(
            shape.pause_refusal(),
            None,
            "a leftover of ours is replaced"
        );
        shape.controller = "CODE_DEPLOY".to_owned();
        assert!(shape.pause_refusal().unwrap().contains("CODE_DEPLOY"));
    }

    #[test]
    fn controllers() {
        let code_deploy = DeploymentShape {
            controller: "CODE_DEPLOY".to_owned(),
            ..DeploymentShape::default()
        };
        assert_eq!(controller_refusal(&code_deploy, false), Some("CODE_DEPLOY"));
        assert_eq!(controller_refusal(&code_deploy, true), None);
        let external = DeploymentShape {
            controller: "EXTERNAL".to_owned(),
            ..DeploymentShape::default()
        };
        assert_eq!(controller_refusal(&external, true), Some("EXTERNAL"));
        assert_eq!(controller_refusal(&DeploymentShape::default(), false), None);
    }
}
