"""Tests of how the conformance harness plays a requirement's
CallbackActions and registers invoke targets."""

from __future__ import annotations

import pathlib
import random
import textwrap

import pytest

from durable_exec.testing._requirements import Requirement, load_requirements
from durable_exec.testing.conformance import (
    RequirementReport,
    invoke_target,
    load_handlers,
    run_requirement,
)

HANDLERS = """\
from durable_exec import (
    CallbackConfig,
    DurableContext,
    Duration,
    InvokeError,
    durable_execution,
)
from durable_exec.testing.conformance import invoke_target, requirement


@requirement("4-1")
@durable_execution
def two_callbacks(event, context: DurableContext):
    first = context.create_callback("alpha-1")
    second = context.create_callback(
        "beta", CallbackConfig(heartbeat_timeout=Duration.from_seconds(3))
    )
    answers = []
    for callback in (first, second):
        try:
            answers.append(callback.result())
        except Exception as error:
            answers.append(f"{error.error_type}: {error.error_message}")
    return answers


@requirement("4-2")
@durable_execution
def outlived(event, context: DurableContext):
    callback = context.create_callback(
        "gamma", CallbackConfig(timeout=Duration.from_seconds(2))
    )
    context.wait(Duration.from_seconds(10))
    try:
        return callback.result()
    except Exception as error:
        return error.error_type


@requirement("5-1")
@durable_execution
def invokes(event, context: DurableContext):
    try:
        return context.invoke(event, {"n": 1})
    except InvokeError as error:
        return error.error_type


@invoke_target("plain-echo")
def echo(event, context):
    return event


@invoke_target("sleepy", execution_timeout=5)
@durable_execution
def sleepy(event, context: DurableContext):
    context.wait(Duration.from_seconds(60))
    return "awake"
"""

CALLBACKS = """\
description: two callbacks
handler: h
AsyncInvoke: true
ExpectedResult:
  ExecutionStatus: SUCCEEDED
  Result: {result}
CallbackActions:
{actions}
ExpectedExecutionHistory: []
"""


@pytest.fixture
def handlers(tmp_path: pathlib.Path) -> pathlib.Path:
    folder = tmp_path / "handlers"
    folder.mkdir()
    (folder / "demo.py").write_text(HANDLERS)
    return folder


def requirement_from(
    tmp_path: pathlib.Path, suite: str, rid: str, text: str
) -> Requirement:
    folder = tmp_path / "requirements" / suite
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{rid}.yaml").write_text(textwrap.dedent(text))
    (requirement,) = load_requirements(
        tmp_path / "requirements", [suite], rng=random.Random(1)
    )
    return requirement


def run(
    tmp_path: pathlib.Path, handlers: pathlib.Path, requirement: Requirement
) -> RequirementReport:
    registrations = load_handlers(handlers)
    return run_requirement(
        requirement,
        registrations[requirement.id],
        workdir=tmp_path / "work",
    )


def play(
    tmp_path: pathlib.Path,
    handlers: pathlib.Path,
    actions: str,
    result: str,
    rid: str = "4-1",
) -> RequirementReport:
    text = CALLBACKS.format(
        result=result, actions=textwrap.indent(textwrap.dedent(actions), "  ")
    )
    return run(tmp_path, handlers, requirement_from(tmp_path, "cb", rid, text))


def test_actions_go_by_name_regex_and_wildcard(
    tmp_path: pathlib.Path, handlers: pathlib.Path
) -> None:
    """Each callback takes the first unused action that names it: by
    equal name, ${/regex/} or '*'."""
    report = play(
        tmp_path,
        handlers,
        """\
        - CallbackName: beta
          Operation: success
          Payload: {b: 2}
        - CallbackName: ${/^alpha-\\d$/}
          Operation: success
          Payload: a
        - CallbackName: '*'
          Operation: success
          Payload: never used
        """,
        '["a", {"b": 2}]',
    )

    assert report.passed, report.errors


def test_heartbeats_keep_a_callback_taking_actions(
    tmp_path: pathlib.Path, handlers: pathlib.Path
) -> None:
    """Heartbeats 2 s apart keep a 3 s heartbeat timeout from firing until
    the success, 6 s after the callback started."""
    report = play(
        tmp_path,
        handlers,
        """\
        - CallbackName: alpha-1
          Operation: success
        - CallbackName: beta
          Operation: heartbeat
          Delay: 2
        - CallbackName: beta
          Operation: heartbeat
          Delay: 2
        - CallbackName: beta
          Operation: success
          Payload: null
          Delay: 2
        """,
        "[null, null]",
    )

    assert report.passed, report.errors


