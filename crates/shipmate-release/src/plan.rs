//! The choices a release makes before it changes anything: which container gets the image, how
//! the migration is launched, and the plan `shipmate plan` shows. Pure: the adapter feeds in
//! what it read from ECS.

use std::time::Duration;

use serde::Serialize;

/// A container of the service's task definition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerChoice {
    pub name: String,
    pub essential: bool,
    pub image: String,
    /// Its `logConfiguration`, when it has one.
    pub logs: Option<LogSettings>,
    /// It has `secrets` or `repositoryCredentials` (read by the task execution role).
    pub secrets: bool,
}

/// A container's `logConfiguration`, as far as following its awslogs stream needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSettings {
    pub driver: String,
    pub group: Option<String>,
    pub stream_prefix: Option<String>,
    /// `awslogs-create-group` is `true`: the group is created when the task starts.
    pub create_group: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContainerError {
    #[error("task definition `{task_definition}` has no container named `{requested}` (containers: {})", choices.join(", "))]
    NotFound {
        task_definition: String,
        requested: String,
        choices: Vec<String>,
    },
    #[error("task definition `{task_definition}` has {} essential containers, so the one to release is ambiguous: {}", choices.len(), choices.join(", "))]
    Ambiguous {
        task_definition: String,
        choices: Vec<String>,
    },
    #[error("task definition `{task_definition}` has no essential container")]
    NoEssential { task_definition: String },
}

/// The requested container, or else the only essential one.
pub fn choose_container<'a>(
    task_definition: &str,
    containers: &'a [ContainerChoice],
    requested: Option<&str>,
) -> Result<&'a ContainerChoice, ContainerError> {
    if let Some(requested) = requested {
        return containers
            .iter()
            .find(|c| c.name == requested)
            .ok_or_else(|| ContainerError::NotFound {
                task_definition: task_definition.to_owned(),
                requested: requested.to_owned(),
                choices: containers.iter().map(|c| c.name.clone()).collect(),
            });
    }
    let essential: Vec<&ContainerChoice> = containers.iter().filter(|c| c.essential).collect();
    match essential.as_slice() {
        [only] => Ok(only),
        [] => Err(ContainerError::NoEssential {
            task_definition: task_definition.to_owned(),
        }),
        many => Err(ContainerError::Ambiguous {
            task_definition: task_definition.to_owned(),
            choices: many.iter().map(|c| c.name.clone()).collect(),
        }),
    }
}

/// The containers of a task definition a release gives its image: `--container` when given;
/// else every container whose image is from the released image's repository (web and a Celery
/// worker built from one image both move; a log router or a proxy keeps its image); else, when
/// none is (the repository itself changes), the only essential container.
pub fn containers_to_release<'a>(
    task_definition: &str,
    containers: &'a [ContainerChoice],
    image: &str,
    requested: Option<&str>,
) -> Result<Vec<&'a ContainerChoice>, ContainerError> {
    if requested.is_some() {
        return choose_container(task_definition, containers, requested).map(|c| vec![c]);
    }
    let repository = crate::ledger::image_repository(image);
    let same: Vec<&ContainerChoice> = containers
        .iter()
        .filter(|c| crate::ledger::image_repository(&c.image) == repository)
        .collect();
    if same.is_empty() {
        choose_container(task_definition, containers, None).map(|c| vec![c])
    } else {
        Ok(same)
    }
}

/// The container a one-off command runs in, among those that get the release's image: the
/// first essential one (the others of the task still start, with their own commands).
pub fn command_container<'a>(moved: &[&'a ContainerChoice]) -> Option<&'a ContainerChoice> {
    moved
        .iter()
        .find(|c| c.essential)
        .or_else(|| moved.first())
        .copied()
}

/// Task-level CPU in units, as ECS takes it: `1024` or `1 vCPU` (`0.25 vcpu`, …).
pub fn cpu_units(text: &str) -> Option<u32> {
    scaled(text, &["vcpu"], 1024)
}

