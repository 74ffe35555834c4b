"""Models of the durable execution service's shapes.

These attrs classes mirror botocore's ``lambda`` model (API 2025-12-01) for
the durable execution operations. Attribute names are snake_case here and
PascalCase on the wire; :func:`to_wire` and :func:`from_wire` convert, and
drop absent (``None``) members so that a request carries exactly what was
set.

Timestamps are timezone-aware :class:`datetime.datetime` values. The Lambda
invocation envelope carries them as integer epoch milliseconds, botocore as
``datetime``; :func:`from_wire` accepts both, and :func:`to_wire` writes
epoch milliseconds, the envelope's form.
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

__all__ = [
    "CallbackDetails",
    "CallbackOptions",
    "ChainedInvokeDetails",
    "ChainedInvokeOptions",
    "CheckpointResult",
    "ContextDetails",
    "ContextOptions",
    "ErrorObject",
    "ExecutionDetails",
    "ExecutionStatus",
    "Operation",
    "OperationAction",
    "OperationStatus",
    "OperationSubType",
    "OperationType",
    "OperationUpdate",
    "StatePage",
    "StepDetails",
    "StepOptions",
    "WaitDetails",
    "WaitOptions",
    "TERMINAL_STATUSES",
    "epoch_millis",
    "from_epoch_millis",
    "from_wire",
    "to_wire",
]


class OperationType(enum.StrEnum):
    """The kind of a checkpointed operation."""

    EXECUTION = "EXECUTION"
    CONTEXT = "CONTEXT"
    STEP = "STEP"
    WAIT = "WAIT"
    CALLBACK = "CALLBACK"
    CHAINED_INVOKE = "CHAINED_INVOKE"


class OperationSubType(enum.StrEnum):
    """The user-level operation behind an operation type."""

    STEP = "Step"
    WAIT = "Wait"
    CALLBACK = "Callback"
    RUN_IN_CHILD_CONTEXT = "RunInChildContext"
    WAIT_FOR_CALLBACK = "WaitForCallback"
    WAIT_FOR_CONDITION = "WaitForCondition"
    PARALLEL = "Parallel"
    PARALLEL_BRANCH = "ParallelBranch"
    MAP = "Map"
    MAP_ITERATION = "MapIteration"
    CHAINED_INVOKE = "ChainedInvoke"


class OperationStatus(enum.StrEnum):
    """The status of a checkpointed operation."""

    STARTED = "STARTED"
    PENDING = "PENDING"
    READY = "READY"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"


TERMINAL_STATUSES = frozenset(
    {
        OperationStatus.SUCCEEDED,
        OperationStatus.FAILED,
        OperationStatus.CANCELLED,
        OperationStatus.TIMED_OUT,
        OperationStatus.STOPPED,
    }
)


class OperationAction(enum.StrEnum):
    """What an :class:`OperationUpdate` asks the service to do."""

    START = "START"
    SUCCEED = "SUCCEED"
    FAIL = "FAIL"
    RETRY = "RETRY"
    CANCEL = "CANCEL"


class ExecutionStatus(enum.StrEnum):
    """The status of a whole durable execution."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"


@attrs.frozen
class ErrorObject:
    """An error as the service records it: ``ErrorType``, ``ErrorMessage``,
    ``ErrorData`` and ``StackTrace``, each optional."""

    error_message: str | None = None
    error_type: str | None = None
    error_data: str | None = None
    stack_trace: tuple[str, ...] | None = None


@attrs.frozen
class ContextOptions:
    replay_children: bool | None = None


@attrs.frozen
class StepOptions:
    next_attempt_delay_seconds: int | None = None


@attrs.frozen
class WaitOptions:
    wait_seconds: int | None = None


@attrs.frozen
class CallbackOptions:
    timeout_seconds: int | None = None
    heartbeat_timeout_seconds: int | None = None


@attrs.frozen
class ChainedInvokeOptions:
    function_name: str
    tenant_id: str | None = None


@attrs.frozen
class OperationUpdate:
    """One change to one operation, sent in a checkpoint."""

    id: str
    type: OperationType
    action: OperationAction
    parent_id: str | None = None
    name: str | None = None
    sub_type: str | None = None
    payload: str | None = None
    error: ErrorObject | None = None
    context_options: ContextOptions | None = None
    step_options: StepOptions | None = None
    wait_options: WaitOptions | None = None
    callback_options: CallbackOptions | None = None
    chained_invoke_options: ChainedInvokeOptions | None = None


@attrs.frozen
class ExecutionDetails:
    input_payload: str | None = None


