"""The SDK driven through HTTP: workflows invoked with boto3's ``invoke``,
callbacks answered and executions stopped with boto3, against the server.

Most tests run twice: once with the served handlers calling the engine
in-process, once with them calling it through HTTP as well
(``sdk_over_http``), so that every checkpoint of the SDK crosses the wire.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import make_client
from http_workflows import INTERRUPT, SELF_CONTAINED, impatient

from durable_exec.local import DurableExecutionServer, SkippingClock


def invoke(client: Any, function: str, payload: Any = None, **params: Any) -> Any:
    """boto3's invoke, with the payload JSON-encoded and read back."""
    if payload is not None:
        params["Payload"] = json.dumps(payload)
    reply = client.invoke(FunctionName=function, **params)
    reply["Body"] = reply["Payload"].read()
    return reply


def error_code(error: ClientError) -> tuple[int, str, str]:
    response = error.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def callback_ids(client: Any, arn: str) -> list[str]:
    """The ids of the callbacks ``arn`` started, in order."""
    events = client.get_durable_execution_history(
        DurableExecutionArn=arn, MaxItems=1000
    )["Events"]
    return [
        event["CallbackStartedDetails"]["CallbackId"]
        for event in events
        if event["EventType"] == "CallbackStarted"
    ]


# -- workflows that end by themselves ----------------------------------------------


@pytest.mark.parametrize(
    ("function", "payload", "expected"),
    SELF_CONTAINED,
    ids=[case[0] for case in SELF_CONTAINED],
)
def test_workflow_runs_to_its_result(
    both_server: DurableExecutionServer, function: str, payload: Any, expected: Any
) -> None:
    """A RequestResponse invoke runs the execution to the end and answers
    200 with its result, whatever the operations it uses."""
    client = make_client(both_server.url)

    reply = invoke(client, function, payload)

    assert reply["StatusCode"] == 200
    assert "FunctionError" not in reply
    assert json.loads(reply["Body"]) == expected
    assert reply["ExecutedVersion"] == "$LATEST"
    execution = client.get_durable_execution(
        DurableExecutionArn=reply["DurableExecutionArn"]
    )
    assert execution["Status"] == "SUCCEEDED"
    assert json.loads(execution["Result"]) == expected


def test_failed_execution_answers_with_a_function_error(
    both_server: DurableExecutionServer,
) -> None:
    """A FAILED execution answers 200, X-Amz-Function-Error Unhandled, and
    the error in Lambda's errorType/errorMessage shape."""
    client = make_client(both_server.url)

    reply = invoke(client, "failing", {})

    assert reply["StatusCode"] == 200
    assert reply["FunctionError"] == "Unhandled"
    body = json.loads(reply["Body"])
    assert body["errorType"] == "Refused"
    assert body["errorMessage"] == "the order is refused"
    assert isinstance(body["stackTrace"], list)
    execution = client.get_durable_execution(
        DurableExecutionArn=reply["DurableExecutionArn"]
    )
    assert execution["Status"] == "FAILED"
    assert execution["Error"]["ErrorType"] == "Refused"


def test_event_invoke_answers_202_and_runs_in_the_background(
    server: DurableExecutionServer, lambda_client: Any
) -> None:
    """An Event invoke answers 202 with the ARN at once; a background
    driver runs the execution to its end."""
    reply = invoke(lambda_client, "waiting", {}, InvocationType="Event")

    assert reply["StatusCode"] == 202
    assert reply["Body"] == b""
    assert server.wait_idle(timeout=60)
    execution = lambda_client.get_durable_execution(
        DurableExecutionArn=reply["DurableExecutionArn"]
    )
    assert execution["Status"] == "SUCCEEDED"


def test_dry_run_creates_nothing(
    server: DurableExecutionServer, lambda_client: Any
) -> None:
    """DryRun checks the request and answers 204; no execution starts."""
    reply = invoke(lambda_client, "steps", {}, InvocationType="DryRun")

    assert reply["StatusCode"] == 204
    assert server.engine.find_arns() == []


def test_function_may_be_named_by_arn_and_latest(lambda_client: Any) -> None:
    """A full function ARN and the $LATEST qualifier name the function."""
    arn = "arn:aws:lambda:us-east-1:123456789012:function:steps"

    by_arn = invoke(lambda_client, arn, {"count": 2})
    qualified = invoke(lambda_client, "steps:$LATEST", {"count": 2})
    by_query = invoke(lambda_client, "steps", {"count": 2}, Qualifier="$LATEST")

    assert [json.loads(r["Body"]) for r in (by_arn, qualified, by_query)] == [1, 1, 1]


