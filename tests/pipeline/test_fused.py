"""The fused layer (``Pipeline(Retry, CircuitBreaker, Bulkhead)`` in one coroutine) behaves
exactly as the strategies nested one inside another.

Random scripts of concurrent calls (successes, retried and recorded failures, ignored ones,
sync functions, cancellations, slow attempts that fill the bulkhead and trip the breaker) run
once through a fused pipeline and once through the nested ``.call`` forms, on fresh
strategies and virtual time; every outcome, note, event and final count must be equal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from stoic._bulkhead import Bulkhead
from stoic._circuit_breaker import CircuitBreaker
from stoic._events import Event
from stoic._pipeline import Pipeline
from stoic._retry import Retry
from stoic._timeout import timeout
from stoic.backoff import constant
from stoic.testing import VirtualClock

OUTCOMES = ("ok", "retried", "recorded", "ignored", "sync", "misclassified")

# One call: the outcome of each attempt (the last repeats), how long each attempt takes,
# when it starts, and when (if ever) its task is cancelled.
calls = st.tuples(
    st.lists(st.sampled_from(OUTCOMES), min_size=1, max_size=4),
    st.sampled_from([0.0, 0.05, 0.3]),
    st.sampled_from([0.0, 0.01, 0.1, 0.5, 1.2]),
    st.sampled_from([None, 0.02, 0.2]),
)


class Script:
    """A callable returning an awaitable whose attempts follow ``outcomes``."""

    def __init__(self, outcomes: list[str], hold: float) -> None:
        self.outcomes = outcomes
        self.hold = hold
        self.attempt = 0

    def __repr__(self) -> str:  # the same in both runs: it is in NotAwaitable's message
        return "script"

    def __call__(self) -> Any:
        outcome = self.outcomes[min(self.attempt, len(self.outcomes) - 1)]
        self.attempt += 1
        if outcome == "sync":
            return 42  # not awaitable: stoic's NotAwaitable, counted nowhere
        return self._run(outcome)

    async def _run(self, outcome: str) -> str:
        await asyncio.sleep(self.hold)
        if outcome == "retried":
            raise ConnectionError("retried")
        if outcome == "recorded":
            raise ValueError("recorded")
        if outcome == "ignored":
            raise KeyError("ignored")
        if outcome == "misclassified":
            raise IndexError("its classifier raises")
        return "ok"


def _record(exc: BaseException) -> bool:
    """The breaker's ``record``, failing on ``IndexError`` with an error the retry retries."""
    if isinstance(exc, IndexError):
        raise ConnectionError("the classifier failed")
    return True


def _strategies(events: list[Event]) -> tuple[Retry, CircuitBreaker, Bulkhead]:
    return (
        Retry(attempts=3, on=ConnectionError, backoff=constant(0.05)),
        CircuitBreaker(
            failure_threshold=3,
            timeout=0.4,
            ignore=KeyError,
            record=_record,
            listeners=[events.append],
        ),
        Bulkhead(2, max_waiting=1, max_wait=0.1, listeners=[events.append]),
    )


