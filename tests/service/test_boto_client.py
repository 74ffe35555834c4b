"""Tests of BotoServiceClient, the durable execution service on boto3.

No test touches the network. Most put a ``botocore.stub.Stubber`` on a real
``lambda`` client, which checks requests and replies against botocore's
model. Tests that need botocore's own HTTP parsing, or a network error from
inside botocore, answer at the ``before-send`` event instead, so that
everything but the socket is botocore's real code. Backoff sleeps go to a
list, so no test waits.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.config
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.stub import ANY, Stubber

from durable_exec.errors import (
    CheckpointError,
    InvalidCheckpointTokenError,
    ValidationError,
)
from durable_exec.service import _boto
from durable_exec.service._boto import BotoServiceClient, ServiceRetryConfig
from durable_exec.service._protocol import DurableServiceClient
from durable_exec.wire import (
    CheckpointResult,
    ErrorObject,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
    StatePage,
    StepOptions,
    WaitOptions,
)

ARN = (
    "arn:aws:lambda:us-east-1:123456789012:function:orders:$LATEST"
    "/durable-execution/order-17/4f1c2a"
)
TOKEN = "dG9rZW4tMQ=="
NEXT_TOKEN = "dG9rZW4tMg=="
UTC = dt.UTC
STARTED_AT = dt.datetime(2025, 12, 1, 9, 30, 15, 250000, tzinfo=UTC)
NAIVE_RETRY_AT = dt.datetime(2025, 12, 1, 9, 31, 15)


def lambda_client() -> Any:
    """A real boto3 lambda client: dummy credentials, botocore retries off."""
    return boto3.client(
        "lambda",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore.config.Config(
            retries={"total_max_attempts": 1, "mode": "standard"}
        ),
    )


@pytest.fixture
def delays() -> list[float]:
    return []


@pytest.fixture
def client() -> Any:
    return lambda_client()


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def service(client: Any, delays: list[float]) -> BotoServiceClient:
    return BotoServiceClient(client, sleep=delays.append)


def checkpoint_reply() -> dict[str, Any]:
    return {
        "CheckpointToken": NEXT_TOKEN,
        "NewExecutionState": {"Operations": []},
    }


def step_start() -> OperationUpdate:
    return OperationUpdate(
        id="1",
        type=OperationType.STEP,
        action=OperationAction.START,
        name="charge",
        sub_type="Step",
    )


class FakeHttp:
    """Answers a client's requests at botocore's ``before-send`` event.

    Each queued answer is an exception to raise, as the HTTP layer would,
    or a ``(status, headers, body)`` response.
    """

    def __init__(self, client: Any, operation: str) -> None:
        self.answers: list[Any] = []
        self.requests: list[Any] = []
        event = f"before-send.lambda.{operation}"
        client.meta.events.register(event, self._send)

    def queue(self, *answers: Any) -> None:
        self.answers.extend(answers)

    def _send(self, request: Any, **_: Any) -> AWSResponse:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        status, headers, body = answer
        return AWSResponse(request.url, status, headers, _Raw(body))


class _Raw:
    def __init__(self, body: Any) -> None:
        self._body = json.dumps(body).encode()

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def service_error(code: str, message: str, status: int) -> tuple[Any, ...]:
    return (status, {"x-amzn-ErrorType": code}, {"message": message})


# -- the protocol and the settings ---------------------------------------


def test_implements_the_service_protocol(
    service: BotoServiceClient,
) -> None:
    """BotoServiceClient satisfies the DurableServiceClient protocol."""
    assert isinstance(service, DurableServiceClient)


def test_retry_defaults() -> None:
    """By default a call is tried 5 times, backoff 0.1 s capped at 5 s."""
    assert BotoServiceClient(lambda_client()).retry == ServiceRetryConfig(
        max_attempts=5, initial_backoff=0.1, max_backoff=5.0
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_attempts", 0),
        ("max_attempts", 2.5),
        ("max_attempts", True),
        ("initial_backoff", -0.1),
        ("initial_backoff", float("nan")),
        ("max_backoff", float("inf")),
        ("max_backoff", "5"),
    ],
)
def test_retry_config_rejects_bad_values(field: str, value: Any) -> None:
    """A bad retry setting raises ValidationError naming field and value."""
    with pytest.raises(ValidationError) as raised:
        ServiceRetryConfig(**{field: value})
    assert field in str(raised.value)
    assert repr(value) in str(raised.value)


# -- checkpoint: request and reply ---------------------------------------


def test_checkpoint_sends_updates_in_pascal_case(
    service: BotoServiceClient, stubber: Stubber
) -> None:
    """Updates go out as PascalCase dicts with absent members left out."""
    updates = [
        step_start(),
        OperationUpdate(
            id="1",
            type=OperationType.STEP,
            action=OperationAction.RETRY,
            error=ErrorObject(
                error_message="card declined",
                error_type="PaymentError",
                stack_trace=("line 1", "line 2"),
            ),
            step_options=StepOptions(next_attempt_delay_seconds=30),
        ),
        OperationUpdate(
            id="2",
            parent_id="ctx-1",
            type=OperationType.WAIT,
            action=OperationAction.START,
            sub_type="Wait",
            wait_options=WaitOptions(wait_seconds=60),
        ),
    ]
    stubber.add_response(
        "checkpoint_durable_execution",
        checkpoint_reply(),
        {
            "DurableExecutionArn": ARN,
            "CheckpointToken": TOKEN,
            "ClientToken": ANY,
            "Updates": [
                {
                    "Id": "1",
                    "Type": "STEP",
                    "Action": "START",
                    "Name": "charge",
                    "SubType": "Step",
                },
                {
                    "Id": "1",
                    "Type": "STEP",
                    "Action": "RETRY",
                    "Error": {
                        "ErrorMessage": "card declined",
                        "ErrorType": "PaymentError",
                        "StackTrace": ["line 1", "line 2"],
                    },
                    "StepOptions": {"NextAttemptDelaySeconds": 30},
                },
                {
                    "Id": "2",
                    "ParentId": "ctx-1",
                    "Type": "WAIT",
                    "Action": "START",
                    "SubType": "Wait",
                    "WaitOptions": {"WaitSeconds": 60},
                },
            ],
        },
    )

    service.checkpoint(ARN, TOKEN, updates)


def test_checkpoint_sends_the_given_client_token(
    service: BotoServiceClient, stubber: Stubber
) -> None:
    """A given client token is sent as the request's ClientToken."""
    stubber.add_response(
        "checkpoint_durable_execution",
        checkpoint_reply(),
        {
            "DurableExecutionArn": ARN,
            "CheckpointToken": TOKEN,
            "Updates": [],
            "ClientToken": "batch-0001",
        },
    )

    service.checkpoint(ARN, TOKEN, [], client_token="batch-0001")


