"""The strategy base: ``await strategy.call(fn, *args, **kwargs)``, its decorator form, and the
hooks through which pipelines, ``describe()``, order checks and config find what they need.

A strategy is an object with an async ``call`` that runs ``fn(*args, **kwargs)`` under its
policy. ``Strategy`` derives the decorator form from it, keeping the wrapped signature. Every
other hook has a default, so a strategy defined outside stoic needs only ``call``; giving it a
``kind`` (and ``from_config``/``to_config``) makes it loadable from TOML like stoic's own.
Nothing in stoic dispatches on stoic's concrete classes: a new strategy is one module.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, ClassVar, ParamSpec, Self, TypeVar

from stoic import _validate

__all__ = ["Frozen", "P", "Strategy", "T", "kinds", "set_field", "strategy_class", "via_call"]

P = ParamSpec("P")
T = TypeVar("T")

# ``kind`` -> class, for config. stoic's own strategies register when their module is
# imported; ``strategy_class`` imports these on the first lookup of an unknown kind.
_kinds: dict[str, type[Strategy]] = {}
_BUILTIN_MODULES = (
    "stoic._timeout",
    "stoic._retry",
    "stoic._circuit_breaker",
    "stoic._bulkhead",
    "stoic._rate_limit",
    "stoic._fallback",
    "stoic._throttle",
    "stoic._pipeline",
)


class Strategy:
    """Base of strategies: subclasses implement ``call``; ``strategy(fn)`` then decorates ``fn``.

    The hooks below have defaults; override the ones your strategy has an answer for:

    - ``kind``: its ``type`` in config (``None``: not loadable by a short name);
    - ``describe()``: one line for ``Pipeline.describe()``;
    - ``to_config()`` / ``from_config(options, where)``: its config table and back;
    - ``check_inside(inner, where)`` / ``check_outside(outer, where)``: raise ``ValueError``
      for an order with another strategy that is almost always a mistake;
    - ``time_limit``: the longest it lets a call inside it run (a timeout's seconds), and
      ``answers``: the exceptions it turns into results (a fallback's ``on``); facts other
      strategies' checks read.

    The decorator form is the class's own fast path (``_decorate``) unless a subclass
    overrides ``call``: then every form runs through the override.
    """

    __slots__ = ()

    kind: ClassVar[str | None] = None
    # Whether ``_decorate`` implements this class's ``call`` (see ``__init_subclass__``).
    _decorates_own_call: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        call_owner = _owner(cls, "call")
        decorate_owner = _owner(cls, "_decorate")
        # A ``call`` defined below the class that wrote ``_decorate`` is an override the fast
        # decorator would bypass.
        cls._decorates_own_call = issubclass(decorate_owner, call_owner)
        kind = cls.__dict__.get("kind")
        if kind is not None:
            _register(kind, cls)

    async def call(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, fn: Callable[P, Awaitable[T]], /) -> Callable[P, Coroutine[Any, Any, T]]:
        """Decorate an async function (or method) so every call runs through this strategy.

        A sync function, a class or an async generator function raises ``TypeError`` here.
        """
        _validate.async_function(fn)
        return self.wrap(fn)

    def wrap(self, fn: Callable[P, Awaitable[T]], /) -> Callable[P, Coroutine[Any, Any, T]]:
        """The decorator form, without checking that ``fn`` is an async function.

        For composing layers (``Pipeline``): ``fn`` may be any callable returning an
        awaitable. Honours an overridden ``call``.
        """
        if type(self)._decorates_own_call:
            return self._decorate(fn)
        return via_call(self, fn)

    def _decorate(self, fn: Callable[P, Awaitable[T]], /) -> Callable[P, Coroutine[Any, Any, T]]:
        """The class's decorator form; by default a layer that awaits ``call``."""
        return via_call(self, fn)

    # -- hooks for pipelines, describe() and config -------------------------------------------

    def describe(self) -> str:
        """One line saying what this strategy does, for ``Pipeline.describe()``."""
        return repr(self)

    def to_config(self) -> dict[str, Any]:
        """The options of this strategy as a config table (without ``type``).

        Raises ``ValueError`` for options config cannot express (functions, say).
        """
        raise ValueError(f"{self!r} has no config form")

    @classmethod
    def from_config(cls, options: Mapping[str, Any], where: str) -> Strategy:
        """Build one from a config table's options (``type`` removed); ``where`` names the
        table for error messages. By default ``cls(**options)``.
        """
        return cls(**options)

    def check_inside(self, inner: Any, where: str) -> None:
        """Raise ``ValueError`` if ``inner`` (anywhere inside this one) is a likely mistake."""

    def check_outside(self, outer: Any, where: str) -> None:
        """Raise ``ValueError`` if ``outer`` (anywhere around this one) is a likely mistake."""

    @property
    def time_limit(self) -> float | None:
        """Seconds this strategy lets a call inside it run, or ``None`` for no limit of its own."""
        return None

    @property
    def answers(self) -> object:
        """The exceptions this strategy turns into results (an exception filter), or ``None``."""
        return None


def _owner(cls: type, attribute: str) -> type:
    return next(klass for klass in cls.__mro__ if attribute in vars(klass))


def _register(kind: object, cls: type[Strategy]) -> None:
    if not isinstance(kind, str) or not kind.isidentifier():
        raise TypeError(f"{cls.__qualname__}.kind must be an identifier str, got {kind!r}")
    taken = _kinds.get(kind)
    if taken is not None and (taken.__module__, taken.__qualname__) != (
        cls.__module__,
        cls.__qualname__,
    ):
        raise ValueError(
            f"strategy kind {kind!r} is taken by {taken.__module__}.{taken.__qualname__}; "
            f"give {cls.__qualname__} another kind"
        )
    _kinds[kind] = cls  # the same class defined again (a reloaded module) replaces itself


def strategy_class(kind: str) -> type[Strategy] | None:
    """The strategy class registered for config ``type`` ``kind``, or ``None``.

    A dotted ``kind`` (``"package.module.ClassName"``) imports the class by its path.
    """
    if kind not in _kinds:
        _load_builtins()
    found = _kinds.get(kind)
    if found is None and "." in kind:
        module_name, _, attr = kind.rpartition(".")
        try:
            candidate = getattr(importlib.import_module(module_name), attr, None)
        except ImportError:
            return None
        if isinstance(candidate, type) and issubclass(candidate, Strategy):
            found = candidate
    return found


def kinds() -> list[str]:
    """Every registered ``kind``, stoic's own included, sorted."""
    _load_builtins()
    return sorted(_kinds)


def _load_builtins() -> None:
    """Import stoic's own strategy modules: each registers its kind when imported."""
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def via_call(
    strategy: Any, fn: Callable[..., Awaitable[T]]
) -> Callable[..., Coroutine[Any, Any, T]]:
    """A decorator form for a strategy that only has ``call``: a layer that awaits it."""
    call = strategy.call

    @functools.wraps(fn)
    async def through_call(*args: Any, **kwargs: Any) -> T:
        return await call(fn, *args, **kwargs)  # type: ignore[no-any-return]

    return through_call


#: How stoic's constructors set the fields of an immutable strategy (``Frozen``), as frozen
#: dataclasses do: past the guard, at the cost of a C call.
set_field = object.__setattr__


class Frozen(Strategy):
    """Base of stoic's own strategies: immutable once built, copied with ``with_``.

    Constructors set their fields with ``set_field``; assigning or deleting one afterwards
    raises ``AttributeError``, so no option can be half-applied (a strategy derives its fast
    paths from its options once). A subclass written outside stoic may add and change
    attributes of its own. What changes while calls run (a breaker's counts, a bulkhead's
    slots) lives in a state object the strategy holds, never in its own fields.
    ``options()`` gives the constructor keywords that rebuild it; ``with_``, ``copy`` and
    ``pickle`` go through them (pickling works where the options pickle: a lambda does
    not). A copy starts with fresh state.
    """

    __slots__ = ()
    # The fields stoic's own classes declare: read-only.
    _guarded: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__.partition(".")[0] == "stoic":
            own = cls.__dict__.get("__slots__", ())
            cls._guarded = cls._guarded | {own} if isinstance(own, str) else cls._guarded | set(own)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self)._guarded:
            raise AttributeError(
                f"{type(self).__name__} is immutable once built; use "
                f".with_({name.lstrip('_')}=...) for a copy with a changed option"
            )
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if name in type(self)._guarded:
            raise AttributeError(f"{type(self).__name__} is immutable once built")
        object.__delattr__(self, name)

    def options(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """The constructor keywords that build an equal strategy (with fresh state)."""
        raise NotImplementedError

    @classmethod
    def _from_options(cls, options: dict[str, Any]) -> Self:
        """Build one from ``options()``' shape: what ``with_``, copy and pickle go through."""
        return cls(**options)

    def with_(self, **changes: Any) -> Self:
        """A new strategy with these options changed and the others kept (fresh state)."""
        return self._from_options({**self.options(), **changes})

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.options()))


def _rebuild(cls: type[Frozen], options: dict[str, Any]) -> Frozen:
    return cls._from_options(options)
