"""Bad input and misuse fail at once, with an error naming the parameter, in every strategy."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from typing import Any
from unittest.mock import AsyncMock

import pytest

from stoic import (
    Bulkhead,
    CircuitBreaker,
    Fallback,
    Pipeline,
    RateLimiter,
    Retry,
    async_retry,
    retry_with_backoff,
    timeout,
    with_fallback,
    with_fallback_chain,
)
from stoic._classify import NotAwaitable
from stoic.backoff import constant, exponential, linear
from stoic.testing import set_testing


def strategies() -> list[Any]:
    return [
        Retry(attempts=3, backoff=constant(0)),
        CircuitBreaker(failure_threshold=1),
        Bulkhead(2),
        RateLimiter(100),
        timeout(5),
        Fallback("fallback"),
        Pipeline(Retry(attempts=3, backoff=constant(0)), Bulkhead(2)),
    ]


STRATEGIES = pytest.mark.parametrize(
    "make",
    [lambda i=i: strategies()[i] for i in range(7)],
    ids=["retry", "breaker", "bulkhead", "rate_limiter", "timeout", "fallback", "pipeline"],
)


class SyncService:
    """A blocking client: counts how often it ran."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return "blocking"


def sync_function() -> str:
    return "blocking"


async def numbers() -> AsyncIterator[int]:
    yield 1


class TestDecoratingWhatCannotBeAwaited:
    """``@strategy`` on a sync function or an async generator function raises at once."""

    @STRATEGIES
    def test_a_sync_function_is_refused_at_decoration(self, make: Callable[[], Any]) -> None:
        with pytest.raises(TypeError, match=r"sync function sync_function\(\).*to_thread"):
            make()(sync_function)

    @STRATEGIES
    def test_an_async_generator_function_is_refused_at_decoration(
        self, make: Callable[[], Any]
    ) -> None:
        with pytest.raises(TypeError, match="async generator function numbers"):
            make()(numbers)

    @STRATEGIES
    def test_a_class_is_refused_at_decoration(self, make: Callable[[], Any]) -> None:
        with pytest.raises(TypeError, match="got the class SyncService"):
            make()(SyncService)

    def test_async_callables_of_every_shape_are_accepted(self) -> None:
        class Client:
            async def get(self) -> int:
                return 1

            async def __call__(self) -> int:
                return 2

        policy = Retry()
        for fn in (Client().get, Client(), AsyncMock(return_value=3), Client.get):
            policy(fn)


