"""Batching: a burst becomes one batch; a steady trickle is still cut at the maximum."""

from __future__ import annotations

import asyncio
import math

import pytest

from provisioner.controllers.batching import Batcher, Window


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


# --- the window on a fake clock ------------------------------------------------------------


def _arrivals(window: Window, times: list[float]) -> list[set[object]]:
    """Feed keys 0, 1, ... at ``times`` (seconds, ascending); the batches, as a loop that
    waits for ``closes_at`` between arrivals would cut them."""
    batches: list[set[object]] = []
    for key, now in enumerate(times):
        while window.closes_at() <= now:
            batches.append(window.take())
        window.add(key, now)
    if window.keys:
        batches.append(window.take())
    return batches


def test_a_deployment_burst_at_twenty_pods_a_second_is_one_window() -> None:
    window = Window(idle=1.0, maximum=10.0)
    assert _arrivals(window, [i / 20 for i in range(12)]) == [set(range(12))]


def test_each_new_key_moves_the_close_to_idle_after_it() -> None:
    window = Window(idle=1.0, maximum=10.0)
    window.add("a", 100.0)
    assert window.closes_at() == 101.0
    window.add("b", 100.9)
    assert window.closes_at() == pytest.approx(101.9)
    window.add("a", 101.5)  # seen in this window: not new, no extension
    assert window.closes_at() == pytest.approx(101.9)


def test_arrivals_slower_than_idle_but_steady_keep_one_window_up_to_the_max() -> None:
    # One pod every 0.9 s never leaves the window idle for 1 s: it is cut at 10 s.
    window = Window(idle=1.0, maximum=10.0)
    batches = _arrivals(window, [i * 0.9 for i in range(20)])
    assert [len(b) for b in batches] == [12, 8]


def test_a_pause_longer_than_idle_closes_the_window() -> None:
    window = Window(idle=1.0, maximum=10.0)
    assert _arrivals(window, [0.0, 0.5, 2.0, 2.2]) == [{0, 1}, {2, 3}]


def test_an_empty_window_never_closes() -> None:
    window = Window(idle=1.0, maximum=10.0)
    assert window.closes_at() == math.inf
    window.add("a", 5.0)
    assert window.take() == {"a"}
    assert window.closes_at() == math.inf
