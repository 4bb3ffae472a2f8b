"""The clock: stoic runs on asyncio, and says so at once under another event loop."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

trio = pytest.importorskip("trio")

from stoic import Bulkhead, RateLimiter, Retry, _clock, timeout  # noqa: E402
from stoic.backoff import constant  # noqa: E402

ASYNCIO_ONLY = "stoic runs on asyncio"


def fresh(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter, where no stoic call has run yet."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


class TestUnderTrio:
    """The happy path fails on the first call, not the first wait of an outage."""

    @pytest.mark.parametrize(
        "strategy",
        [
            "stoic.Retry()",
            "stoic.Bulkhead(2)",
            "stoic.RateLimiter(10)",
            "stoic.timeout(5)",
            "stoic.Fallback(0)",
        ],
    )
    def test_the_first_successful_call_raises_a_clear_error(self, strategy: str) -> None:
        done = fresh(
            f"""
            import trio, stoic

            async def ok():
                return 1

            async def main():
                try:
                    await {strategy}.call(ok)
                except RuntimeError as exc:
                    print("refused:", exc)
                else:
                    print("ran")

            trio.run(main)
            """
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"refused: {ASYNCIO_ONLY}"), done.stdout

    def test_a_timeout_says_so_after_asyncio_ran_in_the_process(self) -> None:
        done = fresh(
            """
            import asyncio, trio, stoic

            async def ok():
                return 1

            asyncio.run(stoic.timeout(5).call(ok))  # asyncio seen: the first-call check is done

            async def main():
                try:
                    await stoic.timeout(5).call(ok)
                except RuntimeError as exc:
                    print("refused:", exc)

            trio.run(main)
            """
        )
        assert done.stdout.startswith(f"refused: {ASYNCIO_ONLY}"), done.stdout + done.stderr

    def test_a_circuit_breaker_needs_no_asyncio_and_runs(self) -> None:
        # It never waits: under trio it trips, rejects and probes as under asyncio.
        done = fresh(
            """
            import trio, stoic

            async def ok():
                return 1

            async def fail():
                raise ConnectionError

            async def main():
                breaker = stoic.CircuitBreaker(
                    failure_threshold=2, break_duration=1.0, success_threshold=1
                )
                assert await breaker.call(ok) == 1
                assert await breaker(ok)() == 1
                async with breaker:
                    pass
                for _ in range(2):
                    try:
                        await breaker.call(fail)
                    except ConnectionError:
                        pass
                try:
                    await breaker.call(ok)
                except stoic.CircuitBreakerOpen:
                    print("open")
                await trio.sleep(1.01)
                assert await breaker.call(ok) == 1
                print(breaker.state.value)

            trio.run(main)
            """
        )
        assert done.stdout.split() == ["open", "closed"], done.stdout + done.stderr

    def test_a_decorated_function_is_refused_too(self) -> None:
        done = fresh(
            """
            import trio, stoic

            @stoic.retry
            async def ok():
                return 1

            async def main():
                try:
                    await ok()
                except RuntimeError as exc:
                    print("refused:", exc)

            trio.run(main)
            """
        )
        assert done.stdout.startswith(f"refused: {ASYNCIO_ONLY}"), done.stdout + done.stderr

    def test_a_retry_wait_says_so_even_after_asyncio_was_used(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(_clock, "asyncio_seen", True)  # an earlier call ran on asyncio

        async def fail() -> None:
            raise ConnectionError

        async def main() -> None:
            with pytest.raises(RuntimeError, match=ASYNCIO_ONLY):
                await Retry(attempts=2, backoff=constant(1.0)).call(fail)

        trio.run(main)

    def test_a_zero_retry_wait_says_so_even_after_asyncio_was_used(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A zero wait is a bare yield, which trio refuses by throwing a TypeError into it.
        monkeypatch.setattr(_clock, "asyncio_seen", True)

        async def fail() -> None:
            raise ConnectionError

        async def main() -> None:
            with pytest.raises(RuntimeError, match=ASYNCIO_ONLY):
                await Retry(attempts=2, backoff=constant(0.0)).call(fail)

        trio.run(main)

    def test_a_timeout_entered_after_asyncio_ran_says_so_in_this_process(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The in-process twin of the subprocess test above: the same path, measured by
        # coverage, which does not follow subprocesses.
        monkeypatch.setattr(_clock, "asyncio_seen", True)

        async def main() -> None:
            with pytest.raises(RuntimeError, match=ASYNCIO_ONLY):
                await timeout(5).call(ok)

        trio.run(main)

    def test_waiting_for_a_slot_or_a_turn_says_so(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(_clock, "asyncio_seen", True)

        async def main() -> None:
            bulkhead = Bulkhead(1, max_waiting=1)
            limiter = RateLimiter(1, max_wait=None)
            await limiter.call(ok)
            with pytest.raises(RuntimeError, match=ASYNCIO_ONLY):
                await limiter.call(ok)
            async with bulkhead:
                with pytest.raises(RuntimeError, match=ASYNCIO_ONLY):
                    await bulkhead.call(ok)

        trio.run(main)


async def ok() -> int:
    return 1


class TestZeroWait:
    """A zero wait is one bare yield to the loop."""

    async def test_a_type_error_thrown_into_it_under_asyncio_passes_through(self) -> None:
        wait: Any = _clock.sleep(0)  # a generator-based coroutine: no ``__await__``
        next(wait)
        with pytest.raises(TypeError, match="thrown"):
            wait.throw(TypeError("thrown"))
