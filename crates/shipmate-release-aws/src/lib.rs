//! Drives a release against ECS and CloudWatch Logs with the official aws-sdk-rust crates.
//!
//! [`driver::Driver`] reads ECS, feeds what it reads to the pure decisions of
//! `shipmate-release` (the gate, the rollout, the lock), does what they decide, and reports
//! every step as an [`Event`](shipmate_release::event::Event) through a
//! [`Reporter`](reporter::Reporter). It never prints. [`client::Clients`] configures the SDK
//! (standard chain, more retry attempts) and makes every retry visible as an event.

pub mod client;
pub mod driver;
pub mod ecs;
pub mod error;
pub mod logs;
pub mod reporter;

pub use client::{Clients, ConnectOptions};
pub use driver::{DeployRequest, Driver, RollbackRequest, RunRequest, ServiceStatus};
pub use error::{AwsError, AwsErrorKind, ReleaseError};
pub use reporter::{EventLog, Pace, Reporter, TokioPace};
