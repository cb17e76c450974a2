//! Follows one awslogs stream with GetLogEvents from its head, token by token, alongside the
//! release: [`LogFollow`] (in `shipmate-release`) decides when to read and when the stream is
//! complete; this task does the reading and the waiting, and reports every line as an event.

use std::sync::Arc;

use aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsError;
use shipmate_release::event::Event;
use shipmate_release::fault::Fault;
use shipmate_release::io::LogFollowSpec;
use shipmate_release::logs::{LogFollow, LogStep};
use tokio::sync::watch;

use crate::client::Clients;
use crate::reporter::{Pace, Reporter};
use crate::sdk_error::fault;

/// A follower running alongside the release.
pub(crate) struct Follower {
    /// The task's stop time, once the release saw it stop.
    stopped: watch::Sender<Option<i64>>,
    handle: tokio::task::JoinHandle<Result<u64, Fault>>,
    /// Lines read so far (for a follower stopped before its end).
    lines: Arc<std::sync::atomic::AtomicU64>,
}

impl Follower {
    pub(crate) fn start(
        clients: Clients,
        reporter: Arc<dyn Reporter>,
        pace: Arc<dyn Pace>,
        spec: LogFollowSpec,
    ) -> Follower {
        let (stopped, watch) = watch::channel(None);
        let lines = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let handle = tokio::spawn(follow(
            clients,
            reporter,
            pace,
            spec,
            watch,
            Arc::clone(&lines),
        ));
        Follower {
            stopped,
            handle,
            lines,
        }
    }

    /// Stops following where it is; the number of lines read.
    pub(crate) async fn stop(self) -> u64 {
        self.handle.abort();
        let _ = self.handle.await;
        self.lines.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn task_stopped(&self, at_ms: i64) {
        let _ = self.stopped.send(Some(at_ms));
    }

    /// Waits for the stream to be complete; the number of lines read.
    pub(crate) async fn drained(self) -> Result<u64, Fault> {
        match self.handle.await {
            Ok(result) => result,
            Err(error) => Err(Fault::unexpected("GetLogEvents", error.to_string())),
        }
    }
}

async fn follow(
    clients: Clients,
    reporter: Arc<dyn Reporter>,
    pace: Arc<dyn Pace>,
    spec: LogFollowSpec,
    mut stopped: watch::Receiver<Option<i64>>,
    read: Arc<std::sync::atomic::AtomicU64>,
) -> Result<u64, Fault> {
    let mut state = LogFollow::new(pace.now_ms(), spec.poll_ms, spec.quiet_ms, spec.cap_ms);
    let mut token: Option<String> = None;
    let mut lines = 0;
    loop {
        if let Some(at) = *stopped.borrow_and_update() {
            state.on_stopped(pace.now_ms(), at);
        }
        match state.next(pace.now_ms()) {
            LogStep::Done => return Ok(lines),
            LogStep::WaitUntil(until) => {
                let wait = std::time::Duration::from_millis(
                    u64::try_from(until - pace.now_ms()).unwrap_or(0),
                );
                // The stop is worth waking up for: the drain starts at once.
                tokio::select! {
                    () = pace.sleep(wait) => {}
                    _ = stopped.changed() => {}
                }
            }
            LogStep::Fetch => {
                let result = clients
                    .logs
                    .get_log_events()
                    .log_group_name(&spec.group)
                    .log_stream_name(&spec.stream)
                    .start_from_head(true)
                    .set_next_token(token.clone())
                    .send()
                    .await;
                let output = match result {
                    Ok(output) => output,
                    // The stream appears with the first batch the awslogs driver sends.
                    Err(error)
                        if matches!(
                            error.as_service_error(),
                            Some(GetLogEventsError::ResourceNotFoundException(_))
                        ) =>
                    {
                        state.on_missing(pace.now_ms());
                        continue;
                    }
                    Err(error) => return Err(fault("GetLogEvents", &error)),
                };
                let events = output.events();
                for event in events {
                    lines += 1;
                    read.store(lines, std::sync::atomic::Ordering::Relaxed);
                    reporter.event(Event::LogLine {
                        role: spec.role,
                        timestamp: event.timestamp().unwrap_or_default(),
                        message: event
                            .message()
                            .unwrap_or_default()
                            .trim_end_matches(['\n', '\r'])
                            .to_owned(),
                    });
                }
                // The end of what is readable now: the same token back.
                let next = output.next_forward_token().map(str::to_owned);
                let at_end = next.is_none() || next == token;
                if next.is_some() {
                    token = next;
                }
                state.on_page(pace.now_ms(), events.len(), at_end);
            }
        }
    }
}
