"""Retry strategies for steps, built on tenacity.

A retry strategy answers one question after a step attempt fails: should
the step run again, and after how many whole seconds? The answer is
checkpointed (a ``RETRY`` update carrying the delay), the invocation
suspends, and the service invokes the handler again when the delay is over.
So unlike a tenacity ``Retrying`` loop, nothing here sleeps: the strategy
only decides.

The decision is made with tenacity's own building blocks — ``stop``,
``wait`` and ``retry`` conditions — evaluated on a call state that
describes the failed attempt. Any tenacity condition works, and the
presets below are made of them.

Retrying a step repeats its side effects: with the default at-least-once
semantics an attempt may even run twice when a process dies mid-attempt.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import attrs
import tenacity
from tenacity.retry import retry_base
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from .errors import OperationError, ValidationError

__all__ = [
    "JitterStrategy",
    "RetryDecision",
    "RetryPolicy",
    "RetryPresets",
    "RetryStrategy",
]

# The service takes retry delays in whole seconds, 1 to 366 days.
MIN_DELAY_SECONDS = 1
MAX_DELAY_SECONDS = 31_622_400


@attrs.frozen
class RetryDecision:
    """What to do after a failed attempt.

    Attributes:
        should_retry: whether another attempt follows.
        delay_seconds: whole seconds before it, at least 1 when retrying.
    """

    should_retry: bool
    delay_seconds: int = 0

    @classmethod
    def retry(cls, delay_seconds: int) -> RetryDecision:
        return cls(True, _whole_seconds(delay_seconds))

    @classmethod
    def stop(cls) -> RetryDecision:
        return cls(False, 0)


class RetryPolicy(Protocol):
    """Anything that decides retries: ``(error, attempt) -> RetryDecision``.

    ``attempt`` is the 1-based number of the attempt that just failed.
    """

    def __call__(self, error: BaseException, attempt: int) -> RetryDecision: ...


class JitterStrategy:
    """How a computed backoff delay is randomised."""

    NONE = "NONE"
    FULL = "FULL"
    HALF = "HALF"

    ALL = (NONE, FULL, HALF)


def _whole_seconds(delay: float) -> int:
    return min(MAX_DELAY_SECONDS, max(MIN_DELAY_SECONDS, math.ceil(delay)))


class _wait_jittered(wait_base):
    """Exponential backoff with the service SDKs' jitter modes."""

    def __init__(
        self,
        initial: float,
        backoff_rate: float,
        maximum: float,
        jitter: str,
        rng: random.Random,
    ) -> None:
        self.initial = initial
        self.backoff_rate = backoff_rate
        self.maximum = maximum
        self.jitter = jitter
        self.rng = rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exponent = retry_state.attempt_number - 1
        try:
            delay = self.initial * self.backoff_rate**exponent
        except OverflowError:
            delay = self.maximum
        delay = min(delay, self.maximum)
        if self.jitter == JitterStrategy.FULL:
            return self.rng.uniform(0, delay)
        if self.jitter == JitterStrategy.HALF:
            return delay / 2 + self.rng.uniform(0, delay / 2)
        return delay


class _retry_matching(retry_base):
    """Retry when the error is of a chosen type or its message matches."""

    def __init__(
        self,
        error_types: tuple[type[BaseException], ...],
        patterns: tuple[re.Pattern[str], ...],
    ) -> None:
        self.error_types = error_types
        self.patterns = patterns

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        assert retry_state.outcome is not None
        error = retry_state.outcome.exception()
        if error is None:
            return False
        if not self.error_types and not self.patterns:
            return True
        if self.error_types and isinstance(error, self.error_types):
            return True
        # A replayed failure keeps the original type only by name.
        recorded = getattr(error, "error_type", None)
        if isinstance(error, OperationError) and recorded:
            if any(kind.__name__ == recorded for kind in self.error_types):
                return True
        message = str(error)
        return any(pattern.search(message) for pattern in self.patterns)


