"""Conformance handlers of the invoke suite: chained invokes of other
functions.

One durable handler per requirement id, declared with ``@requirement``,
and the functions they invoke, declared with ``@invoke_target``: the
harness registers every target beside every handler.
"""

from __future__ import annotations

import json
from typing import Any

from durable_exec import (
    DurableContext,
    Duration,
    InvokeConfig,
    InvokeError,
    SerDesContext,
    durable_execution,
)
from durable_exec.testing.conformance import invoke_target, requirement

__all__ = [
    "caught_failed_invoke",
    "durable_echo",
    "echo",
    "echo_null",
    "failed_invoke_replays_its_error",
    "invoke_basic",
    "invoke_complex_object",
    "invoke_in_child_context",
    "invoke_then_step",
    "invoke_then_wait",
    "invoke_with_payload_serdes",
    "invoke_with_result_serdes",
    "invoke_with_tenant",
    "named_invoke",
    "reject",
    "sequential_invokes",
]


# -----------------------------------------------------------------------------
# Targets


@invoke_target("echo")
def echo(event: Any, context: Any) -> Any:
    """A plain function that returns its input."""
    return event


class RejectedError(Exception):
    """What the failing target raises."""


@invoke_target("reject")
def reject(event: Any, context: Any) -> Any:
    """A plain function that always fails."""
    raise RejectedError("the target rejects every request")


@invoke_target("durable-echo")
@durable_execution
def durable_echo(event: Any, context: DurableContext) -> Any:
    """A durable function that returns its input from a step."""
    return context.step(lambda _: event, name="echo")


# -----------------------------------------------------------------------------
# Handlers


@requirement("5-1")
@durable_execution
def invoke_basic(event: str, context: DurableContext) -> Any:
    """Invokes the echo target with the input; returns what came back."""
    return context.invoke("echo", event)


@requirement("5-2")
@durable_execution
def named_invoke(event: dict[str, Any], context: DurableContext) -> Any:
    """An invoke named from the input."""
    return context.invoke("echo", event["payload"], name=event["name"])


@requirement("5-3")
@durable_execution
def invoke_complex_object(event: dict[str, Any], context: DurableContext) -> Any:
    """The echo target returns nested JSON unchanged."""
    return context.invoke("echo", event)


@requirement("5-4")
@durable_execution
def echo_null(event: None, context: DurableContext) -> Any:
    """The echo target gets null and returns null."""
    return context.invoke("echo", None)


@requirement("5-6")
@durable_execution
def caught_failed_invoke(event: None, context: DurableContext) -> str:
    """The target fails; the handler catches the InvokeError."""
    try:
        return str(context.invoke("reject"))
    except InvokeError:
        return "fallback"


@requirement("5-8")
@durable_execution
def invoke_with_tenant(event: dict[str, Any], context: DurableContext) -> Any:
    """The invoke carries the input's tenant id."""
    return context.invoke(
        "echo",
        event["payload"],
        config=InvokeConfig(tenant_id=event["tenantId"]),
    )


@requirement("5-9")
@durable_execution
def invoke_then_wait(event: None, context: DurableContext) -> Any:
    """After the wait, the invoke's result is replayed, not invoked again."""
    result = context.invoke("durable-echo", {"from": "invoke_then_wait"})
    context.wait(Duration.from_seconds(1))
    return result


@requirement("5-10")
@durable_execution
def failed_invoke_replays_its_error(event: None, context: DurableContext) -> str:
    """After the wait, the failed invoke raises its recorded error again."""
    try:
        context.invoke("reject")
        outcome = "succeeded"
    except InvokeError as error:
        outcome = f"caught {error.error_type}"
    context.wait(Duration.from_seconds(1))
    return outcome


@requirement("5-12")
@durable_execution
def invoke_then_step(event: None, context: DurableContext) -> str:
    """The invoke's result feeds a step."""
    greeting = context.invoke("durable-echo", "hello")
    return context.step(lambda _: f"{greeting}, world", name="greet")


@requirement("5-13")
@durable_execution
def invoke_in_child_context(event: None, context: DurableContext) -> Any:
    """The invoke runs inside a child context, which returns its result."""
    return context.run_in_child_context(
        lambda child: child.invoke("echo", "from the child"),
        name="child",
    )


@requirement("5-14")
@durable_execution
def sequential_invokes(event: None, context: DurableContext) -> list[Any]:
    """Two invokes, each in an invocation of its own."""
    first = context.invoke("echo", 1)
    second = context.invoke("durable-echo", first + 1)
    return [first, second]


class UpperCaseJson:
    """JSON with every string upper-cased on the way out."""

    def serialize(self, value: Any, context: SerDesContext) -> str:
        return json.dumps(_upper(value))

    def deserialize(self, payload: str, context: SerDesContext) -> Any:
        return json.loads(payload)


def _upper(value: Any) -> Any:
    if isinstance(value, str):
        return value.upper()
    if isinstance(value, dict):
        return {key: _upper(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_upper(item) for item in value]
    return value


class UpperCaseText:
    """Reads a result as its text, upper-cased."""

    def serialize(self, value: str, context: SerDesContext) -> str:
        return value

    def deserialize(self, payload: str, context: SerDesContext) -> str:
        return payload.upper()


@requirement("5-15")
@durable_execution
def invoke_with_payload_serdes(event: dict[str, Any], context: DurableContext) -> Any:
    """A custom serdes upper-cases the payload before it is sent."""
    return context.invoke(
        "echo", event, config=InvokeConfig(payload_serdes=UpperCaseJson())
    )


@requirement("5-16")
@durable_execution
def invoke_with_result_serdes(event: str, context: DurableContext) -> str:
    """A custom serdes upper-cases the result's text as it is read."""
    result: str = context.invoke(
        "echo", event, config=InvokeConfig(result_serdes=UpperCaseText())
    )
    return result
