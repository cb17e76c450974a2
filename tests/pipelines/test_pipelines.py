"""pipelines/: the CloudFormation template passes cfn-lint, the GitHub Actions workflow passes
actionlint, the template's shipmate policy grants exactly pipelines/iam-actions.json with the
scoping the README promises, and the buildspec is the one-image, one-`shipmate deploy` release."""
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from cfnlint.decode import cfn_yaml

REPO = Path(__file__).resolve().parents[2]
PIPELINES = REPO / "pipelines"
TEMPLATE = PIPELINES / "cloudformation.yml"
WORKFLOW = PIPELINES / "github-actions" / "deploy.yml"
BUILDSPEC = PIPELINES / "buildspec.yml"
RELEASE_WORKFLOW = REPO / ".github" / "workflows" / "release.yml"


def tool(name):
    """A console script installed next to the test's Python (tests/requirements.txt)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        found = shutil.which(name)
        assert found, f"{name} is not installed (tests/requirements.txt, scripts/python-env)"
        return found
    return str(path)


def run(*args):
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def test_cfn_lint_passes_on_the_template():
    result = run(tool("cfn-lint"), str(TEMPLATE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_catches_a_broken_template(tmp_path):
    # The linter must be able to fail: an unknown resource property is an error.
    broken = tmp_path / "broken.yml"
    broken.write_text(TEMPLATE.read_text().replace(
        "RetentionInDays: !Ref LogRetentionInDays", "RetentionDays: !Ref LogRetentionInDays"))
    result = run(tool("cfn-lint"), str(broken))
    assert result.returncode != 0
    assert "RetentionDays" in result.stdout


def test_actionlint_passes_on_the_workflow():
    result = run(tool("actionlint"), "-no-color", str(WORKFLOW))
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_passes_on_shipmates_own_release_workflow():
    result = run(tool("actionlint"), "-no-color", str(RELEASE_WORKFLOW))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_release_workflow_publishes_what_the_pipelines_download():
    workflow = yaml.safe_load(RELEASE_WORKFLOW.read_text())
    # PyYAML reads the key `on` as True.
    assert workflow[True]["push"]["tags"] == ["v[0-9]+.[0-9]+.[0-9]+"]
    build = workflow["jobs"]["build"]
    targets = {entry["target"] for entry in build["strategy"]["matrix"]["include"]}
    assert targets == {"x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"}
    runs = "\n".join(step.get("run", "") for step in build["steps"])
    assert "cargo build --release --locked -p shipmate" in runs
    assert 'asset="shipmate-${GITHUB_REF_NAME#v}-${TARGET}.tar.gz"' in runs
    assert 'sha256sum "$asset" > "$asset.sha256"' in runs
    # Both pipelines fetch exactly that name for the machine they run on, and check it.
    for pipeline, version in [(BUILDSPEC, "$SHIPMATE_VERSION"), (WORKFLOW, "${SHIPMATE_VERSION}")]:
        text = pipeline.read_text()
        assert f'asset="shipmate-{version}-$(uname -m)-unknown-linux-gnu.tar.gz"' in text, pipeline
        assert f"/releases/download/v{version}/" in text, pipeline
        assert "sha256sum -c" in text, pipeline
        assert f'--tag "v{version}" shipmate' in text, f"{pipeline}: the build-it-instead line"
    # Only the release job may write (create the release); the builds read.
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["jobs"]["release"]["permissions"] == {"contents": "write"}


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace(
        "steps.image.outputs.uri", "steps.imgae.outputs.uri"))
    result = run(tool("actionlint"), "-no-color", str(broken))
    assert result.returncode != 0
    assert "imgae" in result.stdout


def iam_actions():
    return {entry["action"] for entry in json.loads((PIPELINES / "iam-actions.json").read_text())
            ["actions"]}


def release_policy_statements():
    template = cfn_yaml.load(str(TEMPLATE))
    return template["Resources"]["ShipmateReleasePolicy"]["Properties"]["PolicyDocument"][
        "Statement"]


def as_list(value):
    return list(value) if isinstance(value, list) else [value]


def test_release_policy_grants_exactly_the_listed_actions():
    granted = [action for statement in release_policy_statements()
               for action in as_list(statement["Action"])]
    assert len(granted) == len(set(granted)), f"an action is granted twice: {granted}"
    assert set(granted) == iam_actions()
    assert all(statement["Effect"] == "Allow" for statement in release_policy_statements())


def test_release_policy_is_least_privilege():
    by_action = {action: statement for statement in release_policy_statements()
                 for action in as_list(statement["Action"])}
    # "*" only where ECS has no resource-level permissions, or a condition narrows it.
    for action, statement in by_action.items():
        if "*" in as_list(statement["Resource"]):
            assert action in {"ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions",
                              "ecs:RegisterTaskDefinition"} or \
                "Condition" in statement, f"{action} on * without a condition"
    assert by_action["iam:PassRole"]["Condition"]["StringEquals"] == {
        "iam:PassedToService": "ecs-tasks.amazonaws.com"}
    assert by_action["iam:PassRole"]["Resource"] == [{"Ref": "TaskRoleArn"},
                                                      {"Ref": "ExecutionRoleArn"}]
    assert "log-group:${LogGroupName}:log-stream:*" in \
        by_action["logs:GetLogEvents"]["Resource"]["Fn::Sub"]
    assert "service/${ClusterName}/${ServiceName}" in \
        by_action["ecs:UpdateService"]["Resource"]["Fn::Sub"]
    assert "task-definition/${TaskFamily}:*" in by_action["ecs:RunTask"]["Resource"]["Fn::Sub"]


def buildspec_commands():
    spec = yaml.safe_load(BUILDSPEC.read_text())
    assert spec["version"] == 0.2
    return spec, [command for phase in spec["phases"].values()
                  for command in phase["commands"]]


def test_buildspec_builds_one_image_and_releases_it_with_one_gated_deploy():
    spec, commands = buildspec_commands()
    builds = [c for c in commands if c.startswith("docker build")]
    deploys = [shlex.split(c) for c in commands if c.startswith("shipmate deploy")]
    assert len(builds) == 1 and "-f" not in shlex.split(builds[0])
    assert len(deploys) == 1
    deploy = deploys[0]
    assert deploy[deploy.index("--image") + 1] == "$IMAGE_URI"
    assert deploy[deploy.index("--image-definitions") + 1] == "imagedefinitions.json"
    # The seed's fire-and-forget run-task and its second image are gone.
    assert not any("run-task" in c or "MigrationDockerfile" in c for c in commands)
    # The deploy must be able to fail the build.
    assert spec["phases"]["build"]["on-failure"] == "ABORT"
    assert {"imagedefinitions.json", "imageDetail.json"} <= set(spec["artifacts"]["files"])


def test_workflow_releases_with_one_deploy_through_oidc():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow["permissions"]["id-token"] == "write"
    steps = workflow["jobs"]["release"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert runs.count("shipmate deploy") == 1
    assert runs.count("docker build") == 1
    assert "--image-definitions imagedefinitions.json" in runs
    assert not any("aws-access-key-id" in step.get("with", {}) for step in steps)


def sdk_operations_in_source():
    """Every ECS and CloudWatch Logs operation the release half calls through aws-sdk-rust,
    read from its source (`.ecs.describe_services()` -> ecs:DescribeServices)."""
    calls = set()
    pattern = re.compile(r"\.(ecs|logs)\s*\.\s*([a-z_]+)\(\)")
    for path in (REPO / "crates" / "shipmate-release-aws" / "src").rglob("*.rs"):
        for service, method in pattern.findall(path.read_text()):
            calls.add(f"{service}:{''.join(part.title() for part in method.split('_'))}")
    return calls


def test_action_list_is_exactly_the_sdk_calls_shipmate_makes():
    calls = sdk_operations_in_source()
    assert "ecs:RunTask" in calls and "logs:GetLogEvents" in calls, calls
    listed = {action for action in iam_actions() if not action.startswith("iam:")}
    assert listed == calls
