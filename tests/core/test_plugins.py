"""Tests of instrumentation plugins: which hooks fire, in what order, on
which thread, what a raising hook does, and where plugins come from."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import sys
import textwrap
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from durable_exec import (
    DurableContext,
    NestingType,
    ParallelConfig,
    RetryPresets,
    RetryStrategy,
    StepConfig,
    StepContext,
    StepError,
    ValidationError,
    WaitDecision,
    WaitForConditionConfig,
    durable_execution,
)
from durable_exec import plugins as plugins_module
from durable_exec.handler import DurableHandler
from durable_exec.local import LocalEngine
from durable_exec.plugins import (
    ENTRY_POINT_GROUP,
    AttemptEndInfo,
    AttemptStartInfo,
    InvocationEndInfo,
    InvocationStartInfo,
    OperationEndInfo,
    OperationStartInfo,
    Plugin,
)


class Recorder(Plugin):
    """Keeps one short tuple per hook call, in call order."""

    def __init__(self, label: str = "rec") -> None:
        self.label = label
        self.calls: list[tuple[Any, ...]] = []
        self.threads: dict[tuple[Any, ...], int] = {}
        self.infos: list[Any] = []
        self._lock = threading.Lock()

    def _add(self, info: Any, *entry: Any) -> None:
        with self._lock:
            self.calls.append(entry)
            self.infos.append(info)
            self.threads[entry] = threading.get_ident()

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        self._add(info, "invocation_start", info.is_first_invocation)

    def on_invocation_end(self, info: InvocationEndInfo) -> None:
        self._add(info, "invocation_end", info.status)

    def on_operation_start(self, info: OperationStartInfo) -> None:
        self._add(info, "operation_start", info.operation_id, info.sub_type)

    def on_operation_end(self, info: OperationEndInfo) -> None:
        self._add(info, "operation_end", info.operation_id, info.status)

    def on_attempt_start(self, info: AttemptStartInfo) -> None:
        self._add(info, "attempt_start", info.operation_id, info.attempt)

    def on_attempt_end(self, info: AttemptEndInfo) -> None:
        self._add(info, "attempt_end", info.operation_id, info.outcome)

    def hooks(self, *names: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] in names]


@pytest.fixture(autouse=True)
def no_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees an empty entry-point group unless it sets one up."""
    monkeypatch.setattr(plugins_module, "_entry_point_plugins", ())


def _run(
    local: LocalEngine, handler: DurableHandler[Any, Any], event: Any = None
) -> Any:
    return local.run(handler, event)


# -- hook order ----------------------------------------------------------------


def test_step_with_retry_fires_hooks_in_order(local: LocalEngine) -> None:
    """A step retried in a second invocation fires every hook, in order."""
    recorder = Recorder()
    retry = RetryStrategy.exponential(max_attempts=2, initial_delay=1, jitter="NONE")

    @durable_execution(plugins=[recorder])
    def handler(event: Any, ctx: DurableContext) -> str:
        def flaky(step: StepContext) -> str:
            if step.attempt == 1:
                raise RuntimeError("first attempt fails")
            return "ok"

        return ctx.step(flaky, config=StepConfig(retry_strategy=retry))

    outcome = _run(local, handler)

    assert outcome.result == "ok"
    assert recorder.calls == [
        ("invocation_start", True),
        ("operation_start", "1", "Step"),
        ("attempt_start", "1", 1),
        ("attempt_end", "1", "FAILED"),
        ("operation_end", "1", "PENDING"),
        ("invocation_end", "PENDING"),
        ("invocation_start", False),
        ("operation_start", "1", "Step"),
        ("attempt_start", "1", 2),
        ("attempt_end", "1", "SUCCEEDED"),
        ("operation_end", "1", "SUCCEEDED"),
        ("invocation_end", "SUCCEEDED"),
    ]
    failed_attempt = recorder.infos[3]
    assert isinstance(failed_attempt.error, RuntimeError)


def test_attempt_hooks_run_on_the_step_thread(local: LocalEngine) -> None:
    """Attempt hooks run on the thread that runs the step's function."""
    recorder = Recorder()
    step_threads: list[int] = []

    @durable_execution(plugins=[recorder])
    def handler(event: Any, ctx: DurableContext) -> list[Any]:
        def work(step: StepContext) -> int:
            step_threads.append(threading.get_ident())
            return step.attempt

        branches = [lambda c: c.step(work), lambda c: c.step(work)]
        return ctx.parallel(branches).get_results()

    _run(local, handler)

    attempts = recorder.hooks("attempt_start", "attempt_end")
    assert len(attempts) == 4
    hook_threads = {recorder.threads[call] for call in attempts}
    assert hook_threads == set(step_threads)
    assert threading.get_ident() not in hook_threads


