//! Follows one awslogs stream with GetLogEvents from its head, token by token, alongside the
//! release: [`LogFollow`] (in `shipmate-release`) decides when to read and when the stream is
//! complete; this task does the reading and the waiting, and reports every line as an event.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsError;
use shipmate_release::event::Event;
use shipmate_release::fault::Fault;
use shipmate_release::io::LogFollowSpec;
use shipmate_release::logs::{LogFollow, LogStep};
use shipmate_release::preset::frame_of;
use tokio::sync::watch;

use crate::client::Clients;
use crate::reporter::{Pace, Reporter};
use crate::sdk_error::fault;

/// How long the release waits for the first read after a task stopped before it gives its
/// verdict anyway (the read only orders the output; the drain goes on regardless).
const CATCH_UP_LIMIT: Duration = Duration::from_secs(5);

/// What a follower has done so far, for the release.
#[derive(Debug, Clone, Default)]
struct Progress {
    lines: u64,
    /// Preset frames read so far (the lines after `FRAME_PREFIX`).
    frames: Vec<String>,
    /// Reads completed that started after the follower heard the task stopped.
    reads_after_stop: u64,
}

/// A follower running alongside the release.
pub(crate) struct Follower {
    /// The task's stop time, once the release saw it stop.
    stopped: watch::Sender<Option<i64>>,
    progress: watch::Receiver<Progress>,
    handle: tokio::task::JoinHandle<Result<(u64, Vec<String>), Fault>>,
}

impl Follower {
    pub(crate) fn start(
        clients: Clients,
        reporter: Arc<dyn Reporter>,
        pace: Arc<dyn Pace>,
        spec: LogFollowSpec,
    ) -> Follower {
        let (stopped, stopped_rx) = watch::channel(None);
        let (progress_tx, progress) = watch::channel(Progress::default());
        let handle = tokio::spawn(follow(
            clients,
            reporter,
            pace,
            spec,
            stopped_rx,
            progress_tx,
        ));
        Follower {
            stopped,
            progress,
            handle,
        }
    }

    pub(crate) fn task_stopped(&self, at_ms: i64) {
        let _ = self.stopped.send(Some(at_ms));
    }

    /// Waits (briefly) until the follower has read the stream once since it heard the task
    /// stopped, so that what was readable at the stop is shown before the verdict.
    pub(crate) async fn caught_up(&self) {
        let mut progress = self.progress.clone();
        // An error means the follower ended: nothing more to wait for.
        let _ = tokio::time::timeout(
            CATCH_UP_LIMIT,
            progress.wait_for(|p| p.reads_after_stop > 0),
        )
        .await;
    }

    /// Stops following where it is; the number of lines read, and the frames among them.
    pub(crate) async fn stop(self) -> (u64, Vec<String>) {
        self.handle.abort();
        let _ = self.handle.await;
        let progress = self.progress.borrow();
        (progress.lines, progress.frames.clone())
    }

    /// Waits for the stream to be complete; the number of lines read, and the frames among
    /// them.
    pub(crate) async fn drained(self) -> Result<(u64, Vec<String>), Fault> {
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
    progress: watch::Sender<Progress>,
) -> Result<(u64, Vec<String>), Fault> {
    let mut state = LogFollow::new(pace.now_ms(), spec.poll_ms, spec.quiet_ms, spec.cap_ms);
    let mut token: Option<String> = None;
    let mut done = Progress::default();
    let mut heard_stop = false;
    loop {
        if let Some(at) = *stopped.borrow_and_update() {
            state.on_stopped(pace.now_ms(), at);
            heard_stop = true;
        }
        match state.next(pace.now_ms()) {
            LogStep::Done => return Ok((done.lines, done.frames)),
            LogStep::WaitUntil(until) => {
                let wait = Duration::from_millis(u64::try_from(until - pace.now_ms()).unwrap_or(0));
                // The stop is worth waking up for: the drain starts at once.
                tokio::select! {
                    () = pace.sleep(wait) => {}
                    _ = stopped.changed() => {}
                }
            }
            LogStep::Fetch => {
                let after_stop = heard_stop;
                let result = clients
                    .logs
                    .get_log_events()
                    .log_group_name(&spec.group)
                    .log_stream_name(&spec.stream)
                    .start_from_head(true)
                    .set_next_token(token.clone())
                    .send()
                    .await;
                match result {
                    Ok(output) => {
                        let events = output.events();
                        for event in events {
                            done.lines += 1;
                            let message = event
                                .message()
                                .unwrap_or_default()
                                .trim_end_matches(['\n', '\r'])
                                .to_owned();
                            if let Some(frame) = frame_of(&message) {
                                done.frames.push(frame.to_owned());
                            }
                            reporter.event(Event::LogLine {
                                role: spec.role,
                                timestamp: event.timestamp().unwrap_or_default(),
                                message,
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
                    // The stream appears with the first batch the awslogs driver sends.
                    Err(error)
                        if matches!(
                            error.as_service_error(),
                            Some(GetLogEventsError::ResourceNotFoundException(_))
                        ) =>
                    {
                        state.on_missing(pace.now_ms());
                    }
                    Err(error) => return Err(fault("GetLogEvents", &error)),
                }
                if after_stop {
                    done.reads_after_stop += 1;
                }
                let _ = progress.send(done.clone());
            }
        }
    }
}

/// DescribeLogGroups with `logGroupNamePrefix`, every page: the names of the groups found.
pub(crate) async fn describe_log_groups(
    clients: &Clients,
    prefix: &str,
) -> Result<Vec<String>, Fault> {
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let output = clients
            .logs
            .describe_log_groups()
            .log_group_name_prefix(prefix)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| fault("DescribeLogGroups", &e))?;
        names.extend(
            output
                .log_groups()
                .iter()
                .filter_map(|group| group.log_group_name().map(str::to_owned)),
        );
        match output.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_owned()),
            _ => return Ok(names),
        }
    }
}
