"""DurableContext: the durable operations a handler calls.

Each operation gets an id from its place in the program — the parent
context's id and a per-context counter — never from thread timing. When
the execution state already holds a record at that id, the operation is
replayed: a completed step returns (or raises) its checkpointed outcome
without running, a finished wait returns at once, a finished child context
returns its result. The record must be of the same type, sub-type and name
as the operation the handler asks for; otherwise the handler changed, and
:class:`NonDeterministicExecutionError` fails the execution.

A context is used by one thread at a time: a handler's root context by the
handler's thread, a child context by the code it was given.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Generic, NoReturn, TypeVar

from ._concurrency import Unit, run_batch
from ._logger import WORKFLOW_LOGGER_NAME, DurableLogger
from ._state import (
    MAX_PAYLOAD_BYTES,
    BranchCancelled,
    CancelScope,
    ExecutionState,
)
from .batch import BatchResult
from .config import (
    MAX_WAIT_SECONDS,
    CallbackConfig,
    ChildConfig,
    Duration,
    DurationLike,
    InvokeConfig,
    MapConfig,
    ParallelBranch,
    ParallelConfig,
    StepConfig,
    StepSemantics,
    WaitForCallbackConfig,
    WaitForConditionConfig,
)
from .errors import (
    CallbackError,
    CallbackTimeoutError,
    CheckpointError,
    ChildContextError,
    InvokeError,
    NonDeterministicExecutionError,
    SerDesError,
    StepError,
    StepInterruptedError,
    SuspendExecution,
    ValidationError,
    WaitForConditionError,
    error_object_from_exception,
)
from .plugins import (
    AttemptHooks,
    AttemptStartInfo,
    OperationHooks,
    OperationStartInfo,
    PluginSet,
)
from .serde import (
    SerDes,
    SerDesContext,
    deserialize,
    return_type_of,
    serdes_for,
    serialize,
)
from .wire import (
    CallbackOptions,
    ChainedInvokeOptions,
    ContextOptions,
    ErrorObject,
    Operation,
    OperationAction,
    OperationStatus,
    OperationSubType,
    OperationType,
    OperationUpdate,
    StepOptions,
    WaitOptions,
)

__all__ = ["DurableContext", "StepContext"]

T = TypeVar("T")
ItemT = TypeVar("ItemT")

logger = logging.getLogger(__name__)

_MAX_ID_LENGTH = 64
_MAX_INVOKE_PAYLOAD_BYTES = 1024 * 1024
_MAX_NAME_LENGTH = 256
_DEFAULT_STEP_CONFIG = StepConfig()
_DEFAULT_CHILD_CONFIG = ChildConfig()
_DEFAULT_PARALLEL_CONFIG = ParallelConfig()
_DEFAULT_MAP_CONFIG = MapConfig()
_DEFAULT_CALLBACK_CONFIG = CallbackConfig()
_DEFAULT_WAIT_FOR_CALLBACK_CONFIG = WaitForCallbackConfig()
_DEFAULT_INVOKE_CONFIG = InvokeConfig()
# What an operation or attempt is wrapped in when no plugin watches it.
_NO_HOOKS = contextlib.nullcontext()


def operation_id(logical_id: str) -> str:
    """The wire id for a logical id: itself, or a digest when too long.

    Logical ids nest (``"3-2-1"``) and can outgrow the service's 64
    characters in deep trees; those are replaced by a stable digest.
    """
    if len(logical_id) <= _MAX_ID_LENGTH:
        return logical_id
    return hashlib.blake2b(logical_id.encode(), digest_size=24).hexdigest()


def _check_name(name: Any) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str):
        raise ValidationError(f"name must be a string or None (got {name!r})")
    if (
        not 1 <= len(name) <= _MAX_NAME_LENGTH
        or not name.isascii()
        or not name.isprintable()
    ):
        raise ValidationError(
            f"name must be 1 to 256 printable ASCII characters (got {name!r})"
        )
    return name


def _default_name(func: Callable[..., Any]) -> str | None:
    name = getattr(func, "__name__", None)
    if not isinstance(name, str) or name == "<lambda>":
        return None
    # Python identifiers may be non-ASCII, service names may not: escape
    # them rather than drop them, so a renamed function is still noticed.
    if not (name.isascii() and name.isprintable()):
        name = ascii(name)[1:-1]
    return name[:_MAX_NAME_LENGTH] or None


def _check_callable(parameter: str, func: Any) -> None:
    if not callable(func):
        raise ValidationError(f"{parameter} must be callable (got {func!r})")


class StepContext:
    """What a step's function receives.

    Attributes:
        operation_id: the step's id.
        name: the step's name, if any.
        attempt: the 1-based number of this attempt.
        logger: a logger carrying the execution, the step and the attempt;
            code in a step runs for real, so it logs during replay too.
    """

    __slots__ = ("operation_id", "name", "attempt", "_parent_logger", "_logger")

    def __init__(
        self,
        operation_id: str,
        name: str | None,
        attempt: int,
        parent_logger: DurableLogger,
    ) -> None:
        self.operation_id = operation_id
        self.name = name
        self.attempt = attempt
        self._parent_logger = parent_logger
        self._logger: DurableLogger | None = None

    @property
    def logger(self) -> DurableLogger:
        # Made on first use: most steps never log.
        if self._logger is None:
            logger = self._parent_logger.with_fields(
                operationId=self.operation_id,
                operationName=self.name,
                attempt=self.attempt,
            )
            logger.log_during_replay = True
            self._logger = logger
        return self._logger

    def __repr__(self) -> str:
        return (
            f"StepContext(operation_id={self.operation_id!r}, "
            f"name={self.name!r}, attempt={self.attempt})"
        )


class DurableContext:
    """The durable operations of one context of an execution.

    The handler gets the root context; :meth:`run_in_child_context` makes
    child contexts.
    """

    def __init__(
        self,
        state: ExecutionState,
        *,
        parent_id: str | None = None,
        logical_id: str | None = None,
        base_logger: logging.Logger | None = None,
        log_during_replay: bool = False,
        lambda_context: Any = None,
        scope: CancelScope | None = None,
        plugins: PluginSet | None = None,
    ) -> None:
        self._state = state
        self._scope = scope
        self._plugins = plugins
        self._batch_running = False
        self._parent_id = parent_id
        self._prefix = f"{logical_id}-" if logical_id else ""
        self._counter = itertools.count(1)
        self._next = 1
        self._base_logger = base_logger or logging.getLogger(WORKFLOW_LOGGER_NAME)
        self._log_during_replay = log_during_replay
        self.lambda_context = lambda_context
        self.logger = DurableLogger(
            self._base_logger,
            {
                "durableExecutionArn": state.durable_execution_arn,
                "operationId": parent_id,
            },
            self.is_replaying,
            log_during_replay,
        )

    @property
    def durable_execution_arn(self) -> str:
        return self._state.durable_execution_arn

    # -- ids and replay --------------------------------------------------------

    def _next_ids(self) -> tuple[str, str]:
        if self._batch_running:
            # A branch that used the outer context would take ids in
            # thread order, and replay could not match them.
            raise ValidationError(
                "this context is running a parallel or map; inside a branch "
                "or item, use the context the branch was given"
            )
        number = next(self._counter)
        self._next = number + 1
        logical = f"{self._prefix}{number}"
        return logical, operation_id(logical)

    def is_replaying(self) -> bool:
        """True while the next operation of this context is already recorded.

        Code running before such an operation ran in an earlier invocation
        too, so the context logger stays quiet there.
        """
        upcoming = operation_id(f"{self._prefix}{self._next}")
        return self._state.contains(upcoming)

    def _child(self, parent_id: str, logical_id: str) -> DurableContext:
        return DurableContext(
            self._state,
            parent_id=parent_id,
            logical_id=logical_id,
            base_logger=self._base_logger,
            log_during_replay=self._log_during_replay,
            lambda_context=self.lambda_context,
            scope=self._scope,
            plugins=self._plugins,
        )

    def _operation(
        self, op_id: str, type: OperationType, sub_type: str, name: str | None
    ) -> AbstractContextManager[None]:
        """Operation hooks around an operation that runs for real."""
        plugins = self._plugins
        if plugins is None or not plugins.watches_operations:
            return _NO_HOOKS
        start = OperationStartInfo(
            self._state.durable_execution_arn,
            op_id,
            name,
            type,
            sub_type,
            self._parent_id,
        )
        return OperationHooks(plugins, self._state, start)

    def _attempt(
        self, op_id: str, name: str | None, sub_type: str, attempt: int
    ) -> AbstractContextManager[None]:
        """Attempt hooks immediately around a step's function."""
        plugins = self._plugins
        if plugins is None or not plugins.watches_attempts:
            return _NO_HOOKS
        start = AttemptStartInfo(
            self._state.durable_execution_arn,
            op_id,
            name,
            OperationType.STEP,
            sub_type,
            attempt,
        )
        return AttemptHooks(plugins, start)

    def _update(
        self,
        op_id: str,
        type: OperationType,
        sub_type: str,
        name: str | None,
        action: OperationAction,
        **details: Any,
    ) -> OperationUpdate:
        """An update to an operation of this context."""
        return OperationUpdate(
            id=op_id,
            type=type,
            action=action,
            parent_id=self._parent_id,
            name=name,
            sub_type=sub_type,
            **details,
        )

    def _checkpoint(self, update: OperationUpdate, *, wait: bool = True) -> None:
        self._state.checkpoint(update, wait=wait, scope=self._scope)

    def _check_cancelled(self) -> None:
        """Stop a branch whose batch was decided, before it does more."""
        if self._scope is not None and self._scope.is_cancelled():
            raise BranchCancelled()

    def _claim(
        self, type: OperationType, sub_type: str, name: str | None
    ) -> tuple[str, Operation | None]:
        """Take the next operation id; return it with its record, if any.

        Raises:
            BranchCancelled: this context's batch was decided.
            NonDeterministicExecutionError: the record is of another
                operation than the one asked for.
        """
        self._check_cancelled()
        _, op_id = self._next_ids()
        return op_id, self._state.get_checked(op_id, type, sub_type, name)

    def _serdes_context(self, op_id: str, name: str | None) -> SerDesContext:
        return SerDesContext(op_id, self._state.durable_execution_arn, name)

    # -- step --------------------------------------------------------------------

    def step(
        self,
        func: Callable[[StepContext], T],
        name: str | None = None,
        config: StepConfig | None = None,
    ) -> T:
        """Run ``func`` as a checkpointed step and return its result.

        The step's outcome is checkpointed; on replay a finished step
        returns its recorded result (or raises its recorded error) without
        running. A failed attempt goes through ``config.retry_strategy``: a
        retry is checkpointed with its delay and the invocation suspends
        until the service brings the next attempt.

        With the default at-least-once semantics, an attempt whose process
        died runs again, so ``func`` can run more than once per attempt.
        With at-most-once semantics it never does; the interrupted attempt
        counts as failed instead.

        Args:
            func: called with a :class:`StepContext`.
            name: recorded with the step; default ``func.__name__``.
            config: retry strategy, semantics and serdes.

        Returns:
            The result as deserialized from its checkpoint.

        Raises:
            StepError: the step failed and will not be retried.
        """
        _check_callable("func", func)
        if config is None:
            config = _DEFAULT_STEP_CONFIG
        elif not isinstance(config, StepConfig):
            raise ValidationError(f"config must be a StepConfig (got {config!r})")
        name = _check_name(name) if name is not None else _default_name(func)
        op_id, operation = self._claim(OperationType.STEP, OperationSubType.STEP, name)
        serdes = config.serdes or serdes_for(
            None, config.result_type or return_type_of(func)
        )
        serdes_context = self._serdes_context(op_id, name)

        # Replay what is recorded.
        attempts_done = 0
        needs_start = True
        if operation is not None:
            details = operation.step_details
            attempts_done = (details.attempt if details else None) or 0
            status = operation.status
            if status is OperationStatus.SUCCEEDED:
                recorded: T = deserialize(serdes, operation.result, serdes_context)
                return recorded
            if status is OperationStatus.FAILED:
                raise StepError.from_error_object(operation.error)
            if status is OperationStatus.PENDING:
                # The retry delay is not over; the service brings it.
                raise SuspendExecution(f"step {op_id} waits for its retry")
            if status is OperationStatus.STARTED:
                needs_start = False
                if config.semantics is StepSemantics.AT_MOST_ONCE_PER_RETRY:
                    interrupted = StepInterruptedError(
                        f"step {name or op_id} was interrupted: its attempt "
                        f"{attempts_done + 1} started and never finished",
                        error_type="StepInterruptedError",
                    )
                    with self._operation(
                        op_id, OperationType.STEP, OperationSubType.STEP, name
                    ):
                        self._step_failed(
                            op_id, name, config, interrupted, attempts_done + 1
                        )

        with self._operation(op_id, OperationType.STEP, OperationSubType.STEP, name):
            return self._step_attempt(
                func,
                op_id,
                name,
                config,
                serdes,
                serdes_context,
                attempts_done + 1,
                needs_start,
            )

    def _step_attempt(
        self,
        func: Callable[[StepContext], T],
        op_id: str,
        name: str | None,
        config: StepConfig,
        serdes: SerDes[Any],
        serdes_context: SerDesContext,
        attempt: int,
        needs_start: bool,
    ) -> T:
        """Run one attempt of a step that is not recorded as finished."""
        if needs_start:
            self._checkpoint(
                self._update(
                    op_id,
                    OperationType.STEP,
                    OperationSubType.STEP,
                    name,
                    OperationAction.START,
                )
            )

        try:
            with self._attempt(op_id, name, OperationSubType.STEP, attempt):
                result = func(StepContext(op_id, name, attempt, self.logger))
        except (SuspendExecution, NonDeterministicExecutionError):
            raise
        except Exception as error:
            self._step_failed(op_id, name, config, error, attempt)

        # The result must survive its checkpoint; what the caller gets is
        # what a replay would get.
        try:
            payload = serialize(serdes, result, serdes_context)
            _check_payload_size(payload, f"the result of step {name or op_id}")
            value = deserialize(serdes, payload, serdes_context)
        except (SerDesError, ValidationError) as error:
            self._fail(op_id, OperationType.STEP, OperationSubType.STEP, name, error)
            raise StepError(str(error), error_type=type(error).__name__) from error

        self._checkpoint(
            self._update(
                op_id,
                OperationType.STEP,
                OperationSubType.STEP,
                name,
                OperationAction.SUCCEED,
                payload=payload,
            )
        )
        return value  # type: ignore[no-any-return]

    def _step_failed(
        self,
        op_id: str,
        name: str | None,
        config: StepConfig,
        error: BaseException,
        attempt: int,
    ) -> NoReturn:
        """Checkpoint a failed attempt as a retry (and suspend) or as the
        step's failure (and raise it)."""
        decision = config.retry_policy()(error, attempt)
        recorded = error_object_from_exception(error)
        if decision.should_retry:
            logger.warning(
                "step %s attempt %d failed (%s: %s); retrying in %d s",
                name or op_id,
                attempt,
                recorded.error_type,
                recorded.error_message,
                decision.delay_seconds,
            )
            self._checkpoint(
                self._update(
                    op_id,
                    OperationType.STEP,
                    OperationSubType.STEP,
                    name,
                    OperationAction.RETRY,
                    error=recorded,
                    step_options=StepOptions(decision.delay_seconds),
                )
            )
            raise SuspendExecution(
                f"step {op_id} retries in {decision.delay_seconds} s"
            )
        self._checkpoint(
            self._update(
                op_id,
                OperationType.STEP,
                OperationSubType.STEP,
                name,
                OperationAction.FAIL,
                error=recorded,
            )
        )
        raise StepError.from_error_object(recorded) from error

    def _fail(
        self,
        op_id: str,
        type: OperationType,
        sub_type: str,
        name: str | None,
        error: BaseException,
    ) -> ErrorObject:
        recorded = error_object_from_exception(error)
        self._checkpoint(
            self._update(
                op_id, type, sub_type, name, OperationAction.FAIL, error=recorded
            )
        )
        return recorded

    # -- wait ----------------------------------------------------------------------

    def wait(self, duration: DurationLike, name: str | None = None) -> None:
        """Wait durably for ``duration`` (whole seconds, at least 1).

        The wait is checkpointed and the invocation suspends; the service
        invokes the handler again once the time is over, and the replayed
        wait returns at once. No process sits idle meanwhile.
        """
        seconds = Duration.coerce(duration).seconds
        if not 1 <= seconds <= MAX_WAIT_SECONDS:
            raise ValidationError(
                f"duration must be 1 to {MAX_WAIT_SECONDS} seconds (got {seconds} s)"
            )
        name = _check_name(name)
        op_id, operation = self._claim(OperationType.WAIT, OperationSubType.WAIT, name)
        if operation is None:
            with self._operation(
                op_id, OperationType.WAIT, OperationSubType.WAIT, name
            ):
                self._checkpoint(
                    self._update(
                        op_id,
                        OperationType.WAIT,
                        OperationSubType.WAIT,
                        name,
                        OperationAction.START,
                        wait_options=WaitOptions(seconds),
                    )
                )
                operation = self._state.get(op_id)
        if operation is not None and operation.is_terminal:
            return
        raise SuspendExecution(f"wait {op_id} is not over")

    # -- child context ---------------------------------------------------------

    def run_in_child_context(
        self,
        func: Callable[[DurableContext], T],
        name: str | None = None,
        config: ChildConfig | None = None,
    ) -> T:
        """Run ``func`` in a child context, checkpointed as one operation.

        The child's operations nest under it. Once the child finishes, its
        result (or error) is checkpointed and replay returns it without
        running ``func``. A result over 256 KiB is checkpointed as a small
        summary, and replay rebuilds it by running ``func`` again over the
        children's checkpoints, so no step inside runs twice.

        Args:
            func: called with the child :class:`DurableContext`.
            name: recorded with the context; default ``func.__name__``.
            config: serdes and result type.

        Raises:
            ChildContextError: ``func`` raised; carries the recorded error.
        """
        _check_callable("func", func)
        if config is None:
            config = _DEFAULT_CHILD_CONFIG
        elif not isinstance(config, ChildConfig):
            raise ValidationError(f"config must be a ChildConfig (got {config!r})")
        name = _check_name(name) if name is not None else _default_name(func)
        return self._run_child(
            func, name, config, config.sub_type or OperationSubType.RUN_IN_CHILD_CONTEXT
        )

    def _run_child(
        self,
        func: Callable[[DurableContext], T],
        name: str | None,
        config: ChildConfig,
        sub_type: str,
        *,
        ids: tuple[str, str] | None = None,
    ) -> T:
        self._check_cancelled()
        logical_id, op_id = ids if ids is not None else self._next_ids()
        operation = self._state.get_checked(
            op_id, OperationType.CONTEXT, sub_type, name
        )
        serdes = config.serdes or serdes_for(
            None, config.result_type or return_type_of(func)
        )
        serdes_context = self._serdes_context(op_id, name)

        rebuild = False
        if operation is not None:
            if operation.status is OperationStatus.SUCCEEDED:
                details = operation.context_details
                if not (details and details.replay_children):
                    recorded: T = deserialize(serdes, operation.result, serdes_context)
                    return recorded
                rebuild = True
            elif operation.status is OperationStatus.FAILED:
                raise ChildContextError.from_error_object(operation.error)

        # A rebuild replays the children; the context runs nothing anew.
        hooks = (
            _NO_HOOKS
            if rebuild
            else self._operation(op_id, OperationType.CONTEXT, sub_type, name)
        )
        with hooks:
            if operation is None:
                # Queued, not awaited: the first durable operation inside
                # (or the context's completion) carries it, in order.
                self._checkpoint(
                    self._update(
                        op_id,
                        OperationType.CONTEXT,
                        sub_type,
                        name,
                        OperationAction.START,
                    ),
                    wait=False,
                )
            return self._child_body(
                func,
                logical_id,
                op_id,
                name,
                config,
                sub_type,
                serdes,
                serdes_context,
                rebuild,
            )

    def _child_body(
        self,
        func: Callable[[DurableContext], T],
        logical_id: str,
        op_id: str,
        name: str | None,
        config: ChildConfig,
        sub_type: str,
        serdes: SerDes[Any],
        serdes_context: SerDesContext,
        rebuild: bool,
    ) -> T:
        """Run a child context's function and checkpoint its outcome."""
        child = self._child(op_id, logical_id)
        try:
            result = func(child)
        except (SuspendExecution, NonDeterministicExecutionError):
            raise
        except Exception as error:
            if rebuild:
                raise
            recorded = self._fail(op_id, OperationType.CONTEXT, sub_type, name, error)
            raise ChildContextError.from_error_object(recorded) from error

        try:
            payload = serialize(serdes, result, serdes_context)
            value = deserialize(serdes, payload, serdes_context)
        except SerDesError as error:
            recorded = self._fail(op_id, OperationType.CONTEXT, sub_type, name, error)
            raise ChildContextError.from_error_object(recorded) from error
        if rebuild:
            return value  # type: ignore[no-any-return]

        options = None
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            # Too large to checkpoint: record a summary, and let replay
            # rebuild the result from the children's own checkpoints.
            summary = config.summary or _size_summary
            payload = summary(result)
            options = ContextOptions(replay_children=True)
        self._checkpoint(
            self._update(
                op_id,
                OperationType.CONTEXT,
                sub_type,
                name,
                OperationAction.SUCCEED,
                payload=payload,
                context_options=options,
            )
        )
        return value  # type: ignore[no-any-return]

    # -- callbacks ---------------------------------------------------------------

    def create_callback(
        self, name: str | None = None, config: CallbackConfig | None = None
    ) -> Callback[Any]:
        """Create a callback that a system outside can answer.

        The callback is checkpointed at once and gets its id from the
        service; hand :attr:`Callback.callback_id` to whoever answers, then
        call :meth:`Callback.result`. On replay the same callback (and id)
        is returned.
        """
        if config is None:
            config = _DEFAULT_CALLBACK_CONFIG
        elif not isinstance(config, CallbackConfig):
            raise ValidationError(f"config must be a CallbackConfig (got {config!r})")
        name = _check_name(name)
        op_id, operation = self._claim(
            OperationType.CALLBACK, OperationSubType.CALLBACK, name
        )
        if operation is None:
            with self._operation(
                op_id, OperationType.CALLBACK, OperationSubType.CALLBACK, name
            ):
                self._checkpoint(
                    self._update(
                        op_id,
                        OperationType.CALLBACK,
                        OperationSubType.CALLBACK,
                        name,
                        OperationAction.START,
                        callback_options=CallbackOptions(
                            timeout_seconds=config.timeout_seconds,
                            heartbeat_timeout_seconds=config.heartbeat_timeout_seconds,
                        ),
                    )
                )
                operation = self._state.get(op_id)
        callback_id = (
            operation.callback_details.callback_id
            if operation is not None and operation.callback_details
            else None
        )
        if not callback_id:
            raise CheckpointError(
                f"the service gave callback {name or op_id} no callback id"
            )
        return Callback(self, op_id, name, callback_id, serdes_for(config.serdes))

    def wait_for_callback(
        self,
        submitter: Callable[[str, StepContext], Any],
        name: str | None = None,
        config: WaitForCallbackConfig | None = None,
    ) -> Any:
        """Create a callback, hand its id to ``submitter``, wait for it.

        One child context (sub-type WaitForCallback) holds the callback and
        a step that calls ``submitter(callback_id, step_context)`` with the
        config's retry strategy; the step may run more than once, the
        callback is created once.

        Raises:
            CallbackError: the callback was failed, or the submitter failed.
            CallbackTimeoutError: the callback timed out.
        """
        _check_callable("submitter", submitter)
        if config is None:
            config = _DEFAULT_WAIT_FOR_CALLBACK_CONFIG
        elif not isinstance(config, WaitForCallbackConfig):
            raise ValidationError(
                f"config must be a WaitForCallbackConfig (got {config!r})"
            )
        name = _check_name(name)

        def body(child: DurableContext) -> Any:
            callback = child.create_callback(config=config)
            child.step(
                lambda step: submitter(callback.callback_id, step),
                name="submitter",
                config=StepConfig(retry_strategy=config.retry_strategy),
            )
            # The child keeps the answer's text as it came; it is read with
            # the config's serdes below, on the first run as on replay.
            return callback.raw_result()

        # The id _run_child is about to take, for the serdes context.
        op_id = operation_id(f"{self._prefix}{self._next}")
        try:
            text = self._run_child(
                body,
                name,
                ChildConfig(serdes=_RAW_SERDES),
                OperationSubType.WAIT_FOR_CALLBACK,
            )
        except ChildContextError as error:
            kind = (
                CallbackTimeoutError
                if (error.error_type or "").startswith("Callback.")
                else CallbackError
            )
            raise kind(
                error.error_message,
                error_type=error.error_type,
                error_data=error.error_data,
                stack_trace=error.stack_trace,
            ) from error
        return deserialize(
            serdes_for(config.serdes), text, self._serdes_context(op_id, name)
        )

    # -- chained invoke ------------------------------------------------------------

    def invoke(
        self,
        function_name: str,
        payload: Any = None,
        name: str | None = None,
        config: InvokeConfig | None = None,
    ) -> Any:
        """Invoke another function and return its result.

        The invoke is checkpointed and the invocation suspends; the service
        runs the target (a durable function runs as an execution of its
        own) and invokes this handler again with its outcome. On replay the
        recorded outcome is returned without invoking again.

        Raises:
            InvokeError: the target failed, timed out or was stopped.
        """
        if not isinstance(function_name, str) or not function_name:
            raise ValidationError(
                f"function_name must be a non-empty string (got {function_name!r})"
            )
        if config is None:
            config = _DEFAULT_INVOKE_CONFIG
        elif not isinstance(config, InvokeConfig):
            raise ValidationError(f"config must be an InvokeConfig (got {config!r})")
        name = _check_name(name)
        op_id, operation = self._claim(
            OperationType.CHAINED_INVOKE, OperationSubType.CHAINED_INVOKE, name
        )
        serdes_context = self._serdes_context(op_id, name)
        if operation is None:
            with self._operation(
                op_id,
                OperationType.CHAINED_INVOKE,
                OperationSubType.CHAINED_INVOKE,
                name,
            ):
                text = serialize(
                    serdes_for(config.payload_serdes), payload, serdes_context
                )
                if len(text.encode()) > _MAX_INVOKE_PAYLOAD_BYTES:
                    raise ValidationError(
                        f"the payload of invoke {name or op_id} serializes to "
                        f"{len(text.encode()):,} bytes; a chained invoke takes "
                        f"at most {_MAX_INVOKE_PAYLOAD_BYTES:,}"
                    )
                self._checkpoint(
                    self._update(
                        op_id,
                        OperationType.CHAINED_INVOKE,
                        OperationSubType.CHAINED_INVOKE,
                        name,
                        OperationAction.START,
                        payload=text,
                        chained_invoke_options=ChainedInvokeOptions(
                            function_name, config.tenant_id
                        ),
                    )
                )
                operation = self._state.get(op_id)
        if operation is None or not operation.is_terminal:
            raise SuspendExecution(f"invoke {op_id} waits for {function_name}")
        if operation.status is OperationStatus.SUCCEEDED:
            return deserialize(
                serdes_for(config.result_serdes), operation.result, serdes_context
            )
        raise InvokeError.from_error_object(operation.error)

    # -- wait for condition --------------------------------------------------------

    def wait_for_condition(
        self,
        check: Callable[[Any, StepContext], Any],
        config: WaitForConditionConfig,
        name: str | None = None,
    ) -> Any:
        """Poll ``check`` until the config's wait strategy says stop.

        Each check is a step attempt (sub-type WaitForCondition) that gets
        the current state and returns the next; the state is checkpointed
        with each decision to wait, and the invocation suspends until the
        service brings the next check. Returns the final state.

        Raises:
            WaitForConditionError: ``check`` raised (checks are not
                retried), or the strategy ran out of attempts.
        """
        _check_callable("check", check)
        if not isinstance(config, WaitForConditionConfig):
            raise ValidationError(
                f"config must be a WaitForConditionConfig (got {config!r})"
            )
        name = _check_name(name) if name is not None else _default_name(check)
        sub_type = OperationSubType.WAIT_FOR_CONDITION
        op_id, operation = self._claim(OperationType.STEP, sub_type, name)
        serdes = serdes_for(config.serdes)
        serdes_context = self._serdes_context(op_id, name)

        state = config.initial_state
        attempts_done = 0
        needs_start = True
        if operation is not None:
            details = operation.step_details
            attempts_done = (details.attempt if details else None) or 0
            if operation.status is OperationStatus.SUCCEEDED:
                return deserialize(serdes, operation.result, serdes_context)
            if operation.status is OperationStatus.FAILED:
                raise WaitForConditionError.from_error_object(operation.error)
            if operation.status is OperationStatus.PENDING:
                raise SuspendExecution(f"wait for condition {op_id} is waiting")
            if operation.result is not None:
                state = deserialize(serdes, operation.result, serdes_context)
            needs_start = operation.status is not OperationStatus.STARTED

        with self._operation(op_id, OperationType.STEP, sub_type, name):
            return self._check_condition(
                check,
                config,
                op_id,
                name,
                state,
                serdes,
                serdes_context,
                attempts_done + 1,
                needs_start,
            )

    def _check_condition(
        self,
        check: Callable[[Any, StepContext], Any],
        config: WaitForConditionConfig,
        op_id: str,
        name: str | None,
        state: Any,
        serdes: SerDes[Any],
        serdes_context: SerDesContext,
        attempt: int,
        needs_start: bool,
    ) -> Any:
        """Run one check of a condition that is not recorded as met."""
        sub_type = OperationSubType.WAIT_FOR_CONDITION
        update = functools.partial(
            OperationUpdate,
            id=op_id,
            type=OperationType.STEP,
            parent_id=self._parent_id,
            name=name,
            sub_type=sub_type,
        )
        if needs_start:
            self._checkpoint(update(action=OperationAction.START))
        try:
            with self._attempt(op_id, name, sub_type, attempt):
                state = check(state, StepContext(op_id, name, attempt, self.logger))
            payload = serialize(serdes, state, serdes_context)
            _check_payload_size(payload, f"the state of {name or op_id}")
            state = deserialize(serdes, payload, serdes_context)
            decision = config.wait_strategy(state, attempt)
        except (SuspendExecution, NonDeterministicExecutionError):
            raise
        except Exception as error:
            recorded = error_object_from_exception(error)
            self._checkpoint(update(action=OperationAction.FAIL, error=recorded))
            raise WaitForConditionError.from_error_object(recorded) from error
        if not decision.should_continue:
            self._checkpoint(update(action=OperationAction.SUCCEED, payload=payload))
            return state
        self._checkpoint(
            update(
                action=OperationAction.RETRY,
                payload=payload,
                step_options=StepOptions(decision.delay_seconds),
            )
        )
        raise SuspendExecution(
            f"wait for condition {op_id} checks again in {decision.delay_seconds} s"
        )

    # -- parallel and map ------------------------------------------------------

    def parallel(
        self,
        branches: Sequence[Callable[[DurableContext], T] | ParallelBranch],
        name: str | None = None,
        config: ParallelConfig | None = None,
    ) -> BatchResult[T]:
        """Run ``branches`` concurrently, each in a child context.

        Branches are submitted in order to a thread pool sized by
        ``config.max_concurrency``; the completion policy is evaluated
        after every branch outcome, and once it is decided no branch
        starts, running ones stop at their next durable operation, and the
        batch is checkpointed. A finished batch replays from its
        checkpoint without running a branch; an unfinished one replays
        finished branches from theirs and runs the rest.

        Args:
            branches: callables taking a :class:`DurableContext`, or
                :class:`ParallelBranch` objects to name them.
            name: recorded with the batch.
            config: concurrency, completion policy, nesting and serdes.

        Returns:
            Every started branch's outcome, in branch order. The batch
            does not raise for failed branches; see
            :meth:`BatchResult.throw_if_error`.
        """
        if config is None:
            config = _DEFAULT_PARALLEL_CONFIG
        elif not isinstance(config, ParallelConfig):
            raise ValidationError(f"config must be a ParallelConfig (got {config!r})")
        name = _check_name(name)
        if isinstance(branches, (str, bytes)) or not isinstance(branches, Sequence):
            raise ValidationError(
                f"branches must be a sequence of callables (got {branches!r})"
            )
        units = []
        for index, branch in enumerate(branches):
            if isinstance(branch, ParallelBranch):
                branch_name, func = _check_name(branch.name), branch.func
            elif callable(branch):
                branch_name, func = None, branch
            else:
                raise ValidationError(
                    f"branch {index} must be callable or a ParallelBranch "
                    f"(got {branch!r})"
                )
            units.append(
                Unit(
                    index=index,
                    name=branch_name,
                    items=(index,),
                    item_names=(branch_name,),
                    body=_single(func),
                    batched=False,
                )
            )
        return run_batch(self, "parallel", name, units, len(units), config)

    def map(
        self,
        items: Sequence[ItemT],
        func: Callable[[DurableContext, ItemT, int, Sequence[ItemT]], T],
        name: str | None = None,
        config: MapConfig | None = None,
    ) -> BatchResult[T]:
        """Run ``func(ctx, item, index, items)`` for every item.

        Each item runs in a child context of its own (or, with
        ``config.batch_size``, a run of items shares one), under the same
        concurrency, completion policy and replay rules as
        :meth:`parallel`.

        Returns:
            Every started item's outcome, in item order.
        """
        if config is None:
            config = _DEFAULT_MAP_CONFIG
        elif not isinstance(config, MapConfig):
            raise ValidationError(f"config must be a MapConfig (got {config!r})")
        _check_callable("func", func)
        name = _check_name(name)
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
            raise ValidationError(
                f"items must be a sequence (got {type(items).__name__})"
            )
        names: list[str | None] = []
        for index, item in enumerate(items):
            if config.item_namer is None:
                names.append(None)
                continue
            try:
                item_name = config.item_namer(item, index)
            except Exception as error:
                raise ValidationError(
                    f"item_namer failed for item {index}: {error}"
                ) from error
            names.append(_check_name(item_name))
        units = _map_units(items, func, names, config)
        return run_batch(self, "map", name, units, len(items), config)


