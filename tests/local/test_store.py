"""Tests of the stores: memory and SQLite keep the same history, a SQLite
file outlives its engine and resumes elsewhere, and executions are found
by name or ARN."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import step

from durable_exec import DurableContext, ExecutionNotFoundError, durable_execution
from durable_exec.handler import DurableHandler
from durable_exec.local import LocalEngine, MemoryStore, SqliteStore
from durable_exec.local._engine import InvocationOutcome
from durable_exec.wire import (
    ExecutionStatus,
    OperationStatus,
    epoch_millis,
    to_wire,
)

_runs: list[str] = []


def _workflow_func(event: Any, ctx: DurableContext) -> dict[str, Any]:
    def child(c: DurableContext) -> int:
        return c.step(lambda _: _runs.append("inner") or 2, name="inner")

    first = ctx.step(lambda _: _runs.append("first") or 1, name="first")
    ctx.wait(30, name="pause")
    second = ctx.run_in_child_context(child, name="child")
    return {"sum": first + second, "input": event}


def _workflow() -> DurableHandler[Any, Any]:
    return durable_execution(_workflow_func)


@pytest.fixture(autouse=True)
def _reset_runs() -> None:
    _runs.clear()


def _plain(value: Any, execution_id: str) -> Any:
    """``value`` with timestamps as epoch ms and run-specific ids masked."""
    if isinstance(value, dict):
        return {
            key: "<request>" if key == "RequestId" else _plain(item, execution_id)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_plain(item, execution_id) for item in value]
    if isinstance(value, dt.datetime):
        return epoch_millis(value)
    if value == execution_id:
        return "<execution>"
    return value


def _shape(history: Any, execution_id: str) -> list[Any]:
    """The history without timestamps: what must not depend on the store."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: strip(v) for k, v in value.items() if not k.endswith("Timestamp")
            }
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(_plain(list(history), execution_id))


def test_memory_and_sqlite_record_the_same_history(tmp_path: Path) -> None:
    """One workflow on each store gives the same events and operations."""
    results = []
    for store in (MemoryStore(), SqliteStore(tmp_path / "x.sqlite3")):
        with LocalEngine(store, skip_time=True) as local:
            results.append(local.run(_workflow(), {"order": 7}))

    memory, sqlite = results
    assert memory.result == sqlite.result == {"sum": 3, "input": {"order": 7}}
    assert memory.invocations == sqlite.invocations == 2
    assert _shape(memory.history, memory.operations[0].id) == _shape(
        sqlite.history, sqlite.operations[0].id
    )
    assert _shape(
        [to_wire(op) for op in memory.operations], memory.operations[0].id
    ) == _shape([to_wire(op) for op in sqlite.operations], sqlite.operations[0].id)


def test_a_second_engine_reads_the_same_execution(tmp_path: Path) -> None:
    """A second engine reads the same execution back from SQLite."""
    path = tmp_path / "x.sqlite3"
    with LocalEngine(path, skip_time=True) as first:
        written = first.run(_workflow(), {"order": 1}, name="order-1")

    with LocalEngine(path, skip_time=True) as second:
        read = second.describe("order-1")

    assert read.arn == written.arn
    assert read.status is written.status is ExecutionStatus.SUCCEEDED
    assert read.result == written.result
    assert read.invocations == written.invocations
    assert [to_wire(op) for op in read.operations] == [
        to_wire(op) for op in written.operations
    ]
    execution_id = written.operations[0].id
    assert _plain(read.history, execution_id) == _plain(written.history, execution_id)
    assert second.history(written.arn) == list(read.history)


