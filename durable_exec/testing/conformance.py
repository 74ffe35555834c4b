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

Invoke targets
--------------
A handler that invokes another function names it; the function is
declared in a handler file with :func:`invoke_target`, on a plain
function ``(event, context)`` or on a durable handler::

    @invoke_target("echo")
    def echo(event: Any, context: Any) -> Any:
        return event

Every target of the loaded files is registered on the engine of every
requirement, so any handler may invoke any of them.

The outside world
-----------------
A requirement's ``CallbackActions`` are played while the execution runs,
in engine time: each ``CallbackStarted`` event, in history order, takes
the first unused action whose ``CallbackName`` is its name, ``'*'``, or a
``${/regex/}`` found in its name. A ``heartbeat`` leaves the callback
taking actions, so a callback takes heartbeats until a ``success`` or
``failure``. Each action acts ``Delay`` seconds after the one before it
on the same callback (the first, after the callback started). A
``success`` sends the JSON text of its ``Payload`` (no result without
one); a ``failure`` sends the ``ErrorType``, ``ErrorMessage``,
``ErrorData`` and ``StackTrace`` of its ``Payload``.

As in the service's own validator, a requirement fails when a callback
starts that no action is left for (in a file that has actions), and when
an action a callback took is refused (its callback already closed, say)
or still due when the execution ends.

The command line is ``durable-exec conformance`` (or ``python -m
durable_exec.testing.conformance``); see :func:`main`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
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
from ..local import ExecutionResult, LocalEngine, ServiceError
from ._requirements import (
    _WHOLE_REGEX,
    Requirement,
    load_requirements,
    match_history,
    match_logs,
    match_result,
)

