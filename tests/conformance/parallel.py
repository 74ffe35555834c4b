"""Conformance handlers of the parallel suite: branches, completion policies.

One durable handler per requirement id, declared with ``@requirement``.
Most run with ``max_concurrency=1``, so branches run one after the other
in index order and the history is deterministic. Handlers that report on
the batch return a small projection of its :class:`BatchResult`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from durable_exec import (
    BatchResult,
    CompletionConfig,
    DurableContext,
    NestingType,
    ParallelBranch,
    ParallelConfig,
    SerDesContext,
    StepContext,
    durable_execution,
)
from durable_exec.testing.conformance import requirement

__all__ = [
    "all_branches_fail_within_tolerance",
    "batch_accessors",
    "branches_only",
    "concurrent_branches",
    "empty_parallel",
    "fail_fast",
    "flat_branches",
    "heterogeneous_results",
    "invalid_max_concurrency",
    "min_successful_not_reached",
    "min_successful_stops_early",
    "named_branches",
    "parallel_basic",
    "percentage_at_boundary",
    "replay_across_wait",
    "throw_if_error_fails_execution",
    "tolerated_count_exceeded",
    "wrapping_item_serdes",
]

ONE_AT_A_TIME = ParallelConfig(max_concurrency=1)


class BranchFailure(Exception):
    """What a failing branch raises."""


def fail(ctx: DurableContext) -> str:
    """A branch that always fails."""
    raise BranchFailure("this branch fails")


def sequential(completion: CompletionConfig) -> ParallelConfig:
    """One branch at a time, under ``completion``."""
    return ParallelConfig(max_concurrency=1, completion=completion)


def summary(batch: BatchResult[Any]) -> dict[str, Any]:
    """Why the batch stopped, its status, and its counts."""
    return {
        "completionReason": batch.completion_reason.value,
        "status": batch.status.value,
        "successCount": batch.success_count,
        "failureCount": batch.failure_count,
        "totalCount": batch.total_count,
    }


@requirement("8-1")
@durable_execution
def parallel_basic(event: None, context: DurableContext) -> list[str]:
    """Two branches, each one step returning a constant."""

    def task_1(step: StepContext) -> str:
        return "task-1"

    def task_2(step: StepContext) -> str:
        return "task-2"

    def first(ctx: DurableContext) -> str:
        return ctx.step(task_1)

    def second(ctx: DurableContext) -> str:
        return ctx.step(task_2)

    batch = context.parallel([first, second], name="parallel", config=ONE_AT_A_TIME)
    return batch.get_results()


@requirement("8-2")
@durable_execution
def branches_only(event: None, context: DurableContext) -> list[str]:
    """An unnamed parallel of two branches that return directly."""

    def alpha(ctx: DurableContext) -> str:
        return "alpha"

    def beta(ctx: DurableContext) -> str:
        return "beta"

    return context.parallel([alpha, beta], config=ONE_AT_A_TIME).get_results()


@requirement("8-3")
@durable_execution
def named_branches(event: None, context: DurableContext) -> list[str]:
    """Two branches given as named ParallelBranch objects."""

    def one(ctx: DurableContext) -> str:
        return "one"

    def two(ctx: DurableContext) -> str:
        return "two"

    branches = [ParallelBranch("first", one), ParallelBranch("second", two)]
    batch: BatchResult[str] = context.parallel(
        branches, name="named", config=ONE_AT_A_TIME
    )
    return batch.get_results()


@requirement("8-4")
@durable_execution
def heterogeneous_results(event: None, context: DurableContext) -> list[Any]:
    """Branches returning a string, a number and an object."""

    def text(ctx: DurableContext) -> str:
        return "hello"

    def number(ctx: DurableContext) -> int:
        return 42

    def mapping(ctx: DurableContext) -> dict[str, str]:
        return {"k": "v"}

    batch = context.parallel(
        [text, number, mapping], name="hetero", config=ONE_AT_A_TIME
    )
    return batch.get_results()


@requirement("8-5")
@durable_execution
def empty_parallel(event: None, context: DurableContext) -> list[Any]:
    """A parallel of no branches completes at once."""
    return context.parallel([], name="empty").get_results()


@requirement("8-6")
@durable_execution
def fail_fast(event: None, context: DurableContext) -> dict[str, Any]:
    """The first failure stops the batch; the third branch never starts."""

    def ok(ctx: DurableContext) -> str:
        return "ok"

    batch = context.parallel(
        [ok, fail, ok],
        name="failfast",
        config=sequential(CompletionConfig(tolerated_failure_count=0)),
    )
    return summary(batch)


@requirement("8-7")
@durable_execution
def throw_if_error_fails_execution(event: None, context: DurableContext) -> Any:
    """A failed branch, rethrown from the batch, fails the execution."""

    def never(ctx: DurableContext) -> str:
        return "never started"

    batch = context.parallel(
        [fail, never],
        name="throwing",
        config=sequential(CompletionConfig(tolerated_failure_count=0)),
    )
    batch.throw_if_error()
    return batch.get_results()


@requirement("8-8")
@durable_execution
def min_successful_stops_early(event: None, context: DurableContext) -> dict[str, Any]:
    """Two successes of four branches are enough to stop the batch."""

    def branch(value: str) -> Callable[[DurableContext], str]:
        def returns(ctx: DurableContext) -> str:
            return value

        return returns

    batch = context.parallel(
        [branch(f"b{index}") for index in range(4)],
        name="min-successful",
        config=sequential(CompletionConfig(min_successful=2)),
    )
    return {
        "completionReason": batch.completion_reason.value,
        "successCount": batch.success_count,
        "totalCount": batch.total_count,
    }


@requirement("8-10")
@durable_execution
def tolerated_count_exceeded(event: None, context: DurableContext) -> dict[str, Any]:
    """A second failure exceeds a tolerance of one and stops the batch."""

    def never(ctx: DurableContext) -> str:
        return "never started"

    batch = context.parallel(
        [fail, fail, never],
        name="tolerated-exceeded",
        config=sequential(CompletionConfig(tolerated_failure_count=1)),
    )
    return {
        "completionReason": batch.completion_reason.value,
        "successCount": batch.success_count,
        "failureCount": batch.failure_count,
        "totalCount": batch.total_count,
    }


@requirement("8-11")
@durable_execution
def concurrent_branches(event: None, context: DurableContext) -> list[str]:
    """Two branches at a time; results still come in branch order."""

    def r0(ctx: DurableContext) -> str:
        return "r0"

    def r1(ctx: DurableContext) -> str:
        return "r1"

    def r2(ctx: DurableContext) -> str:
        return "r2"

    batch = context.parallel(
        [r0, r1, r2],
        name="concurrent",
        config=ParallelConfig(max_concurrency=2),
    )
    return batch.get_results()


@requirement("8-12")
@durable_execution
def flat_branches(event: None, context: DurableContext) -> list[str]:
    """FLAT nesting: each branch's step sits right under the parallel."""

    def fa(step: StepContext) -> str:
        return "fa"

    def fb(step: StepContext) -> str:
        return "fb"

    def first(ctx: DurableContext) -> str:
        return ctx.step(fa)

    def second(ctx: DurableContext) -> str:
        return ctx.step(fb)

    config = ParallelConfig(max_concurrency=1, nesting=NestingType.FLAT)
    batch = context.parallel([first, second], name="flat", config=config)
    return batch.get_results()


