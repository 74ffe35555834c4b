"""Starting and closing the server: loopback by default, drivers that
stop on close, and executions that outlive the server in a SQLite store."""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path

import pytest
from conftest import make_client
from http_workflows import FUNCTIONS, SLEEPER_STARTED

from durable_exec.errors import ValidationError
from durable_exec.local import DurableExecutionServer


def test_binds_to_loopback_by_default() -> None:
    """Without a host, the server listens on 127.0.0.1 only."""
    with DurableExecutionServer() as server:
        assert server.host == "127.0.0.1"
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.port > 0
        assert server._http.socket.getsockname()[0] == "127.0.0.1"


def test_close_stops_a_sleeping_driver_and_the_store_keeps_the_execution(
    tmp_path: Path,
) -> None:
    """close() interrupts a background driver waiting out a day on the
    real clock; a later server on the same store finishes the execution."""
    store = tmp_path / "executions.sqlite3"
    SLEEPER_STARTED.clear()
    server = DurableExecutionServer(FUNCTIONS, store=store).start()
    client = make_client(server.url)
    reply = client.invoke(
        FunctionName="sleeper",
        InvocationType="Event",
        DurableExecutionName="nap",
        Payload=b"{}",
    )
    assert SLEEPER_STARTED.wait(timeout=30)

    began = time.monotonic()
    server.close()

    assert time.monotonic() - began < 20
    with DurableExecutionServer(FUNCTIONS, store=store, skip_time=True) as later:
        arn = reply["DurableExecutionArn"]
        assert later.local.describe(arn).status.value == "RUNNING"
        again = make_client(later.url).invoke(
            FunctionName="sleeper", DurableExecutionName="nap", Payload=b"{}"
        )
        assert json.loads(again["Payload"].read()) == "rested"
        assert again["DurableExecutionArn"] == arn
        assert later.local.describe(arn).invocations == 2


def test_close_ends_open_connections_and_refuses_new_ones() -> None:
    """After close(), a kept-alive connection is closed and no new one is
    accepted."""
    server = DurableExecutionServer().start()
    kept = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    kept.request("GET", "/2025-12-01/functions/none/durable-executions")
    kept.getresponse().read()

    server.close()

    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        kept.request("GET", "/2025-12-01/functions/none/durable-executions")
        kept.getresponse().read()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


def test_close_is_idempotent_and_final() -> None:
    """A second close() does nothing; start() after close() is refused."""
    server = DurableExecutionServer().start()
    server.close()
    server.close()

    with pytest.raises(ValidationError, match="closed"):
        server.start()


@pytest.mark.parametrize(
    ("option", "value"),
    [("port", -1), ("port", 70000), ("host", ""), ("max_body_bytes", 0)],
)
def test_bad_options_are_refused(option: str, value: object) -> None:
    """Options out of range raise ValidationError naming them."""
    with pytest.raises(ValidationError, match=option):
        DurableExecutionServer(**{option: value})  # type: ignore[arg-type]


def test_stop_wakes_a_driver_sleeping_on_the_real_clock() -> None:
    """A stop reaches an execution whose driver sleeps out a day: an
    invoke of its name answers with the stop at once, not a day later."""
    SLEEPER_STARTED.clear()
    with DurableExecutionServer(FUNCTIONS) as server:
        client = make_client(server.url)
        arn = client.invoke(
            FunctionName="sleeper",
            InvocationType="Event",
            DurableExecutionName="dozing",
            Payload=b"{}",
        )["DurableExecutionArn"]
        assert SLEEPER_STARTED.wait(timeout=30)

        client.stop_durable_execution(
            DurableExecutionArn=arn, Error={"ErrorType": "WakeUp"}
        )
        reply = client.invoke(
            FunctionName="sleeper", DurableExecutionName="dozing", Payload=b"{}"
        )

        assert reply["FunctionError"] == "Unhandled"
        assert json.loads(reply["Payload"].read())["errorType"] == "WakeUp"
        assert server.wait_idle(timeout=30)
