//! `shipmate init`: from the live services to a first `shipmate.toml` and CI step. The services
//! are read by [`crate::release::discover`]; what to write, and what to refuse to guess, is
//! decided here, without I/O.

use std::fmt::Write as _;

use crate::config::Gate;
use crate::deployment::DeploymentShape;
use crate::ledger::image_repository;
use crate::preset::Preset;

/// What `shipmate init` read: the cluster and each service with its task definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    pub cluster: String,
    /// From the services' ARNs (`arn:aws:ecs:<region>:…`).
    pub region: Option<String>,
    pub services: Vec<DiscoveredService>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredService {
    pub name: String,
    pub task_definition: String,
    pub shape: DeploymentShape,
    pub containers: Vec<ContainerFacts>,
}

/// A container of the service's task definition, as far as choosing one and recognising its
/// framework needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerFacts {
    pub name: String,
    pub image: String,
    pub essential: bool,
    pub entry_point: Vec<String>,
    pub command: Vec<String>,
    /// Names of its environment variables and secrets (values are not needed, nor read).
    pub variables: Vec<String>,
}

impl ContainerFacts {
    /// The containers of a DescribeTaskDefinition answer (`{"taskDefinition": {…}}`).
    pub fn from_answer(answer: &serde_json::Value) -> Vec<ContainerFacts> {
        let strings = |value: &serde_json::Value| -> Vec<String> {
            value
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| item.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let names = |value: &serde_json::Value| -> Vec<String> {
            value
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| item["name"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        answer["taskDefinition"]["containerDefinitions"]
            .as_array()
            .map(|containers| {
                containers
                    .iter()
                    .map(|c| ContainerFacts {
                        name: c["name"].as_str().unwrap_or_default().to_owned(),
                        image: c["image"].as_str().unwrap_or_default().to_owned(),
                        // ECS's default is essential.
                        essential: c["essential"].as_bool().unwrap_or(true),
                        entry_point: strings(&c["entryPoint"]),
                        command: strings(&c["command"]),
                        variables: names(&c["environment"])
                            .into_iter()
                            .chain(names(&c["secrets"]))
                            .collect(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// How the migration runs, as the user said it (or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationChoice {
    /// Recognise the framework from the containers; refuse to guess when none is.
    Detect,
    Preset(String),
    Command(String),
    /// The services have no migration (`--no-migrate`).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOptions {
    pub migration: MigrationChoice,
    /// The container that gets the release's image (`--container`).
    pub container: Option<String>,
    pub gate: Option<Gate>,
}

/// The migration `shipmate.toml` gets, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Migration {
    Preset {
        preset: Preset,
        /// What gave the framework away (`None`: the user named it).
        evidence: Option<String>,
    },
    Command {
        command: String,
        evidence: Option<String>,
    },
    None,
}

impl Migration {
    /// One line for the summary: `the django preset (DJANGO_SETTINGS_MODULE in web's environment)`.
    pub fn describe(&self) -> String {
        let (what, evidence) = match self {
            Migration::Preset { preset, evidence } => {
                (format!("the {} preset", preset.name()), evidence)
            }
            Migration::Command { command, evidence } => (format!("`{command}`"), evidence),
            Migration::None => return "none (--no-migrate)".to_owned(),
        };
        match evidence {
            Some(evidence) => format!("{what}, recognised from {evidence}"),
            None => what,
        }
    }
}

/// What `shipmate init` writes, decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub shipmate_toml: String,
    pub migration: Migration,
    /// The repository the release's image is pushed to, without its registry (`bookshop`).
    pub repository: String,
    /// The container that gets the image, per service.
    pub containers: Vec<(String, String)>,
    /// What the user should know before the first release (a CodeDeploy service, an image
    /// from outside ECR, …).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitError {
    #[error(
        "service `{service}` ({task_definition}) has several essential containers ({}): say which one gets the release's image with --container",
        containers.join(", ")
    )]
    AmbiguousContainer {
        service: String,
        task_definition: String,
        containers: Vec<String>,
    },
    #[error(
        "service `{service}` ({task_definition}) has no container named `{requested}` (containers: {})",
        containers.join(", ")
    )]
    UnknownContainer {
        service: String,
        task_definition: String,
        requested: String,
        containers: Vec<String>,
    },
    #[error(
        "cannot tell how {} migrate{}: no framework recognised in the command or environment of {}",
        services.join(", "),
        if services.len() == 1 { "s" } else { "" },
        containers.join(", ")
    )]
    UnknownFramework {
        services: Vec<String>,
        containers: Vec<String>,
    },
    #[error("{0}")]
    Preset(String),
    #[error("the migration command is empty")]
    EmptyCommand,
    #[error("no service to write a configuration for")]
    NoServices,
}

/// Decides what to write for `discovery`.
pub fn propose(discovery: &Discovery, options: &InitOptions) -> Result<Proposal, InitError> {
    if discovery.services.is_empty() {
        return Err(InitError::NoServices);
    }
    let mut chosen = Vec::with_capacity(discovery.services.len());
    for service in &discovery.services {
        chosen.push((
            service,
            app_container(service, options.container.as_deref())?,
        ));
    }
    let migration = migration(&chosen, &options.migration)?;
    let mut warnings = Vec::new();

    let (first_service, first_container) = chosen[0];
    let repository_with_registry = image_repository(&first_container.image).to_owned();
    for (service, container) in &chosen[1..] {
        let other = image_repository(&container.image);
        if other != repository_with_registry {
            warnings.push(format!(
                "service `{}` runs {other} in `{}`, `{}` runs {repository_with_registry}: one release gives every service the one image",
                service.name, container.name, first_service.name
            ));
        }
    }
    let (registry, repository) = split_registry(&repository_with_registry);
    if let Some(registry) = registry
        && !is_ecr(registry)
    {
        warnings.push(format!(
            "the image comes from {registry}, not ECR: the written pipeline logs in to ECR and pushes there; change its login and push steps"
        ));
    }
    for (service, _) in &chosen {
        if service.shape.controller != "ECS" {
            warnings.push(format!(
                "service `{}` is deployed by {}: `shipmate deploy` refuses it; run `shipmate deploy --migrate-only --artifacts DIR` in the build stage and let CodeDeploy deploy (docs/release.md)",
                service.name, service.shape.controller
            ));
        }
    }

    let containers = chosen
        .iter()
        .map(|(service, container)| (service.name.clone(), container.name.clone()))
        .collect();
    let shipmate_toml = render(discovery, options, &chosen, &migration, repository);
    Ok(Proposal {
        shipmate_toml,
        migration,
        repository: repository.to_owned(),
        containers,
        warnings,
    })
}

/// The container that gets the image: the requested one, else the only essential one (the
/// load balancer's among several, when it names one of them).
fn app_container<'a>(
    service: &'a DiscoveredService,
    requested: Option<&str>,
) -> Result<&'a ContainerFacts, InitError> {
    let names = || service.containers.iter().map(|c| c.name.clone()).collect();
    if let Some(requested) = requested {
        return service
            .containers
            .iter()
            .find(|c| c.name == requested)
            .ok_or_else(|| InitError::UnknownContainer {
                service: service.name.clone(),
                task_definition: service.task_definition.clone(),
                requested: requested.to_owned(),
                containers: names(),
            });
    }
    let essential: Vec<&ContainerFacts> =
        service.containers.iter().filter(|c| c.essential).collect();
    if let [only] = essential[..] {
        return Ok(only);
    }
    let behind_balancer: Vec<&ContainerFacts> = essential
        .iter()
        .copied()
        .filter(|c| {
            service
                .shape
                .load_balancers
                .iter()
                .any(|lb| lb.container_name == c.name)
        })
        .collect();
    if let [only] = behind_balancer[..] {
        return Ok(only);
    }
    Err(InitError::AmbiguousContainer {
        service: service.name.clone(),
        task_definition: service.task_definition.clone(),
        containers: names(),
    })
}

