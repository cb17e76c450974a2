//! Drives a release against ECS and CloudWatch Logs with the official aws-sdk-rust crates.
