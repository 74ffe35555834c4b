"""Clients of a durable execution service.

:class:`DurableServiceClient` is the protocol the SDK core talks to;
:class:`BotoServiceClient` implements it on boto3's ``lambda`` client, for
the real service (or anything that serves its API).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._protocol import DurableServiceClient

if TYPE_CHECKING:
    from ._boto import BotoServiceClient

__all__ = ["BotoServiceClient", "DurableServiceClient"]


def __getattr__(name: str) -> Any:
    # boto3 is imported only by those who use it.
    if name == "BotoServiceClient":
        from ._boto import BotoServiceClient

        return BotoServiceClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
