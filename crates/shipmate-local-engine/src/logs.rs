//! The CloudWatch Logs store: log groups, streams and events, and the Logs operations over them.
//! The ECS side writes container output here through the awslogs driver methods (`ensure_group`,
//! `open_driver`, `driver_append`, `close_driver`); clients read it back with GetLogEvents and
//! FilterLogEvents, whose token rules are what release tooling depends on to read a task's output
//! to the last line.
//!
//! Under the `delay_log_ingestion` fault a container's lines are held as pending events and only
//! become events (visible to every read) when `ingestion.rs` says so; every access to the store
//! first moves the pending events that are due, so reads need no timer.
//!
//! With a state directory, everything is written to `logs.json` by [`LogStore::flush`] (the server
//! calls it periodically and on shutdown) and read back by [`LogStore::open`].

mod ingestion;
mod paging;
mod pattern;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shipmate_local_api::logs as api;
use shipmate_local_protocol::{AwsError, decode_input, encode_output};

use crate::clock::SharedClock;
use crate::{ACCOUNT_ID, EngineError, Request};

pub use ingestion::IngestionDelay;
use ingestion::PendingEvent;
use paging::{EVENT_OVERHEAD, MAX_PAGE_BYTES, MAX_PAGE_EVENTS, PageRequest, Token};
use pattern::FilterPattern;

/// Most events in one PutLogEvents batch.
const MAX_BATCH_EVENTS: usize = 10_000;
/// Largest PutLogEvents batch: Σ UTF-8 message bytes + 26 per event.
const MAX_BATCH_BYTES: usize = 1_048_576;
/// Largest single event, overhead included.
const MAX_EVENT_BYTES: usize = 1_048_576;
/// Events further in the future than this are rejected individually.
const TOO_NEW: Duration = Duration::from_secs(2 * 60 * 60);
/// Events older than this are rejected individually.
const TOO_OLD: Duration = Duration::from_secs(14 * 24 * 60 * 60);
/// A batch's events may span at most this much time.
const MAX_BATCH_SPAN: Duration = Duration::from_secs(24 * 60 * 60);
/// FilterLogEvents with startFromHead=false needs a startTime at or after 2024-01-01.
const NEWEST_FIRST_EARLIEST_START: i64 = 1_704_067_200_000;
const STATE_FILE: &str = "logs.json";

#[derive(Debug, Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Groups>>,
    clock: SharedClock,
    state_file: Option<PathBuf>,
    dirty: Arc<AtomicBool>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Groups {
    groups: BTreeMap<String, LogGroup>,
    /// Source of FilterLogEvents `eventId`s; also orders events with equal timestamps.
    next_event_id: u64,
    /// `(group, stream)` of every stream whose driver has lines not yet visible.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    delayed: BTreeSet<(String, String)>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogGroup {
    creation_time: i64,
    #[serde(default)]
    log_group_class: Option<String>,
    #[serde(default)]
    deletion_protection_enabled: bool,
    streams: BTreeMap<String, LogStream>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogStream {
    creation_time: i64,
    /// Ordered by timestamp; equal timestamps in arrival order.
    events: Vec<StoredEvent>,
    last_ingestion_time: Option<i64>,
    /// The awslogs driver of the container writing here, while it runs or holds lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    driver: Option<Driver>,
}

/// A container's awslogs driver (see `ingestion.rs`). Times are epoch ms.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Driver {
    /// When its batch ticker started.
    opened_at: i64,
    /// When the container stopped (and the driver sent what it held).
    closed_at: Option<i64>,
    /// Lines not visible yet, in the order they were read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pending: Vec<PendingEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredEvent {
    #[serde(rename = "t")]
    timestamp: i64,
    #[serde(rename = "i")]
    ingestion_time: i64,
    #[serde(rename = "n")]
    id: u64,
    #[serde(rename = "m")]
    message: String,
}

impl StoredEvent {
    fn size(&self) -> usize {
        self.message.len() + EVENT_OVERHEAD
    }
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub timestamp: i64,
    pub ingestion_time: i64,
    pub message: String,
}

impl Groups {
    fn stream_mut(&mut self, group: &str, stream: &str) -> Option<&mut LogStream> {
        self.groups.get_mut(group)?.streams.get_mut(stream)
    }

