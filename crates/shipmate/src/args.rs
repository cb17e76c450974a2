//! The command line, as clap parses it. Doc comments here are the help text.

use clap::{Args, Parser, Subcommand};

use crate::commands;

/// A release phase for Amazon ECS: run the migration from the release's own image, gate the
/// rollout on it, roll the service and follow it to the end. `shipmate local` is an ECS +
/// CloudWatch Logs endpoint on this machine to rehearse it on.
#[derive(Debug, Parser)]
#[command(
    name = "shipmate",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace). `SHIPMATE_LOG` overrides.
    #[arg(long, short, global = true, action = clap::ArgAction::Count, help_heading = "Global options")]
    pub(crate) verbose: u8,
    /// Only errors on stderr.
    #[arg(long, short, global = true, help_heading = "Global options")]
    pub(crate) quiet: bool,
    /// When to colour stderr: auto (a terminal without NO_COLOR), always, never.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = ColorChoice::Auto,
        env = "SHIPMATE_COLOR",
        help_heading = "Global options"
    )]
    pub(crate) color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write a first shipmate.toml for live services, the IAM policy for the CI role and the
    /// CI step (GitHub Actions, CodeBuild); changes nothing in AWS.
    Init(commands::init::InitArgs),
    /// Release a new image: migrate from it, then roll the service and follow the rollout.
    Deploy(commands::deploy::DeployArgs),
    /// Complete a release that `deploy --wait-until deployed` returned from during ECS's bake
    /// time: wait for the deployment to finish, then run the post-deploy command. Takes the
    /// deploy's own flags; idempotent.
    Finish(commands::deploy::DeployArgs),
    /// Run a one-off command as an ECS task with the service's settings; exits with its exit code.
    Run(commands::run::RunArgs),
    /// Show what `deploy` would do, changing nothing.
    Plan(commands::plan::PlanArgs),
    /// Check, reading only, what would make a release fail before it does (log group, execution
    /// role, image, network, a leftover lock, …), with a hint for each problem.
    Doctor(commands::doctor::DoctorArgs),
    /// Show where services stand: deployments, the release lock, recent releases.
    Status(commands::status::StatusArgs),
    /// Roll services back to what was live before their last release, and wait.
    Rollback(commands::rollback::RollbackArgs),
    /// Release a stuck release lock (asks first).
    Unlock(commands::unlock::UnlockArgs),
    /// An ECS + CloudWatch Logs endpoint on this machine that really runs tasks.
    #[command(subcommand)]
    Local(commands::local::LocalCommand),
    /// The whole story on this machine: an embedded shipmate local, the example Django project,
    /// a 2-task web service and a worker, and three releases of both through `shipmate deploy`
    /// (one of them gated).
    Demo(commands::demo::DemoArgs),
    /// Print the least-privilege IAM policy a CI job needs to release its services.
    IamPolicy(commands::iam_policy::IamPolicyArgs),
}
