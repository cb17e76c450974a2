//! The driver: reads ECS, asks `shipmate-release` what it means, does what it decides, and
//! reports every step as an event. It is the only part of the release that waits, and it
//! waits through [`Pace`] at the configured poll interval, racing every wait against the
//! cancellation token the CLI fires on SIGINT/SIGTERM.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::TaskDefinition;
use shipmate_release::config::OnCancel;
use shipmate_release::event::{Event, Phase, TaskRole};
use shipmate_release::ids::{self, ReleaseInputs};
use shipmate_release::lock::{LockDecision, decide_lock};
use shipmate_release::plan::{Launch, Plan, choose_container, migration_launch};
use shipmate_release::release::{
    Command, Observation, Outcome, Release, ReleaseOptions, RolloutEnd,
};
use shipmate_release::report::{
    DeploymentReport, PhaseTiming, Report, TaskReport, service_console_url, task_console_url,
};
use shipmate_release::service::{RolloutProgress, ServiceView, assess_rollout, new_events};
use shipmate_release::task::{TaskOutcome, TaskProgress, TaskView, assess_task};
use tokio_util::sync::CancellationToken;

use crate::client::Clients;
use crate::ecs::{
    Ecs, RunTaskParams, RunTaskResult, ServiceSnapshot, awslogs_target, container_choices,
    essential_map, network_view, registrable, task_view, with_image,
};
use crate::error::ReleaseError;
use crate::logs::{LogTail, stream_name};
use crate::reporter::{Pace, Reporter};

/// Everything `shipmate deploy` needs, resolved from flags and `shipmate.toml`.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub cluster: String,
    pub service: String,
    pub image: String,
    pub container: Option<String>,
    pub migrate: Option<Vec<String>>,
    pub migrate_cpu: Option<i32>,
    pub migrate_memory: Option<i32>,
    pub migrate_timeout: Duration,
    pub launch_type: Option<String>,
    pub allow_spot: bool,
    pub deploy_timeout: Duration,
    pub poll_interval: Duration,
    pub rollback_on_failure: bool,
    pub wait: bool,
    pub lock_timeout: Duration,
    pub lock_lease: Duration,
    pub on_cancel: OnCancel,
    pub post_deploy: Option<Vec<String>>,
    pub post_deploy_timeout: Duration,
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
}

/// `shipmate rollback`.
#[derive(Debug, Clone)]
pub struct RollbackRequest {
    pub cluster: String,
    pub service: String,
    /// A task definition (family:revision or ARN); default: the revision before the current one.
    pub to: Option<String>,
    pub timeout: Duration,
    pub poll_interval: Duration,
    pub wait: bool,
}

/// `shipmate status`.
#[derive(Debug, Clone)]
pub struct ServiceStatus {
    pub service: ServiceView,
    pub console_url: Option<String>,
    /// One-off tasks shipmate started for this service's family, newest first.
    pub releases: Vec<TaskView>,
}

pub struct Driver {
    ecs: Ecs,
    reporter: Arc<dyn Reporter>,
    pace: Arc<dyn Pace>,
    cancel: CancellationToken,
}

/// The bookkeeping of one command: report and phase timeline.
struct Ledger {
    report: Report,
    started: Instant,
    phase: Option<(Phase, Instant)>,
}

impl Ledger {
    fn new(cluster: &str) -> Ledger {
        Ledger {
            report: Report {
                cluster: cluster.to_owned(),
                result: "failed".to_owned(),
                ..Report::default()
            },
            started: Instant::now(),
            phase: None,
        }
    }
}

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The prepared release: what prepare read and decided.
struct Prepared {
    snapshot: ServiceSnapshot,
    current_arn: String,
    target: TaskDefinition,
    target_arn: String,
    container: String,
    release_id: String,
}

enum LockResult {
    Acquired {
        task: Box<TaskView>,
        attached: bool,
        attempt: u32,
    },
    /// Another release deployed meanwhile: start over from the new service state.
    Restart,
}

struct Followed {
    task: TaskView,
    outcome: TaskOutcome,
    duration: Duration,
    log_lines: u64,
}

impl Driver {
    pub fn new(
        clients: Clients,
        cluster: &str,
        reporter: Arc<dyn Reporter>,
        pace: Arc<dyn Pace>,
        cancel: CancellationToken,
    ) -> Driver {
        Driver {
            ecs: Ecs {
                clients,
                cluster: cluster.to_owned(),
            },
            reporter,
            pace,
            cancel,
        }
    }

    fn emit(&self, event: Event) {
        self.reporter.event(event);
    }

    fn phase_start(&self, ledger: &mut Ledger, phase: Phase) {
        self.phase_end(ledger, true);
        ledger.phase = Some((phase, Instant::now()));
        self.emit(Event::PhaseStarted { phase });
    }

    fn phase_end(&self, ledger: &mut Ledger, ok: bool) {
        if let Some((phase, started)) = ledger.phase.take() {
            let duration_ms = ms(started.elapsed());
            ledger.report.phases.push(PhaseTiming {
                phase,
                duration_ms,
                ok,
            });
            self.emit(Event::PhaseFinished {
                phase,
                duration_ms,
                ok,
            });
        }
    }

    fn close(&self, mut ledger: Ledger, result: &Result<(), ReleaseError>) -> Report {
        self.phase_end(&mut ledger, result.is_ok());
        ledger.report.duration_ms = ms(ledger.started.elapsed());
        ledger.report.retries = self.ecs.clients.retries();
        if result.is_ok() {
            ledger.report.result = "succeeded".to_owned();
        }
        if let Err(error) = result {
            ledger.report.message = Some(error.to_string());
        }
        ledger.report
    }

    /// Sleeps one poll interval; false if cancelled meanwhile.
    async fn wait(&self, interval: Duration) -> bool {
        tokio::select! {
            () = self.pace.sleep(interval) => true,
            () = self.cancel.cancelled() => false,
        }
    }

