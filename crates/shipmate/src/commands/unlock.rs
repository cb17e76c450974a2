//! `shipmate unlock`: releases a stuck release lock, after a person confirmed it.

use std::io::{BufRead, IsTerminal, Write};

use shipmate_release::duration::format_duration;
use shipmate_release::release::LockView;

use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::session::{Session, report_error};
use crate::settings::{LockKeyFlag, TargetArgs, ledger_target};

/// Release the release lock held by another release (a CI job that was killed, a laptop that
/// went away). Asks for confirmation. The holder's own re-run resumes it instead; a holder silent
/// for longer than the lock lease is taken over by the next release without this command.
#[derive(Debug, clap::Args)]
pub(crate) struct UnlockArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    #[command(flatten)]
    pub(crate) lock: LockKeyFlag,
    /// Do not ask (for scripts).
    #[arg(long, short)]
    pub(crate) yes: bool,
    /// Release it even though the holder's migration task is still running.
    #[arg(long)]
    pub(crate) force: bool,
}

pub(crate) async fn unlock(args: UnlockArgs, printer: &Printer) -> ExitStatus {
    let request = match ledger_target(&args.target, args.lock.lock_key.as_deref()) {
        Ok(request) => request,
        Err(error) => {
            printer.error(&error);
            return ExitStatus::Usage;
        }
    };
    let cluster = request.cluster.clone();
    let services = request.services.clone();
    let by = format!("shipmate unlock by {}", request.by);
    let session = Session::start(&args.target, printer, &cluster).await;
    let lock: LockView = match session.driver.unlock_inspect(request).await {
        Ok(lock) => lock,
        Err(error) => return report_error(printer, &error, &cluster, &services),
    };
    session.end_progress();
    let (Some(entry), Some(holder)) = (lock.open.first().cloned(), lock.holder()) else {
        printer.info(&format!(
            "the release lock ({}) is free: nothing to do",
            lock.family
        ));
        return ExitStatus::Success;
    };
    let beat = entry
        .record
        .as_ref()
        .and_then(|r| r.heartbeat)
        .map(|t| {
            format!(
                "; last heartbeat {} ago",
                format_duration(std::time::Duration::from_millis(
                    u64::try_from(lock.read_at - t).unwrap_or(0) / 1000 * 1000
                ))
            )
        })
        .unwrap_or_default();
    printer.info(&format!(
        "the release lock ({}) is held by {holder}{beat}",
        lock.family
    ));
    if let (Some(task), Some(true)) = (&holder.migration_task, lock.holder_migrating) {
        if !args.force {
            printer.error(&anyhow::anyhow!(
                "its migration task {task} is still running: releasing the lock now could let a second migration run beside it"
            ));
            printer.hint(&format!(
                "stop it first (aws ecs stop-task --cluster {cluster} --task {task}), or pass --force"
            ));
            return ExitStatus::Usage;
        }
        printer.info(&format!(
            "its migration task {task} is still running (--force)"
        ));
    }
    if !args.yes && !confirm(printer) {
        printer.info("left as it is");
        return ExitStatus::Usage;
    }
    match session.driver.unlock_close(entry, by).await {
        Ok(()) => {
            printer.info(&format!(
                "released the lock held by release {}",
                holder.release_id
            ));
            ExitStatus::Success
        }
        Err(error) => report_error(printer, &error, &cluster, &services),
    }
}

/// Asks on the terminal; without one (a script), only `--yes` releases a lock.
fn confirm(printer: &Printer) -> bool {
    if !std::io::stdin().is_terminal() {
        printer.error(&anyhow::anyhow!(
            "not asking on a non-interactive stdin: pass --yes to release the lock"
        ));
        return false;
    }
    #[expect(clippy::print_stderr, reason = "the prompt goes where people look")]
    {
        eprint!("release it? [y/N] ");
    }
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim(), "y" | "Y" | "yes")
}
