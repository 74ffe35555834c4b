"""Tests for the pytest plugin: the ``durable`` fixture, replay checking
and the replayer of stored histories.

The fixture is used directly here, as any project that installed
durable_exec uses it (the ``pytest11`` entry point loads the plugin);
``pytester`` runs whole test files to see what a user sees: the fixture
listed, a failing replay check and its diff, the marker and the ini
option.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from durable_exec import (
    CallbackConfig,
    CallbackError,
    CallbackTimeoutError,
    CompletionConfig,
    DurableContext,
    Duration,
    ExecutionNotFoundError,
    InvokeError,
    MapConfig,
    ParallelConfig,
    RetryStrategy,
    StepConfig,
    StepContext,
    WaitForConditionConfig,
    WaitStrategy,
    durable_execution,
)
from durable_exec.cli import main as cli_main
from durable_exec.handler import DurableHandler
from durable_exec.local import load_handler
from durable_exec.testing import (
    DEFAULT_START,
    DurableHarness,
    HistoryError,
    ReplayMismatch,
    recorded_from_history,
    replay_history,
)
from durable_exec.wire import (
    ExecutionStatus,
    Operation,
    OperationStatus,
    OperationType,
)

pytest_plugins = ["pytester"]

MINUTE = dt.timedelta(minutes=1)

# What the handlers below do differently "after a deploy"; tests flip it
# between a run and its replay.
DEPLOYED: dict[str, str | None] = {"change": None}


@pytest.fixture(autouse=True)
def _undeploy() -> Iterator[None]:
    yield
    DEPLOYED["change"] = None


# -- handlers ------------------------------------------------------------------------

calls: dict[str, int] = {}


def _count(name: str) -> None:
    calls[name] = calls.get(name, 0) + 1


@durable_execution
def checkout(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    def reserve(_: Any) -> str:
        _count("reserve")
        return f"reserved {event['sku']}"

    reserved = context.step(reserve, name="reserve")
    context.wait(Duration.from_hours(1), name="cool-off")
    charged = context.run_in_child_context(
        lambda child: child.step(lambda _: event["amount"] * 100, name="cents"),
        name="billing",
    )
    change = DEPLOYED["change"]
    if change == "added":
        context.step(lambda _: None, name="audit")
    if change == "different result":
        charged += 1
    return {"reserved": reserved, "cents": charged}


@durable_execution
def approval_flow(event: Any, context: DurableContext) -> Any:
    return context.wait_for_callback(lambda callback_id, step: None, name="approval")


_FLAKY_RETRY = RetryStrategy.exponential(max_attempts=4, initial_delay=2, jitter="NONE")


def _attempt_three(step: StepContext) -> int:
    if step.attempt < 3:
        raise RuntimeError(f"attempt {step.attempt} failed")
    return step.attempt


@durable_execution
def flaky_flow(event: Any, context: DurableContext) -> int:
    return context.step(
        _attempt_three, name="flaky", config=StepConfig(retry_strategy=_FLAKY_RETRY)
    )


# -- the fixture ---------------------------------------------------------------------


def test_run_returns_status_result_and_operations(durable: DurableHarness) -> None:
    """A run reports its result and each operation by name, with
    timestamps in engine time from the fixed start."""
    run = durable.run(checkout, {"sku": "kettle", "amount": 3})

    run.assert_succeeded()
    assert run.status is ExecutionStatus.SUCCEEDED
    assert run.result == {"reserved": "reserved kettle", "cents": 300}
    assert run.step("reserve").result == "reserved kettle"
    assert run.step("reserve").attempts == 1
    nap = run.wait("cool-off")
    assert (nap.start, nap.end) == (DEFAULT_START, DEFAULT_START + 60 * MINUTE)
    billing = run.context("billing")
    assert [child.name for child in billing.children] == ["cents"]
    assert billing.children[0].result == 300
    assert run.operation("cents", "step").parent_id == billing.id
    assert run.history[0]["EventType"] == "ExecutionStarted"
    assert run.history[-1]["EventType"] == "ExecutionSucceeded"


def test_step_attempts_count_retries(durable: DurableHarness) -> None:
    """A step retried twice reports three attempts, its delays skipped."""
    run = durable.run(flaky_flow)

    assert run.result == 3
    step = run.step("flaky")
    assert step.attempts == 3
    assert step.end == DEFAULT_START + dt.timedelta(seconds=2 + 4)


def test_missing_operation_lists_the_operations(durable: DurableHarness) -> None:
    """Looking up an unknown name fails with the operations listed."""
    run = durable.run(checkout, {"sku": "kettle", "amount": 1})

    with pytest.raises(LookupError, match="no STEP is named 'charge'") as info:
        run.step("charge")
    assert "STEP/Step 'reserve'" in str(info.value)


def test_assert_succeeded_shows_error_and_operations(durable: DurableHarness) -> None:
    """assert_succeeded on a failed run shows the error and the operations."""

    @durable_execution
    def broken(event: Any, context: DurableContext) -> None:
        context.step(lambda _: 1, name="fine")
        raise ValueError("no such sku")

    run = durable.run(broken)

    run.assert_failed("ValueError", match="sku")
    with pytest.raises(AssertionError) as info:
        run.assert_succeeded()
    message = str(info.value)
    assert "is FAILED; expected SUCCEEDED" in message
    assert "ValueError: no such sku" in message
    assert "STEP/Step 'fine'" in message


def test_run_rejects_a_plain_function(durable: DurableHarness) -> None:
    """run() takes a durable handler or a registered name, nothing else."""
    with pytest.raises(ValueError, match="durable handler"):
        durable.run(lambda event, context: None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no function named 'nope'"):
        durable.run("nope")


# -- callbacks -----------------------------------------------------------------------


def test_responder_answers_after_engine_time(durable: DurableHarness) -> None:
    """A declared responder answers the named callback ten minutes (of
    engine time) after it started."""
    durable.respond_to_callback(
        "approval", result={"ok": True}, after=Duration.from_minutes(10)
    )

    run = durable.run(approval_flow)

    assert run.result == {"ok": True}
    callback = run.callback("approval")
    assert callback.type is OperationType.CALLBACK
    assert callback.status is OperationStatus.SUCCEEDED
    assert callback.duration == 10 * MINUTE


def test_responder_fails_a_callback(durable: DurableHarness) -> None:
    """fail= answers with a failure the handler sees as CallbackError."""

    @durable_execution
    def flow(event: Any, context: DurableContext) -> str:
        try:
            return str(context.create_callback(name="payment").result())
        except CallbackError as error:
            return f"{error.error_type}: {error.error_message}"

    durable.respond_to_callback("payment", fail=KeyError("card"), after=30)

    run = durable.run(flow)

    assert run.result == "KeyError: 'card'"
    assert run.callback("payment").status is OperationStatus.FAILED


def test_heartbeats_keep_a_callback_alive(durable: DurableHarness) -> None:
    """Heartbeats every minute hold off a two-minute heartbeat timeout
    until the answer at ten minutes; without them it times out."""

    @durable_execution
    def flow(event: Any, context: DurableContext) -> str:
        config = CallbackConfig(heartbeat_timeout=Duration.from_minutes(2))
        callback = context.create_callback(name="slow", config=config)
        try:
            return str(callback.result())
        except CallbackTimeoutError as error:
            return str(error.error_type)

    durable.respond_to_callback(
        "slow",
        result="done",
        after=Duration.from_minutes(10),
        heartbeat_every=Duration.from_minutes(1),
        times=1,
    )
    durable.respond_to_callback("slow", result="done", after=Duration.from_minutes(10))

    kept = durable.run(flow, name="with-heartbeats")
    lapsed = durable.run(flow, name="without")

    assert kept.result == "done"
    assert kept.callback("slow").duration == 10 * MINUTE
    assert lapsed.result == "Callback.Heartbeat"
    assert lapsed.callback("slow").duration == 2 * MINUTE


def test_callback_answered_by_hand_then_resumed(durable: DurableHarness) -> None:
    """A run waiting for a callback is RUNNING; answering it and resuming
    finishes it, and both are replay-checked."""
    run = durable.run(approval_flow)
    assert run.status is ExecutionStatus.RUNNING

    durable.send_callback_success(run.callback("approval"), "yes")
    run = durable.resume(run)

    assert run.result == "yes"


def test_register_function_serves_chained_invokes(durable: DurableHarness) -> None:
    """Registered plain and durable functions answer context.invoke."""

    @durable_execution
    def doubler(event: Any, context: DurableContext) -> int:
        context.wait(5)
        return int(context.step(lambda _: event["n"] * 2, name="double"))

    @durable_execution
    def caller(event: Any, context: DurableContext) -> list[Any]:
        return [
            context.invoke("billing", {"amount": 5}, name="bill"),
            context.invoke("doubler", {"n": 21}, name="double"),
        ]

    durable.register_function(
        "billing", lambda event, context: {"billed": event["amount"]}
    )
    durable.register_function("doubler", doubler)

    run = durable.run(caller)

    assert run.result == [{"billed": 5}, 42]
    assert run.invoke("double").result == 42


# -- replay checking -----------------------------------------------------------------


def test_replay_runs_no_step_body(durable: DurableHarness) -> None:
    """The replay after a run, and any later one, runs no step again."""
    calls.clear()
    run = durable.run(checkout, {"sku": "mug", "amount": 1})
    assert calls == {"reserve": 1}

    durable.check_replay(run)

    assert calls == {"reserve": 1}


def test_replay_writes_nothing(durable: DurableHarness) -> None:
    """A replay that starts a new operation is stopped before it reaches
    the engine: the history is as the run left it."""
    durable.replay_check = False
    run = durable.run(checkout, {"sku": "mug", "amount": 1})
    before = durable.engine.history(run.arn)

    DEPLOYED["change"] = "added"
    with pytest.raises(ReplayMismatch) as info:
        durable.check_replay(run)

    assert durable.engine.history(run.arn) == before
    (difference,) = info.value.differences
    assert (difference.kind, difference.operation_id) == ("new", "4")
    assert difference.actual == "starts STEP/Step 'audit'"


def test_replay_catches_a_different_result(durable: DurableHarness) -> None:
    """Same operations, another result: an outcome difference."""
    durable.replay_check = False
    run = durable.run(checkout, {"sku": "mug", "amount": 1})

    DEPLOYED["change"] = "different result"
    with pytest.raises(ReplayMismatch, match="outcome: recorded SUCCEEDED"):
        durable.check_replay(run)


def test_replay_looks_inside_child_contexts(durable: DurableHarness) -> None:
    """A step renamed inside a finished child context is caught."""

    @durable_execution
    def flow(event: Any, context: DurableContext) -> int:
        name = "cents-v2" if DEPLOYED["change"] else "cents"
        return int(
            context.run_in_child_context(
                lambda child: child.step(lambda _: 1, name=name), name="billing"
            )
        )

    durable.replay_check = False
    run = durable.run(flow)
    DEPLOYED["change"] = "renamed"

    with pytest.raises(ReplayMismatch) as info:
        durable.check_replay(run)

    assert [(d.kind, d.operation_id) for d in info.value.differences] == [
        ("changed", "1-1")
    ]


def test_replay_of_a_waiting_run_catches_a_new_operation(
    durable: DurableHarness,
) -> None:
    """A run waiting for a callback replays to PENDING; an operation added
    before the callback is caught."""

    @durable_execution
    def flow(event: Any, context: DurableContext) -> Any:
        context.step(lambda _: 1, name="first")
        if DEPLOYED["change"]:
            context.wait(10, name="inserted")
        return context.create_callback(name="answer").result()

    run = durable.run(flow)
    assert run.status is ExecutionStatus.RUNNING

    DEPLOYED["change"] = "added"
    with pytest.raises(ReplayMismatch, match="recorded CALLBACK/Callback 'answer'"):
        durable.check_replay(run)


def test_replay_check_passes_for_parallel_and_map(durable: DurableHarness) -> None:
    """Batches, retries and waits inside branches replay cleanly."""

    def slow_branch(ctx: DurableContext) -> str:
        ctx.wait(30)
        return str(ctx.step(lambda _: "b", name="b"))

    @durable_execution
    def flow(event: Any, context: DurableContext) -> Any:
        branches = context.parallel(
            [lambda ctx: ctx.step(lambda _: "a", name="a"), slow_branch],
            name="fan-out",
        )
        squares = context.map(
            [1, 2, 3],
            lambda ctx, item, index, items: ctx.step(
                lambda _: item * item, name=f"square-{index}"
            ),
            name="squares",
        )
        return [branches.get_results(), squares.get_results()]

    run = durable.run(flow)

    assert run.result == [["a", "b"], [1, 4, 9]]
    assert len(run.context("fan-out").children) == 2


def test_every_prefix_of_a_history_replays(durable: DurableHarness) -> None:
    """A history cut after any event (an execution in flight, exported
    mid-invocation) replays without a difference: the replay stops where
    the history ends. Batches, retries, polls and callbacks included."""

    def item(ctx: DurableContext, n: int, index: int, items: Any) -> int:
        ctx.wait(n)
        return int(ctx.step(lambda _: n * 10, name=f"times-ten-{index}"))

    def branch(seconds: int, value: str) -> Any:
        def run(ctx: DurableContext) -> str:
            ctx.wait(seconds)
            return str(ctx.step(lambda _: value, name=value))

        return run

    @durable_execution
    def flow(event: Any, context: DurableContext) -> Any:
        flaky = context.step(
            _attempt_three,
            name="flaky",
            config=StepConfig(retry_strategy=_FLAKY_RETRY),
        )
        context.map([1, 2, 3], item, name="items", config=MapConfig(max_concurrency=2))
        race = context.parallel(
            [branch(1, "fast"), branch(100, "slow")],
            name="race",
            config=ParallelConfig(completion=CompletionConfig.first_successful()),
        )
        polled = context.wait_for_condition(
            lambda state, step: state + 1,
            WaitForConditionConfig(
                WaitStrategy.fixed(5, until=lambda state: state >= 3),
                initial_state=0,
            ),
            name="poll",
        )
        answer = context.wait_for_callback(lambda callback_id, step: None, name="ok")
        return [flaky, race.get_results(), polled, answer]

    durable.respond_to_callback("ok", result="yes", after=30)
    run = durable.run(flow)
    run.assert_succeeded()
    events = list(run.history)

    for end in range(1, len(events) + 1):
        replay_history(flow, {"Events": events[:end]})


# -- stored histories ----------------------------------------------------------------

_FLOW_FILE = """
from durable_exec import Duration, durable_execution

