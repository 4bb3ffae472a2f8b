"""The founding document's retry API, kept as it was written: ``retry_with_backoff`` and
``async_retry``, on top of ``Retry``."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from stoic import _validate
from stoic._retry.policy import Retry
from stoic._strategy import P, T
from stoic.backoff import _SeedExponential

__all__ = ["async_retry", "retry_with_backoff"]


async def retry_with_backoff(
    func: Callable[[], Awaitable[T]],
    max_retries: int = 3,
    base_delay: float = 1.0,
    max_delay: float = 60.0,
    exponential_base: float = 2.0,
    jitter: bool = True,
    retryable_exceptions: tuple[type[BaseException], ...] = (Exception,),
) -> T:
    """Call ``func()`` and retry it up to ``max_retries`` more times with exponential backoff.

    Waits ``base_delay * exponential_base ** n`` seconds (capped at ``max_delay``), spread by
    +-25% when ``jitter`` (never past ``max_delay``). Re-raises the last exception with a
    note. Cancellation is never retried.
    """
    return await _seed_policy(
        max_retries, base_delay, max_delay, exponential_base, jitter, tuple(retryable_exceptions)
    ).call(func)


def async_retry(
    max_retries: int = 3,
    base_delay: float = 1.0,
    exceptions: tuple[type[BaseException], ...] = (Exception,),
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Decorator: retry an async function like ``retry_with_backoff`` (60 s cap, +-25% jitter)."""
    policy = _seed_policy(max_retries, base_delay, 60.0, 2.0, True, tuple(exceptions))
    return policy.__call__


@functools.lru_cache(maxsize=64, typed=True)  # typed: 2 and 2.0 (or 1 and True) differ
def _seed_policy(
    max_retries: int,
    base_delay: float,
    max_delay: float,
    exponential_base: float,
    jitter: bool,
    retryable: tuple[type[BaseException], ...],
) -> Retry:
    _validate.count(max_retries, "max_retries", minimum=0)
    base_delay = _validate.seconds(base_delay, "base_delay")
    max_delay = _validate.seconds(max_delay, "max_delay")
    exponential_base = _validate.number(exponential_base, "exponential_base", minimum=1.0)
    backoff = _SeedExponential(base_delay, max_delay, exponential_base, jitter)
    return Retry(attempts=max_retries + 1, on=retryable, backoff=backoff, max_delay=max_delay)