@requirement("8-14")
@durable_execution
def replay_across_wait(event: None, context: DurableContext) -> list[str]:
    """The second branch waits; replay skips the finished first one."""

    def b0(step: StepContext) -> str:
        return "b0"

    def first(ctx: DurableContext) -> str:
        return ctx.step(b0)

    def second(ctx: DurableContext) -> str:
        ctx.wait(2)
        return "b1"

    batch = context.parallel([first, second], name="replay", config=ONE_AT_A_TIME)
    return batch.get_results()


class WrappingSerDes:
    """Checkpoints a value ``v`` as ``{"wrapped": v}``."""

    def serialize(self, value: Any, context: SerDesContext) -> str:
        return json.dumps({"wrapped": value})

    def deserialize(self, payload: str, context: SerDesContext) -> Any:
        return json.loads(payload)["wrapped"]


@requirement("8-15")
@durable_execution
def wrapping_item_serdes(event: None, context: DurableContext) -> list[str]:
    """Each branch's result is checkpointed wrapped and read back bare."""

    def x(ctx: DurableContext) -> str:
        return "x"

    def y(ctx: DurableContext) -> str:
        return "y"

    config = ParallelConfig(max_concurrency=1, item_serdes=WrappingSerDes())
    return context.parallel([x, y], name="serde", config=config).get_results()


@requirement("8-16")
@durable_execution
def all_branches_fail_within_tolerance(
    event: None, context: DurableContext
) -> dict[str, Any]:
    """Three failures within a tolerance of three: every branch runs."""
    batch = context.parallel(
        [fail, fail, fail],
        name="all-fail",
        config=sequential(CompletionConfig(tolerated_failure_count=3)),
    )
    return summary(batch)


@requirement("8-17")
@durable_execution
def min_successful_not_reached(event: None, context: DurableContext) -> dict[str, Any]:
    """Two successes never reach min_successful=3; every branch runs."""

    def ok(ctx: DurableContext) -> str:
        return "ok"

    batch = context.parallel(
        [ok, fail, ok],
        name="min-not-reached",
        config=sequential(CompletionConfig(min_successful=3)),
    )
    return summary(batch)


@requirement("8-19")
@durable_execution
def invalid_max_concurrency(event: None, context: DurableContext) -> Any:
    """max_concurrency=0 is rejected before anything is checkpointed."""

    def trivial(ctx: DurableContext) -> str:
        return "trivial"

    config = ParallelConfig(max_concurrency=0)
    return context.parallel(
        [trivial, trivial], name="bad-concurrency", config=config
    ).get_results()


@requirement("8-20")
@durable_execution
def batch_accessors(event: None, context: DurableContext) -> dict[str, Any]:
    """The accessors of a batch with two successes and one failure."""

    def ok(ctx: DurableContext) -> str:
        return "ok"

    batch = context.parallel(
        [ok, fail, ok],
        name="accessors",
        config=sequential(CompletionConfig(tolerated_failure_count=1)),
    )
    return {
        "hasFailure": batch.has_failure,
        "successCount": len(batch.succeeded()),
        "failureCount": len(batch.failed()),
        "errorCount": len(batch.get_errors()),
    }


@requirement("8-22")
@durable_execution
def percentage_at_boundary(event: None, context: DurableContext) -> dict[str, Any]:
    """One failure of four is 25%, which a 25% tolerance still allows."""

    def ok(ctx: DurableContext) -> str:
        return "ok"

    batch = context.parallel(
        [fail, ok, ok, ok],
        name="pct-boundary",
        config=sequential(CompletionConfig(tolerated_failure_percentage=25)),
    )
    return summary(batch)