class TestCallingWhatCannotBeAwaited:
    """``.call(fn)`` where ``fn`` returns no awaitable: stoic's ``TypeError``, once, uncounted."""

    @STRATEGIES
    async def test_a_sync_function_runs_once_and_raises_a_type_error_naming_to_thread(
        self, make: Callable[[], Any]
    ) -> None:
        service = SyncService()
        with pytest.raises(TypeError, match=r"did not return an awaitable.*to_thread") as caught:
            await make().call(service)
        assert isinstance(caught.value, NotAwaitable)
        assert service.calls == 1  # never retried
        assert isinstance(caught.value.__cause__, TypeError)  # Python's own message, chained

    @STRATEGIES
    async def test_an_async_generator_function_runs_nothing(self, make: Callable[[], Any]) -> None:
        started = False

        async def stream() -> AsyncIterator[int]:
            nonlocal started
            started = True
            yield 1

        with pytest.raises(NotAwaitable, match="stream"):
            await make().call(stream)
        assert not started

    async def test_the_breaker_does_not_count_it(self) -> None:
        breaker = CircuitBreaker(failure_threshold=1)
        with pytest.raises(NotAwaitable):
            await breaker.call(SyncService())
        stats = breaker.statistics()
        assert (stats.failed_calls, stats.consecutive_failures) == (0, 0)
        assert breaker.state.value == "closed"

    async def test_a_fallback_never_answers_for_it(self) -> None:
        with pytest.raises(NotAwaitable):
            await Fallback("fallback").call(SyncService())
        with pytest.raises(NotAwaitable):
            await with_fallback(SyncService(), SyncService())  # type: ignore[arg-type]
        with pytest.raises(NotAwaitable):
            await with_fallback_chain(SyncService(), SyncService())  # type: ignore[arg-type]

    async def test_an_outer_retry_does_not_retry_what_an_inner_strategy_raised(self) -> None:
        service = SyncService()
        pipeline = Pipeline(Retry(attempts=3, backoff=constant(0)), Bulkhead(2), RateLimiter(100))
        with pytest.raises(NotAwaitable):
            await pipeline.call(service)
        assert service.calls == 1

    async def test_the_seed_api_reports_it_without_retrying(self) -> None:
        service = SyncService()
        with pytest.raises(NotAwaitable):
            await retry_with_backoff(service)  # type: ignore[arg-type]
        assert service.calls == 1

    async def test_a_lambda_returning_a_coroutine_still_works(self) -> None:
        async def fetch() -> str:
            return "ok"

        for strategy in strategies():
            assert await strategy.call(lambda: fetch()) in ("ok", "fallback")

    async def test_an_async_functions_own_type_error_is_left_alone(self) -> None:
        calls = 0

        async def wrong(x: int) -> int:
            nonlocal calls
            calls += 1
            raise TypeError("bad x")

        with set_testing(True), pytest.raises(TypeError, match="bad x") as caught:
            await Retry(attempts=3).call(wrong, 1)
        assert not isinstance(caught.value, NotAwaitable)
        assert calls == 3  # the caller's own TypeError: retried, as on=Exception says

    async def test_wrong_arguments_to_an_async_function_are_the_callers_error(self) -> None:
        async def one(x: int) -> int:
            return x

        with pytest.raises(TypeError, match="unexpected keyword") as caught:
            await Bulkhead(1).call(one, y=1)  # type: ignore[call-arg]
        assert not isinstance(caught.value, NotAwaitable)


class TestWrongArgumentsAreTheCallersError:
    """A call with the wrong arguments raises Python's own ``TypeError``, not stoic's."""

    async def test_a_lambda_given_an_argument_it_does_not_take(self) -> None:
        with pytest.raises(TypeError, match="takes 0 positional arguments") as info:
            await Retry(attempts=1).call(lambda: asyncio.sleep(0), 5)
        assert type(info.value) is TypeError


class TestNumbers:
    """Seconds and counts: bool is no number, and ints beyond float range are out of range."""

    @pytest.mark.parametrize(
        ("build", "parameter"),
        [
            (lambda v: timeout(v), "seconds"),
            (lambda v: Retry(deadline=v), "deadline"),
            (lambda v: Retry(max_delay=v), "max_delay"),
            (lambda v: CircuitBreaker(timeout=v), "timeout"),
            (lambda v: CircuitBreaker(slow_call_duration=v), "slow_call_duration"),
            (lambda v: CircuitBreaker(trip="rate", window_duration=v), "window_duration"),
            (lambda v: Bulkhead(1, 1, timeout=v), "timeout"),
            (lambda v: RateLimiter(1, max_wait=v), "max_wait"),
            (lambda v: RateLimiter(1, per=v), "per"),
            (lambda v: constant(v), "delay"),
            (lambda v: exponential(v), "initial"),
            (lambda v: exponential(1.0, multiplier=v), "multiplier"),
            (lambda v: linear(1.0, v), "step"),
            (lambda v: async_retry(base_delay=v), "base_delay"),
        ],
    )
    @pytest.mark.parametrize("value", [True, False, 10**400, math.nan, "1"])
    def test_bad_seconds_are_refused_at_construction(
        self, build: Callable[[Any], Any], parameter: str, value: Any
    ) -> None:
        with pytest.raises(ValueError, match=rf"^{parameter} must be ") as caught:
            build(value)
        assert str(caught.value).endswith(f"got {value!r}")

    @pytest.mark.parametrize(("duration", "buckets"), [(5e-324, 10), (1e-300, 10**6), (1e-6, 10)])
    def test_a_time_window_finer_than_the_clock_is_refused(
        self, duration: float, buckets: int
    ) -> None:
        with pytest.raises(ValueError, match="^window_duration must be"):
            CircuitBreaker(trip="rate", window_duration=duration, window_buckets=buckets)

    async def test_a_hint_beyond_float_range_is_ignored_for_the_backoff(self) -> None:
        attempts = 0

        async def flaky() -> str:
            nonlocal attempts
            attempts += 1
            if attempts < 2:
                raise ConnectionError
            return "ok"

        policy = Retry(attempts=2, backoff=constant(0.5), delay_hint=lambda _: 10**400)
        start = asyncio.get_running_loop().time()
        assert await policy.call(flaky) == "ok"
        assert asyncio.get_running_loop().time() - start == pytest.approx(0.5)

    def test_retry_after_hint_of_a_huge_number_is_no_hint(self) -> None:
        from stoic._retry import retry_after_hint

        class Huge(Exception):
            retry_after = 10**400

        assert retry_after_hint(Huge()) is None


