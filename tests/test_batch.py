"""Partial failure: gather_partial, gather_outcomes, map_partial, map_outcomes, Outcome."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import inspect
import itertools
from collections.abc import Iterator
from typing import Any, assert_type

import pytest

from stoic.batch import Outcome, gather_outcomes, gather_partial, map_outcomes, map_partial
from tests.timeline import clock_origin, elapsed  # noqa: F401  (autouse fixture)


class Abort(BaseException):
    """A BaseException that is not cancellation: must propagate, never count as a failure."""


async def value_after(delay: float, value: int) -> int:
    await asyncio.sleep(delay)
    return value


async def fail_after(delay: float, error: Exception) -> int:
    await asyncio.sleep(delay)
    raise error


class Slow:
    """An awaitable factory that records when its calls observed cancellation."""

    def __init__(self, cleanup: float = 0.0) -> None:
        self.cleanup = cleanup
        self.cancelled_at: list[float] = []
        self.unwound_at: list[float] = []

    async def __call__(self, delay: float = 100.0) -> int:
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            self.cancelled_at.append(elapsed())
            if self.cleanup:
                await asyncio.sleep(self.cleanup)
            self.unwound_at.append(elapsed())
            raise
        return -1


def assert_no_task_left() -> None:
    assert asyncio.all_tasks() == {asyncio.current_task()}


@contextlib.contextmanager
def no_loop_errors() -> Iterator[None]:
    """Fail on "Task was destroyed but it is pending", "exception was never retrieved"..."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        yield
        gc.collect()
    finally:
        loop.set_exception_handler(None)
    assert errors == []


