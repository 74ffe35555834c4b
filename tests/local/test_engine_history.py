"""Tests of the history the engine records (SERVICE.md §4) and of how it
handles invocations: crashes, idle PENDING replies, invalid output, the
execution timeout, and the state it gives the handler."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from engine_helpers import Live, seconds, wait

from durable_exec import (
    ChildConfig,
    DurableContext,
    JitterStrategy,
    RetryStrategy,
    StepConfig,
    SuspendExecution,
    durable_execution,
)
from durable_exec.handler import DurableHandler
from durable_exec.local import Engine, LocalEngine
from durable_exec.local._engine import InvocationOutcome
from durable_exec.wire import ErrorObject, ExecutionStatus

_TERMINAL = {
    "ExecutionSucceeded",
    "ExecutionFailed",
    "ExecutionTimedOut",
    "ExecutionStopped",
}


def _types(history: Any) -> list[str]:
    return [event["EventType"] for event in history]


def _of(history: Any, event_type: str) -> list[dict[str, Any]]:
    return [event for event in history if event["EventType"] == event_type]


def _check_shape(history: Any, invocations: int) -> None:
    """Rules every history keeps: ids 1..n, ExecutionStarted first, one
    InvocationCompleted per invocation, and a terminal event last, right
    after the last InvocationCompleted."""
    assert [e["EventId"] for e in history] == list(range(1, len(history) + 1))
    assert history[0]["EventType"] == "ExecutionStarted"
    completed = _of(history, "InvocationCompleted")
    assert len(completed) == invocations
    assert len({e["InvocationCompletedDetails"]["RequestId"] for e in completed}) == (
        invocations
    )
    terminal = [e for e in history if e["EventType"] in _TERMINAL]
    if terminal:
        assert terminal == [history[-1]]
        if invocations:
            assert history[-2]["EventType"] == "InvocationCompleted"
    stamps = [e["EventTimestamp"] for e in history]
    assert stamps == sorted(stamps)


# -- event sequences -------------------------------------------------------------


def test_a_step_success_records_its_events_and_details(local: LocalEngine) -> None:
    """A step success records its events with their details."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> int:
        return ctx.step(lambda _: 42, name="work")

    result = local.run(workflow, {"a": 1})
    history = result.history
    execution_id = result.operations[0].id

    assert _types(history) == [
        "ExecutionStarted",
        "StepStarted",
        "StepSucceeded",
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]
    _check_shape(history, 1)
    started, step_started, step_succeeded, completed, succeeded = history
    assert started["Id"] == execution_id
    assert started["ExecutionStartedDetails"]["Input"] == {
        "Payload": '{"a": 1}',
        "Truncated": False,
    }
    assert type(started["ExecutionStartedDetails"]["ExecutionTimeout"]) is int
    for event in (step_started, step_succeeded):
        assert (event["Id"], event["Name"], event["SubType"]) == ("1", "work", "Step")
        assert "ParentId" not in event
    assert step_started["StepStartedDetails"] == {}
    assert step_succeeded["StepSucceededDetails"] == {
        "Result": {"Payload": "42", "Truncated": False},
        "RetryDetails": {"CurrentAttempt": 1},
    }
    assert "Id" not in completed
    details = completed["InvocationCompletedDetails"]
    assert set(details) == {"StartTimestamp", "EndTimestamp", "RequestId"}
    assert details["StartTimestamp"] <= details["EndTimestamp"]
    assert succeeded["Id"] == execution_id
    assert succeeded["ExecutionSucceededDetails"] == {
        "Result": {"Payload": "42", "Truncated": False}
    }


