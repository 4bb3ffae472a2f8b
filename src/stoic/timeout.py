"""Timeouts, and the deadline that nested strategies respect.

``timeout(seconds)`` bounds a call: as a strategy (``await t.call(fn, ...)``), a decorator
(``@timeout(2.0)``) or an async context manager (``async with timeout(2.0): ...``). When *its
own* time runs out it cancels the work and raises ``TimeoutExceeded``, a subclass of the
builtin ``TimeoutError``. A cancellation from outside still propagates as cancellation.

While a timeout is active, its deadline lives in a context variable: ``remaining()`` tells any
code below how many seconds are left, and retries never plan a wait past it. Nested timeouts
publish the earliest deadline, so an inner timeout of 10 s inside an outer one of 2 s reports
(and is cut at) 2 s.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar

from stoic import _clock
from stoic._events import Event, Listener, Severity, emit, validate_listeners
from stoic._strategy import P, Strategy, T
from stoic.exceptions import TimeoutExceeded

__all__ = ["Timeout", "TimeoutExpired", "current_deadline", "remaining", "timeout"]

# Absolute deadline (loop time) of the innermost active timeout, already clipped to outer ones.
_deadline: ContextVar[float | None] = ContextVar("stoic_deadline", default=None)
# Per-task stack of (timeout, asyncio scope, token) for the ``async with`` form, so that one
# Timeout object can be entered by many tasks at once.
_scopes: ContextVar[tuple[tuple[Timeout, asyncio.Timeout, Token[float | None]], ...]] = ContextVar(
    "stoic_timeout_scopes", default=()
)


def current_deadline() -> float | None:
    """The innermost deadline as an absolute time on the loop's clock, or ``None``."""
    return _deadline.get()


def remaining() -> float | None:
    """Seconds left before the innermost active stoic deadline (may be <= 0), or ``None``."""
    deadline = _deadline.get()
    if deadline is None:
        return None
    return deadline - _clock.now()


@dataclass(frozen=True, slots=True)
class TimeoutExpired(Event):
    """A stoic timeout ran out and cancelled the work it bounded."""

    severity: ClassVar[Severity] = Severity.WARNING
    timeout: float


class Timeout(Strategy):
    """Bound a call to ``seconds`` (finite or ``math.inf``; >= 0). Build with ``timeout()``."""

    __slots__ = ("_listeners", "name", "seconds")

    def __init__(
        self, seconds: float, *, name: str | None = None, listeners: Iterable[Listener] = ()
    ) -> None:
        if not (isinstance(seconds, int | float) and seconds >= 0):
            raise ValueError(f"seconds must be >= 0 (math.inf for no limit), got {seconds!r}")
        self.seconds = float(seconds)
        self.name = name
        self._listeners = validate_listeners(listeners)

    def __repr__(self) -> str:
        name = f", name={self.name!r}" if self.name is not None else ""
        return f"timeout({self.seconds!r}{name})"

    def _enter(self) -> tuple[asyncio.Timeout, Token[float | None]]:
        outer = _deadline.get()
        own = _clock.now() + self.seconds if self.seconds != math.inf else None
        if own is None:
            deadline = outer
        elif outer is None or own < outer:
            deadline = own
        else:
            deadline = outer
        return asyncio.timeout_at(own), _deadline.set(deadline)

    def _expired(self) -> TimeoutExceeded:
        emit(self._listeners, TimeoutExpired(self.name, self.seconds))
        return TimeoutExceeded(self.seconds)

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)``; raise ``TimeoutExceeded`` if it outlives ``seconds``."""
        scope, token = self._enter()
        try:
            async with scope:
                return await fn(*args, **kwargs)
        except TimeoutError as error:
            if scope.expired():
                # Chained to the cancellation, whose traceback shows where the work was.
                raise self._expired() from error.__cause__ or error
            raise
        finally:
            _deadline.reset(token)

    async def __aenter__(self) -> Timeout:
        scope, token = self._enter()
        await scope.__aenter__()
        _scopes.set((*_scopes.get(), (self, scope, token)))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack = _scopes.get()
        owner, scope, token = stack[-1]
        if owner is not self:
            raise RuntimeError("stoic timeouts must be exited in the reverse order of entry")
        _scopes.set(stack[:-1])
        _deadline.reset(token)
        try:
            await scope.__aexit__(exc_type, exc, tb)
        except TimeoutError as error:
            if scope.expired():
                # Chained to the cancellation, whose traceback shows where the work was.
                raise self._expired() from error.__cause__ or error
            raise


def timeout(
    seconds: float, *, name: str | None = None, listeners: Iterable[Listener] = ()
) -> Timeout:
    """A timeout of ``seconds`` (float >= 0; ``math.inf`` means none).

    Negative and NaN values raise ``ValueError``. Raises ``TimeoutExceeded`` (a
    ``TimeoutError``) when the time runs out; emits ``TimeoutExpired`` to ``listeners``.
    """
    return Timeout(seconds, name=name, listeners=listeners)
