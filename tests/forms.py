"""Every behaviour test of a strategy, run through each of its forms.

A strategy's ``call``, its decorator, ``async with`` and the pipeline's fused layer are
separate code (each a copy of the hot path, for speed). A test module that sets
``EVERY_FORM = forms_of(SomeStrategy, ...)`` has each of its async tests run once per form: while
it runs, ``SomeStrategy.call`` is routed through that form, so a test written against
``.call`` checks them all. ``@pytest.mark.forms("call", ...)`` keeps a test to the forms it
names (tests of one form's own surface, or of results, which ``async with`` has not). Sync
tests run with ``.call`` alone. In the pipeline form the strategy's neighbours never act (a
retry that retries nothing, a breaker that counts nothing, a bulkhead that never fills): how
the fused layer makes strategies act on each other is ``tests/pipeline/test_fused.py``'s.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from stoic import Bulkhead, CircuitBreaker, Pipeline, Retry


class NeverRaised(Exception):
    """What the neighbours of a strategy under test retry and count: nothing, in effect."""


@dataclass(frozen=True)
class Forms:
    cls: type
    names: tuple[str, ...]
    # The pipeline the strategy under test runs in for the "pipeline" form.
    pipeline: Callable[[Any], Pipeline] | None


def forms_of(cls: type, *names: str, pipeline: Callable[[Any], Pipeline] | None = None) -> Forms:
    return Forms(cls, ("call", *names), pipeline)


# Neighbours that never retry, never trip and never fill, so they change no outcome: the
# strategy under test decides everything, now through the fused layer (when it is plain).
def around_breaker(breaker: CircuitBreaker) -> Pipeline:
    return Pipeline(Retry(on=NeverRaised), breaker, Bulkhead(1_000_000))


def around_bulkhead(bulkhead: Bulkhead) -> Pipeline:
    return Pipeline(Retry(on=NeverRaised), CircuitBreaker(record=NeverRaised), bulkhead)


def around_retry(retry: Retry) -> Pipeline:
    return Pipeline(retry, CircuitBreaker(record=NeverRaised), Bulkhead(1_000_000))


def route(monkeypatch: pytest.MonkeyPatch, forms: Forms, form: str) -> None:
    """Route ``forms.cls.call`` through ``form`` for the rest of the test."""
    if form == "call":
        return
    original = forms.cls.call
    pipelines: dict[int, tuple[Any, Pipeline]] = {}

    async def call(
        self: Any, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any
    ) -> Any:
        if type(self) is not forms.cls:  # a subclass's own ``call`` (or one calling super)
            return await original(self, fn, *args, **kwargs)
        if form == "decorator":
            # ``wrap``, as pipelines compose: the decorator without its async-function check,
            # so a sync function reaches the call as it does through ``call``.
            return await self.wrap(fn)(*args, **kwargs)
        if form == "async with":
            async with self:
                return await fn(*args, **kwargs)
        if form == "attempt loop":
            async for attempt in self:
                with attempt:
                    return await fn(*args, **kwargs)
        assert form == "pipeline"
        assert forms.pipeline is not None
        entry = pipelines.get(id(self))
        if entry is None:  # one pipeline per strategy (held here, so its id stays unique)
            entry = pipelines[id(self)] = (self, forms.pipeline(self))
        return await entry[1].call(fn, *args, **kwargs)

    monkeypatch.setattr(forms.cls, "call", call)


#: For tests of what a call returns: ``async with`` has a block, not a result.
sees_results = pytest.mark.forms("call", "decorator", "pipeline")
