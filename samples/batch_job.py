"""A batch job: a thousand records through a map, a few bad ones tolerated.

Run it on the embedded engine::

    durable-exec run samples/batch_job.py:handler --input '{"records": 1000}'

    # One record in ten is bad: more than the 5% tolerated, the job fails.
    durable-exec run samples/batch_job.py:handler \\
        --input '{"records": 1000, "bad_every": 10}'

The records are loaded in a step (on AWS they would come from S3 or a
queue; the step's checkpoint keeps the list the map works through). Then
``map`` validates and transforms each record in a step of its own, with

* ``batch_size=50``: records run fifty to a child context, one after
  another, and the child's checkpoint holds their fifty outcomes: 20
  children for 1000 records, not 1000;
* ``max_concurrency=8``: at most eight of those children run at once;
* ``tolerated_failure_percentage=5``: up to 5% of all records (50 of
  1000) may fail and the map still runs to the end (ALL_COMPLETED). One
  more and it stops at once (FAILURE_TOLERANCE_EXCEEDED): children still
  running stop at their next step, and none start.

Every ``bad_every``-th record (default 37th: 27 of 1000, 2.7%) is bad by
design, with no email or a negative amount. Its step fails with
``ValueError``; another attempt would fail the same way, so the steps
retry only ``ConnectionError``. A map never raises for failed items: the
job looks at the ``BatchResult`` and decides. Within tolerance it
returns a summary; beyond it, it fails the execution with
``TooManyBadRecords``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from durable_exec import (
    BatchResult,
    CompletionConfig,
    CompletionReason,
    DurableContext,
    MapConfig,
    RetryStrategy,
    StepConfig,
    durable_execution,
)

# How many failed record ids the summary lists.
SAMPLE_SIZE = 5

PER_RECORD = MapConfig(
    batch_size=50,
    max_concurrency=8,
    completion=CompletionConfig(tolerated_failure_percentage=5),
)

# A bad record stays bad: only a dropped connection is worth a retry.
TRANSFORM = StepConfig(
    retry_strategy=RetryStrategy.exponential(
        max_attempts=3,
        initial_delay=2,
        retryable_error_types=[ConnectionError],
    )
)


class TooManyBadRecords(Exception):
    """More records failed than the job tolerates."""


# -- the records and their transformation, simulated -------------------------


def load_records(count: int, bad_every: int) -> list[dict[str, str]]:
    """Records numbered 1 to ``count``; every ``bad_every``-th is broken."""
    records = []
    for number in range(1, count + 1):
        record = {
            "id": f"rec-{number:04d}",
            "email": f"User{number}@Example.COM",
            "amount": f"{number % 90 + 10}.{number % 100:02d}",
        }
        if number % bad_every == 0:
            # Alternate the two kinds of damage.
            if number % 2:
                del record["email"]
            else:
                record["amount"] = "-" + record["amount"]
        records.append(record)
    return records


def transform(record: dict[str, str]) -> dict[str, Any]:
    """Validate a record and normalize it; raise ValueError if it is bad."""
    email = record.get("email", "")
    if "@" not in email:
        raise ValueError(f"{record['id']}: no email address")
    try:
        amount = Decimal(record["amount"])
    except (KeyError, InvalidOperation):
        raise ValueError(f"{record['id']}: no amount") from None
    if amount < 0:
        raise ValueError(f"{record['id']}: negative amount {amount}")
    cents = int(amount * 100)
    return {"id": record["id"], "email": email.lower(), "cents": cents}


# -- the workflow -----------------------------------------------------------


def process(
    context: DurableContext,
    record: dict[str, str],
    index: int,
    records: Sequence[dict[str, str]],
) -> dict[str, Any]:
    """One map item: a step per record, named after it."""
    name = f"transform {record['id']}"
    return context.step(lambda _: transform(record), name=name, config=TRANSFORM)


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    count = int(event.get("records", 1000))
    bad_every = int(event.get("bad_every", 37))
    records = context.step(
        lambda _: load_records(count, bad_every), name="load-records"
    )

    outcome: BatchResult[dict[str, Any]] = context.map(
        records, process, name="transform-records", config=PER_RECORD
    )

    # Items are reported by index; ``outcome.failed()`` also carries each
    # one's error, should the summary want the reasons.
    failed_ids = [records[item.index]["id"] for item in outcome.failed()]
    reason = outcome.completion_reason
    summary = {
        "records": len(records),
        "processed": outcome.success_count,
        "failed": outcome.failure_count,
        "completion_reason": reason.value,
        "failed_ids": failed_ids[:SAMPLE_SIZE],
        "total_cents": sum(done["cents"] for done in outcome.get_results()),
    }
    if reason is CompletionReason.FAILURE_TOLERANCE_EXCEEDED:
        raise TooManyBadRecords(
            f"{summary['failed']} of {summary['records']} records failed, "
            f"more than 5%; the first: {', '.join(summary['failed_ids'])}"
        )
    return summary
