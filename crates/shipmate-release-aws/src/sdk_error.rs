//! SDK errors as the release's [`AwsError`]: which operation, what kind of failure (the CLI's
//! hints depend on it), the error code and a one-line message without the SDK's Debug dump.

use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use shipmate_release::fault::{AwsError, AwsErrorKind, Fault};

/// The fault behind a failed SDK call.
pub(crate) fn fault<E, R>(operation: &'static str, error: &SdkError<E, R>) -> Fault
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    Fault::Aws(aws_error(operation, error))
}

pub(crate) fn aws_error<E, R>(operation: &'static str, error: &SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
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
