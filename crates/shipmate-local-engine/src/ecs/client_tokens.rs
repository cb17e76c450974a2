//! How long ECS keeps a RunTask `clientToken` and what a replay of it answers, as pure
//! functions (reference ecs-deployments.md §7, API/ECS_Idempotency.html):
//!
//! - a token is kept for 24 hours or for the lifetime of its tasks plus one hour, whichever is
//!   shorter; the lifetime runs until the last of the tasks is STOPPED;
//! - a replay answers tasks that stopped (less than an hour ago, or the token would be gone) with
//!   only `taskArn`, `lastStatus` and `desiredStatus`.

use std::time::Duration;

use shipmate_local_api::ecs::{RunTaskTask, StoppedTask, Task};

/// The longest a token is kept, whatever its tasks do.
pub(crate) const LONGEST: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a token outlives its tasks (and a token that started no task, its creation).
pub(crate) const AFTER_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// One task a token started, as far as the token's retention cares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum TokenTask {
    /// Not STOPPED yet.
    Live,
    /// STOPPED at this epoch second.
    StoppedAt(f64),
    /// No longer known: STOPPED tasks are forgotten an hour after they stop, so this one
    /// stopped longer ago than that.
    Forgotten,
}

/// The epoch second after which a token created at `created_at` that started `tasks` is
/// forgotten. A token whose every placement failed started no task, so its "lifetime" ends at
/// once: it lasts an hour from its creation.
pub(crate) fn expires_at(created_at: f64, tasks: &[TokenTask]) -> f64 {
    let longest = created_at + LONGEST.as_secs_f64();
    let after = AFTER_LIFETIME.as_secs_f64();
    if tasks.is_empty() {
        return created_at + after;
    }
    let mut last_stop = f64::NEG_INFINITY;
    for task in tasks {
        match *task {
            TokenTask::Live => return longest,
            TokenTask::StoppedAt(at) => last_stop = last_stop.max(at),
            TokenTask::Forgotten => {}
        }
    }
    longest.min(last_stop + after)
}

/// How a replayed RunTask shows one of its tasks: trimmed once STOPPED, as ECS documents. A task
/// not yet stopped is described in full, as it is now (the reference does not say what ECS
/// answers for those; the full description is what a first answer carries).
pub(crate) fn replayed(task: Task) -> RunTaskTask {
    if task.last_status.as_deref() == Some("STOPPED") {
        RunTaskTask::Stopped(StoppedTask {
            task_arn: task.task_arn,
            last_status: task.last_status,
            desired_status: task.desired_status,
        })
    } else {
        RunTaskTask::from(task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: f64 = 3600.0;
    const CREATED: f64 = 1_800_000_000.0;

    #[test]
    fn a_token_lasts_until_the_earlier_of_a_day_and_an_hour_after_its_last_task_stopped() {
        use TokenTask::*;
        for (tasks, expected, why) in [
            (vec![], CREATED + HOUR, "no task started: an hour"),
            (vec![Live], CREATED + 24.0 * HOUR, "still running: a day"),
            (
                vec![StoppedAt(CREATED + 60.0)],
                CREATED + 60.0 + HOUR,
                "stopped: an hour after the stop",
            ),
            (
                vec![StoppedAt(CREATED + 30.0 * HOUR)],
                CREATED + 24.0 * HOUR,
                "stopped after a day: the day wins",
            ),
            (
                vec![StoppedAt(CREATED + 10.0), StoppedAt(CREATED + 7200.0)],
                CREATED + 7200.0 + HOUR,
                "count > 1: the last stop counts",
            ),
            (
                vec![StoppedAt(CREATED + 10.0), Live],
                CREATED + 24.0 * HOUR,
                "count > 1: one still running",
            ),
            (
                vec![Forgotten, StoppedAt(CREATED + 20.0)],
                CREATED + 20.0 + HOUR,
                "a forgotten task stopped earlier still",
            ),
            (vec![Forgotten], f64::NEG_INFINITY, "every task forgotten"),
        ] {
            assert_eq!(expires_at(CREATED, &tasks), expected, "{why}");
        }
    }

    #[test]
    fn stopped_tasks_are_replayed_with_three_members_and_others_in_full() {
        let running = Task {
            task_arn: Some("arn:aws:ecs:us-east-1:000000000000:task/c/abc".into()),
            cluster_arn: Some("arn:aws:ecs:us-east-1:000000000000:cluster/c".into()),
            last_status: Some("RUNNING".into()),
            desired_status: Some("RUNNING".into()),
            version: 3,
            ..Task::default()
        };
        assert_eq!(
            replayed(running.clone()),
            RunTaskTask::Described(Box::new(running.clone()))
        );
        let stopped = Task {
            last_status: Some("STOPPED".into()),
            desired_status: Some("STOPPED".into()),
            stop_code: Some("EssentialContainerExited".into()),
            ..running
        };
        let json = serde_json::to_value(replayed(stopped)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "taskArn": "arn:aws:ecs:us-east-1:000000000000:task/c/abc",
                "lastStatus": "STOPPED",
                "desiredStatus": "STOPPED",
            })
        );
    }
}