    // ---------------------------------------------------------------- deploy

    pub async fn deploy(&self, request: &DeployRequest) -> (Report, Result<(), ReleaseError>) {
        let mut ledger = Ledger::new(&request.cluster);
        ledger.report.service = Some(request.service.clone());
        ledger.report.image = Some(request.image.clone());
        let result = self.deploy_inner(request, &mut ledger).await;
        (self.close(ledger, &result), result)
    }

    /// Executes the commands of the release's state machine (`shipmate_release::release`) and
    /// feeds it what they observed; the order of the phases is the machine's, not this loop's.
    async fn deploy_inner(
        &self,
        request: &DeployRequest,
        ledger: &mut Ledger,
    ) -> Result<(), ReleaseError> {
        let mut release = Release::new(ReleaseOptions {
            migrate: request.migrate.is_some(),
            wait: request.wait,
            rollback_on_failure: request.rollback_on_failure,
            post_deploy: request.post_deploy.is_some(),
        });
        let mut command = release.first_command();
        let mut prepared: Option<Prepared> = None;
        let mut acquired: Option<(TaskView, bool, u32)> = None;
        let mut seen: HashSet<String> = HashSet::new();
        // The error behind a failed gate or a cancel, returned when the machine finishes.
        let mut failure: Option<ReleaseError> = None;
        loop {
            // The timeline follows the machine: a new phase closes the previous one.
            if ledger.phase.map(|(phase, _)| phase) != Some(release.phase()) {
                self.phase_start(ledger, release.phase());
            }
            let observation = match command {
                Command::Prepare { first } => {
                    let ready = self.prepare(request, ledger, first).await?;
                    if ready.target_arn == ready.current_arn {
                        self.emit(Event::AlreadyDeployed {
                            task_definition: ready.target_arn.clone(),
                        });
                    }
                    let observation = Observation::Prepared {
                        current: ready.current_arn.clone(),
                        target: ready.target_arn.clone(),
                    };
                    prepared = Some(ready);
                    observation
                }
                Command::AcquireLockAndStartMigration => {
                    let ready = prepared_or_bug(prepared.as_ref())?;
                    let migrate = request.migrate.as_deref().ok_or_else(|| {
                        ReleaseError::Invalid("a lock without a migration command".to_owned())
                    })?;
                    match self.acquire(request, ready, migrate).await {
                        Ok(LockResult::Restart) => Observation::RestartNeeded,
                        Ok(LockResult::Acquired {
                            task,
                            attached,
                            attempt,
                        }) => {
                            acquired = Some((*task, attached, attempt));
                            Observation::LockAcquired
                        }
                        Err(error) => cancelled(error, &mut failure)?,
                    }
                }
                Command::FollowMigration => {
                    let ready = prepared_or_bug(prepared.as_ref())?;
                    let (task, attached, attempt) = acquired.take().ok_or_else(|| {
                        ReleaseError::Invalid("a migration without its task".to_owned())
                    })?;
                    match self
                        .migrate(request, ledger, ready, task, attached, attempt)
                        .await
                    {
                        Ok(followed) => {
                            let verdict = gate(TaskRole::Migrate, &followed);
                            passed(verdict, &mut failure, |passed| {
                                Observation::MigrationFinished { passed }
                            })
                        }
                        Err(error) => cancelled(error, &mut failure)?,
                    }
                }
                Command::UpdateService => {
                    let ready = prepared_or_bug(prepared.as_ref())?;
                    seen = self.update_service(request, ledger, ready).await?;
                    Observation::ServiceUpdated
                }
                Command::FollowRollout => {
                    let ready = prepared_or_bug(prepared.as_ref())?;
                    match self.follow_rollout(request, ledger, ready, &mut seen).await {
                        Ok(end) => Observation::RolloutFinished(end),
                        Err(error) => cancelled(error, &mut failure)?,
                    }
                }
                Command::RollBack {
                    to,
                    reason,
                    update_service,
                } => {
                    let rolled_back = if update_service {
                        self.roll_back_to(request, ledger, &to, &reason, &mut seen)
                            .await
                    } else {
                        self.emit(Event::RollbackStarted {
                            to: to.clone(),
                            reason,
                        });
                        self.follow_steady(request, ledger, &to, &mut seen).await
                    };
                    match rolled_back {
                        Ok(()) => Observation::RollbackFinished,
                        Err(error) => cancelled(error, &mut failure)?,
                    }
                }
                Command::RunPostDeploy => {
                    let ready = prepared_or_bug(prepared.as_ref())?;
                    match self.post_deploy(request, ledger, ready).await {
                        Ok(followed) => {
                            let verdict = gate(TaskRole::PostDeploy, &followed);
                            passed(verdict, &mut failure, |passed| {
                                Observation::PostDeployFinished { passed }
                            })
                        }
                        Err(error) => cancelled(error, &mut failure)?,
                    }
                }
                Command::Finish(outcome) => {
                    let target = prepared.map(|ready| ready.target_arn).unwrap_or_default();
                    return finished(request, outcome, failure, target);
                }
            };
            command = release.next(observation);
        }
    }

    /// UpdateService to the target; returns the service events it already shows.
    async fn update_service(
        &self,
        request: &DeployRequest,
        ledger: &mut Ledger,
        prepared: &Prepared,
    ) -> Result<HashSet<String>, ReleaseError> {
        let updated = self
            .ecs
            .update_service(&request.service, &prepared.target_arn)
            .await?;
        let deployment_id = updated
            .view
            .deployments
            .iter()
            .find(|d| d.task_definition == prepared.target_arn && d.status == "PRIMARY")
            .map(|d| d.id.clone());
        self.emit(Event::ServiceUpdated {
            task_definition: prepared.target_arn.clone(),
            deployment_id: deployment_id.clone(),
        });
        ledger.report.deployment = Some(DeploymentReport {
            id: deployment_id,
            task_definition: prepared.target_arn.clone(),
            rollout_state: None,
            reason: None,
            rolled_back_to: None,
        });
        Ok(updated.view.events.iter().map(|e| e.id.clone()).collect())
    }

