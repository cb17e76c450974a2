//! The service scheduler as a pure function: given a service and what its tasks are doing now,
//! decide which tasks to start and stop, move deployments through their rollout states, trip
//! the circuit breaker and roll back. No I/O and no clock of its own, so every rule below is
//! table-tested without sleeping; `services.rs` runs it in a loop and carries out its actions.
//!
//! The rules follow ECS's rolling update (`ECS` deployment controller):
//! - running + pending tasks of all deployments stay ≤ ⌊desired × maximumPercent / 100⌋;
//! - healthy tasks stay ≥ ⌈desired × minimumHealthyPercent / 100⌉ while old tasks are stopped;
//! - the PRIMARY deployment is COMPLETED once it has `desired` healthy tasks and no older
//!   deployment has tasks left; older deployments are then dropped, so a steady service shows
//!   exactly one deployment (what the ServicesStable waiter checks);
//! - with the circuit breaker on, `failedTasks` reaching the threshold fails the deployment and,
//!   with rollback, the most recent COMPLETED deployment becomes PRIMARY again;
//! - tasks that keep failing to start space out launches (the service throttle, `throttle.rs`);
//! - the service deployment's lifecycle stage (`stages.rs`) says what may happen now: no task
//!   of the target revision before SCALE_UP (nor while a PAUSE hook awaits action), green to
//!   100 % beside blue for the blue/green family, blue's tasks stopped only at CLEAN_UP, and the
//!   primary COMPLETED only once every stage has passed.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use super::model::{RolloutState, ServiceRecord};
use super::records::{DeploymentStatus, Stage};
use super::stages::{self, Launch};
use crate::ecs::lifecycle::stop_code;

/// Without a container health check, a task counts as healthy once it has been RUNNING this long.
/// (ECS counts RUNNING tasks without a load balancer as healthy; the short wait keeps a task that
/// crashes right after starting from resetting the circuit breaker's count.)
pub(crate) const HEALTHY_AFTER: Duration = Duration::from_secs(1);

/// What the scheduler needs to know about one task of the service.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskView {
    pub(crate) arn: String,
    /// The deployment that started it (ECS puts the deployment id in `startedBy`).
    pub(crate) deployment_id: String,
    pub(crate) task_definition: String,
    pub(crate) last_status: String,
    pub(crate) desired_status: String,
    pub(crate) started_at: Option<SystemTime>,
    pub(crate) stop_code: Option<String>,
    pub(crate) stopped_reason: Option<String>,
    /// `None` when no essential container has a health check.
    pub(crate) health: Option<TaskHealth>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskHealth {
    Healthy,
    Unhealthy,
    Unknown,
}

impl TaskView {
    fn is_stopped(&self) -> bool {
        self.last_status == "STOPPED"
    }

    /// Counts against desired: not yet stopped and not being stopped.
    fn is_live(&self) -> bool {
        self.desired_status == "RUNNING" && !self.is_stopped()
    }

    fn is_running(&self) -> bool {
        self.is_live() && self.last_status == "RUNNING"
    }

    fn is_pending(&self) -> bool {
        self.is_live() && self.last_status != "RUNNING"
    }

    pub(crate) fn is_healthy(&self, now: SystemTime) -> bool {
        if !self.is_running() {
            return false;
        }
        match self.health {
            Some(health) => health == TaskHealth::Healthy,
            None => self.started_at.is_some_and(|started| {
                now.duration_since(started).unwrap_or_default() >= HEALTHY_AFTER
            }),
        }
    }

    /// STOPPED without ever reaching RUNNING, on its own (an image that cannot be pulled, a
    /// command that cannot start; not the endpoint shutting down): what the service throttle
    /// counts.
    pub(crate) fn failed_to_start(&self) -> bool {
        self.is_stopped()
            && self.started_at.is_none()
            && self.failed()
            && self.stop_code.as_deref() != Some(stop_code::TERMINATION_NOTICE)
    }

    /// Stopped on its own (crashed, failed to start, failed health checks), not by the
    /// scheduler scaling in or a user's StopTask.
    fn failed(&self) -> bool {
        (self.is_stopped() || self.desired_status == "STOPPED")
            && !matches!(
                self.stop_code.as_deref(),
                Some("ServiceSchedulerInitiated" | "UserInitiated")
            )
    }
}

/// Something for the engine to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Launch {
        deployment_id: String,
        task_definition: String,
        count: u32,
    },
    Stop {
        task_arn: String,
        reason: String,
    },
}

/// What the scheduler is told besides the service and its tasks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Settings {
    /// The service throttle's first wait.
    pub(crate) throttle_base: Duration,
    /// ECS-seconds per real second for bake times and hook timeouts (`stages::scaled`).
    pub(crate) time_scale: f64,
}

