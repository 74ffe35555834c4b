"""Per-step cost of a 1,000-step workflow on the embedded engine.

Runs the same workflow — N sequential steps in one invocation — on the
in-memory engine and on the SQLite engine, side by side in one process,
and prints the time per step (best of several rounds) and the ratio
between the two. Each step is checkpointed as the service would see it:
a START and a SUCCEED, each acknowledged before the step returns.

Where the AWS reference SDK and its local test runner are installed (the
``test`` extra brings them), the same workflow written with them runs too,
with fewer steps as it is slower, and its ratio to ours is printed.

    python tests/benchmarks/bench_steps.py [--steps 1000] [--rounds 5]
        [--reference-steps 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from durable_exec import DurableContext, durable_execution
from durable_exec.local import LocalEngine


def make_handler(steps: int):  # type: ignore[no-untyped-def]
    @durable_execution
    def handler(event: object, ctx: DurableContext) -> int:
        total = 0
        for index in range(steps):
            total += ctx.step(lambda _, i=index: i, name="add")
        return total

    return handler


def measure(engine: LocalEngine, steps: int) -> float:
    handler = make_handler(steps)
    started = time.perf_counter()
    outcome = engine.run(handler, None)
    elapsed = time.perf_counter() - started
    expected = steps * (steps - 1) // 2
    if outcome.result != expected:
        raise SystemExit(f"wrong result {outcome.result!r}, expected {expected}")
    return elapsed / steps


def measure_reference(steps: int) -> float | None:
    """Seconds per step of the reference SDK on its local runner."""
    try:
        from aws_durable_execution_sdk_python import (
            durable_execution as reference_execution,
        )
        from aws_durable_execution_sdk_python_testing import (
            DurableFunctionTestRunner,
        )
    except ImportError:
        return None

    @reference_execution  # type: ignore[misc]
    def handler(event: object, context: object) -> int:
        total = 0
        for index in range(steps):
            total += context.step(lambda _, i=index: i, name="add")  # type: ignore[attr-defined]
        return total

    runner = DurableFunctionTestRunner(handler=handler, poll_interval=0.01)
    try:
        started = time.perf_counter()
        result = runner.run(input="null", execution_timeout=600)
        elapsed = time.perf_counter() - started
    finally:
        runner.close()
    if str(result.result) != str(steps * (steps - 1) // 2):
        raise SystemExit(f"reference gave {result.result!r}")
    return elapsed / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reference-steps", type=int, default=200)
    args = parser.parse_args()

    memory: list[float] = []
    sqlite: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(args.rounds):
            with LocalEngine.in_memory() as engine:
                memory.append(measure(engine, args.steps))
            path = Path(scratch) / f"bench-{round_}.sqlite3"
            with LocalEngine(path, skip_time=True) as engine:
                sqlite.append(measure(engine, args.steps))

    def show(label: str, samples: list[float]) -> None:
        print(
            f"{label:<10} best {min(samples) * 1e6:8.1f} us/step   "
            f"median {statistics.median(samples) * 1e6:8.1f} us/step"
        )

    print(f"{args.steps} sequential steps, {args.rounds} rounds each")
    show("in-memory", memory)
    show("sqlite", sqlite)
    print(f"sqlite / in-memory (best): {min(sqlite) / min(memory):.2f}x")

    reference = measure_reference(args.reference_steps)
    if reference is None:
        print("reference SDK not installed; no side-by-side figure")
        return
    print(
        f"reference SDK, local runner, {args.reference_steps} steps: "
        f"{reference * 1e6:8.1f} us/step"
    )
    print(
        f"reference / ours: {reference / min(memory):.1f}x (in-memory), "
        f"{reference / min(sqlite):.1f}x (sqlite)"
    )


if __name__ == "__main__":
    main()
