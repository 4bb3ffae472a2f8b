"""Where strategies keep the state that outlives a call, and the clock it is compared against.

A store makes and keeps the state objects (decision cores) of stateful strategies:

- ``BreakerStore.breaker(config)``: a circuit breaker's controller (states, epochs, probe
  leases, counts; its events go to ``config.listeners``);
- ``RateStore.rate(name, interval_ns, burst)``: a rate limiter's schedule (its GCRA
  theoretical arrival time, in integer nanoseconds).

``MemoryStore`` (``stoic.stores.memory``) keeps them in this process; its fast path never
awaits. Strategies built without ``store=`` get state of their own, as if from a private
``MemoryStore``; strategies with the same name and the same store share their state, so
per-host or per-key objects built at run time keep what earlier ones learned. The store
owns the clock that the state's times are read on (``clock.now()``, monotonic seconds):
a store shared by processes must read its times from its server, never from a client's
wall clock. The protocols are what a shared store (Redis) implements.

A breaker's drivers (``call``, the decorator, ``async with``, the pipeline's fused layer)
admit on ``controller.closed_epoch`` and, for a success whose token equals
``controller.plain_epoch``, bump ``successful_calls`` and reset ``consecutive_failures``
themselves instead of calling ``settle_result``. A controller that must see every outcome
(one that batches counts to a server, say) keeps ``plain_epoch`` at -1 and gets them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from stoic._circuit_breaker.config import CircuitBreakerConfig
    from stoic._circuit_breaker.controller import BreakerController
    from stoic._rate_limit import RateState

__all__ = ["BreakerStore", "Clock", "RateStore"]


class Clock(Protocol):
    """The time a store's state is kept on: a monotonic clock, in seconds and nanoseconds."""

    def now(self) -> float: ...

    def now_ns(self) -> int: ...


@runtime_checkable
class BreakerStore(Protocol):
    """Makes (or finds, by ``config.name``) the controller of a circuit breaker."""

    clock: Clock

    def breaker(self, config: CircuitBreakerConfig) -> BreakerController: ...


@runtime_checkable
class RateStore(Protocol):
    """Makes (or finds, by name) the schedule of a rate limiter."""

    clock: Clock

    def rate(self, name: str | None, interval_ns: int, burst: int) -> RateState: ...
