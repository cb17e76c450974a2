"""`shipmate init` against `shipmate local`: the shipmate.toml it writes releases the services
with nothing but `--image`, leaving them as they were but for the image; the policy it writes is
`shipmate iam-policy --from-service`'s; the workflow passes actionlint and the buildspec has the
phases and commands of pipelines/buildspec.yml. And what it refuses to guess, or to overwrite."""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import boto3
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "examples"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_endpoint import LocalEndpoint, shipmate_bin, wait_for  # noqa: E402
from test_pipelines import BUILDSPEC, tool  # noqa: E402

ACCOUNT = "000000000000"


def shipmate(*args, env, cwd, timeout=180):
    return subprocess.run([shipmate_bin(), *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL)


def container(name, image, command, **extra):
    return {"name": name, "image": image, "essential": True, "command": command,
            "stopTimeout": 2,
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": "/ecs/shop", "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": name}}, **extra}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A cluster `prod` with services web and worker (one image, a non-essential sidecar in
    web), a Django-looking service `django`, a service with two essential containers `pair`,
    and one whose framework says nothing `plain`."""
    endpoint = LocalEndpoint()
    try:
        image = tmp_path_factory.mktemp("image")
        (image / "RELEASE").write_text("app\n")
        for tag in ["shop:v1", "shop:v2", "router:v1"]:
            endpoint.push(image, tag)
        clients = dict(endpoint_url=endpoint.url, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
        ecs = boto3.client("ecs", **clients)
        boto3.client("logs", **clients).create_log_group(logGroupName="/ecs/shop")
        ecs.create_cluster(clusterName="prod")

        def service(name, containers, **definition):
            arn = ecs.register_task_definition(
                family=name, networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
                cpu="256", memory="512",
                executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/shop-execution",
                containerDefinitions=containers, **definition,
            )["taskDefinition"]["taskDefinitionArn"]
            ecs.create_service(
                cluster="prod", serviceName=name, taskDefinition=arn, desiredCount=1,
                launchType="FARGATE",
                networkConfiguration={"awsvpcConfiguration": {
                    "subnets": ["subnet-1"], "assignPublicIp": "DISABLED"}})

        router = {"name": "log-router", "image": "router:v1", "essential": False,
                  "command": ["sleep", "600"], "stopTimeout": 2}
        service("web", [container("web", "shop:v1", ["sleep", "600"]), router],
                taskRoleArn=f"arn:aws:iam::{ACCOUNT}:role/shop-task")
        service("worker", [container("worker", "shop:v1", ["sleep", "601"])])
        service("django", [container("django", "shop:v1", ["sleep", "600"], environment=[
            {"name": "DJANGO_SETTINGS_MODULE", "value": "shop.settings"}])])
        service("pair", [container("a", "shop:v1", ["sleep", "600"]),
                         container("b", "shop:v1", ["sleep", "600"])])
        service("plain", [container("plain", "shop:v1", ["sleep", "600"])])
        for name in ["web", "worker"]:
            wait_for(f"{name} to be steady", lambda: (
                lambda s: s["runningCount"] == 1 and s["deployments"][0]["rolloutState"] == "COMPLETED"
            )(ecs.describe_services(cluster="prod", services=[name])["services"][0]))
        yield endpoint, ecs
    finally:
        endpoint.stop()


def live(ecs, name):
    """The service and its task definition, without what a new revision changes by itself."""
    service = ecs.describe_services(cluster="prod", services=[name])["services"][0]
    definition = ecs.describe_task_definition(
        taskDefinition=service["taskDefinition"])["taskDefinition"]
    for key in ["taskDefinitionArn", "revision", "registeredAt", "registeredBy"]:
        definition.pop(key, None)
    settings = {key: service.get(key) for key in [
        "desiredCount", "launchType", "networkConfiguration", "deploymentConfiguration",
        "platformVersion", "loadBalancers", "schedulingStrategy"]}
    return settings, definition


def test_init_writes_a_config_deploy_releases_unchanged_a_policy_and_both_ci_steps(cluster, tmp_path):
    endpoint, ecs = cluster
    repo = tmp_path / "app"
    repo.mkdir()
    result = shipmate("init", "--cluster", "prod", "--service", "web", "--service", "worker",
                      "--migrate", "sh -c 'echo migrating'", "--ci", "github-actions",
                      "--ci", "codebuild", env=endpoint.env, cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "the image goes to web/web, worker/worker (repository shop)" in result.stderr
    written = sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file())
    assert written == [".github/workflows/release.yml", "buildspec.yml",
                       "shipmate-iam-policy.json", "shipmate.toml"]
    config = (repo / "shipmate.toml").read_text()
    assert 'services = ["web", "worker"]' in config
    assert "command = \"sh -c 'echo migrating'\"" in config

    # The written file and `--image` are the whole release; nothing else changes.
    before = {name: live(ecs, name) for name in ["web", "worker"]}
    endpoint.clear_requests()
    result = shipmate("deploy", "--image", "shop:v2", env=endpoint.env, cwd=repo)
    assert result.returncode == 0, result.stderr
    runs = endpoint.requests("RunTask")
    assert len(runs) == 1
    assert runs[0]["overrides"]["containerOverrides"][0]["command"] == ["sh", "-c", "echo migrating"]
    for name in ["web", "worker"]:
        settings, definition = live(ecs, name)
        old_settings, old_definition = before[name]
        assert settings == old_settings, name
        images = {c["name"]: c.pop("image") for c in definition["containerDefinitions"]}
        old_images = {c["name"]: c.pop("image") for c in old_definition["containerDefinitions"]}
        assert definition == old_definition, name
        assert images[name] == "shop:v2"
        assert {k: v for k, v in images.items() if k != name} == \
            {k: v for k, v in old_images.items() if k != name}, "the sidecar keeps its image"

    # The policy is `shipmate iam-policy`'s for the same file.
    result = shipmate("iam-policy", "--from-service", env=endpoint.env, cwd=repo)
    assert result.returncode == 0, result.stderr
    assert json.loads((repo / "shipmate-iam-policy.json").read_text()) == json.loads(result.stdout)

    # The workflow passes actionlint; the buildspec is pipelines/buildspec.yml's release.
    lint = subprocess.run([tool("actionlint"), "-no-color", str(repo / ".github/workflows/release.yml")],
                          capture_output=True, text=True, timeout=120)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    workflow = yaml.safe_load((repo / ".github/workflows/release.yml").read_text())
    assert workflow["env"]["SHIPMATE_CLUSTER"] == "prod"
    assert workflow["env"]["SHIPMATE_SERVICE"] == "web,worker"
    assert workflow["env"]["ECR_REPOSITORY"] == "shop"
    spec = yaml.safe_load((repo / "buildspec.yml").read_text())
    template = yaml.safe_load(BUILDSPEC.read_text())
    assert spec["version"] == template["version"]
    assert list(spec["phases"]) == list(template["phases"])
    assert spec["phases"] == template["phases"]
    assert spec["artifacts"] == template["artifacts"]
    variables = spec["env"]["variables"]
    assert (variables["ECR_REPOSITORY"], variables["SHIPMATE_CLUSTER"],
            variables["SHIPMATE_SERVICE"]) == ("shop", "prod", "web,worker")
    version = shipmate("--version", env=endpoint.env, cwd=repo).stdout.split()[-1]
    assert variables["SHIPMATE_VERSION"] == version

    # Never overwritten without --force, and then nothing at all is written.
    (repo / "buildspec.yml").write_text("mine\n")
    result = shipmate("init", "--cluster", "prod", "--service", "web", "--no-migrate",
                      "--ci", "codebuild", env=endpoint.env, cwd=repo)
    assert result.returncode == 2
    assert "shipmate.toml, shipmate-iam-policy.json, buildspec.yml already exist" in result.stderr
    assert "--force" in result.stderr
    assert (repo / "buildspec.yml").read_text() == "mine\n"
    assert (repo / "shipmate.toml").read_text() == config
    result = shipmate("init", "--cluster", "prod", "--service", "web", "--no-migrate",
                      "--ci", "codebuild", "--force", env=endpoint.env, cwd=repo)
    assert result.returncode == 0, result.stderr
    assert (repo / "buildspec.yml").read_text() != "mine\n"
    migrate = tomllib.loads((repo / "shipmate.toml").read_text())["migrate"]
    assert "command" not in migrate and "preset" not in migrate


def test_init_recognises_django_and_writes_the_preset(cluster, tmp_path):
    endpoint, _ = cluster
    result = shipmate("init", "--cluster", "prod", "--service", "django", "--dir", "out",
                      env=endpoint.env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "the django preset, recognised from DJANGO_SETTINGS_MODULE" in result.stderr
    config = (tmp_path / "out" / "shipmate.toml").read_text()
    assert 'preset = "django"' in config
    # `plan` reads it back: the preset is what the release would run.
    result = shipmate("plan", "--config", "out/shipmate.toml", "--image", "shop:v2",
                      env=endpoint.env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "django" in result.stdout + result.stderr


@pytest.mark.parametrize("args, message, hint", [
    (["--service", "plain"], "cannot tell how plain migrates", "--preset django, --migrate"),
    (["--service", "pair", "--migrate", "true"],
     "service `pair` (", "--container NAME"),
    (["--service", "pair", "--migrate", "true", "--container", "c"],
     "has no container named `c` (containers: a, b)", "--container NAME"),
    (["--service", "nope", "--migrate", "true"], "`nope`", None),
    (["--service", "web", "--preset", "rails"], "unknown preset `rails` (known: django)", None),
])
def test_init_refuses_to_guess_and_writes_nothing(cluster, tmp_path, args, message, hint):
    endpoint, _ = cluster
    result = shipmate("init", "--cluster", "prod", *args, env=endpoint.env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    if hint:
        assert "hint: " in result.stderr and hint in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_init_with_pause_hook_gate_and_a_chosen_container(cluster, tmp_path):
    endpoint, _ = cluster
    result = shipmate("init", "--cluster", "prod", "--service", "pair", "--container", "b",
                      "--migrate", "true", "--gate", "pause-hook", env=endpoint.env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config = (tmp_path / "shipmate.toml").read_text()
    assert 'container = "b"' in config and 'gate = "pause-hook"' in config
    result = shipmate("plan", "--image", "shop:v2", env=endpoint.env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pause-hook" in result.stdout + result.stderr
