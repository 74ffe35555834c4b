"""Tests of DurableContext: ids and names, replay, non-determinism, step
semantics after a crash, child contexts, and the replay-aware logger."""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

import pytest

from durable_exec import (
    ChildConfig,
    ChildContextError,
    DurableContext,
    JitterStrategy,
    RetryPresets,
    RetryStrategy,
    StepConfig,
    StepError,
    StepInterruptedError,
    StepSemantics,
    durable_execution,
)
from durable_exec.handler import DurableHandler
from durable_exec.local import LocalEngine
from durable_exec.local._engine import InvocationOutcome
from durable_exec.wire import (
    ErrorObject,
    ExecutionStatus,
    OperationAction,
    OperationStatus,
    OperationSubType,
    OperationType,
    OperationUpdate,
)

_NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())


# -- ids and names ---------------------------------------------------------------


def test_ids_follow_program_structure(local: LocalEngine) -> None:
    """Operations are numbered per context; a child's ids extend its own."""

    def grandchild(ctx: DurableContext) -> int:
        return ctx.step(lambda _: 3, name="deepest")

    def child(ctx: DurableContext) -> int:
        first = ctx.step(lambda _: 1, name="inner")
        return first + ctx.run_in_child_context(grandchild)

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> int:
        ctx.step(lambda _: 0, name="one")
        ctx.wait(1, name="two")
        total = ctx.run_in_child_context(child)
        ctx.step(lambda _: 0, name="four")
        return total

    result = local.run(workflow)

    assert result.result == 4
    shape = [(op.id, op.parent_id, op.name) for op in result.operations[1:]]
    assert sorted(shape) == sorted(
        [
            ("1", None, "one"),
            ("2", None, "two"),
            ("3", None, "child"),
            ("3-1", "3", "inner"),
            ("3-2", "3", "grandchild"),
            ("3-2-1", "3-2", "deepest"),
            ("4", None, "four"),
        ]
    )


def test_the_same_handler_gets_the_same_ids_every_time(
    local: LocalEngine,
) -> None:
    """Two executions of one handler record identical ids and names."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        ctx.step(lambda _: 1)
        ctx.run_in_child_context(lambda c: c.step(lambda _: 2, name="x"))
        ctx.wait(2)

    first = local.run(workflow)
    second = local.run(workflow)

    def shape(result: Any) -> list[Any]:
        return [(op.id, op.type, op.name) for op in result.operations[1:]]

    assert shape(first) == shape(second)


def _named_step(step: Any) -> str:
    return "named"


class _CallableStep:
    def __call__(self, step: Any) -> str:
        return "instance"


def _make_cafe() -> Any:
    def café(step: Any) -> str:
        return "accent"

    return café


@pytest.mark.parametrize(
    ("func", "explicit", "recorded"),
    [
        (_named_step, None, "_named_step"),
        (_named_step, "override", "override"),
        (lambda step: 1, None, None),
        (lambda step: 1, "given", "given"),
        (functools.partial(_named_step), None, None),
        (_CallableStep(), None, None),
        (_make_cafe(), None, "caf\\xe9"),
    ],
    ids=[
        "function",
        "explicit",
        "lambda",
        "lambda-named",
        "partial",
        "instance",
        "non-ascii",
    ],
)
def test_default_step_names(
    local: LocalEngine, func: Any, explicit: str | None, recorded: str | None
) -> None:
    """A step is named after its function; lambdas and objects are unnamed."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        ctx.step(func, name=explicit)

    result = local.run(workflow)

    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    assert result.operations[1].name == recorded


def test_a_long_function_name_is_cut_to_256_characters(
    local: LocalEngine,
) -> None:
    """A default name longer than the service allows is truncated."""

    def long(step: Any) -> int:
        return 1

    long.__name__ = "n" * 300

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        ctx.step(long)

    result = local.run(workflow)

    assert result.operations[1].name == "n" * 256


def test_child_context_default_name_is_the_function_name(
    local: LocalEngine,
) -> None:
    """A child context is named after its function; a lambda is unnamed."""

    def gather(ctx: DurableContext) -> int:
        return 1

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        ctx.run_in_child_context(gather)
        ctx.run_in_child_context(lambda c: 2)

    result = local.run(workflow)

    assert [op.name for op in result.operations[1:]] == ["gather", None]


