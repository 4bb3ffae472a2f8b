"""Bulkhead: concurrency cap, bounded FIFO queue, wait timeout, cancellation, statistics."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import random
from typing import Any

import pytest

from stoic import _clock
from stoic._bulkhead import Bulkhead, BulkheadStatistics, CallRejectedByBulkhead, FixedLimit
from stoic._events import Event
from stoic.exceptions import BulkheadFull, RejectedCall
from tests.forms import around_bulkhead, forms_of

# Every async test runs with ``.call`` routed through each form (tests/forms.py).
EVERY_FORM = forms_of(Bulkhead, "decorator", "async with", "pipeline", pipeline=around_bulkhead)


async def ok() -> str:
    return "ok"


async def settle() -> None:
    """Let every ready task run until all of them wait again (virtual time does not move)."""
    for _ in range(10):
        await asyncio.sleep(0)


class Gate:
    """Calls that block until released, recording the order in which they started."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self._event = asyncio.Event()

    async def work(self, tag: int) -> int:
        self.started.append(tag)
        await self._event.wait()
        return tag

    def open(self) -> None:
        self._event.set()


def stats(bulkhead: Bulkhead) -> tuple[int, int]:
    snapshot = bulkhead.statistics()
    return snapshot.running, snapshot.waiting


class TestSeedDefaults:
    """The seed's ``Bulkhead(max_concurrent=10)`` with its default ``max_waiting=0``."""

    async def test_ten_calls_run_at_once(self) -> None:
        bulkhead = Bulkhead(max_concurrent=10)
        start = _clock.now()
        finished: list[float] = []

        async def work() -> None:
            await asyncio.sleep(5)
            finished.append(_clock.now() - start)

        async with asyncio.TaskGroup() as tg:
            for _ in range(10):
                tg.create_task(bulkhead.call(work))
        assert finished == [5.0] * 10

    async def test_eleventh_call_is_rejected_immediately(self) -> None:
        bulkhead = Bulkhead(max_concurrent=10)
        gate = Gate()
        tasks = [asyncio.create_task(bulkhead.call(gate.work, i)) for i in range(10)]
        await settle()
        start = _clock.now()
        with pytest.raises(BulkheadFull, match="10/10 running"):
            await bulkhead.call(gate.work, 10)
        assert _clock.now() == start
        assert gate.started == list(range(10))
        gate.open()
        assert await asyncio.gather(*tasks) == list(range(10))

    async def test_a_rejection_is_a_rejected_call(self) -> None:
        bulkhead = Bulkhead(max_concurrent=1)
        async with bulkhead:
            with pytest.raises(RejectedCall):
                await bulkhead.call(asyncio.sleep, 0)


class TestQueue:
    """``max_waiting`` counts queued calls beyond the running ones."""

    async def test_queue_holds_max_waiting_calls_beyond_the_running_ones(self) -> None:
        bulkhead = Bulkhead(max_concurrent=2, max_waiting=3)
        gate = Gate()
        tasks = [asyncio.create_task(bulkhead.call(gate.work, i)) for i in range(5)]
        await settle()
        assert stats(bulkhead) == (2, 3)
        with pytest.raises(BulkheadFull, match="3/3 waiting"):
            await bulkhead.call(gate.work, 5)
        gate.open()
        assert await asyncio.gather(*tasks) == [0, 1, 2, 3, 4]

    async def test_queued_calls_wait_for_a_slot(self) -> None:
        bulkhead = Bulkhead(max_concurrent=1, max_waiting=2)
        start = _clock.now()
        finished: list[float] = []

        async def work() -> None:
            await asyncio.sleep(10)
            finished.append(_clock.now() - start)

        async with asyncio.TaskGroup() as tg:
            for _ in range(3):
                tg.create_task(bulkhead.call(work))
        assert finished == [10.0, 20.0, 30.0]

    async def test_waiters_are_served_in_arrival_order(self) -> None:
        bulkhead = Bulkhead(max_concurrent=1, max_waiting=10)
        order: list[int] = []

        async def work(tag: int) -> None:
            order.append(tag)
            await asyncio.sleep(1)

        tasks = []
        for tag in range(8):
            tasks.append(asyncio.create_task(bulkhead.call(work, tag)))
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        assert order == list(range(8))

    async def test_new_arrivals_do_not_overtake_waiters(self) -> None:
        bulkhead = Bulkhead(max_concurrent=1, max_waiting=5)
        order: list[str] = []

        async def work(tag: str) -> None:
            order.append(tag)

        holder = asyncio.Event()

        async def hold() -> None:
            async with bulkhead:
                await holder.wait()

        holding = asyncio.create_task(hold())
        await settle()
        waiter = asyncio.create_task(bulkhead.call(work, "waiter"))
        await settle()
        holder.set()
        await asyncio.sleep(0)  # the holder releases: the slot goes to the waiter
        late = asyncio.create_task(bulkhead.call(work, "late arrival"))
        await asyncio.gather(holding, waiter, late)
        assert order == ["waiter", "late arrival"]

    async def test_slot_released_by_an_exception_goes_to_the_next_waiter(self) -> None:
        bulkhead = Bulkhead(max_concurrent=1, max_waiting=1)

        async def fail() -> None:
            await asyncio.sleep(1)
            raise ConnectionError("down")

        failing = asyncio.create_task(bulkhead.call(fail))
        await settle()
        assert await bulkhead.call(asyncio.sleep, 0, "next") == "next"
        with pytest.raises(ConnectionError, match="down"):
            await failing
        assert stats(bulkhead) == (0, 0)


