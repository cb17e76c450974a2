//! Exit codes: one per way a command can end, documented in the README.

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// The command did what it was asked.
    Success,
    /// An unexpected failure (AWS unreachable, I/O, …).
    Failure,
    /// Bad arguments or configuration.
    Usage,
    /// A command run as a task: its exit code is ours.
    External(u8),
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        match status {
            ExitStatus::Success => ExitCode::SUCCESS,
            ExitStatus::Failure => ExitCode::from(1),
            ExitStatus::Usage => ExitCode::from(2),
            ExitStatus::External(code) => ExitCode::from(code),
        }
    }
}
