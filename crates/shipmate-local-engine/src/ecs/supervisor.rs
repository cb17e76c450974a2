//! The process side of a task: pulls (resolves) its images, checks its log configuration,
//! starts each container as a process in its own process group, forwards output to CloudWatch
//! Logs, watches exits, memory and health, and stops the processes (SIGTERM, then SIGKILL after
//! the container's stopTimeout). It decides when lifecycle events happen; what they do to the
//! task is `lifecycle.rs`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use shipmate_local_api::ecs::{HealthCheck, Task};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

use super::Ecs;
use super::dependencies::{Dependency, Progress, Readiness, readiness};
use super::health::{self, Health, Probe};
use super::lifecycle::{TaskEvent, TaskStatus, stop_code};
use super::memory::{Watched, WatchedContainer};
use crate::logs::LogStore;

/// The container `reason` and task `stoppedReason` of an out-of-memory kill.
pub(crate) const OUT_OF_MEMORY_REASON: &str =
    "OutOfMemoryError: Container killed due to memory usage";
/// The `stoppedReason` when an essential container exits.
pub(crate) const ESSENTIAL_EXITED_REASON: &str = "Essential container in task exited";
/// The `stoppedReason` when an essential container turns UNHEALTHY.
pub(crate) const UNHEALTHY_REASON: &str = "Task failed container health checks";
/// `PATH` for containers when neither the task nor the endpoint has one (Docker's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How long to wait for output still buffered in pipes after a container's processes are gone.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// Longest awslogs event from one line; Docker's log drivers cut lines at 16 KiB.
const MAX_LINE: usize = 16 * 1024;

/// What a task's supervisor carries out, decided at launch.
#[derive(Debug, Clone)]
pub(crate) struct TaskPlan {
    pub(crate) task_id: String,
    pub(crate) task_arn: String,
    pub(crate) region: String,
    pub(crate) address: Ipv4Addr,
    pub(crate) task_memory_mib: Option<u64>,
    /// Started by the service scheduler (group `service:<name>`), which replaces the task itself
    /// when it turns UNHEALTHY.
    pub(crate) in_service: bool,
    pub(crate) containers: Vec<ContainerPlan>,
}

/// One container: its command line, environment and limits after overrides.
#[derive(Debug, Clone)]
pub(crate) struct ContainerPlan {
    pub(crate) name: String,
    pub(crate) image: String,
    /// entryPoint followed by command.
    pub(crate) argv: Vec<String>,
    /// Task definition environment with the overrides applied.
    pub(crate) environment: BTreeMap<String, String>,
    pub(crate) working_directory: Option<String>,
    pub(crate) essential: bool,
    pub(crate) stop_timeout: Duration,
    pub(crate) memory_limit_mib: Option<u64>,
    pub(crate) health_check: Option<HealthCheck>,
    pub(crate) awslogs: Option<AwsLogs>,
    /// `dependsOn`, as indexes into the task's containers.
    pub(crate) depends_on: Vec<Dependency>,
}

/// Where the awslogs driver sends a container's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AwsLogs {
    pub(crate) group: String,
    pub(crate) stream: String,
    pub(crate) create_group: bool,
}

/// What happens to a running container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContainerEvent {
    /// The main process exited and its output is fully forwarded.
    Exited { index: usize, exit_code: i32 },
    /// The memory watch is about to SIGKILL the container.
    OutOfMemory { index: usize },
    /// A container's health check made it HEALTHY.
    Healthy { index: usize },
    /// A container's health check made it UNHEALTHY.
    Unhealthy { index: usize },
}

/// The environment of a container process: a small base from the endpoint (`PATH`, `HOME`,
/// `LANG`), the region, the task's environment, then the shipmate conventions, which win.
pub(crate) fn container_environment(
    endpoint: impl Fn(&str) -> Option<String>,
    plan: &TaskPlan,
    container: &ContainerPlan,
) -> BTreeMap<String, String> {
    let mut environment = BTreeMap::new();
    environment.insert(
        "PATH".to_owned(),
        endpoint("PATH").unwrap_or_else(|| DEFAULT_PATH.to_owned()),
    );
    for key in ["HOME", "LANG"] {
        if let Some(value) = endpoint(key) {
            environment.insert(key.to_owned(), value);
        }
    }
    environment.insert("AWS_REGION".to_owned(), plan.region.clone());
    environment.insert("AWS_DEFAULT_REGION".to_owned(), plan.region.clone());
    environment.extend(container.environment.clone());
    environment.insert("SHIPMATE_TASK_IP".to_owned(), plan.address.to_string());
    environment.insert("ECS_TASK_ARN".to_owned(), plan.task_arn.clone());
    environment.insert("ECS_CONTAINER_NAME".to_owned(), container.name.clone());
    environment
}

