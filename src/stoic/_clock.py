"""The one place in stoic that reads time and sleeps.

Time is the event loop's monotonic clock, never the wall clock. asyncio's loops read
``time.monotonic()`` for ``loop.time()``, so ``now`` *is* ``time.monotonic`` by default: the
cheapest read there is (``get_running_loop().time()`` costs four times as much, on every
call). While a virtual-time loop runs (``stoic.testing``), ``now`` switches to reading the
running loop's clock, so strategies, ``asyncio.sleep`` and ``asyncio.timeout`` move together
and tests are exact and instant. Callers must therefore look it up as ``_clock.now()`` at
call time, never bind it once.

Two instants less than ``RESOLUTION`` apart are the same instant to stoic (``reached``): a
wait that ends a hair before a deadline ends *at* it, whatever the clock's origin, so float
rounding never decides an outcome. Where stoic sums many intervals (the rate limiter), it
counts integer nanoseconds (``now_ns``) instead, which is exact.

Testing mode (``stoic.testing.set_testing``) is kept here too because it changes how stoic
waits: with it on, every stoic wait returns at once.

stoic runs on asyncio: ``first_call`` and ``running_loop`` say so clearly when another event
loop (trio) runs the code.
"""

from __future__ import annotations

import asyncio
import time
import types
from asyncio import get_running_loop
from collections.abc import Awaitable, Callable, Generator

__all__ = [
    "NS",
    "RESOLUTION",
    "RESOLUTION_NS",
    "enter_virtual_time",
    "exit_virtual_time",
    "now",
    "now_ns",
    "asyncio_seen",
    "call_at",
    "first_call",
    "reached",
    "running_loop",
    "sleep",
    "testing_state",
]

#: Nanoseconds per second.
NS = 1_000_000_000

#: Seconds below which two instants are the same one: far above the rounding of a float
#: monotonic time (its spacing reaches 1 us only past 2**33 s, some 270 years of uptime) and
#: far below any timer an event loop keeps (epoll waits in milliseconds).
RESOLUTION = 1e-6
RESOLUTION_NS = 1_000


def _loop_now() -> float:
    try:
        return get_running_loop().time()
    except RuntimeError:
        # A worker thread (``asyncio.to_thread``) has no loop: use the virtual clock running.
        if _virtual_clocks:
            return _virtual_clocks[-1]()
        return time.monotonic()


def _loop_now_ns() -> int:
    return round(_loop_now() * NS)


#: Seconds on the loop's monotonic clock (virtual while a virtual-time loop runs).
now: Callable[[], float] = time.monotonic
#: The same clock in integer nanoseconds, for exact sums of many intervals.
now_ns: Callable[[], int] = time.monotonic_ns
# The time() of each virtual clock running, innermost last.
_virtual_clocks: list[Callable[[], float]] = []


def enter_virtual_time(clock_time: Callable[[], float]) -> None:
    """A virtual-time loop starts: read time from the running loop from now on."""
    global now, now_ns
    _virtual_clocks.append(clock_time)
    now, now_ns = _loop_now, _loop_now_ns


def exit_virtual_time(clock_time: Callable[[], float]) -> None:
    """A virtual-time loop ended: back to the direct monotonic read when none is left."""
    global now, now_ns
    _virtual_clocks.remove(clock_time)
    if not _virtual_clocks:
        now, now_ns = time.monotonic, time.monotonic_ns


def reached(when: float, deadline: float) -> bool:
    """Whether ``when`` is at or past ``deadline``, to within ``RESOLUTION``."""
    return when > deadline - RESOLUTION


def running_loop() -> asyncio.AbstractEventLoop:
    """The running asyncio loop; a clear ``RuntimeError`` when none runs (trio, say)."""
    try:
        return get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "stoic runs on asyncio, and no asyncio event loop is running here (trio, curio "
            "and other event loops are not supported; run the code under asyncio.run, or "
            "anyio's asyncio backend)"
        ) from None


#: Whether a call through a strategy has found asyncio running in this process yet.
asyncio_seen = False


def first_call() -> None:
    """The first call through a strategy: fail now, clearly, unless asyncio runs it.

    Strategies that may wait (retry, bulkhead, rate limiter, timeout, fallback) test
    ``asyncio_seen`` on every call (one global read) and call this while it is false, so code
    under trio fails on its first call, not at the first wait of an outage. Later, each place
    that needs the loop (a wait, a queue) checks again. The circuit breaker never waits, and
    runs under any loop.
    """
    global asyncio_seen
    running_loop()
    asyncio_seen = True


def call_at(
    loop: asyncio.AbstractEventLoop, when_ns: int, callback: Callable[[], object]
) -> asyncio.TimerHandle:
    """Run ``callback`` on ``loop`` once stoic's clock reaches ``when_ns`` nanoseconds."""
    return loop.call_at(when_ns / NS, callback)


class _TestingState:
    """Process-wide testing switches; read only on failure paths, so the happy path never pays."""

    __slots__ = ("attempts", "no_wait")

    def __init__(self) -> None:
        self.no_wait = False
        self.attempts: int | None = None


testing_state = _TestingState()


@types.coroutine
def _yield_once() -> Generator[None, None, None]:
    """Hand control to the event loop once: what ``asyncio.sleep(0)`` does, minus its frame.

    The task is rescheduled at once (``call_soon``), and a cancellation arrives here as it
    would in ``asyncio.sleep(0)``. Under trio the bare yield is refused with a ``TypeError``
    thrown in here, which becomes stoic's clear error: no loop lookup on the way (on Python
    3.11 ``get_running_loop`` makes a ``getpid`` system call, as costly as the rest of a
    retry).
    """
    try:
        yield
    except TypeError:
        running_loop()  # raises the clear error when no asyncio loop runs here
        raise


def sleep(seconds: float) -> Awaitable[None]:
    """Wait ``seconds`` on the loop's clock; only a yield while testing mode is on.

    A plain function returning what to await, so a wait costs no extra coroutine frame.
    Even a zero wait yields once: a retry loop must stay cancellable and fair to other tasks.
    """
    if testing_state.no_wait or seconds <= 0:
        return _yield_once()
    running_loop()  # under trio, say so rather than fail inside asyncio
    return asyncio.sleep(seconds)
