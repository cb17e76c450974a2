//! `shipmate local serve` and `shipmate local push`: the local ECS + CloudWatch Logs endpoint and
//! the way images get into it.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use shipmate_local_server::{DEFAULT_PORT, RateLimits, ServerConfig, ServerError};

use crate::signals::wait_for_signal;
use crate::{ExitStatus, Printer};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum LocalCommand {
    /// Serve ECS and CloudWatch Logs on one local port, running tasks as local processes.
    Serve(ServeArgs),
    /// Snapshot a directory into the endpoint's image store under an image name.
    Push(PushArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on. Loopback unless you say otherwise; `127.0.0.1:0` picks a free port.
    #[arg(long, value_name = "ADDR", default_value_t = SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)))]
    listen: SocketAddr,
    /// Keep clusters, task definitions, services, logs and images here across restarts
    /// (default: in memory only).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Enforce ECS's documented API rate limits: a call beyond its category's token bucket gets
    /// ThrottlingException, as on AWS (default: no limits).
    #[arg(long)]
    rate_limits: bool,
    /// Run deployment minutes faster: bake times, linear and canary step bakes and lifecycle
    /// hook timeouts pass SCALE times as fast (60: a minute a second), to rehearse blue/green
    /// releases without waiting (default 1: ECS's pace; docs/local-endpoint-deployments.md).
    #[arg(long, value_name = "SCALE", default_value_t = 1.0, value_parser = positive_scale)]
    deployment_time_scale: f64,
}

fn positive_scale(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(scale) if scale.is_finite() && scale > 0.0 => Ok(scale),
        _ => Err(format!("expected a number above 0, found `{text}`")),
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct PushArgs {
    /// The directory to snapshot (the task's working directory when it runs).
    dir: PathBuf,
    /// The image name tasks will use, e.g. `web:v2` or an ECR URI.
    #[arg(long, value_name = "NAME:TAG")]
    image: String,
    /// The endpoint to push to [default: $AWS_ENDPOINT_URL_ECS, then $AWS_ENDPOINT_URL].
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
}

pub(crate) async fn local(command: LocalCommand, printer: &Printer) -> ExitStatus {
    match command {
        LocalCommand::Serve(args) => serve(args, printer).await,
        LocalCommand::Push(args) => push(args, printer).await,
    }
}

impl ServeArgs {
    fn server_config(&self) -> ServerConfig {
        ServerConfig {
            listen: self.listen,
            state_dir: self.state_dir.clone(),
            rate_limits: if self.rate_limits {
                RateLimits::ECS
            } else {
                RateLimits::OFF
            },
            deployment_time_scale: self.deployment_time_scale,
        }
    }
}

async fn serve(args: ServeArgs, printer: &Printer) -> ExitStatus {
    let config = args.server_config();
    let server = match shipmate_local_server::start(config).await {
        Ok(server) => server,
        Err(error) => {
            let is_bind = matches!(error, ServerError::Bind { .. });
            printer.error(&anyhow::Error::new(error));
            if is_bind {
                printer.hint(
                    "another `shipmate local serve` may already be running there; \
                     `--listen 127.0.0.1:0` picks a free port",
                );
            }
            return ExitStatus::Failure;
        }
    };
    let endpoint = server.endpoint_url();
    printer.data(&format!("listening on {endpoint}"));
    printer.info(&match &args.state_dir {
        Some(dir) => format!("state in {}", dir.display()),
        None => "state in memory (pass --state-dir to keep it)".to_owned(),
    });
    if args.rate_limits {
        printer.info("ECS API rate limits enforced: calls beyond them get ThrottlingException");
    }
    printer.info(&format!(
        "point clients at it with AWS_ENDPOINT_URL={endpoint}; SIGINT or SIGTERM stops it and every task it started"
    ));
    if !args.listen.ip().is_loopback() {
        printer.info(&format!(
            "warning: listening on {}, reachable from other machines; the endpoint has no authentication and runs whatever tasks it is given",
            args.listen.ip()
        ));
    }
    let signal = wait_for_signal().await;
    printer.info(&format!(
        "{signal} received: stopping every task and shutting down (again to exit at once)"
    ));
    let impatient = printer.clone();
    tokio::spawn(async move {
        let signal = wait_for_signal().await;
        impatient.info(&format!(
            "{signal} received again: exiting without waiting for tasks to stop"
        ));
        std::process::exit(130);
    });
    server.shutdown().await;
    ExitStatus::Success
}

async fn push(args: PushArgs, printer: &Printer) -> ExitStatus {
    let Some(endpoint) =
        resolve_endpoint(args.endpoint.as_deref(), |name| std::env::var(name).ok())
    else {
        printer.error(&anyhow::anyhow!("no endpoint to push `{}` to", args.image));
        printer.hint(&format!(
            "pass --endpoint http://127.0.0.1:{DEFAULT_PORT} or set AWS_ENDPOINT_URL to a running `shipmate local serve`"
        ));
        return ExitStatus::Usage;
    };
    let pushed = shipmate_local_server::client::push_dir(&endpoint, &args.image, &args.dir)
        .await
        .with_context(|| format!("cannot push `{}` as `{}`", args.dir.display(), args.image));
    match pushed {
        Ok(pushed) => {
            printer.data(&format!("{} {}", pushed.image, pushed.digest));
            ExitStatus::Success
        }
        Err(error) => {
            printer.error(&error);
            ExitStatus::Failure
        }
    }
}

/// `--endpoint`, else `AWS_ENDPOINT_URL_ECS`, else `AWS_ENDPOINT_URL` (empty values skipped),
/// the same order the AWS SDKs use for ECS.
fn resolve_endpoint(flag: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Option<String> {
    flag.map(str::to_owned)
        .or_else(|| env("AWS_ENDPOINT_URL_ECS"))
        .filter(|value| !value.trim().is_empty())
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .filter(|value| !value.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `shipmate local serve ARGS…` as clap parses it.
    fn serve_args(args: &[&str]) -> ServeArgs {
        #[derive(Debug, clap::Parser)]
        struct Serve {
            #[command(flatten)]
            args: ServeArgs,
        }
        let argv = std::iter::once("serve").chain(args.iter().copied());
        <Serve as clap::Parser>::try_parse_from(argv)
            .expect("valid serve arguments")
            .args
    }

    #[test]
    fn rate_limits_are_off_unless_asked_for() {
        let config = serve_args(&["--listen", "127.0.0.1:0"]).server_config();
        assert_eq!(config.rate_limits, RateLimits::OFF);
        assert_eq!(config.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(config.state_dir, None);
        let config = serve_args(&["--rate-limits", "--state-dir", "state"]).server_config();
        assert_eq!(config.rate_limits, RateLimits::ECS);
        assert_eq!(config.state_dir, Some(PathBuf::from("state")));
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn the_endpoint_comes_from_the_flag_then_the_ecs_variable_then_the_global_one() {
        let both = [
            ("AWS_ENDPOINT_URL_ECS", "http://ecs:1"),
            ("AWS_ENDPOINT_URL", "http://all:2"),
        ];
        assert_eq!(
            resolve_endpoint(Some("http://flag:3"), env(&both)).as_deref(),
            Some("http://flag:3")
        );
        assert_eq!(
            resolve_endpoint(None, env(&both)).as_deref(),
            Some("http://ecs:1")
        );
        assert_eq!(
            resolve_endpoint(None, env(&[("AWS_ENDPOINT_URL", "http://all:2")])).as_deref(),
            Some("http://all:2")
        );
        assert_eq!(
            resolve_endpoint(
                None,
                env(&[
                    ("AWS_ENDPOINT_URL_ECS", ""),
                    ("AWS_ENDPOINT_URL", "http://all:2")
                ])
            )
            .as_deref(),
            Some("http://all:2")
        );
        assert_eq!(resolve_endpoint(None, env(&[])), None);
    }
}