/// Makes the kernel SIGKILL the child if the endpoint dies, so no task outlives it.
///
/// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits; children are spawned
/// from runtime worker threads, which live as long as the endpoint.
#[allow(unsafe_code)]
pub(crate) fn die_with_parent(command: &mut tokio::process::Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which
    // is async-signal-safe; it allocates nothing and touches no state shared with the parent.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
}

fn pull_error(image: &str) -> String {
    format!(
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref {image}: not found"
    )
}

const MISSING_LOG_GROUP: &str = "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist. : exit status 1";

fn start_error(program: &str, error: &std::io::Error) -> String {
    let detail = match error.kind() {
        std::io::ErrorKind::NotFound if program.contains('/') => {
            format!("exec: \"{program}\": stat {program}: no such file or directory")
        }
        std::io::ErrorKind::NotFound => {
            format!("exec: \"{program}\": executable file not found in $PATH")
        }
        std::io::ErrorKind::PermissionDenied => format!("exec: \"{program}\": permission denied"),
        _ => format!("exec: \"{program}\": {error}"),
    };
    format!(
        "CannotStartContainerError: ResourceInitializationError: failed to create new container runtime task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: {detail}: unknown"
    )
}

/// A started container process.
struct Running {
    process_group: i32,
    exited: Arc<AtomicBool>,
    stop_timeout: Duration,
}

/// Runs one task from PROVISIONING to STOPPED.
pub(crate) async fn supervise(ecs: Ecs, plan: TaskPlan, wake: Arc<Notify>) {
    let supervisor = Supervisor { ecs, plan, wake };
    supervisor.run().await;
    supervisor.release();
}

struct Supervisor {
    ecs: Ecs,
    plan: TaskPlan,
    wake: Arc<Notify>,
}

impl Supervisor {
    fn id(&self) -> &str {
        &self.plan.task_id
    }

    fn event(&self, event: TaskEvent) {
        self.ecs.task_event(self.id(), event);
    }

    fn stop_wanted(&self) -> bool {
        self.ecs.stop_wanted(self.id())
    }

