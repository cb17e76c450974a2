//! The lifecycle of a service deployment as pure functions: which stage it is in, what the
//! scheduler may do to the service's tasks there ([`Gates`]), PAUSE hooks and their timeouts,
//! bake times, traffic weights, rollbacks and the final status. No I/O and no clock of its own:
//! `now` and the deployment time scale come in, so every rule is table-tested without sleeping.
//!
//! Stages follow ECS's order (reference §1.2). ROLLING: [RECONCILE_SERVICE] → PRE_SCALE_UP →
//! SCALE_UP (the rolling replacement) → POST_SCALE_UP. BLUE_GREEN, LINEAR and CANARY:
//! [RECONCILE_SERVICE] → PRE_SCALE_UP → SCALE_UP (green to 100 % beside blue) → POST_SCALE_UP →
//! TEST_TRAFFIC_SHIFT → POST_TEST_TRAFFIC_SHIFT → (PRE_PRODUCTION_TRAFFIC_SHIFT →
//! PRODUCTION_TRAFFIC_SHIFT) once per production step → POST_PRODUCTION_TRAFFIC_SHIFT →
//! BAKE_TIME → CLEAN_UP (blue to 0). RECONCILE_SERVICE only when more than one revision was
//! active when the deployment started.

use std::time::{Duration, SystemTime};

use super::model::{Deployment, RolloutState, ServiceRecord, Strategy};
use super::records::{
    DeploymentStatus, HookAction, HookRecord, HookStatus, RollbackRecord, ServiceDeploymentRecord,
    Stage,
};
use super::scheduler::TaskView;

/// What the task scheduler may do in the current stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gates {
    pub(crate) launch: Launch,
    /// Older deployments' tasks may be stopped.
    pub(crate) stop_older: bool,
    /// The primary deployment may be marked COMPLETED.
    pub(crate) complete: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Launch {
    /// The target revision gets no task (before SCALE_UP).
    None,
    /// Up to `desired`, with all deployments' tasks within maximumPercent (rolling).
    WithinMaximum,
    /// Up to `desired` beside the old revision's tasks, whatever maximumPercent says (green
    /// beside blue).
    Beside,
}

impl Gates {
    /// No deployment in flight (or one rolling back): ECS's rolling rules, unrestricted.
    pub(crate) const OPEN: Gates = Gates {
        launch: Launch::WithinMaximum,
        stop_older: true,
        complete: true,
    };
    const HOLD: Gates = Gates {
        launch: Launch::None,
        stop_older: false,
        complete: false,
    };
}

/// How fast deployment minutes pass: `scale` ECS-seconds per real second, for bake times, step
/// bakes and hook timeouts only.
pub(crate) fn scaled(minutes: u32, scale: f64) -> Duration {
    let seconds = f64::from(minutes) * 60.0 / scale.max(f64::MIN_POSITIVE);
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
}

/// The production traffic weights of the target revision, one per PRODUCTION_TRAFFIC_SHIFT.
pub(crate) fn production_steps(record: &ServiceDeploymentRecord) -> Vec<f64> {
    let configuration = &record.configuration;
    match configuration.strategy {
        Strategy::Rolling | Strategy::BlueGreen => vec![100.0],
        Strategy::Linear => {
            let step = configuration.linear.unwrap_or_default().step_percent;
            let mut weights = Vec::new();
            let mut weight = 0.0f64;
            while weight < 100.0 {
                // Tenths, so that 3 × 33.3 does not end at 99.89999.
                weight = ((weight + step) * 10.0).round() / 10.0;
                weights.push(weight.min(100.0));
            }
            weights
        }
        Strategy::Canary => {
            let canary = configuration.canary.unwrap_or_default().canary_percent;
            if canary >= 100.0 {
                vec![100.0]
            } else {
                vec![canary, 100.0]
            }
        }
    }
}

