"""Conformance handlers of the wait_for_callback suite: a callback whose id
a submitter step hands to the outside world.

One durable handler per requirement id, declared with ``@requirement``.
The harness plays each file's ``CallbackActions``; the submitters here
only note the callback id in the log, as a real one would send it on.
"""

from __future__ import annotations

from typing import Any

from durable_exec import (
    CallbackError,
    CallbackTimeoutError,
    DurableContext,
    Duration,
    RetryStrategy,
    StepContext,
    WaitForCallbackConfig,
    durable_execution,
)
from durable_exec.testing.conformance import requirement

__all__ = [
    "anonymous_wait_for_callback",
    "approval",
    "caught_rejection",
    "caught_timeout",
    "heartbeat_then_success",
    "heartbeat_timeout",
    "rejected",
    "sequential_waits_for_callbacks",
    "submitter_retries_exhausted",
    "wait_and_step_then_callback",
    "wait_for_callback_basic",
    "wait_for_callback_in_child",
]


def submit(callback_id: str, step: StepContext) -> None:
    """Hands the callback id on; here, to the log."""
    step.logger.info("waiting for callback %s", callback_id)


class SubmitFailed(Exception):
    """What a failing submitter raises."""


def submit_failing(callback_id: str, step: StepContext) -> None:
    """A submitter whose system is down on every attempt."""
    raise SubmitFailed(f"cannot hand on callback {callback_id}")


@requirement("7-1")
@durable_execution
def wait_for_callback_basic(event: str, context: DurableContext) -> Any:
    """Named after the input; returns the callback's answer."""
    return context.wait_for_callback(submit, name=event)


@requirement("7-2")
@durable_execution
def approval(event: None, context: DurableContext) -> Any:
    """An explicit static name."""
    return context.wait_for_callback(submit, name="approval")


@requirement("7-3")
@durable_execution
def anonymous_wait_for_callback(event: None, context: DurableContext) -> Any:
    """An inline submitter and no name."""
    return context.wait_for_callback(lambda callback_id, step: None)


@requirement("7-4")
@durable_execution
def rejected(event: str, context: DurableContext) -> Any:
    """The answer is a failure, which the handler lets fail it."""
    return context.wait_for_callback(submit, name=event)


@requirement("7-6")
@durable_execution
def caught_rejection(event: str, context: DurableContext) -> Any:
    """The answer is a failure; the handler catches it and recovers."""
    try:
        return context.wait_for_callback(submit, name=event)
    except CallbackError:
        return "recovered"


@requirement("7-7")
@durable_execution
def submitter_retries_exhausted(event: str, context: DurableContext) -> Any:
    """The submitter fails twice, one second apart; then the operation
    fails without its callback ever being answered."""
    twice = RetryStrategy.exponential(max_attempts=2, initial_delay=1, jitter="NONE")
    return context.wait_for_callback(
        submit_failing,
        name=event,
        config=WaitForCallbackConfig(retry_strategy=twice),
    )


@requirement("7-8")
@durable_execution
def wait_for_callback_in_child(event: str, context: DurableContext) -> Any:
    """The operation runs inside a child context named "wrapper"."""
    return context.run_in_child_context(
        lambda child: child.wait_for_callback(submit, name=event),
        name="wrapper",
    )


@requirement("7-9")
@durable_execution
def sequential_waits_for_callbacks(event: None, context: DurableContext) -> Any:
    """Two operations, each answered in its own invocation."""
    context.wait_for_callback(submit, name="first")
    return context.wait_for_callback(submit, name="second")


@requirement("7-10")
@durable_execution
def wait_and_step_then_callback(event: str, context: DurableContext) -> Any:
    """A wait and a step come before the operation."""
    context.wait(Duration.from_seconds(1))
    context.step(lambda _: {"prepared": True}, name="prepare")
    return context.wait_for_callback(submit, name=event)


@requirement("7-12")
@durable_execution
def heartbeat_timeout(event: str, context: DurableContext) -> Any:
    """No heartbeat comes within five seconds: the execution fails."""
    config = WaitForCallbackConfig(heartbeat_timeout=Duration.from_seconds(5))
    return context.wait_for_callback(submit, name=event, config=config)


@requirement("7-13")
@durable_execution
def heartbeat_then_success(event: str, context: DurableContext) -> Any:
    """A heartbeat keeps the callback alive until its answer comes."""
    config = WaitForCallbackConfig(heartbeat_timeout=Duration.from_seconds(10))
    return context.wait_for_callback(submit, name=event, config=config)


@requirement("7-14")
@durable_execution
def caught_timeout(event: str, context: DurableContext) -> Any:
    """Nobody answers within three seconds; the handler recovers."""
    config = WaitForCallbackConfig(timeout=Duration.from_seconds(3))
    try:
        return context.wait_for_callback(submit, name=event, config=config)
    except CallbackTimeoutError:
        return "timed-out-handled"