    /// Keeps the task in `status` for the injected delay (cut short by a stop request); true if
    /// the task should stop.
    async fn hold(&self, status: TaskStatus) -> bool {
        if let Some(delay) = self.ecs.faults().delay(status) {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.wake.notified() => {}
            }
        }
        self.stop_wanted()
    }

    async fn run(&self) {
        if self.hold(TaskStatus::Provisioning).await {
            return self.stop_before_start().await;
        }
        self.event(TaskEvent::Provisioned);
        self.ecs
            .update_task(self.id(), |task| set_attachment_status(task, "ATTACHED"));
        if self.hold(TaskStatus::Pending).await {
            return self.stop_before_start().await;
        }
        self.event(TaskEvent::PullStarted);
        let mut snapshots = Vec::new();
        for (index, container) in self.plan.containers.iter().enumerate() {
            let resolved = if self.ecs.faults().pull_fails(&container.image) {
                None
            } else {
                self.ecs.inner.images.resolve(&container.image)
            };
            match resolved {
                Some(snapshot) => snapshots.push(snapshot),
                None => {
                    return self
                        .fail_to_start(index, pull_error(&container.image))
                        .await;
                }
            }
        }
        self.event(TaskEvent::PullStopped);
        let logs = &self.ecs.inner.logs;
        for (index, container) in self.plan.containers.iter().enumerate() {
            if let Some(awslogs) = &container.awslogs {
                if !logs.group_exists(&awslogs.group) {
                    if !awslogs.create_group {
                        return self
                            .fail_to_start(index, MISSING_LOG_GROUP.to_owned())
                            .await;
                    }
                    logs.ensure_group(&awslogs.group);
                }
                logs.open_driver(&awslogs.group, &awslogs.stream);
            }
        }
        self.event(TaskEvent::Activating);
        if self.hold(TaskStatus::Activating).await {
            return self.stop_before_start().await;
        }
        self.run_containers(&snapshots).await;
    }

    /// Starts the containers (each once its `dependsOn` conditions hold), reports the task
    /// RUNNING once every essential container runs, and supervises them until all are gone.
    async fn run_containers(&self, snapshots: &[PathBuf]) {
        let count = self.plan.containers.len();
        let (events, mut received) = unbounded_channel();
        let mut launched: Vec<Option<Running>> = (0..count).map(|_| None).collect();
        let mut progress = vec![Progress::default(); count];
        let mut health_checks: Vec<(usize, JoinHandle<()>)> = Vec::new();
        self.ecs.inner.memory.watch(
            self.id(),
            Watched {
                containers: Vec::new(),
                task_limit_mib: self.plan.task_memory_mib,
                events: events.clone(),
            },
        );
        let mut alive = 0;
        let mut exits_seen = 0;
        let mut out_of_memory = vec![false; count];
        let mut kill_timers: Vec<JoinHandle<()>> = Vec::new();
        let mut stopping = false;
        let mut task_started = false;
        loop {
            if !stopping && self.stop_wanted() {
                stopping = true;
                for (state, started) in progress.iter_mut().zip(&launched) {
                    state.abandoned |= started.is_none();
                }
                self.event(TaskEvent::Deactivating);
                self.hold(TaskStatus::Deactivating).await;
                self.event(TaskEvent::Stopping);
                let live = launched
                    .iter()
                    .flatten()
                    .filter(|r| !r.exited.load(Ordering::SeqCst));
                for started in live {
                    let group = Pid::from_raw(started.process_group);
                    let _ = killpg(group, Signal::SIGTERM);
                    let (exited, timeout) = (started.exited.clone(), started.stop_timeout);
                    kill_timers.push(tokio::spawn(async move {
                        tokio::time::sleep(timeout).await;
                        if !exited.load(Ordering::SeqCst) {
                            let _ = killpg(group, Signal::SIGKILL);
                        }
                    }));
                }
            }
            if !stopping {
                let started = self.start_ready(
                    snapshots,
                    &mut launched,
                    &mut progress,
                    &events,
                    &mut health_checks,
                    alive == 0,
                );
                match started {
                    Ok(newly) => alive += newly,
                    Err((index, reason)) => {
                        // The task cannot start: whatever runs goes, then the task fails.
                        for started in launched.iter().flatten() {
                            if !started.exited.load(Ordering::SeqCst) {
                                let _ =
                                    killpg(Pid::from_raw(started.process_group), Signal::SIGKILL);
                            }
                        }
                        // Including any started in this very call (not yet in `alive`).
                        let mut remaining = launched.iter().flatten().count() - exits_seen;
                        while remaining > 0 {
                            if let Some(ContainerEvent::Exited { .. }) = received.recv().await {
                                remaining -= 1;
                            }
                        }
                        for (_, handle) in health_checks {
                            handle.abort();
                        }
                        self.ecs.inner.memory.unwatch(self.id());
                        return self.fail_to_start(index, reason).await;
                    }
                }
                let essentials_run = self
                    .plan
                    .containers
                    .iter()
                    .zip(&progress)
                    .all(|(plan, state)| !plan.essential || state.started);
                if !task_started && essentials_run {
                    task_started = true;
                    self.event(TaskEvent::Started);
                }
            }
            if alive == 0 {
                break;
            }
            tokio::select! {
                event = received.recv() => match event {
                    Some(ContainerEvent::OutOfMemory { index }) => out_of_memory[index] = true,
                    Some(ContainerEvent::Exited { index, exit_code }) => {
                        alive -= 1;
                        exits_seen += 1;
                        progress[index].exit_code = Some(exit_code);
                        health_checks.retain(|(i, handle)| {
                            if *i == index { handle.abort(); }
                            *i != index
                        });
                        self.ecs.inner.memory.forget_container(self.id(), index);
                        let oom = out_of_memory[index];
                        self.ecs.update_task(self.id(), |task| {
                            if let Some(container) = task.containers.as_mut().and_then(|c| c.get_mut(index)) {
                                container.last_status = Some("STOPPED".into());
                                container.exit_code = Some(exit_code);
                                if oom {
                                    container.reason = Some(OUT_OF_MEMORY_REASON.into());
                                }
                            }
                        });
                        if self.plan.containers[index].essential {
                            let reason = if oom { OUT_OF_MEMORY_REASON } else { ESSENTIAL_EXITED_REASON };
                            self.ecs.request_stop(self.id(), stop_code::ESSENTIAL_CONTAINER_EXITED, reason);
                        }
                    }
                    Some(ContainerEvent::Healthy { index }) => {
                        progress[index].healthy = true;
                        progress[index].unhealthy = false;
                    }
                    Some(ContainerEvent::Unhealthy { index }) => {
                        progress[index].healthy = false;
                        progress[index].unhealthy = true;
                        if self.plan.containers[index].essential && !self.plan.in_service {
                            self.ecs.request_stop(self.id(), stop_code::SERVICE_SCHEDULER_INITIATED, UNHEALTHY_REASON);
                        }
                    }
                    None => break,
                },
                () = self.wake.notified() => {}
            }
        }
        for (_, handle) in health_checks {
            handle.abort();
        }
        for timer in kill_timers {
            timer.abort();
        }
        self.ecs.inner.memory.unwatch(self.id());
        self.ecs.update_task(self.id(), |task| {
            // Containers that never started (the task stopped first) are STOPPED too.
            for container in task.containers.iter_mut().flatten() {
                container.last_status = Some("STOPPED".into());
            }
        });
        self.event(TaskEvent::ExecutionStopped);
        self.hold(TaskStatus::Deprovisioning).await;
        self.finish();
    }

    /// Starts every container whose dependencies hold; returns how many started, or the
    /// container (and reason) that makes the task fail to start. `idle` says nothing runs, so
    /// a container still waiting would wait forever.
    fn start_ready(
        &self,
        snapshots: &[PathBuf],
        launched: &mut [Option<Running>],
        progress: &mut [Progress],
        events: &UnboundedSender<ContainerEvent>,
        health_checks: &mut Vec<(usize, JoinHandle<()>)>,
        idle: bool,
    ) -> Result<usize, (usize, String)> {
        let names: Vec<String> = self
            .plan
            .containers
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let mut newly = 0;
        loop {
            let mut changed = false;
            for (index, container) in self.plan.containers.iter().enumerate() {
                if launched[index].is_some() || progress[index].abandoned {
                    continue;
                }
                let never = match readiness(&container.depends_on, progress, &names) {
                    Readiness::Waiting => continue,
                    Readiness::Never(why) => format!("CannotStartContainerError: {why}"),
                    Readiness::Ready => {
                        let started =
                            self.start_container(index, &snapshots[index], events, health_checks)?;
                        launched[index] = Some(started);
                        progress[index].started = true;
                        newly += 1;
                        changed = true;
                        continue;
                    }
                };
                if container.essential {
                    return Err((index, never));
                }
                progress[index].abandoned = true;
                changed = true;
                self.ecs.update_task(self.id(), |task| {
                    if let Some(c) = task.containers.as_mut().and_then(|c| c.get_mut(index)) {
                        c.last_status = Some("STOPPED".into());
                        c.reason = Some(never.clone());
                    }
                });
            }
            if !changed {
                break;
            }
        }
        if idle && newly == 0 {
            // Nothing runs, so nothing a waiting container depends on can change any more.
            let waiting = (0..launched.len()).find(|&i| {
                launched[i].is_none() && !progress[i].abandoned && self.plan.containers[i].essential
            });
            if let Some(index) = waiting {
                return Err((
                    index,
                    "CannotStartContainerError: its dependencies can not be met: no container is running".to_owned(),
                ));
            }
        }
        Ok(newly)
    }

    /// Starts one container process with its health check and memory watch.
    fn start_container(
        &self,
        index: usize,
        snapshot: &Path,
        events: &UnboundedSender<ContainerEvent>,
        health_checks: &mut Vec<(usize, JoinHandle<()>)>,
    ) -> Result<Running, (usize, String)> {
        let container = &self.plan.containers[index];
        let directory = match &container.working_directory {
            Some(dir) => snapshot.join(dir.trim_start_matches('/')),
            None => snapshot.to_owned(),
        };
        // Docker creates a missing working directory.
        let _ = std::fs::create_dir_all(&directory);
        let environment =
            container_environment(|key| std::env::var(key).ok(), &self.plan, container);
        let started = self
            .spawn_container(index, container, &directory, &environment, events)
            .map_err(|reason| (index, reason))?;
        self.ecs.inner.memory.add_container(
            self.id(),
            WatchedContainer {
                index,
                process_group: started.process_group,
                limit_mib: container.memory_limit_mib,
            },
        );
        if let Some(check) = &container.health_check {
            let probe = Probe {
                task_id: self.plan.task_id.clone(),
                index,
                essentials: self.plan.containers.iter().map(|c| c.essential).collect(),
                settings: health::Settings::from_check(check),
                environment,
                directory,
            };
            health_checks.push((
                index,
                health::spawn(self.ecs.clone(), probe, events.clone()),
            ));
        }
        let process_group = started.process_group;
        self.ecs.update_task(self.id(), |task| {
            if let Some(c) = task.containers.as_mut().and_then(|c| c.get_mut(index)) {
                c.last_status = Some("RUNNING".into());
                c.runtime_id = Some(process_group.to_string());
            }
        });
        Ok(started)
    }

    fn spawn_container(
        &self,
        index: usize,
        container: &ContainerPlan,
        directory: &Path,
        environment: &BTreeMap<String, String>,
        events: &UnboundedSender<ContainerEvent>,
    ) -> Result<Running, String> {
        let Some((program, args)) = container.argv.split_first() else {
            return Err(
                "CannotStartContainerError: Error response from daemon: No command specified"
                    .to_owned(),
            );
        };
        let output = || {
            if container.awslogs.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            }
        };
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .env_clear()
            .envs(environment)
            .current_dir(directory)
            .stdin(Stdio::null())
            .stdout(output())
            .stderr(output())
            .process_group(0);
        die_with_parent(&mut command);
        let mut child = command
            .spawn()
            .map_err(|error| start_error(program, &error))?;
        let process_group = child.id().map_or(0, |pid| pid as i32);
        let mut forwarders = Vec::new();
        if let Some(awslogs) = &container.awslogs {
            let logs = &self.ecs.inner.logs;
            if let Some(stdout) = child.stdout.take() {
                forwarders.push(tokio::spawn(forward_lines(
                    stdout,
                    self.ecs.clone(),
                    logs.clone(),
                    awslogs.clone(),
                )));
            }
            if let Some(stderr) = child.stderr.take() {
                forwarders.push(tokio::spawn(forward_lines(
                    stderr,
                    self.ecs.clone(),
                    logs.clone(),
                    awslogs.clone(),
                )));
            }
        }
        let exited = Arc::new(AtomicBool::new(false));
        let events = events.clone();
        let exited_flag = exited.clone();
        let driver = container
            .awslogs
            .clone()
            .map(|awslogs| (self.ecs.inner.logs.clone(), awslogs));
        tokio::spawn(async move {
            let exit_code = match child.wait().await {
                Ok(status) => exit_code(status),
                Err(_) => 137,
            };
            exited_flag.store(true, Ordering::SeqCst);
            // As when a container's init dies: whatever it left behind goes too, which also
            // closes the pipes the forwarders read.
            let _ = killpg(Pid::from_raw(process_group), Signal::SIGKILL);
            for forwarder in forwarders {
                let _ = tokio::time::timeout(DRAIN_LIMIT, forwarder).await;
            }
            // The driver sends what it still holds when its container stops.
            if let Some((logs, awslogs)) = driver {
                logs.close_driver(&awslogs.group, &awslogs.stream);
            }
            let _ = events.send(ContainerEvent::Exited { index, exit_code });
        });
        Ok(Running {
            process_group,
            exited,
            stop_timeout: container.stop_timeout,
        })
    }

    /// A stop request arrived before any container started.
    async fn stop_before_start(&self) {
        self.event(TaskEvent::Deactivating);
        self.hold(TaskStatus::Deactivating).await;
        self.event(TaskEvent::Stopping);
        self.ecs.update_task(self.id(), |task| {
            for container in task.containers.iter_mut().flatten() {
                container.last_status = Some("STOPPED".into());
            }
        });
        self.event(TaskEvent::ExecutionStopped);
        self.hold(TaskStatus::Deprovisioning).await;
        self.finish();
    }

    async fn fail_to_start(&self, index: usize, reason: String) {
        self.ecs.update_task(self.id(), |task| {
            for (i, container) in task.containers.iter_mut().flatten().enumerate() {
                container.last_status = Some("STOPPED".into());
                if i == index {
                    container.reason = Some(reason.clone());
                }
            }
        });
        self.event(TaskEvent::FailedToStart { reason });
        self.hold(TaskStatus::Deprovisioning).await;
        self.finish();
    }

    fn finish(&self) {
        self.ecs
            .update_task(self.id(), |task| set_attachment_status(task, "DELETED"));
        self.event(TaskEvent::Deprovisioned);
    }

    /// Gives back the task's address and drops its wake-up handle.
    fn release(&self) {
        let mut state = self.ecs.state();
        state.addresses.release(self.plan.address);
        if let Some(record) = state.tasks.get_mut(self.id()) {
            record.address = None;
            record.wake = None;
        }
    }
}

