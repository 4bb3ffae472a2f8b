"""Pipelines from config: building, round-trip, TOML, and errors that say where."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stoic._bulkhead import Bulkhead
from stoic._circuit_breaker import CircuitBreaker
from stoic._fallback import Fallback
from stoic._pipeline import Pipeline
from stoic._rate_limit import RateLimiter
from stoic._retry import Retry
from stoic._timeout import Timeout, timeout
from stoic.backoff import constant, exponential, linear
from stoic.config import load_pipelines, pipeline_from_config, pipeline_to_config
from stoic.registry import Registry
from tests.docs.blocks import DOCS, blocks

PAYMENTS: dict[str, Any] = {
    "name": "payments",
    "strategies": [
        {"type": "fallback", "value": "queued", "on": ["ConnectionError"]},
        {"type": "timeout", "seconds": 10.0},
        {
            "type": "retry",
            "attempts": 3,
            "on": ["ConnectionError", "TimeoutError"],
            "backoff": {"type": "exponential", "initial": 0.2, "max_delay": 5.0},
        },
        {"type": "circuit_breaker", "failure_threshold": 4, "timeout": 30.0, "name": "pay"},
        {"type": "bulkhead", "max_concurrent": 20, "max_waiting": 50},
        {"type": "timeout", "seconds": 2.0},
    ],
}


class TestBuild:
    """Config builds the same strategies the constructors would."""

    def test_builds_each_strategy_in_order(self) -> None:
        pipeline = pipeline_from_config(PAYMENTS)
        kinds = [type(strategy) for strategy in pipeline.strategies]
        assert kinds == [Fallback, Timeout, Retry, CircuitBreaker, Bulkhead, Timeout]
        retry = pipeline.strategies[2]
        assert isinstance(retry, Retry)
        assert retry.on == (ConnectionError, TimeoutError)
        assert retry.backoff == exponential(0.2, max_delay=5.0)
        assert pipeline.name == "payments"

    async def test_built_pipeline_works(self) -> None:
        calls = 0

        async def flaky() -> str:
            nonlocal calls
            calls += 1
            if calls < 3:
                raise ConnectionError
            return "paid"

        assert await pipeline_from_config(PAYMENTS).call(flaky) == "paid"

    def test_dotted_exception_names(self) -> None:
        pipeline = pipeline_from_config(
            {"strategies": [{"type": "retry", "on": "asyncio.InvalidStateError"}]}
        )
        import asyncio

        assert pipeline.strategies[0].on == (asyncio.InvalidStateError,)  # type: ignore[attr-defined]

    def test_nested_pipeline_and_sum_backoff(self) -> None:
        config = {
            "strategies": [
                {
                    "type": "pipeline",
                    "name": "inner",
                    "strategies": [
                        {
                            "type": "retry",
                            "backoff": {
                                "type": "sum",
                                "parts": [
                                    {"type": "linear", "initial": 1, "step": 1},
                                    {"type": "constant", "delay": 0.5},
                                ],
                            },
                        }
                    ],
                }
            ]
        }
        pipeline = pipeline_from_config(config)
        inner = pipeline.strategies[0]
        assert isinstance(inner, Pipeline)
        assert inner.name == "inner"
        assert inner.strategies[0].backoff == linear(1, 1) + constant(0.5)  # type: ignore[attr-defined]


class TestRoundTrip:
    """``pipeline_to_config`` then ``pipeline_from_config`` gives the same config."""

    def test_round_trip(self) -> None:
        config = pipeline_to_config(pipeline_from_config(PAYMENTS))
        assert pipeline_to_config(pipeline_from_config(config)) == config
        assert config["strategies"][3] == {
            "type": "circuit_breaker",
            "failure_threshold": 4,
            "break_duration": 30.0,  # stoic's name; the table said ``timeout``
            "name": "pay",
        }

    def test_round_trip_from_objects(self) -> None:
        pipeline = Pipeline(
            timeout(5),
            Retry(attempts=2, on=OSError, backoff=constant(1) + 0.5, deadline=4.0),
            CircuitBreaker(trip="rate", window_size=20, minimum_calls=5, record=(OSError,)),
            name="x",
        )
        again = pipeline_from_config(pipeline_to_config(pipeline))
        assert pipeline_to_config(again) == pipeline_to_config(pipeline)
        assert again.describe() == pipeline.describe()

    def test_rate_limiters_round_trip_including_an_unlimited_wait(self) -> None:
        pipeline = Pipeline(
            RateLimiter(100, per=60, burst=5, max_wait=2.5, name="api"),
            RateLimiter(3, max_wait=None),
        )
        config = pipeline_to_config(pipeline)
        assert config["strategies"] == [
            {
                "type": "rate_limiter",
                "rate": 100.0,
                "per": 60.0,
                "burst": 5,
                "max_wait": 2.5,
                "name": "api",
            },
            {"type": "rate_limiter", "rate": 3.0, "per": 1.0, "burst": 3, "max_wait": "unlimited"},
        ]
        again = pipeline_from_config(config)
        assert pipeline_to_config(again) == config
        assert [repr(strategy) for strategy in again.strategies] == [
            repr(strategy) for strategy in pipeline.strategies
        ]

    def test_predicates_cannot_be_written(self) -> None:
        with pytest.raises(ValueError, match="retry on is a predicate"):
            pipeline_to_config(Pipeline(Retry(on=lambda e: True)))

    def test_fallback_result_predicate_cannot_be_written(self) -> None:
        with pytest.raises(ValueError, match="fallback on_result is a function"):
            pipeline_to_config(Pipeline(Fallback([], on=None, on_result=lambda r: not r)))

    def test_validate_false_round_trips(self) -> None:
        pipeline = Pipeline(Retry(), Retry(), validate=False)
        assert len(pipeline_from_config(pipeline_to_config(pipeline))) == 2

    def test_a_fallback_of_none_round_trips(self) -> None:
        config = pipeline_to_config(Pipeline(Fallback(None, on=KeyError)))
        assert config["strategies"] == [{"type": "fallback", "value": None, "on": ["KeyError"]}]
        again = pipeline_from_config(config)
        assert pipeline_to_config(again) == config
        assert isinstance(again.strategies[0], Fallback)
        assert again.strategies[0].value is None

    def test_hooks_cannot_be_written(self) -> None:
        with pytest.raises(ValueError, match="retry on_result is a function"):
            pipeline_to_config(Pipeline(Retry(on_result=lambda r: r is None)))


class TestErrors:
    """Every error says where it is."""

    @pytest.mark.parametrize(
        ("entry", "message"),
        [
            ({"type": "retry", "attempts": 0}, r"strategies\[0\] \(retry\): attempts must be"),
            ({"type": "retry", "tries": 3}, r"unknown option\(s\) tries; allowed: attempts"),
            ({"type": "retry", "on": ["NoSuchError"]}, r"'NoSuchError' is not an exception"),
            ({"type": "retry", "on": ["nowhere.Error"]}, r"cannot import exception"),
            ({"type": "retry", "on": []}, r"expected an exception name or a list"),
            ({"type": "retry", "backoff": {"type": "cubic"}}, r"backoff type must be one of"),
            (
                {"type": "retry", "backoff": {"type": "exponential", "jitter": "wild"}},
                r"\.backoff: jitter must be one of",
            ),
            ({"type": "timeout", "seconds": -1}, r"\(timeout\): seconds must be a number >= 0"),
            ({"type": "timeout", "seconds": False}, r"\(timeout\): seconds must be .* got False"),
            ({"type": "retry", "deadline": True}, r"\(retry\): deadline must be .* got True"),
            ({"type": "bulkhead", "max_concurrent": 0}, r"max_concurrent must be"),
            ({"type": "rate_limiter", "rate": 0}, r"\(rate_limiter\): rate must be a finite"),
            ({"type": "rate_limiter", "rate": 1, "max_wait": "forever"}, r"max_wait must be"),
            ({"type": "rate_limiter", "rate": 1, "period": 2}, r"unknown option\(s\) period"),
            (
                {"type": "teleport"},
                r"type must be one of (.*, )?bulkhead, circuit_breaker, .*timeout",
            ),
            ("retry", r"expected a table"),
            ({"type": "fallback"}, r"a fallback needs its 'value'"),
        ],
    )
    def test_bad_entries(self, entry: Any, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            pipeline_from_config({"strategies": [entry]})

    def test_order_mistakes_are_caught(self) -> None:
        config = {
            "strategies": [{"type": "timeout", "seconds": 1}, {"type": "timeout", "seconds": 5}]
        }
        with pytest.raises(ValueError, match="can never fire"):
            pipeline_from_config(config)

    def test_validate_must_be_a_bool(self) -> None:
        with pytest.raises(ValueError, match="'validate' must be true or false"):
            pipeline_from_config({"validate": "no", "strategies": []})

    def test_validate_false_in_config(self) -> None:
        config = {
            "validate": False,
            "strategies": [{"type": "timeout", "seconds": 1}, {"type": "timeout", "seconds": 5}],
        }
        assert len(pipeline_from_config(config)) == 2


TOML = """
[[pipelines.payments.strategies]]
type = "timeout"
seconds = 10

