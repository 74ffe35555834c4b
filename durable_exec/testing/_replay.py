"""Replay checking: run a handler over an execution's own checkpoints.

A durable handler must ask, on every invocation, for the operations it
asked for before: same ids, types, sub-types and names, in the same
structure. The replay checker proves it for one execution. It builds the
invocation envelope the service would send if the execution were invoked
once more, holding every operation recorded so far, and invokes the
handler with a :class:`_ReplayClient` instead of a service. Then it
compares what the handler did with what is recorded:

* a recorded operation of another type, sub-type or name at an id the
  handler reached (the SDK raises ``NonDeterministicExecutionError``);
* an operation the handler starts that the history does not hold;
* a recorded operation the handler no longer reaches;
* a different outcome: another result or another error, for an
  execution that succeeded or failed.

What runs during a replay
-------------------------
Only orchestration code, the code a service replay runs too. A finished
step returns its checkpointed result without running. A step recorded as
started but unfinished (or ready for its next attempt) is left out of the
envelope, so the handler asks to START it, which is where the recorded
history ends; the replay stops there, and the step body never runs. The
replay client accepts no write: the first checkpoint of anything but the
execution's own outcome ends the invocation, like a suspension, and is
judged against the history. Nothing reaches an engine or a service.

Child contexts are replayed deeply by default: a finished child context
(not a parallel or map, whose results replay as a whole) is marked
``ReplayChildren`` in the envelope, so the SDK runs its function again over
its children's checkpoints, and a change inside it is seen too.

Seeing which operations the handler asks for
--------------------------------------------
The SDK has no hook for this, so during a replay
``ExecutionState.get_checked`` is wrapped (once, however many replays run
at a time) to report each lookup to the replay client the state talks to.
Executions that do not talk to a replay client go straight through.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..errors import SuspendExecution
from ..handler import DurableHandler
from ..wire import (
    TERMINAL_STATUSES,
    CallbackDetails,
    ChainedInvokeDetails,
    CheckpointResult,
    ContextDetails,
    ErrorObject,
    ExecutionDetails,
    ExecutionStatus,
    Operation,
    OperationAction,
    OperationStatus,
    OperationSubType,
    OperationType,
    OperationUpdate,
    StatePage,
    StepDetails,
    WaitDetails,
    from_wire,
    to_wire,
)

__all__ = [
    "HistoryError",
    "RecordedExecution",
    "ReplayDifference",
    "ReplayMismatch",
    "check_recorded",
    "mismatch_message",
    "recorded_from_history",
    "replay_history",
    "replay_recorded",
]

logger = logging.getLogger(__name__)

_REPLAY_TOKEN = "replay-check"
# Batches replay from their own checkpoint; their units are only looked
# at while the batch itself is unfinished.
_BATCH_SUB_TYPES = frozenset({OperationSubType.PARALLEL, OperationSubType.MAP})
# The most rows of the operation table a mismatch message shows in full.
_MAX_TABLE_ROWS = 40


# -- what was recorded ----------------------------------------------------------


@attrs.frozen
class RecordedExecution:
    """An execution as the replay checker needs it.

    Attributes:
        arn: the execution's ARN (made up when the history does not say).
        name: its name, for messages.
        status: how it stands.
        operations: every operation, the EXECUTION one included, in start
            order; children of finished contexts included.
        result_payload: the result as checkpointed text, if it succeeded.
        error: the error, if it failed.
        complete: True when every invocation had ended and none was owed
            when the record was taken, so the next operation the handler
            would start must already be recorded; False lets the replay
            stop at the first operation the history does not hold.
    """

    arn: str
    name: str
    status: ExecutionStatus
    operations: tuple[Operation, ...]
    result_payload: str | None = None
    error: ErrorObject | None = None
    complete: bool = True


@attrs.frozen
class ReplayDifference:
    """One way the replay differs from the history.

    Attributes:
        kind: ``"changed"`` (another operation at a recorded id),
            ``"new"`` (an operation the history does not hold),
            ``"not replayed"`` (a recorded operation the handler no longer
            reaches), ``"outcome"`` (another result, error or status), or
            ``"error"`` (the replay itself raised).
        operation_id: the operation's id; None for an outcome or error.
        expected: what the history holds, in words.
        actual: what the replay did, in words.
    """

    kind: str
    operation_id: str | None
    expected: str
    actual: str

    def __str__(self) -> str:
        where = f"operation {self.operation_id}: " if self.operation_id else ""
        return f"{where}{self.kind}: recorded {self.expected}; replay {self.actual}"


class ReplayMismatch(AssertionError):
    """Replaying an execution's checkpoints did not match its history.

    The message holds an operation-level diff. ``differences`` lists each
    difference; ``execution`` is the execution that was replayed.
    """

    def __init__(
        self,
        message: str,
        differences: Sequence[ReplayDifference],
        execution: RecordedExecution,
    ) -> None:
        super().__init__(message)
        self.differences = tuple(differences)
        self.execution = execution


def label(type: Any, sub_type: Any, name: str | None) -> str:
    """``STEP/Step 'charge'``: an operation's identity in words."""
    text = str(type.value if hasattr(type, "value") else type)
    if sub_type:
        text += f"/{sub_type}"
    return text + (f" {name!r}" if name is not None else " (unnamed)")


