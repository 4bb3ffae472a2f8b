"""OpenTelemetry metrics for stoic events (the ``otel`` extra)."""

from __future__ import annotations

from typing import Any

from stoic._events import Event
from stoic._pipeline import PipelineCompleted
from stoic._retry import AttemptCompleted
from stoic.integrations.telemetry._common import attributes, call_attributes, require

__all__ = ["OpenTelemetryListener"]


class OpenTelemetryListener:
    """Record events as OpenTelemetry metrics.

    - ``stoic.events`` (counter, ``{event}``): one per event, with attributes ``event``,
      ``strategy``, ``pipeline``, ``outcome``, ``exception_type``, and those of the call
      (``stoic.call_context().attributes``: for an HTTP request ``http.request.method``,
      ``server.address``, ``server.port``, and ``http.request.resend_count`` on an attempt
      after the first).
    - ``stoic.attempt.duration`` (histogram, seconds): from ``AttemptCompleted``.
    - ``stoic.pipeline.duration`` (histogram, seconds): from ``PipelineCompleted``.

    ``meter_provider`` defaults to the global one (``opentelemetry.metrics``). Raises
    ``ImportError`` naming the ``otel`` extra when ``opentelemetry-api`` is missing.
    """

    __slots__ = ("_attempts", "_events", "_pipelines")

    def __init__(self, meter_provider: Any = None) -> None:
        metrics = require("opentelemetry.metrics", "OpenTelemetry listener", "otel")
        provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        meter = provider.get_meter("stoic")
        self._events = meter.create_counter(
            "stoic.events", unit="{event}", description="Events emitted by stoic strategies"
        )
        self._attempts = meter.create_histogram(
            "stoic.attempt.duration", unit="s", description="Duration of each retry attempt"
        )
        self._pipelines = meter.create_histogram(
            "stoic.pipeline.duration", unit="s", description="Duration of calls through a pipeline"
        )

    def __call__(self, event: Event) -> None:
        labels: dict[str, str | int] = {**attributes(event), **call_attributes(event)}
        self._events.add(1, labels)
        if isinstance(event, AttemptCompleted):
            self._attempts.record(event.duration, labels)
        elif isinstance(event, PipelineCompleted):
            self._pipelines.record(event.duration, labels)
