"""Every timed case, grouped as RESULTS.md shows them. Peers are imported inside builders.

All retries allow 3 attempts and retry on ``Exception``; all breakers stay closed; all
bulkheads allow 10 concurrent calls; all rate limiters are set so high they never wait.
"""

from __future__ import annotations

import asyncio
from time import perf_counter_ns
from typing import Any

from bench_registry import (
    Runner,
    Unavailable,
    case,
    flaky_once,
    group,
    hand_retry_loop,
    loop0,
    loop1,
    loop_tasks,
    loop_with,
    ok,
    sleep0,
)

BARE = group("bare", "Bare call", "The baseline every ratio divides by.")


@case(BARE, "bare `await ok()`", "baseline")
def _bare() -> Runner:
    return loop0(ok)


# -- retry ------------------------------------------------------------------------------------

RETRY_OK = group(
    "retry_ok",
    "Retry, first attempt succeeds",
    "`attempts=3`, retry on `Exception`; the call succeeds at once, so no wait ever starts.",
    reference="hand-written minimum",
)


@case(RETRY_OK, "stoic `@retry(attempts=3)`", "stoic")
def _stoic_retry_decorator() -> Runner:
    from stoic._retry import retry

    return loop0(retry(attempts=3)(ok))


@case(RETRY_OK, "stoic `Retry.call`", "stoic")
def _stoic_retry_call() -> Runner:
    from stoic._retry import Retry

    return loop1(Retry(attempts=3).call, ok)


@case(RETRY_OK, "stoic `async for attempt in Retry`", "stoic")
def _stoic_retry_loop() -> Runner:
    from stoic._retry import Retry

    policy = Retry(attempts=3)

    async def run(n: int) -> int:
        start = perf_counter_ns()
        for _ in range(n):
            async for attempt in policy:
                with attempt:
                    await ok()
        return perf_counter_ns() - start

    return run


@case(RETRY_OK, "tenacity `@retry`", "tenacity")
def _tenacity_retry() -> Runner:
    import tenacity

    return loop0(tenacity.retry(stop=tenacity.stop_after_attempt(3))(ok))


@case(RETRY_OK, "tenacity `async for attempt in AsyncRetrying`", "tenacity")
def _tenacity_loop() -> Runner:
    import tenacity

    async def run(n: int) -> int:
        start = perf_counter_ns()
        for _ in range(n):
            async for attempt in tenacity.AsyncRetrying(stop=tenacity.stop_after_attempt(3)):
                with attempt:
                    await ok()
        return perf_counter_ns() - start

    return run


@case(RETRY_OK, "stamina `@stamina.retry`", "stamina")
def _stamina_retry() -> Runner:
    import stamina

    return loop0(stamina.retry(on=Exception, attempts=3)(ok))


@case(RETRY_OK, "backoff `@backoff.on_exception`", "backoff")
def _backoff_retry() -> Runner:
    import backoff

    return loop0(backoff.on_exception(backoff.expo, Exception, max_tries=3)(ok))


@case(RETRY_OK, "hyx `@retry`", "hyx")
def _hyx_retry() -> Runner:
    from hyx.retry import retry

    return loop0(retry(on=Exception, attempts=3)(ok))


@case(RETRY_OK, "pyresilience `@resilient(retry=...)`", "pyresilience")
def _pyresilience_retry() -> Runner:
    from pyresilience import RetryConfig, resilient

    return loop0(resilient(retry=RetryConfig(max_attempts=3))(ok))


RETRY_FAIL = group(
    "retry_fail",
    "Retry, first attempt fails, second succeeds, zero wait",
    "Every call fails once then succeeds; every library waits 0 s between attempts. "
    "pyresilience skips the sleep entirely for a zero delay (it never yields to the loop); "
    "everyone else yields once with `asyncio.sleep(0)`. stamina's default retry hook "
    "(logging) is switched off so no library pays for telemetry.",
    reference="hand-written loop",
)


@case(RETRY_FAIL, "hand-written loop", "baseline")
def _hand_loop() -> Runner:
    return hand_retry_loop(sleep0)


