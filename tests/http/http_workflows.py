"""Workflows the HTTP tests serve, and what each should return.

Each covers one kind of durable operation. They are module-level so that
the server, the in-process runner and the CLI load the same objects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from durable_exec import (
    CallbackTimeoutError,
    CompletionConfig,
    DurableContext,
    Duration,
    JitterStrategy,
    MapConfig,
    ParallelConfig,
    RetryStrategy,
    StepConfig,
    StepContext,
    WaitForCallbackConfig,
    WaitForConditionConfig,
    WaitStrategy,
    durable_execution,
)


@durable_execution
def steps(event: dict[str, Any], context: DurableContext) -> int:
    """Squares 0..count-1 in one step each and sums them."""
    total = 0
    for index in range(event.get("count", 3)):
        total += context.step(lambda _, i=index: i * i, name="square")
    return total


class Flaky(Exception):
    """What the flaky step raises on its first attempt."""


def _flaky(step: StepContext) -> str:
    if step.attempt < 2:
        raise Flaky(f"attempt {step.attempt} fails")
    return f"worked on attempt {step.attempt}"


_RETRY = StepConfig(
    retry_strategy=RetryStrategy.exponential(
        max_attempts=3, initial_delay=2, jitter=JitterStrategy.NONE
    )
)


@durable_execution
def retrying(event: Any, context: DurableContext) -> str:
    """A step that fails once, then succeeds after a 2 s retry delay."""
    return str(context.step(_flaky, name="flaky", config=_RETRY))


@durable_execution
def waiting(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """A step, a day's wait, a child context of two steps."""
    first = context.step(lambda _: "before", name="before")
    context.wait(Duration.from_seconds(86_400), name="a-day")

    def child(inner: DurableContext) -> list[str]:
        return [
            inner.step(lambda _: "in", name="in-child"),
            inner.step(lambda _: "side", name="also-in-child"),
        ]

    return {"first": first, "child": context.run_in_child_context(child, name="kid")}


def _branch(value: int) -> Any:
    def run(context: DurableContext) -> int:
        context.wait(Duration.from_seconds(value + 1), name=f"nap-{value}")
        return int(context.step(lambda _: value * 10, name=f"work-{value}"))

    return run


@durable_execution
def parallel(event: Any, context: DurableContext) -> list[int]:
    """Three branches, each a wait and a step, two at a time."""
    batch = context.parallel(
        [_branch(0), _branch(1), _branch(2)],
        name="fan-out",
        config=ParallelConfig(max_concurrency=2),
    )
    return list(batch.get_results())


@durable_execution
def mapping(event: dict[str, Any], context: DurableContext) -> list[int]:
    """Doubles each item in a step of its own; all items complete."""

    def double(inner: DurableContext, item: int, index: int, items: Any) -> int:
        return int(inner.step(lambda _: item * 2, name="double"))

    batch = context.map(
        event["items"],
        double,
        name="doubles",
        config=MapConfig(
            max_concurrency=3, completion=CompletionConfig.all_completed()
        ),
    )
    return list(batch.get_results())


@durable_execution
def polling(event: Any, context: DurableContext) -> int:
    """Counts up once a second until 3."""
    config = WaitForConditionConfig(
        wait_strategy=WaitStrategy.fixed(1, until=lambda state: state >= 3),
        initial_state=0,
    )
    return int(context.wait_for_condition(lambda state, _: state + 1, config))


@durable_execution
def approval(event: Any, context: DurableContext) -> dict[str, Any]:
    """Waits for a callback, the id handed to a step; returns the answer."""
    answer = context.wait_for_callback(
        lambda callback_id, _: callback_id, name="approve"
    )
    return {"answer": answer}


@durable_execution
def impatient(event: Any, context: DurableContext) -> str:
    """Gives a callback 30 s, with heartbeats due every 10 s."""
    config = WaitForCallbackConfig(
        timeout=Duration.from_seconds(30),
        heartbeat_timeout=Duration.from_seconds(10),
    )
    try:
        context.wait_for_callback(lambda _id, _: None, name="quick", config=config)
    except CallbackTimeoutError as error:
        return f"gave up: {error.error_type}"
    return "answered"


@durable_execution
def two_callbacks(event: Any, context: DurableContext) -> list[Any]:
    """Creates two callbacks, then waits for both answers."""
    first = context.create_callback(name="first")
    second = context.create_callback(name="second")
    return [first.result(), second.result()]


@durable_execution
def caller(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """Invokes the durable ``callee`` and the plain ``echo``."""
    durable = context.invoke("callee", {"n": event.get("n", 1)}, name="durable")
    plain = context.invoke("echo", {"said": "hi"}, name="plain")
    return {"durable": durable, "plain": plain}


@durable_execution
def callee(event: dict[str, Any], context: DurableContext) -> int:
    """Waits a minute, then adds one in a step."""
    context.wait(Duration.from_seconds(60), name="think")
    return int(context.step(lambda _: event["n"] + 1, name="add-one"))


@durable_execution
def waiting_caller(event: Any, context: DurableContext) -> Any:
    """Invokes ``approval``, which waits for a callback."""
    return context.invoke("approval", None, name="delegate")


# Set by ``sleeper`` once its first invocation is under way.
SLEEPER_STARTED = threading.Event()


@durable_execution
def sleeper(event: Any, context: DurableContext) -> str:
    """Signals, then waits a day."""
    context.step(lambda _: SLEEPER_STARTED.set(), name="signal")
    context.wait(Duration.from_seconds(86_400), name="a-day")
    return "rested"


# Called with the execution's ARN from the first step of ``interrupted``.
INTERRUPT: list[Callable[[str], Any]] = []


@durable_execution
def interrupted(event: Any, context: DurableContext) -> str:
    """Its first step runs the INTERRUPT hooks; then a second step."""
    arn = context.durable_execution_arn
    context.step(lambda _: [hook(arn) for hook in INTERRUPT] and None, name="hook")
    context.step(lambda _: "after", name="after")
    return "finished"


def echo(event: Any, context: Any) -> Any:
    """A plain Lambda function: returns its event."""
    return event


def explode(event: Any, context: Any) -> Any:
    """A plain Lambda function that raises."""
    raise RuntimeError("plain failure")


class Refused(Exception):
    """What ``failing`` raises."""


@durable_execution
def failing(event: Any, context: DurableContext) -> Any:
    """A step succeeds, then the workflow raises."""
    context.step(lambda _: "fine", name="fine")
    raise Refused("the order is refused")


FUNCTIONS: dict[str, Any] = {
    "steps": steps,
    "retrying": retrying,
    "waiting": waiting,
    "parallel": parallel,
    "mapping": mapping,
    "polling": polling,
    "approval": approval,
    "impatient": impatient,
    "two-callbacks": two_callbacks,
    "caller": caller,
    "callee": callee,
    "waiting-caller": waiting_caller,
    "sleeper": sleeper,
    "interrupted": interrupted,
    "echo": echo,
    "explode": explode,
    "failing": failing,
}

# Workflows that run to the end by themselves: name, input, result.
SELF_CONTAINED: list[tuple[str, Any, Any]] = [
    ("steps", {"count": 4}, 0 + 1 + 4 + 9),
    ("retrying", None, "worked on attempt 2"),
    ("waiting", {}, {"first": "before", "child": ["in", "side"]}),
    ("parallel", None, [0, 10, 20]),
    ("mapping", {"items": [1, 2, 3, 4, 5]}, [2, 4, 6, 8, 10]),
    ("polling", None, 3),
    ("caller", {"n": 41}, {"durable": 42, "plain": {"said": "hi"}}),
]
