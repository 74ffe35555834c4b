"""The exception tree of durable_exec.

Everything the SDK raises on purpose derives from
:class:`DurableExecutionError`. Operation failures carry what the service
recorded (error type, message, data and stack trace), so that a failure
seen on the first run and the same failure replayed from a checkpoint look
alike. Bad configuration raises :class:`ValidationError`, which is also a
:class:`ValueError`.

Suspension is control flow, not an error: :class:`SuspendExecution` derives
from :class:`BaseException` so that a handler's ``except Exception`` never
swallows it.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Sequence
from typing import Any

from .wire import ErrorObject

__all__ = [
    "CallbackError",
    "CallbackTimeoutError",
    "CheckpointError",
    "ChildContextError",
    "DurableExecutionError",
    "ExecutionNotFoundError",
    "InvalidCheckpointTokenError",
    "InvokeError",
    "MapError",
    "NonDeterministicExecutionError",
    "OperationError",
    "ParallelError",
    "SerDesError",
    "StepError",
    "StepInterruptedError",
    "SuspendExecution",
    "ValidationError",
    "WaitForConditionError",
]


class DurableExecutionError(Exception):
    """The root of every error durable_exec raises on purpose."""


class ValidationError(DurableExecutionError, ValueError):
    """A parameter or input is not acceptable.

    Raised at the call, before anything is checkpointed. The message names
    the parameter, shows the value and says what is allowed.
    """


class SerDesError(DurableExecutionError):
    """A payload could not be serialized or deserialized."""


class NonDeterministicExecutionError(DurableExecutionError):
    """The handler asked for a different operation than the one recorded.

    Replay found, at the same operation id, an operation of another type,
    sub-type or name. The execution fails without retry: running on would
    pair checkpoints with the wrong code.
    """


class CheckpointError(DurableExecutionError):
    """The service refused or failed a checkpoint."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class InvalidCheckpointTokenError(CheckpointError):
    """The service no longer accepts the checkpoint token.

    Another invocation has taken over, or the execution has ended. The
    invocation stops; what was checkpointed before stays.
    """


class ExecutionNotFoundError(DurableExecutionError, LookupError):
    """No durable execution has the given name or ARN."""


class OperationError(DurableExecutionError):
    """A durable operation failed; carries the recorded error.

    Attributes:
        error_type: the type the failure was recorded with, usually the
            class name of the original exception.
        error_message: the recorded message.
        error_data: optional machine-readable data, a string.
        stack_trace: the recorded stack trace lines, if any.
    """

    def __init__(
        self,
        error_message: str | None = None,
        *,
        error_type: str | None = None,
        error_data: str | None = None,
        stack_trace: Sequence[str] | None = None,
    ) -> None:
        super().__init__(error_message or error_type or "operation failed")
        self.error_type = error_type
        self.error_message = error_message
        self.error_data = error_data
        self.stack_trace = tuple(stack_trace) if stack_trace else None

    @classmethod
    def from_error_object(cls, error: ErrorObject | None) -> OperationError:
        """Build the error from what the service recorded."""
        if error is None:
            return cls()
        return cls(
            error.error_message,
            error_type=error.error_type,
            error_data=error.error_data,
            stack_trace=error.stack_trace,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(error_type={self.error_type!r}, "
            f"error_message={self.error_message!r})"
        )


class StepError(OperationError):
    """A step failed, after its retries if it had any."""


class StepInterruptedError(OperationError):
    """An at-most-once step was found started but never finished.

    The process running it died, so whether its side effects happened is
    unknown. The error goes through the step's retry strategy like any
    other failure.
    """


class ChildContextError(OperationError):
    """A child context failed."""


class CallbackError(OperationError):
    """A callback was answered with a failure."""


class CallbackTimeoutError(CallbackError):
    """A callback timed out, or missed its heartbeat."""


class InvokeError(OperationError):
    """A chained invoke failed, timed out or was stopped."""


class WaitForConditionError(OperationError):
    """A wait-for-condition failed or ran out of attempts."""


class ParallelError(OperationError):
    """A parallel batch had failures; ``batch`` is the batch result."""

    batch: Any = None


class MapError(OperationError):
    """A map batch had failures; ``batch`` is the batch result."""

    batch: Any = None


class SuspendExecution(BaseException):
    """Stops the handler so that the service can re-invoke it later.

    Raised by an operation that must wait for time or for the outside
    world. It is a :class:`BaseException` on purpose: user code catching
    :class:`Exception` must not swallow it.
    """


# The service refuses an error object larger than this, as JSON.
MAX_ERROR_CHARS = 32_768
_MAX_MESSAGE_CHARS = 8_192
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def error_object_from_exception(error: BaseException) -> ErrorObject:
    """Describe ``error`` as the service records errors.

    An :class:`OperationError` keeps the type, message and data it was
    recorded with, so a failure passed up through several operations keeps
    its original identity. The stack trace leaves out this package's own
    frames, and a long message or trace is cut to fit the service's limit.
    """
    if isinstance(error, OperationError):
        return _fit(
            ErrorObject(
                error_message=error.error_message,
                error_type=error.error_type or type(error).__name__,
                error_data=error.error_data,
                stack_trace=error.stack_trace,
            )
        )
    summary = traceback.TracebackException.from_exception(error)
    summary.stack = traceback.StackSummary.from_list(
        [
            frame
            for frame in summary.stack
            if not frame.filename.startswith(_PACKAGE_DIR)
        ]
    )
    lines = [
        line.rstrip("\n") for chunk in summary.format() for line in chunk.splitlines()
    ]
    return _fit(
        ErrorObject(
            error_message=str(error),
            error_type=type(error).__name__,
            stack_trace=tuple(lines),
        )
    )


def _fit(error: ErrorObject) -> ErrorObject:
    message = error.error_message
    if message is not None and len(message) > _MAX_MESSAGE_CHARS:
        message = message[: _MAX_MESSAGE_CHARS - 3] + "..."
    trace = list(error.stack_trace or ())
    budget = (
        MAX_ERROR_CHARS
        - 1_024
        - len(message or "")
        - len(error.error_data or "")
        - len(error.error_type or "")
    )
    # Keep the innermost frames: they say where it went wrong.
    while trace and sum(len(line) + 8 for line in trace) > budget:
        trace.pop(0)
    return ErrorObject(
        error_message=message,
        error_type=error.error_type,
        error_data=error.error_data,
        stack_trace=tuple(trace) or None,
    )
