"""Tests of the engine's checkpoint validation (SERVICE.md §2 and §3):
every refusal is InvalidParameterValueException and applies nothing."""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import Live, context, execution, retry, seconds, step, wait

from durable_exec.local import Engine, InvalidParameterValueException
from durable_exec.local._engine import InvocationOutcome
from durable_exec.wire import (
    ContextOptions,
    ErrorObject,
    OperationStatus,
    OperationType,
)

_ERROR = ErrorObject(error_type="Boom", error_message="it broke")


def _refused(live: Live, updates: list[Any], match: str, **kwargs: Any) -> str:
    """Assert the checkpoint is refused and nothing stored changes."""
    before = live.snapshot()
    with pytest.raises(InvalidParameterValueException, match=match) as caught:
        live.engine.checkpoint(live.arn, live.token, updates, **kwargs)
    assert caught.value.status == 400
    assert caught.value.code == "InvalidParameterValueException"
    assert live.snapshot() == before
    return caught.value.message


def _still_usable(live: Live) -> None:
    """The refused call spent nothing: the same token is still accepted."""
    live.checkpoint()


# -- batch rules -----------------------------------------------------------------


def test_two_execution_updates_are_refused(live: Live) -> None:
    """A checkpoint may hold one EXECUTION update at most."""
    _refused(
        live,
        [execution("x", "SUCCEED", payload="1"), execution("y", "FAIL")],
        "one EXECUTION",
    )
    _still_usable(live)


def test_an_execution_update_must_be_last(live: Live) -> None:
    """An EXECUTION update followed by another update is refused."""
    _refused(
        live,
        [execution("x", "SUCCEED", payload="1"), step("1", "START")],
        "EXECUTION update must be the last",
    )
    _still_usable(live)


@pytest.mark.parametrize(
    "batch",
    [
        [step("1", "START"), step("1", "START")],
        [step("1", "SUCCEED", payload="1"), step("1", "SUCCEED", payload="1")],
        [step("1", "START"), step("1", "SUCCEED"), step("1", "FAIL")],
        [wait("1", "START", wait_options=seconds(5)), wait("1", "CANCEL")],
        [context("1", "START"), context("1", "START")],
        [step("1", "START"), context("2", "START"), step("1", "START")],
    ],
    ids=[
        "start-start",
        "succeed-succeed",
        "start-succeed-fail",
        "wait-start-cancel",
        "context-start-start",
        "start-later-start",
    ],
)
def test_a_repeated_id_is_refused(live: Live, batch: list[Any]) -> None:
    """An Id repeats only as a STEP or CONTEXT START plus one completion."""
    _refused(live, batch, "Id repeats")
    _still_usable(live)


def test_a_step_start_and_succeed_in_one_checkpoint_is_allowed(
    live: Live,
) -> None:
    """STEP START + SUCCEED of one Id in a batch records both."""
    live.checkpoint(
        step("1", "START", name="s"), step("1", "SUCCEED", name="s", payload="7")
    )

    record = live.engine.record(live.arn)
    assert record.operations["1"].status is OperationStatus.SUCCEEDED
    assert record.operations["1"].result == "7"
    assert [e["EventType"] for e in record.events[1:]] == [
        "StepStarted",
        "StepSucceeded",
    ]


def test_a_context_start_and_fail_in_one_checkpoint_is_allowed(
    live: Live,
) -> None:
    """CONTEXT START + FAIL of one Id in a batch records both."""
    live.checkpoint(context("1", "START"), context("1", "FAIL", error=_ERROR))

    record = live.engine.record(live.arn)
    assert record.operations["1"].status is OperationStatus.FAILED
    assert [e["EventType"] for e in record.events[1:]] == [
        "ContextStarted",
        "ContextFailed",
    ]


def test_a_parent_must_be_a_known_context(live: Live) -> None:
    """A ParentId naming no stored operation is refused."""
    _refused(live, [step("1", "START", parent_id="99")], "ParentId '99'")
    _still_usable(live)


def test_a_parent_that_is_a_step_is_refused(live: Live) -> None:
    """A ParentId naming a STEP (not a CONTEXT) is refused."""
    live.checkpoint(step("1", "START"))
    _refused(live, [step("2", "START", parent_id="1")], "not a CONTEXT")


def test_the_execution_operation_is_no_parent(live: Live) -> None:
    """Top-level operations have no ParentId; the EXECUTION's is refused."""
    execution_id = live.engine.record(live.arn).execution_id
    _refused(live, [step("1", "START", parent_id=execution_id)], "not a CONTEXT")