class TestGatherPartial:
    """gather_partial returns (successes, failures) and stops at max_failures."""

    async def test_results_are_in_input_order_not_completion_order(self) -> None:
        first, second = ValueError("first"), ValueError("second")
        successes, failures = await gather_partial(
            value_after(3, 0),
            fail_after(2, first),
            value_after(1, 1),
            fail_after(0.5, second),
            value_after(2, 2),
        )
        assert successes == [0, 1, 2]
        assert failures == [first, second]

    async def test_waits_for_everything_without_max_failures(self) -> None:
        successes, failures = await gather_partial(
            fail_after(1, ValueError()), value_after(7, 1), fail_after(3, KeyError())
        )
        assert elapsed() == 7
        assert successes == [1]
        assert len(failures) == 2

    async def test_no_awaitables_gives_two_empty_lists(self) -> None:
        assert await gather_partial() == ([], [])

    async def test_accepts_tasks_and_futures(self) -> None:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        future.set_result(5)
        task = asyncio.create_task(value_after(1, 6))
        assert await gather_partial(future, task) == ([5, 6], [])

    async def test_max_failures_returns_at_the_nth_failure_and_cancels_the_rest(self) -> None:
        slow = Slow()
        first, second = ConnectionError("a"), ConnectionError("b")
        with no_loop_errors():
            successes, failures = await gather_partial(
                value_after(0.5, 1),
                slow(),
                fail_after(1, first),
                fail_after(2, second),
                fail_after(3, ConnectionError("never counted")),
                slow(),
                max_failures=2,
            )
            assert_no_task_left()
        assert elapsed() == 2
        assert slow.cancelled_at == [2, 2]
        assert successes == [1]
        assert failures == [first, second]

    async def test_max_failures_returns_after_cancelled_tasks_have_unwound(self) -> None:
        slow = Slow(cleanup=3)
        _, failures = await gather_partial(slow(), fail_after(1, ValueError()), max_failures=1)
        assert slow.unwound_at == [4]
        assert elapsed() == 4
        assert len(failures) == 1

    async def test_a_failure_raised_while_unwinding_is_kept(self) -> None:
        cleanup_error = RuntimeError("cleanup failed")

        async def fails_on_cancel() -> int:
            try:
                await asyncio.sleep(100)
            except asyncio.CancelledError:
                raise cleanup_error from None
            return 0

        trigger = ValueError("trigger")
        _, failures = await gather_partial(
            fails_on_cancel(), fail_after(1, trigger), max_failures=1
        )
        assert failures == [cleanup_error, trigger]

    async def test_failures_in_the_same_step_are_all_kept(self) -> None:
        errors = [ValueError(str(i)) for i in range(3)]
        _, failures = await gather_partial(*(fail_after(1, e) for e in errors), max_failures=1)
        assert failures == errors

    async def test_caller_cancellation_cancels_children_and_propagates(self) -> None:
        slow = Slow()
        with no_loop_errors():
            batch = asyncio.create_task(gather_partial(slow(), slow(), value_after(0.5, 1)))
            await asyncio.sleep(1)
            batch.cancel()
            with pytest.raises(asyncio.CancelledError):
                await batch
            assert_no_task_left()
        assert slow.cancelled_at == [1, 1]

    async def test_caller_cancelled_again_still_waits_for_children_to_unwind(self) -> None:
        slow = Slow(cleanup=5)
        batch = asyncio.create_task(gather_partial(slow()))
        await asyncio.sleep(1)
        batch.cancel()
        await asyncio.sleep(1)
        batch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await batch
        assert elapsed() == 6
        assert slow.unwound_at == [6]
        assert_no_task_left()

    async def test_caller_timeout_cancels_children(self) -> None:
        slow = Slow()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(3):
                await gather_partial(slow(), fail_after(1, ValueError()))
        assert slow.cancelled_at == [3]
        assert_no_task_left()

    async def test_base_exception_cancels_the_rest_and_propagates(self) -> None:
        slow = Slow()

        async def abort() -> int:
            await asyncio.sleep(2)
            raise Abort

        with no_loop_errors():
            with pytest.raises(Abort):
                await gather_partial(slow(), abort(), fail_after(1, ValueError()))
            assert_no_task_left()
        assert slow.cancelled_at == [2]

    async def test_task_cancelled_elsewhere_propagates_cancelled_error(self) -> None:
        slow = Slow()
        victim = asyncio.create_task(asyncio.sleep(100))
        asyncio.get_running_loop().call_later(1, victim.cancel)
        with pytest.raises(asyncio.CancelledError):
            await gather_partial(victim, slow())
        current = asyncio.current_task()
        assert current is not None
        assert current.cancelling() == 0
        assert slow.cancelled_at == [1]

    def test_keyboard_interrupt_propagates_and_siblings_are_cancelled(self) -> None:
        from stoic.testing import run

        slow = Slow()

        async def interrupt() -> int:
            await asyncio.sleep(1)
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            run(gather_partial(slow(), interrupt()))
        assert slow.cancelled_at == [1]

    @pytest.mark.parametrize("bad", [0, -1])
    async def test_rejects_max_failures_below_one(self, bad: int) -> None:
        with pytest.raises(ValueError, match=rf"max_failures must be >= 1 or None, got {bad}"):
            await gather_partial(max_failures=bad)

    @pytest.mark.parametrize("bad", [1.5, True, "2"])
    async def test_rejects_max_failures_that_is_not_an_int(self, bad: Any) -> None:
        with pytest.raises(TypeError, match="max_failures must be an int"):
            await gather_partial(max_failures=bad)

    async def test_invalid_option_closes_the_coroutines_it_was_given(self) -> None:
        coro = value_after(1, 1)
        with pytest.raises(ValueError, match="max_failures"):
            await gather_partial(coro, max_failures=0)
        assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED

    async def test_non_awaitable_raises_and_leaves_nothing_behind(self) -> None:
        slow = Slow()
        started, unstarted = slow(), value_after(1, 1)
        with pytest.raises(TypeError):
            await gather_partial(started, 42, unstarted)  # type: ignore[arg-type]
        assert inspect.getcoroutinestate(unstarted) == inspect.CORO_CLOSED
        assert_no_task_left()


