"""What every listener derives from an event: low-cardinality attributes and its fields."""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType
from typing import Any

from stoic._context import attempt_var, attributes_var, operation_var
from stoic._events import Event
from stoic._pipeline import PipelineCompleted

__all__ = ["attributes", "call_attributes", "fields", "require"]


def require(module: str, what: str, extra: str) -> ModuleType:
    """Import ``module`` or raise ``ImportError`` telling which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"stoic's {what} needs {module!r}: install the {extra!r} extra "
            f"(pip install 'stoic[{extra}]')"
        ) from exc


def _exception_type(event: Event) -> str:
    exc = getattr(event, "exception", None)
    return "" if exc is None else type(exc).__name__


def attributes(event: Event) -> dict[str, str]:
    """Labels for metrics: bounded sets of values, never messages or ids."""
    outcome = getattr(event, "outcome", None) or getattr(event, "reason", None) or ""
    pipeline = event.name if isinstance(event, PipelineCompleted) else operation_var.get()
    return {
        "event": type(event).__name__,
        "strategy": event.name or "",
        "pipeline": pipeline or "",
        "outcome": str(outcome),
        "exception_type": _exception_type(event),
    }


def call_attributes(event: Event) -> dict[str, str | int]:
    """What the integration making the call says of it (an HTTP client: the method, the
    host and port, never the URL), and for an HTTP attempt after the first,
    ``http.request.resend_count`` (OpenTelemetry's name): empty for other calls."""
    described = attributes_var.get()
    if not described:
        return {}
    result = dict(described)
    if "http.request.method" in result:
        attempt = getattr(event, "attempt", None)
        if not isinstance(attempt, int):
            attempt = attempt_var.get()  # an event without one, in the attempt running
        if attempt > 1:
            result["http.request.resend_count"] = attempt - 1
    return result


def fields(event: Event) -> dict[str, Any]:
    """The event's fields, exceptions shown as ``repr`` and enums as their value.

    During an HTTP integration's call an exception is shown by its type alone: an HTTP
    client's messages hold the request's URL, query and all (tokens, ids), which the
    attributes never carry (``call_context().attributes`` names the host)."""
    result: dict[str, Any] = {}
    http = "http.request.method" in attributes_var.get()
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        if isinstance(value, BaseException):
            value = type(value).__name__ if http else repr(value)
        elif hasattr(value, "value") and hasattr(type(value), "__members__"):
            value = value.value
        result[field.name] = value
    return result
