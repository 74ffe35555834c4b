"""The parallel and map executor, and its completion policy.

A batch is a CONTEXT operation (sub-type Parallel or Map) whose branches
are units of work: a parallel branch, a map item, or with map batching a
run of items sharing one child context. The caller's thread coordinates;
units run on a ThreadPoolExecutor sized by ``max_concurrency``.

Guarantees
----------
* Ids follow structure: unit ``i`` of the batch with logical id ``L`` has
  logical id ``L-(i+1)``, whatever thread runs it and whenever.
* Units are submitted in index order. At most ``max_concurrency`` are in
  flight; a unit suspended on a wait, callback or retry keeps its slot.
  With no limit every unit may be in flight, but the pool still has a
  bounded number of threads.
* The completion policy is evaluated, in the coordinating thread only,
  after every unit outcome. Once it is decided: no unit starts, pending
  futures are cancelled, the batch's cancel scope is cancelled so running
  units stop at their next durable operation (and can queue no update
  after that), the pool is shut down and waited for, and only then is the
  batch's own completion checkpointed. No thread outlives the batch.
* A unit recorded as finished in the execution state (NESTED) is not run
  again: its outcome is read from its checkpoint, in the coordinator.
* When every unit in flight is suspended and no other may start, the
  batch suspends: the invocation ends, and replay brings it back here.
  Before that, a suspended unit whose wait, retry or callback a
  checkpoint reply has since completed runs again: the service owes no
  invocation for a change it already delivered.

Coordinator-only state (``_outcomes``, counters) needs no lock: worker
threads hand their results over through a queue. ``_Batch._gate`` orders
the start of a unit against the decision: the policy is evaluated, and
the scope cancelled, under it, and a unit checks the scope and records
itself in ``began`` under it, so a unit either began before the decision
(reported STARTED) or never runs (absent). A batch running inside a branch
whose own batch was decided starts no more units.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import attrs

from ._state import MAX_PAYLOAD_BYTES, BranchCancelled, CancelScope
from .batch import (
    BatchItem,
    BatchItemStatus,
    BatchResult,
    CompletionReason,
)
from .config import ChildConfig, CompletionConfig, NestingType, ParallelConfig
from .errors import (
    CheckpointError,
    ChildContextError,
    DurableExecutionError,
    NonDeterministicExecutionError,
    OperationError,
    SerDesError,
    SuspendExecution,
    ValidationError,
    error_object_from_exception,
)
from .serde import (
    SerDes,
    SerDesContext,
    default_serdes,
    deserialize,
    serialize,
)
from .wire import (
    ContextOptions,
    ErrorObject,
    OperationAction,
    OperationStatus,
    OperationType,
    from_wire,
    to_wire,
)

if TYPE_CHECKING:
    from .context import DurableContext

__all__ = ["BatchProgress", "Unit", "run_batch"]

logger = logging.getLogger(__name__)

# Threads for a batch with no max_concurrency: what ThreadPoolExecutor
# would choose, so a map over 10,000 items starts a few dozen threads.
DEFAULT_MAX_THREADS = min(32, (os.cpu_count() or 1) + 4)


@attrs.frozen
class BatchProgress:
    """The batch so far, as a ``should_complete`` predicate sees it."""

    success_count: int
    failure_count: int
    started_count: int
    total_count: int

    @property
    def completed_count(self) -> int:
        return self.success_count + self.failure_count


def decide(
    completion: CompletionConfig,
    succeeded: int,
    failed: int,
    running: int,
    total: int,
) -> CompletionReason | None:
    """The completion policy: why the batch stops now, or None.

    ``total`` counts every branch (or item) of the batch; the batch is
    complete once ``succeeded + failed == total``.
    """
    all_done = succeeded + failed >= total
    if completion.should_complete is not None:
        verdict = completion.should_complete(
            BatchProgress(succeeded, failed, running, total)
        )
        if isinstance(verdict, CompletionReason):
            return verdict
        if verdict:
            return (
                CompletionReason.FAILURE_TOLERANCE_EXCEEDED
                if failed
                else CompletionReason.MIN_SUCCESSFUL_REACHED
            )
        return CompletionReason.ALL_COMPLETED if all_done else None
    if (
        completion.tolerated_failure_count is not None
        and failed > completion.tolerated_failure_count
    ):
        return CompletionReason.FAILURE_TOLERANCE_EXCEEDED
    if (
        completion.tolerated_failure_percentage is not None
        and total > 0
        and failed * 100 > completion.tolerated_failure_percentage * total
    ):
        return CompletionReason.FAILURE_TOLERANCE_EXCEEDED
    if completion.min_successful is not None and succeeded >= completion.min_successful:
        return CompletionReason.MIN_SUCCESSFUL_REACHED
    if all_done:
        return CompletionReason.ALL_COMPLETED
    return None


@attrs.frozen
class Unit:
    """One child context's worth of a batch.

    ``body`` runs in the unit's context and returns one outcome per item:
    ``(result, None)`` or ``(None, error)``. A parallel branch or an
    unbatched map item is a unit of one item whose failure is raised, not
    returned, so that NESTED records it as the child context's failure.
    """

    index: int
    name: str | None
    items: tuple[int, ...]
    item_names: tuple[str | None, ...]
    body: Callable[[DurableContext], list[tuple[Any, BaseException | None]]]
    batched: bool


@attrs.frozen
class _Outcome:
    kind: str  # "done", "suspended", "cancelled", "raise"
    items: tuple[BatchItem[Any], ...] = ()
    error: BaseException | None = None
    # How many outside changes the state had seen when the unit began: a
    # suspended unit is worth running again once it has seen more.
    seen_changes: int = 0


class _Batch:
    def __init__(
        self,
        ctx: DurableContext,
        op_id: str,
        logical_id: str,
        kind: str,
        units: Sequence[Unit],
        total_items: int,
        config: ParallelConfig,
        item_serdes: SerDes[Any],
    ) -> None:
        self.ctx = ctx
        self.op_id = op_id
        self.logical_id = logical_id
        self.kind = kind
        self.units = units
        self.total_items = total_items
        self.config = config
        self.item_serdes = item_serdes
        self.sub_type = "MapIteration" if kind == "map" else "ParallelBranch"
        self.scope = CancelScope(ctx._scope)
        self.outcomes: dict[int, BatchItem[Any]] = {}
        # A unit begins, and the policy is decided, under ``_gate``: a
        # unit either began before the decision (and is reported
        # STARTED) or never begins. ``began`` is read by the coordinator
        # only once the pool has shut down.
        self._gate = threading.Lock()
        self.began: set[int] = set()

    # -- unit ids and contexts -------------------------------------------

    def unit_ids(self, unit: Unit) -> tuple[str, str]:
        from .context import operation_id

        logical = f"{self.logical_id}-{unit.index + 1}"
        return logical, operation_id(logical)

    def unit_context(self, unit: Unit) -> DurableContext:
        """The context a unit's body runs in, or that holds its child."""
        from .context import DurableContext

        logical, _ = self.unit_ids(unit)
        ctx = self.ctx
        return DurableContext(
            ctx._state,
            parent_id=self.op_id,
            logical_id=logical,
            base_logger=ctx._base_logger,
            log_during_replay=ctx._log_during_replay,
            lambda_context=ctx.lambda_context,
            scope=self.scope,
            plugins=ctx._plugins,
        )

    # -- outcomes -----------------------------------------------------------

    def _items_from(
        self,
        unit: Unit,
        outcomes: list[tuple[Any, BaseException | None]] | None,
        failure: OperationError | None,
    ) -> tuple[BatchItem[Any], ...]:
        items: list[BatchItem[Any]] = []
        for position, index in enumerate(unit.items):
            name = unit.item_names[position]
            if failure is not None:
                items.append(
                    BatchItem(index, BatchItemStatus.FAILED, error=failure, name=name)
                )
            else:
                assert outcomes is not None
                result, error = outcomes[position]
                if error is not None:
                    items.append(
                        BatchItem(
                            index,
                            BatchItemStatus.FAILED,
                            error=_as_operation_error(error),
                            name=name,
                        )
                    )
                else:
                    items.append(
                        BatchItem(
                            index, BatchItemStatus.SUCCEEDED, result=result, name=name
                        )
                    )
        return tuple(items)

    @staticmethod
    def _started(unit: Unit) -> list[BatchItem[Any]]:
        """The unit's items as running when the batch was decided."""
        return [
            BatchItem(index, BatchItemStatus.STARTED, name=unit.item_names[position])
            for position, index in enumerate(unit.items)
        ]

    def replayed(self, unit: Unit) -> tuple[BatchItem[Any], ...] | None:
        """A NESTED unit's outcome read from its checkpoint, if finished."""
        if self.config.nesting is not NestingType.NESTED:
            return None
        _, op_id = self.unit_ids(unit)
        operation = self.ctx._state.get_checked(
            op_id, OperationType.CONTEXT, self.sub_type, unit.name
        )
        if operation is None or not operation.is_terminal:
            return None
        if operation.status is OperationStatus.SUCCEEDED:
            if operation.context_details and operation.context_details.replay_children:
                # Too large to have been checkpointed; rebuild by running
                # the unit over its children's checkpoints.
                return None
            serdes_context = SerDesContext(
                op_id, self.ctx.durable_execution_arn, unit.name
            )
            if unit.batched:
                return self._items_from(
                    unit,
                    self._split(operation.result, serdes_context),
                    None,
                )
            value = deserialize(self.item_serdes, operation.result, serdes_context)
            return self._items_from(unit, [(value, None)], None)
        failure = ChildContextError.from_error_object(operation.error)
        return self._items_from(unit, None, failure)

    def _split(
        self, payload: str | None, context: SerDesContext
    ) -> list[tuple[Any, BaseException | None]]:
        entries = json.loads(payload or "[]")
        outcomes: list[tuple[Any, BaseException | None]] = []
        for entry in entries:
            if "e" in entry:
                error = ChildContextError.from_error_object(
                    from_wire(entry["e"], ErrorObject)
                )
                outcomes.append((None, error))
            else:
                outcomes.append(
                    (deserialize(self.item_serdes, entry.get("r"), context), None)
                )
        return outcomes

    def run_unit(self, unit: Unit) -> _Outcome:
        """Run one unit; called on a worker thread."""
        with self._gate:
            if self.scope.is_cancelled():
                # Queued on the pool when the batch was decided.
                return _Outcome("cancelled")
            self.began.add(unit.index)
        seen_changes = self.ctx._state.outside_changes
        try:
            if self.config.nesting is NestingType.NESTED:
                items = self._run_nested(unit)
            else:
                items = self._run_flat(unit)
            return _Outcome("done", items)
        except SuspendExecution:
            return _Outcome("suspended", seen_changes=seen_changes)
        except BranchCancelled:
            return _Outcome("cancelled")
        except BaseException as error:
            return _Outcome("raise", error=error)

    def _run_nested(self, unit: Unit) -> tuple[BatchItem[Any], ...]:
        logical, op_id = self.unit_ids(unit)
        holder = self.unit_context(unit)
        # The unit's checkpointed result: the item's own payload, or for a
        # batched unit the list of per-item outcomes.
        if unit.batched:

            def body(ctx: DurableContext) -> list[dict[str, Any]]:
                serdes_context = SerDesContext(
                    op_id, ctx.durable_execution_arn, unit.name
                )
                entries: list[dict[str, Any]] = []
                for result, error in unit.body(ctx):
                    if error is not None:
                        entries.append(
                            {"e": to_wire(error_object_from_exception(error))}
                        )
                    else:
                        entries.append(
                            {"r": serialize(self.item_serdes, result, serdes_context)}
                        )
                return entries

            try:
                entries = holder._run_child(
                    body,
                    unit.name,
                    ChildConfig(),
                    self.sub_type,
                    ids=(logical, op_id),
                )
            except ChildContextError as failure:
                return self._items_from(unit, None, failure)
            serdes_context = SerDesContext(
                op_id, self.ctx.durable_execution_arn, unit.name
            )
            return self._items_from(
                unit, self._split(json.dumps(entries), serdes_context), None
            )

        def single(ctx: DurableContext) -> Any:
            ((result, error),) = unit.body(ctx)
            if error is not None:
                raise error
            return result

        try:
            value = holder._run_child(
                single,
                unit.name,
                ChildConfig(serdes=self.item_serdes),
                self.sub_type,
                ids=(logical, op_id),
            )
        except ChildContextError as failure:
            return self._items_from(unit, None, failure)
        return self._items_from(unit, [(value, None)], None)

    def _run_flat(self, unit: Unit) -> tuple[BatchItem[Any], ...]:
        ctx = self.unit_context(unit)
        _, op_id = self.unit_ids(unit)
        serdes_context = SerDesContext(op_id, self.ctx.durable_execution_arn, unit.name)
        try:
            outcomes = unit.body(ctx)
        except (SuspendExecution, BranchCancelled, NonDeterministicExecutionError):
            raise
        except CheckpointError:
            raise
        except Exception as error:
            return self._items_from(unit, None, _as_operation_error(error))
        # Round-trip each result as a NESTED unit's checkpoint would.
        round_tripped: list[tuple[Any, BaseException | None]] = []
        for result, item_error in outcomes:
            if item_error is not None:
                round_tripped.append((None, item_error))
                continue
            try:
                text = serialize(self.item_serdes, result, serdes_context)
                round_tripped.append(
                    (deserialize(self.item_serdes, text, serdes_context), None)
                )
            except SerDesError as failure:
                round_tripped.append((None, failure))
        return self._items_from(unit, round_tripped, None)

    # -- coordination -------------------------------------------------------

    def _decide(
        self, succeeded: int, failed: int, running: int
    ) -> CompletionReason | None:
        """The policy's verdict; once decided, no unit may begin."""
        with self._gate:
            reason = decide(
                self.config.completion, succeeded, failed, running, self.total_items
            )
            if reason is not None:
                self.ctx._state.cancel(self.scope)
        return reason

    def _outer_cancelled(self) -> bool:
        """True when the branch this batch runs in was told to stop."""
        parent = self.scope.parent
        return parent is not None and parent.is_cancelled()

    def run(self) -> BatchResult[Any]:
        """Run the units under the completion policy; see module docs."""
        config = self.config
        limit = config.max_concurrency
        succeeded = failed = 0
        decided: CompletionReason | None = None
        in_flight: set[int] = set()
        # Suspended units, with the outside changes each had seen.
        suspended: dict[int, int] = {}
        next_unit = 0
        units = self.units
        done: queue.SimpleQueue[tuple[Unit, Future[_Outcome]]] = queue.SimpleQueue()
        pool: ThreadPoolExecutor | None = None
        futures: list[Future[_Outcome]] = []
        fatal: BaseException | None = None

        def record(items: Sequence[BatchItem[Any]]) -> None:
            nonlocal succeeded, failed
            for item in items:
                self.outcomes[item.index] = item
                if item.status is BatchItemStatus.SUCCEEDED:
                    succeeded += 1
                elif item.status is BatchItemStatus.FAILED:
                    failed += 1

        def submit(unit: Unit) -> None:
            assert pool is not None
            future = pool.submit(self.run_unit, unit)
            futures.append(future)
            future.add_done_callback(
                lambda f, u=unit: done.put((u, f))  # type: ignore[misc]
            )

        decided = self._decide(0, 0, 0)
        try:
            while True:
                # Start what may start, in index order. A batch inside a
                # branch whose own batch was decided starts nothing more.
                while (
                    decided is None
                    and not self._outer_cancelled()
                    and next_unit < len(units)
                    and (limit is None or len(in_flight) < limit)
                ):
                    unit = units[next_unit]
                    next_unit += 1
                    replayed = self.replayed(unit)
                    if replayed is not None:
                        record(replayed)
                        decided = self._decide(succeeded, failed, len(in_flight))
                        continue
                    if pool is None:
                        workers = min(
                            limit or DEFAULT_MAX_THREADS, len(units) - next_unit + 1
                        )
                        pool = ThreadPoolExecutor(
                            max_workers=max(1, workers),
                            thread_name_prefix=f"durable-{self.kind}-{self.op_id}",
                        )
                    in_flight.add(unit.index)
                    submit(unit)

                if decided is not None or not in_flight:
                    break
                if in_flight == suspended.keys():
                    # Everything in flight waits for time or the outside
                    # world, and nothing more may start. A checkpoint reply
                    # may since have brought what a unit waited for (a wait
                    # that fired, a callback answered): the service owes no
                    # invocation for a change it already delivered, so such
                    # a unit runs again now rather than after suspending.
                    changes = self.ctx._state.outside_changes
                    stale = [i for i, seen in suspended.items() if seen < changes]
                    if not stale:
                        break
                    for index in stale:
                        del suspended[index]
                        submit(units[index])
                    continue

                unit, future = done.get()
                if future.cancelled():
                    in_flight.discard(unit.index)
                    continue
                outcome = future.result()
                if outcome.kind == "suspended":
                    suspended[unit.index] = outcome.seen_changes
                    continue
                in_flight.discard(unit.index)
                if outcome.kind == "raise":
                    fatal = outcome.error
                    break
                if outcome.kind == "cancelled":
                    continue
                record(outcome.items)
                decided = self._decide(succeeded, failed, len(in_flight))
        finally:
            self.ctx._state.cancel(self.scope)
            for future in futures:
                future.cancel()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

        if fatal is not None:
            raise fatal
        if decided is None and self._outer_cancelled():
            raise BranchCancelled()
        if decided is None:
            raise SuspendExecution(
                f"{self.kind} {self.op_id} waits for {len(suspended)} branch(es)"
            )
        # Units still in flight when the policy was decided ran, but their
        # outcome came too late to count: they are reported as started.
        # Those still queued on the pool never began: they are absent.
        for index in sorted(in_flight & self.began):
            for item in self._started(units[index]):
                self.outcomes.setdefault(item.index, item)
        return BatchResult.from_items(list(self.outcomes.values()), decided, self.kind)

    def rebuild(self, summary: dict[str, Any]) -> BatchResult[Any]:
        """Rebuild a batch checkpointed as a summary, running nothing new.

        NESTED units are read from their checkpoints; FLAT units run their
        bodies again over their own checkpoints. Units that were running when
        the batch was decided are reported started; unstarted ones absent.
        """
        codes = summary.get("units", "")
        for unit in self.units:
            code = codes[unit.index] if unit.index < len(codes) else "-"
            if code == "-":
                continue
            if code == "R":
                for item in self._started(unit):
                    self.outcomes[item.index] = item
                continue
            items = self.replayed(unit)
            if items is None:
                outcome = self.run_unit(unit)
                if outcome.kind == "raise":
                    assert outcome.error is not None
                    raise outcome.error
                if outcome.kind != "done":
                    raise DurableExecutionError(
                        f"cannot rebuild {self.kind} {self.op_id}: unit "
                        f"{unit.index} did not replay to its recorded end"
                    )
                items = outcome.items
            for item in items:
                self.outcomes[item.index] = item
        reason = CompletionReason(summary["reason"])
        return BatchResult.from_items(list(self.outcomes.values()), reason, self.kind)


