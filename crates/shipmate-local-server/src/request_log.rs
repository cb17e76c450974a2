//! Every AWS call the endpoint answered, in memory, so tests can assert what a client did (for
//! example that `shipmate plan` made no mutating call, or what a RegisterTaskDefinition carried).
//! Control API calls are not recorded.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// How many records are kept; the oldest go first.
const CAPACITY: usize = 10_000;
/// Bodies larger than this are not kept (a full PutLogEvents batch is 1 MiB): the log stays
/// within 10,000 × 64 KiB of bodies, and no ECS request a release makes comes close.
pub const MAX_RECORDED_BODY: usize = 64 * 1024;

/// One answered (or dropped) AWS call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub request_id: String,
    /// `ecs` or `logs`; absent when the request named no known service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The operation from `X-Amz-Target`; absent when there was none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// HTTP status sent; absent when the connection was dropped by a fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The AWS error code (`__type`) of an error response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The injected fault that answered this call, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// When the request arrived, epoch milliseconds.
    pub time: i64,
    /// The request body as JSON (see [`recorded_body`]); absent when it was not read (no known
    /// operation, too large to accept) or was not JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

/// What the log keeps of a request body: the JSON as sent, with an empty (or all-whitespace)
/// body read as `{}` as operations read it; for a body over [`MAX_RECORDED_BODY`] bytes, the
/// string `"<omitted: N bytes>"` (a request body is a JSON object, so a string cannot be
/// mistaken for one); nothing for a body that is not JSON.
pub fn recorded_body(body: &[u8]) -> Option<serde_json::Value> {
    if body.len() > MAX_RECORDED_BODY {
        return Some(serde_json::Value::String(format!(
            "<omitted: {} bytes>",
            body.len()
        )));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Some(serde_json::Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(body).ok()
}

#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    records: Arc<Mutex<VecDeque<RequestRecord>>>,
}

impl RequestLog {
    pub fn record(&self, record: RequestRecord) {
        let mut records = self.lock();
        if records.len() == CAPACITY {
            records.pop_front();
        }
        records.push_back(record);
    }

    /// All records, oldest first.
    pub fn records(&self) -> Vec<RequestRecord> {
        self.lock().iter().cloned().collect()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<RequestRecord>> {
        self.records.lock().expect("request log lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize) -> RequestRecord {
        RequestRecord {
            request_id: n.to_string(),
            service: Some("ecs".into()),
            operation: Some("RunTask".into()),
            status: Some(200),
            error_code: None,
            fault: None,
            time: n as i64,
            body: None,
        }
    }

    #[test]
    fn keeps_the_newest_records_up_to_capacity() {
        let log = RequestLog::default();
        for n in 0..CAPACITY + 5 {
            log.record(record(n));
        }
        let records = log.records();
        assert_eq!(records.len(), CAPACITY);
        assert_eq!(records[0].request_id, "5");
        log.clear();
        assert!(log.records().is_empty());
    }

    #[test]
    fn bodies_are_kept_as_json_up_to_the_limit() {
        let sent = br#"{"family":"web","containerDefinitions":[{"name":"app","memory":64}]}"#;
        assert_eq!(
            recorded_body(sent),
            Some(
                serde_json::json!({"family": "web", "containerDefinitions": [{"name": "app", "memory": 64}]})
            )
        );
        assert_eq!(recorded_body(b""), Some(serde_json::json!({})));
        assert_eq!(recorded_body(b" \n"), Some(serde_json::json!({})));
        assert_eq!(recorded_body(b"{\"family\": "), None);
        assert_eq!(recorded_body(b"[1, 2]"), Some(serde_json::json!([1, 2])));

        let mut largest = br#"{"message":""#.to_vec();
        largest.resize(MAX_RECORDED_BODY - 2, b'a');
        largest.extend_from_slice(br#""}"#);
        assert!(recorded_body(&largest).is_some_and(|body| body.is_object()));
        largest.insert(2, b'm');
        assert_eq!(
            recorded_body(&largest),
            Some(serde_json::json!(format!(
                "<omitted: {} bytes>",
                MAX_RECORDED_BODY + 1
            )))
        );
    }

    #[test]
    fn absent_members_are_omitted() {
        let json = serde_json::to_value(record(1)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"requestId": "1", "service": "ecs", "operation": "RunTask", "status": 200, "time": 1})
        );
        let with_body = RequestRecord {
            body: Some(serde_json::json!({"cluster": "c"})),
            ..record(1)
        };
        assert_eq!(
            serde_json::to_value(with_body).unwrap()["body"],
            serde_json::json!({"cluster": "c"})
        );
    }
}
