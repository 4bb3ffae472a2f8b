"""Retry: attempts, classification, backoff timing, deadlines, hints, events, forms."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import random as _random
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from stoic import _clock
from stoic._events import Event
from stoic._fallback import Fallback
from stoic._pipeline import Pipeline
from stoic._retry import (
    AttemptCompleted,
    Retry,
    RetryBudget,
    RetryGaveUp,
    RetryScheduled,
    async_retry,
    retry,
    retry_after_hint,
    retry_with_backoff,
)
from stoic._timeout import timeout
from stoic.backoff import Backoff, Exponential, constant, exponential, linear
from stoic.exceptions import ResultRejected
from stoic.testing import set_testing
from tests.forms import around_retry, forms_of, sees_results
from tests.timeline import clock_origin, elapsed  # noqa: F401  (autouse fixture)

# Every async test runs with ``.call`` routed through each form (tests/forms.py).
EVERY_FORM = forms_of(Retry, "decorator", "attempt loop", "pipeline", pipeline=around_retry)


def fixed(value: float) -> Callable[[], float]:
    return lambda: value


class Flaky:
    """Fails with the given exceptions in order, then returns ``value``; records call times."""

    def __init__(self, *failures: BaseException, value: Any = "ok") -> None:
        self.failures = list(failures)
        self.value = value
        self.times: list[float] = []

    async def __call__(self) -> Any:
        self.times.append(elapsed())
        if self.failures:
            raise self.failures.pop(0)
        return self.value


def fails_forever(exc_type: type[BaseException] = ConnectionError) -> Flaky:
    flaky = Flaky()
    flaky.failures = _Endless(exc_type)  # type: ignore[assignment]
    return flaky


class _Endless(list):  # type: ignore[type-arg]
    def __init__(self, exc_type: type[BaseException]) -> None:
        super().__init__()
        self.exc_type = exc_type
        self.count = 0

    def __bool__(self) -> bool:
        return True

    def pop(self, index: int = -1) -> BaseException:
        self.count += 1
        return self.exc_type(f"failure {self.count}")


class TestAttempts:
    """Retrying until success or until the attempts run out."""

    async def test_retries_until_success(self) -> None:
        flaky = Flaky(ConnectionError(), ConnectionError(), value=42)
        assert await Retry(attempts=3, backoff=constant(1.0)).call(flaky) == 42
        assert flaky.times == [0.0, 1.0, 2.0]

    async def test_the_first_call_in_a_process_finds_asyncio_running(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(_clock, "asyncio_seen", False)  # as in a fresh process
        assert await Retry().call(Flaky(value=7)) == 7
        assert _clock.asyncio_seen

    async def test_attempts_counts_the_first_call(self) -> None:
        flaky = fails_forever()
        with pytest.raises(ConnectionError):
            await Retry(attempts=4, backoff=constant(0.0)).call(flaky)
        assert len(flaky.times) == 4

    async def test_gives_up_with_the_last_real_exception_and_a_note(self) -> None:
        last = ConnectionError("last")
        flaky = Flaky(ConnectionError("first"), last)
        with pytest.raises(ConnectionError) as info:
            await Retry(attempts=2, backoff=constant(1.5)).call(flaky)
        assert info.value is last
        assert info.value.__notes__ == [
            "stoic: gave up after 2 attempt(s), 1.500s after the first failure: no attempts left"
        ]

    async def test_time_counts_from_the_first_failure_with_a_deadline(self) -> None:
        async def slow_failure() -> None:
            await asyncio.sleep(2.0)
            raise ConnectionError

        with pytest.raises(ConnectionError) as info:
            await Retry(attempts=2, backoff=constant(1.0), deadline=100).call(slow_failure)
        assert info.value.__notes__ == [
            "stoic: gave up after 2 attempt(s), 3.000s after the first failure: no attempts left"
        ]

    async def test_time_counts_from_the_first_failure_without_a_deadline(self) -> None:
        async def slow_failure() -> None:
            await asyncio.sleep(2.0)
            raise ConnectionError

        with pytest.raises(ConnectionError) as info:
            await Retry(attempts=2, backoff=constant(1.0)).call(slow_failure)
        assert info.value.__notes__ == [
            "stoic: gave up after 2 attempt(s), 3.000s after the first failure: no attempts left"
        ]

    async def test_one_attempt_means_no_retry(self) -> None:
        flaky = fails_forever()
        with pytest.raises(ConnectionError):
            await Retry(attempts=1).call(flaky)
        assert len(flaky.times) == 1

    async def test_default_attempts_are_bounded(self) -> None:
        flaky = fails_forever()
        with pytest.raises(ConnectionError):
            await Retry().call(flaky)
        assert len(flaky.times) == 3

    async def test_arguments_are_passed_on_every_attempt(self) -> None:
        seen: list[tuple[int, str]] = []

        async def fn(a: int, *, b: str) -> str:
            seen.append((a, b))
            if len(seen) < 2:
                raise ConnectionError
            return b * a

        assert await Retry(backoff=constant(0)).call(fn, 2, b="x") == "xx"
        assert seen == [(2, "x"), (2, "x")]


class TestClassification:
    """What ``on=`` and ``on_result=`` retry, and what is never retried."""

    async def test_exception_outside_on_is_raised_at_once(self) -> None:
        flaky = Flaky(ValueError("bad input"))
        with pytest.raises(ValueError, match="bad input"):
            await Retry(on=ConnectionError).call(flaky)
        assert len(flaky.times) == 1

    async def test_exception_outside_on_after_retries_gets_a_note(self) -> None:
        flaky = Flaky(ConnectionError(), ValueError("bad"))
        with pytest.raises(ValueError) as info:
            await Retry(on=ConnectionError, backoff=constant(0)).call(flaky)
        assert info.value.__notes__ == ["stoic: not retried: attempt 2 raised it"]

    async def test_predicate_on(self) -> None:
        flaky = Flaky(OSError(503, "busy"), OSError(404, "gone"))
        with pytest.raises(OSError, match="gone"):
            await Retry(
                on=lambda e: isinstance(e, OSError) and e.errno == 503, backoff=constant(0)
            ).call(flaky)
        assert len(flaky.times) == 2

    async def test_group_of_matching_leaves_is_retried(self) -> None:
        group = ExceptionGroup("many", [ConnectionError(), ExceptionGroup("n", [TimeoutError()])])
        flaky = Flaky(group, value="ok")
        policy = Retry(on=(ConnectionError, TimeoutError), backoff=constant(0))
        assert await policy.call(flaky) == "ok"

    async def test_group_with_one_other_leaf_is_not_retried(self) -> None:
        group = ExceptionGroup("many", [ConnectionError(), ValueError()])
        flaky = Flaky(group, value="ok")
        with pytest.raises(ExceptionGroup):
            await Retry(on=ConnectionError, backoff=constant(0)).call(flaky)
        assert len(flaky.times) == 1

    @pytest.mark.parametrize(
        "exc", [asyncio.CancelledError(), KeyboardInterrupt(), SystemExit(1), GeneratorExit()]
    )
    async def test_control_flow_exceptions_are_never_retried(self, exc: BaseException) -> None:
        flaky = Flaky(exc, value="ok")
        with pytest.raises(type(exc)) as info:
            await Retry(on=BaseException, backoff=constant(0)).call(flaky)
        assert info.value is exc
        assert not getattr(exc, "__notes__", None)
        assert len(flaky.times) == 1

    async def test_group_holding_cancellation_is_never_retried(self) -> None:
        group = BaseExceptionGroup("g", [ConnectionError(), asyncio.CancelledError()])
        flaky = Flaky(group, value="ok")
        with pytest.raises(BaseExceptionGroup):
            await Retry(on=BaseException, backoff=constant(0)).call(flaky)
        assert len(flaky.times) == 1

    @sees_results
    async def test_on_result_asks_for_another_attempt(self) -> None:
        results = iter([None, None, "done"])

        async def poll() -> str | None:
            return next(results)

        policy = Retry(attempts=5, on_result=lambda r: r is None, backoff=constant(1))
        assert await policy.call(poll) == "done"

    @sees_results
    async def test_rejected_last_result_raises_result_rejected(self) -> None:
        async def poll() -> dict[str, str]:
            return {"status": "pending"}

        policy = Retry(
            attempts=3, on_result=lambda r: r["status"] == "pending", backoff=constant(2)
        )
        with pytest.raises(ResultRejected) as info:
            await policy.call(poll)
        assert info.value.result == {"status": "pending"}
        assert info.value.attempts == 3
        assert info.value.elapsed == 4.0


class TestBackoffTiming:
    """Waits follow the backoff policy exactly on virtual time."""

    async def test_linear_waits_between_attempts(self) -> None:
        flaky = Flaky(*[ConnectionError() for _ in range(3)])
        await Retry(attempts=4, backoff=linear(1.0, 1.0, 10.0)).call(flaky)
        assert flaky.times == [0.0, 1.0, 3.0, 6.0]

    async def test_injected_random_drives_jitter(self) -> None:
        flaky = Flaky(ConnectionError(), ConnectionError())
        policy = Retry(backoff=exponential(2.0, 2.0, 10.0, "full"), random=lambda: 0.5)
        await policy.call(flaky)
        assert flaky.times == [0.0, 1.0, 3.0]

    async def test_a_backoff_whose_delays_carry_state_is_followed(self) -> None:
        flaky = Flaky(*[ConnectionError() for _ in range(4)])
        backoff = exponential(1.0, 2.0, 10.0, "decorrelated")
        expected = list(itertools.accumulate(itertools.islice(backoff.delays(fixed(0.3)), 4)))
        await Retry(attempts=5, backoff=backoff, random=fixed(0.3)).call(flaky)
        assert flaky.times == pytest.approx([0.0, *expected])

    async def test_a_backoff_subclass_overriding_delays_is_followed(self) -> None:
        class Tripled(Backoff):
            def delays(self, random: Callable[[], float] = _random.random) -> Iterator[float]:
                return itertools.count(3.0, 3.0)

        class FromExponential(Exponential):
            def delays(self, random: Callable[[], float] = _random.random) -> Iterator[float]:
                return itertools.repeat(0.5)

        flaky = Flaky(ConnectionError(), ConnectionError())
        await Retry(backoff=Tripled()).call(flaky)
        assert flaky.times == [0.0, 3.0, 9.0]
        flaky = Flaky(ConnectionError(), ConnectionError())
        await Retry(backoff=FromExponential(4.0, 2.0, 10.0, "none")).call(flaky)
        assert [t - flaky.times[0] for t in flaky.times] == [0.0, 0.5, 1.0]

    async def test_with_no_backoff_given_the_waits_are_the_documented_default(self) -> None:
        # exponential(): 0.2 s doubling, full jitter; a draw of 0.5 halves each delay.
        flaky = Flaky(ConnectionError(), ConnectionError())
        await Retry(random=fixed(0.5)).call(flaky)
        assert flaky.times == pytest.approx([0.0, 0.1, 0.3])
        assert Retry().backoff == exponential()

    async def test_max_delay_caps_every_wait(self) -> None:
        flaky = Flaky(ConnectionError())
        await Retry(backoff=constant(100.0), max_delay=3.0).call(flaky)
        assert flaky.times == [0.0, 3.0]


class TestDeadline:
    """No wait runs past the deadline and no attempt starts after it."""

    async def test_gives_up_instead_of_sleeping_past_the_deadline(self) -> None:
        flaky = fails_forever()
        with pytest.raises(ConnectionError) as info:
            await Retry(attempts=100, backoff=constant(3.0), deadline=10.0).call(flaky)
        assert flaky.times == [0.0, 3.0, 6.0, 9.0]
        assert elapsed() == 9.0
        assert "the deadline allows no further attempt" in info.value.__notes__[0]

    async def test_no_attempt_starts_after_a_slow_attempt_passed_the_deadline(self) -> None:
        calls = 0

        async def slow() -> None:
            nonlocal calls
            calls += 1
            await asyncio.sleep(20)
            raise ConnectionError

        with pytest.raises(ConnectionError):
            await Retry(attempts=5, backoff=constant(0), deadline=10.0).call(slow)
        assert calls == 1

    async def test_outer_timeout_deadline_is_honoured(self) -> None:
        flaky = fails_forever()
        with pytest.raises(ConnectionError):
            async with timeout(2.0):
                await Retry(attempts=10, backoff=constant(10.0)).call(flaky)
        assert flaky.times == [0.0]
        assert elapsed() == 0.0

    async def test_outer_timeout_lets_waits_that_fit(self) -> None:
        flaky = fails_forever()
        with pytest.raises(ConnectionError):
            await timeout(2.0).call(Retry(attempts=10, backoff=constant(0.5)).call, flaky)
        assert flaky.times == [0.0, 0.5, 1.0, 1.5]
        assert elapsed() == 1.5

    async def test_own_deadline_shorter_than_outer_wins(self) -> None:
        flaky = fails_forever()
        with pytest.raises(ConnectionError):
            async with timeout(60.0):
                await Retry(attempts=10, backoff=constant(1.0), deadline=2.5).call(flaky)
        assert flaky.times == [0.0, 1.0, 2.0]


class TestDelayHint:
    """Server hints such as Retry-After replace the backoff, within limits."""

    @staticmethod
    def hint(exc: BaseException) -> float | None:
        return getattr(exc, "retry_after", None)

    @staticmethod
    def throttled(seconds: float | None) -> ConnectionError:
        exc = ConnectionError("429")
        exc.retry_after = seconds  # type: ignore[attr-defined]
        return exc

    async def test_hint_replaces_the_backoff(self) -> None:
        flaky = Flaky(self.throttled(7.0), self.throttled(None))
        await Retry(backoff=constant(1.0), delay_hint=self.hint).call(flaky)
        assert flaky.times == [0.0, 7.0, 8.0]

    async def test_hint_is_capped_by_max_delay(self) -> None:
        flaky = Flaky(self.throttled(3600.0))
        await Retry(delay_hint=self.hint, max_delay=30.0).call(flaky)
        assert flaky.times == [0.0, 30.0]

    async def test_hint_past_the_deadline_gives_up(self) -> None:
        flaky = Flaky(self.throttled(50.0))
        with pytest.raises(ConnectionError):
            await Retry(delay_hint=self.hint, deadline=20.0).call(flaky)
        assert flaky.times == [0.0]

    async def test_hint_that_raises_is_logged_and_the_backoff_used(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        def broken(exc: BaseException) -> float:
            raise RuntimeError("bug in the Retry-After parser")

        flaky = Flaky(ConnectionError("real"), ConnectionError("real again"))
        with caplog.at_level(logging.ERROR, logger="stoic"):
            await Retry(backoff=constant(2.0), delay_hint=broken).call(flaky)
        assert flaky.times == [0.0, 2.0, 4.0]
        assert "delay_hint" in caplog.text

    @pytest.mark.parametrize("bad", [-1.0, float("nan"), "5", float("inf")])
    async def test_hint_that_is_not_seconds_is_ignored(self, bad: Any) -> None:
        flaky = Flaky(ConnectionError())
        await Retry(backoff=constant(1.5), delay_hint=lambda exc: bad).call(flaky)
        assert flaky.times == [0.0, 1.5]

    @sees_results
    async def test_hint_sees_rejected_results(self) -> None:
        results = iter([{"wait": 4.0}, {"wait": None, "ok": True}])

        async def poll() -> dict[str, Any]:
            return next(results)

        start = elapsed()
        await Retry(on_result=lambda r: not r.get("ok"), delay_hint=lambda r: r["wait"]).call(poll)
        assert elapsed() - start == 4.0


class TestEvents:
    """One frozen event per scheduled retry and per give-up."""

    async def test_scheduled_and_gave_up_events(self) -> None:
        events: list[Event] = []
        first, second = ConnectionError("1"), ConnectionError("2")
        flaky = Flaky(first, second)
        policy = Retry(attempts=2, backoff=constant(1.0), name="api", listeners=[events.append])
        with pytest.raises(ConnectionError):
            await policy.call(flaky)
        assert events == [
            AttemptCompleted("api", attempt=1, duration=0.0, outcome="failure", exception=first),
            RetryScheduled("api", attempt=1, delay=1.0, elapsed=0.0, exception=first, result=None),
            AttemptCompleted("api", attempt=2, duration=0.0, outcome="failure", exception=second),
            RetryGaveUp(
                "api", attempt=2, elapsed=1.0, exception=second, result=None, reason="attempts"
            ),
        ]

    async def test_failing_listener_is_logged_not_raised(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        def broken(event: Event) -> None:
            raise RuntimeError("listener bug")

        flaky = Flaky(ConnectionError(), value=5)
        with caplog.at_level(logging.ERROR, logger="stoic"):
            assert await Retry(backoff=constant(0), listeners=[broken]).call(flaky) == 5
        assert "listener" in caplog.text
        assert "RetryScheduled" in caplog.text

    async def test_a_failing_global_listener_is_logged_and_the_others_still_hear(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        from stoic._events import add_listener, remove_listener

        def broken(event: Event) -> None:
            raise RuntimeError("listener bug")

        heard: list[Event] = []
        add_listener(broken)
        add_listener(heard.append)
        try:
            with caplog.at_level(logging.ERROR, logger="stoic"):
                assert await Retry(backoff=constant(0)).call(Flaky(ConnectionError())) == "ok"
        finally:
            remove_listener(broken)
            remove_listener(heard.append)
        assert "listener bug" in caplog.text
        assert [type(event).__name__ for event in heard] == [
            "AttemptCompleted",
            "RetryScheduled",
            "AttemptCompleted",
        ]

    def test_events_are_frozen(self) -> None:
        event = RetryScheduled(None, 1, 0.0, 0.0, None, None)
        with pytest.raises(AttributeError):
            event.attempt = 2  # type: ignore[misc]


class TestConcurrency:
    """State lives per call."""

    async def test_a_thousand_concurrent_calls_each_get_their_own_attempts(self) -> None:
        policy = Retry(attempts=3, backoff=exponential(0.1, 2.0, 1.0, "full"))
        attempts: dict[int, int] = {}

        async def work(i: int) -> int:
            attempts[i] = attempts.get(i, 0) + 1
            await asyncio.sleep(0.01 * (i % 7))
            if attempts[i] < 1 + i % 3:
                raise ConnectionError
            return i

        results = await asyncio.gather(*(policy.call(work, i) for i in range(1000)))
        assert results == list(range(1000))
        assert all(attempts[i] == 1 + i % 3 for i in range(1000))

    async def test_concurrent_failing_calls_each_exhaust_their_own_budget(self) -> None:
        policy = Retry(attempts=4, backoff=constant(1.0))
        counts = [0] * 100

        async def work(i: int) -> None:
            counts[i] += 1
            raise ConnectionError

        results = await asyncio.gather(
            *(policy.call(work, i) for i in range(100)), return_exceptions=True
        )
        assert all(isinstance(r, ConnectionError) for r in results)
        assert counts == [4] * 100


class TestCancellation:
    """A cancelled retrying call stops at once and re-raises CancelledError."""

    async def test_cancelled_during_the_wait(self) -> None:
        flaky = fails_forever()
        task = asyncio.create_task(Retry(attempts=5, backoff=constant(10.0)).call(flaky))
        await asyncio.sleep(5.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert flaky.times == [0.0]
        assert elapsed() == 5.0

    async def test_cancelled_during_an_attempt(self) -> None:
        started = 0

        async def slow() -> None:
            nonlocal started
            started += 1
            await asyncio.sleep(100)

        task = asyncio.create_task(Retry(on=BaseException, backoff=constant(0)).call(slow))
        await asyncio.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert started == 1


class TestDecorator:
    """``@retry`` and ``@Retry(...)`` keep the signature and work on methods."""

    async def test_decorator_retries(self) -> None:
        flaky = Flaky(ConnectionError(), value="v")

        @retry(attempts=2, backoff=constant(0))
        async def fetch(key: str, *, fresh: bool = False) -> str:
            return f"{key}:{await flaky()}"

        assert await fetch("k") == "k:v"

    def test_signature_and_metadata_are_kept(self) -> None:
        async def fetch(key: str, *, fresh: bool = False) -> str:
            """Docs."""
            return key

        wrapped = retry(attempts=2)(fetch)
        assert inspect.signature(wrapped) == inspect.signature(fetch)
        assert wrapped.__name__ == "fetch"
        assert wrapped.__doc__ == "Docs."
        assert wrapped.__wrapped__ is fetch  # type: ignore[attr-defined]

    async def test_bare_decorator(self) -> None:
        flaky = Flaky(ConnectionError(), value=1)

        @retry
        async def fetch() -> int:
            return int(await flaky())

        with set_testing(True):
            assert await fetch() == 1

    async def test_methods(self) -> None:
        class Client:
            def __init__(self) -> None:
                self.calls = 0

            @retry(backoff=constant(0))
            async def get(self, n: int) -> int:
                self.calls += 1
                if self.calls < 2:
                    raise ConnectionError
                return n * 2

        client = Client()
        assert await client.get(21) == 42
        assert client.calls == 2

    async def test_on_result_in_decorator(self) -> None:
        results = iter([0, 0, 3])

        @retry(attempts=3, on_result=lambda r: r == 0, backoff=constant(0))
        async def poll() -> int:
            return next(results)

        assert await poll() == 3


class TestAttemptLoop:
    """``async for attempt in policy: with attempt: ...``."""

    def test_a_policy_with_on_result_refuses_to_loop(self) -> None:
        with pytest.raises(TypeError, match="a block has no result for on_result"):
            aiter(Retry(on_result=lambda result: True))

    async def test_retries_the_block_until_it_succeeds(self) -> None:
        flaky = Flaky(ConnectionError(), ConnectionError(), value="v")
        numbers = []
        async for attempt in Retry(attempts=5, backoff=constant(1.0)):
            with attempt:
                numbers.append(attempt.number)
                result = await flaky()
        assert result == "v"
        assert numbers == [1, 2, 3]
        assert flaky.times == [0.0, 1.0, 2.0]

    async def test_gives_up_with_the_real_exception(self) -> None:
        flaky = fails_forever()
        with pytest.raises(ConnectionError) as info:
            async for attempt in Retry(attempts=2, backoff=constant(0)):
                with attempt:
                    await flaky()
        assert len(flaky.times) == 2
        assert "gave up after 2 attempt(s)" in info.value.__notes__[0]

    async def test_non_retryable_exception_leaves_the_loop(self) -> None:
        runs = 0
        with pytest.raises(KeyError):
            async for attempt in Retry(on=ConnectionError):
                with attempt:
                    runs += 1
                    raise KeyError("x")
        assert runs == 1

    async def test_context_and_timings_per_attempt(self) -> None:
        from stoic._context import call_context

        seen: list[int] = []
        events: list[Event] = []
        async for attempt in Retry(attempts=3, backoff=constant(1.0), listeners=[events.append]):
            with attempt:
                seen.append(call_context().attempt)
                await asyncio.sleep(0.5)
                if attempt.number < 3:
                    raise ConnectionError
        assert seen == [1, 2, 3]
        assert call_context().attempt == 1
        completed = [e for e in events if isinstance(e, AttemptCompleted)]
        assert [(e.attempt, e.duration, e.outcome) for e in completed] == [
            (1, 0.5, "failure"),
            (2, 0.5, "failure"),
            (3, 0.5, "success"),
        ]

    async def test_each_loop_has_its_own_state(self) -> None:
        policy = Retry(attempts=2, backoff=constant(0))

        async def run_loop() -> int:
            count = 0
            async for attempt in policy:
                with attempt:
                    count += 1
                    if count == 1:
                        raise ConnectionError
            return count

        assert await asyncio.gather(run_loop(), run_loop()) == [2, 2]

    async def test_an_attempt_whose_block_never_runs_ends_the_loop(self) -> None:
        numbers: list[int] = []
        async for attempt in Retry(attempts=3):
            numbers.append(attempt.number)  # no ``with attempt``: nothing failed
        assert numbers == [1]

    async def test_the_loop_handed_out_by_aiter_iterates_itself(self) -> None:
        attempts = aiter(Retry(attempts=2, backoff=constant(0)))
        runs = 0
        async for attempt in attempts:
            with attempt:
                runs += 1
                if runs == 1:
                    raise ConnectionError
        assert runs == 2

    async def test_an_attempts_repr_shows_its_number(self) -> None:
        async for attempt in Retry():
            with attempt:
                assert repr(attempt) == "<Attempt 1>"


class TestTestingMode:
    """``set_testing`` switches waits off and can cap attempts."""

    async def test_no_waits(self) -> None:
        flaky = Flaky(ConnectionError(), ConnectionError())
        with set_testing(True):
            await Retry(backoff=constant(30.0)).call(flaky)
        assert flaky.times == [0.0, 0.0, 0.0]

    async def test_attempts_cap(self) -> None:
        flaky = fails_forever()
        with set_testing(True, attempts=2), pytest.raises(ConnectionError):
            await Retry(attempts=10).call(flaky)
        assert len(flaky.times) == 2


class TestSeedApi:
    """The founding document's ``retry_with_backoff`` and ``async_retry``."""

    async def test_retry_with_backoff_makes_max_retries_plus_one_attempts(self) -> None:
        flaky = fails_forever()
        with pytest.raises(ConnectionError):
            await retry_with_backoff(flaky, max_retries=3, base_delay=1.0)
        assert len(flaky.times) == 4

    async def test_retry_with_backoff_waits_exponentially_with_25_percent_jitter(self) -> None:
        flaky = fails_forever()
        with pytest.raises(ConnectionError):
            await retry_with_backoff(flaky, max_retries=3, base_delay=1.0, exponential_base=2.0)
        gaps = [b - a for a, b in zip(flaky.times, flaky.times[1:], strict=False)]
        for gap, nominal in zip(gaps, [1.0, 2.0, 4.0], strict=True):
            assert 0.75 * nominal <= gap <= 1.25 * nominal

    async def test_retry_with_backoff_without_jitter_is_exact(self) -> None:
        flaky = Flaky(ValueError(), ValueError(), value=9)
        assert await retry_with_backoff(flaky, base_delay=0.5, jitter=False) == 9
        assert flaky.times == [0.0, 0.5, 1.5]

    async def test_retry_with_backoff_only_retries_listed_exceptions(self) -> None:
        flaky = Flaky(KeyError())
        with pytest.raises(KeyError):
            await retry_with_backoff(flaky, retryable_exceptions=(ConnectionError,))
        assert len(flaky.times) == 1

    async def test_retry_with_backoff_caps_at_max_delay(self) -> None:
        flaky = Flaky(*[ConnectionError() for _ in range(3)])
        await retry_with_backoff(flaky, base_delay=10.0, max_delay=12.0)
        gaps = [b - a for a, b in zip(flaky.times, flaky.times[1:], strict=False)]
        assert all(g <= 12.0 for g in gaps)

    async def test_async_retry_decorator(self) -> None:
        flaky = Flaky(ConnectionError(), value="data")

        @async_retry(max_retries=2, base_delay=0.1, exceptions=(ConnectionError,))
        async def fetch_data(url: str) -> str:
            return f"{url}={await flaky()}"

        assert await fetch_data("u") == "u=data"
        assert fetch_data.__name__ == "fetch_data"

    async def test_seed_with_zero_retries_calls_once(self) -> None:
        flaky = fails_forever()
        with pytest.raises(ConnectionError):
            await retry_with_backoff(flaky, max_retries=0)
        assert len(flaky.times) == 1

    async def test_seed_validation_is_not_skipped_by_the_cache(self) -> None:
        await retry_with_backoff(Flaky(), max_retries=2)
        with pytest.raises(ValueError, match="max_retries must be an int"):
            await retry_with_backoff(Flaky(), max_retries=2.0)  # type: ignore[arg-type]

    async def test_seed_rejects_negative_retries(self) -> None:
        with pytest.raises(ValueError, match="max_retries must be an int >= 0"):
            await retry_with_backoff(Flaky(), max_retries=-1)