def test_an_execution_resumes_from_the_file_in_another_engine(
    tmp_path: Path,
) -> None:
    """Another engine on the file resumes an execution left at a wait."""
    path = tmp_path / "x.sqlite3"
    handler = _workflow()
    with LocalEngine(path, skip_time=True) as first:
        first.register("orders", handler)
        arn = first.start("orders", {"order": 2}, name="order-2")
        envelope = first.engine.begin_invocation(arn)
        output = handler.invoke(envelope, None, client=first.client)
        first.engine.end_invocation(arn, InvocationOutcome(output=output))
        assert output == {"Status": "PENDING"}
        assert first.describe(arn).status is ExecutionStatus.RUNNING

    with LocalEngine(path, skip_time=True) as second:
        second.register("orders", _workflow())
        result = second.resume("order-2")

    assert result.arn == arn
    assert result.result == {"sum": 3, "input": {"order": 2}}
    assert _runs == ["first", "inner"]
    assert result.invocations == 2
    assert result.operation("pause").status is OperationStatus.SUCCEEDED


def test_an_in_flight_step_survives_in_the_file(tmp_path: Path) -> None:
    """A checkpoint acknowledged by the engine is in the file at once."""
    path = tmp_path / "x.sqlite3"
    with LocalEngine(path, skip_time=True) as first:
        first.register("orders", _workflow())
        arn = first.start("orders")
        token = first.engine.begin_invocation(arn)["CheckpointToken"]
        first.engine.checkpoint(arn, token, [step("1", "START", name="first")])

        with LocalEngine(path, skip_time=True) as reader:
            stored = reader.describe(arn)

    assert stored.operation("first").status is OperationStatus.STARTED
    assert [e["EventType"] for e in stored.history] == [
        "ExecutionStarted",
        "StepStarted",
    ]


# -- finding executions ----------------------------------------------------------


def test_resolve_finds_an_execution_by_name_and_by_arn(local: LocalEngine) -> None:
    """resolve accepts an execution's name or its ARN."""
    arn = local.start(_workflow(), name="order-9")

    assert local.resolve("order-9") == arn
    assert local.resolve(arn) == arn


def test_resolve_of_an_unknown_name_names_it(local: LocalEngine) -> None:
    """An unknown name raises ExecutionNotFoundError naming it."""
    with pytest.raises(ExecutionNotFoundError, match="'order-404'"):
        local.resolve("order-404")


def test_resolve_of_an_unknown_arn_names_it(local: LocalEngine) -> None:
    """An unknown ARN raises ExecutionNotFoundError naming it."""
    arn = (
        "arn:aws:lambda:us-east-1:123456789012:function:fn:$LATEST"
        "/durable-execution/missing/0123"
    )
    with pytest.raises(ExecutionNotFoundError) as caught:
        local.resolve(arn)
    assert repr(arn) in str(caught.value)


def test_resolve_refuses_a_name_used_by_two_functions(local: LocalEngine) -> None:
    """A name shared by executions of two functions needs an ARN."""
    local.register("a", _workflow())
    local.register("b", _workflow())
    local.start("a", name="same")
    local.start("b", name="same")

    with pytest.raises(ExecutionNotFoundError, match="2 executions"):
        local.resolve("same")


def test_starting_by_an_existing_name_returns_the_same_execution(
    local: LocalEngine,
) -> None:
    """Starting twice with one name gives one execution, run once."""
    handler = _workflow()
    first = local.run(handler, {"order": 5}, name="order-5")
    again = local.run(handler, {"order": 6}, name="order-5")

    assert again.arn == first.arn
    assert again.result == first.result == {"sum": 3, "input": {"order": 5}}
    assert again.invocations == first.invocations
    assert _runs == ["first", "inner"]
    assert len(local.list_executions()) == 1


def test_idempotent_start_holds_across_engines_on_one_file(
    tmp_path: Path,
) -> None:
    """A name started in one engine is found by start in another."""
    path = tmp_path / "x.sqlite3"
    with LocalEngine(path, skip_time=True) as first:
        arn = first.start(_workflow(), name="order-3")
    with LocalEngine(path, skip_time=True) as second:
        second.register("_workflow_func", _workflow())
        assert second.start("_workflow_func", name="order-3") == arn
