"""stoic's own exceptions.

stoic re-raises the caller's real exception when it gives up (with a note saying what it tried).
Its own exceptions are reserved for what stoic itself decided::

    Exception
     +-- StoicError                      base of every stoic exception
          +-- ResultRejected             retries ran out and the last *result* was rejected
          +-- RejectedCall               stoic refused to run the call at all
          |    +-- CircuitBreakerOpen    the breaker is open (or half-open with no probe free)
          |    +-- BulkheadFull          no slot and no room in the queue (or the wait timed out)
          |    +-- RateLimited           over the rate, and the call's turn is too far away
          +-- TimeoutExceeded            also a builtin TimeoutError: a stoic timeout expired
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BulkheadFull",
    "CircuitBreakerOpen",
    "RateLimited",
    "RejectedCall",
    "ResultRejected",
    "StoicError",
    "Throttled",
    "TimeoutExceeded",
]


class StoicError(Exception):
    """Base class of every exception stoic raises on its own account."""


class ResultRejected(StoicError):
    """Retrying gave up and the last outcome was a result that ``on_result`` rejected.

    ``result`` is that last result, ``attempts`` how many attempts ran, ``elapsed`` the
    seconds spent (from the first failure when the call did not time its start; see
    ``Retry``).
    """

    def __init__(self, result: Any, attempts: int, elapsed: float) -> None:
        super().__init__(
            f"gave up after {attempts} attempt(s) in {elapsed:.3f}s: "
            f"the last result was rejected: {result!r}"
        )
        self.result = result
        self.attempts = attempts
        self.elapsed = elapsed


class RejectedCall(StoicError):
    """stoic refused to run a call; the wrapped function was not called."""


class CircuitBreakerOpen(RejectedCall):
    """The circuit breaker rejected the call.

    ``retry_after`` is the number of seconds until the breaker will admit a probe (when every
    probe permit is taken, until the first running probe's lease ends), or ``None`` when it is
    held open by hand (``isolate()``).
    """

    def __init__(
        self, message: str = "circuit breaker is open", *, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BulkheadFull(RejectedCall):
    """The bulkhead had no free slot and no room in its queue, or the wait for a slot timed out."""


class RateLimited(RejectedCall):
    """The rate limiter refused the call: its turn is further away than the caller may wait.

    ``retry_after`` is the number of seconds until a call would be admitted (what
    ``stoic.retry_after_hint`` reads).
    """

    def __init__(self, message: str = "rate limited", *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Throttled(RejectedCall):
    """The adaptive throttle refused the call locally: the dependency has been rejecting
    calls, so this one was not sent.

    ``retry_after`` is the number of seconds until the throttle's counts next change (what
    ``stoic.retry_after_hint`` reads); ``probability`` the share of calls it refuses now.
    """

    def __init__(self, message: str, *, retry_after: float, probability: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.probability = probability


class TimeoutExceeded(StoicError, TimeoutError):
    """A stoic timeout ran out. Also a ``TimeoutError``, so ``except TimeoutError`` catches it.

    ``timeout`` is the limit in seconds that ran out.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__(f"timed out after {timeout}s")
        self.timeout = timeout