    /// Runs the post-deploy task from the target revision and follows it to its end.
    async fn post_deploy(
        &self,
        request: &DeployRequest,
        ledger: &mut Ledger,
        prepared: &Prepared,
    ) -> Result<Followed, ReleaseError> {
        let command = request.post_deploy.clone().ok_or_else(|| {
            ReleaseError::Invalid("a post-deploy task without a command".to_owned())
        })?;
        let mut params = self.one_off_params(request, prepared, command, None, None);
        params.started_by = Some(ids::post_deploy_started_by(&prepared.release_id));
        let essential = essential_map(&prepared.target);
        let (task, _) = self.start_one_off(&params, &essential).await?;
        self.emit(Event::TaskStarted {
            role: TaskRole::PostDeploy,
            task_arn: task.task_arn.clone(),
            attached: false,
            attempt: 0,
        });
        let tail = self.tail_for(
            TaskRole::PostDeploy,
            &prepared.target,
            &prepared.container,
            &task,
        );
        let followed = self
            .follow_task(
                TaskRole::PostDeploy,
                task,
                &essential,
                tail,
                request.post_deploy_timeout,
                request.poll_interval,
                request.on_cancel,
            )
            .await;
        self.record_task(ledger, TaskRole::PostDeploy, followed, false, 0)
    }

    async fn prepare(
        &self,
        request: &DeployRequest,
        ledger: &mut Ledger,
        first: bool,
    ) -> Result<Prepared, ReleaseError> {
        let snapshot = self.ecs.describe_service(&request.service).await?;
        if snapshot.view.status != "ACTIVE" {
            return Err(ReleaseError::ServiceNotActive {
                cluster: request.cluster.clone(),
                service: request.service.clone(),
                status: snapshot.view.status.clone(),
            });
        }
        let current_arn = snapshot.view.primary().map_or_else(
            || snapshot.view.task_definition.clone(),
            |d| d.task_definition.clone(),
        );
        let current = self.ecs.describe_task_definition(&current_arn).await?;
        let choices = container_choices(&current);
        let chosen = choose_container(&current_arn, &choices, request.container.as_deref())?;
        let container = chosen.name.clone();
        let release_id = ids::release_id(&ReleaseInputs {
            cluster: &request.cluster,
            service: &request.service,
            image: &request.image,
            container: &container,
            migrate: request.migrate.as_deref(),
        });
        if first {
            self.emit(Event::ReleaseStarted {
                release_id: release_id.clone(),
                cluster: request.cluster.clone(),
                service: request.service.clone(),
                image: request.image.clone(),
                container: container.clone(),
            });
        }
        let candidate = with_image(&current, &container, &request.image);
        let (target, reused) = if registrable(&current) == candidate {
            (current.clone(), true)
        } else {
            let family = current.family().unwrap_or_default();
            let latest = self.ecs.describe_task_definition(family).await?;
            if registrable(&latest) == candidate {
                (latest, true)
            } else {
                (self.ecs.register_task_definition(&candidate).await?, false)
            }
        };
        let target_arn = target.task_definition_arn().unwrap_or_default().to_owned();
        self.emit(Event::RevisionReady {
            task_definition: target_arn.clone(),
            previous_task_definition: current_arn.clone(),
            image_from: chosen.image.clone(),
            reused,
        });
        let report = &mut ledger.report;
        report.release_id = Some(release_id.clone());
        report.container = Some(container.clone());
        report.previous_task_definition = Some(current_arn.clone());
        report.task_definition = Some(target_arn.clone());
        report.revision_reused = reused;
        report.service_console_url = service_console_url(
            &snapshot.view.service_arn,
            &request.cluster,
            &request.service,
        );
        Ok(Prepared {
            snapshot,
            current_arn,
            target,
            target_arn,
            container,
            release_id,
        })
    }

    fn one_off_params(
        &self,
        request: &DeployRequest,
        prepared: &Prepared,
        command: Vec<String>,
        cpu: Option<i32>,
        memory: Option<i32>,
    ) -> RunTaskParams {
        RunTaskParams {
            task_definition: prepared.target_arn.clone(),
            container: prepared.container.clone(),
            command: Some(command),
            cpu,
            memory,
            network: prepared.snapshot.network().cloned(),
            launch: migration_launch(
                prepared.snapshot.launch_type(),
                &prepared.snapshot.capacity(),
                request.launch_type.as_deref(),
                request.allow_spot,
            ),
            platform_version: prepared.snapshot.raw.platform_version().map(str::to_owned),
            started_by: Some(ids::started_by(&prepared.release_id)),
            client_token: None,
        }
    }

