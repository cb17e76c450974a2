//! ECS (2014-11-13) request and response types.
//!
//! Members are named and typed exactly as the botocore model has them, because aws-sdk-rust
//! rejects a whole response when one member has the wrong JSON type. In particular
//! `Task.cpu/memory`, `Container.cpu/memory/memoryReservation`, `TaskDefinition.cpu/memory` and
//! `TaskOverride.cpu/memory` are strings while `ContainerDefinition.cpu/memory/memoryReservation`
//! and `ContainerOverride.cpu/memory` are integers; timestamps are epoch seconds as JSON numbers
//! (see [`epoch_seconds`]); absent optionals are omitted, never `null`.
//!
//! One submodule per resource; everything is re-exported here.

mod clusters;
mod common;
mod service_deployments;
mod service_operations;
mod service_types;
mod tags;
mod task_definitions;
mod tasks;

pub use clusters::*;
pub use common::*;
pub use service_deployments::*;
pub use service_operations::*;
pub use service_types::*;
pub use tags::*;
pub use task_definitions::*;
pub use tasks::*;
