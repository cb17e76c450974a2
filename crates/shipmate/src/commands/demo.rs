//! `shipmate demo`: the whole story on one machine. An embedded `shipmate local` serves ECS and
//! CloudWatch Logs; the example Django project's releases are pushed as images; a 2-task web
//! service and a worker service (same image, `manage.py catalog_worker`) run release v1; then
//! `shipmate deploy --service web --service worker` releases v2 (a new column and its backfill),
//! v3 (a migration that fails halfway: gated, v2 keeps serving) and v4 (the fix), one migration
//! for both services each time. Every release is
//! the real `shipmate deploy` command, run as a child process against the embedded endpoint, so
//! what the demo shows is exactly what CI would print.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use serde_json::{Value, json};
use shipmate_local_engine::Request;
use shipmate_local_protocol::Target;
use shipmate_local_server::{RunningServer, ServerConfig};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::signals::wait_for_signal;
use crate::{ExitStatus, Printer};

const CLUSTER: &str = "bookshop";
const SERVICE: &str = "web";
const CONTAINER: &str = "web";
/// The background worker: a second service from the same image, released with the web.
const WORKER: &str = "worker";
const LOG_GROUP: &str = "/ecs/bookshop";
const REGION: &str = "us-east-1";
const RELEASES: [&str; 4] = ["v1", "v2", "v3", "v4"];
/// How long the demo waits for the service to reach a steady state before giving up.
const STEADY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a freshly started task gets to start answering HTTP.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// The example's database: a PostgreSQL URL (postgresql://user:password@127.0.0.1:5432/db).
    /// Default: a SQLite file in a temporary directory.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// The example project. Default: examples/django of the checkout shipmate runs from.
    #[arg(long, value_name = "DIR")]
    example: Option<PathBuf>,
    /// Where to keep the example's Python environment (created on first use).
    /// Default: $XDG_CACHE_HOME/shipmate/demo-venv (~/.cache/shipmate/demo-venv).
    #[arg(long, value_name = "DIR", env = "SHIPMATE_DEMO_VENV")]
    venv: Option<PathBuf>,
}

pub(crate) async fn demo(args: DemoArgs, printer: &Printer) -> ExitStatus {
    let workdir = match tempfile::Builder::new().prefix("shipmate-demo-").tempdir() {
        Ok(dir) => dir,
        Err(error) => {
            printer
                .error(&anyhow::Error::new(error).context("cannot create a temporary directory"));
            return ExitStatus::Failure;
        }
    };
    let server = match shipmate_local_server::start(ServerConfig {
        listen: "127.0.0.1:0".parse().expect("a valid address"),
        ..ServerConfig::default()
    })
    .await
    {
        Ok(server) => server,
        Err(error) => {
            printer.error(
                &anyhow::Error::new(error).context("cannot start the embedded shipmate local"),
            );
            return ExitStatus::Failure;
        }
    };
    let demo = Demo {
        printer,
        server: &server,
        workdir: workdir.path(),
        outcomes: Vec::new(),
    };
    // Ctrl-C ends the story wherever it is; the endpoint then stops every process it started.
    let status = tokio::select! {
        result = demo.run(&args) => match result {
            Ok(status) => status,
            Err(error) => {
                printer.error(&error);
                ExitStatus::Failure
            }
        },
        signal = wait_for_signal() => {
            printer.info(&format!("\n{signal} received: stopping every task the demo started"));
            ExitStatus::Interrupted
        }
    };
    server.shutdown().await;
    status
}

struct Demo<'a> {
    printer: &'a Printer,
    server: &'a RunningServer,
    workdir: &'a Path,
    outcomes: Vec<Outcome>,
}

struct Outcome {
    release: &'static str,
    what: String,
    exit_code: i32,
    duration: Duration,
}

