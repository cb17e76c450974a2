//! The HTTP face of `shipmate local`: one port that serves Amazon ECS and CloudWatch Logs over
//! AWS JSON 1.1 (routed by `X-Amz-Target`), plus a control API under `/_shipmate/` for image
//! pushes, fault injection and the request log. Everything AWS-shaped it answers, errors
//! included, is what the official clients expect; the work itself is the engine's.
//!
//! Tests start it in-process on `127.0.0.1:0` and point aws-sdk-rust at
//! [`RunningServer::endpoint_url`]:
//!
//! ```no_run
//! # async fn example() -> Result<(), shipmate_local_server::ServerError> {
//! let server = shipmate_local_server::start(shipmate_local_server::ServerConfig::default()).await?;
//! let endpoint = server.endpoint_url(); // "http://127.0.0.1:PORT"
//! # let _ = endpoint;
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod client;
pub mod faults;
pub mod request_log;
mod service;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use shipmate_local_engine::{Engine, EngineConfig, EngineError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use faults::{FaultService, WireFault, WireFaultKind};
pub use request_log::{RequestLog, RequestRecord};
pub use shipmate_local_engine::ecs::RateLimits;

/// The documented fixed port of `shipmate local serve`.
pub const DEFAULT_PORT: u16 = 4590;

/// How long shutdown waits for in-flight requests before it stops the engine anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often logs and images are written to the state directory while serving.
const FLUSH_INTERVAL: Duration = Duration::from_secs(2);

/// Where to listen, where to keep state, and whether ECS's API rate limits are enforced.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    /// `None`: everything in memory. `Some(dir)`: state survives a restart.
    pub state_dir: Option<PathBuf>,
    /// Off by default; [`RateLimits::ECS`] throttles ECS calls as ECS does. Changed at run time
    /// through `server.engine().ecs.set_rate_limits(..)` or `PUT /_shipmate/settings`.
    pub rate_limits: RateLimits,
    /// ECS-seconds per real second for bake times and lifecycle hook timeouts (1.0: ECS's
    /// pace); also `PUT /_shipmate/settings {"deployment_time_scale": …}`.
    pub deployment_time_scale: f64,
}

impl Default for ServerConfig {
    /// Loopback, a free port, in memory: what tests want.
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            state_dir: None,
            rate_limits: RateLimits::OFF,
            deployment_time_scale: 1.0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the engine")]
    Engine(#[from] EngineError),
}

/// State shared by every connection.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) faults: faults::WireFaults,
    pub(crate) request_log: RequestLog,
}

/// A server accepting connections until [`RunningServer::shutdown`].
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Binds, starts the engine (reading state from `state_dir`) and serves in the background.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.listen,
        source,
    })?;
    let engine = Engine::start(EngineConfig {
        state_dir: config.state_dir,
        rate_limits: config.rate_limits,
        deployment_time_scale: config.deployment_time_scale,
        ..EngineConfig::default()
    })
    .await?;
    let shared = Arc::new(Shared {
        engine,
        faults: faults::WireFaults::default(),
        request_log: RequestLog::default(),
    });
    let stop = CancellationToken::new();
    let task = tokio::spawn(serve(listener, shared.clone(), stop.clone()));
    tracing::info!(%addr, "shipmate local is listening");
    Ok(RunningServer {
        addr,
        shared,
        stop,
        task,
    })
}

impl RunningServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`, what `AWS_ENDPOINT_URL` and `endpoint_url(..)` take.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }

    pub fn request_log(&self) -> &RequestLog {
        &self.shared.request_log
    }

    /// Arms a wire-level fault (the same as `POST /_shipmate/faults`).
    pub fn inject(&self, fault: WireFault) {
        self.shared.faults.add(fault);
    }

    /// The next `count` calls of `operation` get `ThrottlingException`.
    pub fn throttle(&self, operation: &str, count: u32) {
        self.inject(WireFault::new(WireFaultKind::Throttle, operation, count));
    }

    /// The next `count` calls of `operation` get the service's HTTP 500 server fault.
    pub fn fail_with_server_error(&self, operation: &str, count: u32) {
        self.inject(WireFault::new(WireFaultKind::ServerError, operation, count));
    }

    /// The next `count` connections carrying `operation` are closed without a response.
    pub fn drop_connections(&self, operation: &str, count: u32) {
        self.inject(WireFault::new(
            WireFaultKind::DropConnection,
            operation,
            count,
        ));
    }

    /// The next `count` calls of `operation` get HTTP 200 with the body `{}` (every member
    /// missing), without reaching the engine.
    pub fn answer_empty(&self, operation: &str, count: u32) {
        self.inject(WireFault::new(
            WireFaultKind::EmptyResponse,
            operation,
            count,
        ));
    }

    /// Disarms every fault, wire-level and engine-level (the same as `DELETE /_shipmate/faults`).
    /// Engine-level faults (placements, image pulls, lifecycle delays) are armed through
    /// `server.engine().ecs.faults()`.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
        self.shared.engine.ecs.faults().clear();
    }

    /// Stops accepting, lets in-flight requests finish (up to a deadline), stops every task
    /// process through the engine and writes state out.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the server task failed");
        }
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    let connections = TaskTracker::new();
    let flusher = tokio::spawn(flush_periodically(shared.clone(), stop.clone()));
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            let service =
                hyper::service::service_fn(move |request| service::handle(shared.clone(), request));
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish in time; stopping anyway");
    }
    let _ = flusher.await;
    shared.engine.shutdown().await;
    shared.engine.images.remove_temporary();
}

async fn flush_periodically(shared: Arc<Shared>, stop: CancellationToken) {
    let mut interval = tokio::time::interval(FLUSH_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = interval.tick() => {
                let engine = shared.engine.clone();
                // Writing JSON files is blocking I/O.
                let _ = tokio::task::spawn_blocking(move || engine.logs.flush()).await;
            }
        }
    }
}
