"""Fixtures for scaler unit tests: a fake clock, and no asyncio task may outlive its test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from scalers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 5, 1, 12, 0, tzinfo=UTC))


@pytest.fixture(autouse=True)
async def no_task_left_behind() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    left = {
        task
        for task in asyncio.all_tasks() - before
        if not task.done() and task is not asyncio.current_task()
    }
    assert not left, f"tasks left running: {left}"
