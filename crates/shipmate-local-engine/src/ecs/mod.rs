//! Amazon ECS: clusters, task definitions, tasks run as processes, services and deployments.

use shipmate_local_protocol::AwsError;

use crate::images::ImageStore;
use crate::logs::LogStore;
use crate::{EngineConfig, EngineError, Request};

#[derive(Debug, Clone)]
pub struct Ecs {
    #[allow(dead_code)]
    logs: LogStore,
    #[allow(dead_code)]
    images: ImageStore,
}

impl Ecs {
    pub async fn start(
        _config: &EngineConfig,
        logs: LogStore,
        images: ImageStore,
    ) -> Result<Ecs, EngineError> {
        Ok(Ecs { logs, images })
    }

    pub async fn handle(&self, request: Request<'_>) -> Result<Vec<u8>, AwsError> {
        Err(AwsError::unknown_operation(format!(
            "shipmate local does not implement {}",
            request.target
        )))
    }

    pub async fn shutdown(&self) {}
}
