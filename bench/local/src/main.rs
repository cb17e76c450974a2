//! Load benchmark of `shipmate local serve` (not a test: numbers go to docs/benchmarks-local.md).
//!
//! Starts the real binary as a user would, then, through aws-sdk-rust:
//! 1. `--clients` concurrent clients each do `--iterations` × (RunTask of a short task, then
//!    DescribeTasks of it): latency percentiles per operation;
//! 2. `--alive` tasks (`sleep`) kept running at once: RunTask in batches of 10, the time until all
//!    are RUNNING, DescribeTasks (100 per call) and ListTasks latency while they live;
//! 3. the endpoint's resident memory (VmRSS from /proc) sampled throughout, both the endpoint
//!    process alone and the endpoint plus every process it started;
//! 4. SIGTERM: how long the endpoint takes to stop all of them, and whether any survives.
#![allow(clippy::print_stdout, reason = "a benchmark binary reports on stdout")]

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, ContainerOverride,
    DesiredStatus, LaunchType, NetworkConfiguration, NetworkMode, TaskOverride,
};
use clap::Parser;
use futures::StreamExt;

#[derive(Debug, Parser)]
struct Args {
    /// The shipmate binary to benchmark.
    #[arg(long, env = "SHIPMATE_BIN", default_value = "target/release/shipmate")]
    shipmate: PathBuf,
    /// Concurrent clients in phase 1.
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// RunTask + DescribeTasks rounds per client in phase 1.
    #[arg(long, default_value_t = 5)]
    iterations: usize,
    /// Tasks alive at once in phase 2.
    #[arg(long, default_value_t = 500)]
    alive: usize,
}

const CLUSTER: &str = "bench";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut endpoint = Endpoint::start(&args.shipmate)?;
    let sampler = RssSampler::start(endpoint.pid());
    println!("# shipmate local benchmark");
    println!("endpoint: {} (pid {})", endpoint.url, endpoint.pid());

    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&endpoint.url)
        .region(aws_config::Region::new("us-east-1"))
        .test_credentials()
        // Every failure counts: no retry hides a throttle or a dropped connection.
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    setup(&ecs, &endpoint, &args.shipmate).await?;
    let idle = sampler.now();
    println!("rss after setup: {idle}");

    // Phase 1: concurrent clients.
    let latencies = Latencies::default();
    let started = Instant::now();
    let mut clients = futures::stream::iter(0..args.clients)
        .map(|_| client_rounds(ecs.clone(), args.iterations, latencies.clone()))
        .buffer_unordered(args.clients);
    while clients.next().await.is_some() {}
    let elapsed = started.elapsed();
    let calls = args.clients * args.iterations * 2;
    println!(
        "\n## phase 1: {} clients x {} x (RunTask + DescribeTasks) = {calls} calls in {:.1} s ({:.0} calls/s)",
        args.clients,
        args.iterations,
        elapsed.as_secs_f64(),
        calls as f64 / elapsed.as_secs_f64()
    );
    latencies.report();
    println!("rss peak during phase 1: {}", sampler.peak_and_reset());

    // Phase 2: many tasks alive at once.
    let latencies = Latencies::default();
    let started = Instant::now();
    let batches = args.alive.div_ceil(10);
    let mut runs = futures::stream::iter(0..batches)
        .map(|batch| {
            let count = (args.alive - batch * 10).min(10) as i32;
            run_sleepers(ecs.clone(), count, latencies.clone())
        })
        .buffer_unordered(20);
    let mut arns = Vec::new();
    while let Some(batch) = runs.next().await {
        arns.extend(batch?);
    }
    let running = await_all_running(&ecs, &arns, &latencies).await?;
    println!(
        "\n## phase 2: {} tasks started, {running} RUNNING at once after {:.1} s",
        arns.len(),
        started.elapsed().as_secs_f64()
    );
    for _ in 0..20 {
        for chunk in arns.chunks(100) {
            describe(&ecs, chunk, &latencies).await?;
        }
        list_running(&ecs, &latencies).await?;
    }
    latencies.report();
    let alive = sampler.now();
    println!("rss with {running} tasks alive: {alive}");
    println!("rss peak during phase 2: {}", sampler.peak_and_reset());

    // Phase 3: shutdown stops everything. Once the endpoint is gone its orphans are re-parented,
    // so the processes to look for are the ones it had before SIGTERM.
    let before = descendants(endpoint.pid());
    let started = Instant::now();
    let code = endpoint.terminate()?;
    let took = started.elapsed();
    let left: Vec<u32> = before.into_iter().filter(|pid| is_alive(*pid)).collect();
    println!(
        "\n## shutdown: SIGTERM -> exit {code:?} in {:.1} s, {} of its processes still alive {left:?}",
        took.as_secs_f64(),
        left.len()
    );
    Ok(())
}

