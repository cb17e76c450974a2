//! Container health checks, run as the ECS agent (Docker) runs them: the first probe one
//! `interval` after the container starts, then every `interval`; a probe passes when the command
//! exits 0 within `timeout`; `retries` consecutive failures make the container UNHEALTHY; failures
//! during `startPeriod` do not count until a probe has passed once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use shipmate_local_api::ecs::HealthCheck;
use tokio::sync::mpsc::UnboundedSender;

use super::Ecs;
use super::supervisor::{ContainerEvent, die_with_parent};

/// A container's health as `containers[].healthStatus` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    Unknown,
    Healthy,
    Unhealthy,
}

impl Health {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "UNKNOWN",
            Health::Healthy => "HEALTHY",
            Health::Unhealthy => "UNHEALTHY",
        }
    }
}

/// A health check's settings with ECS's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) argv: Vec<String>,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) start_period: Duration,
}

impl Settings {
    pub(crate) fn from_check(check: &HealthCheck) -> Settings {
        let seconds = |value: Option<i32>, default: u64| {
            Duration::from_secs(value.map_or(default, |v| v.max(0) as u64))
        };
        let argv = match check.command.split_first() {
            Some((kind, rest)) if kind == "CMD-SHELL" => {
                vec!["/bin/sh".to_owned(), "-c".to_owned(), rest.join(" ")]
            }
            Some((kind, rest)) if kind == "CMD" => rest.to_vec(),
            _ => check.command.clone(),
        };
        Settings {
            argv,
            interval: seconds(check.interval, 30),
            timeout: seconds(check.timeout, 5),
            retries: check.retries.map_or(3, |r| r.max(1) as u32),
            start_period: seconds(check.start_period, 0),
        }
    }
}

/// Turns probe results into health, as Docker counts them.
#[derive(Debug, Clone)]
pub(crate) struct Tracker {
    retries: u32,
    start_period: Duration,
    failures: u32,
    passed_once: bool,
    health: Health,
}

impl Tracker {
    pub(crate) fn new(settings: &Settings) -> Tracker {
        Tracker {
            retries: settings.retries,
            start_period: settings.start_period,
            failures: 0,
            passed_once: false,
            health: Health::Unknown,
        }
    }

    /// Records one probe `since_start` after the container started; returns the new health if
    /// it changed.
    pub(crate) fn record(&mut self, passed: bool, since_start: Duration) -> Option<Health> {
        let before = self.health;
        if passed {
            self.passed_once = true;
            self.failures = 0;
            self.health = Health::Healthy;
        } else if self.passed_once || since_start >= self.start_period {
            self.failures += 1;
            if self.failures >= self.retries {
                self.health = Health::Unhealthy;
            }
        }
        (self.health != before).then_some(self.health)
    }
}

/// The task's `healthStatus` from its containers': UNHEALTHY if an essential container is,
/// HEALTHY if every essential container with a health check is (and there is one), else UNKNOWN.
pub(crate) fn task_health(containers: &[(bool, Option<&str>)]) -> Health {
    let checked: Vec<&str> = containers
        .iter()
        .filter(|(essential, _)| *essential)
        .filter_map(|(_, health)| *health)
        .collect();
    if checked.contains(&"UNHEALTHY") {
        Health::Unhealthy
    } else if !checked.is_empty() && checked.iter().all(|h| *h == "HEALTHY") {
        Health::Healthy
    } else {
        Health::Unknown
    }
}

/// What a probe needs from its container.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub(crate) task_id: String,
    pub(crate) index: usize,
    /// Essential-ness of every container of the task (the task's health depends on all).
    pub(crate) essentials: Vec<bool>,
    pub(crate) settings: Settings,
    pub(crate) environment: BTreeMap<String, String>,
    pub(crate) directory: PathBuf,
}