def test_failed_step_reports_its_error_and_failed_invocation(
    local: LocalEngine,
) -> None:
    """A step that fails for good ends FAILED with its StepError, and the
    invocation ends FAILED with the recorded error."""
    recorder = Recorder()

    @durable_execution(plugins=[recorder])
    def handler(event: Any, ctx: DurableContext) -> None:
        def boom(step: StepContext) -> None:
            raise ValueError("no")

        ctx.step(boom, config=StepConfig(retry_strategy=RetryPresets.none()))

    outcome = _run(local, handler)

    assert not outcome.succeeded
    operation_end = next(
        info for info in recorder.infos if isinstance(info, OperationEndInfo)
    )
    assert operation_end.status == "FAILED"
    assert isinstance(operation_end.error, StepError)
    invocation_end = recorder.infos[-1]
    assert isinstance(invocation_end, InvocationEndInfo)
    assert invocation_end.status == "FAILED"
    assert invocation_end.error is not None
    assert invocation_end.error.error_type == "ValueError"


def test_wait_across_invocations_sets_the_first_flag(local: LocalEngine) -> None:
    """The first invocation is first; the one after the wait is not, and
    replays the wait without operation hooks."""
    recorder = Recorder()

    @durable_execution(plugins=[recorder])
    def handler(event: Any, ctx: DurableContext) -> str:
        ctx.wait(5, name="pause")
        return "done"

    _run(local, handler)

    assert recorder.calls == [
        ("invocation_start", True),
        ("operation_start", "1", "Wait"),
        ("operation_end", "1", "STARTED"),
        ("invocation_end", "PENDING"),
        ("invocation_start", False),
        ("invocation_end", "SUCCEEDED"),
    ]
    start = recorder.infos[0]
    assert start.durable_execution_arn.startswith("arn:")
    assert start.lambda_context is None


def test_child_context_wraps_the_hooks_of_its_operations(
    local: LocalEngine,
) -> None:
    """A child context's hooks enclose those of the operations inside."""
    recorder = Recorder()

    @durable_execution(plugins=[recorder])
    def handler(event: Any, ctx: DurableContext) -> int:
        return ctx.run_in_child_context(
            lambda child: child.step(lambda _: 7, name="inner"), name="outer"
        )

    assert _run(local, handler).result == 7

    assert recorder.hooks("operation_start", "operation_end") == [
        ("operation_start", "1", "RunInChildContext"),
        ("operation_start", "1-1", "Step"),
        ("operation_end", "1-1", "SUCCEEDED"),
        ("operation_end", "1", "SUCCEEDED"),
    ]
    inner = next(
        info
        for info in recorder.infos
        if isinstance(info, OperationStartInfo) and info.operation_id == "1-1"
    )
    assert inner.parent_id == "1"
    assert inner.name == "inner"
    assert inner.operation_type == "STEP"


def test_parallel_branches_get_operation_hooks(local: LocalEngine) -> None:
    """A NESTED parallel fires hooks for itself and for each branch, the
    branch's on the thread that runs it."""
    recorder = Recorder()

    @durable_execution(plugins=[recorder])
    def handler(event: Any, ctx: DurableContext) -> list[Any]:
        branches = [lambda c, i=i: c.step(lambda _: i, name="b") for i in range(3)]
        return ctx.parallel(branches, name="fan").get_results()

    assert _run(local, handler).result == [0, 1, 2]

    starts = recorder.hooks("operation_start")
    ends = recorder.hooks("operation_end")
    assert starts[0] == ("operation_start", "1", "Parallel")
    assert ends[-1] == ("operation_end", "1", "SUCCEEDED")
    branch_starts = sorted(s for s in starts if s[2] == "ParallelBranch")
    assert [s[1] for s in branch_starts] == ["1-1", "1-2", "1-3"]
    assert sorted(s[1] for s in starts if s[2] == "Step") == [
        "1-1-1",
        "1-2-1",
        "1-3-1",
    ]
    assert len(ends) == len(starts) == 7
    for branch in branch_starts:
        assert recorder.threads[branch] != threading.get_ident()
    # Each branch's hooks enclose its step's.
    for index in ("1", "2", "3"):
        order = [
            call[1]
            for call in recorder.calls
            if call[0].startswith("operation")
            and call[1] in (f"1-{index}", f"1-{index}-1")
        ]
        branch, step = f"1-{index}", f"1-{index}-1"
        assert order == [branch, step, step, branch]