def _label_of(operation: Operation) -> str:
    return label(operation.type, operation.sub_type, operation.name)


# -- the client that refuses writes -----------------------------------------------


class _ReplayStopped(SuspendExecution):
    """Ends a replay at its first write.

    A suspension, so that the SDK ends the invocation as it would for a
    wait, in every thread of a parallel or map, and no user code catching
    ``Exception`` can carry on past it.
    """


@attrs.frozen
class _Lookup:
    operation_id: str
    identity: tuple[OperationType, str | None, str | None]


class _ReplayClient:
    """A service client that records what a replay asks for.

    Reads of further state pages answer with nothing: the envelope holds
    every operation. A checkpoint of the execution's outcome (a result too
    large for the response) is kept as the outcome; any other checkpoint
    is recorded and refused by ending the invocation.
    """

    def __init__(self, execution: RecordedExecution) -> None:
        self.execution = execution
        self._lock = threading.Lock()
        self.lookups: list[_Lookup] = []
        self.mismatch: _Lookup | None = None
        self.writes: list[OperationUpdate] = []
        self.outcome_update: OperationUpdate | None = None

    # Called by ExecutionState.get_checked, from any thread, for every
    # operation the handler asks for.
    def observe_lookup(
        self,
        operation_id: str,
        type: OperationType,
        sub_type: str | None,
        name: str | None,
        *,
        mismatch: bool,
    ) -> None:
        lookup = _Lookup(operation_id, (type, sub_type, name))
        with self._lock:
            self.lookups.append(lookup)
            if mismatch and self.mismatch is None:
                self.mismatch = lookup

    def reached(self) -> set[str]:
        """The ids the replay looked up or wrote."""
        with self._lock:
            return {lookup.operation_id for lookup in self.lookups} | {
                update.id for update in self.writes
            }

    def checkpoint(
        self,
        durable_execution_arn: str,
        checkpoint_token: str,
        updates: Sequence[OperationUpdate],
        client_token: str | None = None,
    ) -> CheckpointResult:
        others = [u for u in updates if u.type is not OperationType.EXECUTION]
        with self._lock:
            for update in updates:
                if update.type is OperationType.EXECUTION:
                    self.outcome_update = update
            self.writes.extend(others)
        if others:
            first = others[0]
            what = label(first.type, first.sub_type, first.name)
            raise _ReplayStopped(
                "replay check: the handler tried to checkpoint "
                f"{first.action.value} of {what} (id {first.id}); a replay "
                "writes nothing"
            )
        return CheckpointResult(None, (), None)

    def get_execution_state(
        self,
        durable_execution_arn: str,
        checkpoint_token: str,
        marker: str | None = None,
        max_items: int | None = None,
    ) -> StatePage:
        return StatePage((), None)


# -- replaying --------------------------------------------------------------------


def _frontier(operation: Operation) -> bool:
    """True for a step the envelope must not hold: the SDK would run its
    body again (STARTED) or start its next attempt (READY)."""
    return operation.type is OperationType.STEP and operation.status in (
        OperationStatus.STARTED,
        OperationStatus.READY,
    )


def _deep(operation: Operation) -> bool:
    return (
        operation.type is OperationType.CONTEXT
        and operation.status is OperationStatus.SUCCEEDED
        and operation.sub_type not in _BATCH_SUB_TYPES
    )


