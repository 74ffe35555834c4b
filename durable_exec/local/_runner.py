"""Running workflows on the embedded engine: the API for scripts.

:class:`LocalEngine` registers handlers as functions, starts executions,
and drives each one to its end: it invokes the handler whenever an
invocation is owed, sleeps (or skips) to the next timer, and stops when
the execution ends or waits only for the outside world.

An invocation runs in this process, or in a fresh subprocess. A
subprocess that dies mid-invocation leaves ``InvocationCompleted`` with
``Runtime.ExitError`` and is invoked again, as on Lambda; so does a
process of ours that died while it ran an invocation in this process,
once the execution is resumed.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import importlib
import importlib.util
import io
import itertools
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import attrs

from ..errors import (
    ExecutionNotFoundError,
    ValidationError,
    error_object_from_exception,
)
from ..handler import DurableHandler
from ..wire import ErrorObject, ExecutionStatus, Operation, from_wire, to_wire
from ._client import LocalServiceClient
from ._clock import Clock, RealClock, SkippingClock
from ._engine import (
    DEFAULT_EXECUTION_TIMEOUT,
    Engine,
    InvocationOutcome,
)
from ._errors import ServiceError
from ._store import ExecutionRecord, MemoryStore, SqliteStore, Store

__all__ = [
    "DEFAULT_STORE_PATH",
    "ExecutionResult",
    "ExecutionSummary",
    "LocalEngine",
    "capture_logs",
    "load_handler",
]

logger = logging.getLogger(__name__)

DEFAULT_STORE_PATH = Path(".durable_exec") / "executions.sqlite3"

IN_PROCESS = "in_process"
SUBPROCESS = "subprocess"


@attrs.frozen
class ExecutionResult:
    """Where an execution stands: status, outcome and history.

    Attributes:
        arn: the execution's ARN.
        name: its name.
        function_name: the function it runs.
        status: RUNNING while it waits for something, else how it ended.
        result_payload: the result as checkpointed text, if it succeeded.
        error: the error, if it failed, timed out or was stopped.
        history: the events, in the shape of GetDurableExecutionHistory.
        operations: the operations, in start order.
        invocations: how many invocations it has had.
    """

    arn: str
    name: str
    function_name: str
    status: ExecutionStatus
    result_payload: str | None
    error: ErrorObject | None
    history: tuple[dict[str, Any], ...]
    operations: tuple[Operation, ...]
    invocations: int

    @property
    def result(self) -> Any:
        """The result, JSON-decoded; None when there is none."""
        if not self.result_payload:
            return None
        return json.loads(self.result_payload)

    @property
    def succeeded(self) -> bool:
        return self.status is ExecutionStatus.SUCCEEDED

    def operation(self, name: str) -> Operation:
        """The first operation called ``name``."""
        for operation in self.operations:
            if operation.name == name:
                return operation
        raise KeyError(f"no operation is named {name!r}")


@attrs.frozen
class ExecutionSummary:
    arn: str
    name: str
    function_name: str
    status: ExecutionStatus
    start: Any
    end: Any


@attrs.define
class _Watcher:
    """An observer of history events, and how many of each execution's
    events it has been shown."""

    observer: Callable[[str, Mapping[str, Any]], None]
    seen: dict[str, int] = attrs.field(factory=dict)


@attrs.frozen
class _Function:
    handler: DurableHandler[Any, Any] | Callable[[Any, Any], Any]
    ref: str | None
    timeout_seconds: int

    @property
    def durable(self) -> bool:
        return isinstance(self.handler, DurableHandler)


def load_handler(ref: str) -> DurableHandler[Any, Any]:
    """Load ``FILE_OR_MODULE:ATTRIBUTE`` as a durable handler.

    ``FILE_OR_MODULE`` is a path to a ``.py`` file or a dotted module name.
    """
    target, sep, attribute = ref.rpartition(":")
    if not sep or not target or not attribute:
        raise ValidationError(f"handler must be FILE_OR_MODULE:HANDLER (got {ref!r})")
    if target.endswith(".py") or os.sep in target or "/" in target:
        path = Path(target)
        if not path.is_file():
            raise ValidationError(f"handler file {target!r} does not exist")
        module_name = "_durable_handler_" + re.sub(r"\W", "_", str(path.resolve()))
        module = sys.modules.get(module_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise ValidationError(f"cannot load handler file {target!r}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            # Let the file import its neighbours, as `python FILE` would.
            sys.path.insert(0, str(path.resolve().parent))
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[module_name]
                raise
            finally:
                sys.path.remove(str(path.resolve().parent))
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as error:
            raise ValidationError(
                f"cannot import handler module {target!r}: {error}"
            ) from error
    try:
        handler = getattr(module, attribute)
    except AttributeError:
        raise ValidationError(f"{target!r} has no attribute {attribute!r}") from None
    if not isinstance(handler, DurableHandler):
        raise ValidationError(
            f"{ref!r} is not a durable handler; decorate it with @durable_execution"
        )
    return handler


def _absolute_ref(ref: str) -> str:
    """``ref`` with a file path made absolute, so that a subprocess finds
    it whatever its working directory."""
    target, _, attribute = ref.rpartition(":")
    if target.endswith(".py") or os.sep in target or "/" in target:
        return f"{Path(target).resolve()}:{attribute}"
    return ref


def _ref_of(handler: DurableHandler[Any, Any]) -> str | None:
    """A FILE:ATTRIBUTE reference a subprocess can load ``handler`` by."""
    module = sys.modules.get(getattr(handler, "__module__", "") or "")
    qualname = getattr(handler, "__qualname__", None)
    path = getattr(module, "__file__", None)
    if not path or not qualname or "." in qualname or "<" in qualname:
        return None
    if getattr(module, qualname, None) is not handler:
        return None
    return f"{path}:{qualname}"


def function_name_for(handler: Any) -> str:
    """A function name for a handler registered without one."""
    name = getattr(handler, "__name__", None) or "handler"
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)[:64]


class LocalEngine:
    """Runs durable handlers on one machine, to the end.

    Args:
        store: a :class:`Store`, a SQLite file path, or ``":memory:"``;
            default ``.durable_exec/executions.sqlite3`` under the current
            directory.
        clock: the engine's clock; default the wall clock, or a
            :class:`SkippingClock` with ``skip_time``.
        skip_time: jump over waits and delays instead of sleeping.
        invocation_mode: ``"in_process"`` (default) or ``"subprocess"``,
            a fresh Python process per invocation (needs a store on disk).
        page_size: operations per page of state, as the service pages.
    """

    def __init__(
        self,
        store: Store | str | os.PathLike[str] | None = None,
        *,
        clock: Clock | None = None,
        skip_time: bool = False,
        invocation_mode: str = IN_PROCESS,
        page_size: int = 1000,
    ) -> None:
        if store is None:
            store = SqliteStore(DEFAULT_STORE_PATH)
        elif isinstance(store, str) and store == ":memory:":
            store = MemoryStore()
        elif isinstance(store, (str, os.PathLike)):
            store = SqliteStore(store)
        if clock is None:
            clock = SkippingClock() if skip_time else RealClock()
        if invocation_mode not in (IN_PROCESS, SUBPROCESS):
            raise ValidationError(
                f"invocation_mode must be {IN_PROCESS!r} or {SUBPROCESS!r} "
                f"(got {invocation_mode!r})"
            )
        if invocation_mode == SUBPROCESS and not isinstance(store, SqliteStore):
            raise ValidationError(
                "invocation_mode 'subprocess' needs a store on disk; "
                "give a SQLite path as store"
            )
        if not isinstance(page_size, int) or not 1 <= page_size <= 1000:
            raise ValidationError(f"page_size must be 1 to 1000 (got {page_size!r})")
        self.engine = Engine(store, clock=clock, page_size=page_size)
        self.clock = clock
        self.invocation_mode = invocation_mode
        self.client = LocalServiceClient(self.engine)
        self._functions: dict[str, _Function] = {}
        self.engine.function_exists = self._functions.__contains__
        self.engine.execution_timeout_of = self._execution_timeout_of
        self._scheduled: list[tuple[datetime.datetime, int, Callable[[], None]]] = []
        self._schedule_order = itertools.count()
        self._responders: list[tuple[str | None, Callable[[str], None], float]] = []
        self._watchers: list[_Watcher] = []
        # Whether drive() jumps over a callback's timeouts as over any
        # other timer; by default when the clock skips. A server whose
        # callbacks its clients answer sets it False: the clients get the
        # time the timeouts give them.
        self.skip_callback_timeouts = isinstance(clock, SkippingClock)
        # Set by the conformance harness to see each invocation's log file.
        self.log_file: Path | None = None

    @classmethod
    def in_memory(
        cls, *, skip_time: bool = True, clock: Clock | None = None
    ) -> LocalEngine:
        """An engine that keeps nothing on disk; skips time by default."""
        return cls(":memory:", skip_time=skip_time, clock=clock)

    @property
    def store(self) -> Store:
        return self.engine.store

    def close(self) -> None:
        self.engine.store.close()

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- functions -----------------------------------------------------------

    def register(
        self,
        function_name: str,
        handler: DurableHandler[Any, Any] | Callable[[Any, Any], Any] | str,
        *,
        execution_timeout: int = DEFAULT_EXECUTION_TIMEOUT,
    ) -> None:
        """Make ``handler`` the code of ``function_name``.

        A durable handler runs as a durable execution. Any other callable
        is a plain Lambda function, ``handler(event, context)``: as the
        target of a chained invoke it is called once, and its return value
        (or exception) is the invoke's outcome.

        Args:
            function_name: 1 to 64 letters, digits, ``-`` or ``_``.
            handler: a durable handler, a plain function, or
                ``FILE_OR_MODULE:HANDLER``.
            execution_timeout: seconds an execution of it may take.
        """
        ref: str | None
        loaded: DurableHandler[Any, Any] | Callable[[Any, Any], Any]
        if isinstance(handler, str):
            loaded = load_handler(handler)
            ref = _absolute_ref(handler)
        elif isinstance(handler, DurableHandler):
            loaded = handler
            ref = _ref_of(handler)
        elif callable(handler):
            loaded = handler
            ref = None
        else:
            raise ValidationError(
                "handler must be a durable handler, a function or "
                f"FILE_OR_MODULE:HANDLER (got {handler!r})"
            )
        if not isinstance(function_name, str) or not re.fullmatch(
            r"[A-Za-z0-9_-]{1,64}", function_name
        ):
            raise ValidationError(
                "function_name must be 1 to 64 letters, digits, '-' or '_' "
                f"(got {function_name!r})"
            )
        if (
            self.invocation_mode == SUBPROCESS
            and ref is None
            and isinstance(loaded, DurableHandler)
        ):
            raise ValidationError(
                f"handler {handler!r} cannot be loaded by a subprocess; "
                "define it at the top level of a module, or register it "
                "as 'FILE_OR_MODULE:HANDLER'"
            )
        self._functions[function_name] = _Function(loaded, ref, execution_timeout)

    def _execution_timeout_of(self, function_name: str) -> int:
        function = self._functions.get(function_name)
        if function is None:
            return DEFAULT_EXECUTION_TIMEOUT
        return function.timeout_seconds

    def _function_of(self, target: DurableHandler[Any, Any] | str) -> str:
        if isinstance(target, DurableHandler):
            for name, function in self._functions.items():
                if function.handler is target:
                    return name
            name = function_name_for(target)
            self.register(name, target)
            return name
        if target not in self._functions:
            raise ValidationError(
                f"no function named {target!r} is registered; registered: "
                f"{', '.join(sorted(self._functions)) or 'none'}"
            )
        return target

    # -- executions ----------------------------------------------------------

    def start(
        self,
        function: DurableHandler[Any, Any] | str,
        input: Any = None,
        *,
        name: str | None = None,
    ) -> str:
        """Create an execution and return its ARN; nothing runs yet.

        With a ``name`` that exists for the function, the existing
        execution's ARN is returned.
        """
        function_name = self._function_of(function)
        try:
            payload = json.dumps(input)
        except (TypeError, ValueError) as error:
            raise ValidationError(
                f"input must be JSON-serializable (got {input!r}: {error})"
            ) from None
        try:
            return self.engine.create_execution(
                function_name,
                payload,
                name=name,
                timeout_seconds=self._functions[function_name].timeout_seconds,
                handler_ref=self._functions[function_name].ref,
            )
        except ServiceError as error:
            raise ValidationError(error.message) from None

    def run(
        self,
        function: DurableHandler[Any, Any] | str,
        input: Any = None,
        *,
        name: str | None = None,
        on_event: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> ExecutionResult:
        """Start (or resume, by name) an execution and drive it.

        Returns when the execution has ended, or waits only for the
        outside world (status RUNNING).
        """
        arn = self.start(function, input, name=name)
        return self.drive(arn, on_event=on_event)

    def resume(
        self,
        name_or_arn: str,
        *,
        on_event: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> ExecutionResult:
        """Drive an existing execution on, from wherever it stands.

        Its function need not be registered here if it was started from
        a handler this process can load again (a file or module).
        """
        arn = self.resolve(name_or_arn)
        record = self.engine.record(arn)
        if record.function_name not in self._functions and record.handler_ref:
            self.register(
                record.function_name,
                record.handler_ref,
                execution_timeout=record.timeout_seconds,
            )
        return self.drive(arn, on_event=on_event)

    # -- the outside world -------------------------------------------------------

    def schedule(self, delay_seconds: float, action: Callable[[], None]) -> None:
        """Run ``action`` once ``delay_seconds`` of engine time have passed.

        The engine runs it while it drives executions, in time order with
        their timers; with a skipping clock, the delay is skipped too. Use
        it to answer callbacks, or to stand in for any system outside.
        """
        if (
            isinstance(delay_seconds, bool)
            or not isinstance(delay_seconds, (int, float))
            or delay_seconds < 0
        ):
            raise ValidationError(
                f"delay_seconds must be a number >= 0 (got {delay_seconds!r})"
            )
        moment = self.clock.now() + datetime.timedelta(seconds=delay_seconds)
        self._scheduled.append((moment, next(self._schedule_order), action))

    def on_callback(
        self,
        name: str | None,
        respond: Callable[[str], None],
        *,
        delay_seconds: float = 0,
    ) -> None:
        """Answer callbacks as a system outside would.

        When a callback whose name matches ``name`` (None: any callback)
        starts, ``respond(callback_id)`` runs ``delay_seconds`` of engine
        time later, once per callback. ``respond`` usually calls
        :meth:`send_callback_success` or :meth:`send_callback_failure`.
        """
        if not callable(respond):
            raise ValidationError(f"respond must be callable (got {respond!r})")
        if not self._responders:
            self.watch(self._answer_callback)
        self._responders.append((name, respond, delay_seconds))

    def watch(self, observer: Callable[[str, Mapping[str, Any]], None]) -> None:
        """Show ``observer(arn, event)`` each history event, once, in order.

        The events are those of every execution this engine drives and of
        the targets of their chained invokes, from the first event on,
        including events recorded before the observer was added. They are
        shown between invocations: what an invocation records is seen
        when it ends, before the engine goes on.

        An observer stands in for a system outside that reacts to what
        the execution does: it may :meth:`schedule` actions or answer
        callbacks, and must not drive an execution itself.
        """
        if not callable(observer):
            raise ValidationError(f"observer must be callable (got {observer!r})")
        self._watchers.append(_Watcher(observer))

    def _show_events(self, arn: str) -> None:
        if not self._watchers:
            return
        for member in self._family(arn, running_only=False):
            events = self.engine.record(member).events
            for watcher in self._watchers:
                seen = watcher.seen.get(member, 0)
                watcher.seen[member] = len(events)
                for event in events[seen:]:
                    watcher.observer(member, event)

    def _answer_callback(self, arn: str, event: Mapping[str, Any]) -> None:
        """The watcher behind :meth:`on_callback`: the first responder
        whose name matches answers, once per callback."""
        if event["EventType"] != "CallbackStarted":
            return
        if self.engine.record(arn).terminal:
            # Its callbacks closed with it; there is nothing to answer.
            return
        callback_id = event["CallbackStartedDetails"]["CallbackId"]
        for name, respond, delay in self._responders:
            if name is None or name == event.get("Name"):
                # The delay counts from the callback's start, not from the
                # end of the invocation that started it.
                started = event["EventTimestamp"]
                wait = delay - (self.clock.now() - started).total_seconds()
                self.schedule(max(0.0, wait), functools.partial(respond, callback_id))
                return

    def send_callback_success(
        self, callback_id: str, result: str | bytes | None = None
    ) -> None:
        """Answer a callback with ``result``, its raw text (often JSON)."""
        self.engine.send_callback_success(callback_id, result)

    def send_callback_failure(
        self,
        callback_id: str,
        error: ErrorObject | Mapping[str, Any] | None = None,
    ) -> None:
        """Fail a callback with ``error``: an ErrorObject or its wire form
        (``ErrorType``, ``ErrorMessage``, ``ErrorData``, ``StackTrace``)."""
        if isinstance(error, Mapping):
            error = from_wire(error, ErrorObject)
        self.engine.send_callback_failure(callback_id, error)

    def send_callback_heartbeat(self, callback_id: str) -> None:
        """Tell a callback its answer is still coming."""
        self.engine.send_callback_heartbeat(callback_id)

    def resolve(self, name_or_arn: str) -> str:
        """The ARN of the execution with this ARN or name."""
        if name_or_arn.startswith("arn:"):
            try:
                self.engine.record(name_or_arn)
            except ServiceError:
                raise ExecutionNotFoundError(
                    f"no execution has the ARN {name_or_arn!r}"
                ) from None
            return name_or_arn
        arns = self.engine.find_arns(name=name_or_arn)
        if not arns:
            raise ExecutionNotFoundError(f"no execution is named {name_or_arn!r}")
        if len(arns) > 1:
            raise ExecutionNotFoundError(
                f"{len(arns)} executions are named {name_or_arn!r}; give an "
                f"ARN: {', '.join(arns)}"
            )
        return arns[0]

    def describe(self, name_or_arn: str) -> ExecutionResult:
        arn = self.resolve(name_or_arn)
        return _result_of(self.engine.record(arn))

    def history(self, name_or_arn: str) -> list[dict[str, Any]]:
        return self.engine.history(self.resolve(name_or_arn))

    def list_executions(
        self, function_name: str | None = None
    ) -> list[ExecutionSummary]:
        summaries = []
        for arn in self.engine.find_arns(function_name=function_name):
            record = self.engine.record(arn)
            summaries.append(
                ExecutionSummary(
                    record.arn,
                    record.name,
                    record.function_name,
                    record.status,
                    record.start,
                    record.end,
                )
            )
        return summaries

    # -- driving ---------------------------------------------------------------

    def drive(
        self,
        arn: str,
        *,
        on_event: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> ExecutionResult:
        """Invoke and run timers until the execution ends or waits for the
        outside world.

        The targets of its chained invokes are driven along with it, and
        scheduled actions run when their time comes.
        """
        engine = self.engine
        engine.refresh(arn)
        record = engine.record(arn)
        reported = 0 if on_event is not None else len(record.events)
        self._reclaim(arn)

        while True:
            record = engine.record(arn)
            if on_event is not None:
                for event in record.events[reported:]:
                    on_event(event)
                reported = len(record.events)
            self._show_events(arn)
            if record.terminal:
                break

            # The earliest of: an execution's timer or owed invocation, and
            # an action scheduled from outside.
            candidates: list[tuple[datetime.datetime, int, str | None]] = []
            # With a real clock, waiting out a callback's timeout is waiting
            # for the outside world: drive returns, and a later resume (or
            # the answer) picks the execution up.
            skipping = self.skip_callback_timeouts
            for member in self._family(arn):
                due = engine.next_due(member, callback_timeouts=skipping)
                if due is not None:
                    candidates.append((due, 1, member))
            if self._scheduled:
                moment = min(self._scheduled)[0]
                candidates.append((moment, 0, None))
            if not candidates:
                break
            moment, _, chosen = min(candidates, key=lambda c: (c[0], c[1]))
            self.clock.sleep_until(moment)

            if chosen is None:
                self._scheduled.sort()
                _, _, action = self._scheduled.pop(0)
                action()
                continue
            engine.fire_due(chosen)
            target = engine.record(chosen)
            if (
                not target.terminal
                and target.owed
                and (target.owed_at is None or target.owed_at <= self.clock.now())
            ):
                self._invoke(target)
        return _result_of(engine.record(arn))

    def _reclaim(self, arn: str) -> None:
        """Close an invocation left in flight by a process that died."""
        record = self.engine.record(arn)
        if record.invocation_id is None:
            return
        if not self.engine.invocation_orphaned(arn):
            raise ValidationError(
                f"execution {arn} is being run by process {record.invocation_owner}"
            )
        self.engine.abandon_invocation(arn, "the process running the invocation exited")

    def _family(self, arn: str, *, running_only: bool = True) -> list[str]:
        """``arn`` and the targets of its chained invokes, theirs and so
        on; only the running ones unless ``running_only`` is False."""
        members = [arn]
        for member in members:
            record = self.engine.record(member)
            for event in record.events:
                if event["EventType"] != "ChainedInvokeStarted":
                    continue
                child = event["ChainedInvokeStartedDetails"].get("DurableExecutionArn")
                if child and child not in members:
                    self.engine.refresh(child)
                    ended = self.engine.record(child).terminal
                    if not (running_only and ended):
                        members.append(child)
        return members

    def _invoke(self, record: ExecutionRecord) -> None:
        function = self._functions.get(record.function_name)
        if function is None:
            raise ValidationError(
                f"execution {record.arn} runs function "
                f"{record.function_name!r}, which is not registered here"
            )
        envelope = self.engine.begin_invocation(record.arn)
        if not function.durable:
            outcome = self._invoke_plain(function, record)
        elif self.invocation_mode == SUBPROCESS:
            outcome = self._invoke_subprocess(function, envelope)
            self.engine.refresh(record.arn)
        else:
            outcome = self._invoke_in_process(function, envelope)
        self.engine.end_invocation(record.arn, outcome)

    def _invoke_plain(
        self, function: _Function, record: ExecutionRecord
    ) -> InvocationOutcome:
        """Call a plain function once; its return value is the result."""
        try:
            event = json.loads(record.input_payload) if record.input_payload else None
            result = function.handler(event, None)
            payload = json.dumps(result)
        except Exception as error:
            recorded = error_object_from_exception(error)
            return InvocationOutcome(
                output={"Status": "FAILED", "Error": to_wire(recorded)}
            )
        return InvocationOutcome(output={"Status": "SUCCEEDED", "Result": payload})

    def _invoke_in_process(
        self, function: _Function, envelope: dict[str, Any]
    ) -> InvocationOutcome:
        handler = function.handler
        assert isinstance(handler, DurableHandler)
        try:
            with self._capture_logs():
                output = handler.invoke(envelope, None, client=self.client)
        except Exception as error:
            logger.warning(
                "invocation of %s raised %s: %s",
                envelope["DurableExecutionArn"],
                type(error).__name__,
                error,
            )
            return InvocationOutcome(
                error=ErrorObject(
                    error_type=type(error).__name__, error_message=str(error)
                )
            )
        return InvocationOutcome(output=output)

    @contextmanager
    def _capture_logs(self) -> Iterator[None]:
        if self.log_file is None:
            yield
            return
        with capture_logs(self.log_file):
            yield

    def _invoke_subprocess(
        self, function: _Function, envelope: dict[str, Any]
    ) -> InvocationOutcome:
        store = self.engine.store
        assert isinstance(store, SqliteStore)
        assert function.ref is not None
        with tempfile.TemporaryDirectory(prefix="durable-exec-") as scratch:
            output_path = Path(scratch) / "output.json"
            job = {
                "store": str(store.path),
                "handler": function.ref,
                "event": envelope,
                "clock_offset": (
                    self.clock.offset_seconds
                    if isinstance(self.clock, SkippingClock)
                    else None
                ),
                "page_size": self.engine.page_size,
                "functions": {
                    name: function.timeout_seconds
                    for name, function in sorted(self._functions.items())
                },
                "output": str(output_path),
                "log_file": str(self.log_file) if self.log_file else None,
            }
            process = subprocess.run(
                [sys.executable, "-m", "durable_exec.local._worker"],
                input=json.dumps(job),
                text=True,
                capture_output=True,
                cwd=os.getcwd(),
            )
            # What the invocation printed belongs to the user, as a Lambda
            # function's output does to its log.
            for text in (process.stdout, process.stderr):
                if text:
                    sys.stderr.write(text)
            if process.returncode == 0 and output_path.exists():
                result = json.loads(output_path.read_text())
                if "output" in result:
                    return InvocationOutcome(output=result["output"])
                return InvocationOutcome(
                    error=ErrorObject(
                        error_type=result["error"]["ErrorType"],
                        error_message=result["error"]["ErrorMessage"],
                    )
                )
            return InvocationOutcome(
                error=ErrorObject(
                    error_type="Runtime.ExitError",
                    error_message=(
                        "the invocation's process exited with status "
                        f"{process.returncode} before it answered"
                    ),
                )
            )


@contextmanager
def capture_logs(log_file: Path) -> Iterator[None]:
    """Append an invocation's JSON log lines to ``log_file``, in order.

    Two sources, as a Lambda function's log has them: records of the
    workflow logger (``durable_exec.workflow``, at INFO and above), as
    JSON; and each line printed to ``sys.stdout`` that is a JSON object,
    such as a plugin's. Printed text still reaches the real stdout too.
    Both go through one file stream under one lock, so the file keeps the
    order in which they were written, from any thread.
    """
    from .._logger import WORKFLOW_LOGGER_NAME, JsonLogFormatter

    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(JsonLogFormatter())
    handler.setLevel(logging.DEBUG)
    workflow = logging.getLogger(WORKFLOW_LOGGER_NAME)
    previous = workflow.level
    workflow.addHandler(handler)
    if workflow.getEffectiveLevel() > logging.INFO:
        workflow.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(_JsonLineTee(sys.stdout, handler)):
            yield
    finally:
        workflow.removeHandler(handler)
        workflow.setLevel(previous)
        handler.close()


class _JsonLineTee(io.TextIOBase):
    """Stands in for stdout: passes text through, and copies each line
    that is a JSON object to a log handler's stream.

    A line counts once its newline is written; each thread keeps its own
    unfinished line, so prints from branch threads do not mix.
    """

    def __init__(self, passthrough: TextIO, sink: logging.FileHandler) -> None:
        self._passthrough = passthrough
        self._sink = sink
        self._partial = threading.local()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._passthrough.write(text)
        *lines, rest = (getattr(self._partial, "text", "") + text).split("\n")
        self._partial.text = rest
        for line in lines:
            self._copy(line.strip())
        return len(text)

    def flush(self) -> None:
        self._passthrough.flush()

    def isatty(self) -> bool:
        return self._passthrough.isatty()

    def fileno(self) -> int:
        return self._passthrough.fileno()

    def _copy(self, line: str) -> None:
        if not (line.startswith("{") and line.endswith("}")):
            return
        try:
            json.loads(line)
        except ValueError:
            return
        # The handler's own lock orders this line among the log records.
        self._sink.acquire()
        try:
            stream = self._sink.stream
            if stream is not None:  # None once the handler is closed
                stream.write(line + "\n")
                stream.flush()
        finally:
            self._sink.release()


def _result_of(record: ExecutionRecord) -> ExecutionResult:
    return ExecutionResult(
        arn=record.arn,
        name=record.name,
        function_name=record.function_name,
        status=record.status,
        result_payload=record.result,
        error=record.error,
        history=tuple(dict(event) for event in record.events),
        operations=tuple(record.operations.values()),
        invocations=record.invocations,
    )
