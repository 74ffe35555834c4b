"""The ``durable-exec`` command, called through ``main`` in this process."""

from __future__ import annotations

import datetime as _dt
import json
import sys
import types
from pathlib import Path
from typing import Any

import attrs
import pytest
from cli_support import Cli, error_line

import durable_exec.testing
from durable_exec.local import LocalEngine
from durable_exec.wire import ExecutionStatus

HELLO = Path(__file__).resolve().parents[1] / "samples" / "hello.py"

# Counts its steps' runs in the file named by the input's "count".
COUNTING = """
from durable_exec import RetryDecision, StepConfig, durable_execution

# Two attempts, one second apart: deterministic, unlike jittered presets.
RETRY_ONCE = StepConfig(
    retry_strategy=lambda error, attempt: (
        RetryDecision.retry(1) if attempt < 2 else RetryDecision.stop()
    )
)


def _count(path, line):
    with open(path, "a", encoding="utf-8") as file:
        file.write(line + "\\n")


@durable_execution
def handler(event, context):
    def first(_):
        _count(event["count"], "first")
        return 20

    def second(_):
        _count(event["count"], "second")
        return 22

    a = context.step(first, name="first")
    context.wait(1, name="nap")
    b = context.step(second, name="second")
    return {"sum": a + b}


@durable_execution
def failing(event, context):
    def boom(_):
        raise RuntimeError("kaput")

    return context.run_in_child_context(
        lambda child: child.step(boom, name="boom", config=RETRY_ONCE),
        name="inner",
    )


@durable_execution
def noisy(event, context):
    print("noise from the workflow")
    return context.step(lambda _: "quiet", name="say")


def plain(event, context):
    return "not durable"
"""


@pytest.fixture
def workflows(tmp_path: Path) -> Path:
    path = tmp_path / "workflows.py"
    path.write_text(COUNTING, encoding="utf-8")
    return path


# -- run ----------------------------------------------------------------------


def test_run_prints_the_result_as_json(cli: Cli, store: str) -> None:
    """run prints the result on stdout and exits 0 when it succeeds."""
    outcome = cli(
        "run",
        f"{HELLO}:handler",
        "--input",
        '{"name": "Ada"}',
        "--store",
        store,
        "--skip-time",
    )

    assert outcome.code == 0, outcome.err
    assert outcome.json() == {
        "greeting": "Hello, Ada!",
        "letters": 3,
        "shout": "HELLO, ADA!",
    }


def test_run_shows_one_progress_line_per_event(cli: Cli, store: str) -> None:
    """run writes a line per history event on stderr, in order."""
    outcome = cli(
        "run",
        f"{HELLO}:handler",
        "--input",
        '{"name": "Ada"}',
        "--store",
        store,
        "--skip-time",
        "--name",
        "ada",
    )

    history = cli("history", "ada", "--store", store, "--json").json()
    shown = [
        line.split()[:3]
        for line in outcome.err.splitlines()
        if line[:5].strip().isdigit()
    ]
    assert [(int(number), kind) for number, _, kind in shown] == [
        (event["EventId"], event["EventType"]) for event in history["Events"]
    ]
    assert "1      greet" in outcome.err


def test_run_json_has_exactly_the_documented_keys(cli: Cli, store: str) -> None:
    """run --json prints arn, name, status, result and error only."""
    outcome = cli(
        "run",
        f"{HELLO}:handler",
        "--input",
        '{"name": "Ada"}',
        "--store",
        store,
        "--skip-time",
        "--name",
        "ada",
        "--json",
    )

    data = outcome.json()
    assert outcome.code == 0
    assert set(data) == {"arn", "name", "status", "result", "error"}
    assert data["arn"].startswith("arn:aws:lambda:")
    assert data["name"] == "ada"
    assert data["status"] == "SUCCEEDED"
    assert data["result"]["greeting"] == "Hello, Ada!"
    assert data["error"] is None


