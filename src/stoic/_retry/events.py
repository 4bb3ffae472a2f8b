"""The events a retry policy emits: one frozen object per thing it did."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from stoic._events import Event, Severity, fast_new

__all__ = [
    "AttemptCompleted",
    "GiveUpReason",
    "RetryGaveUp",
    "RetryScheduled",
    "new_attempt_completed",
]

GiveUpReason = Literal["attempts", "deadline", "budget"]


@dataclass(frozen=True, slots=True)
class RetryScheduled(Event):
    """Attempt ``attempt`` failed and another is scheduled after ``delay`` seconds.

    ``elapsed`` is seconds since the call started (see ``Retry`` on when the clock starts).
    Exactly one of ``exception`` / ``result``
    describes the failed outcome (``result`` is set when ``on_result`` rejected it).
    """

    severity: ClassVar[Severity] = Severity.WARNING
    attempt: int
    delay: float
    elapsed: float
    exception: BaseException | None
    result: Any


@dataclass(frozen=True, slots=True)
class RetryGaveUp(Event):
    """Retrying stopped after ``attempt`` attempts; ``reason``: ``"attempts"``, ``"deadline"``
    or ``"budget"`` (the retry budget is spent)."""

    severity: ClassVar[Severity] = Severity.ERROR
    attempt: int
    elapsed: float
    exception: BaseException | None
    result: Any
    reason: GiveUpReason


@dataclass(frozen=True, slots=True)
class AttemptCompleted(Event):
    """One attempt ended: ``outcome`` is ``"success"``, ``"failure"`` (it raised) or
    ``"rejected"`` (``on_result`` rejected its result); ``duration`` in seconds.

    Emitted when the policy has listeners or anything listens globally or on a pipeline
    (telemetry); cancelled attempts are not reported.
    """

    severity: ClassVar[Severity] = Severity.DEBUG
    attempt: int
    duration: float
    outcome: Literal["success", "failure", "rejected"]
    exception: BaseException | None


#: ``AttemptCompleted(...)`` by position, at hot-path cost (``_events.fast_new``).
new_attempt_completed = fast_new(AttemptCompleted)
