//! `shipmate deploy`: the release, gated on its migration.

use shipmate_release::report::Report;

use crate::exit::{EXIT_CODES_HELP, ExitStatus};
use crate::printer::Printer;
use crate::render::{finish, short_td};
use crate::session::{Session, report_error};
use crate::settings::{ReleaseFlags, TargetArgs, deploy_request};

/// Release a new image: register the revision, run the migration from it with the service's
/// network settings, and only if every essential container exited 0 roll the service and follow
/// the rollout to COMPLETED. A rolled-back deployment fails the command.
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
    let service = request.service.clone();
    let image = request.image.clone();
    let finished = session.driver.deploy(request).await;
    let (mut report, result) = (finished.report, finished.result);
    session.end_progress();
    let status = match &result {
        Ok(()) => {
            printer.info(&format!(
                "released {image} to service {service}: {}",
                report.task_definition.as_deref().map_or("?", short_td)
            ));
            match write_image_definitions(&args.flags, &report) {
                Ok(()) => ExitStatus::Success,
                Err(error) => {
                    printer.error(&error);
                    ExitStatus::Failure
                }
            }
        }
        Err(error) => report_error(printer, error, &cluster, Some(&service)),
    };
    finish(printer, args.target.output, "deploy", &mut report, status);
    status
}

/// CodePipeline's imagedefinitions.json: `[{"name": container, "imageUri": image}]`.
fn write_image_definitions(flags: &ReleaseFlags, report: &Report) -> anyhow::Result<()> {
    let Some(path) = &flags.image_definitions else {
        return Ok(());
    };
    let definitions = serde_json::json!([{
        "name": report.container.clone().unwrap_or_default(),
        "imageUri": flags.image,
    }]);
    std::fs::write(path, format!("{definitions}\n"))
        .map_err(|error| anyhow::anyhow!("cannot write `{}`: {error}", path.display()))
}
