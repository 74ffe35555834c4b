"""Histories as operation trees: building, text, the HTML timeline, and a
real headless Chromium render of it.

Trees are built from histories the embedded engine recorded for real
workflows, on a skipping clock; steps that should "take time" advance
that clock, so timestamps are exact and the timeline has visible bars.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import random
import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from durable_exec import (
    CallbackConfig,
    CompletionConfig,
    DurableContext,
    InvokeError,
    MapConfig,
    ParallelBranch,
    ParallelConfig,
    RetryDecision,
    StepConfig,
    StepContext,
    StepError,
    WaitDecision,
    WaitForConditionConfig,
    durable_execution,
)
from durable_exec import _history_html as page
from durable_exec.cli import main
from durable_exec.errors import CallbackTimeoutError, ValidationError
from durable_exec.history import (
    ExecutionTree,
    build_tree,
    format_duration,
    format_tree,
    load_tree,
    parse_timestamp,
    render_html,
)
from durable_exec.local import LocalEngine
from durable_exec.local._clock import SkippingClock
from durable_exec.wire import ExecutionStatus, OperationStatus

CHROMIUM = Path("/usr/bin/chromium")
SECOND = _dt.timedelta(seconds=1)


@pytest.fixture
def local() -> Iterator[LocalEngine]:
    """An engine with a memory store and a skipping clock."""
    with LocalEngine.in_memory() as engine:
        yield engine


def _retry(*delays: int) -> StepConfig:
    """Retry after each of ``delays`` in turn, then give up."""

    def strategy(error: BaseException, attempt: int) -> RetryDecision:
        if attempt <= len(delays):
            return RetryDecision.retry(delays[attempt - 1])
        return RetryDecision.stop()

    return StepConfig(retry_strategy=strategy)


NO_RETRY = _retry()


def _takes(
    local: LocalEngine, seconds: float, result: Any = None
) -> Callable[[StepContext], Any]:
    """A step body that takes ``seconds`` of engine time."""

    def body(step: StepContext) -> Any:
        clock = local.clock
        assert isinstance(clock, SkippingClock)
        clock.advance(seconds)
        return result

    return body


def _run(local: LocalEngine, handler: Any, event: Any = None) -> ExecutionTree:
    return build_tree(local.run(handler, event if event is not None else {}).history)


def _about(duration: _dt.timedelta | None, seconds: float) -> bool:
    """Whether ``duration`` is ``seconds``, give or take the few
    milliseconds an invocation takes on top of a skipped timer."""
    return duration is not None and (
        seconds * SECOND <= duration < (seconds + 0.5) * SECOND
    )


def _jsonable(value: Any) -> Any:
    """As ``durable-exec history --json`` writes values: ISO-8601 times."""
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if hasattr(value, "value"):
        return value.value
    return value


# -- timestamps ---------------------------------------------------------------


MOMENT = _dt.datetime(2025, 12, 1, 10, 30, 15, 250000, tzinfo=_dt.UTC)


@pytest.mark.parametrize(
    "value",
    [
        MOMENT,
        MOMENT.replace(tzinfo=None),
        MOMENT.astimezone(_dt.timezone(_dt.timedelta(hours=2))),
        "2025-12-01T10:30:15.250000+00:00",
        "2025-12-01T10:30:15.25Z",
        "2025-12-01T12:30:15.250+02:00",
        MOMENT.timestamp(),
        int(MOMENT.timestamp() * 1000),
    ],
)
def test_parse_timestamp_reads_every_shape(value: Any) -> None:
    """Datetimes, ISO-8601 text and epoch seconds or millis are one moment."""
    assert parse_timestamp(value) == MOMENT
    assert parse_timestamp(value).tzinfo is _dt.UTC  # type: ignore[union-attr]


@pytest.mark.parametrize("value", ["yesterday", [], True, float("nan")])
def test_parse_timestamp_rejects_what_is_no_time(value: Any) -> None:
    """Anything else is a ValidationError that shows the value."""
    with pytest.raises(ValidationError, match="timestamp must be"):
        parse_timestamp(value)


def test_format_duration_scales_its_unit() -> None:
    """Durations print in ms, s, m, h or d as they grow."""
    assert [format_duration(s) for s in (0, 0.0424, 2.25, 245, 10920, 190000)] == [
        "0ms",
        "42ms",
        "2.250s",
        "4m05s",
        "3h02m",
        "2d04h",
    ]


# -- tree: each kind of operation ---------------------------------------------


def test_retried_step_has_its_attempts_errors_and_delays(
    local: LocalEngine,
) -> None:
    """A step that failed twice and then succeeded shows three attempts."""
    calls = []

    def flaky(step: StepContext) -> str:
        calls.append(step.attempt)
        if step.attempt < 3:
            raise RuntimeError(f"boom {step.attempt}")
        return "ok"

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(flaky, name="flaky", config=_retry(2, 4))

    tree = _run(local, handler)

    (step,) = tree.operations
    assert (step.type, step.sub_type, step.name) == ("Step", "Step", "flaky")
    assert step.status is OperationStatus.SUCCEEDED
    assert [a.number for a in step.attempts] == [1, 2, 3]
    assert [a.status for a in step.attempts] == [
        OperationStatus.FAILED,
        OperationStatus.FAILED,
        OperationStatus.SUCCEEDED,
    ]
    assert [a.retry_delay_seconds for a in step.attempts] == [2, 4, None]
    assert [a.error.error_message if a.error else None for a in step.attempts] == [
        "boom 1",
        "boom 2",
        None,
    ]
    assert (
        step.attempts[0].error and step.attempts[0].error.error_type == "RuntimeError"
    )
    # Each attempt starts once its delay is over; the step spans them all.
    first, second, third = step.attempts
    assert first.end and second.start and _about(second.start - first.end, 2)
    assert second.end and third.start and _about(third.start - second.end, 4)
    assert (step.start, step.end) == (first.start, third.end)
    assert step.duration == third.end - first.start  # type: ignore[operator]
    assert step.error is None and step.failed_attempts == 2
    assert len(tree.invocations) == 3


def test_step_that_fails_for_good_carries_its_error(local: LocalEngine) -> None:
    """The last attempt's error is the step's; it has no retry delay."""

    def doomed(step: StepContext) -> None:
        raise ValueError("nope")

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.step(doomed, name="doomed", config=_retry(1))
        except StepError:
            return "handled"

    tree = _run(local, handler)

    step = tree.find("1")
    assert step.status is OperationStatus.FAILED
    assert step.error is not None
    assert (step.error.error_type, step.error.error_message) == ("ValueError", "nope")
    assert [a.retry_delay_seconds for a in step.attempts] == [1, None]
    assert tree.status is ExecutionStatus.SUCCEEDED


def test_step_duration_is_the_time_it_took(local: LocalEngine) -> None:
    """Start and end come from the events; the duration is their gap."""

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(_takes(local, 3), name="slow")

    tree = _run(local, handler)

    (step,) = tree.operations
    assert step.duration is not None
    assert 3 * SECOND <= step.duration < 4 * SECOND
    assert len(step.attempts) == 1 and step.attempts[0].duration == step.duration


def test_wait_has_its_seconds_and_lasts_them(local: LocalEngine) -> None:
    """A wait records the seconds asked for and ends that much later."""

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.wait(5, name="pause")

    tree = _run(local, handler)

    (wait,) = tree.operations
    assert (wait.type, wait.sub_type, wait.label) == ("Wait", "Wait", "pause")
    assert wait.status is OperationStatus.SUCCEEDED
    assert wait.wait_seconds == 5
    assert wait.duration == 5 * SECOND
    assert wait.scheduled_end == wait.end
    assert wait.attempts == ()


def test_nested_contexts_hold_their_operations_in_start_order(
    local: LocalEngine,
) -> None:
    """Children sit under their context, grandchildren under theirs."""

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        def inner(child: DurableContext) -> Any:
            child.wait(1, name="nap")
            return child.step(lambda _: 2, name="deep")

        def outer(child: DurableContext) -> Any:
            child.step(lambda _: 1, name="shallow")
            return child.run_in_child_context(inner, name="inner")

        ctx.run_in_child_context(outer, name="outer")
        ctx.step(lambda _: 3, name="after")

    tree = _run(local, handler)

    outer, after = tree.operations
    assert (outer.type, outer.sub_type) == ("Context", "RunInChildContext")
    assert [c.label for c in outer.children] == ["shallow", "inner"]
    inner = outer.children[1]
    assert inner.parent_id == outer.id
    assert [(c.label, c.parent_id) for c in inner.children] == [
        ("nap", inner.id),
        ("deep", inner.id),
    ]
    assert outer.end and inner.end and outer.end >= inner.end
    assert _about(inner.duration, 1) and inner.children[0].duration == SECOND
    assert after.label == "after" and after.parent_id is None
    assert [node.label for node in tree.walk()] == [
        "outer", "shallow", "inner", "nap", "deep", "after"
    ]  # fmt: skip


def test_parallel_branches_run_side_by_side(local: LocalEngine) -> None:
    """Branches are children of the parallel, in order, and overlap."""

    branches: list[Callable[[DurableContext], Any] | ParallelBranch] = [
        ParallelBranch("slow", lambda c: c.wait(3, name="w")),
        lambda c: c.wait(2, name="w"),
    ]

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.parallel(branches, name="fan-out")

    tree = _run(local, handler)

    (parallel,) = tree.operations
    assert parallel.sub_type == "Parallel"
    slow, unnamed = parallel.children
    assert [slow.label, unnamed.label] == ["slow", "branch 1"]
    assert {slow.sub_type, unnamed.sub_type} == {"ParallelBranch"}
    assert slow.start and unnamed.start and slow.end and unnamed.end
    assert unnamed.start < slow.end and slow.start < unnamed.end
    assert _about(slow.duration, 3) and _about(unnamed.duration, 2)
    assert slow.children[0].duration == 3 * SECOND
    assert parallel.end and parallel.end >= max(slow.end, unnamed.end)


def test_failed_branch_marks_the_branch_failed(local: LocalEngine) -> None:
    """A branch that raised is a FAILED context with the error."""

    def broken(c: DurableContext) -> None:
        c.step(lambda _: (_ for _ in ()).throw(KeyError("k")), config=NO_RETRY)

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.parallel(
            [ParallelBranch("ok", lambda c: 1), ParallelBranch("broken", broken)],
            name="p",
            config=ParallelConfig(
                completion=CompletionConfig(tolerated_failure_count=1)
            ),
        )

    tree = _run(local, handler)

    ok, broken_branch = tree.operations[0].children
    assert ok.status is OperationStatus.SUCCEEDED
    assert broken_branch.status is OperationStatus.FAILED
    assert broken_branch.error and broken_branch.error.error_type
    assert broken_branch.children[0].status is OperationStatus.FAILED


def test_map_without_batches_has_a_row_per_item(local: LocalEngine) -> None:
    """Each item is a MapIteration named for its index."""

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.map([10, 20, 30], lambda c, item, i, items: item * 2, name="m")

    tree = _run(local, handler)

    (mapped,) = tree.operations
    assert mapped.sub_type == "Map"
    assert [c.label for c in mapped.children] == ["item 0", "item 1", "item 2"]
    assert not any(c.batched for c in mapped.children)
    assert [c.result for c in mapped.children] == ["20", "40", "60"]


def test_map_with_batches_has_items_under_their_batch(local: LocalEngine) -> None:
    """With batch_size, batches are the map's rows and items sit in them."""

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.map(
            list(range(7)),
            lambda c, item, i, items: c.step(lambda _: item, name=f"item-{i}"),
            name="m",
            config=MapConfig(batch_size=3),
        )

    tree = _run(local, handler)

    (mapped,) = tree.operations
    assert [c.label for c in mapped.children] == [
        "batch 0 (items 0-2)",
        "batch 1 (items 3-5)",
        "batch 2 (item 6)",
    ]
    assert all(c.batched and c.sub_type == "MapIteration" for c in mapped.children)
    assert [[s.label for s in c.children] for c in mapped.children] == [
        ["item-0", "item-1", "item-2"],
        ["item-3", "item-4", "item-5"],
        ["item-6"],
    ]


