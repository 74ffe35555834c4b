"""samples/batch_job.py: a thousand records, batched, bad ones tolerated."""

from __future__ import annotations

from types import ModuleType
from typing import Any


def test_bad_records_within_tolerance_do_not_fail_the_job(
    durable: Any, batch_job: ModuleType
) -> None:
    """27 bad records of 1000 (2.7%) fail their items, not the job: the
    map runs to the end and the summary counts and names them."""
    run = durable.run(batch_job.handler, {"records": 1000})

    run.assert_succeeded()
    summary = run.result
    assert summary["records"] == 1000
    assert summary["processed"] == 973
    assert summary["failed"] == 27
    assert summary["completion_reason"] == "ALL_COMPLETED"
    assert summary["failed_ids"] == [
        "rec-0037",
        "rec-0074",
        "rec-0111",
        "rec-0148",
        "rec-0185",
    ]
    assert summary["total_cents"] > 0


def test_records_run_fifty_to_a_child_context(
    durable: Any, batch_job: ModuleType
) -> None:
    """batch_size=50 makes 20 child contexts for 1000 records, each
    holding its records' steps, one step per record."""
    run = durable.run(batch_job.handler, {"records": 1000})

    children = run.context("transform-records").children
    assert len(children) == 20
    assert all(len(child.children) == 50 for child in children)
    assert [s.name for s in children[0].children[:2]] == [
        "transform rec-0001",
        "transform rec-0002",
    ]


def test_a_bad_record_fails_its_step_once(durable: Any, batch_job: ModuleType) -> None:
    """A bad record is not retried: its step fails at the first attempt
    with the reason, and the records around it succeed."""
    run = durable.run(batch_job.handler, {"records": 100})

    bad = run.step("transform rec-0037")
    assert not bad.succeeded
    assert bad.attempts == 1
    assert bad.error.error_type == "ValueError"
    assert bad.error.error_message == "rec-0037: no email address"
    assert run.step("transform rec-0074").error.error_message == (
        "rec-0074: negative amount -84.74"
    )
    assert run.step("transform rec-0036").result == {
        "id": "rec-0036",
        "email": "user36@example.com",
        "cents": 4636,
    }


def test_exactly_five_percent_is_still_tolerated(
    durable: Any, batch_job: ModuleType
) -> None:
    """50 bad records of 1000 is 5%, not more: the job succeeds."""
    run = durable.run(batch_job.handler, {"records": 1000, "bad_every": 20})

    run.assert_succeeded()
    assert (run.result["processed"], run.result["failed"]) == (950, 50)
    assert run.result["completion_reason"] == "ALL_COMPLETED"


def test_too_many_bad_records_fail_the_job(durable: Any, batch_job: ModuleType) -> None:
    """One record in ten bad exceeds the tolerance: the map stops early,
    and the job fails naming the first bad records."""
    run = durable.run(batch_job.handler, {"records": 1000, "bad_every": 10})

    run.assert_failed(
        "TooManyBadRecords", match=r"more than 5%; the first: rec-0010, rec-0020"
    )
    # It stopped early: children that had not started never ran.
    assert len(run.context("transform-records").children) < 20
