//! Task lifecycle cases through aws-sdk-rust, each against its own in-process endpoint: what a
//! release depends on (exit codes, stop codes, reasons, timestamps) must be what ECS reports.
//! Service cases (rolling deployments, the circuit breaker): `services.rs`.

use aws_sdk_ecs::types::{ContainerDefinition, LaunchType, Task, TaskStopCode};
use shipmate_local_conformance::{
    DEADLINE, Endpoint, awslogs, container, network_configuration, poll, register_fargate, task_id,
};

async fn run(endpoint: &Endpoint, cluster: &str, family: &str) -> String {
    let output = endpoint
        .ecs
        .run_task()
        .cluster(cluster)
        .task_definition(family)
        .launch_type(LaunchType::Fargate)
        .network_configuration(network_configuration())
        .send()
        .await
        .unwrap_or_else(|error| panic!("RunTask {family}: {error:?}"));
    assert!(output.failures().is_empty(), "{:?}", output.failures());
    output.tasks()[0].task_arn().expect("taskArn").to_owned()
}

/// A cluster, and one Fargate task definition per `(family, containers)`.
async fn setup(endpoint: &Endpoint, definitions: Vec<(&str, Vec<ContainerDefinition>)>) {
    endpoint.create_cluster("life").await;
    for (family, containers) in definitions {
        register_fargate(endpoint, family, containers).await;
    }
}

fn container_named<'a>(task: &'a Task, name: &str) -> &'a aws_sdk_ecs::types::Container {
    task.containers()
        .iter()
        .find(|container| container.name() == Some(name))
        .unwrap_or_else(|| panic!("no container {name} in {task:?}"))
}