fn set_attachment_status(task: &mut Task, status: &str) {
    for attachment in task.attachments.iter_mut().flatten() {
        attachment.status = Some(status.to_owned());
    }
}

/// The exit code ECS reports: the process's, or 128 + the signal that killed it.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(137)
}

/// Forwards every line of a container's stdout or stderr as one awslogs event. Like Docker, a
/// line longer than [`MAX_LINE`] is cut into several events.
async fn forward_lines(output: impl AsyncRead + Unpin, ecs: Ecs, logs: LogStore, awslogs: AwsLogs) {
    let mut reader = BufReader::new(output);
    let mut line: Vec<u8> = Vec::new();
    loop {
        let (consumed, complete) = match reader.fill_buf().await {
            Ok([]) | Err(_) => {
                emit(&ecs, &logs, &awslogs, &mut line);
                return;
            }
            Ok(chunk) => {
                let room = MAX_LINE - line.len();
                match chunk.iter().take(room).position(|b| *b == b'\n') {
                    Some(at) => {
                        line.extend_from_slice(&chunk[..at]);
                        (at + 1, true)
                    }
                    None => {
                        let taken = chunk.len().min(room);
                        line.extend_from_slice(&chunk[..taken]);
                        (taken, line.len() == MAX_LINE)
                    }
                }
            }
        };
        reader.consume(consumed);
        if complete {
            emit(&ecs, &logs, &awslogs, &mut line);
        }
    }
}