class TestValidation:
    """Bad options fail at construction, naming the parameter."""

    @pytest.mark.parametrize("attempts", [0, -1, 1.5, True])
    def test_attempts(self, attempts: Any) -> None:
        with pytest.raises(ValueError, match="attempts must be an int >= 1"):
            Retry(attempts=attempts)

    @pytest.mark.parametrize("deadline", [0, -1.0, float("nan"), float("inf")])
    def test_deadline(self, deadline: float) -> None:
        with pytest.raises(
            ValueError, match="deadline must be None or a finite number of seconds > 0"
        ):
            Retry(deadline=deadline)

    def test_max_delay(self) -> None:
        with pytest.raises(ValueError, match="max_delay must be a finite number of seconds >= 0"):
            Retry(max_delay=-1)

    def test_on_must_be_exceptions_or_predicate(self) -> None:
        with pytest.raises(TypeError, match="on must be"):
            Retry(on="ConnectionError")  # type: ignore[arg-type]

    def test_on_empty_tuple(self) -> None:
        with pytest.raises(ValueError, match="on must name at least one exception type"):
            Retry(on=())

    def test_backoff_must_be_a_policy(self) -> None:
        with pytest.raises(TypeError, match="backoff must be a stoic.backoff policy"):
            Retry(backoff=1.0)  # type: ignore[arg-type]

    def test_repr_shows_options(self) -> None:
        policy = Retry(attempts=5, on=ConnectionError, deadline=3.0, name="db")
        assert repr(policy) == (
            "Retry(attempts=5, on=<class 'ConnectionError'>, backoff=Exponential(initial=0.2, "
            "multiplier=2.0, max_delay=10.0, jitter='full'), deadline=3.0, name='db')"
        )


