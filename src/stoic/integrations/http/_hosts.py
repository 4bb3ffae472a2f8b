"""One pipeline per host, in a bounded LRU: what both HTTP integrations keep."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from stoic import _validate
from stoic._pipeline import Pipeline
from stoic._strategy import Frozen

__all__ = ["HostKey", "HostPipelines"]

HostKey = tuple[str, str, int]
_EVERY_HOST: HostKey = ("", "", 0)


class HostPipelines:
    """The pipelines of the hosts a client talks to, made on first use.

    ``pipeline``: ``None`` for ``default(host, port)``; a ``Pipeline``, copied with fresh
    state for each host when ``per_host``; or a function ``(scheme, host, port) ->
    Pipeline``. ``max_hosts`` pipelines are kept, the least recently used dropped first.
    """

    __slots__ = ("_make", "_max_hosts", "_per_host", "_pipelines")

    def __init__(
        self,
        pipeline: object,
        per_host: object,
        max_hosts: object,
        default: Callable[[str, str, int], Pipeline],
    ) -> None:
        if not isinstance(per_host, bool):
            raise TypeError(f"per_host must be True or False, got {per_host!r}")
        self._per_host = per_host
        self._max_hosts = _validate.count(max_hosts, "max_hosts")
        self._make = self._maker(pipeline, default)
        self._pipelines: OrderedDict[HostKey, Pipeline] = OrderedDict()

    def _maker(
        self, pipeline: object, default: Callable[[str, str, int], Pipeline]
    ) -> Callable[[str, str, int], Pipeline]:
        if pipeline is None:
            return default
        if isinstance(pipeline, Pipeline):
            if not self._per_host:
                return lambda scheme, host, port: pipeline
            _check_copyable(pipeline)
            return lambda scheme, host, port: _fresh(pipeline)
        if isinstance(pipeline, type) or not callable(pipeline):
            raise TypeError(
                "pipeline must be None, a stoic Pipeline or a function (scheme, host, port) -> "
                f"Pipeline, got {pipeline!r}"
            )
        return pipeline

    def get(self, scheme: str, host: str, port: int) -> Pipeline:
        """The pipeline of (``scheme``, ``host``, ``port``), made on first use."""
        key: HostKey = (scheme, host, port) if self._per_host else _EVERY_HOST
        pipelines = self._pipelines
        pipeline = pipelines.get(key)
        if pipeline is None:
            pipeline = self._make(*key)
            if not isinstance(pipeline, Pipeline):
                raise TypeError(f"the pipeline function returned {pipeline!r}, not a Pipeline")
            pipelines[key] = pipeline
            if len(pipelines) > self._max_hosts:
                pipelines.popitem(last=False)
        else:
            pipelines.move_to_end(key)
        return pipeline

    def __len__(self) -> int:
        return len(self._pipelines)


def _check_copyable(pipeline: Pipeline) -> None:
    """Refuse a strategy with a store in a pipeline copied per host: its copies would share
    their state through the store, by name, across every host."""
    for strategy in pipeline.strategies:
        if isinstance(strategy, Pipeline):
            _check_copyable(strategy)
        elif isinstance(strategy, Frozen) and strategy.options().get("store") is not None:
            raise ValueError(
                f"{strategy!r} keeps its state in a store, shared by name: copied for each "
                "host, every host would share it. Pass per_host=False, or pipeline=a function "
                "(scheme, host, port) -> Pipeline that names each host's strategies"
            )


def _fresh(strategy: Any) -> Any:
    """``strategy`` with the same options and state of its own (a pipeline's strategies too);
    a strategy stoic cannot rebuild is shared."""
    if isinstance(strategy, Pipeline):
        return strategy.with_(strategies=[_fresh(inner) for inner in strategy.strategies])
    if isinstance(strategy, Frozen):
        return strategy.with_()
    return strategy
