//! Renders the release's events: one plain line per event on stderr for people (colour only
//! when the Printer says so), and, with `--output json`, every event as a JSON line on stdout
//! followed by the final report. CI logs get the same plain lines as a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use shipmate_release::duration::format_duration;
use shipmate_release::event::Event;
use shipmate_release::preset::frame_of;
use shipmate_release::report::Report;
use shipmate_release::task::{TaskOutcome, task_id};
use shipmate_release_aws::Reporter;

use crate::Printer;
use crate::exit::ExitStatus;
use crate::settings::OutputFormat;

pub(crate) struct CliReporter {
    printer: Printer,
    json: bool,
    cluster: String,
    /// Serialises lines from concurrent callers (the retry interceptor runs on SDK tasks).
    lock: Mutex<()>,
    /// A spinner with the current step, only when stderr is a terminal (never in CI logs).
    spinner: Option<indicatif::ProgressBar>,
    /// The phase under way, for lines that read differently in a deploy and a rollback.
    phase: Mutex<&'static str>,
}

impl CliReporter {
    pub(crate) fn new(printer: &Printer, output: OutputFormat, cluster: &str) -> CliReporter {
        let spinner = (std::io::stderr().is_terminal() && !printer.quiet()).then(|| {
            let spinner = indicatif::ProgressBar::new_spinner();
            spinner.enable_steady_tick(std::time::Duration::from_millis(120));
            spinner
        });
        CliReporter {
            printer: printer.clone(),
            json: output == OutputFormat::Json,
            cluster: cluster.to_owned(),
            lock: Mutex::new(()),
            spinner,
            phase: Mutex::new("deploy"),
        }
    }

    /// Removes the spinner before the command prints its summary.
    pub(crate) fn end_progress(&self) {
        if let Some(spinner) = &self.spinner {
            spinner.finish_and_clear();
        }
    }

    /// What the spinner says while waiting after `event`.
    fn status(event: &Event) -> Option<String> {
        Some(match event {
            Event::PhaseStarted { phase } => format!("{}…", phase.label()),
            Event::TaskStatus {
                role, last_status, ..
            } => format!("{}: task is {last_status}…", role.label()),
            Event::LockWaiting { holder, .. } => format!(
                "lock: waiting for {}…",
                holder.as_ref().map_or_else(
                    || "another release".to_owned(),
                    |h| format!("release {} ({})", h.release_id, h.state)
                )
            ),
            Event::RolloutProgress {
                service,
                running,
                desired,
                ..
            } => format!("deploy: {service} {running}/{desired} new tasks running…"),
            Event::ServiceUpdated { .. } => "deploy: waiting for the rollout…".to_owned(),
            Event::DeploymentStage { service, stage, .. } => format!(
                "deploy: {service} {}…",
                stage.as_deref().unwrap_or("deploying")
            ),
            _ => return None,
        })
    }

