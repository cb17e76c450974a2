//! `shipmate doctor`: what would make a first release fail, found before it does. Each check
//! is a [`Finding`], typed and decided here from what ECS and CloudWatch Logs answered; the
//! machine that reads them is `release::doctor`, and the CLI words the `hint:` of each.
//!
//! A check passes, warns (the release may work, or shipmate cannot tell from here), or fails (the
//! release would fail, or should not go ahead before someone looked).

use std::fmt;

use serde::Serialize;

use crate::deployment::{DeploymentShape, PAUSE_STAGE};
use crate::duration::format_duration;
use crate::error::{Holder, ReleaseError};
use crate::io::TaskDefinitionView;
use crate::plan::{ContainerError, LogSettings};
use crate::release::LockView;
use crate::service::ServiceView;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
}

/// Where the release's image comes from, as the CLI found out before the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// AWS (or an endpoint that is not `shipmate local`): images come from their registries.
    Registries,
    /// `shipmate local` at `endpoint`: images come from its store, which listed these (or could
    /// not be read).
    LocalStore {
        endpoint: String,
        images: Result<Vec<String>, String>,
    },
}

/// An image in a private ECR repository, as its URI names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrImage {
    pub account: String,
    pub region: String,
    pub repository: String,
    /// `imageTag=…` or `imageDigest=…`, as `aws ecr describe-images --image-ids` takes it.
    pub image_id: String,
}

/// `<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>[:tag|@digest]`.
pub fn ecr_image(image: &str) -> Option<EcrImage> {
    let (host, path) = image.split_once('/')?;
    let mut labels = host.split('.');
    let account = labels.next()?;
    let (Some("dkr"), Some("ecr"), Some(region), Some("amazonaws")) =
        (labels.next(), labels.next(), labels.next(), labels.next())
    else {
        return None;
    };
    if account.is_empty() || !account.chars().all(|c| c.is_ascii_digit()) || region.is_empty() {
        return None;
    }
    let (repository, image_id) = if let Some((repository, digest)) = path.split_once('@') {
        (repository, format!("imageDigest={digest}"))
    } else {
        match path.rsplit_once(':') {
            Some((repository, tag)) => (repository, format!("imageTag={tag}")),
            None => (path, "imageTag=latest".to_owned()),
        }
    };
    (!repository.is_empty()).then(|| EcrImage {
        account: account.to_owned(),
        region: region.to_owned(),
        repository: repository.to_owned(),
        image_id,
    })
}

/// Why a task definition needs a task execution role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleNeed {
    /// A container logs with awslogs (on Fargate, the agent sends as the execution role).
    Awslogs(String),
    /// A container's image is in a private ECR repository (on Fargate).
    PrivateRegistry(String),
    /// A container has `secrets` or `repositoryCredentials` (on any launch type).
    Secrets(String),
}

