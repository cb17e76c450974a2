//! The pause-hook gate (`--gate pause-hook`): ECS starts the release's deployment with a PAUSE
//! hook at PRE_SCALE_UP added in the same UpdateService, the migration runs from the revision
//! ECS is deploying while it waits, and the deployment is then continued or rolled back. The
//! hook's own timeout (action ROLLBACK) is the dead man's switch when shipmate dies; shipmate
//! removes its hook as soon as its deployment is continued or rolled back, so that no later
//! deployment (an IaC apply, a forced deployment) waits for someone who is not coming.

use crate::config::OnCancel;
use crate::deployment::{DeploymentProgress, PAUSE_STAGE, assess_deployment};
use crate::error::ReleaseError;
use crate::event::Event;
use crate::io::{Command, Observation};
use crate::ledger::State;
use crate::service::ServiceView;

use super::DeployRequest;
use super::ctx::{Ctx, Stop, ms};
use super::deploy::Target;
use super::lock::{self, LockRequest};
use super::rollout::{Seen, SeenAll, show_record};

/// One service's deployment, started paused by this release.
#[derive(Debug, Clone)]
pub(crate) struct Paused {
    pub(crate) service: String,
    /// The service-deployment record.
    pub(crate) arn: String,
    /// Our hook's id once ECS waits at it.
    pub(crate) hook_id: Option<String>,
    /// The release's revision it deploys.
    pub(crate) task_definition: String,
    /// What SIGINT/SIGTERM does to it: roll it back (`stop`) or leave it to the hook's timeout.
    pub(crate) on_cancel: OnCancel,
}

/// How long ECS keeps the deployment paused before rolling it back on its own: the migration's
/// timeout plus a margin for the wait before it and its log drain, in whole minutes.
pub(crate) fn hook_timeout_minutes(request: &DeployRequest) -> i32 {
    const MARGIN_MINUTES: u64 = 5;
    let minutes = request.migrate_timeout.as_secs().div_ceil(60) + MARGIN_MINUTES;
    i32::try_from(minutes).unwrap_or(i32::MAX)
}

/// Whether ECS keeps service-deployment records here (the gate cannot work without them):
/// asked before anything changes.
pub(crate) async fn check_records(ctx: &mut Ctx, service: &str) -> Result<(), Stop> {
    match ctx.list_service_deployments(service).await? {
        Ok(_) => Ok(()),
        Err(reason) => Err(Stop::Error(ReleaseError::PauseRefused {
            service: service.to_owned(),
            reason: format!(
                "ECS's service-deployment records, which the gate follows, are not available ({reason})"
            ),
        })),
    }
}

