//! One-off tasks (the migration, the post-deploy command, `shipmate run`): start one, follow it
//! and its log stream to the end, and the gate over how it ended.

use crate::config::OnCancel;
use crate::error::ReleaseError;
use crate::event::{Event, TaskRole};
use crate::io::{Command, LogFollowSpec, Observation, TaskDefinitionView, TaskSpec};
use crate::plan::{Launch, migration_launch};
use crate::report::{TaskReport, task_console_url};
use crate::service::ServiceView;
use crate::task::{TaskOutcome, TaskProgress, TaskView, assess_task_for, status_steps};

use super::ctx::{Ctx, Running, Stop};

/// How long a stopped task may take to reach STOPPED before shipmate stops waiting for it:
/// Fargate's longest stopTimeout (120 s) plus a margin.
pub(crate) const STOP_WAIT_MS: i64 = 150_000;

/// What RunTask answered.
pub(crate) enum Started {
    Task(TaskView),
    /// The client token belongs to these tasks, started with other parameters.
    Conflict(Vec<String>),
}

/// A task followed to its end.
#[derive(Debug, Clone)]
pub(crate) struct Followed {
    pub(crate) task: TaskView,
    pub(crate) outcome: TaskOutcome,
    pub(crate) duration_ms: u64,
}

/// How to follow a task.
#[derive(Debug, Clone)]
pub(crate) struct Follow {
    pub(crate) role: TaskRole,
    /// The container whose exit code is the gate (`None`: every essential one).
    pub(crate) container: Option<String>,
    pub(crate) timeout_ms: i64,
    pub(crate) poll_ms: i64,
    pub(crate) on_cancel: OnCancel,
    pub(crate) logs: Option<LogFollowSpec>,
    /// For the report: the task was started by an earlier run of the release.
    pub(crate) attached: bool,
    pub(crate) attempt: u32,
}

/// The log stream of `container`'s task, or why it cannot be read.
pub(crate) fn log_spec(
    td: &TaskDefinitionView,
    container: &str,
    task_id: &str,
    role: TaskRole,
    poll_ms: i64,
    quiet_ms: i64,
) -> Result<LogFollowSpec, String> {
    let choice = td
        .containers
        .iter()
        .find(|c| c.name == container)
        .ok_or_else(|| format!("no container `{container}`"))?;
    let logs = choice
        .logs
        .as_ref()
        .ok_or_else(|| format!("container `{container}` has no logConfiguration"))?;
    if logs.driver != "awslogs" {
        return Err(format!(
            "container `{container}` logs with `{}`, not awslogs",
            logs.driver
        ));
    }
    let group = logs
        .group
        .clone()
        .ok_or_else(|| format!("container `{container}` has no awslogs-group"))?;
    let stream = match logs.stream_prefix.as_deref() {
        Some(prefix) if !prefix.is_empty() => format!("{prefix}/{container}/{task_id}"),
        _ => format!("{container}/{task_id}"),
    };
    Ok(LogFollowSpec {
        role,
        group,
        stream,
        poll_ms,
        quiet_ms,
        cap_ms: LOG_DRAIN_CAP_MS,
    })
}

/// How long the drain may go on past its quiet period while lines keep arriving.
pub const LOG_DRAIN_CAP_MS: i64 = 60_000;

/// RunTask parameters for a one-off task with the service's own network and launch settings.
pub(crate) fn spec_for_service(
    service: Option<&ServiceView>,
    task_definition: &str,
    container: &str,
    command: Vec<String>,
    launch_override: Option<&str>,
    allow_spot: bool,
) -> TaskSpec {
    let launch = match service {
        Some(service) => migration_launch(
            service.launch_type.as_deref(),
            &service.capacity,
            launch_override,
            allow_spot,
        ),
        None => launch_override.map_or(Launch::ClusterDefault, |t| Launch::LaunchType {
            launch_type: t.to_owned(),
        }),
    };
    TaskSpec {
        task_definition: task_definition.to_owned(),
        container: container.to_owned(),
        command: Some(command),
        cpu: None,
        memory: None,
        environment: Vec::new(),
        task_cpu: None,
        task_memory: None,
        task_role_arn: None,
        execution_role_arn: None,
        network: service.and_then(|s| s.network.clone()),
        launch,
        platform_version: service.and_then(|s| s.platform_version.clone()),
        started_by: String::new(),
        client_token: None,
    }
}

pub(crate) async fn run_task(
    ctx: &mut Ctx,
    spec: TaskSpec,
    role: TaskRole,
) -> Result<Started, Stop> {
    match ctx.call(Command::RunTask(Box::new(spec))).await? {
        Observation::TaskStarted(task) => Ok(Started::Task(*task)),
        Observation::RunTaskConflict(arns) => Ok(Started::Conflict(arns)),
        Observation::RunTaskFailed(reasons) => Err(Stop::Error(ReleaseError::Placement {
            role: role.label(),
            cluster: ctx.cluster.clone(),
            reason: if reasons.is_empty() {
                "RunTask returned no task".to_owned()
            } else {
                reasons.join("; ")
            },
        })),
        other => Err(ctx.unexpected("RunTask", &other)),
    }
}

