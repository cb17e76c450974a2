//! `shipmate.toml`: the settings a team commits next to its code so that CI runs `shipmate deploy
//! --image X` and nothing else. Parsed by hand from toml's spanned document (not serde) so that
//! every error can name the file, the line and the key, unknown keys get a "did you mean", and
//! `${ENV}` interpolation happens on values only, after parsing (a value can never break the
//! TOML syntax). Environment lookups are injected, keeping this module pure.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::duration::parse_duration;

/// `[service]`: which service a release rolls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceSection {
    pub cluster: Option<String>,
    /// One service (`service = "web"`) or several released together
    /// (`services = ["web", "worker"]`): the file takes one of the two keys.
    pub services: Option<Vec<String>>,
    pub container: Option<String>,
}

/// `[migrate]`: the one-off task that gates the rollout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateSection {
    pub command: Option<Vec<String>>,
    pub cpu: Option<i32>,
    pub memory: Option<i32>,
    pub timeout: Option<Duration>,
    pub launch_type: Option<String>,
    pub allow_spot: Option<bool>,
    /// After the task stopped, read its logs until quiet this long.
    pub log_quiet_period: Option<Duration>,
    /// The service whose new revision and network the migration uses (default: the first).
    pub service: Option<String>,
    /// A task-definition family of the migration's own (its secrets, its roles), kept in step
    /// with the release's image.
    pub task_definition: Option<String>,
    /// Task-level size overrides (`1024`, `1 vCPU`; `2048`, `2 GB`).
    pub task_cpu: Option<String>,
    pub task_memory: Option<String>,
    /// Environment variables for the migration container, in the file's order.
    pub environment: Option<Vec<(String, String)>>,
    pub task_role_arn: Option<String>,
    pub execution_role_arn: Option<String>,
    pub gate: Option<Gate>,
    /// A migration preset (`django`): shipmate composes the command.
    pub preset: Option<String>,
    /// How the framework is invoked in the image (`python manage.py`).
    pub manage: Option<Vec<String>>,
    /// `allow` (default) or `refuse`: how operations the preset cannot judge count.
    pub refuse_unknown: Option<bool>,
    /// PostgreSQL's lock_timeout and statement_timeout for the migration (PGOPTIONS).
    pub db_lock_timeout: Option<Duration>,
    pub db_statement_timeout: Option<Duration>,
}

/// What to do with a running migration when shipmate is interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnCancel {
    /// StopTask: the migration is interrupted with SIGTERM (then SIGKILL).
    #[default]
    Stop,
    /// Leave the task running; shipmate prints how to stop it.
    Leave,
}

impl OnCancel {
    pub fn parse(value: &str) -> Option<OnCancel> {
        match value {
            "stop" => Some(OnCancel::Stop),
            "leave" => Some(OnCancel::Leave),
            _ => None,
        }
    }
}

/// Where the migration gates the release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gate {
    /// Migrate, then UpdateService only when the migration passed.
    #[default]
    BeforeDeploy,
    /// UpdateService with a PAUSE hook at PRE_SCALE_UP, migrate from the revision ECS is
    /// deploying while it waits, then continue it or roll it back (docs/release.md).
    PauseHook,
}

impl Gate {
    pub fn parse(value: &str) -> Option<Gate> {
        match value {
            "before-deploy" => Some(Gate::BeforeDeploy),
            "pause-hook" => Some(Gate::PauseHook),
            _ => None,
        }
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Gate::BeforeDeploy => "before-deploy",
            Gate::PauseHook => "pause-hook",
        })
    }
}

/// How far `shipmate deploy` follows the deployment before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitUntil {
    /// UpdateService was accepted (`--no-wait`).
    Updated,
    /// Production traffic is on the new revision (blue/green, linear, canary: before the bake
    /// time; rolling: the same as complete).
    Deployed,
    /// The deployment is over: old tasks gone, ECS's record SUCCESSFUL.
    #[default]
    Complete,
}