    /// Takes the migration lock by starting (or finding) this release's migration task.
    async fn acquire(
        &self,
        request: &DeployRequest,
        prepared: &Prepared,
        command: &[String],
    ) -> Result<LockResult, ReleaseError> {
        let base = prepared.snapshot.lock_base();
        let essential = essential_map(&prepared.target);
        let mut params = self.one_off_params(
            request,
            prepared,
            command.to_vec(),
            request.migrate_cpu,
            request.migrate_memory,
        );
        let waiting_since = Instant::now();
        let mut attempt: u32 = 0;
        let mut announced: Option<(String, String)> = None;
        loop {
            if self.cancel.is_cancelled() {
                return Err(interrupted("lock", None, None));
            }
            params.client_token = Some(ids::lock_token(
                &request.cluster,
                &request.service,
                &base,
                attempt,
            ));
            let before = self.pace.now_ms();
            let holders = match self.ecs.run_task(&params).await? {
                RunTaskResult::Started(task) => {
                    let view = task_view(&task, &essential);
                    // RunTask creates tasks PROVISIONING: anything further along (or older than
                    // this call) is this release's own task from an earlier run.
                    let existed = view.last_status != "PROVISIONING"
                        || view
                            .created_at
                            .is_some_and(|created| created < before - 2000);
                    let failed = matches!(assess_task(&view), TaskProgress::Finished(ref outcome) if !outcome.succeeded());
                    if existed && failed {
                        self.emit(Event::PreviousAttemptFailed {
                            task_arn: view.task_arn.clone(),
                            attempt,
                        });
                        attempt += 1;
                        continue;
                    }
                    return Ok(LockResult::Acquired {
                        task: Box::new(view),
                        attached: existed,
                        attempt,
                    });
                }
                RunTaskResult::Conflict(holders) => holders,
            };
            let tasks = self.ecs.describe_tasks(&holders).await?;
            let views: Vec<TaskView> = tasks
                .iter()
                .map(|t| task_view(t, &HashMap::new()))
                .collect();
            let decision = decide_lock(&views, self.pace.now_ms(), request.lock_lease);
            let (holder, status) = match decision {
                LockDecision::NextAttempt => {
                    attempt += 1;
                    continue;
                }
                LockDecision::Held { holder } => {
                    let status = holder.last_status.clone();
                    (holder, status)
                }
                LockDecision::HolderDeploying { holder } => {
                    (holder, "deploying its release".to_owned())
                }
            };
            let key = (holder.task_arn.clone(), status.clone());
            if announced.as_ref() != Some(&key) {
                self.emit(Event::LockWaiting {
                    holder_task_arn: holder.task_arn.clone(),
                    holder_started_by: holder.started_by.clone(),
                    holder_status: status.clone(),
                    waited_ms: ms(waiting_since.elapsed()),
                });
                announced = Some(key);
            }
            // Wait for the holder to change: its task to stop, or the service to move on.
            loop {
                if waiting_since.elapsed() > request.lock_timeout {
                    return Err(ReleaseError::LockTimeout {
                        service: request.service.clone(),
                        holder_task_arn: holder.task_arn.clone(),
                        holder_started_by: holder.started_by.clone(),
                        holder_status: status,
                        waited: waiting_since.elapsed(),
                    });
                }
                if !self.wait(request.poll_interval).await {
                    return Err(interrupted("lock", None, None));
                }
                if holder.is_stopped() {
                    let snapshot = self.ecs.describe_service(&request.service).await?;
                    if snapshot.lock_base() != base {
                        return Ok(LockResult::Restart);
                    }
                    let stopped = holder.stopped_at.unwrap_or_default();
                    if self.pace.now_ms().saturating_sub(stopped)
                        > i64::try_from(request.lock_lease.as_millis()).unwrap_or(i64::MAX)
                    {
                        break;
                    }
                } else {
                    let now = self
                        .ecs
                        .describe_tasks(std::slice::from_ref(&holder.task_arn))
                        .await?;
                    if now
                        .first()
                        .is_none_or(|t| t.last_status() == Some("STOPPED"))
                    {
                        break;
                    }
                }
            }
        }
    }

    async fn migrate(
        &self,
        request: &DeployRequest,
        ledger: &mut Ledger,
        prepared: &Prepared,
        task: TaskView,
        attached: bool,
        attempt: u32,
    ) -> Result<Followed, ReleaseError> {
        self.emit(Event::TaskStarted {
            role: TaskRole::Migrate,
            task_arn: task.task_arn.clone(),
            attached,
            attempt,
        });
        let essential = essential_map(&prepared.target);
        let tail = self.tail_for(
            TaskRole::Migrate,
            &prepared.target,
            &prepared.container,
            &task,
        );
        let followed = self
            .follow_task(
                TaskRole::Migrate,
                task,
                &essential,
                tail,
                request.migrate_timeout,
                request.poll_interval,
                request.on_cancel,
            )
            .await;
        self.record_task(ledger, TaskRole::Migrate, followed, attached, attempt)
    }

    fn record_task(
        &self,
        ledger: &mut Ledger,
        role: TaskRole,
        followed: Result<Followed, ReleaseError>,
        attached: bool,
        attempt: u32,
    ) -> Result<Followed, ReleaseError> {
        let followed = followed?;
        let exit_code = match &followed.outcome {
            TaskOutcome::Exited { exit_code, .. } => Some(*exit_code),
            TaskOutcome::Succeeded => Some(0),
            TaskOutcome::FailedToStart { .. } => None,
        };
        let report = TaskReport {
            task_arn: followed.task.task_arn.clone(),
            attached,
            attempt,
            exit_code,
            stop_code: followed.task.stop_code.clone(),
            stopped_reason: followed.task.stopped_reason.clone(),
            outcome: Some(followed.outcome.clone()),
            duration_ms: ms(followed.duration),
            log_lines: followed.log_lines,
            console_url: task_console_url(&followed.task.task_arn, &self.ecs.cluster),
        };
        match role {
            TaskRole::Migrate => ledger.report.migration = Some(report),
            TaskRole::PostDeploy => ledger.report.post_deploy = Some(report),
            TaskRole::Run => ledger.report.task = Some(report),
        }
        Ok(followed)
    }

    fn tail_for(
        &self,
        role: TaskRole,
        td: &TaskDefinition,
        container: &str,
        task: &TaskView,
    ) -> Option<LogTail> {
        match awslogs_target(td, container) {
            Ok((group, prefix)) => Some(LogTail::new(
                self.ecs.clients.clone(),
                Arc::clone(&self.reporter),
                &self.ecs.cluster,
                role,
                group,
                stream_name(prefix.as_deref(), container, task.task_id()),
            )),
            Err(reason) => {
                self.emit(Event::ServiceEvent {
                    message: format!(
                        "logs of the {} task are not streamed: {reason}",
                        role.label()
                    ),
                });
                None
            }
        }
    }

