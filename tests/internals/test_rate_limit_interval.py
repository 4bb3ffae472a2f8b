"""Internals of the rate limiter: the turn interval is held in integer nanoseconds."""

from __future__ import annotations

from stoic._rate_limit import RateLimiter


def test_the_interval_is_the_exact_nanoseconds_of_the_decimals_written() -> None:
    # 0.1 s at 1 call per 0.1 s is 100,000,000 ns, not the binary float's 100,000,001.
    assert RateLimiter(1, per=0.1, burst=1)._state.interval == 100_000_000
