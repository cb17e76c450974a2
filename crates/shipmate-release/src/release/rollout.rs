//! Following services' rollouts to their end, all at once (one DescribeServices per ten
//! services a poll): progress, ECS's events, why new tasks stop, and each service's verdict
//! (completed, failed, rolled back by ECS, replaced by someone else, timed out).

use std::collections::{BTreeMap, HashSet};

use crate::deployment::{DeploymentProgress, ServiceDeploymentView, assess_deployment};
use crate::event::Event;
use crate::io::{Command, Observation};
use crate::report::{DeploymentReport, ServiceReport};
use crate::service::{
    DeploymentView, RolloutProgress, ServiceView, StoppedTally, assess_rollout, event_shape,
    new_events,
};
use crate::task::stop_summary;

use super::ctx::{Ctx, Stop};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RolloutEnd {
    Completed,
    /// Production traffic is on the new revision; ECS keeps the old one for the bake time
    /// (only when the release waits until `deployed`).
    Deployed,
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

impl RolloutEnd {
    /// The service's outcome in the report.
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            RolloutEnd::Completed => "completed",
            RolloutEnd::Deployed => "deployed",
            RolloutEnd::Failed { .. } => "failed",
            RolloutEnd::RolledBackByEcs { .. } => "rolled_back",
            RolloutEnd::Replaced { .. } => "replaced",
            RolloutEnd::TimedOut => "timed_out",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Rollout {
    pub(crate) service: String,
    pub(crate) target: String,
    /// What was live before: a primary going back to it means a rollback.
    pub(crate) from: String,
    /// Fail after this many stopped new tasks; `None` when ECS's circuit breaker decides.
    pub(crate) failure_limit: Option<u32>,
    /// ECS's service-deployment record of this rollout, where ECS keeps one.
    pub(crate) record: Option<String>,
    /// End once production traffic is on the new revision (`--wait-until deployed`).
    pub(crate) until_deployed: bool,
}

impl RolloutEnd {
    /// The release may go on: the rollout completed, or reached what it was to wait for.
    pub(crate) fn is_success(&self) -> bool {
        matches!(self, RolloutEnd::Completed | RolloutEnd::Deployed)
    }
}

/// What the follower has seen of one service, kept across its rollout and a rollback after it.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    events: HashSet<String>,
    stopped_tasks: HashSet<String>,
    tally: StoppedTally,
    progress: Option<(i32, i32, i32, i32)>,
    /// The highest `failedTasks` ECS reported for the deployment.
    failed_tasks: i32,
    /// What the events shown so far said (see [`event_shape`]).
    shapes: HashSet<String>,
    /// The record's (status, stage) last shown.
    stage: Option<(String, Option<String>)>,
    /// PAUSE hooks already reported as waiting.
    paused: HashSet<String>,
    /// PAUSE hooks known to be this release's own.
    pub(crate) ours: HashSet<String>,
}

impl Seen {
    pub(crate) fn from_service(view: &ServiceView) -> Seen {
        Seen {
            events: view.events.iter().map(|e| e.id.clone()).collect(),
            ..Seen::default()
        }
    }

    fn summary(&self) -> Option<String> {
        (self.tally.total() > 0).then(|| self.tally.summary())
    }
}

/// Per service: what was seen of it.
pub(crate) type SeenAll = BTreeMap<String, Seen>;

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

/// The report section of `service` (created on first use).
pub(crate) fn service_report<'a>(ctx: &'a mut Ctx, service: &str) -> &'a mut ServiceReport {
    let index = match ctx
        .report
        .services
        .iter()
        .position(|s| s.service == service)
    {
        Some(index) => index,
        None => {
            ctx.report.services.push(ServiceReport {
                service: service.to_owned(),
                outcome: "not_deployed".to_owned(),
                ..ServiceReport::default()
            });
            ctx.report.services.len() - 1
        }
    };
    &mut ctx.report.services[index]
}