/// One scheduling pass. Updates `service` (deployment states and counts, failed tasks, the
/// throttle, the service deployment's stage, events) and returns the tasks to start and stop.
pub(crate) fn reconcile(
    service: &mut ServiceRecord,
    tasks: &[TaskView],
    settings: Settings,
    now: SystemTime,
) -> Vec<Action> {
    reconcile_with_stages(service, tasks, settings, now).0
}

/// [`reconcile`], also answering the lifecycle stages the service deployment entered.
pub(crate) fn reconcile_with_stages(
    service: &mut ServiceRecord,
    tasks: &[TaskView],
    settings: Settings,
    now: SystemTime,
) -> (Vec<Action>, Vec<(Stage, u32)>) {
    let mut actions = Vec::new();
    if service.status != "ACTIVE" {
        // DRAINING: stop everything; the caller marks the service INACTIVE once no task is left.
        for task in tasks.iter().filter(|task| task.is_live()) {
            actions.push(stop(
                task,
                format!("Service {} is being deleted", service.name),
            ));
        }
        update_counts(service, tasks);
        return (actions, Vec::new());
    }

    count_failures(service, tasks, now);
    trip_circuit_breaker(service, now);
    let (gates, entered) = stages::advance(service, tasks, settings.time_scale, now);
    // After the circuit breaker: a rollback changes the task definition, which ends the throttle.
    let task_definition = service.primary().task_definition.clone();
    if service
        .throttle
        .observe(&task_definition, tasks, settings.throttle_base, now)
    {
        let name = service.name.clone();
        service.push_event(
            now,
            format!("(service {name}) is unable to consistently start tasks successfully."),
        );
    }

    let desired = service.desired_count;
    let configuration = service.effective_configuration();
    let max_total = desired * configuration.maximum_percent / 100;
    let min_healthy = (desired * configuration.minimum_healthy_percent).div_ceil(100);
    let primary_id = service.primary().id.clone();

    // Replace unhealthy tasks (ECS's service scheduler does, counting them as failed).
    for task in tasks
        .iter()
        .filter(|task| task.is_running() && task.health == Some(TaskHealth::Unhealthy))
    {
        actions.push(stop(task, "Task failed container health checks".to_owned()));
    }
    let being_stopped: BTreeSet<&str> = actions
        .iter()
        .filter_map(|action| match action {
            Action::Stop { task_arn, .. } => Some(task_arn.as_str()),
            Action::Launch { .. } => None,
        })
        .collect();
    let live: Vec<&TaskView> = tasks
        .iter()
        .filter(|task| task.is_live() && !being_stopped.contains(task.arn.as_str()))
        .collect();

    // Start tasks for the primary deployment, within maximumPercent.
    let primary = service.primary();
    let primary_live = live
        .iter()
        .filter(|task| task.deployment_id == primary_id)
        .count() as u32;
    if primary.rollout_state != RolloutState::Failed
        && primary_live < desired
        && gates.launch != Launch::None
        && service.throttle.allows_launch(now)
    {
        let room = match gates.launch {
            Launch::Beside => desired,
            _ => max_total
                .max(desired.min(1))
                .saturating_sub(live.len() as u32),
        };
        let count = (desired - primary_live).min(room);
        if count > 0 {
            actions.push(Action::Launch {
                deployment_id: primary_id.clone(),
                task_definition: primary.task_definition.clone(),
                count,
            });
        }
    }

    // Stop tasks beyond what each deployment should have: old deployments want none, the
    // primary wants `desired`. Pending ones first, then running ones while enough stay healthy.
    let mut healthy = live.iter().filter(|task| task.is_healthy(now)).count() as u32;
    let mut surplus: Vec<&&TaskView> = live
        .iter()
        .filter(|task| task.deployment_id != primary_id)
        .collect();
    let primary_tasks: Vec<&&TaskView> = live
        .iter()
        .filter(|task| task.deployment_id == primary_id)
        .collect();
    if primary_tasks.len() as u32 > desired {
        let mut extra = primary_tasks;
        extra.sort_by_key(|task| (task.is_healthy(now), task.started_at));
        surplus.extend(extra.into_iter().take((primary_live - desired) as usize));
    }
    surplus.sort_by_key(|task| (task.is_healthy(now), task.is_running()));
    // A failed rollout that is not rolled back halts: the old tasks keep serving. So do they
    // before the deployment's stage lets them go (blue until CLEAN_UP).
    if service.primary().rollout_state == RolloutState::Failed || !gates.stop_older {
        surplus.retain(|task| task.deployment_id == primary_id);
    }
    for task in surplus {
        // A running task (even one still warming up) only stops if enough healthy ones remain;
        // pending ones serve nobody and may always go.
        if task.is_running() {
            let task_healthy = task.is_healthy(now);
            if healthy - u32::from(task_healthy) < min_healthy {
                continue;
            }
            if task_healthy {
                healthy -= 1;
            }
        }
        actions.push(stop(
            task,
            format!(
                "Scaling activity initiated by (deployment {})",
                task.deployment_id
            ),
        ));
    }

    let stopping: BTreeSet<String> = actions
        .iter()
        .filter_map(|action| match action {
            Action::Stop { task_arn, .. } => Some(task_arn.clone()),
            Action::Launch { .. } => None,
        })
        .collect();
    complete_rollout(service, tasks, &stopping, now, gates.complete);
    update_counts(service, tasks);
    stages::settle(service, now);
    (actions, entered)
}

