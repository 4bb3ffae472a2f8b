"""What stoic's policies do to a *system*: a fleet of clients and one server, on virtual time.

``make efficacy`` (or ``python benchmarks/efficacy.py``) runs each scenario once per policy and
prints a markdown table. Everything runs on stoic's virtual clock (``stoic.testing.run``), so
minutes of simulated traffic take seconds, and a seed makes each run repeat exactly.

The model:
- **Server**: ``capacity`` calls served at once, a queue of ``queue`` more (beyond: refused at
  once with ``ConnectionError``, as an overloaded server sheds load); service times lognormal
  (median ``service``), 1% of them 1 s. Modes: ``healthy``; ``outage`` (every call refused
  after 1 ms); ``brownout`` (a share ``fail`` of calls fails after their service time).
- **Clients**: ``clients`` of them, each sending logical requests as a Poisson process of
  ``rate`` a second, each request through the client's own policy object (what a process
  holds), abandoned after 10 s.
- **Metrics**: amplification (server attempts per logical request), success (share of logical
  requests answered), goodput (answers a second as a share of capacity / median service
  time), p50 and p99 of answered requests.

This is the first part of the issue's simulator: amplification, success and goodput for the
policies stoic has (naive retries, ``standard_pipeline``, a retry budget, the adaptive
throttle). Hedging, adaptive concurrency and the reference implementations of the anchors
come next.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from stoic import (
    AdaptiveThrottle,
    Pipeline,
    Retry,
    RetryBudget,
    standard_pipeline,
)
from stoic.backoff import exponential
from stoic.exceptions import RejectedCall
from stoic.testing import run as run_virtual


@dataclass
class Server:
    capacity: int
    queue: int
    service: float
    mode: str = "healthy"
    fail: float = 0.0
    seed: int = 1
    attempts: int = 0
    busy: int = 0
    waiting: int = 0
    _slots: asyncio.Semaphore = field(init=False)
    _random: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.capacity)
        self._random = random.Random(self.seed)

    def _service_time(self) -> float:
        if self._random.random() < 0.01:
            return 1.0
        return self._random.lognormvariate(math.log(self.service), 0.5)

    async def call(self) -> str:
        self.attempts += 1
        if self.mode == "outage":
            await asyncio.sleep(0.001)
            raise ConnectionError("refused")
        if self.busy >= self.capacity and self.waiting >= self.queue:
            raise ConnectionError("overloaded: shed")
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.busy += 1
        try:
            await asyncio.sleep(self._service_time())
            if self.mode == "brownout" and self._random.random() < self.fail:
                raise ConnectionError("brownout")
            return "ok"
        finally:
            self.busy -= 1
            self._slots.release()


Policy = Callable[[Callable[[], Awaitable[str]]], Awaitable[str]]


def _none() -> Policy:
    async def call(fn: Callable[[], Awaitable[str]]) -> str:
        return await fn()

    return call


def _naive() -> Policy:
    return Retry(attempts=4, on=ConnectionError, backoff=exponential(0.1, jitter="full")).call


def _standard() -> Policy:
    return standard_pipeline().call


def _budget() -> Policy:
    policy = Retry(
        attempts=4,
        on=ConnectionError,
        backoff=exponential(0.1, jitter="full"),
        budget=RetryBudget(ratio=0.2, min_per_second=0.1, ttl=10.0),
    )
    return policy.call


def _throttle() -> Policy:
    throttle = AdaptiveThrottle(record=ConnectionError)
    retry = Retry(attempts=4, on=ConnectionError, backoff=exponential(0.1, jitter="full"))
    return Pipeline(retry, throttle).call


POLICIES: dict[str, Callable[[], Policy]] = {
    "no policy": _none,
    "naive retry (4 attempts)": _naive,
    "`standard_pipeline()`": _standard,
    "retry + `RetryBudget(0.2, min_per_second=0.1)`": _budget,
    "retry + `AdaptiveThrottle()`": _throttle,
}


@dataclass
class Scenario:
    name: str
    clients: int
    rate: float
    duration: float
    capacity: int
    queue: int
    service: float
    mode: str
    fail: float = 0.0


SCENARIOS = [
    Scenario("outage: 100 clients at 1 req/s, server down", 100, 1.0, 60.0, 50, 50, 0.05, "outage"),
    Scenario("brownout: 20% of calls fail", 20, 5.0, 60.0, 50, 50, 0.05, "brownout", 0.2),
    Scenario("overload: 3x capacity", 30, 100.0, 60.0, 50, 50, 0.05, "healthy"),
]


@dataclass
class Result:
    logical: int
    answered: int
    attempts: int
    latencies: list[float]
    capacity_per_second: float
    duration: float

    def row(self) -> list[str]:
        lat = sorted(self.latencies)
        p50 = lat[len(lat) // 2] * 1000 if lat else float("nan")
        p99 = lat[int(len(lat) * 0.99)] * 1000 if lat else float("nan")
        goodput = self.answered / self.duration / self.capacity_per_second
        return [
            f"{self.attempts / max(1, self.logical):.2f}x",
            f"{self.answered / max(1, self.logical):.1%}",
            f"{goodput:.1%}",
            f"{p50:,.0f} ms",
            f"{p99:,.0f} ms",
        ]


async def simulate(scenario: Scenario, make_policy: Callable[[], Policy], seed: int) -> Result:
    server = Server(
        scenario.capacity, scenario.queue, scenario.service, scenario.mode, scenario.fail, seed
    )
    loop = asyncio.get_running_loop()
    start = loop.time()
    latencies: list[float] = []
    counts = {"logical": 0, "answered": 0}
    requests: set[asyncio.Task[Any]] = set()

    async def one(policy: Policy) -> None:
        began = loop.time()
        try:
            async with asyncio.timeout(10.0):
                await policy(server.call)
        except (ConnectionError, RejectedCall, TimeoutError):
            return
        counts["answered"] += 1
        latencies.append(loop.time() - began)

    async def client(index: int) -> None:
        policy = make_policy()
        draws = random.Random(seed * 1000 + index)
        while True:
            await asyncio.sleep(draws.expovariate(scenario.rate))
            if loop.time() - start >= scenario.duration:
                return
            counts["logical"] += 1
            task = asyncio.create_task(one(policy))
            requests.add(task)
            task.add_done_callback(requests.discard)

    await asyncio.gather(*(client(i) for i in range(scenario.clients)))
    if requests:
        await asyncio.gather(*requests)
    return Result(
        counts["logical"],
        counts["answered"],
        server.attempts,
        latencies,
        scenario.capacity / scenario.service,
        scenario.duration,
    )


def report(scenarios: list[Scenario], seed: int) -> str:
    lines = [
        "| scenario | policy | amplification | success | goodput | p50 | p99 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for scenario in scenarios:
        for label, make in POLICIES.items():
            result = run_virtual(simulate(scenario, make, seed))
            lines.append(f"| {scenario.name} | {label} | " + " | ".join(result.row()) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="5 s of traffic, for a smoke test")
    options = parser.parse_args(argv)
    scenarios = SCENARIOS
    if options.quick:
        scenarios = [
            Scenario(
                s.name,
                max(1, s.clients // 10),
                s.rate,
                5.0,
                s.capacity,
                s.queue,
                s.service,
                s.mode,
                s.fail,
            )
            for s in SCENARIOS
        ]
    print(report(scenarios, options.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
