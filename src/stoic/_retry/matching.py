"""What a retry policy can tell from exception types alone: which types it may remember as
always retried (the drivers' fast test), and whether another strategy's filter overlaps it."""

from __future__ import annotations

from stoic._classify import _NEVER, ExceptionFilter

__all__ = ["KNOWN_MAX", "matched_by_type", "overlap"]


def _types(option: object) -> tuple[type[BaseException], ...] | None:
    if isinstance(option, type):
        return (option,)
    if isinstance(option, tuple):
        return option
    return None  # a predicate: nothing can be said about it


def overlap(retried: object, answered: object) -> bool:
    """Whether a strategy answering ``answered`` takes failures a retry on ``retried`` wants."""
    if answered is None:
        return False
    left, right = _types(retried), _types(answered)
    if left is None or right is None:
        return False
    return any(issubclass(a, b) or issubclass(b, a) for a in left for b in right)


KNOWN_MAX = 32  # exception types a policy remembers as always retryable
# A ``TypeError`` may be stoic's to report (``check_awaited``): never taken on trust.
_NEVER_OR_GROUP = (*_NEVER, BaseExceptionGroup, TypeError)


def matched_by_type(cls: type[BaseException], on: ExceptionFilter) -> bool:
    """Whether ``on`` matches every exception of exact type ``cls``, whatever the instance.

    True only when the matcher's verdict depends on the type alone: ``on`` is exception
    classes without a metaclass of their own (an ABC may decide per instance), ``cls``
    matches them, is neither a group nor a control-flow exception, and cannot pretend to be
    another class (``isinstance`` asks an instance its ``__class__`` when the type says no).
    """
    classes = (on,) if isinstance(on, type) else on
    if not isinstance(classes, tuple) or any(type(c) is not type for c in classes):
        return False  # a predicate, or a class deciding ``isinstance`` itself
    return (
        type(cls) is type
        and issubclass(cls, classes)
        and not issubclass(cls, _NEVER_OR_GROUP)
        and cls.__getattribute__ is BaseException.__getattribute__
        and all("__class__" not in vars(k) for k in cls.__mro__[:-1])
    )