/// Task-level memory in MiB, as ECS takes it: `2048` or `2 GB` (`0.5 gb`, …).
pub fn memory_mib(text: &str) -> Option<u32> {
    scaled(text, &["gb"], 1024)
}

fn scaled(text: &str, units: &[&str], factor: u32) -> Option<u32> {
    let text = text.trim();
    if let Ok(plain) = text.parse::<u32>() {
        return (plain > 0).then_some(plain);
    }
    let lower = text.to_ascii_lowercase();
    let number = units
        .iter()
        .find_map(|unit| lower.strip_suffix(unit))?
        .trim()
        .parse::<f64>()
        .ok()?;
    let value = number * f64::from(factor);
    // Checked above to be a whole number within u32's range.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (value >= 1.0 && value <= f64::from(u32::MAX) && value.fract() == 0.0).then_some(value as u32)
}

/// Task-level cpu and memory a Fargate task may have (vCPU units → MiB), as AWS documents them.
pub fn fargate_memory_allowed(cpu: u32, memory: u32) -> bool {
    let steps =
        |from: u32, to: u32, step: u32| (from..=to).step_by(step as usize).any(|m| m == memory);
    match cpu {
        256 => [512, 1024, 2048].contains(&memory),
        512 => steps(1024, 4096, 1024),
        1024 => steps(2048, 8192, 1024),
        2048 => steps(4096, 16384, 1024),
        4096 => steps(8192, 30720, 1024),
        8192 => steps(16384, 61440, 4096),
        16384 => steps(32768, 122_880, 8192),
        _ => false,
    }
}

/// The memory Fargate offers for `cpu` units, in words, for error messages.
fn fargate_memory_choices(cpu: u32) -> Option<&'static str> {
    Some(match cpu {
        256 => "512, 1024 or 2048 MiB",
        512 => "1024 to 4096 MiB in steps of 1024",
        1024 => "2048 to 8192 MiB in steps of 1024",
        2048 => "4096 to 16384 MiB in steps of 1024",
        4096 => "8192 to 30720 MiB in steps of 1024",
        8192 => "16384 to 61440 MiB in steps of 4096",
        16384 => "32768 to 122880 MiB in steps of 8192",
        _ => return None,
    })
}

impl Launch {
    /// Whether tasks launched this way run on Fargate (`None`: the cluster's default decides).
    pub fn is_fargate(&self) -> Option<bool> {
        match self {
            Launch::LaunchType { launch_type } => Some(launch_type == "FARGATE"),
            Launch::CapacityProviders { strategy } => Some(
                strategy
                    .iter()
                    .all(|item| item.capacity_provider.starts_with("FARGATE")),
            ),
            Launch::ClusterDefault => None,
        }
    }
}

