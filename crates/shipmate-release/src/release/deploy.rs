//! `shipmate deploy` of one or several services: lock → prepare → migrate → deploy (in waves,
//! → roll back) → post-deploy, every decision taken here from what the driver observed.

use crate::codedeploy;
use crate::config::{Gate, WaitUntil};
use crate::deployment::controller_refusal;
use crate::error::ReleaseError;
use crate::event::{Event, Phase, TaskRole};
use crate::ids::{self, ReleaseInputs};
use crate::io::{Command, Observation, TaskDefinitionView};
use crate::ledger::{self, EntryOutcome, Kind, Record, State};
use crate::plan::{command_container, containers_to_release};
use crate::report::{ContainerChange, DeploymentReport, service_console_url};
use crate::service::{RolloutProgress, ServiceView, assess_rollout, default_failure_limit};

use super::ctx::{Ctx, Stop, ms};
use super::lock::{self, LockRequest};
use super::migrate::{self, MigrationSource};
use super::pause;
use super::presets;
use super::rollout::{self, Rollout, RolloutEnd, Seen, SeenAll, service_report};
use super::tasks::{self, OneOff, spec_for_service};
use super::{DeployRequest, cleanup};

/// One service's revision: what the release deploys, and what it was made from.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub(super) service: String,
    /// What was live when the release started (its rollback target).
    pub(super) from: String,
    /// The revision the new one was derived from (the service's desired one then).
    pub(super) base: String,
    pub(super) td: TaskDefinitionView,
    /// The containers that get the image.
    pub(super) containers: Vec<String>,
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
    let mut record = Record::new(release_id, kind, &request.cluster, &request.services);
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

/// The services in the order they go live: the configured waves, then every service not in
/// one, as a last wave.
pub(super) fn waves(request: &DeployRequest) -> Vec<Vec<String>> {
    let mut waves: Vec<Vec<String>> = request
        .waves
        .iter()
        .map(|wave| {
            wave.iter()
                .filter(|s| request.services.contains(s))
                .cloned()
                .collect::<Vec<_>>()
        })
        .filter(|wave| !wave.is_empty())
        .collect();
    let rest: Vec<String> = request
        .services
        .iter()
        .filter(|s| !waves.iter().flatten().any(|w| w == *s))
        .cloned()
        .collect();
    if !rest.is_empty() {
        waves.push(rest);
    }
    waves
}

