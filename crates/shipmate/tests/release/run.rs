//! `shipmate run`: exit code passthrough, complete logs, start failures with hints, cancel.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::harness::{Env, LOG_GROUP, eventually};

const RUN: [&str; 9] = [
    "run",
    "--cluster",
    "prod",
    "--task-definition",
    "tool",
    "--poll-interval",
    "200ms",
    // shipmate local stores every line before the task stops: no need to wait long.
    "--log-quiet-period",
    "500ms",
];

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut all: Vec<&str> = RUN.to_vec();
    all.extend_from_slice(extra);
    all
}

async fn tool_env() -> Env {
    let env = Env::start().await;
    env.push_image("tool:1", &[("README", "tool image")]);
    env.create_log_group(LOG_GROUP).await;
    env.register_tool("tool:1", LOG_GROUP, 256).await;
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_exits_with_the_container_exit_code_and_streams_every_line() {
    let env = tool_env().await;
    let outcome = env
        .shipmate(&args(&[
            "--",
            "sh",
            "-c",
            "for i in 1 2 3; do echo line $i; done; echo the last line; exit 3",
        ]))
        .await;
    assert_eq!(outcome.code, Some(3));
    let lines: Vec<&str> = outcome
        .stderr
        .lines()
        .filter(|l| l.starts_with("run | "))
        .collect();
    assert_eq!(
        lines,
        [
            "run | line 1",
            "run | line 2",
            "run | line 3",
            "run | the last line"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_of_an_image_never_pushed_fails_to_start_with_a_hint() {
    let env = Env::start().await;
    env.create_log_group(LOG_GROUP).await;
    env.register_tool("never-pushed:1", LOG_GROUP, 256).await;
    let outcome = env.shipmate(&args(&["--", "true"])).await;
    assert_eq!(outcome.code, Some(3), "failed to start");
    assert!(
        outcome.stderr.contains("CannotPullContainerError"),
        "reason shown"
    );
    assert!(
        outcome
            .stderr
            .contains("hint: the image is not in the store of the shipmate local at"),
        "hint shown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_without_its_log_group_fails_to_start_with_a_hint() {
    let env = Env::start().await;
    env.push_image("tool:1", &[("README", "tool image")]);
    env.register_tool("tool:1", "/ecs/missing", 256).await;
    let outcome = env.shipmate(&args(&["--", "true"])).await;
    assert_eq!(outcome.code, Some(3));
    assert!(
        outcome.stderr.contains("log group does not exist"),
        "reason shown"
    );
    assert!(
        outcome
            .stderr
            .contains("hint: the awslogs log group does not exist"),
        "hint shown"
    );
}

/// Starts `shipmate run` with a long command and waits until its task runs.
async fn start_long_run(env: &Env, extra: &[&str]) -> (tokio::process::Child, String) {
    let mut all = args(extra);
    all.extend_from_slice(&["--", "sh", "-c", "echo started; exec sleep 120"]);
    let child = env.command(&all).spawn().expect("spawn");
    let task = eventually(Duration::from_secs(60), || async {
        env.tasks_started_by("shipmate/run")
            .await
            .into_iter()
            .find(|t| t.last_status() == Some("RUNNING"))
            .and_then(|t| t.task_arn().map(str::to_owned))
    })
    .await
    .expect("the task reaches RUNNING");
    (child, task)
}

async fn task_status(env: &Env, task: &str) -> (String, Option<String>) {
    let output = env
        .ecs
        .describe_tasks()
        .cluster("prod")
        .tasks(task)
        .send()
        .await
        .expect("DescribeTasks");
    let task = output.tasks().first().expect("task").clone();
    (
        task.last_status().unwrap_or_default().to_owned(),
        task.stop_code().map(|c| c.as_str().to_owned()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_the_task() {
    let env = tool_env().await;
    let (child, task) = start_long_run(&env, &[]).await;
    kill(
        Pid::from_raw(i32::try_from(child.id().expect("pid")).expect("pid fits")),
        Signal::SIGINT,
    )
    .expect("SIGINT");
    let outcome = crate::harness::finish(child).await;
    assert_eq!(outcome.code, Some(130));
    assert!(
        outcome.stderr.contains("interrupted: stopping task"),
        "says what it does"
    );
    let stopped = eventually(Duration::from_secs(60), || async {
        let (status, code) = task_status(&env, &task).await;
        (status == "STOPPED").then_some(code)
    })
    .await
    .expect("the task stops");
    assert_eq!(stopped.as_deref(), Some("UserInitiated"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_on_cancel_leave_leaves_the_task_running() {
    let env = tool_env().await;
    let (child, task) = start_long_run(&env, &["--on-cancel", "leave"]).await;
    kill(
        Pid::from_raw(i32::try_from(child.id().expect("pid")).expect("pid fits")),
        Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let outcome = crate::harness::finish(child).await;
    assert_eq!(outcome.code, Some(130));
    assert!(
        outcome
            .stderr
            .contains(&format!("aws ecs stop-task --cluster prod --task {task}")),
        "prints how to stop it"
    );
    assert_eq!(task_status(&env, &task).await.0, "RUNNING");
    env.ecs
        .stop_task()
        .cluster("prod")
        .task(&task)
        .send()
        .await
        .expect("StopTask");
}
