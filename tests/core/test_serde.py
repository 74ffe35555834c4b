"""Tests of payload serialization through operations: the default JSON
round trip, typed results, custom serdes, and what a payload that cannot
be checkpointed does to the step and the execution."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import io
import json
import math
import threading
import uuid
from typing import Any

import attrs
import pytest

from durable_exec import (
    ChildConfig,
    ChildContextError,
    DurableContext,
    JsonSerDes,
    RetryPresets,
    SerDesContext,
    StepConfig,
    StepError,
    durable_execution,
)
from durable_exec.local import LocalEngine
from durable_exec.wire import ExecutionStatus, OperationStatus

_NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())
_WHEN = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)


@attrs.frozen
class Point:
    x: int
    y: int
    seen: dt.datetime


@dataclasses.dataclass
class Item:
    name: str
    price: decimal.Decimal
    tags: tuple[str, ...]


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


def _run_step(local: LocalEngine, func: Any, config: StepConfig | None = None) -> Any:
    """Run ``func`` as a step of a workflow; return what the step returned."""
    seen: list[Any] = []

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        seen.append(ctx.step(func, config=config))

    result = local.run(workflow)
    assert result.status is ExecutionStatus.SUCCEEDED, result.error
    return seen[0]


# -- the default JSON serdes -----------------------------------------------------


def _point(step: Any) -> Point:
    return Point(1, 2, _WHEN)


def _item(step: Any) -> Item:
    return Item("pen", decimal.Decimal("1.10"), ("a", "b"))


def _datetime(step: Any) -> dt.datetime:
    return _WHEN


def _date(step: Any) -> dt.date:
    return dt.date(2024, 2, 29)


def _decimal(step: Any) -> decimal.Decimal:
    return decimal.Decimal("3.14159265358979323846")


def _uuid(step: Any) -> uuid.UUID:
    return uuid.UUID("12345678-1234-5678-1234-567812345678")


def _colour(step: Any) -> Colour:
    return Colour.BLUE


def _tuple(step: Any) -> tuple[int, ...]:
    return (3, 1, 2)


def _set(step: Any) -> set[int]:
    return {1, 2, 3}


def _nested(step: Any) -> dict[str, list[Point]]:
    return {"points": [Point(0, 0, _WHEN), Point(5, 6, _WHEN)]}


@pytest.mark.parametrize(
    ("func", "expected"),
    [
        (_point, Point(1, 2, _WHEN)),
        (_item, Item("pen", decimal.Decimal("1.10"), ("a", "b"))),
        (_datetime, _WHEN),
        (_date, dt.date(2024, 2, 29)),
        (_decimal, decimal.Decimal("3.14159265358979323846")),
        (_uuid, uuid.UUID("12345678-1234-5678-1234-567812345678")),
        (_colour, Colour.BLUE),
        (_tuple, (3, 1, 2)),
        (_set, {1, 2, 3}),
        (_nested, {"points": [Point(0, 0, _WHEN), Point(5, 6, _WHEN)]}),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_an_annotated_step_returns_its_typed_value(
    local: LocalEngine, func: Any, expected: Any
) -> None:
    """With a return annotation the step's value comes back as that type."""
    value = _run_step(local, func)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        (Point(1, 2, _WHEN), {"x": 1, "y": 2, "seen": _WHEN.isoformat()}),
        (
            Item("pen", decimal.Decimal("1.10"), ("a",)),
            {"name": "pen", "price": "1.10", "tags": ["a"]},
        ),
        (_WHEN, "2024-05-06T07:08:09.123456+00:00"),
        (dt.date(2024, 2, 29), "2024-02-29"),
        (decimal.Decimal("2.50"), "2.50"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (Colour.RED, "red"),
        ((1, 2), [1, 2]),
        ({7}, [7]),
        (frozenset({8}), [8]),
        ({1: "one"}, {"1": "one"}),
        (None, None),
    ],
    ids=repr,
)
def test_an_unannotated_step_returns_plain_json_data(
    local: LocalEngine, value: Any, plain: Any
) -> None:
    """Without a return annotation the step gives back plain JSON data."""
    assert _run_step(local, lambda _: value) == plain


def test_result_type_in_the_config_overrides_the_annotation(
    local: LocalEngine,
) -> None:
    """StepConfig(result_type=...) structures the result into that type."""
    value = _run_step(
        local,
        lambda _: {"x": 4, "y": 5, "seen": _WHEN.isoformat()},
        StepConfig(result_type=Point),
    )
    assert value == Point(4, 5, _WHEN)


