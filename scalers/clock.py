"""Time, injected: wall time for measurements and cron, monotonic time for ages and TTLs.

Nothing in ``scalers`` calls ``datetime.now()`` or ``time.monotonic()`` directly, so cron and cache
tests run against a ``FakeClock`` without sleeping. The clock never sleeps itself: waiting (the
cache sweeper, upstream timeouts) stays on the event loop.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current wall time as an aware UTC datetime."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that moves only when told to; wall and monotonic time move together."""

    def __init__(
        self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC), *, monotonic: float = 1000.0
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._monotonic = monotonic

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (aware, not earlier than now)."""
        if when.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self.advance((when - self._now).total_seconds())