impl Demo<'_> {
    async fn run(mut self, args: &DemoArgs) -> anyhow::Result<ExitStatus> {
        let started = Instant::now();
        let example = find_example(args.example.as_deref())?;
        self.step(&format!("example project: {}", example.display()));
        let venv = args.venv.clone().unwrap_or_else(default_venv);
        prepare_venv(self.printer, &example, &venv).await?;
        let database_url = match &args.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite:///{}",
                self.workdir.join("bookshop.sqlite3").display()
            ),
        };

        if args.database_url.is_some() {
            ensure_empty_database(&venv, &database_url).await?;
        }

        self.step(&format!(
            "shipmate local is serving ECS and CloudWatch Logs at {}",
            self.server.endpoint_url()
        ));
        for release in RELEASES {
            let dir = self.workdir.join(format!("bookshop-{release}"));
            run_quietly(
                tokio::process::Command::new(example.join("build-release"))
                    .arg(release)
                    .arg(&dir),
            )
            .await
            .with_context(|| format!("cannot build release {release} of the example"))?;
            let image = format!("bookshop:{release}");
            self.server
                .engine()
                .images
                .push_dir(&image, &dir)
                .with_context(|| format!("cannot push {image}"))?;
        }
        self.step("pushed images bookshop:v1 .. bookshop:v4 into the endpoint's image store");

        self.create_services(&venv, &database_url).await?;
        self.step(&format!("cluster `{CLUSTER}`, log group `{LOG_GROUP}`, services `{SERVICE}` and `{WORKER}` (desired 0, awsvpc, circuit breaker on)"));

        // The service was created on v1 with no tasks: its first migration is a one-off command.
        let migrate = ["python", "manage.py", "migrate", "--noinput"];
        let mut args = vec!["run", "--cluster", CLUSTER, "--service", SERVICE, "--"];
        args.extend(migrate);
        self.shipmate("v1", "create the books table and seed it", &args)
            .await?;
        for (service, count) in [(SERVICE, 2), (WORKER, 1)] {
            self.ecs(
                "UpdateService",
                json!({"cluster": CLUSTER, "service": service, "desiredCount": count}),
            )
            .await?;
            self.wait_steady(service).await?;
        }
        self.step("scaled the web service to 2 tasks and the worker to 1");
        self.show_answers("v1").await?;

        self.release(
            "v2",
            "add a slug column, backfill it, make it required",
            &example,
        )
        .await?;
        self.show_answers("v2").await?;
        self.wait_steady(WORKER).await?;
        self.show_worker("v2").await?;

        // During the failing release, keep asking the v2 tasks: they must never stop answering.
        let answered = Arc::new(AtomicU32::new(0));
        let failed = Arc::new(AtomicU32::new(0));
        let addresses = self.task_addresses().await?;
        let poller = tokio::spawn(poll_answers(addresses, answered.clone(), failed.clone()));
        self.release(
            "v3",
            "add a price column whose data migration fails halfway",
            &example,
        )
        .await?;
        poller.abort();
        self.show_answers("v3 attempt").await?;
        self.step(&format!(
            "while v3 was gated the v2 tasks answered {} requests and failed {}",
            answered.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed)
        ));

        self.release("v4", "the price migration, fixed", &example)
            .await?;
        self.show_answers("v4").await?;
        self.wait_steady(WORKER).await?;
        self.show_worker("v4").await?;

        self.summary(started.elapsed());
        let expected = self
            .outcomes
            .iter()
            .all(|o| (o.release == "v3") == (o.exit_code != 0));
        if !expected {
            bail!(
                "the demo did not go as expected: v1, v2 and v4 should deploy and v3 should be gated"
            );
        }
        Ok(ExitStatus::Success)
    }

    fn step(&self, line: &str) {
        self.printer.info(&format!("==> {line}"));
    }

    async fn ecs(&self, operation: &str, body: Value) -> anyhow::Result<Value> {
        self.call(
            &format!("AmazonEC2ContainerServiceV20141113.{operation}"),
            body,
        )
        .await
    }

    async fn call(&self, target: &str, body: Value) -> anyhow::Result<Value> {
        let target = Target::parse(target).expect("the demo's targets are valid");
        let body = body.to_string();
        let request = Request {
            target: &target,
            region: REGION,
            body: body.as_bytes(),
        };
        let output = self
            .server
            .engine()
            .handle(request)
            .await
            .with_context(|| format!("{} failed", target.operation))?;
        Ok(serde_json::from_slice(&output)?)
    }

    async fn create_services(&self, venv: &Path, database_url: &str) -> anyhow::Result<()> {
        self.ecs("CreateCluster", json!({"clusterName": CLUSTER}))
            .await?;
        self.call(
            "Logs_20140328.CreateLogGroup",
            json!({"logGroupName": LOG_GROUP}),
        )
        .await?;
        let path = format!(
            "{}:/usr/local/bin:/usr/bin:/bin",
            venv.join("bin").display()
        );
        let definition = self
            .ecs(
                "RegisterTaskDefinition",
                json!({
                    "family": "bookshop",
                    "networkMode": "awsvpc",
                    "requiresCompatibilities": ["FARGATE"],
                    "cpu": "256",
                    "memory": "512",
                    "containerDefinitions": [{
                        "name": CONTAINER,
                        "image": "bookshop:v1",
                        "essential": true,
                        "command": ["gunicorn", "bookshop.wsgi"],
                        "portMappings": [{"containerPort": 8000, "protocol": "tcp"}],
                        "environment": [
                            {"name": "PATH", "value": path},
                            {"name": "DATABASE_URL", "value": database_url},
                            {"name": "DJANGO_ALLOWED_HOSTS", "value": "*"},
                            {"name": "PYTHONUNBUFFERED", "value": "1"},
                        ],
                        "logConfiguration": {"logDriver": "awslogs", "options": {
                            "awslogs-group": LOG_GROUP,
                            "awslogs-region": REGION,
                            "awslogs-stream-prefix": "bookshop",
                        }},
                    }],
                }),
            )
            .await?;
        let arn = definition["taskDefinition"]["taskDefinitionArn"]
            .as_str()
            .unwrap_or("bookshop")
            .to_owned();
        self.create_service(SERVICE, &arn).await?;
        let worker = self
            .ecs(
                "RegisterTaskDefinition",
                json!({
                    "family": "bookshop-worker",
                    "networkMode": "awsvpc",
                    "requiresCompatibilities": ["FARGATE"],
                    "cpu": "256",
                    "memory": "512",
                    "containerDefinitions": [{
                        "name": WORKER,
                        "image": "bookshop:v1",
                        "essential": true,
                        "command": ["python", "manage.py", "catalog_worker"],
                        "stopTimeout": 5,
                        "environment": [
                            {"name": "PATH", "value": path},
                            {"name": "DATABASE_URL", "value": database_url},
                            {"name": "PYTHONUNBUFFERED", "value": "1"},
                        ],
                        "logConfiguration": {"logDriver": "awslogs", "options": {
                            "awslogs-group": LOG_GROUP,
                            "awslogs-region": REGION,
                            "awslogs-stream-prefix": "worker",
                        }},
                    }],
                }),
            )
            .await?;
        let arn = worker["taskDefinition"]["taskDefinitionArn"]
            .as_str()
            .unwrap_or("bookshop-worker")
            .to_owned();
        self.create_service(WORKER, &arn).await
    }

    async fn create_service(&self, name: &str, task_definition: &str) -> anyhow::Result<()> {
        self.ecs(
            "CreateService",
            json!({
                "cluster": CLUSTER,
                "serviceName": name,
                "taskDefinition": task_definition,
                "desiredCount": 0,
                "launchType": "FARGATE",
                "networkConfiguration": {"awsvpcConfiguration": {
                    "subnets": ["subnet-demo"], "securityGroups": ["sg-demo"], "assignPublicIp": "DISABLED"
                }},
                "deploymentConfiguration": {
                    "deploymentCircuitBreaker": {"enable": true, "rollback": true},
                    "maximumPercent": 200,
                    "minimumHealthyPercent": 100,
                },
            }),
        )
        .await?;
        Ok(())
    }

    /// Runs `shipmate deploy` of one release to the web service and the worker, as CI would,
    /// against the embedded endpoint.
    async fn release(
        &mut self,
        release: &'static str,
        what: &str,
        example: &Path,
    ) -> anyhow::Result<()> {
        let image = format!("bookshop:{release}");
        let config = example.join("shipmate.toml").display().to_string();
        let args = [
            "deploy",
            "--config",
            &config,
            "--cluster",
            CLUSTER,
            "--service",
            SERVICE,
            "--service",
            WORKER,
            "--image",
            &image,
        ];
        self.shipmate(release, what, &args).await
    }

    /// Runs one shipmate command against the embedded endpoint, its output shown as it comes.
    async fn shipmate(
        &mut self,
        release: &'static str,
        what: &str,
        args: &[&str],
    ) -> anyhow::Result<()> {
        self.printer.info("");
        self.step(&format!("release {release}: {what}"));
        self.printer
            .info(&format!("    $ shipmate {}", args.join(" ")));
        let started = Instant::now();
        let status = tokio::process::Command::new(
            std::env::current_exe().context("cannot find the shipmate binary")?,
        )
        .args(args)
        .env("AWS_ENDPOINT_URL", self.server.endpoint_url())
        .env("AWS_ACCESS_KEY_ID", "shipmate-demo")
        .env("AWS_SECRET_ACCESS_KEY", "shipmate-demo")
        .env("AWS_REGION", REGION)
        .env("AWS_DEFAULT_REGION", REGION)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL_ECS")
        .env_remove("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS")
        .env_remove("SHIPMATE_OUTPUT")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .context("cannot run shipmate")?;
        let exit_code = status.code().unwrap_or(1);
        self.outcomes.push(Outcome {
            release,
            what: what.to_owned(),
            exit_code,
            duration: started.elapsed(),
        });
        if exit_code == 0 {
            self.step(&format!("release {release}: done"));
        } else {
            self.step(&format!(
                "release {release} was gated: shipmate exited {exit_code}, no service was touched"
            ));
        }
        Ok(())
    }

    async fn wait_steady(&self, service: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let output = self
                .ecs(
                    "DescribeServices",
                    json!({"cluster": CLUSTER, "services": [service]}),
                )
                .await?;
            let service = &output["services"][0];
            let deployments = service["deployments"].as_array().map_or(0, Vec::len);
            if deployments == 1 && service["runningCount"] == service["desiredCount"] {
                return Ok(());
            }
            if started.elapsed() > STEADY_TIMEOUT {
                bail!(
                    "service {service} did not reach a steady state in {} s",
                    STEADY_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The private addresses of the service's running tasks.
    async fn task_addresses(&self) -> anyhow::Result<Vec<String>> {
        let listed = self
            .ecs(
                "ListTasks",
                json!({"cluster": CLUSTER, "serviceName": SERVICE}),
            )
            .await?;
        let arns = listed["taskArns"].clone();
        if arns.as_array().is_none_or(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let described = self
            .ecs("DescribeTasks", json!({"cluster": CLUSTER, "tasks": arns}))
            .await?;
        let addresses = described["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|task| task["lastStatus"] == "RUNNING")
            .filter_map(|task| {
                task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"].as_str()
            })
            .map(str::to_owned)
            .collect();
        Ok(addresses)
    }

    /// Asks every running task for /api/books and shows what it answers.
    async fn show_answers(&self, label: &str) -> anyhow::Result<()> {
        for address in self.task_addresses().await? {
            let url = format!("http://{address}:8000/api/books");
            // A task that just started gets a moment to start listening.
            let started = Instant::now();
            let answer = loop {
                match get(&url).await {
                    Ok(body) => break describe_books(&body),
                    Err(_) if started.elapsed() < ANSWER_TIMEOUT => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(error) => break format!("no answer ({error})"),
                }
            };
            self.printer
                .info(&format!("    after {label}: GET {url} -> {answer}"));
        }
        Ok(())
    }

    /// Shows the newest line the worker's running tasks logged: what its release sees.
    async fn show_worker(&self, label: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let events = self
                .call(
                    "Logs_20140328.FilterLogEvents",
                    json!({"logGroupName": LOG_GROUP, "logStreamNamePrefix": "worker/"}),
                )
                .await?;
            let newest = events["events"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["message"].as_str())
                .rfind(|m| m.contains(&format!("(release {label})")))
                .map(str::to_owned);
            if let Some(line) = newest {
                self.printer
                    .info(&format!("    after {label}: worker logs -> {line}"));
                return Ok(());
            }
            if started.elapsed() > ANSWER_TIMEOUT {
                self.printer.info(&format!(
                    "    after {label}: the worker logged nothing from {label}"
                ));
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn summary(&self, elapsed: Duration) {
        self.printer.info("");
        self.step(&format!("summary ({:.0} s in all)", elapsed.as_secs_f64()));
        for outcome in &self.outcomes {
            let result = if outcome.exit_code == 0 {
                "deployed".to_owned()
            } else {
                format!(
                    "gated (exit {}): migration failed, services kept the previous release",
                    outcome.exit_code
                )
            };
            self.printer.info(&format!(
                "    {:<3} {:<55} {:>5.1} s  {result}",
                outcome.release,
                outcome.what,
                outcome.duration.as_secs_f64()
            ));
        }
    }
}

/// `examples/django` of the checkout: next to the current directory or above it, else where
/// this binary was built from.
fn find_example(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = given {
        return check_example(dir);
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(current) = std::env::current_dir() {
        candidates.extend(current.ancestors().map(|dir| dir.join("examples/django")));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/django"));
    match candidates
        .iter()
        .find(|dir| dir.join("build-release").is_file())
    {
        Some(dir) => check_example(dir),
        None => bail!(
            "cannot find the example project (examples/django); run the demo from the shipmate checkout or pass --example DIR"
        ),
    }
}

fn check_example(dir: &Path) -> anyhow::Result<PathBuf> {
    if !dir.join("build-release").is_file() || !dir.join("shipmate.toml").is_file() {
        bail!(
            "`{}` is not the example project (no build-release or shipmate.toml)",
            dir.display()
        );
    }
    Ok(dir.canonicalize()?)
}

fn default_venv() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("shipmate").join("demo-venv")
}

/// Creates the virtualenv that plays the image's Python and installs the example's
/// requirements into it, unless it already has exactly these requirements.
/// The demo starts from v1's schema: a database that already has tables (an earlier demo run)
/// would make its releases fail for reasons that have nothing to do with them. Said up front.
async fn ensure_empty_database(venv: &Path, database_url: &str) -> anyhow::Result<()> {
    const COUNT_TABLES: &str = "import os, psycopg; c = psycopg.connect(os.environ['DATABASE_URL']); print(c.execute(\"select count(*) from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema')\").fetchone()[0])";
    if !database_url.starts_with("postgres") {
        return Ok(());
    }
    let output = tokio::process::Command::new(venv.join("bin").join("python"))
        .args(["-c", COUNT_TABLES])
        .env("DATABASE_URL", database_url)
        .output()
        .await
        .context("cannot run the demo's Python to look at the database")?;
    if !output.status.success() {
        bail!(
            "cannot connect to {database_url}: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("no error message")
        );
    }
    let tables = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if tables != "0" {
        bail!(
            "the database at {database_url} is not empty ({tables} tables): the demo starts from release v1's schema and needs an empty database (create one, e.g. `createdb bookshop_demo`, or leave out --database-url to use a fresh SQLite file)"
        );
    }
    Ok(())
}

async fn prepare_venv(printer: &Printer, example: &Path, venv: &Path) -> anyhow::Result<()> {
    let requirements = example.join("requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .with_context(|| format!("cannot read `{}`", requirements.display()))?;
    let stamp = venv.join("shipmate-requirements.txt");
    if std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
        printer.info(&format!("==> Python environment ready: {}", venv.display()));
        return Ok(());
    }
    printer.info(&format!(
        "==> preparing the example's Python environment in {} (first run only)",
        venv.display()
    ));
    let python = which("python3").context("the demo needs python3 on PATH")?;
    run_showing(
        printer,
        tokio::process::Command::new(python)
            .args(["-m", "venv"])
            .arg(venv),
    )
    .await
    .context("cannot create the virtualenv")?;
    let pip = venv.join("bin").join("pip");
    run_showing(
        printer,
        tokio::process::Command::new(pip)
            .args([
                "install",
                "--disable-pip-version-check",
                "--progress-bar",
                "off",
                "-r",
            ])
            .arg(&requirements),
    )
    .await
    .context("cannot install the example's requirements")?;
    std::fs::write(&stamp, wanted)
        .with_context(|| format!("cannot write `{}`", stamp.display()))?;
    Ok(())
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// Runs a command, showing each line it prints (indented) as progress.
async fn run_showing(
    printer: &Printer,
    command: &mut tokio::process::Command,
) -> anyhow::Result<()> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
    let stderr = BufReader::new(child.stderr.take().expect("piped")).lines();
    let (out, err) = tokio::join!(read_lines(stdout), read_lines(stderr));
    for line in out
        .iter()
        .chain(&err)
        .filter(|line| !line.trim().is_empty())
    {
        printer.info(&format!("    | {line}"));
    }
    let status = child.wait().await?;
    if !status.success() {
        bail!("{command:?} exited with {status}");
    }
    Ok(())
}

async fn read_lines<R: tokio::io::AsyncBufRead + Unpin>(
    mut lines: tokio::io::Lines<R>,
) -> Vec<String> {
    let mut read = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        read.push(line);
    }
    read
}

async fn run_quietly(command: &mut tokio::process::Command) -> anyhow::Result<()> {
    let output = command.stdin(Stdio::null()).output().await?;
    if !output.status.success() {
        bail!(
            "{command:?} exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

async fn get(url: &str) -> anyhow::Result<String> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let response = tokio::time::timeout(Duration::from_secs(5), client.get(url.parse()?)).await??;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("HTTP {status}");
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// `release v2, 4 books, first: {"title": …, "slug": …}`.
fn describe_books(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return body.chars().take(120).collect();
    };
    let books = value["books"].as_array().map_or(0, Vec::len);
    format!(
        "release {}, {books} books, first: {}",
        value["release"].as_str().unwrap_or("?"),
        value["books"][0]
    )
}

/// Keeps asking each address for /api/books until aborted, counting answers and failures.
async fn poll_answers(addresses: Vec<String>, answered: Arc<AtomicU32>, failed: Arc<AtomicU32>) {
    loop {
        for address in &addresses {
            let counter = match get(&format!("http://{address}:8000/api/books")).await {
                Ok(_) => &answered,
                Err(_) => &failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
