"""Waiting for the cluster to reach a state: poll a probe until it holds or a deadline passes.

A deadline here bounds how long a *correct* system may take (e.g. the scheduler's 20 s), so a
hang fails with a message instead of stalling CI; it is never a speed assertion.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

POLL_INTERVAL = 0.25
"""Seconds between probes: the HPA and scheduler act on a 1 s scale here."""


async def eventually(probe: Callable[[], Awaitable[T | None]], *, within: float, what: str) -> T:
    """Return the first non-None result of `probe`; fail naming `what` after `within` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await probe()
        if result is not None:
            return result
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(POLL_INTERVAL)
