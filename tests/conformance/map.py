"""Conformance handlers of the map suite: items, completion policies, serdes.

One durable handler per requirement id, declared with ``@requirement``.
Most run with ``max_concurrency=1``, so items run one after the other in
index order and the history is deterministic. A map function is called
as ``func(ctx, item, index, items)``; handlers that report on the batch
return a small projection of its :class:`BatchResult`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from durable_exec import (
    BatchItem,
    BatchItemStatus,
    BatchResult,
    CompletionConfig,
    CompletionReason,
    DurableContext,
    MapConfig,
    NestingType,
    SerDesContext,
    StepContext,
    durable_execution,
)
from durable_exec.testing.conformance import requirement

__all__ = [
    "custom_item_namer",
    "custom_item_serdes",
    "fail_fast",
    "failed_map_then_wait",
    "flat_items",
    "items_only",
    "large_results",
    "map_basic",
    "map_then_wait",
    "operation_serdes",
    "operation_serdes_replayed",
    "percentage_exceeded",
    "throw_if_error_fails_execution",
    "tolerated_count_exceeded",
    "tolerated_failure",
    "wait_inside_an_item",
]

ONE_AT_A_TIME = MapConfig(max_concurrency=1)


class ItemFailure(Exception):
    """What a failing item raises."""


def sequential(completion: CompletionConfig) -> MapConfig:
    """One item at a time, under ``completion``."""
    return MapConfig(max_concurrency=1, completion=completion)


def fail_on_request(
    ctx: DurableContext, item: str, index: int, items: Sequence[str]
) -> str:
    """Fails for the item ``"fail"``; returns any other item as it is."""
    if item == "fail":
        raise ItemFailure(f"item {index} fails")
    return item


def upper(ctx: DurableContext, item: str, index: int, items: Sequence[str]) -> str:
    """The item, upper-cased."""
    return item.upper()


def summary(batch: BatchResult[Any]) -> dict[str, Any]:
    """Why the batch stopped, its status, and its counts."""
    return {
        "completionReason": batch.completion_reason.value,
        "status": batch.status.value,
        "successCount": batch.success_count,
        "failureCount": batch.failure_count,
        "totalCount": batch.total_count,
    }


def early_stop(batch: BatchResult[Any]) -> dict[str, Any]:
    """Why the batch stopped, and its counts."""
    return {
        "completionReason": batch.completion_reason.value,
        "successCount": batch.success_count,
        "failureCount": batch.failure_count,
        "totalCount": batch.total_count,
    }


@requirement("9-1")
@durable_execution
def map_basic(event: list[str], context: DurableContext) -> list[str]:
    """Each item greets itself in one step."""

    def greet_item(
        ctx: DurableContext, item: str, index: int, items: Sequence[str]
    ) -> str:
        def greet(step: StepContext) -> str:
            return f"Hello, {item}!"

        return ctx.step(greet)

    batch = context.map(event, greet_item, name="map", config=ONE_AT_A_TIME)
    return batch.get_results()


@requirement("9-2")
@durable_execution
def items_only(event: list[int], context: DurableContext) -> list[int]:
    """An unnamed map that doubles each item directly."""

    def double(ctx: DurableContext, item: int, index: int, items: Sequence[int]) -> int:
        return item * 2

    return context.map(event, double, config=ONE_AT_A_TIME).get_results()


@requirement("9-5")
@durable_execution
def fail_fast(event: None, context: DurableContext) -> dict[str, Any]:
    """The first failure stops the map; the third item never starts."""
    batch = context.map(
        ["ok", "fail", "never"],
        fail_on_request,
        name="failfast",
        config=sequential(CompletionConfig(tolerated_failure_count=0)),
    )
    return summary(batch)


@requirement("9-6")
@durable_execution
def throw_if_error_fails_execution(event: None, context: DurableContext) -> Any:
    """A failed item, rethrown from the batch, fails the execution."""
    batch = context.map(
        ["fail", "never"],
        fail_on_request,
        name="throwing",
        config=sequential(CompletionConfig(tolerated_failure_count=0)),
    )
    batch.throw_if_error()
    return batch.get_results()


@requirement("9-8")
@durable_execution
def tolerated_failure(event: None, context: DurableContext) -> dict[str, Any]:
    """One failure within a tolerance of one: every item runs."""
    batch = context.map(
        ["ok", "fail", "ok"],
        fail_on_request,
        name="tolerated",
        config=sequential(CompletionConfig(tolerated_failure_count=1)),
    )
    return summary(batch)


@requirement("9-9")
@durable_execution
def tolerated_count_exceeded(event: None, context: DurableContext) -> dict[str, Any]:
    """A second failure exceeds a tolerance of one and stops the map."""
    batch = context.map(
        ["fail", "fail", "never"],
        fail_on_request,
        name="tolerated-exceeded",
        config=sequential(CompletionConfig(tolerated_failure_count=1)),
    )
    return early_stop(batch)


@requirement("9-10")
@durable_execution
def percentage_exceeded(event: None, context: DurableContext) -> dict[str, Any]:
    """Two failures of four items exceed a 25% tolerance."""
    batch = context.map(
        ["fail", "fail", "never", "never"],
        fail_on_request,
        name="tolerated-pct",
        config=sequential(CompletionConfig(tolerated_failure_percentage=25)),
    )
    return early_stop(batch)


@requirement("9-12")
@durable_execution
def flat_items(event: None, context: DurableContext) -> list[str]:
    """FLAT nesting: each item's step sits right under the map."""

    def echo_item(
        ctx: DurableContext, item: str, index: int, items: Sequence[str]
    ) -> str:
        def echo(step: StepContext) -> str:
            return item

        return ctx.step(echo)

    config = MapConfig(max_concurrency=1, nesting=NestingType.FLAT)
    batch = context.map(["fa", "fb"], echo_item, name="flat", config=config)
    return batch.get_results()


