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
wakes a waiter of another through that loop's thread-safe ``call_soon_threadsafe``; a loop
that stops for good should cancel its tasks first (a slot handed to a waiter of a stopped
loop is held until that loop runs again).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NoReturn, Protocol

from stoic import _clock, _validate
from stoic._classify import check_awaited
from stoic._events import Event, Listener, Severity, emit, validate_listeners
from stoic._strategy import Frozen, P, T, set_field as _set
from stoic.exceptions import BulkheadFull

__all__ = [
    "Bulkhead",
    "BulkheadStatistics",
    "CallRejectedByBulkhead",
    "ConcurrencyLimit",
    "FixedLimit",
]


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


class ConcurrencyLimit(Protocol):
    """How many calls a bulkhead lets run at once, read at every admission.

    ``Bulkhead(max_concurrent=10)`` keeps a fixed one; an adaptive limit (one that moves
    ``limit`` from the latency and drops it observes) passes an object of its own.
    """

    @property
    def limit(self) -> int: ...


class FixedLimit:
    """A ``ConcurrencyLimit`` that never moves (read-only)."""

    __slots__ = ("_limit",)
    _limit: int

    def __init__(self, limit: int) -> None:
        object.__setattr__(self, "_limit", _validate.count(limit, "limit"))

    @property
    def limit(self) -> int:
        return self._limit

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a FixedLimit never moves; make a new one, not {name}={value!r}")

    def __repr__(self) -> str:
        return f"FixedLimit({self._limit})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FixedLimit) and other.limit == self._limit

    def __hash__(self) -> int:
        return hash(self._limit)

    def __reduce__(self) -> tuple[type[FixedLimit], tuple[int]]:
        return FixedLimit, (self._limit,)


class Slots:
    """A bulkhead's state: the running calls, the queue behind them, and the totals.

    The fast path admits a call with ``running += 1; admitted += 1`` while
    ``running < cap``, and when it ends calls ``release()``, or does ``running -= 1`` when
    no call waits (what ``release`` comes to then). Everything else (the first call, a full
    bulkhead, a queue) takes the bulkhead's slow path.

    ``cap`` makes one comparison stand for three: it is 0 until the first call has checked
    that asyncio runs it (``armed``), and it is never above ``running`` while calls wait,
    so a newcomer never passes them. With a fixed limit (``FixedSlots``) ``cap`` is that
    limit: a queue only forms when every slot is taken, and a released slot goes straight
    to a waiter, so it stays full until the queue is empty. With a limit that moves
    (``MovingSlots``) ``cap`` reads it at every admission, and is 0 while calls wait.
    """

    __slots__ = ("admitted", "armed", "limit", "rejected", "running", "waiters")

    if TYPE_CHECKING:  # each subclass has its own: an attribute, or a property

        @property
        def cap(self) -> int: ...

    def __init__(self, limit: ConcurrencyLimit) -> None:
        self.limit = limit
        self.armed = False
        self.running = 0
        # Futures of queued calls, oldest first. A future resolves to True when a slot is
        # handed to it and to False when its wait timed out; both remove it from the queue
        # first, so a done future still queued is always a cancelled one.
        self.waiters: deque[asyncio.Future[bool]] = deque()
        self.admitted = 0
        self.rejected = 0

    def arm(self) -> None:
        """The first call has seen asyncio run it: from now on, the fast path admits."""
        self.armed = True

    def release(self) -> None:
        """Give a slot back: straight to the oldest live waiter, else to the pool."""
        if self.waiters:
            self.serve(1)
        else:
            self.running -= 1

    def serve(self, returned: int) -> None:
        """Hand slots to the oldest live waiters while the limit (read now) leaves room,
        counting ``returned`` slots being given back.

        A returned slot passes straight on, never free, so nobody can barge in. With a
        fixed limit that is one slot per release; a limit raised since the calls queued
        serves more of them at once, and one lowered hands none until ``running`` is below it.
        """
        room = self.limit.limit - self.running + returned
        handed = 0
        while handed < room and self._hand_to_next():
            handed += 1
        self.running += handed - returned

    def _hand_to_next(self) -> bool:
        """Give a slot to the oldest live waiter; False when none is left."""
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if waiter.done():
                continue
            loop = waiter.get_loop()
            if loop is _running_loop():
                waiter.set_result(True)
            else:
                # A waiter of another event loop (thread): wake that loop, thread-safely.
                try:
                    loop.call_soon_threadsafe(self._hand_over, waiter)
                except RuntimeError:  # that loop is closed: its waiter never runs again
                    continue
            return True
        return False

    def _hand_over(self, waiter: asyncio.Future[bool]) -> None:
        """A slot released on another loop reaches ``waiter``'s; pass it on if it left."""
        if waiter.done():  # cancelled or timed out while the slot was on its way
            self.release()
        else:
            waiter.set_result(True)


