"""Prometheus metrics for stoic events (the ``prometheus`` extra)."""

from __future__ import annotations

from typing import Any

from stoic._events import Event
from stoic._pipeline import PipelineCompleted
from stoic._retry import AttemptCompleted
from stoic.integrations.telemetry._common import attributes, require

__all__ = ["PrometheusListener"]

_LABELS = ("event", "strategy", "pipeline", "outcome", "exception_type")


class PrometheusListener:
    """Record events as Prometheus metrics in ``registry`` (default: the global one).

    - ``{namespace}_events_total`` (counter): one per event, labelled ``event``,
      ``strategy``, ``pipeline``, ``outcome``, ``exception_type``.
    - ``{namespace}_attempt_duration_seconds`` and ``{namespace}_pipeline_duration_seconds``
      (histograms) from ``AttemptCompleted`` and ``PipelineCompleted``.

    Build one per registry: registering the same metric names twice is an error in
    ``prometheus_client``. Raises ``ImportError`` naming the ``prometheus`` extra when
    ``prometheus_client`` is missing.
    """

    __slots__ = ("_attempts", "_events", "_pipelines")

    def __init__(self, registry: Any = None, *, namespace: str = "stoic") -> None:
        client = require("prometheus_client", "Prometheus listener", "prometheus")
        if registry is None:
            registry = client.REGISTRY
        self._events = client.Counter(
            f"{namespace}_events", "Events emitted by stoic strategies", _LABELS, registry=registry
        )
        self._attempts = client.Histogram(
            f"{namespace}_attempt_duration_seconds",
            "Duration of each retry attempt",
            _LABELS,
            registry=registry,
        )
        self._pipelines = client.Histogram(
            f"{namespace}_pipeline_duration_seconds",
            "Duration of calls through a pipeline",
            _LABELS,
            registry=registry,
        )

    def __call__(self, event: Event) -> None:
        labels = attributes(event)
        self._events.labels(**labels).inc()
        if isinstance(event, AttemptCompleted):
            self._attempts.labels(**labels).observe(event.duration)
        elif isinstance(event, PipelineCompleted):
            self._pipelines.labels(**labels).observe(event.duration)
