"""An order as a saga: validate, do three things at once, undo on failure.

Run it on the embedded engine::

    durable-exec run samples/order.py:handler \\
        --input '{"order_id": 7, "items": [{"sku": "book", "qty": 2}]}'

    # The card is declined: the reservation and the booking are undone.
    durable-exec run samples/order.py:handler \\
        --input '{"order_id": 8, "items": [{"sku": "pen", "qty": 1}],
                  "card": "declined"}'

The order is validated in a step, then three services are called at once
in a ``parallel``: reserve the items, charge the card, book a courier.
Each call is a step in a branch of its own (NESTED nesting: each branch is
a child context), and the batch stops at the first failure
(``all_successful``).

When a branch fails, the order is cancelled: each action that may have
taken effect is undone by a compensating step, last action first, and the
handler returns ``{"status": "cancelled", ...}``. A declined card is an
outcome of the business, not a fault of the workflow, so the execution
succeeds with that result. An order that fails validation has nothing to
undo: it fails the execution (bad input).

Which actions are undone? Not only those whose branch SUCCEEDED. When the
first failure stops the batch, another branch may still be running (it
is reported STARTED): its service call may have gone through without its
result being checkpointed. So every action whose branch did not fail is
undone, and each service call uses the order id as its idempotency key:
undoing an action that never happened does nothing. A branch that failed
did nothing, since its one call was refused.

Inputs that make a service refuse, for trying the compensations:
``"card": "declined"``, ``"out_of_stock": ["lamp"]``,
``"courier": "unavailable"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from durable_exec import (
    BatchResult,
    CompletionConfig,
    DurableContext,
    NestingType,
    ParallelBranch,
    ParallelConfig,
    RetryPresets,
    RetryStrategy,
    StepConfig,
    durable_execution,
)

# -- the services, simulated ------------------------------------------------
#
# Plain functions standing in for an inventory, a payment provider and a
# courier. What they do is decided by the order, so every outcome can be
# tried from the command line. Each takes the order id as an idempotency
# key, as a real service call should.

PRICES = {"book": 1250, "pen": 199, "lamp": 4500}  # cents


class InvalidOrder(ValueError):
    """The order cannot be placed as given."""


class ServiceRefused(Exception):
    """A service said no; asking again will not change its answer."""


def validate(event: dict[str, Any]) -> dict[str, Any]:
    """Check the order and price it; raise InvalidOrder if it is wrong."""
    items = event.get("items") or []
    if not isinstance(event.get("order_id"), int) or not items:
        raise InvalidOrder(
            f"an order needs an integer order_id and items (got {event!r})"
        )
    for item in items:
        if item.get("sku") not in PRICES or item.get("qty", 0) < 1:
            raise InvalidOrder(f"no such item, or no quantity: {item!r}")

    total = sum(PRICES[item["sku"]] * item["qty"] for item in items)
    return {**event, "total_cents": total}


def reserve_inventory(order: dict[str, Any]) -> str:
    skus = {item["sku"] for item in order["items"]}
    missing = skus & set(order.get("out_of_stock", []))
    if missing:
        raise ServiceRefused(f"out of stock: {', '.join(sorted(missing))}")
    return f"reservation-{order['order_id']}"


def charge_card(order: dict[str, Any]) -> str:
    if order.get("card") == "declined":
        raise ServiceRefused(f"card declined for {order['total_cents']} cents")
    return f"payment-{order['order_id']}"


def book_courier(order: dict[str, Any]) -> str:
    if order.get("courier") == "unavailable":
        raise ServiceRefused("no courier available")
    return f"shipment-{order['order_id']}"


# The undoing calls are idempotent, as the services promise: releasing a
# reservation that was never made (or was released already) does nothing.


def release_inventory(order_id: int) -> str:
    return f"reservation-{order_id} released"


def refund_payment(order_id: int) -> str:
    return f"payment-{order_id} refunded"


def cancel_courier(order_id: int) -> str:
    return f"shipment-{order_id} cancelled"


# -- the workflow -----------------------------------------------------------

Action = Callable[[dict[str, Any]], str]
Undo = Callable[[int], str]

# Each action, and the step that undoes it, in the order they are started.
ACTIONS: list[tuple[str, Action, str, Undo]] = [
    ("reserve", reserve_inventory, "release-inventory", release_inventory),
    ("charge", charge_card, "refund-payment", refund_payment),
    ("ship", book_courier, "cancel-courier", cancel_courier),
]

# A refusal is final; only a dropped connection is worth another attempt.
# (Compensations keep the default strategy, 6 attempts: they must get
# through, and if they cannot, the execution fails for a human to see.)
SERVICE_CALL = StepConfig(
    retry_strategy=RetryStrategy.exponential(
        max_attempts=3,
        initial_delay=2,
        retryable_error_types=[ConnectionError],
    )
)

# Bad input stays bad: validation gets one attempt.
ONCE = StepConfig(retry_strategy=RetryPresets.none())

ALL_OR_NOTHING = ParallelConfig(
    completion=CompletionConfig.all_successful(), nesting=NestingType.NESTED
)


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    # A bad order raises here, before anything was done: the execution
    # fails. The checkpoint keeps the order as priced now, so a price
    # change while the execution runs cannot change what is charged.
    order = context.step(lambda _: validate(event), name="validate", config=ONCE)
    order_id = order["order_id"]

    def branch(name: str, call: Action) -> ParallelBranch:
        def run(child: DurableContext) -> str:
            return child.step(lambda _: call(order), name=name, config=SERVICE_CALL)

        return ParallelBranch(name, run)

    placed: BatchResult[str] = context.parallel(
        [branch(name, call) for name, call, _, _ in ACTIONS],
        name="place-order",
        config=ALL_OR_NOTHING,
    )
    if not placed.failed():
        reservation, payment, shipment = placed.get_results()
        return {
            "order_id": order_id,
            "status": "confirmed",
            "total_cents": order["total_cents"],
            "reservation": reservation,
            "payment": payment,
            "shipment": shipment,
        }

    # Undo, last action first, everything that may have happened. These
    # steps are checkpointed too: after a crash they are not repeated.
    def compensate(undo_name: str, undo: Undo) -> str:
        return context.step(lambda _: undo(order_id), name=undo_name)

    failed = {item.name for item in placed.failed()}
    undone = [
        compensate(undo_name, undo)
        for name, _, undo_name, undo in reversed(ACTIONS)
        if name not in failed
    ]

    first = placed.failed()[0]
    message = first.error.error_message if first.error else "failed"
    return {
        "order_id": order_id,
        "status": "cancelled",
        "reason": f"{first.name}: {message}",
        "undone": undone,
    }
