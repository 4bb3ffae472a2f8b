"""Virtual time and a no-wait testing mode, for stoic's tests and for yours.

Virtual time: the event loop's clock only moves when every task is waiting, and then it jumps
straight to the next timer (like trio's autojump ``MockClock``). A 60-second backoff finishes
in microseconds and the delays it took can be asserted exactly. It covers everything that
waits on the loop's clock: stoic's strategies, ``asyncio.sleep``, ``asyncio.timeout``.

Four ways in:

- ``stoic.testing.run(main())``: run a coroutine on a fresh virtual-time loop (like
  ``asyncio.run``); the clock starts at 0.0 unless ``clock=VirtualClock(start=...)`` says
  otherwise.
- ``VirtualClock(...).run(main())`` or ``VirtualClock(...).new_event_loop()``: the same with a
  clock of your own, to read or advance.
- ``with stoic.testing.virtual_time() as clock:`` inside a running loop (pytest-asyncio,
  anyio): switches that loop to virtual time until the block ends.
- pytest: the ``virtual_clock`` fixture, or the ``@pytest.mark.virtual_time`` marker, runs an
  ``async def`` test on virtual time (the plugin is registered on install; see
  ``stoic._pytest_plugin`` for its options and how it works with pytest-asyncio).

A virtual-time loop joins its default executor (the threads of ``asyncio.to_thread`` and of
DNS lookups) on real time when it shuts down: the clock does not jump over the join's timeout.

Testing mode, ``set_testing(True)``, switches every stoic wait off (backoff sleeps return at
once) and can cap retry attempts; it also works as a context manager.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import selectors
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from stoic import _clock, _validate
from stoic._clock import testing_state

__all__ = ["VirtualClock", "is_testing", "run", "set_testing", "virtual_time"]

T = TypeVar("T")


class VirtualClock:
    """A monotonic clock that jumps to the next timer whenever the loop would block.

    ``start`` (seconds, default 0.0) is the clock's origin: what ``time()`` reads before the
    first jump. ``autojump_threshold`` (seconds, default 0) is how long the loop waits for
    real I/O or a thread before jumping; raise it a little when the code under test waits on
    real sockets. Both must be finite numbers (``ValueError`` otherwise).
    """

    __slots__ = ("_autojump_threshold", "_now", "jumps")

    def __init__(self, start: float = 0.0, *, autojump_threshold: float = 0.0) -> None:
        self._now = _validate.number(start, "start", unit=" of seconds")
        self._autojump_threshold = _validate.seconds(autojump_threshold, "autojump_threshold")
        #: How many times time jumped forward; handy to assert that a test really waited.
        self.jumps = 0

    def __repr__(self) -> str:
        return f"VirtualClock(time={self._now!r})"

    @property
    def autojump_threshold(self) -> float:
        """Real seconds the loop waits for I/O or a thread before time jumps."""
        return self._autojump_threshold

    def time(self) -> float:
        """Current virtual time in seconds."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (>= 0); timers now due run on the next loop pass."""
        seconds = _validate.seconds(seconds, "seconds")
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

    @contextmanager
    def switch_running_loop(self) -> Iterator[VirtualClock]:
        """Drive the *running* loop by this clock for the duration of the block.

        What ``virtual_time()`` does, with this clock: timers pending when the block starts or
        ends keep the delay they have left. Needs a selector event loop (``RuntimeError``
        otherwise).
        """
        loop = asyncio.get_running_loop()
        selector = getattr(loop, "_selector", None)
        if selector is None:
            raise RuntimeError(
                f"virtual time needs a selector event loop, not {type(loop).__name__}"
            )
        patched_time = loop.__dict__.get("time")  # an enclosing block's clock, if any
        resolution: float = getattr(loop, "_clock_resolution", 1e-9)
        scheduled: list[asyncio.TimerHandle] = getattr(loop, "_scheduled", [])
        _rebase_timers(scheduled, loop.time() - self.time())
        # Wrap the loop's own selector, not an enclosing block's: the enclosing clock stands
        # still while this one drives the loop.
        inner = selector._selector if isinstance(selector, _AutojumpSelector) else selector
        loop.time = self.time  # type: ignore[method-assign]
        loop._selector = _AutojumpSelector(inner, self, loop, resolution)  # type: ignore[attr-defined]
        _clock.enter_virtual_time(self.time)
        try:
            yield self
        finally:
            _clock.exit_virtual_time(self.time)
            if patched_time is None:
                del loop.time
            else:
                loop.time = patched_time  # type: ignore[method-assign]
            loop._selector = selector  # type: ignore[attr-defined]
            loop._clock_resolution = resolution  # type: ignore[attr-defined]
            _rebase_timers(scheduled, self.time() - loop.time())


