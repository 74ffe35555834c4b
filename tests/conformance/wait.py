"""Conformance handlers of the wait suite: durable waits.

One durable handler per requirement id, declared with ``@requirement``.
"""

from __future__ import annotations

from durable_exec import DurableContext, Duration, durable_execution
from durable_exec.testing.conformance import requirement

__all__ = [
    "named_wait",
    "sequential_waits",
    "wait_basic",
    "wait_in_minutes",
]


@requirement("2-1")
@durable_execution
def wait_basic(event: None, context: DurableContext) -> None:
    """One wait of two seconds."""
    context.wait(Duration.from_seconds(2))


@requirement("2-2")
@durable_execution
def named_wait(event: None, context: DurableContext) -> None:
    """One wait with an explicit name."""
    context.wait(Duration.from_seconds(2), name="custom_wait_name")


@requirement("2-3")
@durable_execution
def sequential_waits(event: None, context: DurableContext) -> dict[str, int]:
    """Two waits, one after the other, each its own invocation."""
    context.wait(Duration.from_seconds(2), name="wait-1")
    context.wait(Duration.from_seconds(2), name="wait-2")
    return {"completedWaits": 2}


@requirement("2-4")
@durable_execution
def wait_in_minutes(event: None, context: DurableContext) -> None:
    """A wait given in minutes is checkpointed in seconds."""
    context.wait(Duration.from_minutes(1))