    /// A preset frame as a log line: migrations and their classified operations, refusals;
    /// `None` for the bookkeeping frames (start, applied, end).
    fn frame_line(&self, frame: &str) -> Option<String> {
        let value: serde_json::Value = serde_json::from_str(frame).ok()?;
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
        match value["kind"].as_str()? {
            "migration" => Some(format!(
                "plan: {} ({}, {})",
                text("id"),
                text("marker").replace('_', " "),
                if text("run") == "contract" {
                    "after the deployment"
                } else {
                    "now"
                }
            )),
            "operation" => {
                let class = text("class");
                let flag = match class.as_str() {
                    "safe" => String::new(),
                    other => self.paint(
                        if other == "unsafe" { "31" } else { "33" },
                        &format!(" [{other}: {}]", text("why")),
                    ),
                };
                Some(format!("plan:   {}{flag}", text("text")))
            }
            "refusal" => Some(self.paint(
                "31",
                &format!(
                    "refused: {}{}",
                    text("why"),
                    value["migration"]
                        .as_str()
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default()
                ),
            )),
            _ => None,
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.printer.color() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn human(&self, event: &Event) -> Option<String> {
        let line = match event {
            Event::ReleaseStarted {
                release_id,
                cluster,
                services,
                image,
            } => format!(
                "release {release_id}: {image} -> {} {} in cluster {cluster}",
                if services.len() == 1 { "service" } else { "services" },
                services.join(", ")
            ),
            Event::ReleaseResumed { entry, state } => format!(
                "lock: carrying on the interrupted run of this release ({}, it was {state})",
                short_td(entry)
            ),
            Event::PhaseStarted { .. } | Event::PhaseFinished { .. } => return None,
            Event::RevisionReady {
                service,
                task_definition,
                containers,
                image_from,
                reused,
                ..
            } => {
                let containers = format!(
                    "{} {}",
                    if containers.len() == 1 { "container" } else { "containers" },
                    containers.join(", ")
                );
                if image_from.is_empty() {
                    format!(
                        "prepare: {service}: task definition {} ({containers}), as the interrupted run registered it",
                        short_td(task_definition)
                    )
                } else {
                    format!(
                        "prepare: {service}: {} task definition {} ({containers}; image was {image_from})",
                        if *reused { "reusing" } else { "registered" },
                        short_td(task_definition)
                    )
                }
            }
            Event::AlreadyLive {
                service,
                task_definition,
            } => format!(
                "{}: {service} already runs {}; its rollout is skipped",
                self.phase.lock().map_or("deploy", |p| *p),
                short_td(task_definition)
            ),
            Event::ServiceChanged { service, was, now } => format!(
                "deploy: {service} moved from {} to {} meanwhile (changed outside this release); releasing the image on top of {}",
                short_td(was),
                short_td(now),
                short_td(now)
            ),
            Event::LockWaiting {
                holder,
                queue,
                waited_ms,
                ..
            } => {
                let who = holder.as_ref().map_or_else(
                    || "another release".to_owned(),
                    |h| format!("{h}"),
                );
                let behind = if *queue > 1 {
                    format!(" ({queue} releases ahead)")
                } else {
                    String::new()
                };
                let waited = if *waited_ms > 0 {
                    format!(" after {}", format_duration(std::time::Duration::from_millis(*waited_ms)))
                } else {
                    String::new()
                };
                format!("lock: waiting for {who}{behind}{waited}")
            }
            Event::LockAcquired { waited_ms, .. } => {
                if *waited_ms < 1_000 {
                    return None;
                }
                format!(
                    "lock: acquired after {}",
                    format_duration(std::time::Duration::from_millis(*waited_ms))
                )
            }
            Event::LockBroken {
                holder, silent_ms, ..
            } => format!(
                "lock: {} stopped heartbeating {} ago and runs no migration: taking its lock over",
                holder
                    .as_ref()
                    .map_or_else(|| "a release".to_owned(), |h| format!("release {}", h.release_id)),
                format_duration(std::time::Duration::from_millis(*silent_ms))
            ),
            Event::LockLost { entry } => self.paint(
                "33",
                &format!(
                    "lock: this release stalled and another took its lock over ({}); taking it again",
                    short_td(entry)
                ),
            ),
            Event::MigrationSkipped { task_arn } => format!(
                "migrate: this release already migrated (task {}); not running it again",
                task_id(task_arn)
            ),
            Event::PreviousAttemptUnknown { task_arn } => format!(
                "migrate: the interrupted run's migration task {} is no longer known to ECS (stopped over an hour ago); migrating again",
                task_id(task_arn)
            ),
            Event::WaitingForEarlierAttempt { task_arn } => format!(
                "migrate: an earlier run of this release started task {} with other settings; waiting for it to stop",
                task_id(task_arn)
            ),
            Event::NewTasksStopped {
                service,
                summary,
                limit,
                ..
            } => self.paint(
                "33",
                &format!(
                    "deploy: {service}: {summary}{}",
                    limit.map(|l| format!(" (the release fails at {l})")).unwrap_or_default()
                ),
            ),
            Event::RollbackPlanned { service, from, to } if from == to => format!(
                "rollback: {service} would stay on {} (its last release did not go live on it, or is undone already)",
                short_td(to)
            ),
            Event::RollbackPlanned { service, from, to } => format!(
                "rollback: would move {service} from {} to {} (dry run: nothing changed)",
                short_td(from),
                short_td(to)
            ),
            Event::TaskStarted {
                role,
                task_arn,
                attached,
                attempt,
            } => format!(
                "{}: {} task {}{}",
                role.label(),
                if *attached {
                    "attached to running"
                } else {
                    "started"
                },
                task_id(task_arn),
                // Attempts count within one release: shown only once an earlier one failed.
                if *attempt > 0 {
                    format!(" (attempt {})", attempt + 1)
                } else {
                    String::new()
                }
            ),
            Event::PreviousAttemptFailed { task_arn, attempt } => format!(
                "migrate: an earlier attempt of this release (task {}) failed; starting attempt {}",
                task_id(task_arn),
                attempt + 1
            ),
            Event::TaskStatus {
                role, last_status, ..
            } => format!("{}: task is {last_status}", role.label()),
            Event::LogLine { role, message, .. } => {
                let text = match frame_of(message) {
                    // A preset's frame: its plan, read as people read it (or nothing).
                    Some(frame) => self.frame_line(frame)?,
                    None => message.clone(),
                };
                return Some(format!(
                    "{} {text}",
                    self.paint("2", &format!("{} |", role.label()))
                ));
            }
            Event::MigrationPlanned {
                role,
                verdict,
                applied,
                held_back,
                flagged,
            } => {
                let mut line = match verdict.as_str() {
                    "nothing" => format!("{}: nothing to migrate", role.label()),
                    "refused" => format!("{}: refused, nothing applied", role.label()),
                    "planned" => format!("{}: plan only, nothing applied", role.label()),
                    _ => format!(
                        "{}: applied {} migration{}",
                        role.label(),
                        applied.len(),
                        if applied.len() == 1 { "" } else { "s" }
                    ),
                };
                if !held_back.is_empty() {
                    line.push_str(&format!(
                        "; held back until the deployment is complete: {}",
                        held_back.join(", ")
                    ));
                }
                if !flagged.is_empty() && verdict != "refused" {
                    line.push_str(&format!(
                        "\n{}: not judged safe for the serving code: {}",
                        role.label(),
                        flagged.join("; ")
                    ));
                }
                line
            }
            Event::TaskFinished {
                role,
                outcome,
                duration_ms,
                ..
            } => {
                let took = format_duration(std::time::Duration::from_millis(*duration_ms));
                match outcome {
                    TaskOutcome::Succeeded => {
                        format!("{}: succeeded (exit code 0) in {took}", role.label())
                    }
                    TaskOutcome::Exited {
                        container,
                        exit_code,
                        ..
                    } => {
                        format!(
                            "{}: container {container} exited with code {exit_code} after {took}",
                            role.label()
                        )
                    }
                    TaskOutcome::FailedToStart { reason, .. } => {
                        format!("{}: failed to start: {reason}", role.label())
                    }
                }
            }
            Event::Retrying {
                operation,
                error,
                attempt,
                max_attempts,
            } => self.paint(
                "33",
                &format!("retrying {operation} after {error} (attempt {attempt}/{max_attempts})"),
            ),
            Event::ServiceUpdated {
                service,
                task_definition,
                deployment_id,
            } => format!(
                "deploy: {service} updated to {}{}",
                short_td(task_definition),
                deployment_id
                    .as_ref()
                    .map(|id| format!(" (deployment {id})"))
                    .unwrap_or_default()
            ),
            Event::ServiceEvent { message } => format!("{} {message}", self.paint("2", "ecs |")),
            Event::RolloutProgress {
                service,
                running,
                desired,
                pending,
                failed_tasks,
            } => format!(
                "deploy: {service} {running}/{desired} new tasks running, {pending} pending{}",
                if *failed_tasks > 0 {
                    format!(", {failed_tasks} failed")
                } else {
                    String::new()
                }
            ),
            Event::RollbackStarted {
                service,
                to,
                reason,
            } => format!("rollback: {service} to {} ({reason})", short_td(to)),
            Event::DeploymentStage {
                service,
                status,
                stage,
            } => format!(
                "deploy: {service} deployment {status}{}",
                stage
                    .as_ref()
                    .map(|stage| format!(", stage {stage}"))
                    .unwrap_or_default()
            ),
            Event::DeploymentPaused {
                service,
                stage,
                hook_id,
                ours,
                ..
            } => format!(
                "deploy: {service} deployment paused at {} by {} (hook {hook_id})",
                stage.as_deref().unwrap_or("a lifecycle hook"),
                if *ours {
                    "shipmate's PAUSE hook"
                } else {
                    "a PAUSE hook of the service's; shipmate waits for someone to continue it"
                }
            ),
            Event::DeploymentContinued { service, action } => match action.as_str() {
                "CONTINUE" => format!("deploy: {service} deployment continued (ContinueServiceDeployment CONTINUE)"),
                _ => format!("rollback: {service} deployment rolled back by shipmate (ContinueServiceDeployment {action})"),
            },
            Event::FinishPending { pending } => format!(
                "deploy: production traffic is on the new revision; ECS bakes it, so {} waits for `shipmate finish`",
                pending.join(" and ")
            ),
            Event::NothingToFinish { reason, .. } => format!("finish: nothing to do: {reason}"),
            Event::RecordsUnavailable { reason } => self.paint(
                "33",
                &format!(
                    "deploy: following through DescribeServices only; ECS's deployment records are not available ({reason})"
                ),
            ),
            Event::Cancelled { task_arn, action } => match action {
                shipmate_release::config::OnCancel::Stop => format!(
                    "interrupted: stopping task {} (StopTask)",
                    task_id(task_arn)
                ),
                shipmate_release::config::OnCancel::Leave => format!(
                    "interrupted: leaving task {} running; stop it with: aws ecs stop-task --cluster {} --task {task_arn}",
                    task_id(task_arn),
                    self.cluster
                ),
            },
        };
        Some(line)
    }
}

/// `family:revision` from a task definition ARN.
pub(crate) fn short_td(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

impl Reporter for CliReporter {
    fn event(&self, event: Event) {
        let _guard = self.lock.lock();
        if let Event::PhaseStarted { phase } = &event
            && let Ok(mut current) = self.phase.lock()
        {
            *current = phase.label();
        }
        if self.json
            && let Ok(line) = serde_json::to_string(&event)
        {
            self.printer.data(&line);
        }
        if let Some(spinner) = &self.spinner
            && let Some(status) = CliReporter::status(&event)
        {
            spinner.set_message(status);
        }
        if let Some(line) = self.human(&event) {
            match &self.spinner {
                Some(spinner) => spinner.suspend(|| self.printer.info(&line)),
                None => self.printer.info(&line),
            }
        }
    }
}

/// The final report: JSON line on stdout (json mode), timeline on stderr, GitHub outputs.
pub(crate) fn finish(
    printer: &Printer,
    output: OutputFormat,
    command: &str,
    report: &mut Report,
    status: ExitStatus,
) {
    report.exit_code = i32::from(status.code());
    report.result = status.result_name().to_owned();
    if !crate::hints::console_links_apply() {
        report.service_console_url = None;
        for task in [
            &mut report.migration,
            &mut report.contract,
            &mut report.post_deploy,
            &mut report.task,
        ]
        .into_iter()
        .flatten()
        {
            task.console_url = None;
        }
    }
    if output == OutputFormat::Json {
        let mut value = serde_json::to_value(&*report).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert("event".to_owned(), serde_json::Value::from("report"));
        }
        printer.data(&value.to_string());
    }
    if !report.phases.is_empty() {
        let phases: Vec<String> = report
            .phases
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    p.phase.label(),
                    format_duration(std::time::Duration::from_millis(p.duration_ms))
                )
            })
            .collect();
        printer.info(&format!(
            "timeline: {} (total {}{})",
            phases.join(", "),
            format_duration(std::time::Duration::from_millis(report.duration_ms)),
            if report.retries > 0 {
                format!(", {} retried calls", report.retries)
            } else {
                String::new()
            }
        ));
    }
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        github(printer, output, command, report);
    }
}

