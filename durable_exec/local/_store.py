"""Where the embedded engine keeps executions: in memory, or in SQLite.

The engine works on :class:`ExecutionRecord` objects and hands each change
to its store as one commit: the execution's fields, the operations that
changed and the events appended. :class:`MemoryStore` keeps the objects
themselves. :class:`SqliteStore` writes every commit in one transaction,
so an execution outlives the process that ran it, and another process —
an invocation run in a subprocess, or the same workflow run again after a
crash — picks it up from the file.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs

from ..wire import (
    ErrorObject,
    ExecutionStatus,
    Operation,
    epoch_millis,
    from_epoch_millis,
    from_wire,
    to_wire,
)

__all__ = ["ExecutionRecord", "MemoryStore", "SqliteStore", "Store"]


@attrs.define(eq=False)
class ExecutionRecord:
    """Everything the engine keeps about one execution."""

    arn: str
    name: str
    function_name: str
    execution_id: str
    status: ExecutionStatus
    input_payload: str
    start: _dt.datetime
    timeout_seconds: int
    end: _dt.datetime | None = None
    result: str | None = None
    error: ErrorObject | None = None

    # Operations in start order, by id; the EXECUTION operation first.
    operations: dict[str, Operation] = attrs.field(factory=dict)
    # History events in the service's shape, EventTimestamp a datetime.
    events: list[dict[str, Any]] = attrs.field(factory=list)

    # The invocation in flight, if any, and its current token.
    invocation_id: str | None = None
    invocation_owner: str | None = None
    invocation_start: _dt.datetime | None = None
    token: str | None = None
    token_sequence: int = 0
    invocations: int = 0
    # Whether an invocation is owed: something changed while none ran.
    owed: bool = True
    # When the owed invocation may start (a retry after a failed one).
    owed_at: _dt.datetime | None = None
    failed_invocations: int = 0
    idle_pendings: int = 0
    # Operation ids changed since the in-flight invocation last saw state.
    unseen: list[str] = attrs.field(factory=list)
    # Timers: operation id -> when it fires.
    timers: dict[str, _dt.datetime] = attrs.field(factory=dict)
    # The last accepted checkpoint with a client token, for idempotency.
    last_client_token: str | None = None
    last_reply: dict[str, Any] | None = None
    # For the target of a chained invoke: the caller and its operation.
    parent_arn: str | None = None
    parent_operation_id: str | None = None
    # How a later process may load the handler: FILE_OR_MODULE:HANDLER.
    handler_ref: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status is not ExecutionStatus.RUNNING

    # -- persistence -------------------------------------------------------

    _SCALARS = (
        "arn",
        "name",
        "function_name",
        "execution_id",
        "input_payload",
        "timeout_seconds",
        "result",
        "invocation_id",
        "invocation_owner",
        "token",
        "token_sequence",
        "invocations",
        "owed",
        "failed_invocations",
        "idle_pendings",
        "unseen",
        "last_client_token",
        "last_reply",
        "parent_arn",
        "parent_operation_id",
        "handler_ref",
    )
    _TIMES = ("start", "end", "invocation_start", "owed_at")

    def header(self) -> dict[str, Any]:
        """The execution's own fields, as JSON-ready data."""
        data: dict[str, Any] = {k: getattr(self, k) for k in self._SCALARS}
        data["status"] = self.status.value
        for key in self._TIMES:
            value = getattr(self, key)
            data[key] = epoch_millis(value) if value is not None else None
        data["error"] = to_wire(self.error) if self.error else None
        data["timers"] = {k: epoch_millis(v) for k, v in self.timers.items()}
        return data

    @classmethod
    def from_header(cls, data: dict[str, Any]) -> ExecutionRecord:
        kwargs = {k: data[k] for k in cls._SCALARS if k in data}
        kwargs["status"] = ExecutionStatus(data["status"])
        for key in cls._TIMES:
            value = data.get(key)
            kwargs[key] = from_epoch_millis(value) if value is not None else None
        if data.get("error"):
            kwargs["error"] = from_wire(data["error"], ErrorObject)
        record = cls(**kwargs)
        record.timers = {
            k: from_epoch_millis(v) for k, v in data.get("timers", {}).items()
        }
        return record


class Store(Protocol):
    """Persistence of execution records."""

    def create(self, record: ExecutionRecord) -> None: ...

    def load(self, arn: str) -> ExecutionRecord | None: ...

    def commit(
        self,
        record: ExecutionRecord,
        operations: Iterable[Operation],
        events: Sequence[dict[str, Any]],
    ) -> None:
        """Persist the record's fields, changed operations, new events."""
        ...

    def find(
        self, *, name: str | None = None, function_name: str | None = None
    ) -> list[str]:
        """ARNs of executions, oldest first, filtered as asked."""
        ...

    def forget(self, arn: str) -> None:
        """Drop any cached copy, so the next load reads the source."""
        ...

    def index_callback(self, callback_id: str, arn: str, operation_id: str) -> None:
        """Remember which execution and operation a callback id is for."""
        ...

    def find_callback(self, callback_id: str) -> tuple[str, str] | None:
        """The execution ARN and operation id of a callback id."""
        ...

    def close(self) -> None: ...


