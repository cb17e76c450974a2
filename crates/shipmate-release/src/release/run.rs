//! `shipmate run`: any one-off command as an ECS task with the service's settings (or a given
//! task definition), followed to its end with its logs; its exit code is the command's.

use crate::error::ReleaseError;
use crate::event::{Phase, TaskRole};
use crate::plan::choose_container;
use crate::task::TaskOutcome;

use super::ctx::{Ctx, Stop, ms};
use super::tasks::{self, OneOff, spec_for_service};
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
    let followed = tasks::run_one_off(
        ctx,
        OneOff {
            role: TaskRole::Run,
            spec,
            td: &td,
            timeout_ms: ms(request.timeout),
            poll_ms: ms(request.poll_interval),
            quiet_ms: ms(request.log_quiet_period),
            on_cancel: request.on_cancel,
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
