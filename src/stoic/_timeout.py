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
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar

from stoic import _clock, _validate
from stoic._classify import check_awaited
from stoic._events import Event, Listener, Severity, emit, validate_listeners
from stoic._strategy import Frozen, P, T, set_field as _set
from stoic.exceptions import TimeoutExceeded

__all__ = ["Timeout", "TimeoutExpired", "current_deadline", "remaining", "timeout"]


class _Deadline:
    """One active timeout's deadline, linked to the one it was entered under.

    Tasks spawned inside a timeout copy the context, and with it this object; they may outlive
    the block. ``alive`` turns false when the block ends, so such a task stops seeing a
    deadline that no longer applies to it.
    """

    __slots__ = ("alive", "at", "outer")

    def __init__(self, at: float | None, outer: _Deadline | None) -> None:
        self.at = at  # on stoic's clock; None for an infinite timeout
        self.outer = outer
        self.alive = True


_deadline: ContextVar[_Deadline | None] = ContextVar("stoic_deadline", default=None)
_Entry = tuple["Timeout", asyncio.Timeout, _Deadline, Token[_Deadline | None]]
# Per-task stack of entries for the ``async with`` form, so that one Timeout object can be
# entered by many tasks at once.
_scopes: ContextVar[tuple[_Entry, ...]] = ContextVar("stoic_timeout_scopes", default=())


def current_deadline() -> float | None:
    """The earliest deadline of the timeouts still active around this code, or ``None``.

    An absolute time on stoic's clock (``remaining()`` is usually what you want).
    """
    holder = _deadline.get()
    earliest: float | None = None
    while holder is not None:
        at = holder.at
        if holder.alive and at is not None and (earliest is None or at < earliest):
            earliest = at
        holder = holder.outer
    return earliest


def remaining() -> float | None:
    """Seconds left before the earliest active stoic deadline (may be <= 0), or ``None``."""
    deadline = current_deadline()
    if deadline is None:
        return None
    return deadline - _clock.now()


@dataclass(frozen=True, slots=True)
class TimeoutExpired(Event):
    """A stoic timeout ran out and cancelled the work it bounded."""

    severity: ClassVar[Severity] = Severity.WARNING
    timeout: float


class Timeout(Frozen):
    """Bound a call to ``seconds`` (finite or ``math.inf``; >= 0). Build with ``timeout()``."""

    __slots__ = ("_listeners", "name", "seconds")
    seconds: float
    name: str | None
    _listeners: tuple[Listener, ...]

    def __init__(
        self, seconds: float, *, name: str | None = None, listeners: Iterable[Listener] = ()
    ) -> None:
        _set(self, "seconds", _validate.seconds(seconds, "seconds", infinite=True))
        _set(self, "name", _validate.name(name))
        _set(self, "_listeners", validate_listeners(listeners))

    def options(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "name": self.name, "listeners": self._listeners}

    def __repr__(self) -> str:
        name = f", name={self.name!r}" if self.name is not None else ""
        return f"timeout({self.seconds!r}{name})"

    # -- hooks for pipelines and config ------------------------------------------------------

    kind = "timeout"

    def describe(self) -> str:
        return f"timeout {self.seconds:g}s" + ("" if self.name is None else f" [{self.name}]")

    @property
    def time_limit(self) -> float | None:
        return None if self.seconds == math.inf else self.seconds

    def check_inside(self, inner: Any, where: str) -> None:
        limit = getattr(inner, "time_limit", None)
        if isinstance(inner, Timeout) and limit is not None and limit >= self.seconds:
            raise ValueError(
                f"{where}: the inner timeout ({limit:g}s) is not shorter than the outer "
                f"one ({self.seconds:g}s), so it can never fire; a per-attempt timeout must be "
                "shorter than the total timeout around it"
            )

    def to_config(self) -> dict[str, Any]:
        from stoic._configuration import without_none

        return without_none({"seconds": self.seconds, "name": self.name})

    @classmethod
    def from_config(cls, options: Mapping[str, Any], where: str) -> Timeout:
        from stoic._configuration import check_keys

        check_keys(options, ("seconds", "name"), where)
        return cls(**options)

    def _enter(self) -> tuple[asyncio.Timeout, _Deadline, Token[_Deadline | None]]:
        finite = self.seconds != math.inf
        holder = _Deadline(_clock.now() + self.seconds if finite else None, _deadline.get())
        # Relative, so asyncio reads its own loop clock: right even where that clock is not
        # the one stoic plans with.
        try:
            scope = asyncio.timeout(self.seconds if finite else None)
        except RuntimeError:
            # asyncio's "no running event loop" under trio: say so clearly. Checked here, off
            # the happy path: on Python 3.11 a loop lookup costs a ``getpid`` system call.
            _clock.running_loop()
            raise
        return scope, holder, _deadline.set(holder)

    def _expired(self) -> TimeoutExceeded:
        emit(self._listeners, TimeoutExpired(self.name, self.seconds))
        return TimeoutExceeded(self.seconds)

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)``; raise ``TimeoutExceeded`` if it outlives ``seconds``."""
        if not _clock.asyncio_seen:
            _clock.first_call()
        scope, holder, token = self._enter()
        try:
            async with scope:
                try:
                    return await fn(*args, **kwargs)
                except TypeError as exc:
                    check_awaited(fn, args, exc)
                    raise
        except TimeoutError as error:
            if scope.expired():
                # Chained to the cancellation, whose traceback shows where the work was.
                raise self._expired() from error.__cause__ or error
            raise
        finally:
            holder.alive = False
            _deadline.reset(token)

    async def __aenter__(self) -> Timeout:
        if not _clock.asyncio_seen:
            _clock.first_call()
        scope, holder, token = self._enter()
        await scope.__aenter__()
        _scopes.set((*_scopes.get(), (self, scope, holder, token)))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack = _scopes.get()
        if not stack or stack[-1][0] is not self:
            raise RuntimeError(
                "stoic timeouts must be exited in the task that entered them, in the reverse "
                "order of entry"
            )
        _, scope, holder, token = stack[-1]
        _scopes.set(stack[:-1])
        holder.alive = False
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
