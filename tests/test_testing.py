"""Virtual time and testing mode."""

from __future__ import annotations

import asyncio
import time

import pytest

from stoic import _clock
from stoic.testing import VirtualClock, is_testing, run, set_testing, virtual_time


class TestVirtualClock:
    async def test_sleep_of_an_hour_takes_no_real_time(self) -> None:
        real_start = time.monotonic()
        start = _clock.now()
        await asyncio.sleep(3600)
        assert _clock.now() - start == 3600
        assert time.monotonic() - real_start < 0.5

    async def test_time_only_moves_when_every_task_waits(self) -> None:
        seen: list[float] = []

        async def sleeper(delay: float) -> None:
            await asyncio.sleep(delay)
            seen.append(_clock.now())

        async with asyncio.TaskGroup() as tg:
            tg.create_task(sleeper(5))
            tg.create_task(sleeper(2))
            tg.create_task(sleeper(7.5))
        assert seen == [2, 5, 7.5]

    async def test_asyncio_timeout_fires_at_virtual_deadline(self) -> None:
        start = _clock.now()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(10):
                await asyncio.sleep(100)
        assert _clock.now() - start == 10

    async def test_fixture_is_the_running_loop_clock(self, virtual_clock: VirtualClock) -> None:
        await asyncio.sleep(1.5)
        assert virtual_clock.time() == 1.5
        assert virtual_clock.jumps == 1

    async def test_threads_still_complete(self) -> None:
        result = await asyncio.to_thread(lambda: 42)
        assert result == 42

    def test_run_returns_the_result(self) -> None:
        async def main() -> float:
            await asyncio.sleep(30)
            return _clock.now()

        assert run(main()) == 30.0

    def test_advance_rejects_negative(self) -> None:
        with pytest.raises(ValueError, match="seconds must be >= 0"):
            VirtualClock().advance(-1)

    def test_autojump_threshold_rejects_negative(self) -> None:
        with pytest.raises(ValueError, match="autojump_threshold"):
            VirtualClock(autojump_threshold=-0.1)


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
        with pytest.raises(ValueError, match="attempts must be >= 1"):
            set_testing(True, attempts=0)

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
    """Nesting, timers left pending, and threads (regressions: review findings 3, 4, 12)."""

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
        await asyncio.sleep(42)
        assert await asyncio.to_thread(_clock.now) == 42.0
