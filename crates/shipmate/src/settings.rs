//! Flags and `shipmate.toml` resolved into the requests the driver takes. Flags (and their
//! `SHIPMATE_*` variables) override the file; the file overrides the defaults. Every field is
//! destructured so that a new flag cannot be silently ignored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use shipmate_release::command::{parse_env_assignment, split_command};
use shipmate_release::config::{FileConfig, Gate, OnCancel, WaitUntil, parse_config};
use shipmate_release::duration::parse_duration;
use shipmate_release::ledger::validate_key;
use shipmate_release::plan::{cpu_units, memory_mib};
use shipmate_release::preset::{Phase as PresetPhase, Preset, PresetOptions};
use shipmate_release::release::{
    DeployRequest, LockSettings, MigrationShape, RollbackRequest, RunRequest, UnlockRequest,
};

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

fn wait_until_arg(text: &str) -> Result<WaitUntil, String> {
    WaitUntil::parse(text)
        .ok_or_else(|| format!("expected `updated`, `deployed` or `complete`, found `{text}`"))
}

pub(crate) fn gate_arg(text: &str) -> Result<Gate, String> {
    Gate::parse(text)
        .ok_or_else(|| format!("expected `before-deploy` or `pause-hook`, found `{text}`"))
}

/// Where and how: shared by every release command.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TargetArgs {
    /// The ECS cluster (name or ARN). [file: service.cluster]
    #[arg(long, env = "SHIPMATE_CLUSTER")]
    pub(crate) cluster: Option<String>,
    /// The ECS service; repeat it (or separate names with commas) to release several services
    /// of the cluster together. [file: service.service or service.services]
    #[arg(
        long = "service",
        value_name = "SERVICE",
        env = "SHIPMATE_SERVICE",
        value_delimiter = ','
    )]
    pub(crate) services: Vec<String>,
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

/// The services of a release: the flags' (or SHIPMATE_SERVICE's), else the file's.
fn services(flags: &[String], file: &FileConfig) -> anyhow::Result<Vec<String>> {
    let services: Vec<String> = if flags.is_empty() {
        file.service.services.clone().unwrap_or_default()
    } else {
        flags.iter().map(|s| s.trim().to_owned()).collect()
    };
    if services.is_empty() {
        bail!("missing --service (or `service.service` / `service.services` in shipmate.toml)");
    }
    for (i, service) in services.iter().enumerate() {
        if service.is_empty() {
            bail!("--service is empty");
        }
        if services[..i].contains(service) {
            bail!("service `{service}` is given twice");
        }
    }
    Ok(services)
}

/// `shipmate run` takes one service: the one whose task definition and network it uses.
fn one_service(flags: &[String], file: &FileConfig) -> anyhow::Result<Option<String>> {
    if flags.is_empty() && file.service.services.is_none() {
        return Ok(None);
    }
    let services = services(flags, file)?;
    match &services[..] {
        [one] => Ok(Some(one.clone())),
        _ => bail!(
            "`shipmate run` uses one service's task definition and network: give one --service (found {})",
            services.join(", ")
        ),
    }
}

