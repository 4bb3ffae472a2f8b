"""Rate limiter: start at most ``rate`` calls per ``per`` seconds, in bursts of up to ``burst``.

A rate limiter keeps a caller inside a quota (an API's "100 requests per minute") or keeps a
hot loop from flooding a dependency::

    github = RateLimiter(5000, per=3600.0, max_wait=10.0)
    await github.call(fetch_issue, number)

    @RateLimiter(10, burst=1, max_wait=None)      # one call every 0.1 s, waiting as needed
    async def poll() -> Status: ...

    async with github:
        await client.get("/rate_limit")

The algorithm is GCRA, the virtual-scheduling form of a token bucket: the schedule is one
integer, the nanosecond at which the next call is due at the steady rate (``RateState``, which
a store keeps). Admitting a call that is due is one clock read and two comparisons, without a
lock or a timer. A call that is not due yet takes the next free turn in a FIFO queue and
waits for it (one timer wakes the oldest waiter), so waiters start strictly in arrival order,
exactly one ``per / rate`` apart, a cancelled waiter gives its turn back, and a call whose
turn is too far away is refused at once instead of after waiting in vain.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Literal, NoReturn

from stoic import _clock, _validate
from stoic._classify import WrongLoop, check_awaited
from stoic._clock import NS, RESOLUTION_NS, testing_state
from stoic._events import Event, Listener, Severity, emit, validate_listeners
from stoic._strategy import Frozen, P, T, set_field as _set
from stoic._timeout import current_deadline
from stoic.exceptions import RateLimited
from stoic.stores import Clock, RateStore

__all__ = ["CallRejectedByRateLimiter", "RateLimiter", "RateLimiterStatistics"]

# While calls wait, ``_tat`` holds this instead of the real schedule: no call is ever due
# against it, so the fast path sends every newcomer to the queue (first come, first served)
# without a check of its own.
_QUEUED = 1 << 126
_NEVER_CALLED = -(1 << 126)  # before any clock reading, however far back a clock starts
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


class RateLimiter(Frozen):
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
        "_clock",
        "_listeners",
        "_max_wait",
        "_max_wait_ns",
        "_name",
        "_per",
        "_rate",
        "_state",
        "_store",
    )
    _rate: float
    _per: float
    _burst: int
    _max_wait: float | None
    _max_wait_ns: int | None
    _name: str | None
    _listeners: tuple[Listener, ...]
    _store: RateStore | None
    _state: RateState
    _clock: Clock

    def __init__(
        self,
        rate: float,
        per: float = 1.0,
        *,
        burst: int | None = None,
        max_wait: float | None = 0.0,
        name: str | None = None,
        listeners: Iterable[Listener] = (),
        store: RateStore | None = None,
    ) -> None:
        rate = _validate.number(rate, "rate", minimum=0.0, open_below=True)
        per = _validate.seconds(per, "per", positive=True)
        # Exact: the interval is the ceiling of per / rate in nanoseconds, both read as the
        # decimals they were written as (``0.1`` is one tenth, not the binary float above it).
        exact = _decimal(per) * NS / _decimal(rate)
        interval = math.ceil(exact)
        if interval > _MAX_INTERVAL * NS or exact < 1:
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
            max_wait = _validate.seconds(
                max_wait, "max_wait", optional=True, maximum=float(_MAX_INTERVAL)
            )
        _set(self, "_rate", rate)
        _set(self, "_per", per)
        _set(self, "_burst", burst)
        _set(self, "_max_wait", max_wait)
        _set(self, "_max_wait_ns", None if max_wait is None else round(max_wait * NS))
        _set(self, "_name", _validate.name(name))
        _set(self, "_listeners", validate_listeners(listeners))
        if store is not None:
            _validate.instance(store, "store", RateStore, "a stoic.stores.RateStore")
        _set(self, "_store", store)
        # The schedule (its turns are ``interval`` nanoseconds apart, ``burst`` may start back
        # to back), and the clock it is kept on: the store's, or stoic's own.
        state = (
            RateState(interval, burst) if store is None else store.rate(self._name, interval, burst)
        )
        _set(self, "_state", state)
        _set(self, "_clock", _clock if store is None else store.clock)

    def options(self) -> dict[str, Any]:
        return {
            "rate": self._rate,
            "per": self._per,
            "burst": self._burst,
            "max_wait": self._max_wait,
            "name": self._name,
            "listeners": self._listeners,
            "store": self._store,
        }

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
        state = self._state
        return RateLimiterStatistics(
            rate=self._rate,
            per=self._per,
            burst=self._burst,
            # The k-th next call may start now while due + (k - 1) * interval - tolerance <= now.
            available=state.available(self._clock.now_ns()),
            waiting=state.waiting,
            delayed=state.delayed,
            rejected=state.rejected,
        )

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``await fn(*args, **kwargs)`` once its turn comes; raise ``RateLimited`` if refused.

        Returns what ``fn`` returns and raises what it raises.
        """
        if not _clock.asyncio_seen:
            _clock.first_call()
        state = self._state
        now = self._clock.now_ns()
        # ``RateState.take``, inlined: the happy path costs no call of its own.
        tat = state.tat
        if tat <= now:
            state.tat = now + state.interval
        elif tat <= now + state.tolerance:
            state.tat = tat + state.interval
        else:
            await state.wait_for_turn(now, self._max_wait_ns, self._reject)
        try:
            return await fn(*args, **kwargs)
        except TypeError as exc:
            check_awaited(fn, args, exc)
            raise

    def _decorate(self, fn: Callable[P, Awaitable[T]], /) -> Callable[P, Coroutine[Any, Any, T]]:
        """The decorator form: every call takes a turn (as ``call``)."""
        state, clock, max_wait_ns, reject = (
            self._state,
            self._clock,
            self._max_wait_ns,
            self._reject,
        )
        interval, tolerance, wait_for_turn = state.interval, state.tolerance, state.wait_for_turn

        # The body of ``call``, inlined: one coroutine per call instead of two.
        @functools.wraps(fn)
        async def limited(*args: P.args, **kwargs: P.kwargs) -> T:
            if not _clock.asyncio_seen:
                _clock.first_call()
            now = clock.now_ns()
            tat = state.tat
            if tat <= now:
                state.tat = now + interval
            elif tat <= now + tolerance:
                state.tat = tat + interval
            else:
                await wait_for_turn(now, max_wait_ns, reject)
            try:
                return await fn(*args, **kwargs)
            except TypeError as exc:
                check_awaited(fn, args, exc)
                raise

        return limited

    async def __aenter__(self) -> None:
        if not _clock.asyncio_seen:
            _clock.first_call()
        state, now = self._state, self._clock.now_ns()
        if not state.take(now):
            await state.wait_for_turn(now, self._max_wait_ns, self._reject)

    async def __aexit__(self, *exc_info: object) -> None:
        # A turn is spent once the call started; there is nothing to give back.
        return None

    def _reject(self, reason: Literal["rate", "deadline"], wait: int) -> NoReturn:
        # Rounded up to the microsecond: waiting exactly ``retry_after`` always finds the
        # turn due, whatever the rounding of the waiter's float clock.
        retry_after = -(-wait // 1000) / 1e6
        self._state.rejected += 1
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


def _decimal(value: float) -> Fraction:
    """``value`` as the decimal it was written as (its shortest round-tripping form)."""
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


_Reject = Callable[[Literal["rate", "deadline"], int], NoReturn]


class RateState:
    """A rate limiter's schedule: what a store keeps (``stoic.stores``).

    The GCRA state is one number, ``tat``, the theoretical arrival time: when the next call
    is due at the steady rate, in integer nanoseconds on the store's clock. A call may start
    once ``tat - tolerance`` is not in the future, and then moves ``tat`` one ``interval``
    on (``take``: the decision, no I/O). Calls that must wait queue here, in arrival order,
    because the turns they are handed are the schedule's: while any waits, ``tat`` is
    ``_QUEUED`` (so every fast path sees "not due") and ``head`` is the oldest one's turn.
    """

    __slots__ = (
        "burst",
        "delayed",
        "head",
        "interval",
        "loop",
        "queue",
        "rejected",
        "tat",
        "timer",
        "tolerance",
        "waiting",
    )

    def __init__(self, interval_ns: int, burst: int) -> None:
        self.interval = interval_ns
        self.burst = burst
        # How far ahead of its schedule a call may start: the burst.
        self.tolerance = (burst - 1) * interval_ns
        self.tat = _NEVER_CALLED
        # The waiting calls' futures, oldest first (cancelled ones linger until passed over),
        # how many are live, the turn of the oldest live one (the others follow one interval
        # apart), the timer that wakes it, and the loop they wait on.
        self.queue: deque[asyncio.Future[int]] = deque()
        self.waiting = 0
        self.head = 0
        self.timer: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.delayed = 0
        self.rejected = 0

    def take(self, now: int) -> bool:
        """Take the turn due at ``now`` if there is one (the drivers inline this)."""
        tat = self.tat
        if tat <= now:
            self.tat = now + self.interval
        elif tat <= now + self.tolerance:
            self.tat = tat + self.interval
        else:
            return False
        return True

    def available(self, now: int) -> int:
        """Calls that could start at ``now`` without waiting."""
        if self.waiting:
            return 0
        due = max(self.tat, now)
        spare = now + self.tolerance - due
        return 0 if spare < 0 else min(self.burst, spare // self.interval + 1)

    async def wait_for_turn(self, now: int, max_wait_ns: int | None, reject: _Reject) -> None:
        """Reserve the next free turn and wait for it, or refuse the call through ``reject``
        (which raises): ``"rate"`` when the turn is more than ``max_wait_ns`` away,
        ``"deadline"`` when it comes at or after the deadline around the call."""
        if self.waiting and self.loop is not None and self.loop.is_closed():
            self.abandon()
        interval, waiting = self.interval, self.waiting
        turn = self.head + waiting * interval if waiting else self.tat - self.tolerance
        wait = turn - now
        # Within the clock's resolution of ``max_wait`` is at it: a turn exactly ``max_wait``
        # away waits, whatever the rounding of ``max_wait`` to nanoseconds.
        if max_wait_ns is not None and wait > max_wait_ns + RESOLUTION_NS:
            reject("rate", wait)
        deadline = current_deadline()
        if deadline is not None and _clock.reached(turn / NS, deadline):
            reject("deadline", wait)
        if testing_state.no_wait and not waiting:
            # Testing mode: the turn is taken as if its time had come.
            self.tat += interval
            await _clock.sleep(0)
            self.delayed += 1
            return
        loop = _clock.running_loop()
        if not waiting:
            self.loop, self.head, self.tat = loop, turn, _QUEUED
            self.timer = _clock.call_at(loop, turn, self.wake)
        elif loop is not self.loop:
            raise WrongLoop(
                "this rate limiter has calls waiting on another event loop; a rate limiter "
                "serves one loop at a time (make one limiter per event loop or thread)"
            )
        self.waiting = waiting + 1
        turn_granted = loop.create_future()
        self.queue.append(turn_granted)
        try:
            await turn_granted
        except BaseException:
            self.leave(turn_granted)
            raise
        self.delayed += 1

    def wake(self) -> None:
        """The oldest waiting call's turn has come: let it start, then time the next one."""
        assert self.loop is not None
        if self.head - _clock.now_ns() > RESOLUTION_NS:
            # Early (a loop whose clock ticks in milliseconds): not yet.
            self.timer = _clock.call_at(self.loop, self.head, self.wake)
            return
        self.timer = None
        queue = self.queue
        while queue:
            waiter = queue.popleft()
            # A done one was cancelled: passed over here; ``leave`` takes it off the count
            # (it may not have run yet, but runs before that waiter's task goes on).
            if not waiter.done():
                waiter.set_result(self.head)
                self.head += self.interval
                self.waiting -= 1
                break
        if self.waiting:
            self.timer = _clock.call_at(self.loop, self.head, self.wake)
        else:
            self.stop_queueing()

    def leave(self, waiter: asyncio.Future[int]) -> None:
        """A waiting call was cancelled: its turn comes back to the calls behind it."""
        if waiter.done() and not waiter.cancelled():
            # Its turn was granted, but it was cancelled before it could start. Give the
            # turn back when no later turn was handed out yet.
            turn = waiter.result()
            if self.waiting and self.head == turn + self.interval:
                self.head = turn
                if self.timer is not None:
                    self.timer.cancel()
                assert self.loop is not None
                self.timer = _clock.call_at(self.loop, turn, self.wake)
            elif not self.waiting and self.tat == turn + self.interval + self.tolerance:
                self.tat -= self.interval
            return
        self.waiting -= 1
        # The live waiters keep their order and take the turns from ``head`` on: everyone
        # behind this one moved up a turn, and the last turn is free again.
        if not self.waiting:
            self.stop_queueing()
        # Cancelled after the count (a KeyboardInterrupt leaves it pending: passed over all the
        # same); on a closed loop cancelling raises, and there is nobody left to tell.
        with contextlib.suppress(RuntimeError):
            waiter.cancel()

    def abandon(self) -> None:
        """The loop the calls waited on is closed: they can never start, so nobody waits."""
        self.waiting = 0
        self.stop_queueing()

    def stop_queueing(self) -> None:
        """No call waits any more: the schedule goes back into ``_tat``."""
        self.tat = self.head + self.tolerance
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()
        self.loop = None
