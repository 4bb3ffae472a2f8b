"""The retry decision core: when to try again, and when to give up.

Two functions, synchronous and free of asyncio (a failing ``delay_hint`` is logged, never
raised): ``deadline_of`` once a call has failed, ``next_delay`` after each failed attempt.
The state of a call (the attempt number, its deadline, a stateful backoff's iterator) is
the driver's: ``Retry.call``, its decorator form and the ``async for`` loop hold it, wait
and run the attempts; a sync driver or another event loop can reuse the core as it is,
reading its options from the ``Retry`` (the public ones, and the per-retry function and
random source it resolved at construction).
Functions rather than a per-call object: the core runs on every retried call, and on
Python 3.11 making an object and calling its methods cost ~200 ns more (``make bench``,
``retry_backoffs``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from stoic import _clock, _validate
from stoic._clock import testing_state
from stoic._events import logger
from stoic._retry.events import GiveUpReason
from stoic._timeout import current_deadline

if TYPE_CHECKING:
    from stoic._retry.policy import Retry

__all__ = ["GAVE_UP", "NOT_RETRIED", "NO_RESULT", "deadline_of", "delays_of", "next_delay"]

#: What a driver passes as the result of an attempt that raised.
NO_RESULT: Any = object()
# The opening words of stoic's notes on the caller's exception: one of each kind at most.
GAVE_UP = "stoic: gave up"
NOT_RETRIED = "stoic: not retried"


def deadline_of(options: Retry, start: float) -> float | None:
    """The deadline of a call that started at ``start``: the policy's ``deadline`` counted
    from it, or an enclosing timeout's when that is earlier; ``None`` for neither."""
    outer = current_deadline()
    own = options.deadline
    if own is None:
        return outer
    own += start
    return own if outer is None or own < outer else outer


def delays_of(options: Retry) -> Iterator[float] | None:
    """What a driver keeps of the backoff for one call: ``None`` for a backoff with a
    ``per_retry`` function (``next_delay`` asks it for each retry's delay), else the
    iterator of its delays (a stateful one: decorrelated jitter, a subclass's own)."""
    if options._per_retry is not None:
        return None
    return options.backoff.delays(options._random)


def next_delay(
    options: Retry,
    attempt: int,
    deadline: float | None,
    delays: Iterator[float] | None,
    exc: BaseException | None,
    result: Any,
    now: float,
) -> float | GiveUpReason:
    """Seconds to wait before attempt ``attempt + 1``, or why to give up instead.

    ``attempt`` (from 1) just failed at ``now``, raising ``exc``, or returning ``result``
    that ``on_result`` rejected (``exc`` is then ``None``). ``delays``: what ``delays_of``
    gave for this call.
    """
    budget = options.budget
    if budget is not None:
        budget.failed()
    if attempt >= options.attempts or (
        testing_state.attempts is not None and attempt >= testing_state.attempts
    ):
        return "attempts"
    per_retry = options._per_retry
    delay = per_retry(attempt, options._random) if delays is None else next(delays)  # type: ignore[misc]
    hint = options.delay_hint
    if hint is not None:
        # Called here rather than in a helper: this runs on every retried failure, and the
        # usual answer is "no hint".
        try:
            hinted = hint(result if exc is None else exc)
        except Exception:
            logger.exception("stoic: delay_hint %r failed; using the backoff", hint)
            hinted = None
        if hinted is not None:
            hinted = _checked_hint(hint, hinted)
            if hinted is not None:
                delay = hinted
    if delay > options.max_delay:
        delay = options.max_delay
    if testing_state.no_wait:
        delay = 0.0
    if deadline is not None and _clock.reached(now + delay, deadline):
        return "deadline"
    # Last: a retry that would not run for another reason spends nothing.
    if budget is not None and not budget.try_withdraw():
        return "budget"
    return delay


def _checked_hint(delay_hint: Callable[[Any], object], hint: object) -> float | None:
    """A ``delay_hint``'s answer ``hint`` as seconds, or ``None`` for the backoff to decide.

    An answer other than finite seconds >= 0 is logged on the ``stoic`` logger and ignored
    (``next_delay`` does the same for a hint that raises), so a bug in a ``Retry-After``
    parser cannot replace the caller's real error. A hint of 0 is ignored too (below).
    """
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
