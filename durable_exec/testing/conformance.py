"""Run conformance requirement files against durable handlers.

A conformance run pairs each requirement file (see
:mod:`durable_exec.testing._requirements`) with the handler written for
it, runs that handler on a fresh :class:`~durable_exec.local.LocalEngine`
with a skipping clock, and checks the execution's status, result, history
and log lines against the file.

Handler files declare what they serve with :func:`requirement`::

    from durable_exec import DurableContext, durable_execution
    from durable_exec.testing.conformance import requirement

    @requirement("1-1")
    @durable_execution
    def greet(event: str, context: DurableContext) -> str:
        return context.step(lambda _: f"Hello, {event}!", name="greet")

and :func:`load_handlers` collects the declarations of a file, or of every
handler file in a folder.

Crash cases
-----------
Some requirements need a process that dies mid-invocation. Their handlers
are declared with ``crash=True``: every invocation then runs in a fresh
subprocess, so the handler may end it with ``os._exit(1)``, and the engine
records the crash as Lambda would. To crash only once, a handler asks
:func:`first_run`, which keeps a marker file per execution and tag in a
scratch folder; the harness names that folder in the environment variable
``DURABLE_EXEC_SCRATCH`` (:data:`SCRATCH_ENV`) for the whole run, and the
subprocesses inherit it.

The command line is ``durable-exec conformance`` (or ``python -m
durable_exec.testing.conformance``); see :func:`main`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import attrs

from ..handler import DurableHandler
from ..local import ExecutionResult, LocalEngine
from ._requirements import (
    Requirement,
    load_requirements,
    match_history,
    match_logs,
    match_result,
)

__all__ = [
    "SCRATCH_ENV",
    "HandlerRegistration",
    "RequirementReport",
    "first_run",
    "load_handlers",
    "main",
    "requirement",
    "run_conformance",
    "run_requirement",
    "write_report",
]

SCRATCH_ENV = "DURABLE_EXEC_SCRATCH"
"""The environment variable naming the harness's scratch folder."""

Status = Literal["passed", "failed", "missing"]

H = TypeVar("H", bound=DurableHandler[Any, Any])

# Where @requirement leaves its marks on a handler, read by load_handlers.
_MARKS_ATTRIBUTE = "_conformance_requirements"


@attrs.frozen
class _Mark:
    requirement_id: str
    crash: bool


@attrs.frozen
class HandlerRegistration:
    """A handler declared to serve one requirement.

    Attributes:
        requirement_id: The requirement's id, such as ``"1-18"``.
        handler: The durable handler.
        ref: ``FILE:ATTRIBUTE``, how a subprocess loads the handler.
        crash: Whether the handler ends its own process, so that each
            invocation must run in a subprocess.
    """

    requirement_id: str
    handler: DurableHandler[Any, Any]
    ref: str
    crash: bool = False

    @property
    def function_name(self) -> str:
        """The function name the handler is registered under."""
        name = getattr(self.handler, "__name__", None) or "handler"
        return re.sub(r"[^A-Za-z0-9_-]", "-", name)[:64]