/// Hands one line (without its line ending) to the awslogs driver and empties the buffer.
/// CloudWatch Logs has no empty events, so the awslogs driver skips empty lines.
fn emit(ecs: &Ecs, logs: &LogStore, awslogs: &AwsLogs, line: &mut Vec<u8>) {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if !line.is_empty() {
        let message = String::from_utf8_lossy(line).into_owned();
        logs.driver_append(
            &awslogs.group,
            &awslogs.stream,
            message,
            ecs.faults().log_ingestion_delay(),
        );
    }
    line.clear();
}

impl Ecs {
    /// Applies a lifecycle event to a task and tells subscribers.
    pub(crate) fn task_event(&self, id: &str, event: TaskEvent) {
        let now = self.now();
        let changed = {
            let mut state = self.state();
            let Some(record) = state.tasks.get_mut(id) else {
                return;
            };
            match super::lifecycle::apply(&mut record.task, &event, now) {
                Ok(changed) => changed,
                Err(error) => {
                    tracing::error!(%error, "lifecycle bug");
                    false
                }
            }
        };
        if changed {
            self.changed();
        }
    }

    /// Changes a task's shape (containers, attachments) outside the lifecycle table.
    pub(crate) fn update_task(&self, id: &str, change: impl FnOnce(&mut Task)) {
        {
            let mut state = self.state();
            let Some(record) = state.tasks.get_mut(id) else {
                return;
            };
            change(&mut record.task);
            record.task.version += 1;
        }
        self.changed();
    }

