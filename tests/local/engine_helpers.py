"""Helpers of the engine tests: builders of hand-made checkpoint updates,
and an execution with an invocation in flight."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import attrs

from durable_exec.local import Engine
from durable_exec.wire import (
    OperationAction,
    OperationSubType,
    OperationType,
    OperationUpdate,
    StepOptions,
    WaitOptions,
)


@attrs.define
class Live:
    """An execution with an invocation in flight, and its current token."""

    engine: Engine
    arn: str
    token: str

    def checkpoint(self, *updates: OperationUpdate, **kwargs: Any) -> Any:
        """Checkpoint with the current token and keep the new one."""
        reply = self.engine.checkpoint(self.arn, self.token, list(updates), **kwargs)
        if reply.checkpoint_token is not None:
            self.token = reply.checkpoint_token
        return reply

    def snapshot(self) -> Any:
        """What the engine stores of the execution, copied."""
        record = self.engine.record(self.arn)
        return (
            copy.deepcopy(record.events),
            dict(record.operations),
            dict(record.timers),
            record.status,
            record.token,
        )


def _builder(
    kind: OperationType, sub_type: str | None
) -> Callable[..., OperationUpdate]:
    def build(op_id: str, action: str, **fields: Any) -> OperationUpdate:
        fields.setdefault("sub_type", sub_type)
        return OperationUpdate(
            id=op_id, type=kind, action=OperationAction(action), **fields
        )

    return build


step = _builder(OperationType.STEP, OperationSubType.STEP)
wait = _builder(OperationType.WAIT, OperationSubType.WAIT)
context = _builder(OperationType.CONTEXT, OperationSubType.RUN_IN_CHILD_CONTEXT)
execution = _builder(OperationType.EXECUTION, None)


def retry(delay: int | None) -> StepOptions:
    """StepOptions with this NextAttemptDelaySeconds."""
    return StepOptions(next_attempt_delay_seconds=delay)


def seconds(value: int | None) -> WaitOptions:
    """WaitOptions with this WaitSeconds."""
    return WaitOptions(wait_seconds=value)
