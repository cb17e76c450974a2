//! `shipmate run`: a one-off task with the service's settings; exits with its exit code.

use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::render::finish;
use crate::session::{Session, report_error};
use crate::settings::{RunFlags, TargetArgs, run_request};

/// Run a one-off command as an ECS task with the service's network settings, stream its logs
/// and exit with its exit code (no TTY: not for interactive commands).
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    #[command(flatten)]
    pub(crate) flags: RunFlags,
}

pub(crate) async fn run(args: RunArgs, printer: &Printer) -> ExitStatus {
    let request = match run_request(&args.target, &args.flags) {
        Ok(request) => request,
        Err(error) => {
            printer.error(&error);
            return ExitStatus::Usage;
        }
    };
    let session = Session::start(&args.target, printer, &request.cluster).await;
    let cluster = request.cluster.clone();
    let service = request.service.clone();
    let finished = session.driver.run(request).await;
    let (mut report, result) = (finished.report, finished.result);
    session.end_progress();
    let status = match &result {
        Ok(code) => ExitStatus::external(*code),
        Err(error) => report_error(printer, error, &cluster, &Vec::from_iter(service)),
    };
    finish(printer, args.target.output, "run", &mut report, status);
    status
}
