"""Tests of what the outside world can and cannot do to an execution:
late, forged and repeated callback answers, heartbeats, failing invoke
targets, and polls that run out of attempts; each at the top of a
handler and inside a parallel branch (SERVICE.md §6-7)."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pytest

from durable_exec import (
    CallbackConfig,
    CallbackTimeoutError,
    DurableContext,
    Duration,
    InvokeError,
    WaitForConditionConfig,
    WaitForConditionError,
    WaitStrategy,
    durable_execution,
)
from durable_exec.local import (
    CallbackTimeoutException,
    LocalEngine,
    ResourceNotFoundException,
    ServiceError,
)
from durable_exec.wire import ExecutionStatus

T = TypeVar("T")
Body = Callable[[DurableContext], Any]

# Every scenario runs at the top of the handler and inside a branch.
PLACES = ("top", "branch")


@pytest.fixture(params=PLACES)
def place(request: pytest.FixtureRequest) -> str:
    """Where the operation under test runs: the handler or a branch."""
    param: str = request.param
    return param


def run_in(place: str, context: DurableContext, body: Body) -> Any:
    """``body(context)`` at the top, or as the one branch of a parallel.

    A failed branch fails the handler with the batch's error.
    """
    if place == "top":
        return body(context)
    batch = context.parallel([body])
    batch.throw_if_error()
    return batch.get_results()[0]


def _of(history: Any, event_type: str) -> list[dict[str, Any]]:
    return [event for event in history if event["EventType"] == event_type]


def _snapshot(local: LocalEngine, arn: str) -> Any:
    """Everything the engine shows of an execution, copied."""
    result = local.describe(arn)
    return copy.deepcopy(
        (result.history, result.operations, result.status, result.invocations)
    )


def _callback_ids(history: Any) -> list[str]:
    return [
        event["CallbackStartedDetails"]["CallbackId"]
        for event in _of(history, "CallbackStarted")
    ]


class Answers:
    """Answers to callbacks, sent from scheduled actions; keeps what the
    engine refused and the state around each refusal."""

    def __init__(self, local: LocalEngine) -> None:
        self.local = local
        self.refusals: list[ServiceError] = []
        self.unchanged: list[bool] = []

    def send(self, kind: str, callback_id: str, arn: str | None = None) -> None:
        before = _snapshot(self.local, arn) if arn else None
        try:
            if kind == "success":
                self.local.send_callback_success(callback_id, '"late"')
            elif kind == "failure":
                self.local.send_callback_failure(
                    callback_id,
                    {"ErrorType": "LateError", "ErrorMessage": "too late"},
                )
            else:
                self.local.send_callback_heartbeat(callback_id)
        except ServiceError as error:
            self.refusals.append(error)
            if arn:
                self.unchanged.append(_snapshot(self.local, arn) == before)


# -- late, forged and repeated answers ----------------------------------------


@pytest.mark.parametrize("kind", ["success", "failure", "heartbeat"])
def test_answer_after_the_timeout_is_refused_and_changes_nothing(
    local: LocalEngine, place: str, kind: str
) -> None:
    """A callback that timed out refuses every answer, and the refusal
    leaves history and operations as they were."""

    def body(ctx: DurableContext) -> str:
        callback = ctx.create_callback(
            "late", CallbackConfig(timeout=Duration.from_seconds(5))
        )
        # The execution still runs when the answer comes at 10 s.
        ctx.wait(Duration.from_seconds(60))
        try:
            callback.result()
        except CallbackTimeoutError as error:
            return f"timed out: {error.error_type}"
        return "answered"

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> Any:
        return run_in(place, ctx, body)

    answers = Answers(local)
    arn = local.start(workflow)
    local.on_callback(
        "late",
        lambda callback_id: answers.send(kind, callback_id, arn),
        delay_seconds=10,
    )
    result = local.drive(arn)

    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == "timed out: Callback.Timeout"
    assert [type(error) for error in answers.refusals] == [CallbackTimeoutException]
    assert answers.unchanged == [True]
    assert len(_of(result.history, "CallbackTimedOut")) == 1
    assert not _of(result.history, "CallbackSucceeded")
    assert not _of(result.history, "CallbackFailed")


def test_forged_callback_ids_are_unknown(local: LocalEngine) -> None:
    """Ids the engine did not mint name no callback, even one built from
    the execution's ARN and the callback's operation id."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> Any:
        return ctx.create_callback("approval").result()

    waiting = local.run(workflow)
    assert waiting.status is ExecutionStatus.RUNNING
    operation = waiting.operation("approval")
    made_up = {"arn": waiting.arn, "operationId": operation.id}
    forgeries = [
        "Zm9yZ2Vk",
        operation.id,
        base64.b64encode(json.dumps(made_up).encode()).decode(),
        waiting.arn,
    ]
    before = _snapshot(local, waiting.arn)

    for forged in forgeries:
        with pytest.raises(ResourceNotFoundException):
            local.send_callback_success(forged, "1")
        with pytest.raises(ResourceNotFoundException):
            local.send_callback_failure(forged, {"ErrorType": "X"})
        with pytest.raises(ResourceNotFoundException):
            local.send_callback_heartbeat(forged)

    assert _snapshot(local, waiting.arn) == before


