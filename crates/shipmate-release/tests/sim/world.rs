//! A model of the ECS behaviour the release lock relies on, answering the release machines'
//! commands directly: task-definition families with atomically numbered revisions (the ledger),
//! tags, a ListTaskDefinitions that may lag behind registrations, RunTask client tokens kept for
//! min(24 h, the task's lifetime + 1 h) with trimmed replays, one-off tasks that run for a while,
//! and a service whose deployments roll out, fail and are rolled back by the circuit breaker.
//! Time is a manual clock. It records what the invariants are checked against.

use std::collections::BTreeMap;

use shipmate_release::io::{Command, Observation, TaskDefinitionView, TaskSpec};
use shipmate_release::ledger::{Entry, Record};
use shipmate_release::plan::ContainerChoice;
use shipmate_release::service::{DeploymentView, ServiceView};
use shipmate_release::task::{ContainerView, TaskView};

pub(crate) const CLUSTER: &str = "prod";
pub(crate) const SERVICE: &str = "web";
const HOUR: i64 = 3_600_000;
const ROLLOUT_MS: i64 = 2_000;
const CRASH_FAILS_AFTER_MS: i64 = 1_500;

fn td_arn(family: &str, revision: i32) -> String {
    format!("arn:aws:ecs:us-east-1:000000000000:task-definition/{family}:{revision}")
}

#[derive(Debug, Clone)]
struct Revision {
    arn: String,
    registered_at: i64,
    open: bool,
    image: String,
    tags: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct Deployment {
    id: String,
    td: String,
    status: &'static str,
    state: &'static str,
    /// When an IN_PROGRESS deployment completes or fails.
    due_at: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct SimTask {
    pub(crate) arn: String,
    pub(crate) started_by: String,
    pub(crate) created_at: i64,
    pub(crate) ends_at: i64,
    pub(crate) stopped_at: Option<i64>,
    exit_code: i32,
}

impl SimTask {
    pub(crate) fn is_migration(&self) -> bool {
        shipmate_release::ids::release_of(&self.started_by).is_some()
            || self.started_by.starts_with("legacy/")
    }

    fn view(&self, now: i64) -> TaskView {
        let stopped = self.stopped_at.is_some_and(|t| t <= now);
        TaskView {
            task_arn: self.arn.clone(),
            last_status: if stopped { "STOPPED" } else { "RUNNING" }.to_owned(),
            desired_status: Some(if stopped { "STOPPED" } else { "RUNNING" }.to_owned()),
            started_by: Some(self.started_by.clone()),
            stop_code: stopped.then(|| "EssentialContainerExited".to_owned()),
            stopped_reason: stopped.then(|| "Essential container in task exited".to_owned()),
            created_at: Some(self.created_at),
            started_at: Some(self.created_at),
            stopped_at: self.stopped_at.filter(|t| *t <= now),
            containers: vec![ContainerView {
                name: "app".to_owned(),
                essential: true,
                last_status: Some(if stopped { "STOPPED" } else { "RUNNING" }.to_owned()),
                exit_code: stopped.then_some(self.exit_code),
                reason: None,
            }],
        }
    }
}

#[derive(Debug, Clone)]
struct TokenRecord {
    fingerprint: String,
    task: String,
    created_at: i64,
}

/// Something that happened, for the invariants and for reading a failing schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Happened {
    UpdateService { actor: usize, td: String, at: i64 },
    MigrationStarted { actor: usize, task: String, at: i64 },
}

#[derive(Debug)]
pub(crate) struct World {
    pub(crate) now: i64,
    families: BTreeMap<String, Vec<Revision>>,
    deployments: Vec<Deployment>,
    next_deployment: u32,
    pub(crate) tasks: BTreeMap<String, SimTask>,
    tokens: BTreeMap<String, TokenRecord>,
    next_task: u32,
    /// ListTaskDefinitions leaves out revisions registered less than this long ago.
    pub(crate) list_lag_ms: i64,
    pub(crate) history: Vec<Happened>,
}

/// The migration's run time, encoded in the image tag as `-ms<N>`.
fn migration_ms(image: &str) -> i64 {
    image
        .rsplit("-ms")
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000)
}

