"""Conformance handlers of the step suite: steps, retries, serdes.

One durable handler per requirement id, declared with ``@requirement``.
Steps that must fail a given number of times count on
``StepContext.attempt``, which the SDK keeps across invocations.
"""

from __future__ import annotations

import os

from durable_exec import (
    DurableContext,
    RetryDecision,
    RetryPresets,
    RetryStrategy,
    SerDesContext,
    StepConfig,
    StepContext,
    StepError,
    StepSemantics,
    durable_execution,
)
from durable_exec.testing.conformance import first_run, requirement

__all__ = [
    "at_most_once_step_survives_crash",
    "caught_step_error_falls_back",
    "custom_retry_delays",
    "default_retry_strategy",
    "failed_step_replays_its_error",
    "named_step",
    "non_retryable_error_fails",
    "null_step_result",
    "retry_exhaustion",
    "retry_on_transient_error",
    "sequential_steps",
    "step_and_wait",
    "step_basic",
    "step_fails_without_retry",
    "step_retries_once",
    "uppercase_serdes_step",
]

NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())


class TransientError(Exception):
    """A failure worth retrying."""


class UpperCaseSerDes:
    """Checkpoints a string upper-cased, as raw text."""

    def serialize(self, value: str, context: SerDesContext) -> str:
        return value.upper()

    def deserialize(self, payload: str, context: SerDesContext) -> str:
        return payload


@requirement("1-1")
@durable_execution
def step_basic(event: str, context: DurableContext) -> str:
    """One step that greets the input."""

    def greet(step: StepContext) -> str:
        return f"Hello, {event}!"

    return context.step(greet)


@requirement("1-2")
@durable_execution
def named_step(event: str, context: DurableContext) -> str:
    """One step with an explicit name."""

    def greet(step: StepContext) -> str:
        return f"Hello, {event}!"

    return context.step(greet, name="custom_step_name")


@requirement("1-3")
@durable_execution
def sequential_steps(event: None, context: DurableContext) -> str:
    """Two steps; the second builds on the first's result."""

    def step_one(step: StepContext) -> str:
        return "first"

    first = context.step(step_one)

    def step_two(step: StepContext) -> str:
        return f"{first}_second"

    return context.step(step_two)


@requirement("1-5")
@durable_execution
def null_step_result(event: None, context: DurableContext) -> None:
    """A step that returns nothing."""

    def do_nothing(step: StepContext) -> None:
        return None

    return context.step(do_nothing)


@requirement("1-6")
@durable_execution
def uppercase_serdes_step(event: str, context: DurableContext) -> str:
    """A step whose result is checkpointed by an upper-casing serdes."""

    def return_input(step: StepContext) -> str:
        return event

    return context.step(return_input, config=StepConfig(serdes=UpperCaseSerDes()))


@requirement("1-8")
@durable_execution
def step_and_wait(event: None, context: DurableContext) -> str:
    """A step, then a wait; replay must not run the step again."""

    def compute(step: StepContext) -> str:
        return "computed"

    result = context.step(compute)
    context.wait(2)
    return result


@requirement("1-10")
@durable_execution
def failed_step_replays_its_error(event: None, context: DurableContext) -> str:
    """A failed step, caught, then a wait: replay re-raises the error."""

    def always_fails(step: StepContext) -> str:
        step.logger.info("step executed")
        raise RuntimeError("this step always fails")

    try:
        context.step(always_fails, config=NO_RETRY)
    except StepError as error:
        context.logger.info("caught %s", error.error_type)
    context.wait(1)
    return "done"


@requirement("1-11")
@durable_execution
def step_retries_once(event: None, context: DurableContext) -> str:
    """A step that fails once, then succeeds on its retry."""

    def unreliable(step: StepContext) -> str:
        if step.attempt == 1:
            raise RuntimeError("first attempt fails")
        return "Operation succeeded"

    retry = RetryStrategy.exponential(max_attempts=3, initial_delay=1, jitter="NONE")
    return context.step(unreliable, config=StepConfig(retry_strategy=retry))


