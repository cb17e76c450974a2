//! What every release command sets up: the reporter, the SDK clients, the driver, and the
//! signal handler that turns SIGINT/SIGTERM into the driver's cancellation.

use std::sync::Arc;

use shipmate_release::error::ReleaseError;
use shipmate_release_aws::{Clients, ConnectOptions, Driver, TokioPace};
use tokio_util::sync::CancellationToken;

use crate::exit::ExitStatus;
use crate::hints::hints;
use crate::printer::Printer;
use crate::render::CliReporter;
use crate::settings::TargetArgs;

pub(crate) struct Session {
    pub(crate) driver: Driver,
    reporter: Arc<CliReporter>,
    cancel: CancellationToken,
}

impl Session {
    pub(crate) async fn start(target: &TargetArgs, printer: &Printer, cluster: &str) -> Session {
        let reporter = Arc::new(CliReporter::new(printer, target.output, cluster));
        let clients = Clients::connect(
            &ConnectOptions {
                max_attempts: target.max_attempts,
            },
            reporter.clone(),
        )
        .await;
        let cancel = CancellationToken::new();
        spawn_signal_handler(cancel.clone(), printer.clone());
        Session {
            driver: Driver::new(
                clients,
                cluster,
                reporter.clone(),
                Arc::new(TokioPace),
                cancel.clone(),
            ),
            reporter,
            cancel,
        }
    }
}

impl Session {
    /// Clears the progress spinner (if any) before the command's summary and errors.
    pub(crate) fn end_progress(&self) {
        self.reporter.end_progress();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Stops the signal task from outliving the command.
        self.cancel.cancel();
    }
}

fn spawn_signal_handler(cancel: CancellationToken, printer: Printer) {
    tokio::spawn(async move {
        let Ok(mut terminate) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        let mut interrupts = 0;
        loop {
            let name = tokio::select! {
                () = cancel.cancelled(), if interrupts == 0 => return,
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            interrupts += 1;
            if interrupts == 1 {
                printer.info(&format!(
                    "{name} received: cancelling (again to exit at once)"
                ));
                cancel.cancel();
            } else {
                printer.info(&format!(
                    "{name} received again: exiting without cleaning up"
                ));
                std::process::exit(130);
            }
        }
    });
}

/// Prints a release error with its hints and returns the exit status it maps to.
pub(crate) fn report_error(
    printer: &Printer,
    error: &ReleaseError,
    cluster: &str,
    services: &[String],
) -> ExitStatus {
    printer.error(&anyhow::anyhow!("{error}"));
    for hint in hints(error, cluster, services) {
        printer.hint(&hint);
    }
    ExitStatus::of(error)
}