async fn run(ctx: &mut Ctx, request: &DeployRequest) -> Result<(), Stop> {
    let release_id = ids::release_id(&ReleaseInputs {
        cluster: &request.cluster,
        service: &request.services.join(","),
        image: &request.image,
        container: request.container.as_deref().unwrap_or(""),
        migrate: request.migrate.as_deref(),
    });
    ctx.report.release_id = Some(release_id.clone());
    ctx.emit(Event::ReleaseStarted {
        release_id: release_id.clone(),
        cluster: request.cluster.clone(),
        services: request.services.clone(),
        image: request.image.clone(),
    });
    for service in &request.services {
        service_report(ctx, service);
    }
    let lock_request = lock_request(request, &release_id);
    if !lock_request.record.fits() {
        return Err(Stop::Error(ReleaseError::Invalid(format!(
            "{} services with their revisions do not fit in one ledger entry (ECS allows 50 tags of 256 characters a resource): release them in smaller sets",
            request.services.len()
        ))));
    }
    ctx.enter(Phase::Lock);
    // A service that does not exist, or that shipmate cannot deploy, is bad input: say so at
    // once, not after waiting for the lock.
    let found = ctx.active_services(&request.services).await?;
    refuse_unsupported(request, &found)?;
    let pause_gate =
        request.gate == Gate::PauseHook && request.migrate.is_some() && !request.migrate_only;
    if pause_gate {
        if waves(request).len() > 1 {
            return Err(Stop::Error(ReleaseError::Invalid(
                "--gate pause-hook continues every service's deployment at once: it cannot be combined with `deploy.waves`".to_owned(),
            )));
        }
        pause::check_records(ctx, &request.services[0]).await?;
    }
    lock::acquire(ctx, &lock_request).await?;
    let prior = look_back(ctx, &lock_request, &release_id).await?;

    ctx.enter(Phase::Prepare);
    let services = ctx.active_services(&request.services).await?;
    if let Some(first) = services.first() {
        ctx.report.service_console_url =
            service_console_url(&first.service_arn, &request.cluster, &first.service_name);
    }
    let mut targets = Vec::with_capacity(services.len());
    for view in &services {
        targets.push(prepare(ctx, request, view).await?);
    }
    let source = migration_source(ctx, request, &services, &targets).await?;
    let migrating = request.migrate.is_some();
    ctx.record(|record| {
        for target in &targets {
            record.set_move(
                &target.service,
                Some(target.from.clone()),
                Some(target.td.arn.clone()),
            );
        }
        record.state = if migrating {
            State::Migrating
        } else {
            State::Deploying
        };
    })
    .await?;

    let mut migrated_now = false;
    // A preset held migrations back until the deployment is complete (or an interrupted run
    // of this release did).
    let mut contract_pending = ctx
        .held
        .as_ref()
        .is_some_and(|h| h.resumed && h.record.contract == Some(ledger::Contract::Pending));
    let mut seen = SeenAll::new();
    if let Some(command) = &request.migrate {
        ctx.enter(Phase::Migrate);
        if pause_gate {
            pause::pause_all(
                ctx,
                request,
                &lock_request,
                &targets,
                &services,
                &release_id,
                &mut seen,
            )
            .await?;
        }
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
                let followed =
                    migrate::migrate(ctx, request, &lock_request, &source, command, earlier)
                        .await?;
                let verdict = if request.preset.is_some() {
                    // The plan and its verdict, from the task's framed report: the whole of it.
                    let frames = ctx.drain_logs(TaskRole::Migrate).await?;
                    let (plan, verdict) = presets::judge(TaskRole::Migrate, &followed, &frames);
                    if let Some(plan) = &plan {
                        presets::show_plan(ctx, TaskRole::Migrate, plan);
                        contract_pending = verdict.is_ok() && plan.held_back().next().is_some();
                    }
                    verdict
                } else {
                    tasks::gate(TaskRole::Migrate, &followed)
                };
                let passed = verdict.is_ok();
                ctx.record(|record| {
                    if let Some(migration) = record.migration.as_mut() {
                        migration.passed = Some(passed);
                    }
                    if contract_pending {
                        record.contract = Some(ledger::Contract::Pending);
                    }
                })
                .await?;
                if let Err(error) = verdict {
                    // The gate: no service is touched (with the pause hook: no task of the
                    // new revision started, and ECS rolls the deployment back). Every log
                    // line first.
                    if pause_gate {
                        pause::roll_back(ctx, request, &mut seen).await?;
                        for target in &targets {
                            let section = service_report(ctx, &target.service);
                            section.outcome = "rolled_back".to_owned();
                        }
                    }
                    ctx.await_logs().await?;
                    lock::close(ctx, EntryOutcome::MigrationFailed).await?;
                    return Err(Stop::Error(error));
                }
                migrated_now = true;
            }
        }
    }

    if request.migrate_only {
        return migrated_only(ctx, &services, &targets, request, migrated_now).await;
    }
    if pause_gate {
        pause::resolve(ctx, "CONTINUE").await?;
        ctx.record(|record| record.state = State::Deploying).await?;
    }
    ctx.enter(Phase::Deploy);
    let mut updated: Vec<Target> = Vec::new();
    let mut updated_now = false;
    // Some deployment returned at `deployed`: ECS's bake time goes on without us.
    let mut baking = false;
    for wave in waves(request) {
        let wave_targets: Vec<Target> = targets
            .iter()
            .filter(|t| wave.contains(&t.service))
            .cloned()
            .collect();
        let start = update_wave(ctx, request, &lock_request, &wave_targets, &mut seen).await?;
        updated_now |= start.sent;
        // What this release moved, to return it with --rollback: the services it updates now,
        // and those an interrupted run of it already took live.
        updated.extend(
            wave_targets
                .iter()
                .filter(|t| {
                    start.rollouts.iter().any(|r| r.service == t.service)
                        || start.live.contains(&t.service)
                })
                .cloned(),
        );
        if !start.ended.is_empty() {
            return fail_rollout(
                ctx,
                request,
                &lock_request,
                &updated,
                start.ended,
                &mut seen,
            )
            .await;
        }
        if request.wait_until == WaitUntil::Updated || start.rollouts.is_empty() {
            continue;
        }
        let ends = rollout::follow_all(
            ctx,
            &start.rollouts,
            &mut seen,
            ms(request.deploy_timeout),
            ms(request.poll_interval),
            request.rollback_on_failure,
        )
        .await?;
        if ends.iter().any(|(_, end)| !end.is_success()) {
            return fail_rollout(ctx, request, &lock_request, &updated, ends, &mut seen).await;
        }
        baking |= ends.iter().any(|(_, end)| *end == RolloutEnd::Deployed);
    }
    if request.wait_until == WaitUntil::Updated {
        ctx.await_logs().await?;
        lock::close(ctx, EntryOutcome::Updated).await?;
        return Ok(());
    }
    if baking {
        return deployed_for_now(ctx, request, migrated_now || updated_now, contract_pending).await;
    }
    if contract_pending {
        presets::contract(ctx, request, &source).await?;
    }
    finish_live(ctx, request, &source, migrated_now, updated_now).await
}

