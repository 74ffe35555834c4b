"""The durable execution API through boto3 answers what the in-process
engine does: history, get, list, state and checkpoint, compared call for
call, timestamps included."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import plain

from durable_exec.errors import InvalidCheckpointTokenError
from durable_exec.local import DurableExecutionServer, LocalServiceClient
from durable_exec.service import BotoServiceClient
from durable_exec.wire import (
    ErrorObject,
    OperationAction,
    OperationType,
    OperationUpdate,
    StepOptions,
    WaitOptions,
    to_wire,
)


def run(client: Any, function: str, payload: Any, **params: Any) -> str:
    reply = client.invoke(FunctionName=function, Payload=json.dumps(payload), **params)
    reply["Payload"].read()
    return str(reply["DurableExecutionArn"])


def history(client: Any, arn: str, **params: Any) -> list[dict[str, Any]]:
    """Every event, following NextMarker."""
    events: list[dict[str, Any]] = []
    marker: dict[str, str] = {}
    while True:
        page = client.get_durable_execution_history(
            DurableExecutionArn=arn, **params, **marker
        )
        events.extend(page["Events"])
        if "NextMarker" not in page:
            return events
        marker = {"Marker": page["NextMarker"]}


# -- history -------------------------------------------------------------------------


@pytest.mark.parametrize("function", ["waiting", "parallel", "failing", "caller"])
def test_history_is_the_engines(
    server: DurableExecutionServer, lambda_client: Any, function: str
) -> None:
    """GetDurableExecutionHistory returns the engine's events, every key
    and timestamp, in pages of the default 100."""
    payload = {"n": 1} if function == "caller" else {}
    arn = run(lambda_client, function, payload)

    through_http = history(lambda_client, arn)

    assert plain(through_http) == plain(server.engine.history(arn))


def test_history_pages_and_reverse_order(
    server: DurableExecutionServer, lambda_client: Any
) -> None:
    """MaxItems pages the events; ReverseOrder gives them newest first."""
    arn = run(lambda_client, "steps", {"count": 5})
    everything = plain(server.engine.history(arn))

    first = lambda_client.get_durable_execution_history(
        DurableExecutionArn=arn, MaxItems=4
    )
    paged = history(lambda_client, arn, MaxItems=4)
    reversed_ = history(lambda_client, arn, MaxItems=3, ReverseOrder=True)

    assert len(first["Events"]) == 4 and "NextMarker" in first
    assert plain(paged) == everything
    assert plain(reversed_) == everything[::-1]


def test_history_without_execution_data(lambda_client: Any) -> None:
    """IncludeExecutionData false leaves payloads out, and nothing else."""
    arn = run(lambda_client, "failing", {"secret": 1})

    full = history(lambda_client, arn)
    bare = history(lambda_client, arn, IncludeExecutionData=False)

    def payloads(events: list[dict[str, Any]]) -> int:
        return json.dumps(plain(events)).count('"Payload"')

    assert payloads(full) > 0
    assert payloads(bare) == 0
    assert [e["EventType"] for e in bare] == [e["EventType"] for e in full]


# -- get and list ----------------------------------------------------------------


def test_get_execution_is_the_engines(
    server: DurableExecutionServer, lambda_client: Any
) -> None:
    """GetDurableExecution shows what the engine describes, and the
    fields the model adds: version, config, timeout, data flag."""
    done = run(lambda_client, "failing", {"x": 1}, DurableExecutionName="got")
    waiting = run(lambda_client, "approval", {})

    for arn in (done, waiting):
        shown = lambda_client.get_durable_execution(DurableExecutionArn=arn)
        known = server.local.describe(arn)
        record = server.engine.snapshot(arn)
        assert shown["DurableExecutionArn"] == arn
        assert shown["DurableExecutionName"] == known.name
        assert shown["FunctionArn"] == arn.partition("/durable-execution/")[0]
        assert shown["Status"] == known.status.value
        assert shown["InputPayload"] == record.input_payload
        assert shown.get("Result") == known.result_payload
        assert shown.get("Error") == (
            to_wire(known.error) if known.error is not None else None
        )
        assert plain(shown["StartTimestamp"]) == plain(record.start)
        assert plain(shown.get("EndTimestamp")) == plain(record.end)
        assert shown["Version"] == "$LATEST"
        assert shown["ExecutionDataIncluded"] is True
        assert shown["DurableConfig"]["ExecutionTimeout"] == record.timeout_seconds
    running = lambda_client.get_durable_execution(DurableExecutionArn=waiting)
    assert plain(running["ExpectedExecutionTimeoutTimestamp"]) == plain(
        server.engine.snapshot(waiting).start
        + dt.timedelta(seconds=server.engine.snapshot(waiting).timeout_seconds)
    )
    bare = lambda_client.get_durable_execution(
        DurableExecutionArn=done, IncludeExecutionData=False
    )
    assert bare["ExecutionDataIncluded"] is False
    assert not {"InputPayload", "Result", "Error"} & set(bare)


def test_list_is_newest_first_and_filters(
    server: DurableExecutionServer, lambda_client: Any
) -> None:
    """ListDurableExecutionsByFunction lists the function's executions
    newest first (oldest first with ReverseOrder), filtered by name,
    status and start time, in pages."""
    arns = [run(lambda_client, "steps", {"count": n}) for n in range(3)]
    waiting = run(lambda_client, "approval", {}, DurableExecutionName="pending")
    run(lambda_client, "failing", {})

    def listed(function: str = "steps", **params: Any) -> list[str]:
        found: list[str] = []
        marker: dict[str, str] = {}
        while True:
            page = lambda_client.list_durable_executions_by_function(
                FunctionName=function, **params, **marker
            )
            found.extend(e["DurableExecutionArn"] for e in page["DurableExecutions"])
            if "NextMarker" not in page:
                return found
            marker = {"Marker": page["NextMarker"]}

    assert listed() == arns[::-1]
    assert listed(ReverseOrder=True) == arns
    assert listed(MaxItems=1) == arns[::-1]
    assert listed(Statuses=["SUCCEEDED"]) == arns[::-1]
    assert listed(Statuses=["FAILED", "STOPPED"]) == []
    assert listed("approval", DurableExecutionName="pending") == [waiting]
    assert listed("approval", Statuses=["RUNNING"]) == [waiting]
    start = server.engine.snapshot(arns[1]).start
    assert listed(StartedAfter=start) == [arns[2]]
    assert listed(StartedBefore=start) == [arns[0]]
    assert listed("steps", Qualifier="3") == []
    entry = lambda_client.list_durable_executions_by_function(FunctionName="steps")[
        "DurableExecutions"
    ][0]
    record = server.engine.snapshot(arns[-1])
    assert plain(entry) == plain(
        {
            "DurableExecutionArn": record.arn,
            "DurableExecutionName": record.name,
            "FunctionArn": record.arn.partition("/durable-execution/")[0],
            "Status": "SUCCEEDED",
            "StartTimestamp": record.start,
            "EndTimestamp": record.end,
        }
    )


def test_list_of_an_unknown_function_is_not_found(lambda_client: Any) -> None:
    """Listing a function that is not served is ResourceNotFoundException."""
    with pytest.raises(ClientError) as caught:
        lambda_client.list_durable_executions_by_function(FunctionName="ghost")

    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


# -- state and checkpoint, side by side --------------------------------------------


def twins(server: DurableExecutionServer) -> list[tuple[str, str]]:
    """Two executions of one function, each with an invocation begun by
    hand: (ARN, token) pairs, nothing driven."""
    pairs = []
    for _ in range(2):
        arn = server.engine.create_execution("steps", '{"count": 1}')
        pairs.append((arn, server.engine.begin_invocation(arn)["CheckpointToken"]))
    return pairs


def comparable(operations: Any, arn: str) -> list[dict[str, Any]]:
    """Operations as wire dicts, the execution-specific id and timestamps
    taken out, so that two executions can be compared."""
    execution_id = arn.rpartition("/")[2]
    shown = []
    for operation in operations:
        data = to_wire(operation)
        if data["Id"] == execution_id:
            data["Id"] = data["Name"] = "<execution>"
        for key in ("StartTimestamp", "EndTimestamp"):
            data.pop(key, None)
        for details in data.values():
            if isinstance(details, dict):
                details.pop("NextAttemptTimestamp", None)
                details.pop("ScheduledEndTimestamp", None)
        shown.append(data)
    return shown


UPDATES = [
    [
        OperationUpdate("s1", OperationType.STEP, OperationAction.START, name="a"),
        OperationUpdate(
            "s1", OperationType.STEP, OperationAction.SUCCEED, name="a", payload="1"
        ),
    ],
    [
        OperationUpdate(
            "s2",
            OperationType.STEP,
            OperationAction.RETRY,
            name="b",
            error=ErrorObject("boom", "Boom"),
            step_options=StepOptions(next_attempt_delay_seconds=5),
        ),
        OperationUpdate(
            "w1",
            OperationType.WAIT,
            OperationAction.START,
            name="nap",
            wait_options=WaitOptions(wait_seconds=30),
        ),
    ],
    [],
    [
        OperationUpdate(
            "<execution>",
            OperationType.EXECUTION,
            OperationAction.SUCCEED,
            payload='"done"',
        )
    ],
]


def owned(batch: list[OperationUpdate], arn: str) -> list[OperationUpdate]:
    """``batch`` with its EXECUTION update carrying ``arn``'s id."""
    return [
        OperationUpdate(arn.rpartition("/")[2], u.type, u.action, payload=u.payload)
        if u.type is OperationType.EXECUTION
        else u
        for u in batch
    ]


