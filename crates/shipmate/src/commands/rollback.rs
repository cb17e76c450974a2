//! `shipmate rollback`: back to the previous revision, waiting for steady state.

use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::render::{finish, short_td};
use crate::session::{Session, report_error};
use crate::settings::{RollbackFlags, TargetArgs, rollback_request};

/// Roll the service back to the last revision that was live before the current one (from
/// shipmate's release ledger, or --to) and wait for it. A rollback is a release: it takes the
/// release lock, so it never runs beside a migration.
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
    let cluster = request.cluster.clone();
    let service = request.service.clone();
    let dry_run = request.dry_run;
    let finished = session.driver.rollback(request).await;
    let (mut report, result) = (finished.report, finished.result);
    session.end_progress();
    let status = match &result {
        Ok(()) if dry_run => {
            printer.data(&format!(
                "shipmate rollback would move service {service} from {} to {}",
                report
                    .previous_task_definition
                    .as_deref()
                    .map_or("?", short_td),
                report.task_definition.as_deref().map_or("?", short_td)
            ));
            ExitStatus::Success
        }
        Ok(()) => {
            printer.info(&format!(
                "service {service} is on {}",
                report.task_definition.as_deref().map_or("?", short_td)
            ));
            ExitStatus::Success
        }
        Err(error) => report_error(printer, error, &cluster, Some(&service)),
    };
    finish(printer, args.target.output, "rollback", &mut report, status);
    status
}
