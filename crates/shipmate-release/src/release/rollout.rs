//! Following a service's rollout to its end: progress, ECS's events, why new tasks stop, and
//! the verdict (completed, failed, rolled back by ECS, replaced by someone else, timed out).

use std::collections::HashSet;

use crate::event::Event;
use crate::io::{Command, Observation};
use crate::report::DeploymentReport;
use crate::service::{
    RolloutProgress, ServiceView, StoppedTally, assess_rollout, event_shape, new_events,
};
use crate::task::stop_summary;

use super::ctx::{Ctx, Stop};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RolloutEnd {
    Completed,
    /// Our deployment failed and nobody rolled it back (yet).
    Failed {
        reason: String,
    },
    /// ECS's circuit breaker rolled the service back to `to`.
    RolledBackByEcs {
        to: String,
        reason: String,
    },
    /// Someone else deployed `by` over ours.
    Replaced {
        by: String,
    },
    TimedOut,
}

pub(crate) struct Rollout<'a> {
    pub(crate) service: &'a str,
    pub(crate) target: &'a str,
    /// What was live before: a primary going back to it means a rollback.
    pub(crate) from: &'a str,
    pub(crate) timeout_ms: i64,
    pub(crate) poll_ms: i64,
    /// Fail after this many stopped new tasks; `None` when ECS's circuit breaker decides.
    pub(crate) failure_limit: Option<u32>,
}

/// What the follower has seen so far, kept across a rollout and the rollback after it.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub(crate) events: HashSet<String>,
    stopped_tasks: HashSet<String>,
    tally: StoppedTally,
    progress: Option<(i32, i32, i32, i32)>,
    /// The highest `failedTasks` ECS reported for the deployment.
    failed_tasks: i32,
    /// What the events shown so far said (see [`event_shape`]).
    shapes: HashSet<String>,
}

impl Seen {
    pub(crate) fn from_service(view: &ServiceView) -> Seen {
        Seen {
            events: view.events.iter().map(|e| e.id.clone()).collect(),
            ..Seen::default()
        }
    }

    pub(crate) fn summary(&self) -> Option<String> {
        (self.tally.total() > 0).then(|| self.tally.summary())
    }
}

fn emit_events(ctx: &Ctx, view: &ServiceView, seen: &mut Seen) {
    for event in new_events(view, &seen.events) {
        // ECS replacing failing tasks repeats itself; once per kind of news is enough (the
        // stopped tasks are counted and summarised instead).
        if seen.shapes.insert(event_shape(&event.message)) {
            ctx.emit(Event::ServiceEvent {
                message: event.message.clone(),
            });
        }
    }
    seen.events.extend(view.events.iter().map(|e| e.id.clone()));
}

pub(crate) async fn follow(
    ctx: &mut Ctx,
    rollout: &Rollout<'_>,
    seen: &mut Seen,
) -> Result<RolloutEnd, Stop> {
    let started = ctx.now();
    let mut polls: u32 = 0;
    loop {
        ctx.sleep(rollout.poll_ms).await?;
        let view = ctx.describe_service(rollout.service).await?;
        emit_events(ctx, &view, seen);
        let progress = assess_rollout(&view, rollout.target);
        let deployment = view.deployment_of(rollout.target).cloned();
        if let Some(report) = ctx.report.deployment.as_mut() {
            report.rollout_state = deployment.as_ref().and_then(|d| d.rollout_state.clone());
            if report.id.is_none() {
                report.id = deployment.as_ref().map(|d| d.id.clone());
            }
        }
        polls += 1;
        if matches!(progress, RolloutProgress::InProgress { .. })
            && let Some(deployment) = &deployment
            && worth_counting(deployment, seen, polls)
        {
            let newly = count_stopped(ctx, &deployment.id, seen).await?;
            if newly > 0 {
                ctx.emit(Event::NewTasksStopped {
                    summary: seen.tally.summary(),
                    total: seen.tally.total(),
                    limit: rollout.failure_limit,
                });
            }
            if let Some(limit) = rollout.failure_limit
                && seen.tally.total() >= limit
            {
                return Ok(failed(ctx, seen.tally.summary(), None));
            }
        }
        match progress {
            RolloutProgress::Completed => return Ok(RolloutEnd::Completed),
            RolloutProgress::InProgress {
                running,
                desired,
                pending,
                failed_tasks,
            } => {
                let now = (running, desired, pending, failed_tasks);
                if seen.progress != Some(now) {
                    seen.progress = Some(now);
                    ctx.emit(Event::RolloutProgress {
                        running,
                        desired,
                        pending,
                        failed_tasks,
                    });
                }
            }
            RolloutProgress::Failed {
                reason,
                rolled_back_to,
            } => return Ok(failed(ctx, reason, rolled_back_to)),
            RolloutProgress::Superseded { by } if by == rollout.from => {
                // Ours vanished and what was live before is primary again: the circuit breaker
                // rolled back between two polls.
                let reason = seen.summary().map_or_else(
                    || "ECS rolled the deployment back (deployment circuit breaker)".to_owned(),
                    |summary| format!("ECS rolled the deployment back (deployment circuit breaker) after {summary}"),
                );
                return Ok(failed(ctx, reason, Some(by)));
            }
            RolloutProgress::Superseded { by } => return Ok(RolloutEnd::Replaced { by }),
            RolloutProgress::Inactive { status } => {
                return Err(Stop::Error(crate::error::ReleaseError::ServiceNotActive {
                    cluster: ctx.cluster.clone(),
                    service: rollout.service.to_owned(),
                    status,
                }));
            }
        }
        if ctx.now() - started > rollout.timeout_ms {
            return Ok(RolloutEnd::TimedOut);
        }
    }
}