    /// Stores one event, visible from `ingestion_time`; false if the stream does not exist.
    fn insert_visible(
        &mut self,
        group: &str,
        stream: &str,
        timestamp: i64,
        ingestion_time: i64,
        message: String,
    ) -> bool {
        let id = self.next_event_id;
        let Some(stream) = self.stream_mut(group, stream) else {
            return false;
        };
        stream.insert(StoredEvent {
            timestamp,
            ingestion_time,
            id,
            message,
        });
        self.next_event_id += 1;
        true
    }
}

impl LogStream {
    /// Inserts keeping timestamp order; appending in order (the common case) is a push.
    fn insert(&mut self, event: StoredEvent) {
        self.last_ingestion_time = Some(event.ingestion_time);
        let at = self
            .events
            .partition_point(|existing| existing.timestamp <= event.timestamp);
        self.events.insert(at, event);
    }

    /// Indexes of the events with `start <= timestamp < end`.
    fn window(&self, start: Option<i64>, end: Option<i64>) -> std::ops::Range<usize> {
        let from = start.map_or(0, |start| {
            self.events.partition_point(|event| event.timestamp < start)
        });
        let to = end.map_or(self.events.len(), |end| {
            self.events.partition_point(|event| event.timestamp < end)
        });
        from..to.max(from)
    }
}

impl Groups {
    /// Turns the pending lines that are visible at `now` into events. Answers whether any was.
    fn ingest_due(&mut self, now: i64) -> bool {
        let Groups {
            groups,
            next_event_id,
            delayed,
        } = self;
        let mut ingested = false;
        delayed.retain(|(group, stream)| {
            let Some(stream) = groups
                .get_mut(group)
                .and_then(|group| group.streams.get_mut(stream))
            else {
                return false;
            };
            let Some(driver) = stream.driver.as_mut() else {
                return false;
            };
            let times = ingestion::visible(&driver.pending, now);
            let due: Vec<PendingEvent> = driver.pending.drain(..times.len()).collect();
            let done = driver.pending.is_empty();
            if done && driver.closed_at.is_some() {
                stream.driver = None;
            }
            for (event, ingestion_time) in due.into_iter().zip(times) {
                stream.insert(StoredEvent {
                    timestamp: event.timestamp,
                    ingestion_time,
                    id: *next_event_id,
                    message: event.message,
                });
                *next_event_id += 1;
                ingested = true;
            }
            !done
        });
        ingested
    }
}

impl LogStore {
    pub fn open(state_dir: Option<&Path>, clock: SharedClock) -> Result<LogStore, EngineError> {
        let state_file = state_dir.map(|dir| dir.join(STATE_FILE));
        let groups = match &state_file {
            Some(path) => read_state(path)?,
            None => Groups::default(),
        };
        Ok(LogStore {
            inner: Arc::new(Mutex::new(groups)),
            clock,
            state_file,
            dirty: Arc::default(),
        })
    }

    pub async fn handle(&self, request: Request<'_>) -> Result<Vec<u8>, AwsError> {
        let region = request.region;
        let body = request.body;
        match request.target.operation.as_str() {
            "CreateLogGroup" => self
                .create_log_group(decode_input(body)?)
                .map(|()| encode_output(&api::Empty {})),
            "DeleteLogGroup" => self
                .delete_log_group(decode_input(body)?)
                .map(|()| encode_output(&api::Empty {})),
            "DescribeLogGroups" => self
                .describe_log_groups(region, decode_input(body)?)
                .map(|out| encode_output(&out)),
            "CreateLogStream" => self
                .create_log_stream(decode_input(body)?)
                .map(|()| encode_output(&api::Empty {})),
            "DescribeLogStreams" => self
                .describe_log_streams(region, decode_input(body)?)
                .map(|out| encode_output(&out)),
            "PutLogEvents" => self
                .put_log_events(decode_input(body)?)
                .map(|out| encode_output(&out)),
            "GetLogEvents" => self
                .get_log_events(decode_input(body)?)
                .map(|out| encode_output(&out)),
            "FilterLogEvents" => self
                .filter_log_events(decode_input(body)?)
                .map(|out| encode_output(&out)),
            _ => Err(AwsError::unknown_operation(format!(
                "shipmate local does not implement the CloudWatch Logs operation {} (see docs/local-endpoint.md for what it serves)",
                request.target.operation
            ))),
        }
    }

