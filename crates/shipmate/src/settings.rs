//! Flags and `shipmate.toml` resolved into the requests the driver takes. Flags (and their
//! `SHIPMATE_*` variables) override the file; the file overrides the defaults. Every field is
//! destructured so that a new flag cannot be silently ignored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use shipmate_release::command::split_command;
use shipmate_release::config::{FileConfig, OnCancel, parse_config};
use shipmate_release::duration::parse_duration;
use shipmate_release::ledger::validate_key;
use shipmate_release::release::{DeployRequest, LockSettings, RollbackRequest, RunRequest};

/// Output format of the command's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    /// Progress for people on stderr, nothing on stdout.
    Human,
    /// JSON lines of events and a final report on stdout (progress stays on stderr).
    Json,
}

fn duration_arg(text: &str) -> Result<Duration, String> {
    parse_duration(text)
}

fn on_cancel_arg(text: &str) -> Result<OnCancel, String> {
    OnCancel::parse(text).ok_or_else(|| format!("expected `stop` or `leave`, found `{text}`"))
}

/// Where and how: shared by every release command.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TargetArgs {
    /// The ECS cluster (name or ARN). [file: service.cluster]
    #[arg(long, env = "SHIPMATE_CLUSTER")]
    pub(crate) cluster: Option<String>,
    /// The ECS service. [file: service.service]
    #[arg(long, env = "SHIPMATE_SERVICE")]
    pub(crate) service: Option<String>,
    /// Configuration file (default: ./shipmate.toml when it exists).
    #[arg(long, env = "SHIPMATE_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// `human` progress on stderr, or `json` lines on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human, env = "SHIPMATE_OUTPUT")]
    pub(crate) output: OutputFormat,
    /// Seconds between polls of ECS (e.g. `1s`, `500ms`). [file: deploy.poll_interval; default 1s]
    #[arg(long, value_parser = duration_arg, env = "SHIPMATE_POLL_INTERVAL")]
    pub(crate) poll_interval: Option<Duration>,
    /// Attempts per AWS call; throttling and 5xx answers are retried with backoff and shown.
    #[arg(long, default_value_t = 8, env = "SHIPMATE_MAX_ATTEMPTS")]
    pub(crate) max_attempts: u32,
}

/// The file, if any, read and parsed.
pub(crate) fn load_file(explicit: Option<&Path>) -> anyhow::Result<FileConfig> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => {
            let default = PathBuf::from("shipmate.toml");
            if !default.exists() {
                return Ok(FileConfig::default());
            }
            default
        }
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    let env = |name: &str| std::env::var(name).ok();
    Ok(parse_config(&path.display().to_string(), &text, &env)?)
}

pub(crate) struct Defaults;

impl Defaults {
    pub(crate) const POLL: Duration = Duration::from_secs(1);
    pub(crate) const MIGRATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
    pub(crate) const DEPLOY_TIMEOUT: Duration = Duration::from_secs(30 * 60);
    pub(crate) const LOCK_TIMEOUT: Duration = Duration::from_secs(30 * 60);
    pub(crate) const LOCK_LEASE: Duration = Duration::from_secs(5 * 60);
    pub(crate) const RUN_TIMEOUT: Duration = Duration::from_secs(60 * 60);
    /// The awslogs driver flushes about every 5 s and sends what it holds when the container
    /// stops; 10 s of quiet after STOPPED covers that and CloudWatch's ingestion (docs/release.md).
    pub(crate) const LOG_QUIET_PERIOD: Duration = Duration::from_secs(10);
}

fn lock_key_arg(text: &str) -> Result<String, String> {
    validate_key(text).map(|()| text.to_owned())
}

/// Who runs this release, as the lock's waiters and `shipmate status` show it: the CI job when
/// there is one, else user@host and the process.
pub(crate) fn release_by() -> String {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(run) = env("GITHUB_RUN_ID") {
        let repository = env("GITHUB_REPOSITORY").unwrap_or_default();
        let attempt = env("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".to_owned());
        return format!("github {repository} run {run}/{attempt}");
    }
    if let Some(build) = env("CODEBUILD_BUILD_ID") {
        return format!("codebuild {build}");
    }
    if let Some(job) = env("CI_JOB_ID") {
        return format!("gitlab job {job}");
    }
    let user = env("USER")
        .or_else(|| env("LOGNAME"))
        .unwrap_or_else(|| "someone".to_owned());
    let host = env("HOSTNAME")
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{user}@{host} pid {}", std::process::id())
}

