"""Rate limiter: GCRA admission, bursts, reserved turns, max_wait, deadlines, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import itertools
import math
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from stoic import _clock
from stoic._classify import NotAwaitable
from stoic._events import Event
from stoic._rate_limit import CallRejectedByRateLimiter, RateLimiter, RateLimiterStatistics
from stoic._retry import Retry, retry_after_hint
from stoic._timeout import timeout
from stoic.backoff import constant
from stoic.exceptions import RateLimited, RejectedCall, StoicError
from stoic.testing import VirtualClock, run, set_testing
from tests.forms import forms_of

# Every async test runs with ``.call`` routed through each form (tests/forms.py).
EVERY_FORM = forms_of(RateLimiter, "decorator", "async with")


async def ok() -> int:
    return 1


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


class TestConstruction:
    """Bad options fail at construction with a message naming the option."""

    @pytest.mark.parametrize("rate", [0, -1, math.nan, math.inf, True, "10", None])
    def test_rate_must_be_finite_and_positive(self, rate: Any) -> None:
        with pytest.raises(ValueError, match=r"^rate must be a finite number > 0"):
            RateLimiter(rate)

    @pytest.mark.parametrize("per", [0, -1.0, math.nan, math.inf, False])
    def test_per_must_be_finite_and_positive(self, per: Any) -> None:
        with pytest.raises(ValueError, match=r"^per must be a finite number of seconds > 0"):
            RateLimiter(10, per)

    @pytest.mark.parametrize("burst", [0, -1, 1.5, True, "2"])
    def test_burst_must_be_a_positive_int(self, burst: Any) -> None:
        with pytest.raises(ValueError, match=r"^burst must be None or an int >= 1"):
            RateLimiter(10, burst=burst)

    @pytest.mark.parametrize("max_wait", [-0.1, math.nan, math.inf, True, "1"])
    def test_max_wait_must_be_none_or_finite_seconds(self, max_wait: Any) -> None:
        with pytest.raises(ValueError, match=r"^max_wait must be None or"):
            RateLimiter(10, max_wait=max_wait)

    @pytest.mark.parametrize(("rate", "burst"), [(10, 10), (2.5, 2), (0.5, 1), (1, 1)])
    def test_default_burst_is_one_period_of_calls_at_least_one(
        self, rate: float, burst: int
    ) -> None:
        assert RateLimiter(rate).burst == burst

    def test_options_are_readable_and_in_the_repr(self) -> None:
        limiter = RateLimiter(100, per=60, burst=5, max_wait=2, name="api")
        assert (limiter.rate, limiter.per, limiter.burst, limiter.max_wait, limiter.name) == (
            100.0,
            60.0,
            5,
            2.0,
            "api",
        )
        assert repr(limiter) == ("RateLimiter(rate=100, per=60, burst=5, max_wait=2.0, name='api')")

    def test_listeners_must_be_callable(self) -> None:
        with pytest.raises(TypeError, match="listeners must be callables"):
            RateLimiter(1, listeners=[42])  # type: ignore[list-item]


class TestAdmission:
    """Calls start at once up to the burst, then at the steady rate."""

    async def test_a_burst_starts_at_once_and_the_next_call_is_refused(self) -> None:
        limiter = RateLimiter(5, per=1.0)
        assert [await limiter.call(ok) for _ in range(5)] == [1] * 5
        with pytest.raises(RateLimited) as caught:
            await limiter.call(ok)
        assert caught.value.retry_after == pytest.approx(0.2)

    async def test_a_turn_comes_back_every_per_over_rate_seconds(self) -> None:
        limiter = RateLimiter(4, per=2.0, burst=1)
        await limiter.call(ok)
        await asyncio.sleep(0.49)
        with pytest.raises(RateLimited):
            await limiter.call(ok)
        await asyncio.sleep(0.01)
        assert await limiter.call(ok) == 1

    async def test_a_quiet_spell_refills_the_burst_but_never_beyond_it(self) -> None:
        limiter = RateLimiter(3, per=1.0)
        for _ in range(3):
            await limiter.call(ok)
        await asyncio.sleep(100)
        for _ in range(3):
            await limiter.call(ok)
        with pytest.raises(RateLimited):
            await limiter.call(ok)

    async def test_the_wrapped_functions_exception_passes_through_and_spends_the_turn(
        self,
    ) -> None:
        limiter = RateLimiter(1, burst=1)
        error = ConnectionError("down")

        async def fail() -> None:
            raise error

        with pytest.raises(ConnectionError) as caught:
            await limiter.call(fail)
        assert caught.value is error
        with pytest.raises(RateLimited):
            await limiter.call(ok)

    async def test_arguments_reach_the_function(self) -> None:
        async def add(a: int, b: int = 0) -> int:
            return a + b

        assert await RateLimiter(10).call(add, 2, b=3) == 5


@settings(max_examples=60, deadline=None)
@given(
    rate=st.integers(min_value=1, max_value=20),
    per=st.sampled_from([1.0, 0.1, 0.3, 2.5]),
    burst=st.integers(min_value=1, max_value=6),
    gaps=st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=60),
    max_wait=st.one_of(st.none(), st.floats(min_value=0, max_value=1)),
    origin=st.sampled_from([0.0, 1.0, 1000.3, 86_400.7, 1_000_003.7231]),
)
def test_no_span_ever_holds_more_than_burst_plus_rate_times_its_length(
    rate: int, per: float, burst: int, gaps: list[float], max_wait: float | None, origin: float
) -> None:
    """Whatever the arrivals, the period and the clock's origin, in any span of t seconds at
    most burst + rate * t / per calls start."""

    async def scenario() -> list[float]:
        limiter = RateLimiter(rate, per=per, burst=burst, max_wait=max_wait)
        starts: list[float] = []

        async def one() -> None:
            async def record() -> None:
                starts.append(_clock.now())

            with contextlib.suppress(RateLimited):
                await limiter.call(record)

        async with asyncio.TaskGroup() as tg:
            for gap in gaps:
                await asyncio.sleep(gap)
                tg.create_task(one())
        return starts

    starts = run(scenario(), clock=VirtualClock(origin))
    assert starts == sorted(starts)
    for i, first in enumerate(starts):
        for j in range(i, len(starts)):
            span = starts[j] - first
            assert j - i + 1 <= burst + rate * span / per + 1e-6


class TestWaiting:
    """With ``max_wait``, a call reserves its turn and waits for it, in arrival order."""

    async def test_waiting_calls_start_in_arrival_order_one_interval_apart(self) -> None:
        limiter = RateLimiter(10, burst=1, max_wait=None)
        begin = _clock.now()
        starts: list[tuple[int, float]] = []

        async def record(tag: int) -> None:
            starts.append((tag, round(_clock.now() - begin, 9)))

        async with asyncio.TaskGroup() as tg:
            for tag in range(5):
                tg.create_task(limiter.call(record, tag))
        assert starts == [(0, 0.0), (1, 0.1), (2, 0.2), (3, 0.3), (4, 0.4)]

    async def test_a_turn_further_than_max_wait_is_refused_at_once(self) -> None:
        limiter = RateLimiter(1, burst=1, max_wait=2.5)
        begin = _clock.now()
        await limiter.call(ok)
        await asyncio.gather(limiter.call(ok), limiter.call(ok))  # turns at 1 s and 2 s
        assert _clock.now() - begin == pytest.approx(2.0)
        limiter2 = RateLimiter(1, burst=1, max_wait=2.5)
        await limiter2.call(ok)
        tasks = [asyncio.create_task(limiter2.call(ok)) for _ in range(2)]
        await settle()
        with pytest.raises(RateLimited) as caught:  # its turn would be 3 s away
            await limiter2.call(ok)
        assert caught.value.retry_after == pytest.approx(3.0)
        await asyncio.gather(*tasks)

    async def test_a_refusal_waits_no_time(self) -> None:
        limiter = RateLimiter(1, burst=1, max_wait=0.5)
        await limiter.call(ok)
        begin = _clock.now()
        with pytest.raises(RateLimited):
            await limiter.call(ok)
        assert _clock.now() == begin

    async def test_a_turn_after_the_enclosing_deadline_is_refused_at_once(self) -> None:
        events: list[Event] = []
        limiter = RateLimiter(1, burst=1, max_wait=None, listeners=[events.append])
        await limiter.call(ok)
        begin = _clock.now()
        with pytest.raises(RateLimited, match="after the deadline"):
            async with timeout(0.5):
                await limiter.call(ok)
        assert _clock.now() == begin
        assert isinstance(events[0], CallRejectedByRateLimiter)
        assert events[0].reason == "deadline"

    async def test_a_turn_before_the_enclosing_deadline_is_waited_for(self) -> None:
        limiter = RateLimiter(1, burst=1, max_wait=None)
        await limiter.call(ok)
        async with timeout(1.5):
            assert await limiter.call(ok) == 1

    async def test_retry_with_the_hint_waits_exactly_retry_after(self) -> None:
        limiter = RateLimiter(2, burst=1)
        policy = Retry(attempts=2, on=RateLimited, delay_hint=retry_after_hint)
        await limiter.call(ok)
        begin = _clock.now()
        assert await policy.call(limiter.call, ok) == 1
        assert _clock.now() - begin == pytest.approx(0.5)

    async def test_testing_mode_makes_reserved_waits_instant(self) -> None:
        limiter = RateLimiter(1, burst=1, max_wait=None)
        begin = _clock.now()
        with set_testing(True):
            for _ in range(5):
                await limiter.call(ok)
        assert _clock.now() == begin


class TestCancellation:
    """A cancelled waiter is never counted, and gives its turn back when it safely can."""

    async def test_the_last_waiter_cancelled_gives_its_turn_back(self) -> None:
        limiter = RateLimiter(1, burst=1, max_wait=None)
        await limiter.call(ok)
        begin = _clock.now()
        waiter = asyncio.create_task(limiter.call(ok))
        await settle()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await limiter.call(ok)
        assert _clock.now() - begin == pytest.approx(1.0)  # the freed turn, not the one after
        stats = limiter.statistics()
        assert (stats.waiting, stats.rejected, stats.delayed) == (0, 0, 1)

    async def test_a_waiter_cancelled_ahead_of_others_moves_them_up_one_turn(self) -> None:
        limiter = RateLimiter(1, burst=1, max_wait=None)
        await limiter.call(ok)
        begin = _clock.now()
        starts: list[float] = []

        async def record() -> None:
            starts.append(round(_clock.now() - begin, 9))

        first = asyncio.create_task(limiter.call(record))
        second = asyncio.create_task(limiter.call(record))
        await settle()
        first.cancel()
        await settle()
        third = asyncio.create_task(limiter.call(record))
        await asyncio.gather(second, third)
        assert first.cancelled()
        # ``second`` takes the cancelled 1 s turn, ``third`` the one after: still one call
        # per interval, and no turn lost.
        assert starts == [1.0, 2.0]

    async def test_cancellation_passes_through_untouched_and_is_not_a_rejection(self) -> None:
        events: list[Event] = []
        limiter = RateLimiter(1, burst=1, max_wait=None, listeners=[events.append])
        await limiter.call(ok)
        waiter = asyncio.create_task(limiter.call(ok))
        await settle()
        waiter.cancel("stop")
        with pytest.raises(asyncio.CancelledError, match="stop"):
            await waiter
        assert events == []
        assert limiter.statistics().rejected == 0

    async def test_a_waiter_cancelled_as_its_turn_comes_gives_the_turn_back_quietly(
        self,
    ) -> None:
        limiter = RateLimiter(1, burst=1, max_wait=None)
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, context: errors.append(context))
        await limiter.call(ok)
        turn = (_clock.now_ns() + _clock.NS) / _clock.NS  # on the limiter's own clock
        waiter = asyncio.create_task(limiter.call(ok))
        # Due with the limiter's wake-up and scheduled before it: the waiter is cancelled in
        # the loop pass whose next callback would hand it its turn.
        loop.call_at(turn, waiter.cancel)
        try:
            with pytest.raises(asyncio.CancelledError):
                await waiter
        finally:
            loop.set_exception_handler(None)
        assert errors == []  # the wake-up passed the cancelled waiter over
        begin = _clock.now()
        await limiter.call(ok)
        assert _clock.now() == begin
        assert limiter.statistics().delayed == 0

    async def test_a_timeout_around_a_wait_frees_the_waiting_count(self) -> None:
        limiter = RateLimiter(1, burst=1, max_wait=None)
        await limiter.call(ok)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await limiter.call(ok)
        assert limiter.statistics().waiting == 0


class TestForms:
    """``call``, the decorator and ``async with`` all take one turn per call."""

    async def test_the_decorator_takes_a_turn_per_call_and_keeps_the_signature(self) -> None:
        limiter = RateLimiter(2)

        @limiter
        async def add(a: int, b: int = 0) -> int:
            """Add."""
            return a + b

        assert add.__name__ == "add"
        assert add.__doc__ == "Add."
        assert str(inspect.signature(add)) == "(a: 'int', b: 'int' = 0) -> 'int'"
        assert await add(1) + await add(1, b=1) == 3
        with pytest.raises(RateLimited):
            await add(0)

    async def test_the_decorator_waits_like_call(self) -> None:
        limited = RateLimiter(1, burst=1, max_wait=None)(ok)
        begin = _clock.now()
        for _ in range(3):
            await limited()
        assert _clock.now() - begin == pytest.approx(2.0)

    async def test_async_with_takes_a_turn_on_entry(self) -> None:
        limiter = RateLimiter(1, burst=1, max_wait=None)
        begin = _clock.now()
        async with limiter:
            pass
        async with limiter:
            assert _clock.now() - begin == pytest.approx(1.0)
        limiter2 = RateLimiter(1, burst=1)
        async with limiter2:
            pass
        with pytest.raises(RateLimited):
            async with limiter2:
                pytest.fail("entered without a turn")  # pragma: no cover

    async def test_one_limiter_is_shared_by_all_its_forms(self) -> None:
        limiter = RateLimiter(2, burst=2)
        await limiter.call(ok)
        await limiter(ok)()
        with pytest.raises(RateLimited):
            async with limiter:
                pass  # pragma: no cover

    async def test_the_first_call_in_a_process_finds_asyncio_running(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(_clock, "asyncio_seen", False)  # as in a fresh process
        assert await RateLimiter(10).call(ok) == 1
        assert _clock.asyncio_seen

    async def test_the_functions_own_type_error_passes_through(self) -> None:
        async def wrong() -> int:
            raise TypeError("bad argument")

        with pytest.raises(TypeError, match="bad argument") as info:
            await RateLimiter(10).call(wrong)
        assert not isinstance(info.value, NotAwaitable)


class TestEventsAndStatistics:
    """Refusals are reported; statistics are a frozen snapshot."""

    async def test_a_refusal_emits_one_event_with_the_limits(self) -> None:
        events: list[Event] = []
        limiter = RateLimiter(2, per=1.0, burst=1, name="api", listeners=[events.append])
        await limiter.call(ok)
        with pytest.raises(RateLimited, match=r"rate limiter 'api': over 2 calls per 1s"):
            await limiter.call(ok)
        assert events == [
            CallRejectedByRateLimiter(
                name="api", reason="rate", retry_after=0.5, rate=2.0, per=1.0, burst=1
            )
        ]

    def test_rate_limited_is_a_rejected_call(self) -> None:
        assert issubclass(RateLimited, RejectedCall)
        assert issubclass(RateLimited, StoicError)
        assert RateLimited(retry_after=1.5).retry_after == 1.5

    async def test_available_counts_down_and_refills(self) -> None:
        limiter = RateLimiter(3, per=3.0)
        assert limiter.statistics().available == 3
        await limiter.call(ok)
        await limiter.call(ok)
        assert limiter.statistics().available == 1
        await asyncio.sleep(1.0)
        assert limiter.statistics().available == 2
        await asyncio.sleep(10.0)
        assert limiter.statistics().available == 3

    async def test_statistics_count_delayed_rejected_and_waiting_calls(self) -> None:
        limiter = RateLimiter(1, burst=1, max_wait=1.0)
        await limiter.call(ok)
        waiter = asyncio.create_task(limiter.call(ok))
        await settle()
        assert limiter.statistics().waiting == 1
        with pytest.raises(RateLimited):
            await limiter.call(ok)
        await waiter
        assert limiter.statistics() == RateLimiterStatistics(
            rate=1.0, per=1.0, burst=1, available=0, waiting=0, delayed=1, rejected=1
        )


class TestExactArithmetic:
    """Time is integer nanoseconds: a burst, a turn and a deadline are exact at any clock value."""

    @settings(max_examples=200, deadline=None)
    @given(
        origin=st.floats(min_value=1.0, max_value=1e7, allow_nan=False),
        rate=st.sampled_from([3, 7, 10, 25, 100]),
        per=st.sampled_from([0.1, 0.3, 1.0, 60.0]),
    )
    def test_a_full_burst_starts_at_once_at_any_clock_value(
        self, origin: float, rate: int, per: float
    ) -> None:
        async def scenario() -> tuple[int, int, int]:
            limiter = RateLimiter(rate, per=per)
            before = limiter.statistics().available
            admitted = 0
            for _ in range(rate + 1):
                with contextlib.suppress(RateLimited):
                    await limiter.call(ok)
                    admitted += 1
            return before, admitted, limiter.statistics().available

        assert run(scenario(), clock=VirtualClock(origin)) == (rate, rate, 0)

    @pytest.mark.parametrize("origin", [0.0, 1.0, 1000.3, 86_400.7, 3_600_000.123])
    def test_a_turn_exactly_max_wait_away_waits_for_it(self, origin: float) -> None:
        async def scenario() -> float:
            limiter = RateLimiter(10, burst=1, max_wait=0.1)
            await limiter.call(ok)
            begin = _clock.now()
            await limiter.call(ok)  # its turn is exactly 0.1 s away
            return _clock.now() - begin

        assert run(scenario(), clock=VirtualClock(origin)) == pytest.approx(0.1, abs=1e-9)

    @pytest.mark.parametrize("origin", [0.0, 1000.3, 3_600_000.123])
    def test_the_refusal_reports_exactly_the_interval(self, origin: float) -> None:
        async def scenario() -> float:
            limiter = RateLimiter(10, burst=1)
            await limiter.call(ok)
            with pytest.raises(RateLimited) as caught:
                await limiter.call(ok)
            return caught.value.retry_after

        assert run(scenario(), clock=VirtualClock(origin)) == 0.1

    @pytest.mark.parametrize("origin", [0.0, 1000.3, 3_600_000.123])
    def test_a_turn_exactly_at_the_enclosing_deadline_is_refused(self, origin: float) -> None:
        async def scenario() -> None:
            limiter = RateLimiter(10, burst=1, max_wait=None)
            await limiter.call(ok)
            with pytest.raises(RateLimited, match="at or after the deadline"):
                async with timeout(0.1):
                    await limiter.call(ok)

        run(scenario(), clock=VirtualClock(origin))

    def test_the_interval_rounds_up_to_the_nanosecond(self) -> None:
        async def scenario() -> list[int]:
            limiter = RateLimiter(3, burst=1, max_wait=None)
            starts: list[int] = []

            async def record() -> None:
                starts.append(_clock.now_ns())

            for _ in range(4):
                await limiter.call(record)
            return [later - earlier for earlier, later in itertools.pairwise(starts)]

        assert run(scenario(), clock=VirtualClock(1000.3)) == [333_333_334] * 3


class TestCancelledWaitersGiveTurnsBack:
    """Turns reserved by waiters that were cancelled come back to the calls behind them."""

    async def test_mass_cancellation_leaves_no_turn_booked(self) -> None:
        limiter = RateLimiter(10, per=1.0, max_wait=None)
        for _ in range(10):
            await limiter.call(ok)
        waiters = [asyncio.create_task(limiter.call(ok)) for _ in range(1000)]
        await settle()
        assert limiter.statistics().waiting == 1000
        for waiter in waiters:  # client timeouts
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        assert limiter.statistics().waiting == 0
        begin = _clock.now()
        await limiter.call(ok)
        assert _clock.now() - begin == pytest.approx(0.1)  # the first free turn, not 100 s

    async def test_waiters_timing_out_in_arrival_order_free_their_turns(self) -> None:
        limiter = RateLimiter(10, burst=1, max_wait=None)
        await limiter.call(ok)
        served = 0

        async def client() -> None:
            nonlocal served
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.05):
                    await limiter.call(ok)
                    served += 1

        await asyncio.gather(*(client() for _ in range(200)))
        assert served == 10  # one per 0.1 s of the time they waited
        begin = _clock.now()
        await limiter.call(ok)
        assert _clock.now() - begin <= 0.1 + 1e-9

    async def test_a_waiter_cancelled_after_its_turn_came_gives_it_back(self) -> None:
        limiter = RateLimiter(1, burst=1, max_wait=None)
        await limiter.call(ok)
        turn = _clock.now() + 1.0
        waiter = asyncio.create_task(limiter.call(ok))
        await settle()
        # Right after its turn is handed over, before it runs: a timer due at the same time,
        # scheduled after the limiter's own.
        asyncio.get_running_loop().call_at(turn, waiter.cancel)
        with pytest.raises(asyncio.CancelledError):
            await waiter
        begin = _clock.now()
        await limiter.call(ok)
        assert _clock.now() == begin
        assert limiter.statistics().delayed == 0


@settings(max_examples=60, deadline=None)
@given(
    origin=st.sampled_from([0.0, 1000.3, 3_600_000.123]),
    rate=st.integers(min_value=1, max_value=20),
    burst=st.integers(min_value=1, max_value=6),
    arrivals=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=0.5),
            st.one_of(st.none(), st.floats(min_value=0, max_value=2.0)),
        ),
        min_size=1,
        max_size=60,
    ),
)
def test_cancellations_never_let_more_than_the_rate_start(
    origin: float, rate: int, burst: int, arrivals: list[tuple[float, float | None]]
) -> None:
    """Random arrivals, some cancelled while they wait: still at most burst + rate * t."""

    async def scenario() -> tuple[list[float], int]:
        limiter = RateLimiter(rate, per=1.0, burst=burst, max_wait=None)
        starts: list[float] = []

        async def record() -> None:
            starts.append(_clock.now())

        async def one(patience: float | None) -> None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(patience):
                    await limiter.call(record)

        async with asyncio.TaskGroup() as tg:
            for gap, patience in arrivals:
                await asyncio.sleep(gap)
                tg.create_task(one(patience))
        return starts, limiter.statistics().waiting

    starts, waiting = run(scenario(), clock=VirtualClock(origin))
    assert waiting == 0
    assert starts == sorted(starts)
    for i, first in enumerate(starts):
        for j in range(i, len(starts)):
            assert j - i + 1 <= burst + rate * (starts[j] - first) + 1e-6


def run_while_another_loop_waits(limiter: RateLimiter, second: Any) -> None:
    """Run ``second()`` on a fresh loop while a call waits in ``limiter`` on another loop (in a
    thread), then let that call finish."""
    first_waits, release = threading.Event(), threading.Event()

    async def first() -> None:
        await limiter.call(ok)
        task = asyncio.create_task(limiter.call(ok))
        await settle()
        first_waits.set()
        await asyncio.to_thread(release.wait, 5)
        await task

    thread = threading.Thread(target=asyncio.run, args=(first(),))
    thread.start()
    assert first_waits.wait(5)
    try:
        asyncio.run(second())
    finally:
        release.set()
        thread.join(5)


class _EarlyTimersLoop(asyncio.SelectorEventLoop):
    """Runs every timer 50 ms early, as a loop whose clock ticks coarsely may."""

    def call_at(  # type: ignore[override]
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        return super().call_at(when - 0.05, callback, *args, context=context)


class TestEventLoops:
    """A limiter serves one event loop at a time when calls wait; never a silent stall."""

    def test_a_loop_running_timers_early_still_starts_a_waiter_at_its_turn(self) -> None:
        limiter = RateLimiter(10, burst=1, max_wait=None)  # a turn every 0.1 s

        async def second_start() -> float:
            begin = _clock.now()
            await limiter.call(ok)
            await limiter.call(ok)  # its wake-up comes 50 ms early
            return _clock.now() - begin

        with asyncio.Runner(loop_factory=_EarlyTimersLoop) as runner:
            assert runner.run(second_start()) >= 0.1 - 1e-6

    def test_waiting_from_a_second_loop_while_calls_wait_raises(self) -> None:
        limiter = RateLimiter(1, burst=1, max_wait=None)
        outcome: list[BaseException | None] = []

        async def second() -> None:
            try:
                await limiter.call(ok)
            except RuntimeError as exc:
                outcome.append(exc)
            else:  # pragma: no cover - the defect
                outcome.append(None)

        run_while_another_loop_waits(limiter, second)
        assert isinstance(outcome[0], RuntimeError)
        assert "one loop at a time" in str(outcome[0])

    def test_calls_that_never_wait_may_come_from_any_loop(self) -> None:
        limiter = RateLimiter(100, per=1.0)
        results: list[int] = []

        async def burst() -> None:
            for _ in range(10):
                results.append(await limiter.call(ok))

        threads = [threading.Thread(target=asyncio.run, args=(burst(),)) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
        assert results == [1] * 30


class TestExtremeOptions:
    """Options no clock can honour are refused at construction, naming the parameter."""

    @pytest.mark.parametrize(
        ("rate", "per"), [(1e-300, 1e10), (5e-324, 1.0), (1e10, 1.0), (1, 1e-10)]
    )
    def test_an_interval_beyond_a_nanosecond_to_1e9_seconds_is_refused(
        self, rate: float, per: float
    ) -> None:
        with pytest.raises(ValueError, match=r"^rate must be between .* got "):
            RateLimiter(rate, per=per)

    @pytest.mark.parametrize("option", ["rate", "per", "max_wait"])
    def test_an_int_beyond_float_range_is_refused(self, option: str) -> None:
        options: dict[str, Any] = {"rate": 1, "per": 1.0, option: 10**400}
        with pytest.raises(ValueError, match=rf"^{option} must be"):
            RateLimiter(**options)


class TestMaxWaitForAnyPeriod:
    """A turn exactly ``max_wait`` away waits, whatever ``per`` and ``rate`` are in binary."""

    @pytest.mark.parametrize(
        ("rate", "per", "max_wait"),
        [(1, 0.1, 0.1), (2, 0.2, 0.1), (100, 0.1, 0.001), (3, 1.0, 1 / 3), (7, 0.7, 0.1)],
    )
    async def test_the_turn_at_max_wait_waits(
        self, rate: float, per: float, max_wait: float
    ) -> None:
        limiter = RateLimiter(rate, per=per, burst=1, max_wait=max_wait)
        assert await limiter.call(ok) == 1
        started = _clock.now()
        assert await limiter.call(ok) == 1
        assert _clock.now() - started == pytest.approx(per / rate, abs=2e-6)

    async def test_per_and_rate_are_read_as_the_decimals_written(self) -> None:
        # 1 call per 0.1 s is a turn every 100,000,000 ns, not the binary float's 100,000,001:
        # over 1,000 turns the float would drift by a microsecond.
        limiter = RateLimiter(1, per=0.1, burst=1, max_wait=None)
        assert limiter.options()["per"] == 0.1
        started = _clock.now()
        for _ in range(1001):
            await limiter.call(ok)
        assert _clock.now() - started == pytest.approx(100.0, abs=1e-7)

    def test_a_max_wait_beyond_a_billion_seconds_is_refused(self) -> None:
        with pytest.raises(ValueError, match="max_wait must be None or a finite number"):
            RateLimiter(10, max_wait=1e300)


class TestClosedLoops:
    """Calls left waiting on a loop that closed never wedge the limiter."""

    def test_a_loop_closed_with_waiters_leaves_the_limiter_usable(self) -> None:
        limiter = RateLimiter(1, burst=1, max_wait=None)

        async def leave_one_waiting() -> None:
            await limiter.call(ok)
            asyncio.get_running_loop().create_task(limiter.call(ok))
            await settle()  # the second call now waits; the loop ends under it

        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(leave_one_waiting())
        finally:
            loop.close()

        async def later() -> float:
            started = _clock.now()
            await limiter.call(ok)
            return _clock.now() - started

        waited = asyncio.run(later())
        assert waited < 1.5  # at most its own turn; before the fix: "another event loop"
        assert limiter.statistics().waiting == 0

    def test_a_cross_loop_wait_is_never_retried_or_counted(self) -> None:
        from stoic import CircuitBreaker, CircuitState

        limiter = RateLimiter(1, burst=1, max_wait=None)
        breaker = CircuitBreaker(failure_threshold=1)
        attempts: list[int] = []

        async def counted() -> int:
            attempts.append(1)
            return await limiter.call(ok)

        async def second() -> None:
            with pytest.raises(RuntimeError, match="one loop at a time"):
                await Retry(attempts=3, backoff=constant(0)).call(breaker.call, counted)

        run_while_another_loop_waits(limiter, second)
        assert attempts == [1]
        assert breaker.state is CircuitState.CLOSED
        assert breaker.statistics().failed_calls == 0


class TestFarBackClockOrigins:
    """A virtual clock may start anywhere; a limiter's first call is due at once."""

    @pytest.mark.parametrize("start", [-1e10, -5.0, 0.0, 1e10])
    def test_the_first_call_is_admitted(self, start: float) -> None:
        limiter = RateLimiter(1, burst=1)

        async def main() -> int:
            return await limiter.call(ok)

        assert run(main(), clock=VirtualClock(start)) == 1


class TestAGrantedTurnGivenBackWhileOthersWait:
    """A waiter cancelled after its turn came, with others queued, hands them its turn."""

    async def test_the_next_waiter_starts_at_the_returned_turn(self) -> None:
        limiter = RateLimiter(1, burst=1, max_wait=None)
        assert await limiter.call(ok) == 1
        started: list[float] = []
        origin = _clock.now()

        async def mark() -> None:
            started.append(_clock.now() - origin)

        first = asyncio.create_task(limiter.call(mark))
        await settle()
        second = asyncio.create_task(limiter.call(mark))
        await settle()
        # Let the first waiter's turn come, and cancel it before its task runs again.
        loop = asyncio.get_running_loop()
        loop.call_at(loop.time() + 1.0, first.cancel)
        with pytest.raises(asyncio.CancelledError):
            await first
        await second
        assert started == [pytest.approx(1.0, abs=2e-6)]  # the turn given back, not 2.0