def test_rerun_by_name_returns_the_result_without_running_steps(
    cli: Cli, store: str, workflows: Path, tmp_path: Path
) -> None:
    """A second run with the same name prints the result; no step reruns."""
    count = tmp_path / "count.txt"
    argv = (
        "run",
        f"{workflows}:handler",
        "--input",
        json.dumps({"count": str(count)}),
        "--store",
        store,
        "--skip-time",
        "--name",
        "once",
        "--json",
    )

    first = cli(*argv)
    second = cli(*argv)
    third = cli(*argv[:2], *argv[4:])  # --input left out

    assert first.code == second.code == third.code == 0
    assert first.json() == second.json() == third.json()
    assert first.json()["result"] == {"sum": 42}
    assert count.read_text().splitlines() == ["first", "second"]
    assert "has ended; nothing to run" in second.err


def test_rerun_with_another_input_is_refused(
    cli: Cli, store: str, workflows: Path, tmp_path: Path
) -> None:
    """Reusing a name with a different --input is an error, exit 2."""
    count = str(tmp_path / "count.txt")
    common = ("--store", store, "--skip-time", "--name", "once")
    cli("run", f"{workflows}:handler", "--input", json.dumps({"count": count}), *common)

    outcome = cli(
        "run", f"{workflows}:handler", "--input", '{"count": "other"}', *common
    )

    assert "exists with another input" in error_line(outcome)


def test_failed_execution_exits_1_with_the_error(
    cli: Cli, store: str, workflows: Path
) -> None:
    """A failed execution exits 1 and --json carries the recorded error."""
    outcome = cli(
        "run",
        f"{workflows}:failing",
        "--input",
        "{}",
        "--store",
        store,
        "--skip-time",
        "--json",
    )

    data = outcome.json()
    assert outcome.code == 1
    assert data["status"] == "FAILED"
    assert data["result"] is None
    assert data["error"]["ErrorType"] == "RuntimeError"
    assert data["error"]["ErrorMessage"] == "kaput"


def test_failed_execution_says_why_on_stderr(
    cli: Cli, store: str, workflows: Path
) -> None:
    """Without --json a failure prints nothing on stdout, the error on
    stderr."""
    outcome = cli(
        "run",
        f"{workflows}:failing",
        "--input",
        "{}",
        "--store",
        store,
        "--skip-time",
    )

    assert outcome.code == 1
    assert outcome.out == ""
    assert "FAILED" in outcome.err
    assert "kaput" in outcome.err