def test_a_parent_started_earlier_in_the_batch_is_accepted(live: Live) -> None:
    """A parent started earlier in the batch, or stored, is accepted."""
    live.checkpoint(context("1", "START"), step("1-1", "START", parent_id="1"))
    live.checkpoint(step("1-2", "START", parent_id="1"))

    operations = live.engine.record(live.arn).operations
    assert operations["1-1"].parent_id == "1"
    assert operations["1-2"].parent_id == "1"


def test_a_parent_started_later_in_the_batch_is_refused(live: Live) -> None:
    """The parent's START must come before its child's update."""
    _refused(
        live,
        [step("1-1", "START", parent_id="1"), context("1", "START")],
        "ParentId '1'",
    )


@pytest.mark.parametrize(
    ("later", "label"),
    [
        (step("1", "SUCCEED", name="other", payload="1"), "Name"),
        (step("1", "SUCCEED", name="s", sub_type="WaitForCondition"), "SubType"),
        (context("1", "SUCCEED", name="s", sub_type="Step"), "Type"),
        (wait("1", "CANCEL", name="s", sub_type="Step"), "Type"),
    ],
    ids=["name", "sub-type", "type-context", "type-wait"],
)
def test_metadata_must_match_the_stored_operation(
    live: Live, later: Any, label: str
) -> None:
    """Type, SubType or Name differing from the stored op is refused."""
    live.checkpoint(step("1", "START", name="s"))
    _refused(live, [later], label)


def test_a_parent_id_must_match_the_stored_operation(live: Live) -> None:
    """A ParentId differing from the stored operation's is refused."""
    live.checkpoint(
        context("1", "START"),
        context("2", "START"),
        step("3", "START", parent_id="1"),
    )
    _refused(live, [step("3", "SUCCEED", parent_id="2")], "ParentId")


# -- payload and error rules ---------------------------------------------------


@pytest.mark.parametrize(
    "update",
    [
        step("1", "SUCCEED", error=_ERROR),
        context("1", "SUCCEED", error=_ERROR),
        execution("x", "SUCCEED", payload="1", error=_ERROR),
    ],
    ids=["step", "context", "execution"],
)
def test_succeed_with_an_error_is_refused(live: Live, update: Any) -> None:
    """A SUCCEED must not carry an Error."""
    _refused(live, [update], "SUCCEED must not carry an Error")
    _still_usable(live)


@pytest.mark.parametrize(
    "update",
    [
        step("1", "FAIL", payload="1"),
        context("1", "FAIL", payload="1"),
        execution("x", "FAIL", payload="1"),
    ],
    ids=["step", "context", "execution"],
)
def test_fail_with_a_payload_is_refused(live: Live, update: Any) -> None:
    """A FAIL must not carry a Payload."""
    _refused(live, [update], "FAIL must not carry a Payload")


@pytest.mark.parametrize(
    "options", [None, retry(None), retry(0), retry(-1), retry(31_622_401)]
)
def test_retry_needs_a_delay(live: Live, options: Any) -> None:
    """A STEP RETRY needs NextAttemptDelaySeconds of 1 to 366 days."""
    live.checkpoint(step("1", "START"))
    _refused(
        live,
        [step("1", "RETRY", error=_ERROR, step_options=options)],
        "NextAttemptDelaySeconds",
    )


def test_retry_with_payload_and_error_is_refused(live: Live) -> None:
    """A STEP RETRY takes a Payload or an Error, not both."""
    live.checkpoint(step("1", "START"))
    _refused(
        live,
        [step("1", "RETRY", payload="1", error=_ERROR, step_options=retry(5))],
        "not both",
    )


def test_an_error_too_large_is_refused(live: Live) -> None:
    """An Error over 32,768 characters as JSON is refused."""
    big = ErrorObject(error_type="Big", error_message="m" * 40_000)
    _refused(live, [step("1", "FAIL", error=big)], "Error is")


# -- transitions -----------------------------------------------------------------


def test_start_of_a_started_step_is_refused(live: Live) -> None:
    """A STEP cannot START again while it is STARTED."""
    live.checkpoint(step("1", "START"))
    _refused(live, [step("1", "START")], "cannot START from STARTED")


