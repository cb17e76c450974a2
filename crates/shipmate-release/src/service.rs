//! A service's rollout as the release sees it, and the decision "done, still going, or failed"
//! taken on every DescribeServices poll. ECS reports rollbacks by the circuit breaker only
//! indirectly (our deployment turns FAILED, an older task definition becomes PRIMARY), which the
//! services-stable waiter calls success; here it is a failure.

use serde::Serialize;

use crate::deployment::DeploymentShape;
use crate::plan::{CapacityItem, NetworkView};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeploymentView {
    pub id: String,
    /// PRIMARY, ACTIVE or INACTIVE.
    pub status: String,
    pub task_definition: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub pending_count: i32,
    pub failed_tasks: i32,
    /// IN_PROGRESS, COMPLETED, FAILED (absent for some controllers).
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceEventView {
    pub id: String,
    /// Epoch milliseconds.
    pub created_at: Option<i64>,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceView {
    pub service_arn: String,
    pub service_name: String,
    pub cluster_arn: String,
    pub status: String,
    pub task_definition: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub pending_count: i32,
    pub deployments: Vec<DeploymentView>,
    /// Newest first, as ECS returns them.
    pub events: Vec<ServiceEventView>,
    pub launch_type: Option<String>,
    pub capacity: Vec<CapacityItem>,
    pub platform_version: Option<String>,
    pub network: Option<NetworkView>,
    /// `deploymentConfiguration.deploymentCircuitBreaker`, when enabled.
    pub circuit_breaker: Option<CircuitBreakerView>,
    /// Controller, strategy, bake time and lifecycle hooks.
    pub shape: DeploymentShape,
    /// The newest service-deployment record (`currentServiceDeployment`), where ECS keeps them.
    pub current_service_deployment: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CircuitBreakerView {
    pub rollback: bool,
}

impl ServiceView {
    pub fn primary(&self) -> Option<&DeploymentView> {
        self.deployments.iter().find(|d| d.status == "PRIMARY")
    }

    /// The task definition the service is set to run (its primary deployment's).
    pub fn desired_revision(&self) -> &str {
        self.primary().map_or(self.task_definition.as_str(), |d| {
            d.task_definition.as_str()
        })
    }

    /// The task definition that is really live: the newest deployment that completed (a primary
    /// still rolling out, or failing, is not live yet), or the desired one when ECS reports no
    /// rollout state at all.
    pub fn live_revision(&self) -> &str {
        let completed = |d: &&DeploymentView| d.rollout_state.as_deref() == Some("COMPLETED");
        self.primary()
            .filter(completed)
            .or_else(|| {
                self.deployments
                    .iter()
                    .filter(|d| d.status == "ACTIVE")
                    .find(completed)
            })
            .map_or_else(|| self.desired_revision(), |d| d.task_definition.as_str())
    }

    /// The newest deployment rolling out `task_definition`.
    pub fn deployment_of(&self, task_definition: &str) -> Option<&DeploymentView> {
        self.deployments
            .iter()
            .find(|d| d.task_definition == task_definition && d.status != "INACTIVE")
    }
}

/// How many failed new tasks end a rollout that ECS's circuit breaker does not watch: the
/// circuit breaker's own default threshold (half the desired count, at least 3, at most 200).
pub fn default_failure_limit(desired_count: i32) -> u32 {
    let half = u32::try_from(desired_count.max(0)).unwrap_or(0).div_ceil(2);
    half.clamp(3, 200)
}

/// New tasks of a rollout that stopped, counted by why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoppedTally {
    /// (reason, count), in the order reasons were first seen.
    pub reasons: Vec<(String, u32)>,
}

impl StoppedTally {
    pub fn add(&mut self, reason: String) {
        match self.reasons.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, count)) => *count += 1,
            None => self.reasons.push((reason, 1)),
        }
    }

    pub fn total(&self) -> u32 {
        self.reasons.iter().map(|(_, count)| count).sum()
    }

    /// `3 new tasks stopped: Essential container in task exited (exit 1)`, with counts when
    /// there are several reasons.
    pub fn summary(&self) -> String {
        let total = self.total();
        let noun = if total == 1 { "task" } else { "tasks" };
        let reasons = match self.reasons.as_slice() {
            [(reason, _)] => reason.clone(),
            many => many
                .iter()
                .map(|(reason, count)| format!("{count}× {reason}"))
                .collect::<Vec<_>>()
                .join("; "),
        };
        format!("{total} new {noun} stopped: {reasons}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutProgress {
    InProgress {
        running: i32,
        desired: i32,
        pending: i32,
        failed_tasks: i32,
    },
    /// One deployment, on the target, running == desired.
    Completed,
    /// Our deployment FAILED (circuit breaker). `rolled_back_to` when ECS already made another
    /// task definition primary.
    Failed {
        reason: String,
        rolled_back_to: Option<String>,
    },
    /// The primary deployment is no longer ours and ours is gone: someone else deployed.
    Superseded { by: String },
    /// The service is DRAINING or INACTIVE.
    Inactive { status: String },
}

/// Assesses a rollout toward `target` (a task definition ARN).
pub fn assess_rollout(service: &ServiceView, target: &str) -> RolloutProgress {
    if service.status != "ACTIVE" {
        return RolloutProgress::Inactive {
            status: service.status.clone(),
        };
    }
    let ours = service
        .deployments
        .iter()
        .find(|d| d.task_definition == target && d.status != "INACTIVE");
    let primary = service.primary();
    if let Some(ours) = ours
        && ours.rollout_state.as_deref() == Some("FAILED")
    {
        let rolled_back_to = primary
            .filter(|p| p.task_definition != target)
            .map(|p| p.task_definition.clone());
        return RolloutProgress::Failed {
            reason: ours
                .rollout_state_reason
                .clone()
                .unwrap_or_else(|| "the deployment failed".to_owned()),
            rolled_back_to,
        };
    }
    match primary {
        Some(primary) if primary.task_definition == target => {
            let steady = service.deployments.len() == 1
                && service.running_count == service.desired_count
                && primary.running_count == primary.desired_count;
            let completed = primary
                .rollout_state
                .as_deref()
                .is_none_or(|state| state == "COMPLETED");
            if steady && completed {
                RolloutProgress::Completed
            } else {
                RolloutProgress::InProgress {
                    running: primary.running_count,
                    desired: primary.desired_count,
                    pending: primary.pending_count,
                    failed_tasks: primary.failed_tasks,
                }
            }
        }
        Some(primary) => RolloutProgress::Superseded {
            by: primary.task_definition.clone(),
        },
        None => RolloutProgress::Superseded {
            by: service.task_definition.clone(),
        },
    }
}

/// What a service event says, without the task ids and counts that make repeats look new:
/// `(service web) has started 1 tasks: (task 3f…).` and `… 2 tasks: (task 9a…) (task 1c…).` are
/// the same news while ECS keeps replacing failing tasks.
pub fn event_shape(message: &str) -> String {
    let mut shape = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find("(task ") {
        shape.push_str(&rest[..start]);
        shape.push_str("(task)");
        rest = rest[start..]
            .find(')')
            .map_or("", |end| &rest[start + end + 1..]);
    }
    shape.push_str(rest);
    shape
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect::<String>()
        .replace("(task) (task)", "(task)")
        .replace("(task) (task)", "(task)")
}

/// Service events newer than the ones already seen (by id), oldest first for printing.
pub fn new_events<'a>(
    service: &'a ServiceView,
    seen: &std::collections::HashSet<String>,
) -> Vec<&'a ServiceEventView> {
    let mut fresh: Vec<&ServiceEventView> = service
        .events
        .iter()
        .filter(|event| !seen.contains(&event.id))
        .collect();
    fresh.reverse();
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "arn:aws:ecs:us-east-1:0:task-definition/web:1";
    const NEW: &str = "arn:aws:ecs:us-east-1:0:task-definition/web:2";

    fn deployment(status: &str, td: &str, running: i32, state: Option<&str>) -> DeploymentView {
        DeploymentView {
            id: format!("ecs-svc/{status}{td}"),
            status: status.to_owned(),
            task_definition: td.to_owned(),
            desired_count: 2,
            running_count: running,
            rollout_state: state.map(str::to_owned),
            ..DeploymentView::default()
        }
    }

    fn service(running: i32, deployments: Vec<DeploymentView>) -> ServiceView {
        ServiceView {
            status: "ACTIVE".to_owned(),
            desired_count: 2,
            running_count: running,
            task_definition: deployments
                .first()
                .map(|d| d.task_definition.clone())
                .unwrap_or_default(),
            deployments,
            ..ServiceView::default()
        }
    }

    #[test]
    fn rollout_table() {
        let in_progress = |running| RolloutProgress::InProgress {
            running,
            desired: 2,
            pending: 0,
            failed_tasks: 0,
        };
        let cases = vec![
            (
                "new primary still starting, old draining",
                service(
                    2,
                    vec![
                        deployment("PRIMARY", NEW, 0, Some("IN_PROGRESS")),
                        deployment("ACTIVE", OLD, 2, Some("COMPLETED")),
                    ],
                ),
                in_progress(0),
            ),
            (
                "both running: two deployments is not steady",
                service(
                    4,
                    vec![
                        deployment("PRIMARY", NEW, 2, Some("IN_PROGRESS")),
                        deployment("ACTIVE", OLD, 2, Some("COMPLETED")),
                    ],
                ),
                in_progress(2),
            ),
            (
                "one deployment but rollout state not yet COMPLETED",
                service(2, vec![deployment("PRIMARY", NEW, 2, Some("IN_PROGRESS"))]),
                in_progress(2),
            ),
            (
                "completed",
                service(2, vec![deployment("PRIMARY", NEW, 2, Some("COMPLETED"))]),
                RolloutProgress::Completed,
            ),
            (
                "no rollout state (older controllers): steady state is enough",
                service(2, vec![deployment("PRIMARY", NEW, 2, None)]),
                RolloutProgress::Completed,
            ),
            (
                "circuit breaker failed ours and rolled back",
                service(
                    2,
                    vec![
                        deployment("PRIMARY", OLD, 1, Some("IN_PROGRESS")),
                        DeploymentView {
                            rollout_state_reason: Some(
                                "ECS deployment circuit breaker: tasks failed to start.".to_owned(),
                            ),
                            ..deployment("ACTIVE", NEW, 0, Some("FAILED"))
                        },
                    ],
                ),
                RolloutProgress::Failed {
                    reason: "ECS deployment circuit breaker: tasks failed to start.".to_owned(),
                    rolled_back_to: Some(OLD.to_owned()),
                },
            ),
            (
                "failed without rollback",
                service(0, vec![deployment("PRIMARY", NEW, 0, Some("FAILED"))]),
                RolloutProgress::Failed {
                    reason: "the deployment failed".to_owned(),
                    rolled_back_to: None,
                },
            ),
            (
                "someone else deployed, ours is gone",
                service(2, vec![deployment("PRIMARY", OLD, 2, Some("COMPLETED"))]),
                RolloutProgress::Superseded { by: OLD.to_owned() },
            ),
        ];
        for (name, service, expected) in cases {
            assert_eq!(assess_rollout(&service, NEW), expected, "{name}");
        }
        let draining = ServiceView {
            status: "DRAINING".to_owned(),
            ..ServiceView::default()
        };
        assert_eq!(
            assess_rollout(&draining, NEW),
            RolloutProgress::Inactive {
                status: "DRAINING".to_owned()
            }
        );
    }

    #[test]
    fn live_and_desired_revisions() {
        let rolling = service(
            2,
            vec![
                deployment("PRIMARY", NEW, 0, Some("IN_PROGRESS")),
                deployment("ACTIVE", OLD, 2, Some("COMPLETED")),
            ],
        );
        assert_eq!(rolling.desired_revision(), NEW);
        assert_eq!(rolling.live_revision(), OLD, "the new one is not live yet");
        let done = service(2, vec![deployment("PRIMARY", NEW, 2, Some("COMPLETED"))]);
        assert_eq!(done.live_revision(), NEW);
        let no_state = service(2, vec![deployment("PRIMARY", NEW, 2, None)]);
        assert_eq!(no_state.live_revision(), NEW);
    }

    #[test]
    fn failure_limits_follow_the_circuit_breaker_default() {
        for (desired, limit) in [(0, 3), (1, 3), (2, 3), (6, 3), (7, 4), (10, 5), (1000, 200)] {
            assert_eq!(default_failure_limit(desired), limit, "desired {desired}");
        }
    }

    #[test]
    fn stopped_tallies() {
        let mut tally = StoppedTally::default();
        tally.add("Essential container in task exited (exit 1)".to_owned());
        assert_eq!(
            tally.summary(),
            "1 new task stopped: Essential container in task exited (exit 1)"
        );
        tally.add("Essential container in task exited (exit 1)".to_owned());
        tally.add("CannotPullContainerError: not found".to_owned());
        assert_eq!(tally.total(), 3);
        assert_eq!(
            tally.summary(),
            "3 new tasks stopped: 2× Essential container in task exited (exit 1); 1× CannotPullContainerError: not found"
        );
    }

    #[test]
    fn event_shapes() {
        let cases = [
            (
                "(service web) has started 1 tasks: (task 3f2a).",
                "(service web) has started # tasks: (task).",
            ),
            (
                "(service web) has started 2 tasks: (task 9a) (task 1c).",
                "(service web) has started # tasks: (task).",
            ),
            (
                "(service web) (deployment ecs-svc/123) deployment completed.",
                "(service web) (deployment ecs-svc/###) deployment completed.",
            ),
            (
                "(service web) has reached a steady state.",
                "(service web) has reached a steady state.",
            ),
        ];
        for (message, shape) in cases {
            assert_eq!(event_shape(message), shape, "{message}");
        }
    }

    #[test]
    fn new_events_oldest_first() {
        let mut service = service(2, vec![]);
        for id in ["3", "2", "1"] {
            service.events.push(ServiceEventView {
                id: id.to_owned(),
                created_at: None,
                message: format!("event {id}"),
            });
        }
        let seen = ["1".to_owned()].into_iter().collect();
        let fresh: Vec<&str> = new_events(&service, &seen)
            .iter()
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(fresh, ["2", "3"]);
    }
}
