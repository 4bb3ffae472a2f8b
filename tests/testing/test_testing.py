"""Virtual time and testing mode.

Async tests here run at two clock origins (see conftest.py): times are read relative to the
clock's start. A timer set ``d`` seconds after ``start`` fires at ``start + d`` exactly (the
loop computes its deadline that way, and the clock jumps exactly onto it), so those compare
with ``==``; sums of several delays compare with ``pytest.approx``.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import threading
import time
import warnings

import pytest

from stoic import _clock
from stoic.testing import VirtualClock, is_testing, run, set_testing, virtual_time

#: Not finite, not a number, or a bool: no VirtualClock option accepts these.
NOT_FINITE_SECONDS = [
    *(math.nan, math.inf, -math.inf, True, "1", None),
    pytest.param(10**400, id="10**400"),
]


class TestVirtualClock:
    async def test_sleep_of_an_hour_takes_no_real_time(self) -> None:
        real_start = time.monotonic()
        start = _clock.now()
        await asyncio.sleep(3600)
        assert _clock.now() == start + 3600
        assert time.monotonic() - real_start < 0.5

    async def test_time_only_moves_when_every_task_waits(self) -> None:
        start = _clock.now()
        seen: list[float] = []

        async def sleeper(delay: float) -> None:
            await asyncio.sleep(delay)
            seen.append(_clock.now())

        async with asyncio.TaskGroup() as tg:
            tg.create_task(sleeper(5))
            tg.create_task(sleeper(2))
            tg.create_task(sleeper(7.5))
        assert seen == [start + 2, start + 5, start + 7.5]

    async def test_asyncio_timeout_fires_at_virtual_deadline(self) -> None:
        start = _clock.now()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(10):
                await asyncio.sleep(100)
        assert _clock.now() == start + 10

    async def test_fixture_is_the_running_loop_clock(self, virtual_clock: VirtualClock) -> None:
        start = virtual_clock.time()
        assert asyncio.get_running_loop().time() == start
        await asyncio.sleep(1.5)
        assert virtual_clock.time() == start + 1.5
        assert virtual_clock.jumps == 1

    async def test_threads_still_complete(self) -> None:
        result = await asyncio.to_thread(lambda: 42)
        assert result == 42

    def test_run_returns_the_result(self) -> None:
        async def main() -> float:
            await asyncio.sleep(30)
            return _clock.now()

        assert run(main()) == 30.0

    def test_run_starts_the_clock_at_zero_unless_given_a_clock(self) -> None:
        async def now() -> float:
            return _clock.now()

        assert run(now()) == 0.0
        assert run(now(), clock=VirtualClock(start=1234.5)) == 1234.5

    def test_start_is_where_the_clock_reads_before_any_jump(self) -> None:
        clock = VirtualClock(start=1_000_003.7231)
        assert clock.time() == 1_000_003.7231
        assert clock.jumps == 0

    def test_advance_rejects_negative(self) -> None:
        with pytest.raises(ValueError, match=r"seconds must be a finite number of seconds >= 0"):
            VirtualClock().advance(-1)

    @pytest.mark.parametrize("seconds", NOT_FINITE_SECONDS)
    def test_advance_rejects_what_is_not_finite_seconds(self, seconds: object) -> None:
        clock = VirtualClock()
        with pytest.raises(ValueError, match=r"^seconds must be a finite number of seconds >= 0"):
            clock.advance(seconds)  # type: ignore[arg-type]
        assert clock.time() == 0.0

    def test_autojump_threshold_rejects_negative(self) -> None:
        with pytest.raises(
            ValueError,
            match=r"^autojump_threshold must be a finite number of seconds >= 0, got -0.1$",
        ):
            VirtualClock(autojump_threshold=-0.1)

    @pytest.mark.parametrize("threshold", NOT_FINITE_SECONDS)
    def test_autojump_threshold_rejects_what_is_not_finite_seconds(self, threshold: object) -> None:
        with pytest.raises(ValueError, match=r"^autojump_threshold must be a finite number"):
            VirtualClock(autojump_threshold=threshold)  # type: ignore[arg-type]

    @pytest.mark.parametrize("start", NOT_FINITE_SECONDS)
    def test_start_rejects_what_is_not_finite_seconds(self, start: object) -> None:
        with pytest.raises(ValueError, match=r"^start must be a finite number of seconds, got "):
            VirtualClock(start=start)  # type: ignore[arg-type]

    def test_start_may_be_negative_or_an_int(self) -> None:
        assert VirtualClock(start=-5).time() == -5.0
        assert isinstance(VirtualClock(start=7).time(), float)


class TestFarOrigins:
    """Timers still fire where a float's spacing exceeds asyncio's 1 ns clock resolution.

    From ~8.4e6 s on (97 days of uptime), ``now + 1e-9 == now``: asyncio never ran a timer
    due exactly now and the loop spun forever. Run in a child process, so that a regression
    fails on a timeout instead of hanging the suite.
    """

    @pytest.mark.parametrize("start", [1e7, 123_456_789.123, 2.0**40])
    def test_sleeps_and_immediate_timers_fire_far_from_zero(self, start: float) -> None:
        program = f"""