RENAMED = False

@durable_execution
def handler(event, context):
    first = context.step(lambda _: 1, name="first")
    context.wait(Duration.from_hours(1), name="nap")
    second = context.step(lambda _: 2, name="second-v2" if RENAMED else "second")
    return first + second
"""


@pytest.fixture
def cli_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[DurableHandler[Any, Any], Path]]:
    """A handler file run by ``durable-exec run``, and the file its
    ``durable-exec history --json`` was saved to."""
    flow = tmp_path / "flow.py"
    flow.write_text(_FLOW_FILE)
    store = str(tmp_path / "store.sqlite3")
    ref = f"{flow}:handler"
    monkeypatch.chdir(tmp_path)

    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        assert (
            cli_main(["run", ref, "--store", store, "--skip-time", "--name", "one"])
            == 0
        )
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli_main(["history", "one", "--store", store, "--json"]) == 0
    history = tmp_path / "one.json"
    history.write_text(printed.getvalue())

    # The CLI loaded the file as a module; use the same handler object.
    handler = load_handler(ref)
    yield handler, history
    sys.modules.pop(handler.__module__, None)


def test_replay_history_accepts_cli_export(
    cli_history: tuple[DurableHandler[Any, Any], Path],
) -> None:
    """A history printed by ``durable-exec history --json`` replays with
    the handler that made it."""
    handler, history = cli_history

    replay_history(handler, history)
    replay_history(handler, history.read_text())
    replay_history(handler, json.loads(history.read_text()))


def test_replay_history_catches_a_changed_handler(
    cli_history: tuple[DurableHandler[Any, Any], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A step renamed since the history was exported fails the replay with
    an operation-level diff."""
    handler, history = cli_history
    monkeypatch.setattr(sys.modules[handler.__module__], "RENAMED", True)

    with pytest.raises(ReplayMismatch) as info:
        replay_history(handler, history)

    message = str(info.value)
    assert (
        "operation 3: changed: recorded STEP/Step 'second'; "
        "replay asks for STEP/Step 'second-v2'"
    ) in message
    assert "WAIT/Wait 'nap' SUCCEEDED" in message


