//! Amazon ECS: clusters, task definitions, tasks run as local processes, and (in `services`)
//! services and deployments.
//!
//! One [`Ecs`] holds the whole ECS state behind a mutex ([`EcsState`]); operations lock it, act and
//! return without awaiting. Each task has a supervisor (`supervisor.rs`) that runs its containers
//! as processes and reports lifecycle events back through [`lifecycle`]; everything that changes
//! a task bumps a counter others can [`Ecs::subscribe`] to.

mod addresses;
mod arns;
mod client_tokens;
mod clusters;
mod dependencies;
mod health;
pub mod lifecycle;
mod memory;
mod pagination;
pub mod rate_limits;
pub(crate) mod services;
mod supervisor;
mod tags;
mod task_definitions;
mod tasks;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shipmate_local_api::ecs::{Cluster, Failure, Tag, Task, TaskDefinition};
use shipmate_local_protocol::{AwsError, decode_input, encode_output};
use tokio::sync::{Notify, watch};
use tokio_util::task::TaskTracker;

use crate::clock::SharedClock;
use crate::faults::Faults;
use crate::images::ImageStore;
use crate::logs::LogStore;
use crate::{EngineConfig, EngineError, Request};

pub use rate_limits::RateLimits;
use rate_limits::{RateCategory, RateLimiter, Throttled};
pub use services::throttle::DEFAULT_BASE as DEFAULT_SERVICE_THROTTLE_BASE;
pub(crate) use tasks::LaunchRequest;

/// The `stoppedReason` of tasks that were running when the endpoint went away.
pub const RESTARTED_REASON: &str = "Task stopped because shipmate local restarted";
/// The `stoppedReason` of tasks stopped by [`Ecs::shutdown`].
pub const SHUTDOWN_REASON: &str = "Task stopped because shipmate local is shutting down";

/// Everything ECS knows. Persisted as JSON (without the runtime-only parts) when the engine has a
/// state directory.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct EcsState {
    /// By cluster name.
    pub(crate) clusters: BTreeMap<String, Cluster>,
    /// By family; revision `n` is at index `n - 1`.
    pub(crate) task_definitions: BTreeMap<String, Vec<TaskDefinition>>,
    /// By task id (the last part of the task ARN).
    pub(crate) tasks: BTreeMap<String, TaskRecord>,
    /// By service ARN; owned by `services.rs`.
    pub(crate) services: BTreeMap<String, services::ServiceRecord>,
    /// Tags of every taggable resource, by ARN.
    pub(crate) tags: BTreeMap<String, Vec<Tag>>,
    /// RunTask idempotency, by `"<cluster ARN> <clientToken>"`.
    pub(crate) client_tokens: BTreeMap<String, ClientTokenRecord>,
    pub(crate) next_task_seq: u64,
    #[serde(skip)]
    pub(crate) addresses: addresses::AddressPool,
}

/// One task: its `Task` shape as DescribeTasks returns it (minus tags, which live in
/// [`EcsState::tags`]), and its runtime handles.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TaskRecord {
    pub(crate) task: Task,
    /// Creation order, for stable listings.
    pub(crate) seq: u64,
    #[serde(skip)]
    pub(crate) address: Option<Ipv4Addr>,
    /// Wakes the supervisor when someone asks the task to stop.
    #[serde(skip)]
    pub(crate) wake: Option<Arc<Notify>>,
}

impl TaskRecord {
    pub(crate) fn last_status(&self) -> Option<lifecycle::TaskStatus> {
        self.task
            .last_status
            .as_deref()
            .and_then(lifecycle::TaskStatus::parse)
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.last_status() == Some(lifecycle::TaskStatus::Stopped)
    }
}

/// What a RunTask `clientToken` was used for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ClientTokenRecord {
    /// The request without its token, as canonical JSON.
    pub(crate) fingerprint: String,
    pub(crate) task_arns: Vec<String>,
    pub(crate) failures: Vec<Failure>,
    pub(crate) created_at: f64,
}

/// Local Amazon ECS. Cheap to clone; clones share everything.
#[derive(Debug, Clone)]
pub struct Ecs {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<EcsState>,
    changes: watch::Sender<u64>,
    logs: LogStore,
    images: ImageStore,
    clock: SharedClock,
    faults: Faults,
    supervisors: TaskTracker,
    memory: memory::MemoryWatch,
    state_file: Option<PathBuf>,
    save_requested: Arc<Notify>,
    /// One writer of the state file at a time (the background writer and shutdown).
    saving: Mutex<()>,
    shutting_down: AtomicBool,
    /// The service throttle's first wait between launches (`services/throttle.rs`).
    service_throttle_base: Mutex<std::time::Duration>,
    /// ECS-seconds per real second for deployment bake times and hook timeouts.
    deployment_time_scale: Mutex<f64>,
    /// ECS's API rate limits, when enforced (`rate_limits.rs`).
    rate_limiter: Mutex<RateLimiter>,
}

