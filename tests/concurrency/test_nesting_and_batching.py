"""NESTED and FLAT batches, map batching, and batches too large to
checkpoint whole."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import pytest
from batch_helpers import summarize

from durable_exec import (
    BatchResult,
    CompletionConfig,
    DurableContext,
    MapConfig,
    NestingType,
    ParallelBranch,
    ParallelConfig,
    durable_execution,
)
from durable_exec.local import LocalEngine
from durable_exec.wire import OperationType

_ALL = CompletionConfig.all_completed()


class Ran:
    """Counts the steps that ran for real, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def step(self, ctx: DurableContext, name: str, value: Any) -> Any:
        def body(_: Any) -> Any:
            with self._lock:
                self.counts[name] += 1
            return value

        return ctx.step(body, name=name)


def _contexts(result: Any, sub_type: str) -> list[Any]:
    return [
        op
        for op in result.operations
        if op.type is OperationType.CONTEXT and op.sub_type == sub_type
    ]


# -- NESTED and FLAT ---------------------------------------------------------------


def _mixed_workflow(nesting: NestingType) -> Any:
    def ok(ctx: DurableContext) -> dict[str, Any]:
        return {"value": ctx.step(lambda _: 7, name="seven")}

    def broken(ctx: DurableContext) -> None:
        ctx.step(lambda _: None, name="first")
        raise LookupError("no such thing")

    def item(ctx: DurableContext, value: int, index: int, items: Any) -> int:
        doubled = ctx.step(lambda _: value * 2, name="double")
        if value == 3:
            raise ValueError("three")
        return doubled + index

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> dict[str, Any]:
        branches: list[Any] = [
            ParallelBranch("ok", ok),
            broken,
            ParallelBranch("again", ok),
        ]
        parallel = ctx.parallel(
            branches,
            name="branches",
            config=ParallelConfig(completion=_ALL, nesting=nesting),
        )
        single = ctx.map(
            [1, 2, 3, 4],
            item,
            name="items",
            config=MapConfig(completion=_ALL, nesting=nesting),
        )
        batched = ctx.map(
            [1, 2, 3, 4, 5],
            item,
            name="batched",
            config=MapConfig(
                completion=_ALL,
                nesting=nesting,
                batch_size=2,
                item_namer=lambda value, index: f"item-{value}",
            ),
        )
        return {
            "parallel": summarize(parallel),
            "single": summarize(single),
            "batched": summarize(batched),
        }

    return workflow


def test_nested_and_flat_give_the_same_results(local: LocalEngine) -> None:
    """The same branches and items give the same batch, NESTED or FLAT."""
    nested = local.run(_mixed_workflow(NestingType.NESTED))
    flat = local.run(_mixed_workflow(NestingType.FLAT))

    assert nested.succeeded, nested.error
    assert flat.succeeded, flat.error
    assert flat.result == nested.result
    parallel = nested.result["parallel"]
    assert [item["status"] for item in parallel["items"]] == [
        "SUCCEEDED",
        "FAILED",
        "SUCCEEDED",
    ]
    assert parallel["items"][0]["name"] == "ok"
    assert parallel["items"][1]["error"] == ["LookupError", "no such thing"]
    assert [item.get("result") for item in nested.result["batched"]["items"]] == [
        2,
        5,
        None,
        11,
        14,
    ]


def test_flat_writes_no_branch_contexts(local: LocalEngine) -> None:
    """FLAT batches checkpoint their steps straight under the batch."""
    nested = local.run(_mixed_workflow(NestingType.NESTED))
    flat = local.run(_mixed_workflow(NestingType.FLAT))

    assert len(_contexts(nested, "ParallelBranch")) == 3
    assert len(_contexts(nested, "MapIteration")) == 4 + 3
    assert _contexts(flat, "ParallelBranch") == []
    assert _contexts(flat, "MapIteration") == []
    batches = {op.id for op in flat.operations if op.sub_type in ("Parallel", "Map")}
    assert batches == {"1", "2", "3"}
    steps = [op for op in flat.operations if op.type is OperationType.STEP]
    assert steps and all(op.parent_id in batches for op in steps)


# -- map batching -------------------------------------------------------------


