"""The revision `shipmate deploy` registers is a faithful copy of the service's task definition:
every member RegisterTaskDefinition takes, nested ones included, and the tags, carried unchanged
but for the released containers' image. Compared on the RegisterTaskDefinition request shipmate
sent (the endpoint's request log), not on what the endpoint kept.

The task definition is generated from the RegisterTaskDefinition input shape of botocore's ECS
model (pinned in tests/requirements.txt), so every member of it is set; the few that cannot be
carried are listed below with the reason. A model with a member the list does not account for
fails the test until someone decides."""

import json
import subprocess
import sys
from pathlib import Path

import boto3
import botocore.session

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "examples"))
from local_endpoint import LocalEndpoint, shipmate_bin  # noqa: E402

# RegisterTaskDefinition members a copy does not carry, and why.
EXCLUDED = {
    "inferenceAccelerators": "deprecated in aws-sdk-ecs: Elastic Inference is no longer available "
                             "and ECS refuses registrations that ask for it",
    "trustedExecutionConfiguration": "newer than aws-sdk-ecs 1.157, which shipmate is built on: "
                                     "the SDK cannot read it back to copy it",
}

LOGS = {"logDriver": "awslogs", "options": {
    "awslogs-group": "/ecs/copy", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "app"}}

# Values the endpoint checks the way ECS does (and which the generator cannot guess).
CONTAINER_OVERRIDES = {
    "name": "app",
    "image": "copy/app:1",
    "essential": True,
    "memory": 512,
    "memoryReservation": 256,
    "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 30, "timeout": 5, "retries": 3,
                    "startPeriod": 10},
    "logConfiguration": {**LOGS, "secretOptions": [
        {"name": "token", "valueFrom": "arn:aws:ssm:us-east-1:000000000000:parameter/token"}]},
    "dependsOn": [{"containerName": "proxy", "condition": "START"}],
    "portMappings": [{"containerPort": 8000, "hostPort": 8000, "protocol": "tcp", "name": "http",
                      "appProtocol": "http", "containerPortRange": "9000-9010"}],
}
TOP_OVERRIDES = {
    "family": "copy",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "256",
    "memory": "1024",
    "tags": [{"key": "team", "value": "shop"}, {"key": "cost-center", "value": "42"}],
}


def sample(shape, name):
    """A value of `shape` that sets every member, recursively."""
    kind = shape.type_name
    if kind == "structure":
        return {member: sample(sub, member) for member, sub in shape.members.items()}
    if kind == "list":
        return [sample(shape.member, name)]
    if kind == "map":
        return {f"{name}-key": sample(shape.value, name)}
    if kind == "string":
        return shape.enum[0] if shape.enum else f"{name}-value"
    if kind in ("integer", "long"):
        return max(1, int(shape.metadata.get("min", 1)))
    if kind == "boolean":
        return True
    if kind in ("double", "float"):
        return 1.5
    raise AssertionError(f"no sample for {name}: {kind}")


def full_request():
    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    members = set(shape.members)
    assert set(EXCLUDED) <= members, f"excluded members the model no longer has: {set(EXCLUDED) - members}"
    request = {name: sample(member, name) for name, member in shape.members.items()
               if name not in EXCLUDED}
    request.update(TOP_OVERRIDES)
    container = sample(shape.members["containerDefinitions"].member, "container")
    container.update(CONTAINER_OVERRIDES)
    # A sidecar keeps its image. Its members are the ones ECS would otherwise fill in.
    proxy = {"name": "proxy", "image": "copy/proxy:1", "essential": False, "memory": 128, "cpu": 0,
             "environment": [], "mountPoints": [], "portMappings": [], "volumesFrom": [],
             "logConfiguration": {**LOGS, "options": {**LOGS["options"], "awslogs-stream-prefix": "proxy"}}}
    request["containerDefinitions"] = [container, proxy]
    return request


def differences(sent, expected, path="$"):
    """Where two JSON values differ, as paths."""
    if isinstance(sent, dict) and isinstance(expected, dict):
        out = []
        for key in sorted(set(sent) | set(expected)):
            if key not in sent:
                out.append(f"{path}.{key}: dropped")
            elif key not in expected:
                out.append(f"{path}.{key}: added {json.dumps(sent[key])[:80]}")
            else:
                out.extend(differences(sent[key], expected[key], f"{path}.{key}"))
        return out
    if isinstance(sent, list) and isinstance(expected, list) and len(sent) == len(expected):
        return [d for i, (a, b) in enumerate(zip(sent, expected)) for d in differences(a, b, f"{path}[{i}]")]
    return [] if sent == expected else [f"{path}: {json.dumps(expected)[:80]} -> {json.dumps(sent)[:80]}"]


def service_on(endpoint, name, registration):
    """A cluster `prod` and a service `name` of no tasks on the task definition `registration`
    registers: nothing runs, the copy is what is under test, not the rollout."""
    ecs = boto3.client("ecs", endpoint_url=endpoint.url, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    ecs.create_cluster(clusterName="prod")
    definition = ecs.register_task_definition(**registration)["taskDefinition"]
    ecs.create_service(
        cluster="prod", serviceName=name, taskDefinition=definition["taskDefinitionArn"],
        desiredCount=0, launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}})
    endpoint.clear_requests()


def deploy(endpoint, tmp_path, service):
    return subprocess.run(
        [shipmate_bin(), "deploy", "--cluster", "prod", "--service", service,
         "--image", "copy/app:2", "--no-migrate", "--no-wait"],
        env=endpoint.env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL)


def test_the_new_revision_carries_every_member_and_the_tags(tmp_path):
    endpoint = LocalEndpoint()
    try:
        original = full_request()
        service_on(endpoint, "copy", original)
        result = deploy(endpoint, tmp_path, "copy")
        assert result.returncode == 0, result.stderr

        sent = [body for body in endpoint.requests("RegisterTaskDefinition") if body["family"] == "copy"]
        assert len(sent) == 1, sent
        expected = json.loads(json.dumps(original))
        expected["containerDefinitions"][0]["image"] = "copy/app:2"
        problems = differences(sent[0], expected)
        assert not problems, "the copy differs from the original:\n" + "\n".join(problems)
    finally:
        endpoint.stop()


def test_a_member_the_sdk_cannot_carry_stops_the_release_before_anything_changes(tmp_path):
    """`trustedExecutionConfiguration` is newer than the aws-sdk-ecs shipmate is built on: the SDK
    reads past it, so a copy would drop it. shipmate finds it in the raw answer and refuses."""
    endpoint = LocalEndpoint()
    try:
        model = botocore.session.get_session().get_service_model("ecs")
        member = model.operation_model("RegisterTaskDefinition").input_shape.members["trustedExecutionConfiguration"]
        service_on(endpoint, "newer", dict(
            family="newer", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
            memory="512", trustedExecutionConfiguration=sample(member, "trusted"),
            containerDefinitions=[{"name": "app", "image": "copy/app:1", "essential": True}]))
        result = deploy(endpoint, tmp_path, "newer")
        assert result.returncode == 2, result.stderr
        assert "has members this shipmate cannot copy into the release's revision: " \
               "trustedExecutionConfiguration" in result.stderr, result.stderr
        assert not [b for b in endpoint.requests("RegisterTaskDefinition") if b["family"] == "newer"]
        assert not endpoint.requests("UpdateService")
    finally:
        endpoint.stop()