/// Follows every rollout until each has ended, or (`stop_at_first_failure`) until one failed.
/// Returns the services that ended, with how.
pub(crate) async fn follow_all(
    ctx: &mut Ctx,
    rollouts: &[Rollout],
    seen: &mut SeenAll,
    timeout_ms: i64,
    poll_ms: i64,
    stop_at_first_failure: bool,
) -> Result<Vec<(String, RolloutEnd)>, Stop> {
    let started = ctx.now();
    let mut ends: Vec<(String, RolloutEnd)> = Vec::new();
    let mut polls: u32 = 0;
    loop {
        ctx.sleep(poll_ms).await?;
        polls += 1;
        let pending: Vec<&Rollout> = rollouts
            .iter()
            .filter(|r| !ends.iter().any(|(service, _)| *service == r.service))
            .collect();
        let names: Vec<String> = pending.iter().map(|r| r.service.clone()).collect();
        let views = ctx.describe_services(&names).await?;
        let arns: Vec<String> = pending.iter().filter_map(|r| r.record.clone()).collect();
        let records = ctx.service_deployments(&arns).await?.unwrap_or_default();
        for (rollout, view) in pending.into_iter().zip(views) {
            let seen = seen.entry(rollout.service.clone()).or_default();
            let record = records
                .iter()
                .find(|r| Some(&r.arn) == rollout.record.as_ref());
            if let Some(end) = poll_one(ctx, rollout, &view, record, seen, polls).await? {
                let report = service_report(ctx, &rollout.service);
                report.outcome = end.outcome().to_owned();
                ends.push((rollout.service.clone(), end));
            }
        }
        let failed = ends.iter().any(|(_, end)| !end.is_success());
        if ends.len() == rollouts.len() || (failed && stop_at_first_failure) {
            return Ok(ends);
        }
        if ctx.now() - started > timeout_ms {
            for rollout in rollouts {
                if !ends.iter().any(|(service, _)| *service == rollout.service) {
                    service_report(ctx, &rollout.service).outcome = "timed_out".to_owned();
                    ends.push((rollout.service.clone(), RolloutEnd::TimedOut));
                }
            }
            return Ok(ends);
        }
    }
}

