//! `shipmate rollback` of one or several services: a release too (it changes the code that runs
//! against the database), so it takes the lock; each service's target is the last revision that
//! was really live before the current one, from the ledger, never merely the previous registered
//! revision.

use crate::error::ReleaseError;
use crate::event::{Event, Phase};
use crate::ledger::{self, Entry, EntryOutcome, Kind, Record, State};
use crate::plan::choose_container;
use crate::report::{DeploymentReport, service_console_url};
use crate::service::{ServiceView, default_failure_limit};

use super::ctx::{Ctx, Stop, ms};
use super::inspect::newest_revision;
use super::lock::{self, LockRequest};
use super::rollout::{self, Rollout, RolloutEnd, Seen, SeenAll, service_report};
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

/// Where each service goes: `--to` (one service), or the ledger's last live revision before
/// the one live now.
async fn targets(
    ctx: &mut Ctx,
    request: &RollbackRequest,
    family: &str,
    below: i32,
    live: &[(String, String)],
) -> Result<Vec<(String, String)>, Stop> {
    if let Some(to) = &request.to {
        let arn = ctx.describe_task_definition(to).await?.arn;
        return Ok(live
            .iter()
            .map(|(service, _)| (service.clone(), arn.clone()))
            .collect());
    }
    let wanted = live.to_vec();
    let entries: Vec<Entry> = lock::history(ctx, family, below, |seen| {
        wanted
            .iter()
            .all(|(service, now)| ledger::rollback_target(seen, service, now).is_some())
    })
    .await?;
    live.iter()
        .map(|(service, now)| {
            ledger::rollback_target(&entries, service, now)
                .map(|to| (service.clone(), to.to_owned()))
                .ok_or_else(|| {
                    Stop::Error(ReleaseError::NoRollbackTarget {
                        service: service.clone(),
                        live: now.clone(),
                    })
                })
        })
        .collect()
}

/// Refuses (without `--force`) a rollback to code older than a release whose contract phase
/// applied its drops and renames: that code expects what is gone.
async fn refuse_past_contract(
    ctx: &mut Ctx,
    request: &RollbackRequest,
    family: &str,
    below: i32,
    targets: &[(String, String)],
) -> Result<(), Stop> {
    if request.force {
        return Ok(());
    }
    let entries: Vec<Entry> = lock::history(ctx, family, below, |seen| {
        targets.iter().all(|(service, to)| {
            seen.iter().filter_map(|e| e.record.as_ref()).any(|r| {
                r.move_of(service)
                    .is_some_and(|m| m.sent && m.to.as_deref() == Some(to.as_str()))
            })
        })
    })
    .await?;
    for (service, to) in targets {
        if let Some(release) = ledger::contract_after(&entries, service, to) {
            return Err(Stop::Error(ReleaseError::RollbackPastContract {
                service: service.clone(),
                to: to.clone(),
                release: release.release_id.clone(),
            }));
        }
    }
    Ok(())
}

