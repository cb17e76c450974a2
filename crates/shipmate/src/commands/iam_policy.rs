//! `shipmate iam-policy`: the least-privilege IAM policy for a CI job that releases services.

use std::sync::Arc;

use anyhow::Context;
use shipmate_release::iam::{PolicyScope, policy};
use shipmate_release_aws::{Clients, ConnectOptions, Driver, EventLog, TokioPace};
use tokio_util::sync::CancellationToken;

use shipmate_release::config::FileConfig;

use crate::settings::load_file;
use crate::{ExitStatus, Printer};

/// Prints (to stdout) the IAM policy a CI job needs to run `shipmate deploy`, `run`, `plan`,
/// `status` and `rollback` for its services: exactly the actions shipmate calls, each on the
/// narrowest resource. Parts it does not know become wildcards, and it says which; with
/// `--from-service` it reads them (family, log group, task and execution roles, region, account)
/// from the service itself.
#[derive(Debug, clap::Args)]
pub(crate) struct IamPolicyArgs {
    #[arg(long, env = "SHIPMATE_CLUSTER")]
    cluster: Option<String>,
    /// The services the job releases (repeatable, or comma-separated).
    #[arg(
        long = "service",
        value_name = "SERVICE",
        env = "SHIPMATE_SERVICE",
        value_delimiter = ','
    )]
    services: Vec<String>,
    /// shipmate.toml to read the cluster and service from (default: ./shipmate.toml if present).
    #[arg(long, env = "SHIPMATE_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// AWS account id of the resources.
    #[arg(long)]
    account: Option<String>,
    /// Region of the resources (default: AWS_REGION, then AWS_DEFAULT_REGION).
    #[arg(long)]
    region: Option<String>,
    /// Task definition family RunTask may use (repeatable; default: the services', with
    /// --from-service, and the migration's own family from shipmate.toml).
    #[arg(long = "family", value_name = "FAMILY")]
    families: Vec<String>,
    /// awslogs group of the migration's logs (repeatable).
    #[arg(long = "log-group", value_name = "GROUP")]
    log_groups: Vec<String>,
    /// Role ARN the task definition passes to ECS (task and execution role; repeatable).
    #[arg(long = "pass-role", value_name = "ARN")]
    pass_roles: Vec<String>,
    /// Read family, log groups, roles, region and account from the live service (DescribeServices,
    /// DescribeTaskDefinition; credentials from the standard AWS chain).
    #[arg(long)]
    from_service: bool,
}

pub(crate) async fn iam_policy(args: IamPolicyArgs, printer: &Printer) -> ExitStatus {
    match build(args).await {
        Ok((document, wildcards)) => {
            printer
                .data(&serde_json::to_string_pretty(&document).expect("a JSON value serializes"));
            if !wildcards.is_empty() {
                printer.hint(&format!(
                    "left as wildcards: {}; pass them as flags or use --from-service",
                    wildcards.join(", ")
                ));
            }
            ExitStatus::Success
        }
        Err(error) => {
            printer.error(&error);
            ExitStatus::Usage
        }
    }
}

async fn build(args: IamPolicyArgs) -> anyhow::Result<(serde_json::Value, Vec<&'static str>)> {
    let IamPolicyArgs {
        cluster,
        services,
        config,
        account,
        region,
        families,
        log_groups,
        pass_roles,
        from_service,
    } = args;
    let file = load_file(config.as_deref())?;
    let cluster = cluster
        .or_else(|| file.service.cluster.clone())
        .context("missing --cluster (or `service.cluster` in shipmate.toml)")?;
    let services = if services.is_empty() {
        file.service.services.clone().unwrap_or_default()
    } else {
        services
    };
    if services.is_empty() {
        anyhow::bail!(
            "missing --service (or `service.service` / `service.services` in shipmate.toml)"
        );
    }
    let scope = PolicyScope {
        partition: None,
        region: region.or_else(default_region),
        account,
        cluster,
        services,
        families,
        log_groups,
        pass_roles,
    };
    scoped_policy(scope, &file, from_service).await
}

/// The region a policy names when none is given: AWS_REGION, then AWS_DEFAULT_REGION.
pub(crate) fn default_region() -> Option<String> {
    std::env::var("AWS_REGION")
        .ok()
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
}

/// The policy for `scope`: with `from_service`, what it leaves unknown is read from the live
/// services; the migration's own family in `file` is granted too. Also returns what is left
/// as wildcards. `shipmate init` writes the same policy `iam-policy` prints.
pub(crate) async fn scoped_policy(
    mut scope: PolicyScope,
    file: &FileConfig,
    from_service: bool,
) -> anyhow::Result<(serde_json::Value, Vec<&'static str>)> {
    if from_service {
        fill_from_service(&mut scope).await?;
    }
    // The migration's own family, kept in step with each release, is run and tagged too.
    if let Some(family) = &file.migrate.task_definition
        && !scope.families.is_empty()
        && !scope.families.contains(family)
    {
        scope.families.push(family.clone());
    }
    let wildcards = scope.wildcards();
    Ok((policy(&scope), wildcards))
}

/// Fills what flags left unknown from the service and its task definition.
async fn fill_from_service(scope: &mut PolicyScope) -> anyhow::Result<()> {
    let reporter = Arc::new(EventLog::default());
    let clients = Clients::connect(&ConnectOptions { max_attempts: 3 }, reporter.clone()).await;
    let driver = Driver::new(
        clients,
        &scope.cluster,
        reporter,
        Arc::new(TokioPace),
        CancellationToken::new(),
    );
    driver.fill_policy_scope(scope).await?;
    Ok(())
}
