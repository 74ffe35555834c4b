"""Tests of @durable_execution: reading the envelope, the execution input,
results too large for a response, paged state, and a spent token."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from durable_exec import DurableContext, ValidationError, durable_execution
from durable_exec import handler as handler_module
from durable_exec.handler import DurableHandler
from durable_exec.local import LocalEngine
from durable_exec.local._engine import InvocationOutcome
from durable_exec.wire import ExecutionStatus, OperationStatus


@durable_execution
def _echo(event: Any, ctx: DurableContext) -> Any:
    return event


@pytest.fixture
def envelope(local: LocalEngine) -> Iterator[dict[str, Any]]:
    """A valid envelope of a fresh execution of ``_echo``, in flight."""
    local.register("echo", _echo)
    arn = local.start("echo", {"order": 7})
    yield local.engine.begin_invocation(arn)


def _invoke(local: LocalEngine, event: Any) -> dict[str, Any]:
    return _echo.invoke(event, None, client=local.client)


# -- malformed envelopes ---------------------------------------------------------


def _without(key: str) -> Any:
    def change(envelope: dict[str, Any]) -> None:
        del envelope[key]

    return change


def _set(key: str, value: Any) -> Any:
    def change(envelope: dict[str, Any]) -> None:
        envelope[key] = value

    return change


def _set_state(key: str, value: Any) -> Any:
    def change(envelope: dict[str, Any]) -> None:
        envelope["InitialExecutionState"][key] = value

    return change


def _only_steps(envelope: dict[str, Any]) -> None:
    envelope["InitialExecutionState"]["Operations"] = [
        {
            "Id": "1",
            "Type": "STEP",
            "Status": "SUCCEEDED",
            "StartTimestamp": 1_700_000_000_000,
        }
    ]


@pytest.mark.parametrize(
    ("change", "shown"),
    [
        (_without("DurableExecutionArn"), ["'DurableExecutionArn'", "None"]),
        (_set("DurableExecutionArn", ""), ["'DurableExecutionArn'", "''"]),
        (_set("DurableExecutionArn", 42), ["'DurableExecutionArn'", "42"]),
        (_without("CheckpointToken"), ["'CheckpointToken'", "None"]),
        (_set("CheckpointToken", ""), ["'CheckpointToken'", "''"]),
        (_without("InitialExecutionState"), ["'InitialExecutionState'", "None"]),
        (
            _set("InitialExecutionState", "state"),
            ["'InitialExecutionState'", "'state'"],
        ),
        (_set("InitialExecutionState", []), ["'InitialExecutionState'", "[]"]),
        (_set_state("Operations", "ops"), ["Operations", "'ops'"]),
        (_set_state("Operations", {"Id": "1"}), ["Operations", "{'Id': '1'}"]),
        (_set_state("Operations", {}), ["Operations", "{}"]),
        (_set_state("Operations", [5]), ["operation 0", "5"]),
        (_set_state("Operations", [{"Id": "1"}]), ["operation 0", "{'Id': '1'}"]),
        (
            _set_state(
                "Operations",
                [
                    {
                        "Id": "1",
                        "Type": "BOGUS",
                        "Status": "STARTED",
                        "StartTimestamp": 0,
                    }
                ],
            ),
            ["operation 0", "BOGUS"],
        ),
        (_set_state("NextMarker", 5), ["NextMarker", "5"]),
        (_only_steps, ["no EXECUTION operation"]),
    ],
    ids=[
        "arn-missing",
        "arn-empty",
        "arn-not-str",
        "token-missing",
        "token-empty",
        "state-missing",
        "state-str",
        "state-list",
        "operations-str",
        "operations-dict",
        "operations-empty-dict",
        "operation-int",
        "operation-partial",
        "operation-bad-type",
        "marker-int",
        "no-execution",
    ],
)
def test_a_malformed_envelope_is_refused_naming_the_field(
    local: LocalEngine, envelope: dict[str, Any], change: Any, shown: list[str]
) -> None:
    """Each malformed envelope part is refused, naming field and value."""
    event = copy.deepcopy(envelope)
    change(event)

    with pytest.raises(ValidationError) as caught:
        _invoke(local, event)

    for part in shown:
        assert part in str(caught.value)


@pytest.mark.parametrize("event", [None, [], "envelope", 7], ids=repr)
def test_an_event_that_is_not_a_mapping_is_refused(
    local: LocalEngine, event: Any
) -> None:
    """An event that is not a mapping is refused, showing its type."""
    with pytest.raises(ValidationError, match="mapping") as caught:
        _invoke(local, event)
    assert type(event).__name__ in str(caught.value)


def test_a_refused_envelope_checkpoints_nothing(
    local: LocalEngine, envelope: dict[str, Any]
) -> None:
    """A refused envelope runs no user code and stores nothing."""
    arn = envelope["DurableExecutionArn"]
    before = copy.deepcopy(local.engine.record(arn).events)
    event = copy.deepcopy(envelope)
    event["InitialExecutionState"]["Operations"] = "nope"

    with pytest.raises(ValidationError):
        _invoke(local, event)

    assert local.engine.record(arn).events == before


# -- the input -------------------------------------------------------------------


@pytest.mark.parametrize("payload", ["", "   ", "\n\t"], ids=repr)
def test_a_blank_input_payload_is_an_empty_object(
    local: LocalEngine, payload: str
) -> None:
    """A blank InputPayload reaches the function as {}."""
    local.register("echo", _echo)
    arn = local.engine.create_execution("echo", payload)

    assert local.resume(arn).result == {}


def test_a_missing_input_payload_is_an_empty_object(
    local: LocalEngine, envelope: dict[str, Any]
) -> None:
    """An EXECUTION operation without ExecutionDetails gives {} as input."""
    event = copy.deepcopy(envelope)
    for operation in event["InitialExecutionState"]["Operations"]:
        operation.pop("ExecutionDetails", None)

    assert _invoke(local, event) == {"Status": "SUCCEEDED", "Result": "{}"}


def test_the_input_is_json_decoded(local: LocalEngine) -> None:
    """The function receives the JSON-decoded InputPayload."""
    result = local.run(_echo, {"items": [1, 2], "rush": True})

    assert result.result == {"items": [1, 2], "rush": True}


def test_an_input_that_is_not_json_fails_the_execution(
    local: LocalEngine,
) -> None:
    """InputPayload that is not JSON fails the execution as SerDesError."""
    local.register("echo", _echo)
    arn = local.engine.create_execution("echo", "{not json")

    result = local.resume(arn)

    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None
    assert result.error.error_type == "SerDesError"


# -- results too large for a response ----------------------------------------------


@durable_execution
def _large(event: Any, ctx: DurableContext) -> str:
    ctx.step(lambda _: "small", name="small")
    return "x" * 200


def test_a_result_too_large_for_the_response_is_checkpointed(
    local: LocalEngine,
    invoke_once: Any,
    of_type: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A result too large for the response is checkpointed instead."""
    monkeypatch.setattr(handler_module, "MAX_RESULT_BYTES", 100)
    local.register("large", _large)
    arn = local.start("large")

    reply = invoke_once(arn, _large)

    assert reply == {"Status": "SUCCEEDED", "Result": ""}
    result = local.describe(arn)
    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == "x" * 200
    [succeeded] = of_type(result.history, "ExecutionSucceeded")
    assert succeeded["ExecutionSucceededDetails"]["Result"]["Payload"] == (
        '"' + "x" * 200 + '"'
    )
    assert result.operations[0].status is OperationStatus.SUCCEEDED
    assert result.operation("small").status is OperationStatus.SUCCEEDED