fn task_size(flag: &str, text: &str, parse: fn(&str) -> Option<u32>) -> anyhow::Result<String> {
    parse(text).map(|n| n.to_string()).ok_or_else(|| {
        anyhow::anyhow!("{flag} `{text}` is not a task size (e.g. 1024, \"1 vCPU\", \"2 GB\")")
    })
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
    /// A migration preset: shipmate composes the migration itself, checks the plan against the
    /// code still serving, applies what is safe before the deployment and what is marked
    /// after-deploy once it is complete (`django`; docs/presets.md). [file: migrate.preset]
    #[arg(long, value_name = "NAME", conflicts_with = "migrate")]
    pub(crate) preset: Option<String>,
    /// Apply operations the preset finds unsafe for the serving code anyway (a drop, a rename,
    /// NOT NULL without a database default).
    #[arg(long)]
    pub(crate) allow_unsafe: bool,
    /// PostgreSQL lock_timeout for the migration (set through PGOPTIONS), so that it fails fast
    /// rather than queue behind a busy table and block the live app. [file: migrate.db_lock_timeout]
    #[arg(long, value_parser = duration_arg, value_name = "DURATION")]
    pub(crate) db_lock_timeout: Option<Duration>,
    /// PostgreSQL statement_timeout for the migration (PGOPTIONS). [file: migrate.db_statement_timeout]
    #[arg(long, value_parser = duration_arg, value_name = "DURATION")]
    pub(crate) db_statement_timeout: Option<Duration>,
    /// CPU units for the migration container. [file: migrate.cpu]
    #[arg(long)]
    pub(crate) migrate_cpu: Option<i32>,
    /// Memory (MiB) for the migration container. [file: migrate.memory]
    #[arg(long)]
    pub(crate) migrate_memory: Option<i32>,
    /// Task-level CPU of the migration task (`1024` or `1 vCPU`; on Fargate one of its sizes).
    /// [file: migrate.task_cpu]
    #[arg(long, value_name = "CPU")]
    pub(crate) migrate_task_cpu: Option<String>,
    /// Task-level memory of the migration task (`2048` or `2 GB`). [file: migrate.task_memory]
    #[arg(long, value_name = "MEMORY")]
    pub(crate) migrate_task_memory: Option<String>,
    /// An environment variable for the migration container, NAME=value; repeatable, over the
    /// file's. [file: migrate.environment]
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_env_assignment)]
    pub(crate) migrate_env: Vec<(String, String)>,
    /// The IAM role the migration task's code runs as. [file: migrate.task_role_arn]
    #[arg(long, value_name = "ARN")]
    pub(crate) migrate_task_role: Option<String>,
    /// The IAM role ECS uses to start the migration task (image pull, secrets).
    /// [file: migrate.execution_role_arn]
    #[arg(long, value_name = "ARN")]
    pub(crate) migrate_execution_role: Option<String>,
    /// The service whose new revision and network the migration uses (default: the first
    /// --service). [file: migrate.service]
    #[arg(long, value_name = "SERVICE")]
    pub(crate) migrate_from: Option<String>,
    /// Run the migration from a task-definition family of its own (its secrets, say a database
    /// user with DDL rights), which shipmate keeps in step with the release's image.
    /// [file: migrate.task_definition]
    #[arg(long, value_name = "FAMILY")]
    pub(crate) migrate_task_definition: Option<String>,
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
    /// Return once the service is updated instead of following the rollout (the same as
    /// `--wait-until updated`). [file: deploy.wait = false]
    #[arg(long, conflicts_with = "wait_until")]
    pub(crate) no_wait: bool,
    /// How far to follow the deployment: `updated` (UpdateService accepted), `deployed`
    /// (production traffic on the new revision: blue/green, linear and canary return before the
    /// bake time, and `shipmate finish` completes the release later) or `complete` (default:
    /// the deployment is over). [file: deploy.wait_until]
    #[arg(long, value_name = "WHEN", value_parser = wait_until_arg)]
    pub(crate) wait_until: Option<WaitUntil>,
    /// Where the migration gates the release: `before-deploy` (default: migrate, then update
    /// the service) or `pause-hook` (start ECS's deployment paused at PRE_SCALE_UP, migrate
    /// from the revision it deploys, then continue it or roll it back; docs/release.md).
    /// [file: migrate.gate]
    #[arg(long, value_name = "GATE", value_parser = gate_arg)]
    pub(crate) gate: Option<Gate>,
    /// Migrate under the release lock and stop: for CODE_DEPLOY services, whose deployment
    /// CodePipeline makes; writes imageDetail.json, taskdef.json and appspec.yaml to
    /// --artifacts.
    #[arg(long)]
    pub(crate) migrate_only: bool,
    /// Where --migrate-only writes CodeDeploy's artifacts (default: the current directory; one
    /// subdirectory per service for several).
    #[arg(long, value_name = "DIR", requires = "migrate_only")]
    pub(crate) artifacts: Option<PathBuf>,
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
    /// Write CodePipeline's imagedefinitions.json here after a successful release: a file for
    /// one service, a directory (one `<service>.json` each) for several.
    #[arg(long, value_name = "PATH")]
    pub(crate) image_definitions: Option<PathBuf>,
}

