//! ECS's service throttle (DG/service-throttle-logic.html, reference ecs-deployments.md §5), as
//! pure functions: when a service's tasks keep going from PENDING to STOPPED without ever
//! reaching RUNNING, the scheduler waits longer and longer between launch attempts, up to 27
//! minutes, and says once that the service "is unable to consistently start tasks successfully".
//! A task of the service reaching RUNNING, or the service moving to another task definition, ends
//! the throttle. Tasks that reach RUNNING and then stop (crashes) never trigger it.
//!
//! ECS publishes no schedule; this one waits nothing for the first [`THRESHOLD`] - 1 failures in
//! a row, then `base`, `2 × base`, `4 × base`, … capped at [`MAX_DELAY`].

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::scheduler::TaskView;

/// Start failures in a row after which launches are spaced out.
pub(crate) const THRESHOLD: u32 = 3;
/// The longest wait between launch attempts, as ECS documents it.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(27 * 60);
/// The first wait unless configured otherwise (ECS's schedule is unpublished; a few seconds, as
/// in the reference's inference).
pub const DEFAULT_BASE: Duration = Duration::from_secs(5);

/// How long to wait before the next launch after `failures` start failures in a row.
pub(crate) fn launch_delay(failures: u32, base: Duration) -> Option<Duration> {
    let steps = failures.checked_sub(THRESHOLD)?;
    // The factor stops doubling at 2^31; the cap is reached long before for any real base.
    let factor = 1u32 << steps.min(31);
    Some(base.saturating_mul(factor).min(MAX_DELAY))
}

/// What the throttle remembers about a service (persisted with it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct LaunchThrottle {
    /// The task definition whose start failures are counted.
    pub(crate) task_definition: String,
    /// Its tasks that stopped without reaching RUNNING, in a row.
    pub(crate) failures: u32,
    /// Failed tasks already counted (of any run), so each counts once.
    pub(crate) counted: BTreeSet<String>,
    /// The latest `startedAt` of the service's tasks seen so far: a later one is a task that
    /// reached RUNNING.
    pub(crate) last_started: Option<SystemTime>,
    /// No launch before this.
    pub(crate) next_launch_at: Option<SystemTime>,
    /// The "unable to consistently start tasks" event was written for this run of failures.
    pub(crate) reported: bool,
}

impl LaunchThrottle {
    /// Ends a run of failures. `counted` stays: a failed task must never count twice.
    fn reset(&mut self) {
        self.failures = 0;
        self.next_launch_at = None;
        self.reported = false;
    }

    /// Takes in what the service's tasks did: resets on another task definition or a task that
    /// reached RUNNING, counts new start failures of `task_definition` and schedules the next
    /// launch. Answers `true` when throttling starts, the moment to write the service event.
    pub(crate) fn observe(
        &mut self,
        task_definition: &str,
        tasks: &[TaskView],
        base: Duration,
        now: SystemTime,
    ) -> bool {
        if self.task_definition != task_definition {
            self.reset();
            self.task_definition = task_definition.to_owned();
        }
        let latest_start = tasks.iter().filter_map(|task| task.started_at).max();
        if latest_start > self.last_started {
            self.reset();
            self.last_started = latest_start;
        }
        let new_failures: Vec<&TaskView> = tasks
            .iter()
            .filter(|task| task.task_definition == task_definition && task.failed_to_start())
            .filter(|task| !self.counted.contains(&task.arn))
            .collect();
        for task in new_failures {
            self.counted.insert(task.arn.clone());
            self.failures += 1;
            self.next_launch_at = launch_delay(self.failures, base).map(|delay| now + delay);
        }
        // Forget tasks the engine no longer reports, so the set stays small.
        self.counted
            .retain(|arn| tasks.iter().any(|task| &task.arn == arn));
        let starts = self.failures >= THRESHOLD && !self.reported;
        self.reported |= starts;
        starts
    }

    /// Whether the scheduler may launch a task now.
    pub(crate) fn allows_launch(&self, now: SystemTime) -> bool {
        self.next_launch_at.is_none_or(|at| now >= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_wait_doubles_from_the_base_after_the_threshold_and_stops_at_27_minutes() {
        for (failures, base, expected) in [
            (0, 5 * SECOND, None),
            (1, 5 * SECOND, None),
            (2, 5 * SECOND, None),
            (3, 5 * SECOND, Some(5 * SECOND)),
            (4, 5 * SECOND, Some(10 * SECOND)),
            (5, 5 * SECOND, Some(20 * SECOND)),
            (11, 5 * SECOND, Some(1280 * SECOND)),
            (12, 5 * SECOND, Some(MAX_DELAY)),
            (40, 5 * SECOND, Some(MAX_DELAY)),
            (u32::MAX, 5 * SECOND, Some(MAX_DELAY)),
            (
                4,
                Duration::from_millis(100),
                Some(Duration::from_millis(200)),
            ),
            (9, Duration::ZERO, Some(Duration::ZERO)),
        ] {
            assert_eq!(
                launch_delay(failures, base),
                expected,
                "{failures} failures, base {base:?}"
            );
        }
    }
}