/// The minutes to wait after production step `step` (none after the one reaching 100 %).
fn step_bake_minutes(record: &ServiceDeploymentRecord, step: usize, steps: &[f64]) -> u32 {
    if step + 1 >= steps.len() {
        return 0;
    }
    match record.configuration.strategy {
        Strategy::Linear => {
            record
                .configuration
                .linear
                .unwrap_or_default()
                .step_bake_minutes
        }
        Strategy::Canary => {
            record
                .configuration
                .canary
                .unwrap_or_default()
                .canary_bake_minutes
        }
        Strategy::Rolling | Strategy::BlueGreen => 0,
    }
}

/// The stage after `stage`; `None` once every stage has passed.
fn next_stage(record: &ServiceDeploymentRecord, stage: Stage) -> Option<(Stage, u32)> {
    let rolling = record.configuration.strategy == Strategy::Rolling;
    let step = record.step;
    let next = match stage {
        Stage::ReconcileService => Stage::PreScaleUp,
        Stage::PreScaleUp => Stage::ScaleUp,
        Stage::ScaleUp => Stage::PostScaleUp,
        Stage::PostScaleUp if rolling => return None,
        Stage::PostScaleUp => Stage::TestTrafficShift,
        Stage::TestTrafficShift => Stage::PostTestTrafficShift,
        Stage::PostTestTrafficShift => Stage::PreProductionTrafficShift,
        Stage::PreProductionTrafficShift => Stage::ProductionTrafficShift,
        Stage::ProductionTrafficShift => {
            if (step as usize) + 1 < production_steps(record).len() {
                return Some((Stage::PreProductionTrafficShift, step + 1));
            }
            Stage::PostProductionTrafficShift
        }
        Stage::PostProductionTrafficShift => Stage::BakeTime,
        Stage::BakeTime => Stage::CleanUp,
        Stage::CleanUp => return None,
    };
    Some((next, step))
}

/// What the scheduler may do while the deployment sits in `stage` (before its work is done).
fn gates_in(record: &ServiceDeploymentRecord, stage: Stage) -> Gates {
    let rolling = record.configuration.strategy == Strategy::Rolling;
    match stage {
        Stage::ReconcileService | Stage::PreScaleUp => Gates::HOLD,
        _ if rolling => Gates {
            complete: false,
            ..Gates::OPEN
        },
        Stage::CleanUp => Gates {
            complete: false,
            ..Gates::OPEN
        },
        // Green runs beside blue, which keeps all its tasks until CLEAN_UP.
        _ => Gates {
            launch: Launch::Beside,
            stop_older: false,
            complete: false,
        },
    }
}

/// One pass over the service's newest deployment: finishes stop requests, starts a pending
/// deployment, and moves an IN_PROGRESS one through as many stages as it can finish now.
/// Answers what the scheduler may do and the stages entered in this pass, in order.
pub(crate) fn advance(
    service: &mut ServiceRecord,
    tasks: &[TaskView],
    time_scale: f64,
    now: SystemTime,
) -> (Gates, Vec<(Stage, u32)>) {
    for record in &mut service.service_deployments {
        if record.status == DeploymentStatus::StopRequested {
            record.finish(DeploymentStatus::Stopped, now);
        }
    }
    let Some(record) = service.service_deployments.last_mut() else {
        return (Gates::OPEN, Vec::new());
    };
    if record.status == DeploymentStatus::Pending {
        record.status = DeploymentStatus::InProgress;
        record.started_at = Some(now);
        record.updated_at = now;
    }
    match record.status {
        DeploymentStatus::RollbackRequested => {
            let reason = record
                .status_reason
                .clone()
                .unwrap_or_else(|| "Rollback requested.".to_owned());
            roll_back(service, reason, now);
            return (Gates::OPEN, Vec::new());
        }
        DeploymentStatus::InProgress => {}
        _ => return (Gates::OPEN, Vec::new()),
    }

    let mut entered = Vec::new();
    // Each round finishes one stage or stops at one that cannot finish yet.
    loop {
        let record = service
            .service_deployments
            .last_mut()
            .expect("checked above");
        if record.status != DeploymentStatus::InProgress {
            return (Gates::OPEN, entered);
        }
        let Some(stage) = record.stage else {
            let first = if record.sources.len() > 1 {
                Stage::ReconcileService
            } else {
                Stage::PreScaleUp
            };
            enter(service, first, 0, time_scale, now);
            entered.push((first, 0));
            continue;
        };
        if record.stage_passed {
            return (Gates::OPEN, entered);
        }
        let gates = gates_in(record, stage);
        match resolve_hooks(service, now) {
            Hooks::Waiting => return (gates, entered),
            Hooks::RolledBack => return (Gates::OPEN, entered),
            Hooks::Resolved => {}
        }
        if !stage_work_done(service, tasks, stage, time_scale, now) {
            return (gates, entered);
        }
        let record = service
            .service_deployments
            .last_mut()
            .expect("checked above");
        match next_stage(record, stage) {
            Some((next, step)) => {
                enter(service, next, step, time_scale, now);
                entered.push((next, step));
            }
            None => {
                record.stage_passed = true;
                record.updated_at = now;
                return (Gates::OPEN, entered);
            }
        }
    }
}