fn migration(
    chosen: &[(&DiscoveredService, &ContainerFacts)],
    choice: &MigrationChoice,
) -> Result<Migration, InitError> {
    match choice {
        MigrationChoice::None => Ok(Migration::None),
        MigrationChoice::Command(command) if command.trim().is_empty() => {
            Err(InitError::EmptyCommand)
        }
        MigrationChoice::Command(command) => Ok(Migration::Command {
            command: command.clone(),
            evidence: None,
        }),
        MigrationChoice::Preset(name) => {
            let manage = chosen.iter().find_map(|(_, c)| django_manage(c));
            Ok(Migration::Preset {
                preset: Preset::parse(name, manage).map_err(InitError::Preset)?,
                evidence: None,
            })
        }
        MigrationChoice::Detect => chosen
            .iter()
            .find_map(|(_, container)| recognise(container))
            .ok_or_else(|| InitError::UnknownFramework {
                services: chosen.iter().map(|(s, _)| s.name.clone()).collect(),
                containers: chosen
                    .iter()
                    .map(|(s, c)| format!("{}/{}", s.name, c.name))
                    .collect(),
            }),
    }
}

/// The framework a container runs, from what its task definition says about it.
fn recognise(container: &ContainerFacts) -> Option<Migration> {
    let words: Vec<&str> = container
        .entry_point
        .iter()
        .chain(&container.command)
        .flat_map(|w| w.split_whitespace())
        .collect();
    let has_word = |test: &dyn Fn(&str) -> bool| words.iter().any(|w| test(w));
    let has_variable = |name: &str| container.variables.iter().any(|v| v == name);
    let django = if has_variable("DJANGO_SETTINGS_MODULE") {
        Some(format!(
            "DJANGO_SETTINGS_MODULE in `{}`'s environment",
            container.name
        ))
    } else if has_word(&|w| w.ends_with("manage.py")) {
        Some(format!("manage.py in `{}`'s command", container.name))
    } else if has_word(&|w| w.contains(".wsgi:application") || w.contains(".asgi:application")) {
        Some(format!(
            "a Django WSGI/ASGI application in `{}`'s command",
            container.name
        ))
    } else {
        None
    };
    if let Some(evidence) = django {
        let preset = Preset::parse("django", django_manage(container)).ok()?;
        return Some(Migration::Preset {
            preset,
            evidence: Some(evidence),
        });
    }
    let rails = if has_variable("RAILS_ENV") {
        Some(format!("RAILS_ENV in `{}`'s environment", container.name))
    } else if has_word(&|w| w == "rails" || w.ends_with("/rails")) {
        Some(format!("rails in `{}`'s command", container.name))
    } else {
        None
    };
    rails.map(|evidence| Migration::Command {
        command: "bin/rails db:migrate".to_owned(),
        evidence: Some(evidence),
    })
}

