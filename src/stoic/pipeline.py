"""Pipelines: strategies composed in one explicit order, outermost first.

::

    payments = Pipeline(
        timeout(10.0),                                  # total time for the whole call
        Retry(attempts=3, on=(ConnectionError, TimeoutError)),
        CircuitBreaker(failure_threshold=5),
        Bulkhead(max_concurrent=20, max_waiting=50),
        timeout(2.0),                                   # per attempt
        name="payments",
    )
    receipt = await payments.call(charge, order)

    @payments
    async def refund(order: Order) -> Receipt: ...

The first strategy is the outermost: a call goes through them in order, and a retry re-runs
everything after it on each attempt. A pipeline is itself a strategy, so pipelines nest. One
pipeline serves any number of call sites and concurrent calls.

Orders that are almost always mistakes raise ``ValueError`` at construction (an inner timeout
that can never fire, a breaker window shorter than the timeout inside it, nested retries, ...);
pass ``validate=False`` to build one anyway. ``describe()`` prints the order.
"""

from __future__ import annotations

import functools
import math
import operator
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from stoic import _clock, _events
from stoic._classify import ExceptionFilter, never_handled
from stoic._context import operation_var
from stoic._events import (
    Event,
    Listener,
    Severity,
    emit,
    observe_pipeline,
    pipeline_listeners,
    validate_listeners,
)
from stoic._strategy import P, Strategy, T
from stoic.backoff import Backoff, exponential
from stoic.bulkhead import Bulkhead
from stoic.circuit_breaker import CircuitBreaker
from stoic.fallback import Fallback
from stoic.rate_limit import RateLimiter
from stoic.retry import Retry, retry_after_hint
from stoic.timeout import Timeout

__all__ = ["Pipeline", "PipelineCompleted", "standard_pipeline"]


@dataclass(frozen=True, slots=True)
class PipelineCompleted(Event):
    """A call through a pipeline ended: ``outcome`` ``"success"`` or ``"failure"``.

    ``duration`` in seconds. Emitted by named pipelines and pipelines with listeners, while
    something listens (the pipeline's listeners, or global ones); an anonymous pipeline is
    just its strategies and reports nothing of its own. Cancelled calls are not reported.
    """

    severity: ClassVar[Severity] = Severity.DEBUG
    duration: float
    outcome: Literal["success", "failure"]
    exception: BaseException | None


class _ChainProperty(property):
    """``Pipeline.call``: read on an instance, the composed chain (``property``'s C getter);
    called on the class, ``Pipeline.call(pipeline, fn, ...)``, like the method it stands for.
    """

    def __init__(self, fget: Callable[[Any], Any], doc: str) -> None:
        super().__init__(fget, doc=doc)
        self.__doc__ = doc  # on 3.11 a property subclass's doc is shadowed by its class's

    def __call__(
        self, pipeline: Pipeline, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any
    ) -> Awaitable[T]:
        return pipeline._entry(fn, *args, **kwargs)


