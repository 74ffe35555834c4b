"""Loopback harness: durable handlers against a service we did not write.

A durable execution service invokes handlers through Lambda's ``Invoke``
API and takes their checkpoints over the ``lambda`` 2025-12-01 HTTP API.
This module supplies both ends of that on 127.0.0.1, so that a service
implementation can be driven exactly as it would be by Lambda:

- :class:`LambdaEndpoint` stands in for Lambda's ``Invoke`` API. The
  service under test invokes handlers here by function name; a durable
  function gets the invocation envelope, a plain function its payload.
- :class:`WireLog` records every request the handlers' boto3 client sends
  to the service and every reply, from botocore's own events, so a test
  can show the exact checkpoint a service refused.
- :class:`ReferenceRunner` runs the AWS reference local runner
  (``aws-durable-execution-sdk-python-testing``, command
  ``dex-local-runner start-server``) in a subprocess on loopback, with
  time skipping on, and drives executions through its HTTP API.

Nothing leaves the machine: every socket is on 127.0.0.1 and every wait
is bounded.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any
from urllib.parse import unquote

# boto3 and botocore ship no types (see durable_exec/service/_boto.py).
import boto3  # type: ignore[import-untyped, unused-ignore]
import botocore.config  # type: ignore[import-untyped, unused-ignore]

from durable_exec.handler import DurableHandler
from durable_exec.service import DurableServiceClient

REGION = "us-west-2"
ACCOUNT_ID = "123456789012"

# The service checks no signature, but botocore signs every request and
# needs credentials to do so; these never leave the loopback.
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "interop-test",
    "AWS_SECRET_ACCESS_KEY": "interop-test",
    "AWS_DEFAULT_REGION": REGION,
}

# The handler invocations a service sends carry this header, so that an
# endpoint which starts executions on a caller's Invoke knows to run the
# handler once instead (the reference runner's convention; a plain
# function's Invoke comes without it).
HANDLER_INVOKE_HEADER = "X-Dex-Handler-Invoke"

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"})


def lambda_client(endpoint_url: str, *, read_timeout: float = 60) -> Any:
    """A boto3 ``lambda`` client for ``endpoint_url``, without retries."""
    return boto3.client(
        "lambda",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=botocore.config.Config(
            connect_timeout=5,
            read_timeout=read_timeout,
            retries={"total_max_attempts": 1, "mode": "standard"},
        ),
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# Chained-invoke targets must be named to the reference runner when it
# starts: ours (test_reference_runner) and the reference SDK's
# (test_reference_sdk, whose names reference_handlers holds).
DURABLE_TARGET = "interop-durable-target"
PLAIN_TARGET = "interop-plain-target"
REF_DURABLE_TARGET = "interop-ref-durable-target"
REF_PLAIN_TARGET = "interop-ref-plain-target"
TARGET_CONFIGS = {
    DURABLE_TARGET: {"DurableConfig": {"ExecutionTimeout": 60}},
    PLAIN_TARGET: {},
    REF_DURABLE_TARGET: {"DurableConfig": {"ExecutionTimeout": 60}},
    REF_PLAIN_TARGET: {},
}

_names = count(1)


def unique_function_name(test_name: str) -> str:
    """A function name for one test: its name, made valid, and a number."""
    stem = re.sub(r"[^A-Za-z0-9_-]", "-", test_name)[:48]
    return f"{stem}-{next(_names)}"


# -- the wire log ------------------------------------------------------------


@dataclass
class WireCall:
    """One request a handler sent to the service, and the reply."""

    api: str
    path: str
    request: Any
    status: int
    response: Any

    @property
    def refused(self) -> bool:
        return self.status >= 400

    def describe(self) -> str:
        return (
            f"{self.api} {self.path} -> HTTP {self.status}\n"
            f"  request:  {json.dumps(self.request, sort_keys=True)}\n"
            f"  response: {json.dumps(self.response, sort_keys=True)}"
        )


class WireLog:
    """Every call a boto3 client made, with the bodies as sent and received.

    botocore hands ``before-call`` the serialized request and
    ``after-call`` the raw HTTP reply, with one request context shared by
    both; the body is stashed in that context and the call recorded when
    the reply arrives. Thread-safe: handlers checkpoint from many threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[WireCall] = []

    def install(self, client: Any) -> Any:
        client.meta.events.register("before-call.lambda", self._before)
        client.meta.events.register("after-call.lambda", self._after)
        return client

    def _before(self, params: Mapping[str, Any], context: Any, **_: Any) -> None:
        context["interop_request"] = (params.get("url_path"), params.get("body"))

    def _after(self, http_response: Any, model: Any, context: Any, **_: Any) -> None:
        path, body = context.get("interop_request", ("", b""))
        call = WireCall(
            api=model.name,
            path=unquote(path or ""),
            request=_json_or_text(body),
            status=http_response.status_code,
            response=_json_or_text(http_response.content),
        )
        with self._lock:
            self._calls.append(call)

    def calls(self, arn: str | None = None) -> list[WireCall]:
        """The calls made, oldest first; only those for ``arn`` if given."""
        with self._lock:
            calls = list(self._calls)
        if arn is None:
            return calls
        return [call for call in calls if arn in call.path]

    def refused(self, arn: str) -> list[WireCall]:
        """The calls for ``arn`` that the service answered with an error."""
        return [call for call in self.calls(arn) if call.refused]

    def checkpoints(self, arn: str) -> list[WireCall]:
        return [
            call for call in self.calls(arn) if call.api == "CheckpointDurableExecution"
        ]


