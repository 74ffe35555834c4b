"""The completion policy: presets, the percentage boundary, a model of the
thresholds checked against the executor and against ``decide``, and
throw_if_error."""

from __future__ import annotations

from typing import Any

import pytest
from batch_helpers import summarize
from hypothesis import given, settings
from hypothesis import strategies as st

from durable_exec import (
    BatchStatus,
    CompletionConfig,
    CompletionReason,
    DurableContext,
    MapConfig,
    MapError,
    ParallelConfig,
    ParallelError,
    durable_execution,
)
from durable_exec._concurrency import BatchProgress, decide
from durable_exec.local import LocalEngine


def _branch(succeeds: bool, index: int) -> Any:
    def branch(ctx: DurableContext) -> int:
        if not succeeds:
            raise ValueError(f"branch {index} failed")
        return index

    return branch


def _run_outcomes(
    outcomes: list[bool], completion: CompletionConfig, limit: int | None = 1
) -> dict[str, Any]:
    """Run a parallel whose branch i succeeds when outcomes[i]."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> dict[str, Any]:
        batch = ctx.parallel(
            [_branch(ok, index) for index, ok in enumerate(outcomes)],
            config=ParallelConfig(max_concurrency=limit, completion=completion),
        )
        summary = summarize(batch)
        summary["status"] = batch.status.value
        summary["counts"] = [
            batch.success_count,
            batch.failure_count,
            batch.started_count,
        ]
        return summary

    with LocalEngine.in_memory() as engine:
        result = engine.run(workflow)
    assert result.succeeded, result.error
    return result.result  # type: ignore[no-any-return]


# -- presets and boundaries ---------------------------------------------------


def test_first_successful_with_every_branch_failing() -> None:
    """first_successful() over branches that all fail runs them all and
    reports ALL_COMPLETED, a FAILED batch and every failure."""
    summary = _run_outcomes(
        [False] * 5, CompletionConfig.first_successful(), limit=None
    )

    assert summary["reason"] == CompletionReason.ALL_COMPLETED
    assert summary["status"] == BatchStatus.FAILED
    assert summary["counts"] == [0, 5, 0]
    assert [item["error"] for item in summary["items"]] == [
        ["ValueError", f"branch {index} failed"] for index in range(5)
    ]


@pytest.mark.parametrize(
    "outcomes, percentage, reason, ran",
    [
        ([True, False, True, True], 25, CompletionReason.ALL_COMPLETED, 4),
        ([False, True, True, True], 25, CompletionReason.ALL_COMPLETED, 4),
        (
            [True, False, True, False],
            25,
            CompletionReason.FAILURE_TOLERANCE_EXCEEDED,
            4,
        ),
        (
            [False, False, True, True],
            25,
            CompletionReason.FAILURE_TOLERANCE_EXCEEDED,
            2,
        ),
        ([True, True, True, True], 0, CompletionReason.ALL_COMPLETED, 4),
        ([True, False, True, True], 0, CompletionReason.FAILURE_TOLERANCE_EXCEEDED, 2),
        ([False, False, False, False], 100, CompletionReason.ALL_COMPLETED, 4),
    ],
)
def test_failure_percentage_is_exceeded_only_when_strictly_above(
    outcomes: list[bool], percentage: float, reason: CompletionReason, ran: int
) -> None:
    """25% of 4 branches tolerates exactly one failure; 0% tolerates none;
    run one at a time, the batch stops at the failure that exceeds."""
    summary = _run_outcomes(
        outcomes, CompletionConfig(tolerated_failure_percentage=percentage)
    )

    assert summary["reason"] == reason
    assert [item["index"] for item in summary["items"]] == list(range(ran))


def test_all_successful_is_the_default_and_stops_at_the_first_failure() -> None:
    """With no completion config, one failure ends the batch."""
    summary = _run_outcomes([True, False, True], ParallelConfig().completion, limit=1)

    assert summary["reason"] == CompletionReason.FAILURE_TOLERANCE_EXCEEDED
    assert [item["status"] for item in summary["items"]] == ["SUCCEEDED", "FAILED"]


def test_empty_batch_completes_at_once() -> None:
    """A parallel of no branches is ALL_COMPLETED with no items."""
    summary = _run_outcomes([], CompletionConfig.all_successful())

    assert summary == {
        "reason": "ALL_COMPLETED",
        "items": [],
        "status": "SUCCEEDED",
        "counts": [0, 0, 0],
    }


# -- the policy against a model -----------------------------------------------


def model(
    outcomes: list[bool], completion: CompletionConfig
) -> tuple[CompletionReason, int, int]:
    """The policy as written in the design, outcome by outcome."""
    total = len(outcomes)
    succeeded = failed = 0

    def verdict() -> CompletionReason | None:
        count = completion.tolerated_failure_count
        percentage = completion.tolerated_failure_percentage
        if count is not None and failed > count:
            return CompletionReason.FAILURE_TOLERANCE_EXCEEDED
        if percentage is not None and total and failed * 100 > percentage * total:
            return CompletionReason.FAILURE_TOLERANCE_EXCEEDED
        if (
            completion.min_successful is not None
            and succeeded >= completion.min_successful
        ):
            return CompletionReason.MIN_SUCCESSFUL_REACHED
        if succeeded + failed == total:
            return CompletionReason.ALL_COMPLETED
        return None

    reason = verdict()
    for ok in outcomes:
        if reason is not None:
            break
        if ok:
            succeeded += 1
        else:
            failed += 1
        reason = verdict()
    assert reason is not None
    return reason, succeeded, failed


@st.composite
def policies(draw: Any) -> tuple[list[bool], CompletionConfig]:
    outcomes = draw(st.lists(st.booleans(), max_size=10))
    total = len(outcomes)
    min_successful = draw(st.none() | st.integers(1, total)) if total else None
    count = draw(st.none() | st.integers(0, total + 1))
    percentage = draw(
        st.none()
        | st.integers(0, 100)
        | st.floats(0, 100, allow_nan=False, allow_infinity=False)
    )
    completion = CompletionConfig(
        min_successful=min_successful,
        tolerated_failure_count=count,
        tolerated_failure_percentage=percentage,
    )
    return outcomes, completion


@settings(max_examples=150, deadline=None)
@given(policies())
def test_sequential_batch_follows_the_model(
    case: tuple[list[bool], CompletionConfig],
) -> None:
    """Run one branch at a time, a batch stops where the model says, with
    the same reason and the same counts."""
    outcomes, completion = case
    reason, succeeded, failed = model(outcomes, completion)

    summary = _run_outcomes(outcomes, completion, limit=1)

    assert summary["reason"] == reason
    assert summary["counts"] == [succeeded, failed, 0]
    assert [item["index"] for item in summary["items"]] == list(
        range(succeeded + failed)
    )


@settings(max_examples=1000, deadline=None)
@given(policies())
def test_decide_follows_the_model(
    case: tuple[list[bool], CompletionConfig],
) -> None:
    """``decide``, asked after every outcome, first answers where the model
    stops, with the model's reason."""
    outcomes, completion = case
    reason, succeeded, failed = model(outcomes, completion)

    total = len(outcomes)
    seen_ok = seen_failed = 0
    answer = decide(completion, 0, 0, 0, total)
    for ok in outcomes:
        if answer is not None:
            break
        seen_ok += ok
        seen_failed += not ok
        answer = decide(completion, seen_ok, seen_failed, 0, total)

    assert (answer, seen_ok, seen_failed) == (reason, succeeded, failed)


