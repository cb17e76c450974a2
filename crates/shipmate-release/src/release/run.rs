//! `shipmate run`: any one-off command as an ECS task with the service's settings (or a given
//! task definition), followed to its end with its logs; its exit code is the command's.

use crate::error::ReleaseError;
use crate::event::{Event, Phase, TaskRole};
use crate::plan::choose_container;
use crate::task::TaskOutcome;

use super::ctx::{Ctx, Stop, ms};
use super::tasks::{self, Follow, Started, log_spec, logs_or_say_why, spec_for_service};
use super::{RunRequest, cleanup};

pub(crate) async fn run(ctx: &mut Ctx, request: &RunRequest) -> Result<i32, ReleaseError> {
    match run_task(ctx, request).await {
        Ok(code) => Ok(code),
        Err(stop) => Err(cleanup(ctx, stop).await),
    }
}

async fn run_task(ctx: &mut Ctx, request: &RunRequest) -> Result<i32, Stop> {
    ctx.enter(Phase::Prepare);
    let service = match &request.service {
        Some(name) => Some(ctx.describe_service(name).await?),
        None => None,
    };
    let td_ref = match (&request.task_definition, &service) {
        (Some(td), _) => td.clone(),
        (None, Some(service)) => service.desired_revision().to_owned(),
        (None, None) => {
            return Err(Stop::Error(ReleaseError::Invalid(
                "give --service or --task-definition".to_owned(),
            )));
        }
    };
    let td = ctx.describe_task_definition(&td_ref).await?;
    let container = choose_container(&td.arn, &td.containers, request.container.as_deref())
        .map_err(|e| Stop::Error(e.into()))?
        .name
        .clone();
    ctx.report.task_definition = Some(td.arn.clone());
    ctx.report.container = Some(container.clone());
    let mut spec = spec_for_service(
        service.as_ref(),
        &td.arn,
        &container,
        request.command.clone(),
        request.launch_type.as_deref(),
        request.allow_spot,
    );
    spec.cpu = request.cpu;
    spec.memory = request.memory;
    spec.started_by = "shipmate/run".to_owned();

    ctx.enter(Phase::Run);
    let task = match tasks::run_task(ctx, spec, TaskRole::Run).await? {
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
        role: TaskRole::Run,
        task_arn: task.task_arn.clone(),
        attached: false,
        attempt: 0,
    });
    let logs = logs_or_say_why(
        ctx,
        log_spec(
            &td,
            &container,
            task.task_id(),
            TaskRole::Run,
            ms(request.poll_interval),
            ms(request.log_quiet_period),
        ),
        TaskRole::Run,
    );
    let followed = tasks::follow(
        ctx,
        task,
        &Follow {
            role: TaskRole::Run,
            timeout_ms: ms(request.timeout),
            poll_ms: ms(request.poll_interval),
            on_cancel: request.on_cancel,
            logs,
            attached: false,
            attempt: 0,
        },
    )
    .await?;
    ctx.await_logs().await?;
    match followed.outcome {
        TaskOutcome::Succeeded => Ok(0),
        // The command's own exit code is the answer, success or not.
        TaskOutcome::Exited { exit_code, .. } => Ok(exit_code),
        TaskOutcome::FailedToStart { .. } => match tasks::gate(TaskRole::Run, &followed) {
            Err(error) => Err(Stop::Error(error)),
            Ok(()) => Ok(0),
        },
    }
}
