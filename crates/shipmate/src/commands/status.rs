//! `shipmate status`: each service's deployments, where `shipmate rollback` would take it and
//! its `shipmate run` tasks; who holds the release lock; the recent releases and how they ended.

use shipmate_release::duration::format_duration;
use shipmate_release::ledger::Entry;
use shipmate_release::release::{ServiceStatus, Status};
use shipmate_release::task::{TaskOutcome, TaskProgress, assess_task, task_id};

use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::render::short_td;
use crate::session::{Session, report_error};
use crate::settings::{LockKeyFlag, OutputFormat, TargetArgs, ledger_target};

/// Show where the services stand: their deployments, who holds their release lock, the recent
/// releases and what a rollback would pick.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    #[command(flatten)]
    pub(crate) lock: LockKeyFlag,
}

pub(crate) async fn status(args: StatusArgs, printer: &Printer) -> ExitStatus {
    let request = match ledger_target(&args.target, args.lock.lock_key.as_deref()) {
        Ok(request) => request,
        Err(error) => {
            printer.error(&error);
            return ExitStatus::Usage;
        }
    };
    let cluster = request.cluster.clone();
    let services = request.services.clone();
    let session = Session::start(&args.target, printer, &cluster).await;
    let outcome = session.driver.status(request).await;
    session.end_progress();
    let status = match outcome {
        Ok(status) => status,
        Err(error) => return report_error(printer, &error, &cluster, &services),
    };
    if args.target.output == OutputFormat::Json {
        printer.data(&serde_json::to_string(&status).unwrap_or_default());
        return ExitStatus::Success;
    }
    for line in human(&status) {
        printer.data(&line);
    }
    ExitStatus::Success
}

fn ago(now: i64, then: i64) -> String {
    format!(
        "{} ago",
        format_duration(std::time::Duration::from_millis(
            u64::try_from(now - then).unwrap_or(0) / 1000 * 1000
        ))
    )
}

fn release_line(entry: &Entry, now: i64) -> String {
    let Some(record) = &entry.record else {
        return format!("  #{:<4} (not a shipmate entry)", entry.revision);
    };
    let outcome = match (record.outcome, entry.open) {
        (Some(outcome), _) => outcome.label().to_owned(),
        (None, true) => format!("in progress ({})", record.state.label()),
        (None, false) => "closed".to_owned(),
    };
    let migration = match &record.migration {
        Some(m) => match (m.passed, &m.task_arn) {
            (Some(true), Some(task)) => format!(", migration {} passed", task_id(task)),
            (Some(false), Some(task)) => format!(", migration {} failed", task_id(task)),
            (_, Some(task)) => format!(", migration {}", task_id(task)),
            _ => String::new(),
        },
        None => String::new(),
    };
    let moves: Vec<String> = record
        .moves
        .iter()
        .filter_map(|m| {
            Some(format!(
                "{} -> {}",
                short_td(m.from.as_ref()?),
                short_td(m.to.as_ref()?)
            ))
        })
        .collect();
    let moved = if moves.is_empty() {
        String::new()
    } else {
        format!(" {}", moves.join(", "))
    };
    let when = entry
        .registered_at
        .map(|t| format!(", {}", ago(now, t)))
        .unwrap_or_default();
    format!(
        "  #{:<4} {} {:<17} {}{moved}: {outcome}{migration}{when}{}",
        entry.revision,
        record.release_id,
        record.kind.label(),
        record.image.as_deref().unwrap_or("-"),
        if record.by.is_empty() {
            String::new()
        } else {
            format!(", by {}", record.by)
        }
    )
}