/// Runs a container's probes until the returned handle is aborted.
pub(crate) fn spawn(
    ecs: Ecs,
    probe: Probe,
    events: UnboundedSender<ContainerEvent>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut tracker = Tracker::new(&probe.settings);
        loop {
            tokio::time::sleep(probe.settings.interval).await;
            let passed = run_probe(&probe).await;
            if let Some(health) = tracker.record(passed, started.elapsed()) {
                ecs.set_container_health(&probe.task_id, probe.index, health, &probe.essentials);
                let index = probe.index;
                let _ = events.send(match health {
                    Health::Unhealthy => ContainerEvent::Unhealthy { index },
                    _ => ContainerEvent::Healthy { index },
                });
            }
        }
    })
}

async fn run_probe(probe: &Probe) -> bool {
    let Some((program, args)) = probe.settings.argv.split_first() else {
        return false;
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(&probe.environment)
        .current_dir(&probe.directory)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    die_with_parent(&mut command);
    let Ok(mut child) = command.spawn() else {
        return false;
    };
    match tokio::time::timeout(probe.settings.timeout, child.wait()).await {
        Ok(Ok(status)) => status.success(),
        _ => {
            if let Some(pid) = child.id() {
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            let _ = child.wait().await;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(retries: u32, start_period: u64) -> Settings {
        Settings {
            argv: vec!["true".into()],
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            retries,
            start_period: Duration::from_secs(start_period),
        }
    }

    #[test]
    fn defaults_and_shell_form() {
        let check = HealthCheck {
            command: vec![
                "CMD-SHELL".into(),
                "curl -f http://$SHIPMATE_TASK_IP/ || exit 1".into(),
            ],
            ..HealthCheck::default()
        };
        let s = Settings::from_check(&check);
        assert_eq!(s.argv[..2], ["/bin/sh".to_owned(), "-c".to_owned()]);
        assert_eq!(s.argv[2], "curl -f http://$SHIPMATE_TASK_IP/ || exit 1");
        assert_eq!(
            (s.interval, s.timeout, s.retries, s.start_period),
            (
                Duration::from_secs(30),
                Duration::from_secs(5),
                3,
                Duration::ZERO
            )
        );
        let exec = HealthCheck {
            command: vec!["CMD".into(), "test".into(), "-f".into(), "ready".into()],
            interval: Some(5),
            retries: Some(1),
            ..HealthCheck::default()
        };
        assert_eq!(Settings::from_check(&exec).argv, ["test", "-f", "ready"]);
    }

    #[test]
    fn consecutive_failures_make_a_container_unhealthy() {
        let s = |t: u64| Duration::from_secs(t);
        let mut tracker = Tracker::new(&settings(3, 0));
        assert_eq!(tracker.record(false, s(5)), None);
        assert_eq!(tracker.record(false, s(10)), None);
        assert_eq!(tracker.record(true, s(15)), Some(Health::Healthy));
        assert_eq!(tracker.record(false, s(20)), None);
        assert_eq!(tracker.record(false, s(25)), None);
        assert_eq!(tracker.record(false, s(30)), Some(Health::Unhealthy));
        assert_eq!(tracker.record(true, s(35)), Some(Health::Healthy));
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_until_a_probe_passes() {
        let s = |t: u64| Duration::from_secs(t);
        let mut tracker = Tracker::new(&settings(1, 20));
        assert_eq!(tracker.record(false, s(5)), None);
        assert_eq!(tracker.record(false, s(10)), None);
        assert_eq!(tracker.record(true, s(15)), Some(Health::Healthy));
        assert_eq!(tracker.record(false, s(16)), Some(Health::Unhealthy));
        let mut late = Tracker::new(&settings(1, 20));
        assert_eq!(late.record(false, s(25)), Some(Health::Unhealthy));
    }

    #[test]
    fn task_health_follows_essential_containers() {
        assert_eq!(task_health(&[(true, None)]), Health::Unknown);
        assert_eq!(task_health(&[(true, Some("HEALTHY"))]), Health::Healthy);
        assert_eq!(
            task_health(&[(true, Some("HEALTHY")), (true, Some("UNKNOWN"))]),
            Health::Unknown
        );
        assert_eq!(
            task_health(&[(true, Some("HEALTHY")), (false, Some("UNHEALTHY"))]),
            Health::Healthy
        );
        assert_eq!(
            task_health(&[(true, Some("UNHEALTHY")), (true, Some("HEALTHY"))]),
            Health::Unhealthy
        );
    }
}
