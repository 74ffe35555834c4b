"""The same workflows, run three ways, come out the same: on the
in-process runner, served with the SDK calling the engine directly, and
served with the SDK calling it through HTTP."""

from __future__ import annotations

import collections
import json
from collections.abc import Mapping
from typing import Any

import pytest
from conftest import make_client
from http_workflows import FUNCTIONS, SELF_CONTAINED

from durable_exec.local import DurableExecutionServer, LocalEngine
from durable_exec.service import BotoServiceClient


def summary(operations: Any, history: Any) -> tuple[Any, Any]:
    """What must not depend on the transport: each operation's identity,
    status and outcome, and how many events of each type."""
    shown = sorted(
        (
            op.id if op.type.value != "EXECUTION" else "<execution>",
            op.type.value,
            op.sub_type,
            op.name if op.type.value != "EXECUTION" else None,
            op.status.value,
            op.result,
            op.error.error_type if op.error else None,
        )
        for op in operations
    )
    counts = collections.Counter(event["EventType"] for event in history)
    return shown, counts


@pytest.mark.parametrize(
    ("function", "payload", "expected"),
    SELF_CONTAINED,
    ids=[case[0] for case in SELF_CONTAINED],
)
def test_transports_agree(
    sdk_over_http: bool, function: str, payload: Any, expected: Any
) -> None:
    """A served workflow stores what the in-process runner stores, and
    with sdk_over_http every checkpoint crosses HTTP."""
    with LocalEngine.in_memory() as runner:
        for name, handler in FUNCTIONS.items():
            runner.register(name, handler)
        baseline = runner.run(function, payload)

    calls: list[str] = []
    with DurableExecutionServer(
        FUNCTIONS, skip_time=True, sdk_over_http=sdk_over_http
    ) as server:
        handle = server.handle

        def counting(
            method: str, path: str, headers: Mapping[str, str], body: bytes
        ) -> Any:
            calls.append(path.partition("?")[0].rpartition("/")[2])
            return handle(method, path, headers, body)

        server.handle = counting  # type: ignore[method-assign]
        reply = make_client(server.url).invoke(
            FunctionName=function, Payload=json.dumps(payload)
        )
        result = json.loads(reply["Payload"].read())
        served = server.local.describe(reply["DurableExecutionArn"])
        over_http = isinstance(server.local.client, BotoServiceClient)

    assert result == baseline.result == expected
    assert summary(served.operations, served.history) == summary(
        baseline.operations, baseline.history
    )
    assert over_http is sdk_over_http
    checkpoints = calls.count("checkpoint")
    assert (checkpoints > 0) is sdk_over_http
    assert calls.count("invocations") == 1