impl World {
    /// A service on revision 1 of family `web`, running `app:v1`, rollout completed.
    pub(crate) fn new() -> World {
        let mut world = World {
            now: 1_700_000_000_000,
            families: BTreeMap::new(),
            deployments: Vec::new(),
            next_deployment: 1,
            tasks: BTreeMap::new(),
            tokens: BTreeMap::new(),
            next_task: 1,
            list_lag_ms: 0,
            history: Vec::new(),
        };
        let td = world.register("web", "app:v1");
        world.deployments.push(Deployment {
            id: "ecs-svc/1".to_owned(),
            td,
            status: "PRIMARY",
            state: "COMPLETED",
            due_at: 0,
        });
        world.next_deployment = 2;
        world
    }

    fn register(&mut self, family: &str, image: &str) -> String {
        let revisions = self.families.entry(family.to_owned()).or_default();
        let revision = i32::try_from(revisions.len()).expect("few revisions") + 1;
        let arn = td_arn(family, revision);
        revisions.push(Revision {
            arn: arn.clone(),
            registered_at: self.now,
            open: true,
            image: image.to_owned(),
            tags: Vec::new(),
        });
        arn
    }

    fn revision(&self, arn: &str) -> Option<&Revision> {
        let (family, revision) = parse_td(arn)?;
        self.families
            .get(&family)?
            .get(usize::try_from(revision - 1).ok()?)
    }

    fn revision_mut(&mut self, arn: &str) -> Option<&mut Revision> {
        let (family, revision) = parse_td(arn)?;
        self.families
            .get_mut(&family)?
            .get_mut(usize::try_from(revision - 1).ok()?)
    }

    fn entry(&self, family: &str, revision: i32) -> Option<Entry> {
        let found = self
            .families
            .get(family)?
            .get(usize::try_from(revision - 1).ok()?)?;
        Some(Entry {
            revision,
            arn: found.arn.clone(),
            open: found.open,
            registered_at: Some(found.registered_at),
            record: Record::from_tags(&found.tags),
        })
    }

    pub(crate) fn primary_image(&self) -> String {
        let primary = self
            .deployments
            .iter()
            .find(|d| d.status == "PRIMARY")
            .expect("a primary deployment");
        self.revision(&primary.td)
            .map(|r| r.image.clone())
            .unwrap_or_default()
    }

    pub(crate) fn open_entries(&self) -> usize {
        self.families
            .iter()
            .filter(|(family, _)| family.starts_with("shipmate-ledger-"))
            .flat_map(|(_, revisions)| revisions.iter())
            .filter(|r| r.open)
            .count()
    }

    /// Moves time on and lets tasks end and deployments finish.
    pub(crate) fn advance_to(&mut self, now: i64) {
        if now <= self.now {
            return;
        }
        self.now = now;
        for task in self.tasks.values_mut() {
            if task.stopped_at.is_none() && task.ends_at <= now {
                task.stopped_at = Some(task.ends_at);
            }
        }
        self.settle_deployments();
    }

    fn settle_deployments(&mut self) {
        let now = self.now;
        let Some(index) = self
            .deployments
            .iter()
            .position(|d| d.status == "PRIMARY" && d.state == "IN_PROGRESS" && d.due_at <= now)
        else {
            return;
        };
        let crashing = self
            .revision(&self.deployments[index].td)
            .is_some_and(|r| r.image.starts_with("crash"));
        if crashing {
            // The circuit breaker: FAILED, and the last COMPLETED deployment is primary again;
            // with none to return to, the failed one stays primary and nothing is launched.
            self.deployments[index].state = "FAILED";
            if let Some(last) = self
                .deployments
                .iter_mut()
                .rev()
                .find(|d| d.state == "COMPLETED")
            {
                last.status = "PRIMARY";
                last.state = "IN_PROGRESS";
                last.due_at = now + 1_000;
                self.deployments[index].status = "ACTIVE";
            }
        } else {
            self.deployments[index].state = "COMPLETED";
            let keep = self.deployments[index].id.clone();
            self.deployments.retain(|d| d.id == keep);
        }
    }