# -- replay ----------------------------------------------------------------------


def test_replay_skips_completed_steps(local: LocalEngine) -> None:
    """Steps done before a wait do not run again when the handler replays."""
    calls: dict[str, int] = {"a": 0, "b": 0}

    def count(key: str) -> Any:
        def step(_: Any) -> str:
            calls[key] += 1
            return key

        return step

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> str:
        a = ctx.step(count("a"), name="a")
        ctx.wait(10)
        b = ctx.step(count("b"), name="b")
        ctx.wait(10)
        return a + b

    result = local.run(workflow)

    assert result.result == "ab"
    assert result.invocations == 3
    assert calls == {"a": 1, "b": 1}


def test_a_failed_step_replays_its_error_without_running(
    local: LocalEngine,
) -> None:
    """A FAILED step raises its recorded StepError on replay, unrun."""
    runs: list[int] = []
    errors: list[StepError] = []

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> str:
        def broken(step: Any) -> None:
            runs.append(step.attempt)
            raise ValueError("no such order")

        try:
            ctx.step(broken, config=_NO_RETRY)
        except StepError as error:
            errors.append(error)
        ctx.wait(1)
        return "handled"

    result = local.run(workflow)

    assert result.result == "handled"
    assert runs == [1]
    assert len(errors) == 2
    for error in errors:
        assert error.error_type == "ValueError"
        assert error.error_message == "no such order"
    assert errors[1].stack_trace == errors[0].stack_trace
    assert errors[1].stack_trace is not None


# -- non-determinism -------------------------------------------------------------


def _original(event: Any, ctx: DurableContext) -> str:
    ctx.step(lambda _: 1, name="a")
    ctx.wait(5)
    ctx.step(lambda _: 2, name="b")
    return "original"


def _renamed(event: Any, ctx: DurableContext) -> str:
    ctx.step(lambda _: 1, name="renamed")
    ctx.wait(5)
    return "changed"


def _unnamed(event: Any, ctx: DurableContext) -> str:
    ctx.step(lambda _: 1)
    ctx.wait(5)
    return "changed"


def _reordered(event: Any, ctx: DurableContext) -> str:
    ctx.wait(5)
    ctx.step(lambda _: 1, name="a")
    return "changed"


def _retyped(event: Any, ctx: DurableContext) -> str:
    ctx.run_in_child_context(lambda c: 1, name="a")
    ctx.wait(5)
    return "changed"


def _second_changed(event: Any, ctx: DurableContext) -> str:
    ctx.step(lambda _: 1, name="a")
    ctx.step(lambda _: 1, name="inserted")
    return "changed"


def _swallowing(event: Any, ctx: DurableContext) -> str:
    # Swallowing every Exception is what this handler is for.
    try:
        ctx.step(lambda _: 1, name="renamed")
    except Exception:  # noqa: BLE001, S110
        pass
    try:
        ctx.wait(5)
    except Exception:  # noqa: BLE001, S110
        pass
    return "swallowed"


@pytest.mark.parametrize(
    ("changed", "recorded", "asked"),
    [
        (_renamed, "STEP/Step 'a'", "STEP/Step 'renamed'"),
        (_unnamed, "STEP/Step 'a'", "STEP/Step (unnamed)"),
        (_reordered, "STEP/Step 'a'", "WAIT/Wait (unnamed)"),
        (_retyped, "STEP/Step 'a'", "CONTEXT/RunInChildContext 'a'"),
        (_second_changed, "WAIT/Wait (unnamed)", "STEP/Step 'inserted'"),
        (_swallowing, "STEP/Step 'a'", "STEP/Step 'renamed'"),
    ],
    ids=["renamed", "unnamed", "reordered", "retyped", "second", "swallowed"],
)
def test_a_changed_handler_fails_the_execution(
    local: LocalEngine,
    invoke_once: Any,
    changed: Any,
    recorded: str,
    asked: str,
) -> None:
    """A renamed, reordered or retyped operation fails the execution."""
    original = durable_execution(_original)
    local.register("orders", original)
    arn = local.start("orders")
    assert invoke_once(arn, original) == {"Status": "PENDING"}

    local.register("orders", durable_execution(changed))
    result = local.resume(arn)

    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None
    assert result.error.error_type == "NonDeterministicExecutionError"
    message = result.error.error_message or ""
    assert f"recorded {recorded}" in message
    assert f"asks for {asked}" in message
    # Nothing of the changed handler was checkpointed.
    assert [op.id for op in result.operations[1:]] == ["1", "2"]


