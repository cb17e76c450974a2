//! The release lock, decided from ECS state alone. A RunTask with the service's lock token that
//! comes back with ConflictException names the tasks that hold the token; this module decides
//! what their state means. The guarantee and its limits are in docs/lock.md.

use std::time::Duration;

use crate::task::{TaskProgress, TaskView, assess_task};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockDecision {
    /// Another release's migration is running: wait for it.
    Held { holder: TaskView },
    /// The holder's migration failed (or vanished): its attempt is over, take the next token.
    NextAttempt,
    /// The holder migrated successfully and is now rolling the service out; wait until the
    /// service's primary deployment changes (which changes the token base).
    HolderDeploying { holder: TaskView },
}

/// `now_ms` and the holders' `stopped_at` are epoch milliseconds from ECS; `lease` bounds how
/// long a successful holder may take to update the service before its lock counts as abandoned.
pub fn decide_lock(holders: &[TaskView], now_ms: i64, lease: Duration) -> LockDecision {
    if let Some(running) = holders.iter().find(|task| !task.is_stopped()) {
        return LockDecision::Held {
            holder: running.clone(),
        };
    }
    let succeeded = holders.iter().find(
        |task| matches!(assess_task(task), TaskProgress::Finished(outcome) if outcome.succeeded()),
    );
    match succeeded {
        Some(holder) => {
            let stopped = holder.stopped_at.unwrap_or(now_ms);
            let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
            if now_ms.saturating_sub(stopped) > lease_ms {
                LockDecision::NextAttempt
            } else {
                LockDecision::HolderDeploying {
                    holder: holder.clone(),
                }
            }
        }
        None => LockDecision::NextAttempt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::ContainerView;

    fn task(status: &str, exit: Option<i32>, stopped_at: Option<i64>) -> TaskView {
        TaskView {
            task_arn: format!("arn:task/{status}"),
            last_status: status.to_owned(),
            stop_code: (status == "STOPPED").then(|| "EssentialContainerExited".to_owned()),
            stopped_at,
            containers: vec![ContainerView {
                name: "app".to_owned(),
                essential: true,
                exit_code: exit,
                ..ContainerView::default()
            }],
            ..TaskView::default()
        }
    }

    #[test]
    fn lock_table() {
        let lease = Duration::from_secs(60);
        let now = 1_000_000;
        let running = task("RUNNING", None, None);
        let ok = task("STOPPED", Some(0), Some(now - 5_000));
        let stale_ok = task("STOPPED", Some(0), Some(now - 61_000));
        let failed = task("STOPPED", Some(1), Some(now - 5_000));
        let cases = vec![
            (
                vec![running.clone()],
                LockDecision::Held {
                    holder: running.clone(),
                },
            ),
            (
                vec![failed.clone(), running.clone()],
                LockDecision::Held { holder: running },
            ),
            (
                vec![ok.clone()],
                LockDecision::HolderDeploying { holder: ok },
            ),
            (vec![stale_ok], LockDecision::NextAttempt),
            (vec![failed], LockDecision::NextAttempt),
            (vec![], LockDecision::NextAttempt),
        ];
        for (holders, expected) in cases {
            assert_eq!(
                decide_lock(&holders, now, lease),
                expected,
                "for {holders:?}"
            );
        }
    }
}