    /// Writes the store to the state directory if it changed since the last flush. Errors are
    /// logged, not returned: a failed flush must not fail the request that triggered it.
    pub fn flush(&self) {
        let Some(path) = &self.state_file else { return };
        if !self.dirty.swap(false, Ordering::SeqCst) {
            return;
        }
        let bytes = {
            let groups = self.lock();
            serde_json::to_vec(&*groups).expect("the log store always serializes")
        };
        if let Err(error) = write_atomically(path, &bytes) {
            self.dirty.store(true, Ordering::SeqCst);
            tracing::error!(path = %path.display(), %error, "cannot write the log store");
        }
    }

    /// The store as readers see it at this moment: delayed lines that are due are ingested first.
    fn lock(&self) -> MutexGuard<'_, Groups> {
        let mut groups = self.inner.lock().expect("log store lock");
        if !groups.delayed.is_empty() && groups.ingest_due(self.now_ms()) {
            self.changed();
        }
        groups
    }

    fn changed(&self) {
        self.dirty.store(true, Ordering::SeqCst);
    }

    fn now_ms(&self) -> i64 {
        epoch_millis(self.clock.now())
    }

    // --- used by the awslogs log driver ---

    pub fn group_exists(&self, group: &str) -> bool {
        self.lock().groups.contains_key(group)
    }

    /// Creates the group if missing (`awslogs-create-group=true`).
    pub fn ensure_group(&self, group: &str) {
        let now = self.now_ms();
        self.lock()
            .groups
            .entry(group.to_owned())
            .or_insert_with(|| LogGroup {
                creation_time: now,
                ..Default::default()
            });
        self.changed();
    }

    /// Creates the stream if missing; does nothing when the group does not exist.
    pub fn ensure_stream(&self, group: &str, stream: &str) {
        let now = self.now_ms();
        if let Some(group) = self.lock().groups.get_mut(group) {
            group
                .streams
                .entry(stream.to_owned())
                .or_insert_with(|| LogStream {
                    creation_time: now,
                    ..Default::default()
                });
        }
        self.changed();
    }

    /// A container with the awslogs driver is starting: creates its stream if missing (the driver
    /// creates it before the container starts, so it exists while empty) and starts the driver's
    /// batch ticker. Does nothing when the group does not exist.
    pub fn open_driver(&self, group: &str, stream: &str) {
        self.ensure_stream(group, stream);
        let now = self.now_ms();
        if let Some(stream) = self.lock().stream_mut(group, stream) {
            let pending = stream.driver.take().map(|d| d.pending).unwrap_or_default();
            stream.driver = Some(Driver {
                opened_at: now,
                closed_at: None,
                pending,
            });
        }
    }

    /// One line a container wrote through its awslogs driver, timestamped now. With `delay` (the
    /// `delay_log_ingestion` fault) it becomes visible when `ingestion.rs` says; without, at once
    /// unless earlier lines of the stream are still held (a stream's lines show up in order).
    /// Dropped if the stream is gone, as CloudWatch drops writes to a deleted group.
    pub fn driver_append(
        &self,
        group: &str,
        stream: &str,
        message: String,
        delay: Option<IngestionDelay>,
    ) {
        let now = self.now_ms();
        let mut groups = self.lock();
        let Some(log_stream) = groups.stream_mut(group, stream) else {
            return;
        };
        let holding = log_stream
            .driver
            .as_ref()
            .is_some_and(|driver| !driver.pending.is_empty());
        if delay.is_none() && !holding {
            groups.insert_visible(group, stream, now, now, message);
            drop(groups);
            return self.changed();
        }
        let driver = log_stream.driver.get_or_insert_with(|| Driver {
            opened_at: now,
            ..Driver::default()
        });
        let (batch, visible_after) = delay.map_or((0, 0), |delay| {
            (millis(delay.batch), millis(delay.visible_after))
        });
        driver.pending.push(PendingEvent {
            timestamp: now,
            message,
            sent_at: ingestion::sent_at(driver.opened_at, now, batch, driver.closed_at.is_some()),
            visible_after,
        });
        groups.delayed.insert((group.to_owned(), stream.to_owned()));
        drop(groups);
        self.changed();
    }

    /// The container stopped: its driver sends every line it still holds now.
    pub fn close_driver(&self, group: &str, stream: &str) {
        let now = self.now_ms();
        let mut groups = self.lock();
        let Some(stream) = groups.stream_mut(group, stream) else {
            return;
        };
        let Some(driver) = stream.driver.as_mut() else {
            return;
        };
        ingestion::flush(&mut driver.pending, now);
        driver.closed_at = Some(now);
        if driver.pending.is_empty() {
            stream.driver = None;
        }
        drop(groups);
        self.changed();
    }

    /// Appends one event (epoch milliseconds) to an existing stream, visible at once; dropped if
    /// the stream is gone (as CloudWatch drops writes to a deleted group).
    pub fn append(&self, group: &str, stream: &str, timestamp_ms: i64, message: String) {
        let now = self.now_ms();
        let stored = self
            .lock()
            .insert_visible(group, stream, timestamp_ms, now, message);
        if stored {
            self.changed();
        }
    }

    /// Every event of a stream in order, or `None` if the group or stream does not exist.
    pub fn events(&self, group: &str, stream: &str) -> Option<Vec<LogEvent>> {
        self.lock().groups.get(group)?.streams.get(stream).map(|s| {
            s.events
                .iter()
                .map(|event| LogEvent {
                    timestamp: event.timestamp,
                    ingestion_time: event.ingestion_time,
                    message: event.message.clone(),
                })
                .collect()
        })
    }

    // --- the Logs operations ---

    pub fn create_log_group(&self, input: api::CreateLogGroupRequest) -> Result<(), AwsError> {
        validate_group_name(&input.log_group_name)?;
        if let Some(class) = &input.log_group_class
            && !["STANDARD", "INFREQUENT_ACCESS", "DELIVERY", "ESSENTIALS"]
                .contains(&class.as_str())
        {
            return Err(invalid_parameter(format!(
                "1 validation error detected: Value '{class}' at 'logGroupClass' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, INFREQUENT_ACCESS, DELIVERY, ESSENTIALS]"
            )));
        }
        let now = self.now_ms();
        let mut groups = self.lock();
        if groups.groups.contains_key(&input.log_group_name) {
            return Err(AwsError::client(
                "ResourceAlreadyExistsException",
                "The specified log group already exists",
            ));
        }
        groups.groups.insert(
            input.log_group_name,
            LogGroup {
                creation_time: now,
                log_group_class: input.log_group_class,
                deletion_protection_enabled: input.deletion_protection_enabled.unwrap_or(false),
                streams: BTreeMap::new(),
            },
        );
        drop(groups);
        self.changed();
        Ok(())
    }

    pub fn delete_log_group(&self, input: api::DeleteLogGroupRequest) -> Result<(), AwsError> {
        let mut groups = self.lock();
        let group = groups
            .groups
            .get(&input.log_group_name)
            .ok_or_else(group_not_found)?;
        if group.deletion_protection_enabled {
            return Err(AwsError::client(
                "OperationAbortedException",
                format!(
                    "Log group {} has deletion protection enabled",
                    input.log_group_name
                ),
            ));
        }
        groups.groups.remove(&input.log_group_name);
        drop(groups);
        self.changed();
        Ok(())
    }

    pub fn describe_log_groups(
        &self,
        region: &str,
        input: api::DescribeLogGroupsRequest,
    ) -> Result<api::DescribeLogGroupsResponse, AwsError> {
        if input.log_group_name_prefix.is_some() && input.log_group_name_pattern.is_some() {
            return Err(invalid_parameter(
                "LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive",
            ));
        }
        let limit = check_limit(input.limit, 50)?;
        let after = input
            .next_token
            .as_deref()
            .map(|token| name_cursor(token, "g/"))
            .transpose()?;
        let groups = self.lock();
        let mut matching = groups.groups.iter().filter(|(name, group)| {
            input
                .log_group_name_prefix
                .as_deref()
                .is_none_or(|prefix| name.starts_with(prefix))
                && input
                    .log_group_name_pattern
                    .as_deref()
                    .is_none_or(|pattern| name.to_lowercase().contains(&pattern.to_lowercase()))
                && input
                    .log_group_identifiers
                    .as_ref()
                    .is_none_or(|ids| ids.iter().any(|id| group_name_of(id) == name.as_str()))
                && input.log_group_class.as_deref().is_none_or(|class| {
                    group.log_group_class.as_deref().unwrap_or("STANDARD") == class
                })
                && after.as_deref().is_none_or(|after| name.as_str() > after)
        });
        let page: Vec<_> = matching.by_ref().take(limit).collect();
        let more = matching.next().is_some();
        let next_token = match page.last() {
            Some((name, _)) if more => Some(format!("g/{name}")),
            _ => None,
        };
        let log_groups = page
            .into_iter()
            .map(|(name, group)| {
                let log_group_arn = format!("arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{name}");
                api::LogGroup {
                    log_group_name: name.clone(),
                    creation_time: group.creation_time,
                    retention_in_days: None,
                    metric_filter_count: 0,
                    arn: format!("{log_group_arn}:*"),
                    stored_bytes: group
                        .streams
                        .values()
                        .flat_map(|stream| &stream.events)
                        .map(|event| event.message.len() as i64)
                        .sum(),
                    log_group_class: group
                        .log_group_class
                        .clone()
                        .unwrap_or_else(|| "STANDARD".to_owned()),
                    log_group_arn,
                    deletion_protection_enabled: group.deletion_protection_enabled,
                }
            })
            .collect();
        Ok(api::DescribeLogGroupsResponse {
            log_groups,
            next_token,
        })
    }

    pub fn create_log_stream(&self, input: api::CreateLogStreamRequest) -> Result<(), AwsError> {
        validate_stream_name(&input.log_stream_name)?;
        let now = self.now_ms();
        let mut groups = self.lock();
        let group = groups
            .groups
            .get_mut(&input.log_group_name)
            .ok_or_else(group_not_found)?;
        if group.streams.contains_key(&input.log_stream_name) {
            return Err(AwsError::client(
                "ResourceAlreadyExistsException",
                "The specified log stream already exists",
            ));
        }
        group.streams.insert(
            input.log_stream_name,
            LogStream {
                creation_time: now,
                ..Default::default()
            },
        );
        drop(groups);
        self.changed();
        Ok(())
    }

    pub fn describe_log_streams(
        &self,
        region: &str,
        input: api::DescribeLogStreamsRequest,
    ) -> Result<api::DescribeLogStreamsResponse, AwsError> {
        let group_name = one_group(
            input.log_group_name.as_deref(),
            input.log_group_identifier.as_deref(),
        )?;
        let by_last_event = match input.order_by.as_deref() {
            None | Some("LogStreamName") => false,
            Some("LastEventTime") => true,
            Some(other) => {
                return Err(invalid_parameter(format!(
                    "1 validation error detected: Value '{other}' at 'orderBy' failed to satisfy constraint: Member must satisfy enum value set: [LogStreamName, LastEventTime]"
                )));
            }
        };
        if by_last_event && input.log_stream_name_prefix.is_some() {
            return Err(invalid_parameter(
                "Cannot order by LastEventTime with a logStreamNamePrefix.",
            ));
        }
        let limit = check_limit(input.limit, 50)?;
        let offset = input
            .next_token
            .as_deref()
            .map(offset_cursor)
            .transpose()?
            .unwrap_or(0);
        let groups = self.lock();
        let group = groups.groups.get(group_name).ok_or_else(group_not_found)?;
        let mut streams: Vec<(&String, &LogStream)> = group
            .streams
            .iter()
            .filter(|(name, _)| {
                input
                    .log_stream_name_prefix
                    .as_deref()
                    .is_none_or(|prefix| name.starts_with(prefix))
            })
            .collect();
        if by_last_event {
            // Streams without events sort as oldest; stable so names break ties.
            streams.sort_by_key(|(_, stream)| stream.events.last().map(|e| e.timestamp));
        }
        if input.descending.unwrap_or(false) {
            streams.reverse();
        }
        let total = streams.len();
        let end = (offset + limit).min(total);
        let log_streams = streams
            .get(offset.min(total)..end)
            .unwrap_or_default()
            .iter()
            .map(|(name, stream)| api::LogStream {
                log_stream_name: (*name).clone(),
                creation_time: stream.creation_time,
                first_event_timestamp: stream.events.first().map(|e| e.timestamp),
                last_event_timestamp: stream.events.last().map(|e| e.timestamp),
                last_ingestion_time: stream.last_ingestion_time,
                arn: format!(
                    "arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{group_name}:log-stream:{name}"
                ),
                stored_bytes: 0,
            })
            .collect();
        Ok(api::DescribeLogStreamsResponse {
            log_streams,
            next_token: (end < total).then(|| format!("o/{end}")),
        })
    }

    pub fn put_log_events(
        &self,
        input: api::PutLogEventsRequest,
    ) -> Result<api::PutLogEventsResponse, AwsError> {
        let events = &input.log_events;
        if events.is_empty() || events.len() > MAX_BATCH_EVENTS {
            return Err(invalid_parameter(format!(
                "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length between 1 and {MAX_BATCH_EVENTS}"
            )));
        }
        if let Some(index) = events.iter().position(|event| event.message.is_empty()) {
            return Err(invalid_parameter(format!(
                "1 validation error detected: Value at 'logEvents.{}.member.message' failed to satisfy constraint: Member must have length greater than or equal to 1",
                index + 1
            )));
        }
        if events
            .iter()
            .any(|event| event.message.len() + EVENT_OVERHEAD > MAX_EVENT_BYTES)
        {
            return Err(invalid_parameter("Log event too large."));
        }
        let batch_bytes: usize = events
            .iter()
            .map(|event| event.message.len() + EVENT_OVERHEAD)
            .sum();
        if batch_bytes > MAX_BATCH_BYTES {
            return Err(invalid_parameter(format!(
                "Upload too large: {batch_bytes} bytes exceeds limit of {MAX_BATCH_BYTES}"
            )));
        }
        if events
            .windows(2)
            .any(|pair| pair[1].timestamp < pair[0].timestamp)
        {
            return Err(invalid_parameter(
                "Log events in a single PutLogEvents request must be in chronological order.",
            ));
        }
        let now = self.now_ms();
        let too_old_end = events.partition_point(|event| event.timestamp < now - millis(TOO_OLD));
        let too_new_start =
            events.partition_point(|event| event.timestamp <= now + millis(TOO_NEW));
        let accepted = &events[too_old_end..too_new_start.max(too_old_end)];
        if let (Some(first), Some(last)) = (accepted.first(), accepted.last())
            && last.timestamp - first.timestamp > millis(MAX_BATCH_SPAN)
        {
            return Err(invalid_parameter(
                "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
            ));
        }
        let mut groups = self.lock();
        let Groups {
            groups,
            next_event_id,
            ..
        } = &mut *groups;
        let group = groups
            .get_mut(&input.log_group_name)
            .ok_or_else(group_not_found)?;
        let stream = group
            .streams
            .get_mut(&input.log_stream_name)
            .ok_or_else(stream_not_found)?;
        for event in accepted {
            stream.insert(StoredEvent {
                timestamp: event.timestamp,
                ingestion_time: now,
                id: *next_event_id,
                message: event.message.clone(),
            });
            *next_event_id += 1;
        }
        self.changed();
        let rejected = api::RejectedLogEventsInfo {
            too_old_log_event_end_index: (too_old_end > 0).then_some(too_old_end as i32),
            too_new_log_event_start_index: (too_new_start < events.len())
                .then_some(too_new_start as i32),
            expired_log_event_end_index: None,
        };
        Ok(api::PutLogEventsResponse {
            next_sequence_token: None,
            rejected_log_events_info: (rejected != api::RejectedLogEventsInfo::default())
                .then_some(rejected),
        })
    }

    pub fn get_log_events(
        &self,
        input: api::GetLogEventsRequest,
    ) -> Result<api::GetLogEventsResponse, AwsError> {
        let group_name = one_group(
            input.log_group_name.as_deref(),
            input.log_group_identifier.as_deref(),
        )?;
        let limit = check_limit(input.limit, MAX_PAGE_EVENTS)?;
        let token = input.next_token.as_deref().map(Token::parse).transpose()?;
        let groups = self.lock();
        let stream = groups
            .groups
            .get(group_name)
            .ok_or_else(group_not_found)?
            .streams
            .get(&input.log_stream_name)
            .ok_or_else(stream_not_found)?;
        let window = stream.window(input.start_time, input.end_time);
        let page = paging::page(
            window,
            PageRequest {
                token,
                start_from_head: input.start_from_head.unwrap_or(false),
                limit,
            },
            |index| stream.events[index].size(),
        );
        Ok(api::GetLogEventsResponse {
            events: stream.events[page.range]
                .iter()
                .map(|event| api::OutputLogEvent {
                    timestamp: event.timestamp,
                    message: event.message.clone(),
                    ingestion_time: event.ingestion_time,
                })
                .collect(),
            next_forward_token: page.next_forward.render(),
            next_backward_token: page.next_backward.render(),
        })
    }

    pub fn filter_log_events(
        &self,
        input: api::FilterLogEventsRequest,
    ) -> Result<api::FilterLogEventsResponse, AwsError> {
        let group_name = one_group(
            input.log_group_name.as_deref(),
            input.log_group_identifier.as_deref(),
        )?;
        if input.log_stream_names.is_some() && input.log_stream_name_prefix.is_some() {
            return Err(invalid_parameter(
                "You cannot specify both LogStreamNames and LogStreamNamePrefix",
            ));
        }
        if let Some(names) = &input.log_stream_names
            && (names.is_empty() || names.len() > 100)
        {
            return Err(invalid_parameter(
                "1 validation error detected: Value at 'logStreamNames' failed to satisfy constraint: Member must have length between 1 and 100",
            ));
        }
        let limit = check_limit(input.limit, MAX_PAGE_EVENTS)?;
        let pattern = FilterPattern::parse(input.filter_pattern.as_deref().unwrap_or(""))?;
        let cursor = input
            .next_token
            .as_deref()
            .map(FilterCursor::parse)
            .transpose()?;
        // The token's direction wins over startFromHead on later pages.
        let newest_first = match cursor {
            Some(cursor) => cursor.newest_first,
            None => !input.start_from_head.unwrap_or(true),
        };
        if newest_first
            && cursor.is_none()
            && input
                .start_time
                .is_none_or(|start| start < NEWEST_FIRST_EARLIEST_START)
        {
            return Err(invalid_parameter(
                "startFromHead=false requires a startTime on or after 2024-01-01T00:00:00Z",
            ));
        }
        let groups = self.lock();
        let group = groups.groups.get(group_name).ok_or_else(group_not_found)?;
        let mut matching: Vec<(&str, &StoredEvent)> = group
            .streams
            .iter()
            .filter(
                |(name, _)| match (&input.log_stream_names, &input.log_stream_name_prefix) {
                    (Some(names), _) => names.iter().any(|wanted| wanted == *name),
                    (None, Some(prefix)) => name.starts_with(prefix.as_str()),
                    (None, None) => true,
                },
            )
            .flat_map(|(name, stream)| {
                let window = stream.window(input.start_time, input.end_time);
                stream.events[window]
                    .iter()
                    .map(move |event| (name.as_str(), event))
            })
            .filter(|(_, event)| pattern.matches(&event.message))
            .filter(|(_, event)| {
                cursor.is_none_or(|cursor| {
                    let key = (event.timestamp, event.id);
                    if cursor.newest_first {
                        key < cursor.last
                    } else {
                        key > cursor.last
                    }
                })
            })
            .collect();
        matching.sort_by_key(|(_, event)| (event.timestamp, event.id));
        if newest_first {
            matching.reverse();
        }
        let mut taken = 0;
        let mut bytes = 0;
        for (_, event) in &matching {
            if taken == limit {
                break;
            }
            bytes += event.size();
            if bytes > MAX_PAGE_BYTES && taken > 0 {
                break;
            }
            taken += 1;
        }
        let next_token = (taken < matching.len()).then(|| {
            let (_, last) = matching[taken - 1];
            FilterCursor {
                newest_first,
                last: (last.timestamp, last.id),
            }
            .render()
        });
        Ok(api::FilterLogEventsResponse {
            events: matching[..taken]
                .iter()
                .map(|(stream, event)| api::FilteredLogEvent {
                    log_stream_name: (*stream).to_owned(),
                    timestamp: event.timestamp,
                    message: event.message.clone(),
                    ingestion_time: event.ingestion_time,
                    event_id: format!("{:056}", event.id),
                })
                .collect(),
            searched_log_streams: Vec::new(),
            next_token,
        })
    }
}

