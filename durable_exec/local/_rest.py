"""rest-json as botocore writes and reads it, for the operations served.

The server's requests are checked against botocore's ``lambda`` model,
not against a copy of it: every member where the model puts it (path,
query string, header, body), with its type, length, range, pattern and
enum. Replies are written from the model's output shapes, timestamps as
epoch seconds. Refusals are :class:`HttpError` with the status and code
the service would answer with.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import enum
import json
import math
import re
import threading
from collections.abc import Mapping
from typing import Any, Final

import attrs

from ..wire import epoch_millis

__all__ = [
    "NOT_SERVED",
    "SERVED",
    "HttpError",
    "Route",
    "bad",
    "bad_content",
    "check",
    "dump",
    "json_body",
    "parse_query",
    "read_input",
    "routes",
    "service_model",
    "show",
    "split_path",
]

_UTC = _dt.UTC
_DIGITS = re.compile(r"[+-]?\d{1,20}")


class HttpError(Exception):
    """A refusal with its HTTP status and error code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def bad(message: str) -> HttpError:
    return HttpError(400, "InvalidParameterValueException", message)


def bad_content(message: str) -> HttpError:
    return HttpError(400, "InvalidRequestContentException", message)


# -- the model ------------------------------------------------------------------

_model_lock = threading.Lock()
_model_cache: Any = None
_patterns: dict[str, re.Pattern[str]] = {}


def service_model() -> Any:
    """botocore's ``lambda`` model, loaded once."""
    global _model_cache
    with _model_lock:
        if _model_cache is None:
            import botocore.session  # type: ignore[import-untyped, unused-ignore]

            session = botocore.session.get_session()
            _model_cache = session.get_service_model("lambda")
        return _model_cache


def _pattern(text: str) -> re.Pattern[str]:
    compiled = _patterns.get(text)
    if compiled is None:
        compiled = _patterns[text] = re.compile(text)
    return compiled


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check(shape: Any, value: Any, path: str) -> Any:
    """``value`` checked against the model ``shape``; timestamps become
    datetimes and JSON blobs bytes. Raises a 400 naming ``path``."""
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, Mapping):
            raise bad(f"{path} must be an object (got {_kind(value)})")
        checked: dict[str, Any] = {}
        for key, item in value.items():
            member = shape.members.get(key)
            # Unknown members are ignored, and null means absent.
            if member is None or item is None:
                continue
            checked[key] = check(member, item, f"{path}.{key}" if path else key)
        for name in shape.required_members:
            if name not in checked:
                where = f"{path}.{name}" if path else name
                raise bad(f"{where} is required")
        return checked
    if kind == "list":
        if not isinstance(value, list):
            raise bad(f"{path} must be a list (got {_kind(value)})")
        _check_size(meta, len(value), path, "items")
        return [
            check(shape.member, item, f"{path}[{index}]")
            for index, item in enumerate(value)
        ]
    if kind == "map":
        if not isinstance(value, Mapping):
            raise bad(f"{path} must be an object (got {_kind(value)})")
        return {
            check(shape.key, key, f"{path} key"): check(
                shape.value, item, f"{path}.{key}"
            )
            for key, item in value.items()
        }
    if kind == "string":
        if not isinstance(value, str):
            raise bad(f"{path} must be a string (got {_kind(value)})")
        enum_ = meta.get("enum")
        if enum_ and value not in enum_:
            raise bad(f"{path} must be one of {', '.join(enum_)} (got {show(value)})")
        _check_size(meta, len(value), path, "characters")
        pattern = meta.get("pattern")
        if pattern and not _pattern(pattern).fullmatch(value):
            raise bad(f"{path} {show(value)} does not match {pattern!r}")
        return value
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad(f"{path} must be an integer (got {_kind(value)})")
        _check_range(meta, value, path)
        return value
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad(f"{path} must be a number (got {_kind(value)})")
        _check_range(meta, value, path)
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise bad(f"{path} must be a boolean (got {_kind(value)})")
        return value
    if kind == "timestamp":
        return _timestamp(value, path)
    if kind == "blob":
        if isinstance(value, bytes):
            blob = value
        elif isinstance(value, str):
            try:
                blob = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise bad(f"{path} must be base64 (got {show(value)})") from None
        else:
            raise bad(f"{path} must be base64 text (got {_kind(value)})")
        _check_size(meta, len(blob), path, "bytes")
        return blob
    # A type the operations served here do not use.
    return value


def _check_size(meta: Mapping[str, Any], size: int, path: str, unit: str) -> None:
    low, high = meta.get("min"), meta.get("max")
    if low is not None and size < low:
        raise bad(f"{path} must have at least {low} {unit} (got {size})")
    if high is not None and size > high:
        raise bad(f"{path} must have at most {high:,} {unit} (got {size:,})")


def _check_range(meta: Mapping[str, Any], value: float, path: str) -> None:
    low, high = meta.get("min"), meta.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        raise bad(f"{path} must be {low} to {high} (got {value!r})")


def _timestamp(value: Any, path: str) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise bad(f"{path} must be a finite timestamp (got {value!r})")
        try:
            return _dt.datetime.fromtimestamp(value, _UTC)
        except (OverflowError, OSError, ValueError):
            raise bad(f"{path} is out of range (got {value!r})") from None
    if isinstance(value, str):
        try:
            return _timestamp(float(value), path)
        except ValueError:
            pass
        try:
            parsed = _dt.datetime.fromisoformat(value)
        except ValueError:
            raise bad(
                f"{path} must be ISO-8601 or epoch seconds (got {show(value)})"
            ) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=_UTC)
    raise bad(f"{path} must be a timestamp (got {_kind(value)})")