def test_an_answered_callback_refuses_a_second_answer(
    local: LocalEngine, place: str
) -> None:
    """Once answered, a callback is closed: a reused id is refused and
    changes nothing, though the execution still runs."""

    def body(ctx: DurableContext) -> Any:
        answer = ctx.create_callback("once").result()
        ctx.wait(Duration.from_seconds(30))
        return answer

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> Any:
        return run_in(place, ctx, body)

    answers = Answers(local)
    arn = local.start(workflow)

    def answer_twice(callback_id: str) -> None:
        local.send_callback_success(callback_id, '"first"')
        local.schedule(5, lambda: answers.send("success", callback_id, arn))
        local.schedule(6, lambda: answers.send("heartbeat", callback_id, arn))

    local.on_callback("once", answer_twice, delay_seconds=1)
    result = local.drive(arn)

    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == "first"
    assert [type(error) for error in answers.refusals] == [
        CallbackTimeoutException,
        CallbackTimeoutException,
    ]
    assert answers.unchanged == [True, True]
    assert len(_of(result.history, "CallbackSucceeded")) == 1


def test_answering_a_callback_of_an_ended_execution_is_refused(
    local: LocalEngine,
) -> None:
    """A callback still open when its execution ended is closed with it."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> str:
        ctx.create_callback("ignored")
        return "done without it"

    result = local.run(workflow)
    assert result.status is ExecutionStatus.SUCCEEDED
    (callback_id,) = _callback_ids(result.history)
    before = _snapshot(local, result.arn)

    with pytest.raises(CallbackTimeoutException, match="SUCCEEDED"):
        local.send_callback_success(callback_id, "1")
    with pytest.raises(CallbackTimeoutException):
        local.send_callback_heartbeat(callback_id)

    assert _snapshot(local, result.arn) == before


def test_callback_ids_differ_and_do_not_come_from_the_operation(
    local: LocalEngine,
) -> None:
    """Each callback gets an id of its own, in this execution and the
    next, and no id contains the ARN or the operation id."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        for index in range(3):
            ctx.create_callback(f"cb-{index}")

    first = local.run(workflow)
    second = local.run(workflow)
    ids = _callback_ids(first.history) + _callback_ids(second.history)

    # The two executions have the same operation ids, yet no id repeats.
    assert [op.id for op in first.operations[1:]] == [
        op.id for op in second.operations[1:]
    ]
    assert len(ids) == len(set(ids)) == 6
    for result in (first, second):
        execution_id = result.operations[0].id
        for callback_id in ids:
            assert result.arn not in callback_id
            text = base64.b64decode(callback_id + "==")
            assert result.arn.encode() not in text
            assert execution_id.encode() not in text


# -- heartbeats -----------------------------------------------------------------


