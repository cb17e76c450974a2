//! The ECS task lifecycle as data: which status follows which on which event, and what each
//! event writes into the task (timestamps, desiredStatus, stopCode, stoppedReason, version).
//! Pure functions, so the order and the bookkeeping are tested without running a process; the
//! supervisor only decides *when* an event happens.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use shipmate_local_api::ecs::{Task, epoch_seconds};

/// `lastStatus` of a task, in lifecycle order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    Provisioning,
    Pending,
    Activating,
    Running,
    Deactivating,
    Stopping,
    Deprovisioning,
    Stopped,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Provisioning => "PROVISIONING",
            TaskStatus::Pending => "PENDING",
            TaskStatus::Activating => "ACTIVATING",
            TaskStatus::Running => "RUNNING",
            TaskStatus::Deactivating => "DEACTIVATING",
            TaskStatus::Stopping => "STOPPING",
            TaskStatus::Deprovisioning => "DEPROVISIONING",
            TaskStatus::Stopped => "STOPPED",
        }
    }

    pub fn parse(status: &str) -> Option<TaskStatus> {
        [
            TaskStatus::Provisioning,
            TaskStatus::Pending,
            TaskStatus::Activating,
            TaskStatus::Running,
            TaskStatus::Deactivating,
            TaskStatus::Stopping,
            TaskStatus::Deprovisioning,
            TaskStatus::Stopped,
        ]
        .into_iter()
        .find(|s| s.as_str() == status)
    }

    /// Before RUNNING: the task has not started.
    pub fn is_starting(self) -> bool {
        self < TaskStatus::Running
    }
}

/// `stopCode` values (the model's `TaskStopCode`).
pub mod stop_code {
    pub const TASK_FAILED_TO_START: &str = "TaskFailedToStart";
    pub const ESSENTIAL_CONTAINER_EXITED: &str = "EssentialContainerExited";
    pub const USER_INITIATED: &str = "UserInitiated";
    pub const SERVICE_SCHEDULER_INITIATED: &str = "ServiceSchedulerInitiated";
    pub const TERMINATION_NOTICE: &str = "TerminationNotice";
}

/// Something that happens to a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEvent {
    /// Resources (the task's address) are in place: PROVISIONING → PENDING.
    Provisioned,
    /// Image pulls begin (stays PENDING, sets `pullStartedAt`).
    PullStarted,
    /// Image pulls are done (stays PENDING, sets `pullStoppedAt`).
    PullStopped,
    /// Containers are being created: PENDING → ACTIVATING.
    Activating,
    /// Every container process runs: ACTIVATING → RUNNING, `startedAt`.
    Started,
    /// Someone wants the task stopped: `desiredStatus` STOPPED with a code and reason. Status is
    /// unchanged; only the first request counts.
    StopRequested { code: String, reason: String },
    /// Stopping begins (needs a stop request): RUNNING (or a starting status) → DEACTIVATING.
    Deactivating,
    /// Containers are being signalled: DEACTIVATING → STOPPING, `stoppingAt`.
    Stopping,
    /// Every container process is gone: STOPPING → DEPROVISIONING, `executionStoppedAt`.
    ExecutionStopped,
    /// The task could not start: a starting status → DEPROVISIONING with `TaskFailedToStart`.
    FailedToStart { reason: String },
    /// Resources released: DEPROVISIONING → STOPPED, `stoppedAt`.
    Deprovisioned,
    /// The endpoint lost the task (it restarted): any status → STOPPED at once.
    Abandoned { reason: String },
}

/// The status an event leads to from `from`, or `None` if the event is not allowed there.
pub fn next_status(from: TaskStatus, event: &TaskEvent) -> Option<TaskStatus> {
    use TaskStatus::*;
    match (from, event) {
        (Provisioning, TaskEvent::Provisioned) => Some(Pending),
        (Pending, TaskEvent::PullStarted | TaskEvent::PullStopped) => Some(Pending),
        (Pending, TaskEvent::Activating) => Some(Activating),
        (Activating, TaskEvent::Started) => Some(Running),
        (Stopped, TaskEvent::StopRequested { .. }) => None,
        (status, TaskEvent::StopRequested { .. }) => Some(status),
        (Provisioning | Pending | Activating | Running, TaskEvent::Deactivating) => {
            Some(Deactivating)
        }
        (Deactivating, TaskEvent::Stopping) => Some(Stopping),
        (Stopping, TaskEvent::ExecutionStopped) => Some(Deprovisioning),
        (Provisioning | Pending | Activating, TaskEvent::FailedToStart { .. }) => {
            Some(Deprovisioning)
        }
        (Deprovisioning, TaskEvent::Deprovisioned) => Some(Stopped),
        (Stopped, TaskEvent::Abandoned { .. }) => None,
        (_, TaskEvent::Abandoned { .. }) => Some(Stopped),
        _ => None,
    }
}