impl WaitUntil {
    pub fn parse(value: &str) -> Option<WaitUntil> {
        match value {
            "updated" => Some(WaitUntil::Updated),
            "deployed" => Some(WaitUntil::Deployed),
            "complete" => Some(WaitUntil::Complete),
            _ => None,
        }
    }
}

impl fmt::Display for WaitUntil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WaitUntil::Updated => "updated",
            WaitUntil::Deployed => "deployed",
            WaitUntil::Complete => "complete",
        })
    }
}

/// `[deploy]`: how the rollout is followed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploySection {
    pub timeout: Option<Duration>,
    pub poll_interval: Option<Duration>,
    pub rollback: Option<bool>,
    pub wait: Option<bool>,
    pub wait_until: Option<WaitUntil>,
    pub lock_timeout: Option<Duration>,
    pub lock_lease: Option<Duration>,
    /// What the release lock protects (default: the cluster and the image's repository).
    pub lock_key: Option<String>,
    pub on_cancel: Option<OnCancel>,
    /// Failed new tasks after which a rollout without a circuit breaker fails.
    pub max_failed_tasks: Option<u32>,
    /// The order services go live in: each wave completes before the next starts.
    pub waves: Option<Vec<Vec<String>>>,
}

/// `[post_deploy]`: an optional one-off task after the rollout completes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostDeploySection {
    pub command: Option<Vec<String>>,
    pub timeout: Option<Duration>,
}

/// The whole file. Every value is optional: flags fill or override it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileConfig {
    pub service: ServiceSection,
    pub migrate: MigrateSection,
    pub deploy: DeploySection,
    pub post_deploy: PostDeploySection,
}

/// A configuration problem, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {}{message}", key.as_ref().map(|k| format!("`{k}`: ")).unwrap_or_default())]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Dotted key (`migrate.timeout`), when the problem is about one.
    pub key: Option<String>,
    pub message: String,
}

const SECTIONS: &[&str] = &["service", "migrate", "deploy", "post_deploy"];
const SERVICE_KEYS: &[&str] = &["cluster", "service", "services", "container"];
const MIGRATE_KEYS: &[&str] = &[
    "command",
    "cpu",
    "memory",
    "timeout",
    "launch_type",
    "allow_spot",
    "log_quiet_period",
    "service",
    "task_definition",
    "task_cpu",
    "task_memory",
    "environment",
    "task_role_arn",
    "execution_role_arn",
    "gate",
    "preset",
    "manage",
    "unknown_operations",
    "db_lock_timeout",
    "db_statement_timeout",
];
const DEPLOY_KEYS: &[&str] = &[
    "timeout",
    "poll_interval",
    "rollback",
    "wait",
    "wait_until",
    "lock_timeout",
    "lock_lease",
    "lock_key",
    "on_cancel",
    "max_failed_tasks",
    "waves",
];
const POST_DEPLOY_KEYS: &[&str] = &["command", "timeout"];

/// Parses `text` (the content of `file`, named in errors). `env` resolves `${NAME}`.
pub fn parse_config(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<FileConfig, ConfigError> {
    let parser = Parser { file, text, env };
    let document = DeTable::parse(text).map_err(|error| {
        let span = error.span().unwrap_or(0..0);
        parser.error(&span, None, error.message().trim_end().to_owned())
    })?;
    let mut config = FileConfig::default();
    for (name, value) in document.get_ref() {
        let section = name.get_ref().as_ref();
        let Some(table) = value.get_ref().as_table() else {
            return Err(parser.error(
                &name.span(),
                Some(section),
                format!(
                    "expected a table `[{section}]`, found {}",
                    value.get_ref().type_str()
                ),
            ));
        };
        match section {
            "service" => parser.service(table, &mut config.service)?,
            "migrate" => parser.migrate(table, &mut config.migrate)?,
            "deploy" => parser.deploy(table, &mut config.deploy)?,
            "post_deploy" => parser.post_deploy(table, &mut config.post_deploy)?,
            other => {
                return Err(parser.error(
                    &name.span(),
                    Some(other),
                    format!("unknown section{}", did_you_mean(other, SECTIONS)),
                ));
            }
        }
    }
    Ok(config)
}

fn did_you_mean(unknown: &str, known: &[&str]) -> String {
    let best = known
        .iter()
        .map(|candidate| (strsim::jaro_winkler(unknown, candidate), *candidate))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((score, candidate)) if score > 0.8 => format!(" (did you mean `{candidate}`?)"),
        _ => format!(" (expected one of: {})", known.join(", ")),
    }
}

