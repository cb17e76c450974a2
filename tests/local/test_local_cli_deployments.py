"""Service deployments through the AWS CLI against `shipmate local`: a rolling deployment paused
by a PAUSE lifecycle hook before scale-up, found with `list-service-deployments`, inspected with
`describe-service-deployments` and `describe-service-revisions`, continued with
`continue-service-deployment`; then the next one paused and rolled back with
`stop-service-deployment`.
"""

from __future__ import annotations

import json

from localendpoint import run_aws, wait_for

PAUSE_BEFORE_SCALE_UP = json.dumps({
    "lifecycleHooks": [{
        "targetType": "PAUSE",
        "lifecycleStages": ["PRE_SCALE_UP"],
        "timeoutConfiguration": {"timeoutInMinutes": 60, "action": "ROLLBACK"},
    }],
})


def test_a_paused_deployment_continued_and_one_stopped_with_the_cli(endpoint, unique):
    env = endpoint.env
    cluster, family = f"dep-{unique}", f"web-{unique}"
    run_aws(env, "ecs", "create-cluster", "--cluster-name", cluster)
    for revision in (1, 2):
        image = f"web-{unique}:{revision}"
        endpoint.push(image, {"serve.sh": f"echo serving v{revision}\nexec sleep 3600\n"})
        container = {"name": "web", "image": image, "command": ["/bin/sh", "serve.sh"], "stopTimeout": 2}
        run_aws(env, "ecs", "register-task-definition", "--family", family, "--memory", "512",
                "--container-definitions", json.dumps([container]))
    created = run_aws(
        env, "ecs", "create-service", "--cluster", cluster, "--service-name", "web",
        "--task-definition", f"{family}:1", "--desired-count", "1",
        "--deployment-configuration", PAUSE_BEFORE_SCALE_UP,
    )["service"]

    [listed] = run_aws(env, "ecs", "list-service-deployments", "--cluster", cluster,
                       "--service", "web")["serviceDeployments"]
    arn = listed["serviceDeploymentArn"]
    assert arn == created["currentServiceDeployment"]

    def deployment():
        return run_aws(env, "ecs", "describe-service-deployments",
                       "--service-deployment-arns", arn)["serviceDeployments"][0]

    def awaiting_hook():
        hooks = deployment().get("lifecycleHookDetails", [])
        return next((hook for hook in hooks if hook["status"] == "AWAITING_ACTION"), None)

    hook = wait_for(awaiting_hook, "the deployment to pause")
    assert hook["hookId"].startswith("ecs-pause-")
    paused = deployment()
    assert (paused["status"], paused["lifecycleStage"]) == ("IN_PROGRESS", "PRE_SCALE_UP")
    assert run_aws(env, "ecs", "list-tasks", "--cluster", cluster, "--service-name", "web")["taskArns"] == []

    run_aws(env, "ecs", "continue-service-deployment", "--service-deployment-arn", arn,
            "--hook-id", hook["hookId"], "--action", "CONTINUE")
    wait_for(lambda: deployment()["status"] == "SUCCESSFUL", "the deployment to succeed")
    revision_arn = deployment()["targetServiceRevision"]["arn"]
    [revision] = run_aws(env, "ecs", "describe-service-revisions",
                         "--service-revision-arns", revision_arn)["serviceRevisions"]
    assert revision["taskDefinition"].endswith(f"task-definition/{family}:1")

    second = run_aws(env, "ecs", "update-service", "--cluster", cluster, "--service", "web",
                     "--task-definition", f"{family}:2")["service"]["currentServiceDeployment"]
    assert second != arn
    arn = second
    wait_for(awaiting_hook, "the second deployment to pause")
    stopped = run_aws(env, "ecs", "stop-service-deployment", "--service-deployment-arn", arn,
                      "--stop-type", "ROLLBACK")
    assert stopped["serviceDeploymentArn"] == arn
    wait_for(lambda: deployment()["status"] == "ROLLBACK_SUCCESSFUL", "the rollback")
    assert deployment()["rollback"]["serviceRevisionArn"] == revision_arn
    [service] = run_aws(env, "ecs", "describe-services", "--cluster", cluster, "--services", "web")["services"]
    assert service["taskDefinition"].endswith(f"task-definition/{family}:1")
    statuses = [d["status"] for d in run_aws(env, "ecs", "list-service-deployments", "--cluster", cluster,
                                             "--service", "web")["serviceDeployments"]]
    assert statuses == ["ROLLBACK_SUCCESSFUL", "SUCCESSFUL"]
