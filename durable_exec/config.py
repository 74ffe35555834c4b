"""Configuration of durable operations: durations, steps, child contexts.

Every config is a frozen attrs class, validated when it is built, so a bad
setting fails at the call that made it, before anything is checkpointed.
"""

from __future__ import annotations

import datetime as _dt
import enum
import math
from collections.abc import Callable
from typing import Any, Union

import attrs

from .errors import ValidationError
from .retry import RetryDecision, RetryPolicy, RetryPresets
from .serde import SerDes

__all__ = [
    "ChildConfig",
    "Duration",
    "DurationLike",
    "StepConfig",
    "StepSemantics",
]

# The service's bound on a wait: 366 days.
MAX_WAIT_SECONDS = 31_622_400


@attrs.frozen(order=True)
class Duration:
    """A span of whole seconds.

    Build one with the ``from_*`` constructors; a fractional total is
    rejected, since the service counts waits and delays in whole seconds.
    """

    seconds: int

    def __attrs_post_init__(self) -> None:
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, int):
            raise ValidationError(
                f"duration must be whole seconds (got {self.seconds!r})"
            )
        if self.seconds < 0:
            raise ValidationError(
                f"duration must not be negative (got {self.seconds!r} s)"
            )

    @classmethod
    def of(
        cls,
        *,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
    ) -> Duration:
        """Sum the parts; the total must be whole seconds."""
        total = days * 86_400 + hours * 3_600 + minutes * 60 + seconds
        return cls(_whole("duration", total))

    @classmethod
    def from_seconds(cls, seconds: float) -> Duration:
        return cls.of(seconds=seconds)

    @classmethod
    def from_minutes(cls, minutes: float) -> Duration:
        return cls.of(minutes=minutes)

    @classmethod
    def from_hours(cls, hours: float) -> Duration:
        return cls.of(hours=hours)

    @classmethod
    def from_days(cls, days: float) -> Duration:
        return cls.of(days=days)

    @classmethod
    def coerce(cls, value: DurationLike, parameter: str = "duration") -> Duration:
        """Accept a Duration, whole seconds or a timedelta."""
        if isinstance(value, Duration):
            return value
        if isinstance(value, _dt.timedelta):
            return cls(_whole(parameter, value.total_seconds()))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls(_whole(parameter, value))
        raise ValidationError(
            f"{parameter} must be a Duration, a number of seconds or a "
            f"timedelta (got {value!r})"
        )

    def __str__(self) -> str:
        return f"{self.seconds}s"


DurationLike = Union[Duration, int, float, _dt.timedelta]


def _whole(parameter: str, seconds: float) -> int:
    if isinstance(seconds, bool) or not math.isfinite(seconds):
        raise ValidationError(
            f"{parameter} must be a finite number of seconds (got {seconds!r})"
        )
    if seconds < 0:
        raise ValidationError(
            f"{parameter} must not be negative (got {seconds!r} s)"
        )
    if seconds != int(seconds):
        raise ValidationError(
            f"{parameter} must be whole seconds (got {seconds!r} s)"
        )
    return int(seconds)


class StepSemantics(enum.Enum):
    """How often a step's code may run for one attempt.

    AT_LEAST_ONCE_PER_RETRY: the attempt is checkpointed when it ends. If
        the process dies mid-attempt, the attempt runs again.
    AT_MOST_ONCE_PER_RETRY: the attempt's start is checkpointed before its
        code runs. If the process dies mid-attempt, the attempt is not run
        again: it counts as failed with :class:`StepInterruptedError` and
        goes through the retry strategy.
    """

    AT_LEAST_ONCE_PER_RETRY = "AT_LEAST_ONCE_PER_RETRY"
    AT_MOST_ONCE_PER_RETRY = "AT_MOST_ONCE_PER_RETRY"


def _check_retry_strategy(
    instance: Any, attribute: attrs.Attribute[Any], value: Any
) -> None:
    if value is not None and not callable(value):
        raise ValidationError(
            "retry_strategy must be callable as (error, attempt) -> "
            f"RetryDecision (got {value!r})"
        )


def _check_serdes(
    instance: Any, attribute: attrs.Attribute[Any], value: Any
) -> None:
    if value is None:
        return
    if not (
        callable(getattr(value, "serialize", None))
        and callable(getattr(value, "deserialize", None))
    ):
        raise ValidationError(
            f"{attribute.name} must have serialize() and deserialize() "
            f"methods (got {value!r})"
        )


def _check_semantics(
    instance: Any, attribute: attrs.Attribute[Any], value: Any
) -> None:
    if not isinstance(value, StepSemantics):
        raise ValidationError(
            f"semantics must be a StepSemantics (got {value!r})"
        )


@attrs.frozen
class StepConfig:
    """How a step runs.

    Attributes:
        retry_strategy: decides whether a failed attempt is retried and
            after how long; ``(error, attempt) -> RetryDecision``. Default:
            :meth:`RetryPresets.default`, 6 attempts, 5 s doubling to 60 s
            with full jitter.
        semantics: at least once (default) or at most once per retry.
        serdes: how the result is checkpointed. Default: JSON.
        result_type: the type the result is deserialized into. Default:
            the step function's return annotation, if any.
    """

    retry_strategy: RetryPolicy | Callable[[BaseException, int], RetryDecision] | None = attrs.field(
        default=None, validator=_check_retry_strategy
    )
    semantics: StepSemantics = attrs.field(
        default=StepSemantics.AT_LEAST_ONCE_PER_RETRY,
        validator=_check_semantics,
    )
    serdes: SerDes[Any] | None = attrs.field(
        default=None, validator=_check_serdes
    )
    result_type: Any = None

    def retry_policy(self) -> Callable[[BaseException, int], RetryDecision]:
        return self.retry_strategy or _DEFAULT_RETRY


_DEFAULT_RETRY = RetryPresets.default()


@attrs.frozen
class ChildConfig:
    """How a child context runs.

    Attributes:
        serdes: how the result is checkpointed. Default: JSON.
        result_type: the type the result is deserialized into. Default:
            the function's return annotation, if any.
        summary: for a result over 256 KiB, makes the small text
            checkpointed in its place; the full result is rebuilt on
            replay by re-running the children over their checkpoints.
            Default: a JSON note of the size.
    """

    serdes: SerDes[Any] | None = attrs.field(
        default=None, validator=_check_serdes
    )
    result_type: Any = None
    summary: Callable[[Any], str] | None = None
    sub_type: str | None = None
