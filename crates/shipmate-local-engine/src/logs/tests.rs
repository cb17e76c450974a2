use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::clock::ManualClock;

/// 2026-01-01T00:00:00Z in epoch ms.
const NOW: i64 = 1_767_225_600_000;

fn store() -> (LogStore, ManualClock) {
    let clock = ManualClock::starting_at(UNIX_EPOCH + Duration::from_millis(NOW as u64));
    (
        LogStore::open(None, Arc::new(clock.clone())).unwrap(),
        clock,
    )
}

fn group(store: &LogStore, name: &str) {
    store
        .create_log_group(api::CreateLogGroupRequest {
            log_group_name: name.into(),
            ..Default::default()
        })
        .unwrap();
}

fn stream(store: &LogStore, group: &str, name: &str) {
    store
        .create_log_stream(api::CreateLogStreamRequest {
            log_group_name: group.into(),
            log_stream_name: name.into(),
        })
        .unwrap();
}

fn put(
    store: &LogStore,
    group: &str,
    stream: &str,
    events: &[(i64, &str)],
) -> api::PutLogEventsResponse {
    store
        .put_log_events(api::PutLogEventsRequest {
            log_group_name: group.into(),
            log_stream_name: stream.into(),
            log_events: events
                .iter()
                .map(|(timestamp, message)| api::InputLogEvent {
                    timestamp: *timestamp,
                    message: (*message).into(),
                })
                .collect(),
            ..Default::default()
        })
        .unwrap()
}

fn get(
    store: &LogStore,
    token: Option<&str>,
    start_from_head: Option<bool>,
    limit: Option<i32>,
) -> api::GetLogEventsResponse {
    store
        .get_log_events(api::GetLogEventsRequest {
            log_group_name: Some("g".into()),
            log_stream_name: "s".into(),
            next_token: token.map(str::to_owned),
            start_from_head,
            limit,
            ..Default::default()
        })
        .unwrap()
}

fn messages(events: &[api::OutputLogEvent]) -> Vec<&str> {
    events.iter().map(|event| event.message.as_str()).collect()
}

/// A stream `g`/`s` holding "0".."9" one millisecond apart.
fn ten_events() -> LogStore {
    let (store, _) = store();
    group(&store, "g");
    stream(&store, "g", "s");
    let events: Vec<(i64, String)> = (0..10).map(|n| (NOW - 1000 + n, n.to_string())).collect();
    let borrowed: Vec<(i64, &str)> = events.iter().map(|(t, m)| (*t, m.as_str())).collect();
    put(&store, "g", "s", &borrowed);
    store
}

