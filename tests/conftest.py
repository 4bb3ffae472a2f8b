"""stoic's own suite runs every ``async def`` test on virtual time."""

from __future__ import annotations

import inspect

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            item.add_marker(pytest.mark.virtual_time)


@pytest.fixture(autouse=True)
def _no_leftover_observation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start each test unobserved: a listening pipeline of an earlier test caught in a
    reference cycle (say, through a stored exception's traceback) lives until the cyclic GC
    runs, and would switch per-call timing on for unrelated tests."""
    import stoic._events as events

    monkeypatch.setattr(events, "observed", bool(events._global_listeners))
