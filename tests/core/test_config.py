"""Tests of durations, names and operation configs: what is accepted, and
that a bad value fails at the call, naming itself, before any checkpoint."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

from durable_exec import (
    ChildConfig,
    DurableContext,
    Duration,
    RetryDecision,
    StepConfig,
    StepSemantics,
    ValidationError,
    durable_execution,
)
from durable_exec.config import MAX_WAIT_SECONDS
from durable_exec.local import LocalEngine
from durable_exec.wire import ExecutionStatus, OperationType

# -- Duration ------------------------------------------------------------------


def test_duration_of_sums_its_parts() -> None:
    """Duration.of adds days, hours, minutes and seconds into seconds."""
    assert Duration.of(days=1, hours=2, minutes=3, seconds=4).seconds == 93_784


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [
        (Duration.from_seconds(42), 42),
        (Duration.from_minutes(1.5), 90),
        (Duration.from_hours(2), 7_200),
        (Duration.from_days(0.5), 43_200),
        (Duration.from_seconds(3.0), 3),
    ],
)
def test_duration_constructors(duration: Duration, seconds: int) -> None:
    """Each from_* constructor converts to whole seconds."""
    assert duration.seconds == seconds
    assert type(duration.seconds) is int


def test_duration_orders_and_prints_in_seconds() -> None:
    """Durations compare by length and print as seconds."""
    assert Duration(5) < Duration(6)
    assert Duration.from_minutes(1) == Duration(60)
    assert str(Duration(90)) == "90s"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (Duration(7), 7),
        (7, 7),
        (7.0, 7),
        (0, 0),
        (dt.timedelta(minutes=2), 120),
        (dt.timedelta(days=1, seconds=1), 86_401),
    ],
)
def test_coerce_accepts_durations_whole_numbers_and_timedeltas(
    value: Any, seconds: int
) -> None:
    """coerce takes a Duration, whole seconds as int or float, a timedelta."""
    duration = Duration.coerce(value)
    assert duration.seconds == seconds
    assert type(duration.seconds) is int


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (2.5, "2.5"),
        (dt.timedelta(milliseconds=1500), "1.5"),
        (-1, "-1"),
        (-0.5, "-0.5"),
        (dt.timedelta(seconds=-3), "-3"),
        (math.nan, "nan"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (True, "True"),
        (False, "False"),
        ("5", "'5'"),
        (None, "None"),
        ([5], "[5]"),
    ],
)
def test_coerce_rejects_naming_the_value(value: Any, shown: str) -> None:
    """A fractional, negative, non-finite or non-number duration is refused."""
    with pytest.raises(ValidationError) as caught:
        Duration.coerce(value)
    assert shown in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_coerce_names_the_parameter() -> None:
    """The message of a refused duration names the parameter it was for."""
    with pytest.raises(ValidationError, match=r"^timeout .*2\.5"):
        Duration.coerce(2.5, "timeout")


@pytest.mark.parametrize("seconds", [-1, 1.5, True, "3", None])
def test_duration_rejects_a_bad_seconds_field(seconds: Any) -> None:
    """Duration(seconds) itself takes only non-negative whole int seconds."""
    with pytest.raises(ValidationError) as caught:
        Duration(seconds)
    assert repr(seconds) in str(caught.value)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Duration.of(seconds=0.25),
        lambda: Duration.from_minutes(0.01),
        lambda: Duration.from_hours(-1),
        lambda: Duration.from_seconds(math.nan),
    ],
)
def test_duration_constructors_reject_fractions_and_negatives(build: Any) -> None:
    """The from_* constructors reject totals that are not whole, or negative."""
    with pytest.raises(ValidationError):
        build()


# -- waits ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "shown"),
    [
        (0, "0"),
        (0.5, "0.5"),
        (dt.timedelta(0), "0"),
        (MAX_WAIT_SECONDS + 1, str(MAX_WAIT_SECONDS + 1)),
        (Duration.from_days(367), str(367 * 86_400)),
        ("5", "'5'"),
        (None, "None"),
        (-2, "-2"),
    ],
)
def test_a_bad_wait_fails_the_execution_before_any_checkpoint(
    local: LocalEngine, of_type: Any, duration: Any, shown: str
) -> None:
    """A bad wait duration fails the execution before WaitStarted."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        ctx.wait(duration)

    result = local.run(workflow)

    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None
    assert result.error.error_type == "ValidationError"
    assert shown in (result.error.error_message or "")
    assert of_type(result.history, "WaitStarted") == []
    assert [op.type for op in result.operations] == [OperationType.EXECUTION]


def test_a_caught_bad_wait_leaves_no_checkpoint_and_no_used_id(
    local: LocalEngine,
) -> None:
    """A caught bad wait checkpoints nothing and uses up no id."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> str:
        try:
            ctx.wait(0.5)
        except ValidationError as error:
            message = str(error)
        ctx.step(lambda _: None, name="after")
        return message

    result = local.run(workflow)

    assert result.status is ExecutionStatus.SUCCEEDED
    assert "0.5" in result.result
    assert [(op.id, op.type) for op in result.operations[1:]] == [
        ("1", OperationType.STEP)
    ]


def test_the_longest_wait_is_accepted(local: LocalEngine, of_type: Any) -> None:
    """A wait of exactly 366 days is checkpointed with its full length."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> str:
        ctx.wait(dt.timedelta(days=366))
        return "done"

    result = local.run(workflow)

    # The execution timeout (366 days from the start) fires first.
    [started] = of_type(result.history, "WaitStarted")
    assert started["WaitStartedDetails"]["Duration"] == MAX_WAIT_SECONDS