#[test]
fn groups_and_streams_report_aws_errors() {
    let (store, _) = store();
    group(&store, "g");
    let again = store
        .create_log_group(api::CreateLogGroupRequest {
            log_group_name: "g".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(again.code, "ResourceAlreadyExistsException");
    for bad in ["", "has space", "aws/reserved"] {
        let error = store
            .create_log_group(api::CreateLogGroupRequest {
                log_group_name: bad.into(),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(error.code, "InvalidParameterException", "{bad:?}");
    }
    let no_group = store
        .create_log_stream(api::CreateLogStreamRequest {
            log_group_name: "missing".into(),
            log_stream_name: "s".into(),
        })
        .unwrap_err();
    assert_eq!(no_group.code, "ResourceNotFoundException");
    stream(&store, "g", "s");
    let dup = store
        .create_log_stream(api::CreateLogStreamRequest {
            log_group_name: "g".into(),
            log_stream_name: "s".into(),
        })
        .unwrap_err();
    assert_eq!(dup.code, "ResourceAlreadyExistsException");
    let bad_stream = store
        .create_log_stream(api::CreateLogStreamRequest {
            log_group_name: "g".into(),
            log_stream_name: "a:b".into(),
        })
        .unwrap_err();
    assert_eq!(bad_stream.code, "InvalidParameterException");
    store
        .delete_log_group(api::DeleteLogGroupRequest {
            log_group_name: "g".into(),
        })
        .unwrap();
    let gone = store
        .delete_log_group(api::DeleteLogGroupRequest {
            log_group_name: "g".into(),
        })
        .unwrap_err();
    assert_eq!(gone.code, "ResourceNotFoundException");
}

#[test]
fn get_log_events_defaults_to_the_newest_page() {
    let store = ten_events();
    let page = get(&store, None, None, Some(3));
    assert_eq!(messages(&page.events), ["7", "8", "9"]);
    let older = get(&store, Some(&page.next_backward_token), None, Some(3));
    assert_eq!(messages(&older.events), ["4", "5", "6"]);
}

#[test]
fn get_log_events_forward_paging_ends_with_the_same_token() {
    let store = ten_events();
    let mut token: Option<String> = None;
    let mut seen = Vec::new();
    let mut calls = 0;
    loop {
        calls += 1;
        assert!(calls < 20, "paging never ended");
        let page = get(&store, token.as_deref(), Some(true), Some(4));
        seen.extend(page.events.iter().map(|e| e.message.clone()));
        assert!(!page.next_backward_token.is_empty());
        if token.as_deref() == Some(page.next_forward_token.as_str()) {
            assert!(page.events.is_empty());
            break;
        }
        token = Some(page.next_forward_token);
    }
    assert_eq!(seen, (0..10).map(|n| n.to_string()).collect::<Vec<_>>());
    // A live stream: new events appear behind the last token.
    put(&store, "g", "s", &[(NOW, "late")]);
    let late = get(&store, token.as_deref(), Some(true), None);
    assert_eq!(messages(&late.events), ["late"]);
}

#[test]
fn get_log_events_honours_the_time_window() {
    let store = ten_events();
    let page = store
        .get_log_events(api::GetLogEventsRequest {
            log_group_identifier: Some("arn:aws:logs:us-east-1:000000000000:log-group:g:*".into()),
            log_stream_name: "s".into(),
            start_time: Some(NOW - 1000 + 2),
            end_time: Some(NOW - 1000 + 5),
            start_from_head: Some(true),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(messages(&page.events), ["2", "3", "4"]);
}

#[test]
fn get_log_events_rejects_bad_input() {
    let store = ten_events();
    let both = store
        .get_log_events(api::GetLogEventsRequest {
            log_group_name: Some("g".into()),
            log_group_identifier: Some("g".into()),
            log_stream_name: "s".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(both.code, "InvalidParameterException");
    let bad_token = store
        .get_log_events(api::GetLogEventsRequest {
            log_group_name: Some("g".into()),
            log_stream_name: "s".into(),
            next_token: Some("garbage".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(bad_token.code, "InvalidParameterException");
    let no_stream = store
        .get_log_events(api::GetLogEventsRequest {
            log_group_name: Some("g".into()),
            log_stream_name: "nope".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        (no_stream.code.as_str(), no_stream.message.as_str()),
        (
            "ResourceNotFoundException",
            "The specified log stream does not exist."
        )
    );
    let zero_limit = store
        .get_log_events(api::GetLogEventsRequest {
            log_group_name: Some("g".into()),
            log_stream_name: "s".into(),
            limit: Some(0),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(zero_limit.code, "InvalidParameterException");
}

#[test]
fn put_log_events_enforces_batch_rules() {
    let (store, _) = store();
    group(&store, "g");
    stream(&store, "g", "s");
    let out_of_order = store
        .put_log_events(api::PutLogEventsRequest {
            log_group_name: "g".into(),
            log_stream_name: "s".into(),
            log_events: vec![
                api::InputLogEvent {
                    timestamp: NOW,
                    message: "b".into(),
                },
                api::InputLogEvent {
                    timestamp: NOW - 1,
                    message: "a".into(),
                },
            ],
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(out_of_order.code, "InvalidParameterException");
    let too_big = store
        .put_log_events(api::PutLogEventsRequest {
            log_group_name: "g".into(),
            log_stream_name: "s".into(),
            log_events: (0..2)
                .map(|_| api::InputLogEvent {
                    timestamp: NOW,
                    message: "x".repeat(600_000),
                })
                .collect(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(too_big.code, "InvalidParameterException");
    let empty = store
        .put_log_events(api::PutLogEventsRequest {
            log_group_name: "g".into(),
            log_stream_name: "s".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(empty.code, "InvalidParameterException");
    let missing_stream = store
        .put_log_events(api::PutLogEventsRequest {
            log_group_name: "g".into(),
            log_stream_name: "nope".into(),
            log_events: vec![api::InputLogEvent {
                timestamp: NOW,
                message: "a".into(),
            }],
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(missing_stream.code, "ResourceNotFoundException");
}

#[test]
fn put_log_events_rejects_too_old_and_too_new_events_individually() {
    let (store, _) = store();
    group(&store, "g");
    stream(&store, "g", "s");
    let day = 24 * 60 * 60 * 1000;
    let hour = 60 * 60 * 1000;
    // A 24 h span check applies to accepted events only, so these four are one valid batch.
    let response = put(
        &store,
        "g",
        "s",
        &[
            (NOW - 15 * day, "ancient"),
            (NOW - hour, "ok1"),
            (NOW, "ok2"),
            (NOW + 3 * hour, "future"),
        ],
    );
    assert_eq!(
        response.rejected_log_events_info,
        Some(api::RejectedLogEventsInfo {
            too_old_log_event_end_index: Some(1),
            too_new_log_event_start_index: Some(3),
            expired_log_event_end_index: None,
        })
    );
    assert_eq!(
        messages(&get(&store, None, Some(true), None).events),
        ["ok1", "ok2"]
    );
    let clean = put(&store, "g", "s", &[(NOW, "ok3")]);
    assert_eq!(clean.rejected_log_events_info, None);
}

#[test]
fn events_from_parallel_writers_are_kept_in_timestamp_order() {
    let (store, _) = store();
    group(&store, "g");
    stream(&store, "g", "s");
    put(&store, "g", "s", &[(NOW - 10, "a"), (NOW - 5, "c")]);
    put(&store, "g", "s", &[(NOW - 7, "b")]);
    store.append("g", "s", NOW - 5, "d".into());
    assert_eq!(
        messages(&get(&store, None, Some(true), None).events),
        ["a", "b", "c", "d"]
    );
}

fn filter(
    store: &LogStore,
    request: api::FilterLogEventsRequest,
) -> Result<api::FilterLogEventsResponse, AwsError> {
    store.filter_log_events(api::FilterLogEventsRequest {
        log_group_name: Some("g".into()),
        ..request
    })
}

#[test]
fn filter_log_events_interleaves_streams_and_omits_the_token_at_the_end() {
    let (store, _) = store();
    group(&store, "g");
    stream(&store, "g", "web/1");
    stream(&store, "g", "web/2");
    stream(&store, "g", "worker/1");
    put(
        &store,
        "g",
        "web/1",
        &[(NOW - 30, "ERROR one"), (NOW - 10, "INFO two")],
    );
    put(
        &store,
        "g",
        "web/2",
        &[(NOW - 20, "ERROR three"), (NOW - 5, "ERROR four")],
    );
    put(&store, "g", "worker/1", &[(NOW - 25, "ERROR five")]);

    let mut token = None;
    let mut seen = Vec::new();
    loop {
        let page = filter(
            &store,
            api::FilterLogEventsRequest {
                log_stream_name_prefix: Some("web/".into()),
                filter_pattern: Some("ERROR".into()),
                next_token: token.clone(),
                limit: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
        seen.extend(
            page.events
                .iter()
                .map(|e| (e.log_stream_name.clone(), e.message.clone())),
        );
        assert!(page.searched_log_streams.is_empty());
        match page.next_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(
        seen,
        vec![
            ("web/1".to_owned(), "ERROR one".to_owned()),
            ("web/2".to_owned(), "ERROR three".to_owned()),
            ("web/2".to_owned(), "ERROR four".to_owned()),
        ]
    );

    let named = filter(
        &store,
        api::FilterLogEventsRequest {
            log_stream_names: Some(vec!["worker/1".into(), "web/1".into()]),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(named.events.len(), 3);
    assert_eq!(named.next_token, None);
    let ids: std::collections::BTreeSet<_> =
        named.events.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(ids.len(), 3, "event ids are unique");
}

#[test]
fn filter_log_events_rejects_conflicting_parameters() {
    let (store, _) = store();
    group(&store, "g");
    let both = filter(
        &store,
        api::FilterLogEventsRequest {
            log_stream_names: Some(vec!["a".into()]),
            log_stream_name_prefix: Some("a".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(both.code, "InvalidParameterException");
    let newest_first_without_start = filter(
        &store,
        api::FilterLogEventsRequest {
            start_from_head: Some(false),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(newest_first_without_start.code, "InvalidParameterException");
    let newest_first = filter(
        &store,
        api::FilterLogEventsRequest {
            start_from_head: Some(false),
            start_time: Some(NOW - 1000),
            ..Default::default()
        },
    );
    assert!(newest_first.is_ok());
    let missing = store
        .filter_log_events(api::FilterLogEventsRequest {
            log_group_name: Some("nope".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(missing.code, "ResourceNotFoundException");
}

#[test]
fn filter_log_events_newest_first_pages_backwards() {
    let store = ten_events();
    let first = filter(
        &store,
        api::FilterLogEventsRequest {
            start_from_head: Some(false),
            start_time: Some(NOW - 1000),
            limit: Some(4),
            ..Default::default()
        },
    )
    .unwrap();
    let messages: Vec<_> = first.events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["9", "8", "7", "6"]);
    let second = filter(
        &store,
        api::FilterLogEventsRequest {
            next_token: first.next_token,
            limit: Some(10),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(second.events.len(), 6);
    assert_eq!(second.events[0].message, "5");
    assert_eq!(second.next_token, None);
}

#[test]
fn describe_log_streams_orders_pages_and_reports_event_times() {
    let (store, clock) = store();
    group(&store, "g");
    for name in ["c", "a", "b"] {
        stream(&store, "g", name);
    }
    put(&store, "g", "a", &[(NOW - 100, "x"), (NOW - 50, "y")]);
    clock.advance(Duration::from_millis(7));
    put(&store, "g", "c", &[(NOW - 10, "z")]);

    let by_name = store
        .describe_log_streams(
            "eu-west-1",
            api::DescribeLogStreamsRequest {
                log_group_name: Some("g".into()),
                limit: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
    let names: Vec<_> = by_name
        .log_streams
        .iter()
        .map(|s| s.log_stream_name.as_str())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let a = &by_name.log_streams[0];
    assert_eq!(a.first_event_timestamp, Some(NOW - 100));
    assert_eq!(a.last_event_timestamp, Some(NOW - 50));
    assert_eq!(a.last_ingestion_time, Some(NOW));
    assert_eq!(
        a.arn,
        "arn:aws:logs:eu-west-1:000000000000:log-group:g:log-stream:a"
    );
    assert_eq!(by_name.log_streams[1].first_event_timestamp, None);
    let rest = store
        .describe_log_streams(
            "eu-west-1",
            api::DescribeLogStreamsRequest {
                log_group_name: Some("g".into()),
                next_token: by_name.next_token,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(rest.log_streams.len(), 1);
    assert_eq!(rest.log_streams[0].log_stream_name, "c");
    assert_eq!(rest.next_token, None);

    let newest = store
        .describe_log_streams(
            "us-east-1",
            api::DescribeLogStreamsRequest {
                log_group_name: Some("g".into()),
                order_by: Some("LastEventTime".into()),
                descending: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
    let names: Vec<_> = newest
        .log_streams
        .iter()
        .map(|s| s.log_stream_name.as_str())
        .collect();
    assert_eq!(names, ["c", "a", "b"]);

    let conflict = store
        .describe_log_streams(
            "us-east-1",
            api::DescribeLogStreamsRequest {
                log_group_name: Some("g".into()),
                order_by: Some("LastEventTime".into()),
                log_stream_name_prefix: Some("a".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(conflict.code, "InvalidParameterException");
}

#[test]
fn describe_log_groups_pages_by_name_with_arns() {
    let (store, _) = store();
    for name in ["/app/b", "/app/a", "/other", "/app/c"] {
        group(&store, name);
    }
    let first = store
        .describe_log_groups(
            "us-west-2",
            api::DescribeLogGroupsRequest {
                log_group_name_prefix: Some("/app/".into()),
                limit: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
    let names: Vec<_> = first
        .log_groups
        .iter()
        .map(|g| g.log_group_name.as_str())
        .collect();
    assert_eq!(names, ["/app/a", "/app/b"]);
    assert_eq!(
        first.log_groups[0].arn,
        "arn:aws:logs:us-west-2:000000000000:log-group:/app/a:*"
    );
    assert_eq!(
        first.log_groups[0].log_group_arn,
        "arn:aws:logs:us-west-2:000000000000:log-group:/app/a"
    );
    assert_eq!(first.log_groups[0].creation_time, NOW);
    let second = store
        .describe_log_groups(
            "us-west-2",
            api::DescribeLogGroupsRequest {
                log_group_name_prefix: Some("/app/".into()),
                next_token: first.next_token,
                limit: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
    let names: Vec<_> = second
        .log_groups
        .iter()
        .map(|g| g.log_group_name.as_str())
        .collect();
    assert_eq!(names, ["/app/c"]);
    assert_eq!(second.next_token, None);
}

#[test]
fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock: SharedClock = Arc::new(ManualClock::starting_at(
        UNIX_EPOCH + Duration::from_millis(NOW as u64),
    ));
    let store = LogStore::open(Some(dir.path()), clock.clone()).unwrap();
    group(&store, "g");
    stream(&store, "g", "s");
    put(&store, "g", "s", &[(NOW - 1, "kept")]);
    store.flush();

    let reopened = LogStore::open(Some(dir.path()), clock).unwrap();
    assert_eq!(
        reopened
            .events("g", "s")
            .unwrap()
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>(),
        ["kept"]
    );
    // Event ids keep counting from where they were.
    reopened.append("g", "s", NOW, "next".into());
    let filtered = reopened
        .filter_log_events(api::FilterLogEventsRequest {
            log_group_name: Some("g".into()),
            ..Default::default()
        })
        .unwrap();
    assert_ne!(filtered.events[0].event_id, filtered.events[1].event_id);
}

#[test]
fn a_corrupt_state_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("logs.json"), b"{not json").unwrap();
    let error = LogStore::open(Some(dir.path()), Arc::new(crate::clock::SystemClock)).unwrap_err();
    assert!(error.to_string().contains("logs.json"), "{error}");
}

const DELAY: IngestionDelay = IngestionDelay {
    batch: Duration::from_millis(5000),
    visible_after: Duration::from_millis(3000),
};

/// Every event of `g`/`s` after `token`, page by page, and the token to continue from.
fn read_on(store: &LogStore, token: &str) -> (Vec<api::OutputLogEvent>, String) {
    let mut events = Vec::new();
    let mut token = token.to_owned();
    loop {
        let page = get(store, Some(&token), Some(true), Some(1));
        events.extend(page.events);
        if page.next_forward_token == token {
            return (events, token);
        }
        token = page.next_forward_token;
    }
}

#[test]
fn delayed_driver_lines_show_up_in_batches_behind_the_token_a_reader_holds() {
    let (store, clock) = store();
    group(&store, "g");
    store.open_driver("g", "s");
    let tick = |ms: u64| clock.advance(Duration::from_millis(ms));
    tick(100);
    store.driver_append("g", "s", "a".into(), Some(DELAY));
    tick(3900);
    store.driver_append("g", "s", "b".into(), Some(DELAY));
    tick(2000);
    store.driver_append("g", "s", "c".into(), Some(DELAY));

    // At NOW+6000 the stream exists (the driver creates it before the container starts) but
    // shows nothing yet: "a" and "b" went out with the 5000 ms batch, visible at 8000.
    let first = get(&store, None, Some(true), None);
    assert!(first.events.is_empty());
    let streams = store
        .describe_log_streams(
            "us-east-1",
            api::DescribeLogStreamsRequest {
                log_group_name: Some("g".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(streams.log_streams.len(), 1);
    assert_eq!(streams.log_streams[0].last_event_timestamp, None);
    let held = first.next_forward_token;

    tick(1999);
    assert!(read_on(&store, &held).0.is_empty(), "at 7999");
    tick(1);
    let (events, at_8000) = read_on(&store, &held);
    assert_eq!(messages(&events), ["a", "b"]);
    assert_eq!(events[0].timestamp, NOW + 100);
    assert_eq!(events[1].timestamp, NOW + 4000);
    assert!(events.iter().all(|e| e.ingestion_time == NOW + 8000));

    // The container stops at 9000: the driver sends "c" then, not at its 10000 tick.
    tick(1000);
    store.close_driver("g", "s");
    tick(2999);
    assert!(read_on(&store, &at_8000).0.is_empty(), "at 11999");
    tick(1);
    let (events, end) = read_on(&store, &at_8000);
    assert_eq!(messages(&events), ["c"]);
    assert_eq!(events[0].timestamp, NOW + 6000);
    assert_eq!(events[0].ingestion_time, NOW + 12_000);
    assert_eq!(
        get(&store, Some(&end), Some(true), None).next_forward_token,
        end
    );

    let all = store
        .filter_log_events(api::FilterLogEventsRequest {
            log_group_name: Some("g".into()),
            ..Default::default()
        })
        .unwrap();
    let filtered: Vec<_> = all.events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(filtered, ["a", "b", "c"]);
}

#[test]
fn without_the_fault_driver_lines_are_visible_at_once_but_never_ahead_of_held_ones() {
    let (store, clock) = store();
    group(&store, "g");
    store.open_driver("g", "s");
    store.driver_append("g", "s", "now".into(), None);
    let events = get(&store, None, Some(true), None).events;
    assert_eq!(messages(&events), ["now"]);
    assert_eq!(events[0].ingestion_time, events[0].timestamp);

    store.driver_append("g", "s", "held".into(), Some(DELAY));
    // The fault was cleared: the next line is not delayed itself, but waits for "held".
    store.driver_append("g", "s", "after".into(), None);
    assert_eq!(
        messages(&get(&store, None, Some(true), None).events),
        ["now"]
    );
    clock.advance(Duration::from_millis(8000));
    assert_eq!(
        messages(&get(&store, None, Some(true), None).events),
        ["now", "held", "after"]
    );
}

#[test]
fn held_lines_survive_a_restart_and_still_show_up() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_at(UNIX_EPOCH + Duration::from_millis(NOW as u64));
    let store = LogStore::open(Some(dir.path()), Arc::new(clock.clone())).unwrap();
    group(&store, "g");
    store.open_driver("g", "s");
    store.driver_append("g", "s", "held".into(), Some(DELAY));
    store.flush();

    let reopened = LogStore::open(Some(dir.path()), Arc::new(clock.clone())).unwrap();
    assert_eq!(reopened.events("g", "s").unwrap(), []);
    clock.advance(Duration::from_millis(8000));
    let events = reopened.events("g", "s").unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].message, "held");
    assert_eq!(events[0].ingestion_time, NOW + 8000);
}