class MemoryStore:
    """Keeps records in memory; they die with the process."""

    persistent = False

    def __init__(self) -> None:
        self._records: dict[str, ExecutionRecord] = {}
        self._callbacks: dict[str, tuple[str, str]] = {}

    def index_callback(self, callback_id: str, arn: str, operation_id: str) -> None:
        self._callbacks[callback_id] = (arn, operation_id)

    def find_callback(self, callback_id: str) -> tuple[str, str] | None:
        return self._callbacks.get(callback_id)

    def create(self, record: ExecutionRecord) -> None:
        self._records[record.arn] = record

    def load(self, arn: str) -> ExecutionRecord | None:
        return self._records.get(arn)

    def commit(
        self,
        record: ExecutionRecord,
        operations: Iterable[Operation],
        events: Sequence[dict[str, Any]],
    ) -> None:
        # The engine changed the record in place; nothing more to keep.
        pass

    def find(
        self, *, name: str | None = None, function_name: str | None = None
    ) -> list[str]:
        return [
            record.arn
            for record in self._records.values()
            if (name is None or record.name == name)
            and (function_name is None or record.function_name == function_name)
        ]

    def forget(self, arn: str) -> None:
        pass

    def close(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    arn TEXT UNIQUE NOT NULL,
    name TEXT NOT NULL,
    function_name TEXT NOT NULL,
    header TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_name ON executions(name);
CREATE TABLE IF NOT EXISTS operations (
    arn TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (arn, id)
);
CREATE TABLE IF NOT EXISTS callbacks (
    callback_id TEXT PRIMARY KEY,
    arn TEXT NOT NULL,
    operation_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    arn TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (arn, event_id)
);
"""


def _event_to_json(event: dict[str, Any]) -> str:
    return json.dumps(event, default=_json_default, separators=(",", ":"))


def _json_default(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        return {"$ts": epoch_millis(value)}
    raise TypeError(f"cannot store {value!r}")


def _event_from_json(text: str) -> dict[str, Any]:
    def hook(obj: dict[str, Any]) -> Any:
        if len(obj) == 1 and "$ts" in obj:
            return from_epoch_millis(obj["$ts"])
        return obj

    result: dict[str, Any] = json.loads(text, object_hook=hook)
    return result


class SqliteStore:
    """Keeps records in a SQLite file.

    Records are cached after the first load; :meth:`forget` drops the
    cached copy when another process may have written the file.
    """

    persistent = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._cache: dict[str, ExecutionRecord] = {}
        self._op_seq: dict[str, dict[str, int]] = {}

    def create(self, record: ExecutionRecord) -> None:
        with self._lock, self._transaction():
            self._db.execute(
                "INSERT INTO executions (arn, name, function_name, header) "
                "VALUES (?, ?, ?, ?)",
                (
                    record.arn,
                    record.name,
                    record.function_name,
                    json.dumps(record.header()),
                ),
            )
            self._write(record, record.operations.values(), record.events)
            self._cache[record.arn] = record

    def load(self, arn: str) -> ExecutionRecord | None:
        with self._lock:
            cached = self._cache.get(arn)
            if cached is not None:
                return cached
            row = self._db.execute(
                "SELECT header FROM executions WHERE arn = ?", (arn,)
            ).fetchone()
            if row is None:
                return None
            record = ExecutionRecord.from_header(json.loads(row[0]))
            seqs: dict[str, int] = {}
            for seq, op_id, body in self._db.execute(
                "SELECT seq, id, body FROM operations WHERE arn = ? ORDER BY seq",
                (arn,),
            ):
                record.operations[op_id] = from_wire(json.loads(body), Operation)
                seqs[op_id] = seq
            record.events = [
                _event_from_json(body)
                for (body,) in self._db.execute(
                    "SELECT body FROM events WHERE arn = ? ORDER BY event_id",
                    (arn,),
                )
            ]
            self._op_seq[arn] = seqs
            self._cache[arn] = record
            return record

    def commit(
        self,
        record: ExecutionRecord,
        operations: Iterable[Operation],
        events: Sequence[dict[str, Any]],
    ) -> None:
        with self._lock, self._transaction():
            self._db.execute(
                "UPDATE executions SET header = ? WHERE arn = ?",
                (json.dumps(record.header()), record.arn),
            )
            self._write(record, operations, events)

    def _write(
        self,
        record: ExecutionRecord,
        operations: Iterable[Operation],
        events: Sequence[dict[str, Any]],
    ) -> None:
        seqs = self._op_seq.setdefault(record.arn, {})
        rows = []
        for operation in operations:
            seq = seqs.get(operation.id)
            if seq is None:
                seq = seqs[operation.id] = len(seqs)
            rows.append((record.arn, seq, operation.id, json.dumps(to_wire(operation))))
        self._db.executemany(
            "INSERT OR REPLACE INTO operations (arn, seq, id, body) "
            "VALUES (?, ?, ?, ?)",
            rows,
        )
        self._db.executemany(
            "INSERT INTO events (arn, event_id, body) VALUES (?, ?, ?)",
            [(record.arn, event["EventId"], _event_to_json(event)) for event in events],
        )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def find(
        self, *, name: str | None = None, function_name: str | None = None
    ) -> list[str]:
        query = "SELECT arn FROM executions WHERE 1 = 1"
        params: list[Any] = []
        if name is not None:
            query += " AND name = ?"
            params.append(name)
        if function_name is not None:
            query += " AND function_name = ?"
            params.append(function_name)
        with self._lock:
            return [row[0] for row in self._db.execute(query + " ORDER BY seq", params)]

    def index_callback(self, callback_id: str, arn: str, operation_id: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO callbacks (callback_id, arn, operation_id) "
                "VALUES (?, ?, ?)",
                (callback_id, arn, operation_id),
            )

    def find_callback(self, callback_id: str) -> tuple[str, str] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT arn, operation_id FROM callbacks WHERE callback_id = ?",
                (callback_id,),
            ).fetchone()
        return (row[0], row[1]) if row else None

    def forget(self, arn: str) -> None:
        with self._lock:
            self._cache.pop(arn, None)
            self._op_seq.pop(arn, None)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
