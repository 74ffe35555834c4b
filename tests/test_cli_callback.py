"""``durable-exec callback``: answering callbacks from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_support import Cli, error_line

WORKFLOWS = """
from durable_exec import CallbackConfig, Duration, durable_execution


@durable_execution
def approve(event, context):
    callback = context.create_callback("approval")
    return {"answer": callback.result()}


@durable_execution
def impatient(event, context):
    config = CallbackConfig(timeout=Duration.from_seconds(1))
    return context.create_callback("approval", config).result()
"""


@pytest.fixture
def workflows(tmp_path: Path) -> Path:
    path = tmp_path / "workflows.py"
    path.write_text(WORKFLOWS, encoding="utf-8")
    return path


def _events(cli: Cli, store: str, name: str) -> list[dict[str, Any]]:
    history = cli("history", name, "--store", store, "--json")
    assert history.code == 0, history.err
    events: list[dict[str, Any]] = history.json()["Events"]
    return events


def _waiting(cli: Cli, store: str, workflows: Path, name: str) -> str:
    """Run ``approve`` until it waits; return its callback id."""
    outcome = cli("run", f"{workflows}:approve", "--store", store, "--name", name)
    assert outcome.code == 0, outcome.err
    assert "RUNNING" in outcome.err
    started = [
        event
        for event in _events(cli, store, name)
        if event["EventType"] == "CallbackStarted"
    ]
    assert len(started) == 1
    callback_id: str = started[0]["CallbackStartedDetails"]["CallbackId"]
    return callback_id


# -- answers ------------------------------------------------------------------


def test_succeed_resumes_the_execution_to_its_end(
    cli: Cli, store: str, workflows: Path
) -> None:
    """succeed records the result as given and runs the execution on."""
    callback_id = _waiting(cli, store, workflows, "ok")

    outcome = cli(
        "callback",
        "succeed",
        callback_id,
        "--result",
        '{"approved": true}',
        "--store",
        store,
        "--json",
    )

    assert outcome.code == 0, outcome.err
    data = outcome.json()
    assert data["status"] == "SUCCEEDED"
    assert data["result"] == {"answer": {"approved": True}}
    succeeded = [
        event
        for event in _events(cli, store, "ok")
        if event["EventType"] == "CallbackSucceeded"
    ]
    details = succeeded[0]["CallbackSucceededDetails"]
    assert details["Result"]["Payload"] == '{"approved": true}'


def test_succeed_prints_progress_from_the_answer_on(
    cli: Cli, store: str, workflows: Path
) -> None:
    """Progress starts with the answer's event; the result goes to stdout."""
    callback_id = _waiting(cli, store, workflows, "ok")

    outcome = cli(
        "callback", "succeed", callback_id, "--result", '"yes"', "--store", store
    )

    assert outcome.code == 0, outcome.err
    kinds = [
        line.split()[2]
        for line in outcome.err.splitlines()
        if line[:5].strip().isdigit()
    ]
    assert kinds == [
        "CallbackSucceeded",
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]
    assert json.loads(outcome.out) == {"answer": "yes"}


def test_fail_fails_the_execution_with_the_error(
    cli: Cli, store: str, workflows: Path
) -> None:
    """fail records the error; the execution fails and the command exits 1."""
    callback_id = _waiting(cli, store, workflows, "no")

    outcome = cli(
        "callback",
        "fail",
        callback_id,
        "--error-type",
        "RejectedError",
        "--error-message",
        "not approved",
        "--store",
        store,
        "--json",
    )

    assert outcome.code == 1, outcome.err
    data = outcome.json()
    assert data["status"] == "FAILED"
    assert data["error"]["ErrorMessage"] == "not approved"
    failed = [
        event
        for event in _events(cli, store, "no")
        if event["EventType"] == "CallbackFailed"
    ]
    assert failed[0]["CallbackFailedDetails"]["Error"]["Payload"] == {
        "ErrorType": "RejectedError",
        "ErrorMessage": "not approved",
    }


