//! `shipmate init`: a first shipmate.toml for live services, the IAM policy their CI role needs,
//! and the CI step that releases them.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use shipmate_release::config::{Gate, parse_config};
use shipmate_release::iam::PolicyScope;
use shipmate_release::init::{
    InitError, InitOptions, MigrationChoice, PipelineValues, Proposal, buildspec, github_workflow,
    propose,
};
use shipmate_release::release::DiscoverRequest;

use crate::commands::iam_policy::{default_region, scoped_policy};
use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::session::{Session, report_error};
use crate::settings::{OutputFormat, TargetArgs, gate_arg};

/// Write a first shipmate.toml for live services (read with DescribeServices and
/// DescribeTaskDefinition), the IAM policy the CI role needs, and the CI step that releases
/// them. Changes nothing in AWS; never overwrites a file without --force.
#[derive(Debug, clap::Args)]
#[command(after_help = INIT_HELP)]
pub(crate) struct InitArgs {
    /// The ECS cluster (name or ARN).
    #[arg(long, env = "SHIPMATE_CLUSTER")]
    cluster: String,
    /// The services released together (repeatable, or comma-separated).
    #[arg(
        long = "service",
        value_name = "SERVICE",
        env = "SHIPMATE_SERVICE",
        value_delimiter = ',',
        required = true
    )]
    services: Vec<String>,
    /// The migration preset (`django`; docs/presets.md). Default: recognised from the task
    /// definition (Django: the preset; Rails: `bin/rails db:migrate`), else asked for.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["migrate", "no_migrate"])]
    preset: Option<String>,
    /// The migration command, run as a one-off task from the release's image.
    #[arg(long, value_name = "COMMAND", conflicts_with = "no_migrate")]
    migrate: Option<String>,
    /// The services have no migration.
    #[arg(long)]
    no_migrate: bool,
    /// The container that gets the release's image (default: the only essential one, or the
    /// load balancer's).
    #[arg(long)]
    container: Option<String>,
    /// Where the migration gates the release: `before-deploy` or `pause-hook` (default: not
    /// written, so before-deploy).
    #[arg(long, value_name = "GATE", value_parser = gate_arg)]
    gate: Option<Gate>,
    /// The CI to write the release step for: `github-actions` (.github/workflows/release.yml) or
    /// `codebuild` (buildspec.yml); repeatable.
    #[arg(long, value_enum, value_name = "CI")]
    ci: Vec<Ci>,
    /// The directory to write into: the root of the application's repository.
    #[arg(long, value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// Overwrite files that exist.
    #[arg(long)]
    force: bool,
    /// Attempts per AWS call.
    #[arg(long, default_value_t = 8, env = "SHIPMATE_MAX_ATTEMPTS")]
    max_attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Ci {
    GithubActions,
    Codebuild,
}

impl Ci {
    fn path(self) -> &'static str {
        match self {
            Ci::GithubActions => ".github/workflows/release.yml",
            Ci::Codebuild => "buildspec.yml",
        }
    }
}

const CONFIG_FILE: &str = "shipmate.toml";
const POLICY_FILE: &str = "shipmate-iam-policy.json";

const INIT_HELP: &str = "\
Writes, in --dir:
  shipmate.toml              the services, container, migration (or preset), gate, timeouts and
                             lock, each setting commented
  shipmate-iam-policy.json   the policy the CI role needs (what `shipmate iam-policy
                             --from-service` prints)
  .github/workflows/release.yml and/or buildspec.yml, with --ci

Then: `shipmate doctor --image IMAGE` checks what would make the first release fail, and
`shipmate plan --image IMAGE` shows what it would do.

Exit codes:
  0    written
  1    AWS unreachable, access denied, a file that cannot be written
  2    bad input: an unknown service or container, a migration that cannot be told, a file that
       exists (without --force)
  130  interrupted (SIGINT/SIGTERM)";

