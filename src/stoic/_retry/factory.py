"""``retry``: ``Retry``'s options as a decorator factory, or a bare ``@retry``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, overload

from stoic._classify import ExceptionFilter
from stoic._events import Listener
from stoic._retry.policy import Retry
from stoic._strategy import P, T
from stoic.backoff import Backoff

__all__ = ["retry"]


@overload
def retry(fn: Callable[P, Awaitable[T]], /) -> Callable[P, Coroutine[Any, Any, T]]: ...


@overload
def retry(
    *,
    attempts: int = ...,
    on: ExceptionFilter = ...,
    on_result: Callable[[Any], bool] | None = ...,
    backoff: Backoff | None = ...,
    deadline: float | None = ...,
    delay_hint: Callable[[Any], float | None] | None = ...,
    max_delay: float = ...,
    name: str | None = ...,
    listeners: Iterable[Listener] = ...,
    random: Callable[[], float] = ...,
) -> Retry: ...


def retry(fn: Callable[..., Awaitable[Any]] | None = None, /, **options: Any) -> Any:
    """Decorator factory: ``@retry(...)`` with ``Retry``'s options, or bare ``@retry``."""
    policy = Retry(**options)
    return policy if fn is None else policy(fn)
