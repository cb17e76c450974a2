"""A `shipmate local serve` process for the outside-client tests, and small helpers around it.

The endpoint is started exactly as a user starts it (`shipmate local serve --listen 127.0.0.1:0`),
its address read from the one `listening on http://HOST:PORT` line it prints, and it is stopped
with SIGTERM, which must stop every process it started.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"^listening on (http://[0-9.]+:[0-9]+)$")
START_DEADLINE = 60.0


def shipmate_bin() -> str:
    explicit = os.environ.get("SHIPMATE_BIN")
    if explicit:
        return explicit
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return str(target / "debug" / "shipmate")


def aws_cli() -> str:
    """The `aws` of the interpreter running pytest (the test venv), not whatever is on PATH."""
    candidate = Path(sys.executable).parent / "aws"
    return str(candidate) if candidate.exists() else "aws"


def client_env(url: str) -> dict[str, str]:
    """The environment an outside client needs: only AWS_ENDPOINT_URL points it here."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_")
    }
    env.update(
        AWS_ENDPOINT_URL=url,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        # Never read a developer's ~/.aws, never ask an instance metadata service.
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_PAGER="",
    )
    return env


class LocalEndpoint:
    def __init__(self, state_dir: Path | None = None, extra_args: tuple[str, ...] = ()):
        self.log_dir = Path(tempfile.mkdtemp(prefix="shipmate-local-test-"))
        self.stderr_path = self.log_dir / "serve.stderr"
        command = [shipmate_bin(), "local", "serve", "--listen", "127.0.0.1:0", *extra_args]
        if state_dir is not None:
            command += ["--state-dir", str(state_dir)]
        self._stderr = open(self.stderr_path, "wb")
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        self.stdout_lines: list[str] = []

        def pump():
            for line in self.process.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        self.url = self._await_listening(lines)
        self.env = client_env(self.url)

    def _await_listening(self, lines) -> str:
        deadline = time.monotonic() + START_DEADLINE
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise RuntimeError(f"`shipmate local serve` printed no listening line in {START_DEADLINE:.0f} s; stderr: {self.stderr()}")
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                code = self.process.wait()
                raise RuntimeError(f"`shipmate local serve` exited with {code} before listening; stderr: {self.stderr()}")
            self.stdout_lines.append(line)
            match = LISTENING.match(line)
            if match:
                return match.group(1)

    def stderr(self) -> str:
        if self._stderr.closed:
            return self._final_stderr
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")[-4000:]

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then the exit code (SIGKILL and an error if it does not exit in time). The
        log directory is removed; its stderr stays readable through `stderr()`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise RuntimeError(f"`shipmate local serve` ignored SIGTERM for {timeout:.0f} s")
        if not self._stderr.closed:
            self._final_stderr = self.stderr()
            self._stderr.close()
            shutil.rmtree(self.log_dir, ignore_errors=True)
        return self.process.returncode

    def control(self, method: str, path: str, body: dict | None = None) -> dict:
        """A `/_shipmate/PATH` control call; its JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/_shipmate/{path}", data=data, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def push(self, image: str, files: dict[str, str], executable: tuple[str, ...] = ()) -> None:
        """`shipmate local push DIR --image IMAGE`: a directory with `files` becomes `image`."""
        with tempfile.TemporaryDirectory(prefix="shipmate-image-") as directory:
            for name, content in files.items():
                path = Path(directory) / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)
                if name in executable:
                    path.chmod(0o755)
            result = subprocess.run(
                [shipmate_bin(), "local", "push", directory, "--image", image, "--endpoint", self.url],
                capture_output=True,
                text=True,
                timeout=60,
                env=self.env,
            )
            if result.returncode != 0:
                raise RuntimeError(f"`shipmate local push` failed ({result.returncode}): {result.stderr}")


def run_aws(env: dict[str, str], *args: str, timeout: float = 180) -> dict:
    """Runs the AWS CLI (`aws ARGS --output json`) and returns its parsed JSON output."""
    result = subprocess.run(
        [aws_cli(), *args, "--output", "json"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if result.returncode != 0:
        raise AssertionError(f"`aws {' '.join(args)}` exited {result.returncode}: {result.stderr.strip()}")
    return json.loads(result.stdout) if result.stdout.strip() else {}


def wait_for(condition, what: str, timeout: float = 60.0, interval: float = 0.2):
    """Polls `condition()` until it returns something truthy; fails naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