/// Moves the newest deployment into `stage`: its PAUSE hooks there start waiting.
fn enter(service: &mut ServiceRecord, stage: Stage, step: u32, time_scale: f64, now: SystemTime) {
    let name = service.name.clone();
    let record = service
        .service_deployments
        .last_mut()
        .expect("a deployment");
    record.stage = Some(stage);
    record.step = step;
    record.wait_until = None;
    record.updated_at = now;
    let hooks: Vec<HookRecord> = record
        .configuration
        .pause_hooks
        .iter()
        .filter(|hook| hook.stages.contains(&stage))
        .map(|hook| HookRecord {
            hook_id: HookRecord::new_id(),
            stage,
            step,
            status: HookStatus::AwaitingAction,
            expires_at: now + scaled(hook.timeout_minutes, time_scale),
            timeout_action: hook.timeout_action,
        })
        .collect();
    let deployment = deployment_id(&record.arn).to_owned();
    let messages: Vec<String> = hooks
        .iter()
        .map(|hook| {
            format!(
                "(service {name}) (service deployment {deployment}) is paused at {}: lifecycle hook {} is awaiting action.",
                stage.as_str(),
                hook.hook_id
            )
        })
        .collect();
    record.hooks.extend(hooks);
    for message in messages {
        service.push_event(now, message);
    }
}

enum Hooks {
    /// At least one hook of this stage awaits ContinueServiceDeployment.
    Waiting,
    /// A hook timed out with the ROLLBACK action.
    RolledBack,
    /// Every hook of this stage succeeded, or timed out with CONTINUE (or there are none).
    Resolved,
}

/// Times out expired hooks of the current stage and applies their timeout action.
fn resolve_hooks(service: &mut ServiceRecord, now: SystemTime) -> Hooks {
    let name = service.name.clone();
    let record = service
        .service_deployments
        .last_mut()
        .expect("a deployment");
    let (stage, step) = (record.stage, record.step);
    let deployment = deployment_id(&record.arn).to_owned();
    let mut timed_out = Vec::new();
    for hook in record.hooks.iter_mut().filter(|hook| {
        Some(hook.stage) == stage
            && hook.step == step
            && hook.status == HookStatus::AwaitingAction
            && now >= hook.expires_at
    }) {
        hook.status = HookStatus::TimedOut;
        timed_out.push((hook.hook_id.clone(), hook.timeout_action));
    }
    let waiting = record.is_paused();
    if !timed_out.is_empty() {
        record.updated_at = now;
    }
    for (hook_id, action) in &timed_out {
        service.push_event(
            now,
            format!(
                "(service {name}) (service deployment {deployment}) lifecycle hook {hook_id} timed out; its timeout action is {}.",
                action.as_str()
            ),
        );
    }
    if let Some((hook_id, _)) = timed_out
        .iter()
        .find(|(_, action)| *action == HookAction::Rollback)
    {
        roll_back(
            service,
            format!("Lifecycle hook {hook_id} timed out with the ROLLBACK timeout action."),
            now,
        );
        return Hooks::RolledBack;
    }
    if waiting {
        Hooks::Waiting
    } else {
        Hooks::Resolved
    }
}

