//! The pause-hook gate's decisions where ECS behaves in ways `shipmate local` does not: a
//! rolling deployment that does not stop at the PAUSE hook (the sources disagree on whether ECS
//! honours PAUSE hooks on ROLLING). The release machine runs against a scripted ECS, without a
//! runtime and without sleeping.

mod common;

use shipmate_release::config::Gate;
use shipmate_release::deployment::{
    DeploymentShape, HookDetailView, LifecycleHookView, ServiceDeploymentView,
};
use shipmate_release::error::ExitCode;
use shipmate_release::fault::{AwsError, AwsErrorKind, Fault};
use shipmate_release::io::{Command, Observation, TaskDefinitionView};
use shipmate_release::ledger::{Entry, Record};
use shipmate_release::machine::Step;
use shipmate_release::plan::ContainerChoice;
use shipmate_release::release::{self, DeployRequest};
use shipmate_release::service::{DeploymentView, ServiceView};

const V1: &str = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1";
const V2: &str = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:2";
const RECORD: &str = "arn:aws:ecs:us-east-1:000000000000:service-deployment/prod/web/abc";

/// What ECS does with the release's deployment once it was started paused.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ecs {
    /// Waits at the PAUSE hook, as documented for blue/green.
    Pauses,
    /// Goes on to SCALE_UP and starts new tasks (a PAUSE hook ignored on ROLLING).
    IgnoresTheHook,
    /// Denies ListServiceDeployments (a CI role without it): the gate has no record to follow.
    DeniesTheRecords,
}

struct Scripted {
    ecs: Ecs,
    now: i64,
    entries: Vec<(String, Record, bool)>,
    desired: String,
    record_status: &'static str,
    hooks: Vec<LifecycleHookView>,
    commands: Vec<Command>,
}

impl Scripted {
    fn service(&self) -> ServiceView {
        ServiceView {
            service_arn: "arn:aws:ecs:us-east-1:000000000000:service/prod/web".to_owned(),
            service_name: "web".to_owned(),
            status: "ACTIVE".to_owned(),
            task_definition: self.desired.clone(),
            desired_count: 2,
            running_count: 2,
            deployments: vec![DeploymentView {
                id: "ecs-svc/1".to_owned(),
                status: "PRIMARY".to_owned(),
                task_definition: self.desired.clone(),
                desired_count: 2,
                running_count: 2,
                rollout_state: Some("COMPLETED".to_owned()),
                ..DeploymentView::default()
            }],
            shape: DeploymentShape {
                hooks: self.hooks.clone(),
                ..DeploymentShape::default()
            },
            current_service_deployment: Some(RECORD.to_owned()),
            circuit_breaker: Some(shipmate_release::service::CircuitBreakerView { rollback: true }),
            ..ServiceView::default()
        }
    }

    fn record(&self) -> ServiceDeploymentView {
        let paused = self.ecs == Ecs::Pauses && self.record_status == "IN_PROGRESS";
        ServiceDeploymentView {
            arn: RECORD.to_owned(),
            status: self.record_status.to_owned(),
            lifecycle_stage: Some(if paused { "PRE_SCALE_UP" } else { "SCALE_UP" }.to_owned()),
            hooks: if paused {
                vec![HookDetailView {
                    hook_id: "ecs-pause-1".to_owned(),
                    target_type: "PAUSE".to_owned(),
                    status: "AWAITING_ACTION".to_owned(),
                    ..HookDetailView::default()
                }]
            } else {
                Vec::new()
            },
            target_running: if paused { 0 } else { 1 },
            ..ServiceDeploymentView::default()
        }
    }

    fn entry(&self, revision: i32) -> Option<Entry> {
        let (arn, record, open) = self.entries.get(usize::try_from(revision - 1).ok()?)?;
        Some(Entry {
            revision,
            arn: arn.clone(),
            open: *open,
            registered_at: Some(0),
            record: Some(record.clone()),
        })
    }