def _as_operation_error(error: BaseException) -> OperationError:
    if isinstance(error, OperationError):
        return error
    return ChildContextError.from_error_object(error_object_from_exception(error))


# -- the batch's own checkpoint ---------------------------------------------


def encode_batch(
    batch: BatchResult[Any], item_serdes: SerDes[Any], context: SerDesContext
) -> str:
    """The default checkpoint text of a batch: every started item."""
    items = []
    for item in batch.all:
        entry: dict[str, Any] = {"i": item.index, "s": item.status.value}
        if item.name is not None:
            entry["n"] = item.name
        if item.status is BatchItemStatus.SUCCEEDED:
            entry["r"] = serialize(item_serdes, item.result, context)
        elif item.error is not None:
            entry["e"] = to_wire(error_object_from_exception(item.error))
        items.append(entry)
    return json.dumps(
        {"reason": batch.completion_reason.value, "items": items},
        separators=(",", ":"),
    )


def decode_batch(
    text: str, kind: str, item_serdes: SerDes[Any], context: SerDesContext
) -> BatchResult[Any]:
    data = json.loads(text)
    items: list[BatchItem[Any]] = []
    for entry in data["items"]:
        status = BatchItemStatus(entry["s"])
        result = None
        error = None
        if status is BatchItemStatus.SUCCEEDED:
            result = deserialize(item_serdes, entry.get("r"), context)
        elif "e" in entry:
            error = ChildContextError.from_error_object(
                from_wire(entry["e"], ErrorObject)
            )
        items.append(BatchItem(entry["i"], status, result, error, entry.get("n")))
    return BatchResult(tuple(items), CompletionReason(data["reason"]), kind)