struct Parser<'a> {
    file: &'a str,
    text: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
}

type Entry<'i> = (
    &'i Spanned<std::borrow::Cow<'i, str>>,
    &'i Spanned<DeValue<'i>>,
);

impl Parser<'_> {
    fn error(&self, span: &Range<usize>, key: Option<&str>, message: String) -> ConfigError {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        ConfigError {
            file: self.file.to_owned(),
            line,
            column,
            key: key.map(str::to_owned),
            message,
        }
    }

    /// Iterates a section's entries, rejecting keys not in `known`.
    fn entries<'i>(
        &self,
        section: &str,
        table: &'i DeTable<'i>,
        known: &[&str],
    ) -> Result<Vec<(String, Entry<'i>)>, ConfigError> {
        let mut out = Vec::new();
        for (key, value) in table {
            let name = key.get_ref().as_ref();
            let dotted = format!("{section}.{name}");
            if !known.contains(&name) {
                return Err(self.error(
                    &key.span(),
                    Some(&dotted),
                    format!("unknown key{}", did_you_mean(name, known)),
                ));
            }
            out.push((dotted, (key, value)));
        }
        Ok(out)
    }

    fn interpolate(
        &self,
        key: &str,
        value: &Spanned<DeValue<'_>>,
        raw: &str,
    ) -> Result<String, ConfigError> {
        interpolate(raw, self.env).map_err(|message| self.error(&value.span(), Some(key), message))
    }

    fn string(&self, key: &str, value: &Spanned<DeValue<'_>>) -> Result<String, ConfigError> {
        match value.get_ref() {
            DeValue::String(raw) => self.interpolate(key, value, raw),
            other => Err(self.type_error(key, value, "a string", other)),
        }
    }

    fn type_error(
        &self,
        key: &str,
        value: &Spanned<DeValue<'_>>,
        expected: &str,
        found: &DeValue<'_>,
    ) -> ConfigError {
        self.error(
            &value.span(),
            Some(key),
            format!("expected {expected}, found {}", found.type_str()),
        )
    }

    fn boolean(&self, key: &str, value: &Spanned<DeValue<'_>>) -> Result<bool, ConfigError> {
        match value.get_ref() {
            DeValue::Boolean(flag) => Ok(*flag),
            other => Err(self.type_error(key, value, "true or false", other)),
        }
    }

    fn positive(&self, key: &str, value: &Spanned<DeValue<'_>>) -> Result<i32, ConfigError> {
        let text = match value.get_ref() {
            DeValue::Integer(integer) if integer.radix() == 10 => integer.as_str().to_owned(),
            DeValue::String(raw) => self.interpolate(key, value, raw)?,
            other => return Err(self.type_error(key, value, "a positive integer", other)),
        };
        match text.replace('_', "").parse::<i32>() {
            Ok(number) if number > 0 => Ok(number),
            _ => Err(self.error(
                &value.span(),
                Some(key),
                format!("expected a positive integer, found `{text}`"),
            )),
        }
    }

    fn duration(&self, key: &str, value: &Spanned<DeValue<'_>>) -> Result<Duration, ConfigError> {
        let text = match value.get_ref() {
            // A bare integer is seconds.
            DeValue::Integer(integer) if integer.radix() == 10 => {
                format!("{}s", integer.as_str().replace('_', ""))
            }
            DeValue::String(raw) => self.interpolate(key, value, raw)?,
            other => {
                return Err(self.type_error(
                    key,
                    value,
                    "a duration like \"90s\", \"15m\" or seconds",
                    other,
                ));
            }
        };
        parse_duration(&text).map_err(|message| self.error(&value.span(), Some(key), message))
    }

    /// A command: an array of arguments as is, or a string split like a shell would (no shell runs).
    fn command(&self, key: &str, value: &Spanned<DeValue<'_>>) -> Result<Vec<String>, ConfigError> {
        let words = match value.get_ref() {
            DeValue::String(raw) => {
                let line = self.interpolate(key, value, raw)?;
                crate::command::split_command(&line)
                    .map_err(|error| self.error(&value.span(), Some(key), error.to_string()))?
            }
            DeValue::Array(items) => {
                let mut words = Vec::new();
                for item in items {
                    words.push(self.string(key, item)?);
                }
                words
            }
            other => {
                return Err(self.type_error(key, value, "a string or an array of strings", other));
            }
        };
        if words.is_empty() {
            return Err(self.error(&value.span(), Some(key), "the command is empty".to_owned()));
        }
        Ok(words)
    }

    /// A non-empty array of distinct, non-empty names.
    fn names(&self, key: &str, value: &Spanned<DeValue<'_>>) -> Result<Vec<String>, ConfigError> {
        let DeValue::Array(items) = value.get_ref() else {
            return Err(self.type_error(key, value, "an array of strings", value.get_ref()));
        };
        let mut names: Vec<String> = Vec::with_capacity(items.len());
        for item in items {
            let name = self.string(key, item)?;
            if name.trim().is_empty() {
                return Err(self.error(&item.span(), Some(key), "a name is empty".to_owned()));
            }
            if names.contains(&name) {
                return Err(self.error(
                    &item.span(),
                    Some(key),
                    format!("`{name}` is listed twice"),
                ));
            }
            names.push(name);
        }
        if names.is_empty() {
            return Err(self.error(&value.span(), Some(key), "the list is empty".to_owned()));
        }
        Ok(names)
    }

    /// A task size, as an integer or one of ECS's notations; kept as the integer text.
    fn task_size(
        &self,
        key: &str,
        value: &Spanned<DeValue<'_>>,
        parse: fn(&str) -> Option<u32>,
    ) -> Result<String, ConfigError> {
        let text = match value.get_ref() {
            DeValue::Integer(integer) if integer.radix() == 10 => integer.as_str().replace('_', ""),
            DeValue::String(raw) => self.interpolate(key, value, raw)?,
            other => return Err(self.type_error(key, value, "an integer or a string", other)),
        };
        parse(&text).map(|n| n.to_string()).ok_or_else(|| {
            self.error(
                &value.span(),
                Some(key),
                format!("`{text}` is not a task size (e.g. 1024, \"1 vCPU\", \"2 GB\")"),
            )
        })
    }

    /// `{ NAME = "value", … }`: environment variables (names as a shell takes them).
    fn environment(
        &self,
        key: &str,
        value: &Spanned<DeValue<'_>>,
    ) -> Result<Vec<(String, String)>, ConfigError> {
        let DeValue::Table(table) = value.get_ref() else {
            return Err(self.type_error(
                key,
                value,
                "a table of NAME = \"value\"",
                value.get_ref(),
            ));
        };
        let mut variables = Vec::with_capacity(table.len());
        for (name, item) in table {
            let name_text = name.get_ref().as_ref();
            crate::command::validate_env_name(name_text)
                .map_err(|message| self.error(&name.span(), Some(key), message))?;
            variables.push((name_text.to_owned(), self.string(key, item)?));
        }
        Ok(variables)
    }

    fn service(&self, table: &DeTable<'_>, out: &mut ServiceSection) -> Result<(), ConfigError> {
        let mut seen_service = None;
        for (key, (name, value)) in self.entries("service", table, SERVICE_KEYS)? {
            match key.as_str() {
                "service.services" | "service.service" => {
                    if let Some(other) = seen_service.replace(key.clone()) {
                        return Err(self.error(
                            &name.span(),
                            Some(&key),
                            format!("give either `{other}` or `{key}`, not both"),
                        ));
                    }
                    out.services = Some(if key == "service.services" {
                        self.names(&key, value)?
                    } else {
                        vec![self.string(&key, value)?]
                    });
                }
                "service.cluster" => out.cluster = Some(self.string(&key, value)?),
                _ => out.container = Some(self.string(&key, value)?),
            }
        }
        Ok(())
    }

    fn migrate(&self, table: &DeTable<'_>, out: &mut MigrateSection) -> Result<(), ConfigError> {
        for (key, (_, value)) in self.entries("migrate", table, MIGRATE_KEYS)? {
            match key.as_str() {
                "migrate.command" => out.command = Some(self.command(&key, value)?),
                "migrate.cpu" => out.cpu = Some(self.positive(&key, value)?),
                "migrate.memory" => out.memory = Some(self.positive(&key, value)?),
                "migrate.timeout" => out.timeout = Some(self.duration(&key, value)?),
                "migrate.allow_spot" => out.allow_spot = Some(self.boolean(&key, value)?),
                "migrate.log_quiet_period" => {
                    out.log_quiet_period = Some(self.duration(&key, value)?);
                }
                "migrate.service" => out.service = Some(self.string(&key, value)?),
                "migrate.task_definition" => {
                    out.task_definition = Some(self.string(&key, value)?);
                }
                "migrate.task_cpu" => {
                    out.task_cpu = Some(self.task_size(&key, value, crate::plan::cpu_units)?);
                }
                "migrate.task_memory" => {
                    out.task_memory = Some(self.task_size(&key, value, crate::plan::memory_mib)?);
                }
                "migrate.environment" => out.environment = Some(self.environment(&key, value)?),
                "migrate.task_role_arn" => out.task_role_arn = Some(self.string(&key, value)?),
                "migrate.execution_role_arn" => {
                    out.execution_role_arn = Some(self.string(&key, value)?);
                }
                "migrate.preset" => out.preset = Some(self.string(&key, value)?),
                "migrate.manage" => out.manage = Some(self.command(&key, value)?),
                "migrate.unknown_operations" => {
                    let text = self.string(&key, value)?;
                    out.refuse_unknown = Some(match text.as_str() {
                        "allow" => false,
                        "refuse" => true,
                        _ => {
                            return Err(self.error(
                                &value.span(),
                                Some(&key),
                                format!("expected \"allow\" or \"refuse\", found `{text}`"),
                            ));
                        }
                    });
                }
                "migrate.db_lock_timeout" => {
                    out.db_lock_timeout = Some(self.duration(&key, value)?);
                }
                "migrate.db_statement_timeout" => {
                    out.db_statement_timeout = Some(self.duration(&key, value)?);
                }
                "migrate.gate" => {
                    let text = self.string(&key, value)?;
                    out.gate = Some(Gate::parse(&text).ok_or_else(|| {
                        self.error(
                            &value.span(),
                            Some(&key),
                            format!("expected \"before-deploy\" or \"pause-hook\", found `{text}`"),
                        )
                    })?);
                }
                _ => {
                    let launch = self.string(&key, value)?;
                    if !matches!(launch.as_str(), "FARGATE" | "EC2" | "EXTERNAL") {
                        return Err(self.error(
                            &value.span(),
                            Some(&key),
                            format!("expected FARGATE, EC2 or EXTERNAL, found `{launch}`"),
                        ));
                    }
                    out.launch_type = Some(launch);
                }
            }
        }
        Ok(())
    }

    fn deploy(&self, table: &DeTable<'_>, out: &mut DeploySection) -> Result<(), ConfigError> {
        for (key, (_, value)) in self.entries("deploy", table, DEPLOY_KEYS)? {
            match key.as_str() {
                "deploy.timeout" => out.timeout = Some(self.duration(&key, value)?),
                "deploy.poll_interval" => {
                    let interval = self.duration(&key, value)?;
                    if interval.is_zero() {
                        return Err(self.error(
                            &value.span(),
                            Some(&key),
                            "the poll interval must be above zero".to_owned(),
                        ));
                    }
                    out.poll_interval = Some(interval);
                }
                "deploy.rollback" => out.rollback = Some(self.boolean(&key, value)?),
                "deploy.wait" => out.wait = Some(self.boolean(&key, value)?),
                "deploy.wait_until" => {
                    let text = self.string(&key, value)?;
                    out.wait_until = Some(WaitUntil::parse(&text).ok_or_else(|| {
                        self.error(
                            &value.span(),
                            Some(&key),
                            format!(
                                "expected \"updated\", \"deployed\" or \"complete\", found `{text}`"
                            ),
                        )
                    })?);
                }
                "deploy.lock_timeout" => out.lock_timeout = Some(self.duration(&key, value)?),
                "deploy.lock_lease" => out.lock_lease = Some(self.duration(&key, value)?),
                "deploy.lock_key" => {
                    let lock_key = self.string(&key, value)?;
                    crate::ledger::validate_key(&lock_key)
                        .map_err(|message| self.error(&value.span(), Some(&key), message))?;
                    out.lock_key = Some(lock_key);
                }
                "deploy.max_failed_tasks" => {
                    out.max_failed_tasks = Some(self.positive(&key, value)?.unsigned_abs());
                }
                "deploy.waves" => {
                    let DeValue::Array(items) = value.get_ref() else {
                        return Err(self.type_error(
                            &key,
                            value,
                            "an array of arrays of service names",
                            value.get_ref(),
                        ));
                    };
                    let mut waves: Vec<Vec<String>> = Vec::new();
                    for item in items {
                        let wave = self.names(&key, item)?;
                        if let Some(twice) = wave
                            .iter()
                            .find(|s| waves.iter().flatten().any(|w| w == *s))
                        {
                            return Err(self.error(
                                &item.span(),
                                Some(&key),
                                format!("`{twice}` is in two waves"),
                            ));
                        }
                        waves.push(wave);
                    }
                    out.waves = Some(waves);
                }
                _ => {
                    let text = self.string(&key, value)?;
                    out.on_cancel = Some(OnCancel::parse(&text).ok_or_else(|| {
                        self.error(
                            &value.span(),
                            Some(&key),
                            format!("expected \"stop\" or \"leave\", found `{text}`"),
                        )
                    })?);
                }
            }
        }
        Ok(())
    }

    fn post_deploy(
        &self,
        table: &DeTable<'_>,
        out: &mut PostDeploySection,
    ) -> Result<(), ConfigError> {
        for (key, (_, value)) in self.entries("post_deploy", table, POST_DEPLOY_KEYS)? {
            match key.as_str() {
                "post_deploy.command" => out.command = Some(self.command(&key, value)?),
                _ => out.timeout = Some(self.duration(&key, value)?),
            }
        }
        Ok(())
    }
}

