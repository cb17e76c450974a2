//! The CloudWatch Logs store: log groups, streams and events, and the Logs operations over them.
//! The ECS side writes container output here through the awslogs methods below.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use shipmate_local_protocol::AwsError;

use crate::clock::SharedClock;
use crate::{EngineError, Request};

#[derive(Debug, Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Groups>>,
    clock: SharedClock,
}

#[derive(Debug, Default)]
struct Groups {
    groups: BTreeMap<String, LogGroup>,
}

#[derive(Debug, Default)]
#[allow(dead_code)] // read by the Logs operations (DescribeLogGroups), next
struct LogGroup {
    creation_time: i64,
    streams: BTreeMap<String, LogStream>,
}

#[derive(Debug, Default)]
#[allow(dead_code)] // read by DescribeLogStreams, next
struct LogStream {
    creation_time: i64,
    events: Vec<LogEvent>,
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub timestamp: i64,
    pub ingestion_time: i64,
    pub message: String,
}

impl LogStore {
    pub fn open(_state_dir: Option<&Path>, clock: SharedClock) -> Result<LogStore, EngineError> {
        Ok(LogStore {
            inner: Arc::default(),
            clock,
        })
    }

    pub async fn handle(&self, request: Request<'_>) -> Result<Vec<u8>, AwsError> {
        Err(AwsError::unknown_operation(format!(
            "shipmate local does not implement {}",
            request.target
        )))
    }

    /// Writes everything buffered to the state directory, if there is one.
    pub fn flush(&self) {}

    fn lock(&self) -> MutexGuard<'_, Groups> {
        self.inner.lock().expect("log store lock")
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
    }

    /// Appends one event (epoch milliseconds) to an existing stream; dropped if the stream is gone
    /// (as CloudWatch drops writes to a deleted group).
    pub fn append(&self, group: &str, stream: &str, timestamp_ms: i64, message: String) {
        let now = self.now_ms();
        if let Some(stream) = self
            .lock()
            .groups
            .get_mut(group)
            .and_then(|g| g.streams.get_mut(stream))
        {
            stream.events.push(LogEvent {
                timestamp: timestamp_ms,
                ingestion_time: now,
                message,
            });
        }
    }

    /// Every event of a stream in order, or `None` if the group or stream does not exist.
    pub fn events(&self, group: &str, stream: &str) -> Option<Vec<LogEvent>> {
        self.lock()
            .groups
            .get(group)?
            .streams
            .get(stream)
            .map(|s| s.events.clone())
    }
}

/// Milliseconds since the Unix epoch, as CloudWatch Logs counts time.
pub fn epoch_millis(time: std::time::SystemTime) -> i64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
