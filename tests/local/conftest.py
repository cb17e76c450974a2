"""Fixtures for the tests of `shipmate local` through outside clients (AWS CLI, boto3, raw HTTP)."""

from __future__ import annotations

import uuid

import boto3
import botocore.config
import pytest

from localendpoint import LocalEndpoint


@pytest.fixture(scope="session")
def endpoint():
    """One `shipmate local serve` for the whole session; stopped with SIGTERM at the end."""
    server = LocalEndpoint()
    yield server
    code = server.stop()
    assert code == 0, f"`shipmate local serve` exited {code} on SIGTERM; stderr: {server.stderr()}"


def make_client(endpoint: LocalEndpoint, service: str):
    return boto3.session.Session(
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    ).client(
        service,
        endpoint_url=endpoint.url,
        # One attempt: every response the tests see is the endpoint's first answer.
        config=botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=30),
    )


@pytest.fixture
def ecs(endpoint):
    return make_client(endpoint, "ecs")


@pytest.fixture
def logs(endpoint):
    return make_client(endpoint, "logs")


@pytest.fixture
def unique():
    """A short unique suffix so tests sharing the session endpoint never collide."""
    return uuid.uuid4().hex[:8]
