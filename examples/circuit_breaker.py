"""A circuit breaker in front of a flaky service: open, wait, probe, close.

Run it with ``python examples/circuit_breaker.py``. The service is simulated in this file (no
network): healthy, then down from t=10s to t=70s, then healthy again. A client asks it for a
page every 4 seconds through a breaker configured the way the seed document shows. The story
spans two minutes of event-loop time but runs instantly on stoic's virtual clock
(``stoic.testing.run``); swap in ``asyncio.run`` to watch it in real time.
"""

from __future__ import annotations

import asyncio

from stoic import CircuitBreaker, CircuitBreakerConfig, CircuitBreakerOpen, CircuitStateChanged
from stoic.testing import run

OUTAGE = (10.0, 70.0)  # seconds of loop time during which the service fails
START = 0.0  # loop time when main() began
calls_reaching_service = 0


def elapsed() -> float:
    """Seconds since main() began."""
    return asyncio.get_running_loop().time() - START


async def fetch(url: str) -> str:
    """The simulated service: 0.2 s per request, ConnectionError during the outage."""
    global calls_reaching_service
    calls_reaching_service += 1
    await asyncio.sleep(0.2)
    if OUTAGE[0] <= elapsed() < OUTAGE[1]:
        raise ConnectionError(f"{url}: connection refused")
    return f"200 OK {url}"


def report(event: object) -> None:
    if isinstance(event, CircuitStateChanged):
        print(f"t={elapsed():6.1f}s  ** {event.old.value} -> {event.new.value} ({event.reason})")


# As in the seed; keyword options (a name, a listener) can be given next to the config.
breaker = CircuitBreaker(
    CircuitBreakerConfig(failure_threshold=5, timeout=30.0), name="pages", listeners=[report]
)


async def fetch_with_breaker(url: str) -> str:
    return await breaker.call(fetch, url)


async def main() -> None:
    global START
    START = asyncio.get_running_loop().time()
    for request in range(32):
        url = f"https://example.test/page/{request}"
        try:
            body = await fetch_with_breaker(url)
            outcome = body
        except CircuitBreakerOpen as exc:
            outcome = f"rejected at once, retry after {exc.retry_after:.1f}s"
        except ConnectionError as exc:
            outcome = f"failed: {exc}"
        print(f"t={elapsed():6.1f}s  [{breaker.state.value:>9}] {outcome}")
        await asyncio.sleep(4.0)
    stats = breaker.statistics()
    print(
        f"\n{calls_reaching_service} of 32 requests reached the service; "
        f"{stats.rejected_calls} were rejected without calling it; "
        f"the breaker opened {stats.times_opened} time(s) and is now {stats.state.value}."
    )


if __name__ == "__main__":
    run(main())
