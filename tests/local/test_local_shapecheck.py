"""The model checker itself: it must accept real AWS shapes and catch each kind of mistake an
emulator makes (numbers where strings are modelled, nulls, unknown members, bad enum values,
missing required members, milliseconds where seconds are modelled)."""

import botocore.session

import shapecheck

SESSION = botocore.session.get_session()
ECS = SESSION.get_service_model("ecs")
LOGS = SESSION.get_service_model("logs")
DESCRIBE_TASKS = ECS.operation_model("DescribeTasks").output_shape
GET_LOG_EVENTS = LOGS.operation_model("GetLogEvents").output_shape

GOOD_TASK = {
    "taskArn": "arn:aws:ecs:us-east-1:000000000000:task/c/0123456789abcdef0123456789abcdef",
    "cpu": "256",
    "memory": "512",
    "createdAt": 1764170000.123,
    "stopCode": "EssentialContainerExited",
    "version": 3,
    "enableExecuteCommand": False,
    "containers": [{"name": "web", "exitCode": 3, "cpu": "0"}],
    "attachments": [{"id": "a", "details": [{"name": "privateIPv4Address", "value": "127.0.0.2"}]}],
}


def problems(task):
    return shapecheck.check({"tasks": [task], "failures": []}, DESCRIBE_TASKS)


def test_a_conforming_task_has_no_problems():
    assert problems(GOOD_TASK) == []


def test_each_kind_of_mistake_is_reported():
    cases = {
        "expected string": {"cpu": 256},
        "null": {"stoppedReason": None},
        "not a member": {"exitCode": 0},
        "not a value of enum": {"stopCode": "Exited"},
        "expected integer": {"containers": [{"name": "web", "exitCode": "3"}]},
        "expected boolean": {"enableExecuteCommand": "false"},
        "expected long": {"version": 1.5},
        "expected epoch-seconds": {"createdAt": "2026-11-26T15:00:00Z"},
        "not plausible epoch seconds": {"createdAt": 1764170000123},
        "expected array": {"containers": {"name": "web"}},
    }
    for expected, change in cases.items():
        found = problems({**GOOD_TASK, **change})
        assert len(found) == 1 and expected in found[0], (expected, found)


def test_required_members_and_log_milliseconds():
    missing = shapecheck.check({"failures": [{"arn": "x", "reason": "MISSING"}], "tasks": [{"containers": [{}]}]},
                               DESCRIBE_TASKS)
    assert missing == []  # nothing in Task/Container/Failure is required
    events = {"events": [{"timestamp": 1764170000, "message": "seconds, not ms"}]}
    [found] = shapecheck.check(events, GET_LOG_EVENTS)
    assert "epoch milliseconds" in found
    deployment_config = ECS.shape_for("DeploymentCircuitBreaker")
    [found] = shapecheck.check({"enable": True}, deployment_config)
    assert "required member `rollback`" in found


def test_the_lifecycle_stage_ecs_sends_beyond_the_model_enum_is_tolerated_and_no_other():
    deployment = ECS.shape_for("ServiceDeployment")
    assert shapecheck.check({"lifecycleStage": "PRE_PRODUCTION_TRAFFIC_SHIFT"}, deployment) == []
    [found] = shapecheck.check({"lifecycleStage": "PRE_PRODUCTION_SHIFT"}, deployment)
    assert "not a value of enum" in found
    # The tolerance is for that enum only.
    [found] = shapecheck.check({"status": "PRE_PRODUCTION_TRAFFIC_SHIFT"}, deployment)
    assert "not a value of enum" in found
