//! Request and response types of the operations `shipmate local` serves, named and typed exactly
//! as the ECS (2014-11-13) and CloudWatch Logs (2014-03-28) service models name and type them.
//!
//! Serialization rules that clients depend on (see docs/local-endpoint.md):
//! members are camelCase; absent optionals are omitted, never `null`; ECS timestamps are epoch
//! seconds as JSON numbers; Logs times are epoch milliseconds as integers; ECS `Task.cpu`,
//! `Task.memory` and `Container.cpu/memory` are strings while `ContainerDefinition.cpu/memory`
//! are integers.

pub mod ecs;
pub mod logs;