def test_flat_branches_fire_no_branch_hooks(local: LocalEngine) -> None:
    """FLAT branches are no operation: only the batch and the steps fire."""
    recorder = Recorder()

    @durable_execution(plugins=[recorder])
    def handler(event: Any, ctx: DurableContext) -> list[Any]:
        config = ParallelConfig(nesting=NestingType.FLAT)
        branches = [lambda c, i=i: c.step(lambda _: i, name="b") for i in range(2)]
        return ctx.parallel(branches, config=config).get_results()

    assert _run(local, handler).result == [0, 1]

    sub_types = sorted(call[2] for call in recorder.hooks("operation_start"))
    assert sub_types == ["Parallel", "Step", "Step"]


def test_wait_for_condition_checks_fire_attempt_hooks(local: LocalEngine) -> None:
    """Each check of a wait_for_condition is an attempt of its operation."""
    recorder = Recorder()
    config = WaitForConditionConfig(
        initial_state=0,
        wait_strategy=lambda state, attempt: (
            WaitDecision.stop() if state >= 2 else WaitDecision.again_in(1)
        ),
    )

    @durable_execution(plugins=[recorder])
    def handler(event: Any, ctx: DurableContext) -> int:
        return ctx.wait_for_condition(lambda state, _: state + 1, config)

    assert _run(local, handler).result == 2

    assert recorder.hooks("attempt_start", "attempt_end") == [
        ("attempt_start", "1", 1),
        ("attempt_end", "1", "SUCCEEDED"),
        ("attempt_start", "1", 2),
        ("attempt_end", "1", "SUCCEEDED"),
    ]
    attempt = next(i for i in recorder.infos if isinstance(i, AttemptStartInfo))
    assert attempt.sub_type == "WaitForCondition"


# -- replay ------------------------------------------------------------------------


def test_replayed_operations_fire_no_operation_hooks(local: LocalEngine) -> None:
    """Operations finished in an earlier invocation replay silently; only
    what runs anew fires operation and attempt hooks."""
    recorder = Recorder()

    @durable_execution(plugins=[recorder])
    def handler(event: Any, ctx: DurableContext) -> int:
        first = ctx.step(lambda _: 1, name="first")
        ctx.run_in_child_context(lambda c: c.step(lambda _: 2, name="in"))
        ctx.wait(1)
        return first + ctx.step(lambda _: 3, name="last")

    assert _run(local, handler).result == 4

    second = recorder.calls.index(("invocation_start", False))
    assert recorder.calls[second:] == [
        ("invocation_start", False),
        ("operation_start", "4", "Step"),
        ("attempt_start", "4", 1),
        ("attempt_end", "4", "SUCCEEDED"),
        ("operation_end", "4", "SUCCEEDED"),
        ("invocation_end", "SUCCEEDED"),
    ]


# -- several plugins, and plugins that raise ------------------------------------


def test_several_plugins_are_called_in_registration_order(
    local: LocalEngine,
) -> None:
    """Each hook calls every plugin, in the order they were given."""
    seen: list[tuple[str, str]] = []

    class Named(Plugin):
        def __init__(self, name: str) -> None:
            self.name = name

        def on_invocation_start(self, info: InvocationStartInfo) -> None:
            seen.append((self.name, "start"))

        def on_attempt_end(self, info: AttemptEndInfo) -> None:
            seen.append((self.name, "attempt"))

        def on_invocation_end(self, info: InvocationEndInfo) -> None:
            seen.append((self.name, "end"))

    @durable_execution(plugins=[Named("a"), Named("b"), Named("c")])
    def handler(event: Any, ctx: DurableContext) -> int:
        return ctx.step(lambda _: 1)

    _run(local, handler)

    assert seen == [
        (name, hook) for hook in ("start", "attempt", "end") for name in "abc"
    ]


class Raising(Plugin):
    """Every hook raises."""

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        raise RuntimeError("start")

    def on_invocation_end(self, info: InvocationEndInfo) -> None:
        raise RuntimeError("end")

    def on_operation_start(self, info: OperationStartInfo) -> None:
        raise RuntimeError("operation start")

    def on_operation_end(self, info: OperationEndInfo) -> None:
        raise RuntimeError("operation end")

    def on_attempt_start(self, info: AttemptStartInfo) -> None:
        raise RuntimeError("attempt start")

    def on_attempt_end(self, info: AttemptEndInfo) -> None:
        raise RuntimeError("attempt end")