class TestMisuseAtConstruction:
    """A class for an instance, a number for a function: ``TypeError`` naming the parameter."""

    def test_a_strategy_class_in_a_pipeline_is_refused(self) -> None:
        with pytest.raises(TypeError, match=r"strategy 2 .* got the class Retry: pass an instance"):
            Pipeline(timeout(5), Retry)  # type: ignore[arg-type]

    def test_random_must_be_a_function(self) -> None:
        with pytest.raises(TypeError, match="^random must be a function"):
            Retry(random=5)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "build",
        [
            lambda v: Retry(listeners=v),
            lambda v: CircuitBreaker(listeners=v),
            lambda v: Bulkhead(1, listeners=v),
            lambda v: RateLimiter(1, listeners=v),
            lambda v: timeout(1, listeners=v),
            lambda v: Fallback(1, listeners=v),
            lambda v: Pipeline(listeners=v),
        ],
    )
    def test_listeners_that_are_not_an_iterable_name_listeners(
        self, build: Callable[[Any], Any]
    ) -> None:
        with pytest.raises(TypeError, match="^listeners must be an iterable of callables"):
            build(5)
        with pytest.raises(TypeError, match=r"pass a list, listeners=\[print\]"):
            build(print)

    def test_a_list_of_exceptions_suggests_a_tuple(self) -> None:
        with pytest.raises(TypeError, match=r"pass a tuple, on=\(ConnectionError, TimeoutError\)"):
            Retry(on=[ConnectionError, TimeoutError])  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "build",
        [
            lambda: Retry(name=3),
            lambda: CircuitBreaker(name=3),
            lambda: Bulkhead(1, name=3),
            lambda: RateLimiter(1, name=3),
            lambda: timeout(1, name=3),
            lambda: Fallback(1, name=3),
            lambda: Pipeline(name=3),
        ],
    )
    def test_a_name_must_be_a_str_in_every_strategy(self, build: Callable[[], Any]) -> None:
        with pytest.raises(TypeError, match="^name must be a str or None, got 3"):
            build()


@pytest.mark.parametrize(
    ("value", "options", "accepted"),
    [
        (0.0, {"minimum": 0.0}, True),
        (0.0, {"minimum": 0.0, "open_below": True}, False),
        (-0.0, {"minimum": 0.0}, True),
        (1.0, {"maximum": 1.0}, True),
        (1.0000001, {"maximum": 1.0}, False),
        (float("inf"), {}, False),
        (float("-inf"), {}, False),
        (float("nan"), {}, False),
        (5e-324, {"minimum": 0.0, "open_below": True}, True),
    ],
)
def test_a_float_at_the_edges_is_judged_as_any_number(
    value: float, options: dict[str, Any], accepted: bool
) -> None:
    from stoic import _validate

    if accepted:
        assert _validate.number(value, "x", **options) is value
    else:
        with pytest.raises(ValueError, match="x must be a finite number"):
            _validate.number(value, "x", **options)
