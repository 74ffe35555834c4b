"""Cost per branch and per item of parallel and map on the embedded engine.

Runs, for NESTED and FLAT batches, on the in-memory engine (one
invocation each, nothing waits):

* a parallel of 1,000 branches of 2 steps, max_concurrency 8;
* a map over 1,000 items and one over 10,000, one step per item,
  max_concurrency 16;

and prints the time per branch or item (best and median of the rounds),
the peak number of threads during the run, and how the per-item cost of a
map grows from 1,000 to 10,000 items (1.00x is linear scaling).

Peak threads are counted exactly rather than sampled: while a case runs,
``threading.Thread.run`` is wrapped so that each thread counts itself in
when it starts running and out when it ends, and the peak of that count is
added to the threads already alive. A sampling watcher could miss a thread
that lives for less than its period, and would itself be counted.

    python tests/benchmarks/bench_batch.py [--rounds 3] [--sizes 1000,10000]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from durable_exec import (
    DurableContext,
    MapConfig,
    NestingType,
    ParallelConfig,
    durable_execution,
)
from durable_exec.local import LocalEngine

PARALLEL_BRANCHES = 1000
PARALLEL_LIMIT = 8
MAP_LIMIT = 16


class ThreadPeak:
    """The most threads alive at once while the hook is installed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live = 0
        self._peak_live = 0
        self._baseline = 0

    @contextmanager
    def installed(self) -> Iterator[None]:
        real_run = threading.Thread.run
        peak = self

        def run(thread: threading.Thread) -> None:
            with peak._lock:
                peak._live += 1
                peak._peak_live = max(peak._peak_live, peak._live)
            try:
                real_run(thread)
            finally:
                with peak._lock:
                    peak._live -= 1

        self._live = self._peak_live = 0
        self._baseline = threading.active_count()
        threading.Thread.run = run  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            threading.Thread.run = real_run  # type: ignore[method-assign]

    @property
    def peak(self) -> int:
        return self._baseline + self._peak_live


def parallel_handler(nesting: NestingType) -> Any:
    def branch(index: int) -> Callable[[DurableContext], int]:
        def run(ctx: DurableContext) -> int:
            first = ctx.step(lambda _: index, name="first")
            return ctx.step(lambda _: first + 1, name="second")

        return run

    branches = [branch(index) for index in range(PARALLEL_BRANCHES)]

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> int:
        batch = ctx.parallel(
            branches,
            config=ParallelConfig(max_concurrency=PARALLEL_LIMIT, nesting=nesting),
        )
        return sum(batch.get_results())

    expected = sum(index + 1 for index in range(PARALLEL_BRANCHES))
    return handler, PARALLEL_BRANCHES, expected


def map_handler(nesting: NestingType, size: int) -> Any:
    def item(ctx: DurableContext, value: int, index: int, items: Any) -> int:
        return ctx.step(lambda _: value * 2, name="double")

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> int:
        batch = ctx.map(
            list(range(size)),
            item,
            config=MapConfig(max_concurrency=MAP_LIMIT, nesting=nesting),
        )
        return sum(batch.get_results())

    return handler, size, size * (size - 1)


def measure(case: Any, rounds: int) -> tuple[list[float], int]:
    """Seconds per branch or item for each round, and the peak threads."""
    handler, count, expected = case
    samples: list[float] = []
    peak = 0
    for _ in range(rounds):
        probe = ThreadPeak()
        with LocalEngine.in_memory() as engine, probe.installed():
            started = time.perf_counter()
            outcome = engine.run(handler, None)
            elapsed = time.perf_counter() - started
        if outcome.result != expected:
            raise SystemExit(
                f"wrong result {outcome.result!r} ({outcome.status}, "
                f"{outcome.error}), expected {expected}"
            )
        samples.append(elapsed / count)
        peak = max(peak, probe.peak)
    return samples, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--sizes",
        default="1000,10000",
        help="map sizes, comma-separated; growth is last over first",
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    print(
        f"in-memory engine, best of {args.rounds} round(s); "
        f"{threading.active_count()} thread(s) alive before the runs"
    )
    header = (
        f"{'case':<34} {'nesting':<7} {'best us/unit':>13} "
        f"{'median':>9} {'peak threads':>13}"
    )
    print(header)
    print("-" * len(header))

    growth: dict[NestingType, float] = {}
    for nesting in NestingType:
        cases = [
            (
                f"parallel {PARALLEL_BRANCHES:,} x 2 steps, mc {PARALLEL_LIMIT}",
                parallel_handler(nesting),
            )
        ]
        for size in sizes:
            cases.append(
                (f"map {size:,} x 1 step, mc {MAP_LIMIT}", map_handler(nesting, size))
            )
        per_item: list[float] = []
        for label, case in cases:
            samples, peak = measure(case, args.rounds)
            if label.startswith("map"):
                per_item.append(min(samples))
            print(
                f"{label:<34} {nesting.value:<7} {min(samples) * 1e6:13.1f} "
                f"{statistics.median(samples) * 1e6:9.1f} {peak:13d}"
            )
        if len(per_item) > 1:
            growth[nesting] = per_item[-1] / per_item[0]

    if growth:
        print()
        print(
            f"per-item cost growth, map of {sizes[0]:,} -> {sizes[-1]:,} "
            "(1.00x = linear):"
        )
        for nesting, ratio in growth.items():
            print(f"  {nesting.value:<7} {ratio:5.2f}x")


if __name__ == "__main__":
    main()
