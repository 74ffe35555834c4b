"""Runs one invocation in a fresh process: ``python -m`` this module.

The parent engine writes a job to standard input: the SQLite store, the
handler to load, the envelope, and the clock. The invocation talks to an
engine over the same store file, and writes the handler's reply to the
job's output file. If this process dies first, there is no output, and the
parent records the crash as Lambda would.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from ._client import LocalServiceClient
from ._clock import Clock, RealClock, SkippingClock
from ._engine import Engine
from ._runner import capture_logs, load_handler
from ._store import SqliteStore


def main() -> int:
    job: dict[str, Any] = json.load(sys.stdin)
    # The invocation's log lines and printed JSON lines go to the parent's
    # log file, in the order they were written.
    capture = (
        capture_logs(Path(job["log_file"]))
        if job.get("log_file")
        else contextlib.nullcontext()
    )

    offset = job.get("clock_offset")
    clock: Clock = SkippingClock(offset) if offset is not None else RealClock()
    store = SqliteStore(job["store"])
    engine = Engine(store, clock=clock, page_size=job.get("page_size", 1000))
    # Each registered function with its execution timeout.
    functions: dict[str, int] = job.get("functions", {})
    engine.function_exists = functions.__contains__
    engine.execution_timeout_of = functions.__getitem__
    client = LocalServiceClient(engine)
    try:
        handler_ = load_handler(job["handler"])
        with capture:
            output = handler_.invoke(job["event"], None, client=client)
        result: dict[str, Any] = {"output": output}
    except Exception as error:
        result = {
            "error": {
                "ErrorType": type(error).__name__,
                "ErrorMessage": str(error),
            }
        }
    finally:
        store.close()
    with open(job["output"], "w", encoding="utf-8") as file:
        json.dump(result, file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
