#!/usr/bin/env python3
"""One release of 1, 10 and 50 services against `shipmate local serve --rate-limits`, which
meters every ECS call through the token buckets ECS documents (ThrottlingException "Rate
exceeded" when a bucket is empty).

Each release: `shipmate deploy --service s1 … --service sN --image web:2` with a 2 s migration,
every service 2 tasks. Measured, from the wall clock and the endpoint's request log:

* wall time of the command;
* the migration's own time (its task's startedAt -> stoppedAt);
* the rollout: the first UpdateService's arrival -> the last service's "deployment completed";
* overhead = wall - migration - rollout;
* API calls, ThrottlingExceptions received, and the peak calls in one second of each action;
* forced: the least time the documented buckets need for the calls shipmate made (for each
  category, the calls beyond its burst at its refill rate; the largest category counts).

Targets (issue 8): throttles <= 1 % of calls; the 50-service overhead is at most 1 s plus the
forced time above the 1-service overhead.

Usage: bench/release/services.py [--runs N] [--sizes 1,10,50]
Needs: the shipmate binary (SHIPMATE_BIN or $CARGO_TARGET_DIR/debug/shipmate) and boto3 (the test
venv has it: .venv/bin/python bench/release/services.py). A benchmark, not a test.
"""

import argparse
import collections
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
import botocore.config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPMATE = os.environ.get("SHIPMATE_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug", "shipmate")
CLUSTER = "bench"
MIGRATION = "sh -c 'echo migrating; sleep 2; echo migrated'"
# (burst, refill per second) of each ECS category, as the ECS API reference tabulates them.
CATEGORIES = {
    "TaskDefinitionModify": ((20, 1), ["RegisterTaskDefinition", "DeregisterTaskDefinition"]),
    "TaskDefinitionRead": ((50, 20), ["DescribeTaskDefinition", "ListTaskDefinitions",
                                      "ListTaskDefinitionFamilies"]),
    "TagModify": ((20, 10), ["TagResource", "UntagResource"]),
    "ClusterResourceModify": ((100, 40), ["RunTask", "StopTask"]),
    "ClusterResourceRead": ((100, 20), ["DescribeTasks", "ListTasks"]),
    "ServiceModify": ((50, 5), ["CreateService", "UpdateService", "DeleteService"]),
    "ServiceRead": ((100, 20), ["DescribeServices", "ListServices"]),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Endpoint:
    def __init__(self, workdir):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env = dict(os.environ, AWS_ENDPOINT_URL=self.url, AWS_REGION="us-east-1",
                        AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="AKIDBENCH",
                        AWS_SECRET_ACCESS_KEY="secret", NO_COLOR="1")
        self.proc = subprocess.Popen(
            [SHIPMATE, "local", "serve", "--listen", f"127.0.0.1:{port}", "--rate-limits"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.workdir = workdir
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/_shipmate/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("shipmate local serve did not start")
        session = boto3.session.Session(aws_access_key_id="AKIDBENCH", aws_secret_access_key="secret",
                                        region_name="us-east-1")
        config = botocore.config.Config(retries={"mode": "standard", "max_attempts": 10})
        self.ecs = session.client("ecs", endpoint_url=self.url, config=config)
        self.logs = session.client("logs", endpoint_url=self.url, config=config)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)

    def control(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}/_shipmate/{path}", data=data, method=method,
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def rate_limits(self, on):
        # Turning them on (again) starts every bucket full.
        self.control("PUT", "settings", {"rate_limits": on})

    def push(self, image):
        d = os.path.join(self.workdir, image.replace(":", "_"))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "start.sh"), "w") as f:
            f.write("exec sleep 600\n")
        subprocess.run([SHIPMATE, "local", "push", "--image", image, d], env=self.env, check=True,
                       capture_output=True)


