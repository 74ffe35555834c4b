"""Fixtures of the HTTP tests: a server on an ephemeral loopback port, a
boto3 ``lambda`` client pointed at it, and the SDK's client on top.

The server skips time, so waits of a day end at once; nothing leaves
127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.config
import pytest
from http_workflows import FUNCTIONS

from durable_exec.local import DurableExecutionServer
from durable_exec.service import BotoServiceClient


def make_client(url: str) -> Any:
    """A boto3 lambda client for ``url``: dummy credentials, us-east-1,
    botocore's retries off so a refusal is seen as sent."""
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=botocore.config.Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            read_timeout=120,
        ),
    )


@pytest.fixture(params=[False, True], ids=["sdk-in-process", "sdk-over-http"])
def sdk_over_http(request: pytest.FixtureRequest) -> bool:
    """Whether the served handlers reach the engine through HTTP too."""
    return bool(request.param)


@pytest.fixture
def server() -> Iterator[DurableExecutionServer]:
    """The test workflows served on 127.0.0.1, any free port, skipping time."""
    with DurableExecutionServer(
        FUNCTIONS, host="127.0.0.1", port=0, skip_time=True
    ) as running:
        yield running


@pytest.fixture
def both_server(sdk_over_http: bool) -> Iterator[DurableExecutionServer]:
    """As ``server``, once with each transport between SDK and engine."""
    with DurableExecutionServer(
        FUNCTIONS, skip_time=True, sdk_over_http=sdk_over_http
    ) as running:
        yield running


@pytest.fixture
def lambda_client(server: DurableExecutionServer) -> Any:
    """A boto3 lambda client whose endpoint is the server."""
    return make_client(server.url)


@pytest.fixture
def service_client(lambda_client: Any) -> BotoServiceClient:
    """The SDK's service client over ``lambda_client``."""
    return BotoServiceClient(lambda_client)


def plain(value: Any) -> Any:
    """``value`` with datetimes as UTC epoch milliseconds, for comparing
    what boto3 parsed with what the engine keeps."""
    if isinstance(value, dt.datetime):
        return round(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value
