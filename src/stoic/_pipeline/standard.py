"""``standard_pipeline``: the recommended stack for calls to a remote service."""

from __future__ import annotations

from collections.abc import Iterable

from stoic._bulkhead import Bulkhead
from stoic._circuit_breaker import CircuitBreaker
from stoic._classify import ExceptionFilter
from stoic._events import Listener
from stoic._pipeline.pipeline import Pipeline
from stoic._retry import Retry, retry_after_hint
from stoic._timeout import Timeout
from stoic.backoff import Backoff, exponential

__all__ = ["standard_pipeline"]


def standard_pipeline(
    name: str | None = None,
    *,
    max_concurrent: int = 1000,
    total_timeout: float = 30.0,
    attempts: int = 4,
    retry_on: ExceptionFilter = (ConnectionError, TimeoutError),
    backoff: Backoff | None = None,
    failure_rate: float = 0.1,
    minimum_calls: int = 100,
    window_duration: float = 30.0,
    break_duration: float = 5.0,
    attempt_timeout: float = 10.0,
    listeners: Iterable[Listener] = (),
) -> Pipeline:
    """The standard pipeline for calls to a remote service; every default can be overridden.

    Modelled on Microsoft.Extensions.Http.Resilience's standard handler, outermost first:

    1. ``Bulkhead(max_concurrent=1000, max_waiting=0)``: sheds load past 1,000 calls at once.
    2. ``timeout(total_timeout=30.0)``: the whole call, every retry included.
    3. ``Retry(attempts=4, on=retry_on, backoff=exponential(2.0, 2.0, 30.0, "full"),
       delay_hint=retry_after_hint)``: three retries with jittered exponential backoff,
       honouring ``Retry-After``; ``retry_on`` defaults to ``ConnectionError`` and
       ``TimeoutError`` (add your HTTP client's transient errors).
    4. ``CircuitBreaker(trip="rate", failure_rate=0.1, minimum_calls=100,
       window_duration=30.0, timeout=break_duration=5.0)``: opens at 10% failures over 30 s.
    5. ``timeout(attempt_timeout=10.0)``: each attempt.

    Named pipelines name every strategy in them (``"<name>.retry"``, ...) for telemetry.
    """

    def part(kind: str) -> str | None:
        return None if name is None else f"{name}.{kind}"

    return Pipeline(
        Bulkhead(max_concurrent, 0, name=part("bulkhead")),
        Timeout(total_timeout, name=part("total_timeout")),
        Retry(
            attempts=attempts,
            on=retry_on,
            backoff=exponential(2.0, 2.0, 30.0, "full") if backoff is None else backoff,
            delay_hint=retry_after_hint,
            name=part("retry"),
        ),
        CircuitBreaker(
            trip="rate",
            failure_rate=failure_rate,
            minimum_calls=minimum_calls,
            window_duration=window_duration,
            timeout=break_duration,
            name=part("circuit_breaker"),
        ),
        Timeout(attempt_timeout, name=part("attempt_timeout")),
        name=name,
        listeners=listeners,
    )