/// `::error::` annotation and a step summary in GitHub Actions.
fn github(printer: &Printer, output: OutputFormat, command: &str, report: &Report) {
    if report.exit_code != 0 {
        let message = report
            .message
            .clone()
            .unwrap_or_else(|| report.result.clone());
        // Workflow commands are one line; `%`, CR and LF are escaped as GitHub documents.
        let escaped = message
            .replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A");
        let line = format!("::error title=shipmate {command}::{escaped}");
        if output == OutputFormat::Json {
            printer.info(&line);
        } else {
            printer.data(&line);
        }
    }
    let Ok(path) = std::env::var("GITHUB_STEP_SUMMARY") else {
        return;
    };
    let mut summary = format!(
        "### shipmate {command}: {}\n\n| | |\n|---|---|\n",
        if report.exit_code == 0 {
            "succeeded"
        } else {
            report.result.as_str()
        }
    );
    let mut row = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            summary.push_str(&format!("| {name} | `{value}` |\n"));
        }
    };
    row("release", report.release_id.clone());
    row(
        if report.services.len() > 1 {
            "services"
        } else {
            "service"
        },
        Some(
            report
                .services
                .iter()
                .map(|s| s.service.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        )
        .filter(|names| !names.is_empty())
        .or_else(|| report.service.clone()),
    );
    row("image", report.image.clone());
    row("task definition", report.task_definition.clone());
    row(
        "migration task",
        report.migration.as_ref().map(|m| m.task_arn.clone()),
    );
    row(
        "migration exit code",
        report
            .migration
            .as_ref()
            .and_then(|m| m.exit_code)
            .map(|c| c.to_string()),
    );
    row(
        "deployment",
        report.deployment.as_ref().and_then(|d| d.id.clone()),
    );
    row("exit code", Some(report.exit_code.to_string()));
    row("message", report.message.clone());
    if report.services.len() > 1 {
        summary.push_str("\n| service | from | to | outcome |\n|---|---|---|---|\n");
        for service in &report.services {
            let td = |arn: &Option<String>| arn.as_deref().map_or("-", short_td).to_owned();
            summary.push_str(&format!(
                "| {} | `{}` | `{}` | {} |\n",
                service.service,
                td(&service.previous_task_definition),
                td(&service.task_definition),
                service.outcome
            ));
        }
    }
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = writeln!(file, "{summary}");
    }
}
