//! The migration phase: run the release's migration from its new revision, or attach to the one
//! an interrupted run of the release started, or start the next attempt after a failed one; and
//! follow it to its end with its logs.

use crate::event::{Event, TaskRole};
use crate::ids;
use crate::io::{LogFollowSpec, TaskDefinitionView, TaskSpec};
use crate::ledger::MigrationRecord;
use crate::service::ServiceView;
use crate::task::{TaskProgress, TaskView, assess_task_for, is_replay};

use super::DeployRequest;
use super::ctx::{Ctx, Stop, ms};
use super::lock::{self, LockRequest};
use super::tasks::{self, Follow, Followed, Started, log_spec, logs_or_say_why, spec_for_service};

/// Where the migration runs: a revision carrying the release's image, the container its
/// command replaces, and the service whose network and launch settings it uses.
#[derive(Debug, Clone)]
pub(super) struct MigrationSource {
    pub(super) service: ServiceView,
    pub(super) td: TaskDefinitionView,
    pub(super) container: String,
}

/// A one-off task like the migration: from `source`'s revision with its service's network and
/// launch settings, and the migration's own shape (sizes, environment, roles). The migration,
/// and a preset's other phases, run this way.
pub(super) fn migration_spec(
    request: &DeployRequest,
    source: &MigrationSource,
    command: Vec<String>,
) -> TaskSpec {
    let mut spec = spec_for_service(
        Some(&source.service),
        &source.td.arn,
        &source.container,
        command,
        request.launch_type.as_deref(),
        request.allow_spot,
    );
    let shape = &request.migrate_shape;
    spec.cpu = request.migrate_cpu;
    spec.memory = request.migrate_memory;
    spec.environment.clone_from(&shape.environment);
    spec.task_cpu.clone_from(&shape.task_cpu);
    spec.task_memory.clone_from(&shape.task_memory);
    spec.task_role_arn.clone_from(&shape.task_role_arn);
    spec.execution_role_arn
        .clone_from(&shape.execution_role_arn);
    spec
}

/// Whether the release migrates with a task size of its own, on Fargate from `service`.
pub(super) fn sized_on_fargate(request: &DeployRequest, service: &ServiceView) -> bool {
    let shape = &request.migrate_shape;
    request.migrate.is_some()
        && (shape.task_cpu.is_some() || shape.task_memory.is_some())
        && crate::plan::migration_launch(
            service.launch_type.as_deref(),
            &service.capacity,
            request.launch_type.as_deref(),
            request.allow_spot,
        )
        .is_fargate()
            == Some(true)
}

/// The migration's task size on Fargate (its overrides over `td`'s own) must be one Fargate
/// offers: bad input, said before anything changes.
pub(super) fn check_task_size(
    request: &DeployRequest,
    td: &TaskDefinitionView,
) -> Result<(), Stop> {
    let shape = &request.migrate_shape;
    crate::plan::check_fargate_size(
        shape.task_cpu.as_deref().or(td.cpu.as_deref()),
        shape.task_memory.as_deref().or(td.memory.as_deref()),
    )
    .map_err(|message| {
        Stop::Error(crate::error::ReleaseError::Invalid(format!(
            "the migration's size: {message}"
        )))
    })
}

