"""Helpers shared by the parallel and map tests (not a test module)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from durable_exec import BatchResult

_NOT_STRUCTURAL = ("Execution", "Invocation")


def summarize(batch: BatchResult[Any]) -> dict[str, Any]:
    """A JSON-friendly picture of a batch: reason and every item."""
    items = []
    for item in batch.all:
        entry: dict[str, Any] = {"index": item.index, "status": item.status.value}
        if item.name is not None:
            entry["name"] = item.name
        if item.result is not None:
            entry["result"] = item.result
        if item.error is not None:
            entry["error"] = [item.error.error_type, item.error.error_message]
        items.append(entry)
    return {"reason": batch.completion_reason.value, "items": items}


def _without_timestamps(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            key: _without_timestamps(inner)
            for key, inner in sorted(value.items())
            if "Timestamp" not in key
        }
    if isinstance(value, (list, tuple)):
        return [_without_timestamps(inner) for inner in value]
    return value


def history_shape(
    history: Iterable[Mapping[str, Any]],
) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The operation events of a history, per id, without timing.

    Execution and invocation events carry ids and times of the run itself
    and are left out. Per id the events keep their order; ids are sorted,
    so threads finishing in another order do not change the shape.
    """
    by_id: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for event in history:
        event_type = event["EventType"]
        if event_type.startswith(_NOT_STRUCTURAL):
            continue
        details = {
            key: value for key, value in event.items() if key.endswith("Details")
        }
        by_id[event["Id"]].append(
            (
                event_type,
                event.get("ParentId"),
                event.get("Name"),
                event.get("SubType"),
                _without_timestamps(details),
            )
        )
    return sorted(by_id.items())


def parent_map(history: Iterable[Mapping[str, Any]]) -> dict[str, str | None]:
    """Operation id to parent id, as the history records them."""
    return {
        event["Id"]: event.get("ParentId")
        for event in history
        if "Id" in event and not event["EventType"].startswith(_NOT_STRUCTURAL)
    }


def descends_from(op_id: str, ancestor: str, parents: Mapping[str, Any]) -> bool:
    """True when ``ancestor`` is on the ParentId chain of ``op_id``."""
    current = parents.get(op_id)
    while current is not None:
        if current == ancestor:
            return True
        current = parents.get(current)
    return False


def events_of(
    history: Iterable[Mapping[str, Any]], *event_types: str
) -> list[Mapping[str, Any]]:
    """The events of ``history`` of one of ``event_types``."""
    return [event for event in history if event["EventType"] in event_types]