def _json_or_text(body: Any) -> Any:
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if not body:
        return None
    try:
        return json.loads(body)
    except (TypeError, ValueError):
        return body


# -- the Lambda endpoint -----------------------------------------------------


class LambdaContext:
    """The parts of Lambda's context object that handlers read."""

    def __init__(self, function_name: str, request_id: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"
        )
        self.memory_limit_in_mb = 128
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "interop"
        self.tenant_id = None
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + 900

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


DurableFunction = Callable[[Mapping[str, Any], LambdaContext], Mapping[str, Any]]
PlainFunction = Callable[[Any, LambdaContext], Any]


@dataclass
class Invocation:
    """One ``Invoke`` the endpoint answered."""

    function_name: str
    durable: bool
    event: Any
    output: Any = None
    error: str | None = None


@dataclass
class _Function:
    durable: bool
    call: Callable[[Any, LambdaContext], Any]


class LambdaEndpoint:
    """A loopback stand-in for Lambda's ``Invoke`` API.

    ``POST /2015-03-31/functions/{FunctionName}/invocations`` runs the
    function registered under that name (a qualifier after ``:`` is
    ignored). A durable function is called with the invocation envelope
    and its reply returned as the payload; a plain function is called
    with the decoded payload and its return value sent back as JSON. A
    function that raises answers as Lambda does for an unhandled error:
    HTTP 200, ``X-Amz-Function-Error: Unhandled`` and an error payload.
    """

    def __init__(self) -> None:
        self._functions: dict[str, _Function] = {}
        self._lock = threading.Lock()
        self.invocations: list[Invocation] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                endpoint._answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            name="interop-lambda-endpoint",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def durable(self, name: str, handler: DurableFunction) -> None:
        """Serve ``handler(envelope, lambda_context)`` as durable ``name``."""
        with self._lock:
            self._functions[name] = _Function(True, handler)

    def plain(self, name: str, func: PlainFunction) -> None:
        """Serve ``func(payload, lambda_context)`` as plain ``name``."""
        with self._lock:
            self._functions[name] = _Function(False, func)

    def crashes(self) -> list[Invocation]:
        """Durable invocations that raised instead of answering.

        A plain function's error is an answer (a chained invoke's
        failure); a durable handler's is a crash of the invocation.
        """
        with self._lock:
            return [c for c in self.invocations if c.durable and c.error]

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        parts = request.path.split("?")[0].strip("/").split("/")
        if len(parts) != 4 or parts[1] != "functions" or parts[3] != "invocations":
            self._send(request, 404, {"Type": "UnknownRoute", "message": request.path})
            return
        name = unquote(parts[2]).split(":")[0]
        with self._lock:
            function = self._functions.get(name)
        if function is None:
            self._send(
                request,
                404,
                {"Type": "ResourceNotFoundException", "message": f"no function {name}"},
                error_type="ResourceNotFoundException",
            )
            return

        event = json.loads(body) if body else None
        invocation = Invocation(name, function.durable, event)
        with self._lock:
            self.invocations.append(invocation)
        context = LambdaContext(name, str(uuid.uuid4()))
        try:
            output = function.call(event, context)
            payload = json.dumps(output).encode()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # noqa: BLE001 - Lambda reports any
            invocation.error = traceback.format_exc()
            failure = {
                "errorType": type(error).__name__,
                "errorMessage": str(error),
                "stackTrace": traceback.format_tb(error.__traceback__),
            }
            self._send(request, 200, failure, function_error="Unhandled")
            return
        invocation.output = output
        self._send_bytes(request, 200, payload, {})

    def _send(
        self,
        request: BaseHTTPRequestHandler,
        status: int,
        body: Any,
        *,
        error_type: str | None = None,
        function_error: str | None = None,
    ) -> None:
        headers = {}
        if error_type:
            headers["x-amzn-ErrorType"] = error_type
        if function_error:
            headers["X-Amz-Function-Error"] = function_error
        self._send_bytes(request, status, json.dumps(body).encode(), headers)

    @staticmethod
    def _send_bytes(
        request: BaseHTTPRequestHandler,
        status: int,
        payload: bytes,
        headers: Mapping[str, str],
    ) -> None:
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(payload)))
        request.send_header("X-Amz-Executed-Version", "$LATEST")
        for name, value in headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(payload)