impl fmt::Display for RoleNeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleNeed::Awslogs(container) => write!(f, "container `{container}` logs to awslogs"),
            RoleNeed::PrivateRegistry(container) => {
                write!(
                    f,
                    "container `{container}` pulls from a private ECR repository"
                )
            }
            RoleNeed::Secrets(container) => write!(f, "container `{container}` reads secrets"),
        }
    }
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The first call (DescribeServices) answered: credentials, region and endpoint work.
    Reached {
        cluster: String,
    },
    /// The first call failed: nothing else can be checked.
    Unreachable {
        error: ReleaseError,
    },
    ClusterFound {
        cluster: String,
    },
    ClusterMissing {
        cluster: String,
    },
    ServiceActive {
        service: String,
    },
    ServiceMissing {
        service: String,
        cluster: String,
    },
    ServiceNotActive {
        service: String,
        status: String,
    },
    /// The service's deployment controller (ECS passes; CODE_DEPLOY warns unless
    /// `--migrate-only`; EXTERNAL fails).
    Controller {
        service: String,
        controller: String,
        migrate_only: bool,
    },
    /// The containers that get the release's image.
    Containers {
        task_definition: String,
        containers: Vec<String>,
    },
    ContainerUnclear {
        error: ContainerError,
    },
    LogGroupFound {
        group: String,
        container: String,
    },
    /// `awslogs-create-group` is `true`: ECS creates the group when the task starts.
    LogGroupCreatedOnStart {
        group: String,
        container: String,
    },
    LogGroupMissing {
        group: String,
        container: String,
        task_definition: String,
    },
    ExecutionRoleSet {
        role: String,
    },
    ExecutionRoleNotNeeded {
        task_definition: String,
    },
    ExecutionRoleMissing {
        task_definition: String,
        needs: Vec<RoleNeed>,
    },
    ImageInStore {
        image: String,
        endpoint: String,
    },
    ImageNotInStore {
        image: String,
        endpoint: String,
    },
    ImageStoreUnreadable {
        endpoint: String,
        error: String,
    },
    /// In a private ECR repository: shipmate does not call ECR; a person checks.
    ImageInEcr {
        image: String,
        ecr: EcrImage,
    },
    /// In another registry (Docker Hub, ECR Public, …): not checked.
    ImageNotChecked {
        image: String,
    },
    /// Not awsvpc: tasks use the instance's network.
    NetworkNotAwsvpc {
        mode: String,
    },
    /// awsvpc without a network configuration: RunTask of the migration would be refused.
    NetworkMissing,
    NoSubnets,
    /// awsvpc with subnets, pulling from `shipmate local`'s store or over a public IP.
    NetworkFine {
        subnets: Vec<String>,
        public_ip: bool,
        local: bool,
    },
    /// No security group: ECS uses the VPC's default one.
    NoSecurityGroups {
        subnets: Vec<String>,
    },
    /// `assignPublicIp` DISABLED with images from a registry on the internet.
    PrivateSubnets {
        subnets: Vec<String>,
        ecr: bool,
    },
    LockFree {
        family: String,
    },
    /// A live release holds the lock: deploy queues behind it.
    LockHeld {
        family: String,
        holder: Holder,
        silent_ms: i64,
    },
    /// An open entry whose holder stopped heartbeating: a release died under the lock.
    LockLeftOver {
        family: String,
        holder: Option<Holder>,
        silent_ms: i64,
        lease_ms: i64,
        /// Whether the holder's migration task still runs (`None`: it recorded none).
        migrating: Option<bool>,
    },
    NoLeftoverHook {
        service: String,
    },
    /// A PAUSE hook a shipmate release added and did not remove (the next release removes it).
    LeftoverHook {
        service: String,
        release_id: String,
    },
    /// A call needed for the check failed: it is not known either way.
    Unchecked {
        check: &'static str,
        error: ReleaseError,
    },
}

impl Finding {
    /// The check's stable name (`--output json`).
    pub fn name(&self) -> &'static str {
        match self {
            Finding::Reached { .. } | Finding::Unreachable { .. } => "aws_access",
            Finding::ClusterFound { .. } | Finding::ClusterMissing { .. } => "cluster",
            Finding::ServiceActive { .. }
            | Finding::ServiceMissing { .. }
            | Finding::ServiceNotActive { .. } => "service",
            Finding::Controller { .. } => "deployment_controller",
            Finding::Containers { .. } | Finding::ContainerUnclear { .. } => "container",
            Finding::LogGroupFound { .. }
            | Finding::LogGroupCreatedOnStart { .. }
            | Finding::LogGroupMissing { .. } => "log_group",
            Finding::ExecutionRoleSet { .. }
            | Finding::ExecutionRoleNotNeeded { .. }
            | Finding::ExecutionRoleMissing { .. } => "execution_role",
            Finding::ImageInStore { .. }
            | Finding::ImageNotInStore { .. }
            | Finding::ImageStoreUnreadable { .. }
            | Finding::ImageInEcr { .. }
            | Finding::ImageNotChecked { .. } => "image",
            Finding::NetworkNotAwsvpc { .. }
            | Finding::NetworkMissing
            | Finding::NoSubnets
            | Finding::NetworkFine { .. }
            | Finding::NoSecurityGroups { .. }
            | Finding::PrivateSubnets { .. } => "network",
            Finding::LockFree { .. } | Finding::LockHeld { .. } | Finding::LockLeftOver { .. } => {
                "lock"
            }
            Finding::NoLeftoverHook { .. } | Finding::LeftoverHook { .. } => "pause_hook",
            Finding::Unchecked { check, .. } => check,
        }
    }

    pub fn status(&self) -> CheckStatus {
        match self {
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
            | Finding::NoLeftoverHook { .. } => CheckStatus::Pass,
            Finding::Controller {
                controller,
                migrate_only,
                ..
            } => match controller.as_str() {
                "ECS" => CheckStatus::Pass,
                "CODE_DEPLOY" if *migrate_only => CheckStatus::Pass,
                "CODE_DEPLOY" => CheckStatus::Warn,
                _ => CheckStatus::Fail,
            },
            Finding::ImageStoreUnreadable { .. }
            | Finding::ImageInEcr { .. }
            | Finding::ImageNotChecked { .. }
            | Finding::NoSecurityGroups { .. }
            | Finding::PrivateSubnets { .. }
            | Finding::LockHeld { .. }
            | Finding::LeftoverHook { .. }
            | Finding::Unchecked { .. } => CheckStatus::Warn,
            Finding::Unreachable { .. }
            | Finding::ClusterMissing { .. }
            | Finding::ServiceMissing { .. }
            | Finding::ServiceNotActive { .. }
            | Finding::ContainerUnclear { .. }
            | Finding::LogGroupMissing { .. }
            | Finding::ExecutionRoleMissing { .. }
            | Finding::ImageNotInStore { .. }
            | Finding::NetworkMissing
            | Finding::NoSubnets
            | Finding::LockLeftOver { .. } => CheckStatus::Fail,
        }
    }
}