@case(RETRY_FAIL, "stoic `@retry(backoff=constant(0))`", "stoic")
def _stoic_fail_decorator() -> Runner:
    from stoic._retry import retry
    from stoic.backoff import constant

    return loop0(retry(attempts=3, backoff=constant(0))(flaky_once()))


@case(RETRY_FAIL, "stoic `Retry.call`", "stoic")
def _stoic_fail_call() -> Runner:
    from stoic._retry import Retry
    from stoic.backoff import constant

    return loop1(Retry(attempts=3, backoff=constant(0)).call, flaky_once())


@case(RETRY_FAIL, "tenacity `@retry(wait=wait_none())`", "tenacity")
def _tenacity_fail() -> Runner:
    import tenacity

    policy = tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_none())
    return loop0(policy(flaky_once()))


@case(RETRY_FAIL, "stamina `@stamina.retry(wait_*=0)`", "stamina")
def _stamina_fail() -> Runner:
    import stamina
    from stamina.instrumentation import set_on_retry_hooks

    set_on_retry_hooks([])
    policy = stamina.retry(on=Exception, attempts=3, wait_initial=0, wait_max=0, wait_jitter=0)
    return loop0(policy(flaky_once()))


@case(RETRY_FAIL, "backoff `@on_exception(constant, interval=0)`", "backoff")
def _backoff_fail() -> Runner:
    import backoff

    policy = backoff.on_exception(backoff.constant, Exception, max_tries=3, interval=0, jitter=None)
    return loop0(policy(flaky_once()))


@case(RETRY_FAIL, "hyx `@retry(backoff=0)`", "hyx")
def _hyx_fail() -> Runner:
    from hyx.retry import retry

    return loop0(retry(on=Exception, attempts=3, backoff=0)(flaky_once()))


@case(RETRY_FAIL, "pyresilience `RetryConfig(delay=0)`", "pyresilience")
def _pyresilience_fail() -> Runner:
    from pyresilience import RetryConfig, resilient

    config = RetryConfig(max_attempts=3, delay=0, jitter=False)
    return loop0(resilient(retry=config)(flaky_once()))


# -- circuit breaker --------------------------------------------------------------------------

BREAKER = group(
    "breaker",
    "Circuit breaker, closed",
    "Every call succeeds, so the breaker stays closed. Default options unless named.",
    reference="hand-written minimum",
)


def _stoic_breaker(**options: Any) -> Any:
    try:
        from stoic._circuit_breaker import CircuitBreaker
    except ImportError as error:  # the module may still be in progress
        raise Unavailable(f"stoic._circuit_breaker does not import: {error}") from error
    return CircuitBreaker(**options)


@case(BREAKER, "stoic `CircuitBreaker.call`", "stoic")
def _stoic_breaker_call() -> Runner:
    return loop1(_stoic_breaker().call, ok)


@case(BREAKER, "stoic `@CircuitBreaker()`", "stoic")
def _stoic_breaker_decorator() -> Runner:
    return loop0(_stoic_breaker()(ok))


@case(BREAKER, "stoic `async with breaker`", "stoic")
def _stoic_breaker_with() -> Runner:
    return loop_with(_stoic_breaker(), ok)


@case(BREAKER, "stoic `.call`, `trip='rate'`, `window_size=100`", "stoic")
def _stoic_breaker_count_window() -> Runner:
    return loop1(_stoic_breaker(trip="rate", window_size=100).call, ok)


@case(BREAKER, "stoic `.call`, `trip='rate'`, `window_duration=60`", "stoic")
def _stoic_breaker_time_window() -> Runner:
    return loop1(_stoic_breaker(trip="rate", window_duration=60.0).call, ok)


@case(BREAKER, "hyx `@consecutive_breaker()`", "hyx")
def _hyx_breaker() -> Runner:
    from hyx.circuitbreaker import consecutive_breaker

    return loop0(consecutive_breaker()(ok))


@case(BREAKER, "pyresilience `@resilient(circuit_breaker=...)`", "pyresilience")
def _pyresilience_breaker() -> Runner:
    from pyresilience import CircuitBreakerConfig, resilient

    return loop0(resilient(circuit_breaker=CircuitBreakerConfig())(ok))


