//! `shipmate deploy`.

use crate::{ExitStatus, Printer};

#[derive(Debug, clap::Args)]
pub(crate) struct DeployArgs {}

pub(crate) async fn deploy(_args: DeployArgs, printer: &Printer) -> ExitStatus {
    printer.error(&anyhow::anyhow!("`shipmate deploy` is not implemented yet"));
    ExitStatus::Failure
}
