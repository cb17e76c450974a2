//! The read-only commands: `plan` (what deploy would do), `status` (where a service stands,
//! who holds its lock, its releases and what a rollback would pick) and `unlock` (who holds a
//! stuck lock, and releasing it once a person confirmed).

use serde::Serialize;

use crate::deployment::ServiceDeploymentView;
use crate::error::{Holder, ReleaseError};
use crate::ids::{self, ReleaseInputs};
use crate::io::{Command, Observation};
use crate::ledger::{self, Entry, EntryOutcome, State};
use crate::machine::{Io, Machine};
use crate::plan::{ContainerPlan, Plan, ServicePlan, containers_to_release, migration_launch};
use crate::report::service_console_url;
use crate::service::ServiceView;
use crate::task::TaskView;

use super::DeployRequest;
use super::ctx::{Ctx, Stop};
use super::lock::holder_of;
use super::rollback::family_of_service;

/// The lock of a ledger: who holds it and who queues behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockView {
    pub family: String,
    /// Open entries, oldest (the holder) first.
    pub open: Vec<Entry>,
    /// When this was read (epoch milliseconds), to tell heartbeat ages.
    pub read_at: i64,
    /// Whether the holder's recorded migration task still runs (`None`: it recorded none).
    pub holder_migrating: Option<bool>,
}

impl LockView {
    pub fn holder(&self) -> Option<Holder> {
        self.open.first().and_then(holder_of)
    }
}

/// `shipmate status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub services: Vec<ServiceStatus>,
    pub lock: LockView,
    /// The ledger's latest entries, newest first.
    pub releases: Vec<Entry>,
}

/// One service in `shipmate status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceStatus {
    pub service: ServiceView,
    pub console_url: Option<String>,
    /// Where `shipmate rollback` would take it now.
    pub rollback_to: Option<String>,
    /// `shipmate run` tasks of its family ECS still knows (about an hour).
    pub run_tasks: Vec<TaskView>,
    /// ECS's service-deployment records, newest first (empty where ECS keeps none or they are
    /// denied).
    pub deployments: Vec<ServiceDeploymentView>,
}

/// How many service deployments `status` shows a service.
const STATUS_DEPLOYMENTS: usize = 5;

/// A service's newest deployment records, or none where ECS does not answer for them.
async fn deployment_history(
    ctx: &mut Ctx,
    service: &str,
) -> Result<Vec<ServiceDeploymentView>, Stop> {
    if ctx.records_unavailable {
        return Ok(Vec::new());
    }
    let Ok(arns) = ctx.list_service_deployments(service).await? else {
        ctx.records_unavailable = true;
        return Ok(Vec::new());
    };
    let newest: Vec<String> = arns.into_iter().take(STATUS_DEPLOYMENTS).collect();
    let mut records = ctx.service_deployments(&newest).await?.unwrap_or_default();
    records.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    Ok(records)
}

/// What `status` and `unlock` need to find a ledger.
#[derive(Debug, Clone)]
pub struct UnlockRequest {
    pub cluster: String,
    pub services: Vec<String>,
    pub lock_key: Option<String>,
    /// Who releases it, recorded on the entry.
    pub by: String,
}

/// How many releases `status` lists.
const STATUS_RELEASES: i32 = 10;

pub(crate) async fn newest_revision(ctx: &mut Ctx, family: &str) -> Result<Option<i32>, Stop> {
    match ctx
        .call(Command::NewestEntry {
            family: family.to_owned(),
        })
        .await?
    {
        Observation::NewestEntry(newest) => Ok(newest),
        other => Err(ctx.unexpected("ListTaskDefinitions", &other)),
    }
}

pub(super) async fn lock_view(ctx: &mut Ctx, family: &str) -> Result<LockView, Stop> {
    let open = match ctx
        .call(Command::ListOpenEntries {
            family: family.to_owned(),
        })
        .await?
    {
        Observation::OpenEntries(revisions) => revisions,
        other => return Err(ctx.unexpected("ListTaskDefinitions", &other)),
    };
    let mut entries = ctx.describe_entries(family, open).await?;
    entries.retain(|e| e.open);
    entries.sort_by_key(|e| e.revision);
    let task = entries
        .first()
        .and_then(holder_of)
        .and_then(|holder| holder.migration_task);
    let holder_migrating = match task {
        Some(task) => Some(
            ctx.describe_tasks(std::slice::from_ref(&task))
                .await?
                .iter()
                .any(|t| !t.is_stopped()),
        ),
        None => None,
    };
    Ok(LockView {
        family: family.to_owned(),
        open: entries,
        read_at: ctx.now(),
        holder_migrating,
    })
}