    pub(crate) fn next_due(&self) -> Option<i64> {
        let tasks = self
            .tasks
            .values()
            .filter(|t| t.stopped_at.is_none())
            .map(|t| t.ends_at);
        let deployments = self
            .deployments
            .iter()
            .filter(|d| d.state == "IN_PROGRESS")
            .map(|d| d.due_at);
        tasks.chain(deployments).filter(|t| *t > self.now).min()
    }

    fn service_view(&self) -> ServiceView {
        let primary = self.deployments.iter().find(|d| d.status == "PRIMARY");
        ServiceView {
            service_arn: "arn:aws:ecs:us-east-1:000000000000:service/prod/web".to_owned(),
            service_name: SERVICE.to_owned(),
            cluster_arn: String::new(),
            status: "ACTIVE".to_owned(),
            task_definition: primary.map(|d| d.td.clone()).unwrap_or_default(),
            desired_count: 2,
            running_count: 2,
            pending_count: 0,
            deployments: self
                .deployments
                .iter()
                .map(|d| DeploymentView {
                    id: d.id.clone(),
                    status: d.status.to_owned(),
                    task_definition: d.td.clone(),
                    desired_count: 2,
                    running_count: if d.state == "COMPLETED" { 2 } else { 0 },
                    pending_count: 0,
                    failed_tasks: 0,
                    rollout_state: Some(d.state.to_owned()),
                    rollout_state_reason: (d.state == "FAILED").then(|| {
                        "ECS deployment circuit breaker: tasks failed to start.".to_owned()
                    }),
                })
                .collect(),
            circuit_breaker: Some(shipmate_release::service::CircuitBreakerView { rollback: true }),
            ..ServiceView::default()
        }
    }

    /// UpdateService: a new primary deployment unless the task definition is the same and not
    /// forced (ECS starts no deployment then).
    pub(crate) fn update_service(&mut self, td: &str, force: bool) {
        let same = self
            .deployments
            .iter()
            .any(|d| d.status == "PRIMARY" && d.td == td);
        if same && !force {
            return;
        }
        for d in &mut self.deployments {
            if d.status == "PRIMARY" {
                d.status = "ACTIVE";
            }
        }
        let crashing = self
            .revision(td)
            .is_some_and(|r| r.image.starts_with("crash"));
        self.deployments.push(Deployment {
            id: format!("ecs-svc/{}", self.next_deployment),
            td: td.to_owned(),
            status: "PRIMARY",
            state: "IN_PROGRESS",
            due_at: self.now
                + if crashing {
                    CRASH_FAILS_AFTER_MS
                } else {
                    ROLLOUT_MS
                },
        });
        self.next_deployment += 1;
    }

    /// Interference: a forced new deployment of what the service runs.
    pub(crate) fn force_new_deployment(&mut self) {
        let td = self.service_view().task_definition;
        self.update_service(&td, true);
    }

    /// Interference: another tool registers a revision of the service's family.
    pub(crate) fn foreign_registration(&mut self) {
        self.register("web", "app:foreign");
    }

    /// Interference: a crashing revision deployed by hand; the circuit breaker rolls it back.
    pub(crate) fn crashing_deployment(&mut self) {
        let td = self.register("web", "crash:1");
        self.update_service(&td, false);
    }

    fn forget_old(&mut self) {
        let now = self.now;
        let tasks = &self.tasks;
        self.tokens.retain(|_, record| {
            let stopped = tasks
                .get(&record.task)
                .and_then(|t| t.stopped_at)
                .filter(|t| *t <= now);
            let expires = match stopped {
                Some(stopped) => (record.created_at + 24 * HOUR).min(stopped + HOUR),
                None => record.created_at + 24 * HOUR,
            };
            now < expires
        });
        self.tasks
            .retain(|_, t| t.stopped_at.is_none_or(|stopped| now - stopped < HOUR));
    }

