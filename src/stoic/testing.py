"""Virtual time and a no-wait testing mode, for stoic's tests and for yours.

Virtual time: the event loop's clock only moves when every task is waiting, and then it jumps
straight to the next timer (like trio's autojump ``MockClock``). A 60-second backoff finishes
in microseconds and the delays it took can be asserted exactly. It covers everything that
waits on the loop's clock: stoic's strategies, ``asyncio.sleep``, ``asyncio.timeout``.

Three ways in:

- ``stoic.testing.run(main())``: run a coroutine on a fresh virtual-time loop (like
  ``asyncio.run``).
- ``with stoic.testing.virtual_time() as clock:`` inside a running loop (pytest-asyncio,
  anyio): switches that loop to virtual time until the block ends.
- pytest: the ``virtual_clock`` fixture, or the ``@pytest.mark.virtual_time`` marker, runs an
  ``async def`` test on a virtual-time loop (the plugin is registered on install).

Testing mode, ``set_testing(True)``, switches every stoic wait off (backoff sleeps return at
once) and can cap retry attempts; it also works as a context manager.
"""

from __future__ import annotations

import asyncio
import heapq
import selectors
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from stoic import _clock
from stoic._clock import testing_state

__all__ = ["VirtualClock", "is_testing", "run", "set_testing", "virtual_time"]

T = TypeVar("T")


class VirtualClock:
    """A monotonic clock that jumps to the next timer whenever the loop would block.

    ``autojump_threshold`` (seconds, default 0) is how long the loop waits for real I/O or a
    thread before jumping; raise it a little when the code under test waits on real sockets.
    """

    __slots__ = ("_autojump_threshold", "_now", "jumps")

    def __init__(self, start: float = 0.0, *, autojump_threshold: float = 0.0) -> None:
        if not autojump_threshold >= 0:
            raise ValueError(f"autojump_threshold must be >= 0 seconds, got {autojump_threshold!r}")
        self._now = float(start)
        self._autojump_threshold = float(autojump_threshold)
        #: How many times time jumped forward; handy to assert that a test really waited.
        self.jumps = 0

    def __repr__(self) -> str:
        return f"VirtualClock(time={self._now!r})"

    def time(self) -> float:
        """Current virtual time in seconds."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (>= 0); timers now due run on the next loop pass."""
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        self._now += seconds
        if seconds:
            self.jumps += 1

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        """A new event loop that runs on this clock."""
        return _VirtualTimeLoop(self)

    def run(self, main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
        """Run ``main`` to completion on a fresh loop driven by this clock."""
        _clock.enter_virtual_time(self.time)
        try:
            with asyncio.Runner(debug=debug, loop_factory=self.new_event_loop) as runner:
                return runner.run(main)
        finally:
            _clock.exit_virtual_time(self.time)


class _AutojumpSelector:
    """Wraps the loop's selector: when nothing is ready, jump the clock instead of blocking."""

    def __init__(self, selector: selectors.BaseSelector, clock: VirtualClock) -> None:
        self._selector = selector
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        wait = self._clock._autojump_threshold
        if timeout is not None:
            wait = min(wait, timeout)
        ready = self._selector.select(wait)
        if ready:
            return ready
        if timeout is None:
            # No timer is scheduled: only real I/O (a thread, a socket) can wake the loop.
            return self._selector.select(None)
        if timeout > 0:
            self._clock.advance(timeout)
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._selector, name)


class _VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: VirtualClock) -> None:
        self._virtual_clock = clock
        super().__init__(selector=_AutojumpSelector(selectors.DefaultSelector(), clock))  # type: ignore[arg-type]

    def time(self) -> float:
        return self._virtual_clock.time()


def run(main: Coroutine[Any, Any, T], *, clock: VirtualClock | None = None) -> T:
    """Run ``main`` on a fresh virtual-time loop and return its result (like ``asyncio.run``)."""
    return (clock or VirtualClock()).run(main)


@contextmanager
def virtual_time(*, autojump_threshold: float = 0.0) -> Iterator[VirtualClock]:
    """Switch the *running* loop to virtual time for the duration of the block.

    For test frameworks that own the loop (pytest-asyncio, anyio). The clock starts at the
    loop's current time, so timers already scheduled keep their meaning; on exit, timers
    scheduled inside the block and still pending are moved back onto the loop's own clock
    (a ``call_later(5)`` made inside still fires 5 virtual-then-real seconds later). Times
    that objects *remember* (a breaker's open-until) stay on the virtual timeline: don't let
    such objects outlive the block. Blocks nest. Needs a selector event loop (the asyncio
    default; not uvloop).
    """
    loop = asyncio.get_running_loop()
    selector = getattr(loop, "_selector", None)
    if selector is None:
        raise RuntimeError(f"virtual_time() needs a selector event loop, not {type(loop).__name__}")
    patched_time = loop.__dict__.get("time")  # an enclosing virtual_time()'s clock, if any
    clock = VirtualClock(loop.time(), autojump_threshold=autojump_threshold)
    scheduled: list[asyncio.TimerHandle] = getattr(loop, "_scheduled", [])
    before = {id(handle) for handle in scheduled}
    loop.time = clock.time  # type: ignore[method-assign]
    loop._selector = _AutojumpSelector(selector, clock)  # type: ignore[attr-defined]
    _clock.enter_virtual_time(clock.time)
    try:
        yield clock
    finally:
        _clock.exit_virtual_time(clock.time)
        if patched_time is None:
            del loop.time
        else:
            loop.time = patched_time  # type: ignore[method-assign]
        loop._selector = selector  # type: ignore[attr-defined]
        _rebase_timers(scheduled, before, clock.time() - loop.time())


def _rebase_timers(scheduled: list[asyncio.TimerHandle], before: set[int], offset: float) -> None:
    """Move timers made on the virtual timeline back by ``offset`` onto the loop's clock."""
    if not offset:
        return
    for handle in scheduled:
        if id(handle) not in before:
            handle._when -= offset  # type: ignore[attr-defined]
    heapq.heapify(scheduled)


class set_testing:
    """Switch stoic's testing mode on or off; also usable as a context manager.

    With ``testing=True`` every stoic wait (retry backoff) returns at once; ``attempts``, when
    given, caps every retry policy to that many attempts. ``with set_testing(True): ...``
    restores the previous mode on exit. Process-wide: not for tests that run in parallel
    threads with different needs.
    """

    __slots__ = ("_previous",)

    def __init__(self, testing: bool = True, *, attempts: int | None = None) -> None:
        if attempts is not None and attempts < 1:
            raise ValueError(f"attempts must be >= 1 or None, got {attempts!r}")
        self._previous = (testing_state.no_wait, testing_state.attempts)
        testing_state.no_wait = testing
        testing_state.attempts = attempts if testing else None

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        testing_state.no_wait, testing_state.attempts = self._previous


def is_testing() -> bool:
    """Whether testing mode is on."""
    return testing_state.no_wait
