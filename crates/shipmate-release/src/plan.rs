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
}

/// A container's `logConfiguration`, as far as following its awslogs stream needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSettings {
    pub driver: String,
    pub group: Option<String>,
    pub stream_prefix: Option<String>,
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

/// One field of the task definition that the release changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub from: String,
    pub to: String,
}

/// What `shipmate deploy` would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub release_id: String,
    pub cluster: String,
    pub service: String,
    pub container: String,
    pub image_from: String,
    pub image_to: String,
    /// The revision the new one is derived from (the service's desired one).
    pub task_definition_from: String,
    /// The revision that is live now (what `--rollback` would return to).
    pub live_task_definition: String,
    /// The revision deploy reuses because it already runs the image (nothing registered).
    pub reuses_revision: Option<String>,
    pub changes: Vec<FieldChange>,
    pub migrate_command: Option<Vec<String>>,
    pub migrate_cpu: Option<i32>,
    pub migrate_memory: Option<i32>,
    pub launch: Launch,
    pub platform_version: Option<String>,
    pub network: Option<NetworkView>,
    pub desired_count: i32,
    /// ECS's deployment circuit breaker watches the rollout (else shipmate counts failed tasks).
    pub circuit_breaker: bool,
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
        }
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
