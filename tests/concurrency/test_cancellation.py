"""Cancellation once the completion policy is decided: no branch starts
after the decision, none checkpoints after its batch, running branches are
reported STARTED and unstarted ones absent, and no thread is left."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from batch_helpers import descends_from, events_of, parent_map, summarize

import durable_exec._concurrency as concurrency
from durable_exec import (
    BatchItemStatus,
    CompletionConfig,
    CompletionReason,
    DurableContext,
    MapConfig,
    NestingType,
    ParallelConfig,
    durable_execution,
)
from durable_exec._state import ExecutionState
from durable_exec.local import LocalEngine

# A bound on every wait, so a broken SDK fails the test instead of hanging
# it; no test waits for this long when the SDK works.
SAFETY_TIMEOUT = 30


class Probe:
    """What the branches and the coordinator saw, and when.

    ``decided`` is set by a wrapper around the policy, at the moment it
    first returns a reason; branches note at entry whether it was set.
    """

    def __init__(self, parties: int) -> None:
        self.lock = threading.Lock()
        self.entered: list[tuple[int, bool]] = []
        self.decided = threading.Event()
        self.release = threading.Event()
        self.all_in = threading.Barrier(parties)

    def enter(self, index: int) -> None:
        with self.lock:
            self.entered.append((index, self.decided.is_set()))

    def entered_indices(self) -> set[int]:
        return {index for index, _ in self.entered}

    def late_entries(self) -> list[int]:
        return [index for index, late in self.entered if late]


@pytest.fixture
def probe_policy(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Install a probe on the completion policy.

    ``decided`` is set when the policy first returns a reason; the
    blockers are released once the execution state has cancelled a batch
    after that, so what they do next always meets a cancelled scope.
    """

    def install(probe: Probe) -> None:
        real_decide = concurrency.decide
        real_cancel = ExecutionState.cancel

        def observed(*args: Any, **kwargs: Any) -> Any:
            reason = real_decide(*args, **kwargs)
            if reason is not None:
                probe.decided.set()
            return reason

        def cancel(self: ExecutionState, scope: Any) -> None:
            real_cancel(self, scope)
            if probe.decided.is_set():
                probe.release.set()

        monkeypatch.setattr(concurrency, "decide", observed)
        monkeypatch.setattr(ExecutionState, "cancel", cancel)

    return install


def _branches(
    probe: Probe, count: int, blockers: int, rest_hold: bool = False
) -> list[Any]:
    """Branch 0 wins once branches 1..blockers are inside their step; the
    blockers hold their step until the policy is decided. The rest would
    succeed at once if they ever started, or with ``rest_hold`` hold their
    step until the decision too."""

    def make(index: int) -> Any:
        def winner(ctx: DurableContext) -> str:
            probe.enter(index)
            probe.all_in.wait(SAFETY_TIMEOUT)
            return ctx.step(lambda _: "won", name="win")

        def blocker(ctx: DurableContext) -> str:
            probe.enter(index)

            def hold(_: Any) -> str:
                probe.all_in.wait(SAFETY_TIMEOUT)
                assert probe.release.wait(SAFETY_TIMEOUT)
                return "late"

            return ctx.step(hold, name="hold")

        def idle(ctx: DurableContext) -> str:
            probe.enter(index)
            return ctx.step(lambda _: "idle", name="idle")

        def holder(ctx: DurableContext) -> str:
            probe.enter(index)

            def hold(_: Any) -> str:
                assert probe.release.wait(SAFETY_TIMEOUT)
                return "late"

            return ctx.step(hold, name="hold")

        if index == 0:
            return winner
        if index <= blockers:
            return blocker
        return holder if rest_hold else idle

    return [make(index) for index in range(count)]


def _assert_nothing_after_the_batch(history: Any, batch_id: str) -> None:
    parents = parent_map(history)
    (done,) = [
        position
        for position, event in enumerate(history)
        if event["EventType"] == "ContextSucceeded" and event["Id"] == batch_id
    ]
    late = [
        (event["EventType"], event["Id"])
        for event in history[done + 1 :]
        if "Id" in event and descends_from(event["Id"], batch_id, parents)
    ]
    assert late == [], f"branches checkpointed after their batch: {late}"