@pytest.mark.parametrize(
    ("first", "then", "shown"),
    [
        (
            step("1", "SUCCEED", payload="1"),
            step("1", "FAIL", error=_ERROR),
            "SUCCEEDED",
        ),
        (step("1", "FAIL", error=_ERROR), step("1", "START"), "FAILED"),
        (
            step("1", "RETRY", error=_ERROR, step_options=retry(60)),
            step("1", "SUCCEED", payload="1"),
            "PENDING",
        ),
        (
            step("1", "RETRY", error=_ERROR, step_options=retry(60)),
            step("1", "START"),
            "PENDING",
        ),
        (context("1", "SUCCEED"), context("1", "FAIL", error=_ERROR), "SUCCEEDED"),
        (context("1", "START"), context("1", "START"), "STARTED"),
        (
            wait("1", "START", wait_options=seconds(60)),
            wait("1", "START", wait_options=seconds(1)),
            "STARTED",
        ),
    ],
    ids=[
        "step-succeeded-fail",
        "step-failed-start",
        "step-pending-succeed",
        "step-pending-start",
        "context-succeeded-fail",
        "context-started-start",
        "wait-started-start",
    ],
)
def test_a_transition_from_the_wrong_status_is_refused(
    live: Live, first: Any, then: Any, shown: str
) -> None:
    """An action from a status that does not allow it is refused."""
    live.checkpoint(first)
    _refused(live, [then], f"from {shown}")


def test_cancel_of_a_new_wait_is_refused(live: Live) -> None:
    """A WAIT can only be cancelled while STARTED."""
    _refused(live, [wait("1", "CANCEL")], "cannot CANCEL from new")


@pytest.mark.parametrize(
    "update",
    [
        wait("1", "SUCCEED"),
        wait("1", "FAIL", error=_ERROR),
        wait("1", "RETRY", step_options=retry(5)),
        context("1", "RETRY", step_options=retry(5)),
        context("1", "CANCEL"),
        step("1", "CANCEL"),
        execution("x", "START"),
        execution("x", "RETRY"),
    ],
    ids=lambda u: f"{u.type.value}-{u.action.value}",
)
def test_an_action_not_allowed_for_the_type_is_refused(live: Live, update: Any) -> None:
    """Each type takes only its own actions."""
    _refused(
        live,
        [update],
        f"action {update.action.value} is not allowed for {update.type.value}",
    )


@pytest.mark.parametrize(
    "options", [None, seconds(None), seconds(0), seconds(31_622_401)]
)
def test_wait_start_needs_its_seconds(live: Live, options: Any) -> None:
    """A WAIT START needs WaitSeconds of 1 to 366 days."""
    _refused(live, [wait("1", "START", wait_options=options)], "WaitSeconds")


@pytest.mark.parametrize("op_id", ["", "a b", "x" * 65, "café", "1/2", "1.2"], ids=repr)
def test_a_bad_id_is_refused(live: Live, op_id: str) -> None:
    """An Id must be 1 to 64 letters, digits, '-' or '_'."""
    _refused(live, [step(op_id, "START")], "Id must be")


def test_bad_names_and_sub_types_are_refused(live: Live) -> None:
    """A Name must be printable ASCII, a SubType 1 to 32 safe characters."""
    _refused(live, [step("1", "START", name="caf\u00e9")], "Name")
    _refused(live, [step("1", "START", name="")], "Name")
    _refused(live, [step("1", "START", sub_type="S" * 33)], "SubType")


def test_a_refused_update_anywhere_refuses_the_whole_batch(live: Live) -> None:
    """All or none: valid updates before a bad one are not applied."""
    _refused(
        live,
        [
            step("1", "START"),
            wait("2", "START", wait_options=seconds(5)),
            wait("3", "SUCCEED"),
        ],
        "not allowed",
    )
    assert set(live.engine.record(live.arn).operations) == {
        live.engine.record(live.arn).execution_id
    }


# -- tokens ----------------------------------------------------------------------


def test_a_spent_token_is_refused(live: Live) -> None:
    """Once a checkpoint is accepted, its token is refused."""
    spent = live.token
    live.checkpoint(step("1", "START"))
    before = live.snapshot()

    with pytest.raises(InvalidParameterValueException) as caught:
        live.engine.checkpoint(live.arn, spent, [step("1", "SUCCEED", payload="1")])

    assert caught.value.message.startswith("Invalid checkpoint token")
    assert live.snapshot() == before
    # The newest token still works.
    live.checkpoint(step("1", "SUCCEED", payload="1"))


def test_an_empty_checkpoint_also_spends_the_token(live: Live) -> None:
    """Even a checkpoint with no updates consumes its token."""
    spent = live.token
    reply = live.checkpoint()

    assert reply.checkpoint_token not in (None, spent)
    with pytest.raises(
        InvalidParameterValueException, match="^Invalid checkpoint token"
    ):
        live.engine.checkpoint(live.arn, spent, [])


def test_the_token_is_checked_before_the_batch(live: Live) -> None:
    """A spent token is reported even when the batch is also invalid."""
    spent = live.token
    live.checkpoint()
    with pytest.raises(
        InvalidParameterValueException, match="^Invalid checkpoint token"
    ):
        live.engine.checkpoint(live.arn, spent, [wait("1", "SUCCEED")])


