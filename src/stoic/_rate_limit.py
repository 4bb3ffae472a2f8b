"""Rate limiter: start at most ``rate`` calls per ``per`` seconds, in bursts of up to ``burst``.

A rate limiter keeps a caller inside a quota (an API's "100 requests per minute") or keeps a
hot loop from flooding a dependency::

    github = RateLimiter(5000, per=3600.0, max_wait=10.0)
    await github.call(fetch_issue, number)

    @RateLimiter(10, burst=1, max_wait=None)      # one call every 0.1 s, waiting as needed
    async def poll() -> Status: ...

    async with github:
        await client.get("/rate_limit")

The algorithm is GCRA, the virtual-scheduling form of a token bucket: the whole state is one
float, the time at which the next call is due at the steady rate. Admitting a call is one
clock read and two comparisons, without a lock or a timer. A call that is not due yet
*reserves* its turn at once, then waits for it, so waiters start strictly in arrival order,
exactly one ``per / rate`` apart, and a call whose turn is too far away is refused at once
instead of after waiting in vain.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Literal, NoReturn

from stoic import _clock, _validate
from stoic._classify import check_awaited
from stoic._clock import NS, RESOLUTION_NS, testing_state
from stoic._events import Event, Listener, Severity, emit, validate_listeners
from stoic._strategy import P, Strategy, T
from stoic._timeout import current_deadline
from stoic.exceptions import RateLimited

__all__ = ["CallRejectedByRateLimiter", "RateLimiter", "RateLimiterStatistics"]

# While calls wait, ``_tat`` holds this instead of the real schedule: no call is ever due
# against it, so the fast path sends every newcomer to the queue (first come, first served)
# without a check of its own.
_QUEUED = 1 << 126
_NEVER_CALLED = -(1 << 62)  # earlier than any clock reading, in nanoseconds
_MAX_INTERVAL = 10**9  # seconds between calls at the steady rate, at most (some 32 years)


@dataclass(frozen=True, slots=True)
class CallRejectedByRateLimiter(Event):
    """The rate limiter refused a call; the wrapped function was not called.

    ``reason`` is ``"rate"`` (the call's turn is more than ``max_wait`` seconds away) or
    ``"deadline"`` (its turn comes only after the deadline of a stoic ``timeout`` around it).
    ``retry_after`` is the number of seconds until a call would be admitted.
    """

    severity: ClassVar[Severity] = Severity.WARNING
    reason: Literal["rate", "deadline"]
    retry_after: float
    rate: float
    per: float
    burst: int


@dataclass(frozen=True, slots=True)
class RateLimiterStatistics:
    """A snapshot of a rate limiter's state (``RateLimiter.statistics()``).

    ``available`` calls could start right now without waiting; ``waiting`` calls hold a
    reserved turn and wait for it. Since the limiter was created, ``delayed`` calls started
    after a wait and ``rejected`` ones were refused. Calls that start at once are not
    counted: a counter would cost a fifth of the limiter's overhead on every call (count
    calls in your own metrics, or with a pipeline's ``PipelineCompleted`` events).
    """

    rate: float
    per: float
    burst: int
    available: int
    waiting: int
    delayed: int
    rejected: int


class RateLimiter(Strategy):
    """Start at most ``rate`` calls per ``per`` seconds, in bursts of up to ``burst`` calls.

    - ``rate``: calls allowed per ``per`` seconds (a finite number > 0; fractions are fine:
      ``RateLimiter(1, per=30.0)`` is one call every 30 s). ``per / rate``, the interval
      between calls at the steady rate, must lie between one nanosecond and 1e9 seconds.
    - ``per``: the period in seconds that ``rate`` is counted over (finite > 0, default 1.0).
    - ``burst``: calls that may start back to back after a quiet spell (int >= 1). Default
      ``None``: ``rate`` rounded down, at least 1 (one period's worth, as aiolimiter and
      Guava do). Over any span of ``t`` seconds at most ``burst + rate * t / per`` calls start;
      ``burst=1`` spaces every call exactly ``per / rate`` apart.
    - ``max_wait``: seconds a call may wait for its turn (default ``0.0``: a call that is not
      due is refused at once; ``None``: wait as long as it takes). A call whose turn is
      further away is refused at once, without waiting; one exactly ``max_wait`` away waits.
    - ``name``: carried by events; ``listeners``: callables receiving each event.

    A call whose turn would come only at or after the deadline of a stoic ``timeout`` around
    it is refused at once as well: it could only time out.

    Raises ``RateLimited`` (a ``stoic.exceptions.RejectedCall``) with ``retry_after`` set when
    the call is refused; ``Retry(delay_hint=retry_after_hint)`` around the limiter then waits
    exactly that long. The wrapped function's own exceptions pass through untouched. Waiting
    calls start in arrival order. A call cancelled while it waits gives its turn back: the
    calls behind it move up one turn, so client timeouts never leave the limiter booked for
    calls nobody makes. Use it as ``await limiter.call(fn, *args, **kwargs)``, as a
    decorator, or as ``async with limiter:`` (which takes a turn on entry); one limiter
    object is meant to be shared by every task that draws on the same quota. Calls may wait
    on one event loop at a time: waiting from a second loop while calls wait on the first
    raises ``RuntimeError`` (make one limiter per loop, or per thread).

    Time is counted in integer nanoseconds, so the schedule is exact at any clock value;
    the interval is ``per / rate`` rounded up to the nanosecond (never faster than asked).
    """

    __slots__ = (
        "_burst",
        "_delayed",
        "_head",
        "_interval",
        "_listeners",
        "_loop",
        "_max_wait",
        "_max_wait_ns",
        "_name",
        "_per",
        "_queue",
        "_rate",
        "_rejected",
        "_tat",
        "_timer",
        "_tolerance",
        "_waiting",
    )

    def __init__(
        self,
        rate: float,
        per: float = 1.0,
        *,
        burst: int | None = None,
        max_wait: float | None = 0.0,
        name: str | None = None,
        listeners: Iterable[Listener] = (),
    ) -> None:
        rate = _validate.number(rate, "rate", minimum=0.0, open_below=True)
        per = _validate.seconds(per, "per", positive=True)
        # Exact: the interval is the ceiling of per / rate in nanoseconds.
        interval = math.ceil(Fraction(per) * NS / Fraction(rate))
        if interval > _MAX_INTERVAL * NS or Fraction(per) * NS / Fraction(rate) < 1:
            raise ValueError(
                f"rate must be between {per / _MAX_INTERVAL:g} and {per * NS:g} calls per "
                f"{per:g}s (one call per 1e9 s at the slowest, 1e9 calls per second at the "
                f"fastest), got {rate!r}"
            )
        if burst is None:
            burst = max(1, math.floor(rate))
        else:
            burst = _validate.count(burst, "burst", optional=True)
        if max_wait is not None:
            max_wait = _validate.seconds(max_wait, "max_wait", optional=True)
        self._rate = rate
        self._per = per
        self._burst = burst
        self._max_wait = max_wait
        self._max_wait_ns = None if max_wait is None else round(max_wait * NS)
        self._name = _validate.name(name)
        self._listeners = validate_listeners(listeners)
        # Nanoseconds between two calls at the steady rate, and how far ahead of its schedule
        # a call may start (the burst).
        self._interval = interval
        self._tolerance = (burst - 1) * interval
        # The theoretical arrival time: when the next call is due at the steady rate, in
        # nanoseconds on stoic's clock. A call may start once ``_tat - _tolerance`` is not in
        # the future. While calls wait it is ``_QUEUED``; the queue holds the schedule.
        self._tat = _NEVER_CALLED
        # The waiting calls' futures, oldest first (cancelled ones linger until passed over),
        # how many are live, the turn of the oldest live one (the others follow one interval
        # apart), the timer that wakes it, and the loop they wait on.
        self._queue: deque[asyncio.Future[int]] = deque()
        self._waiting = 0
        self._head = 0
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._delayed = 0
        self._rejected = 0

    def __repr__(self) -> str:
        return (
            f"RateLimiter(rate={self._rate:g}, per={self._per:g}, burst={self._burst}, "
            f"max_wait={self._max_wait!r}, name={self._name!r})"
        )

    @property
    def rate(self) -> float:
        """Calls allowed per ``per`` seconds."""
        return self._rate

    @property
    def per(self) -> float:
        """The period in seconds that ``rate`` is counted over."""
        return self._per

    @property
    def burst(self) -> int:
        """Calls that may start back to back after a quiet spell."""
        return self._burst

    @property
    def max_wait(self) -> float | None:
        """Seconds a call may wait for its turn (``None``: no limit)."""
        return self._max_wait

    @property
    def name(self) -> str | None:
        """The name carried by this limiter's events."""
        return self._name

    # -- hooks for pipelines and config ------------------------------------------------------

    kind = "rate_limiter"

    def describe(self) -> str:
        wait = (
            "waits as long as needed"
            if self._max_wait is None
            else f"waits at most {self._max_wait:g}s"
        )
        name = "" if self._name is None else f" [{self._name}]"
        return (
            f"rate limiter: {self._rate:g} calls per {self._per:g}s, bursts of "
            f"{self._burst}, {wait}{name}"
        )

    def to_config(self) -> dict[str, Any]:
        from stoic._configuration import without_none

        # TOML has no null: "unlimited" stands for ``max_wait=None``.
        return without_none(
            {
                "rate": self._rate,
                "per": self._per,
                "burst": self._burst,
                "max_wait": "unlimited" if self._max_wait is None else self._max_wait,
                "name": self._name,
            }
        )

    @classmethod
    def from_config(cls, options: Mapping[str, Any], where: str) -> RateLimiter:
        from stoic._configuration import check_keys

        check_keys(options, ("rate", "per", "burst", "max_wait", "name"), where)
        options = dict(options)
        if options.get("max_wait") == "unlimited":
            options["max_wait"] = None
        return cls(**options)

    def statistics(self) -> RateLimiterStatistics:
        """A frozen snapshot of the current state and counts."""
        available = 0
        if not self._waiting:
            now = _clock.now_ns()
            due = max(self._tat, now)
            # The k-th next call may start now while due + (k - 1) * interval - tolerance <= now.
            spare = now + self._tolerance - due
            if spare >= 0:
                available = min(self._burst, spare // self._interval + 1)
        return RateLimiterStatistics(
            rate=self._rate,
            per=self._per,
            burst=self._burst,
            available=available,
            waiting=self._waiting,
            delayed=self._delayed,
            rejected=self._rejected,
        )

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``await fn(*args, **kwargs)`` once its turn comes; raise ``RateLimited`` if refused.

        Returns what ``fn`` returns and raises what it raises.
        """
        if not _clock.asyncio_seen:
            _clock.first_call()
        now = _clock.now_ns()
        tat = self._tat
        if tat <= now:
            self._tat = now + self._interval
        elif tat <= now + self._tolerance:
            self._tat = tat + self._interval
        else:
            await self._wait_for_turn(now)
        try:
            return await fn(*args, **kwargs)
        except TypeError as exc:
            check_awaited(fn, args, exc)
            raise

    def _decorate(self, fn: Callable[P, Awaitable[T]], /) -> Callable[P, Coroutine[Any, Any, T]]:
        """The decorator form: every call takes a turn (as ``call``)."""
        interval, tolerance, wait_for_turn = self._interval, self._tolerance, self._wait_for_turn
        clock = _clock

        # The body of ``call``, inlined: one coroutine per call instead of two.
        @functools.wraps(fn)
        async def limited(*args: P.args, **kwargs: P.kwargs) -> T:
            if not _clock.asyncio_seen:
                _clock.first_call()
            now = clock.now_ns()
            tat = self._tat
            if tat <= now:
                self._tat = now + interval
            elif tat <= now + tolerance:
                self._tat = tat + interval
            else:
                await wait_for_turn(now)
            try:
                return await fn(*args, **kwargs)
            except TypeError as exc:
                check_awaited(fn, args, exc)
                raise

        return limited

    async def __aenter__(self) -> None:
        if not _clock.asyncio_seen:
            _clock.first_call()
        now = _clock.now_ns()
        tat = self._tat
        if tat <= now:
            self._tat = now + self._interval
        elif tat <= now + self._tolerance:
            self._tat = tat + self._interval
        else:
            await self._wait_for_turn(now)

    async def __aexit__(self, *exc_info: object) -> None:
        # A turn is spent once the call started; there is nothing to give back.
        return None

    # -- waiting for a turn ----------------------------------------------------------------

    async def _wait_for_turn(self, now: int) -> None:
        """Reserve the next free turn and wait for it, or refuse the call (``RateLimited``)."""
        interval, waiting = self._interval, self._waiting
        turn = self._head + waiting * interval if waiting else self._tat - self._tolerance
        wait = turn - now
        if self._max_wait_ns is not None and wait > self._max_wait_ns:
            self._reject("rate", wait)
        deadline = current_deadline()
        if deadline is not None and _clock.reached(turn / NS, deadline):
            self._reject("deadline", wait)
        if testing_state.no_wait and not waiting:
            # Testing mode: the turn is taken as if its time had come.
            self._tat += interval
            await _clock.sleep(0)
            self._delayed += 1
            return
        loop = _clock.running_loop()
        if not waiting:
            self._loop, self._head, self._tat = loop, turn, _QUEUED
            self._timer = _clock.call_at(loop, turn, self._wake)
        elif loop is not self._loop:
            raise RuntimeError(
                f"{self!r} has calls waiting on another event loop; a rate limiter serves one "
                "loop at a time (make one limiter per event loop or thread)"
            )
        self._waiting = waiting + 1
        turn_granted = loop.create_future()
        self._queue.append(turn_granted)
        try:
            await turn_granted
        except BaseException:
            self._leave(turn_granted)
            raise
        self._delayed += 1

    def _wake(self) -> None:
        """The oldest waiting call's turn has come: let it start, then time the next one."""
        assert self._loop is not None
        if self._head - _clock.now_ns() > RESOLUTION_NS:
            # Early (a loop whose clock ticks in milliseconds): not yet.
            self._timer = _clock.call_at(self._loop, self._head, self._wake)
            return
        self._timer = None
        queue = self._queue
        while queue:
            waiter = queue.popleft()
            if not waiter.done():  # passed over: cancelled, already left the count
                waiter.set_result(self._head)
                self._head += self._interval
                self._waiting -= 1
                break
        if self._waiting:
            self._timer = _clock.call_at(self._loop, self._head, self._wake)
        else:
            self._stop_queueing()

    def _leave(self, waiter: asyncio.Future[int]) -> None:
        """A waiting call was cancelled: its turn comes back to the calls behind it."""
        if waiter.done() and not waiter.cancelled():
            # Its turn was granted, but it was cancelled before it could start. Give the
            # turn back when no later turn was handed out yet.
            turn = waiter.result()
            if self._waiting and self._head == turn + self._interval:
                self._head = turn
                if self._timer is not None:
                    self._timer.cancel()
                assert self._loop is not None
                self._timer = _clock.call_at(self._loop, turn, self._wake)
            elif not self._waiting and self._tat == turn + self._interval + self._tolerance:
                self._tat -= self._interval
            return
        waiter.cancel()  # a KeyboardInterrupt leaves it pending: passed over all the same
        self._waiting -= 1
        # The live waiters keep their order and take the turns from ``_head`` on: everyone
        # behind this one moved up a turn, and the last turn is free again.
        if not self._waiting:
            self._stop_queueing()

    def _stop_queueing(self) -> None:
        """No call waits any more: the schedule goes back into ``_tat``."""
        self._tat = self._head + self._tolerance
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
        self._loop = None

    def _reject(self, reason: Literal["rate", "deadline"], wait: int) -> NoReturn:
        # Rounded up to the microsecond: waiting exactly ``retry_after`` always finds the
        # turn due, whatever the rounding of the waiter's float clock.
        retry_after = -(-wait // 1000) / 1e6
        self._rejected += 1
        emit(
            self._listeners,
            CallRejectedByRateLimiter(
                name=self._name,
                reason=reason,
                retry_after=retry_after,
                rate=self._rate,
                per=self._per,
                burst=self._burst,
            ),
        )
        label = "rate limiter" if self._name is None else f"rate limiter {self._name!r}"
        if reason == "deadline":
            message = (
                f"{label}: the next turn is {retry_after:.3f}s away, at or after the deadline "
                "of the timeout around this call"
            )
        else:
            message = (
                f"{label}: over {self._rate:g} calls per {self._per:g}s; the next turn is "
                f"{retry_after:.3f}s away (max_wait={self._max_wait!r})"
            )
        raise RateLimited(message, retry_after=retry_after)