class TestGatherOutcomes:
    """gather_outcomes returns one Outcome per awaitable and never raises for a task's failure."""

    async def test_one_outcome_per_awaitable_in_input_order(self) -> None:
        error = KeyError("k")
        outcomes = await gather_outcomes(value_after(2, 1), fail_after(1, error), value_after(0, 3))
        assert outcomes == [Outcome(value=1), Outcome(error=error), Outcome(value=3)]

    async def test_waits_for_every_awaitable(self) -> None:
        await gather_outcomes(fail_after(1, ValueError()), value_after(5, 1))
        assert elapsed() == 5

    async def test_task_cancelled_elsewhere_becomes_an_outcome(self) -> None:
        victim = asyncio.create_task(asyncio.sleep(100, result=0))
        asyncio.get_running_loop().call_later(1, victim.cancel)
        cancelled, finished = await gather_outcomes(victim, value_after(2, 7))
        assert isinstance(cancelled.error, asyncio.CancelledError)
        assert finished == Outcome(value=7)
        assert elapsed() == 2

    async def test_caller_cancellation_cancels_children_and_propagates(self) -> None:
        slow = Slow()
        batch = asyncio.create_task(gather_outcomes(slow(), fail_after(0.5, ValueError())))
        await asyncio.sleep(1)
        batch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await batch
        assert slow.cancelled_at == [1]
        assert_no_task_left()

    async def test_base_exception_cancels_the_rest_and_propagates(self) -> None:
        slow = Slow()

        async def abort() -> int:
            await asyncio.sleep(1)
            raise Abort

        with pytest.raises(Abort):
            await gather_outcomes(slow(), abort())
        assert slow.cancelled_at == [1]
        assert_no_task_left()

    async def test_outcomes_are_typed_by_the_awaitables(self) -> None:
        outcomes = await gather_outcomes(value_after(0, 1), value_after(0, 2))
        assert_type(outcomes, list[Outcome[int]])
        assert_type(outcomes[0].unwrap(), int)
        assert [o.unwrap() for o in outcomes] == [1, 2]


class TestOutcome:
    """Outcome holds a value or an error, frozen."""

    def test_a_value_is_ok(self) -> None:
        outcome = Outcome(value=3)
        assert outcome.ok
        assert outcome.value == 3
        assert outcome.error is None
        assert outcome.unwrap() == 3

    def test_a_none_value_is_still_ok(self) -> None:
        outcome: Outcome[None] = Outcome(value=None)
        assert outcome.ok
        assert outcome.unwrap() is None

    def test_an_error_is_not_ok_and_unwrap_raises_it(self) -> None:
        error = ValueError("bad")
        outcome: Outcome[int] = Outcome(error=error)
        assert not outcome.ok
        assert outcome.value is None
        with pytest.raises(ValueError, match="bad") as raised:
            outcome.unwrap()
        assert raised.value is error

    def test_rejects_both_a_value_and_an_error(self) -> None:
        with pytest.raises(ValueError, match="a value or an error, not both"):
            Outcome(value=1, error=ValueError())

    def test_is_frozen(self) -> None:
        outcome = Outcome(value=1)
        with pytest.raises(dataclasses.FrozenInstanceError):
            outcome.value = 2  # type: ignore[misc]

    def test_has_slots(self) -> None:
        assert not hasattr(Outcome(value=1), "__dict__")

    def test_repr_shows_what_it_holds(self) -> None:
        assert repr(Outcome(value="x")) == "Outcome(value='x')"
        assert repr(Outcome(error=KeyError("k"))) == "Outcome(error=KeyError('k'))"

    def test_equal_when_holding_the_same(self) -> None:
        assert Outcome(value=1) == Outcome(value=1)
        assert Outcome(value=1) != Outcome(value=2)