    fn answer(&mut self, command: &Command) -> Observation {
        self.commands.push(command.clone());
        match command {
            Command::ListOpenEntries { .. } => Observation::OpenEntries(
                (1..=i32::try_from(self.entries.len()).unwrap())
                    .filter(|r| self.entries[usize::try_from(r - 1).unwrap()].2)
                    .collect(),
            ),
            Command::NewestEntry { .. } => {
                Observation::NewestEntry(i32::try_from(self.entries.len()).ok().filter(|n| *n > 0))
            }
            Command::DescribeEntries { revisions, .. } => {
                Observation::Entries(revisions.iter().filter_map(|r| self.entry(*r)).collect())
            }
            Command::RegisterEntry { family, record } => {
                let revision = self.entries.len() + 1;
                let arn = format!(
                    "arn:aws:ecs:us-east-1:000000000000:task-definition/{family}:{revision}"
                );
                self.entries.push((arn, (**record).clone(), true));
                Observation::EntryRegistered(Box::new(
                    self.entry(i32::try_from(revision).unwrap()).unwrap(),
                ))
            }
            Command::TagEntry { arn, record } | Command::CloseEntry { arn, record } => {
                let closing = matches!(command, Command::CloseEntry { .. });
                if let Some(entry) = self.entries.iter_mut().find(|e| e.0 == *arn) {
                    entry.1 = (**record).clone();
                    entry.2 &= !closing;
                }
                if closing {
                    Observation::EntryClosed
                } else {
                    Observation::EntryTagged
                }
            }
            Command::DescribeServices { .. } => Observation::Services {
                found: vec![self.service()],
                missing: Vec::new(),
            },
            Command::DescribeTaskDefinition { arn } => {
                Observation::TaskDefinition(TaskDefinitionView {
                    arn: arn.clone(),
                    family: "web".to_owned(),
                    revision: if arn == V1 { 1 } else { 2 },
                    containers: vec![ContainerChoice {
                        name: "app".to_owned(),
                        essential: true,
                        image: if arn == V1 { "web:1" } else { "web:2" }.to_owned(),
                        logs: None,
                        secrets: false,
                    }],
                    cpu: None,
                    memory: None,
                    execution_role_arn: None,
                    network_mode: None,
                    requires_compatibilities: Vec::new(),
                    unknown_members: Vec::new(),
                })
            }
            Command::RegisterRevision { .. } => Observation::RevisionRegistered {
                arn: V2.to_owned(),
                reused: false,
            },
            Command::ListServiceDeployments { .. } if self.ecs == Ecs::DeniesTheRecords => {
                Observation::Failed(Fault::Aws(AwsError {
                    operation: "ListServiceDeployments",
                    kind: AwsErrorKind::Service,
                    code: Some("AccessDeniedException".to_owned()),
                    message: "not authorized to perform: ecs:ListServiceDeployments".to_owned(),
                }))
            }
            Command::ListServiceDeployments { .. } => {
                Observation::ServiceDeploymentArns(vec![RECORD.to_owned()])
            }
            Command::UpdateService {
                task_definition,
                hooks,
                ..
            } => {
                if let Some(hooks) = hooks {
                    self.hooks.clone_from(hooks);
                }
                self.desired.clone_from(task_definition);
                self.record_status = "IN_PROGRESS";
                Observation::ServiceUpdated(Box::new(self.service()))
            }
            Command::SetLifecycleHooks { hooks, .. } => {
                self.hooks.clone_from(hooks);
                Observation::ServiceUpdated(Box::new(self.service()))
            }
            Command::DescribeServiceDeployments { .. } => Observation::ServiceDeployments {
                found: vec![self.record()],
                missing: Vec::new(),
            },
            Command::StopServiceDeployment { .. } => {
                self.record_status = "ROLLBACK_SUCCESSFUL";
                self.desired = V1.to_owned();
                Observation::DeploymentActed
            }
            Command::ContinueServiceDeployment { action, .. } => {
                if action == "ROLLBACK" {
                    self.record_status = "ROLLBACK_SUCCESSFUL";
                    self.desired = V1.to_owned();
                }
                Observation::DeploymentActed
            }
            Command::Sleep { until_ms } => {
                self.now = self.now.max(*until_ms);
                Observation::Woke
            }
            Command::AwaitLogs { .. } | Command::StopLogs { .. } => Observation::LogsDrained {
                lines: 0,
                frames: Vec::new(),
            },
            other => panic!("the scripted ECS does not expect {other:?}"),
        }
    }
}

