"""Fixtures every test tier shares."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    """Fail any test that leaves an asyncio task running: a leaked task is a leaked
    connection, timer or watch in production."""
    before = asyncio.all_tasks()
    yield
    # Let tasks that are already finishing (cancelled in a finally) run their last step.
    for _ in range(3):
        await asyncio.sleep(0)
    leaked = {t for t in asyncio.all_tasks() - before if not t.done()}
    current = asyncio.current_task()
    if current is not None:
        leaked.discard(current)
    for task in leaked:
        task.cancel()
    if leaked:
        names = ", ".join(sorted(t.get_name() + ": " + repr(t.get_coro()) for t in leaked))
        pytest.fail(f"test left {len(leaked)} asyncio task(s) running: {names}")