def _trace(
    script: list[tuple[list[str], float, float, float | None]],
    runner: Callable[[Retry, CircuitBreaker, Bulkhead, Script], Any],
    start: float,
) -> list[Any]:
    events: list[Event] = []
    retry, breaker, bulkhead = _strategies(events)
    seen: list[Any] = []

    async def one(index: int, outcomes: list[str], hold: float, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            result = await runner(retry, breaker, bulkhead, Script(outcomes, hold))
        except asyncio.CancelledError:
            seen.append((index, "cancelled"))
            raise
        except Exception as exc:
            seen.append((index, type(exc).__name__, str(exc), getattr(exc, "__notes__", [])))
        else:
            seen.append((index, result))

    async def main() -> None:
        tasks = []
        for index, (outcomes, hold, delay, cancel_at) in enumerate(script):
            task = asyncio.create_task(one(index, outcomes, hold, delay))
            if cancel_at is not None:
                asyncio.get_running_loop().call_later(delay + cancel_at, task.cancel)
            tasks.append(task)
        await asyncio.gather(*tasks, return_exceptions=True)
        # On the virtual clock, which the breaker's ``retry_after`` reads.
        seen.extend([events, breaker.statistics(), bulkhead.statistics()])

    VirtualClock(start).run(main())
    return seen


def _nested(retry: Retry, breaker: CircuitBreaker, bulkhead: Bulkhead, fn: Script) -> Any:
    return retry.call(breaker.call, bulkhead.call, fn)


def _fused(retry: Retry, breaker: CircuitBreaker, bulkhead: Bulkhead, fn: Script) -> Any:
    return Pipeline(retry, breaker, bulkhead).call(fn)


def _fused_pair(retry: Retry, breaker: CircuitBreaker, bulkhead: Bulkhead, fn: Script) -> Any:
    return Pipeline(breaker, bulkhead).call(fn)


def _nested_pair(retry: Retry, breaker: CircuitBreaker, bulkhead: Bulkhead, fn: Script) -> Any:
    return breaker.call(bulkhead.call, fn)


def _fused_no_bulkhead(retry: Retry, breaker: CircuitBreaker, _: Bulkhead, fn: Script) -> Any:
    return Pipeline(retry, breaker).call(fn)


def _nested_no_bulkhead(retry: Retry, breaker: CircuitBreaker, _: Bulkhead, fn: Script) -> Any:
    return retry.call(breaker.call, fn)


def _fused_no_breaker(retry: Retry, _: CircuitBreaker, bulkhead: Bulkhead, fn: Script) -> Any:
    return Pipeline(retry, bulkhead).call(fn)


def _nested_no_breaker(retry: Retry, _: CircuitBreaker, bulkhead: Bulkhead, fn: Script) -> Any:
    return retry.call(bulkhead.call, fn)


def _fused_in_timeouts(
    retry: Retry, breaker: CircuitBreaker, bulkhead: Bulkhead, fn: Script
) -> Any:
    return Pipeline(timeout(10), retry, breaker, bulkhead, timeout(5)).call(fn)


def _nested_in_timeouts(
    retry: Retry, breaker: CircuitBreaker, bulkhead: Bulkhead, fn: Script
) -> Any:
    return timeout(10).call(retry.call, breaker.call, bulkhead.call, timeout(5).call, fn)


@pytest.mark.parametrize("start", [0.0, 1_000_003.7231])
@pytest.mark.parametrize(
    ("fused", "nested"),
    [
        (_fused, _nested),
        (_fused_pair, _nested_pair),
        (_fused_no_bulkhead, _nested_no_bulkhead),
        (_fused_no_breaker, _nested_no_breaker),
        (_fused_in_timeouts, _nested_in_timeouts),
    ],
    ids=["three", "breaker-bulkhead", "retry-breaker", "retry-bulkhead", "inside-timeouts"],
)
@settings(max_examples=100, deadline=None)
@given(script=st.lists(calls, min_size=1, max_size=12))
def test_the_fused_stack_behaves_as_the_nested_one(
    script: list[tuple[list[str], float, float, float | None]],
    fused: Callable[..., Any],
    nested: Callable[..., Any],
    start: float,
) -> None:
    assert _trace(script, fused, start) == _trace(script, nested, start)


def test_the_scripts_reach_every_path() -> None:
    """The comparison above is only worth what the scripts exercise: one known script opens
    the breaker, fills the bulkhead, retries, cancels and passes a sync function."""
    script: list[tuple[list[str], float, float, float | None]] = [
        (["ok"], 0.0, 0.0, None),
        (["retried", "ok"], 0.05, 0.0, None),  # retried; its second attempt finds it open
        (["sync"], 0.0, 0.0, None),
        (["recorded"], 0.3, 0.0, None),
        (["recorded"], 0.3, 0.0, None),
        (["ok"], 0.3, 0.0, None),  # rejected: every slot and the queue taken
        (["ok"], 0.3, 0.0, None),  # rejected too, which the breaker counts: it opens
        (["ok"], 0.0, 0.6, None),  # rejected: open
        (["ok"], 0.3, 1.2, 0.1),  # a probe, cancelled
        (["misclassified", "ok"], 0.0, 3.0, None),  # the classifier's error is retried
    ]
    *seen, events, breaker, bulkhead = _trace(script, _fused, 0.0)
    kinds = {type(event).__name__ for event in events}
    assert {"CircuitStateChanged", "CallRejectedByBulkhead", "CallRejectedByBreaker"} <= kinds
    outcomes = {entry[0]: entry[1:] for entry in seen}
    assert outcomes[0] == ("ok",)
    assert outcomes[1][-1] == ["stoic: not retried: attempt 2 raised it"]
    assert outcomes[2][0] == "NotAwaitable"
    assert outcomes[8] == ("cancelled",)
    assert outcomes[9] == ("ok",)
    assert breaker.times_opened >= 1
    assert bulkhead.rejected >= 2
