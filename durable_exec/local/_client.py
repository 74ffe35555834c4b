"""The SDK's service client for an in-process engine."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import CheckpointError, InvalidCheckpointTokenError
from ..wire import CheckpointResult, OperationUpdate, StatePage
from ._engine import Engine
from ._errors import ServiceError

__all__ = ["LocalServiceClient"]


class LocalServiceClient:
    """Calls an :class:`Engine` directly, with the service's errors.

    It passes the SDK's models straight to the engine: no HTTP and no JSON
    in between, but the same validation and the same refusals.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def checkpoint(
        self,
        durable_execution_arn: str,
        checkpoint_token: str,
        updates: Sequence[OperationUpdate],
        client_token: str | None = None,
    ) -> CheckpointResult:
        try:
            return self.engine.checkpoint(
                durable_execution_arn, checkpoint_token, updates, client_token
            )
        except ServiceError as error:
            raise _translate("CheckpointDurableExecution", error) from error

    def get_execution_state(
        self,
        durable_execution_arn: str,
        checkpoint_token: str,
        marker: str | None = None,
        max_items: int | None = None,
    ) -> StatePage:
        try:
            return self.engine.get_execution_state(
                durable_execution_arn, checkpoint_token, marker, max_items
            )
        except ServiceError as error:
            raise _translate("GetDurableExecutionState", error) from error


def _translate(operation: str, error: ServiceError) -> CheckpointError:
    message = f"{operation} refused: {error.code}: {error.message}"
    if error.message.startswith("Invalid checkpoint token"):
        return InvalidCheckpointTokenError(message)
    return CheckpointError(message, retryable=error.status >= 500)
