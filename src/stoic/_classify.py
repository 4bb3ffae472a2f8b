"""The one exception matcher shared by retry, circuit breaker and fallback classification.

An option such as ``on=`` accepts an exception type, a tuple of types, or a predicate taking
the exception. Matching is **exception-group aware**: a ``BaseExceptionGroup`` that the
option does not match as a whole matches when *every* leaf exception matches (so a group of
``ConnectionError``\\ s is retryable, a group holding one ``ValueError`` is not).

Control-flow exceptions never match, whatever the option says: ``asyncio.CancelledError``,
``KeyboardInterrupt``, ``SystemExit`` and ``GeneratorExit``, alone or anywhere in a group.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias, cast

__all__ = ["ExceptionFilter", "Matcher", "compile_matcher", "iter_leaves", "never_handled"]

ExceptionFilter: TypeAlias = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
)
Matcher: TypeAlias = Callable[[BaseException], bool]

_NEVER = (asyncio.CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit)


def iter_leaves(exc: BaseException) -> Iterator[BaseException]:
    """Yield the leaf (non-group) exceptions of ``exc``, depth first; ``exc`` itself if a leaf."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from iter_leaves(inner)
    else:
        yield exc


def never_handled(exc: BaseException) -> bool:
    """True for cancellation and interpreter exits, alone or anywhere inside a group."""
    if isinstance(exc, BaseExceptionGroup):
        return any(isinstance(leaf, _NEVER) for leaf in iter_leaves(exc))
    return isinstance(exc, _NEVER)


def compile_matcher(option: ExceptionFilter, *, parameter: str) -> Matcher:
    """Turn an ``on=``-style option into a fast predicate; bad options raise at construction.

    ``parameter`` names the option in the error message. Types and tuples of types are cached:
    strategies with equal options share one matcher, and a strategy may recompile its option
    on a slow path for free. Predicates are not cached, so the cache keeps nothing alive.
    """
    if isinstance(option, type | tuple):
        try:
            return _compile_cached(cast(Any, option), parameter)
        except TypeError as exc:
            if "unhashable" not in str(exc):
                raise
    return _compile(option, parameter)


@functools.lru_cache(maxsize=512)
def _compile_cached(option: Any, parameter: str) -> Matcher:
    return _compile(option, parameter)


def _compile(option: ExceptionFilter, parameter: str) -> Matcher:
    if isinstance(option, type) and issubclass(option, BaseException):
        types: tuple[type[BaseException], ...] = (option,)
    elif isinstance(option, tuple):
        if not option:
            raise ValueError(f"{parameter} must name at least one exception type, got ()")
        for item in option:
            if not (isinstance(item, type) and issubclass(item, BaseException)):
                raise TypeError(f"{parameter} must hold exception types, got {item!r}")
        types = option
    elif callable(option) and not isinstance(option, type):
        return _predicate_matcher(option)
    else:
        raise TypeError(
            f"{parameter} must be an exception type, a tuple of them, or a predicate, "
            f"got {option!r}"
        )
    return _types_matcher(types)


def _types_matcher(types: tuple[type[BaseException], ...]) -> Matcher:
    def matches(exc: BaseException) -> bool:
        if isinstance(exc, _NEVER):
            return False
        if isinstance(exc, BaseExceptionGroup):
            if never_handled(exc):
                return False
            if isinstance(exc, types):
                return True
            return all(isinstance(leaf, types) for leaf in iter_leaves(exc))
        return isinstance(exc, types)

    return matches


def _predicate_matcher(predicate: Callable[[BaseException], bool]) -> Matcher:
    def matches(exc: BaseException) -> bool:
        if never_handled(exc):
            return False
        if predicate(exc):
            return True
        if isinstance(exc, BaseExceptionGroup):
            return all(predicate(leaf) for leaf in iter_leaves(exc))
        return False

    return matches
