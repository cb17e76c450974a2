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
    /// A preset's contract phase: the migrations held back until the deployment completed.
    Contract,
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
            Phase::Contract => "contract",
            Phase::PostDeploy => "post-deploy",
            Phase::Run => "run",
        }
    }
}

/// Which one-off task an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskRole {
    Migrate,
    /// A preset's contract phase.
    Contract,
    PostDeploy,
    Run,
}

impl TaskRole {
    /// The prefix of its log lines.
    pub fn label(self) -> &'static str {
        match self {
            TaskRole::Migrate => "migrate",
            TaskRole::Contract => "contract",
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
        services: Vec<String>,
        image: String,
    },
    /// This run carries on an interrupted run of the same release (its open ledger entry).
    ReleaseResumed {
        entry: String,
        state: String,
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
        service: String,
        task_definition: String,
        previous_task_definition: String,
        /// The containers that get the image.
        containers: Vec<String>,
        /// Empty when a resumed release reuses what its interrupted run registered.
        image_from: String,
        reused: bool,
    },
    /// The service already runs (and completed) this revision: no rollout.
    AlreadyLive {
        service: String,
        task_definition: String,
    },
    /// Another release holds the lock (or queues ahead): waiting for it.
    LockWaiting {
        holder: Option<crate::error::Holder>,
        entry: String,
        /// Open entries ahead of ours.
        queue: u32,
        waited_ms: u64,
    },
    LockAcquired {
        entry: String,
        waited_ms: u64,
    },
    /// A release ahead stopped heartbeating and runs no migration: its entry was closed.
    LockBroken {
        holder: Option<crate::error::Holder>,
        entry: String,
        silent_ms: u64,
    },
    /// Our entry was closed by another release while we stalled; taking the lock again.
    LockLost {
        entry: String,
    },
    /// This release's migration already passed (an earlier run of it): not run again.
    MigrationSkipped {
        task_arn: String,
    },
    /// The desired task definition changed while the release waited or migrated; the release
    /// is rebased on it.
    ServiceChanged {
        service: String,
        was: String,
        now: String,
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
    /// A previous attempt of this release failed; this run starts attempt `attempt` (0-based).
    PreviousAttemptFailed {
        task_arn: String,
        attempt: u32,
    },
    /// An interrupted run's migration task is no longer known to ECS (stopped over an hour
    /// ago): its result is unknown, so the migration runs again.
    PreviousAttemptUnknown {
        task_arn: String,
    },
    /// An earlier run of this release started its migration with other parameters and it still
    /// runs: waiting for it before starting ours.
    WaitingForEarlierAttempt {
        task_arn: String,
    },
    Retrying {
        operation: String,
        error: String,
        attempt: u32,
        max_attempts: u32,
    },
    ServiceUpdated {
        service: String,
        task_definition: String,
        deployment_id: Option<String>,
    },
    ServiceEvent {
        message: String,
    },
    RolloutProgress {
        service: String,
        running: i32,
        desired: i32,
        pending: i32,
        failed_tasks: i32,
    },
    /// New tasks of the rollout stopped; `limit` is where the release fails (no circuit breaker).
    NewTasksStopped {
        service: String,
        summary: String,
        total: u32,
        limit: Option<u32>,
    },
    /// ECS's service-deployment record moved to another lifecycle stage or status.
    DeploymentStage {
        service: String,
        status: String,
        stage: Option<String>,
    },
    /// The deployment waits at a PAUSE hook (`ours`: the one this release added).
    DeploymentPaused {
        service: String,
        stage: Option<String>,
        hook_id: String,
        /// Epoch milliseconds.
        expires_at: Option<i64>,
        ours: bool,
    },
    /// shipmate continued (CONTINUE) or rolled back (ROLLBACK) its paused deployment.
    DeploymentContinued {
        service: String,
        action: String,
    },
    /// DescribeServiceDeployments is not answered (denied, or an endpoint without it): the
    /// rollout is followed through DescribeServices alone.
    RecordsUnavailable {
        reason: String,
    },
    /// deploy returned at `deployed`: `shipmate finish` does what is `pending` (`deployment`,
    /// `post_deploy`).
    FinishPending {
        pending: Vec<String>,
    },
    /// `shipmate finish` found nothing left to do.
    NothingToFinish {
        release_id: String,
        reason: String,
    },
    /// A preset's migration task reported its plan: what it applied and what it held back for
    /// the contract phase.
    MigrationPlanned {
        role: TaskRole,
        verdict: String,
        applied: Vec<String>,
        held_back: Vec<String>,
        /// Operations reported unsafe or unknown, `migration: text (class)`.
        flagged: Vec<String>,
    },
    /// `rollback --dry-run`: where the rollback would go.
    RollbackPlanned {
        service: String,
        from: String,
        to: String,
    },
    RollbackStarted {
        service: String,
        to: String,
        reason: String,
    },
    Cancelled {
        task_arn: String,
        action: OnCancel,
    },
}
