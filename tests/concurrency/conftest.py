"""Fixtures of the parallel and map tests: an in-memory engine on a
skipping clock, one invocation run by hand, and a check that no batch
leaves a thread behind."""

from __future__ import annotations

import threading
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


InvokeOnce = Callable[[str, DurableHandler[Any, Any]], dict[str, Any]]


@pytest.fixture
def invoke_once(local: LocalEngine) -> InvokeOnce:
    """Run exactly one invocation of ``arn`` with ``handler``.

    ``LocalEngine.drive`` carries on to the end of the execution; this
    stops after one invocation, so a test can look at what it stored or
    change the handler's configuration before the next one.
    """

    def run(arn: str, handler: DurableHandler[Any, Any]) -> dict[str, Any]:
        envelope = local.engine.begin_invocation(arn)
        output = handler.invoke(envelope, None, client=local.client)
        local.engine.end_invocation(arn, InvocationOutcome(output=output))
        return output

    return run


def _batch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("durable-")]


@pytest.fixture(autouse=True)
def no_batch_thread_survives() -> Iterator[None]:
    """Every test here ends with no executor thread of a batch alive."""
    yield
    leftover = _batch_threads()
    assert not leftover, f"batch threads outlived their batch: {leftover}"
