//! aws-sdk-cloudwatchlogs against the in-process server: every response must parse with the real
//! SDK, and its paginators and retries must behave as they do against AWS.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::BehaviorVersion;
use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use shipmate_local_server::{RunningServer, ServerConfig, start};

async fn client(server: &RunningServer) -> Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(server.endpoint_url())
        .region(aws_config::Region::new("eu-west-1"))
        .test_credentials()
        .load()
        .await;
    Client::new(&config)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn stream_with_lines(client: &Client, group: &str, stream: &str, lines: usize) {
    client
        .create_log_group()
        .log_group_name(group)
        .send()
        .await
        .unwrap();
    client
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        .unwrap();
    let start = now_ms() - 60_000;
    let events: Vec<_> = (0..lines)
        .map(|n| {
            InputLogEvent::builder()
                .timestamp(start + n as i64)
                .message(format!("line {n}"))
                .build()
                .unwrap()
        })
        .collect();
    let put = client
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap();
    assert!(put.rejected_log_events_info().is_none());
}

#[tokio::test]
async fn groups_streams_and_events_round_trip_through_the_sdk() {
    let server = start(ServerConfig::default()).await.unwrap();
    let client = client(&server).await;
    stream_with_lines(&client, "/ecs/web", "web/app/1", 5).await;

    let duplicate = client
        .create_log_group()
        .log_group_name("/ecs/web")
        .send()
        .await
        .unwrap_err();
    assert!(
        duplicate
            .as_service_error()
            .unwrap()
            .is_resource_already_exists_exception()
    );

    let groups = client.describe_log_groups().send().await.unwrap();
    let group = &groups.log_groups()[0];
    assert_eq!(group.log_group_name(), Some("/ecs/web"));
    assert_eq!(
        group.arn(),
        Some("arn:aws:logs:eu-west-1:000000000000:log-group:/ecs/web:*")
    );
    assert!(group.creation_time().unwrap() > 1_700_000_000_000);

    let streams = client
        .describe_log_streams()
        .log_group_name("/ecs/web")
        .send()
        .await
        .unwrap();
    let stream = &streams.log_streams()[0];
    assert_eq!(stream.log_stream_name(), Some("web/app/1"));
    assert!(stream.first_event_timestamp().is_some());
    assert!(stream.last_ingestion_time().is_some());

    let missing = client
        .get_log_events()
        .log_group_name("/ecs/web")
        .log_stream_name("nope")
        .send()
        .await
        .unwrap_err();
    assert!(
        missing
            .as_service_error()
            .unwrap()
            .is_resource_not_found_exception()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn get_log_events_pages_like_cloudwatch() {
    let server = start(ServerConfig::default()).await.unwrap();
    let client = client(&server).await;
    stream_with_lines(&client, "g", "s", 7).await;

    // Default (startFromHead false): the newest page first.
    let newest = client
        .get_log_events()
        .log_group_name("g")
        .log_stream_name("s")
        .limit(3)
        .send()
        .await
        .unwrap();
    let messages: Vec<_> = newest.events().iter().filter_map(|e| e.message()).collect();
    assert_eq!(messages, ["line 4", "line 5", "line 6"]);

    // From the head, by hand, until the same token comes back.
    let mut token: Option<String> = None;
    let mut lines = Vec::new();
    for _ in 0..20 {
        let page = client
            .get_log_events()
            .log_group_name("g")
            .log_stream_name("s")
            .start_from_head(true)
            .limit(2)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        lines.extend(
            page.events()
                .iter()
                .filter_map(|e| e.message().map(str::to_owned)),
        );
        let next = page.next_forward_token().expect("never null").to_owned();
        assert!(page.next_backward_token().is_some());
        if token.as_deref() == Some(next.as_str()) {
            break;
        }
        token = Some(next);
    }
    assert_eq!(
        lines,
        (0..7).map(|n| format!("line {n}")).collect::<Vec<_>>()
    );

    // The SDK's own paginator stops on the repeated token.
    let pages: Vec<_> = client
        .get_log_events()
        .log_group_name("g")
        .log_stream_name("s")
        .start_from_head(true)
        .limit(4)
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await;
    let paged: usize = pages
        .into_iter()
        .map(|page| page.unwrap().events().len())
        .sum();
    assert_eq!(paged, 7);
    server.shutdown().await;
}

#[tokio::test]
async fn filter_log_events_pages_across_streams() {
    let server = start(ServerConfig::default()).await.unwrap();
    let client = client(&server).await;
    stream_with_lines(&client, "g", "a", 4).await;
    client
        .create_log_stream()
        .log_group_name("g")
        .log_stream_name("b")
        .send()
        .await
        .unwrap();
    client
        .put_log_events()
        .log_group_name("g")
        .log_stream_name("b")
        .log_events(
            InputLogEvent::builder()
                .timestamp(now_ms())
                .message("line from b")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let pages: Vec<_> = client
        .filter_log_events()
        .log_group_name("g")
        .filter_pattern("\"line\"")
        .limit(2)
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await;
    let events: Vec<(String, String)> = pages
        .into_iter()
        .flat_map(|page| page.unwrap().events().to_vec())
        .map(|e| {
            (
                e.log_stream_name().unwrap().to_owned(),
                e.message().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(events.len(), 5);
    assert_eq!(events[4], ("b".to_owned(), "line from b".to_owned()));

    let conflict = client
        .filter_log_events()
        .log_group_name("g")
        .log_stream_names("a")
        .log_stream_name_prefix("a")
        .send()
        .await
        .unwrap_err();
    assert!(
        conflict
            .as_service_error()
            .unwrap()
            .is_invalid_parameter_exception()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_sdk_retries_through_injected_faults() {
    let server = start(ServerConfig::default()).await.unwrap();
    let client = client(&server).await;

    // Default retry config: 3 attempts. Two throttles, then success.
    server.throttle("DescribeLogGroups", 2);
    client.describe_log_groups().send().await.unwrap();
    // Two 500s, then success.
    server.fail_with_server_error("DescribeLogGroups", 2);
    client.describe_log_groups().send().await.unwrap();
    // A dropped connection is retried as a transient I/O failure.
    server.drop_connections("DescribeLogGroups", 1);
    client.describe_log_groups().send().await.unwrap();

    let statuses: Vec<_> = server
        .request_log()
        .records()
        .into_iter()
        .map(|record| (record.fault, record.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (Some("throttle".to_owned()), Some(400)),
            (Some("throttle".to_owned()), Some(400)),
            (None, Some(200)),
            (Some("server_error".to_owned()), Some(500)),
            (Some("server_error".to_owned()), Some(500)),
            (None, Some(200)),
            (Some("drop_connection".to_owned()), None),
            (None, Some(200)),
        ]
    );

    // More throttles than attempts: the error reaches the caller with its code.
    server.throttle("DescribeLogGroups", 3);
    let error = client.describe_log_groups().send().await.unwrap_err();
    assert_eq!(error.code(), Some("ThrottlingException"));
    assert_eq!(error.message(), Some("Rate exceeded"));
    server.shutdown().await;
}

#[tokio::test]
async fn images_pushed_over_http_resolve_in_the_engine() {
    let server = start(ServerConfig::default()).await.unwrap();
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("manage.py"), "print('migrate')\n").unwrap();
    let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1";
    let pushed =
        shipmate_local_server::client::push_dir(&server.endpoint_url(), image, source.path())
            .await
            .unwrap();
    assert_eq!(pushed.image, image);
    assert!(pushed.digest.starts_with("sha256:"));
    // The snapshot is a copy, not the source.
    std::fs::write(source.path().join("manage.py"), "print('changed')\n").unwrap();
    let snapshot = server.engine().images.resolve(image).unwrap();
    assert_eq!(
        std::fs::read_to_string(snapshot.join("manage.py")).unwrap(),
        "print('migrate')\n"
    );

    let listed = common::send(server.addr(), "GET", "/_shipmate/images", &[], b"")
        .await
        .unwrap()
        .json();
    assert_eq!(listed["images"][0]["image"], image);
    assert_eq!(listed["images"][0]["digest"], pushed.digest.as_str());

    let garbage = shipmate_local_server::client::push_archive(
        &server.endpoint_url(),
        "broken:1",
        b"this is not a tar archive, not even close; it just keeps going for a while".repeat(20),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            garbage,
            shipmate_local_server::client::ClientError::Refused { status: 400, .. }
        ),
        "{garbage}"
    );
    assert!(server.engine().images.resolve("broken:1").is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn logs_and_images_survive_a_restart_with_a_state_dir() {
    let state = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        state_dir: Some(state.path().to_owned()),
        ..ServerConfig::default()
    };
    let server = start(config.clone()).await.unwrap();
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("app"), "v1").unwrap();
    shipmate_local_server::client::push_dir(&server.endpoint_url(), "web:v1", source.path())
        .await
        .unwrap();
    stream_with_lines(&client(&server).await, "g", "s", 3).await;
    server.shutdown().await;

    let restarted = start(config).await.unwrap();
    let client = client(&restarted).await;
    let events = client
        .get_log_events()
        .log_group_name("g")
        .log_stream_name("s")
        .start_from_head(true)
        .send()
        .await
        .unwrap();
    assert_eq!(events.events().len(), 3);
    let snapshot = restarted.engine().images.resolve("web:v1").unwrap();
    assert_eq!(std::fs::read_to_string(snapshot.join("app")).unwrap(), "v1");
    restarted.shutdown().await;
}