def test_retries_record_attempts_and_delays(local: LocalEngine) -> None:
    """Retries record attempts and delays; the last has no delay."""
    config = StepConfig(
        retry_strategy=RetryStrategy.exponential(
            max_attempts=3, initial_delay=3, jitter=JitterStrategy.NONE
        )
    )

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        def broken(step: Any) -> None:
            raise ValueError(f"attempt {step.attempt}")

        ctx.step(broken, config=config)

    result = local.run(workflow)
    history = result.history

    assert result.status is ExecutionStatus.FAILED
    assert _types(history) == [
        "ExecutionStarted",
        *["StepStarted", "StepFailed", "InvocationCompleted"] * 3,
        "ExecutionFailed",
    ]
    _check_shape(history, 3)
    failed = _of(history, "StepFailed")
    retry_details = [e["StepFailedDetails"]["RetryDetails"] for e in failed]
    assert retry_details == [
        {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 3},
        {"CurrentAttempt": 2, "NextAttemptDelaySeconds": 6},
        {"CurrentAttempt": 3},
    ]
    for attempt, event in enumerate(failed, start=1):
        error = event["StepFailedDetails"]["Error"]
        assert error["Truncated"] is False
        assert error["Payload"]["ErrorType"] == "ValueError"
        assert error["Payload"]["ErrorMessage"] == f"attempt {attempt}"
    # Each next attempt starts no earlier than its delay allows.
    starts = _of(history, "StepStarted")
    for before, after, delay in zip(failed, starts[1:], (3, 6)):
        gap = after["EventTimestamp"] - before["EventTimestamp"]
        assert gap >= dt.timedelta(seconds=delay)
    error = history[-1]["ExecutionFailedDetails"]["Error"]["Payload"]
    assert (error["ErrorType"], error["ErrorMessage"]) == ("ValueError", "attempt 3")


def test_a_wait_records_its_duration_and_end(local: LocalEngine) -> None:
    """A wait records its integer Duration and its scheduled end."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> str:
        ctx.wait(7, name="pause")
        return "ok"

    result = local.run(workflow)
    history = result.history

    assert _types(history) == [
        "ExecutionStarted",
        "WaitStarted",
        "InvocationCompleted",
        "WaitSucceeded",
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]
    _check_shape(history, 2)
    [started] = _of(history, "WaitStarted")
    [succeeded] = _of(history, "WaitSucceeded")
    details = started["WaitStartedDetails"]
    assert details["Duration"] == 7 and type(details["Duration"]) is int
    assert details["ScheduledEndTimestamp"] == started["EventTimestamp"] + dt.timedelta(
        seconds=7
    )
    assert succeeded["WaitSucceededDetails"] == {"Duration": 7}
    assert succeeded["EventTimestamp"] >= details["ScheduledEndTimestamp"]
    assert (started["Id"], started["Name"], started["SubType"]) == (
        "1",
        "pause",
        "Wait",
    )


def test_child_contexts_record_parent_ids(local: LocalEngine) -> None:
    """Events of operations inside a child carry the child's id as ParentId."""

    def inner(ctx: DurableContext) -> int:
        return ctx.step(lambda _: 2, name="leaf")

    def outer(ctx: DurableContext) -> int:
        return ctx.run_in_child_context(inner) + 1

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> int:
        return ctx.run_in_child_context(outer)

    result = local.run(workflow)
    events = [
        (e["EventType"], e.get("Id"), e.get("ParentId"), e.get("SubType"))
        for e in result.history[1:-2]
    ]

    assert events == [
        ("ContextStarted", "1", None, "RunInChildContext"),
        ("ContextStarted", "1-1", "1", "RunInChildContext"),
        ("StepStarted", "1-1-1", "1-1", "Step"),
        ("StepSucceeded", "1-1-1", "1-1", "Step"),
        ("ContextSucceeded", "1-1", "1", "RunInChildContext"),
        ("ContextSucceeded", "1", None, "RunInChildContext"),
    ]
    _check_shape(result.history, 1)
    [outer_done] = [
        e for e in _of(result.history, "ContextSucceeded") if e["Id"] == "1"
    ]
    assert outer_done["ContextSucceededDetails"] == {
        "Result": {"Payload": "3", "Truncated": False}
    }


