"""``MemoryStore``: state kept in this process, on stoic's clock. The default store."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from stoic import _clock
from stoic._circuit_breaker.config import CircuitBreakerConfig
from stoic._circuit_breaker.controller import BreakerController
from stoic._rate_limit import RateState
from stoic.stores import Clock

__all__ = ["MemoryStore"]


class MemoryStore:
    """State for strategies in this process; objects with the same name share it.

    ``MemoryStore()`` is what a strategy built without ``store=`` gets a private copy of.
    Pass one store to several strategies of the same name to share their state (a breaker
    per host, built at run time, that remembers the host's failures). Sharing asks for the
    same options: a second breaker named like the first with another config, or a second
    limiter with another rate, raises ``ValueError``. Unnamed strategies never share.
    """

    __slots__ = ("_breakers", "_lock", "_rates", "clock")

    def __init__(self) -> None:
        # The monotonic clock every strategy reads (virtual in tests): the module itself,
        # whose ``now`` is looked up at each read (it switches under virtual time).
        self.clock: Clock = _clock
        self._breakers: dict[str, BreakerController] = {}
        self._rates: dict[str, RateState] = {}
        self._lock = threading.Lock()  # strategies may be built in several threads

    def __repr__(self) -> str:
        return f"MemoryStore(breakers={len(self._breakers)}, rate_limiters={len(self._rates)})"

    def breaker(self, config: CircuitBreakerConfig) -> BreakerController:
        if config.name is None:
            return BreakerController(config, self.clock)
        with self._lock:
            found = self._breakers.get(config.name)
            if found is None:
                found = self._breakers[config.name] = BreakerController(config, self.clock)
            # Listeners are code, not options: the first breaker's receive the shared events.
            _same(
                "circuit breaker",
                config.name,
                dataclasses.replace(found.config, listeners=()),
                dataclasses.replace(config, listeners=()),
            )
            return found

    def rate(self, name: str | None, interval_ns: int, burst: int) -> RateState:
        if name is None:
            return RateState(interval_ns, burst)
        with self._lock:
            found = self._rates.get(name)
            if found is None:
                found = self._rates[name] = RateState(interval_ns, burst)
            _same("rate limiter", name, (found.interval, found.burst), (interval_ns, burst))
            return found


def _same(kind: str, name: str, kept: Any, given: Any) -> None:
    if kept != given:
        raise ValueError(
            f"a {kind} named {name!r} with other options already keeps its state in this "
            f"store ({kept!r}, not {given!r}); give it another name or the same options"
        )