def test_the_first_run_returns_exactly_what_replay_returns(
    local: LocalEngine,
) -> None:
    """A step's first-run value equals its replayed value and type."""
    per_invocation: list[tuple[Any, Any]] = []
    runs: list[str] = []

    def mixed(step: Any) -> Any:
        runs.append("mixed")
        return {
            "tuple": (1, 2),
            "int_keys": {1: "a"},
            "when": _WHEN,
            "amount": decimal.Decimal("9.99"),
        }

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> Any:
        plain = ctx.step(mixed)
        typed = ctx.step(_point)
        per_invocation.append((plain, typed))
        ctx.wait(1)
        return plain

    result = local.run(workflow)

    assert result.invocations == 2
    assert runs == ["mixed"]
    first_run, replayed = per_invocation
    assert first_run == replayed
    assert first_run[0] == {
        "tuple": [1, 2],
        "int_keys": {"1": "a"},
        "when": _WHEN.isoformat(),
        "amount": "9.99",
    }
    assert type(first_run[1]) is Point
    assert type(replayed[1]) is Point
    assert result.result == first_run[0]


def test_the_value_seen_before_and_after_replay_is_the_same(
    local: LocalEngine,
) -> None:
    """Across invocations the same step yields equal values of equal types."""
    per_invocation: list[Any] = []

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        value = ctx.step(lambda _: {"when": _WHEN, "pair": (1, 2), 3: {4}})
        typed = ctx.step(_item)
        per_invocation.append((value, typed))
        ctx.wait(1)
        ctx.wait(1)

    result = local.run(workflow)

    assert result.invocations == 3
    assert len(per_invocation) == 3
    first = per_invocation[0]
    assert first[0] == {"when": _WHEN.isoformat(), "pair": [1, 2], "3": [4]}
    for later in per_invocation[1:]:
        assert later == first
        assert type(later[1]) is Item


# -- custom serdes ---------------------------------------------------------------


class _Versioned:
    """Prefixes payloads with a version and records the contexts it saw."""

    def __init__(self) -> None:
        self.contexts: list[tuple[str, SerDesContext]] = []

    def serialize(self, value: Any, context: SerDesContext) -> str:
        self.contexts.append(("serialize", context))
        return "v1:" + json.dumps(value)

    def deserialize(self, payload: str, context: SerDesContext) -> Any:
        self.contexts.append(("deserialize", context))
        assert payload.startswith("v1:")
        return {"restored": json.loads(payload[3:])}


def test_a_custom_serdes_per_step_writes_and_reads_the_checkpoint(
    local: LocalEngine, of_type: Any
) -> None:
    """A step's own serdes writes the checkpoint text and reads it back."""
    serdes = _Versioned()
    seen: list[Any] = []

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> Any:
        value = ctx.step(
            lambda _: [1, 2], name="custom", config=StepConfig(serdes=serdes)
        )
        plain = ctx.step(lambda _: [1, 2], name="plain")
        seen.append(value)
        ctx.wait(1)
        return [value, plain]

    result = local.run(workflow)

    assert result.result == [{"restored": [1, 2]}, [1, 2]]
    assert seen == [{"restored": [1, 2]}, {"restored": [1, 2]}]
    succeeded = of_type(result.history, "StepSucceeded")
    payloads = [e["StepSucceededDetails"]["Result"]["Payload"] for e in succeeded]
    assert payloads == ["v1:[1, 2]", "[1,2]"]
    assert result.operation("custom").step_details.result == "v1:[1, 2]"
    assert [kind for kind, _ in serdes.contexts] == [
        "serialize",
        "deserialize",
        "deserialize",
    ]
    for _, context in serdes.contexts:
        assert context == SerDesContext("1", result.arn, "custom")


def test_a_custom_serdes_per_child_context(local: LocalEngine, of_type: Any) -> None:
    """A child's own serdes writes its result; replay reads it back."""
    serdes = _Versioned()
    runs: list[int] = []

    def child(ctx: DurableContext) -> list[int]:
        runs.append(1)
        return [ctx.step(lambda _: 7, name="inner")]

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> Any:
        value = ctx.run_in_child_context(child, config=ChildConfig(serdes=serdes))
        ctx.wait(1)
        return value

    result = local.run(workflow)

    assert result.result == {"restored": [7]}
    assert runs == [1]
    [succeeded] = of_type(result.history, "ContextSucceeded")
    assert succeeded["ContextSucceededDetails"]["Result"]["Payload"] == "v1:[7]"
    assert serdes.contexts[0][1] == SerDesContext("1", result.arn, "child")


def test_the_handler_serdes_makes_the_execution_result(
    local: LocalEngine,
) -> None:
    """durable_execution(serdes=...) serializes the execution's result."""

    @durable_execution(serdes=_Versioned())
    def workflow(event: Any, ctx: DurableContext) -> Any:
        return {"ok": True}

    result = local.run(workflow)

    assert result.result_payload == 'v1:{"ok": true}'


