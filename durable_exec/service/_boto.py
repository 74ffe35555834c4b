"""The durable execution service, reached through boto3's ``lambda`` client.

:class:`BotoServiceClient` turns the two calls of
:class:`~durable_exec.service._protocol.DurableServiceClient` into
``CheckpointDurableExecution`` and ``GetDurableExecutionState`` requests,
and the service's errors into the SDK's:

- throttling (HTTP 429), server errors (HTTP 5xx) and network errors are
  retried here, with exponential backoff and full jitter; when the
  attempts run out the call raises ``CheckpointError(retryable=True)``, so
  that the invocation fails and Lambda invokes the handler again;
- a stale or unknown checkpoint token raises
  :class:`~durable_exec.errors.InvalidCheckpointTokenError` at once;
- every other refusal (HTTP 4xx, and the KMS errors the service sends with
  HTTP 502) raises ``CheckpointError(retryable=False)`` at once: asking
  again cannot help.

Retrying a checkpoint does not apply it twice. When a checkpoint reaches
the service but its reply is lost (a read timeout, a closed connection),
its updates are applied and its token is spent, and the retry carries the
spent token. Every attempt of one :meth:`BotoServiceClient.checkpoint`
call carries the same ``ClientToken`` (the caller's, or one made for the
call), and the service answers a repeated ``ClientToken`` with the first
reply instead of refusing the spent token. botocore would fill in a fresh
``ClientToken`` on each attempt, since the model marks it an idempotency
token, which is why the client makes one itself. Reading state never
changes anything and is always safe to repeat.

One client may serve many threads: the retry loop keeps its per-call state
in thread-locals, and the lazily created boto3 client, itself thread-safe,
is created once under a lock.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

# boto3 and botocore ship no types; boto3-stubs supplies them where it is
# installed, and the ignores keep mypy --strict quiet either way.
import boto3  # type: ignore[import-untyped, unused-ignore]
import botocore.config  # type: ignore[import-untyped, unused-ignore]
import tenacity
from botocore.exceptions import (  # type: ignore[import-untyped,unused-ignore]
    BotoCoreError,
    ClientError,
    HTTPClientError,
)
from botocore.exceptions import (  # type: ignore[import-untyped,unused-ignore]
    ConnectionError as BotoConnectionError,
)

from ..errors import (
    CheckpointError,
    InvalidCheckpointTokenError,
    ValidationError,
)
from ..wire import (
    CheckpointResult,
    Operation,
    OperationType,
    OperationUpdate,
    StatePage,
    from_wire,
    to_wire,
)

__all__ = ["BotoServiceClient", "ServiceRetryConfig"]

_log = logging.getLogger(__name__)

# Each call as (API operation name, boto3 method name).
_CHECKPOINT: Final = (
    "CheckpointDurableExecution",
    "checkpoint_durable_execution",
)
_GET_STATE: Final = (
    "GetDurableExecutionState",
    "get_durable_execution_state",
)

# Error codes retried whatever their HTTP status; any other code is
# retried when its status is 429 or 5xx.
_RETRYABLE_CODES: Final = frozenset(
    {
        # Throttling; the service's own is TooManyRequestsException (429).
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottledException",
        "RequestLimitExceeded",
        # Transient failures on the service's side.
        "ServiceException",
        "ServiceUnavailableException",
        "InternalFailure",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
    }
)

# The KMS* codes come with HTTP 502 yet name a key that is disabled,
# missing or not allowed: a configuration fault no retry repairs.
_PERMANENT_PREFIX: Final = "KMS"

# A stale or unknown token is an InvalidParameterValueException whose
# message starts so. "400" is the code botocore falls back on when an
# error body names no type, as the reference emulator's bodies do
# (SERVICE.md, section 9); the message prefix still identifies the error.
_TOKEN_ERROR_CODES: Final = frozenset(
    {
        "InvalidParameterValueException",
        "400",
    }
)
_TOKEN_ERROR_PREFIX: Final = "Invalid checkpoint token"

# What botocore raises when no HTTP response arrived: failed DNS or
# connect, timeouts, and urllib3's protocol errors (a connection closed
# mid-response), which botocore wraps as ConnectionClosedError. The same
# two classes botocore's own "standard" retry mode treats as transient.
_NETWORK_ERRORS: Final = (BotoConnectionError, HTTPClientError)


def _check_attempts(_: Any, attr: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        message = f"{attr.name} must be an int >= 1 (got {value!r})"
        raise ValidationError(message)


def _check_seconds(_: Any, attr: attrs.Attribute[float], value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        message = f"{attr.name} must be finite seconds >= 0 (got {value!r})"
        raise ValidationError(message)


@attrs.frozen
class ServiceRetryConfig:
    """How :class:`BotoServiceClient` retries throttling, 5xx and network
    errors.

    Backoff is exponential with full jitter: before retry ``n`` (1-based)
    the client sleeps a uniformly random time between 0 and
    ``min(max_backoff, initial_backoff * 2 ** (n - 1))`` seconds.

    Attributes:
        max_attempts: calls in all, the first one included; 1 turns
            retries off. Default 5.
        initial_backoff: the first backoff window, in seconds. Default
            0.1.
        max_backoff: the cap on any backoff window, in seconds. Default
            5.0.
    """

    max_attempts: int = attrs.field(default=5, validator=_check_attempts)
    initial_backoff: float = attrs.field(default=0.1, validator=_check_seconds)
    max_backoff: float = attrs.field(default=5.0, validator=_check_seconds)


class BotoServiceClient:
    """A :class:`DurableServiceClient` on a boto3 ``lambda`` client.

    Args:
        client: the boto3 ``lambda`` client to call. By default one is
            created on first use, from boto3's default session, with
            botocore's own retries turned off. An injected client keeps its
            own retry configuration; give it ``retries={"max_attempts":
            1}`` so that its retries do not multiply with these.
        retry: how throttling, 5xx and network errors are retried; see
            :class:`ServiceRetryConfig` for the defaults.
        sleep: what waits out a backoff delay, given in seconds; tests
            pass a recorder to run instantly.
    """

    def __init__(
        self,
        client: Any | None = None,
        *,
        retry: ServiceRetryConfig | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._client_lock = threading.Lock()
        self._retry = retry = retry or ServiceRetryConfig()

        # One Retrying serves every call: tenacity keeps the per-call
        # state in thread-locals, so there is nothing to copy per call.
        self._retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(retry.max_attempts),
            wait=tenacity.wait_random_exponential(
                multiplier=retry.initial_backoff,
                max=retry.max_backoff,
            ),
            retry=tenacity.retry_if_exception(_is_transient),
            sleep=sleep,
            before_sleep=_log_retry,
            reraise=False,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(retry={self._retry!r})"

    @property
    def retry(self) -> ServiceRetryConfig:
        """How throttling, 5xx and network errors are retried."""
        return self._retry

    @property
    def client(self) -> Any:
        """The boto3 ``lambda`` client, created on first use if needed."""
        client = self._client
        if client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = _default_client()
                client = self._client
        return client

    def checkpoint(
        self,
        durable_execution_arn: str,
        checkpoint_token: str,
        updates: Sequence[OperationUpdate],
        client_token: str | None = None,
    ) -> CheckpointResult:
        """Send ``updates`` as one checkpoint and return the service's reply.

        Args:
            durable_execution_arn: the execution's ARN.
            checkpoint_token: the newest token; the service spends it.
            updates: the operation updates, applied all or none.
            client_token: the idempotency token: the service answers a
                repeat within 15 minutes with the first reply. When
                ``None``, a random one is made for this call, and every
                retry of the call reuses it.

        Returns:
            The next token (``None`` when the reply carries none, as after
            the execution's own SUCCEED or FAIL), the operations changed
            since the last reply, and the marker of their next page.

        Raises:
            InvalidCheckpointTokenError: the token is spent or unknown.
            CheckpointError: the service refused the checkpoint
                (``retryable`` false), or kept failing until the attempts
                ran out (``retryable`` true).
        """
        _check_limits(durable_execution_arn, updates)
        params: dict[str, Any] = {
            "DurableExecutionArn": durable_execution_arn,
            "CheckpointToken": checkpoint_token,
            "Updates": [to_wire(update) for update in updates],
            # The same token on every attempt makes the retries safe; see
            # the module docstring.
            "ClientToken": client_token or str(uuid.uuid4()),
        }

        reply = self._call(_CHECKPOINT, durable_execution_arn, params)

        state = reply.get("NewExecutionState") or {}
        return CheckpointResult(
            checkpoint_token=reply.get("CheckpointToken") or None,
            operations=_operations(state.get("Operations")),
            next_marker=state.get("NextMarker") or None,
        )

    def get_execution_state(
        self,
        durable_execution_arn: str,
        checkpoint_token: str,
        marker: str | None = None,
        max_items: int | None = None,
    ) -> StatePage:
        """Read one page of the execution's operations, in start order.

        The service checks the token but does not spend it.

        Args:
            durable_execution_arn: the execution's ARN.
            checkpoint_token: the newest token.
            marker: where the page starts, from the previous page's
                ``next_marker``; ``None`` or ``""`` for the first page.
            max_items: the most operations in the page; the service's
                default (100) when ``None``.

        Returns:
            The page, with ``next_marker`` ``None`` on the last one.

        Raises:
            InvalidCheckpointTokenError: the token is spent or unknown.
            CheckpointError: as for :meth:`checkpoint`.
        """
        params: dict[str, Any] = {
            "DurableExecutionArn": durable_execution_arn,
            "CheckpointToken": checkpoint_token,
        }
        if marker:
            params["Marker"] = marker
        if max_items is not None:
            params["MaxItems"] = max_items

        reply = self._call(_GET_STATE, durable_execution_arn, params)

        return StatePage(
            operations=_operations(reply.get("Operations")),
            next_marker=reply.get("NextMarker") or None,
        )

    def _call(
        self,
        operation: tuple[str, str],
        arn: str,
        params: dict[str, Any],
    ) -> Mapping[str, Any]:
        api_name, method_name = operation
        try:
            method = getattr(self.client, method_name)
            reply = self._retrying(_send, api_name, method, params)
        except tenacity.RetryError as exhausted:
            last = exhausted.last_attempt
            error = last.exception()
            assert error is not None  # only failures are retried
            message = (
                f"{api_name} for {arn!r} failed after "
                f"{last.attempt_number} attempts: {_describe(error)}"
            )
            raise CheckpointError(message, retryable=True) from error
        except ClientError as error:
            message = f"{api_name} for {arn!r} failed: {_describe(error)}"
            if _is_token_error(error):
                raise InvalidCheckpointTokenError(message) from error
            raise CheckpointError(message, retryable=False) from error
        except BotoCoreError as error:
            # Raised before anything was sent: no region for the default
            # client, no credentials, parameters the model rejects.
            message = f"{api_name} for {arn!r} failed: {_describe(error)}"
            raise CheckpointError(message, retryable=False) from error
        return reply


def _default_client() -> Any:
    # botocore's retries are off: the tenacity loop in BotoServiceClient
    # retries instead. Two nested loops would multiply the attempts (5 x 3
    # calls before giving up), wait out two backoffs, and hide botocore's
    # retries from our log and error mapping. Note "total_max_attempts":
    # botocore reads "max_attempts" as retries after the first call, so
    # {"max_attempts": 1} would still send every request twice.
    config = botocore.config.Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
    )
    return boto3.client("lambda", config=config)


def _send(
    api_name: str,
    method: Callable[..., Mapping[str, Any]],
    params: dict[str, Any],
) -> Mapping[str, Any]:
    # api_name is unused here; it rides along in the retry state for the
    # retry log.
    return method(**params)


def _operations(
    operations: Iterable[Mapping[str, Any]] | None,
) -> tuple[Operation, ...]:
    if not operations:
        return ()
    return tuple([from_wire(operation, Operation) for operation in operations])


def _error_fields(error: ClientError) -> tuple[str, str, int]:
    response = error.response
    details = response.get("Error") or {}
    metadata = response.get("ResponseMetadata")
    status = metadata.get("HTTPStatusCode") if metadata else None
    return (
        str(details.get("Code") or ""),
        str(details.get("Message") or ""),
        status if isinstance(status, int) else 0,
    )


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, ClientError):
        code, _, status = _error_fields(error)
        if code.startswith(_PERMANENT_PREFIX):
            return False
        return code in _RETRYABLE_CODES or status == 429 or status >= 500
    return isinstance(error, _NETWORK_ERRORS)


def _is_token_error(error: ClientError) -> bool:
    code, message, _ = _error_fields(error)
    if code not in _TOKEN_ERROR_CODES:
        return False
    return message.startswith(_TOKEN_ERROR_PREFIX)


def _describe(error: BaseException) -> str:
    if isinstance(error, ClientError):
        code, message, status = _error_fields(error)
        return f"{code or 'unknown error'} (HTTP {status}): {message}"
    return f"{type(error).__name__}: {error}"


def _log_retry(state: tenacity.RetryCallState) -> None:
    if not _log.isEnabledFor(logging.DEBUG):
        return
    api_name, _, params = state.args
    error = state.outcome.exception() if state.outcome else None
    delay = state.next_action.sleep if state.next_action else 0.0
    _log.debug(
        "%s for %r failed on attempt %d, retrying in %.3f s: %s",
        api_name,
        params.get("DurableExecutionArn"),
        state.attempt_number,
        delay,
        _describe(error) if error is not None else "no error",
    )


# The service's limits on one checkpoint call, as the reference SDK keeps
# them: refused here, before a call that could only fail.
MAX_UPDATES_PER_CALL = 250
MAX_BYTES_PER_CALL = 750 * 1024
MAX_PAYLOAD_CHARS = 6_291_456
MAX_CHAINED_PAYLOAD_BYTES = 1024 * 1024


def _check_limits(arn: str, updates: Sequence[OperationUpdate]) -> None:
    """Refuse a checkpoint the service would refuse, naming the limit."""
    if len(updates) > MAX_UPDATES_PER_CALL:
        raise CheckpointError(
            f"CheckpointDurableExecution for {arn!r}: {len(updates)} updates; "
            f"a call takes at most {MAX_UPDATES_PER_CALL}",
            retryable=False,
        )
    total = 0
    for update in updates:
        payload = update.payload or ""
        size = len(payload.encode())
        total += size
        if len(payload) > MAX_PAYLOAD_CHARS:
            raise CheckpointError(
                f"CheckpointDurableExecution for {arn!r}: the payload of "
                f"operation {update.id} is {len(payload):,} characters; the "
                f"service takes at most {MAX_PAYLOAD_CHARS:,}",
                retryable=False,
            )
        if (
            update.type is OperationType.CHAINED_INVOKE
            and size > MAX_CHAINED_PAYLOAD_BYTES
        ):
            raise CheckpointError(
                f"CheckpointDurableExecution for {arn!r}: the input of chained "
                f"invoke {update.id} is {size:,} bytes; at most "
                f"{MAX_CHAINED_PAYLOAD_BYTES:,} are accepted",
                retryable=False,
            )
    executions = sum(1 for u in updates if u.type is OperationType.EXECUTION)
    if total > MAX_BYTES_PER_CALL and not executions:
        raise CheckpointError(
            f"CheckpointDurableExecution for {arn!r}: the updates hold "
            f"{total:,} bytes of payload; a call takes at most "
            f"{MAX_BYTES_PER_CALL:,}",
            retryable=False,
        )