def test_heartbeats_keep_a_callback_alive(local: LocalEngine, place: str) -> None:
    """Heartbeats every 4 s keep a callback with a 5 s heartbeat timeout
    open for 20 s, four timeouts long, until its answer comes."""

    def body(ctx: DurableContext) -> Any:
        config = CallbackConfig(heartbeat_timeout=Duration.from_seconds(5))
        return ctx.create_callback("slow", config).result()

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> Any:
        return run_in(place, ctx, body)

    def keep_alive(callback_id: str) -> None:
        for second in (4, 8, 12, 16):
            local.schedule(
                second,
                lambda: local.send_callback_heartbeat(callback_id),
            )
        local.schedule(20, lambda: local.send_callback_success(callback_id, '"done"'))

    local.on_callback("slow", keep_alive)
    result = local.run(workflow)

    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == "done"
    assert not _of(result.history, "CallbackTimedOut")
    (started,) = _of(result.history, "CallbackStarted")
    (succeeded,) = _of(result.history, "CallbackSucceeded")
    waited = succeeded["EventTimestamp"] - started["EventTimestamp"]
    assert waited.total_seconds() >= 20


def test_without_heartbeats_the_same_callback_times_out(
    local: LocalEngine,
) -> None:
    """The control case: with no heartbeat, the answer at 20 s is too late
    and the callback times out with Callback.Heartbeat."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> Any:
        config = CallbackConfig(heartbeat_timeout=Duration.from_seconds(5))
        return ctx.create_callback("slow", config).result()

    answers = Answers(local)
    local.on_callback(
        "slow",
        lambda callback_id: answers.send("success", callback_id),
        delay_seconds=20,
    )
    result = local.run(workflow)

    assert result.status is ExecutionStatus.FAILED
    (timed_out,) = _of(result.history, "CallbackTimedOut")
    error = timed_out["CallbackTimedOutDetails"]["Error"]["Payload"]
    assert error["ErrorType"] == "Callback.Heartbeat"
    # The answer never came: the execution had ended before 20 s.
    assert answers.refusals == []


# -- failing invoke targets ---------------------------------------------------


class OrderRejected(Exception):
    """What the targets raise."""


@durable_execution
def durable_rejecter(event: Any, ctx: DurableContext) -> Any:
    ctx.step(lambda _: "looked at it", name="inspect")
    raise OrderRejected(f"order {event['order']} is out of stock")


def plain_rejecter(event: Any, context: Any) -> Any:
    raise OrderRejected(f"order {event['order']} is out of stock")


@pytest.mark.parametrize(
    "target", [durable_rejecter, plain_rejecter], ids=["durable", "plain"]
)
def test_a_failing_target_raises_invoke_error_with_its_error(
    local: LocalEngine, place: str, target: Any
) -> None:
    """The caller's InvokeError carries the target's error type and
    message, whether the target is durable or plain."""

    def body(ctx: DurableContext) -> dict[str, Any]:
        try:
            ctx.invoke("rejecter", {"order": 7})
        except InvokeError as error:
            return {"type": error.error_type, "message": error.error_message}
        return {"type": None, "message": "the invoke succeeded"}

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> Any:
        return run_in(place, ctx, body)

    local.register("rejecter", target)
    result = local.run(workflow)

    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == {
        "type": "OrderRejected",
        "message": "order 7 is out of stock",
    }
    (failed,) = _of(result.history, "ChainedInvokeFailed")
    error = failed["ChainedInvokeFailedDetails"]["Error"]["Payload"]
    assert error["ErrorType"] == "OrderRejected"
    assert error["ErrorMessage"] == "order 7 is out of stock"


@pytest.mark.parametrize(
    "target", [durable_rejecter, plain_rejecter], ids=["durable", "plain"]
)
def test_an_uncaught_invoke_error_fails_the_execution(
    local: LocalEngine, place: str, target: Any
) -> None:
    """Left uncaught, the target's error fails the caller's execution,
    keeping its type and message through the branch."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> Any:
        return run_in(place, ctx, lambda c: c.invoke("rejecter", {"order": 8}))

    local.register("rejecter", target)
    result = local.run(workflow)

    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None
    assert result.error.error_type == "OrderRejected"
    assert result.error.error_message == "order 8 is out of stock"


