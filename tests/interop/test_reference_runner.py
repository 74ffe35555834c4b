"""Our handlers on the AWS reference local runner, over HTTP.

The runner (``aws-durable-execution-sdk-python-testing``) is a service
implementation we did not write: it invokes our handlers through a Lambda
``Invoke`` endpoint, takes their checkpoints through our
``BotoServiceClient`` on boto3, and validates every checkpoint it gets
(batch rules, stored metadata, allowed actions and transitions). Each test
runs a workflow to the end on it and checks the result, the history the
runner recorded, and that no request of ours was refused.

Where the runner differs from the real service, the harness adapts, not
the SDK (SERVICE.md, section 9):

- Executions are started with the runner's own ``POST
  /start-durable-execution``; the real service starts one when a durable
  function is invoked.
- Its ARNs are ``<uuid>/<uuid>``, not Lambda ARNs; the SDK takes the
  EXECUTION operation from the state, not from the ARN.
- Its error bodies carry ``Type`` and no ``x-amzn-ErrorType`` header, so
  botocore reports the code ``"400"``; the stale-token test below pins
  that our client still recognises the token error by its message.
- History defaults to ``IncludeExecutionData`` false; the harness asks for
  the data.
- Callback ids come from ``CallbackStarted`` events in the history.
- ``--skip-time`` makes waits and retry delays fire at once, while the
  history keeps their modeled durations; callback timeouts still take
  real time, so the one test of them waits 1 s.
- The runner refuses a bad invocation output (such as PENDING with
  nothing pending) only in its log, and invokes again after 5 s; the
  harness reads that log and fails the test.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from interop_harness import (
    DURABLE_TARGET,
    PLAIN_TARGET,
    LambdaEndpoint,
    ReferenceRunner,
    Run,
    WireLog,
    serve,
)

from durable_exec import (
    BatchItemStatus,
    BatchResult,
    CallbackConfig,
    CallbackError,
    CallbackTimeoutError,
    ChildContextError,
    CompletionConfig,
    DurableContext,
    InvokeError,
    MapConfig,
    NestingType,
    ParallelBranch,
    ParallelConfig,
    RetryPresets,
    RetryStrategy,
    StepConfig,
    StepContext,
    StepError,
    StepSemantics,
    WaitForCallbackConfig,
    WaitForConditionConfig,
    WaitStrategy,
    durable_execution,
)
from durable_exec.errors import CheckpointError, InvalidCheckpointTokenError
from durable_exec.handler import parse_envelope
from durable_exec.service import BotoServiceClient
from durable_exec.wire import (
    OperationAction,
    OperationSubType,
    OperationType,
    OperationUpdate,
    WaitOptions,
)

NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())


class Flaky(Exception):
    """What a step raises on the attempts meant to fail."""


def operation_events(outcome: Any) -> list[tuple[str, str | None]]:
    """``(EventType, Name)`` of the events about operations.

    Where the runner's InvocationCompleted falls against a wait that
    fires while the invocation ends is a race under ``--skip-time``.
    """
    return [
        event
        for event in outcome.summary()
        if not event[0].startswith(("Execution", "Invocation"))
    ]


# -- steps -------------------------------------------------------------------


@durable_execution
def steps_in_order(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    total = ctx.step(lambda s: event["a"] + event["b"], name="add")
    doubled = ctx.step(lambda s: total * 2, name="double")
    text = ctx.step(lambda s: f"{event['label']}={doubled}", name="format")
    return {"total": total, "doubled": doubled, "text": text}


def test_steps_return_their_results(run: Run) -> None:
    """Three steps succeed in order and the execution returns their results."""
    outcome = run(steps_in_order, {"a": 2, "b": 3, "label": "x"})

    assert outcome.status == "SUCCEEDED"
    assert outcome.result == {"total": 5, "doubled": 10, "text": "x=10"}
    assert operation_events(outcome) == [
        ("StepStarted", "add"),
        ("StepSucceeded", "add"),
        ("StepStarted", "double"),
        ("StepSucceeded", "double"),
        ("StepStarted", "format"),
        ("StepSucceeded", "format"),
    ]
    succeeded = outcome.of_type("StepSucceeded")
    assert succeeded[2]["StepSucceededDetails"]["Result"]["Payload"] == '"x=10"'
    assert (
        outcome.of_type("ExecutionSucceeded")[0]["ExecutionSucceededDetails"]["Result"][
            "Payload"
        ]
        == outcome.result_text
    )


def retry_twice() -> RetryStrategy:
    return RetryStrategy.exponential(
        max_attempts=3, initial_delay=1, max_delay=1, jitter="NONE"
    )


@durable_execution
def flaky_step(event: Any, ctx: DurableContext) -> dict[str, Any]:
    def attempt(step: StepContext) -> int:
        if step.attempt < 3:
            raise Flaky(f"attempt {step.attempt} fails")
        return step.attempt

    succeeded_on = ctx.step(
        attempt, name="flaky", config=StepConfig(retry_strategy=retry_twice())
    )
    return {"succeeded_on": succeeded_on}


def test_step_retries_until_it_succeeds(run: Run) -> None:
    """A step that fails twice is retried after its delay and then succeeds."""
    outcome = run(flaky_step)

    assert outcome.status == "SUCCEEDED"
    assert outcome.result == {"succeeded_on": 3}
    failed = outcome.of_type("StepFailed")
    assert [e["StepFailedDetails"]["RetryDetails"] for e in failed] == [
        {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 1},
        {"CurrentAttempt": 2, "NextAttemptDelaySeconds": 1},
    ]
    assert failed[0]["StepFailedDetails"]["Error"]["Payload"]["ErrorType"] == "Flaky"
    # Each retry suspends the invocation; the runner invokes again.
    assert len(outcome.of_type("InvocationCompleted")) >= 3


@durable_execution
def failing_step(event: Any, ctx: DurableContext) -> None:
    def boom(step: StepContext) -> None:
        raise ValueError("the order is invalid")

    ctx.step(boom, name="validate", config=NO_RETRY)


def test_failed_step_fails_the_execution(run: Run) -> None:
    """A step that fails without retry fails the execution with its error."""
    outcome = run(failing_step)

    assert outcome.status == "FAILED"
    assert outcome.error is not None
    assert outcome.error["ErrorType"] == "ValueError"
    assert outcome.error["ErrorMessage"] == "the order is invalid"
    step_failed = outcome.of_type("StepFailed")
    assert len(step_failed) == 1
    error = step_failed[0]["StepFailedDetails"]["Error"]["Payload"]
    assert error["ErrorType"] == "ValueError"
    assert error["ErrorMessage"] == "the order is invalid"


@durable_execution
def caught_step_failure(event: Any, ctx: DurableContext) -> dict[str, Any]:
    def boom(step: StepContext) -> None:
        raise KeyError("sku-17")

    try:
        ctx.step(boom, name="lookup", config=NO_RETRY)
    except StepError as error:
        return {"type": error.error_type, "message": error.error_message}
    return {}


def test_caught_step_failure_lets_the_execution_succeed(run: Run) -> None:
    """User code that catches a StepError goes on, on replay as well."""
    outcome = run(caught_step_failure)

    assert outcome.status == "SUCCEEDED"
    assert outcome.result == {"type": "KeyError", "message": "'sku-17'"}


@durable_execution
def at_most_once(event: Any, ctx: DurableContext) -> str:
    config = StepConfig(semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY)
    value: str = ctx.step(lambda s: "charged", name="charge", config=config)
    ctx.wait(1, name="settle")
    return value


def test_at_most_once_step_checkpoints_start_first(run: Run, wire: WireLog) -> None:
    """An at-most-once step's START is accepted before its code runs, in a
    checkpoint before the one with its SUCCEED."""
    outcome = run(at_most_once)

    assert outcome.status == "SUCCEEDED"
    assert outcome.result == "charged"
    charge = [
        (number, update["Action"])
        for number, call in enumerate(wire.checkpoints(outcome.arn))
        for update in call.request["Updates"]
        if update.get("Name") == "charge"
    ]
    assert [action for _, action in charge] == ["START", "SUCCEED"]
    assert charge[0][0] < charge[1][0]


# -- waits -------------------------------------------------------------------


@durable_execution
def wait_between_steps(event: Any, ctx: DurableContext) -> list[str]:
    first: str = ctx.step(lambda s: "before", name="first")
    ctx.wait(1, name="pause")
    second: str = ctx.step(lambda s: "after", name="second")
    return [first, second]


def test_wait_suspends_and_resumes(run: Run) -> None:
    """A wait suspends the invocation; the next one replays and goes on."""
    outcome = run(wait_between_steps)

    assert outcome.status == "SUCCEEDED"
    assert outcome.result == ["before", "after"]
    assert operation_events(outcome) == [
        ("StepStarted", "first"),
        ("StepSucceeded", "first"),
        ("WaitStarted", "pause"),
        ("WaitSucceeded", "pause"),
        ("StepStarted", "second"),
        ("StepSucceeded", "second"),
    ]
    assert len(outcome.of_type("InvocationCompleted")) == 2
    started = outcome.of_type("WaitStarted")[0]["WaitStartedDetails"]
    assert started["Duration"] == 1


@durable_execution
def many_waits(event: Any, ctx: DurableContext) -> int:
    for index in range(3):
        ctx.wait(1, name=f"wait-{index}")
    return 3


def test_consecutive_waits(run: Run) -> None:
    """Three waits in a row take three suspensions and end in success."""
    outcome = run(many_waits)

    assert outcome.status == "SUCCEEDED"
    assert outcome.result == 3
    assert len(outcome.of_type("WaitSucceeded")) == 3
    assert len(outcome.of_type("InvocationCompleted")) == 4


# -- child contexts ----------------------------------------------------------


@durable_execution
def nested_children(event: Any, ctx: DurableContext) -> dict[str, Any]:
    def inner(child: DurableContext) -> int:
        child.wait(1, name="inner-wait")
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
    except ChildContextError as error:
        return {"answer": answer, "child_error": error.error_message}
    return {"answer": answer}


def test_nested_child_contexts(run: Run) -> None:
    """Children nest, suspend inside, and a failed child is catchable."""
    outcome = run(nested_children)

    assert outcome.status == "SUCCEEDED"
    assert outcome.result == {"answer": 42, "child_error": "the child gives up"}
    by_name = {e.get("Name"): e for e in outcome.events}
    assert by_name["inner"]["ParentId"] == by_name["outer"]["Id"]
    assert by_name["inner-step"]["ParentId"] == by_name["inner"]["Id"]
    assert by_name["inner"]["SubType"] == "RunInChildContext"
    failed = outcome.of_type("ContextFailed")
    assert [e["Name"] for e in failed] == ["failing"]


# -- parallel and map --------------------------------------------------------


@durable_execution
def parallel_branches(event: Any, ctx: DurableContext) -> dict[str, Any]:
    def slow(child: DurableContext) -> str:
        first: str = child.step(lambda s: "sl", name="slow-first")
        return child.step(lambda s: first + "ow", name="slow-step")

    def fast(child: DurableContext) -> str:
        return child.step(lambda s: "fast", name="fast-step")

    def broken(child: DurableContext) -> str:
        child.step(lambda s: None, name="broken-step")
        raise RuntimeError("branch broke")

    batch: BatchResult[str] = ctx.parallel(
        [
            ParallelBranch("slow", slow),
            ParallelBranch("fast", fast),
            ParallelBranch("broken", broken),
        ],
        name="fan-out",
        config=ParallelConfig(completion=CompletionConfig.all_completed()),
    )
    return {
        "statuses": [item.status.value for item in batch.all],
        "results": [item.result for item in batch.succeeded()],
        "errors": [error.error_message for error in batch.get_errors()],
    }


def test_parallel_reports_every_branch(run: Run) -> None:
    """Branches run concurrently and one fails; all are reported."""
    outcome = run(parallel_branches)

    assert outcome.status == "SUCCEEDED"
    assert outcome.result == {
        "statuses": [
            BatchItemStatus.SUCCEEDED.value,
            BatchItemStatus.SUCCEEDED.value,
            BatchItemStatus.FAILED.value,
        ],
        "results": ["slow", "fast"],
        "errors": ["branch broke"],
    }
    by_name = {e.get("Name"): e for e in outcome.events if e.get("Name")}
    assert by_name["fan-out"]["SubType"] == "Parallel"
    for branch in ("slow", "fast", "broken"):
        assert by_name[branch]["SubType"] == "ParallelBranch"
        assert by_name[branch]["ParentId"] == by_name["fan-out"]["Id"]


def square(ctx: DurableContext, item: int, index: int, items: Any) -> int:
    return ctx.step(lambda s: item * item, name=f"square-{index}")


@durable_execution
def map_items(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    nesting = NestingType(event["nesting"])
    batch = ctx.map(
        event["items"],
        square,
        name="squares",
        config=MapConfig(max_concurrency=2, nesting=nesting),
    )
    batch.throw_if_error()
    ctx.wait(1, name="after-map")
    return {"results": batch.get_results(), "total": batch.total_count}


@pytest.mark.parametrize("nesting", ["NESTED", "FLAT"])
def test_map_over_items(run: Run, nesting: str) -> None:
    """Map runs every item, two at a time, nested or flat, keeps order, and
    replays from its checkpoints after a suspension."""
    outcome = run(map_items, {"items": [1, 2, 3, 4, 5], "nesting": nesting})

    assert outcome.status == "SUCCEEDED"
    assert outcome.result == {"results": [1, 4, 9, 16, 25], "total": 5}
    squares = outcome.named("squares")
    assert squares[0]["SubType"] == "Map"
    iterations = [
        e
        for e in outcome.of_type("ContextStarted")
        if e.get("SubType") == "MapIteration"
    ]
    assert len(iterations) == (5 if nesting == "NESTED" else 0)


@durable_execution
def map_in_batches(event: Any, ctx: DurableContext) -> list[int]:
    batch = ctx.map(
        list(range(7)),
        lambda c, item, index, items: c.step(
            lambda s: item + 100, name=f"plus-{index}"
        ),
        name="batched",
        config=MapConfig(batch_size=3),
    )
    batch.throw_if_error()
    return batch.get_results()


def wait_has_fired(
    runner: ReferenceRunner, arn: str, name: str, timeout: float = 10
) -> bool:
    """Block until the runner's history shows the wait ``name`` done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = runner.history(arn)
        if any(
            e["EventType"] == "WaitSucceeded" and e.get("Name") == name for e in events
        ):
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("kind", ["parallel", "map"])
def test_suspended_branch_resumes_when_its_wait_completes(
    run: Run, reference_runner: ReferenceRunner, kind: str
) -> None:
    """A branch waiting on a wait that completes while the invocation still
    runs is resumed in that invocation, not left for another.

    Branch 0 waits 1 s and suspends. Branch 1's step blocks until the
    runner has fired that wait (at once, under ``--skip-time``), so the
    reply to the step's SUCCEED checkpoint carries the WAIT as SUCCEEDED.
    The service owes no new invocation for a completion it has delivered
    (SERVICE.md, section 5), so the handler must finish the batch itself;
    returning PENDING there is PENDING with nothing pending, which the
    runner refuses ("Cannot return PENDING status with no pending
    operations") and retries after its 5 s backoff.
    """

    def waits(child: DurableContext) -> str:
        child.wait(1, name="branch-wait")
        return "waited"

    def blocks_until_fired(child: DurableContext) -> str:
        arn = child.durable_execution_arn
        fired = child.step(
            lambda s: wait_has_fired(reference_runner, arn, "branch-wait"),
            name="until-fired",
        )
        return "fired" if fired else "timed out"

    @durable_execution
    def race(event: Any, ctx: DurableContext) -> list[str]:
        if kind == "parallel":
            batch = ctx.parallel([waits, blocks_until_fired], name="race")
        else:
            batch = ctx.map(
                [waits, blocks_until_fired],
                lambda c, body, index, items: body(c),
                name="race",
            )
        return batch.get_results()

    outcome = run(race)

    assert outcome.status == "SUCCEEDED"
    assert outcome.result == ["waited", "fired"]
    assert len(outcome.of_type("InvocationCompleted")) == 1


