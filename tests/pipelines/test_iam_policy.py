"""`shipmate iam-policy`: the policy grants exactly the calls shipmate makes. Checked three ways:
against the one action list (pipelines/iam-actions.json, which the CloudFormation template is
checked against in test_pipelines.py), against the live service it reads with --from-service,
and against the request log of `shipmate local` after every shipmate command has run."""

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "examples"))
from local_endpoint import LocalEndpoint, shipmate_bin, wait_for  # noqa: E402

ACTION_LIST = json.loads((REPO / "pipelines" / "iam-actions.json").read_text())


def granted_actions(policy):
    return [action for statement in policy["Statement"] for action in statement["Action"]]


def shipmate(*args, env=None, cwd=None, timeout=180):
    return subprocess.run([shipmate_bin(), *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL)


def test_policy_for_the_example_grants_exactly_the_action_list(tmp_path):
    result = shipmate("iam-policy", "--config", str(REPO / "examples/django/shipmate.toml"),
                      "--account", "123456789012", "--region", "eu-west-1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    policy = json.loads(result.stdout)
    actions = granted_actions(policy)
    assert sorted(actions) == sorted(entry["action"] for entry in ACTION_LIST["actions"])
    assert len(actions) == len(set(actions))
    resources = {a: s["Resource"] for s in policy["Statement"] for a in s["Action"]}
    assert resources["ecs:UpdateService"] == ["arn:aws:ecs:eu-west-1:123456789012:service/bookshop/web"]
    assert resources["ecs:DescribeTasks"] == "arn:aws:ecs:eu-west-1:123456789012:task/bookshop/*"
    # What it could not know is said, not silently widened.
    assert "left as wildcards: task definition family, log group, task and execution roles" in result.stderr


def test_policy_needs_a_service(tmp_path):
    result = shipmate("iam-policy", "--cluster", "prod", cwd=tmp_path)
    assert result.returncode == 2
    assert "missing --service" in result.stderr


def test_policy_covers_exactly_the_calls_shipmate_makes(tmp_path):
    endpoint = LocalEndpoint()
    try:
        image = tmp_path / "image"
        image.mkdir()
        (image / "RELEASE").write_text("app\n")
        endpoint.push(image, "app:v1")
        endpoint.push(image, "app:v2")
        clients = dict(endpoint_url=endpoint.url, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
        ecs = boto3.client("ecs", **clients)
        logs = boto3.client("logs", **clients)
        ecs.create_cluster(clusterName="prod")
        logs.create_log_group(logGroupName="/ecs/app")
        definition = ecs.register_task_definition(
            family="app", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
            cpu="256", memory="512",
            tags=[{"key": "team", "value": "shop"}],
            taskRoleArn="arn:aws:iam::000000000000:role/app-task",
            executionRoleArn="arn:aws:iam::000000000000:role/app-execution",
            containerDefinitions=[{
                "name": "app", "image": "app:v1", "essential": True, "command": ["sleep", "600"],
                "stopTimeout": 2,
                "logConfiguration": {"logDriver": "awslogs", "options": {
                    "awslogs-group": "/ecs/app", "awslogs-region": "us-east-1",
                    "awslogs-stream-prefix": "app"}},
            }],
        )["taskDefinition"]
        ecs.create_service(
            cluster="prod", serviceName="app", taskDefinition=definition["taskDefinitionArn"],
            desiredCount=1, launchType="FARGATE",
            networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}})
        wait_for("the service to be steady", lambda: (
            lambda s: len(s["deployments"]) == 1 and s["runningCount"] == 1
            and s["deployments"][0]["rolloutState"] == "COMPLETED"
        )(ecs.describe_services(cluster="prod", services=["app"])["services"][0]))

        target = ["--cluster", "prod", "--service", "app"]
        result = shipmate("iam-policy", *target, "--from-service", env=endpoint.env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        policy = json.loads(result.stdout)
        assert result.stderr == "", "nothing left as a wildcard"
        resources = {a: s["Resource"] for s in policy["Statement"] for a in s["Action"]}
        assert resources["ecs:RunTask"] == ["arn:aws:ecs:us-east-1:000000000000:task-definition/app:*"]
        # The release's revision is registered with the family's tags, which is a TagResource
        # on it too (the request log below shows only RegisterTaskDefinition).
        assert "arn:aws:ecs:us-east-1:000000000000:task-definition/app:*" in resources["ecs:TagResource"]
        assert resources["logs:GetLogEvents"] == [
            "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/app:log-stream:*"]
        assert sorted(resources["iam:PassRole"]) == [
            "arn:aws:iam::000000000000:role/app-execution", "arn:aws:iam::000000000000:role/app-task"]

        # Every command, including the paths that stop a task and find the previous revision.
        endpoint.clear_requests()
        release = [*target, "--migrate", "sh -c 'echo migrating'"]
        commands = [
            (["plan", *release, "--image", "app:v2"], 0),
            (["deploy", *release, "--image", "app:v2"], 0),
            (["run", *target, "--", "echo", "hello"], 0),
            (["status", *target], 0),
            (["rollback", *target], 0),
            (["deploy", *target, "--image", "app:v2", "--migrate", "sleep 60",
              "--migrate-timeout", "2s"], 5),
        ]
        for args, expected in commands:
            result = shipmate(*args, env=endpoint.env, cwd=tmp_path)
            assert result.returncode == expected, f"shipmate {' '.join(args)}: {result.stderr}"
        # The pause-hook gate: ContinueServiceDeployment, and the hook taken off again.
        result = shipmate("deploy", *release, "--image", "app:v2", "--gate", "pause-hook",
                          env=endpoint.env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        # A release that cannot read the records once its deployment started rolls it back
        # blind: StopServiceDeployment.
        fault = json.dumps({"kind": "server_error", "operation": "DescribeServiceDeployments",
                            "count": 1000}).encode()
        urllib.request.urlopen(urllib.request.Request(
            f"{endpoint.url}/_shipmate/faults", data=fault, method="POST"), timeout=30).read()
        result = shipmate("deploy", *release, "--image", "app:v1", "--gate", "pause-hook",
                          "--max-attempts", "1", env=endpoint.env, cwd=tmp_path)
        urllib.request.urlopen(urllib.request.Request(
            f"{endpoint.url}/_shipmate/faults", method="DELETE"), timeout=30).read()
        assert result.returncode == 1, result.stderr
        assert "StopServiceDeployment" in {op for _, op in endpoint.operations()}
        made = {f"{service.lower()}:{operation}" for service, operation in endpoint.operations()}
        copies = [body for body in endpoint.requests("RegisterTaskDefinition") if body["family"] == "app"]
        assert copies and all(body["tags"] == [{"key": "team", "value": "shop"}] for body in copies), copies
        granted = set(granted_actions(policy)) - {"iam:PassRole"}  # not an API call ECS sees
        assert made == granted, f"made but not granted: {made - granted}; granted but never made: {granted - made}"
    finally:
        endpoint.stop()
