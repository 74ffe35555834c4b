"""Hello, durable world: steps, a durable wait and a child context.

Run it on the embedded engine::

    durable-exec run samples/hello.py:handler --input '{"name": "Ada"}'

Each step's result is checkpointed. The wait suspends the execution: the
invocation ends, and the engine invokes the handler again two seconds
later. That second invocation replays the steps from their checkpoints
instead of running them, and goes on after the wait.
"""

from __future__ import annotations

from typing import Any

from durable_exec import DurableContext, Duration, StepContext, durable_execution


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    name = event.get("name", "world")

    greeting = context.step(lambda _: f"Hello, {name}!", name="greet")
    context.logger.info("greeted %s", name)

    # No process sits idle during the wait; replay brings the code back here.
    context.wait(Duration.from_seconds(2), name="pause")

    def count_letters(step: StepContext) -> int:
        return sum(character.isalpha() for character in name)

    def describe(child: DurableContext) -> dict[str, Any]:
        letters = child.step(count_letters, name="count-letters")
        shout = child.step(lambda _: greeting.upper(), name="shout")
        return {"letters": letters, "shout": shout}

    details = context.run_in_child_context(describe, name="describe")
    return {"greeting": greeting, **details}