@attrs.frozen
class ContextDetails:
    replay_children: bool | None = None
    result: str | None = None
    error: ErrorObject | None = None


@attrs.frozen
class StepDetails:
    attempt: int | None = None
    next_attempt_timestamp: _dt.datetime | None = None
    result: str | None = None
    error: ErrorObject | None = None


@attrs.frozen
class WaitDetails:
    scheduled_end_timestamp: _dt.datetime | None = None


@attrs.frozen
class CallbackDetails:
    callback_id: str | None = None
    result: str | None = None
    error: ErrorObject | None = None


@attrs.frozen
class ChainedInvokeDetails:
    result: str | None = None
    error: ErrorObject | None = None


@attrs.frozen
class Operation:
    """An operation as the service stores and returns it."""

    id: str
    type: OperationType
    status: OperationStatus
    start_timestamp: _dt.datetime
    parent_id: str | None = None
    name: str | None = None
    sub_type: str | None = None
    end_timestamp: _dt.datetime | None = None
    execution_details: ExecutionDetails | None = None
    context_details: ContextDetails | None = None
    step_details: StepDetails | None = None
    wait_details: WaitDetails | None = None
    callback_details: CallbackDetails | None = None
    chained_invoke_details: ChainedInvokeDetails | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def result(self) -> str | None:
        """The payload the operation completed with, whatever its type."""
        details = (
            self.step_details
            or self.context_details
            or self.callback_details
            or self.chained_invoke_details
        )
        return details.result if details is not None else None

    @property
    def error(self) -> ErrorObject | None:
        """The error the operation completed with, whatever its type."""
        details = (
            self.step_details
            or self.context_details
            or self.callback_details
            or self.chained_invoke_details
        )
        return details.error if details is not None else None


@attrs.frozen
class CheckpointResult:
    """The reply to a checkpoint: the next token and what changed."""

    checkpoint_token: str | None
    operations: tuple[Operation, ...] = ()
    next_marker: str | None = None


@attrs.frozen
class StatePage:
    """One page of an execution's operations."""

    operations: tuple[Operation, ...]
    next_marker: str | None = None


# -- conversion --------------------------------------------------------------

_T = TypeVar("_T")

_UTC = _dt.timezone.utc
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)


def epoch_millis(moment: _dt.datetime) -> int:
    """Return ``moment`` as whole epoch milliseconds."""
    return (moment - _EPOCH) // _dt.timedelta(milliseconds=1)


def from_epoch_millis(millis: float) -> _dt.datetime:
    """Return the aware UTC datetime at ``millis`` epoch milliseconds."""
    return _EPOCH + _dt.timedelta(milliseconds=millis)


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _structure_datetime(value: Any, _: Any) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return from_epoch_millis(value)
    if isinstance(value, str):
        parsed = _dt.datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=_UTC)
    raise TypeError(f"expected a timestamp, got {value!r}")


_converter = cattrs.Converter()
_converter.register_structure_hook(_dt.datetime, _structure_datetime)
_converter.register_unstructure_hook(_dt.datetime, epoch_millis)
_converter.register_unstructure_hook(enum.Enum, lambda member: member.value)

_MODELS: tuple[type[Any], ...] = (
    ErrorObject,
    ContextOptions,
    StepOptions,
    WaitOptions,
    CallbackOptions,
    ChainedInvokeOptions,
    OperationUpdate,
    ExecutionDetails,
    ContextDetails,
    StepDetails,
    WaitDetails,
    CallbackDetails,
    ChainedInvokeDetails,
    Operation,
)

for _model in _MODELS:
    # Keyword overrides per attribute, typed loosely: cattrs types its
    # own keyword parameters, and attribute names share their namespace.
    _unstructure: dict[str, Any] = {
        field.name: override(rename=_pascal(field.name), omit_if_default=True)
        for field in attrs.fields(_model)
    }
    _structure: dict[str, Any] = {
        name: override(rename=_pascal(name)) for name in _unstructure
    }
    _converter.register_unstructure_hook(
        _model, make_dict_unstructure_fn(_model, _converter, **_unstructure)
    )
    _converter.register_structure_hook(
        _model,
        make_dict_structure_fn(
            _model, _converter, _cattrs_forbid_extra_keys=False, **_structure
        ),
    )


def to_wire(model: Any) -> Any:
    """Return ``model`` (or a sequence of models) as wire dicts."""
    return _converter.unstructure(model)


def from_wire(data: Mapping[str, Any] | Sequence[Any], model: type[_T]) -> _T:
    """Build a ``model`` from its wire dict."""
    return _converter.structure(data, model)
