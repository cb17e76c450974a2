//! The release commands as machines (observations in, commands out; see [`crate::machine`]):
//! `deploy`, `rollback`, `run`, and the read-only `plan`, `status`, `doctor`, `unlock` and `init`
//! inspections.
//! Every decision a release takes is in these flows; the driver only executes their commands.

mod ctx;
mod deploy;
mod doctor;
mod finish;
mod init;
mod inspect;
mod lock;
mod migrate;
mod pause;
mod presets;
mod rollback;
mod rollout;
mod run;
mod tasks;

use std::time::Duration;

use crate::config::{Gate, OnCancel, WaitUntil};
use crate::error::ReleaseError;
use crate::event::Event;
use crate::ledger::EntryOutcome;
use crate::machine::{Io, Machine};
use crate::report::Report;

pub use doctor::{DoctorRequest, doctor};
pub use init::{DiscoverRequest, discover};
pub use inspect::{
    LockView, ServiceStatus, Status, UnlockRequest, plan, status, unlock_close, unlock_inspect,
};
pub use lock::LIST_LAG_MS;
pub use tasks::LOG_DRAIN_CAP_MS;

use ctx::{Ctx, Stop};

/// The release lock's settings (docs/lock.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockSettings {
    /// What the lock protects; default: the cluster and the image's repository.
    pub key: Option<String>,
    /// How long to wait for the releases ahead.
    pub timeout: Duration,
    /// How long a holder may go without a heartbeat before the next release takes over.
    pub lease: Duration,
    /// Who runs this release (CI job, or user@host), recorded for whoever waits.
    pub by: String,
}

/// What the migration task looks like beyond the command (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationShape {
    /// The service whose new revision, network and launch settings the migration uses
    /// (default: the first service).
    pub service: Option<String>,
    /// A separate task-definition family for the migration (its own secrets or roles), kept in
    /// step with the release: a revision of it with the release's image runs the migration.
    pub family: Option<String>,
    /// Task-level overrides (Fargate sizes are validated by the settings).
    pub task_cpu: Option<String>,
    pub task_memory: Option<String>,
    /// Environment variables for the migration container.
    pub environment: Vec<(String, String)>,
    pub task_role_arn: Option<String>,
    pub execution_role_arn: Option<String>,
}

/// Everything `shipmate deploy` needs, resolved from flags and `shipmate.toml`.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub cluster: String,
    /// The services released together (one cluster), in order.
    pub services: Vec<String>,
    pub image: String,
    pub container: Option<String>,
    pub migrate: Option<Vec<String>>,
    /// Container-level cpu and memory overrides of the migration container.
    pub migrate_cpu: Option<i32>,
    pub migrate_memory: Option<i32>,
    pub migrate_shape: MigrationShape,
    pub migrate_timeout: Duration,
    pub launch_type: Option<String>,
    pub allow_spot: bool,
    pub deploy_timeout: Duration,
    pub poll_interval: Duration,
    pub rollback_on_failure: bool,
    /// How far to follow the deployment before returning.
    pub wait_until: WaitUntil,
    /// Where the migration gates the release.
    pub gate: Gate,
    /// Migrate under the lock and stop there: the deployment is someone else's (CodeDeploy).
    pub migrate_only: bool,
    /// A migration preset: `migrate` is its expand command, and after the deployment its
    /// contract phase applies what it held back.
    pub preset: Option<crate::preset::Preset>,
    pub preset_options: crate::preset::PresetOptions,
    pub lock: LockSettings,
    pub on_cancel: OnCancel,
    pub post_deploy: Option<Vec<String>>,
    pub post_deploy_timeout: Duration,
    /// After a task stops, read its logs until they were quiet this long.
    pub log_quiet_period: Duration,
    /// Fail the rollout after this many stopped new tasks when the service has no circuit
    /// breaker (default: the circuit breaker's own threshold for the desired count).
    pub max_failed_tasks: Option<u32>,
    /// The order services go live in: each wave completes before the next starts; services
    /// in no wave go last, together. Empty: all at once.
    pub waves: Vec<Vec<String>>,
}

/// `shipmate rollback`.
#[derive(Debug, Clone)]
pub struct RollbackRequest {
    pub cluster: String,
    pub services: Vec<String>,
    /// A task definition (family:revision or ARN); default: the last one live before the
    /// current one, from the ledger.
    pub to: Option<String>,
    pub timeout: Duration,
    pub poll_interval: Duration,
    pub wait: bool,
    /// Say what would happen, change nothing (and take no lock).
    pub dry_run: bool,
    /// Roll back past an applied contract phase all the same.
    pub force: bool,
    pub lock: LockSettings,
    pub max_failed_tasks: Option<u32>,
}

/// `shipmate run`: a one-off task with a service's settings or a given task definition.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub cluster: String,
    pub service: Option<String>,
    pub task_definition: Option<String>,
    pub container: Option<String>,
    pub command: Vec<String>,
    pub cpu: Option<i32>,
    pub memory: Option<i32>,
    pub launch_type: Option<String>,
    pub allow_spot: bool,
    pub timeout: Duration,
    pub poll_interval: Duration,
    pub on_cancel: OnCancel,
    pub log_quiet_period: Duration,
}