fn required(value: Option<String>, flag: &str, key: &str) -> anyhow::Result<String> {
    match value {
        Some(value) if !value.is_empty() => Ok(value),
        _ => bail!("missing {flag} (or `{key}` in shipmate.toml)"),
    }
}

fn split(flag: &str, line: &str) -> anyhow::Result<Vec<String>> {
    let words = split_command(line).with_context(|| format!("invalid {flag}"))?;
    if words.is_empty() {
        bail!("{flag} is empty");
    }
    Ok(words)
}

/// The deploy-specific flags.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ReleaseFlags {
    /// The image to release (registry/repository:tag or @digest).
    #[arg(long, env = "SHIPMATE_IMAGE")]
    pub(crate) image: String,
    /// The container that gets the image (default: the only essential one). [file: service.container]
    #[arg(long)]
    pub(crate) container: Option<String>,
    /// The migration command, split like a shell would (no shell runs). [file: migrate.command]
    #[arg(long, value_name = "CMD")]
    pub(crate) migrate: Option<String>,
    /// Skip the migration even if shipmate.toml has one.
    #[arg(long, conflicts_with = "migrate")]
    pub(crate) no_migrate: bool,
    /// CPU units for the migration container. [file: migrate.cpu]
    #[arg(long)]
    pub(crate) migrate_cpu: Option<i32>,
    /// Memory (MiB) for the migration container. [file: migrate.memory]
    #[arg(long)]
    pub(crate) migrate_memory: Option<i32>,
    /// How long the migration may run (default 30m). [file: migrate.timeout]
    #[arg(long, value_parser = duration_arg)]
    pub(crate) migrate_timeout: Option<Duration>,
    /// Launch type of the migration (default: the service's, never FARGATE_SPOT). [file: migrate.launch_type]
    #[arg(long)]
    pub(crate) launch_type: Option<String>,
    /// Let the migration run on FARGATE_SPOT when the service uses it. [file: migrate.allow_spot]
    #[arg(long)]
    pub(crate) allow_spot: bool,
    /// How long the rollout may take (default 30m). [file: deploy.timeout]
    #[arg(long, value_parser = duration_arg)]
    pub(crate) timeout: Option<Duration>,
    /// Roll back to the previous revision when the rollout fails or times out. [file: deploy.rollback]
    #[arg(long, overrides_with = "no_rollback")]
    pub(crate) rollback: bool,
    /// Do not roll back on failure (ECS's circuit breaker may still do it).
    #[arg(long)]
    pub(crate) no_rollback: bool,
    /// Return once the service is updated instead of following the rollout. [file: deploy.wait = false]
    #[arg(long)]
    pub(crate) no_wait: bool,
    /// How long to wait for the releases ahead in the lock (default 30m). [file: deploy.lock_timeout]
    #[arg(long, value_parser = duration_arg)]
    pub(crate) lock_timeout: Option<Duration>,
    /// What the release lock protects: releases with one key never migrate or go live at once
    /// (default: the cluster and the image's repository). [file: deploy.lock_key]
    #[arg(long, value_parser = lock_key_arg, env = "SHIPMATE_LOCK_KEY")]
    pub(crate) lock_key: Option<String>,
    /// How long a lock holder may go without a heartbeat before the next release takes over
    /// (default 5m). [file: deploy.lock_lease]
    #[arg(long, value_parser = duration_arg)]
    pub(crate) lock_lease: Option<Duration>,
    /// After a task stops, read its logs until nothing new arrived for this long (default 10s).
    /// [file: migrate.log_quiet_period]
    #[arg(long, value_parser = duration_arg)]
    pub(crate) log_quiet_period: Option<Duration>,
    /// Fail after this many new tasks stopped, when ECS's circuit breaker is off (default: the
    /// circuit breaker's own threshold for the desired count). [file: deploy.max_failed_tasks]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_failed_tasks: Option<u32>,
    /// What SIGINT/SIGTERM does to a running migration: `stop` (StopTask) or `leave`. [file: deploy.on_cancel]
    #[arg(long, value_parser = on_cancel_arg)]
    pub(crate) on_cancel: Option<OnCancel>,
    /// A command to run as a one-off task after the rollout completes. [file: post_deploy.command]
    #[arg(long, value_name = "CMD")]
    pub(crate) post_deploy: Option<String>,
    /// Write CodePipeline's imagedefinitions.json here after a successful release.
    #[arg(long, value_name = "FILE")]
    pub(crate) image_definitions: Option<PathBuf>,
}

