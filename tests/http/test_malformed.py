"""Bad requests, sent raw with http.client on loopback: each gets a 4xx,
a JSON body with a message and the error code in ``x-amzn-ErrorType``,
and leaves every stored execution as it was."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import attrs
import pytest
from http_workflows import FUNCTIONS

from durable_exec.local import DurableExecutionServer

API = "/2025-12-01"
GHOST = (
    "arn:aws:lambda:us-east-1:123456789012:function:steps:$LATEST"
    "/durable-execution/ghost/0123456789abcdef"
)


@attrs.frozen
class Reply:
    status: int
    code: str | None
    body: Any
    headers: dict[str, str]


def send(
    server: DurableExecutionServer,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
        return Reply(
            response.status,
            response.getheader("x-amzn-ErrorType"),
            json.loads(raw) if raw else None,
            {k.lower(): v for k, v in response.getheaders()},
        )
    finally:
        connection.close()


def enc(value: str) -> str:
    """A path parameter encoded as botocore encodes it: all of it."""
    return quote(value, safe="")


def snapshot(server: DurableExecutionServer) -> list[Any]:
    """Everything stored about every execution."""
    return [
        attrs.asdict(server.engine.snapshot(arn), recurse=False)
        for arn in server.engine.find_arns()
    ]


@attrs.frozen
class Scene:
    server: DurableExecutionServer
    arn: str  # an execution with an invocation in flight
    token: str  # its current token
    stale: str  # a token it has spent
    waiting: str  # an execution waiting for a callback
    callback_id: str


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    with DurableExecutionServer(
        FUNCTIONS, skip_time=True, max_body_bytes=2 << 20
    ) as server:
        engine = server.engine
        arn = engine.create_execution("steps", "{}")
        stale = engine.begin_invocation(arn)["CheckpointToken"]
        token = engine.checkpoint(arn, stale, []).checkpoint_token
        assert token is not None
        waiting = engine.create_execution("approval", "{}", name="waits")
        server.local.drive(waiting)
        (callback,) = [
            op
            for op in engine.snapshot(waiting).operations.values()
            if op.callback_details
        ]
        assert callback.callback_details is not None
        yield Scene(
            server,
            arn,
            token,
            stale,
            waiting,
            callback.callback_details.callback_id or "",
        )


def checkpoint_path(scene: Scene) -> str:
    return f"{API}/durable-executions/{enc(scene.arn)}/checkpoint"


def checkpoint(scene: Scene, **body: Any) -> bytes:
    data = {"CheckpointToken": scene.token, "Updates": []}
    data.update(body)
    return json.dumps(data).encode()


def wait_update(**changes: Any) -> dict[str, Any]:
    update: dict[str, Any] = {
        "Id": "w1",
        "Type": "WAIT",
        "Action": "START",
        "WaitOptions": {"WaitSeconds": 5},
    }
    update.update(changes)
    return update


BAD_JSON = "InvalidRequestContentException"
BAD_VALUE = "InvalidParameterValueException"
NOT_FOUND = "ResourceNotFoundException"
NO_ROUTE = "UnknownOperationException"
INVOKE = "/2015-03-31/functions/{}/invocations"


def execution(suffix: str = "", arn: str | None = None) -> Any:
    """The path of the scene's execution (or ``arn``) plus ``suffix``."""
    return lambda s: f"{API}/durable-executions/{enc(arn or s.arn)}{suffix}"


def state(query: str) -> Any:
    return lambda s: (
        f"{API}/durable-executions/{enc(s.arn)}/state?CheckpointToken="
        f"{enc(s.token)}{query}"
    )


def callback(verb: str, callback_id: str | None = None) -> Any:
    return lambda s: (
        f"{API}/durable-execution-callbacks/{enc(callback_id or s.callback_id)}/{verb}"
    )


def fixed(text: str) -> Any:
    return lambda s: text


def update_with(**changes: Any) -> Any:
    return lambda s: checkpoint(s, Updates=[wait_update(**changes)])