fn human(status: &Status) -> Vec<String> {
    let now = status.lock.read_at;
    let mut lines = Vec::new();
    for service in &status.services {
        service_lines(service, &mut lines);
    }
    lines.push(format!("release lock ({}):", status.lock.family));
    match status.lock.open.split_first() {
        None => lines.push("  free".to_owned()),
        Some((holder, queue)) => {
            let beat = holder
                .record
                .as_ref()
                .and_then(|r| r.heartbeat)
                .map(|t| format!(", last heartbeat {}", ago(now, t)))
                .unwrap_or_default();
            lines.push(format!(
                "  held by {}{beat}",
                status
                    .lock
                    .holder()
                    .map_or_else(|| short_td(&holder.arn).to_owned(), |h| h.to_string())
            ));
            for waiting in queue {
                lines.push(format!(
                    "  then   {}",
                    release_line(waiting, now).trim_start()
                ));
            }
        }
    }
    lines.push("releases (newest first):".to_owned());
    if status.releases.is_empty() {
        lines.push("  none on record yet".to_owned());
    }
    for entry in &status.releases {
        lines.push(release_line(entry, now));
    }
    lines
}

/// One service's part of `status`: its deployments, where a rollback would take it, its
/// `shipmate run` tasks.
fn service_lines(status: &ServiceStatus, lines: &mut Vec<String>) {
    let view = &status.service;
    lines.push(format!(
        "service {} ({}): {} running / {} desired, {} pending, task definition {}",
        view.service_name,
        view.status,
        view.running_count,
        view.desired_count,
        view.pending_count,
        short_td(&view.task_definition)
    ));
    lines.push("deployments:".to_owned());
    for d in &view.deployments {
        lines.push(format!(
            "  {:<8} {:<28} {} running {}/{} pending {} failed {}{}",
            d.status,
            d.id,
            short_td(&d.task_definition),
            d.running_count,
            d.desired_count,
            d.pending_count,
            d.failed_tasks,
            d.rollout_state
                .as_ref()
                .map(|s| format!(" rollout {s}"))
                .unwrap_or_default()
        ));
    }
    let shape = &view.shape;
    lines.push(format!(
        "deployment: {} controller{}{}",
        shape.controller,
        if shape.controller == "ECS" {
            format!(", {}", shape.strategy)
        } else {
            String::new()
        },
        shape
            .bake_time_minutes
            .filter(|_| shape.has_bake())
            .map(|m| format!(", bake time {m} min"))
            .unwrap_or_default()
    ));
    for hook in shape.our_hooks() {
        lines.push(format!(
            "  leftover PAUSE hook of shipmate release {} at {}: it pauses every deployment of the service until removed; the next shipmate release removes it",
            hook.release_id().unwrap_or_default(),
            hook.stages.join(", ")
        ));
    }
    if !status.deployments.is_empty() {
        lines.push("ECS's deployment records (newest first):".to_owned());
        for record in &status.deployments {
            let id = record.arn.rsplit('/').next().unwrap_or(&record.arn);
            let mut line = format!("  {id} {}", record.status);
            if let Some(stage) = &record.lifecycle_stage {
                line.push_str(&format!(" at {stage}"));
            }
            if let Some(reason) = record
                .rollback_reason
                .as_ref()
                .or(record.status_reason.as_ref())
            {
                line.push_str(&format!(": {reason}"));
            }
            lines.push(line);
        }
    }
    lines.push(format!(
        "rollback would return to: {}",
        status
            .rollback_to
            .as_deref()
            .map_or("nothing on record (give --to)", short_td)
    ));
    if !status.run_tasks.is_empty() {
        lines.push("shipmate run tasks (ECS keeps stopped tasks about an hour):".to_owned());
        for task in &status.run_tasks {
            let outcome = match assess_task(task) {
                TaskProgress::Finished(TaskOutcome::Succeeded) => "exited 0".to_owned(),
                TaskProgress::Finished(TaskOutcome::Exited { exit_code, .. }) => {
                    format!("exited {exit_code}")
                }
                TaskProgress::Finished(TaskOutcome::FailedToStart { reason, .. }) => {
                    format!("failed to start: {reason}")
                }
                _ => task.last_status.to_lowercase(),
            };
            lines.push(format!("  task {} {outcome}", task_id(&task.task_arn)));
        }
    }
    if let Some(url) = status
        .console_url
        .as_ref()
        .filter(|_| crate::hints::console_links_apply())
    {
        lines.push(format!("console: {url}"));
    }
}
