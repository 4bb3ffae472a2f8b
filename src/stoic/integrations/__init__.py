"""Optional listeners for logging and metrics; each imports its library only when built.

==========================  =====================================  =========================
listener                    records                                needs
==========================  =====================================  =========================
``LoggingListener``         every event on a stdlib ``logging``    nothing
                            logger, at the event's severity
``StructlogListener``       every event on a structlog logger      ``structlog``
``OpenTelemetryListener``   ``stoic.events`` counter, attempt and  ``pip install stoic[otel]``
                            pipeline duration histograms
``PrometheusListener``      ``stoic_events_total`` counter,        ``pip install
                            duration histograms                    stoic[prometheus]``
==========================  =====================================  =========================

Attach one to a strategy (``listeners=[...]``), a pipeline, or everything
(``stoic.add_listener(OpenTelemetryListener())``). Attributes are low-cardinality: ``event``,
``strategy`` (the strategy's name), ``pipeline`` (the operation), ``outcome`` and
``exception_type`` (a class name). A missing library raises ``ImportError`` naming the extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stoic.integrations.telemetry.logs import LoggingListener
    from stoic.integrations.telemetry.otel import OpenTelemetryListener
    from stoic.integrations.telemetry.prometheus import PrometheusListener
    from stoic.integrations.telemetry.structlog import StructlogListener

__all__ = ["LoggingListener", "OpenTelemetryListener", "PrometheusListener", "StructlogListener"]

_HOMES = {
    "LoggingListener": "stoic.integrations.telemetry.logs",
    "OpenTelemetryListener": "stoic.integrations.telemetry.otel",
    "PrometheusListener": "stoic.integrations.telemetry.prometheus",
    "StructlogListener": "stoic.integrations.telemetry.structlog",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'stoic.integrations' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