fn ago(ms: i64) -> String {
    format_duration(std::time::Duration::from_millis(
        u64::try_from(ms).unwrap_or(0) / 1000 * 1000,
    ))
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Reached { cluster } => write!(
                f,
                "credentials and region work (ECS answered for cluster {cluster})"
            ),
            Finding::Unreachable { error } => write!(f, "cannot call ECS: {error}"),
            Finding::ClusterFound { cluster } => write!(f, "cluster {cluster} exists"),
            Finding::ClusterMissing { cluster } => {
                write!(f, "cluster {cluster} does not exist in this region")
            }
            Finding::ServiceActive { service } => write!(f, "service {service} is ACTIVE"),
            Finding::ServiceMissing { service, cluster } => {
                write!(f, "service {service} does not exist in cluster {cluster}")
            }
            Finding::ServiceNotActive { service, status } => {
                write!(f, "service {service} is {status}, not ACTIVE")
            }
            Finding::Controller {
                service,
                controller,
                migrate_only,
            } => match controller.as_str() {
                "ECS" => write!(f, "service {service} is deployed by ECS"),
                "CODE_DEPLOY" if *migrate_only => write!(
                    f,
                    "service {service} is deployed by CodeDeploy: --migrate-only migrates and leaves the deployment to it"
                ),
                "CODE_DEPLOY" => write!(
                    f,
                    "service {service} is deployed by CodeDeploy: deploy refuses it without --migrate-only"
                ),
                other => write!(
                    f,
                    "service {service} has the {other} deployment controller, which shipmate cannot deploy"
                ),
            },
            Finding::Containers {
                task_definition,
                containers,
            } => write!(
                f,
                "{} {} of {task_definition} {} the image",
                if containers.len() == 1 {
                    "container"
                } else {
                    "containers"
                },
                containers.join(", "),
                if containers.len() == 1 { "gets" } else { "get" }
            ),
            Finding::ContainerUnclear { error } => write!(f, "{error}"),
            Finding::LogGroupFound { group, container } => {
                write!(f, "log group {group} exists (container {container})")
            }
            Finding::LogGroupCreatedOnStart { group, container } => write!(
                f,
                "log group {group} is created when the task starts (container {container}: awslogs-create-group)"
            ),
            Finding::LogGroupMissing {
                group,
                container,
                task_definition,
            } => write!(
                f,
                "log group {group} does not exist (container {container} of {task_definition} logs to it): the release's tasks would fail to start"
            ),
            Finding::ExecutionRoleSet { role } => write!(f, "execution role {role} is set"),
            Finding::ExecutionRoleNotNeeded { task_definition } => write!(
                f,
                "{task_definition} needs no execution role (no awslogs or private registry on Fargate, no secrets)"
            ),
            Finding::ExecutionRoleMissing {
                task_definition,
                needs,
            } => write!(
                f,
                "{task_definition} has no execution role, but {}: its tasks would fail to start",
                needs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Finding::ImageInStore { image, endpoint } => {
                write!(
                    f,
                    "image {image} is in the store of shipmate local at {endpoint}"
                )
            }
            Finding::ImageNotInStore { image, endpoint } => write!(
                f,
                "image {image} is not in the store of shipmate local at {endpoint}: the migration task would fail to pull it"
            ),
            Finding::ImageStoreUnreadable { endpoint, error } => write!(
                f,
                "cannot list the images of shipmate local at {endpoint}: {error}"
            ),
            Finding::ImageInEcr { image, .. } => write!(
                f,
                "image {image} is in ECR, which shipmate does not call: check by hand that it was pushed"
            ),
            Finding::ImageNotChecked { image } => write!(
                f,
                "image {image} is not in ECR and was not checked: check by hand that it was pushed"
            ),
            Finding::NetworkNotAwsvpc { mode } => write!(
                f,
                "network mode {mode}: tasks use the container instance's network"
            ),
            Finding::NetworkMissing => write!(
                f,
                "awsvpc task definition, but the service has no network configuration"
            ),
            Finding::NoSubnets => write!(f, "awsvpc network configuration without subnets"),
            Finding::NetworkFine {
                subnets,
                public_ip,
                local,
            } => write!(
                f,
                "awsvpc in subnets {}{}",
                subnets.join(","),
                if *local {
                    ", images from shipmate local's store"
                } else if *public_ip {
                    " with a public IP: images are pulled over the internet gateway"
                } else {
                    ""
                }
            ),
            Finding::NoSecurityGroups { subnets } => write!(
                f,
                "awsvpc in subnets {} without security groups: ECS uses the VPC's default security group",
                subnets.join(",")
            ),
            Finding::PrivateSubnets { subnets, ecr } => write!(
                f,
                "awsvpc in subnets {} without a public IP: pulling {} needs a route out of them",
                subnets.join(","),
                if *ecr {
                    "from ECR and sending logs"
                } else {
                    "the image from its registry"
                }
            ),
            Finding::LockFree { family } => write!(f, "release lock {family} is free"),
            Finding::LockHeld {
                family,
                holder,
                silent_ms,
            } => write!(
                f,
                "release lock {family} is held by {holder} (heartbeat {} ago): a release now queues behind it",
                ago(*silent_ms)
            ),
            Finding::LockLeftOver {
                family,
                holder,
                silent_ms,
                ..
            } => {
                write!(f, "release lock {family} is held by ")?;
                match holder {
                    Some(holder) => write!(f, "{holder}")?,
                    None => write!(f, "an entry shipmate cannot read")?,
                }
                write!(
                    f,
                    ", silent for {}: a release died holding it",
                    ago(*silent_ms)
                )
            }
            Finding::NoLeftoverHook { service } => {
                write!(f, "no PAUSE hook left by shipmate on service {service}")
            }
            Finding::LeftoverHook {
                service,
                release_id,
            } => write!(
                f,
                "service {service} has a PAUSE hook at {PAUSE_STAGE} left by shipmate release {release_id}"
            ),
            Finding::Unchecked { check, error } => {
                write!(f, "cannot check the {}: {error}", check.replace('_', " "))
            }
        }
    }
}