fn request() -> DeployRequest {
    DeployRequest {
        gate: Gate::PauseHook,
        ..common::deploy_request("web:2", true)
    }
}

/// Runs a pause-hook release against `ecs` until it stops at a RunTask or ends.
fn run(ecs: Ecs) -> (Scripted, Option<shipmate_release::release::Finished>) {
    let mut world = Scripted {
        ecs,
        now: 1_000,
        entries: Vec::new(),
        desired: V1.to_owned(),
        record_status: "SUCCESSFUL",
        hooks: Vec::new(),
        commands: Vec::new(),
    };
    let mut machine = release::deploy(request());
    let mut step = machine.start(world.now);
    for _ in 0..500 {
        match step {
            Step::Done(finished) => return (world, Some(finished)),
            Step::Command(Command::RunTask(_)) => return (world, None),
            Step::Command(command) => {
                let observation = world.answer(&command);
                step = machine.observe(world.now, observation);
            }
        }
    }
    panic!("the release did not end");
}

#[test]
fn a_rolling_deployment_that_does_not_pause_is_rolled_back_before_the_migration() {
    let (world, finished) = run(Ecs::IgnoresTheHook);
    let finished = finished.expect("the release ended without running the migration");
    let error = finished.result.expect_err("the release fails");
    assert_eq!(error.exit_code(), ExitCode::DeploymentFailed, "{error}");
    assert!(error.to_string().contains("did not pause"), "{error}");
    assert!(
        world
            .commands
            .iter()
            .any(|c| matches!(c, Command::StopServiceDeployment { stop_type, .. } if stop_type == "ROLLBACK")),
        "the deployment was stopped with a rollback"
    );
    assert!(
        !world
            .commands
            .iter()
            .any(|c| matches!(c, Command::RunTask(_))),
        "no migration ran"
    );
    assert!(
        world
            .commands
            .iter()
            .any(|c| matches!(c, Command::SetLifecycleHooks { hooks, .. } if hooks.is_empty())),
        "the hook came off the service"
    );
    assert!(world.hooks.is_empty());
    assert_eq!(world.desired, V1, "the service is back on what it ran");
}

#[test]
fn a_paused_deployment_gets_the_migration() {
    let (world, finished) = run(Ecs::Pauses);
    assert!(
        finished.is_none(),
        "the release went on to run the migration"
    );
    let update = world
        .commands
        .iter()
        .find_map(|c| match c {
            Command::UpdateService { hooks, .. } => Some(hooks.clone()),
            _ => None,
        })
        .expect("UpdateService")
        .expect("with the hooks");
    assert_eq!(update.len(), 1);
    assert_eq!(update[0].target_type, "PAUSE");
    assert_eq!(update[0].stages, vec!["PRE_SCALE_UP".to_owned()]);
    assert_eq!(update[0].timeout_action.as_deref(), Some("ROLLBACK"));
    // The migration timeout (10 min) and a margin: ECS rolls back when nobody answers.
    assert_eq!(update[0].timeout_minutes, Some(15));
    assert!(update[0].is_ours());
}

#[test]
fn without_the_records_the_pause_gate_is_refused_before_anything_changes() {
    let (world, finished) = run(Ecs::DeniesTheRecords);
    let finished = finished.expect("the release ended without running the migration");
    let error = finished.result.expect_err("the release is refused");
    assert_eq!(error.exit_code(), ExitCode::BadInput, "{error}");
    let message = error.to_string();
    assert!(
        message.contains("service-deployment records") && message.contains("AccessDeniedException"),
        "{message}"
    );
    assert!(
        !world.commands.iter().any(|c| matches!(
            c,
            Command::UpdateService { .. }
                | Command::SetLifecycleHooks { .. }
                | Command::RegisterRevision { .. }
                | Command::RunTask(_)
        )),
        "nothing changed: {:?}",
        world.commands
    );
    assert_eq!(world.desired, V1);
}
