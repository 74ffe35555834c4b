"""``@durable_execution``: a workflow function as a Lambda handler.

The service invokes the handler with an envelope — the execution's ARN, a
checkpoint token and the first page of its operations — and expects back
``{"Status": "SUCCEEDED" | "FAILED" | "PENDING", ...}``. The decorator
loads every page of state, runs the workflow function on a root
:class:`DurableContext`, and turns whatever happened into that reply:

* the function returned: SUCCEEDED with the JSON result (a result too
  large for a Lambda response is checkpointed instead);
* it raised: FAILED with the error;
* an operation suspended (a wait, a retry delay): PENDING, and the service
  invokes again when something changed;
* replay found a changed handler: FAILED, with no retry.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from ._state import ExecutionState
from .context import DurableContext
from .errors import (
    CheckpointError,
    InvalidCheckpointTokenError,
    SerDesError,
    SuspendExecution,
    ValidationError,
    error_object_from_exception,
)
from .plugins import (
    InvocationEndInfo,
    InvocationStartInfo,
    PluginSet,
    check_plugins,
    entry_point_plugins,
)
from .serde import SerDes, SerDesContext, default_serdes, serialize
from .service._protocol import DurableServiceClient
from .wire import (
    ErrorObject,
    Operation,
    OperationAction,
    OperationType,
    OperationUpdate,
    from_wire,
    to_wire,
)

__all__ = ["DurableHandler", "durable_execution", "parse_envelope"]

logger = logging.getLogger(__name__)

E = TypeVar("E")
R = TypeVar("R")

# A Lambda response may be 6 MiB; the envelope around the result takes a
# little of that.
MAX_RESULT_BYTES = 6 * 1024 * 1024 - 50
# A checkpointed payload may hold this many characters.
MAX_CHECKPOINTED_RESULT_CHARS = 6_291_456
_STATE_PAGE_SIZE = 1000


class _Envelope:
    __slots__ = ("arn", "token", "operations", "next_marker")

    def __init__(
        self,
        arn: str,
        token: str,
        operations: list[Operation],
        next_marker: str | None,
    ) -> None:
        self.arn = arn
        self.token = token
        self.operations = operations
        self.next_marker = next_marker


def parse_envelope(event: Any) -> _Envelope:
    """Read the service's invocation envelope, or explain what is wrong."""
    if not isinstance(event, Mapping):
        raise ValidationError(
            "the handler's event must be a durable execution envelope, a "
            f"mapping (got {type(event).__name__}: {_preview(event)})"
        )
    arn = event.get("DurableExecutionArn")
    if not isinstance(arn, str) or not arn:
        raise ValidationError(
            "malformed envelope: 'DurableExecutionArn' must be a non-empty "
            f"string (got {arn!r})"
        )
    token = event.get("CheckpointToken")
    if not isinstance(token, str) or not token:
        raise ValidationError(
            "malformed envelope: 'CheckpointToken' must be a non-empty "
            f"string (got {token!r})"
        )
    initial = event.get("InitialExecutionState")
    if not isinstance(initial, Mapping):
        raise ValidationError(
            "malformed envelope: 'InitialExecutionState' must be a mapping "
            f"(got {_preview(initial)})"
        )
    # Absent means no operations; anything else must really be a list.
    raw_operations = initial.get("Operations")
    if raw_operations is None:
        raw_operations = []
    if not isinstance(raw_operations, list):
        raise ValidationError(
            "malformed envelope: 'InitialExecutionState.Operations' must be "
            f"a list (got {_preview(raw_operations)})"
        )
    operations = []
    for index, raw in enumerate(raw_operations):
        try:
            operations.append(from_wire(raw, Operation))
        except Exception as error:
            raise ValidationError(
                "malformed envelope: operation "
                f"{index} is not a valid Operation ({error}): {_preview(raw)}"
            ) from None
    marker = initial.get("NextMarker") or None
    if marker is not None and not isinstance(marker, str):
        raise ValidationError(
            "malformed envelope: 'InitialExecutionState.NextMarker' must be "
            f"a string (got {marker!r})"
        )
    return _Envelope(arn, token, operations, marker)


