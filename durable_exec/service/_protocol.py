"""The service protocol the SDK core talks to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ..wire import CheckpointResult, OperationUpdate, StatePage

__all__ = ["DurableServiceClient"]


@runtime_checkable
class DurableServiceClient(Protocol):
    """What the SDK needs from a durable execution service.

    Two calls: checkpoint a batch of updates, and read a page of the
    execution's operations. Implementations raise
    :class:`~durable_exec.errors.InvalidCheckpointTokenError` for a token
    the service no longer accepts, and
    :class:`~durable_exec.errors.CheckpointError` for any other refusal,
    with ``retryable`` set when a later invocation may succeed.
    """

    def checkpoint(
        self,
        durable_execution_arn: str,
        checkpoint_token: str,
        updates: Sequence[OperationUpdate],
        client_token: str | None = None,
    ) -> CheckpointResult: ...

    def get_execution_state(
        self,
        durable_execution_arn: str,
        checkpoint_token: str,
        marker: str | None = None,
        max_items: int | None = None,
    ) -> StatePage: ...
