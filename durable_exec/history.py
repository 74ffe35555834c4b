"""An execution's history as a tree of operations.

The service records what an execution did as a flat list of history
events (GetDurableExecutionHistory): ``StepStarted``, ``StepFailed``,
``InvocationCompleted`` and so on, each naming its operation and that
operation's parent. :func:`build_tree` folds those events back into the
operations the handler ran: each with its status, its attempts (for
steps), its times and its children in start order, together with the
execution's invocations and outcome. :func:`format_tree` prints the tree
as text and :func:`render_html` draws it as a timeline on one page.

Everything here is a pure function of the events: nothing is invoked,
checkpointed or fetched. The events may come from the embedded engine
(``LocalEngine.history``) or from a JSON export ``{"Events": [...]}``,
with timestamps as datetimes, ISO-8601 text or epoch numbers.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from .errors import ValidationError
from .wire import ErrorObject, ExecutionStatus, OperationStatus

__all__ = [
    "Attempt",
    "ExecutionTree",
    "Invocation",
    "OperationNode",
    "build_tree",
    "format_duration",
    "format_tree",
    "load_tree",
    "parse_timestamp",
    "render_html",
]

# Operation types, named as their history events are: StepStarted, ...
STEP = "Step"
WAIT = "Wait"
CONTEXT = "Context"
CALLBACK = "Callback"
CHAINED_INVOKE = "ChainedInvoke"
# Longest first: no family is a prefix of a longer one checked later.
_FAMILIES = (CHAINED_INVOKE, CALLBACK, CONTEXT, STEP, WAIT)

_END_STATUSES = {
    "Succeeded": OperationStatus.SUCCEEDED,
    "Failed": OperationStatus.FAILED,
    "TimedOut": OperationStatus.TIMED_OUT,
    "Cancelled": OperationStatus.CANCELLED,
    "Stopped": OperationStatus.STOPPED,
}
_EXECUTION_ENDS = {
    "ExecutionSucceeded": ExecutionStatus.SUCCEEDED,
    "ExecutionFailed": ExecutionStatus.FAILED,
    "ExecutionTimedOut": ExecutionStatus.TIMED_OUT,
    "ExecutionStopped": ExecutionStatus.STOPPED,
}

# An epoch number above this is in milliseconds: as seconds it would be
# past the year 5000. The envelope uses milliseconds, rest-json seconds.
_EPOCH_MILLIS_ABOVE = 1e11

# Longest preview of a message in a line of text.
_PREVIEW_CHARS = 60

# What an HTML page shows before it sums up the rest in "+N more" rows.
HTML_MAX_CHILDREN = 50
HTML_MAX_ROWS = 2000


# -- the tree -----------------------------------------------------------------


@attrs.frozen
class Attempt:
    """One attempt of a step (or one check of a wait-for-condition).

    Attributes:
        number: 1 for the first attempt.
        status: SUCCEEDED, FAILED, or STARTED while it runs.
        start: when it started; None if the history shows no start.
        end: when it ended; None while it runs.
        error: why it failed.
        retry_delay_seconds: the delay before the next attempt, when one
            was scheduled; None after the last attempt.
        interruptions: invocations that failed (a crashed process, say)
            while the attempt was in flight; each may have run the step's
            code again.
    """

    number: int
    status: OperationStatus
    start: _dt.datetime | None
    end: _dt.datetime | None
    error: ErrorObject | None = None
    retry_delay_seconds: int | None = None
    interruptions: int = 0

    @property
    def duration(self) -> _dt.timedelta | None:
        return _between(self.start, self.end)

    @property
    def retried(self) -> bool:
        """Whether another attempt was scheduled after this one."""
        return self.retry_delay_seconds is not None


@attrs.frozen
class OperationNode:
    """One operation of an execution, with the operations it contains.

    Attributes:
        id: the operation id.
        parent_id: the id of the context it runs in; None at the top.
        type: the event family: ``Step``, ``Wait``, ``Context``,
            ``Callback`` or ``ChainedInvoke``.
        sub_type: what the handler called: ``Step``, ``WaitForCondition``,
            ``RunInChildContext``, ``Parallel``, ``ParallelBranch``,
            ``Map``, ``MapIteration``, ``WaitForCallback``, ...
        name: the name it was given, if any.
        label: ``name``, or a stand-in such as ``item 3`` or ``batch 2``.
        status: the status after the last event.
        start: its first event's time.
        end: the time it ended; None while it runs.
        attempts: a step's attempts, in order; empty for other types.
        error: the error it ended with.
        result: its result payload, as recorded.
        children: the operations started in it, in start order.
        wait_seconds: a wait's requested duration.
        scheduled_end: when a wait is (or was) due to end.
        callback_id: a callback's id.
        timeout_seconds: a callback's timeout.
        heartbeat_timeout_seconds: a callback's heartbeat timeout.
        function_name: a chained invoke's target function.
        target_arn: the execution a chained invoke started, if durable.
        batched: for a map iteration, whether it ran a batch of items.
        failed_items: for a batch, the indexes of the items that failed
            in it; the batch itself succeeds when it records them.
    """

    id: str
    parent_id: str | None
    type: str
    sub_type: str | None
    name: str | None
    label: str
    status: OperationStatus
    start: _dt.datetime | None
    end: _dt.datetime | None
    attempts: tuple[Attempt, ...] = ()
    error: ErrorObject | None = None
    result: str | None = None
    children: tuple[OperationNode, ...] = ()
    wait_seconds: int | None = None
    scheduled_end: _dt.datetime | None = None
    callback_id: str | None = None
    timeout_seconds: int | None = None
    heartbeat_timeout_seconds: int | None = None
    function_name: str | None = None
    target_arn: str | None = None
    batched: bool = False
    failed_items: tuple[int, ...] = ()

    @property
    def duration(self) -> _dt.timedelta | None:
        return _between(self.start, self.end)

    @property
    def kind(self) -> str:
        """The sub-type if known, else the type."""
        return self.sub_type or self.type

    @property
    def failed_attempts(self) -> int:
        return sum(a.status is OperationStatus.FAILED for a in self.attempts)

    @property
    def next_attempt_at(self) -> _dt.datetime | None:
        """When a step waiting for its retry is due to run again."""
        if self.status is not OperationStatus.PENDING or not self.attempts:
            return None
        last = self.attempts[-1]
        if last.end is None or last.retry_delay_seconds is None:
            return None
        return last.end + _dt.timedelta(seconds=last.retry_delay_seconds)

    def walk(self) -> Iterator[OperationNode]:
        """This operation and everything under it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()


