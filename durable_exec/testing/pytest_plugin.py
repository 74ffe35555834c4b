"""The durable_exec pytest plugin: the ``durable`` fixture.

Installed with durable_exec and loaded by pytest through the ``pytest11``
entry point, so a project that installed the package has it with nothing
to configure::

    from durable_exec import Duration

    def test_checkout_waits_for_approval(durable):
        durable.respond_to_callback(
            "approval", result={"ok": True}, after=Duration.from_minutes(10)
        )
        run = durable.run(checkout, {"order": 42})
        run.assert_succeeded()
        assert run.step("charge").attempts == 1

After each run the execution is replayed from its own checkpoints, and
the test fails with :class:`~durable_exec.testing.ReplayMismatch` if the
handler does not replay it exactly. Turn that off for one test with
``@pytest.mark.durable_no_replay_check``, or for a project with the ini
option ``durable_replay_check = false``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._harness import DurableHarness

__all__ = ["durable"]

NO_REPLAY_CHECK_MARKER = "durable_no_replay_check"
REPLAY_CHECK_INI = "durable_replay_check"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        REPLAY_CHECK_INI,
        type="bool",
        default=True,
        help=(
            "replay each run of the durable fixture from its checkpoints "
            "and fail on a difference (default: true)"
        ),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{NO_REPLAY_CHECK_MARKER}: do not replay this test's durable runs "
        "from their checkpoints",
    )


@pytest.fixture
def durable(request: pytest.FixtureRequest) -> Iterator[DurableHarness]:
    """Run durable handlers on an isolated in-memory engine, time skipped.

    The clock starts at 2025-01-01T00:00:00Z and moves only to the
    engine's next timer, so waits and retry delays take no real time and
    timestamps repeat exactly. Main calls:

    - ``durable.run(handler, input=None, *, name=None) -> DurableRun``:
      run to the end (or until it waits for the outside world); read
      ``run.status``, ``run.result``, ``run.error``, ``run.history``,
      ``run.step(name)`` / ``wait`` / ``context`` / ``callback`` /
      ``invoke`` / ``operation(name, type)``, ``run.assert_succeeded()``.
    - ``durable.respond_to_callback(name, result=..., fail=...,
      after=..., heartbeat_every=...)``: answer callbacks in engine time.
    - ``durable.register_function(name, handler)``: a target for
      ``context.invoke``.
    - ``durable.replay_history(handler, path)``: replay a stored history.

    Each run is replayed from its own checkpoints and the test fails with
    ReplayMismatch on a difference; ``@pytest.mark.durable_no_replay_check``
    turns that off.
    """
    check = bool(request.config.getini(REPLAY_CHECK_INI)) and (
        request.node.get_closest_marker(NO_REPLAY_CHECK_MARKER) is None
    )
    with DurableHarness(replay_check=check, base_path=request.path.parent) as harness:
        yield harness
