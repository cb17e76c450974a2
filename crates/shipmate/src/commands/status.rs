//! `shipmate status`.

use crate::{ExitStatus, Printer};

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {}

pub(crate) async fn status(_args: StatusArgs, printer: &Printer) -> ExitStatus {
    printer.error(&anyhow::anyhow!("`shipmate status` is not implemented yet"));
    ExitStatus::Failure
}
