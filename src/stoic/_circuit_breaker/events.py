"""What a circuit breaker reports: its events and its statistics snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from stoic._circuit_breaker.config import CircuitState
from stoic._events import Event, Severity

__all__ = ["CallRejectedByBreaker", "CircuitBreakerStatistics", "CircuitStateChanged"]


@dataclass(frozen=True, slots=True)
class CircuitStateChanged(Event):
    """The breaker moved from ``old`` to ``new``.

    ``reason`` is one of ``"failure_threshold"``, ``"failure_rate"``, ``"slow_call_rate"``
    (CLOSED to OPEN), ``"probe_failed"`` (HALF_OPEN to OPEN), ``"break_elapsed"`` (OPEN to
    HALF_OPEN), ``"probes_succeeded"`` (HALF_OPEN to CLOSED), ``"isolated"`` or ``"reset"``.
    ``break_duration`` is the seconds the breaker will stay OPEN (0.0 unless it opened).
    """

    severity: ClassVar[Severity] = Severity.WARNING
    old: CircuitState
    new: CircuitState
    reason: str
    break_duration: float = 0.0


@dataclass(frozen=True, slots=True)
class CallRejectedByBreaker(Event):
    """The breaker refused a call; the wrapped function was not called.

    ``retry_after`` is as on ``CircuitBreakerOpen``: seconds until a probe may run (in
    HALF_OPEN with every permit taken, until the first running probe's lease ends), ``None``
    when isolated.
    """

    severity: ClassVar[Severity] = Severity.DEBUG
    state: CircuitState
    retry_after: float | None


@dataclass(frozen=True, slots=True)
class CircuitBreakerStatistics:
    """A snapshot of a breaker (``CircuitBreaker.statistics()``).

    Totals count since creation or the last ``reset()``: ``successful_calls``,
    ``failed_calls`` (recorded failures, including ``failure_result`` ones), ``slow_calls``
    (also counted as successful or failed), ``ignored_calls`` (ignored or unrecorded
    exceptions), ``rejected_calls`` and ``times_opened``. Cancelled calls count nowhere.
    ``consecutive_failures`` (slow calls included), ``half_open_successes``,
    ``probes_in_flight`` and the ``window_*`` counts (``trip="rate"`` only) are the
    current values. ``break_duration`` is the current break in seconds; ``retry_after`` the
    seconds until a probe may run (0.0 when one may run now; in HALF_OPEN with every permit
    taken, until the first running probe's lease ends; ``None`` when isolated).
    """

    state: CircuitState
    isolated: bool
    successful_calls: int
    failed_calls: int
    slow_calls: int
    ignored_calls: int
    rejected_calls: int
    times_opened: int
    consecutive_failures: int
    half_open_successes: int
    probes_in_flight: int
    window_calls: int
    window_failures: int
    window_slow_calls: int
    break_duration: float
    retry_after: float | None