pub(crate) fn deploy_request(
    target: &TargetArgs,
    flags: &ReleaseFlags,
) -> anyhow::Result<DeployRequest> {
    let TargetArgs {
        cluster,
        services: service_flags,
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
        preset,
        allow_unsafe,
        db_lock_timeout,
        db_statement_timeout,
        migrate_cpu,
        migrate_memory,
        migrate_task_cpu,
        migrate_task_memory,
        migrate_env,
        migrate_task_role,
        migrate_execution_role,
        migrate_from,
        migrate_task_definition,
        migrate_timeout,
        launch_type,
        allow_spot,
        timeout,
        rollback,
        no_rollback,
        no_wait,
        wait_until,
        gate,
        migrate_only,
        artifacts: _,
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
    let preset_name = preset.clone().or(file.migrate.preset.clone());
    if preset_name.is_some() && (migrate.is_some() || file.migrate.command.is_some()) {
        bail!(
            "a preset composes the migration command itself: give either --preset (migrate.preset) or --migrate (migrate.command), not both"
        );
    }
    let preset = match &preset_name {
        Some(name) if !*no_migrate => Some(
            Preset::parse(name, file.migrate.manage.clone())
                .map_err(|message| anyhow::anyhow!("--preset: {message}"))?,
        ),
        _ => None,
    };
    let preset_options = PresetOptions {
        refuse_unknown: file.migrate.refuse_unknown.unwrap_or(false),
        allow_unsafe: *allow_unsafe,
    };
    let migrate = if *no_migrate {
        None
    } else if let Some(preset) = &preset {
        Some(preset.command(PresetPhase::Expand, preset_options))
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
    let cluster = required(
        cluster.clone().or(file.service.cluster.clone()),
        "--cluster",
        "service.cluster",
    )?;
    let services = services(service_flags, &file)?;
    let waves = file.deploy.waves.clone().unwrap_or_default();
    if service_flags.is_empty()
        && let Some(stray) = waves.iter().flatten().find(|s| !services.contains(s))
    {
        // The file names both: a wave naming no service of it is a typo. (A subset released
        // with --service simply skips the waves' other services.)
        bail!(
            "`deploy.waves` names `{stray}`, which is not in `service.services` ({})",
            services.join(", ")
        );
    }
    let mut migrate_shape = migration_shape(
        &file,
        &services,
        MigrationFlags {
            from: migrate_from.as_deref(),
            family: migrate_task_definition.as_deref(),
            task_cpu: migrate_task_cpu.as_deref(),
            task_memory: migrate_task_memory.as_deref(),
            environment: migrate_env,
            task_role: migrate_task_role.as_deref(),
            execution_role: migrate_execution_role.as_deref(),
        },
    )?;
    if let Some(options) = pg_options(
        db_lock_timeout.or(file.migrate.db_lock_timeout),
        db_statement_timeout.or(file.migrate.db_statement_timeout),
    ) {
        if migrate_shape
            .environment
            .iter()
            .any(|(name, _)| name == "PGOPTIONS")
        {
            bail!(
                "--db-lock-timeout and --db-statement-timeout set PGOPTIONS, which the migration's environment sets too: give one or the other"
            );
        }
        migrate_shape
            .environment
            .push(("PGOPTIONS".to_owned(), options));
    }
    Ok(DeployRequest {
        cluster,
        services,
        waves,
        image: image.clone(),
        container: container.clone().or(file.service.container.clone()),
        migrate,
        migrate_cpu: migrate_cpu.or(file.migrate.cpu),
        migrate_memory: migrate_memory.or(file.migrate.memory),
        migrate_shape,
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
        wait_until: if *no_wait || file.deploy.wait == Some(false) && wait_until.is_none() {
            WaitUntil::Updated
        } else {
            wait_until.or(file.deploy.wait_until).unwrap_or_default()
        },
        gate: gate.or(file.migrate.gate).unwrap_or_default(),
        migrate_only: *migrate_only,
        preset,
        preset_options,
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

/// PostgreSQL settings for the migration's session, as libpq reads them from PGOPTIONS (an app
/// whose DATABASES sets `OPTIONS["options"]` overrides them).
fn pg_options(lock: Option<Duration>, statement: Option<Duration>) -> Option<String> {
    let ms = |d: Duration| d.as_millis().max(1);
    let mut options = Vec::new();
    if let Some(lock) = lock {
        options.push(format!("-c lock_timeout={}", ms(lock)));
    }
    if let Some(statement) = statement {
        options.push(format!("-c statement_timeout={}", ms(statement)));
    }
    (!options.is_empty()).then(|| options.join(" "))
}

/// The migration-shape flags, borrowed.
struct MigrationFlags<'a> {
    from: Option<&'a str>,
    family: Option<&'a str>,
    task_cpu: Option<&'a str>,
    task_memory: Option<&'a str>,
    environment: &'a [(String, String)],
    task_role: Option<&'a str>,
    execution_role: Option<&'a str>,
}

fn migration_shape(
    file: &FileConfig,
    services: &[String],
    flags: MigrationFlags<'_>,
) -> anyhow::Result<MigrationShape> {
    let service = flags
        .from
        .map(str::to_owned)
        .or(file.migrate.service.clone());
    if let Some(service) = &service
        && !services.contains(service)
    {
        bail!(
            "the migration runs from service `{service}` (--migrate-from or `migrate.service`), which is not one of the release's: {}",
            services.join(", ")
        );
    }
    let task_cpu = match flags.task_cpu {
        Some(text) => Some(task_size("--migrate-task-cpu", text, cpu_units)?),
        None => file.migrate.task_cpu.clone(),
    };
    let task_memory = match flags.task_memory {
        Some(text) => Some(task_size("--migrate-task-memory", text, memory_mib)?),
        None => file.migrate.task_memory.clone(),
    };
    // The file's variables, then the flags' (a flag overrides the file's value of a name).
    let mut environment = file.migrate.environment.clone().unwrap_or_default();
    for (name, value) in flags.environment {
        environment.retain(|(existing, _)| existing != name);
        environment.push((name.clone(), value.clone()));
    }
    let family = flags
        .family
        .map(str::to_owned)
        .or(file.migrate.task_definition.clone());
    if family.as_deref().is_some_and(|f| f.trim().is_empty()) {
        bail!("--migrate-task-definition is empty");
    }
    Ok(MigrationShape {
        service,
        family,
        task_cpu,
        task_memory,
        environment,
        task_role_arn: flags
            .task_role
            .map(str::to_owned)
            .or(file.migrate.task_role_arn.clone()),
        execution_role_arn: flags
            .execution_role
            .map(str::to_owned)
            .or(file.migrate.execution_role_arn.clone()),
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
        services,
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
    let service = one_service(services, &file)?;
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
    /// Roll back even to code older than a release whose contract migrations (drops, renames
    /// held back until its deployment completed) are applied.
    #[arg(long)]
    pub(crate) force: bool,
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
        services: service_flags,
        config,
        output: _,
        poll_interval,
        max_attempts: _,
    } = target;
    let RollbackFlags {
        to,
        dry_run,
        force,
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
        services: services(service_flags, &file)?,
        to: to.clone(),
        timeout: timeout
            .or(file.deploy.timeout)
            .unwrap_or(Defaults::DEPLOY_TIMEOUT),
        poll_interval: positive_poll(poll_interval.or(file.deploy.poll_interval))?,
        wait: !*no_wait,
        dry_run: *dry_run,
        force: *force,
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
) -> anyhow::Result<UnlockRequest> {
    let file = load_file(target.config.as_deref())?;
    Ok(UnlockRequest {
        cluster: required(
            target.cluster.clone().or(file.service.cluster.clone()),
            "--cluster",
            "service.cluster",
        )?,
        services: services(&target.services, &file)?,
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
        assert_eq!(request.services, ["web"]);
        assert_eq!(
            request.migrate.as_deref(),
            Some(&["sh".to_owned(), "-c".to_owned(), "echo hi".to_owned()][..])
        );
        assert_eq!(request.migrate_memory, Some(1024));
        assert_eq!(request.poll_interval, Duration::from_secs(2));
        assert!(!request.rollback_on_failure);
        assert_eq!(request.on_cancel, OnCancel::Leave);
        assert_eq!(request.deploy_timeout, Defaults::DEPLOY_TIMEOUT);
        assert_eq!(request.wait_until, WaitUntil::Complete);
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
        assert_eq!(request.wait_until, WaitUntil::Updated);
        let skipped = deploy(FILE, &["--image", "web:2", "--no-migrate"]).expect("valid");
        assert_eq!(skipped.migrate, None);
    }

    #[test]
    fn several_services_from_flags_env_style_lists_or_the_file() {
        let flags = deploy(
            FILE,
            &[
                "--image",
                "web:2",
                "--service",
                "web",
                "--service",
                "worker",
            ],
        )
        .expect("valid");
        assert_eq!(flags.services, ["web", "worker"]);
        // SHIPMATE_SERVICE=web,worker reaches clap as a comma-separated value.
        let listed =
            deploy(FILE, &["--image", "web:2", "--service", "web,worker,beat"]).expect("valid");
        assert_eq!(listed.services, ["web", "worker", "beat"]);
        let file = "[service]\ncluster = \"c\"\nservices = [\"web\", \"worker\"]\n[deploy]\nwaves = [[\"web\"], [\"worker\"]]\n";
        let from_file = deploy(file, &["--image", "web:2"]).expect("valid");
        assert_eq!(from_file.services, ["web", "worker"]);
        assert_eq!(
            from_file.waves,
            [vec!["web".to_owned()], vec!["worker".to_owned()]]
        );
        let error = deploy(
            FILE,
            &["--image", "web:2", "--service", "web", "--service", "web"],
        )
        .expect_err("twice");
        assert_eq!(error.to_string(), "service `web` is given twice");
        let typo = "[service]\ncluster = \"c\"\nservices = [\"web\", \"worker\"]\n[deploy]\nwaves = [[\"web\"], [\"wokrer\"]]\n";
        let error = deploy(typo, &["--image", "web:2"]).expect_err("stray wave");
        assert_eq!(
            error.to_string(),
            "`deploy.waves` names `wokrer`, which is not in `service.services` (web, worker)"
        );
        // A subset released with --service skips the waves' other services.
        let subset = deploy(typo, &["--image", "web:2", "--service", "web"]).expect("valid");
        assert_eq!(subset.services, ["web"]);
    }

    #[test]
    fn the_migration_shape_from_flags_over_the_file() {
        let file = r#"
[service]
cluster = "c"
services = ["web", "worker"]

[migrate]
command = "migrate"
service = "worker"
task_definition = "web-migrate"
task_cpu = 512
environment = { MODE = "file", KEEP = "1" }
task_role_arn = "arn:aws:iam::1:role/file"
"#;
        let request = deploy(
            file,
            &[
                "--image",
                "web:2",
                "--migrate-task-memory",
                "2 GB",
                "--migrate-env",
                "MODE=flag",
                "--migrate-env",
                "EXTRA=a=b",
                "--migrate-execution-role",
                "arn:aws:iam::1:role/exec",
            ],
        )
        .expect("valid");
        let shape = request.migrate_shape;
        assert_eq!(shape.service.as_deref(), Some("worker"));
        assert_eq!(shape.family.as_deref(), Some("web-migrate"));
        assert_eq!(shape.task_cpu.as_deref(), Some("512"));
        assert_eq!(shape.task_memory.as_deref(), Some("2048"));
        assert_eq!(
            shape.environment,
            [
                ("KEEP".to_owned(), "1".to_owned()),
                ("MODE".to_owned(), "flag".to_owned()),
                ("EXTRA".to_owned(), "a=b".to_owned())
            ]
        );
        assert_eq!(
            shape.task_role_arn.as_deref(),
            Some("arn:aws:iam::1:role/file")
        );
        assert_eq!(
            shape.execution_role_arn.as_deref(),
            Some("arn:aws:iam::1:role/exec")
        );
        let error =
            deploy(file, &["--image", "x", "--migrate-from", "beat"]).expect_err("not ours");
        assert!(
            error
                .to_string()
                .contains("which is not one of the release's: web, worker"),
            "{error}"
        );
        let error =
            deploy(file, &["--image", "x", "--migrate-task-cpu", "huge"]).expect_err("size");
        assert!(
            error
                .to_string()
                .starts_with("--migrate-task-cpu `huge` is not a task size"),
            "{error}"
        );
        let error = deploy(file, &["--image", "x", "--migrate-env", "NOEQUALS"]).expect_err("env");
        assert!(error.to_string().contains("expected NAME=value"), "{error}");
    }

    #[test]
    fn run_takes_one_service() {
        let Command::Run(args) = Cli::try_parse_from([
            "shipmate",
            "run",
            "--cluster",
            "c",
            "--service",
            "web",
            "--service",
            "worker",
            "--",
            "true",
        ])
        .expect("parses")
        .command
        else {
            panic!("not a run");
        };
        let error = run_request(&args.target, &args.flags).expect_err("two services");
        assert!(
            error
                .to_string()
                .contains("give one --service (found web, worker)"),
            "{error}"
        );
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
