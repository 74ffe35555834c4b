"""Conformance handlers of the wait_for_condition suite: polling a check
with a wait strategy.

One durable handler per requirement id, declared with ``@requirement``.
Each check gets the state the previous one returned; the strategies wait
one second between checks.
"""

from __future__ import annotations

from typing import Any

from durable_exec import (
    DurableContext,
    SerDesContext,
    StepContext,
    WaitDecision,
    WaitForConditionConfig,
    WaitForConditionError,
    WaitStrategy,
    durable_execution,
)
from durable_exec.testing.conformance import requirement

__all__ = [
    "caught_failing_check",
    "condition_already_met",
    "condition_never_met",
    "condition_then_step",
    "custom_initial_state",
    "custom_state_serdes",
    "failing_check",
    "null_state",
    "object_state",
    "sequential_conditions",
]


def increment(state: int, step: StepContext) -> int:
    """A check that counts its own runs in the state."""
    return state + 1


def at_least(threshold: int) -> WaitStrategy:
    """Check every second until the state reaches ``threshold``."""
    return WaitStrategy.fixed(1, until=lambda state: state >= threshold)


class CheckFailed(Exception):
    """What a failing check raises."""


def failing(state: Any, step: StepContext) -> Any:
    """A check that raises on its first run."""
    raise CheckFailed("the service to poll is down")


@requirement("6-2")
@durable_execution
def condition_already_met(event: int, context: DurableContext) -> int:
    """The input is already at the threshold: one check, no suspension."""
    config = WaitForConditionConfig(wait_strategy=at_least(5), initial_state=event)
    result: int = context.wait_for_condition(lambda state, step: state, config)
    return result


@requirement("6-4")
@durable_execution
def custom_initial_state(event: int, context: DurableContext) -> int:
    """Counts from 5 up to the input, one check per invocation."""
    config = WaitForConditionConfig(wait_strategy=at_least(event), initial_state=5)
    result: int = context.wait_for_condition(increment, config)
    return result


@requirement("6-6")
@durable_execution
def condition_never_met(event: int, context: DurableContext) -> int:
    """The condition never holds; the third check is the last allowed."""
    never = WaitStrategy.fixed(1, until=lambda state: False, max_attempts=3)
    config = WaitForConditionConfig(wait_strategy=never, initial_state=event)
    result: int = context.wait_for_condition(increment, config)
    return result


@requirement("6-7")
@durable_execution
def failing_check(event: None, context: DurableContext) -> Any:
    """The first check raises; the handler lets the error fail it."""
    config = WaitForConditionConfig(wait_strategy=at_least(1), initial_state=0)
    return context.wait_for_condition(failing, config)


@requirement("6-8")
@durable_execution
def caught_failing_check(event: None, context: DurableContext) -> Any:
    """The first check raises; the handler catches it and recovers."""
    config = WaitForConditionConfig(wait_strategy=at_least(1), initial_state=0)
    try:
        return context.wait_for_condition(failing, config)
    except WaitForConditionError:
        return "recovered"


@requirement("6-9")
@durable_execution
def object_state(event: None, context: DurableContext) -> dict[str, Any]:
    """The state is a mapping; the poll ends once its status is DONE."""

    def poll(state: dict[str, Any], step: StepContext) -> dict[str, Any]:
        attempts = state["attempts"] + 1
        status = "DONE" if attempts >= 2 else "PENDING"
        return {"status": status, "attempts": attempts}

    config = WaitForConditionConfig(
        wait_strategy=WaitStrategy.fixed(
            1, until=lambda state: state["status"] != "PENDING"
        ),
        initial_state={"status": "PENDING", "attempts": 0},
    )
    result: dict[str, Any] = context.wait_for_condition(poll, config)
    return result


def stop_at_once(state: Any, attempt: int) -> WaitDecision:
    """A wait strategy that is satisfied by the first check."""
    return WaitDecision.stop()


@requirement("6-10")
@durable_execution
def null_state(event: None, context: DurableContext) -> Any:
    """The check returns null, and the first check ends the poll."""
    config = WaitForConditionConfig(wait_strategy=stop_at_once)
    return context.wait_for_condition(lambda state, step: None, config)


class TaggedText:
    """Checkpoints a string state as ``state:<text>``."""

    prefix = "state:"

    def serialize(self, value: str, context: SerDesContext) -> str:
        return self.prefix + value

    def deserialize(self, payload: str, context: SerDesContext) -> str:
        if not payload.startswith(self.prefix):
            raise ValueError(f"not a tagged state: {payload!r}")
        return payload[len(self.prefix) :]


@requirement("6-11")
@durable_execution
def custom_state_serdes(event: None, context: DurableContext) -> str:
    """The state survives suspension through a custom serdes."""
    config = WaitForConditionConfig(
        wait_strategy=WaitStrategy.fixed(1, until=lambda state: len(state) >= 2),
        initial_state="",
        serdes=TaggedText(),
    )
    result: str = context.wait_for_condition(lambda state, step: state + "x", config)
    return result


@requirement("6-12")
@durable_execution
def condition_then_step(event: int, context: DurableContext) -> int:
    """The final state feeds a step that multiplies it by ten."""
    config = WaitForConditionConfig(wait_strategy=at_least(event), initial_state=0)
    reached: int = context.wait_for_condition(increment, config)
    return context.step(lambda _: reached * 10, name="multiply")


@requirement("6-13")
@durable_execution
def sequential_conditions(event: None, context: DurableContext) -> int:
    """Two polls, the first one's result seeding the second."""
    first: int = context.wait_for_condition(
        increment,
        WaitForConditionConfig(wait_strategy=at_least(2), initial_state=0),
        name="to-two",
    )
    second: int = context.wait_for_condition(
        increment,
        WaitForConditionConfig(wait_strategy=at_least(4), initial_state=first),
        name="to-four",
    )
    return second
