"""Fixtures every test tier shares."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
from hypothesis import settings

# Property tests: no per-example deadline (a shared 2-core machine makes timings meaningless:
# speed lives in bench/), and in CI a fixed example sequence, so a submission's CI result does
# not depend on which random inputs that run happened to draw. Locally they stay random, which
# is where new counterexamples come from.
settings.register_profile("updraft", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "updraft")


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
