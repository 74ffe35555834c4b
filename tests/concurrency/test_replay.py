"""Replay of parallel and map across invocations: finished branches are
not run again, whatever max_concurrency the next invocation uses or how
the branches ended, and a suspended branch keeps its slot."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from batch_helpers import summarize

from durable_exec import (
    CompletionConfig,
    DurableContext,
    NestingType,
    ParallelConfig,
    RetryPresets,
    StepConfig,
    durable_execution,
)
from durable_exec.local import LocalEngine
from durable_exec.wire import ExecutionStatus

_NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())


class Ran:
    """The names of the steps that ran for real, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.names: list[str] = []

    def step(self, ctx: DurableContext, name: str, value: Any) -> Any:
        def body(_: Any) -> Any:
            with self._lock:
                self.names.append(name)
            return value

        return ctx.step(body, name=name)

    def failing_step(self, ctx: DurableContext, name: str) -> Any:
        def body(_: Any) -> Any:
            with self._lock:
                self.names.append(name)
            raise RuntimeError(f"{name} broke")

        return ctx.step(body, name=name, config=_NO_RETRY)

    def assert_each_once(self, expected: set[str]) -> None:
        counts = Counter(self.names)
        assert set(counts) == expected
        assert [name for name, n in counts.items() if n > 1] == []


def _waiting_branches(ran: Ran, count: int) -> list[Any]:
    def make(index: int) -> Any:
        def branch(ctx: DurableContext) -> int:
            before = ran.step(ctx, f"before-{index}", index)
            ctx.wait(1, name=f"pause-{index}")
            return before + ran.step(ctx, f"after-{index}", 100 * index)  # type: ignore[no-any-return]

        return branch

    return [make(index) for index in range(count)]


BRANCHES = 6


def _limited_workflow(ran: Ran, settings: dict[str, Any]) -> Any:
    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> dict[str, Any]:
        batch = ctx.parallel(
            _waiting_branches(ran, BRANCHES),
            name="waiters",
            config=ParallelConfig(
                max_concurrency=settings["max_concurrency"],
                nesting=settings["nesting"],
            ),
        )
        return summarize(batch)

    return workflow


ALL_STEPS = {
    f"{phase}-{index}" for phase in ("before", "after") for index in range(BRANCHES)
}


@pytest.mark.parametrize("nesting", list(NestingType))
@pytest.mark.parametrize("resumed_with", [5, 1, None])
def test_resume_under_another_max_concurrency(
    local: LocalEngine,
    invoke_once: Any,
    nesting: NestingType,
    resumed_with: int | None,
) -> None:
    """An execution begun with max_concurrency=2 and resumed with another
    bound gives the same result and runs no finished step again."""
    reference = local.run(
        _limited_workflow(Ran(), {"max_concurrency": 2, "nesting": nesting})
    )
    assert reference.succeeded, reference.error

    ran = Ran()
    settings: dict[str, Any] = {"max_concurrency": 2, "nesting": nesting}
    workflow = _limited_workflow(ran, settings)
    arn = local.start(workflow)

    assert invoke_once(arn, workflow) == {"Status": "PENDING"}
    assert sorted(ran.names) == ["before-0", "before-1"]

    settings["max_concurrency"] = resumed_with
    result = local.drive(arn)

    assert result.succeeded, result.error
    assert result.result == reference.result
    assert [item["result"] for item in result.result["items"]] == [
        101 * index for index in range(BRANCHES)
    ]
    ran.assert_each_once(ALL_STEPS)


@pytest.mark.parametrize("nesting", list(NestingType))
def test_resume_after_branches_ended_in_mixed_states(
    local: LocalEngine, invoke_once: Any, nesting: NestingType
) -> None:
    """Succeeded and failed branches replay their outcome; suspended ones
    go on from their wait; no step runs twice."""
    ran = Ran()

    def make(index: int) -> Any:
        def branch(ctx: DurableContext) -> Any:
            kind = index % 3
            if kind == 0:
                return ran.step(ctx, f"ok-{index}", index)
            if kind == 1:
                return ran.failing_step(ctx, f"bad-{index}")
            first = ran.step(ctx, f"early-{index}", index)
            ctx.wait(1, name=f"pause-{index}")
            return first + ran.step(ctx, f"late-{index}", 10)

        return branch

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> dict[str, Any]:
        batch = ctx.parallel(
            [make(index) for index in range(6)],
            name="mixed",
            config=ParallelConfig(
                completion=CompletionConfig.all_completed(), nesting=nesting
            ),
        )
        return summarize(batch)

    arn = local.start(workflow)
    assert invoke_once(arn, workflow) == {"Status": "PENDING"}
    assert sorted(ran.names) == sorted(
        ["ok-0", "bad-1", "early-2", "ok-3", "bad-4", "early-5"]
    )

    result = local.drive(arn)

    assert result.succeeded, result.error
    items = result.result["items"]
    assert [(item["index"], item["status"]) for item in items] == [
        (0, "SUCCEEDED"),
        (1, "FAILED"),
        (2, "SUCCEEDED"),
        (3, "SUCCEEDED"),
        (4, "FAILED"),
        (5, "SUCCEEDED"),
    ]
    assert [item.get("result") for item in items] == [0, None, 12, 3, None, 15]
    assert items[1]["error"][1] == "bad-1 broke"
    assert items[4]["error"][1] == "bad-4 broke"
    ran.assert_each_once(
        {"ok-0", "bad-1", "early-2", "late-2", "ok-3", "bad-4", "early-5", "late-5"}
    )


@pytest.mark.parametrize("nesting", list(NestingType))
@pytest.mark.parametrize("suspends_on", ["wait", "retry"])
def test_a_suspended_branch_keeps_its_slot(
    local: LocalEngine, invoke_once: Any, nesting: NestingType, suspends_on: str
) -> None:
    """With max_concurrency=1, a branch waiting durably (for a wait or a
    step's retry) holds the only slot: the next branch does not start in
    that invocation."""
    entered: list[int] = []
    attempts: list[int] = []

    def flaky(step: Any) -> str:
        attempts.append(step.attempt)
        if step.attempt == 1:
            raise ConnectionError("try again")
        return "retried"

    def first(ctx: DurableContext) -> str:
        entered.append(0)
        if suspends_on == "wait":
            ctx.wait(1, name="pause")
            return "waited"
        return ctx.step(
            flaky,
            name="flaky",
            config=StepConfig(retry_strategy=RetryPresets.default()),
        )

    def second(ctx: DurableContext) -> str:
        entered.append(1)
        return ctx.step(lambda _: "second", name="second")

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> dict[str, Any]:
        batch = ctx.parallel(
            [first, second],
            name="one-slot",
            config=ParallelConfig(max_concurrency=1, nesting=nesting),
        )
        return summarize(batch)

    arn = local.start(workflow)
    assert invoke_once(arn, workflow) == {"Status": "PENDING"}

    assert entered == [0]
    stored = local.describe(arn)
    assert stored.status is ExecutionStatus.RUNNING
    touched = {event.get("Id") for event in stored.history}
    assert not any(
        op_id and (op_id == "1-2" or op_id.startswith("1-2-")) for op_id in touched
    )

    result = local.drive(arn)
    assert result.succeeded, result.error
    assert [item["result"] for item in result.result["items"]] == [
        "waited" if suspends_on == "wait" else "retried",
        "second",
    ]
    assert entered == [0, 0, 1]
    assert attempts == ([] if suspends_on == "wait" else [1, 2])
