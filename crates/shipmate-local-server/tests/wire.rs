//! Bad input over raw HTTP: every mistake a client can make gets an AWS-shaped answer (status,
//! `__type`, `message`, `x-amzn-RequestId`), never a panic, a hang or a dropped connection.

mod common;

use common::{aws_call, send};
use shipmate_local_server::request_log::MAX_RECORDED_BODY;
use shipmate_local_server::{ServerConfig, start};

const LOGS: &str = "Logs_20140328";

fn assert_aws_error(response: &common::RawResponse, status: u16, code: &str) {
    assert_eq!(
        response.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.aws_error().0, code);
    assert_eq!(
        response.header("content-type"),
        Some("application/x-amz-json-1.1")
    );
    assert!(response.header("x-amzn-requestid").is_some());
}

#[tokio::test]
async fn bad_requests_get_aws_shaped_errors() {
    let server = start(ServerConfig::default()).await.unwrap();
    let addr = server.addr();

    let malformed = aws_call(
        addr,
        &format!("{LOGS}.CreateLogGroup"),
        b"{\"logGroupName\": ",
    )
    .await
    .unwrap();
    assert_aws_error(&malformed, 400, "SerializationException");

    let wrong_type = aws_call(
        addr,
        &format!("{LOGS}.CreateLogGroup"),
        br#"{"logGroupName": 42}"#,
    )
    .await
    .unwrap();
    assert_aws_error(&wrong_type, 400, "SerializationException");

    let not_an_object = aws_call(addr, &format!("{LOGS}.DescribeLogGroups"), b"[1, 2]")
        .await
        .unwrap();
    assert_aws_error(&not_an_object, 400, "SerializationException");

    let unknown_service = aws_call(addr, "DynamoDB_20120810.GetItem", b"{}")
        .await
        .unwrap();
    assert_aws_error(&unknown_service, 400, "UnknownOperationException");

    let unknown_logs_operation = aws_call(addr, &format!("{LOGS}.PutRetentionPolicy"), b"{}")
        .await
        .unwrap();
    assert_aws_error(&unknown_logs_operation, 400, "UnknownOperationException");
    assert!(
        unknown_logs_operation
            .aws_error()
            .1
            .contains("PutRetentionPolicy")
    );

    let no_target = send(
        addr,
        "POST",
        "/",
        &[("Content-Type", "application/x-amz-json-1.1")],
        b"{}",
    )
    .await
    .unwrap();
    assert_aws_error(&no_target, 400, "UnknownOperationException");

    let get = send(addr, "GET", "/", &[], b"").await.unwrap();
    assert_aws_error(&get, 405, "UnknownOperationException");

    let other_path = aws_call(addr, &format!("{LOGS}.DescribeLogGroups"), b"{}").await;
    assert_eq!(other_path.unwrap().status, 200);

    server.shutdown().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_not_buffered() {
    let server = start(ServerConfig::default()).await.unwrap();
    let mut body = b"{\"logGroupName\": \"".to_vec();
    body.resize(11 * 1024 * 1024, b'a');
    body.extend_from_slice(b"\"}");
    let response = aws_call(server.addr(), &format!("{LOGS}.CreateLogGroup"), &body)
        .await
        .expect("an answer, not a closed connection");
    assert_aws_error(&response, 413, "RequestEntityTooLargeException");

    // The server is still fine afterwards.
    let health = send(server.addr(), "GET", "/_shipmate/health", &[], b"")
        .await
        .unwrap();
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    server.shutdown().await;
}

#[tokio::test]
async fn the_request_log_records_every_aws_call() {
    let server = start(ServerConfig::default()).await.unwrap();
    let addr = server.addr();
    aws_call(addr, &format!("{LOGS}.DescribeLogGroups"), b"{}")
        .await
        .unwrap();
    aws_call(
        addr,
        &format!("{LOGS}.DeleteLogGroup"),
        br#"{"logGroupName":"nope"}"#,
    )
    .await
    .unwrap();

    let log = send(addr, "GET", "/_shipmate/requests", &[], b"")
        .await
        .unwrap()
        .json();
    let requests = log["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 2, "{log}");
    assert_eq!(requests[0]["service"], "logs");
    assert_eq!(requests[0]["operation"], "DescribeLogGroups");
    assert_eq!(requests[0]["status"], 200);
    assert!(requests[0].get("errorCode").is_none());
    assert_eq!(requests[1]["operation"], "DeleteLogGroup");
    assert_eq!(requests[1]["status"], 400);
    assert_eq!(requests[1]["errorCode"], "ResourceNotFoundException");
    assert_eq!(requests[0]["body"], serde_json::json!({}));
    assert_eq!(
        requests[1]["body"],
        serde_json::json!({"logGroupName": "nope"})
    );
    assert_eq!(server.request_log().records().len(), 2);

    let cleared = send(addr, "DELETE", "/_shipmate/requests", &[], b"")
        .await
        .unwrap();
    assert_eq!(cleared.status, 200);
    assert!(server.request_log().records().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn the_request_log_keeps_each_body_as_json_unless_it_is_huge_or_not_json() {
    let server = start(ServerConfig::default()).await.unwrap();
    let addr = server.addr();
    let target = format!("{LOGS}.PutLogEvents");
    let events = |message: String| {
        serde_json::json!({
            "logGroupName": "/g", "logStreamName": "s",
            "logEvents": [{"timestamp": 1_800_000_000_000_i64, "message": message}],
        })
        .to_string()
    };
    let small = events("one".into());
    let large = events("x".repeat(MAX_RECORDED_BODY));
    // A fault answers instead of the engine; what the client sent is recorded all the same.
    server.throttle("PutLogEvents", 1);
    for body in [small.as_bytes(), large.as_bytes(), b"{\"logGroupName\": "] {
        aws_call(addr, &target, body).await.unwrap();
    }
    let bodies: Vec<_> = server
        .request_log()
        .records()
        .into_iter()
        .map(|record| record.body)
        .collect();
    assert_eq!(
        bodies,
        vec![
            Some(serde_json::from_str(&small).unwrap()),
            Some(serde_json::json!(format!(
                "<omitted: {} bytes>",
                large.len()
            ))),
            None,
        ]
    );
    let listed = send(addr, "GET", "/_shipmate/requests", &[], b"")
        .await
        .unwrap()
        .json();
    assert_eq!(
        listed["requests"][0]["body"]["logEvents"][0]["message"],
        "one"
    );
    assert!(listed["requests"][2].get("body").is_none(), "{listed}");
    server.shutdown().await;
}

#[tokio::test]
async fn faults_armed_over_http_hit_exactly_n_calls() {
    let server = start(ServerConfig::default()).await.unwrap();
    let addr = server.addr();
    let target = format!("{LOGS}.DescribeLogGroups");
    for fault in [
        r#"{"kind":"throttle","operation":"DescribeLogGroups","count":1}"#,
        r#"{"kind":"server_error","operation":"DescribeLogGroups","count":1}"#,
        r#"{"kind":"unavailable","operation":"DescribeLogGroups","count":1}"#,
        r#"{"kind":"drop_connection","operation":"DescribeLogGroups","count":1}"#,
    ] {
        let armed = send(addr, "POST", "/_shipmate/faults", &[], fault.as_bytes())
            .await
            .unwrap();
        assert_eq!(armed.status, 200, "{fault}");
    }
    let listed = send(addr, "GET", "/_shipmate/faults", &[], b"")
        .await
        .unwrap()
        .json();
    assert_eq!(listed["faults"].as_array().unwrap().len(), 4);

    let throttled = aws_call(addr, &target, b"{}").await.unwrap();
    assert_aws_error(&throttled, 400, "ThrottlingException");
    assert_eq!(throttled.aws_error().1, "Rate exceeded");
    let server_error = aws_call(addr, &target, b"{}").await.unwrap();
    assert_aws_error(&server_error, 500, "ServiceUnavailableException");
    let unavailable = aws_call(addr, &target, b"{}").await.unwrap();
    assert_eq!(unavailable.status, 503);
    assert!(
        aws_call(addr, &target, b"{}").await.is_none(),
        "the connection is closed without a response"
    );
    assert_eq!(aws_call(addr, &target, b"{}").await.unwrap().status, 200);

    let faults: Vec<_> = server
        .request_log()
        .records()
        .into_iter()
        .map(|record| (record.fault, record.status))
        .collect();
    assert_eq!(
        faults,
        vec![
            (Some("throttle".to_owned()), Some(400)),
            (Some("server_error".to_owned()), Some(500)),
            (Some("unavailable".to_owned()), Some(503)),
            (Some("drop_connection".to_owned()), None),
            (None, Some(200)),
        ]
    );

    let bad = send(
        addr,
        "POST",
        "/_shipmate/faults",
        &[],
        br#"{"kind":"explode"}"#,
    )
    .await
    .unwrap();
    assert_aws_error(&bad, 400, "InvalidParameterException");
    server.throttle("*", 5);
    let cleared = send(addr, "DELETE", "/_shipmate/faults", &[], b"")
        .await
        .unwrap();
    assert_eq!(cleared.status, 200);
    assert_eq!(aws_call(addr, &target, b"{}").await.unwrap().status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn an_empty_response_fault_answers_200_with_an_empty_object_instead_of_the_engine() {
    let server = start(ServerConfig::default()).await.unwrap();
    let addr = server.addr();
    const ECS: &str = "AmazonEC2ContainerServiceV20141113";
    let created = aws_call(addr, &format!("{ECS}.CreateCluster"), b"{}")
        .await
        .unwrap();
    assert_eq!(created.status, 200);
    let registered = aws_call(
        addr,
        &format!("{ECS}.RegisterTaskDefinition"),
        br#"{"family":"f","containerDefinitions":[{"name":"main","image":"img:1","memory":64}]}"#,
    )
    .await
    .unwrap();
    assert_eq!(registered.status, 200);
    let armed = send(
        addr,
        "POST",
        "/_shipmate/faults",
        &[],
        br#"{"kind":"empty_response","operation":"DescribeTaskDefinition","count":2}"#,
    )
    .await
    .unwrap();
    assert_eq!(armed.status, 200);
    let listed = send(addr, "GET", "/_shipmate/faults", &[], b"")
        .await
        .unwrap()
        .json();
    assert_eq!(
        listed["faults"],
        serde_json::json!([{"kind": "empty_response", "operation": "DescribeTaskDefinition", "count": 2}])
    );

    let describe = format!("{ECS}.DescribeTaskDefinition");
    // Other operations are untouched.
    let tasks = aws_call(addr, &format!("{ECS}.ListTasks"), b"{}")
        .await
        .unwrap();
    assert_eq!(tasks.json(), serde_json::json!({"taskArns": []}));
    for _ in 0..2 {
        let empty = aws_call(addr, &describe, br#"{"taskDefinition":"f"}"#)
            .await
            .unwrap();
        assert_eq!(empty.status, 200);
        assert_eq!(empty.body, b"{}");
        assert_eq!(
            empty.header("content-type"),
            Some("application/x-amz-json-1.1")
        );
        assert!(empty.header("x-amzn-requestid").is_some());
    }
    let real = aws_call(addr, &describe, br#"{"taskDefinition":"f"}"#)
        .await
        .unwrap()
        .json();
    assert_eq!(real["taskDefinition"]["revision"], 1, "{real}");

    let records: Vec<_> = server
        .request_log()
        .records()
        .into_iter()
        .filter(|record| record.operation.as_deref() == Some("DescribeTaskDefinition"))
        .map(|record| (record.fault, record.status))
        .collect();
    assert_eq!(
        records,
        vec![
            (Some("empty_response".to_owned()), Some(200)),
            (Some("empty_response".to_owned()), Some(200)),
            (None, Some(200)),
        ]
    );

    // The Rust helper arms the same fault; DELETE disarms it with the rest.
    server.answer_empty("DescribeTasks", 3);
    let cleared = send(addr, "DELETE", "/_shipmate/faults", &[], b"")
        .await
        .unwrap();
    assert_eq!(cleared.status, 200);
    let described = aws_call(
        addr,
        &format!("{ECS}.DescribeTasks"),
        br#"{"tasks":["0123456789abcdef0123456789abcdef"]}"#,
    )
    .await
    .unwrap()
    .json();
    assert_eq!(described["failures"][0]["reason"], "MISSING", "{described}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_service_throttle_base_is_a_setting_of_the_control_api() {
    let server = start(ServerConfig::default()).await.unwrap();
    let addr = server.addr();
    let settings = send(addr, "GET", "/_shipmate/settings", &[], b"")
        .await
        .unwrap()
        .json();
    assert_eq!(
        settings,
        serde_json::json!({"service_throttle_base_ms": 5000, "rate_limits": false, "rate_limit_refill_scale": 1, "deployment_time_scale": 1.0})
    );
    let changed = send(
        addr,
        "PUT",
        "/_shipmate/settings",
        &[],
        br#"{"service_throttle_base_ms":250}"#,
    )
    .await
    .unwrap();
    assert_eq!(changed.status, 200);
    assert_eq!(
        changed.json(),
        serde_json::json!({"service_throttle_base_ms": 250, "rate_limits": false, "rate_limit_refill_scale": 1, "deployment_time_scale": 1.0})
    );
    assert_eq!(
        server.engine().ecs.service_throttle_base(),
        std::time::Duration::from_millis(250)
    );
    // Settings are not faults: clearing faults keeps them.
    send(addr, "DELETE", "/_shipmate/faults", &[], b"")
        .await
        .unwrap();
    assert_eq!(
        server.engine().ecs.service_throttle_base(),
        std::time::Duration::from_millis(250)
    );
    for bad in [
        r#"{"service_throttle_base_ms":-1}"#,
        r#"{"service_throttle_base":250}"#,
        "not json",
    ] {
        let refused = send(addr, "PUT", "/_shipmate/settings", &[], bad.as_bytes())
            .await
            .unwrap();
        assert_aws_error(&refused, 400, "InvalidParameterException");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_control_paths_are_404() {
    let server = start(ServerConfig::default()).await.unwrap();
    let response = send(server.addr(), "GET", "/_shipmate/nope", &[], b"")
        .await
        .unwrap();
    assert_aws_error(&response, 404, "NotFoundException");
    server.shutdown().await;
}

#[tokio::test]
async fn engine_faults_are_armed_through_the_control_api() {
    let server = start(ServerConfig::default()).await.unwrap();
    let addr = server.addr();
    const ECS: &str = "AmazonEC2ContainerServiceV20141113";
    let armed = send(
        addr,
        "POST",
        "/_shipmate/faults",
        &[],
        br#"{"kind":"fail_placement","count":1,"reason":"RESOURCE:CPU"}"#,
    )
    .await
    .unwrap();
    assert_eq!(armed.status, 200);
    let created = aws_call(addr, &format!("{ECS}.CreateCluster"), b"{}")
        .await
        .unwrap();
    assert_eq!(created.status, 200);
    let registered = aws_call(
        addr,
        &format!("{ECS}.RegisterTaskDefinition"),
        br#"{"family":"f","containerDefinitions":[{"name":"main","image":"img:1","memory":64,"command":["true"]}]}"#,
    )
    .await
    .unwrap();
    assert_eq!(
        registered.status,
        200,
        "{}",
        String::from_utf8_lossy(&registered.body)
    );
    let run = aws_call(
        addr,
        &format!("{ECS}.RunTask"),
        br#"{"taskDefinition":"f"}"#,
    )
    .await
    .unwrap()
    .json();
    assert_eq!(run["failures"][0]["reason"], "RESOURCE:CPU", "{run}");
    assert_eq!(run["tasks"].as_array().map(Vec::len), Some(0), "{run}");

    for bad in [
        r#"{"kind":"delay_transition","status":"RUNNING","seconds":1}"#,
        r#"{"kind":"delay_transition","status":"PENDING","seconds":-1}"#,
        r#"{"kind":"fail_image_pull"}"#,
        r#"{"kind":"delay_log_ingestion","batch_ms":-5}"#,
        r#"{"kind":"delay_log_ingestion","visible_after_ms":"soon"}"#,
        r#"{"kind":"delay_log_ingestion","batch":5000}"#,
    ] {
        let refused = send(addr, "POST", "/_shipmate/faults", &[], bad.as_bytes())
            .await
            .unwrap();
        assert_aws_error(&refused, 400, "InvalidParameterException");
    }
    server.shutdown().await;
}

/// Polls `call` every 100 ms until `done` accepts its answer.
async fn wait_for(
    what: &str,
    mut call: impl AsyncFnMut() -> serde_json::Value,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = std::time::Instant::now();
    loop {
        let value = call().await;
        if done(&value) {
            return value;
        }
        assert!(
            start.elapsed() < common::DEADLINE,
            "timed out waiting for {what}: {value}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn delayed_log_ingestion_is_armed_and_cleared_through_the_control_api() {
    const ECS: &str = "AmazonEC2ContainerServiceV20141113";
    let server = start(ServerConfig::default()).await.unwrap();
    let addr = server.addr();
    let image = tempfile::tempdir().unwrap();
    server
        .engine()
        .images
        .push_dir("late:1", image.path())
        .unwrap();
    let call = |target: String, body: String| async move {
        let response = aws_call(addr, &target, body.as_bytes()).await.unwrap();
        assert_eq!(
            response.status,
            200,
            "{target}: {}",
            String::from_utf8_lossy(&response.body)
        );
        response.json()
    };
    call(format!("{ECS}.CreateCluster"), "{}".into()).await;
    call(
        format!("{LOGS}.CreateLogGroup"),
        r#"{"logGroupName":"/late"}"#.into(),
    )
    .await;
    call(
        format!("{ECS}.RegisterTaskDefinition"),
        r#"{"family":"late","containerDefinitions":[{"name":"main","image":"late:1","memory":64,
            "command":["sh","-c","echo one"],
            "logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"/late","awslogs-region":"us-east-1","awslogs-stream-prefix":"p"}}}]}"#
            .into(),
    )
    .await;
    // Runs the task to STOPPED and answers its stream's events at that moment and the stream.
    let run_to_stopped = || async {
        let run = call(
            format!("{ECS}.RunTask"),
            r#"{"taskDefinition":"late"}"#.into(),
        )
        .await;
        let arn = run["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
        wait_for(
            "STOPPED",
            || {
                call(
                    format!("{ECS}.DescribeTasks"),
                    format!(r#"{{"tasks":["{arn}"]}}"#),
                )
            },
            |described| described["tasks"][0]["lastStatus"] == "STOPPED",
        )
        .await;
        let stream = format!("p/main/{}", arn.rsplit('/').next().unwrap());
        let events = call(
            format!("{LOGS}.GetLogEvents"),
            format!(
                r#"{{"logGroupName":"/late","logStreamName":"{stream}","startFromHead":true}}"#
            ),
        )
        .await;
        (events["events"].as_array().unwrap().len(), stream)
    };

    let armed = send(
        addr,
        "POST",
        "/_shipmate/faults",
        &[],
        br#"{"kind":"delay_log_ingestion","batch_ms":100,"visible_after_ms":3000}"#,
    )
    .await
    .unwrap();
    assert_eq!(armed.status, 200);
    let (visible_at_stop, stream) = run_to_stopped().await;
    assert_eq!(
        visible_at_stop, 0,
        "the line is still on its way at STOPPED"
    );
    let events = wait_for(
        "the delayed line",
        || {
            call(
                format!("{LOGS}.GetLogEvents"),
                format!(
                    r#"{{"logGroupName":"/late","logStreamName":"{stream}","startFromHead":true}}"#
                ),
            )
        },
        |page| !page["events"].as_array().unwrap().is_empty(),
    )
    .await;
    let event = &events["events"][0];
    assert_eq!(event["message"], "one");
    assert!(
        event["ingestionTime"].as_i64().unwrap() >= event["timestamp"].as_i64().unwrap() + 3000,
        "{event}"
    );

    let cleared = send(addr, "DELETE", "/_shipmate/faults", &[], b"")
        .await
        .unwrap();
    assert_eq!(cleared.status, 200);
    let (visible_at_stop, _) = run_to_stopped().await;
    assert_eq!(
        visible_at_stop, 1,
        "without the fault every line is there at STOPPED"
    );
    server.shutdown().await;
}
