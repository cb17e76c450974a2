//! Graceful shutdown stops every process the endpoint started, so a stopped `shipmate local serve`
//! never leaves task processes behind.

mod common;

use std::time::{Duration, Instant};

use common::{DEADLINE, aws_call};
use shipmate_local_server::{ServerConfig, start};

const ECS: &str = "AmazonEC2ContainerServiceV20141113";

/// Whether a process with exactly this argv is alive.
fn running(argv: &[&str]) -> bool {
    let wanted: Vec<u8> = argv
        .iter()
        .flat_map(|arg| [arg.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .any(|cmdline| cmdline == wanted)
}

#[tokio::test]
async fn shutdown_stops_running_tasks() {
    let server = start(ServerConfig::default()).await.unwrap();
    let addr = server.addr();
    let image = tempfile::tempdir().unwrap();
    shipmate_local_server::client::push_dir(&server.endpoint_url(), "sleeper:1", image.path())
        .await
        .unwrap();
    // A duration no other test uses, so the process can be found by its argv.
    let argv = ["sleep", "987.654"];
    assert!(
        aws_call(addr, &format!("{ECS}.CreateCluster"), b"{}")
            .await
            .unwrap()
            .status
            == 200
    );
    let definition = serde_json::json!({
        "family": "sleeper",
        "containerDefinitions": [{
            "name": "main", "image": "sleeper:1", "memory": 64, "command": argv,
        }],
    });
    let registered = aws_call(
        addr,
        &format!("{ECS}.RegisterTaskDefinition"),
        definition.to_string().as_bytes(),
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
        br#"{"taskDefinition":"sleeper"}"#,
    )
    .await
    .unwrap()
    .json();
    let task_arn = run["tasks"][0]["taskArn"]
        .as_str()
        .expect("a task")
        .to_owned();
    let describe = serde_json::json!({ "tasks": [task_arn] }).to_string();

    let started = Instant::now();
    loop {
        let described = aws_call(addr, &format!("{ECS}.DescribeTasks"), describe.as_bytes())
            .await
            .unwrap()
            .json();
        let status = described["tasks"][0]["lastStatus"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if status == "RUNNING" && running(&argv) {
            break;
        }
        assert_ne!(status, "STOPPED", "the task stopped by itself: {described}");
        assert!(
            started.elapsed() < DEADLINE,
            "the task never ran: {described}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let engine = server.engine().clone();
    tokio::time::timeout(DEADLINE, server.shutdown())
        .await
        .expect("shutdown finishes within the deadline");
    assert!(!running(&argv), "the task's process outlived the server");
    let target = shipmate_local_protocol::Target::parse(&format!("{ECS}.DescribeTasks")).unwrap();
    let after = engine
        .handle(shipmate_local_engine::Request {
            target: &target,
            region: "us-east-1",
            body: describe.as_bytes(),
        })
        .await
        .unwrap();
    let after: serde_json::Value = serde_json::from_slice(&after).unwrap();
    assert_eq!(after["tasks"][0]["lastStatus"], "STOPPED", "{after}");
}
