"""The circuit breaker's decision core: states, epochs, probe leases and counts.

Synchronous, with no I/O and no asyncio: ``admit`` decides whether a call may run (raising
``CircuitBreakerOpen`` when not), ``settle*`` counts how it ended. The strategy
(``breaker.py``) is the async driver around it; a store (``stoic.stores``) makes and keeps
controllers, and owns the clock they compare against. Events go to the config's listeners once a
change is complete, never while it is half done.

Outcomes only count in the state they were admitted in: every state change starts a new
epoch, and a call admitted in an earlier epoch (or a probe whose lease ran out) finishes
without moving any counter that decides the state. Cancellation never counts.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NoReturn

from stoic._circuit_breaker.config import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    CircuitBreakerConfig,
    CircuitState,
)
from stoic._circuit_breaker.events import (
    CallRejectedByBreaker,
    CircuitBreakerStatistics,
    CircuitStateChanged,
)
from stoic._circuit_breaker.windows import CountWindow, TimeWindow
from stoic._classify import compile_matcher, never_handled
from stoic._clock import reached
from stoic._events import Event, emit
from stoic.exceptions import CircuitBreakerOpen

if TYPE_CHECKING:
    from stoic.stores import Clock

__all__ = ["FAILURE", "IGNORED", "SUCCESS", "UNCOUNTED", "BreakerController"]

# How a finished call counts. UNCOUNTED: cancellation, or a classifier that raised.
SUCCESS, FAILURE, IGNORED, UNCOUNTED = 0, 1, 2, 3
_NO_LEASES: dict[int, float] = {}


class BreakerController:
    """One breaker's state machine. Not thread-safe: run it on one event loop at a time.

    The drivers read ``closed_epoch`` to admit (``admit()`` when it is -1) and, when a call
    succeeds with its token equal to ``plain_epoch``, bump ``successful_calls`` and reset
    ``consecutive_failures`` themselves: what ``settle_result`` does for it.
    """

    __slots__ = (
        "break_duration",
        "clock",
        "closed_epoch",
        "config",
        "consecutive_failures",
        "epoch",
        "failed_calls",
        "half_open_successes",
        "ignore",
        "ignored_calls",
        "isolated",
        "leases",
        "open_until",
        "plain_epoch",
        "record",
        "rejected_calls",
        "seq",
        "slow_calls",
        "state",
        "successful_calls",
        "timed",
        "times_opened",
        "window",
    )

    def __init__(self, config: CircuitBreakerConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.record = compile_matcher(config.record, parameter="record")
        self.ignore = (
            None if config.ignore is None else compile_matcher(config.ignore, parameter="ignore")
        )
        self.window: CountWindow | TimeWindow | None = None
        if config.window_size is not None:
            self.window = CountWindow(config.window_size)
        elif config.window_duration is not None:
            self.window = TimeWindow(config.window_duration, config.window_buckets)
        self.state = CLOSED
        self.isolated = False
        # One counter numbers state epochs and probe tickets, so a token names exactly one:
        # a call admitted in CLOSED holds that state's epoch, a probe holds its ticket.
        self.seq = 0
        self.epoch = 0
        # What the drivers read first, each one field for speed: ``closed_epoch`` is the epoch
        # while CLOSED (a call admitted now holds it as its token) and -1 otherwise;
        # ``plain_epoch`` is the same for a ``plain`` breaker (whose success in it needs only
        # the counter reset) and -1 otherwise. No token is ever -1.
        self.closed_epoch = 0
        self.plain_epoch = 0 if self.plain else -1
        # Whether a call's duration counts (a slow-call rule): then the driver reads the clock.
        self.timed = config.slow_call_duration is not None
        # Probe ticket -> lease deadline. Only HALF_OPEN needs it: until then every breaker
        # shares one empty dict, which nothing but ``admit`` ever adds to.
        self.leases: dict[int, float] = _NO_LEASES
        self.open_until = 0.0
        self.clear_counts()

    @property
    def plain(self) -> bool:
        """Whether a success admitted in CLOSED needs nothing but a counter reset (no clock,
        no window): what the driver's inlined fast path handles."""
        config = self.config
        return (
            self.window is None
            and config.failure_result is None
            and config.slow_call_duration is None
        )

    def _notify(self, event: Event) -> None:
        emit(self.config.listeners, event)

    def clear_counts(self) -> None:
        self.break_duration = self.config.timeout
        self.consecutive_failures = 0
        self.half_open_successes = 0
        self.successful_calls = 0
        self.failed_calls = 0
        self.slow_calls = 0
        self.ignored_calls = 0
        self.rejected_calls = 0
        self.times_opened = 0
        if self.window is not None:
            self.window.clear()

    def statistics(self) -> CircuitBreakerStatistics:
        """A frozen snapshot of the breaker's state and counts (call it on the event loop)."""
        retry_after: float | None = 0.0
        probes = len(self.leases)
        if self.isolated:
            retry_after = None
        elif self.state is OPEN:
            retry_after = max(0.0, self.open_until - self.clock.now())
        elif probes:
            now = self.clock.now()
            running = [end for end in self.leases.values() if not reached(now, end)]
            probes = len(running)
            if probes >= self.config.half_open_max_calls:
                retry_after = min(running) - now
        window = self.window
        if window is not None and self.state is CLOSED:
            window.evict(self.clock.now())
        return CircuitBreakerStatistics(
            state=self.state,
            isolated=self.isolated,
            successful_calls=self.successful_calls,
            failed_calls=self.failed_calls,
            slow_calls=self.slow_calls,
            ignored_calls=self.ignored_calls,
            rejected_calls=self.rejected_calls,
            times_opened=self.times_opened,
            consecutive_failures=self.consecutive_failures,
            half_open_successes=self.half_open_successes,
            probes_in_flight=probes,
            window_calls=0 if window is None else window.calls,
            window_failures=0 if window is None else window.failed,
            window_slow_calls=0 if window is None else window.slow,
            break_duration=self.break_duration,
            retry_after=retry_after,
        )

    def isolate(self) -> None:
        """Hold the breaker OPEN, rejecting every call, until ``reset()``."""
        old, was_isolated = self.state, self.isolated
        self.isolated = True
        if old is not OPEN:
            self.times_opened += 1
        self.enter(OPEN)
        self.open_until = math.inf
        if not was_isolated:  # also from OPEN: listeners learn that it is now held open
            self._notify(CircuitStateChanged(self.config.name, old, OPEN, "isolated", math.inf))

    def reset(self) -> None:
        """Close the breaker and clear every count, the break duration and isolation."""
        old = self.state
        self.isolated = False
        self.enter(CLOSED)
        self.clear_counts()
        if old is not CLOSED:
            self._notify(CircuitStateChanged(self.config.name, old, CLOSED, "reset"))

    def enter(self, state: CircuitState) -> None:
        """Start a new epoch in ``state``: every call admitted before it stops counting."""
        self.state = state
        self.seq += 1
        self.epoch = self.seq
        self.closed_epoch = self.seq if state is CLOSED else -1
        self.plain_epoch = self.closed_epoch if self.plain else -1
        self.leases = _NO_LEASES
        self.half_open_successes = 0
        self.consecutive_failures = 0
        if self.window is not None:
            self.window.clear()

    def admit(self) -> int:
        """Admit a call while not CLOSED and return its probe ticket, or raise
        ``CircuitBreakerOpen``."""
        now = self.clock.now()
        event: CircuitStateChanged | None = None
        if self.state is OPEN:
            if self.isolated:
                self.reject(None)
            if not reached(now, self.open_until):
                self.reject(self.open_until - now)
            self.enter(HALF_OPEN)
            event = CircuitStateChanged(self.config.name, OPEN, HALF_OPEN, "break_elapsed")
        leases = self.leases
        if leases is _NO_LEASES:
            leases = self.leases = {}
        if len(leases) >= self.config.half_open_max_calls:
            # A probe that outlived its lease gives up its permit to a new one.
            for ticket in [t for t, deadline in leases.items() if reached(now, deadline)]:
                del leases[ticket]
            if len(leases) >= self.config.half_open_max_calls:
                # Not 0.0: a retry waiting that long would spin through its attempts while
                # the probes run. A permit is free at the latest when the first lease ends.
                self.reject(min(leases.values()) - now)
        self.seq += 1
        leases[self.seq] = now + self.break_duration
        ticket = self.seq
        if event is not None:
            self._notify(event)
        return ticket

    def reject(self, retry_after: float | None) -> NoReturn:
        self.rejected_calls += 1
        state = self.state
        self._notify(CallRejectedByBreaker(self.config.name, state, retry_after))
        label = "" if self.config.name is None else f" {self.config.name!r}"
        if retry_after is None:
            message = f"circuit breaker{label} is isolated until reset()"
        elif state is OPEN:
            message = f"circuit breaker{label} is open; retry after {retry_after:.3f}s"
        else:
            limit = self.config.half_open_max_calls
            message = f"circuit breaker{label} is half-open and its {limit} probe(s) are running"
        raise CircuitBreakerOpen(message, retry_after=retry_after)

    def settle_exception(self, token: int, exc: BaseException, started: float) -> None:
        """Count a call that raised ``exc``: a failure, ignored, or (cancellation) nothing."""
        if never_handled(exc):
            outcome = UNCOUNTED
        else:
            try:
                ignore = self.ignore
                if ignore is not None and ignore(exc):
                    outcome = IGNORED
                else:
                    outcome = FAILURE if self.record(exc) else IGNORED
            except BaseException:
                self.settle(token, UNCOUNTED, started)
                raise
        self.settle(token, outcome, started)

    def settle_result(self, token: int, result: object, started: float) -> None:
        outcome = SUCCESS
        failure_result = self.config.failure_result
        if failure_result is not None:
            try:
                failed = failure_result(result)
            except BaseException:
                self.settle(token, UNCOUNTED, started)
                raise
            if failed:
                outcome = FAILURE
        config = self.config
        if outcome == SUCCESS and token == self.epoch and config.slow_call_duration is None:
            # A success admitted in this CLOSED epoch (a rate-trip breaker's usual call):
            # ``settle``'s outcome without its branches. It cannot be slow; it can still trip
            # the failure rate, by bringing the window to ``minimum_calls`` or by the calls
            # that aged out of a time window.
            self.successful_calls += 1
            self.consecutive_failures = 0
            window = self.window
            if window is not None:
                now = self.clock.now()
                window.record(now, False, False)
                calls = window.calls
                if calls >= config.minimum_calls and window.failed / calls >= config.failure_rate:
                    self._notify(self.open(now, "failure_rate"))
            return
        self.settle(token, outcome, started)

    def settle(self, token: int, outcome: int, started: float) -> None:
        """Count a finished call and release its probe permit; every finished call comes here."""
        if outcome == UNCOUNTED:
            self.leases.pop(token, None)
            return
        now = self.clock.now()
        slow = (
            self.config.slow_call_duration is not None
            and outcome != IGNORED
            and now - started >= self.config.slow_call_duration
        )
        if outcome == SUCCESS:
            self.successful_calls += 1
        elif outcome == FAILURE:
            self.failed_calls += 1
        else:
            self.ignored_calls += 1
        self.slow_calls += slow
        event = None
        if token == self.epoch:  # admitted in this CLOSED epoch
            if outcome != IGNORED:
                event = self.count_closed(now, outcome == FAILURE, slow)
        else:
            deadline = self.leases.pop(token, None)
            # Outcomes of calls from an earlier epoch or of expired leases count nowhere.
            if deadline is not None and not reached(now, deadline) and outcome != IGNORED:
                if outcome == FAILURE or slow:
                    event = self.open(now, "probe_failed")
                else:
                    self.half_open_successes += 1
                    if self.half_open_successes >= self.config.success_threshold:
                        self.break_duration = self.config.timeout
                        self.enter(CLOSED)
                        event = CircuitStateChanged(
                            self.config.name, HALF_OPEN, CLOSED, "probes_succeeded"
                        )
        if event is not None:
            self._notify(event)

    def count_closed(self, now: float, failed: bool, slow: bool) -> CircuitStateChanged | None:
        if failed or slow:
            self.consecutive_failures += 1
        else:
            self.consecutive_failures = 0
        window = self.window
        if window is None:
            if self.consecutive_failures >= self.config.failure_threshold:
                return self.open(now, "failure_threshold")
            return None
        window.record(now, failed, slow)
        calls = window.calls
        if calls >= self.config.minimum_calls:
            if window.failed / calls >= self.config.failure_rate:
                return self.open(now, "failure_rate")
            if self.config.slow_call_duration is not None and (
                window.slow / calls >= self.config.slow_call_rate
            ):
                return self.open(now, "slow_call_rate")
        return None

    def open(self, now: float, reason: str) -> CircuitStateChanged:
        old = self.state
        if old is HALF_OPEN:
            cap = self.config.max_break_duration
            grown = self.break_duration * self.config.break_duration_multiplier
            self.break_duration = grown if cap is None else min(grown, cap)
        self.enter(OPEN)
        self.open_until = now + self.break_duration
        self.times_opened += 1
        return CircuitStateChanged(self.config.name, old, OPEN, reason, self.break_duration)
