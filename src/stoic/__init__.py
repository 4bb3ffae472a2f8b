"""stoic: async-first resilience for Python.

Retry with backoff, timeouts and deadlines, circuit breaker, bulkhead, rate limiter, fallback,
partial-failure batches and exception-group helpers. ``stoic.testing`` has virtual time.
"""

from stoic._context import CallContext, call_context
from stoic._events import Event, Listener, Severity, add_listener, remove_listener
from stoic.backoff import Backoff, Jitter, constant, exponential, linear
from stoic.batch import Outcome, gather_outcomes, gather_partial, map_outcomes, map_partial
from stoic.bulkhead import Bulkhead, BulkheadStatistics, CallRejectedByBulkhead
from stoic.circuit_breaker import (
    CallRejectedByBreaker,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerStatistics,
    CircuitState,
    CircuitStateChanged,
)
from stoic.config import (
    load_pipelines,
    pipeline_from_config,
    pipeline_to_config,
    strategy_to_config,
)
from stoic.exceptions import (
    BulkheadFull,
    CircuitBreakerOpen,
    RateLimited,
    RejectedCall,
    ResultRejected,
    StoicError,
    TimeoutExceeded,
)
from stoic.fallback import (
    Fallback,
    FallbackContext,
    FallbackUsed,
    with_fallback,
    with_fallback_chain,
)
from stoic.groups import handle_exception_group, leaf_exceptions, split_exception_group
from stoic.pipeline import Pipeline, PipelineCompleted, standard_pipeline
from stoic.rate_limit import CallRejectedByRateLimiter, RateLimiter, RateLimiterStatistics
from stoic.registry import Registry, default_registry, get_or_create
from stoic.retry import (
    Attempt,
    AttemptCompleted,
    Retry,
    RetryGaveUp,
    RetryScheduled,
    async_retry,
    retry,
    retry_after_hint,
    retry_with_backoff,
)
from stoic.timeout import Timeout, TimeoutExpired, current_deadline, remaining, timeout

__all__ = [
    "Attempt",
    "AttemptCompleted",
    "Backoff",
    "Bulkhead",
    "BulkheadFull",
    "BulkheadStatistics",
    "CallContext",
    "CallRejectedByBreaker",
    "CallRejectedByBulkhead",
    "CallRejectedByRateLimiter",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerOpen",
    "CircuitBreakerStatistics",
    "CircuitState",
    "CircuitStateChanged",
    "Event",
    "Fallback",
    "FallbackContext",
    "FallbackUsed",
    "Jitter",
    "Listener",
    "Outcome",
    "Pipeline",
    "PipelineCompleted",
    "RateLimited",
    "RateLimiter",
    "RateLimiterStatistics",
    "Registry",
    "RejectedCall",
    "ResultRejected",
    "Retry",
    "RetryGaveUp",
    "RetryScheduled",
    "Severity",
    "StoicError",
    "Timeout",
    "TimeoutExceeded",
    "TimeoutExpired",
    "add_listener",
    "async_retry",
    "call_context",
    "constant",
    "current_deadline",
    "default_registry",
    "exponential",
    "gather_outcomes",
    "gather_partial",
    "get_or_create",
    "handle_exception_group",
    "leaf_exceptions",
    "linear",
    "load_pipelines",
    "map_outcomes",
    "map_partial",
    "pipeline_from_config",
    "pipeline_to_config",
    "remaining",
    "remove_listener",
    "retry",
    "retry_after_hint",
    "retry_with_backoff",
    "split_exception_group",
    "standard_pipeline",
    "strategy_to_config",
    "timeout",
    "with_fallback",
    "with_fallback_chain",
]