@pytest.mark.parametrize(
    "verdict, failed, reason",
    [
        (False, 0, None),
        (True, 0, CompletionReason.MIN_SUCCESSFUL_REACHED),
        (True, 1, CompletionReason.FAILURE_TOLERANCE_EXCEEDED),
        (
            CompletionReason.ALL_COMPLETED,
            1,
            CompletionReason.ALL_COMPLETED,
        ),
    ],
)
def test_should_complete_verdicts(
    verdict: Any, failed: int, reason: CompletionReason | None
) -> None:
    """should_complete sees the progress; True names a reason from the
    failures so far, a CompletionReason is taken as is."""
    seen: list[BatchProgress] = []

    def predicate(progress: BatchProgress) -> Any:
        seen.append(progress)
        return verdict

    completion = CompletionConfig(should_complete=predicate)

    assert decide(completion, 2, failed, 1, 10) == reason
    assert seen == [BatchProgress(2, failed, 1, 10)]
    assert seen[0].completed_count == 2 + failed


def test_should_complete_false_still_ends_a_finished_batch() -> None:
    """A predicate that never says stop cannot keep a finished batch open."""
    completion = CompletionConfig(should_complete=lambda progress: False)

    assert decide(completion, 3, 1, 0, 4) is CompletionReason.ALL_COMPLETED


# -- throw_if_error -------------------------------------------------------------


def test_parallel_throw_if_error_raises_parallel_error_with_the_batch(
    local: LocalEngine,
) -> None:
    """throw_if_error raises ParallelError for the first failure, carrying
    the batch; a batch without failures does not raise."""
    caught: dict[str, Any] = {}

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> str:
        clean = ctx.parallel([_branch(True, 0), _branch(True, 1)])
        clean.throw_if_error()
        batch = ctx.parallel(
            [_branch(True, 0), _branch(False, 1), _branch(False, 2)],
            config=ParallelConfig(completion=CompletionConfig.all_completed()),
        )
        try:
            batch.throw_if_error()
        except ParallelError as error:
            caught["error"] = error
            caught["batch"] = batch
            return "raised"
        return "did not raise"

    result = local.run(workflow)

    assert result.result == "raised"
    error = caught["error"]
    assert error.batch is caught["batch"]
    assert error.error_type == "ValueError"
    assert error.error_message == "branch 1 failed"
    assert error.batch.failure_count == 2


def test_map_throw_if_error_raises_map_error_with_the_batch(
    local: LocalEngine,
) -> None:
    """A map's throw_if_error raises MapError, not ParallelError."""
    caught: dict[str, Any] = {}

    def item(ctx: DurableContext, value: int, index: int, items: Any) -> int:
        if value == 2:
            raise KeyError(value)
        return value

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> str:
        batch = ctx.map(
            [1, 2, 3],
            item,
            config=MapConfig(completion=CompletionConfig.all_completed()),
        )
        try:
            batch.throw_if_error()
        except ParallelError:
            return "parallel error"
        except MapError as error:
            caught["error"] = error
            caught["batch"] = batch
            return "map error"
        return "did not raise"

    result = local.run(workflow)

    assert result.result == "map error"
    assert caught["error"].batch is caught["batch"]
    assert caught["error"].error_type == "KeyError"
    assert [item.status.value for item in caught["batch"].all] == [
        "SUCCEEDED",
        "FAILED",
        "SUCCEEDED",
    ]
