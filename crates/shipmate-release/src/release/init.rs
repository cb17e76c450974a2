//! `shipmate init` as a machine: the read-only calls that feed [`crate::init`] — the services,
//! then each one's task definition as ECS sent it.

use crate::error::ReleaseError;
use crate::init::{ContainerFacts, DiscoveredService, Discovery};
use crate::machine::{Io, Machine};

use super::ctx::{Ctx, Stop};

/// The cluster and the services `shipmate init` writes a configuration for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverRequest {
    pub cluster: String,
    pub services: Vec<String>,
}

pub fn discover(request: DiscoverRequest) -> Machine<Result<Discovery, ReleaseError>> {
    Machine::new(|io: Io| async move {
        let mut ctx = Ctx::new(io, &request.cluster);
        match read(&mut ctx, &request).await {
            Ok(discovery) => Ok(discovery),
            Err(Stop::Cancelled) => Err(ReleaseError::Interrupted {
                phase: "init",
                task_arn: None,
                action: None,
                service_updating: None,
            }),
            Err(Stop::Error(error)) => Err(error),
        }
    })
}

async fn read(ctx: &mut Ctx, request: &DiscoverRequest) -> Result<Discovery, Stop> {
    let views = ctx.active_services(&request.services).await?;
    let mut services = Vec::with_capacity(views.len());
    let mut region = None;
    for view in views {
        // arn:<partition>:ecs:<region>:<account>:service/…
        if region.is_none() {
            region = view.service_arn.split(':').nth(3).map(str::to_owned);
        }
        let answer = ctx
            .describe_task_definition_answer(&view.task_definition)
            .await?;
        services.push(DiscoveredService {
            name: view.service_name,
            containers: ContainerFacts::from_answer(&answer),
            task_definition: view.task_definition,
            shape: view.shape,
        });
    }
    Ok(Discovery {
        cluster: request.cluster.clone(),
        region: region.filter(|r| !r.is_empty()),
        services,
    })
}