pub(crate) fn deploy_request(
    target: &TargetArgs,
    flags: &ReleaseFlags,
) -> anyhow::Result<DeployRequest> {
    let TargetArgs {
        cluster,
        service,
        config,
        output: _,
        poll_interval,
        max_attempts: _,
    } = target;
    let ReleaseFlags {
        image,
        container,
        migrate,
        no_migrate,
        migrate_cpu,
        migrate_memory,
        migrate_timeout,
        launch_type,
        allow_spot,
        timeout,
        rollback,
        no_rollback,
        no_wait,
        lock_timeout,
        lock_key,
        lock_lease,
        log_quiet_period,
        max_failed_tasks,
        on_cancel,
        post_deploy,
        image_definitions: _,
    } = flags;
    let file = load_file(config.as_deref())?;
    let migrate = if *no_migrate {
        None
    } else {
        match migrate {
            Some(line) => Some(split("--migrate", line)?),
            None => file.migrate.command.clone(),
        }
    };
    let post_deploy = match post_deploy {
        Some(line) => Some(split("--post-deploy", line)?),
        None => file.post_deploy.command.clone(),
    };
    let rollback_on_failure = if *no_rollback {
        false
    } else if *rollback {
        true
    } else {
        file.deploy.rollback.unwrap_or(false)
    };
    if image.trim().is_empty() {
        bail!("--image is empty");
    }
    Ok(DeployRequest {
        cluster: required(
            cluster.clone().or(file.service.cluster.clone()),
            "--cluster",
            "service.cluster",
        )?,
        service: required(
            service.clone().or(file.service.service.clone()),
            "--service",
            "service.service",
        )?,
        image: image.clone(),
        container: container.clone().or(file.service.container.clone()),
        migrate,
        migrate_cpu: migrate_cpu.or(file.migrate.cpu),
        migrate_memory: migrate_memory.or(file.migrate.memory),
        migrate_timeout: migrate_timeout
            .or(file.migrate.timeout)
            .unwrap_or(Defaults::MIGRATE_TIMEOUT),
        launch_type: launch_type.clone().or(file.migrate.launch_type.clone()),
        allow_spot: *allow_spot || file.migrate.allow_spot.unwrap_or(false),
        deploy_timeout: timeout
            .or(file.deploy.timeout)
            .unwrap_or(Defaults::DEPLOY_TIMEOUT),
        poll_interval: positive_poll(poll_interval.or(file.deploy.poll_interval))?,
        rollback_on_failure,
        wait: !*no_wait && file.deploy.wait.unwrap_or(true),
        lock: LockSettings {
            key: lock_key.clone().or(file.deploy.lock_key.clone()),
            timeout: lock_timeout
                .or(file.deploy.lock_timeout)
                .unwrap_or(Defaults::LOCK_TIMEOUT),
            lease: lock_lease
                .or(file.deploy.lock_lease)
                .unwrap_or(Defaults::LOCK_LEASE),
            by: release_by(),
        },
        on_cancel: on_cancel.or(file.deploy.on_cancel).unwrap_or_default(),
        post_deploy,
        post_deploy_timeout: file
            .post_deploy
            .timeout
            .unwrap_or(Defaults::MIGRATE_TIMEOUT),
        log_quiet_period: log_quiet_period
            .or(file.migrate.log_quiet_period)
            .unwrap_or(Defaults::LOG_QUIET_PERIOD),
        max_failed_tasks: max_failed_tasks.or(file.deploy.max_failed_tasks),
    })
}

fn positive_poll(poll: Option<Duration>) -> anyhow::Result<Duration> {
    match poll {
        Some(poll) if poll.is_zero() => bail!("--poll-interval must be above zero"),
        Some(poll) => Ok(poll),
        None => Ok(Defaults::POLL),
    }
}

/// `shipmate run` flags.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RunFlags {
    /// Run this task definition (family, family:revision or ARN) instead of the service's.
    #[arg(long)]
    pub(crate) task_definition: Option<String>,
    /// The container that runs the command (default: the only essential one).
    #[arg(long)]
    pub(crate) container: Option<String>,
    /// CPU units for the container.
    #[arg(long)]
    pub(crate) cpu: Option<i32>,
    /// Memory (MiB) for the container.
    #[arg(long)]
    pub(crate) memory: Option<i32>,
    /// Launch type (default: the service's, never FARGATE_SPOT).
    #[arg(long)]
    pub(crate) launch_type: Option<String>,
    /// Allow FARGATE_SPOT.
    #[arg(long)]
    pub(crate) allow_spot: bool,
    /// How long the task may run (default 1h).
    #[arg(long, value_parser = duration_arg)]
    pub(crate) timeout: Option<Duration>,
    /// What SIGINT/SIGTERM does to the task: `stop` (StopTask) or `leave`.
    #[arg(long, value_parser = on_cancel_arg)]
    pub(crate) on_cancel: Option<OnCancel>,
    /// After the task stops, read its logs until nothing new arrived for this long (default 10s).
    #[arg(long, value_parser = duration_arg)]
    pub(crate) log_quiet_period: Option<Duration>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub(crate) command: Vec<String>,
}

