"""``durable-exec serve``: the URL on stdout, handlers served under the
names ``run`` gives them, and a clean stop on Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from conftest import make_client

WORKFLOWS = Path(__file__).with_name("http_workflows.py")


def test_serve_prints_the_url_serves_and_stops_on_ctrl_c() -> None:
    """The served handler answers an Invoke through boto3; SIGINT stops
    the server with status 0."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "durable_exec.cli",
            "serve",
            f"{WORKFLOWS}:steps",
            f"{WORKFLOWS}:waiting",
            "--port",
            "0",
            "--store",
            ":memory:",
            "--skip-time",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        client = make_client(url)

        steps = client.invoke(
            FunctionName="http_workflows-steps", Payload=json.dumps({"count": 3})
        )
        waiting = client.invoke(FunctionName="http_workflows-waiting", Payload=b"{}")

        assert json.loads(steps["Payload"].read()) == 5
        assert json.loads(waiting["Payload"].read())["first"] == "before"
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)

    assert process.returncode == 0, err
    assert "function http_workflows-steps from" in err
    assert "shutting down" in err
    assert out == ""


def test_serve_refuses_two_handlers_with_one_name(tmp_path: Path) -> None:
    """Two references that would share a function name are a usage error."""
    other = tmp_path / "http_workflows.py"
    other.write_text(WORKFLOWS.read_text())

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "durable_exec.cli",
            "serve",
            f"{WORKFLOWS}:steps",
            f"{other}:steps",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert "would both be served as function 'http_workflows-steps'" in result.stderr
