"""Pipelines: order semantics, context, listeners, validation, describe, decorator."""

from __future__ import annotations

import asyncio
import gc
import inspect
from typing import Any

import pytest

from stoic._bulkhead import Bulkhead
from stoic._circuit_breaker import CircuitBreaker, CircuitState
from stoic._context import call_context
from stoic._events import Event
from stoic._fallback import Fallback
from stoic._pipeline import Pipeline
from stoic._rate_limit import RateLimiter
from stoic._retry import Retry, RetryScheduled, retry_after_hint
from stoic._timeout import TimeoutExpired, remaining, timeout
from stoic.backoff import constant
from stoic.config import pipeline_from_config
from stoic.exceptions import CircuitBreakerOpen, RateLimited, TimeoutExceeded
from tests.timeline import clock_origin, elapsed  # noqa: F401  (autouse fixture)


class Slow:
    """Each call sleeps the next of ``delays`` then returns its attempt number."""

    def __init__(self, *delays: float) -> None:
        self.delays = list(delays)
        self.starts: list[float] = []

    async def __call__(self) -> int:
        self.starts.append(elapsed())
        await asyncio.sleep(self.delays.pop(0))
        return len(self.starts)


class TestComposition:
    """Outermost first; a retry re-runs everything inside it."""

    async def test_empty_pipeline_just_calls(self) -> None:
        async def add(a: int, b: int = 0) -> int:
            return a + b

        assert await Pipeline().call(add, 1, b=2) == 3

    @pytest.mark.parametrize("name", [None, "named"])
    async def test_call_runs_nothing_until_awaited(self, name: str | None) -> None:
        calls: list[int] = []
        bulkhead = Bulkhead(1)

        async def work() -> int:
            calls.append(1)
            return 1

        pipeline = Pipeline(Retry(), CircuitBreaker(), bulkhead, name=name)
        pending = pipeline.call(work)
        assert calls == []
        assert bulkhead.statistics().admitted == 0
        pending.close()
        assert await pipeline.call(work) == 1
        assert calls == [1]

    async def test_arguments_reach_the_function(self) -> None:
        async def echo(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
            return args, kwargs

        pipeline = Pipeline(timeout(5), Retry(), Bulkhead(2))
        assert await pipeline.call(echo, 1, 2, fn="x") == ((1, 2), {"fn": "x"})

    async def test_timeout_inside_retry_bounds_each_attempt(self) -> None:
        slow = Slow(5.0, 5.0, 0.5)
        pipeline = Pipeline(Retry(attempts=3, on=TimeoutError, backoff=constant(1.0)), timeout(2))
        assert await pipeline.call(slow) == 3
        assert slow.starts == [0.0, 3.0, 6.0]

    async def test_timeout_outside_retry_bounds_the_whole_call(self) -> None:
        slow = Slow(5.0, 5.0, 0.5)
        pipeline = Pipeline(
            timeout(4), Retry(attempts=3, on=TimeoutError, backoff=constant(1.0)), timeout(2)
        )
        with pytest.raises(TimeoutError):
            await pipeline.call(slow)
        # Attempt 1 timed out at 2 s; a 1 s wait and a new attempt still fit before 4 s.
        assert slow.starts == [0.0, 3.0]
        assert elapsed() == 4.0

    async def test_breaker_inside_retry_sees_every_attempt(self) -> None:
        breaker = CircuitBreaker(failure_threshold=3, timeout=30.0)
        calls = 0

        async def down() -> None:
            nonlocal calls
            calls += 1
            raise ConnectionError

        pipeline = Pipeline(Retry(attempts=5, on=ConnectionError, backoff=constant(0)), breaker)
        with pytest.raises(CircuitBreakerOpen):
            await pipeline.call(down)
        assert calls == 3
        assert breaker.state is CircuitState.OPEN

    async def test_fallback_outermost_answers_when_all_else_fails(self) -> None:
        async def down() -> str:
            raise ConnectionError

        pipeline = Pipeline(
            Fallback("cached"), Retry(attempts=2, backoff=constant(0)), CircuitBreaker()
        )
        assert await pipeline.call(down) == "cached"

    async def test_pipelines_nest(self) -> None:
        inner = Pipeline(Retry(attempts=2, on=TimeoutError, backoff=constant(0)), timeout(1))
        outer = Pipeline(timeout(10), inner)
        slow = Slow(3.0, 0.1)
        assert await outer.call(slow) == 2

    async def test_one_pipeline_serves_concurrent_calls(self) -> None:
        pipeline = Pipeline(Retry(attempts=3, backoff=constant(1.0)), Bulkhead(10, 1000))
        counts: dict[int, int] = {}

        async def work(i: int) -> int:
            counts[i] = counts.get(i, 0) + 1
            await asyncio.sleep(0.1)
            if counts[i] < 1 + i % 3:
                raise ConnectionError
            return i

        results = await asyncio.gather(*(pipeline.call(work, i) for i in range(200)))
        assert results == list(range(200))
        assert all(counts[i] == 1 + i % 3 for i in range(200))


class TestDecorator:
    """A pipeline decorates and keeps the signature."""

    async def test_decorator_keeps_signature(self) -> None:
        pipeline = Pipeline(timeout(1), Retry(attempts=2, backoff=constant(0)))

        @pipeline
        async def fetch(key: str, *, fresh: bool = False) -> str:
            return key * 2

        assert await fetch("ab") == "abab"
        assert list(inspect.signature(fetch).parameters) == ["key", "fresh"]

    async def test_named_pipeline_decorator_sets_the_operation(self) -> None:
        @Pipeline(Retry(), name="orders")
        async def op() -> str | None:
            return call_context().operation

        assert await op() == "orders"


class TestContext:
    """Operation, attempt and deadline are visible below."""

    async def test_context_outside_everything(self) -> None:
        ctx = call_context()
        assert (ctx.operation, ctx.attempt, ctx.deadline, ctx.remaining) == (None, 1, None, None)

    async def test_operation_attempt_and_deadline(self) -> None:
        seen: list[tuple[str | None, int, float | None]] = []

        async def work() -> None:
            ctx = call_context()
            seen.append((ctx.operation, ctx.attempt, ctx.remaining))
            if ctx.attempt < 3:
                raise ConnectionError

        pipeline = Pipeline(timeout(10), Retry(attempts=3, backoff=constant(1.0)), name="db")
        await pipeline.call(work)
        assert seen == [("db", 1, 10.0), ("db", 2, 9.0), ("db", 3, 8.0)]
        assert call_context().operation is None
        assert call_context().attempt == 1

    async def test_listeners_read_the_context(self) -> None:
        seen: list[tuple[str | None, int]] = []

        def listener(event: Event) -> None:
            if isinstance(event, RetryScheduled):
                ctx = call_context()
                seen.append((ctx.operation, ctx.attempt))

        async def flaky() -> None:
            if len(seen) < 2:
                raise ConnectionError

        pipeline = Pipeline(
            Retry(attempts=3, backoff=constant(0)), name="api", listeners=[listener]
        )
        await pipeline.call(flaky)
        assert seen == [("api", 1), ("api", 2)]

    async def test_nested_names_innermost_wins_and_restores(self) -> None:
        names: list[str | None] = []

        async def work() -> None:
            names.append(call_context().operation)

        inner = Pipeline(Retry(), name="inner")
        outer = Pipeline(inner, name="outer")
        await outer.call(work)
        assert names == ["inner"]


class TestListeners:
    """Pipeline listeners receive the events of every strategy in it."""

    async def test_pipeline_listener_gets_strategy_events(self) -> None:
        events: list[Event] = []

        async def slow() -> None:
            await asyncio.sleep(5)

        pipeline = Pipeline(
            Retry(attempts=2, on=TimeoutError, backoff=constant(0)),
            timeout(1),
            listeners=[events.append],
        )
        with pytest.raises(TimeoutExceeded):
            await pipeline.call(slow)
        kinds = [
            type(event).__name__ for event in events if type(event).__name__ != "AttemptCompleted"
        ]
        assert kinds == [
            "TimeoutExpired",
            "RetryScheduled",
            "TimeoutExpired",
            "RetryGaveUp",
            "PipelineCompleted",
        ]
        assert isinstance(events[0], TimeoutExpired)

    async def test_events_outside_the_pipeline_do_not_reach_it(self) -> None:
        events: list[Event] = []
        Pipeline(Retry(), listeners=[events.append])
        with pytest.raises(TimeoutExceeded):
            await timeout(1).call(asyncio.sleep, 5)
        assert events == []


class TestValidation:
    """Orders that are almost always mistakes are rejected at construction."""

    def test_inner_timeout_not_shorter_than_outer(self) -> None:
        with pytest.raises(ValueError, match=r"inner timeout \(10s\) is not shorter"):
            Pipeline(timeout(5), Retry(), timeout(10))

    def test_retry_deadline_longer_than_the_timeout_around_it(self) -> None:
        with pytest.raises(ValueError, match=r"retry deadline \(60s\) is longer"):
            Pipeline(timeout(10), Retry(deadline=60))

    def test_nested_retries(self) -> None:
        with pytest.raises(ValueError, match=r"nested retries multiply attempts \(3 x 4 = 12\)"):
            Pipeline(Retry(attempts=3), Pipeline(Retry(attempts=4)))

    def test_breaker_window_not_longer_than_the_attempt_timeout(self) -> None:
        breaker = CircuitBreaker(trip="rate", window_duration=5.0, minimum_calls=2)
        with pytest.raises(ValueError, match=r"breaker's window \(5s\)"):
            Pipeline(breaker, timeout(10))

    def test_slow_call_duration_that_cannot_happen(self) -> None:
        with pytest.raises(ValueError, match="slow_call_duration"):
            Pipeline(CircuitBreaker(slow_call_duration=5.0), timeout(2))

    def test_fallback_inside_retry(self) -> None:
        with pytest.raises(ValueError, match="fallback inside a retry"):
            Pipeline(Retry(), Fallback(None))

    def test_fallback_inside_retry_for_other_failures_is_fine(self) -> None:
        Pipeline(Retry(on=ConnectionError), Fallback(None, on=KeyError))
        Pipeline(Retry(on=ConnectionError), Fallback(None, on=None, on_result=lambda r: not r))

    def test_infinite_inner_timeout_is_fine(self) -> None:
        import math

        Pipeline(timeout(math.inf), Retry(), timeout(math.inf))

    def test_same_strategy_twice(self) -> None:
        bulkhead = Bulkhead(1)
        with pytest.raises(ValueError, match="appears twice"):
            Pipeline(bulkhead, Retry(), bulkhead)

    def test_validate_false_builds_it_anyway(self) -> None:
        assert len(Pipeline(Retry(), Retry(), validate=False)) == 2

    def test_not_a_strategy(self) -> None:
        with pytest.raises(TypeError, match="strategy 2 must have an async call"):
            Pipeline(Retry(), "retry")  # type: ignore[arg-type]

    async def test_a_strategy_without_order_checks_may_be_the_outer_one(self) -> None:
        class OnlyCall:
            """A strategy of someone else's: ``call`` and nothing more."""

            async def call(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
                return await fn(*args, **kwargs)

        pipeline = Pipeline(OnlyCall(), timeout(5))  # type: ignore[arg-type]
        assert await pipeline.call(asyncio.sleep, 0, "ran") == "ran"

    def test_config_strategies_must_be_a_list(self) -> None:
        with pytest.raises(ValueError, match="'strategies' must be a list of tables, got"):
            pipeline_from_config({"strategies": {"type": "retry"}})

    def test_sensible_order_passes(self) -> None:
        Pipeline(
            Fallback(None),
            timeout(10),
            Retry(deadline=9),
            CircuitBreaker(trip="rate", window_duration=30, slow_call_duration=1.5),
            Bulkhead(10),
            timeout(2),
        )


class TestDescribe:
    """``describe()`` lists the strategies outermost first."""

    def test_describe(self) -> None:
        pipeline = Pipeline(
            timeout(10),
            Retry(attempts=3, backoff=constant(1.0)),
            CircuitBreaker(failure_threshold=5, timeout=30.0, name="db"),
            Pipeline(Bulkhead(4, 8, timeout=1.0), timeout(2)),
            name="orders",
        )
        assert pipeline.describe() == "\n".join(
            [
                "Pipeline 'orders', outermost first:",
                "  1. timeout 10s",
                "  2. retry: 3 attempts, backoff Constant(delay=1.0)",
                "  3. circuit breaker: opens after 5 consecutive failures, breaks for 30s [db]",
                "  4. pipeline:",
                "    1. bulkhead: 4 at once, 8 queued, waits at most 1s",
                "    2. timeout 2s",
            ]
        )

    def test_describe_rate_limiters(self) -> None:
        pipeline = Pipeline(RateLimiter(100, per=60, name="api"), RateLimiter(2, max_wait=None))
        assert pipeline.describe().splitlines()[1:] == [
            "  1. rate limiter: 100 calls per 60s, bursts of 100, waits at most 0s [api]",
            "  2. rate limiter: 2 calls per 1s, bursts of 2, waits as long as needed",
        ]

    def test_describe_empty(self) -> None:
        assert Pipeline().describe() == "Pipeline: empty (calls run as they are)"

    def test_repr_lists_the_strategies_and_the_name(self) -> None:
        limit, retry = timeout(2.5), Retry(attempts=2)
        assert repr(Pipeline(limit, retry)) == f"Pipeline({limit!r}, {retry!r})"
        assert repr(Pipeline(limit, name="api")) == f"Pipeline({limit!r}, name='api')"

    def test_remaining_is_seen_inside(self) -> None:
        async def main() -> float | None:
            return await Pipeline(timeout(3)).call(_remaining)

        from stoic.testing import run

        assert run(main()) == 3.0


class TestRateLimiterInPipelines:
    """A rate limiter composes like any strategy, in every pipeline form."""

    async def test_a_retry_around_a_rate_limiter_waits_for_the_next_turn(self) -> None:
        limiter = RateLimiter(1, burst=1)
        pipeline = Pipeline(Retry(attempts=2, on=RateLimited, delay_hint=retry_after_hint), limiter)
        calls: list[float] = []

        @pipeline
        async def ping() -> int:
            calls.append(elapsed())
            return 1

        assert await ping() + await ping() == 2
        assert calls[1] - calls[0] == pytest.approx(1.0)

    async def test_a_decorated_pipeline_takes_one_turn_per_call(self) -> None:
        pipeline = Pipeline(RateLimiter(2, burst=2))

        @pipeline
        async def ping() -> int:
            return 1

        assert await ping() + await ping() == 2
        with pytest.raises(RateLimited):
            await ping()


async def _remaining() -> float | None:
    return remaining()


class TestStandardPipeline:
    """The ready pipeline for remote calls, with documented defaults."""

    def test_defaults(self) -> None:
        from stoic._pipeline import standard_pipeline

        pipeline = standard_pipeline("github")
        bulkhead, total, retry, breaker, attempt = pipeline.strategies
        assert isinstance(bulkhead, Bulkhead)
        assert (bulkhead.max_concurrent, bulkhead.max_waiting) == (1000, 0)
        assert isinstance(total, type(timeout(1)))
        assert total.seconds == 30.0
        assert isinstance(retry, Retry)
        assert retry.attempts == 4
        assert retry.on == (ConnectionError, TimeoutError)
        assert isinstance(breaker, CircuitBreaker)
        config = breaker.config
        assert (config.trip, config.failure_rate, config.minimum_calls) == ("rate", 0.1, 100)
        assert (config.window_duration, config.timeout) == (30.0, 5.0)
        assert isinstance(attempt, type(timeout(1)))
        assert attempt.seconds == 10.0
        assert breaker.name == "github.circuit_breaker"

    def test_overrides(self) -> None:
        from stoic._pipeline import standard_pipeline

        pipeline = standard_pipeline(attempts=2, total_timeout=5.0, attempt_timeout=1.0)
        assert pipeline.strategies[2].attempts == 2  # type: ignore[attr-defined]
        assert pipeline.strategies[1].seconds == 5.0  # type: ignore[attr-defined]

    def test_inconsistent_overrides_are_rejected(self) -> None:
        from stoic._pipeline import standard_pipeline

        with pytest.raises(ValueError, match="can never fire"):
            standard_pipeline(total_timeout=5.0)

    async def test_honours_retry_after_and_attempt_timeout(self) -> None:
        from stoic._pipeline import standard_pipeline

        starts: list[float] = []

        async def call() -> str:
            starts.append(elapsed())
            if len(starts) == 1:
                exc = ConnectionError("429")
                exc.retry_after = 3  # type: ignore[attr-defined]
                raise exc
            if len(starts) == 2:
                await asyncio.sleep(60)  # hangs: cut by the 10 s attempt timeout
            return "ok"

        assert await standard_pipeline("api").call(call) == "ok"
        assert starts[:2] == [0.0, 3.0]
        assert starts[2] >= 13.0


class TestPipelineCompleted:
    """Each call through a listened-to pipeline reports its duration and outcome once."""

    async def test_success_and_failure(self) -> None:
        from stoic._pipeline import PipelineCompleted

        events: list[Event] = []
        pipeline = Pipeline(timeout(5), name="p", listeners=[events.append])
        await pipeline.call(asyncio.sleep, 1.5)
        with pytest.raises(TimeoutExceeded):
            await pipeline.call(asyncio.sleep, 10)
        completed = [e for e in events if isinstance(e, PipelineCompleted)]
        assert [(e.name, e.duration, e.outcome) for e in completed] == [
            ("p", 1.5, "success"),
            ("p", 5.0, "failure"),
        ]
        assert isinstance(completed[1].exception, TimeoutExceeded)

    async def test_cancelled_call_is_not_reported(self) -> None:
        from stoic._pipeline import PipelineCompleted

        events: list[Event] = []
        pipeline = Pipeline(Retry(), listeners=[events.append])
        task = asyncio.create_task(pipeline.call(asyncio.sleep, 10))
        await asyncio.sleep(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not [e for e in events if isinstance(e, PipelineCompleted)]

    async def test_global_listener_sees_named_pipelines_only(self) -> None:
        from stoic._events import add_listener, remove_listener
        from stoic._pipeline import PipelineCompleted

        events: list[Event] = []
        add_listener(events.append)
        try:

            @Pipeline(Retry())
            async def anonymous() -> int:
                return 1

            @Pipeline(Retry(), name="named")
            async def named() -> int:
                return 2

            await anonymous()
            await named()
            await Pipeline(Retry()).call(anonymous)
        finally:
            remove_listener(events.append)
        completed = [e for e in events if isinstance(e, PipelineCompleted)]
        assert [e.name for e in completed] == ["named"]


FORMS_AROUND_BULKHEAD = ["pipeline", "decorators", "nested"]


def around_bulkhead(decorate: str, breaker: CircuitBreaker, bulkhead: Bulkhead, work: Any) -> Any:
    """``breaker`` around ``bulkhead`` around ``work``: through a pipeline, by stacked
    decorators, or nested by hand with ``breaker.call`` (the reference)."""
    if decorate == "pipeline":
        return Pipeline(breaker, bulkhead)(work)
    if decorate == "decorators":
        return breaker(bulkhead(work))
    inner = bulkhead(work)

    async def nested(*args: Any) -> Any:
        return await breaker.call(inner, *args)

    return nested


class TestBreakerAroundBulkhead:
    """A breaker right around a bulkhead, in every form, keeps the nesting's semantics."""

    @staticmethod
    def both(decorate: str) -> tuple[Any, CircuitBreaker, Bulkhead, list[str]]:
        breaker = CircuitBreaker(failure_threshold=2, timeout=10.0)
        bulkhead = Bulkhead(1, max_waiting=1)
        log: list[str] = []

        async def work(outcome: str) -> str:
            log.append(outcome)
            await asyncio.sleep(1)
            if outcome == "fail":
                raise ConnectionError
            return outcome

        return around_bulkhead(decorate, breaker, bulkhead, work), breaker, bulkhead, log

    async def test_a_bound_method_or_proxy_of_a_bulkhead_function_keeps_its_own_call(
        self,
    ) -> None:
        bulkhead = Bulkhead(2)
        seen: list[tuple[Any, ...]] = []

        class Client:
            @bulkhead
            async def fetch(self, x: int) -> tuple[Any, int]:
                return (self, x)

        class Proxy:
            """Forwards attributes (``__code__`` too) but adds its own call."""

            def __init__(self, wrapped: Any) -> None:
                self._wrapped = wrapped

            def __getattr__(self, name: str) -> Any:
                return getattr(self._wrapped, name)

            async def __call__(self, *args: Any) -> Any:
                seen.append(args)
                return await self._wrapped(*args)

        client = Client()
        assert await CircuitBreaker()(client.fetch)(1) == (client, 1)
        assert await CircuitBreaker()(Proxy(Client.fetch))(client, 2) == (client, 2)
        assert seen == [(client, 2)]

    def test_decorating_keeps_nothing_alive(self) -> None:
        import weakref

        class Client:
            def __init__(self) -> None:
                self.bulkhead = Bulkhead(2)
                self.fetch = self.bulkhead(self._fetch)  # a cycle: the collector frees it

            async def _fetch(self) -> int:
                return 1

        clients = [weakref.ref(Client()) for _ in range(10)]
        gc.collect()
        assert [ref() for ref in clients] == [None] * 10

    @pytest.mark.parametrize("decorate", FORMS_AROUND_BULKHEAD)
    async def test_same_outcomes_as_nesting(self, decorate: str) -> None:
        wrapped, breaker, bulkhead, log = self.both(decorate)
        assert await wrapped("ok") == "ok"
        results = await asyncio.gather(
            wrapped("fail"), wrapped("ok"), wrapped("ok"), return_exceptions=True
        )
        # One runs, one waits, the third finds the queue full: BulkheadFull, which the breaker
        # counts as a failure (it is raised inside the breaker's call); with the ConnectionError
        # that makes two in a row, so it opens.
        kinds = sorted(type(result).__name__ for result in results)
        assert kinds == ["BulkheadFull", "ConnectionError", "str"]
        assert breaker.state is CircuitState.OPEN
        with pytest.raises(CircuitBreakerOpen):
            await wrapped("ok")
        stats = bulkhead.statistics()
        assert (stats.running, stats.waiting, stats.admitted, stats.rejected) == (0, 0, 3, 1)
        assert log == ["ok", "fail", "ok"]

    @pytest.mark.parametrize("decorate", FORMS_AROUND_BULKHEAD)
    async def test_cancelled_wait_frees_everything(self, decorate: str) -> None:
        wrapped, breaker, bulkhead, _ = self.both(decorate)
        first = asyncio.create_task(wrapped("ok"))
        await asyncio.sleep(0)
        waiting = asyncio.create_task(wrapped("ok"))
        await asyncio.sleep(0.5)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await first == "ok"
        stats = bulkhead.statistics()
        assert (stats.running, stats.waiting) == (0, 0)
        assert breaker.statistics().failed_calls == 0
        assert breaker.statistics().successful_calls == 1

    @pytest.mark.parametrize("decorate", FORMS_AROUND_BULKHEAD)
    async def test_half_open_probe_and_slow_calls_match_nesting(self, decorate: str) -> None:
        breaker = CircuitBreaker(failure_threshold=1, timeout=5.0, slow_call_duration=2.0)
        bulkhead = Bulkhead(2)

        async def work(seconds: float) -> float:
            await asyncio.sleep(seconds)
            return seconds

        wrapped = around_bulkhead(decorate, breaker, bulkhead, work)
        assert await wrapped(3.0) == 3.0  # slow: counts as a failure, opens the breaker
        assert breaker.state is CircuitState.OPEN
        await asyncio.sleep(5.0)
        probe = asyncio.create_task(wrapped(0.5))
        await asyncio.sleep(0)
        with pytest.raises(CircuitBreakerOpen):  # one probe at a time, and no slot taken
            await wrapped(0.1)
        assert bulkhead.statistics().running == 1
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        assert bulkhead.statistics().running == 0
        assert await wrapped(0.1) == 0.1  # the cancelled probe released its permit
        stats = breaker.statistics()
        assert (stats.slow_calls, stats.failed_calls) == (1, 0)


class TestOverridesAndContext:
    """Subclasses keep their overrides; spawned tasks keep their attempt number."""

    async def test_subclass_call_is_used(self) -> None:
        class CountingBreaker(CircuitBreaker):
            calls = 0

            async def call(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
                type(self).calls += 1
                return await super().call(fn, *args, **kwargs)

        async def work(n: int) -> int:
            return n

        breaker = CountingBreaker()
        assert await Pipeline(Retry(), breaker, Bulkhead(2)).call(work, 1) == 1
        assert await Pipeline(Retry(), breaker, Bulkhead(2))(work)(2) == 2
        assert CountingBreaker.calls == 2

    @pytest.mark.parametrize("name", [None, "named"])
    async def test_a_pipeline_subclass_overriding_call_keeps_it(self, name: str | None) -> None:
        seen: list[Any] = []

        class Audited(Pipeline):
            def call(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
                seen.append(args[-1])
                return super().call(fn, *args, **kwargs)

        async def work(n: int) -> int:
            return n

        audited = Audited(Retry(), Bulkhead(2), name=name)
        assert await audited.call(work, 1) == 1
        assert await audited(work)(2) == 2
        assert await Pipeline(audited).call(work, 3) == 3
        assert seen == [1, 2, 3]

    def test_call_keeps_its_public_docstring(self) -> None:
        assert (Pipeline.call.__doc__ or "").startswith("Run ``fn(*args, **kwargs)``")

    @pytest.mark.parametrize("name", [None, "named"])
    async def test_call_works_on_the_class_as_a_method_would(self, name: str | None) -> None:
        async def add(a: int, b: int = 0) -> int:
            return a + b

        class Explicit(Pipeline):
            def call(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
                return Pipeline.call(self, fn, *args, **kwargs)

        pipeline = Pipeline(Retry(), name=name)
        assert await Pipeline.call(pipeline, add, 1, b=2) == 3
        assert await Explicit(Retry(), name=name).call(add, 3, b=4) == 7
        assert list(inspect.signature(Pipeline.call).parameters)[:2] == ["pipeline", "fn"]

    def test_a_listening_pipeline_is_freed_without_the_collector(self) -> None:
        import weakref

        gc.disable()
        try:
            pipeline = Pipeline(Retry(), listeners=[lambda event: None])
            ref = weakref.ref(pipeline)
            del pipeline  # no reference cycle: freed at once
            assert ref() is None
        finally:
            gc.enable()

    @pytest.mark.parametrize("form", ["decorator", "call"])
    async def test_listeners_hear_every_event_when_only_the_call_holds_the_pipeline(
        self, form: str
    ) -> None:
        events: list[Event] = []

        async def fetch() -> None:
            raise ConnectionError("down")

        def listening() -> Pipeline:
            return Pipeline(
                Retry(attempts=2, backoff=constant(0)), name="svc", listeners=[events.append]
            )

        with pytest.raises(ConnectionError):
            if form == "decorator":
                decorated = listening()(fetch)  # the pipeline object itself is gone
                gc.collect()
                await decorated()
            else:
                await listening().call(fetch)  # only the running call holds it
        assert [type(event).__name__ for event in events] == [
            "AttemptCompleted",
            "RetryScheduled",
            "AttemptCompleted",
            "RetryGaveUp",
            "PipelineCompleted",
        ]

    async def test_task_spawned_in_an_attempt_keeps_its_number(self) -> None:
        seen: list[int] = []
        tasks: list[asyncio.Task[None]] = []

        async def watch() -> None:
            await asyncio.sleep(5)
            seen.append(call_context().attempt)

        async def work() -> None:
            if call_context().attempt == 2:
                tasks.append(asyncio.create_task(watch()))
            if call_context().attempt < 3:
                raise ConnectionError

        await Retry(attempts=3, backoff=constant(1.0)).call(work)
        await tasks[0]
        assert seen == [2]
