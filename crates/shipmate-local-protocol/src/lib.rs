//! The AWS JSON 1.1 wire protocol as ECS and CloudWatch Logs speak it, and nothing else.
//!
//! Every request is `POST /` with `X-Amz-Target: <prefix>.<Operation>` and a JSON object body;
//! every error is a non-2xx status with `{"__type": "<Code>", "message": "…"}`. This crate knows
//! those two facts and the two target prefixes; it knows nothing about what the operations do.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// `Content-Type` of every request and response.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// `X-Amz-Target` prefix of Amazon ECS.
pub const ECS_TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";
/// `X-Amz-Target` prefix of CloudWatch Logs.
pub const LOGS_TARGET_PREFIX: &str = "Logs_20140328";

/// Which AWS service a request is addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Service {
    Ecs,
    Logs,
}

impl Service {
    pub fn target_prefix(self) -> &'static str {
        match self {
            Service::Ecs => ECS_TARGET_PREFIX,
            Service::Logs => LOGS_TARGET_PREFIX,
        }
    }

    /// The name AWS uses in ARNs and signing scopes (`ecs`, `logs`).
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::Ecs => "ecs",
            Service::Logs => "logs",
        }
    }
}

/// A parsed `X-Amz-Target` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub service: Service,
    pub operation: String,
}

impl Target {
    /// Parses `AmazonEC2ContainerServiceV20141113.RunTask` or `Logs_20140328.GetLogEvents`.
    pub fn parse(header: &str) -> Result<Target, AwsError> {
        let (prefix, operation) = header.split_once('.').ok_or_else(|| {
            AwsError::unknown_operation(format!("`{header}` is not a valid X-Amz-Target"))
        })?;
        let service = match prefix {
            ECS_TARGET_PREFIX => Service::Ecs,
            LOGS_TARGET_PREFIX => Service::Logs,
            _ => {
                return Err(AwsError::unknown_operation(format!(
                    "unknown service `{prefix}` in X-Amz-Target `{header}`"
                )));
            }
        };
        if operation.is_empty() || !operation.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(AwsError::unknown_operation(format!(
                "`{header}` does not name an operation"
            )));
        }
        Ok(Target {
            service,
            operation: operation.to_owned(),
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.service.target_prefix(), self.operation)
    }
}

/// An error as AWS puts it on the wire: an HTTP status, a bare error code in `__type`, a
/// `message`, and for some codes extra members (e.g. `resourceIds` on ECS `ConflictException`).
#[derive(Debug, Clone, PartialEq)]
pub struct AwsError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl AwsError {
    /// A client (4xx, HTTP 400) error.
    pub fn client(code: impl Into<String>, message: impl Into<String>) -> AwsError {
        AwsError::with_status(400, code, message)
    }

    /// A server fault (HTTP 500), e.g. ECS `ServerException`.
    pub fn server(code: impl Into<String>, message: impl Into<String>) -> AwsError {
        AwsError::with_status(500, code, message)
    }

    pub fn with_status(
        status: u16,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> AwsError {
        AwsError {
            status,
            code: code.into(),
            message: message.into(),
            extra: Default::default(),
        }
    }

    /// Adds a member to the error body beside `__type` and `message`.
    pub fn with_member(mut self, name: &str, value: serde_json::Value) -> AwsError {
        self.extra.insert(name.to_owned(), value);
        self
    }

    /// The body could not be read as the operation's input (bad JSON, wrong member types).
    pub fn serialization(message: impl Into<String>) -> AwsError {
        AwsError::client("SerializationException", message)
    }

    /// An operation or target this endpoint does not know.
    pub fn unknown_operation(message: impl Into<String>) -> AwsError {
        AwsError::client("UnknownOperationException", message)
    }

    /// Rate limiting, as both SDKs classify it (retried as a throttle).
    pub fn throttling() -> AwsError {
        AwsError::client("ThrottlingException", "Rate exceeded")
    }

    /// The JSON body: `{"__type": code, "message": message, ...extra}`.
    pub fn body(&self) -> Vec<u8> {
        let mut object = serde_json::Map::new();
        object.insert("__type".into(), self.code.clone().into());
        object.insert("message".into(), self.message.clone().into());
        for (name, value) in &self.extra {
            object.insert(name.clone(), value.clone());
        }
        serde_json::to_vec(&serde_json::Value::Object(object))
            .expect("a JSON map always serializes")
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AwsError {}

/// Reads an operation's input. An empty body counts as `{}` (the AWS CLI sends one for
/// operations without required members); anything that is not the expected JSON object is a
/// `SerializationException` naming the member and the problem.
pub fn decode_input<T: DeserializeOwned>(body: &[u8]) -> Result<T, AwsError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|error| {
        AwsError::serialization(format!("the request body is not valid JSON: {error}"))
    })?;
    if !value.is_object() {
        return Err(AwsError::serialization(
            "the request body must be a JSON object",
        ));
    }
    serde_json::from_value(value).map_err(|error| AwsError::serialization(error.to_string()))
}

/// Writes an operation's output.
pub fn encode_output<T: Serialize>(output: &T) -> Vec<u8> {
    serde_json::to_vec(output).expect("response types always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_services() {
        let ecs = Target::parse("AmazonEC2ContainerServiceV20141113.RunTask").unwrap();
        assert_eq!(
            (ecs.service, ecs.operation.as_str()),
            (Service::Ecs, "RunTask")
        );
        let logs = Target::parse("Logs_20140328.GetLogEvents").unwrap();
        assert_eq!(
            (logs.service, logs.operation.as_str()),
            (Service::Logs, "GetLogEvents")
        );
    }

    #[test]
    fn rejects_unknown_targets() {
        for header in [
            "",
            "RunTask",
            "DynamoDB_20120810.GetItem",
            "Logs_20140328.",
            "Logs_20140328.a/b",
        ] {
            let error = Target::parse(header).unwrap_err();
            assert_eq!(error.code, "UnknownOperationException", "{header}");
            assert_eq!(error.status, 400);
        }
    }

    #[test]
    fn error_body_has_type_message_and_extra_members() {
        let error = AwsError::client("ConflictException", "token reused")
            .with_member("resourceIds", serde_json::json!(["arn:1"]));
        let body: serde_json::Value = serde_json::from_slice(&error.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"__type": "ConflictException", "message": "token reused", "resourceIds": ["arn:1"]})
        );
    }

    #[test]
    fn decode_input_maps_every_problem_to_serialization_exception() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Input {
            count: Option<i32>,
        }
        assert!(decode_input::<Input>(b"").is_ok());
        for body in [&b"{"[..], b"[]", b"\"x\"", b"{\"count\": \"three\"}"] {
            let error = decode_input::<Input>(body).unwrap_err();
            assert_eq!(error.code, "SerializationException");
        }
    }
}
