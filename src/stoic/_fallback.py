"""Fallback: when a call fails, answer with something else instead.

Two functions for one-off use and a strategy for reuse::

    price = await with_fallback(lambda: live_price(sku), lambda: cached_price(sku))

    user = await with_fallback_chain(
        lambda: primary_api.get_user(uid),
        lambda: secondary_api.get_user(uid),
        lambda: cache.get_user(uid),
    )

    @Fallback([], on=ConnectionError)
    async def recommendations(uid: int) -> list[Item]: ...

    @Fallback(handler=lambda ctx: Quote.stale(ctx.exception), on_result=lambda q: q.expired)
    async def quote(symbol: str) -> Quote: ...

Matching is exception-group aware (``stoic._classify``): a group made only of matching
exceptions triggers the fallback. Cancellation, ``KeyboardInterrupt`` and ``SystemExit``
never do; they pass through untouched. When the fallback itself raises, its exception
propagates with a note saying the primary had failed, and the primary's exception is its
``__context__``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, cast

from stoic import _clock, _validate
from stoic._classify import ExceptionFilter, Matcher, check_awaited, compile_matcher, note
from stoic._events import Event, Listener, Severity, emit, validate_listeners
from stoic._strategy import Frozen, P, T, set_field as _set

__all__ = [
    "Fallback",
    "FallbackContext",
    "FallbackUsed",
    "with_fallback",
    "with_fallback_chain",
]


async def with_fallback(
    primary: Callable[[], Awaitable[T]],
    fallback: Callable[[], Awaitable[T]],
    exceptions: ExceptionFilter = (Exception,),
) -> T:
    """Return ``await primary()``, or ``await fallback()`` when the primary raises.

    ``exceptions`` (default: any ``Exception``) is an exception type, a tuple of types or a
    predicate; other exceptions, and cancellation always, propagate from the primary as they
    are. An exception from ``fallback`` propagates with a note, chained to the primary's.
    """
    matches = compile_matcher(exceptions, parameter="exceptions")
    try:
        return await primary()
    except BaseException as exc:
        if type(exc) is TypeError:
            check_awaited(primary, (), exc)
        if not matches(exc):
            raise
        try:
            return await fallback()
        except Exception as fallback_exc:
            note(
                fallback_exc,
                "raised by the fallback after",
                f"raised by the fallback after the primary failed with {exc!r}",
            )
            raise


async def with_fallback_chain(
    *funcs: Callable[[], Awaitable[T]], exceptions: ExceptionFilter = (Exception,)
) -> T:
    """Await each of ``funcs`` in order and return the first result that is not an exception.

    A function that raises a matching exception (``exceptions``, default any ``Exception``)
    hands over to the next; any other exception, and cancellation always, propagates at once.
    When every function fails, the last one's exception is raised with a note saying how many
    were tried; each earlier failure is the ``__context__`` of the next. Raises ``ValueError``
    when given no functions.
    """
    if not funcs:
        raise ValueError("with_fallback_chain needs at least one function, got none")
    return await _chain(funcs, 0, compile_matcher(exceptions, parameter="exceptions"))


async def _chain(funcs: tuple[Callable[[], Awaitable[T]], ...], index: int, matches: Matcher) -> T:
    # Each next function runs inside the previous one's ``except`` block, so the failures chain
    # naturally through ``__context__`` and the final traceback shows all of them.
    try:
        return await funcs[index]()
    except BaseException as exc:
        if type(exc) is TypeError:
            check_awaited(funcs[index], (), exc)
        if not matches(exc):
            raise
        if index + 1 == len(funcs):
            note(
                exc,
                "every function in the fallback chain",
                f"every function in the fallback chain failed ({len(funcs)} tried)",
            )
            raise
        return await _chain(funcs, index + 1, matches)


@dataclass(frozen=True, slots=True)
class FallbackContext:
    """What a fallback ``handler`` receives: why the primary call was replaced.

    ``exception`` is the exception the call raised, or ``None`` when the call returned a result
    that ``on_result`` rejected; ``result`` is that rejected result (``None`` otherwise).
    """

    exception: BaseException | None
    result: Any = None


@dataclass(frozen=True, slots=True)
class FallbackUsed(Event):
    """The call failed and the fallback answered instead (``exception`` or ``result`` says why)."""

    severity: ClassVar[Severity] = Severity.WARNING
    exception: BaseException | None
    result: Any = None


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Final = _Missing()

FallbackHandler = Callable[[FallbackContext], Any]


class Fallback(Frozen):
    """Replace a failed call's outcome with a fixed value or a handler's answer.

    Give exactly one of:

    - ``value``: returned as is whenever the fallback triggers (the same object every time, so
      prefer ``handler=`` for a fresh mutable one);
    - ``handler``: called with a ``FallbackContext``; may be sync or async; its return value is
      the call's result.

    The fallback triggers when the call raises an exception matching ``on`` (an exception
    type, a tuple of types or a predicate; default ``Exception``; ``None``: exceptions never
    trigger it), or when ``on_result`` (default ``None``: results never trigger it) returns
    true for the call's result. The fallback's answer should have the call's return type;
    that is not checked. Cancellation always passes through. ``name`` is carried by events;
    ``listeners`` receive a ``FallbackUsed`` event each time the fallback answers.
    """

    __slots__ = ("_handler", "_listeners", "_matches", "_name", "_on", "_on_result", "_value")
    _value: Any
    _handler: FallbackHandler | None
    _on: ExceptionFilter | None
    _matches: Matcher | None
    _on_result: Callable[[Any], bool] | None
    _name: str | None
    _listeners: tuple[Listener, ...]

    def __init__(
        self,
        value: Any = _MISSING,
        *,
        handler: FallbackHandler | None = None,
        on: ExceptionFilter | None = Exception,
        on_result: Callable[[Any], bool] | None = None,
        name: str | None = None,
        listeners: Iterable[Listener] = (),
    ) -> None:
        if (value is _MISSING) == (handler is None):
            given = "both" if handler is not None else "neither"
            raise ValueError(f"Fallback needs exactly one of value= or handler=, got {given}")
        if handler is not None and not callable(handler):
            raise TypeError(f"handler must be a callable taking a FallbackContext, got {handler!r}")
        if on_result is not None and not callable(on_result):
            raise TypeError(f"on_result must be None or a predicate, got {on_result!r}")
        if on is None and on_result is None:
            raise ValueError("Fallback with on=None needs an on_result= predicate, got neither")
        _set(self, "_value", value)
        _set(self, "_handler", handler)
        _set(self, "_on", on)
        _set(self, "_matches", None if on is None else compile_matcher(on, parameter="on"))
        _set(self, "_on_result", on_result)
        _set(self, "_name", _validate.name(name))
        _set(self, "_listeners", validate_listeners(listeners))

    def options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "handler": self._handler,
            "on": self._on,
            "on_result": self._on_result,
            "name": self._name,
            "listeners": self._listeners,
        }
        if self._handler is None:
            options["value"] = self._value
        return options

    def __repr__(self) -> str:
        what = f"handler={self._handler!r}" if self._handler is not None else repr(self._value)
        return f"Fallback({what}, name={self._name!r})"

    @property
    def name(self) -> str | None:
        """The name carried by this fallback's events."""
        return self._name

    @property
    def on(self) -> ExceptionFilter | None:
        """The exceptions that trigger the fallback, as given."""
        return self._on

    @property
    def on_result(self) -> Callable[[Any], bool] | None:
        """The result predicate that triggers the fallback, or ``None``."""
        return self._on_result

    @property
    def value(self) -> Any:
        """The fixed answer (``None`` when a ``handler`` answers instead)."""
        return None if self._value is _MISSING else self._value

    @property
    def handler(self) -> FallbackHandler | None:
        """The handler that answers, or ``None`` for a fixed value."""
        return self._handler

    # -- hooks for pipelines and config ------------------------------------------------------

    kind = "fallback"

    def describe(self) -> str:
        return f"fallback: {self!r}"

    @property
    def answers(self) -> ExceptionFilter | None:
        return self._on

    def to_config(self) -> dict[str, Any]:
        from stoic import _configuration

        if self._handler is not None:
            raise ValueError("fallback handler is a function, which config cannot express")
        if self._on_result is not None:
            raise ValueError("fallback on_result is a function, which config cannot express")
        entry = _configuration.without_none({"name": self._name})
        entry["value"] = self._value  # ``None`` is a value too
        if self._on is not None:
            entry["on"] = _configuration.exception_names(self._on, "fallback on")
        return entry

    @classmethod
    def from_config(cls, options: Mapping[str, Any], where: str) -> Fallback:
        from stoic import _configuration

        _configuration.check_keys(options, ("value", "on", "name"), where)
        if "value" not in options:
            raise _configuration.fail(where, "a fallback needs its 'value'")
        options = dict(options)
        if "on" in options:
            options["on"] = _configuration.exceptions(options["on"], f"{where}.on")
        return cls(options.pop("value"), **options)

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Return ``await fn(*args, **kwargs)``, or the fallback's answer when it fails.

        Exceptions that ``on`` does not match propagate untouched; so does an exception raised
        by the handler, with a note.
        """
        if not _clock.asyncio_seen:
            _clock.first_call()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            if type(exc) is TypeError:
                check_awaited(fn, args, exc)
            matches = self._matches
            if matches is None or not matches(exc):
                raise
            # Still inside ``except``: a handler failure gets ``exc`` as its __context__.
            return cast(T, await self._answer(exc, None))
        on_result = self._on_result
        if on_result is not None and on_result(result):
            return cast(T, await self._answer(None, result))
        return result

    async def _answer(self, exception: BaseException | None, result: Any) -> Any:
        emit(self._listeners, FallbackUsed(name=self._name, exception=exception, result=result))
        handler = self._handler
        if handler is None:
            return self._value
        try:
            answer = handler(FallbackContext(exception, result))
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception as handler_exc:
            why = (
                f"failed with {exception!r}"
                if exception is not None
                else f"returned a rejected result {result!r}"
            )
            note(
                handler_exc,
                "raised by the fallback handler",
                f"raised by the fallback handler after the call {why}",
            )
            raise
        return answer
