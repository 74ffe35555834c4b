"""Configuration of durable operations: durations, steps, child contexts.

Every config is a frozen attrs class, validated when it is built, so a bad
setting fails at the call that made it, before anything is checkpointed.
"""

from __future__ import annotations

import datetime as _dt
import enum
import math
import random
from collections.abc import Callable
from typing import Any

import attrs

from .errors import ValidationError
from .retry import RetryDecision, RetryPolicy, RetryPresets
from .serde import SerDes

__all__ = [
    "CallbackConfig",
    "ChildConfig",
    "CompletionConfig",
    "Duration",
    "DurationLike",
    "InvokeConfig",
    "MapConfig",
    "NestingType",
    "ParallelBranch",
    "ParallelConfig",
    "StepConfig",
    "StepSemantics",
    "WaitDecision",
    "WaitForCallbackConfig",
    "WaitForConditionConfig",
    "WaitStrategy",
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


DurationLike = Duration | int | float | _dt.timedelta


def _whole(parameter: str, seconds: float) -> int:
    if isinstance(seconds, bool) or not math.isfinite(seconds):
        raise ValidationError(
            f"{parameter} must be a finite number of seconds (got {seconds!r})"
        )
    if seconds < 0:
        raise ValidationError(f"{parameter} must not be negative (got {seconds!r} s)")
    if seconds != int(seconds):
        raise ValidationError(f"{parameter} must be whole seconds (got {seconds!r} s)")
    return int(seconds)


class StepSemantics(enum.Enum):
    """How often a step's code may run for one attempt.

    Either way an attempt's start is checkpointed before its code runs,
    and its end after; they differ in what replay does with an attempt
    that started and never ended, because its process died:

    AT_LEAST_ONCE_PER_RETRY: the attempt runs again, so its code may run
        twice.
    AT_MOST_ONCE_PER_RETRY: the attempt is not run again: it counts as
        failed with :class:`StepInterruptedError` and goes through the
        retry strategy.
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


def _check_serdes(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
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


def _check_summary(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not callable(value):
        raise ValidationError(
            f"summary must be callable as (result) -> str (got {value!r})"
        )


def _check_semantics(
    instance: Any, attribute: attrs.Attribute[Any], value: Any
) -> None:
    if not isinstance(value, StepSemantics):
        raise ValidationError(f"semantics must be a StepSemantics (got {value!r})")


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

    retry_strategy: (
        RetryPolicy | Callable[[BaseException, int], RetryDecision] | None
    ) = attrs.field(default=None, validator=_check_retry_strategy)
    semantics: StepSemantics = attrs.field(
        default=StepSemantics.AT_LEAST_ONCE_PER_RETRY,
        validator=_check_semantics,
    )
    serdes: SerDes[Any] | None = attrs.field(default=None, validator=_check_serdes)
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

    serdes: SerDes[Any] | None = attrs.field(default=None, validator=_check_serdes)
    result_type: Any = None
    summary: Callable[[Any], str] | None = attrs.field(
        default=None, validator=_check_summary
    )
    sub_type: str | None = None


# -- parallel and map ------------------------------------------------------


class NestingType(enum.Enum):
    """How a batch's branches are checkpointed.

    NESTED: each branch is a child context of its own (sub-type
        ParallelBranch or MapIteration), its operations under it.
    FLAT: branches have no context of their own; their operations are
        checkpointed straight under the batch. Cheaper, but a finished
        branch is replayed by running its code over its checkpoints.
    """

    NESTED = "NESTED"
    FLAT = "FLAT"


def _check_optional_count(
    instance: Any, attribute: attrs.Attribute[Any], value: Any
) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(
            f"{attribute.name} must be an integer >= 0 or None (got {value!r})"
        )


def _check_percentage(
    instance: Any, attribute: attrs.Attribute[Any], value: Any
) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= 100
    ):
        raise ValidationError(
            "tolerated_failure_percentage must be a number from 0 to 100 "
            f"or None (got {value!r})"
        )


@attrs.frozen
class CompletionConfig:
    """When a parallel or map stops.

    The policy is evaluated after every branch outcome. Tolerance is
    exceeded when failures are strictly more than allowed; then the batch
    stops with FAILURE_TOLERANCE_EXCEEDED. Reaching ``min_successful``
    stops it with MIN_SUCCESSFUL_REACHED. Otherwise it runs until every
    branch has ended (ALL_COMPLETED).

    Attributes:
        min_successful: stop once this many branches succeeded. Default
            None: no such threshold.
        tolerated_failure_count: failures allowed. Default None: any.
        tolerated_failure_percentage: failures allowed, as a percentage of
            all branches, 0 to 100. Default None: any.
        should_complete: instead of the thresholds, a predicate over the
            batch so far (a :class:`BatchProgress`) that returns True, or
            a :class:`~durable_exec.batch.CompletionReason`, to stop.
    """

    min_successful: int | None = attrs.field(
        default=None, validator=_check_optional_count
    )
    tolerated_failure_count: int | None = attrs.field(
        default=None, validator=_check_optional_count
    )
    tolerated_failure_percentage: float | None = attrs.field(
        default=None, validator=_check_percentage
    )
    should_complete: Callable[[Any], Any] | None = None

    def __attrs_post_init__(self) -> None:
        if self.min_successful is not None and self.min_successful < 1:
            raise ValidationError(
                f"min_successful must be >= 1 or None (got {self.min_successful!r})"
            )
        if self.should_complete is not None:
            if not callable(self.should_complete):
                raise ValidationError(
                    f"should_complete must be callable (got {self.should_complete!r})"
                )
            mixed = [
                name
                for name in (
                    "min_successful",
                    "tolerated_failure_count",
                    "tolerated_failure_percentage",
                )
                if getattr(self, name) is not None
            ]
            if mixed:
                raise ValidationError(
                    "should_complete replaces the thresholds; do not also "
                    f"set {', '.join(mixed)}"
                )

    @classmethod
    def all_successful(cls) -> CompletionConfig:
        """Every branch must succeed: the first failure stops the batch."""
        return cls(tolerated_failure_count=0)

    @classmethod
    def first_successful(cls) -> CompletionConfig:
        """Stop at the first success; failures before it are tolerated."""
        return cls(min_successful=1)

    @classmethod
    def all_completed(cls) -> CompletionConfig:
        """Run every branch, whatever fails."""
        return cls()


def _check_max_concurrency(
    instance: Any, attribute: attrs.Attribute[Any], value: Any
) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"max_concurrency must be >= 1 or None (got {value!r})")


def _check_nesting(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, NestingType):
        raise ValidationError(
            f"nesting must be NestingType.NESTED or NestingType.FLAT (got {value!r})"
        )


def _check_completion(
    instance: Any, attribute: attrs.Attribute[Any], value: Any
) -> None:
    if not isinstance(value, CompletionConfig):
        raise ValidationError(f"completion must be a CompletionConfig (got {value!r})")


@attrs.frozen
class ParallelConfig:
    """How a parallel runs.

    Attributes:
        max_concurrency: branches in flight at once, >= 1; a branch
            suspended on a wait, callback or retry keeps its slot. Default
            None: no bound on branches (threads stay bounded).
        completion: when the batch stops. Default
            :meth:`CompletionConfig.all_successful`.
        nesting: NESTED (default) or FLAT.
        serdes: how the whole :class:`BatchResult` is checkpointed.
            Default: JSON of every branch's outcome.
        item_serdes: how each branch's result is checkpointed. Default:
            JSON.
    """

    max_concurrency: int | None = attrs.field(
        default=None, validator=_check_max_concurrency
    )
    completion: CompletionConfig = attrs.field(
        factory=CompletionConfig.all_successful, validator=_check_completion
    )
    nesting: NestingType = attrs.field(
        default=NestingType.NESTED, validator=_check_nesting
    )
    serdes: SerDes[Any] | None = attrs.field(default=None, validator=_check_serdes)
    item_serdes: SerDes[Any] | None = attrs.field(default=None, validator=_check_serdes)


def _check_optional_positive(
    instance: Any, attribute: attrs.Attribute[Any], value: Any
) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(
            f"{attribute.name} must be an integer >= 1 or None (got {value!r})"
        )


@attrs.frozen
class MapConfig(ParallelConfig):
    """How a map runs: everything of :class:`ParallelConfig`, and

    Attributes:
        item_namer: ``(item, index) -> str``, the name of each item's
            operation. Default: none.
        batch_size: items per child context, >= 1. Items of one child run
            one after the other in it, and its checkpointed result is
            split back per item. Default None: one item per child.
        batch_bytes: with batching, also start a new child once the items
            in it reach this many bytes of JSON. Default None: no bound.
    """

    item_namer: Callable[[Any, int], str] | None = None
    batch_size: int | None = attrs.field(
        default=None, validator=_check_optional_positive
    )
    batch_bytes: int | None = attrs.field(
        default=None, validator=_check_optional_positive
    )

    def __attrs_post_init__(self) -> None:
        if self.item_namer is not None and not callable(self.item_namer):
            raise ValidationError(
                f"item_namer must be callable (got {self.item_namer!r})"
            )
        if self.batch_bytes is not None and self.batch_size is None:
            raise ValidationError(
                "batch_bytes needs batch_size: set how many items a child "
                f"may take (got batch_bytes={self.batch_bytes!r})"
            )


@attrs.frozen
class ParallelBranch:
    """A named branch of a parallel: ``func`` runs with a child context."""

    name: str | None
    func: Callable[..., Any] = attrs.field()

    @func.validator
    def _check_func(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not callable(value):
            raise ValidationError(
                f"branch {self.name!r} func must be callable (got {value!r})"
            )


# -- callbacks, chained invokes, wait-for-condition ---------------------------


def _check_optional_duration(
    instance: Any, attribute: attrs.Attribute[Any], value: Any
) -> None:
    if value is None:
        return
    seconds = Duration.coerce(value, attribute.name).seconds
    if seconds > MAX_CALLBACK_SECONDS:
        raise ValidationError(
            f"{attribute.name} must be at most {MAX_CALLBACK_SECONDS} s "
            f"(got {seconds} s)"
        )


# The service's bound on a callback's timeouts.
MAX_CALLBACK_SECONDS = 99_999_999


def _seconds_or_none(value: DurationLike | None) -> int | None:
    return None if value is None else Duration.coerce(value).seconds


@attrs.frozen
class CallbackConfig:
    """How a callback waits for its answer.

    Attributes:
        timeout: how long the answer may take; then the callback times out
            (``Callback.Timeout``). Default None: no limit.
        heartbeat_timeout: how long may pass without a heartbeat (or the
            answer); then it times out (``Callback.Heartbeat``). Default
            None: no heartbeats needed.
        serdes: how the answer's text is read. Default: JSON.
    """

    timeout: DurationLike | None = attrs.field(
        default=None, validator=_check_optional_duration
    )
    heartbeat_timeout: DurationLike | None = attrs.field(
        default=None, validator=_check_optional_duration
    )
    serdes: SerDes[Any] | None = attrs.field(default=None, validator=_check_serdes)

    @property
    def timeout_seconds(self) -> int | None:
        return _seconds_or_none(self.timeout)

    @property
    def heartbeat_timeout_seconds(self) -> int | None:
        return _seconds_or_none(self.heartbeat_timeout)


@attrs.frozen
class WaitForCallbackConfig(CallbackConfig):
    """A callback's config, and the retry strategy of its submitter step.

    Attributes:
        retry_strategy: retries of the submitter. Default: the steps'
            default strategy.
    """

    retry_strategy: (
        RetryPolicy | Callable[[BaseException, int], RetryDecision] | None
    ) = attrs.field(default=None, validator=_check_retry_strategy)


@attrs.frozen
class InvokeConfig:
    """How a chained invoke sends its payload and reads its result.

    Attributes:
        payload_serdes: how the payload is serialized. Default: JSON.
        result_serdes: how the target's result is read. Default: JSON.
        tenant_id: the tenant the target runs for, if tenant-isolated.
    """

    payload_serdes: SerDes[Any] | None = attrs.field(
        default=None, validator=_check_serdes
    )
    result_serdes: SerDes[Any] | None = attrs.field(
        default=None, validator=_check_serdes
    )
    tenant_id: str | None = attrs.field(default=None)

    @tenant_id.validator
    def _check_tenant(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if (
            not isinstance(value, str)
            or not 1 <= len(value) <= 256
            or not all("\x21" <= c <= "\x7e" for c in value)
        ):
            raise ValidationError(
                "tenant_id must be 1 to 256 printable characters without "
                f"spaces (got {value!r})"
            )


@attrs.frozen
class WaitDecision:
    """What a wait strategy decided after a check.

    Attributes:
        should_continue: whether to check again.
        delay_seconds: whole seconds before the next check (>= 1).
    """

    should_continue: bool
    delay_seconds: int = 0

    @classmethod
    def again_in(cls, delay_seconds: float) -> WaitDecision:
        return cls(True, min(MAX_WAIT_SECONDS, max(1, math.ceil(delay_seconds))))

    @classmethod
    def stop(cls) -> WaitDecision:
        return cls(False, 0)


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{name} must be an integer >= 1 (got {value!r})")


def _check_seconds(name: str, value: Any, minimum: float = 1) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < minimum
    ):
        raise ValidationError(f"{name} must be a number >= {minimum} (got {value!r})")


@attrs.frozen
class WaitStrategy:
    """Decides, after each check of a wait-for-condition, whether to check
    again and when.

    Build one with :meth:`fixed`, :meth:`linear` or :meth:`exponential`, or
    pass any ``(state, attempt) -> WaitDecision`` as the config's
    ``wait_strategy``. ``until(state)`` says when the condition holds;
    past ``max_attempts`` checks the wait fails with
    :class:`~durable_exec.errors.WaitForConditionError`.
    """

    until: Callable[[Any], bool]
    delay: Callable[[int], float]
    max_attempts: int | None = None

    def __call__(self, state: Any, attempt: int) -> WaitDecision:
        if self.until(state):
            return WaitDecision.stop()
        if self.max_attempts is not None and attempt >= self.max_attempts:
            from .errors import WaitForConditionError

            raise WaitForConditionError(
                f"the condition did not hold after {attempt} attempt(s)",
                error_type="WaitForConditionError",
            )
        return WaitDecision.again_in(self.delay(attempt))

    @classmethod
    def fixed(
        cls,
        delay: float,
        *,
        until: Callable[[Any], bool],
        max_attempts: int | None = None,
    ) -> WaitStrategy:
        """Check every ``delay`` seconds."""
        _check_seconds("delay", delay)
        if max_attempts is not None:
            _check_positive_int("max_attempts", max_attempts)
        return cls(until, lambda attempt: delay, max_attempts)

    @classmethod
    def linear(
        cls,
        initial: float,
        increment: float,
        *,
        until: Callable[[Any], bool],
        max_attempts: int | None = None,
        max_delay: float = MAX_WAIT_SECONDS,
    ) -> WaitStrategy:
        """Wait ``initial``, then ``increment`` more after each check."""
        _check_seconds("initial", initial)
        _check_seconds("increment", increment, minimum=0)
        _check_seconds("max_delay", max_delay, minimum=initial)
        if max_attempts is not None:
            _check_positive_int("max_attempts", max_attempts)
        return cls(
            until,
            lambda attempt: min(max_delay, initial + increment * (attempt - 1)),
            max_attempts,
        )

    @classmethod
    def exponential(
        cls,
        initial: float,
        *,
        until: Callable[[Any], bool],
        backoff_rate: float = 2.0,
        max_delay: float = 300,
        jitter: str = "FULL",
        max_attempts: int | None = None,
        rng: random.Random | None = None,
    ) -> WaitStrategy:
        """Back off from ``initial`` by ``backoff_rate`` up to ``max_delay``,
        with ``"FULL"``, ``"HALF"`` or ``"NONE"`` jitter."""
        from .retry import JitterStrategy

        _check_seconds("initial", initial)
        _check_seconds("backoff_rate", backoff_rate)
        _check_seconds("max_delay", max_delay, minimum=initial)
        if jitter not in JitterStrategy.ALL:
            raise ValidationError(
                f"jitter must be one of {', '.join(JitterStrategy.ALL)} "
                f"(got {jitter!r})"
            )
        if max_attempts is not None:
            _check_positive_int("max_attempts", max_attempts)
        source = rng or random.Random()

        def delay(attempt: int) -> float:
            try:
                base = min(max_delay, initial * backoff_rate ** (attempt - 1))
            except OverflowError:
                base = max_delay
            if jitter == JitterStrategy.FULL:
                return source.uniform(0, base)
            if jitter == JitterStrategy.HALF:
                return base / 2 + source.uniform(0, base / 2)
            return base

        return cls(until, delay, max_attempts)


@attrs.frozen
class WaitForConditionConfig:
    """How a wait-for-condition polls.

    Attributes:
        wait_strategy: ``(state, attempt) -> WaitDecision``, e.g. a
            :class:`WaitStrategy`.
        initial_state: the state the first check receives. Default None.
        serdes: how the state is checkpointed between checks. Default:
            JSON.
    """

    wait_strategy: Callable[[Any, int], WaitDecision] = attrs.field()
    initial_state: Any = None
    serdes: SerDes[Any] | None = attrs.field(default=None, validator=_check_serdes)

    @wait_strategy.validator
    def _check_strategy(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not callable(value):
            raise ValidationError(
                "wait_strategy must be callable as (state, attempt) -> "
                f"WaitDecision (got {value!r})"
            )