class FixedSlots(Slots):
    """``Slots`` of a ``FixedLimit``: ``cap`` is a plain attribute, set when armed."""

    __slots__ = ("cap",)
    cap: int

    def __init__(self, limit: ConcurrencyLimit) -> None:
        super().__init__(limit)
        self.cap = 0

    def arm(self) -> None:
        super().arm()
        # Read once: a FixedLimit never moves (it refuses assignment).
        self.cap = self.limit.limit


class MovingSlots(Slots):
    """``Slots`` of a limit that may move: ``cap`` reads it, at every admission."""

    __slots__ = ()

    @property
    def cap(self) -> int:
        # While calls wait, a newcomer finds no room and takes the slow path, which serves
        # the queue first: a raised limit goes to the oldest waiters.
        if self.waiters or not self.armed:
            return 0
        return self.limit.limit


def new_slots(limit: ConcurrencyLimit) -> Slots:
    """The state of a bulkhead limited by ``limit``."""
    return FixedSlots(limit) if type(limit) is FixedLimit else MovingSlots(limit)


class Bulkhead(Frozen):
    """Run at most ``max_concurrent`` calls at once; queue up to ``max_waiting`` more.

    - ``max_concurrent``: calls allowed to run at the same time (int >= 1), or a
      ``ConcurrencyLimit`` object whose ``limit`` is read at every admission.
    - ``max_waiting``: calls allowed to wait for a slot *beyond* the running ones (int >= 0,
      default 0: no queue, a call that finds every slot taken is rejected at once).
    - ``max_wait``: seconds a call may wait for a slot (default ``None``: as long as it
      takes). It bounds the wait only, never the call itself; ``0`` means never wait. A wait
      that runs out raises ``BulkheadFull``. ``timeout``, the third positional parameter,
      is the founding document's name for it.
    - ``name``: carried by events; ``listeners``: callables receiving each event.

    Raises ``BulkheadFull`` (a ``stoic.exceptions.RejectedCall``) when the call is refused;
    the wrapped function's own exceptions pass through untouched. Use it as
    ``await bulkhead.call(fn, *args, **kwargs)``, as a decorator, or as
    ``async with bulkhead:``; one bulkhead object is meant to be shared by many tasks.
    Immutable: ``with_(max_concurrent=20)`` makes a changed copy (with no calls running).
    """

    __slots__ = ("_limit", "_listeners", "_max_wait", "_max_waiting", "_name", "_slots")
    _limit: ConcurrencyLimit
    _max_waiting: int
    _max_wait: float | None
    _name: str | None
    _listeners: tuple[Listener, ...]
    _slots: Slots

    def __init__(
        self,
        max_concurrent: int | ConcurrencyLimit,
        max_waiting: int = 0,
        timeout: float | None = None,
        *,
        max_wait: float | None = None,
        name: str | None = None,
        listeners: Iterable[Listener] = (),
    ) -> None:
        if isinstance(max_concurrent, int) or not hasattr(max_concurrent, "limit"):
            _set(self, "_limit", FixedLimit(_validate.count(max_concurrent, "max_concurrent")))
        else:
            _validate.instance(
                max_concurrent, "max_concurrent", object, "an int or a ConcurrencyLimit object"
            )
            now = max_concurrent.limit
            if type(now) is not int or now < 0:  # read once here, so a wrong object fails now
                raise TypeError(
                    "max_concurrent's limit must be an int >= 0, got "
                    f"{now!r} from {max_concurrent!r}"
                )
            _set(self, "_limit", max_concurrent)
        _set(self, "_max_waiting", _validate.count(max_waiting, "max_waiting", minimum=0))
        if timeout is not None and max_wait is not None:
            raise TypeError(
                "give max_wait or timeout (its founding document name), not both; got "
                f"max_wait={max_wait!r} and timeout={timeout!r}"
            )
        wait = max_wait if timeout is None else timeout
        label = "max_wait" if timeout is None else "timeout"
        _set(
            self,
            "_max_wait",
            None if wait is None else _validate.seconds(wait, label, optional=True),
        )
        _set(self, "_name", _validate.name(name))
        _set(self, "_listeners", validate_listeners(listeners))
        _set(self, "_slots", new_slots(self._limit))

    def options(self) -> dict[str, Any]:
        limit = self._limit
        return {
            "max_concurrent": limit.limit if type(limit) is FixedLimit else limit,
            "max_waiting": self._max_waiting,
            "max_wait": self._max_wait,
            "name": self._name,
            "listeners": self._listeners,
        }

    def __repr__(self) -> str:
        return (
            f"Bulkhead(max_concurrent={self.max_concurrent}, max_waiting={self._max_waiting}, "
            f"max_wait={self._max_wait!r}, name={self._name!r})"
        )

    @property
    def max_concurrent(self) -> int:
        """Calls allowed to run at the same time, now (an adaptive limit moves it)."""
        return self._limit.limit

    @property
    def limit(self) -> ConcurrencyLimit:
        """The limit object read at every admission."""
        return self._limit

    @property
    def slots(self) -> Slots:
        """The state this bulkhead drives: running calls, the queue, the totals."""
        return self._slots

    @property
    def max_waiting(self) -> int:
        """Calls allowed to wait for a slot beyond the running ones."""
        return self._max_waiting

    @property
    def max_wait(self) -> float | None:
        """Seconds a call may wait for a slot (``None``: no limit)."""
        return self._max_wait

    @property
    def timeout(self) -> float | None:
        """``max_wait``, by the founding document's name."""
        return self._max_wait

    @property
    def name(self) -> str | None:
        """The name carried by this bulkhead's events."""
        return self._name

    # -- hooks for pipelines and config ------------------------------------------------------

    kind = "bulkhead"

    def describe(self) -> str:
        wait = "" if self._max_wait is None else f", waits at most {self._max_wait:g}s"
        name = "" if self._name is None else f" [{self._name}]"
        return f"bulkhead: {self._limit.limit} at once, {self._max_waiting} queued{wait}{name}"

    def to_config(self) -> dict[str, Any]:
        from stoic._configuration import without_none

        if type(self._limit) is not FixedLimit:
            raise ValueError(
                f"bulkhead limit {self._limit!r} is an object, which config cannot express"
            )
        return without_none(
            {
                "max_concurrent": self._limit.limit,
                "max_waiting": self._max_waiting,
                "max_wait": self._max_wait,
                "name": self._name,
            }
        )

    @classmethod
    def from_config(cls, options: Mapping[str, Any], where: str) -> Bulkhead:
        from stoic._configuration import check_keys

        # ``timeout`` is the founding document's name for ``max_wait``.
        check_keys(options, ("max_concurrent", "max_waiting", "max_wait", "timeout", "name"), where)
        return cls(**options)

    def statistics(self) -> BulkheadStatistics:
        """A frozen snapshot of the current counts."""
        return BulkheadStatistics(
            max_concurrent=self._limit.limit,
            max_waiting=self._max_waiting,
            running=self._slots.running,
            waiting=self._live_waiters(),
            admitted=self._slots.admitted,
            rejected=self._slots.rejected,
        )

    def refresh(self) -> None:
        """Read the limit now and hand the room it leaves to the oldest waiters.

        A limit object is read at every admission and release; call this when yours rises
        while calls wait and none may end soon, e.g. from 0, when nothing runs to release a
        slot (the next newcomer would do it too). Call it on the loop of the waiters.
        """
        if self._slots.waiters:
            self._slots.serve(0)

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``await fn(*args, **kwargs)`` once a slot is free; raise ``BulkheadFull`` if none.

        Returns what ``fn`` returns and raises what it raises.
        """
        slots = self._slots
        if slots.running < slots.cap:  # see ``Slots``: a free slot, nobody queued, armed
            slots.running += 1
            slots.admitted += 1
        else:
            await self._wait_for_slot()
        try:
            return await fn(*args, **kwargs)
        except TypeError as exc:
            check_awaited(fn, args, exc)
            raise
        finally:
            if slots.waiters:
                slots.release()
            else:
                slots.running -= 1

    def _decorate(self, fn: Callable[P, Awaitable[T]], /) -> Callable[P, Coroutine[Any, Any, T]]:
        """The decorator form: every call takes a slot (as ``call``)."""
        slots = self._slots
        wait_for_slot, release = self._wait_for_slot, slots.release

        # The body of ``call``, inlined: one coroutine per call instead of two.
        @functools.wraps(fn)
        async def bounded(*args: P.args, **kwargs: P.kwargs) -> T:
            if slots.running < slots.cap:
                slots.running += 1
                slots.admitted += 1
            else:
                await wait_for_slot()
            try:
                return await fn(*args, **kwargs)
            except TypeError as exc:
                check_awaited(fn, args, exc)
                raise
            finally:
                if slots.waiters:
                    release()
                else:
                    slots.running -= 1

        return bounded

    async def __aenter__(self) -> None:
        slots = self._slots
        if slots.running < slots.cap:
            slots.running += 1
            slots.admitted += 1
        else:
            await self._wait_for_slot()

    async def __aexit__(self, *exc_info: object) -> None:
        self._slots.release()

    def _live_waiters(self) -> int:
        # Cancelled futures linger only until their task runs again; don't count them.
        # Over a snapshot (taken at once, under the GIL): another loop's thread may change the
        # queue while this counts.
        return sum(1 for waiter in tuple(self._slots.waiters) if not waiter.done())

    async def _wait_for_slot(self) -> None:
        """Admission's slow path: the first call, a full bulkhead, calls queued."""
        slots = self._slots
        if not slots.armed:
            # Under trio, a clear error on the first call rather than at the first wait.
            if not _clock.asyncio_seen:
                _clock.first_call()
            slots.arm()
        if slots.waiters:
            slots.serve(0)  # a limit raised since they queued: their turn first
        limit = slots.limit.limit  # read first: a property may let another thread in
        if not slots.waiters and slots.running < limit:
            slots.running += 1
            slots.admitted += 1
            return
        waiters = slots.waiters
        # Counted rather than filtered into a new queue: another thread may append to this
        # one meanwhile, and a waiter added to a queue that is then replaced is lost.
        if len(waiters) >= self._max_waiting and self._live_waiters() >= self._max_waiting:
            self._reject("full")
        timeout = self._max_wait
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
                slots.release()
            else:
                with contextlib.suppress(ValueError):
                    waiters.remove(waiter)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if not granted:
            self._reject("timeout")
        slots.admitted += 1

    def _expire(self, waiter: asyncio.Future[bool]) -> None:
        if not waiter.done():
            with contextlib.suppress(ValueError):
                self._slots.waiters.remove(waiter)
            waiter.set_result(False)

    def _reject(self, reason: Literal["full", "timeout"]) -> NoReturn:
        self._slots.rejected += 1
        running, waiting = self._slots.running, self._live_waiters()
        emit(
            self._listeners,
            CallRejectedByBulkhead(
                name=self._name,
                reason=reason,
                running=running,
                waiting=waiting,
                max_concurrent=self._limit.limit,
                max_waiting=self._max_waiting,
            ),
        )
        label = "bulkhead" if self._name is None else f"bulkhead {self._name!r}"
        if reason == "timeout":
            message = f"{label}: no slot became free within {self._max_wait}s"
        else:
            message = (
                f"{label} is full: {running}/{self._limit.limit} running, "
                f"{waiting}/{self._max_waiting} waiting"
            )
        raise BulkheadFull(message)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # released outside any loop (a finalizer, say)
        return None
