"""The embedded engine: durable executions on one machine.

:class:`LocalEngine` runs durable handlers to the end with nothing to
deploy: executions, operations and history are kept in SQLite (or in
memory), waits and retry delays run on a real or skipping clock, and each
invocation runs in this process or in a fresh subprocess.
:class:`DurableExecutionServer` serves the same engine over the Lambda
durable execution REST API, for boto3 and any other client of it.

Example::

    from durable_exec.local import LocalEngine

    with LocalEngine.in_memory() as engine:
        outcome = engine.run(handler, {"order": 42})
        print(outcome.status, outcome.result)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._client import LocalServiceClient
from ._clock import Clock, RealClock, SkippingClock
from ._engine import Engine
from ._errors import (
    CallbackTimeoutException,
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
    ServiceError,
)
from ._runner import (
    DEFAULT_STORE_PATH,
    ExecutionResult,
    ExecutionSummary,
    LocalEngine,
    load_handler,
)
from ._store import ExecutionRecord, MemoryStore, SqliteStore, Store

if TYPE_CHECKING:
    from ._server import DurableExecutionServer

__all__ = [
    "CallbackTimeoutException",
    "Clock",
    "DEFAULT_STORE_PATH",
    "DurableExecutionServer",
    "Engine",
    "ExecutionRecord",
    "ExecutionResult",
    "ExecutionSummary",
    "InvalidParameterValueException",
    "LocalEngine",
    "LocalServiceClient",
    "MemoryStore",
    "RealClock",
    "ResourceConflictException",
    "ResourceNotFoundException",
    "ServiceError",
    "SkippingClock",
    "SqliteStore",
    "Store",
    "load_handler",
]


def __getattr__(name: str) -> Any:
    # The server loads botocore's model; only those who serve pay for it.
    if name == "DurableExecutionServer":
        from ._server import DurableExecutionServer

        return DurableExecutionServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
