"""Conformance handlers of the callback suite: callbacks answered (or not)
from outside.

One durable handler per requirement id, declared with ``@requirement``.
The harness plays each file's ``CallbackActions``: it answers a callback
by the name it was created with, so most handlers name theirs after the
input.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

import attrs

from durable_exec import (
    CallbackConfig,
    DurableContext,
    Duration,
    SerDesContext,
    durable_execution,
)
from durable_exec.testing.conformance import requirement

__all__ = [
    "approval_callback",
    "callback_basic",
    "callback_heartbeat_then_success",
    "callback_heartbeat_timeout",
    "callback_outlives_wait",
    "callback_resolves_during_wait",
    "callback_then_step_fails",
    "callback_then_step_times_out",
    "callback_then_wait",
    "callback_timeout",
    "numeric_serdes_callback",
    "rejected_callback",
    "sequential_callbacks",
    "two_callbacks_awaited_in_reverse",
    "typed_serdes_callback",
]


@requirement("4-1")
@durable_execution
def callback_basic(event: str, context: DurableContext) -> Any:
    """A callback named after the input; returns its answer."""
    callback = context.create_callback(event)
    return callback.result()


@requirement("4-2")
@durable_execution
def approval_callback(event: None, context: DurableContext) -> Any:
    """A callback with an explicit name."""
    callback = context.create_callback("approval")
    return callback.result()


@requirement("4-3")
@durable_execution
def callback_timeout(event: str, context: DurableContext) -> Any:
    """Nobody answers within five seconds: the execution fails."""
    callback = context.create_callback(
        event, CallbackConfig(timeout=Duration.from_seconds(5))
    )
    return callback.result()


@requirement("4-4")
@durable_execution
def callback_heartbeat_timeout(event: str, context: DurableContext) -> Any:
    """No heartbeat comes within five seconds: the execution fails."""
    callback = context.create_callback(
        event, CallbackConfig(heartbeat_timeout=Duration.from_seconds(5))
    )
    return callback.result()


@requirement("4-5")
@durable_execution
def callback_heartbeat_then_success(event: str, context: DurableContext) -> Any:
    """A heartbeat keeps the callback alive until its answer comes."""
    callback = context.create_callback(
        event, CallbackConfig(heartbeat_timeout=Duration.from_seconds(10))
    )
    return callback.result()


@requirement("4-6")
@durable_execution
def rejected_callback(event: str, context: DurableContext) -> Any:
    """The answer is a failure, which the handler lets fail it."""
    callback = context.create_callback(event)
    return callback.result()


@requirement("4-7")
@durable_execution
def callback_then_step_fails(event: str, context: DurableContext) -> Any:
    """A step runs between creating the callback and reading its failure."""
    callback = context.create_callback(event)
    context.step(lambda _: "prepared", name="prepare")
    return callback.result()


@requirement("4-8")
@durable_execution
def callback_then_step_times_out(event: str, context: DurableContext) -> Any:
    """A step runs while the callback's five seconds run out."""
    callback = context.create_callback(
        event, CallbackConfig(timeout=Duration.from_seconds(5))
    )
    context.step(lambda _: "prepared", name="prepare")
    return callback.result()


@requirement("4-9")
@durable_execution
def callback_resolves_during_wait(event: str, context: DurableContext) -> Any:
    """The answer comes while a five-second wait is still running."""
    callback = context.create_callback(event)
    context.wait(Duration.from_seconds(5))
    return callback.result()


@requirement("4-11")
@durable_execution
def callback_outlives_wait(event: str, context: DurableContext) -> Any:
    """The callback times out at 3 s, during a 6 s wait; the handler sees
    the timeout only when the wait is over."""
    callback = context.create_callback(
        event, CallbackConfig(timeout=Duration.from_seconds(3))
    )
    context.wait(Duration.from_seconds(6))
    return callback.result()


@requirement("4-12")
@durable_execution
def callback_then_wait(event: str, context: DurableContext) -> Any:
    """The callback's answer is kept across a later two-second wait."""
    callback = context.create_callback(event)
    answer = callback.result()
    context.wait(Duration.from_seconds(2))
    return answer


@attrs.frozen
class Delivery:
    """The typed answer of the 4-15 callback."""

    id: str
    message: str
    timestamp: _dt.datetime


class DeliverySerDes:
    """Reads a callback's JSON answer as a :class:`Delivery`."""

    def serialize(self, value: Delivery, context: SerDesContext) -> str:
        return json.dumps(
            {
                "id": value.id,
                "message": value.message,
                "timestamp": value.timestamp.isoformat(),
            }
        )

    def deserialize(self, payload: str, context: SerDesContext) -> Delivery:
        data = json.loads(payload)
        # fromisoformat takes a trailing Z from Python 3.11 on.
        timestamp = _dt.datetime.fromisoformat(data["timestamp"])
        return Delivery(data["id"], data["message"], timestamp)


class CountSerDes:
    """Reads a callback's answer as an integer."""

    def serialize(self, value: int, context: SerDesContext) -> str:
        return str(value)

    def deserialize(self, payload: str, context: SerDesContext) -> int:
        return int(json.loads(payload))


@requirement("4-15")
@durable_execution
def typed_serdes_callback(event: str, context: DurableContext) -> dict[str, Any]:
    """A custom serdes turns the answer into a typed object."""
    callback = context.create_callback(event, CallbackConfig(serdes=DeliverySerDes()))
    delivery = callback.result()
    return {
        "received": {
            "id": delivery.id,
            "message": delivery.message,
            "timestamp": int(delivery.timestamp.timestamp()),
        }
    }


@requirement("4-16")
@durable_execution
def numeric_serdes_callback(event: str, context: DurableContext) -> dict[str, int]:
    """A custom serdes turns the answer into a number."""
    callback = context.create_callback(event, CallbackConfig(serdes=CountSerDes()))
    count = callback.result()
    return {"count": count, "doubled": count * 2}


@requirement("4-17")
@durable_execution
def sequential_callbacks(event: list[str], context: DurableContext) -> list[Any]:
    """Callback A is created and awaited, then callback B."""
    first = context.create_callback(event[0]).result()
    second = context.create_callback(event[1]).result()
    return [first, second]


@requirement("4-19")
@durable_execution
def two_callbacks_awaited_in_reverse(
    event: list[str], context: DurableContext
) -> list[Any]:
    """Both callbacks are created first; B is awaited before A."""
    a = context.create_callback(event[0])
    b = context.create_callback(event[1])
    second = b.result()
    first = a.result()
    return [first, second]