def test_callback_answered_lasts_until_the_answer(local: LocalEngine) -> None:
    """A callback runs from its start to the answer, with its id."""
    local.on_callback(
        "approval",
        lambda callback_id: local.send_callback_success(callback_id, '"yes"'),
        delay_seconds=6,
    )

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.create_callback(name="approval").result()

    tree = _run(local, handler)

    (callback,) = tree.operations
    assert (callback.type, callback.label) == ("Callback", "approval")
    assert callback.status is OperationStatus.SUCCEEDED
    assert callback.callback_id and callback.result == '"yes"'
    assert _about(callback.duration, 6)


def test_callback_timeout_is_timed_out_with_its_error(local: LocalEngine) -> None:
    """An unanswered callback times out after its timeout, in red."""

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.create_callback(name="late", config=CallbackConfig(timeout=10)).result()
        except CallbackTimeoutError:
            return "gave up"

    tree = _run(local, handler)

    (callback,) = tree.operations
    assert callback.status is OperationStatus.TIMED_OUT
    assert callback.timeout_seconds == 10
    assert _about(callback.duration, 10)
    assert callback.error and callback.error.error_type == "Callback.Timeout"
    assert 'class="bar s-fail"' in render_html(tree)


def test_wait_for_callback_is_a_context_holding_the_callback(
    local: LocalEngine,
) -> None:
    """wait_for_callback nests a callback and its submitter step."""
    local.on_callback(None, lambda cid: local.send_callback_success(cid, "1"))

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.wait_for_callback(lambda cid, step: None, name="approve")

    tree = _run(local, handler)

    (context,) = tree.operations
    assert (context.type, context.sub_type) == ("Context", "WaitForCallback")
    assert [(c.type, c.label) for c in context.children] == [
        ("Callback", "callback"),
        ("Step", "submitter"),
    ]