def test_the_unchanged_handler_resumes(local: LocalEngine, invoke_once: Any) -> None:
    """The same handler, resumed after a manual first invocation, finishes."""
    original = durable_execution(_original)
    local.register("orders", original)
    arn = local.start("orders")
    invoke_once(arn, original)

    assert local.resume(arn).result == "original"


# -- steps found STARTED after a crash -------------------------------------------


def _crash_inside_step(local: LocalEngine, arn: str, name: str) -> None:
    """Leave step 1 STARTED, as an invocation that died mid-step would."""
    engine = local.engine
    envelope = engine.begin_invocation(arn)
    engine.checkpoint(
        arn,
        envelope["CheckpointToken"],
        [
            OperationUpdate(
                id="1",
                type=OperationType.STEP,
                action=OperationAction.START,
                name=name,
                sub_type=OperationSubType.STEP,
            )
        ],
    )
    engine.end_invocation(
        arn,
        InvocationOutcome(
            error=ErrorObject(error_type="Runtime.ExitError", error_message="killed")
        ),
    )
    assert engine.record(arn).operations["1"].status is OperationStatus.STARTED


def test_an_at_least_once_step_found_started_runs_again(
    local: LocalEngine, of_type: Any
) -> None:
    """An at-least-once step found STARTED runs again, started once."""
    runs: list[int] = []

    def charge(step: Any) -> str:
        runs.append(step.attempt)
        return "charged"

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> str:
        return ctx.step(charge)

    local.register("pay", workflow)
    arn = local.start("pay")
    _crash_inside_step(local, arn, "charge")

    result = local.resume(arn)

    assert result.result == "charged"
    assert runs == [1]
    assert len(of_type(result.history, "StepStarted")) == 1
    [succeeded] = of_type(result.history, "StepSucceeded")
    assert succeeded["StepSucceededDetails"]["RetryDetails"] == {"CurrentAttempt": 1}


def test_an_at_most_once_step_found_started_fails_interrupted(
    local: LocalEngine, of_type: Any
) -> None:
    """An at-most-once step found STARTED fails as StepInterruptedError."""
    runs: list[int] = []
    config = StepConfig(
        semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
        retry_strategy=RetryPresets.none(),
    )

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> str:
        def charge(step: Any) -> str:
            runs.append(step.attempt)
            return "charged"

        try:
            return ctx.step(charge, config=config)
        except StepError as error:
            return f"{error.error_type}: {error.error_message}"

    local.register("pay", workflow)
    arn = local.start("pay")
    _crash_inside_step(local, arn, "charge")

    result = local.resume(arn)

    assert runs == []
    assert result.result.startswith("StepInterruptedError: ")
    assert "charge" in result.result
    [failed] = of_type(result.history, "StepFailed")
    details = failed["StepFailedDetails"]
    assert details["Error"]["Payload"]["ErrorType"] == "StepInterruptedError"
    assert details["RetryDetails"] == {"CurrentAttempt": 1}


def test_an_interrupted_at_most_once_step_goes_through_its_retries(
    local: LocalEngine, of_type: Any
) -> None:
    """An interrupted attempt is retried by the step's strategy."""
    runs: list[int] = []
    config = StepConfig(
        semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
        retry_strategy=RetryStrategy.exponential(
            initial_delay=4,
            jitter=JitterStrategy.NONE,
            retryable_error_types=[StepInterruptedError],
        ),
    )

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> str:
        def charge(step: Any) -> str:
            runs.append(step.attempt)
            return "charged"

        return ctx.step(charge, config=config)

    local.register("pay", workflow)
    arn = local.start("pay")
    _crash_inside_step(local, arn, "charge")

    result = local.resume(arn)

    assert result.result == "charged"
    assert runs == [2]
    kinds = [
        e["EventType"] for e in result.history if e["EventType"].startswith("Step")
    ]
    assert kinds == ["StepStarted", "StepFailed", "StepStarted", "StepSucceeded"]
    [failed] = of_type(result.history, "StepFailed")
    assert failed["StepFailedDetails"]["RetryDetails"] == {
        "CurrentAttempt": 1,
        "NextAttemptDelaySeconds": 4,
    }
    [succeeded] = of_type(result.history, "StepSucceeded")
    assert succeeded["StepSucceededDetails"]["RetryDetails"]["CurrentAttempt"] == 2