def test_checkpoint_makes_one_client_token_per_call(
    client: Any, delays: list[float]
) -> None:
    """Each call makes one ClientToken, and its retries all resend it."""
    service = BotoServiceClient(client, sleep=delays.append)
    http = FakeHttp(client, "CheckpointDurableExecution")
    http.queue(
        ReadTimeoutError(endpoint_url="https://lambda"),
        service_error("ServiceException", "internal", 500),
        (200, {}, checkpoint_reply()),
        (200, {}, checkpoint_reply()),
    )

    service.checkpoint(ARN, TOKEN, [step_start()])
    service.checkpoint(ARN, TOKEN, [step_start()])

    sent = [json.loads(req.body)["ClientToken"] for req in http.requests]
    assert sent[0] == sent[1] == sent[2]
    assert sent[3] != sent[0]


def test_checkpoint_parses_the_reply(
    service: BotoServiceClient, stubber: Stubber
) -> None:
    """The reply becomes a CheckpointResult; timestamps keep their instant."""
    plus_two = dt.timezone(dt.timedelta(hours=2))
    stubber.add_response(
        "checkpoint_durable_execution",
        {
            "CheckpointToken": NEXT_TOKEN,
            "NewExecutionState": {
                "Operations": [
                    {
                        "Id": "1",
                        "Type": "STEP",
                        "SubType": "Step",
                        "Name": "charge",
                        "Status": "PENDING",
                        "StartTimestamp": STARTED_AT.astimezone(plus_two),
                        "StepDetails": {
                            "Attempt": 1,
                            "NextAttemptTimestamp": NAIVE_RETRY_AT,
                            "Error": {"ErrorType": "PaymentError"},
                        },
                    },
                ],
                "NextMarker": "page-2",
            },
        },
    )

    result = service.checkpoint(ARN, TOKEN, [step_start()])

    assert result.checkpoint_token == NEXT_TOKEN
    assert result.next_marker == "page-2"
    (operation,) = result.operations
    assert operation.id == "1"
    assert operation.type is OperationType.STEP
    assert operation.status is OperationStatus.PENDING
    assert operation.start_timestamp == STARTED_AT
    assert operation.step_details is not None
    assert operation.step_details.attempt == 1
    retry_at = operation.step_details.next_attempt_timestamp
    assert retry_at == NAIVE_RETRY_AT.replace(tzinfo=UTC)
    assert operation.error == ErrorObject(error_type="PaymentError")