def test_replay_history_accepts_service_shape(durable: DurableHarness) -> None:
    """A GetDurableExecutionHistory response (timestamps as datetimes,
    newest first with ReverseOrder) replays too."""
    run = durable.run(flaky_flow)
    response = {"Events": list(reversed(run.history)), "NextMarker": None}

    durable.replay_history(flaky_flow, response)


def test_history_rebuilds_the_operations(durable: DurableHarness) -> None:
    """The operations rebuilt from a history are the engine's own: ids,
    types, sub-types, names, parents, statuses, results, errors and step
    attempts."""

    @durable_execution
    def flow(event: Any, context: DurableContext) -> Any:
        attempts = context.step(
            _attempt_three,
            name="flaky",
            config=StepConfig(retry_strategy=_FLAKY_RETRY),
        )
        context.wait(Duration.from_minutes(3), name="nap")
        answer = context.wait_for_callback(lambda callback_id, step: None, name="ok")
        try:
            context.invoke("missing", {}, name="nowhere")
        except InvokeError:
            pass
        return [attempts, answer]

    durable.respond_to_callback("ok", result="yes", after=60)
    run = durable.run(flow)

    def shape(operation: Operation) -> tuple[Any, ...]:
        attempt = operation.step_details.attempt if operation.step_details else None
        error = operation.error.error_type if operation.error else None
        return (
            operation.id,
            operation.type,
            operation.sub_type,
            operation.name,
            operation.parent_id,
            operation.status,
            attempt,
            operation.result,
            error,
            operation.start_timestamp,
            operation.end_timestamp,
        )

    rebuilt = recorded_from_history({"Events": list(run.history)})
    assert [shape(op) for op in rebuilt.operations] == [
        shape(op) for op in run.execution.operations
    ]
    assert (rebuilt.status, rebuilt.result_payload) == (
        ExecutionStatus.SUCCEEDED,
        '[3,"yes"]',
    )


