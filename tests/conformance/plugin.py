"""Conformance handlers of the plugin suite: instrumentation hooks.

The plugins here print one JSON object per hook to plain stdout, which
the harness collects with the workflow's log lines. Each record carries
``durableExecutionArn``: the ARN the plugin took from the last
invocation-start hook, so a plugin instance serves one invocation at a
time, as the harness runs them.
"""

from __future__ import annotations

import json
from typing import Any

from durable_exec import (
    DurableContext,
    RetryPresets,
    RetryStrategy,
    StepConfig,
    StepContext,
    durable_execution,
)
from durable_exec.plugins import (
    AttemptEndInfo,
    AttemptStartInfo,
    InvocationEndInfo,
    InvocationStartInfo,
    OperationEndInfo,
    OperationStartInfo,
    Plugin,
)
from durable_exec.testing.conformance import requirement
from durable_exec.wire import OperationType

__all__ = [
    "attempt_hooks_under_retry",
    "faulty_plugin_is_ignored",
    "first_flag_across_replay",
    "invocation_hooks",
    "terminal_failure_is_seen",
    "two_plugins",
]


class PrintingPlugin(Plugin):
    """Prints a JSON record per hook, stamped with the execution's ARN."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.arn: str | None = None

    def emit(self, hook: str, **fields: Any) -> None:
        record = {"plugin": self.label, "hook": hook, **fields}
        record["durableExecutionArn"] = self.arn
        print(json.dumps(record), flush=True)

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        self.arn = info.durable_execution_arn
        self.emit("invocation-start", first=info.is_first_invocation)

    def on_invocation_end(self, info: InvocationEndInfo) -> None:
        self.emit("invocation-end", status=info.status)


class AttemptPrintingPlugin(PrintingPlugin):
    """Adds a record per attempt of a STEP operation."""

    def on_attempt_start(self, info: AttemptStartInfo) -> None:
        if info.operation_type is OperationType.STEP:
            self.emit("attempt-start", n=info.attempt, op=info.operation_id)

    def on_attempt_end(self, info: AttemptEndInfo) -> None:
        if info.operation_type is OperationType.STEP:
            self.emit(
                "attempt-end",
                n=info.attempt,
                outcome=info.outcome,
                op=info.operation_id,
            )


class FaultyPlugin(Plugin):
    """Every hook prints its record, then raises."""

    label = "CONFPLUGIN-FAULTY"

    def __init__(self) -> None:
        self.arn: str | None = None

    def fail(self, hook: str) -> None:
        record = {
            "plugin": self.label,
            "hook": hook,
            "durableExecutionArn": self.arn,
        }
        print(json.dumps(record), flush=True)
        raise RuntimeError(f"{self.label} fails in {hook}")

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        self.arn = info.durable_execution_arn
        self.fail("invocation-start")

    def on_invocation_end(self, info: InvocationEndInfo) -> None:
        self.fail("invocation-end")

    def on_operation_start(self, info: OperationStartInfo) -> None:
        if info.operation_type is OperationType.STEP:
            self.fail("operation-start")

    def on_operation_end(self, info: OperationEndInfo) -> None:
        if info.operation_type is OperationType.STEP:
            self.fail("operation-end")

    def on_attempt_start(self, info: AttemptStartInfo) -> None:
        if info.operation_type is OperationType.STEP:
            self.fail("attempt-start")

    def on_attempt_end(self, info: AttemptEndInfo) -> None:
        if info.operation_type is OperationType.STEP:
            self.fail("attempt-end")


def _greet(event: str, context: DurableContext) -> str:
    def greet(step: StepContext) -> str:
        step.logger.info(f"Greeting step running for: {event}")
        return f"Hello, {event}!"

    return context.step(greet)


@requirement("10-1")
@durable_execution(plugins=[PrintingPlugin("CONFPLUGIN")])
def invocation_hooks(event: str, context: DurableContext) -> str:
    """One step; the plugin sees the invocation start and end."""
    return _greet(event, context)


@requirement("10-3")
@durable_execution(plugins=[AttemptPrintingPlugin("CONFPLUGIN")])
def attempt_hooks_under_retry(event: None, context: DurableContext) -> str:
    """A step that fails its first attempt and succeeds on the retry."""

    def unreliable(step: StepContext) -> str:
        if step.attempt == 1:
            raise RuntimeError("first attempt fails")
        return "Operation succeeded"

    retry = RetryStrategy.exponential(max_attempts=3, initial_delay=1, jitter="NONE")
    return context.step(unreliable, config=StepConfig(retry_strategy=retry))


@requirement("10-4")
@durable_execution(plugins=[FaultyPlugin()])
def faulty_plugin_is_ignored(event: str, context: DurableContext) -> str:
    """Every hook raises; the execution goes on as without the plugin."""
    return _greet(event, context)


@requirement("10-5")
@durable_execution(
    plugins=[PrintingPlugin("CONFPLUGIN-A"), PrintingPlugin("CONFPLUGIN-B")]
)
def two_plugins(event: str, context: DurableContext) -> str:
    """Two plugins, both called for every hook."""
    return _greet(event, context)


@requirement("10-6")
@durable_execution(plugins=[PrintingPlugin("CONFPLUGIN")])
def first_flag_across_replay(event: None, context: DurableContext) -> None:
    """A 2-second wait: the second invocation is not the first."""
    context.wait(2)


@requirement("10-7")
@durable_execution(plugins=[PrintingPlugin("CONFPLUGIN")])
def terminal_failure_is_seen(event: None, context: DurableContext) -> str:
    """A step that always fails, with no retry: the execution fails."""

    def failing(step: StepContext) -> str:
        raise RuntimeError("this step always fails")

    return context.step(failing, config=StepConfig(retry_strategy=RetryPresets.none()))