/// A one-off task run without a client token: the post-deploy command, `shipmate run`.
pub(crate) struct OneOff<'a> {
    pub(crate) role: TaskRole,
    pub(crate) spec: TaskSpec,
    /// Its task definition (the container's log configuration).
    pub(crate) td: &'a TaskDefinitionView,
    pub(crate) timeout_ms: i64,
    pub(crate) poll_ms: i64,
    pub(crate) quiet_ms: i64,
    pub(crate) on_cancel: OnCancel,
}

/// Starts a one-off task and follows it, with its logs, to its end.
pub(crate) async fn run_one_off(ctx: &mut Ctx, one_off: OneOff<'_>) -> Result<Followed, Stop> {
    let role = one_off.role;
    let container = one_off.spec.container.clone();
    let task = match run_task(ctx, one_off.spec, role).await? {
        Started::Task(task) => task,
        Started::Conflict(arns) => {
            return Err(ctx.fault(crate::fault::Fault::unexpected(
                "RunTask",
                format!(
                    "ConflictException without a client token (tasks {})",
                    arns.join(", ")
                ),
            )));
        }
    };
    ctx.emit(Event::TaskStarted {
        role,
        task_arn: task.task_arn.clone(),
        attached: false,
        attempt: 0,
    });
    let logs = logs_or_say_why(
        ctx,
        log_spec(
            one_off.td,
            &container,
            task.task_id(),
            role,
            one_off.poll_ms,
            one_off.quiet_ms,
        ),
        role,
    );
    follow(
        ctx,
        task,
        &Follow {
            role,
            container: Some(container.clone()),
            timeout_ms: one_off.timeout_ms,
            poll_ms: one_off.poll_ms,
            on_cancel: one_off.on_cancel,
            logs,
            attached: false,
            attempt: 0,
        },
    )
    .await
}

/// Follows `task` until it stops (or its timeout, after which it is stopped), with its logs.
pub(crate) async fn follow(
    ctx: &mut Ctx,
    mut task: TaskView,
    follow: &Follow,
) -> Result<Followed, Stop> {
    let role = follow.role;
    ctx.running = Some(Running {
        role,
        task_arn: task.task_arn.clone(),
        on_cancel: follow.on_cancel,
    });
    if let Some(spec) = follow.logs.clone() {
        start_logs(ctx, &task.task_arn, spec).await?;
    }
    let started = ctx.now();
    // In the report from the start: a release that ends early still names its task.
    ctx.set_task_report(
        role,
        TaskReport {
            task_arn: task.task_arn.clone(),
            attached: follow.attached,
            attempt: follow.attempt,
            exit_code: None,
            stop_code: None,
            stopped_reason: None,
            outcome: None,
            duration_ms: 0,
            log_lines: 0,
            console_url: task_console_url(&task.task_arn, &ctx.cluster),
        },
    );
    let mut last_status = String::new();
    loop {
        for status in status_steps(&last_status, &task) {
            ctx.emit(Event::TaskStatus {
                role,
                task_arn: task.task_arn.clone(),
                last_status: status,
            });
        }
        last_status.clone_from(&task.last_status);
        if let TaskProgress::Finished(outcome) = assess_task_for(&task, follow.container.as_deref())
        {
            ctx.running = None;
            let at = task.stopped_at.unwrap_or_else(|| ctx.now());
            notify_stopped(ctx, role, at).await?;
            let duration_ms = match (task.started_at, task.stopped_at) {
                (Some(start), Some(stop)) if stop >= start => {
                    u64::try_from(stop - start).unwrap_or(0)
                }
                _ => u64::try_from(ctx.now() - started).unwrap_or(0),
            };
            ctx.emit(Event::TaskFinished {
                role,
                task_arn: task.task_arn.clone(),
                outcome: outcome.clone(),
                duration_ms,
            });
            let followed = Followed {
                task,
                outcome,
                duration_ms,
            };
            ctx.set_task_report(
                role,
                task_report(&ctx.cluster, &followed, follow.attached, follow.attempt),
            );
            return Ok(followed);
        }
        if ctx.now() - started > follow.timeout_ms {
            let reason = format!("shipmate: {} timed out", role.label());
            ctx.stop_task(&task.task_arn, &reason).await?;
            let arn = task.task_arn.clone();
            wait_stopped(ctx, &arn, role, follow.poll_ms).await?;
            ctx.running = None;
            return Err(Stop::Error(ReleaseError::TaskTimeout {
                role,
                task_arn: arn,
                after: std::time::Duration::from_millis(
                    u64::try_from(follow.timeout_ms).unwrap_or(0),
                ),
                stopped: true,
            }));
        }
        ctx.sleep(follow.poll_ms).await?;
        let arn = task.task_arn.clone();
        task = ctx
            .describe_tasks(std::slice::from_ref(&arn))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                ctx.fault(crate::fault::Fault::unexpected(
                    "DescribeTasks",
                    format!("task {arn} is unknown although it has not stopped"),
                ))
            })?;
    }
}

