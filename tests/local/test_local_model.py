"""Every response of every supported operation, as `shipmate local` puts it on the wire, against
botocore's own ECS and CloudWatch Logs service models: member names, types, enum values, required
members, no nulls; and every error body against the AWS error envelope.

A realistic session (tasks that ran, failed, failed to start and were stopped; a service in the
middle of a deployment; a blue/green deployment behind a load balancer paused at a lifecycle hook,
continued and rolled back; a CODE_DEPLOY service; log streams with events) runs once through boto3. A `before-parse` hook
keeps each raw HTTP response before botocore's lenient parser sees it; the tests then walk those
raw bodies with `shapecheck` against the operation's output shape.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import botocore.exceptions
import botocore.session
import pytest

from conftest import make_client
from localendpoint import wait_for
import shapecheck

ECS_OPERATIONS = [
    "CreateCluster", "DescribeClusters", "ListClusters", "DeleteCluster",
    "RegisterTaskDefinition", "DescribeTaskDefinition", "ListTaskDefinitions",
    "ListTaskDefinitionFamilies", "DeregisterTaskDefinition",
    "RunTask", "DescribeTasks", "ListTasks", "StopTask",
    "CreateService", "UpdateService", "DescribeServices", "ListServices", "DeleteService",
    "TagResource", "UntagResource", "ListTagsForResource",
    "ListServiceDeployments", "DescribeServiceDeployments", "DescribeServiceRevisions",
    "StopServiceDeployment", "ContinueServiceDeployment",
]
LOGS_OPERATIONS = [
    "CreateLogGroup", "DeleteLogGroup", "DescribeLogGroups", "CreateLogStream",
    "DescribeLogStreams", "PutLogEvents", "GetLogEvents", "FilterLogEvents",
]
# Codes any AWS JSON service may answer besides the operation's modeled errors.
COMMON_ERRORS = {
    "SerializationException", "UnknownOperationException", "ValidationException",
    "ThrottlingException", "InternalFailure", "ServiceUnavailable", "AccessDeniedException",
}
CONTENT_TYPE = "application/x-amz-json-1.1"
IMAGE = "conformance/app:1"
SERVICE_IMAGE_V2 = "conformance/app:2"


@dataclass
class Exchange:
    service: str
    operation: str
    status: int
    headers: dict
    body: bytes


@dataclass
class Session:
    exchanges: list[Exchange] = field(default_factory=list)
    # What went wrong in a part of the scenario (a part that fails leaves its operations uncaptured).
    broken: dict[str, str] = field(default_factory=dict)


MODELS = {
    "ecs": botocore.session.get_session().get_service_model("ecs"),
    "logs": botocore.session.get_session().get_service_model("logs"),
}


@pytest.fixture(scope="module")
def session(endpoint):
    recorded = Session()

    def record(operation_model, response_dict, **_):
        recorded.exchanges.append(
            Exchange(
                service=operation_model.service_model.endpoint_prefix,
                operation=operation_model.name,
                status=response_dict["status_code"],
                headers={k.lower(): v for k, v in response_dict["headers"].items()},
                body=response_dict["body"],
            )
        )

    ecs = make_client(endpoint, "ecs")
    logs = make_client(endpoint, "logs")
    for client in (ecs, logs):
        client.meta.events.register("before-parse", record)

    scenario = Scenario(endpoint, ecs, logs, "conf")
    for part in (scenario.log_operations, scenario.clusters_and_definitions, scenario.tasks,
                 scenario.tags, scenario.services, scenario.service_deployments,
                 scenario.expected_errors, scenario.cleanup):
        try:
            part()
        except Exception as error:  # noqa: BLE001 - reported per operation below
            recorded.broken[part.__name__] = f"{type(error).__name__}: {error}"
    return recorded


class Scenario:
    def __init__(self, endpoint, ecs, logs, name):
        self.endpoint, self.ecs, self.logs = endpoint, ecs, logs
        self.cluster = f"{name}-{int(time.time() * 1000) % 10**8}"
        self.group = f"/ecs/{self.cluster}"
        self.family = f"{self.cluster}-app"

    def log_operations(self):
        logs, group = self.logs, f"/conformance/{self.cluster}"
        logs.create_log_group(logGroupName=group, tags={"team": "conformance"})
        logs.create_log_group(logGroupName=f"{group}-gone")
        logs.delete_log_group(logGroupName=f"{group}-gone")
        logs.create_log_stream(logGroupName=group, logStreamName="app/one")
        logs.create_log_stream(logGroupName=group, logStreamName="app/two")
        now = int(time.time() * 1000)
        logs.put_log_events(
            logGroupName=group, logStreamName="app/one",
            logEvents=[{"timestamp": now + i, "message": f"line {i}"} for i in range(5)],
        )
        logs.put_log_events(
            logGroupName=group, logStreamName="app/two",
            logEvents=[
                {"timestamp": now - 15 * 24 * 3600 * 1000, "message": "too old"},
                {"timestamp": now, "message": "kept"},
                {"timestamp": now + 3 * 3600 * 1000, "message": "too new"},
            ],
        )
        logs.describe_log_groups(logGroupNamePrefix=group)
        logs.describe_log_groups(limit=1)
        logs.describe_log_streams(logGroupName=group)
        logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True, limit=1)
        page = logs.get_log_events(logGroupName=group, logStreamName="app/one", startFromHead=True, limit=2)
        logs.get_log_events(logGroupName=group, logStreamName="app/one", startFromHead=True,
                            nextToken=page["nextForwardToken"])
        logs.get_log_events(logGroupName=group, logStreamName="app/one")
        first = logs.filter_log_events(logGroupName=group, limit=2)
        if "nextToken" in first:
            logs.filter_log_events(logGroupName=group, nextToken=first["nextToken"])
        logs.filter_log_events(logGroupName=group, logStreamNames=["app/one"], filterPattern="line")

    def clusters_and_definitions(self):
        ecs = self.ecs
        ecs.create_cluster(
            clusterName=self.cluster,
            tags=[{"key": "team", "value": "conformance"}],
            settings=[{"name": "containerInsights", "value": "disabled"}],
        )
        ecs.create_cluster(clusterName=f"{self.cluster}-empty")
        ecs.describe_clusters(
            clusters=[self.cluster, f"{self.cluster}-missing"],
            include=["SETTINGS", "STATISTICS", "TAGS"],
        )
        ecs.list_clusters()
        ecs.list_clusters(maxResults=1)
        self.logs.create_log_group(logGroupName=self.group)
        self.endpoint.push(IMAGE, {"app.sh": APP_SH})
        self.endpoint.push(SERVICE_IMAGE_V2, {"app.sh": APP_SH})
        ecs.register_task_definition(**task_definition(self.family, IMAGE, self.group))
        ecs.register_task_definition(**task_definition(self.family, SERVICE_IMAGE_V2, self.group))
        ecs.register_task_definition(**task_definition(f"{self.family}-old", IMAGE, self.group))
        ecs.describe_task_definition(taskDefinition=self.family, include=["TAGS"])
        ecs.describe_task_definition(taskDefinition=f"{self.family}:1")
        ecs.list_task_definitions()
        ecs.list_task_definitions(familyPrefix=self.family, sort="DESC", maxResults=1)
        ecs.list_task_definition_families()
        ecs.list_task_definition_families(familyPrefix=self.cluster, status="ACTIVE")
        ecs.deregister_task_definition(taskDefinition=f"{self.family}-old:1")
        ecs.list_task_definitions(familyPrefix=f"{self.family}-old", status="INACTIVE")

    def run(self, command, **extra):
        response = self.ecs.run_task(
            cluster=self.cluster,
            taskDefinition=extra.pop("taskDefinition", self.family),
            launchType="FARGATE",
            networkConfiguration=NETWORK,
            overrides={"containerOverrides": [{"name": "app", "command": command}]},
            **extra,
        )
        return [task["taskArn"] for task in response["tasks"]]

    def tasks(self):
        ecs = self.ecs
        exited = self.run(["/bin/sh", "app.sh", "exit", "3"], startedBy="conformance", count=2,
                          tags=[{"key": "kind", "value": "one-off"}])
        sleeper = self.run(["/bin/sh", "app.sh", "sleep", "300"], clientToken=f"{self.cluster}-sleeper")
        # The same token and parameters: the same task again.
        self.run(["/bin/sh", "app.sh", "sleep", "300"], clientToken=f"{self.cluster}-sleeper")
        ecs.register_task_definition(
            **task_definition(f"{self.family}-nopull", "conformance/never-pushed:1", self.group)
        )
        never = self.run(["/bin/true"], taskDefinition=f"{self.family}-nopull")

        def describe(arns):
            return ecs.describe_tasks(cluster=self.cluster, tasks=arns, include=["TAGS"])

        wait_for(lambda: all(t["lastStatus"] == "RUNNING" for t in describe(sleeper)["tasks"]),
                 "the sleeper task to run", timeout=60)
        ecs.list_tasks(cluster=self.cluster)
        ecs.list_tasks(cluster=self.cluster, family=self.family, maxResults=1)
        ecs.stop_task(cluster=self.cluster, task=sleeper[0], reason="conformance: stop a running task")
        done = exited + sleeper + never
        wait_for(lambda: all(t["lastStatus"] == "STOPPED" for t in describe(done)["tasks"]),
                 "every task to stop", timeout=90, interval=0.5)
        ecs.describe_tasks(cluster=self.cluster, tasks=done + [f"{'0' * 32}"])
        ecs.list_tasks(cluster=self.cluster, desiredStatus="STOPPED")
        ecs.list_tasks(cluster=self.cluster, startedBy="conformance")
        # The token again once its task stopped: the trimmed replay (taskArn, lastStatus,
        # desiredStatus only) must match the model too.
        self.run(["/bin/sh", "app.sh", "sleep", "300"], clientToken=f"{self.cluster}-sleeper")
        self.sleeper = sleeper[0]

    def tags(self):
        ecs = self.ecs
        cluster_arn = ecs.describe_clusters(clusters=[self.cluster])["clusters"][0]["clusterArn"]
        definition_arn = ecs.describe_task_definition(taskDefinition=self.family)["taskDefinition"]["taskDefinitionArn"]
        for arn in (cluster_arn, definition_arn):
            ecs.tag_resource(resourceArn=arn, tags=[{"key": "stage", "value": "test"}, {"key": "x", "value": ""}])
            ecs.untag_resource(resourceArn=arn, tagKeys=["x"])
            ecs.list_tags_for_resource(resourceArn=arn)

    def services(self):
        ecs = self.ecs
        service = "web"
        ecs.create_service(
            cluster=self.cluster,
            serviceName=service,
            taskDefinition=f"{self.family}:1",
            desiredCount=2,
            launchType="FARGATE",
            networkConfiguration=NETWORK,
            deploymentConfiguration={
                "maximumPercent": 200,
                "minimumHealthyPercent": 50,
                "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            },
            tags=[{"key": "app", "value": "web"}],
        )
        ecs.update_service(cluster=self.cluster, service=service, taskDefinition=f"{self.family}:2")
        ecs.describe_services(cluster=self.cluster, services=[service, "missing"], include=["TAGS"])
        ecs.list_services(cluster=self.cluster)
        ecs.list_services(cluster=self.cluster, launchType="FARGATE", maxResults=1)
        service_arn = ecs.describe_services(cluster=self.cluster, services=[service])["services"][0]["serviceArn"]
        ecs.list_tags_for_resource(resourceArn=service_arn)
        ecs.update_service(cluster=self.cluster, service=service, desiredCount=0)
        ecs.delete_service(cluster=self.cluster, service=service, force=True)
        ecs.describe_services(cluster=self.cluster, services=[service])

    def service_deployments(self):
        """Blue/green behind a load balancer, paused before a production traffic shift (the stage
        the model's enum lacks), continued, then rolled back with StopServiceDeployment while it
        bakes; a CODE_DEPLOY service for `taskSets`."""
        ecs, cluster = self.ecs, self.cluster
        before = self.endpoint.control("GET", "settings")["deployment_time_scale"]
        # A deployment minute in a tenth of a second.
        self.endpoint.control("PUT", "settings", {"deployment_time_scale": 600})
        try:
            self._blue_green(ecs, cluster)
        finally:
            self.endpoint.control("PUT", "settings", {"deployment_time_scale": before})
        ecs.create_service(
            cluster=cluster, serviceName="codedeploy", taskDefinition=f"{self.family}:1", desiredCount=1,
            launchType="FARGATE", networkConfiguration=NETWORK, deploymentController={"type": "CODE_DEPLOY"},
        )
        ecs.describe_services(cluster=cluster, services=["codedeploy"])
        ecs.update_service(cluster=cluster, service="codedeploy", desiredCount=0)
        ecs.delete_service(cluster=cluster, service="codedeploy", force=True)

    def _blue_green(self, ecs, cluster):
        target_group = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup"
        created = ecs.create_service(
            cluster=cluster, serviceName="bg", taskDefinition=f"{self.family}:1", desiredCount=1,
            launchType="FARGATE", networkConfiguration=NETWORK,
            loadBalancers=[{
                "targetGroupArn": f"{target_group}/blue/1", "containerName": "app", "containerPort": 8000,
                "advancedConfiguration": {
                    "alternateTargetGroupArn": f"{target_group}/green/2",
                    "productionListenerRule": "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener-rule/app/lb/1/2/3",
                    "testListenerRule": "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener-rule/app/lb/1/2/4",
                    "roleArn": "arn:aws:iam::000000000000:role/ecsInfrastructureRole",
                },
            }],
            deploymentConfiguration={
                "strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1,
                "deploymentCircuitBreaker": {"enable": True, "rollback": True},
                "alarms": {"alarmNames": ["web-5xx"], "enable": True, "rollback": True},
                "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["PRE_PRODUCTION_TRAFFIC_SHIFT"],
                                    "timeoutConfiguration": {"timeoutInMinutes": 20160, "action": "CONTINUE"}}],
            },
        )["service"]
        first = created["currentServiceDeployment"]

        def deployment(arn):
            return ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]

        def awaiting(arn):
            hooks = deployment(arn).get("lifecycleHookDetails", [])
            return [hook["hookId"] for hook in hooks if hook["status"] == "AWAITING_ACTION"]

        [hook] = wait_for(lambda: awaiting(first), "the first deployment to pause", timeout=90)
        ecs.describe_services(cluster=cluster, services=["bg"])
        ecs.continue_service_deployment(serviceDeploymentArn=first, hookId=hook)
        wait_for(lambda: deployment(first)["status"] == "SUCCESSFUL", "the first deployment", timeout=90)
        # The next ones bake for a day, without pausing.
        ecs.update_service(cluster=cluster, service="bg",
                           deploymentConfiguration={"lifecycleHooks": [], "bakeTimeInMinutes": 1440})
        second = ecs.update_service(cluster=cluster, service="bg",
                                    taskDefinition=f"{self.family}:2")["service"]["currentServiceDeployment"]
        wait_for(lambda: deployment(second)["lifecycleStage"] == "BAKE_TIME", "the second bake", timeout=90)
        ecs.describe_services(cluster=cluster, services=["bg"])
        ecs.stop_service_deployment(serviceDeploymentArn=second, stopType="ROLLBACK")
        ecs.describe_service_deployments(serviceDeploymentArns=[first, second, f"{second}-missing"])
        wait_for(lambda: deployment(second)["status"] == "ROLLBACK_SUCCESSFUL", "the rollback", timeout=90)
        third = ecs.update_service(cluster=cluster, service="bg",
                                   forceNewDeployment=True)["service"]["currentServiceDeployment"]
        wait_for(lambda: deployment(third)["lifecycleStage"] == "BAKE_TIME", "the third bake", timeout=90)
        ecs.stop_service_deployment(serviceDeploymentArn=third, stopType="ABORT")
        wait_for(lambda: deployment(third)["status"] == "STOPPED", "the abort", timeout=60)
        ecs.describe_service_deployments(serviceDeploymentArns=[second, third])
        ecs.list_service_deployments(cluster=cluster, service="bg")
        page = ecs.list_service_deployments(cluster=cluster, service="bg", maxResults=1)
        ecs.list_service_deployments(cluster=cluster, service="bg", maxResults=1, nextToken=page["nextToken"])
        ecs.list_service_deployments(cluster=cluster, service="bg", status=["STOPPED", "SUCCESSFUL"],
                                     createdAt={"after": 0})
        revisions = [deployment(second)["targetServiceRevision"]["arn"], f"{first}-missing"]
        ecs.describe_service_revisions(serviceRevisionArns=revisions)
        ecs.update_service(cluster=cluster, service="bg", desiredCount=0)
        ecs.delete_service(cluster=cluster, service="bg", force=True)

    def expected_errors(self):
        calls = [
            lambda: self.ecs.run_task(cluster=f"{self.cluster}-nope", taskDefinition=self.family),
            lambda: self.ecs.describe_task_definition(taskDefinition="no-such-family"),
            lambda: self.ecs.update_service(cluster=self.cluster, service="no-such-service", desiredCount=1),
            lambda: self.ecs.list_tasks(cluster=f"{self.cluster}-nope"),
            lambda: self.ecs.list_service_deployments(cluster=self.cluster, service="no-such-service"),
            lambda: self.ecs.describe_service_deployments(serviceDeploymentArns=["x"] * 21),
            lambda: self.ecs.continue_service_deployment(
                serviceDeploymentArn=f"arn:aws:ecs:us-east-1:000000000000:service-deployment/{self.cluster}/web/x",
                hookId="ecs-pause-x"),
            lambda: self.ecs.stop_service_deployment(
                serviceDeploymentArn=f"arn:aws:ecs:us-east-1:000000000000:service-deployment/{self.cluster}/web/x"),
            lambda: self.logs.create_log_group(logGroupName=self.group),
            lambda: self.logs.get_log_events(logGroupName=self.group, logStreamName="no/such/stream"),
            lambda: self.logs.put_log_events(logGroupName="/no/such/group", logStreamName="s",
                                             logEvents=[{"timestamp": 1, "message": "m"}]),
        ]
        for call in calls:
            with pytest.raises(botocore.exceptions.ClientError):
                call()

    def cleanup(self):
        self.ecs.delete_cluster(cluster=f"{self.cluster}-empty")


APP_SH = """\
case "$1" in
  exit) echo "exiting with $2"; echo "to stderr" >&2; exit "$2" ;;
  sleep) echo "sleeping $2"; exec sleep "$2" ;;
  serve) echo "serving"; exec sleep 3600 ;;
