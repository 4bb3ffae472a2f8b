"""Composed cases (retry + breaker + bulkhead, with and without timeouts) and telemetry."""

from __future__ import annotations

import asyncio
from time import perf_counter_ns
from typing import Any

from bench_cases import _stoic_breaker
from bench_registry import (
    Runner,
    Unavailable,
    case,
    flaky_once,
    group,
    loop0,
    loop1,
    loop_args,
    ok,
)

STACK = group(
    "stack",
    "Retry + circuit breaker + bulkhead, happy path",
    "Outermost first: retry (3 attempts) around a closed breaker around a 10-slot bulkhead. "
    "tenacity and aiobreaker have no bulkhead, so an `asyncio.Semaphore` stands in.",
    reference="hand-written minimum",
)


def _stoic_stack() -> tuple[Any, Any, Any]:
    from stoic._bulkhead import Bulkhead
    from stoic._retry import Retry

    return Retry(attempts=3), _stoic_breaker(), Bulkhead(max_concurrent=10)


@case(STACK, "stoic `retry.call(breaker.call, bulkhead.call, ok)`", "stoic")
def _stoic_stack_calls() -> Runner:
    retry, breaker, bulkhead = _stoic_stack()
    return loop_args(retry.call, breaker.call, bulkhead.call, ok)


@case(STACK, "stoic decorators", "stoic")
def _stoic_stack_decorators() -> Runner:
    retry, breaker, bulkhead = _stoic_stack()
    return loop0(retry(breaker(bulkhead(ok))))


def _pipeline(*strategies: Any) -> Any:
    try:
        from stoic._pipeline import Pipeline
    except ImportError as error:  # the module may still be in progress
        raise Unavailable(f"stoic._pipeline does not import: {error}") from error
    return Pipeline(*strategies)


@case(STACK, "stoic `Pipeline(retry, breaker, bulkhead).call`", "stoic")
def _stoic_stack_pipeline() -> Runner:
    return loop1(_pipeline(*_stoic_stack()).call, ok)


@case(STACK, "stoic `@Pipeline(retry, breaker, bulkhead)`", "stoic")
def _stoic_stack_pipeline_decorator() -> Runner:
    return loop0(_pipeline(*_stoic_stack())(ok))


@case(STACK, "tenacity + aiobreaker + `asyncio.Semaphore`", "tenacity")
def _tenacity_stack() -> Runner:
    import tenacity
    from aiobreaker import CircuitBreaker

    sem = asyncio.Semaphore(10)

    @tenacity.retry(stop=tenacity.stop_after_attempt(3))
    @CircuitBreaker()
    async def call() -> int:
        async with sem:
            return await ok()

    return loop0(call)


@case(STACK, "hyx `@retry @consecutive_breaker @bulkhead`", "hyx")
def _hyx_stack() -> Runner:
    from hyx.bulkhead import bulkhead
    from hyx.circuitbreaker import consecutive_breaker
    from hyx.retry import retry

    wrapped = bulkhead(max_concurrency=10, max_capacity=10)(ok)
    return loop0(retry(on=Exception, attempts=3)(consecutive_breaker()(wrapped)))


@case(STACK, "pyresilience `@resilient(retry, circuit_breaker, bulkhead)`", "pyresilience")
def _pyresilience_stack() -> Runner:
    from pyresilience import BulkheadConfig, CircuitBreakerConfig, RetryConfig, resilient

    policy = resilient(
        retry=RetryConfig(max_attempts=3),
        circuit_breaker=CircuitBreakerConfig(),
        bulkhead=BulkheadConfig(max_concurrent=10),
    )
    return loop0(policy(ok))


TIMEOUTS = group(
    "stack_timeouts",
    "Timeout(10) > retry > breaker > bulkhead > timeout(5), happy path",
    "The full stack with a total timeout outside and a per-attempt timeout inside. "
    "pyresilience has one timeout level (per attempt, `asyncio.wait_for`); hyx's timeout "
    "runs the call in a new task.",
    reference="`asyncio.timeout` x2",
)


@case(TIMEOUTS, "`asyncio.timeout` x2", "baseline")
def _asyncio_timeouts() -> Runner:
    async def run(n: int) -> int:
        start = perf_counter_ns()
        for _ in range(n):
            async with asyncio.timeout(10):
                async with asyncio.timeout(5):
                    await ok()
        return perf_counter_ns() - start

    return run


def _stoic_timeouts() -> tuple[Any, Any]:
    from stoic._timeout import timeout

    return timeout(10), timeout(5)


@case(TIMEOUTS, "stoic nested `.call`", "stoic")
def _stoic_timeout_calls() -> Runner:
    outer, inner = _stoic_timeouts()
    retry, breaker, bulkhead = _stoic_stack()
    return loop_args(outer.call, retry.call, breaker.call, bulkhead.call, inner.call, ok)