/// Starts every service's deployment with our PAUSE hook and waits until ECS waits at it in
/// each, before any task of the new revision started.
pub(crate) async fn pause_all(
    ctx: &mut Ctx,
    request: &DeployRequest,
    lock_request: &LockRequest,
    targets: &[Target],
    views: &[ServiceView],
    release_id: &str,
    seen: &mut SeenAll,
) -> Result<(), Stop> {
    let timeout = hook_timeout_minutes(request);
    for target in targets {
        let Some(view) = views.iter().find(|v| v.service_name == target.service) else {
            continue;
        };
        if view.desired_revision() == target.td.arn {
            // Nothing to deploy (it runs the release's revision): nothing to pause.
            continue;
        }
        seen.insert(target.service.clone(), Seen::from_service(view));
        let hooks = view.shape.hooks_with_pause(release_id, timeout);
        let updated = lock::update_service_with_hooks(
            ctx,
            lock_request,
            &target.service,
            &target.td.arn,
            Some(hooks),
        )
        .await?;
        ctx.emit(Event::ServiceUpdated {
            service: target.service.clone(),
            task_definition: target.td.arn.clone(),
            deployment_id: updated.deployment_of(&target.td.arn).map(|d| d.id.clone()),
        });
        let Some(arn) = updated.current_service_deployment.clone() else {
            return Err(ctx.fault(crate::fault::Fault::unexpected(
                "UpdateService",
                format!(
                    "no currentServiceDeployment for service `{}` although ECS keeps records here",
                    target.service
                ),
            )));
        };
        ctx.paused.push(Paused {
            service: target.service.clone(),
            arn,
            hook_id: None,
            task_definition: target.td.arn.clone(),
            on_cancel: request.on_cancel,
        });
    }
    let sent: Vec<String> = ctx.paused.iter().map(|p| p.service.clone()).collect();
    if !sent.is_empty() {
        let now = ctx.now();
        ctx.record(|record| {
            record.live_at.get_or_insert(now);
            for service in &sent {
                record.mark_sent(service);
            }
            record.state = State::Migrating;
        })
        .await?;
    }

    let started = ctx.now();
    loop {
        let waiting: Vec<String> = ctx
            .paused
            .iter()
            .filter(|p| p.hook_id.is_none())
            .map(|p| p.arn.clone())
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        if ctx.now() - started > ms(request.deploy_timeout) {
            return Err(not_paused(
                ctx,
                format!(
                    "ECS did not reach {PAUSE_STAGE} within {}",
                    crate::duration::format_duration(request.deploy_timeout)
                ),
            ));
        }
        ctx.sleep(ms(request.poll_interval)).await?;
        let Some(records) = ctx.service_deployments(&waiting).await? else {
            return Err(not_paused(
                ctx,
                "ECS's service-deployment records stopped answering".to_owned(),
            ));
        };
        for record in records {
            let Some(index) = ctx.paused.iter().position(|p| p.arn == record.arn) else {
                continue;
            };
            let service = ctx.paused[index].service.clone();
            let seen = seen.entry(service.clone()).or_default();
            let progress = assess_deployment(&record);
            if let DeploymentProgress::Paused {
                stage: Some(stage),
                hook_ids,
            } = &progress
                && stage == PAUSE_STAGE
                && record.target_running + record.target_pending == 0
            {
                seen.ours.extend(hook_ids.iter().cloned());
                ctx.paused[index].hook_id = hook_ids.first().cloned();
            }
            show_record(ctx, &service, &record, seen);
            let started_tasks = record.target_running + record.target_pending > 0;
            match progress {
                DeploymentProgress::Paused { .. } if !started_tasks => {}
                DeploymentProgress::InProgress { stage }
                    if !started_tasks
                        && stage
                            .as_deref()
                            .is_none_or(|s| s == "RECONCILE_SERVICE" || s == PAUSE_STAGE) => {}
                DeploymentProgress::RolledBack { reason }
                | DeploymentProgress::Stopped { reason, .. } => {
                    return Err(not_paused(
                        ctx,
                        format!(
                            "the deployment of `{service}` ended before the migration: {reason}"
                        ),
                    ));
                }
                _ => {
                    // ECS went on without waiting (the sources disagree on PAUSE hooks for
                    // rolling deployments): no task of the new revision may run before the
                    // migration, so the deployment is rolled back.
                    return Err(not_paused(
                        ctx,
                        format!(
                            "ECS did not pause the deployment of `{service}` at {PAUSE_STAGE} (stage {}, {} task(s) of the new revision started)",
                            record.lifecycle_stage.as_deref().unwrap_or("unknown"),
                            record.target_running + record.target_pending
                        ),
                    ));
                }
            }
        }
    }
}

fn not_paused(ctx: &Ctx, reason: String) -> Stop {
    // The cleanup rolls back every deployment this release started (`ctx.paused`).
    let service = ctx
        .paused
        .first()
        .map(|p| p.service.clone())
        .unwrap_or_default();
    Stop::Error(ReleaseError::DeploymentFailed {
        service,
        reason,
        rolled_back_to: None,
        still_trying: false,
    })
}

/// Continues (`CONTINUE`) or rolls back (`ROLLBACK`) every deployment this release paused,
/// after taking its hook off the services (so that no deployment started from now on waits for
/// it). Deployments that never reached the hook are stopped with a rollback instead.
///
/// A deployment started over ours while it waited (a forced deployment, an infrastructure-as-
/// code apply) took our hook with it and waits too: one of the release's own revision gets the
/// release's verdict (its tasks must not start on a schema that failed to migrate); one of
/// another revision goes on, as whoever started it meant.
pub(crate) async fn resolve(ctx: &mut Ctx, action: &str) -> Result<(), Stop> {
    let paused = std::mem::take(&mut ctx.paused);
    if paused.is_empty() {
        return Ok(());
    }
    let services: Vec<String> = paused.iter().map(|p| p.service.clone()).collect();
    remove_hooks(ctx, services.clone()).await?;
    let views = ctx.describe_services(&services).await?;
    let mut arns: Vec<String> = paused.iter().map(|p| p.arn.clone()).collect();
    for view in &views {
        if let Some(current) = &view.current_service_deployment
            && !arns.contains(current)
        {
            arns.push(current.clone());
        }
    }
    let records = match ctx.service_deployments(&arns).await {
        Ok(Some(records)) => records,
        // Blind (the records do not answer): roll back what the release started all the same.
        Ok(None) | Err(Stop::Error(_)) if action == "ROLLBACK" => {
            return roll_back_blind(ctx, &paused).await;
        }
        Ok(None) => Vec::new(),
        Err(stop) => return Err(stop),
    };
    let mut first_error = None;
    for record in &records {
        let ours = paused.iter().find(|p| p.arn == record.arn);
        let view = match ours {
            Some(ours) => views.iter().find(|v| v.service_name == ours.service),
            None => views
                .iter()
                .find(|v| v.current_service_deployment.as_deref() == Some(record.arn.as_str())),
        };
        let Some(view) = view else {
            continue;
        };
        let release_revision = paused
            .iter()
            .find(|p| p.service == view.service_name)
            .map(|p| p.task_definition.as_str());
        let verdict = if ours.is_some() || release_revision == Some(view.desired_revision()) {
            action
        } else {
            "CONTINUE"
        };
        let command = match assess_deployment(record) {
            DeploymentProgress::Paused {
                stage: Some(stage),
                hook_ids,
            } if stage == PAUSE_STAGE && !hook_ids.is_empty() => {
                Command::ContinueServiceDeployment {
                    arn: record.arn.clone(),
                    hook_id: hook_ids[0].clone(),
                    action: verdict.to_owned(),
                }
            }
            DeploymentProgress::InProgress { .. }
            | DeploymentProgress::Paused { .. }
            | DeploymentProgress::Deployed { .. }
                if ours.is_some() && action == "ROLLBACK" =>
            {
                Command::StopServiceDeployment {
                    arn: record.arn.clone(),
                    stop_type: "ROLLBACK".to_owned(),
                }
            }
            // Ended, or going on without our hook: nothing of ours to resolve.
            _ => continue,
        };
        match ctx.call(command).await {
            Ok(_) => ctx.emit(Event::DeploymentContinued {
                service: view.service_name.clone(),
                action: verdict.to_owned(),
            }),
            Err(stop) => {
                first_error.get_or_insert(stop);
            }
        }
    }
    match first_error {
        None => Ok(()),
        Some(stop) if action == "ROLLBACK" => {
            // The hook may have timed out meanwhile: ECS rolls it back on its own then.
            drop(stop);
            Ok(())
        }
        Some(stop) => Err(stop),
    }
}

