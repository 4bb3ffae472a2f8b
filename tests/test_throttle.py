"""Adaptive throttle: local refusals in proportion to the dependency's, from the SRE book."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from stoic import (
    AdaptiveThrottle,
    CallThrottled,
    Pipeline,
    load_pipelines,
    pipeline_to_config,
)
from stoic._events import Event
from stoic.exceptions import RejectedCall, Throttled

# One form: the decorator and a pipeline run ``call`` itself (no copy of it to test).


class Backend:
    """Rejects (``ConnectionError``) while ``down``; counts the calls that reached it."""

    def __init__(self, *, down: bool = False) -> None:
        self.down = down
        self.reached = 0

    async def __call__(self) -> str:
        self.reached += 1
        if self.down:
            raise ConnectionError("overloaded")
        return "ok"


async def send(throttle: AdaptiveThrottle, backend: Any, n: int) -> dict[str, int]:
    """``n`` calls; how many succeeded, were rejected by the backend, refused locally."""
    seen = {"ok": 0, "rejected": 0, "refused": 0}
    for _ in range(n):
        try:
            await throttle.call(backend)
        except Throttled:
            seen["refused"] += 1
        except ConnectionError:
            seen["rejected"] += 1
        else:
            seen["ok"] += 1
    return seen


def draws(value: float) -> Any:
    return lambda: value


class TestRefusals:
    async def test_a_healthy_dependency_is_never_throttled(self) -> None:
        throttle = AdaptiveThrottle(random=draws(0.0))
        assert await send(throttle, Backend(), 500) == {"ok": 500, "rejected": 0, "refused": 0}
        assert throttle.probability() == 0.0

    async def test_the_probability_follows_requests_and_accepts(self) -> None:
        throttle = AdaptiveThrottle(k=2.0, min_requests=0, random=draws(0.999))
        backend = Backend()
        await send(throttle, backend, 10)
        backend.down = True
        await send(throttle, backend, 20)
        # 30 requests, 10 accepts: (30 - 2 * 10) / (30 + 1)
        assert throttle.probability() == pytest.approx(10 / 31)

    async def test_a_failing_dependency_is_spared_most_calls(self) -> None:
        throttle = AdaptiveThrottle(random=draws(0.5))
        backend = Backend(down=True)
        seen = await send(throttle, backend, 100)
        assert seen["refused"] > 70  # 0.8 at most, refused whenever it is above the draw
        assert backend.reached == seen["rejected"] < 30

    async def test_at_most_max_rejection_is_refused(self) -> None:
        throttle = AdaptiveThrottle(max_rejection=0.5, min_requests=0, random=draws(0.0))
        await send(throttle, Backend(down=True), 50)
        assert throttle.probability() == 0.5

    async def test_nothing_is_refused_before_min_requests(self) -> None:
        throttle = AdaptiveThrottle(min_requests=20, random=draws(0.0))
        seen = await send(throttle, Backend(down=True), 20)
        assert seen == {"ok": 0, "rejected": 20, "refused": 0}

    async def test_calls_still_running_are_not_taken_for_rejections(self) -> None:
        throttle = AdaptiveThrottle(min_requests=0, random=draws(0.0))

        async def slow() -> str:
            await asyncio.sleep(6.0)
            return "ok"

        results = await asyncio.gather(*(throttle.call(slow) for _ in range(100)))
        assert results == ["ok"] * 100  # none refused while the others were in flight
        assert (throttle.counts.requests, throttle.counts.accepts) == (100, 100)

    async def test_a_predicate_that_raises_counts_as_nothing(self) -> None:
        def broken(exc: BaseException) -> bool:
            raise RuntimeError("bug in the predicate")

        throttle = AdaptiveThrottle(record=broken, min_requests=0)
        with pytest.raises(RuntimeError, match="bug in the predicate"):
            await throttle.call(Backend(down=True))
        assert throttle.counts.requests == 0

    async def test_its_refusals_reach_global_and_pipeline_listeners(self) -> None:
        import stoic

        seen: list[Event] = []
        throttle = AdaptiveThrottle(min_requests=0, random=draws(0.0))
        await send(throttle, Backend(down=True), 2)
        stoic.add_listener(seen.append)
        try:
            with pytest.raises(Throttled):
                await Pipeline(throttle, name="api").call(Backend(down=True))
        finally:
            stoic.remove_listener(seen.append)
        assert any(isinstance(event, CallThrottled) for event in seen)

    async def test_refusals_count_as_requests(self) -> None:
        throttle = AdaptiveThrottle(min_requests=0, random=draws(0.0))
        await send(throttle, Backend(down=True), 40)
        assert throttle.counts.requests == 40
        assert throttle.counts.accepts == 0

    async def test_a_refusal_says_why_and_when_to_come_back(self) -> None:
        seen: list[Event] = []
        throttle = AdaptiveThrottle(
            min_requests=0, window=10.0, random=draws(0.0), listeners=[seen.append], name="api"
        )
        backend = Backend(down=True)
        await send(throttle, backend, 2)
        reached, probability = backend.reached, throttle.probability()
        with pytest.raises(Throttled) as info:
            await throttle.call(backend)
        assert backend.reached == reached  # not called
        assert isinstance(info.value, RejectedCall)
        assert 0 < info.value.retry_after <= 1.0  # a tenth of the window at most
        assert info.value.probability == probability == 2 / 3
        assert "throttle 'api' refused the call locally" in str(info.value)
        event = next(e for e in seen if isinstance(e, CallThrottled))
        assert (event.name, event.accepts) == ("api", 0)

    async def test_counts_leave_the_window(self) -> None:
        throttle = AdaptiveThrottle(min_requests=0, window=30.0, random=draws(0.0))
        await send(throttle, Backend(down=True), 30)
        assert throttle.probability() > 0
        await asyncio.sleep(30.0)
        assert throttle.probability() == 0.0

    async def test_it_recovers_as_the_dependency_accepts_again(self) -> None:
        # Random draws: the calls it lets through see the dependency accept again.
        throttle = AdaptiveThrottle(min_requests=0, window=30.0, random=random.Random(1).random)
        backend = Backend(down=True)
        await send(throttle, backend, 50)
        backend.down = False
        refusing = []
        for _ in range(60):
            await send(throttle, backend, 10)
            refusing.append(throttle.probability())
            await asyncio.sleep(1.0)
        assert refusing[0] > 0.5  # the outage is still in the window
        assert refusing[-1] == 0.0  # within two windows, nothing is refused


class TestClassification:
    async def test_an_ignored_error_counts_as_nothing(self) -> None:
        throttle = AdaptiveThrottle(ignore=KeyError, min_requests=0)

        async def missing() -> None:
            raise KeyError("no such item")

        for _ in range(5):
            with pytest.raises(KeyError):
                await throttle.call(missing)
        assert (throttle.counts.requests, throttle.counts.accepts) == (0, 0)

    async def test_an_error_record_does_not_match_counts_as_nothing(self) -> None:
        throttle = AdaptiveThrottle(record=ConnectionError, min_requests=0)

        async def bad() -> None:
            raise ValueError("bad input")

        with pytest.raises(ValueError):
            await throttle.call(bad)
        assert throttle.counts.requests == 0

    async def test_a_failure_result_is_a_rejection(self) -> None:
        throttle = AdaptiveThrottle(failure_result=lambda status: status == 503, min_requests=0)

        async def busy() -> int:
            return 503

        assert await throttle.call(busy) == 503
        assert (throttle.counts.requests, throttle.counts.accepts) == (1, 0)

    async def test_cancellation_counts_as_nothing(self) -> None:
        throttle = AdaptiveThrottle(min_requests=0)

        async def hangs() -> None:
            await asyncio.sleep(60)

        task = asyncio.create_task(throttle.call(hangs))
        await asyncio.sleep(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert throttle.counts.requests == 0

    async def test_a_call_that_outlived_the_window_is_not_taken_back_twice(self) -> None:
        throttle = AdaptiveThrottle(ignore=KeyError, window=10.0, min_requests=0)

        async def slow_miss() -> None:
            await asyncio.sleep(20)
            raise KeyError

        with pytest.raises(KeyError):
            await throttle.call(slow_miss)
        assert throttle.counts.requests == 0  # not -1


class TestConfigAndShape:
    def test_loads_from_toml_and_writes_back(self, tmp_path: Path) -> None:
        path = tmp_path / "stoic.toml"
        path.write_text(
            "[pipelines.api]\n"
            'strategies = [{ type = "adaptive_throttle", k = 1.5, window = 60.0, '
            'record = ["ConnectionError"], name = "api" }]\n'
        )
        pipeline = load_pipelines(path)["api"]
        (throttle,) = pipeline.strategies
        assert isinstance(throttle, AdaptiveThrottle)
        assert throttle.options()["k"] == 1.5
        assert pipeline_to_config(pipeline)["strategies"] == [
            {
                "type": "adaptive_throttle",
                "k": 1.5,
                "window": 60.0,
                "max_rejection": 0.8,
                "min_requests": 20,
                "record": ["ConnectionError"],
                "name": "api",
            }
        ]

    def test_a_failure_result_has_no_config_form(self) -> None:
        with pytest.raises(ValueError, match="failure_result is a function"):
            pipeline_to_config(Pipeline(AdaptiveThrottle(failure_result=lambda result: False)))

    def test_describe(self) -> None:
        assert AdaptiveThrottle(name="api").describe() == (
            "adaptive throttle: k=2 over 30s, refuses at most 80% [api]"
        )

    def test_a_copy_starts_with_fresh_counts(self) -> None:
        throttle = AdaptiveThrottle(min_requests=0)
        for _ in range(5):
            throttle.counts.count(0, accepted=False)
        assert throttle.with_().counts.requests == 0

    @pytest.mark.parametrize(
        ("options", "match"),
        [
            ({"k": 0.5}, r"k must be a finite number >= 1"),
            ({"k": True}, r"k must be"),
            ({"window": 0}, r"window must be a finite number of seconds > 0 and <= 600"),
            ({"max_rejection": 0}, r"max_rejection must be in \(0, 1\]"),
            ({"max_rejection": 1.5}, r"max_rejection must be"),
            ({"min_requests": -1}, r"min_requests must be an int >= 0"),
        ],
    )
    def test_bad_options_are_refused_naming_the_range(
        self, options: dict[str, Any], match: str
    ) -> None:
        with pytest.raises(ValueError, match=match):
            AdaptiveThrottle(**options)

    def test_record_and_random_are_checked(self) -> None:
        with pytest.raises(TypeError, match="record"):
            AdaptiveThrottle(record="ConnectionError")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="random"):
            AdaptiveThrottle(random=0.5)  # type: ignore[arg-type]


class TestSurface:
    def test_repr_and_name(self) -> None:
        throttle = AdaptiveThrottle(1.5, 60.0, 0.5, 10, name="api")
        assert repr(throttle) == (
            "AdaptiveThrottle(k=1.5, window=60.0, max_rejection=0.5, min_requests=10, name='api')"
        )
        assert throttle.name == "api"

    async def test_a_sync_function_is_stoics_error_and_counts_nowhere(self) -> None:
        from stoic._classify import NotAwaitable

        throttle = AdaptiveThrottle(min_requests=0)

        def sync() -> str:
            return "not awaitable"

        with pytest.raises(NotAwaitable):
            await throttle.call(sync)  # type: ignore[arg-type]
        assert throttle.counts.requests == 0
