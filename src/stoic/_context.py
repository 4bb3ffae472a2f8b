"""The per-call context: which operation, which attempt, what deadline.

Strategies write it (a pipeline its name, a retry its attempt number, a
timeout its deadline) in context variables, so each task sees its own; user code and
listeners read it with ``stoic.call_context()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType

from stoic._timeout import current_deadline, remaining

__all__ = ["CallContext", "attempt_var", "attributes_var", "call_context", "operation_var"]

#: Name of the innermost named pipeline running this call.
operation_var: ContextVar[str | None] = ContextVar("stoic_operation", default=None)


#: Attempt number in the innermost retry that has retried (an int snapshot per attempt, so
#: tasks spawned during an attempt keep that attempt's number).
attempt_var: ContextVar[int] = ContextVar("stoic_attempt", default=1)
_NONE: Mapping[str, str | int] = MappingProxyType({})
#: Low-cardinality attributes of the call, set by the integration that makes it (an HTTP
#: client: ``http.request.method``, ``server.address``, ``server.port``, never a URL);
#: telemetry listeners add them to what they record.
attributes_var: ContextVar[Mapping[str, str | int]] = ContextVar("stoic_attributes", default=_NONE)


@dataclass(frozen=True, slots=True)
class CallContext:
    """What stoic knows about the call running in this task.

    ``operation`` is the innermost named pipeline (``None`` outside any), ``attempt`` the
    attempt number in the innermost retry (1 when not retrying; the first attempt of a retry
    nested in another shows the outer one's number, since the happy path sets nothing),
    ``deadline`` the innermost
    deadline on the loop's clock and ``remaining`` the seconds left before it (both ``None``
    without a timeout). ``attributes``: what the integration making the call says of it (an
    HTTP client: ``http.request.method``, ``server.address``, ``server.port``); empty
    otherwise.
    """

    operation: str | None
    attempt: int
    deadline: float | None
    remaining: float | None
    attributes: Mapping[str, str | int] = field(default_factory=lambda: _NONE)


def call_context() -> CallContext:
    """A snapshot of the per-call context of the running task."""
    return CallContext(
        operation_var.get(),
        attempt_var.get(),
        current_deadline(),
        remaining(),
        attributes_var.get(),
    )
