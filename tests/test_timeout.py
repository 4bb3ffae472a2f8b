"""Timeouts: the three forms, own expiry versus outer cancellation, the deadline context."""

from __future__ import annotations

import asyncio
import inspect
import math

import pytest

from stoic import _clock
from stoic._classify import NotAwaitable
from stoic._events import Event
from stoic._timeout import TimeoutExpired, current_deadline, remaining, timeout
from stoic.exceptions import TimeoutExceeded
from tests.timeline import clock_origin, elapsed  # noqa: F401  (autouse fixture)


async def sleep_then(seconds: float, value: str = "done") -> str:
    await asyncio.sleep(seconds)
    return value


class TestForms:
    """Strategy, decorator and async context manager."""

    async def test_call_returns_in_time(self) -> None:
        assert await timeout(5).call(sleep_then, 4.0) == "done"

    async def test_call_raises_timeout_exceeded_at_the_limit(self) -> None:
        with pytest.raises(TimeoutExceeded) as info:
            await timeout(5).call(sleep_then, 10.0)
        assert elapsed() == 5.0
        assert isinstance(info.value, TimeoutError)
        assert info.value.timeout == 5.0
        assert isinstance(info.value.__cause__, asyncio.CancelledError)

    async def test_context_manager(self) -> None:
        with pytest.raises(TimeoutError):
            async with timeout(1.5):
                await asyncio.sleep(3)
        assert elapsed() == 1.5

    async def test_context_manager_passes_when_in_time(self) -> None:
        async with timeout(1.5) as t:
            await asyncio.sleep(1)
        assert t.seconds == 1.5

    async def test_decorator_keeps_the_signature(self) -> None:
        @timeout(2)
        async def fetch(key: str, *, fresh: bool = False) -> str:
            await asyncio.sleep(3)
            return key

        assert list(inspect.signature(fetch).parameters) == ["key", "fresh"]
        with pytest.raises(TimeoutExceeded):
            await fetch("k")

    async def test_infinite_timeout_never_fires(self) -> None:
        assert await timeout(math.inf).call(sleep_then, 1e6) == "done"

    @pytest.mark.parametrize("form", ["call", "async with"])
    async def test_the_first_call_in_a_process_finds_asyncio_running(
        self, form: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(_clock, "asyncio_seen", False)  # as in a fresh process
        if form == "call":
            assert await timeout(5).call(sleep_then, 1.0) == "done"
        else:
            async with timeout(5):
                await sleep_then(1.0)
        assert _clock.asyncio_seen

    async def test_the_functions_own_type_error_passes_through(self) -> None:
        async def wrong() -> str:
            raise TypeError("bad argument")

        with pytest.raises(TypeError, match="bad argument") as info:
            await timeout(5).call(wrong)
        assert not isinstance(info.value, NotAwaitable)

    async def test_one_object_entered_by_many_tasks(self) -> None:
        shared = timeout(10)

        async def worker(delay: float) -> str:
            async with shared:
                await asyncio.sleep(delay)
            return "ok"

        results = await asyncio.gather(worker(1), worker(20), worker(5), return_exceptions=True)
        assert results[0] == "ok"
        assert isinstance(results[1], TimeoutExceeded)
        assert results[2] == "ok"


class TestCancellation:
    """Only its own expiry becomes TimeoutError."""

    async def test_outer_cancellation_stays_cancellation(self) -> None:
        task = asyncio.create_task(timeout(10).call(sleep_then, 100.0))
        await asyncio.sleep(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async def test_user_timeout_error_is_not_converted(self) -> None:
        async def raises() -> None:
            raise TimeoutError("socket")

        with pytest.raises(TimeoutError, match="socket") as info:
            await timeout(10).call(raises)
        assert not isinstance(info.value, TimeoutExceeded)

    async def test_inner_longer_timeout_yields_to_the_outer(self) -> None:
        outer = timeout(2)
        inner = timeout(10)
        with pytest.raises(TimeoutExceeded) as info:
            await outer.call(inner.call, sleep_then, 100.0)
        assert info.value.timeout == 2.0
        assert elapsed() == 2.0

    async def test_inner_shorter_timeout_fires_first(self) -> None:
        with pytest.raises(TimeoutExceeded) as info:
            async with timeout(10):
                await timeout(1).call(sleep_then, 100.0)
        assert info.value.timeout == 1.0


class TestMisuse:
    """``async with`` scopes leave in the task that entered them, innermost first."""

    async def test_leaving_in_a_task_that_did_not_enter_raises(self) -> None:
        shared = timeout(5)
        entered = asyncio.Event()

        async def leave() -> None:
            await entered.wait()
            await shared.__aexit__(None, None, None)

        other = asyncio.create_task(leave())  # its context is copied before the entry
        await shared.__aenter__()
        entered.set()
        with pytest.raises(RuntimeError, match="exited in the task that entered them"):
            await other
        await shared.__aexit__(None, None, None)

    async def test_leaving_the_outer_scope_first_raises(self) -> None:
        outer, inner = timeout(5), timeout(3)
        await outer.__aenter__()
        await inner.__aenter__()
        with pytest.raises(RuntimeError, match="in the reverse order of entry"):
            await outer.__aexit__(None, None, None)
        await inner.__aexit__(None, None, None)
        await outer.__aexit__(None, None, None)


class TestDeadlineContext:
    """The innermost deadline is visible to code below."""

    async def test_remaining_is_none_outside_any_timeout(self) -> None:
        assert remaining() is None
        assert current_deadline() is None

    async def test_remaining_counts_down(self) -> None:
        async with timeout(5):
            await asyncio.sleep(2)
            assert remaining() == 3.0
        assert remaining() is None

    async def test_nested_timeouts_publish_the_earliest_deadline(self) -> None:
        async with timeout(2):
            async with timeout(10):
                assert remaining() == 2.0
            async with timeout(0.5):
                assert remaining() == 0.5
            assert remaining() == 2.0

    async def test_deadline_is_per_task(self) -> None:
        seen: list[float | None] = []

        async def observe() -> None:
            seen.append(remaining())

        async with timeout(4):
            inside = asyncio.create_task(observe())
            await inside
        await asyncio.create_task(observe())
        assert seen == [4.0, None]


class TestEvents:
    """A TimeoutExpired event when the time runs out."""

    async def test_event_on_expiry(self) -> None:
        events: list[Event] = []
        with pytest.raises(TimeoutExceeded):
            await timeout(1, name="db", listeners=[events.append]).call(sleep_then, 5.0)
        assert events == [TimeoutExpired("db", 1.0)]

    async def test_no_event_in_time(self) -> None:
        events: list[Event] = []
        await timeout(1, listeners=[events.append]).call(sleep_then, 0.5)
        assert events == []


class TestValidation:
    """Negative and NaN values fail at construction."""

    @pytest.mark.parametrize("seconds", [-1, -0.001, float("nan"), "5"])
    def test_rejects_bad_seconds(self, seconds: float) -> None:
        with pytest.raises(ValueError, match="seconds must be a number >= 0"):
            timeout(seconds)

    def test_zero_times_out_at_once(self) -> None:
        assert timeout(0).seconds == 0.0

    def test_repr(self) -> None:
        assert repr(timeout(2.5, name="api")) == "timeout(2.5, name='api')"


class TestDeadlineLifetime:
    """A deadline applies only while its block runs."""

    async def test_task_spawned_inside_does_not_keep_a_dead_deadline(self) -> None:
        seen: list[float | None] = []
        release = asyncio.Event()

        async def background() -> None:
            await release.wait()
            seen.append(remaining())

        async with timeout(5):
            task = asyncio.create_task(background())
            assert remaining() == 5.0
        await asyncio.sleep(10)
        release.set()
        await task
        assert seen == [None]

    async def test_outer_deadline_still_applies_when_an_inner_one_ended(self) -> None:
        seen: list[float | None] = []
        release = asyncio.Event()

        async def background() -> None:
            await release.wait()
            seen.append(remaining())

        async with timeout(30):
            async with timeout(5):
                task = asyncio.create_task(background())
            await asyncio.sleep(10)
            release.set()
            await task
        assert seen == [20.0]


class _OffsetClockLoop(asyncio.SelectorEventLoop):
    """A loop whose clock is not ``time.monotonic`` (like the ``looptime`` plugin's)."""

    def time(self) -> float:
        return super().time() - 10_000.0


def test_timeout_uses_the_loop_clock_for_its_own_expiry() -> None:
    async def main() -> str:
        try:
            await timeout(0.01).call(asyncio.sleep, 0.3)
        except TimeoutExceeded:
            return "timed out"
        return "no timeout"

    with asyncio.Runner(loop_factory=_OffsetClockLoop) as runner:
        assert runner.run(main()) == "timed out"