def test_an_at_most_once_step_checkpoints_its_start_before_running(
    local: LocalEngine,
) -> None:
    """When an at-most-once step's code runs, its START is already stored."""
    statuses: list[Any] = []
    config = StepConfig(semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY)

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        def look(step: Any) -> None:
            record = local.engine.record(ctx.durable_execution_arn)
            statuses.append(record.operations[step.operation_id].status)

        ctx.step(look, config=config)

    local.run(workflow)

    assert statuses == [OperationStatus.STARTED]


# -- child contexts --------------------------------------------------------------


def _build_big(calls: list[str]) -> Any:
    def build(ctx: DurableContext) -> str:
        def part(letter: str) -> Any:
            def make(step: Any) -> str:
                calls.append(letter)
                return letter * 150_000

            return make

        return ctx.step(part("a"), name="a") + ctx.step(part("b"), name="b")

    return build


@pytest.mark.parametrize(
    ("summary", "checkpointed"),
    [
        (None, '{"summary":"result over 256 KiB, rebuilt on replay"}'),
        (lambda r: json.dumps({"length": len(r)}), '{"length": 300000}'),
    ],
    ids=["default-summary", "custom-summary"],
)
def test_a_large_child_result_is_rebuilt_on_replay(
    local: LocalEngine, of_type: Any, summary: Any, checkpointed: str
) -> None:
    """A child result over 256 KiB is rebuilt on replay from its children."""
    calls: list[str] = []
    per_invocation: list[str] = []

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> int:
        big = ctx.run_in_child_context(
            _build_big(calls), config=ChildConfig(summary=summary)
        )
        per_invocation.append(big)
        ctx.wait(1)
        return len(big)

    result = local.run(workflow)

    assert result.result == 300_000
    assert calls == ["a", "b"]
    assert len(per_invocation) == 2
    assert per_invocation[0] == per_invocation[1] == "a" * 150_000 + "b" * 150_000
    context = result.operation("build")
    assert context.context_details is not None
    assert context.context_details.replay_children is True
    assert context.context_details.result == checkpointed
    [succeeded] = of_type(result.history, "ContextSucceeded")
    assert succeeded["ContextSucceededDetails"]["Result"]["Payload"] == checkpointed
    assert len(of_type(result.history, "StepStarted")) == 2


def test_a_child_error_carries_the_recorded_type_and_message(
    local: LocalEngine,
) -> None:
    """A failed child raises ChildContextError with the original error."""
    errors: list[ChildContextError] = []
    runs: list[int] = []

    def child(ctx: DurableContext) -> None:
        runs.append(1)
        raise KeyError("missing")

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> str:
        try:
            ctx.run_in_child_context(child)
        except ChildContextError as error:
            errors.append(error)
        ctx.wait(1)
        return "handled"

    result = local.run(workflow)

    assert result.result == "handled"
    assert runs == [1]
    assert [(e.error_type, e.error_message) for e in errors] == [
        ("KeyError", "'missing'"),
        ("KeyError", "'missing'"),
    ]
    assert result.operation("child").status is OperationStatus.FAILED


def test_a_failed_step_fails_its_child_with_the_step_error(
    local: LocalEngine,
) -> None:
    """An uncaught step error fails its child with the step's error."""

    def child(ctx: DurableContext) -> None:
        def invalid(step: Any) -> None:
            raise ValueError("bad sku")

        ctx.step(invalid, config=_NO_RETRY)

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        ctx.run_in_child_context(child)

    result = local.run(workflow)

    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None
    assert (result.error.error_type, result.error.error_message) == (
        "ValueError",
        "bad sku",
    )
    assert result.operation("child").status is OperationStatus.FAILED


