"""The AWS CLI, pointed at `shipmate local` only by AWS_ENDPOINT_URL, runs the flow of the seed
buildspec (shared/seed/running-django-migrations-with-ecs.txt): cluster, log group, a Fargate
awsvpc task definition with awslogs, a pushed migration image, run-task with a command override
and network configuration, `aws ecs wait tasks-stopped`, then the real exit code, stop code and
the migration's log lines in order.
"""

from __future__ import annotations

import json

from localendpoint import run_aws, wait_for

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/migration/web:build-7"
MIGRATION_LINES = [
    "Operations to perform:",
    "  Apply all migrations: admin, auth, polls",
    "Running migrations:",
    "  Applying polls.0001_initial... OK",
    "  Applying polls.0002_question_votes... OK",
]
MANAGE_SH = "".join(f"echo '{line}'\n" for line in MIGRATION_LINES) + 'exit "${MIGRATE_EXIT:-0}"\n'


def test_buildspec_flow_with_the_aws_cli(endpoint, unique):
    env = endpoint.env
    cluster = f"django-{unique}"
    group = f"/ecs/migrate-{unique}"
    family = f"migrate-web-{unique}"

    created = run_aws(env, "ecs", "create-cluster", "--cluster-name", cluster)
    assert created["cluster"]["clusterName"] == cluster
    assert created["cluster"]["status"] == "ACTIVE"
    run_aws(env, "logs", "create-log-group", "--log-group-name", group)

    container = {
        "name": "web",
        "image": IMAGE,
        "essential": True,
        "command": ["/bin/sh", "-c", "echo the service command must be overridden; exit 99"],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": group,
                "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": "migrate",
            },
        },
    }
    registered = run_aws(
        env, "ecs", "register-task-definition",
        "--family", family,
        "--network-mode", "awsvpc",
        "--requires-compatibilities", "FARGATE",
        "--cpu", "256",
        "--memory", "512",
        "--execution-role-arn", "arn:aws:iam::000000000000:role/ecsTaskExecutionRole",
        "--container-definitions", json.dumps([container]),
    )
    definition = registered["taskDefinition"]
    assert definition["family"] == family
    assert definition["revision"] == 1
    assert (definition["cpu"], definition["memory"]) == ("256", "512")
    assert definition["networkMode"] == "awsvpc"
    assert definition["requiresCompatibilities"] == ["FARGATE"]

    endpoint.push(IMAGE, {"manage.sh": MANAGE_SH})

    def run_migration(exit_code: int) -> str:
        overrides = {
            "containerOverrides": [
                {
                    "name": "web",
                    "command": ["/bin/sh", "manage.sh", "migrate", "--noinput"],
                    "environment": [{"name": "MIGRATE_EXIT", "value": str(exit_code)}],
                }
            ]
        }
        started = run_aws(
            env, "ecs", "run-task",
            "--cluster", cluster,
            "--task-definition", family,
            "--count", "1",
            "--launch-type", "FARGATE",
            "--network-configuration",
            "awsvpcConfiguration={subnets=[subnet-1],securityGroups=[sg-1],assignPublicIp=ENABLED}",
            "--platform-version", "LATEST",
            "--overrides", json.dumps(overrides),
        )
        assert started["failures"] == []
        [task] = started["tasks"]
        assert task["launchType"] == "FARGATE"
        assert task["taskDefinitionArn"] == definition["taskDefinitionArn"]
        return task["taskArn"]

    succeeded = run_migration(0)
    failed = run_migration(3)

    # One waiter for both tasks: it polls DescribeTasks every 6 s until all are STOPPED.
    run_aws(env, "ecs", "wait", "tasks-stopped", "--cluster", cluster, "--tasks", succeeded, failed)

    described = run_aws(env, "ecs", "describe-tasks", "--cluster", cluster, "--tasks", succeeded, failed)
    assert described["failures"] == []
    tasks = {task["taskArn"]: task for task in described["tasks"]}
    for arn, exit_code in ((succeeded, 0), (failed, 3)):
        task = tasks[arn]
        assert task["lastStatus"] == "STOPPED"
        assert task["desiredStatus"] == "STOPPED"
        assert task["stopCode"] == "EssentialContainerExited"
        assert task["stoppedReason"] == "Essential container in task exited"
        [web] = task["containers"]
        assert web["name"] == "web"
        assert web["exitCode"] == exit_code, f"task {arn}: {web}"
        assert web["lastStatus"] == "STOPPED"
        assert task["startedAt"] <= task["stoppedAt"]

    for arn in (succeeded, failed):
        stream = f"migrate/web/{arn.rsplit('/', 1)[1]}"

        def lines_of_stream():
            events = run_aws(
                env, "logs", "get-log-events",
                "--log-group-name", group,
                "--log-stream-name", stream,
                "--start-from-head",
            )["events"]
            messages = [event["message"] for event in events]
            return messages if len(messages) >= len(MIGRATION_LINES) else None

        messages = wait_for(lines_of_stream, f"the log lines of {stream}", timeout=60, interval=1)
        assert messages == MIGRATION_LINES
