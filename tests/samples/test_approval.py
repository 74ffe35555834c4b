"""samples/approval.py: a human approval, answered in engine time."""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType
from typing import Any

from durable_exec import Duration

REQUEST = {"request_id": "PR-17", "amount_cents": 120000, "approver": "ada"}
OUTCOME_STEPS = {"purchase", "decline", "escalate"}


def _outcome_steps(run: Any) -> list[str]:
    return [op.name for op in run.operations if op.name in OUTCOME_STEPS]


def test_an_approval_places_the_purchase(durable: Any, approval: ModuleType) -> None:
    """The approver answers after three hours: the purchase is placed and
    the answer is in the result."""
    durable.respond_to_callback(
        "approval", result={"by": "ada"}, after=Duration.from_hours(3)
    )

    run = durable.run(approval.handler, REQUEST)

    run.assert_succeeded()
    assert run.result == {
        "request_id": "PR-17",
        "status": "approved",
        "answer": {"by": "ada"},
        "done": "purchase order for PR-17 placed",
    }
    assert _outcome_steps(run) == ["purchase"]
    assert run.callback("approval").duration == timedelta(hours=3)
    # Notified once, though the execution was invoked again after the
    # answer: the second invocation replayed the step.
    assert run.step("notify-approver").attempts == 1
    assert run.invocations == 2


def test_the_approver_is_told_how_to_answer(
    durable: Any, approval: ModuleType, capsys: Any
) -> None:
    """The notification names the callback id and the command that
    answers it."""
    durable.respond_to_callback("approval", result={"by": "ada"}, after=60)

    run = durable.run(approval.handler, REQUEST)

    callback_id = run.callback("approval").callback_id
    printed = capsys.readouterr().out
    assert f"durable-exec callback succeed {callback_id} --result" in printed
    assert f"durable-exec callback fail {callback_id}" in printed


def test_a_rejection_declines_the_request(durable: Any, approval: ModuleType) -> None:
    """A callback answered with a failure is a rejection: the requester is
    told why, and nothing is purchased."""
    durable.respond_to_callback(
        "approval",
        fail={"ErrorType": "Rejected", "ErrorMessage": "over budget"},
        after=Duration.from_hours(5),
    )

    run = durable.run(approval.handler, REQUEST)

    run.assert_succeeded()
    assert run.result["status"] == "rejected"
    assert run.result["reason"] == "over budget"
    assert _outcome_steps(run) == ["decline"]
    assert not run.callback("approval").succeeded


def test_no_answer_within_a_day_escalates(durable: Any, approval: ModuleType) -> None:
    """Nobody answers: after 24 hours of engine time (skipped, not
    waited) the callback times out and the request is escalated."""
    start = durable.now

    run = durable.run(approval.handler, REQUEST)

    run.assert_succeeded()
    assert run.result["status"] == "escalated"
    assert _outcome_steps(run) == ["escalate"]
    assert run.callback("approval").status.value == "TIMED_OUT"
    assert durable.now - start >= timedelta(hours=24)


def test_an_answer_after_the_timeout_comes_too_late(
    durable: Any, approval: ModuleType
) -> None:
    """An approval sent after 25 hours finds the callback timed out: the
    request is escalated, not purchased."""
    durable.respond_to_callback(
        "approval", result={"by": "ada"}, after=Duration.from_hours(25)
    )

    run = durable.run(approval.handler, REQUEST)

    assert run.result["status"] == "escalated"
    assert _outcome_steps(run) == ["escalate"]
