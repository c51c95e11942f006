"""Go duration strings (`500ms`, `3s`, `1m30s`, `1.5h`), as Kubernetes objects, KEDA metadata
and Go-style command-line flags write them. Every package reads durations through this one
parser; what a bare number means (KEDA: milliseconds, flags: seconds) stays with the caller.
"""

from __future__ import annotations

import math
import re

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
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
    """Seconds in `text`, a non-negative Go duration with at least one unit; ValueError else."""
    text = text.strip()
    if not text:
        raise ValueError("an empty duration")
    pos, seconds = 0, 0.0
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            raise ValueError(f"{text!r} is not a duration like 500ms, 30s or 1h30m")
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not math.isfinite(seconds):
        raise ValueError(f"{text!r} is too long a duration")
    return seconds
