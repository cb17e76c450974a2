//! `shipmate rollback`: a release too (it changes the code that runs against the database), so
//! it takes the lock; its target is the last revision that was really live before the current
//! one, from the ledger, never merely the previous registered revision.

use crate::error::ReleaseError;
use crate::event::{Event, Phase};
use crate::ledger::{self, Entry, EntryOutcome, Kind, Record, State};
use crate::plan::choose_container;
use crate::report::{DeploymentReport, service_console_url};
use crate::service::{ServiceView, default_failure_limit};

use super::ctx::{Ctx, Stop, ms};
use super::inspect::newest_revision;
use super::lock::{self, LockRequest};
use super::rollout::{self, Rollout, RolloutEnd, Seen};
use super::{RollbackRequest, cleanup};

pub(crate) async fn rollback(ctx: &mut Ctx, request: &RollbackRequest) -> Result<(), ReleaseError> {
    match run(ctx, request).await {
        Ok(()) => Ok(()),
        Err(stop) => Err(cleanup(ctx, stop).await),
    }
}

/// The ledger family of a service: the configured key, or the one derived from the image its
/// released container runs now.
pub(crate) async fn family_of_service(
    ctx: &mut Ctx,
    key: Option<&str>,
    service: &ServiceView,
) -> Result<String, Stop> {
    if let Some(key) = key {
        return Ok(ledger::family(key));
    }
    let td = ctx
        .describe_task_definition(service.desired_revision())
        .await?;
    let image = choose_container(&td.arn, &td.containers, None)
        .map(|c| c.image.clone())
        .ok()
        .or_else(|| td.containers.first().map(|c| c.image.clone()))
        .unwrap_or_default();
    Ok(ledger::family(&ledger::default_key(&ctx.cluster, &image)))
}

/// Where the rollback goes: `--to`, or the ledger's last live revision before `live`.
async fn target(
    ctx: &mut Ctx,
    request: &RollbackRequest,
    family: &str,
    below: i32,
    live: &str,
) -> Result<String, Stop> {
    if let Some(to) = &request.to {
        return Ok(ctx.describe_task_definition(to).await?.arn);
    }
    let service = request.service.clone();
    let live_owned = live.to_owned();
    let entries: Vec<Entry> = lock::history(ctx, family, below, |seen| {
        ledger::rollback_target(seen, &service, &live_owned).is_some()
    })
    .await?;
    ledger::rollback_target(&entries, &request.service, live)
        .map(str::to_owned)
        .ok_or_else(|| {
            Stop::Error(ReleaseError::NoRollbackTarget {
                service: request.service.clone(),
                live: live.to_owned(),
            })
        })
}