struct Endpoint {
    child: Child,
    url: String,
    images: tempfile::TempDir,
}

impl Endpoint {
    fn start(shipmate: &PathBuf) -> anyhow::Result<Endpoint> {
        let mut child = Command::new(shipmate)
            .args(["local", "serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", shipmate.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let line = lines.next().context("no listening line")??;
        let url = line
            .strip_prefix("listening on ")
            .with_context(|| format!("unexpected first line {line:?}"))?
            .to_owned();
        // Keep reading so the endpoint never blocks on a full stdout pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Endpoint {
            child,
            url,
            images: tempfile::tempdir()?,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn push(&self, shipmate: &PathBuf, image: &str, script: &str) -> anyhow::Result<()> {
        let dir = self.images.path().join(image.replace([':', '/'], "_"));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("task.sh"), script)?;
        let status = Command::new(shipmate)
            .args(["local", "push"])
            .arg(&dir)
            .args(["--image", image, "--endpoint", &self.url])
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("shipmate local push {image} failed: {status}");
        }
        Ok(())
    }

    fn terminate(&mut self) -> anyhow::Result<Option<i32>> {
        let pid = self.pid().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        Ok(self.child.wait()?.code())
    }
}

async fn setup(
    ecs: &aws_sdk_ecs::Client,
    endpoint: &Endpoint,
    shipmate: &PathBuf,
) -> anyhow::Result<()> {
    endpoint.push(shipmate, "bench/short:1", "exit 0\n")?;
    endpoint.push(shipmate, "bench/sleep:1", "exec sleep 600\n")?;
    ecs.create_cluster().cluster_name(CLUSTER).send().await?;
    for (family, image) in [("short", "bench/short:1"), ("sleeper", "bench/sleep:1")] {
        ecs.register_task_definition()
            .family(family)
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("main")
                    .image(image)
                    .essential(true)
                    .command("/bin/sh")
                    .command("task.sh")
                    .build(),
            )
            .send()
            .await?;
    }
    Ok(())
}

fn network() -> NetworkConfiguration {
    NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .subnets("subnet-1")
                .assign_public_ip(AssignPublicIp::Disabled)
                .build()
                .expect("subnets set"),
        )
        .build()
}

