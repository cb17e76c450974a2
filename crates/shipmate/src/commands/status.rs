//! `shipmate status`: deployments and recent releases of a service.

use shipmate_release::ids::release_of;
use shipmate_release::task::{TaskOutcome, TaskProgress, assess_task, task_id};

use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::render::short_td;
use crate::session::{Session, report_error};
use crate::settings::{OutputFormat, TargetArgs, service_target};

/// Show where a service stands: its deployments and the recent releases' migrations.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
}

pub(crate) async fn status(args: StatusArgs, printer: &Printer) -> ExitStatus {
    let (cluster, service) = match service_target(&args.target) {
        Ok(target) => target,
        Err(error) => {
            printer.error(&error);
            return ExitStatus::Usage;
        }
    };
    let session = Session::start(&args.target, printer, &cluster).await;
    let outcome = session.driver.status(&service).await;
    session.end_progress();
    let status = match outcome {
        Ok(status) => status,
        Err(error) => return report_error(printer, &error, &cluster, Some(&service)),
    };
    if args.target.output == OutputFormat::Json {
        let value = serde_json::json!({
            "service": status.service,
            "console_url": status.console_url,
            "releases": status.releases,
        });
        printer.data(&value.to_string());
        return ExitStatus::Success;
    }
    let view = &status.service;
    printer.data(&format!(
        "service {} ({}): {} running / {} desired, {} pending, task definition {}",
        view.service_name,
        view.status,
        view.running_count,
        view.desired_count,
        view.pending_count,
        short_td(&view.task_definition)
    ));
    printer.data("deployments:");
    for d in &view.deployments {
        printer.data(&format!(
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
    printer.data("recent releases (shipmate one-off tasks):");
    if status.releases.is_empty() {
        printer.data("  none visible (ECS keeps stopped tasks for about an hour)");
    }
    for task in &status.releases {
        let outcome = match assess_task(task) {
            TaskProgress::Finished(TaskOutcome::Succeeded) => "succeeded".to_owned(),
            TaskProgress::Finished(TaskOutcome::Exited { exit_code, .. }) => {
                format!("exited {exit_code}")
            }
            TaskProgress::Finished(TaskOutcome::FailedToStart { reason, .. }) => {
                format!("failed to start: {reason}")
            }
            _ => task.last_status.to_lowercase(),
        };
        printer.data(&format!(
            "  release {} task {} {}",
            task.started_by
                .as_deref()
                .and_then(release_of)
                .unwrap_or("?"),
            task_id(&task.task_arn),
            outcome
        ));
    }
    if let Some(url) = &status.console_url {
        printer.data(&format!("console: {url}"));
    }
    ExitStatus::Success
}