fn stop(task: &TaskView, reason: String) -> Action {
    Action::Stop {
        task_arn: task.arn.clone(),
        reason,
    }
}

/// Adds each newly failed task to its deployment's `failedTasks`; a healthy task resets the
/// count when `resetOnHealthyTask` is on (only consecutive failures count).
fn count_failures(service: &mut ServiceRecord, tasks: &[TaskView], now: SystemTime) {
    let reset_on_healthy = service
        .deployment_configuration
        .circuit_breaker
        .reset_on_healthy_task;
    for deployment in &mut service.deployments {
        let mine = || {
            tasks
                .iter()
                .filter(|task| task.deployment_id == deployment.id)
        };
        for task in mine().filter(|task| task.failed()) {
            if deployment.counted_failures.insert(task.arn.clone()) {
                deployment.failed_tasks += 1;
                deployment.updated_at = now;
            }
        }
        if reset_on_healthy
            && mine().any(|task| task.is_healthy(now))
            && deployment.failed_tasks > 0
        {
            deployment.failed_tasks = 0;
        }
        // Forget tasks the engine no longer reports, so the set stays small.
        deployment
            .counted_failures
            .retain(|arn| tasks.iter().any(|task| &task.arn == arn));
    }
}

fn trip_circuit_breaker(service: &mut ServiceRecord, now: SystemTime) {
    let breaker = service.effective_configuration().circuit_breaker.clone();
    let threshold = breaker.threshold(service.desired_count);
    let name = service.name.clone();
    let primary = service.primary_mut();
    if !breaker.enable
        || primary.rollout_state != RolloutState::InProgress
        || primary.failed_tasks < threshold
    {
        return;
    }
    primary.rollout_state = RolloutState::Failed;
    primary.rollout_state_reason = Some(format!(
        "ECS deployment circuit breaker: tasks failed to start. (failed tasks: {}, threshold: {threshold})",
        primary.failed_tasks
    ));
    primary.updated_at = now;
    let failed_id = primary.id.clone();
    service.push_event(
        now,
        format!(
            "(service {name}) (deployment {failed_id}) deployment failed: tasks failed to start."
        ),
    );
    let failed_tasks = service.primary().failed_tasks;
    let reason = format!(
        "ECS deployment circuit breaker: tasks failed to start. (failed tasks: {failed_tasks}, threshold: {threshold})"
    );
    let record = service
        .service_deployments
        .last_mut()
        .filter(|record| record.status.is_active());
    if let Some(record) = record {
        record.breaker_triggered = true;
        record.failure_count = failed_tasks;
        record.updated_at = now;
        if record.status == DeploymentStatus::RollbackInProgress {
            // The revision rolled back to fails as well: nothing left to return to.
            record.status_reason = Some(reason);
            record.finish(DeploymentStatus::RollbackFailed, now);
            return;
        }
        if !breaker.rollback {
            record.status = DeploymentStatus::StopRequested;
            record.status_reason = Some(reason);
            return;
        }
    } else if !breaker.rollback {
        return;
    }
    stages::roll_back(service, reason, now);
}

