"""Retry with exponential backoff, written the way the founding document shows it.

A simulated API (no network) resets half of its connections. ``retry_with_backoff`` and the
``@async_retry`` decorator ride through it; a call that keeps failing re-raises the real
error with a note of what was tried.

Runs on stoic's virtual time, so the seconds of backoff take no real time:

    python examples/retry.py
"""

from __future__ import annotations

import asyncio
import random

from stoic import async_retry, retry_with_backoff
from stoic.testing import run

rng = random.Random(11)


def now() -> float:
    return asyncio.get_running_loop().time()


async def fetch(url: str) -> str:
    await asyncio.sleep(0.05)
    if rng.random() < 0.5:
        raise ConnectionError(f"{url}: connection reset")
    return f"<html>{url}</html>"


async def fetch_with_retry(url: str) -> str:
    return await retry_with_backoff(
        lambda: fetch(url),
        max_retries=3,
        retryable_exceptions=(ConnectionError, asyncio.TimeoutError),
    )


@async_retry(max_retries=3, exceptions=(ConnectionError,))
async def fetch_data(url: str) -> dict[str, str]:
    return {"url": url, "body": await fetch(url)}


async def always_down(url: str) -> str:
    raise ConnectionError(f"{url}: no route to host")


async def main() -> None:
    for url in ("https://example.test/a", "https://example.test/b"):
        start = now()
        body = await fetch_with_retry(url)
        print(f"retry_with_backoff: {body} after {now() - start:.2f}s")
    data = await fetch_data("https://example.test/c")
    print(f"@async_retry: {data}")
    try:
        await retry_with_backoff(lambda: always_down("https://example.test/d"), max_retries=2)
    except ConnectionError as exc:
        print(f"gave up with the real error: {exc!r}")
        print(f"  note: {exc.__notes__[-1]}")


if __name__ == "__main__":
    run(main())
