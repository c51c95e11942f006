"""Batching: gather a burst of pending pods into one provisioning pass.

Owns ``Batcher``: a window opens at the first trigger, stays open while new pods keep arriving
(each new one extends it by the idle duration) and closes at idle or at the maximum duration,
whichever comes first (Karpenter's 1 s / 10 s). One burst of pods thus becomes one simulation
and one set of NodeClaims instead of one per pod. It must not know what a pod is: triggers are
opaque keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

__all__ = ["Batcher"]


class Batcher:
    def __init__(self, *, idle: float, maximum: float) -> None:
        if not 0 < idle <= maximum:
            raise ValueError(f"batch durations need 0 < idle <= max, got {idle}, {maximum}")
        self.idle = idle
        self.maximum = maximum
        self._keys: set[Hashable] = set()
        self._changed = asyncio.Event()

    def trigger(self, key: Hashable) -> None:
        """Note a pending pod (or anything else worth a pass); new keys extend an open window."""
        if key not in self._keys:
            self._keys.add(key)
            self._changed.set()

    async def wait(self) -> set[Hashable]:
        """Wait for a trigger, then for the window to close; returns the keys it gathered."""
        while not self._keys:
            self._changed.clear()
            await self._changed.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.maximum
        while True:
            self._changed.clear()
            timeout = min(self.idle, deadline - loop.time())
            if timeout <= 0:
                break
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                break  # idle: nothing new for a whole idle duration
        keys, self._keys = self._keys, set()
        return keys