    fn run_task(&mut self, actor: usize, spec: &TaskSpec) -> Observation {
        self.forget_old();
        let mut fingerprint_of = spec.clone();
        fingerprint_of.client_token = None;
        let fingerprint = format!("{fingerprint_of:?}");
        if let Some(token) = &spec.client_token
            && let Some(record) = self.tokens.get(token)
        {
            if record.fingerprint != fingerprint {
                return Observation::RunTaskConflict(vec![record.task.clone()]);
            }
            let task = &self.tasks[&record.task];
            let mut view = task.view(self.now);
            if view.last_status == "STOPPED" {
                // ECS trims replays of stopped tasks to the ARN and the statuses.
                view = TaskView {
                    task_arn: view.task_arn,
                    last_status: view.last_status,
                    desired_status: view.desired_status,
                    ..TaskView::default()
                };
            }
            return Observation::TaskStarted(Box::new(view));
        }
        let image = self
            .revision(&spec.task_definition)
            .map(|r| r.image.clone())
            .unwrap_or_default();
        let arn = format!(
            "arn:aws:ecs:us-east-1:000000000000:task/prod/t{}",
            self.next_task
        );
        self.next_task += 1;
        let task = SimTask {
            arn: arn.clone(),
            started_by: spec.started_by.clone(),
            created_at: self.now,
            ends_at: self.now + migration_ms(&image),
            stopped_at: None,
            exit_code: if image.contains("-fail") { 1 } else { 0 },
        };
        let view = task.view(self.now);
        if task.is_migration() {
            self.history.push(Happened::MigrationStarted {
                actor,
                task: arn.clone(),
                at: self.now,
            });
        }
        self.tasks.insert(arn.clone(), task);
        if let Some(token) = &spec.client_token {
            self.tokens.insert(
                token.clone(),
                TokenRecord {
                    fingerprint,
                    task: arn,
                    created_at: self.now,
                },
            );
        }
        Observation::TaskStarted(Box::new(view))
    }

