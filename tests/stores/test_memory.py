"""``MemoryStore``: strategies with the same name and store share state; the store's clock
is the one their times are compared against."""

from __future__ import annotations

import asyncio

import pytest

from stoic import CircuitBreaker, CircuitBreakerOpen, CircuitState, RateLimited, RateLimiter
from stoic.stores import BreakerStore, RateStore
from stoic.stores.memory import MemoryStore


async def fail() -> None:
    raise ConnectionError


async def ok() -> int:
    return 1


class TestSharedBreakers:
    """Breakers of one name in one store are one breaker."""

    async def test_a_breaker_built_later_knows_what_an_earlier_one_learned(self) -> None:
        store = MemoryStore()
        first = CircuitBreaker(name="api", failure_threshold=2, store=store)
        for _ in range(2):
            with pytest.raises(ConnectionError):
                await first.call(fail)
        second = CircuitBreaker(name="api", failure_threshold=2, store=store)
        assert second.state is CircuitState.OPEN
        with pytest.raises(CircuitBreakerOpen):
            await second.call(ok)
        assert first.statistics() == second.statistics()

    async def test_other_names_and_other_stores_keep_their_own(self) -> None:
        store = MemoryStore()
        first = CircuitBreaker(name="api", failure_threshold=1, store=store)
        with pytest.raises(ConnectionError):
            await first.call(fail)
        assert CircuitBreaker(name="db", failure_threshold=1, store=store).state is (
            CircuitState.CLOSED
        )
        assert CircuitBreaker(name="api", failure_threshold=1, store=MemoryStore()).state is (
            CircuitState.CLOSED
        )
        assert CircuitBreaker(name="api", failure_threshold=1).state is CircuitState.CLOSED

    async def test_unnamed_breakers_never_share(self) -> None:
        store = MemoryStore()
        first = CircuitBreaker(failure_threshold=1, store=store)
        with pytest.raises(ConnectionError):
            await first.call(fail)
        assert CircuitBreaker(failure_threshold=1, store=store).state is CircuitState.CLOSED

    def test_the_same_name_with_other_options_is_refused(self) -> None:
        store = MemoryStore()
        CircuitBreaker(name="api", failure_threshold=2, store=store)
        with pytest.raises(ValueError, match="circuit breaker named 'api' with other options"):
            CircuitBreaker(name="api", failure_threshold=3, store=store)

    async def test_listeners_may_differ_and_the_first_breakers_hear_shared_events(self) -> None:
        store = MemoryStore()
        heard: list[str] = []
        first = CircuitBreaker(
            name="api", failure_threshold=1, store=store, listeners=[lambda e: heard.append("a")]
        )
        second = CircuitBreaker(
            name="api", failure_threshold=1, store=store, listeners=[lambda e: heard.append("b")]
        )
        with pytest.raises(ConnectionError):
            await second.call(fail)
        assert first.state is CircuitState.OPEN
        assert heard == ["a"]

    def test_a_store_of_the_wrong_kind_is_refused_at_construction(self) -> None:
        with pytest.raises(TypeError, match="store must be a stoic.stores.BreakerStore"):
            CircuitBreaker(store=object())  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="store must be a stoic.stores.RateStore"):
            RateLimiter(10, store="redis://")  # type: ignore[arg-type]

    def test_memory_store_is_both_kinds_of_store(self) -> None:
        assert isinstance(MemoryStore(), BreakerStore)
        assert isinstance(MemoryStore(), RateStore)


class TestSharedRateLimiters:
    """Limiters of one name in one store draw on one quota."""

    async def test_two_limiters_of_one_name_share_the_burst(self) -> None:
        store = MemoryStore()
        first = RateLimiter(2, name="quota", store=store)
        second = RateLimiter(2, name="quota", store=store)
        assert await first.call(ok) == 1
        assert await second.call(ok) == 1
        with pytest.raises(RateLimited):
            await first.call(ok)
        assert second.statistics().available == 0
        await asyncio.sleep(0.5)
        assert await second.call(ok) == 1

    def test_the_same_name_with_another_rate_is_refused(self) -> None:
        store = MemoryStore()
        RateLimiter(2, name="quota", store=store)
        with pytest.raises(ValueError, match="rate limiter named 'quota' with other options"):
            RateLimiter(3, name="quota", store=store)


class _SteppedClock:
    """A clock that moves only when told: the store's, not stoic's."""

    def __init__(self, start: float) -> None:
        self.seconds = start

    def now(self) -> float:
        return self.seconds

    def now_ns(self) -> int:
        return round(self.seconds * 1_000_000_000)


class TestTheStoresClock:
    """A store owns the clock its state is compared against."""

    async def test_a_break_ends_on_the_stores_clock(self) -> None:
        store = MemoryStore()
        clock = _SteppedClock(5_000.25)
        store.clock = clock
        breaker = CircuitBreaker(name="api", failure_threshold=1, break_duration=10, store=store)
        with pytest.raises(ConnectionError):
            await breaker.call(fail)
        await asyncio.sleep(60)  # stoic's (virtual) clock moves; the store's does not
        with pytest.raises(CircuitBreakerOpen) as info:
            await breaker.call(ok)
        assert info.value.retry_after == 10.0
        clock.seconds += 10
        assert await breaker.call(ok) == 1
        assert breaker.state is CircuitState.HALF_OPEN

    async def test_a_limiters_turns_come_on_the_stores_clock(self) -> None:
        store = MemoryStore()
        clock = _SteppedClock(77.5)
        store.clock = clock
        limiter = RateLimiter(1, per=2.0, store=store)
        assert await limiter.call(ok) == 1
        await asyncio.sleep(60)
        with pytest.raises(RateLimited) as info:
            await limiter.call(ok)
        assert info.value.retry_after == 2.0
        clock.seconds += 2
        assert await limiter.call(ok) == 1