@attrs.frozen
class Invocation:
    """One invocation of the handler.

    Attributes:
        number: 1 for the first invocation.
        request_id: its request id.
        start: when it started.
        end: when it ended.
        error: why it failed, when it did not answer (``Runtime.ExitError``
            after a crashed process).
    """

    number: int
    request_id: str | None
    start: _dt.datetime | None
    end: _dt.datetime | None
    error: ErrorObject | None = None

    @property
    def duration(self) -> _dt.timedelta | None:
        return _between(self.start, self.end)

    @property
    def failed(self) -> bool:
        return self.error is not None


@attrs.frozen
class ExecutionTree:
    """An execution as its history tells it.

    Attributes:
        execution_id: the EXECUTION operation's id.
        name: the execution's name.
        status: RUNNING until a terminal event, then how it ended.
        start: when it started (its first event).
        end: when it ended; None while it runs.
        last_event_at: the time of its latest event.
        input: the input payload, as recorded.
        result: the result payload, if it succeeded.
        error: the error, if it failed, timed out or was stopped.
        timeout_seconds: the execution timeout.
        operations: the top-level operations, in start order.
        invocations: the handler's invocations, in order.
        event_count: how many events the history holds.
    """

    execution_id: str | None
    name: str | None
    status: ExecutionStatus
    start: _dt.datetime | None
    end: _dt.datetime | None
    last_event_at: _dt.datetime | None
    input: str | None
    result: str | None
    error: ErrorObject | None
    timeout_seconds: int | None
    operations: tuple[OperationNode, ...]
    invocations: tuple[Invocation, ...]
    event_count: int

    @property
    def duration(self) -> _dt.timedelta | None:
        return _between(self.start, self.end)

    def walk(self) -> Iterator[OperationNode]:
        """Every operation, depth first in start order."""
        for operation in self.operations:
            yield from operation.walk()

    def find(self, operation_id: str) -> OperationNode:
        """The operation with this id."""
        for operation in self.walk():
            if operation.id == operation_id:
                return operation
        raise KeyError(f"no operation has the id {operation_id!r}")


# -- building -----------------------------------------------------------------


