//! `shipmate doctor`: what would make the first release fail, checked before it does, with a
//! `hint:` for each check that does not pass (docs/doctor.md). `plan` runs the same checks and
//! shows the ones that do not pass as warnings.

use serde::Serialize;
use shipmate_release::doctor::{CheckStatus, Diagnosis, ImageSource};
use shipmate_release::release::{DeployRequest, DoctorRequest};

use crate::exit::ExitStatus;
use crate::hints::{DoctorContext, doctor_hint, local_endpoint};
use crate::printer::Printer;
use crate::session::{Session, report_error};
use crate::settings::{OutputFormat, ReleaseFlags, TargetArgs, deploy_request};

/// Check, reading only, what would make a release with these flags fail: credentials and
/// region, the cluster and services, the container that gets the image, its awslogs log group,
/// the execution role, the image, the network, a leftover lock or PAUSE hook. Exits 0 when no
/// check fails (warnings allowed), 11 when one does.
#[derive(Debug, clap::Args)]
#[command(after_help = DOCTOR_HELP)]
pub(crate) struct DoctorArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    #[command(flatten)]
    pub(crate) flags: ReleaseFlags,
}

const DOCTOR_HELP: &str = "\
Checks: credentials and region, cluster, services and their deployment controller, the container
that gets the image, its awslogs log group, the execution role, the image, the network, a leftover
release lock or PAUSE hook (docs/doctor.md).

Exit codes:
  0    no check failed (warnings allowed)
  2    bad input or configuration
  11   a check failed
  130  interrupted (SIGINT/SIGTERM)";

pub(crate) async fn doctor(args: DoctorArgs, printer: &Printer) -> ExitStatus {
    let request = match deploy_request(&args.target, &args.flags) {
        Ok(request) => request,
        Err(error) => {
            printer.error(&error);
            return ExitStatus::Usage;
        }
    };
    let cluster = request.cluster.clone();
    let services = request.services.clone();
    let lock_key = request.lock.key.clone();
    let session = Session::start(&args.target, printer, &cluster).await;
    let outcome = diagnose(&session, request).await;
    session.end_progress();
    let diagnosis = match outcome {
        Ok(diagnosis) => diagnosis,
        Err(error) => return report_error(printer, &error, &cluster, &services),
    };
    let context = DoctorContext {
        cluster: &cluster,
        services: &services,
        lock_key: lock_key.as_deref(),
    };
    if args.target.output == OutputFormat::Json {
        printer.data(&serde_json::to_string(&report(&diagnosis, &context)).unwrap_or_default());
    } else {
        for line in human(&diagnosis, &context) {
            printer.data(&line);
        }
    }
    if diagnosis.failed() {
        ExitStatus::ChecksFailed
    } else {
        ExitStatus::Success
    }
}

/// Runs the checks of `request` on the session's driver.
pub(crate) async fn diagnose(
    session: &Session,
    request: DeployRequest,
) -> Result<Diagnosis, shipmate_release::error::ReleaseError> {
    let images = image_source().await;
    session
        .driver
        .doctor(DoctorRequest {
            release: request,
            images,
        })
        .await
}

/// Where images come from: `shipmate local`'s store (listed now) when the endpoint is on this
/// machine, else their registries.
async fn image_source() -> ImageSource {
    let Some(endpoint) = local_endpoint() else {
        return ImageSource::Registries;
    };
    let images = shipmate_local_server::client::list_images(&endpoint)
        .await
        .map(|images| images.into_iter().map(|i| i.image).collect())
        .map_err(|error| format!("{:#}", anyhow::Error::new(error)));
    ImageSource::LocalStore { endpoint, images }
}

/// `--output json`: one object.
#[derive(Debug, Serialize)]
struct Report<'a> {
    cluster: &'a str,
    image: &'a str,
    /// `passed` (warnings allowed) or `failed`.
    result: &'static str,
    exit_code: u8,
    passed: usize,
    warnings: usize,
    failed: usize,
    checks: Vec<CheckReport>,
}

#[derive(Debug, Serialize)]
struct CheckReport {
    name: &'static str,
    status: CheckStatus,
    service: Option<String>,
    message: String,
    hint: Option<String>,
}

fn report<'a>(diagnosis: &'a Diagnosis, context: &DoctorContext<'_>) -> Report<'a> {
    let failed = diagnosis.failed();
    Report {
        cluster: &diagnosis.cluster,
        image: &diagnosis.image,
        result: if failed { "failed" } else { "passed" },
        exit_code: if failed {
            ExitStatus::ChecksFailed.code()
        } else {
            ExitStatus::Success.code()
        },
        passed: diagnosis.count(CheckStatus::Pass),
        warnings: diagnosis.count(CheckStatus::Warn),
        failed: diagnosis.count(CheckStatus::Fail),
        checks: diagnosis
            .checks
            .iter()
            .map(|check| CheckReport {
                name: check.finding.name(),
                status: check.status(),
                service: check.service.clone(),
                message: check.finding.to_string(),
                hint: (check.status() != CheckStatus::Pass)
                    .then(|| doctor_hint(&check.finding, context))
                    .flatten(),
            })
            .collect(),
    }
}

/// One line per check (`ok`, `warn`, `FAIL`), a `hint:` under each that did not pass, and a
/// summary.
fn human(diagnosis: &Diagnosis, context: &DoctorContext<'_>) -> Vec<String> {
    let several = context.services.len() > 1;
    let mut lines = Vec::new();
    for check in &diagnosis.checks {
        let label = match check.status() {
            CheckStatus::Pass => "ok  ",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "FAIL",
        };
        let service = match &check.service {
            Some(service) if several => format!("{service}: "),
            _ => String::new(),
        };
        lines.push(format!("{label} {service}{}", check.finding));
        if check.status() != CheckStatus::Pass
            && let Some(hint) = doctor_hint(&check.finding, context)
        {
            lines.push(format!("     hint: {hint}"));
        }
    }
    let count = |status| diagnosis.count(status);
    lines.push(format!(
        "{}: {} passed, {} {}, {} failed",
        if diagnosis.failed() {
            "doctor found what would make the release fail"
        } else {
            "doctor found nothing that would make the release fail"
        },
        count(CheckStatus::Pass),
        count(CheckStatus::Warn),
        if count(CheckStatus::Warn) == 1 {
            "warning"
        } else {
            "warnings"
        },
        count(CheckStatus::Fail),
    ));
    lines
}

/// For `plan`: the checks that did not pass, as warnings on stderr.
pub(crate) fn warn_about(printer: &Printer, diagnosis: &Diagnosis, context: &DoctorContext<'_>) {
    let several = context.services.len() > 1;
    for check in diagnosis
        .checks
        .iter()
        .filter(|c| c.status() != CheckStatus::Pass)
    {
        let service = match &check.service {
            Some(service) if several => format!("{service}: "),
            _ => String::new(),
        };
        let kind = if check.status() == CheckStatus::Fail {
            "doctor FAIL"
        } else {
            "doctor warn"
        };
        let hint = doctor_hint(&check.finding, context);
        printer.warning(
            &format!("{kind}: {service}{}", check.finding),
            hint.as_deref(),
        );
    }
}
