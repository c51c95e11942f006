"""Go duration strings (`500ms`, `3s`, `1m30s`, `1.5h`, `+5s`, `0`), as Kubernetes objects, KEDA
metadata and Go-style command-line flags write them. Every package reads durations through this
one parser; what a bare number means (KEDA: milliseconds, flags: seconds) stays with the caller.

The grammar is Go's `time.ParseDuration`: an optional sign, then one or more `<number><unit>`
parts, or `0` alone; a non-zero number without a unit is refused. Unlike Go, a negative duration
is refused too (no caller here has a use for one) and surrounding white space is ignored.
"""

from __future__ import annotations

import math
import re

# [0-9], not \d: Python's \d takes any Unicode digit, Go's grammar only ASCII ones.
_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str) -> float:
    """Seconds in `text`, a non-negative Go duration; ValueError for anything else."""
    stripped = text.strip()
    sign, body = (stripped[0], stripped[1:]) if stripped[:1] in ("+", "-") else ("", stripped)
    if not body:
        raise ValueError(f"{text!r} is an empty duration")
    if body == "0":
        return 0.0  # Go's one unitless duration
    pos, seconds = 0, 0.0
    while pos < len(body):
        match = _PART.match(body, pos)
        if match is None:
            raise ValueError(f"{text!r} is not a duration like 500ms, 30s or 1h30m")
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not math.isfinite(seconds):
        raise ValueError(f"{text!r} is too long a duration")
    if sign == "-" and seconds > 0:
        raise ValueError(f"{text!r} is a negative duration")
    return seconds


def format_duration(seconds: float) -> str:
    """`seconds` as the shortest Go duration that reads back to it at millisecond precision:
    ``900.0`` is ``15m``, ``5400.0`` is ``1h30m``, ``0.5`` is ``500ms`` (for help texts and
    messages; Go's own `String()` would print ``15m0s``)."""
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"{seconds!r} is not a non-negative finite number of seconds")
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    whole, millis = divmod(millis, 1000)
    parts = [(hours, "h"), (minutes, "m"), (whole, "s"), (millis, "ms")]
    return "".join(f"{amount}{unit}" for amount, unit in parts if amount)