/// One poll of one service: its events, stopped new tasks, progress, and its end if it ended.
async fn poll_one(
    ctx: &mut Ctx,
    rollout: &Rollout,
    view: &ServiceView,
    record: Option<&ServiceDeploymentView>,
    seen: &mut Seen,
    polls: u32,
) -> Result<Option<RolloutEnd>, Stop> {
    emit_events(ctx, view, seen);
    let verdict = record
        .map(|record| {
            show_record(ctx, &rollout.service, record, seen);
            assess_deployment(record)
        })
        .filter(|verdict| {
            // Stopped by a newer deployment of the same revision (a forced deployment): that
            // one carries the release on, and DescribeServices follows it.
            !matches!(verdict, DeploymentProgress::Stopped { .. })
                || view.desired_revision() != rollout.target
                || view.current_service_deployment == rollout.record
        });
    let progress = assess_rollout(view, &rollout.target);
    let deployment = view.deployment_of(&rollout.target).cloned();
    record_deployment(ctx, &rollout.service, &rollout.target, deployment.as_ref());
    if matches!(progress, RolloutProgress::InProgress { .. })
        && let Some(deployment) = &deployment
        && worth_counting(deployment, seen, polls)
    {
        let newly = count_stopped(ctx, &deployment.id, seen).await?;
        if newly > 0 {
            ctx.emit(Event::NewTasksStopped {
                service: rollout.service.clone(),
                summary: seen.tally.summary(),
                total: seen.tally.total(),
                limit: rollout.failure_limit,
            });
        }
        if let Some(limit) = rollout.failure_limit
            && seen.tally.total() >= limit
        {
            return Ok(Some(failed(
                ctx,
                &rollout.service,
                seen.tally.summary(),
                None,
            )));
        }
    }
    if let Some(verdict) = verdict {
        // ECS's own record decides: it knows the lifecycle stage, bake time and its rollback.
        let end = match verdict {
            DeploymentProgress::Succeeded => RolloutEnd::Completed,
            DeploymentProgress::Deployed { .. } if rollout.until_deployed => RolloutEnd::Deployed,
            DeploymentProgress::RolledBack { reason } => {
                failed(ctx, &rollout.service, reason, Some(rollout.from.clone()))
            }
            DeploymentProgress::Stopped { reason, .. } => {
                let desired = view.desired_revision();
                if desired == rollout.target {
                    failed(ctx, &rollout.service, reason, None)
                } else {
                    RolloutEnd::Replaced {
                        by: desired.to_owned(),
                    }
                }
            }
            DeploymentProgress::InProgress { .. }
            | DeploymentProgress::Deployed { .. }
            | DeploymentProgress::Paused { .. } => {
                show_progress(ctx, rollout, progress, seen);
                return Ok(None);
            }
        };
        return Ok(Some(end));
    }
    let end = match progress {
        RolloutProgress::Completed => RolloutEnd::Completed,
        RolloutProgress::InProgress {
            running,
            desired,
            pending,
            failed_tasks,
        } => {
            show_progress(
                ctx,
                rollout,
                RolloutProgress::InProgress {
                    running,
                    desired,
                    pending,
                    failed_tasks,
                },
                seen,
            );
            return Ok(None);
        }
        RolloutProgress::Failed {
            reason,
            rolled_back_to,
        } => failed(ctx, &rollout.service, reason, rolled_back_to),
        RolloutProgress::Superseded { by } if by == rollout.from => {
            // Ours vanished and what was live before is primary again: the circuit breaker
            // rolled back between two polls.
            let reason = seen.summary().map_or_else(
                || "ECS rolled the deployment back (deployment circuit breaker)".to_owned(),
                |summary| {
                    format!(
                        "ECS rolled the deployment back (deployment circuit breaker) after {summary}"
                    )
                },
            );
            failed(ctx, &rollout.service, reason, Some(by))
        }
        RolloutProgress::Superseded { by } => RolloutEnd::Replaced { by },
        RolloutProgress::Inactive { status } => {
            return Err(Stop::Error(crate::error::ReleaseError::ServiceNotActive {
                cluster: ctx.cluster.clone(),
                service: rollout.service.clone(),
                status,
            }));
        }
    };
    Ok(Some(end))
}

fn show_progress(ctx: &Ctx, rollout: &Rollout, progress: RolloutProgress, seen: &mut Seen) {
    if let RolloutProgress::InProgress {
        running,
        desired,
        pending,
        failed_tasks,
    } = progress
    {
        let now = (running, desired, pending, failed_tasks);
        if seen.progress != Some(now) {
            seen.progress = Some(now);
            ctx.emit(Event::RolloutProgress {
                service: rollout.service.clone(),
                running,
                desired,
                pending,
                failed_tasks,
            });
        }
    }
}

/// Shows the record's status and lifecycle stage when they change, and hooks that wait.
pub(crate) fn show_record(
    ctx: &Ctx,
    service: &str,
    record: &ServiceDeploymentView,
    seen: &mut Seen,
) {
    let now = (record.status.clone(), record.lifecycle_stage.clone());
    if seen.stage.as_ref() != Some(&now) {
        ctx.emit(Event::DeploymentStage {
            service: service.to_owned(),
            status: now.0.clone(),
            stage: now.1.clone(),
        });
        seen.stage = Some(now);
    }
    for hook in record
        .hooks
        .iter()
        .filter(|h| h.status == "AWAITING_ACTION")
    {
        if seen.paused.insert(hook.hook_id.clone()) {
            ctx.emit(Event::DeploymentPaused {
                service: service.to_owned(),
                stage: record.lifecycle_stage.clone(),
                hook_id: hook.hook_id.clone(),
                expires_at: hook.expires_at,
                ours: seen.ours.contains(&hook.hook_id),
            });
        }
    }
}

