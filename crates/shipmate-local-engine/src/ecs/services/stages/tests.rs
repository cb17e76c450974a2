//! The stage machine driven through the whole scheduler pass, with simulated tasks and a clock
//! that moves only when told: every task the scheduler launches runs at once (healthy a second
//! later) unless its task definition is `td:bad`, whose tasks crash.

use std::time::{Duration, SystemTime};

use super::*;
use crate::ecs::services::deployments::start_deployment;
use crate::ecs::services::model::{
    CanarySteps, CircuitBreaker, DeploymentConfiguration, LaunchSettings, LinearSteps, PauseHook,
    Threshold,
};
use crate::ecs::services::records::ServiceRevisionRecord;
use crate::ecs::services::scheduler::{Action, Settings, reconcile_with_stages};

const T0: SystemTime = SystemTime::UNIX_EPOCH;
/// A deployment minute passes in a real second.
const SETTINGS: Settings = Settings {
    throttle_base: Duration::from_secs(10),
    time_scale: 60.0,
};

struct Sim {
    service: ServiceRecord,
    tasks: Vec<TaskView>,
    now: SystemTime,
    /// Stages entered by the newest deployment, in order.
    stages: Vec<(Stage, u32)>,
    next_task: u32,
}

fn revision(task_definition: &str) -> ServiceRevisionRecord {
    ServiceRevisionRecord {
        arn: String::new(),
        task_definition: task_definition.to_owned(),
        launch: LaunchSettings::default(),
        load_balancers: None,
        service_registries: None,
        service_connect: None,
        container_images: Vec::new(),
        created_at: T0,
    }
}

impl Sim {
    /// A service of `desired` tasks of td:1, deployed and steady, with `configuration` for the
    /// next deployment.
    fn steady(desired: u32, configuration: DeploymentConfiguration) -> Sim {
        let now = T0 + Duration::from_secs(1_700_000_000);
        let first = Deployment::new("td:1".into(), desired, LaunchSettings::default(), now);
        let mut service = ServiceRecord {
            arn: "arn:aws:ecs:us-east-1:000000000000:service/c/web".into(),
            name: "web".into(),
            cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/c".into(),
            status: "ACTIVE".into(),
            desired_count: desired,
            running_count: 0,
            pending_count: 0,
            task_definition: "td:1".into(),
            deployment_configuration: DeploymentConfiguration::default(),
            deployments: vec![first],
            events: Default::default(),
            created_at: now,
            steady_state_reported: false,
            spec: Default::default(),
            throttle: Default::default(),
            controller: Default::default(),
            revisions: Vec::new(),
            service_deployments: Vec::new(),
        };
        start_deployment(&mut service, revision("td:1"), now);
        let mut sim = Sim {
            service,
            tasks: Vec::new(),
            now,
            stages: Vec::new(),
            next_task: 0,
        };
        sim.run_until("the first deployment", |sim| {
            sim.record().status == DeploymentStatus::Successful
        });
        sim.service.deployment_configuration = configuration;
        sim
    }

    /// UpdateService to `task_definition`, as the operation does it.
    fn deploy(&mut self, task_definition: &str) {
        for deployment in &mut self.service.deployments {
            deployment.status = "ACTIVE".into();
        }
        let deployment = Deployment::new(
            task_definition.into(),
            self.service.desired_count,
            LaunchSettings::default(),
            self.now,
        );
        self.service.deployments.insert(0, deployment);
        self.service.task_definition = task_definition.into();
        start_deployment(&mut self.service, revision(task_definition), self.now);
        self.stages.clear();
    }

    fn record(&self) -> &ServiceDeploymentRecord {
        self.service.service_deployments.last().unwrap()
    }

    fn record_mut(&mut self) -> &mut ServiceDeploymentRecord {
        self.service.service_deployments.last_mut().unwrap()
    }

