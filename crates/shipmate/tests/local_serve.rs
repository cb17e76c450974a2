//! The built `shipmate local serve` and `shipmate local push` as a user runs them: the one
//! `listening on` line, requests answered, an image pushed, SIGTERM ends it with exit 0, and the
//! state directory carries logs and images into the next run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A scratch directory removed at the end of the test (no dev-dependency needed for that).
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "shipmate-local-serve-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Scratch(path)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Generous: the machine is shared and loaded.
const DEADLINE: Duration = Duration::from_secs(60);

fn shipmate() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shipmate"));
    command
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_ECS");
    command
}

/// Starts `shipmate local serve` and returns it with the endpoint from its `listening on` line.
fn serve(state_dir: &std::path::Path) -> (Child, String) {
    let mut child = shipmate()
        .args(["local", "serve", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run shipmate");
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let line = received
        .recv_timeout(DEADLINE)
        .expect("a `listening on` line within the deadline");
    let endpoint = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_owned();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    assert!(
        received.recv_timeout(Duration::from_millis(200)).is_err(),
        "exactly one line on stdout"
    );
    (child, endpoint)
}

/// One raw HTTP/1.1 exchange; answers (status, body).
fn http(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let address = endpoint.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn logs_call(endpoint: &str, operation: &str, body: &str) -> (u16, String) {
    http(
        endpoint,
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", &format!("Logs_20140328.{operation}")),
        ],
        body,
    )
}

fn terminate(mut child: Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("shipmate local serve did not exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_answers_pushes_and_stops_on_sigterm_keeping_state() {
    let state = Scratch::new("state");
    let (child, endpoint) = serve(state.path());

    let (status, body) = http(&endpoint, "GET", "/_shipmate/health", &[], "");
    assert_eq!((status, body.contains("\"ok\"")), (200, true), "{body}");
    let (status, body) = logs_call(
        &endpoint,
        "CreateLogGroup",
        r#"{"logGroupName":"/ecs/web"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = logs_call(&endpoint, "NoSuchOperation", "{}");
    assert_eq!(status, 400);
    assert!(body.contains("UnknownOperationException"), "{body}");

    let image_dir = Scratch::new("image");
    std::fs::write(image_dir.path().join("manage.py"), "print('hi')\n").unwrap();
    let push = shipmate()
        .args(["local", "push"])
        .arg(image_dir.path())
        .args(["--image", "web:v1"])
        .env("AWS_ENDPOINT_URL", &endpoint)
        .output()
        .unwrap();
    assert!(
        push.status.success(),
        "{}",
        String::from_utf8_lossy(&push.stderr)
    );
    let printed = String::from_utf8(push.stdout).unwrap();
    assert!(printed.starts_with("web:v1 sha256:"), "{printed}");

    assert_eq!(terminate(child).code(), Some(0));

    // The next run finds the log group and the image.
    let (child, endpoint) = serve(state.path());
    let (_, groups) = logs_call(&endpoint, "DescribeLogGroups", "{}");
    assert!(groups.contains("/ecs/web"), "{groups}");
    let (_, images) = http(&endpoint, "GET", "/_shipmate/images", &[], "");
    assert!(images.contains("web:v1"), "{images}");
    assert_eq!(terminate(child).code(), Some(0));
}

#[test]
fn push_without_an_endpoint_explains_how_to_get_one() {
    let dir = Scratch::new("dir");
    let output = shipmate()
        .args(["local", "push"])
        .arg(dir.path())
        .args(["--image", "web:v1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no endpoint"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(output.stdout.is_empty());
}
