//! Every AWS call the endpoint answered, in memory, so tests can assert what a client did (for
//! example that `shipmate plan` made no mutating call). Control API calls are not recorded.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// How many records are kept; the oldest go first.
const CAPACITY: usize = 10_000;

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
    fn absent_members_are_omitted() {
        let json = serde_json::to_value(record(1)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"requestId": "1", "service": "ecs", "operation": "RunTask", "status": 200, "time": 1})
        );
    }
}