def test_state_and_checkpoints_match_the_in_process_client(
    server: DurableExecutionServer, service_client: BotoServiceClient
) -> None:
    """The same checkpoints sent through HTTP and in-process get the same
    replies and leave the same state: tokens, operations, pages."""
    (http_arn, http_token), (local_arn, local_token) = twins(server)
    local = LocalServiceClient(server.engine)

    for batch in UPDATES:
        over_http = service_client.checkpoint(
            http_arn, http_token, owned(batch, http_arn)
        )
        in_process = local.checkpoint(local_arn, local_token, owned(batch, local_arn))

        assert comparable(over_http.operations, http_arn) == comparable(
            in_process.operations, local_arn
        )
        assert (over_http.checkpoint_token is None) == (
            in_process.checkpoint_token is None
        )
        assert over_http.next_marker == in_process.next_marker is None
        if over_http.checkpoint_token is None:
            break
        http_token = over_http.checkpoint_token
        local_token = in_process.checkpoint_token
        http_page = service_client.get_execution_state(http_arn, http_token)
        local_page = local.get_execution_state(local_arn, local_token)
        assert comparable(http_page.operations, http_arn) == comparable(
            local_page.operations, local_arn
        )
        # Timestamps survive the trip to the millisecond.
        assert http_page == server.engine.get_execution_state(http_arn, http_token)

    assert server.local.describe(http_arn).result == "done"
    assert [e["EventType"] for e in server.engine.history(http_arn)] == [
        e["EventType"] for e in server.engine.history(local_arn)
    ]


