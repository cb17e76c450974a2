//! `shipmate finish`: completes a release that `shipmate deploy --wait-until deployed` left
//! baking. Under the release lock it finds that release in the ledger, waits for its services'
//! deployments to complete, then runs what was held back (the post-deploy command). Resumable
//! and idempotent: a finish that already ran, or a release that completed in deploy, leaves
//! nothing to do; a newer release that went live since means there is nothing left to finish.

use crate::error::ReleaseError;
use crate::event::{Event, Phase};
use crate::ids::{self, ReleaseInputs};
use crate::ledger::{self, Contract, Entry, EntryOutcome, Kind, Record, State};
use crate::plan::{command_container, containers_to_release};

use super::ctx::{Ctx, Stop, ms};
use super::lock::{self, LockRequest};
use super::migrate::MigrationSource;
use super::rollout::{self, Rollout, RolloutEnd, SeenAll, service_report};
use super::{DeployRequest, cleanup};

pub(crate) async fn finish(ctx: &mut Ctx, request: &DeployRequest) -> Result<(), ReleaseError> {
    match run(ctx, request).await {
        Ok(()) => Ok(()),
        Err(stop) => Err(cleanup(ctx, stop).await),
    }
}

/// What the ledger says of the release to finish.
enum Found {
    /// This release went live and returned at `deployed`: finish it.
    Baking(Box<Record>),
    /// Nothing left: why.
    Done(String),
}

async fn run(ctx: &mut Ctx, request: &DeployRequest) -> Result<(), Stop> {
    // The same id as the deploy it finishes (same flags, same inputs).
    let release_id = ids::release_id(&ReleaseInputs {
        cluster: &request.cluster,
        service: &request.services.join(","),
        image: &request.image,
        container: request.container.as_deref().unwrap_or(""),
        migrate: request.migrate.as_deref(),
    });
    ctx.report.release_id = Some(release_id.clone());
    for service in &request.services {
        service_report(ctx, service);
    }
    ctx.enter(Phase::Lock);
    ctx.active_services(&request.services).await?;
    let key = request
        .lock
        .key
        .clone()
        .unwrap_or_else(|| ledger::default_key(&request.cluster, &request.image));
    let mut record = Record::new(
        &release_id,
        Kind::Finish,
        &request.cluster,
        &request.services,
    );
    record.image = Some(request.image.clone());
    record.by.clone_from(&request.lock.by);
    let lock_request = LockRequest {
        family: ledger::family(&key),
        record,
        timeout: request.lock.timeout,
        lease: request.lock.lease,
        poll_ms: ms(request.poll_interval),
    };
    lock::acquire(ctx, &lock_request).await?;

    ctx.enter(Phase::Prepare);
    let held = ctx.held.clone().expect("the lock is held");
    let entries = lock::history(ctx, &lock_request.family, held.entry.revision, |seen| {
        seen.iter().any(|e| decisive(e, &request.services))
    })
    .await?;
    let found = match entries.iter().find(|e| decisive(e, &request.services)) {
        None => Found::Done("no release of these services is on record to finish".to_owned()),
        Some(entry) => classify(entry, &release_id),
    };
    let release = match found {
        Found::Done(reason) => {
            ctx.emit(Event::NothingToFinish {
                release_id: release_id.clone(),
                reason,
            });
            return lock::close(ctx, EntryOutcome::AlreadyLive).await;
        }
        Found::Baking(release) => release,
    };
    ctx.record(|record| record.state = State::Deploying).await?;

    ctx.enter(Phase::Deploy);
    let views = ctx.active_services(&request.services).await?;
    let mut rollouts = Vec::new();
    for view in &views {
        let Some(moved) = release.move_of(&view.service_name) else {
            continue;
        };
        let (Some(from), Some(to)) = (moved.from.clone(), moved.to.clone()) else {
            continue;
        };
        let section = service_report(ctx, &view.service_name);
        section.previous_task_definition = Some(from.clone());
        section.task_definition = Some(to.clone());
        section.outcome = "updated".to_owned();
        if view.desired_revision() != to {
            // Someone deployed something else since: the release is not the one to finish.
            let by = view.desired_revision().to_owned();
            lock::close(ctx, EntryOutcome::Superseded).await?;
            return Err(Stop::Error(ReleaseError::Replaced {
                service: view.service_name.clone(),
                by,
            }));
        }
        rollouts.push(Rollout {
            service: view.service_name.clone(),
            target: to,
            from,
            failure_limit: None,
            record: view.current_service_deployment.clone(),
            until_deployed: false,
        });
    }
    let mut seen = SeenAll::new();
    let ends = rollout::follow_all(
        ctx,
        &rollouts,
        &mut seen,
        ms(request.deploy_timeout),
        ms(request.poll_interval),
        false,
    )
    .await?;
    if let Some((service, end)) = ends.iter().find(|(_, end)| !end.is_success()) {
        let (outcome, error) = match end {
            RolloutEnd::TimedOut => (
                EntryOutcome::TimedOut,
                ReleaseError::DeployTimeout {
                    service: service.clone(),
                    task_definition: rollouts
                        .iter()
                        .find(|r| r.service == *service)
                        .map(|r| r.target.clone())
                        .unwrap_or_default(),
                    after: request.deploy_timeout,
                    rolled_back: None,
                },
            ),
            RolloutEnd::Replaced { by } => (
                EntryOutcome::Superseded,
                ReleaseError::Replaced {
                    service: service.clone(),
                    by: by.clone(),
                },
            ),
            RolloutEnd::RolledBackByEcs { to, reason } => (
                EntryOutcome::DeploymentFailed,
                ReleaseError::DeploymentFailed {
                    service: service.clone(),
                    reason: reason.clone(),
                    rolled_back_to: Some(to.clone()),
                    still_trying: false,
                },
            ),
            RolloutEnd::Failed { reason } => (
                EntryOutcome::DeploymentFailed,
                ReleaseError::DeploymentFailed {
                    service: service.clone(),
                    reason: reason.clone(),
                    rolled_back_to: None,
                    still_trying: true,
                },
            ),
            RolloutEnd::Completed | RolloutEnd::Deployed => unreachable!("filtered above"),
        };
        ctx.await_logs().await?;
        lock::close(ctx, outcome).await?;
        return Err(Stop::Error(error));
    }
    for section in &mut ctx.report.services {
        if section.outcome == "updated" {
            section.outcome = "completed".to_owned();
        }
    }

    let contract_left = matches!(release.contract, Some(Contract::Pending | Contract::Failed));
    if !contract_left && request.post_deploy.is_none() {
        ctx.await_logs().await?;
        return lock::close(ctx, EntryOutcome::Succeeded).await;
    }
    let source = release_source(ctx, request, &release, &views).await?;
    if contract_left {
        if request.preset.is_none() {
            return Err(Stop::Error(ReleaseError::Invalid(
                "the release held migrations back for its contract phase: finish it with the deploy's own flags, --preset included".to_owned(),
            )));
        }
        super::presets::contract(ctx, request, &source).await?;
    }
    if let Some(command) = &request.post_deploy {
        return super::deploy::post_deploy(ctx, request, &source, command).await;
    }
    ctx.await_logs().await?;
    lock::close(ctx, EntryOutcome::Succeeded).await
}

