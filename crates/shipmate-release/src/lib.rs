//! The release domain: configuration, plan, the release's decisions and its events (no I/O).
//!
//! Everything a release decides lives here as pure functions over plain data: which container
//! to release, how to launch the migration, whether a stopped task passed the gate, what a
//! service's deployments mean, what another release's lock means, and the deterministic ids
//! and tokens that make re-runs attach instead of repeating. `shipmate-release-aws` feeds these
//! functions what it reads from ECS and does what they decide; it is the only part that waits.

pub mod codedeploy;
pub mod command;
pub mod config;
pub mod deployment;
pub mod doctor;
pub mod duration;
pub mod error;
pub mod event;
pub mod fault;
pub mod iam;
pub mod ids;
pub mod init;
pub mod io;
pub mod ledger;
pub mod logs;
pub mod machine;
pub mod pacing;
pub mod plan;
pub mod preset;
pub mod release;
pub mod report;
pub mod service;
pub mod task;