class TestWaitTimeout:
    """``timeout`` bounds the wait for a slot, never the call."""

    async def test_wait_timeout_raises_bulkhead_full_at_exactly_the_timeout(self) -> None:
        bulkhead = Bulkhead(max_concurrent=1, max_waiting=1, timeout=2.5)
        gate = Gate()
        holder = asyncio.create_task(bulkhead.call(gate.work, 0))
        await settle()
        start = _clock.now()
        with pytest.raises(BulkheadFull, match=r"no slot became free within 2\.5s"):
            await bulkhead.call(gate.work, 1)
        assert _clock.now() - start == 2.5
        assert gate.started == [0]
        assert stats(bulkhead) == (1, 0)
        gate.open()
        await holder

    async def test_wait_that_gets_a_slot_in_time_runs(self) -> None:
        bulkhead = Bulkhead(max_concurrent=1, max_waiting=1, timeout=5)
        holder = asyncio.create_task(bulkhead.call(asyncio.sleep, 4))
        await settle()
        start = _clock.now()
        assert await bulkhead.call(asyncio.sleep, 0, "ran") == "ran"
        assert _clock.now() - start == 4
        assert holder.done()

    async def test_timeout_does_not_bound_the_call_itself(self) -> None:
        bulkhead = Bulkhead(max_concurrent=1, timeout=1.0)
        start = _clock.now()
        assert await bulkhead.call(asyncio.sleep, 100, "slow") == "slow"
        assert _clock.now() - start == 100

    async def test_zero_timeout_rejects_without_waiting(self) -> None:
        bulkhead = Bulkhead(max_concurrent=1, max_waiting=5, timeout=0)
        async with bulkhead:
            start = _clock.now()
            with pytest.raises(BulkheadFull):
                await bulkhead.call(asyncio.sleep, 0)
            assert _clock.now() == start
        assert stats(bulkhead) == (0, 0)

    async def test_timed_out_waiter_leaves_the_queue_for_the_next(self) -> None:
        bulkhead = Bulkhead(max_concurrent=1, max_waiting=1, timeout=3)
        gate = Gate()
        holder = asyncio.create_task(bulkhead.call(gate.work, 0))
        await settle()
        with pytest.raises(BulkheadFull):
            await bulkhead.call(gate.work, 1)
        second = asyncio.create_task(bulkhead.call(gate.work, 2))
        await settle()
        assert stats(bulkhead) == (1, 1)
        gate.open()
        assert list(await asyncio.gather(holder, second)) == [0, 2]

    async def test_a_wait_cancelled_at_the_instant_it_runs_out_ends_cancelled_and_quietly(
        self,
    ) -> None:
        bulkhead = Bulkhead(max_concurrent=1, max_waiting=1, max_wait=2.0)
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, context: errors.append(context))
        try:
            async with bulkhead:
                waiter = asyncio.create_task(bulkhead.call(ok))
                # Due when the wait runs out and scheduled before its timer: the waiter is
                # cancelled in the loop pass whose next callback expires its wait.
                loop.call_later(2.0, waiter.cancel)
                with pytest.raises(asyncio.CancelledError):
                    await waiter
        finally:
            loop.set_exception_handler(None)
        assert errors == []  # the expiry left the cancelled wait alone
        assert bulkhead.statistics().rejected == 0


