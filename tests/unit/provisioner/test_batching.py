"""Batching: a burst becomes one batch; a steady trickle is still cut at the maximum."""

from __future__ import annotations

import asyncio

import pytest

from provisioner.controllers.batching import Batcher


async def test_a_burst_is_one_batch() -> None:
    batcher = Batcher(idle=0.2, maximum=5.0)
    for i in range(5):
        batcher.trigger(i)
    batcher.trigger(3)  # the same pod again adds nothing
    assert await batcher.wait() == {0, 1, 2, 3, 4}


async def test_new_keys_during_the_window_join_it() -> None:
    batcher = Batcher(idle=0.3, maximum=5.0)
    waiter = asyncio.create_task(batcher.wait())
    batcher.trigger("a")
    await asyncio.sleep(0)
    batcher.trigger("b")
    assert await waiter == {"a", "b"}


async def test_a_trickle_is_cut_at_the_maximum() -> None:
    batcher = Batcher(idle=0.1, maximum=0.3)
    stop = asyncio.Event()

    async def trickle() -> None:
        i = 0
        while not stop.is_set():
            batcher.trigger(i)
            i += 1
            await asyncio.sleep(0.02)  # faster than the idle duration: never idle

    feeder = asyncio.create_task(trickle())
    try:
        first = await batcher.wait()
        second = await batcher.wait()
    finally:
        stop.set()
        await feeder
    assert first
    assert second
    assert not first & second


def test_durations_must_make_sense() -> None:
    with pytest.raises(ValueError, match="idle <= max"):
        Batcher(idle=2, maximum=1)