@attrs.frozen
class RequirementReport:
    """The outcome of one requirement.

    Attributes:
        id: The requirement's id.
        status: ``"passed"``, ``"failed"``, or ``"missing"`` when no
            handler is registered for it.
        errors: One message per difference or problem; empty on a pass.
    """

    id: str
    status: Status
    errors: list[str] = attrs.field(factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "passed"


# -----------------------------------------------------------------------------
# Declaring handlers


def requirement(
    requirement_id: str, *, crash: bool = False
) -> Callable[[H], H]:
    """Declare that a durable handler serves a requirement.

    Put it above ``@durable_execution``; stack it to serve several ids.

    Args:
        requirement_id: The requirement's id, such as ``"1-1"``.
        crash: The handler ends its own process (``os._exit``), so each
            of its invocations runs in a fresh subprocess. Default False:
            invocations run in the harness's process.

    Raises:
        TypeError: If the decorated object is not a durable handler.
    """
    if not isinstance(requirement_id, str) or not requirement_id:
        raise ValueError(
            "requirement_id must be a non-empty string "
            f"(got {requirement_id!r})"
        )

    def mark(handler: H) -> H:
        if not isinstance(handler, DurableHandler):
            raise TypeError(
                f"@requirement({requirement_id!r}) needs a durable handler; "
                f"put it above @durable_execution (got {handler!r})"
            )
        marks = getattr(handler, _MARKS_ATTRIBUTE, ())
        marks = (*marks, _Mark(requirement_id, crash))
        setattr(handler, _MARKS_ATTRIBUTE, marks)
        return handler

    return mark


def first_run(execution_arn: str, tag: str = "first") -> bool:
    """Whether this is the first time ``tag`` is asked in this execution.

    The answer survives the process: the first call leaves a marker file
    in the harness's scratch folder (:data:`SCRATCH_ENV`), and every
    later call, in any process, finds it. A crash handler uses it to die
    only once::

        if first_run(context.durable_execution_arn, "crash"):
            os._exit(1)

    Raises:
        RuntimeError: If no scratch folder is set, as outside a
            conformance run.
    """
    scratch = os.environ.get(SCRATCH_ENV)
    if not scratch:
        raise RuntimeError(
            f"first_run needs the scratch folder named by ${SCRATCH_ENV}; "
            "run the handler through the conformance harness"
        )
    key = hashlib.sha256(f"{execution_arn}\n{tag}".encode()).hexdigest()
    marker = Path(scratch) / f"{key}.marker"
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL makes the check and the marking one step.
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def load_handlers(
    path: str | os.PathLike[str],
) -> dict[str, HandlerRegistration]:
    """Collect the handlers declared with :func:`requirement`.

    ``path`` is a handler file, or a folder: then every ``*.py`` directly
    in it is loaded, except helpers (``_``-prefixed names, which a
    handler file may import) and files pytest would collect
    (``test_*.py``, ``*_test.py``, ``conftest.py``). A file may import its
    neighbours, as ``python FILE`` would let it.

    Returns:
        Each requirement id with its registration.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If two handlers declare the same requirement id.
    """
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.glob("*.py") if _is_handler_file(p))
    elif root.is_file():
        files = [root]
    else:
        raise FileNotFoundError(f"handlers path {str(root)!r} does not exist")

    registrations: dict[str, HandlerRegistration] = {}
    for file in files:
        module = _load_module(file.resolve())
        seen: set[int] = set()
        for attribute, value in vars(module).items():
            if not isinstance(value, DurableHandler) or id(value) in seen:
                continue
            seen.add(id(value))
            for mark in getattr(value, _MARKS_ATTRIBUTE, ()):
                registration = HandlerRegistration(
                    mark.requirement_id,
                    value,
                    f"{file.resolve()}:{attribute}",
                    mark.crash,
                )
                earlier = registrations.get(mark.requirement_id)
                if earlier is not None and earlier.handler is not value:
                    raise ValueError(
                        f"requirement {mark.requirement_id} is declared by "
                        f"both {earlier.ref} and {registration.ref}"
                    )
                registrations[mark.requirement_id] = registration
    return registrations


def _is_handler_file(path: Path) -> bool:
    name = path.name
    return not (
        name.startswith(("_", "test_"))
        or name.endswith("_test.py")
        or name == "conftest.py"
    )