def _workflow(event: Any, ctx: DurableContext) -> list[Any]:
    first = ctx.step(lambda step: step.attempt, name="first")
    ctx.wait(1)
    branches = [lambda c, i=i: c.step(lambda _: i) for i in range(2)]
    # One branch at a time, so that the history does not depend on timing.
    batch = ctx.parallel(branches, config=ParallelConfig(max_concurrency=1))
    return [first, batch.get_results()]


def _shape(history: Any) -> list[tuple[Any, ...]]:
    """Each event's type, operation id, name and sub-type; the execution's
    own events carry its (random) name, so that is left out."""
    return [
        (e["EventType"], e.get("Id"), e.get("Name"), e.get("SubType"))
        if not e["EventType"].startswith("Execution")
        else (e["EventType"],)
        for e in history
    ]


def test_a_raising_hook_is_logged_and_ignored(
    local: LocalEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """Hooks that raise change nothing: the next plugin still runs, and
    the result and history match a run without plugins."""
    recorder = Recorder()
    plain = DurableHandler(_workflow, load_entry_points=False)
    instrumented = DurableHandler(_workflow, plugins=[Raising(), recorder])

    expected = _run(local, plain)
    with caplog.at_level(logging.WARNING, logger="durable_exec.plugins"):
        outcome = _run(local, instrumented)

    assert outcome.result == expected.result == [1, [0, 1]]
    assert _shape(outcome.history) == _shape(expected.history)
    assert len(recorder.hooks("invocation_start")) == 2
    assert len(recorder.hooks("attempt_end")) == 3
    warnings = [r for r in caplog.records if r.name == "durable_exec.plugins"]
    assert warnings and all(r.levelno == logging.WARNING for r in warnings)
    messages = {r.getMessage() for r in warnings}
    for hook in (
        "on_invocation_start",
        "on_invocation_end",
        "on_operation_start",
        "on_operation_end",
        "on_attempt_start",
        "on_attempt_end",
    ):
        assert f"plugin Raising raised in {hook}; ignored" in messages
    assert all(r.exc_info for r in warnings)


def test_an_invocation_that_raises_ends_with_no_status(local: LocalEngine) -> None:
    """When the invocation raises instead of replying, the end hook still
    fires, with no status and the error."""
    recorder = Recorder()

    class Broken(Exception):
        pass

    class FailingClient:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def checkpoint(self, *args: Any) -> Any:
            raise Broken("the service is down")

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    @durable_execution(plugins=[recorder])
    def handler(event: Any, ctx: DurableContext) -> int:
        return ctx.step(lambda _: 1)

    local.register("h", handler)
    arn = local.start("h")
    envelope = local.engine.begin_invocation(arn)
    with pytest.raises(Broken):
        handler.invoke(envelope, None, client=FailingClient(local.client))

    end = recorder.infos[-1]
    assert isinstance(end, InvocationEndInfo)
    assert end.status is None
    assert end.error is not None and end.error.error_type == "Broken"


# -- what plugins are, and where they come from ---------------------------------


def test_plugins_are_validated() -> None:
    """A class, a string or an object without hooks is refused."""
    with pytest.raises(ValidationError, match=r"not classes .*pass Recorder\(\)"):
        DurableHandler(_workflow, plugins=[Recorder])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="sequence of plugin objects"):
        DurableHandler(_workflow, plugins="tracing")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="none of the hooks"):
        DurableHandler(_workflow, plugins=[object()])


def test_plain_objects_serve_as_plugins(local: LocalEngine) -> None:
    """A plugin need not subclass Plugin; a hook it lacks is skipped."""
    ends: list[str | None] = []

    class Minimal:
        def on_invocation_end(self, info: InvocationEndInfo) -> None:
            ends.append(info.status)

    @durable_execution(plugins=[Minimal()])
    def handler(event: Any, ctx: DurableContext) -> int:
        return ctx.step(lambda _: 1)

    _run(local, handler)
    assert ends == ["SUCCEEDED"]


def test_no_plugin_means_no_plugin_set() -> None:
    """Without plugins the handler keeps no plugin set at all."""
    handler = DurableHandler(_workflow)
    assert handler._plugins() is None


