"""Fixtures of the sample tests: each sample under ``samples/``, loaded by
path (the samples are scripts for ``durable-exec run``, not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _load(name: str) -> ModuleType:
    """Import ``samples/<name>.py`` under a name of its own."""
    module_name = f"durable_exec_sample_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, SAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def order() -> ModuleType:
    """samples/order.py: the order saga."""
    return _load("order")


@pytest.fixture(scope="session")
def batch_job() -> ModuleType:
    """samples/batch_job.py: the thousand-record map."""
    return _load("batch_job")


@pytest.fixture(scope="session")
def approval() -> ModuleType:
    """samples/approval.py: the human approval."""
    return _load("approval")