def test_checkpoint_reply_without_token(
    service: BotoServiceClient, stubber: Stubber
) -> None:
    """A reply without a token, or with NextMarker "", reads as None."""
    stubber.add_response(
        "checkpoint_durable_execution",
        {"NewExecutionState": {"Operations": [], "NextMarker": ""}},
    )

    result = service.checkpoint(ARN, TOKEN, [step_start()])

    assert result == CheckpointResult(checkpoint_token=None)


def test_checkpoint_reads_epoch_seconds_from_the_http_body(
    client: Any, delays: list[float]
) -> None:
    """Epoch seconds in the HTTP body arrive as the same instants."""
    service = BotoServiceClient(client, sleep=delays.append)
    http = FakeHttp(client, "CheckpointDurableExecution")
    started = STARTED_AT.timestamp()
    http.queue(
        (
            200,
            {},
            {
                "CheckpointToken": NEXT_TOKEN,
                "NewExecutionState": {
                    "Operations": [
                        {
                            "Id": "w",
                            "Type": "WAIT",
                            "Status": "STARTED",
                            "StartTimestamp": started,
                            "WaitDetails": {
                                "ScheduledEndTimestamp": started + 60,
                            },
                        }
                    ]
                },
            },
        )
    )

    result = service.checkpoint(ARN, TOKEN, [])

    (operation,) = result.operations
    assert operation.start_timestamp == STARTED_AT
    assert operation.wait_details is not None
    assert operation.wait_details.scheduled_end_timestamp == (
        STARTED_AT + dt.timedelta(seconds=60)
    )
    assert result.next_marker is None


# -- get_execution_state -------------------------------------------------


def test_get_execution_state_pages_with_the_marker(
    service: BotoServiceClient, stubber: Stubber
) -> None:
    """Marker and MaxItems go out only when given; NextMarker pages on."""
    operation = {
        "Id": "exec",
        "Type": "EXECUTION",
        "Status": "STARTED",
        "StartTimestamp": STARTED_AT,
        "ExecutionDetails": {"InputPayload": "{}"},
    }
    stubber.add_response(
        "get_durable_execution_state",
        {"Operations": [operation], "NextMarker": "m-2"},
        {"DurableExecutionArn": ARN, "CheckpointToken": TOKEN},
    )
    stubber.add_response(
        "get_durable_execution_state",
        {"Operations": [dict(operation, Id="1", Type="STEP")]},
        {
            "DurableExecutionArn": ARN,
            "CheckpointToken": TOKEN,
            "Marker": "m-2",
            "MaxItems": 1000,
        },
    )

    first = service.get_execution_state(ARN, TOKEN)
    second = service.get_execution_state(
        ARN, TOKEN, marker=first.next_marker, max_items=1000
    )

    assert isinstance(first, StatePage)
    assert [op.id for op in first.operations] == ["exec"]
    assert first.next_marker == "m-2"
    assert first.operations[0].execution_details is not None
    assert first.operations[0].execution_details.input_payload == "{}"
    assert [op.id for op in second.operations] == ["1"]
    assert second.next_marker is None


def test_get_execution_state_treats_empty_marker_as_first_page(
    service: BotoServiceClient, stubber: Stubber
) -> None:
    """An empty marker, the envelope's "no more pages", is not sent."""
    stubber.add_response(
        "get_durable_execution_state",
        {"Operations": [], "NextMarker": ""},
        {"DurableExecutionArn": ARN, "CheckpointToken": TOKEN},
    )

    page = service.get_execution_state(ARN, TOKEN, marker="")

    assert page == StatePage(operations=())