# -- driving executions ------------------------------------------------------


@dataclass
class Outcome:
    """How an execution ended, as the service reports it."""

    arn: str
    status: str
    result_text: str | None
    error: dict[str, Any] | None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def result(self) -> Any:
        return json.loads(self.result_text) if self.result_text else None

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["EventType"] == event_type]

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("Name") == name]

    def summary(self) -> list[tuple[str, str | None]]:
        """``(EventType, Name)`` of every event, in order."""
        return [(e["EventType"], e.get("Name")) for e in self.events]


class ServiceDriver:
    """What a test does to a service from outside: start executions, wait
    for them, read their history, answer their callbacks.

    Everything but starting goes through the service's public
    ``lambda`` 2025-12-01 API, with boto3.
    """

    # Whether the service may, now and then, lose a timer and leave an
    # execution waiting forever: see ReferenceRunner.
    loses_timers = False

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self.client = lambda_client(endpoint_url)

    def start(self, function_name: str, payload: Any = None) -> str:
        """Start an execution of ``function_name`` and return its ARN.

        The real service starts an execution when a caller invokes a
        durable function. The local services have a route for it instead,
        ``POST /start-durable-execution``, which the reference runner
        defined; a service that speaks it can be driven by the reference
        runner's own tools too.
        """
        request = {
            "AccountId": ACCOUNT_ID,
            "FunctionName": function_name,
            "FunctionQualifier": "$LATEST",
            "ExecutionName": f"{function_name}-{uuid.uuid4().hex[:12]}",
            "ExecutionTimeoutSeconds": 120,
            "ExecutionRetentionPeriodDays": 1,
            "Input": json.dumps(payload if payload is not None else {}),
        }
        reply = urllib.request.urlopen(
            urllib.request.Request(
                f"{self.endpoint_url}/start-durable-execution",
                data=json.dumps(request).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            ),
            timeout=30,
        )
        with reply:
            arn: str = json.loads(reply.read())["ExecutionArn"]
        return arn

    def complaints(self, arn: str) -> list[str]:
        """What the service reported against the handler's invocations of
        ``arn`` outside the API (none, unless a subclass can see a log)."""
        return []

    def close(self) -> None:
        pass

    def wait(self, arn: str, timeout: float = 60) -> Outcome:
        """Poll until the execution ends; its outcome and full history."""
        deadline = time.monotonic() + timeout
        while True:
            described = self.client.get_durable_execution(DurableExecutionArn=arn)
            if described["Status"] in TERMINAL:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"execution {arn} still {described['Status']} after "
                    f"{timeout} s; history: {self.history(arn)}"
                )
            time.sleep(0.02)
        return Outcome(
            arn=arn,
            status=described["Status"],
            result_text=described.get("Result"),
            error=described.get("Error"),
            events=self.history(arn),
        )

    def history(self, arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        params: dict[str, Any] = {
            "DurableExecutionArn": arn,
            "IncludeExecutionData": True,
        }
        while True:
            page = self.client.get_durable_execution_history(**params)
            events.extend(page.get("Events", []))
            marker = page.get("NextMarker")
            if not marker:
                return events
            params["Marker"] = marker

    def callback_id(self, arn: str, name: str | None, timeout: float = 30) -> str:
        """The id of the callback ``name`` (None: the first callback) once
        the execution has made it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.history(arn):
                if event["EventType"] == "CallbackStarted" and (
                    name is None or event.get("Name") == name
                ):
                    callback_id: str = event["CallbackStartedDetails"]["CallbackId"]
                    return callback_id
            time.sleep(0.02)
        raise TimeoutError(f"execution {arn} made no callback {name!r} in {timeout} s")


# The runner's log messages that blame an invocation.
_COMPLAINTS = (
    "Lambda output validation failure",
    "Invocation failed",
    "Invocation timed out",
    "Chained invoke dispatch failed",
)


class ReferenceRunner(ServiceDriver):
    """The AWS reference local runner, in a subprocess on 127.0.0.1.

    Started as its users start it, ``dex-local-runner start-server``, with
    ``--skip-time`` (waits, retry delays and timeouts fire on the next
    scheduler turn; history keeps the modeled durations), handlers at
    ``lambda_endpoint``, and ``function_configs`` naming the functions a
    chained invoke may target.

    Under load its ``--skip-time`` scheduler sometimes fires a retry or
    wait timer while the invocation that set it is still being closed,
    and then never invokes again: the execution stays RUNNING with its
    last ``InvocationCompleted`` and the timer gone. That is the runner's
    race, not the handler's (the checkpoints it accepted show the RETRY
    or WAIT with its delay), so :func:`run_to_end` starts such a stalled
    run once more, and says so in a warning.
    """

    loses_timers = True

    def __init__(
        self,
        lambda_endpoint: str,
        function_configs: Mapping[str, Any],
        *,
        startup_timeout: float = 30,
    ) -> None:
        # Open for the runner's lifetime; close() removes it.
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix="dex-local-runner-", suffix=".log", delete=False
        )
        env = dict(os.environ, **DUMMY_CREDENTIALS)
        # Several tries: the port is free when chosen, but another process
        # may take it before the runner binds it.
        for _ in range(3):
            port = free_port()
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "aws_durable_execution_sdk_python_testing.cli",
                    "start-server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--lambda-endpoint",
                    lambda_endpoint,
                    "--local-runner-region",
                    REGION,
                    "--skip-time",
                    "--log-level",
                    "WARNING",
                    "--function-configs",
                    json.dumps(dict(function_configs)),
                ],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=env,
            )
            if self._wait_healthy(port, startup_timeout):
                super().__init__(f"http://127.0.0.1:{port}")
                return
            self._stop_process()
        raise RuntimeError(f"dex-local-runner did not start:\n{self.log_tail()}")

    def _wait_healthy(self, port: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/health", timeout=1
                ) as reply:
                    if reply.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        return False

    def log_tail(self, lines: int = 40) -> str:
        with open(self._log.name, encoding="utf-8", errors="replace") as log:
            return "".join(log.readlines()[-lines:])

    def complaints(self, arn: str) -> list[str]:
        """What the runner logged against the handler's invocations of
        ``arn``: a refused invocation output, a failed or timed-out
        invocation.

        The runner refuses a bad output (for example PENDING with nothing
        pending) without telling the handler: it logs a warning and
        invokes again after a backoff. Its log is the only place to see
        that. Warnings about ordinary outcomes (a callback that timed
        out, an execution failed by its handler) are not complaints.
        """
        with open(self._log.name, encoding="utf-8", errors="replace") as log:
            return [
                line.rstrip()
                for line in log
                if arn in line and any(mark in line for mark in _COMPLAINTS)
            ]

    def _stop_process(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)

    def close(self) -> None:
        self._stop_process()
        self._log.close()
        os.unlink(self._log.name)


class OurServer(ServiceDriver):
    """Our own HTTP front end, ``durable_exec.local.DurableExecutionServer``,
    with foreign durable handlers registered in it.

    The server invokes its functions in this process and tells a durable
    one by its type, :class:`~durable_exec.handler.DurableHandler`.
    :class:`ForeignDurableHandler` is a ``DurableHandler`` that hands the
    envelope, through JSON as Lambda would, to a handler of another SDK,
    which checkpoints through its own boto3 client against :attr:`url`:
    everything between handler and service still crosses the HTTP API.

    Executions start as on the real service: ``Invoke`` of a durable
    function, here with ``InvocationType=Event``, whose reply names the
    execution in ``X-Amz-Durable-Execution-Arn``.

    Raises ImportError while the server does not exist.
    """

    def __init__(self) -> None:
        from durable_exec.local import DurableExecutionServer

        self._server = DurableExecutionServer(skip_time=True)
        self._server.start()
        self._lock = threading.Lock()
        self.invocations: list[Invocation] = []
        super().__init__(self._server.url)

    def close(self) -> None:
        self._server.close()

    def durable(self, name: str, handler: DurableFunction) -> None:
        """Serve another SDK's ``handler(event, context)`` as durable
        ``name``."""
        self._server.register(name, ForeignDurableHandler(name, handler, self))

    def plain(self, name: str, func: PlainFunction) -> None:
        """Serve ``func(payload, context)`` as plain ``name``."""
        self._server.register(
            name, lambda payload, context: func(payload, LambdaContext(name, "plain"))
        )

    def crashes(self) -> list[Invocation]:
        """Durable invocations that raised instead of answering."""
        with self._lock:
            return [c for c in self.invocations if c.durable and c.error]

    def start(self, function_name: str, payload: Any = None) -> str:
        reply = self.client.invoke(
            FunctionName=function_name,
            InvocationType="Event",
            Payload=json.dumps(payload if payload is not None else {}).encode(),
        )
        headers = reply["ResponseMetadata"]["HTTPHeaders"]
        arn: str = headers["x-amz-durable-execution-arn"]
        return arn


class ForeignDurableHandler(DurableHandler[Any, Any]):
    """A handler of another SDK, served by our server as a durable function.

    ``invoke`` gives it the envelope as Lambda would, through JSON, and a
    Lambda context; our ``client`` goes unused, since the foreign handler
    talks to the service over HTTP with its own client.
    """

    def __init__(self, name: str, handler: DurableFunction, owner: OurServer) -> None:
        # The base class wants a workflow function; it only keeps this one.
        super().__init__(handler)  # type: ignore[arg-type]
        self._name = name
        self._foreign = handler
        self._owner = owner

    def invoke(
        self,
        event: Any,
        lambda_context: Any = None,
        *,
        client: Any = None,
    ) -> dict[str, Any]:
        event = json.loads(json.dumps(event))
        invocation = Invocation(self._name, True, event)
        with self._owner._lock:
            self._owner.invocations.append(invocation)
        context = LambdaContext(self._name, str(uuid.uuid4()))
        try:
            output = self._foreign(event, context)
        except BaseException:
            invocation.error = traceback.format_exc()
            raise
        invocation.output = output
        return dict(json.loads(json.dumps(output)))


# -- running an execution to the end ----------------------------------------


def serve(
    endpoint: LambdaEndpoint,
    name: str,
    handler: DurableHandler[Any, Any],
    client: DurableServiceClient,
) -> None:
    """Serve our durable ``handler`` as ``name``, talking to ``client``."""
    endpoint.durable(name, lambda event, ctx: handler.invoke(event, ctx, client=client))


def run_to_end(
    driver: ServiceDriver,
    endpoint: LambdaEndpoint,
    wire: WireLog,
    function_name: str,
    payload: Any = None,
    *,
    answer: Callable[[str], None] | None = None,
    timeout: float = 60,
) -> Outcome:
    """Start ``function_name`` on ``driver``'s service and wait for the end.

    Checks what every test needs: the service refused none of the
    handler's requests (the refused request is shown as it went over the
    wire), reported no complaint about its invocations (such as an
    invocation output it refused), and no handler invocation crashed.
    """
    crashes_before = len(endpoint.crashes())
    arn = driver.start(function_name, payload)
    if answer is not None:
        answer(arn)
    try:
        outcome = driver.wait(arn, timeout=timeout)
    except TimeoutError as stall:
        if not driver.loses_timers:
            raise
        warnings.warn(
            f"the reference runner stalled ({stall}); starting the run again",
            stacklevel=2,
        )
        arn = driver.start(function_name, payload)
        if answer is not None:
            answer(arn)
        outcome = driver.wait(arn, timeout=timeout)

    refused = wire.refused(arn)
    assert not refused, "the service refused:\n" + "\n".join(
        call.describe() for call in refused
    )
    complaints = driver.complaints(arn)
    assert not complaints, "the service complained:\n" + "\n".join(complaints)
    crashes = endpoint.crashes()[crashes_before:]
    assert not crashes, "a handler invocation crashed:\n" + "\n".join(
        str(crash.error) for crash in crashes
    )
    return outcome


Run = Callable[..., Outcome]
"""What the ``run`` fixture gives a test: ``run(handler, payload, *,
answer=None, timeout=60) -> Outcome``."""
