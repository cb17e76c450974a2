//! Engine-level fault injection, for tests of clients that must survive ECS misbehaving:
//! failed placements, failed image pulls, slow lifecycle transitions and container output that
//! reaches CloudWatch Logs late. The server's
//! `/_shipmate/faults` control endpoint drives this API; protocol-level faults (throttling, 5xx,
//! dropped connections) are the server's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::ecs::lifecycle::TaskStatus;
use crate::logs::IngestionDelay;

/// The `failures[].reason` of an injected placement failure unless another is given.
pub const DEFAULT_PLACEMENT_FAILURE: &str = "RESOURCE:MEMORY";

/// Shared, cheaply cloned handle to the active faults.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<Active>>,
}

#[derive(Debug, Default)]
struct Active {
    placement_failures: Option<(u32, String)>,
    pull_failures: Vec<String>,
    delays: BTreeMap<TaskStatus, Duration>,
    log_ingestion: Option<IngestionDelay>,
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, Active> {
        self.inner.lock().expect("faults lock")
    }

    /// The next `count` task placements (RunTask and service launches) fail with `reason`
    /// (default [`DEFAULT_PLACEMENT_FAILURE`]) in `failures[]`.
    pub fn fail_next_placements(&self, count: u32, reason: Option<String>) {
        self.lock().placement_failures = (count > 0).then(|| {
            (
                count,
                reason.unwrap_or_else(|| DEFAULT_PLACEMENT_FAILURE.to_owned()),
            )
        });
    }

    /// Pulls of images matching `pattern` fail with `CannotPullContainerError`. The pattern is
    /// the exact image string, or contains `*` wildcards (`*:broken`, `registry/app:*`).
    pub fn fail_image_pulls(&self, pattern: impl Into<String>) {
        self.lock().pull_failures.push(pattern.into());
    }

    /// Tasks stay in `status` (PROVISIONING, PENDING, ACTIVATING, DEACTIVATING or
    /// DEPROVISIONING) for `delay` before moving on.
    pub fn delay_transition(&self, status: TaskStatus, delay: Duration) {
        self.lock().delays.insert(status, delay);
    }

    /// What containers write through the awslogs driver from now on reaches CloudWatch Logs the
    /// way the driver and CloudWatch deliver it: in batches sent every `delay.batch` (and when the
    /// container stops), each visible `delay.visible_after` after it was sent. Lines already
    /// written keep the delay they were written with.
    pub fn delay_log_ingestion(&self, delay: IngestionDelay) {
        self.lock().log_ingestion = Some(delay);
    }

    /// Removes every injected fault.
    pub fn clear(&self) {
        *self.lock() = Active::default();
    }

    /// Consumes one injected placement failure, if any is pending.
    pub(crate) fn take_placement_failure(&self) -> Option<String> {
        let mut active = self.lock();
        let (remaining, reason) = active.placement_failures.as_mut()?;
        let reason = reason.clone();
        *remaining -= 1;
        if *remaining == 0 {
            active.placement_failures = None;
        }
        Some(reason)
    }

    pub(crate) fn pull_fails(&self, image: &str) -> bool {
        self.lock()
            .pull_failures
            .iter()
            .any(|pattern| wildcard_match(pattern, image))
    }

    pub(crate) fn delay(&self, status: TaskStatus) -> Option<Duration> {
        self.lock().delays.get(&status).copied()
    }

    pub(crate) fn log_ingestion_delay(&self) -> Option<IngestionDelay> {
        self.lock().log_ingestion
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    if !text.ends_with(last) {
        return false;
    }
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        for (pattern, text, expected) in [
            ("web:v1", "web:v1", true),
            ("web:v1", "web:v2", false),
            ("*", "anything", true),
            ("*:broken", "web:broken", true),
            ("*:broken", "web:fine", false),
            ("registry/*:v*", "registry/app:v2", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
        ] {
            assert_eq!(wildcard_match(pattern, text), expected, "{pattern} {text}");
        }
    }

    #[test]
    fn placement_failures_are_consumed() {
        let faults = Faults::default();
        faults.fail_next_placements(2, None);
        assert_eq!(
            faults.take_placement_failure().as_deref(),
            Some("RESOURCE:MEMORY")
        );
        assert!(faults.take_placement_failure().is_some());
        assert_eq!(faults.take_placement_failure(), None);
        faults.fail_next_placements(1, Some("RESOURCE:CPU".into()));
        faults.clear();
        assert_eq!(faults.take_placement_failure(), None);
    }

    #[test]
    fn pull_failures_and_delays() {
        let faults = Faults::default();
        assert!(!faults.pull_fails("web:v1"));
        faults.fail_image_pulls("web:*");
        assert!(faults.pull_fails("web:v1"));
        assert!(!faults.pull_fails("api:v1"));
        faults.delay_transition(TaskStatus::Pending, Duration::from_millis(50));
        assert_eq!(
            faults.delay(TaskStatus::Pending),
            Some(Duration::from_millis(50))
        );
        assert_eq!(faults.delay(TaskStatus::Provisioning), None);
        let ingestion = IngestionDelay {
            batch: Duration::from_secs(5),
            visible_after: Duration::from_secs(3),
        };
        faults.delay_log_ingestion(ingestion);
        assert_eq!(faults.log_ingestion_delay(), Some(ingestion));
        faults.clear();
        assert_eq!(faults.log_ingestion_delay(), None);
    }
}
