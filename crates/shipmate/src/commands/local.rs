//! `shipmate local serve` and `shipmate local push`.

use crate::{ExitStatus, Printer};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum LocalCommand {
    /// Serve ECS and CloudWatch Logs on one local port.
    Serve {},
    /// Snapshot a directory into the endpoint's image store.
    Push {},
}

pub(crate) async fn local(_command: LocalCommand, printer: &Printer) -> ExitStatus {
    printer.error(&anyhow::anyhow!("`shipmate local` is not implemented yet"));
    ExitStatus::Failure
}
