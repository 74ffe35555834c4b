"""Shared fixtures of the core tests: an in-memory engine on a skipping
clock, and a way to run exactly one invocation of an execution by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from durable_exec.handler import DurableHandler
from durable_exec.local import LocalEngine
from durable_exec.local._engine import InvocationOutcome


@pytest.fixture
def local() -> Iterator[LocalEngine]:
    """An engine with a memory store and a skipping clock."""
    with LocalEngine.in_memory() as engine:
        yield engine


InvokeOnce = Callable[..., dict[str, Any]]


@pytest.fixture
def invoke_once(local: LocalEngine) -> InvokeOnce:
    """Run one invocation of ``arn`` with ``handler`` and end it.

    The engine's drive loop would carry on to the end of the execution;
    this stops after one invocation, so a test can change the handler or
    inspect what one invocation stored. Returns the handler's reply.
    """

    def run(arn: str, handler: DurableHandler[Any, Any]) -> dict[str, Any]:
        envelope = local.engine.begin_invocation(arn)
        output = handler.invoke(envelope, None, client=local.client)
        local.engine.end_invocation(arn, InvocationOutcome(output=output))
        return output

    return run


def events(history: Any, *types: str) -> list[dict[str, Any]]:
    """The events of ``history`` whose EventType is one of ``types``."""
    return [event for event in history if event["EventType"] in types]


@pytest.fixture
def of_type() -> Callable[..., list[dict[str, Any]]]:
    """``of_type(history, *event_types)``: filter a history by type."""
    return events