@pytest.mark.parametrize("nesting", list(NestingType))
def test_first_successful_stops_dispatch_at_the_decision(
    local: LocalEngine, probe_policy: Any, nesting: NestingType
) -> None:
    """With 4 in flight, the first success ends the batch: the 3 running
    branches are STARTED, the 36 unstarted ones absent and never run."""
    count, limit = 40, 4
    probe = Probe(parties=limit)
    probe_policy(probe)

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        batch = ctx.parallel(
            _branches(probe, count, blockers=limit - 1),
            name="race",
            config=ParallelConfig(
                max_concurrency=limit,
                completion=CompletionConfig.first_successful(),
                nesting=nesting,
            ),
        )
        return summarize(batch)

    baseline = threading.active_count()
    result = local.run(handler)

    assert result.succeeded, result.error
    assert threading.active_count() == baseline
    summary = result.result
    assert summary["reason"] == CompletionReason.MIN_SUCCESSFUL_REACHED
    assert summary["items"] == [
        {"index": 0, "status": "SUCCEEDED", "result": "won"},
        {"index": 1, "status": "STARTED"},
        {"index": 2, "status": "STARTED"},
        {"index": 3, "status": "STARTED"},
    ]
    assert probe.entered_indices() == {0, 1, 2, 3}
    assert probe.late_entries() == []

    history = list(result.history)
    _assert_nothing_after_the_batch(history, "1")
    touched = {event["Id"] for event in history if "Id" in event}
    for index in range(limit, count):
        assert not any(
            op_id == f"1-{index + 1}" or op_id.startswith(f"1-{index + 1}-")
            for op_id in touched
        )


def test_should_complete_releases_running_branches_at_the_decision(
    local: LocalEngine,
) -> None:
    """A predicate that ends the batch may let running branches go on; what
    they do next is not counted and not checkpointed after the batch."""
    count, limit = 30, 4
    probe = Probe(parties=limit)

    def first_success(progress: Any) -> bool:
        if progress.success_count >= 1:
            probe.decided.set()
            probe.release.set()
            return True
        return False

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        batch = ctx.parallel(
            _branches(probe, count, blockers=limit - 1),
            name="race",
            config=ParallelConfig(
                max_concurrency=limit,
                completion=CompletionConfig(should_complete=first_success),
            ),
        )
        return summarize(batch)

    baseline = threading.active_count()
    result = local.run(handler)

    assert result.succeeded, result.error
    assert threading.active_count() == baseline
    assert result.result["reason"] == CompletionReason.MIN_SUCCESSFUL_REACHED
    assert [(item["index"], item["status"]) for item in result.result["items"]] == [
        (0, "SUCCEEDED"),
        (1, "STARTED"),
        (2, "STARTED"),
        (3, "STARTED"),
    ]
    assert probe.entered_indices() == {0, 1, 2, 3}
    assert probe.late_entries() == []
    _assert_nothing_after_the_batch(list(result.history), "1")


@pytest.mark.parametrize("nesting", list(NestingType))
def test_unbounded_batch_reports_only_branches_that_ran(
    local: LocalEngine,
    probe_policy: Any,
    monkeypatch: pytest.MonkeyPatch,
    nesting: NestingType,
) -> None:
    """With no max_concurrency, branches queued on the pool when the batch
    is decided never run and are absent from the result, not STARTED."""
    threads, count = 4, 100
    monkeypatch.setattr(concurrency, "DEFAULT_MAX_THREADS", threads)
    probe = Probe(parties=threads)
    probe_policy(probe)

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        # Branches 1..3 hold the other pool threads; branch 0's thread
        # may take one more queued branch before the decision, which then
        # holds it too.
        batch = ctx.parallel(
            _branches(probe, count, blockers=threads - 1, rest_hold=True),
            name="race",
            config=ParallelConfig(
                completion=CompletionConfig.first_successful(), nesting=nesting
            ),
        )
        return summarize(batch)

    baseline = threading.active_count()
    result = local.run(handler)

    assert result.succeeded, result.error
    assert threading.active_count() == baseline
    assert probe.late_entries() == []
    items = result.result["items"]
    assert items[0] == {"index": 0, "status": "SUCCEEDED", "result": "won"}
    started = {item["index"] for item in items[1:]}
    assert all(item["status"] == BatchItemStatus.STARTED for item in items[1:])
    # Running at the decision: the blockers, and at most the one branch
    # the winner's thread picked up next.
    assert {1, 2, 3} <= started <= {1, 2, 3, threads}
    assert probe.entered_indices() - {0} <= started
    _assert_nothing_after_the_batch(list(result.history), "1")


