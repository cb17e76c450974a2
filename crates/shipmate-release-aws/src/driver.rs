//! The driver: executes the release machine's commands against ECS and CloudWatch Logs and
//! reports what happened as observations. It keeps no policy of its own — every decision is in
//! `shipmate_release::release` — only what executing needs: SDK shapes it read (to copy a task
//! definition, to know a task's essential containers), the log followers running alongside,
//! and the cancellation token the CLI fires on SIGINT/SIGTERM, which interrupts sleeps only.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ecs::types::{SortOrder, TaskDefinitionStatus};
use futures::StreamExt;
use shipmate_release::error::ReleaseError;
use shipmate_release::event::TaskRole;
use shipmate_release::fault::Fault;
use shipmate_release::io::{Command, Observation};
use shipmate_release::ledger::Entry;
use shipmate_release::machine::{Machine, Step};
use shipmate_release::plan::Plan;
use shipmate_release::release::{
    self, DeployRequest, Finished, LockView, RollbackRequest, RunRequest, Status, UnlockRequest,
};
use tokio_util::sync::CancellationToken;

use crate::client::Clients;
use crate::ecs::{
    Described, Ecs, RunTaskAnswer, essential_map, same_revision, service_deployment_view,
    service_view, task_definition_view, task_view, with_image,
};
use crate::logs::Follower;
use crate::reporter::{Pace, Reporter};

/// Ledger entries read at once (DescribeTaskDefinition calls in flight).
const CONCURRENT_DESCRIBES: usize = 10;

pub struct Driver {
    ecs: Ecs,
    reporter: Arc<dyn Reporter>,
    pace: Arc<dyn Pace>,
    cancel: CancellationToken,
}

/// What one machine's run needs beyond the driver.
#[derive(Default)]
struct Run {
    task_definitions: HashMap<String, Described>,
    followers: HashMap<TaskRole, Follower>,
    /// The cancellation was reported once; later sleeps (the clean-up) are not interrupted.
    cancel_reported: bool,
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

    pub async fn deploy(&self, request: DeployRequest) -> Finished {
        let mut finished = self.drive(release::deploy(request)).await;
        finished.report.retries = self.ecs.clients.retries();
        finished
    }

    pub async fn finish(&self, request: DeployRequest) -> Finished {
        let mut finished = self.drive(release::finish(request)).await;
        finished.report.retries = self.ecs.clients.retries();
        finished
    }

    pub async fn rollback(&self, request: RollbackRequest) -> Finished {
        let mut finished = self.drive(release::rollback(request)).await;
        finished.report.retries = self.ecs.clients.retries();
        finished
    }

    pub async fn run(&self, request: RunRequest) -> Finished<i32> {
        let mut finished = self.drive(release::run(request)).await;
        finished.report.retries = self.ecs.clients.retries();
        finished
    }

    /// `pending`: also run the preset's read-only plan task.
    pub async fn plan(&self, request: DeployRequest, pending: bool) -> Result<Plan, ReleaseError> {
        self.drive(release::plan(request, pending)).await
    }

    /// `shipmate doctor`: the checks, each with its finding.
    pub async fn doctor(
        &self,
        request: release::DoctorRequest,
    ) -> Result<shipmate_release::doctor::Diagnosis, ReleaseError> {
        self.drive(release::doctor(request)).await
    }

    /// `shipmate init`: the services and their task definitions.
    pub async fn discover(
        &self,
        request: release::DiscoverRequest,
    ) -> Result<shipmate_release::init::Discovery, ReleaseError> {
        self.drive(release::discover(request)).await
    }

    pub async fn status(&self, request: UnlockRequest) -> Result<Status, ReleaseError> {
        self.drive(release::status(request)).await
    }

    pub async fn unlock_inspect(&self, request: UnlockRequest) -> Result<LockView, ReleaseError> {
        self.drive(release::unlock_inspect(request)).await
    }

    pub async fn unlock_close(&self, holder: Entry, by: String) -> Result<(), ReleaseError> {
        self.drive(release::unlock_close(self.ecs.cluster.clone(), holder, by))
            .await
    }