import asyncio
from stoic import testing

async def main():
    loop = asyncio.get_running_loop()
    fired = loop.create_future()
    loop.call_later(0, fired.set_result, None)
    await fired
    begin = loop.time()
    await asyncio.sleep(400)
    return loop.time() - begin

async def switched():
    with testing.virtual_time(start={start!r}):
        return await main()

print(testing.run(main(), clock=testing.VirtualClock(start={start!r})))
print(asyncio.run(switched()))
"""
        result = subprocess.run(
            [sys.executable, "-c", program],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        on_a_virtual_loop, on_a_switched_loop = map(float, result.stdout.split())
        assert on_a_virtual_loop == pytest.approx(400, abs=math.ulp(start))
        assert on_a_switched_loop == pytest.approx(400, abs=math.ulp(start))


class TestExecutorShutdown:
    """The loop joins its default executor on real time (issue 10, item 13).

    Python 3.12+ joins the executor's threads at loop shutdown under a 300 s timeout timer;
    jumping that timer abandoned the threads with a RuntimeWarning ("did not finishing joining
    its threads within 300 seconds"), on 3.13 in most runs.
    """

    @staticmethod
    async def _leave_a_thread_busy(finished: threading.Event) -> None:
        def work() -> None:
            time.sleep(0.05)  # still running when the loop starts shutting down
            finished.set()

        asyncio.get_running_loop().run_in_executor(None, work)

    def test_run_joins_a_busy_executor_thread_before_it_returns(self) -> None:
        finished = threading.Event()
        clock = VirtualClock(start=100.0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            clock.run(self._leave_a_thread_busy(finished))
        assert finished.is_set()
        assert clock.time() == 100.0  # the join's timeout timer was not jumped to

    @pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=) is 3.12+")
    def test_asyncio_run_on_a_virtual_loop_joins_the_executor(self) -> None:
        finished = threading.Event()
        clock = VirtualClock()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            asyncio.run(  # type: ignore[call-arg, unused-ignore]
                self._leave_a_thread_busy(finished), loop_factory=clock.new_event_loop
            )
        assert finished.is_set()
        assert clock.time() == 0.0


class TestVirtualTimeOnARunningLoop:
    def test_patches_and_restores_a_plain_loop(self) -> None:
        async def main() -> tuple[float, float]:
            loop = asyncio.get_running_loop()
            with virtual_time() as clock:
                start = loop.time()
                await asyncio.sleep(1000)
                inside = loop.time() - start
            assert clock.jumps == 1
            real_before = time.monotonic()
            after = loop.time()
            return inside, abs(after - real_before)

        inside, drift = asyncio.run(main())
        assert inside == pytest.approx(1000)
        assert drift < 1

    def test_the_clock_starts_at_the_given_origin(self) -> None:
        async def main() -> tuple[float, float, float]:
            loop = asyncio.get_running_loop()
            with virtual_time(start=500.25) as clock:
                first = loop.time()
                await asyncio.sleep(10)
                return first, _clock.now(), clock.time()

        assert asyncio.run(main()) == (500.25, 510.25, 510.25)

    def test_a_timer_pending_at_the_switch_keeps_its_delay(self) -> None:
        async def main() -> float:
            loop = asyncio.get_running_loop()
            fired = loop.create_future()
            loop.call_later(60, fired.set_result, None)
            with virtual_time(start=0.0) as clock:
                await fired  # 60 virtual seconds: at once
                return clock.time()

        assert asyncio.run(main()) == pytest.approx(60, abs=0.5)

    def test_a_timer_pending_at_the_end_keeps_what_is_left_of_its_delay(self) -> None:
        async def main() -> float:
            loop = asyncio.get_running_loop()
            handle = loop.call_later(1000, lambda: None)
            with virtual_time(start=1e9):
                await asyncio.sleep(400)
            left = handle.when() - loop.time()
            handle.cancel()
            return left

        assert asyncio.run(main()) == pytest.approx(600, abs=0.5)

    def test_start_is_checked(self) -> None:
        async def main() -> None:
            with virtual_time(start=math.nan):
                pass

        with pytest.raises(ValueError, match=r"^start must be a finite number of seconds"):
            asyncio.run(main())


class TestTestingMode:
    async def test_set_testing_skips_stoic_waits(self) -> None:
        start = _clock.now()
        with set_testing(True):
            assert is_testing()
            await _clock.sleep(50)
        assert _clock.now() == start
        assert not is_testing()
        await _clock.sleep(50)
        assert _clock.now() == start + 50

    def test_set_testing_rejects_zero_attempts(self) -> None:
        with pytest.raises(ValueError, match=r"^attempts must be None or an int >= 1, got 0$"):
            set_testing(True, attempts=0)

    @pytest.mark.parametrize("attempts", [1.5, 2.0, True, False, "2", math.nan])
    def test_set_testing_rejects_attempts_that_are_not_an_int(self, attempts: object) -> None:
        with pytest.raises(ValueError, match=r"^attempts must be None or an int >= 1, got "):
            set_testing(True, attempts=attempts)  # type: ignore[arg-type]
        assert not is_testing()
        assert _clock.testing_state.attempts is None

    def test_set_testing_as_a_call_persists_until_switched_off(self) -> None:
        set_testing(True, attempts=2)
        try:
            assert is_testing()
            assert _clock.testing_state.attempts == 2
        finally:
            set_testing(False)
        assert not is_testing()
        assert _clock.testing_state.attempts is None


class TestVirtualTimeRobustness:
    """Nesting, timers left pending, and threads."""

    def test_nested_blocks_restore_the_outer_clock(self) -> None:
        async def main() -> tuple[float, float]:
            loop = asyncio.get_running_loop()
            with virtual_time() as outer:
                with virtual_time():
                    await asyncio.sleep(50)
                real_before = time.monotonic()
                await asyncio.sleep(100)  # still virtual: instant
                took = time.monotonic() - real_before
                assert loop.time() == outer.time()
            return took, loop.time() - time.monotonic()

        took, drift = asyncio.run(main())
        assert took < 0.5
        assert abs(drift) < 0.5

    def test_an_inner_block_does_not_move_the_outer_clock(self) -> None:
        async def main() -> tuple[float, float]:
            with virtual_time(start=0.0) as outer:
                with virtual_time(autojump_threshold=0.001):
                    await asyncio.sleep(50)
                return outer.time(), outer.jumps

        assert asyncio.run(main()) == (0.0, 0)

    def test_timers_made_inside_fire_on_the_real_clock_after(self) -> None:
        async def main() -> float:
            loop = asyncio.get_running_loop()
            fired = loop.create_future()
            with virtual_time():
                await asyncio.sleep(3600)
                loop.call_later(0.01, fired.set_result, None)
            start = time.monotonic()
            await asyncio.wait_for(fired, 2)
            return time.monotonic() - start

        assert asyncio.run(main()) < 0.5

    async def test_clock_reads_from_a_worker_thread(self) -> None:
        start = _clock.now()
        await asyncio.sleep(42)
        assert await asyncio.to_thread(_clock.now) == start + 42
