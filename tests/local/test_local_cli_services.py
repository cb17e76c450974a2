"""The AWS CLI's services-stable waiter against a rolling deployment of `shipmate local`:
create-service, update-service to a new revision, `aws ecs wait services-stable` (it polls
DescribeServices every 15 s and needs one deployment with runningCount == desiredCount), and the
service then runs the new revision only.
"""

from __future__ import annotations

import json

from localendpoint import run_aws

NETWORK = "awsvpcConfiguration={subnets=[subnet-1],securityGroups=[sg-1],assignPublicIp=DISABLED}"


def test_services_stable_waiter_after_update_service(endpoint, unique):
    env = endpoint.env
    cluster, family = f"svc-{unique}", f"web-{unique}"
    run_aws(env, "ecs", "create-cluster", "--cluster-name", cluster)
    for revision in (1, 2):
        image = f"web-{unique}:{revision}"
        endpoint.push(image, {"serve.sh": f"echo serving v{revision}\nexec sleep 3600\n"})
        container = {"name": "web", "image": image, "essential": True, "command": ["/bin/sh", "serve.sh"]}
        run_aws(
            env, "ecs", "register-task-definition",
            "--family", family,
            "--network-mode", "awsvpc",
            "--requires-compatibilities", "FARGATE",
            "--cpu", "256", "--memory", "512",
            "--container-definitions", json.dumps([container]),
        )
    run_aws(
        env, "ecs", "create-service",
        "--cluster", cluster,
        "--service-name", "web",
        "--task-definition", f"{family}:1",
        "--desired-count", "2",
        "--launch-type", "FARGATE",
        "--network-configuration", NETWORK,
        "--deployment-configuration",
        "maximumPercent=200,minimumHealthyPercent=50,"
        "deploymentCircuitBreaker={enable=true,rollback=true}",
    )
    updated = run_aws(
        env, "ecs", "update-service",
        "--cluster", cluster, "--service", "web", "--task-definition", f"{family}:2",
    )["service"]
    assert len(updated["deployments"]) == 2, updated["deployments"]

    run_aws(env, "ecs", "wait", "services-stable", "--cluster", cluster, "--services", "web")

    [service] = run_aws(env, "ecs", "describe-services", "--cluster", cluster, "--services", "web")["services"]
    assert service["runningCount"] == service["desiredCount"] == 2
    [deployment] = service["deployments"]
    assert deployment["status"] == "PRIMARY"
    assert deployment["rolloutState"] == "COMPLETED"
    assert deployment["taskDefinition"].endswith(f"task-definition/{family}:2")
    arns = run_aws(env, "ecs", "list-tasks", "--cluster", cluster, "--service-name", "web")["taskArns"]
    tasks = run_aws(env, "ecs", "describe-tasks", "--cluster", cluster, "--tasks", *arns)["tasks"]
    assert len(tasks) == 2
    assert {task["taskDefinitionArn"].rsplit("/", 1)[1] for task in tasks} == {f"{family}:2"}
    assert all(task["lastStatus"] == "RUNNING" for task in tasks)
