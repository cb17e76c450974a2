//! Typed errors of the release, each carrying the names a human needs to act on it (cluster,
//! service, task ARN, container). The CLI maps each to an exit code and, for the common ECS
//! failures, a hint.

use std::time::Duration;

use shipmate_release::config::OnCancel;
use shipmate_release::duration::format_duration;
use shipmate_release::event::TaskRole;
use shipmate_release::plan::ContainerError;
use shipmate_release::task::FailureCause;

/// An AWS call that failed after the SDK's retries: operation, what kind of failure, error code
/// and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation}: {}{message}", code.as_ref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct AwsError {
    pub operation: &'static str,
    pub kind: AwsErrorKind,
    pub code: Option<String>,
    pub message: String,
}

/// Why a call failed, as far as the CLI's hints care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// The service answered with an error (`code` says which).
    Service,
    /// No credentials in the standard chain.
    Credentials,
    /// No region configured.
    Region,
    /// The endpoint could not be reached.
    Connection,
    /// The call timed out.
    Timeout,
    /// Anything else (an unreadable response, a request that could not be built).
    Other,
}

impl AwsError {
    pub(crate) fn from_sdk<E, R>(
        operation: &'static str,
        error: &aws_sdk_ecs::error::SdkError<E, R>,
    ) -> AwsError
    where
        E: aws_sdk_ecs::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
        let code = error.code().map(str::to_owned);
        let chain = error_chain(error);
        let kind = match error {
            _ if code.is_some() => AwsErrorKind::Service,
            SdkError::ServiceError(_) => AwsErrorKind::Service,
            SdkError::TimeoutError(_) => AwsErrorKind::Timeout,
            SdkError::DispatchFailure(failure) if failure.is_timeout() => AwsErrorKind::Timeout,
            SdkError::DispatchFailure(failure) if failure.is_io() => AwsErrorKind::Connection,
            // The SDK reports these two as dispatch failures without a type of their own.
            _ if chain.contains("Missing Region") => AwsErrorKind::Region,
            _ if chain.contains("no credentials") || chain.contains("credential provider") => {
                AwsErrorKind::Credentials
            }
            _ => AwsErrorKind::Other,
        };
        let message = match error.message() {
            Some(message) => message.to_owned(),
            None => chain,
        };
        AwsError {
            operation,
            kind,
            code,
            message,
        }
    }
}

/// The error and its causes as one line of their messages, without the repetition the SDK's
/// nested errors carry (`dispatch failure: other: …`) and without Debug output.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        let text = current.to_string();
        let redundant = text.is_empty()
            || matches!(text.as_str(), "other" | "io error" | "dispatch failure")
            || parts.iter().any(|part| part.contains(&text));
        if !redundant {
            parts.push(text);
        }
        next = current.source();
    }
    if parts.is_empty() {
        return "unknown error".to_owned();
    }
    parts.join(": ")
}

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("in cluster `{cluster}`: {source}")]
    Aws {
        cluster: String,
        #[source]
        source: AwsError,
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
    #[error("the deployment of service `{service}` failed: {reason}{}", rolled_back_to.as_ref().map(|td| format!("; ECS rolled the service back to {td}")).unwrap_or_default())]
    DeploymentFailed {
        service: String,
        reason: String,
        rolled_back_to: Option<String>,
    },
    #[error(
        "service `{service}` was deployed to {by} by someone else while this release was rolling out"
    )]
    Superseded { service: String, by: String },
    #[error("another release holds the migration lock of service `{service}`: task {holder_task_arn}{} is {holder_status}; gave up after {}", holder_started_by.as_ref().map(|b| format!(" (started by {b})")).unwrap_or_default(), format_duration(*waited))]
    LockTimeout {
        service: String,
        holder_task_arn: String,
        holder_started_by: Option<String>,
        holder_status: String,
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
    pub(crate) fn aws(cluster: &str, source: AwsError) -> ReleaseError {
        ReleaseError::Aws {
            cluster: cluster.to_owned(),
            source,
        }
    }
}