    /// One scheduler pass `seconds` after the last, carrying out its actions.
    fn pass(&mut self, seconds: f64) {
        self.now += Duration::from_secs_f64(seconds);
        let (actions, entered) =
            reconcile_with_stages(&mut self.service, &self.tasks, SETTINGS, self.now);
        self.stages.extend(entered);
        for action in actions {
            match action {
                Action::Launch {
                    deployment_id,
                    task_definition,
                    count,
                } => {
                    for _ in 0..count {
                        self.next_task += 1;
                        let crashed = task_definition == "td:bad";
                        self.tasks.push(TaskView {
                            arn: format!("t{}", self.next_task),
                            deployment_id: deployment_id.clone(),
                            task_definition: task_definition.clone(),
                            last_status: if crashed { "STOPPED" } else { "RUNNING" }.into(),
                            desired_status: if crashed { "STOPPED" } else { "RUNNING" }.into(),
                            started_at: Some(self.now),
                            stop_code: crashed.then(|| "EssentialContainerExited".into()),
                            stopped_reason: None,
                            health: None,
                        });
                    }
                }
                Action::Stop { task_arn, .. } => {
                    let task = self.tasks.iter_mut().find(|t| t.arn == task_arn).unwrap();
                    task.last_status = "STOPPED".into();
                    task.desired_status = "STOPPED".into();
                    task.stop_code = Some("ServiceSchedulerInitiated".into());
                }
            }
        }
    }

    /// Passes half a second apart until `done`; at most 10 simulated minutes.
    fn run_until(&mut self, what: &str, done: impl Fn(&Sim) -> bool) {
        for _ in 0..1200 {
            if done(self) {
                return;
            }
            self.pass(0.5);
        }
        panic!(
            "never reached {what}: {:?} {:?}",
            self.record(),
            self.service.events
        );
    }

    fn live(&self, task_definition: &str) -> usize {
        self.tasks
            .iter()
            .filter(|t| t.task_definition == task_definition && t.last_status != "STOPPED")
            .count()
    }

    fn awaiting_hook(&self) -> Option<String> {
        self.record()
            .hooks
            .iter()
            .find(|h| h.status == HookStatus::AwaitingAction)
            .map(|h| h.hook_id.clone())
    }
}

fn blue_green(strategy: Strategy, bake_minutes: u32) -> DeploymentConfiguration {
    DeploymentConfiguration {
        strategy,
        bake_time_minutes: Some(bake_minutes),
        ..DeploymentConfiguration::default()
    }
}

fn pause_at(stages: &[Stage], timeout_minutes: u32, action: HookAction) -> Vec<PauseHook> {
    vec![PauseHook {
        stages: stages.to_vec(),
        timeout_minutes,
        timeout_action: action,
        details: None,
    }]
}

fn names(stages: &[(Stage, u32)]) -> Vec<&'static str> {
    stages.iter().map(|(stage, _)| stage.as_str()).collect()
}

#[test]
fn a_rolling_deployment_scales_up_and_succeeds() {
    let mut sim = Sim::steady(2, DeploymentConfiguration::default());
    assert_eq!(sim.live("td:1"), 2);
    sim.deploy("td:2");
    assert_eq!(sim.record().status, DeploymentStatus::Pending);
    sim.run_until("success", |sim| {
        sim.record().status == DeploymentStatus::Successful
    });
    assert_eq!(
        names(&sim.stages),
        ["PRE_SCALE_UP", "SCALE_UP", "POST_SCALE_UP"]
    );
    assert_eq!((sim.live("td:1"), sim.live("td:2")), (0, 2));
    let record = sim.record();
    assert!(record.started_at.is_some() && record.finished_at.is_some());
    assert_eq!(record.stopped_at, None);
    assert_eq!(record.target.running, 2);
    assert_eq!(record.sources.len(), 1);
    assert_eq!(
        (record.sources[0].running, record.sources[0].requested),
        (0, 0)
    );
    assert_eq!(
        sim.service.deployments.len(),
        1,
        "the old deployment is gone"
    );
}

