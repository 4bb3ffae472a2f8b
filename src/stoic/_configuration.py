"""Reading and writing config values that several strategies share: exception names,
backoffs, option tables. Each strategy's ``from_config``/``to_config`` uses these; the dispatch
by ``type`` lives in ``strategy_from_config``, over the kinds strategies register.
"""

from __future__ import annotations

import builtins
import dataclasses
import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from stoic._strategy import Strategy, kinds, strategy_class
from stoic.backoff import Backoff, Constant, Exponential, Linear, _Sum

__all__ = [
    "ConfigError",
    "backoff",
    "backoff_config",
    "check_keys",
    "exception_names",
    "exceptions",
    "fail",
    "strategy_from_config",
    "strategy_to_config",
    "table",
    "without_none",
]


class ConfigError(ValueError):
    """A config error that already says where it is."""


def fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise fail(where, f"expected a table (dict), got {value!r}")
    return value


def check_keys(entry: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    allowed = tuple(allowed)
    unknown = sorted(set(entry) - set(allowed) - {"type"})
    if unknown:
        raise fail(where, f"unknown option(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def _exception_type(name: object, where: str) -> type[BaseException]:
    if not isinstance(name, str) or not name:
        raise fail(where, f"exception names must be non-empty strings, got {name!r}")
    if "." in name:
        module_name, _, attr = name.rpartition(".")
        try:
            found = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError):
            raise fail(where, f"cannot import exception {name!r}") from None
    else:
        found = getattr(builtins, name, None)
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise fail(where, f"{name!r} is not an exception type")
    return found


def exceptions(value: object, where: str) -> tuple[type[BaseException], ...]:
    """Exception types from a name or a list of names (builtins or dotted paths)."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not names:
        raise fail(where, f"expected an exception name or a list of them, got {value!r}")
    return tuple(_exception_type(name, where) for name in names)


def exception_names(value: object, label: str) -> list[str]:
    """The config names of exception types; ``ValueError`` for a predicate."""
    types = value if isinstance(value, tuple) else (value,)
    names = []
    for exc_type in types:
        if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
            raise ValueError(f"{label} is a predicate, which config cannot express")
        module = exc_type.__module__
        names.append(
            exc_type.__qualname__ if module == "builtins" else f"{module}.{exc_type.__qualname__}"
        )
    return names


_BACKOFFS: dict[str, tuple[Callable[..., Backoff], tuple[str, ...]]] = {
    "constant": (Constant, ("delay",)),
    "linear": (Linear, ("initial", "step", "max_delay", "jitter")),
    "exponential": (Exponential, ("initial", "multiplier", "max_delay", "jitter")),
}


def backoff(value: object, where: str) -> Backoff:
    """A backoff from its table: ``{type = "exponential", initial = 0.2, ...}``."""
    entry = table(value, where)
    kind = entry.get("type")
    options = {key: val for key, val in entry.items() if key != "type"}
    if kind == "sum":
        check_keys(entry, ("parts",), where)
        parts = options.get("parts")
        if not isinstance(parts, list) or len(parts) < 2:
            raise fail(where, "a sum needs a list of at least two backoffs in 'parts'")
        return _Sum(tuple(backoff(part, f"{where}.parts[{i}]") for i, part in enumerate(parts)))
    if kind not in _BACKOFFS:
        raise fail(
            where, f"backoff type must be one of constant, linear, exponential, sum; got {kind!r}"
        )
    maker, allowed = _BACKOFFS[kind]
    check_keys(entry, allowed, where)
    try:
        return maker(**options)
    except (TypeError, ValueError) as exc:
        raise fail(where, str(exc)) from None


def backoff_config(value: Backoff) -> dict[str, Any]:
    """The table of a backoff; ``ValueError`` for one config cannot express."""
    if isinstance(value, _Sum):
        return {"type": "sum", "parts": [backoff_config(part) for part in value.parts]}
    for kind, (maker, _) in _BACKOFFS.items():
        if type(value) is maker:
            return {"type": kind, **dataclasses.asdict(value)}  # type: ignore[call-overload]
    raise ValueError(f"backoff {value!r} cannot be expressed in config")


def without_none(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in entry.items() if value is not None}


def strategy_from_config(value: object, where: str) -> Strategy:
    """A strategy from its table, found by its ``type`` among the registered kinds."""
    entry = table(value, where)
    kind = entry.get("type")
    cls = strategy_class(kind) if isinstance(kind, str) else None
    if cls is None:
        raise fail(
            where,
            f"type must be one of {', '.join(kinds())} (or a strategy class's dotted path); "
            f"got {kind!r}",
        )
    where = f"{where} ({kind})"
    options = {key: val for key, val in entry.items() if key != "type"}
    try:
        return cls.from_config(options, where)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise fail(where, str(exc)) from None


def strategy_to_config(strategy: Strategy) -> dict[str, Any]:
    """The table of one strategy, ``type`` first; ``ValueError`` for what config cannot say."""
    cls = type(strategy)
    kind = cls.__dict__.get("kind")
    if kind is None:
        # A subclass without a kind of its own is written by its dotted path, so loading it
        # back builds the subclass, not its base.
        if getattr(strategy, "to_config", None) is None:
            raise ValueError(f"{strategy!r} has no config form")
        kind = f"{cls.__module__}.{cls.__qualname__}"
    return {"type": kind, **strategy.to_config()}
