"""A listener that writes every stoic event to a stdlib ``logging`` logger."""

from __future__ import annotations

import logging

from stoic._context import operation_var
from stoic._events import Event
from stoic.integrations.telemetry._common import call_attributes, fields

__all__ = ["LoggingListener"]


def _shown(value: object) -> object:
    """Seconds to the millisecond in the message (the ``extra`` keeps the exact value)."""
    return f"{value:.3f}" if type(value) is float else value


class LoggingListener:
    """Log each event at its severity (retries WARNING, gave-up ERROR, per-attempt DEBUG).

    ``logger``: a ``logging.Logger`` or a name (default ``"stoic"``). Each record carries
    structured ``extra``: ``stoic_event`` (the event class), ``stoic_strategy``,
    ``stoic_pipeline``, ``stoic_fields`` (the event's fields as a dict, exact) and
    ``stoic_attributes`` (the call's: for an HTTP request its method and host). The message
    names the event and where it happened (``[pipeline/strategy]``), with seconds rounded to
    the millisecond: ``RetryScheduled [payments/retry]: attempt=1 delay=0.500 ...``.
    """

    __slots__ = ("_logger",)

    def __init__(self, logger: logging.Logger | str | None = None) -> None:
        if logger is None or isinstance(logger, str):
            logger = logging.getLogger(logger or "stoic")
        self._logger = logger

    def __repr__(self) -> str:
        return f"LoggingListener({self._logger.name!r})"

    def __call__(self, event: Event) -> None:
        level = int(event.severity)
        if not self._logger.isEnabledFor(level):
            return
        data = fields(event)
        name = data.pop("name", None)
        pipeline = operation_var.get()
        where = "/".join(part for part in (pipeline, name) if part)
        details = " ".join(
            f"{key}={_shown(value)}" for key, value in data.items() if value is not None
        )
        # No "stoic" prefix: the logger's name says that already.
        self._logger.log(
            level,
            "%s%s: %s",
            type(event).__name__,
            f" [{where}]" if where else "",
            details,
            extra={
                "stoic_event": type(event).__name__,
                "stoic_strategy": name,
                "stoic_pipeline": pipeline,
                "stoic_fields": data,
                "stoic_attributes": call_attributes(event),
            },
        )
