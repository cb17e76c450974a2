//! Follows one awslogs stream with GetLogEvents from its head, forward token by forward token.
//! After the task stops, [`LogTail::drain`] keeps reading until CloudWatch Logs hands back the
//! token it was given (its documented end-of-stream signal), so the last lines are never lost.

use std::sync::Arc;

use aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsError;
use shipmate_release::event::{Event, TaskRole};

use crate::client::Clients;
use crate::error::{AwsError, ReleaseError};
use crate::reporter::Reporter;

pub struct LogTail {
    clients: Clients,
    reporter: Arc<dyn Reporter>,
    cluster: String,
    role: TaskRole,
    pub group: String,
    pub stream: String,
    token: Option<String>,
    pub lines: u64,
}

/// awslogs names streams `prefix/container/task-id`.
pub fn stream_name(prefix: Option<&str>, container: &str, task_id: &str) -> String {
    match prefix {
        Some(prefix) if !prefix.is_empty() => format!("{prefix}/{container}/{task_id}"),
        _ => format!("{container}/{task_id}"),
    }
}

impl LogTail {
    pub fn new(
        clients: Clients,
        reporter: Arc<dyn Reporter>,
        cluster: &str,
        role: TaskRole,
        group: String,
        stream: String,
    ) -> LogTail {
        LogTail {
            clients,
            reporter,
            cluster: cluster.to_owned(),
            role,
            group,
            stream,
            token: None,
            lines: 0,
        }
    }

    /// One GetLogEvents call. Returns true when the stream had nothing more (same token back,
    /// or the stream does not exist yet).
    pub async fn poll(&mut self) -> Result<bool, ReleaseError> {
        let result = self
            .clients
            .logs
            .get_log_events()
            .log_group_name(&self.group)
            .log_stream_name(&self.stream)
            .start_from_head(true)
            .set_next_token(self.token.clone())
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            // The stream appears with the container's first line; until then there is nothing.
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(GetLogEventsError::ResourceNotFoundException(_))
                ) =>
            {
                return Ok(true);
            }
            Err(error) => {
                return Err(ReleaseError::aws(
                    &self.cluster,
                    AwsError::from_sdk("GetLogEvents", &error),
                ));
            }
        };
        for event in output.events() {
            self.lines += 1;
            self.reporter.event(Event::LogLine {
                role: self.role,
                timestamp: event.timestamp().unwrap_or_default(),
                message: event
                    .message()
                    .unwrap_or_default()
                    .trim_end_matches(['\n', '\r'])
                    .to_owned(),
            });
        }
        let next = output.next_forward_token().map(str::to_owned);
        let unchanged = next.is_none() || next == self.token;
        if next.is_some() {
            self.token = next;
        }
        Ok(unchanged)
    }

    /// Reads until the end of the stream.
    pub async fn drain(&mut self) -> Result<(), ReleaseError> {
        // Bounded so a stream written forever cannot hold shipmate; 10,000 events per page.
        for _ in 0..10_000 {
            if self.poll().await? {
                return Ok(());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awslogs_stream_names() {
        assert_eq!(stream_name(Some("ecs"), "app", "abc"), "ecs/app/abc");
        assert_eq!(stream_name(None, "app", "abc"), "app/abc");
    }
}
