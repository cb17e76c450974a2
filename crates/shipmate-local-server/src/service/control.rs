//! The control API under `/_shipmate/`, outside the AWS namespace: health, image pushes, the
//! request log, fault injection and settings. JSON in, JSON out; errors use the AWS envelope too so every
//! answer of the endpoint has one shape. Documented in docs/local-endpoint.md.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Serialize;
use shipmate_local_engine::ecs::RateLimits;
use shipmate_local_engine::ecs::lifecycle::TaskStatus;
use shipmate_local_engine::logs::IngestionDelay;
use shipmate_local_protocol::AwsError;

use super::{Body, aws_response, error_response, read_body};
use crate::Shared;
use crate::faults::{WireFault, WireFaultKind};

/// Largest image archive accepted by `PUT /_shipmate/images`.
const MAX_IMAGE_ARCHIVE: usize = 4 * 1024 * 1024 * 1024;
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
        (Method::GET, "/_shipmate/settings") => ok(&Settings::of(shared)),
        (Method::PUT, "/_shipmate/settings") => {
            let body = read_body(request, MAX_CONTROL_BODY).await?;
            let update: SettingsUpdate = serde_json::from_slice(&body).map_err(|error| {
                AwsError::client(
                    "InvalidParameterException",
                    format!("not a settings update: {error}"),
                )
            })?;
            update.apply(shared)?;
            ok(&Settings::of(shared))
        }
        (Method::GET, "/_shipmate/images") => ok(&serde_json::json!({
            "images": shared.engine.images.list(),
        })),
        (Method::PUT, "/_shipmate/images") => push_image(shared, request).await,
        (Method::DELETE, "/_shipmate/faults") => {
            shared.faults.clear();
            shared.engine.ecs.faults().clear();
            ok(&serde_json::json!({}))
        }
        (method, path) => Err(AwsError::with_status(
            404,
            "NotFoundException",
            format!("the control API has no `{method} {path}`"),
        )),
    }
}

/// `PUT /_shipmate/images?name=IMAGE` with a tar archive body: streamed straight into the
/// image store's unpacker, never buffered whole.
async fn push_image(shared: &Shared, request: Request<Incoming>) -> Answer {
    let image = request
        .uri()
        .query()
        .and_then(|query| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == "name")
                .map(|(_, value)| value.into_owned())
        })
        .ok_or_else(|| {
            AwsError::client(
                "InvalidParameterException",
                "PUT /_shipmate/images needs ?name=<image> (URL-encoded)",
            )
        })?;
    let (chunks, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
    let images = shared.engine.images.clone();
    let name = image.clone();
    let unpacker = tokio::task::spawn_blocking(move || {
        images.push_tar(
            &name,
            ChannelReader {
                receiver,
                current: Bytes::new(),
            },
        )
    });
    let mut body = request.into_body();
    let mut received = 0usize;
    let mut too_large = false;
    while let Some(frame) = body.frame().await {
        // An incomplete upload must fail the push, not store a truncated image.
        let chunk = match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => Ok(data),
                Err(_) => continue,
            },
            Err(error) => Err(std::io::Error::other(error)),
        };
        if let Ok(data) = &chunk {
            received += data.len();
        }
        let chunk = if received > MAX_IMAGE_ARCHIVE {
            too_large = true;
            Err(std::io::Error::other("the archive is too large"))
        } else {
            chunk
        };
        let failed = chunk.is_err();
        if chunks.send(chunk).await.is_err() || failed {
            // Either the unpacker stopped early (a bad archive: its error is the answer) or
            // the upload failed (and the unpacker was told).
            break;
        }
    }
    drop(chunks);
    let pushed = unpacker.await.map_err(|error| {
        AwsError::server("InternalFailure", format!("the image push failed: {error}"))
    })?;
    if too_large {
        return Err(AwsError::with_status(
            413,
            "RequestEntityTooLargeException",
            format!("image archives are limited to {MAX_IMAGE_ARCHIVE} bytes"),
        ));
    }
    match pushed {
        Ok(info) => ok(&info),
        Err(error) => {
            let mut message = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            Err(AwsError::client("InvalidParameterException", message))
        }
    }
}

