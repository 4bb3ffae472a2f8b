"""Events: the hot-path constructor (``fast_new``) makes the same frozen objects as the
dataclass's own, for every event class stoic has."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import pickle
from typing import Any

import pytest

from stoic._events import Event, fast_new

MODULES = [
    "stoic._retry.events",
    "stoic._circuit_breaker.events",
    "stoic._bulkhead",
    "stoic._rate_limit",
    "stoic._timeout",
    "stoic._fallback",
    "stoic._throttle",
    "stoic._pipeline.pipeline",
]


def _event_classes() -> list[type[Event]]:
    """The event classes the modules define (by name: a slots dataclass replaces the class
    it was made from, and the replaced one may linger among ``Event.__subclasses__()``)."""
    found = {
        value
        for module in MODULES
        for value in vars(importlib.import_module(module)).values()
        if isinstance(value, type) and issubclass(value, Event) and value is not Event
    }
    return sorted(found, key=lambda cls: cls.__qualname__)


def _values(cls: type[Event]) -> list[Any]:
    return [f"{field.name}-value" for field in dataclasses.fields(cls)]


EVENTS = _event_classes()


def test_every_event_class_is_found() -> None:
    names = {cls.__name__ for cls in EVENTS}
    assert {"AttemptCompleted", "PipelineCompleted", "RetryScheduled", "TimeoutExpired"} <= names
    assert len(EVENTS) >= 10


@pytest.mark.parametrize("cls", EVENTS, ids=lambda cls: cls.__name__)
class TestFastNew:
    """``fast_new(cls)(*fields)`` is ``cls(*fields)``."""

    def test_the_same_fields_equality_hash_and_repr(self, cls: type[Event]) -> None:
        values = _values(cls)
        fast, slow = fast_new(cls)(*values), cls(*values)
        assert type(fast) is cls
        assert fast == slow
        assert hash(fast) == hash(slow)
        assert repr(fast) == repr(slow)
        assert dataclasses.astuple(fast) == tuple(values)

    def test_still_frozen(self, cls: type[Event]) -> None:
        event = fast_new(cls)(*_values(cls))
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.name = "changed"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            del event.name

    def test_copies_pickles_and_replaces_as_the_dataclass_does(self, cls: type[Event]) -> None:
        event = fast_new(cls)(*_values(cls))
        for other in (copy.copy(event), copy.deepcopy(event), pickle.loads(pickle.dumps(event))):
            assert type(other) is cls
            assert other == event
        changed = dataclasses.replace(event, name="other")
        assert type(changed) is cls
        assert changed.name == "other"

    def test_two_events_share_nothing(self, cls: type[Event]) -> None:
        make = fast_new(cls)
        first, second = make(*_values(cls)), make(*[f"{v}-2" for v in _values(cls)])
        assert first != second
        assert first == cls(*_values(cls))


def test_the_hot_path_events_use_it() -> None:
    from stoic._pipeline import pipeline
    from stoic._retry import events

    assert events.new_attempt_completed("r", 2, 0.5, "failure", None) == events.AttemptCompleted(
        "r", 2, 0.5, "failure", None
    )
    completed = pipeline._new_pipeline_completed("p", 1.0, "success", None)
    assert completed == pipeline.PipelineCompleted("p", 1.0, "success", None)