# -- retries -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("TooManyRequestsException", 429),
        ("ThrottlingException", 400),
        ("SomeNewThrottle", 429),
    ],
)
def test_throttling_is_retried_until_success(
    service: BotoServiceClient,
    stubber: Stubber,
    delays: list[float],
    code: str,
    status: int,
) -> None:
    """Throttling is retried with backoff and the call then succeeds."""
    for _ in range(2):
        stubber.add_client_error(
            "checkpoint_durable_execution", code, "Rate exceeded", status
        )
    stubber.add_response("checkpoint_durable_execution", checkpoint_reply())

    result = service.checkpoint(ARN, TOKEN, [step_start()])

    assert result.checkpoint_token == NEXT_TOKEN
    assert len(delays) == 2
    assert 0 <= delays[0] <= 0.1
    assert 0 <= delays[1] <= 0.2


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ServiceException", 500),
        ("InternalError", 503),
        ("504", 504),
    ],
)
def test_server_errors_are_retried_until_success(
    service: BotoServiceClient,
    stubber: Stubber,
    delays: list[float],
    code: str,
    status: int,
) -> None:
    """HTTP 5xx is retried with backoff and the call then succeeds."""
    stubber.add_client_error(
        "get_durable_execution_state",
        code,
        "try again",
        status,
    )
    stubber.add_response("get_durable_execution_state", {"Operations": []})

    page = service.get_execution_state(ARN, TOKEN)

    assert page.operations == ()
    assert len(delays) == 1


def test_gives_up_after_max_attempts(
    service: BotoServiceClient, stubber: Stubber, delays: list[float]
) -> None:
    """Running out of attempts raises a retryable, chained CheckpointError."""
    for attempt in range(5):
        stubber.add_client_error(
            "checkpoint_durable_execution",
            "TooManyRequestsException",
            f"Rate exceeded ({attempt + 1})",
            429,
        )

    with pytest.raises(CheckpointError) as raised:
        service.checkpoint(ARN, TOKEN, [step_start()])

    error = raised.value
    assert type(error) is CheckpointError
    assert error.retryable is True
    assert isinstance(error.__cause__, ClientError)
    assert "Rate exceeded (5)" in str(error.__cause__)
    message = str(error)
    assert "CheckpointDurableExecution" in message
    assert repr(ARN) in message
    assert "after 5 attempts" in message
    assert "TooManyRequestsException (HTTP 429): Rate exceeded (5)" in message
    assert len(delays) == 4