/// `--migrate-only`: the migration passed (or had passed); the deployment is someone else's.
/// For CODE_DEPLOY services, the files CodePipeline's CodeDeployToECS action takes, made from
/// each service's task definition as it is now.
async fn migrated_only(
    ctx: &mut Ctx,
    services: &[ServiceView],
    targets: &[Target],
    request: &DeployRequest,
    migrated_now: bool,
) -> Result<(), Stop> {
    for target in targets {
        let Some(view) = services.iter().find(|v| v.service_name == target.service) else {
            continue;
        };
        let answer = ctx.describe_task_definition_answer(&target.base).await?;
        let taskdef = codedeploy::taskdef(&target.base, &answer, &target.containers)
            .map_err(|e| Stop::Error(ReleaseError::Invalid(e.to_string())))?;
        ctx.report.codedeploy.push(codedeploy::Artifacts {
            service: target.service.clone(),
            image_detail: codedeploy::image_detail(&request.image),
            taskdef,
            appspec: codedeploy::appspec(view.shape.load_balancers.first()),
        });
        service_report(ctx, &target.service).outcome = "not_deployed".to_owned();
    }
    ctx.await_logs().await?;
    let outcome = if migrated_now {
        EntryOutcome::Succeeded
    } else {
        EntryOutcome::AlreadyLive
    };
    lock::close(ctx, outcome).await
}

/// Production traffic is on the new revisions and ECS bakes them: the release returns now and
/// `shipmate finish` waits for the deployments to complete and runs what comes after them
/// (the old revision still serves until then, so nothing that assumes it gone may run yet).
async fn deployed_for_now(
    ctx: &mut Ctx,
    request: &DeployRequest,
    changed: bool,
    contract_pending: bool,
) -> Result<(), Stop> {
    for section in &mut ctx.report.services {
        if section.outcome == "updated" {
            section.outcome = "completed".to_owned();
        }
    }
    let mut pending = vec!["deployment".to_owned()];
    if contract_pending {
        pending.push("contract".to_owned());
    }
    if request.post_deploy.is_some() && changed {
        pending.push("post_deploy".to_owned());
    }
    ctx.report.pending.clone_from(&pending);
    ctx.emit(Event::FinishPending { pending });
    ctx.await_logs().await?;
    lock::close(ctx, EntryOutcome::Deployed).await
}

/// Services whose deployments ECS does not make, and the pause-hook gate where ECS cannot
/// pause: refused before anything runs.
fn refuse_unsupported(request: &DeployRequest, services: &[ServiceView]) -> Result<(), Stop> {
    match services.iter().find_map(|view| refusal(request, view)) {
        Some(error) => Err(Stop::Error(error)),
        None => Ok(()),
    }
}

/// Why deploy would refuse `view` before changing anything (also shown by plan).
pub(super) fn refusal(request: &DeployRequest, view: &ServiceView) -> Option<ReleaseError> {
    if let Some(controller) = controller_refusal(&view.shape, request.migrate_only) {
        return Some(ReleaseError::Controller {
            cluster: request.cluster.clone(),
            service: view.service_name.clone(),
            controller: controller.to_owned(),
        });
    }
    let pause_gate =
        request.gate == Gate::PauseHook && request.migrate.is_some() && !request.migrate_only;
    if pause_gate && let Some(reason) = view.shape.pause_refusal() {
        return Some(ReleaseError::PauseRefused {
            service: view.service_name.clone(),
            reason,
        });
    }
    None
}

