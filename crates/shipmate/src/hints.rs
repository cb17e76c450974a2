//! `hint:` lines for the failures people hit most, rendered at the edge from the typed error.

use shipmate_release::config::OnCancel;
use shipmate_release::task::FailureCause;
use shipmate_release_aws::{AwsError, AwsErrorKind, ReleaseError};

pub(crate) fn hints(error: &ReleaseError, cluster: &str, service: Option<&str>) -> Vec<String> {
    match error {
        ReleaseError::TaskFailedToStart { cause, .. } | ReleaseError::TaskExited { cause, .. } => {
            cause_hint(*cause).into_iter().collect()
        }
        ReleaseError::Placement { .. } => vec![
            "the cluster had no capacity for the task: check the capacity providers or launch type (--launch-type) and the task's cpu/memory".to_owned(),
        ],
        ReleaseError::LockTimeout { holder_task_arn, .. } => vec![
            format!("wait longer with --lock-timeout, or look at the holder: aws ecs describe-tasks --cluster {cluster} --tasks {holder_task_arn}"),
        ],
        ReleaseError::Interrupted { task_arn, action, service_updating, .. } => {
            let mut hints = Vec::new();
            if let (Some(task), Some(OnCancel::Leave)) = (task_arn, action) {
                hints.push(format!("the task is still running; stop it with: aws ecs stop-task --cluster {cluster} --task {task}"));
            }
            if let Some(td) = service_updating {
                let service = service.unwrap_or("the service");
                hints.push(format!(
                    "the service update was already sent: ECS keeps rolling {service} out to {td}; follow it with `shipmate status` or go back with `shipmate rollback`"
                ));
            }
            hints
        }
        ReleaseError::DeploymentFailed { .. } => vec![
            "the new tasks did not stay up: read the stopped tasks' reasons (`shipmate status`) and the service events above".to_owned(),
        ],
        ReleaseError::Container(_) => vec!["choose the container with --container (or [service] container)".to_owned()],
        ReleaseError::Aws { source, .. } => aws_hint(source).into_iter().collect(),
        ReleaseError::TaskTimeout { .. } => vec!["raise the timeout with --migrate-timeout (or [migrate] timeout)".to_owned()],
        ReleaseError::DeployTimeout { .. } => vec!["raise the timeout with --timeout (or [deploy] timeout)".to_owned()],
        _ => Vec::new(),
    }
}

fn cause_hint(cause: FailureCause) -> Option<String> {
    let text = match cause {
        FailureCause::CannotPullImage => {
            "the image could not be pulled: check that the tag was pushed; tasks in private subnets need a NAT gateway or VPC endpoints for ECR (ecr.api, ecr.dkr) and S3, tasks in public subnets need assignPublicIp ENABLED"
        }
        FailureCause::MissingLogGroup => {
            "the awslogs log group does not exist: create it (aws logs create-log-group --log-group-name <awslogs-group>) or set awslogs-create-group=true in the task definition's log options"
        }
        FailureCause::OutOfMemory => {
            "the container ran out of memory: raise the migration's memory with --migrate-memory (or [migrate] memory) or the task definition's memory"
        }
        FailureCause::ResourceInitialization => {
            "the task could not be initialised: check that the task execution role can read its secrets and pull from the registry"
        }
        FailureCause::CannotStartContainer => {
            "the container could not start: check that the command exists in the image"
        }
        FailureCause::StoppedByUser => {
            "the task was stopped by someone (StopTask) before it finished"
        }
        FailureCause::CommandFailed | FailureCause::Other => return None,
    };
    Some(text.to_owned())
}

fn aws_hint(error: &AwsError) -> Option<String> {
    let text = match error.kind {
        AwsErrorKind::Credentials => {
            "shipmate finds credentials like the AWS CLI does: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; in CI give the job a role (CodeBuild service role, GitHub OIDC)".to_owned()
        }
        AwsErrorKind::Region => {
            "set AWS_REGION (or AWS_DEFAULT_REGION, or a region in your AWS profile)".to_owned()
        }
        AwsErrorKind::Connection | AwsErrorKind::Timeout => {
            match std::env::var("AWS_ENDPOINT_URL_ECS").or_else(|_| std::env::var("AWS_ENDPOINT_URL")) {
                Ok(endpoint) => format!(
                    "AWS_ENDPOINT_URL points shipmate at {endpoint}: is it running (`shipmate local serve`)?"
                ),
                Err(_) => "check the network route to the AWS endpoints (proxy settings, VPC endpoints)".to_owned(),
            }
        }
        AwsErrorKind::Service => match error.code.as_deref() {
            Some("AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation") => format!(
                "the credentials may not call {}: `shipmate iam-policy` prints the policy shipmate needs",
                error.operation
            ),
            Some("ClusterNotFoundException") => {
                "check --cluster (or [service] cluster) and the region".to_owned()
            }
            _ => return None,
        },
        AwsErrorKind::Other => return None,
    };
    Some(text)
}