def test_map_with_batches(run: Run) -> None:
    """Items grouped three to a child context still come back in order."""
    outcome = run(map_in_batches)

    assert outcome.status == "SUCCEEDED"
    assert outcome.result == [100 + index for index in range(7)]


# -- callbacks ---------------------------------------------------------------


@durable_execution
def approval(event: Any, ctx: DurableContext) -> dict[str, Any]:
    callback = ctx.create_callback(name="approval", config=CallbackConfig(timeout=300))
    answer = callback.result()
    return {"answer": answer, "callback_id_len": len(callback.callback_id)}


def test_callback_answered_with_success(
    run: Run, reference_runner: ReferenceRunner
) -> None:
    """A callback answered through the callback API returns the answer."""

    def answer(arn: str) -> None:
        callback_id = reference_runner.callback_id(arn, "approval")
        reference_runner.client.send_durable_execution_callback_success(
            CallbackId=callback_id,
            Result=json.dumps({"approved": True, "by": "ops"}).encode(),
        )

    outcome = run(approval, answer=answer)

    assert outcome.status == "SUCCEEDED"
    assert outcome.result["answer"] == {"approved": True, "by": "ops"}
    succeeded = outcome.of_type("CallbackSucceeded")
    assert succeeded[0]["CallbackSucceededDetails"]["Result"]["Payload"] == (
        '{"approved": true, "by": "ops"}'
    )


