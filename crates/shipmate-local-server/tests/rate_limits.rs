//! ECS's API rate limits over raw HTTP: off by default, switched by `ServerConfig` or
//! `PUT /_shipmate/settings` (as is the deployment time scale), and a throttled call answered
//! and logged exactly as ECS answers it.

mod common;

use std::net::SocketAddr;

use common::{RawResponse, aws_call, send};
use shipmate_local_server::{RateLimits, ServerConfig, start};

const ECS: &str = "AmazonEC2ContainerServiceV20141113";
const LOGS: &str = "Logs_20140328";

/// Limits on, buckets never refilled: exactly each burst is answered, however slow the machine.
const BURST_ONLY: RateLimits = RateLimits {
    enabled: true,
    refill_scale: 0,
};

/// `calls` RegisterTaskDefinition requests sent at once; their answers.
async fn register_burst(addr: SocketAddr, calls: usize) -> Vec<RawResponse> {
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..calls {
        burst.spawn(async move {
            aws_call(
                addr,
                &format!("{ECS}.RegisterTaskDefinition"),
                br#"{"family":"web","containerDefinitions":[{"name":"main","image":"web:1","memory":64}]}"#,
            )
            .await
            .expect("an answer")
        });
    }
    burst.join_all().await
}

fn count(responses: &[RawResponse], status: u16) -> usize {
    responses.iter().filter(|r| r.status == status).count()
}

#[tokio::test]
async fn with_limits_on_a_burst_of_25_registrations_gets_20_answers_and_5_throttles() {
    let server = start(ServerConfig {
        rate_limits: BURST_ONLY,
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let responses = register_burst(server.addr(), 25).await;
    assert_eq!(count(&responses, 200), 20);
    let throttled: Vec<&RawResponse> = responses.iter().filter(|r| r.status != 200).collect();
    assert_eq!(throttled.len(), 5);
    for response in throttled {
        assert_eq!(response.status, 400);
        assert_eq!(
            response.aws_error(),
            ("ThrottlingException".to_owned(), "Rate exceeded".to_owned())
        );
        assert_eq!(
            response.header("x-amzn-errortype"),
            Some("ThrottlingException")
        );
        assert_eq!(
            response.header("content-type"),
            Some("application/x-amz-json-1.1")
        );
        assert!(response.header("x-amzn-requestid").is_some());
    }

    // Logged as ECS's answer, not as an injected fault.
    let records = server.request_log().records();
    let logged: Vec<_> = records
        .iter()
        .filter(|r| r.error_code.is_some())
        .map(|r| {
            (
                r.operation.as_deref(),
                r.status,
                r.error_code.as_deref(),
                r.fault.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        logged,
        vec![
            (
                Some("RegisterTaskDefinition"),
                Some(400),
                Some("ThrottlingException"),
                None
            );
            5
        ]
    );
    assert_eq!(records.len(), 25);
    server.shutdown().await;
}

#[tokio::test]
async fn by_default_nothing_is_throttled() {
    let server = start(ServerConfig::default()).await.unwrap();
    let responses = register_burst(server.addr(), 25).await;
    assert_eq!(count(&responses, 200), 25);
    server.shutdown().await;
}

#[tokio::test]
async fn limits_are_settings_of_the_control_api_and_cloudwatch_logs_is_not_metered() {
    let server = start(ServerConfig::default()).await.unwrap();
    let addr = server.addr();
    let settings = send(addr, "GET", "/_shipmate/settings", &[], b"")
        .await
        .unwrap()
        .json();
    assert_eq!(settings["rate_limits"], false);
    assert_eq!(settings["rate_limit_refill_scale"], 1);

    let changed = send(
        addr,
        "PUT",
        "/_shipmate/settings",
        &[],
        br#"{"rate_limits":true,"rate_limit_refill_scale":0}"#,
    )
    .await
    .unwrap();
    assert_eq!(changed.status, 200);
    assert_eq!(changed.json()["rate_limits"], true);
    assert_eq!(server.engine().ecs.rate_limits(), BURST_ONLY);

    let responses = register_burst(addr, 21).await;
    assert_eq!(count(&responses, 200), 20);
    // DescribeLogGroups is 5 TPS on AWS; here it is never throttled.
    for _ in 0..30 {
        let described = aws_call(addr, &format!("{LOGS}.DescribeLogGroups"), b"{}")
            .await
            .unwrap();
        assert_eq!(described.status, 200);
    }
    // Clearing faults leaves settings alone.
    send(addr, "DELETE", "/_shipmate/faults", &[], b"")
        .await
        .unwrap();
    assert_eq!(count(&register_burst(addr, 1).await, 400), 1);

    let off = send(
        addr,
        "PUT",
        "/_shipmate/settings",
        &[],
        br#"{"rate_limits":false}"#,
    )
    .await
    .unwrap();
    assert_eq!(
        off.json()["rate_limit_refill_scale"],
        0,
        "the scale is kept"
    );
    assert_eq!(count(&register_burst(addr, 5).await, 200), 5);

    for bad in [
        r#"{"rate_limits":"yes"}"#,
        r#"{"rate_limit_refill_scale":-1}"#,
        r#"{"rate_limit_refill_scale":0.5}"#,
        r#"{"rate_limit":true}"#,
    ] {
        let refused = send(addr, "PUT", "/_shipmate/settings", &[], bad.as_bytes())
            .await
            .unwrap();
        assert_eq!(refused.status, 400, "{bad}");
        assert_eq!(refused.aws_error().0, "InvalidParameterException");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_deployment_time_scale_is_a_setting_of_the_control_api() {
    let server = start(ServerConfig::default()).await.unwrap();
    let addr = server.addr();
    let settings = send(addr, "GET", "/_shipmate/settings", &[], b"")
        .await
        .unwrap()
        .json();
    assert_eq!(settings["deployment_time_scale"], 1.0);
    let changed = send(
        addr,
        "PUT",
        "/_shipmate/settings",
        &[],
        br#"{"deployment_time_scale":60}"#,
    )
    .await
    .unwrap();
    assert_eq!(changed.status, 200);
    assert_eq!(changed.json()["deployment_time_scale"], 60.0);
    assert_eq!(server.engine().ecs.deployment_time_scale(), 60.0);
    for bad in [
        r#"{"deployment_time_scale":0}"#,
        r#"{"deployment_time_scale":-2}"#,
        r#"{"deployment_time_scale":"fast"}"#,
    ] {
        let refused = send(addr, "PUT", "/_shipmate/settings", &[], bad.as_bytes())
            .await
            .unwrap();
        assert_eq!(refused.status, 400, "{bad}");
        assert_eq!(refused.aws_error().0, "InvalidParameterException");
    }
    assert_eq!(
        server.engine().ecs.deployment_time_scale(),
        60.0,
        "unchanged"
    );
    server.shutdown().await;
}
