"""Fixtures of the interop tests: the AWS reference local runner on
loopback, a Lambda endpoint that serves handlers to it, and a wire log of
every request the handlers send."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from interop_harness import (
    TARGET_CONFIGS,
    LambdaEndpoint,
    Outcome,
    ReferenceRunner,
    Run,
    WireLog,
    lambda_client,
    run_to_end,
    serve,
    unique_function_name,
)

from durable_exec.handler import DurableHandler
from durable_exec.service import BotoServiceClient


@pytest.fixture(scope="session")
def endpoint() -> Iterator[LambdaEndpoint]:
    """The loopback Lambda endpoint the reference runner invokes."""
    served = LambdaEndpoint()
    yield served
    served.close()


@pytest.fixture(scope="session")
def reference_runner(endpoint: LambdaEndpoint) -> Iterator[ReferenceRunner]:
    """``dex-local-runner start-server`` on 127.0.0.1, skipping time."""
    runner = ReferenceRunner(endpoint.url, TARGET_CONFIGS)
    yield runner
    runner.close()


@pytest.fixture(scope="session")
def wire() -> WireLog:
    """Every request the handlers sent to a service, with the replies."""
    return WireLog()


@pytest.fixture(scope="session")
def service_client(
    reference_runner: ReferenceRunner, wire: WireLog
) -> BotoServiceClient:
    """Our SDK's client of the runner: BotoServiceClient on boto3."""
    return BotoServiceClient(wire.install(lambda_client(reference_runner.endpoint_url)))


@pytest.fixture
def run(
    request: pytest.FixtureRequest,
    endpoint: LambdaEndpoint,
    reference_runner: ReferenceRunner,
    service_client: BotoServiceClient,
    wire: WireLog,
) -> Run:
    """Run one of our handlers on the reference runner to the end, with
    the checks of :func:`run_to_end`."""

    def go(
        handler: DurableHandler[Any, Any],
        payload: Any = None,
        *,
        answer: Callable[[str], None] | None = None,
        timeout: float = 60,
    ) -> Outcome:
        name = unique_function_name(request.node.name)
        serve(endpoint, name, handler, service_client)
        return run_to_end(
            reference_runner,
            endpoint,
            wire,
            name,
            payload,
            answer=answer,
            timeout=timeout,
        )

    return go