/// Whether to look for stopped new tasks on this poll: when the deployment is short of tasks
/// (one stopped and is not replaced yet) or ECS counted a failure, and every tenth poll in case
/// both happened between two polls. A healthy rollout costs no extra call.
fn worth_counting(
    deployment: &crate::service::DeploymentView,
    seen: &mut Seen,
    polls: u32,
) -> bool {
    let short = deployment.running_count + deployment.pending_count < deployment.desired_count;
    let failed_more = deployment.failed_tasks > seen.failed_tasks;
    seen.failed_tasks = seen.failed_tasks.max(deployment.failed_tasks);
    short || failed_more || polls.is_multiple_of(10)
}

/// Reads the deployment's newly stopped tasks into the tally; returns how many were new.
async fn count_stopped(ctx: &mut Ctx, deployment_id: &str, seen: &mut Seen) -> Result<usize, Stop> {
    let command = Command::ListTasks {
        family: None,
        started_by: Some(deployment_id.to_owned()),
        stopped: true,
    };
    let arns = match ctx.call(command).await? {
        Observation::TaskArns(arns) => arns,
        other => return Err(ctx.unexpected("ListTasks", &other)),
    };
    let new: Vec<String> = arns
        .into_iter()
        .filter(|arn| !seen.stopped_tasks.contains(arn))
        .collect();
    if new.is_empty() {
        return Ok(0);
    }
    let tasks = ctx.describe_tasks(&new).await?;
    let mut counted = 0;
    for task in tasks.iter().filter(|t| t.is_stopped()) {
        seen.stopped_tasks.insert(task.task_arn.clone());
        seen.tally.add(stop_summary(task));
        counted += 1;
    }
    Ok(counted)
}

fn failed(ctx: &mut Ctx, reason: String, rolled_back_to: Option<String>) -> RolloutEnd {
    if let Some(deployment) = ctx.report.deployment.as_mut() {
        deployment.rollout_state = Some("FAILED".to_owned());
        deployment.reason = Some(reason.clone());
        deployment.rolled_back_to.clone_from(&rolled_back_to);
    }
    match rolled_back_to {
        Some(to) => RolloutEnd::RolledBackByEcs { to, reason },
        None => RolloutEnd::Failed { reason },
    }
}

/// Waits for the service to settle on `to` (a rollback), bounded by the timeout.
pub(crate) async fn follow_steady(
    ctx: &mut Ctx,
    service: &str,
    to: &str,
    timeout_ms: i64,
    poll_ms: i64,
    seen: &mut Seen,
) -> Result<bool, Stop> {
    let started = ctx.now();
    loop {
        ctx.sleep(poll_ms).await?;
        let view = ctx.describe_service(service).await?;
        emit_events(ctx, &view, seen);
        if assess_rollout(&view, to) == RolloutProgress::Completed {
            ctx.report.rollback = Some(DeploymentReport {
                id: view.primary().map(|d| d.id.clone()),
                task_definition: to.to_owned(),
                rollout_state: view.primary().and_then(|d| d.rollout_state.clone()),
                reason: None,
                rolled_back_to: None,
            });
            return Ok(true);
        }
        if ctx.now() - started > timeout_ms {
            return Ok(false);
        }
    }
}
