"""Pipelines from plain configuration: a dict, or a TOML file read with the standard library.

A pipeline is a list of strategy tables, outermost first, each with a ``type``::

    [[pipelines.payments.strategies]]
    type = "timeout"
    seconds = 10

    [[pipelines.payments.strategies]]
    type = "retry"
    attempts = 3
    on = ["ConnectionError", "TimeoutError"]
    backoff = { type = "exponential", initial = 0.2, max_delay = 5 }

    [[pipelines.payments.strategies]]
    type = "circuit_breaker"
    failure_threshold = 5
    timeout = 30

    [[pipelines.payments.strategies]]
    type = "timeout"
    seconds = 2

Types and their keys are the constructor options: ``timeout`` (``seconds``, ``name``),
``retry`` (``attempts``, ``on``, ``backoff``, ``deadline``, ``max_delay``, ``name``),
``circuit_breaker`` (the ``CircuitBreakerConfig`` fields, with ``record``/``ignore`` as
exception names), ``bulkhead`` (``max_concurrent``, ``max_waiting``, ``timeout``, ``name``),
``rate_limiter`` (``rate``, ``per``, ``burst``, ``max_wait``, ``name``; TOML has no null, so
``max_wait = "unlimited"`` stands for ``None``: wait as long as needed),
``fallback`` (``value``, ``on``, ``name``) and ``pipeline`` (``strategies``, ``name``).
Backoffs: ``constant`` (``delay``), ``linear`` (``initial``, ``step``, ``max_delay``,
``jitter``), ``exponential`` (``initial``, ``multiplier``, ``max_delay``, ``jitter``) and
``sum`` (``parts``). Exception names are builtins (``"ConnectionError"``) or dotted paths
(``"httpx.TransportError"``).

Errors are ``ValueError``\\ s that say where: ``pipelines.payments.strategies[1] (retry):
attempts must be an int >= 1, got 0``. The same order checks as ``Pipeline`` apply.
``pipeline_to_config`` goes the other way, for every option that config can express.
"""

from __future__ import annotations

import builtins
import dataclasses
import importlib
from collections.abc import Callable, Mapping
from os import PathLike
from typing import Any

from stoic._strategy import Strategy
from stoic.backoff import Backoff, Constant, Exponential, Linear, _Sum
from stoic.bulkhead import Bulkhead
from stoic.circuit_breaker import CircuitBreaker, CircuitBreakerConfig
from stoic.fallback import Fallback
from stoic.pipeline import Pipeline
from stoic.rate_limit import RateLimiter
from stoic.registry import Registry
from stoic.retry import Retry
from stoic.timeout import Timeout

__all__ = ["load_pipelines", "pipeline_from_config", "pipeline_to_config", "strategy_to_config"]

_BREAKER_KEYS = tuple(
    field.name
    for field in dataclasses.fields(CircuitBreakerConfig)
    if field.name not in ("failure_result", "listeners")
)


class _ConfigError(ValueError):
    pass


def _fail(where: str, message: str) -> _ConfigError:
    return _ConfigError(f"{where}: {message}")


def _table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, f"expected a table (dict), got {value!r}")
    return value


def _check_keys(entry: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(entry) - set(allowed) - {"type"})
    if unknown:
        raise _fail(where, f"unknown option(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def _exception_type(name: object, where: str) -> type[BaseException]:
    if not isinstance(name, str) or not name:
        raise _fail(where, f"exception names must be non-empty strings, got {name!r}")
    if "." in name:
        module_name, _, attr = name.rpartition(".")
        try:
            found = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError):
            raise _fail(where, f"cannot import exception {name!r}") from None
    else:
        found = getattr(builtins, name, None)
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise _fail(where, f"{name!r} is not an exception type")
    return found


