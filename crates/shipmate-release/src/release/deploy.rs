//! `shipmate deploy`: lock → prepare → migrate → deploy (→ roll back) → post-deploy, every
//! decision taken here from what the driver observed.

use crate::error::ReleaseError;
use crate::event::{Event, Phase, TaskRole};
use crate::ids::{self, ReleaseInputs};
use crate::io::{Command, Observation, TaskDefinitionView};
use crate::ledger::{self, EntryOutcome, Kind, Record, State};
use crate::plan::choose_container;
use crate::report::{DeploymentReport, service_console_url};
use crate::service::{RolloutProgress, ServiceView, assess_rollout, default_failure_limit};

use super::ctx::{Ctx, Stop, ms};
use super::lock::{self, LockRequest};
use super::migrate;
use super::rollout::{self, Rollout, RolloutEnd, Seen};
use super::tasks::{self, OneOff, spec_for_service};
use super::{DeployRequest, cleanup};

/// The revision the release deploys, and what it was made from.
pub(super) struct Prepared {
    /// What was live when the release started (its rollback target).
    pub(super) from: String,
    /// The revision the new one was derived from (the service's desired one then).
    pub(super) base: String,
    pub(super) target: TaskDefinitionView,
    pub(super) container: String,
}

pub(crate) async fn deploy(ctx: &mut Ctx, request: &DeployRequest) -> Result<(), ReleaseError> {
    match run(ctx, request).await {
        Ok(()) => Ok(()),
        Err(stop) => Err(cleanup(ctx, stop).await),
    }
}

fn lock_request(request: &DeployRequest, release_id: &str) -> LockRequest {
    let key = request
        .lock
        .key
        .clone()
        .unwrap_or_else(|| ledger::default_key(&request.cluster, &request.image));
    let kind = if request.migrate.is_some() {
        Kind::Deploy
    } else {
        Kind::DeployWithoutMigration
    };
    let mut record = Record::new(
        release_id,
        kind,
        &request.cluster,
        std::slice::from_ref(&request.service),
    );
    record.image = Some(request.image.clone());
    record.by.clone_from(&request.lock.by);
    LockRequest {
        family: ledger::family(&key),
        record,
        timeout: request.lock.timeout,
        lease: request.lock.lease,
        poll_ms: ms(request.poll_interval),
    }
}