def test_replay_history_refuses_truncated_payloads(durable: DurableHarness) -> None:
    """A payload cut short in the history cannot be replayed faithfully."""
    run = durable.run(flaky_flow)
    events = [dict(event) for event in run.history]
    for event in events:
        if event["EventType"] == "StepSucceeded":
            event["StepSucceededDetails"] = {
                "Result": {"Payload": "3", "Truncated": True}
            }

    with pytest.raises(HistoryError, match="truncated"):
        replay_history(flaky_flow, {"Events": events})


def test_unknown_execution_cannot_resume(durable: DurableHarness) -> None:
    """resume() names what it could not find."""
    with pytest.raises(ExecutionNotFoundError):
        durable.resume("nothing-by-this-name")


# -- the plugin, as a user's project sees it --------------------------------------------

_USER_HANDLERS = """
import pytest
from durable_exec import Duration, durable_execution

# Flipped by the handler as the run ends: the next replay sees the code
# "as deployed after the change".
DEPLOYED = {"v2": False}


def ops(v1, v2):
    def handler(event, context):
        names = v2 if DEPLOYED["v2"] else v1
        for name in names:
            if name.startswith("wait:"):
                context.wait(Duration.from_minutes(5), name=name[5:])
            else:
                context.step(lambda _: name, name=name)
        DEPLOYED["v2"] = True
        return "done"
    return durable_execution(handler)


@pytest.fixture(autouse=True)
def v1():
    DEPLOYED["v2"] = False


renamed = ops(["reserve", "charge", "email"], ["reserve", "charge-card", "email"])
removed = ops(["reserve", "charge", "email"], ["reserve", "email"])
reordered = ops(["reserve", "charge", "wait:cool-off"], ["reserve", "wait:cool-off", "charge"])
"""


