"""Shared fixtures of the engine tests: a service-side Engine on a
skipping clock, and an execution with an invocation in flight."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from engine_helpers import Live

from durable_exec.local import Engine, LocalEngine, MemoryStore, SkippingClock


@pytest.fixture
def clock() -> SkippingClock:
    """The engine's clock; advance it to move time."""
    return SkippingClock()


@pytest.fixture
def engine(clock: SkippingClock) -> Engine:
    """A service-side engine: memory store, skipping clock."""
    return Engine(MemoryStore(), clock=clock)


@pytest.fixture
def live(engine: Engine) -> Live:
    """A new execution of function ``fn`` with its first invocation begun."""
    arn = engine.create_execution("fn", "{}")
    envelope = engine.begin_invocation(arn)
    return Live(engine, arn, envelope["CheckpointToken"])


@pytest.fixture
def local() -> Iterator[LocalEngine]:
    """A LocalEngine on a memory store and a skipping clock."""
    with LocalEngine.in_memory() as runner:
        yield runner
