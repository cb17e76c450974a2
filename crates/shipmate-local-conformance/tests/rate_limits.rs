//! ECS's API rate limits as aws-sdk-rust meets them: a throttled call is retried by the SDK's
//! standard retry as a throttle, and gets through once its bucket has tokens again.

use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::operation::register_task_definition::{
    RegisterTaskDefinitionError, RegisterTaskDefinitionOutput,
};
use shipmate_local_conformance::{DEADLINE, Endpoint, REGION, container};
use shipmate_local_server::{RateLimits, ServerConfig};

/// Limits on, buckets never refilled: what is throttled stays throttled until the test says.
const BURST_ONLY: RateLimits = RateLimits {
    enabled: true,
    refill_scale: 0,
};

/// An ECS client of the endpoint with the SDK's standard retry and `attempts` attempts.
async fn ecs_client(endpoint: &Endpoint, attempts: u32) -> aws_sdk_ecs::Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint.server().endpoint_url())
        .region(aws_config::Region::new(REGION))
        .test_credentials()
        .retry_config(RetryConfig::standard().with_max_attempts(attempts))
        .load()
        .await;
    aws_sdk_ecs::Client::new(&config)
}

async fn register(
    ecs: &aws_sdk_ecs::Client,
) -> Result<RegisterTaskDefinitionOutput, SdkError<RegisterTaskDefinitionError>> {
    ecs.register_task_definition()
        .family("web")
        .memory("512")
        .container_definitions(container("web", "web:1", &["true"]))
        .send()
        .await
}

/// (answered, throttled) RegisterTaskDefinition calls in the request log.
fn logged(endpoint: &Endpoint) -> (usize, usize) {
    let records = endpoint.server().request_log().records();
    let registrations = records
        .iter()
        .filter(|r| r.operation.as_deref() == Some("RegisterTaskDefinition"));
    let throttled = registrations
        .clone()
        .filter(|r| r.error_code.as_deref() == Some("ThrottlingException"))
        .count();
    let answered = registrations.filter(|r| r.status == Some(200)).count();
    (answered, throttled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_retries_a_burst_through_the_rate_limit() {
    let endpoint = Endpoint::start_with(ServerConfig {
        rate_limits: BURST_ONLY,
        ..ServerConfig::default()
    })
    .await;
    // More attempts than the default 3, so that retries racing the refill below cannot use
    // them all up.
    let ecs = ecs_client(&endpoint, 5).await;
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..25 {
        let ecs = ecs.clone();
        burst.spawn(async move { register(&ecs).await });
    }
    // The bucket holds 20 tokens: 20 answers, 5 throttles (or more: a quick retry may be
    // throttled again), and the SDK waits to retry those.
    let start = Instant::now();
    while !matches!(logged(&endpoint), (20, throttled) if throttled >= 5) {
        assert!(
            start.elapsed() < DEADLINE,
            "never 20 answers and 5 throttles: {:?}",
            logged(&endpoint)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The bucket refills (a change of limits starts it full); the retries get through.
    endpoint
        .server()
        .engine()
        .ecs
        .set_rate_limits(RateLimits::ECS);
    let mut revisions: Vec<i32> = burst
        .join_all()
        .await
        .into_iter()
        .map(|registered| {
            registered
                .expect("the SDK retried through the throttle")
                .task_definition()
                .expect("a task definition")
                .revision()
        })
        .collect();
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=25).collect::<Vec<_>>());
    let (answered, throttled) = logged(&endpoint);
    assert_eq!(answered, 25);
    assert!(throttled >= 5, "{throttled}");
    endpoint.shutdown().await;
}

#[tokio::test]
async fn a_call_throttled_on_every_attempt_reaches_the_caller_as_a_throttle() {
    let endpoint = Endpoint::start_with(ServerConfig {
        rate_limits: BURST_ONLY,
        ..ServerConfig::default()
    })
    .await;
    let ecs = ecs_client(&endpoint, 3).await;
    for _ in 0..20 {
        register(&ecs).await.expect("within the burst");
    }
    let error = register(&ecs).await.expect_err("the bucket is empty");
    assert_eq!(error.code(), Some("ThrottlingException"));
    assert_eq!(error.message(), Some("Rate exceeded"));
    assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(400));
    // Three attempts: the SDK classified it as retryable, as it does throttles.
    assert_eq!(logged(&endpoint), (20, 3));
    endpoint.shutdown().await;
}
