//! `shipmate plan`: what `deploy` would do, from Describe* calls only.

use shipmate_release::command::join_command;
use shipmate_release::config::Gate;
use shipmate_release::deployment::PAUSE_STAGE;
use shipmate_release::duration::format_duration;
use shipmate_release::plan::{Launch, Plan, ServicePlan};
use shipmate_release::preset::MigrationPlan;

use crate::exit::ExitStatus;
use crate::hints::DoctorContext;
use crate::printer::Printer;
use crate::render::short_td;
use crate::session::{Session, report_error};
use crate::settings::{OutputFormat, ReleaseFlags, TargetArgs, deploy_request};

/// Show what `deploy` would do with the same arguments, changing nothing: per service, every
/// container with its image before and after; the migration, its shape and launch; the lock.
/// `shipmate doctor`'s checks that do not pass are shown as warnings.
#[derive(Debug, clap::Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    #[command(flatten)]
    pub(crate) flags: ReleaseFlags,
    /// With a preset: also list the pending migrations and their operations, classified, by
    /// running the preset's read-only plan phase as one task from the release's revision. plan
    /// is then no longer read-only on ECS: it registers (or reuses) the revision and runs a task
    /// (RegisterTaskDefinition, TagResource, RunTask, DescribeTasks, GetLogEvents); the database
    /// is only read.
    #[arg(long)]
    pub(crate) pending: bool,
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
    let services = request.services.clone();
    let lock_key = request.lock.key.clone();
    let outcome = session.driver.plan(request.clone(), args.pending).await;
    session.end_progress();
    let plan = match outcome {
        Ok(plan) => plan,
        Err(error) => {
            return report_error(printer, &error, &cluster, &services);
        }
    };
    // doctor's checks, as warnings: what would make the release fail (plan's exit code stays).
    if let Ok(diagnosis) = super::doctor::diagnose(&session, request).await {
        session.end_progress();
        let context = DoctorContext {
            cluster: &cluster,
            services: &services,
            lock_key: lock_key.as_deref(),
        };
        super::doctor::warn_about(printer, &diagnosis, &context);
    }
    if args.target.output == OutputFormat::Json {
        printer.data(&serde_json::to_string(&plan).unwrap_or_default());
        return ExitStatus::Success;
    }
    for line in human(&plan) {
        printer.data(&line);
    }
    if let Some(pending) = &plan.pending {
        for line in pending_lines(pending) {
            printer.data(&line);
        }
    }
    ExitStatus::Success
}

/// The pending migrations, classified, as the preset's plan task reported them.
fn pending_lines(plan: &MigrationPlan) -> Vec<String> {
    if plan.migrations.is_empty() {
        return vec!["  pending        nothing to migrate".to_owned()];
    }
    let mut lines = vec!["  pending migrations (in order):".to_owned()];
    for migration in &plan.migrations {
        lines.push(format!(
            "    {} ({}: {})",
            migration.id,
            migration.marker.replace('_', " "),
            if migration.run == "contract" {
                "after the deployment completes"
            } else {
                "before the deployment"
            }
        ));
        for operation in &migration.operations {
            lines.push(format!(
                "      {:<8} {}{}",
                operation.class,
                operation.text,
                operation
                    .why
                    .as_ref()
                    .map(|why| format!(": {why}"))
                    .unwrap_or_default()
            ));
        }
    }
    for refusal in &plan.refusals {
        lines.push(format!(
            "  deploy would refuse: {}{}",
            refusal.why,
            refusal
                .hint
                .as_ref()
                .map(|hint| format!(" (hint: {hint})"))
                .unwrap_or_default()
        ));
    }
    lines
}

