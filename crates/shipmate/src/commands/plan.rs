//! `shipmate plan`: what `deploy` would do, from Describe* calls only.

use shipmate_release::command::join_command;
use shipmate_release::duration::format_duration;
use shipmate_release::plan::Launch;

use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::render::short_td;
use crate::session::{Session, report_error};
use crate::settings::{OutputFormat, ReleaseFlags, TargetArgs, deploy_request};

/// Show what `deploy` would do with the same arguments, changing nothing.
#[derive(Debug, clap::Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    #[command(flatten)]
    pub(crate) flags: ReleaseFlags,
}

pub(crate) async fn plan(args: PlanArgs, printer: &Printer) -> ExitStatus {
    let request = match deploy_request(&args.target, &args.flags) {
        Ok(request) => request,
        Err(error) => {
            printer.error(&error);
            return ExitStatus::Usage;
        }
    };
    let session = Session::start(&args.target, printer, &request.cluster).await;
    let cluster = request.cluster.clone();
    let service = request.service.clone();
    let outcome = session.driver.plan(request).await;
    session.end_progress();
    let plan = match outcome {
        Ok(plan) => plan,
        Err(error) => {
            return report_error(printer, &error, &cluster, Some(&service));
        }
    };
    if args.target.output == OutputFormat::Json {
        printer.data(&serde_json::to_string(&plan).unwrap_or_default());
        return ExitStatus::Success;
    }
    let mut lines = vec![
        format!(
            "release {} of service {} in cluster {}",
            plan.release_id, plan.service, plan.cluster
        ),
        format!("  container      {}", plan.container),
        format!("  image          {} -> {}", plan.image_from, plan.image_to),
        format!("  live now       {}", short_td(&plan.live_task_definition)),
        format!(
            "  revision       {} -> {}",
            short_td(&plan.task_definition_from),
            plan.reuses_revision.as_deref().map_or_else(
                || "a new revision".to_owned(),
                |td| format!("{} (reused)", short_td(td))
            )
        ),
    ];
    for change in &plan.changes {
        lines.push(format!(
            "  change         {}: {} -> {}",
            change.field, change.from, change.to
        ));
    }
    lines.push(format!(
        "  migration      {}",
        plan.migrate_command
            .as_deref()
            .map_or_else(|| "none".to_owned(), join_command)
    ));
    if plan.migrate_cpu.is_some() || plan.migrate_memory.is_some() {
        lines.push(format!(
            "  resources      cpu {} memory {}",
            plan.migrate_cpu
                .map_or_else(|| "(task definition)".to_owned(), |c| c.to_string()),
            plan.migrate_memory
                .map_or_else(|| "(task definition)".to_owned(), |m| m.to_string())
        ));
    }
    lines.push(format!(
        "  launch         {}",
        match &plan.launch {
            Launch::LaunchType { launch_type } => launch_type.clone(),
            Launch::CapacityProviders { strategy } => strategy
                .iter()
                .map(|i| format!(
                    "{} (weight {}, base {})",
                    i.capacity_provider, i.weight, i.base
                ))
                .collect::<Vec<_>>()
                .join(", "),
            Launch::ClusterDefault => "cluster default capacity provider strategy".to_owned(),
        }
    ));
    match &plan.network {
        Some(network) => lines.push(format!(
            "  network        subnets {} security groups {} public IP {}",
            network.subnets.join(","),
            network.security_groups.join(","),
            network.assign_public_ip.as_deref().unwrap_or("DISABLED")
        )),
        None => lines.push("  network        (none: not awsvpc)".to_owned()),
    }
    lines.push(format!(
        "  rollout        {} tasks, timeout {}, poll every {}, rollback on failure: {}",
        plan.desired_count,
        format_duration(plan.deploy_timeout),
        format_duration(plan.poll_interval),
        if plan.rollback_on_failure {
            "yes"
        } else {
            "no"
        }
    ));
    lines.push(format!(
        "  failed tasks   {}",
        if plan.circuit_breaker {
            "ECS's circuit breaker decides".to_owned()
        } else {
            "shipmate fails the release after too many (no circuit breaker)".to_owned()
        }
    ));
    lines.push(format!(
        "  migrate budget {}",
        format_duration(plan.migrate_timeout)
    ));
    lines.push(format!(
        "  lock           {}: {}",
        plan.lock_family,
        match &plan.lock_holder {
            Some(holder) => format!(
                "held by {holder}{}",
                if plan.lock_queue > 1 {
                    format!(", {} more queued", plan.lock_queue - 1)
                } else {
                    String::new()
                }
            ),
            None => "free".to_owned(),
        }
    ));
    if let Some(command) = &plan.post_deploy_command {
        lines.push(format!("  post-deploy    {}", join_command(command)));
    }
    for line in lines {
        printer.data(&line);
    }
    ExitStatus::Success
}
