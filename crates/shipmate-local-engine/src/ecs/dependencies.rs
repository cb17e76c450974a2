//! Container start order (`dependsOn`), as the ECS agent resolves it: a container starts once
//! each dependency has reached its condition — START (it started), COMPLETE (it exited), SUCCESS
//! (it exited 0) or HEALTHY (its health check passed). Pure functions over what the supervisor
//! knows about each container.

use std::collections::BTreeMap;

use shipmate_local_api::ecs::ContainerDefinition;

/// A `dependsOn` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Condition {
    Start,
    Complete,
    Success,
    Healthy,
}

impl Condition {
    pub(crate) fn parse(condition: &str) -> Option<Condition> {
        match condition {
            "START" => Some(Condition::Start),
            "COMPLETE" => Some(Condition::Complete),
            "SUCCESS" => Some(Condition::Success),
            "HEALTHY" => Some(Condition::Healthy),
            _ => None,
        }
    }
}

/// One resolved `dependsOn` entry: the index of the container depended on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dependency {
    pub(crate) index: usize,
    pub(crate) condition: Condition,
}

/// What the supervisor knows of a container while the task starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    pub(crate) started: bool,
    pub(crate) exit_code: Option<i32>,
    pub(crate) healthy: bool,
    pub(crate) unhealthy: bool,
    /// Will never start (its own dependencies cannot be met, or the task is stopping).
    pub(crate) abandoned: bool,
}

/// Whether a container may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Readiness {
    Ready,
    Waiting,
    /// A dependency can no longer reach its condition.
    Never(String),
}

/// Whether a container with `dependencies` may start, given every container's progress.
pub(crate) fn readiness(
    dependencies: &[Dependency],
    progress: &[Progress],
    names: &[String],
) -> Readiness {
    let mut waiting = false;
    for dependency in dependencies {
        let state = &progress[dependency.index];
        let name = &names[dependency.index];
        let never = |why: String| {
            Readiness::Never(format!(
                "dependency condition {condition} of container {name} can not be met: {why}",
                condition = condition_name(dependency.condition),
            ))
        };
        if state.abandoned {
            return never("it was never started".to_owned());
        }
        match dependency.condition {
            Condition::Start if state.started => {}
            Condition::Complete if state.exit_code.is_some() => {}
            Condition::Success => match state.exit_code {
                Some(0) => {}
                Some(code) => return never(format!("it exited with {code}")),
                None => waiting = true,
            },
            Condition::Healthy if state.healthy => {}
            Condition::Healthy if state.unhealthy => return never("it is UNHEALTHY".to_owned()),
            Condition::Healthy if state.exit_code.is_some() => {
                return never("it exited before it was HEALTHY".to_owned());
            }
            _ => waiting = true,
        }
    }
    if waiting {
        Readiness::Waiting
    } else {
        Readiness::Ready
    }
}

fn condition_name(condition: Condition) -> &'static str {
    match condition {
        Condition::Start => "START",
        Condition::Complete => "COMPLETE",
        Condition::Success => "SUCCESS",
        Condition::Healthy => "HEALTHY",
    }
}

/// Checks the `dependsOn` of a registration as ECS does; `Err` is the ClientException message.
pub(crate) fn validate(containers: &[ContainerDefinition]) -> Result<(), String> {
    let by_name: BTreeMap<&str, &ContainerDefinition> = containers
        .iter()
        .filter_map(|c| Some((c.name.as_deref()?, c)))
        .collect();
    for container in containers {
        let name = container.name.as_deref().unwrap_or_default();
        for dependency in container.depends_on.iter().flatten() {
            let Some(target) = by_name.get(dependency.container_name.as_str()) else {
                return Err(format!(
                    "Container '{name}' depends on container '{}', which is not in the task definition.",
                    dependency.container_name
                ));
            };
            let Some(condition) = Condition::parse(&dependency.condition) else {
                return Err(format!(
                    "Invalid dependsOn condition '{}' in container '{name}': must be START, COMPLETE, SUCCESS or HEALTHY.",
                    dependency.condition
                ));
            };
            let essential = target.essential != Some(false);
            if essential && matches!(condition, Condition::Complete | Condition::Success) {
                return Err(format!(
                    "Container '{name}' depends on essential container '{}' with condition {}: COMPLETE and SUCCESS need a non-essential container.",
                    dependency.container_name, dependency.condition
                ));
            }
            if condition == Condition::Healthy && target.health_check.is_none() {
                return Err(format!(
                    "Container '{name}' depends on container '{}' being HEALTHY, but it has no healthCheck.",
                    dependency.container_name
                ));
            }
        }
    }
    // No cycles: repeatedly take containers whose dependencies are all taken.
    let mut placed: Vec<&str> = Vec::new();
    while placed.len() < containers.len() {
        let next = containers.iter().find(|c| {
            let name = c.name.as_deref().unwrap_or_default();
            !placed.contains(&name)
                && c.depends_on
                    .iter()
                    .flatten()
                    .all(|d| placed.contains(&d.container_name.as_str()))
        });
        match next {
            Some(container) => placed.push(container.name.as_deref().unwrap_or_default()),
            None => return Err("The container dependencies (dependsOn) form a cycle.".to_owned()),
        }
    }
    Ok(())
}