def _envelope(execution: RecordedExecution, deep: bool) -> dict[str, Any]:
    operations = []
    for operation in execution.operations:
        if _frontier(operation):
            continue
        if deep and _deep(operation):
            details = operation.context_details or ContextDetails()
            operation = attrs.evolve(
                operation,
                context_details=attrs.evolve(details, replay_children=True),
            )
        operations.append(to_wire(operation))
    return {
        "DurableExecutionArn": execution.arn,
        "CheckpointToken": _REPLAY_TOKEN,
        "InitialExecutionState": {"Operations": operations, "NextMarker": ""},
    }


def replay_recorded(
    handler: DurableHandler[Any, Any],
    execution: RecordedExecution,
    *,
    deep: bool = True,
) -> list[ReplayDifference]:
    """Replay ``execution`` with ``handler``; return the differences.

    Nothing is written anywhere and no step body runs; see the module
    docstring. An empty list means the handler replays the execution
    exactly.

    Args:
        handler: the durable handler, as the code stands now.
        execution: what was recorded.
        deep: also replay inside finished child contexts.
    """
    return _replay(handler, execution, deep)[0]


def _replay(
    handler: DurableHandler[Any, Any],
    execution: RecordedExecution,
    deep: bool,
) -> tuple[list[ReplayDifference], set[str]]:
    """The differences, and the ids of the operations the replay reached."""
    if not isinstance(handler, DurableHandler):
        raise TypeError(
            "handler must be a durable handler (decorate it with "
            f"@durable_execution) (got {handler!r})"
        )
    client = _ReplayClient(execution)
    envelope = _envelope(execution, deep)
    logger.debug(
        "replaying %s over %d operation(s)",
        execution.arn,
        len(execution.operations),
    )
    reply: dict[str, Any] | None
    try:
        reply = handler.invoke(envelope, None, client=client)
    except Exception as error:  # noqa: BLE001 - reported as a difference
        reply = _raised(execution, error)
        if reply is None:
            failure = ReplayDifference(
                "error",
                None,
                "an invocation that returns",
                f"raised {type(error).__name__}: {error}",
            )
            return [failure], client.reached()
    return _Judge(execution, client, deep).differences(reply), client.reached()


def _raised(execution: RecordedExecution, error: Exception) -> dict[str, Any] | None:
    """The reply the engine made of an invocation that raised, if the
    execution failed with just that error; None otherwise."""
    recorded = execution.error
    if execution.status is not ExecutionStatus.FAILED or recorded is None:
        return None
    if (recorded.error_type, recorded.error_message) != (
        type(error).__name__,
        str(error),
    ):
        return None
    return {
        "Status": "FAILED",
        "Error": {"ErrorType": recorded.error_type, "ErrorMessage": str(error)},
    }