def test_a_token_after_the_invocation_ended_is_refused(live: Live) -> None:
    """When the invocation ends, its newest token dies with it."""
    live.engine.end_invocation(
        live.arn, InvocationOutcome(output={"Status": "PENDING"})
    )
    before = live.snapshot()

    with pytest.raises(
        InvalidParameterValueException, match="^Invalid checkpoint token"
    ):
        live.engine.checkpoint(live.arn, live.token, [step("1", "START")])
    assert live.snapshot() == before


def test_a_new_invocation_voids_the_old_tokens(engine: Engine) -> None:
    """A token of an earlier invocation is refused in a later one."""
    arn = engine.create_execution("fn", "{}")
    old = engine.begin_invocation(arn)["CheckpointToken"]
    engine.end_invocation(arn, InvocationOutcome(output={"Status": "PENDING"}))
    new = engine.begin_invocation(arn)["CheckpointToken"]

    with pytest.raises(
        InvalidParameterValueException, match="^Invalid checkpoint token"
    ):
        engine.checkpoint(arn, old, [])
    engine.checkpoint(arn, new, [])


def test_a_token_of_a_finished_execution_is_refused(live: Live) -> None:
    """A finished execution issues no token and refuses the last one."""
    reply = live.checkpoint(execution("x", "SUCCEED", payload='"done"'))

    assert reply.checkpoint_token is None
    with pytest.raises(
        InvalidParameterValueException, match="^Invalid checkpoint token"
    ):
        live.engine.checkpoint(live.arn, live.token, [])


def test_state_reads_check_the_token_without_spending_it(live: Live) -> None:
    """State reads check the token without spending it."""
    spent = live.token
    live.engine.get_execution_state(live.arn, live.token)
    live.checkpoint()

    with pytest.raises(
        InvalidParameterValueException, match="^Invalid checkpoint token"
    ):
        live.engine.get_execution_state(live.arn, spent)
    live.engine.get_execution_state(live.arn, live.token)


# -- idempotency -----------------------------------------------------------------


def test_a_repeated_client_token_returns_the_cached_reply(live: Live) -> None:
    """A repeated ClientToken returns the cached reply, applied once."""
    token = live.token
    first = live.engine.checkpoint(
        live.arn,
        token,
        [step("1", "START", name="s"), step("1", "SUCCEED", name="s", payload="1")],
        client_token="request-1",
    )
    after_first = live.snapshot()

    again = live.engine.checkpoint(
        live.arn,
        token,
        [step("1", "START", name="s"), step("1", "SUCCEED", name="s", payload="1")],
        client_token="request-1",
    )

    assert again == first
    assert live.snapshot() == after_first
    events = live.engine.record(live.arn).events
    assert [e["EventType"] for e in events].count("StepSucceeded") == 1

    # The reply's token is the live one.
    live.token = first.checkpoint_token
    live.checkpoint(wait("2", "START", wait_options=seconds(5)))


def test_a_spent_token_with_another_client_token_is_refused(live: Live) -> None:
    """A spent token is refused unless its ClientToken repeats."""
    token = live.token
    live.engine.checkpoint(live.arn, token, [step("1", "START")], client_token="a")

    _refused_token = pytest.raises(
        InvalidParameterValueException, match="^Invalid checkpoint token"
    )
    with _refused_token:
        live.engine.checkpoint(live.arn, token, [step("1", "START")], client_token="b")
    with pytest.raises(
        InvalidParameterValueException, match="^Invalid checkpoint token"
    ):
        live.engine.checkpoint(live.arn, token, [step("1", "START")])


def test_a_refused_checkpoint_is_not_cached_for_its_client_token(
    live: Live,
) -> None:
    """A refused checkpoint is not cached under its ClientToken."""
    _refused(live, [wait("1", "SUCCEED")], "not allowed", client_token="c")

    reply = live.engine.checkpoint(
        live.arn,
        live.token,
        [wait("1", "START", wait_options=seconds(3))],
        client_token="c",
    )

    assert [op.id for op in reply.operations] == ["1"]


def test_context_options_are_recorded(live: Live) -> None:
    """A CONTEXT SUCCEED's ReplayChildren reaches its ContextDetails."""
    live.checkpoint(
        context("1", "START"),
        context("1", "SUCCEED", payload="{}", context_options=ContextOptions(True)),
    )

    details = live.engine.record(live.arn).operations["1"].context_details
    assert details is not None
    assert details.replay_children is True
    assert live.engine.record(live.arn).operations["1"].type is OperationType.CONTEXT
