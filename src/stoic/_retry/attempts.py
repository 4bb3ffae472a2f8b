"""The ``async for attempt in policy`` driver: a retry loop around a block of code.

``Retry.__aiter__`` hands out an ``Attempts``; each ``Attempt`` is a ``with`` block whose
exception the policy retries (suppresses) or lets through with a note. The third driver of
the decision core (``plan.next_delay``), after ``Retry.call`` and the decorator.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING

from stoic import _clock
from stoic._classify import never_handled, note
from stoic._context import attempt_var
from stoic._events import emit, global_listeners, pipeline_listeners
from stoic._retry.events import RetryScheduled
from stoic._retry.plan import NO_RESULT, NOT_RETRIED, deadline_of, delays_of, next_delay

if TYPE_CHECKING:
    from stoic._retry.policy import Retry

__all__ = ["Attempt", "Attempts"]

_pipeline_listeners = pipeline_listeners.get


class Attempt:
    """One attempt of an ``async for`` retry loop; use it as ``with attempt:``.

    ``number`` counts from 1; inside the block, ``stoic.call_context().attempt`` is it too
    once the loop has retried (in the first block it is what it was around the loop, as in
    ``Retry.call``). An exception leaving the block is retried (suppressed) when the policy
    allows another attempt, else it propagates with a note.
    """

    __slots__ = ("_loop", "_token", "number")

    def __init__(self, loop: Attempts, number: int) -> None:
        self._loop = loop
        self.number = number
        self._token: Token[int] | None = None

    def __repr__(self) -> str:
        return f"<Attempt {self.number}>"

    def __enter__(self) -> Attempt:
        # Set for the block only: however the loop is left (``break``, a timeout, a
        # cancellation during the wait), nothing outlives the block.
        if self.number > 1:
            self._token = attempt_var.set(self.number)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if self._token is not None:
            attempt_var.reset(self._token)
            self._token = None
        return self._loop._finished(exc)


class Attempts:
    """The per-loop state of ``async for attempt in policy``: the third driver of the
    decision core.

    The deadline is looked up at the first failure, as in ``call``: a loop whose first block
    succeeds pays for no backoff sequence and no deadline lookup.
    """

    __slots__ = (
        "_deadline",
        "_delay",
        "_delays",
        "_done",
        "_failed",
        "_listening",
        "_number",
        "_policy",
        "_since",
        "_start",
        "_started",
    )

    def __init__(self, policy: Retry) -> None:
        self._policy = policy
        self._failed = False  # whether a block has failed yet: the deadline is then known
        self._deadline: float | None = None
        self._delays: Iterator[float] | None = None
        self._since = 0.0
        self._delay: float | None = None
        self._done = False
        self._number = 0
        self._start = self._started = 0.0
        self._listening: object = False

    def __aiter__(self) -> Attempts:
        return self

    async def __anext__(self) -> Attempt:
        if not _clock.asyncio_seen:
            _clock.first_call()
        if self._done:
            raise StopAsyncIteration
        if not self._number:
            policy = self._policy
            listening = policy._listeners or global_listeners or _pipeline_listeners()
            self._listening = listening
            # As in ``call``: the clock is read only for a deadline or a listener.
            if listening or policy.deadline is not None:
                self._start = self._started = _clock.now()
            if policy.budget is not None:
                policy.budget.deposit()
        elif self._delay is None:
            # The previous block ended without an exception: the work is done.
            self._done = True
            raise StopAsyncIteration
        else:
            delay, self._delay = self._delay, None
            await _clock.sleep(delay)
            # Asked again for each attempt, as ``call`` does.
            policy = self._policy
            self._listening = listening = (
                policy._listeners or global_listeners or _pipeline_listeners()
            )
            if listening:
                self._started = _clock.now()
        self._number += 1
        return Attempt(self, self._number)

    def _finished(self, exc: BaseException | None) -> bool:
        policy, listening = self._policy, self._listening
        if listening:
            policy._attempt_done(self._number, self._started, exc, False)
        if exc is None or (type(exc) not in policy._known and not policy._matches(exc)):
            self._done = True
            if exc is None and policy.budget is not None:
                policy.budget.succeeded()
            if exc is not None and self._number > 1 and not never_handled(exc):
                note(exc, NOT_RETRIED, f"{NOT_RETRIED}: attempt {self._number} raised it")
            return False
        now = _clock.now()
        if not self._failed:
            self._failed = True
            self._since = now
            # The deadline counts from the loop's start (read whenever there is a deadline).
            self._deadline = deadline_of(policy, self._start)
            self._delays = delays_of(policy)
        number = self._number
        delay = next_delay(policy, number, self._deadline, self._delays, exc, NO_RESULT, now)
        if isinstance(delay, str):
            self._done = True
            # Adds the note; ``exc`` propagates as is.
            policy._give_up(number, now - self._since, exc, NO_RESULT, listening, delay)
            return False
        self._delay = delay
        if listening:
            emit(
                policy._listeners,
                RetryScheduled(policy.name, number, delay, now - self._since, exc, None),
            )
        return True
