//! The control API under `/_shipmate/`, outside the AWS namespace: health, image pushes, the
//! request log and fault injection. JSON in, JSON out; errors use the AWS envelope too so every
//! answer of the endpoint has one shape. Documented in docs/local-endpoint.md.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;
use shipmate_local_protocol::AwsError;

use super::{Body, aws_response, error_response, read_body};
use crate::Shared;
use crate::faults::WireFault;

/// Largest JSON body of the other control calls.
const MAX_CONTROL_BODY: usize = 1024 * 1024;

pub(super) async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    match route(shared, request).await {
        Ok((status, body)) => aws_response(status, body, &request_id, None),
        Err(error) => error_response(&error, &request_id),
    }
}

type Answer = Result<(StatusCode, Vec<u8>), AwsError>;

fn ok(value: &impl Serialize) -> Answer {
    Ok((
        StatusCode::OK,
        serde_json::to_vec(value).expect("control API answers always serialize"),
    ))
}

async fn route(shared: &Shared, request: Request<Incoming>) -> Answer {
    let path = request.uri().path().trim_end_matches('/').to_owned();
    let method = request.method().clone();
    match (method, path.as_str()) {
        (Method::GET, "/_shipmate/health") => ok(&serde_json::json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
        })),
        (Method::GET, "/_shipmate/requests") => ok(&serde_json::json!({
            "requests": shared.request_log.records(),
        })),
        (Method::DELETE, "/_shipmate/requests") => {
            shared.request_log.clear();
            ok(&serde_json::json!({}))
        }
        (Method::GET, "/_shipmate/faults") => ok(&serde_json::json!({
            "faults": shared.faults.list(),
        })),
        (Method::POST, "/_shipmate/faults") => {
            let body = read_body(request, MAX_CONTROL_BODY).await?;
            add_fault(shared, &body)?;
            ok(&serde_json::json!({}))
        }
        (Method::DELETE, "/_shipmate/faults") => {
            shared.faults.clear();
            ok(&serde_json::json!({}))
        }
        (method, path) => Err(AwsError::with_status(
            404,
            "NotFoundException",
            format!("the control API has no `{method} {path}`"),
        )),
    }
}

fn add_fault(shared: &Shared, body: &Bytes) -> Result<(), AwsError> {
    let fault: WireFault = serde_json::from_slice(body).map_err(|error| {
        AwsError::client(
            "InvalidParameterException",
            format!("not a fault description: {error}"),
        )
    })?;
    shared.faults.add(fault);
    Ok(())
}
