"""Internals of pipelines: which stacks run as the fused layer (``_pipeline/fused.py``).

Behaviour is the same either way (tests/pipeline/test_fused.py); this pins that the
documented case is fused, since the benchmark's figure for it depends on that.
"""

from __future__ import annotations

import pytest

from stoic import Bulkhead, CircuitBreaker, Pipeline, RateLimiter, Retry


def _fused(pipeline: Pipeline) -> bool:
    return pipeline._chain.__code__.co_name == "fused"


class _Breaker(CircuitBreaker):
    pass


@pytest.mark.parametrize(
    "strategies",
    [
        lambda: (Retry(), CircuitBreaker(), Bulkhead(10)),
        lambda: (Retry(), CircuitBreaker()),
        lambda: (Retry(), Bulkhead(10)),
        lambda: (CircuitBreaker(), Bulkhead(10)),
    ],
    ids=["retry-breaker-bulkhead", "retry-breaker", "retry-bulkhead", "breaker-bulkhead"],
)
def test_plain_stacks_of_retry_breaker_and_bulkhead_are_fused(strategies: object) -> None:
    assert _fused(Pipeline(*strategies()))  # type: ignore[operator]


@pytest.mark.parametrize(
    "strategies",
    [
        lambda: (Retry(),),
        lambda: (Bulkhead(10), CircuitBreaker()),  # another order
        lambda: (Retry(deadline=5.0), CircuitBreaker()),
        lambda: (Retry(listeners=[print]), CircuitBreaker()),
        lambda: (Retry(on_result=lambda result: result is None), CircuitBreaker()),
        lambda: (Retry(), CircuitBreaker(slow_call_duration=1.0)),
        lambda: (Retry(), CircuitBreaker(trip="rate", window_size=10)),
        lambda: (Retry(), _Breaker()),  # a subclass may override call
        lambda: (Retry(), CircuitBreaker(), RateLimiter(10)),
        lambda: (Retry(), CircuitBreaker(), Bulkhead(10), Bulkhead(5)),
    ],
)
def test_other_stacks_are_composed_as_they_are(strategies: object) -> None:
    assert not _fused(Pipeline(*strategies(), validate=False))  # type: ignore[operator]
