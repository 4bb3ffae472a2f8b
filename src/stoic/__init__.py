"""stoic: async-first resilience for Python.

Retry with backoff, timeouts and deadlines, circuit breaker, bulkhead, rate limiter, fallback,
partial-failure batches and exception-group helpers. ``stoic.testing`` has virtual time.
Every public name is importable from here; the modules behind them are private.
"""

# ``import stoic`` loads no strategy: each name is imported on first use (PEP 562), so a
# program pays, at startup, for the strategies it uses and nothing else (``import stoic``
# alone does not even import ``asyncio``). Type checkers read the imports below.
from __future__ import annotations

import sys

# Not ``typing.TYPE_CHECKING``: importing ``typing`` would double this module's import time.
# Type checkers treat any ``TYPE_CHECKING`` name as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from stoic._bulkhead import (
        Bulkhead as Bulkhead,
        BulkheadStatistics as BulkheadStatistics,
        CallRejectedByBulkhead as CallRejectedByBulkhead,
        ConcurrencyLimit as ConcurrencyLimit,
        FixedLimit as FixedLimit,
    )
    from stoic._circuit_breaker import (
        CallRejectedByBreaker as CallRejectedByBreaker,
        CircuitBreaker as CircuitBreaker,
        CircuitBreakerConfig as CircuitBreakerConfig,
        CircuitBreakerStatistics as CircuitBreakerStatistics,
        CircuitState as CircuitState,
        CircuitStateChanged as CircuitStateChanged,
    )
    from stoic._context import (
        CallContext as CallContext,
        call_context as call_context,
    )
    from stoic._events import (
        Event as Event,
        Listener as Listener,
        Severity as Severity,
        add_listener as add_listener,
        remove_listener as remove_listener,
    )
    from stoic._fallback import (
        Fallback as Fallback,
        FallbackContext as FallbackContext,
        FallbackUsed as FallbackUsed,
        with_fallback as with_fallback,
        with_fallback_chain as with_fallback_chain,
    )
    from stoic._pipeline import (
        Pipeline as Pipeline,
        PipelineCompleted as PipelineCompleted,
        standard_pipeline as standard_pipeline,
    )
    from stoic._rate_limit import (
        CallRejectedByRateLimiter as CallRejectedByRateLimiter,
        RateLimiter as RateLimiter,
        RateLimiterStatistics as RateLimiterStatistics,
    )
    from stoic._retry import (
        Attempt as Attempt,
        AttemptCompleted as AttemptCompleted,
        Retry as Retry,
        RetryBudget as RetryBudget,
        RetryGaveUp as RetryGaveUp,
        RetryScheduled as RetryScheduled,
        TokenRetryBudget as TokenRetryBudget,
        async_retry as async_retry,
        retry as retry,
        retry_after_hint as retry_after_hint,
        retry_with_backoff as retry_with_backoff,
    )
    from stoic._strategy import Strategy as Strategy
    from stoic._throttle import (
        AdaptiveThrottle as AdaptiveThrottle,
        CallThrottled as CallThrottled,
    )
    from stoic._timeout import (
        Timeout as Timeout,
        TimeoutExpired as TimeoutExpired,
        current_deadline as current_deadline,
        remaining as remaining,
        timeout as timeout,
    )
    from stoic.backoff import (
        Backoff as Backoff,
        Jitter as Jitter,
        constant as constant,
        exponential as exponential,
        linear as linear,
    )
    from stoic.batch import (
        Outcome as Outcome,
        gather_outcomes as gather_outcomes,
        gather_partial as gather_partial,
        map_outcomes as map_outcomes,
        map_partial as map_partial,
    )
    from stoic.config import (
        load_pipelines as load_pipelines,
        pipeline_from_config as pipeline_from_config,
        pipeline_to_config as pipeline_to_config,
        strategy_to_config as strategy_to_config,
    )
    from stoic.exceptions import (
        BulkheadFull as BulkheadFull,
        CircuitBreakerOpen as CircuitBreakerOpen,
        RateLimited as RateLimited,
        RejectedCall as RejectedCall,
        ResultRejected as ResultRejected,
        StoicError as StoicError,
        Throttled as Throttled,
        TimeoutExceeded as TimeoutExceeded,
    )
    from stoic.groups import (
        handle_exception_group as handle_exception_group,
        leaf_exceptions as leaf_exceptions,
        split_exception_group as split_exception_group,
    )
    from stoic.registry import (
        Registry as Registry,
        default_registry as default_registry,
        get_or_create as get_or_create,
    )