# -- names ---------------------------------------------------------------------

_BAD_NAMES = [
    5,
    b"bytes",
    "",
    "x" * 257,
    "café",
    "snow\u2603man",
    "line\nbreak",
    "tab\there",
    "nul\x00",
    "del\x7f",
]


def _operations() -> list[Any]:
    return [
        lambda ctx, name: ctx.step(lambda _: 1, name=name),
        lambda ctx, name: ctx.wait(1, name=name),
        lambda ctx, name: ctx.run_in_child_context(lambda _: 1, name=name),
    ]


@pytest.mark.parametrize("name", _BAD_NAMES, ids=repr)
@pytest.mark.parametrize("operation", _operations(), ids=["step", "wait", "child"])
def test_a_bad_name_is_refused_naming_the_value(
    local: LocalEngine, name: Any, operation: Any
) -> None:
    """A name not of 1 to 256 printable ASCII characters is refused."""
    seen: list[BaseException] = []

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        try:
            operation(ctx, name)
        except ValidationError as error:
            seen.append(error)

    result = local.run(workflow)

    assert result.status is ExecutionStatus.SUCCEEDED
    assert len(seen) == 1
    assert repr(name) in str(seen[0])
    assert len(result.operations) == 1


def test_the_longest_and_printable_names_are_accepted(local: LocalEngine) -> None:
    """Names of 256 characters and of any printable ASCII are recorded."""
    long_name = "n" * 256
    punctuated = "a b~!@#$%^&*()[]{}<>?/\\|'\""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        ctx.step(lambda _: 1, name=long_name)
        ctx.step(lambda _: 2, name=punctuated)

    result = local.run(workflow)

    assert result.status is ExecutionStatus.SUCCEEDED
    assert [op.name for op in result.operations[1:]] == [long_name, punctuated]


# -- step and child configs ------------------------------------------------------


@pytest.mark.parametrize("strategy", [5, "default", object()])
def test_step_config_rejects_a_retry_strategy_that_is_not_callable(
    strategy: Any,
) -> None:
    """StepConfig(retry_strategy=...) must be callable; the error shows it."""
    with pytest.raises(ValidationError, match="retry_strategy") as caught:
        StepConfig(retry_strategy=strategy)
    assert repr(strategy) in str(caught.value)


class _OnlySerialize:
    def serialize(self, value: Any, context: Any) -> str:
        return ""


class _AttributesNotMethods:
    serialize = "json"
    deserialize = "json"


@pytest.mark.parametrize(
    "serdes", ["json", object(), _OnlySerialize(), _AttributesNotMethods()]
)
@pytest.mark.parametrize("config", [StepConfig, ChildConfig])
def test_configs_reject_a_serdes_without_both_methods(config: Any, serdes: Any) -> None:
    """A serdes must have callable serialize() and deserialize()."""
    with pytest.raises(ValidationError, match="serdes") as caught:
        config(serdes=serdes)
    assert repr(serdes) in str(caught.value)


@pytest.mark.parametrize("semantics", ["AT_MOST_ONCE_PER_RETRY", None, 1])
def test_step_config_rejects_semantics_that_are_not_a_step_semantics(
    semantics: Any,
) -> None:
    """StepConfig(semantics=...) takes only a StepSemantics member."""
    with pytest.raises(ValidationError, match="semantics") as caught:
        StepConfig(semantics=semantics)
    assert repr(semantics) in str(caught.value)


def test_child_config_rejects_a_summary_that_is_not_callable() -> None:
    """ChildConfig(summary=...) must be callable; the error shows it."""
    with pytest.raises(ValidationError, match="summary") as caught:
        ChildConfig(summary="too big")
    assert "'too big'" in str(caught.value)


def test_step_config_accepts_a_plain_function_as_retry_strategy() -> None:
    """Any (error, attempt) -> RetryDecision callable is a retry strategy."""

    def twice(error: BaseException, attempt: int) -> RetryDecision:
        return RetryDecision.retry(1) if attempt < 2 else RetryDecision.stop()

    config = StepConfig(
        retry_strategy=twice, semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY
    )
    assert config.retry_policy() is twice


@pytest.mark.parametrize(
    ("call", "shown"),
    [
        (lambda ctx: ctx.step(lambda _: 1, config={"retries": 3}), "retries"),
        (lambda ctx: ctx.step("not callable"), "'not callable'"),
        (
            lambda ctx: ctx.run_in_child_context(lambda _: 1, config=StepConfig()),
            "StepConfig",
        ),
        (lambda ctx: ctx.run_in_child_context(None), "None"),
    ],
    ids=["step-config", "step-func", "child-config", "child-func"],
)
def test_bad_arguments_fail_the_execution_before_any_checkpoint(
    local: LocalEngine, call: Any, shown: str
) -> None:
    """A wrong config type or non-callable fails before any checkpoint."""

    @durable_execution
    def workflow(event: Any, ctx: DurableContext) -> None:
        call(ctx)

    result = local.run(workflow)

    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None
    assert result.error.error_type == "ValidationError"
    assert shown in (result.error.error_message or "")
    assert len(result.operations) == 1
