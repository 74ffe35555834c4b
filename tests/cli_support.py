"""What the command-line tests share: one call's outcome, and its error."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs


@attrs.frozen
class Outcome:
    """What one ``durable-exec`` call returned and printed."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Outcome]


def error_line(outcome: Outcome) -> str:
    """The one ``durable-exec: error:`` line of a refused call."""
    assert outcome.code == 2, outcome
    assert "Traceback" not in outcome.err
    lines = [
        line
        for line in outcome.err.splitlines()
        if line.startswith("durable-exec: error: ")
    ]
    assert len(lines) == 1, outcome.err
    return lines[0]
