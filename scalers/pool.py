"""``RefCountedPool``: values shared by key, closed when their last holder lets go.

The lease logic ``clients.ClientPool`` (queue clients) and ``sessions.SessionPool`` (aiohttp
sessions) have in common, written once: holders of one key share one value; ``release`` is
idempotent per lease; the last release closes the value; ``forget`` makes the next lease of the
key create a fresh value while the old one lives on until its own holders let go. What a value
is, how it is made and how it is closed is the caller's. This module does no I/O of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Holding", "Lease", "RefCountedPool"]

KeyT = TypeVar("KeyT", bound=Hashable)
ValueT = TypeVar("ValueT")


@dataclass(eq=False, slots=True)
class Holding(Generic[ValueT]):
    """One pooled value and how many leases hold it; compared by identity."""

    value: ValueT
    holders: int = 0


class RefCountedPool(Generic[KeyT, ValueT]):
    """Values by key with a count of holders; ``close`` is called once per value, by the last
    ``release`` (or by ``close_all``)."""

    def __init__(self, *, close: Callable[[ValueT], Awaitable[None]]) -> None:
        self._close = close
        self._held: dict[KeyT, Holding[ValueT]] = {}

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, key: KeyT, create: Callable[[], ValueT]) -> Holding[ValueT]:
        """Count one more holder of ``key``'s value, making it with ``create`` when there is
        none. Synchronous, so concurrent first holders of a key share one value."""
        holding = self._held.get(key)
        if holding is None:
            holding = Holding(create())
            self._held[key] = holding
        holding.holders += 1
        return holding

    def forget(self, key: KeyT, holding: Holding[ValueT]) -> None:
        """Stop handing out ``holding``; the next ``hold`` of ``key`` creates a new value."""
        if self._held.get(key) is holding:
            del self._held[key]

    async def release(self, key: KeyT, holding: Holding[ValueT]) -> None:
        """One holder fewer; the last one closes the value."""
        if holding.holders <= 0:
            return  # closed already, by close_all
        holding.holders -= 1
        if holding.holders > 0:
            return
        self.forget(key, holding)
        await self._close(holding.value)

    async def close_all(self) -> None:
        """Close every value now, whoever holds it; later releases do nothing."""
        held = list(self._held.values())
        self._held.clear()
        for holding in held:
            holding.holders = 0
            await self._close(holding.value)


class Lease(Generic[KeyT, ValueT]):
    """A holder's claim on a pooled value; ``release()`` it once (again is a no-op)."""

    def __init__(
        self, pool: RefCountedPool[KeyT, ValueT], key: KeyT, holding: Holding[ValueT]
    ) -> None:
        self._pool = pool
        self._key = key
        self._holding = holding
        self._released = False

    async def release(self) -> None:
        if not self._released:
            self._released = True
            await self._pool.release(self._key, self._holding)

    def forget(self) -> None:
        """Make the next lease of this key get a new value (this one broke)."""
        self._pool.forget(self._key, self._holding)