/// Does the stage's own work; answers whether it is finished.
fn stage_work_done(
    service: &mut ServiceRecord,
    tasks: &[TaskView],
    stage: Stage,
    time_scale: f64,
    now: SystemTime,
) -> bool {
    let desired = service.desired_count;
    let record = service.service_deployments.last().expect("a deployment");
    let target_id = record.target.deployment_id.clone();
    let rolling = record.configuration.strategy == Strategy::Rolling;
    let target_healthy = tasks
        .iter()
        .filter(|task| task.deployment_id == target_id && task.is_healthy(now))
        .count() as u32;
    let older_drained = tasks
        .iter()
        .all(|task| task.deployment_id == target_id || task.last_status == "STOPPED");
    let record = service
        .service_deployments
        .last_mut()
        .expect("a deployment");
    match stage {
        Stage::ScaleUp if rolling => target_healthy >= desired && older_drained,
        Stage::ScaleUp => target_healthy >= desired,
        Stage::TestTrafficShift => {
            if record.shifts_traffic {
                record.target.test_weight = Some(100.0);
                for source in &mut record.sources {
                    source.test_weight = Some(0.0);
                }
            }
            true
        }
        Stage::ProductionTrafficShift => {
            let steps = production_steps(record);
            let step = (record.step as usize).min(steps.len() - 1);
            if record.shifts_traffic {
                let weight = steps[step];
                record.target.production_weight = Some(weight);
                let mut rest = 100.0 - weight;
                for source in &mut record.sources {
                    source.production_weight = Some(rest);
                    rest = 0.0;
                }
            }
            wait(
                record,
                step_bake_minutes(record, step, &steps),
                time_scale,
                now,
            )
        }
        Stage::BakeTime => {
            let minutes = record.configuration.bake_time_minutes.unwrap_or(0);
            wait(record, minutes, time_scale, now)
        }
        Stage::CleanUp => target_healthy >= desired && older_drained,
        _ => true,
    }
}

/// Starts (once) and checks a wait of `minutes` deployment minutes in the current stage.
fn wait(
    record: &mut ServiceDeploymentRecord,
    minutes: u32,
    time_scale: f64,
    now: SystemTime,
) -> bool {
    if minutes == 0 {
        return true;
    }
    let until = *record
        .wait_until
        .get_or_insert_with(|| now + scaled(minutes, time_scale));
    now >= until
}

/// Rolls the newest deployment back: its target deployment fails and launches nothing more,
/// and the most recent COMPLETED deployment becomes PRIMARY again (ECS re-promotes it rather
/// than creating a new revision). Without one, the rollback fails and the rollout stalls.
pub(crate) fn roll_back(service: &mut ServiceRecord, reason: String, now: SystemTime) {
    let name = service.name.clone();
    let target_id = service.service_deployments.last().map_or_else(
        || service.primary().id.clone(),
        |r| r.target.deployment_id.clone(),
    );
    if let Some(target) = service.deployments.iter_mut().find(|d| d.id == target_id)
        && target.rollout_state == RolloutState::InProgress
    {
        target.rollout_state = RolloutState::Failed;
        target.rollout_state_reason = Some(format!("ECS deployment {target_id} rolled back."));
        target.updated_at = now;
    }
    let promoted = promote_last_completed(service, &target_id, now);
    service.push_event(
        now,
        match &promoted {
            Some(promoted) => format!(
                "(service {name}) rolling back to deployment {}.",
                promoted.id
            ),
            None => format!("(service {name}) has no completed deployment to roll back to."),
        },
    );
    let Some(record) = service
        .service_deployments
        .last_mut()
        .filter(|record| record.status.is_active())
    else {
        return;
    };
    let found = promoted.is_some();
    record.rollback = Some(RollbackRecord {
        reason: reason.clone(),
        started_at: now,
        revision_arn: promoted.and_then(|promoted| promoted.revision_arn),
    });
    record.updated_at = now;
    if found {
        record.status = DeploymentStatus::RollbackInProgress;
        record.status_reason = Some(reason);
    } else {
        record.finish(DeploymentStatus::RollbackFailed, now);
        record.status_reason = Some(format!(
            "{reason} No completed service revision to roll back to."
        ));
    }
}

