"""Payload serialization.

Every value an operation checkpoints — a step's result, a child context's
result, the execution's result — is turned into text by a :class:`SerDes`.
The default is JSON through cattrs, so attrs classes, dataclasses,
datetimes, dates, decimals, UUIDs, enums, sets and tuples all serialize.

JSON does not say which class a value was. Where the operation knows the
type it returns — from ``result_type`` or the function's return annotation
— the default serdes structures the text back into that type, so an attrs
class comes back as an attrs class; without a type, values come back as
plain JSON data. Either way the first run returns the deserialized
checkpoint, exactly what a replay will see.

A custom format implements :class:`SerDes`; it is chosen per operation.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import json
import typing
import uuid
import weakref
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import attrs
import cattrs

from .errors import SerDesError

__all__ = [
    "JsonSerDes",
    "SerDes",
    "SerDesContext",
    "default_serdes",
    "deserialize",
    "serialize",
]

T = TypeVar("T")


@attrs.frozen
class SerDesContext:
    """Where a payload belongs: the operation and the execution."""

    operation_id: str
    durable_execution_arn: str
    operation_name: str | None = None


class SerDes(Protocol[T]):
    """Turns values into checkpoint text and back."""

    def serialize(self, value: T, context: SerDesContext) -> str: ...

    def deserialize(self, payload: str, context: SerDesContext) -> T: ...


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_unstructure_hook(_dt.datetime, _dt.datetime.isoformat)
    converter.register_structure_hook(
        _dt.datetime, lambda v, _: _dt.datetime.fromisoformat(v)
    )
    converter.register_unstructure_hook(_dt.date, _dt.date.isoformat)
    converter.register_structure_hook(_dt.date, lambda v, _: _dt.date.fromisoformat(v))
    converter.register_unstructure_hook(decimal.Decimal, str)
    converter.register_structure_hook(
        decimal.Decimal, lambda v, _: decimal.Decimal(str(v))
    )
    converter.register_unstructure_hook(uuid.UUID, str)
    converter.register_structure_hook(uuid.UUID, lambda v, _: uuid.UUID(v))
    converter.register_unstructure_hook(frozenset, list)
    converter.register_unstructure_hook(set, list)
    converter.register_unstructure_hook(enum.Enum, lambda member: member.value)
    return converter


_converter = _make_converter()


def _unstructure(value: Any) -> Any:
    # Plain JSON values need no conversion; skipping cattrs for them keeps
    # the common case fast.
    if value is None or type(value) in (str, int, float, bool):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return _converter.unstructure(value)


_encode = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode
_decode = json.JSONDecoder().decode


class JsonSerDes(Generic[T]):
    """JSON through cattrs; structures into ``type`` when one is given."""

    def __init__(self, type: Any = None) -> None:
        self.type = type

    def serialize(self, value: T, context: SerDesContext) -> str:
        return _encode(_unstructure(value))

    def deserialize(self, payload: str, context: SerDesContext) -> T:
        data = _decode(payload)
        if self.type is None or data is None:
            return typing.cast(T, data)
        return _converter.structure(data, self.type)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"JsonSerDes(type={self.type!r})"


default_serdes: JsonSerDes[Any] = JsonSerDes()

_typed: dict[Any, JsonSerDes[Any]] = {}
_return_types: weakref.WeakKeyDictionary[Callable[..., Any], Any] = (
    weakref.WeakKeyDictionary()
)

_NO_TYPE = object()


def serdes_for(serdes: SerDes[Any] | None, result_type: Any = None) -> SerDes[Any]:
    """The serdes an operation uses: its own, or JSON for its type."""
    if serdes is not None:
        return serdes
    if result_type is None or result_type is Any:
        return default_serdes
    try:
        return _typed[result_type]
    except KeyError:
        typed = _typed[result_type] = JsonSerDes(result_type)
        return typed
    except TypeError:  # an unhashable annotation
        return JsonSerDes(result_type)


def return_type_of(func: Callable[..., Any]) -> Any:
    """The return annotation of ``func``, or None; cached per function."""
    annotations = getattr(func, "__annotations__", None)
    if not annotations or "return" not in annotations:
        return None
    try:
        cached = _return_types.get(func, _NO_TYPE)
    except TypeError:
        cached = _NO_TYPE
    if cached is not _NO_TYPE:
        return cached
    hint: Any = annotations["return"]
    if isinstance(hint, str):
        try:
            hint = typing.get_type_hints(func).get("return")
        except Exception:  # an unresolvable forward reference
            hint = None
    if hint is type(None) or hint is Any:
        hint = None
    try:
        _return_types[func] = hint
    except TypeError:
        pass
    return hint


def serialize(serdes: SerDes[Any], value: Any, context: SerDesContext) -> str:
    """Serialize ``value``, raising :class:`SerDesError` naming the
    operation when it cannot be."""
    try:
        payload = serdes.serialize(value, context)
    except Exception as error:
        raise SerDesError(
            f"cannot serialize the result of {_describe(context)}: "
            f"{type(error).__name__}: {error}"
        ) from error
    if not isinstance(payload, str):
        raise SerDesError(
            f"serdes {serdes!r} returned {type(payload).__name__} for "
            f"{_describe(context)}; serialize must return str"
        )
    return payload


def deserialize(
    serdes: SerDes[Any], payload: str | None, context: SerDesContext
) -> Any:
    """Deserialize ``payload``; an absent payload is None."""
    if payload is None:
        return None
    try:
        return serdes.deserialize(payload, context)
    except Exception as error:
        raise SerDesError(
            f"cannot deserialize the checkpointed result of "
            f"{_describe(context)}: {type(error).__name__}: {error}"
        ) from error


def _describe(context: SerDesContext) -> str:
    if context.operation_name:
        return f"operation {context.operation_name!r} (id {context.operation_id})"
    return f"operation {context.operation_id}"