[[pipelines.payments.strategies]]
type = "retry"
attempts = 3
on = ["ConnectionError"]
backoff = { type = "exponential", initial = 0.2, max_delay = 5 }

[[pipelines.payments.strategies]]
type = "circuit_breaker"
failure_threshold = 5
timeout = 30

[[pipelines.payments.strategies]]
type = "timeout"
seconds = 2

[pipelines.search]
strategies = [{ type = "bulkhead", max_concurrent = 4 }]
"""


class TestToml:
    """TOML files through the standard library."""

    def test_load_pipelines(self, tmp_path: Path) -> None:
        path = tmp_path / "stoic.toml"
        path.write_text(TOML)
        pipelines = load_pipelines(path)
        assert sorted(pipelines) == ["payments", "search"]
        assert pipelines["payments"].name == "payments"
        assert len(pipelines["payments"]) == 4

    def test_load_into_a_registry(self, tmp_path: Path) -> None:
        path = tmp_path / "stoic.toml"
        path.write_text(TOML)
        registry = Registry()
        pipelines = load_pipelines(path, registry=registry)
        assert registry.get("search") is pipelines["search"]

    def test_loading_into_a_registry_is_all_or_nothing(self, tmp_path: Path) -> None:
        path = tmp_path / "stoic.toml"
        path.write_text(TOML)
        registry = Registry()
        taken = registry.register("search", object())
        with pytest.raises(ValueError, match="'search' already registered; nothing was registered"):
            load_pipelines(path, registry=registry)
        assert registry.names() == ["search"]  # not "payments" either
        registry.remove("search")
        load_pipelines(path, registry=registry)  # the corrected retry loads every pipeline
        assert registry.names() == ["payments", "search"]
        assert registry.get("search") is not taken

    def test_errors_name_the_table(self, tmp_path: Path) -> None:
        path = tmp_path / "stoic.toml"
        path.write_text('[pipelines.bad]\nstrategies = [{ type = "retry", attempts = -2 }]\n')
        with pytest.raises(ValueError, match=r"pipelines\.bad\.strategies\[0\] \(retry\)"):
            load_pipelines(path)

    def test_the_docs_example_loads(self, tmp_path: Path) -> None:
        (example,) = [block for block in blocks(DOCS / "pipelines.md") if block.language == "toml"]
        path = tmp_path / "stoic.toml"
        path.write_text(example.source)
        payments = load_pipelines(path)["payments"]
        limiter = payments.strategies[3]
        assert isinstance(limiter, RateLimiter)
        assert (limiter.rate, limiter.per, limiter.max_wait) == (100.0, 60.0, None)

    def test_invalid_toml(self, tmp_path: Path) -> None:
        path = tmp_path / "stoic.toml"
        path.write_text("[pipelines.bad\n")
        with pytest.raises(ValueError, match="not valid TOML"):
            load_pipelines(path)
