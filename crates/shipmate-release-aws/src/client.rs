//! The two SDK clients, configured once: the standard credential/region/endpoint chain
//! (`AWS_ENDPOINT_URL` points shipmate at `shipmate local`), the SDK's standard retry mode with
//! more attempts than its default, and an interceptor that makes every retry visible: ECS
//! throttles accounts that release many services at once, and a silent 20 s backoff looks
//! like a hang.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_ecs::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_ecs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use aws_smithy_types::retry::RetryConfig;
use shipmate_release::event::Event;

use crate::reporter::Reporter;

/// Connection settings beyond what the standard AWS chain provides.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Attempts per call, retries included (standard retry mode: throttling and 5xx).
    pub max_attempts: u32,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions { max_attempts: 8 }
    }
}

/// ECS and CloudWatch Logs clients sharing one configuration and one retry counter.
#[derive(Clone, Debug)]
pub struct Clients {
    pub ecs: aws_sdk_ecs::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    retries: Arc<AtomicU32>,
}

impl Clients {
    /// Loads the standard AWS configuration (environment, profiles) and builds both clients.
    pub async fn connect(options: &ConnectOptions, reporter: Arc<dyn Reporter>) -> Clients {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(options.max_attempts.max(1)))
            .load()
            .await;
        let retries = Arc::new(AtomicU32::new(0));
        let interceptor = RetryAnnouncer {
            reporter,
            retries: Arc::clone(&retries),
        };
        let ecs = aws_sdk_ecs::config::Builder::from(&shared)
            .interceptor(interceptor.clone())
            .build();
        let logs = aws_sdk_cloudwatchlogs::config::Builder::from(&shared)
            .interceptor(interceptor)
            .build();
        Clients {
            ecs: aws_sdk_ecs::Client::from_conf(ecs),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(logs),
            retries,
        }
    }

    /// Retries made so far, across both clients.
    pub fn retries(&self) -> u32 {
        self.retries.load(Ordering::Relaxed)
    }
}

/// What the previous attempt of the current call ended with.
#[derive(Debug, Clone)]
struct LastAttempt(String);

impl Storable for LastAttempt {
    type Storer = StoreReplace<Self>;
}

#[derive(Clone)]
struct RetryAnnouncer {
    reporter: Arc<dyn Reporter>,
    retries: Arc<AtomicU32>,
}

impl std::fmt::Debug for RetryAnnouncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetryAnnouncer")
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `attempt=2; max=8` from the SDK's `amz-sdk-request` header.
fn parse_attempt(header: &str) -> Option<(u32, u32)> {
    let mut attempt = None;
    let mut max = None;
    for part in header.split(';') {
        match part.trim().split_once('=') {
            Some(("attempt", value)) => attempt = value.parse().ok(),
            Some(("max", value)) => max = value.parse().ok(),
            _ => {}
        }
    }
    Some((attempt?, max?))
}

/// The error code of an AWS JSON error response: header first, then the body's `__type`/`code`.
fn error_code(status: u16, header: Option<&str>, body: Option<&[u8]>) -> String {
    let clean = |code: &str| {
        let code = code.rsplit('#').next().unwrap_or(code);
        code.split(':').next().unwrap_or(code).to_owned()
    };
    if let Some(code) = header.filter(|c| !c.is_empty()) {
        return clean(code);
    }
    let from_body = body
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(bytes).ok())
        .and_then(|json| {
            json.get("code")
                .or_else(|| json.get("__type"))
                .and_then(|v| v.as_str().map(clean))
        });
    from_body.unwrap_or_else(|| format!("HTTP {status}"))
}

impl Intercept for RetryAnnouncer {
    fn name(&self) -> &'static str {
        "shipmate::RetryAnnouncer"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let outcome = match context.response() {
            Some(response) if response.status().is_success() => return Ok(()),
            Some(response) => error_code(
                response.status().as_u16(),
                response.headers().get("x-amzn-errortype"),
                response.body().bytes(),
            ),
            None => "a connection error".to_owned(),
        };
        cfg.interceptor_state().store_put(LastAttempt(outcome));
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let headers = context.request().headers();
        let Some((attempt, max_attempts)) = headers.get("amz-sdk-request").and_then(parse_attempt)
        else {
            return Ok(());
        };
        if attempt < 2 {
            return Ok(());
        }
        let operation = headers
            .get("x-amz-target")
            .and_then(|target| target.rsplit('.').next())
            .unwrap_or("request")
            .to_owned();
        let error = cfg
            .load::<LastAttempt>()
            .map_or_else(|| "an error".to_owned(), |last| last.0.clone());
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.reporter.event(Event::Retrying {
            operation,
            error,
            attempt,
            max_attempts,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_header() {
        assert_eq!(parse_attempt("attempt=2; max=8"), Some((2, 8)));
        assert_eq!(parse_attempt("attempt=1"), None);
        assert_eq!(parse_attempt("garbage"), None);
    }

    #[test]
    fn error_codes() {
        assert_eq!(
            error_code(400, Some("ThrottlingException"), None),
            "ThrottlingException"
        );
        assert_eq!(
            error_code(400, None, Some(br#"{"__type":"com.amazonaws.ecs#ThrottlingException:http://x","message":"Rate exceeded"}"#)),
            "ThrottlingException"
        );
        assert_eq!(error_code(503, None, Some(b"<html>")), "HTTP 503");
    }
}
