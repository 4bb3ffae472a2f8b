"""Partial failure: fetch a batch of URLs, keep what worked, stop early when too much fails.

Written the way the founding document shows it: ``fetch_all_with_partial_failure(urls,
max_failures)`` returns ``(successes, failures)``; here reaching ``max_failures`` really
cancels the fetches still running. A simulated service (no network) fails some URLs and is
slow on others.

Runs on stoic's virtual time:

    python examples/partial_failure.py
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

from stoic import gather_outcomes, gather_partial, map_partial
from stoic.testing import run

rng = random.Random(5)
cancelled: list[str] = []


def now() -> float:
    return asyncio.get_running_loop().time()


async def fetch(url: str) -> str:
    try:
        await asyncio.sleep(rng.uniform(0.1, 3.0))
    except asyncio.CancelledError:
        cancelled.append(url)
        raise
    if url.endswith(("3", "7")):
        raise ConnectionError(f"{url}: connection refused")
    return f"<page {url}>"


async def fetch_all_with_partial_failure(
    urls: list[str], max_failures: int | None = None
) -> tuple[list[str], list[Exception]]:
    return await gather_partial(*(fetch(url) for url in urls), max_failures=max_failures)


async def main() -> None:
    urls = [f"https://example.test/{i}" for i in range(10)]

    pages, errors = await fetch_all_with_partial_failure(urls)
    print(f"all of them: {len(pages)} pages, {len(errors)} failures: {errors}")

    start = now()
    pages, errors = await fetch_all_with_partial_failure(urls, max_failures=1)
    print(
        f"max_failures=1: stopped after {now() - start:.2f}s with {len(pages)} pages; "
        f"{len(cancelled)} fetches still running were cancelled"
    )

    outcomes = await gather_outcomes(*(fetch(url) for url in urls[:4]))
    for url, outcome in zip(urls[:4], outcomes, strict=True):
        print(f"  {url}: {outcome.value if outcome.ok else f'failed: {outcome.error}'}")

    many = (f"https://example.test/item/{i}" for i in range(200))  # pulled lazily
    start = now()
    pages, errors = await map_partial(fetch, many, concurrency=20)
    print(
        f"map_partial over 200 items, 20 at a time: {len(pages)} pages, {len(errors)} "
        f"failures in {now() - start:.1f}s of simulated time"
    )

    pulled = 0

    def sitemap() -> Iterator[str]:
        nonlocal pulled
        for i in range(1_000_000):
            pulled += 1
            yield f"https://example.test/page/{i}"

    pages, errors = await map_partial(fetch, sitemap(), concurrency=20, max_failures=5)
    print(
        f"map_partial over a million-url sitemap, max_failures=5: stopped with "
        f"{len(pages)} pages and {len(errors)} failures, having pulled only {pulled:,} urls"
    )


if __name__ == "__main__":
    run(main())