# The one list of public names, by the module each lives in. ``__all__`` is derived from it;
# ``tests/test_exported_members.py`` holds the imports above to the same names.
_HOMES: dict[str, tuple[str, ...]] = {
    "_bulkhead": (
        "Bulkhead",
        "BulkheadStatistics",
        "CallRejectedByBulkhead",
        "ConcurrencyLimit",
        "FixedLimit",
    ),
    "_circuit_breaker": (
        "CallRejectedByBreaker",
        "CircuitBreaker",
        "CircuitBreakerConfig",
        "CircuitBreakerStatistics",
        "CircuitState",
        "CircuitStateChanged",
    ),
    "_context": ("CallContext", "call_context"),
    "_events": ("Event", "Listener", "Severity", "add_listener", "remove_listener"),
    "_fallback": (
        "Fallback",
        "FallbackContext",
        "FallbackUsed",
        "with_fallback",
        "with_fallback_chain",
    ),
    "_pipeline": ("Pipeline", "PipelineCompleted", "standard_pipeline"),
    "_rate_limit": ("CallRejectedByRateLimiter", "RateLimiter", "RateLimiterStatistics"),
    "_retry": (
        "Attempt",
        "AttemptCompleted",
        "Retry",
        "RetryBudget",
        "RetryGaveUp",
        "RetryScheduled",
        "TokenRetryBudget",
        "async_retry",
        "retry",
        "retry_after_hint",
        "retry_with_backoff",
    ),
    "_strategy": ("Strategy",),
    "_throttle": ("AdaptiveThrottle", "CallThrottled"),
    "_timeout": ("Timeout", "TimeoutExpired", "current_deadline", "remaining", "timeout"),
    "backoff": ("Backoff", "Jitter", "constant", "exponential", "linear"),
    "batch": ("Outcome", "gather_outcomes", "gather_partial", "map_outcomes", "map_partial"),
    "config": (
        "load_pipelines",
        "pipeline_from_config",
        "pipeline_to_config",
        "strategy_to_config",
    ),
    "exceptions": (
        "BulkheadFull",
        "CircuitBreakerOpen",
        "RateLimited",
        "RejectedCall",
        "ResultRejected",
        "StoicError",
        "Throttled",
        "TimeoutExceeded",
    ),
    "groups": ("handle_exception_group", "leaf_exceptions", "split_exception_group"),
    "registry": ("Registry", "default_registry", "get_or_create"),
}
_HOME = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(_HOME)

# Public submodules, reachable as attributes (``stoic.exceptions``), imported on first use.
_SUBMODULES = frozenset(
    {"backoff", "batch", "config", "demo", "exceptions", "groups", "registry", "testing"}
)

if not TYPE_CHECKING:  # type checkers see the imports above, and flag unknown names

    def __getattr__(name: str) -> Any:
        module = _HOME.get(name)
        if module is None:
            if name not in _SUBMODULES:
                raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
            __import__(f"{__name__}.{name}")
            module = sys.modules[f"{__name__}.{name}"]
            globals()[name] = module  # bound by the import system only on a first import
            return module
        qualified = f"{__name__}.{module}"
        __import__(qualified)
        value = getattr(sys.modules[qualified], name)
        globals()[name] = value  # later lookups find it without this function
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SUBMODULES})