def test_backoff_is_exponential_with_a_cap(
    client: Any, delays: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Backoff windows double up to the cap; delays jitter from zero."""
    drawn: list[tuple[float, float]] = []

    def top_of_window(low: float, high: float) -> float:
        drawn.append((low, high))
        return high

    # tenacity draws full-jitter delays with random.uniform.
    monkeypatch.setattr(random, "uniform", top_of_window)
    retry = ServiceRetryConfig(
        max_attempts=6,
        initial_backoff=0.5,
        max_backoff=3.0,
    )
    service = BotoServiceClient(client, retry=retry, sleep=delays.append)
    with Stubber(client) as stubber:
        for _ in range(6):
            stubber.add_client_error(
                "get_durable_execution_state", "ServiceException", "", 500
            )
        with pytest.raises(CheckpointError):
            service.get_execution_state(ARN, TOKEN)

    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert all(low == 0 for low, _ in drawn)


def test_one_attempt_means_no_retry(client: Any, delays: list[float]) -> None:
    """max_attempts=1 sends once, yet the error stays retryable."""
    service = BotoServiceClient(
        client,
        retry=ServiceRetryConfig(max_attempts=1),
        sleep=delays.append,
    )
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "checkpoint_durable_execution", "ServiceException", "boom", 500
        )
        with pytest.raises(CheckpointError) as raised:
            service.checkpoint(ARN, TOKEN, [])

    assert raised.value.retryable is True
    assert delays == []


def test_each_retry_is_logged_at_debug(
    service: BotoServiceClient,
    stubber: Stubber,
    delays: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each retry logs, at debug, the operation, ARN, attempt and delay."""
    stubber.add_client_error(
        "checkpoint_durable_execution",
        "TooManyRequestsException",
        "Rate exceeded",
        429,
    )
    stubber.add_response("checkpoint_durable_execution", checkpoint_reply())

    with caplog.at_level(logging.DEBUG, logger=_boto.__name__):
        service.checkpoint(ARN, TOKEN, [])

    (record,) = [r for r in caplog.records if r.name == _boto.__name__]
    assert record.levelno == logging.DEBUG
    message = record.getMessage()
    assert "CheckpointDurableExecution" in message
    assert repr(ARN) in message
    assert "attempt 1" in message
    assert f"retrying in {delays[0]:.3f} s" in message
    assert "TooManyRequestsException" in message


# -- network errors ------------------------------------------------------

NETWORK_ERRORS = [
    EndpointConnectionError(endpoint_url="https://lambda"),
    ConnectTimeoutError(endpoint_url="https://lambda"),
    ReadTimeoutError(endpoint_url="https://lambda"),
    ConnectionClosedError(endpoint_url="https://lambda"),
    ResponseStreamingError(error="Connection broken: IncompleteRead"),
]


@pytest.mark.parametrize(
    "network_error", NETWORK_ERRORS, ids=lambda e: type(e).__name__
)
def test_network_errors_are_retried(
    client: Any, delays: list[float], network_error: Exception
) -> None:
    """A network error raised inside botocore is retried with backoff."""
    service = BotoServiceClient(client, sleep=delays.append)
    http = FakeHttp(client, "GetDurableExecutionState")
    http.queue(network_error, (200, {}, {"Operations": []}))

    page = service.get_execution_state(ARN, TOKEN)

    assert page.operations == ()
    assert len(http.requests) == 2
    assert len(delays) == 1


def test_network_errors_give_up_retryable(
    client: Any,
    delays: list[float],
) -> None:
    """Network errors on every attempt raise a retryable CheckpointError."""
    service = BotoServiceClient(
        client,
        retry=ServiceRetryConfig(max_attempts=3),
        sleep=delays.append,
    )
    http = FakeHttp(client, "CheckpointDurableExecution")
    http.queue(*[EndpointConnectionError(endpoint_url="https://x")] * 3)

    with pytest.raises(CheckpointError) as raised:
        service.checkpoint(ARN, TOKEN, [])

    assert raised.value.retryable is True
    assert isinstance(raised.value.__cause__, EndpointConnectionError)
    assert "EndpointConnectionError" in str(raised.value)
    assert len(http.requests) == 3
    assert len(delays) == 2


# -- permanent errors ----------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "stubbed", "args"),
    [
        ("checkpoint", "checkpoint_durable_execution", (ARN, TOKEN, [])),
        ("get_execution_state", "get_durable_execution_state", (ARN, TOKEN)),
    ],
)
def test_stale_token_raises_invalid_token_without_retry(
    service: BotoServiceClient,
    stubber: Stubber,
    delays: list[float],
    operation: str,
    stubbed: str,
    args: tuple[Any, ...],
) -> None:
    """A stale token raises InvalidCheckpointTokenError without retry."""
    stubber.add_client_error(
        stubbed,
        "InvalidParameterValueException",
        "Invalid checkpoint token: the token has been used",
        400,
    )

    with pytest.raises(InvalidCheckpointTokenError) as raised:
        getattr(service, operation)(*args)

    assert raised.value.retryable is False
    assert isinstance(raised.value.__cause__, ClientError)
    assert "Invalid checkpoint token" in str(raised.value)
    assert delays == []


def test_stale_token_without_error_type_header(
    client: Any, delays: list[float]
) -> None:
    """An untyped 400 (code "400") is a stale token by its message."""
    service = BotoServiceClient(client, sleep=delays.append)
    http = FakeHttp(client, "CheckpointDurableExecution")
    http.queue(
        (
            400,
            {},
            {
                "Type": "InvalidParameterValueException",
                "message": "Invalid checkpoint token for this invocation",
            },
        )
    )

    with pytest.raises(InvalidCheckpointTokenError):
        service.checkpoint(ARN, TOKEN, [])

    assert delays == []


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        ("InvalidParameterValueException", 400, "EXECUTION update not last"),
        ("ResourceNotFoundException", 404, "Execution not found"),
        ("AccessDeniedException", 403, "not authorized"),
        ("ResourceConflictException", 409, "conflict"),
        ("KMSAccessDeniedException", 502, "KMS access denied"),
        ("KMSDisabledException", 502, "key disabled"),
        ("KMSNotFoundException", 502, "key not found"),
    ],
)
def test_client_errors_are_permanent(
    service: BotoServiceClient,
    stubber: Stubber,
    delays: list[float],
    code: str,
    status: int,
    message: str,
) -> None:
    """Other 4xx, and KMS errors despite 502, fail at once, not retryable."""
    stubber.add_client_error(
        "checkpoint_durable_execution",
        code,
        message,
        status,
    )

    with pytest.raises(CheckpointError) as raised:
        service.checkpoint(ARN, TOKEN, [step_start()])

    error = raised.value
    assert type(error) is CheckpointError
    assert error.retryable is False
    assert isinstance(error.__cause__, ClientError)
    assert str(error) == (
        f"CheckpointDurableExecution for {ARN!r} failed: "
        f"{code} (HTTP {status}): {message}"
    )
    assert delays == []