impl Ecs {
    /// Loads the state directory's ECS state (tasks that were running come back STOPPED) and
    /// starts the background memory watcher and state writer.
    pub async fn start(
        config: &EngineConfig,
        logs: LogStore,
        images: ImageStore,
    ) -> Result<Ecs, EngineError> {
        let state_file = config.state_dir.as_ref().map(|dir| dir.join("ecs.json"));
        let mut state = match &state_file {
            Some(path) => load_state(path)?,
            None => EcsState::default(),
        };
        let now = config.clock.now();
        for record in state.tasks.values_mut() {
            if !record.is_stopped() {
                let event = lifecycle::TaskEvent::Abandoned {
                    reason: RESTARTED_REASON.to_owned(),
                };
                if let Err(error) = lifecycle::apply(&mut record.task, &event, now) {
                    tracing::warn!(%error, "cannot mark a task of the previous run stopped");
                }
                for container in record.task.containers.iter_mut().flatten() {
                    container.last_status = Some("STOPPED".into());
                }
            }
        }
        // No task survived, so no service has a running or pending one: DescribeServices must
        // not report the old counts (and a steady state) until the scheduler's first pass.
        for service in state.services.values_mut() {
            service.forget_live_tasks();
        }
        let ecs = Ecs {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                changes: watch::Sender::new(0),
                logs,
                images,
                clock: config.clock.clone(),
                faults: Faults::default(),
                supervisors: TaskTracker::new(),
                memory: memory::MemoryWatch::default(),
                state_file,
                save_requested: Arc::new(Notify::new()),
                saving: Mutex::new(()),
                shutting_down: AtomicBool::new(false),
                service_throttle_base: Mutex::new(config.service_throttle_base),
                deployment_time_scale: Mutex::new(config.deployment_time_scale),
                rate_limiter: Mutex::new(RateLimiter::new(config.rate_limits)),
            }),
        };
        tokio::spawn(ecs.inner.memory.clone().run());
        ecs.start_service_scheduler();
        if ecs.inner.state_file.is_some() {
            let writer = Arc::downgrade(&ecs.inner);
            let requested = ecs.inner.save_requested.clone();
            tokio::spawn(async move {
                loop {
                    requested.notified().await;
                    // Coalesce bursts of changes into one write.
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    let Some(inner) = writer.upgrade() else {
                        return;
                    };
                    let ecs = Ecs { inner };
                    let _ = tokio::task::spawn_blocking(move || ecs.save()).await;
                }
            });
        }
        Ok(ecs)
    }

    /// Runs one ECS operation.
    pub async fn handle(&self, request: Request<'_>) -> Result<Vec<u8>, AwsError> {
        let region = request.region;
        let body = request.body;
        let operation = request.target.operation.as_str();
        // ECS meters a call before looking at it, so a malformed one takes a token too.
        let Some(category) = RateCategory::of(operation) else {
            return Err(not_implemented(operation));
        };
        self.admit(region, category)?;
        match operation {
            "CreateCluster" => call(body, |input| self.create_cluster(region, input)),
            "DescribeClusters" => call(body, |input| self.describe_clusters(region, input)),
            "ListClusters" => call(body, |input| self.list_clusters(input)),
            "DeleteCluster" => call(body, |input| self.delete_cluster(input)),
            "RegisterTaskDefinition" => {
                call(body, |input| self.register_task_definition(region, input))
            }
            "DescribeTaskDefinition" => call(body, |input| self.describe_task_definition(input)),
            "ListTaskDefinitions" => call(body, |input| self.list_task_definitions(input)),
            "ListTaskDefinitionFamilies" => {
                call(body, |input| self.list_task_definition_families(input))
            }
            "DeregisterTaskDefinition" => {
                call(body, |input| self.deregister_task_definition(input))
            }
            "RunTask" => call(body, |input| self.run_task(input)),
            "DescribeTasks" => call(body, |input| self.describe_tasks(input)),
            "ListTasks" => call(body, |input| self.list_tasks(input)),
            "StopTask" => call(body, |input| self.stop_task(input)),
            "TagResource" => call(body, |input| self.tag_resource(input)),
            "UntagResource" => call(body, |input| self.untag_resource(input)),
            "ListTagsForResource" => call(body, |input| self.list_tags_for_resource(input)),
            "CreateService" => call(body, |input| self.create_service(input)),
            "UpdateService" => call(body, |input| self.update_service(input)),
            "DescribeServices" => call(body, |input| self.describe_services(input)),
            "ListServices" => call(body, |input| self.list_services(input)),
            "DeleteService" => call(body, |input| self.delete_service(input)),
            "ListServiceDeployments" => call(body, |input| self.list_service_deployments(input)),
            "DescribeServiceDeployments" => {
                call(body, |input| self.describe_service_deployments(input))
            }
            "DescribeServiceRevisions" => {
                call(body, |input| self.describe_service_revisions(input))
            }
            "StopServiceDeployment" => call(body, |input| self.stop_service_deployment(input)),
            "ContinueServiceDeployment" => {
                call(body, |input| self.continue_service_deployment(input))
            }
            other => Err(not_implemented(other)),
        }
    }

    /// Stops every task's processes (SIGTERM, then SIGKILL after each container's stopTimeout)
    /// and returns once all of them are gone and the state is written.
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let ids: Vec<String> = self.state().tasks.keys().cloned().collect();
        for id in ids {
            self.request_stop(
                &id,
                lifecycle::stop_code::TERMINATION_NOTICE,
                SHUTDOWN_REASON,
            );
        }
        self.inner.supervisors.close();
        self.inner.supervisors.wait().await;
        self.save();
    }

    /// Enforces (or stops enforcing) ECS's API rate limits from now on. A change starts every
    /// bucket full; setting the same limits again changes nothing.
    pub fn set_rate_limits(&self, limits: RateLimits) {
        let mut limiter = self.inner.rate_limiter.lock().expect("rate limiter lock");
        if limiter.limits() != limits {
            *limiter = RateLimiter::new(limits);
        }
    }

    pub fn rate_limits(&self) -> RateLimits {
        self.inner
            .rate_limiter
            .lock()
            .expect("rate limiter lock")
            .limits()
    }

    /// Takes a token of `category` in `region`, if limits are enforced.
    fn admit(&self, region: &str, category: RateCategory) -> Result<(), Throttled> {
        let now = self.now();
        self.inner
            .rate_limiter
            .lock()
            .expect("rate limiter lock")
            .admit(region, category, now)
    }

    /// The fault injection switches of this engine.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// The ECS state. Never hold the guard across an `.await`.
    pub(crate) fn state(&self) -> MutexGuard<'_, EcsState> {
        self.inner.state.lock().expect("ECS state lock")
    }

    /// A receiver that sees a new value whenever any task (or other ECS state) changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Tells subscribers (and the state writer) that something changed.
    pub(crate) fn changed(&self) {
        self.inner.changes.send_modify(|n| *n += 1);
        self.inner.save_requested.notify_one();
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    fn save(&self) {
        let Some(path) = &self.inner.state_file else {
            return;
        };
        let _saving = self.inner.saving.lock().expect("state writer lock");
        let json = serde_json::to_vec(&*self.state()).expect("ECS state serializes");
        let temporary = path.with_extension("json.tmp");
        let written =
            std::fs::write(&temporary, json).and_then(|()| std::fs::rename(&temporary, path));
        if let Err(error) = written {
            tracing::error!(path = %path.display(), %error, "cannot write the ECS state");
        }
    }
}

