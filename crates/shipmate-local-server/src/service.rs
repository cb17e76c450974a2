//! One HTTP request: the AWS JSON 1.1 path (`POST /` routed by `X-Amz-Target`) or the control
//! API under `/_shipmate/`. Whatever goes wrong, the client gets an AWS-shaped answer; the only
//! exception is an injected dropped connection, which is the point of that fault.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use shipmate_local_engine::DEFAULT_REGION;
use shipmate_local_protocol::{AwsError, CONTENT_TYPE as AWS_JSON, Service, Target};

use crate::Shared;
use crate::faults::FaultAction;
use crate::request_log::{self, RequestRecord};

mod control;

/// Largest AWS request body accepted. ECS and Logs inputs are far smaller (a full PutLogEvents
/// batch is 1 MiB plus overhead); anything bigger is refused without being buffered.
pub(crate) const MAX_AWS_BODY: usize = 10 * 1024 * 1024;
/// Beyond this, an oversized body is not even drained: the connection is closed after the error.
const MAX_DRAIN: usize = 64 * 1024 * 1024;

pub(crate) type Body = Full<Bytes>;

/// Returned to hyper to close the connection without a response (the drop-connection fault).
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by an injected fault")]
pub(crate) struct DropConnection;

pub(crate) async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let path = request.uri().path();
    if path == "/_shipmate" || path.starts_with("/_shipmate/") {
        return Ok(control::handle(&shared, request).await);
    }
    aws(&shared, request).await
}

async fn aws(
    shared: &Shared,
    request: Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut record = RequestRecord {
        request_id: request_id.clone(),
        service: None,
        operation: None,
        status: None,
        error_code: None,
        fault: None,
        time: shipmate_local_engine::logs::epoch_millis(std::time::SystemTime::now()),
        body: None,
    };
    let target_header = request
        .headers()
        .get("x-amz-target")
        .map(|value| value.to_str().unwrap_or("<not UTF-8>").to_owned());
    let outcome = route(shared, request, target_header.as_deref(), &mut record).await;
    let response = match outcome {
        Routed::Answer(Ok(body)) => {
            record.status = Some(200);
            aws_response(StatusCode::OK, body, &request_id, None)
        }
        Routed::Answer(Err(error)) => {
            record.status = Some(error.status);
            record.error_code = Some(error.code.clone());
            error_response(&error, &request_id)
        }
        Routed::Drop => {
            shared.request_log.record(record);
            return Err(DropConnection);
        }
    };
    shared.request_log.record(record);
    Ok(response)
}

enum Routed {
    Answer(Result<Vec<u8>, AwsError>),
    Drop,
}

async fn route(
    shared: &Shared,
    request: Request<Incoming>,
    target_header: Option<&str>,
    record: &mut RequestRecord,
) -> Routed {
    if request.uri().path() != "/" {
        return Routed::Answer(Err(AwsError::with_status(
            404,
            "UnknownOperationException",
            format!(
                "no such path `{}`: AWS JSON 1.1 requests are POST / with an X-Amz-Target header",
                request.uri().path()
            ),
        )));
    }
    if request.method() != Method::POST {
        return Routed::Answer(Err(AwsError::with_status(
            405,
            "UnknownOperationException",
            format!(
                "method {} is not allowed: AWS JSON 1.1 requests are POST / with an X-Amz-Target header",
                request.method()
            ),
        )));
    }
    let target = match target_header.map(Target::parse) {
        None => {
            return Routed::Answer(Err(AwsError::unknown_operation(
                "the request has no X-Amz-Target header",
            )));
        }
        Some(Err(error)) => return Routed::Answer(Err(error)),
        Some(Ok(target)) => target,
    };
    record.service = Some(
        match target.service {
            Service::Ecs => "ecs",
            Service::Logs => "logs",
        }
        .to_owned(),
    );
    record.operation = Some(target.operation.clone());
    let region = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(region_from_authorization)
        .unwrap_or(DEFAULT_REGION)
        .to_owned();
    let body = match read_body(request, MAX_AWS_BODY).await {
        Ok(body) => body,
        Err(error) => return Routed::Answer(Err(error)),
    };
    record.body = request_log::recorded_body(&body);
    if let Some(action) = shared.faults.take(&target) {
        record.fault = Some(action.name().to_owned());
        return match action {
            FaultAction::Respond(error) => Routed::Answer(Err(error)),
            FaultAction::Drop => Routed::Drop,
            FaultAction::Succeed(body) => Routed::Answer(Ok(body.to_vec())),
        };
    }
    let engine = shared.engine.clone();
    // A task of its own: a panic in an operation becomes a 500 instead of a dropped connection,
    // and a client hanging up does not cancel an operation halfway through.
    let operation = tokio::spawn(async move {
        engine
            .handle(shipmate_local_engine::Request {
                target: &target,
                region: &region,
                body: &body,
            })
            .await
    });
    Routed::Answer(operation.await.unwrap_or_else(|error| {
        tracing::error!(%error, "an operation panicked");
        Err(AwsError::server(
            "InternalFailure",
            "the request processing has failed because of an unknown error",
        ))
    }))
}

/// The region of a SigV4 `Authorization` header's credential scope
/// (`Credential=AKID/20261126/eu-west-1/ecs/aws4_request`).
pub(crate) fn region_from_authorization(value: &str) -> Option<&str> {
    let credential = value
        .split([',', ' '])
        .find_map(|part| part.trim().strip_prefix("Credential="))?;
    credential.split('/').nth(2).filter(|region| {
        !region.is_empty()
            && region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// Reads the whole body, refusing one larger than `limit` with an AWS-shaped 413. An oversized
/// body is drained (up to a cap) so the client, still sending, gets to read the error.
pub(crate) async fn read_body(request: Request<Incoming>, limit: usize) -> Result<Bytes, AwsError> {
    let too_large = || {
        AwsError::with_status(
            413,
            "RequestEntityTooLargeException",
            format!("the request body is larger than the {limit} bytes this endpoint accepts"),
        )
    };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_DRAIN as u64) {
        return Err(too_large());
    }
    let mut body = request.into_body();
    let mut collected = BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            AwsError::serialization(format!("cannot read the request body: {error}"))
        })?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen > MAX_DRAIN {
                break;
            }
            if seen <= limit {
                collected.extend_from_slice(&data);
            }
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(collected.freeze())
}

pub(crate) fn aws_response(
    status: StatusCode,
    body: Vec<u8>,
    request_id: &str,
    error_code: Option<&str>,
) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(AWS_JSON));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-RequestId", value);
    }
    if let Some(value) = error_code.and_then(|code| HeaderValue::from_str(code).ok()) {
        headers.insert("X-Amzn-ErrorType", value);
    }
    response
}

pub(crate) fn error_response(error: &AwsError, request_id: &str) -> Response<Body> {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = aws_response(status, error.body(), request_id, Some(&error.code));
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        // The rest of the body may still be on the wire; don't try to reuse the connection.
        response
            .headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_comes_from_the_credential_scope() {
        let header = "AWS4-HMAC-SHA256 Credential=AKIDTEST/20261126/eu-west-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        assert_eq!(region_from_authorization(header), Some("eu-west-1"));
        assert_eq!(
            region_from_authorization("AWS4-HMAC-SHA256 SignedHeaders=host"),
            None
        );
        assert_eq!(
            region_from_authorization("AWS4-HMAC-SHA256 Credential=AKID/20261126//ecs/x"),
            None
        );
    }
}
