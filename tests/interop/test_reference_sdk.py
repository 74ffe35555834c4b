"""Handlers written with the AWS reference SDK, on our HTTP server.

The other direction of interop: workflows we did not write
(``reference_handlers``, on ``aws-durable-execution-sdk-python``) run
against a service, which invokes them through the loopback Lambda
endpoint; they checkpoint through their own boto3 client. Each workflow
runs on two services:

- ``reference-runner``: the AWS reference local runner. It shows that the
  workflow and the outcome it is meant to have are right, so that a
  failure on our server is our server's.
- ``our-server``: ``durable_exec.local.DurableExecutionServer``, our HTTP
  front end over the embedded engine. Skipped while it does not exist
  (its import fails). It runs its functions in its own process and
  knows a durable one by its type, so ``interop_harness.OurServer``
  registers each reference-SDK handler wrapped in a ``DurableHandler``
  that passes the envelope on through JSON; the handler's checkpoints
  still go over HTTP, through its own boto3 client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aws_durable_execution_sdk_python import durable_execution
from interop_harness import (
    REF_DURABLE_TARGET,
    REF_PLAIN_TARGET,
    OurServer,
    ServiceDriver,
    WireLog,
    lambda_client,
    run_to_end,
    unique_function_name,
)
from reference_handlers import (
    WORKFLOWS,
    Workflow,
    durable_target,
    plain_target,
)


@pytest.fixture(scope="module")
def our_server() -> Iterator[OurServer]:
    """Our HTTP server on 127.0.0.1, skipping time."""
    try:
        server = OurServer()
    except ImportError as error:
        pytest.skip(f"our HTTP server is not built yet ({error})")
    yield server
    server.close()


class Service:
    """A service under test, where its functions are served (a Lambda
    endpoint it invokes, or the server itself), and a boto3 client of it
    for the reference SDK's handlers."""

    def __init__(self, driver: ServiceDriver, host: Any, wire: WireLog) -> None:
        self.driver = driver
        self.host = host
        self.boto3_client = wire.install(lambda_client(driver.endpoint_url))

    def serve(self, name: str, func: Any) -> None:
        """Serve a reference-SDK workflow as durable function ``name``."""
        handler = durable_execution(func, boto3_client=self.boto3_client)
        self.host.durable(name, handler)


@pytest.fixture(scope="module")
def _services() -> dict[str, Service]:
    """The services set up so far in this module, by kind."""
    return {}


@pytest.fixture(params=["reference-runner", "our-server"])
def service(
    request: pytest.FixtureRequest, wire: WireLog, _services: dict[str, Service]
) -> Service:
    """Each service, with the reference-SDK targets of chained invokes."""
    kind: str = request.param
    if kind not in _services:
        if kind == "reference-runner":
            driver: ServiceDriver = request.getfixturevalue("reference_runner")
            host: Any = request.getfixturevalue("endpoint")
        else:
            driver = host = request.getfixturevalue("our_server")
        made = Service(driver, host, wire)
        made.serve(REF_DURABLE_TARGET, durable_target)
        host.plain(REF_PLAIN_TARGET, plain_target)
        _services[kind] = made
    return _services[kind]


def answerer(service: Service, workflow: Workflow) -> Any:
    """What the outside world does during ``workflow``, if anything."""
    if workflow.answer is None:
        return None
    client = service.driver.client

    def answer(arn: str) -> None:
        callback_id = service.driver.callback_id(arn, workflow.callback)
        if workflow.answer == "succeed":
            client.send_durable_execution_callback_success(
                CallbackId=callback_id, Result=json.dumps({"approved": True}).encode()
            )
        else:
            client.send_durable_execution_callback_failure(
                CallbackId=callback_id,
                Error={"ErrorType": "RejectedError", "ErrorMessage": "not today"},
            )

    return answer


@pytest.mark.parametrize("workflow_id", sorted(WORKFLOWS))
def test_reference_sdk_workflow(
    request: pytest.FixtureRequest, service: Service, wire: WireLog, workflow_id: str
) -> None:
    """A reference-SDK workflow ends with the outcome it is meant to have."""
    workflow = WORKFLOWS[workflow_id]
    name = unique_function_name(f"ref-{workflow_id}")
    service.serve(name, workflow.func)

    outcome = run_to_end(
        service.driver,
        service.host,
        wire,
        name,
        workflow.payload,
        answer=answerer(service, workflow),
    )

    assert outcome.status == workflow.status, outcome.error
    if workflow.status == "SUCCEEDED":
        assert outcome.result == workflow.result
    else:
        assert outcome.error is not None
        assert outcome.error.get("ErrorType") == workflow.error_type