pub(crate) fn run_request(target: &TargetArgs, flags: &RunFlags) -> anyhow::Result<RunRequest> {
    let TargetArgs {
        cluster,
        service,
        config,
        output: _,
        poll_interval,
        max_attempts: _,
    } = target;
    let RunFlags {
        task_definition,
        container,
        cpu,
        memory,
        launch_type,
        allow_spot,
        timeout,
        on_cancel,
        log_quiet_period,
        command,
    } = flags;
    let file = load_file(config.as_deref())?;
    let service = service.clone().or(file.service.service.clone());
    if service.is_none() && task_definition.is_none() {
        bail!("give --service (or `service.service` in shipmate.toml) or --task-definition");
    }
    Ok(RunRequest {
        cluster: required(
            cluster.clone().or(file.service.cluster.clone()),
            "--cluster",
            "service.cluster",
        )?,
        service,
        task_definition: task_definition.clone(),
        container: container.clone().or(file.service.container.clone()),
        command: command.clone(),
        cpu: *cpu,
        memory: *memory,
        launch_type: launch_type.clone(),
        allow_spot: *allow_spot,
        timeout: timeout.unwrap_or(Defaults::RUN_TIMEOUT),
        poll_interval: positive_poll(poll_interval.or(file.deploy.poll_interval))?,
        on_cancel: on_cancel.or(file.deploy.on_cancel).unwrap_or_default(),
        log_quiet_period: log_quiet_period
            .or(file.migrate.log_quiet_period)
            .unwrap_or(Defaults::LOG_QUIET_PERIOD),
    })
}

/// `shipmate rollback` flags.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RollbackFlags {
    /// The task definition to go back to (family:revision or ARN). Default: the last revision
    /// that was live before the current one, from shipmate's release ledger.
    #[arg(long)]
    pub(crate) to: Option<String>,
    /// Say where the rollback would go; change nothing and take no lock.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// How long the rollback may take (default 30m).
    #[arg(long, value_parser = duration_arg)]
    pub(crate) timeout: Option<Duration>,
    /// Return once the service is updated.
    #[arg(long)]
    pub(crate) no_wait: bool,
    #[command(flatten)]
    pub(crate) lock: LockFlags,
}

/// `--lock-key` alone (status, unlock).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LockKeyFlag {
    /// The release lock's key, when shipmate.toml or deploy set one. [file: deploy.lock_key]
    #[arg(long, value_parser = lock_key_arg, env = "SHIPMATE_LOCK_KEY")]
    pub(crate) lock_key: Option<String>,
}

/// The lock flags of commands other than deploy.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LockFlags {
    /// The release lock's key, when shipmate.toml or deploy set one. [file: deploy.lock_key]
    #[arg(long, value_parser = lock_key_arg, env = "SHIPMATE_LOCK_KEY")]
    pub(crate) lock_key: Option<String>,
    /// How long to wait for the releases ahead in the lock (default 30m). [file: deploy.lock_timeout]
    #[arg(long, value_parser = duration_arg)]
    pub(crate) lock_timeout: Option<Duration>,
}

pub(crate) fn rollback_request(
    target: &TargetArgs,
    flags: &RollbackFlags,
) -> anyhow::Result<RollbackRequest> {
    let TargetArgs {
        cluster,
        service,
        config,
        output: _,
        poll_interval,
        max_attempts: _,
    } = target;
    let RollbackFlags {
        to,
        dry_run,
        timeout,
        no_wait,
        lock: LockFlags {
            lock_key,
            lock_timeout,
        },
    } = flags;
    let file = load_file(config.as_deref())?;
    Ok(RollbackRequest {
        cluster: required(
            cluster.clone().or(file.service.cluster.clone()),
            "--cluster",
            "service.cluster",
        )?,
        service: required(
            service.clone().or(file.service.service.clone()),
            "--service",
            "service.service",
        )?,
        to: to.clone(),
        timeout: timeout
            .or(file.deploy.timeout)
            .unwrap_or(Defaults::DEPLOY_TIMEOUT),
        poll_interval: positive_poll(poll_interval.or(file.deploy.poll_interval))?,
        wait: !*no_wait,
        dry_run: *dry_run,
        lock: LockSettings {
            key: lock_key.clone().or(file.deploy.lock_key.clone()),
            timeout: lock_timeout
                .or(file.deploy.lock_timeout)
                .unwrap_or(Defaults::LOCK_TIMEOUT),
            lease: file.deploy.lock_lease.unwrap_or(Defaults::LOCK_LEASE),
            by: release_by(),
        },
        max_failed_tasks: file.deploy.max_failed_tasks,
    })
}