def _user_project(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyfile(test_flow=_USER_HANDLERS + textwrap.dedent(body))


def test_entry_point_lists_the_fixture(pytester: pytest.Pytester) -> None:
    """In a fresh process, a project that only imports durable_exec gets
    the fixture through the pytest11 entry point."""
    pytester.makepyfile(test_nothing="import durable_exec\n\ndef test_x(): pass\n")

    result = pytester.runpytest_subprocess("--fixtures")

    result.stdout.fnmatch_lines(
        ["*durable*pytest_plugin.py*", "*Run durable handlers on an isolated*"]
    )


def test_a_test_using_the_fixture_passes(pytester: pytest.Pytester) -> None:
    """A user's test runs a handler whose code does not change, and passes
    with the replay check on."""
    pytester.makepyfile(
        test_steady="""
        from durable_exec import Duration, durable_execution

        @durable_execution
        def handler(event, context):
            context.wait(Duration.from_days(3), name="three days")
            return context.step(lambda _: event["n"] + 1, name="add")

        def test_add(durable):
            run = durable.run(handler, {"n": 1})
            run.assert_succeeded()
            assert run.result == 2
            assert run.wait("three days").duration.days == 3
        """
    )

    result = pytester.runpytest()

    result.assert_outcomes(passed=1)


def test_replay_check_fails_a_changed_handler(pytester: pytest.Pytester) -> None:
    """An operation renamed, removed or moved between the run and its
    replay fails the test with ReplayMismatch and an operation diff."""
    _user_project(
        pytester,
        """
        def test_renamed(durable):
            durable.run(renamed)

        def test_removed(durable):
            durable.run(removed)

        def test_reordered(durable):
            durable.run(reordered)
        """,
    )

    result = pytester.runpytest()

    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "*_ test_renamed _*",
            "*ReplayMismatch: replay of execution * does not match its history:",
            (
                "*- operation 2: changed: recorded STEP/Step 'charge'; "
                "replay asks for STEP/Step 'charge-card'"
            ),
            "*id*recorded*replay*",
            "*1 *STEP/Step 'reserve' SUCCEEDED*same",
            (
                "*2 *STEP/Step 'charge' SUCCEEDED*asks for STEP/Step 'charge-card'"
                "*<- changed"
            ),
            "*3 *STEP/Step 'email' SUCCEEDED",
            "*_ test_removed _*",
            (
                "*- operation 2: changed: recorded STEP/Step 'charge'; "
                "replay asks for STEP/Step 'email'"
            ),
            "*2 *STEP/Step 'charge' SUCCEEDED*asks for STEP/Step 'email'*<- changed",
            "*_ test_reordered _*",
            (
                "*- operation 2: changed: recorded STEP/Step 'charge'; "
                "replay asks for WAIT/Wait 'cool-off'"
            ),
            (
                "*2 *STEP/Step 'charge' SUCCEEDED*asks for WAIT/Wait 'cool-off'"
                "*<- changed"
            ),
            "*3 *WAIT/Wait 'cool-off' SUCCEEDED",
        ]
    )


def test_marker_turns_the_replay_check_off(pytester: pytest.Pytester) -> None:
    """@pytest.mark.durable_no_replay_check lets the same test pass."""
    _user_project(
        pytester,
        """
        @pytest.mark.durable_no_replay_check
        def test_flow(durable):
            assert durable.run(renamed).result == "done"

        def test_checked(durable):
            durable.run(renamed)
        """,
    )

    result = pytester.runpytest("--strict-markers")

    result.assert_outcomes(passed=1, failed=1)


def test_ini_option_turns_the_replay_check_off(pytester: pytest.Pytester) -> None:
    """durable_replay_check = false turns it off for a whole project."""
    pytester.makeini("[pytest]\ndurable_replay_check = false\n")
    _user_project(
        pytester,
        """
        def test_flow(durable):
            assert durable.run(removed).result == "done"
        """,
    )

    result = pytester.runpytest()

    result.assert_outcomes(passed=1)