def test_running_execution_exits_0_and_says_running(
    cli: Cli, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An execution left waiting for the outside world exits 0, RUNNING."""
    drive = LocalEngine.drive

    def waiting(self: LocalEngine, arn: str, **kwargs: Any) -> Any:
        return attrs.evolve(
            drive(self, arn, **kwargs),
            status=ExecutionStatus.RUNNING,
            result_payload=None,
        )

    monkeypatch.setattr(LocalEngine, "drive", waiting)

    as_json = cli(
        "run",
        f"{HELLO}:handler",
        "--input",
        "{}",
        "--store",
        store,
        "--skip-time",
        "--json",
    )
    as_text = cli(
        "run",
        f"{HELLO}:handler",
        "--input",
        "{}",
        "--store",
        store,
        "--skip-time",
    )

    assert as_json.code == as_text.code == 0
    assert as_json.json()["status"] == "RUNNING"
    assert as_json.json()["result"] is None
    assert "RUNNING" in as_text.err
    assert as_text.out == ""


def test_workflow_prints_stay_off_stdout(cli: Cli, store: str, workflows: Path) -> None:
    """What the workflow prints goes to stderr; stdout stays JSON."""
    outcome = cli(
        "run",
        f"{workflows}:noisy",
        "--input",
        "{}",
        "--store",
        store,
        "--json",
    )

    assert outcome.json()["result"] == "quiet"
    assert "noise from the workflow" in outcome.err


def test_run_with_a_memory_store(cli: Cli, workflows: Path, tmp_path: Path) -> None:
    """--store :memory: runs without writing a store file."""
    count = str(tmp_path / "count.txt")
    outcome = cli(
        "run",
        f"{workflows}:handler",
        "--input",
        json.dumps({"count": count}),
        "--store",
        ":memory:",
        "--skip-time",
        "--json",
    )

    assert outcome.json()["result"] == {"sum": 42}
    assert not (tmp_path / ".durable_exec").exists()


def test_run_in_subprocesses(
    cli: Cli, store: str, workflows: Path, tmp_path: Path
) -> None:
    """--subprocess gives the same result as in-process invocations."""
    count = tmp_path / "count.txt"
    outcome = cli(
        "run",
        f"{workflows}:handler",
        "--input",
        json.dumps({"count": str(count)}),
        "--store",
        store,
        "--skip-time",
        "--subprocess",
        "--json",
    )

    assert outcome.code == 0, outcome.err
    assert outcome.json()["result"] == {"sum": 42}
    assert count.read_text().splitlines() == ["first", "second"]


def test_default_store_is_under_the_current_directory(
    cli: Cli, workflows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --store, executions are kept in .durable_exec/ here."""
    monkeypatch.chdir(tmp_path)
    count = str(tmp_path / "count.txt")

    outcome = cli(
        "run",
        f"{workflows}:handler",
        "--input",
        json.dumps({"count": count}),
        "--skip-time",
        "--name",
        "here",
    )
    listed = cli("list", "--json").json()

    assert outcome.code == 0
    assert (tmp_path / ".durable_exec" / "executions.sqlite3").is_file()
    assert [e["DurableExecutionName"] for e in listed["DurableExecutions"]] == ["here"]


def test_function_name_comes_from_the_file_and_attribute(
    cli: Cli, store: str, workflows: Path, tmp_path: Path
) -> None:
    """FILE.py:ATTR registers the function as 'FILE-ATTR'."""
    count = str(tmp_path / "count.txt")
    cli(
        "run",
        f"{workflows}:handler",
        "--input",
        json.dumps({"count": count}),
        "--store",
        store,
        "--skip-time",
    )

    outcome = cli("list", "--store", store)

    assert "workflows-handler" in outcome.out


# -- bad usage ----------------------------------------------------------------


def test_bad_input_json_names_the_flag_and_value(cli: Cli, store: str) -> None:
    """--input that is not JSON is an error naming the flag and the text."""
    outcome = cli("run", f"{HELLO}:handler", "--input", "{name: Ada}", "--store", store)

    line = error_line(outcome)
    assert "--input must be JSON" in line
    assert "'{name: Ada}'" in line


def test_unknown_handler_file_is_an_error(cli: Cli, store: str, tmp_path: Path) -> None:
    """A handler file that does not exist is an error, exit 2."""
    missing = tmp_path / "missing.py"
    outcome = cli("run", f"{missing}:handler", "--input", "{}", "--store", store)

    assert repr(str(missing)) in error_line(outcome)


def test_unknown_handler_attribute_is_an_error(
    cli: Cli, store: str, workflows: Path
) -> None:
    """An attribute the file does not have is an error, exit 2."""
    outcome = cli("run", f"{workflows}:nothing", "--input", "{}", "--store", store)

    assert "has no attribute 'nothing'" in error_line(outcome)


def test_non_durable_attribute_is_an_error(
    cli: Cli, store: str, workflows: Path
) -> None:
    """A plain function is refused: it needs @durable_execution."""
    outcome = cli("run", f"{workflows}:plain", "--input", "{}", "--store", store)

    assert "@durable_execution" in error_line(outcome)


def test_handler_reference_without_colon_is_an_error(
    cli: Cli, store: str, workflows: Path
) -> None:
    """A reference without ':HANDLER' is an error, exit 2."""
    outcome = cli("run", str(workflows), "--input", "{}", "--store", store)

    assert "FILE_OR_MODULE:HANDLER" in error_line(outcome)


def test_handler_file_that_raises_on_import_is_an_error(
    cli: Cli, store: str, tmp_path: Path
) -> None:
    """A handler file that raises while loading is reported, exit 2."""
    broken = tmp_path / "broken.py"
    broken.write_text("raise ImportError('no such thing')\n", encoding="utf-8")

    outcome = cli("run", f"{broken}:handler", "--input", "{}", "--store", store)

    line = error_line(outcome)
    assert "cannot load handler" in line
    assert "no such thing" in line


def test_invalid_execution_name_is_an_error(cli: Cli, store: str) -> None:
    """An execution name the service would refuse is an error, exit 2."""
    outcome = cli(
        "run",
        f"{HELLO}:handler",
        "--input",
        "{}",
        "--store",
        store,
        "--name",
        "no spaces",
    )

    assert "'no spaces'" in error_line(outcome)


def test_subprocess_needs_a_store_on_disk(cli: Cli) -> None:
    """--subprocess with --store :memory: is an error, exit 2."""
    outcome = cli(
        "run",
        f"{HELLO}:handler",
        "--input",
        "{}",
        "--store",
        ":memory:",
        "--subprocess",
    )

    assert "--subprocess needs a store on disk" in error_line(outcome)


def test_missing_command_is_a_usage_error(cli: Cli) -> None:
    """No command at all exits 2 with argparse's usage."""
    outcome = cli()

    assert outcome.code == 2
    assert "usage: durable-exec" in outcome.err


def test_help_exits_0(cli: Cli) -> None:
    """--help prints usage listing every command and exits 0."""
    outcome = cli("--help")

    assert outcome.code == 0
    for command in ("run", "history", "list", "conformance"):
        assert command in outcome.out


# -- history ------------------------------------------------------------------


def test_history_json_is_the_service_response_in_order(
    cli: Cli, store: str, workflows: Path, tmp_path: Path
) -> None:
    """history --json prints {"Events": [...]} oldest first, ISO times."""
    count = str(tmp_path / "count.txt")
    cli(
        "run",
        f"{workflows}:handler",
        "--input",
        json.dumps({"count": count}),
        "--store",
        store,
        "--skip-time",
        "--name",
        "h",
    )

    outcome = cli("history", "h", "--store", store, "--json")

    data = outcome.json()
    assert outcome.code == 0
    assert list(data) == ["Events"]
    events = data["Events"]
    assert [event["EventType"] for event in events] == [
        "ExecutionStarted",
        "StepStarted",
        "StepSucceeded",
        "WaitStarted",
        "InvocationCompleted",
        "WaitSucceeded",
        "StepStarted",
        "StepSucceeded",
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]
    assert [event["EventId"] for event in events] == list(range(1, len(events) + 1))
    times = [_dt.datetime.fromisoformat(e["EventTimestamp"]) for e in events]
    assert times == sorted(times)
    assert all(time.tzinfo is not None for time in times)
    wait = events[3]
    assert wait["Name"] == "nap"
    assert wait["SubType"] == "Wait"
    assert wait["WaitStartedDetails"]["Duration"] == 1
    _dt.datetime.fromisoformat(wait["WaitStartedDetails"]["ScheduledEndTimestamp"])
    assert events[2]["StepSucceededDetails"]["Result"]["Payload"] == "20"


def test_history_accepts_the_arn(cli: Cli, store: str) -> None:
    """history takes an execution's ARN as well as its name."""
    run = cli(
        "run",
        f"{HELLO}:handler",
        "--input",
        "{}",
        "--store",
        store,
        "--skip-time",
        "--json",
    )

    outcome = cli("history", run.json()["arn"], "--store", store, "--json")

    assert outcome.json()["Events"][0]["EventType"] == "ExecutionStarted"


def test_history_table_shows_offsets_operations_and_details(
    cli: Cli, store: str, workflows: Path
) -> None:
    """history --format events prints a table with a row per event."""
    cli(
        "run",
        f"{workflows}:failing",
        "--input",
        "{}",
        "--store",
        store,
        "--skip-time",
        "--name",
        "f",
    )

    outcome = cli("history", "f", "--store", store, "--format", "events")

    lines = outcome.out.splitlines()
    assert outcome.code == 0
    assert lines[0].split() == ["ID", "TIME", "TYPE", "OPERATION", "NAME", "DETAILS"]
    assert lines[1].split()[:3] == ["1", "+0.000s", "ExecutionStarted"]
    retried = next(line for line in lines if "StepFailed" in line)
    assert retried.split()[3:5] == ["1-1", "boom"]
    assert "attempt 1, retry in 1 s, RuntimeError" in retried
    assert "ExecutionFailed" in lines[-1]
    assert "RuntimeError: kaput" in lines[-1]


def test_history_of_unknown_execution_is_an_error(cli: Cli, store: str) -> None:
    """history of a name no execution has is an error, exit 2."""
    cli("run", f"{HELLO}:handler", "--input", "{}", "--store", store, "--skip-time")

    outcome = cli("history", "nobody", "--store", store)

    assert "no execution is named 'nobody'" in error_line(outcome)


def test_history_without_a_store_file_is_an_error(cli: Cli, tmp_path: Path) -> None:
    """history on a store that does not exist fails and creates nothing."""
    missing = tmp_path / "missing.sqlite3"

    outcome = cli("history", "x", "--store", str(missing))

    assert "does not exist" in error_line(outcome)
    assert not missing.exists()


# -- list ---------------------------------------------------------------------


def test_list_shows_every_execution(cli: Cli, store: str, workflows: Path) -> None:
    """list prints name, function, status, start and end of each."""
    cli(
        "run",
        f"{HELLO}:handler",
        "--input",
        "{}",
        "--store",
        store,
        "--skip-time",
        "--name",
        "good",
    )
    cli(
        "run",
        f"{workflows}:failing",
        "--input",
        "{}",
        "--store",
        store,
        "--skip-time",
        "--name",
        "bad",
    )

    table = cli("list", "--store", store)
    as_json = cli("list", "--store", store, "--json").json()

    rows = [line.split()[:3] for line in table.out.splitlines()]
    assert rows == [
        ["NAME", "FUNCTION", "STATUS"],
        ["good", "hello-handler", "SUCCEEDED"],
        ["bad", "workflows-failing", "FAILED"],
    ]
    executions = as_json["DurableExecutions"]
    assert [e["DurableExecutionName"] for e in executions] == ["good", "bad"]
    assert set(executions[0]) == {
        "DurableExecutionArn",
        "DurableExecutionName",
        "FunctionArn",
        "Status",
        "StartTimestamp",
        "EndTimestamp",
    }
    assert executions[0]["FunctionArn"].endswith(":function:hello-handler:$LATEST")
    start = _dt.datetime.fromisoformat(executions[0]["StartTimestamp"])
    end = _dt.datetime.fromisoformat(executions[0]["EndTimestamp"])
    assert start <= end


def test_list_of_a_missing_store_is_empty(cli: Cli, tmp_path: Path) -> None:
    """list on a store that does not exist lists nothing, creates nothing."""
    missing = tmp_path / "missing.sqlite3"

    outcome = cli("list", "--store", str(missing), "--json")

    assert outcome.code == 0
    assert outcome.json() == {"DurableExecutions": []}
    assert not missing.exists()


# -- conformance --------------------------------------------------------------


def test_conformance_gets_every_remaining_argument(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """conformance hands its arguments, unparsed, to the suite's main."""
    calls: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        calls.append(argv)
        return 3

    fake = types.ModuleType("durable_exec.testing.conformance")
    fake.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "durable_exec.testing.conformance", fake)
    monkeypatch.setattr(durable_exec.testing, "conformance", fake, raising=False)

    outcome = cli("conformance", "--suite", "a,b", "--json")

    assert outcome.code == 3
    assert calls == [["--suite", "a,b", "--json"]]
