"""The retry decision core: when to try again, and when to give up.

Synchronous and free of asyncio (a failing ``delay_hint`` is logged, never raised): the
drivers (``Retry.call``, its decorator form and the ``async for`` loop) wait and run the
attempts; a sync driver or another event loop can reuse it as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from stoic import _clock, _validate
from stoic._clock import testing_state
from stoic._events import logger
from stoic._retry.events import GiveUpReason
from stoic._timeout import current_deadline

__all__ = ["GAVE_UP", "NOT_RETRIED", "NO_RESULT", "Plan"]

#: What a driver passes as the result of an attempt that raised.
NO_RESULT: Any = object()
# The opening words of stoic's notes on the caller's exception: one of each kind at most.
GAVE_UP = "stoic: gave up"
NOT_RETRIED = "stoic: not retried"


class Plan:
    """The retry decision for one call: attempts made, the deadline, the backoff sequence.

    Synchronous and free of asyncio: ``next_delay`` says how long to wait before the next
    attempt, or ``None`` to give up (``reason`` says why). Made only once a call has failed,
    so the happy path never pays for it. The drivers (``Retry.call``, the decorator, the
    ``async for`` loop) own the waiting, the attempts and the events.
    """

    __slots__ = (
        "attempt",
        "deadline",
        "delays",
        "hint",
        "limit",
        "max_delay",
        "reason",
        "since",
        "start",
    )

    def __init__(
        self,
        start: float,
        attempts: int,
        delays: Iterator[float],
        max_delay: float,
        deadline: float | None,
        hint: Callable[[Any], float | None] | None,
    ) -> None:
        """``deadline``: seconds from ``start`` the policy allows (an enclosing timeout's
        deadline bounds it too); ``hint``: the outcome's own wait, or ``None`` for the
        backoff's. ``since``, the end of the first failed attempt, is what ``elapsed``
        counts from."""
        self.start = start
        self.since = start
        self.attempt = 1
        self.reason: GiveUpReason = "attempts"
        self.delays = delays
        self.hint = hint
        self.max_delay = max_delay
        self.limit = attempts  # testing mode may cap it further, read at each decision
        own = None if deadline is None else start + deadline
        outer = current_deadline()
        self.deadline = outer if own is None or (outer is not None and outer <= own) else own

    def next_delay(self, exc: BaseException | None, result: Any, now: float) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to give up."""
        if self.attempt >= self.limit or (
            testing_state.attempts is not None and self.attempt >= testing_state.attempts
        ):
            self.reason = "attempts"
            return None
        delay = next(self.delays)
        if self.hint is not None:
            hint = _read_hint(self.hint, result if exc is None else exc)
            if hint is not None:
                delay = hint
        if delay > self.max_delay:
            delay = self.max_delay
        if testing_state.no_wait:
            delay = 0.0
        if self.deadline is not None and _clock.reached(now + delay, self.deadline):
            self.reason = "deadline"
            return None
        return delay


def _read_hint(delay_hint: Callable[[Any], object], outcome: Any) -> float | None:
    """The ``delay_hint`` for ``outcome``, or ``None``; a failing hint never breaks the call.

    A hint that raises, or returns something other than a number >= 0, is logged on the
    ``stoic`` logger and ignored (the backoff decides), so a bug in a ``Retry-After`` parser
    cannot replace the caller's real error.
    """
    try:
        hint = delay_hint(outcome)
    except Exception:
        logger.exception("stoic: delay_hint %r failed; using the backoff", delay_hint)
        return None
    if hint is None:
        return None
    try:
        seconds = _validate.seconds(hint, "delay_hint's result")
    except ValueError:
        logger.warning(
            "stoic: delay_hint %r returned %r, not finite seconds >= 0; using the backoff",
            delay_hint,
            hint,
        )
        return None
    # A hint of 0 ("retry now", or a breaker whose probes are all running) would make a loop
    # that burns every attempt in no time: the backoff decides that wait instead.
    return seconds if seconds > 0 else None