class TestCancellation:
    """A cancelled call, waiting or running, gives its place back."""

    async def test_cancelled_waiter_frees_its_queue_place(self) -> None:
        bulkhead = Bulkhead(max_concurrent=1, max_waiting=1)
        gate = Gate()
        holder = asyncio.create_task(bulkhead.call(gate.work, 0))
        waiter = asyncio.create_task(bulkhead.call(gate.work, 1))
        await settle()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert stats(bulkhead) == (1, 0)
        replacement = asyncio.create_task(bulkhead.call(gate.work, 2))
        await settle()
        gate.open()
        assert list(await asyncio.gather(holder, replacement)) == [0, 2]
        assert gate.started == [0, 2]

    async def test_waiter_cancelled_but_not_yet_resumed_does_not_fill_the_queue(self) -> None:
        bulkhead = Bulkhead(max_concurrent=1, max_waiting=1)
        gate = Gate()
        holder = asyncio.create_task(bulkhead.call(gate.work, 0))
        waiter = asyncio.create_task(bulkhead.call(gate.work, 1))
        await settle()
        waiter.cancel()  # the waiter's task has not run since: its future is still queued
        replacement = asyncio.create_task(bulkhead.call(gate.work, 2))
        await settle()
        assert stats(bulkhead) == (1, 1)
        gate.open()
        assert list(await asyncio.gather(holder, replacement)) == [0, 2]
        assert waiter.cancelled()

    async def test_cancelled_runner_frees_its_slot(self) -> None:
        bulkhead = Bulkhead(max_concurrent=1)
        runner = asyncio.create_task(bulkhead.call(asyncio.sleep, 100))
        await settle()
        assert stats(bulkhead) == (1, 0)
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
        assert stats(bulkhead) == (0, 0)
        assert await bulkhead.call(asyncio.sleep, 0, "free") == "free"

    async def test_cancelled_runner_hands_its_slot_to_the_waiter(self) -> None:
        bulkhead = Bulkhead(max_concurrent=1, max_waiting=1)
        runner = asyncio.create_task(bulkhead.call(asyncio.sleep, 100))
        waiter = asyncio.create_task(bulkhead.call(asyncio.sleep, 1, "waiter"))
        await settle()
        start = _clock.now()
        runner.cancel()
        assert await waiter == "waiter"
        assert _clock.now() - start == 1

    async def test_slot_handed_to_a_waiter_cancelled_before_it_resumes_goes_to_the_next(
        self,
    ) -> None:
        bulkhead = Bulkhead(max_concurrent=1, max_waiting=2)
        release = asyncio.Event()

        async def hold() -> None:
            async with bulkhead:
                await release.wait()

        holder = asyncio.create_task(hold())
        await settle()
        first = asyncio.create_task(bulkhead.call(asyncio.sleep, 0, "first"))
        second = asyncio.create_task(bulkhead.call(asyncio.sleep, 0, "second"))
        await settle()
        release.set()
        await asyncio.sleep(0)  # the holder exits: its slot is handed to ``first``
        assert stats(bulkhead) == (1, 1)
        first.cancel()  # ...whose task is cancelled before it could run
        await holder
        assert await second == "second"
        assert first.cancelled()
        assert stats(bulkhead) == (0, 0)

    async def test_slot_handed_to_a_waiter_cancelled_before_it_resumes_returns_to_the_pool(
        self,
    ) -> None:
        bulkhead = Bulkhead(max_concurrent=1, max_waiting=1)
        release = asyncio.Event()

        async def hold() -> None:
            async with bulkhead:
                await release.wait()

        holder = asyncio.create_task(hold())
        await settle()
        waiter = asyncio.create_task(bulkhead.call(asyncio.sleep, 0))
        await settle()
        release.set()
        await asyncio.sleep(0)
        waiter.cancel()
        await holder
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert stats(bulkhead) == (0, 0)
        assert bulkhead.statistics().admitted == 1

    async def test_cancellation_is_not_counted_as_a_rejection(self) -> None:
        events: list[Event] = []
        bulkhead = Bulkhead(max_concurrent=1, max_waiting=1, timeout=10, listeners=[events.append])
        async with bulkhead:
            waiter = asyncio.create_task(bulkhead.call(asyncio.sleep, 0))
            await settle()
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
        assert bulkhead.statistics().rejected == 0
        assert events == []

    async def test_ten_thousand_random_cancellations_leave_full_capacity(self) -> None:
        rng = random.Random(20240601)
        limit, queue = 5, 20
        reasons: list[str] = []
        bulkhead = Bulkhead(
            max_concurrent=limit,
            max_waiting=queue,
            timeout=2.5,
            listeners=[lambda event: reasons.append(getattr(event, "reason", ""))],
        )
        inside = 0
        most_inside = 0

        async def work() -> None:
            nonlocal inside, most_inside
            inside += 1
            most_inside = max(most_inside, inside)
            try:
                await asyncio.sleep(rng.choice((0, 1, 2, 3)))
            finally:
                inside -= 1

        async def client() -> None:
            # Rejections are expected under this load; anything else is a bug.
            with contextlib.suppress(BulkheadFull):
                if rng.random() < 0.5:
                    await bulkhead.call(work)
                else:
                    async with bulkhead:
                        await work()

        tasks: set[asyncio.Task[None]] = set()
        cancellations = 0
        while cancellations < 10_000:
            for _ in range(rng.randint(0, 6)):
                tasks.add(asyncio.create_task(client()))
            # Cancel between single loop passes too, so some cancellations land on a waiter
            # that was just handed a slot but has not resumed yet.
            for _ in range(rng.randint(1, 3)):
                live = [task for task in tasks if not task.done()]
                for task in rng.sample(live, k=min(len(live), rng.randint(0, 2))):
                    task.cancel()
                    cancellations += 1
                running, waiting = stats(bulkhead)
                assert running <= limit
                assert waiting <= queue
                await asyncio.sleep(0)
            await asyncio.sleep(rng.choice((0, 0, 0.5, 1)))
            tasks = {task for task in tasks if not task.done()}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

        assert most_inside == limit
        assert {"full", "timeout"} <= set(reasons)
        snapshot = bulkhead.statistics()
        assert (snapshot.running, snapshot.waiting) == (0, 0)
        start = _clock.now()
        async with asyncio.TaskGroup() as tg:
            for _ in range(limit):
                tg.create_task(bulkhead.call(asyncio.sleep, 1))
        assert _clock.now() - start == 1
        assert stats(bulkhead) == (0, 0)