@case(TIMEOUTS, "stoic decorators", "stoic")
def _stoic_timeout_decorators() -> Runner:
    outer, inner = _stoic_timeouts()
    retry, breaker, bulkhead = _stoic_stack()
    return loop0(outer(retry(breaker(bulkhead(inner(ok))))))


@case(TIMEOUTS, "stoic `Pipeline(timeout(10), ..., timeout(5)).call`", "stoic")
def _stoic_timeout_pipeline() -> Runner:
    outer, inner = _stoic_timeouts()
    return loop1(_pipeline(outer, *_stoic_stack(), inner).call, ok)


@case(TIMEOUTS, "stoic `timeout(10).call` alone", "stoic")
def _stoic_timeout_alone() -> Runner:
    outer, _ = _stoic_timeouts()
    return loop1(outer.call, ok)


@case(TIMEOUTS, "tenacity + aiobreaker + Semaphore + `asyncio.timeout` x2", "tenacity")
def _tenacity_timeouts() -> Runner:
    import tenacity
    from aiobreaker import CircuitBreaker

    sem = asyncio.Semaphore(10)

    @tenacity.retry(stop=tenacity.stop_after_attempt(3))
    @CircuitBreaker()
    async def attempt() -> int:
        async with sem:
            async with asyncio.timeout(5):
                return await ok()

    async def call() -> int:
        async with asyncio.timeout(10):
            return await attempt()

    return loop0(call)


@case(TIMEOUTS, "hyx `@timeout @retry @consecutive_breaker @bulkhead @timeout`", "hyx")
def _hyx_timeouts() -> Runner:
    from hyx.bulkhead import bulkhead
    from hyx.circuitbreaker import consecutive_breaker
    from hyx.retry import retry
    from hyx.timeout import timeout

    inner = bulkhead(max_concurrency=10, max_capacity=10)(timeout(5)(ok))
    wrapped = retry(on=Exception, attempts=3)(consecutive_breaker()(inner))
    return loop0(timeout(10)(wrapped))


@case(
    TIMEOUTS, "pyresilience `@resilient(timeout, retry, circuit_breaker, bulkhead)`", "pyresilience"
)
def _pyresilience_timeouts() -> Runner:
    from pyresilience import (
        BulkheadConfig,
        CircuitBreakerConfig,
        RetryConfig,
        TimeoutConfig,
        resilient,
    )

    policy = resilient(
        timeout=TimeoutConfig(seconds=5),
        retry=RetryConfig(max_attempts=3),
        circuit_breaker=CircuitBreakerConfig(),
        bulkhead=BulkheadConfig(max_concurrent=10),
    )
    return loop0(policy(ok))


TELEMETRY = group(
    "telemetry",
    "Telemetry: listeners attached vs none (stoic `Retry.call`)",
    "No `RetryScheduled` fires on the happy path; what a listener costs there is the price "
    "of any per-attempt event stoic emits while someone listens. The failing-once path "
    "fires one `RetryScheduled` per call (zero wait). The global listener (`add_listener`) "
    "is added only for its own samples, so it does not leak into other cases.",
)


def _listener(event: object) -> None:
    pass


@case(TELEMETRY, "happy path, no listener", "stoic")
def _telemetry_off() -> Runner:
    from stoic._retry import Retry

    return loop1(Retry(attempts=3).call, ok)


@case(TELEMETRY, "happy path, one listener", "stoic")
def _telemetry_on() -> Runner:
    from stoic._retry import Retry

    return loop1(Retry(attempts=3, listeners=[_listener]).call, ok)


@case(TELEMETRY, "happy path, one global listener (`add_listener`)", "stoic")
def _telemetry_global() -> Runner:
    from stoic._events import add_listener, remove_listener
    from stoic._retry import Retry

    inner = loop1(Retry(attempts=3).call, ok)

    async def run(n: int) -> int:
        add_listener(_listener)
        try:
            return await inner(n)
        finally:
            remove_listener(_listener)

    return run


@case(TELEMETRY, "failing once, no listener", "stoic")
def _telemetry_fail_off() -> Runner:
    from stoic._retry import Retry
    from stoic.backoff import constant

    return loop1(Retry(attempts=3, backoff=constant(0)).call, flaky_once())


@case(TELEMETRY, "failing once, one listener", "stoic")
def _telemetry_fail_on() -> Runner:
    from stoic._retry import Retry
    from stoic.backoff import constant

    policy = Retry(attempts=3, backoff=constant(0), listeners=[_listener])
    return loop1(policy.call, flaky_once())