    pub(crate) fn stop_wanted(&self, id: &str) -> bool {
        self.state()
            .tasks
            .get(id)
            .is_none_or(|r| r.task.desired_status.as_deref() == Some("STOPPED"))
    }

    /// Records a container's health and recomputes the task's from the essential containers.
    pub(crate) fn set_container_health(
        &self,
        id: &str,
        index: usize,
        health: Health,
        essentials: &[bool],
    ) {
        self.update_task(id, |task| {
            let containers = task.containers.get_or_insert_with(Vec::new);
            if let Some(container) = containers.get_mut(index) {
                container.health_status = Some(health.as_str().to_owned());
            }
            let summary: Vec<(bool, Option<&str>)> = containers
                .iter()
                .zip(essentials)
                .map(|(c, essential)| (*essential, c.health_status.as_deref()))
                .collect();
            task.health_status = Some(health::task_health(&summary).as_str().to_owned());
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(environment: &[(&str, &str)]) -> (TaskPlan, ContainerPlan) {
        let container = ContainerPlan {
            name: "web".into(),
            image: "app:v1".into(),
            argv: vec!["true".into()],
            environment: environment
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            working_directory: None,
            essential: true,
            stop_timeout: Duration::from_secs(30),
            memory_limit_mib: None,
            health_check: None,
            awslogs: None,
            depends_on: Vec::new(),
        };
        let task = TaskPlan {
            task_id: "0123".into(),
            task_arn: "arn:aws:ecs:eu-west-1:000000000000:task/c/0123".into(),
            region: "eu-west-1".into(),
            address: Ipv4Addr::new(127, 0, 1, 7),
            task_memory_mib: None,
            in_service: false,
            containers: vec![container.clone()],
        };
        (task, container)
    }

    fn endpoint(key: &str) -> Option<String> {
        match key {
            "PATH" => Some("/endpoint/bin".into()),
            "HOME" => Some("/home/me".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("leak".into()),
            _ => None,
        }
    }

    #[test]
    fn the_environment_is_a_small_base_the_task_and_the_conventions() {
        let (task, container) = plan(&[("GREETING", "hi"), ("AWS_REGION", "us-west-2")]);
        let environment = container_environment(endpoint, &task, &container);
        let expected: BTreeMap<String, String> = [
            ("PATH", "/endpoint/bin"),
            ("HOME", "/home/me"),
            ("AWS_REGION", "us-west-2"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("GREETING", "hi"),
            ("SHIPMATE_TASK_IP", "127.0.1.7"),
            (
                "ECS_TASK_ARN",
                "arn:aws:ecs:eu-west-1:000000000000:task/c/0123",
            ),
            ("ECS_CONTAINER_NAME", "web"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(environment, expected);
    }

    #[test]
    fn the_task_path_wins_and_conventions_cannot_be_overridden() {
        let (task, container) = plan(&[("PATH", "/app/bin"), ("SHIPMATE_TASK_IP", "1.2.3.4")]);
        let environment = container_environment(|_| None, &task, &container);
        assert_eq!(environment["PATH"], "/app/bin");
        assert_eq!(environment["SHIPMATE_TASK_IP"], "127.0.1.7");
        assert!(!environment.contains_key("HOME"));
        let (task, container) = plan(&[]);
        assert_eq!(
            container_environment(|_| None, &task, &container)["PATH"],
            DEFAULT_PATH
        );
    }

    #[test]
    fn exit_codes_follow_docker() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(15)), 143);
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(9)), 137);
    }

    #[test]
    fn start_errors_name_the_program_as_the_runtime_does() {
        let not_found = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert!(
            start_error("python", &not_found)
                .contains("exec: \"python\": executable file not found in $PATH: unknown")
        );
        assert!(
            start_error("./run.sh", &not_found)
                .contains("exec: \"./run.sh\": stat ./run.sh: no such file or directory")
        );
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let message = start_error("./run.sh", &denied);
        assert!(message.starts_with("CannotStartContainerError: ResourceInitializationError: "));
        assert!(message.contains("exec: \"./run.sh\": permission denied"));
    }
}
