"""Circuit breaker: states, probes and leases, trip rules, classification, events, forms."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from stoic import _clock
from stoic._circuit_breaker import (
    CallRejectedByBreaker,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerStatistics,
    CircuitState,
    CircuitStateChanged,
)
from stoic._events import Event
from stoic.exceptions import CircuitBreakerOpen
from stoic.testing import VirtualClock
from tests.forms import around_breaker, forms_of, sees_results

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN

# Every async test runs with ``CircuitBreaker.call`` routed through each form.
EVERY_FORM = forms_of(
    CircuitBreaker, "decorator", "async with", "pipeline", pipeline=around_breaker
)


class Boom(Exception):
    pass


class Counter:
    """An async function that counts its calls and fails while ``failing`` is set."""

    def __init__(self, *, failing: bool = False) -> None:
        self.calls = 0
        self.failing = failing

    async def __call__(self) -> str:
        self.calls += 1
        if self.failing:
            raise Boom("down")
        return "ok"


async def ok() -> str:
    return "ok"


async def fail() -> str:
    raise Boom("down")


async def fail_times(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(Boom):
            await breaker.call(fail)


async def rejected(breaker: CircuitBreaker, fn: Callable[[], Awaitable[Any]] = ok) -> float | None:
    """Call through ``breaker``, expect a rejection and return its ``retry_after``."""
    with pytest.raises(CircuitBreakerOpen) as info:
        await breaker.call(fn)
    return info.value.retry_after


class Gate:
    """An async function that blocks until released, then succeeds or raises."""

    def __init__(self) -> None:
        self.entered = 0
        self._future: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def __call__(self) -> str:
        self.entered += 1
        return await asyncio.shield(self._future)

    def open(self, exc: BaseException | None = None) -> None:
        if exc is None:
            self._future.set_result("ok")
        else:
            self._future.set_exception(exc)


async def start(breaker: CircuitBreaker, fn: Callable[[], Awaitable[Any]]) -> asyncio.Task[Any]:
    """Start ``breaker.call(fn)`` as a task and let it reach ``fn``."""
    task = asyncio.create_task(breaker.call(fn))
    await asyncio.sleep(0)
    return task


class TestSeedDefaults:
    """The seed's default config opens, waits, probes one at a time and closes again."""

    async def test_default_config_recovers_after_an_outage(self) -> None:
        breaker = CircuitBreaker(CircuitBreakerConfig())
        service = Counter(failing=True)
        for _ in range(5):
            with pytest.raises(Boom):
                await breaker.call(service)
        assert breaker.state is OPEN
        assert service.calls == 5

        for _ in range(6):
            await rejected(breaker, service)
            await asyncio.sleep(9.99)
        assert service.calls == 5

        await asyncio.sleep(0.06)  # 60 s since it opened
        service.failing = False
        for probe in range(3):
            gate = Gate()
            task = await start(breaker, gate)
            assert breaker.state is HALF_OPEN
            # One probe at a time; a permit frees at the latest when its 60 s lease ends.
            assert await rejected(breaker, service) == pytest.approx(60.0)
            gate.open()
            assert await task == "ok"
            assert breaker.statistics().half_open_successes == (probe + 1) % 3
        assert breaker.state is CLOSED
        assert await breaker.call(service) == "ok"

    async def test_four_failures_do_not_open(self) -> None:
        breaker = CircuitBreaker()
        await fail_times(breaker, 4)
        assert breaker.state is CLOSED

    async def test_a_success_resets_the_consecutive_count(self) -> None:
        breaker = CircuitBreaker()
        await fail_times(breaker, 4)
        await breaker.call(ok)
        await fail_times(breaker, 4)
        assert breaker.state is CLOSED

    async def test_closed_success_does_not_read_the_clock(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        breaker = CircuitBreaker()

        def no_clock() -> float:
            raise AssertionError("the closed happy path read the clock")

        monkeypatch.setattr(_clock, "now", no_clock)
        assert await breaker.call(ok) == "ok"


class TestOpen:
    """OPEN rejects at once, without calling, until the break duration has passed."""

    async def test_rejects_without_calling_the_function(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1)
        await fail_times(breaker, 1)
        service = Counter()
        await rejected(breaker, service)
        assert service.calls == 0

    async def test_retry_after_counts_down_to_the_end_of_the_break(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1, timeout=30.0)
        await fail_times(breaker, 1)
        assert await rejected(breaker) == 30.0
        await asyncio.sleep(12.5)
        assert await rejected(breaker) == 17.5

    async def test_first_call_after_the_break_is_a_probe(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1, timeout=30.0)
        await fail_times(breaker, 1)
        await asyncio.sleep(30)
        assert breaker.state is OPEN  # lazily: the next call moves it
        assert await breaker.call(ok) == "ok"
        assert breaker.state is HALF_OPEN


class TestHalfOpen:
    """Probes: a permit each, at most half_open_max_calls at a time, released on every path."""

    @staticmethod
    async def half_open(**options: Any) -> CircuitBreaker:
        options = {"failure_threshold": 1, "timeout": 10.0, **options}
        breaker = CircuitBreaker(**options)
        await fail_times(breaker, 1)
        await asyncio.sleep(10)
        return breaker

    async def test_concurrent_calls_admit_exactly_half_open_max_calls(self) -> None:
        breaker = await self.half_open(half_open_max_calls=3, success_threshold=5)
        gate = Gate()
        tasks = [asyncio.create_task(breaker.call(gate)) for _ in range(10)]
        await asyncio.sleep(0)
        assert gate.entered == 3
        gate.open()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert results.count("ok") == 3
        rejections = [r for r in results if isinstance(r, CircuitBreakerOpen)]
        assert len(rejections) == 7
        assert [r.retry_after for r in rejections] == [pytest.approx(10.0)] * 7

    async def test_a_finished_probe_frees_its_permit(self) -> None:
        breaker = await self.half_open()
        await breaker.call(ok)
        await breaker.call(ok)
        assert breaker.statistics().half_open_successes == 2

    async def test_a_probe_failure_reopens(self) -> None:
        breaker = await self.half_open(success_threshold=2)
        await breaker.call(ok)
        await fail_times(breaker, 1)
        assert breaker.state is OPEN
        assert await rejected(breaker) == 10.0

    async def test_a_cancelled_probe_releases_its_permit_and_counts_nothing(self) -> None:
        breaker = await self.half_open()
        task = await start(breaker, Gate())
        await rejected(breaker)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        stats = breaker.statistics()
        assert (stats.state, stats.half_open_successes, stats.probes_in_flight) == (HALF_OPEN, 0, 0)
        assert (stats.successful_calls, stats.failed_calls, stats.ignored_calls) == (0, 1, 0)
        assert await breaker.call(ok) == "ok"

    async def test_an_ignored_exception_releases_the_permit(self) -> None:
        breaker = await self.half_open(ignore=KeyError)

        async def missing() -> str:
            raise KeyError("x")

        with pytest.raises(KeyError):
            await breaker.call(missing)
        assert breaker.state is HALF_OPEN
        assert await breaker.call(ok) == "ok"

    async def test_a_hanging_probe_does_not_wedge_the_breaker(self) -> None:
        breaker = await self.half_open()
        hung = await start(breaker, Gate())
        await asyncio.sleep(9.5)
        assert await rejected(breaker) == pytest.approx(0.5)  # until the lease ends
        await asyncio.sleep(0.5)  # the probe's lease (one break duration) ran out
        assert await breaker.call(ok) == "ok"
        assert breaker.statistics().half_open_successes == 1
        hung.cancel()

    async def test_late_failure_of_an_expired_probe_is_ignored(self) -> None:
        breaker = await self.half_open()
        gate = Gate()
        hung = await start(breaker, gate)
        await asyncio.sleep(10)
        await breaker.call(ok)
        gate.open(Boom("late"))
        with pytest.raises(Boom):
            await hung
        stats = breaker.statistics()
        assert (stats.state, stats.half_open_successes) == (HALF_OPEN, 1)

    async def test_late_success_of_an_expired_probe_is_ignored(self) -> None:
        breaker = await self.half_open(success_threshold=2)
        gate = Gate()
        hung = await start(breaker, gate)
        await asyncio.sleep(10)
        await breaker.call(ok)
        gate.open()
        await hung
        assert breaker.statistics().half_open_successes == 1
        assert breaker.state is HALF_OPEN

    async def test_outcome_of_a_call_admitted_before_it_opened_is_ignored(self) -> None:
        breaker = CircuitBreaker(failure_threshold=2, success_threshold=1, timeout=10.0)
        gate = Gate()
        slow = await start(breaker, gate)
        await fail_times(breaker, 2)
        await asyncio.sleep(10)
        probe_gate = Gate()
        probe = await start(breaker, probe_gate)
        gate.open(Boom("late"))  # admitted while CLOSED: must not reopen the breaker
        with pytest.raises(Boom):
            await slow
        assert breaker.state is HALF_OPEN
        probe_gate.open()
        await probe
        assert breaker.state is CLOSED


class TestClassification:
    """record=, ignore= and failure_result= decide what counts; cancellation never does."""

    async def test_a_record_predicate_that_raises_counts_nothing_and_frees_the_probe(
        self,
    ) -> None:
        def broken(exc: BaseException) -> bool:
            if isinstance(exc, KeyError):
                raise RuntimeError("bug")
            return True

        async def missing() -> str:
            raise KeyError("x")

        breaker = CircuitBreaker(failure_threshold=1, timeout=10.0, record=broken)
        await fail_times(breaker, 1)
        await asyncio.sleep(10)
        with pytest.raises(RuntimeError, match="bug"):
            await breaker.call(missing)  # the probe: its outcome is unknown, so not counted
        assert breaker.state is HALF_OPEN
        assert breaker.statistics().probes_in_flight == 0
        assert await breaker.call(ok) == "ok"  # the permit came back

    async def test_ignored_exception_counts_as_nothing(self) -> None:
        breaker = CircuitBreaker(failure_threshold=2, ignore=KeyError)

        async def missing() -> str:
            raise KeyError("x")

        await fail_times(breaker, 1)
        for _ in range(5):
            with pytest.raises(KeyError):
                await breaker.call(missing)
        stats = breaker.statistics()
        assert (stats.state, stats.consecutive_failures, stats.ignored_calls) == (CLOSED, 1, 5)

    async def test_ignore_wins_over_record(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1, record=Exception, ignore=Boom)
        with pytest.raises(Boom):
            await breaker.call(fail)
        assert breaker.state is CLOSED

    async def test_unrecorded_exception_is_reraised_and_counts_as_nothing(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1, record=ConnectionError)
        with pytest.raises(Boom):
            await breaker.call(fail)
        stats = breaker.statistics()
        assert (stats.state, stats.failed_calls, stats.successful_calls) == (CLOSED, 0, 0)

    async def test_record_predicate(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1, record=lambda e: "down" in str(e))
        with pytest.raises(Boom):
            await breaker.call(fail)
        assert breaker.state is OPEN

    async def test_group_of_recorded_exceptions_is_a_failure(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1, record=ConnectionError)

        async def both() -> None:
            raise ExceptionGroup("x", [ConnectionError(), ConnectionResetError()])

        with pytest.raises(ExceptionGroup):
            await breaker.call(both)
        assert breaker.state is OPEN

    @sees_results
    async def test_failure_result_counts_a_failure_and_returns_the_value(self) -> None:
        breaker = CircuitBreaker(failure_threshold=2, failure_result=lambda r: r == "ok")
        assert await breaker.call(ok) == "ok"
        assert await breaker.call(ok) == "ok"
        assert breaker.state is OPEN
        assert breaker.statistics().failed_calls == 2

    @sees_results
    async def test_a_failure_result_predicate_that_raises_releases_the_probe(self) -> None:
        def broken(result: object) -> bool:
            raise RuntimeError("bug")

        breaker = CircuitBreaker(failure_threshold=1, timeout=10.0, failure_result=broken)
        await fail_times(breaker, 1)
        await asyncio.sleep(10)
        with pytest.raises(RuntimeError, match="bug"):
            await breaker.call(ok)
        assert breaker.statistics().probes_in_flight == 0

    async def test_cancellation_never_counts(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1)
        task = await start(breaker, Gate())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        stats = breaker.statistics()
        assert (stats.state, stats.failed_calls, stats.ignored_calls) == (CLOSED, 0, 0)


class TestRateRule:
    """trip='rate': failure rate over a count or time window, once minimum_calls is reached."""

    async def test_count_window_waits_for_minimum_calls(self) -> None:
        breaker = CircuitBreaker(trip="rate", window_size=10, minimum_calls=4, failure_rate=0.5)
        await fail_times(breaker, 3)
        assert breaker.state is CLOSED
        await breaker.call(ok)  # 4 calls, 75% failed
        assert breaker.state is OPEN
        assert breaker.statistics().times_opened == 1

    async def test_count_window_below_the_rate_stays_closed(self) -> None:
        breaker = CircuitBreaker(trip="rate", window_size=10, minimum_calls=10, failure_rate=0.5)
        for _ in range(6):
            await breaker.call(ok)
        await fail_times(breaker, 4)
        assert breaker.state is CLOSED
        assert breaker.statistics().window_failures == 4

    async def test_count_window_forgets_the_oldest_calls(self) -> None:
        breaker = CircuitBreaker(trip="rate", window_size=4, minimum_calls=4, failure_rate=0.75)
        await fail_times(breaker, 2)
        for _ in range(4):
            await breaker.call(ok)
        await fail_times(breaker, 2)  # the first two failures have left the window
        stats = breaker.statistics()
        assert (stats.state, stats.window_calls, stats.window_failures) == (CLOSED, 4, 2)
        await fail_times(breaker, 1)
        assert breaker.state is OPEN

    async def test_time_window_trips_on_the_rate_within_the_window(self) -> None:
        breaker = CircuitBreaker(
            trip="rate", window_duration=10.0, window_buckets=10, minimum_calls=3
        )
        await breaker.call(ok)
        await asyncio.sleep(4)
        await fail_times(breaker, 1)
        assert breaker.state is CLOSED  # 2 calls < minimum_calls
        await asyncio.sleep(4)
        await fail_times(breaker, 1)
        assert breaker.state is OPEN

    async def test_time_window_forgets_old_buckets(self) -> None:
        breaker = CircuitBreaker(
            trip="rate", window_duration=10.0, window_buckets=5, minimum_calls=2
        )
        await fail_times(breaker, 1)
        await asyncio.sleep(10)
        assert breaker.statistics().window_calls == 0
        await breaker.call(ok)
        await fail_times(breaker, 1)
        assert breaker.state is OPEN  # 1 of 2 failed: 50%
        assert breaker.statistics().times_opened == 1

    async def test_rate_rule_does_not_use_consecutive_failures(self) -> None:
        breaker = CircuitBreaker(trip="rate", window_size=100, minimum_calls=100)
        await fail_times(breaker, 50)
        assert breaker.state is CLOSED


class TestSlowCalls:
    """slow_call_duration: slow calls count as failures (consecutive) or by their own rate."""

    @staticmethod
    async def slow_ok() -> str:
        await asyncio.sleep(2)
        return "ok"

    async def test_slow_success_counts_as_a_failure_under_the_consecutive_rule(self) -> None:
        breaker = CircuitBreaker(failure_threshold=2, slow_call_duration=2.0)
        assert await breaker.call(self.slow_ok) == "ok"
        assert await breaker.call(self.slow_ok) == "ok"
        stats = breaker.statistics()
        assert (stats.state, stats.slow_calls, stats.successful_calls) == (OPEN, 2, 2)

    async def test_fast_calls_are_not_slow(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1, slow_call_duration=2.5)
        await breaker.call(self.slow_ok)
        assert breaker.state is CLOSED

    async def test_slow_call_rate_trips_the_rate_rule(self) -> None:
        events: list[Event] = []
        breaker = CircuitBreaker(
            trip="rate",
            window_size=4,
            minimum_calls=4,
            slow_call_duration=2.0,
            slow_call_rate=0.5,
            listeners=[events.append],
        )
        for fn in (ok, ok, self.slow_ok):
            await breaker.call(fn)
        assert breaker.state is CLOSED
        await breaker.call(self.slow_ok)  # 2 of 4 slow, none failed
        assert events == [CircuitStateChanged(None, CLOSED, OPEN, "slow_call_rate", 60.0)]

    async def test_a_slow_probe_reopens(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1, timeout=10.0, slow_call_duration=1.0)
        await fail_times(breaker, 1)
        await asyncio.sleep(10)
        assert await breaker.call(self.slow_ok) == "ok"
        assert breaker.state is OPEN


class TestBreakDurationGrowth:
    """break_duration_multiplier grows each re-open up to max_break_duration; closing resets."""

    @staticmethod
    async def reopen(breaker: CircuitBreaker) -> float | None:
        retry_after = await rejected(breaker)
        assert retry_after is not None
        await asyncio.sleep(retry_after)
        await fail_times(breaker, 1)
        return await rejected(breaker)

    async def test_grows_on_each_reopen_up_to_the_cap(self) -> None:
        breaker = CircuitBreaker(
            failure_threshold=1,
            timeout=10.0,
            break_duration_multiplier=2.0,
            max_break_duration=50.0,
        )
        await fail_times(breaker, 1)
        assert [await self.reopen(breaker) for _ in range(4)] == [20.0, 40.0, 50.0, 50.0]

    async def test_closing_resets_the_break_duration(self) -> None:
        breaker = CircuitBreaker(
            failure_threshold=1,
            success_threshold=1,
            timeout=10.0,
            break_duration_multiplier=3.0,
            max_break_duration=100.0,
        )
        await fail_times(breaker, 1)
        assert await self.reopen(breaker) == 30.0
        await asyncio.sleep(30)
        await breaker.call(ok)
        assert breaker.state is CLOSED
        await fail_times(breaker, 1)
        assert await rejected(breaker) == 10.0


class TestManualControl:
    """isolate() holds it open until reset(); reset() closes and clears every count."""

    async def test_isolate_rejects_with_no_retry_after_until_reset(self) -> None:
        breaker = CircuitBreaker(timeout=1.0)
        breaker.isolate()
        assert breaker.state is OPEN
        await asyncio.sleep(3600)
        assert await rejected(breaker) is None
        breaker.reset()
        assert await breaker.call(ok) == "ok"

    async def test_reset_closes_and_clears_counts(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1)
        await fail_times(breaker, 1)
        await rejected(breaker)
        breaker.reset()
        stats = breaker.statistics()
        assert stats.state is CLOSED
        assert (stats.failed_calls, stats.rejected_calls, stats.times_opened) == (0, 0, 0)

    async def test_reset_makes_calls_in_flight_stale(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1)
        gate = Gate()
        task = await start(breaker, gate)
        breaker.reset()
        gate.open(Boom())
        with pytest.raises(Boom):
            await task
        assert breaker.state is CLOSED


class TestStatistics:
    """statistics() is a frozen snapshot."""

    async def test_snapshot_values(self) -> None:
        breaker = CircuitBreaker(failure_threshold=3, timeout=20.0)
        await breaker.call(ok)
        await fail_times(breaker, 3)
        await rejected(breaker)
        await asyncio.sleep(5)
        assert breaker.statistics() == CircuitBreakerStatistics(
            state=OPEN,
            isolated=False,
            successful_calls=1,
            failed_calls=3,
            slow_calls=0,
            ignored_calls=0,
            rejected_calls=1,
            times_opened=1,
            consecutive_failures=0,
            half_open_successes=0,
            probes_in_flight=0,
            window_calls=0,
            window_failures=0,
            window_slow_calls=0,
            break_duration=20.0,
            retry_after=15.0,
        )

    async def test_snapshot_is_frozen(self) -> None:
        stats = CircuitBreaker().statistics()
        with pytest.raises(dataclasses.FrozenInstanceError):
            stats.failed_calls = 3  # type: ignore[misc]

    async def test_probes_in_flight(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1, timeout=10.0, half_open_max_calls=2)
        await fail_times(breaker, 1)
        await asyncio.sleep(10)
        task = await start(breaker, Gate())
        assert breaker.statistics().probes_in_flight == 1
        task.cancel()


class TestEvents:
    """State changes and rejections reach listeners; a failing listener breaks nothing."""

    async def test_state_changes_are_delivered_in_order(self) -> None:
        events: list[Event] = []
        breaker = CircuitBreaker(
            failure_threshold=1,
            success_threshold=1,
            timeout=5.0,
            name="db",
            listeners=[events.append],
        )
        await fail_times(breaker, 1)
        await rejected(breaker)
        await asyncio.sleep(5)
        await breaker.call(ok)
        assert events == [
            CircuitStateChanged("db", CLOSED, OPEN, "failure_threshold", 5.0),
            CallRejectedByBreaker("db", OPEN, 5.0),
            CircuitStateChanged("db", OPEN, HALF_OPEN, "break_elapsed"),
            CircuitStateChanged("db", HALF_OPEN, CLOSED, "probes_succeeded"),
        ]

    async def test_isolate_and_reset_are_reported(self) -> None:
        events: list[Event] = []
        breaker = CircuitBreaker(listeners=[events.append])
        breaker.isolate()
        breaker.reset()
        assert [(e.old, e.new, e.reason) for e in events if isinstance(e, CircuitStateChanged)] == [
            (CLOSED, OPEN, "isolated"),
            (OPEN, CLOSED, "reset"),
        ]

    async def test_a_listener_that_raises_does_not_break_calls(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        def broken(event: Event) -> None:
            raise RuntimeError("listener bug")

        breaker = CircuitBreaker(failure_threshold=1, timeout=1.0, listeners=[broken])
        await fail_times(breaker, 1)
        assert await rejected(breaker) == 1.0
        await asyncio.sleep(1)
        assert await breaker.call(ok) == "ok"
        assert "listener bug" in caplog.text

    async def test_a_listener_can_inspect_the_breaker(self) -> None:
        seen: list[CircuitState] = []
        breaker: CircuitBreaker

        def listener(event: Event) -> None:
            seen.append(breaker.state)

        breaker = CircuitBreaker(failure_threshold=1, listeners=[listener])
        await fail_times(breaker, 1)
        assert seen == [OPEN]


class TestForms:
    """Decorator and ``async with`` behave like ``call``."""

    async def test_decorator(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1)

        @breaker
        async def fetch(url: str) -> str:
            raise Boom(url)

        with pytest.raises(Boom, match="example"):
            await fetch("example")
        with pytest.raises(CircuitBreakerOpen):
            await fetch("example")

    async def test_async_with_classifies_the_block_exception(self) -> None:
        breaker = CircuitBreaker(failure_threshold=2, ignore=KeyError)
        with pytest.raises(KeyError):
            async with breaker:
                raise KeyError("x")
        for _ in range(2):
            with pytest.raises(Boom):
                async with breaker:
                    raise Boom()
        assert breaker.state is OPEN
        with pytest.raises(CircuitBreakerOpen):
            async with breaker:
                pytest.fail("the block must not run")

    async def test_concurrent_async_with_blocks_keep_their_own_permits(self) -> None:
        breaker = CircuitBreaker(
            failure_threshold=1, success_threshold=2, timeout=10.0, half_open_max_calls=2
        )
        await fail_times(breaker, 1)
        await asyncio.sleep(10)
        order: list[str] = []

        async def probe(delay: float, label: str) -> None:
            async with breaker:
                await asyncio.sleep(delay)
                order.append(label)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(probe(2, "slow"))
            tg.create_task(probe(1, "fast"))
        assert order == ["fast", "slow"]
        assert breaker.state is CLOSED

    async def test_nested_async_with_in_one_task(self) -> None:
        breaker = CircuitBreaker(failure_threshold=2)
        with pytest.raises(Boom):
            async with breaker:
                async with breaker:
                    pass
                raise Boom()
        stats = breaker.statistics()
        assert (stats.successful_calls, stats.failed_calls) == (1, 1)


class TestConfig:
    """Options: validated at construction; keywords and config combine."""

    def test_seed_defaults(self) -> None:
        config = CircuitBreakerConfig()
        assert (config.failure_threshold, config.success_threshold) == (5, 3)
        assert (config.timeout, config.half_open_max_calls) == (60.0, 1)

    def test_keywords_build_the_config(self) -> None:
        assert CircuitBreaker(failure_threshold=3).config.failure_threshold == 3

    def test_keywords_override_a_given_config(self) -> None:
        base = CircuitBreakerConfig(failure_threshold=5, timeout=30.0)
        config = CircuitBreaker(base, failure_threshold=2).config
        assert (config.failure_threshold, config.timeout) == (2, 30.0)

    def test_unknown_keyword_is_a_type_error(self) -> None:
        with pytest.raises(TypeError):
            CircuitBreaker(threshold=3)  # type: ignore[call-arg]

    def test_listeners_are_frozen_as_a_tuple(self) -> None:
        assert CircuitBreakerConfig(listeners=[print]).listeners == (print,)

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"failure_threshold": 0}, "failure_threshold must be an int >= 1, got 0"),
            ({"success_threshold": 1.5}, "success_threshold must be an int >= 1"),
            ({"timeout": 0}, "timeout must be a finite number of seconds > 0, got 0"),
            ({"timeout": float("nan")}, "timeout must be"),
            ({"timeout": float("inf")}, "timeout must be"),
            ({"half_open_max_calls": 0}, "half_open_max_calls must be an int >= 1"),
            ({"trip": "ratio"}, "trip must be 'consecutive' or 'rate'"),
            ({"trip": "rate"}, "trip='rate' needs exactly one of window_size"),
            (
                {"trip": "rate", "window_size": 10, "window_duration": 5.0},
                "trip='rate' needs exactly one",
            ),
            ({"window_size": 10}, "apply only to trip='rate'"),
            ({"trip": "rate", "window_size": 0}, "window_size must be an int >= 1"),
            ({"trip": "rate", "window_duration": -1.0}, "window_duration must be"),
            ({"window_buckets": 0}, "window_buckets must be an int >= 1"),
            ({"minimum_calls": 0}, "minimum_calls must be an int >= 1"),
            (
                {"trip": "rate", "window_size": 5},
                r"minimum_calls must be <= window_size \(5\), got 10",
            ),
            ({"failure_rate": 0}, r"failure_rate must be in \(0, 1\], got 0"),
            ({"failure_rate": 1.5}, "failure_rate must be in"),
            ({"slow_call_duration": 0.0}, "slow_call_duration must be"),
            ({"slow_call_rate": 2}, "slow_call_rate must be in"),
            ({"break_duration_multiplier": 0.5}, "break_duration_multiplier must be"),
            ({"break_duration_multiplier": 2.0}, "max_break_duration must be set"),
            ({"max_break_duration": 10.0}, r"max_break_duration must be >= timeout \(60.0\)"),
            ({"record": ()}, "record must name at least one"),
        ],
    )
    def test_invalid_options_raise_value_error_naming_the_parameter(
        self, options: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            CircuitBreakerConfig(**options)
        with pytest.raises(ValueError, match=message):
            CircuitBreaker(**options)

    @pytest.mark.parametrize(
        "options",
        [{"record": 3}, {"ignore": "x"}, {"failure_result": 1}, {"listeners": [1]}],
    )
    def test_wrong_kinds_raise_type_error(self, options: dict[str, Any]) -> None:
        with pytest.raises(TypeError):
            CircuitBreakerConfig(**options)

    def test_config_must_be_a_config(self) -> None:
        with pytest.raises(TypeError, match="config must be"):
            CircuitBreaker({"failure_threshold": 1})  # type: ignore[arg-type]


# --- Stateful test: the breaker (consecutive rule) against a plain model -------------------

THRESHOLD, SUCCESSES, BREAK, PROBES = 3, 2, 10.0, 2


class Model:
    """What the breaker should do, written as directly as possible."""

    def __init__(self) -> None:
        self.state = CLOSED
        self.epoch = 0
        self.failures = 0
        self.successes = 0
        self.open_until = 0.0
        self.probes: dict[int, float] = {}  # probe id -> lease deadline
        self.next_probe = 0

    def change(self, state: CircuitState) -> None:
        self.state, self.epoch = state, self.epoch + 1
        self.failures = self.successes = 0
        self.probes = {}

    def admit(self, now: float) -> tuple[str, int] | None:
        if self.state is OPEN:
            if now < self.open_until:
                return None
            self.change(HALF_OPEN)
        if self.state is CLOSED:
            return ("closed", self.epoch)
        self.probes = {p: d for p, d in self.probes.items() if d > now}
        if len(self.probes) >= PROBES:
            return None
        self.next_probe += 1
        self.probes[self.next_probe] = now + BREAK
        return ("probe", self.next_probe)

    def finish(self, token: tuple[str, int], outcome: str, now: float) -> None:
        kind, ident = token
        if kind == "closed":
            if outcome == "cancel" or self.state is not CLOSED or ident != self.epoch:
                return
            self.failures = self.failures + 1 if outcome == "failure" else 0
            if self.failures >= THRESHOLD:
                self.change(OPEN)
                self.open_until = now + BREAK
            return
        deadline = self.probes.pop(ident, None)
        if outcome == "cancel" or deadline is None or now >= deadline:
            return
        if outcome == "failure":
            self.change(OPEN)
            self.open_until = now + BREAK
        else:
            self.successes += 1
            if self.successes >= SUCCESSES:
                self.change(CLOSED)


class BreakerMachine(RuleBasedStateMachine):
    """Immediate calls, pending calls finished or cancelled later, and time passing."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = VirtualClock()
        self.loop = self.clock.new_event_loop()
        _clock.enter_virtual_time(self.clock.time)  # as VirtualClock.run does; run step by step
        self.breaker = CircuitBreaker(
            failure_threshold=THRESHOLD,
            success_threshold=SUCCESSES,
            timeout=BREAK,
            half_open_max_calls=PROBES,
        )
        self.model = Model()
        self.pending: list[tuple[asyncio.Task[Any], asyncio.Future[str], tuple[str, int]]] = []

    def teardown(self) -> None:
        for task, _, _ in self.pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()
        _clock.exit_virtual_time(self.clock.time)

    def attempt(self, fn: Callable[[], Awaitable[str]]) -> tuple[str, int] | None:
        """Check admission against the model; return the model's token if admitted."""
        token = self.model.admit(self.clock.time())
        if token is None:
            with pytest.raises(CircuitBreakerOpen):
                self.loop.run_until_complete(self.breaker.call(fn))
        return token

    @rule(outcome=st.sampled_from(["success", "failure"]))
    def immediate_call(self, outcome: str) -> None:
        async def fn() -> str:
            if outcome == "failure":
                raise Boom()
            return "ok"

        token = self.attempt(fn)
        if token is not None:
            if outcome == "failure":
                with pytest.raises(Boom):
                    self.loop.run_until_complete(self.breaker.call(fn))
            else:
                assert self.loop.run_until_complete(self.breaker.call(fn)) == "ok"
            self.model.finish(token, outcome, self.clock.time())

    @rule()
    def start_pending_call(self) -> None:
        future: asyncio.Future[str] = self.loop.create_future()

        async def fn() -> str:
            return await future

        token = self.attempt(fn)
        if token is not None:
            task = self.loop.create_task(self.breaker.call(fn))
            self.loop.run_until_complete(asyncio.sleep(0))
            self.pending.append((task, future, token))

    @precondition(lambda self: self.pending)
    @rule(data=st.data(), outcome=st.sampled_from(["success", "failure", "cancel"]))
    def finish_pending_call(self, data: st.DataObject, outcome: str) -> None:
        index = data.draw(st.integers(0, len(self.pending) - 1))
        task, future, token = self.pending.pop(index)
        if outcome == "cancel":
            task.cancel()
        elif outcome == "failure":
            future.set_exception(Boom())
        else:
            future.set_result("ok")
        self.loop.run_until_complete(asyncio.wait([task]))
        if outcome == "cancel":
            assert task.cancelled()
        elif outcome == "failure":
            assert isinstance(task.exception(), Boom)
        else:
            assert task.result() == "ok"
        self.model.finish(token, outcome, self.clock.time())

    @rule(seconds=st.integers(0, 12))
    def advance_time(self, seconds: int) -> None:
        self.loop.run_until_complete(asyncio.sleep(seconds))

    @invariant()
    def state_matches_the_model(self) -> None:
        assert self.breaker.state is self.model.state
        stats = self.loop.run_until_complete(self._statistics())
        assert stats.half_open_successes == self.model.successes
        assert stats.consecutive_failures == self.model.failures

    async def _statistics(self) -> CircuitBreakerStatistics:
        return self.breaker.statistics()


TestBreakerAgainstModel = BreakerMachine.TestCase
TestBreakerAgainstModel.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


class TestContextManagerAcrossTasks:
    """Exiting ``async with breaker`` from another task is a clear error."""

    async def test_exit_in_another_task_raises_a_clear_error(self) -> None:
        breaker = CircuitBreaker()
        await breaker.__aenter__()
        with pytest.raises(RuntimeError, match="exit it in the task that entered it"):
            await asyncio.create_task(breaker.__aexit__(None, None, None))
        await breaker.__aexit__(None, None, None)
        assert breaker.statistics().successful_calls == 1

    @pytest.mark.forms("call")
    async def test_leaving_the_outer_block_before_the_inner_one_raises(self) -> None:
        outer, inner = CircuitBreaker(), CircuitBreaker()
        await outer.__aenter__()
        await inner.__aenter__()
        with pytest.raises(RuntimeError, match="innermost block first"):
            await outer.__aexit__(None, None, None)
        await inner.__aexit__(None, None, None)
        await outer.__aexit__(None, None, None)
        assert outer.statistics().successful_calls == inner.statistics().successful_calls == 1


class TestIsolateFromOpen:
    """Isolating an already open breaker is still reported."""

    async def test_isolate_when_open_emits_an_event(self) -> None:
        events: list[Any] = []
        breaker = CircuitBreaker(failure_threshold=1, listeners=[events.append])

        async def down() -> None:
            raise ConnectionError

        with pytest.raises(ConnectionError):
            await breaker.call(down)
        breaker.isolate()
        breaker.isolate()
        reasons = [e.reason for e in events if isinstance(e, CircuitStateChanged)]
        assert reasons == ["failure_threshold", "isolated"]


class TestRetryAfterWhileProbing:
    """HALF_OPEN with every permit taken reports when a permit frees, never 0."""

    async def test_the_rejection_waits_for_the_first_lease_to_end(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1, timeout=10.0, half_open_max_calls=2)
        await fail_times(breaker, 1)
        await asyncio.sleep(10)
        first = await start(breaker, Gate())
        await asyncio.sleep(3)
        second = await start(breaker, Gate())
        assert await rejected(breaker) == pytest.approx(7.0)  # the first probe's lease
        assert breaker.statistics().retry_after == pytest.approx(7.0)
        first.cancel()
        second.cancel()
        await asyncio.gather(first, second, return_exceptions=True)

    async def test_a_retry_honouring_the_hint_waits_for_the_probe_instead_of_spinning(
        self,
    ) -> None:
        from stoic._retry import Retry, retry_after_hint
        from stoic.backoff import constant

        breaker = CircuitBreaker(failure_threshold=1, timeout=5.0)
        await fail_times(breaker, 1)
        await asyncio.sleep(5)
        probe_done = asyncio.Event()

        async def slow_probe() -> str:
            await asyncio.sleep(2.0)
            probe_done.set()
            return "ok"

        probe = asyncio.create_task(breaker.call(slow_probe))
        await asyncio.sleep(0)
        calls = 0

        async def client() -> str:
            nonlocal calls
            calls += 1
            return await breaker.call(ok)

        policy = Retry(
            attempts=3, on=CircuitBreakerOpen, delay_hint=retry_after_hint, backoff=constant(0)
        )
        begin = _clock.now()
        assert await policy.call(client) == "ok"
        assert calls == 2  # rejected once, then admitted once the lease ended
        assert _clock.now() - begin == pytest.approx(5.0)
        assert probe_done.is_set()
        await probe


class TestBreakEndsAtAnyClockOrigin:
    """Waiting exactly ``retry_after`` always finds the break over, whatever the origin."""

    @pytest.mark.parametrize("origin", [0.0, 1000.3, 86_400.7, 1_000_003.7231, 9_876_543.21])
    def test_waiting_retry_after_admits_the_probe(self, origin: float) -> None:
        async def scenario() -> str:
            breaker = CircuitBreaker(failure_threshold=1, timeout=0.3)
            await fail_times(breaker, 1)
            for _ in range(4):  # 0.07 s apart: the last at 0.28 s, 0.02 s before the end
                await asyncio.sleep(0.07)
                retry_after = await rejected(breaker)
            assert retry_after is not None
            await asyncio.sleep(retry_after)
            return await breaker.call(ok)

        assert VirtualClock(origin).run(scenario()) == "ok"


class TestSharedByTwoEventLoops:
    """A breaker has nothing to wake: loops in two threads share its state without stalls."""

    def test_a_breaker_opened_on_one_loop_rejects_on_another_and_recovers(self) -> None:
        import threading

        breaker = CircuitBreaker(failure_threshold=2, timeout=0.05)
        seen: list[str] = []

        async def trip() -> None:
            await fail_times(breaker, 2)

        async def observe() -> None:
            with pytest.raises(CircuitBreakerOpen):
                await breaker.call(ok)
            seen.append("rejected")
            await asyncio.sleep(0.06)  # real time: the break ends
            seen.append(await breaker.call(ok))

        thread = threading.Thread(target=asyncio.run, args=(trip(),))
        thread.start()
        thread.join(5)
        asyncio.run(observe())
        assert seen == ["rejected", "ok"]
        assert breaker.statistics().half_open_successes == 1


class TestBreakDurationName:
    """``break_duration`` is stoic's name for the break; ``timeout`` is the founding document's."""

    async def test_break_duration_sets_the_break(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1, break_duration=7.0)
        assert breaker.config.break_duration == breaker.config.timeout == 7.0

        async def fail() -> None:
            raise ConnectionError

        with pytest.raises(ConnectionError):
            await breaker.call(fail)
        assert breaker.statistics().retry_after == 7.0

    def test_giving_both_is_an_error(self) -> None:
        with pytest.raises(TypeError, match="give break_duration or timeout"):
            CircuitBreaker(break_duration=1.0, timeout=2.0)

    def test_config_tables_take_either_name_and_write_break_duration(self) -> None:
        from stoic import pipeline_from_config, pipeline_to_config

        for key in ("timeout", "break_duration"):
            pipeline = pipeline_from_config({"strategies": [{"type": "circuit_breaker", key: 12}]})
            assert pipeline_to_config(pipeline)["strategies"][0] == {
                "type": "circuit_breaker",
                "break_duration": 12,
            }


class TestSharedConfigs:
    """Breakers built with equal options share one immutable config, never a wrong one."""

    def test_equal_options_give_one_config(self) -> None:
        first = CircuitBreaker(failure_threshold=3, break_duration=10.0)
        second = CircuitBreaker(failure_threshold=3, break_duration=10.0)
        assert first.config is second.config
        assert first.state is second.state is CircuitState.CLOSED  # state stays their own

    def test_a_bool_never_reuses_the_config_of_an_equal_number(self) -> None:
        assert CircuitBreaker(timeout=1).config.timeout == 1.0
        with pytest.raises(ValueError, match="timeout must be"):
            CircuitBreaker(timeout=True)

    def test_unhashable_options_still_build(self) -> None:
        heard: list[object] = []
        breaker = CircuitBreaker(failure_threshold=2, listeners=[heard.append])
        assert breaker.config.listeners == (heard.append,)

    def test_both_names_of_the_break_duration_are_refused_once(self) -> None:
        with pytest.raises(TypeError, match="give break_duration or timeout") as info:
            CircuitBreaker(break_duration=1.0, timeout=2.0)
        assert info.value.__context__ is None  # one error, not one raised while handling another


class TestASuccessCanTripTheRate:
    """A success never raises the failure rate, yet the window it lands in may trip."""

    async def test_a_success_that_brings_the_window_to_minimum_calls_trips(self) -> None:
        breaker = CircuitBreaker(trip="rate", window_size=10, minimum_calls=3, failure_rate=0.6)
        await fail_times(breaker, 2)
        assert breaker.state is CircuitState.CLOSED  # 2 calls: below minimum_calls
        assert await breaker.call(_ok) == 1  # 2 of 3 failed
        assert breaker.state is CircuitState.OPEN

    async def test_a_success_after_older_successes_aged_out_trips(self) -> None:
        breaker = CircuitBreaker(
            trip="rate", window_duration=10.0, minimum_calls=3, failure_rate=0.6
        )
        for _ in range(2):
            assert await breaker.call(_ok) == 1
        await asyncio.sleep(5)
        await fail_times(breaker, 2)
        assert breaker.state is CircuitState.CLOSED  # 2 of 4 failed
        await asyncio.sleep(5.5)  # the first two successes leave the window
        assert await breaker.call(_ok) == 1  # 2 of 3 failed
        assert breaker.state is CircuitState.OPEN


async def _ok() -> int:
    return 1