class _BatchSerDes:
    """The default serdes of a whole batch, around its item serdes."""

    def __init__(self, kind: str, item_serdes: SerDes[Any]) -> None:
        self.kind = kind
        self.item_serdes = item_serdes

    def serialize(self, value: BatchResult[Any], context: SerDesContext) -> str:
        return encode_batch(value, self.item_serdes, context)

    def deserialize(self, payload: str, context: SerDesContext) -> BatchResult[Any]:
        return decode_batch(payload, self.kind, self.item_serdes, context)


_STATUS_CODES = {
    BatchItemStatus.SUCCEEDED: "S",
    BatchItemStatus.FAILED: "F",
    BatchItemStatus.STARTED: "R",
}


def _summary(batch: BatchResult[Any], units: Sequence[Unit]) -> str:
    """A small stand-in for a batch too large to checkpoint.

    It keeps what replay cannot work out again by itself: why the batch
    stopped and which units had started, by unit index.
    """
    by_item = {item.index: item.status for item in batch.all}
    codes = []
    for unit in units:
        status = by_item.get(unit.items[0]) if unit.items else None
        codes.append(_STATUS_CODES[status] if status is not None else "-")
    return json.dumps(
        {
            "summary": "batch over 256 KiB, rebuilt on replay",
            "reason": batch.completion_reason.value,
            "units": "".join(codes),
        },
        separators=(",", ":"),
    )