def test_heartbeat_leaves_the_callback_waiting(
    cli: Cli, store: str, workflows: Path
) -> None:
    """heartbeat exits 0, adds no event, and the callback can still be
    answered."""
    callback_id = _waiting(cli, store, workflows, "alive")
    before = _events(cli, store, "alive")

    outcome = cli("callback", "heartbeat", callback_id, "--store", store)

    assert outcome.code == 0, outcome.err
    assert "still waits" in outcome.err
    assert _events(cli, store, "alive") == before
    answered = cli(
        "callback", "succeed", callback_id, "--result", "1", "--store", store
    )
    assert answered.code == 0, answered.err


def test_run_names_the_callbacks_it_waits_for(
    cli: Cli, store: str, workflows: Path
) -> None:
    """A run left waiting says which callback and how to answer it."""
    outcome = cli("run", f"{workflows}:approve", "--store", store, "--name", "hint")
    callback_id = _events(cli, store, "hint")[1]["CallbackStartedDetails"]["CallbackId"]

    assert outcome.code == 0
    assert f"callback succeed {callback_id}" in outcome.err
    assert f"callback id {callback_id}" in outcome.err


def test_answer_is_kept_when_the_handler_cannot_be_loaded(
    cli: Cli, store: str, workflows: Path
) -> None:
    """Without its handler file the answer is still recorded; the execution
    waits, and the command says how to resume it."""
    callback_id = _waiting(cli, store, workflows, "orphan")
    workflows.unlink()

    outcome = cli("callback", "succeed", callback_id, "--result", "1", "--store", store)

    assert outcome.code == 0, outcome.err
    assert "RUNNING" in outcome.err
    assert "run FILE_OR_MODULE:HANDLER --name orphan" in outcome.err
    kinds = [event["EventType"] for event in _events(cli, store, "orphan")]
    assert kinds[-1] == "CallbackSucceeded"


# -- refusals -----------------------------------------------------------------


def test_unknown_callback_id_is_an_error(cli: Cli, store: str, workflows: Path) -> None:
    """An id no callback has is refused with exit 2."""
    _waiting(cli, store, workflows, "some")

    outcome = cli("callback", "succeed", "bm9wZQ==", "--store", store)

    assert "no callback has the id 'bm9wZQ=='" in error_line(outcome)


def test_answered_callback_is_closed(cli: Cli, store: str, workflows: Path) -> None:
    """A second answer to the same callback is refused with exit 2."""
    callback_id = _waiting(cli, store, workflows, "twice")
    first = cli("callback", "succeed", callback_id, "--store", store)
    assert first.code == 0, first.err

    for answer in ("succeed", "fail", "heartbeat"):
        outcome = cli("callback", answer, callback_id, "--store", store)
        assert "is closed" in error_line(outcome)


def test_callback_of_an_ended_execution_is_closed(
    cli: Cli, store: str, workflows: Path
) -> None:
    """Once the execution failed on the callback's timeout, answering is
    refused and nothing changes."""
    run = cli(
        "run",
        f"{workflows}:impatient",
        "--store",
        store,
        "--name",
        "late",
        "--skip-time",
    )
    assert run.code == 1, run.err
    before = _events(cli, store, "late")
    callback_id = before[1]["CallbackStartedDetails"]["CallbackId"]

    outcome = cli("callback", "succeed", callback_id, "--store", store)

    assert "is closed" in error_line(outcome)
    assert _events(cli, store, "late") == before


def test_result_must_be_json(cli: Cli, store: str, workflows: Path) -> None:
    """A --result that is not JSON is refused before anything is sent."""
    callback_id = _waiting(cli, store, workflows, "json")

    outcome = cli(
        "callback", "succeed", callback_id, "--result", "{nope", "--store", store
    )

    assert "--result must be JSON" in error_line(outcome)
    again = cli("callback", "succeed", callback_id, "--store", store)
    assert again.code == 0, again.err


def test_missing_store_is_an_error(cli: Cli, tmp_path: Path) -> None:
    """Answering into a store that does not exist is an error, exit 2."""
    outcome = cli("callback", "succeed", "abc", "--store", str(tmp_path / "none.db"))

    assert "does not exist" in error_line(outcome)


def test_options_belong_to_their_answer(cli: Cli, store: str) -> None:
    """--result goes with succeed only, --error-type with fail only."""
    assert cli("callback", "heartbeat", "abc", "--result", "1").code == 2
    assert cli("callback", "succeed", "abc", "--error-type", "X").code == 2
    assert cli("callback", "fail", "abc", "--result", "1").code == 2
    assert cli("callback", "abc").code == 2