/// `python /app/manage.py` when the command runs manage.py by a path of its own.
fn django_manage(container: &ContainerFacts) -> Option<Vec<String>> {
    let words: Vec<&String> = container
        .entry_point
        .iter()
        .chain(&container.command)
        .collect();
    let at = words.iter().position(|w| w.ends_with("manage.py"))?;
    let interpreter = at
        .checked_sub(1)
        .map(|i| words[i].as_str())
        .filter(|w| {
            w.rsplit('/')
                .next()
                .is_some_and(|b| b.starts_with("python"))
        })
        .unwrap_or("python");
    Some(vec![interpreter.to_owned(), words[at].clone()])
}

/// `123.dkr.ecr.eu-west-1.amazonaws.com/team/app` → (registry, `team/app`); a name without a
/// registry host (Docker Hub, `shipmate local`'s store) has none.
fn split_registry(repository: &str) -> (Option<&str>, &str) {
    match repository.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            (Some(host), rest)
        }
        _ => (None, repository),
    }
}

fn is_ecr(registry: &str) -> bool {
    registry.contains(".dkr.ecr.") && registry.contains(".amazonaws.com")
}

/// A TOML basic string whose `${…}` shipmate will not interpolate.
fn quoted(value: &str) -> String {
    toml::Value::String(value.replace('$', "$$")).to_string()
}

fn quoted_list(values: &[String]) -> String {
    let items: Vec<String> = values.iter().map(|v| quoted(v)).collect();
    format!("[{}]", items.join(", "))
}