@case(BREAKER, "aiobreaker `call_async`", "aiobreaker")
def _aiobreaker_call() -> Runner:
    from aiobreaker import CircuitBreaker

    return loop1(CircuitBreaker().call_async, ok)


@case(BREAKER, "aiobreaker `@breaker`", "aiobreaker")
def _aiobreaker_decorator() -> Runner:
    from aiobreaker import CircuitBreaker

    return loop0(CircuitBreaker()(ok))


@case(BREAKER, "circuitbreaker `@circuit`", "circuitbreaker")
def _circuitbreaker_decorator() -> Runner:
    from circuitbreaker import circuit

    return loop0(circuit()(ok))


@case(BREAKER, "purgatory `@factory('name')`", "purgatory")
def _purgatory_decorator() -> Runner:
    from purgatory import AsyncCircuitBreakerFactory

    return loop0(AsyncCircuitBreakerFactory()("bench")(ok))


# -- bulkhead ---------------------------------------------------------------------------------

BULKHEAD = group(
    "bulkhead",
    "Bulkhead, uncontended",
    "10 slots, one caller: every call gets a slot at once.",
    reference="`asyncio.Semaphore`",
)


@case(BULKHEAD, "`asyncio.Semaphore`", "baseline")
def _semaphore() -> Runner:
    return loop_with(asyncio.Semaphore(10), ok)


@case(BULKHEAD, "stoic `Bulkhead.call`", "stoic")
def _stoic_bulkhead_call() -> Runner:
    from stoic._bulkhead import Bulkhead

    return loop1(Bulkhead(max_concurrent=10).call, ok)


@case(BULKHEAD, "stoic `async with bulkhead`", "stoic")
def _stoic_bulkhead_with() -> Runner:
    from stoic._bulkhead import Bulkhead

    return loop_with(Bulkhead(max_concurrent=10), ok)


@case(BULKHEAD, "stoic `@Bulkhead(10)`", "stoic")
def _stoic_bulkhead_decorator() -> Runner:
    from stoic._bulkhead import Bulkhead

    return loop0(Bulkhead(max_concurrent=10)(ok))


@case(BULKHEAD, "hyx `@bulkhead`", "hyx")
def _hyx_bulkhead() -> Runner:
    from hyx.bulkhead import bulkhead

    return loop0(bulkhead(max_concurrency=10, max_capacity=10)(ok))


@case(BULKHEAD, "hyx `async with bulkhead`", "hyx")
def _hyx_bulkhead_with() -> Runner:
    from hyx.bulkhead import bulkhead

    return loop_with(bulkhead(max_concurrency=10, max_capacity=10), ok)


@case(BULKHEAD, "pyresilience `@resilient(bulkhead=...)`", "pyresilience")
def _pyresilience_bulkhead() -> Runner:
    from pyresilience import BulkheadConfig, resilient

    return loop0(resilient(bulkhead=BulkheadConfig(max_concurrent=10))(ok))


CONTENDED = group(
    "bulkhead_contended",
    "Bulkhead, contended: 10,000 tasks through 10 slots",
    "All tasks start at once (`asyncio.gather`); each holds its slot across one "
    "`asyncio.sleep(0)`. Figures are wall time per task, task creation included. The queue "
    "is big enough that nobody is rejected.",
    reference="`asyncio.Semaphore`",
    bare="no limiter",
    unit="task",
)


@case(CONTENDED, "no limiter", "baseline")
def _contended_none() -> Runner:
    return loop_tasks(lambda n: sleep0)


@case(CONTENDED, "`asyncio.Semaphore`", "baseline")
def _contended_semaphore() -> Runner:
    def make(n: int) -> Any:
        sem = asyncio.Semaphore(10)

        async def one() -> None:
            async with sem:
                await asyncio.sleep(0)

        return one

    return loop_tasks(make)


@case(CONTENDED, "stoic `Bulkhead.call`", "stoic")
def _contended_stoic_call() -> Runner:
    from stoic._bulkhead import Bulkhead

    def make(n: int) -> Any:
        call = Bulkhead(max_concurrent=10, max_waiting=n).call

        async def one() -> None:
            await call(asyncio.sleep, 0)

        return one

    return loop_tasks(make)