/// Where a FilterLogEvents page ended: the last returned event's (timestamp, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FilterCursor {
    newest_first: bool,
    last: (i64, u64),
}

impl FilterCursor {
    fn parse(token: &str) -> Result<FilterCursor, AwsError> {
        let invalid = || invalid_parameter("The specified nextToken is invalid.");
        let mut parts = token.split('/');
        let newest_first = match parts.next() {
            Some("a") => false,
            Some("d") => true,
            _ => return Err(invalid()),
        };
        let timestamp = parts
            .next()
            .and_then(|t| t.parse().ok())
            .ok_or_else(invalid)?;
        let id = parts
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(invalid)?;
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(FilterCursor {
            newest_first,
            last: (timestamp, id),
        })
    }

    fn render(self) -> String {
        let direction = if self.newest_first { "d" } else { "a" };
        format!("{direction}/{}/{}", self.last.0, self.last.1)
    }
}

fn invalid_parameter(message: impl Into<String>) -> AwsError {
    AwsError::client("InvalidParameterException", message)
}

fn group_not_found() -> AwsError {
    AwsError::client(
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    )
}

fn stream_not_found() -> AwsError {
    AwsError::client(
        "ResourceNotFoundException",
        "The specified log stream does not exist.",
    )
}

fn millis(duration: Duration) -> i64 {
    duration.as_millis() as i64
}

