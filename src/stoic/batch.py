"""Partial failure: run many awaitables, keep what succeeded and what failed, in input order.

A batch of independent calls (fetch these 500 urls) should not be lost because a few of them
failed, and should stop early when too many do::

    pages, errors = await gather_partial(*(fetch(url) for url in urls), max_failures=10)

    outcomes = await gather_outcomes(fetch(a), fetch(b))     # one Outcome per awaitable
    for url, outcome in zip(urls, outcomes):
        print(url, outcome.value if outcome.ok else outcome.error)

    # Large or endless inputs: at most 20 calls at once, items pulled only as slots free up.
    pages, errors = await map_partial(fetch, read_urls(), concurrency=20, max_failures=10)

Only ``Exception`` is a failure. Reaching ``max_failures`` cancels the work still running,
starts nothing more, and returns once the cancelled tasks have finished unwinding. When the
caller is cancelled, or a task raises a ``BaseException`` (``KeyboardInterrupt``,
``SystemExit``, ...), every task still running is cancelled and awaited, then the exception
propagates. Either way no task is left running behind the call.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from stoic._strategy import T

__all__ = ["Outcome", "gather_outcomes", "gather_partial", "map_outcomes", "map_partial"]

ItemT = TypeVar("ItemT")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """How one awaitable ended: with a ``value``, or with an ``error``.

    ``ok`` is true when there is no error. ``unwrap()`` returns the value or raises the error.
    ``error`` is an ``Exception``, or the ``asyncio.CancelledError`` of a task that was
    cancelled by something other than the batch's caller.
    """

    value: T | None = None
    error: BaseException | None = None

    def __post_init__(self) -> None:
        if self.error is not None and self.value is not None:
            raise ValueError("an Outcome holds a value or an error, not both")

    def __repr__(self) -> str:
        if self.error is None:
            return f"Outcome(value={self.value!r})"
        return f"Outcome(error={self.error!r})"

    @property
    def ok(self) -> bool:
        """True when the awaitable returned (its value may be ``None``)."""
        return self.error is None

    def unwrap(self) -> T:
        """The value; raises the error instead when the awaitable failed."""
        if self.error is not None:
            raise self.error
        return cast(T, self.value)


async def gather_partial(
    *aws: Awaitable[T], max_failures: int | None = None
) -> tuple[list[T], list[Exception]]:
    """Await every awaitable concurrently; return ``(successes, failures)``, each in input order.

    - ``max_failures``: stop at this many failures (int >= 1, default ``None``: never stop
      early). Stopping cancels the tasks still running and returns once they have unwound;
      their results are in neither list. Failures that land in the same event-loop step, or
      that a task raises while being cancelled, are kept too, so ``failures`` can be longer.

    A task that ends cancelled by something other than this call, or that raises a
    ``BaseException``, cancels the rest and its exception propagates (like ``asyncio.gather``).
    """
    try:
        _check_limit(max_failures, "max_failures")
    except (TypeError, ValueError):
        _close_coroutines(aws)
        raise
    batch: _Batch[T] = _Batch(max_failures=max_failures)
    source = iter(aws)
    try:
        outcomes = await batch.run(source)
    except BaseException:
        _close_coroutines(source)  # left unstarted when starting an earlier one raised
        raise
    return _split(outcomes)


async def gather_outcomes(*aws: Awaitable[T]) -> list[Outcome[T]]:
    """Await every awaitable concurrently; return one ``Outcome`` per awaitable, in input order.

    A task's ``Exception`` never raises here: it is that task's outcome, and so is the
    ``CancelledError`` of a task cancelled by something else. When the caller is cancelled or a
    task raises another ``BaseException``, the other tasks are cancelled and awaited, then the
    exception propagates.
    """
    batch: _Batch[T] = _Batch(cancelled_is_outcome=True)
    source = iter(aws)
    try:
        outcomes = await batch.run(source)
    except BaseException:
        _close_coroutines(source)
        raise
    # Nothing stops an outcome batch early, so every slot is filled.
    return cast(list[Outcome[T]], outcomes)


async def map_partial(
    fn: Callable[[ItemT], Awaitable[T]],
    items: Iterable[ItemT],
    /,
    *,
    concurrency: int | None = None,
    max_failures: int | None = None,
) -> tuple[list[T], list[Exception]]:
    """Await ``fn(item)`` for every item; return ``(successes, failures)``, each in input order.

    - ``concurrency``: most calls running at once (int >= 1, default ``None``: no limit). Items
      are pulled from ``items`` lazily, one each time a slot frees up, so a generator of a
      million items is never turned into a million tasks.
    - ``max_failures``: stop at this many failures (int >= 1, default ``None``: never stop
      early): cancel the calls still running, pull no more items, and return once the
      cancelled calls have unwound. As with ``gather_partial``, ``failures`` can be longer
      when several calls fail in the same event-loop step.

    An exception raised by ``items`` itself, or by calling ``fn`` (rather than awaiting what
    it returns), cancels the calls running and propagates; so do cancellation and
    ``BaseException``, as for ``gather_partial``.
    """
    _check_limit(concurrency, "concurrency")
    _check_limit(max_failures, "max_failures")
    batch: _Batch[T] = _Batch(concurrency=concurrency, max_failures=max_failures)
    return _split(await batch.run(map(fn, items)))


async def map_outcomes(
    fn: Callable[[ItemT], Awaitable[T]],
    items: Iterable[ItemT],
    /,
    *,
    concurrency: int | None = None,
) -> list[Outcome[T]]:
    """Await ``fn(item)`` for every item; return one ``Outcome`` per item, in input order.

    ``concurrency`` and the lazy pulling of ``items`` work as in ``map_partial``; failures are
    recorded as in ``gather_outcomes``.
    """
    _check_limit(concurrency, "concurrency")
    batch: _Batch[T] = _Batch(concurrency=concurrency, cancelled_is_outcome=True)
    return cast(list[Outcome[T]], await batch.run(map(fn, items)))


class _Batch(Generic[T]):
    """One run of a batch: starts the awaitables, records how each ended, stops when told.

    Completion is observed with done callbacks, so each task costs O(1) however many run; the
    driving coroutine is woken only when it has something to do (a free slot, a stop, the end).
    """

    __slots__ = (
        "_cancelled_is_outcome",
        "_cancelling",
        "_concurrency",
        "_failures",
        "_fatal",
        "_max_failures",
        "_running",
        "_stop",
        "_waiter",
        "outcomes",
    )

    def __init__(
        self,
        *,
        concurrency: int | None = None,
        max_failures: int | None = None,
        cancelled_is_outcome: bool = False,
    ) -> None:
        self._concurrency = concurrency
        self._max_failures = max_failures
        self._cancelled_is_outcome = cancelled_is_outcome
        #: One slot per started awaitable, filled when it ends; ``None`` if it never did.
        self.outcomes: list[Outcome[T] | None] = []
        self._running: set[asyncio.Future[T]] = set()
        self._waiter: asyncio.Future[None] | None = None
        self._failures = 0
        self._fatal: BaseException | None = None
        self._stop = False  # start nothing more, cancel what runs
        self._cancelling = False  # from now on a cancelled task was cancelled by us

    async def run(self, source: Iterator[Awaitable[T]]) -> list[Outcome[T] | None]:
        """Start and await everything ``source`` yields; raise what must propagate."""
        try:
            await self._drive(source)
        finally:
            if self._running:
                await self._cancel_running()
        if self._fatal is not None:
            raise self._fatal
        return self.outcomes

    async def _drive(self, source: Iterator[Awaitable[T]]) -> None:
        limit = self._concurrency
        for awaitable in source:
            self._start(awaitable)
            # Wait for a free slot *before* pulling the next item, so the source is only
            # consumed as fast as the work goes.
            while limit is not None and len(self._running) >= limit and not self._stop:
                await self._wait()
            if self._stop:
                return
        while self._running and not self._stop:
            await self._wait()

    def _start(self, awaitable: Awaitable[T]) -> None:
        task = asyncio.ensure_future(awaitable)
        index = len(self.outcomes)
        self.outcomes.append(None)
        self._running.add(task)
        task.add_done_callback(functools.partial(self._settle, index))

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _settle(self, index: int, task: asyncio.Future[T]) -> None:
        """Done callback: record how the task ended and wake the driver if it must act."""
        self._running.discard(task)
        if task.cancelled():
            if self._cancelling:
                return
            try:
                task.result()
            except asyncio.CancelledError as cancelled:
                if self._cancelled_is_outcome:
                    self.outcomes[index] = Outcome(error=cancelled)
                else:
                    self._halt(cancelled)
        else:
            error = task.exception()
            if error is None:
                self.outcomes[index] = Outcome(value=task.result())
            elif isinstance(error, Exception):
                self.outcomes[index] = Outcome(error=error)
                self._failures += 1
                if self._max_failures is not None and self._failures >= self._max_failures:
                    self._stop = True
            else:
                self._halt(error)
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._stop or not self._running or self._concurrency is not None:
            waiter.set_result(None)

    def _halt(self, error: BaseException) -> None:
        if self._fatal is None:
            self._fatal = error
        self._stop = True

    async def _cancel_running(self) -> None:
        """Cancel every task still running and wait until all of them have unwound."""
        self._cancelling = True
        for task in self._running:
            task.cancel()
        interrupted: asyncio.CancelledError | None = None
        while self._running:
            try:
                await asyncio.wait(self._running)
            except asyncio.CancelledError as cancelled:
                # Cancelled again while the tasks unwind: finish waiting so none is left
                # running, then let the cancellation through.
                interrupted = cancelled
        if interrupted is not None:
            raise interrupted


def _split(outcomes: list[Outcome[T] | None]) -> tuple[list[T], list[Exception]]:
    successes: list[T] = []
    failures: list[Exception] = []
    for outcome in outcomes:
        if outcome is None:
            continue
        if outcome.error is None:
            successes.append(cast(T, outcome.value))
        else:
            # Partial batches record only Exceptions; anything else halted the batch.
            failures.append(cast(Exception, outcome.error))
    return successes, failures


def _check_limit(value: int | None, parameter: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{parameter} must be an int >= 1 or None, got {value!r}")
    if value < 1:
        raise ValueError(f"{parameter} must be >= 1 or None, got {value!r}")


def _close_coroutines(aws: Iterable[object]) -> None:
    """Close coroutine objects that will never be awaited, so they warn about nothing."""
    for awaitable in aws:
        if inspect.iscoroutine(awaitable):
            awaitable.close()