/// One check: what it found, and for which service (`None`: the whole release).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub service: Option<String>,
    pub finding: Finding,
}

impl Check {
    pub fn status(&self) -> CheckStatus {
        self.finding.status()
    }
}

/// Every check of `shipmate doctor`, in the order they ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub cluster: String,
    pub image: String,
    pub checks: Vec<Check>,
}

impl Diagnosis {
    pub fn count(&self, status: CheckStatus) -> usize {
        self.checks.iter().filter(|c| c.status() == status).count()
    }

    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.count(CheckStatus::Fail) > 0
    }
}

/// Whether tasks of this service run on Fargate: its launch type or capacity providers, else
/// (the cluster's default strategy) what the task definition requires.
pub fn on_fargate(service: &ServiceView, td: &TaskDefinitionView) -> bool {
    if let Some(launch_type) = &service.launch_type {
        return launch_type == "FARGATE";
    }
    if !service.capacity.is_empty() {
        return service
            .capacity
            .iter()
            .all(|item| item.capacity_provider.starts_with("FARGATE"));
    }
    td.requires_compatibilities.iter().any(|c| c == "FARGATE")
}

/// Each container's image once the release moved `moved` to `image`.
pub fn images_after<'a>(
    td: &'a TaskDefinitionView,
    moved: &[String],
    image: &'a str,
) -> Vec<(&'a str, &'a str)> {
    td.containers
        .iter()
        .map(|c| {
            let after = if moved.contains(&c.name) {
                image
            } else {
                c.image.as_str()
            };
            (c.name.as_str(), after)
        })
        .collect()
}

