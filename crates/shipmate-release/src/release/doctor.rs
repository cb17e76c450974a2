//! `shipmate doctor` as a machine: the read-only calls that feed [`crate::doctor`]'s checks.
//! A call that fails becomes a finding (the first one: the credentials or the cluster; later
//! ones: a check that could not be made), never the command's error; only a cancellation stops
//! it early.

use std::collections::HashMap;

use crate::doctor::{
    Check, Diagnosis, Finding, ImageSource, awslogs_groups, execution_role_check, hook_check,
    image_check, images_after, lock_check, log_group_check, network_check, on_fargate,
};
use crate::error::ReleaseError;
use crate::io::{Command, Observation};
use crate::ledger;
use crate::machine::{Io, Machine};
use crate::plan::containers_to_release;

use super::DeployRequest;
use super::ctx::{Ctx, Stop, ms};
use super::inspect::lock_view;

/// What `shipmate doctor` checks: the release `plan` and `deploy` would make, and where its
/// image comes from (the CLI knows whether the endpoint is `shipmate local`).
#[derive(Debug, Clone)]
pub struct DoctorRequest {
    pub release: DeployRequest,
    pub images: ImageSource,
}

pub fn doctor(request: DoctorRequest) -> Machine<Result<Diagnosis, ReleaseError>> {
    Machine::new(|io: Io| async move {
        let mut ctx = Ctx::new(io, &request.release.cluster);
        let mut checks = Checks(Vec::new());
        match diagnose(&mut ctx, &request, &mut checks).await {
            Ok(()) => Ok(Diagnosis {
                cluster: request.release.cluster.clone(),
                image: request.release.image.clone(),
                checks: checks.0,
            }),
            Err(Stop::Cancelled) => Err(ReleaseError::Interrupted {
                phase: "doctor",
                task_arn: None,
                action: None,
                service_updating: None,
            }),
            Err(Stop::Error(error)) => Err(error),
        }
    })
}

struct Checks(Vec<Check>);

impl Checks {
    fn push(&mut self, service: Option<&str>, finding: Finding) {
        self.0.push(Check {
            service: service.map(str::to_owned),
            finding,
        });
    }
}

/// A failed call as a finding; a cancellation goes on stopping the machine.
fn unchecked(check: &'static str, stop: Stop) -> Result<Finding, Stop> {
    match stop {
        Stop::Cancelled => Err(Stop::Cancelled),
        Stop::Error(error) => Ok(Finding::Unchecked { check, error }),
    }
}

async fn diagnose(ctx: &mut Ctx, request: &DoctorRequest, checks: &mut Checks) -> Result<(), Stop> {
    let release = &request.release;
    let cluster = release.cluster.clone();
    let command = Command::DescribeServices {
        services: release.services.clone(),
    };
    let found = match ctx.call(command).await {
        Ok(Observation::Services { found, .. }) => found,
        Ok(other) => {
            let finding = match ctx.unexpected("DescribeServices", &other) {
                Stop::Error(error) => Finding::Unreachable { error },
                Stop::Cancelled => return Err(Stop::Cancelled),
            };
            checks.push(None, finding);
            return Ok(());
        }
        Err(Stop::Cancelled) => return Err(Stop::Cancelled),
        Err(Stop::Error(ReleaseError::Aws { source, .. }))
            if source.code.as_deref() == Some("ClusterNotFoundException") =>
        {
            checks.push(
                None,
                Finding::Reached {
                    cluster: cluster.clone(),
                },
            );
            checks.push(None, Finding::ClusterMissing { cluster });
            checks.push(None, image_check(&release.image, &request.images));
            return Ok(());
        }
        Err(Stop::Error(error)) => {
            checks.push(None, Finding::Unreachable { error });
            checks.push(None, image_check(&release.image, &request.images));
            return Ok(());
        }
    };
    checks.push(
        None,
        Finding::Reached {
            cluster: cluster.clone(),
        },
    );
    checks.push(
        None,
        Finding::ClusterFound {
            cluster: cluster.clone(),
        },
    );

    // Log groups asked for once, whichever services share them.
    let mut groups: HashMap<String, Vec<String>> = HashMap::new();
    for name in &release.services {
        let service = Some(name.as_str());
        let Some(view) = found
            .iter()
            .find(|v| v.service_name == *name || v.service_arn == *name)
        else {
            checks.push(
                service,
                Finding::ServiceMissing {
                    service: name.clone(),
                    cluster: cluster.clone(),
                },
            );
            continue;
        };
        if view.status != "ACTIVE" {
            checks.push(
                service,
                Finding::ServiceNotActive {
                    service: name.clone(),
                    status: view.status.clone(),
                },
            );
            continue;
        }
        checks.push(
            service,
            Finding::ServiceActive {
                service: name.clone(),
            },
        );
        checks.push(
            service,
            Finding::Controller {
                service: name.clone(),
                controller: view.shape.controller.clone(),
                migrate_only: release.migrate_only,
            },
        );
        checks.push(service, hook_check(name, &view.shape));

        let td = match ctx.describe_task_definition(view.desired_revision()).await {
            Ok(td) => td,
            Err(stop) => {
                checks.push(service, unchecked("container", stop)?);
                continue;
            }
        };
        let moved: Vec<String> = match containers_to_release(
            &td.arn,
            &td.containers,
            &release.image,
            release.container.as_deref(),
        ) {
            Ok(moved) => moved.into_iter().map(|c| c.name.clone()).collect(),
            Err(error) => {
                checks.push(service, Finding::ContainerUnclear { error });
                Vec::new()
            }
        };
        if !moved.is_empty() {
            checks.push(
                service,
                Finding::Containers {
                    task_definition: crate::doctor::short_arn(&td.arn).to_owned(),
                    containers: moved.clone(),
                },
            );
        }
        let images = images_after(&td, &moved, &release.image);
        let fargate = on_fargate(view, &td);

        for (container, logs) in awslogs_groups(&td) {
            let group = logs.group.clone().unwrap_or_default();
            if !logs.create_group && !groups.contains_key(&group) {
                let command = Command::DescribeLogGroups {
                    prefix: group.clone(),
                };
                match ctx.call(command).await {
                    Ok(Observation::LogGroups(names)) => {
                        groups.insert(group.clone(), names);
                    }
                    Ok(other) => {
                        let stop = ctx.unexpected("DescribeLogGroups", &other);
                        checks.push(service, unchecked("log_group", stop)?);
                        continue;
                    }
                    Err(stop) => {
                        checks.push(service, unchecked("log_group", stop)?);
                        continue;
                    }
                }
            }
            let found = groups.get(&group).map_or(&[][..], Vec::as_slice);
            checks.push(service, log_group_check(&td, &container, logs, found));
        }
        checks.push(service, execution_role_check(&td, fargate, &images));
        checks.push(
            service,
            network_check(view, &td, fargate, &images, &request.images),
        );
    }

    checks.push(None, image_check(&release.image, &request.images));

    let key = release
        .lock
        .key
        .clone()
        .unwrap_or_else(|| ledger::default_key(&release.cluster, &release.image));
    match lock_view(ctx, &ledger::family(&key)).await {
        Ok(lock) => checks.push(None, lock_check(&lock, ms(release.lock.lease))),
        Err(stop) => checks.push(None, unchecked("lock", stop)?),
    }
    Ok(())
}