def test_decided_batch_inside_a_branch_cancels_only_its_own_branches(
    local: LocalEngine,
) -> None:
    """A nested batch's decision stops its branches, not its siblings'."""

    def inner(ctx: DurableContext) -> dict[str, Any]:
        batch = ctx.parallel(
            [
                lambda c: c.step(lambda _: "a", name="a"),
                lambda c: c.step(lambda _: "b", name="b"),
            ],
            config=ParallelConfig(
                max_concurrency=1, completion=CompletionConfig.first_successful()
            ),
        )
        return summarize(batch)

    def sibling(ctx: DurableContext) -> str:
        return ctx.step(lambda _: "s1", name="s1") + ctx.step(lambda _: "s2", name="s2")

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        return summarize(ctx.parallel([inner, sibling], name="outer"))

    result = local.run(handler)

    assert result.succeeded, result.error
    outer = result.result
    assert outer["reason"] == CompletionReason.ALL_COMPLETED
    assert outer["items"][0]["result"] == {
        "reason": "MIN_SUCCESSFUL_REACHED",
        "items": [{"index": 0, "status": "SUCCEEDED", "result": "a"}],
    }
    assert outer["items"][1]["result"] == "s1s2"
    assert len(events_of(result.history, "StepSucceeded")) == 3


ITEMS_INSIDE = 2000


@pytest.mark.parametrize("nesting", list(NestingType))
def test_deciding_an_outer_batch_stops_a_map_running_in_a_branch(
    local: LocalEngine,
    probe_policy: Any,
    monkeypatch: pytest.MonkeyPatch,
    nesting: NestingType,
) -> None:
    """An outer batch's decision reaches into a map inside a running
    branch: its running items stop, its unstarted items never run, and
    nothing under the outer batch is checkpointed after it."""
    probe = Probe(parties=3)
    probe_policy(probe)
    items_entered: list[tuple[int, bool]] = []
    lock = threading.Lock()
    dispatched: list[tuple[str, int]] = []
    real_run_unit = concurrency._Batch.run_unit

    def run_unit(self: Any, unit: Any) -> Any:
        with lock:
            dispatched.append((self.kind, unit.index))
        return real_run_unit(self, unit)

    monkeypatch.setattr(concurrency._Batch, "run_unit", run_unit)

    def item(ctx: DurableContext, value: int, index: int, items: Any) -> int:
        with lock:
            items_entered.append((index, probe.decided.is_set()))

        def hold(_: Any) -> int:
            if index < 2:
                probe.all_in.wait(SAFETY_TIMEOUT)
                assert probe.release.wait(SAFETY_TIMEOUT)
            return value

        return ctx.step(hold, name="hold")

    def winner(ctx: DurableContext) -> str:
        probe.all_in.wait(SAFETY_TIMEOUT)
        return ctx.step(lambda _: "won", name="win")

    def mapper(ctx: DurableContext) -> Any:
        return summarize(
            ctx.map(
                list(range(ITEMS_INSIDE)),
                item,
                name="inner",
                config=MapConfig(max_concurrency=2, nesting=nesting),
            )
        )

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        batch = ctx.parallel(
            [winner, mapper],
            name="outer",
            config=ParallelConfig(
                completion=CompletionConfig.first_successful(), nesting=nesting
            ),
        )
        return summarize(batch)

    baseline = threading.active_count()
    result = local.run(handler)

    assert result.succeeded, result.error
    assert threading.active_count() == baseline
    assert result.result["items"] == [
        {"index": 0, "status": "SUCCEEDED", "result": "won"},
        {"index": 1, "status": "STARTED"},
    ]
    assert sorted(index for index, _ in items_entered) == [0, 1]
    assert [index for index, late in items_entered if late] == []
    # The map's coordinator stops dispatching too: its queue of unstarted
    # items is not run through, one cancelled item after another.
    assert sorted(i for kind, i in dispatched if kind == "map") == [0, 1]
    _assert_nothing_after_the_batch(list(result.history), "1")