def _from_text(shape: Any, text: str, path: str) -> Any:
    """A query, header or path value as the type ``shape`` wants."""
    kind = shape.type_name
    if kind in ("integer", "long"):
        if not _DIGITS.fullmatch(text):
            raise bad(f"{path} must be an integer (got {show(text)})")
        return int(text)
    if kind == "boolean":
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise bad(f"{path} must be true or false (got {show(text)})")
        return lowered == "true"
    if kind == "timestamp":
        return _timestamp(text, path)
    return text


def _seconds(moment: _dt.datetime) -> float:
    return epoch_millis(moment) / 1000


def dump(shape: Any, value: Any) -> Any:
    """``value`` as rest-json writes the model ``shape``.

    Timestamps are datetimes, or epoch milliseconds where the model says
    timestamp (the envelope's form, as :func:`to_wire` writes it); both
    become epoch seconds. Absent (None) members are left out; members
    the model does not know are kept.
    """
    if isinstance(value, _dt.datetime):
        return _seconds(value)
    if isinstance(value, enum.Enum):
        return value.value
    kind = shape.type_name if shape is not None else None
    if isinstance(value, Mapping):
        members = shape.members if kind == "structure" else {}
        return {
            key: dump(members.get(key), item)
            for key, item in value.items()
            if item is not None
        }
    if isinstance(value, (list, tuple)):
        member = shape.member if kind == "list" else None
        return [dump(member, item) for item in value]
    if (
        kind == "timestamp"
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
    ):
        return value / 1000
    return value


# -- requests -------------------------------------------------------------------


@attrs.frozen
class Route:
    """One operation's method and path, as the model gives them."""

    operation: str
    method: str
    segments: tuple[str, ...]
    served: bool = True

    def match(self, segments: list[str]) -> dict[str, str] | None:
        if len(segments) != len(self.segments):
            return None
        labels: dict[str, str] = {}
        for pattern, segment in zip(self.segments, segments):
            if pattern.startswith("{") and pattern.endswith("}"):
                labels[pattern[1:-1]] = segment
            elif pattern != segment:
                return None
        return labels


SERVED: Final = (
    "CheckpointDurableExecution",
    "GetDurableExecutionState",
    "GetDurableExecution",
    "GetDurableExecutionHistory",
    "ListDurableExecutionsByFunction",
    "SendDurableExecutionCallbackSuccess",
    "SendDurableExecutionCallbackFailure",
    "SendDurableExecutionCallbackHeartbeat",
    "StopDurableExecution",
    "Invoke",
)
# Known to the model, and answered with a refusal that names them.
NOT_SERVED: Final = (
    "DeleteDurableExecution",
    "PauseDurableExecution",
    "ResumeDurableExecution",
)


def routes() -> list[Route]:
    model = service_model()
    routes = []
    for name in SERVED + NOT_SERVED:
        http_ = model.operation_model(name).http
        path = http_["requestUri"].partition("?")[0]
        routes.append(
            Route(
                name,
                http_["method"],
                tuple(path.strip("/").split("/")),
                served=name in SERVED,
            )
        )
    return routes


def split_path(raw: str) -> list[str]:
    """Path segments, each percent-decoded after the split: botocore
    encodes ``/`` inside a parameter, so decoding first would split it."""
    try:
        return [_unquote(segment) for segment in raw.removeprefix("/").split("/")]
    except UnicodeDecodeError:
        raise bad("the request path is not UTF-8 once decoded") from None


def _unquote(text: str) -> str:
    # Not unquote_plus: "+" is literal in paths and in botocore's queries,
    # and it is in the base64 alphabet of tokens and callback ids.
    from urllib.parse import unquote

    return unquote(text, errors="strict")


def parse_query(raw: str) -> dict[str, list[str]]:
    query: dict[str, list[str]] = {}
    if not raw:
        return query
    for part in raw.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        try:
            query.setdefault(_unquote(key), []).append(_unquote(value))
        except UnicodeDecodeError:
            raise bad("the query string is not UTF-8 once decoded") from None
    return query


def json_body(body: bytes, what: str) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise bad_content(f"{what} is not UTF-8: {error}") from None

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(text, parse_constant=constant)
    except RecursionError:
        raise bad_content(f"{what} nests too deeply") from None
    except ValueError as error:
        raise bad_content(f"{what} is not valid JSON: {error}") from None


def read_input(
    operation: Any,
    labels: Mapping[str, str],
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, Any]:
    """The operation's parameters from the request, checked against the
    model: every member where the model puts it."""
    shape = operation.input_shape
    payload = shape.serialization.get("payload")
    raw: dict[str, Any] = {}
    body_members = False
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri":
            if wire in labels:
                raw[name] = labels[wire]
        elif location == "querystring":
            values = query.get(wire)
            if not values:
                continue
            if member.type_name == "list":
                raw[name] = [_from_text(member.member, value, name) for value in values]
            elif len(values) > 1:
                raise bad(f"{name} is given {len(values)} times; give it once")
            else:
                raw[name] = _from_text(member, values[0], name)
        elif location == "header":
            value = headers.get(wire.lower())
            if value is not None:
                raw[name] = _from_text(member, value, name)
        elif name == payload:
            if not body:
                continue
            if member.type_name == "blob":
                raw[name] = body
            else:
                raw[name] = json_body(body, "the request body")
        elif location is None:
            body_members = True

    if body_members and payload is None:
        document = json_body(body, "the request body") if body else {}
        if not isinstance(document, Mapping):
            raise bad_content(
                f"the request body must be a JSON object (got {_kind(document)})"
            )
        for name, member in shape.members.items():
            if member.serialization.get("location") is None and name in document:
                raw[name] = document[name]

    checked: dict[str, Any] = check(shape, raw, "")
    return checked
