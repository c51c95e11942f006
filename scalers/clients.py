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
from scalers.pool import Holding, Lease, RefCountedPool
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
class _Opening:
    """A client being opened (or open), and how to close it."""

    future: asyncio.Future[Any]
    close: Callable[[Any], Awaitable[None]]


async def _close_opening(opening: _Opening) -> None:
    future = opening.future
    if not future.done():
        future.cancel()
        await asyncio.gather(future, return_exceptions=True)
        return
    if future.cancelled() or future.exception() is not None:
        return
    await opening.close(future.result())


class ClientLease(Lease[Hashable, _Opening], Generic[ClientT]):
    """A scaler's hold on a pooled client; ``release()`` (or ``discard()``) it once."""

    def __init__(
        self, pool: RefCountedPool[Hashable, _Opening], key: Hashable, holding: Holding[_Opening]
    ) -> None:
        super().__init__(pool, key, holding)
        self.client: ClientT = holding.value.future.result()

    async def discard(self) -> None:
        """Release, and make the next lease of this key open a new client."""
        self.forget()
        await self.release()


class ClientPool:
    """Reference-counted clients by key; see the module docstring."""

    def __init__(self) -> None:
        self._pool: RefCountedPool[Hashable, _Opening] = RefCountedPool(close=_close_opening)

    def __len__(self) -> int:
        return len(self._pool)

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
        holding = self._pool.hold(
            key, lambda: _Opening(asyncio.ensure_future(open_client()), close_client)
        )
        future = holding.value.future
        try:
            # Shielded: one leaser's cancellation must not cancel an opening others wait on.
            await asyncio.shield(future)
        except BaseException:
            if future.done() and not future.cancelled():
                self._pool.forget(key, holding)
            await self._pool.release(key, holding)
            raise
        return ClientLease(self._pool, key, holding)