def test_a_large_result_still_ends_the_history_with_the_execution_event(
    local: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpointed result's ExecutionSucceeded is the last event."""
    monkeypatch.setattr(handler_module, "MAX_RESULT_BYTES", 100)

    result = local.run(_large)

    assert result.result == "x" * 200
    assert [e["EventType"] for e in result.history[-2:]] == [
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]
    assert [e["EventId"] for e in result.history] == list(
        range(1, len(result.history) + 1)
    )


def test_a_result_at_the_limit_is_returned_inline(
    local: LocalEngine, invoke_once: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A result of exactly the limit goes back in the response."""
    monkeypatch.setattr(handler_module, "MAX_RESULT_BYTES", 202)
    local.register("large", _large)
    arn = local.start("large")

    reply = invoke_once(arn, _large)

    assert reply == {"Status": "SUCCEEDED", "Result": '"' + "x" * 200 + '"'}


# -- paged state -----------------------------------------------------------------


def test_state_over_several_pages_replays_correctly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """State over several pages is all loaded, and replays correctly."""
    runs: list[int] = []
    pages: list[str | None] = []

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> int:
        total = 0
        for n in range(7):
            total += ctx.step(lambda _, n=n: runs.append(n) or n, name=f"s{n}")
        total += ctx.run_in_child_context(
            lambda c: c.step(lambda _: runs.append(99) or 100, name="in")
        )
        ctx.wait(1)
        return total

    with LocalEngine(":memory:", skip_time=True, page_size=2) as local:
        original = local.client.get_execution_state

        def spy(arn: str, token: str, marker: Any = None, max_items: Any = None) -> Any:
            pages.append(marker)
            return original(arn, token, marker, max_items)

        monkeypatch.setattr(local.client, "get_execution_state", spy)
        result = local.run(workflow)

    assert result.result == sum(range(7)) + 100
    assert sorted(runs) == [0, 1, 2, 3, 4, 5, 6, 99]
    assert result.invocations == 2
    # Ten operations (the execution, seven steps, the child, the wait) at
    # two a page: the second invocation reads four more pages.
    assert len(pages) == 4
    assert all(pages)


def test_a_reply_without_paging_reads_no_pages(
    local: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the default page size nothing is read beyond the envelope."""
    calls: list[Any] = []
    monkeypatch.setattr(local.client, "get_execution_state", lambda *a: calls.append(a))

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> int:
        ctx.wait(1)
        return ctx.step(lambda _: 3)

    assert local.run(workflow).result == 3
    assert calls == []


# -- a spent token ---------------------------------------------------------------


@durable_execution
def _one_step(event: Any, ctx: DurableContext) -> str:
    return ctx.step(lambda _: "done", name="work")


def _snapshot(local: LocalEngine, arn: str) -> Any:
    record = local.engine.record(arn)
    return (
        copy.deepcopy(record.events),
        dict(record.operations),
        record.status,
    )


def test_a_spent_token_stops_the_invocation_and_changes_nothing(
    local: LocalEngine,
) -> None:
    """A token spent by another caller stops the invocation, unchanged."""
    local.register("work", _one_step)
    arn = local.start("work")
    envelope = local.engine.begin_invocation(arn)
    local.engine.checkpoint(arn, envelope["CheckpointToken"], [])
    before = _snapshot(local, arn)

    reply = _one_step.invoke(envelope, None, client=local.client)

    assert reply == {"Status": "PENDING"}
    assert _snapshot(local, arn) == before


def test_a_token_of_an_ended_invocation_stops_the_invocation(
    local: LocalEngine,
) -> None:
    """An ended invocation's envelope returns PENDING and writes nothing."""
    local.register("work", _one_step)
    arn = local.start("work")
    stale = local.engine.begin_invocation(arn)
    local.engine.end_invocation(arn, InvocationOutcome(output={"Status": "PENDING"}))
    local.engine.begin_invocation(arn)
    before = _snapshot(local, arn)

    reply = _one_step.invoke(stale, None, client=local.client)

    assert reply == {"Status": "PENDING"}
    assert _snapshot(local, arn) == before


def test_a_handler_takes_its_client_from_the_decorator(
    local: LocalEngine,
) -> None:
    """durable_execution(client=...) is used when invoke gets none."""
    handler: DurableHandler[Any, Any] = durable_execution(client=local.client)(
        _echo.func
    )
    local.register("echo", handler)
    arn = local.start("echo", [1])
    envelope = local.engine.begin_invocation(arn)

    assert handler(envelope) == {"Status": "SUCCEEDED", "Result": "[1]"}