def case(
    name: str,
    method: str,
    path: Any,
    status: int,
    code: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """One bad request; ``path`` and ``body`` are functions of the scene."""
    return pytest.param(method, path, body, headers or {}, status, code, id=name)


CASES = [
    # Bodies that are not JSON, or not the JSON the model asks for.
    case("truncated-json", "POST", checkpoint_path, 400, BAD_JSON,
         lambda s: checkpoint(s)[:-7]),
    case("body-not-object", "POST", checkpoint_path, 400, BAD_JSON,
         lambda s: b"[1, 2]"),
    case("body-not-utf8", "POST", checkpoint_path, 400, BAD_JSON,
         lambda s: b'{"CheckpointToken": "\xff"}'),
    case("nan", "POST", checkpoint_path, 400, BAD_JSON,
         lambda s: b'{"CheckpointToken": NaN}'),
    case("deep-nesting", "POST", checkpoint_path, 400, BAD_JSON,
         lambda s: b"[" * 100_000 + b"]" * 100_000),
    case("token-not-string", "POST", checkpoint_path, 400, BAD_VALUE,
         lambda s: checkpoint(s, CheckpointToken=123)),
    case("token-missing", "POST", checkpoint_path, 400, BAD_VALUE,
         lambda s: json.dumps({"Updates": []}).encode()),
    case("updates-not-list", "POST", checkpoint_path, 400, BAD_VALUE,
         lambda s: checkpoint(s, Updates={"Id": "x"})),
    case("update-unknown-type", "POST", checkpoint_path, 400, BAD_VALUE,
         update_with(Type="TIMER")),
    case("wait-seconds-string", "POST", checkpoint_path, 400, BAD_VALUE,
         update_with(WaitOptions={"WaitSeconds": "5"})),
    case("wait-seconds-fraction", "POST", checkpoint_path, 400, BAD_VALUE,
         update_with(WaitOptions={"WaitSeconds": 1.5})),
    case("wait-seconds-zero", "POST", checkpoint_path, 400, BAD_VALUE,
         update_with(WaitOptions={"WaitSeconds": 0})),
    case("update-id-pattern", "POST", checkpoint_path, 400, BAD_VALUE,
         update_with(Id="no spaces")),
    case("stack-trace-not-list", "POST", checkpoint_path, 400, BAD_VALUE,
         update_with(Type="STEP", Action="FAIL", Error={"StackTrace": "line"})),
    # Well formed, refused by the engine: nothing of the batch is applied.
    case("engine-refusal", "POST", checkpoint_path, 400, BAD_VALUE,
         update_with(Type="STEP", Action="SUCCEED", Error={})),
    case("half-applied-batch", "POST", checkpoint_path, 400, BAD_VALUE,
         lambda s: checkpoint(s, Updates=[
             {"Id": "ok", "Type": "STEP", "Action": "SUCCEED", "Payload": "1"},
             {"Id": "bad", "Type": "WAIT", "Action": "CANCEL"},
         ])),
    case("stale-token", "POST", checkpoint_path, 400, BAD_VALUE,
         lambda s: checkpoint(s, CheckpointToken=s.stale)),
    # Executions that do not exist, or ARNs that cannot be.
    case("unknown-arn-checkpoint", "POST", execution("/checkpoint", GHOST), 400,
         BAD_VALUE, checkpoint),
    case("malformed-arn", "GET", fixed(f"{API}/durable-executions/not-an-arn"),
         400, BAD_VALUE),
    case("unknown-arn-get", "GET", execution("", GHOST), 404, NOT_FOUND),
    case("unknown-arn-history", "GET", execution("/history", GHOST), 404,
         NOT_FOUND),
    case("unknown-arn-stop", "POST", execution("/stop", GHOST), 404, NOT_FOUND),
    case("stop-error-wrong-type", "POST", execution("/stop"), 400, BAD_VALUE,
         lambda s: b'{"ErrorMessage": 5}'),
    # Query parameters.
    case("state-without-token", "GET", execution("/state"), 400, BAD_VALUE),
    case("state-stale-token", "GET",
         lambda s: execution("/state")(s) + f"?CheckpointToken={enc(s.stale)}",
         400, BAD_VALUE),
    case("state-max-items-text", "GET", state("&MaxItems=many"), 400, BAD_VALUE),
    case("state-max-items-range", "GET", state("&MaxItems=5000"), 400, BAD_VALUE),
    case("state-bad-marker", "GET", state("&Marker=garbage"), 400, BAD_VALUE),
    case("history-twice-given", "GET", execution("/history?MaxItems=1&MaxItems=2"),
         400, BAD_VALUE),
    case("history-bad-boolean", "GET", execution("/history?ReverseOrder=maybe"),
         400, BAD_VALUE),
    case("history-bad-marker", "GET", execution("/history?Marker=bm9wZQ=="), 400,
         BAD_VALUE),
    case("list-bad-status", "GET",
         fixed(f"{API}/functions/steps/durable-executions?Statuses=DONE"), 400,
         BAD_VALUE),
    case("list-bad-time", "GET",
         fixed(f"{API}/functions/steps/durable-executions?StartedAfter=yesterday"),
         400, BAD_VALUE),
    case("list-unknown-function", "GET",
         fixed(f"{API}/functions/ghost/durable-executions"), 404, NOT_FOUND),
    # Callbacks.
    case("callback-unknown-id", "POST", callback("succeed", "bm9uZQ=="), 404,
         NOT_FOUND, lambda s: b"1"),
    case("callback-bad-id", "POST", callback("succeed", "not*an*id"), 400,
         BAD_VALUE, lambda s: b"1"),
    case("callback-fail-truncated", "POST", callback("fail"), 400, BAD_JSON,
         lambda s: b'{"ErrorType": "x'),
    case("callback-fail-wrong-type", "POST", callback("fail"), 400, BAD_VALUE,
         lambda s: b'{"ErrorType": ["x"]}'),
    case("callback-result-too-large", "POST", callback("succeed"), 400, BAD_VALUE,
         lambda s: b"1" * (1024 * 1024 + 1)),
    case("callback-verb", "POST", callback("maybe"), 404, NO_ROUTE),
    # Invoke.
    case("invoke-not-json", "POST", fixed(INVOKE.format("steps")), 400, BAD_JSON,
         lambda s: b"{nope"),
    case("invoke-bad-type", "POST", fixed(INVOKE.format("steps")), 400, BAD_VALUE,
         lambda s: b"{}", {"X-Amz-Invocation-Type": "Later"}),
    case("invoke-bad-name", "POST", fixed(INVOKE.format("steps")), 400, BAD_VALUE,
         lambda s: b"{}", {"X-Amz-Durable-Execution-Name": "no spaces"}),
    case("invoke-name-other-input", "POST", fixed(INVOKE.format("approval")), 409,
         "DurableExecutionAlreadyStartedException",
         lambda s: b'{"other": 1}', {"X-Amz-Durable-Execution-Name": "waits"}),
    case("invoke-plain-with-name", "POST", fixed(INVOKE.format("echo")), 400,
         BAD_VALUE, lambda s: b"{}", {"X-Amz-Durable-Execution-Name": "n"}),
    case("invoke-unknown-function", "POST", fixed(INVOKE.format("ghost")), 404,
         NOT_FOUND, lambda s: b"{}"),
    case("invoke-event-too-large", "POST", fixed(INVOKE.format("steps")), 413,
         "RequestTooLargeException",
         lambda s: b'"' + b"x" * (1024 * 1024) + b'"',
         {"X-Amz-Invocation-Type": "Event"}),
    # Routes and methods.
    case("unknown-route", "GET", fixed(f"{API}/nothing-here"), 404, NO_ROUTE),
    case("unknown-version", "GET", fixed("/2099-01-01/durable-executions/x"), 404,
         NO_ROUTE),
    case("trailing-slash", "GET", execution("/"), 404, NO_ROUTE),
    case("wrong-method", "GET", checkpoint_path, 405, "MethodNotAllowedException"),
    case("put-execution", "PUT", execution(), 405, "MethodNotAllowedException",
         lambda s: b"{}"),
    case("odd-method", "BREW", checkpoint_path, 405, "MethodNotAllowedException"),
    case("not-served-delete", "DELETE", execution(), 404, NO_ROUTE),
    case("not-served-pause", "POST", execution("/pause"), 404, NO_ROUTE),
    case("bad-percent-encoding", "GET",
         fixed(f"{API}/durable-executions/%ff%fe"), 400, BAD_VALUE),
    # Framing.
    case("content-length-text", "POST", checkpoint_path, 400, BAD_JSON,
         headers={"Content-Length": "ten"}),
    case("chunked", "POST", checkpoint_path, 411, "LengthRequiredException",
         headers={"Transfer-Encoding": "chunked"}),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "code"), CASES)
