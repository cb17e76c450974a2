//! `shipmate run`.

use crate::{ExitStatus, Printer};

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {}

pub(crate) async fn run(_args: RunArgs, printer: &Printer) -> ExitStatus {
    printer.error(&anyhow::anyhow!("`shipmate run` is not implemented yet"));
    ExitStatus::Failure
}
