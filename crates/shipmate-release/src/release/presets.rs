//! A preset's verdict from its task's outcome and framed report, and its contract phase: the
//! migrations held back until the deployment is complete, run as one more one-off task.

use crate::error::ReleaseError;
use crate::event::{Event, Phase, TaskRole};
use crate::ids;
use crate::ledger::Contract;
use crate::preset::{MigrationPlan, Phase as PresetPhase, REFUSED_EXIT, parse_frames};
use crate::task::TaskOutcome;

use super::DeployRequest;
use super::ctx::{Ctx, Stop, ms};
use super::migrate::{MigrationSource, migration_spec};
use super::tasks::{self, Followed, OneOff};
/// What the preset's task did, from its exit and its report: the plan when it passed; the
/// refusal (nothing applied); or the task's own failure. A task that exited 0 without a
/// complete report fails too: what it applied cannot be known.
pub(crate) fn judge(
    role: TaskRole,
    followed: &Followed,
    frames: &[String],
) -> (Option<MigrationPlan>, Result<(), ReleaseError>) {
    let task_arn = followed.task.task_arn.clone();
    let parsed = parse_frames(frames);
    let plan = parsed.as_ref().ok().cloned();
    let verdict = match (&followed.outcome, parsed) {
        (TaskOutcome::Succeeded, Ok(plan)) if !plan.refused() => Ok(()),
        (TaskOutcome::Exited { exit_code, .. }, Ok(plan))
            if *exit_code == REFUSED_EXIT && plan.refused() =>
        {
            let refusal = plan.refusals.first();
            let operation = refusal.and_then(|r| {
                let index = r.index?;
                plan.migrations
                    .iter()
                    .find(|m| Some(&m.id) == r.migration.as_ref())?
                    .operations
                    .iter()
                    .find(|o| o.index == index)
                    .map(|o| format!("{}: {}", o.kind, o.text))
            });
            Err(ReleaseError::MigrationRefused {
                task_arn,
                migration: refusal.and_then(|r| r.migration.clone()),
                operation,
                why: refusal.map_or_else(
                    || "the preset refused the plan".to_owned(),
                    |r| r.why.clone(),
                ),
                hint: refusal.and_then(|r| r.hint.clone()),
            })
        }
        (TaskOutcome::Succeeded, Ok(_)) => Err(ReleaseError::PlanReport {
            task_arn,
            reason: "it reported a refusal but exited 0".to_owned(),
        }),
        (TaskOutcome::Succeeded, Err(error)) => Err(ReleaseError::PlanReport {
            task_arn,
            reason: error.to_string(),
        }),
        _ => tasks::gate(role, followed),
    };
    (plan, verdict)
}

/// Tells what the plan did, and keeps it in the report.
pub(crate) fn show_plan(ctx: &mut Ctx, role: TaskRole, plan: &MigrationPlan) {
    let flagged = plan
        .migrations
        .iter()
        .flat_map(|m| {
            m.operations
                .iter()
                .filter(|o| o.class != "safe")
                .map(move |o| format!("{}: {} ({})", m.id, o.text, o.class))
        })
        .collect();
    ctx.emit(Event::MigrationPlanned {
        role,
        verdict: plan.verdict.clone(),
        applied: plan.applied.clone(),
        held_back: plan.held_back().map(|m| m.id.clone()).collect(),
        flagged,
    });
    if role == TaskRole::Migrate {
        ctx.report.migration_plan = Some(plan.clone());
    }
}

/// Runs one phase of the preset as a one-off task with the migration's revision, network and
/// shape; the task and the frames of its log.
pub(crate) async fn run_phase(
    ctx: &mut Ctx,
    request: &DeployRequest,
    source: &MigrationSource,
    command: Vec<String>,
    role: TaskRole,
    started_by: String,
) -> Result<(Followed, Vec<String>), Stop> {
    let mut spec = migration_spec(request, source, command);
    spec.started_by = started_by;
    let followed = tasks::run_one_off(
        ctx,
        OneOff {
            role,
            spec,
            td: &source.td,
            timeout_ms: ms(request.migrate_timeout),
            poll_ms: ms(request.poll_interval),
            quiet_ms: ms(request.log_quiet_period),
            on_cancel: request.on_cancel,
        },
    )
    .await?;
    let frames = ctx.drain_logs(role).await?;
    Ok((followed, frames))
}

/// `plan --pending`: the preset's plan phase as one read-only task from the release's
/// revision (registered, or reused when it exists): what deploy would migrate, classified.
pub(crate) async fn pending_plan(
    ctx: &mut Ctx,
    request: &DeployRequest,
    service: &crate::service::ServiceView,
) -> Result<MigrationPlan, Stop> {
    let Some(preset) = &request.preset else {
        return Err(Stop::Error(ReleaseError::Invalid(
            "--pending reads the plan of a migration preset: give --preset (or migrate.preset)"
                .to_owned(),
        )));
    };
    let target = super::deploy::revision_with_image(
        ctx,
        request,
        &service.service_name,
        service.desired_revision(),
    )
    .await?;
    let chosen: Vec<&crate::plan::ContainerChoice> = target
        .td
        .containers
        .iter()
        .filter(|c| target.containers.contains(&c.name))
        .collect();
    let container = crate::plan::command_container(&chosen)
        .map(|c| c.name.clone())
        .unwrap_or_default();
    let source = MigrationSource {
        service: service.clone(),
        td: target.td.clone(),
        container,
    };
    let (followed, frames) = run_phase(
        ctx,
        request,
        &source,
        preset.command(PresetPhase::Plan, request.preset_options),
        TaskRole::Migrate,
        ids::plan_started_by(),
    )
    .await?;
    match judge(TaskRole::Migrate, &followed, &frames) {
        // A plan that deploy would refuse is still the plan: shown with its refusals.
        (Some(plan), Ok(()) | Err(ReleaseError::MigrationRefused { .. })) => Ok(plan),
        (_, Err(error)) => Err(Stop::Error(error)),
        (None, Ok(())) => Err(Stop::Error(ReleaseError::PlanReport {
            task_arn: followed.task.task_arn.clone(),
            reason: "no plan in its report".to_owned(),
        })),
    }
}

/// The contract phase: once every service's deployment completed, the preset applies what it
/// held back, from the migration's revision with its network and shape.
pub(crate) async fn contract(
    ctx: &mut Ctx,
    request: &DeployRequest,
    source: &MigrationSource,
) -> Result<(), Stop> {
    let Some(preset) = &request.preset else {
        return Ok(());
    };
    ctx.enter(Phase::Contract);
    let release_id = ctx.report.release_id.clone().unwrap_or_default();
    let (followed, frames) = run_phase(
        ctx,
        request,
        source,
        preset.command(PresetPhase::Contract, request.preset_options),
        TaskRole::Contract,
        ids::contract_started_by(&release_id),
    )
    .await?;
    let (plan, verdict) = judge(TaskRole::Contract, &followed, &frames);
    if let Some(plan) = &plan {
        show_plan(ctx, TaskRole::Contract, plan);
    }
    let passed = verdict.is_ok();
    ctx.record(|record| {
        record.contract = Some(if passed {
            Contract::Passed
        } else {
            Contract::Failed
        });
    })
    .await?;
    verdict.map_err(|error| {
        Stop::Error(ReleaseError::ContractFailed {
            task_arn: Some(followed.task.task_arn.clone()),
            reason: error.to_string(),
        })
    })
}