pub(crate) async fn init(args: InitArgs, printer: &Printer) -> ExitStatus {
    let mut files = vec![CONFIG_FILE, POLICY_FILE];
    let mut ci: Vec<Ci> = Vec::with_capacity(args.ci.len());
    for each in &args.ci {
        if !ci.contains(each) {
            ci.push(*each);
        }
    }
    files.extend(ci.iter().map(|c| c.path()));
    let existing: Vec<&str> = files
        .iter()
        .copied()
        .filter(|file| args.dir.join(file).exists())
        .collect();
    if !existing.is_empty() && !args.force {
        printer.error(&anyhow::anyhow!(
            "{} already exist{} in {}; nothing was written",
            existing.join(", "),
            if existing.len() == 1 { "s" } else { "" },
            args.dir.display()
        ));
        printer.hint("--force overwrites them");
        return ExitStatus::Usage;
    }

    let target = TargetArgs {
        cluster: Some(args.cluster.clone()),
        services: args.services.clone(),
        config: None,
        output: OutputFormat::Human,
        poll_interval: None,
        max_attempts: args.max_attempts,
    };
    let session = Session::start(&target, printer, &args.cluster).await;
    let discovered = session
        .driver
        .discover(DiscoverRequest {
            cluster: args.cluster.clone(),
            services: args.services.clone(),
        })
        .await;
    session.end_progress();
    let discovery = match discovered {
        Ok(discovery) => discovery,
        Err(error) => return report_error(printer, &error, &args.cluster, &args.services),
    };

    let options = InitOptions {
        migration: match (&args.preset, &args.migrate, args.no_migrate) {
            (Some(preset), _, _) => MigrationChoice::Preset(preset.clone()),
            (_, Some(command), _) => MigrationChoice::Command(command.clone()),
            (_, _, true) => MigrationChoice::None,
            _ => MigrationChoice::Detect,
        },
        container: args.container.clone(),
        gate: args.gate,
    };
    let proposal = match propose(&discovery, &options) {
        Ok(proposal) => proposal,
        Err(error) => {
            printer.error(&anyhow::Error::new(error.clone()));
            if let Some(hint) = init_hint(&error) {
                printer.hint(hint);
            }
            return ExitStatus::Usage;
        }
    };

    let region = discovery
        .region
        .clone()
        .or_else(default_region)
        .unwrap_or_else(|| "us-east-1".to_owned());
    match write_files(&args, &ci, &proposal, &region).await {
        Ok(written) => {
            summarize(printer, &args, &proposal, &written);
            ExitStatus::Success
        }
        Err(error) => {
            printer.error(&error);
            ExitStatus::Failure
        }
    }
}

fn init_hint(error: &InitError) -> Option<&'static str> {
    match error {
        InitError::AmbiguousContainer { .. } | InitError::UnknownContainer { .. } => {
            Some("--container NAME picks the container that runs the application")
        }
        InitError::UnknownFramework { .. } => Some(
            "say how they migrate: --preset django, --migrate \"COMMAND\" (e.g. \"alembic upgrade head\"), or --no-migrate",
        ),
        InitError::Preset(_) | InitError::EmptyCommand | InitError::NoServices => None,
    }
}

/// Renders every file first, then writes them: a failure leaves nothing half-written that
/// matters (each file is written whole).
async fn write_files(
    args: &InitArgs,
    ci: &[Ci],
    proposal: &Proposal,
    region: &str,
) -> anyhow::Result<Vec<String>> {
    // What init writes, shipmate reads: a file it cannot read back is our bug, not the user's.
    let config = parse_config(CONFIG_FILE, &proposal.shipmate_toml, &|_| None)
        .context("the shipmate.toml init wrote does not parse (a bug in shipmate init)")?;
    let scope = PolicyScope {
        partition: None,
        region: default_region(),
        account: None,
        cluster: args.cluster.clone(),
        services: args.services.clone(),
        families: Vec::new(),
        log_groups: Vec::new(),
        pass_roles: Vec::new(),
    };
    let (policy, _) = scoped_policy(scope, &config, true).await?;
    let mut contents = vec![
        (CONFIG_FILE, proposal.shipmate_toml.clone()),
        (
            POLICY_FILE,
            serde_json::to_string_pretty(&policy).expect("a JSON value serializes") + "\n",
        ),
    ];
    let values = PipelineValues {
        cluster: &args.cluster,
        services: &args.services,
        region,
        repository: &proposal.repository,
        config: CONFIG_FILE,
        version: env!("CARGO_PKG_VERSION"),
    };
    for ci in ci {
        let text = match ci {
            Ci::GithubActions => github_workflow(&values),
            Ci::Codebuild => buildspec(&values),
        };
        contents.push((ci.path(), text));
    }
    let mut written = Vec::with_capacity(contents.len());
    for (file, text) in contents {
        write_file(&args.dir.join(file), &text, args.force)?;
        written.push(file.to_owned());
    }
    Ok(written)
}

fn write_file(path: &Path, text: &str, overwrite: bool) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create `{}`", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if overwrite {
        options.create(true).truncate(true);
    } else {
        // Another process may have made it since the check.
        options.create_new(true);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write `{}`", path.display()))
}

fn summarize(printer: &Printer, args: &InitArgs, proposal: &Proposal, written: &[String]) {
    let containers: Vec<String> = proposal
        .containers
        .iter()
        .map(|(service, container)| format!("{service}/{container}"))
        .collect();
    printer.info(&format!(
        "read {} on cluster {}: the image goes to {} (repository {})",
        args.services.join(", "),
        args.cluster,
        containers.join(", "),
        proposal.repository
    ));
    printer.info(&format!("migration: {}", proposal.migration.describe()));
    for file in written {
        let what = match file.as_str() {
            CONFIG_FILE => "commit it next to the code",
            POLICY_FILE => "attach it to the CI role (and ECR push for the build)",
            ".github/workflows/release.yml" => "set the repository variable RELEASE_ROLE_ARN",
            _ => "the CodeBuild project's buildspec",
        };
        printer.info(&format!("wrote {}: {what}", args.dir.join(file).display()));
    }
    for warning in &proposal.warnings {
        printer.warning(warning, None);
    }
    printer.hint(
        "next: `shipmate doctor --image IMAGE` checks what would make the first release fail, `shipmate plan --image IMAGE` shows what it would do",
    );
}