class _Judge:
    """Compares one replay with the history it replayed."""

    def __init__(
        self, execution: RecordedExecution, client: _ReplayClient, deep: bool
    ) -> None:
        self.execution = execution
        self.client = client
        self.deep = deep
        self.recorded = {op.id: op for op in execution.operations}

    def differences(self, reply: Mapping[str, Any]) -> list[ReplayDifference]:
        found: list[ReplayDifference] = []

        # The first lookup whose record is another operation.
        mismatch = self.client.mismatch
        if mismatch is not None:
            recorded = self.recorded[mismatch.operation_id]
            found.append(
                ReplayDifference(
                    "changed",
                    mismatch.operation_id,
                    _label_of(recorded),
                    f"asks for {label(*mismatch.identity)}",
                )
            )

        # The writes of the one checkpoint call that reached the client:
        # the end of the recorded history, or something beyond it.
        for update in self.client.writes:
            difference = self._judge_write(update)
            if difference is not None:
                found.append(difference)
        if found:
            return found

        # The replay ran its course: what it skipped, and where it ended.
        found.extend(self._not_replayed())
        outcome = self._judge_outcome(reply)
        if outcome is not None:
            found.append(outcome)
        return found

    def _judge_write(self, update: OperationUpdate) -> ReplayDifference | None:
        recorded = self.recorded.get(update.id)
        actual = label(update.type, update.sub_type, update.name)
        if recorded is None:
            if not self.execution.complete:
                # The history ends before this operation started.
                return None
            return ReplayDifference(
                "new",
                update.id,
                "(nothing)",
                f"starts {actual}"
                if update.action is OperationAction.START
                else f"{update.action.value} of {actual}",
            )
        if (recorded.type, recorded.sub_type, recorded.name) != (
            update.type,
            update.sub_type,
            update.name,
        ):
            return ReplayDifference(
                "changed", update.id, _label_of(recorded), f"writes {actual}"
            )
        if recorded.status in TERMINAL_STATUSES:
            return ReplayDifference(
                "changed",
                update.id,
                f"{_label_of(recorded)} {recorded.status.value}",
                f"writes {update.action.value} of it again",
            )
        # An unfinished operation the handler goes on with: the recorded
        # history ends here.
        return None

    def _not_replayed(self) -> list[ReplayDifference]:
        """Recorded operations the replay should have reached and did not."""
        visited = self.client.reached()
        missing = []
        for operation in self.execution.operations:
            if operation.type is OperationType.EXECUTION:
                continue
            if operation.id in visited or not self._reachable(operation, visited):
                continue
            missing.append(
                ReplayDifference(
                    "not replayed",
                    operation.id,
                    f"{_label_of(operation)} {operation.status.value}",
                    "never asks for it",
                )
            )
        return missing

    def _reachable(self, operation: Operation, visited: set[str]) -> bool:
        """Whether replay must reach ``operation``: it is top-level, or
        its parent was reached and is entered again on replay."""
        parent_id = operation.parent_id
        if parent_id is None or parent_id not in self.recorded:
            return parent_id is None
        parent = self.recorded[parent_id]
        if parent.type is OperationType.EXECUTION:
            return True
        if parent_id not in visited or parent.type is not OperationType.CONTEXT:
            return False
        if (
            not self.execution.complete
            and parent.sub_type in _BATCH_SUB_TYPES
            and parent.status not in TERMINAL_STATUSES
        ):
            # Cut off mid-batch: a replay may decide the batch before it
            # starts again a unit that was running.
            return False
        entered = (
            parent.status not in TERMINAL_STATUSES
            or (self.deep and _deep(parent))
            or bool(parent.context_details and parent.context_details.replay_children)
        )
        return entered and self._reachable(parent, visited)

    def _judge_outcome(self, reply: Mapping[str, Any]) -> ReplayDifference | None:
        status = reply.get("Status") if isinstance(reply, Mapping) else None
        recorded = self.execution.status
        actual = _describe_reply(reply, self.client.outcome_update)
        if recorded is ExecutionStatus.SUCCEEDED:
            expected_text = f"SUCCEEDED with {_preview(self.execution.result_payload)}"
            if status != "SUCCEEDED":
                return ReplayDifference("outcome", None, expected_text, actual)
            result = reply.get("Result")
            if not result and self.client.outcome_update is not None:
                result = self.client.outcome_update.payload
            if not _same_payload(result, self.execution.result_payload):
                return ReplayDifference("outcome", None, expected_text, actual)
            return None
        if recorded is ExecutionStatus.FAILED:
            error = self.execution.error or ErrorObject()
            expected_text = f"FAILED with {_describe_error(error)}"
            if status != "FAILED":
                return ReplayDifference("outcome", None, expected_text, actual)
            replayed = _reply_error(reply)
            if (replayed.error_type, replayed.error_message) != (
                error.error_type,
                error.error_message,
            ):
                return ReplayDifference("outcome", None, expected_text, actual)
            return None
        # A running execution has no outcome yet; one that timed out or
        # was stopped never had the handler's. A replay of either must
        # reach every recorded operation (checked above), but where it
        # ends is not compared: a history may be exported between the
        # handler's return and the execution's end.
        return None


def _same_payload(left: str | None, right: str | None) -> bool:
    if (left or None) == (right or None):
        return True
    try:
        return bool(json.loads(left or "null") == json.loads(right or "null"))
    except (TypeError, ValueError):
        return False


def _reply_error(reply: Mapping[str, Any]) -> ErrorObject:
    raw = reply.get("Error")
    if not isinstance(raw, Mapping):
        return ErrorObject()
    return ErrorObject(
        error_message=raw.get("ErrorMessage"), error_type=raw.get("ErrorType")
    )


def _describe_error(error: ErrorObject) -> str:
    kind = error.error_type or "an error"
    return f"{kind}: {error.error_message}" if error.error_message else kind