/// Checks a one-off task's size on Fargate: `cpu` and `memory` are what the task will have
/// (overrides, else its task definition's); `None` where neither sets one.
pub fn check_fargate_size(cpu: Option<&str>, memory: Option<&str>) -> Result<(), String> {
    let (Some(cpu_text), Some(memory_text)) = (cpu, memory) else {
        return Err(
            "a Fargate task needs both a task-level cpu and memory; set the missing one (--migrate-task-cpu / --migrate-task-memory)"
                .to_owned(),
        );
    };
    let cpu = cpu_units(cpu_text).ok_or_else(|| {
        format!("task cpu `{cpu_text}` is not CPU units (1024) or vCPUs (1 vCPU)")
    })?;
    let memory = memory_mib(memory_text)
        .ok_or_else(|| format!("task memory `{memory_text}` is not MiB (2048) or GB (2 GB)"))?;
    if fargate_memory_allowed(cpu, memory) {
        return Ok(());
    }
    Err(match fargate_memory_choices(cpu) {
        Some(choices) => format!(
            "Fargate offers no task of {cpu} CPU units with {memory} MiB: with {cpu} units, memory is {choices}"
        ),
        None => format!(
            "Fargate offers no task of {cpu} CPU units: cpu is 256, 512, 1024, 2048, 4096, 8192 or 16384"
        ),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapacityItem {
    pub capacity_provider: String,
    pub weight: i32,
    pub base: i32,
}

/// How the migration task is launched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Launch {
    LaunchType {
        launch_type: String,
    },
    CapacityProviders {
        strategy: Vec<CapacityItem>,
    },
    /// Neither: the cluster's default capacity provider strategy applies.
    ClusterDefault,
}

/// The service's launch settings, minus Spot unless allowed: a migration interrupted by a Spot
/// reclaim half-way is the worst case for a schema change.
pub fn migration_launch(
    service_launch_type: Option<&str>,
    service_strategy: &[CapacityItem],
    launch_override: Option<&str>,
    allow_spot: bool,
) -> Launch {
    if let Some(launch_type) = launch_override {
        return Launch::LaunchType {
            launch_type: launch_type.to_owned(),
        };
    }
    if !service_strategy.is_empty() {
        if allow_spot {
            return Launch::CapacityProviders {
                strategy: service_strategy.to_vec(),
            };
        }
        let on_demand: Vec<CapacityItem> = service_strategy
            .iter()
            .filter(|item| item.capacity_provider != "FARGATE_SPOT")
            .cloned()
            .collect();
        let had_spot = on_demand.len() != service_strategy.len();
        if on_demand.is_empty() {
            return Launch::LaunchType {
                launch_type: "FARGATE".to_owned(),
            };
        }
        if had_spot && !on_demand.iter().any(|item| item.weight > 0) {
            // Only base capacity left: give the remaining providers weight so tasks can place.
            return Launch::CapacityProviders {
                strategy: on_demand
                    .into_iter()
                    .map(|item| CapacityItem { weight: 1, ..item })
                    .collect(),
            };
        }
        return Launch::CapacityProviders {
            strategy: on_demand,
        };
    }
    match service_launch_type {
        Some(launch_type) => Launch::LaunchType {
            launch_type: launch_type.to_owned(),
        },
        None => Launch::ClusterDefault,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NetworkView {
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: Option<String>,
}

/// What `shipmate deploy` would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub release_id: String,
    pub cluster: String,
    pub image: String,
    /// Per service: its revisions and which containers get the image.
    pub services: Vec<ServicePlan>,
    /// The order services go live in: each wave completes before the next starts.
    pub waves: Vec<Vec<String>>,
    /// Where the migration gates the release.
    pub gate: crate::config::Gate,
    /// `--migrate-only`: migrate and write CodeDeploy's artifacts, no deployment.
    pub migrate_only: bool,
    pub wait_until: crate::config::WaitUntil,
    pub migrate_command: Option<Vec<String>>,
    /// The service whose revision and network the migration uses.
    pub migrate_service: String,
    /// A separate migration task-definition family, when configured.
    pub migrate_family: Option<String>,
    pub migrate_cpu: Option<i32>,
    pub migrate_memory: Option<i32>,
    pub migrate_task_cpu: Option<String>,
    pub migrate_task_memory: Option<String>,
    /// The names of the environment variables the migration container gets (values are not
    /// shown: they may be credentials).
    pub migrate_environment: Vec<String>,
    pub migrate_task_role_arn: Option<String>,
    pub migrate_execution_role_arn: Option<String>,
    pub launch: Launch,
    #[serde(with = "millis")]
    pub migrate_timeout: Duration,
    #[serde(with = "millis")]
    pub deploy_timeout: Duration,
    #[serde(with = "millis")]
    pub poll_interval: Duration,
    pub rollback_on_failure: bool,
    pub post_deploy_command: Option<Vec<String>>,
    /// The ledger whose lock the release takes.
    pub lock_family: String,
    /// Who holds that lock now, if anyone.
    pub lock_holder: Option<crate::error::Holder>,
    /// Open entries in that ledger (the holder and those queued behind it).
    pub lock_queue: u32,
    /// `plan --pending`: the preset's plan, read by one read-only task from the release's
    /// revision.
    pub pending: Option<crate::preset::MigrationPlan>,
}

/// What `shipmate deploy` would do to one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServicePlan {
    pub service: String,
    /// The revision the new one is derived from (the service's desired one).
    pub task_definition_from: String,
    /// The revision that is live now (what `--rollback` would return to).
    pub live_task_definition: String,
    /// The revision deploy reuses because it already runs the image (nothing registered).
    pub reuses_revision: Option<String>,
    /// Every container, with its image before and after (the same when it keeps it).
    pub containers: Vec<ContainerPlan>,
    pub network: Option<NetworkView>,
    pub platform_version: Option<String>,
    pub desired_count: i32,
    /// ECS's deployment circuit breaker watches the rollout (else shipmate counts failed tasks).
    pub circuit_breaker: bool,
    /// Controller, strategy, bake time and lifecycle hooks (shipmate's leftover PAUSE hooks
    /// among them: the release removes them).
    pub deployment: crate::deployment::DeploymentShape,
    /// Why deploy would refuse this service before changing anything.
    pub refusal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerPlan {
    pub name: String,
    pub essential: bool,
    pub image_from: String,
    pub image_to: String,
}

/// Durations in JSON are integer milliseconds.
pub mod millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, essential: bool) -> ContainerChoice {
        ContainerChoice {
            name: name.to_owned(),
            essential,
            image: format!("{name}:1"),
            logs: None,
            secrets: false,
        }
    }

    #[test]
    fn containers_from_the_released_repository_move() {
        let container = |name: &str, essential: bool, image: &str| ContainerChoice {
            name: name.to_owned(),
            essential,
            image: image.to_owned(),
            logs: None,
            secrets: false,
        };
        let task = vec![
            container("web", true, "123.dkr.ecr/shop:41"),
            container("celery", true, "123.dkr.ecr/shop:41"),
            container("log-router", false, "public.ecr.aws/fluent-bit:2"),
            container("proxy", true, "envoy:1.30"),
        ];
        let names = |picked: Vec<&ContainerChoice>| {
            picked.iter().map(|c| c.name.clone()).collect::<Vec<_>>()
        };
        let moved = containers_to_release("td", &task, "123.dkr.ecr/shop:42", None).unwrap();
        assert_eq!(names(moved.clone()), ["web", "celery"]);
        assert_eq!(
            command_container(&moved).map(|c| c.name.as_str()),
            Some("web")
        );
        assert_eq!(
            names(
                containers_to_release("td", &task, "123.dkr.ecr/shop:42", Some("celery")).unwrap()
            ),
            ["celery"]
        );
        // A new repository: the only essential container, or an error naming the choices.
        let single = vec![
            container("app", true, "old/app:1"),
            container("xray", false, "xray:3"),
        ];
        assert_eq!(
            names(containers_to_release("td", &single, "new/app:2", None).unwrap()),
            ["app"]
        );
        assert!(matches!(
            containers_to_release("td", &task, "new/shop:1", None),
            Err(ContainerError::Ambiguous { .. })
        ));
    }

    #[test]
    fn fargate_sizes() {
        for (cpu, memory, allowed) in [
            (256, 512, true),
            (256, 4096, false),
            (512, 3072, true),
            (1024, 1024, false),
            (4096, 30720, true),
            (8192, 20480, true),
            (8192, 18432, false),
            (16384, 122_880, true),
            (300, 1024, false),
        ] {
            assert_eq!(
                fargate_memory_allowed(cpu, memory),
                allowed,
                "{cpu}/{memory}"
            );
        }
    }

    #[test]
    fn fargate_size_checks_name_the_choices() {
        assert_eq!(check_fargate_size(Some("1 vCPU"), Some("4096")), Ok(()));
        assert_eq!(
            check_fargate_size(Some("512"), Some("512")).unwrap_err(),
            "Fargate offers no task of 512 CPU units with 512 MiB: with 512 units, memory is 1024 to 4096 MiB in steps of 1024"
        );
        assert!(
            check_fargate_size(Some("300"), Some("1024"))
                .unwrap_err()
                .contains("cpu is 256, 512")
        );
        assert!(
            check_fargate_size(None, Some("1024"))
                .unwrap_err()
                .contains("both")
        );
        assert!(
            check_fargate_size(Some("1024"), Some("big"))
                .unwrap_err()
                .contains("`big`")
        );
        let fargate = Launch::LaunchType {
            launch_type: "FARGATE".to_owned(),
        };
        assert_eq!(fargate.is_fargate(), Some(true));
        assert_eq!(Launch::ClusterDefault.is_fargate(), None);
    }

    #[test]
    fn task_sizes_in_ecs_notations() {
        assert_eq!(cpu_units("1024"), Some(1024));
        assert_eq!(cpu_units("1 vCPU"), Some(1024));
        assert_eq!(cpu_units(".25 vcpu"), Some(256));
        assert_eq!(cpu_units("0"), None);
        assert_eq!(cpu_units("lots"), None);
        assert_eq!(memory_mib("2 GB"), Some(2048));
        assert_eq!(memory_mib("0.5GB"), Some(512));
        assert_eq!(memory_mib("3072"), Some(3072));
        assert_eq!(memory_mib("-1"), None);
        assert_eq!(memory_mib("1 TB"), None);
    }

    #[test]
    fn container_table() {
        let one = [c("app", true), c("xray", false)];
        let two = [c("app", true), c("worker", true)];
        assert_eq!(choose_container("web:1", &one, None).unwrap().name, "app");
        assert_eq!(
            choose_container("web:1", &one, Some("xray")).unwrap().name,
            "xray"
        );
        assert_eq!(
            choose_container("web:1", &two, None)
                .unwrap_err()
                .to_string(),
            "task definition `web:1` has 2 essential containers, so the one to release is ambiguous: app, worker"
        );
        assert_eq!(
            choose_container("web:1", &one, Some("nginx"))
                .unwrap_err()
                .to_string(),
            "task definition `web:1` has no container named `nginx` (containers: app, xray)"
        );
        assert_eq!(
            choose_container("web:1", &[c("a", false)], None).unwrap_err(),
            ContainerError::NoEssential {
                task_definition: "web:1".to_owned()
            }
        );
    }

    #[test]
    fn launch_table() {
        let item = |p: &str, w, b| CapacityItem {
            capacity_provider: p.to_owned(),
            weight: w,
            base: b,
        };
        let mixed = vec![item("FARGATE", 1, 1), item("FARGATE_SPOT", 4, 0)];
        let spot_only = vec![item("FARGATE_SPOT", 1, 0)];
        let base_only = vec![item("FARGATE", 0, 1), item("FARGATE_SPOT", 1, 0)];
        let lt = |t: &str| Launch::LaunchType {
            launch_type: t.to_owned(),
        };
        let cases = vec![
            (
                "override wins",
                migration_launch(Some("EC2"), &mixed, Some("FARGATE"), false),
                lt("FARGATE"),
            ),
            (
                "service launch type",
                migration_launch(Some("FARGATE"), &[], None, false),
                lt("FARGATE"),
            ),
            (
                "cluster default",
                migration_launch(None, &[], None, false),
                Launch::ClusterDefault,
            ),
            (
                "spot dropped",
                migration_launch(None, &mixed, None, false),
                Launch::CapacityProviders {
                    strategy: vec![item("FARGATE", 1, 1)],
                },
            ),
            (
                "spot only becomes FARGATE",
                migration_launch(None, &spot_only, None, false),
                lt("FARGATE"),
            ),
            (
                "spot allowed",
                migration_launch(None, &mixed, None, true),
                Launch::CapacityProviders {
                    strategy: mixed.clone(),
                },
            ),
            (
                "base-only remainder gets weight",
                migration_launch(None, &base_only, None, false),
                Launch::CapacityProviders {
                    strategy: vec![item("FARGATE", 1, 1)],
                },
            ),
        ];
        for (name, got, expected) in cases {
            assert_eq!(got, expected, "{name}");
        }
    }
}
