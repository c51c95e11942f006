"""Batching: gather a burst of pending pods into one provisioning pass.

Owns ``Window`` (the algorithm, on times it is given) and ``Batcher`` (the same on the event
loop's clock). A window opens at the first trigger, stays open while new keys keep arriving
(each new one moves the close to ``idle`` seconds after it) and closes at idle or at the
maximum duration after it opened, whichever comes first (Karpenter's batcher: 1 s / 10 s). A
Deployment's ReplicaSet creates its pods over a few seconds (about 20 a second), so a burst of
them becomes one simulation and one set of NodeClaims instead of one per pod. A key seen
before in the same window (the same pod updated) does not extend it. It must not know what a
pod is: triggers are opaque keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Hashable

__all__ = ["Batcher", "Window"]


class Window:
    """One batch window on a clock the caller reads: pure, so it is tested without waiting."""

    def __init__(self, *, idle: float, maximum: float) -> None:
        if not 0 < idle <= maximum:
            raise ValueError(f"batch durations need 0 < idle <= max, got {idle}, {maximum}")
        self.idle = idle
        self.maximum = maximum
        self.keys: set[Hashable] = set()
        self.opened = math.nan
        """When the first key came (nan: no key yet)."""
        self.last = math.nan
        """When the latest new key came."""

    def add(self, key: Hashable, now: float) -> bool:
        """Note ``key`` at ``now``; whether it was new (and so moved the close)."""
        if key in self.keys:
            return False
        if not self.keys:
            self.opened = now
        self.keys.add(key)
        self.last = now
        return True

    def closes_at(self) -> float:
        """When the window closes unless a new key comes first (inf while it is empty)."""
        if not self.keys:
            return math.inf
        return min(self.last + self.idle, self.opened + self.maximum)

    def take(self) -> set[Hashable]:
        """The keys gathered; the window is empty again."""
        keys, self.keys = self.keys, set()
        self.opened = self.last = math.nan
        return keys


class Batcher:
    def __init__(self, *, idle: float, maximum: float) -> None:
        self._window = Window(idle=idle, maximum=maximum)
        self.idle = idle
        self.maximum = maximum
        self._changed = asyncio.Event()

    def trigger(self, key: Hashable) -> None:
        """Note a pending pod (or anything else worth a pass); new keys extend an open window."""
        if self._window.add(key, asyncio.get_running_loop().time()):
            self._changed.set()

    async def wait(self) -> set[Hashable]:
        """Wait for a trigger, then for the window to close; returns the keys it gathered."""
        loop = asyncio.get_running_loop()
        window = self._window
        while True:
            self._changed.clear()
            timeout = window.closes_at() - loop.time()
            if timeout <= 0:
                return window.take()
            # Woken by a new key (the close may have moved) or by the close itself.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait(), None if timeout == math.inf else timeout
                )