def test_one_invocation_completed_per_invocation(local: LocalEngine) -> None:
    """Each invocation leaves one InvocationCompleted."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> int:
        for _ in range(3):
            ctx.wait(2)
        return 1

    result = local.run(workflow)

    assert result.invocations == 4
    _check_shape(result.history, 4)


def test_a_failed_execution_ends_with_execution_failed(local: LocalEngine) -> None:
    """A handler error ends the history with ExecutionFailed."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        raise LookupError("no order 7")

    result = local.run(workflow)

    _check_shape(result.history, 1)
    error = result.history[-1]["ExecutionFailedDetails"]["Error"]
    assert error["Payload"]["ErrorType"] == "LookupError"
    assert error["Payload"]["ErrorMessage"] == "no order 7"


# -- crashed invocations ---------------------------------------------------------


class _Crashing(DurableHandler[Any, Any]):
    """A handler whose first ``crashes`` invocations die with an error."""

    def __init__(self, func: Any, crashes: int) -> None:
        super().__init__(func)
        self.crashes = crashes

    def invoke(
        self, event: Any, lambda_context: Any = None, *, client: Any = None
    ) -> Any:
        if self.crashes > 0:
            self.crashes -= 1
            raise RuntimeError("the sandbox died")
        return super().invoke(event, lambda_context, client=client)


def _steady(event: Any, ctx: DurableContext) -> str:
    return ctx.step(lambda _: "fine", name="work")


def test_a_crashed_invocation_is_retried_after_five_seconds(
    local: LocalEngine,
) -> None:
    """A crashed invocation is recorded and retried 5 s later."""
    result = local.run(_Crashing(_steady, crashes=2))

    assert result.result == "fine"
    assert result.invocations == 3
    _check_shape(result.history, 3)
    completed = _of(result.history, "InvocationCompleted")
    for event in completed[:2]:
        error = event["InvocationCompletedDetails"]["Error"]
        assert error["Payload"]["ErrorType"] == "RuntimeError"
        assert error["Payload"]["ErrorMessage"] == "the sandbox died"
    assert "Error" not in completed[2]["InvocationCompletedDetails"]
    for before, after in itertools.pairwise(completed):
        gap = (
            after["InvocationCompletedDetails"]["StartTimestamp"]
            - before["InvocationCompletedDetails"]["EndTimestamp"]
        )
        assert gap >= dt.timedelta(seconds=5)


def test_five_crashed_invocations_in_a_row_fail_the_execution(
    local: LocalEngine,
) -> None:
    """Five crashed invocations in a row fail the execution."""
    result = local.run(_Crashing(_steady, crashes=100))

    assert result.status is ExecutionStatus.FAILED
    assert result.invocations == 5
    assert result.error == ErrorObject(
        error_type="RuntimeError", error_message="the sandbox died"
    )
    _check_shape(result.history, 5)
    assert result.history[-1]["ExecutionFailedDetails"]["Error"]["Payload"] == {
        "ErrorType": "RuntimeError",
        "ErrorMessage": "the sandbox died",
    }


def test_a_good_invocation_resets_the_crash_count(live: Live) -> None:
    """A PENDING reply between crashes starts the crash count again."""
    engine = live.engine
    crash = InvocationOutcome(
        error=ErrorObject(error_type="Runtime.ExitError", error_message="died")
    )

    def crash_invocations(count: int) -> None:
        for _ in range(count):
            engine.begin_invocation(live.arn)
            engine.end_invocation(live.arn, crash)

    engine.end_invocation(live.arn, crash)
    crash_invocations(3)
    live.token = engine.begin_invocation(live.arn)["CheckpointToken"]
    live.checkpoint(wait("1", "START", wait_options=seconds(60)))
    engine.end_invocation(live.arn, InvocationOutcome(output={"Status": "PENDING"}))
    crash_invocations(4)

    assert engine.record(live.arn).status is ExecutionStatus.RUNNING
    crash_invocations(1)
    assert engine.record(live.arn).status is ExecutionStatus.FAILED


