"""The embedded engine: the service side of the durable execution API.

It does what the Lambda durable execution service does, on one machine:
applies checkpoint updates to stored operations after validating them as
the service would, records history events, runs timers (waits, retry
delays, the execution timeout), and invokes the handler again whenever
something changed while no invocation ran, until the execution ends.

Guarantees
----------
* ``_lock`` (an RLock) guards every record and the store. Each service
  call — a checkpoint, a state read — is applied whole under it: all of a
  checkpoint's updates or none.
* One invocation per execution at a time. Its token is the only one
  accepted; each accepted checkpoint replaces it, and the invocation's end
  voids it.
* Every change to an execution is committed to the store before the call
  that made it returns, so with :class:`SqliteStore` a crash loses nothing
  that was acknowledged.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import logging
import os
import re
import secrets
import socket
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

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
    OperationType,
    OperationUpdate,
    StatePage,
    StepDetails,
    WaitDetails,
    to_wire,
)
from ._clock import Clock, RealClock
from ._errors import (
    CallbackTimeoutException,
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from ._store import ExecutionRecord, MemoryStore, Store

__all__ = ["Engine", "Invoker", "InvocationOutcome"]

logger = logging.getLogger(__name__)

ACCOUNT = "123456789012"
REGION = "us-east-1"

DEFAULT_EXECUTION_TIMEOUT = 31_622_400
MAX_SECONDS = 31_622_400
MAX_ERROR_CHARS = 32_768
MAX_PAYLOAD_CHARS = 6_291_456
# A failed invocation is retried after this long, at most this many times
# in a row, and a PENDING reply with nothing pending is accepted this many
# times, as the service does.
INVOCATION_RETRY_DELAY = _dt.timedelta(seconds=5)
MAX_FAILED_INVOCATIONS = 5
MAX_IDLE_PENDINGS = 3
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 1000

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SUB_TYPE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_NAME = re.compile(r"[\x20-\x7e]{1,256}")
_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EXECUTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

_ALLOWED: dict[OperationType, frozenset[OperationAction]] = {
    OperationType.EXECUTION: frozenset({OperationAction.SUCCEED, OperationAction.FAIL}),
    OperationType.STEP: frozenset(
        {
            OperationAction.START,
            OperationAction.SUCCEED,
            OperationAction.FAIL,
            OperationAction.RETRY,
        }
    ),
    OperationType.WAIT: frozenset({OperationAction.START, OperationAction.CANCEL}),
    OperationType.CONTEXT: frozenset(
        {OperationAction.START, OperationAction.SUCCEED, OperationAction.FAIL}
    ),
    OperationType.CALLBACK: frozenset({OperationAction.START}),
    OperationType.CHAINED_INVOKE: frozenset({OperationAction.START}),
}

MAX_CALLBACK_SECONDS = 99_999_999
MAX_CALLBACK_RESULT_BYTES = 1024 * 1024
MAX_CHAINED_PAYLOAD_BYTES = 1024 * 1024
_TENANT_ID = re.compile(r"[\x21-\x7e]{1,256}")
_FUNCTION_REFERENCE = re.compile(
    r"(?:arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:function:)?"
    r"([A-Za-z0-9_-]{1,64})(?::([A-Za-z0-9$_.-]{1,128}))?"
)
_HEARTBEAT = "#heartbeat"


def function_name_of(reference: str) -> str | None:
    """The function name in a name, ``name:qualifier`` or function ARN."""
    match = _FUNCTION_REFERENCE.fullmatch(reference)
    return match.group(1) if match else None


@attrs.frozen
class InvocationOutcome:
    """What came of one invocation: the handler's output, or why none."""

    output: Any = None
    error: ErrorObject | None = None


# Runs one invocation: (engine, record, envelope) -> outcome.
Invoker = Callable[["Engine", ExecutionRecord, dict[str, Any]], InvocationOutcome]


_OPERATION_FIELDS = tuple(field.name for field in attrs.fields(Operation))


def _evolve(operation: Operation, **changes: Any) -> Operation:
    """``attrs.evolve`` for operations, without its per-call introspection."""
    values = {name: getattr(operation, name) for name in _OPERATION_FIELDS}
    values.update(changes)
    return Operation(**values)


class _Where:
    """Names an update in a refusal; formatted only if one is raised."""

    __slots__ = ("index", "id")

    def __init__(self, index: int, id: str) -> None:
        self.index = index
        self.id = id

    def __format__(self, spec: str) -> str:
        return f"update {self.index} (Id {self.id!r})"

    def __str__(self) -> str:
        return format(self, "")


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_alive(owner: str | None) -> bool:
    if not owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        # Another machine's process; assume it is alive.
        return True
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def _event_error(error: ErrorObject | None) -> dict[str, Any]:
    return {"Payload": to_wire(error) if error else {}, "Truncated": False}


