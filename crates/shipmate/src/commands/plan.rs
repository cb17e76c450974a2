//! `shipmate plan`.

use crate::{ExitStatus, Printer};

#[derive(Debug, clap::Args)]
pub(crate) struct PlanArgs {}

pub(crate) async fn plan(_args: PlanArgs, printer: &Printer) -> ExitStatus {
    printer.error(&anyhow::anyhow!("`shipmate plan` is not implemented yet"));
    ExitStatus::Failure
}