def test_failure_sends_the_error_fields_of_its_payload(
    tmp_path: pathlib.Path, handlers: pathlib.Path
) -> None:
    """A failure sends ErrorType and ErrorMessage from its Payload."""
    report = play(
        tmp_path,
        handlers,
        """\
        - CallbackName: '*'
          Operation: failure
          Payload: {ErrorType: RejectedError, ErrorMessage: nope}
        - CallbackName: '*'
          Operation: success
          Payload: 1
        """,
        '["RejectedError: nope", 1]',
    )

    assert report.passed, report.errors


def test_a_callback_no_action_names_fails_the_requirement(
    tmp_path: pathlib.Path, handlers: pathlib.Path
) -> None:
    """With actions in the file, a callback left without one is an error,
    even though the execution ends as expected."""
    report = play(
        tmp_path,
        handlers,
        """\
        - CallbackName: alpha-1
          Operation: success
          Payload: a
        """,
        '["a", "Callback.Heartbeat: no heartbeat came within the heartbeat timeout"]',
    )

    assert not report.passed
    assert any("'beta'" in error for error in report.errors), report.errors


def test_an_action_due_after_the_end_fails_the_requirement(
    tmp_path: pathlib.Path, handlers: pathlib.Path
) -> None:
    """An answer still due when the execution ended is an error: the
    outside world did not get to do its part."""
    report = play(
        tmp_path,
        handlers,
        """\
        - CallbackName: alpha-1
          Operation: success
          Payload: a
        - CallbackName: beta
          Operation: success
          Payload: late
          Delay: 10
        """,
        '["a", "Callback.Heartbeat: no heartbeat came within the heartbeat timeout"]',
    )

    assert not report.passed
    assert any("still due" in error for error in report.errors), report.errors


def test_a_refused_action_fails_the_requirement(
    tmp_path: pathlib.Path, handlers: pathlib.Path
) -> None:
    """An answer that comes after its callback timed out, while the
    execution still runs, is refused, and the refusal is an error."""
    report = play(
        tmp_path,
        handlers,
        """\
        - CallbackName: gamma
          Operation: success
          Payload: late
          Delay: 5
        """,
        "Callback.Timeout",
        rid="4-2",
    )

    assert not report.passed
    assert any(
        "refused: CallbackTimeoutException" in error for error in report.errors
    ), report.errors


def test_malformed_actions_are_reported_before_running(
    tmp_path: pathlib.Path, handlers: pathlib.Path
) -> None:
    """An unknown Operation or a negative Delay fails the requirement."""
    report = play(
        tmp_path,
        handlers,
        """\
        - CallbackName: alpha-1
          Operation: approve
        - CallbackName: beta
          Operation: success
          Delay: -1
        """,
        "[]",
    )

    assert not report.passed
    assert len(report.errors) == 2, report.errors


INVOKE = """\
description: invoke
handler: h
AsyncInvoke: true
Input: {target}
ExpectedResult:
  ExecutionStatus: SUCCEEDED
  Result: {result}
ExpectedExecutionHistory: []
"""


@pytest.mark.parametrize(
    ("target", "result"),
    [
        ("plain-echo", "{n: 1}"),
        ("sleepy", "ChainedInvoke.Timeout"),
        ("missing", "ResourceNotFoundException"),
    ],
)
def test_invoke_targets_are_registered_for_every_requirement(
    tmp_path: pathlib.Path, handlers: pathlib.Path, target: str, result: str
) -> None:
    """Targets declared in the handler files can be invoked, with their
    execution timeout; others are unknown functions."""
    text = INVOKE.format(target=target, result=result)
    report = run(tmp_path, handlers, requirement_from(tmp_path, "iv", "5-1", text))

    assert report.passed, report.errors


def test_invoke_target_checks_its_arguments() -> None:
    """A target name must be a function name; a timeout whole seconds."""
    with pytest.raises(ValueError, match="function_name"):
        invoke_target("no spaces")
    with pytest.raises(ValueError, match="execution_timeout"):
        invoke_target("ok", execution_timeout=0)
    with pytest.raises(TypeError):
        invoke_target("ok")(42)  # type: ignore[type-var]


def test_two_functions_may_not_share_a_target_name(
    tmp_path: pathlib.Path, handlers: pathlib.Path
) -> None:
    """Declaring one target name twice is a loading error."""
    (handlers / "other.py").write_text(
        "from durable_exec.testing.conformance import invoke_target\n"
        "@invoke_target('plain-echo')\n"
        "def other(event, context):\n"
        "    return None\n"
    )

    with pytest.raises(ValueError, match="plain-echo"):
        load_handlers(handlers)
