"""Per-step cost of a workflow with the engine in-process vs over HTTP.

Runs the same workflow — N sequential steps in one invocation — twice in
one process, side by side, and prints the time per step (best and median
of several rounds) and the ratio between the two:

* in-process: ``LocalEngine`` runs the handler, and the SDK calls the
  engine directly (``LocalServiceClient``);
* HTTP: ``DurableExecutionServer`` runs the handler, invoked with boto3's
  ``invoke``, and the SDK calls the engine through boto3 and the server's
  REST API (``BotoServiceClient``), as on Lambda.

Both keep executions in memory, so the difference is the wire: boto3's
serialization and signing, a loopback round trip, and the server's
parsing and checks, once per checkpoint.

    python tests/benchmarks/bench_http.py [--steps 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from durable_exec import DurableContext, durable_execution
from durable_exec.local import DurableExecutionServer, LocalEngine


def make_handler(steps: int):  # type: ignore[no-untyped-def]
    @durable_execution
    def handler(event: object, ctx: DurableContext) -> int:
        total = 0
        for index in range(steps):
            total += ctx.step(lambda _, i=index: i, name="add")
        return total

    return handler


def check(result: Any, steps: int) -> None:
    expected = steps * (steps - 1) // 2
    if result != expected:
        raise SystemExit(f"wrong result {result!r}, expected {expected}")


def in_process(steps: int) -> float:
    with LocalEngine.in_memory() as engine:
        engine.register("bench", make_handler(steps))
        started = time.perf_counter()
        outcome = engine.run("bench", None)
        elapsed = time.perf_counter() - started
    check(outcome.result, steps)
    return elapsed / steps


def over_http(steps: int) -> float:
    with DurableExecutionServer(
        {"bench": make_handler(steps)}, sdk_over_http=True
    ) as server:
        client = server.lambda_client()
        started = time.perf_counter()
        reply = client.invoke(FunctionName="bench", Payload=b"null")
        result = json.loads(reply["Payload"].read())
        elapsed = time.perf_counter() - started
        checkpoints = sum(
            1
            for event in server.local.history(reply["DurableExecutionArn"])
            if event["EventType"] == "StepSucceeded"
        )
    check(result, steps)
    if checkpoints != steps:
        raise SystemExit(f"{checkpoints} steps recorded, expected {steps}")
    return elapsed / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    # One warm-up of each: imports, botocore's model, the first client.
    in_process(10)
    over_http(10)

    local: list[float] = []
    http: list[float] = []
    for _ in range(args.rounds):
        local.append(in_process(args.steps))
        http.append(over_http(args.steps))

    def show(label: str, samples: list[float]) -> None:
        print(
            f"{label:<11} best {min(samples) * 1e6:8.1f} us/step   "
            f"median {statistics.median(samples) * 1e6:8.1f} us/step"
        )

    print(f"{args.steps} sequential steps, {args.rounds} rounds each")
    show("in-process", local)
    show("http", http)
    print(f"http / in-process (best): {min(http) / min(local):.1f}x")
    print(
        "http / in-process (median): "
        f"{statistics.median(http) / statistics.median(local):.1f}x"
    )


if __name__ == "__main__":
    main()