async fn run(ctx: &mut Ctx, request: &DeployRequest) -> Result<(), Stop> {
    let release_id = ids::release_id(&ReleaseInputs {
        cluster: &request.cluster,
        service: &request.service,
        image: &request.image,
        container: request.container.as_deref().unwrap_or(""),
        migrate: request.migrate.as_deref(),
    });
    ctx.report.release_id = Some(release_id.clone());
    ctx.emit(Event::ReleaseStarted {
        release_id: release_id.clone(),
        cluster: request.cluster.clone(),
        service: request.service.clone(),
        image: request.image.clone(),
    });
    let lock_request = lock_request(request, &release_id);
    ctx.enter(Phase::Lock);
    // A service that does not exist is bad input: say so at once, not after waiting for the lock.
    ctx.active_service(&request.service).await?;
    lock::acquire(ctx, &lock_request).await?;
    let prior = look_back(ctx, &lock_request, &release_id).await?;

    ctx.enter(Phase::Prepare);
    let service = ctx.active_service(&request.service).await?;
    ctx.report.service_console_url =
        service_console_url(&service.service_arn, &request.cluster, &request.service);
    let prepared = prepare(ctx, request, &service).await?;
    let held = ctx.held.clone().expect("the lock is held");
    let migrating = request.migrate.is_some();
    ctx.record(|record| {
        record.from = Some(prepared.from.clone());
        record.to = Some(prepared.target.arn.clone());
        record.state = if migrating {
            State::Migrating
        } else {
            State::Deploying
        };
    })
    .await?;

    let mut migrated_now = false;
    if let Some(command) = &request.migrate {
        ctx.enter(Phase::Migrate);
        match prior.migrated {
            Some(task_arn) => ctx.emit(Event::MigrationSkipped { task_arn }),
            None => {
                let earlier = u32::from(prior.failed_before.is_some());
                if let Some(task_arn) = prior.failed_before.clone() {
                    ctx.emit(Event::PreviousAttemptFailed {
                        task_arn,
                        attempt: earlier,
                    });
                }
                let followed = migrate::migrate(
                    ctx,
                    request,
                    &lock_request,
                    &service,
                    &prepared,
                    command,
                    earlier,
                )
                .await?;
                let verdict = tasks::gate(TaskRole::Migrate, &followed);
                let passed = verdict.is_ok();
                ctx.record(|record| {
                    if let Some(migration) = record.migration.as_mut() {
                        migration.passed = Some(passed);
                    }
                })
                .await?;
                if let Err(error) = verdict {
                    // The gate: the service is never touched. Every log line first.
                    ctx.await_logs().await?;
                    lock::close(ctx, EntryOutcome::MigrationFailed).await?;
                    return Err(Stop::Error(error));
                }
                migrated_now = true;
            }
        }
    }

    ctx.enter(Phase::Deploy);
    let now = ctx.active_service(&request.service).await?;
    let already_sent = held.resumed && held.record.live_at.is_some();
    let mut target = prepared.target.arn.clone();
    if already_sent && now.desired_revision() != target {
        // An earlier run of this release updated the service; its rollout ended without us.
        let by = now.desired_revision().to_owned();
        if by == prepared.from {
            lock::close(ctx, EntryOutcome::DeploymentFailed).await?;
            return Err(Stop::Error(ReleaseError::DeploymentFailed {
                service: request.service.clone(),
                reason: "the deployment of an earlier run of this release was rolled back"
                    .to_owned(),
                rolled_back_to: Some(by),
                still_trying: false,
            }));
        }
        lock::close(ctx, EntryOutcome::Superseded).await?;
        return Err(Stop::Error(ReleaseError::Replaced {
            service: request.service.clone(),
            by,
        }));
    }
    if !already_sent {
        let desired = now.desired_revision().to_owned();
        if desired != prepared.base && desired != target {
            // Someone changed the service while we waited or migrated (an IaC apply, a
            // config change): keep their change and release our image on top of it.
            ctx.emit(Event::ServiceChanged {
                was: prepared.base.clone(),
                now: desired.clone(),
            });
            let rebased = revision_with_image(ctx, request, &desired).await?;
            target.clone_from(&rebased.target.arn);
            ctx.report.task_definition = Some(target.clone());
            ctx.record(|record| record.to = Some(target.clone()))
                .await?;
        }
    }
    let mut updated_now = false;
    let mut seen = Seen::from_service(&now);
    if now.desired_revision() == target {
        if assess_rollout(&now, &target) == RolloutProgress::Completed {
            ctx.emit(Event::AlreadyLive {
                task_definition: target.clone(),
            });
            return finish_live(ctx, request, &now, &prepared, &target, migrated_now, false).await;
        }
        // Rolling out already (a re-run after shipmate was killed mid-rollout): follow it.
        ctx.service_updating = Some(target.clone());
        ctx.report.deployment = Some(DeploymentReport {
            id: now.deployment_of(&target).map(|d| d.id.clone()),
            task_definition: target.clone(),
            rollout_state: None,
            reason: None,
            rolled_back_to: None,
        });
    } else {
        update_service(ctx, &lock_request, &request.service, &target).await?;
        updated_now = true;
    }
    if !request.wait {
        ctx.await_logs().await?;
        lock::close(ctx, EntryOutcome::Updated).await?;
        return Ok(());
    }
    let failure_limit = now.circuit_breaker.is_none().then(|| {
        request
            .max_failed_tasks
            .unwrap_or_else(|| default_failure_limit(now.desired_count))
    });
    let end = rollout::follow(
        ctx,
        &Rollout {
            service: &request.service,
            target: &target,
            from: &prepared.from,
            timeout_ms: ms(request.deploy_timeout),
            poll_ms: ms(request.poll_interval),
            failure_limit,
        },
        &mut seen,
    )
    .await?;
    match end {
        RolloutEnd::Completed => {
            finish_live(
                ctx,
                request,
                &now,
                &prepared,
                &target,
                migrated_now,
                updated_now,
            )
            .await
        }
        RolloutEnd::RolledBackByEcs { to, reason } => {
            ctx.enter(Phase::Rollback);
            ctx.emit(Event::RollbackStarted {
                to: to.clone(),
                reason: reason.clone(),
            });
            let steady = rollout::follow_steady(
                ctx,
                &request.service,
                &to,
                ms(request.deploy_timeout),
                ms(request.poll_interval),
                &mut seen,
            )
            .await?;
            end_failed(ctx, request, reason, Some(to).filter(|_| steady), false).await
        }
        RolloutEnd::Failed { reason } => {
            let rolled_back = if request.rollback_on_failure {
                roll_back(
                    ctx,
                    request,
                    &lock_request,
                    &prepared.from,
                    &reason,
                    &mut seen,
                )
                .await?
            } else {
                None
            };
            let still_trying = rolled_back.is_none() && failure_limit.is_some();
            end_failed(ctx, request, reason, rolled_back, still_trying).await
        }
        RolloutEnd::Replaced { by } => {
            ctx.await_logs().await?;
            lock::close(ctx, EntryOutcome::Superseded).await?;
            Err(Stop::Error(ReleaseError::Replaced {
                service: request.service.clone(),
                by,
            }))
        }
        RolloutEnd::TimedOut => {
            let reason = "the rollout timed out";
            let rolled_back = if request.rollback_on_failure {
                roll_back(
                    ctx,
                    request,
                    &lock_request,
                    &prepared.from,
                    reason,
                    &mut seen,
                )
                .await?
            } else {
                None
            };
            ctx.await_logs().await?;
            lock::close(ctx, EntryOutcome::TimedOut).await?;
            Err(Stop::Error(ReleaseError::DeployTimeout {
                service: request.service.clone(),
                task_definition: target,
                after: request.deploy_timeout,
                rolled_back,
            }))
        }
    }
}