class _AutojumpSelector:
    """Wraps the loop's selector: when nothing is ready, jump the clock instead of blocking.

    While ``real_time`` is set, it waits for a timer's full delay in real seconds before it
    jumps to it: a loop shutting down its executor joins the threads under a timeout timer
    (``asyncio.Runner.close`` on 3.12+), and jumping that timer would abandon them.
    """

    def __init__(
        self,
        selector: selectors.BaseSelector,
        clock: VirtualClock,
        loop: asyncio.AbstractEventLoop,
        resolution: float,
    ) -> None:
        self._selector = selector
        self._clock = clock
        self._loop = loop
        self._resolution = resolution
        self.real_time = False

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        try:
            wait = self._clock.autojump_threshold
            if timeout is not None:
                wait = timeout if self.real_time else min(wait, timeout)
            ready = self._selector.select(wait)
            if ready:
                return ready
            if timeout is None:
                # No timer is scheduled: only real I/O (a thread, a socket) can wake the loop.
                return self._selector.select(None)
            if timeout > 0:
                self._clock.advance(timeout)
            return []
        finally:
            # The loop runs a timer once it is due before now + its clock resolution. Far from
            # zero (from ~8.4e6 s on) a float's spacing exceeds the monotonic clock's 1 ns, a
            # timer due exactly now would never run, and the loop would spin: the virtual
            # clock only moves by jumps, so one float spacing is its resolution.
            self._loop._clock_resolution = max(  # type: ignore[attr-defined]
                self._resolution, math.ulp(self._clock.time())
            )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._selector, name)


class _VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: VirtualClock) -> None:
        self._virtual_clock = clock
        self._autojump_selector = _AutojumpSelector(
            selectors.DefaultSelector(), clock, self, time.get_clock_info("monotonic").resolution
        )
        super().__init__(selector=self._autojump_selector)  # type: ignore[arg-type]

    def time(self) -> float:
        return self._virtual_clock.time()

    async def shutdown_default_executor(self, *args: Any, **kwargs: Any) -> None:
        # Forwarded as given: 3.11 takes no timeout, 3.12+ a timeout in seconds.
        self._autojump_selector.real_time = True
        try:
            await super().shutdown_default_executor(*args, **kwargs)
        finally:
            self._autojump_selector.real_time = False


def run(main: Coroutine[Any, Any, T], *, clock: VirtualClock | None = None) -> T:
    """Run ``main`` on a fresh virtual-time loop and return its result (like ``asyncio.run``).

    The clock starts at 0.0 unless you pass your own ``clock``.
    """
    return (clock or VirtualClock()).run(main)


@contextmanager
def virtual_time(
    *, start: float | None = None, autojump_threshold: float = 0.0
) -> Iterator[VirtualClock]:
    """Switch the *running* loop to virtual time for the duration of the block.

    For test frameworks that own the loop (pytest-asyncio, anyio). The clock starts at
    ``start``, by default at the loop's current time. Timers pending when the block starts or
    ends keep the delay they have left: a ``call_later(5)`` made inside and still pending
    fires 5 virtual-then-real seconds later. Times that objects *remember* (a breaker's
    open-until) stay on the virtual timeline: don't let such objects outlive the block.
    Blocks nest. Needs a selector event loop (the asyncio default; not uvloop).
    """
    if start is None:
        start = asyncio.get_running_loop().time()
    clock = VirtualClock(start, autojump_threshold=autojump_threshold)
    with clock.switch_running_loop():
        yield clock


def _rebase_timers(scheduled: list[asyncio.TimerHandle], offset: float) -> None:
    """Move every pending timer back by ``offset``: onto a clock that reads ``offset`` less."""
    if not offset:
        return
    for handle in scheduled:
        handle._when -= offset  # type: ignore[attr-defined]
    heapq.heapify(scheduled)


class set_testing:
    """Switch stoic's testing mode on or off; also usable as a context manager.

    With ``testing=True`` every stoic wait (retry backoff) returns at once; ``attempts``, when
    given, caps every retry policy to that many attempts (an ``int`` >= 1, or ``None`` for no
    cap; anything else raises ``ValueError``). ``with set_testing(True): ...`` restores the
    previous mode on exit. Process-wide: not for tests that run in parallel threads with
    different needs.
    """

    __slots__ = ("_previous",)

    def __init__(self, testing: bool = True, *, attempts: int | None = None) -> None:
        if attempts is not None:
            _validate.count(attempts, "attempts", optional=True)
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