    /// What `shipmate iam-policy --from-service` reads: the services' ARN parts, their task
    /// definitions' families, awslogs groups and the roles they pass.
    pub async fn fill_policy_scope(
        &self,
        scope: &mut shipmate_release::iam::PolicyScope,
    ) -> Result<(), ReleaseError> {
        let error = |fault| ReleaseError::from_fault(&self.ecs.cluster, fault);
        let (services, missing) = self
            .ecs
            .describe_services(&scope.services)
            .await
            .map_err(error)?;
        if let Some(service) = missing.into_iter().next() {
            return Err(ReleaseError::ServiceNotFound {
                cluster: self.ecs.cluster.clone(),
                service,
            });
        }
        let fill_families = scope.families.is_empty();
        let fill_groups = scope.log_groups.is_empty();
        let fill_roles = scope.pass_roles.is_empty();
        let add = |list: &mut Vec<String>, item: &str| {
            if !list.iter().any(|known| known == item) {
                list.push(item.to_owned());
            }
        };
        for service in &services {
            // arn:<partition>:ecs:<region>:<account>:service/…
            let arn = service.service_arn().unwrap_or_default();
            let parts: Vec<&str> = arn.split(':').collect();
            if let [_, partition, _, region, account, ..] = parts[..] {
                scope.partition.get_or_insert_with(|| partition.to_owned());
                scope.region.get_or_insert_with(|| region.to_owned());
                scope.account.get_or_insert_with(|| account.to_owned());
            }
            let definition = self
                .ecs
                .describe_task_definition(service.task_definition().unwrap_or_default())
                .await
                .map_err(error)?
                .definition;
            if fill_families {
                add(&mut scope.families, definition.family().unwrap_or_default());
            }
            if fill_groups {
                for container in definition.container_definitions() {
                    let group = container
                        .log_configuration()
                        .filter(|config| config.log_driver().as_str() == "awslogs")
                        .and_then(|config| config.options())
                        .and_then(|options| options.get("awslogs-group"));
                    if let Some(group) = group {
                        add(&mut scope.log_groups, group);
                    }
                }
            }
            if fill_roles {
                for role in [definition.task_role_arn(), definition.execution_role_arn()]
                    .into_iter()
                    .flatten()
                {
                    add(&mut scope.pass_roles, role);
                }
            }
        }
        Ok(())
    }