async fn end_failed(
    ctx: &mut Ctx,
    request: &DeployRequest,
    reason: String,
    rolled_back_to: Option<String>,
    still_trying: bool,
) -> Result<(), Stop> {
    ctx.await_logs().await?;
    lock::close(ctx, EntryOutcome::DeploymentFailed).await?;
    Err(Stop::Error(ReleaseError::DeploymentFailed {
        service: request.service.clone(),
        reason,
        rolled_back_to,
        still_trying,
    }))
}

/// The release is live: post-deploy (when something changed), then close.
async fn finish_live(
    ctx: &mut Ctx,
    request: &DeployRequest,
    service: &ServiceView,
    prepared: &Prepared,
    target: &str,
    migrated_now: bool,
    updated_now: bool,
) -> Result<(), Stop> {
    if let (Some(command), true) = (&request.post_deploy, migrated_now || updated_now) {
        ctx.enter(Phase::PostDeploy);
        let release_id = ctx.report.release_id.clone().unwrap_or_default();
        let mut spec = spec_for_service(
            Some(service),
            target,
            &prepared.container,
            command.clone(),
            request.launch_type.as_deref(),
            request.allow_spot,
        );
        spec.started_by = ids::post_deploy_started_by(&release_id);
        let followed = tasks::run_one_off(
            ctx,
            OneOff {
                role: TaskRole::PostDeploy,
                spec,
                td: &prepared.target,
                timeout_ms: ms(request.post_deploy_timeout),
                poll_ms: ms(request.poll_interval),
                quiet_ms: ms(request.log_quiet_period),
                on_cancel: request.on_cancel,
            },
        )
        .await?;
        let verdict = tasks::gate(TaskRole::PostDeploy, &followed);
        ctx.await_logs().await?;
        // Live either way: the post-deploy command does not undo the release.
        lock::close(ctx, EntryOutcome::Succeeded).await?;
        return verdict.map_err(Stop::Error);
    }
    ctx.await_logs().await?;
    let outcome = if migrated_now || updated_now {
        EntryOutcome::Succeeded
    } else {
        EntryOutcome::AlreadyLive
    };
    lock::close(ctx, outcome).await
}