/// Marks the primary COMPLETED once it is fully rolled out, drops drained deployments, and
/// reports steady state once.
fn complete_rollout(
    service: &mut ServiceRecord,
    tasks: &[TaskView],
    stopping: &BTreeSet<String>,
    now: SystemTime,
    may_complete: bool,
) {
    let desired = service.desired_count;
    let name = service.name.clone();
    let primary_id = service.primary().id.clone();
    // Tasks being stopped still count until they are STOPPED: the old deployment stays listed
    // while it drains, as in ECS.
    let remaining = |id: &str| {
        tasks
            .iter()
            .filter(|task| task.deployment_id == id && !task.is_stopped())
            .count()
    };
    let healthy_primary = tasks
        .iter()
        .filter(|task| {
            task.deployment_id == primary_id
                && task.is_healthy(now)
                && !stopping.contains(&task.arn)
        })
        .count() as u32;
    let old_drained = service
        .deployments
        .iter()
        .filter(|d| d.id != primary_id)
        .all(|d| remaining(&d.id) == 0);

    if may_complete
        && service.primary().rollout_state == RolloutState::InProgress
        && healthy_primary >= desired
        && old_drained
    {
        let primary = service.primary_mut();
        primary.rollout_state = RolloutState::Completed;
        primary.rollout_state_reason = Some("ECS deployment completed.".to_owned());
        primary.updated_at = now;
        service.push_event(
            now,
            format!("(service {name}) (deployment {primary_id}) deployment completed."),
        );
    }
    // A drained older deployment is INACTIVE and no longer listed.
    if service.primary().rollout_state == RolloutState::Completed {
        service
            .deployments
            .retain(|deployment| deployment.id == primary_id || remaining(&deployment.id) > 0);
    }
    let running = tasks.iter().filter(|task| task.is_running()).count() as u32;
    let steady = service.deployments.len() == 1
        && service.primary().rollout_state == RolloutState::Completed
        && running == desired
        && tasks.iter().all(|task| !task.is_pending());
    if steady && !service.steady_state_reported {
        service.push_event(now, format!("(service {name}) has reached a steady state."));
    }
    service.steady_state_reported = steady;
}