def _describe_reply(reply: Any, outcome_update: OperationUpdate | None) -> str:
    if not isinstance(reply, Mapping):
        return f"returned {reply!r}"
    status = reply.get("Status")
    if status == "SUCCEEDED":
        result = reply.get("Result")
        if not result and outcome_update is not None:
            result = outcome_update.payload
        return f"SUCCEEDED with {_preview(result)}"
    if status == "FAILED":
        return f"FAILED with {_describe_error(_reply_error(reply))}"
    if status == "PENDING":
        return "PENDING (suspended)"
    return f"returned {reply!r}"


def _preview(payload: str | None, limit: int = 80) -> str:
    if payload is None:
        return "no result"
    return payload if len(payload) <= limit else payload[: limit - 3] + "..."


# -- the message ------------------------------------------------------------------


def mismatch_message(
    execution: RecordedExecution,
    differences: Sequence[ReplayDifference],
    *,
    handler: Any = None,
    reached: set[str] | None = None,
) -> str:
    """The text of a :class:`ReplayMismatch`: the differences, then the
    recorded operations beside what the replay did with each."""
    who = getattr(handler, "__qualname__", None) or getattr(handler, "__name__", None)
    head = f"replay of execution {execution.name!r}"
    if who:
        head += f" with handler {who}"
    lines = [f"{head} does not match its history:"]
    lines.extend(f"  - {difference}" for difference in differences)
    if any(d.kind == "changed" for d in differences):
        lines.append(
            "  Ids follow program order: an operation added, removed or "
            "moved\n  before a changed one shifts every one after it."
        )
    lines.append("")

    by_id = {d.operation_id: d for d in differences if d.operation_id}
    depth: dict[str, int] = {}
    rows: list[tuple[str, str, str, str]] = []
    for operation in execution.operations:
        if operation.type is OperationType.EXECUTION:
            continue
        level = depth.get(operation.parent_id or "", -1) + 1
        depth[operation.id] = level
        difference = by_id.pop(operation.id, None)
        if difference is not None:
            replayed, mark = difference.actual, f"<- {difference.kind}"
        elif reached is not None and operation.id in reached:
            replayed, mark = "same", ""
        else:
            replayed, mark = "", ""
        rows.append(
            (
                "  " * level + operation.id,
                f"{_label_of(operation)} {operation.status.value}",
                replayed,
                mark,
            )
        )
    # Operations the history does not hold, after the recorded ones.
    for operation_id, difference in by_id.items():
        rows.append(
            (
                operation_id,
                difference.expected,
                difference.actual,
                f"<- {difference.kind}",
            )
        )
    if rows:
        lines.extend(_table(rows))
    return "\n".join(lines).rstrip()


def _table(rows: list[tuple[str, str, str, str]]) -> list[str]:
    if len(rows) > _MAX_TABLE_ROWS:
        # Keep the rows around each difference.
        marked = {i for i, row in enumerate(rows) if row[3]}
        keep = {j for i in marked for j in range(i - 2, i + 3) if 0 <= j < len(rows)}
        trimmed: list[tuple[str, str, str, str]] = []
        previous = -1
        for index in sorted(keep):
            if index != previous + 1:
                trimmed.append(("...", "", "", ""))
            trimmed.append(rows[index])
            previous = index
        if previous != len(rows) - 1:
            trimmed.append(("...", "", "", ""))
        rows = trimmed
    header = ("id", "recorded", "replay", "")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    out = []
    for row in [header, *rows]:
        cells = [row[i].ljust(widths[i]) for i in range(3)] + [row[3]]
        out.append(("  " + "  ".join(cells)).rstrip())
    return out


def check_recorded(
    handler: DurableHandler[Any, Any],
    execution: RecordedExecution,
    *,
    deep: bool = True,
) -> None:
    """Replay ``execution`` and raise :class:`ReplayMismatch` on any
    difference."""
    __tracebackhide__ = True  # the failure belongs to the test
    differences, reached = _replay(handler, execution, deep)
    if differences:
        message = mismatch_message(
            execution, differences, handler=handler, reached=reached
        )
        raise ReplayMismatch(message, differences, execution)


# -- stored histories ---------------------------------------------------------------