def build_tree(
    history: Iterable[Mapping[str, Any]] | Mapping[str, Any],
) -> ExecutionTree:
    """Fold history events into an :class:`ExecutionTree`.

    Args:
        history: the events, in the shape of GetDurableExecutionHistory,
            or that response itself (``{"Events": [...]}``). Events are
            taken in ``EventId`` order, so pages may come in any order.

    Raises:
        ValidationError: an event is not a mapping with an ``EventType``,
            or a timestamp cannot be read.
    """
    builder = _Builder()
    for event in _events_of(history):
        builder.add(event)
    return builder.finish()


def load_tree(path: str | os.PathLike[str]) -> ExecutionTree:
    """Read a history exported as JSON (``{"Events": [...]}`` or a list)
    and build its tree."""
    with open(path, encoding="utf-8") as file:
        try:
            data = json.load(file)
        except json.JSONDecodeError as error:
            raise ValidationError(
                f"history file {os.fspath(path)!r} is not JSON: {error}"
            ) from None
    return build_tree(data)


def parse_timestamp(value: Any) -> _dt.datetime | None:
    """A history timestamp as an aware UTC datetime.

    Accepts a datetime (naive ones are taken as UTC), ISO-8601 text, or an
    epoch number: seconds, or milliseconds when it is too large to be
    seconds. None stays None.
    """
    if value is None:
        return None
    moment: _dt.datetime
    if isinstance(value, _dt.datetime):
        moment = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValidationError(f"timestamp must be finite (got {value!r})")
        seconds = value / 1000 if abs(value) > _EPOCH_MILLIS_ABOVE else value
        moment = _dt.datetime.fromtimestamp(seconds, _dt.UTC)
    elif isinstance(value, str):
        try:
            moment = _dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(
                "timestamp must be ISO-8601 text, an epoch number or a "
                f"datetime (got {value!r})"
            ) from None
    else:
        raise ValidationError(
            "timestamp must be ISO-8601 text, an epoch number or a "
            f"datetime (got {value!r})"
        )
    if moment.tzinfo is None:
        return moment.replace(tzinfo=_dt.UTC)
    return moment.astimezone(_dt.UTC)


def _events_of(
    history: Iterable[Mapping[str, Any]] | Mapping[str, Any],
) -> list[Mapping[str, Any]]:
    listed: Any = history
    if isinstance(history, Mapping):
        if "Events" not in history:
            raise ValidationError(
                "history must be a list of events or a mapping with "
                f"'Events' (got keys {sorted(history)!r})"
            )
        listed = history["Events"]
    if isinstance(listed, (str, bytes)) or not isinstance(listed, Iterable):
        raise ValidationError(
            f"history must be a list of events (got {type(listed).__name__})"
        )
    events: list[Mapping[str, Any]] = list(listed)
    for index, event in enumerate(events):
        if not isinstance(event, Mapping) or "EventType" not in event:
            raise ValidationError(
                f"event {index} must be a mapping with an EventType (got {event!r:.80})"
            )

    # Pages of a long history may overlap or come newest first.
    if all(isinstance(event.get("EventId"), int) for event in events):
        unique = {event["EventId"]: event for event in reversed(events)}
        events = [unique[key] for key in sorted(unique)]
    return events


@attrs.define
class _AttemptState:
    number: int
    start: _dt.datetime | None
    start_event: int
    status: OperationStatus = OperationStatus.STARTED
    end: _dt.datetime | None = None
    end_event: int | None = None
    error: ErrorObject | None = None
    retry_delay_seconds: int | None = None


@attrs.define
class _OperationState:
    """An operation while its events are read."""

    id: str
    type: str
    first_event: int
    parent_id: str | None = None
    sub_type: str | None = None
    name: str | None = None
    status: OperationStatus = OperationStatus.STARTED
    start: _dt.datetime | None = None
    end: _dt.datetime | None = None
    attempts: list[_AttemptState] = attrs.Factory(list)
    error: ErrorObject | None = None
    result: str | None = None
    children: list[str] = attrs.Factory(list)
    wait_seconds: int | None = None
    scheduled_end: _dt.datetime | None = None
    callback_id: str | None = None
    timeout_seconds: int | None = None
    heartbeat_timeout_seconds: int | None = None
    function_name: str | None = None
    target_arn: str | None = None
    # For a map: whether it ran batches; None until known.
    batched: bool | None = None