# -- what cannot be checkpointed -------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        object,
        threading.Lock,
        io.BytesIO,
        lambda: math.nan,
        lambda: {(1, 2): "tuple key"},
        lambda: (n for n in range(3)),
    ],
    ids=["object", "lock", "file-like", "nan", "tuple-key", "generator"],
)
def test_an_unserializable_result_fails_the_step_naming_it(
    local: LocalEngine, make: Any
) -> None:
    """An unserializable result fails only that step, naming it."""
    errors: list[StepError] = []
    runs: list[int] = []

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> int:
        first = ctx.step(lambda _: 41, name="fine")

        def broken(step: Any) -> Any:
            runs.append(1)
            return make()

        try:
            ctx.step(broken, name="broken", config=_NO_RETRY)
        except StepError as error:
            errors.append(error)
        ctx.wait(1)
        return first + 1

    result = local.run(workflow)

    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == 42
    assert runs == [1]
    assert len(errors) == 2
    first_run, replayed = errors
    assert "'broken'" in str(first_run)
    assert "id 2" in str(first_run)
    assert first_run.error_type == "SerDesError"
    assert (replayed.error_type, replayed.error_message) == (
        first_run.error_type,
        first_run.error_message,
    )
    assert result.operation("fine").status is OperationStatus.SUCCEEDED
    assert result.operation("fine").step_details.result == "41"
    assert result.operation("broken").status is OperationStatus.FAILED


def test_an_uncaught_serialization_failure_fails_the_execution(
    local: LocalEngine,
) -> None:
    """Left uncaught, the step's SerDesError fails the execution with it."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        ctx.step(lambda _: 1, name="kept")
        ctx.step(lambda _: object(), name="bad")

    result = local.run(workflow)

    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None
    assert result.error.error_type == "SerDesError"
    assert "'bad'" in (result.error.error_message or "")
    assert result.operation("kept").status is OperationStatus.SUCCEEDED


def test_a_result_over_256_kib_fails_the_step_naming_its_size(
    local: LocalEngine,
) -> None:
    """A step result over 256 KiB fails the step, naming its size."""
    errors: list[StepError] = []

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> str:
        ctx.step(lambda _: "small", name="small")
        try:
            ctx.step(lambda _: "x" * (256 * 1024), name="big", config=_NO_RETRY)
        except StepError as error:
            errors.append(error)
        return "survived"

    result = local.run(workflow)

    assert result.result == "survived"
    [error] = errors
    # The JSON string adds its two quotes.
    assert "262,146 bytes" in str(error)
    assert "262,144" in str(error)
    assert "big" in str(error)
    assert result.operation("big").status is OperationStatus.FAILED
    assert result.operation("small").status is OperationStatus.SUCCEEDED


def test_a_result_of_exactly_256_kib_is_checkpointed(local: LocalEngine) -> None:
    """A payload of exactly 256 KiB is within the limit."""
    text = "y" * (256 * 1024 - 2)
    assert _run_step(local, lambda _: text) == text


class _BytesSerDes:
    def serialize(self, value: Any, context: SerDesContext) -> Any:
        return json.dumps(value).encode()

    def deserialize(self, payload: str, context: SerDesContext) -> Any:
        return json.loads(payload)


def test_a_serdes_returning_bytes_is_a_clear_step_error(
    local: LocalEngine,
) -> None:
    """A serdes returning non-str fails the step saying it must be str."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        ctx.step(
            lambda _: 1,
            name="bytes",
            config=StepConfig(
                serdes=_BytesSerDes(), retry_strategy=RetryPresets.none()
            ),
        )

    result = local.run(workflow)

    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None
    message = result.error.error_message or ""
    assert "returned bytes" in message
    assert "must return str" in message
    assert "'bytes'" in message


def test_an_unserializable_child_result_fails_the_child(
    local: LocalEngine,
) -> None:
    """An unserializable child result fails the child as SerDesError."""
    errors: list[ChildContextError] = []

    def child(ctx: DurableContext) -> Any:
        ctx.step(lambda _: 1, name="inside")
        return object()

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        try:
            ctx.run_in_child_context(child)
        except ChildContextError as error:
            errors.append(error)

    result = local.run(workflow)

    assert result.status is ExecutionStatus.SUCCEEDED
    [error] = errors
    assert error.error_type == "SerDesError"
    assert "'child'" in (error.error_message or "")
    assert result.operation("child").status is OperationStatus.FAILED
    assert result.operation("inside").status is OperationStatus.SUCCEEDED


def test_json_serdes_is_compact_and_keeps_unicode() -> None:
    """The default JSON has no spaces and writes non-ASCII as is."""
    context = SerDesContext("1", "arn")
    assert JsonSerDes().serialize({"k": ["é", 1]}, context) == '{"k":["é",1]}'