def _event_payload(payload: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {"Truncated": False}
    if payload is not None:
        data["Payload"] = payload
    return data


class Engine:
    """The service side of the durable execution API, on one machine.

    Args:
        store: where executions are kept; default in memory.
        clock: the engine's time; default the wall clock.
        page_size: operations per page of state (envelope and reads).
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        clock: Clock | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        self.store: Store = store if store is not None else MemoryStore()
        self.clock: Clock = clock if clock is not None else RealClock()
        self.page_size = page_size
        self._lock = threading.RLock()
        # Answers whether a function name may be the target of a chained
        # invoke; the runner that knows the registered functions sets it.
        self.function_exists: Callable[[str], bool] = lambda name: False
        # The execution timeout of a function's executions, from its
        # durable config; set by the same runner.
        self.execution_timeout_of: Callable[[str], int] = lambda name: (
            DEFAULT_EXECUTION_TIMEOUT
        )

    def _now(self) -> _dt.datetime:
        # Whole milliseconds, the precision the wire and the store keep, so
        # a record reads the same before and after a round trip.
        now = self.clock.now()
        return now.replace(microsecond=now.microsecond // 1000 * 1000)

    # -- records -----------------------------------------------------------

    def _record(self, arn: str) -> ExecutionRecord:
        record = self.store.load(arn)
        if record is None:
            raise ResourceNotFoundException(f"no durable execution has the ARN {arn!r}")
        return record

    def find_arns(
        self, *, name: str | None = None, function_name: str | None = None
    ) -> list[str]:
        with self._lock:
            return self.store.find(name=name, function_name=function_name)

    def record(self, arn: str) -> ExecutionRecord:
        """The stored record of ``arn``; raises ResourceNotFound."""
        with self._lock:
            return self._record(arn)

    def snapshot(self, arn: str) -> ExecutionRecord:
        """A copy of the stored record of ``arn``, taken under the lock.

        The engine changes records in place; a reader on another thread
        gets a consistent copy to read at leisure. Operations and events
        are shared, not copied: neither is changed once stored.
        """
        with self._lock:
            record = self._record(arn)
            return attrs.evolve(
                record,
                operations=dict(record.operations),
                events=list(record.events),
                unseen=list(record.unseen),
                timers=dict(record.timers),
            )

    def refresh(self, arn: str) -> None:
        """Forget the cached record; another process may have changed it."""
        with self._lock:
            self.store.forget(arn)

    # -- starting ----------------------------------------------------------

    def create_execution(
        self,
        function_name: str,
        input_payload: str,
        *,
        name: str | None = None,
        timeout_seconds: int = DEFAULT_EXECUTION_TIMEOUT,
        parent: tuple[str, str] | None = None,
        handler_ref: str | None = None,
    ) -> str:
        """Create an execution and owe it a first invocation.

        An execution name is unique per function: creating one whose name
        exists returns the existing execution's ARN, as a repeated
        Lambda invoke with the same execution name does.
        """
        if not isinstance(function_name, str) or not _FUNCTION_NAME.fullmatch(
            function_name
        ):
            raise InvalidParameterValueException(
                "function name must be 1 to 64 letters, digits, '-' or '_' "
                f"(got {function_name!r})"
            )
        if name is not None and (
            not isinstance(name, str) or not _EXECUTION_NAME.fullmatch(name)
        ):
            raise InvalidParameterValueException(
                "execution name must be 1 to 64 letters, digits, '-' or '_' "
                f"(got {name!r})"
            )
        if (
            isinstance(timeout_seconds, bool)
            or not isinstance(timeout_seconds, int)
            or not 1 <= timeout_seconds <= MAX_SECONDS
        ):
            raise InvalidParameterValueException(
                f"execution timeout must be 1 to {MAX_SECONDS} seconds "
                f"(got {timeout_seconds!r})"
            )
        if len(input_payload) > MAX_PAYLOAD_CHARS:
            raise InvalidParameterValueException(
                f"input payload is {len(input_payload):,} characters; at most "
                f"{MAX_PAYLOAD_CHARS:,} are accepted"
            )
        with self._lock:
            if name is not None:
                existing = self.store.find(name=name, function_name=function_name)
                if existing:
                    return existing[0]
            execution_id = uuid.uuid4().hex
            name = name or execution_id
            arn = (
                f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}:"
                f"$LATEST/durable-execution/{name}/{execution_id}"
            )
            now = self._now()
            record = ExecutionRecord(
                arn=arn,
                name=name,
                function_name=function_name,
                execution_id=execution_id,
                status=ExecutionStatus.RUNNING,
                input_payload=input_payload,
                start=now,
                timeout_seconds=timeout_seconds,
                parent_arn=parent[0] if parent else None,
                parent_operation_id=parent[1] if parent else None,
                handler_ref=handler_ref,
            )
            record.operations[execution_id] = Operation(
                id=execution_id,
                type=OperationType.EXECUTION,
                status=OperationStatus.STARTED,
                start_timestamp=now,
                name=name,
                execution_details=ExecutionDetails(input_payload),
            )
            record.timers["$timeout"] = now + _dt.timedelta(seconds=timeout_seconds)
            self._append_event(
                record,
                "ExecutionStarted",
                now,
                operation=record.operations[execution_id],
                details={
                    "Input": _event_payload(input_payload),
                    "ExecutionTimeout": timeout_seconds,
                },
            )
            self.store.create(record)
            logger.debug("created execution %s", arn)
            return arn

    # -- events ------------------------------------------------------------

    def _append_event(
        self,
        record: ExecutionRecord,
        event_type: str,
        when: _dt.datetime,
        *,
        operation: Operation | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "EventType": event_type,
            "EventId": len(record.events) + 1,
            "EventTimestamp": when,
        }
        if operation is not None:
            event["Id"] = operation.id
            if operation.name is not None:
                event["Name"] = operation.name
            if operation.sub_type is not None:
                event["SubType"] = operation.sub_type
            if operation.parent_id is not None:
                event["ParentId"] = operation.parent_id
        event[f"{event_type}Details"] = dict(details or {})
        record.events.append(event)
        return event

    # -- the checkpoint API ------------------------------------------------

    def checkpoint(
        self,
        arn: str,
        checkpoint_token: str,
        updates: Sequence[OperationUpdate],
        client_token: str | None = None,
    ) -> CheckpointResult:
        """CheckpointDurableExecution: apply ``updates``, all or none."""
        with self._lock:
            record = self.store.load(arn)
            if record is None:
                raise InvalidParameterValueException(
                    f"Invalid checkpoint token: no execution has the ARN {arn!r}"
                )
            if (
                client_token is not None
                and record.last_client_token == client_token
                and record.last_reply is not None
                and record.last_reply.get("for_token") == checkpoint_token
            ):
                return self._cached_reply(record)
            self._check_token(record, checkpoint_token)
            self._validate(record, updates)

            now = self._now()
            events_before = len(record.events)
            changed: dict[str, Operation] = {}
            for update in updates:
                self._apply(record, update, now, changed)
            self._fire_due(record, now, changed, during_invocation=True)
            new_events = record.events[events_before:]

            for op_id in changed:
                if op_id not in record.unseen:
                    record.unseen.append(op_id)
            reply_ops = self._take_unseen(record)

            token: str | None = None
            if not record.terminal:
                token = self._next_token(record)
            else:
                record.token = None
            if client_token is not None:
                record.last_client_token = client_token
                record.last_reply = {
                    "for_token": checkpoint_token,
                    "token": token,
                    "ids": [op.id for op in reply_ops],
                }
            self.store.commit(record, changed.values(), new_events)
            return CheckpointResult(token, tuple(reply_ops), None)

    def _cached_reply(self, record: ExecutionRecord) -> CheckpointResult:
        assert record.last_reply is not None
        ops = tuple(
            record.operations[op_id]
            for op_id in record.last_reply["ids"]
            if op_id in record.operations
        )
        return CheckpointResult(record.last_reply["token"], ops, None)

    def _take_unseen(self, record: ExecutionRecord) -> list[Operation]:
        ops = [record.operations[i] for i in record.unseen if i in record.operations]
        record.unseen = []
        return ops

    def _check_token(self, record: ExecutionRecord, token: str) -> None:
        if record.terminal:
            raise InvalidParameterValueException(
                f"Invalid checkpoint token: the execution is {record.status.value}"
            )
        if record.invocation_id is None or token != record.token:
            raise InvalidParameterValueException(
                "Invalid checkpoint token: the token is not the current one "
                "of an invocation in flight"
            )

    def _next_token(self, record: ExecutionRecord) -> str:
        # Opaque to clients; hex digits keep it within the service's
        # base64 alphabet.
        record.token_sequence += 1
        record.token = f"{record.invocation_id}{record.token_sequence:x}"
        return record.token

    def _validate(
        self, record: ExecutionRecord, updates: Sequence[OperationUpdate]
    ) -> None:
        executions = [u for u in updates if u.type is OperationType.EXECUTION]
        if len(executions) > 1:
            raise InvalidParameterValueException(
                "a checkpoint may hold one EXECUTION update at most "
                f"(got {len(executions)})"
            )
        if executions and updates[-1] is not executions[0]:
            raise InvalidParameterValueException(
                "the EXECUTION update must be the last of the checkpoint"
            )
        seen: dict[str, OperationUpdate] = {}
        started: dict[str, OperationUpdate] = {}
        for index, update in enumerate(updates):
            where = _Where(index, update.id)
            self._validate_shape(update, where)
            if update.type is OperationType.EXECUTION:
                continue

            earlier = seen.get(update.id)
            if earlier is not None and not (
                earlier.action is OperationAction.START
                and update.action is not OperationAction.START
                and update.type in (OperationType.STEP, OperationType.CONTEXT)
                and update.id not in started
            ):
                raise InvalidParameterValueException(
                    f"{where}: the Id repeats in the checkpoint"
                )
            if earlier is not None:
                started[update.id] = update
            seen[update.id] = update

            if update.parent_id is not None:
                parent = record.operations.get(update.parent_id)
                in_batch = seen.get(update.parent_id)
                if not (
                    (parent is not None and parent.type is OperationType.CONTEXT)
                    or (
                        in_batch is not None
                        and in_batch.type is OperationType.CONTEXT
                        and in_batch.action is OperationAction.START
                        and in_batch is not update
                    )
                ):
                    raise InvalidParameterValueException(
                        f"{where}: ParentId {update.parent_id!r} is not a "
                        "CONTEXT operation of this execution"
                    )

            stored = record.operations.get(update.id)
            if stored is not None and earlier is None:
                for field, label in (
                    ("type", "Type"),
                    ("sub_type", "SubType"),
                    ("name", "Name"),
                    ("parent_id", "ParentId"),
                ):
                    if getattr(stored, field) != getattr(update, field):
                        raise InvalidParameterValueException(
                            f"{where}: {label} {getattr(update, field)!r} "
                            "differs from the stored operation's "
                            f"{getattr(stored, field)!r}"
                        )
            status = stored.status if stored is not None else None
            if earlier is not None:
                status = OperationStatus.STARTED
            self._validate_transition(update, status, where)

    def _validate_shape(self, update: OperationUpdate, where: _Where) -> None:
        if not isinstance(update.id, str) or not _ID.fullmatch(update.id):
            raise InvalidParameterValueException(
                f"{where}: Id must be 1 to 64 letters, digits, '-' or '_'"
            )
        if update.sub_type is not None and not _SUB_TYPE.fullmatch(update.sub_type):
            raise InvalidParameterValueException(
                f"{where}: SubType {update.sub_type!r} must be 1 to 32 "
                "letters, digits, '-' or '_'"
            )
        if update.name is not None and not _NAME.fullmatch(update.name):
            raise InvalidParameterValueException(
                f"{where}: Name {update.name!r} must be 1 to 256 printable "
                "ASCII characters"
            )
        if update.parent_id is not None and not _ID.fullmatch(update.parent_id):
            raise InvalidParameterValueException(
                f"{where}: ParentId {update.parent_id!r} is not a valid Id"
            )
        allowed = _ALLOWED.get(update.type)
        if allowed is None:
            raise InvalidParameterValueException(
                f"{where}: operations of type {update.type} are not "
                "supported by this engine"
            )
        if update.action not in allowed:
            raise InvalidParameterValueException(
                f"{where}: action {update.action.value} is not allowed for "
                f"{update.type.value} operations"
            )
        if update.payload is not None and len(update.payload) > MAX_PAYLOAD_CHARS:
            raise InvalidParameterValueException(
                f"{where}: Payload is {len(update.payload):,} characters; at "
                f"most {MAX_PAYLOAD_CHARS:,} are accepted"
            )
        if update.error is not None:
            size = len(json.dumps(to_wire(update.error)))
            if size > MAX_ERROR_CHARS:
                raise InvalidParameterValueException(
                    f"{where}: Error is {size:,} characters as JSON; at most "
                    f"{MAX_ERROR_CHARS:,} are accepted"
                )
        if update.action is OperationAction.SUCCEED and update.error is not None:
            raise InvalidParameterValueException(
                f"{where}: SUCCEED must not carry an Error"
            )
        if update.action is OperationAction.FAIL and update.payload is not None:
            raise InvalidParameterValueException(
                f"{where}: FAIL must not carry a Payload"
            )

    def _validate_transition(
        self,
        update: OperationUpdate,
        status: OperationStatus | None,
        where: _Where,
    ) -> None:
        action = update.action
        kind = update.type
        if kind is OperationType.STEP:
            if action is OperationAction.START:
                ok = status in (None, OperationStatus.READY)
            else:
                ok = status in (
                    None,
                    OperationStatus.STARTED,
                    OperationStatus.READY,
                )
            if action is OperationAction.RETRY:
                delay = (
                    update.step_options.next_attempt_delay_seconds
                    if update.step_options
                    else None
                )
                if delay is None or not 1 <= delay <= MAX_SECONDS:
                    raise InvalidParameterValueException(
                        f"{where}: RETRY needs StepOptions."
                        f"NextAttemptDelaySeconds of 1 to {MAX_SECONDS} "
                        f"(got {delay!r})"
                    )
                if update.payload is not None and update.error is not None:
                    raise InvalidParameterValueException(
                        f"{where}: RETRY takes a Payload or an Error, not both"
                    )
        elif kind is OperationType.WAIT:
            if action is OperationAction.START:
                ok = status is None
                seconds = (
                    update.wait_options.wait_seconds if update.wait_options else None
                )
                if seconds is None or not 1 <= seconds <= MAX_SECONDS:
                    raise InvalidParameterValueException(
                        f"{where}: WAIT START needs WaitOptions.WaitSeconds of "
                        f"1 to {MAX_SECONDS} (got {seconds!r})"
                    )
            else:
                ok = status is OperationStatus.STARTED
        elif kind is OperationType.CONTEXT:
            if action is OperationAction.START:
                ok = status is None
            else:
                ok = status in (None, OperationStatus.STARTED)
        elif kind is OperationType.CALLBACK:
            ok = status is None
            options = update.callback_options
            for label, seconds in (
                ("TimeoutSeconds", options.timeout_seconds if options else None),
                (
                    "HeartbeatTimeoutSeconds",
                    options.heartbeat_timeout_seconds if options else None,
                ),
            ):
                if seconds is not None and not 0 <= seconds <= MAX_CALLBACK_SECONDS:
                    raise InvalidParameterValueException(
                        f"{where}: CallbackOptions.{label} must be 0 to "
                        f"{MAX_CALLBACK_SECONDS} (got {seconds!r})"
                    )
        elif kind is OperationType.CHAINED_INVOKE:
            ok = status is None
            options_ = update.chained_invoke_options
            if options_ is None or not options_.function_name:
                raise InvalidParameterValueException(
                    f"{where}: CHAINED_INVOKE START needs "
                    "ChainedInvokeOptions.FunctionName"
                )
            if function_name_of(options_.function_name) is None:
                raise InvalidParameterValueException(
                    f"{where}: FunctionName {options_.function_name!r} is not "
                    "a function name, name:qualifier or function ARN"
                )
            if options_.tenant_id is not None and not _TENANT_ID.fullmatch(
                options_.tenant_id
            ):
                raise InvalidParameterValueException(
                    f"{where}: TenantId {options_.tenant_id!r} must be 1 to 256 "
                    "printable characters"
                )
            if (
                update.payload is not None
                and len(update.payload.encode()) > MAX_CHAINED_PAYLOAD_BYTES
            ):
                raise InvalidParameterValueException(
                    f"{where}: a chained invoke's Payload may be at most "
                    f"{MAX_CHAINED_PAYLOAD_BYTES:,} bytes"
                )
        else:
            ok = True
        if not ok:
            shown = status.value if status is not None else "new"
            raise InvalidParameterValueException(
                f"{where}: {kind.value} cannot {action.value} from {shown}"
            )

    def _apply(
        self,
        record: ExecutionRecord,
        update: OperationUpdate,
        now: _dt.datetime,
        changed: dict[str, Operation],
    ) -> None:
        if update.type is OperationType.EXECUTION:
            if update.action is OperationAction.SUCCEED:
                self._finish(
                    record, ExecutionStatus.SUCCEEDED, now, result=update.payload
                )
            else:
                self._finish(record, ExecutionStatus.FAILED, now, error=update.error)
            changed[record.execution_id] = record.operations[record.execution_id]
            return

        stored = record.operations.get(update.id)
        action = update.action
        if stored is None:
            stored = Operation(
                id=update.id,
                type=update.type,
                status=OperationStatus.STARTED,
                start_timestamp=now,
                parent_id=update.parent_id,
                name=update.name,
                sub_type=update.sub_type,
            )
            if action is not OperationAction.START:
                # A completion without a START: the service records the
                # start implicitly.
                self._started_event(record, stored, update, now)

        if update.type is OperationType.STEP:
            operation = self._apply_step(record, stored, update, now)
        elif update.type is OperationType.WAIT:
            operation = self._apply_wait(record, stored, update, now)
        elif update.type is OperationType.CALLBACK:
            operation = self._apply_callback(record, stored, update, now)
        elif update.type is OperationType.CHAINED_INVOKE:
            operation = self._apply_chained_invoke(record, stored, update, now)
        else:
            operation = self._apply_context(record, stored, update, now)
        record.operations[operation.id] = operation
        changed[operation.id] = operation

    def _started_event(
        self,
        record: ExecutionRecord,
        operation: Operation,
        update: OperationUpdate,
        now: _dt.datetime,
    ) -> None:
        if update.type is OperationType.STEP:
            self._append_event(record, "StepStarted", now, operation=operation)
        elif update.type is OperationType.CONTEXT:
            self._append_event(record, "ContextStarted", now, operation=operation)

    def _apply_step(
        self,
        record: ExecutionRecord,
        stored: Operation,
        update: OperationUpdate,
        now: _dt.datetime,
    ) -> Operation:
        details = stored.step_details or StepDetails(attempt=0)
        attempt = details.attempt or 0
        action = update.action
        if action is OperationAction.START:
            self._append_event(record, "StepStarted", now, operation=stored)
            return _evolve(
                stored,
                status=OperationStatus.STARTED,
                step_details=StepDetails(attempt=attempt),
            )
        attempt += 1
        if action is OperationAction.SUCCEED:
            self._append_event(
                record,
                "StepSucceeded",
                now,
                operation=stored,
                details={
                    "Result": _event_payload(update.payload),
                    "RetryDetails": {"CurrentAttempt": attempt},
                },
            )
            return _evolve(
                stored,
                status=OperationStatus.SUCCEEDED,
                end_timestamp=now,
                step_details=StepDetails(attempt=attempt, result=update.payload),
            )
        if action is OperationAction.FAIL:
            self._append_event(
                record,
                "StepFailed",
                now,
                operation=stored,
                details={
                    "Error": _event_error(update.error),
                    "RetryDetails": {"CurrentAttempt": attempt},
                },
            )
            return _evolve(
                stored,
                status=OperationStatus.FAILED,
                end_timestamp=now,
                step_details=StepDetails(attempt=attempt, error=update.error),
            )
        # RETRY
        assert update.step_options is not None
        delay = update.step_options.next_attempt_delay_seconds
        assert delay is not None
        retry_details = {
            "CurrentAttempt": attempt,
            "NextAttemptDelaySeconds": delay,
        }
        if update.error is not None:
            self._append_event(
                record,
                "StepFailed",
                now,
                operation=stored,
                details={
                    "Error": _event_error(update.error),
                    "RetryDetails": retry_details,
                },
            )
        else:
            self._append_event(
                record,
                "StepSucceeded",
                now,
                operation=stored,
                details={
                    "Result": _event_payload(update.payload),
                    "RetryDetails": retry_details,
                },
            )
        due = now + _dt.timedelta(seconds=delay)
        record.timers[stored.id] = due
        return _evolve(
            stored,
            status=OperationStatus.PENDING,
            step_details=StepDetails(
                attempt=attempt,
                next_attempt_timestamp=due,
                result=update.payload,
                error=update.error,
            ),
        )

    def _apply_wait(
        self,
        record: ExecutionRecord,
        stored: Operation,
        update: OperationUpdate,
        now: _dt.datetime,
    ) -> Operation:
        if update.action is OperationAction.START:
            assert update.wait_options is not None
            seconds = update.wait_options.wait_seconds
            assert seconds is not None
            due = now + _dt.timedelta(seconds=seconds)
            record.timers[stored.id] = due
            self._append_event(
                record,
                "WaitStarted",
                now,
                operation=stored,
                details={"Duration": seconds, "ScheduledEndTimestamp": due},
            )
            return _evolve(stored, wait_details=WaitDetails(due))
        # CANCEL
        record.timers.pop(stored.id, None)
        details: dict[str, Any] = {}
        if update.error is not None:
            details["Error"] = _event_error(update.error)
        self._append_event(
            record, "WaitCancelled", now, operation=stored, details=details
        )
        return _evolve(stored, status=OperationStatus.CANCELLED, end_timestamp=now)

    def _apply_callback(
        self,
        record: ExecutionRecord,
        stored: Operation,
        update: OperationUpdate,
        now: _dt.datetime,
    ) -> Operation:
        # Random, and known only through the store's index: an id cannot be
        # guessed, and one that was not minted here names nothing.
        callback_id = base64.b64encode(secrets.token_bytes(24)).decode()
        options = update.callback_options
        timeout = options.timeout_seconds if options else None
        heartbeat = options.heartbeat_timeout_seconds if options else None
        if timeout:
            record.timers[stored.id] = now + _dt.timedelta(seconds=timeout)
        if heartbeat:
            record.timers[stored.id + _HEARTBEAT] = now + _dt.timedelta(
                seconds=heartbeat
            )
        self.store.index_callback(callback_id, record.arn, stored.id)
        details: dict[str, Any] = {"CallbackId": callback_id}
        if timeout is not None:
            details["Timeout"] = timeout
        if heartbeat is not None:
            details["HeartbeatTimeout"] = heartbeat
        self._append_event(
            record, "CallbackStarted", now, operation=stored, details=details
        )
        return _evolve(stored, callback_details=CallbackDetails(callback_id))

    def _apply_chained_invoke(
        self,
        record: ExecutionRecord,
        stored: Operation,
        update: OperationUpdate,
        now: _dt.datetime,
    ) -> Operation:
        options = update.chained_invoke_options
        assert options is not None
        target = function_name_of(options.function_name)
        details: dict[str, Any] = {"FunctionName": options.function_name}
        if options.tenant_id is not None:
            details["TenantId"] = options.tenant_id
        if target is None or not self.function_exists(target):
            self._append_event(
                record, "ChainedInvokeStarted", now, operation=stored, details=details
            )
            error = ErrorObject(
                error_type="ResourceNotFoundException",
                error_message=(
                    f"function {options.function_name!r} is not registered "
                    "with this engine"
                ),
            )
            self._append_event(
                record,
                "ChainedInvokeFailed",
                now,
                operation=stored,
                details={"Error": _event_error(error)},
            )
            return _evolve(
                stored,
                status=OperationStatus.FAILED,
                end_timestamp=now,
                chained_invoke_details=ChainedInvokeDetails(error=error),
            )
        child_arn = self.create_execution(
            target,
            update.payload if update.payload is not None else "{}",
            timeout_seconds=self.execution_timeout_of(target),
            parent=(record.arn, stored.id),
        )
        details["Input"] = _event_payload(update.payload)
        details["ExecutedVersion"] = "$LATEST"
        details["DurableExecutionArn"] = child_arn
        self._append_event(
            record, "ChainedInvokeStarted", now, operation=stored, details=details
        )
        return stored

    def _complete_chained_invoke(self, target: ExecutionRecord) -> None:
        """Close the caller's CHAINED_INVOKE with ``target``'s outcome."""
        assert target.parent_arn is not None
        assert target.parent_operation_id is not None
        caller = self.store.load(target.parent_arn)
        if caller is None or caller.terminal:
            return
        operation = caller.operations.get(target.parent_operation_id)
        if operation is None or operation.status is not OperationStatus.STARTED:
            return
        now = self._now()
        events_before = len(caller.events)
        if target.status is ExecutionStatus.SUCCEEDED:
            result = target.result
            if result is not None and len(result.encode()) > MAX_CHAINED_PAYLOAD_BYTES:
                status = OperationStatus.FAILED
                error: ErrorObject | None = ErrorObject(
                    error_type="ChainedInvoke.ResultTooLarge",
                    error_message=(
                        f"the target's result is {len(result.encode()):,} bytes; "
                        f"at most {MAX_CHAINED_PAYLOAD_BYTES:,} are returned"
                    ),
                )
                result = None
            else:
                status, error = OperationStatus.SUCCEEDED, None
        elif target.status is ExecutionStatus.TIMED_OUT:
            status, result = OperationStatus.TIMED_OUT, None
            error = ErrorObject(
                error_type="ChainedInvoke.Timeout",
                error_message=f"{target.arn} timed out",
            )
        elif target.status is ExecutionStatus.STOPPED:
            status, result, error = OperationStatus.STOPPED, None, target.error
        else:
            status, result, error = OperationStatus.FAILED, None, target.error
        event_type = {
            OperationStatus.SUCCEEDED: "ChainedInvokeSucceeded",
            OperationStatus.FAILED: "ChainedInvokeFailed",
            OperationStatus.TIMED_OUT: "ChainedInvokeTimedOut",
            OperationStatus.STOPPED: "ChainedInvokeStopped",
        }[status]
        details = (
            {"Result": _event_payload(result)}
            if status is OperationStatus.SUCCEEDED
            else {"Error": _event_error(error)}
        )
        self._append_event(
            caller, event_type, now, operation=operation, details=details
        )
        operation = _evolve(
            operation,
            status=status,
            end_timestamp=now,
            chained_invoke_details=ChainedInvokeDetails(result=result, error=error),
        )
        self._outside_change(caller, operation)
        self.store.commit(caller, [operation], caller.events[events_before:])

    def _outside_change(self, record: ExecutionRecord, operation: Operation) -> None:
        """Record a change made from outside any invocation: the handler
        sees it in the next checkpoint reply, or is invoked for it."""
        record.operations[operation.id] = operation
        if operation.id not in record.unseen:
            record.unseen.append(operation.id)
        if record.invocation_id is None:
            record.owed = True
            record.owed_at = None

    # -- callbacks from outside ----------------------------------------------

    def _open_callback(self, callback_id: str) -> tuple[ExecutionRecord, Operation]:
        if not isinstance(callback_id, str) or not callback_id:
            raise InvalidParameterValueException(
                f"CallbackId must be a non-empty string (got {callback_id!r})"
            )
        found = self.store.find_callback(callback_id)
        if found is None:
            raise ResourceNotFoundException(f"no callback has the id {callback_id!r}")
        arn, op_id = found
        record = self._record(arn)
        operation = record.operations[op_id]
        if record.terminal:
            raise CallbackTimeoutException(
                f"callback {callback_id!r} is closed: its execution is "
                f"{record.status.value}"
            )
        if operation.status is not OperationStatus.STARTED:
            raise CallbackTimeoutException(
                f"callback {callback_id!r} is closed: it is {operation.status.value}"
            )
        return record, operation

    def send_callback_success(
        self, callback_id: str, result: str | bytes | None = None
    ) -> None:
        """SendDurableExecutionCallbackSuccess: close it with ``result``."""
        if isinstance(result, bytes):
            if len(result) > MAX_CALLBACK_RESULT_BYTES:
                raise InvalidParameterValueException(
                    f"Result is {len(result):,} bytes; at most "
                    f"{MAX_CALLBACK_RESULT_BYTES:,} are accepted"
                )
            try:
                result = result.decode()
            except UnicodeDecodeError:
                raise InvalidParameterValueException(
                    "Result must be UTF-8 text"
                ) from None
        elif result is not None and len(result.encode()) > MAX_CALLBACK_RESULT_BYTES:
            raise InvalidParameterValueException(
                f"Result is over {MAX_CALLBACK_RESULT_BYTES:,} bytes"
            )
        with self._lock:
            record, operation = self._open_callback(callback_id)
            self._close_callback(
                record,
                operation,
                OperationStatus.SUCCEEDED,
                "CallbackSucceeded",
                {"Result": _event_payload(result or None)},
                result=result or None,
            )

    def send_callback_failure(
        self, callback_id: str, error: ErrorObject | None = None
    ) -> None:
        """SendDurableExecutionCallbackFailure: close it with ``error``."""
        error = error or ErrorObject()
        if len(json.dumps(to_wire(error))) > MAX_ERROR_CHARS:
            raise InvalidParameterValueException(
                f"Error is over {MAX_ERROR_CHARS:,} characters as JSON"
            )
        with self._lock:
            record, operation = self._open_callback(callback_id)
            self._close_callback(
                record,
                operation,
                OperationStatus.FAILED,
                "CallbackFailed",
                {"Error": _event_error(error)},
                error=error,
            )

    def send_callback_heartbeat(self, callback_id: str) -> None:
        """SendDurableExecutionCallbackHeartbeat: restart its heartbeat."""
        with self._lock:
            record, operation = self._open_callback(callback_id)
            key = operation.id + _HEARTBEAT
            seconds = self._heartbeat_seconds(record, operation)
            if seconds:
                record.timers[key] = self._now() + _dt.timedelta(seconds=seconds)
                self.store.commit(record, (), ())

    def _heartbeat_seconds(
        self, record: ExecutionRecord, operation: Operation
    ) -> int | None:
        value = _started_details(record, operation.id, "CallbackStarted").get(
            "HeartbeatTimeout"
        )
        return int(value) if value else None

    def _close_callback(
        self,
        record: ExecutionRecord,
        operation: Operation,
        status: OperationStatus,
        event_type: str,
        details: dict[str, Any],
        *,
        result: str | None = None,
        error: ErrorObject | None = None,
        now: _dt.datetime | None = None,
        commit: bool = True,
    ) -> Operation:
        now = now or self._now()
        events_before = len(record.events)
        record.timers.pop(operation.id, None)
        record.timers.pop(operation.id + _HEARTBEAT, None)
        self._append_event(
            record, event_type, now, operation=operation, details=details
        )
        callback_id = (
            operation.callback_details.callback_id
            if operation.callback_details
            else None
        )
        closed = _evolve(
            operation,
            status=status,
            end_timestamp=now,
            callback_details=CallbackDetails(callback_id, result, error),
        )
        self._outside_change(record, closed)
        if commit:
            self.store.commit(record, [closed], record.events[events_before:])
        return closed

    def _apply_context(
        self,
        record: ExecutionRecord,
        stored: Operation,
        update: OperationUpdate,
        now: _dt.datetime,
    ) -> Operation:
        action = update.action
        if action is OperationAction.START:
            self._append_event(record, "ContextStarted", now, operation=stored)
            return stored
        replay_children = (
            update.context_options.replay_children if update.context_options else None
        )
        if action is OperationAction.SUCCEED:
            self._append_event(
                record,
                "ContextSucceeded",
                now,
                operation=stored,
                details={"Result": _event_payload(update.payload)},
            )
            return _evolve(
                stored,
                status=OperationStatus.SUCCEEDED,
                end_timestamp=now,
                context_details=ContextDetails(
                    replay_children=replay_children, result=update.payload
                ),
            )
        self._append_event(
            record,
            "ContextFailed",
            now,
            operation=stored,
            details={"Error": _event_error(update.error)},
        )
        return _evolve(
            stored,
            status=OperationStatus.FAILED,
            end_timestamp=now,
            context_details=ContextDetails(
                replay_children=replay_children, error=update.error
            ),
        )

    # -- timers ------------------------------------------------------------

    def next_due(
        self, arn: str, *, callback_timeouts: bool = True
    ) -> _dt.datetime | None:
        """When the execution next needs the engine: a timer or an owed
        invocation; None while it waits only for the outside world.

        With ``callback_timeouts`` False, a callback's timeouts do not
        count: waiting for them is waiting for the outside world.
        """
        with self._lock:
            record = self._record(arn)
            if record.terminal:
                return None
            moments = [
                moment
                for key, moment in record.timers.items()
                if key != "$timeout"
                and (
                    callback_timeouts
                    or record.operations[key.removesuffix(_HEARTBEAT)].type
                    is not OperationType.CALLBACK
                )
            ]
            if record.owed and record.invocation_id is None:
                moments.append(record.owed_at or record.start)
            if not moments:
                return None
            # The execution timeout counts only while something else is
            # scheduled; an execution waiting for the outside world is
            # left alone until it hears from it.
            return min(moments + [record.timers.get("$timeout", moments[0])])

    def fire_due(self, arn: str) -> None:
        """Fire every timer of ``arn`` that is due by the clock."""
        with self._lock:
            record = self._record(arn)
            if record.terminal:
                return
            now = self._now()
            events_before = len(record.events)
            changed: dict[str, Operation] = {}
            self._fire_due(record, now, changed, during_invocation=False)
            for op_id in changed:
                if op_id not in record.unseen:
                    record.unseen.append(op_id)
            self.store.commit(record, changed.values(), record.events[events_before:])

    def _fire_due(
        self,
        record: ExecutionRecord,
        now: _dt.datetime,
        changed: dict[str, Operation],
        *,
        during_invocation: bool,
    ) -> None:
        due = sorted(
            (moment, op_id) for op_id, moment in record.timers.items() if moment <= now
        )
        for _, op_id in due:
            del record.timers[op_id]
            if op_id == "$timeout":
                self._finish(
                    record,
                    ExecutionStatus.TIMED_OUT,
                    now,
                    error=ErrorObject(
                        error_type="Execution.Timeout",
                        error_message=(
                            "the execution did not finish within "
                            f"{record.timeout_seconds} s"
                        ),
                    ),
                )
                return
            heartbeat = op_id.endswith(_HEARTBEAT)
            operation = record.operations[op_id.removesuffix(_HEARTBEAT)]
            if operation.type is OperationType.CALLBACK:
                if operation.status is not OperationStatus.STARTED:
                    continue
                error = ErrorObject(
                    error_type="Callback.Heartbeat"
                    if heartbeat
                    else "Callback.Timeout",
                    error_message=(
                        "no heartbeat came within the heartbeat timeout"
                        if heartbeat
                        else "the callback was not answered within its timeout"
                    ),
                )
                closed = self._close_callback(
                    record,
                    operation,
                    OperationStatus.TIMED_OUT,
                    "CallbackTimedOut",
                    {"Error": _event_error(error)},
                    error=error,
                    now=now,
                    commit=False,
                )
                changed[closed.id] = closed
                continue
            if operation.type is OperationType.WAIT:
                seconds = None
                if (
                    operation.wait_details
                    and operation.wait_details.scheduled_end_timestamp
                ):
                    seconds = round(
                        (
                            operation.wait_details.scheduled_end_timestamp
                            - operation.start_timestamp
                        ).total_seconds()
                    )
                self._append_event(
                    record,
                    "WaitSucceeded",
                    now,
                    operation=operation,
                    details={"Duration": seconds} if seconds is not None else {},
                )
                operation = _evolve(
                    operation, status=OperationStatus.SUCCEEDED, end_timestamp=now
                )
            elif operation.type is OperationType.STEP:
                details = operation.step_details or StepDetails()
                operation = _evolve(
                    operation,
                    status=OperationStatus.READY,
                    step_details=attrs.evolve(details, next_attempt_timestamp=None),
                )
            record.operations[op_id] = operation
            changed[op_id] = operation
            if not during_invocation:
                record.owed = True
                record.owed_at = None

    # -- state reads -------------------------------------------------------

    def visible_operations(self, record: ExecutionRecord) -> list[Operation]:
        """Operations as the service shows them to a handler.

        Children of a completed context are left out unless it asked for
        them with ReplayChildren: replay takes the context's result and
        never looks inside.
        """
        hidden: set[str] = set()
        visible = []
        for operation in record.operations.values():
            parent = operation.parent_id
            if parent is not None and parent in hidden:
                hidden.add(operation.id)
                continue
            visible.append(operation)
            if (
                operation.type is OperationType.CONTEXT
                and operation.status in TERMINAL_STATUSES
                and not (
                    operation.context_details
                    and operation.context_details.replay_children
                )
            ):
                hidden.add(operation.id)
        return visible

    def get_execution_state(
        self,
        arn: str,
        checkpoint_token: str,
        marker: str | None = None,
        max_items: int | None = None,
    ) -> StatePage:
        """GetDurableExecutionState: one page of the visible operations."""
        with self._lock:
            record = self.store.load(arn)
            if record is None:
                raise InvalidParameterValueException(
                    f"Invalid checkpoint token: no execution has the ARN {arn!r}"
                )
            self._check_token(record, checkpoint_token)
            if max_items is not None and not 0 <= max_items <= MAX_PAGE_SIZE:
                raise InvalidParameterValueException(
                    f"MaxItems must be 0 to {MAX_PAGE_SIZE} (got {max_items!r})"
                )
            size = min(max_items or self.page_size, self.page_size)
            start = _decode_marker(marker)
            operations = self.visible_operations(record)
            page = operations[start : start + size]
            end = start + len(page)
            next_marker = _encode_marker(end) if end < len(operations) else None
            return StatePage(tuple(page), next_marker)

    # -- invocations -------------------------------------------------------

    def begin_invocation(self, arn: str) -> dict[str, Any]:
        """Start the owed invocation of ``arn`` and return its envelope."""
        with self._lock:
            record = self._record(arn)
            if record.terminal:
                raise InvalidParameterValueException(
                    f"execution {arn} is {record.status.value}; nothing to invoke"
                )
            if record.invocation_id is not None:
                raise InvalidParameterValueException(
                    f"execution {arn} already has an invocation in flight"
                )
            now = self._now()
            record.invocation_id = uuid.uuid4().hex
            record.invocation_owner = _owner()
            record.invocation_start = now
            record.invocations += 1
            record.owed = False
            record.owed_at = None
            record.unseen = []
            token = self._next_token(record)
            operations = self.visible_operations(record)
            first = operations[: self.page_size]
            self.store.commit(record, (), ())
            return {
                "DurableExecutionArn": arn,
                "CheckpointToken": token,
                "InitialExecutionState": {
                    "Operations": [to_wire(op) for op in first],
                    "NextMarker": (
                        _encode_marker(len(first))
                        if len(first) < len(operations)
                        else ""
                    ),
                },
            }

    def end_invocation(self, arn: str, outcome: InvocationOutcome) -> None:
        """Record the end of the invocation in flight and act on its output."""
        with self._lock:
            record = self._record(arn)
            if record.invocation_id is None:
                return
            now = self._now()
            events_before = len(record.events)
            changed: dict[str, Operation] = {}
            error = outcome.error
            status: str | None = None
            if error is None:
                status, error = self._read_output(outcome.output)

            details: dict[str, Any] = {
                "StartTimestamp": record.invocation_start or now,
                "EndTimestamp": now,
                "RequestId": record.invocation_id,
            }
            if outcome.error is not None:
                details["Error"] = _event_error(outcome.error)
            self._append_event(record, "InvocationCompleted", now, details=details)
            record.invocation_id = None
            record.invocation_owner = None
            record.invocation_start = None
            record.token = None
            # Changes the invocation never saw earn another invocation.
            if record.unseen:
                record.owed = True
            record.unseen = []

            if record.terminal:
                # A checkpointed EXECUTION outcome wins; its event was
                # held back until now.
                if not any(
                    event["EventType"] in _TERMINAL_EVENTS.values()
                    for event in reversed(record.events)
                ):
                    self._append_terminal_event(record, now)
            elif outcome.error is not None:
                record.failed_invocations += 1
                if record.failed_invocations >= MAX_FAILED_INVOCATIONS:
                    self._finish(
                        record, ExecutionStatus.FAILED, now, error=outcome.error
                    )
                else:
                    record.owed = True
                    record.owed_at = now + INVOCATION_RETRY_DELAY
            elif status == "SUCCEEDED":
                self._finish(
                    record,
                    ExecutionStatus.SUCCEEDED,
                    now,
                    result=outcome.output.get("Result"),
                )
            elif status == "FAILED":
                self._finish(record, ExecutionStatus.FAILED, now, error=error)
            elif status == "PENDING":
                record.failed_invocations = 0
                if self._has_pending(record) or record.owed:
                    record.idle_pendings = 0
                else:
                    record.idle_pendings += 1
                    if record.idle_pendings >= MAX_IDLE_PENDINGS:
                        self._finish(
                            record,
                            ExecutionStatus.FAILED,
                            now,
                            error=ErrorObject(
                                error_type="InvalidParameterValueException",
                                error_message=(
                                    "the handler returned PENDING while "
                                    "nothing was pending"
                                ),
                            ),
                        )
                    else:
                        record.owed = True
            else:
                # The output itself was unacceptable.
                self._finish(record, ExecutionStatus.FAILED, now, error=error)
            if record.terminal:
                changed[record.execution_id] = record.operations[record.execution_id]
            self.store.commit(record, changed.values(), record.events[events_before:])

    def _read_output(self, output: Any) -> tuple[str | None, ErrorObject | None]:
        def invalid(message: str) -> tuple[None, ErrorObject]:
            return None, ErrorObject(
                error_type="InvalidParameterValueException",
                error_message=f"invalid handler output: {message}",
            )

        if not isinstance(output, Mapping):
            return invalid(f"expected an object, got {type(output).__name__}")
        status = output.get("Status")
        if status not in ("SUCCEEDED", "FAILED", "PENDING"):
            return invalid(f"unknown Status {status!r}")
        if status == "FAILED":
            if output.get("Result") is not None:
                return invalid("FAILED carries a Result")
            raw = output.get("Error")
            if raw is not None and not isinstance(raw, Mapping):
                return invalid("Error must be an ErrorObject")
            error = ErrorObject(
                error_message=(raw or {}).get("ErrorMessage"),
                error_type=(raw or {}).get("ErrorType"),
                error_data=(raw or {}).get("ErrorData"),
                stack_trace=tuple((raw or {}).get("StackTrace") or ()) or None,
            )
            return status, error
        if status == "SUCCEEDED":
            if output.get("Error") is not None:
                return invalid("SUCCEEDED carries an Error")
            result = output.get("Result")
            if result is not None and not isinstance(result, str):
                return invalid("Result must be a string")
        return status, None

    def _has_pending(self, record: ExecutionRecord) -> bool:
        if any(op_id != "$timeout" for op_id in record.timers):
            return True
        return any(
            op.status is OperationStatus.STARTED
            and op.type in (OperationType.CALLBACK, OperationType.CHAINED_INVOKE)
            for op in record.operations.values()
        )

    def abandon_invocation(self, arn: str, reason: str) -> None:
        """Close an invocation whose process is gone, as a crash.

        The next invocation is owed at once: the crash is known for
        certain, so there is nothing to wait out.
        """
        self.end_invocation(
            arn,
            InvocationOutcome(
                error=ErrorObject(error_type="Runtime.ExitError", error_message=reason)
            ),
        )
        with self._lock:
            record = self._record(arn)
            if not record.terminal and record.owed:
                record.owed_at = None
                self.store.commit(record, (), ())

    def invocation_orphaned(self, arn: str) -> bool:
        """True if ``arn`` has an invocation in flight whose process died."""
        with self._lock:
            record = self._record(arn)
            return record.invocation_id is not None and not _owner_alive(
                record.invocation_owner
            )

    # -- ending ------------------------------------------------------------

    def stop_execution(
        self, arn: str, error: ErrorObject | None = None
    ) -> _dt.datetime:
        """StopDurableExecution: end a running execution as STOPPED.

        ``ExecutionStopped`` carries ``error`` (none: an empty one). An
        invocation in flight is not interrupted, but its token dies with
        the execution; the event then follows its InvocationCompleted.
        Operations keep their status. The running targets of its chained
        invokes are stopped too, with the same error. Returns the stop
        time.

        Raises:
            ResourceNotFoundException: no execution has the ARN.
            ResourceConflictException: the execution has already ended.
        """
        if error is not None and len(json.dumps(to_wire(error))) > MAX_ERROR_CHARS:
            raise InvalidParameterValueException(
                f"Error is over {MAX_ERROR_CHARS:,} characters as JSON"
            )
        with self._lock:
            record = self._record(arn)
            if record.terminal:
                raise ResourceConflictException(
                    f"execution {arn} is {record.status.value}; only a "
                    "RUNNING execution can be stopped"
                )
            now = self._now()
            self._stop(record, error, now)
            return now

    def _stop(
        self, record: ExecutionRecord, error: ErrorObject | None, now: _dt.datetime
    ) -> None:
        events_before = len(record.events)
        self._finish(record, ExecutionStatus.STOPPED, now, error=error)
        self.store.commit(
            record,
            [record.operations[record.execution_id]],
            record.events[events_before:],
        )
        logger.debug("stopped execution %s", record.arn)
        for operation in record.operations.values():
            if (
                operation.type is not OperationType.CHAINED_INVOKE
                or operation.status is not OperationStatus.STARTED
            ):
                continue
            child_arn = self._chained_target(record, operation.id)
            child = self.store.load(child_arn) if child_arn else None
            if child is not None and not child.terminal:
                self._stop(child, error, now)

    def _chained_target(self, record: ExecutionRecord, op_id: str) -> str | None:
        details = _started_details(record, op_id, "ChainedInvokeStarted")
        target = details.get("DurableExecutionArn")
        return str(target) if target else None

    def _finish(
        self,
        record: ExecutionRecord,
        status: ExecutionStatus,
        now: _dt.datetime,
        *,
        result: str | None = None,
        error: ErrorObject | None = None,
    ) -> None:
        if record.terminal:
            return
        record.status = status
        record.end = now
        record.result = result
        record.error = error
        record.timers.clear()
        record.owed = False
        execution = record.operations[record.execution_id]
        record.operations[record.execution_id] = attrs.evolve(
            execution,
            status=OperationStatus(status.value),
            end_timestamp=now,
        )
        # The terminal event follows the last InvocationCompleted: an
        # execution ended by a checkpoint (or timing out) while an
        # invocation runs gets it when that invocation ends.
        if record.invocation_id is None:
            self._append_terminal_event(record, now)
        if record.parent_arn is not None:
            self._complete_chained_invoke(record)

    def _append_terminal_event(
        self, record: ExecutionRecord, now: _dt.datetime
    ) -> None:
        execution = record.operations[record.execution_id]
        if record.status is ExecutionStatus.SUCCEEDED:
            self._append_event(
                record,
                "ExecutionSucceeded",
                now,
                operation=execution,
                details={"Result": _event_payload(record.result)},
            )
        else:
            self._append_event(
                record,
                _TERMINAL_EVENTS[record.status],
                now,
                operation=execution,
                details={"Error": _event_error(record.error)},
            )

    # -- reading -----------------------------------------------------------

    def history(self, arn: str) -> list[dict[str, Any]]:
        """The execution's events, oldest first (copies)."""
        with self._lock:
            return [dict(event) for event in self._record(arn).events]


_TERMINAL_EVENTS = {
    ExecutionStatus.SUCCEEDED: "ExecutionSucceeded",
    ExecutionStatus.FAILED: "ExecutionFailed",
    ExecutionStatus.TIMED_OUT: "ExecutionTimedOut",
    ExecutionStatus.STOPPED: "ExecutionStopped",
}


def _started_details(
    record: ExecutionRecord, op_id: str, event_type: str
) -> dict[str, Any]:
    """The details of the event that started operation ``op_id``."""
    for event in record.events:
        if event.get("Id") == op_id and event["EventType"] == event_type:
            details: dict[str, Any] = event[f"{event_type}Details"]
            return details
    return {}


def _encode_marker(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _decode_marker(marker: str | None) -> int:
    if not marker:
        return 0
    try:
        text = base64.b64decode(marker.encode(), validate=True).decode()
        kind, _, value = text.partition(":")
        if kind != "offset":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameterValueException(
            f"Marker {marker!r} is not one this service issued"
        ) from None