@attrs.define
class _InvocationState:
    request_id: str | None
    start: _dt.datetime | None
    end: _dt.datetime | None
    event: int
    error: ErrorObject | None


class _Builder:
    """Reads events in order; ``finish`` freezes what they built."""

    def __init__(self) -> None:
        self.operations: dict[str, _OperationState] = {}
        self.invocations: list[_InvocationState] = []
        self.execution_id: str | None = None
        self.name: str | None = None
        self.status = ExecutionStatus.RUNNING
        self.start: _dt.datetime | None = None
        self.end: _dt.datetime | None = None
        self.last: _dt.datetime | None = None
        self.input: str | None = None
        self.result: str | None = None
        self.error: ErrorObject | None = None
        self.timeout_seconds: int | None = None
        self.count = 0

    def add(self, event: Mapping[str, Any]) -> None:
        self.count += 1
        event_type = _text(event["EventType"])
        when = parse_timestamp(event.get("EventTimestamp"))
        if when is not None:
            if self.start is None:
                self.start = when
            if self.last is None or when > self.last:
                self.last = when
        details = event.get(f"{event_type}Details") or {}
        event_id = event.get("EventId")
        order = event_id if isinstance(event_id, int) else self.count

        if event_type.startswith("Execution"):
            self._execution(event, event_type, when, details)
        elif event_type == "InvocationCompleted":
            self.invocations.append(
                _InvocationState(
                    request_id=details.get("RequestId"),
                    start=parse_timestamp(details.get("StartTimestamp")),
                    end=parse_timestamp(details.get("EndTimestamp")) or when,
                    event=order,
                    error=_error_of(details),
                )
            )
        else:
            for family in _FAMILIES:
                if event_type.startswith(family) and "Id" in event:
                    verb = event_type[len(family) :]
                    self._operation(event, family, verb, when, details, order)
                    break
            # Anything else (ExecutionPaused, newer event types) says
            # nothing about operations: it is skipped.

    def _execution(
        self,
        event: Mapping[str, Any],
        event_type: str,
        when: _dt.datetime | None,
        details: Mapping[str, Any],
    ) -> None:
        if event_type == "ExecutionStarted":
            self.execution_id = _optional_text(event.get("Id"))
            self.name = _optional_text(event.get("Name"))
            if when is not None:
                self.start = when
            self.input = _payload(details.get("Input"))
            timeout = details.get("ExecutionTimeout")
            self.timeout_seconds = timeout if isinstance(timeout, int) else None
        elif event_type in _EXECUTION_ENDS:
            self.status = _EXECUTION_ENDS[event_type]
            self.end = when
            self.result = _payload(details.get("Result"))
            self.error = _error_of(details)

    def _operation(
        self,
        event: Mapping[str, Any],
        family: str,
        verb: str,
        when: _dt.datetime | None,
        details: Mapping[str, Any],
        order: int,
    ) -> None:
        op_id = _text(event["Id"])
        op = self.operations.get(op_id)
        if op is None:
            op = self.operations[op_id] = _OperationState(op_id, family, order)
            op.start = when
        op.parent_id = _optional_text(event.get("ParentId")) or op.parent_id
        op.sub_type = _optional_text(event.get("SubType")) or op.sub_type
        op.name = _optional_text(event.get("Name")) or op.name

        if family == STEP:
            self._step(op, verb, when, details, order)
            return
        if verb == "Started":
            op.status = OperationStatus.STARTED
            if family == WAIT:
                op.wait_seconds = _int_or_none(details.get("Duration"))
                op.scheduled_end = parse_timestamp(details.get("ScheduledEndTimestamp"))
            elif family == CALLBACK:
                op.callback_id = details.get("CallbackId")
                op.timeout_seconds = _int_or_none(details.get("Timeout"))
                op.heartbeat_timeout_seconds = _int_or_none(
                    details.get("HeartbeatTimeout")
                )
            elif family == CHAINED_INVOKE:
                op.function_name = details.get("FunctionName")
                op.target_arn = details.get("DurableExecutionArn")
            return
        status = _END_STATUSES.get(verb)
        if status is None:
            return
        op.status = status
        op.end = when
        op.error = _error_of(details)
        op.result = _payload(details.get("Result"))
        if family == WAIT and op.wait_seconds is None:
            op.wait_seconds = _int_or_none(details.get("Duration"))

    def _step(
        self,
        op: _OperationState,
        verb: str,
        when: _dt.datetime | None,
        details: Mapping[str, Any],
        order: int,
    ) -> None:
        if verb == "Started":
            op.status = OperationStatus.STARTED
            op.attempts.append(_AttemptState(len(op.attempts) + 1, when, order))
            return
        status = _END_STATUSES.get(verb)
        if status is None:
            return

        # The attempt that ended: the open one, or one whose start the
        # history does not show (a step that succeeded without a START).
        if op.attempts and op.attempts[-1].end_event is None:
            attempt = op.attempts[-1]
        else:
            attempt = _AttemptState(len(op.attempts) + 1, when, order)
            op.attempts.append(attempt)
        retry = details.get("RetryDetails") or {}
        number = _int_or_none(retry.get("CurrentAttempt"))
        if number is not None:
            attempt.number = number
        attempt.status = status
        attempt.end = when
        attempt.end_event = order
        attempt.error = _error_of(details)
        attempt.retry_delay_seconds = _int_or_none(retry.get("NextAttemptDelaySeconds"))

        # A retry leaves the step waiting for its next attempt.
        op.result = _payload(details.get("Result"))
        if attempt.retry_delay_seconds is not None:
            op.status = OperationStatus.PENDING
            op.error = None
        else:
            op.status = status
            op.end = when
            op.error = attempt.error

    def finish(self) -> ExecutionTree:
        # Link children to parents; an operation whose parent the history
        # does not hold is shown at the top rather than lost.
        roots: list[str] = []
        for op in self.operations.values():
            parent = self.operations.get(op.parent_id or "")
            if parent is not None and parent is not op:
                parent.children.append(op.id)
            else:
                roots.append(op.id)

        failed_invocations = [
            invocation.event
            for invocation in self.invocations
            if invocation.error is not None
        ]
        built = tuple(
            self._freeze(self.operations[op_id], {}, failed_invocations)
            for op_id in roots
        )
        invocations = tuple(
            Invocation(number, state.request_id, state.start, state.end, state.error)
            for number, state in enumerate(self.invocations, start=1)
        )
        return ExecutionTree(
            execution_id=self.execution_id,
            name=self.name,
            status=self.status,
            start=self.start,
            end=self.end,
            last_event_at=self.last,
            input=self.input,
            result=self.result,
            error=self.error,
            timeout_seconds=self.timeout_seconds,
            operations=built,
            invocations=invocations,
            event_count=self.count,
        )

    def _freeze(
        self,
        op: _OperationState,
        units: Mapping[str, _Unit],
        failed_invocations: Sequence[int],
    ) -> OperationNode:
        own_units = self._unit_info(op)
        children = tuple(
            self._freeze(self.operations[child], own_units, failed_invocations)
            for child in op.children
        )
        unit = units.get(op.id)
        op_kind = op.sub_type or op.type
        attempts = tuple(
            Attempt(
                number=state.number,
                status=state.status,
                start=state.start,
                end=state.end,
                error=state.error,
                retry_delay_seconds=state.retry_delay_seconds,
                interruptions=sum(
                    state.start_event < event
                    and (state.end_event is None or event < state.end_event)
                    for event in failed_invocations
                ),
            )
            for state in op.attempts
        )
        return OperationNode(
            id=op.id,
            parent_id=op.parent_id,
            type=op.type,
            sub_type=op.sub_type,
            name=op.name,
            label=op.name or (unit.label if unit else op_kind.lower()),
            status=op.status,
            start=op.start,
            end=op.end,
            attempts=attempts,
            error=op.error,
            result=op.result,
            children=children,
            wait_seconds=op.wait_seconds,
            scheduled_end=op.scheduled_end,
            callback_id=op.callback_id,
            timeout_seconds=op.timeout_seconds,
            heartbeat_timeout_seconds=op.heartbeat_timeout_seconds,
            function_name=op.function_name,
            target_arn=op.target_arn,
            batched=op.sub_type == "MapIteration" and self._batched(op),
            failed_items=unit.failed_items if unit else (),
        )

    def _units(self, op: _OperationState) -> list[_OperationState]:
        """A parallel's branches or a map's iterations, in start order."""
        unit_type = {"Parallel": "ParallelBranch", "Map": "MapIteration"}.get(
            op.sub_type or ""
        )
        return [
            self.operations[child]
            for child in op.children
            if self.operations[child].sub_type == unit_type
        ]

    def _batched(self, op: _OperationState) -> bool:
        """Whether ``op`` is a map that ran its items in batches, or an
        iteration of one.

        The history does not say so outright. A batch's result is a list
        of ``{"r": ...}`` / ``{"e": ...}`` entries, one per item, and a
        map's own result lists more items than it has iterations.
        """
        if op.sub_type == "MapIteration":
            parent = self.operations.get(op.parent_id or "")
            return parent is not None and self._batched(parent)
        if op.sub_type != "Map":
            return False
        if op.batched is None:
            iterations = self._units(op)
            summary = _json_or_none(op.result)
            items = summary.get("items") if isinstance(summary, Mapping) else None
            finished = [it for it in iterations if it.result is not None]
            op.batched = (isinstance(items, list) and len(items) > len(iterations)) or (
                bool(finished)
                and all(_batch_entries(it.result) is not None for it in finished)
            )
        return op.batched

    def _unit_info(self, op: _OperationState) -> dict[str, _Unit]:
        """Labels for the branches, items or batches of ``op`` (``branch
        0``, ``item 3``, ``batch 1 (items 2-3)``) and the items each batch
        failed."""
        units = self._units(op)
        if not units:
            return {}
        positions = {unit.id: _unit_position(unit, op, units) for unit in units}
        if op.sub_type == "Parallel":
            return {unit: _Unit(f"branch {index}") for unit, index in positions.items()}
        if not self._batched(op):
            return {unit: _Unit(f"item {index}") for unit, index in positions.items()}

        # Batches hold consecutive runs of items: count the items before.
        info: dict[str, _Unit] = {}
        first: int | None = 0
        for unit in sorted(units, key=lambda unit: positions[unit.id]):
            index = positions[unit.id]
            entries = _json_or_none(unit.result)
            count = _batch_entries(unit.result)
            if first is None or count is None:
                info[unit.id] = _Unit(f"batch {index}")
                first = None
                continue
            failed = tuple(
                first + offset for offset, entry in enumerate(entries) if "e" in entry
            )
            if count == 1:
                label = f"batch {index} (item {first})"
            else:
                label = f"batch {index} (items {first}-{first + count - 1})"
            info[unit.id] = _Unit(label, failed)
            first += count
        return info