/// How a wave started.
struct WaveStart {
    /// The rollouts to follow: the services updated now, and those an interrupted run of this
    /// release updated that are still rolling out.
    rollouts: Vec<Rollout>,
    /// Whether any UpdateService was sent now.
    sent: bool,
    /// Services already live on this release's revision, put there by an interrupted run of it.
    live: Vec<String>,
    /// Services whose rollout, started by an interrupted run of this release, ended without it
    /// (rolled back, or replaced): the release has failed.
    ended: Vec<(String, RolloutEnd)>,
}

/// Updates the services of one wave that need it (rebased on a change made meanwhile).
async fn update_wave(
    ctx: &mut Ctx,
    request: &DeployRequest,
    lock_request: &LockRequest,
    targets: &[Target],
    seen: &mut SeenAll,
) -> Result<WaveStart, Stop> {
    let names: Vec<String> = targets.iter().map(|t| t.service.clone()).collect();
    let views = ctx.active_services(&names).await?;
    let held = ctx.held.clone().expect("the lock is held");
    let mut rollouts = Vec::new();
    let mut sent_to: Vec<String> = Vec::new();
    let mut live = Vec::new();
    let mut ended = Vec::new();
    for (target, now) in targets.iter().zip(views) {
        let already_sent =
            held.resumed && held.record.move_of(&target.service).is_some_and(|m| m.sent);
        let mut revision = target.td.arn.clone();
        seen.insert(target.service.clone(), Seen::from_service(&now));
        if already_sent && now.desired_revision() != revision {
            // An earlier run of this release updated the service; its rollout ended without us.
            let by = now.desired_revision().to_owned();
            let end = if by == target.from {
                // Back where the release found it: ECS's circuit breaker, or someone, did it.
                RolloutEnd::RolledBackByEcs {
                    to: by,
                    reason: "the deployment of an earlier run of this release was rolled back"
                        .to_owned(),
                }
            } else {
                RolloutEnd::Replaced { by }
            };
            service_report(ctx, &target.service).outcome = end.outcome().to_owned();
            ended.push((target.service.clone(), end));
            continue;
        }
        let desired = now.desired_revision().to_owned();
        if !already_sent && desired != target.base && desired != revision {
            // Someone changed the service while we waited or migrated (an IaC apply, a
            // config change): keep their change and release our image on top of it.
            ctx.emit(Event::ServiceChanged {
                service: target.service.clone(),
                was: target.base.clone(),
                now: desired.clone(),
            });
            let rebased = revision_with_image(ctx, request, &target.service, &desired).await?;
            revision.clone_from(&rebased.td.arn);
            let from = target.from.clone();
            ctx.record(|record| {
                record.set_move(&target.service, Some(from), Some(revision.clone()));
            })
            .await?;
        }
        let record = if now.desired_revision() == revision {
            if held.resumed && !already_sent && revision != target.from {
                // The interrupted run's UpdateService went through before it could record it.
                ctx.record(|record| record.mark_sent(&target.service))
                    .await?;
            }
            if assess_rollout(&now, &revision) == RolloutProgress::Completed {
                ctx.emit(Event::AlreadyLive {
                    service: target.service.clone(),
                    task_definition: revision.clone(),
                });
                service_report(ctx, &target.service).outcome = "already_live".to_owned();
                if held.resumed && revision != target.from {
                    live.push(target.service.clone());
                }
                continue;
            }
            // Rolling out already (a re-run after shipmate was killed mid-rollout): follow it.
            ctx.service_updating = Some(revision.clone());
            deployment_report(
                ctx,
                &target.service,
                now.deployment_of(&revision).map(|d| d.id.clone()),
                &revision,
            );
            now.current_service_deployment.clone()
        } else {
            // A PAUSE hook a dead release left would hold this deployment with nobody to
            // continue it: it goes in the same call.
            let hooks = now
                .shape
                .our_hooks()
                .next()
                .map(|_| now.shape.hooks_without_ours());
            let updated =
                update_service(ctx, lock_request, &target.service, &revision, hooks).await?;
            sent_to.push(target.service.clone());
            updated.current_service_deployment
        };
        service_report(ctx, &target.service).outcome = "updated".to_owned();
        let failure_limit = now.circuit_breaker.is_none().then(|| {
            request
                .max_failed_tasks
                .unwrap_or_else(|| default_failure_limit(now.desired_count))
        });
        rollouts.push(Rollout {
            service: target.service.clone(),
            target: revision,
            from: target.from.clone(),
            failure_limit,
            record,
            // On ROLLING, production traffic moves with the tasks: deployed is complete.
            until_deployed: request.wait_until == WaitUntil::Deployed && now.shape.has_bake(),
        });
    }
    if !sent_to.is_empty() {
        // One record for the wave (ECS's tagging bucket is 20 calls, then 10 a second): a run
        // killed before it finds its services rolling out to its revision and marks them then.
        let now = ctx.now();
        ctx.record(|record| {
            record.live_at.get_or_insert(now);
            for service in &sent_to {
                record.mark_sent(service);
            }
            record.state = State::Deploying;
        })
        .await?;
    }
    Ok(WaveStart {
        rollouts,
        sent: !sent_to.is_empty(),
        live,
        ended,
    })
}