class _RawSerDes:
    """Text in, text out: a payload checkpointed as it already is."""

    def serialize(self, value: Any, context: SerDesContext) -> str:
        return "" if value is None else str(value)

    def deserialize(self, payload: str, context: SerDesContext) -> Any:
        return payload or None


_RAW_SERDES = _RawSerDes()


class Callback(Generic[T]):
    """A callback created by :meth:`DurableContext.create_callback`.

    Attributes:
        callback_id: what the system outside answers with.
        operation_id: the callback's operation id.
        name: its name, if any.
    """

    def __init__(
        self,
        context: DurableContext,
        operation_id: str,
        name: str | None,
        callback_id: str,
        serdes: SerDes[Any],
    ) -> None:
        self._context = context
        self.operation_id = operation_id
        self.name = name
        self.callback_id = callback_id
        self._serdes = serdes

    def raw_result(self) -> str | None:
        """The answer's text as it came; suspends until there is one.

        Raises:
            CallbackError: the callback was answered with a failure.
            CallbackTimeoutError: it timed out, or missed a heartbeat.
        """
        operation = self._context._state.get(self.operation_id)
        if operation is None or not operation.is_terminal:
            raise SuspendExecution(f"callback {self.operation_id} has no answer")
        if operation.status is OperationStatus.SUCCEEDED:
            return operation.result
        if operation.status is OperationStatus.TIMED_OUT:
            raise CallbackTimeoutError.from_error_object(operation.error)
        raise CallbackError.from_error_object(operation.error)

    def result(self) -> T:
        """The answer, deserialized; suspends until there is one.

        Raises:
            CallbackError: the callback was answered with a failure.
            CallbackTimeoutError: it timed out, or missed a heartbeat.
        """
        text = self.raw_result()
        return deserialize(  # type: ignore[no-any-return]
            self._serdes,
            text,
            self._context._serdes_context(self.operation_id, self.name),
        )

    def __repr__(self) -> str:
        return f"Callback(name={self.name!r}, callback_id={self.callback_id!r})"


