"""The test harness behind the ``durable`` pytest fixture.

:class:`DurableHarness` runs durable handlers to their end on an in-memory
engine whose clock stands still until the engine skips to its next timer,
so a workflow that waits for a week finishes at once and every timestamp
is the same on every run. It answers callbacks as a system outside would,
hosts the targets of chained invokes, and after each run replays the
execution from its own checkpoints to prove the handler deterministic
(see :mod:`durable_exec.testing._replay`).

:class:`DurableRun` is what a run returns: the status, result and error,
the history, and each operation as an :class:`OperationView`.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import attrs

from ..config import Duration, DurationLike
from ..errors import ValidationError, error_object_from_exception
from ..handler import DurableHandler
from ..local import (
    ExecutionResult,
    LocalEngine,
    ServiceError,
    SkippingClock,
    load_handler,
)
from ..local._runner import function_name_for
from ..wire import (
    ErrorObject,
    ExecutionStatus,
    Operation,
    OperationStatus,
    OperationSubType,
    OperationType,
    from_wire,
)
from ._replay import RecordedExecution, check_recorded, replay_history

__all__ = [
    "DEFAULT_START",
    "DurableHarness",
    "DurableRun",
    "OperationView",
]

logger = logging.getLogger(__name__)

DEFAULT_START = _dt.datetime(2025, 1, 1, tzinfo=_dt.UTC)
"""Where the harness's clock starts: a fixed moment, so that timestamps
are the same on every run."""

Handler = DurableHandler[Any, Any] | Callable[[Any, Any], Any]


class _StillClock(SkippingClock):
    """A skipping clock that stands still between skips.

    The engine sees the same time throughout an invocation, and time moves
    only to the next timer, so the timestamps of a run do not depend on how
    fast the machine is.
    """

    def __init__(self, start: _dt.datetime) -> None:
        super().__init__()
        self._start = start

    def now(self) -> _dt.datetime:
        return self._start + self._offset


# -- views ------------------------------------------------------------------------


def _decoded(payload: str | None) -> Any:
    if payload is None or payload == "":
        return None
    try:
        return json.loads(payload)
    except ValueError:
        return payload


def _type_of(value: OperationType | str | None) -> OperationType | None:
    if value is None or isinstance(value, OperationType):
        return value
    try:
        return OperationType(str(value).upper())
    except ValueError:
        allowed = ", ".join(t.value for t in OperationType)
        raise ValidationError(
            f"type must be an OperationType or one of {allowed} (got {value!r})"
        ) from None


@attrs.frozen(repr=False)
class OperationView:
    """One operation of a run, as a test reads it.

    Attributes:
        id: the operation's id (``"2"``, ``"3-1"`` inside a context).
        name: its name, or None.
        type: STEP, WAIT, CONTEXT, CALLBACK or CHAINED_INVOKE.
        sub_type: the user-level operation (``"Step"``, ``"Map"``, ...).
        status: SUCCEEDED, FAILED, STARTED, PENDING, ...
        parent_id: the id of the context it ran in, or None.
        attempts: for a step, the attempts it finished; None otherwise.
        result_payload: the checkpointed result text, if any.
        error: the recorded error, if any.
        start: when it started, engine time.
        end: when it ended, or None while it has not.
        callback_id: a callback's id, for answering it by hand.
        children: the operations inside a context, in start order.
    """

    id: str
    name: str | None
    type: OperationType
    sub_type: str | None
    status: OperationStatus
    parent_id: str | None
    attempts: int | None
    result_payload: str | None
    error: ErrorObject | None
    start: _dt.datetime
    end: _dt.datetime | None
    callback_id: str | None
    children: tuple[OperationView, ...]

    @property
    def result(self) -> Any:
        """The result, JSON-decoded (the text as is if it is not JSON)."""
        return _decoded(self.result_payload)

    @property
    def succeeded(self) -> bool:
        return self.status is OperationStatus.SUCCEEDED

    @property
    def duration(self) -> _dt.timedelta | None:
        """Engine time from start to end; None while it has not ended."""
        return None if self.end is None else self.end - self.start

    def __repr__(self) -> str:
        text = f"OperationView({_label(self)} {self.status.value}, id={self.id!r}"
        if self.attempts is not None:
            text += f", attempts={self.attempts}"
        return text + ")"


def _label(view: OperationView | Operation) -> str:
    text = view.type.value + (f"/{view.sub_type}" if view.sub_type else "")
    return text + (f" {view.name!r}" if view.name is not None else " (unnamed)")


def _views(operations: Sequence[Operation]) -> tuple[OperationView, ...]:
    """Views of every operation but the execution's own, in start order."""
    children: dict[str | None, list[Operation]] = {}
    for operation in operations:
        if operation.type is not OperationType.EXECUTION:
            children.setdefault(operation.parent_id, []).append(operation)
    built: dict[str, OperationView] = {}

    def build(operation: Operation) -> OperationView:
        view = OperationView(
            id=operation.id,
            name=operation.name,
            type=operation.type,
            sub_type=operation.sub_type,
            status=operation.status,
            parent_id=operation.parent_id,
            attempts=(
                (operation.step_details.attempt if operation.step_details else None)
                or 0
                if operation.type is OperationType.STEP
                else None
            ),
            result_payload=operation.result,
            error=operation.error,
            start=operation.start_timestamp,
            end=operation.end_timestamp,
            callback_id=(
                operation.callback_details.callback_id
                if operation.callback_details
                else None
            ),
            children=tuple(build(child) for child in children.get(operation.id, ())),
        )
        built[operation.id] = view
        return view

    for operation in operations:
        if operation.type is not OperationType.EXECUTION and operation.id not in built:
            build(operation)
    return tuple(
        built[op.id] for op in operations if op.type is not OperationType.EXECUTION
    )