@requirement("9-13")
@durable_execution
def custom_item_namer(event: list[int], context: DurableContext) -> list[int]:
    """Each item's context is named after the item."""

    def times_ten(
        ctx: DurableContext, item: int, index: int, items: Sequence[int]
    ) -> int:
        return item * 10

    def name_item(item: int, index: int) -> str:
        return f"item-{item}"

    config = MapConfig(max_concurrency=1, item_namer=name_item)
    batch = context.map(event, times_ten, name="named-items", config=config)
    return batch.get_results()


class WrappedTextSerDes:
    """Checkpoints a string ``s`` as the raw text ``wrapped:s``."""

    def serialize(self, value: str, context: SerDesContext) -> str:
        return f"wrapped:{value}"

    def deserialize(self, payload: str, context: SerDesContext) -> str:
        return payload.removeprefix("wrapped:")


@requirement("9-14")
@durable_execution
def custom_item_serdes(event: None, context: DurableContext) -> list[str]:
    """Each item's result goes through a custom serdes and back."""
    config = MapConfig(max_concurrency=1, item_serdes=WrappedTextSerDes())
    return context.map(["x", "y"], upper, name="serdes", config=config).get_results()


@requirement("9-15")
@durable_execution
def wait_inside_an_item(event: None, context: DurableContext) -> list[str]:
    """The second item waits; replay skips the finished first one."""

    def wait_then_echo(
        ctx: DurableContext, item: str, index: int, items: Sequence[str]
    ) -> str:
        if index == 1:
            ctx.wait(1)

        def echo(step: StepContext) -> str:
            return item

        return ctx.step(echo)

    batch = context.map(
        ["r0", "r1"], wait_then_echo, name="suspend", config=ONE_AT_A_TIME
    )
    return batch.get_results()


@requirement("9-16")
@durable_execution
def large_results(event: None, context: DurableContext) -> dict[str, int]:
    """Four results of ~70 KB each make a map result over 256 KiB."""

    def large_string(
        ctx: DurableContext, item: str, index: int, items: Sequence[str]
    ) -> str:
        return item * 70_000

    batch = context.map(
        ["a", "b", "c", "d"], large_string, name="large", config=ONE_AT_A_TIME
    )
    return {
        "successCount": batch.success_count,
        "totalCount": batch.total_count,
    }


@requirement("9-17")
@durable_execution
def map_then_wait(event: None, context: DurableContext) -> list[str]:
    """A wait after a map; replay takes the map from its checkpoint."""
    batch = context.map(["a", "b"], upper, name="then-wait", config=ONE_AT_A_TIME)
    context.wait(1)
    return batch.get_results()


@requirement("9-18")
@durable_execution
def failed_map_then_wait(event: None, context: DurableContext) -> dict[str, Any]:
    """A wait after a map with a tolerated failure, not rethrown."""
    batch = context.map(
        ["ok", "fail"],
        fail_on_request,
        name="fail-then-wait",
        config=sequential(CompletionConfig(tolerated_failure_count=1)),
    )
    context.wait(1)
    return summary(batch)


class ResultListSerDes:
    """Checkpoints a whole map of strings as ``OPSERDE:`` and its results.

    Only for a map whose items all succeeded: the text keeps the results,
    comma-joined, and reads back as a batch of succeeded items.
    """

    def serialize(self, value: BatchResult[str], context: SerDesContext) -> str:
        return "OPSERDE:" + ",".join(value.get_results())

    def deserialize(self, payload: str, context: SerDesContext) -> BatchResult[str]:
        text = payload.removeprefix("OPSERDE:")
        results = text.split(",") if text else []
        items = tuple(
            BatchItem(index, BatchItemStatus.SUCCEEDED, result=result)
            for index, result in enumerate(results)
        )
        return BatchResult(items, CompletionReason.ALL_COMPLETED, kind="map")


@requirement("9-19")
@durable_execution
def operation_serdes(event: None, context: DurableContext) -> list[str]:
    """The whole map result is checkpointed through a custom serdes."""
    config = MapConfig(max_concurrency=1, serdes=ResultListSerDes())
    return context.map(["x", "y"], upper, name="op-serde", config=config).get_results()


@requirement("9-20")
@durable_execution
def operation_serdes_replayed(event: None, context: DurableContext) -> list[str]:
    """After a wait, the map is read back through its custom serdes."""
    config = MapConfig(max_concurrency=1, serdes=ResultListSerDes())
    batch = context.map(["x", "y"], upper, name="op-serde-replay", config=config)
    context.wait(1)
    return batch.get_results()