esac
"""
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": ["sg-1"], "assignPublicIp": "ENABLED"}}


def task_definition(family, image, group):
    return {
        "family": family,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "executionRoleArn": "arn:aws:iam::000000000000:role/ecsTaskExecutionRole",
        "tags": [{"key": "app", "value": family}],
        "containerDefinitions": [
            {
                "name": "app",
                "image": image,
                "essential": True,
                "command": ["/bin/sh", "app.sh", "serve"],
                "environment": [{"name": "MODE", "value": "conformance"}],
                "portMappings": [{"containerPort": 8000, "protocol": "tcp"}],
                "stopTimeout": 5,
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {"awslogs-group": group, "awslogs-region": "us-east-1",
                                "awslogs-stream-prefix": "app"},
                },
            },
            {
                "name": "sidecar",
                "image": image,
                "essential": False,
                "command": ["/bin/sh", "app.sh", "exit", "0"],
            },
        ],
    }


def responses(session, service, operation):
    return [x for x in session.exchanges if x.service == service and x.operation == operation]


@pytest.mark.parametrize(
    ("service", "operation"),
    [("ecs", op) for op in ECS_OPERATIONS] + [("logs", op) for op in LOGS_OPERATIONS],
)
def test_every_response_matches_the_botocore_model(session, service, operation):
    successes = [x for x in responses(session, service, operation) if 200 <= x.status < 300]
    assert successes, (
        f"{operation} never answered successfully; scenario problems: {session.broken or 'none'}; "
        f"answers: {[(x.status, x.body[:300]) for x in responses(session, service, operation)]}"
    )
    output_shape = MODELS[service].operation_model(operation).output_shape
    problems = []
    for exchange in successes:
        if not exchange.headers.get("content-type", "").startswith(CONTENT_TYPE):
            problems.append(f"content-type {exchange.headers.get('content-type')!r}")
        if not exchange.headers.get("x-amzn-requestid"):
            problems.append("no x-amzn-RequestId header")
        body = json.loads(exchange.body)
        if output_shape is None:
            if body != {}:
                problems.append(f"expected {{}}, got {body}")
            continue
        problems += shapecheck.check(body, output_shape)
    assert not problems, f"{operation}: " + "\n".join(sorted(set(problems)))


def test_every_error_is_an_aws_error_envelope(session):
    errors = [x for x in session.exchanges if x.status >= 300]
    assert len(errors) >= 7, f"the scenario's expected errors were not all seen: {session.broken}"
    problems = []
    for exchange in errors:
        where = f"{exchange.operation} ({exchange.status})"
        try:
            body = json.loads(exchange.body)
        except ValueError:
            problems.append(f"{where}: body is not JSON: {exchange.body[:200]!r}")
            continue
        code, message = body.get("__type"), body.get("message")
        if not isinstance(code, str) or not code or "#" in code:
            problems.append(f"{where}: __type {code!r} is not a bare error code")
            continue
        if not isinstance(message, str):
            problems.append(f"{where}: message {message!r} is not a string")
        operation_model = MODELS[exchange.service].operation_model(exchange.operation)
        modeled = {shape.name: shape for shape in operation_model.error_shapes}
        if code not in modeled and code not in COMMON_ERRORS:
            problems.append(f"{where}: {code} is not an error of {exchange.operation} in the model")
        if code in modeled:
            shape = modeled[code]
            expected_status = 500 if shape.metadata.get("fault") else 400
            if exchange.status != expected_status:
                problems.append(f"{where}: {code} should be HTTP {expected_status}")
            # Every AWS error carries `message`, modeled or not (Logs' error shapes have no members).
            rest = {k: v for k, v in body.items() if k not in ("__type", "message")}
            problems += [f"{where}: {p}" for p in shapecheck.check(rest, shape)]
        if not exchange.headers.get("content-type", "").startswith(CONTENT_TYPE):
            problems.append(f"{where}: content-type {exchange.headers.get('content-type')!r}")
    assert not problems, "\n".join(problems)


# Members that only appear when the endpoint really ran the tasks and the service: if one is never
# seen, the scenario did not exercise what it is meant to (or the endpoint leaves it out).
EXPECTED_MEMBERS = {
    "DescribeTasks": [
        "tasks[].stopCode", "tasks[].stoppedReason", "tasks[].stoppedAt", "tasks[].startedAt",
        "tasks[].stoppingAt", "tasks[].createdAt", "tasks[].containers[].exitCode",
        "tasks[].containers[].reason", "tasks[].cpu", "tasks[].memory", "tasks[].tags",
        "tasks[].containers[].networkInterfaces[].privateIpv4Address",
        "failures[].reason",
    ],
    "DescribeServices": [
        "services[].deployments[].rolloutState", "services[].deployments[].status",
        "services[].deploymentConfiguration.deploymentCircuitBreaker.enable",
        "services[].events[].message", "services[].networkConfiguration.awsvpcConfiguration.subnets",
        "services[].currentServiceDeployment", "services[].currentServiceRevisions[].arn",
        "services[].deploymentConfiguration.lifecycleHooks[].lifecycleStages",
        "services[].loadBalancers[].advancedConfiguration.alternateTargetGroupArn",
        "services[].taskSets[].scale.unit", "failures[].reason",
    ],
    "DescribeServiceDeployments": [
        "serviceDeployments[].lifecycleStage", "serviceDeployments[].lifecycleHookDetails[].expiresAt",
        "serviceDeployments[].rollback.serviceRevisionArn", "serviceDeployments[].stoppedAt",
        "serviceDeployments[].targetServiceRevision.requestedProductionTrafficWeight",
        "serviceDeployments[].sourceServiceRevisions[].requestedTestTrafficWeight",
        "serviceDeployments[].deploymentCircuitBreaker.threshold",
        "serviceDeployments[].alarms.alarmNames", "failures[].reason",
    ],
    "DescribeServiceRevisions": [
        "serviceRevisions[].containerImages[].image", "serviceRevisions[].loadBalancers[].targetGroupArn",
        "failures[].reason",
    ],
    "ListServiceDeployments": ["serviceDeployments[].finishedAt", "nextToken"],
    "DescribeClusters": ["clusters[].tags", "clusters[].settings", "failures[].reason"],
    "DescribeTaskDefinition": ["taskDefinition.registeredAt", "taskDefinition.compatibilities", "tags"],
    "GetLogEvents": ["events[].ingestionTime", "nextForwardToken", "nextBackwardToken"],
    "FilterLogEvents": ["events[].eventId", "events[].logStreamName", "nextToken"],
    "PutLogEvents": ["rejectedLogEventsInfo.tooOldLogEventEndIndex", "rejectedLogEventsInfo.tooNewLogEventStartIndex"],
    "DescribeLogStreams": ["logStreams[].lastEventTimestamp", "logStreams[].arn"],
}


def member_paths(value, prefix=""):
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            yield path
            yield from member_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            yield from member_paths(item, f"{prefix}[]")


@pytest.mark.parametrize("operation", sorted(EXPECTED_MEMBERS))
def test_rich_responses_carry_their_optional_members(session, operation):
    service = "logs" if operation in LOGS_OPERATIONS else "ecs"
    seen = set()
    for exchange in responses(session, service, operation):
        if 200 <= exchange.status < 300:
            seen.update(member_paths(json.loads(exchange.body)))
    missing = [path for path in EXPECTED_MEMBERS[operation] if path not in seen]
    assert not missing, f"{operation} never returned {missing}; scenario problems: {session.broken or 'none'}"


def test_a_replayed_client_token_answers_a_stopped_task_trimmed(session):
    answers = [
        json.loads(exchange.body)
        for exchange in responses(session, "ecs", "RunTask")
        if exchange.status == 200
    ]
    trimmed = [
        answer for answer in answers
        if answer["tasks"] and set(answer["tasks"][0]) == {"taskArn", "lastStatus", "desiredStatus"}
    ]
    assert trimmed, f"no trimmed replay among {len(answers)} RunTask answers; scenario problems: {session.broken or 'none'}"
    assert trimmed[0]["tasks"][0]["lastStatus"] == "STOPPED"
