//! What happens during a release, as data. The AWS driver emits these; the CLI renders them
//! three ways (human progress on stderr, JSON lines on stdout, GitHub annotations), so no part
//! of the release ever prints.

use serde::Serialize;

use crate::config::OnCancel;
use crate::task::TaskOutcome;

/// The phases of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Read the service, register (or reuse) the revision.
    Prepare,
    /// Wait for another release's migration to finish.
    Lock,
    Migrate,
    Deploy,
    Rollback,
    PostDeploy,
    /// `shipmate run`'s task.
    Run,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::Prepare => "prepare",
            Phase::Lock => "lock",
            Phase::Migrate => "migrate",
            Phase::Deploy => "deploy",
            Phase::Rollback => "rollback",
            Phase::PostDeploy => "post-deploy",
            Phase::Run => "run",
        }
    }
}

/// Which one-off task an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskRole {
    Migrate,
    PostDeploy,
    Run,
}

impl TaskRole {
    /// The prefix of its log lines.
    pub fn label(self) -> &'static str {
        match self {
            TaskRole::Migrate => "migrate",
            TaskRole::PostDeploy => "post-deploy",
            TaskRole::Run => "run",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    ReleaseStarted {
        release_id: String,
        cluster: String,
        service: String,
        image: String,
        container: String,
    },
    PhaseStarted {
        phase: Phase,
    },
    PhaseFinished {
        phase: Phase,
        duration_ms: u64,
        ok: bool,
    },
    RevisionReady {
        task_definition: String,
        previous_task_definition: String,
        image_from: String,
        reused: bool,
    },
    /// The release is already live: the service runs this revision, nothing to do.
    AlreadyDeployed {
        task_definition: String,
    },
    LockWaiting {
        holder_task_arn: String,
        holder_started_by: Option<String>,
        holder_status: String,
        waited_ms: u64,
    },
    TaskStarted {
        role: TaskRole,
        task_arn: String,
        /// The task already existed for this release (a retry or re-run): following it.
        attached: bool,
        attempt: u32,
    },
    TaskStatus {
        role: TaskRole,
        task_arn: String,
        last_status: String,
    },
    LogLine {
        role: TaskRole,
        /// Epoch milliseconds.
        timestamp: i64,
        message: String,
    },
    TaskFinished {
        role: TaskRole,
        task_arn: String,
        outcome: TaskOutcome,
        duration_ms: u64,
    },
    /// A previous attempt of this release failed; this run starts the next attempt.
    PreviousAttemptFailed {
        task_arn: String,
        attempt: u32,
    },
    Retrying {
        operation: String,
        error: String,
        attempt: u32,
        max_attempts: u32,
    },
    ServiceUpdated {
        task_definition: String,
        deployment_id: Option<String>,
    },
    ServiceEvent {
        message: String,
    },
    RolloutProgress {
        running: i32,
        desired: i32,
        pending: i32,
        failed_tasks: i32,
    },
    RollbackStarted {
        to: String,
        reason: String,
    },
    Cancelled {
        task_arn: String,
        action: OnCancel,
    },
}