/// Cluster, service and lock key for `status` and `unlock`.
pub(crate) fn ledger_target(
    target: &TargetArgs,
    lock_key: Option<&str>,
) -> anyhow::Result<shipmate_release::release::UnlockRequest> {
    let file = load_file(target.config.as_deref())?;
    Ok(shipmate_release::release::UnlockRequest {
        cluster: required(
            target.cluster.clone().or(file.service.cluster.clone()),
            "--cluster",
            "service.cluster",
        )?,
        service: required(
            target.service.clone().or(file.service.service.clone()),
            "--service",
            "service.service",
        )?,
        lock_key: lock_key.map(str::to_owned).or(file.deploy.lock_key),
        by: release_by(),
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command};

    fn deploy(file: &str, flags: &[&str]) -> anyhow::Result<DeployRequest> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("shipmate.toml");
        std::fs::write(&path, file)?;
        let mut argv = vec![
            "shipmate",
            "deploy",
            "--config",
            path.to_str().unwrap_or_default(),
        ];
        argv.extend_from_slice(flags);
        let Command::Deploy(args) = Cli::try_parse_from(argv)?.command else {
            anyhow::bail!("not a deploy");
        };
        deploy_request(&args.target, &args.flags)
    }

    const FILE: &str = r#"
[service]
cluster = "from-file"
service = "web"

[migrate]
command = "python manage.py migrate"
memory = 1024

[deploy]
poll_interval = "2s"
rollback = true
on_cancel = "leave"
"#;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let request = deploy(
            FILE,
            &[
                "--image",
                "web:2",
                "--cluster",
                "from-flag",
                "--no-rollback",
                "--migrate",
                "sh -c 'echo hi'",
            ],
        )
        .expect("valid");
        assert_eq!(request.cluster, "from-flag");
        assert_eq!(request.service, "web");
        assert_eq!(
            request.migrate.as_deref(),
            Some(&["sh".to_owned(), "-c".to_owned(), "echo hi".to_owned()][..])
        );
        assert_eq!(request.migrate_memory, Some(1024));
        assert_eq!(request.poll_interval, Duration::from_secs(2));
        assert!(!request.rollback_on_failure);
        assert_eq!(request.on_cancel, OnCancel::Leave);
        assert_eq!(request.deploy_timeout, Defaults::DEPLOY_TIMEOUT);
        assert!(request.wait);
    }

    #[test]
    fn file_values_apply_when_no_flag_is_given() {
        let request = deploy(FILE, &["--image", "web:2", "--no-wait"]).expect("valid");
        assert_eq!(request.cluster, "from-file");
        assert_eq!(
            request.migrate.as_deref(),
            Some(
                &[
                    "python".to_owned(),
                    "manage.py".to_owned(),
                    "migrate".to_owned()
                ][..]
            )
        );
        assert!(request.rollback_on_failure);
        assert!(!request.wait);
        let skipped = deploy(FILE, &["--image", "web:2", "--no-migrate"]).expect("valid");
        assert_eq!(skipped.migrate, None);
    }

    #[test]
    fn missing_and_invalid_settings_are_errors() {
        let error = deploy("", &["--image", "web:2"]).expect_err("no cluster");
        assert_eq!(
            error.to_string(),
            "missing --cluster (or `service.cluster` in shipmate.toml)"
        );
        let error =
            deploy(FILE, &["--image", "web:2", "--poll-interval", "0s"]).expect_err("zero poll");
        assert_eq!(error.to_string(), "--poll-interval must be above zero");
        let error =
            deploy("[deploy]\ntimeout = \"soon\"\n", &["--image", "x"]).expect_err("bad file");
        assert!(error.to_string().ends_with("shipmate.toml:2:11: `deploy.timeout`: invalid duration `soon`: expected a number followed by ms, s, m or h (e.g. \"90s\", \"15m\", \"1h30m\")"), "{error}");
    }
}