fn update_counts(service: &mut ServiceRecord, tasks: &[TaskView]) {
    service.running_count = tasks.iter().filter(|task| task.is_running()).count() as u32;
    service.pending_count = tasks.iter().filter(|task| task.is_pending()).count() as u32;
    for deployment in &mut service.deployments {
        let mine = || {
            tasks
                .iter()
                .filter(|task| task.deployment_id == deployment.id)
        };
        deployment.running_count = mine().filter(|task| task.is_running()).count() as u32;
        deployment.pending_count = mine().filter(|task| task.is_pending()).count() as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::services::model::{
        CircuitBreaker, Deployment, DeploymentConfiguration, Threshold,
    };

    const T0: SystemTime = SystemTime::UNIX_EPOCH;
    /// The service throttle's first wait in these tests is 10 s; deployment minutes are real.
    const BASE: Settings = Settings {
        throttle_base: Duration::from_secs(10),
        time_scale: 1.0,
    };

    fn at(seconds: u64) -> SystemTime {
        T0 + Duration::from_secs(1_700_000_000 + seconds)
    }

    fn deployment(
        id: &str,
        task_definition: &str,
        state: RolloutState,
        created: u64,
    ) -> Deployment {
        let mut deployment = Deployment::new(
            task_definition.to_owned(),
            2,
            Default::default(),
            at(created),
        );
        deployment.id = id.to_owned();
        deployment.rollout_state = state;
        deployment
    }

    fn service(desired: u32, deployments: Vec<Deployment>) -> ServiceRecord {
        let mut deployments = deployments;
        for (index, deployment) in deployments.iter_mut().enumerate() {
            deployment.status = if index == 0 { "PRIMARY" } else { "ACTIVE" }.to_owned();
        }
        ServiceRecord {
            arn: "arn:aws:ecs:us-east-1:000000000000:service/c/web".into(),
            name: "web".into(),
            cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/c".into(),
            status: "ACTIVE".into(),
            desired_count: desired,
            running_count: 0,
            pending_count: 0,
            task_definition: deployments[0].task_definition.clone(),
            deployment_configuration: DeploymentConfiguration::default(),
            deployments,
            events: Default::default(),
            created_at: at(0),
            steady_state_reported: false,
            spec: Default::default(),
            throttle: Default::default(),
            controller: Default::default(),
            revisions: Vec::new(),
            service_deployments: Vec::new(),
        }
    }

    fn running(arn: &str, deployment: &str, started: u64) -> TaskView {
        TaskView {
            arn: arn.into(),
            deployment_id: deployment.into(),
            // Deployment "dN" runs "td:N" in these tests.
            task_definition: format!("td:{}", &deployment[1..]),
            last_status: "RUNNING".into(),
            desired_status: "RUNNING".into(),
            started_at: Some(at(started)),
            stop_code: None,
            stopped_reason: None,
            health: None,
        }
    }

    fn pending(arn: &str, deployment: &str) -> TaskView {
        TaskView {
            last_status: "PENDING".into(),
            started_at: None,
            ..running(arn, deployment, 0)
        }
    }

    fn crashed(arn: &str, deployment: &str) -> TaskView {
        TaskView {
            last_status: "STOPPED".into(),
            desired_status: "STOPPED".into(),
            stop_code: Some("EssentialContainerExited".into()),
            stopped_reason: Some("Essential container in task exited".into()),
            ..running(arn, deployment, 0)
        }
    }

    fn failed_to_start(arn: &str, deployment: &str) -> TaskView {
        TaskView {
            stop_code: Some("TaskFailedToStart".into()),
            stopped_reason: Some("CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref web:broken: not found".into()),
            started_at: None,
            ..crashed(arn, deployment)
        }
    }

    /// Runs the scheduler once a second over `seconds`; every task it launches stays pending
    /// for a second and then stops, without starting (`fail`) or after running (`crash`).
    /// Answers the seconds at which it launched.
    fn simulate(
        service: &mut ServiceRecord,
        tasks: &mut Vec<TaskView>,
        seconds: std::ops::Range<u64>,
        stops: fn(&str, &str) -> TaskView,
    ) -> Vec<u64> {
        let mut launched_at = Vec::new();
        for second in seconds {
            for task in tasks.iter_mut().filter(|task| task.is_pending()) {
                *task = stops(&task.arn, &task.deployment_id);
            }
            for (deployment, count) in launches(&reconcile(service, tasks, BASE, at(second))) {
                for _ in 0..count {
                    tasks.push(pending(&format!("t{}", tasks.len()), &deployment));
                }
                launched_at.push(second);
            }
        }
        launched_at
    }

    fn impaired_events(service: &ServiceRecord) -> usize {
        service
            .events
            .iter()
            .filter(|e| {
                e.message == "(service web) is unable to consistently start tasks successfully."
            })
            .count()
    }

    fn launches(actions: &[Action]) -> Vec<(String, u32)> {
        actions
            .iter()
            .filter_map(|action| match action {
                Action::Launch {
                    deployment_id,
                    count,
                    ..
                } => Some((deployment_id.clone(), *count)),
                Action::Stop { .. } => None,
            })
            .collect()
    }

    fn stops(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|action| match action {
                Action::Stop { task_arn, .. } => Some(task_arn.clone()),
                Action::Launch { .. } => None,
            })
            .collect()
    }

    #[test]
    fn a_new_service_starts_its_desired_tasks() {
        let mut service = service(
            2,
            vec![deployment("d1", "td:1", RolloutState::InProgress, 0)],
        );
        let actions = reconcile(&mut service, &[], BASE, at(1));
        assert_eq!(launches(&actions), vec![("d1".to_owned(), 2)]);
        assert!(stops(&actions).is_empty());
    }

    #[test]
    fn a_deployment_completes_once_its_tasks_are_healthy_and_reports_steady_state_once() {
        let mut service = service(
            2,
            vec![deployment("d1", "td:1", RolloutState::InProgress, 0)],
        );
        let tasks = [running("t1", "d1", 10), running("t2", "d1", 10)];
        // Running, but not yet for HEALTHY_AFTER.
        reconcile(&mut service, &tasks, BASE, at(10));
        assert_eq!(service.primary().rollout_state, RolloutState::InProgress);
        reconcile(&mut service, &tasks, BASE, at(12));
        assert_eq!(service.primary().rollout_state, RolloutState::Completed);
        assert_eq!(service.running_count, 2);
        reconcile(&mut service, &tasks, BASE, at(13));
        let steady: Vec<_> = service
            .events
            .iter()
            .filter(|e| e.message.ends_with("has reached a steady state."))
            .collect();
        assert_eq!(steady.len(), 1, "{:?}", service.events);
        assert!(
            service
                .events
                .iter()
                .any(|e| e.message == "(service web) (deployment d1) deployment completed.")
        );
    }

    #[test]
    fn rolling_update_starts_new_tasks_before_stopping_old_ones_and_drops_the_old_deployment() {
        let mut service = service(
            2,
            vec![
                deployment("d2", "td:2", RolloutState::InProgress, 100),
                deployment("d1", "td:1", RolloutState::Completed, 0),
            ],
        );
        let old = [running("o1", "d1", 1), running("o2", "d1", 1)];
        // max 200%: room for 2 new tasks; min 100%: no old task may stop yet.
        let actions = reconcile(&mut service, &old, BASE, at(101));
        assert_eq!(launches(&actions), vec![("d2".to_owned(), 2)]);
        assert!(stops(&actions).is_empty());

        let mut tasks = old.to_vec();
        tasks.extend([running("n1", "d2", 102), running("n2", "d2", 102)]);
        let actions = reconcile(&mut service, &tasks, BASE, at(105));
        assert_eq!(stops(&actions), vec!["o1".to_owned(), "o2".to_owned()]);
        assert!(launches(&actions).is_empty());
        // Old tasks still stopping: not completed yet, both deployments listed.
        assert_eq!(service.primary().rollout_state, RolloutState::InProgress);
        assert_eq!(service.deployments.len(), 2);

        let tasks = [running("n1", "d2", 102), running("n2", "d2", 102)];
        reconcile(&mut service, &tasks, BASE, at(106));
        assert_eq!(service.primary().rollout_state, RolloutState::Completed);
        assert_eq!(service.deployments.len(), 1);
        assert_eq!(service.deployments[0].id, "d2");
    }

    #[test]
    fn old_tasks_still_warming_up_are_not_stopped_below_minimum_healthy() {
        let mut service = service(
            2,
            vec![
                deployment("d2", "td:2", RolloutState::InProgress, 100),
                deployment("d1", "td:1", RolloutState::Completed, 0),
            ],
        );
        // Old tasks started a moment ago (not yet healthy); new ones are pending.
        let tasks = [
            running("o1", "d1", 100),
            running("o2", "d1", 100),
            pending("n1", "d2"),
            pending("n2", "d2"),
        ];
        let actions = reconcile(&mut service, &tasks, BASE, at(100));
        assert!(actions.is_empty(), "{actions:?}");
    }

    #[test]
    fn minimum_healthy_percent_lets_old_tasks_stop_first_when_maximum_leaves_no_room() {
        let mut service = service(
            4,
            vec![
                deployment("d2", "td:2", RolloutState::InProgress, 100),
                deployment("d1", "td:1", RolloutState::Completed, 0),
            ],
        );
        service.deployment_configuration.maximum_percent = 100;
        service.deployment_configuration.minimum_healthy_percent = 50;
        let old: Vec<_> = (1..=4)
            .map(|i| running(&format!("o{i}"), "d1", 1))
            .collect();
        let actions = reconcile(&mut service, &old, BASE, at(101));
        assert!(launches(&actions).is_empty(), "no room above 100%");
        assert_eq!(stops(&actions).len(), 2, "may go down to 50% of 4");
    }

    #[test]
    fn crashing_tasks_trip_the_circuit_breaker_and_roll_back_to_the_completed_deployment() {
        let mut service = service(
            2,
            vec![
                deployment("d2", "td:2", RolloutState::InProgress, 100),
                deployment("d1", "td:1", RolloutState::Completed, 0),
            ],
        );
        service.deployment_configuration.minimum_healthy_percent = 50;
        service.deployment_configuration.circuit_breaker = CircuitBreaker {
            enable: true,
            rollback: true,
            ..CircuitBreaker::default()
        };
        // One old task was already scaled in; two new ones crashed.
        let mut tasks = vec![
            running("o1", "d1", 1),
            crashed("c1", "d2"),
            crashed("c2", "d2"),
        ];
        reconcile(&mut service, &tasks, BASE, at(101));
        assert_eq!(service.deployments[0].failed_tasks, 2);
        assert_eq!(service.primary().rollout_state, RolloutState::InProgress);

        tasks.push(crashed("c3", "d2"));
        let actions = reconcile(&mut service, &tasks, BASE, at(102));
        assert_eq!(service.primary().id, "d1", "rolled back");
        assert_eq!(service.primary().rollout_state, RolloutState::InProgress);
        assert_eq!(service.task_definition, "td:1");
        let failed = service.deployments.iter().find(|d| d.id == "d2").unwrap();
        assert_eq!(failed.rollout_state, RolloutState::Failed);
        assert_eq!(failed.status, "ACTIVE");
        assert_eq!(
            launches(&actions),
            vec![("d1".to_owned(), 1)],
            "d1 back to its 2 tasks"
        );
        assert!(
            service
                .events
                .iter()
                .any(|e| e.message == "(service web) rolling back to deployment d1.")
        );
        assert!(service.events.iter().any(|e| {
            e.message
                .ends_with("deployment failed: tasks failed to start.")
        }));

        // d1 is whole and healthy again and d2 has nothing left: the rollback completes, d2 is gone.
        tasks.push(running("o3", "d1", 102));
        reconcile(&mut service, &tasks, BASE, at(104));
        assert_eq!(service.primary().rollout_state, RolloutState::Completed);
        assert_eq!(service.deployments.len(), 1);
    }

    #[test]
    fn a_failed_deployment_without_rollback_halts_and_keeps_the_old_tasks() {
        let mut service = service(
            2,
            vec![
                deployment("d2", "td:2", RolloutState::InProgress, 100),
                deployment("d1", "td:1", RolloutState::Completed, 0),
            ],
        );
        service.deployment_configuration.minimum_healthy_percent = 0;
        service.deployment_configuration.circuit_breaker = CircuitBreaker {
            enable: true,
            rollback: false,
            threshold: Threshold::Count(1),
            ..CircuitBreaker::default()
        };
        let tasks = [
            running("o1", "d1", 1),
            running("o2", "d1", 1),
            crashed("c1", "d2"),
        ];
        let actions = reconcile(&mut service, &tasks, BASE, at(101));
        assert_eq!(service.primary().rollout_state, RolloutState::Failed);
        assert!(actions.is_empty(), "{actions:?}");
    }

    #[test]
    fn tasks_stopped_by_the_scheduler_or_a_user_are_replaced_but_not_counted_as_failures() {
        let mut service = service(
            2,
            vec![deployment("d1", "td:1", RolloutState::Completed, 0)],
        );
        let mut stopped = crashed("t2", "d1");
        stopped.stop_code = Some("UserInitiated".into());
        let actions = reconcile(
            &mut service,
            &[running("t1", "d1", 1), stopped],
            BASE,
            at(50),
        );
        assert_eq!(launches(&actions), vec![("d1".to_owned(), 1)]);
        assert_eq!(service.primary().failed_tasks, 0);
    }

    #[test]
    fn unhealthy_tasks_are_replaced() {
        let mut service = service(
            1,
            vec![deployment("d1", "td:1", RolloutState::Completed, 0)],
        );
        let mut sick = running("t1", "d1", 1);
        sick.health = Some(TaskHealth::Unhealthy);
        let actions = reconcile(&mut service, &[sick], BASE, at(50));
        assert_eq!(stops(&actions), vec!["t1".to_owned()]);
        assert_eq!(launches(&actions), vec![("d1".to_owned(), 1)]);
    }

    #[test]
    fn scaling_in_stops_the_surplus() {
        let mut service = service(
            1,
            vec![deployment("d1", "td:1", RolloutState::Completed, 0)],
        );
        let tasks = [
            running("t1", "d1", 1),
            running("t2", "d1", 2),
            pending("t3", "d1"),
        ];
        let actions = reconcile(&mut service, &tasks, BASE, at(50));
        assert_eq!(stops(&actions).len(), 2);
        assert!(stops(&actions).contains(&"t3".to_owned()), "pending first");
    }

    #[test]
    fn a_draining_service_stops_everything() {
        let mut service = service(
            2,
            vec![deployment("d1", "td:1", RolloutState::Completed, 0)],
        );
        service.status = "DRAINING".into();
        let actions = reconcile(
            &mut service,
            &[running("t1", "d1", 1), pending("t2", "d1")],
            BASE,
            at(50),
        );
        assert_eq!(stops(&actions).len(), 2);
        assert!(launches(&actions).is_empty());
    }

    #[test]
    fn tasks_that_keep_failing_to_start_space_out_launches_and_say_so_once() {
        let mut service = service(
            1,
            vec![deployment("d1", "td:1", RolloutState::InProgress, 0)],
        );
        let mut tasks = Vec::new();
        let launched = simulate(&mut service, &mut tasks, 1..200, failed_to_start);
        // Three failures at scheduler speed, then waits of 10, 20, 40, 80 s after each failure
        // (which comes a second after its launch).
        assert_eq!(launched, [1, 2, 3, 14, 35, 76, 157]);
        assert_eq!(impaired_events(&service), 1, "{:?}", service.events);
        assert_eq!(service.throttle.failures, 7);
    }

    #[test]
    fn tasks_that_run_and_crash_are_never_throttled() {
        let mut service = service(
            1,
            vec![deployment("d1", "td:1", RolloutState::InProgress, 0)],
        );
        let mut tasks = Vec::new();
        let crash_after_start = |arn: &str, deployment: &str| crashed(arn, deployment);
        let launched = simulate(&mut service, &mut tasks, 1..20, crash_after_start);
        assert_eq!(launched, (1..20).collect::<Vec<_>>());
        assert_eq!(impaired_events(&service), 0);
    }

    #[test]
    fn tasks_abandoned_before_running_by_a_restart_are_not_start_failures() {
        let mut service = service(
            1,
            vec![deployment("d1", "td:1", RolloutState::InProgress, 0)],
        );
        let mut tasks = Vec::new();
        let abandoned = |arn: &str, deployment: &str| TaskView {
            stop_code: Some("TerminationNotice".into()),
            stopped_reason: Some("Task stopped because shipmate local restarted".into()),
            ..failed_to_start(arn, deployment)
        };
        let launched = simulate(&mut service, &mut tasks, 1..10, abandoned);
        assert_eq!(launched, (1..10).collect::<Vec<_>>());
        assert_eq!(service.throttle.failures, 0);
    }

    #[test]
    fn a_new_task_definition_ends_the_throttle_at_once() {
        let mut service = service(
            1,
            vec![deployment("d1", "td:1", RolloutState::InProgress, 0)],
        );
        let mut tasks = Vec::new();
        simulate(&mut service, &mut tasks, 1..20, failed_to_start);
        assert!(!service.throttle.allows_launch(at(20)), "throttled");
        // UpdateService to td:2: a new primary deployment.
        service.deployments[0].status = "ACTIVE".into();
        let mut update = deployment("d2", "td:2", RolloutState::InProgress, 20);
        update.desired_count = 1;
        service.deployments.insert(0, update);
        service.task_definition = "td:2".into();
        let actions = reconcile(&mut service, &tasks, BASE, at(20));
        assert_eq!(launches(&actions), vec![("d2".to_owned(), 1)]);
        assert_eq!(service.throttle.failures, 0);
        tasks.push(pending("n0", "d2"));
        // Its failures are counted afresh: the event comes again once they pass the threshold.
        let launched = simulate(&mut service, &mut tasks, 21..40, failed_to_start);
        assert_eq!(launched, [21, 22, 33]);
        assert_eq!(impaired_events(&service), 2);
    }

    #[test]
    fn a_task_reaching_running_ends_the_throttle() {
        let mut service = service(
            2,
            vec![deployment("d1", "td:1", RolloutState::InProgress, 0)],
        );
        let mut tasks = Vec::new();
        simulate(&mut service, &mut tasks, 1..10, failed_to_start);
        assert!(!service.throttle.allows_launch(at(10)), "throttled");
        // One task of the service gets to RUNNING after all (say the registry recovered).
        tasks.push(running("ok", "d1", 10));
        let actions = reconcile(&mut service, &tasks, BASE, at(10));
        assert_eq!(launches(&actions), vec![("d1".to_owned(), 1)]);
        assert_eq!(service.throttle.failures, 0);
        assert!(service.throttle.allows_launch(at(10)));
    }

    #[test]
    fn the_circuit_breaker_still_trips_on_tasks_that_fail_to_start() {
        // desired 1: BOUNDED_PERCENT 50 gives 3, reached before any throttled wait; with
        // rollback the completed deployment (another task definition) takes over unthrottled.
        let mut service = service(
            1,
            vec![
                deployment("d2", "td:2", RolloutState::InProgress, 0),
                deployment("d1", "td:1", RolloutState::Completed, 0),
            ],
        );
        service.deployment_configuration.circuit_breaker = CircuitBreaker {
            enable: true,
            rollback: true,
            ..CircuitBreaker::default()
        };
        let mut tasks = vec![running("o1", "d1", 0)];
        let launched = simulate(&mut service, &mut tasks, 1..5, failed_to_start);
        assert_eq!(launched, [1, 2, 3]);
        assert!(service.events.iter().any(|e| {
            e.message == "(service web) (deployment d2) deployment failed: tasks failed to start."
        }));
        assert_eq!(service.primary().id, "d1");
        assert_eq!(service.task_definition, "td:1");
        assert!(
            service.throttle.allows_launch(at(5)),
            "td:1 is not throttled"
        );

        // A COUNT threshold beyond the throttle's is still reached, only later.
        let mut service = service_with_count_threshold(6);
        let mut tasks = Vec::new();
        let launched = simulate(&mut service, &mut tasks, 1..100, failed_to_start);
        assert_eq!(launched, [1, 2, 3, 14, 35, 76]);
        assert_eq!(service.primary().rollout_state, RolloutState::Failed);
        assert_eq!(service.primary().failed_tasks, 6);
    }

    fn service_with_count_threshold(count: u32) -> ServiceRecord {
        let mut service = service(
            1,
            vec![deployment("d1", "td:1", RolloutState::InProgress, 0)],
        );
        service.deployment_configuration.circuit_breaker = CircuitBreaker {
            enable: true,
            rollback: false,
            threshold: Threshold::Count(count),
            ..CircuitBreaker::default()
        };
        service
    }

    #[test]
    fn circuit_breaker_thresholds() {
        let breaker = |threshold| CircuitBreaker {
            enable: true,
            threshold,
            ..CircuitBreaker::default()
        };
        for (threshold, desired, expected) in [
            (Threshold::BoundedPercent(50), 1, 3),
            (Threshold::BoundedPercent(50), 2, 3),
            (Threshold::BoundedPercent(50), 25, 13),
            (Threshold::BoundedPercent(50), 400, 200),
            (Threshold::BoundedPercent(50), 800, 200),
            (Threshold::UnboundedPercent(50), 800, 400),
            (Threshold::UnboundedPercent(50), 1, 1),
            (Threshold::Count(5), 800, 5),
        ] {
            assert_eq!(
                breaker(threshold).threshold(desired),
                expected,
                "{threshold:?} of {desired}"
            );
        }
    }
}
