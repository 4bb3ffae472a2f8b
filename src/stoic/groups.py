"""Exception groups: split what a ``TaskGroup`` raised into what can be retried and what cannot.

``asyncio.TaskGroup`` and ``except*`` deliver several failures at once as an
``ExceptionGroup``, possibly nested. ``handle_exception_group`` returns the recoverable leaf
exceptions and raises everything else as a group that keeps the original nesting, messages,
notes and tracebacks::

    try:
        async with asyncio.TaskGroup() as tg:
            for url in urls:
                tg.create_task(fetch(url))
    except* (ConnectionError, TimeoutError, ValueError) as eg:
        for exc in handle_exception_group(eg):    # raises the ValueErrors, as a group
            logger.warning("will retry: %r", exc)

Matching applies to *leaf* exceptions and uses the shared ``on=`` rules (a type, a tuple of
types, or a predicate). Cancellation, ``KeyboardInterrupt``, ``SystemExit`` and
``GeneratorExit`` are never recoverable, whatever the option says; a critical part holding
one is raised as a ``BaseExceptionGroup``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from stoic._classify import ExceptionFilter, Matcher, compile_matcher, iter_leaves

__all__ = ["handle_exception_group", "leaf_exceptions", "split_exception_group"]

E = TypeVar("E", bound=BaseException)

_DEFAULT_RECOVERABLE: tuple[type[OSError], ...] = (ConnectionError, TimeoutError)


def leaf_exceptions(exc: BaseException) -> list[BaseException]:
    """The leaf (non-group) exceptions of ``exc``, depth first; ``[exc]`` when it is a leaf."""
    return list(iter_leaves(exc))


def split_exception_group(
    eg: BaseExceptionGroup[E], matching: ExceptionFilter
) -> tuple[BaseExceptionGroup[E] | None, BaseExceptionGroup[E] | None]:
    """Split ``eg`` into ``(matched, rest)`` by its leaves; either part is ``None`` if empty.

    Like ``eg.split`` (both parts keep the nesting, messages, notes and tracebacks of ``eg``),
    except that ``matching`` is tested on leaves only, never on the groups around them, and
    never matches cancellation or interpreter exits.
    """
    return _split(eg, compile_matcher(matching, parameter="matching"))


@overload
def handle_exception_group(eg: BaseExceptionGroup[Any]) -> list[OSError]: ...
@overload
def handle_exception_group(
    eg: BaseExceptionGroup[Any], recoverable: type[E] | tuple[type[E], ...]
) -> list[E]: ...
@overload
def handle_exception_group(
    eg: BaseExceptionGroup[Any], recoverable: Callable[[BaseException], bool]
) -> list[BaseException]: ...
def handle_exception_group(
    eg: BaseExceptionGroup[Any], recoverable: ExceptionFilter = _DEFAULT_RECOVERABLE
) -> list[Any]:
    """Return the recoverable leaf exceptions of ``eg``; raise the rest as a group.

    - ``recoverable``: which leaves can be retried or logged and dropped: an exception type,
      a tuple of them, or a predicate taking one leaf (default
      ``(ConnectionError, TimeoutError)``).

    When any leaf is not recoverable, those leaves are raised as a group derived from ``eg``
    (``eg.split``): same nesting, messages and tracebacks, recoverable leaves removed; ``eg``
    itself when none was recoverable. Otherwise the recoverable leaves are returned, flattened,
    depth first. ``TypeError`` if ``eg`` is not an exception group.
    """
    recovered, critical = _split(eg, compile_matcher(recoverable, parameter="recoverable"))
    if critical is not None:
        raise eg if recovered is None else critical
    return [] if recovered is None else list(iter_leaves(recovered))


def _split(
    eg: BaseExceptionGroup[E], matcher: Matcher
) -> tuple[BaseExceptionGroup[E] | None, BaseExceptionGroup[E] | None]:
    if not isinstance(eg, BaseExceptionGroup):
        raise TypeError(f"expected an exception group, got {eg!r}")
    # split() offers the predicate every nested group too; answering False for groups makes
    # it descend, so only leaves decide.
    return eg.split(lambda exc: not isinstance(exc, BaseExceptionGroup) and matcher(exc))