fn render(
    discovery: &Discovery,
    options: &InitOptions,
    chosen: &[(&DiscoveredService, &ContainerFacts)],
    migration: &Migration,
    repository: &str,
) -> String {
    let names: Vec<String> = chosen.iter().map(|(s, _)| s.name.clone()).collect();
    let mut out = String::new();
    let mut line = |text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    line(&format!(
        "# shipmate.toml for {} on cluster {}, written by `shipmate init` from the live services.",
        names.join(", "),
        discovery.cluster
    ));
    line(
        "# CI runs `shipmate deploy --image IMAGE` and the rest comes from here; every setting is also a",
    );
    line(
        "# flag (`shipmate deploy --help`). A commented setting shows its default. ${VAR} is read from the",
    );
    line(
        "# environment (${VAR:-default} when unset); check the whole release with `shipmate doctor`.",
    );
    line("");
    line("[service]");
    line(&format!("cluster = {}", quoted(&discovery.cluster)));
    if let [only] = &names[..] {
        line(&format!("service = {}", quoted(only)));
        line("# Several services released behind one migration: services = [\"web\", \"worker\"]");
    } else {
        line(&format!("services = {}", quoted_list(&names)));
    }
    let moving: Vec<String> = chosen
        .iter()
        .map(|(service, container)| format!("{}/{}", service.name, container.name))
        .collect();
    line(&format!(
        "# The containers that get the image are those running its repository ({repository}: {});",
        moving.join(", ")
    ));
    line("# sidecars keep theirs.");
    match &options.container {
        Some(container) => line(&format!("container = {}", quoted(container))),
        None => line(&format!("# container = {}", quoted(&chosen[0].1.name))),
    }
    line("");

    line("[migrate]");
    line(
        "# Runs as a one-off task from the release's new revision: same image, same network settings",
    );
    line("# as the service, command overridden. The rollout starts only if it exits 0.");
    match migration {
        Migration::Preset { preset, evidence } => {
            if let Some(evidence) = evidence {
                line(&format!("# Recognised from {evidence}."));
            }
            line(
                "# The preset plans the pending migrations, refuses what would break the code still serving",
            );
            line(
                "# (a drop, a rename, NOT NULL without a default) unless marked after-deploy, and applies",
            );
            line("# those after the deployment completes (docs/presets.md).");
            line(&format!("preset = {}", quoted(preset.name())));
            let Preset::Django { manage } = preset;
            let manage = manage.join(" ");
            if manage == "python manage.py" {
                line(&format!("# manage = {}", quoted(&manage)));
            } else {
                line(&format!("manage = {}", quoted(&manage)));
            }
            line(
                "# unknown_operations = \"allow\"   # or \"refuse\": RunSQL and RunPython stop the release",
            );
            line("# Without the preset: command = \"python manage.py migrate --noinput\"");
        }
        Migration::Command { command, evidence } => {
            if let Some(evidence) = evidence {
                line(&format!("# Recognised from {evidence}."));
            }
            line("# Split like a shell would, but no shell runs.");
            line(&format!("command = {}", quoted(command)));
        }
        Migration::None => {
            line(
                "# No migration (--no-migrate); give one with `command = \"…\"` or `preset = \"django\"`.",
            );
        }
    }
    line("timeout = \"30m\"");
    match options.gate {
        Some(gate) => line(&format!("gate = {}", quoted(&gate.to_string()))),
        None => {
            line(
                "# Where the migration gates the release: before UpdateService, or inside ECS's deployment",
            );
            line(
                "# paused at PRE_SCALE_UP (\"pause-hook\": no task of the new revision starts before it",
            );
            line("# passed, even when another pipeline deploys meanwhile; docs/release.md).");
            line("# gate = \"before-deploy\"");
        }
    }
    if chosen.len() > 1 {
        line(&format!(
            "# The service whose revision and network the migration uses: service = {}",
            quoted(&names[0])
        ));
    }
    line(
        "# PostgreSQL timeouts for the migration's session (PGOPTIONS), so that it fails fast rather",
    );
    line("# than queue behind a busy table:");
    line("# db_lock_timeout = \"5s\"");
    line("# db_statement_timeout = \"15m\"");
    line("# The migration task's size, roles and environment, over the service's:");
    line("# task_cpu = \"1 vCPU\"");
    line("# task_memory = \"2 GB\"");
    line("# task_role_arn = \"arn:aws:iam::123456789012:role/migrate\"");
    line("# environment = { DJANGO_LOG_LEVEL = \"info\" }");
    line(
        "# A task-definition family of its own (its secrets, a database user with DDL rights), kept in",
    );
    line("# step with the release's image: task_definition = \"web-migrate\"");
    line("# log_quiet_period = \"10s\"   # read its logs until quiet this long after it stopped");
    line("");

    line("[deploy]");
    line("# How long the rollout may take, followed until ECS says the deployment completed.");
    line("timeout = \"30m\"");
    line(
        "# Return the service to the previous revision when the rollout fails or times out (ECS's",
    );
    line("# circuit breaker may roll back on its own; the job fails either way).");
    line("rollback = true");
    line(
        "# wait_until = \"complete\"   # or \"deployed\" (blue/green: before the bake time; `shipmate finish`)",
    );
    line(
        "# A second release of these services waits this long for the first to finish (docs/lock.md).",
    );
    line("lock_timeout = \"30m\"");
    line("# lock_lease = \"5m\"");
    line(
        "# on_cancel = \"stop\"   # SIGINT/SIGTERM stops a running migration; \"leave\" lets it finish",
    );
    line("# poll_interval = \"1s\"");
    if chosen.len() > 1 {
        let waves: Vec<String> = names.iter().map(|n| format!("[{}]", quoted(n))).collect();
        line(&format!(
            "# The order services go live in, each wave complete before the next: waves = [{}]",
            waves.join(", ")
        ));
    }
    line("");

    line("[post_deploy]");
    line("# A one-off task after the rollout completes, e.g. a check that no migration is left:");
    match migration {
        Migration::Preset { .. } => line("# command = \"python manage.py migrate --check\""),
        _ => line("# command = \"…\""),
    }
    line("# timeout = \"30m\"");
    out
}