    /// Executes one command of `actor` (sleeping is the scheduler's).
    pub(crate) fn execute(&mut self, actor: usize, command: &Command) -> Observation {
        match command {
            Command::ListOpenEntries { family } => {
                let lag = self.list_lag_ms;
                let now = self.now;
                let revisions = self
                    .families
                    .get(family)
                    .map_or_else(Vec::new, |revisions| {
                        revisions
                            .iter()
                            .enumerate()
                            .filter(|(_, r)| r.open && now - r.registered_at >= lag)
                            .map(|(i, _)| i32::try_from(i).expect("few") + 1)
                            .collect()
                    });
                Observation::OpenEntries(revisions)
            }
            Command::NewestEntry { family } => Observation::NewestEntry(
                self.families
                    .get(family)
                    .and_then(|r| i32::try_from(r.len()).ok())
                    .filter(|n| *n > 0),
            ),
            Command::DescribeEntries { family, revisions } => Observation::Entries(
                revisions
                    .iter()
                    .filter_map(|r| self.entry(family, *r))
                    .collect(),
            ),
            Command::RegisterEntry { family, record } => {
                let arn = self.register(family, "shipmate/ledger-entry");
                let tags = record.to_tags();
                if let Some(revision) = self.revision_mut(&arn) {
                    revision.tags = tags;
                }
                let revision = parse_td(&arn).map_or(0, |(_, r)| r);
                Observation::EntryRegistered(Box::new(
                    self.entry(family, revision).expect("just registered"),
                ))
            }
            Command::TagEntry { arn, record } => {
                let tags = record.to_tags();
                if let Some(revision) = self.revision_mut(arn) {
                    revision.tags = tags;
                }
                Observation::EntryTagged
            }
            Command::CloseEntry { arn, record } => {
                let tags = record.to_tags();
                if let Some(revision) = self.revision_mut(arn) {
                    revision.tags = tags;
                    revision.open = false;
                }
                Observation::EntryClosed
            }
            Command::DescribeServices { services } => Observation::Services {
                found: services.iter().map(|_| self.service_view()).collect(),
                missing: Vec::new(),
            },
            Command::DescribeTaskDefinition { arn } => match self.revision(arn) {
                Some(revision) => Observation::TaskDefinition(TaskDefinitionView {
                    arn: revision.arn.clone(),
                    family: "web".to_owned(),
                    revision: parse_td(arn).map_or(0, |(_, r)| r),
                    containers: vec![ContainerChoice {
                        name: "app".to_owned(),
                        essential: true,
                        image: revision.image.clone(),
                        logs: None,
                        secrets: false,
                    }],
                    cpu: None,
                    memory: None,
                    execution_role_arn: None,
                    network_mode: None,
                    requires_compatibilities: Vec::new(),
                    unknown_members: Vec::new(),
                }),
                None => Observation::Failed(shipmate_release::fault::Fault::unexpected(
                    "DescribeTaskDefinition",
                    format!("unknown {arn}"),
                )),
            },
            Command::RegisterRevision { base, image, .. } => {
                let same = self.revision(base).is_some_and(|r| r.image == *image);
                if same {
                    Observation::RevisionRegistered {
                        arn: base.clone(),
                        reused: true,
                    }
                } else {
                    Observation::RevisionRegistered {
                        arn: self.register("web", image),
                        reused: false,
                    }
                }
            }
            Command::UpdateService {
                task_definition, ..
            } => {
                self.update_service(task_definition, false);
                self.history.push(Happened::UpdateService {
                    actor,
                    td: task_definition.clone(),
                    at: self.now,
                });
                Observation::ServiceUpdated(Box::new(self.service_view()))
            }
            Command::ListTasks { .. } => Observation::TaskArns(Vec::new()),
            // This model of ECS predates service-deployment records: the release follows
            // through DescribeServices, as it does where the records are denied.
            Command::DescribeServiceDeployments { .. }
            | Command::DescribeTaskDefinitionAnswer { .. }
            | Command::ListServiceDeployments { .. }
            | Command::SetLifecycleHooks { .. }
            | Command::ContinueServiceDeployment { .. }
            | Command::StopServiceDeployment { .. } => Observation::Failed(
                shipmate_release::fault::Fault::Aws(shipmate_release::fault::AwsError {
                    operation: "ServiceDeployments",
                    kind: shipmate_release::fault::AwsErrorKind::Service,
                    code: Some("UnknownOperationException".to_owned()),
                    message: "not modelled".to_owned(),
                }),
            ),
            Command::RunTask(spec) => self.run_task(actor, spec),
            Command::DescribeTasks { arns } => {
                self.forget_old();
                Observation::Tasks(
                    arns.iter()
                        .filter_map(|arn| self.tasks.get(arn))
                        .map(|t| t.view(self.now))
                        .collect(),
                )
            }
            Command::StopTask { arn, .. } => {
                if let Some(task) = self.tasks.get_mut(arn)
                    && task.stopped_at.is_none()
                {
                    task.ends_at = task.ends_at.min(self.now + 500);
                    task.exit_code = 143;
                }
                Observation::TaskStopping
            }
            Command::FollowLogs { .. } | Command::TaskStopped { .. } => Observation::Noted,
            Command::AwaitLogs { .. } | Command::StopLogs { .. } => Observation::LogsDrained {
                lines: 0,
                frames: Vec::new(),
            },
            Command::DescribeLogGroups { .. } => Observation::LogGroups(Vec::new()),
            Command::Sleep { .. } => Observation::Woke,
        }
    }

    /// Migration tasks running at the same time right now.
    pub(crate) fn running_migrations(&self) -> Vec<&SimTask> {
        self.tasks
            .values()
            .filter(|t| t.is_migration() && t.stopped_at.is_none_or(|s| s > self.now))
            .collect()
    }
}

fn parse_td(arn: &str) -> Option<(String, i32)> {
    let tail = arn.rsplit('/').next()?;
    let (family, revision) = tail.split_once(':')?;
    Some((family.to_owned(), revision.parse().ok()?))
}
