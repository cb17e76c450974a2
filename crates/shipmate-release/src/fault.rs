//! What can go wrong executing a command, as plain data: the driver turns SDK errors and
//! impossible answers into a [`Fault`]; the release logic decides what each means.

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

/// A command that could not be executed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The answer cannot be right (a required member missing, an empty list where ECS always
    /// answers with one item): a fault of the endpoint or of shipmate, never of the user.
    #[error("{operation} gave an answer shipmate cannot use: {detail}")]
    Unexpected {
        operation: &'static str,
        detail: String,
    },
}

impl Fault {
    pub fn unexpected(operation: &'static str, detail: impl Into<String>) -> Fault {
        Fault::Unexpected {
            operation,
            detail: detail.into(),
        }
    }

    /// The AWS error code, when the service answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Fault::Aws(error) => error.code.as_deref(),
            Fault::Unexpected { .. } => None,
        }
    }
}
