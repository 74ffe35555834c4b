"""The conformance suites once more, the SDK reaching the engine over HTTP.

Every checkpoint and state read of these runs goes through the SDK's
boto3 client to the engine's HTTP server, as it goes to the service on
AWS; crash cases run in a subprocess on the store and stay in-process.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import pytest

from durable_exec.service import BotoServiceClient
from durable_exec.testing._requirements import Requirement, load_requirements
from durable_exec.testing.conformance import (
    HandlerRegistration,
    load_handlers,
    run_requirement,
)

CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance"
sys.path.insert(0, str(CONFORMANCE))
from test_conformance import REQUIREMENTS_DIR, SUITES

sys.path.remove(str(CONFORMANCE))

if not REQUIREMENTS_DIR.is_dir():
    pytest.skip(
        f"no conformance requirements at {REQUIREMENTS_DIR}",
        allow_module_level=True,
    )

REQUIREMENTS = load_requirements(REQUIREMENTS_DIR, SUITES, rng=random.Random(20251201))


@pytest.fixture(scope="module")
def registrations() -> dict[str, HandlerRegistration]:
    """The conformance handlers, by requirement id."""
    return load_handlers(CONFORMANCE)


@pytest.mark.parametrize("requirement", REQUIREMENTS, ids=lambda r: r.id)
def test_requirement_over_http(
    requirement: Requirement,
    registrations: dict[str, HandlerRegistration],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The requirement passes with the SDK talking HTTP to the engine."""
    calls: list[str] = []
    checkpoint = BotoServiceClient.checkpoint

    def counted(self: BotoServiceClient, *args: Any, **kwargs: Any) -> Any:
        calls.append("checkpoint")
        return checkpoint(self, *args, **kwargs)

    monkeypatch.setattr(BotoServiceClient, "checkpoint", counted)
    report = run_requirement(
        requirement,
        registrations.get(requirement.id),
        workdir=tmp_path,
        over_http=True,
    )
    if not report.passed:
        details = "\n".join(f"  {error}" for error in report.errors)
        pytest.fail(
            f"{requirement.suite}/{requirement.id} {report.status} over HTTP: "
            f"{requirement.description}\n{details}",
            pytrace=False,
        )
    # Where the file expects operations, they were checkpointed over HTTP.
    registration = registrations[requirement.id]
    expects_operations = any("Id" in event for event in requirement.expected_history)
    if expects_operations and not registration.crash:
        assert calls, "no checkpoint went through the boto3 client"