#[test]
fn blue_green_runs_every_stage_in_order_and_stops_blue_only_after_the_bake_time() {
    let mut sim = Sim::steady(2, blue_green(Strategy::BlueGreen, 5));
    sim.deploy("td:2");
    sim.run_until("bake time", |sim| {
        sim.record().stage == Some(Stage::BakeTime)
    });
    assert_eq!(
        names(&sim.stages),
        [
            "PRE_SCALE_UP",
            "SCALE_UP",
            "POST_SCALE_UP",
            "TEST_TRAFFIC_SHIFT",
            "POST_TEST_TRAFFIC_SHIFT",
            "PRE_PRODUCTION_TRAFFIC_SHIFT",
            "PRODUCTION_TRAFFIC_SHIFT",
            "POST_PRODUCTION_TRAFFIC_SHIFT",
            "BAKE_TIME"
        ]
    );
    // Green at 100 % beside blue, which still has all its tasks; green is PRIMARY.
    assert_eq!((sim.live("td:1"), sim.live("td:2")), (2, 2));
    assert_eq!(sim.service.primary().task_definition, "td:2");
    assert_eq!(sim.service.deployments.len(), 2);
    let baking_since = sim.now;
    // Five deployment minutes are five seconds here: blue keeps running until then.
    sim.run_until("clean up", |sim| sim.record().stage == Some(Stage::CleanUp));
    assert!(sim.now >= baking_since + Duration::from_secs(5));
    assert!(sim.now < baking_since + Duration::from_secs(6));
    sim.pass(0.0);
    sim.run_until("success", |sim| {
        sim.record().status == DeploymentStatus::Successful
    });
    assert_eq!((sim.live("td:1"), sim.live("td:2")), (0, 2));
    assert_eq!(names(&sim.stages).last(), Some(&"CLEAN_UP"));
    // Headless: no traffic weights are recorded.
    assert_eq!(sim.record().target.production_weight, None);
}

#[test]
fn linear_shifts_production_traffic_step_by_step_with_a_bake_between_steps() {
    let mut configuration = blue_green(Strategy::Linear, 0);
    configuration.linear = Some(LinearSteps {
        step_percent: 25.0,
        step_bake_minutes: 2,
    });
    let mut sim = Sim::steady(1, configuration);
    sim.deploy("td:2");
    // With a load balancer, weights are recorded.
    sim.record_mut().shifts_traffic = true;
    sim.record_mut().target.production_weight = Some(0.0);
    let mut weights = Vec::new();
    let mut step_entered = Vec::new();
    for _ in 0..200 {
        if sim.record().status == DeploymentStatus::Successful {
            break;
        }
        sim.pass(0.5);
        if let Some(weight) = sim.record().target.production_weight
            && weights.last() != Some(&weight)
        {
            weights.push(weight);
            step_entered.push(sim.now);
        }
    }
    assert_eq!(sim.record().status, DeploymentStatus::Successful);
    assert_eq!(weights, [0.0, 25.0, 50.0, 75.0, 100.0]);
    // Two deployment minutes (two seconds) between steps.
    for pair in step_entered[1..].windows(2) {
        let gap = pair[1].duration_since(pair[0]).unwrap();
        assert!(gap >= Duration::from_secs(2), "{gap:?}");
    }
    let production: Vec<(Stage, u32)> = sim
        .stages
        .iter()
        .copied()
        .filter(|(stage, _)| {
            matches!(
                stage,
                Stage::PreProductionTrafficShift | Stage::ProductionTrafficShift
            )
        })
        .collect();
    assert_eq!(production.len(), 8, "{production:?}");
    assert_eq!(
        production.iter().map(|(_, step)| *step).collect::<Vec<_>>(),
        [0, 0, 1, 1, 2, 2, 3, 3]
    );
    assert_eq!(sim.record().sources[0].production_weight, Some(0.0));
}

#[test]
fn canary_shifts_the_canary_percent_then_the_rest() {
    let mut configuration = blue_green(Strategy::Canary, 1);
    configuration.canary = Some(CanarySteps {
        canary_percent: 5.0,
        canary_bake_minutes: 3,
    });
    let mut sim = Sim::steady(1, configuration);
    sim.deploy("td:2");
    sim.record_mut().shifts_traffic = true;
    sim.run_until("the canary", |sim| {
        sim.record().target.production_weight == Some(5.0)
    });
    let canary_at = sim.now;
    sim.run_until("all traffic", |sim| {
        sim.record().target.production_weight == Some(100.0)
    });
    assert!(sim.now >= canary_at + Duration::from_secs(3));
    sim.run_until("success", |sim| {
        sim.record().status == DeploymentStatus::Successful
    });
    let shifts = sim
        .stages
        .iter()
        .filter(|(stage, _)| *stage == Stage::ProductionTrafficShift)
        .count();
    assert_eq!(shifts, 2);
}

