"""Per-step cost of a 1,000-step workflow on the embedded engine.

Runs the same workflow — N sequential steps in one invocation — on the
in-memory engine and on the SQLite engine, side by side in one process,
and prints the time per step (best of several rounds) and the ratio
between the two. Each step is checkpointed as the service would see it:
a START and a SUCCEED, each acknowledged before the step returns.

    python tests/benchmarks/bench_steps.py [--steps 1000] [--rounds 5]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
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


if __name__ == "__main__":
    main()
