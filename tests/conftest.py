"""Fixtures shared by the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import Cli, Outcome

from durable_exec.cli import main


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A SQLite store path of the test's own."""
    return str(tmp_path / "store.sqlite3")


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Call ``durable-exec`` in process and capture what it printed."""

    def run(*argv: str) -> Outcome:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run