#[test]
fn production_steps_follow_the_strategy() {
    let mut sim = Sim::steady(0, DeploymentConfiguration::default());
    sim.deploy("td:2");
    let record = sim.record_mut();
    assert_eq!(production_steps(record), [100.0]);
    record.configuration.strategy = Strategy::Linear;
    record.configuration.linear = Some(LinearSteps {
        step_percent: 33.3,
        step_bake_minutes: 0,
    });
    assert_eq!(production_steps(record), [33.3, 66.6, 99.9, 100.0]);
    record.configuration.strategy = Strategy::Canary;
    record.configuration.canary = Some(CanarySteps {
        canary_percent: 100.0,
        canary_bake_minutes: 0,
    });
    assert_eq!(production_steps(record), [100.0]);
}

#[test]
fn a_deployment_starting_beside_two_revisions_reconciles_first() {
    let mut sim = Sim::steady(1, DeploymentConfiguration::default());
    sim.deploy("td:2");
    sim.pass(0.5);
    sim.pass(0.5);
    assert_eq!(sim.live("td:2"), 1, "td:2 is being rolled out");
    sim.deploy("td:3");
    sim.run_until("success", |sim| {
        sim.record().status == DeploymentStatus::Successful
    });
    assert_eq!(sim.stages[0].0, Stage::ReconcileService);
    assert_eq!(sim.record().sources.len(), 2);
    assert_eq!(
        sim.service.service_deployments[1].status,
        DeploymentStatus::Stopped
    );
}

#[test]
fn a_rolling_pause_before_scale_up_starts_nothing_until_continued() {
    let configuration = DeploymentConfiguration {
        pause_hooks: pause_at(&[Stage::PreScaleUp], 60, HookAction::Rollback),
        ..DeploymentConfiguration::default()
    };
    let mut sim = Sim::steady(2, configuration);
    sim.deploy("td:2");
    for _ in 0..20 {
        sim.pass(0.5);
    }
    let record = sim.record();
    assert_eq!(record.status, DeploymentStatus::InProgress);
    assert_eq!(record.stage, Some(Stage::PreScaleUp));
    assert_eq!(sim.live("td:2"), 0, "no target task while paused");
    assert_eq!(sim.live("td:1"), 2);
    assert_eq!(record.target.requested, 0);
    let hook = &record.hooks[0];
    assert_eq!(hook.status, HookStatus::AwaitingAction);
    assert_eq!(hook.timeout_action, HookAction::Rollback);
    // 60 deployment minutes at 60 per second: a minute after the pause began.
    assert_eq!(
        hook.expires_at,
        T0 + Duration::from_secs(1_700_000_000) + record_age(&sim) + Duration::from_secs(60)
    );
    assert!(
        sim.service
            .events
            .iter()
            .any(|e| e.message.contains("is paused at PRE_SCALE_UP"))
    );

    let hook_id = sim.awaiting_hook().unwrap();
    let now = sim.now;
    answer_hook(sim.record_mut(), &hook_id, HookAction::Continue, now).unwrap();
    assert_eq!(
        answer_hook(sim.record_mut(), &hook_id, HookAction::Continue, now),
        Err(AnswerError::NotAwaiting {
            hook_id: hook_id.clone(),
            status: HookStatus::Succeeded
        })
    );
    sim.run_until("success", |sim| {
        sim.record().status == DeploymentStatus::Successful
    });
    assert_eq!(sim.live("td:2"), 2);
    assert_eq!(
        answer_hook(sim.record_mut(), &hook_id, HookAction::Continue, now),
        Err(AnswerError::NotInProgress(DeploymentStatus::Successful))
    );
}

/// How long after the start of the simulation the newest deployment began.
fn record_age(sim: &Sim) -> Duration {
    sim.record()
        .started_at
        .unwrap()
        .duration_since(T0 + Duration::from_secs(1_700_000_000))
        .unwrap()
}

