//! How a release fails, typed, each variant carrying the names a human needs to act on it
//! (cluster, service, task ARN, container, the release that holds the lock), and which exit code
//! each failure is. Rendering (causes, `hint:` lines) is the CLI's.

use std::time::Duration;

use crate::config::OnCancel;
use crate::duration::format_duration;
use crate::event::TaskRole;
use crate::fault::{AwsError, Fault};
use crate::plan::ContainerError;
use crate::task::FailureCause;

/// The exit codes of the release commands (docs/exit-codes.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitCode {
    /// 0
    Succeeded,
    /// 1: AWS failed after retries, or an answer shipmate cannot use (a fault, never the user's).
    Failed,
    /// 2: bad input or configuration.
    BadInput,
    /// 3
    MigrationFailedToStart,
    /// 4
    MigrationFailed,
    /// 5
    TimedOut,
    /// 6
    DeploymentFailed,
    /// 7
    LockNotAcquired,
    /// 8: a newer release (or another deployment) went live first.
    Superseded,
    /// 9: a preset refused the migration before any schema change (it would break the code
    /// still serving).
    MigrationRefused,
    /// 10: the contract phase failed after the deployment completed; the new code runs.
    ContractFailed,
    /// 130
    Interrupted,
}

impl ExitCode {
    pub fn code(self) -> u8 {
        match self {
            ExitCode::Succeeded => 0,
            ExitCode::Failed => 1,
            ExitCode::BadInput => 2,
            ExitCode::MigrationFailedToStart => 3,
            ExitCode::MigrationFailed => 4,
            ExitCode::TimedOut => 5,
            ExitCode::DeploymentFailed => 6,
            ExitCode::LockNotAcquired => 7,
            ExitCode::Superseded => 8,
            ExitCode::MigrationRefused => 9,
            ExitCode::ContractFailed => 10,
            ExitCode::Interrupted => 130,
        }
    }

    /// The report's `result`.
    pub fn result_name(self) -> &'static str {
        match self {
            ExitCode::Succeeded => "succeeded",
            ExitCode::Failed => "failed",
            ExitCode::BadInput => "bad_input",
            ExitCode::MigrationFailedToStart => "migration_failed_to_start",
            ExitCode::MigrationFailed => "migration_failed",
            ExitCode::TimedOut => "timed_out",
            ExitCode::DeploymentFailed => "deployment_failed",
            ExitCode::LockNotAcquired => "lock_not_acquired",
            ExitCode::Superseded => "superseded",
            ExitCode::MigrationRefused => "migration_refused",
            ExitCode::ContractFailed => "contract_failed",
            ExitCode::Interrupted => "interrupted",
        }
    }
}

