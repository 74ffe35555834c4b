"""Instrumentation plugins: hooks around invocations, operations and attempts.

A plugin is any object with some of the six hook methods of
:class:`Plugin`; subclass it to inherit no-op defaults. Give plugins to
the handler, ``@durable_execution(plugins=[MyPlugin()])``, or let an
installed package register one under the entry-point group
``durable_exec.plugins`` (see :data:`ENTRY_POINT_GROUP`).

When each hook fires
--------------------
``on_invocation_start``
    Once per invocation, after the whole execution state is loaded and
    before the workflow function runs. ``is_first_invocation`` is true when
    the state holds no operation but the EXECUTION one: nothing has been
    checkpointed yet. So it is also true for the retry of a first
    invocation that died before its first checkpoint.
``on_invocation_end``
    Once per invocation that fired ``on_invocation_start``, after the reply
    is final (every checkpoint acknowledged), with the reply's status:
    ``"SUCCEEDED"``, ``"FAILED"`` or ``"PENDING"``. When the invocation
    raises instead (a service error Lambda should retry), the status is
    None and ``error`` describes the exception.
``on_operation_start`` / ``on_operation_end``
    Around each durable operation the handler runs for real in this
    invocation: one that checkpoints or runs user code. An operation
    replayed from its record fires nothing, and neither does one that only
    finds it must keep waiting (a wait not over, a retry not due, a
    callback already created, an invoke in progress). An operation fires
    each time it runs: a step retried in a later invocation fires again
    there, as does a suspended branch that its batch runs again once what
    it waited for has come. Nested contexts count: child
    contexts, ``wait_for_callback`` and each NESTED parallel branch or map
    item (sub-type ParallelBranch or MapIteration, fired on the thread that
    runs the branch). FLAT branches are no operation and fire nothing;
    their own operations do. The end's ``status`` is the operation's
    record as this invocation leaves it: SUCCEEDED or FAILED, PENDING for
    a step whose retry is scheduled, STARTED for one that goes on past the
    invocation (a wait, a callback, an invoke, a suspended context, a
    branch its batch stopped).
``on_attempt_start`` / ``on_attempt_end``
    Immediately around each call of a step's function (and of a
    ``wait_for_condition`` check), on the same thread. The outcome is the
    function's own: SUCCEEDED if it returned, FAILED if it raised.

Several plugins run in registration order: those given to the handler,
then those of entry points, sorted by entry-point name. A hook that
raises an exception is logged (warning, logger ``durable_exec.plugins``)
and ignored; the other plugins still run and the execution goes on as if
no plugin were there. Exceptions that are not ``Exception``
(``KeyboardInterrupt``, ``SystemExit``) are not caught.

Hooks run synchronously, so a slow hook slows the workflow. Those of
parallel branches and map items run on the branches' threads, at the same
time: a plugin that keeps state across hooks must guard it with a lock.

Entry points
------------
A distribution registers a plugin class (instantiated with no arguments)
or a plugin object::

    [project.entry-points."durable_exec.plugins"]
    tracing = "my_package.tracing:TracingPlugin"

They are loaded once per process, on the first invocation of a handler
that wants them; one that fails to load is logged and skipped. Pass
``load_entry_points=False`` to the handler to use only its own plugins.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import attrs

from .errors import SuspendExecution, ValidationError
from .wire import ErrorObject, OperationStatus, OperationType

if TYPE_CHECKING:
    from ._state import ExecutionState

__all__ = [
    "ENTRY_POINT_GROUP",
    "AttemptEndInfo",
    "AttemptStartInfo",
    "InvocationEndInfo",
    "InvocationStartInfo",
    "OperationEndInfo",
    "OperationStartInfo",
    "Plugin",
    "entry_point_plugins",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "durable_exec.plugins"
"""The entry-point group plugins are registered under."""

InvocationStatus = Literal["SUCCEEDED", "FAILED", "PENDING"]
AttemptOutcome = Literal["SUCCEEDED", "FAILED"]


# -- what the hooks receive --------------------------------------------------


@attrs.frozen(slots=True)
class InvocationStartInfo:
    """An invocation is about to run the workflow function.

    Attributes:
        durable_execution_arn: the execution's ARN.
        is_first_invocation: the state held no operation but the
            EXECUTION one (see the module's notes).
        lambda_context: the Lambda context object, or None locally.
    """

    durable_execution_arn: str
    is_first_invocation: bool
    lambda_context: Any


@attrs.frozen(slots=True)
class InvocationEndInfo:
    """An invocation is over.

    Attributes:
        durable_execution_arn: the execution's ARN.
        status: the reply's status, or None if the invocation raised.
        error: the error of a FAILED reply, as the service records it; for
            an invocation that raised, its exception in the same form.
    """

    durable_execution_arn: str
    status: InvocationStatus | None
    error: ErrorObject | None = None


@attrs.frozen(slots=True)
class OperationStartInfo:
    """A durable operation starts running in this invocation.

    Attributes:
        durable_execution_arn: the execution's ARN.
        operation_id: the operation's id, as checkpointed.
        name: its name, if any.
        operation_type: STEP, WAIT, CONTEXT, CALLBACK or CHAINED_INVOKE.
        sub_type: the user-level operation, such as ``"Step"`` or
            ``"ParallelBranch"``.
        parent_id: the id of the context it runs in; None at the root.
    """

    durable_execution_arn: str
    operation_id: str
    name: str | None
    operation_type: OperationType
    sub_type: str
    parent_id: str | None


@attrs.frozen(slots=True)
class OperationEndInfo:
    """A durable operation is done with, for this invocation.

    Attributes:
        durable_execution_arn: the execution's ARN.
        operation_id: the operation's id.
        name: its name, if any.
        operation_type: its type.
        sub_type: its sub-type.
        parent_id: the id of its context; None at the root.
        status: its record's status as this invocation leaves it.
        error: what the operation raised to the workflow (a
            :class:`~durable_exec.StepError`, say), or None if it returned
            or suspended.
    """

    durable_execution_arn: str
    operation_id: str
    name: str | None
    operation_type: OperationType
    sub_type: str
    parent_id: str | None
    status: OperationStatus
    error: BaseException | None = None


@attrs.frozen(slots=True)
class AttemptStartInfo:
    """A step's function (or a condition check) is about to be called.

    Attributes:
        durable_execution_arn: the execution's ARN.
        operation_id: the step's id.
        name: its name, if any.
        operation_type: STEP.
        sub_type: ``"Step"``, or ``"WaitForCondition"`` for a check.
        attempt: the 1-based attempt number.
    """

    durable_execution_arn: str
    operation_id: str
    name: str | None
    operation_type: OperationType
    sub_type: str
    attempt: int


@attrs.frozen(slots=True)
class AttemptEndInfo:
    """A step's function (or a condition check) returned or raised.

    Attributes:
        durable_execution_arn: the execution's ARN.
        operation_id: the step's id.
        name: its name, if any.
        operation_type: STEP.
        sub_type: ``"Step"`` or ``"WaitForCondition"``.
        attempt: the 1-based attempt number.
        outcome: SUCCEEDED if the function returned, FAILED if it raised.
        error: what it raised, if anything.
    """

    durable_execution_arn: str
    operation_id: str
    name: str | None
    operation_type: OperationType
    sub_type: str
    attempt: int
    outcome: AttemptOutcome
    error: BaseException | None = None


# -- the plugin ----------------------------------------------------------------


class Plugin:
    """Base class of instrumentation plugins; every hook does nothing.

    Override the hooks you need. Any object with some of these methods
    serves as well: subclassing is not required.
    """

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        """Before the workflow function runs in an invocation."""

    def on_invocation_end(self, info: InvocationEndInfo) -> None:
        """After an invocation's reply is final."""

    def on_operation_start(self, info: OperationStartInfo) -> None:
        """Before an operation runs for real (not when replayed)."""

    def on_operation_end(self, info: OperationEndInfo) -> None:
        """After an operation that fired ``on_operation_start``."""

    def on_attempt_start(self, info: AttemptStartInfo) -> None:
        """On the step's thread, just before its function is called."""

    def on_attempt_end(self, info: AttemptEndInfo) -> None:
        """On the step's thread, just after its function returned or
        raised."""


_HOOKS = (
    "on_invocation_start",
    "on_invocation_end",
    "on_operation_start",
    "on_operation_end",
    "on_attempt_start",
    "on_attempt_end",
)

_Calls = tuple[tuple[object, Callable[[Any], None]], ...]


class PluginSet:
    """The hooks of an ordered set of plugins, and how to call them.

    Internal: the handler makes one and hands it to its contexts. Each
    hook keeps only the plugins that override it, so a hook no plugin
    implements costs one empty-tuple check.
    """

    __slots__ = ("plugins", *_HOOKS)

    on_invocation_start: _Calls
    on_invocation_end: _Calls
    on_operation_start: _Calls
    on_operation_end: _Calls
    on_attempt_start: _Calls
    on_attempt_end: _Calls

    def __init__(self, plugins: Iterable[object]) -> None:
        self.plugins = tuple(plugins)
        for hook in _HOOKS:
            calls = []
            for plugin in self.plugins:
                method = getattr(plugin, hook, None)
                # A hook inherited from Plugin does nothing: skip it.
                inherited = getattr(type(plugin), hook, None) is getattr(Plugin, hook)
                if callable(method) and not inherited:
                    calls.append((plugin, method))
            setattr(self, hook, tuple(calls))

    def fire(self, hook: str, info: object) -> None:
        """Call ``hook`` of every plugin with ``info``; log what raises."""
        calls: _Calls = getattr(self, hook)
        for plugin, method in calls:
            try:
                method(info)
            except Exception:
                logger.warning(
                    "plugin %s raised in %s; ignored",
                    _describe(plugin),
                    hook,
                    exc_info=True,
                )

    @property
    def watches_operations(self) -> bool:
        return bool(self.on_operation_start or self.on_operation_end)

    @property
    def watches_attempts(self) -> bool:
        return bool(self.on_attempt_start or self.on_attempt_end)

    def __repr__(self) -> str:
        names = ", ".join(_describe(plugin) for plugin in self.plugins)
        return f"PluginSet([{names}])"


def _describe(plugin: object) -> str:
    return type(plugin).__qualname__


def check_plugins(plugins: Any) -> tuple[object, ...]:
    """Internal: ``plugins`` as a tuple, or a ValidationError saying what
    is wrong."""
    if isinstance(plugins, (str, bytes)) or not isinstance(plugins, Iterable):
        raise ValidationError(
            f"plugins must be a sequence of plugin objects (got {plugins!r})"
        )
    checked = tuple(plugins)
    for plugin in checked:
        if isinstance(plugin, type):
            raise ValidationError(
                "plugins must be plugin objects, not classes (got "
                f"{plugin.__qualname__}; pass {plugin.__qualname__}())"
            )
        if not any(callable(getattr(plugin, hook, None)) for hook in _HOOKS):
            raise ValidationError(
                f"plugin {plugin!r} has none of the hooks {', '.join(_HOOKS)}"
            )
    return checked


# -- hooks around operations and attempts ----------------------------------


class OperationHooks:
    """Internal: ``on_operation_start`` on entry, ``on_operation_end`` on
    exit.

    The end status is read from the operation's record once the block is
    done, so it says what the invocation leaves behind; an operation whose
    START was queued but not yet sent counts as STARTED.
    """

    __slots__ = ("_plugins", "_start", "_state")

    def __init__(
        self,
        plugins: PluginSet,
        state: ExecutionState,
        start: OperationStartInfo,
    ) -> None:
        self._plugins = plugins
        self._state = state
        self._start = start

    def __enter__(self) -> None:
        self._plugins.fire("on_operation_start", self._start)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._plugins.on_operation_end:
            return
        start = self._start
        record = self._state.get(start.operation_id)
        status = record.status if record is not None else OperationStatus.STARTED
        # Suspension and a batch's stop are control flow, not failures.
        if not isinstance(error, Exception) or isinstance(error, SuspendExecution):
            error = None
        self._plugins.fire(
            "on_operation_end",
            OperationEndInfo(
                start.durable_execution_arn,
                start.operation_id,
                start.name,
                start.operation_type,
                start.sub_type,
                start.parent_id,
                status,
                error,
            ),
        )


class AttemptHooks:
    """Internal: ``on_attempt_start`` on entry, ``on_attempt_end`` on
    exit."""

    __slots__ = ("_plugins", "_start")

    def __init__(self, plugins: PluginSet, start: AttemptStartInfo) -> None:
        self._plugins = plugins
        self._start = start

    def __enter__(self) -> None:
        self._plugins.fire("on_attempt_start", self._start)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        start = self._start
        self._plugins.fire(
            "on_attempt_end",
            AttemptEndInfo(
                start.durable_execution_arn,
                start.operation_id,
                start.name,
                start.operation_type,
                start.sub_type,
                start.attempt,
                "SUCCEEDED" if error is None else "FAILED",
                error,
            ),
        )


# -- entry points ----------------------------------------------------------------

_entry_point_plugins: tuple[object, ...] | None = None
_entry_point_lock = threading.Lock()


def entry_point_plugins() -> tuple[object, ...]:
    """The plugins registered under :data:`ENTRY_POINT_GROUP`.

    Loaded on the first call, once per process, sorted by entry-point
    name; an entry point that fails to load (or to instantiate) is logged
    and skipped.
    """
    global _entry_point_plugins
    with _entry_point_lock:
        if _entry_point_plugins is None:
            _entry_point_plugins = _load_entry_points()
        return _entry_point_plugins


def _load_entry_points() -> tuple[object, ...]:
    from importlib.metadata import entry_points

    plugins = []
    for entry in sorted(
        entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value)
    ):
        try:
            loaded = entry.load()
            plugin = loaded() if isinstance(loaded, type) else loaded
            (plugin,) = check_plugins([plugin])
        except Exception:
            logger.warning(
                "plugin entry point %s = %s failed to load; skipped",
                entry.name,
                entry.value,
                exc_info=True,
            )
            continue
        logger.debug("loaded plugin %s from entry point %s", entry.value, entry.name)
        plugins.append(plugin)
    return tuple(plugins)