class DurableRun:
    """The outcome of one run: status, result, history and operations.

    Attributes:
        execution: the engine's :class:`~durable_exec.local.ExecutionResult`.
        operations: every operation, in start order, as
            :class:`OperationView` objects (children of contexts included).
    """

    def __init__(self, execution: ExecutionResult) -> None:
        self.execution = execution
        self.operations = _views(execution.operations)

    @property
    def arn(self) -> str:
        return self.execution.arn

    @property
    def name(self) -> str:
        return self.execution.name

    @property
    def status(self) -> ExecutionStatus:
        """RUNNING while it waits for the outside world, else how it ended."""
        return self.execution.status

    @property
    def succeeded(self) -> bool:
        return self.execution.status is ExecutionStatus.SUCCEEDED

    @property
    def result(self) -> Any:
        """The execution's result, JSON-decoded; None without one."""
        return _decoded(self.execution.result_payload)

    @property
    def error(self) -> ErrorObject | None:
        """The error it failed, timed out or was stopped with."""
        return self.execution.error

    @property
    def history(self) -> tuple[dict[str, Any], ...]:
        """The history events, as GetDurableExecutionHistory lists them."""
        return self.execution.history

    @property
    def invocations(self) -> int:
        return self.execution.invocations

    # -- finding operations -----------------------------------------------------

    def operation(
        self, name: str, type: OperationType | str | None = None
    ) -> OperationView:
        """The first operation (in start order) called ``name``.

        Args:
            name: the operation's name.
            type: only operations of this type (``"STEP"``, ...).

        Raises:
            LookupError: there is none; the message lists the operations.
        """
        wanted = _type_of(type)
        for view in self.operations:
            if view.name == name and (wanted is None or view.type is wanted):
                return view
        kind = wanted.value if wanted is not None else "operation"
        raise LookupError(
            f"no {kind} is named {name!r}; the operations are:\n"
            + (self.describe_operations() or "  (none)")
        )

    def step(self, name: str) -> OperationView:
        """The step (or wait-for-condition) called ``name``."""
        return self.operation(name, OperationType.STEP)

    def wait(self, name: str) -> OperationView:
        """The wait called ``name``."""
        return self.operation(name, OperationType.WAIT)

    def context(self, name: str) -> OperationView:
        """The child context, parallel or map called ``name``."""
        return self.operation(name, OperationType.CONTEXT)

    def invoke(self, name: str) -> OperationView:
        """The chained invoke called ``name``."""
        return self.operation(name, OperationType.CHAINED_INVOKE)

    def callback(self, name: str) -> OperationView:
        """The callback called ``name``.

        For ``wait_for_callback(..., name=...)``, whose name is on the
        context around an unnamed callback, that callback.
        """
        for view in self.operations:
            if view.type is OperationType.CALLBACK and view.name == name:
                return view
            if (
                view.type is OperationType.CONTEXT
                and view.sub_type == OperationSubType.WAIT_FOR_CALLBACK
                and view.name == name
            ):
                for child in view.children:
                    if child.type is OperationType.CALLBACK:
                        return child
        return self.operation(name, OperationType.CALLBACK)

    # -- assertions -------------------------------------------------------------

    def assert_succeeded(self) -> None:
        """Fail the test unless the execution succeeded; the message shows
        the error, its stack trace and the operations."""
        __tracebackhide__ = True
        if not self.succeeded:
            raise AssertionError(self._explain("SUCCEEDED"))

    def assert_failed(
        self, error_type: str | None = None, *, match: str | None = None
    ) -> None:
        """Fail the test unless the execution failed.

        Args:
            error_type: the recorded error type it must have failed with.
            match: a regular expression the error message must contain.
        """
        __tracebackhide__ = True
        error = self.error or ErrorObject()
        if self.status is not ExecutionStatus.FAILED:
            raise AssertionError(self._explain("FAILED"))
        if error_type is not None and error.error_type != error_type:
            raise AssertionError(
                self._explain(f"FAILED with error type {error_type!r}")
            )
        if match is not None and not re.search(match, error.error_message or ""):
            raise AssertionError(
                self._explain(f"FAILED with a message matching {match!r}")
            )

    def _explain(self, expected: str) -> str:
        lines = [f"execution {self.name!r} is {self.status.value}; expected {expected}"]
        if self.error is not None:
            lines.append(f"error: {self.error.error_type}: {self.error.error_message}")
            lines.extend(f"  {line}" for line in self.error.stack_trace or ())
        lines.append("operations:")
        lines.append(self.describe_operations() or "  (none)")
        return "\n".join(lines)

    def describe_operations(self) -> str:
        """The operations as an indented table, one per line."""
        rows = []

        def add(view: OperationView, depth: int) -> None:
            detail = view.status.value
            if view.attempts is not None:
                detail += f", {view.attempts} attempt(s)"
            if view.error is not None:
                detail += f", {view.error.error_type}: {view.error.error_message}"
            rows.append(("  " * depth + view.id, _label(view), detail))
            for child in view.children:
                add(child, depth + 1)

        for view in self.operations:
            if view.parent_id is None:
                add(view, 0)
        if not rows:
            return ""
        widths = [max(len(row[i]) for row in rows) for i in range(2)]
        return "\n".join(
            f"  {row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2]}"
            for row in rows
        )

    def __repr__(self) -> str:
        return (
            f"DurableRun(name={self.name!r}, status={self.status.value}, "
            f"operations={len(self.operations)})"
        )


