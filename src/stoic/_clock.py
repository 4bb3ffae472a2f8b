"""The one place in stoic that reads time and sleeps.

Time is the running event loop's monotonic clock (``loop.time()``), never the wall clock.
Reading it through the loop means a virtual-time loop (``stoic.testing``) moves every
strategy, ``asyncio.sleep`` and ``asyncio.timeout`` together, so tests are exact and instant.

Testing mode (``stoic.testing.set_testing``) is kept here too because it changes how stoic
waits: with it on, every stoic wait returns at once.
"""

from __future__ import annotations

import asyncio
from asyncio import get_running_loop

__all__ = ["now", "sleep", "testing_state"]


def now() -> float:
    """Seconds on the running loop's monotonic clock (virtual under ``stoic.testing``)."""
    return get_running_loop().time()


class _TestingState:
    """Process-wide testing switches; read only on failure paths, so the happy path never pays."""

    __slots__ = ("attempts", "no_wait")

    def __init__(self) -> None:
        self.no_wait = False
        self.attempts: int | None = None


testing_state = _TestingState()


async def sleep(seconds: float) -> None:
    """Wait ``seconds`` on the loop's clock; a no-op yield while testing mode is on."""
    if testing_state.no_wait or seconds <= 0:
        # Still yield once: a retry loop must stay cancellable and fair to other tasks.
        await asyncio.sleep(0)
        return
    await asyncio.sleep(seconds)
