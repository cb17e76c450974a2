//! `hint:` lines for the failures people hit most, rendered at the edge from the typed error.

use shipmate_release::config::OnCancel;
use shipmate_release::deployment::PAUSE_STAGE;
use shipmate_release::doctor::Finding;
use shipmate_release::duration::format_duration;
use shipmate_release::error::ReleaseError;
use shipmate_release::event::TaskRole;
use shipmate_release::fault::{AwsError, AwsErrorKind};
use shipmate_release::task::FailureCause;

/// The endpoint shipmate talks to, when it is not AWS's own (`shipmate local`, a proxy).
fn custom_endpoint() -> Option<String> {
    std::env::var("AWS_ENDPOINT_URL_ECS")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .ok()
        .filter(|url| !url.is_empty())
}

/// Whether links into the AWS console mean anything: not when shipmate talks to another
/// endpoint (`shipmate local`, a proxy), where they would point at resources that do not exist.
pub(crate) fn console_links_apply() -> bool {
    custom_endpoint().is_none()
}

/// Whether the endpoint is on this machine: most likely `shipmate local`.
pub(crate) fn local_endpoint() -> Option<String> {
    custom_endpoint().filter(|url| {
        url.contains("://127.") || url.contains("://localhost") || url.contains("://[::1]")
    })
}

/// How hints name the services of the command: in prose, and as flags to paste.
struct Services<'a>(&'a [String]);