/// What the written pipeline files are made of: pipelines/ in this repository, with the
/// services' values in place of the example's.
#[derive(Debug, Clone, Copy)]
pub struct PipelineValues<'a> {
    pub cluster: &'a str,
    pub services: &'a [String],
    pub region: &'a str,
    pub repository: &'a str,
    /// The shipmate.toml path, relative to the repository's root.
    pub config: &'a str,
    /// The shipmate version CI installs.
    pub version: &'a str,
}

const BUILDSPEC_TEMPLATE: &str = include_str!("../../../pipelines/buildspec.yml");
const WORKFLOW_TEMPLATE: &str = include_str!("../../../pipelines/github-actions/deploy.yml");

/// A CodeBuild buildspec: pipelines/buildspec.yml with these values.
pub fn buildspec(values: &PipelineValues<'_>) -> String {
    let body = without_header(BUILDSPEC_TEMPLATE);
    let body = set_value(body, "    SHIPMATE_VERSION:", &yaml_string(values.version));
    let body = set_value(&body, "    SHIPMATE_CONFIG:", &yaml_string(values.config));
    // Not in the template (set on its CodeBuild project): each goes first, so in reverse.
    let body = set_value(
        &body,
        "    SHIPMATE_SERVICE:",
        &yaml_string(&values.services.join(",")),
    );
    let body = set_value(&body, "    SHIPMATE_CLUSTER:", &yaml_string(values.cluster));
    let body = set_value(
        &body,
        "    ECR_REPOSITORY:",
        &yaml_string(values.repository),
    );
    format!(
        "# CodeBuild: build one image, push it to ECR, and release it with `shipmate deploy`: the\n\
         # migration runs from that image as a one-off task, the services roll only if it exits 0,\n\
         # and the build fails with the release. Written by `shipmate init` from shipmate's\n\
         # pipelines/buildspec.yml. Make the CodeBuild project in {}, where the services are;\n\
         # its role needs the policy `shipmate init` wrote, plus ECR push.\n{body}",
        values.region
    )
}

/// A GitHub Actions workflow: pipelines/github-actions/deploy.yml with these values.
pub fn github_workflow(values: &PipelineValues<'_>) -> String {
    let body = without_header(WORKFLOW_TEMPLATE);
    let body = set_value(body, "  AWS_REGION:", values.region);
    let body = set_value(&body, "  ECR_REPOSITORY:", values.repository);
    let body = set_value(&body, "  SHIPMATE_VERSION:", values.version);
    let body = set_value(&body, "  SHIPMATE_CLUSTER:", values.cluster);
    let body = set_value(&body, "  SHIPMATE_SERVICE:", &values.services.join(","));
    let body = body.replace(
        "--config shipmate.toml",
        &format!("--config {}", values.config),
    );
    format!(
        "# GitHub Actions: build one image, push it to ECR, and release it with `shipmate deploy`.\n\
         # Written by `shipmate init` from shipmate's pipelines/github-actions/deploy.yml. AWS access\n\
         # through OIDC: set the repository variable RELEASE_ROLE_ARN to a role this repository may\n\
         # assume, with the policy `shipmate init` wrote (plus ECR push).\n{body}"
    )
}

