//! `shipmate rollback`: back to the previous revision, waiting for steady state.

use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::render::{finish, short_td};
use crate::session::{Session, report_error};
use crate::settings::{RollbackFlags, TargetArgs, rollback_request};

/// Roll the service back to its previous task definition revision (or --to) and wait for it.
#[derive(Debug, clap::Args)]
pub(crate) struct RollbackArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    #[command(flatten)]
    pub(crate) flags: RollbackFlags,
}

pub(crate) async fn rollback(args: RollbackArgs, printer: &Printer) -> ExitStatus {
    let request = match rollback_request(&args.target, &args.flags) {
        Ok(request) => request,
        Err(error) => {
            printer.error(&error);
            return ExitStatus::Usage;
        }
    };
    let session = Session::start(&args.target, printer, &request.cluster).await;
    let (mut report, result) = session.driver.rollback(&request).await;
    session.end_progress();
    let status = match &result {
        Ok(()) => {
            printer.info(&format!(
                "service {} is on {}",
                request.service,
                report.task_definition.as_deref().map_or("?", short_td)
            ));
            ExitStatus::Success
        }
        Err(error) => report_error(printer, error, &request.cluster, Some(&request.service)),
    };
    finish(printer, args.target.output, "rollback", &mut report, status);
    status
}
