"""One rule per kind of option value, so every strategy rejects bad input the same way.

Each checker takes the value and the parameter's name, returns the value in its canonical form
(seconds as a ``float``, counts as an ``int``) and raises at construction, naming the
parameter and the allowed range: ``ValueError("max_wait must be None or a finite number of
seconds >= 0, got -1")``. Numbers are ``int`` or ``float``, never ``bool`` (``True`` is not one
second); an ``int`` too large for a float is out of range, not an ``OverflowError`` at call
time. Wrong kinds of object (a class where an instance belongs, a number where a function
belongs) raise ``TypeError``.
"""

from __future__ import annotations

import inspect
import math
import operator
from typing import Any

__all__ = [
    "async_function",
    "count",
    "fraction",
    "function",
    "instance",
    "name",
    "number",
    "seconds",
]


def _real(value: object) -> float | None:
    """``value`` as a float, or ``None`` when it is not a real number (or too large for one)."""
    if type(value) is float:  # the common case, first: strategies are built at run time too
        return None if value != value else value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        result = float(value)
    except OverflowError:
        return None
    return None if math.isnan(result) else result


def number(
    value: object,
    parameter: str,
    *,
    minimum: float = -math.inf,
    maximum: float = math.inf,
    open_below: bool = False,
    optional: bool = False,
    unit: str = "",
) -> float:
    """A finite real number in ``[minimum, maximum]`` (``(minimum, ...`` when ``open_below``)."""
    # The common case first, without the general checks: strategies are built at run time
    # (per host, per key). ``value - value`` is 0.0 for a finite float only (not inf or nan).
    if (
        type(value) is float
        and (value > minimum if open_below else value >= minimum)
        and value <= maximum
        and value - value == 0.0
    ):
        return value
    real = _real(value)
    below = real is not None and (real <= minimum if open_below else real < minimum)
    if real is None or below or real > maximum or not math.isfinite(real):
        allowed = f"a finite number{unit}"
        if minimum > -math.inf:
            allowed += f" {'>' if open_below else '>='} {minimum:g}"
            if maximum < math.inf:
                allowed += f" and <= {maximum:g}"
        elif maximum < math.inf:
            allowed += f" <= {maximum:g}"
        if optional:
            allowed = f"None or {allowed}"
        raise ValueError(f"{parameter} must be {allowed}, got {value!r}")
    return real


def seconds(
    value: object,
    parameter: str,
    *,
    positive: bool = False,
    optional: bool = False,
    infinite: bool = False,
    minimum: float = 0.0,
    maximum: float = math.inf,
) -> float:
    """Seconds: a finite number >= ``minimum`` (> it when ``positive``); ``math.inf`` too when
    ``infinite``. ``optional`` only changes the message: the caller handles ``None``."""
    if infinite:
        real = _real(value)
        if real is None or real < minimum or (positive and real == minimum):
            sign = ">" if positive else ">="
            allowed = f"a number {sign} {minimum:g} (seconds; math.inf for no limit)"
            if optional:
                allowed = f"None or {allowed}"
            raise ValueError(f"{parameter} must be {allowed}, got {value!r}")
        return real
    return number(
        value,
        parameter,
        minimum=minimum,
        maximum=maximum,
        open_below=positive,
        optional=optional,
        unit=" of seconds",
    )


def count(value: object, parameter: str, *, minimum: int = 1, optional: bool = False) -> int:
    """An ``int`` (not ``bool``) >= ``minimum``."""
    if type(value) is int and value >= minimum:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        allowed = f"an int >= {minimum}"
        if optional:
            allowed = f"None or {allowed}"
        raise ValueError(f"{parameter} must be {allowed}, got {value!r}")
    return value


def fraction(value: object, parameter: str) -> float:
    """A number in ``(0, 1]``."""
    real = _real(value)
    if real is None or not 0 < real <= 1:
        raise ValueError(f"{parameter} must be in (0, 1], got {value!r}")
    return real


def name(value: object, parameter: str = "name") -> str | None:
    """A name carried by events: a ``str`` or ``None``."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{parameter} must be a str or None, got {value!r}")
    return value


def function(value: Any, parameter: str, what: str, *, optional: bool = True) -> Any:
    """A callable (``what`` says what it is called with); ``None`` too when ``optional``."""
    if value is None and optional:
        return None
    if not callable(value) or isinstance(value, type):
        allowed = f"None or {what}" if optional else what
        raise TypeError(f"{parameter} must be {allowed}, got {value!r}")
    return value


def instance(value: Any, parameter: str, kind: type | tuple[type, ...], what: str) -> Any:
    """An instance of ``kind``; a class given where its instance belongs says so."""
    if isinstance(value, type) and issubclass(value, kind):
        raise TypeError(
            f"{parameter} must be {what}, got the class {value.__name__}: "
            f"pass an instance, such as {value.__name__}(...)"
        )
    if not isinstance(value, kind):
        raise TypeError(f"{parameter} must be {what}, got {value!r}")
    return value


_TO_THREAD = "for blocking code, wrap it: await asyncio.to_thread(fn, *args)"


def async_function(fn: Any, parameter: str = "fn") -> None:
    """Reject, at decoration, what cannot be awaited call after call.

    An ``async def`` function (or method, or ``functools.partial`` of one), an object whose
    ``__call__`` is one, and a wrapper whose ``__wrapped__`` chain leads to one pass. A plain
    function, a class and an async *generator* function raise ``TypeError``. Other callables
    (mocks, custom objects) pass: what they return is checked when they are called.
    """
    if fn is operator.call:
        return  # a pipeline's chain ends in it: it calls the function each call is given
    if not callable(fn):
        raise TypeError(f"{parameter} must be an async function, got {fn!r}")
    target = inspect.unwrap(fn) if inspect.isfunction(fn) or inspect.ismethod(fn) else fn
    for candidate in (fn, target):
        if inspect.isasyncgenfunction(candidate):
            raise TypeError(
                f"{parameter} must be an async function, got the async generator function "
                f"{_label(fn)}: stoic cannot re-run a generator's items; apply it to an async "
                "function that collects them, or to each step"
            )
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(target):
        return
    if isinstance(fn, type):
        raise TypeError(f"{parameter} must be an async function, got the class {_label(fn)}")
    if inspect.isroutine(fn):
        raise TypeError(
            f"{parameter} must be an async function, got the sync function {_label(fn)}; "
            f"{_TO_THREAD}"
        )
    # Other callables (a mock, an object with a plain ``__call__``) may return awaitables:
    # what they return is checked when they are called.


def _label(fn: Any) -> str:
    qualname = getattr(fn, "__qualname__", None)
    return f"{qualname}()" if isinstance(qualname, str) else repr(fn)