/// The template without its leading comment block (the example's own explanation).
fn without_header(template: &str) -> &str {
    let mut rest = template;
    while rest.starts_with('#') {
        rest = rest.split_once('\n').map_or("", |(_, tail)| tail);
    }
    rest
}

/// `prefix value` in place of the first line starting with `prefix`, or that line added after
/// the block's first line (`variables:` / `env:`) when the template has none.
fn set_value(text: &str, prefix: &str, value: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut done = false;
    for line in text.split_inclusive('\n') {
        if !done && line.starts_with(prefix) {
            let _ = writeln!(out, "{prefix} {value}");
            done = true;
        } else {
            out.push_str(line);
        }
    }
    if done {
        return out;
    }
    // Not in the template: added as the first variable of the block the others are in.
    let block = if prefix.starts_with("    ") {
        "  variables:\n"
    } else {
        "env:\n"
    };
    out.replacen(block, &format!("{block}{prefix} {value}\n"), 1)
}

fn yaml_string(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codedeploy::LoadBalancerView;
    use crate::config::parse_config;

    fn container(name: &str, image: &str) -> ContainerFacts {
        ContainerFacts {
            name: name.to_owned(),
            image: image.to_owned(),
            essential: true,
            ..ContainerFacts::default()
        }
    }

    fn service(name: &str, containers: Vec<ContainerFacts>) -> DiscoveredService {
        DiscoveredService {
            name: name.to_owned(),
            task_definition: format!("arn:aws:ecs:eu-west-1:123456789012:task-definition/{name}:3"),
            shape: DeploymentShape::default(),
            containers,
        }
    }

    fn discovery(services: Vec<DiscoveredService>) -> Discovery {
        Discovery {
            cluster: "prod".to_owned(),
            region: Some("eu-west-1".to_owned()),
            services,
        }
    }

    const ECR: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/bookshop:41";

    fn options(migration: MigrationChoice) -> InitOptions {
        InitOptions {
            migration,
            container: None,
            gate: None,
        }
    }

    fn parsed(proposal: &Proposal) -> crate::config::FileConfig {
        parse_config("shipmate.toml", &proposal.shipmate_toml, &|_| None)
            .unwrap_or_else(|e| panic!("{e}\n{}", proposal.shipmate_toml))
    }

    #[test]
    fn a_django_service_gets_the_preset_and_a_file_shipmate_reads_back() {
        let mut web = container("web", ECR);
        web.variables = vec!["DJANGO_SETTINGS_MODULE".to_owned()];
        let mut router = container(
            "log-router",
            "public.ecr.aws/aws-observability/fluent-bit:2",
        );
        router.essential = false;
        let found = discovery(vec![service("web", vec![web, router])]);
        let proposal = propose(&found, &options(MigrationChoice::Detect)).unwrap();
        assert_eq!(
            proposal.migration.describe(),
            "the django preset, recognised from DJANGO_SETTINGS_MODULE in `web`'s environment"
        );
        assert_eq!(proposal.repository, "bookshop");
        assert_eq!(proposal.containers, vec![("web".into(), "web".into())]);
        assert!(proposal.warnings.is_empty(), "{:?}", proposal.warnings);
        let config = parsed(&proposal);
        assert_eq!(config.service.cluster.as_deref(), Some("prod"));
        assert_eq!(config.service.services, Some(vec!["web".to_owned()]));
        assert_eq!(config.service.container, None);
        assert_eq!(config.migrate.preset.as_deref(), Some("django"));
        assert_eq!(config.migrate.manage, None);
        assert_eq!(config.migrate.command, None);
        assert_eq!(config.deploy.rollback, Some(true));
    }

    #[test]
    fn manage_py_at_a_path_of_its_own_becomes_the_presets_manage() {
        let mut web = container("web", ECR);
        web.command = vec![
            "python3".into(),
            "/srv/app/manage.py".into(),
            "runserver".into(),
        ];
        let proposal = propose(
            &discovery(vec![service("web", vec![web])]),
            &options(MigrationChoice::Detect),
        )
        .unwrap();
        assert_eq!(
            parsed(&proposal).migrate.manage,
            Some(vec!["python3".to_owned(), "/srv/app/manage.py".to_owned()])
        );
    }

    #[test]
    fn recognition_reads_the_command_the_entry_point_and_the_environment() {
        // Entry point, command, variables, and what is recognised.
        type Case = (
            &'static [&'static str],
            &'static [&'static str],
            &'static [&'static str],
            Option<&'static str>,
        );
        let cases: &[Case] = &[
            (
                &[],
                &["gunicorn", "shop.wsgi:application"],
                &[],
                Some("preset django"),
            ),
            (
                &["sh", "-c"],
                &["python manage.py runserver"],
                &[],
                Some("preset django"),
            ),
            (&[], &[], &["DJANGO_SETTINGS_MODULE"], Some("preset django")),
            (
                &[],
                &["bundle", "exec", "rails", "server"],
                &[],
                Some("bin/rails db:migrate"),
            ),
            (&[], &["puma"], &["RAILS_ENV"], Some("bin/rails db:migrate")),
            (&[], &["gunicorn", "app:app"], &["FLASK_APP"], None),
            (&[], &[], &[], None),
        ];
        for (entry_point, command, variables, expected) in cases {
            let facts = ContainerFacts {
                entry_point: entry_point.iter().map(|s| (*s).to_owned()).collect(),
                command: command.iter().map(|s| (*s).to_owned()).collect(),
                variables: variables.iter().map(|s| (*s).to_owned()).collect(),
                ..container("web", "app:1")
            };
            let found = recognise(&facts).map(|m| match m {
                Migration::Preset { preset, .. } => format!("preset {}", preset.name()),
                Migration::Command { command, .. } => command,
                Migration::None => "none".to_owned(),
            });
            assert_eq!(found.as_deref(), *expected, "{command:?} {variables:?}");
        }
    }

    #[test]
    fn an_unrecognised_framework_is_refused_not_guessed() {
        let found = discovery(vec![service("api", vec![container("api", "api:1")])]);
        let error = propose(&found, &options(MigrationChoice::Detect)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot tell how api migrates: no framework recognised in the command or environment of api/api"
        );
        // Said explicitly, any command goes, verbatim, `$` included.
        let proposal = propose(
            &found,
            &options(MigrationChoice::Command(
                "sh -c 'alembic upgrade head && echo ${DONE}'".to_owned(),
            )),
        )
        .unwrap();
        assert_eq!(
            parsed(&proposal).migrate.command,
            Some(vec![
                "sh".to_owned(),
                "-c".to_owned(),
                "alembic upgrade head && echo ${DONE}".to_owned()
            ])
        );
        let none = propose(&found, &options(MigrationChoice::None)).unwrap();
        let config = parsed(&none);
        assert_eq!(
            (config.migrate.command, config.migrate.preset),
            (None, None)
        );
    }

    #[test]
    fn several_essential_containers_need_a_choice_unless_the_load_balancer_makes_it() {
        let two = vec![container("web", ECR), container("nginx", "nginx:1.27")];
        let mut found = discovery(vec![service("web", two)]);
        let command = || options(MigrationChoice::Command("migrate".to_owned()));
        let error = propose(&found, &command()).unwrap_err();
        assert!(
            matches!(&error, InitError::AmbiguousContainer { containers, .. } if containers == &["web", "nginx"]),
            "{error}"
        );
        found.services[0].shape.load_balancers = vec![LoadBalancerView {
            container_name: "nginx".to_owned(),
            container_port: 80,
        }];
        let proposal = propose(&found, &command()).unwrap();
        assert_eq!(proposal.containers, vec![("web".into(), "nginx".into())]);
        let mut chosen = command();
        chosen.container = Some("web".to_owned());
        let proposal = propose(&found, &chosen).unwrap();
        assert_eq!(parsed(&proposal).service.container.as_deref(), Some("web"));
        chosen.container = Some("api".to_owned());
        assert!(matches!(
            propose(&found, &chosen),
            Err(InitError::UnknownContainer { requested, .. }) if requested == "api"
        ));
    }

    #[test]
    fn several_services_are_written_with_their_waves_and_mismatches_are_said() {
        let mut worker = service("worker", vec![container("worker", "other:1")]);
        worker.shape.controller = "CODE_DEPLOY".to_owned();
        let found = discovery(vec![
            service("web", vec![container("web", "ghcr.io/acme/bookshop:1")]),
            worker,
        ]);
        let proposal = propose(
            &found,
            &InitOptions {
                migration: MigrationChoice::Preset("django".to_owned()),
                container: None,
                gate: Some(Gate::PauseHook),
            },
        )
        .unwrap();
        let config = parsed(&proposal);
        assert_eq!(
            config.service.services,
            Some(vec!["web".to_owned(), "worker".to_owned()])
        );
        assert_eq!(config.migrate.gate, Some(Gate::PauseHook));
        assert_eq!(proposal.repository, "acme/bookshop");
        let warnings = proposal.warnings.join("\n");
        assert!(
            warnings.contains("`worker` runs other in `worker`"),
            "{warnings}"
        );
        assert!(warnings.contains("from ghcr.io, not ECR"), "{warnings}");
        assert!(warnings.contains("deployed by CODE_DEPLOY"), "{warnings}");
        assert!(
            proposal
                .shipmate_toml
                .contains("waves = [[\"web\"], [\"worker\"]]")
        );
    }

    #[test]
    fn an_unknown_preset_is_refused() {
        let found = discovery(vec![service("web", vec![container("web", ECR)])]);
        let error = propose(&found, &options(MigrationChoice::Preset("rails".into()))).unwrap_err();
        assert_eq!(error.to_string(), "unknown preset `rails` (known: django)");
    }

    #[test]
    fn containers_are_read_from_the_task_definition_answer() {
        let answer = serde_json::json!({"taskDefinition": {"containerDefinitions": [
            {"name": "web", "image": "app:1", "command": ["gunicorn", "x.wsgi:application"],
             "environment": [{"name": "A", "value": "1"}], "secrets": [{"name": "DB", "valueFrom": "arn"}]},
            {"name": "sidecar", "image": "envoy:1", "essential": false, "entryPoint": ["/envoy"]}
        ]}});
        let containers = ContainerFacts::from_answer(&answer);
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0].variables, vec!["A", "DB"]);
        assert!(containers[0].essential && !containers[1].essential);
        assert_eq!(containers[1].entry_point, vec!["/envoy"]);
    }

    fn values<'a>(services: &'a [String]) -> PipelineValues<'a> {
        PipelineValues {
            cluster: "prod",
            services,
            region: "eu-west-1",
            repository: "team/shop",
            config: "deploy/shipmate.toml",
            version: "1.2.3",
        }
    }

    #[test]
    fn the_buildspec_is_the_templates_with_these_values() {
        let services = vec!["web".to_owned(), "worker".to_owned()];
        let written = buildspec(&values(&services));
        assert!(
            written.contains("    SHIPMATE_VERSION: \"1.2.3\"\n"),
            "{written}"
        );
        assert!(written.contains("    SHIPMATE_CONFIG: \"deploy/shipmate.toml\"\n"));
        assert!(written.contains("    ECR_REPOSITORY: \"team/shop\"\n"));
        assert!(written.contains("    SHIPMATE_SERVICE: \"web,worker\"\n"));
        assert!(!written.contains("bookshop"), "{written}");
        // The phases are the template's, line for line.
        let phases = |text: &str| text[text.find("phases:").unwrap()..].to_owned();
        assert_eq!(phases(&written), phases(BUILDSPEC_TEMPLATE));
    }

    #[test]
    fn the_workflow_is_the_templates_with_these_values() {
        let services = vec!["web".to_owned()];
        let written = github_workflow(&values(&services));
        for line in [
            "  AWS_REGION: eu-west-1\n",
            "  ECR_REPOSITORY: team/shop\n",
            "  SHIPMATE_VERSION: 1.2.3\n",
            "  SHIPMATE_CLUSTER: prod\n",
            "  SHIPMATE_SERVICE: web\n",
        ] {
            assert!(written.contains(line), "{line:?} missing from\n{written}");
        }
        assert!(written.contains("--config deploy/shipmate.toml"));
        assert!(!written.contains("bookshop"), "{written}");
        let jobs = |text: &str| text[text.find("jobs:").unwrap()..].lines().count();
        assert_eq!(jobs(&written), jobs(WORKFLOW_TEMPLATE));
    }
}
