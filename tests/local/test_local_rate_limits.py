"""`shipmate local serve --rate-limits` through botocore: ECS's API rate limits answered with the
envelope ECS uses, which botocore retries as throttling, and recorded in the request log."""

from __future__ import annotations

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from localendpoint import LocalEndpoint

CONTAINERS = [{"name": "app", "image": "app:1", "memory": 64}]


@pytest.fixture(scope="module")
def limited():
    server = LocalEndpoint(extra_args=("--rate-limits",))
    yield server
    code = server.stop()
    assert code == 0, f"`shipmate local serve --rate-limits` exited {code}; stderr: {server.stderr()}"


def ecs_client(endpoint: LocalEndpoint, attempts: int):
    # `total_max_attempts` counts the first attempt; botocore's `max_attempts` counts retries.
    return boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1",
    ).client("ecs", endpoint_url=endpoint.url, config=botocore.config.Config(
        retries={"total_max_attempts": attempts, "mode": "standard"}, read_timeout=30))


def test_rate_limits_are_off_unless_the_flag_is_given(endpoint, limited):
    assert endpoint.control("GET", "settings")["rate_limits"] is False
    settings = limited.control("GET", "settings")
    assert settings["rate_limits"] is True
    assert settings["rate_limit_refill_scale"] == 1


def test_a_call_beyond_the_burst_is_throttled_as_ecs_does(limited):
    # Scale 0: no refill, so exactly the burst of 20 is answered however slow the machine is.
    limited.control("PUT", "settings", {"rate_limit_refill_scale": 0})
    limited.control("DELETE", "requests")
    once = ecs_client(limited, attempts=1)
    outcomes = []
    for _ in range(25):
        try:
            once.register_task_definition(family="limited", containerDefinitions=CONTAINERS)
            outcomes.append("ok")
        except ClientError as error:
            assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
            assert error.response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
            outcomes.append("throttled")
    assert outcomes == ["ok"] * 20 + ["throttled"] * 5

    # botocore's standard retry treats it as throttling: three attempts, then the error.
    with pytest.raises(ClientError) as raised:
        ecs_client(limited, attempts=3).register_task_definition(
            family="limited", containerDefinitions=CONTAINERS)
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"

    records = limited.control("GET", "requests")["requests"]
    throttled = [r for r in records if r.get("errorCode") == "ThrottlingException"]
    assert len(throttled) == 8
    assert all(r["status"] == 400 and "fault" not in r for r in throttled)
    assert throttled[0]["body"] == {"family": "limited", "containerDefinitions": CONTAINERS}