/// Makes the most recent COMPLETED deployment (other than `failed_id`) PRIMARY and IN_PROGRESS
/// again, with the service's task definition back to its own. Answers it, if there is one.
pub(crate) fn promote_last_completed(
    service: &mut ServiceRecord,
    failed_id: &str,
    now: SystemTime,
) -> Option<Deployment> {
    let index = service
        .deployments
        .iter()
        .enumerate()
        .filter(|(_, deployment)| {
            deployment.id != failed_id && deployment.rollout_state == RolloutState::Completed
        })
        .max_by_key(|(_, deployment)| deployment.created_at)
        .map(|(index, _)| index)?;
    let desired = service.desired_count;
    for deployment in &mut service.deployments {
        deployment.status = "ACTIVE".to_owned();
    }
    let mut target = service.deployments.remove(index);
    target.status = "PRIMARY".to_owned();
    target.rollout_state = RolloutState::InProgress;
    target.rollout_state_reason = Some(format!(
        "ECS deployment circuit breaker: rolling back to deploymentId {}.",
        target.id
    ));
    target.desired_count = desired;
    target.updated_at = now;
    service.task_definition = target.task_definition.clone();
    // Keep the primary first, as ECS lists it.
    service.deployments.insert(0, target.clone());
    Some(target)
}

/// After the task scheduler's pass: ends the newest deployment once its rollout (or its
/// rollback's) completed, and keeps the revisions' task counts and the circuit breaker's
/// numbers current.
pub(crate) fn settle(service: &mut ServiceRecord, now: SystemTime) {
    let desired = service.desired_count;
    let primary = service.primary().clone();
    let breaker = service.effective_configuration().circuit_breaker.clone();
    let deployments = service.deployments.clone();
    let Some(record) = service.service_deployments.last_mut() else {
        return;
    };
    let counts = |id: &str| {
        deployments
            .iter()
            .find(|d| d.id == id)
            .map_or((0, 0), |d| (d.running_count, d.pending_count))
    };
    if record.status.is_active() {
        let gates = record.stage.map(|stage| gates_in(record, stage));
        let launching = record.stage_passed || gates.is_some_and(|g| g.launch != Launch::None);
        let stopping = record.stage_passed || gates.is_some_and(|g| g.stop_older);
        let (running, pending) = counts(&record.target.deployment_id);
        record.target.running = running;
        record.target.pending = pending;
        record.target.requested = if launching { desired } else { 0 };
        for source in &mut record.sources {
            let (running, pending) = counts(&source.deployment_id);
            source.running = running;
            source.pending = pending;
            source.requested = if stopping { 0 } else { running + pending };
        }
        if let Some(target) = deployments
            .iter()
            .find(|d| d.id == record.target.deployment_id)
        {
            record.failure_count = target.failed_tasks;
        }
        record.threshold = breaker.threshold(desired);
    }
    let primary_completed = primary.rollout_state == RolloutState::Completed;
    match record.status {
        DeploymentStatus::InProgress
            if record.stage_passed
                && primary_completed
                && primary.id == record.target.deployment_id =>
        {
            record.status_reason = Some("Service deployment completed.".to_owned());
            record.finish(DeploymentStatus::Successful, now);
            for source in &mut record.sources {
                (source.running, source.pending, source.requested) = (0, 0, 0);
            }
        }
        DeploymentStatus::RollbackInProgress
            if primary_completed && primary.id != record.target.deployment_id =>
        {
            record.finish(DeploymentStatus::RollbackSuccessful, now);
            (
                record.target.running,
                record.target.pending,
                record.target.requested,
            ) = (0, 0, 0);
        }
        _ => {}
    }
}