def test_a_target_past_its_execution_timeout_times_the_invoke_out(
    local: LocalEngine, place: str
) -> None:
    """A durable target runs with the execution timeout it was registered
    with; past it, the caller's invoke times out."""

    @durable_execution
    def sleeper(event: Any, ctx: DurableContext) -> str:
        ctx.wait(Duration.from_seconds(60))
        return "awake"

    def body(ctx: DurableContext) -> Any:
        try:
            return ctx.invoke("sleeper")
        except InvokeError as error:
            return error.error_type

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> Any:
        return run_in(place, ctx, body)

    local.register("sleeper", sleeper, execution_timeout=5)
    result = local.run(workflow)

    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == "ChainedInvoke.Timeout"
    (started,) = _of(result.history, "ChainedInvokeStarted")
    (timed_out,) = _of(result.history, "ChainedInvokeTimedOut")
    took = timed_out["EventTimestamp"] - started["EventTimestamp"]
    assert 5 <= took.total_seconds() < 60
    target = started["ChainedInvokeStartedDetails"]["DurableExecutionArn"]
    assert local.describe(target).status is ExecutionStatus.TIMED_OUT


# -- polls that run out of attempts ---------------------------------------------


def _never_done(max_attempts: int) -> WaitForConditionConfig:
    strategy = WaitStrategy.fixed(
        2, until=lambda state: False, max_attempts=max_attempts
    )
    return WaitForConditionConfig(wait_strategy=strategy, initial_state=0)


def test_a_poll_out_of_attempts_raises_wait_for_condition_error(
    local: LocalEngine, place: str
) -> None:
    """The last allowed check raises WaitForConditionError to the caller,
    after one check per attempt."""

    def body(ctx: DurableContext) -> Any:
        try:
            ctx.wait_for_condition(
                lambda state, step: state + 1, _never_done(4), name="poll"
            )
        except WaitForConditionError as error:
            return error.error_type
        return "the condition held"

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> Any:
        return run_in(place, ctx, body)

    result = local.run(workflow)

    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == "WaitForConditionError"
    polls = [e for e in result.history if e.get("Name") == "poll"]
    assert [e["EventType"] for e in polls] == [
        "StepStarted",
        "StepSucceeded",
    ] * 3 + ["StepStarted", "StepFailed"]


def test_a_poll_out_of_attempts_fails_the_execution(
    local: LocalEngine, place: str
) -> None:
    """Left uncaught, running out of attempts fails the execution."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> Any:
        return run_in(
            place,
            ctx,
            lambda c: c.wait_for_condition(
                lambda state, step: state + 1, _never_done(3), name="poll"
            ),
        )

    result = local.run(workflow)

    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None
    (failed,) = [
        e for e in _of(result.history, "StepFailed") if e.get("Name") == "poll"
    ]
    error = failed["StepFailedDetails"]["Error"]["Payload"]
    assert error["ErrorType"] == "WaitForConditionError"
    assert result.error.error_type == "WaitForConditionError"


# -- watching -------------------------------------------------------------------


def test_watch_shows_every_event_once_in_order(local: LocalEngine) -> None:
    """An observer sees each event of the execution and of its invoke
    targets once, in order, including events from before it was added."""

    @durable_execution
    def target(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(lambda _: event, name="echo")

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> Any:
        ctx.step(lambda _: 1, name="before")
        ctx.wait(Duration.from_seconds(3))
        return ctx.invoke("target", "hi")

    local.register("target", target)
    arn = local.start(workflow)
    seen: list[tuple[str, Mapping[str, Any]]] = []
    local.watch(lambda member, event: seen.append((member, event)))
    result = local.drive(arn)

    assert result.status is ExecutionStatus.SUCCEEDED
    (started,) = _of(result.history, "ChainedInvokeStarted")
    child = started["ChainedInvokeStartedDetails"]["DurableExecutionArn"]
    mine = [event for member, event in seen if member == arn]
    theirs = [event for member, event in seen if member == child]
    assert mine == list(result.history)
    assert theirs == local.history(child)
    assert {member for member, _ in seen} == {arn, child}