@pytest.mark.parametrize("nesting", list(NestingType))
def test_batch_size_groups_items_and_splits_results_back(
    local: LocalEngine, nesting: NestingType
) -> None:
    """batch_size=3 over 10 items makes 4 children; each item gets its own
    result, in order, and a failing item fails only itself."""

    def item(ctx: DurableContext, value: int, index: int, items: Any) -> int:
        result = ctx.step(lambda _: value * value, name="square")
        if index == 4:
            raise ValueError("item 4 is bad")
        return result

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> dict[str, Any]:
        return summarize(
            ctx.map(
                list(range(10)),
                item,
                config=MapConfig(
                    batch_size=3, max_concurrency=2, completion=_ALL, nesting=nesting
                ),
            )
        )

    result = local.run(workflow)

    assert result.succeeded, result.error
    items = result.result["items"]
    assert [item["index"] for item in items] == list(range(10))
    assert [item.get("result") for item in items] == [
        None if index == 4 else index * index for index in range(10)
    ]
    assert items[4]["status"] == "FAILED"
    assert items[4]["error"] == ["ValueError", "item 4 is bad"]
    assert [item["status"] for item in items[3:6]] == [
        "SUCCEEDED",
        "FAILED",
        "SUCCEEDED",
    ]
    children = _contexts(result, "MapIteration")
    if nesting is NestingType.NESTED:
        assert sorted(op.id for op in children) == ["1-1", "1-2", "1-3", "1-4"]
        steps = Counter(
            op.parent_id for op in result.operations if op.type is OperationType.STEP
        )
        assert steps == {"1-1": 3, "1-2": 3, "1-3": 3, "1-4": 1}
    else:
        assert children == []


def test_batch_bytes_starts_a_new_child_when_full(local: LocalEngine) -> None:
    """batch_bytes closes a child before the items in it outgrow it; an
    item larger than the bound gets a child of its own."""
    # JSON sizes: 10, 30, 10, 10, 10, 10 bytes; bound 25.
    values = ["a" * 8, "b" * 28, "c" * 8, "d" * 8, "e" * 8, "f" * 8]

    def item(ctx: DurableContext, value: str, index: int, items: Any) -> str:
        return ctx.step(lambda _: value[0], name="first-letter")

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> dict[str, Any]:
        return summarize(
            ctx.map(
                values,
                item,
                config=MapConfig(batch_size=10, batch_bytes=25),
            )
        )

    result = local.run(workflow)

    assert result.succeeded, result.error
    assert [item["result"] for item in result.result["items"]] == list("abcdef")
    steps = Counter(
        op.parent_id for op in result.operations if op.type is OperationType.STEP
    )
    assert steps == {"1-1": 1, "1-2": 1, "1-3": 2, "1-4": 2}


@pytest.mark.parametrize("nesting", list(NestingType))
def test_batched_map_resumes_without_running_anything_again(
    local: LocalEngine, invoke_once: Any, nesting: NestingType
) -> None:
    """An item waiting inside a batch suspends its child; on resume the
    items before it replay, and a finished map replays whole."""
    ran = Ran()

    def item(ctx: DurableContext, value: int, index: int, items: Any) -> int:
        result = ran.step(ctx, f"item-{index}", value + 100)
        if index == 4:
            ctx.wait(1, name="mid-batch")
        return result  # type: ignore[no-any-return]

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> dict[str, Any]:
        batch = ctx.map(
            list(range(8)),
            item,
            name="batched",
            config=MapConfig(batch_size=3, nesting=nesting),
        )
        ctx.wait(1, name="after-map")
        return summarize(batch)

    arn = local.start(workflow)
    assert invoke_once(arn, workflow) == {"Status": "PENDING"}
    assert sorted(ran.counts) == sorted(
        f"item-{index}" for index in range(8) if index != 5
    )

    result = local.drive(arn)

    assert result.succeeded, result.error
    assert result.invocations >= 3
    assert [item["result"] for item in result.result["items"]] == [
        value + 100 for value in range(8)
    ]
    assert ran.counts == Counter({f"item-{index}": 1 for index in range(8)})


# -- batches over 256 KiB -----------------------------------------------------------

LARGE = 40_000


@pytest.mark.parametrize("nesting", list(NestingType))
@pytest.mark.parametrize("batch_size", [None, 2])
def test_large_batch_is_summarized_and_rebuilt_on_replay(
    local: LocalEngine, nesting: NestingType, batch_size: int | None
) -> None:
    """A map result over 256 KiB is checkpointed as a summary with
    ReplayChildren; after a later wait, replay rebuilds the same batch
    without running a step again."""
    ran = Ran()
    seen: list[BatchResult[Any]] = []

    def item(ctx: DurableContext, value: int, index: int, items: Any) -> str:
        if value == 5:
            ctx.step(lambda _: None, name="doomed")
            raise ValueError("five is out")
        return ran.step(ctx, f"big-{index}", str(value) * LARGE)  # type: ignore[no-any-return]

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> dict[str, Any]:
        batch = ctx.map(
            list(range(8)),
            item,
            name="large",
            config=MapConfig(completion=_ALL, nesting=nesting, batch_size=batch_size),
        )
        seen.append(batch)
        ctx.wait(1, name="later")
        return {
            "lengths": [len(result) for result in batch.get_results()],
            "failed": [item.index for item in batch.failed()],
        }

    result = local.run(workflow)

    assert result.succeeded, result.error
    assert result.result == {"lengths": [LARGE] * 7, "failed": [5]}
    (batch_op,) = [op for op in result.operations if op.id == "1"]
    assert batch_op.context_details is not None
    assert batch_op.context_details.replay_children is True
    assert len(batch_op.context_details.result or "") < 4096
    assert json.loads(batch_op.context_details.result or "{}")["reason"] == (
        "ALL_COMPLETED"
    )

    assert len(seen) == 2
    first, replayed = seen
    assert summarize(replayed) == summarize(first)
    assert [item.result for item in replayed.all] == [item.result for item in first.all]
    assert replayed.completion_reason is first.completion_reason
    assert ran.counts == Counter(
        {f"big-{index}": 1 for index in range(8) if index != 5}
    )


