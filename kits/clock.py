"""Time, injected, and the one RFC 3339 format Kubernetes objects carry.

Owns the `Clock` every package takes time from: wall time (`now`, an aware UTC datetime) for
measurements, cron windows, timestamps and certificate validity; monotonic time (`monotonic`)
for ages, TTLs and lease expiry. Code that needs the time takes a `Clock` (default
`SystemClock()`), never calls `datetime.now()` or `time.monotonic()` itself, so its tests run on a
`FakeClock` without sleeping. A clock never sleeps: waiting (timeouts, sweepers, batch windows)
stays on the event loop, with the loop's own time.

Also owns `format_rfc3339` / `parse_rfc3339`: `metav1.Time` (to the second) and `metav1.MicroTime`
(to the microsecond) always in UTC with `Z`, and reading either back (any offset) as aware UTC.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "FakeClock", "SystemClock", "format_rfc3339", "parse_rfc3339"]

_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


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


def format_rfc3339(moment: datetime, *, micro: bool = False) -> str:
    """`moment` in UTC with `Z`: to the second (`metav1.Time`) or, with `micro`, to the
    microsecond (`metav1.MicroTime`, as Lease renewals are written). A naive datetime is taken
    as UTC (clocks hand out aware ones; this only spares a crash on a slip)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ"
    return moment.astimezone(UTC).strftime(pattern)


def parse_rfc3339(text: str) -> datetime:
    """The aware UTC datetime of an RFC 3339 timestamp (`2026-01-01T00:00:00Z`, any fraction
    of a second, `Z` or an offset); ValueError for anything else, a missing offset included."""
    if _RFC3339.fullmatch(text) is None:
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp like 2026-01-01T00:00:00Z")
    try:
        # fromisoformat reads every RFC 3339 form once `t`/`z` are upper case (and checks ranges).
        return datetime.fromisoformat(text.upper()).astimezone(UTC)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an RFC 3339 timestamp (a date or time out of range)"
        ) from None
