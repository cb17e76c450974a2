//! When a container's line becomes visible in CloudWatch Logs under the `delay_log_ingestion`
//! fault, as pure functions of time (reference ecs-deployments.md §6).
//!
//! The Docker awslogs driver holds what a container writes and sends it in batches: on every
//! tick of a ticker started with the driver (moby's `batchPublishFrequency`, 5 s), and at once
//! when the container stops. CloudWatch then shows a batch some time after it arrived. So a line
//! read at `t` is sent at the driver's first tick after `t` (or at the stop, if that comes
//! first) and becomes visible `visible_after` later; its `timestamp` stays `t`, its
//! `ingestionTime` is when it became visible. A stream's batches are sent one after the other,
//! so a line never becomes visible before the lines read before it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the awslogs driver and CloudWatch Logs delay a container's lines while the
/// `delay_log_ingestion` fault is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestionDelay {
    /// The driver sends what it holds this often (Docker's awslogs driver: 5 s). Zero sends
    /// every line at once.
    pub batch: Duration,
    /// A sent batch becomes visible to GetLogEvents and FilterLogEvents this much later.
    pub visible_after: Duration,
}

/// A line the driver holds, or has sent, that is not visible yet. Times are epoch ms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PendingEvent {
    pub(crate) timestamp: i64,
    pub(crate) message: String,
    /// When the driver sends (or sent) it.
    pub(crate) sent_at: i64,
    pub(crate) visible_after: i64,
}

impl PendingEvent {
    fn visible_at(&self) -> i64 {
        self.sent_at.saturating_add(self.visible_after)
    }
}

/// When a driver whose ticker started at `opened_at` sends a line read at `read_at`: at its
/// first tick after the read. Without a batch period, or once the driver is closing, at once.
pub(crate) fn sent_at(opened_at: i64, read_at: i64, batch_ms: i64, closing: bool) -> i64 {
    if batch_ms <= 0 || closing {
        return read_at;
    }
    let ticks = (read_at - opened_at).max(0) / batch_ms + 1;
    opened_at + ticks * batch_ms
}

/// The container stopped at `at`: the driver sends everything it still holds.
pub(crate) fn flush(pending: &mut [PendingEvent], at: i64) {
    for event in pending {
        event.sent_at = event.sent_at.min(at);
    }
}

/// The ingestion times of the leading `pending` events (in the order they were read) that are
/// visible at `now`. An event is visible once its batch is, and never before an earlier one.
pub(crate) fn visible(pending: &[PendingEvent], now: i64) -> Vec<i64> {
    let mut times = Vec::new();
    let mut previous = i64::MIN;
    for event in pending {
        let at = event.visible_at().max(previous);
        if at > now {
            break;
        }
        times.push(at);
        previous = at;
    }
    times
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(read_at: i64, sent_at: i64, visible_after: i64) -> PendingEvent {
        PendingEvent {
            timestamp: read_at,
            message: format!("read at {read_at}"),
            sent_at,
            visible_after,
        }
    }

    #[test]
    fn a_line_is_sent_at_the_drivers_next_tick_or_at_once_when_closing() {
        for (opened, read, batch, closing, expected) in [
            (0, 0, 5000, false, 5000),
            (0, 1, 5000, false, 5000),
            (0, 4999, 5000, false, 5000),
            (0, 5000, 5000, false, 10_000),
            (1000, 7500, 5000, false, 11_000),
            (1000, 500, 5000, false, 6000),
            (0, 1234, 0, false, 1234),
            (0, 1234, 5000, true, 1234),
        ] {
            assert_eq!(
                sent_at(opened, read, batch, closing),
                expected,
                "opened {opened}, read {read}, batch {batch}, closing {closing}"
            );
        }
    }

    #[test]
    fn visible_events_are_a_prefix_with_their_ingestion_times() {
        // Two batches sent at 5000 and 10000, visible 3000 ms after being sent.
        let events = [
            pending(100, 5000, 3000),
            pending(4000, 5000, 3000),
            pending(6000, 10_000, 3000),
        ];
        for (now, expected) in [
            (0, vec![]),
            (5000, vec![]),
            (7999, vec![]),
            (8000, vec![8000, 8000]),
            (12_999, vec![8000, 8000]),
            (13_000, vec![8000, 8000, 13_000]),
            (99_000, vec![8000, 8000, 13_000]),
        ] {
            assert_eq!(visible(&events, now), expected, "at {now}");
        }
    }

    #[test]
    fn a_line_never_shows_up_before_the_lines_read_before_it() {
        // The fault was cleared between the two lines: the second is sent at once, yet waits.
        let events = [pending(100, 5000, 3000), pending(200, 200, 0)];
        assert_eq!(visible(&events, 300), Vec::<i64>::new());
        assert_eq!(visible(&events, 8000), vec![8000, 8000]);
    }

    #[test]
    fn stopping_sends_what_the_driver_holds() {
        let mut events = [pending(100, 5000, 3000), pending(2000, 5000, 3000)];
        flush(&mut events, 2500);
        assert_eq!(visible(&events, 5499), Vec::<i64>::new());
        assert_eq!(visible(&events, 5500), vec![5500, 5500]);
        // A batch already sent keeps its time.
        let mut sent = [pending(100, 5000, 3000)];
        flush(&mut sent, 9000);
        assert_eq!(sent[0].sent_at, 5000);
    }
}
