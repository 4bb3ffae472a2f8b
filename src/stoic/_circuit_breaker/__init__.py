"""Circuit breaker: stop calling a dependency that keeps failing, then probe it back to health.

``config`` holds the options and states; ``breaker`` the strategy (the async driver, and for
now its state machine); ``windows`` the failure-rate windows; ``events`` what it reports.
"""

from stoic._circuit_breaker.breaker import CircuitBreaker
from stoic._circuit_breaker.config import CircuitBreakerConfig, CircuitState
from stoic._circuit_breaker.events import (
    CallRejectedByBreaker,
    CircuitBreakerStatistics,
    CircuitStateChanged,
)

__all__ = [
    "CallRejectedByBreaker",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerStatistics",
    "CircuitState",
    "CircuitStateChanged",
]