_TYPE_PREFIXES = (
    ("ChainedInvoke", OperationType.CHAINED_INVOKE),
    ("Execution", OperationType.EXECUTION),
    ("Callback", OperationType.CALLBACK),
    ("Context", OperationType.CONTEXT),
    ("Step", OperationType.STEP),
    ("Wait", OperationType.WAIT),
)
_END_STATUSES = {
    "Succeeded": OperationStatus.SUCCEEDED,
    "Failed": OperationStatus.FAILED,
    "TimedOut": OperationStatus.TIMED_OUT,
    "Stopped": OperationStatus.STOPPED,
    "Cancelled": OperationStatus.CANCELLED,
}
_UTC = _dt.UTC


class HistoryError(ValueError):
    """A history cannot be replayed: malformed, paged or incomplete."""


def _timestamp(value: Any, where: str) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # The service's JSON carries epoch seconds, the envelope epoch
        # milliseconds; no execution of either is near 1973.
        seconds = value / 1000 if value > 1e11 else value
        return _dt.datetime.fromtimestamp(seconds, _UTC)
    if isinstance(value, str):
        try:
            parsed = _dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=_UTC)
    raise HistoryError(f"{where}: EventTimestamp {value!r} is not a timestamp")


def _payload(details: Mapping[str, Any], key: str, where: str) -> str | None:
    data = details.get(key)
    if not isinstance(data, Mapping):
        return None
    if data.get("Truncated"):
        raise HistoryError(
            f"{where}: its {key} is truncated in the history; replay needs "
            "every payload whole"
        )
    payload = data.get("Payload")
    return payload if isinstance(payload, str) else None


def _error(details: Mapping[str, Any], where: str) -> ErrorObject | None:
    data = details.get("Error")
    if not isinstance(data, Mapping):
        return None
    if data.get("Truncated"):
        raise HistoryError(
            f"{where}: its Error is truncated in the history; replay needs "
            "every payload whole"
        )
    payload = data.get("Payload")
    if not isinstance(payload, Mapping):
        return ErrorObject()
    try:
        return from_wire(payload, ErrorObject)
    except Exception as error:  # noqa: BLE001 - cattrs raises several kinds
        raise HistoryError(f"{where}: Error is not an ErrorObject: {error}") from None