/// Some rollout did not complete: with `--rollback`, every service the release updated goes
/// back to what was live before it (services ECS rolled back are only followed); then the
/// release fails, naming what happened to each.
async fn fail_rollout(
    ctx: &mut Ctx,
    request: &DeployRequest,
    lock_request: &LockRequest,
    updated: &[Target],
    ends: Vec<(String, RolloutEnd)>,
    seen: &mut SeenAll,
) -> Result<(), Stop> {
    let mut back: Vec<(String, String)> = Vec::new();
    for (service, end) in &ends {
        if let RolloutEnd::RolledBackByEcs { to, .. } = end {
            back.push((service.clone(), to.clone()));
        }
    }
    let ours_to_undo: Vec<&Target> = if request.rollback_on_failure {
        updated
            .iter()
            .filter(|t| !back.iter().any(|(service, _)| *service == t.service))
            .collect()
    } else {
        Vec::new()
    };
    if !back.is_empty() || !ours_to_undo.is_empty() {
        ctx.enter(Phase::Rollback);
    }
    let reason = ends
        .iter()
        .find_map(|(service, end)| match end {
            RolloutEnd::Failed { reason } | RolloutEnd::RolledBackByEcs { reason, .. } => {
                Some(format!("{service}: {reason}"))
            }
            RolloutEnd::TimedOut => Some(format!("{service}: the rollout timed out")),
            RolloutEnd::Replaced { by } => Some(format!("{service}: replaced by {by}")),
            RolloutEnd::Completed | RolloutEnd::Deployed => None,
        })
        .unwrap_or_default();
    for (service, to) in &back {
        ctx.emit(Event::RollbackStarted {
            service: service.clone(),
            to: to.clone(),
            reason: "ECS's circuit breaker".to_owned(),
        });
    }
    for target in &ours_to_undo {
        ctx.emit(Event::RollbackStarted {
            service: target.service.clone(),
            to: target.from.clone(),
            reason: reason.clone(),
        });
        ctx.record(|record| record.state = State::RollingBack)
            .await?;
        lock::update_service(ctx, lock_request, &target.service, &target.from).await?;
        back.push((target.service.clone(), target.from.clone()));
    }
    let steady = if back.is_empty() {
        Vec::new()
    } else {
        rollout::follow_steady_all(
            ctx,
            &back,
            seen,
            ms(request.deploy_timeout),
            ms(request.poll_interval),
        )
        .await?
    };
    ctx.await_logs().await?;
    let several = request.services.len() > 1;
    let error = if let Some((service, RolloutEnd::Replaced { by })) = ends
        .iter()
        .find(|(_, end)| matches!(end, RolloutEnd::Replaced { .. }))
        .filter(|_| {
            !ends.iter().any(|(_, e)| {
                matches!(
                    e,
                    RolloutEnd::Failed { .. } | RolloutEnd::RolledBackByEcs { .. }
                )
            })
        }) {
        lock::close(ctx, EntryOutcome::Superseded).await?;
        ReleaseError::Replaced {
            service: service.clone(),
            by: by.clone(),
        }
    } else if ends.iter().all(|(_, end)| {
        matches!(
            end,
            RolloutEnd::TimedOut | RolloutEnd::Completed | RolloutEnd::Deployed
        )
    }) {
        lock::close(ctx, EntryOutcome::TimedOut).await?;
        let service = ends
            .iter()
            .find(|(_, end)| *end == RolloutEnd::TimedOut)
            .map(|(service, _)| service.clone())
            .unwrap_or_default();
        let target = updated.iter().find(|t| t.service == service);
        ReleaseError::DeployTimeout {
            service: service.clone(),
            task_definition: target.map(|t| t.td.arn.clone()).unwrap_or_default(),
            after: request.deploy_timeout,
            rolled_back: back
                .iter()
                .find(|(s, _)| *s == service && steady.contains(s))
                .map(|(_, to)| to.clone()),
        }
    } else {
        lock::close(ctx, EntryOutcome::DeploymentFailed).await?;
        let (service, reason) = ends
            .iter()
            .find_map(|(service, end)| match end {
                RolloutEnd::Failed { reason } | RolloutEnd::RolledBackByEcs { reason, .. } => {
                    Some((service.clone(), reason.clone()))
                }
                _ => None,
            })
            .unwrap_or_default();
        // With several services, the outcomes below say where each one is.
        let rolled_back_to = back
            .iter()
            .find(|(s, _)| *s == service && steady.contains(s) && !several)
            .map(|(_, to)| to.clone());
        let ecs_rolled_back = matches!(
            ends.iter().find(|(s, _)| *s == service),
            Some((_, RolloutEnd::RolledBackByEcs { .. }))
        );
        let reason = if several {
            format!("{reason} ({})", outcomes(ctx))
        } else {
            reason
        };
        ReleaseError::DeploymentFailed {
            service,
            reason,
            rolled_back_to,
            still_trying: !request.rollback_on_failure
                && !ecs_rolled_back
                && ends
                    .iter()
                    .any(|(_, end)| matches!(end, RolloutEnd::Failed { .. })),
        }
    };
    Err(Stop::Error(error))
}

