//! `shipmate deploy`: the release, gated on its migration.

use std::path::Path;

use shipmate_release::report::{Report, ServiceReport};

use crate::exit::{EXIT_CODES_HELP, ExitStatus};
use crate::printer::Printer;
use crate::render::{finish, short_td};
use crate::session::{Session, report_error};
use crate::settings::{ReleaseFlags, TargetArgs, deploy_request};

/// Release a new image: register the revision, run the migration from it with the service's
/// network settings, and only if every essential container exited 0 roll the service and follow
/// the rollout to COMPLETED. A rolled-back deployment fails the command.
///
/// Several services (`--service web --service worker`) are one release: one migration, then
/// every service rolled (in `[deploy] waves` when configured) and followed; the release
/// succeeds only when all of them completed, and `--rollback` returns all of them.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub(crate) struct DeployArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    #[command(flatten)]
    pub(crate) flags: ReleaseFlags,
}

pub(crate) async fn deploy(args: DeployArgs, printer: &Printer) -> ExitStatus {
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
    let image = request.image.clone();
    let finished = session.driver.deploy(request).await;
    let (mut report, result) = (finished.report, finished.result);
    session.end_progress();
    let status = match &result {
        Ok(()) if args.flags.migrate_only => match write_artifacts(&args.flags, &mut report) {
            Ok(()) => {
                printer.info(&format!(
                    "migrated for {image}; the services were not touched. Wrote {} for CodePipeline's CodeDeployToECS action",
                    report.artifacts.join(", ")
                ));
                ExitStatus::Success
            }
            Err(error) => {
                printer.error(&error);
                ExitStatus::Failure
            }
        },
        Ok(()) if !report.pending.is_empty() => {
            printer.info(&format!(
                "{image} serves production traffic on {}; ECS's bake time goes on",
                released_to(&report)
            ));
            printer.info(&format!(
                "pending: {}; finish the release once the deployment completes with:\n  {}",
                report.pending.join(", "),
                finish_command()
            ));
            match write_image_definitions(&args.flags, &report) {
                Ok(()) => ExitStatus::Success,
                Err(error) => {
                    printer.error(&error);
                    ExitStatus::Failure
                }
            }
        }
        Ok(()) => {
            printer.info(&format!("released {image} to {}", released_to(&report)));
            match write_image_definitions(&args.flags, &report) {
                Ok(()) => ExitStatus::Success,
                Err(error) => {
                    printer.error(&error);
                    ExitStatus::Failure
                }
            }
        }
        Err(error) => report_error(printer, error, &cluster, &services),
    };
    finish(printer, args.target.output, "deploy", &mut report, status);
    status
}

/// `shipmate finish` with this deploy's own arguments (finish reads the same flags and file).
fn finish_command() -> String {
    let mut words = vec!["shipmate".to_owned()];
    let mut args = std::env::args().skip(1);
    let mut replaced = false;
    while let Some(arg) = args.next() {
        if !replaced && arg == "deploy" {
            words.push("finish".to_owned());
            replaced = true;
        } else if arg == "--wait-until" {
            // Finish always waits for the end; its value goes too.
            args.next();
        } else if !arg.starts_with("--wait-until=") {
            words.push(arg);
        }
    }
    shipmate_release::command::join_command(&words)
}

/// `shipmate finish`: the deploy's flags, the release it describes completed.
pub(crate) async fn finish_release(args: DeployArgs, printer: &Printer) -> ExitStatus {
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
    let image = request.image.clone();
    let finished = session.driver.finish(request).await;
    let (mut report, result) = (finished.report, finished.result);
    session.end_progress();
    let status = match &result {
        Ok(()) => {
            printer.info(&format!(
                "finished the release of {image} ({})",
                released_to(&report)
            ));
            ExitStatus::Success
        }
        Err(error) => report_error(printer, error, &cluster, &services),
    };
    finish(printer, args.target.output, "finish", &mut report, status);
    status
}

/// `service web: web:3`, or `services web (web:3), worker (worker:5)`.
fn released_to(report: &Report) -> String {
    let revision = |s: &ServiceReport| {
        s.task_definition
            .as_deref()
            .map_or("?", short_td)
            .to_owned()
    };
    match &report.services[..] {
        [one] => format!("service {}: {}", one.service, revision(one)),
        several => format!(
            "services {}",
            several
                .iter()
                .map(|s| format!("{} ({})", s.service, revision(s)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// CodeDeployToECS's three files per service: in `--artifacts` (default: the current
/// directory), or in `<dir>/<service>/` each for a release of several services.
fn write_artifacts(flags: &ReleaseFlags, report: &mut Report) -> anyhow::Result<()> {
    let root = flags
        .artifacts
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    let several = report.codedeploy.len() > 1;
    let mut written = Vec::new();
    for set in &report.codedeploy {
        let dir = if several {
            root.join(&set.service)
        } else {
            root.clone()
        };
        std::fs::create_dir_all(&dir).map_err(|error| {
            anyhow::anyhow!("cannot create the directory `{}`: {error}", dir.display())
        })?;
        for (name, text) in [
            ("imageDetail.json", &set.image_detail),
            ("taskdef.json", &set.taskdef),
            ("appspec.yaml", &set.appspec),
        ] {
            let file = dir.join(name);
            std::fs::write(&file, text)
                .map_err(|error| anyhow::anyhow!("cannot write `{}`: {error}", file.display()))?;
            written.push(file.display().to_string());
        }
    }
    report.artifacts = written;
    Ok(())
}

/// CodePipeline's imagedefinitions.json, `[{"name": container, "imageUri": image}, …]` with
/// every container that got the image. CodePipeline's ECS action takes one file per service:
/// for several services (or when the path is a directory) `<path>/<service>.json` each.
fn write_image_definitions(flags: &ReleaseFlags, report: &Report) -> anyhow::Result<()> {
    let Some(path) = &flags.image_definitions else {
        return Ok(());
    };
    let write = |file: &Path, service: &ServiceReport| {
        let definitions: Vec<serde_json::Value> = service
            .containers
            .iter()
            .map(|c| serde_json::json!({"name": c.name, "imageUri": flags.image}))
            .collect();
        let text = serde_json::to_string(&definitions).unwrap_or_default();
        std::fs::write(file, format!("{text}\n"))
            .map_err(|error| anyhow::anyhow!("cannot write `{}`: {error}", file.display()))
    };
    match &report.services[..] {
        [one] if !path.is_dir() => write(path, one),
        services => {
            std::fs::create_dir_all(path).map_err(|error| {
                anyhow::anyhow!("cannot create the directory `{}`: {error}", path.display())
            })?;
            for service in services {
                write(&path.join(format!("{}.json", service.service)), service)?;
            }
            Ok(())
        }
    }
}