def run_batch(
    ctx: DurableContext,
    kind: str,
    name: str | None,
    units: Sequence[Unit],
    total_items: int,
    config: ParallelConfig,
) -> BatchResult[Any]:
    """Run a parallel or map as one CONTEXT operation; see module docs."""
    from .context import operation_id

    sub_type = "Map" if kind == "map" else "Parallel"
    min_successful = config.completion.min_successful
    if min_successful is not None and min_successful > total_items:
        raise ValidationError(
            f"min_successful must be at most the number of "
            f"{'items' if kind == 'map' else 'branches'} ({total_items}) "
            f"(got {min_successful})"
        )
    ctx._check_cancelled()
    logical_id, op_id = ctx._next_ids()
    assert op_id == operation_id(logical_id)
    state = ctx._state
    operation = state.get_checked(op_id, OperationType.CONTEXT, sub_type, name)
    item_serdes = config.item_serdes or default_serdes
    serdes = config.serdes or _BatchSerDes(kind, item_serdes)
    serdes_context = SerDesContext(op_id, ctx.durable_execution_arn, name)
    batch = _Batch(
        ctx, op_id, logical_id, kind, units, total_items, config, item_serdes
    )

    if operation is not None and operation.status is OperationStatus.SUCCEEDED:
        details = operation.context_details
        if not (details and details.replay_children):
            recorded: BatchResult[Any] = deserialize(
                serdes, operation.result, serdes_context
            )
            return recorded
        summary = json.loads(operation.result or "{}")
        result = batch.rebuild(summary)
        text = serialize(serdes, result, serdes_context)
        rebuilt: BatchResult[Any] = deserialize(serdes, text, serdes_context)
        return rebuilt
    if operation is not None and operation.status is OperationStatus.FAILED:
        raise ChildContextError.from_error_object(operation.error)
    with ctx._operation(op_id, OperationType.CONTEXT, sub_type, name):
        if operation is None:
            ctx._checkpoint(
                ctx._update(
                    op_id, OperationType.CONTEXT, sub_type, name, OperationAction.START
                ),
                wait=False,
            )
        return _run_and_record(
            ctx, batch, op_id, name, sub_type, units, serdes, serdes_context
        )


