//! HTTP server for shipmate local: one port for ECS and CloudWatch Logs, fault injection, control API.
