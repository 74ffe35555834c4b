"""A human approval: ask someone, wait up to a day, act on the answer.

Run it on the embedded engine::

    durable-exec run samples/approval.py:handler \\
        --input '{"request_id": "PR-17", "amount_cents": 120000,
                  "approver": "ada@example.com"}' --name pr-17

It ends RUNNING: the execution waits for its callback, and no process
waits with it. The notify step printed the callback id and the command
that answers it, as the approver would (any time within the day)::

    # approve, with a result the workflow can read
    durable-exec callback succeed CALLBACK_ID --result '{"by": "ada"}'

    # reject: a callback answered with a failure
    durable-exec callback fail CALLBACK_ID \\
        --error-type Rejected --error-message "over budget"

Either command records the answer, resumes the execution and prints its
result. Left unanswered, the callback times out after 24 hours and the
request is escalated.

The callback is created first, and checkpointed with its id and
timeout; the approver is notified in a step, so a replay does not send
the message again; ``callback.result()`` then suspends the execution
until the answer (or the timeout) comes. An approval runs the purchase;
a rejection declines the request; a timeout escalates it. All three end
the execution SUCCEEDED: each is an answer to the request.
"""

from __future__ import annotations

from typing import Any

from durable_exec import (
    CallbackConfig,
    CallbackError,
    CallbackTimeoutError,
    DurableContext,
    Duration,
    durable_execution,
)

ANSWER_WITHIN = CallbackConfig(timeout=Duration.from_hours(24))

# -- the outside world, simulated -------------------------------------------


def notify_approver(request: dict[str, Any], callback_id: str) -> str:
    """Send the approver the request and how to answer it.

    Printed here; a real one would email or post to a chat, with links
    that call SendDurableExecutionCallbackSuccess / Failure on AWS.
    """
    print(
        f"Approval needed from {request['approver']} for {request['request_id']}"
        f" ({request['amount_cents'] / 100:.2f}). Callback id: {callback_id}\n"
        f"  approve: durable-exec callback succeed {callback_id}"
        ' --result \'{"by": "me"}\'\n'
        f"  reject:  durable-exec callback fail {callback_id}"
        " --error-type Rejected --error-message 'why'",
        flush=True,
    )
    return f"notified {request['approver']}"


def place_purchase(request: dict[str, Any]) -> str:
    return f"purchase order for {request['request_id']} placed"


def tell_requester(request: dict[str, Any], news: str) -> str:
    return f"told the requester of {request['request_id']}: {news}"


def escalate(request: dict[str, Any]) -> str:
    return f"{request['request_id']} escalated to the approver's manager"


# -- the workflow -----------------------------------------------------------


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    request = {
        "request_id": event["request_id"],
        "amount_cents": int(event["amount_cents"]),
        "approver": event.get("approver", "approvals@example.com"),
    }

    # Created once; on replay the same callback, with the same id, returns.
    callback = context.create_callback(name="approval", config=ANSWER_WITHIN)
    context.step(
        lambda _: notify_approver(request, callback.callback_id),
        name="notify-approver",
    )

    try:
        # Suspends until the answer comes: nothing runs, nothing is billed.
        answer = callback.result()
    except CallbackTimeoutError:
        done = context.step(lambda _: escalate(request), name="escalate")
        return {
            "request_id": request["request_id"],
            "status": "escalated",
            "done": done,
        }
    except CallbackError as rejection:
        reason = rejection.error_message or "no reason given"
        done = context.step(
            lambda _: tell_requester(request, f"declined: {reason}"),
            name="decline",
        )
        return {
            "request_id": request["request_id"],
            "status": "rejected",
            "reason": reason,
            "done": done,
        }

    done = context.step(lambda _: place_purchase(request), name="purchase")
    return {
        "request_id": request["request_id"],
        "status": "approved",
        "answer": answer,
        "done": done,
    }