@pytest.mark.parametrize(
    "function",
    [
        "nobody",
        "steps:7",
        "arn:aws:lambda:eu-west-1:123456789012:function:steps",
        "arn:aws:lambda:us-east-1:999999999999:function:steps",
    ],
)
def test_unknown_function_is_not_found(lambda_client: Any, function: str) -> None:
    """An unregistered function, version or account is a 404."""
    with pytest.raises(ClientError) as caught:
        invoke(lambda_client, function, {})

    status, code, message = error_code(caught.value)
    assert (status, code) == (404, "ResourceNotFoundException")
    assert "Function not found" in message


# -- names ------------------------------------------------------------------------


def test_same_name_and_input_finds_the_execution(
    server: DurableExecutionServer, lambda_client: Any
) -> None:
    """A second invoke with the name and input of an execution answers
    with that execution, and runs nothing again."""
    first = invoke(lambda_client, "steps", {"count": 3}, DurableExecutionName="o-1")
    invocations = server.local.describe(first["DurableExecutionArn"]).invocations

    second = invoke(lambda_client, "steps", {"count": 3}, DurableExecutionName="o-1")

    assert second["DurableExecutionArn"] == first["DurableExecutionArn"]
    assert json.loads(second["Body"]) == json.loads(first["Body"]) == 5
    assert server.local.describe(first["DurableExecutionArn"]).invocations == (
        invocations
    )
    assert ":$LATEST/durable-execution/o-1/" in first["DurableExecutionArn"]


def test_same_name_with_other_input_conflicts(
    server: DurableExecutionServer, lambda_client: Any
) -> None:
    """The name of an execution with another input is refused with
    DurableExecutionAlreadyStartedException, and nothing is created."""
    invoke(lambda_client, "steps", {"count": 3}, DurableExecutionName="o-2")

    with pytest.raises(ClientError) as caught:
        invoke(lambda_client, "steps", {"count": 4}, DurableExecutionName="o-2")

    status, code, _ = error_code(caught.value)
    assert (status, code) == (409, "DurableExecutionAlreadyStartedException")
    assert len(server.engine.find_arns()) == 1


def test_concurrent_invokes_of_one_name_never_overlap(
    server: DurableExecutionServer,
) -> None:
    """Invokes of one execution from many threads share it: each answers
    its result, and its invocations run one after another."""
    results: list[Any] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def call() -> None:
        client = make_client(server.url)
        try:
            start.wait()
            reply = invoke(client, "waiting", {}, DurableExecutionName="shared")
            results.append((reply["StatusCode"], json.loads(reply["Body"])))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    expected = {"first": "before", "child": ["in", "side"]}
    assert results == [(200, expected)] * 6
    (arn,) = server.engine.find_arns()
    history = server.local.history(arn)
    spans = [
        (
            event["InvocationCompletedDetails"]["StartTimestamp"],
            event["InvocationCompletedDetails"]["EndTimestamp"],
        )
        for event in history
        if event["EventType"] == "InvocationCompleted"
    ]
    # The wait splits the work in two invocations, however many callers.
    assert len(spans) == 2
    assert spans[0][1] <= spans[1][0]


# -- plain functions ---------------------------------------------------------------


def test_plain_function_answers_its_return_value(lambda_client: Any) -> None:
    """A plain function is called once; its return value is the payload."""
    reply = invoke(lambda_client, "echo", {"a": [1, 2]})

    assert reply["StatusCode"] == 200
    assert json.loads(reply["Body"]) == {"a": [1, 2]}
    assert "DurableExecutionArn" not in reply


def test_plain_function_error_is_a_function_error(lambda_client: Any) -> None:
    """A plain function that raises answers 200 with the error."""
    reply = invoke(lambda_client, "explode", {})

    assert reply["FunctionError"] == "Unhandled"
    assert json.loads(reply["Body"])["errorMessage"] == "plain failure"


# -- callbacks ----------------------------------------------------------------------


def test_callback_success_through_boto3(both_server: DurableExecutionServer) -> None:
    """An execution waiting for a callback answers 202; the answer sent
    with boto3 resumes it, and it ends with the answer."""
    client = make_client(both_server.url)
    waiting = invoke(client, "approval", {}, DurableExecutionName="ask")
    arn = waiting["DurableExecutionArn"]
    assert (waiting["StatusCode"], waiting["Body"]) == (202, b"")
    assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"

    (callback_id,) = callback_ids(client, arn)
    client.send_durable_execution_callback_success(
        CallbackId=callback_id, Result=b'{"approved": true}'
    )
    assert both_server.wait_idle(timeout=60)

    execution = client.get_durable_execution(DurableExecutionArn=arn)
    assert execution["Status"] == "SUCCEEDED"
    assert json.loads(execution["Result"]) == {"answer": {"approved": True}}
    again = invoke(client, "approval", {}, DurableExecutionName="ask")
    assert json.loads(again["Body"]) == {"answer": {"approved": True}}
    events = client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
    succeeded = [e for e in events if e["EventType"] == "CallbackSucceeded"]
    assert succeeded[0]["CallbackSucceededDetails"]["Result"]["Payload"] == (
        '{"approved": true}'
    )