/// Replaces `${NAME}` and `${NAME:-default}`; `$$` is a literal `$`. An unset variable without a
/// default is an error: a silently empty cluster name is worse than a failed parse.
pub fn interpolate(raw: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                return Err(format!("unclosed `${{` in `{raw}`"));
            };
            let expression = &body[..end];
            let (name, default) = match expression.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (expression, None),
            };
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!(
                    "`${{{expression}}}` is not a valid variable reference"
                ));
            }
            match (env(name).filter(|value| !value.is_empty()), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(format!(
                        "environment variable `{name}` is not set (use `${{{name}:-default}}` for a default)"
                    ));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

impl fmt::Display for OnCancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnCancel::Stop => "stop",
            OnCancel::Leave => "leave",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "CLUSTER" => Some("prod".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<FileConfig, ConfigError> {
        parse_config("shipmate.toml", text, &env)
    }

    #[test]
    fn full_file() {
        let config = parse(
            r#"
[service]
cluster = "${CLUSTER}"
service = "web"
container = "app"

[migrate]
command = "python manage.py migrate --noinput"
cpu = 512
memory = 1024
timeout = "30m"
allow_spot = false
log_quiet_period = "15s"

[deploy]
timeout = 900
poll_interval = "500ms"
rollback = true
wait = true
lock_timeout = "10m"
lock_lease = "2m"
lock_key = "bookshop-db"
on_cancel = "leave"
max_failed_tasks = 4

[post_deploy]
command = ["python", "manage.py", "clearsessions"]
"#,
        )
        .unwrap();
        assert_eq!(config.service.cluster.as_deref(), Some("prod"));
        assert_eq!(
            config.migrate.command.unwrap(),
            ["python", "manage.py", "migrate", "--noinput"]
        );
        assert_eq!(config.migrate.memory, Some(1024));
        assert_eq!(config.migrate.timeout, Some(Duration::from_secs(1800)));
        assert_eq!(config.deploy.timeout, Some(Duration::from_secs(900)));
        assert_eq!(
            config.deploy.poll_interval,
            Some(Duration::from_millis(500))
        );
        assert_eq!(config.deploy.on_cancel, Some(OnCancel::Leave));
        assert_eq!(
            config.migrate.log_quiet_period,
            Some(Duration::from_secs(15))
        );
        assert_eq!(config.deploy.lock_lease, Some(Duration::from_secs(120)));
        assert_eq!(config.deploy.lock_key.as_deref(), Some("bookshop-db"));
        assert_eq!(config.deploy.max_failed_tasks, Some(4));
        assert_eq!(
            config.post_deploy.command.unwrap(),
            ["python", "manage.py", "clearsessions"]
        );
    }

    #[test]
    fn a_release_of_several_services() {
        let config = parse(
            r#"
[service]
cluster = "prod"
services = ["web", "worker", "beat"]

[migrate]
command = "python manage.py migrate"
service = "web"
task_definition = "web-migrate"
task_cpu = "1 vCPU"
task_memory = 4096
environment = { DJANGO_SETTINGS_MODULE = "shop.settings.migrate", STATEMENT_TIMEOUT = "0" }
task_role_arn = "arn:aws:iam::123456789012:role/migrate"

[deploy]
waves = [["web"], ["worker", "beat"]]
"#,
        )
        .unwrap();
        assert_eq!(config.service.services.unwrap(), ["web", "worker", "beat"]);
        assert_eq!(config.migrate.service.as_deref(), Some("web"));
        assert_eq!(
            config.migrate.task_definition.as_deref(),
            Some("web-migrate")
        );
        assert_eq!(config.migrate.task_cpu.as_deref(), Some("1024"));
        assert_eq!(config.migrate.task_memory.as_deref(), Some("4096"));
        assert_eq!(
            config.migrate.environment.unwrap(),
            [
                (
                    "DJANGO_SETTINGS_MODULE".to_owned(),
                    "shop.settings.migrate".to_owned()
                ),
                ("STATEMENT_TIMEOUT".to_owned(), "0".to_owned())
            ]
        );
        assert_eq!(
            config.deploy.waves.unwrap(),
            [
                vec!["web".to_owned()],
                vec!["worker".to_owned(), "beat".to_owned()]
            ]
        );
        let one = parse("[service]\nservice = \"web\"\n").unwrap();
        assert_eq!(one.service.services.unwrap(), ["web"]);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let cases: &[(&str, &str)] = &[
            (
                "[migrate]\ncomand = \"x\"\n",
                "shipmate.toml:2:1: `migrate.comand`: unknown key (did you mean `command`?)",
            ),
            (
                "[servce]\n",
                "shipmate.toml:1:2: `servce`: unknown section (did you mean `service`?)",
            ),
            (
                "[deploy]\n\ntimeout = \"ten minutes\"\n",
                "shipmate.toml:3:11: `deploy.timeout`: invalid duration `ten minutes`: expected a number followed by ms, s, m or h (e.g. \"90s\", \"15m\", \"1h30m\")",
            ),
            (
                "[migrate]\nmemory = -5\n",
                "shipmate.toml:2:10: `migrate.memory`: expected a positive integer, found `-5`",
            ),
            (
                "[service]\ncluster = \"${NOPE}\"\n",
                "shipmate.toml:2:11: `service.cluster`: environment variable `NOPE` is not set (use `${NOPE:-default}` for a default)",
            ),
            (
                "[deploy]\nrollback = \"yes\"\n",
                "shipmate.toml:2:12: `deploy.rollback`: expected true or false, found string",
            ),
            (
                "[deploy]\non_cancel = \"kill\"\n",
                "shipmate.toml:2:13: `deploy.on_cancel`: expected \"stop\" or \"leave\", found `kill`",
            ),
            (
                "[migrate]\ncommand = \"echo 'unterminated\"\n",
                "shipmate.toml:2:11: `migrate.command`: cannot split the command `echo 'unterminated`: unbalanced quotes",
            ),
            (
                "[migrate]\ncommand = []\n",
                "shipmate.toml:2:11: `migrate.command`: the command is empty",
            ),
            (
                "[deploy]\nlock_key = \"book shop\"\n",
                "shipmate.toml:2:12: `deploy.lock_key`: the lock key `book shop` contains ` `: use letters, digits, `-` and `_`",
            ),
            (
                "[service]\nservice = \"web\"\nservices = [\"web\"]\n",
                "shipmate.toml:3:1: `service.services`: give either `service.service` or `service.services`, not both",
            ),
            (
                "[service]\nservices = [\"web\", \"web\"]\n",
                "shipmate.toml:2:20: `service.services`: `web` is listed twice",
            ),
            (
                "[service]\nservices = []\n",
                "shipmate.toml:2:12: `service.services`: the list is empty",
            ),
            (
                "[deploy]\nwaves = [[\"web\"], [\"worker\", \"web\"]]\n",
                "shipmate.toml:2:19: `deploy.waves`: `web` is in two waves",
            ),
            (
                "[migrate]\ntask_cpu = \"lots\"\n",
                "shipmate.toml:2:12: `migrate.task_cpu`: `lots` is not a task size (e.g. 1024, \"1 vCPU\", \"2 GB\")",
            ),
            (
                "[migrate]\nenvironment = { \"9LIVES\" = \"x\" }\n",
                "shipmate.toml:2:17: `migrate.environment`: `9LIVES` is not an environment variable name (letters, digits and `_`, not starting with a digit)",
            ),
            (
                "service = 3\n",
                "shipmate.toml:1:1: `service`: expected a table `[service]`, found integer",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err();
            assert_eq!(&error.to_string(), expected, "for {text:?}");
        }
    }

    #[test]
    fn syntax_errors_are_located() {
        let error = parse("[service]\ncluster = \n").unwrap_err();
        assert_eq!((error.file.as_str(), error.line), ("shipmate.toml", 2));
        assert_eq!(error.key, None);
    }

    #[test]
    fn interpolation_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("plain", Ok("plain")),
            ("${CLUSTER}-x", Ok("prod-x")),
            ("${MISSING:-fallback}", Ok("fallback")),
            ("${EMPTY:-fallback}", Ok("fallback")),
            ("${CLUSTER:-fallback}", Ok("prod")),
            ("cost $5", Ok("cost $5")),
            ("$${CLUSTER}", Ok("${CLUSTER}")),
            ("${", Err("unclosed `${` in `${`")),
            ("${A B}", Err("`${A B}` is not a valid variable reference")),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                interpolate(raw, &env).as_deref(),
                expected.map_err(str::to_owned).as_deref(),
                "for {raw:?}"
            );
        }
    }
}
