"""Retry: run a call again when it fails, with backoff, a deadline and server hints.

One ``Retry`` policy serves any number of concurrent calls: every call keeps its own attempt
count, backoff sequence and deadline in local state, never on the policy.

Three forms, same engine::

    policy = Retry(attempts=5, on=ConnectionError, deadline=30.0)

    result = await policy.call(fetch, url)          # a strategy

    @retry(attempts=5, on=ConnectionError)          # a decorator (signature kept)
    async def fetch(url: str) -> bytes: ...

    async for attempt in policy:                    # an attempt loop around a block
        with attempt:
            result = await fetch(url)

Giving up re-raises the caller's own last exception, with a note (``add_note``) saying how
many attempts ran and how long it took. If the last outcome was a *result* rejected by
``on_result``, ``ResultRejected`` is raised, carrying that result.
"""

from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import (
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
)
from contextvars import Token
from typing import Any, Literal

from stoic import _clock, _validate
from stoic._classify import (
    ExceptionFilter,
    Matcher,
    check_awaited,
    compile_matcher,
    never_handled,
    note,
)
from stoic._context import attempt_var
from stoic._events import (
    Listener,
    emit,
    global_listeners,
    pipeline_listeners,
    validate_listeners,
)
from stoic._retry.attempts import Attempts
from stoic._retry.budget import AnyRetryBudget, RetryBudget, TokenRetryBudget
from stoic._retry.events import GiveUpReason, RetryGaveUp, RetryScheduled, new_attempt_completed
from stoic._retry.matching import KNOWN_MAX, matched_by_type, overlap
from stoic._retry.plan import GAVE_UP, NO_RESULT, NOT_RETRIED, deadline_of, delays_of, next_delay
from stoic._strategy import Frozen, P, T, set_field as _set
from stoic.backoff import Backoff, exponential
from stoic.exceptions import ResultRejected

__all__ = ["Retry"]


