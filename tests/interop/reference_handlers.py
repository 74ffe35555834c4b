"""Workflows written with the AWS reference SDK (``aws-durable-execution-sdk-python``).

They are the other direction of interop: handlers we did not write, run
against a service implementation. Each is a plain ``(event, context)``
function; the test wraps it with the reference SDK's
``durable_execution(boto3_client=...)`` for the service under test, so the
same workflow can run on the reference runner (where it shows the workflow
and its expected outcome are right) and on our server.

:data:`WORKFLOWS` lists each one with its input, the outcome it is meant
to have, and what the outside world must do during the run (answer a
callback, or nothing).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_durable_execution_sdk_python import (
    BatchItemStatus,
    BatchResult,
    CallbackError,
    CallbackTimeoutError,
    ChildContextError,
    DurableContext,
    StepContext,
)
from aws_durable_execution_sdk_python.config import (
    CallbackConfig,
    CompletionConfig,
    Duration,
    JitterStrategy,
    MapConfig,
    ParallelConfig,
    StepConfig,
    WaitForCallbackConfig,
)
from aws_durable_execution_sdk_python.retries import (
    RetryStrategyConfig,
    create_retry_strategy,
)
from aws_durable_execution_sdk_python.waits import (
    WaitForConditionConfig,
    WaitForConditionDecision,
)
from interop_harness import REF_DURABLE_TARGET, REF_PLAIN_TARGET

KIB = 1024


def no_retry() -> StepConfig:
    return StepConfig(
        retry_strategy=create_retry_strategy(RetryStrategyConfig(max_attempts=1))
    )


def retry_twice() -> StepConfig:
    return StepConfig(
        retry_strategy=create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=3,
                initial_delay=Duration.from_seconds(1),
                max_delay=Duration.from_seconds(1),
                jitter_strategy=JitterStrategy.NONE,
            )
        )
    )


class Flaky(Exception):
    """What a step raises on the attempts meant to fail."""


# -- the workflows -----------------------------------------------------------


def steps_in_order(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    total = ctx.step(lambda s: event["a"] + event["b"], name="add")
    doubled = ctx.step(lambda s: total * 2, name="double")
    text = ctx.step(lambda s: f"{event['label']}={doubled}", name="format")
    return {"total": total, "doubled": doubled, "text": text}


def flaky_step(event: Any, ctx: DurableContext) -> dict[str, Any]:
    def attempt(step: StepContext) -> int:
        if step.attempt < 3:
            raise Flaky(f"attempt {step.attempt} fails")
        return step.attempt

    return {"succeeded_on": ctx.step(attempt, name="flaky", config=retry_twice())}


def failing_step(event: Any, ctx: DurableContext) -> None:
    def boom(step: StepContext) -> None:
        raise ValueError("the order is invalid")

    ctx.step(boom, name="validate", config=no_retry())


def wait_between_steps(event: Any, ctx: DurableContext) -> list[str]:
    first = ctx.step(lambda s: "before", name="first")
    ctx.wait(Duration.from_seconds(1), name="pause")
    second = ctx.step(lambda s: "after", name="second")
    return [first, second]


def nested_children(event: Any, ctx: DurableContext) -> dict[str, Any]:
    def inner(child: DurableContext) -> int:
        child.wait(Duration.from_seconds(1), name="inner-wait")
        return child.step(lambda s: 7, name="inner-step")

    def outer(child: DurableContext) -> int:
        value = child.run_in_child_context(inner, name="inner")
        return child.step(lambda s: value * 6, name="outer-step")

    def failing(child: DurableContext) -> None:
        child.step(lambda s: 1, name="before-failure")
        raise RuntimeError("the child gives up")

    answer = ctx.run_in_child_context(outer, name="outer")
    try:
        ctx.run_in_child_context(failing, name="failing")
    except ChildContextError:
        return {"answer": answer, "child_failed": True}
    return {"answer": answer, "child_failed": False}


def parallel_branches(event: Any, ctx: DurableContext) -> dict[str, Any]:
    def slow(child: DurableContext) -> str:
        first = child.step(lambda s: "sl", name="slow-first")
        return child.step(lambda s: first + "ow", name="slow-step")

    def fast(child: DurableContext) -> str:
        return child.step(lambda s: "fast", name="fast-step")

    def broken(child: DurableContext) -> str:
        child.step(lambda s: None, name="broken-step")
        raise RuntimeError("branch broke")

    batch: BatchResult[str] = ctx.parallel(
        [slow, fast, broken],
        name="fan-out",
        config=ParallelConfig(
            completion_config=CompletionConfig.all_completed()  # type: ignore[no-untyped-call]
        ),
    )
    return {
        "statuses": [item.status.value for item in batch.all],
        "results": batch.get_results(),
    }


def map_items(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    def square(child: DurableContext, item: int, index: int, items: Any) -> int:
        return child.step(lambda s: item * item, name=f"square-{index}")

    batch: BatchResult[int] = ctx.map(
        event["items"], square, name="squares", config=MapConfig(max_concurrency=2)
    )
    batch.throw_if_error()
    ctx.wait(Duration.from_seconds(1), name="after-map")
    return {"results": batch.get_results(), "total": batch.total_count}


def approval(event: Any, ctx: DurableContext) -> dict[str, Any]:
    callback = ctx.create_callback(
        name="approval", config=CallbackConfig(timeout=Duration.from_seconds(300))
    )
    # The reference SDK hands back a callback's answer as the text sent.
    return {"answer": json.loads(callback.result() or "null")}


def submit_and_wait(event: Any, ctx: DurableContext) -> dict[str, Any]:
    def submit(callback_id: str, submit_ctx: Any) -> None:
        pass

    try:
        ctx.wait_for_callback(
            submit,
            name="review",
            config=WaitForCallbackConfig(timeout=Duration.from_seconds(300)),
        )
    except CallbackError as error:
        return {"failed": True, "message": str(error)}
    return {"failed": False}


def callback_times_out(event: Any, ctx: DurableContext) -> dict[str, Any]:
    callback = ctx.create_callback(
        name="never", config=CallbackConfig(timeout=Duration.from_seconds(1))
    )
    try:
        callback.result()
    except CallbackTimeoutError:
        return {"timed_out": True}
    return {"timed_out": False}


def durable_target(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    ctx.wait(Duration.from_seconds(1), name="target-wait")
    return {"echo": event["value"], "from": "durable"}


def plain_target(payload: Any, lambda_context: Any) -> dict[str, Any]:
    return {"echo": payload["value"], "from": "plain"}


def invoker(event: Any, ctx: DurableContext) -> dict[str, Any]:
    durable: Any = ctx.invoke(REF_DURABLE_TARGET, {"value": 1}, name="call-durable")
    plain: Any = ctx.invoke(REF_PLAIN_TARGET, {"value": 2}, name="call-plain")
    return {"durable": durable, "plain": plain}


def poll_until_ready(event: Any, ctx: DurableContext) -> dict[str, Any]:
    def strategy(state: dict[str, int], attempts: int) -> WaitForConditionDecision:
        if state["polls"] >= 3:
            return WaitForConditionDecision.stop_polling()
        return WaitForConditionDecision.continue_waiting(Duration.from_seconds(1))

    result: dict[str, Any] = ctx.wait_for_condition(
        lambda state, check: {"polls": state["polls"] + 1},
        WaitForConditionConfig(wait_strategy=strategy, initial_state={"polls": 0}),
        name="ready",
    )
    return result


def large_child_result(event: Any, ctx: DurableContext) -> dict[str, Any]:
    def chunk(index: int) -> Callable[[StepContext], str]:
        return lambda s: f"{index:04d}" + "x" * (100 * KIB)

    def build(child: DurableContext) -> list[str]:
        return [child.step(chunk(i), name=f"chunk-{i}") for i in range(3)]

    chunks = ctx.run_in_child_context(build, name="big")
    ctx.wait(Duration.from_seconds(1), name="after-big")
    return {"count": len(chunks), "head": chunks[2][:4]}


# -- what each is meant to do ------------------------------------------------


@dataclass(frozen=True)
class Workflow:
    """A workflow, its input, and the outcome it is meant to have.

    ``answer`` names what the outside world does while it runs:
    ``"succeed"`` or ``"fail"`` the callback ``callback`` (None: the
    first one), or nothing.
    """

    func: Any
    payload: Any = None
    status: str = "SUCCEEDED"
    result: Any = None
    error_type: str | None = None
    answer: str | None = None
    callback: str | None = None


WORKFLOWS: dict[str, Workflow] = {
    "steps": Workflow(
        steps_in_order,
        {"a": 2, "b": 3, "label": "x"},
        result={"total": 5, "doubled": 10, "text": "x=10"},
    ),
    "retry": Workflow(flaky_step, result={"succeeded_on": 3}),
    # The reference SDK reports a failed step as its own StepError.
    "step-failure": Workflow(
        failing_step,
        status="FAILED",
        error_type="aws_durable_execution_sdk_python.exceptions.StepError",
    ),
    "wait": Workflow(wait_between_steps, result=["before", "after"]),
    "child-contexts": Workflow(
        nested_children, result={"answer": 42, "child_failed": True}
    ),
    "parallel": Workflow(
        parallel_branches,
        result={
            "statuses": [
                BatchItemStatus.SUCCEEDED.value,
                BatchItemStatus.SUCCEEDED.value,
                BatchItemStatus.FAILED.value,
            ],
            "results": ["slow", "fast"],
        },
    ),
    "map": Workflow(
        map_items,
        {"items": [1, 2, 3, 4, 5]},
        result={"results": [1, 4, 9, 16, 25], "total": 5},
    ),
    "callback-success": Workflow(
        approval,
        result={"answer": {"approved": True}},
        answer="succeed",
        callback="approval",
    ),
    "callback-failure": Workflow(
        submit_and_wait,
        result={"failed": True, "message": "not today"},
        answer="fail",
        callback=None,
    ),
    "callback-timeout": Workflow(callback_times_out, result={"timed_out": True}),
    "invoke": Workflow(
        invoker,
        result={
            "durable": {"echo": 1, "from": "durable"},
            "plain": {"echo": 2, "from": "plain"},
        },
    ),
    "wait-for-condition": Workflow(poll_until_ready, result={"polls": 3}),
    "large-child-result": Workflow(
        large_child_result, result={"count": 3, "head": "0002"}
    ),
}
