"""Conformance handlers of the child suite: child contexts.

One durable handler per requirement id, declared with ``@requirement``.
Child functions and steps are named functions, so the history names
them.
"""

from __future__ import annotations

import os
from typing import Any

from durable_exec import (
    ChildConfig,
    ChildContextError,
    DurableContext,
    RetryPresets,
    RetryStrategy,
    SerDesContext,
    StepConfig,
    StepContext,
    durable_execution,
)
from durable_exec.testing.conformance import first_run, requirement

__all__ = [
    "child_basic",
    "child_error_caught",
    "child_error_fails_execution",
    "child_raises_directly",
    "child_retry_exhausted",
    "child_returns_null",
    "child_step_crashes_once",
    "child_step_retries",
    "child_with_sequential_steps",
    "child_with_step_and_wait",
    "child_with_wait_then_step",
    "named_child",
    "nested_children",
    "uppercase_serdes_child",
]

NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())


class UpperCaseSerDes:
    """Checkpoints a string upper-cased, as raw text."""

    def serialize(self, value: str, context: SerDesContext) -> str:
        return value.upper()

    def deserialize(self, payload: str, context: SerDesContext) -> str:
        return payload


@requirement("3-1")
@durable_execution
def child_basic(event: str, context: DurableContext) -> str:
    """A child context holding one step that returns the input."""

    def echo(step: StepContext) -> str:
        return event

    def process(child: DurableContext) -> str:
        return child.step(echo)

    return context.run_in_child_context(process)


@requirement("3-2")
@durable_execution
def named_child(event: dict[str, str], context: DurableContext) -> str:
    """A child context named by the input, holding one step."""

    def echo_value(step: StepContext) -> str:
        return event["value"]

    def process(child: DurableContext) -> str:
        return child.step(echo_value)

    return context.run_in_child_context(process, name=event["name"])


@requirement("3-3")
@durable_execution
def child_with_sequential_steps(event: str, context: DurableContext) -> str:
    """A child context whose second step takes the first one's result."""

    def process(child: DurableContext) -> str:
        def first(step: StepContext) -> str:
            return event

        result = child.step(first)

        def second(step: StepContext) -> str:
            return result

        return child.step(second)

    return context.run_in_child_context(process)


@requirement("3-4")
@durable_execution
def child_error_fails_execution(event: None, context: DurableContext) -> str:
    """A step failing inside a child context fails the execution."""

    def failing(step: StepContext) -> str:
        raise RuntimeError("the step inside the child fails")

    def process(child: DurableContext) -> str:
        return child.step(failing, config=NO_RETRY)

    return context.run_in_child_context(process)


@requirement("3-5")
@durable_execution
def child_error_caught(event: str, context: DurableContext) -> str:
    """A failed child context is caught and a recovery step follows."""

    def failing(step: StepContext) -> str:
        raise RuntimeError("the step inside the child fails")

    def process(child: DurableContext) -> str:
        return child.step(failing, config=NO_RETRY)

    def recover(step: StepContext) -> str:
        return event

    try:
        return context.run_in_child_context(process)
    except ChildContextError:
        return context.step(recover)


@requirement("3-6")
@durable_execution
def nested_children(event: str, context: DurableContext) -> str:
    """A child context holding a step and another child context."""

    def echo(step: StepContext) -> str:
        return event

    def inner(child: DurableContext) -> str:
        return child.step(echo)

    def outer(child: DurableContext) -> str:
        child.step(echo)
        return child.run_in_child_context(inner)

    return context.run_in_child_context(outer)


@requirement("3-7")
@durable_execution
def child_step_retries(event: str, context: DurableContext) -> str:
    """A step in a child context fails once, then succeeds on retry."""

    def unreliable(step: StepContext) -> str:
        if step.attempt == 1:
            raise RuntimeError("first attempt fails")
        return event

    retry = StepConfig(
        retry_strategy=RetryStrategy.exponential(
            max_attempts=3, initial_delay=1, jitter="NONE"
        )
    )

    def process(child: DurableContext) -> str:
        return child.step(unreliable, config=retry)

    return context.run_in_child_context(process)


@requirement("3-8")
@durable_execution
def child_retry_exhausted(event: None, context: DurableContext) -> str:
    """A step in a child context fails both its attempts."""

    def always_fail(step: StepContext) -> str:
        raise RuntimeError(f"attempt {step.attempt} failed")

    retry = StepConfig(
        retry_strategy=RetryStrategy.exponential(
            max_attempts=2, initial_delay=1, jitter="NONE"
        )
    )

    def process(child: DurableContext) -> str:
        return child.step(always_fail, config=retry)

    return context.run_in_child_context(process)


@requirement("3-10")
@durable_execution
def child_with_step_and_wait(event: str, context: DurableContext) -> str:
    """A child context holding a step, then a wait."""

    def echo(step: StepContext) -> str:
        return event

    def process(child: DurableContext) -> str:
        result = child.step(echo)
        child.wait(1)
        return result

    return context.run_in_child_context(process)


@requirement("3-12", crash=True)
@durable_execution
def child_step_crashes_once(event: str, context: DurableContext) -> str:
    """A step in a child context kills the process once; it runs again."""
    arn = context.durable_execution_arn

    def fragile(step: StepContext) -> str:
        if first_run(arn, "crash"):
            os._exit(1)
        return event

    def process(child: DurableContext) -> str:
        return child.step(fragile)

    return context.run_in_child_context(process)


@requirement("3-13")
@durable_execution
def child_with_wait_then_step(event: str, context: DurableContext) -> str:
    """A child context holding only a wait, then a step outside it."""

    def pause(child: DurableContext) -> str:
        child.wait(1)
        return event

    def echo(step: StepContext) -> str:
        return event

    context.run_in_child_context(pause)
    return context.step(echo)


@requirement("3-14")
@durable_execution
def uppercase_serdes_child(event: str, context: DurableContext) -> str:
    """A child context whose result an upper-casing serdes checkpoints."""

    def echo(step: StepContext) -> str:
        return event

    def process(child: DurableContext) -> str:
        return child.step(echo)

    return context.run_in_child_context(
        process, config=ChildConfig(serdes=UpperCaseSerDes())
    )


@requirement("3-15")
@durable_execution
def child_raises_directly(event: None, context: DurableContext) -> str:
    """A child context that raises before any durable operation."""

    def process(child: DurableContext) -> str:
        raise ValueError("the child fails on its own")

    return context.run_in_child_context(process)


@requirement("3-16")
@durable_execution
def child_returns_null(event: None, context: DurableContext) -> Any:
    """A child context that returns nothing."""

    def process(child: DurableContext) -> None:
        return None

    return context.run_in_child_context(process)