def _preview(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_default_client: DurableServiceClient | None = None
_default_client_lock = threading.Lock()


def _lambda_client() -> DurableServiceClient:
    """The process-wide client of the real service, made on first use."""
    global _default_client
    with _default_client_lock:
        if _default_client is None:
            from .service import BotoServiceClient

            _default_client = BotoServiceClient()
        return _default_client


class DurableHandler(Generic[E, R]):
    """A workflow function wrapped as a durable Lambda handler.

    Call it as Lambda does, ``handler(event, lambda_context)``; or use
    :meth:`invoke` to give it a service client explicitly. See
    :func:`durable_execution` for the options.
    """

    def __init__(
        self,
        func: Callable[[E, DurableContext], R],
        *,
        client: DurableServiceClient | None = None,
        serdes: SerDes[Any] | None = None,
        logger: logging.Logger | None = None,
        log_during_replay: bool = False,
        plugins: Sequence[object] = (),
        load_entry_points: bool = True,
    ) -> None:
        if not callable(func):
            raise ValidationError(f"func must be callable (got {func!r})")
        self.func = func
        self.client = client
        self.serdes = serdes or default_serdes
        self.logger = logger
        self.log_during_replay = log_during_replay
        self.plugins = check_plugins(plugins)
        self.load_entry_points = load_entry_points
        # Made on the first invocation, once entry points may be loaded;
        # None when no plugin is registered.
        self._plugin_set: PluginSet | None = None
        self._plugins_ready = False
        functools.update_wrapper(self, func)

    def __call__(self, event: Any, context: Any = None) -> dict[str, Any]:
        return self.invoke(event, context)

    def invoke(
        self,
        event: Any,
        lambda_context: Any = None,
        *,
        client: DurableServiceClient | None = None,
    ) -> dict[str, Any]:
        """Run one invocation and return the reply for the service."""
        envelope = parse_envelope(event)
        client = client or self.client or _lambda_client()

        operations = list(envelope.operations)
        marker = envelope.next_marker
        while marker:
            page = client.get_execution_state(
                envelope.arn, envelope.token, marker, _STATE_PAGE_SIZE
            )
            operations.extend(page.operations)
            marker = page.next_marker

        execution_op = next(
            (op for op in operations if op.type is OperationType.EXECUTION),
            None,
        )
        if execution_op is None:
            raise ValidationError(
                "malformed envelope: no EXECUTION operation in the state of "
                f"{envelope.arn}"
            )

        plugins = self._plugins()
        if plugins is None:
            return self._start(
                envelope, operations, execution_op, lambda_context, client, None
            )
        first = all(op.type is OperationType.EXECUTION for op in operations)
        plugins.fire(
            "on_invocation_start",
            InvocationStartInfo(envelope.arn, first, lambda_context),
        )
        try:
            reply = self._start(
                envelope, operations, execution_op, lambda_context, client, plugins
            )
        except BaseException as error:
            plugins.fire(
                "on_invocation_end",
                InvocationEndInfo(
                    envelope.arn, None, error_object_from_exception(error)
                ),
            )
            raise
        error_object = reply.get("Error")
        plugins.fire(
            "on_invocation_end",
            InvocationEndInfo(
                envelope.arn,
                reply["Status"],
                from_wire(error_object, ErrorObject) if error_object else None,
            ),
        )
        return reply

    def _plugins(self) -> PluginSet | None:
        """The handler's plugins and, unless disabled, the entry points'."""
        if not self._plugins_ready:
            plugins = self.plugins
            if self.load_entry_points:
                plugins += entry_point_plugins()
            self._plugin_set = PluginSet(plugins) if plugins else None
            self._plugins_ready = True
        return self._plugin_set

    def _start(
        self,
        envelope: _Envelope,
        operations: list[Operation],
        execution_op: Operation,
        lambda_context: Any,
        client: DurableServiceClient,
        plugins: PluginSet | None,
    ) -> dict[str, Any]:
        """Read the input, then run the workflow function."""
        payload = (
            execution_op.execution_details.input_payload
            if execution_op.execution_details
            else None
        )
        try:
            user_input = json.loads(payload) if payload and payload.strip() else {}
        except json.JSONDecodeError as error:
            return _failed(
                ErrorObject(
                    error_message=f"the execution input is not JSON: {error}",
                    error_type="SerDesError",
                )
            )

        state = ExecutionState(envelope.arn, envelope.token, operations, client)
        context = DurableContext(
            state,
            base_logger=self.logger,
            log_during_replay=self.log_during_replay,
            lambda_context=lambda_context,
            plugins=plugins,
        )
        started = time.perf_counter()
        try:
            reply = self._run(user_input, context, state, execution_op.id)
        finally:
            logger.debug(
                "invocation of %s ended in %.1f ms",
                envelope.arn,
                (time.perf_counter() - started) * 1000,
            )
        return reply

    def _run(
        self,
        user_input: Any,
        context: DurableContext,
        state: ExecutionState,
        execution_id: str,
    ) -> dict[str, Any]:
        try:
            result = self.func(user_input, context)
            if state.nondeterminism is not None:
                raise state.nondeterminism
            state.flush()
        except SuspendExecution:
            return self._suspend(state)
        except InvalidCheckpointTokenError as error:
            # Another invocation owns the execution now, or it has ended.
            # What was checkpointed stays; this invocation just stops.
            logger.warning("invocation stops: %s", error)
            return {"Status": "PENDING"}
        except CheckpointError as error:
            if error.retryable:
                raise
            return self._fail(state, error)
        except Exception as error:
            # A replay mismatch fails the execution even when user code
            # caught it and raised something else.
            return self._fail(state, state.nondeterminism or error)

        try:
            text = serialize(
                self.serdes,
                result,
                SerDesContext(execution_id, state.durable_execution_arn),
            )
        except SerDesError as error:
            return self._fail(state, error)
        if len(text) > MAX_CHECKPOINTED_RESULT_CHARS:
            # Too large even to checkpoint: the execution cannot return it.
            return self._fail(
                state,
                SerDesError(
                    f"the execution's result serializes to {len(text):,} "
                    "characters; the service keeps at most "
                    f"{MAX_CHECKPOINTED_RESULT_CHARS:,}"
                ),
            )
        if len(text.encode()) > MAX_RESULT_BYTES:
            # Too large for the response: checkpoint it as the outcome.
            state.checkpoint(
                OperationUpdate(
                    id=f"execution-result-{int(time.time() * 1000)}",
                    type=OperationType.EXECUTION,
                    action=OperationAction.SUCCEED,
                    payload=text,
                )
            )
            return {"Status": "SUCCEEDED", "Result": ""}
        return {"Status": "SUCCEEDED", "Result": text}

    def _suspend(self, state: ExecutionState) -> dict[str, Any]:
        try:
            state.flush()
        except SuspendExecution:
            pass
        except InvalidCheckpointTokenError as error:
            logger.warning("invocation stops: %s", error)
        return {"Status": "PENDING"}

    def _fail(self, state: ExecutionState, error: BaseException) -> dict[str, Any]:
        recorded = error_object_from_exception(error)
        try:
            state.flush()
        except SuspendExecution:
            return {"Status": "PENDING"}
        except CheckpointError:
            if state.failure is not None and state.failure is not error:
                raise
        return _failed(recorded)


def _failed(error: ErrorObject) -> dict[str, Any]:
    return {"Status": "FAILED", "Error": to_wire(error)}


def durable_execution(
    func: Callable[[E, DurableContext], R] | None = None,
    *,
    client: DurableServiceClient | None = None,
    serdes: SerDes[Any] | None = None,
    logger: logging.Logger | None = None,
    log_during_replay: bool = False,
    plugins: Sequence[object] = (),
    load_entry_points: bool = True,
) -> Any:
    """Make ``func(event, context)`` a durable Lambda handler.

    Use bare (``@durable_execution``) or with options
    (``@durable_execution(log_during_replay=True)``).

    Args:
        func: the workflow function.
        client: the service client; default, boto3's ``lambda`` client.
        serdes: how the execution's result is serialized; default JSON.
        logger: the logger behind ``context.logger``; default
            ``durable_exec.workflow``.
        log_during_replay: let ``context.logger`` print during replay too.
        plugins: instrumentation plugins (see :mod:`durable_exec.plugins`),
            called in this order; default none.
        load_entry_points: also use the plugins installed under the
            ``durable_exec.plugins`` entry-point group, after ``plugins``;
            default True.
    """

    def wrap(f: Callable[[E, DurableContext], R]) -> DurableHandler[E, R]:
        return DurableHandler(
            f,
            client=client,
            serdes=serdes,
            logger=logger,
            log_during_replay=log_during_replay,
            plugins=plugins,
            load_entry_points=load_entry_points,
        )

    if func is not None:
        return wrap(func)
    return wrap
