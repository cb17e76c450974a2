//! Services and deployments: the lead's part, written against the task interface of `tasks.rs`
//! (`Ecs::launch_tasks`, `Ecs::stop_task_with`, `Ecs::state`, `Ecs::subscribe`).

use serde::{Deserialize, Serialize};

/// One service, as kept in [`super::EcsState::services`] (keyed by service ARN) and persisted
/// with the rest of the ECS state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ServiceRecord;