def test_nested_child_contexts(local: LocalEngine, of_type: Any) -> None:
    """Child contexts nest, each under its parent, and replay whole."""
    runs: list[str] = []

    def leaf(ctx: DurableContext) -> int:
        runs.append("leaf")
        return ctx.step(lambda _: 5, name="five")

    def middle(ctx: DurableContext) -> int:
        runs.append("middle")
        return ctx.run_in_child_context(leaf) * 2

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> int:
        value = ctx.run_in_child_context(middle)
        ctx.wait(1)
        return value + 1

    result = local.run(workflow)

    assert result.result == 11
    assert runs == ["middle", "leaf"]
    parents = {op.id: op.parent_id for op in result.operations[1:]}
    assert parents == {"1": None, "1-1": "1", "1-1-1": "1-1", "2": None}
    started = of_type(result.history, "ContextStarted")
    assert [(e["Id"], e.get("ParentId")) for e in started] == [
        ("1", None),
        ("1-1", "1"),
    ]


def test_a_wait_inside_a_child_suspends_and_resumes_it(
    local: LocalEngine,
) -> None:
    """A child suspended on a wait continues where it was on replay."""
    runs: list[str] = []

    def child(ctx: DurableContext) -> str:
        first = ctx.step(lambda _: runs.append("first") or "x", name="first")
        ctx.wait(3)
        return first + ctx.step(lambda _: runs.append("second") or "y")

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> str:
        return ctx.run_in_child_context(child)

    result = local.run(workflow)

    assert result.result == "xy"
    assert runs == ["first", "second"]
    assert result.invocations == 2


# -- logging ---------------------------------------------------------------------


def _logging_workflow(**options: Any) -> DurableHandler[Any, Any]:
    @durable_execution(**options)
    def workflow(event: Any, ctx: DurableContext) -> None:
        ctx.logger.info("before the step")
        ctx.step(lambda _: 1, name="one")
        ctx.logger.info("after the step")
        ctx.wait(1)
        ctx.logger.info("after the wait")

    return workflow


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "durable_exec.workflow"
    ]


def test_the_context_logger_is_silent_during_replay(
    local: LocalEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """The context logger logs each line once over all invocations."""
    caplog.set_level(logging.INFO, logger="durable_exec.workflow")

    result = local.run(_logging_workflow())

    assert result.invocations == 2
    assert _messages(caplog) == [
        "before the step",
        "after the step",
        "after the wait",
    ]


def test_log_during_replay_logs_every_time(
    local: LocalEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """With log_during_replay=True replayed lines are logged again."""
    caplog.set_level(logging.INFO, logger="durable_exec.workflow")

    local.run(_logging_workflow(log_during_replay=True))

    assert _messages(caplog) == [
        "before the step",
        "after the step",
        "before the step",
        "after the step",
        "after the wait",
    ]


def test_the_step_logger_carries_execution_operation_and_attempt(
    local: LocalEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """A step's log records name the execution, step and attempt."""
    caplog.set_level(logging.INFO, logger="durable_exec.workflow")
    config = StepConfig(
        retry_strategy=RetryStrategy.exponential(
            max_attempts=2, jitter=JitterStrategy.NONE
        )
    )

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        ctx.step(lambda _: None, name="first")

        def work(step: Any) -> None:
            step.logger.info("attempt %d", step.attempt)
            if step.attempt == 1:
                raise RuntimeError("again")

        ctx.step(work, config=config)

    result = local.run(workflow)

    records = [r for r in caplog.records if r.name == "durable_exec.workflow"]
    assert [r.getMessage() for r in records] == ["attempt 1", "attempt 2"]
    for attempt, record in enumerate(records, start=1):
        assert record.durableExecutionArn == result.arn  # type: ignore[attr-defined]
        assert record.operationId == "2"  # type: ignore[attr-defined]
        assert record.operationName == "work"  # type: ignore[attr-defined]
        assert record.attempt == attempt  # type: ignore[attr-defined]


def test_the_context_logger_carries_the_execution(
    local: LocalEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """Context log records name the execution and the child context."""
    caplog.set_level(logging.INFO, logger="durable_exec.workflow")

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        ctx.logger.info("root")
        ctx.run_in_child_context(lambda c: c.logger.info("child"), name="kid")

    result = local.run(workflow)

    root, child = [r for r in caplog.records if r.name == "durable_exec.workflow"]
    assert root.durableExecutionArn == result.arn  # type: ignore[attr-defined]
    assert not hasattr(root, "operationId")
    assert child.operationId == "1"  # type: ignore[attr-defined]
