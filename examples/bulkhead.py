"""Bulkhead: isolate a slow external API so a burst cannot tie up the whole service.

A simulated API (no network) answers in 1-4 seconds and sometimes fails. A burst of 100
requests hits it through a bulkhead of 10 running + 50 waiting: 60 are served in order, 40
are shed at once. Then the API stalls and queued callers give up after the 30 s wait limit.

Runs on stoic's virtual time, so the minutes it simulates take a fraction of a second:

    python examples/bulkhead.py
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

from stoic import Bulkhead, BulkheadFull, CallRejectedByBulkhead, Event
from stoic.testing import run


def now() -> float:
    return asyncio.get_running_loop().time()


class SimulatedAPI:
    """A stand-in for an HTTP API: slow, a little flaky, and able to stall."""

    def __init__(self, seed: int = 7) -> None:
        self._rng = random.Random(seed)
        self.stalled = False
        self.in_flight = 0
        self.peak_in_flight = 0

    async def post(self, path: str, json: dict[str, Any]) -> dict[str, Any]:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(120 if self.stalled else self._rng.uniform(1, 4))
            if self._rng.random() < 0.1:
                raise ConnectionError(f"POST {path}: connection reset")
            return {"ok": True, "id": json["id"]}
        finally:
            self.in_flight -= 1


http_client = SimulatedAPI()
rejections: Counter[str] = Counter()


def count_rejections(event: Event) -> None:
    if isinstance(event, CallRejectedByBulkhead):
        rejections[event.reason] += 1


# Usage - isolate external service calls
external_api_bulkhead = Bulkhead(
    max_concurrent=10,  # Max 10 concurrent calls
    max_waiting=50,  # Max 50 in queue
    timeout=30.0,  # Wait at most 30s for a slot
    name="external-api",
    listeners=[count_rejections],
)


async def call_external_api(data: dict[str, Any]) -> dict[str, Any]:
    return await external_api_bulkhead.call(lambda: http_client.post("/api", json=data))


async def burst(size: int) -> Counter[str]:
    outcomes: Counter[str] = Counter()

    async def one(i: int) -> None:
        try:
            await call_external_api({"id": i})
            outcomes["served"] += 1
        except BulkheadFull:
            outcomes["shed by the bulkhead"] += 1
        except ConnectionError:
            outcomes["failed in the API"] += 1

    async with asyncio.TaskGroup() as tg:
        for i in range(size):
            tg.create_task(one(i))
    return outcomes


async def main() -> None:
    start = now()
    print(f"{external_api_bulkhead!r}\n")

    print("1) A burst of 100 requests against a healthy but slow API")
    outcomes = await burst(100)
    print(f"   outcomes: {dict(outcomes)}")
    print(f"   peak concurrent calls seen by the API: {http_client.peak_in_flight}")
    print(f"   rejections by reason: {dict(rejections)}")
    print(f"   finished after {now() - start:.1f}s (virtual)\n")

    print("2) The API stalls (120 s per call): queued callers give up after 30 s")
    http_client.stalled = True
    rejections.clear()
    phase = now()
    outcomes = await burst(30)
    print(f"   outcomes: {dict(outcomes)}")
    print(f"   rejections by reason: {dict(rejections)}")
    print(f"   finished after {now() - phase:.1f}s (virtual)\n")

    stats = external_api_bulkhead.statistics()
    print(f"3) Afterwards: {stats}")
    assert stats.running == stats.waiting == 0


if __name__ == "__main__":
    run(main())