async fn client_rounds(ecs: aws_sdk_ecs::Client, iterations: usize, latencies: Latencies) {
    for _ in 0..iterations {
        let started = Instant::now();
        let result = ecs
            .run_task()
            .cluster(CLUSTER)
            .task_definition("short")
            .launch_type(LaunchType::Fargate)
            .network_configuration(network())
            .overrides(
                TaskOverride::builder()
                    .container_overrides(
                        ContainerOverride::builder()
                            .name("main")
                            .command("/bin/true")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await;
        latencies.record("RunTask", started.elapsed(), result.is_ok());
        let Some(arn) = result.ok().and_then(|output| {
            output
                .tasks()
                .first()
                .and_then(|t| t.task_arn().map(str::to_owned))
        }) else {
            continue;
        };
        let _ = describe(&ecs, &[arn], &latencies).await;
    }
}

async fn run_sleepers(
    ecs: aws_sdk_ecs::Client,
    count: i32,
    latencies: Latencies,
) -> anyhow::Result<Vec<String>> {
    let started = Instant::now();
    let result = ecs
        .run_task()
        .cluster(CLUSTER)
        .task_definition("sleeper")
        .count(count)
        .launch_type(LaunchType::Fargate)
        .network_configuration(network())
        .send()
        .await;
    latencies.record("RunTask (count 10)", started.elapsed(), result.is_ok());
    let output = result?;
    if !output.failures().is_empty() {
        bail!("RunTask failures: {:?}", output.failures());
    }
    Ok(output
        .tasks()
        .iter()
        .filter_map(|task| task.task_arn().map(str::to_owned))
        .collect())
}

async fn describe(
    ecs: &aws_sdk_ecs::Client,
    arns: &[String],
    latencies: &Latencies,
) -> anyhow::Result<Vec<aws_sdk_ecs::types::Task>> {
    let started = Instant::now();
    let result = ecs
        .describe_tasks()
        .cluster(CLUSTER)
        .set_tasks(Some(arns.to_vec()))
        .send()
        .await;
    let name = if arns.len() > 1 {
        "DescribeTasks (<=100 tasks)"
    } else {
        "DescribeTasks"
    };
    latencies.record(name, started.elapsed(), result.is_ok());
    Ok(result?.tasks().to_vec())
}

async fn list_running(ecs: &aws_sdk_ecs::Client, latencies: &Latencies) -> anyhow::Result<usize> {
    let mut total = 0;
    let mut token = None;
    loop {
        let started = Instant::now();
        let result = ecs
            .list_tasks()
            .cluster(CLUSTER)
            .desired_status(DesiredStatus::Running)
            .set_next_token(token)
            .send()
            .await;
        latencies.record(
            "ListTasks (100 per page)",
            started.elapsed(),
            result.is_ok(),
        );
        let page = result?;
        total += page.task_arns().len();
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(total);
        }
    }
}

async fn await_all_running(
    ecs: &aws_sdk_ecs::Client,
    arns: &[String],
    latencies: &Latencies,
) -> anyhow::Result<usize> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let mut running = 0;
        for chunk in arns.chunks(100) {
            running += describe(ecs, chunk, latencies)
                .await?
                .iter()
                .filter(|task| task.last_status() == Some("RUNNING"))
                .count();
        }
        if running == arns.len() {
            return Ok(running);
        }
        if Instant::now() > deadline {
            println!("only {running} of {} tasks RUNNING after 300 s", arns.len());
            return Ok(running);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Per operation: every call's latency, and how many calls failed.
#[derive(Default)]
struct Samples {
    took: Vec<Duration>,
    errors: usize,
}

#[derive(Clone, Default)]
struct Latencies(Arc<Mutex<BTreeMap<&'static str, Samples>>>);

impl Latencies {
    fn record(&self, operation: &'static str, took: Duration, ok: bool) {
        let mut map = self.0.lock().expect("latencies lock");
        let entry = map.entry(operation).or_default();
        entry.took.push(took);
        if !ok {
            entry.errors += 1;
        }
    }

    fn report(&self) {
        println!("| operation | calls | errors | p50 ms | p90 ms | p99 ms | max ms |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for (operation, Samples { took, errors }) in
            self.0.lock().expect("latencies lock").iter_mut()
        {
            let samples = took;
            samples.sort();
            let at = |q: f64| {
                let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
                samples[rank - 1].as_secs_f64() * 1000.0
            };
            println!(
                "| {operation} | {} | {errors} | {:.1} | {:.1} | {:.1} | {:.1} |",
                samples.len(),
                at(0.50),
                at(0.90),
                at(0.99),
                at(1.0)
            );
        }
    }
}

/// Samples resident memory every 100 ms: the endpoint alone, and with its descendants.
struct RssSampler {
    pid: u32,
    peak: Arc<Mutex<Rss>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Rss {
    endpoint_kib: u64,
    /// Sum of VmRSS: pages shared between processes (libc, the `sleep` binary) count once each.
    with_children_kib: u64,
    /// Sum of PSS: shared pages divided among the processes sharing them.
    with_children_pss_kib: u64,
    children: usize,
}

impl std::fmt::Display for Rss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "endpoint {:.1} MiB; endpoint + {} child processes: {:.1} MiB summed VmRSS, {:.1} MiB summed PSS",
            self.endpoint_kib as f64 / 1024.0,
            self.children,
            self.with_children_kib as f64 / 1024.0,
            self.with_children_pss_kib as f64 / 1024.0
        )
    }
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let peak = Arc::new(Mutex::new(Rss::default()));
        let shared = peak.clone();
        std::thread::spawn(move || {
            loop {
                let now = measure(pid);
                {
                    let mut peak = shared.lock().expect("rss lock");
                    peak.endpoint_kib = peak.endpoint_kib.max(now.endpoint_kib);
                    if now.with_children_kib > peak.with_children_kib {
                        peak.with_children_kib = now.with_children_kib;
                        peak.with_children_pss_kib = now.with_children_pss_kib;
                        peak.children = now.children;
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        RssSampler { pid, peak }
    }

    fn now(&self) -> Rss {
        measure(self.pid)
    }

    fn peak_and_reset(&self) -> Rss {
        std::mem::take(&mut *self.peak.lock().expect("rss lock"))
    }
}

fn measure(pid: u32) -> Rss {
    let endpoint_kib = kib(pid, "status", "VmRSS:").unwrap_or(0);
    let everyone: Vec<u32> = std::iter::once(pid).chain(descendants(pid)).collect();
    let sum = |file, field| -> u64 {
        everyone
            .iter()
            .filter_map(|process| kib(*process, file, field))
            .sum()
    };
    Rss {
        endpoint_kib,
        with_children_kib: sum("status", "VmRSS:"),
        with_children_pss_kib: sum("smaps_rollup", "Pss:"),
        children: everyone.len() - 1,
    }
}

/// A `Field:   123 kB` line of /proc/PID/FILE, in KiB.
fn kib(pid: u32, file: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A process that exists and is not a zombie.
fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace().next().map(|state| state != "Z")
        })
        .unwrap_or(false)
}

/// Every process whose parent chain reaches `root` (from /proc/*/stat).
fn descendants(root: u32) -> Vec<u32> {
    let mut parents: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The command name may hold spaces and parentheses: fields start after the last ')'.
            let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parents.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        if let Some(children) = parents.get(&pid) {
            found.extend(children);
            queue.extend(children);
        }
    }
    found
}