def test_callback_failure_through_boto3(both_server: DurableExecutionServer) -> None:
    """A failure sent with boto3 reaches the workflow as sent, and the
    execution fails with it."""
    client = make_client(both_server.url)
    arn = invoke(client, "approval", {})["DurableExecutionArn"]
    (callback_id,) = callback_ids(client, arn)

    client.send_durable_execution_callback_failure(
        CallbackId=callback_id,
        Error={"ErrorType": "RejectedError", "ErrorMessage": "not today"},
    )
    assert both_server.wait_idle(timeout=60)

    execution = client.get_durable_execution(DurableExecutionArn=arn)
    assert execution["Status"] == "FAILED"
    assert execution["Error"]["ErrorType"] == "RejectedError"
    assert execution["Error"]["ErrorMessage"] == "not today"
    events = client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
    (failed,) = [e for e in events if e["EventType"] == "CallbackFailed"]
    assert failed["CallbackFailedDetails"]["Error"]["Payload"] == {
        "ErrorType": "RejectedError",
        "ErrorMessage": "not today",
    }


def test_two_callbacks_answered_in_any_order(lambda_client: Any, server: Any) -> None:
    """Each answer resumes the execution; it ends once both came."""
    arn = invoke(lambda_client, "two-callbacks", {})["DurableExecutionArn"]
    first, second = callback_ids(lambda_client, arn)

    lambda_client.send_durable_execution_callback_success(
        CallbackId=second, Result=b'"two"'
    )
    assert server.wait_idle(timeout=60)
    assert server.local.describe(arn).status.value == "RUNNING"
    lambda_client.send_durable_execution_callback_success(
        CallbackId=first, Result=b'"one"'
    )
    assert server.wait_idle(timeout=60)

    assert server.local.describe(arn).result == ["one", "two"]


def test_heartbeat_and_late_answers(lambda_client: Any, server: Any) -> None:
    """A heartbeat to an open callback is accepted; once answered, a
    second answer or heartbeat is CallbackTimeoutException, and an id
    never issued is ResourceNotFoundException."""
    arn = invoke(lambda_client, "approval", {})["DurableExecutionArn"]
    (callback_id,) = callback_ids(lambda_client, arn)

    lambda_client.send_durable_execution_callback_heartbeat(CallbackId=callback_id)
    lambda_client.send_durable_execution_callback_success(
        CallbackId=callback_id, Result=b"1"
    )
    assert server.wait_idle(timeout=60)

    for call in (
        lambda: lambda_client.send_durable_execution_callback_success(
            CallbackId=callback_id, Result=b"2"
        ),
        lambda: lambda_client.send_durable_execution_callback_heartbeat(
            CallbackId=callback_id
        ),
    ):
        with pytest.raises(ClientError) as caught:
            call()
        assert error_code(caught.value)[:2] == (400, "CallbackTimeoutException")
    with pytest.raises(ClientError) as caught:
        lambda_client.send_durable_execution_callback_heartbeat(
            CallbackId="bm90LWEtY2FsbGJhY2s="
        )
    assert error_code(caught.value)[:2] == (404, "ResourceNotFoundException")


def test_callback_timeout_fires_when_the_clock_passes_it() -> None:
    """With the clock moved past a callback's heartbeat timeout, the
    server times the callback out and resumes the execution."""
    clock = SkippingClock()
    with DurableExecutionServer({"impatient": impatient}, clock=clock) as server:
        client = make_client(server.url)
        arn = invoke(client, "impatient", {})["DurableExecutionArn"]
        assert server.local.describe(arn).status.value == "RUNNING"

        clock.advance(11)
        server.tick()
        assert server.wait_idle(timeout=60)

        assert server.local.describe(arn).result == "gave up: Callback.Heartbeat"


