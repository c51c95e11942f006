"""Shared, reference-counted network clients for the queue scalers (Redis, AMQP, PostgreSQL, SQS).

``sessions.SessionPool`` does this for aiohttp; this module does it for clients that are not
HTTP sessions. Scalers with equal connection settings (server, credentials, TLS) ``lease`` one
client; the last ``release`` closes it. A lease whose client broke (the server went away and the
library does not reconnect by itself) is ``discard``-ed: the pool forgets that client, so the
next lease opens a fresh one, and closes it once its last holder lets go.

There is one ``ClientPool`` per ``SessionPool`` (that is, per ``MetricCache``, per event loop):
``client_pool(context)`` finds it, so ``ScalerContext`` needs no new field. Keys must not hold
secrets in the clear: pass ``secret_digest()`` of them instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from scalers.base import ScalerContext
from scalers.sessions import SessionPool

__all__ = ["ClientLease", "ClientPool", "client_pool", "secret_digest"]

ClientT = TypeVar("ClientT")

_POOLS: weakref.WeakKeyDictionary[SessionPool, ClientPool] = weakref.WeakKeyDictionary()


def secret_digest(*parts: str | None) -> str:
    """A digest of ``parts`` for pool keys: equal secrets share a client, none is kept."""
    digest = hashlib.sha256()
    for part in parts:
        raw = b"\x00" if part is None else b"\x01" + part.encode("utf-8", "surrogatepass")
        digest.update(len(raw).to_bytes(8, "big"))
        digest.update(raw)
    return digest.hexdigest()


def client_pool(context: ScalerContext) -> ClientPool:
    """The ``ClientPool`` that goes with ``context`` (one per ``SessionPool``)."""
    pool = _POOLS.get(context.sessions)
    if pool is None:
        pool = ClientPool()
        _POOLS[context.sessions] = pool
    return pool


@dataclass(eq=False, slots=True)
class _Entry:
    opening: asyncio.Future[Any]
    close: Callable[[Any], Awaitable[None]]
    holders: int = 0


class ClientLease(Generic[ClientT]):
    """A scaler's hold on a pooled client; ``release()`` (or ``discard()``) it once."""

    def __init__(self, pool: ClientPool, key: Hashable, entry: _Entry, client: ClientT) -> None:
        self._pool = pool
        self._key = key
        self._entry = entry
        self.client = client
        self._released = False

    async def release(self) -> None:
        if not self._released:
            self._released = True
            await self._pool._release(self._key, self._entry)

    async def discard(self) -> None:
        """Release, and make the next lease of this key open a new client."""
        self._pool._forget(self._key, self._entry)
        await self.release()


class ClientPool:
    """Reference-counted clients by key; see the module docstring."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def lease(
        self,
        key: Hashable,
        *,
        open_client: Callable[[], Awaitable[ClientT]],
        close_client: Callable[[ClientT], Awaitable[None]],
    ) -> ClientLease[ClientT]:
        """Share the client for ``key``, opening it with ``open_client`` when there is none.

        Concurrent first leases of one key share one ``open_client`` call. When opening fails,
        every waiting leaser gets the error and the key is forgotten, so a later lease retries.
        """
        entry = self._entries.get(key)
        if entry is None:
            entry = _Entry(opening=asyncio.ensure_future(open_client()), close=close_client)
            self._entries[key] = entry
        entry.holders += 1
        try:
            # Shielded: one leaser's cancellation must not cancel an opening others wait on.
            client: ClientT = await asyncio.shield(entry.opening)
        except BaseException:
            if entry.opening.done() and not entry.opening.cancelled():
                self._forget(key, entry)
            await self._release(key, entry)
            raise
        return ClientLease(self, key, entry, client)

    def _forget(self, key: Hashable, entry: _Entry) -> None:
        if self._entries.get(key) is entry:
            del self._entries[key]

    async def _release(self, key: Hashable, entry: _Entry) -> None:
        entry.holders -= 1
        if entry.holders > 0:
            return
        self._forget(key, entry)
        opening = entry.opening
        if not opening.done():
            opening.cancel()
            await asyncio.gather(opening, return_exceptions=True)
            return
        if opening.cancelled() or opening.exception() is not None:
            return
        await entry.close(opening.result())
