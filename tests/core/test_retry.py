"""Tests of retry strategies: validation, delays, which errors retry, the
presets, tenacity conditions, and how a step's retries are recorded."""

from __future__ import annotations

import math
import random
import re
import types
from typing import Any

import pytest
import tenacity

from durable_exec import (
    DurableContext,
    JitterStrategy,
    RetryDecision,
    RetryPresets,
    RetryStrategy,
    StepConfig,
    StepError,
    StepInterruptedError,
    ValidationError,
    durable_execution,
)
from durable_exec import retry as retry_module
from durable_exec.local import LocalEngine
from durable_exec.retry import MAX_DELAY_SECONDS
from durable_exec.wire import ExecutionStatus


def _decisions(
    strategy: Any, attempts: int, error: BaseException | None = None
) -> list[RetryDecision]:
    error = error if error is not None else RuntimeError("boom")
    return [strategy(error, attempt) for attempt in range(1, attempts + 1)]


# -- validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "parameter", "shown"),
    [
        ({"max_attempts": 0}, "max_attempts", "0"),
        ({"max_attempts": -3}, "max_attempts", "-3"),
        ({"max_attempts": 2.5}, "max_attempts", "2.5"),
        ({"max_attempts": True}, "max_attempts", "True"),
        ({"max_attempts": "3"}, "max_attempts", "'3'"),
        ({"initial_delay": 0}, "initial_delay", "0"),
        ({"initial_delay": -1}, "initial_delay", "-1"),
        ({"initial_delay": 0.5}, "initial_delay", "0.5"),
        ({"initial_delay": math.nan}, "initial_delay", "nan"),
        ({"initial_delay": True}, "initial_delay", "True"),
        ({"initial_delay": 10, "max_delay": 5}, "max_delay", "5"),
        ({"max_delay": math.inf}, "max_delay", "inf"),
        ({"backoff_rate": 0.5}, "backoff_rate", "0.5"),
        ({"backoff_rate": 0}, "backoff_rate", "0"),
        ({"backoff_rate": "2"}, "backoff_rate", "'2'"),
        ({"jitter": "RANDOM"}, "jitter", "'RANDOM'"),
        ({"jitter": "full"}, "jitter", "'full'"),
        ({"jitter": None}, "jitter", "None"),
        (
            {"retryable_error_types": [ValueError, "KeyError"]},
            "retryable_error_types",
            "'KeyError'",
        ),
        ({"retryable_error_types": [int]}, "retryable_error_types", "int"),
        ({"retryable_error_types": ValueError}, "retryable_error_types", "ValueError"),
        ({"retryable_errors": ["ok", "("]}, "retryable_errors", "'('"),
        ({"retryable_errors": [5]}, "retryable_errors", "5"),
        ({"retryable_errors": "timeout"}, "retryable_errors", "'timeout'"),
    ],
)
def test_exponential_rejects_bad_parameters_naming_them(
    kwargs: dict[str, Any], parameter: str, shown: str
) -> None:
    """Each bad parameter is refused, naming the parameter and value."""
    with pytest.raises(ValidationError) as caught:
        RetryStrategy.exponential(**kwargs)
    message = str(caught.value)
    assert parameter in message
    assert shown in message


def test_max_delay_equal_to_initial_and_rate_one_are_allowed() -> None:
    """The bounds themselves are valid: max_delay == initial, rate 1."""
    strategy = RetryStrategy.exponential(
        max_attempts=4,
        initial_delay=3,
        max_delay=3,
        backoff_rate=1,
        jitter=JitterStrategy.NONE,
    )
    assert [d.delay_seconds for d in _decisions(strategy, 3)] == [3, 3, 3]


# -- delays --------------------------------------------------------------------


def test_no_jitter_doubles_up_to_the_cap_then_stops() -> None:
    """Without jitter, delays double up to the cap; the last attempt stops."""
    strategy = RetryStrategy.exponential(
        max_attempts=8,
        initial_delay=1,
        max_delay=10,
        backoff_rate=2,
        jitter=JitterStrategy.NONE,
    )
    decisions = _decisions(strategy, 8)
    assert [d.should_retry for d in decisions] == [True] * 7 + [False]
    assert [d.delay_seconds for d in decisions[:7]] == [1, 2, 4, 8, 10, 10, 10]
    assert decisions[7] == RetryDecision.stop()


