"""Execution state of one invocation: operations, token and checkpoints.

Guarantees
----------
* ``_lock`` (an RLock) guards the operation map and the checkpoint token.
  Any thread may read an operation or send a checkpoint; the map is only
  replaced entry by entry, under the lock, from a checkpoint reply.
* Checkpoints are group-committed. A thread that needs its update durable
  appends it to a FIFO queue and, if no call is in flight, becomes the
  leader: it takes the queued updates (within the service's limits of 250
  updates and 750 KiB a call), sends them with the current token, applies
  the reply, and wakes the waiters. Threads that arrive during a call wait
  and are carried by the next one. In the sequential case the caller sends
  its own update with no hand-off to another thread.
* Updates reach the service in the order they were queued, so a parent's
  START always precedes its children's updates.
* The first failure of a checkpoint call is kept. Every later checkpoint
  (from any thread) raises it again: once the service refused the token,
  nothing more may be written by this invocation.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from .errors import (
    NonDeterministicExecutionError,
    SuspendExecution,
)
from .service._protocol import DurableServiceClient
from .wire import (
    Operation,
    OperationAction,
    OperationType,
    OperationUpdate,
)

__all__ = ["ExecutionState"]

logger = logging.getLogger(__name__)

# Limits of one CheckpointDurableExecution call.
MAX_UPDATES_PER_CALL = 250
MAX_BYTES_PER_CALL = 750 * 1024
# A payload of one operation update.
MAX_PAYLOAD_BYTES = 256 * 1024

# A rough allowance for everything in an update besides its payloads.
_UPDATE_OVERHEAD = 256


def _update_size(update: OperationUpdate) -> int:
    size = _UPDATE_OVERHEAD
    if update.payload is not None:
        size += len(update.payload)
    if update.error is not None:
        error = update.error
        size += len(error.error_message or "") + len(error.error_data or "")
        size += sum(len(line) for line in error.stack_trace or ())
    return size


class BranchCancelled(BaseException):
    """Stops a branch whose batch was decided, at its next durable operation.

    A BaseException, like suspension, so that user code catching
    Exception cannot keep a cancelled branch running.
    """


class CancelScope:
    """The set of contexts one batch may cancel: a branch and its children.

    Cancelling happens under the checkpoint queue's lock, so every update
    a branch queued before its batch was decided reaches the service
    before the batch's own completion, and none is queued after it.
    """

    __slots__ = ("parent", "cancelled")

    def __init__(self, parent: CancelScope | None = None) -> None:
        self.parent = parent
        self.cancelled = False

    def is_cancelled(self) -> bool:
        scope: CancelScope | None = self
        while scope is not None:
            if scope.cancelled:
                return True
            scope = scope.parent
        return False


class _NoTokenReply(SuspendExecution):
    """The service replied without a token: this invocation must stop."""


class ExecutionState:
    """What one invocation knows of its execution, and how it writes."""

    def __init__(
        self,
        durable_execution_arn: str,
        checkpoint_token: str,
        operations: Iterable[Operation],
        client: DurableServiceClient,
    ) -> None:
        self.durable_execution_arn = durable_execution_arn
        self._client = client
        # A client may ask to hear of every operation the handler asks for
        # (the replay checker does), through ``observe_lookup``.
        self._observer = getattr(client, "observe_lookup", None)
        self._lock = threading.RLock()
        self._token = checkpoint_token
        self._operations: dict[str, Operation] = {op.id: op for op in operations}

        # Group commit: see the module docstring.
        self._queue_lock = threading.Lock()
        self._queue_changed = threading.Condition(self._queue_lock)
        self._queue: list[OperationUpdate] = []
        self._enqueued = 0
        self._acknowledged = 0
        self._sending = False
        self._failure: BaseException | None = None

        # Operations changed by the service rather than by this invocation
        # (a wait that fired, a callback answered), as replies delivered
        # them: a suspended branch may now go on.
        self.outside_changes = 0

        # Set once replay found a mismatch; the execution must fail even if
        # user code swallowed the error.
        self.nondeterminism: NonDeterministicExecutionError | None = None

    # -- reading -------------------------------------------------------------

    def get(self, operation_id: str) -> Operation | None:
        with self._lock:
            return self._operations.get(operation_id)

    def contains(self, operation_id: str) -> bool:
        with self._lock:
            return operation_id in self._operations

    def operations(self) -> list[Operation]:
        with self._lock:
            return list(self._operations.values())

    def get_checked(
        self,
        operation_id: str,
        type: OperationType,
        sub_type: str,
        name: str | None,
    ) -> Operation | None:
        """The recorded operation at ``operation_id``, if any.

        Raises:
            NonDeterministicExecutionError: the record is of another type,
                sub-type or name than the handler now asks for.
        """
        if self.nondeterminism is not None:
            self._observe(operation_id, type, sub_type, name, False)
            raise self.nondeterminism
        with self._lock:
            operation = self._operations.get(operation_id)
        if operation is None:
            self._observe(operation_id, type, sub_type, name, False)
            return None
        if (
            operation.type != type
            or (operation.sub_type or None) != sub_type
            or operation.name != name
        ):
            recorded = _describe(operation.type, operation.sub_type, operation.name)
            error = NonDeterministicExecutionError(
                f"replay mismatch at operation {operation_id}: the execution "
                f"recorded {recorded}"
                f" but the handler now asks for "
                f"{_describe(type, sub_type, name)}; the handler's code or "
                "its decisions changed since the execution started"
            )
            self.nondeterminism = error
            self._observe(operation_id, type, sub_type, name, True)
            raise error
        self._observe(operation_id, type, sub_type, name, False)
        return operation

    def _observe(
        self,
        operation_id: str,
        type: OperationType,
        sub_type: str,
        name: str | None,
        mismatch: bool,
    ) -> None:
        if self._observer is not None:
            self._observer(operation_id, type, sub_type, name, mismatch=mismatch)

    # -- writing -------------------------------------------------------------

    def checkpoint(
        self,
        update: OperationUpdate,
        *,
        wait: bool = True,
        scope: CancelScope | None = None,
    ) -> None:
        """Queue ``update``; with ``wait``, return once it is durable.

        Raises:
            BranchCancelled: ``scope`` was cancelled; nothing was queued.
        """
        with self._queue_changed:
            if self._failure is not None:
                raise self._failure
            if scope is not None and scope.is_cancelled():
                raise BranchCancelled()
            self._queue.append(update)
            self._enqueued += 1
            if wait:
                self._drain_locked(self._enqueued)

    def cancel(self, scope: CancelScope) -> None:
        """Cancel ``scope``: its contexts queue no more updates."""
        with self._queue_changed:
            scope.cancelled = True

    def flush(self) -> None:
        """Return once every queued update is durable."""
        with self._queue_changed:
            if self._failure is not None:
                raise self._failure
            self._drain_locked(self._enqueued)

    def _drain_locked(self, target: int) -> None:
        while self._acknowledged < target:
            if self._failure is not None:
                raise self._failure
            if self._sending:
                self._queue_changed.wait()
                continue
            batch = self._take_batch_locked()
            self._sending = True
            failure: BaseException | None = None
            self._queue_lock.release()
            try:
                self._send(batch)
            except BaseException as error:
                failure = error
            finally:
                self._queue_lock.acquire()
                self._sending = False
            if failure is not None:
                self._failure = failure
                self._queue_changed.notify_all()
                raise failure
            self._acknowledged += len(batch)
            self._queue_changed.notify_all()

    def _take_batch_locked(self) -> list[OperationUpdate]:
        batch: list[OperationUpdate] = []
        size = 0
        # The service takes one update per id in a call, except a START
        # followed by one completion; an EXECUTION update must come last.
        actions: dict[str, OperationAction] = {}
        for update in self._queue:
            update_size = _update_size(update)
            previous = actions.get(update.id)
            if batch and (
                len(batch) >= MAX_UPDATES_PER_CALL
                or size + update_size > MAX_BYTES_PER_CALL
                or (
                    previous is not None
                    and (
                        previous is not OperationAction.START
                        or update.action is OperationAction.START
                    )
                )
            ):
                break
            batch.append(update)
            size += update_size
            actions[update.id] = update.action
            if update.type is OperationType.EXECUTION:
                break
        del self._queue[: len(batch)]
        return batch

    def _send(self, batch: list[OperationUpdate]) -> None:
        with self._lock:
            token = self._token
        logger.debug(
            "checkpoint of %d update(s) for %s",
            len(batch),
            self.durable_execution_arn,
        )
        reply = self._client.checkpoint(self.durable_execution_arn, token, batch)
        sent = {update.id for update in batch}
        with self._lock:
            for operation in reply.operations:
                known = self._operations.get(operation.id)
                if operation.id not in sent and (
                    known is None or known.status is not operation.status
                ):
                    self.outside_changes += 1
                self._operations[operation.id] = operation
            if reply.checkpoint_token is not None:
                self._token = reply.checkpoint_token
        if reply.next_marker:
            self._fetch_remaining(reply.next_marker)
        if reply.checkpoint_token is None and not any(
            update.type is OperationType.EXECUTION for update in batch
        ):
            raise _NoTokenReply("the service replied without a checkpoint token")

    def _fetch_remaining(self, marker: str | None) -> None:
        while marker:
            with self._lock:
                token = self._token
            page = self._client.get_execution_state(
                self.durable_execution_arn, token, marker, 1000
            )
            with self._lock:
                for operation in page.operations:
                    self._operations[operation.id] = operation
            marker = page.next_marker

    @property
    def failure(self) -> BaseException | None:
        return self._failure


def _describe(type: Any, sub_type: Any, name: str | None) -> str:
    text = f"{type.value if hasattr(type, 'value') else type}"
    if sub_type:
        text += f"/{sub_type}"
    return text + (f" {name!r}" if name is not None else " (unnamed)")
