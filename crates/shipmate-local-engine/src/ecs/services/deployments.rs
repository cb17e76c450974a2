//! The service-deployment operations (ListServiceDeployments, DescribeServiceDeployments,
//! DescribeServiceRevisions, StopServiceDeployment, ContinueServiceDeployment), how a
//! deployment-triggering CreateService or UpdateService records its revision and deployment,
//! and the shapes of both. The stage machine itself is `stages.rs`.

use std::time::SystemTime;

use shipmate_local_api::ecs::{
    ContainerImage, ContinueServiceDeploymentRequest, ContinueServiceDeploymentResponse,
    DeploymentLifecycleHookDetail, DescribeServiceDeploymentsRequest,
    DescribeServiceDeploymentsResponse, DescribeServiceRevisionsRequest,
    DescribeServiceRevisionsResponse, Failure, ListServiceDeploymentsRequest,
    ListServiceDeploymentsResponse, Rollback, ServiceCurrentRevisionSummary, ServiceDeployment,
    ServiceDeploymentAlarms, ServiceDeploymentBrief, ServiceDeploymentCircuitBreaker,
    ServiceRevision, ServiceRevisionSummary, StopServiceDeploymentRequest,
    StopServiceDeploymentResponse, epoch_seconds,
};
use shipmate_local_protocol::AwsError;

use super::configuration::configuration_shape;
use super::find_service;
use super::model::{RolloutState, ServiceRecord, Strategy};
use super::records::{
    self, DeploymentStatus, HookAction, RevisionPart, ServiceDeploymentRecord,
    ServiceRevisionRecord,
};
use super::stages;
use crate::ecs::{Ecs, EcsState, invalid_parameter, pagination};

/// The Describe operations take at most 20 ARNs.
const MAX_DESCRIBE: usize = 20;

fn deployment_not_found() -> AwsError {
    AwsError::client(
        "ServiceDeploymentNotFoundException",
        "The service deployment does not exist.",
    )
}

fn conflict(message: impl Into<String>) -> AwsError {
    AwsError::client("ConflictException", message)
}