def test_running_execution_shows_what_it_waits_for(local: LocalEngine) -> None:
    """An execution waiting on a callback is RUNNING with it STARTED."""

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.step(lambda _: 1, name="before")
        return ctx.create_callback(name="human").result()

    tree = _run(local, handler)

    assert tree.status is ExecutionStatus.RUNNING and tree.end is None
    human = tree.find("2")
    assert human.status is OperationStatus.STARTED and human.end is None
    assert human.duration is None
    assert "STARTED" in format_tree(tree)
    assert 'class="bar s-run open"' in render_html(tree)


def test_wait_for_condition_checks_are_attempts(local: LocalEngine) -> None:
    """Each check of a wait-for-condition is an attempt with its delay."""
    config = WaitForConditionConfig(
        wait_strategy=lambda state, attempt: (
            WaitDecision.stop() if state >= 3 else WaitDecision.again_in(2)
        ),
        initial_state=0,
    )

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.wait_for_condition(lambda s, step: s + 1, config, name="poll")

    tree = _run(local, handler)

    (poll,) = tree.operations
    assert (poll.type, poll.sub_type) == ("Step", "WaitForCondition")
    assert [a.status for a in poll.attempts] == [OperationStatus.SUCCEEDED] * 3
    assert [a.retry_delay_seconds for a in poll.attempts] == [2, 2, None]
    assert poll.status is OperationStatus.SUCCEEDED and poll.result == "3"
    assert "check again in 2 s" in format_tree(tree)


