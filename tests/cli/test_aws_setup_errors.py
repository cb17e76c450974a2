"""What a user sees when AWS is not set up: one readable line naming the call, and a hint that
says what to set. Nothing here reaches AWS: no credentials, no region, or a dead local endpoint."""

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def shipmate_bin():
    explicit = os.environ.get("SHIPMATE_BIN")
    if explicit:
        return explicit
    return str(Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug" / "shipmate")


def deploy(tmp_path, **env):
    clean = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true",
             "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull, **env}
    return subprocess.run(
        [shipmate_bin(), "deploy", "--cluster", "prod", "--service", "web", "--image", "web:2",
         "--max-attempts", "1"],
        env=clean, cwd=tmp_path, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )


def assert_readable(stderr):
    assert "DispatchFailure" not in stderr and "ConnectorError" not in stderr, stderr
    assert "WARN" not in stderr, stderr


def test_missing_credentials(tmp_path):
    result = deploy(tmp_path, AWS_REGION="eu-west-1")
    assert result.returncode == 1
    assert "error: in cluster `prod`: DescribeServices: " in result.stderr
    assert "no credentials found" in result.stderr
    assert "hint: shipmate finds credentials like the AWS CLI does" in result.stderr
    assert_readable(result.stderr)


def test_missing_region(tmp_path):
    result = deploy(tmp_path, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y")
    assert result.returncode == 1
    assert "DescribeServices: Invalid Configuration: Missing Region" in result.stderr
    assert "hint: set AWS_REGION" in result.stderr
    assert_readable(result.stderr)


def test_endpoint_not_running(tmp_path):
    result = deploy(tmp_path, AWS_REGION="eu-west-1", AWS_ACCESS_KEY_ID="x",
                    AWS_SECRET_ACCESS_KEY="y", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    assert result.returncode == 1
    assert "Connection refused" in result.stderr
    assert "hint: AWS_ENDPOINT_URL points shipmate at http://127.0.0.1:9: is it running" in result.stderr
    assert_readable(result.stderr)
