//! Every CloudWatch Logs operation through aws-sdk-rust, whose deserializers are strict: each
//! call must succeed and parse, with inputs that make optional members appear (paged events,
//! rejected events, tokens at the end of a stream). Modeled errors must arrive as the SDK's typed
//! variants.

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use shipmate_local_conformance::Endpoint;

const GROUP: &str = "/every/app";

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_logs_operation_parses() {
    let endpoint = Endpoint::start().await;
    let logs = &endpoint.logs;
    logs.create_log_group()
        .log_group_name(GROUP)
        .tags("team", "conformance")
        .send()
        .await
        .expect("CreateLogGroup");
    logs.create_log_group()
        .log_group_name("/every/gone")
        .send()
        .await
        .expect("CreateLogGroup");
    logs.delete_log_group()
        .log_group_name("/every/gone")
        .send()
        .await
        .expect("DeleteLogGroup");
    for stream in ["a", "b"] {
        logs.create_log_stream()
            .log_group_name(GROUP)
            .log_stream_name(stream)
            .send()
            .await
            .expect("CreateLogStream");
    }
    let now = now_millis();
    let put = logs
        .put_log_events()
        .log_group_name(GROUP)
        .log_stream_name("a")
        .set_log_events(Some(
            (0..5)
                .map(|i| {
                    InputLogEvent::builder()
                        .timestamp(now + i)
                        .message(format!("line {i}"))
                        .build()
                        .expect("event")
                })
                .collect(),
        ))
        .send()
        .await
        .expect("PutLogEvents");
    assert!(put.rejected_log_events_info().is_none(), "{put:?}");
    let rejected = logs
        .put_log_events()
        .log_group_name(GROUP)
        .log_stream_name("b")
        .log_events(
            InputLogEvent::builder()
                .timestamp(now - 15 * 86_400_000)
                .message("too old")
                .build()
                .expect("event"),
        )
        .log_events(
            InputLogEvent::builder()
                .timestamp(now)
                .message("kept")
                .build()
                .expect("event"),
        )
        .send()
        .await
        .expect("PutLogEvents with a rejected event");
    assert_eq!(
        rejected
            .rejected_log_events_info()
            .and_then(|info| info.too_old_log_event_end_index()),
        Some(1),
        "{rejected:?}"
    );

    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix("/every")
        .send()
        .await
        .expect("DescribeLogGroups");
    assert_eq!(groups.log_groups().len(), 1, "{groups:?}");
    let streams = logs
        .describe_log_streams()
        .log_group_name(GROUP)
        .send()
        .await
        .expect("DescribeLogStreams");
    assert_eq!(streams.log_streams().len(), 2);

    let first = logs
        .get_log_events()
        .log_group_name(GROUP)
        .log_stream_name("a")
        .start_from_head(true)
        .limit(2)
        .send()
        .await
        .expect("GetLogEvents");
    assert_eq!(first.events().len(), 2);
    let token = first
        .next_forward_token()
        .expect("forward token")
        .to_owned();
    let rest = logs
        .get_log_events()
        .log_group_name(GROUP)
        .log_stream_name("a")
        .start_from_head(true)
        .next_token(&token)
        .send()
        .await
        .expect("GetLogEvents next page");
    assert_eq!(rest.events().len(), 3);
    let end_token = rest.next_forward_token().expect("forward token").to_owned();
    let end = logs
        .get_log_events()
        .log_group_name(GROUP)
        .log_stream_name("a")
        .start_from_head(true)
        .next_token(&end_token)
        .send()
        .await
        .expect("GetLogEvents at the end");
    assert!(end.events().is_empty());
    assert_eq!(
        end.next_forward_token(),
        Some(end_token.as_str()),
        "the same token at the end"
    );

    let filtered = logs
        .filter_log_events()
        .log_group_name(GROUP)
        .limit(4)
        .send()
        .await
        .expect("FilterLogEvents");
    assert_eq!(filtered.events().len(), 4);
    let next = filtered.next_token().expect("more events").to_owned();
    let last = logs
        .filter_log_events()
        .log_group_name(GROUP)
        .next_token(next)
        .send()
        .await
        .expect("FilterLogEvents page 2");
    assert_eq!(last.events().len(), 2);
    assert!(last.next_token().is_none(), "{last:?}");

    let error = logs
        .create_log_group()
        .log_group_name(GROUP)
        .send()
        .await
        .expect_err("exists");
    assert!(
        error
            .as_service_error()
            .is_some_and(|e| e.is_resource_already_exists_exception()),
        "{error:?}"
    );
    let error = logs
        .get_log_events()
        .log_group_name(GROUP)
        .log_stream_name("nope")
        .send()
        .await
        .expect_err("no stream");
    assert!(
        error
            .as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{error:?}"
    );
    endpoint.shutdown().await;
}
