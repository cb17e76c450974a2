//! What a one-off task (a migration, `shipmate run`, a post-deploy command) looks like to the
//! release, and the gate: did every essential container exit 0? The AWS adapter converts
//! DescribeTasks answers into [`TaskView`]; everything here is pure.

use serde::Serialize;

/// One container of a task, as far as the gate is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ContainerView {
    pub name: String,
    pub essential: bool,
    pub last_status: Option<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
}

/// A task, from DescribeTasks/RunTask.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TaskView {
    pub task_arn: String,
    pub last_status: String,
    pub desired_status: Option<String>,
    pub started_by: Option<String>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    /// Epoch milliseconds.
    pub created_at: Option<i64>,
    pub started_at: Option<i64>,
    pub stopped_at: Option<i64>,
    pub containers: Vec<ContainerView>,
}

impl TaskView {
    pub fn is_stopped(&self) -> bool {
        self.last_status == "STOPPED"
    }

    /// The task id: the last path segment of its ARN.
    pub fn task_id(&self) -> &str {
        task_id(&self.task_arn)
    }
}

pub fn task_id(task_arn: &str) -> &str {
    task_arn.rsplit('/').next().unwrap_or(task_arn)
}

/// Where a task is, for the poll loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskProgress {
    /// PROVISIONING, PENDING, ACTIVATING: not yet running.
    Starting,
    Running,
    /// RUNNING→STOPPED on its way down.
    Stopping,
    Finished(TaskOutcome),
}

/// How a stopped task ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum TaskOutcome {
    /// Every essential container exited 0.
    Succeeded,
    /// A container never started (or the task never ran): no exit code to pass on.
    FailedToStart { cause: FailureCause, reason: String },
    /// An essential container exited non-zero.
    Exited {
        container: String,
        exit_code: i32,
        cause: FailureCause,
        reason: String,
    },
}

impl TaskOutcome {
    pub fn succeeded(&self) -> bool {
        matches!(self, TaskOutcome::Succeeded)
    }
}

/// A classification of the reason, so that the CLI can print a hint for the common ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCause {
    /// `CannotPullContainerError`: no route to the registry, or the image does not exist.
    CannotPullImage,
    /// `ResourceInitializationError: failed to validate logger args` (log group missing).
    MissingLogGroup,
    /// `OutOfMemoryError` or exit 137 with the kernel's reason.
    OutOfMemory,
    /// `ResourceInitializationError` other than the log group (secrets, registry auth, ENI).
    ResourceInitialization,
    /// `CannotStartContainerError`: e.g. the command does not exist in the image.
    CannotStartContainer,
    /// Stopped by someone (StopTask), not by its own exit.
    StoppedByUser,
    /// The command itself failed.
    CommandFailed,
    Other,
}

/// Classifies the free-text reasons ECS puts on tasks and containers.
pub fn classify(reasons: &[&str], stop_code: Option<&str>, exit_code: Option<i32>) -> FailureCause {
    let any = |needle: &str| reasons.iter().any(|reason| reason.contains(needle));
    if any("CannotPullContainerError") {
        FailureCause::CannotPullImage
    } else if any("OutOfMemoryError") || any("OutOfMemory") {
        FailureCause::OutOfMemory
    } else if any("ResourceInitializationError") && (any("logger") || any("log group")) {
        FailureCause::MissingLogGroup
    } else if any("ResourceInitializationError") {
        FailureCause::ResourceInitialization
    } else if any("CannotStartContainerError") {
        FailureCause::CannotStartContainer
    } else if stop_code == Some("UserInitiated") {
        FailureCause::StoppedByUser
    } else if exit_code.is_some() {
        FailureCause::CommandFailed
    } else {
        FailureCause::Other
    }
}

/// The gate. Sidecars (non-essential containers) do not count, as in ECS itself.
pub fn assess_task(task: &TaskView) -> TaskProgress {
    match task.last_status.as_str() {
        "STOPPED" => TaskProgress::Finished(task_outcome(task)),
        "RUNNING" => TaskProgress::Running,
        "DEACTIVATING" | "STOPPING" | "DEPROVISIONING" | "DELETED" => TaskProgress::Stopping,
        _ => TaskProgress::Starting,
    }
}

