//! `shipmate rollback`.

use crate::{ExitStatus, Printer};

#[derive(Debug, clap::Args)]
pub(crate) struct RollbackArgs {}

pub(crate) async fn rollback(_args: RollbackArgs, printer: &Printer) -> ExitStatus {
    printer.error(&anyhow::anyhow!(
        "`shipmate rollback` is not implemented yet"
    ));
    ExitStatus::Failure
}