def test_fractional_delays_round_up_to_whole_seconds() -> None:
    """The critical preset (1 s, x1.5, no jitter) rounds each delay up."""
    decisions = _decisions(RetryPresets.critical(), 10)
    assert [d.delay_seconds for d in decisions[:9]] == [1, 2, 3, 4, 6, 8, 12, 18, 26]
    assert not decisions[9].should_retry
    assert all(type(d.delay_seconds) is int for d in decisions)


@pytest.mark.parametrize("seed", range(20))
def test_full_jitter_is_whole_seconds_between_one_and_the_cap(seed: int) -> None:
    """FULL jitter gives whole seconds in [1, min(backoff, cap)]."""
    strategy = RetryStrategy.exponential(
        max_attempts=12,
        initial_delay=2,
        max_delay=30,
        jitter=JitterStrategy.FULL,
        rng=random.Random(seed),
    )
    for attempt, decision in enumerate(_decisions(strategy, 11), start=1):
        ceiling = min(2 * 2 ** (attempt - 1), 30)
        assert decision.should_retry
        assert type(decision.delay_seconds) is int
        assert 1 <= decision.delay_seconds <= ceiling


def test_full_jitter_spreads_over_the_whole_range() -> None:
    """FULL jitter reaches below half the delay, unlike HALF."""
    strategy = RetryStrategy.exponential(
        initial_delay=40, max_delay=40, rng=random.Random(3)
    )
    delays = {strategy(RuntimeError(), 1).delay_seconds for _ in range(200)}
    assert min(delays) < 20
    assert max(delays) <= 40


@pytest.mark.parametrize("seed", range(20))
def test_half_jitter_stays_in_the_upper_half(seed: int) -> None:
    """HALF jitter gives whole seconds in [delay / 2, delay]."""
    strategy = RetryStrategy.exponential(
        max_attempts=8,
        initial_delay=4,
        max_delay=40,
        jitter=JitterStrategy.HALF,
        rng=random.Random(seed),
    )
    for attempt, decision in enumerate(_decisions(strategy, 7), start=1):
        full = min(4 * 2 ** (attempt - 1), 40)
        assert full / 2 <= decision.delay_seconds <= full