def test_bad_request_is_refused_and_changes_nothing(
    scene: Scene,
    method: str,
    path: Any,
    body: Any,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    """Each bad request gets its 4xx, the code in x-amzn-ErrorType and a
    message; nothing stored changes."""
    before = snapshot(scene.server)
    count = len(scene.server.engine.find_arns())

    if "Transfer-Encoding" in headers or "Content-Length" in headers:
        reply = send_raw_headers(scene.server, method, path(scene), headers)
    else:
        data = body(scene) if body else b""
        reply = send(scene.server, method, path(scene), data, headers)

    assert (reply.status, reply.code) == (status, code), reply.body
    assert isinstance(reply.body["message"], str) and reply.body["message"]
    if status == 405:
        assert reply.headers["allow"]
    assert scene.server.wait_idle(timeout=30)
    assert len(scene.server.engine.find_arns()) == count
    assert snapshot(scene.server) == before


def send_raw_headers(
    server: DurableExecutionServer, method: str, path: str, headers: dict[str, str]
) -> Reply:
    """A request whose framing headers are given as they are."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.putrequest(method, path)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        if "chunked" in headers.get("Transfer-Encoding", ""):
            connection.send(b"2\r\n{}\r\n0\r\n\r\n")
        response = connection.getresponse()
        raw = response.read()
        return Reply(
            response.status,
            response.getheader("x-amzn-ErrorType"),
            json.loads(raw) if raw else None,
            {k.lower(): v for k, v in response.getheaders()},
        )
    finally:
        connection.close()


def test_oversized_body_is_refused_before_it_is_read(scene: Scene) -> None:
    """A Content-Length over the cap is refused with 413 at once, without
    waiting for the body, and the connection is closed."""
    before = snapshot(scene.server)

    reply = send_raw_headers(
        scene.server,
        "POST",
        checkpoint_path(scene),
        {"Content-Length": str(64 * 1024 * 1024)},
    )

    assert (reply.status, reply.code) == (413, "RequestTooLargeException")
    assert "at most" in reply.body["message"]
    assert reply.headers["connection"] == "close"
    assert snapshot(scene.server) == before


def test_oversized_body_sent_whole_still_gets_its_answer(scene: Scene) -> None:
    """A client that writes its whole oversized body before reading, as
    boto3 does, reads the 413 rather than a reset connection."""
    reply = send(scene.server, "POST", checkpoint_path(scene), b" " * (3 * 1024 * 1024))

    assert (reply.status, reply.code) == (413, "RequestTooLargeException")


def test_oversized_body_with_expect_continue(scene: Scene) -> None:
    """With Expect: 100-continue, an oversized body is refused before the
    server asks for it."""
    reply = send_raw_headers(
        scene.server,
        "POST",
        checkpoint_path(scene),
        {"Content-Length": str(3 * 1024 * 1024), "Expect": "100-continue"},
    )

    assert (reply.status, reply.code) == (413, "RequestTooLargeException")


def test_body_shorter_than_its_length(scene: Scene) -> None:
    """A body that ends before Content-Length is a 400."""
    before = snapshot(scene.server)
    with socket.create_connection(("127.0.0.1", scene.server.port), timeout=30) as sock:
        sock.sendall(
            f"POST {checkpoint_path(scene)} HTTP/1.1\r\nHost: x\r\n"
            "Content-Length: 100\r\n\r\n".encode()
            + checkpoint(scene)[:10]
        )
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"x-amzn-ErrorType: InvalidRequestContentException" in head
    assert "ended after" in json.loads(body)["message"]
    assert snapshot(scene.server) == before


@pytest.mark.parametrize(
    "request_line",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
    ],
    ids=["no-version", "unknown-version", "uri-too-long"],
)
def test_malformed_request_line(scene: Scene, request_line: bytes) -> None:
    """Requests the HTTP parser itself refuses get a 4xx and JSON too."""
    with socket.create_connection(("127.0.0.1", scene.server.port), timeout=30) as sock:
        sock.sendall(request_line)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk

    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    assert 400 <= status < 500
    assert json.loads(body)["message"]


def test_connection_stays_usable_after_a_refusal(scene: Scene) -> None:
    """A refused request whose body was read leaves the connection open
    for the next request."""
    connection = http.client.HTTPConnection("127.0.0.1", scene.server.port, timeout=30)
    try:
        connection.request("POST", checkpoint_path(scene), body=b"{broken")
        first = connection.getresponse()
        first.read()
        connection.request("GET", f"{API}/durable-executions/{enc(scene.arn)}")
        second = connection.getresponse()
        shown = json.loads(second.read())
    finally:
        connection.close()

    assert (first.status, second.status) == (400, 200)
    assert shown["Status"] == "RUNNING"
