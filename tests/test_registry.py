"""The registry shares one object per name across call sites."""

from __future__ import annotations

import asyncio
import threading

import pytest

from stoic._circuit_breaker import CircuitBreaker, CircuitState
from stoic.registry import Registry, default_registry, get_or_create


class TestRegistry:
    """``get_or_create`` creates once and shares."""

    def test_factory_runs_once_and_the_object_is_shared(self) -> None:
        registry = Registry()
        made: list[CircuitBreaker] = []

        def factory() -> CircuitBreaker:
            made.append(CircuitBreaker())
            return made[-1]

        first = registry.get_or_create("payments", factory)
        second = registry.get_or_create("payments", factory)
        assert first is second
        assert len(made) == 1

    async def test_two_call_sites_share_breaker_state(self) -> None:
        registry = Registry()

        async def down() -> None:
            raise ConnectionError

        for _ in range(2):
            breaker = registry.get_or_create("db", lambda: CircuitBreaker(failure_threshold=2))
            with pytest.raises(ConnectionError):
                await breaker.call(down)
        assert registry.get("db").state is CircuitState.OPEN

    def test_kind_mismatch_is_a_type_error(self) -> None:
        registry = Registry()
        registry.get_or_create("x", lambda: "not a breaker")
        with pytest.raises(TypeError, match="'x' is registered as 'not a breaker'"):
            registry.get_or_create("x", CircuitBreaker, kind=CircuitBreaker)

    def test_get_unknown_names_the_known_ones(self) -> None:
        registry = Registry()
        registry.register("a", 1)
        with pytest.raises(KeyError, match=r"nothing registered as 'b' \(registered: a\)"):
            registry.get("b")

    def test_register_refuses_a_taken_name_unless_replace(self) -> None:
        registry = Registry()
        registry.register("a", 1)
        with pytest.raises(ValueError, match="'a' is already registered"):
            registry.register("a", 2)
        registry.register("a", 2, replace=True)
        assert registry.get("a") == 2

    def test_empty_name_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="name must be a non-empty str"):
            Registry().get_or_create("", object)

    def test_names_remove_clear(self) -> None:
        registry = Registry()
        registry.register("b", 1)
        registry.register("a", 2)
        assert registry.names() == ["a", "b"]
        assert "a" in registry
        registry.remove("a")
        registry.remove("missing")
        assert registry.names() == ["b"]
        registry.clear()
        assert len(registry) == 0

    def test_threads_racing_get_one_object(self) -> None:
        registry = Registry()
        results: list[object] = []
        barrier = threading.Barrier(8)

        def worker() -> None:
            barrier.wait()
            results.append(registry.get_or_create("shared", object))

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({id(result) for result in results}) == 1

    def test_factory_may_use_the_registry(self) -> None:
        registry = Registry()

        def pipeline() -> tuple[object, object]:
            return ("pipeline", registry.get_or_create("breaker", object))

        made = registry.get_or_create("payments", pipeline)
        assert made[1] is registry.get("breaker")

    def test_module_level_get_or_create_uses_the_default_registry(self) -> None:
        try:
            item = get_or_create("test-default", object)
            assert default_registry.get("test-default") is item
        finally:
            default_registry.remove("test-default")


def test_asyncio_is_not_needed_for_the_registry() -> None:
    assert not asyncio.iscoroutinefunction(Registry.get_or_create)
