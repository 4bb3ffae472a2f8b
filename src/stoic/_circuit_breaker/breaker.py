"""Circuit breaker: stop calling a dependency that keeps failing, then probe it back to health.

::

    breaker = CircuitBreaker(CircuitBreakerConfig(failure_threshold=5, timeout=30.0))
    await breaker.call(fetch, url)

    @CircuitBreaker(failure_threshold=3)
    async def get_quote(symbol: str) -> Quote: ...

    async with breaker:
        await client.post("/api", json=data)

CLOSED runs every call and counts failures. When a trip rule fires it turns OPEN: calls are
rejected at once with ``CircuitBreakerOpen`` (the function is not called) for ``timeout``
seconds, the *break duration*. The next call after that turns it HALF_OPEN: at most
``half_open_max_calls`` probes run at a time, ``success_threshold`` probe successes close it,
and any probe failure opens it again (for a longer break when ``break_duration_multiplier``
> 1). A probe holds its permit until it ends by any path, or until its lease (one break
duration) runs out, so a probe that never returns cannot wedge the breaker.

Outcomes are only counted in the state they were admitted in: every state change starts a new
epoch, and a call admitted in an earlier epoch (or a probe whose lease ran out) finishes
without moving any counter that decides the state. Cancellation never counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NoReturn

from stoic import _clock
from stoic._circuit_breaker.config import (
    CLOSED,
    CONFIG_KEYS,
    DEFAULT_CONFIG,
    HALF_OPEN,
    OPEN,
    CircuitBreakerConfig,
    CircuitState,
    Options,
)
from stoic._circuit_breaker.events import (
    CallRejectedByBreaker,
    CircuitBreakerStatistics,
    CircuitStateChanged,
)
from stoic._circuit_breaker.windows import CountWindow, TimeWindow
from stoic._classify import check_awaited, compile_matcher, never_handled
from stoic._events import emit
from stoic._strategy import P, Strategy, T
from stoic.exceptions import CircuitBreakerOpen

if TYPE_CHECKING:
    from typing_extensions import Unpack


__all__ = ["CircuitBreaker"]

_NO_LEASES: dict[int, float] = {}
# Per task: the open ``async with breaker:`` blocks, innermost last, as (breaker, token,
# start, task); the task because a task spawned inside a block inherits the context.
_entries: ContextVar[tuple[tuple[CircuitBreaker, int, float, object], ...]] = ContextVar(
    "stoic_breaker_entries", default=()
)

# How a finished call counts. _UNCOUNTED: cancellation, or a classifier that raised.
_SUCCESS, _FAILURE, _IGNORED, _UNCOUNTED = 0, 1, 2, 3


class CircuitBreaker(Strategy):
    """Reject calls to a failing dependency for a while, then let probes test it.

    ``CircuitBreaker(config=None, **options)``: options are the fields of
    ``CircuitBreakerConfig`` (see there for every default), given as a config, as keywords,
    or both: keywords then override the config's fields (``dataclasses.replace``), so one
    base config can serve several breakers.

    Raises ``CircuitBreakerOpen`` (with ``retry_after``) when it rejects a call; the wrapped
    function's own exceptions pass through untouched. Use it as
    ``await breaker.call(fn, *args, **kwargs)``, as a decorator, or as ``async with breaker:``
    (the block's exception, if any, is classified like a call's). One breaker is meant to be
    shared by many tasks. Events (``CircuitStateChanged``, ``CallRejectedByBreaker``) go to
    listeners after the state has changed, never while a change is half done.
    """

    __slots__ = (
        "_break_duration",
        "_config",
        "_consecutive_failures",
        "_epoch",
        "_failed_calls",
        "_half_open_successes",
        "_ignored_calls",
        "_isolated",
        "_leases",
        "_open_until",
        "_plain",
        "_record",
        "_rejected_calls",
        "_seq",
        "_slow_call_duration",
        "_slow_calls",
        "_state",
        "_successful_calls",
        "_times_opened",
        "_window",
    )

    def __init__(
        self, config: CircuitBreakerConfig | None = None, **options: Unpack[Options]
    ) -> None:
        if config is None:
            # The default config is shared: a breaker with no options costs no config object.
            config = CircuitBreakerConfig(**options) if options else DEFAULT_CONFIG
        elif not isinstance(config, CircuitBreakerConfig):
            raise TypeError(f"config must be a CircuitBreakerConfig or None, got {config!r}")
        elif options:
            config = dataclasses.replace(config, **options)
        self._config = config
        self._record = compile_matcher(config.record, parameter="record")
        self._slow_call_duration = config.slow_call_duration
        self._window: CountWindow | TimeWindow | None = None
        if config.window_size is not None:
            self._window = CountWindow(config.window_size)
        elif config.window_duration is not None:
            self._window = TimeWindow(config.window_duration, config.window_buckets)
        # A success admitted in CLOSED needs nothing but a counter reset: no clock, no window.
        self._plain = (
            self._window is None
            and config.failure_result is None
            and self._slow_call_duration is None
        )
        self._state = CLOSED
        self._isolated = False
        # One counter numbers state epochs and probe tickets, so a token names exactly one:
        # a call admitted in CLOSED holds that state's epoch, a probe holds its ticket.
        self._seq = 0
        self._epoch = 0
        # Probe ticket -> lease deadline. Only HALF_OPEN needs it: until then every breaker
        # shares one empty dict, which nothing but ``_admit`` ever adds to.
        self._leases: dict[int, float] = _NO_LEASES
        self._open_until = 0.0
        self._clear_counts()

    def _clear_counts(self) -> None:
        self._break_duration = self._config.timeout
        self._consecutive_failures = 0
        self._half_open_successes = 0
        self._successful_calls = 0
        self._failed_calls = 0
        self._slow_calls = 0
        self._ignored_calls = 0
        self._rejected_calls = 0
        self._times_opened = 0
        if self._window is not None:
            self._window.clear()

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self._config.name!r}, state={self._state.value})"

    @property
    def config(self) -> CircuitBreakerConfig:
        """The options this breaker runs with."""
        return self._config

    @property
    def name(self) -> str | None:
        """The name carried by this breaker's events."""
        return self._config.name

    # -- hooks for pipelines and config ------------------------------------------------------

    kind = "circuit_breaker"

    def describe(self) -> str:
        config = self._config
        if config.trip == "consecutive":
            rule = f"opens after {config.failure_threshold} consecutive failures"
        else:
            window = (
                f"last {config.window_size} calls"
                if config.window_size is not None
                else f"last {config.window_duration:g}s"
            )
            rule = f"opens at {config.failure_rate:.0%} failures over the {window}"
        name = "" if config.name is None else f" [{config.name}]"
        return f"circuit breaker: {rule}, breaks for {config.timeout:g}s{name}"

    def check_inside(self, inner: Any, where: str) -> None:
        limit = getattr(inner, "time_limit", None)
        if limit is None:
            return
        config = self._config
        if config.window_duration is not None and config.window_duration <= limit:
            raise ValueError(
                f"{where}: the breaker's window ({config.window_duration:g}s) is not longer "
                f"than the timeout inside it ({limit:g}s); outcomes would land after the "
                "window that admitted them"
            )
        if config.slow_call_duration is not None and config.slow_call_duration >= limit:
            raise ValueError(
                f"{where}: the breaker's slow_call_duration ({config.slow_call_duration:g}s) "
                f"is not shorter than the timeout inside it ({limit:g}s), so no call can ever "
                "be slow"
            )

    def to_config(self) -> dict[str, Any]:
        """The fields of its config that differ from the defaults."""
        from stoic._configuration import exception_names

        config = self._config
        if config.failure_result is not None:
            raise ValueError(
                "circuit breaker failure_result is a function, which config cannot express"
            )
        entry: dict[str, Any] = {}
        for key in CONFIG_KEYS:
            value = getattr(config, key)
            if value == getattr(DEFAULT_CONFIG, key):
                continue
            if key in ("record", "ignore"):
                value = exception_names(value, f"circuit breaker {key}")
            entry[key] = value
        return entry

    @classmethod
    def from_config(cls, options: Mapping[str, Any], where: str) -> CircuitBreaker:
        from stoic import _configuration

        _configuration.check_keys(options, CONFIG_KEYS, where)
        options = dict(options)
        for key in ("record", "ignore"):
            if key in options:
                options[key] = _configuration.exceptions(options[key], f"{where}.{key}")
        return cls(**options)

    @property
    def state(self) -> CircuitState:
        """The current state. OPEN turns HALF_OPEN on the first call after the break."""
        return self._state

    def statistics(self) -> CircuitBreakerStatistics:
        """A frozen snapshot of the breaker's state and counts (call it on the event loop)."""
        retry_after: float | None = 0.0
        probes = len(self._leases)
        if self._isolated:
            retry_after = None
        elif self._state is OPEN:
            retry_after = max(0.0, self._open_until - _clock.now())
        elif probes:
            now = _clock.now()
            running = [end for end in self._leases.values() if not _clock.reached(now, end)]
            probes = len(running)
            if probes >= self._config.half_open_max_calls:
                retry_after = min(running) - now
        window = self._window
        if window is not None and self._state is CLOSED:
            window.evict(_clock.now())
        return CircuitBreakerStatistics(
            state=self._state,
            isolated=self._isolated,
            successful_calls=self._successful_calls,
            failed_calls=self._failed_calls,
            slow_calls=self._slow_calls,
            ignored_calls=self._ignored_calls,
            rejected_calls=self._rejected_calls,
            times_opened=self._times_opened,
            consecutive_failures=self._consecutive_failures,
            half_open_successes=self._half_open_successes,
            probes_in_flight=probes,
            window_calls=0 if window is None else window.calls,
            window_failures=0 if window is None else window.failed,
            window_slow_calls=0 if window is None else window.slow,
            break_duration=self._break_duration,
            retry_after=retry_after,
        )

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``await fn(*args, **kwargs)`` unless the breaker rejects it.

        Returns what ``fn`` returns and raises what it raises; raises ``CircuitBreakerOpen``
        without calling ``fn`` when OPEN, isolated, or HALF_OPEN with every probe permit taken.
        """
        if not _clock.asyncio_seen:
            _clock.first_call()
        token = self._epoch if self._state is CLOSED else self._admit()
        started = _clock.now() if self._slow_call_duration is not None else 0.0
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self._settle_exception(token, exc, started, fn, args)
            raise
        if self._plain and token == self._epoch:
            self._successful_calls += 1
            self._consecutive_failures = 0
        else:
            self._settle_result(token, result, started)
        return result

    def _decorate(self, fn: Callable[P, Awaitable[T]], /) -> Callable[P, Coroutine[Any, Any, T]]:
        """The decorator form: every call goes through the breaker (as ``call``)."""
        settle_exception, settle_result = self._settle_exception, self._settle_result
        # Fixed by the (frozen) config, so read once here rather than on every call.
        timed, plain = self._slow_call_duration is not None, self._plain

        # The body of ``call``, inlined: one coroutine per call instead of two.
        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            if not _clock.asyncio_seen:
                _clock.first_call()
            token = self._epoch if self._state is CLOSED else self._admit()
            started = _clock.now() if timed else 0.0
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                settle_exception(token, exc, started, fn, args)
                raise
            if plain and token == self._epoch:
                self._successful_calls += 1
                self._consecutive_failures = 0
            else:
                settle_result(token, result, started)
            return result

        return guarded

    async def __aenter__(self) -> None:
        if not _clock.asyncio_seen:
            _clock.first_call()
        token = self._epoch if self._state is CLOSED else self._admit()
        started = _clock.now() if self._slow_call_duration is not None else 0.0
        # In a context variable, so each task (and each nested block) keeps its own entry.
        _entries.set((*_entries.get(), (self, token, started, asyncio.current_task())))

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        stack = _entries.get()
        if not stack or stack[-1][0] is not self or stack[-1][3] is not asyncio.current_task():
            raise RuntimeError(
                "async with breaker: exit it in the task that entered it, innermost block first "
                "(fixtures that set up and tear down in different tasks should use "
                "breaker.call instead)"
            )
        _, token, started, _ = stack[-1]
        _entries.set(stack[:-1])
        if exc is None:
            self._settle(token, _SUCCESS, started)
        else:
            self._settle_exception(token, exc, started)

    def isolate(self) -> None:
        """Hold the breaker OPEN, rejecting every call, until ``reset()``."""
        old, was_isolated = self._state, self._isolated
        self._isolated = True
        if old is not OPEN:
            self._times_opened += 1
        self._enter(OPEN)
        self._open_until = math.inf
        if not was_isolated:  # also from OPEN: listeners learn that it is now held open
            emit(
                self._config.listeners,
                CircuitStateChanged(self.name, old, OPEN, "isolated", math.inf),
            )

    def reset(self) -> None:
        """Close the breaker and clear every count, the break duration and isolation."""
        old = self._state
        self._isolated = False
        self._enter(CLOSED)
        self._clear_counts()
        if old is not CLOSED:
            emit(self._config.listeners, CircuitStateChanged(self.name, old, CLOSED, "reset"))

    def _enter(self, state: CircuitState) -> None:
        """Start a new epoch in ``state``: every call admitted before it stops counting."""
        self._state = state
        self._seq += 1
        self._epoch = self._seq
        self._leases = _NO_LEASES
        self._half_open_successes = 0
        self._consecutive_failures = 0
        if self._window is not None:
            self._window.clear()

    def _admit(self) -> int:
        """Admit a call while not CLOSED and return its probe ticket, or raise a rejection."""
        now = _clock.now()
        event: CircuitStateChanged | None = None
        if self._state is OPEN:
            if self._isolated:
                self._reject(None)
            if not _clock.reached(now, self._open_until):
                self._reject(self._open_until - now)
            self._enter(HALF_OPEN)
            event = CircuitStateChanged(self.name, OPEN, HALF_OPEN, "break_elapsed")
        leases = self._leases
        if leases is _NO_LEASES:
            leases = self._leases = {}
        if len(leases) >= self._config.half_open_max_calls:
            # A probe that outlived its lease gives up its permit to a new one.
            for ticket in [t for t, deadline in leases.items() if _clock.reached(now, deadline)]:
                del leases[ticket]
            if len(leases) >= self._config.half_open_max_calls:
                # Not 0.0: a retry waiting that long would spin through its attempts while
                # the probes run. A permit is free at the latest when the first lease ends.
                self._reject(min(leases.values()) - now)
        self._seq += 1
        leases[self._seq] = now + self._break_duration
        ticket = self._seq
        if event is not None:
            emit(self._config.listeners, event)
        return ticket

    def _reject(self, retry_after: float | None) -> NoReturn:
        self._rejected_calls += 1
        state = self._state
        emit(self._config.listeners, CallRejectedByBreaker(self.name, state, retry_after))
        label = "" if self.name is None else f" {self.name!r}"
        if retry_after is None:
            message = f"circuit breaker{label} is isolated until reset()"
        elif state is OPEN:
            message = f"circuit breaker{label} is open; retry after {retry_after:.3f}s"
        else:
            limit = self._config.half_open_max_calls
            message = f"circuit breaker{label} is half-open and its {limit} probe(s) are running"
        raise CircuitBreakerOpen(message, retry_after=retry_after)

    def _settle_exception(
        self,
        token: int,
        exc: BaseException,
        started: float,
        fn: Any = None,
        args: tuple[Any, ...] = (),
    ) -> None:
        if type(exc) is TypeError and fn is not None:
            try:
                check_awaited(fn, args, exc)  # raises when stoic caused it: not the callee's
            except BaseException:
                self._settle(token, _UNCOUNTED, started)
                raise
        if never_handled(exc):
            outcome = _UNCOUNTED
        else:
            try:
                ignore = self._config.ignore
                if ignore is not None and compile_matcher(ignore, parameter="ignore")(exc):
                    outcome = _IGNORED
                else:
                    outcome = _FAILURE if self._record(exc) else _IGNORED
            except BaseException:
                self._settle(token, _UNCOUNTED, started)
                raise
        self._settle(token, outcome, started)

    def _settle_result(self, token: int, result: object, started: float) -> None:
        outcome = _SUCCESS
        failure_result = self._config.failure_result
        if failure_result is not None:
            try:
                failed = failure_result(result)
            except BaseException:
                self._settle(token, _UNCOUNTED, started)
                raise
            if failed:
                outcome = _FAILURE
        self._settle(token, outcome, started)

    def _settle(self, token: int, outcome: int, started: float) -> None:
        """Count a finished call and release its probe permit; every finished call comes here."""
        if outcome == _UNCOUNTED:
            self._leases.pop(token, None)
            return
        now = _clock.now()
        slow = (
            self._slow_call_duration is not None
            and outcome != _IGNORED
            and now - started >= self._slow_call_duration
        )
        if outcome == _SUCCESS:
            self._successful_calls += 1
        elif outcome == _FAILURE:
            self._failed_calls += 1
        else:
            self._ignored_calls += 1
        self._slow_calls += slow
        event = None
        if token == self._epoch:  # admitted in this CLOSED epoch
            if outcome != _IGNORED:
                event = self._count_closed(now, outcome == _FAILURE, slow)
        else:
            deadline = self._leases.pop(token, None)
            # Outcomes of calls from an earlier epoch or of expired leases count nowhere.
            if deadline is not None and not _clock.reached(now, deadline) and outcome != _IGNORED:
                if outcome == _FAILURE or slow:
                    event = self._open(now, "probe_failed")
                else:
                    self._half_open_successes += 1
                    if self._half_open_successes >= self._config.success_threshold:
                        self._break_duration = self._config.timeout
                        self._enter(CLOSED)
                        event = CircuitStateChanged(
                            self.name, HALF_OPEN, CLOSED, "probes_succeeded"
                        )
        if event is not None:
            emit(self._config.listeners, event)

    def _count_closed(self, now: float, failed: bool, slow: bool) -> CircuitStateChanged | None:
        if failed or slow:
            self._consecutive_failures += 1
        else:
            self._consecutive_failures = 0
        window = self._window
        if window is None:
            if self._consecutive_failures >= self._config.failure_threshold:
                return self._open(now, "failure_threshold")
            return None
        window.record(now, failed, slow)
        calls = window.calls
        if calls >= self._config.minimum_calls:
            if window.failed / calls >= self._config.failure_rate:
                return self._open(now, "failure_rate")
            if self._slow_call_duration is not None and (
                window.slow / calls >= self._config.slow_call_rate
            ):
                return self._open(now, "slow_call_rate")
        return None

    def _open(self, now: float, reason: str) -> CircuitStateChanged:
        old = self._state
        if old is HALF_OPEN:
            cap = self._config.max_break_duration
            grown = self._break_duration * self._config.break_duration_multiplier
            self._break_duration = grown if cap is None else min(grown, cap)
        self._enter(OPEN)
        self._open_until = now + self._break_duration
        self._times_opened += 1
        return CircuitStateChanged(self.name, old, OPEN, reason, self._break_duration)