@durable_execution
def submit_and_wait(event: Any, ctx: DurableContext) -> dict[str, Any]:
    submitted: list[str] = []

    def submit(callback_id: str, step: StepContext) -> None:
        submitted.append(callback_id)

    try:
        ctx.wait_for_callback(
            submit,
            name="review",
            config=WaitForCallbackConfig(
                timeout=300, retry_strategy=RetryPresets.none()
            ),
        )
    except CallbackError as error:
        return {"error_type": error.error_type, "message": error.error_message}
    return {"error_type": None}


def test_wait_for_callback_answered_with_failure(
    run: Run, reference_runner: ReferenceRunner
) -> None:
    """A failure sent to a wait_for_callback raises CallbackError."""

    def answer(arn: str) -> None:
        callback_id = reference_runner.callback_id(arn, None)
        reference_runner.client.send_durable_execution_callback_failure(
            CallbackId=callback_id,
            Error={"ErrorType": "RejectedError", "ErrorMessage": "not today"},
        )

    outcome = run(submit_and_wait, answer=answer)

    assert outcome.status == "SUCCEEDED"
    assert outcome.result == {"error_type": "RejectedError", "message": "not today"}
    review = outcome.named("review")
    assert review[0]["SubType"] == "WaitForCallback"
    failed = outcome.of_type("CallbackFailed")
    assert failed[0]["ParentId"] == review[0]["Id"]