def test_invokes_name_their_target_and_outcome(local: LocalEngine) -> None:
    """A chained invoke shows its function, its outcome and the child ARN."""

    @durable_execution
    def child(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(lambda _: event["x"] * 2, name="double")

    def plain(event: Any, context: Any) -> Any:
        raise RuntimeError("plain broke")

    local.register("child-fn", child)
    local.register("plain-fn", plain)

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        doubled = ctx.invoke("child-fn", {"x": 3}, name="call-child")
        with contextlib.suppress(InvokeError):
            ctx.invoke("plain-fn", {}, name="call-plain")
        return doubled

    tree = _run(local, handler)

    durable, plain_call = tree.operations
    assert (durable.type, durable.function_name) == ("ChainedInvoke", "child-fn")
    assert durable.status is OperationStatus.SUCCEEDED and durable.result == "6"
    assert durable.target_arn and "durable-execution" in durable.target_arn
    assert plain_call.status is OperationStatus.FAILED
    assert plain_call.error and plain_call.error.error_message == "plain broke"
    assert "-> child-fn" in format_tree(tree)


CRASHING = """
import os
from durable_exec import durable_execution

@durable_execution
def handler(event, ctx):
    def risky(step):
        if not os.path.exists(event["marker"]):
            open(event["marker"], "w").close()
            os._exit(3)
        return "survived"
    ctx.step(lambda _: 1, name="before")
    return ctx.step(risky, name="risky")
"""


def test_crashed_invocation_is_failed_and_marks_the_step(tmp_path: Path) -> None:
    """A process that died mid-step leaves a failed invocation, and the
    step's attempt in flight counts it."""
    workflow = tmp_path / "crashing.py"
    workflow.write_text(CRASHING, encoding="utf-8")
    engine = LocalEngine(
        tmp_path / "store.sqlite3", skip_time=True, invocation_mode="subprocess"
    )
    with engine:
        engine.register("crashing", f"{workflow}:handler")
        result = engine.run("crashing", {"marker": str(tmp_path / "marker")})

    tree = build_tree(result.history)

    assert tree.status is ExecutionStatus.SUCCEEDED
    first, second = tree.invocations
    assert first.failed and first.error
    assert first.error.error_type == "Runtime.ExitError"
    assert not second.failed
    before, risky = tree.operations
    assert before.attempts[0].interruptions == 0
    assert [(a.status, a.interruptions) for a in risky.attempts] == [
        (OperationStatus.SUCCEEDED, 1)
    ]
    text = format_tree(tree)
    assert "1 failed" in text and "Runtime.ExitError" in text
    assert "in flight when 1 invocation failed" in text
    html = render_html(tree)
    assert html.count('<div class="band f"') == 1
    assert re.search(r'class="bar s-fail" data-invocation="1"', html)
    assert html.count('<div class="crash"') == 1
    assert "invocation 1 failed: Runtime.ExitError" in html


def test_failed_execution_carries_its_error(local: LocalEngine) -> None:
    """The execution's status, end and error come from its last event."""

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.step(lambda _: 1, name="fine")
        raise LookupError("lost it")

    tree = _run(local, handler)

    assert tree.status is ExecutionStatus.FAILED
    assert tree.error and tree.error.error_message == "lost it"
    assert tree.end is not None and tree.start is not None
    assert tree.input == "{}"
    assert "error: LookupError: lost it" in format_tree(tree)


# -- tree: any source, any order ----------------------------------------------


@durable_execution
def _mixed(event: Any, ctx: DurableContext) -> Any:
    ctx.step(lambda _: 1, name="a", config=NO_RETRY)
    ctx.wait(2, name="w")
    ctx.map([1, 2, 3], lambda c, x, i, xs: x, name="m", config=MapConfig(batch_size=2))
    return ctx.run_in_child_context(lambda c: c.step(lambda _: 5, name="b"), name="c")


def _shape(tree: ExecutionTree) -> list[tuple[Any, ...]]:
    return [
        (
            n.id, n.parent_id, n.type, n.sub_type, n.label, n.status,
            n.start, n.end, len(n.attempts), n.batched,
        )
        for n in tree.walk()
    ]  # fmt: skip


def test_json_export_builds_the_same_tree(local: LocalEngine, tmp_path: Path) -> None:
    """ISO-8601 text, epoch seconds and millis read as datetimes do."""
    history = local.run(_mixed, {}).history
    direct = build_tree(history)

    exported = {"Events": _jsonable(list(history))}
    path = tmp_path / "history.json"
    path.write_text(json.dumps(exported), encoding="utf-8")

    def epochs(scale: int) -> list[dict[str, Any]]:
        events = json.loads(json.dumps(exported))["Events"]
        for event in events:
            moment = parse_timestamp(event["EventTimestamp"])
            assert moment is not None
            event["EventTimestamp"] = moment.timestamp() * scale
        return events  # type: ignore[no-any-return]

    for tree in (
        build_tree(exported),
        load_tree(path),
        build_tree(epochs(1)),
        build_tree(epochs(1000)),
    ):
        assert _shape(tree) == _shape(direct)
        assert tree.status is direct.status and tree.end == direct.end


def test_events_in_any_order_build_the_same_tree(local: LocalEngine) -> None:
    """Events are put in EventId order; duplicates from pages count once."""
    history = list(local.run(_mixed, {}).history)
    shuffled = history + history[:5]
    random.Random(7).shuffle(shuffled)

    assert _shape(build_tree(shuffled)) == _shape(build_tree(history))
    assert build_tree(shuffled).event_count == len(history)


def test_unknown_events_and_missing_parents_are_tolerated() -> None:
    """Unknown event types are skipped; an orphan shows at the top."""
    events = [
        {"EventId": 1, "EventType": "ExecutionStarted", "EventTimestamp": 0},
        {"EventId": 2, "EventType": "ExecutionPaused", "EventTimestamp": 1},
        {
            "EventId": 3,
            "EventType": "StepStarted",
            "EventTimestamp": 2,
            "Id": "9-1",
            "ParentId": "9",
            "SubType": "Step",
        },
    ]

    tree = build_tree(events)

    (orphan,) = tree.operations
    assert (orphan.id, orphan.parent_id, orphan.label) == ("9-1", "9", "step")
    assert tree.status is ExecutionStatus.RUNNING


@pytest.mark.parametrize(
    "history",
    [{"Items": []}, "text", [{"EventId": 1}], [["ExecutionStarted"]]],
)
def test_malformed_history_is_a_validation_error(history: Any) -> None:
    """What is no list of events is rejected with what was wrong."""
    with pytest.raises(ValidationError, match="history must|event 0 must"):
        build_tree(history)


# -- text ---------------------------------------------------------------------


def test_text_tree_indents_children_and_lists_attempts(local: LocalEngine) -> None:
    """The text shows a summary, indented rows, attempts and invocations."""

    def flaky(step: StepContext) -> int:
        if step.attempt == 1:
            raise RuntimeError("first try")
        return 1

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.run_in_child_context(
            lambda c: c.step(flaky, name="flaky", config=_retry(3)), name="outer"
        )

    tree = _run(local, handler)
    lines = format_tree(tree).splitlines()

    assert re.match(
        r"execution \S+: SUCCEEDED after 3\.\d{3}s, 2 invocations", lines[0]
    )
    assert lines[1].startswith("started ")
    header = next(i for i, line in enumerate(lines) if line.startswith("ID"))
    assert lines[header].split() == [
        "ID", "OPERATION", "TYPE", "STATUS", "START", "DURATION", "DETAILS"
    ]  # fmt: skip
    outer, flaky_row, first, second = lines[header + 1 : header + 5]
    assert outer.split()[:4] == ["1", "outer", "RunInChildContext", "SUCCEEDED"]
    column = outer.index("outer")
    assert flaky_row.index("flaky") == column + 2
    assert flaky_row.split()[:4] == ["1-1", "flaky", "Step", "SUCCEEDED"]
    assert flaky_row.endswith("2 attempts")
    assert first.index("attempt 1") == column + 4
    assert first.split()[2] == "FAILED"
    assert first.endswith("RuntimeError: first try, retry in 3 s")
    assert second.split()[:3] == ["attempt", "2", "SUCCEEDED"]
    assert lines[header + 6].split() == ["INVOCATION", "START", "DURATION", "OUTCOME"]
    assert lines[-1].split()[0] == "2" and lines[-1].endswith("ok")


def test_text_tree_sums_up_beyond_max_children(local: LocalEngine) -> None:
    """With max_children, the rest of the siblings become one line."""

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.map(list(range(12)), lambda c, x, i, xs: x, name="m")

    tree = _run(local, handler)

    text = format_tree(tree, max_children=4)
    assert "item 3" in text and "item 4" not in text
    assert re.search(r"\+8 more\s+8 SUCCEEDED", text)
    assert "item 11" in format_tree(tree)
    with pytest.raises(ValidationError, match="max_children"):
        format_tree(tree, max_children=0)


# -- HTML ---------------------------------------------------------------------


def _showcase(local: LocalEngine) -> Any:
    """A workflow with something of everything; ``fail`` adds failures."""

    @durable_execution
    def audit(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(_takes(local, 2, "audited"), name="record")

    local.register("audit", audit)
    local.on_callback(
        "approval",
        lambda cid: local.send_callback_success(cid, '"yes"'),
        delay_seconds=6,
    )

    @durable_execution
    def showcase(event: Any, ctx: DurableContext) -> Any:
        fail = event["fail"]

        def charge(step: StepContext) -> str:
            local.clock.advance(1)  # type: ignore[attr-defined]
            if fail and step.attempt < 3:
                raise ConnectionError(f"card network down ({step.attempt})")
            return "charged"

        def sms(c: DurableContext) -> Any:
            c.wait(2, name="throttle")
            if fail:
                c.step(lambda _: 1 / 0, name="send", config=NO_RETRY)
            return c.step(lambda _: "sent", name="send")

        def resize(c: DurableContext, item: int, index: int, items: Any) -> Any:
            c.wait(1 + item % 3, name="queue")
            if fail and item == 4:
                raise ValueError("corrupt image 4")
            return c.step(lambda _: item, name=f"resize-{item}")

        ctx.step(_takes(local, 3, "order"), name="fetch-order")
        ctx.step(charge, name="charge", config=_retry(2, 4))
        ctx.wait(4, name="cool-down")
        ctx.parallel(
            [
                ParallelBranch("email", lambda c: c.wait(3, name="send")),
                ParallelBranch("sms", sms),
                ParallelBranch("push", lambda c: c.wait(1, name="send")),
            ],
            name="notify",
            config=ParallelConfig(
                completion=CompletionConfig(tolerated_failure_count=1)
            ),
        )
        ctx.map(
            list(range(6)),
            resize,
            name="thumbnails",
            config=MapConfig(
                batch_size=2, completion=CompletionConfig(tolerated_failure_count=1)
            ),
        )
        ctx.create_callback(name="approval").result()
        ctx.invoke("audit", {}, name="audit")
        ctx.step(_takes(local, 3, "shipped"), name="ship")
        return "done"

    return showcase


def _showcase_tree(local: LocalEngine, *, fail: bool) -> ExecutionTree:
    return _run(local, _showcase(local), {"fail": fail})


def test_html_has_a_bar_per_operation(local: LocalEngine) -> None:
    """Every operation has a row and a bar; every invocation a band."""
    tree = _showcase_tree(local, fail=True)

    html = render_html(tree)

    bars = re.findall(r'<div class="bar [^"]*" data-op="([^"]+)"', html)
    ids = [node.id for node in tree.walk()]
    assert len(ids) > 25
    assert bars == ids
    assert (
        re.findall(r'<div class="row" data-depth="\d+" data-op="([^"]+)"', html) == ids
    )
    bands = re.findall(r'<div class="band(?: f)?" style=', html)
    assert len(bands) == len(tree.invocations)
    assert html.count("data-invocation=") == len(tree.invocations)
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")


def test_html_marks_failures_and_retries(local: LocalEngine) -> None:
    """Failed attempts are red segments, each retry delay a gap and marker."""
    tree = _showcase_tree(local, fail=True)

    html = render_html(tree)

    charge = tree.find("2")
    assert [a.status for a in charge.attempts] == [
        OperationStatus.FAILED,
        OperationStatus.FAILED,
        OperationStatus.SUCCEEDED,
    ]
    pattern = r'<div class="row" data-depth="0" data-op="2">.*?</div></div>\n'
    row = re.search(pattern, html, re.DOTALL)
    assert row is not None
    assert row.group(0).count('class="seg s-fail"') == 2
    assert row.group(0).count('class="seg s-ok"') == 1
    assert row.group(0).count('class="seg gap"') == 2
    assert row.group(0).count('class="mark"') == 2
    assert "retry delay 2 s" in row.group(0) and "retry delay 4 s" in row.group(0)
    assert "ConnectionError: card network down (1)" in row.group(0)
    failed = [n for n in tree.walk() if n.status is OperationStatus.FAILED]
    assert {n.label for n in failed} >= {"sms", "send"}
    batch = tree.find("5-3")
    assert (batch.label, batch.status) == (
        "batch 2 (items 4-5)",
        OperationStatus.SUCCEEDED,
    )
    assert batch.failed_items == (4,)
    assert "item 4 failed" in format_tree(tree)


def test_html_is_self_contained(local: LocalEngine) -> None:
    """The page loads nothing: no URLs, no external scripts, styles or
    images, and names are escaped."""

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.step(lambda _: 1, name='<script>alert("x")</script>')

    tree = _run(local, handler)
    html = render_html(_showcase_tree(local, fail=True)) + render_html(tree)

    assert not re.search(r"https?:|//[a-z]|\bsrc=|\bhref=|@import|url\(", html)
    assert "<link" not in html and "<img" not in html and "<iframe" not in html
    assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert render_html(tree, title="mine").count("<title>mine</title>") == 1


@durable_execution
def _thousand(event: Any, ctx: DurableContext) -> Any:
    """A map of 1,000 items; items 5, 102, 199, ... fail."""

    def item(c: DurableContext, x: int, i: int, xs: Any) -> Any:
        c.wait(1 + x % 3, name="queue")
        if x % 97 == 5:
            raise ValueError(f"bad item {x}")
        return c.step(lambda _: x, name="work")

    ctx.map(
        list(range(1000)),
        item,
        name="thousand",
        config=MapConfig(completion=CompletionConfig(tolerated_failure_percentage=50)),
    )


@pytest.fixture(scope="module")
def thousand() -> ExecutionTree:
    """The tree of one run of ``_thousand``, shared: it takes a while."""
    with LocalEngine.in_memory() as engine:
        return _run(engine, _thousand)


def test_html_of_a_thousand_items_is_cut_and_small(thousand: ExecutionTree) -> None:
    """A map of 1,000 items shows the first ones and a "+N more" row."""
    tree = thousand
    html = render_html(tree)

    assert len(tree.operations[0].children) == 1000
    assert len(html) < 150_000
    assert html.count('class="row"') <= 3 * page_max_children() + 1
    more = re.search(r'<span class="n">\+(\d+) more</span>', html)
    assert more and int(more.group(1)) == 1000 - page_max_children()
    assert "10 FAILED" in html
    # Failures among the hidden items are still marked on the axis.
    assert len(re.findall(r'title="item \d+: FAILED"', html)) == 10

    small = render_html(tree, max_children=3, max_rows=5)
    assert small.count('class="row"') == 5
    with pytest.raises(ValidationError, match="max_rows"):
        render_html(tree, max_rows=0)


def page_max_children() -> int:
    from durable_exec.history import HTML_MAX_CHILDREN

    return HTML_MAX_CHILDREN


# -- the command --------------------------------------------------------------


@pytest.fixture
def stored(tmp_path: Path) -> str:
    """A store holding the finished execution "shown"."""
    path = str(tmp_path / "store.sqlite3")
    with LocalEngine(path, skip_time=True) as engine:
        engine.run(_mixed, {}, name="shown")
    return path


def test_cli_history_prints_the_tree_by_default(
    stored: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """history NAME prints the operation tree; --format events the table."""
    assert main(["history", "shown", "--store", stored]) == 0
    tree_text = capsys.readouterr().out
    assert tree_text.startswith("execution shown: SUCCEEDED")
    assert re.search(r"^2\s+w\s+Wait\s+SUCCEEDED", tree_text, re.MULTILINE)

    assert main(["history", "shown", "--store", stored, "--format", "events"]) == 0
    events_text = capsys.readouterr().out
    assert events_text.split()[:6] == [
        "ID", "TIME", "TYPE", "OPERATION", "NAME", "DETAILS"
    ]  # fmt: skip

    assert main(["history", "shown", "--store", stored, "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == ["Events"]


def test_cli_history_html_writes_one_page(
    stored: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--format html --output FILE writes the page and says where."""
    target = tmp_path / "page.html"

    code = main(
        ["history", "shown", "--store", stored, "--format", "html",
         "--output", str(target)]
    )  # fmt: skip

    captured = capsys.readouterr()
    assert code == 0 and captured.out == ""
    assert f"wrote {target}" in captured.err
    html = target.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and 'data-op="4-1"' in html


def test_cli_history_rejects_json_with_format(
    stored: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json and --format together are a usage error."""
    code = main(["history", "shown", "--store", stored, "--json", "--format", "tree"])

    assert code == 2
    assert "leave out --format" in capsys.readouterr().err


# -- a real render ------------------------------------------------------------


def _decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of an 8-bit, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, chunks = 8, []
    width = height = channels = 0
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(
                ">IIBBBBB", body
            )
            assert depth == 8 and colour in (2, 6) and interlace == 0
            channels = 4 if colour == 6 else 3
        elif kind == b"IDAT":
            chunks.append(body)
        elif kind == b"IEND":
            break
    raw = zlib.decompress(b"".join(chunks))

    # Undo each row's filter (PNG spec, section 9).
    stride, rows, previous, at = width * channels, [], bytearray(width * channels), 0
    for _ in range(height):
        kind, line = raw[at], bytearray(raw[at + 1 : at + 1 + stride])
        at += 1 + stride
        if kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous))
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = previous[i]
                c = previous[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (
                    line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)
                ) & 0xFF
        rows.append(bytes(line))
        previous = line
    if channels == 4:
        rows = [b"".join(row[i : i + 3] for i in range(0, len(row), 4)) for row in rows]
    return width, height, rows


@attrs.frozen
class Screenshot:
    width: int
    height: int
    colours: Counter[tuple[int, int, int]]

    def count(self, colour: str) -> int:
        """Pixels of exactly ``colour`` (``#rrggbb``)."""
        red, green, blue = bytes.fromhex(colour.removeprefix("#"))
        return self.colours[red, green, blue]


def _screenshot(html: str, tmp_path: Path, name: str) -> Screenshot:
    """Render ``html`` in headless Chromium at 1200x800; decode the PNG."""
    source = tmp_path / f"{name}.html"
    source.write_text(html, encoding="utf-8")
    shot = tmp_path / f"{name}.png"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / f'{name}-profile'}",
        f"--screenshot={shot}",
        "--window-size=1200,800",
        source.as_uri(),
    ]
    process = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False
    )
    assert shot.exists(), f"no screenshot; chromium said:\n{process.stderr[-2000:]}"
    keep = os.environ.get("HISTORY_VIEW_SCREENSHOTS")
    if keep:
        shutil.copy(shot, Path(keep) / shot.name)
    width, height, rows = _decode_png(shot.read_bytes())
    assert len(rows) == height and {len(row) for row in rows} == {width * 3}
    colours: Counter[tuple[int, int, int]] = Counter()
    for row in rows:
        colours.update(zip(row[0::3], row[1::3], row[2::3]))
    return Screenshot(width, height, colours)


needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=(
        "Debian's chromium is not installed at /usr/bin/chromium "
        "(apt-get install -y chromium; .ci/run does it when it can)"
    ),
)