fn check_limit(limit: Option<i32>, max: usize) -> Result<usize, AwsError> {
    match limit {
        None => Ok(max),
        Some(limit) if limit >= 1 && limit as usize <= max => Ok(limit as usize),
        Some(limit) => Err(invalid_parameter(format!(
            "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {max}"
        ))),
    }
}

fn name_cursor(token: &str, prefix: &str) -> Result<String, AwsError> {
    token
        .strip_prefix(prefix)
        .map(str::to_owned)
        .ok_or_else(|| invalid_parameter("The specified nextToken is invalid."))
}

fn offset_cursor(token: &str) -> Result<usize, AwsError> {
    token
        .strip_prefix("o/")
        .and_then(|offset| offset.parse().ok())
        .ok_or_else(|| invalid_parameter("The specified nextToken is invalid."))
}

/// The group of a request that takes `logGroupName` or `logGroupIdentifier` (exactly one).
fn one_group<'a>(name: Option<&'a str>, identifier: Option<&'a str>) -> Result<&'a str, AwsError> {
    match (name, identifier) {
        (Some(name), None) => Ok(name),
        (None, Some(identifier)) => Ok(group_name_of(identifier)),
        _ => Err(invalid_parameter(
            "Either logGroupName or logGroupIdentifier must be specified, but not both.",
        )),
    }
}