fn load_state(path: &std::path::Path) -> Result<EcsState, EngineError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| EngineError::CorruptState {
            path: path.to_owned(),
            source,
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|source| EngineError::StateDir {
                    path: dir.to_owned(),
                    source,
                })?;
            }
            Ok(EcsState::default())
        }
        Err(source) => Err(EngineError::StateDir {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Decodes the input, runs the operation, encodes the output.
fn call<I: DeserializeOwned, O: Serialize>(
    body: &[u8],
    operation: impl FnOnce(I) -> Result<O, AwsError>,
) -> Result<Vec<u8>, AwsError> {
    let input = decode_input(body)?;
    operation(input).map(|output| encode_output(&output))
}

fn not_implemented(operation: &str) -> AwsError {
    AwsError::unknown_operation(format!(
        "shipmate local does not implement ECS operation {operation}"
    ))
}

/// Cluster and service names: 1-255 letters, digits, hyphens and underscores.
fn check_name(what: &str, name: &str) -> Result<(), AwsError> {
    let valid = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(invalid_parameter(format!(
            "{what} name must be 1-255 characters: letters, numbers, hyphens and underscores."
        )))
    }
}

fn invalid_parameter(message: impl Into<String>) -> AwsError {
    AwsError::client("InvalidParameterException", message)
}

fn client_exception(message: impl Into<String>) -> AwsError {
    AwsError::client("ClientException", message)
}

fn cluster_not_found() -> AwsError {
    AwsError::client("ClusterNotFoundException", "Cluster not found.")
}
