//! One module per subcommand; each owns its clap arguments and returns an [`ExitStatus`].

pub(crate) mod demo;
pub(crate) mod deploy;
pub(crate) mod doctor;
pub(crate) mod iam_policy;
pub(crate) mod init;
pub(crate) mod local;
pub(crate) mod plan;
pub(crate) mod rollback;
pub(crate) mod run;
pub(crate) mod status;
pub(crate) mod unlock;

use crate::args::Command;
use crate::{ExitStatus, Printer};

pub(crate) async fn run(command: Command, printer: &Printer) -> ExitStatus {
    match command {
        Command::Deploy(args) => deploy::deploy(args, printer).await,
        Command::Finish(args) => deploy::finish_release(args, printer).await,
        Command::Run(args) => run::run(args, printer).await,
        Command::Plan(args) => plan::plan(args, printer).await,
        Command::Doctor(args) => doctor::doctor(args, printer).await,
        Command::Status(args) => status::status(args, printer).await,
        Command::Rollback(args) => rollback::rollback(args, printer).await,
        Command::Unlock(args) => unlock::unlock(args, printer).await,
        Command::Local(command) => local::local(command, printer).await,
        Command::Demo(args) => demo::demo(args, printer).await,
        Command::IamPolicy(args) => iam_policy::iam_policy(args, printer).await,
        Command::Init(args) => init::init(args, printer).await,
    }
}