def create_services(ep, names):
    for name in names:
        td = ep.ecs.register_task_definition(
            family=name, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
            memory="512", containerDefinitions=[{
                "name": "app", "image": "web:1", "essential": True, "memory": 128,
                "command": ["sh", "start.sh"], "stopTimeout": 2,
                "logConfiguration": {"logDriver": "awslogs", "options": {
                    "awslogs-group": "/ecs/bench", "awslogs-region": "us-east-1",
                    "awslogs-stream-prefix": "ecs"}}}])["taskDefinition"]
        ep.ecs.create_service(
            cluster=CLUSTER, serviceName=name, taskDefinition=td["taskDefinitionArn"], desiredCount=2,
            launchType="FARGATE",
            networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
            deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    wait_steady(ep, names)


def wait_steady(ep, names, deadline=300):
    end = time.time() + deadline
    pending = list(names)
    while pending and time.time() < end:
        described = []
        for i in range(0, len(pending), 10):
            described += ep.ecs.describe_services(cluster=CLUSTER, services=pending[i:i + 10])["services"]
        pending = [s["serviceName"] for s in described
                   if not (len(s["deployments"]) == 1 and s["runningCount"] == 2
                           and s["deployments"][0].get("rolloutState") == "COMPLETED")]
        time.sleep(0.5)
    if pending:
        raise SystemExit(f"services never became steady: {pending[:5]}")


def forced_seconds(counts):
    worst = 0.0
    for (burst, refill), operations in CATEGORIES.values():
        calls = sum(counts.get(op, 0) for op in operations)
        worst = max(worst, max(0, calls - burst) / refill)
    return worst


def measure(ep, size, run):
    names = [f"r{run}-n{size}-s{i}" for i in range(size)]
    ep.rate_limits(False)
    create_services(ep, names)
    ep.control("DELETE", "requests")
    ep.rate_limits(True)
    args = [SHIPMATE, "deploy", "--cluster", CLUSTER, "--image", "web:2", "--migrate", MIGRATION,
            "--log-quiet-period", "1s", "--lock-key", f"bench-{run}-{size}", "-q"]
    for name in names:
        args += ["--service", name]
    start = time.time()
    result = subprocess.run(args, env=ep.env, capture_output=True, text=True)
    wall = time.time() - start
    requests = [r for r in ep.control("GET", "requests")["requests"] if r.get("operation")]
    ep.rate_limits(False)
    if result.returncode != 0:
        raise SystemExit(f"the release of {size} services failed ({result.returncode}): {result.stderr[-2000:]}")

    counts = collections.Counter(r["operation"] for r in requests)
    throttles = sum(1 for r in requests if r.get("error_code") == "ThrottlingException")
    per_second = collections.defaultdict(collections.Counter)
    for r in requests:
        per_second[r["operation"]][r["time"] // 1000] += 1
    peaks = {op: max(seconds.values()) for op, seconds in per_second.items()}

    # The migration ran from the first service's new revision: the one-off task of its family.
    stopped = ep.ecs.list_tasks(cluster=CLUSTER, family=names[0], desiredStatus="STOPPED")["taskArns"]
    described = ep.ecs.describe_tasks(cluster=CLUSTER, tasks=stopped)["tasks"] if stopped else []
    ours = [t for t in described if t.get("startedBy", "").startswith("shipmate/")]
    migration = (ours[0]["stoppedAt"] - ours[0]["startedAt"]).total_seconds() if ours else 0.0
    first_update = min(r["time"] for r in requests if r["operation"] == "UpdateService") / 1000
    completed = []
    for i in range(0, size, 10):
        for service in ep.ecs.describe_services(cluster=CLUSTER, services=names[i:i + 10])["services"]:
            times = [e["createdAt"].timestamp() for e in service["events"] if "deployment completed" in e["message"]]
            completed.append(max(times))
    rollout = max(completed) - first_update
    return {"services": size, "wall": wall, "migration": migration, "rollout": rollout,
            "overhead": wall - migration - rollout, "calls": len(requests), "throttles": throttles,
            "forced": forced_seconds(counts), "counts": dict(counts), "peaks": peaks}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="1,10,50")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = collections.defaultdict(list)
    with tempfile.TemporaryDirectory() as workdir:
        ep = Endpoint(workdir)
        try:
            ep.ecs.create_cluster(clusterName=CLUSTER)
            ep.logs.create_log_group(logGroupName="/ecs/bench")
            ep.push("web:1")
            ep.push("web:2")
            for run in range(args.runs):
                for size in sizes:
                    r = measure(ep, size, run)
                    print(json.dumps(r), file=sys.stderr)
                    results[size].append(r)
                    # Stop this size's tasks before the next: 2 processes a task add up.
                    for name in [f"r{run}-n{size}-s{i}" for i in range(size)]:
                        ep.ecs.update_service(cluster=CLUSTER, service=name, desiredCount=0)
        finally:
            ep.stop()

    med = lambda rs, k: statistics.median(r[k] for r in rs)
    lines = ["| services | wall (s) | migration (s) | rollout (s) | overhead (s) | forced (s) | API calls | throttles |",
             "|---|---|---|---|---|---|---|---|"]
    for size, rs in results.items():
        lines.append(f"| {size} | {med(rs, 'wall'):.2f} | {med(rs, 'migration'):.2f} | {med(rs, 'rollout'):.2f} | "
                     f"{med(rs, 'overhead'):.2f} | {med(rs, 'forced'):.1f} | {med(rs, 'calls'):.0f} | "
                     f"{med(rs, 'throttles'):.0f} |")
    lines += ["", "Calls and peak calls in one second, per action (the median run of each size):", "",
              "| action | " + " | ".join(f"{s} services" for s in results) + " |",
              "|---|" + "---|" * len(results)]
    medians = {size: sorted(rs, key=lambda r: r["wall"])[len(rs) // 2] for size, rs in results.items()}
    actions = sorted({op for r in medians.values() for op in r["counts"]})
    for op in actions:
        cells = [f"{r['counts'].get(op, 0)} (peak {r['peaks'].get(op, 0)}/s)" for r in medians.values()]
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
