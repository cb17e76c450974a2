//! Drives the release machines of `shipmate-release` against ECS and CloudWatch Logs with the
//! official aws-sdk-rust crates.
//!
//! [`driver::Driver`] executes each command a machine issues (one AWS operation, or a wait) and
//! feeds back what it observed; every decision is the machine's. It reports progress as
//! [`Event`](shipmate_release::event::Event)s through a [`Reporter`](reporter::Reporter) and
//! never prints. [`client::Clients`] configures the SDK (standard chain, more retry attempts)
//! and makes every retry visible as an event.

pub mod client;
mod document;
pub mod driver;
mod ecs;
mod logs;
pub mod reporter;
mod sdk_error;

pub use client::{Clients, ConnectOptions};
pub use driver::Driver;
pub use reporter::{EventLog, Pace, Reporter, TokioPace};