fn assert_stopped_in_order(task: &Task) {
    assert_eq!(task.last_status(), Some("STOPPED"));
    assert_eq!(task.desired_status(), Some("STOPPED"));
    let created = task.created_at().expect("createdAt");
    let stopped = task.stopped_at().expect("stoppedAt");
    assert!(created <= stopped, "{task:?}");
    if let Some(started) = task.started_at() {
        assert!(created <= started && started <= stopped, "{task:?}");
    }
    if let Some(stopping) = task.stopping_at() {
        assert!(stopping <= stopped, "{task:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_zero_and_three_are_reported() {
    let endpoint = Endpoint::start().await;
    endpoint.push("app:1", &[("run.sh", "echo start\nexit \"$1\"\n")]);
    setup(
        &endpoint,
        vec![
            (
                "ok",
                vec![container("app", "app:1", &["/bin/sh", "run.sh", "0"])],
            ),
            (
                "three",
                vec![container("app", "app:1", &["/bin/sh", "run.sh", "3"])],
            ),
        ],
    )
    .await;
    for (family, exit_code) in [("ok", 0), ("three", 3)] {
        let arn = run(&endpoint, "life", family).await;
        let task = endpoint.await_task_status("life", &arn, "STOPPED").await;
        assert_stopped_in_order(&task);
        assert!(task.started_at().is_some(), "the task ran: {task:?}");
        assert_eq!(
            task.stop_code(),
            Some(&TaskStopCode::EssentialContainerExited)
        );
        assert_eq!(
            task.stopped_reason(),
            Some("Essential container in task exited")
        );
        let app = container_named(&task, "app");
        assert_eq!(app.exit_code(), Some(exit_code), "{task:?}");
        assert_eq!(app.last_status(), Some("STOPPED"));
    }
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_memory_is_killed_with_137_and_out_of_memory_error() {
    let endpoint = Endpoint::start().await;
    endpoint.push("hog:1", &[("hog.py", HOG_PY)]);
    let mut hog = container("hog", "hog:1", &["/usr/bin/python3", "hog.py"]);
    hog.memory = Some(64);
    setup(&endpoint, vec![("hog", vec![hog])]).await;
    let arn = run(&endpoint, "life", "hog").await;
    let task = endpoint.await_task_status("life", &arn, "STOPPED").await;
    assert_stopped_in_order(&task);
    let hog = container_named(&task, "hog");
    assert_eq!(hog.exit_code(), Some(137), "{task:?}");
    assert!(
        hog.reason()
            .is_some_and(|reason| reason
                .starts_with("OutOfMemoryError: Container killed due to memory usage")),
        "{task:?}"
    );
    endpoint.shutdown().await;
}

/// Grows to 512 MiB (touching every page, so it is resident) in steps, then sleeps.
const HOG_PY: &str = "import time\nheld = []\nfor _ in range(64):\n    held.append(b'x' * (8 * 1024 * 1024))\n    time.sleep(0.01)\ntime.sleep(120)\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_task_sends_sigterm_then_sigkill_after_stop_timeout() {
    let endpoint = Endpoint::start().await;
    endpoint.create_log_group("/life").await;
    endpoint.push(
        "stop:1",
        &[
            ("polite.sh", "echo ready\nexec sleep 300\n"),
            // Ignores SIGTERM (and so does its `sleep`): only SIGKILL ends it.
            (
                "stubborn.sh",
                "trap '' TERM\necho ready\nwhile :; do sleep 1; done\n",
            ),
        ],
    );
    let mut polite = container("app", "stop:1", &["/bin/sh", "polite.sh"]);
    polite.log_configuration = Some(awslogs("/life", "polite"));
    let mut stubborn = container("app", "stop:1", &["/bin/sh", "stubborn.sh"]);
    stubborn.log_configuration = Some(awslogs("/life", "stubborn"));
    stubborn.stop_timeout = Some(2);
    setup(
        &endpoint,
        vec![("polite", vec![polite]), ("stubborn", vec![stubborn])],
    )
    .await;

    for (family, exit_code) in [("polite", 143), ("stubborn", 137)] {
        let arn = run(&endpoint, "life", family).await;
        endpoint.await_task_status("life", &arn, "RUNNING").await;
        let stream = format!("{family}/app/{}", task_id(&arn));
        poll(&format!("{family} to be ready"), DEADLINE, || async {
            let ready = endpoint
                .logs
                .get_log_events()
                .log_group_name("/life")
                .log_stream_name(&stream)
                .start_from_head(true)
                .send()
                .await
                .is_ok_and(|page| {
                    page.events()
                        .iter()
                        .any(|event| event.message() == Some("ready"))
                });
            ready.then_some(())
        })
        .await;
        let stopping = endpoint
            .ecs
            .stop_task()
            .cluster("life")
            .task(&arn)
            .reason("release cancelled")
            .send()
            .await
            .expect("StopTask")
            .task()
            .cloned()
            .expect("StopTask returns the task");
        assert_eq!(stopping.desired_status(), Some("STOPPED"));

        let task = endpoint.await_task_status("life", &arn, "STOPPED").await;
        assert_stopped_in_order(&task);
        assert_eq!(task.stop_code(), Some(&TaskStopCode::UserInitiated));
        assert_eq!(task.stopped_reason(), Some("release cancelled"));
        assert_eq!(
            container_named(&task, "app").exit_code(),
            Some(exit_code),
            "{family}: {task:?}"
        );
        if family == "stubborn" {
            // SIGKILL only after stopTimeout (2 s): a lower bound, safe however loaded the machine.
            let stopping_at = task.stopping_at().expect("stoppingAt").as_secs_f64();
            let stopped_at = task.stopped_at().expect("stoppedAt").as_secs_f64();
            assert!(
                stopped_at - stopping_at >= 1.9,
                "killed before stopTimeout: {task:?}"
            );
        }
    }
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_never_pushed_fails_to_start() {
    let endpoint = Endpoint::start().await;
    setup(
        &endpoint,
        vec![(
            "ghost",
            vec![container("app", "ghost/never-pushed:1", &["/bin/true"])],
        )],
    )
    .await;
    let arn = run(&endpoint, "life", "ghost").await;
    let task = endpoint.await_task_status("life", &arn, "STOPPED").await;
    assert_stopped_in_order(&task);
    assert_eq!(task.stop_code(), Some(&TaskStopCode::TaskFailedToStart));
    assert!(
        task.started_at().is_none(),
        "a task that failed to start never started: {task:?}"
    );
    let reasons = [
        task.stopped_reason(),
        container_named(&task, "app").reason(),
    ];
    assert!(
        reasons
            .iter()
            .flatten()
            .any(|reason| reason.starts_with("CannotPullContainerError")),
        "{task:?}"
    );
    assert_eq!(container_named(&task, "app").exit_code(), None, "{task:?}");
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_log_group_fails_to_start_unless_created() {
    let endpoint = Endpoint::start().await;
    endpoint.push("app:1", &[("run.sh", "echo hello\n")]);
    let mut missing = container("app", "app:1", &["/bin/sh", "run.sh"]);
    missing.log_configuration = Some(awslogs("/does/not/exist", "app"));
    let mut created = container("app", "app:1", &["/bin/sh", "run.sh"]);
    let mut options = awslogs("/created/by/ecs", "app");
    options
        .options
        .get_or_insert_with(Default::default)
        .insert("awslogs-create-group".into(), "true".into());
    created.log_configuration = Some(options);
    setup(
        &endpoint,
        vec![("nolog", vec![missing]), ("mklog", vec![created])],
    )
    .await;

    let arn = run(&endpoint, "life", "nolog").await;
    let task = endpoint.await_task_status("life", &arn, "STOPPED").await;
    assert_eq!(
        task.stop_code(),
        Some(&TaskStopCode::TaskFailedToStart),
        "{task:?}"
    );
    assert!(
        task.stopped_reason()
            .is_some_and(|reason| reason.starts_with("ResourceInitializationError")),
        "{task:?}"
    );

    let arn = run(&endpoint, "life", "mklog").await;
    let task = endpoint.await_task_status("life", &arn, "STOPPED").await;
    assert_eq!(
        task.stop_code(),
        Some(&TaskStopCode::EssentialContainerExited),
        "{task:?}"
    );
    assert_eq!(container_named(&task, "app").exit_code(), Some(0));
    let stream = format!("app/app/{}", task_id(&arn));
    let messages = poll("the created group's events", DEADLINE, || async {
        let messages = endpoint.log_messages("/created/by/ecs", &stream).await;
        (!messages.is_empty()).then_some(messages)
    })
    .await;
    assert_eq!(messages, ["hello"]);
    endpoint.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_essential_sidecar_exiting_leaves_the_task_running() {
    let endpoint = Endpoint::start().await;
    endpoint.push("app:1", &[("serve.sh", "exec sleep 300\n")]);
    let app = container("app", "app:1", &["/bin/sh", "serve.sh"]);
    let mut sidecar = container("sidecar", "app:1", &["/bin/sh", "-c", "exit 5"]);
    sidecar.essential = Some(false);
    setup(&endpoint, vec![("pair", vec![app, sidecar])]).await;
    let arn = run(&endpoint, "life", "pair").await;
    let task = poll("the sidecar to stop", DEADLINE, || async {
        let task = endpoint.describe_task("life", &arn).await;
        (container_named(&task, "sidecar").last_status() == Some("STOPPED")).then_some(task)
    })
    .await;
    assert_eq!(container_named(&task, "sidecar").exit_code(), Some(5));
    assert_eq!(task.last_status(), Some("RUNNING"), "{task:?}");
    assert_eq!(task.desired_status(), Some("RUNNING"));
    assert_eq!(container_named(&task, "app").last_status(), Some("RUNNING"));
    assert!(task.stop_code().is_none());

    endpoint
        .ecs
        .stop_task()
        .cluster("life")
        .task(&arn)
        .send()
        .await
        .expect("StopTask");
    let task = endpoint.await_task_status("life", &arn, "STOPPED").await;
    assert_eq!(task.stop_code(), Some(&TaskStopCode::UserInitiated));
    assert_eq!(task.stopped_reason(), Some("Task stopped by user"));
    endpoint.shutdown().await;
}