def _run_and_record(
    ctx: DurableContext,
    batch: _Batch,
    op_id: str,
    name: str | None,
    sub_type: str,
    units: Sequence[Unit],
    serdes: SerDes[Any],
    serdes_context: SerDesContext,
) -> BatchResult[Any]:
    """Run a batch that is not recorded as finished; checkpoint its end."""
    ctx._batch_running = True
    try:
        result = batch.run()
    finally:
        ctx._batch_running = False

    try:
        payload = serialize(serdes, result, serdes_context)
        value = deserialize(serdes, payload, serdes_context)
    except SerDesError as error:
        recorded = error_object_from_exception(error)
        ctx._checkpoint(
            ctx._update(
                op_id,
                OperationType.CONTEXT,
                sub_type,
                name,
                OperationAction.FAIL,
                error=recorded,
            )
        )
        raise ChildContextError.from_error_object(recorded) from error
    options = None
    if len(payload.encode()) > MAX_PAYLOAD_BYTES:
        payload = _summary(result, units)
        options = ContextOptions(replay_children=True)
    ctx._checkpoint(
        ctx._update(
            op_id,
            OperationType.CONTEXT,
            sub_type,
            name,
            OperationAction.SUCCEED,
            payload=payload,
            context_options=options,
        )
    )
    return value  # type: ignore[no-any-return]