def test_callback_of_a_chained_target_resumes_its_caller(
    both_server: DurableExecutionServer,
) -> None:
    """An answer to the callback of an invoked execution ends it, and its
    caller goes on with its result."""
    client = make_client(both_server.url)
    reply = invoke(client, "waiting-caller", {})
    assert reply["StatusCode"] == 202
    caller_arn = reply["DurableExecutionArn"]
    (target,) = both_server.engine.find_arns(function_name="approval")

    (callback_id,) = callback_ids(client, target)
    client.send_durable_execution_callback_success(
        CallbackId=callback_id, Result=b'"yes"'
    )
    assert both_server.wait_idle(timeout=60)

    caller = client.get_durable_execution(DurableExecutionArn=caller_arn)
    assert caller["Status"] == "SUCCEEDED"
    assert json.loads(caller["Result"]) == {"answer": "yes"}


# -- stop --------------------------------------------------------------------------


def test_stop_through_boto3(both_server: DurableExecutionServer) -> None:
    """StopDurableExecution stops a waiting execution with the request's
    error; later answers and stops are refused, and an invoke of its name
    reports the stop as a function error."""
    client = make_client(both_server.url)
    arn = invoke(client, "approval", {}, DurableExecutionName="halt")[
        "DurableExecutionArn"
    ]
    (callback_id,) = callback_ids(client, arn)

    stopped = client.stop_durable_execution(
        DurableExecutionArn=arn,
        Error={"ErrorType": "Cancelled", "ErrorMessage": "changed my mind"},
    )

    assert stopped["StopTimestamp"].year >= 2025
    execution = client.get_durable_execution(DurableExecutionArn=arn)
    assert execution["Status"] == "STOPPED"
    events = client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
    assert events[-1]["EventType"] == "ExecutionStopped"
    assert events[-1]["ExecutionStoppedDetails"]["Error"]["Payload"] == {
        "ErrorType": "Cancelled",
        "ErrorMessage": "changed my mind",
    }
    with pytest.raises(ClientError) as again:
        client.stop_durable_execution(DurableExecutionArn=arn)
    assert error_code(again.value)[:2] == (409, "ResourceConflictException")
    with pytest.raises(ClientError) as late:
        client.send_durable_execution_callback_success(
            CallbackId=callback_id, Result=b"1"
        )
    assert error_code(late.value)[:2] == (400, "CallbackTimeoutException")
    reply = invoke(client, "approval", {}, DurableExecutionName="halt")
    assert reply["FunctionError"] == "Unhandled"
    assert json.loads(reply["Body"])["errorType"] == "Cancelled"


def test_stop_reaches_the_targets_of_chained_invokes(
    server: DurableExecutionServer, lambda_client: Any
) -> None:
    """Stopping a caller stops the running target of its invoke too."""
    caller_arn = invoke(lambda_client, "waiting-caller", {})["DurableExecutionArn"]
    (target,) = server.engine.find_arns(function_name="approval")

    lambda_client.stop_durable_execution(DurableExecutionArn=caller_arn)
    assert server.wait_idle(timeout=60)

    statuses = [
        lambda_client.get_durable_execution(DurableExecutionArn=arn)["Status"]
        for arn in (caller_arn, target)
    ]
    assert statuses == ["STOPPED", "STOPPED"]


def test_stopping_a_target_fails_the_callers_invoke(
    server: DurableExecutionServer, lambda_client: Any
) -> None:
    """A stopped target closes its caller's invoke as STOPPED; the caller,
    which does not catch it, fails with the stop's error."""
    caller_arn = invoke(lambda_client, "waiting-caller", {})["DurableExecutionArn"]
    (target,) = server.engine.find_arns(function_name="approval")

    lambda_client.stop_durable_execution(
        DurableExecutionArn=target, Error={"ErrorType": "Halted"}
    )
    assert server.wait_idle(timeout=60)

    caller = lambda_client.get_durable_execution(DurableExecutionArn=caller_arn)
    assert caller["Status"] == "FAILED"
    assert caller["Error"]["ErrorType"] == "Halted"


def test_stop_during_an_invocation(both_server: DurableExecutionServer) -> None:
    """A stop while an invocation runs voids its token: its next
    checkpoint is refused, nothing after it is recorded, and
    ExecutionStopped follows the invocation's InvocationCompleted."""
    client = make_client(both_server.url)
    INTERRUPT[:] = [
        lambda arn: client.stop_durable_execution(
            DurableExecutionArn=arn, Error={"ErrorType": "Interrupted"}
        )
    ]
    try:
        reply = invoke(client, "interrupted", {})
    finally:
        INTERRUPT.clear()

    assert reply["FunctionError"] == "Unhandled"
    assert json.loads(reply["Body"])["errorType"] == "Interrupted"
    events = client.get_durable_execution_history(
        DurableExecutionArn=reply["DurableExecutionArn"]
    )["Events"]
    assert [e["EventType"] for e in events[-2:]] == [
        "InvocationCompleted",
        "ExecutionStopped",
    ]
    assert "after" not in [e.get("Name") for e in events]