#[test]
fn answering_a_pause_with_rollback_returns_to_the_source_revision() {
    let configuration = DeploymentConfiguration {
        pause_hooks: pause_at(&[Stage::PostScaleUp], 60, HookAction::Continue),
        ..DeploymentConfiguration::default()
    };
    let mut sim = Sim::steady(2, configuration);
    let source_revision = sim.record().target.arn.clone();
    sim.deploy("td:2");
    sim.run_until("the pause", |sim| sim.awaiting_hook().is_some());
    assert_eq!(sim.record().stage, Some(Stage::PostScaleUp));
    assert_eq!(sim.live("td:2"), 2);
    let hook_id = sim.awaiting_hook().unwrap();
    let now = sim.now;
    answer_hook(sim.record_mut(), &hook_id, HookAction::Rollback, now).unwrap();
    assert_eq!(sim.record().status, DeploymentStatus::RollbackRequested);
    sim.pass(0.5);
    assert_eq!(sim.record().status, DeploymentStatus::RollbackInProgress);
    assert_eq!(sim.service.task_definition, "td:1");
    assert_eq!(sim.service.primary().task_definition, "td:1");
    sim.run_until("rolled back", |sim| {
        sim.record().status == DeploymentStatus::RollbackSuccessful
    });
    assert_eq!((sim.live("td:1"), sim.live("td:2")), (2, 0));
    let record = sim.record();
    assert_eq!(record.hooks[0].status, HookStatus::Failed);
    let rollback = record.rollback.as_ref().unwrap();
    assert_eq!(
        rollback.revision_arn.as_deref(),
        Some(source_revision.as_str())
    );
    assert!(rollback.reason.contains("ROLLBACK"), "{}", rollback.reason);
    assert_eq!(sim.service.deployments.len(), 1);
}

#[test]
fn a_timed_out_pause_applies_its_timeout_action() {
    for (action, outcome) in [
        (HookAction::Continue, DeploymentStatus::Successful),
        (HookAction::Rollback, DeploymentStatus::RollbackSuccessful),
    ] {
        let configuration = DeploymentConfiguration {
            pause_hooks: pause_at(&[Stage::PreScaleUp], 2, action),
            ..DeploymentConfiguration::default()
        };
        let mut sim = Sim::steady(1, configuration);
        sim.deploy("td:2");
        sim.run_until("the pause", |sim| sim.awaiting_hook().is_some());
        let paused_at = sim.now;
        sim.run_until("the timeout", |sim| sim.awaiting_hook().is_none());
        // Two deployment minutes, two seconds here.
        assert!(sim.now >= paused_at + Duration::from_secs(2));
        assert_eq!(sim.record().hooks[0].status, HookStatus::TimedOut);
        sim.run_until("the end", |sim| !sim.record().status.is_active());
        assert_eq!(sim.record().status, outcome, "{action:?}");
    }
}

#[test]
fn stop_rollback_and_abort() {
    // ROLLBACK during a blue/green bake: blue is untouched, green goes.
    let mut sim = Sim::steady(2, blue_green(Strategy::BlueGreen, 60));
    sim.deploy("td:2");
    sim.run_until("bake time", |sim| {
        sim.record().stage == Some(Stage::BakeTime)
    });
    let arn = sim.record().arn.clone();
    let now = sim.now;
    stop(&mut sim.service, &arn, true, now).unwrap();
    sim.run_until("rolled back", |sim| {
        sim.record().status == DeploymentStatus::RollbackSuccessful
    });
    assert_eq!((sim.live("td:1"), sim.live("td:2")), (2, 0));
    let now = sim.now;
    assert_eq!(
        stop(&mut sim.service, &arn, true, now),
        Err(StopError::Finished(DeploymentStatus::RollbackSuccessful))
    );

    // ABORT while paused: stopped where it is, nothing more is launched.
    let configuration = DeploymentConfiguration {
        pause_hooks: pause_at(&[Stage::PreScaleUp], 60, HookAction::Rollback),
        ..DeploymentConfiguration::default()
    };
    let mut sim = Sim::steady(1, configuration);
    sim.deploy("td:2");
    sim.run_until("the pause", |sim| sim.awaiting_hook().is_some());
    let arn = sim.record().arn.clone();
    let now = sim.now;
    stop(&mut sim.service, &arn, false, now).unwrap();
    assert_eq!(sim.record().status, DeploymentStatus::StopRequested);
    sim.pass(0.5);
    let record = sim.record();
    assert_eq!(record.status, DeploymentStatus::Stopped);
    assert!(record.stopped_at.is_some());
    for _ in 0..10 {
        sim.pass(0.5);
    }
    assert_eq!((sim.live("td:1"), sim.live("td:2")), (1, 0));
    assert_eq!(sim.service.primary().rollout_state, RolloutState::Failed);
}