/// A blocking `Read` over body chunks arriving on a channel.
struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buffer.len().min(self.current.len());
        buffer[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

fn add_fault(shared: &Shared, body: &Bytes) -> Result<(), AwsError> {
    let invalid = |error: serde_json::Error| {
        AwsError::client(
            "InvalidParameterException",
            format!("not a fault description: {error}"),
        )
    };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(invalid)?;
    // A kind WireFaultKind knows is a wire fault; anything else must be an engine fault.
    let wire = value
        .get("kind")
        .is_some_and(|kind| serde_json::from_value::<WireFaultKind>(kind.clone()).is_ok());
    if wire {
        shared
            .faults
            .add(serde_json::from_value::<WireFault>(value).map_err(invalid)?);
    } else {
        let fault = serde_json::from_value::<EngineFault>(value).map_err(invalid)?;
        fault.apply(shared.engine.ecs.faults())?;
    }
    Ok(())
}

/// Behaviour that is ECS's own but tuned for tests (`/_shipmate/settings`); unlike faults,
/// `DELETE /_shipmate/faults` leaves settings alone.
#[derive(Debug, Serialize)]
struct Settings {
    /// The service throttle's first wait between launches, in ms.
    service_throttle_base_ms: u64,
    /// ECS's API rate limits are enforced.
    rate_limits: bool,
    /// Multiplies the rate limits' sustained rates (0: buckets never refill).
    rate_limit_refill_scale: u32,
    /// ECS-seconds per real second for deployment bake times and lifecycle hook timeouts.
    deployment_time_scale: f64,
}

impl Settings {
    fn of(shared: &Shared) -> Settings {
        let base = shared.engine.ecs.service_throttle_base();
        let limits = shared.engine.ecs.rate_limits();
        Settings {
            service_throttle_base_ms: u64::try_from(base.as_millis()).unwrap_or(u64::MAX),
            rate_limits: limits.enabled,
            rate_limit_refill_scale: limits.refill_scale,
            deployment_time_scale: shared.engine.ecs.deployment_time_scale(),
        }
    }
}

/// A `PUT /_shipmate/settings` body: the settings to change.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsUpdate {
    service_throttle_base_ms: Option<u64>,
    rate_limits: Option<bool>,
    rate_limit_refill_scale: Option<u32>,
    deployment_time_scale: Option<f64>,
}

impl SettingsUpdate {
    /// Checks the whole update before changing anything.
    fn apply(self, shared: &Shared) -> Result<(), AwsError> {
        let ecs = &shared.engine.ecs;
        if let Some(scale) = self.deployment_time_scale {
            if !(scale.is_finite() && scale > 0.0) {
                return Err(AwsError::client(
                    "InvalidParameterException",
                    format!("`deployment_time_scale` must be a positive number, not {scale}"),
                ));
            }
            ecs.set_deployment_time_scale(scale);
        }
        if let Some(ms) = self.service_throttle_base_ms {
            ecs.set_service_throttle_base(Duration::from_millis(ms));
        }
        let current = ecs.rate_limits();
        ecs.set_rate_limits(RateLimits {
            enabled: self.rate_limits.unwrap_or(current.enabled),
            refill_scale: self.rate_limit_refill_scale.unwrap_or(current.refill_scale),
        });
        Ok(())
    }
}

/// Faults the ECS engine injects itself (see docs/local-endpoint-ecs.md).
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum EngineFault {
    /// The next `count` placements become `failures[]` entries.
    FailPlacement {
        #[serde(default = "one")]
        count: u32,
        reason: Option<String>,
    },
    /// Tasks using an image matching `image` (`*` wildcards) fail with CannotPullContainerError.
    FailImagePull { image: String },
    /// Tasks stay in `status` for `seconds` before moving on.
    DelayTransition { status: String, seconds: f64 },
    /// Containers' awslogs lines are sent in batches every `batch_ms` (and at the container's
    /// stop), each visible `visible_after_ms` after it was sent.
    DelayLogIngestion {
        #[serde(default = "default_batch_ms")]
        batch_ms: u64,
        #[serde(default = "default_visible_after_ms")]
        visible_after_ms: u64,
    },
}

fn one() -> u32 {
    1
}

/// Docker's awslogs driver sends a batch every 5 s.
fn default_batch_ms() -> u64 {
    5000
}

/// CloudWatch documents no figure; a few seconds exercises a client's drain logic.
fn default_visible_after_ms() -> u64 {
    2000
}

impl EngineFault {
    fn apply(self, faults: &shipmate_local_engine::faults::Faults) -> Result<(), AwsError> {
        match self {
            EngineFault::FailPlacement { count, reason } => {
                faults.fail_next_placements(count, reason);
            }
            EngineFault::FailImagePull { image } => faults.fail_image_pulls(image),
            EngineFault::DelayTransition { status, seconds } => {
                let parsed = TaskStatus::parse(&status).filter(|status| {
                    !matches!(
                        status,
                        TaskStatus::Running | TaskStatus::Stopping | TaskStatus::Stopped
                    )
                });
                let Some(parsed) = parsed else {
                    return Err(AwsError::client(
                        "InvalidParameterException",
                        format!(
                            "cannot delay `{status}`: one of PROVISIONING, PENDING, ACTIVATING, DEACTIVATING, DEPROVISIONING"
                        ),
                    ));
                };
                let delay = Duration::try_from_secs_f64(seconds).map_err(|_| {
                    AwsError::client(
                        "InvalidParameterException",
                        format!("`seconds` must be a non-negative number, not {seconds}"),
                    )
                })?;
                faults.delay_transition(parsed, delay);
            }
            EngineFault::DelayLogIngestion {
                batch_ms,
                visible_after_ms,
            } => faults.delay_log_ingestion(IngestionDelay {
                batch: Duration::from_millis(batch_ms),
                visible_after: Duration::from_millis(visible_after_ms),
            }),
        }
        Ok(())
    }
}