/// The `dependsOn` of `container` as indexes into `containers` (validated at registration).
pub(crate) fn resolve(
    container: &ContainerDefinition,
    containers: &[ContainerDefinition],
) -> Vec<Dependency> {
    container
        .depends_on
        .iter()
        .flatten()
        .filter_map(|dependency| {
            Some(Dependency {
                index: containers
                    .iter()
                    .position(|c| c.name.as_deref() == Some(dependency.container_name.as_str()))?,
                condition: Condition::parse(&dependency.condition)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shipmate_local_api::ecs::{ContainerDependency, HealthCheck};

    fn names() -> Vec<String> {
        vec!["migrate".into(), "web".into()]
    }

    fn on(condition: Condition) -> Vec<Dependency> {
        vec![Dependency {
            index: 0,
            condition,
        }]
    }

    fn progress(state: Progress) -> Vec<Progress> {
        vec![state, Progress::default()]
    }

    #[test]
    fn conditions_as_the_agent_resolves_them() {
        use Condition::*;
        let not_started = Progress::default();
        let running = Progress {
            started: true,
            ..Progress::default()
        };
        let exited = |code| Progress {
            started: true,
            exit_code: Some(code),
            ..Progress::default()
        };
        let healthy = Progress {
            started: true,
            healthy: true,
            ..Progress::default()
        };
        let unhealthy = Progress {
            started: true,
            unhealthy: true,
            ..Progress::default()
        };
        let cases = [
            (Start, not_started.clone(), "waiting"),
            (Start, running.clone(), "ready"),
            (Complete, running.clone(), "waiting"),
            (Complete, exited(3), "ready"),
            (Success, running.clone(), "waiting"),
            (Success, exited(0), "ready"),
            (Success, exited(1), "never"),
            (Healthy, running.clone(), "waiting"),
            (Healthy, healthy, "ready"),
            (Healthy, unhealthy, "never"),
            (Healthy, exited(0), "never"),
            (
                Start,
                Progress {
                    abandoned: true,
                    ..Progress::default()
                },
                "never",
            ),
        ];
        for (condition, state, expected) in cases {
            let got = match readiness(&on(condition), &progress(state.clone()), &names()) {
                Readiness::Ready => "ready",
                Readiness::Waiting => "waiting",
                Readiness::Never(_) => "never",
            };
            assert_eq!(got, expected, "{condition:?} {state:?}");
        }
        assert_eq!(
            readiness(&[], &progress(Progress::default()), &names()),
            Readiness::Ready
        );
        let Readiness::Never(why) = readiness(&on(Success), &progress(exited(2)), &names()) else {
            panic!("expected never");
        };
        assert_eq!(
            why,
            "dependency condition SUCCESS of container migrate can not be met: it exited with 2"
        );
    }

    fn definition(name: &str, essential: bool, depends_on: &[(&str, &str)]) -> ContainerDefinition {
        ContainerDefinition {
            name: Some(name.into()),
            essential: Some(essential),
            depends_on: (!depends_on.is_empty()).then(|| {
                depends_on
                    .iter()
                    .map(|(container, condition)| ContainerDependency {
                        container_name: (*container).into(),
                        condition: (*condition).into(),
                    })
                    .collect()
            }),
            ..ContainerDefinition::default()
        }
    }

    #[test]
    fn registration_checks() {
        let ok = [
            definition("migrate", false, &[]),
            definition("web", true, &[("migrate", "SUCCESS")]),
        ];
        assert_eq!(validate(&ok), Ok(()));
        assert_eq!(resolve(&ok[1], &ok), on(Condition::Success));
        let bad: [&[ContainerDefinition]; 5] = [
            &[definition("web", true, &[("ghost", "START")])],
            &[
                definition("a", false, &[]),
                definition("web", true, &[("a", "LATER")]),
            ],
            &[
                definition("a", true, &[]),
                definition("web", true, &[("a", "SUCCESS")]),
            ],
            &[
                definition("a", true, &[]),
                definition("web", true, &[("a", "HEALTHY")]),
            ],
            &[
                definition("a", true, &[("web", "START")]),
                definition("web", true, &[("a", "START")]),
            ],
        ];
        for containers in bad {
            assert!(validate(containers).is_err(), "{containers:?}");
        }
        let mut checked = definition("a", true, &[]);
        checked.health_check = Some(HealthCheck {
            command: vec!["CMD".into(), "true".into()],
            ..HealthCheck::default()
        });
        assert_eq!(
            validate(&[checked, definition("web", true, &[("a", "HEALTHY")])]),
            Ok(())
        );
    }
}