async fn run(ctx: &mut Ctx, request: &RollbackRequest) -> Result<(), Stop> {
    if request.to.is_some() && request.services.len() > 1 {
        return Err(Stop::Error(ReleaseError::Invalid(
            "--to names one revision: give it with one --service".to_owned(),
        )));
    }
    ctx.enter(Phase::Prepare);
    let services = ctx.active_services(&request.services).await?;
    for view in &services {
        if let Some(controller) = crate::deployment::controller_refusal(&view.shape, false) {
            return Err(Stop::Error(ReleaseError::Controller {
                cluster: ctx.cluster.clone(),
                service: view.service_name.clone(),
                controller: controller.to_owned(),
            }));
        }
    }
    if let Some(first) = services.first() {
        ctx.report.service_console_url =
            service_console_url(&first.service_arn, &request.cluster, &first.service_name);
    }
    let family = family_of_service(ctx, request.lock.key.as_deref(), &services[0]).await?;
    let live = |views: &[ServiceView]| -> Vec<(String, String)> {
        views
            .iter()
            .map(|v| (v.service_name.clone(), v.live_revision().to_owned()))
            .collect()
    };
    if request.dry_run {
        let newest = newest_revision(ctx, &family).await?;
        let now = live(&services);
        let planned = targets(ctx, request, &family, newest.map_or(1, |n| n + 1), &now).await?;
        refuse_past_contract(ctx, request, &family, newest.map_or(1, |n| n + 1), &planned).await?;
        for ((service, from), (_, to)) in now.iter().zip(&planned) {
            record_service(ctx, service, from, to);
            ctx.emit(Event::RollbackPlanned {
                service: service.clone(),
                from: from.clone(),
                to: to.clone(),
            });
        }
        return Ok(());
    }

    ctx.enter(Phase::Lock);
    let mut record = Record::new(
        "rollback",
        Kind::Rollback,
        &request.cluster,
        &request.services,
    );
    // The same rollback run again (a killed job re-run) carries on the interrupted one.
    record.release_id = crate::ids::rollback_id(
        &request.cluster,
        &request.services.join(","),
        request.to.as_deref(),
    );
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

    // The services may have moved while we waited: decide on what is live now.
    ctx.enter(Phase::Prepare);
    let services = ctx.active_services(&request.services).await?;
    let held = ctx.held.clone().expect("the lock is held");
    let recorded: Option<Vec<(String, String, String)>> = held
        .resumed
        .then(|| {
            // Resumed: the interrupted run decided already, and may have half done it.
            held.record
                .moves
                .iter()
                .map(|m| Some((m.service.clone(), m.from.clone()?, m.to.clone()?)))
                .collect()
        })
        .flatten();
    let moves: Vec<(String, String, String)> = match recorded {
        Some(moves) => moves,
        None => {
            let now = live(&services);
            let planned = targets(ctx, request, &family, held.entry.revision, &now).await?;
            refuse_past_contract(ctx, request, &family, held.entry.revision, &planned).await?;
            now.into_iter()
                .zip(planned)
                .map(|((service, from), (_, to))| (service, from, to))
                .collect()
        }
    };
    let mut image = None;
    for (service, from, to) in &moves {
        record_service(ctx, service, from, to);
        if image.is_none() {
            image = ctx
                .describe_task_definition(to)
                .await?
                .containers
                .first()
                .map(|c| c.image.clone());
        }
    }
    ctx.record(|record| {
        for (service, from, to) in &moves {
            record.set_move(service, Some(from.clone()), Some(to.clone()));
        }
        record.image.clone_from(&image);
        record.state = State::Deploying;
    })
    .await?;

    ctx.enter(Phase::Rollback);
    let mut rollouts = Vec::new();
    let mut sent_to: Vec<String> = Vec::new();
    let mut seen = SeenAll::new();
    for ((service, from, to), view) in moves.iter().zip(&services) {
        if view.desired_revision() == to && view.live_revision() == to {
            ctx.emit(Event::AlreadyLive {
                service: service.clone(),
                task_definition: to.clone(),
            });
            service_report(ctx, service).outcome = "already_live".to_owned();
            continue;
        }
        ctx.emit(Event::RollbackStarted {
            service: service.clone(),
            to: to.clone(),
            reason: "requested".to_owned(),
        });
        seen.insert(service.clone(), Seen::from_service(view));
        let mut record = view.current_service_deployment.clone();
        if view.desired_revision() != to {
            let updated = lock::update_service(ctx, &lock_request, service, to).await?;
            record.clone_from(&updated.current_service_deployment);
            sent_to.push(service.clone());
            let deployment_id = updated.deployment_of(to).map(|d| d.id.clone());
            ctx.emit(Event::ServiceUpdated {
                service: service.clone(),
                task_definition: to.clone(),
                deployment_id: deployment_id.clone(),
            });
            let report = DeploymentReport {
                id: deployment_id,
                task_definition: to.clone(),
                rollout_state: None,
                reason: None,
                rolled_back_to: None,
            };
            if ctx.report.services.first().map(|s| s.service.as_str()) == Some(service.as_str()) {
                ctx.report.deployment = Some(report.clone());
            }
            service_report(ctx, service).deployment = Some(report);
        }
        service_report(ctx, service).outcome = "updated".to_owned();
        rollouts.push(Rollout {
            service: service.clone(),
            target: to.clone(),
            from: from.clone(),
            failure_limit: view.circuit_breaker.is_none().then(|| {
                request
                    .max_failed_tasks
                    .unwrap_or_else(|| default_failure_limit(view.desired_count))
            }),
            record,
            until_deployed: false,
        });
    }
    if !sent_to.is_empty() {
        // One record for all the updates, as a deploy's wave does.
        let now = ctx.now();
        ctx.record(|record| {
            record.live_at.get_or_insert(now);
            for service in &sent_to {
                record.mark_sent(service);
            }
        })
        .await?;
    }
    if rollouts.is_empty() {
        return lock::close(ctx, EntryOutcome::AlreadyLive).await;
    }
    if !request.wait {
        return lock::close(ctx, EntryOutcome::Updated).await;
    }
    let ends = rollout::follow_all(
        ctx,
        &rollouts,
        &mut seen,
        ms(request.timeout),
        ms(request.poll_interval),
        false,
    )
    .await?;
    let failure = ends.iter().find(|(_, end)| !end.is_success());
    let (outcome, error) = match failure {
        None => {
            for section in &mut ctx.report.services {
                if section.outcome == "updated" {
                    section.outcome = "completed".to_owned();
                }
            }
            (EntryOutcome::Succeeded, None)
        }
        Some((service, RolloutEnd::Replaced { by })) => (
            EntryOutcome::Superseded,
            Some(ReleaseError::Replaced {
                service: service.clone(),
                by: by.clone(),
            }),
        ),
        Some((service, RolloutEnd::TimedOut)) => (
            EntryOutcome::TimedOut,
            Some(ReleaseError::DeployTimeout {
                service: service.clone(),
                task_definition: moves
                    .iter()
                    .find(|(s, _, _)| s == service)
                    .map(|(_, _, to)| to.clone())
                    .unwrap_or_default(),
                after: request.timeout,
                rolled_back: None,
            }),
        ),
        Some((service, RolloutEnd::Failed { reason })) => (
            EntryOutcome::DeploymentFailed,
            Some(ReleaseError::DeploymentFailed {
                service: service.clone(),
                reason: reason.clone(),
                rolled_back_to: None,
                still_trying: true,
            }),
        ),
        Some((service, RolloutEnd::RolledBackByEcs { to, reason })) => (
            EntryOutcome::DeploymentFailed,
            Some(ReleaseError::DeploymentFailed {
                service: service.clone(),
                reason: reason.clone(),
                rolled_back_to: Some(to.clone()),
                still_trying: false,
            }),
        ),
        Some((_, RolloutEnd::Completed | RolloutEnd::Deployed)) => (EntryOutcome::Succeeded, None),
    };
    lock::close(ctx, outcome).await?;
    match error {
        None => Ok(()),
        Some(error) => Err(Stop::Error(error)),
    }
}

/// The report's view of one service's rollback: from what is live to the target.
fn record_service(ctx: &mut Ctx, service: &str, from: &str, to: &str) {
    if ctx.report.services.iter().all(|s| s.service != service) && ctx.report.services.is_empty() {
        ctx.report.previous_task_definition = Some(from.to_owned());
        ctx.report.task_definition = Some(to.to_owned());
    }
    let section = service_report(ctx, service);
    section.previous_task_definition = Some(from.to_owned());
    section.task_definition = Some(to.to_owned());
}