@requirement("1-12")
@durable_execution
def retry_exhaustion(event: None, context: DurableContext) -> str:
    """A step that always fails, with 4 attempts 1 s apart."""

    def always_fail(step: StepContext) -> str:
        raise RuntimeError(f"attempt {step.attempt} failed")

    retry = RetryStrategy.exponential(
        max_attempts=4, initial_delay=1, backoff_rate=1, jitter="NONE"
    )
    return context.step(always_fail, config=StepConfig(retry_strategy=retry))


@requirement("1-13")
@durable_execution
def default_retry_strategy(event: None, context: DurableContext) -> str:
    """A step that fails twice, retried by the default strategy."""

    def unreliable(step: StepContext) -> str:
        if step.attempt < 3:
            raise RuntimeError(f"attempt {step.attempt} fails")
        return "succeeded on third attempt"

    return context.step(unreliable)


@requirement("1-14")
@durable_execution
def custom_retry_delays(event: None, context: DurableContext) -> str:
    """A step that fails twice, retried after 2 s, then 6 s."""

    def unreliable(step: StepContext) -> str:
        if step.attempt < 3:
            raise RuntimeError(f"attempt {step.attempt} fails")
        return "succeeded on third attempt"

    retry = RetryStrategy.exponential(
        max_attempts=5, initial_delay=2, backoff_rate=3, jitter="NONE"
    )
    return context.step(unreliable, config=StepConfig(retry_strategy=retry))


@requirement("1-15")
@durable_execution
def retry_on_transient_error(event: None, context: DurableContext) -> str:
    """A TransientError is retried by a strategy that retries only it."""

    def flaky(step: StepContext) -> str:
        if step.attempt == 1:
            raise TransientError("the service is briefly unavailable")
        return "recovered"

    retry_on_transient = RetryStrategy.exponential(
        max_attempts=3,
        initial_delay=1,
        jitter="NONE",
        retryable_error_types=[TransientError],
    )
    return context.step(flaky, config=StepConfig(retry_strategy=retry_on_transient))


def no_retry_on_transient_error(error: BaseException, attempt: int) -> RetryDecision:
    """Retry anything but a TransientError, up to 3 attempts."""
    if isinstance(error, TransientError) or attempt >= 3:
        return RetryDecision.stop()
    return RetryDecision.retry(1)


@requirement("1-16")
@durable_execution
def non_retryable_error_fails(event: None, context: DurableContext) -> str:
    """A TransientError that the strategy declines fails the step."""

    def flaky(step: StepContext) -> str:
        raise TransientError("the service is briefly unavailable")

    return context.step(
        flaky, config=StepConfig(retry_strategy=no_retry_on_transient_error)
    )


@requirement("1-18", crash=True)
@durable_execution
def at_most_once_step_survives_crash(event: str, context: DurableContext) -> str:
    """An at-most-once step whose first attempt kills the process."""
    arn = context.durable_execution_arn

    def fragile(step: StepContext) -> str:
        step.logger.info("processing %s", event)
        if first_run(arn, "crash"):
            os._exit(1)
        return "succeeded on second attempt"

    config = StepConfig(
        semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
        retry_strategy=RetryStrategy.exponential(
            max_attempts=3, initial_delay=1, jitter="NONE"
        ),
    )
    return context.step(fragile, config=config)


@requirement("1-19")
@durable_execution
def step_fails_without_retry(event: None, context: DurableContext) -> str:
    """A step that always fails, with no retry."""

    def failing(step: StepContext) -> str:
        raise RuntimeError("this step always fails")

    return context.step(failing, config=NO_RETRY)


@requirement("1-20")
@durable_execution
def caught_step_error_falls_back(event: None, context: DurableContext) -> str:
    """A failed step is caught, and a second step supplies a fallback."""

    def failing(step: StepContext) -> str:
        raise RuntimeError("this step always fails")

    def fallback(step: StepContext) -> str:
        return "fallback_result"

    try:
        return context.step(failing, config=NO_RETRY)
    except StepError:
        return context.step(fallback)