impl Ecs {
    pub(crate) fn list_service_deployments(
        &self,
        input: ListServiceDeploymentsRequest,
    ) -> Result<ListServiceDeploymentsResponse, AwsError> {
        let statuses = input
            .status
            .iter()
            .flatten()
            .map(|status| {
                DeploymentStatus::parse(status).ok_or_else(|| {
                    invalid_parameter(format!("Invalid service deployment status {status}."))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let state = self.state();
        let arn = find_service(&state, input.cluster.as_deref(), &input.service)?;
        let service = &state.services[&arn];
        let (after, before) = input
            .created_at
            .as_ref()
            .map_or((None, None), |c| (c.after, c.before));
        // Newest first (ECS documents no order; reference §3.1).
        let briefs: Vec<ServiceDeploymentBrief> = service
            .service_deployments
            .iter()
            .rev()
            .filter(|record| statuses.is_empty() || statuses.contains(&record.status))
            .filter(|record| {
                let created = epoch_seconds(record.created_at);
                after.is_none_or(|after| created >= after)
                    && before.is_none_or(|before| created <= before)
            })
            .map(|record| brief(service, record))
            .collect();
        let (service_deployments, next_token) = pagination::paginate(
            briefs,
            input.next_token.as_deref(),
            Some(input.max_results.unwrap_or(20)),
        )?;
        Ok(ListServiceDeploymentsResponse {
            service_deployments,
            next_token,
        })
    }

    pub(crate) fn describe_service_deployments(
        &self,
        input: DescribeServiceDeploymentsRequest,
    ) -> Result<DescribeServiceDeploymentsResponse, AwsError> {
        check_arn_count("serviceDeploymentArns", &input.service_deployment_arns)?;
        let state = self.state();
        let mut response = DescribeServiceDeploymentsResponse::default();
        for arn in &input.service_deployment_arns {
            match find_deployment(&state, arn) {
                Some((service, record)) => response
                    .service_deployments
                    .push(describe_deployment(service, record)),
                None => response.failures.push(missing(arn)),
            }
        }
        Ok(response)
    }

    pub(crate) fn describe_service_revisions(
        &self,
        input: DescribeServiceRevisionsRequest,
    ) -> Result<DescribeServiceRevisionsResponse, AwsError> {
        check_arn_count("serviceRevisionArns", &input.service_revision_arns)?;
        let state = self.state();
        let mut response = DescribeServiceRevisionsResponse::default();
        for arn in &input.service_revision_arns {
            let found = records::owning_service_arn(arn, "service-revision")
                .and_then(|service_arn| state.services.get(&service_arn))
                .and_then(|service| {
                    let revision = service.revisions.iter().find(|r| &r.arn == arn)?;
                    Some(describe_revision(service, revision))
                });
            match found {
                Some(revision) => response.service_revisions.push(revision),
                None => response.failures.push(missing(arn)),
            }
        }
        Ok(response)
    }

    pub(crate) fn stop_service_deployment(
        &self,
        input: StopServiceDeploymentRequest,
    ) -> Result<StopServiceDeploymentResponse, AwsError> {
        let rollback = match input.stop_type.as_deref() {
            None | Some("ROLLBACK") => true,
            Some("ABORT") => false,
            Some(other) => {
                return Err(invalid_parameter(format!(
                    "Invalid stopType {other}: one of ROLLBACK, ABORT."
                )));
            }
        };
        let now = self.now();
        let mut state = self.state();
        let arn = input.service_deployment_arn;
        let service = deployment_service(&mut state, &arn)?;
        stages::stop(service, &arn, rollback, now).map_err(|error| conflict(error.to_string()))?;
        drop(state);
        self.changed();
        Ok(StopServiceDeploymentResponse {
            service_deployment_arn: Some(arn),
        })
    }

    pub(crate) fn continue_service_deployment(
        &self,
        input: ContinueServiceDeploymentRequest,
    ) -> Result<ContinueServiceDeploymentResponse, AwsError> {
        let action = match input.action.as_deref() {
            None => HookAction::Continue,
            Some(action) => HookAction::parse(action).ok_or_else(|| {
                invalid_parameter(format!(
                    "Invalid action {action}: one of CONTINUE, ROLLBACK."
                ))
            })?,
        };
        let now = self.now();
        let mut state = self.state();
        let arn = input.service_deployment_arn;
        let service = deployment_service(&mut state, &arn)?;
        let name = service.name.clone();
        let record = service
            .service_deployments
            .iter_mut()
            .find(|record| record.arn == arn)
            .expect("found above");
        // ContinueServiceDeployment models no ConflictException: every unmet precondition is
        // an InvalidParameterException.
        stages::answer_hook(record, &input.hook_id, action, now)
            .map_err(|error| invalid_parameter(error.to_string()))?;
        let id = arn.rsplit('/').next().unwrap_or_default().to_owned();
        service.push_event(
            now,
            format!(
                "(service {name}) (service deployment {id}) lifecycle hook {} was answered with {}.",
                input.hook_id,
                action.as_str()
            ),
        );
        drop(state);
        self.changed();
        Ok(ContinueServiceDeploymentResponse {
            service_deployment_arn: Some(arn),
        })
    }
}

fn check_arn_count(member: &str, arns: &[String]) -> Result<(), AwsError> {
    if arns.is_empty() || arns.len() > MAX_DESCRIBE {
        return Err(invalid_parameter(format!(
            "{member} can have at most {MAX_DESCRIBE} items and at least 1."
        )));
    }
    Ok(())
}

fn missing(arn: &str) -> Failure {
    Failure {
        arn: Some(arn.to_owned()),
        reason: Some("MISSING".into()),
        detail: None,
    }
}

fn find_deployment<'a>(
    state: &'a EcsState,
    arn: &str,
) -> Option<(&'a ServiceRecord, &'a ServiceDeploymentRecord)> {
    let service = state
        .services
        .get(&records::owning_service_arn(arn, "service-deployment")?)?;
    let record = service
        .service_deployments
        .iter()
        .find(|record| record.arn == arn)?;
    Some((service, record))
}

/// The service owning deployment `arn`, which must exist.
fn deployment_service<'a>(
    state: &'a mut EcsState,
    arn: &str,
) -> Result<&'a mut ServiceRecord, AwsError> {
    find_deployment(state, arn).ok_or_else(deployment_not_found)?;
    let service_arn = records::owning_service_arn(arn, "service-deployment").expect("found");
    Ok(state.services.get_mut(&service_arn).expect("found"))
}

/// Records the revision and the deployment of a deployment-triggering CreateService or
/// UpdateService whose new `ecs-svc/…` deployment is the service's primary; a deployment still
/// in flight is stopped by it.
pub(super) fn start_deployment(
    service: &mut ServiceRecord,
    mut revision: ServiceRevisionRecord,
    now: SystemTime,
) {
    revision.arn = records::new_revision_arn(&service.arn);
    let revision_arn = revision.arn.clone();
    service.revisions.push(revision);
    service.primary_mut().revision_arn = Some(revision_arn.clone());
    for record in service
        .service_deployments
        .iter_mut()
        .filter(|record| record.status.is_active())
    {
        record.status = DeploymentStatus::StopRequested;
        record.status_reason = Some("A newer service deployment started.".into());
        record.updated_at = now;
    }
    let primary_id = service.primary().id.clone();
    let configuration = service.deployment_configuration.clone();
    let shifts_traffic = configuration.strategy != Strategy::Rolling
        && (service
            .spec
            .load_balancers
            .as_ref()
            .is_some_and(|l| !l.is_empty())
            || service
                .revisions
                .last()
                .is_some_and(|r| r.service_connect.is_some()));
    let weight = |value: f64| shifts_traffic.then_some(value);
    let mut sources: Vec<RevisionPart> = Vec::new();
    for deployment in service.deployments.iter().skip(1) {
        let Some(arn) = &deployment.revision_arn else {
            continue;
        };
        let live = deployment.running_count + deployment.pending_count;
        if (live == 0 && deployment.rollout_state != RolloutState::Completed)
            || sources.iter().any(|s| &s.arn == arn)
        {
            continue;
        }
        sources.push(RevisionPart {
            arn: arn.clone(),
            deployment_id: deployment.id.clone(),
            requested: live,
            running: deployment.running_count,
            pending: deployment.pending_count,
            test_weight: weight(if sources.is_empty() { 100.0 } else { 0.0 }),
            production_weight: weight(if sources.is_empty() { 100.0 } else { 0.0 }),
        });
    }
    let target = RevisionPart {
        arn: revision_arn,
        deployment_id: primary_id,
        requested: 0,
        running: 0,
        pending: 0,
        test_weight: weight(0.0),
        production_weight: weight(if sources.is_empty() { 100.0 } else { 0.0 }),
    };
    let threshold = configuration
        .circuit_breaker
        .threshold(service.desired_count);
    service.service_deployments.push(ServiceDeploymentRecord {
        arn: records::new_deployment_arn(&service.arn),
        status: DeploymentStatus::Pending,
        status_reason: None,
        stage: None,
        step: 0,
        wait_until: None,
        stage_passed: false,
        hooks: Vec::new(),
        sources,
        target,
        configuration,
        shifts_traffic,
        rollback: None,
        breaker_triggered: false,
        failure_count: 0,
        threshold,
        created_at: now,
        started_at: None,
        finished_at: None,
        stopped_at: None,
        updated_at: now,
    });
}

fn brief(service: &ServiceRecord, record: &ServiceDeploymentRecord) -> ServiceDeploymentBrief {
    ServiceDeploymentBrief {
        service_deployment_arn: Some(record.arn.clone()),
        service_arn: Some(service.arn.clone()),
        cluster_arn: Some(service.cluster_arn.clone()),
        started_at: record.started_at.map(epoch_seconds),
        created_at: Some(epoch_seconds(record.created_at)),
        finished_at: record.finished_at.map(epoch_seconds),
        target_service_revision_arn: Some(record.target.arn.clone()),
        status: Some(record.status.as_str().to_owned()),
        status_reason: record.status_reason.clone(),
    }
}

fn summary(part: &RevisionPart) -> ServiceRevisionSummary {
    ServiceRevisionSummary {
        arn: Some(part.arn.clone()),
        requested_task_count: part.requested as i32,
        running_task_count: part.running as i32,
        pending_task_count: part.pending as i32,
        requested_test_traffic_weight: part.test_weight,
        requested_production_traffic_weight: part.production_weight,
    }
}

fn describe_deployment(
    service: &ServiceRecord,
    record: &ServiceDeploymentRecord,
) -> ServiceDeployment {
    let breaker = &record.configuration.circuit_breaker;
    let breaker_status = if !breaker.enable {
        "DISABLED"
    } else if record.breaker_triggered {
        "TRIGGERED"
    } else if record.status.is_active() {
        "MONITORING"
    } else {
        "MONITORING_COMPLETE"
    };
    let hooks = record
        .hooks
        .iter()
        .map(|hook| DeploymentLifecycleHookDetail {
            hook_id: Some(hook.hook_id.clone()),
            target_type: Some("PAUSE".into()),
            target_arn: None,
            status: Some(hook.status.as_str().to_owned()),
            expires_at: Some(epoch_seconds(hook.expires_at)),
            timeout_action: Some(hook.timeout_action.as_str().to_owned()),
        })
        .collect::<Vec<_>>();
    ServiceDeployment {
        service_deployment_arn: Some(record.arn.clone()),
        service_arn: Some(service.arn.clone()),
        cluster_arn: Some(service.cluster_arn.clone()),
        created_at: Some(epoch_seconds(record.created_at)),
        started_at: record.started_at.map(epoch_seconds),
        finished_at: record.finished_at.map(epoch_seconds),
        stopped_at: record.stopped_at.map(epoch_seconds),
        updated_at: Some(epoch_seconds(record.updated_at)),
        source_service_revisions: Some(record.sources.iter().map(summary).collect()),
        target_service_revision: Some(summary(&record.target)),
        status: Some(record.status.as_str().to_owned()),
        status_reason: record.status_reason.clone(),
        lifecycle_stage: record.stage.map(|stage| stage.as_str().to_owned()),
        lifecycle_hook_details: (!hooks.is_empty()).then_some(hooks),
        deployment_configuration: Some(configuration_shape(&record.configuration)),
        rollback: record.rollback.as_ref().map(|rollback| Rollback {
            reason: Some(rollback.reason.clone()),
            started_at: Some(epoch_seconds(rollback.started_at)),
            service_revision_arn: rollback.revision_arn.clone(),
        }),
        deployment_circuit_breaker: Some(ServiceDeploymentCircuitBreaker {
            status: Some(breaker_status.into()),
            failure_count: record.failure_count as i32,
            threshold: record.threshold as i32,
        }),
        alarms: Some(match &record.configuration.alarms {
            Some(alarms) if alarms.enable => ServiceDeploymentAlarms {
                // No CloudWatch alarms here: they are watched, never triggered.
                status: Some(
                    if record.status.is_active() {
                        "MONITORING"
                    } else {
                        "MONITORING_COMPLETE"
                    }
                    .into(),
                ),
                alarm_names: Some(alarms.alarm_names.clone()),
                triggered_alarm_names: Some(Vec::new()),
            },
            _ => ServiceDeploymentAlarms {
                status: Some("DISABLED".into()),
                ..Default::default()
            },
        }),
    }
}

fn describe_revision(service: &ServiceRecord, revision: &ServiceRevisionRecord) -> ServiceRevision {
    let launch = &revision.launch;
    ServiceRevision {
        service_revision_arn: Some(revision.arn.clone()),
        service_arn: Some(service.arn.clone()),
        cluster_arn: Some(service.cluster_arn.clone()),
        task_definition: Some(revision.task_definition.clone()),
        capacity_provider_strategy: launch.capacity_provider_strategy.clone(),
        launch_type: launch.launch_type.clone(),
        platform_version: launch.platform_version.clone(),
        platform_family: launch
            .launch_type
            .as_deref()
            .filter(|t| *t == "FARGATE")
            .map(|_| "Linux".into()),
        load_balancers: revision.load_balancers.clone(),
        service_registries: revision.service_registries.clone(),
        network_configuration: launch.network_configuration.clone(),
        container_images: Some(
            revision
                .container_images
                .iter()
                .map(|(name, image)| ContainerImage {
                    container_name: Some(name.clone()),
                    image_digest: None,
                    image: Some(image.clone()),
                })
                .collect(),
        ),
        guard_duty_enabled: Some(false),
        service_connect_configuration: revision.service_connect.clone(),
        created_at: Some(epoch_seconds(revision.created_at)),
    }
}

/// `currentServiceRevisions[]`: the revisions of the deployments listed in `deployments[]`.
pub(super) fn current_revisions(service: &ServiceRecord) -> Vec<ServiceCurrentRevisionSummary> {
    let mut summaries: Vec<ServiceCurrentRevisionSummary> = Vec::new();
    for deployment in &service.deployments {
        let Some(arn) = &deployment.revision_arn else {
            continue;
        };
        if summaries.iter().any(|s| s.arn.as_ref() == Some(arn)) {
            continue;
        }
        summaries.push(ServiceCurrentRevisionSummary {
            arn: Some(arn.clone()),
            requested_task_count: deployment.desired_count as i32,
            running_task_count: deployment.running_count as i32,
            pending_task_count: deployment.pending_count as i32,
        });
    }
    summaries
}
