"""Bulkhead: cap how many calls run at once, with a bounded FIFO queue behind them.

A bulkhead isolates one dependency: however slow it gets, it can tie up at most
``max_concurrent`` tasks, and at most ``max_waiting`` more wait for a slot. Anything beyond
that is rejected at once with ``BulkheadFull``, so an outage sheds load instead of piling up
tasks, sockets and memory::

    external_api_bulkhead = Bulkhead(max_concurrent=10, max_waiting=50, timeout=30.0)
    await external_api_bulkhead.call(post_order, order)

    @Bulkhead(max_concurrent=4)
    async def render(page: Page) -> bytes: ...

    async with external_api_bulkhead:
        await client.post("/api", json=data)

Waiters are served first come, first served: a released slot goes straight to the oldest
waiter, and new arrivals never overtake the queue. A cancelled call, waiting or running, gives
its place back. The uncontended path is two integer operations, no lock and no future.
A bulkhead may be shared by tasks of several event loops (threads): a slot freed on one loop
wakes a waiter of another through that loop's thread-safe ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NoReturn

from stoic import _clock, _validate
from stoic._classify import check_awaited
from stoic._events import Event, Listener, Severity, emit, validate_listeners
from stoic._strategy import P, Strategy, T
from stoic.exceptions import BulkheadFull

__all__ = ["Bulkhead", "BulkheadStatistics", "CallRejectedByBulkhead"]


@dataclass(frozen=True, slots=True)
class CallRejectedByBulkhead(Event):
    """The bulkhead refused a call; the wrapped function was not called.

    ``reason`` is ``"full"`` (every slot taken and the queue full) or ``"timeout"`` (the call
    waited ``timeout`` seconds without getting a slot). ``running`` and ``waiting`` are the
    counts at the moment of rejection.
    """

    severity: ClassVar[Severity] = Severity.WARNING
    reason: Literal["full", "timeout"]
    running: int
    waiting: int
    max_concurrent: int
    max_waiting: int


@dataclass(frozen=True, slots=True)
class BulkheadStatistics:
    """A snapshot of a bulkhead's state (``Bulkhead.statistics()``).

    ``running`` calls hold a slot now and ``waiting`` calls are queued for one; ``admitted``
    and ``rejected`` count calls since the bulkhead was created.
    """

    max_concurrent: int
    max_waiting: int
    running: int
    waiting: int
    admitted: int
    rejected: int


class Bulkhead(Strategy):
    """Run at most ``max_concurrent`` calls at once; queue up to ``max_waiting`` more.

    - ``max_concurrent``: calls allowed to run at the same time (int >= 1).
    - ``max_waiting``: calls allowed to wait for a slot *beyond* the running ones (int >= 0,
      default 0: no queue, a call that finds every slot taken is rejected at once).
    - ``timeout``: seconds a call may wait for a slot (default ``None``: as long as it takes).
      It bounds the wait only, never the call itself; ``0`` means never wait. A wait that
      runs out raises ``BulkheadFull``.
    - ``name``: carried by events; ``listeners``: callables receiving each event.

    Raises ``BulkheadFull`` (a ``stoic.exceptions.RejectedCall``) when the call is refused;
    the wrapped function's own exceptions pass through untouched. Use it as
    ``await bulkhead.call(fn, *args, **kwargs)``, as a decorator, or as
    ``async with bulkhead:``; one bulkhead object is meant to be shared by many tasks.
    """

    __slots__ = (
        "_admitted",
        "_listeners",
        "_max_concurrent",
        "_max_waiting",
        "_name",
        "_rejected",
        "_running",
        "_timeout",
        "_waiters",
    )

    def __init__(
        self,
        max_concurrent: int,
        max_waiting: int = 0,
        timeout: float | None = None,
        *,
        name: str | None = None,
        listeners: Iterable[Listener] = (),
    ) -> None:
        self._max_concurrent = _validate.count(max_concurrent, "max_concurrent")
        self._max_waiting = _validate.count(max_waiting, "max_waiting", minimum=0)
        if timeout is not None:
            timeout = _validate.seconds(timeout, "timeout", optional=True)
        self._timeout = timeout
        self._name = _validate.name(name)
        self._listeners = validate_listeners(listeners)
        self._running = 0
        # Futures of queued calls, oldest first. A future resolves to True when a slot is
        # handed to it and to False when its wait timed out; both remove it from the queue
        # first, so a done future still queued is always a cancelled one.
        self._waiters: deque[asyncio.Future[bool]] = deque()
        self._admitted = 0
        self._rejected = 0

    def __repr__(self) -> str:
        return (
            f"Bulkhead(max_concurrent={self._max_concurrent}, max_waiting={self._max_waiting}, "
            f"timeout={self._timeout!r}, name={self._name!r})"
        )

    @property
    def max_concurrent(self) -> int:
        """Calls allowed to run at the same time."""
        return self._max_concurrent

    @property
    def max_waiting(self) -> int:
        """Calls allowed to wait for a slot beyond the running ones."""
        return self._max_waiting

    @property
    def timeout(self) -> float | None:
        """Seconds a call may wait for a slot (``None``: no limit)."""
        return self._timeout

    @property
    def name(self) -> str | None:
        """The name carried by this bulkhead's events."""
        return self._name

    # -- hooks for pipelines and config ------------------------------------------------------

    kind = "bulkhead"

    def describe(self) -> str:
        wait = "" if self._timeout is None else f", waits at most {self._timeout:g}s"
        name = "" if self._name is None else f" [{self._name}]"
        return f"bulkhead: {self._max_concurrent} at once, {self._max_waiting} queued{wait}{name}"

    def to_config(self) -> dict[str, Any]:
        from stoic._configuration import without_none

        return without_none(
            {
                "max_concurrent": self._max_concurrent,
                "max_waiting": self._max_waiting,
                "timeout": self._timeout,
                "name": self._name,
            }
        )

    @classmethod
    def from_config(cls, options: Mapping[str, Any], where: str) -> Bulkhead:
        from stoic._configuration import check_keys

        check_keys(options, ("max_concurrent", "max_waiting", "timeout", "name"), where)
        return cls(**options)

    def statistics(self) -> BulkheadStatistics:
        """A frozen snapshot of the current counts."""
        return BulkheadStatistics(
            max_concurrent=self._max_concurrent,
            max_waiting=self._max_waiting,
            running=self._running,
            waiting=self._live_waiters(),
            admitted=self._admitted,
            rejected=self._rejected,
        )

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``await fn(*args, **kwargs)`` once a slot is free; raise ``BulkheadFull`` if none.

        Returns what ``fn`` returns and raises what it raises.
        """
        if not _clock.asyncio_seen:
            _clock.first_call()
        if self._running < self._max_concurrent and not self._waiters:
            self._running += 1
            self._admitted += 1
        else:
            await self._wait_for_slot()
        try:
            return await fn(*args, **kwargs)
        except TypeError as exc:
            check_awaited(fn, args, exc)
            raise
        finally:
            if self._waiters:
                self._release()
            else:
                self._running -= 1

    def _decorate(self, fn: Callable[P, Awaitable[T]], /) -> Callable[P, Coroutine[Any, Any, T]]:
        """The decorator form: every call takes a slot (as ``call``)."""
        wait_for_slot, release = self._wait_for_slot, self._release

        # The body of ``call``, inlined: one coroutine per call instead of two.
        @functools.wraps(fn)
        async def bounded(*args: P.args, **kwargs: P.kwargs) -> T:
            if not _clock.asyncio_seen:
                _clock.first_call()
            # The limit is read at each admission, never frozen into the function.
            if self._running < self._max_concurrent and not self._waiters:
                self._running += 1
                self._admitted += 1
            else:
                await wait_for_slot()
            try:
                return await fn(*args, **kwargs)
            except TypeError as exc:
                check_awaited(fn, args, exc)
                raise
            finally:
                if self._waiters:
                    release()
                else:
                    self._running -= 1

        return bounded

    async def __aenter__(self) -> None:
        if not _clock.asyncio_seen:
            _clock.first_call()
        if self._running < self._max_concurrent and not self._waiters:
            self._running += 1
            self._admitted += 1
        else:
            await self._wait_for_slot()

    async def __aexit__(self, *exc_info: object) -> None:
        self._release()

    def _release(self) -> None:
        """Give a slot back: straight to the oldest live waiter, else to the pool."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                # The slot passes on without ever being free, so nobody can barge in.
                loop = waiter.get_loop()
                if loop is _running_loop():
                    waiter.set_result(True)
                else:
                    # A waiter of another event loop (thread): wake that loop, thread-safely.
                    loop.call_soon_threadsafe(self._hand_over, waiter)
                return
        self._running -= 1

    def _hand_over(self, waiter: asyncio.Future[bool]) -> None:
        """A slot released on another loop reaches ``waiter``'s; pass it on if it left."""
        if waiter.done():  # cancelled or timed out while the slot was on its way
            self._release()
        else:
            waiter.set_result(True)

    def _live_waiters(self) -> int:
        # Cancelled futures linger only until their task runs again; don't count them.
        return sum(1 for waiter in self._waiters if not waiter.done())

    async def _wait_for_slot(self) -> None:
        waiters = self._waiters
        if len(waiters) >= self._max_waiting:
            # Slow path only: drop cancelled waiters whose tasks have not run yet.
            live = deque(waiter for waiter in waiters if not waiter.done())
            self._waiters = waiters = live
            if len(live) >= self._max_waiting:
                self._reject("full")
        timeout = self._timeout
        if timeout == 0:
            self._reject("full")
        loop = _clock.running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        waiters.append(waiter)
        timer = None if timeout is None else loop.call_later(timeout, self._expire, waiter)
        try:
            granted = await waiter
        except BaseException:
            # Cancelled (or interrupted) while queued. If a slot was already handed over,
            # it is ours to pass on; otherwise just leave the queue.
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self._release()
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if not granted:
            self._reject("timeout")
        self._admitted += 1

    def _expire(self, waiter: asyncio.Future[bool]) -> None:
        if not waiter.done():
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            waiter.set_result(False)

    def _reject(self, reason: Literal["full", "timeout"]) -> NoReturn:
        self._rejected += 1
        running, waiting = self._running, self._live_waiters()
        emit(
            self._listeners,
            CallRejectedByBulkhead(
                name=self._name,
                reason=reason,
                running=running,
                waiting=waiting,
                max_concurrent=self._max_concurrent,
                max_waiting=self._max_waiting,
            ),
        )
        label = "bulkhead" if self._name is None else f"bulkhead {self._name!r}"
        if reason == "timeout":
            message = f"{label}: no slot became free within {self._timeout}s"
        else:
            message = (
                f"{label} is full: {running}/{self._max_concurrent} running, "
                f"{waiting}/{self._max_waiting} waiting"
            )
        raise BulkheadFull(message)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # released outside any loop (a finalizer, say)
        return None