/// Who holds (or held) the release lock, for messages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Holder {
    pub release_id: String,
    pub kind: &'static str,
    pub image: Option<String>,
    pub by: String,
    pub state: &'static str,
    pub migration_task: Option<String>,
    /// The ledger entry (task-definition revision ARN).
    pub entry: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "release {} ({}", self.release_id, self.kind)?;
        if let Some(image) = &self.image {
            write!(f, " of {image}")?;
        }
        if !self.by.is_empty() {
            write!(f, " by {}", self.by)?;
        }
        write!(f, ", {})", self.state)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    #[error("in cluster `{cluster}`: {source}")]
    Aws {
        cluster: String,
        #[source]
        source: AwsError,
    },
    /// An answer that cannot be right: a fault of the endpoint or of shipmate.
    #[error("in cluster `{cluster}`: {source}")]
    Unexpected {
        cluster: String,
        #[source]
        source: Fault,
    },
    #[error("service `{service}` not found in cluster `{cluster}`")]
    ServiceNotFound { cluster: String, service: String },
    #[error("service `{service}` in cluster `{cluster}` is {status}, not ACTIVE")]
    ServiceNotActive {
        cluster: String,
        service: String,
        status: String,
    },
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("{0}")]
    Invalid(String),
    /// A preset refused the migration's plan: nothing was applied, the services were not
    /// touched.
    #[error("the migration was refused before any schema change{}: {why}", migration.as_ref().map(|m| format!(" ({m}{})", operation.as_ref().map(|o| format!(", {o}")).unwrap_or_default())).unwrap_or_default())]
    MigrationRefused {
        task_arn: String,
        migration: Option<String>,
        operation: Option<String>,
        why: String,
        hint: Option<String>,
    },
    /// `shipmate rollback` to code older than an applied contract phase, without `--force`.
    #[error(
        "rolling service `{service}` back to {to} would run code older than release {release}, whose contract migrations (drops, renames) are applied; nothing was changed"
    )]
    RollbackPastContract {
        service: String,
        to: String,
        release: String,
    },
    /// The migration task's framed report is missing or incomplete: what it applied cannot be
    /// known, so the release stops before touching the services.
    #[error(
        "the migration task {task_arn} exited without a complete report: {reason}; the services were not touched"
    )]
    PlanReport { task_arn: String, reason: String },
    /// The contract phase (migrations held back until the deployment completed) failed.
    #[error("the contract phase failed: {reason}; the new code keeps running")]
    ContractFailed {
        task_arn: Option<String>,
        reason: String,
    },
    /// A service whose deployments ECS does not make (CODE_DEPLOY, EXTERNAL): UpdateService
    /// would refuse the new revision after the migration ran.
    #[error(
        "service `{service}` in cluster `{cluster}` uses the {controller} deployment controller, whose deployments ECS does not make: shipmate changed nothing and ran no migration"
    )]
    Controller {
        cluster: String,
        service: String,
        controller: String,
    },
    /// The pause-hook gate cannot be used on this service.
    #[error(
        "--gate pause-hook cannot be used on service `{service}`: {reason}; nothing was changed"
    )]
    PauseRefused { service: String, reason: String },
    #[error("no release of service `{service}` before {live} is on record to roll back to")]
    NoRollbackTarget { service: String, live: String },
    #[error("{role} task could not be placed in cluster `{cluster}`: {reason}")]
    Placement {
        role: &'static str,
        cluster: String,
        reason: String,
    },
    #[error("{} task {task_arn} failed to start: {reason}", role.label())]
    TaskFailedToStart {
        role: TaskRole,
        task_arn: String,
        cause: FailureCause,
        reason: String,
    },
    #[error("{} task {task_arn} failed: container `{container}` exited with code {exit_code}{}", role.label(), if reason.is_empty() { String::new() } else { format!(" ({reason})") })]
    TaskExited {
        role: TaskRole,
        task_arn: String,
        container: String,
        exit_code: i32,
        cause: FailureCause,
        reason: String,
    },
    #[error("{} task {task_arn} did not finish within {}{}", role.label(), format_duration(*after), if *stopped { "; it was stopped" } else { "" })]
    TaskTimeout {
        role: TaskRole,
        task_arn: String,
        after: Duration,
        stopped: bool,
    },
    #[error("the rollout of service `{service}` to {task_definition} did not complete within {}{}", format_duration(*after), rolled_back.as_ref().map(|td| format!("; rolled back to {td}")).unwrap_or_default())]
    DeployTimeout {
        service: String,
        task_definition: String,
        after: Duration,
        rolled_back: Option<String>,
    },
    #[error("the deployment of service `{service}` failed: {reason}{}", rolled_back_to.as_ref().map(|td| format!("; the service was rolled back to {td}")).unwrap_or_default())]
    DeploymentFailed {
        service: String,
        reason: String,
        rolled_back_to: Option<String>,
        /// No circuit breaker and no rollback: ECS keeps trying to start the new tasks.
        still_trying: bool,
    },
    #[error(
        "service `{service}` was deployed to {by} by someone else while this release was rolling out"
    )]
    Replaced { service: String, by: String },
    #[error("superseded by release {by_release}{} which went live after this release took the lock; this release stops before touching the service", by_image.as_ref().map(|i| format!(" (image {i})")).unwrap_or_default())]
    Superseded {
        service: String,
        by_release: String,
        by_image: Option<String>,
    },
    /// The lock was taken over while a call it guarded was under way (this process stalled
    /// for longer than half the lease inside it).
    #[error("the release lock of service `{service}` was taken over by another release while {action} was under way (shipmate stalled for {}){}", format_duration(*stalled), task_arn.as_ref().map(|t| format!("; stopped migration task {t}")).unwrap_or_default())]
    LockLost {
        service: String,
        action: &'static str,
        stalled: Duration,
        task_arn: Option<String>,
    },
    #[error("{} holds the release lock of `{family}`; gave up after {}", holder.as_ref().map_or_else(|| "another release".to_owned(), ToString::to_string), format_duration(*waited))]
    LockTimeout {
        family: String,
        holder: Option<Box<Holder>>,
        waited: Duration,
    },
    #[error("interrupted during {phase}{}", match (task_arn, action) {
        (Some(task), Some(OnCancel::Stop)) => format!("; stopped task {task}"),
        (Some(task), Some(OnCancel::Leave)) => format!("; task {task} left running"),
        _ => String::new(),
    })]
    Interrupted {
        phase: &'static str,
        task_arn: Option<String>,
        action: Option<OnCancel>,
        /// The service update was already sent: ECS goes on rolling it out.
        service_updating: Option<String>,
    },
}