def test_the_default_preset_is_six_attempts_5s_doubling_to_60s_full_jitter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default preset is 6 attempts, 5 s x2 to 60 s, full jitter."""
    monkeypatch.setattr(
        retry_module,
        "random",
        types.SimpleNamespace(Random=lambda: random.Random(1234)),
    )
    decisions = _decisions(RetryPresets.default(), 6)

    expected = _decisions(
        RetryStrategy.exponential(
            max_attempts=6,
            initial_delay=5,
            max_delay=60,
            backoff_rate=2,
            jitter=JitterStrategy.FULL,
            rng=random.Random(1234),
        ),
        6,
    )
    assert decisions == expected
    assert [d.should_retry for d in decisions] == [True] * 5 + [False]
    for attempt, decision in enumerate(decisions[:5], start=1):
        assert 1 <= decision.delay_seconds <= min(5 * 2 ** (attempt - 1), 60)


def test_the_default_step_retry_runs_six_attempts(
    local: LocalEngine, of_type: Any
) -> None:
    """A step without a config runs six attempts within default delays."""
    calls: list[int] = []

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        def flaky(step: Any) -> None:
            calls.append(step.attempt)
            raise RuntimeError("down")

        ctx.step(flaky)

    result = local.run(workflow)

    assert result.status is ExecutionStatus.FAILED
    assert calls == [1, 2, 3, 4, 5, 6]
    failures = of_type(result.history, "StepFailed")
    retries = [e["StepFailedDetails"]["RetryDetails"] for e in failures]
    assert [r["CurrentAttempt"] for r in retries] == [1, 2, 3, 4, 5, 6]
    for attempt, details in enumerate(retries[:5], start=1):
        ceiling = min(5 * 2 ** (attempt - 1), 60)
        assert 1 <= details["NextAttemptDelaySeconds"] <= ceiling
    assert "NextAttemptDelaySeconds" not in retries[5]


def test_retry_decisions_are_whole_seconds_within_the_service_bounds() -> None:
    """RetryDecision.retry rounds up, and clamps to 1 .. 366 days."""
    assert RetryDecision.retry(0.2).delay_seconds == 1  # type: ignore[arg-type]
    assert RetryDecision.retry(0).delay_seconds == 1
    assert RetryDecision.retry(2.1).delay_seconds == 3  # type: ignore[arg-type]
    assert RetryDecision.retry(10**9).delay_seconds == MAX_DELAY_SECONDS


# -- which errors retry ----------------------------------------------------------


class _Throttled(LookupError):
    pass


def test_retryable_filters_take_any_collection() -> None:
    """Filters may be given as a list, tuple, set or frozenset."""
    strategy = RetryStrategy.exponential(
        retryable_error_types={KeyError}, retryable_errors=frozenset({"again"})
    )
    assert strategy(KeyError(), 1).should_retry
    assert strategy(ValueError("try again"), 1).should_retry


def test_retryable_error_types_filter_by_isinstance() -> None:
    """Only the listed types (and their subclasses) are retried."""
    strategy = RetryStrategy.exponential(
        retryable_error_types=[LookupError, TimeoutError]
    )
    assert strategy(KeyError("k"), 1).should_retry
    assert strategy(_Throttled(), 1).should_retry
    assert strategy(TimeoutError(), 1).should_retry
    assert not strategy(ValueError("v"), 1).should_retry


def test_retryable_errors_search_the_message() -> None:
    """A message matching any pattern (searched, not anchored) retries."""
    strategy = RetryStrategy.exponential(
        retryable_errors=["timed? ?out", re.compile(r"^throttl", re.IGNORECASE)]
    )
    assert strategy(RuntimeError("connection timed out"), 1).should_retry
    assert strategy(RuntimeError("Throttled by the API"), 1).should_retry
    assert not strategy(RuntimeError("we are throttled"), 1).should_retry
    assert not strategy(RuntimeError("bad input"), 1).should_retry


def test_types_and_patterns_retry_when_either_matches() -> None:
    """With both filters, matching the type or the message is enough."""
    strategy = RetryStrategy.exponential(
        retryable_error_types=[KeyError], retryable_errors=["again"]
    )
    assert strategy(KeyError(), 1).should_retry
    assert strategy(ValueError("try again"), 1).should_retry
    assert not strategy(ValueError("no"), 1).should_retry


def test_no_filter_retries_every_error_until_the_last_attempt() -> None:
    """Without filters every error retries, until max_attempts."""
    strategy = RetryStrategy.exponential(max_attempts=2)
    assert strategy(ValueError(), 1).should_retry
    assert not strategy(ValueError(), 2).should_retry


def test_a_filtered_error_stops_even_on_the_first_attempt() -> None:
    """A non-retryable error stops at once, whatever attempts remain."""
    strategy = RetryStrategy.exponential(
        max_attempts=10, retryable_error_types=[KeyError]
    )
    assert strategy(ValueError(), 1) == RetryDecision.stop()


def test_a_replayed_step_error_retries_by_its_recorded_type_name() -> None:
    """A replayed StepError matches retryable types by recorded name."""
    strategy = RetryStrategy.exponential(retryable_error_types=[KeyError])
    assert strategy(StepError("missing", error_type="KeyError"), 1).should_retry
    assert not strategy(StepError("bad", error_type="ValueError"), 1).should_retry
    assert (
        strategy(
            StepInterruptedError("gone", error_type="StepInterruptedError"), 1
        ).should_retry
        is False
    )


def test_an_interrupted_step_error_retries_when_listed() -> None:
    """StepInterruptedError can be made retryable like any type."""
    strategy = RetryStrategy.exponential(retryable_error_types=[StepInterruptedError])
    assert strategy(StepInterruptedError("gone"), 1).should_retry


def test_a_step_with_a_filter_fails_at_once_on_another_error(
    local: LocalEngine, of_type: Any
) -> None:
    """A step whose error is not retryable fails after one attempt."""
    config = StepConfig(
        retry_strategy=RetryStrategy.exponential(retryable_error_types=[TimeoutError])
    )

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        def broken(step: Any) -> None:
            raise ValueError("bad input")

        ctx.step(broken, config=config)

    result = local.run(workflow)

    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None
    assert result.error.error_type == "ValueError"
    [failed] = of_type(result.history, "StepFailed")
    assert failed["StepFailedDetails"]["RetryDetails"] == {"CurrentAttempt": 1}


# -- tenacity conditions ---------------------------------------------------------


def test_tenacity_conditions_compose_into_a_strategy() -> None:
    """stop, wait and retry objects from tenacity decide directly."""
    strategy = RetryStrategy(
        stop=tenacity.stop_after_attempt(3),
        wait=tenacity.wait_fixed(7),
        retry=tenacity.retry_if_exception_type(OSError),
    )
    assert strategy(ConnectionError(), 1) == RetryDecision.retry(7)
    assert strategy(ConnectionError(), 2) == RetryDecision.retry(7)
    assert strategy(ConnectionError(), 3) == RetryDecision.stop()
    assert strategy(ValueError(), 1) == RetryDecision.stop()


def test_tenacity_operators_combine_conditions() -> None:
    """tenacity's |, & and + combine conditions as tenacity defines them."""
    strategy = RetryStrategy(
        stop=tenacity.stop_after_attempt(5) | tenacity.stop_after_attempt(2),
        wait=tenacity.wait_fixed(1) + tenacity.wait_fixed(2),
        retry=(
            tenacity.retry_if_exception_type(KeyError)
            | tenacity.retry_if_exception_message(match="^again")
        ),
    )
    assert strategy(KeyError(), 1) == RetryDecision.retry(3)
    assert strategy(ValueError("again please"), 1) == RetryDecision.retry(3)
    assert strategy(ValueError("no"), 1) == RetryDecision.stop()
    assert strategy(KeyError(), 2) == RetryDecision.stop()


