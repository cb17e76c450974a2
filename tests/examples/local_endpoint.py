"""`shipmate local serve` for the example's end-to-end test, started as a user starts it
(`--listen 127.0.0.1:0`, address from its `listening on http://HOST:PORT` line) and stopped with
SIGTERM, which must stop every task process it started."""
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on (http://[0-9.]+:[0-9]+)")


def shipmate_bin():
    """$SHIPMATE_BIN (set by scripts/test), else the debug build in the cargo target dir."""
    explicit = os.environ.get("SHIPMATE_BIN")
    if explicit:
        return explicit
    return str(Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug" / "shipmate")


class LocalEndpoint:
    def __init__(self, start_deadline=60.0):
        self.log_dir = Path(tempfile.mkdtemp(prefix="shipmate-e2e-"))
        self._stderr = open(self.log_dir / "serve.stderr", "wb")
        self.process = subprocess.Popen(
            [shipmate_bin(), "local", "serve", "--listen", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
        )
        lines = queue.Queue()

        def pump():
            for line in self.process.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + start_deadline
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"`shipmate local serve` printed no listening line: "
                                   f"{self.stderr()}")
            if line is None:
                raise RuntimeError(f"`shipmate local serve` exited {self.process.wait()}: "
                                   f"{self.stderr()}")
            match = LISTENING.search(line)
            if match:
                self.url = match.group(1)
                break
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith("AWS_")}
        self.env.update(
            AWS_ENDPOINT_URL=self.url, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
            AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
            AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_EC2_METADATA_DISABLED="true",
        )

    def stderr(self):
        if self._stderr.closed:
            return self._last_stderr
        self._stderr.flush()
        self._last_stderr = (self.log_dir / "serve.stderr").read_text(errors="replace")[-4000:]
        return self._last_stderr

    def push(self, directory, image):
        """`shipmate local push DIR --image IMAGE`."""
        result = subprocess.run(
            [shipmate_bin(), "local", "push", str(directory), "--image", image,
             "--endpoint", self.url],
            capture_output=True, text=True, timeout=120, env=self.env,
        )
        if result.returncode != 0:
            raise RuntimeError(f"`shipmate local push {directory} --image {image}` exited "
                               f"{result.returncode}: {result.stderr}")

    def _control(self, method, path):
        request = urllib.request.Request(f"{self.url}/_shipmate/{path}", method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def clear_requests(self):
        self._control("DELETE", "requests")

    def operations(self):
        """(service, operation) of every AWS call answered since the last clear."""
        return {(record["service"], record["operation"])
                for record in self._control("GET", "requests")["requests"]
                if record.get("service") and record.get("operation")}

    def requests(self, operation):
        """The bodies of the `operation` calls answered since the last clear, oldest first."""
        return [record.get("body")
                for record in self._control("GET", "requests")["requests"]
                if record.get("operation") == operation]

    def stop(self, timeout=60.0):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise RuntimeError(f"`shipmate local serve` ignored SIGTERM for {timeout:.0f} s")
        self.stderr()
        self._stderr.close()
        # The server's log was for failures while it ran; nothing stays behind.
        shutil.rmtree(self.log_dir, ignore_errors=True)
        return self.process.returncode


def wait_for(what, condition, deadline=60):
    """Polls `condition` until it returns something truthy, which it returns."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
