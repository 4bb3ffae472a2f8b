"""Circuit breaker: stop calling a dependency that keeps failing, then probe it back to health.

::

    breaker = CircuitBreaker(CircuitBreakerConfig(failure_threshold=5, timeout=30.0))
    await breaker.call(fetch, url)

    @CircuitBreaker(failure_threshold=3)
    async def get_quote(symbol: str) -> Quote: ...

    async with breaker:
        await client.post("/api", json=data)

CLOSED runs every call and counts failures. When a trip rule fires it turns OPEN: calls are
rejected at once with ``CircuitBreakerOpen`` (the function is not called) for ``timeout``
seconds, the *break duration*. The next call after that turns it HALF_OPEN: at most
``half_open_max_calls`` probes run at a time, ``success_threshold`` probe successes close it,
and any probe failure opens it again (for a longer break when ``break_duration_multiplier``
> 1). A probe holds its permit until it ends by any path, or until its lease (one break
duration) runs out, so a probe that never returns cannot wedge the breaker.

Outcomes are only counted in the state they were admitted in: every state change starts a new
epoch, and a call admitted in an earlier epoch (or a probe whose lease ran out) finishes
without moving any counter that decides the state. Cancellation never counts.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from stoic import _clock, _validate
from stoic._circuit_breaker.config import (
    CONFIG_KEYS,
    DEFAULT_CONFIG,
    CircuitBreakerConfig,
    CircuitState,
    Options,
)
from stoic._circuit_breaker.controller import SUCCESS, UNCOUNTED, BreakerController
from stoic._circuit_breaker.events import (
    CircuitBreakerStatistics,
)
from stoic._classify import check_awaited
from stoic._strategy import Frozen, P, T, set_field as _set
from stoic.stores import BreakerStore

if TYPE_CHECKING:
    from typing_extensions import Unpack


__all__ = ["CircuitBreaker", "settle_raised"]

# Per task: the innermost open ``async with breaker:`` block, as [breaker, token, start, the
# variable's reset token]. Resetting the variable with that token brings back the block
# around it, so nested blocks need no stack of their own.
_entry: ContextVar[list[Any] | None] = ContextVar("stoic_breaker_entry", default=None)


class CircuitBreaker(Frozen):
    """Reject calls to a failing dependency for a while, then let probes test it.

    ``CircuitBreaker(config=None, **options)``: options are the fields of
    ``CircuitBreakerConfig`` (see there for every default), given as a config, as keywords,
    or both: keywords then override the config's fields (``dataclasses.replace``), so one
    base config can serve several breakers.

    Raises ``CircuitBreakerOpen`` (with ``retry_after``) when it rejects a call; the wrapped
    function's own exceptions pass through untouched. Use it as
    ``await breaker.call(fn, *args, **kwargs)``, as a decorator, or as ``async with breaker:``
    (the block's exception, if any, is classified like a call's). One breaker is meant to be
    shared by many tasks. Events (``CircuitStateChanged``, ``CallRejectedByBreaker``) go to
    listeners after the state has changed, never while a change is half done.
    """

    __slots__ = ("_config", "_core", "_store")
    _config: CircuitBreakerConfig
    _store: BreakerStore | None
    _core: BreakerController

    def __init__(
        self,
        config: CircuitBreakerConfig | None = None,
        *,
        store: BreakerStore | None = None,
        **options: Unpack[Options],
    ) -> None:
        fields: dict[str, Any] = options  # type: ignore[assignment]  # a fresh dict already
        if config is None:
            # The default config is shared: a breaker with no options costs no config object,
            # and breakers built with the same options (one per host, say) share theirs.
            config = _config_for(fields) if fields else DEFAULT_CONFIG
        elif not isinstance(config, CircuitBreakerConfig):
            raise TypeError(f"config must be a CircuitBreakerConfig or None, got {config!r}")
        elif fields:
            config = dataclasses.replace(config, **_renamed(fields))
        if store is not None:
            _validate.instance(store, "store", BreakerStore, "a stoic.stores.BreakerStore")
        _set(self, "_config", config)
        _set(self, "_store", store)
        # The decision core: the store's (shared by name), or one of its own on stoic's clock.
        core = BreakerController(config, _clock) if store is None else store.breaker(config)
        _set(self, "_core", core)

    def options(self) -> dict[str, Any]:
        return {"config": self._config, "store": self._store}

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self._config.name!r}, state={self._core.state.value})"

    @property
    def config(self) -> CircuitBreakerConfig:
        """The options this breaker runs with."""
        return self._config

    @property
    def name(self) -> str | None:
        """The name carried by this breaker's events."""
        return self._config.name

    @property
    def controller(self) -> BreakerController:
        """The decision core this breaker drives (its store's, when it has one)."""
        return self._core

    # -- hooks for pipelines and config ------------------------------------------------------

    kind = "circuit_breaker"

    def describe(self) -> str:
        config = self._config
        if config.trip == "consecutive":
            rule = f"opens after {config.failure_threshold} consecutive failures"
        else:
            window = (
                f"last {config.window_size} calls"
                if config.window_size is not None
                else f"last {config.window_duration:g}s"
            )
            rule = f"opens at {config.failure_rate:.0%} failures over the {window}"
        name = "" if config.name is None else f" [{config.name}]"
        return f"circuit breaker: {rule}, breaks for {config.break_duration:g}s{name}"

    def check_inside(self, inner: Any, where: str) -> None:
        limit = getattr(inner, "time_limit", None)
        if limit is None:
            return
        config = self._config
        if config.window_duration is not None and config.window_duration <= limit:
            raise ValueError(
                f"{where}: the breaker's window ({config.window_duration:g}s) is not longer "
                f"than the timeout inside it ({limit:g}s); outcomes would land after the "
                "window that admitted them"
            )
        if config.slow_call_duration is not None and config.slow_call_duration >= limit:
            raise ValueError(
                f"{where}: the breaker's slow_call_duration ({config.slow_call_duration:g}s) "
                f"is not shorter than the timeout inside it ({limit:g}s), so no call can ever "
                "be slow"
            )

    def to_config(self) -> dict[str, Any]:
        """The fields of its config that differ from the defaults."""
        from stoic._configuration import exception_names

        config = self._config
        if config.failure_result is not None:
            raise ValueError(
                "circuit breaker failure_result is a function, which config cannot express"
            )
        entry: dict[str, Any] = {}
        for key in CONFIG_KEYS:
            value = getattr(config, key)
            if value == getattr(DEFAULT_CONFIG, key):
                continue
            if key in ("record", "ignore"):
                value = exception_names(value, f"circuit breaker {key}")
            entry["break_duration" if key == "timeout" else key] = value
        return entry

    @classmethod
    def from_config(cls, options: Mapping[str, Any], where: str) -> CircuitBreaker:
        from stoic import _configuration

        _configuration.check_keys(options, (*CONFIG_KEYS, "break_duration"), where)
        options = dict(options)
        for key in ("record", "ignore"):
            if key in options:
                options[key] = _configuration.exceptions(options[key], f"{where}.{key}")
        return cls(**options)

    @property
    def state(self) -> CircuitState:
        """The current state. OPEN turns HALF_OPEN on the first call after the break."""
        return self._core.state

    def statistics(self) -> CircuitBreakerStatistics:
        """A frozen snapshot of the breaker's state and counts (call it on the event loop)."""
        return self._core.statistics()

    def isolate(self) -> None:
        """Hold the breaker OPEN, rejecting every call, until ``reset()``."""
        self._core.isolate()

    def reset(self) -> None:
        """Close the breaker and clear every count, the break duration and isolation."""
        self._core.reset()

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``await fn(*args, **kwargs)`` unless the breaker rejects it.

        Returns what ``fn`` returns and raises what it raises; raises ``CircuitBreakerOpen``
        without calling ``fn`` when OPEN, isolated, or HALF_OPEN with every probe permit taken.
        """
        # No ``_clock.first_call()``: nothing here needs asyncio (the breaker runs under any
        # event loop that keeps monotonic time).
        core = self._core
        token, started = core.plain_epoch, 0.0
        if token < 0:  # not CLOSED, or a breaker whose calls need more than a counter reset
            token = core.closed_epoch
            if token < 0:
                token = core.admit()
            if core.timed:
                started = core.clock.now()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            settle_raised(core, token, exc, started, fn, args)
            raise
        # ``core.settle_result`` of a plain success in this CLOSED epoch, inlined.
        if token == core.plain_epoch:
            core.successful_calls += 1
            core.consecutive_failures = 0
        else:
            core.settle_result(token, result, started)
        return result

    def _decorate(self, fn: Callable[P, Awaitable[T]], /) -> Callable[P, Coroutine[Any, Any, T]]:
        """The decorator form: every call goes through the breaker (as ``call``)."""
        core = self._core
        settle_result = core.settle_result

        # The body of ``call``, inlined: one coroutine per call instead of two.
        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            token, started = core.plain_epoch, 0.0
            if token < 0:
                token = core.closed_epoch
                if token < 0:
                    token = core.admit()
                if core.timed:
                    started = core.clock.now()
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                settle_raised(core, token, exc, started, fn, args)
                raise
            if token == core.plain_epoch:
                core.successful_calls += 1
                core.consecutive_failures = 0
            else:
                settle_result(token, result, started)
            return result

        return guarded

    async def __aenter__(self) -> None:
        core = self._core
        token, started = core.plain_epoch, 0.0
        if token < 0:  # as in ``call``
            token = core.closed_epoch
            if token < 0:
                token = core.admit()
            if core.timed:
                started = core.clock.now()
        # In a context variable, so each task (and each nested block) keeps its own entry; the
        # variable's reset token, kept in the entry, refuses (ValueError) to be used in another
        # task's context: how an exit from the wrong task is caught, without asking asyncio
        # which task runs.
        entry: list[Any] = [self, token, started, None]
        entry[3] = _entry.set(entry)

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        entry = _entry.get()
        try:
            if entry is None or entry[0] is not self:
                raise ValueError
            _entry.reset(entry[3])
        except ValueError:
            raise RuntimeError(
                "async with breaker: exit it in the task that entered it, innermost block first "
                "(fixtures that set up and tear down in different tasks should use "
                "breaker.call instead)"
            ) from None
        token, started = entry[1], entry[2]
        core = self._core
        if exc is not None:
            core.settle_exception(token, exc, started)
        elif token == core.plain_epoch:  # ``core.settle`` of it, inlined as in call
            core.successful_calls += 1
            core.consecutive_failures = 0
        else:
            core.settle(token, SUCCESS, started)


def settle_raised(
    core: BreakerController,
    token: int,
    exc: BaseException,
    started: float,
    fn: Any,
    args: tuple[Any, ...],
) -> None:
    """Count a call to ``fn(*args)`` that raised ``exc``, as every driver of a breaker does
    (the fused pipeline layer too); stoic's own failure to await ``fn`` counts nowhere.

    Raises ``NotAwaitable`` instead when that failure is what ``exc`` is, and whatever the
    breaker's ``record``/``ignore`` predicate raises (after releasing a probe's permit).
    """
    if type(exc) is TypeError:
        try:
            check_awaited(fn, args, exc)  # raises when stoic caused it: not the callee's
        except BaseException:
            core.settle(token, UNCOUNTED, started)
            raise
    core.settle_exception(token, exc, started)


def _config_for(fields: dict[str, Any]) -> CircuitBreakerConfig:
    """The config of these options; equal options give the one (immutable) config."""
    # Types in the key: ``True``, ``1`` and ``1.0`` are equal, and only the first is invalid.
    # In the order given, unsorted: a call site gives its options in one order.
    key = (*fields.items(), *map(type, fields.values()))
    try:
        hash(key)
    except TypeError:  # an unhashable option (a list of listeners, say): a config of its own
        return CircuitBreakerConfig(**_renamed(fields))
    return _shared_config(key)


@functools.lru_cache(maxsize=256)  # bounded: at most 256 option sets kept alive
def _shared_config(key: tuple[Any, ...]) -> CircuitBreakerConfig:
    return CircuitBreakerConfig(**_renamed(dict(key[: len(key) // 2])))


def _renamed(fields: dict[str, Any]) -> dict[str, Any]:
    """``break_duration``, stoic's name for the founding document's ``timeout``, as ``timeout``."""
    if "break_duration" in fields:
        if "timeout" in fields:
            raise TypeError("give break_duration or timeout (its founding document name), not both")
        fields = dict(fields)
        fields["timeout"] = fields.pop("break_duration")
    return fields
