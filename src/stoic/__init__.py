"""stoic: async-first resilience for Python.

Retry with backoff, timeouts and deadlines, circuit breaker, bulkhead, rate limiter, fallback,
partial-failure batches and exception-group helpers. ``stoic.testing`` has virtual time.
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
    from types import ModuleType
    from typing import Any

    from stoic._context import CallContext, call_context
    from stoic._events import Event, Listener, Severity, add_listener, remove_listener
    from stoic._strategy import Strategy
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
else:
    ModuleType = type(sys)  # as ``types.ModuleType``, which costs an import

# The submodule each public name lives in; ``tests/test_exported_members.py`` holds this,
# the imports above and ``__all__`` to the same names.
_HOMES: dict[str, tuple[str, ...]] = {
    "_context": ("CallContext", "call_context"),
    "_events": ("Event", "Listener", "Severity", "add_listener", "remove_listener"),
    "_strategy": ("Strategy",),
    "backoff": ("Backoff", "Jitter", "constant", "exponential", "linear"),
    "batch": ("Outcome", "gather_outcomes", "gather_partial", "map_outcomes", "map_partial"),
    "bulkhead": ("Bulkhead", "BulkheadStatistics", "CallRejectedByBulkhead"),
    "circuit_breaker": (
        "CallRejectedByBreaker",
        "CircuitBreaker",
        "CircuitBreakerConfig",
        "CircuitBreakerStatistics",
        "CircuitState",
        "CircuitStateChanged",
    ),
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
        "TimeoutExceeded",
    ),
    "fallback": (
        "Fallback",
        "FallbackContext",
        "FallbackUsed",
        "with_fallback",
        "with_fallback_chain",
    ),
    "groups": ("handle_exception_group", "leaf_exceptions", "split_exception_group"),
    "pipeline": ("Pipeline", "PipelineCompleted", "standard_pipeline"),
    "rate_limit": ("CallRejectedByRateLimiter", "RateLimiter", "RateLimiterStatistics"),
    "registry": ("Registry", "default_registry", "get_or_create"),
    "retry": (
        "Attempt",
        "AttemptCompleted",
        "Retry",
        "RetryGaveUp",
        "RetryScheduled",
        "async_retry",
        "retry",
        "retry_after_hint",
        "retry_with_backoff",
    ),
    "timeout": ("Timeout", "TimeoutExpired", "current_deadline", "remaining", "timeout"),
}
_HOME = {name: module for module, names in _HOMES.items() for name in names}

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
    "Strategy",
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


# The submodules an eager ``import stoic`` used to bind as attributes (``stoic.exceptions``):
# still reachable that way, imported on first use. ``retry`` and ``timeout`` name functions.
_SUBMODULES = frozenset(
    {*_HOMES, "_classify", "_clock", "_strategy", "_windows"} - {"retry", "timeout"}
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
    public = (name for name in _SUBMODULES if not name.startswith("_"))
    return sorted({*globals(), *__all__, *public})


class _Package(ModuleType):
    """``stoic`` itself; keeps ``stoic.retry`` and ``stoic.timeout`` the functions.

    Importing a submodule binds it on its package under its own name, which would hide the
    function of the same name (``retry`` lives in ``stoic.retry``). The function wins, as it
    did when this module imported everything eagerly; the submodule stays in ``sys.modules``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and getattr(value, "__name__", None) == f"{__name__}.{name}":
            return  # the submodule, being bound by the import system: the function wins
        super().__setattr__(name, value)


_SHADOWED = frozenset({"retry", "timeout"})  # both a submodule and an exported function
sys.modules[__name__].__class__ = _Package
