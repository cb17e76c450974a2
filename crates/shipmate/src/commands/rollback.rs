//! `shipmate rollback`: back to the previous revision, waiting for steady state.

use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::render::{finish, short_td};
use crate::session::{Session, report_error};
use crate::settings::{RollbackFlags, TargetArgs, rollback_request};

/// Roll the service back to the last revision that was live before the current one (from
/// shipmate's release ledger, or --to) and wait for it. A rollback is a release: it takes the
/// release lock, so it never runs beside a migration. With several --service, each goes back to
/// what it ran before the last release that moved it (--to takes one service).
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
    let services = request.services.clone();
    let dry_run = request.dry_run;
    let finished = session.driver.rollback(request).await;
    let (mut report, result) = (finished.report, finished.result);
    session.end_progress();
    let revision = |td: &Option<String>| td.as_deref().map_or("?", short_td).to_owned();
    let status = match &result {
        Ok(()) if dry_run => {
            for service in &report.services {
                let (from, to) = (
                    revision(&service.previous_task_definition),
                    revision(&service.task_definition),
                );
                printer.data(&if from == to {
                    format!(
                        "shipmate rollback would leave service {} on {to}",
                        service.service
                    )
                } else {
                    format!(
                        "shipmate rollback would move service {} from {from} to {to}",
                        service.service
                    )
                });
            }
            ExitStatus::Success
        }
        Ok(()) => {
            for service in &report.services {
                printer.info(&format!(
                    "service {} is on {}",
                    service.service,
                    revision(&service.task_definition)
                ));
            }
            ExitStatus::Success
        }
        Err(error) => report_error(printer, error, &cluster, &services),
    };
    finish(printer, args.target.output, "rollback", &mut report, status);
    status
}