/// The gate on one container: a one-off command's own exit code decides, whatever the task's
/// other containers (sidecars, a second app container of the same image) do when it stops.
/// `None`: every essential container, as [`assess_task`].
pub fn assess_task_for(task: &TaskView, container: Option<&str>) -> TaskProgress {
    let Some(name) = container else {
        return assess_task(task);
    };
    match assess_task(task) {
        TaskProgress::Finished(_) => {
            let mut only = task.clone();
            only.containers = task
                .containers
                .iter()
                .filter(|c| c.name == name)
                .cloned()
                .map(|c| ContainerView {
                    essential: true,
                    ..c
                })
                .collect();
            TaskProgress::Finished(task_outcome(&only))
        }
        progress => progress,
    }
}

fn task_outcome(task: &TaskView) -> TaskOutcome {
    let stopped_reason = task.stopped_reason.as_deref().unwrap_or("");
    let essential: Vec<&ContainerView> = task.containers.iter().filter(|c| c.essential).collect();
    let mut reasons: Vec<&str> = vec![stopped_reason];
    reasons.extend(task.containers.iter().filter_map(|c| c.reason.as_deref()));
    let describe = |container: &ContainerView| {
        let mut parts = Vec::new();
        if let Some(reason) = container.reason.as_deref().filter(|r| !r.is_empty()) {
            parts.push(reason.to_owned());
        }
        if !stopped_reason.is_empty() && !parts.iter().any(|p| p == stopped_reason) {
            parts.push(stopped_reason.to_owned());
        }
        parts.join("; ")
    };
    // A failed start first: its reason explains any missing exit code.
    let never_started = task.stop_code.as_deref() == Some("TaskFailedToStart")
        || essential.is_empty()
        || essential.iter().any(|c| c.exit_code.is_none());
    if never_started {
        let reason = essential
            .iter()
            .find(|c| c.exit_code.is_none())
            .map(|c| describe(c))
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| stopped_reason.to_owned());
        let cause = classify(&reasons, task.stop_code.as_deref(), None);
        // Killed before it ran but after we asked: still a failed start, said as such.
        return TaskOutcome::FailedToStart { cause, reason };
    }
    match essential.iter().find(|c| c.exit_code != Some(0)) {
        None => TaskOutcome::Succeeded,
        Some(container) => {
            let exit_code = container.exit_code.unwrap_or(-1);
            let mut cause = classify(&reasons, task.stop_code.as_deref(), Some(exit_code));
            if cause == FailureCause::CommandFailed && exit_code == 137 && any_oom(task) {
                cause = FailureCause::OutOfMemory;
            }
            TaskOutcome::Exited {
                container: container.name.clone(),
                exit_code,
                cause,
                reason: describe(container),
            }
        }
    }
}

/// The order ECS moves a task through.
const LIFECYCLE: [&str; 8] = [
    "PROVISIONING",
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
];

fn rank(status: &str) -> Option<usize> {
    LIFECYCLE.iter().position(|s| *s == status)
}

/// The statuses to show when a task seen last in `previous` is now `task`: its new status, and
/// RUNNING before it when the task ran between two polls (it has a `startedAt`) and RUNNING was
/// never shown, so a task that ran never reads PROVISIONING → STOPPED.
pub fn status_steps(previous: &str, task: &TaskView) -> Vec<String> {
    if task.last_status == previous {
        return Vec::new();
    }
    let running = rank("RUNNING");
    let mut steps = Vec::new();
    let shown_running = rank(previous) >= running;
    let now_past_running = rank(&task.last_status) > running;
    if task.started_at.is_some() && !shown_running && now_past_running {
        steps.push("RUNNING".to_owned());
    }
    steps.push(task.last_status.clone());
    steps
}

/// Whether a RunTask answer is ECS replaying an earlier request with the same client token
/// rather than a task it just created: a replay of a stopped task is trimmed to its ARN and
/// statuses, and any replayed task was created before the call.
pub fn is_replay(task: &TaskView, called_at_ms: i64) -> bool {
    match task.created_at {
        None => true,
        Some(created) => created < called_at_ms - 2_000,
    }
}