def _size_summary(result: Any) -> str:
    return '{"summary":"result over 256 KiB, rebuilt on replay"}'


def _check_payload_size(payload: str, what: str) -> None:
    size = len(payload.encode())
    if size > MAX_PAYLOAD_BYTES:
        raise ValidationError(
            f"{what} serializes to {size:,} bytes; a checkpointed payload "
            f"may be at most {MAX_PAYLOAD_BYTES:,} bytes"
        )


def describe_operation(operation: Operation) -> str:
    """A short human description of an operation, for messages."""
    name = f" {operation.name!r}" if operation.name else ""
    return f"{operation.type.value}{name} (id {operation.id})"


def _single(
    func: Callable[[DurableContext], Any],
) -> Callable[[DurableContext], list[tuple[Any, BaseException | None]]]:
    def body(ctx: DurableContext) -> list[tuple[Any, BaseException | None]]:
        return [(func(ctx), None)]

    return body


def _bind_item(
    func: Callable[..., Any], items: Sequence[Any], index: int
) -> Callable[[DurableContext], Any]:
    def call(ctx: DurableContext) -> Any:
        return func(ctx, items[index], index, items)

    return call


def _batched_body(
    func: Callable[..., Any], items: Sequence[Any], group: tuple[int, ...]
) -> Callable[[DurableContext], list[tuple[Any, BaseException | None]]]:
    """Run a run of items in one context, keeping each item's outcome."""

    def body(ctx: DurableContext) -> list[tuple[Any, BaseException | None]]:
        outcomes: list[tuple[Any, BaseException | None]] = []
        for index in group:
            try:
                outcomes.append((func(ctx, items[index], index, items), None))
            except NonDeterministicExecutionError:
                raise
            except Exception as error:
                outcomes.append((None, error))
        return outcomes

    return body


