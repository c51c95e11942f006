"""``ClientPool``: one client per key, opened once, closed by the last holder; and ``scrub``."""

from __future__ import annotations

import asyncio

import pytest

from scalers import ScalerContext, SessionPool, SystemClock
from scalers.clients import ClientPool, client_pool, secret_digest
from scalers.depth import scrub, scrub_values


class Opener:
    def __init__(self) -> None:
        self.opened: list[int] = []
        self.closed: list[int] = []
        self.fail = False
        self.gate: asyncio.Event | None = None

    async def open(self) -> int:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ConnectionError("refused")
        self.opened.append(len(self.opened))
        return self.opened[-1]

    async def close(self, client: int) -> None:
        self.closed.append(client)


async def test_equal_keys_share_one_client_until_the_last_release() -> None:
    pool, opener = ClientPool(), Opener()
    first = await pool.lease("k", open_client=opener.open, close_client=opener.close)
    second = await pool.lease("k", open_client=opener.open, close_client=opener.close)
    other = await pool.lease("j", open_client=opener.open, close_client=opener.close)
    assert (first.client, second.client, other.client) == (0, 0, 1)
    assert len(pool) == 2
    await first.release()
    await first.release()  # idempotent
    assert opener.closed == []
    await second.release()
    assert opener.closed == [0]
    await other.release()
    assert (opener.closed, len(pool)) == ([0, 1], 0)


async def test_concurrent_first_leases_open_once() -> None:
    pool, opener = ClientPool(), Opener()
    opener.gate = asyncio.Event()
    leases = [
        asyncio.create_task(pool.lease("k", open_client=opener.open, close_client=opener.close))
        for _ in range(3)
    ]
    await asyncio.sleep(0)
    opener.gate.set()
    done = await asyncio.gather(*leases)
    assert [lease.client for lease in done] == [0, 0, 0]
    assert opener.opened == [0]
    for lease in done:
        await lease.release()
    assert opener.closed == [0]


async def test_a_failed_open_is_forgotten_and_retried() -> None:
    pool, opener = ClientPool(), Opener()
    opener.fail = True
    with pytest.raises(ConnectionError):
        await pool.lease("k", open_client=opener.open, close_client=opener.close)
    assert len(pool) == 0
    opener.fail = False
    lease = await pool.lease("k", open_client=opener.open, close_client=opener.close)
    assert lease.client == 0
    await lease.release()


async def test_discard_makes_the_next_lease_open_anew() -> None:
    pool, opener = ClientPool(), Opener()
    broken = await pool.lease("k", open_client=opener.open, close_client=opener.close)
    holder = await pool.lease("k", open_client=opener.open, close_client=opener.close)
    await broken.discard()
    fresh = await pool.lease("k", open_client=opener.open, close_client=opener.close)
    assert (holder.client, fresh.client) == (0, 1)
    await holder.release()  # the last holder of the discarded client closes it
    assert opener.closed == [0]
    await fresh.release()
    assert opener.closed == [0, 1]


def test_one_client_pool_per_session_pool() -> None:
    sessions = SessionPool()
    a = client_pool(ScalerContext(clock=SystemClock(), sessions=sessions))
    b = client_pool(ScalerContext(clock=SystemClock(), sessions=sessions))
    c = client_pool(ScalerContext(clock=SystemClock(), sessions=SessionPool()))
    assert a is b
    assert a is not c


def test_secret_digest_and_scrub() -> None:
    assert secret_digest("a", "bc") != secret_digest("ab", "c")
    assert secret_digest(None) != secret_digest("")
    assert "s3cret" not in secret_digest("s3cret")
    assert scrub("user:s3cret@host failed s3cret", ["s3cret", ""]) == (
        "user:<redacted>@host failed <redacted>"
    )
    assert len(scrub("x" * 1000, [])) == 300


def test_scrub_values_redacts_a_secret_only_where_it_is_a_value() -> None:
    text = (
        "sqs queue in eu-west-1: GET /?X-Amz-Security-Token=eu&Action=1 failed; "
        'X-Amz-Security-Token: eu; {"token": "eu"}; token=eu-longer'
    )
    assert scrub_values(text, ["eu", ""]) == (
        "sqs queue in eu-west-1: GET /?X-Amz-Security-Token=<redacted>&Action=1 failed; "
        'X-Amz-Security-Token: <redacted>; {"token": "<redacted>"}; token=eu-longer'
    )
    # URL-encoded, as a token with + / = travels in a query string.
    assert scrub_values("?X-Amz-Security-Token=a%2Bb%2F%3D&x=1", ["a+b/="]) == (
        "?X-Amz-Security-Token=<redacted>&x=1"
    )
    assert len(scrub_values("x" * 1000, [])) == 300
