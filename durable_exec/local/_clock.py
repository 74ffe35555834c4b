"""Clocks for the embedded engine.

The engine reads the time from a clock and waits for its next timer by
asking the clock to sleep. :class:`RealClock` really sleeps;
:class:`SkippingClock` jumps straight to the timer, so a workflow that
waits for a day finishes in milliseconds, with every timestamp as if the
day had passed.
"""

from __future__ import annotations

import datetime as _dt
import threading
import time
from typing import Protocol

__all__ = ["Clock", "RealClock", "SkippingClock"]

_UTC = _dt.timezone.utc


class Clock(Protocol):
    def now(self) -> _dt.datetime:
        """The current time, timezone-aware."""
        ...

    def sleep_until(self, moment: _dt.datetime) -> None:
        """Return at ``moment`` or later."""
        ...


class RealClock:
    """Wall-clock time; sleeping takes real time."""

    def now(self) -> _dt.datetime:
        return _dt.datetime.now(_UTC)

    def sleep_until(self, moment: _dt.datetime) -> None:
        delay = (moment - self.now()).total_seconds()
        if delay > 0:
            time.sleep(delay)


class SkippingClock:
    """Wall-clock time plus an offset that grows instead of sleeping.

    Between timers time runs as usual; ``sleep_until`` adds the time left
    to the offset and returns at once.
    """

    def __init__(self, offset_seconds: float = 0.0) -> None:
        self._offset = _dt.timedelta(seconds=offset_seconds)
        self._lock = threading.Lock()

    @property
    def offset_seconds(self) -> float:
        return self._offset.total_seconds()

    def now(self) -> _dt.datetime:
        return _dt.datetime.now(_UTC) + self._offset

    def sleep_until(self, moment: _dt.datetime) -> None:
        with self._lock:
            ahead = moment - self.now()
            if ahead > _dt.timedelta(0):
                self._offset += ahead

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        with self._lock:
            self._offset += _dt.timedelta(seconds=seconds)