class Retry(Frozen):
    """A retry policy. Immutable; safe to share across call sites and concurrent calls.

    Options (all keyword-only; seconds are floats):

    - ``attempts=3``: total attempts including the first (>= 1). Never infinite by default.
    - ``on=Exception``: exception types, or a predicate, that are worth another attempt.
      Exception groups are retried when every leaf matches. Cancellation,
      ``KeyboardInterrupt``, ``SystemExit`` and ``GeneratorExit`` are never retried.
    - ``on_result=None``: predicate on a return value; ``True`` asks for another attempt.
    - ``backoff=exponential()``: a ``stoic.backoff`` policy (0.2 s doubling to 10 s, full
      jitter).
    - ``deadline=None``: total seconds for all attempts and waits. A wait that would end at or
      past it is not started (the call gives up at once instead), so no attempt starts after
      it. A running attempt is not interrupted: wrap it in ``timeout`` for that. An enclosing
      ``timeout``'s deadline is honoured the same way.
    - ``delay_hint=None``: callable receiving the exception (or the rejected result) and
      returning seconds to wait, or ``None`` to use the backoff (e.g. ``Retry-After``). A
      hint that raises or returns a non-number is logged and ignored.
    - ``max_delay=60.0``: cap on any single wait, hints included.
    - ``name=None``, ``listeners=()``: for the ``RetryScheduled`` and ``RetryGaveUp`` events.
    - ``random=random.random``: the source of jitter, injectable for tests.

    ``elapsed`` (in events and in the give-up note) counts from the end of the first failed
    attempt: the time spent retrying, whatever the options. (The happy path reads no clock
    unless a ``deadline`` or a listener needs the call's start: on some machines a clock
    read costs as much as the rest of the call.) Events are built only when someone can
    receive them: the policy's listeners, those of the pipelines the call runs in, or global
    ones, decided per call.

    Immutable: ``with_(attempts=5)`` makes a changed copy.
    """

    __slots__ = (
        "_known",
        "_listeners",
        "_match",
        "_on",
        "_per_retry",
        "_random",
        "attempts",
        "backoff",
        "budget",
        "deadline",
        "delay_hint",
        "max_delay",
        "name",
        "on_result",
    )
    attempts: int
    on_result: Callable[[Any], bool] | None
    backoff: Backoff
    budget: AnyRetryBudget | None
    deadline: float | None
    delay_hint: Callable[[Any], float | None] | None
    max_delay: float
    name: str | None
    _on: ExceptionFilter
    _match: Matcher
    _known: dict[type[BaseException], None]
    _listeners: tuple[Listener, ...]
    _per_retry: Callable[[int, Callable[[], float]], float] | None
    _random: Callable[[], float]

    def __init__(
        self,
        *,
        attempts: int = 3,
        on: ExceptionFilter = Exception,
        on_result: Callable[[Any], bool] | None = None,
        backoff: Backoff | None = None,
        deadline: float | None = None,
        delay_hint: Callable[[Any], float | None] | None = None,
        max_delay: float = 60.0,
        name: str | None = None,
        listeners: Iterable[Listener] = (),
        random: Callable[[], float] = random.random,
        budget: AnyRetryBudget | None = None,
    ) -> None:
        _set(self, "attempts", _validate.count(attempts, "attempts"))
        if budget is not None:
            _validate.instance(
                budget, "budget", (RetryBudget, TokenRetryBudget), "a stoic.RetryBudget"
            )
        _set(self, "budget", budget)
        if deadline is not None:
            deadline = _validate.seconds(deadline, "deadline", positive=True, optional=True)
        max_delay = _validate.seconds(max_delay, "max_delay")
        if backoff is not None:
            _validate.instance(backoff, "backoff", Backoff, "a stoic.backoff policy")
        if on_result is not None:
            _validate.function(on_result, "on_result", "a predicate on the result")
        if delay_hint is not None:
            _validate.function(delay_hint, "delay_hint", "a function returning seconds or None")
        if random is not _DEFAULT_RANDOM:
            _validate.function(
                random, "random", "a function returning floats in [0, 1)", optional=False
            )
        _set(self, "_on", on)
        _set(self, "_match", compile_matcher(on, parameter="on"))
        # Exact exception types that ``on`` matches whatever the instance: a memo of the
        # matcher's verdicts, filled in place (see ``_retryable``), not state.
        _set(self, "_known", {})
        _set(self, "on_result", on_result)
        # The backoff's delay as a function of the retry's number, when it has one: a retry
        # then starts no iterator (``plan.next_delay``).
        if backoff is None:
            _set(self, "backoff", _DEFAULT_BACKOFF)
            _set(self, "_per_retry", _DEFAULT_PER_RETRY)
        else:
            _set(self, "backoff", backoff)
            _set(self, "_per_retry", backoff.per_retry())
        _set(self, "deadline", deadline)
        _set(self, "delay_hint", delay_hint)
        _set(self, "max_delay", max_delay)
        _set(self, "name", _validate.name(name))
        _set(self, "_listeners", validate_listeners(listeners))
        _set(self, "_random", random)

    def options(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "on": self._on,
            "on_result": self.on_result,
            "backoff": self.backoff,
            "deadline": self.deadline,
            "delay_hint": self.delay_hint,
            "max_delay": self.max_delay,
            "name": self.name,
            "listeners": self._listeners,
            "random": self._random,
            "budget": self.budget,
        }

    def __repr__(self) -> str:
        parts = [f"attempts={self.attempts}", f"on={self._on!r}", f"backoff={self.backoff!r}"]
        for label in ("on_result", "deadline", "delay_hint", "budget", "name"):
            value = getattr(self, label)
            if value is not None:
                parts.append(f"{label}={value!r}")
        return f"Retry({', '.join(parts)})"

    @property
    def on(self) -> ExceptionFilter:
        """The ``on=`` option as given: exception types or a predicate."""
        return self._on

    @property
    def listeners(self) -> tuple[Listener, ...]:
        """The policy's own listeners."""
        return self._listeners

    # -- hooks for pipelines and config ------------------------------------------------------

    kind = "retry"

    def describe(self) -> str:
        deadline = "" if self.deadline is None else f", deadline {self.deadline:g}s"
        name = "" if self.name is None else f" [{self.name}]"
        return f"retry: {self.attempts} attempts, backoff {self.backoff!r}{deadline}{name}"

    def check_inside(self, inner: Any, where: str) -> None:
        if isinstance(inner, Retry):
            raise ValueError(
                f"{where}: nested retries multiply attempts ({self.attempts} x "
                f"{inner.attempts} = {self.attempts * inner.attempts}); keep one retry "
                "(validate=False to insist)"
            )
        if overlap(self._on, getattr(inner, "answers", None)):
            raise ValueError(
                f"{where}: a fallback inside a retry answers the failures the retry is for, so "
                "the retry never sees them; put the fallback outside the retry"
            )

    def check_outside(self, outer: Any, where: str) -> None:
        limit = getattr(outer, "time_limit", None)
        if self.deadline is not None and limit is not None and self.deadline > limit:
            raise ValueError(
                f"{where}: the retry deadline ({self.deadline:g}s) is longer than the timeout "
                f"around it ({limit:g}s); the timeout cuts it first"
            )

    def to_config(self) -> dict[str, Any]:
        from stoic import _configuration

        for hook in ("on_result", "delay_hint"):
            if getattr(self, hook) is not None:
                raise ValueError(f"retry {hook} is a function, which config cannot express")
        if self.budget is not None:
            raise ValueError(
                "retry budget is an object shared by call sites, which config cannot express"
            )
        return _configuration.without_none(
            {
                "attempts": self.attempts,
                "on": _configuration.exception_names(self._on, "retry on"),
                "backoff": _configuration.backoff_config(self.backoff),
                "deadline": self.deadline,
                "max_delay": self.max_delay,
                "name": self.name,
            }
        )

    @classmethod
    def from_config(cls, options: Mapping[str, Any], where: str) -> Retry:
        from stoic import _configuration

        allowed = ("attempts", "on", "backoff", "deadline", "max_delay", "name")
        _configuration.check_keys(options, allowed, where)
        options = dict(options)
        if "on" in options:
            options["on"] = _configuration.exceptions(options["on"], f"{where}.on")
        if "backoff" in options:
            options["backoff"] = _configuration.backoff(options["backoff"], f"{where}.backoff")
        return cls(**options)

    # -- the call and decorator forms -------------------------------------------------------

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` under this policy and return its result."""
        if not _clock.asyncio_seen:
            _clock.first_call()
        listening = self._listeners or global_listeners or _pipeline_listeners()
        start = _clock.now() if listening or self.deadline is not None else 0.0
        budget = self.budget
        if budget is not None:
            budget.deposit()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            if type(exc) not in self._known and not self._retryable(exc, fn, args):
                if listening:
                    self._attempt_done(1, start, exc, False)
                raise
            failure: BaseException | None = exc
            result = NO_RESULT
        else:
            if self.on_result is None or not self.on_result(result):
                if budget is not None:
                    budget.succeeded()
                if listening:  # ``_attempt_done`` of a success, inlined: the listened happy path
                    emit(
                        self._listeners,
                        new_attempt_completed(self.name, 1, _clock.now() - start, "success", None),
                    )
                return result
            failure = None
        # Retried outside the ``except`` block, so later errors do not chain to this one.
        retrying = self._retry(fn, args, kwargs, start, listening, failure, result)
        failure = None  # the retry loop holds it now (and drops it before it waits)
        return await retrying

    def _decorate(self, fn: Callable[P, Awaitable[T]], /) -> Callable[P, Coroutine[Any, Any, T]]:
        """The decorator form; the signature is kept.

        The body of ``call``, inlined (one coroutine per call instead of two); the twin tests
        in ``tests/retry/test_retry.py`` run every behaviour through both.
        """
        on_result, policy, retry_ = self.on_result, self, self._retry
        own, deadline, name, budget = self._listeners, self.deadline, self.name, self.budget

        @functools.wraps(fn)
        async def retrying(*args: P.args, **kwargs: P.kwargs) -> T:
            if not _clock.asyncio_seen:
                _clock.first_call()
            listening = own or global_listeners or _pipeline_listeners()
            start = _clock.now() if listening or deadline is not None else 0.0
            if budget is not None:
                budget.deposit()
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                if type(exc) not in policy._known and not policy._retryable(exc, fn, args):
                    if listening:
                        policy._attempt_done(1, start, exc, False)
                    raise
                failure: BaseException | None = exc
                result = NO_RESULT
            else:
                if on_result is None or not on_result(result):
                    if budget is not None:
                        budget.succeeded()
                    if listening:  # as in ``call``
                        emit(
                            own,
                            new_attempt_completed(name, 1, _clock.now() - start, "success", None),
                        )
                    return result
                failure = None
            again = retry_(fn, args, kwargs, start, listening, failure, result)
            failure = None  # the retry loop holds it now (and drops it before it waits)
            return await again

        return retrying

    def resume(
        self,
        exc: BaseException,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Coroutine[Any, Any, T] | None:
        """The rest of a call whose first attempt another driver ran and saw raise ``exc``.

        For the pipeline's fused layer, which runs the first attempt of a policy with no
        deadline, no ``on_result`` and nobody listening: ``None`` when ``exc`` is not retried
        (re-raise it), else the retry loop over ``fn(*args, **kwargs)``, to await. A policy
        with a deadline or ``on_result`` needs the call's start and result: ``ValueError``.
        """
        if self.deadline is not None or self.on_result is not None or self.budget is not None:
            raise ValueError(
                "Retry.resume continues a policy without deadline, on_result or budget only; "
                "this one has one, so run the whole call through it (call, or the decorator)"
            )
        if type(exc) not in self._known and not self._retryable(exc, fn, args):
            return None
        return self._retry(fn, args, kwargs, 0.0, False, exc, NO_RESULT)

    def _retryable(self, exc: BaseException, fn: Any, args: tuple[Any, ...]) -> bool:
        """Whether ``on`` matches ``exc``; learns the types it matches whatever the instance.

        Raises ``NotAwaitable`` instead when ``exc`` is the failure to await what ``fn``
        returned: never retried (``TypeError`` is never remembered, so this always runs).

        The drivers test ``type(exc) in self._known`` first: a dict lookup instead of the
        matcher's ``isinstance`` checks. The memo only grows (to ``KNOWN_MAX`` types), one
        key at a time, which concurrent calls (threads included) can read while it does. A
        remembered class keeps its verdict if its ``__bases__`` is later reassigned (the one
        change to a class that can alter ``isinstance``; not worth a check on every failure).
        """
        if type(exc) is TypeError:
            check_awaited(fn, args, exc)
        return self._matches(exc)

    def _matches(self, exc: BaseException) -> bool:
        """Whether ``on`` matches ``exc``, remembering its type when the type decides."""
        if not self._match(exc):
            return False
        cls, known = type(exc), self._known
        if cls not in known and len(known) < KNOWN_MAX and matched_by_type(cls, self._on):
            known[cls] = None
        return True

    async def _retry(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        start: float,
        listening: object,
        exc: BaseException | None,
        result: Any,
    ) -> T:
        """The retry loop, after the first attempt failed (``exc``) or was rejected (``result``).

        ``listening``, decided by the driver for the first attempt and again before each
        later one, says whether to time attempts and build events.
        """
        failed_at = _clock.now()
        if listening:
            self._attempt_done(1, start, exc, exc is None)
        # The deadline counts from the call's start (read whenever there is a deadline).
        deadline = deadline_of(self, start)
        delays = delays_of(self)
        attempt, now = 1, failed_at
        in_context: Token[int] | None = None
        try:
            while True:
                delay = next_delay(self, attempt, deadline, delays, exc, result, now)
                if isinstance(delay, str):
                    raise self._give_up(attempt, now - failed_at, exc, result, listening, delay)
                if listening:
                    emit(
                        self._listeners,
                        RetryScheduled(
                            self.name, attempt, delay, now - failed_at, exc, _result(result)
                        ),
                    )
                # Not held while waiting: a live exception keeps its traceback's frames alive
                # for the whole wait (in a hand-written loop, holding it cost ~10% per call).
                exc = None
                await _clock.sleep(delay)
                # Asked again for each attempt (cheap, off the happy path): a listener added
                # while the call runs sees the rest of it. Asked before the context changes:
                # setting a context variable empties every variable's lookup cache.
                listening = self._listeners or global_listeners or _pipeline_listeners()
                attempt += 1
                if in_context is None:
                    in_context = attempt_var.set(attempt)
                else:
                    attempt_var.set(attempt)
                started = _clock.now() if listening else 0.0
                try:
                    # ``fn(*args, **kwargs)`` copies ``kwargs`` into a new dict on every call.
                    result = await (fn(*args, **kwargs) if kwargs else fn(*args))
                except BaseException as error:
                    if type(error) not in self._known and not self._retryable(error, fn, args):
                        if listening:
                            self._attempt_done(attempt, started, error, False)
                        if not never_handled(error):  # cancellation passes untouched
                            note(
                                error,
                                NOT_RETRIED,
                                f"{NOT_RETRIED}: attempt {attempt} raised it",
                            )
                        raise
                    if listening:
                        self._attempt_done(attempt, started, error, False)
                    exc, result = error, NO_RESULT
                    now = _clock.now()
                    continue
                rejected = self.on_result is not None and self.on_result(result)
                if listening:
                    self._attempt_done(attempt, started, None, rejected)
                if rejected:
                    exc = None
                    now = _clock.now()
                    continue
                if self.budget is not None:
                    self.budget.succeeded()
                return result  # type: ignore[no-any-return]
        finally:
            if in_context is not None:
                attempt_var.reset(in_context)
            # The exception's traceback holds this frame: drop the frame's hold on it, or
            # each retried call would leave a reference cycle for the garbage collector.
            exc = None

    def _attempt_done(
        self, attempt: int, started: float, exc: BaseException | None, rejected: bool
    ) -> None:
        """Report one finished attempt (the caller knows someone listens); cancellation is not
        reported."""
        if exc is not None and never_handled(exc):
            return
        outcome: Literal["success", "failure", "rejected"] = (
            "failure" if exc is not None else "rejected" if rejected else "success"
        )
        duration = _clock.now() - started
        emit(self._listeners, new_attempt_completed(self.name, attempt, duration, outcome, exc))

    def _give_up(
        self,
        attempts: int,
        elapsed: float,
        exc: BaseException | None,
        result: Any,
        listening: object,
        reason: GiveUpReason,
    ) -> BaseException:
        """Emit ``RetryGaveUp`` after ``attempts``, ``elapsed`` seconds after the first
        failure; return what to raise: ``exc`` noted, or ``ResultRejected``."""
        if listening:
            emit(
                self._listeners,
                RetryGaveUp(self.name, attempts, elapsed, exc, _result(result), reason),
            )
        why = _WHY[reason]
        if exc is None:
            rejected = ResultRejected(result, attempts, elapsed)
            rejected.add_note(f"{GAVE_UP}: {why}")
            target: BaseException = rejected
        else:
            text = (
                f"{GAVE_UP} after {attempts} attempt(s), {elapsed:.3f}s after the first "
                f"failure: {why}"
            )
            note(exc, GAVE_UP, text)
            target = exc
        if reason == "budget" and self.budget is not None:
            _tell_retry_after(target, self.budget.retry_after())
        return target

    # -- the attempt-loop form --------------------------------------------------------------

    def __aiter__(self) -> Attempts:
        """``async for attempt in policy: with attempt: ...`` retries the block.

        A block has no result to test: a policy with ``on_result`` raises ``TypeError``.
        """
        if self.on_result is not None:
            raise TypeError(
                "async for attempt in policy: a block has no result for on_result to test; "
                "use policy.call(fn) or the decorator, or a policy without on_result"
            )
        return Attempts(self)


_WHY = {
    "attempts": "no attempts left",
    "deadline": "the deadline allows no further attempt",
    "budget": "the retry budget is spent",
}


def _tell_retry_after(exc: BaseException, seconds: float | None) -> None:
    """Give ``exc`` a ``retry_after`` (an outer loop's hint to back off) unless it has one
    of its own; one stoic gave it earlier (the same error raised again) is brought up to date."""
    if seconds is None:
        return
    if getattr(exc, "retry_after", None) is not None and not getattr(exc, _OURS, False):
        return
    with contextlib.suppress(AttributeError):  # an exception class with __slots__
        exc.retry_after = seconds  # type: ignore[attr-defined]
        setattr(exc, _OURS, True)


_OURS = "_stoic_retry_after"


def _result(result: Any) -> Any:
    return None if result is NO_RESULT else result


# Who listens beyond the policy: read per call, so bound once (a truthy tuple or list).
_pipeline_listeners = pipeline_listeners.get
_DEFAULT_RANDOM = random.random  # the parameter shadows the module in ``__init__``
# Backoffs are immutable: every policy without one of its own shares this one.
_DEFAULT_BACKOFF = exponential()
_DEFAULT_PER_RETRY = _DEFAULT_BACKOFF.per_retry()
