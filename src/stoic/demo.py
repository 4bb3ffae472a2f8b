"""``python -m stoic.demo``: stoic's patterns at work against a simulated flaky service.

Runs on virtual time (``stoic.testing``): the timeline shows the seconds the patterns waited,
while the whole demo takes a fraction of a second. The service is seeded, so every run
prints the same story.
"""

from __future__ import annotations

import asyncio
import random
import sys

from stoic import _clock
from stoic._circuit_breaker import CircuitBreaker, CircuitStateChanged
from stoic._pipeline import Pipeline
from stoic._rate_limit import RateLimiter
from stoic._retry import Retry, RetryGaveUp, RetryScheduled
from stoic._timeout import timeout
from stoic.backoff import constant, exponential
from stoic.exceptions import CircuitBreakerOpen, TimeoutExceeded
from stoic.testing import run

__all__ = ["FlakyService", "main"]


class FlakyService:
    """A pretend remote service: fails a share of calls, sometimes hangs, has outages."""

    def __init__(
        self,
        *,
        failure_rate: float = 0.5,
        latency: float = 0.05,
        hang_rate: float = 0.0,
        seed: int = 7,
    ) -> None:
        self.failure_rate = failure_rate
        self.latency = latency
        self.hang_rate = hang_rate
        self.down_until = 0.0
        self.calls = 0
        self._random = random.Random(seed)

    def outage(self, seconds: float) -> None:
        """Refuse every call for the next ``seconds``."""
        self.down_until = _clock.now() + seconds

    async def fetch(self, key: str) -> str:
        self.calls += 1
        await asyncio.sleep(self.latency)
        if _clock.now() < self.down_until:
            raise ConnectionError(f"{key}: service unavailable")
        draw = self._random.random()
        if draw < self.hang_rate:
            await asyncio.sleep(3600)  # a call that never answers in useful time
        if draw < self.failure_rate:
            raise ConnectionError(f"{key}: connection reset")
        return f"value-of-{key}"


def say(message: str) -> None:
    print(f"  [t={_clock.now():7.3f}s] {message}")


def listener(event: object) -> None:
    """A listener: stoic's events, as they happen."""
    if isinstance(event, RetryScheduled):
        say(f"attempt {event.attempt} failed ({event.exception}); retrying in {event.delay:.3f}s")
    elif isinstance(event, RetryGaveUp):
        say(f"gave up after {event.attempt} attempts ({event.reason})")
    elif isinstance(event, CircuitStateChanged):
        say(f"breaker {event.old.value} -> {event.new.value} ({event.reason})")


async def demo_retry() -> None:
    print("\n1. Retry with exponential backoff and full jitter (service fails 50% of calls)")
    service = FlakyService(failure_rate=0.5)
    policy = Retry(attempts=6, on=ConnectionError, backoff=exponential(0.2), listeners=[listener])
    for key in ("alpha", "beta", "gamma"):
        value = await policy.call(service.fetch, key)
        say(f"{key} -> {value}")


async def demo_give_up() -> None:
    print("\n2. Giving up re-raises the real error, with a note of what was tried")
    service = FlakyService(failure_rate=1.0)
    policy = Retry(attempts=3, on=ConnectionError, backoff=constant(1.0), listeners=[listener])
    try:
        await policy.call(service.fetch, "delta")
    except ConnectionError as exc:
        say(f"caught {type(exc).__name__}: {exc} | {exc.__notes__[-1]}")


async def demo_timeouts() -> None:
    print("\n3. Per-attempt timeout inside retry, total timeout outside (service hangs 50%)")
    service = FlakyService(failure_rate=0.5, hang_rate=0.5, seed=3)
    per_attempt = timeout(1.0)
    policy = Retry(
        attempts=5, on=(ConnectionError, TimeoutError), backoff=constant(0.5), listeners=[listener]
    )

    async def one_attempt() -> str:
        return await per_attempt.call(service.fetch, "epsilon")

    async with timeout(10.0):
        value = await policy.call(one_attempt)
    say(f"epsilon -> {value}")


async def demo_deadline() -> None:
    print("\n4. A 2 s total timeout around a retry with 10 s backoff: no wait past the deadline")
    service = FlakyService(failure_rate=1.0)
    policy = Retry(attempts=10, on=ConnectionError, backoff=constant(10.0), listeners=[listener])
    try:
        async with timeout(2.0):
            await policy.call(service.fetch, "zeta")
    except (ConnectionError, TimeoutExceeded) as exc:
        say(f"caught {type(exc).__name__} at once instead of sleeping 10 s past the deadline")


async def demo_pipeline() -> None:
    print("\n5. A pipeline (total timeout, retry, breaker) through a 30 s outage")
    service = FlakyService(failure_rate=0.0)
    payments = Pipeline(
        timeout(5.0),
        Retry(attempts=3, on=ConnectionError, backoff=constant(0.5)),
        CircuitBreaker(failure_threshold=4, break_duration=10.0, name="payments-api"),
        name="payments",
        listeners=[listener],
    )
    service.outage(30.0)
    refused = 0
    for second in range(40):
        try:
            await payments.call(service.fetch, f"order-{second}")
        except CircuitBreakerOpen:
            refused += 1  # refused at once: the dead service is not called
        except ConnectionError:
            pass
        await asyncio.sleep(1.0)
    say(f"40 calls, {refused} refused by the open breaker, {service.calls} reached the service")


async def demo_rate_limiter() -> None:
    print("\n6. A rate limiter: 5 calls per second, a burst of 2, callers queue for their turn")
    limiter = RateLimiter(5, burst=2, max_wait=None)
    started = _clock.now()
    turns = []
    for _ in range(8):
        await limiter.call(asyncio.sleep, 0)
        turns.append(f"{_clock.now() - started:.1f}")
    say(f"8 calls started at t+ {', '.join(turns)} s")


async def demo_http() -> None:
    print("\n7. An HTTP client (httpx) that honours Retry-After and never retries a 404 or a POST")
    try:
        import httpx

        from stoic.integrations.httpx import ResilientTransport
    except ImportError:
        say("skipped: httpx is not installed (pip install 'stoic[httpx]')")
        return
    answers = {
        "/items": iter([(503, {"Retry-After": "2"}), (200, {})]),
        "/missing": iter([(404, {})]),
        "/orders": iter([(503, {}), (200, {})]),
    }
    sent: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:  # stands in for the network
        sent.append(f"{request.method} {request.url.path}")
        status, headers = next(answers[request.url.path])
        return httpx.Response(status, headers=headers)

    transport = ResilientTransport(httpx.MockTransport(api))
    async with httpx.AsyncClient(transport=transport, base_url="https://api.example") as client:
        started = _clock.now()
        items = await client.get("/items")
        say(f"GET /items -> {items.status_code} after {_clock.now() - started:.1f} s (Retry-After)")
        missing = await client.get("/missing")
        say(f"GET /missing -> {missing.status_code}, sent once: a 404 is an answer")
        order = await client.post("/orders", json={"sku": 1})
        say(f"POST /orders -> {order.status_code}, sent once: no Idempotency-Key")
    say(f"requests sent: {sent}")


async def _main() -> None:
    print("stoic demo: a simulated flaky service, on virtual time")
    demos = (
        demo_retry,
        demo_give_up,
        demo_timeouts,
        demo_deadline,
        demo_pipeline,
        demo_rate_limiter,
        demo_http,
    )
    for demo in demos:
        await demo()
    print("\ndone.")


def main() -> int:
    run(_main())
    return 0


if __name__ == "__main__":
    sys.exit(main())