/// Whether the task execution role is there where ECS needs it: awslogs and private ECR images
/// on Fargate (on EC2 the container instance's role does both), secrets everywhere.
pub fn execution_role_check(
    td: &TaskDefinitionView,
    fargate: bool,
    images: &[(&str, &str)],
) -> Finding {
    if let Some(role) = &td.execution_role_arn {
        return Finding::ExecutionRoleSet { role: role.clone() };
    }
    let mut needs = Vec::new();
    for container in &td.containers {
        let logs_awslogs = container
            .logs
            .as_ref()
            .is_some_and(|logs| logs.driver == "awslogs");
        if fargate && logs_awslogs {
            needs.push(RoleNeed::Awslogs(container.name.clone()));
        }
        let ecr = images
            .iter()
            .any(|(name, image)| *name == container.name && ecr_image(image).is_some());
        if fargate && ecr {
            needs.push(RoleNeed::PrivateRegistry(container.name.clone()));
        }
        if container.secrets {
            needs.push(RoleNeed::Secrets(container.name.clone()));
        }
    }
    if needs.is_empty() {
        Finding::ExecutionRoleNotNeeded {
            task_definition: short_arn(&td.arn).to_owned(),
        }
    } else {
        Finding::ExecutionRoleMissing {
            task_definition: short_arn(&td.arn).to_owned(),
            needs,
        }
    }
}

