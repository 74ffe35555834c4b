"""The conformance suites we serve, one test per requirement.

The requirement files live outside the project, in
``../shared/conformance/requirements`` (or wherever
``DURABLE_EXEC_REQUIREMENTS`` points); the handlers that serve them are
the other files of this folder.
"""

from __future__ import annotations

import json
import os
import random
import textwrap
from pathlib import Path

import pytest

from durable_exec.testing._requirements import Requirement, load_requirements
from durable_exec.testing.conformance import (
    HandlerRegistration,
    load_handlers,
    main,
    run_requirement,
)

SUITES = (
    "step",
    "wait",
    "child",
    "callback",
    "invoke",
    "wait_for_condition",
    "wait_for_callback",
    "parallel",
    "map",
    "plugin",
)
HANDLERS = Path(__file__).resolve().parent
REQUIREMENTS_DIR = Path(
    os.environ.get("DURABLE_EXEC_REQUIREMENTS")
    or Path(__file__).resolve().parents[2].parent
    / "shared"
    / "conformance"
    / "requirements"
)

if not REQUIREMENTS_DIR.is_dir():
    pytest.skip(
        f"no conformance requirements at {REQUIREMENTS_DIR}; set "
        "DURABLE_EXEC_REQUIREMENTS to the folder of suite folders",
        allow_module_level=True,
    )

# A seeded source keeps the ${GEN_STR:N} inputs the same from run to run.
REQUIREMENTS = load_requirements(REQUIREMENTS_DIR, SUITES, rng=random.Random(20251201))


@pytest.fixture(scope="module")
def registrations() -> dict[str, HandlerRegistration]:
    """The handlers of this folder, by requirement id."""
    return load_handlers(HANDLERS)


@pytest.mark.parametrize("requirement", REQUIREMENTS, ids=lambda r: r.id)
def test_requirement(
    requirement: Requirement,
    registrations: dict[str, HandlerRegistration],
    tmp_path: Path,
) -> None:
    """The requirement's handler runs as its requirement file says."""
    report = run_requirement(
        requirement, registrations.get(requirement.id), workdir=tmp_path
    )
    if not report.passed:
        details = "\n".join(f"  {error}" for error in report.errors)
        pytest.fail(
            f"{requirement.suite}/{requirement.id} {report.status}: "
            f"{requirement.description}\n{details}",
            pytrace=False,
        )


# -----------------------------------------------------------------------------
# The command line

DEMO_HANDLERS = """\
from durable_exec import DurableContext, durable_execution
from durable_exec.testing.conformance import requirement


@requirement("9-1")
@requirement("9-2")
@durable_execution
def shout(event: str, context: DurableContext) -> str:
    return context.step(lambda step: event.upper(), name="shout")
"""

DEMO_REQUIREMENT = """\
description: {description}
handler: Upper-cases its input in one step.
Input: abc
ExpectedResult:
  ExecutionStatus: SUCCEEDED
  Result: {result}
ExpectedExecutionHistory:
  - EventType: StepSucceeded
    EventId: 3
    Name: shout
"""


def write_demo(root: Path) -> tuple[Path, Path]:
    """A suite of three requirements: one passes, one fails, one missing."""
    suite = root / "requirements" / "demo"
    suite.mkdir(parents=True)
    for rid, result in (("9-1", "ABC"), ("9-2", "abc"), ("9-3", "ABC")):
        text = DEMO_REQUIREMENT.format(description=f"demo {rid}", result=result)
        (suite / f"{rid}.yaml").write_text(text)
    handlers = root / "handlers"
    handlers.mkdir()
    (handlers / "demo.py").write_text(textwrap.dedent(DEMO_HANDLERS))
    return suite.parent, handlers


def headlines(out: str) -> list[list[str]]:
    """The words of each line of main()'s output that is not an error."""
    return [line.split() for line in out.splitlines() if line[:1] != " "]


def test_main_writes_json_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """main() reports each id as passed, failed or missing, and exits 1."""
    requirements, handlers = write_demo(tmp_path)
    report = tmp_path / "report.json"

    code = main(
        [
            "--requirements",
            str(requirements),
            "--handlers",
            str(handlers),
            "--report",
            f"json:{report}",
        ]
    )

    assert code == 1
    document = json.loads(report.read_text())
    assert list(document) == ["results"]
    results = document["results"]
    assert [r["id"] for r in results] == ["9-1", "9-2", "9-3"]
    assert all(set(r) == {"id", "status", "errors"} for r in results)
    assert [r["status"] for r in results] == ["passed", "failed", "missing"]
    assert results[0]["errors"] == []
    assert any("result" in error for error in results[1]["errors"])
    assert all(isinstance(e, str) for r in results for e in r["errors"])

    *outcomes, summary = headlines(capsys.readouterr().out)
    assert outcomes == [["PASS", "9-1"], ["FAIL", "9-2"], ["MISSING", "9-3"]]
    assert summary == ["1", "passed,", "1", "failed,", "1", "missing"]


def test_main_exits_zero_when_a_suite_passes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """main() runs only the chosen suite and exits 0 when all of it passes."""
    code = main(
        [
            "--requirements",
            str(REQUIREMENTS_DIR),
            "--handlers",
            str(HANDLERS),
            "--suite",
            "wait",
        ]
    )

    out = capsys.readouterr().out
    assert code == 0, out
    *outcomes, _ = headlines(out)
    assert outcomes
    assert all(label == "PASS" for label, _ in outcomes)
    assert all(rid.startswith("2-") for _, rid in outcomes)


def test_main_rejects_an_unknown_report_format(tmp_path: Path) -> None:
    """--report takes json:FILE only; anything else is a usage error."""
    with pytest.raises(SystemExit) as raised:
        main(
            [
                "--requirements",
                str(REQUIREMENTS_DIR),
                "--handlers",
                str(HANDLERS),
                "--report",
                f"xml:{tmp_path / 'r.xml'}",
            ]
        )
    assert raised.value.code == 2
