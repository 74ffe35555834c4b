"""samples/order.py: the order saga, its compensations and its outcomes."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

BOOK_AND_PENS = [{"sku": "book", "qty": 1}, {"sku": "pen", "qty": 3}]
UNDO_STEPS = {"release-inventory", "refund-payment", "cancel-courier"}


def _undo_steps_in_order(run: Any) -> list[str]:
    """The compensation steps that ran, in the order they started."""
    return [op.name for op in run.operations if op.name in UNDO_STEPS]


def test_an_order_is_confirmed(durable: Any, order: ModuleType) -> None:
    """All three branches succeed: the order is confirmed and nothing is
    undone."""
    run = durable.run(order.handler, {"order_id": 7, "items": BOOK_AND_PENS})

    run.assert_succeeded()
    assert run.result == {
        "order_id": 7,
        "status": "confirmed",
        "total_cents": 1250 + 3 * 199,
        "reservation": "reservation-7",
        "payment": "payment-7",
        "shipment": "shipment-7",
    }
    branches = run.context("place-order").children
    assert [(b.name, b.succeeded) for b in branches] == [
        ("reserve", True),
        ("charge", True),
        ("ship", True),
    ]
    assert _undo_steps_in_order(run) == []


@pytest.mark.parametrize(
    ("refusal", "failed", "undone"),
    [
        (
            {"card": "declined"},
            "charge",
            ["cancel-courier", "release-inventory"],
        ),
        (
            {"courier": "unavailable"},
            "ship",
            ["refund-payment", "release-inventory"],
        ),
        (
            {"out_of_stock": ["pen"]},
            "reserve",
            ["cancel-courier", "refund-payment"],
        ),
    ],
)
def test_a_refusal_undoes_the_other_actions_last_first(
    durable: Any,
    order: ModuleType,
    refusal: dict[str, Any],
    failed: str,
    undone: list[str],
) -> None:
    """A refused action cancels the order: every other action is undone,
    in reverse order, after the parallel, and the execution succeeds with
    a "cancelled" outcome."""
    event = {"order_id": 8, "items": BOOK_AND_PENS, **refusal}

    run = durable.run(order.handler, event)

    run.assert_succeeded()
    assert run.result["status"] == "cancelled"
    assert run.result["reason"].startswith(f"{failed}: ")
    assert _undo_steps_in_order(run) == undone
    assert all(run.step(name).succeeded for name in undone)

    # The compensations are top-level steps, after the batch.
    names = [op.name for op in run.operations]
    assert names.index(undone[0]) > names.index("place-order")
    assert run.step(undone[0]).parent_id is None


def test_a_declined_card_is_not_retried(durable: Any, order: ModuleType) -> None:
    """A refusal is final: the charge step fails after one attempt."""
    event = {"order_id": 9, "items": BOOK_AND_PENS, "card": "declined"}

    run = durable.run(order.handler, event)

    charge = run.step("charge")
    assert not charge.succeeded
    assert charge.attempts == 1
    assert charge.error.error_type == "ServiceRefused"
    assert run.result["undone"] == [
        "shipment-9 cancelled",
        "reservation-9 released",
    ]


@pytest.mark.parametrize(
    "event",
    [
        {"items": BOOK_AND_PENS},
        {"order_id": 10, "items": []},
        {"order_id": 10, "items": [{"sku": "piano", "qty": 1}]},
        {"order_id": 10, "items": [{"sku": "book", "qty": 0}]},
    ],
)
def test_an_invalid_order_fails_before_any_action(
    durable: Any, order: ModuleType, event: dict[str, Any]
) -> None:
    """Bad input fails the execution in the validate step, at its first
    attempt: no branch starts, and there is nothing to undo."""
    run = durable.run(order.handler, event)

    run.assert_failed("InvalidOrder")
    assert [op.name for op in run.operations] == ["validate"]
    assert run.step("validate").attempts == 1
