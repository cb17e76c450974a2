#!/usr/bin/env python3
"""The same release three ways against `shipmate local serve`, timed, with API calls counted.

A release here is: a 2 s migration run as a one-off task from the new image, then the service
(2 tasks) rolled to the new revision and followed to steady state. Tools:

* shipmate:      shipmate deploy --migrate ... (log quiet period 1 s, and the 10 s default)
* AWS CLI flow:  register-task-definition, run-task, wait tasks-stopped, describe-tasks,
                 update-service, wait services-stable (what most pipelines script)
* ecs-deploy:    ecs update, the migration started without waiting (as `ecs run` does), ecs deploy

For each tool: wall time, the migration's own time (task startedAt -> stoppedAt), the rollout's
own time (UpdateService arrival -> the "deployment completed" service event), overhead = wall
minus both, API calls and calls per second (from the endpoint's request log).

Usage: bench/release/run.py [--runs N] [--markdown docs/benchmarks.md]
Needs: the shipmate binary (SHIPMATE_BIN or target/debug/shipmate), `aws` (AWS CLI) and `ecs`
(pip install ecs-deploy) on PATH or in ECS_DEPLOY_BIN. This is a benchmark, not a test.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPMATE = os.environ.get("SHIPMATE_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug", "shipmate")
ECS_DEPLOY = os.environ.get("ECS_DEPLOY_BIN") or shutil.which("ecs") or "ecs"
AWS = shutil.which("aws") or "aws"
CLUSTER = "bench"
MIGRATION = "sh -c 'echo migrating; sleep 2; echo migrated'"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Endpoint:
    def __init__(self, workdir):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, AWS_ENDPOINT_URL=self.url, AWS_REGION="us-east-1",
                        AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="AKIDBENCH",
                        AWS_SECRET_ACCESS_KEY="secret", AWS_PAGER="", NO_COLOR="1")
        self.proc = subprocess.Popen([SHIPMATE, "local", "serve", "--listen", f"127.0.0.1:{self.port}"],
                                     env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.workdir = workdir
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/_shipmate/health", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("shipmate local serve did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def aws(self, *args):
        out = subprocess.run([AWS, *args, "--output", "json"], env=self.env, check=True,
                             capture_output=True, text=True).stdout
        return json.loads(out) if out.strip() else {}

    def push(self, image, start_sh):
        d = os.path.join(self.workdir, image.replace(":", "_"))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "start.sh"), "w") as f:
            f.write(start_sh)
        subprocess.run([SHIPMATE, "local", "push", "--image", image, d], env=self.env, check=True,
                       capture_output=True)

    def requests(self):
        with urllib.request.urlopen(self.url + "/_shipmate/requests") as r:
            return json.load(r)["requests"]

    def clear_requests(self):
        req = urllib.request.Request(self.url + "/_shipmate/requests", method="DELETE")
        urllib.request.urlopen(req).read()


def container(image):
    return {"name": "app", "image": image, "essential": True, "memory": 256,
            "command": ["sh", "start.sh"],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": "/ecs/bench", "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": "ecs"}}}


NETWORK = json.dumps({"awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": ["sg-1"],
                                              "assignPublicIp": "DISABLED"}})


def setup_service(ep, name):
    td = ep.aws("ecs", "register-task-definition", "--family", name, "--network-mode", "awsvpc",
                "--requires-compatibilities", "FARGATE", "--cpu", "256", "--memory", "512",
                "--container-definitions", json.dumps([container("web:1")]))
    ep.aws("ecs", "create-service", "--cluster", CLUSTER, "--service-name", name,
           "--task-definition", td["taskDefinition"]["taskDefinitionArn"], "--desired-count", "2",
           "--launch-type", "FARGATE", "--network-configuration", NETWORK,
           "--deployment-configuration",
           json.dumps({"deploymentCircuitBreaker": {"enable": True, "rollback": True}}))
    deadline = time.time() + 60
    while time.time() < deadline:
        s = ep.aws("ecs", "describe-services", "--cluster", CLUSTER, "--services", name)["services"][0]
        d = s["deployments"]
        if len(d) == 1 and d[0].get("rolloutState") == "COMPLETED" and s["runningCount"] == 2:
            return
        time.sleep(0.2)
    raise SystemExit(f"service {name} never became steady")


def shipmate_with_quiet_period(quiet):
    """shipmate deploy with `--log-quiet-period quiet`: after the migration stops, its logs are
    read until quiet this long. On success that drain overlaps the rollout, so it costs only
    what the rollout does not cover."""
    def release(ep, name):
        subprocess.run([SHIPMATE, "deploy", "--cluster", CLUSTER, "--service", name, "--image", "web:2",
                        "--migrate", MIGRATION, "--log-quiet-period", quiet, "-q"], env=ep.env, check=True)
    return release


def release_with_aws_cli(ep, name):
    td = ep.aws("ecs", "register-task-definition", "--family", name, "--network-mode", "awsvpc",
                "--requires-compatibilities", "FARGATE", "--cpu", "256", "--memory", "512",
                "--container-definitions", json.dumps([container("web:2")]))
    arn = td["taskDefinition"]["taskDefinitionArn"]
    overrides = json.dumps({"containerOverrides": [{"name": "app", "command": ["sh", "-c", "echo migrating; sleep 2; echo migrated"]}]})
    task = ep.aws("ecs", "run-task", "--cluster", CLUSTER, "--task-definition", arn, "--launch-type", "FARGATE",
                  "--network-configuration", NETWORK, "--overrides", overrides)["tasks"][0]["taskArn"]
    ep.aws("ecs", "wait", "tasks-stopped", "--cluster", CLUSTER, "--tasks", task)
    described = ep.aws("ecs", "describe-tasks", "--cluster", CLUSTER, "--tasks", task)["tasks"][0]
    if described["containers"][0].get("exitCode") != 0:
        raise SystemExit("the migration failed")
    ep.aws("ecs", "update-service", "--cluster", CLUSTER, "--service", name, "--task-definition", arn)
    ep.aws("ecs", "wait", "services-stable", "--cluster", CLUSTER, "--services", name)


def release_with_ecs_deploy(ep, name):
    # ecs-deploy has no release phase: update the task definition, start the migration with
    # `ecs run` (which returns without waiting for it or reading its exit code), then deploy.
    env = dict(ep.env)
    subprocess.run([ECS_DEPLOY, "update", name, "--image", "app", "web:2"], env=env, check=True,
                   capture_output=True)
    command = json.dumps(["sh", "-c", "echo migrating; sleep 2; echo migrated"])
    subprocess.run([ECS_DEPLOY, "run", CLUSTER, name, "1", "--command", "app", command,
                    "--launchtype", "FARGATE", "--subnet", "subnet-1", "--securitygroup", "sg-1"],
                   env=env, check=True, capture_output=True)
    subprocess.run([ECS_DEPLOY, "deploy", CLUSTER, name, "--task", name, "--timeout", "600"],
                   env=env, check=True, capture_output=True)


# (name, release, waits for the migration before deploying)
TOOLS = [("shipmate, quiet period 1s", shipmate_with_quiet_period("1s"), True),
         ("shipmate, quiet period 10s (default)", shipmate_with_quiet_period("10s"), True),
         ("AWS CLI flow", release_with_aws_cli, True),
         ("ecs deploy", release_with_ecs_deploy, False)]


def measure(ep, tool, fn, waits, run):
    name = "".join(c for c in tool.lower() if c.isalnum())[:24] + str(run)
    # The migration is over 2 s whether or not the tool waited for it; measure it once stopped.
    setup_service(ep, name)
    ep.clear_requests()
    start = time.time()
    fn(ep, name)
    wall = time.time() - start
    requests = [r for r in ep.requests() if r.get("operation")]
    # The migration: the one-off task of this service's family that is not a service task.
    deadline = time.time() + 30
    while True:
        tasks = ep.aws("ecs", "list-tasks", "--cluster", CLUSTER, "--family", name, "--desired-status", "STOPPED")["taskArns"]
        if tasks or time.time() > deadline:
            break
        time.sleep(0.2)
    migration = 0.0
    if tasks:
        described = ep.aws("ecs", "describe-tasks", "--cluster", CLUSTER, "--tasks", *tasks)["tasks"]
        one_off = [t for t in described if not t.get("group", "").startswith("service:")]
        if one_off:
            t = one_off[0]
            migration = t["stoppedAt"] - t["startedAt"]
    update = [r["time"] / 1000 for r in requests if r["operation"] == "UpdateService"]
    service = ep.aws("ecs", "describe-services", "--cluster", CLUSTER, "--services", name)["services"][0]
    completed = [e["createdAt"] for e in service["events"] if "deployment completed" in e["message"]]
    rollout = (max(completed) - update[0]) if update and completed else 0.0
    calls = len(requests)
    # A tool that deploys without waiting for the migration overlaps the two: only the rollout
    # is its own time (and the new code may go live before its schema).
    own = migration + rollout if waits else rollout
    return {"tool": tool, "wall": wall, "migration": migration, "rollout": rollout,
            "overhead": wall - own, "calls": calls, "calls_per_s": calls / wall}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--markdown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        ep = Endpoint(workdir)
        try:
            ep.aws("ecs", "create-cluster", "--cluster-name", CLUSTER)
            ep.aws("logs", "create-log-group", "--log-group-name", "/ecs/bench")
            ep.push("web:1", "exec sleep 600\n")
            ep.push("web:2", "exec sleep 600\n")
            results = {tool: [] for tool, _, _ in TOOLS}
            for run in range(args.runs):
                for tool, fn, waits in TOOLS:
                    r = measure(ep, tool, fn, waits, run)
                    print(json.dumps(r), file=sys.stderr)
                    results[tool].append(r)
        finally:
            ep.stop()
    lines = ["| tool | wall (s) | migration (s) | rollout (s) | overhead (s) | API calls | calls/s |",
             "|---|---|---|---|---|---|---|"]
    for tool, rs in results.items():
        med = lambda k: statistics.median(r[k] for r in rs)
        lines.append(f"| {tool} | {med('wall'):.2f} | {med('migration'):.2f} | {med('rollout'):.2f} | "
                     f"{med('overhead'):.2f} | {med('calls'):.0f} | {med('calls_per_s'):.1f} |")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