__all__ = [
    "SCRATCH_ENV",
    "HandlerRegistration",
    "InvokeTarget",
    "RequirementReport",
    "first_run",
    "invoke_target",
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

# Where @requirement and @invoke_target leave their marks, read by
# load_handlers.
_MARKS_ATTRIBUTE = "_conformance_requirements"
_TARGETS_ATTRIBUTE = "_conformance_invoke_targets"

_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_OPERATIONS = ("success", "failure", "heartbeat")
_ERROR_KEYS = ("ErrorType", "ErrorMessage", "ErrorData", "StackTrace")

F = TypeVar("F", bound=Callable[..., Any])


@attrs.frozen
class _Mark:
    requirement_id: str
    crash: bool


@attrs.frozen
class InvokeTarget:
    """A function that handlers may invoke, declared with
    :func:`invoke_target`.

    Attributes:
        name: The function name handlers invoke it by.
        function: A durable handler, or a plain ``(event, context)``
            function.
        ref: ``FILE:ATTRIBUTE``, where it was found.
        execution_timeout: Seconds an execution of a durable target may
            take; None for the engine's default.
    """

    name: str
    function: Callable[..., Any]
    ref: str
    execution_timeout: int | None = None


@attrs.frozen
class HandlerRegistration:
    """A handler declared to serve one requirement.

    Attributes:
        requirement_id: The requirement's id, such as ``"1-18"``.
        handler: The durable handler.
        ref: ``FILE:ATTRIBUTE``, how a subprocess loads the handler.
        crash: Whether the handler ends its own process, so that each
            invocation must run in a subprocess.
        targets: The invoke targets registered beside the handler: every
            one declared in the files loaded with it.
    """

    requirement_id: str
    handler: DurableHandler[Any, Any]
    ref: str
    crash: bool = False
    targets: tuple[InvokeTarget, ...] = ()

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


def requirement(requirement_id: str, *, crash: bool = False) -> Callable[[H], H]:
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
            f"requirement_id must be a non-empty string (got {requirement_id!r})"
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


def invoke_target(
    function_name: str, *, execution_timeout: int | None = None
) -> Callable[[F], F]:
    """Declare a function that conformance handlers may invoke.

    The decorated object is a durable handler (put this above
    ``@durable_execution``) or a plain ``(event, context)`` function,
    whose return value or exception is the invoke's outcome. Stack it to
    register one function under several names.

    Args:
        function_name: The name handlers pass to ``context.invoke``: 1 to
            64 letters, digits, ``-`` or ``_``.
        execution_timeout: Seconds an execution of a durable target may
            take before it times out (and the invoke with it). Default
            None: the engine's default, a year.

    Raises:
        ValueError: If the name is not a valid function name, or the
            timeout not a whole number of seconds >= 1.
        TypeError: If the decorated object is not callable.
    """
    if not isinstance(function_name, str) or not _FUNCTION_NAME.fullmatch(
        function_name
    ):
        raise ValueError(
            "function_name must be 1 to 64 letters, digits, '-' or '_' "
            f"(got {function_name!r})"
        )
    if execution_timeout is not None and (
        isinstance(execution_timeout, bool)
        or not isinstance(execution_timeout, int)
        or execution_timeout < 1
    ):
        raise ValueError(
            "execution_timeout must be a whole number of seconds >= 1 "
            f"(got {execution_timeout!r})"
        )

    def mark(function: F) -> F:
        if not callable(function):
            raise TypeError(
                f"@invoke_target({function_name!r}) needs a function or a "
                f"durable handler (got {function!r})"
            )
        marks = getattr(function, _TARGETS_ATTRIBUTE, ())
        entry = (function_name, execution_timeout)
        setattr(function, _TARGETS_ATTRIBUTE, (*marks, entry))
        return function

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
        Each requirement id with its registration, which carries every
        invoke target the files declare.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If two handlers declare the same requirement id, or
            two functions the same invoke target.
    """
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.glob("*.py") if _is_handler_file(p))
    elif root.is_file():
        files = [root]
    else:
        raise FileNotFoundError(f"handlers path {str(root)!r} does not exist")

    registrations: dict[str, HandlerRegistration] = {}
    targets: dict[str, InvokeTarget] = {}
    for file in files:
        module = _load_module(file.resolve())
        seen: set[int] = set()
        for attribute, value in vars(module).items():
            for target_name, timeout in _target_marks(value):
                target = InvokeTarget(
                    target_name,
                    value,
                    f"{file.resolve()}:{attribute}",
                    timeout,
                )
                other = targets.setdefault(target_name, target)
                if other.function is not value:
                    raise ValueError(
                        f"invoke target {target_name!r} is declared by both "
                        f"{other.ref} and {target.ref}"
                    )
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
    found = tuple(targets[name] for name in sorted(targets))
    return {
        requirement_id: attrs.evolve(registration, targets=found)
        for requirement_id, registration in registrations.items()
    }


def _target_marks(value: Any) -> tuple[tuple[str, int | None], ...]:
    """The (name, execution timeout) marks @invoke_target left on
    ``value``; none for anything else."""
    try:
        marks = getattr(value, _TARGETS_ATTRIBUTE, ())
    except Exception:  # noqa: BLE001 - a module attribute's odd getattr
        return ()
    return marks if isinstance(marks, tuple) else ()


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
    over_http: bool = False,
) -> RequirementReport:
    """Run one requirement's handler and check the execution.

    The handler runs on a fresh engine kept in ``workdir`` (SQLite, a
    skipping clock; in a subprocess per invocation for a crash handler),
    with ``requirement.input`` as its input. Then the status and result,
    the history and the log lines are matched, sharing one set of
    ``${NAME}`` bindings. The log lines are those of the workflow logger
    and every JSON object an invocation printed to stdout (a plugin's
    records, say), in the order they were written.

    The file's ``CallbackActions`` answer its callbacks in engine time,
    and every invoke target of the registration is registered beside the
    handler (see the module's notes).

    An ``AsyncInvoke`` requirement without ``ExpectedResult`` passes on
    its history alone: the execution may still wait for the outside
    world, or have finished because the skipping clock got there first.

    Args:
        requirement: The requirement to check.
        handler_registration: Its handler; ``None`` reports it missing.
        workdir: A folder of its own for the store, log and scratch files.
        over_http: serve the engine over HTTP and have the SDK reach it
            through boto3, as it reaches the service (crash handlers, which
            run in a subprocess on the store, excepted).

    Returns:
        The report; it never raises for a handler that misbehaves.
    """
    if handler_registration is None:
        return RequirementReport(
            requirement.id,
            "missing",
            [f"no handler is registered for requirement {requirement.id}"],
        )
    problems = _check_actions(requirement.callback_actions)
    if problems:
        return RequirementReport(requirement.id, "failed", problems)

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    log_file = workdir / "workflow.log.jsonl"
    world = _OutsideWorld(requirement.callback_actions)
    try:
        outcome = _execute(
            requirement, handler_registration, workdir, log_file, world, over_http
        )
    except Exception as error:  # noqa: BLE001 - reported, not raised
        return RequirementReport(
            requirement.id,
            "failed",
            [f"the execution did not run: {type(error).__name__}: {error}"]
            + world.errors()
            + world.notes(),
        )

    errors = _check(requirement, outcome, _read_log_lines(log_file))
    errors += world.errors()
    if errors:
        # Actions no callback took may be why.
        errors += world.notes()
    return RequirementReport(requirement.id, "failed" if errors else "passed", errors)


def _execute(
    requirement: Requirement,
    registration: HandlerRegistration,
    workdir: Path,
    log_file: Path,
    world: _OutsideWorld,
    over_http: bool = False,
) -> ExecutionResult:
    """Drive the handler's execution as far as it goes, with the outside
    world playing its part."""
    store = workdir / "executions.sqlite3"
    with contextlib.ExitStack() as stack:
        if over_http and not registration.crash:
            # The SDK's checkpoints go through boto3 and HTTP to the same
            # engine, as they would to the service.
            from ..local import DurableExecutionServer

            server = stack.enter_context(
                DurableExecutionServer(store=store, skip_time=True, sdk_over_http=True)
            )
            engine = server.local
            engine.skip_callback_timeouts = True
        else:
            mode = "subprocess" if registration.crash else "in_process"
            engine = stack.enter_context(
                LocalEngine(store, skip_time=True, invocation_mode=mode)
            )
        stack.enter_context(_environment(SCRATCH_ENV, str(workdir / "scratch")))
        return _drive_requirement(requirement, registration, engine, log_file, world)


def _drive_requirement(
    requirement: Requirement,
    registration: HandlerRegistration,
    engine: LocalEngine,
    log_file: Path,
    world: _OutsideWorld,
) -> ExecutionResult:
    """Register the handler and its invoke targets, and drive it."""
    engine.log_file = log_file
    # A subprocess loads the handler by reference; in this process the
    # loaded object serves.
    handler: DurableHandler[Any, Any] | str = (
        registration.ref if registration.crash else registration.handler
    )
    for target in registration.targets:
        if (
            target.name == registration.function_name
            and target.function is not registration.handler
        ):
            raise ValueError(
                f"invoke target {target.name!r} ({target.ref}) has the "
                f"function name of the handler {registration.ref}"
            )
        if target.execution_timeout is None:
            engine.register(target.name, target.function)
        else:
            engine.register(
                target.name,
                target.function,
                execution_timeout=target.execution_timeout,
            )
    engine.register(registration.function_name, handler)
    arn = engine.start(registration.function_name, requirement.input)
    world.attach(engine, arn)
    return engine.drive(arn)


def _check_actions(actions: Sequence[Mapping[str, Any]]) -> list[str]:
    """What is wrong with a file's CallbackActions; empty when nothing."""
    problems = []
    for index, action in enumerate(actions):
        where = f"CallbackActions[{index}]"
        if "CallbackName" not in action:
            problems.append(f"{where} has no CallbackName")
        operation = str(action.get("Operation")).lower()
        if operation not in _OPERATIONS:
            problems.append(
                f"{where}.Operation must be one of {', '.join(_OPERATIONS)} "
                f"(got {action.get('Operation')!r})"
            )
        if _delay_of(action) is None:
            problems.append(
                f"{where}.Delay must be a number of seconds >= 0 "
                f"(got {action.get('Delay')!r})"
            )
        payload = action.get("Payload")
        if operation == "failure" and not isinstance(payload, (Mapping, type(None))):
            problems.append(
                f"{where}.Payload of a failure must be a mapping of "
                f"ErrorType, ErrorMessage, ErrorData, StackTrace "
                f"(got {payload!r})"
            )
    return problems


def _delay_of(action: Mapping[str, Any]) -> float | None:
    """An action's Delay in seconds (0 when absent); None if invalid."""
    delay = action.get("Delay", 0)
    if isinstance(delay, bool):
        return None
    try:
        seconds = float(delay)
    except (TypeError, ValueError):
        return None
    return seconds if 0 <= seconds < float("inf") else None


class _OutsideWorld:
    """Plays a requirement's CallbackActions against an engine.

    It watches the history of the execution under test; each
    ``CallbackStarted`` takes its actions then (see the module's notes)
    and schedules them in engine time.
    """

    def __init__(self, actions: Sequence[Mapping[str, Any]]) -> None:
        # Checked by _check_actions; Operation and Delay made canonical.
        self._unused: list[tuple[int, Mapping[str, Any]]] = [
            (
                index,
                {
                    **action,
                    "Operation": str(action["Operation"]).lower(),
                    "Delay": _delay_of(action),
                },
            )
            for index, action in enumerate(actions)
        ]
        # Taken and scheduled, not yet done: by index.
        self._pending: dict[int, Mapping[str, Any]] = {}
        self._errors: list[str] = []
        self._engine: LocalEngine | None = None
        self._arn: str | None = None

    def attach(self, engine: LocalEngine, arn: str) -> None:
        """Play the actions on the callbacks of execution ``arn``."""
        self._engine = engine
        self._arn = arn
        if self._unused:
            engine.watch(self._observe)

    def errors(self) -> list[str]:
        """What went wrong in the outside world: a callback that no action
        was left for (in a file with actions), an action the engine
        refused, an action still due when the execution ended."""
        errors = list(self._errors)
        for index, action in sorted(self._pending.items()):
            errors.append(
                f"{_describe_action(index, action)} was still due when the "
                "execution ended"
            )
        return errors

    def notes(self) -> list[str]:
        """The actions no callback took."""
        notes = []
        for index, action in self._unused:
            notes.append(
                f"{_describe_action(index, action)} was never taken: no "
                "callback it names started"
            )
        return notes

    def _observe(self, arn: str, event: Mapping[str, Any]) -> None:
        # The callbacks of chained invoke targets are not in the history
        # the actions are written against.
        if arn != self._arn or event["EventType"] != "CallbackStarted":
            return
        assert self._engine is not None
        if self._engine.engine.record(arn).terminal:
            # Its callbacks closed with it: nothing will answer them.
            return
        name = event.get("Name")
        callback_id = event["CallbackStartedDetails"]["CallbackId"]
        # Engine time already spent since the callback started, in the
        # rest of the invocation that started it.
        started: datetime.datetime = event["EventTimestamp"]
        late = (self._engine.clock.now() - started).total_seconds()
        due = 0.0
        while True:
            taken = self._take(name)
            if taken is None:
                # Left open, a callback would stall the run: with actions
                # at all, every callback needs its answer.
                self._errors.append(
                    f"no CallbackActions entry is left for callback "
                    f"{name or '<anonymous>'!r} (event "
                    f"{event['EventId']})"
                )
                return
            index, action = taken
            self._pending[index] = action
            due += action["Delay"]
            self._engine.schedule(
                max(0.0, due - late),
                functools.partial(self._act, index, action, callback_id),
            )
            if action["Operation"] != "heartbeat":
                return

    def _take(self, name: str | None) -> tuple[int, Mapping[str, Any]] | None:
        """The first unused action for a callback named ``name``."""
        for position, (index, action) in enumerate(self._unused):
            if _names_callback(action["CallbackName"], name):
                del self._unused[position]
                return index, action
        return None

    def _act(self, index: int, action: Mapping[str, Any], callback_id: str) -> None:
        assert self._engine is not None
        del self._pending[index]
        operation = action["Operation"]
        try:
            if operation == "success":
                text = None
                if action.get("Payload") is not None:
                    text = json.dumps(action["Payload"])
                self._engine.send_callback_success(callback_id, text)
            elif operation == "failure":
                payload = action.get("Payload") or {}
                fields = {k: payload[k] for k in _ERROR_KEYS if k in payload}
                self._engine.send_callback_failure(callback_id, fields)
            else:
                self._engine.send_callback_heartbeat(callback_id)
        except ServiceError as error:
            self._errors.append(
                f"{_describe_action(index, action)} was refused: "
                f"{error.code}: {error.message}"
            )


def _describe_action(index: int, action: Mapping[str, Any]) -> str:
    return (
        f"CallbackActions[{index}] ({action.get('Operation')} for "
        f"{action.get('CallbackName')!r})"
    )


def _names_callback(pattern: Any, name: str | None) -> bool:
    """Whether an action's CallbackName names a callback called ``name``."""
    if pattern == "*":
        return True
    text = str(pattern)
    regex = _WHOLE_REGEX.fullmatch(text)
    if regex is not None:
        return re.search(regex.group("regex"), name or "") is not None
    return name is not None and text == name


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

    log_errors = match_logs(requirement.expected_logs, log_lines, outcome.arn, bindings)
    return result_errors + history_errors + log_errors


def run_conformance(
    requirements_dir: str | os.PathLike[str],
    handlers_path: str | os.PathLike[str],
    *,
    suites: Sequence[str] | None = None,
    over_http: bool = False,
) -> list[RequirementReport]:
    """Run every requirement of the chosen suites.

    Args:
        requirements_dir: The folder holding one folder per suite.
        handlers_path: A handler file or folder, for :func:`load_handlers`.
        suites: The suites to run; all when ``None``.
        over_http: as for :func:`run_requirement`.

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
                    over_http=over_http,
                )
            )
    return reports


def write_report(
    reports: Sequence[RequirementReport], path: str | os.PathLike[str]
) -> None:
    """Write ``{"results": [{"id", "status", "errors"}, ...]}`` as JSON."""
    document = {
        "results": [
            {"id": r.id, "status": r.status, "errors": list(r.errors)} for r in reports
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
        reports = run_conformance(args.requirements, args.handlers, suites=suites)
    except (OSError, ImportError, ValueError) as error:
        print(f"durable-exec conformance: {error}", file=sys.stderr)
        return 2

    for report in reports:
        print(f"{_LABELS[report.status]:<8}{report.id}")
        for message in report.errors:
            print(f"    {message}")
    counts = {status: sum(r.status == status for r in reports) for status in _LABELS}
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
