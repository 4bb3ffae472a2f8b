"""Internals of pipelines: which runs of strategies become the fused layer (``fused.py``).

Behaviour is the same either way (tests/pipeline/test_fused.py); this pins that the
documented cases are fused, since the benchmark's figures for them depend on it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stoic import Bulkhead, CircuitBreaker, Fallback, Pipeline, RateLimiter, Retry, timeout


def _layers(pipeline: Pipeline) -> list[str]:
    """The composed chain's layers, outermost first: "fused" for the fused layer, else "-"."""
    layers, layer = [], pipeline._chain
    while hasattr(layer, "__code__"):
        layers.append("fused" if layer.__code__.co_name == "fused" else "-")
        layer = getattr(layer, "__wrapped__", None)
    return layers


class _Breaker(CircuitBreaker):
    pass


@pytest.mark.parametrize(
    ("strategies", "layers"),
    [
        (lambda: (Retry(), CircuitBreaker(), Bulkhead(10)), ["fused"]),
        (lambda: (Retry(), CircuitBreaker()), ["fused"]),
        (lambda: (Retry(), Bulkhead(10)), ["fused"]),
        (lambda: (CircuitBreaker(), Bulkhead(10)), ["fused"]),
        # A run inside a longer pipeline: the documented timeout stack.
        (
            lambda: (timeout(10), Retry(), CircuitBreaker(), Bulkhead(10), timeout(5)),
            ["-", "fused", "-"],
        ),
        (lambda: (Retry(), CircuitBreaker(), RateLimiter(10)), ["fused", "-"]),
        (lambda: (Retry(), CircuitBreaker(), Bulkhead(10), Bulkhead(5)), ["fused", "-"]),
        (lambda: (Fallback(0), CircuitBreaker(), Bulkhead(10)), ["-", "fused"]),
    ],
)
def test_runs_of_retry_breaker_and_bulkhead_are_fused(
    strategies: Callable[[], tuple[object, ...]], layers: list[str]
) -> None:
    assert _layers(Pipeline(*strategies(), validate=False)) == layers  # type: ignore[arg-type]


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
        lambda: (Retry(), RateLimiter(10), CircuitBreaker()),  # not adjacent
    ],
)
def test_other_strategies_are_composed_as_they_are(
    strategies: Callable[[], tuple[object, ...]],
) -> None:
    assert "fused" not in _layers(Pipeline(*strategies(), validate=False))  # type: ignore[arg-type]
