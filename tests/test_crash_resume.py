"""A ``durable-exec run`` killed mid-step resumes where it stopped.

The workflow's third step blocks on its first run, after telling the test
so through a marker file. The test kills the command's whole process group
with SIGKILL (the command, and the invocation's process with
``--subprocess``), as a crash of the machine would, then runs the same
command again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from durable_exec.cli import main

WORKFLOW = """
import os
import threading

from durable_exec import durable_execution


def _journal(path, line):
    with open(path, "a", encoding="utf-8") as file:
        file.write(line + "\\n")


@durable_execution
def handler(event, context):
    total = 0
    for index in range(1, 6):
        name = f"step{index}"

        def run(_, name=name, index=index, total=total):
            _journal(event["journal"], name)
            if index == 3 and not os.path.exists(event["marker"]):
                with open(event["marker"], "w", encoding="utf-8") as file:
                    file.write(str(os.getpid()))
                threading.Event().wait()  # until killed
            return total * 2 + index

        total = context.step(run, name=name)
        if index == 2:
            context.wait(1, name="breather")
    return {"total": total}
"""

# What the steps return, chained: 1, 4, 11, 26, 57.
EXPECTED_RESULT = {"total": 57}
# Bounds a hung run, never a pause in a passing one.
DEADLINE_SECONDS = 60.0


def _command(
    handler: Path, store: Path, name: str, event: dict[str, str], mode: list[str]
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "durable_exec.cli",
        "run",
        f"{handler}:handler",
        "--input",
        json.dumps(event),
        "--name",
        name,
        "--store",
        str(store),
        "--skip-time",
        "--json",
        *mode,
    ]


def _wait_for(marker: Path, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once ``marker`` exists; fail if the process ends first."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(
                f"the run exited ({process.returncode}) before step 3 "
                f"blocked:\n{log.read_text()}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"step 3 did not start:\n{log.read_text()}")
        time.sleep(0.01)


def _finish(command: list[str], cwd: Path) -> dict[str, Any]:
    process = subprocess.run(
        command,
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
    )
    assert process.returncode == 0, process.stderr
    result: dict[str, Any] = json.loads(process.stdout)
    return result


def _history(
    name: str, store: Path, capsys: pytest.CaptureFixture[str]
) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["history", name, "--store", str(store), "--json"]) == 0
    events: list[dict[str, Any]] = json.loads(capsys.readouterr().out)["Events"]
    return events


@pytest.mark.parametrize(
    "mode", [[], ["--subprocess"]], ids=["in-process", "subprocess"]
)
def test_killed_run_resumes_without_repeating_completed_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: list[str]
) -> None:
    """After SIGKILL mid-step, the rerun finishes with the same result and
    runs again only the step that was interrupted."""
    handler = tmp_path / "five_steps.py"
    handler.write_text(WORKFLOW, encoding="utf-8")
    store = tmp_path / "store.sqlite3"

    # An uninterrupted run: the marker exists, so step 3 does not block.
    clean_journal = tmp_path / "clean.journal"
    clean_marker = tmp_path / "clean.marker"
    clean_marker.touch()
    clean = _finish(
        _command(
            handler,
            store,
            "clean",
            {"journal": str(clean_journal), "marker": str(clean_marker)},
            mode,
        ),
        tmp_path,
    )
    assert clean["status"] == "SUCCEEDED"
    assert clean["result"] == EXPECTED_RESULT
    assert clean_journal.read_text().splitlines() == [
        f"step{index}" for index in range(1, 6)
    ]

    # The run that crashes in step 3.
    journal = tmp_path / "crash.journal"
    marker = tmp_path / "crash.marker"
    command = _command(
        handler,
        store,
        "crash",
        {"journal": str(journal), "marker": str(marker)},
        mode,
    )
    log = tmp_path / "crash.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for(marker, process, log)
        os.killpg(process.pid, signal.SIGKILL)
        assert process.wait(timeout=DEADLINE_SECONDS) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if mode:
        # The invocation ran in a child process, and died with the group.
        assert int(marker.read_text()) != process.pid
    assert journal.read_text().splitlines() == ["step1", "step2", "step3"]

    resumed = _finish(command, tmp_path)

    assert resumed["status"] == "SUCCEEDED"
    assert resumed["result"] == clean["result"]
    assert resumed["name"] == "crash"
    # Steps 1 and 2 completed before the kill: once each. Step 3 was
    # interrupted, so (at least once) it ran again.
    assert journal.read_text().splitlines() == [
        "step1",
        "step2",
        "step3",
        "step3",
        "step4",
        "step5",
    ]

    events = _history("crash", store, capsys)
    crashes = [
        event
        for event in events
        if event["EventType"] == "InvocationCompleted"
        and event["InvocationCompletedDetails"].get("Error")
    ]
    assert len(crashes) == 1
    error = crashes[0]["InvocationCompletedDetails"]["Error"]["Payload"]
    assert error["ErrorType"] == "Runtime.ExitError"
    succeeded = [
        event["Name"] for event in events if event["EventType"] == "StepSucceeded"
    ]
    assert succeeded == [f"step{index}" for index in range(1, 6)]
    assert events[-1]["EventType"] == "ExecutionSucceeded"