@pytest.fixture
def entry_point_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A module ``fake_durable_plugins`` and an entry-point group naming
    its plugins; counts how often the group is read."""
    module = types.ModuleType("fake_durable_plugins")

    class FromEntryPoint(Recorder):
        instances: ClassVar[list[FromEntryPoint]] = []

        def __init__(self) -> None:
            super().__init__("entry-point")
            FromEntryPoint.instances.append(self)

    module.FromEntryPoint = FromEntryPoint  # type: ignore[attr-defined]
    module.instance = Recorder("instance")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_durable_plugins", module)

    group = [
        importlib.metadata.EntryPoint(
            "b-instance", "fake_durable_plugins:instance", ENTRY_POINT_GROUP
        ),
        importlib.metadata.EntryPoint(
            "a-class", "fake_durable_plugins:FromEntryPoint", ENTRY_POINT_GROUP
        ),
        importlib.metadata.EntryPoint(
            "c-broken", "fake_durable_plugins:missing", ENTRY_POINT_GROUP
        ),
    ]
    reads: list[str] = []

    def entry_points(**selection: Any) -> list[importlib.metadata.EntryPoint]:
        reads.append(selection.get("group", ""))
        return [e for e in group if e.group == selection.get("group")]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    monkeypatch.setattr(plugins_module, "_entry_point_plugins", None)
    module.reads = reads  # type: ignore[attr-defined]
    yield module


def test_entry_point_plugins_are_loaded_once(
    local: LocalEngine,
    entry_point_module: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Entry points load once per process, sorted by name, after the
    handler's own plugins; one that fails to load is logged and skipped."""
    own = Recorder("own")
    order: list[str] = []
    for recorder in (own, entry_point_module.instance):
        original = recorder.on_invocation_start

        def tap(info: Any, r: Recorder = recorder, o: Any = original) -> None:
            order.append(r.label)
            o(info)

        recorder.on_invocation_start = tap  # type: ignore[method-assign]

    @durable_execution(plugins=[own])
    def first(event: Any, ctx: DurableContext) -> int:
        return ctx.step(lambda _: 1)

    @durable_execution
    def second(event: Any, ctx: DurableContext) -> int:
        return ctx.step(lambda _: 2)

    with caplog.at_level(logging.WARNING, logger="durable_exec.plugins"):
        _run(local, first)
        _run(local, second)

    assert entry_point_module.reads == [ENTRY_POINT_GROUP]
    (loaded,) = entry_point_module.FromEntryPoint.instances
    assert len(loaded.hooks("invocation_start")) == 2
    assert len(entry_point_module.instance.hooks("invocation_end")) == 2
    assert len(own.hooks("invocation_start")) == 1
    # The handler's own plugin first, then the entry points by name
    # ("a-class" before "b-instance"; only "own" and "instance" tapped).
    assert order[:2] == ["own", "instance"]
    assert loaded.calls[0] == ("invocation_start", True)
    assert any(
        "c-broken" in r.getMessage() and "failed to load" in r.getMessage()
        for r in caplog.records
    )


def test_entry_points_can_be_disabled(
    local: LocalEngine, entry_point_module: Any
) -> None:
    """load_entry_points=False leaves the group unread and unused."""

    @durable_execution(load_entry_points=False)
    def handler(event: Any, ctx: DurableContext) -> int:
        return ctx.step(lambda _: 1)

    _run(local, handler)

    assert entry_point_module.reads == []
    assert entry_point_module.instance.calls == []
    assert handler._plugins() is None


# -- the harness sees what plugins print ----------------------------------------

HANDLER_FILE = """
import json
from durable_exec import durable_execution
from durable_exec.plugins import Plugin


class Printer(Plugin):
    def on_invocation_start(self, info):
        self.arn = info.durable_execution_arn
        print("not json")
        print(json.dumps({"hook": "start", "durableExecutionArn": self.arn}))

    def on_attempt_end(self, info):
        print(json.dumps({"hook": "attempt", "durableExecutionArn": self.arn}))


@durable_execution(plugins=[Printer()])
def handler(event, ctx):
    return ctx.step(lambda step: step.logger.info("in the step") or 1)
"""


@pytest.mark.parametrize("mode", ["in_process", "subprocess"])
def test_printed_json_lines_join_the_log_file_in_order(
    tmp_path: Path, mode: str
) -> None:
    """With a log file, printed JSON objects are captured beside the
    workflow's log records, in the order written, in either mode."""
    source = tmp_path / "printing.py"
    source.write_text(textwrap.dedent(HANDLER_FILE))
    log_file = tmp_path / "log.jsonl"

    with LocalEngine(
        tmp_path / "store.sqlite3", skip_time=True, invocation_mode=mode
    ) as engine:
        engine.log_file = log_file
        engine.register("printing", f"{source}:handler")
        outcome = engine.run("printing")

    assert outcome.result == 1
    lines = [json.loads(text) for text in log_file.read_text().splitlines()]
    assert [line.get("hook", line.get("message")) for line in lines] == [
        "start",
        "in the step",
        "attempt",
    ]
    assert all(line["durableExecutionArn"] == outcome.arn for line in lines)
