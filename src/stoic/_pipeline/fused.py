"""The fused layer: a run of ``Retry``, ``CircuitBreaker``, ``Bulkhead`` in a pipeline, as one
coroutine.

The most common stack, composed from each strategy's decorator, is three coroutines per
call: ``@Pipeline(retry, breaker, bulkhead)`` measured 1.86-1.99x a hand-written
one-coroutine stack (``make bench``, group ``stack``), most of it the two extra coroutine
layers (~280 ns each). This layer keeps only the common case in one coroutine: the retry's
first attempt, the breaker's CLOSED admission and plain success, and the bulkhead's
admission with a free slot and nobody queued. Anything else runs the composed chain itself:
someone the retry could report to listening (global or pipeline listeners; a stack without
a retry reports nothing on this path), a breaker not CLOSED, a bulkhead full or queued, and
every attempt after the first. So only the common case is written out twice. It brings the
stack to 1.10x the hand-written one (from 1.86-1.99x; benchmarks/RESULTS.md): the
documented case that keeps this copy. Inside the timeout stack (``timeout, retry, breaker,
bulkhead, timeout``) it takes 1.63x two ``asyncio.timeout`` blocks to 1.57x.
``tests/pipeline/test_fused.py`` holds every fused shape equal to its nested strategies on
random concurrent scripts (outcomes, notes, events, counts), and the async behaviour tests
of the retry, breaker and bulkhead suites also run through it, with neighbours that never
act (``tests/forms.py``).

It reads the strategies through their named interfaces only: ``Retry.resume`` and
``Retry.listeners``, ``CircuitBreaker.controller`` (a ``BreakerController``) and
``Bulkhead.slots`` (its ``cap`` and counts). Exact classes only: a subclass may override
``call``, which this layer would bypass.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from stoic import _clock
from stoic._bulkhead import Bulkhead
from stoic._circuit_breaker import CircuitBreaker
from stoic._circuit_breaker.breaker import settle_raised
from stoic._circuit_breaker.controller import BreakerController
from stoic._classify import check_awaited
from stoic._events import global_listeners, pipeline_listeners
from stoic._retry import Retry

__all__ = ["fuse", "run_start"]

T = TypeVar("T")

# The order the layer runs them in, outermost first; each one optional, two at least.
_ORDER = (Retry, CircuitBreaker, Bulkhead)


def run_start(strategies: Sequence[object], end: int) -> int | None:
    """Where the longest fusable run of ``strategies`` ending at ``end`` starts, or ``None``."""
    for length in (3, 2):
        if end - length >= 0 and _fusable(strategies[end - length : end]):
            return end - length
    return None


def _fusable(strategies: Sequence[object]) -> bool:
    """Two or three of ``Retry``, ``CircuitBreaker``, ``Bulkhead`` (exact classes), in that
    order; a retry with no deadline, ``on_result``, budget or listeners of its own; a breaker whose
    plain success needs only a counter reset (``BreakerController.plain``)."""
    rest = list(_ORDER)
    for strategy in strategies:
        while rest and type(strategy) is not rest[0]:
            rest.pop(0)
        if not rest:
            return False
        rest.pop(0)
        if isinstance(strategy, Retry) and (
            strategy.deadline is not None
            or strategy.on_result is not None
            or strategy.budget is not None
            or strategy.listeners
        ):
            return False
        if isinstance(strategy, CircuitBreaker) and not strategy.controller.plain:
            return False
    return True


def fuse(
    strategies: Sequence[object],
    fn: Callable[..., Awaitable[T]],
    chain: Callable[..., Awaitable[T]],
    inner: Callable[..., Awaitable[T]],
) -> Callable[..., Awaitable[T]]:
    """``chain`` (a fusable run of ``strategies`` composed around ``fn``; ``inner``, all but
    its outermost) with its common case in one coroutine."""
    found: dict[type, Any] = {type(strategy): strategy for strategy in strategies}
    return _fused(
        found.get(Retry), found.get(CircuitBreaker), found.get(Bulkhead), fn, chain, inner
    )


def _fused(
    retry: Retry | None,
    breaker: CircuitBreaker | None,
    bulkhead: Bulkhead | None,
    fn: Callable[..., Awaitable[T]],
    chain: Callable[..., Awaitable[T]],
    inner: Callable[..., Awaitable[T]],
) -> Callable[..., Awaitable[T]]:
    """The fused coroutine; ``inner`` is what the retry runs each later attempt through."""
    # A bulkhead or breaker left out is one that is always free: the fast path never asks.
    core = breaker.controller if breaker is not None else None
    slots = bulkhead.slots if bulkhead is not None else None
    listened = retry is not None
    pipeline_get = pipeline_listeners.get

    @functools.wraps(fn)
    async def fused(*args: Any, **kwargs: Any) -> T:
        if not _clock.asyncio_seen:
            _clock.first_call()
        if (
            (listened and (global_listeners or pipeline_get()))
            or (core is not None and core.closed_epoch < 0)
            or (slots is not None and slots.running >= slots.cap)
        ):
            return await chain(*args, **kwargs)
        # Admission, as the breaker's and the bulkhead's drivers do it, innermost last.
        token = core.closed_epoch if core is not None else 0
        if slots is not None:
            slots.running += 1
            slots.admitted += 1
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            # Settled innermost first, as the nested chain would: the slot, the breaker's count.
            if slots is not None:
                if slots.waiters:
                    slots.release()
                else:
                    slots.running -= 1
            if retry is None:
                _settle(core, token, exc, fn, args)
                raise
            # What the breaker raises instead (its classifier's error, stoic's NotAwaitable)
            # reaches the retry, as it would through the nested layers.
            try:
                _settle(core, token, exc, fn, args)
            except BaseException as error:
                again = retry.resume(error, inner, args, kwargs)
                if again is None:
                    raise
            else:
                again = retry.resume(exc, inner, args, kwargs)
                if again is None:
                    raise
        else:
            if slots is not None:
                if slots.waiters:
                    slots.release()
                else:
                    slots.running -= 1
            if core is not None:
                if token == core.plain_epoch:  # a plain success in this CLOSED epoch
                    core.successful_calls += 1
                    core.consecutive_failures = 0
                else:
                    core.settle_result(token, result, 0.0)
            return result
        # Retried outside the ``except`` block, so later errors do not chain to this one.
        return await again

    return fused


def _settle(
    core: BreakerController | None, token: int, exc: BaseException, fn: Any, args: tuple[Any, ...]
) -> None:
    """Count a first attempt that raised, as the breaker's driver would (``settle_raised``);
    without a breaker, only stoic's failure to await ``fn`` is told apart (``NotAwaitable``)."""
    if core is not None:
        settle_raised(core, token, exc, 0.0, fn, args)
    elif type(exc) is TypeError:
        check_awaited(fn, args, exc)