    async fn start_one_off(
        &self,
        params: &RunTaskParams,
        essential: &HashMap<String, bool>,
    ) -> Result<(TaskView, bool), ReleaseError> {
        match self.ecs.run_task(params).await? {
            RunTaskResult::Started(task) => Ok((task_view(&task, essential), false)),
            RunTaskResult::Conflict(holders) => Err(ReleaseError::Invalid(format!(
                "RunTask answered ConflictException for a one-off task without a lock token (tasks: {})",
                holders.join(", ")
            ))),
        }
    }

    /// Polls one task (DescribeTasks) and its log stream (GetLogEvents) at `interval` until it
    /// stops, then drains the stream.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; the arguments are the task's whole context"
    )]
    async fn follow_task(
        &self,
        role: TaskRole,
        mut task: TaskView,
        essential: &HashMap<String, bool>,
        mut tail: Option<LogTail>,
        timeout: Duration,
        interval: Duration,
        on_cancel: OnCancel,
    ) -> Result<Followed, ReleaseError> {
        let started = Instant::now();
        let mut last_status = String::new();
        loop {
            if task.last_status != last_status {
                last_status.clone_from(&task.last_status);
                self.emit(Event::TaskStatus {
                    role,
                    task_arn: task.task_arn.clone(),
                    last_status: last_status.clone(),
                });
            }
            let progress = assess_task(&task);
            if let Some(tail) = tail.as_mut() {
                match progress {
                    TaskProgress::Finished(_) => tail.drain().await?,
                    TaskProgress::Running | TaskProgress::Stopping => {
                        tail.poll().await?;
                    }
                    TaskProgress::Starting => {}
                }
            }
            if let TaskProgress::Finished(outcome) = progress {
                let duration = match (task.started_at, task.stopped_at) {
                    (Some(start), Some(stop)) if stop >= start => {
                        Duration::from_millis(u64::try_from(stop - start).unwrap_or(0))
                    }
                    _ => started.elapsed(),
                };
                self.emit(Event::TaskFinished {
                    role,
                    task_arn: task.task_arn.clone(),
                    outcome: outcome.clone(),
                    duration_ms: ms(duration),
                });
                return Ok(Followed {
                    task,
                    outcome,
                    duration,
                    log_lines: tail.as_ref().map_or(0, |t| t.lines),
                });
            }
            if started.elapsed() > timeout {
                self.ecs
                    .stop_task(
                        &task.task_arn,
                        &format!("shipmate: {} timed out", role.label()),
                    )
                    .await?;
                return Err(ReleaseError::TaskTimeout {
                    role,
                    task_arn: task.task_arn.clone(),
                    after: timeout,
                    stopped: true,
                });
            }
            if !self.wait(interval).await {
                if on_cancel == OnCancel::Stop {
                    self.ecs
                        .stop_task(&task.task_arn, "shipmate: interrupted")
                        .await?;
                }
                self.emit(Event::Cancelled {
                    task_arn: task.task_arn.clone(),
                    action: on_cancel,
                });
                return Err(interrupted(
                    role.label(),
                    Some(task.task_arn.clone()),
                    Some(on_cancel),
                ));
            }
            let described = self
                .ecs
                .describe_tasks(std::slice::from_ref(&task.task_arn))
                .await?;
            task = described
                .first()
                .map(|t| task_view(t, essential))
                .ok_or_else(|| {
                    ReleaseError::Invalid(format!(
                        "DescribeTasks no longer knows task {}",
                        task.task_arn
                    ))
                })?;
        }
    }

    /// Follows the service until its rollout to the target completes, fails or times out.
    async fn follow_rollout(
        &self,
        request: &DeployRequest,
        ledger: &mut Ledger,
        prepared: &Prepared,
        seen: &mut HashSet<String>,
    ) -> Result<RolloutEnd, ReleaseError> {
        let started = Instant::now();
        let mut last_progress = None;
        loop {
            if !self.wait(request.poll_interval).await {
                return Err(ReleaseError::Interrupted {
                    phase: "deploy",
                    task_arn: None,
                    action: None,
                    service_updating: Some(prepared.target_arn.clone()),
                });
            }
            let snapshot = self.ecs.describe_service(&request.service).await?;
            self.emit_service_events(&snapshot.view, seen);
            let progress = assess_rollout(&snapshot.view, &prepared.target_arn);
            if let Some(deployment) = ledger.report.deployment.as_mut() {
                deployment.rollout_state = snapshot
                    .view
                    .deployments
                    .iter()
                    .find(|d| d.task_definition == prepared.target_arn)
                    .and_then(|d| d.rollout_state.clone());
            }
            match progress {
                RolloutProgress::Completed => return Ok(RolloutEnd::Completed),
                RolloutProgress::InProgress {
                    running,
                    desired,
                    pending,
                    failed_tasks,
                } => {
                    let now = (running, desired, pending, failed_tasks);
                    if last_progress != Some(now) {
                        last_progress = Some(now);
                        self.emit(Event::RolloutProgress {
                            running,
                            desired,
                            pending,
                            failed_tasks,
                        });
                    }
                }
                RolloutProgress::Failed {
                    reason,
                    rolled_back_to,
                } => return Ok(failed_rollout(ledger, reason, rolled_back_to)),
                RolloutProgress::Superseded { by } if by == prepared.current_arn => {
                    // Ours vanished and the old revision is primary: the circuit breaker rolled back
                    // between two polls.
                    let reason =
                        "ECS rolled the deployment back (deployment circuit breaker)".to_owned();
                    return Ok(failed_rollout(ledger, reason, Some(by)));
                }
                RolloutProgress::Superseded { by } => {
                    return Err(ReleaseError::Superseded {
                        service: request.service.clone(),
                        by,
                    });
                }
                RolloutProgress::Inactive { status } => {
                    return Err(ReleaseError::ServiceNotActive {
                        cluster: request.cluster.clone(),
                        service: request.service.clone(),
                        status,
                    });
                }
            }
            if started.elapsed() > request.deploy_timeout {
                return Ok(RolloutEnd::TimedOut);
            }
        }
    }

    async fn roll_back_to(
        &self,
        request: &DeployRequest,
        ledger: &mut Ledger,
        to: &str,
        reason: &str,
        seen: &mut HashSet<String>,
    ) -> Result<(), ReleaseError> {
        self.emit(Event::RollbackStarted {
            to: to.to_owned(),
            reason: reason.to_owned(),
        });
        let updated = self.ecs.update_service(&request.service, to).await?;
        seen.extend(updated.view.events.iter().map(|e| e.id.clone()));
        self.follow_steady(request, ledger, to, seen).await
    }

    /// Waits for a rollback's steady state (bounded by the deploy timeout).
    async fn follow_steady(
        &self,
        request: &DeployRequest,
        ledger: &mut Ledger,
        to: &str,
        seen: &mut HashSet<String>,
    ) -> Result<(), ReleaseError> {
        let started = Instant::now();
        loop {
            if !self.wait(request.poll_interval).await {
                return Err(ReleaseError::Interrupted {
                    phase: "rollback",
                    task_arn: None,
                    action: None,
                    service_updating: Some(to.to_owned()),
                });
            }
            let snapshot = self.ecs.describe_service(&request.service).await?;
            self.emit_service_events(&snapshot.view, seen);
            if assess_rollout(&snapshot.view, to) == RolloutProgress::Completed {
                ledger.report.rollback = Some(DeploymentReport {
                    id: snapshot.view.primary().map(|d| d.id.clone()),
                    task_definition: to.to_owned(),
                    rollout_state: snapshot
                        .view
                        .primary()
                        .and_then(|d| d.rollout_state.clone()),
                    reason: None,
                    rolled_back_to: None,
                });
                return Ok(());
            }
            if started.elapsed() > request.deploy_timeout {
                return Err(ReleaseError::DeployTimeout {
                    service: request.service.clone(),
                    task_definition: to.to_owned(),
                    after: request.deploy_timeout,
                    rolled_back: None,
                });
            }
        }
    }

    fn emit_service_events(&self, service: &ServiceView, seen: &mut HashSet<String>) {
        for event in new_events(service, seen) {
            self.emit(Event::ServiceEvent {
                message: event.message.clone(),
            });
        }
        seen.extend(service.events.iter().map(|e| e.id.clone()));
    }

    // ---------------------------------------------------------------- plan

    /// What `deploy` would do. Only Describe* calls.
    pub async fn plan(&self, request: &DeployRequest) -> Result<Plan, ReleaseError> {
        let snapshot = self.ecs.describe_service(&request.service).await?;
        let current_arn = snapshot.view.primary().map_or_else(
            || snapshot.view.task_definition.clone(),
            |d| d.task_definition.clone(),
        );
        let current = self.ecs.describe_task_definition(&current_arn).await?;
        let choices = container_choices(&current);
        let chosen = choose_container(&current_arn, &choices, request.container.as_deref())?;
        let candidate = with_image(&current, &chosen.name, &request.image);
        let reuses_revision = if registrable(&current) == candidate {
            Some(current_arn.clone())
        } else {
            let latest = self
                .ecs
                .describe_task_definition(current.family().unwrap_or_default())
                .await?;
            (registrable(&latest) == candidate)
                .then(|| latest.task_definition_arn().unwrap_or_default().to_owned())
        };
        let changes = if chosen.image == request.image {
            Vec::new()
        } else {
            vec![shipmate_release::plan::FieldChange {
                field: format!("containerDefinitions[{}].image", chosen.name),
                from: chosen.image.clone(),
                to: request.image.clone(),
            }]
        };
        Ok(Plan {
            release_id: ids::release_id(&ReleaseInputs {
                cluster: &request.cluster,
                service: &request.service,
                image: &request.image,
                container: &chosen.name,
                migrate: request.migrate.as_deref(),
            }),
            cluster: request.cluster.clone(),
            service: request.service.clone(),
            container: chosen.name.clone(),
            image_from: chosen.image.clone(),
            image_to: request.image.clone(),
            task_definition_from: current_arn,
            reuses_revision,
            changes,
            migrate_command: request.migrate.clone(),
            migrate_cpu: request.migrate_cpu,
            migrate_memory: request.migrate_memory,
            launch: migration_launch(
                snapshot.launch_type(),
                &snapshot.capacity(),
                request.launch_type.as_deref(),
                request.allow_spot,
            ),
            platform_version: snapshot.raw.platform_version().map(str::to_owned),
            network: snapshot.network().and_then(network_view),
            desired_count: snapshot.view.desired_count,
            migrate_timeout: request.migrate_timeout,
            deploy_timeout: request.deploy_timeout,
            poll_interval: request.poll_interval,
            rollback_on_failure: request.rollback_on_failure,
            post_deploy_command: request.post_deploy.clone(),
        })
    }

    // ---------------------------------------------------------------- run

    /// Runs a one-off task to its end. `Ok` carries the essential container's exit code.
    pub async fn run(&self, request: &RunRequest) -> (Report, Result<i32, ReleaseError>) {
        let mut ledger = Ledger::new(&request.cluster);
        ledger.report.service.clone_from(&request.service);
        let result = self.run_inner(request, &mut ledger).await;
        let unit = result
            .as_ref()
            .map(|_| ())
            .map_err(|e| ReleaseError::Invalid(e.to_string()));
        let report = self.close(ledger, &unit);
        (report, result)
    }

    async fn run_inner(
        &self,
        request: &RunRequest,
        ledger: &mut Ledger,
    ) -> Result<i32, ReleaseError> {
        self.phase_start(ledger, Phase::Prepare);
        let snapshot = match &request.service {
            Some(service) => Some(self.ecs.describe_service(service).await?),
            None => None,
        };
        let td_ref = match (&request.task_definition, &snapshot) {
            (Some(td), _) => td.clone(),
            (None, Some(snapshot)) => snapshot.view.primary().map_or_else(
                || snapshot.view.task_definition.clone(),
                |d| d.task_definition.clone(),
            ),
            (None, None) => {
                return Err(ReleaseError::Invalid(
                    "give --service or --task-definition".to_owned(),
                ));
            }
        };
        let td = self.ecs.describe_task_definition(&td_ref).await?;
        let td_arn = td.task_definition_arn().unwrap_or_default().to_owned();
        let choices = container_choices(&td);
        let container = choose_container(&td_arn, &choices, request.container.as_deref())?
            .name
            .clone();
        ledger.report.task_definition = Some(td_arn.clone());
        ledger.report.container = Some(container.clone());
        let launch = match &snapshot {
            Some(s) => migration_launch(
                s.launch_type(),
                &s.capacity(),
                request.launch_type.as_deref(),
                request.allow_spot,
            ),
            None => request
                .launch_type
                .as_ref()
                .map_or(Launch::ClusterDefault, |t| Launch::LaunchType {
                    launch_type: t.clone(),
                }),
        };
        let params = RunTaskParams {
            task_definition: td_arn,
            container: container.clone(),
            command: Some(request.command.clone()),
            cpu: request.cpu,
            memory: request.memory,
            network: snapshot.as_ref().and_then(|s| s.network().cloned()),
            launch,
            platform_version: snapshot
                .as_ref()
                .and_then(|s| s.raw.platform_version().map(str::to_owned)),
            started_by: Some("shipmate/run".to_owned()),
            client_token: None,
        };
        let essential = essential_map(&td);
        self.phase_start(ledger, Phase::Run);
        let (task, _) = self.start_one_off(&params, &essential).await?;
        self.emit(Event::TaskStarted {
            role: TaskRole::Run,
            task_arn: task.task_arn.clone(),
            attached: false,
            attempt: 0,
        });
        let tail = self.tail_for(TaskRole::Run, &td, &container, &task);
        let followed = self
            .follow_task(
                TaskRole::Run,
                task,
                &essential,
                tail,
                request.timeout,
                request.poll_interval,
                request.on_cancel,
            )
            .await;
        let followed = self.record_task(ledger, TaskRole::Run, followed, false, 0)?;
        match followed.outcome {
            TaskOutcome::Succeeded => Ok(0),
            // The command's own exit code is the answer, success or not.
            TaskOutcome::Exited { exit_code, .. } => Ok(exit_code),
            TaskOutcome::FailedToStart { cause, reason } => Err(ReleaseError::TaskFailedToStart {
                role: TaskRole::Run,
                task_arn: followed.task.task_arn,
                cause,
                reason,
            }),
        }
    }

    // ---------------------------------------------------------------- status, rollback

    pub async fn status(&self, service: &str) -> Result<ServiceStatus, ReleaseError> {
        let snapshot = self.ecs.describe_service(service).await?;
        let family = family_of(&snapshot.view.task_definition);
        let mut arns = self.ecs.list_tasks(&family, "STOPPED").await?;
        arns.extend(self.ecs.list_tasks(&family, "RUNNING").await?);
        let tasks = if arns.is_empty() {
            Vec::new()
        } else {
            self.ecs.describe_tasks(&arns).await?
        };
        let mut releases: Vec<TaskView> = tasks
            .iter()
            .map(|t| task_view(t, &HashMap::new()))
            .filter(|t| t.started_by.as_deref().and_then(ids::release_of).is_some())
            .collect();
        releases.sort_by_key(|t| std::cmp::Reverse(t.created_at));
        Ok(ServiceStatus {
            console_url: service_console_url(
                &snapshot.view.service_arn,
                &self.ecs.cluster,
                service,
            ),
            service: snapshot.view,
            releases,
        })
    }

    pub async fn rollback(&self, request: &RollbackRequest) -> (Report, Result<(), ReleaseError>) {
        let mut ledger = Ledger::new(&request.cluster);
        ledger.report.service = Some(request.service.clone());
        let result = self.rollback_inner(request, &mut ledger).await;
        (self.close(ledger, &result), result)
    }

    async fn rollback_inner(
        &self,
        request: &RollbackRequest,
        ledger: &mut Ledger,
    ) -> Result<(), ReleaseError> {
        self.phase_start(ledger, Phase::Prepare);
        let snapshot = self.ecs.describe_service(&request.service).await?;
        let current = snapshot.view.primary().map_or_else(
            || snapshot.view.task_definition.clone(),
            |d| d.task_definition.clone(),
        );
        let to = match &request.to {
            Some(to) => self
                .ecs
                .describe_task_definition(to)
                .await?
                .task_definition_arn()
                .unwrap_or_default()
                .to_owned(),
            None => {
                let revisions = self.ecs.list_task_definitions(&family_of(&current)).await?;
                let position = revisions.iter().position(|arn| *arn == current);
                position
                    .and_then(|i| revisions.get(i + 1))
                    .cloned()
                    .ok_or_else(|| {
                        ReleaseError::Invalid(format!(
                            "no revision before {current} to roll back to (give --to)"
                        ))
                    })?
            }
        };
        ledger.report.previous_task_definition = Some(current.clone());
        ledger.report.task_definition = Some(to.clone());
        self.phase_start(ledger, Phase::Rollback);
        self.emit(Event::RollbackStarted {
            to: to.clone(),
            reason: "requested".to_owned(),
        });
        let updated = self.ecs.update_service(&request.service, &to).await?;
        let mut seen: HashSet<String> = updated.view.events.iter().map(|e| e.id.clone()).collect();
        self.emit(Event::ServiceUpdated {
            task_definition: to.clone(),
            deployment_id: updated.view.primary().map(|d| d.id.clone()),
        });
        if !request.wait {
            return Ok(());
        }
        let deploy = DeployRequest {
            cluster: request.cluster.clone(),
            service: request.service.clone(),
            image: String::new(),
            container: None,
            migrate: None,
            migrate_cpu: None,
            migrate_memory: None,
            migrate_timeout: request.timeout,
            launch_type: None,
            allow_spot: false,
            deploy_timeout: request.timeout,
            poll_interval: request.poll_interval,
            rollback_on_failure: false,
            wait: true,
            lock_timeout: request.timeout,
            lock_lease: request.timeout,
            on_cancel: OnCancel::Stop,
            post_deploy: None,
            post_deploy_timeout: request.timeout,
        };
        self.follow_steady(&deploy, ledger, &to, &mut seen).await
    }
}

