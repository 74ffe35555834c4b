"""durable_exec: durable functions for AWS Lambda, in plain synchronous Python.

A handler decorated with :func:`durable_execution` runs its steps, waits
and child contexts through a :class:`DurableContext`; each is checkpointed
to the durable execution service, and a re-invoked handler replays what is
done instead of running it again. :mod:`durable_exec.local` runs the same
handlers on one machine with an embedded engine.
"""

from __future__ import annotations

from ._logger import DurableLogger, JsonLogFormatter
from .batch import (
    BatchItem,
    BatchItemStatus,
    BatchResult,
    BatchStatus,
    CompletionReason,
)
from .config import (
    CallbackConfig,
    ChildConfig,
    CompletionConfig,
    Duration,
    InvokeConfig,
    MapConfig,
    NestingType,
    ParallelBranch,
    ParallelConfig,
    StepConfig,
    StepSemantics,
    WaitDecision,
    WaitForCallbackConfig,
    WaitForConditionConfig,
    WaitStrategy,
)
from .context import Callback, DurableContext, StepContext
from .errors import (
    CallbackError,
    CallbackTimeoutError,
    CheckpointError,
    ChildContextError,
    DurableExecutionError,
    ExecutionNotFoundError,
    InvalidCheckpointTokenError,
    InvokeError,
    MapError,
    NonDeterministicExecutionError,
    OperationError,
    ParallelError,
    SerDesError,
    StepError,
    StepInterruptedError,
    SuspendExecution,
    ValidationError,
    WaitForConditionError,
)
from .handler import DurableHandler, durable_execution
from .retry import (
    JitterStrategy,
    RetryDecision,
    RetryPresets,
    RetryStrategy,
)
from .serde import JsonSerDes, SerDes, SerDesContext

__version__ = "0.1.0"

__all__ = [
    "Callback",
    "CallbackConfig",
    "InvokeConfig",
    "WaitDecision",
    "WaitForCallbackConfig",
    "WaitForConditionConfig",
    "WaitStrategy",
    "BatchItem",
    "BatchItemStatus",
    "BatchResult",
    "BatchStatus",
    "CompletionConfig",
    "CompletionReason",
    "MapConfig",
    "NestingType",
    "ParallelBranch",
    "ParallelConfig",
    "CallbackError",
    "CallbackTimeoutError",
    "CheckpointError",
    "ChildConfig",
    "ChildContextError",
    "DurableContext",
    "DurableExecutionError",
    "DurableHandler",
    "DurableLogger",
    "Duration",
    "ExecutionNotFoundError",
    "InvalidCheckpointTokenError",
    "InvokeError",
    "JitterStrategy",
    "JsonLogFormatter",
    "JsonSerDes",
    "MapError",
    "NonDeterministicExecutionError",
    "OperationError",
    "ParallelError",
    "RetryDecision",
    "RetryPresets",
    "RetryStrategy",
    "SerDes",
    "SerDesContext",
    "SerDesError",
    "StepConfig",
    "StepContext",
    "StepError",
    "StepInterruptedError",
    "StepSemantics",
    "SuspendExecution",
    "ValidationError",
    "WaitForConditionError",
    "durable_execution",
]