class Pipeline(Strategy):
    """Compose ``strategies`` outermost first; use as ``call``, decorator, or nested strategy.

    - ``strategies``: objects with an async ``call(fn, *args, **kwargs)`` (every stoic
      strategy, another ``Pipeline``, or your own).
    - ``name``: the operation name, readable in ``stoic.call_context().operation`` by code and
      listeners below (default ``None``).
    - ``listeners``: receive every event of every strategy while it runs a call of this
      pipeline (default none).
    - ``validate``: reject orders that are almost always mistakes (default ``True``).
    """

    __slots__ = (
        "__weakref__",
        "_chain",
        "_entry",
        "_listeners",
        "_plain",
        "name",
        "strategies",
        "validated",
    )

    def __init__(
        self,
        *strategies: Strategy,
        name: str | None = None,
        listeners: Iterable[Listener] = (),
        validate: bool = True,
    ) -> None:
        for position, strategy in enumerate(strategies, 1):
            if isinstance(strategy, type):
                raise TypeError(
                    f"strategy {position} must be a strategy object, got the class "
                    f"{strategy.__name__}: pass an instance, such as {strategy.__name__}(...)"
                )
            if not callable(getattr(strategy, "call", None)):
                raise TypeError(
                    f"strategy {position} must have an async call(fn, *args, **kwargs), "
                    f"got {strategy!r}"
                )
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {name!r}")
        self.strategies: tuple[Strategy, ...] = strategies
        self.name = name
        self._listeners = validate_listeners(listeners)
        self.validated = validate
        if validate:
            check_order(strategies)
        self._plain = name is None and not self._listeners
        # The strategies composed once around ``operator.call``, which calls the function it
        # is given (in C, no frame): ``call(fn, ...)`` costs about what a decorated call does.
        self._chain: Callable[..., Awaitable[Any]] = self._compose(operator.call)
        # What ``call`` hands out: the chain, or the chain inside this pipeline's context.
        self._entry = (
            self._chain if self._plain else _in_context(self._chain, self.name, self._listeners)
        )
        if self._listeners:
            # Strategies report per-call timings while listeners can receive them: as long as
            # ``_entry`` lives (the pipeline, each function it decorated and each running call
            # hold it), not merely as long as the pipeline object does.
            observe_pipeline()
            weakref.finalize(self._entry, _events.unobserve_pipeline)

    def __repr__(self) -> str:
        inner = ", ".join(repr(strategy) for strategy in self.strategies)
        name = f", name={self.name!r}" if self.name is not None else ""
        return f"Pipeline({inner}{name})"

    def __len__(self) -> int:
        return len(self.strategies)

    if TYPE_CHECKING:

        def call(
            self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
        ) -> Coroutine[Any, Any, T]: ...

    else:
        # A property handing out the composed chain itself (its getter runs in C):
        # ``pipeline.call(fn, ...)`` then costs no frame of its own, which a forwarding
        # method would (its argument packing alone was ~20% of a three-strategy stack).
        call = _ChainProperty(
            operator.attrgetter("_entry"),
            doc="Run ``fn(*args, **kwargs)`` through every strategy, outermost first (await "
            "it): ``await pipeline.call(fn, *args, **kwargs)``. The composed chain itself, so "
            "the call costs no frame of its own.",
        )

    def __call__(self, fn: Callable[P, Awaitable[T]], /) -> Callable[P, Coroutine[Any, Any, T]]:
        """Decorate an async function so every call runs through the pipeline."""
        if not self._plain or not self.strategies or type(self).call is not Pipeline.call:
            return super().__call__(fn)  # through ``call``: its context, or an override
        # Each strategy's decorator keeps the signature and ``__wrapped__`` chain of ``fn``.
        return self._compose(fn)  # type: ignore[return-value]

    def _compose(self, fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        """Wrap ``fn`` in the strategies' own decorators, once, outermost last.

        Their decorator forms are their fastest; a breaker right around a bulkhead becomes
        one layer.
        """
        composed = fn
        strategies = list(self.strategies)
        while strategies:
            strategy = strategies.pop()
            outer = strategies[-1] if strategies else None
            # Only stoic's own classes, exactly: a subclass may override call or __call__.
            if type(strategy) is Bulkhead and type(outer) is CircuitBreaker:
                assert isinstance(outer, CircuitBreaker)
                # The recommended order, a breaker right around a bulkhead: one layer, not two.
                strategies.pop()
                composed = outer._around_bulkhead(strategy, composed)
            elif type(strategy) in _OWN_DECORATORS:
                composed = strategy(composed)
            else:
                composed = _via_call(strategy, composed)
        return composed

    def describe(self) -> str:
        """A readable listing of the strategies, outermost first, with what each one does."""
        title = "Pipeline" if self.name is None else f"Pipeline {self.name!r}"
        if not self.strategies:
            return f"{title}: empty (calls run as they are)"
        lines = [f"{title}, outermost first:"]
        lines.extend(_describe(self.strategies, depth=1))
        return "\n".join(lines)


def _in_context(
    chain: Callable[..., Awaitable[T]], name: str | None, listeners: tuple[Listener, ...]
) -> Callable[..., Coroutine[Any, Any, T]]:
    """``chain`` run with the pipeline's name and listeners in context, timed when anything
    listens. A closure over what it needs, not a bound method: the pipeline holding it would
    be a reference cycle, and the observation it keeps alive would wait for the collector.
    """

    async def call_in_context(fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        operation = operation_var.set(name) if name is not None else None
        listening = (
            pipeline_listeners.set((*pipeline_listeners.get(), *listeners)) if listeners else None
        )
        timed = bool(listeners) or _events.observed
        started = _clock.now() if timed else 0.0
        failure: BaseException | None = None
        try:
            return await chain(fn, *args, **kwargs)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            if listening is not None:
                pipeline_listeners.reset(listening)
            if operation is not None:
                operation_var.reset(operation)
            # After the reset: the pipeline's listeners get it once, as its own.
            if timed and (failure is None or not never_handled(failure)):
                emit(
                    listeners,
                    PipelineCompleted(
                        name,
                        _clock.now() - started,
                        "success" if failure is None else "failure",
                        failure,
                    ),
                )

    return call_in_context


def _via_call(strategy: Any, fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """A decorator form for a strategy that only has ``call``."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        return await strategy.call(fn, *args, **kwargs)  # type: ignore[no-any-return]

    return wrapper


def _describe(strategies: tuple[Strategy, ...], depth: int) -> Iterator[str]:
    indent = "  " * depth
    for position, strategy in enumerate(strategies, 1):
        if isinstance(strategy, Pipeline):
            label = "pipeline" if strategy.name is None else f"pipeline {strategy.name!r}"
            yield f"{indent}{position}. {label}:"
            yield from _describe(strategy.strategies, depth + 1)
        else:
            yield f"{indent}{position}. {_summary(strategy)}"


def _summary(strategy: Strategy) -> str:
    if isinstance(strategy, Timeout):
        return f"timeout {strategy.seconds:g}s" + _named(strategy.name)
    if isinstance(strategy, Retry):
        deadline = "" if strategy.deadline is None else f", deadline {strategy.deadline:g}s"
        return f"retry: {strategy.attempts} attempts, backoff {strategy.backoff!r}{deadline}" + (
            _named(strategy.name)
        )
    if isinstance(strategy, CircuitBreaker):
        config = strategy.config
        if config.trip == "consecutive":
            rule = f"opens after {config.failure_threshold} consecutive failures"
        else:
            window = (
                f"last {config.window_size} calls"
                if config.window_size is not None
                else f"last {config.window_duration:g}s"
            )
            rule = f"opens at {config.failure_rate:.0%} failures over the {window}"
        return f"circuit breaker: {rule}, breaks for {config.timeout:g}s" + _named(strategy.name)
    if isinstance(strategy, Bulkhead):
        wait = "" if strategy.timeout is None else f", waits at most {strategy.timeout:g}s"
        return (
            f"bulkhead: {strategy.max_concurrent} at once, {strategy.max_waiting} queued{wait}"
            + _named(strategy.name)
        )
    if isinstance(strategy, RateLimiter):
        wait = (
            "waits as long as needed"
            if strategy.max_wait is None
            else f"waits at most {strategy.max_wait:g}s"
        )
        return (
            f"rate limiter: {strategy.rate:g} calls per {strategy.per:g}s, bursts of "
            f"{strategy.burst}, {wait}" + _named(strategy.name)
        )
    if isinstance(strategy, Fallback):
        return f"fallback: {strategy!r}"
    return repr(strategy)


def _named(name: str | None) -> str:
    return "" if name is None else f" [{name}]"


def _flatten(strategies: Iterable[Strategy]) -> Iterator[Strategy]:
    for strategy in strategies:
        if isinstance(strategy, Pipeline):
            yield from _flatten(strategy.strategies)
        else:
            yield strategy


def check_order(strategies: Iterable[Strategy]) -> None:
    """Raise ``ValueError`` for orders that are almost always mistakes (see the module doc)."""
    flat = list(_flatten(strategies))
    seen: set[int] = set()
    for position, strategy in enumerate(flat, 1):
        if id(strategy) in seen:
            raise ValueError(
                f"strategy {position} ({strategy!r}) appears twice in the pipeline: each call "
                "would pass through it twice"
            )
        seen.add(id(strategy))
    for outer_pos, outer in enumerate(flat, 1):
        for inner_pos, inner in enumerate(flat[outer_pos:], outer_pos + 1):
            _check_pair(outer_pos, outer, inner_pos, inner)


def _types(option: object) -> tuple[type[BaseException], ...] | None:
    if isinstance(option, type):
        return (option,)
    if isinstance(option, tuple):
        return option
    return None  # a predicate: nothing can be said about it


def _overlap(retried: object, answered: object) -> bool:
    """Whether a fallback answering ``answered`` takes failures a retry on ``retried`` wants."""
    if answered is None:
        return False
    left, right = _types(retried), _types(answered)
    if left is None or right is None:
        return False
    return any(issubclass(a, b) or issubclass(b, a) for a in left for b in right)


def _check_pair(outer_pos: int, outer: Strategy, inner_pos: int, inner: Strategy) -> None:
    where = f"strategy {inner_pos} inside strategy {outer_pos}"
    if (
        isinstance(outer, Timeout)
        and isinstance(inner, Timeout)
        and inner.seconds != math.inf
        and inner.seconds >= outer.seconds
    ):
        raise ValueError(
            f"{where}: the inner timeout ({inner.seconds:g}s) is not shorter than the outer "
            f"one ({outer.seconds:g}s), so it can never fire; a per-attempt timeout must be "
            "shorter than the total timeout around it"
        )
    if (
        isinstance(outer, Timeout)
        and isinstance(inner, Retry)
        and inner.deadline is not None
        and inner.deadline > outer.seconds
    ):
        raise ValueError(
            f"{where}: the retry deadline ({inner.deadline:g}s) is longer than the timeout "
            f"around it ({outer.seconds:g}s); the timeout cuts it first"
        )
    if isinstance(outer, Retry) and isinstance(inner, Retry):
        raise ValueError(
            f"{where}: nested retries multiply attempts ({outer.attempts} x {inner.attempts} = "
            f"{outer.attempts * inner.attempts}); keep one retry (validate=False to insist)"
        )
    if isinstance(outer, CircuitBreaker) and isinstance(inner, Timeout):
        config = outer.config
        if config.window_duration is not None and config.window_duration <= inner.seconds:
            raise ValueError(
                f"{where}: the breaker's window ({config.window_duration:g}s) is not longer than "
                f"the timeout inside it ({inner.seconds:g}s); outcomes would land after the "
                "window that admitted them"
            )
        if config.slow_call_duration is not None and config.slow_call_duration >= inner.seconds:
            raise ValueError(
                f"{where}: the breaker's slow_call_duration ({config.slow_call_duration:g}s) is "
                f"not shorter than the timeout inside it ({inner.seconds:g}s), so no call can "
                "ever be slow"
            )
    if isinstance(outer, Retry) and isinstance(inner, Fallback) and _overlap(outer.on, inner.on):
        raise ValueError(
            f"{where}: a fallback inside a retry answers the failures the retry is for, so the "
            "retry never sees them; put the fallback outside the retry"
        )


def standard_pipeline(
    name: str | None = None,
    *,
    max_concurrent: int = 1000,
    total_timeout: float = 30.0,
    attempts: int = 4,
    retry_on: ExceptionFilter = (ConnectionError, TimeoutError),
    backoff: Backoff | None = None,
    failure_rate: float = 0.1,
    minimum_calls: int = 100,
    window_duration: float = 30.0,
    break_duration: float = 5.0,
    attempt_timeout: float = 10.0,
    listeners: Iterable[Listener] = (),
) -> Pipeline:
    """The standard pipeline for calls to a remote service; every default can be overridden.

    Modelled on Microsoft.Extensions.Http.Resilience's standard handler, outermost first:

    1. ``Bulkhead(max_concurrent=1000, max_waiting=0)``: sheds load past 1,000 calls at once.
    2. ``timeout(total_timeout=30.0)``: the whole call, every retry included.
    3. ``Retry(attempts=4, on=retry_on, backoff=exponential(2.0, 2.0, 30.0, "full"),
       delay_hint=retry_after_hint)``: three retries with jittered exponential backoff,
       honouring ``Retry-After``; ``retry_on`` defaults to ``ConnectionError`` and
       ``TimeoutError`` (add your HTTP client's transient errors).
    4. ``CircuitBreaker(trip="rate", failure_rate=0.1, minimum_calls=100,
       window_duration=30.0, timeout=break_duration=5.0)``: opens at 10% failures over 30 s.
    5. ``timeout(attempt_timeout=10.0)``: each attempt.

    Named pipelines name every strategy in them (``"<name>.retry"``, ...) for telemetry.
    """

    def part(kind: str) -> str | None:
        return None if name is None else f"{name}.{kind}"

    return Pipeline(
        Bulkhead(max_concurrent, 0, name=part("bulkhead")),
        Timeout(total_timeout, name=part("total_timeout")),
        Retry(
            attempts=attempts,
            on=retry_on,
            backoff=exponential(2.0, 2.0, 30.0, "full") if backoff is None else backoff,
            delay_hint=retry_after_hint,
            name=part("retry"),
        ),
        CircuitBreaker(
            trip="rate",
            failure_rate=failure_rate,
            minimum_calls=minimum_calls,
            window_duration=window_duration,
            timeout=break_duration,
            name=part("circuit_breaker"),
        ),
        Timeout(attempt_timeout, name=part("attempt_timeout")),
        name=name,
        listeners=listeners,
    )


# Strategies whose decorator form ``_compose`` may use (exact types: a subclass may override
# ``call`` or ``__call__``, so it goes through ``call``).
_OWN_DECORATORS: tuple[type, ...] = (
    Retry,
    CircuitBreaker,
    Bulkhead,
    RateLimiter,
    Timeout,
    Fallback,
    Pipeline,
)
