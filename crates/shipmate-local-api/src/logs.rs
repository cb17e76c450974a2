//! CloudWatch Logs request and response types.