@attrs.frozen
class RetryStrategy:
    """A retry policy made of tenacity conditions.

    Attributes:
        stop: when to give up (default: after 6 attempts).
        wait: the delay before the next attempt, rounded up to whole
            seconds of at least 1 (default: 5 s doubling to 60 s, full
            jitter).
        retry: which failures are retried (default: all).
    """

    stop: stop_base
    wait: wait_base
    retry: retry_base = attrs.field(factory=tenacity.retry_if_exception_type)

    @classmethod
    def exponential(
        cls,
        *,
        max_attempts: int = 6,
        initial_delay: float = 5,
        max_delay: float = 60,
        backoff_rate: float = 2.0,
        jitter: str = JitterStrategy.FULL,
        retryable_error_types: Sequence[type[BaseException]] = (),
        retryable_errors: Sequence[str | re.Pattern[str]] = (),
        rng: random.Random | None = None,
    ) -> RetryStrategy:
        """Exponential backoff, the shape the service SDKs share.

        Args:
            max_attempts: attempts in all, the first included (>= 1).
            initial_delay: seconds before the second attempt (>= 1).
            max_delay: the cap on any delay, in seconds (>= initial).
            backoff_rate: the factor between delays (>= 1).
            jitter: ``"FULL"`` (0 to the delay), ``"HALF"`` (half to all
                of it) or ``"NONE"``.
            retryable_error_types: retry only these exception types...
            retryable_errors: ...or errors whose message matches one of
                these regular expressions. Both empty: retry everything.
            rng: the random source for jitter.
        """
        if (
            isinstance(max_attempts, bool)
            or not isinstance(max_attempts, int)
            or max_attempts < 1
        ):
            raise ValidationError(
                f"max_attempts must be an integer >= 1 (got {max_attempts!r})"
            )
        _check_number("initial_delay", initial_delay, minimum=1)
        _check_number("max_delay", max_delay, minimum=initial_delay)
        _check_number("backoff_rate", backoff_rate, minimum=1)
        if jitter not in JitterStrategy.ALL:
            raise ValidationError(
                f"jitter must be one of {', '.join(JitterStrategy.ALL)} "
                f"(got {jitter!r})"
            )
        error_types = _check_sequence("retryable_error_types", retryable_error_types)
        for kind in error_types:
            if not (isinstance(kind, type) and issubclass(kind, BaseException)):
                raise ValidationError(
                    f"retryable_error_types must hold exception classes (got {kind!r})"
                )
        patterns = tuple(
            _compile(pattern)
            for pattern in _check_sequence("retryable_errors", retryable_errors)
        )
        return cls(
            stop=tenacity.stop_after_attempt(max_attempts),
            wait=_wait_jittered(
                initial_delay,
                backoff_rate,
                max_delay,
                jitter,
                rng or random.Random(),
            ),
            retry=_retry_matching(error_types, patterns),
        )

    def __call__(self, error: BaseException, attempt: int) -> RetryDecision:
        state = _call_state(error, attempt)
        if not self.retry(state) or self.stop(state):
            return RetryDecision.stop()
        return RetryDecision.retry(self.wait(state))  # type: ignore[arg-type]


def _check_number(name: str, value: Any, *, minimum: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < minimum
    ):
        raise ValidationError(f"{name} must be a number >= {minimum} (got {value!r})")


def _check_sequence(name: str, value: Any) -> tuple[Any, ...]:
    # A lone class or string would be iterated as if it were the list.
    if isinstance(value, (str, bytes, type)) or not isinstance(value, Iterable):
        raise ValidationError(f"{name} must be a list, tuple or set (got {value!r})")
    return tuple(value)


def _compile(pattern: Any) -> re.Pattern[str]:
    if isinstance(pattern, re.Pattern):
        return pattern
    if not isinstance(pattern, str):
        raise ValidationError(
            "retryable_errors must hold regular expressions, as str or "
            f"re.Pattern (got {pattern!r})"
        )
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ValidationError(
            f"retryable_errors holds an invalid regular expression {pattern!r}: {error}"
        ) from None


def _call_state(error: BaseException, attempt: int) -> tenacity.RetryCallState:
    state = tenacity.RetryCallState(
        retry_object=None,  # type: ignore[arg-type]
        fn=None,
        args=(),
        kwargs={},
    )
    state.attempt_number = attempt
    state.outcome = tenacity.Future.construct(attempt, error, True)
    return state


def _never(error: BaseException, attempt: int) -> RetryDecision:
    return RetryDecision.stop()


class RetryPresets:
    """Ready-made retry policies."""

    @staticmethod
    def none() -> RetryPolicy:
        """One attempt, no retry."""
        return _never

    @staticmethod
    def default() -> RetryStrategy:
        """6 attempts; 5 s doubling to 60 s with full jitter."""
        return RetryStrategy.exponential()

    @staticmethod
    def transient() -> RetryStrategy:
        """3 attempts; 1 s doubling, half jitter: brief hiccups."""
        return RetryStrategy.exponential(
            max_attempts=3,
            initial_delay=1,
            max_delay=10,
            jitter=JitterStrategy.HALF,
        )

    @staticmethod
    def resource_availability() -> RetryStrategy:
        """5 attempts; 5 s doubling to 5 min: waiting for capacity."""
        return RetryStrategy.exponential(max_attempts=5, initial_delay=5, max_delay=300)

    @staticmethod
    def critical() -> RetryStrategy:
        """10 attempts; 1 s, x1.5 to 60 s, no jitter: must get through."""
        return RetryStrategy.exponential(
            max_attempts=10,
            initial_delay=1,
            max_delay=60,
            backoff_rate=1.5,
            jitter=JitterStrategy.NONE,
        )


RetryPolicyLike = RetryPolicy | Callable[[BaseException, int], RetryDecision]
