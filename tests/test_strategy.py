"""The strategy base: hooks that let a strategy defined outside stoic work everywhere stoic's
own do, and subclass overrides honoured in every form."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest

from stoic import (
    Bulkhead,
    CircuitBreaker,
    Pipeline,
    RateLimiter,
    Retry,
    Strategy,
    load_pipelines,
    pipeline_from_config,
    pipeline_to_config,
    timeout,
)

T = TypeVar("T")


class Tagging(Strategy):
    """A strategy written as a user would: it records each call under its tag."""

    kind = "tagging"

    def __init__(self, tag: str, *, max_inside: float | None = None) -> None:
        self.tag = tag
        self.max_inside = max_inside
        self.seen: list[str] = []

    def __repr__(self) -> str:
        return f"Tagging({self.tag!r})"

    async def call(self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        self.seen.append(self.tag)
        return await fn(*args, **kwargs)

    def describe(self) -> str:
        return f"tagging as {self.tag}"

    def check_inside(self, inner: Any, where: str) -> None:
        limit = getattr(inner, "time_limit", None)
        if self.max_inside is not None and limit is not None and limit > self.max_inside:
            raise ValueError(f"{where}: tagging allows at most {self.max_inside}s inside")

    def to_config(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"tag": self.tag}
        if self.max_inside is not None:
            entry["max_inside"] = self.max_inside
        return entry

    @classmethod
    def from_config(cls, options: Mapping[str, Any], where: str) -> Tagging:
        return cls(**options)


async def double(x: int) -> int:
    return 2 * x


class TestAStrategyFromOutside:
    """A strategy defined outside the package works through every pipeline feature."""

    async def test_runs_in_a_pipeline_call_and_decorator(self) -> None:
        tagging = Tagging("a")
        pipeline = Pipeline(Retry(), tagging, Bulkhead(2))
        assert await pipeline.call(double, 2) == 4
        assert await pipeline(double)(3) == 6
        assert tagging.seen == ["a", "a"]

    def test_describe_uses_its_own_line(self) -> None:
        text = Pipeline(Retry(), Tagging("a"), name="p").describe()
        assert "2. tagging as a" in text.splitlines()[2]

    def test_its_order_check_runs_against_stoic_strategies(self) -> None:
        with pytest.raises(ValueError, match="strategy 2 inside strategy 1: tagging allows"):
            Pipeline(Tagging("a", max_inside=1.0), timeout(5.0))
        Pipeline(Tagging("a", max_inside=1.0), timeout(0.5))  # within its limit

    def test_stoic_checks_read_its_facts(self) -> None:
        class Answering(Tagging):
            kind = "answering"

            @property
            def answers(self) -> object:
                return ConnectionError

        with pytest.raises(ValueError, match="answers the failures the retry is for"):
            Pipeline(Retry(on=ConnectionError), Answering("x"))

    def test_loads_from_toml_and_writes_back(self, tmp_path: Path) -> None:
        path = tmp_path / "pipelines.toml"
        path.write_text(
            "[[pipelines.api.strategies]]\n"
            'type = "retry"\n'
            "attempts = 2\n"
            "[[pipelines.api.strategies]]\n"
            'type = "tagging"\n'
            'tag = "from-toml"\n'
            "max_inside = 3.0\n"
        )
        pipeline = load_pipelines(path)["api"]
        tagging = pipeline.strategies[1]
        assert isinstance(tagging, Tagging)
        assert (tagging.tag, tagging.max_inside) == ("from-toml", 3.0)
        config = pipeline_to_config(pipeline)
        assert config["strategies"][1] == {"type": "tagging", "tag": "from-toml", "max_inside": 3.0}
        again = pipeline_from_config(config)
        assert pipeline_to_config(again) == config

    def test_loads_by_dotted_path_without_a_kind(self) -> None:
        config = {"strategies": [{"type": f"{__name__}.Untyped", "label": "x"}]}
        pipeline = pipeline_from_config(config)
        assert isinstance(pipeline.strategies[0], Untyped)
        assert pipeline_to_config(pipeline) == config

    def test_a_bad_option_names_the_table(self) -> None:
        with pytest.raises(ValueError, match=r"strategies\[0\] \(tagging\): .*colour"):
            pipeline_from_config({"strategies": [{"type": "tagging", "colour": "red"}]})

    def test_a_taken_kind_is_refused_at_class_creation(self) -> None:
        with pytest.raises(ValueError, match=r"kind .retry. is taken by stoic._retry.policy.Retry"):

            class MyRetry(Strategy):
                kind = "retry"

    def test_a_kind_must_be_an_identifier(self) -> None:
        with pytest.raises(TypeError, match="kind must be an identifier str"):

            class Spaced(Strategy):
                kind = "two words"

    @pytest.mark.parametrize("dotted", ["no_such_module_xyz.Thing", "stoic.backoff.exponential"])
    def test_a_dotted_type_that_is_no_strategy_class_is_refused(self, dotted: str) -> None:
        with pytest.raises(ValueError, match=r"type must be one of .* got '" + dotted):
            pipeline_from_config({"strategies": [{"type": dotted}]})

    def test_without_a_describe_of_its_own_it_is_described_by_its_repr(self) -> None:
        class Plain(Strategy):
            def __repr__(self) -> str:
                return "Plain()"

            async def call(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
                return await fn(*args, **kwargs)

        assert Plain().describe() == "Plain()"
        assert "Plain()" in Pipeline(Plain()).describe()

    async def test_without_a_call_every_form_says_it_is_missing(self) -> None:
        class Hollow(Strategy):
            pass

        with pytest.raises(NotImplementedError):
            await Hollow()(double)(2)

    def test_without_a_config_form_it_says_so(self) -> None:
        class Plain(Strategy):
            async def call(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
                return await fn(*args, **kwargs)

        with pytest.raises(ValueError, match="has no config form"):
            pipeline_to_config(Pipeline(Plain()))


class Untyped(Strategy):
    """Loadable by its dotted path only."""

    def __init__(self, label: str) -> None:
        self.label = label

    async def call(self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        return await fn(*args, **kwargs)

    def to_config(self) -> dict[str, Any]:
        return {"label": self.label}


def _counting(base: type[Any]) -> type[Any]:
    class Counting(base):  # type: ignore[misc, valid-type]
        calls = 0

        async def call(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            type(self).calls += 1
            return await super().call(fn, *args, **kwargs)

    return Counting


STRATEGIES: dict[str, Callable[[type[Any]], Any]] = {
    "Retry": lambda cls: cls(),
    "CircuitBreaker": lambda cls: cls(),
    "Bulkhead": lambda cls: cls(2),
    "RateLimiter": lambda cls: cls(1000, burst=100),
    "Pipeline": lambda cls: cls(Retry()),
}
BASES = {
    "Retry": Retry,
    "CircuitBreaker": CircuitBreaker,
    "Bulkhead": Bulkhead,
    "RateLimiter": RateLimiter,
    "Pipeline": Pipeline,
}


class TestSubclassOverrides:
    """A subclass that overrides ``call`` is used by every form, not bypassed by the fast ones."""

    @pytest.mark.parametrize("name", sorted(STRATEGIES))
    async def test_the_decorator_runs_the_overridden_call(self, name: str) -> None:
        counting = _counting(BASES[name])
        strategy = STRATEGIES[name](counting)
        assert await strategy(double)(1) == 2
        assert await strategy.call(double, 2) == 4
        assert counting.calls == 2

    @pytest.mark.parametrize("name", sorted(STRATEGIES))
    async def test_a_pipeline_runs_the_overridden_call(self, name: str) -> None:
        counting = _counting(BASES[name])
        strategy = STRATEGIES[name](counting)
        pipeline = Pipeline(timeout(5.0), strategy, validate=False)
        assert await pipeline.call(double, 1) == 2
        assert await pipeline(double)(2) == 4
        assert counting.calls == 2

    async def test_a_subclass_without_an_override_keeps_the_fast_form(self) -> None:
        class Quiet(Retry):
            pass

        async def work() -> int:
            return 1

        decorated = Quiet()(work)
        assert decorated.__code__ is Retry()(work).__code__  # type: ignore[attr-defined]
        assert await decorated() == 1

    async def test_an_object_with_only_call_runs_in_a_pipeline(self) -> None:
        class Duck:
            def __init__(self) -> None:
                self.calls = 0

            async def call(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
                self.calls += 1
                await asyncio.sleep(0)
                return await fn(*args, **kwargs)

        duck = Duck()
        pipeline = Pipeline(Retry(), duck)  # type: ignore[arg-type]
        assert await pipeline.call(double, 1) == 2
        assert await pipeline(double)(2) == 4
        assert "Duck object" in pipeline.describe()
        assert duck.calls == 2


def _every_strategy() -> dict[str, Any]:
    from stoic import AdaptiveThrottle, Fallback

    return {
        "AdaptiveThrottle": AdaptiveThrottle(3.0, name="a"),
        "Retry": Retry(attempts=2, name="r"),
        "CircuitBreaker": CircuitBreaker(failure_threshold=2, name="b"),
        "Bulkhead": Bulkhead(3, max_waiting=1, name="h"),
        "RateLimiter": RateLimiter(5, name="l"),
        "Timeout": timeout(2.0, name="t"),
        "Fallback": Fallback(0, on=ConnectionError, name="f"),
        "Pipeline": Pipeline(timeout(5.0), Retry(), name="p"),
    }


CHANGES = {
    "AdaptiveThrottle": ("k", 1.5),
    "Retry": ("attempts", 5),
    "CircuitBreaker": ("config", None),
    "Bulkhead": ("max_concurrent", 7),
    "RateLimiter": ("rate", 9),
    "Timeout": ("seconds", 4.0),
    "Fallback": ("name", "g"),
    "Pipeline": ("name", "q"),
}


@pytest.mark.parametrize("name", sorted(CHANGES))
class TestImmutableStrategies:
    """Every strategy of stoic's is read-only once built, and copied through its options."""

    def test_assigning_an_option_raises_and_changes_nothing(self, name: str) -> None:
        strategy = _every_strategy()[name]
        before = strategy.options()
        for attribute in ("name", *strategy.__slots__):
            if attribute.startswith("__"):
                continue
            # A field raises from the guard, a read-only property from Python itself.
            with pytest.raises(AttributeError, match="immutable once built|has no setter"):
                setattr(strategy, attribute, 1)
        assert strategy.options() == before

    def test_deleting_an_option_raises_and_changes_nothing(self, name: str) -> None:
        strategy = _every_strategy()[name]
        before = strategy.options()
        for attribute in strategy.__slots__:
            if not attribute.startswith("__"):
                with pytest.raises(AttributeError, match="immutable once built"):
                    delattr(strategy, attribute)
        assert strategy.options() == before

    def test_with_changes_one_option_and_keeps_the_rest(self, name: str) -> None:
        strategy = _every_strategy()[name]
        option, value = CHANGES[name]
        if name == "CircuitBreaker":
            changed = strategy.with_(failure_threshold=9)
            assert changed.config.failure_threshold == 9
            assert changed.name == strategy.name
        else:
            changed = strategy.with_(**{option: value})
            assert changed.options()[option] == value
            rest = {k: v for k, v in strategy.options().items() if k != option}
            assert {k: v for k, v in changed.options().items() if k != option} == rest
        assert type(changed) is type(strategy)

    def test_pickles_and_copies_with_fresh_state(self, name: str) -> None:
        import copy
        import pickle

        strategy = _every_strategy()[name]
        for duplicate in (pickle.loads(pickle.dumps(strategy)), copy.copy(strategy)):
            assert type(duplicate) is type(strategy)
            assert duplicate is not strategy
            assert duplicate.describe() == strategy.describe()
