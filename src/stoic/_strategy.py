"""What every strategy shares: ``await strategy.call(fn, *args, **kwargs)`` and decorator use.

A strategy is an object with an async ``call`` that runs ``fn(*args, **kwargs)`` under its
policy. ``Strategy`` derives the decorator form from it, keeping the wrapped signature.
Pipelines (outermost first) rely only on ``call``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from stoic import _validate

__all__ = ["P", "Strategy", "T"]

P = ParamSpec("P")
T = TypeVar("T")


class Strategy:
    """Mixin: subclasses implement ``call``; ``strategy(fn)`` then decorates ``fn``."""

    __slots__ = ()

    async def call(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, fn: Callable[P, Awaitable[T]], /) -> Callable[P, Coroutine[Any, Any, T]]:
        """Decorate an async function (or method) so every call runs through this strategy.

        A sync function, a class or an async generator function raises ``TypeError`` here.
        """
        _validate.async_function(fn)
        call = self.call

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return await call(fn, *args, **kwargs)

        return wrapper
