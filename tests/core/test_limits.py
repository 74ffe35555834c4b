"""Payload limits are enforced before anything reaches the service."""

from __future__ import annotations

from typing import Any

from durable_exec import DurableContext, ValidationError, durable_execution
from durable_exec.local import LocalEngine


def test_invoke_payload_over_one_mebibyte_is_refused_before_checkpoint() -> None:
    """An oversized invoke payload raises ValidationError; nothing is started."""

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> str:
        try:
            ctx.invoke("target", "x" * (1024 * 1024), name="big")
        except ValidationError as error:
            return str(error)
        return "invoked"

    with LocalEngine.in_memory() as engine:
        engine.register("target", lambda event, context: event)
        outcome = engine.run(handler, None)

    assert outcome.succeeded
    assert "big" in outcome.result and "1,048,578 bytes" in outcome.result
    types = [event["EventType"] for event in outcome.history]
    assert "ChainedInvokeStarted" not in types


def test_result_too_large_even_to_checkpoint_fails_the_execution(
    monkeypatch: Any,
) -> None:
    """A result over the checkpoint limit fails with SerDesError, not a crash."""
    import durable_exec.handler as handler_module

    monkeypatch.setattr(handler_module, "MAX_CHECKPOINTED_RESULT_CHARS", 100)
    monkeypatch.setattr(handler_module, "MAX_RESULT_BYTES", 50)

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> str:
        return "r" * 200

    with LocalEngine.in_memory() as engine:
        outcome = engine.run(handler, None)

    assert outcome.status.value == "FAILED"
    assert outcome.error is not None
    assert outcome.error.error_type == "SerDesError"
    assert "202 characters" in (outcome.error.error_message or "")