/// Runs (or attaches to) the release's migration and follows it to its end.
pub(super) async fn migrate(
    ctx: &mut Ctx,
    request: &DeployRequest,
    lock_request: &LockRequest,
    source: &MigrationSource,
    command: &[String],
    earlier_runs: u32,
) -> Result<Followed, Stop> {
    let held = ctx.held.clone().expect("the lock is held");
    let recorded = held.record.migration.clone().unwrap_or_default();
    let mut attempt = recorded.attempt;
    if let Some(task_arn) = recorded.task_arn.clone().filter(|_| held.resumed) {
        // An interrupted run started this task: follow it, or learn how it ended.
        let task = ctx
            .describe_tasks(std::slice::from_ref(&task_arn))
            .await?
            .into_iter()
            .next();
        match task
            .as_ref()
            .map(|t| assess_task_for(t, Some(&source.container)))
        {
            Some(TaskProgress::Finished(outcome)) if !outcome.succeeded() => {
                ctx.emit(Event::PreviousAttemptFailed {
                    task_arn,
                    attempt: attempt + 1,
                });
                attempt += 1;
            }
            Some(_) => {
                let task = task.expect("matched Some");
                return attach(ctx, request, source, task, attempt).await;
            }
            None => {
                // Forgotten by ECS (stopped over an hour ago): its result is unknown, and a
                // migration that already ran has nothing left to apply.
                ctx.emit(Event::PreviousAttemptUnknown { task_arn });
                attempt += 1;
            }
        }
    }
    loop {
        let recorded_attempt = ctx
            .held
            .as_ref()
            .and_then(|h| h.record.migration.as_ref())
            .map(|m| m.attempt);
        // Attempt 0 needs no record: a re-run starts from it anyway.
        if recorded_attempt.unwrap_or(0) != attempt {
            let td = source.td.arn.clone();
            ctx.record(|record| {
                record.migration = Some(MigrationRecord {
                    attempt,
                    task_arn: None,
                    passed: None,
                    task_definition: Some(td),
                });
            })
            .await?;
        }
        // Checked right before RunTask: nothing may come between.
        lock::ensure_held(ctx, lock_request).await?;
        let held = ctx.held.clone().expect("the lock is held");
        let mut spec = migration_spec(request, source, command.to_vec());
        spec.started_by = ids::started_by(&held.record.release_id);
        spec.client_token = Some(ids::migration_token(
            &held.family,
            held.entry.revision,
            attempt,
        ));
        let called_at = ctx.now();
        let started = tasks::run_task(ctx, spec, TaskRole::Migrate).await?;
        if let Started::Task(task) = &started
            && !lock::still_held_after(ctx, called_at).await?
        {
            // Taken over while RunTask was under way: stop what we started, at once.
            let arn = task.task_arn.clone();
            let _ = ctx
                .stop_task(&arn, "shipmate: the release lock was lost")
                .await;
            return Err(lock::lost(
                ctx,
                &source.service.service_name,
                "RunTask",
                called_at,
                Some(arn),
            ));
        }
        match started {
            Started::Task(task) => {
                let replay = held.resumed && is_replay(&task, called_at);
                if !replay {
                    record_task(ctx, attempt, &task.task_arn, &source.td.arn).await?;
                    ctx.emit(Event::TaskStarted {
                        role: TaskRole::Migrate,
                        task_arn: task.task_arn.clone(),
                        attached: false,
                        attempt: attempt + earlier_runs,
                    });
                    let logs = migration_logs(ctx, request, source, &task);
                    return tasks::follow(
                        ctx,
                        task,
                        &migration_follow(request, source, logs, false, attempt + earlier_runs),
                    )
                    .await;
                }
                // ECS replayed our earlier RunTask: a trimmed answer, so read the task itself.
                let arn = task.task_arn.clone();
                let full = ctx
                    .describe_tasks(std::slice::from_ref(&arn))
                    .await?
                    .into_iter()
                    .next()
                    .unwrap_or(task);
                if let TaskProgress::Finished(outcome) =
                    assess_task_for(&full, Some(&source.container))
                    && !outcome.succeeded()
                {
                    ctx.emit(Event::PreviousAttemptFailed {
                        task_arn: arn,
                        attempt: attempt + 1,
                    });
                    attempt += 1;
                    continue;
                }
                record_task(ctx, attempt, &arn, &source.td.arn).await?;
                return attach(ctx, request, source, full, attempt).await;
            }
            Started::Conflict(arns) => {
                // Our token, other parameters: an earlier run of this release with other flags.
                // Its task must end before ours starts; then the next attempt gets a new token.
                let holders = ctx.describe_tasks(&arns).await?;
                if let Some(running) = holders.iter().find(|t| !t.is_stopped()) {
                    ctx.emit(Event::WaitingForEarlierAttempt {
                        task_arn: running.task_arn.clone(),
                    });
                    tasks::wait_stopped(
                        ctx,
                        &running.task_arn,
                        TaskRole::Migrate,
                        ms(request.poll_interval),
                    )
                    .await?;
                }
                attempt += 1;
            }
        }
    }
}

async fn record_task(
    ctx: &mut Ctx,
    attempt: u32,
    task_arn: &str,
    task_definition: &str,
) -> Result<(), Stop> {
    ctx.record(|record| {
        record.migration = Some(MigrationRecord {
            attempt,
            task_arn: Some(task_arn.to_owned()),
            passed: None,
            task_definition: Some(task_definition.to_owned()),
        });
    })
    .await
}

fn migration_follow(
    request: &DeployRequest,
    source: &MigrationSource,
    logs: Option<LogFollowSpec>,
    attached: bool,
    attempt: u32,
) -> Follow {
    Follow {
        role: TaskRole::Migrate,
        // The migration's own exit code is the gate; the task's other containers only stop.
        container: Some(source.container.clone()),
        timeout_ms: ms(request.migrate_timeout),
        poll_ms: ms(request.poll_interval),
        on_cancel: request.on_cancel,
        logs,
        attached,
        attempt,
    }
}

fn migration_logs(
    ctx: &Ctx,
    request: &DeployRequest,
    source: &MigrationSource,
    task: &TaskView,
) -> Option<LogFollowSpec> {
    logs_or_say_why(
        ctx,
        log_spec(
            &source.td,
            &source.container,
            task.task_id(),
            TaskRole::Migrate,
            ms(request.poll_interval),
            ms(request.log_quiet_period),
        ),
        TaskRole::Migrate,
    )
}

async fn attach(
    ctx: &mut Ctx,
    request: &DeployRequest,
    source: &MigrationSource,
    task: TaskView,
    attempt: u32,
) -> Result<Followed, Stop> {
    ctx.emit(Event::TaskStarted {
        role: TaskRole::Migrate,
        task_arn: task.task_arn.clone(),
        attached: true,
        attempt,
    });
    let logs = migration_logs(ctx, request, source, &task);
    tasks::follow(
        ctx,
        task,
        &migration_follow(request, source, logs, true, attempt),
    )
    .await
}