def _exceptions(value: object, where: str) -> tuple[type[BaseException], ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not names:
        raise _fail(where, f"expected an exception name or a list of them, got {value!r}")
    return tuple(_exception_type(name, where) for name in names)


def _backoff(value: object, where: str) -> Backoff:
    entry = _table(value, where)
    kind = entry.get("type")
    options = {key: val for key, val in entry.items() if key != "type"}
    makers: dict[str, tuple[Callable[..., Backoff], tuple[str, ...]]] = {
        "constant": (Constant, ("delay",)),
        "linear": (Linear, ("initial", "step", "max_delay", "jitter")),
        "exponential": (Exponential, ("initial", "multiplier", "max_delay", "jitter")),
    }
    if kind == "sum":
        _check_keys(entry, ("parts",), where)
        parts = options.get("parts")
        if not isinstance(parts, list) or len(parts) < 2:
            raise _fail(where, "a sum needs a list of at least two backoffs in 'parts'")
        return _Sum(tuple(_backoff(part, f"{where}.parts[{i}]") for i, part in enumerate(parts)))
    if kind not in makers:
        raise _fail(
            where, f"backoff type must be one of constant, linear, exponential, sum; got {kind!r}"
        )
    maker, allowed = makers[kind]
    _check_keys(entry, allowed, where)
    try:
        return maker(**options)
    except (TypeError, ValueError) as exc:
        raise _fail(where, str(exc)) from None


def _strategy(value: object, where: str) -> Strategy:
    entry = _table(value, where)
    kind = entry.get("type")
    where = f"{where} ({kind})" if isinstance(kind, str) else where
    options = {key: val for key, val in entry.items() if key != "type"}
    try:
        if kind == "timeout":
            _check_keys(entry, ("seconds", "name"), where)
            return Timeout(**options)
        if kind == "retry":
            _check_keys(
                entry, ("attempts", "on", "backoff", "deadline", "max_delay", "name"), where
            )
            if "on" in options:
                options["on"] = _exceptions(options["on"], f"{where}.on")
            if "backoff" in options:
                options["backoff"] = _backoff(options["backoff"], f"{where}.backoff")
            return Retry(**options)
        if kind == "circuit_breaker":
            _check_keys(entry, _BREAKER_KEYS, where)
            for key in ("record", "ignore"):
                if key in options:
                    options[key] = _exceptions(options[key], f"{where}.{key}")
            return CircuitBreaker(**options)
        if kind == "bulkhead":
            _check_keys(entry, ("max_concurrent", "max_waiting", "timeout", "name"), where)
            return Bulkhead(**options)
        if kind == "rate_limiter":
            _check_keys(entry, ("rate", "per", "burst", "max_wait", "name"), where)
            if options.get("max_wait") == "unlimited":
                options["max_wait"] = None
            return RateLimiter(**options)
        if kind == "fallback":
            _check_keys(entry, ("value", "on", "name"), where)
            if "value" not in options:
                raise _fail(where, "a fallback needs its 'value'")
            if "on" in options:
                options["on"] = _exceptions(options["on"], f"{where}.on")
            return Fallback(options.pop("value"), **options)
        if kind == "pipeline":
            return pipeline_from_config(entry, where=where)
    except _ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise _fail(where, str(exc)) from None
    kinds = "timeout, retry, circuit_breaker, bulkhead, rate_limiter, fallback, pipeline"
    raise _fail(where, f"type must be one of {kinds}; got {kind!r}")


def pipeline_from_config(
    config: Mapping[str, Any], *, name: str | None = None, where: str = "pipeline"
) -> Pipeline:
    """Build a ``Pipeline`` from ``{"strategies": [...], "name": ..., "validate": ...}``."""
    config = _table(config, where)
    _check_keys(config, ("strategies", "name", "validate"), where)
    strategies = config.get("strategies", [])
    if not isinstance(strategies, list):
        raise _fail(where, f"'strategies' must be a list of tables, got {strategies!r}")
    built = [_strategy(entry, f"{where}.strategies[{i}]") for i, entry in enumerate(strategies)]
    validate = config.get("validate", True)
    if not isinstance(validate, bool):
        raise _fail(where, f"'validate' must be true or false, got {validate!r}")
    try:
        return Pipeline(*built, name=config.get("name", name), validate=validate)
    except (TypeError, ValueError) as exc:
        raise _fail(where, str(exc)) from None


def load_pipelines(
    source: str | PathLike[str], *, registry: Registry | None = None
) -> dict[str, Pipeline]:
    """Read ``[pipelines.NAME]`` tables from a TOML file; return them by name.

    With ``registry``, each pipeline is also registered under its name; if any name is taken,
    ``ValueError`` and none is registered. A missing file raises ``FileNotFoundError``; bad
    TOML ``ValueError``.
    """
    import tomllib  # here, not at the top: it costs `import stoic` a few milliseconds

    with open(source, "rb") as file:
        try:
            document = tomllib.load(file)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{source}: not valid TOML: {exc}") from None
    tables = _table(document.get("pipelines", {}), "pipelines")
    pipelines = {
        name: pipeline_from_config(table, name=name, where=f"pipelines.{name}")
        for name, table in tables.items()
    }
    if registry is not None:
        registry.register_all(pipelines)  # all or nothing: a corrected file loads again
    return pipelines


# -- the other way: config from objects ---------------------------------------------------


def _exception_names(value: object, label: str) -> list[str]:
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


def _backoff_config(backoff: Backoff) -> dict[str, Any]:
    if isinstance(backoff, _Sum):
        return {"type": "sum", "parts": [_backoff_config(part) for part in backoff.parts]}
    kinds = {Constant: "constant", Linear: "linear", Exponential: "exponential"}
    kind = kinds.get(type(backoff))
    if kind is None:
        raise ValueError(f"backoff {backoff!r} cannot be expressed in config")
    return {"type": kind, **dataclasses.asdict(backoff)}  # type: ignore[call-overload]


def _without_none(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in entry.items() if value is not None}


def strategy_to_config(strategy: Strategy) -> dict[str, Any]:
    """The config table of one strategy; ``ValueError`` for options config cannot express."""
    if isinstance(strategy, Pipeline):
        return {"type": "pipeline", **pipeline_to_config(strategy)}
    if isinstance(strategy, Timeout):
        return _without_none(
            {"type": "timeout", "seconds": strategy.seconds, "name": strategy.name}
        )
    if isinstance(strategy, Retry):
        for hook in ("on_result", "delay_hint"):
            if getattr(strategy, hook) is not None:
                raise ValueError(f"retry {hook} is a function, which config cannot express")
        return _without_none(
            {
                "type": "retry",
                "attempts": strategy.attempts,
                "on": _exception_names(strategy.on, "retry on"),
                "backoff": _backoff_config(strategy.backoff),
                "deadline": strategy.deadline,
                "max_delay": strategy.max_delay,
                "name": strategy.name,
            }
        )
    if isinstance(strategy, CircuitBreaker):
        config = strategy.config
        if config.failure_result is not None:
            raise ValueError(
                "circuit breaker failure_result is a function, which config cannot express"
            )
        entry: dict[str, Any] = {"type": "circuit_breaker"}
        defaults = CircuitBreakerConfig()
        for key in _BREAKER_KEYS:
            value = getattr(config, key)
            if value == getattr(defaults, key):
                continue
            if key in ("record", "ignore"):
                value = _exception_names(value, f"circuit breaker {key}")
            entry[key] = value
        return entry
    if isinstance(strategy, Bulkhead):
        return _without_none(
            {
                "type": "bulkhead",
                "max_concurrent": strategy.max_concurrent,
                "max_waiting": strategy.max_waiting,
                "timeout": strategy.timeout,
                "name": strategy.name,
            }
        )
    if isinstance(strategy, RateLimiter):
        return _without_none(
            {
                "type": "rate_limiter",
                "rate": strategy.rate,
                "per": strategy.per,
                "burst": strategy.burst,
                "max_wait": "unlimited" if strategy.max_wait is None else strategy.max_wait,
                "name": strategy.name,
            }
        )
    if isinstance(strategy, Fallback):
        if strategy.handler is not None:
            raise ValueError("fallback handler is a function, which config cannot express")
        if strategy.on_result is not None:
            raise ValueError("fallback on_result is a function, which config cannot express")
        entry = _without_none({"type": "fallback", "name": strategy.name})
        entry["value"] = strategy.value  # ``None`` is a value too
        if strategy.on is not None:
            entry["on"] = _exception_names(strategy.on, "fallback on")
        return entry
    raise ValueError(f"{strategy!r} has no config form")


def pipeline_to_config(pipeline: Pipeline) -> dict[str, Any]:
    """The config dict of ``pipeline``: ``pipeline_from_config`` of it builds an equal one.

    Listeners are code, not configuration: they are not written (attach them again after
    loading). Predicates and hooks raise ``ValueError``.
    """
    config = _without_none(
        {
            "name": pipeline.name,
            "strategies": [strategy_to_config(strategy) for strategy in pipeline.strategies],
        }
    )
    if not pipeline.validated:
        config["validate"] = False
    return config
