"""A suspended branch goes on in the same invocation once its timer fires."""

from __future__ import annotations

import threading
from typing import Any

from durable_exec import (
    DurableContext,
    MapConfig,
    ParallelConfig,
    durable_execution,
)
from durable_exec.local import LocalEngine, SkippingClock


def _race(engine: LocalEngine, clock: SkippingClock, kind: str) -> Any:
    """Branch 0 waits 5 s; branch 1, once that wait is recorded, moves the
    engine's clock past it, so its next checkpoint reply brings the fired
    wait."""

    def waits(ctx: DurableContext) -> str:
        ctx.wait(5, name="short-wait")
        return "waited"

    def wait_recorded(arn: str) -> None:
        # Order the two branches: the clock moves only after the wait
        # started. Bounded, and it waits for an event, not for time.
        for _ in range(10_000):
            record = engine.engine.record(arn)
            if any(op.name == "short-wait" for op in record.operations.values()):
                clock.advance(10)
                return
            threading.Event().wait(0.001)
        raise AssertionError("the wait was never recorded")

    def runs_on(ctx: DurableContext) -> str:
        arn = ctx.durable_execution_arn
        ctx.step(lambda _: wait_recorded(arn), name="time-passes")
        # The reply to this checkpoint carries the wait as SUCCEEDED.
        ctx.step(lambda _: "tick", name="tick")
        return "ran"

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> list[str]:
        bodies = [waits, runs_on]
        if kind == "parallel":
            batch = ctx.parallel(bodies, config=ParallelConfig(max_concurrency=2))
        else:
            batch = ctx.map(
                bodies,
                lambda c, body, index, items: body(c),
                config=MapConfig(max_concurrency=2),
            )
        return batch.get_results()

    return handler


def _run(kind: str) -> Any:
    clock = SkippingClock()
    engine = LocalEngine(":memory:", clock=clock)
    return engine.run(_race(engine, clock, kind), None)


def test_parallel_branch_resumes_when_a_reply_brings_its_wait() -> None:
    """The batch finishes in one invocation; no PENDING with nothing pending."""
    outcome = _run("parallel")

    assert outcome.succeeded
    assert outcome.result == ["waited", "ran"]
    types = [event["EventType"] for event in outcome.history]
    assert types.count("InvocationCompleted") == 1
    assert types.index("WaitSucceeded") < types.index("ExecutionSucceeded")


def test_map_item_resumes_when_a_reply_brings_its_wait() -> None:
    """The same holds for map items."""
    outcome = _run("map")

    assert outcome.succeeded
    assert outcome.result == ["waited", "ran"]
    types = [event["EventType"] for event in outcome.history]
    assert types.count("InvocationCompleted") == 1