@case(CONTENDED, "stoic `async with bulkhead`", "stoic")
def _contended_stoic_with() -> Runner:
    from stoic._bulkhead import Bulkhead

    def make(n: int) -> Any:
        bulkhead = Bulkhead(max_concurrent=10, max_waiting=n)

        async def one() -> None:
            async with bulkhead:
                await asyncio.sleep(0)

        return one

    return loop_tasks(make)


@case(CONTENDED, "hyx `async with bulkhead`", "hyx")
def _contended_hyx() -> Runner:
    from hyx.bulkhead import bulkhead as hyx_bulkhead

    def make(n: int) -> Any:
        limiter = hyx_bulkhead(max_concurrency=10, max_capacity=n + 10)

        async def one() -> None:
            async with limiter:
                await asyncio.sleep(0)

        return one

    return loop_tasks(make)


@case(CONTENDED, "pyresilience `@resilient(bulkhead=..., max_wait=60)`", "pyresilience")
def _contended_pyresilience() -> Runner:
    from pyresilience import BulkheadConfig, resilient

    config = BulkheadConfig(max_concurrent=10, max_wait=60.0)
    return loop_tasks(lambda n: resilient(bulkhead=config)(sleep0))


# -- rate limiter -----------------------------------------------------------------------------

RATE = group(
    "rate",
    "Rate limiter, never waiting",
    "Limits set far above the call rate, so no call ever waits. limits' moving window "
    "keeps one entry per hit in the window (its storage is reset before each sample), so "
    "its cost grows with the hits inside the window; its fixed window is shown for contrast.",
    reference="hand-written minimum",
)


def _stoic_limiter() -> Any:
    from stoic._rate_limit import RateLimiter

    return RateLimiter(1e9, per=1.0)  # the fastest rate allowed: one turn per nanosecond


@case(RATE, "stoic `RateLimiter.call`", "stoic")
def _stoic_rate_call() -> Runner:
    return loop1(_stoic_limiter().call, ok)


@case(RATE, "stoic `@RateLimiter(...)`", "stoic")
def _stoic_rate_decorator() -> Runner:
    return loop0(_stoic_limiter()(ok))


@case(RATE, "stoic `async with limiter`", "stoic")
def _stoic_rate_with() -> Runner:
    return loop_with(_stoic_limiter(), ok)


@case(RATE, "aiolimiter `async with AsyncLimiter`", "aiolimiter")
def _aiolimiter() -> Runner:
    from aiolimiter import AsyncLimiter

    return loop_with(AsyncLimiter(1e12, 1), ok)


def _limits(strategy_name: str) -> Runner:
    from limits import RateLimitItemPerSecond
    from limits.aio import strategies
    from limits.aio.storage import MemoryStorage

    storage = MemoryStorage()
    limiter = getattr(strategies, strategy_name)(storage)
    item = RateLimitItemPerSecond(10**9)
    hit = limiter.hit

    async def run(n: int) -> int:
        await storage.reset()
        start = perf_counter_ns()
        for _ in range(n):
            if await hit(item, "bench"):
                await ok()
        return perf_counter_ns() - start

    return run


@case(RATE, "limits `MovingWindowRateLimiter.hit` (async, memory)", "limits")
def _limits_moving() -> Runner:
    return _limits("MovingWindowRateLimiter")


@case(RATE, "limits `FixedWindowRateLimiter.hit` (async, memory)", "limits")
def _limits_fixed() -> Runner:
    return _limits("FixedWindowRateLimiter")


@case(RATE, "hyx `@tokenbucket`", "hyx")
def _hyx_tokenbucket() -> Runner:
    from hyx.ratelimit import tokenbucket

    return loop0(tokenbucket(max_executions=1e12, per_time_secs=1)(ok))


@case(RATE, "pyresilience `@resilient(rate_limiter=...)`", "pyresilience")
def _pyresilience_rate() -> Runner:
    from pyresilience import RateLimiterConfig, resilient

    return loop0(resilient(rate_limiter=RateLimiterConfig(max_calls=10**12, period=1.0))(ok))