/// The family of a task definition ARN or `family:revision`.
pub fn family_of(task_definition: &str) -> String {
    let tail = task_definition
        .rsplit('/')
        .next()
        .unwrap_or(task_definition);
    tail.split(':').next().unwrap_or(tail).to_owned()
}

fn interrupted(
    phase: &'static str,
    task_arn: Option<String>,
    action: Option<OnCancel>,
) -> ReleaseError {
    ReleaseError::Interrupted {
        phase,
        task_arn,
        action,
        service_updating: None,
    }
}

/// The prepared release a command needs; missing only if the machine and driver disagree.
fn prepared_or_bug(prepared: Option<&Prepared>) -> Result<&Prepared, ReleaseError> {
    prepared.ok_or_else(|| ReleaseError::Invalid("a release step before prepare".to_owned()))
}

/// A cancel is an observation (the machine ends the release and its error is returned then);
/// every other error ends the release at once, as it is.
fn cancelled(
    error: ReleaseError,
    failure: &mut Option<ReleaseError>,
) -> Result<Observation, ReleaseError> {
    if matches!(error, ReleaseError::Interrupted { .. }) {
        *failure = Some(error);
        Ok(Observation::Cancelled)
    } else {
        Err(error)
    }
}

/// A gate's verdict as an observation; a failed gate's error waits in `failure`.
fn passed(
    verdict: Result<(), ReleaseError>,
    failure: &mut Option<ReleaseError>,
    observation: impl FnOnce(bool) -> Observation,
) -> Observation {
    match verdict {
        Ok(()) => observation(true),
        Err(error) => {
            *failure = Some(error);
            observation(false)
        }
    }
}

