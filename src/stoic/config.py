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
    break_duration = 30

    [[pipelines.payments.strategies]]
    type = "timeout"
    seconds = 2

Types and their keys are the constructor options: ``timeout`` (``seconds``, ``name``),
``retry`` (``attempts``, ``on``, ``backoff``, ``deadline``, ``max_delay``, ``name``),
``circuit_breaker`` (the ``CircuitBreakerConfig`` fields, with ``record``/``ignore`` as
exception names and ``break_duration`` for ``timeout``), ``bulkhead`` (``max_concurrent``,
``max_waiting``, ``max_wait`` (or ``timeout``), ``name``),
``rate_limiter`` (``rate``, ``per``, ``burst``, ``max_wait``, ``name``; TOML has no null, so
``max_wait = "unlimited"`` stands for ``None``: wait as long as needed),
``fallback`` (``value``, ``on``, ``name``) and ``pipeline`` (``strategies``, ``name``).
A strategy of your own is loadable too: give its class a ``kind`` (its ``type`` here) and
``from_config``/``to_config`` (see ``stoic.Strategy``), or name it by its dotted path
(``type = "mypackage.strategies.Hedge"``).
Backoffs: ``constant`` (``delay``), ``linear`` (``initial``, ``step``, ``max_delay``,
``jitter``), ``exponential`` (``initial``, ``multiplier``, ``max_delay``, ``jitter``) and
``sum`` (``parts``). Exception names are builtins (``"ConnectionError"``) or dotted paths
(``"httpx.TransportError"``).

Errors are ``ValueError``\\ s that say where: ``pipelines.payments.strategies[1] (retry):
attempts must be an int >= 1, got 0``. The same order checks as ``Pipeline`` apply.
``pipeline_to_config`` goes the other way, for every option that config can express.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from typing import Any

from stoic._configuration import ConfigError, fail, strategy_to_config as strategy_to_config, table
from stoic._pipeline import Pipeline
from stoic.registry import Registry

__all__ = ["load_pipelines", "pipeline_from_config", "pipeline_to_config", "strategy_to_config"]


def pipeline_from_config(
    config: Mapping[str, Any], *, name: str | None = None, where: str = "pipeline"
) -> Pipeline:
    """Build a ``Pipeline`` from ``{"strategies": [...], "name": ..., "validate": ...}``.

    ``name`` is the pipeline's name when the table gives none.
    """
    options = dict(table(config, where))
    options.setdefault("name", name)
    try:
        return Pipeline.from_config(options, where)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise fail(where, str(exc)) from None


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
    tables = table(document.get("pipelines", {}), "pipelines")
    pipelines = {
        name: pipeline_from_config(entry, name=name, where=f"pipelines.{name}")
        for name, entry in tables.items()
    }
    if registry is not None:
        registry.register_all(pipelines)  # all or nothing: a corrected file loads again
    return pipelines


# -- the other way: config from objects ---------------------------------------------------


def pipeline_to_config(pipeline: Pipeline) -> dict[str, Any]:
    """The config dict of ``pipeline``: ``pipeline_from_config`` of it builds an equal one.

    Listeners are code, not configuration: they are not written (attach them again after
    loading). Predicates and hooks raise ``ValueError``.
    """
    return pipeline.to_config()