    /// Runs a machine to its end: each command executed, each observation fed back.
    async fn drive<T: Send + 'static>(&self, mut machine: Machine<T>) -> T {
        let mut run = Run::default();
        let mut step = machine.start(self.pace.now_ms());
        loop {
            for event in machine.take_events() {
                self.reporter.event(event);
            }
            match step {
                Step::Done(value) => return value,
                Step::Command(command) => {
                    let observation = self.execute(&mut run, command).await;
                    step = machine.observe(self.pace.now_ms(), observation);
                }
            }
        }
    }

    async fn execute(&self, run: &mut Run, command: Command) -> Observation {
        match self.try_execute(run, command).await {
            Ok(observation) => observation,
            Err(fault) => Observation::Failed(fault),
        }
    }

    async fn task_definition(&self, run: &mut Run, arn: &str) -> Result<Described, Fault> {
        if let Some(td) = run.task_definitions.get(arn) {
            return Ok(td.clone());
        }
        let td = self.ecs.describe_task_definition(arn).await?;
        run.task_definitions.insert(arn.to_owned(), td.clone());
        run.task_definitions.insert(td.arn().to_owned(), td.clone());
        Ok(td)
    }

    /// DescribeTasks, with each task's containers marked essential as its task definition says.
    async fn describe_tasks(
        &self,
        run: &mut Run,
        arns: &[String],
    ) -> Result<Vec<shipmate_release::task::TaskView>, Fault> {
        let tasks = self.ecs.describe_tasks(arns).await?;
        let mut views = Vec::with_capacity(tasks.len());
        for task in &tasks {
            let essential = match task.task_definition_arn() {
                Some(arn) => essential_map(&self.task_definition(run, arn).await?.definition),
                None => HashMap::new(),
            };
            views.push(task_view(task, &essential));
        }
        Ok(views)
    }

    async fn sleep_until(&self, run: &mut Run, until_ms: i64) -> Observation {
        let wait = Duration::from_millis(u64::try_from(until_ms - self.pace.now_ms()).unwrap_or(0));
        if run.cancel_reported {
            self.pace.sleep(wait).await;
            return Observation::Woke;
        }
        tokio::select! {
            () = self.pace.sleep(wait) => Observation::Woke,
            () = self.cancel.cancelled() => {
                run.cancel_reported = true;
                Observation::Cancelled
            }
        }
    }

    async fn try_execute(&self, run: &mut Run, command: Command) -> Result<Observation, Fault> {
        let observation = match command {
            Command::ListOpenEntries { family } => Observation::OpenEntries(
                self.ecs
                    .list_revisions(&family, TaskDefinitionStatus::Active, SortOrder::Asc, false)
                    .await?,
            ),
            Command::NewestEntry { family } => {
                let mut newest = None;
                for status in [TaskDefinitionStatus::Active, TaskDefinitionStatus::Inactive] {
                    let found = self
                        .ecs
                        .list_revisions(&family, status, SortOrder::Desc, true)
                        .await?;
                    newest = newest.max(found.into_iter().max());
                }
                Observation::NewestEntry(newest)
            }
            Command::DescribeEntries { family, revisions } => {
                let ecs = &self.ecs;
                let family = &family;
                let found: Vec<Result<Option<Entry>, Fault>> =
                    futures::stream::iter(revisions.iter().map(|r| ecs.describe_entry(family, *r)))
                        .buffered(CONCURRENT_DESCRIBES)
                        .collect()
                        .await;
                let mut entries = Vec::new();
                for entry in found {
                    entries.extend(entry?);
                }
                Observation::Entries(entries)
            }
            Command::RegisterEntry { family, record } => Observation::EntryRegistered(Box::new(
                self.ecs.register_entry(&family, &record).await?,
            )),
            Command::TagEntry { arn, record } => {
                self.ecs.tag(&arn, &record.to_tags()).await?;
                Observation::EntryTagged
            }
            Command::CloseEntry { arn, record } => {
                self.ecs.tag(&arn, &record.to_tags()).await?;
                self.ecs.deregister_task_definition(&arn).await?;
                Observation::EntryClosed
            }
            Command::DescribeServices { services } => {
                let (found, missing) = self.ecs.describe_services(&services).await?;
                Observation::Services {
                    found: found.iter().map(service_view).collect(),
                    missing,
                }
            }
            Command::DescribeTaskDefinition { arn } => Observation::TaskDefinition(
                task_definition_view(&self.task_definition(run, &arn).await?),
            ),
            Command::DescribeTaskDefinitionAnswer { arn } => {
                let described = self.ecs.describe_task_definition(&arn).await?;
                let answer = described.answer.ok_or_else(|| {
                    Fault::unexpected("DescribeTaskDefinition", "the answer is not JSON")
                })?;
                Observation::TaskDefinitionAnswer(answer.to_string())
            }
            Command::RegisterRevision {
                base,
                containers,
                image,
            } => {
                let base = self.task_definition(run, &base).await?;
                let candidate = with_image(&base, &containers, &image);
                if same_revision(&base, &candidate) {
                    return Ok(Observation::RevisionRegistered {
                        arn: base.arn().to_owned(),
                        reused: true,
                    });
                }
                // The family's latest revision may already be this one (a re-run of a release
                // whose migration failed): reuse it rather than register a copy.
                let family = base.definition.family().unwrap_or_default();
                let latest = self.ecs.describe_task_definition(family).await?;
                let (described, reused) = if same_revision(&latest, &candidate) {
                    (latest, true)
                } else {
                    (self.ecs.register_task_definition(candidate).await?, false)
                };
                let arn = described.arn().to_owned();
                run.task_definitions.insert(arn.clone(), described);
                Observation::RevisionRegistered { arn, reused }
            }
            Command::UpdateService {
                service,
                task_definition,
                hooks,
            } => Observation::ServiceUpdated(Box::new(service_view(
                &self
                    .ecs
                    .update_service(&service, Some(&task_definition), hooks.as_deref())
                    .await?,
            ))),
            Command::SetLifecycleHooks { service, hooks } => {
                Observation::ServiceUpdated(Box::new(service_view(
                    &self
                        .ecs
                        .update_service(&service, None, Some(&hooks))
                        .await?,
                )))
            }
            Command::DescribeServiceDeployments { arns } => {
                let (found, missing) = self.ecs.describe_service_deployments(&arns).await?;
                Observation::ServiceDeployments {
                    found: found.iter().map(service_deployment_view).collect(),
                    missing,
                }
            }
            Command::ListServiceDeployments { service } => Observation::ServiceDeploymentArns(
                self.ecs.list_service_deployments(&service).await?,
            ),
            Command::ContinueServiceDeployment {
                arn,
                hook_id,
                action,
            } => {
                self.ecs
                    .continue_service_deployment(&arn, &hook_id, &action)
                    .await?;
                Observation::DeploymentActed
            }
            Command::StopServiceDeployment { arn, stop_type } => {
                self.ecs.stop_service_deployment(&arn, &stop_type).await?;
                Observation::DeploymentActed
            }
            Command::ListTasks {
                family,
                started_by,
                stopped,
            } => Observation::TaskArns(
                self.ecs
                    .list_tasks(family.as_deref(), started_by.as_deref(), stopped)
                    .await?,
            ),
            Command::RunTask(spec) => match self.ecs.run_task(&spec).await? {
                RunTaskAnswer::Started(task) => {
                    let essential = essential_map(
                        &self
                            .task_definition(run, &spec.task_definition)
                            .await?
                            .definition,
                    );
                    Observation::TaskStarted(Box::new(task_view(&task, &essential)))
                }
                RunTaskAnswer::Conflict(arns) => Observation::RunTaskConflict(arns),
                RunTaskAnswer::Failures(reasons) => Observation::RunTaskFailed(reasons),
            },
            Command::DescribeTasks { arns } => {
                Observation::Tasks(self.describe_tasks(run, &arns).await?)
            }
            Command::StopTask { arn, reason } => {
                self.ecs.stop_task(&arn, &reason).await?;
                Observation::TaskStopping
            }
            Command::FollowLogs { spec, .. } => {
                let role = spec.role;
                let follower = Follower::start(
                    self.ecs.clients.clone(),
                    Arc::clone(&self.reporter),
                    Arc::clone(&self.pace),
                    spec,
                );
                run.followers.insert(role, follower);
                Observation::Noted
            }
            Command::TaskStopped { role, at_ms } => {
                if let Some(follower) = run.followers.get(&role) {
                    follower.task_stopped(at_ms);
                    follower.caught_up().await;
                }
                Observation::Noted
            }
            Command::AwaitLogs { role } => match run.followers.remove(&role) {
                Some(follower) => {
                    let (lines, frames) = follower.drained().await?;
                    Observation::LogsDrained { lines, frames }
                }
                None => Observation::LogsDrained {
                    lines: 0,
                    frames: Vec::new(),
                },
            },
            Command::StopLogs { role } => match run.followers.remove(&role) {
                Some(follower) => {
                    let (lines, frames) = follower.stop().await;
                    Observation::LogsDrained { lines, frames }
                }
                None => Observation::LogsDrained {
                    lines: 0,
                    frames: Vec::new(),
                },
            },
            Command::DescribeLogGroups { prefix } => Observation::LogGroups(
                crate::logs::describe_log_groups(&self.ecs.clients, &prefix).await?,
            ),
            Command::Sleep { until_ms } => self.sleep_until(run, until_ms).await,
        };
        Ok(observation)
    }
}