class _Builder:
    """Operations rebuilt from history events, in start order."""

    def __init__(self) -> None:
        self.operations: dict[str, Operation] = {}
        self.execution_id: str | None = None
        self.name = "replay"

    def apply(self, event: Mapping[str, Any], index: int) -> None:
        event_type = event.get("EventType")
        where = f"event {event.get('EventId', index + 1)} ({event_type})"
        if not isinstance(event_type, str):
            raise HistoryError(f"{where}: EventType must be a string")
        if event_type in ("InvocationCompleted", "ExecutionPaused", "ExecutionResumed"):
            return
        kind = next(
            (
                (prefix, type_)
                for prefix, type_ in _TYPE_PREFIXES
                if event_type.startswith(prefix)
            ),
            None,
        )
        if kind is None:
            raise HistoryError(f"{where}: unknown EventType {event_type!r}")
        prefix, type_ = kind
        phase = event_type[len(prefix) :]
        op_id = event.get("Id")
        if not isinstance(op_id, str) or not op_id:
            raise HistoryError(f"{where}: Id must be a non-empty string")
        when = _timestamp(event.get("EventTimestamp"), where)
        details = event.get(f"{event_type}Details") or {}
        if not isinstance(details, Mapping):
            raise HistoryError(f"{where}: {event_type}Details must be a mapping")

        operation = self.operations.get(op_id)
        if operation is None:
            operation = Operation(
                id=op_id,
                type=type_,
                status=OperationStatus.STARTED,
                start_timestamp=when,
                parent_id=event.get("ParentId"),
                name=event.get("Name"),
                sub_type=event.get("SubType"),
            )
        elif operation.type is not type_:
            raise HistoryError(
                f"{where}: operation {op_id} is a {operation.type.value}, "
                f"not a {type_.value}"
            )

        if phase == "Started":
            operation = self._started(operation, type_, details, where, when)
        elif phase in _END_STATUSES:
            operation = self._ended(
                operation, type_, _END_STATUSES[phase], details, where, when
            )
        else:
            raise HistoryError(f"{where}: unknown EventType {event_type!r}")
        self.operations[op_id] = operation

    def _started(
        self,
        operation: Operation,
        type_: OperationType,
        details: Mapping[str, Any],
        where: str,
        when: _dt.datetime,
    ) -> Operation:
        if type_ is OperationType.EXECUTION:
            if "Input" not in details:
                raise HistoryError(
                    f"{where}: the history holds no execution data; export "
                    "it with IncludeExecutionData"
                )
            self.execution_id = operation.id
            self.name = operation.name or operation.id
            return attrs.evolve(
                operation,
                execution_details=ExecutionDetails(_payload(details, "Input", where)),
            )
        if type_ is OperationType.STEP:
            previous = operation.step_details
            return attrs.evolve(
                operation,
                status=OperationStatus.STARTED,
                step_details=StepDetails(
                    attempt=(previous.attempt if previous else None) or 0,
                    result=previous.result if previous else None,
                ),
            )
        if type_ is OperationType.WAIT:
            end = details.get("ScheduledEndTimestamp")
            scheduled: _dt.datetime | None = None
            if end is not None:
                scheduled = _timestamp(end, where)
            elif details.get("Duration") is not None:
                scheduled = when + _dt.timedelta(seconds=int(details["Duration"]))
            return attrs.evolve(operation, wait_details=WaitDetails(scheduled))
        if type_ is OperationType.CALLBACK:
            return attrs.evolve(
                operation,
                callback_details=CallbackDetails(details.get("CallbackId")),
            )
        return operation

    def _ended(
        self,
        operation: Operation,
        type_: OperationType,
        status: OperationStatus,
        details: Mapping[str, Any],
        where: str,
        when: _dt.datetime,
    ) -> Operation:
        result = _payload(details, "Result", where)
        error = _error(details, where)
        if type_ is OperationType.EXECUTION:
            return attrs.evolve(operation, status=status, end_timestamp=when)
        if type_ is OperationType.STEP:
            retry = details.get("RetryDetails") or {}
            attempt = retry.get("CurrentAttempt")
            if attempt is None:
                previous = operation.step_details
                attempt = ((previous.attempt if previous else None) or 0) + 1
            delay = retry.get("NextAttemptDelaySeconds")
            if delay is not None:
                # A retry: the step waits for its next attempt.
                return attrs.evolve(
                    operation,
                    status=OperationStatus.PENDING,
                    step_details=StepDetails(
                        attempt=int(attempt),
                        next_attempt_timestamp=when + _dt.timedelta(seconds=int(delay)),
                        result=result,
                        error=error,
                    ),
                )
            return attrs.evolve(
                operation,
                status=status,
                end_timestamp=when,
                step_details=StepDetails(
                    attempt=int(attempt), result=result, error=error
                ),
            )
        if type_ is OperationType.CONTEXT:
            return attrs.evolve(
                operation,
                status=status,
                end_timestamp=when,
                context_details=ContextDetails(
                    replay_children=_is_batch_summary(operation, result) or None,
                    result=result,
                    error=error,
                ),
            )
        if type_ is OperationType.CALLBACK:
            previous_callback = operation.callback_details
            return attrs.evolve(
                operation,
                status=status,
                end_timestamp=when,
                callback_details=CallbackDetails(
                    previous_callback.callback_id if previous_callback else None,
                    result,
                    error,
                ),
            )
        if type_ is OperationType.CHAINED_INVOKE:
            return attrs.evolve(
                operation,
                status=status,
                end_timestamp=when,
                chained_invoke_details=ChainedInvokeDetails(result, error),
            )
        return attrs.evolve(operation, status=status, end_timestamp=when)


def _is_batch_summary(operation: Operation, result: str | None) -> bool:
    """Whether a batch's checkpoint is the summary of a result too large
    to hold, which the service marks ReplayChildren and the history does
    not."""
    # XXX: recognised by the default summary's keys only; a batch with its
    # own serdes and a summary looks like a whole result.
    if operation.sub_type not in _BATCH_SUB_TYPES or not result:
        return False
    try:
        data = json.loads(result)
    except ValueError:
        return False
    return isinstance(data, dict) and set(data) == {"summary", "reason", "units"}