def test_pending_with_nothing_pending_fails_after_three_tries(
    local: LocalEngine,
) -> None:
    """PENDING with nothing pending fails the execution on the third."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        raise SuspendExecution("waiting for nothing")

    result = local.run(workflow)

    assert result.status is ExecutionStatus.FAILED
    assert result.invocations == 3
    assert result.error is not None
    assert result.error.error_type == "InvalidParameterValueException"
    _check_shape(result.history, 3)


@pytest.mark.parametrize(
    "output",
    [
        {"Status": "DONE"},
        {},
        "SUCCEEDED",
        None,
        {"Status": "FAILED", "Result": "1"},
        {"Status": "SUCCEEDED", "Error": {"ErrorType": "X"}},
        {"Status": "SUCCEEDED", "Result": 5},
        {"Status": "FAILED", "Error": "broken"},
    ],
    ids=[
        "unknown-status",
        "no-status",
        "not-an-object",
        "none",
        "failed-with-result",
        "succeeded-with-error",
        "result-not-str",
        "error-not-object",
    ],
)
def test_invalid_handler_output_fails_the_execution(live: Live, output: Any) -> None:
    """Unreadable handler output fails the execution."""
    live.engine.end_invocation(live.arn, InvocationOutcome(output=output))

    record = live.engine.record(live.arn)
    assert record.status is ExecutionStatus.FAILED
    assert record.error is not None
    assert record.error.error_type == "InvalidParameterValueException"
    _check_shape(record.events, 1)


def test_output_after_the_execution_ended_is_ignored(live: Live) -> None:
    """Output after a checkpoint ended the execution is ignored."""
    from engine_helpers import execution

    live.checkpoint(execution("x", "SUCCEED", payload='"kept"'))
    live.engine.end_invocation(
        live.arn,
        InvocationOutcome(output={"Status": "FAILED", "Error": {"ErrorType": "X"}}),
    )

    record = live.engine.record(live.arn)
    assert record.status is ExecutionStatus.SUCCEEDED
    assert record.result == '"kept"'
    assert _types(record.events) == [
        "ExecutionStarted",
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]


# -- the execution timeout -------------------------------------------------------


def test_the_execution_timeout_fires_on_the_skipping_clock(
    local: LocalEngine,
) -> None:
    """The execution timeout ends a waiting execution as TIMED_OUT."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> str:
        ctx.wait(60)
        return "too late"

    local.register("slow", workflow, execution_timeout=10)
    result = local.run("slow")

    assert result.status is ExecutionStatus.TIMED_OUT
    history = result.history
    assert _types(history) == [
        "ExecutionStarted",
        "WaitStarted",
        "InvocationCompleted",
        "ExecutionTimedOut",
    ]
    _check_shape(history, 1)
    assert history[0]["ExecutionStartedDetails"]["ExecutionTimeout"] == 10
    elapsed = history[-1]["EventTimestamp"] - history[0]["EventTimestamp"]
    # At the timeout, not at the end of the 60 s wait.
    assert dt.timedelta(seconds=10) <= elapsed < dt.timedelta(seconds=30)
    error = history[-1]["ExecutionTimedOutDetails"]["Error"]["Payload"]
    assert error["ErrorType"] == "Execution.Timeout"


def test_a_timeout_during_an_invocation_ends_the_history_last(
    local: LocalEngine,
) -> None:
    """A timeout passing mid-invocation stops it; ExecutionTimedOut is last."""
    after: list[str] = []

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> str:
        ctx.step(lambda _: local.clock.advance(20), name="slow")
        after.append("went on")
        ctx.step(lambda _: after.append("second step"), name="never")
        return "too late"

    local.register("slow", workflow, execution_timeout=10)
    result = local.run("slow")

    assert result.status is ExecutionStatus.TIMED_OUT
    # The step's own checkpoint met the timeout: the reply had no token.
    assert after == []
    assert _types(result.history) == [
        "ExecutionStarted",
        "StepStarted",
        "StepSucceeded",
        "InvocationCompleted",
        "ExecutionTimedOut",
    ]
    _check_shape(result.history, 1)


