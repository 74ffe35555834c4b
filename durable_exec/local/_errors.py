"""Errors the engine answers with, in the service's vocabulary.

Each carries the service's error code and HTTP status, so the in-process
client and an HTTP front end report a refusal the same way the real
service does.
"""

from __future__ import annotations

__all__ = [
    "CallbackTimeoutException",
    "InvalidParameterValueException",
    "ResourceConflictException",
    "ResourceNotFoundException",
    "ServiceError",
]


class ServiceError(Exception):
    """A refusal of the engine; ``code`` and ``status`` as the service's."""

    code = "ServiceException"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameterValueException(ServiceError):
    code = "InvalidParameterValueException"
    status = 400


class ResourceNotFoundException(ServiceError):
    code = "ResourceNotFoundException"
    status = 404


class CallbackTimeoutException(ServiceError):
    code = "CallbackTimeoutException"
    status = 400


class ResourceConflictException(ServiceError):
    code = "ResourceConflictException"
    status = 409