def _map_units(
    items: Sequence[Any],
    func: Callable[..., Any],
    names: list[str | None],
    config: MapConfig,
) -> list[Unit]:
    """Group items into units: one item each, or with ``batch_size`` runs
    of up to that many items and ``batch_bytes`` bytes of JSON."""
    if config.batch_size is None:
        return [
            Unit(
                index=index,
                name=names[index],
                items=(index,),
                item_names=(names[index],),
                body=_single(_bind_item(func, items, index)),
                batched=False,
            )
            for index in range(len(items))
        ]

    groups: list[list[int]] = []
    size = 0
    for index, item in enumerate(items):
        item_bytes = 0
        if config.batch_bytes is not None:
            item_bytes = len(json.dumps(item, default=str).encode())
        if (
            not groups
            or len(groups[-1]) >= config.batch_size
            or (
                config.batch_bytes is not None
                and size + item_bytes > config.batch_bytes
            )
        ):
            groups.append([])
            size = 0
        groups[-1].append(index)
        size += item_bytes
    return [
        Unit(
            index=unit_index,
            name=None,
            items=tuple(group),
            item_names=tuple(names[i] for i in group),
            body=_batched_body(func, items, tuple(group)),
            batched=True,
        )
        for unit_index, group in enumerate(groups)
    ]
