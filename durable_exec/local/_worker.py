"""Runs one invocation in a fresh process: ``python -m`` this module.

The parent engine writes a job to standard input: the SQLite store, the
handler to load, the envelope, and the clock. The invocation talks to an
engine over the same store file, and writes the handler's reply to the
job's output file. If this process dies first, there is no output, and the
parent records the crash as Lambda would.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from .._logger import JsonLogFormatter, WORKFLOW_LOGGER_NAME
from ._client import LocalServiceClient
from ._clock import Clock, RealClock, SkippingClock
from ._engine import Engine
from ._runner import load_handler
from ._store import SqliteStore


def main() -> int:
    job: dict[str, Any] = json.load(sys.stdin)
    if job.get("log_file"):
        handler = logging.FileHandler(job["log_file"], encoding="utf-8")
        handler.setFormatter(JsonLogFormatter())
        workflow = logging.getLogger(WORKFLOW_LOGGER_NAME)
        workflow.addHandler(handler)
        workflow.setLevel(logging.INFO)

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