fn human(plan: &Plan) -> Vec<String> {
    let names: Vec<&str> = plan.services.iter().map(|s| s.service.as_str()).collect();
    let mut lines = vec![format!(
        "release {} of {} {} in cluster {}",
        plan.release_id,
        if names.len() == 1 {
            "service"
        } else {
            "services"
        },
        names.join(", "),
        plan.cluster
    )];
    for service in &plan.services {
        service_lines(service, &mut lines);
    }
    if plan.waves.len() > 1 {
        lines.push(format!(
            "  waves          {}",
            plan.waves
                .iter()
                .map(|wave| wave.join(" + "))
                .collect::<Vec<_>>()
                .join(", then ")
        ));
    }
    lines.push(format!(
        "  gate           {}",
        if plan.migrate_only {
            "migrate only (no deployment; CodeDeploy artifacts written)".to_owned()
        } else {
            match plan.gate {
                Gate::BeforeDeploy => {
                    "before-deploy: migrate, then update the services".to_owned()
                }
                Gate::PauseHook => format!(
                    "pause-hook: update the services paused at {PAUSE_STAGE}, migrate, then continue or roll back"
                ),
            }
        }
    ));
    lines.push(format!("  wait until     {}", plan.wait_until));
    lines.push(format!(
        "  migration      {}",
        plan.migrate_command
            .as_deref()
            .map_or_else(|| "none".to_owned(), join_command)
    ));
    if plan.migrate_command.is_some() {
        lines.push(format!(
            "  migrate from   {}",
            match &plan.migrate_family {
                Some(family) => format!(
                    "a new revision of family {family} (network of service {})",
                    plan.migrate_service
                ),
                None => format!("service {}'s new revision", plan.migrate_service),
            }
        ));
    }
    if plan.migrate_cpu.is_some() || plan.migrate_memory.is_some() {
        lines.push(format!(
            "  resources      cpu {} memory {}",
            plan.migrate_cpu
                .map_or_else(|| "(task definition)".to_owned(), |c| c.to_string()),
            plan.migrate_memory
                .map_or_else(|| "(task definition)".to_owned(), |m| m.to_string())
        ));
    }
    if plan.migrate_task_cpu.is_some() || plan.migrate_task_memory.is_some() {
        lines.push(format!(
            "  task size      cpu {} memory {}",
            plan.migrate_task_cpu
                .as_deref()
                .unwrap_or("(task definition)"),
            plan.migrate_task_memory
                .as_deref()
                .unwrap_or("(task definition)")
        ));
    }
    if !plan.migrate_environment.is_empty() {
        lines.push(format!(
            "  environment    {}",
            plan.migrate_environment.join(", ")
        ));
    }
    for (label, role) in [
        ("task role", &plan.migrate_task_role_arn),
        ("exec role", &plan.migrate_execution_role_arn),
    ] {
        if let Some(role) = role {
            lines.push(format!("  {label:<14} {role}"));
        }
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
    lines.push(format!(
        "  rollout        timeout {}, poll every {}, rollback on failure: {}",
        format_duration(plan.deploy_timeout),
        format_duration(plan.poll_interval),
        if plan.rollback_on_failure {
            "yes"
        } else {
            "no"
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
    lines
}

/// One service: its revisions, every container with its image before and after, its network
/// and how its rollout is watched.
fn service_lines(plan: &ServicePlan, lines: &mut Vec<String>) {
    lines.push(format!("  service {}", plan.service));
    lines.push(format!(
        "    live now     {}",
        short_td(&plan.live_task_definition)
    ));
    lines.push(format!(
        "    revision     {} -> {}",
        short_td(&plan.task_definition_from),
        plan.reuses_revision.as_deref().map_or_else(
            || "a new revision".to_owned(),
            |td| format!("{} (reused)", short_td(td))
        )
    ));
    for container in &plan.containers {
        let role = if container.essential {
            ""
        } else {
            ", not essential"
        };
        if container.image_from == container.image_to {
            lines.push(format!(
                "    container    {}: {} (kept{role})",
                container.name, container.image_from
            ));
        } else {
            lines.push(format!(
                "    container    {}: {} -> {}{}",
                container.name,
                container.image_from,
                container.image_to,
                if role.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", role.trim_start_matches(", "))
                }
            ));
        }
    }
    match &plan.network {
        Some(network) => lines.push(format!(
            "    network      subnets {} security groups {} public IP {}",
            network.subnets.join(","),
            network.security_groups.join(","),
            network.assign_public_ip.as_deref().unwrap_or("DISABLED")
        )),
        None => lines.push("    network      (none: not awsvpc)".to_owned()),
    }
    lines.push(format!(
        "    rollout      {} tasks; failed tasks: {}",
        plan.desired_count,
        if plan.circuit_breaker {
            "ECS's circuit breaker decides"
        } else {
            "shipmate fails the release after too many (no circuit breaker)"
        }
    ));
    let shape = &plan.deployment;
    let mut deployment = if shape.controller == "ECS" {
        format!("ECS controller, {}", shape.strategy)
    } else {
        format!("{} controller", shape.controller)
    };
    if let Some(minutes) = shape.bake_time_minutes.filter(|_| shape.has_bake()) {
        deployment.push_str(&format!(", bake time {minutes} min"));
    }
    lines.push(format!("    deployment   {deployment}"));
    for hook in &shape.hooks {
        let owner = match hook.release_id() {
            Some(release) if hook.is_ours() => {
                format!(" (left by shipmate release {release}: this release removes it)")
            }
            _ => String::new(),
        };
        lines.push(format!(
            "    hook         {} at {}{owner}",
            hook.target_type,
            hook.stages.join(", ")
        ));
    }
    if let Some(refusal) = &plan.refusal {
        lines.push(format!("    refused      {refusal}"));
    }
}
