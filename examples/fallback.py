"""Fallback: degrade gracefully when the primary source fails.

Simulated sources (no network): a primary API that is down half the time, a secondary API
that is slower, and a local cache. Shows ``with_fallback``, ``with_fallback_chain`` and the
``Fallback`` strategy (value, handler and result-based triggers).

Runs on stoic's virtual time, so it takes a fraction of a second:

    python examples/fallback.py
"""

from __future__ import annotations

import asyncio
import random

from stoic import Event, Fallback, FallbackContext, with_fallback, with_fallback_chain
from stoic.testing import run

rng = random.Random(3)
CACHE = {"alice": {"name": "Alice", "source": "cache"}}


def now() -> float:
    return asyncio.get_running_loop().time()


async def fetch_from_primary_api(user: str) -> dict[str, str]:
    await asyncio.sleep(0.2)
    if rng.random() < 0.5:
        raise ConnectionError("primary API: connection refused")
    return {"name": user.title(), "source": "primary"}


async def fetch_from_secondary_api(user: str) -> dict[str, str]:
    await asyncio.sleep(1.5)
    if user not in CACHE:
        raise TimeoutError("secondary API: no answer")
    return {"name": user.title(), "source": "secondary"}


async def fetch_from_cache(user: str) -> dict[str, str]:
    await asyncio.sleep(0)
    entry = CACHE.get(user)
    if entry is None:
        raise LookupError(f"cache: no entry for {user!r}")
    return entry


def show(event: Event) -> None:
    print(f"   [event] {event}")


# The Fallback strategy as a decorator: an empty list when recommendations are unavailable.
@Fallback([], on=ConnectionError, name="recommendations", listeners=[show])
async def recommendations(user: str) -> list[str]:
    await asyncio.sleep(0.1)
    raise ConnectionError("recommender: 503")


# A handler computes the answer; on_result also replaces results we do not want to serve.
def stale_price(context: FallbackContext) -> float:
    print(f"   handler called: exception={context.exception!r}, result={context.result!r}")
    return 9.99


@Fallback(handler=stale_price, on_result=lambda price: price <= 0, name="price")
async def live_price(sku: str) -> float:
    await asyncio.sleep(0.05)
    return 0.0 if sku == "glitch" else 12.50


async def main() -> None:
    start = now()

    print("1) with_fallback: primary, else cache")
    for _ in range(4):
        result = await with_fallback(
            lambda: fetch_from_primary_api("alice"),
            lambda: fetch_from_cache("alice"),
            exceptions=(ConnectionError,),
        )
        print(f"   {result}")

    print("2) with_fallback_chain: primary, secondary, cache")
    for _ in range(3):
        result = await with_fallback_chain(
            lambda: fetch_from_primary_api("alice"),
            lambda: fetch_from_secondary_api("alice"),
            lambda: fetch_from_cache("alice"),
        )
        print(f"   {result}")

    print("3) with_fallback_chain when every source fails: the last error, with a note")
    try:
        await with_fallback_chain(
            lambda: fetch_from_secondary_api("bob"),
            lambda: fetch_from_cache("bob"),
        )
    except LookupError as exc:
        print(f"   {exc!r}, notes={exc.__notes__}")
        print(f"   chained from {exc.__context__!r}")

    print("4) Fallback strategy with a value")
    print(f"   recommendations: {await recommendations('alice')}")

    print("5) Fallback strategy with a handler and a result check")
    print(f"   price of 'book':   {await live_price('book')}")
    print(f"   price of 'glitch': {await live_price('glitch')}")

    print(f"\nDone after {now() - start:.2f}s (virtual)")


if __name__ == "__main__":
    run(main())