fn stop_to_error(stop: Stop) -> ReleaseError {
    match stop {
        Stop::Error(error) => error,
        Stop::Cancelled => ReleaseError::Interrupted {
            phase: "status",
            task_arn: None,
            action: None,
            service_updating: None,
        },
    }
}

pub fn status(request: UnlockRequest) -> Machine<Result<Status, ReleaseError>> {
    Machine::new(|io: Io| async move {
        let mut ctx = Ctx::new(io, &request.cluster);
        read_status(&mut ctx, &request).await.map_err(stop_to_error)
    })
}

async fn read_status(ctx: &mut Ctx, request: &UnlockRequest) -> Result<Status, Stop> {
    let views = ctx.describe_services(&request.services).await?;
    let family = family_of_service(ctx, request.lock_key.as_deref(), &views[0]).await?;
    let lock = lock_view(ctx, &family).await?;
    let releases = match newest_revision(ctx, &family).await? {
        Some(newest) => {
            let revisions: Vec<i32> = (1.max(newest - STATUS_RELEASES + 1)..=newest)
                .rev()
                .collect();
            let mut entries = ctx.describe_entries(&family, revisions).await?;
            entries.sort_by_key(|e| std::cmp::Reverse(e.revision));
            entries
        }
        None => Vec::new(),
    };
    let mut services = Vec::with_capacity(views.len());
    for service in views {
        let rollback_to =
            ledger::rollback_target(&releases, &service.service_name, service.live_revision())
                .map(str::to_owned);
        let family_of_td = service
            .desired_revision()
            .rsplit('/')
            .next()
            .and_then(|tail| tail.split(':').next())
            .unwrap_or_default()
            .to_owned();
        let mut run_arns = Vec::new();
        for stopped in [false, true] {
            match ctx
                .call(Command::ListTasks {
                    family: Some(family_of_td.clone()),
                    started_by: Some("shipmate/run".to_owned()),
                    stopped,
                })
                .await?
            {
                Observation::TaskArns(arns) => run_arns.extend(arns),
                other => return Err(ctx.unexpected("ListTasks", &other)),
            }
        }
        let mut run_tasks = ctx.describe_tasks(&run_arns).await?;
        run_tasks.sort_by_key(|t| std::cmp::Reverse(t.created_at));
        let deployments = deployment_history(ctx, &service.service_name).await?;
        services.push(ServiceStatus {
            console_url: service_console_url(
                &service.service_arn,
                &request.cluster,
                &service.service_name,
            ),
            service,
            rollback_to,
            run_tasks,
            deployments,
        });
    }
    Ok(Status {
        services,
        lock,
        releases,
    })
}

/// `shipmate unlock`, first half: the lock of the service's ledger as it stands.
pub fn unlock_inspect(request: UnlockRequest) -> Machine<Result<LockView, ReleaseError>> {
    Machine::new(|io: Io| async move {
        let mut ctx = Ctx::new(io, &request.cluster);
        let result = async {
            let service = ctx.describe_service(&request.services[0]).await?;
            let family = family_of_service(&mut ctx, request.lock_key.as_deref(), &service).await?;
            lock_view(&mut ctx, &family).await
        }
        .await;
        result.map_err(stop_to_error)
    })
}

/// `shipmate unlock`, second half, once a person confirmed: closes the holder's entry.
pub fn unlock_close(
    cluster: String,
    holder: Entry,
    by: String,
) -> Machine<Result<(), ReleaseError>> {
    Machine::new(|io: Io| async move {
        let mut ctx = Ctx::new(io, &cluster);
        let mut record = holder
            .record
            .clone()
            .unwrap_or_else(|| ledger::Record::new("unknown", ledger::Kind::Deploy, &cluster, &[]));
        record.outcome = Some(EntryOutcome::Unlocked);
        record.state = State::Closed;
        record.closed_by = Some(by);
        record.finished_at = Some(ctx.now());
        ctx.close_entry(&holder.arn, record)
            .await
            .map_err(stop_to_error)
    })
}

/// `shipmate plan`: what deploy would do. Only reads.
pub fn plan(request: DeployRequest, pending: bool) -> Machine<Result<Plan, ReleaseError>> {
    Machine::new(move |io: Io| async move {
        let mut ctx = Ctx::new(io, &request.cluster);
        let result = async {
            let mut plan = read_plan(&mut ctx, &request).await?;
            if pending {
                let first = ctx.describe_service(&plan.migrate_service).await?;
                plan.pending =
                    Some(super::presets::pending_plan(&mut ctx, &request, &first).await?);
                ctx.await_logs().await?;
            }
            Ok(plan)
        }
        .await;
        result.map_err(stop_to_error)
    })
}