async fn run(ctx: &mut Ctx, request: &RollbackRequest) -> Result<(), Stop> {
    ctx.enter(Phase::Prepare);
    let service = ctx.active_service(&request.service).await?;
    ctx.report.service_console_url =
        service_console_url(&service.service_arn, &request.cluster, &request.service);
    let family = family_of_service(ctx, request.lock.key.as_deref(), &service).await?;
    if request.dry_run {
        let live = service.live_revision().to_owned();
        let newest = newest_revision(ctx, &family).await?;
        let to = target(ctx, request, &family, newest.map_or(1, |n| n + 1), &live).await?;
        ctx.report.previous_task_definition = Some(live.clone());
        ctx.report.task_definition = Some(to.clone());
        ctx.emit(Event::RollbackPlanned { from: live, to });
        return Ok(());
    }

    ctx.enter(Phase::Lock);
    let mut record = Record::new(
        "rollback",
        Kind::Rollback,
        &request.cluster,
        std::slice::from_ref(&request.service),
    );
    // The same rollback run again (a killed job re-run) carries on the interrupted one.
    record.release_id =
        crate::ids::rollback_id(&request.cluster, &request.service, request.to.as_deref());
    record.by.clone_from(&request.lock.by);
    ctx.report.release_id = Some(record.release_id.clone());
    let lock_request = LockRequest {
        family: family.clone(),
        record,
        timeout: request.lock.timeout,
        lease: request.lock.lease,
        poll_ms: ms(request.poll_interval),
    };
    lock::acquire(ctx, &lock_request).await?;

    // The service may have moved while we waited: decide on what is live now.
    ctx.enter(Phase::Prepare);
    let service = ctx.active_service(&request.service).await?;
    let held = ctx.held.clone().expect("the lock is held");
    let (live, to) = match (&held.record.from, &held.record.to) {
        // Resumed: the interrupted run decided already, and may have half done it.
        (Some(from), Some(to)) if held.resumed => (from.clone(), to.clone()),
        _ => {
            let live = service.live_revision().to_owned();
            let to = target(ctx, request, &family, held.entry.revision, &live).await?;
            (live, to)
        }
    };
    ctx.report.previous_task_definition = Some(live.clone());
    ctx.report.task_definition = Some(to.clone());
    let image = ctx
        .describe_task_definition(&to)
        .await?
        .containers
        .first()
        .map(|c| c.image.clone());
    ctx.record(|record| {
        record.from = Some(live.clone());
        record.to = Some(to.clone());
        record.image.clone_from(&image);
        record.state = State::Deploying;
    })
    .await?;
    if service.desired_revision() == to && service.live_revision() == to {
        ctx.emit(Event::AlreadyLive {
            task_definition: to,
        });
        return lock::close(ctx, EntryOutcome::AlreadyLive).await;
    }

    ctx.enter(Phase::Rollback);
    ctx.emit(Event::RollbackStarted {
        to: to.clone(),
        reason: "requested".to_owned(),
    });
    let updated = lock::update_service(ctx, &lock_request, &request.service, &to).await?;
    let now = ctx.now();
    ctx.record(|record| record.live_at = Some(now)).await?;
    let deployment_id = updated.deployment_of(&to).map(|d| d.id.clone());
    ctx.emit(Event::ServiceUpdated {
        task_definition: to.clone(),
        deployment_id: deployment_id.clone(),
    });
    ctx.report.deployment = Some(DeploymentReport {
        id: deployment_id,
        task_definition: to.clone(),
        rollout_state: None,
        reason: None,
        rolled_back_to: None,
    });
    if !request.wait {
        return lock::close(ctx, EntryOutcome::Updated).await;
    }
    let mut seen = Seen::from_service(&updated);
    let failure_limit = service.circuit_breaker.is_none().then(|| {
        request
            .max_failed_tasks
            .unwrap_or_else(|| default_failure_limit(service.desired_count))
    });
    let end = rollout::follow(
        ctx,
        &Rollout {
            service: &request.service,
            target: &to,
            from: &live,
            timeout_ms: ms(request.timeout),
            poll_ms: ms(request.poll_interval),
            failure_limit,
        },
        &mut seen,
    )
    .await?;
    let (outcome, error) = match end {
        RolloutEnd::Completed => (EntryOutcome::Succeeded, None),
        RolloutEnd::Failed { reason } => (
            EntryOutcome::DeploymentFailed,
            Some(ReleaseError::DeploymentFailed {
                service: request.service.clone(),
                reason,
                rolled_back_to: None,
                still_trying: failure_limit.is_some(),
            }),
        ),
        RolloutEnd::RolledBackByEcs { to, reason } => (
            EntryOutcome::DeploymentFailed,
            Some(ReleaseError::DeploymentFailed {
                service: request.service.clone(),
                reason,
                rolled_back_to: Some(to),
                still_trying: false,
            }),
        ),
        RolloutEnd::Replaced { by } => (
            EntryOutcome::Superseded,
            Some(ReleaseError::Replaced {
                service: request.service.clone(),
                by,
            }),
        ),
        RolloutEnd::TimedOut => (
            EntryOutcome::TimedOut,
            Some(ReleaseError::DeployTimeout {
                service: request.service.clone(),
                task_definition: to.clone(),
                after: request.timeout,
                rolled_back: None,
            }),
        ),
    };
    lock::close(ctx, outcome).await?;
    match error {
        None => Ok(()),
        Some(error) => Err(Stop::Error(error)),
    }
}