/// Why ContinueServiceDeployment cannot act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AnswerError {
    #[error("The service deployment is {}, not IN_PROGRESS.", .0.as_str())]
    NotInProgress(DeploymentStatus),
    #[error("The service deployment has no lifecycle hook {0}.")]
    NoSuchHook(String),
    #[error("The lifecycle hook {hook_id} is {}, not AWAITING_ACTION.", .status.as_str())]
    NotAwaiting { hook_id: String, status: HookStatus },
}

/// ContinueServiceDeployment: CONTINUE resolves the paused hook (the next pass moves on once
/// every hook of the stage is resolved); ROLLBACK fails it and rolls the whole deployment back.
pub(crate) fn answer_hook(
    record: &mut ServiceDeploymentRecord,
    hook_id: &str,
    action: HookAction,
    now: SystemTime,
) -> Result<(), AnswerError> {
    if record.status != DeploymentStatus::InProgress {
        return Err(AnswerError::NotInProgress(record.status));
    }
    let hook = record
        .hooks
        .iter_mut()
        .find(|hook| hook.hook_id == hook_id)
        .ok_or_else(|| AnswerError::NoSuchHook(hook_id.to_owned()))?;
    if hook.status != HookStatus::AwaitingAction {
        return Err(AnswerError::NotAwaiting {
            hook_id: hook_id.to_owned(),
            status: hook.status,
        });
    }
    hook.status = match action {
        HookAction::Continue => HookStatus::Succeeded,
        HookAction::Rollback => HookStatus::Failed,
    };
    record.updated_at = now;
    if action == HookAction::Rollback {
        record.status = DeploymentStatus::RollbackRequested;
        record.status_reason = Some(format!(
            "Lifecycle hook {hook_id} was answered with ROLLBACK."
        ));
    }
    Ok(())
}

/// Why StopServiceDeployment cannot act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StopError {
    #[error("The service deployment is {} and can no longer be stopped.", .0.as_str())]
    Finished(DeploymentStatus),
}

/// StopServiceDeployment of the service's deployment `arn`: ROLLBACK asks for a rollback (the
/// next pass starts it), ABORT stops it where it is: its target launches nothing more and the
/// tasks already running stay, as after a circuit breaker without rollback (our choice; ECS
/// does not document ABORT). A deployment already stopping or rolling back keeps doing so.
pub(crate) fn stop(
    service: &mut ServiceRecord,
    arn: &str,
    rollback: bool,
    now: SystemTime,
) -> Result<(), StopError> {
    let Some(record) = service
        .service_deployments
        .iter_mut()
        .find(|record| record.arn == arn)
    else {
        return Ok(());
    };
    match record.status {
        DeploymentStatus::Pending | DeploymentStatus::InProgress => {}
        DeploymentStatus::StopRequested
        | DeploymentStatus::RollbackRequested
        | DeploymentStatus::RollbackInProgress => return Ok(()),
        finished => return Err(StopError::Finished(finished)),
    }
    record.updated_at = now;
    let message = format!(
        "(service {}) (service deployment {}) was stopped with {}.",
        service.name,
        deployment_id(arn),
        if rollback { "ROLLBACK" } else { "ABORT" }
    );
    if rollback {
        record.status = DeploymentStatus::RollbackRequested;
        record.status_reason = Some("Rollback requested by StopServiceDeployment.".into());
        service.push_event(now, message);
        return Ok(());
    }
    record.status = DeploymentStatus::StopRequested;
    record.status_reason = Some("Stopped by StopServiceDeployment (ABORT).".into());
    let target_id = record.target.deployment_id.clone();
    if let Some(target) = service.deployments.iter_mut().find(|d| d.id == target_id)
        && target.rollout_state == RolloutState::InProgress
    {
        target.rollout_state = RolloutState::Failed;
        target.rollout_state_reason = Some(format!("ECS deployment {target_id} stopped."));
        target.updated_at = now;
    }
    service.push_event(now, message);
    Ok(())
}

/// The id part of a service-deployment ARN, for events.
pub(crate) fn deployment_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[cfg(test)]
mod tests;