@durable_execution
def callback_times_out(event: Any, ctx: DurableContext) -> dict[str, Any]:
    callback = ctx.create_callback(name="never", config=CallbackConfig(timeout=1))
    try:
        callback.result()
    except CallbackTimeoutError as error:
        return {"error_type": error.error_type}
    return {"error_type": None}


def test_callback_timeout(run: Run) -> None:
    """A callback nobody answers times out with Callback.Timeout.

    ``--skip-time`` does not cover callback timeouts: this one takes its
    1 s of real time.
    """
    outcome = run(callback_times_out)

    assert outcome.status == "SUCCEEDED"
    assert outcome.result == {"error_type": "Callback.Timeout"}
    assert len(outcome.of_type("CallbackTimedOut")) == 1


# -- chained invoke ----------------------------------------------------------


@durable_execution
def durable_target(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    ctx.wait(1, name="target-wait")
    return {"echo": event["value"], "from": "durable"}


def plain_target(payload: Any, lambda_context: Any) -> dict[str, Any]:
    return {"echo": payload["value"], "from": "plain"}


@durable_execution
def invoker(event: Any, ctx: DurableContext) -> dict[str, Any]:
    durable = ctx.invoke(DURABLE_TARGET, {"value": 1}, name="call-durable")
    plain = ctx.invoke(PLAIN_TARGET, {"value": 2}, name="call-plain")
    try:
        ctx.invoke(PLAIN_TARGET, {"value": None, "fail": True}, name="call-failing")
    except InvokeError as error:
        failure = error.error_type
    return {"durable": durable, "plain": plain, "failure": failure}


def failing_plain_target(payload: Any, lambda_context: Any) -> Any:
    if payload.get("fail"):
        raise LookupError("no such value")
    return plain_target(payload, lambda_context)


def test_chained_invokes(
    run: Run,
    endpoint: LambdaEndpoint,
    service_client: BotoServiceClient,
) -> None:
    """Invokes of a durable and a plain function return their results."""
    serve(endpoint, DURABLE_TARGET, durable_target, service_client)
    endpoint.plain(PLAIN_TARGET, failing_plain_target)

    outcome = run(invoker)

    assert outcome.status == "SUCCEEDED"
    assert outcome.result == {
        "durable": {"echo": 1, "from": "durable"},
        "plain": {"echo": 2, "from": "plain"},
        "failure": "LookupError",
    }
    started = outcome.of_type("ChainedInvokeStarted")
    assert [e["Name"] for e in started] == [
        "call-durable",
        "call-plain",
        "call-failing",
    ]
    assert started[0]["ChainedInvokeStartedDetails"]["FunctionName"] == DURABLE_TARGET


# -- wait for condition ------------------------------------------------------


@durable_execution
def poll_until_ready(event: Any, ctx: DurableContext) -> dict[str, Any]:
    state = ctx.wait_for_condition(
        lambda state, step: {"polls": state["polls"] + 1},
        WaitForConditionConfig(
            wait_strategy=WaitStrategy.fixed(
                1, until=lambda state: state["polls"] >= 3, max_attempts=10
            ),
            initial_state={"polls": 0},
        ),
        name="ready",
    )
    result: dict[str, Any] = state
    return result


def test_wait_for_condition_polls_with_state(run: Run) -> None:
    """Each check's state survives the suspension between checks."""
    outcome = run(poll_until_ready)

    assert outcome.status == "SUCCEEDED"
    assert outcome.result == {"polls": 3}
    ready = outcome.named("ready")
    assert {e["SubType"] for e in ready} == {"WaitForCondition"}
    assert len(outcome.of_type("StepSucceeded")) == 3


# -- sizes and paging --------------------------------------------------------

KIB = 1024


@durable_execution
def large_child_result(event: Any, ctx: DurableContext) -> dict[str, Any]:
    def chunk(index: int) -> Callable[[StepContext], str]:
        return lambda s: f"{index:04d}" + "x" * (100 * KIB)

    def build(child: DurableContext) -> list[str]:
        return [child.step(chunk(i), name=f"chunk-{i}") for i in range(3)]

    chunks = ctx.run_in_child_context(build, name="big")
    ctx.wait(1, name="after-big")
    return {
        "count": len(chunks),
        "sizes": [len(c) for c in chunks],
        "head": chunks[2][:4],
    }


def test_large_child_result_is_rebuilt_on_replay(run: Run, wire: WireLog) -> None:
    """A child result over 256 KiB is checkpointed with ReplayChildren set."""
    outcome = run(large_child_result)

    assert outcome.status == "SUCCEEDED"
    assert outcome.result == {"count": 3, "sizes": [100 * KIB + 4] * 3, "head": "0002"}
    updates = [
        update
        for call in wire.checkpoints(outcome.arn)
        for update in call.request["Updates"]
    ]
    big_succeed = [
        u for u in updates if u.get("Name") == "big" and u["Action"] == "SUCCEED"
    ]
    assert big_succeed[0]["ContextOptions"] == {"ReplayChildren": True}
    assert len(big_succeed[0].get("Payload", "")) < KIB


@durable_execution
def many_large_steps(event: Any, ctx: DurableContext) -> int:
    total = 0
    for index in range(28):
        chunk: str = ctx.step(lambda s: "y" * (200 * KIB), name=f"chunk-{index}")
        total += len(chunk)
    ctx.wait(1, name="then-replay")
    return total


def test_state_over_one_page_is_fetched(run: Run, wire: WireLog) -> None:
    """State past the runner's 5 MiB first page is read with GetState."""
    outcome = run(many_large_steps, timeout=120)

    assert outcome.status == "SUCCEEDED"
    assert outcome.result == 28 * 200 * KIB
    reads = [c for c in wire.calls(outcome.arn) if c.api == "GetDurableExecutionState"]
    assert reads, "the replay should have read a second page of state"


@durable_execution
def oversized_result(event: Any, ctx: DurableContext) -> str:
    ctx.step(lambda s: "ok", name="warm-up")
    # Over a Lambda response's 6 MiB - 50 bytes, yet within the 6,291,456
    # characters a checkpointed payload may hold, quotes included.
    return "z" * (6 * 1024 * KIB - 10)


def test_result_over_the_response_limit_is_checkpointed(
    run: Run, wire: WireLog
) -> None:
    """A result too large for Lambda's response goes in an EXECUTION SUCCEED."""
    outcome = run(oversized_result, timeout=120)

    assert outcome.status == "SUCCEEDED"
    assert outcome.result == "z" * (6 * 1024 * KIB - 10)
    last = wire.checkpoints(outcome.arn)[-1].request["Updates"]
    assert [(u["Type"], u["Action"]) for u in last] == [("EXECUTION", "SUCCEED")]


# -- the client's error mapping against the runner's real error bodies ------


def raw_client_checks(client: BotoServiceClient, findings: dict[str, Any]) -> Any:
    """A durable function, written without our decorator, that probes the
    runner with our client while its invocation is in flight."""

    def handler(event: Any, lambda_context: Any) -> dict[str, Any]:
        envelope = parse_envelope(event)
        arn, token = envelope.arn, envelope.token

        # An empty checkpoint spends the token and returns the next one.
        client_token = str(uuid.uuid4())
        first = client.checkpoint(arn, token, [], client_token=client_token)
        findings["next_token"] = bool(first.checkpoint_token)

        # The same ClientToken with the spent token: the cached reply.
        again = client.checkpoint(arn, token, [], client_token=client_token)
        findings["replayed_token_same"] = (
            again.checkpoint_token == first.checkpoint_token
        )

        # A spent token under a new ClientToken is refused as a token error.
        try:
            client.checkpoint(arn, token, [])
        except InvalidCheckpointTokenError as error:
            findings["stale"] = str(error)

        # An update the runner must reject: a WAIT whose parent is the
        # EXECUTION operation. A permanent refusal, not a token error.
        execution_id = envelope.operations[0].id
        bad = OperationUpdate(
            id="bad-wait",
            type=OperationType.WAIT,
            action=OperationAction.START,
            sub_type=OperationSubType.WAIT,
            parent_id=execution_id,
            wait_options=WaitOptions(wait_seconds=1),
        )
        try:
            client.checkpoint(arn, first.checkpoint_token or "", [bad])
        except InvalidCheckpointTokenError as error:
            findings["invalid_update"] = ("token error", str(error))
        except CheckpointError as error:
            findings["invalid_update"] = (error.retryable, str(error))

        # The token survives a refused checkpoint (all or none) and still
        # reads state.
        page = client.get_execution_state(arn, first.checkpoint_token or "")
        findings["state_types"] = [op.type.value for op in page.operations]
        return {"Status": "SUCCEEDED", "Result": json.dumps("probed")}

    return handler


def test_client_maps_the_runners_errors(
    endpoint: LambdaEndpoint,
    reference_runner: ReferenceRunner,
    service_client: BotoServiceClient,
    wire: WireLog,
) -> None:
    """Stale tokens, ClientToken replays and refusals map as on the service.

    The runner's error bodies carry ``Type`` with no ``x-amzn-ErrorType``
    header, so botocore reports the code ``"400"`` (SERVICE.md, section
    9); the client must still see a stale token for what it is.
    """
    findings: dict[str, Any] = {}
    endpoint.durable("interop-raw-probe", raw_client_checks(service_client, findings))

    arn = reference_runner.start("interop-raw-probe")
    outcome = reference_runner.wait(arn)

    assert outcome.status == "SUCCEEDED", findings
    assert findings["next_token"] is True
    assert findings["replayed_token_same"] is True
    assert "Invalid checkpoint token" in findings["stale"]
    retryable, message = findings["invalid_update"]
    assert retryable is False, message
    assert "HTTP 400" in message
    assert findings["state_types"] == ["EXECUTION"]
    refused = [
        call for call in wire.refused(arn) if call.api == "CheckpointDurableExecution"
    ]
    assert [call.response.get("Type") for call in refused] == [
        "InvalidParameterValueException",
        "InvalidParameterValueException",
    ]
