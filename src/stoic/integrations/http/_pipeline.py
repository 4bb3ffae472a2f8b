"""The pipeline each host gets by default."""

from __future__ import annotations

from stoic._bulkhead import Bulkhead
from stoic._circuit_breaker import CircuitBreaker
from stoic._pipeline import Pipeline
from stoic._retry import Retry, retry_after_hint
from stoic._timeout import timeout
from stoic.backoff import Backoff, exponential
from stoic.integrations.http._classify import is_failure, retryable

__all__ = ["host_pipeline", "http_pipeline"]

_NO_CAP = 86_400.0  # a day: in effect no cap on a single wait


def http_pipeline(
    *,
    name: str | None = None,
    total: float = 30.0,
    attempt: float = 10.0,
    attempts: int = 4,
    backoff: Backoff | None = None,
    max_concurrent: int = 1000,
) -> Pipeline:
    """The pipeline each host gets by default, after Microsoft's standard resilience handler:
    a total timeout (``total`` s), up to ``attempts`` attempts with jittered exponential
    backoff (or ``backoff``) and ``Retry-After``, a breaker, a concurrency limit
    (``max_concurrent``) and a timeout per attempt (``attempt`` s).

    Where it differs: the breaker opens after 5 consecutive failures (for 5 s) instead of at
    a 10% failure rate over at least 100 calls in 30 s, which a small client never reaches:
    a dead host called once a second is, from its second call on, only probed once per
    5 s break.
    """
    return Pipeline(
        timeout(total),
        Retry(
            attempts=attempts,
            on=retryable,
            backoff=exponential(initial=2.0, max_delay=30.0) if backoff is None else backoff,
            delay_hint=retry_after_hint,
            # A Retry-After is waited for in full or not at all: the policy's max_retry_after
            # (``retryable`` refuses longer ones) and the total timeout bound it, never a cap
            # that would send the request again before the server asked.
            max_delay=_NO_CAP,
        ),
        CircuitBreaker(failure_threshold=5, break_duration=5.0, record=is_failure),
        Bulkhead(max_concurrent),
        timeout(attempt),
        name=name,
    )


def host_pipeline(scheme: str, host: str, port: int) -> Pipeline:
    """What a client integration gives a host by default: ``http_pipeline``, named for it."""
    return http_pipeline(name=f"{host}:{port}")
