//! The CloudWatch Logs store: log groups, streams and events, and the Logs operations over them.
//! The ECS side writes container output here through the awslogs methods below.

use std::path::Path;
use std::sync::{Arc, Mutex};

use shipmate_local_protocol::AwsError;

use crate::clock::SharedClock;
use crate::{EngineError, Request};

#[derive(Debug, Clone)]
pub struct LogStore {
    #[allow(dead_code)]
    inner: Arc<Mutex<()>>,
    #[allow(dead_code)]
    clock: SharedClock,
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

    // --- used by the awslogs log driver ---

    pub fn group_exists(&self, _group: &str) -> bool {
        false
    }

    /// Creates the group if missing (`awslogs-create-group=true`).
    pub fn ensure_group(&self, _group: &str) {}

    /// Creates the stream if missing; the group must exist.
    pub fn ensure_stream(&self, _group: &str, _stream: &str) {}

    /// Appends one event (epoch milliseconds) to an existing stream.
    pub fn append(&self, _group: &str, _stream: &str, _timestamp_ms: i64, _message: String) {}
}
