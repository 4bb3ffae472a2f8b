"""The one exception matcher shared by retry, circuit breaker and fallback classification.

An option such as ``on=`` accepts an exception type, a tuple of types, or a predicate taking
the exception. Matching is **exception-group aware**: a ``BaseExceptionGroup`` that the
option does not match as a whole matches when *every* leaf exception matches (so a group of
``ConnectionError``\\ s is retryable, a group holding one ``ValueError`` is not).

Control-flow exceptions never match, whatever the option says: ``asyncio.CancelledError``,
``KeyboardInterrupt``, ``SystemExit`` and ``GeneratorExit``, alone or anywhere in a group.
Neither does ``NotAwaitable``, stoic's own error for a function whose call returned
something that cannot be awaited: no strategy retries, counts or replaces what stoic caused.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import operator
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias, cast

__all__ = [
    "ExceptionFilter",
    "Matcher",
    "NotAwaitable",
    "WrongLoop",
    "check_awaited",
    "compile_matcher",
    "iter_leaves",
    "never_handled",
    "note",
]

ExceptionFilter: TypeAlias = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
)
Matcher: TypeAlias = Callable[[BaseException], bool]


class NotAwaitable(TypeError):
    """A strategy called a function that returned something it cannot await (a sync function)."""


class WrongLoop(RuntimeError):
    """A strategy was used from an event loop it cannot serve (stoic's misuse error)."""


# Never retried, counted or answered: control flow, and the errors stoic itself raises about
# how it was used.
_NEVER = (
    asyncio.CancelledError,
    KeyboardInterrupt,
    SystemExit,
    GeneratorExit,
    NotAwaitable,
    WrongLoop,
)


def check_awaited(fn: Any, args: tuple[Any, ...], exc: TypeError) -> None:
    """Raise ``NotAwaitable`` when ``exc`` is the failure to await what ``fn(*args)`` returned.

    Called from a strategy's ``except TypeError`` around ``await fn(*args, **kwargs)``: a
    ``TypeError`` raised in the strategy's own frame (no deeper traceback entry) and a ``fn``
    that is not an async function mean ``fn`` returned a plain value (or an async generator).
    An async function's ``TypeError`` (from its body, or a wrong argument) passes untouched.
    Only on the failure path, so the happy path pays nothing.
    """
    traceback = exc.__traceback__
    if type(exc) is not TypeError or traceback is None or traceback.tb_next is not None:
        return
    # Raised in the strategy's frame, it is either the failed ``await`` or a call with the
    # wrong arguments (a lambda taking none, say): only the first is stoic's to report.
    if "can't be used in 'await' expression" not in str(exc):
        return
    # A pipeline's chain ends in ``operator.call(fn, *args)``: the function is its argument.
    target = args[0] if fn is operator.call and args else fn
    call_method = inspect.getattr_static(type(target), "__call__", None)  # an async __call__
    if inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(call_method):
        return
    name = getattr(target, "__qualname__", None)
    label = f"{name}()" if isinstance(name, str) else repr(target)
    raise NotAwaitable(
        f"{label} did not return an awaitable ({exc}): stoic runs async functions, or "
        "callables that return an awaitable; for blocking code, wrap it: "
        "await asyncio.to_thread(fn, *args)"
    ) from exc


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
    elif isinstance(option, list | set | frozenset):
        names = ", ".join(getattr(item, "__name__", repr(item)) for item in option)
        raise TypeError(
            f"{parameter} must be an exception type, a tuple of them, or a predicate, got the "
            f"{type(option).__name__} {option!r}: pass a tuple, {parameter}=({names},)"
            if len(option) == 1
            else f"{parameter} must be an exception type, a tuple of them, or a predicate, got "
            f"the {type(option).__name__} {option!r}: pass a tuple, {parameter}=({names})"
        )
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


def note(exc: BaseException, kind: str, text: str) -> None:
    """Add ``text`` as a note on ``exc``, in place of an earlier note of the same ``kind``.

    ``kind`` is the note's opening words (``"stoic: gave up"``). Code that raises one exception
    object again and again (awaiters of one failed future, a mock's ``side_effect``, a policy
    built per call) would otherwise collect a note per call without end; this way each kind
    says what the latest call did, once. Under nested retries (which ``Pipeline`` refuses
    unless told otherwise) the outer one's note therefore replaces the inner one's.
    """
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        notes[:] = [old for old in notes if not (isinstance(old, str) and old.startswith(kind))]
    exc.add_note(text)