/// `family:revision` of a task-definition ARN.
pub fn short_arn(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Whether the release's image can be pulled, as far as shipmate can tell from here.
pub fn image_check(image: &str, source: &ImageSource) -> Finding {
    match source {
        ImageSource::LocalStore {
            endpoint,
            images: Ok(images),
        } => {
            if images.iter().any(|known| known == image) {
                Finding::ImageInStore {
                    image: image.to_owned(),
                    endpoint: endpoint.clone(),
                }
            } else {
                Finding::ImageNotInStore {
                    image: image.to_owned(),
                    endpoint: endpoint.clone(),
                }
            }
        }
        ImageSource::LocalStore {
            endpoint,
            images: Err(error),
        } => Finding::ImageStoreUnreadable {
            endpoint: endpoint.clone(),
            error: error.clone(),
        },
        ImageSource::Registries => match ecr_image(image) {
            Some(ecr) => Finding::ImageInEcr {
                image: image.to_owned(),
                ecr,
            },
            None => Finding::ImageNotChecked {
                image: image.to_owned(),
            },
        },
    }
}

/// The service's network as the migration task gets it (RunTask copies it), and what it means
/// for pulling the images.
pub fn network_check(
    service: &ServiceView,
    td: &TaskDefinitionView,
    fargate: bool,
    images: &[(&str, &str)],
    source: &ImageSource,
) -> Finding {
    let mode = td
        .network_mode
        .clone()
        .unwrap_or_else(|| if fargate { "awsvpc" } else { "bridge" }.to_owned());
    if mode != "awsvpc" {
        return Finding::NetworkNotAwsvpc { mode };
    }
    let Some(network) = &service.network else {
        return Finding::NetworkMissing;
    };
    if network.subnets.is_empty() {
        return Finding::NoSubnets;
    }
    let subnets = network.subnets.clone();
    let local = matches!(source, ImageSource::LocalStore { .. });
    let public_ip = network.assign_public_ip.as_deref() == Some("ENABLED");
    if !local && !public_ip {
        return Finding::PrivateSubnets {
            subnets,
            ecr: images.iter().any(|(_, image)| ecr_image(image).is_some()),
        };
    }
    if network.security_groups.is_empty() {
        return Finding::NoSecurityGroups { subnets };
    }
    Finding::NetworkFine {
        subnets,
        public_ip,
        local,
    }
}

/// The awslogs log groups the containers of `td` send to, in container order, one per group.
pub fn awslogs_groups(td: &TaskDefinitionView) -> Vec<(String, &LogSettings)> {
    let mut groups: Vec<(String, &LogSettings)> = Vec::new();
    for container in &td.containers {
        let Some(logs) = container
            .logs
            .as_ref()
            .filter(|l| l.driver == "awslogs" && l.group.is_some())
        else {
            continue;
        };
        if !groups.iter().any(|(_, known)| known.group == logs.group) {
            groups.push((container.name.clone(), logs));
        }
    }
    groups
}

/// The log group check of one group, given the groups DescribeLogGroups found with its name
/// as prefix (a prefix: only an exact match counts).
pub fn log_group_check(
    td: &TaskDefinitionView,
    container: &str,
    logs: &LogSettings,
    found: &[String],
) -> Finding {
    let group = logs.group.clone().unwrap_or_default();
    if logs.create_group {
        Finding::LogGroupCreatedOnStart {
            group,
            container: container.to_owned(),
        }
    } else if found.contains(&group) {
        Finding::LogGroupFound {
            group,
            container: container.to_owned(),
        }
    } else {
        Finding::LogGroupMissing {
            group,
            container: container.to_owned(),
            task_definition: short_arn(&td.arn).to_owned(),
        }
    }
}

/// The release lock: free, held by a live release (a heartbeat within half the lease: holders
/// beat four times a lease), or left by a release that died holding it.
pub fn lock_check(lock: &LockView, lease_ms: i64) -> Finding {
    let Some(entry) = lock.open.first() else {
        return Finding::LockFree {
            family: lock.family.clone(),
        };
    };
    let last_sign = entry
        .record
        .as_ref()
        .and_then(|r| r.heartbeat)
        .or(entry.registered_at)
        .unwrap_or(lock.read_at);
    let silent_ms = lock.read_at.saturating_sub(last_sign).max(0);
    match lock.holder() {
        Some(holder) if silent_ms <= lease_ms / 2 => Finding::LockHeld {
            family: lock.family.clone(),
            holder,
            silent_ms,
        },
        holder => Finding::LockLeftOver {
            family: lock.family.clone(),
            holder,
            silent_ms,
            lease_ms,
            migrating: lock.holder_migrating,
        },
    }
}

/// shipmate's own PAUSE hook left on a service by a release that did not finish.
pub fn hook_check(service: &str, shape: &DeploymentShape) -> Finding {
    match shape.our_hooks().find_map(|hook| hook.release_id()) {
        Some(release_id) => Finding::LeftoverHook {
            service: service.to_owned(),
            release_id,
        },
        None => Finding::NoLeftoverHook {
            service: service.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::LifecycleHookView;
    use crate::ledger::{Entry, Kind, Record};
    use crate::plan::{CapacityItem, ContainerChoice, NetworkView};

    const ECR: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/web:v2";

    fn td(role: Option<&str>, containers: Vec<ContainerChoice>) -> TaskDefinitionView {
        TaskDefinitionView {
            arn: "arn:aws:ecs:eu-west-1:1:task-definition/web:7".to_owned(),
            family: "web".to_owned(),
            revision: 7,
            containers,
            cpu: None,
            memory: None,
            execution_role_arn: role.map(str::to_owned),
            network_mode: Some("awsvpc".to_owned()),
            requires_compatibilities: vec!["FARGATE".to_owned()],
            unknown_members: Vec::new(),
        }
    }

    fn container(name: &str, image: &str, awslogs: bool, secrets: bool) -> ContainerChoice {
        ContainerChoice {
            name: name.to_owned(),
            essential: true,
            image: image.to_owned(),
            logs: awslogs.then(|| LogSettings {
                driver: "awslogs".to_owned(),
                group: Some("/ecs/web".to_owned()),
                stream_prefix: Some("ecs".to_owned()),
                create_group: false,
            }),
            secrets,
        }
    }

    #[test]
    fn ecr_uris() {
        let ecr = ecr_image(ECR).unwrap();
        assert_eq!(
            (
                ecr.account.as_str(),
                ecr.region.as_str(),
                ecr.repository.as_str(),
                ecr.image_id.as_str()
            ),
            ("123456789012", "eu-west-1", "shop/web", "imageTag=v2")
        );
        let digest = ecr_image("1.dkr.ecr.cn-north-1.amazonaws.com.cn/web@sha256:ab").unwrap();
        assert_eq!(digest.image_id, "imageDigest=sha256:ab");
        assert_eq!(digest.region, "cn-north-1");
        assert_eq!(
            ecr_image("1.dkr.ecr.us-east-1.amazonaws.com/web")
                .unwrap()
                .image_id,
            "imageTag=latest"
        );
        for other in [
            "web:2",
            "library/web:2",
            "public.ecr.aws/nginx/nginx:1",
            "ghcr.io/org/web:2",
            "localhost:5000/web:2",
            "abc.dkr.ecr.us-east-1.amazonaws.com/web:2",
        ] {
            assert_eq!(ecr_image(other), None, "{other}");
        }
    }

    #[test]
    fn execution_role_table() {
        // (fargate, awslogs, image, secrets, role) → how many needs (0: none), `None`: set.
        type Case<'a> = (bool, bool, &'a str, bool, Option<&'a str>, Option<usize>);
        let cases: &[Case] = &[
            (true, true, "web:2", false, None, Some(1)),
            (true, false, ECR, false, None, Some(1)),
            (true, true, ECR, true, None, Some(3)),
            (true, false, "web:2", false, None, Some(0)),
            (false, true, ECR, false, None, Some(0)),
            (false, false, "web:2", true, None, Some(1)),
            (
                true,
                true,
                ECR,
                true,
                Some("arn:aws:iam::1:role/exec"),
                None,
            ),
        ];
        for (fargate, awslogs, image, secrets, role, needs) in cases {
            let td = td(*role, vec![container("app", image, *awslogs, *secrets)]);
            let found = execution_role_check(&td, *fargate, &[("app", image)]);
            match (needs, &found) {
                (None, Finding::ExecutionRoleSet { .. }) => {}
                (Some(0), Finding::ExecutionRoleNotNeeded { .. }) => {
                    assert_eq!(found.status(), CheckStatus::Pass);
                }
                (Some(n), Finding::ExecutionRoleMissing { needs, .. }) => {
                    assert_eq!(needs.len(), *n, "{found}");
                    assert_eq!(found.status(), CheckStatus::Fail);
                }
                _ => panic!("{fargate} {awslogs} {image} {secrets} {role:?}: {found:?}"),
            }
        }
    }

    #[test]
    fn fargate_from_the_service_then_the_task_definition() {
        let td = td(None, Vec::new());
        let mut service = ServiceView::default();
        assert!(on_fargate(&service, &td), "requiresCompatibilities");
        service.launch_type = Some("EC2".to_owned());
        assert!(!on_fargate(&service, &td));
        service.launch_type = None;
        service.capacity = vec![CapacityItem {
            capacity_provider: "FARGATE_SPOT".to_owned(),
            weight: 1,
            base: 0,
        }];
        assert!(on_fargate(&service, &td));
    }

    #[test]
    fn image_table() {
        let local = |images: Result<Vec<String>, String>| ImageSource::LocalStore {
            endpoint: "http://127.0.0.1:4590".to_owned(),
            images,
        };
        let cases = [
            (
                "web:2",
                local(Ok(vec!["web:2".to_owned()])),
                "image",
                CheckStatus::Pass,
            ),
            (
                "web:3",
                local(Ok(vec!["web:2".to_owned()])),
                "image",
                CheckStatus::Fail,
            ),
            (
                "web:2",
                local(Err("refused".to_owned())),
                "",
                CheckStatus::Warn,
            ),
            (ECR, ImageSource::Registries, "", CheckStatus::Warn),
            ("nginx:1", ImageSource::Registries, "", CheckStatus::Warn),
        ];
        for (image, source, _, status) in cases {
            let found = image_check(image, &source);
            assert_eq!(found.name(), "image");
            assert_eq!(found.status(), status, "{image}: {found}");
        }
        assert!(matches!(
            image_check(ECR, &ImageSource::Registries),
            Finding::ImageInEcr { .. }
        ));
    }

    #[test]
    fn network_table() {
        let network = |public: Option<&str>, groups: &[&str]| {
            Some(NetworkView {
                subnets: vec!["subnet-1".to_owned()],
                security_groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                assign_public_ip: public.map(str::to_owned),
            })
        };
        let local = ImageSource::LocalStore {
            endpoint: "http://127.0.0.1:4590".to_owned(),
            images: Ok(Vec::new()),
        };
        let aws = ImageSource::Registries;
        let td = td(None, vec![container("app", ECR, false, false)]);
        let images = [("app", ECR)];
        let check = |net: Option<NetworkView>, source: &ImageSource| {
            let service = ServiceView {
                network: net,
                ..ServiceView::default()
            };
            network_check(&service, &td, true, &images, source)
        };
        assert_eq!(
            check(network(Some("DISABLED"), &["sg-1"]), &aws),
            Finding::PrivateSubnets {
                subnets: vec!["subnet-1".to_owned()],
                ecr: true
            }
        );
        assert_eq!(
            check(network(None, &["sg-1"]), &aws).status(),
            CheckStatus::Warn
        );
        assert_eq!(
            check(network(Some("ENABLED"), &["sg-1"]), &aws).status(),
            CheckStatus::Pass
        );
        assert_eq!(
            check(network(Some("DISABLED"), &["sg-1"]), &local).status(),
            CheckStatus::Pass
        );
        assert!(matches!(
            check(network(Some("ENABLED"), &[]), &aws),
            Finding::NoSecurityGroups { .. }
        ));
        assert_eq!(check(None, &aws), Finding::NetworkMissing);
        let mut no_subnets = network(Some("ENABLED"), &["sg-1"]);
        no_subnets.as_mut().unwrap().subnets.clear();
        assert_eq!(check(no_subnets, &aws), Finding::NoSubnets);
        let mut bridge = td.clone();
        bridge.network_mode = Some("bridge".to_owned());
        assert_eq!(
            network_check(&ServiceView::default(), &bridge, false, &images, &aws).status(),
            CheckStatus::Pass
        );
    }

    #[test]
    fn log_groups_exact_match_unless_created_on_start() {
        let mut td = td(
            None,
            vec![
                container("app", "web:2", true, false),
                container("worker", "web:2", true, false),
            ],
        );
        let groups = awslogs_groups(&td);
        assert_eq!(groups.len(), 1, "one check per group");
        let (name, logs) = &groups[0];
        let found = |names: &[&str]| {
            log_group_check(
                &td,
                name,
                logs,
                &names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(found(&["/ecs/web"]).status(), CheckStatus::Pass);
        assert_eq!(found(&["/ecs/web-old"]).status(), CheckStatus::Fail);
        assert_eq!(found(&[]).status(), CheckStatus::Fail);
        td.containers[0].logs.as_mut().unwrap().create_group = true;
        let groups = awslogs_groups(&td);
        let (name, logs) = &groups[0];
        assert!(matches!(
            log_group_check(&td, name, logs, &[]),
            Finding::LogGroupCreatedOnStart { .. }
        ));
    }

    #[test]
    fn controller_statuses() {
        let status = |controller: &str, migrate_only: bool| {
            Finding::Controller {
                service: "web".to_owned(),
                controller: controller.to_owned(),
                migrate_only,
            }
            .status()
        };
        assert_eq!(status("ECS", false), CheckStatus::Pass);
        assert_eq!(status("CODE_DEPLOY", false), CheckStatus::Warn);
        assert_eq!(status("CODE_DEPLOY", true), CheckStatus::Pass);
        assert_eq!(status("EXTERNAL", false), CheckStatus::Fail);
        assert_eq!(status("EXTERNAL", true), CheckStatus::Fail);
    }

    #[test]
    fn lock_table() {
        const LEASE: i64 = 300_000;
        let entry = |heartbeat: Option<i64>, registered_at: Option<i64>| {
            let mut record = Record::new("r-1", Kind::Deploy, "prod", &["web".to_owned()]);
            record.heartbeat = heartbeat;
            record.by = "ci@runner".to_owned();
            Entry {
                revision: 1,
                arn: "arn:aws:ecs:us-east-1:1:task-definition/shipmate-ledger-x:1".to_owned(),
                open: true,
                registered_at,
                record: Some(record),
            }
        };
        let lock = |open: Vec<Entry>| LockView {
            family: "shipmate-ledger-x".to_owned(),
            open,
            read_at: 1_000_000,
            holder_migrating: None,
        };
        assert_eq!(
            lock_check(&lock(Vec::new()), LEASE).status(),
            CheckStatus::Pass
        );
        // Heartbeats every quarter lease: a live holder beat within half of it.
        let live = lock_check(&lock(vec![entry(Some(1_000_000 - 60_000), None)]), LEASE);
        assert!(
            matches!(
                live,
                Finding::LockHeld {
                    silent_ms: 60_000,
                    ..
                }
            ),
            "{live:?}"
        );
        assert_eq!(live.status(), CheckStatus::Warn);
        let silent = lock_check(&lock(vec![entry(Some(1_000_000 - 200_000), None)]), LEASE);
        assert!(matches!(
            silent,
            Finding::LockLeftOver {
                silent_ms: 200_000,
                ..
            }
        ));
        assert_eq!(silent.status(), CheckStatus::Fail);
        // No heartbeat written: the registration is its last sign of life.
        let never = lock_check(&lock(vec![entry(None, Some(0))]), LEASE);
        assert!(matches!(never, Finding::LockLeftOver { .. }));
        // An entry shipmate cannot read is not a live release either.
        let mut foreign = entry(None, Some(1_000_000));
        foreign.record = None;
        assert!(matches!(
            lock_check(&lock(vec![foreign]), LEASE),
            Finding::LockLeftOver { holder: None, .. }
        ));
    }

    #[test]
    fn leftover_hooks_warn() {
        let ours = LifecycleHookView {
            target_type: "PAUSE".to_owned(),
            stages: vec![PAUSE_STAGE.to_owned()],
            details: Some(r#"{"shipmate":"r-9"}"#.to_owned()),
            ..LifecycleHookView::default()
        };
        let theirs = LifecycleHookView {
            target_type: "PAUSE".to_owned(),
            ..LifecycleHookView::default()
        };
        let shape = |hooks: Vec<LifecycleHookView>| DeploymentShape {
            hooks,
            ..DeploymentShape::default()
        };
        assert_eq!(
            hook_check("web", &shape(vec![theirs.clone()])).status(),
            CheckStatus::Pass
        );
        let found = hook_check("web", &shape(vec![theirs, ours]));
        assert_eq!(
            found,
            Finding::LeftoverHook {
                service: "web".to_owned(),
                release_id: "r-9".to_owned()
            }
        );
        assert_eq!(found.status(), CheckStatus::Warn);
    }
}
