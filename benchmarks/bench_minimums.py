"""Hand-written minimums: the least code that does each strategy's job, so a ratio to it
says what stoic's generality costs. Each is what a careful engineer would write inline,
with ``*args, **kwargs`` where stoic takes them, and nothing stoic does beyond the job
(no events, no statistics, no epochs). Registered into the groups of ``bench_cases`` and
``bench_stacks``, and into two groups of their own (off the happy path; construction).
"""

from __future__ import annotations

import time
import types
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from time import perf_counter_ns
from typing import Any

from bench_registry import (
    Runner,
    case,
    flaky_once,
    group,
    hand_retry_loop,
    loop0,
    loop1,
    loop_with,
    ok,
)

MINIMUM = "hand-written minimum"


@types.coroutine
def _yield() -> Generator[None, None, None]:
    """A bare yield to the loop: the cheapest wait there is."""
    yield


# -- retry ------------------------------------------------------------------------------------


async def _retry_call(fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
    for attempt in range(3):
        try:
            return await fn(*args, **kwargs)
        except Exception:
            if attempt == 2:
                raise
        await _yield()
    raise AssertionError("unreachable")


def _retry_decorator(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def retrying(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(3):
            try:
                return await fn(*args, **kwargs)
            except Exception:
                if attempt == 2:
                    raise
            await _yield()
        raise AssertionError("unreachable")

    return retrying


@case("retry_ok", MINIMUM, "baseline")
def _min_retry_call() -> Runner:
    return loop1(_retry_call, ok)


@case("retry_ok", "hand-written minimum, as a decorator", "baseline")
def _min_retry_decorator() -> Runner:
    return loop0(_retry_decorator(ok))


class _Attempts:
    """A hand-written ``async for attempt in policy: with attempt:`` loop."""

    __slots__ = ("done", "failed", "number")

    def __init__(self) -> None:
        self.number = 0
        self.done = False
        self.failed = False

    def __aiter__(self) -> _Attempts:
        return self

    async def __anext__(self) -> _Attempts:
        if self.done:
            raise StopAsyncIteration
        if self.number:
            await _yield()
        self.number += 1
        return self

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        if exc is None or self.number >= 3 or not isinstance(exc, Exception):
            self.done = True
            return False
        return True


@case("retry_ok", "hand-written `async for attempt` loop", "baseline")
def _min_retry_loop() -> Runner:
    async def run(n: int) -> int:
        start = perf_counter_ns()
        for _ in range(n):
            async for attempt in _Attempts():
                with attempt:
                    await ok()
        return perf_counter_ns() - start

    return run


# -- circuit breaker --------------------------------------------------------------------------


class _CounterBreaker:
    """Consecutive failures open it for a while; the least a breaker can be."""

    __slots__ = ("failures", "open_until")

    def __init__(self) -> None:
        self.failures = 0
        self.open_until = 0.0

    async def call(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        if self.failures >= 5 and time.monotonic() < self.open_until:
            raise RuntimeError("open")
        try:
            result = await fn(*args, **kwargs)
        except Exception:
            self.failures += 1
            if self.failures >= 5:
                self.open_until = time.monotonic() + 60.0
            raise
        self.failures = 0
        return result

    def decorate(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            if self.failures >= 5 and time.monotonic() < self.open_until:
                raise RuntimeError("open")
            try:
                result = await fn(*args, **kwargs)
            except Exception:
                self.failures += 1
                if self.failures >= 5:
                    self.open_until = time.monotonic() + 60.0
                raise
            self.failures = 0
            return result

        return guarded

    async def __aenter__(self) -> None:
        if self.failures >= 5 and time.monotonic() < self.open_until:
            raise RuntimeError("open")

    async def __aexit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if isinstance(exc, Exception):
            self.failures += 1
            if self.failures >= 5:
                self.open_until = time.monotonic() + 60.0
        elif exc is None:
            self.failures = 0


class _CountWindowBreaker:
    """The failure rate over the last 100 calls, in a ring."""

    __slots__ = ("failed", "index", "open_until", "ring")

    def __init__(self) -> None:
        self.ring = bytearray(100)
        self.index = 0
        self.failed = 0
        self.open_until = 0.0

    def _record(self, failure: int) -> None:
        i = self.index
        self.failed += failure - self.ring[i]
        self.ring[i] = failure
        self.index = (i + 1) % 100
        if self.failed >= 50:
            self.open_until = time.monotonic() + 60.0

    async def call(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        if self.open_until and time.monotonic() < self.open_until:
            raise RuntimeError("open")
        try:
            result = await fn(*args, **kwargs)
        except Exception:
            self._record(1)
            raise
        self._record(0)
        return result


class _TimeWindowBreaker:
    """The failure rate over the last 60 s, in ten 6 s buckets."""

    __slots__ = ("buckets", "calls", "failed", "open_until")

    def __init__(self) -> None:
        self.buckets: deque[list[float]] = deque()  # [start, calls, failed]
        self.calls = 0
        self.failed = 0
        self.open_until = 0.0

    def _record(self, now: float, failure: int) -> None:
        buckets = self.buckets
        while buckets and buckets[0][0] <= now - 60.0:
            _, calls, failed = buckets.popleft()
            self.calls -= int(calls)
            self.failed -= int(failed)
        if not buckets or buckets[-1][0] <= now - 6.0:
            buckets.append([now, 0, 0])
        bucket = buckets[-1]
        bucket[1] += 1
        bucket[2] += failure
        self.calls += 1
        self.failed += failure
        if self.calls >= 10 and self.failed * 2 >= self.calls:
            self.open_until = now + 60.0

    async def call(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        if self.open_until and time.monotonic() < self.open_until:
            raise RuntimeError("open")
        try:
            result = await fn(*args, **kwargs)
        except Exception:
            self._record(time.monotonic(), 1)
            raise
        self._record(time.monotonic(), 0)
        return result


@case("breaker", MINIMUM, "baseline")
def _min_breaker_call() -> Runner:
    return loop1(_CounterBreaker().call, ok)


@case("breaker", "hand-written minimum, as a decorator", "baseline")
def _min_breaker_decorator() -> Runner:
    return loop0(_CounterBreaker().decorate(ok))


@case("breaker", "hand-written minimum, `async with`", "baseline")
def _min_breaker_with() -> Runner:
    return loop_with(_CounterBreaker(), ok)


@case("breaker", "hand-written count window (100 calls)", "baseline")
def _min_breaker_count_window() -> Runner:
    return loop1(_CountWindowBreaker().call, ok)


@case("breaker", "hand-written time window (60 s, 10 buckets)", "baseline")
def _min_breaker_time_window() -> Runner:
    return loop1(_TimeWindowBreaker().call, ok)


# -- bulkhead ---------------------------------------------------------------------------------


class _CounterBulkhead:
    """``if running < limit``; a full bulkhead refuses (the uncontended case never waits)."""

    __slots__ = ("limit", "running")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running = 0

    async def call(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        if self.running >= self.limit:
            raise RuntimeError("full")
        self.running += 1
        try:
            return await fn(*args, **kwargs)
        finally:
            self.running -= 1


@case("bulkhead", MINIMUM, "baseline")
def _min_bulkhead() -> Runner:
    return loop1(_CounterBulkhead(10).call, ok)


# -- rate limiter -----------------------------------------------------------------------------


class _InlineGcra:
    """GCRA in integer nanoseconds: one comparison and one addition per call."""

    __slots__ = ("interval", "tat", "tolerance")

    def __init__(self, rate: float, burst: int) -> None:
        self.interval = round(1e9 / rate)
        self.tolerance = (burst - 1) * self.interval
        self.tat = 0

    async def call(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        now = time.monotonic_ns()
        tat = self.tat
        if tat <= now:
            self.tat = now + self.interval
        elif tat <= now + self.tolerance:
            self.tat = tat + self.interval
        else:
            raise RuntimeError("limited")
        return await fn(*args, **kwargs)


@case("rate", MINIMUM, "baseline")
def _min_rate() -> Runner:
    return loop1(_InlineGcra(1e9, 10**6).call, ok)


# -- the three together -----------------------------------------------------------------------


def _one_coroutine_stack(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Retry, counter breaker and counter bulkhead written as one coroutine."""
    breaker = _CounterBreaker()
    bulkhead = _CounterBulkhead(10)

    async def stacked(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(3):
            try:
                if breaker.failures >= 5 and time.monotonic() < breaker.open_until:
                    raise RuntimeError("open")
                if bulkhead.running >= bulkhead.limit:
                    raise RuntimeError("full")
                bulkhead.running += 1
                try:
                    result = await fn(*args, **kwargs)
                except Exception:
                    breaker.failures += 1
                    raise
                finally:
                    bulkhead.running -= 1
                breaker.failures = 0
                return result
            except Exception:
                if attempt == 2:
                    raise
            await _yield()
        raise AssertionError("unreachable")

    return stacked


@case("stack", MINIMUM, "baseline")
def _min_stack() -> Runner:
    return loop0(_one_coroutine_stack(ok))


# -- retry off the happy path: every backoff, waiting with a bare yield -----------------------

RETRY_BACKOFFS = group(
    "retry_backoffs",
    "Retry failing once, any backoff (testing mode: every wait is a yield)",
    "Every call fails once then succeeds. stoic runs with `set_testing(True)`, so each "
    "planned wait (the default exponential backoff with full jitter, a deadline, a "
    "`delay_hint`) becomes one yield to the loop; the hand-written loop yields once too.",
    reference=MINIMUM,
)


@case(RETRY_BACKOFFS, MINIMUM, "baseline")
def _min_backoffs() -> Runner:
    return hand_retry_loop(_yield)  # the failing-once group's loop, waiting with a bare yield


def _testing(runner: Runner) -> Runner:
    from stoic.testing import set_testing

    async def run(n: int) -> int:
        with set_testing(True):
            return await runner(n)

    return run


@case(RETRY_BACKOFFS, "stoic `Retry.call`, default backoff", "stoic")
def _stoic_backoff_default() -> Runner:
    from stoic import Retry

    return _testing(loop1(Retry(attempts=3).call, flaky_once()))


@case(RETRY_BACKOFFS, "stoic `Retry.call`, `deadline=60`", "stoic")
def _stoic_backoff_deadline() -> Runner:
    from stoic import Retry

    return _testing(loop1(Retry(attempts=3, deadline=60.0).call, flaky_once()))


@case(RETRY_BACKOFFS, "stoic `Retry.call`, `delay_hint=retry_after_hint`", "stoic")
def _stoic_backoff_hint() -> Runner:
    from stoic import Retry, retry_after_hint

    return _testing(loop1(Retry(attempts=3, delay_hint=retry_after_hint).call, flaky_once()))


@case(RETRY_BACKOFFS, "stoic `@retry()`, default backoff", "stoic")
def _stoic_backoff_decorator() -> Runner:
    from stoic import retry

    return _testing(loop0(retry(attempts=3)(flaky_once())))


# -- construction -----------------------------------------------------------------------------

CONSTRUCTION = group(
    "construction",
    "Building a policy (per-host and per-key objects are built at run time)",
    "One object per iteration, with options set: a retry (5 attempts, on `ConnectionError`, "
    "a 30 s deadline) and a breaker (3 failures, 10 s break). Peers build their equivalents.",
)


def _build(make: Callable[[], object]) -> Runner:
    async def run(n: int) -> int:
        start = perf_counter_ns()
        for _ in range(n):
            make()
        return perf_counter_ns() - start

    return run


@case(CONSTRUCTION, "stoic `Retry(...)`", "stoic")
def _build_retry() -> Runner:
    from stoic import Retry

    return _build(lambda: Retry(attempts=5, on=ConnectionError, deadline=30.0))


@case(CONSTRUCTION, "stoic `CircuitBreaker(...)`", "stoic")
def _build_breaker() -> Runner:
    from stoic import CircuitBreaker

    return _build(lambda: CircuitBreaker(failure_threshold=3, break_duration=10.0))


@case(CONSTRUCTION, "tenacity `AsyncRetrying(...)`", "tenacity")
def _build_tenacity() -> Runner:
    import tenacity

    return _build(
        lambda: tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(5) | tenacity.stop_after_delay(30),
            retry=tenacity.retry_if_exception_type(ConnectionError),
        )
    )


@case(CONSTRUCTION, "stamina `retry_context(...)`", "stamina")
def _build_stamina() -> Runner:
    import stamina

    return _build(lambda: stamina.retry_context(on=ConnectionError, attempts=5, timeout=30.0))


@case(CONSTRUCTION, "hyx `retry(...)`", "hyx")
def _build_hyx() -> Runner:
    from hyx.retry import retry

    return _build(lambda: retry(on=ConnectionError, attempts=5))


@case(CONSTRUCTION, "aiobreaker `CircuitBreaker(...)`", "aiobreaker")
def _build_aiobreaker() -> Runner:
    from datetime import timedelta

    from aiobreaker import CircuitBreaker

    return _build(lambda: CircuitBreaker(fail_max=3, timeout_duration=timedelta(seconds=10)))


@case(CONSTRUCTION, "pybreaker `CircuitBreaker(...)`", "pybreaker")
def _build_pybreaker() -> Runner:
    import pybreaker

    return _build(lambda: pybreaker.CircuitBreaker(fail_max=3, reset_timeout=10))


@case(CONSTRUCTION, "circuitbreaker `CircuitBreaker(...)`", "circuitbreaker")
def _build_circuitbreaker() -> Runner:
    from circuitbreaker import CircuitBreaker

    return _build(lambda: CircuitBreaker(failure_threshold=3, recovery_timeout=10))