def _events_of(history: Any) -> tuple[list[Mapping[str, Any]], str | None]:
    """The events of a history source, and the ARN if it names one."""
    if isinstance(history, (str, os.PathLike)):
        text = str(history) if isinstance(history, str) else None
        if text is not None and text.lstrip()[:1] in ("{", "["):
            history = json.loads(text)
        else:
            path = Path(history)
            try:
                history = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise HistoryError(f"no history file at {str(path)!r}") from None
            except json.JSONDecodeError as error:
                raise HistoryError(
                    f"history file {str(path)!r} is not JSON: {error}"
                ) from None
    arn = None
    if isinstance(history, Mapping):
        if history.get("NextMarker"):
            raise HistoryError(
                "the history is one page of several (it has a NextMarker); "
                "join the Events of every page"
            )
        arn = history.get("DurableExecutionArn")
        events = history.get("Events")
    else:
        events = history
    if not isinstance(events, list) or not all(
        isinstance(event, Mapping) for event in events
    ):
        raise HistoryError(
            'a history must be {"Events": [...]} or a list of events '
            f"(got {type(history).__name__})"
        )
    if all(isinstance(event.get("EventId"), int) for event in events):
        # ReverseOrder exports list the newest first.
        events = sorted(events, key=lambda event: event["EventId"])
    return events, arn if isinstance(arn, str) else None


def recorded_from_history(history: Any, *, arn: str | None = None) -> RecordedExecution:
    """Rebuild an execution's operations from its history events.

    Args:
        history: ``{"Events": [...]}`` as ``durable-exec history --json``
            prints it or GetDurableExecutionHistory returns it (with
            IncludeExecutionData), a list of events, JSON text, or the
            path of a JSON file.
        arn: the execution's ARN; default the one the history names, or a
            made-up one.

    Raises:
        HistoryError: the history is malformed, paged, or lacks payloads.
    """
    events, named_arn = _events_of(history)
    builder = _Builder()
    for index, event in enumerate(events):
        builder.apply(event, index)
    if builder.execution_id is None:
        raise HistoryError("the history has no ExecutionStarted event")
    execution = builder.operations[builder.execution_id]

    # The execution's own outcome, from its last event.
    status = ExecutionStatus.RUNNING
    result_payload = None
    error = None
    for event in events:
        event_type = event.get("EventType")
        details = event.get(f"{event_type}Details") or {}
        where = f"event {event.get('EventId')} ({event_type})"
        if event_type == "ExecutionSucceeded":
            status = ExecutionStatus.SUCCEEDED
            result_payload = _payload(details, "Result", where)
        elif event_type in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionStopped"):
            status = ExecutionStatus(execution.status.value)
            error = _error(details, where)

    # Without an invocation in flight or owed, the handler's next
    # operation must be recorded already.
    last = events[-1] if events else {}
    quiet = last.get("EventType") == "InvocationCompleted" and not (
        (last.get("InvocationCompletedDetails") or {}).get("Error")
    )
    complete = status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED) or (
        status is ExecutionStatus.RUNNING and quiet
    )
    return RecordedExecution(
        arn=arn
        or named_arn
        or (
            "arn:aws:lambda:us-east-1:123456789012:function:replay:$LATEST/"
            f"durable-execution/{builder.name}/{builder.execution_id}"
        ),
        name=builder.name,
        status=status,
        operations=tuple(builder.operations.values()),
        result_payload=result_payload,
        error=error,
        complete=complete,
    )


def replay_history(
    handler: DurableHandler[Any, Any],
    history: Any,
    *,
    deep: bool = True,
) -> None:
    """Replay a stored execution history with the handler's current code.

    Use it in CI to prove that a changed handler can still replay the
    executions that are in flight (or finished) before it is deployed::

        def test_checkout_replays_production_history():
            replay_history(checkout, "histories/checkout-2025-06-01.json")

    The history is rebuilt into operations (ids, types, sub-types, names,
    parents, statuses, results, errors and step attempts) and replayed
    the same way the ``durable`` fixture replays each run: nothing is
    written and no step body runs.

    Args:
        handler: the durable handler.
        history: ``{"Events": [...]}`` as ``durable-exec history --json``
            prints it or GetDurableExecutionHistory returns it (with
            IncludeExecutionData), a list of events, JSON text, or the
            path of a JSON file.
        deep: also replay inside finished child contexts.

    Raises:
        ReplayMismatch: the handler does not replay the history; the
            message holds an operation-level diff.
        HistoryError: the history cannot be replayed (malformed, paged,
            or without its payloads).
    """
    __tracebackhide__ = True
    check_recorded(handler, recorded_from_history(history), deep=deep)