pub(crate) async fn start_logs(
    ctx: &mut Ctx,
    task_arn: &str,
    spec: LogFollowSpec,
) -> Result<(), Stop> {
    let role = spec.role;
    match ctx
        .call(Command::FollowLogs {
            task_arn: task_arn.to_owned(),
            spec,
        })
        .await?
    {
        Observation::Noted => {
            ctx.following.push(role);
            Ok(())
        }
        other => Err(ctx.unexpected("GetLogEvents", &other)),
    }
}

async fn notify_stopped(ctx: &mut Ctx, role: TaskRole, at_ms: i64) -> Result<(), Stop> {
    if !ctx.following.contains(&role) {
        return Ok(());
    }
    match ctx.call(Command::TaskStopped { role, at_ms }).await? {
        Observation::Noted => Ok(()),
        other => Err(ctx.unexpected("GetLogEvents", &other)),
    }
}

/// After StopTask: waits (bounded) for the task to reach STOPPED, so that nothing is still
/// running when the lock is let go, then lets its log follower drain.
pub(crate) async fn wait_stopped(
    ctx: &mut Ctx,
    task_arn: &str,
    role: TaskRole,
    poll_ms: i64,
) -> Result<Option<TaskView>, Stop> {
    let deadline = ctx.now() + STOP_WAIT_MS;
    loop {
        let task = ctx
            .describe_tasks(&[task_arn.to_owned()])
            .await?
            .into_iter()
            .next();
        let stopped = task.as_ref().is_none_or(TaskView::is_stopped);
        if stopped || ctx.now() >= deadline {
            if stopped {
                let at = task
                    .as_ref()
                    .and_then(|t| t.stopped_at)
                    .unwrap_or_else(|| ctx.now());
                if let Some(task) = &task {
                    ctx.record_stop(role, task);
                }
                notify_stopped(ctx, role, at).await?;
            }
            return Ok(task);
        }
        ctx.sleep(poll_ms).await?;
    }
}

/// The gate: every essential container exited 0.
pub(crate) fn gate(role: TaskRole, followed: &Followed) -> Result<(), ReleaseError> {
    match &followed.outcome {
        TaskOutcome::Succeeded => Ok(()),
        TaskOutcome::FailedToStart { cause, reason } => Err(ReleaseError::TaskFailedToStart {
            role,
            task_arn: followed.task.task_arn.clone(),
            cause: *cause,
            reason: reason.clone(),
        }),
        TaskOutcome::Exited {
            container,
            exit_code,
            cause,
            reason,
        } => Err(ReleaseError::TaskExited {
            role,
            task_arn: followed.task.task_arn.clone(),
            container: container.clone(),
            exit_code: *exit_code,
            cause: *cause,
            reason: reason.clone(),
        }),
    }
}

/// The report of a followed task (its log lines are counted when its logs are drained).
pub(crate) fn task_report(
    cluster: &str,
    followed: &Followed,
    attached: bool,
    attempt: u32,
) -> TaskReport {
    let exit_code = match &followed.outcome {
        TaskOutcome::Exited { exit_code, .. } => Some(*exit_code),
        TaskOutcome::Succeeded => Some(0),
        TaskOutcome::FailedToStart { .. } => None,
    };
    TaskReport {
        task_arn: followed.task.task_arn.clone(),
        attached,
        attempt,
        exit_code,
        stop_code: followed.task.stop_code.clone(),
        stopped_reason: followed.task.stopped_reason.clone(),
        outcome: Some(followed.outcome.clone()),
        duration_ms: followed.duration_ms,
        log_lines: 0,
        console_url: task_console_url(&followed.task.task_arn, cluster),
    }
}

/// Where the logs of a task are not streamed, say why once.
pub(crate) fn logs_or_say_why(
    ctx: &Ctx,
    spec: Result<LogFollowSpec, String>,
    role: TaskRole,
) -> Option<LogFollowSpec> {
    match spec {
        Ok(spec) => Some(spec),
        Err(reason) => {
            ctx.emit(Event::ServiceEvent {
                message: format!(
                    "logs of the {} task are not streamed: {reason}",
                    role.label()
                ),
            });
            None
        }
    }
}