/// Records a failed rollout in the report and says whether ECS is rolling it back.
fn failed_rollout(
    ledger: &mut Ledger,
    reason: String,
    rolled_back_to: Option<String>,
) -> RolloutEnd {
    if let Some(deployment) = ledger.report.deployment.as_mut() {
        deployment.rollout_state = Some("FAILED".to_owned());
        deployment.reason = Some(reason.clone());
        deployment.rolled_back_to.clone_from(&rolled_back_to);
    }
    match rolled_back_to {
        Some(to) => RolloutEnd::RolledBackByEcs { to, reason },
        None => RolloutEnd::Failed { reason },
    }
}

/// The release's result from the machine's outcome.
fn finished(
    request: &DeployRequest,
    outcome: Outcome,
    failure: Option<ReleaseError>,
    target: String,
) -> Result<(), ReleaseError> {
    let error = match outcome {
        Outcome::Succeeded => return Ok(()),
        Outcome::MigrationFailed | Outcome::PostDeployFailed | Outcome::Cancelled => failure
            .unwrap_or_else(|| {
                ReleaseError::Invalid("the release failed without saying why".to_owned())
            }),
        Outcome::DeploymentFailed {
            reason,
            rolled_back_to,
        } => ReleaseError::DeploymentFailed {
            service: request.service.clone(),
            reason,
            rolled_back_to,
        },
        Outcome::DeployTimedOut { rolled_back_to } => ReleaseError::DeployTimeout {
            service: request.service.clone(),
            task_definition: target,
            after: request.deploy_timeout,
            rolled_back: rolled_back_to,
        },
        Outcome::GaveUp { prepares } => ReleaseError::Invalid(format!(
            "service `{}` kept changing under the release ({prepares} other deployments); giving up",
            request.service
        )),
        Outcome::Unexpected { stage, observation } => ReleaseError::Invalid(format!(
            "the release observed {observation} while in {stage}"
        )),
    };
    Err(error)
}

fn gate(role: TaskRole, followed: &Followed) -> Result<(), ReleaseError> {
    match &followed.outcome {
        TaskOutcome::Succeeded => Ok(()),
        TaskOutcome::FailedToStart { cause, reason } => Err(ReleaseError::TaskFailedToStart {
            role,
            task_arn: followed.task.task_arn.clone(),
            cause: *cause,
            reason: reason.clone(),
        }),
        TaskOutcome::Exited {
            container,
            exit_code,
            cause,
            reason,
        } => Err(ReleaseError::TaskExited {
            role,
            task_arn: followed.task.task_arn.clone(),
            container: container.clone(),
            exit_code: *exit_code,
            cause: *cause,
            reason: reason.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        assert_eq!(
            family_of("arn:aws:ecs:us-east-1:1:task-definition/web:7"),
            "web"
        );
        assert_eq!(family_of("web:7"), "web");
        assert_eq!(family_of("web"), "web");
    }
}
