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

import functools
import math
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NoReturn

from stoic import _clock
from stoic._events import Event, Listener, Severity, emit, validate_listeners
from stoic._strategy import P, Strategy, T
from stoic.exceptions import RateLimited
from stoic.timeout import current_deadline

__all__ = ["CallRejectedByRateLimiter", "RateLimiter", "RateLimiterStatistics"]


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


def _positive_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if not (0 < value < math.inf):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


class RateLimiter(Strategy):
    """Start at most ``rate`` calls per ``per`` seconds, in bursts of up to ``burst`` calls.

    - ``rate``: calls allowed per ``per`` seconds (a finite number > 0; fractions are fine:
      ``RateLimiter(1, per=30.0)`` is one call every 30 s).
    - ``per``: the period in seconds that ``rate`` is counted over (finite > 0, default 1.0).
    - ``burst``: calls that may start back to back after a quiet spell (int >= 1). Default
      ``None``: ``rate`` rounded down, at least 1 (one period's worth, as aiolimiter and
      Guava do). Over any span of ``t`` seconds at most ``burst + rate * t / per`` calls start;
      ``burst=1`` spaces every call exactly ``per / rate`` apart.
    - ``max_wait``: seconds a call may wait for its turn (default ``0.0``: a call that is not
      due is refused at once; ``None``: wait as long as it takes). A call whose turn is
      further away is refused at once, without waiting.
    - ``name``: carried by events; ``listeners``: callables receiving each event.

    A call whose turn would come only after the deadline of a stoic ``timeout`` around it is
    refused at once as well: it could only time out.

    Raises ``RateLimited`` (a ``stoic.exceptions.RejectedCall``) with ``retry_after`` set when
    the call is refused; ``Retry(delay_hint=retry_after_hint)`` around the limiter then waits
    exactly that long. The wrapped function's own exceptions pass through untouched. A call
    cancelled while it waits gives its turn back when no later call was scheduled behind it;
    otherwise the turn stays unused, so the limiter may admit slightly less than the rate
    after cancellations, never more. Use it as ``await limiter.call(fn, *args, **kwargs)``,
    as a decorator, or as ``async with limiter:`` (which takes a turn on entry); one limiter
    object is meant to be shared by every task that draws on the same quota.
    """

    __slots__ = (
        "_burst",
        "_delayed",
        "_interval",
        "_listeners",
        "_max_wait",
        "_name",
        "_per",
        "_rate",
        "_rejected",
        "_tat",
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
        rate = _positive_seconds("rate", rate)
        per = _positive_seconds("per", per)
        if burst is None:
            burst = max(1, math.floor(rate))
        elif isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be None or an int >= 1, got {burst!r}")
        if max_wait is not None:
            if isinstance(max_wait, bool) or not isinstance(max_wait, int | float):
                raise ValueError(f"max_wait must be None or seconds >= 0, got {max_wait!r}")
            if not (max_wait >= 0 and math.isfinite(max_wait)):
                raise ValueError(
                    f"max_wait must be None or a finite number of seconds >= 0, got {max_wait!r}"
                )
            max_wait = float(max_wait)
        self._rate = rate
        self._per = per
        self._burst = burst
        self._max_wait = max_wait
        self._name = name
        self._listeners = validate_listeners(listeners)
        # Seconds between two calls at the steady rate, and how far ahead of its schedule a
        # call may start (the burst).
        self._interval = per / rate
        self._tolerance = (burst - 1) * self._interval
        # The theoretical arrival time: when the next call is due at the steady rate, on
        # stoic's clock. A call may start once ``_tat - _tolerance`` is not in the future.
        self._tat = -math.inf
        self._delayed = 0
        self._rejected = 0
        self._waiting = 0

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

    def statistics(self) -> RateLimiterStatistics:
        """A frozen snapshot of the current state and counts."""
        now = _clock.now()
        due = max(self._tat, now)
        # The k-th next call may start now while due + (k - 1) * interval - tolerance <= now;
        # the epsilon keeps (burst - 1) * interval / interval from rounding down a whole call.
        spare = (now + self._tolerance - due) / self._interval
        available = max(0, min(self._burst, math.floor(spare + 1e-9) + 1))
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
        now = _clock.now()
        tat = self._tat
        if tat <= now:
            self._tat = now + self._interval
        elif tat <= now + self._tolerance:
            self._tat = tat + self._interval
        else:
            await self._wait_for_turn(now)
        return await fn(*args, **kwargs)

    def __call__(self, fn: Callable[P, Awaitable[T]], /) -> Callable[P, Coroutine[Any, Any, T]]:
        """Decorate an async function: every call takes a turn (as ``call``)."""
        interval, tolerance, wait_for_turn = self._interval, self._tolerance, self._wait_for_turn
        clock = _clock

        # The body of ``call``, inlined: one coroutine per call instead of two.
        @functools.wraps(fn)
        async def limited(*args: P.args, **kwargs: P.kwargs) -> T:
            now = clock.now()
            tat = self._tat
            if tat <= now:
                self._tat = now + interval
            elif tat <= now + tolerance:
                self._tat = tat + interval
            else:
                await wait_for_turn(now)
            return await fn(*args, **kwargs)

        return limited

    async def __aenter__(self) -> None:
        now = _clock.now()
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

    async def _wait_for_turn(self, now: float) -> None:
        tat = self._tat
        start_at = tat - self._tolerance
        wait = start_at - now
        max_wait = self._max_wait
        if max_wait is not None and wait > max_wait:
            self._reject("rate", wait)
        deadline = current_deadline()
        if deadline is not None and start_at >= deadline:
            self._reject("deadline", wait)
        # Reserve the turn before waiting: later callers queue behind it, in arrival order.
        reserved = tat + self._interval
        self._tat = reserved
        self._waiting += 1
        try:
            await _clock.sleep(wait)
        except BaseException:
            # Nobody scheduled behind this turn: hand it back. Otherwise later turns were
            # spaced from it, and giving it to a newcomer would start two calls too close.
            if self._tat == reserved:
                self._tat = tat
            raise
        finally:
            self._waiting -= 1
        self._delayed += 1

    def _reject(self, reason: Literal["rate", "deadline"], retry_after: float) -> NoReturn:
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
                f"{label}: the next turn is {retry_after:.3f}s away, after the deadline of "
                "the timeout around this call"
            )
        else:
            message = (
                f"{label}: over {self._rate:g} calls per {self._per:g}s; the next turn is "
                f"{retry_after:.3f}s away (max_wait={self._max_wait!r})"
            )
        raise RateLimited(message, retry_after=retry_after)