/// Where each service of a release of several ended, in words: `web is on web:2, worker was
/// rolled back to worker:1`.
fn outcomes(ctx: &Ctx) -> String {
    let short = |arn: &Option<String>| {
        arn.as_deref()
            .map_or("?", |a| a.rsplit('/').next().unwrap_or(a))
            .to_owned()
    };
    ctx.report
        .services
        .iter()
        .map(|s| {
            let name = &s.service;
            let back_to = s
                .rollback
                .as_ref()
                .map(|r| r.task_definition.clone())
                .or_else(|| s.deployment.as_ref().and_then(|d| d.rolled_back_to.clone()))
                .or_else(|| s.previous_task_definition.clone());
            match s.outcome.as_str() {
                "completed" => format!("{name} is on {}", short(&s.task_definition)),
                "already_live" => format!("{name} already ran {}", short(&s.task_definition)),
                "updated" => format!("{name} was updated to {}", short(&s.task_definition)),
                "rolled_back" => format!("{name} was rolled back to {}", short(&back_to)),
                "failed" => format!("{name} failed on {}", short(&s.task_definition)),
                "timed_out" => format!("{name} timed out"),
                "replaced" => format!("{name} was replaced by another deployment"),
                _ => format!(
                    "{name} was not deployed (it runs {})",
                    short(&s.previous_task_definition)
                ),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The post-deploy command, from the release's revision with its service's network, then the
/// release closes: live either way, the command does not undo it.
pub(super) async fn post_deploy(
    ctx: &mut Ctx,
    request: &DeployRequest,
    source: &MigrationSource,
    command: &[String],
) -> Result<(), Stop> {
    ctx.enter(Phase::PostDeploy);
    let release_id = ctx.report.release_id.clone().unwrap_or_default();
    let mut spec = spec_for_service(
        Some(&source.service),
        &source.td.arn,
        &source.container,
        command.to_vec(),
        request.launch_type.as_deref(),
        request.allow_spot,
    );
    spec.started_by = ids::post_deploy_started_by(&release_id);
    let followed = tasks::run_one_off(
        ctx,
        OneOff {
            role: TaskRole::PostDeploy,
            spec,
            td: &source.td,
            timeout_ms: ms(request.post_deploy_timeout),
            poll_ms: ms(request.poll_interval),
            quiet_ms: ms(request.log_quiet_period),
            on_cancel: request.on_cancel,
        },
    )
    .await?;
    let verdict = tasks::gate(TaskRole::PostDeploy, &followed);
    ctx.await_logs().await?;
    lock::close(ctx, EntryOutcome::Succeeded).await?;
    verdict.map_err(Stop::Error)
}

/// The release is live: post-deploy (when something changed), then close.
async fn finish_live(
    ctx: &mut Ctx,
    request: &DeployRequest,
    source: &MigrationSource,
    migrated_now: bool,
    updated_now: bool,
) -> Result<(), Stop> {
    for section in &mut ctx.report.services {
        if section.outcome == "updated" {
            section.outcome = "completed".to_owned();
        }
    }
    if let (Some(command), true) = (&request.post_deploy, migrated_now || updated_now) {
        return post_deploy(ctx, request, source, command).await;
    }
    ctx.await_logs().await?;
    let outcome = if migrated_now || updated_now {
        EntryOutcome::Succeeded
    } else {
        EntryOutcome::AlreadyLive
    };
    lock::close(ctx, outcome).await
}

/// One service's revision: the one an interrupted run registered, or a new one like the
/// service's desired revision with the release's image.
async fn prepare(
    ctx: &mut Ctx,
    request: &DeployRequest,
    service: &ServiceView,
) -> Result<Target, Stop> {
    let name = service.service_name.clone();
    let held = ctx.held.clone().expect("the lock is held");
    let recorded = held
        .record
        .move_of(&name)
        .filter(|_| held.resumed)
        .and_then(|m| Some((m.from.clone(), m.to.clone()?)));
    let target = match recorded {
        Some((from, to)) => {
            // Resume exactly what the interrupted run registered, so its RunTask is the same.
            let td = ctx.describe_task_definition(&to).await?;
            let containers = moved(&td, request)?;
            let from = from.unwrap_or_else(|| service.live_revision().to_owned());
            ctx.emit(Event::RevisionReady {
                service: name.clone(),
                task_definition: td.arn.clone(),
                previous_task_definition: from.clone(),
                containers: containers.clone(),
                image_from: String::new(),
                reused: true,
            });
            Target {
                service: name.clone(),
                from,
                base: td.arn.clone(),
                td,
                containers,
            }
        }
        None => {
            let mut target =
                revision_with_image(ctx, request, &name, service.desired_revision()).await?;
            target.from = service.live_revision().to_owned();
            target
        }
    };
    let section = service_report(ctx, &name);
    section.previous_task_definition = Some(target.from.clone());
    section.task_definition = Some(target.td.arn.clone());
    if ctx.report.services.first().map(|s| s.service.as_str()) == Some(name.as_str()) {
        ctx.report.container = target.containers.first().cloned();
        ctx.report.previous_task_definition = Some(target.from.clone());
        ctx.report.task_definition = Some(target.td.arn.clone());
    }
    Ok(target)
}

/// The names of the containers of `td` that get the release's image.
fn moved(td: &TaskDefinitionView, request: &DeployRequest) -> Result<Vec<String>, Stop> {
    Ok(containers_to_release(
        &td.arn,
        &td.containers,
        &request.image,
        request.container.as_deref(),
    )
    .map_err(|e| Stop::Error(e.into()))?
    .into_iter()
    .map(|c| c.name.clone())
    .collect())
}

/// A revision like `base` with the release's image in the containers that get it.
pub(super) async fn revision_with_image(
    ctx: &mut Ctx,
    request: &DeployRequest,
    service: &str,
    base: &str,
) -> Result<Target, Stop> {
    let base_view = ctx.describe_task_definition(base).await?;
    if !base_view.unknown_members.is_empty() {
        // A revision without them would change what runs (a restart policy, a security
        // setting) without anyone deciding it.
        return Err(Stop::Error(ReleaseError::Invalid(format!(
            "{} has members this shipmate cannot copy into the release's revision: {} (they are newer than the aws-sdk-ecs it is built on); upgrade shipmate",
            base_view.arn,
            base_view.unknown_members.join(", ")
        ))));
    }
    let containers = moved(&base_view, request)?;
    let command = Command::RegisterRevision {
        base: base_view.arn.clone(),
        containers: containers.clone(),
        image: request.image.clone(),
    };
    let (arn, reused) = match ctx.call(command).await? {
        Observation::RevisionRegistered { arn, reused } => (arn, reused),
        other => return Err(ctx.unexpected("RegisterTaskDefinition", &other)),
    };
    let mut td = base_view.clone();
    td.arn.clone_from(&arn);
    let mut changes = Vec::new();
    for container in td
        .containers
        .iter_mut()
        .filter(|c| containers.contains(&c.name))
    {
        changes.push(ContainerChange {
            name: container.name.clone(),
            from: container.image.clone(),
            to: request.image.clone(),
        });
        container.image.clone_from(&request.image);
    }
    let image_from = changes.first().map(|c| c.from.clone()).unwrap_or_default();
    let section = service_report(ctx, service);
    section.revision_reused = reused;
    section.containers = changes;
    if ctx.report.services.first().map(|s| s.service.as_str()) == Some(service) {
        ctx.report.revision_reused = reused;
    }
    ctx.emit(Event::RevisionReady {
        service: service.to_owned(),
        task_definition: arn,
        previous_task_definition: base_view.arn.clone(),
        containers: containers.clone(),
        image_from,
        reused,
    });
    Ok(Target {
        service: service.to_owned(),
        from: base_view.arn.clone(),
        base: base_view.arn,
        td,
        containers,
    })
}

/// Where the migration runs: the chosen service's new revision (or a revision of the separate
/// migration family, kept in step with the release's image), with that service's network.
async fn migration_source(
    ctx: &mut Ctx,
    request: &DeployRequest,
    services: &[ServiceView],
    targets: &[Target],
) -> Result<MigrationSource, Stop> {
    let name = request
        .migrate_shape
        .service
        .clone()
        .or_else(|| request.services.first().cloned())
        .unwrap_or_default();
    let (Some(service), Some(target)) = (
        services.iter().find(|s| s.service_name == name),
        targets.iter().find(|t| t.service == name),
    ) else {
        return Err(Stop::Error(ReleaseError::Invalid(format!(
            "the migration runs from service `{name}`, which is not one of the release's services ({})",
            request.services.join(", ")
        ))));
    };
    let (td, containers) = match &request.migrate_shape.family {
        Some(family) => {
            let held = ctx.held.clone().expect("the lock is held");
            let recorded = held
                .record
                .migration
                .as_ref()
                .and_then(|m| m.task_definition.clone())
                .filter(|_| held.resumed);
            let td = match recorded {
                Some(arn) => ctx.describe_task_definition(&arn).await?,
                None => {
                    revision_with_image(ctx, request, &format!("{family} (migration)"), family)
                        .await?
                        .td
                }
            };
            let containers = moved(&td, request)?;
            (td, containers)
        }
        None => (target.td.clone(), target.containers.clone()),
    };
    let chosen: Vec<&crate::plan::ContainerChoice> = td
        .containers
        .iter()
        .filter(|c| containers.contains(&c.name))
        .collect();
    let container = command_container(&chosen)
        .map(|c| c.name.clone())
        .ok_or_else(|| {
            Stop::Error(ReleaseError::Invalid(format!(
                "no container of {} gets the image {}",
                td.arn, request.image
            )))
        })?;
    if migrate::sized_on_fargate(request, service) {
        migrate::check_task_size(request, &td)?;
    }
    Ok(MigrationSource {
        service: service.clone(),
        td,
        container,
    })
}

struct LookBack {
    /// This release's migration already passed (that task).
    migrated: Option<String>,
    /// An earlier run of this release ended with a failed migration: this is the next attempt.
    failed_before: Option<String>,
}

/// What the ledger says of this release before it goes on: the successful migration it already
/// has on record (an interrupted run's, our resumed entry; or a finished run's when no release
/// migrated or went live since), or that it is superseded: an earlier run of it lost its lock
/// (broken or unlocked) and a newer release went live after that, so finishing it now would put
/// an older release over a newer one.
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
    let own = entries.iter().position(|e| {
        e.release_id() == Some(release_id)
            && e.record.as_ref().is_some_and(|r| r.kind != Kind::Finish)
    });
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
                service: lock_request.record.services().collect::<Vec<_>>().join(" "),
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

fn deployment_report(ctx: &mut Ctx, service: &str, id: Option<String>, target: &str) {
    let report = DeploymentReport {
        id,
        task_definition: target.to_owned(),
        rollout_state: None,
        reason: None,
        rolled_back_to: None,
    };
    if ctx.report.services.first().map(|s| s.service.as_str()) == Some(service) {
        ctx.report.deployment = Some(report.clone());
    }
    service_report(ctx, service).deployment = Some(report);
}

async fn update_service(
    ctx: &mut Ctx,
    lock_request: &LockRequest,
    service: &str,
    target: &str,
    hooks: Option<Vec<crate::deployment::LifecycleHookView>>,
) -> Result<ServiceView, Stop> {
    let updated =
        lock::update_service_with_hooks(ctx, lock_request, service, target, hooks).await?;
    let deployment_id = updated
        .deployments
        .iter()
        .find(|d| d.task_definition == target && d.status == "PRIMARY")
        .map(|d| d.id.clone());
    ctx.emit(Event::ServiceUpdated {
        service: service.to_owned(),
        task_definition: target.to_owned(),
        deployment_id: deployment_id.clone(),
    });
    deployment_report(ctx, service, deployment_id, target);
    Ok(updated)
}
