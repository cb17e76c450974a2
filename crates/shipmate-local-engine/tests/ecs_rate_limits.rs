//! ECS's API rate limits through `Engine::handle`, on a clock that only moves when told to: off
//! by default, and when on, a category's burst, then `ThrottlingException` until its bucket
//! refills.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};
use shipmate_local_engine::clock::ManualClock;
use shipmate_local_engine::ecs::RateLimits;
use shipmate_local_engine::ecs::rate_limits::OPERATIONS;
use shipmate_local_engine::{Engine, EngineConfig, Request};
use shipmate_local_protocol::{AwsError, Target};

const REGION: &str = "eu-west-1";

async fn engine(rate_limits: RateLimits) -> (Engine, ManualClock) {
    let clock = ManualClock::starting_at(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let engine = Engine::start(EngineConfig {
        clock: Arc::new(clock.clone()),
        rate_limits,
        ..EngineConfig::default()
    })
    .await
    .expect("engine starts");
    (engine, clock)
}

async fn ecs(engine: &Engine, operation: &str, body: Value) -> Result<Value, AwsError> {
    let target = Target::parse(&format!("AmazonEC2ContainerServiceV20141113.{operation}")).unwrap();
    let output = engine
        .handle(Request {
            target: &target,
            region: REGION,
            body: body.to_string().as_bytes(),
        })
        .await?;
    Ok(serde_json::from_slice(&output).expect("responses are JSON"))
}

async fn register(engine: &Engine, family: &str) -> Result<Value, AwsError> {
    ecs(
        engine,
        "RegisterTaskDefinition",
        json!({"family": family, "containerDefinitions": [{"name": "main", "image": "app:1", "memory": 64}]}),
    )
    .await
}

/// Registers `calls` revisions and answers how many were throttled.
async fn throttled_registrations(engine: &Engine, calls: usize) -> usize {
    let mut throttled = 0;
    for _ in 0..calls {
        match register(engine, "web").await {
            Ok(_) => {}
            Err(error) => {
                assert_eq!(
                    (error.status, error.code.as_str(), error.message.as_str()),
                    (400, "ThrottlingException", "Rate exceeded")
                );
                throttled += 1;
            }
        }
    }
    throttled
}

#[tokio::test]
async fn off_by_default_nothing_is_throttled() {
    let (engine, _clock) = engine(EngineConfig::default().rate_limits).await;
    assert_eq!(engine.ecs.rate_limits(), RateLimits::OFF);
    assert_eq!(throttled_registrations(&engine, 40).await, 0);
    engine.shutdown().await;
}

#[tokio::test]
async fn registrations_get_their_burst_then_one_a_second() {
    let (engine, clock) = engine(RateLimits::ECS).await;
    assert_eq!(throttled_registrations(&engine, 25).await, 5);
    // The same bucket meters DeregisterTaskDefinition; reads have their own.
    let error = ecs(
        &engine,
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "web:1"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.code, "ThrottlingException");
    ecs(
        &engine,
        "DescribeTaskDefinition",
        json!({"taskDefinition": "web:1"}),
    )
    .await
    .unwrap();

    clock.advance(Duration::from_millis(999));
    assert_eq!(throttled_registrations(&engine, 1).await, 1);
    clock.advance(Duration::from_millis(1));
    assert_eq!(throttled_registrations(&engine, 2).await, 1);
    clock.advance(Duration::from_secs(3));
    assert_eq!(throttled_registrations(&engine, 4).await, 1);

    // Twenty revisions at once, then four as tokens came back.
    let revisions = ecs(
        &engine,
        "ListTaskDefinitions",
        json!({"familyPrefix": "web"}),
    )
    .await
    .unwrap();
    assert_eq!(
        revisions["taskDefinitionArns"].as_array().unwrap().len(),
        24
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn limits_are_switched_at_run_time_and_a_change_starts_buckets_full() {
    let (engine, _clock) = engine(RateLimits::OFF).await;
    engine.ecs.set_rate_limits(RateLimits::ECS);
    assert_eq!(throttled_registrations(&engine, 21).await, 1);
    // The same limits again are no change: the bucket stays empty.
    engine.ecs.set_rate_limits(RateLimits::ECS);
    assert_eq!(throttled_registrations(&engine, 1).await, 1);
    let faster = RateLimits {
        enabled: true,
        refill_scale: 10,
    };
    engine.ecs.set_rate_limits(faster);
    assert_eq!(engine.ecs.rate_limits(), faster);
    assert_eq!(throttled_registrations(&engine, 21).await, 1);
    engine.ecs.set_rate_limits(RateLimits::OFF);
    assert_eq!(throttled_registrations(&engine, 30).await, 0);
    engine.shutdown().await;
}

#[tokio::test]
async fn every_operation_in_the_rate_table_is_served() {
    let (engine, _clock) = engine(RateLimits::ECS).await;
    for (operation, _) in OPERATIONS {
        // `{}` is a wrong input for most of them; what matters is that they are dispatched.
        if let Err(error) = ecs(&engine, operation, json!({})).await {
            assert_ne!(error.code, "UnknownOperationException", "{operation}");
        }
    }
    let error = ecs(&engine, "ExecuteCommand", json!({})).await.unwrap_err();
    assert_eq!(error.code, "UnknownOperationException");
    engine.shutdown().await;
}
