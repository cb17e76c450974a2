//! Fuzzes what the HTTP server decodes before the engine sees a request: the `X-Amz-Target`
//! header, the SigV4 `Authorization` header the region is read from, the content type, and the
//! body, over raw HTTP/1.1 against one in-process endpoint. Every answer must be a JSON object
//! (2xx) or an AWS error envelope (4xx/5xx with `__type` and `message`), within a deadline: never
//! a dropped connection, never a hang; well-formed requests to the same endpoint still succeed.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEADLINE: Duration = Duration::from_secs(20);
const TARGETS: [&str; 8] = [
    "AmazonEC2ContainerServiceV20141113.RunTask",
    "AmazonEC2ContainerServiceV20141113.DescribeTasks",
    "AmazonEC2ContainerServiceV20141113.CreateService",
    "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition",
    "AmazonEC2ContainerServiceV20141113.ListClusters",
    "Logs_20140328.PutLogEvents",
    "Logs_20140328.GetLogEvents",
    "Logs_20140328.FilterLogEvents",
];

struct Harness {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    // Kept so the endpoint lives as long as the test binary.
    _server: shipmate_local_server::RunningServer,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        // The harness lives as long as the test binary (a static is never dropped): its state
        // goes under cargo's scratch directory rather than a temporary one nobody would remove.
        let state = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("http-fuzz");
        let _ = std::fs::remove_dir_all(&state);
        let server = runtime
            .block_on(shipmate_local_server::start(
                shipmate_local_server::ServerConfig {
                    state_dir: Some(state),
                    ..Default::default()
                },
            ))
            .expect("endpoint starts");
        Harness {
            runtime,
            addr: server.addr(),
            _server: server,
        }
    })
}

#[derive(Debug)]
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// One request on its own connection (`Connection: close`); `None` if the server closed the
/// connection without an answer.
async fn send(addr: SocketAddr, headers: &[(&str, String)], body: &[u8]) -> Option<Answer> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.ok()?;
    stream.write_all(body).await.ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.ok()?;
    let split = raw.windows(4).position(|window| window == b"\r\n\r\n")?;
    let status_line = String::from_utf8_lossy(&raw[..split]);
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    Some(Answer {
        status,
        body: raw[split + 4..].to_vec(),
    })
}

fn check(headers: Vec<(&str, String)>, body: Vec<u8>) -> Result<(), TestCaseError> {
    let harness = harness();
    let answer = harness.runtime.block_on(async {
        tokio::time::timeout(DEADLINE, send(harness.addr, &headers, &body)).await
    });
    let Ok(answer) = answer else {
        return Err(TestCaseError::fail(format!(
            "no answer within {DEADLINE:?} to {headers:?}"
        )));
    };
    let Some(answer) = answer else {
        return Err(TestCaseError::fail(format!(
            "connection closed without an answer to {headers:?}"
        )));
    };
    let value: Value = serde_json::from_slice(&answer.body).map_err(|error| {
        TestCaseError::fail(format!(
            "HTTP {} body is not JSON ({error}): {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        ))
    })?;
    prop_assert!(value.is_object(), "{value}");
    if answer.status >= 300 {
        prop_assert!(
            (400..600).contains(&answer.status),
            "status {}",
            answer.status
        );
        let code = value["__type"].as_str().unwrap_or_default();
        prop_assert!(
            !code.is_empty() && code.chars().all(|c| c.is_ascii_alphanumeric()),
            "`__type` {:?} in {value}",
            value["__type"]
        );
        prop_assert!(value["message"].is_string(), "{value}");
    }
    Ok(())
}

fn header_text() -> impl Strategy<Value = String> {
    "[ -~]{0,80}"
}

fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(TARGETS.to_vec()).prop_map(str::to_owned),
        1 => header_text(),
        1 => proptest::sample::select(TARGETS.to_vec())
            .prop_flat_map(|target| (Just(target), "[ -~]{0,8}"))
            .prop_map(|(target, noise)| format!("{target}{noise}")),
    ]
}

fn authorization() -> impl Strategy<Value = Option<String>> {
    let signed = ("[a-z0-9-]{0,20}", "[a-z]{0,8}").prop_map(|(region, service)| {
        format!(
            "AWS4-HMAC-SHA256 Credential=test/20261126/{region}/{service}/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-target, Signature={}",
            "0".repeat(64)
        )
    });
    proptest::option::of(prop_oneof![2 => signed, 1 => header_text()])
}

fn content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("application/x-amz-json-1.1".to_owned()),
        1 => Just("application/json".to_owned()),
        1 => header_text(),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let json = prop_oneof![
        Just(Value::Object(Default::default())),
        proptest::collection::btree_map("[a-zA-Z]{1,16}", any::<i64>().prop_map(Value::from), 0..4)
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        proptest::collection::btree_map(
            "[a-zA-Z]{1,16}",
            "[ -~]{0,16}".prop_map(Value::from),
            0..4
        )
        .prop_map(|map| Value::Object(map.into_iter().collect())),
    ];
    prop_oneof![
        2 => json.prop_map(|value| value.to_string().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..128),
    ]
}

proptest! {
    // HTTP round trips are slower than `handle` calls: 64 cases by default, `PROPTEST_CASES`
    // raises it.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_headers_and_body_get_an_aws_shaped_answer(
        target in proptest::option::of(target()),
        authorization in authorization(),
        content_type in content_type(),
        body in body(),
    ) {
        let mut headers = vec![("Content-Type", content_type)];
        if let Some(target) = target {
            headers.push(("X-Amz-Target", target));
        }
        if let Some(authorization) = authorization {
            headers.push(("Authorization", authorization));
        }
        check(headers, body)?;
    }
}

#[test]
fn a_well_formed_request_on_the_fuzzed_endpoint_succeeds() {
    let harness = harness();
    let answer = harness
        .runtime
        .block_on(send(
            harness.addr,
            &[
                ("Content-Type", "application/x-amz-json-1.1".to_owned()),
                (
                    "X-Amz-Target",
                    "AmazonEC2ContainerServiceV20141113.ListClusters".to_owned(),
                ),
            ],
            b"{}",
        ))
        .expect("an answer");
    assert_eq!(
        answer.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&answer.body)
    );
}