impl Services<'_> {
    fn prose(&self) -> String {
        match self.0 {
            [] => "the service".to_owned(),
            [one] => one.clone(),
            several => format!("the services {}", several.join(", ")),
        }
    }

    fn flags(&self) -> String {
        match self.0 {
            [] => "--service <service>".to_owned(),
            several => several
                .iter()
                .map(|s| format!("--service {s}"))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

pub(crate) fn hints(error: &ReleaseError, cluster: &str, services: &[String]) -> Vec<String> {
    let set = Services(services);
    let service_name = set.prose();
    let service_flags = set.flags();
    match error {
        ReleaseError::TaskFailedToStart { cause, .. } => cause_hint(*cause).into_iter().collect(),
        ReleaseError::TaskExited { cause, role, .. } => match (cause, role) {
            (FailureCause::CommandFailed | FailureCause::Other, TaskRole::Migrate) => vec![format!(
                "the migration's last log lines are above; {service_name} {} not touched and still {} what {} ran before. Fix the migration (or the database) and re-run the same job: the next attempt starts a new migration task",
                if services.len() > 1 { "were" } else { "was" },
                if services.len() > 1 { "run" } else { "runs" },
                if services.len() > 1 { "they" } else { "it" },
            )],
            (FailureCause::CommandFailed | FailureCause::Other, TaskRole::PostDeploy) => vec![format!(
                "the release is live on {service_name}; only the post-deploy command failed (its log lines are above)"
            )],
            _ => cause_hint(*cause).into_iter().collect(),
        },
        ReleaseError::Placement { .. } => vec![
            "the cluster had no capacity for the task: check the capacity providers or launch type (--launch-type) and the task's cpu/memory".to_owned(),
        ],
        ReleaseError::LockTimeout { holder, family, .. } => {
            let mut hints = vec!["wait longer with --lock-timeout".to_owned()];
            match holder {
                Some(holder) => {
                    if let Some(task) = &holder.migration_task {
                        hints.push(format!(
                            "the holder's migration task: aws ecs describe-tasks --cluster {cluster} --tasks {task}"
                        ));
                    }
                    hints.push(format!(
                        "if the holder's job is gone for good, `shipmate unlock --cluster {cluster} {service_flags}` releases its lock (it asks first); a holder silent for longer than the lock lease is taken over automatically"
                    ));
                }
                None => hints.push(format!("the lock is the ledger `{family}`: `shipmate status` shows who holds it")),
            }
            hints
        }
        ReleaseError::Superseded { .. } => vec![
            "nothing was changed by this run: deploying it now would put an older release over a newer one. To go back on purpose, use `shipmate rollback --to <revision>`".to_owned(),
        ],
        ReleaseError::Replaced { by, .. } => vec![format!(
            "another deployment ({by}) replaced this release's before it completed; `shipmate status` shows what runs now"
        )],
        ReleaseError::LockLost { .. } => vec![
            "shipmate stalled for longer than half the lock lease while it held the lock, so another release may have taken over; raise [deploy] lock_lease if this machine can stall that long, and check `shipmate status`".to_owned(),
        ],
        ReleaseError::NoRollbackTarget { .. } => vec![
            "shipmate keeps a record only of the releases it made: name the revision with --to (family:revision)".to_owned(),
        ],
        ReleaseError::Interrupted {
            task_arn,
            action,
            service_updating,
            ..
        } => {
            let mut hints = Vec::new();
            if let (Some(task), Some(OnCancel::Leave)) = (task_arn, action) {
                hints.push(format!("the task is still running; stop it with: aws ecs stop-task --cluster {cluster} --task {task}"));
            }
            if let Some(td) = service_updating {
                hints.push(format!(
                    "the service update was already sent: ECS keeps rolling {service_name} out to {td}; follow it with `shipmate status` or go back with `shipmate rollback`"
                ));
            }
            hints
        }
        ReleaseError::DeploymentFailed { still_trying, .. } => {
            let mut hints = vec![
                "the new tasks did not stay up: read why above (stopped tasks, service events) or with `shipmate status`".to_owned(),
            ];
            if *still_trying {
                hints.push(format!(
                    "ECS keeps trying to start the new revision while the old tasks serve: `shipmate rollback {service_flags}` returns to what was live, or pass --rollback to do it on failure"
                ));
            }
            hints
        }
        ReleaseError::Container(_) => {
            vec!["choose the container with --container (or [service] container)".to_owned()]
        }
        ReleaseError::Aws { source, .. } => aws_hint(source).into_iter().collect(),
        ReleaseError::Unexpected { .. } => vec![
            "this is a fault of the endpoint or of shipmate, not of your input: re-run with -vv and report it if it persists".to_owned(),
        ],
        ReleaseError::TaskTimeout { .. } => {
            vec!["raise the timeout with --migrate-timeout (or [migrate] timeout)".to_owned()]
        }
        ReleaseError::DeployTimeout { .. } => {
            vec!["raise the timeout with --timeout (or [deploy] timeout)".to_owned()]
        }
        ReleaseError::Controller { controller, .. } if controller == "CODE_DEPLOY" => vec![
            "CodeDeploy makes this service's deployments: run `shipmate deploy --migrate-only` to migrate under the release lock and write imageDetail.json, taskdef.json and appspec.yaml for CodePipeline's CodeDeployToECS action (docs/release.md)".to_owned(),
        ],
        ReleaseError::Controller { .. } => vec![
            "an EXTERNAL controller deploys through task sets that shipmate does not manage: run the migration with `shipmate run`, then deploy with your controller (CreateTaskSet)".to_owned(),
        ],
        ReleaseError::PauseRefused { .. } => vec![
            "use the default gate (--gate before-deploy), which migrates before the service is updated".to_owned(),
        ],
        ReleaseError::MigrationRefused { hint, .. } => {
            let mut hints: Vec<String> = hint.iter().cloned().collect();
            hints.push("split the change: expand now (add, make nullable, stop using), contract in a later migration marked `safe = Safe.after_deploy()` (django-safemigrate), which shipmate applies once the deployment is complete; --allow-unsafe overrides (the serving code may break)".to_owned());
            hints
        }
        ReleaseError::RollbackPastContract { .. } => vec![
            "the old code may query columns or tables that are gone: roll forward instead, or pass --force if you know it does not".to_owned(),
        ],
        ReleaseError::PlanReport { .. } => vec![
            "read the migration task's log above: the preset's report was cut (a crash, or lines lost by the log driver); re-run the release to let it report again".to_owned(),
        ],
        ReleaseError::ContractFailed { .. } => vec![
            "the new code serves with the held-back migrations not (all) applied: fix them and run `shipmate finish` with the same flags, which runs the contract phase again".to_owned(),
        ],
        ReleaseError::ServiceNotFound { .. }
        | ReleaseError::ServiceNotActive { .. }
        | ReleaseError::Invalid(_) => Vec::new(),
    }
}

fn cause_hint(cause: FailureCause) -> Option<String> {
    let text = match cause {
        FailureCause::CannotPullImage => match local_endpoint() {
            Some(endpoint) => format!(
                "the image is not in the store of the shipmate local at {endpoint}: push it with `shipmate local push <dir> --image <image>`"
            ),
            None => "the image could not be pulled: check that the tag was pushed; tasks in private subnets need a NAT gateway or VPC endpoints for ECR (ecr.api, ecr.dkr) and S3, tasks in public subnets need assignPublicIp ENABLED".to_owned(),
        },
        FailureCause::MissingLogGroup => {
            "the awslogs log group does not exist: create it (aws logs create-log-group --log-group-name <awslogs-group>) or set awslogs-create-group=true in the task definition's log options".to_owned()
        }
        FailureCause::OutOfMemory => {
            "the container ran out of memory: raise the migration's memory with --migrate-memory (or [migrate] memory) or the task definition's memory".to_owned()
        }
        FailureCause::ResourceInitialization => {
            "the task could not be initialised: check that the task execution role can read its secrets and pull from the registry".to_owned()
        }
        FailureCause::CannotStartContainer => {
            "the container could not start: check that the command exists in the image".to_owned()
        }
        FailureCause::StoppedByUser => {
            "the task was stopped by someone (StopTask) before it finished".to_owned()
        }
        FailureCause::CommandFailed | FailureCause::Other => return None,
    };
    Some(text)
}

fn aws_hint(error: &AwsError) -> Option<String> {
    let text = match error.kind {
        AwsErrorKind::Credentials => {
            "shipmate finds credentials like the AWS CLI does: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; in CI give the job a role (CodeBuild service role, GitHub OIDC)".to_owned()
        }
        AwsErrorKind::Region => {
            "set AWS_REGION (or AWS_DEFAULT_REGION, or a region in your AWS profile)".to_owned()
        }
        AwsErrorKind::Connection | AwsErrorKind::Timeout => match custom_endpoint() {
            Some(endpoint) => format!(
                "AWS_ENDPOINT_URL points shipmate at {endpoint}: is it running (`shipmate local serve`)?"
            ),
            None => "check the network route to the AWS endpoints (proxy settings, VPC endpoints)".to_owned(),
        },
        AwsErrorKind::Service => match error.code.as_deref() {
            Some("AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation") => {
                let ledger = matches!(
                    error.operation,
                    "RegisterTaskDefinition" | "TagResource" | "DeregisterTaskDefinition"
                );
                format!(
                    "the credentials may not call {}{}: `shipmate iam-policy` prints the policy shipmate needs",
                    error.operation,
                    if ledger {
                        " (registering with tags — the release ledger, a tagged task definition — also needs ecs:TagResource, and the ledger ecs:DeregisterTaskDefinition on task-definition/shipmate-ledger-*; docs/lock.md)"
                    } else {
                        ""
                    }
                )
            }
            Some("ClusterNotFoundException") => {
                "check --cluster (or [service] cluster) and the region".to_owned()
            }
            _ => return None,
        },
        AwsErrorKind::Other => return None,
    };
    Some(text)
}

/// What the `hint:` of a `shipmate doctor` check needs beyond the finding.
pub(crate) struct DoctorContext<'a> {
    pub(crate) cluster: &'a str,
    pub(crate) services: &'a [String],
    /// `--lock-key`, when the release names one.
    pub(crate) lock_key: Option<&'a str>,
}

/// The `hint:` of a check that did not pass: what to do about it.
pub(crate) fn doctor_hint(finding: &Finding, context: &DoctorContext<'_>) -> Option<String> {
    let cluster = context.cluster;
    let target = format!(
        "--cluster {cluster} {}{}",
        Services(context.services).flags(),
        context
            .lock_key
            .map(|key| format!(" --lock-key {key}"))
            .unwrap_or_default()
    );
    let text = match finding {
        Finding::Unreachable { error } | Finding::Unchecked { error, .. } => {
            let hints = hints(error, cluster, context.services);
            if hints.is_empty() {
                return None;
            }
            hints.join("; ")
        }
        Finding::ClusterMissing { .. } => {
            "check --cluster (or [service] cluster) and the region (AWS_REGION, or the profile's)"
                .to_owned()
        }
        Finding::ServiceMissing { .. } => format!(
            "check --service (or [service] service); `aws ecs list-services --cluster {cluster}` lists the cluster's services"
        ),
        Finding::ServiceNotActive { .. } => {
            "a DRAINING or INACTIVE service cannot be deployed: create it again, or release another one".to_owned()
        }
        Finding::Controller {
            service,
            controller,
            ..
        } => {
            let error = ReleaseError::Controller {
                cluster: cluster.to_owned(),
                service: service.clone(),
                controller: controller.clone(),
            };
            hints(&error, cluster, context.services).join("; ")
        }
        Finding::ContainerUnclear { error } => {
            hints(&ReleaseError::Container(error.clone()), cluster, context.services).join("; ")
        }
        Finding::LogGroupMissing { group, .. } => format!(
            "create it: aws logs create-log-group --log-group-name {group} (or set awslogs-create-group to \"true\" in the container's log options; the execution role then needs logs:CreateLogGroup)"
        ),
        Finding::ExecutionRoleMissing { task_definition, .. } => format!(
            "register a revision of {} with executionRoleArn: a role ecs-tasks.amazonaws.com can assume, with the AmazonECSTaskExecutionRolePolicy managed policy (and secretsmanager:GetSecretValue or ssm:GetParameters for secrets), then update the service to it; --migrate-execution-role covers the migration task only",
            task_definition.split(':').next().unwrap_or(task_definition)
        ),
        Finding::ImageNotInStore { image, endpoint } => format!(
            "push it: shipmate local push <dir> --image {image} --endpoint {endpoint}"
        ),
        Finding::ImageStoreUnreadable { endpoint, .. } => {
            format!("is shipmate local running at {endpoint} (`shipmate local serve`)?")
        }
        Finding::ImageInEcr { ecr, .. } => format!(
            "aws ecr describe-images --registry-id {} --region {} --repository-name {} --image-ids {}",
            ecr.account, ecr.region, ecr.repository, ecr.image_id
        ),
        Finding::ImageNotChecked { image } => format!(
            "`docker manifest inspect {image}` (or the registry's own tools) tells whether it was pushed"
        ),
        Finding::NetworkMissing | Finding::NoSubnets => format!(
            "give the service subnets (and security groups): aws ecs update-service --cluster {cluster} --service <service> --network-configuration 'awsvpcConfiguration={{subnets=[…],securityGroups=[…]}}'"
        ),
        Finding::NoSecurityGroups { .. } => {
            "name the security groups in the service's awsvpcConfiguration: the VPC's default group may not allow what the tasks need".to_owned()
        }
        Finding::PrivateSubnets { ecr: true, .. } => {
            "private subnets need a NAT gateway or VPC endpoints for ECR (ecr.api, ecr.dkr), S3 (gateway endpoint, where ECR keeps the layers) and CloudWatch Logs (logs); subnets with an internet gateway need assignPublicIp ENABLED".to_owned()
        }
        Finding::PrivateSubnets { ecr: false, .. } => {
            "private subnets need a NAT gateway to reach the image's registry (and VPC endpoints or the NAT gateway for CloudWatch Logs); subnets with an internet gateway need assignPublicIp ENABLED".to_owned()
        }
        Finding::LockHeld { .. } => format!(
            "a release started now waits behind it for up to --lock-timeout; `shipmate status {target}` shows it"
        ),
        Finding::LockLeftOver {
            holder,
            lease_ms,
            migrating,
            ..
        } => {
            let lease = format_duration(std::time::Duration::from_millis(
                u64::try_from(*lease_ms).unwrap_or(0),
            ));
            let task = holder.as_ref().and_then(|h| h.migration_task.as_deref());
            match (task, migrating) {
                (Some(task), Some(true)) => format!(
                    "its migration task {task} still runs: let it finish (aws ecs describe-tasks --cluster {cluster} --tasks {task}), then `shipmate unlock {target}` releases the lock (it asks first)"
                ),
                _ => format!(
                    "`shipmate status {target}` shows what that release did; `shipmate unlock {target}` releases the lock (it asks first); left alone, the next release takes it over once the holder is silent for the lock lease ({lease})"
                ),
            }
        }
        Finding::LeftoverHook { .. } => format!(
            "the next shipmate release of the service removes it; until then a deployment started without shipmate (console, CLI, Terraform) waits at {PAUSE_STAGE} and is rolled back when the hook times out"
        ),
        Finding::Reached { .. }
        | Finding::ClusterFound { .. }
        | Finding::ServiceActive { .. }
        | Finding::Containers { .. }
        | Finding::LogGroupFound { .. }
        | Finding::LogGroupCreatedOnStart { .. }
        | Finding::ExecutionRoleSet { .. }
        | Finding::ExecutionRoleNotNeeded { .. }
        | Finding::ImageInStore { .. }
        | Finding::NetworkNotAwsvpc { .. }
        | Finding::NetworkFine { .. }
        | Finding::LockFree { .. }
        | Finding::NoLeftoverHook { .. } => return None,
    };
    Some(text)
}
