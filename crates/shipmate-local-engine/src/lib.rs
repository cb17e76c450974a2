//! The engine behind `shipmate local`: ECS and CloudWatch Logs state and behaviour, with task
//! containers run as local processes. It speaks in request/response types
//! ([`shipmate_local_api`]) and AWS errors ([`shipmate_local_protocol::AwsError`]); it knows
//! nothing of HTTP, which is the server crate's job.
//!
//! Layout: `ecs/` (clusters, task definitions, tasks and their lifecycle, the process supervisor,
//! services and deployments), `logs` (the CloudWatch Logs store), `images` (pushed image
//! snapshots), `clock` (injectable time), `faults` (engine-level fault injection).

pub mod clock;
pub mod ecs;
pub mod faults;
pub mod images;
pub mod logs;

use shipmate_local_protocol::{AwsError, Service, Target};

/// The account every ARN of the local endpoint carries.
pub const ACCOUNT_ID: &str = "000000000000";
/// The region used when a request does not say (the signing scope normally does).
pub const DEFAULT_REGION: &str = "us-east-1";

/// Where the engine keeps its state and how it tells time.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `None`: in memory only. `Some(dir)`: clusters, task definitions, services, images and logs
    /// are written under `dir` and read back on start.
    pub state_dir: Option<std::path::PathBuf>,
    pub clock: clock::SharedClock,
    /// The service throttle's first wait between launches of a service whose tasks keep
    /// failing to start (doubling up to 27 minutes); tests make it short.
    pub service_throttle_base: std::time::Duration,
    /// ECS's API rate limits; off unless asked for.
    pub rate_limits: ecs::RateLimits,
    /// ECS-seconds per real second for deployment bake times, step bake times and lifecycle
    /// hook timeouts (1.0: ECS's pace; 60.0: a minute passes in a second).
    pub deployment_time_scale: f64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            state_dir: None,
            clock: std::sync::Arc::new(clock::SystemClock),
            service_throttle_base: ecs::DEFAULT_SERVICE_THROTTLE_BASE,
            rate_limits: ecs::RateLimits::OFF,
            deployment_time_scale: 1.0,
        }
    }
}

/// One request, as the server hands it to the engine.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub target: &'a Target,
    /// Region from the SigV4 credential scope, or [`DEFAULT_REGION`].
    pub region: &'a str,
    pub body: &'a [u8],
}

/// The whole local ECS + Logs.
#[derive(Debug, Clone)]
pub struct Engine {
    pub ecs: ecs::Ecs,
    pub logs: logs::LogStore,
    pub images: images::ImageStore,
}

impl Engine {
    pub async fn start(config: EngineConfig) -> Result<Engine, EngineError> {
        let logs = logs::LogStore::open(config.state_dir.as_deref(), config.clock.clone())?;
        let images = images::ImageStore::open(config.state_dir.as_deref())?;
        let ecs = ecs::Ecs::start(&config, logs.clone(), images.clone()).await?;
        Ok(Engine { ecs, logs, images })
    }

    /// Runs one operation: decodes the body, acts, encodes the response body.
    pub async fn handle(&self, request: Request<'_>) -> Result<Vec<u8>, AwsError> {
        match request.target.service {
            Service::Ecs => self.ecs.handle(request).await,
            Service::Logs => self.logs.handle(request).await,
        }
    }

    /// Stops every process the engine started (SIGTERM, then SIGKILL after each task's
    /// stopTimeout) and writes state out. Returns when all of them are gone.
    pub async fn shutdown(&self) {
        self.ecs.shutdown().await;
        self.logs.flush();
    }
}

/// Failures of the engine itself (not of an AWS request).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot use state directory `{path}`")]
    StateDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state file `{path}` is corrupt")]
    CorruptState {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
}