fn record_deployment(
    ctx: &mut Ctx,
    service: &str,
    target: &str,
    deployment: Option<&DeploymentView>,
) {
    let first = ctx.report.services.first().map(|s| s.service.clone());
    let update = |report: &mut DeploymentReport| {
        report.rollout_state = deployment.and_then(|d| d.rollout_state.clone());
        if report.id.is_none() {
            report.id = deployment.map(|d| d.id.clone());
        }
    };
    let section = service_report(ctx, service);
    update(section.deployment.get_or_insert_with(|| DeploymentReport {
        id: None,
        task_definition: target.to_owned(),
        rollout_state: None,
        reason: None,
        rolled_back_to: None,
    }));
    if first.as_deref() == Some(service)
        && let Some(report) = ctx.report.deployment.as_mut()
    {
        update(report);
    }
}

/// Whether to look for stopped new tasks on this poll: when the deployment is short of tasks
/// (one stopped and is not replaced yet) or ECS counted a failure, and every tenth poll in case
/// both happened between two polls. A healthy rollout costs no extra call.
fn worth_counting(deployment: &DeploymentView, seen: &mut Seen, polls: u32) -> bool {
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

fn failed(
    ctx: &mut Ctx,
    service: &str,
    reason: String,
    rolled_back_to: Option<String>,
) -> RolloutEnd {
    let first = ctx.report.services.first().map(|s| s.service.clone());
    let mark = |deployment: &mut DeploymentReport| {
        deployment.rollout_state = Some("FAILED".to_owned());
        deployment.reason = Some(reason.clone());
        deployment.rolled_back_to.clone_from(&rolled_back_to);
    };
    if let Some(deployment) = service_report(ctx, service).deployment.as_mut() {
        mark(deployment);
    }
    if first.as_deref() == Some(service)
        && let Some(deployment) = ctx.report.deployment.as_mut()
    {
        mark(deployment);
    }
    match rolled_back_to {
        Some(to) => RolloutEnd::RolledBackByEcs { to, reason },
        None => RolloutEnd::Failed { reason },
    }
}

/// Waits for every service to settle on its revision (a rollback), bounded by the timeout;
/// returns the services that did.
pub(crate) async fn follow_steady_all(
    ctx: &mut Ctx,
    targets: &[(String, String)],
    seen: &mut SeenAll,
    timeout_ms: i64,
    poll_ms: i64,
) -> Result<Vec<String>, Stop> {
    let started = ctx.now();
    let mut steady: Vec<String> = Vec::new();
    loop {
        ctx.sleep(poll_ms).await?;
        let pending: Vec<&(String, String)> = targets
            .iter()
            .filter(|(service, _)| !steady.contains(service))
            .collect();
        let names: Vec<String> = pending.iter().map(|(service, _)| service.clone()).collect();
        let views = ctx.describe_services(&names).await?;
        for ((service, to), view) in pending.into_iter().zip(views) {
            emit_events(ctx, &view, seen.entry(service.clone()).or_default());
            if assess_rollout(&view, to) == RolloutProgress::Completed {
                let rollback = DeploymentReport {
                    id: view.primary().map(|d| d.id.clone()),
                    task_definition: to.clone(),
                    rollout_state: view.primary().and_then(|d| d.rollout_state.clone()),
                    reason: None,
                    rolled_back_to: None,
                };
                if ctx.report.services.first().map(|s| s.service.as_str()) == Some(service.as_str())
                {
                    ctx.report.rollback = Some(rollback.clone());
                    if let Some(deployment) = ctx.report.deployment.as_mut() {
                        deployment.rolled_back_to = Some(to.clone());
                    }
                }
                let report = service_report(ctx, service);
                report.rollback = Some(rollback);
                if let Some(deployment) = report.deployment.as_mut() {
                    deployment.rolled_back_to = Some(to.clone());
                }
                report.outcome = "rolled_back".to_owned();
                steady.push(service.clone());
            }
        }
        if steady.len() == targets.len() || ctx.now() - started > timeout_ms {
            return Ok(steady);
        }
    }
}
