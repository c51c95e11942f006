"""Stopping background tasks without swallowing the caller's own cancellation."""

from __future__ import annotations

import asyncio

import pytest

from kits.tasks import cancel_and_wait


async def test_cancels_and_waits_for_every_task() -> None:
    finished: list[str] = []

    async def loop(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            finished.append(name)

    tasks = [asyncio.create_task(loop(n)) for n in ("a", "b")]
    await asyncio.sleep(0)
    await cancel_and_wait(*tasks, None)
    assert sorted(finished) == ["a", "b"]
    assert all(t.cancelled() for t in tasks)


async def test_a_cancelled_caller_stays_cancelled() -> None:
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await release.wait()  # cleanup that takes a while

    worker = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    closer = asyncio.create_task(cancel_and_wait(worker))
    await asyncio.sleep(0)
    closer.cancel()  # whoever is shutting down is itself cancelled meanwhile
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await closer
    await asyncio.gather(worker, return_exceptions=True)


async def test_a_task_that_failed_raises_its_error() -> None:
    async def broken() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="boom"):
        await cancel_and_wait(task)