async fn read_plan(ctx: &mut Ctx, request: &DeployRequest) -> Result<Plan, Stop> {
    let views = ctx.describe_services(&request.services).await?;
    let mut services = Vec::with_capacity(views.len());
    for view in &views {
        let current = ctx
            .describe_task_definition(view.desired_revision())
            .await?;
        let moved: Vec<String> = containers_to_release(
            &current.arn,
            &current.containers,
            &request.image,
            request.container.as_deref(),
        )
        .map_err(|e| Stop::Error(e.into()))?
        .into_iter()
        .map(|c| c.name.clone())
        .collect();
        let containers: Vec<ContainerPlan> = current
            .containers
            .iter()
            .map(|c| ContainerPlan {
                name: c.name.clone(),
                essential: c.essential,
                image_from: c.image.clone(),
                image_to: if moved.contains(&c.name) {
                    request.image.clone()
                } else {
                    c.image.clone()
                },
            })
            .collect();
        let unchanged = containers.iter().all(|c| c.image_from == c.image_to);
        services.push(ServicePlan {
            service: view.service_name.clone(),
            task_definition_from: current.arn.clone(),
            live_task_definition: view.live_revision().to_owned(),
            reuses_revision: unchanged.then(|| current.arn.clone()),
            containers,
            network: view.network.clone(),
            platform_version: view.platform_version.clone(),
            desired_count: view.desired_count,
            circuit_breaker: view.circuit_breaker.is_some(),
            deployment: view.shape.clone(),
            refusal: super::deploy::refusal(request, view).map(|e| e.to_string()),
        });
    }
    let key = request
        .lock
        .key
        .clone()
        .unwrap_or_else(|| ledger::default_key(&request.cluster, &request.image));
    let lock = lock_view(ctx, &ledger::family(&key)).await?;
    let migrate_service = request
        .migrate_shape
        .service
        .clone()
        .or_else(|| request.services.first().cloned())
        .unwrap_or_default();
    let source = views
        .iter()
        .find(|v| v.service_name == migrate_service)
        .ok_or_else(|| {
            Stop::Error(ReleaseError::Invalid(format!(
                "the migration runs from service `{migrate_service}`, which is not one of the release's services ({})",
                request.services.join(", ")
            )))
        })?;
    let launch = migration_launch(
        source.launch_type.as_deref(),
        &source.capacity,
        request.launch_type.as_deref(),
        request.allow_spot,
    );
    let shape = &request.migrate_shape;
    if super::migrate::sized_on_fargate(request, source) {
        // The size the migration task would have: the overrides over its task definition's.
        let td = ctx
            .describe_task_definition(shape.family.as_deref().unwrap_or(source.desired_revision()))
            .await?;
        super::migrate::check_task_size(request, &td)?;
    }
    Ok(Plan {
        release_id: ids::release_id(&ReleaseInputs {
            cluster: &request.cluster,
            service: &request.services.join(","),
            image: &request.image,
            container: request.container.as_deref().unwrap_or(""),
            migrate: request.migrate.as_deref(),
        }),
        cluster: request.cluster.clone(),
        image: request.image.clone(),
        services,
        waves: super::deploy::waves(request),
        gate: request.gate,
        migrate_only: request.migrate_only,
        wait_until: request.wait_until,
        migrate_command: request.migrate.clone(),
        migrate_service,
        migrate_family: request.migrate_shape.family.clone(),
        migrate_cpu: request.migrate_cpu,
        migrate_memory: request.migrate_memory,
        migrate_task_cpu: request.migrate_shape.task_cpu.clone(),
        migrate_task_memory: request.migrate_shape.task_memory.clone(),
        migrate_environment: shape
            .environment
            .iter()
            .map(|(name, _)| name.clone())
            .collect(),
        migrate_task_role_arn: shape.task_role_arn.clone(),
        migrate_execution_role_arn: shape.execution_role_arn.clone(),
        launch,
        migrate_timeout: request.migrate_timeout,
        deploy_timeout: request.deploy_timeout,
        poll_interval: request.poll_interval,
        rollback_on_failure: request.rollback_on_failure,
        post_deploy_command: request.post_deploy.clone(),
        lock_family: lock.family.clone(),
        lock_holder: lock.holder(),
        lock_queue: u32::try_from(lock.open.len()).unwrap_or(u32::MAX),
        pending: None,
    })
}