@attrs.frozen
class _Unit:
    """What a parallel or map tells about one of its units."""

    label: str
    failed_items: tuple[int, ...] = ()


def _unit_position(
    unit: _OperationState,
    parent: _OperationState,
    units: Sequence[_OperationState],
) -> int:
    """The 0-based index of a branch, item or batch in its batch.

    Ids of this SDK say it (``<parent>-<index + 1>``); otherwise the
    position among its siblings in start order stands in.
    """
    prefix = f"{parent.id}-"
    suffix = unit.id[len(prefix) :]
    if unit.id.startswith(prefix) and suffix.isdigit():
        return int(suffix) - 1
    return units.index(unit)


def _batch_entries(payload: str | None) -> int | None:
    """How many items a batch's result holds; None if not a batch's."""
    entries = _json_or_none(payload)
    if not isinstance(entries, list) or not entries:
        return None
    for entry in entries:
        if not isinstance(entry, Mapping) or len(entry) != 1:
            return None
        if not ({"r", "e"} & set(entry)):
            return None
    return len(entries)


def _json_or_none(payload: str | None) -> Any:
    if not payload:
        return None
    try:
        return json.loads(payload)
    except ValueError:
        return None


def _text(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def _optional_text(value: Any) -> str | None:
    return None if value is None or value == "" else _text(value)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def _payload(value: Any) -> str | None:
    if isinstance(value, Mapping):
        payload = value.get("Payload")
        return payload if isinstance(payload, str) else None
    return None


def _error_of(details: Mapping[str, Any]) -> ErrorObject | None:
    error = details.get("Error")
    if not isinstance(error, Mapping):
        return None
    payload = error.get("Payload")
    if not isinstance(payload, Mapping):
        # Without execution data the payload is left out: an error, unknown.
        return ErrorObject()
    trace = payload.get("StackTrace")
    return ErrorObject(
        error_message=_optional_text(payload.get("ErrorMessage")),
        error_type=_optional_text(payload.get("ErrorType")),
        error_data=_optional_text(payload.get("ErrorData")),
        stack_trace=tuple(map(str, trace)) if isinstance(trace, list) else None,
    )


def _between(
    start: _dt.datetime | None, end: _dt.datetime | None
) -> _dt.timedelta | None:
    if start is None or end is None:
        return None
    return max(end - start, _dt.timedelta(0))


# -- text ---------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    """A duration in a few characters: ``0ms``, ``2.250s``, ``4m05s``,
    ``3h02m``, ``2d05h``."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.3f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def format_tree(tree: ExecutionTree, *, max_children: int | None = None) -> str:
    """The tree as text: a summary, a table of operations indented under
    their parents (a step's attempts under it when it had more than one),
    and a table of invocations.

    Args:
        tree: what :func:`build_tree` returned.
        max_children: show at most this many children of an operation
            and sum up the rest in one line; default None: all of them.
    """
    if max_children is not None and max_children < 1:
        raise ValidationError(
            f"max_children must be >= 1 or None (got {max_children!r})"
        )
    lines = [_summary_line(tree)]
    if tree.start is not None:
        lines.append(f"started {_format_moment(tree.start)}")
    if tree.error is not None:
        lines.append(f"error: {_error_text(tree.error)}")

    rows: list[tuple[str, ...]] = []
    for depth, item in _rows(tree.operations, 0, max_children):
        if isinstance(item, OperationNode):
            rows.extend(_operation_rows(item, depth, tree.start))
        else:
            rows.append(_hidden_row(item, depth))
    lines.append("")
    if rows:
        header = ("ID", "OPERATION", "TYPE", "STATUS", "START", "DURATION", "DETAILS")
        lines.extend(_table(header, rows))
    else:
        lines.append("no operations")

    if tree.invocations:
        lines.append("")
        lines.extend(
            _table(
                ("INVOCATION", "START", "DURATION", "OUTCOME"),
                [_invocation_row(inv, tree.start) for inv in tree.invocations],
            )
        )
    return "\n".join(lines) + "\n"


def _summary_line(tree: ExecutionTree) -> str:
    text = f"execution {tree.name or tree.execution_id or '?'}: {tree.status.value}"
    if tree.duration is not None:
        text += f" after {format_duration(tree.duration.total_seconds())}"
    count = len(tree.invocations)
    text += f", {count} invocation{'s' if count != 1 else ''}"
    failed = sum(invocation.failed for invocation in tree.invocations)
    if failed:
        text += f" ({failed} failed)"
    operations = sum(1 for _ in tree.walk())
    text += f", {operations} operation{'s' if operations != 1 else ''}"
    return text


@attrs.frozen
class _Hidden:
    """Siblings left out beyond ``max_children``."""

    operations: tuple[OperationNode, ...]

    def counts(self) -> str:
        statuses: dict[str, int] = {}
        for operation in self.operations:
            statuses[operation.status.value] = (
                statuses.get(operation.status.value, 0) + 1
            )
        return ", ".join(f"{count} {status}" for status, count in statuses.items())


def _rows(
    operations: Sequence[OperationNode], depth: int, max_children: int | None
) -> Iterator[tuple[int, OperationNode | _Hidden]]:
    shown = operations if max_children is None else operations[:max_children]
    for operation in shown:
        yield depth, operation
        yield from _rows(operation.children, depth + 1, max_children)
    if len(shown) < len(operations):
        yield depth, _Hidden(tuple(operations[len(shown) :]))


def _operation_rows(
    node: OperationNode, depth: int, origin: _dt.datetime | None
) -> list[tuple[str, ...]]:
    indent = "  " * depth
    rows: list[tuple[str, ...]] = [
        (
            node.id,
            indent + node.label,
            node.kind,
            node.status.value,
            _offset(node.start, origin),
            _duration_text(node.duration),
            _node_details(node, origin),
        )
    ]
    if len(node.attempts) > 1 or any(a.interruptions for a in node.attempts):
        for attempt in node.attempts:
            rows.append(
                (
                    "",
                    f"{indent}  attempt {attempt.number}",
                    "",
                    attempt.status.value,
                    _offset(attempt.start, origin),
                    _duration_text(attempt.duration),
                    _attempt_details(attempt, node.sub_type),
                )
            )
    return rows


def _hidden_row(hidden: _Hidden, depth: int) -> tuple[str, ...]:
    count = len(hidden.operations)
    return ("", "  " * depth + f"+{count} more", "", "", "", "", hidden.counts())


def _node_details(node: OperationNode, origin: _dt.datetime | None) -> str:
    parts: list[str] = []
    if node.attempts and (len(node.attempts) > 1 or node.failed_attempts):
        parts.append(f"{len(node.attempts)} attempt{'s' * (len(node.attempts) > 1)}")
    if node.wait_seconds is not None:
        parts.append(f"{node.wait_seconds} s")
    if node.timeout_seconds is not None:
        parts.append(f"timeout {node.timeout_seconds} s")
    if node.heartbeat_timeout_seconds is not None:
        parts.append(f"heartbeat {node.heartbeat_timeout_seconds} s")
    if node.function_name:
        parts.append(f"-> {node.function_name}")
    if node.next_attempt_at is not None:
        parts.append(f"next attempt at {_offset(node.next_attempt_at, origin)}")
    if node.status is OperationStatus.STARTED and node.scheduled_end is not None:
        parts.append(f"due at {_offset(node.scheduled_end, origin)}")
    if node.failed_items:
        parts.append(_failed_items_text(node.failed_items))
    if node.error is not None:
        parts.append(_error_text(node.error))
    return ", ".join(parts)


def _failed_items_text(items: Sequence[int]) -> str:
    """``item 4 failed`` or ``items 4, 9 failed``."""
    listed = ", ".join(map(str, items))
    return f"item{'s' if len(items) > 1 else ''} {listed} failed"


def _attempt_details(attempt: Attempt, sub_type: str | None) -> str:
    parts: list[str] = []
    if attempt.error is not None:
        parts.append(_error_text(attempt.error))
    if attempt.retry_delay_seconds is not None:
        again = "check again" if sub_type == "WaitForCondition" else "retry"
        parts.append(f"{again} in {attempt.retry_delay_seconds} s")
    if attempt.interruptions:
        plural = "s" if attempt.interruptions > 1 else ""
        parts.append(
            f"in flight when {attempt.interruptions} invocation{plural} failed"
        )
    return ", ".join(parts)


def _invocation_row(
    invocation: Invocation, origin: _dt.datetime | None
) -> tuple[str, ...]:
    outcome = "ok" if invocation.error is None else _error_text(invocation.error)
    return (
        str(invocation.number),
        _offset(invocation.start, origin),
        _duration_text(invocation.duration),
        outcome,
    )


def _error_text(error: ErrorObject) -> str:
    text = error.error_type or "Error"
    if error.error_message:
        text += f": {_preview(error.error_message)}"
    return text


def _preview(text: str) -> str:
    text = " ".join(str(text).split())
    if len(text) <= _PREVIEW_CHARS:
        return text
    return text[: _PREVIEW_CHARS - 3] + "..."


def _offset(moment: _dt.datetime | None, origin: _dt.datetime | None) -> str:
    if moment is None or origin is None:
        return "-"
    return "+" + format_duration((moment - origin).total_seconds())


def _duration_text(duration: _dt.timedelta | None) -> str:
    return "-" if duration is None else format_duration(duration.total_seconds())


def _format_moment(moment: _dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [
        max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))
    ]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()
        for cells in [header, *rows]
    ]


# -- HTML ---------------------------------------------------------------------


def render_html(
    tree: ExecutionTree,
    *,
    title: str | None = None,
    max_children: int = HTML_MAX_CHILDREN,
    max_rows: int = HTML_MAX_ROWS,
) -> str:
    """The tree as one self-contained HTML page: a timeline with a bar per
    operation, nested under its parent, and the invocations as bands.

    The page holds its CSS and a few lines of JavaScript inline and loads
    nothing. A large tree is cut: beyond ``max_children`` children of one
    operation, or ``max_rows`` rows in all, the rest of the siblings are
    summed up in one "+N more" row.

    Args:
        tree: what :func:`build_tree` returned.
        title: the page title; default the execution's name.
        max_children: children shown per operation, >= 1 (default 50).
        max_rows: rows shown in all, >= 1 (default 2000).
    """
    for name, value in (("max_children", max_children), ("max_rows", max_rows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationError(f"{name} must be an integer >= 1 (got {value!r})")

    # Imported here: the page module builds on this one.
    from . import _history_html

    return _history_html.render(
        tree, title=title, max_children=max_children, max_rows=max_rows
    )