def test_tenacity_waits_are_rounded_and_bounded() -> None:
    """A tenacity wait's float seconds are rounded up to at least 1."""
    exponential = RetryStrategy(
        stop=tenacity.stop_never,
        wait=tenacity.wait_exponential(multiplier=0.5, max=10),
    )
    assert [exponential(OSError(), n).delay_seconds for n in range(1, 7)] == [
        1,
        1,
        2,
        4,
        8,
        10,
    ]
    zero = RetryStrategy(stop=tenacity.stop_never, wait=tenacity.wait_none())
    assert zero(OSError(), 1) == RetryDecision.retry(1)


def test_a_strategy_without_retry_condition_retries_every_exception() -> None:
    """RetryStrategy's default retry condition takes any Exception."""
    strategy = RetryStrategy(
        stop=tenacity.stop_after_attempt(2), wait=tenacity.wait_fixed(4)
    )
    assert strategy(ValueError(), 1) == RetryDecision.retry(4)


def test_a_tenacity_strategy_drives_a_step(local: LocalEngine, of_type: Any) -> None:
    """A step retried by a tenacity strategy records its delays."""
    config = StepConfig(
        retry_strategy=RetryStrategy(
            stop=tenacity.stop_after_attempt(3),
            wait=tenacity.wait_incrementing(start=2, increment=3),
        )
    )
    attempts: list[int] = []

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> int:
        def third_time_lucky(step: Any) -> int:
            attempts.append(step.attempt)
            if step.attempt < 3:
                raise RuntimeError("not yet")
            return step.attempt

        return ctx.step(third_time_lucky, config=config)

    result = local.run(workflow)

    assert result.result == 3
    assert attempts == [1, 2, 3]
    delays = [
        e["StepFailedDetails"]["RetryDetails"]["NextAttemptDelaySeconds"]
        for e in of_type(result.history, "StepFailed")
    ]
    assert delays == [2, 5]


# -- presets -------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [1, 2, 10, 1000])
def test_the_none_preset_never_retries(attempt: int) -> None:
    """RetryPresets.none() stops after any attempt."""
    assert RetryPresets.none()(RuntimeError(), attempt) == RetryDecision.stop()


def test_a_step_with_the_none_preset_runs_once(
    local: LocalEngine, of_type: Any
) -> None:
    """With RetryPresets.none() a failing step runs once and fails."""
    calls: list[int] = []

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> str:
        def once(step: Any) -> None:
            calls.append(step.attempt)
            raise TimeoutError("slow")

        try:
            ctx.step(once, config=StepConfig(retry_strategy=RetryPresets.none()))
        except StepError as error:
            return f"{error.error_type}: {error.error_message}"
        return "unreachable"

    result = local.run(workflow)

    assert result.result == "TimeoutError: slow"
    assert calls == [1]
    assert len(of_type(result.history, "StepStarted")) == 1


@pytest.mark.parametrize(
    ("preset", "attempts", "first", "cap"),
    [
        (RetryPresets.transient, 3, 1, 10),
        (RetryPresets.resource_availability, 5, 5, 300),
        (RetryPresets.critical, 10, 1, 60),
    ],
)
def test_presets_stop_after_their_attempts_within_their_cap(
    preset: Any, attempts: int, first: int, cap: int
) -> None:
    """Each preset retries attempts - 1 times, never beyond its cap."""
    decisions = _decisions(preset(), attempts)
    assert [d.should_retry for d in decisions] == [True] * (attempts - 1) + [False]
    assert all(1 <= d.delay_seconds <= cap for d in decisions[:-1])
    assert decisions[0].delay_seconds <= first