/// Where the release's one-off tasks run: its first service's new revision, that service's
/// network, the container that got the image.
async fn release_source(
    ctx: &mut Ctx,
    request: &DeployRequest,
    release: &Record,
    views: &[crate::service::ServiceView],
) -> Result<MigrationSource, Stop> {
    let first = release
        .services()
        .next()
        .map(str::to_owned)
        .unwrap_or_default();
    let to = release
        .migration
        .as_ref()
        .and_then(|m| m.task_definition.clone())
        .or_else(|| release.move_of(&first).and_then(|m| m.to.clone()))
        .unwrap_or_default();
    let service = views
        .iter()
        .find(|v| v.service_name == first)
        .or_else(|| views.first())
        .cloned()
        .unwrap_or_default();
    let td = ctx.describe_task_definition(&to).await?;
    let chosen = containers_to_release(
        &td.arn,
        &td.containers,
        &request.image,
        request.container.as_deref(),
    )
    .map_err(|e| Stop::Error(e.into()))?;
    let container = command_container(&chosen)
        .map(|c| c.name.clone())
        .unwrap_or_default();
    Ok(MigrationSource {
        service,
        td,
        container,
    })
}

/// An entry that decides what finish does: a closed release of one of `services` that went
/// live (or returned at `deployed`), or a finish of one.
fn decisive(entry: &Entry, services: &[String]) -> bool {
    let Some(record) = entry.record.as_ref() else {
        return false;
    };
    let ours = record.services().any(|s| services.iter().any(|x| x == s));
    let closed = record.outcome.is_some();
    let counts = match record.kind {
        Kind::Finish => record.outcome == Some(EntryOutcome::Succeeded),
        _ => record.live_at.is_some(),
    };
    ours && closed && counts
}

fn classify(entry: &Entry, release_id: &str) -> Found {
    let record = entry
        .record
        .as_ref()
        .expect("decisive entries have records");
    let same = record.release_id == release_id;
    match (record.kind, record.outcome) {
        (Kind::Finish, _) if same => {
            Found::Done(format!("release {release_id} was finished already"))
        }
        (Kind::Deploy | Kind::DeployWithoutMigration, Some(EntryOutcome::Deployed)) if same => {
            Found::Baking(Box::new(record.clone()))
        }
        // Live, with its contract phase still to run (or to run again after it failed).
        (Kind::Deploy, _)
            if same && matches!(record.contract, Some(Contract::Pending | Contract::Failed)) =>
        {
            Found::Baking(Box::new(record.clone()))
        }
        (_, Some(EntryOutcome::Succeeded | EntryOutcome::AlreadyLive)) if same => {
            Found::Done(format!(
                "release {release_id} completed in its deploy; there is nothing left to finish"
            ))
        }
        (_, outcome) if same => Found::Done(format!(
            "release {release_id} ended {}; there is nothing to finish",
            outcome.map_or("without an outcome", EntryOutcome::label)
        )),
        _ => Found::Done(format!(
            "release {} went live after release {release_id}; there is nothing left to finish",
            record.release_id
        )),
    }
}