/// One line on why a stopped task stopped, for summaries of failing service tasks.
pub fn stop_summary(task: &TaskView) -> String {
    match task_outcome(task) {
        TaskOutcome::Succeeded => {
            let reason = task.stopped_reason.as_deref().unwrap_or("stopped");
            format!("{reason} (exit 0)")
        }
        TaskOutcome::FailedToStart { reason, .. } => {
            if reason.is_empty() {
                "failed to start".to_owned()
            } else {
                reason
            }
        }
        TaskOutcome::Exited {
            exit_code, reason, ..
        } => {
            let reason = if reason.is_empty() {
                "Essential container in task exited".to_owned()
            } else {
                reason
            };
            format!("{reason} (exit {exit_code})")
        }
    }
}

fn any_oom(task: &TaskView) -> bool {
    task.containers
        .iter()
        .filter_map(|c| c.reason.as_deref())
        .any(|r| r.to_ascii_lowercase().contains("memory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(
        name: &str,
        essential: bool,
        exit: Option<i32>,
        reason: Option<&str>,
    ) -> ContainerView {
        ContainerView {
            name: name.to_owned(),
            essential,
            last_status: Some("STOPPED".to_owned()),
            exit_code: exit,
            reason: reason.map(str::to_owned),
        }
    }

    fn stopped(stop_code: &str, reason: &str, containers: Vec<ContainerView>) -> TaskView {
        TaskView {
            task_arn: "arn:aws:ecs:us-east-1:000000000000:task/c/abc".to_owned(),
            last_status: "STOPPED".to_owned(),
            stop_code: Some(stop_code.to_owned()),
            stopped_reason: Some(reason.to_owned()),
            containers,
            ..TaskView::default()
        }
    }

    #[test]
    fn progress_by_last_status() {
        for (status, expected) in [
            ("PROVISIONING", TaskProgress::Starting),
            ("PENDING", TaskProgress::Starting),
            ("ACTIVATING", TaskProgress::Starting),
            ("RUNNING", TaskProgress::Running),
            ("DEACTIVATING", TaskProgress::Stopping),
            ("STOPPING", TaskProgress::Stopping),
            ("DEPROVISIONING", TaskProgress::Stopping),
        ] {
            let task = TaskView {
                last_status: status.to_owned(),
                ..TaskView::default()
            };
            assert_eq!(assess_task(&task), expected, "for {status}");
        }
    }

    #[test]
    fn status_steps_show_running_when_it_was_reached() {
        let task = |status: &str, started: bool| TaskView {
            last_status: status.to_owned(),
            started_at: started.then_some(5),
            ..TaskView::default()
        };
        let cases: Vec<(&str, TaskView, Vec<&str>)> = vec![
            ("", task("PROVISIONING", false), vec!["PROVISIONING"]),
            ("PROVISIONING", task("PROVISIONING", false), vec![]),
            ("PROVISIONING", task("RUNNING", true), vec!["RUNNING"]),
            // It ran and stopped between two polls.
            (
                "PROVISIONING",
                task("STOPPED", true),
                vec!["RUNNING", "STOPPED"],
            ),
            (
                "PENDING",
                task("DEACTIVATING", true),
                vec!["RUNNING", "DEACTIVATING"],
            ),
            ("RUNNING", task("STOPPED", true), vec!["STOPPED"]),
            ("DEACTIVATING", task("STOPPED", true), vec!["STOPPED"]),
            // Never ran (an image that cannot be pulled): no RUNNING to show.
            ("PENDING", task("STOPPED", false), vec!["STOPPED"]),
        ];
        for (previous, task, expected) in cases {
            assert_eq!(
                status_steps(previous, &task),
                expected,
                "{previous} -> {task:?}"
            );
        }
    }

    #[test]
    fn replays_are_recognised() {
        let created = |at: Option<i64>| TaskView {
            created_at: at,
            ..TaskView::default()
        };
        assert!(is_replay(&created(None), 10_000), "trimmed replay");
        assert!(is_replay(&created(Some(1_000)), 10_000));
        assert!(!is_replay(&created(Some(9_500)), 10_000));
    }

    #[test]
    fn stop_summaries() {
        let exited = stopped(
            "EssentialContainerExited",
            "Essential container in task exited",
            vec![container("app", true, Some(1), None)],
        );
        assert_eq!(
            stop_summary(&exited),
            "Essential container in task exited (exit 1)"
        );
        let pull = stopped(
            "TaskFailedToStart",
            "CannotPullContainerError: not found",
            vec![container(
                "app",
                true,
                None,
                Some("CannotPullContainerError: not found"),
            )],
        );
        assert_eq!(stop_summary(&pull), "CannotPullContainerError: not found");
    }

    #[test]
    fn the_gate_of_a_command_is_its_own_container() {
        // The migration ran in `web`; `celery` (same image, essential) was stopped with it.
        let task = stopped(
            "EssentialContainerExited",
            "Essential container in task exited",
            vec![
                container("web", true, Some(0), None),
                container("celery", true, Some(143), None),
            ],
        );
        assert!(matches!(
            assess_task(&task),
            TaskProgress::Finished(TaskOutcome::Exited { exit_code: 143, .. })
        ));
        assert_eq!(
            assess_task_for(&task, Some("web")),
            TaskProgress::Finished(TaskOutcome::Succeeded)
        );
        let failed = stopped(
            "EssentialContainerExited",
            "Essential container in task exited",
            vec![
                container("web", true, Some(3), None),
                container("proxy", false, Some(0), None),
            ],
        );
        assert!(matches!(
            assess_task_for(&failed, Some("web")),
            TaskProgress::Finished(TaskOutcome::Exited { exit_code: 3, .. })
        ));
        let running = TaskView {
            last_status: "RUNNING".to_owned(),
            ..TaskView::default()
        };
        assert_eq!(
            assess_task_for(&running, Some("web")),
            TaskProgress::Running
        );
    }

    #[test]
    fn gate_table() {
        let exited = "Essential container in task exited";
        let cases: Vec<(TaskView, TaskOutcome)> = vec![
            (
                stopped("EssentialContainerExited", exited, vec![container("app", true, Some(0), None)]),
                TaskOutcome::Succeeded,
            ),
            (
                // A failing sidecar does not fail the gate.
                stopped(
                    "EssentialContainerExited",
                    exited,
                    vec![container("app", true, Some(0), None), container("xray", false, Some(1), None)],
                ),
                TaskOutcome::Succeeded,
            ),
            (
                stopped("EssentialContainerExited", exited, vec![container("app", true, Some(5), None)]),
                TaskOutcome::Exited {
                    container: "app".to_owned(),
                    exit_code: 5,
                    cause: FailureCause::CommandFailed,
                    reason: exited.to_owned(),
                },
            ),
            (
                stopped(
                    "EssentialContainerExited",
                    "OutOfMemoryError: Container killed due to memory usage",
                    vec![container("app", true, Some(137), Some("OutOfMemoryError: Container killed due to memory usage"))],
                ),
                TaskOutcome::Exited {
                    container: "app".to_owned(),
                    exit_code: 137,
                    cause: FailureCause::OutOfMemory,
                    reason: "OutOfMemoryError: Container killed due to memory usage".to_owned(),
                },
            ),
            (
                stopped(
                    "TaskFailedToStart",
                    "CannotPullContainerError: pull image manifest has been retried 5 time(s)",
                    vec![container("app", true, None, Some("CannotPullContainerError: pull image manifest has been retried 5 time(s)"))],
                ),
                TaskOutcome::FailedToStart {
                    cause: FailureCause::CannotPullImage,
                    reason: "CannotPullContainerError: pull image manifest has been retried 5 time(s)".to_owned(),
                },
            ),
            (
                stopped(
                    "TaskFailedToStart",
                    "ResourceInitializationError: failed to validate logger args: The specified log group does not exist.",
                    vec![container("app", true, None, None)],
                ),
                TaskOutcome::FailedToStart {
                    cause: FailureCause::MissingLogGroup,
                    reason: "ResourceInitializationError: failed to validate logger args: The specified log group does not exist.".to_owned(),
                },
            ),
            (
                stopped("UserInitiated", "Task stopped by user", vec![container("app", true, Some(143), None)]),
                TaskOutcome::Exited {
                    container: "app".to_owned(),
                    exit_code: 143,
                    cause: FailureCause::StoppedByUser,
                    reason: "Task stopped by user".to_owned(),
                },
            ),
            (
                // No essential container reported at all: never a success.
                stopped("EssentialContainerExited", exited, vec![]),
                TaskOutcome::FailedToStart {
                    cause: FailureCause::Other,
                    reason: exited.to_owned(),
                },
            ),
        ];
        for (task, expected) in cases {
            assert_eq!(
                assess_task(&task),
                TaskProgress::Finished(expected.clone()),
                "for {task:?}"
            );
        }
    }
}
