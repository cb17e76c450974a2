//! When to read a task's log stream and when it is complete.
//!
//! CloudWatch Logs ingests asynchronously: the awslogs driver flushes a batch about every 5 s
//! (and the last one when the container stops), and ingestion takes a moment more, so lines can
//! become readable seconds after the task stopped, and the stream itself appears only with the
//! first batch. The follower therefore reads while the task runs and, once it stopped, keeps
//! reading until the stream has been quiet for a settle period (no new line, and for a stream
//! that does not exist yet, no stream), bounded by a cap (docs/release.md, "Every log line").
//! The decisions are here; the driver does the GetLogEvents calls and the waiting.

/// What the follower does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStep {
    /// Call GetLogEvents now.
    Fetch,
    /// Nothing to do before this time (epoch milliseconds) unless the task stops.
    WaitUntil(i64),
    /// The stream is complete.
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFollow {
    poll_ms: i64,
    quiet_ms: i64,
    cap_ms: i64,
    stopped_at: Option<i64>,
    /// When new lines last arrived.
    last_new_at: Option<i64>,
    /// When the last read that reached the end of what is readable happened.
    last_end_at: Option<i64>,
    /// More lines are readable right now (the last page was full, not the end).
    more: bool,
    next_fetch_at: i64,
}

impl LogFollow {
    pub fn new(now_ms: i64, poll_ms: i64, quiet_ms: i64, cap_ms: i64) -> LogFollow {
        LogFollow {
            poll_ms: poll_ms.max(1),
            quiet_ms: quiet_ms.max(0),
            cap_ms: cap_ms.max(0),
            stopped_at: None,
            last_new_at: None,
            last_end_at: None,
            more: false,
            next_fetch_at: now_ms,
        }
    }

    /// The task stopped at `at_ms`: from now on the follower drains.
    pub fn on_stopped(&mut self, now_ms: i64, at_ms: i64) {
        if self.stopped_at.is_none() {
            self.stopped_at = Some(at_ms.min(now_ms));
            // Read at once: the last batch is usually there already.
            self.next_fetch_at = now_ms;
        }
    }

    /// A GetLogEvents answer with `new_lines` lines; `at_end` when it handed back the token it
    /// was given (nothing more readable now).
    pub fn on_page(&mut self, now_ms: i64, new_lines: usize, at_end: bool) {
        if new_lines > 0 {
            self.last_new_at = Some(now_ms);
        }
        self.more = !at_end;
        if at_end {
            self.last_end_at = Some(now_ms);
        }
        self.schedule(now_ms);
    }

    /// The stream does not exist (yet): as good as an empty read.
    pub fn on_missing(&mut self, now_ms: i64) {
        self.on_page(now_ms, 0, true);
    }

    fn schedule(&mut self, now_ms: i64) {
        let mut next = now_ms + self.poll_ms;
        if let Some(quiet_at) = self.quiet_at() {
            // Read exactly when the quiet period ends, so the drain ends on time.
            if quiet_at > now_ms {
                next = next.min(quiet_at);
            }
        }
        self.next_fetch_at = next;
    }

    /// When the stream will have been quiet long enough, once the task stopped.
    fn quiet_at(&self) -> Option<i64> {
        let stopped = self.stopped_at?;
        let since = self.last_new_at.map_or(stopped, |t| t.max(stopped));
        Some(since + self.quiet_ms)
    }

    /// The latest the drain may end: the quiet period plus the cap after the stop.
    pub fn deadline(&self) -> Option<i64> {
        self.stopped_at
            .map(|stopped| stopped + self.quiet_ms + self.cap_ms)
    }

    pub fn next(&self, now_ms: i64) -> LogStep {
        if let (Some(quiet_at), Some(deadline)) = (self.quiet_at(), self.deadline()) {
            let quiet = self.last_end_at.is_some_and(|t| t >= quiet_at) && !self.more;
            if quiet || now_ms >= deadline {
                return LogStep::Done;
            }
        }
        if self.more || now_ms >= self.next_fetch_at {
            LogStep::Fetch
        } else {
            let wait = self
                .deadline()
                .map_or(self.next_fetch_at, |d| d.min(self.next_fetch_at));
            LogStep::WaitUntil(wait)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: i64 = 1_000;
    const QUIET: i64 = 10_000;
    const CAP: i64 = 60_000;

    fn follow() -> LogFollow {
        LogFollow::new(0, POLL, QUIET, CAP)
    }

    #[test]
    fn reads_every_poll_while_running_and_at_once_while_more_is_readable() {
        let mut f = follow();
        assert_eq!(f.next(0), LogStep::Fetch);
        f.on_missing(0);
        assert_eq!(f.next(10), LogStep::WaitUntil(1_000));
        f.on_page(1_000, 100, false);
        assert_eq!(f.next(1_001), LogStep::Fetch, "a full page: read on");
        f.on_page(1_001, 3, true);
        assert_eq!(f.next(1_002), LogStep::WaitUntil(2_001));
    }

    #[test]
    fn drains_until_quiet_after_the_stop() {
        let mut f = follow();
        f.on_page(0, 5, true);
        f.on_stopped(1_000, 900);
        assert_eq!(f.next(1_000), LogStep::Fetch);
        f.on_page(1_000, 0, true);
        // Quiet since the stop at 900: done only after a read at or after 10.9 s.
        assert_eq!(f.next(1_001), LogStep::WaitUntil(2_000));
        f.on_page(4_000, 2, true); // a late batch arrives 3.1 s after the stop
        f.on_page(13_000, 0, true);
        assert_ne!(f.next(13_000), LogStep::Done, "quiet only since 4 s");
        assert_eq!(f.next(13_001), LogStep::WaitUntil(14_000));
        f.on_page(14_000, 0, true);
        assert_eq!(f.next(14_000), LogStep::Done);
    }

    #[test]
    fn the_read_that_ends_the_drain_is_scheduled_at_the_quiet_point() {
        let mut f = LogFollow::new(0, 5_000, 3_000, CAP);
        f.on_stopped(0, 0);
        f.on_page(0, 0, true);
        assert_eq!(f.next(1), LogStep::WaitUntil(3_000));
        f.on_page(3_000, 0, true);
        assert_eq!(f.next(3_000), LogStep::Done);
    }

    #[test]
    fn a_stream_that_never_appears_is_given_the_quiet_period() {
        let mut f = follow();
        f.on_stopped(0, 0);
        f.on_missing(0);
        assert_ne!(f.next(5_000), LogStep::Done);
        f.on_missing(10_000);
        assert_eq!(f.next(10_000), LogStep::Done);
    }

    #[test]
    fn a_stream_written_forever_ends_at_the_cap() {
        let mut f = follow();
        f.on_stopped(0, 0);
        let mut now = 0;
        while now < QUIET + CAP {
            f.on_page(now, 10, true);
            assert_ne!(f.next(now), LogStep::Done, "at {now}");
            now += POLL;
        }
        assert_eq!(f.next(QUIET + CAP), LogStep::Done);
        assert_eq!(f.deadline(), Some(QUIET + CAP));
    }
}
