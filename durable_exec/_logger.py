"""The context logger, and a JSON formatter for its records.

A workflow's log lines should say which execution, operation and attempt
they belong to, and a replay should not print again what the first run
already printed. :class:`DurableLogger` does both: it adds the fields to
every record, and drops records while its context is replaying unless
asked to keep them. Code inside a step always runs for real, so a step's
logger never drops anything.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["DurableLogger", "JsonLogFormatter", "WORKFLOW_LOGGER_NAME"]

WORKFLOW_LOGGER_NAME = "durable_exec.workflow"

# The extra fields a DurableLogger adds, in the service's log vocabulary.
CONTEXT_FIELDS = (
    "durableExecutionArn",
    "operationId",
    "operationName",
    "attempt",
)


class DurableLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger that knows its execution and is quiet during replay.

    Args:
        logger: where records go; default ``durable_exec.workflow``.
        fields: added to every record (``durableExecutionArn``,
            ``operationId``, ``operationName``, ``attempt``).
        is_replaying: asked before each record; while it returns True the
            record is dropped, unless ``log_during_replay``.
        log_during_replay: keep records during replay too.
    """

    def __init__(
        self,
        logger: logging.Logger,
        fields: Mapping[str, Any],
        is_replaying: Callable[[], bool] | None = None,
        log_during_replay: bool = False,
    ) -> None:
        super().__init__(logger, {k: v for k, v in fields.items() if v is not None})
        self._is_replaying = is_replaying
        self.log_during_replay = log_during_replay

    def with_fields(self, **fields: Any) -> DurableLogger:
        """A logger like this one with more (or other) fields."""
        merged = {**(self.extra or {}), **fields}
        return DurableLogger(
            self.logger, merged, self._is_replaying, self.log_during_replay
        )

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = kwargs.get("extra")
        kwargs["extra"] = {**(self.extra or {}), **(extra or {})}
        return msg, kwargs

    def isEnabledFor(self, level: int) -> bool:
        if (
            not self.log_during_replay
            and self._is_replaying is not None
            and self._is_replaying()
        ):
            return False
        return self.logger.isEnabledFor(level)

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            msg, processed = self.process(msg, kwargs)
            processed.setdefault("stacklevel", 2)
            self.logger.log(level, msg, *args, **processed)


_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None))
) | {"message", "asctime", "taskName"}


class JsonLogFormatter(logging.Formatter):
    """Formats a record as one JSON object per line.

    The line holds ``timestamp``, ``level``, ``logger`` and ``message``,
    every extra field of the record (so a :class:`DurableLogger`'s
    ``durableExecutionArn``, ``operationId``, ``operationName`` and
    ``attempt``), and ``exception`` when one is attached.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": _dt.datetime.fromtimestamp(
                record.created, _dt.timezone.utc
            ).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)