/// A `logGroupIdentifier` is a name or an ARN (`arn:aws:logs:R:A:log-group:NAME[:*]`).
fn group_name_of(identifier: &str) -> &str {
    match identifier.split_once(":log-group:") {
        Some((arn, rest)) if arn.starts_with("arn:") => rest.strip_suffix(":*").unwrap_or(rest),
        _ => identifier,
    }
}

fn validate_group_name(name: &str) -> Result<(), AwsError> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#'));
    if name.is_empty() || name.len() > 512 || !valid_chars {
        return Err(invalid_parameter(format!(
            "1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"
        )));
    }
    if name.starts_with("aws/") {
        return Err(invalid_parameter(
            "Log group names starting with aws/ are reserved for AWS services.",
        ));
    }
    Ok(())
}

fn validate_stream_name(name: &str) -> Result<(), AwsError> {
    if name.is_empty() || name.len() > 512 || name.contains([':', '*']) {
        return Err(invalid_parameter(format!(
            "1 validation error detected: Value '{name}' at 'logStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*"
        )));
    }
    Ok(())
}

fn read_state(path: &Path) -> Result<Groups, EngineError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| EngineError::CorruptState {
            path: path.to_owned(),
            source,
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Groups::default()),
        Err(source) => Err(EngineError::StateDir {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes via a temporary file and a rename, so a crash never leaves half a state file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

/// Milliseconds since the Unix epoch, as CloudWatch Logs counts time.
pub fn epoch_millis(time: std::time::SystemTime) -> i64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
