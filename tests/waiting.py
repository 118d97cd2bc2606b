"""Wait in tests for something that happens asynchronously, with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

POLL_INTERVAL = 0.02


async def eventually(
    check: Callable[[], Awaitable[object]],
    *,
    within: float = 15.0,
    what: str,
) -> float:
    """Wait until ``check`` answers something true and return how long that
    took, or fail the test naming ``what`` after ``within`` seconds."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within:
            pytest.fail(f"{what} did not happen within {within}s")
        await asyncio.sleep(POLL_INTERVAL)

    return time.monotonic() - started