def test_large_parallel_with_started_branches_is_rebuilt_on_replay(
    local: LocalEngine,
) -> None:
    """A summarized parallel decided early replays the same items: the
    winner, no unstarted branch."""
    ran = Ran()
    seen: list[dict[str, Any]] = []

    def big(index: int) -> Any:
        def branch(ctx: DurableContext) -> str:
            return ran.step(ctx, f"big-{index}", "x" * 150_000)  # type: ignore[no-any-return]

        return branch

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> int:
        batch = ctx.parallel(
            [big(index) for index in range(6)],
            config=ParallelConfig(
                max_concurrency=1,
                completion=CompletionConfig(min_successful=2),
            ),
        )
        seen.append(summarize(batch))
        ctx.wait(1, name="later")
        return len(batch)

    result = local.run(workflow)

    assert result.succeeded, result.error
    assert result.result == 2
    assert seen[0] == seen[1]
    assert seen[0]["reason"] == "MIN_SUCCESSFUL_REACHED"
    assert ran.counts == Counter({"big-0": 1, "big-1": 1})


@pytest.mark.parametrize("nesting", list(NestingType))
def test_branch_result_over_256_kib_is_rebuilt_from_its_steps(
    local: LocalEngine, invoke_once: Any, nesting: NestingType
) -> None:
    """A branch whose own result is summarized is rebuilt over its steps
    when its batch resumes, and again when the batch is rebuilt."""
    ran = Ran()
    seen: list[dict[str, Any]] = []

    def huge(ctx: DurableContext) -> str:
        first = ran.step(ctx, "half-1", "h" * 150_000)
        second = ran.step(ctx, "half-2", "H" * 150_000)
        return first + second  # type: ignore[no-any-return]

    def slow(ctx: DurableContext) -> str:
        ctx.wait(1, name="pause")
        return ran.step(ctx, "slow", "done")  # type: ignore[no-any-return]

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> list[Any]:
        batch = ctx.parallel(
            [huge, slow], name="big", config=ParallelConfig(nesting=nesting)
        )
        summary = summarize(batch)
        seen.append(summary)
        ctx.wait(1, name="later")
        return [len(batch.all[0].result or ""), batch.all[1].result]

    arn = local.start(workflow)
    assert invoke_once(arn, workflow) == {"Status": "PENDING"}
    result = local.drive(arn)

    assert result.succeeded, result.error
    assert result.result == [300_000, "done"]
    assert len(seen) == 2 and seen[0] == seen[1]
    assert ran.counts == Counter({"half-1": 1, "half-2": 1, "slow": 1})
    if nesting is NestingType.NESTED:
        (branch,) = [op for op in result.operations if op.id == "1-1"]
        assert branch.context_details is not None
        assert branch.context_details.replay_children is True


# -- threads ---------------------------------------------------------------------


@pytest.fixture
def batch_threads_started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the batch threads started while the test runs."""
    started: list[str] = []
    real_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        if self.name.startswith("durable-"):
            started.append(self.name)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    return started


@pytest.mark.parametrize("limit", [None, 3])
def test_a_large_map_starts_a_bounded_number_of_threads(
    local: LocalEngine, batch_threads_started: list[str], limit: int | None
) -> None:
    """A map over 2,000 items starts at most max_concurrency threads, or
    with no bound the pool's default, never one per item."""
    import durable_exec._concurrency as concurrency

    def item(ctx: DurableContext, value: int, index: int, items: Any) -> int:
        return ctx.step(lambda _: value + 1, name="inc")

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> int:
        batch = ctx.map(
            list(range(2000)), item, config=MapConfig(max_concurrency=limit)
        )
        return sum(batch.get_results())

    result = local.run(workflow)

    assert result.result == sum(range(1, 2001))
    assert 1 <= len(batch_threads_started) <= (limit or concurrency.DEFAULT_MAX_THREADS)
