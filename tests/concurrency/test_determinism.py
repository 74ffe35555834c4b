"""Thread timing never shows in what a batch checkpoints: many runs of the
same parallel and map give the same history and the same result."""

from __future__ import annotations

from typing import Any

import pytest
from batch_helpers import history_shape, summarize

from durable_exec import (
    CompletionConfig,
    DurableContext,
    MapConfig,
    NestingType,
    ParallelConfig,
    durable_execution,
)
from durable_exec.local import LocalEngine

RUNS = 20
BRANCHES = 200
ITEMS = 300
LIMIT = 8


def _two_steps(ctx: DurableContext, value: int) -> int:
    first = ctx.step(lambda _: value * 2, name="double")
    return ctx.step(lambda _: first + 1, name="plus-one")


def _branch(index: int) -> Any:
    def branch(ctx: DurableContext) -> int:
        return _two_steps(ctx, index)

    return branch


def _item(ctx: DurableContext, item: int, index: int, items: Any) -> int:
    if item % 37 == 5:
        ctx.step(lambda _: item, name="before-failure")
        raise ValueError(f"item {item} fails")
    return _two_steps(ctx, item)


@durable_execution
def workflow(event: Any, ctx: DurableContext) -> dict[str, Any]:
    nesting = NestingType[event["nesting"]]
    parallel = ctx.parallel(
        [_branch(index) for index in range(BRANCHES)],
        name="fan-out",
        config=ParallelConfig(max_concurrency=LIMIT, nesting=nesting),
    )
    mapped = ctx.map(
        list(range(ITEMS)),
        _item,
        name="per-item",
        config=MapConfig(
            max_concurrency=LIMIT,
            nesting=nesting,
            completion=CompletionConfig.all_completed(),
        ),
    )
    return {"parallel": summarize(parallel), "map": summarize(mapped)}


@pytest.mark.parametrize("nesting", ["NESTED", "FLAT"])
def test_repeated_runs_record_identical_histories(nesting: str) -> None:
    """20 runs of a 200-branch parallel and a 300-item map record the same
    operations, per id in the same order, and return the same result."""
    shapes = []
    results = []
    for _ in range(RUNS):
        with LocalEngine.in_memory() as engine:
            outcome = engine.run(workflow, {"nesting": nesting})
        assert outcome.succeeded, outcome.error
        shapes.append(history_shape(outcome.history))
        results.append(outcome.result)

    first = shapes[0]
    ids = [op_id for op_id, _ in first]
    assert len(ids) > 2 * BRANCHES + ITEMS
    for run, shape in enumerate(shapes[1:], start=2):
        assert [op_id for op_id, _ in shape] == ids, f"run {run}: ids differ"
        for (op_id, events), (_, expected) in zip(shape, first):
            assert events == expected, f"run {run}: operation {op_id} differs"
    assert all(result == results[0] for result in results)

    parallel, mapped = results[0]["parallel"], results[0]["map"]
    assert [item["result"] for item in parallel["items"]] == [
        2 * index + 1 for index in range(BRANCHES)
    ]
    failed = [item["index"] for item in mapped["items"] if "error" in item]
    assert failed == [item for item in range(ITEMS) if item % 37 == 5]