def _load_module(path: Path) -> Any:
    """Import a file by path, once per process."""
    name = "_durable_conformance_" + re.sub(r"\W", "_", str(path))
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load handler file {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    finally:
        sys.path.remove(str(path.parent))
    return module


# -----------------------------------------------------------------------------
# Running


def run_requirement(
    requirement: Requirement,
    handler_registration: HandlerRegistration | None,
    *,
    workdir: str | os.PathLike[str],
) -> RequirementReport:
    """Run one requirement's handler and check the execution.

    The handler runs on a fresh engine kept in ``workdir`` (SQLite, a
    skipping clock; in a subprocess per invocation for a crash handler),
    with ``requirement.input`` as its input. Then the status and result,
    the history and the log lines are matched, sharing one set of
    ``${NAME}`` bindings.

    An ``AsyncInvoke`` requirement without ``ExpectedResult`` passes on
    its history alone: the execution may still wait for the outside
    world, or have finished because the skipping clock got there first.

    Args:
        requirement: The requirement to check.
        handler_registration: Its handler; ``None`` reports it missing.
        workdir: A folder of its own for the store, log and scratch files.

    Returns:
        The report; it never raises for a handler that misbehaves.
    """
    if handler_registration is None:
        return RequirementReport(
            requirement.id,
            "missing",
            [f"no handler is registered for requirement {requirement.id}"],
        )
    if requirement.callback_actions:
        return RequirementReport(
            requirement.id,
            "failed",
            ["CallbackActions are not supported by this harness yet"],
        )

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    log_file = workdir / "workflow.log.jsonl"
    try:
        outcome = _execute(
            requirement, handler_registration, workdir, log_file
        )
    except Exception as error:  # noqa: BLE001 - reported, not raised
        return RequirementReport(
            requirement.id,
            "failed",
            [f"the execution did not run: {type(error).__name__}: {error}"],
        )

    errors = _check(requirement, outcome, _read_log_lines(log_file))
    return RequirementReport(
        requirement.id, "failed" if errors else "passed", errors
    )


def _execute(
    requirement: Requirement,
    registration: HandlerRegistration,
    workdir: Path,
    log_file: Path,
) -> ExecutionResult:
    """Drive the handler's execution as far as it goes by itself."""
    mode = "subprocess" if registration.crash else "in_process"
    engine = LocalEngine(
        workdir / "executions.sqlite3", skip_time=True, invocation_mode=mode
    )
    with engine, _environment(SCRATCH_ENV, str(workdir / "scratch")):
        engine.log_file = log_file
        # A subprocess loads the handler by reference; in this process the
        # loaded object serves.
        handler: DurableHandler[Any, Any] | str = (
            registration.ref if registration.crash else registration.handler
        )
        engine.register(registration.function_name, handler)
        # The outside world's part (CallbackActions) would act here, each
        # time the execution stops to wait for it, before resuming it.
        return engine.run(registration.function_name, requirement.input)


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the block, then restore it.

    The environment is the process's, so requirements run one at a time.
    """
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _read_log_lines(log_file: Path) -> list[Any]:
    """The JSON log lines, in order; text that is not JSON is skipped."""
    if not log_file.exists():
        return []
    lines = []
    for text in log_file.read_text(encoding="utf-8").splitlines():
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            # A process killed mid-write leaves a partial line.
            continue
    return lines


def _check(
    requirement: Requirement,
    outcome: ExecutionResult,
    log_lines: Sequence[Any],
) -> list[str]:
    """Every difference between the execution and the requirement."""
    bindings: dict[str, Any] = dict(requirement.variables)

    # The history binds the names (operation ids) the rest may use.
    history_errors = match_history(
        requirement.expected_history, outcome.history, bindings
    )

    status = outcome.status.value
    try:
        result = outcome.result
    except json.JSONDecodeError as error:
        return [f"the execution result is not JSON: {error}"] + history_errors
    result_errors = match_result(requirement, status, result, bindings)
    if (
        status == "RUNNING"
        and not requirement.async_invoke
        and requirement.expected_status is None
    ):
        result_errors.append(
            "the execution is still RUNNING, yet the requirement needs "
            "nothing from outside"
        )

    log_errors = match_logs(
        requirement.expected_logs, log_lines, outcome.arn, bindings
    )
    return result_errors + history_errors + log_errors


def run_conformance(
    requirements_dir: str | os.PathLike[str],
    handlers_path: str | os.PathLike[str],
    *,
    suites: Sequence[str] | None = None,
) -> list[RequirementReport]:
    """Run every requirement of the chosen suites.

    Args:
        requirements_dir: The folder holding one folder per suite.
        handlers_path: A handler file or folder, for :func:`load_handlers`.
        suites: The suites to run; all when ``None``.

    Returns:
        One report per requirement, in requirement order.
    """
    requirements = load_requirements(requirements_dir, suites)
    registrations = load_handlers(handlers_path)
    reports = []
    prefix = "durable-exec-conformance-"
    with tempfile.TemporaryDirectory(prefix=prefix) as root:
        for item in requirements:
            reports.append(
                run_requirement(
                    item,
                    registrations.get(item.id),
                    workdir=Path(root) / item.suite / item.id,
                )
            )
    return reports


def write_report(
    reports: Sequence[RequirementReport], path: str | os.PathLike[str]
) -> None:
    """Write ``{"results": [{"id", "status", "errors"}, ...]}`` as JSON."""
    document = {
        "results": [
            {"id": r.id, "status": r.status, "errors": list(r.errors)}
            for r in reports
        ]
    }
    text = json.dumps(document, indent=2) + "\n"
    Path(path).write_text(text, encoding="utf-8")


# -----------------------------------------------------------------------------
# Command line

_LABELS: Mapping[str, str] = {
    "passed": "PASS",
    "failed": "FAIL",
    "missing": "MISSING",
}


def main(argv: list[str] | None = None) -> int:
    """``durable-exec conformance``: run requirements, print the outcome.

    Prints one line per requirement id, ``PASS``, ``FAIL`` or ``MISSING``,
    with its errors indented below, then a summary.

    Returns:
        0 when every requirement passed, 1 when any failed or has no
        handler, 2 when the requirements or handlers cannot be loaded.
    """
    parser = argparse.ArgumentParser(
        prog="durable-exec conformance",
        description="Run conformance requirement files against handlers.",
    )
    parser.add_argument(
        "--requirements",
        required=True,
        metavar="DIR",
        help="the folder holding one folder of *.yaml files per suite",
    )
    parser.add_argument(
        "--handlers",
        required=True,
        metavar="PATH",
        help="a handler file, or a folder of them",
    )
    parser.add_argument(
        "--suite",
        metavar="A,B",
        help="comma-separated suites to run (default: all)",
    )
    parser.add_argument(
        "--report",
        metavar="json:FILE",
        help="also write the results to FILE as JSON",
    )
    args = parser.parse_args(argv)

    report_path = None
    if args.report is not None:
        kind, sep, report_path = args.report.partition(":")
        if kind != "json" or not sep or not report_path:
            parser.error(f"--report must be json:FILE (got {args.report!r})")
    suites = None
    if args.suite:
        suites = [s.strip() for s in args.suite.split(",") if s.strip()]

    try:
        reports = run_conformance(
            args.requirements, args.handlers, suites=suites
        )
    except (OSError, ImportError, ValueError) as error:
        print(f"durable-exec conformance: {error}", file=sys.stderr)
        return 2

    for report in reports:
        print(f"{_LABELS[report.status]:<8}{report.id}")
        for message in report.errors:
            print(f"    {message}")
    counts = {
        status: sum(r.status == status for r in reports) for status in _LABELS
    }
    print(
        f"{counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['missing']} missing"
    )
    if report_path is not None:
        write_report(reports, report_path)
    return 0 if counts["passed"] == len(reports) else 1


if __name__ == "__main__":
    # Run the imported module's main, so that handler files, which import
    # this module by name, share its state with the run.
    from durable_exec.testing.conformance import main as _main

    sys.exit(_main())
