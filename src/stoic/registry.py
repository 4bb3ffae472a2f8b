"""A registry of named strategies and pipelines, so one breaker per downstream is shared.

::

    breaker = stoic.get_or_create("payments", lambda: CircuitBreaker(failure_threshold=5))

Every call site that asks for ``"payments"`` gets the same object, and so shares its state
(failure counts, open/closed, bulkhead slots). The factory runs only the first time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Registry", "default_registry", "get_or_create"]

S = TypeVar("S")


class Registry:
    """Named objects (strategies, pipelines), created once and shared. Thread-safe."""

    __slots__ = ("_items", "_lock")

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Registry({sorted(self._items)!r})"

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get_or_create(
        self, name: str, factory: Callable[[], S], *, kind: type[S] | None = None
    ) -> S:
        """The object registered as ``name``; made by ``factory()`` and registered if absent.

        ``factory`` may call the registry itself. When threads race for a new name, each may
        call ``factory`` but all get the one object registered first.

        ``kind``, when given, checks that the registered object is of that type (``TypeError``
        otherwise), so a name cannot silently stand for two kinds of thing.
        """
        item = self._items.get(name)
        if item is None:
            if not isinstance(name, str) or not name:
                raise ValueError(f"name must be a non-empty str, got {name!r}")
            # The factory runs outside the lock, so it may itself use the registry (a pipeline
            # built from a registered breaker). Threads racing here may each build one; the
            # first registered wins and every caller gets that one.
            made = factory()
            with self._lock:
                item = self._items.setdefault(name, made)
        if kind is not None and not isinstance(item, kind):
            raise TypeError(f"{name!r} is registered as {item!r}, not a {kind.__name__}")
        return item  # type: ignore[no-any-return]

    def register(self, name: str, item: S, *, replace: bool = False) -> S:
        """Register ``item`` as ``name``; ``ValueError`` if taken, unless ``replace``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty str, got {name!r}")
        with self._lock:
            if not replace and name in self._items:
                raise ValueError(f"{name!r} is already registered: {self._items[name]!r}")
            self._items[name] = item
        return item

    def register_all(self, items: dict[str, Any]) -> None:
        """Register every item by its name, or none: ``ValueError`` if any name is taken."""
        for name in items:
            if not isinstance(name, str) or not name:
                raise ValueError(f"name must be a non-empty str, got {name!r}")
        with self._lock:
            taken = sorted(name for name in items if name in self._items)
            if taken:
                raise ValueError(
                    f"{', '.join(repr(name) for name in taken)} already registered; nothing "
                    "was registered"
                )
            self._items.update(items)

    def get(self, name: str) -> Any:
        """The object registered as ``name``; ``KeyError`` naming it when there is none."""
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise KeyError(f"nothing registered as {name!r} (registered: {known})") from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def remove(self, name: str) -> None:
        """Forget ``name`` (no error if absent)."""
        with self._lock:
            self._items.pop(name, None)

    def clear(self) -> None:
        """Forget everything (for tests)."""
        with self._lock:
            self._items.clear()


#: The process-wide registry used by ``stoic.get_or_create``.
default_registry = Registry()


def get_or_create(name: str, factory: Callable[[], S], *, kind: type[S] | None = None) -> S:
    """``default_registry.get_or_create``: the shared object called ``name``."""
    return default_registry.get_or_create(name, factory, kind=kind)