class TestFallbackInsideARetry:
    """A pipeline refuses a fallback inside a retry only when its exception types overlap."""

    def test_overlapping_tuples_of_types_are_refused(self) -> None:
        with pytest.raises(ValueError, match="answers the failures the retry is for"):
            Pipeline(
                Retry(on=(ConnectionError, TimeoutError)),
                Fallback(None, on=(KeyError, TimeoutError)),
            )

    def test_tuples_of_unrelated_types_are_fine(self) -> None:
        Pipeline(Retry(on=(ConnectionError, TimeoutError)), Fallback(None, on=(KeyError,)))

    @pytest.mark.parametrize("predicate_on", ["retry", "fallback"])
    def test_a_predicate_on_either_side_is_never_taken_for_an_overlap(
        self, predicate_on: str
    ) -> None:
        def anything(exc: BaseException) -> bool:
            return True

        Pipeline(
            Retry(on=anything if predicate_on == "retry" else Exception),
            Fallback(None, on=anything if predicate_on == "fallback" else Exception),
        )


def _unused(fn: Callable[[], Awaitable[None]]) -> None:  # keeps imports honest for mypy
    del fn


class TestTracebacks:
    """The re-raised exception is not chained to earlier attempts' errors."""

    async def test_given_up_exception_has_no_implicit_context(self) -> None:
        flaky = fails_forever()
        with pytest.raises(ConnectionError) as info:
            await Retry(attempts=3, backoff=constant(0)).call(flaky)
        assert info.value.__context__ is None

    async def test_decorated_given_up_exception_has_no_implicit_context(self) -> None:
        flaky = fails_forever()
        with pytest.raises(ConnectionError) as info:
            await Retry(attempts=2, backoff=constant(0))(flaky)()
        assert info.value.__context__ is None