@needs_chromium
def test_chromium_renders_the_bars(local: LocalEngine, tmp_path: Path) -> None:
    """A real render of a page with failures shows green and red bars,
    retry markers and invocation bands; one without failures no red bars."""
    failing = _screenshot(
        render_html(_showcase_tree(local, fail=True)), tmp_path, "failing"
    )
    with LocalEngine.in_memory() as other:
        passing = _screenshot(
            render_html(_showcase_tree(other, fail=False)), tmp_path, "passing"
        )

    for shot in (failing, passing):
        assert (shot.width, shot.height) == (1200, 800)
        # Steps that took seconds: wide green bars. Waits and bands too.
        assert shot.count(page.OK) > 1500
        assert shot.count(page.WAITING) > 1500
        assert shot.count(page.BAND) > 1000
        assert shot.count(page.CALLBACK_OK) > 500
        assert shot.count(page.INVOKE_OK) > 200
    # The legend has a red swatch of 18x4 pixels; failures add far more.
    assert passing.count(page.FAILED) <= 18 * 4
    assert failing.count(page.FAILED) > passing.count(page.FAILED) + 1000
    assert failing.count(page.RETRY_MARK) > 10
    assert passing.count(page.RETRY_MARK) == 0


@needs_chromium
def test_chromium_renders_a_thousand_items(
    thousand: ExecutionTree, tmp_path: Path
) -> None:
    """A map of 1,000 items renders: bars show, the page stays light."""
    tree = thousand
    assert sum(1 for _ in tree.walk()) > 2900

    shot = _screenshot(render_html(tree), tmp_path, "thousand")

    assert (shot.width, shot.height) == (1200, 800)
    assert shot.count(page.WAITING) > 2000
    assert shot.count(page.CONTEXT_OK) > 500