/// Reads the service's revisions and registers (or reuses) the release's.
async fn prepare(
    ctx: &mut Ctx,
    request: &DeployRequest,
    service: &ServiceView,
) -> Result<Prepared, Stop> {
    let held = ctx.held.clone().expect("the lock is held");
    let recorded_target = held.record.to.clone().filter(|_| held.resumed);
    let prepared = match recorded_target {
        Some(to) => {
            // Resume exactly what the interrupted run registered, so its RunTask is the same.
            let target = ctx.describe_task_definition(&to).await?;
            let container = choose_container(
                &target.arn,
                &target.containers,
                request.container.as_deref(),
            )
            .map_err(|e| Stop::Error(e.into()))?
            .name
            .clone();
            let from = held
                .record
                .from
                .clone()
                .unwrap_or_else(|| service.live_revision().to_owned());
            ctx.emit(Event::RevisionReady {
                task_definition: target.arn.clone(),
                previous_task_definition: from.clone(),
                container: container.clone(),
                image_from: String::new(),
                reused: true,
            });
            Prepared {
                from,
                base: target.arn.clone(),
                target,
                container,
            }
        }
        None => {
            let from = service.live_revision().to_owned();
            let mut prepared =
                revision_with_image(ctx, request, service.desired_revision()).await?;
            prepared.from = from;
            prepared
        }
    };
    ctx.report.container = Some(prepared.container.clone());
    ctx.report.previous_task_definition = Some(prepared.from.clone());
    ctx.report.task_definition = Some(prepared.target.arn.clone());
    Ok(prepared)
}

/// A revision like `base` with the release's image in its container.
async fn revision_with_image(
    ctx: &mut Ctx,
    request: &DeployRequest,
    base: &str,
) -> Result<Prepared, Stop> {
    let base_view = ctx.describe_task_definition(base).await?;
    let chosen = choose_container(
        &base_view.arn,
        &base_view.containers,
        request.container.as_deref(),
    )
    .map_err(|e| Stop::Error(e.into()))?
    .clone();
    let command = Command::RegisterRevision {
        base: base_view.arn.clone(),
        container: chosen.name.clone(),
        image: request.image.clone(),
    };
    let (arn, reused) = match ctx.call(command).await? {
        Observation::RevisionRegistered { arn, reused } => (arn, reused),
        other => return Err(ctx.unexpected("RegisterTaskDefinition", &other)),
    };
    let mut target = base_view.clone();
    target.arn.clone_from(&arn);
    for container in target
        .containers
        .iter_mut()
        .filter(|c| c.name == chosen.name)
    {
        container.image.clone_from(&request.image);
    }
    ctx.report.revision_reused = reused;
    ctx.emit(Event::RevisionReady {
        task_definition: arn,
        previous_task_definition: base_view.arn.clone(),
        container: chosen.name.clone(),
        image_from: chosen.image.clone(),
        reused,
    });
    Ok(Prepared {
        from: base_view.arn.clone(),
        base: base_view.arn,
        target,
        container: chosen.name,
    })
}

/// What the ledger says of this release before it goes on: the successful migration it already
/// has on record (an interrupted run's, our resumed entry; or a finished run's when no release
/// migrated or went live since), or that it is superseded: an earlier run of it lost its lock
/// (broken or unlocked) and a newer release went live after that, so finishing it now would put
/// an older release over a newer one.
struct LookBack {
    /// This release's migration already passed (that task).
    migrated: Option<String>,
    /// An earlier run of this release ended with a failed migration: this is the next attempt.
    failed_before: Option<String>,
}