# -- answering callbacks ------------------------------------------------------------


@attrs.define
class _Responder:
    name: str | None
    result: str | None
    error: ErrorObject | None
    after: int
    heartbeat_every: int | None
    times: int | None
    used: int = 0

    def takes(self, names: set[str | None]) -> bool:
        if self.times is not None and self.used >= self.times:
            return False
        return self.name is None or self.name in names


def _error_object(fail: Any) -> ErrorObject:
    if isinstance(fail, ErrorObject):
        return fail
    if isinstance(fail, BaseException):
        return error_object_from_exception(fail)
    if isinstance(fail, Mapping):
        return from_wire(fail, ErrorObject)
    if isinstance(fail, str):
        return ErrorObject(error_message=fail)
    raise ValidationError(
        "fail must be an exception, an ErrorObject, its wire mapping or a "
        f"message (got {fail!r})"
    )


def _seconds(parameter: str, value: DurationLike) -> int:
    return Duration.coerce(value, parameter).seconds


class DurableHarness:
    """Runs durable handlers in a test; what the ``durable`` fixture gives.

    Each harness has its own in-memory engine and a clock that starts at
    :data:`DEFAULT_START` and moves only when the engine skips to its next
    timer: waits, retry delays and callback timeouts take no real time.

    Args:
        replay_check: replay every run from its own checkpoints and fail
            with :class:`~durable_exec.testing.ReplayMismatch` if the
            handler does not replay it exactly.
        start: where the clock starts.
        base_path: where relative history paths are looked for first
            (the fixture gives the test module's folder).
    """

    def __init__(
        self,
        *,
        replay_check: bool = True,
        start: _dt.datetime = DEFAULT_START,
        base_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.clock = _StillClock(start)
        self.engine = LocalEngine.in_memory(clock=self.clock)
        self.replay_check = replay_check
        self._base_path = Path(base_path) if base_path is not None else None
        self._functions: dict[str, Handler] = {}
        self._responders: list[_Responder] = []
        self._dispatching = False

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"DurableHarness(now={self.now.isoformat()}, "
            f"replay_check={self.replay_check})"
        )

    @property
    def now(self) -> _dt.datetime:
        """The engine's time."""
        return self.clock.now()

    # -- functions --------------------------------------------------------------

    def register_function(
        self,
        function_name: str,
        handler: Handler | str,
        *,
        execution_timeout: int | None = None,
    ) -> None:
        """Make ``handler`` the function ``function_name``, for
        ``context.invoke(function_name, ...)`` or :meth:`run`.

        Args:
            function_name: 1 to 64 letters, digits, ``-`` or ``_``.
            handler: a durable handler (it runs as an execution of its
                own, replay-checked like any run), a plain function
                ``(event, context)`` called once per invoke, or
                ``FILE_OR_MODULE:HANDLER``.
            execution_timeout: seconds an execution of it may take.
        """
        loaded: Handler = load_handler(handler) if isinstance(handler, str) else handler
        options = (
            {}
            if execution_timeout is None
            else {"execution_timeout": execution_timeout}
        )
        self.engine.register(function_name, loaded, **options)
        self._functions[function_name] = loaded

    def _function_name(self, handler: DurableHandler[Any, Any] | str) -> str:
        if isinstance(handler, str):
            if handler not in self._functions:
                raise ValidationError(
                    f"no function named {handler!r} is registered; "
                    f"registered: {', '.join(sorted(self._functions)) or 'none'}"
                )
            return handler
        if not isinstance(handler, DurableHandler):
            raise ValidationError(
                "handler must be a durable handler (decorate it with "
                "@durable_execution) or the name of a registered function "
                f"(got {handler!r})"
            )
        for name, known in self._functions.items():
            if known is handler:
                return name
        # Two handlers may share a __name__; each keeps its own function.
        base = function_name_for(handler)
        name, number = base, 1
        while name in self._functions:
            number += 1
            suffix = f"-{number}"
            name = base[: 64 - len(suffix)] + suffix
        self.register_function(name, handler)
        return name

    # -- running ----------------------------------------------------------------

    def run(
        self,
        handler: DurableHandler[Any, Any] | str,
        input: Any = None,
        *,
        name: str | None = None,
    ) -> DurableRun:
        """Start an execution and drive it until it ends, or until it waits
        only for the outside world (status RUNNING).

        With replay checking on, the execution (and each durable target of
        its chained invokes) is then replayed from its checkpoints.

        Args:
            handler: a durable handler, or a registered function's name.
            input: the execution's input; must be JSON-serializable.
            name: the execution's name; an existing name resumes it.

        Raises:
            ReplayMismatch: the replay check found the handler does not
                replay its own execution.
        """
        __tracebackhide__ = True  # a failed replay check points at the test
        function_name = self._function_name(handler)
        outcome = self.engine.run(function_name, input, name=name)
        return self._finish(outcome)

    def resume(self, run: DurableRun | str) -> DurableRun:
        """Drive an execution on, after answering a callback by hand.

        Args:
            run: a run, or an execution's name or ARN.
        """
        __tracebackhide__ = True
        target = run.arn if isinstance(run, DurableRun) else run
        return self._finish(self.engine.resume(target))

    def _finish(self, outcome: ExecutionResult) -> DurableRun:
        __tracebackhide__ = True
        if self.replay_check:
            self.check_replay(outcome)
        return DurableRun(outcome)

    def check_replay(self, run: DurableRun | ExecutionResult) -> None:
        """Replay an execution, and the durable targets of its chained
        invokes, from their checkpoints; raise ReplayMismatch on any
        difference. :meth:`run` calls it unless replay checking is off."""
        __tracebackhide__ = True
        outcome = run.execution if isinstance(run, DurableRun) else run
        seen: set[str] = set()
        pending = [outcome]
        while pending:
            execution = pending.pop(0)
            if execution.arn in seen:
                continue
            seen.add(execution.arn)
            handler = self._functions.get(execution.function_name)
            if isinstance(handler, DurableHandler):
                check_recorded(handler, _recorded(execution))
            for event in execution.history:
                if event.get("EventType") != "ChainedInvokeStarted":
                    continue
                child = event["ChainedInvokeStartedDetails"].get("DurableExecutionArn")
                if child:
                    pending.append(self.engine.describe(child))

    def replay_history(
        self,
        handler: DurableHandler[Any, Any],
        history: Any,
        *,
        deep: bool = True,
    ) -> None:
        """:func:`durable_exec.testing.replay_history`, with a relative
        path looked for next to the test module first."""
        __tracebackhide__ = True
        if isinstance(history, (str, os.PathLike)) and self._base_path is not None:
            text = os.fspath(history)
            candidate = self._base_path / text
            if text.lstrip()[:1] not in ("{", "[") and candidate.is_file():
                history = candidate
        replay_history(handler, history, deep=deep)

    # -- the outside world -----------------------------------------------------

    def respond_to_callback(
        self,
        name: str | None,
        *,
        result: Any = None,
        fail: BaseException | ErrorObject | Mapping[str, Any] | str | None = None,
        after: DurationLike = 0,
        heartbeat_every: DurationLike | None = None,
        times: int | None = None,
    ) -> None:
        """Answer callbacks as the system outside would, in engine time.

        Declare it before :meth:`run`. Each callback called ``name`` (for
        ``wait_for_callback``, the name given to it) is answered ``after``
        its start: with ``result`` (JSON-encoded), or failed with ``fail``.
        With ``heartbeat_every``, heartbeats are sent at that interval
        until the answer. Responders are tried in the order declared; the
        first that takes a callback answers it.

        An answer the engine refuses because the callback has already
        closed (it timed out first) is dropped; the run shows the timeout.

        Args:
            name: the callback's name; None for any callback.
            result: the answer, any JSON-serializable value.
            fail: answer with a failure instead: an exception, an
                :class:`~durable_exec.wire.ErrorObject`, its wire mapping,
                or a message.
            after: engine time from the callback's start to the answer.
            heartbeat_every: engine time between heartbeats.
            times: answer this many callbacks at most; default all.
        """
        if name is not None and not isinstance(name, str):
            raise ValidationError(f"name must be a string or None (got {name!r})")
        if fail is not None and result is not None:
            raise ValidationError(
                "give result= or fail=, not both "
                f"(got result={result!r}, fail={fail!r})"
            )
        if times is not None and (
            isinstance(times, bool) or not isinstance(times, int) or times < 1
        ):
            raise ValidationError(f"times must be >= 1 or None (got {times!r})")
        every = None
        if heartbeat_every is not None:
            every = _seconds("heartbeat_every", heartbeat_every)
            if every < 1:
                raise ValidationError(
                    f"heartbeat_every must be at least 1 s (got {every} s)"
                )
        try:
            payload = None if fail is not None else json.dumps(result)
        except (TypeError, ValueError) as error:
            raise ValidationError(
                f"result must be JSON-serializable (got {result!r}: {error})"
            ) from None
        self._responders.append(
            _Responder(
                name=name,
                result=payload,
                error=_error_object(fail) if fail is not None else None,
                after=_seconds("after", after),
                heartbeat_every=every,
                times=times,
            )
        )
        if not self._dispatching:
            self.engine.on_callback(None, self._dispatch)
            self._dispatching = True

    def _dispatch(self, callback_id: str) -> None:
        """Hand a callback that just started to the first responder that
        takes it, and schedule that responder's actions."""
        found = self.engine.store.find_callback(callback_id)
        if found is None:
            return
        arn, operation_id = found
        record = self.engine.engine.record(arn)
        operation = record.operations[operation_id]
        names: set[str | None] = {operation.name}
        parent = record.operations.get(operation.parent_id or "")
        if parent is not None and parent.sub_type == OperationSubType.WAIT_FOR_CALLBACK:
            names.add(parent.name)
        responder = next((r for r in self._responders if r.takes(names)), None)
        if responder is None:
            return
        responder.used += 1

        elapsed = (self.clock.now() - operation.start_timestamp).total_seconds()
        if responder.heartbeat_every is not None:
            moment = responder.heartbeat_every
            while moment < responder.after:
                self.engine.schedule(
                    max(0.0, moment - elapsed),
                    _refusable(self.engine.send_callback_heartbeat, callback_id),
                )
                moment += responder.heartbeat_every
        if responder.error is not None:
            answer = _refusable(
                self.engine.send_callback_failure, callback_id, responder.error
            )
        else:
            answer = _refusable(
                self.engine.send_callback_success, callback_id, responder.result
            )
        self.engine.schedule(max(0.0, responder.after - elapsed), answer)

    def send_callback_success(
        self, callback: OperationView | str, result: Any = None
    ) -> None:
        """Answer a callback now with ``result`` (JSON-encoded); then
        :meth:`resume` the run."""
        self.engine.send_callback_success(_callback_id(callback), json.dumps(result))

    def send_callback_failure(
        self,
        callback: OperationView | str,
        fail: BaseException | ErrorObject | Mapping[str, Any] | str,
    ) -> None:
        """Fail a callback now; then :meth:`resume` the run."""
        self.engine.send_callback_failure(_callback_id(callback), _error_object(fail))

    def send_callback_heartbeat(self, callback: OperationView | str) -> None:
        """Tell a callback its answer is still coming."""
        self.engine.send_callback_heartbeat(_callback_id(callback))


def _callback_id(callback: OperationView | str) -> str:
    if isinstance(callback, OperationView):
        if callback.callback_id is None:
            raise ValidationError(f"{callback!r} is not a callback")
        return callback.callback_id
    return callback


def _refusable(action: Callable[..., None], *args: Any) -> Callable[[], None]:
    def act() -> None:
        try:
            action(*args)
        except ServiceError as error:
            # Closed already: timed out, or answered by another responder.
            logger.debug("callback action refused: %s", error)

    return act


def _recorded(execution: ExecutionResult) -> RecordedExecution:
    return RecordedExecution(
        arn=execution.arn,
        name=execution.name,
        status=execution.status,
        operations=execution.operations,
        result_payload=execution.result_payload,
        error=execution.error,
        # The engine drives an execution until it ends or waits only for
        # the outside world: no invocation is owed that could go further.
        complete=execution.status
        not in (ExecutionStatus.TIMED_OUT, ExecutionStatus.STOPPED),
    )