class TestRetryAfterHint:
    """``retry_after_hint`` reads attributes and Retry-After headers."""

    def test_retry_after_attribute(self) -> None:
        from stoic._retry import retry_after_hint
        from stoic.exceptions import CircuitBreakerOpen

        assert retry_after_hint(CircuitBreakerOpen(retry_after=2.5)) == 2.5

    def test_response_header(self) -> None:
        from types import SimpleNamespace

        from stoic._retry import retry_after_hint

        exc = SimpleNamespace(response=SimpleNamespace(headers={"Retry-After": " 7 "}))
        assert retry_after_hint(exc) == 7.0

    def test_a_bytes_header_is_read_as_text(self) -> None:
        from types import SimpleNamespace

        assert retry_after_hint(SimpleNamespace(headers={"retry-after": b"3"})) == 3.0

    def test_http_date_and_missing_fall_back_to_backoff(self) -> None:
        from types import SimpleNamespace

        from stoic._retry import retry_after_hint

        dated = SimpleNamespace(headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
        assert retry_after_hint(dated) is None
        assert retry_after_hint(ValueError()) is None
        assert retry_after_hint(SimpleNamespace(retry_after=-1)) is None

    def test_headers_without_a_get_method_are_no_hint(self) -> None:
        from types import SimpleNamespace

        assert retry_after_hint(SimpleNamespace(headers=["Retry-After: 3"])) is None

    def test_empty_response_headers_fall_back_to_the_outcome_s_own(self) -> None:
        from types import SimpleNamespace

        exc = SimpleNamespace(response=SimpleNamespace(headers={}), headers={"Retry-After": "4"})
        assert retry_after_hint(exc) == 4.0


class TestAttemptCompleted:
    """Per-attempt timings for telemetry."""

    async def test_successful_attempt_is_reported_with_its_duration(self) -> None:
        events: list[Event] = []

        async def slow() -> int:
            await asyncio.sleep(0.25)
            return 1

        await Retry(listeners=[events.append]).call(slow)
        assert events == [AttemptCompleted(None, 1, 0.25, "success", None)]

    @sees_results
    async def test_rejected_results_are_reported(self) -> None:
        events: list[Event] = []
        results = iter([None, 2])

        async def poll() -> int | None:
            return next(results)

        policy = Retry(
            on_result=lambda r: r is None, backoff=constant(0), listeners=[events.append]
        )
        await policy.call(poll)
        outcomes = [e.outcome for e in events if isinstance(e, AttemptCompleted)]
        assert outcomes == ["rejected", "success"]

    async def test_a_later_attempt_that_is_not_retried_is_reported(self) -> None:
        events: list[Event] = []
        policy = Retry(on=ConnectionError, backoff=constant(0), listeners=[events.append])
        with pytest.raises(ValueError, match="fatal"):
            await policy.call(Flaky(ConnectionError(), ValueError("fatal")))
        outcomes = [(e.attempt, e.outcome) for e in events if isinstance(e, AttemptCompleted)]
        assert outcomes == [(1, "failure"), (2, "failure")]

    async def test_nothing_is_reported_without_listeners(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import sys

        import stoic._events as events_module

        retry_module = sys.modules["stoic._retry.policy"]

        emitted: list[Event] = []
        assert not events_module.global_listeners
        monkeypatch.setattr(retry_module, "emit", lambda listeners, event: emitted.append(event))
        assert await Retry().call(Flaky(value=3)) == 3
        assert await retry(Flaky(value=3))() == 3
        assert emitted == []

    async def test_global_listener_sees_attempts(self) -> None:
        from stoic._events import add_listener, remove_listener

        events: list[Event] = []
        add_listener(events.append)
        try:
            await retry(Flaky(value=1))()
        finally:
            remove_listener(events.append)
        assert [type(e).__name__ for e in events] == ["AttemptCompleted"]

    async def test_cancelled_attempt_is_not_reported(self) -> None:
        events: list[Event] = []

        async def hang() -> None:
            await asyncio.sleep(100)

        task = asyncio.create_task(Retry(listeners=[events.append]).call(hang))
        await asyncio.sleep(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert events == []


class TestGarbage:
    """A retried call leaves no reference cycle behind (exceptions hold frames)."""

    async def test_retried_calls_leave_no_cycles(self) -> None:
        import gc

        policy = Retry(backoff=constant(0))
        decorated = policy(Flaky())
        gc.collect()
        gc.disable()
        try:
            for _ in range(20):
                await policy.call(Flaky(ConnectionError(), value=1))
                decorated.__wrapped__.failures.append(ConnectionError())  # type: ignore[attr-defined]
                await decorated()
            assert gc.collect() == 0
        finally:
            gc.enable()


# -- the fast path: a constant backoff without hint, deadline or listener ----------------------

PATHS = ("fast", "general")
FORMS = ("call", "decorator")


def _policy(path: str, wait: float = 0.0, **options: Any) -> Retry:
    """The same policy with and without a ``delay_hint`` (one that always defers to the
    backoff, so it changes no decision, only the branch the loop takes)."""
    if path == "general":
        options["delay_hint"] = lambda outcome: None
    return Retry(backoff=constant(wait), **options)


async def _run(policy: Retry, form: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    if form == "call":
        return await policy.call(fn, *args)
    return await policy(fn)(*args)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("path", PATHS)
class TestEveryForm:
    """``call`` and the decorator (its inlined twin) behave the same, with and without a hint."""

    async def test_attempt_numbers_and_their_restoration(self, path: str, form: str) -> None:
        from stoic._context import attempt_var, call_context

        seen: list[int] = []
        spawned: list[asyncio.Task[int]] = []

        async def fn() -> str:
            seen.append(call_context().attempt)
            spawned.append(asyncio.create_task(_attempt_later()))
            if len(seen) < 3:
                raise ConnectionError
            return "ok"

        async def _attempt_later() -> int:
            await asyncio.sleep(5)
            return call_context().attempt

        token = attempt_var.set(7)  # as inside an outer retry's seventh attempt
        try:
            assert await _run(_policy(path), form, fn) == "ok"
            assert call_context().attempt == 7
        finally:
            attempt_var.reset(token)
        assert seen == [7, 2, 3]
        assert [await task for task in spawned] == [7, 2, 3]  # snapshots, per attempt

    async def test_attempt_number_is_restored_when_giving_up(self, path: str, form: str) -> None:
        from stoic._context import call_context

        with pytest.raises(ConnectionError):
            await _run(_policy(path, attempts=3), form, fails_forever())
        assert call_context().attempt == 1

    async def test_give_up_note_timing_and_identity(self, path: str, form: str) -> None:
        errors = [ConnectionError(str(i)) for i in range(3)]

        async def slow_failure() -> None:
            await asyncio.sleep(2.0)
            raise errors[int(elapsed() // 3)]  # attempts end at 2, 5 and 8 seconds

        with pytest.raises(ConnectionError) as info:
            await _run(_policy(path, wait=1.0, attempts=3), form, slow_failure)
        assert info.value is errors[2]
        assert info.value.__context__ is None
        assert info.value.__notes__ == [
            "stoic: gave up after 3 attempt(s), 6.000s after the first failure: no attempts left"
        ]

    async def test_max_delay_caps_the_constant_wait(self, path: str, form: str) -> None:
        flaky = Flaky(ConnectionError(), ConnectionError())
        await _run(_policy(path, wait=5.0, max_delay=1.5), form, flaky)
        assert flaky.times == [0.0, 1.5, 3.0]

    async def test_arguments_reach_every_attempt(self, path: str, form: str) -> None:
        seen: list[tuple[Any, ...]] = []

        async def fn(*args: Any, **kwargs: Any) -> int:
            seen.append((args, kwargs))
            if len(seen) < 2:
                raise ConnectionError
            return 1

        policy = _policy(path)
        assert await (policy.call(fn, 1, b=2) if form == "call" else policy(fn)(1, b=2)) == 1
        assert await (policy.call(fn, 3) if form == "call" else policy(fn)(3)) == 1
        assert seen == [((1,), {"b": 2}), ((1,), {"b": 2}), ((3,), {})]

    async def test_exception_outside_on_at_a_later_attempt(self, path: str, form: str) -> None:
        flaky = Flaky(ConnectionError(), ValueError("bug"))
        with pytest.raises(ValueError) as info:
            await _run(_policy(path, on=ConnectionError), form, flaky)
        assert info.value.__notes__ == ["stoic: not retried: attempt 2 raised it"]
        assert len(flaky.times) == 2

    async def test_cancellation_raised_by_an_attempt_is_never_retried(
        self, path: str, form: str
    ) -> None:
        flaky = Flaky(ConnectionError(), asyncio.CancelledError(), value=1)
        with pytest.raises(asyncio.CancelledError) as info:
            await _run(_policy(path, on=BaseException, attempts=5), form, flaky)
        assert len(flaky.times) == 2
        assert not getattr(info.value, "__notes__", [])  # passed through untouched

    async def test_cancelled_during_a_zero_wait(self, path: str, form: str) -> None:
        from stoic._context import call_context

        flaky = fails_forever()
        seen: list[int] = []

        async def main() -> None:
            try:
                await _run(_policy(path, attempts=1000), form, flaky)
            finally:
                seen.append(call_context().attempt)

        task = asyncio.create_task(main())
        for _ in range(3):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(flaky.times) == 3  # one attempt per turn of the loop, none after cancel
        assert seen == [1]  # the attempt number was restored on the way out

    async def test_a_zero_wait_yields_to_the_loop_once(self, path: str, form: str) -> None:
        order: list[str] = []

        async def fn() -> None:
            order.append("attempt")
            if order.count("attempt") == 1:
                raise ConnectionError

        async def other() -> None:
            order.append("other")

        task = asyncio.create_task(other())
        await _run(_policy(path), form, fn)
        await task
        assert order == ["attempt", "other", "attempt"]

    @sees_results
    async def test_rejected_results(self, path: str, form: str) -> None:
        results = iter([None, None, 5])

        async def poll() -> int | None:
            return next(results)

        policy = _policy(path, on_result=lambda r: r is None)
        assert await _run(policy, form, poll) == 5
        with pytest.raises(ResultRejected) as info:
            await _run(policy, form, Flaky(value=None))
        assert (info.value.result, info.value.attempts) == (None, 3)
        assert info.value.__notes__ == ["stoic: gave up: no attempts left"]

    async def test_testing_mode(self, path: str, form: str) -> None:
        flaky = Flaky(ConnectionError(), ConnectionError())
        with set_testing(True):
            await _run(_policy(path, wait=30.0), form, flaky)
        assert flaky.times == [0.0, 0.0, 0.0]
        flaky = fails_forever()
        with set_testing(True, attempts=2), pytest.raises(ConnectionError):
            await _run(_policy(path, attempts=10), form, flaky)
        assert len(flaky.times) == 2

    async def test_testing_mode_switched_on_during_the_call(self, path: str, form: str) -> None:
        flaky = fails_forever()

        async def fn() -> None:
            if len(flaky.times) == 1:
                set_testing(True, attempts=3)  # read before the next retry
            await flaky()

        with set_testing(False), pytest.raises(ConnectionError):
            await _run(_policy(path, wait=10.0, attempts=10), form, fn)
        assert flaky.times == [0.0, 10.0, 10.0]

    async def test_a_listener_added_during_the_call_sees_the_rest(
        self, path: str, form: str
    ) -> None:
        from stoic._events import add_listener, remove_listener

        events: list[Event] = []
        first, second, third = (ConnectionError(str(i)) for i in range(3))

        async def add_soon() -> None:
            await asyncio.sleep(0.5)  # during the first wait
            add_listener(events.append)

        adding = asyncio.create_task(add_soon())
        try:
            with pytest.raises(ConnectionError):
                await _run(
                    _policy(path, wait=1.0, attempts=3, name="api"),
                    form,
                    Flaky(first, second, third),
                )
        finally:
            remove_listener(events.append)
            await adding
        assert events == [
            AttemptCompleted("api", attempt=2, duration=0.0, outcome="failure", exception=second),
            RetryScheduled("api", attempt=2, delay=1.0, elapsed=1.0, exception=second, result=None),
            AttemptCompleted("api", attempt=3, duration=0.0, outcome="failure", exception=third),
            RetryGaveUp(
                "api", attempt=3, elapsed=2.0, exception=third, result=None, reason="attempts"
            ),
        ]

    @pytest.mark.parametrize("wait", [0.0, 5.0])
    async def test_a_retried_failure_is_freed_before_the_wait(
        self, path: str, form: str, wait: float
    ) -> None:
        import gc
        import weakref

        class Tracked(ConnectionError):
            """Weakly referable, unlike the built-in exception."""

        failures: list[weakref.ref[BaseException]] = []
        alive_in_attempt_2: list[bool] = []

        def tracked() -> Tracked:
            error = Tracked()
            failures.append(weakref.ref(error))
            return error

        async def work() -> int:
            if not failures:
                raise tracked()  # no local of ``work`` holds it (that would be a cycle)
            alive_in_attempt_2.append(failures[0]() is not None)
            return 2

        gc.disable()  # freed by reference counting, not by the collector
        try:
            assert await _run(_policy(path, wait), form, work) == 2
        finally:
            gc.enable()
        assert alive_in_attempt_2 == [False]

    async def test_concurrent_calls_keep_their_own_attempts(self, path: str, form: str) -> None:
        policy = _policy(path, wait=1.0, attempts=4)
        counts = [0] * 50

        async def work(i: int) -> int:
            counts[i] += 1
            await asyncio.sleep(0.1 * (i % 3))
            if counts[i] < 1 + i % 4:
                raise ConnectionError
            return i

        decorated = policy(work)
        calls = (policy.call(work, i) if form == "call" else decorated(i) for i in range(50))
        assert await asyncio.gather(*calls) == list(range(50))
        assert counts == [1 + i % 4 for i in range(50)]


class TestListeningPerCall:
    """Whether a call builds events is decided per call, from who can receive them."""

    async def test_an_enclosing_deadline_is_honoured_with_a_constant_wait(self) -> None:
        async def slow_failure() -> None:
            await asyncio.sleep(1.5)
            raise ConnectionError

        with pytest.raises(ConnectionError) as info:
            async with timeout(2.0):
                await Retry(attempts=5, backoff=constant(0.5)).call(slow_failure)
        assert elapsed() == 1.5
        assert "the deadline allows no further attempt" in info.value.__notes__[0]

    @pytest.mark.parametrize("form", FORMS)
    async def test_a_global_listener_sees_every_attempt_of_every_policy(self, form: str) -> None:
        from stoic._events import add_listener, remove_listener

        events: list[Event] = []
        add_listener(events.append)
        try:
            await _run(Retry(backoff=constant(0)), form, Flaky(ConnectionError(), value=1))
        finally:
            remove_listener(events.append)
        assert [type(e).__name__ for e in events] == [
            "AttemptCompleted",
            "RetryScheduled",
            "AttemptCompleted",
        ]

    @pytest.mark.parametrize("form", FORMS)
    async def test_a_listening_pipeline_elsewhere_builds_no_event_here(
        self, form: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import sys

        from stoic import Pipeline

        heard: list[Event] = []
        listening = Pipeline(Retry(), listeners=[heard.append])
        built: list[str] = []
        labels = {"new_attempt_completed": "AttemptCompleted"}
        for name in ("new_attempt_completed", "RetryScheduled", "RetryGaveUp"):
            cls = getattr(sys.modules["stoic._retry.policy"], name)
            label = labels.get(name, name)
            monkeypatch.setattr(
                sys.modules["stoic._retry.policy"],
                name,
                lambda *args, _cls=cls, _name=label, **kwargs: (
                    built.append(_name) or _cls(*args, **kwargs)
                ),
            )
        with pytest.raises(ConnectionError):
            await _run(Retry(backoff=constant(0)), form, fails_forever())
        assert built == []  # nobody could receive them: none was made
        await listening.call(Flaky(ConnectionError(), value=1))
        assert built == ["AttemptCompleted", "RetryScheduled", "AttemptCompleted"]
        assert len(heard) == 4  # the three, and the pipeline's own PipelineCompleted


class TestImmutable:
    """Options are read-only once built; ``with_`` and copies make new policies."""

    @pytest.mark.parametrize(
        ("option", "value"),
        [("backoff", constant(3.0)), ("delay_hint", retry_after_hint), ("attempts", 9)],
    )
    def test_setting_an_option_raises(self, option: str, value: Any) -> None:
        policy = Retry(attempts=2, backoff=constant(0.5))
        with pytest.raises(AttributeError, match=rf"immutable once built; use \.with_\({option}="):
            setattr(policy, option, value)
        assert policy.attempts == 2
        assert policy.backoff == constant(0.5)

    def test_deleting_an_option_raises(self) -> None:
        policy = Retry(attempts=2)
        with pytest.raises(AttributeError, match="immutable"):
            del policy.attempts
        assert policy.attempts == 2

    def test_a_subclass_may_add_its_own_attributes(self) -> None:
        class Tagged(Retry):
            __slots__ = ("tag",)

            def __init__(self, tag: str) -> None:
                super().__init__(attempts=2)
                self.tag = tag

        tagged = Tagged("x")
        tagged.tag = "y"
        assert tagged.tag == "y"
        with pytest.raises(AttributeError, match="immutable"):
            tagged.attempts = 5

    def test_with_changes_some_options_and_keeps_the_rest(self) -> None:
        policy = Retry(attempts=2, backoff=constant(0.5), name="r", on=ConnectionError)
        changed = policy.with_(attempts=5)
        assert (changed.attempts, changed.backoff, changed.name, changed.on) == (
            5,
            constant(0.5),
            "r",
            ConnectionError,
        )
        assert policy.attempts == 2
        with pytest.raises(ValueError, match="attempts must be"):
            policy.with_(attempts=0)

    def test_copies_and_pickles_are_built_policies_and_stay_read_only(self) -> None:
        import copy
        import pickle

        policy = Retry(attempts=2, backoff=constant(0.5), name="r", on=ConnectionError)
        for duplicate in (
            copy.copy(policy),
            copy.deepcopy(policy),
            pickle.loads(pickle.dumps(policy)),
        ):
            # ``random`` is copied with its generator, so it is equal in kind, not identity.
            options = {**duplicate.options(), "random": None}
            assert options == {**policy.options(), "random": None}
            with pytest.raises(AttributeError, match="immutable"):
                duplicate.attempts = 3

    def test_a_policy_with_a_lambda_does_not_pickle(self) -> None:
        import pickle

        with pytest.raises((pickle.PicklingError, AttributeError)):
            pickle.dumps(Retry(on=lambda exc: True))


ORIGINS = [0.0, 1.0, 1000.3, 86_400.7, 1_000_003.7231]


class TestDeadlineAtAnyClockOrigin:
    """A wait that ends at the deadline, to within the clock's resolution, is never started."""

    @pytest.mark.parametrize("origin", ORIGINS)
    def test_a_wait_ending_at_the_enclosing_timeout_gives_up_with_the_real_error(
        self, origin: float
    ) -> None:
        from stoic.exceptions import TimeoutExceeded
        from stoic.testing import VirtualClock, run

        async def scenario() -> BaseException:
            policy = Retry(attempts=100, backoff=constant(0.1))
            try:
                async with timeout(1.0):
                    await policy.call(fails_forever())
            except BaseException as exc:
                return exc
            raise AssertionError("no error")  # pragma: no cover

        error = run(scenario(), clock=VirtualClock(origin))
        assert type(error) is ConnectionError, error
        assert not isinstance(error, TimeoutExceeded)
        assert "the deadline allows no further attempt" in error.__notes__[0]

    @pytest.mark.parametrize("origin", ORIGINS)
    def test_a_deadline_allows_the_same_attempts_whatever_the_origin(self, origin: float) -> None:
        from stoic.testing import VirtualClock, run

        async def scenario() -> int:
            flaky = fails_forever()
            with pytest.raises(ConnectionError):
                await Retry(attempts=100, backoff=constant(0.1), deadline=1.0).call(flaky)
            return len(flaky.times)

        # Attempts at 0.0, 0.1, ..., 0.9: the 11th would start at the deadline itself.
        assert run(scenario(), clock=VirtualClock(origin)) == 10


class TestZeroHint:
    """A hint of zero never turns into a loop that burns every attempt in no time."""

    async def test_a_hint_of_zero_waits_the_backoff_instead(self) -> None:
        flaky = Flaky(ConnectionError(), ConnectionError())
        policy = Retry(attempts=3, backoff=constant(0.5), delay_hint=lambda _: 0)
        assert await policy.call(flaky) == "ok"
        assert flaky.times == [0.0, 0.5, 1.0]


class TestAttemptNumberStaysInItsLoop:
    """Leaving an attempt loop by any path leaves ``call_context().attempt`` as it was."""

    async def test_break_out_of_the_loop(self) -> None:
        from stoic._context import call_context

        async for attempt in Retry(attempts=5, backoff=constant(0)):
            if attempt.number == 3:
                break  # between attempts: the loop never learns it ended
            with attempt:
                raise ConnectionError
        assert call_context().attempt == 1

    async def test_a_timeout_during_the_wait(self) -> None:
        from stoic._context import call_context

        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.5):
                async for attempt in Retry(attempts=5, backoff=constant(1.0)):
                    with attempt:
                        raise ConnectionError
        assert call_context().attempt == 1

    async def test_cancellation_during_the_wait(self) -> None:
        from stoic._context import call_context

        async def loop() -> None:
            async for attempt in Retry(attempts=5, backoff=constant(1.0)):
                with attempt:
                    raise ConnectionError

        seen: list[int] = []

        async def observed() -> None:
            try:
                await loop()
            except asyncio.CancelledError:
                seen.append(call_context().attempt)
                raise

        task = asyncio.create_task(observed())
        await asyncio.sleep(2.5)  # inside the third attempt's wait
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert seen == [1]

    async def test_the_next_retry_starts_at_attempt_one(self) -> None:
        from stoic._context import call_context

        async for attempt in Retry(attempts=5, backoff=constant(0)):
            if attempt.number == 3:
                break
            with attempt:
                raise ConnectionError
        numbers: list[int] = []

        async def record() -> str:
            numbers.append(call_context().attempt)
            if len(numbers) < 2:
                raise ConnectionError
            return "ok"

        assert await Retry(attempts=3, backoff=constant(0)).call(record) == "ok"
        assert numbers == [1, 2]

    async def test_inside_the_block_the_attempt_number_is_visible(self) -> None:
        from stoic._context import call_context

        seen: list[int] = []
        async for attempt in Retry(attempts=3, backoff=constant(0)):
            with attempt:
                seen.append(call_context().attempt)
                if attempt.number < 3:
                    raise ConnectionError
        assert seen == [1, 2, 3]


class TestNotesOnASharedException:
    """One exception object raised by many calls carries one note of each kind, never more."""

    @pytest.mark.parametrize("path", ["fast", "general"])
    async def test_ten_thousand_give_ups_leave_one_note(self, path: str) -> None:
        from unittest.mock import AsyncMock

        error = ConnectionError("shared")
        failing = AsyncMock(side_effect=error)
        options: dict[str, Any] = {"attempts": 2, "backoff": constant(0)}
        if path == "general":
            options["delay_hint"] = lambda _: None
        policy = Retry(**options)
        for _ in range(10_000):
            with pytest.raises(ConnectionError):
                await policy.call(failing)
        assert len(error.__notes__) == 1
        assert error.__notes__[0].startswith("stoic: gave up after 2 attempt(s)")

    async def test_the_not_retried_note_is_not_repeated(self) -> None:
        error = KeyError("shared")
        calls = 0

        async def second_fails_badly() -> None:
            nonlocal calls
            calls += 1
            if calls % 2:
                raise ConnectionError
            raise error

        for _ in range(100):
            with pytest.raises(KeyError):
                await Retry(attempts=3, on=ConnectionError, backoff=constant(0)).call(
                    second_fails_badly
                )
        assert error.__notes__ == ["stoic: not retried: attempt 2 raised it"]

    async def test_the_callers_own_notes_are_kept(self) -> None:
        error = ConnectionError("shared")
        error.add_note("from the caller")

        async def fail() -> None:
            raise error

        for _ in range(3):
            with pytest.raises(ConnectionError):
                await Retry(attempts=2, backoff=constant(0)).call(fail)
        assert error.__notes__[0] == "from the caller"
        assert len(error.__notes__) == 2


@pytest.mark.forms("call")  # about resume itself, which no form goes through
class TestResume:
    """``Retry.resume``: the rest of a call whose first attempt another driver ran."""

    async def test_a_retried_exception_gets_the_remaining_attempts(self) -> None:
        flaky = Flaky(ConnectionError(), value=7)
        policy = Retry(attempts=3, on=ConnectionError, backoff=constant(0))
        rest = policy.resume(ConnectionError("first"), flaky, (), {})
        assert rest is not None
        assert await rest == 7
        assert len(flaky.times) == 2  # the second and the third attempt

    def test_an_exception_it_does_not_retry_is_left_to_the_caller(self) -> None:
        assert Retry(on=ConnectionError).resume(ValueError(), Flaky(), (), {}) is None

    @pytest.mark.parametrize(
        "options",
        [
            {"deadline": 30.0},
            {"on_result": lambda result: result is None},
            {"budget": RetryBudget()},
        ],
    )
    def test_a_policy_that_needs_the_whole_call_refuses(self, options: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match="without deadline, on_result or budget"):
            Retry(**options).resume(ConnectionError(), Flaky(), (), {})