async fn look_back(
    ctx: &mut Ctx,
    lock_request: &LockRequest,
    release_id: &str,
) -> Result<LookBack, Stop> {
    let held = ctx.held.clone().expect("the lock is held");
    if held.resumed {
        return Ok(LookBack {
            migrated: held
                .record
                .migration
                .as_ref()
                .filter(|m| m.passed == Some(true))
                .and_then(|m| m.task_arn.clone()),
            failed_before: None,
        });
    }
    let window_start = ctx.now() - lock::LOOK_BACK_MS;
    let entries = lock::history(ctx, &lock_request.family, held.entry.revision, |seen| {
        seen.last().is_some_and(|e| {
            e.release_id() == Some(release_id) || e.registered_at.is_some_and(|t| t < window_start)
        })
    })
    .await?;
    let own = entries
        .iter()
        .position(|e| e.release_id() == Some(release_id));
    if let Some(own) = own {
        let lost = entries[own].record.as_ref().is_some_and(|r| {
            matches!(
                r.outcome,
                Some(EntryOutcome::Broken | EntryOutcome::Unlocked)
            )
        });
        if lost && let Some(newer) = ledger::overtaken_by(&entries[..own], entries[own].revision) {
            let record = newer.record.clone();
            return Err(Stop::Error(ReleaseError::Superseded {
                service: lock_request.record.services.join(" "),
                by_release: record
                    .as_ref()
                    .map_or_else(|| newer.arn.clone(), |r| r.release_id.clone()),
                by_image: record.and_then(|r| r.image),
            }));
        }
    }
    let failed_before = own
        .and_then(|own| entries[own].record.as_ref())
        .and_then(|r| r.migration.as_ref())
        .filter(|m| m.passed == Some(false))
        .and_then(|m| m.task_arn.clone());
    Ok(LookBack {
        migrated: ledger::prior_migration(&entries, release_id).map(str::to_owned),
        failed_before,
    })
}

async fn update_service(
    ctx: &mut Ctx,
    lock_request: &LockRequest,
    service: &str,
    target: &str,
) -> Result<ServiceView, Stop> {
    let updated = lock::update_service(ctx, lock_request, service, target).await?;
    let now = ctx.now();
    ctx.record(|record| {
        record.live_at = Some(now);
        record.state = State::Deploying;
    })
    .await?;
    let deployment_id = updated
        .deployments
        .iter()
        .find(|d| d.task_definition == target && d.status == "PRIMARY")
        .map(|d| d.id.clone());
    ctx.emit(Event::ServiceUpdated {
        task_definition: target.to_owned(),
        deployment_id: deployment_id.clone(),
    });
    ctx.report.deployment = Some(DeploymentReport {
        id: deployment_id,
        task_definition: target.to_owned(),
        rollout_state: None,
        reason: None,
        rolled_back_to: None,
    });
    Ok(updated)
}

/// `--rollback`: back to what was live before this release, and wait for it.
async fn roll_back(
    ctx: &mut Ctx,
    request: &DeployRequest,
    lock_request: &LockRequest,
    to: &str,
    reason: &str,
    seen: &mut Seen,
) -> Result<Option<String>, Stop> {
    ctx.enter(Phase::Rollback);
    ctx.emit(Event::RollbackStarted {
        to: to.to_owned(),
        reason: reason.to_owned(),
    });
    ctx.record(|record| record.state = State::RollingBack)
        .await?;
    lock::update_service(ctx, lock_request, &request.service, to).await?;
    let steady = rollout::follow_steady(
        ctx,
        &request.service,
        to,
        ms(request.deploy_timeout),
        ms(request.poll_interval),
        seen,
    )
    .await?;
    if let Some(deployment) = ctx.report.deployment.as_mut() {
        deployment.rolled_back_to = steady.then(|| to.to_owned());
    }
    Ok(steady.then(|| to.to_owned()))
}
