"""The one place in stoic that reads time and sleeps.

Time is the event loop's monotonic clock, never the wall clock. asyncio's loops read
``time.monotonic()`` for ``loop.time()``, so ``now`` *is* ``time.monotonic`` by default: the
cheapest read there is (``get_running_loop().time()`` costs four times as much, on every
call). While a virtual-time loop runs (``stoic.testing``), ``now`` switches to reading the
running loop's clock, so strategies, ``asyncio.sleep`` and ``asyncio.timeout`` move together
and tests are exact and instant. Callers must therefore look it up as ``_clock.now()`` at
call time, never bind it once.

Testing mode (``stoic.testing.set_testing``) is kept here too because it changes how stoic
waits: with it on, every stoic wait returns at once.
"""

from __future__ import annotations

import asyncio
import time
from asyncio import get_running_loop
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["enter_virtual_time", "exit_virtual_time", "now", "sleep", "testing_state"]


def _loop_now() -> float:
    try:
        return get_running_loop().time()
    except RuntimeError:
        # A worker thread (``asyncio.to_thread``) has no loop: use the virtual clock running.
        if _virtual_clocks:
            return _virtual_clocks[-1]()
        return time.monotonic()


#: Seconds on the loop's monotonic clock (virtual while a virtual-time loop runs).
now: Callable[[], float] = time.monotonic
# The time() of each virtual clock running, innermost last.
_virtual_clocks: list[Callable[[], float]] = []


def enter_virtual_time(clock_time: Callable[[], float]) -> None:
    """A virtual-time loop starts: read time from the running loop from now on."""
    global now
    _virtual_clocks.append(clock_time)
    now = _loop_now


def exit_virtual_time(clock_time: Callable[[], float]) -> None:
    """A virtual-time loop ended: back to the direct monotonic read when none is left."""
    global now
    _virtual_clocks.remove(clock_time)
    if not _virtual_clocks:
        now = time.monotonic


class _TestingState:
    """Process-wide testing switches; read only on failure paths, so the happy path never pays."""

    __slots__ = ("attempts", "no_wait")

    def __init__(self) -> None:
        self.no_wait = False
        self.attempts: int | None = None


testing_state = _TestingState()


def sleep(seconds: float) -> Coroutine[Any, Any, None]:
    """Wait ``seconds`` on the loop's clock; only a yield while testing mode is on.

    A plain function returning ``asyncio.sleep``'s coroutine, so a retry's wait costs no
    extra coroutine frame. Even a zero wait yields once: a retry loop must stay cancellable
    and fair to other tasks.
    """
    if testing_state.no_wait or seconds <= 0:
        return asyncio.sleep(0)
    return asyncio.sleep(seconds)