class TestMapPartial:
    """map_partial applies fn to items lazily, at most `concurrency` at once."""

    async def test_results_are_in_input_order(self) -> None:
        async def fn(item: int) -> int:
            await asyncio.sleep(10 - item)
            if item % 3 == 0:
                raise ValueError(item)
            return item * 10

        successes, failures = await map_partial(fn, range(8), concurrency=3)
        assert successes == [10, 20, 40, 50, 70]
        assert [e.args[0] for e in failures] == [0, 3, 6]

    async def test_takes_as_long_as_the_batches_it_needs(self) -> None:
        successes, _ = await map_partial(lambda i: value_after(1, i), range(10), concurrency=3)
        assert elapsed() == 4
        assert successes == list(range(10))

    async def test_without_concurrency_everything_starts_at_once(self) -> None:
        successes, _ = await map_partial(lambda i: value_after(1, i), range(50))
        assert elapsed() == 1
        assert len(successes) == 50

    async def test_never_more_than_concurrency_in_flight(self) -> None:
        in_flight = peak = 0

        async def fn(item: int) -> int:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await asyncio.sleep(item % 4 + 1)
            finally:
                in_flight -= 1
            return item

        successes, _ = await map_partial(fn, range(40), concurrency=5)
        assert peak == 5
        assert successes == list(range(40))

    async def test_items_are_pulled_only_when_a_slot_is_free(self) -> None:
        pulled_at: list[float] = []

        def items() -> Iterator[int]:
            for item in range(6):
                pulled_at.append(elapsed())
                yield item

        await map_partial(lambda i: value_after(1, i), items(), concurrency=2)
        assert pulled_at == [0, 0, 1, 1, 2, 2]

    async def test_a_million_item_generator_is_never_materialised(self) -> None:
        pulled = 0

        def items() -> Iterator[int]:
            nonlocal pulled
            for item in range(1_000_000):
                pulled += 1
                yield item

        async def fn(item: int) -> int:
            await asyncio.sleep(1)
            if item == 9:
                raise ValueError(item)
            return item

        async with asyncio.timeout(60):  # fail, not hang, if the stop never comes
            successes, failures = await map_partial(fn, items(), concurrency=5, max_failures=1)
        assert elapsed() == 2
        assert successes == [0, 1, 2, 3, 4, 5, 6, 7, 8]
        assert len(failures) == 1
        assert pulled == 10

    async def test_max_failures_cancels_running_calls_and_starts_no_more(self) -> None:
        slow = Slow()
        started: list[int] = []

        async def fn(item: int) -> int:
            started.append(item)
            if item == 1:
                return await fail_after(2, ValueError(item))
            return await slow()

        with no_loop_errors():
            async with asyncio.timeout(60):  # fail, not hang, if the stop never comes
                successes, failures = await map_partial(
                    fn, itertools.count(), concurrency=3, max_failures=1
                )
            assert_no_task_left()
        assert elapsed() == 2
        assert started == [0, 1, 2]
        assert slow.cancelled_at == [2, 2]
        assert successes == []
        assert len(failures) == 1

    async def test_an_error_from_the_items_cancels_running_calls_and_propagates(self) -> None:
        slow = Slow()

        def items() -> Iterator[float]:
            yield 100
            yield 1
            raise LookupError("source broke")

        with pytest.raises(LookupError, match="source broke"):
            await map_partial(slow, items(), concurrency=2)
        assert slow.cancelled_at == [1]
        assert_no_task_left()

    async def test_caller_cancellation_cancels_running_calls_and_pulls_no_more(self) -> None:
        slow = Slow()
        batch = asyncio.create_task(map_partial(slow, itertools.repeat(100.0), concurrency=4))
        await asyncio.sleep(1)
        batch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await batch
        assert slow.cancelled_at == [1, 1, 1, 1]
        assert_no_task_left()

    @pytest.mark.parametrize("parameter", ["concurrency", "max_failures"])
    async def test_rejects_limits_below_one(self, parameter: str) -> None:
        with pytest.raises(ValueError, match=rf"{parameter} must be >= 1 or None, got 0"):
            await map_partial(Slow(), [1.0], **{parameter: 0})


class TestMapOutcomes:
    """map_outcomes returns one Outcome per item, lazily and with bounded concurrency."""

    async def test_one_outcome_per_item_in_input_order(self) -> None:
        async def fn(item: int) -> int:
            await asyncio.sleep(5 - item)
            if item == 2:
                raise KeyError(item)
            return item

        outcomes = await map_outcomes(fn, range(5), concurrency=2)
        assert [o.ok for o in outcomes] == [True, True, False, True, True]
        assert [o.value for o in outcomes] == [0, 1, None, 3, 4]
        assert_type(outcomes, list[Outcome[int]])

    async def test_respects_concurrency(self) -> None:
        await map_outcomes(lambda i: value_after(1, i), range(7), concurrency=2)
        assert elapsed() == 4

    async def test_rejects_concurrency_below_one(self) -> None:
        with pytest.raises(ValueError, match="concurrency must be >= 1 or None, got 0"):
            await map_outcomes(Slow(), [1.0], concurrency=0)