impl ReleaseError {
    /// The error a failed command becomes.
    pub fn from_fault(cluster: &str, fault: Fault) -> ReleaseError {
        match fault {
            Fault::Aws(source) => ReleaseError::Aws {
                cluster: cluster.to_owned(),
                source,
            },
            unexpected @ Fault::Unexpected { .. } => ReleaseError::Unexpected {
                cluster: cluster.to_owned(),
                source: unexpected,
            },
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            ReleaseError::Aws { .. } | ReleaseError::Unexpected { .. } => ExitCode::Failed,
            ReleaseError::ServiceNotFound { .. }
            | ReleaseError::ServiceNotActive { .. }
            | ReleaseError::Container(_)
            | ReleaseError::Invalid(_)
            | ReleaseError::Controller { .. }
            | ReleaseError::PauseRefused { .. }
            | ReleaseError::RollbackPastContract { .. }
            | ReleaseError::NoRollbackTarget { .. } => ExitCode::BadInput,
            ReleaseError::Placement { .. } | ReleaseError::TaskFailedToStart { .. } => {
                ExitCode::MigrationFailedToStart
            }
            ReleaseError::TaskExited { .. } | ReleaseError::PlanReport { .. } => {
                ExitCode::MigrationFailed
            }
            ReleaseError::MigrationRefused { .. } => ExitCode::MigrationRefused,
            ReleaseError::ContractFailed { .. } => ExitCode::ContractFailed,
            ReleaseError::TaskTimeout { .. } | ReleaseError::DeployTimeout { .. } => {
                ExitCode::TimedOut
            }
            ReleaseError::DeploymentFailed { .. } => ExitCode::DeploymentFailed,
            ReleaseError::LockTimeout { .. } => ExitCode::LockNotAcquired,
            ReleaseError::Superseded { .. }
            | ReleaseError::Replaced { .. }
            | ReleaseError::LockLost { .. } => ExitCode::Superseded,
            ReleaseError::Interrupted { .. } => ExitCode::Interrupted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::AwsErrorKind;

    #[test]
    fn faults_are_failures_never_bad_input() {
        let aws = ReleaseError::from_fault(
            "prod",
            Fault::Aws(AwsError {
                operation: "DescribeTasks",
                kind: AwsErrorKind::Service,
                code: Some("ServerException".to_owned()),
                message: "boom".to_owned(),
            }),
        );
        let impossible = ReleaseError::from_fault(
            "prod",
            Fault::unexpected("DescribeTaskDefinition", "no taskDefinition in the answer"),
        );
        for error in [aws, impossible] {
            assert_eq!(error.exit_code(), ExitCode::Failed, "{error}");
            assert_eq!(error.exit_code().code(), 1);
        }
        assert_eq!(ReleaseError::Invalid("x".to_owned()).exit_code().code(), 2);
    }

    #[test]
    fn every_exit_code_has_its_number() {
        let table = [
            (ExitCode::Succeeded, 0, "succeeded"),
            (ExitCode::Failed, 1, "failed"),
            (ExitCode::BadInput, 2, "bad_input"),
            (
                ExitCode::MigrationFailedToStart,
                3,
                "migration_failed_to_start",
            ),
            (ExitCode::MigrationFailed, 4, "migration_failed"),
            (ExitCode::TimedOut, 5, "timed_out"),
            (ExitCode::DeploymentFailed, 6, "deployment_failed"),
            (ExitCode::LockNotAcquired, 7, "lock_not_acquired"),
            (ExitCode::Superseded, 8, "superseded"),
            (ExitCode::MigrationRefused, 9, "migration_refused"),
            (ExitCode::ContractFailed, 10, "contract_failed"),
            (ExitCode::Interrupted, 130, "interrupted"),
        ];
        for (exit, code, name) in table {
            assert_eq!((exit.code(), exit.result_name()), (code, name));
        }
    }
}
