//! Exit codes: one per way a command can end (docs/exit-codes.md, `shipmate deploy --help`).

use std::process::ExitCode;

use shipmate_release::error::{ExitCode as ReleaseExit, ReleaseError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: the command did what it was asked.
    Success,
    /// 1: an unexpected failure (AWS unreachable, access denied, I/O, …).
    Failure,
    /// 2: bad arguments or configuration (including a service or container that does not exist).
    Usage,
    /// 3: the migration (or a one-off task) failed to start: image pull, log group, placement.
    MigrationFailedToStart,
    /// 4: the migration (or the post-deploy command) exited non-zero.
    MigrationFailed,
    /// 5: a timeout expired (migration, rollout).
    TimedOut,
    /// 6: the deployment failed or was rolled back (by ECS's circuit breaker or by shipmate).
    DeploymentFailed,
    /// 7: another release held the release lock until `--lock-timeout`.
    LockNotAcquired,
    /// 8: a newer release went live first (or another deployment replaced this one).
    Superseded,
    /// 9: a migration preset refused the migration before any schema change.
    MigrationRefused,
    /// 10: the contract phase failed; the new code keeps running.
    ContractFailed,
    /// 11: `shipmate doctor` found a check that failed.
    ChecksFailed,
    /// 130: interrupted by SIGINT/SIGTERM.
    Interrupted,
    /// A command run as a task: its exit code is ours.
    External(u8),
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Usage => 2,
            ExitStatus::MigrationFailedToStart => 3,
            ExitStatus::MigrationFailed => 4,
            ExitStatus::TimedOut => 5,
            ExitStatus::DeploymentFailed => 6,
            ExitStatus::LockNotAcquired => 7,
            ExitStatus::Superseded => 8,
            ExitStatus::MigrationRefused => 9,
            ExitStatus::ContractFailed => 10,
            ExitStatus::ChecksFailed => 11,
            ExitStatus::Interrupted => 130,
            ExitStatus::External(code) => code,
        }
    }

    /// The name used for `result` in the JSON report.
    pub fn result_name(self) -> &'static str {
        match self {
            ExitStatus::Success => "succeeded",
            ExitStatus::Failure => "failed",
            ExitStatus::Usage => "bad_input",
            ExitStatus::MigrationFailedToStart => "migration_failed_to_start",
            ExitStatus::MigrationFailed => "migration_failed",
            ExitStatus::TimedOut => "timed_out",
            ExitStatus::DeploymentFailed => "deployment_failed",
            ExitStatus::LockNotAcquired => "lock_not_acquired",
            ExitStatus::Superseded => "superseded",
            ExitStatus::MigrationRefused => "migration_refused",
            ExitStatus::ContractFailed => "contract_failed",
            ExitStatus::ChecksFailed => "checks_failed",
            ExitStatus::Interrupted => "interrupted",
            ExitStatus::External(0) => "succeeded",
            ExitStatus::External(_) => "command_failed",
        }
    }

    /// The exit status for a release that ended with `error` (the release decides which).
    pub(crate) fn of(error: &ReleaseError) -> ExitStatus {
        match error.exit_code() {
            ReleaseExit::Succeeded => ExitStatus::Success,
            ReleaseExit::Failed => ExitStatus::Failure,
            ReleaseExit::BadInput => ExitStatus::Usage,
            ReleaseExit::MigrationFailedToStart => ExitStatus::MigrationFailedToStart,
            ReleaseExit::MigrationFailed => ExitStatus::MigrationFailed,
            ReleaseExit::TimedOut => ExitStatus::TimedOut,
            ReleaseExit::DeploymentFailed => ExitStatus::DeploymentFailed,
            ReleaseExit::LockNotAcquired => ExitStatus::LockNotAcquired,
            ReleaseExit::Superseded => ExitStatus::Superseded,
            ReleaseExit::MigrationRefused => ExitStatus::MigrationRefused,
            ReleaseExit::ContractFailed => ExitStatus::ContractFailed,
            ReleaseExit::Interrupted => ExitStatus::Interrupted,
        }
    }

    /// A task's exit code as ours (negative or above 255 become 1).
    pub(crate) fn external(code: i32) -> ExitStatus {
        ExitStatus::External(u8::try_from(code).unwrap_or(1))
    }
}

/// The table printed in `shipmate deploy --help` (keep in sync with docs/exit-codes.md).
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success
  1    unexpected failure (AWS error after retries, I/O)
  2    bad input or configuration (flags, shipmate.toml, unknown service or container)
  3    the migration failed to start (image pull, log group, placement, secrets)
  4    the migration (or post-deploy command) exited non-zero
  5    timed out (migration, rollout)
  6    the deployment failed or was rolled back
  7    the release lock was not acquired within --lock-timeout
  8    superseded: a newer release went live first (or another deployment replaced this one)
  9    migration refused by the preset before any schema change (it would break the serving code)
  10   the contract phase failed after the deployment completed (the new code keeps running)
  11   shipmate doctor: a check failed (warnings alone exit 0)
  130  interrupted (SIGINT/SIGTERM)";

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        ExitCode::from(status.code())
    }
}
