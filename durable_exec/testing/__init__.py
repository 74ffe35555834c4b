"""Testing durable handlers: the pytest plugin, replay checking, conformance.

- The ``durable`` pytest fixture (:mod:`durable_exec.testing.pytest_plugin`,
  loaded automatically once durable_exec is installed) runs handlers on an
  in-memory engine with time skipped, answers callbacks, and replays every
  run from its own checkpoints to prove the handler deterministic.
- :func:`replay_history` replays a stored history (``durable-exec history
  --json``, or the service's GetDurableExecutionHistory) with the current
  code, so a changed handler can be checked before it is deployed.
- :func:`run_conformance`, :func:`run_requirement` and
  :func:`load_requirements` run the conformance requirement files; they
  need PyYAML (the ``conformance`` extra) and are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._harness import DEFAULT_START, DurableHarness, DurableRun, OperationView
from ._replay import (
    HistoryError,
    RecordedExecution,
    ReplayDifference,
    ReplayMismatch,
    recorded_from_history,
    replay_history,
)

# Shown in tracebacks as users import them.
ReplayMismatch.__module__ = __name__
HistoryError.__module__ = __name__

if TYPE_CHECKING:
    from ._requirements import load_requirements
    from .conformance import run_conformance, run_requirement

__all__ = [
    "DEFAULT_START",
    "DurableHarness",
    "DurableRun",
    "HistoryError",
    "OperationView",
    "RecordedExecution",
    "ReplayDifference",
    "ReplayMismatch",
    "load_requirements",
    "recorded_from_history",
    "replay_history",
    "run_conformance",
    "run_requirement",
]

# The conformance names import PyYAML, an optional dependency; the pytest
# plugin imports this package in every project, so they load on first use.
_LAZY = {
    "load_requirements": "._requirements",
    "run_conformance": ".conformance",
    "run_requirement": ".conformance",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value
    return value
