"""Bad input over raw HTTP: malformed JSON, unknown or missing targets, wrong member types,
oversized bodies and unknown resources all get an AWS-shaped error (status, `__type`, `message`)
within a timeout: never a panic, a dropped connection or a hang. The endpoint must still answer
afterwards.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse

import pytest

ECS = "AmazonEC2ContainerServiceV20141113"
LOGS = "Logs_20140328"
TIMEOUT = 30


def post(endpoint, target, body: bytes, content_type="application/x-amz-json-1.1", method="POST", path="/"):
    url = urllib.parse.urlsplit(endpoint.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=TIMEOUT)
    headers = {"Content-Type": content_type}
    if target is not None:
        headers["X-Amz-Target"] = target
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict((k.lower(), v) for k, v in response.getheaders()), response.read()
    finally:
        connection.close()


def assert_aws_error(answer, codes, status=400):
    code, headers, body = answer
    assert code == status, f"HTTP {code}, body {body[:300]!r}"
    envelope = json.loads(body)
    assert isinstance(envelope, dict), body
    assert envelope.get("__type") in codes, f"__type {envelope.get('__type')!r} not in {codes}: {envelope}"
    assert isinstance(envelope.get("message"), str) and envelope["message"], envelope
    assert headers.get("content-type", "").startswith("application/x-amz-json-1.1"), headers
    return envelope


def assert_still_serving(endpoint):
    code, _, body = post(endpoint, f"{ECS}.ListClusters", b"{}")
    assert code == 200, body
    assert "clusterArns" in json.loads(body)


MALFORMED = [
    b"{",
    b"not json",
    b'{"cluster": }',
    b"\xff\xfe\x00garbage",
    b"[]",
    b'"a string"',
    b"42",
    b"null",
    b'{"cluster": "x"} trailing',
]


@pytest.mark.parametrize("body", MALFORMED, ids=repr)
@pytest.mark.parametrize("target", [f"{ECS}.DescribeTasks", f"{ECS}.ListClusters", f"{LOGS}.DescribeLogGroups"])
def test_malformed_json_is_a_serialization_exception(endpoint, target, body):
    assert_aws_error(post(endpoint, target, body), {"SerializationException"})


@pytest.mark.parametrize(
    "target",
    [f"{ECS}.LaunchRockets", f"{LOGS}.StartQuery", "AmazonSQS.SendMessage", "", "RunTask",
     f"{ECS}.", f"{ECS}.Run Task", f"{ECS}.RunTask.Extra"],
)
def test_unknown_target_is_an_unknown_operation(endpoint, target):
    envelope = assert_aws_error(post(endpoint, target, b"{}"), {"UnknownOperationException"})
    operation = target.rsplit(".", 1)[-1]
    if operation and target.count(".") == 1:
        assert operation in envelope["message"], envelope


def test_missing_target_header_is_an_aws_error(endpoint):
    assert_aws_error(post(endpoint, None, b"{}"), {"UnknownOperationException", "MissingAction", "SerializationException"})


@pytest.mark.parametrize(
    ("target", "body"),
    [
        (f"{ECS}.DescribeClusters", {"clusters": "not-a-list"}),
        (f"{ECS}.DescribeClusters", {"clusters": [1, 2]}),
        (f"{ECS}.CreateCluster", {"clusterName": 42}),
        (f"{ECS}.CreateCluster", {"tags": {"key": "a"}}),
        (f"{ECS}.RunTask", {"taskDefinition": "x", "count": "one"}),
        (f"{ECS}.RunTask", {"taskDefinition": "x", "count": 1.5}),
        (f"{ECS}.RunTask", {"taskDefinition": ["x"]}),
        (f"{ECS}.RegisterTaskDefinition", {"family": "f", "containerDefinitions": [{"name": "a", "memory": "512"}]}),
        (f"{ECS}.RegisterTaskDefinition", {"family": "f", "containerDefinitions": [{"name": "a", "essential": "yes"}]}),
        (f"{ECS}.ListTasks", {"maxResults": "10"}),
        (f"{ECS}.UpdateService", {"service": "s", "desiredCount": True}),
        (f"{LOGS}.PutLogEvents", {"logGroupName": "g", "logStreamName": "s",
                                  "logEvents": [{"timestamp": "yesterday", "message": "m"}]}),
        (f"{LOGS}.GetLogEvents", {"logGroupName": "g", "logStreamName": "s", "startFromHead": "true"}),
        (f"{LOGS}.CreateLogGroup", {"logGroupName": {"nested": True}}),
    ],
    ids=lambda value: value if isinstance(value, str) else json.dumps(value)[:60],
)
def test_wrong_member_types_are_rejected(endpoint, target, body):
    assert_aws_error(post(endpoint, target, json.dumps(body).encode()),
                     {"SerializationException", "InvalidParameterException", "ValidationException"})


@pytest.mark.parametrize(
    ("target", "body"),
    [
        (f"{ECS}.RunTask", {}),
        (f"{ECS}.DescribeTasks", {}),
        (f"{ECS}.RegisterTaskDefinition", {"family": "f"}),
        (f"{LOGS}.CreateLogGroup", {}),
        (f"{LOGS}.GetLogEvents", {"logGroupName": "g"}),
    ],
    ids=lambda value: value if isinstance(value, str) else json.dumps(value),
)
def test_missing_required_members_are_rejected(endpoint, target, body):
    assert_aws_error(post(endpoint, target, json.dumps(body).encode()),
                     {"SerializationException", "InvalidParameterException", "ValidationException", "ClientException"})


def test_oversized_body_is_refused_and_the_endpoint_survives(endpoint):
    # 20 MiB: far over any ECS or Logs request (PutLogEvents is capped at 1 MiB of events).
    big = b'{"clusterName": "' + b"a" * (20 * 1024 * 1024) + b'"}'
    try:
        code, headers, body = post(endpoint, f"{ECS}.CreateCluster", big)
    except (ConnectionResetError, BrokenPipeError):
        # The server may close the connection after answering early, before reading it all.
        code = None
    if code is not None:
        assert 400 <= code < 500, code
        envelope = json.loads(body)
        assert isinstance(envelope.get("__type"), str) and envelope["__type"], envelope
        assert isinstance(envelope.get("message"), str), envelope
    assert_still_serving(endpoint)


@pytest.mark.parametrize(
    ("target", "body", "codes"),
    [
        (f"{ECS}.RunTask", {"cluster": "no-such-cluster", "taskDefinition": "x"}, {"ClusterNotFoundException"}),
        (f"{ECS}.ListTasks", {"cluster": "no-such-cluster"}, {"ClusterNotFoundException"}),
        (f"{ECS}.DescribeTaskDefinition", {"taskDefinition": "no-such-family:7"}, {"ClientException"}),
        (f"{ECS}.DeregisterTaskDefinition", {"taskDefinition": "no-such-family:7"}, {"ClientException"}),
        (f"{ECS}.UpdateService", {"service": "no-such-service", "desiredCount": 1},
         {"ServiceNotFoundException", "ClusterNotFoundException"}),
        (f"{ECS}.DeleteService", {"service": "no-such-service"}, {"ServiceNotFoundException", "ClusterNotFoundException"}),
        (f"{ECS}.StopTask", {"cluster": "no-such-cluster", "task": "0123456789abcdef0123456789abcdef"},
         {"ClusterNotFoundException"}),
        (f"{LOGS}.GetLogEvents", {"logGroupName": "/no/such/group", "logStreamName": "s"}, {"ResourceNotFoundException"}),
        (f"{LOGS}.DeleteLogGroup", {"logGroupName": "/no/such/group"}, {"ResourceNotFoundException"}),
        (f"{LOGS}.CreateLogStream", {"logGroupName": "/no/such/group", "logStreamName": "s"}, {"ResourceNotFoundException"}),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_unknown_resources_are_named_errors(endpoint, target, body, codes):
    assert_aws_error(post(endpoint, target, json.dumps(body).encode()), codes)


def test_unknown_tasks_are_failures_not_errors(endpoint):
    code, _, body = post(endpoint, f"{ECS}.CreateCluster", b'{"clusterName": "bad-input"}')
    assert code == 200, body
    request = {"cluster": "bad-input", "tasks": ["0123456789abcdef0123456789abcdef"]}
    code, _, body = post(endpoint, f"{ECS}.DescribeTasks", json.dumps(request).encode())
    assert code == 200, body
    answer = json.loads(body)
    assert answer["tasks"] == []
    assert [failure["reason"] for failure in answer["failures"]] == ["MISSING"]


def test_get_is_not_an_aws_operation(endpoint):
    code, _, _ = post(endpoint, f"{ECS}.ListClusters", b"", method="GET")
    assert 400 <= code < 500
    assert_still_serving(endpoint)
