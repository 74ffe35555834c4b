"""Results of parallel and map: a batch of branch (or item) outcomes.

A batch never raises by itself. :class:`BatchResult` reports every branch
that started — succeeded, failed, or still running when the completion
policy was decided — in branch order; branches that never started are
absent. :meth:`BatchResult.throw_if_error` raises when the caller wants a
failure to be fatal.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar, cast

import attrs

from .errors import MapError, OperationError, ParallelError

__all__ = [
    "BatchItem",
    "BatchItemStatus",
    "BatchResult",
    "BatchStatus",
    "CompletionReason",
]

T = TypeVar("T")


class BatchItemStatus(enum.StrEnum):
    """Where one branch or item stands."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STARTED = "STARTED"


class BatchStatus(enum.StrEnum):
    """FAILED when any branch failed, else SUCCEEDED."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class CompletionReason(enum.StrEnum):
    """Why a batch stopped."""

    ALL_COMPLETED = "ALL_COMPLETED"
    MIN_SUCCESSFUL_REACHED = "MIN_SUCCESSFUL_REACHED"
    FAILURE_TOLERANCE_EXCEEDED = "FAILURE_TOLERANCE_EXCEEDED"


@attrs.frozen
class BatchItem(Generic[T]):
    """One branch's (or item's) outcome.

    Attributes:
        index: the branch's position in the batch.
        name: the branch's name, if any.
        status: SUCCEEDED, FAILED, or STARTED (still running when the
            batch was decided).
        result: the branch's result when it succeeded, else None.
        error: the branch's error when it failed, else None.
    """

    index: int
    status: BatchItemStatus
    result: T | None = None
    error: OperationError | None = None
    name: str | None = None


@attrs.frozen
class BatchResult(Generic[T]):
    """The outcome of a parallel or map, in branch order.

    Attributes:
        all: every started branch, in index order.
        completion_reason: why the batch stopped.
        kind: ``"parallel"`` or ``"map"``; decides the error type of
            :meth:`throw_if_error`.
    """

    all: tuple[BatchItem[T], ...]
    completion_reason: CompletionReason
    kind: str = "parallel"

    def succeeded(self) -> list[BatchItem[T]]:
        return [i for i in self.all if i.status is BatchItemStatus.SUCCEEDED]

    def failed(self) -> list[BatchItem[T]]:
        return [i for i in self.all if i.status is BatchItemStatus.FAILED]

    def started(self) -> list[BatchItem[T]]:
        """Branches still running when the batch was decided."""
        return [i for i in self.all if i.status is BatchItemStatus.STARTED]

    def get_results(self) -> list[T]:
        """Results of the succeeded branches, in branch order."""
        succeeded = BatchItemStatus.SUCCEEDED
        return [cast(T, i.result) for i in self.all if i.status is succeeded]

    def get_errors(self) -> list[OperationError]:
        """Errors of the failed branches, in branch order."""
        return [i.error for i in self.all if i.error is not None]

    @property
    def has_failure(self) -> bool:
        return any(i.status is BatchItemStatus.FAILED for i in self.all)

    @property
    def status(self) -> BatchStatus:
        return BatchStatus.FAILED if self.has_failure else BatchStatus.SUCCEEDED

    @property
    def success_count(self) -> int:
        return sum(1 for i in self.all if i.status is BatchItemStatus.SUCCEEDED)

    @property
    def failure_count(self) -> int:
        return sum(1 for i in self.all if i.status is BatchItemStatus.FAILED)

    @property
    def started_count(self) -> int:
        return sum(1 for i in self.all if i.status is BatchItemStatus.STARTED)

    @property
    def total_count(self) -> int:
        """Branches that started; unstarted ones are not counted."""
        return len(self.all)

    def throw_if_error(self) -> None:
        """Raise the first failure as :class:`ParallelError` or
        :class:`MapError`, carrying this batch as ``batch``."""
        failures = self.failed()
        if not failures:
            return
        first = failures[0].error
        kind = MapError if self.kind == "map" else ParallelError
        error = kind(
            first.error_message if first else "a branch failed",
            error_type=first.error_type if first else None,
            error_data=first.error_data if first else None,
            stack_trace=first.stack_trace if first else None,
        )
        error.batch = self
        raise error from first

    def __iter__(self) -> Iterator[BatchItem[T]]:
        return iter(self.all)

    def __len__(self) -> int:
        return len(self.all)

    @classmethod
    def from_items(
        cls,
        items: Sequence[BatchItem[Any]],
        completion_reason: CompletionReason,
        kind: str = "parallel",
    ) -> BatchResult[Any]:
        return cls(tuple(sorted(items, key=lambda i: i.index)), completion_reason, kind)
