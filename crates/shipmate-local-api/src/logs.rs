//! CloudWatch Logs (2014-03-28) request and response types for the operations `shipmate local`
//! serves. Member names and types follow the service model: camelCase, every time a `long` of
//! epoch milliseconds, absent optionals omitted (never `null`). Request members the endpoint
//! accepts but ignores (`kmsKeyId`, `unmask`, …) are still declared so the shape is documented.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

// --- log groups ---

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateLogGroupRequest {
    pub log_group_name: String,
    pub kms_key_id: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
    pub log_group_class: Option<String>,
    pub deletion_protection_enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteLogGroupRequest {
    pub log_group_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogGroupsRequest {
    pub account_identifiers: Option<Vec<String>>,
    pub log_group_name_prefix: Option<String>,
    pub log_group_name_pattern: Option<String>,
    pub next_token: Option<String>,
    pub limit: Option<i32>,
    pub include_linked_accounts: Option<bool>,
    pub log_group_class: Option<String>,
    pub log_group_identifiers: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogGroupsResponse {
    pub log_groups: Vec<LogGroup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogGroup {
    pub log_group_name: String,
    pub creation_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_in_days: Option<i32>,
    pub metric_filter_count: i32,
    /// `arn:aws:logs:REGION:ACCOUNT:log-group:NAME:*` (with the trailing `:*`).
    pub arn: String,
    pub stored_bytes: i64,
    pub log_group_class: String,
    /// The ARN without the trailing `:*`.
    pub log_group_arn: String,
    pub deletion_protection_enabled: bool,
}

// --- log streams ---

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateLogStreamRequest {
    pub log_group_name: String,
    pub log_stream_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogStreamsRequest {
    pub log_group_name: Option<String>,
    pub log_group_identifier: Option<String>,
    pub log_stream_name_prefix: Option<String>,
    /// `LogStreamName` (default) or `LastEventTime`.
    pub order_by: Option<String>,
    pub descending: Option<bool>,
    pub next_token: Option<String>,
    pub limit: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeLogStreamsResponse {
    pub log_streams: Vec<LogStream>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogStream {
    pub log_stream_name: String,
    pub creation_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_event_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_ingestion_time: Option<i64>,
    pub arn: String,
    /// Always 0, as CloudWatch has reported since 2019.
    pub stored_bytes: i64,
}

// --- events ---

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLogEventsRequest {
    pub log_group_name: String,
    pub log_stream_name: String,
    pub log_events: Vec<InputLogEvent>,
    /// Ignored, as CloudWatch ignores it today.
    pub sequence_token: Option<String>,
    pub entity: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputLogEvent {
    pub timestamp: i64,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLogEventsResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_sequence_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_log_events_info: Option<RejectedLogEventsInfo>,
}

/// Which events of a PutLogEvents batch were refused (indexes into the batch).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedLogEventsInfo {
    /// Events from this index on are more than 2 hours in the future (inclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub too_new_log_event_start_index: Option<i32>,
    /// Events before this index are more than 14 days old (exclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub too_old_log_event_end_index: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired_log_event_end_index: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogEventsRequest {
    pub log_group_name: Option<String>,
    pub log_group_identifier: Option<String>,
    pub log_stream_name: String,
    /// Inclusive, epoch ms.
    pub start_time: Option<i64>,
    /// Exclusive, epoch ms.
    pub end_time: Option<i64>,
    pub next_token: Option<String>,
    pub limit: Option<i32>,
    /// Default false: the first page holds the newest events.
    pub start_from_head: Option<bool>,
    pub unmask: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogEventsResponse {
    pub events: Vec<OutputLogEvent>,
    /// Never absent; equal to the token passed in once the end is reached.
    pub next_forward_token: String,
    pub next_backward_token: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputLogEvent {
    pub timestamp: i64,
    pub message: String,
    pub ingestion_time: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterLogEventsRequest {
    pub log_group_name: Option<String>,
    pub log_group_identifier: Option<String>,
    pub log_stream_names: Option<Vec<String>>,
    pub log_stream_name_prefix: Option<String>,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub filter_pattern: Option<String>,
    pub next_token: Option<String>,
    pub limit: Option<i32>,
    /// Ignored: results are always interleaved.
    pub interleaved: Option<bool>,
    pub unmask: Option<bool>,
    pub start_from_head: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterLogEventsResponse {
    pub events: Vec<FilteredLogEvent>,
    /// Always empty, as CloudWatch has answered since 2020.
    pub searched_log_streams: Vec<SearchedLogStream>,
    /// Absent once every matching event was returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilteredLogEvent {
    pub log_stream_name: String,
    pub timestamp: i64,
    pub message: String,
    pub ingestion_time: i64,
    pub event_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchedLogStream {
    pub log_stream_name: String,
    pub searched_completely: bool,
}

/// The response of operations whose output is empty (`CreateLogGroup`, …).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_optionals_are_omitted_and_times_are_integers() {
        let stream = LogStream {
            log_stream_name: "app/web/1".into(),
            creation_time: 1_700_000_000_123,
            arn: "arn".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&stream).unwrap(),
            serde_json::json!({"logStreamName": "app/web/1", "creationTime": 1_700_000_000_123_i64, "arn": "arn", "storedBytes": 0})
        );
        let response = FilterLogEventsResponse::default();
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            serde_json::json!({"events": [], "searchedLogStreams": []})
        );
    }

    #[test]
    fn requests_read_model_member_names() {
        let request: GetLogEventsRequest = serde_json::from_str(
            r#"{"logGroupIdentifier":"g","logStreamName":"s","startFromHead":true,"limit":5}"#,
        )
        .unwrap();
        assert_eq!(request.log_group_identifier.as_deref(), Some("g"));
        assert_eq!(request.start_from_head, Some(true));
        assert_eq!(request.limit, Some(5));
    }
}