def test_invalid_parameters_are_permanent(
    client: Any,
    delays: list[float],
) -> None:
    """An update the model rejects fails, not retryable, before sending."""
    service = BotoServiceClient(client, sleep=delays.append)
    http = FakeHttp(client, "CheckpointDurableExecution")
    bad = OperationUpdate(
        id="",
        type=OperationType.STEP,
        action=OperationAction.START,
    )

    with pytest.raises(CheckpointError) as raised:
        service.checkpoint(ARN, TOKEN, [bad])

    assert raised.value.retryable is False
    assert isinstance(raised.value.__cause__, ParamValidationError)
    assert http.requests == []
    assert delays == []


# -- the default client --------------------------------------------------


@pytest.fixture
def aws_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> pytest.MonkeyPatch:
    """A fresh default boto3 session that reads only the environment."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    credentials = str(tmp_path / "credentials")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", credentials)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    return monkeypatch


def test_default_client_is_made_once_without_botocore_retries(
    aws_env: pytest.MonkeyPatch,
) -> None:
    """The default client is made once, with botocore's retries off."""
    aws_env.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    service = BotoServiceClient()

    made = service.client

    assert service.client is made
    assert made.meta.service_model.service_name == "lambda"
    assert made.meta.region_name == "eu-west-1"
    assert made.meta.config.retries["total_max_attempts"] == 1


def test_default_client_is_made_once_across_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Threads racing to the first call make a single client."""
    made: list[object] = []
    gate = threading.Barrier(8)

    def make() -> object:
        # Slow enough that every thread finds no client before one exists.
        time.sleep(0.05)
        made.append(object())
        return made[-1]

    monkeypatch.setattr(_boto, "_default_client", make)
    service = BotoServiceClient()
    seen: list[object] = []

    def first_use() -> None:
        gate.wait()
        seen.append(service.client)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(made) == 1
    assert seen == made * 8


def test_default_client_without_region_is_a_permanent_error(
    aws_env: pytest.MonkeyPatch,
) -> None:
    """No region configured raises a non-retryable CheckpointError."""
    aws_env.delenv("AWS_DEFAULT_REGION", raising=False)
    service = BotoServiceClient(sleep=lambda _: None)

    with pytest.raises(CheckpointError) as raised:
        service.get_execution_state(ARN, TOKEN)

    assert raised.value.retryable is False
    assert "NoRegionError" in str(raised.value)


def _update(**changes: object) -> OperationUpdate:
    fields: dict[str, object] = {
        "id": "1",
        "type": OperationType.STEP,
        "action": OperationAction.SUCCEED,
    }
    fields.update(changes)
    return OperationUpdate(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("updates", "words"),
    [
        ([_update(id=str(i)) for i in range(251)], "251 updates"),
        ([_update(payload="x" * 6_291_457)], "6,291,457 characters"),
        (
            [
                _update(
                    type=OperationType.CHAINED_INVOKE,
                    action=OperationAction.START,
                    payload="x" * (1024 * 1024 + 1),
                )
            ],
            "1,048,577 bytes",
        ),
        (
            [_update(id=str(i), payload="x" * 200_000) for i in range(4)],
            "800,000 bytes",
        ),
    ],
)
def test_checkpoint_over_a_limit_is_refused_before_any_call(
    updates: list[OperationUpdate], words: str
) -> None:
    """A checkpoint past the service's limits fails, not retryable, unsent."""

    class NeverCalled:
        def checkpoint_durable_execution(self, **params: object) -> None:
            raise AssertionError("the service must not be called")

    client = BotoServiceClient(NeverCalled(), sleep=lambda _: None)
    with pytest.raises(CheckpointError) as caught:
        client.checkpoint("arn:x", "token", updates)
    assert words in str(caught.value)
    assert caught.value.retryable is False