def test_state_pages_through_http(
    server: DurableExecutionServer, service_client: BotoServiceClient
) -> None:
    """GetDurableExecutionState pages by MaxItems and NextMarker, as the
    engine does, and does not spend the token."""
    (arn, token), _ = twins(server)
    updates = [
        OperationUpdate(
            f"s{i}", OperationType.STEP, OperationAction.SUCCEED, payload="1"
        )
        for i in range(5)
    ]
    token = service_client.checkpoint(arn, token, updates).checkpoint_token or ""

    pages = []
    marker = None
    while True:
        page = service_client.get_execution_state(arn, token, marker, 2)
        assert page == server.engine.get_execution_state(arn, token, marker, 2)
        pages.append(page)
        marker = page.next_marker
        if marker is None:
            break

    assert [len(page.operations) for page in pages] == [2, 2, 2]
    assert service_client.checkpoint(arn, token, []).checkpoint_token


def test_checkpoint_reply_shape_through_boto3(
    server: DurableExecutionServer, lambda_client: Any
) -> None:
    """The raw reply has the token and NewExecutionState.Operations with
    timestamps parsed by botocore; a spent token is refused as the SDK
    expects; a repeated ClientToken gets the first reply again."""
    (arn, token), _ = twins(server)
    update = {"Id": "s1", "Type": "STEP", "Action": "SUCCEED", "Payload": "7"}

    reply = lambda_client.checkpoint_durable_execution(
        DurableExecutionArn=arn,
        CheckpointToken=token,
        Updates=[update],
        ClientToken="same",
    )
    again = lambda_client.checkpoint_durable_execution(
        DurableExecutionArn=arn,
        CheckpointToken=token,
        Updates=[update],
        ClientToken="same",
    )

    (operation,) = reply["NewExecutionState"]["Operations"]
    assert operation["Status"] == "SUCCEEDED"
    assert operation["StepDetails"] == {"Attempt": 1, "Result": "7"}
    assert isinstance(operation["StartTimestamp"], dt.datetime)
    assert again["CheckpointToken"] == reply["CheckpointToken"]
    with pytest.raises(InvalidCheckpointTokenError):
        BotoServiceClient(lambda_client).checkpoint(arn, token, [])