def test_the_timeout_also_ends_a_retrying_step(local: LocalEngine) -> None:
    """A retry delay that outlasts the execution timeout ends it."""
    config = StepConfig(
        retry_strategy=RetryStrategy.exponential(
            initial_delay=30, jitter=JitterStrategy.NONE
        )
    )

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        def broken(step: Any) -> None:
            raise RuntimeError("down")

        ctx.step(broken, config=config)

    local.register("slow", workflow, execution_timeout=20)
    result = local.run("slow")

    assert result.status is ExecutionStatus.TIMED_OUT
    assert result.invocations == 1
    _check_shape(result.history, 1)


# -- the state given to the handler ------------------------------------------------


class _Recording(DurableHandler[Any, Any]):
    """A handler that keeps the operation ids of every envelope it gets."""

    def __init__(self, func: Any) -> None:
        super().__init__(func)
        self.seen: list[list[str]] = []

    def invoke(
        self, event: Any, lambda_context: Any = None, *, client: Any = None
    ) -> Any:
        operations = event["InitialExecutionState"]["Operations"]
        self.seen.append([op["Id"] for op in operations[1:]])
        return super().invoke(event, lambda_context, client=client)


def _with_child(config: ChildConfig | None, size: int) -> Any:
    def child(ctx: DurableContext) -> str:
        return ctx.step(lambda _: "x" * size, name="a") + ctx.step(
            lambda _: "y" * size, name="b"
        )

    def workflow(event: Any, ctx: DurableContext) -> int:
        value = ctx.run_in_child_context(child, config=config)
        ctx.wait(1)
        return len(value)

    return workflow


def test_children_of_a_completed_context_are_left_out(local: LocalEngine) -> None:
    """A completed context's children are not given to the handler."""
    handler = _Recording(_with_child(None, 1))

    result = local.run(handler)

    assert result.result == 2
    assert handler.seen == [[], ["1", "2"]]
    record = local.engine.record(result.arn)
    assert {op.id for op in record.operations.values()} >= {"1-1", "1-2"}


def test_children_are_given_when_the_context_replays_them(
    local: LocalEngine,
) -> None:
    """With ReplayChildren, a completed context's children are given too."""
    handler = _Recording(_with_child(None, 150_000))

    result = local.run(handler)

    assert result.result == 300_000
    assert handler.seen == [[], ["1", "1-1", "1-2", "2"]]


def test_children_of_a_running_context_are_given(local: LocalEngine) -> None:
    """A context still running shows its children."""

    def child(ctx: DurableContext) -> int:
        ctx.step(lambda _: 1, name="first")
        ctx.wait(1)
        return 2

    @durable_execution
    def plain(event: Any, ctx: DurableContext) -> int:
        return ctx.run_in_child_context(child)

    handler = _Recording(plain.func)
    result = local.run(handler)

    assert result.result == 2
    assert handler.seen == [[], ["1", "1-1", "1-2"]]


def test_state_reads_leave_out_the_same_children(engine: Engine) -> None:
    """GetDurableExecutionState hides the same children as the envelope."""
    from engine_helpers import context, step

    arn = engine.create_execution("fn", "{}")
    live = Live(engine, arn, engine.begin_invocation(arn)["CheckpointToken"])
    live.checkpoint(
        context("1", "START"),
        step("1-1", "SUCCEED", parent_id="1", payload="1"),
        context("1-2", "START", parent_id="1"),
        step("1-2-1", "SUCCEED", parent_id="1-2", payload="1"),
        context("1-2", "SUCCEED", parent_id="1", payload="1"),
        context("1", "SUCCEED", payload="2"),
        step("2", "SUCCEED", payload="3"),
    )

    page = engine.get_execution_state(arn, live.token)

    assert [op.id for op in page.operations[1:]] == ["1", "2"]