/// How a command ended, and its report.
#[derive(Debug)]
pub struct Finished<T = ()> {
    pub report: Report,
    pub result: Result<T, ReleaseError>,
}

pub fn deploy(request: DeployRequest) -> Machine<Finished> {
    Machine::new(|io: Io| async move {
        let mut ctx = Ctx::new(io, &request.cluster);
        ctx.report.service = request.services.first().cloned();
        ctx.report.image = Some(request.image.clone());
        let result = deploy::deploy(&mut ctx, &request).await;
        finished(ctx, result)
    })
}

/// `shipmate finish`: completes the release `request` describes (the deploy's own flags).
pub fn finish(request: DeployRequest) -> Machine<Finished> {
    Machine::new(|io: Io| async move {
        let mut ctx = Ctx::new(io, &request.cluster);
        ctx.report.service = request.services.first().cloned();
        ctx.report.image = Some(request.image.clone());
        let result = finish::finish(&mut ctx, &request).await;
        finished(ctx, result)
    })
}

pub fn rollback(request: RollbackRequest) -> Machine<Finished> {
    Machine::new(|io: Io| async move {
        let mut ctx = Ctx::new(io, &request.cluster);
        ctx.report.service = request.services.first().cloned();
        let result = rollback::rollback(&mut ctx, &request).await;
        finished(ctx, result)
    })
}

/// `Ok` carries the essential container's exit code.
pub fn run(request: RunRequest) -> Machine<Finished<i32>> {
    Machine::new(|io: Io| async move {
        let mut ctx = Ctx::new(io, &request.cluster);
        ctx.report.service.clone_from(&request.service);
        let result = run::run(&mut ctx, &request).await;
        let report = ctx.finish(&result.as_ref().map(|_| ()).map_err(Clone::clone));
        Finished { report, result }
    })
}

fn finished(ctx: Ctx, result: Result<(), ReleaseError>) -> Finished {
    let report = ctx.finish(&result);
    Finished { report, result }
}

/// Ends a flow that stopped early without leaving anything behind that another release would
/// trip over: a cancelled migration is stopped (and waited for) unless `--on-cancel leave`, the
/// lock is let go unless a migration still runs under it, and every log line is read.
async fn cleanup(ctx: &mut Ctx, stop: Stop) -> ReleaseError {
    let phase = ctx.phase().map_or("prepare", |p| p.label());
    let leave_paused = matches!(stop, Stop::Cancelled)
        && ctx
            .paused
            .first()
            .is_some_and(|p| p.on_cancel == OnCancel::Leave);
    let error = match stop {
        Stop::Cancelled => {
            let mut task_arn = None;
            let mut action = None;
            if let Some(running) = ctx.running.take() {
                task_arn = Some(running.task_arn.clone());
                action = Some(running.on_cancel);
                if running.on_cancel == OnCancel::Stop {
                    let stopped = async {
                        ctx.stop_task(&running.task_arn, "shipmate: interrupted")
                            .await?;
                        tasks::wait_stopped(ctx, &running.task_arn, running.role, 1_000).await
                    }
                    .await;
                    if stopped.is_err() {
                        // We could not see it stop: keep the lock so nothing migrates beside it.
                        ctx.held = None;
                    }
                } else {
                    let _ = ctx.stop_logs(running.role).await;
                    if running.role == crate::event::TaskRole::Migrate {
                        // The migration goes on: so does its lock, until it stops and the
                        // lease ends.
                        ctx.held = None;
                    }
                }
                ctx.emit(Event::Cancelled {
                    task_arn: running.task_arn,
                    action: running.on_cancel,
                });
            }
            ReleaseError::Interrupted {
                phase,
                task_arn,
                action,
                service_updating: ctx.service_updating.clone(),
            }
        }
        Stop::Error(error) => {
            if let Some(running) = ctx.running.take() {
                // We cannot follow the task any more, and it may still run.
                let _ = ctx.stop_logs(running.role).await;
                if running.role == crate::event::TaskRole::Migrate {
                    // Nothing may migrate beside it: its lock stays until the lease ends.
                    ctx.held = None;
                }
            }
            error
        }
    };
    // Deployments this release started paused: rolled back, unless `--on-cancel leave` leaves
    // them to their hook's timeout (which rolls them back too, unless someone continues).
    if !ctx.paused.is_empty() && !leave_paused {
        let _ = pause::resolve(ctx, "ROLLBACK").await;
    }
    let outcome = match error.exit_code() {
        crate::error::ExitCode::Interrupted => EntryOutcome::Cancelled,
        crate::error::ExitCode::LockNotAcquired => EntryOutcome::GaveUp,
        crate::error::ExitCode::Superseded => EntryOutcome::Superseded,
        crate::error::ExitCode::TimedOut => EntryOutcome::TimedOut,
        crate::error::ExitCode::MigrationFailed
        | crate::error::ExitCode::MigrationFailedToStart => EntryOutcome::MigrationFailed,
        crate::error::ExitCode::DeploymentFailed => EntryOutcome::DeploymentFailed,
        _ => EntryOutcome::Failed,
    };
    // Best effort: what cannot be cleaned up now is left to the lease and the log cap.
    let _ = lock::close(ctx, outcome).await;
    let _ = ctx.await_logs().await;
    error
}
