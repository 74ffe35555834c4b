"""Bad parallel and map arguments fail at the call, before the batch is
checkpointed, with a message naming the parameter and the value."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from batch_helpers import events_of

from durable_exec import (
    CompletionConfig,
    DurableContext,
    MapConfig,
    ParallelBranch,
    ParallelConfig,
    ValidationError,
    durable_execution,
)
from durable_exec.local import LocalEngine
from durable_exec.wire import OperationType


def _ok(ctx: DurableContext) -> int:
    return ctx.step(lambda _: 1, name="ok")


def _item(ctx: DurableContext, item: int, index: int, items: Any) -> int:
    return ctx.step(lambda _: item, name="item")


def _parallel(config: Callable[[], ParallelConfig], count: int = 3) -> Any:
    return lambda ctx: ctx.parallel([_ok] * count, config=config())


def _map(config: Callable[[], MapConfig], count: int = 3) -> Any:
    return lambda ctx: ctx.map(list(range(count)), _item, config=config())


# (call made in the handler, substrings the message must hold)
CASES: dict[str, tuple[Callable[[DurableContext], Any], tuple[str, ...]]] = {
    "max_concurrency=0": (
        _parallel(lambda: ParallelConfig(max_concurrency=0)),
        ("max_concurrency", "(got 0)"),
    ),
    "max_concurrency=-1": (
        _parallel(lambda: ParallelConfig(max_concurrency=-1)),
        ("max_concurrency", "(got -1)"),
    ),
    "max_concurrency=True": (
        _parallel(lambda: ParallelConfig(max_concurrency=True)),
        ("max_concurrency", "(got True)"),
    ),
    "map max_concurrency=0": (
        _map(lambda: MapConfig(max_concurrency=0)),
        ("max_concurrency", "(got 0)"),
    ),
    "tolerated_failure_percentage=-1": (
        _parallel(
            lambda: ParallelConfig(
                completion=CompletionConfig(tolerated_failure_percentage=-1)
            )
        ),
        ("tolerated_failure_percentage", "(got -1)"),
    ),
    "tolerated_failure_percentage=101": (
        _parallel(
            lambda: ParallelConfig(
                completion=CompletionConfig(tolerated_failure_percentage=101)
            )
        ),
        ("tolerated_failure_percentage", "(got 101)"),
    ),
    "tolerated_failure_percentage=nan": (
        _parallel(
            lambda: ParallelConfig(
                completion=CompletionConfig(tolerated_failure_percentage=math.nan)
            )
        ),
        ("tolerated_failure_percentage", "(got nan)"),
    ),
    "min_successful=0": (
        _parallel(
            lambda: ParallelConfig(completion=CompletionConfig(min_successful=0))
        ),
        ("min_successful", "(got 0)"),
    ),
    "min_successful above branches": (
        _parallel(
            lambda: ParallelConfig(completion=CompletionConfig(min_successful=4))
        ),
        ("min_successful", "branches (3)", "(got 4)"),
    ),
    "min_successful above items": (
        _map(
            lambda: MapConfig(completion=CompletionConfig(min_successful=11)),
            count=10,
        ),
        ("min_successful", "items (10)", "(got 11)"),
    ),
    "min_successful with no branches": (
        lambda ctx: ctx.parallel(
            [],
            config=ParallelConfig(completion=CompletionConfig.first_successful()),
        ),
        ("min_successful", "branches (0)", "(got 1)"),
    ),
    "min_successful with should_complete": (
        _parallel(
            lambda: ParallelConfig(
                completion=CompletionConfig(
                    min_successful=1, should_complete=lambda progress: False
                )
            )
        ),
        ("should_complete", "min_successful"),
    ),
    "failure thresholds with should_complete": (
        _parallel(
            lambda: ParallelConfig(
                completion=CompletionConfig(
                    tolerated_failure_count=1,
                    tolerated_failure_percentage=10,
                    should_complete=lambda progress: False,
                )
            )
        ),
        (
            "should_complete",
            "tolerated_failure_count",
            "tolerated_failure_percentage",
        ),
    ),
    "should_complete not callable": (
        _parallel(
            lambda: ParallelConfig(completion=CompletionConfig(should_complete=3))  # type: ignore[arg-type]
        ),
        ("should_complete", "(got 3)"),
    ),
    "branch not callable": (
        lambda ctx: ctx.parallel([_ok, 42]),  # type: ignore[list-item]
        ("branch 1", "(got 42)"),
    ),
    "named branch not callable": (
        lambda ctx: ctx.parallel([ParallelBranch("second", "nope")]),  # type: ignore[arg-type]
        ("'second'", "func", "(got 'nope')"),
    ),
    "branches not a sequence": (
        lambda ctx: ctx.parallel(_ok),  # type: ignore[arg-type]
        ("branches", "_ok"),
    ),
    "items a set": (
        lambda ctx: ctx.map({1, 2, 3}, _item),  # type: ignore[arg-type]
        ("items", "set"),
    ),
    "items a generator": (
        lambda ctx: ctx.map((i for i in range(3)), _item),  # type: ignore[arg-type]
        ("items", "generator"),
    ),
    "items a string": (
        lambda ctx: ctx.map("abc", _item),  # type: ignore[arg-type]
        ("items", "str"),
    ),
    "map func not callable": (
        lambda ctx: ctx.map([1, 2], "func"),  # type: ignore[arg-type]
        ("func", "(got 'func')"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_argument_fails_before_the_batch_is_checkpointed(
    local: LocalEngine, case: str
) -> None:
    """A bad argument raises ValidationError naming it; no batch starts."""
    call, expected = CASES[case]

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        ctx.step(lambda _: "before", name="before")
        try:
            call(ctx)
        except ValidationError as error:
            return {
                "message": str(error),
                "value_error": isinstance(error, ValueError),
            }
        return {"message": None}

    result = local.run(handler)

    assert result.succeeded, result.error
    message = result.result["message"]
    assert message is not None, "no ValidationError was raised"
    for part in expected:
        assert part in message
    assert result.result["value_error"]
    assert events_of(result.history, "ContextStarted") == []
    assert [op.type for op in result.operations] == [
        OperationType.EXECUTION,
        OperationType.STEP,
    ]
