"""Stopping background tasks properly, for every package's long-running loops.

`cancel_and_wait` cancels tasks and waits until they have finished, without swallowing a
cancellation aimed at the caller itself (the trap of wrapping the await in
`suppress(CancelledError)`: a shutdown that is itself cancelled would carry on as if not).
"""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel every task given (None is skipped) and wait for all of them to finish."""
    live = [t for t in tasks if t is not None]
    for task in live:
        task.cancel()
    for task in live:
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