class TestForms:
    """``call``, the decorator and ``async with`` share one set of slots."""

    async def test_call_passes_arguments_and_returns_the_result(self) -> None:
        bulkhead = Bulkhead(max_concurrent=2)

        async def add(a: int, b: int, *, scale: int = 1) -> int:
            return (a + b) * scale

        assert await bulkhead.call(add, 1, 2, scale=10) == 30

    async def test_call_reraises_the_callers_exception(self) -> None:
        bulkhead = Bulkhead(max_concurrent=1)

        async def fail() -> None:
            raise KeyError("missing")

        with pytest.raises(KeyError, match="missing"):
            await bulkhead.call(fail)
        assert stats(bulkhead) == (0, 0)

    async def test_decorator_limits_the_decorated_function(self) -> None:
        bulkhead = Bulkhead(max_concurrent=1)

        @bulkhead
        async def fetch(key: str) -> str:
            """Fetch a key."""
            await asyncio.sleep(1)
            return key.upper()

        assert fetch.__name__ == "fetch"
        assert fetch.__doc__ == "Fetch a key."
        first = asyncio.create_task(fetch("a"))
        await settle()
        with pytest.raises(BulkheadFull):
            await fetch("b")
        assert await first == "A"

    async def test_async_with_is_safe_for_many_tasks_sharing_one_bulkhead(self) -> None:
        bulkhead = Bulkhead(max_concurrent=3, max_waiting=100)
        inside = 0
        most_inside = 0

        async def task(delay: float) -> None:
            nonlocal inside, most_inside
            async with bulkhead:
                inside += 1
                most_inside = max(most_inside, inside)
                await asyncio.sleep(delay)
                inside -= 1

        start = _clock.now()
        async with asyncio.TaskGroup() as tg:
            for _ in range(12):
                tg.create_task(task(2))
        assert most_inside == 3
        assert _clock.now() - start == 8
        assert stats(bulkhead) == (0, 0)

    async def test_async_with_releases_on_exception(self) -> None:
        bulkhead = Bulkhead(max_concurrent=1)
        with pytest.raises(RuntimeError):
            async with bulkhead:
                raise RuntimeError("boom")
        assert stats(bulkhead) == (0, 0)

    async def test_async_with_rejects_when_full(self) -> None:
        bulkhead = Bulkhead(max_concurrent=1)
        async with bulkhead:
            with pytest.raises(BulkheadFull):
                async with bulkhead:
                    pytest.fail("must not enter")  # pragma: no cover
        assert stats(bulkhead) == (0, 0)

    async def test_the_first_call_in_a_process_finds_asyncio_running(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(_clock, "asyncio_seen", False)  # as in a fresh process
        assert await Bulkhead(max_concurrent=1).call(ok) == "ok"
        assert _clock.asyncio_seen


class TestStatistics:
    """``statistics()`` is a frozen snapshot of counts."""

    async def test_snapshot_counts_running_waiting_admitted_and_rejected(self) -> None:
        bulkhead = Bulkhead(max_concurrent=2, max_waiting=1)
        gate = Gate()
        tasks = [asyncio.create_task(bulkhead.call(gate.work, i)) for i in range(3)]
        await settle()
        for i in range(2):
            with pytest.raises(BulkheadFull):
                await bulkhead.call(gate.work, 10 + i)
        assert bulkhead.statistics() == BulkheadStatistics(
            max_concurrent=2, max_waiting=1, running=2, waiting=1, admitted=2, rejected=2
        )
        gate.open()
        await asyncio.gather(*tasks)
        assert bulkhead.statistics() == BulkheadStatistics(
            max_concurrent=2, max_waiting=1, running=0, waiting=0, admitted=3, rejected=2
        )

    def test_snapshot_is_frozen(self) -> None:
        snapshot = Bulkhead(max_concurrent=1).statistics()
        with pytest.raises(dataclasses.FrozenInstanceError):
            snapshot.running = 5  # type: ignore[misc]

    def test_properties_and_repr_show_the_options(self) -> None:
        bulkhead = Bulkhead(max_concurrent=10, max_waiting=50, timeout=30, name="api")
        assert (bulkhead.max_concurrent, bulkhead.max_waiting) == (10, 50)
        assert bulkhead.max_wait == bulkhead.timeout == 30.0
        assert bulkhead.name == "api"
        assert repr(bulkhead) == (
            "Bulkhead(max_concurrent=10, max_waiting=50, max_wait=30.0, name='api')"
        )


class TestEvents:
    """``CallRejectedByBulkhead`` is emitted on every rejection."""

    async def test_full_rejection_emits_an_event(self) -> None:
        events: list[Event] = []
        bulkhead = Bulkhead(max_concurrent=1, name="db", listeners=[events.append])
        async with bulkhead:
            with pytest.raises(BulkheadFull, match="bulkhead 'db' is full"):
                await bulkhead.call(asyncio.sleep, 0)
        assert events == [
            CallRejectedByBulkhead(
                name="db", reason="full", running=1, waiting=0, max_concurrent=1, max_waiting=0
            )
        ]

    async def test_timeout_rejection_emits_an_event(self) -> None:
        events: list[Event] = []
        bulkhead = Bulkhead(max_concurrent=1, max_waiting=3, timeout=1, listeners=[events.append])
        async with bulkhead:
            with pytest.raises(BulkheadFull):
                await bulkhead.call(asyncio.sleep, 0)
        assert events == [
            CallRejectedByBulkhead(
                name=None, reason="timeout", running=1, waiting=0, max_concurrent=1, max_waiting=3
            )
        ]

    def test_rejection_event_is_a_frozen_warning(self) -> None:
        event = CallRejectedByBulkhead(
            name=None, reason="full", running=1, waiting=0, max_concurrent=1, max_waiting=0
        )
        assert event.severity.name == "WARNING"
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.running = 2  # type: ignore[misc]

    async def test_admitted_calls_emit_nothing(self) -> None:
        events: list[Event] = []
        bulkhead = Bulkhead(max_concurrent=1, listeners=[events.append])
        await bulkhead.call(asyncio.sleep, 0)
        assert events == []

    async def test_listener_that_raises_does_not_break_calls(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        def broken(event: Event) -> None:
            raise RuntimeError("listener bug")

        bulkhead = Bulkhead(max_concurrent=1, listeners=[broken])
        with caplog.at_level(logging.ERROR, logger="stoic"):
            async with bulkhead:
                with pytest.raises(BulkheadFull):
                    await bulkhead.call(asyncio.sleep, 0)
            assert await bulkhead.call(asyncio.sleep, 0, "ok") == "ok"
        assert "listener" in caplog.text
        assert stats(bulkhead) == (0, 0)


class TestValidation:
    """Bad options raise ``ValueError`` naming the parameter at construction."""

    @pytest.mark.parametrize("value", [0, -1, 1.5, True, "3", None])
    def test_max_concurrent_must_be_a_positive_int(self, value: Any) -> None:
        with pytest.raises(ValueError, match="max_concurrent must be"):
            Bulkhead(max_concurrent=value)

    @pytest.mark.parametrize("value", [-1, 0.5, False, None])
    def test_max_waiting_must_be_a_non_negative_int(self, value: Any) -> None:
        with pytest.raises(ValueError, match="max_waiting must be"):
            Bulkhead(max_concurrent=1, max_waiting=value)

    @pytest.mark.parametrize("value", [-0.1, math.nan, math.inf, True, "1"])
    def test_timeout_must_be_none_or_finite_non_negative_seconds(self, value: Any) -> None:
        with pytest.raises(ValueError, match="timeout must be None or"):
            Bulkhead(max_concurrent=1, timeout=value)

    def test_error_message_names_the_allowed_range(self) -> None:
        with pytest.raises(ValueError, match=r"^max_concurrent must be an int >= 1, got 0$"):
            Bulkhead(max_concurrent=0)

    def test_listeners_must_be_callables(self) -> None:
        with pytest.raises(TypeError, match="listeners"):
            Bulkhead(max_concurrent=1, listeners=[42])  # type: ignore[list-item]

    def test_zero_queue_and_no_timeout_are_valid(self) -> None:
        assert Bulkhead(max_concurrent=1, max_waiting=0, timeout=None).max_waiting == 0


class TestSharedByTwoEventLoops:
    """A slot freed on one event loop wakes a waiter of another at once, thread-safely."""

    def test_a_slot_freed_in_another_thread_wakes_the_waiter_promptly(self) -> None:
        import threading
        import time

        bulkhead = Bulkhead(1, max_waiting=1)
        holding = threading.Event()
        waited: list[float] = []

        async def hold() -> None:
            async def work() -> None:
                holding.set()
                await asyncio.sleep(0.2)

            await bulkhead.call(work)

        async def wait_for_slot() -> None:
            async def work() -> None:
                return None

            begin = time.monotonic()
            await bulkhead.call(work)
            waited.append(time.monotonic() - begin)

        holder = threading.Thread(target=asyncio.run, args=(hold(),))
        holder.start()
        assert holding.wait(5)
        # A loop with nothing else to do sleeps in select() until it is woken.
        asyncio.run(wait_for_slot())
        holder.join(5)
        assert waited[0] < 1.0  # about 0.2 s; without a thread-safe wake-up, 3 s or more
        assert bulkhead.statistics().running == 0

    def test_a_waiter_whose_loop_closed_is_skipped_and_the_slot_comes_back(self) -> None:
        import threading

        bulkhead = Bulkhead(1, max_waiting=1)

        async def gone() -> None:
            return None

        async def leave_a_waiter() -> None:
            asyncio.get_running_loop().create_task(bulkhead.call(gone))
            await asyncio.sleep(0)  # it queues behind the slot held below

        def in_another_thread() -> None:
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(leave_a_waiter())  # a waiter of another loop ...
            finally:
                loop.close()  # ... which then closes under it

        async def holder() -> str:
            async def work() -> str:
                thread = threading.Thread(target=in_another_thread)
                thread.start()
                await asyncio.to_thread(thread.join, 5)
                return "done"

            return await bulkhead.call(work)

        assert asyncio.run(holder()) == "done"  # releasing the slot did not raise
        stats = bulkhead.statistics()
        assert (stats.running, stats.waiting) == (0, 0)

    def test_a_waiter_cancelled_while_the_slot_is_on_its_way_passes_it_on(self) -> None:
        import threading

        bulkhead = Bulkhead(1, max_waiting=2)
        holding, release_now, released = threading.Event(), threading.Event(), threading.Event()

        async def hold() -> None:
            async def work() -> None:
                holding.set()
                await asyncio.to_thread(release_now.wait, 5)

            await bulkhead.call(work)
            released.set()

        async def waiters() -> list[object]:
            first = asyncio.create_task(bulkhead.call(ok))
            second = asyncio.create_task(bulkhead.call(ok))
            await settle()
            # Block this loop while the other thread frees the slot: the slot is on its way
            # to ``first`` (queued on this loop) when ``first`` is cancelled.
            release_now.set()
            assert released.wait(5)
            first.cancel()
            return await asyncio.gather(first, second, return_exceptions=True)

        holder = threading.Thread(target=asyncio.run, args=(hold(),))
        holder.start()
        assert holding.wait(5)
        first, second = asyncio.run(waiters())
        holder.join(5)
        assert isinstance(first, asyncio.CancelledError)
        assert second == "ok"  # the slot passed on to the next waiter
        assert bulkhead.statistics() == BulkheadStatistics(
            max_concurrent=1, max_waiting=2, running=0, waiting=0, admitted=2, rejected=0
        )

    def test_a_slot_released_outside_any_event_loop_reaches_the_waiter(self) -> None:
        # What the garbage collector does to a call abandoned while it held a slot: it closes
        # the coroutine, whose ``finally`` then releases the slot with no event loop running.
        bulkhead = Bulkhead(1, max_waiting=1)
        abandoned = bulkhead.call(asyncio.Event().wait)

        async def queue_behind_it() -> asyncio.Task[str]:
            abandoned.send(None)  # runs until it waits, holding the slot
            waiter = asyncio.create_task(bulkhead.call(ok))
            await settle()
            return waiter

        loop = asyncio.new_event_loop()
        try:
            waiter = loop.run_until_complete(queue_behind_it())
            assert stats(bulkhead) == (1, 1)
            abandoned.close()  # no loop runs here
            assert loop.run_until_complete(waiter) == "ok"
        finally:
            loop.close()
        assert stats(bulkhead) == (0, 0)


class TestFixedLimit:
    """An int ``max_concurrent`` becomes a ``FixedLimit``: a value, compared by its limit."""

    def test_a_bulkheads_fixed_limit_equals_one_of_the_same_limit_only(self) -> None:
        limit = Bulkhead(3).limit
        assert limit == FixedLimit(3)
        assert limit != FixedLimit(4)
        assert limit != _MovableLimit(3)  # the same value, but a limit that may move

    def test_equal_fixed_limits_are_one_set_member(self) -> None:
        assert {FixedLimit(3), FixedLimit(3), FixedLimit(4)} == {FixedLimit(3), FixedLimit(4)}

    def test_a_fixed_limits_repr_shows_its_limit(self) -> None:
        assert repr(Bulkhead(3).limit) == "FixedLimit(3)"

    @pytest.mark.parametrize("bad", [0, -1, True, 2.0, "3"])
    def test_a_fixed_limit_is_an_int_of_at_least_one(self, bad: Any) -> None:
        with pytest.raises(ValueError, match=r"limit must be an int >= 1"):
            FixedLimit(bad)

    def test_a_fixed_limit_never_moves(self) -> None:
        limit = Bulkhead(3).limit
        with pytest.raises(AttributeError, match="never moves"):
            limit.limit = 5  # type: ignore[misc]
        assert Bulkhead(3).max_concurrent == 3

    def test_a_fixed_limit_pickles_and_copies(self) -> None:
        import copy
        import pickle

        limit = FixedLimit(4)
        assert pickle.loads(pickle.dumps(limit)) == limit
        assert copy.deepcopy(limit) == limit
        assert Bulkhead(limit).max_concurrent == 4


class _MovableLimit:
    """A ``ConcurrencyLimit`` whose value the test moves, as an adaptive limit would."""

    def __init__(self, limit: int) -> None:
        self.limit = limit


# Its own forms: the decorator is built before the limit moves.
@pytest.mark.forms("call")
@pytest.mark.parametrize("form", ["call", "decorator", "async with"])
class TestLimitReadAtEachAdmission:
    """``max_concurrent`` may be a limit object; every admission reads its current value."""

    async def test_a_raised_limit_admits_more_and_a_lowered_one_fewer(self, form: str) -> None:
        limit = _MovableLimit(1)
        bulkhead = Bulkhead(limit)
        gate = asyncio.Event()

        async def work() -> None:
            await gate.wait()

        decorated = bulkhead(work)  # decorated before the limit moves

        async def run() -> None:
            if form == "call":
                await bulkhead.call(work)
            elif form == "decorator":
                await decorated()
            else:
                async with bulkhead:
                    await work()

        first = asyncio.create_task(run())
        await asyncio.sleep(0)
        with pytest.raises(BulkheadFull):
            await run()
        limit.limit = 2
        second = asyncio.create_task(run())
        await asyncio.sleep(0)
        assert bulkhead.statistics().running == 2
        assert bulkhead.max_concurrent == 2
        limit.limit = 1
        with pytest.raises(BulkheadFull):
            await run()
        gate.set()
        await asyncio.gather(first, second)
        assert bulkhead.statistics().running == 0


@pytest.mark.forms("call")
class TestMovingLimitAndTheQueue:
    """A limit that moves while calls wait: the queue is served first, as far as it allows."""

    async def test_a_raised_limit_serves_the_waiters_before_a_newcomer(self) -> None:
        limit = _MovableLimit(1)
        bulkhead = Bulkhead(limit, max_waiting=5)
        gate = Gate()
        tasks = [asyncio.create_task(bulkhead.call(gate.work, i)) for i in range(3)]
        await settle()
        assert gate.started == [0]
        limit.limit = 3
        tasks.append(asyncio.create_task(bulkhead.call(gate.work, 3)))  # the newcomer
        await settle()
        assert gate.started == [0, 1, 2]  # the room went to the oldest waiters
        assert stats(bulkhead) == (3, 1)
        gate.open()
        assert await asyncio.gather(*tasks) == [0, 1, 2, 3]
        assert stats(bulkhead) == (0, 0)
        assert bulkhead.statistics().admitted == 4

    async def test_a_release_under_a_raised_limit_serves_as_many_waiters_as_there_is_room(
        self,
    ) -> None:
        limit = _MovableLimit(1)
        bulkhead = Bulkhead(limit, max_waiting=5)
        first, rest = asyncio.Event(), Gate()

        async def holder() -> None:
            await first.wait()

        tasks = [asyncio.create_task(bulkhead.call(holder))]
        await settle()
        tasks += [asyncio.create_task(bulkhead.call(rest.work, i)) for i in range(4)]
        await settle()
        limit.limit = 3
        first.set()  # one release, room for three
        await settle()
        assert rest.started == [0, 1, 2]
        assert stats(bulkhead) == (3, 1)
        rest.open()
        await asyncio.gather(*tasks)
        assert stats(bulkhead) == (0, 0)

    async def test_a_lowered_limit_hands_no_slot_until_running_is_below_it(self) -> None:
        limit = _MovableLimit(3)
        bulkhead = Bulkhead(limit, max_waiting=5)
        events = [asyncio.Event() for _ in range(3)]
        waiting = Gate()

        async def hold(index: int) -> None:
            await events[index].wait()

        holders = [asyncio.create_task(bulkhead.call(hold, i)) for i in range(3)]
        await settle()
        queued = asyncio.create_task(bulkhead.call(waiting.work, 0))
        await settle()
        limit.limit = 1
        events[0].set()
        await settle()
        assert waiting.started == []  # two still run: above the new limit of one
        assert stats(bulkhead) == (2, 1)
        events[1].set()
        await settle()
        assert waiting.started == []  # one runs: the limit
        events[2].set()
        await settle()
        assert waiting.started == [0]
        waiting.open()
        await asyncio.gather(*holders, queued)
        assert stats(bulkhead) == (0, 0)


@pytest.mark.forms("call")
class TestRefresh:
    """``refresh()``: a limit that rose while nothing runs reaches the waiters at once."""

    async def test_a_limit_raised_from_zero_serves_the_queue_on_refresh(self) -> None:
        limit = _MovableLimit(0)
        bulkhead = Bulkhead(limit, max_waiting=2)
        gate = Gate()
        task = asyncio.create_task(bulkhead.call(gate.work, 1))
        await settle()
        assert stats(bulkhead) == (0, 1)  # nothing runs, so no release will come
        limit.limit = 1
        await settle()
        assert gate.started == []  # nobody read the limit since it rose
        bulkhead.refresh()
        await settle()
        assert gate.started == [1]
        gate.open()
        assert await task == 1
        assert stats(bulkhead) == (0, 0)

    async def test_refresh_with_nobody_waiting_changes_nothing(self) -> None:
        bulkhead = Bulkhead(2)
        bulkhead.refresh()
        assert await bulkhead.call(ok) == "ok"
        assert stats(bulkhead) == (0, 0)


class TestOptionNames:
    """``max_wait`` is stoic's name for the wait; ``timeout`` is the founding document's."""

    def test_max_wait_and_timeout_are_the_same_option(self) -> None:
        assert Bulkhead(2, max_wait=1.5).max_wait == Bulkhead(2, 0, 1.5).max_wait == 1.5

    def test_giving_both_is_an_error(self) -> None:
        with pytest.raises(TypeError, match="give max_wait or timeout"):
            Bulkhead(2, 0, 1.0, max_wait=2.0)

    def test_a_limit_class_where_its_instance_belongs_is_refused(self) -> None:
        with pytest.raises(TypeError, match="got the class FixedLimit: pass an instance"):
            Bulkhead(FixedLimit)  # type: ignore[arg-type]

    def test_a_limit_object_whose_limit_is_no_int_is_refused(self) -> None:
        with pytest.raises(TypeError, match="max_concurrent's limit must be an int >= 0"):
            Bulkhead(_MovableLimit("ten"))  # type: ignore[arg-type]

    def test_a_limit_object_has_no_config_form(self) -> None:
        from stoic import Pipeline, pipeline_to_config

        with pytest.raises(ValueError, match="is an object, which config cannot express"):
            pipeline_to_config(Pipeline(Bulkhead(_MovableLimit(3))))
