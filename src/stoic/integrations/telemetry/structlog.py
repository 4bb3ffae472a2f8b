"""A listener that writes every stoic event to a structlog logger (when structlog is installed)."""

from __future__ import annotations

import re
from typing import Any

from stoic._context import operation_var
from stoic._events import Event
from stoic.integrations.telemetry._common import call_attributes, fields, require

__all__ = ["StructlogListener"]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class StructlogListener:
    """Log each event as ``stoic.<event_name>`` at its severity, with its fields as keys
    (and the call's attributes: for an HTTP request ``http.request.method``,
    ``server.address``, ``server.port``).

    ``logger`` defaults to ``structlog.get_logger("stoic")``. Raises ``ImportError`` naming
    the ``structlog`` extra when structlog is missing.
    """

    __slots__ = ("_logger",)

    def __init__(self, logger: Any = None) -> None:
        structlog = require("structlog", "structlog listener", "structlog")
        self._logger = logger if logger is not None else structlog.get_logger("stoic")

    def __call__(self, event: Event) -> None:
        data = fields(event)
        data["strategy"] = data.pop("name", None)
        data["pipeline"] = operation_var.get()
        data.update(call_attributes(event))
        self._logger.log(int(event.severity), f"stoic.{_snake(type(event).__name__)}", **data)
