//! Wire-level fault injection: make the next N calls of an operation fail the way AWS fails
//! (throttling, server faults, 503s, connections closed without a response) or answer what AWS
//! never answers (an empty `{}`), so clients' retry and error paths can be tested against the
//! local endpoint. Engine-level faults (placement,
//! image pulls, lifecycle delays) live in the engine; the control API forwards those.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use shipmate_local_protocol::{AwsError, Service, Target};

/// What to do to matching calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireFaultKind {
    /// `ThrottlingException`, HTTP 400, "Rate exceeded" (both SDKs retry it as a throttle).
    Throttle,
    /// The service's modeled server fault, HTTP 500: ECS `ServerException`, Logs
    /// `ServiceUnavailableException`.
    ServerError,
    /// A plain HTTP 503 `ServiceUnavailable`, as a load balancer in front of AWS answers.
    Unavailable,
    /// Close the connection without any response.
    DropConnection,
    /// HTTP 200 with the body `{}`: valid JSON with every member missing, an answer ECS never
    /// gives (DescribeTasks without `tasks`), for testing how a client handles the impossible.
    EmptyResponse,
}

/// One armed fault: the next `count` calls of `operation` (optionally of one service only;
/// `"*"` matches every operation) get `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireFault {
    pub kind: WireFaultKind,
    pub operation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<FaultService>,
    pub count: u32,
}

/// `ecs` or `logs`, for the few operation names both services have (`TagResource`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultService {
    Ecs,
    Logs,
}

impl FaultService {
    fn matches(self, service: Service) -> bool {
        matches!(
            (self, service),
            (FaultService::Ecs, Service::Ecs) | (FaultService::Logs, Service::Logs)
        )
    }
}

impl WireFault {
    pub fn new(kind: WireFaultKind, operation: impl Into<String>, count: u32) -> WireFault {
        WireFault {
            kind,
            operation: operation.into(),
            service: None,
            count,
        }
    }

    fn matches(&self, target: &Target) -> bool {
        (self.operation == "*" || self.operation == target.operation)
            && self.service.is_none_or(|s| s.matches(target.service))
    }
}

/// What the server does with a call a fault caught.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    Respond(AwsError),
    Drop,
    /// Answer 200 with this body instead of calling the engine.
    Succeed(&'static [u8]),
}

impl FaultAction {
    fn for_kind(kind: WireFaultKind, target: &Target) -> FaultAction {
        match kind {
            WireFaultKind::Throttle => FaultAction::Respond(AwsError::throttling()),
            WireFaultKind::ServerError => FaultAction::Respond(match target.service {
                Service::Ecs => AwsError::server(
                    "ServerException",
                    "These errors are usually caused by a server issue (injected fault).",
                ),
                Service::Logs => AwsError::server(
                    "ServiceUnavailableException",
                    "The service cannot complete the request (injected fault).",
                ),
            }),
            WireFaultKind::Unavailable => FaultAction::Respond(AwsError::with_status(
                503,
                "ServiceUnavailable",
                "Service Unavailable (injected fault)",
            )),
            WireFaultKind::DropConnection => FaultAction::Drop,
            WireFaultKind::EmptyResponse => FaultAction::Succeed(b"{}"),
        }
    }

    /// The short name recorded in the request log.
    pub fn name(&self) -> &'static str {
        match self {
            FaultAction::Respond(error) if error.code == "ThrottlingException" => "throttle",
            FaultAction::Respond(error) if error.status == 503 => "unavailable",
            FaultAction::Respond(_) => "server_error",
            FaultAction::Drop => "drop_connection",
            FaultAction::Succeed(_) => "empty_response",
        }
    }
}

/// The armed faults, consumed in the order they were added.
#[derive(Debug, Default)]
pub struct WireFaults {
    armed: Mutex<Vec<WireFault>>,
}

impl WireFaults {
    pub fn add(&self, fault: WireFault) {
        if fault.count > 0 {
            self.lock().push(fault);
        }
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Faults still armed, with their remaining counts.
    pub fn list(&self) -> Vec<WireFault> {
        self.lock().clone()
    }

    /// Consumes one use of the first fault matching `target`, if any.
    pub fn take(&self, target: &Target) -> Option<FaultAction> {
        let mut armed = self.lock();
        let index = armed.iter().position(|fault| fault.matches(target))?;
        let kind = armed[index].kind;
        armed[index].count -= 1;
        if armed[index].count == 0 {
            armed.remove(index);
        }
        Some(FaultAction::for_kind(kind, target))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<WireFault>> {
        self.armed.lock().expect("fault table lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(header: &str) -> Target {
        Target::parse(header).unwrap()
    }

    #[test]
    fn a_fault_hits_exactly_count_matching_calls() {
        let faults = WireFaults::default();
        faults.add(WireFault::new(WireFaultKind::Throttle, "RunTask", 2));
        let run_task = target("AmazonEC2ContainerServiceV20141113.RunTask");
        let describe = target("AmazonEC2ContainerServiceV20141113.DescribeTasks");
        assert_eq!(faults.take(&describe), None);
        for _ in 0..2 {
            let Some(FaultAction::Respond(error)) = faults.take(&run_task) else {
                panic!("expected a throttle");
            };
            assert_eq!(
                (error.status, error.code.as_str()),
                (400, "ThrottlingException")
            );
            assert_eq!(error.message, "Rate exceeded");
        }
        assert_eq!(faults.take(&run_task), None);
        assert!(faults.list().is_empty());
    }

    #[test]
    fn server_errors_use_each_services_fault_shape() {
        let faults = WireFaults::default();
        faults.add(WireFault::new(WireFaultKind::ServerError, "*", 2));
        let Some(FaultAction::Respond(ecs)) =
            faults.take(&target("AmazonEC2ContainerServiceV20141113.RunTask"))
        else {
            panic!("expected a server error");
        };
        assert_eq!((ecs.status, ecs.code.as_str()), (500, "ServerException"));
        let Some(FaultAction::Respond(logs)) = faults.take(&target("Logs_20140328.GetLogEvents"))
        else {
            panic!("expected a server error");
        };
        assert_eq!(
            (logs.status, logs.code.as_str()),
            (500, "ServiceUnavailableException")
        );
    }

    #[test]
    fn service_filter_separates_same_named_operations() {
        let faults = WireFaults::default();
        let mut fault = WireFault::new(WireFaultKind::DropConnection, "TagResource", 1);
        fault.service = Some(FaultService::Logs);
        faults.add(fault);
        assert_eq!(
            faults.take(&target("AmazonEC2ContainerServiceV20141113.TagResource")),
            None
        );
        assert_eq!(
            faults.take(&target("Logs_20140328.TagResource")),
            Some(FaultAction::Drop)
        );
    }

    #[test]
    fn an_empty_response_is_a_success_with_an_empty_object() {
        let faults = WireFaults::default();
        faults.add(WireFault::new(
            WireFaultKind::EmptyResponse,
            "DescribeTaskDefinition",
            1,
        ));
        let describe = target("AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition");
        let action = faults.take(&describe).expect("armed");
        assert_eq!(action, FaultAction::Succeed(b"{}"));
        assert_eq!(action.name(), "empty_response");
        assert_eq!(faults.take(&describe), None);
    }

    #[test]
    fn fault_json_is_stable() {
        let fault: WireFault =
            serde_json::from_str(r#"{"kind":"unavailable","operation":"GetLogEvents","count":3}"#)
                .unwrap();
        assert_eq!(
            fault,
            WireFault::new(WireFaultKind::Unavailable, "GetLogEvents", 3)
        );
    }
}