/// Rolls back the release's deployments without reading their records: the hook it waits at
/// when it is known, else StopServiceDeployment ROLLBACK. Errors are left to the hook's
/// timeout, which rolls back too.
async fn roll_back_blind(ctx: &mut Ctx, paused: &[Paused]) -> Result<(), Stop> {
    for deployment in paused {
        let command = match &deployment.hook_id {
            Some(hook_id) => Command::ContinueServiceDeployment {
                arn: deployment.arn.clone(),
                hook_id: hook_id.clone(),
                action: "ROLLBACK".to_owned(),
            },
            None => Command::StopServiceDeployment {
                arn: deployment.arn.clone(),
                stop_type: "ROLLBACK".to_owned(),
            },
        };
        if ctx.call(command).await.is_ok() {
            ctx.emit(Event::DeploymentContinued {
                service: deployment.service.clone(),
                action: "ROLLBACK".to_owned(),
            });
        }
    }
    Ok(())
}

/// Takes shipmate's PAUSE hooks off `services`, keeping every other hook.
pub(crate) async fn remove_hooks(ctx: &mut Ctx, services: Vec<String>) -> Result<(), Stop> {
    if services.is_empty() {
        return Ok(());
    }
    let views = ctx.describe_services(&services).await?;
    for view in views {
        if view.shape.our_hooks().next().is_none() {
            continue;
        }
        let command = Command::SetLifecycleHooks {
            service: view.service_name.clone(),
            hooks: view.shape.hooks_without_ours(),
        };
        match ctx.call(command).await? {
            Observation::ServiceUpdated(_) => {}
            other => return Err(ctx.unexpected("UpdateService", &other)),
        }
    }
    Ok(())
}

/// After a failed migration: every paused deployment rolled back, and followed until ECS says
/// so (bounded by the rollout timeout), so the release ends with the services on blue.
pub(crate) async fn roll_back(
    ctx: &mut Ctx,
    request: &DeployRequest,
    seen: &mut SeenAll,
) -> Result<(), Stop> {
    let arns: Vec<(String, String)> = ctx
        .paused
        .iter()
        .map(|p| (p.service.clone(), p.arn.clone()))
        .collect();
    resolve(ctx, "ROLLBACK").await?;
    let started = ctx.now();
    let mut open: Vec<(String, String)> = arns;
    while !open.is_empty() && ctx.now() - started <= ms(request.deploy_timeout) {
        ctx.sleep(ms(request.poll_interval)).await?;
        let asked: Vec<String> = open.iter().map(|(_, arn)| arn.clone()).collect();
        let Some(records) = ctx.service_deployments(&asked).await? else {
            return Ok(());
        };
        for record in records {
            if let Some((service, _)) = open.iter().find(|(_, arn)| *arn == record.arn).cloned() {
                show_record(
                    ctx,
                    &service,
                    &record,
                    seen.entry(service.clone()).or_default(),
                );
                if matches!(
                    assess_deployment(&record),
                    DeploymentProgress::RolledBack { .. } | DeploymentProgress::Stopped { .. }
                ) && !matches!(
                    record.status.as_str(),
                    "ROLLBACK_IN_PROGRESS" | "ROLLBACK_REQUESTED" | "STOP_REQUESTED"
                ) {
                    open.retain(|(s, _)| *s != service);
                }
            }
        }
    }
    Ok(())
}
