"""Checked by ``mypy --strict --warn-unused-ignores`` (``make lint``), never run: the public
API's types.

Each annotated assignment pins what a decorator or factory returns; each
``# type: ignore[...]`` marks a misuse mypy must reject (the check fails if it stops).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Protocol, assert_type

import stoic
from stoic import (
    Bulkhead,
    CircuitBreaker,
    Fallback,
    Pipeline,
    RateLimiter,
    Retry,
    async_retry,
    retry,
    timeout,
    with_fallback,
)
from stoic.stores.memory import MemoryStore


async def fetch(url: str, *, attempts: int = 1) -> bytes:
    return url.encode() * attempts


async def spare() -> bytes:
    return b""


class Fetch(Protocol):
    """``fetch``'s signature: every decorator must keep it."""

    def __call__(self, url: str, *, attempts: int = ...) -> Coroutine[Any, Any, bytes]: ...


# -- decorators keep the signature ------------------------------------------------------------

kept: list[Fetch] = [
    retry(fetch),
    retry(attempts=2)(fetch),
    Retry()(fetch),
    CircuitBreaker()(fetch),
    Bulkhead(3)(fetch),
    RateLimiter(5)(fetch),
    timeout(1.0)(fetch),
    Fallback(b"")(fetch),
    Pipeline(timeout(2.0), Retry())(fetch),
    async_retry()(fetch),
]
not_kept: Callable[[int], Coroutine[Any, Any, bytes]] = Retry()(fetch)  # type: ignore[arg-type]


async def calls() -> None:
    assert_type(await Retry().call(fetch, "u"), bytes)
    assert_type(await Pipeline(Retry()).call(fetch, "u", attempts=2), bytes)
    assert_type(await CircuitBreaker().call(fetch, "u"), bytes)
    assert_type(await stoic.retry_with_backoff(spare), bytes)
    assert_type(await with_fallback(spare, spare), bytes)


# -- strategies are immutable and copied with with_ -------------------------------------------

assert_type(Retry().with_(attempts=5), Retry)
assert_type(Bulkhead(2).with_(max_concurrent=4), Bulkhead)
assert_type(CircuitBreaker(store=MemoryStore(), name="api"), CircuitBreaker)

# -- misuse is an error -----------------------------------------------------------------------


async def misuse() -> None:
    await Retry()(fetch)(1)  # type: ignore[arg-type]
    await Retry()(fetch)("u", attempts="x")  # type: ignore[arg-type]
    await Retry().call(fetch)  # type: ignore[call-arg]
    await Retry().call(fetch, 1)  # type: ignore[arg-type]
    Retry(attempts="3")  # type: ignore[arg-type]
    CircuitBreaker(failure_threshold=None)  # type: ignore[arg-type]
    CircuitBreaker(store=object())  # type: ignore[arg-type]
    Pipeline(Retry)  # type: ignore[arg-type]
    timeout("1s")  # type: ignore[arg-type]