#[test]
fn a_newer_deployment_stops_a_paused_one() {
    let configuration = DeploymentConfiguration {
        pause_hooks: pause_at(&[Stage::PostScaleUp], 60, HookAction::Rollback),
        ..DeploymentConfiguration::default()
    };
    let mut sim = Sim::steady(1, configuration);
    sim.deploy("td:2");
    sim.run_until("the pause", |sim| sim.awaiting_hook().is_some());
    // The next deployment does not pause: hooks are removed in the meantime.
    sim.service.deployment_configuration.pause_hooks.clear();
    sim.deploy("td:3");
    let paused = sim.service.service_deployments.len() - 2;
    assert_eq!(
        sim.service.service_deployments[paused].status,
        DeploymentStatus::StopRequested
    );
    sim.run_until("success", |sim| {
        sim.record().status == DeploymentStatus::Successful
    });
    assert_eq!(
        sim.service.service_deployments[paused].status,
        DeploymentStatus::Stopped
    );
    assert_eq!((sim.live("td:2"), sim.live("td:3")), (0, 1));
}

#[test]
fn the_configuration_of_a_deployment_is_the_one_it_was_created_with() {
    let configuration = DeploymentConfiguration {
        pause_hooks: pause_at(&[Stage::PreScaleUp], 60, HookAction::Rollback),
        ..DeploymentConfiguration::default()
    };
    let mut sim = Sim::steady(1, configuration);
    sim.deploy("td:2");
    // Removing the hook now applies to the next deployment only.
    sim.service.deployment_configuration.pause_hooks.clear();
    sim.run_until("the pause", |sim| sim.awaiting_hook().is_some());
    assert_eq!(sim.record().configuration.pause_hooks.len(), 1);
}

#[test]
fn crashing_green_trips_the_circuit_breaker_and_rolls_back_to_blue() {
    let mut configuration = blue_green(Strategy::BlueGreen, 5);
    configuration.circuit_breaker = CircuitBreaker {
        enable: true,
        rollback: true,
        threshold: Threshold::Count(3),
        ..CircuitBreaker::default()
    };
    let mut sim = Sim::steady(2, configuration);
    let blue: Vec<String> = sim
        .tasks
        .iter()
        .filter(|t| t.last_status == "RUNNING")
        .map(|t| t.arn.clone())
        .collect();
    sim.deploy("td:bad");
    sim.run_until("rolled back", |sim| {
        sim.record().status == DeploymentStatus::RollbackSuccessful
    });
    let record = sim.record();
    assert!(record.breaker_triggered);
    // Green's two tasks crash together: the count passes the threshold of 3 at 4.
    assert_eq!((record.failure_count, record.threshold), (4, 3));
    assert_eq!(record.stage, Some(Stage::ScaleUp));
    assert!(
        record
            .rollback
            .as_ref()
            .unwrap()
            .reason
            .contains("circuit breaker")
    );
    assert_eq!(sim.service.task_definition, "td:1");
    // Blue was never touched.
    let still: Vec<String> = sim
        .tasks
        .iter()
        .filter(|t| t.last_status == "RUNNING")
        .map(|t| t.arn.clone())
        .collect();
    assert_eq!(still, blue);
}

#[test]
fn a_failure_without_rollback_stops_the_deployment() {
    let configuration = DeploymentConfiguration {
        circuit_breaker: CircuitBreaker {
            enable: true,
            rollback: false,
            threshold: Threshold::Count(2),
            ..CircuitBreaker::default()
        },
        ..DeploymentConfiguration::default()
    };
    let mut sim = Sim::steady(1, configuration);
    sim.deploy("td:bad");
    sim.run_until("stopped", |sim| {
        sim.record().status == DeploymentStatus::Stopped
    });
    let record = sim.record();
    assert!(record.stopped_at.is_some());
    assert!(record.rollback.is_none());
    assert_eq!(sim.live("td:1"), 1, "the old task keeps serving");
}

#[test]
fn a_first_deployment_that_fails_has_nothing_to_roll_back_to() {
    let mut sim = Sim::steady(0, DeploymentConfiguration::default());
    sim.service.desired_count = 1;
    sim.service.deployments[0].rollout_state = RolloutState::InProgress;
    let now = sim.now;
    sim.deploy("td:2");
    sim.service.deployments.truncate(1);
    let arn = sim.record().arn.clone();
    stop(&mut sim.service, &arn, true, now).unwrap();
    sim.pass(0.5);
    assert_eq!(sim.record().status, DeploymentStatus::RollbackFailed);
}