/// A transition the table does not allow (a supervisor bug, never a user error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task {task_arn}: {event:?} is not allowed in status {from:?}")]
pub struct LifecycleError {
    pub task_arn: String,
    pub from: Option<TaskStatus>,
    pub event: TaskEvent,
}

/// Applies `event` to `task` at `now`. Returns `Ok(false)` for a stop request on a task already
/// told to stop (nothing changes), `Ok(true)` when the task changed (and `version` went up).
pub fn apply(task: &mut Task, event: &TaskEvent, now: SystemTime) -> Result<bool, LifecycleError> {
    let from = task.last_status.as_deref().and_then(TaskStatus::parse);
    let error = || LifecycleError {
        task_arn: task.task_arn.clone().unwrap_or_default(),
        from,
        event: event.clone(),
    };
    let to = from
        .and_then(|from| next_status(from, event))
        .ok_or_else(error)?;
    let stop_requested = task.desired_status.as_deref() == Some("STOPPED");
    let at = Some(epoch_seconds(now));
    match event {
        TaskEvent::StopRequested { code, reason } => {
            if stop_requested {
                return Ok(false);
            }
            task.desired_status = Some("STOPPED".into());
            task.stop_code = Some(code.clone());
            task.stopped_reason = Some(reason.clone());
        }
        TaskEvent::Deactivating if !stop_requested => return Err(error()),
        TaskEvent::PullStarted => task.pull_started_at = at,
        TaskEvent::PullStopped => task.pull_stopped_at = at,
        TaskEvent::Started => {
            task.started_at = at;
            task.connectivity = Some("CONNECTED".into());
            task.connectivity_at = at;
        }
        TaskEvent::Stopping => task.stopping_at = at,
        TaskEvent::ExecutionStopped => task.execution_stopped_at = at,
        TaskEvent::FailedToStart { reason } => {
            task.desired_status = Some("STOPPED".into());
            task.stop_code = Some(stop_code::TASK_FAILED_TO_START.into());
            task.stopped_reason = Some(reason.clone());
            task.stopping_at = at;
            task.execution_stopped_at = at;
        }
        TaskEvent::Deprovisioned => task.stopped_at = at,
        TaskEvent::Abandoned { reason } => {
            if !stop_requested {
                task.desired_status = Some("STOPPED".into());
                task.stop_code = Some(stop_code::TERMINATION_NOTICE.into());
                task.stopped_reason = Some(reason.clone());
            }
            task.stopping_at = task.stopping_at.or(at);
            task.execution_stopped_at = task.execution_stopped_at.or(at);
            task.stopped_at = at;
        }
        TaskEvent::Provisioned | TaskEvent::Activating | TaskEvent::Deactivating => {}
    }
    task.last_status = Some(to.as_str().into());
    task.version += 1;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::TaskStatus::*;
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn stop() -> TaskEvent {
        TaskEvent::StopRequested {
            code: stop_code::USER_INITIATED.into(),
            reason: "Task stopped by user".into(),
        }
    }

    fn failed() -> TaskEvent {
        TaskEvent::FailedToStart {
            reason: "CannotPullContainerError: x".into(),
        }
    }

    #[test]
    fn transition_table() {
        let abandoned = TaskEvent::Abandoned {
            reason: "restart".into(),
        };
        let table: Vec<(TaskStatus, TaskEvent, Option<TaskStatus>)> = vec![
            (Provisioning, TaskEvent::Provisioned, Some(Pending)),
            (Pending, TaskEvent::PullStarted, Some(Pending)),
            (Pending, TaskEvent::PullStopped, Some(Pending)),
            (Pending, TaskEvent::Activating, Some(Activating)),
            (Activating, TaskEvent::Started, Some(Running)),
            (Running, stop(), Some(Running)),
            (Pending, stop(), Some(Pending)),
            (Stopped, stop(), None),
            (Running, TaskEvent::Deactivating, Some(Deactivating)),
            (Pending, TaskEvent::Deactivating, Some(Deactivating)),
            (Deactivating, TaskEvent::Stopping, Some(Stopping)),
            (Stopping, TaskEvent::ExecutionStopped, Some(Deprovisioning)),
            (Deprovisioning, TaskEvent::Deprovisioned, Some(Stopped)),
            (Activating, failed(), Some(Deprovisioning)),
            (Pending, failed(), Some(Deprovisioning)),
            (Running, abandoned.clone(), Some(Stopped)),
            (Provisioning, abandoned.clone(), Some(Stopped)),
            (Stopped, abandoned, None),
            // not allowed: skipping or going back
            (Provisioning, TaskEvent::Started, None),
            (Pending, TaskEvent::Started, None),
            (Running, TaskEvent::Activating, None),
            (Running, failed(), None),
            (Running, TaskEvent::Stopping, None),
            (Stopping, TaskEvent::Deprovisioned, None),
            (Stopped, TaskEvent::Deactivating, None),
            (Deactivating, TaskEvent::Deactivating, None),
        ];
        for (from, event, expected) in table {
            assert_eq!(next_status(from, &event), expected, "{from:?} + {event:?}");
        }
    }

    fn at(seconds: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_millis(millis)
    }

    fn new_task() -> Task {
        Task {
            task_arn: Some("arn:aws:ecs:us-east-1:000000000000:task/c/0123".into()),
            last_status: Some("PROVISIONING".into()),
            desired_status: Some("RUNNING".into()),
            version: 1,
            ..Task::default()
        }
    }

    #[test]
    fn a_task_that_runs_and_exits_goes_through_every_status_with_its_timestamps() {
        let mut task = new_task();
        let steps = [
            (TaskEvent::Provisioned, "PENDING"),
            (TaskEvent::PullStarted, "PENDING"),
            (TaskEvent::PullStopped, "PENDING"),
            (TaskEvent::Activating, "ACTIVATING"),
            (TaskEvent::Started, "RUNNING"),
            (
                TaskEvent::StopRequested {
                    code: stop_code::ESSENTIAL_CONTAINER_EXITED.into(),
                    reason: "Essential container in task exited".into(),
                },
                "RUNNING",
            ),
            (TaskEvent::Deactivating, "DEACTIVATING"),
            (TaskEvent::Stopping, "STOPPING"),
            (TaskEvent::ExecutionStopped, "DEPROVISIONING"),
            (TaskEvent::Deprovisioned, "STOPPED"),
        ];
        for (i, (event, status)) in steps.iter().enumerate() {
            assert!(apply(&mut task, event, at(100 + i as u64, 250)).unwrap());
            assert_eq!(task.last_status.as_deref(), Some(*status), "{event:?}");
        }
        assert_eq!(task.version, 1 + steps.len() as i64);
        assert_eq!(task.pull_started_at, Some(101.25));
        assert_eq!(task.pull_stopped_at, Some(102.25));
        assert_eq!(task.started_at, Some(104.25));
        assert_eq!(task.stopping_at, Some(107.25));
        assert_eq!(task.execution_stopped_at, Some(108.25));
        assert_eq!(task.stopped_at, Some(109.25));
        assert_eq!(task.desired_status.as_deref(), Some("STOPPED"));
        assert_eq!(task.stop_code.as_deref(), Some("EssentialContainerExited"));
        assert_eq!(
            task.stopped_reason.as_deref(),
            Some("Essential container in task exited")
        );
        assert_eq!(task.connectivity.as_deref(), Some("CONNECTED"));
    }

    #[test]
    fn the_first_stop_request_wins() {
        let mut task = new_task();
        assert!(apply(&mut task, &stop(), at(1, 0)).unwrap());
        let version = task.version;
        let second = TaskEvent::StopRequested {
            code: stop_code::SERVICE_SCHEDULER_INITIATED.into(),
            reason: "other".into(),
        };
        assert!(!apply(&mut task, &second, at(2, 0)).unwrap());
        assert_eq!(task.version, version);
        assert_eq!(task.stop_code.as_deref(), Some("UserInitiated"));
        assert_eq!(task.stopped_reason.as_deref(), Some("Task stopped by user"));
    }

    #[test]
    fn deactivating_needs_a_stop_request() {
        let mut task = new_task();
        task.last_status = Some("RUNNING".into());
        let error = apply(&mut task, &TaskEvent::Deactivating, at(1, 0)).unwrap_err();
        assert_eq!(error.from, Some(Running));
        assert_eq!(task.last_status.as_deref(), Some("RUNNING"));
    }

    #[test]
    fn a_failed_start_has_no_started_at() {
        let mut task = new_task();
        apply(&mut task, &TaskEvent::Provisioned, at(1, 0)).unwrap();
        apply(&mut task, &failed(), at(2, 0)).unwrap();
        apply(&mut task, &TaskEvent::Deprovisioned, at(3, 0)).unwrap();
        assert_eq!(task.last_status.as_deref(), Some("STOPPED"));
        assert_eq!(task.stop_code.as_deref(), Some("TaskFailedToStart"));
        assert_eq!(task.started_at, None);
        assert_eq!(task.stopped_at, Some(3.0));
    }

    #[test]
    fn an_abandoned_task_keeps_an_earlier_stop_reason() {
        let mut task = new_task();
        task.last_status = Some("RUNNING".into());
        apply(&mut task, &stop(), at(1, 0)).unwrap();
        let abandoned = TaskEvent::Abandoned {
            reason: "restart".into(),
        };
        apply(&mut task, &abandoned, at(2, 0)).unwrap();
        assert_eq!(task.stop_code.as_deref(), Some("UserInitiated"));
        let mut fresh = new_task();
        apply(&mut fresh, &abandoned, at(2, 0)).unwrap();
        assert_eq!(fresh.stop_code.as_deref(), Some("TerminationNotice"));
        assert_eq!(fresh.stopped_reason.as_deref(), Some("restart"));
        assert_eq!(fresh.last_status.as_deref(), Some("STOPPED"));
    }

    #[test]
    fn statuses_round_trip_their_names() {
        for status in [
            Provisioning,
            Pending,
            Activating,
            Running,
            Deactivating,
            Stopping,
            Deprovisioning,
            Stopped,
        ] {
            assert_eq!(TaskStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(TaskStatus::parse("DELETED"), None);
    }

    fn any_event() -> impl proptest::strategy::Strategy<Value = TaskEvent> {
        use proptest::prelude::*;
        prop_oneof![
            Just(TaskEvent::Provisioned),
            Just(TaskEvent::PullStarted),
            Just(TaskEvent::PullStopped),
            Just(TaskEvent::Activating),
            Just(TaskEvent::Started),
            Just(stop()),
            Just(TaskEvent::Deactivating),
            Just(TaskEvent::Stopping),
            Just(TaskEvent::ExecutionStopped),
            Just(failed()),
            Just(TaskEvent::Deprovisioned),
            Just(TaskEvent::Abandoned {
                reason: "restart".into()
            }),
        ]
    }

    proptest::proptest! {
        /// Whatever a (buggy) supervisor sends, a task never goes back, a refused event changes
        /// nothing, and a STOPPED task always says why it stopped and when.
        #[test]
        fn any_event_sequence_keeps_the_lifecycle_consistent(
            events in proptest::collection::vec(any_event(), 0..40)
        ) {
            let mut task = new_task();
            let mut status = Provisioning;
            for (i, event) in events.iter().enumerate() {
                let before = task.clone();
                match apply(&mut task, event, at(10 + i as u64, 0)) {
                    Ok(true) => {
                        let now = TaskStatus::parse(task.last_status.as_deref().unwrap()).unwrap();
                        proptest::prop_assert!(now >= status, "{status:?} -> {now:?}");
                        proptest::prop_assert_eq!(task.version, before.version + 1);
                        status = now;
                    }
                    Ok(false) | Err(_) => proptest::prop_assert_eq!(&task, &before),
                }
            }
            if status == Stopped {
                proptest::prop_assert_eq!(task.desired_status.as_deref(), Some("STOPPED"));
                proptest::prop_assert!(task.stop_code.is_some());
                proptest::prop_assert!(task.stopped_reason.is_some());
                proptest::prop_assert!(task.stopped_at.is_some());
                proptest::prop_assert!(task.execution_stopped_at <= task.stopped_at);
            }
            if status >= Deactivating {
                proptest::prop_assert_eq!(task.desired_status.as_deref(), Some("STOPPED"));
            }
            if task.started_at.is_some() {
                proptest::prop_assert!(task.pull_stopped_at <= task.started_at);
            }
        }
    }
}
