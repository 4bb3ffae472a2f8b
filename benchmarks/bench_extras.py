"""Untimed measurements: bytes per breaker instance (tracemalloc) and ``import stoic`` time."""

from __future__ import annotations

import gc
import inspect
import os
import statistics
import subprocess
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench_registry import Unavailable


@dataclass
class Footprint:
    label: str
    library: str
    bytes_per_instance: float | None = None
    reason: str = ""


async def _bytes_per_instance(make: Callable[[int], Any], count: int) -> float:
    """Traced bytes still allocated after ``make(i)`` for i in range(count), per instance."""
    first = make(-1)  # warm lazily built caches (and check the builder works)
    if inspect.isawaitable(first):
        first = await first
    keep: list[Any] = [None] * count
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            made = make(i)
            keep[i] = (await made) if inspect.isawaitable(made) else made
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del keep
    return (after - before) / count


def _stoic_breaker_maker(**options: Any) -> Callable[[int], Any]:
    try:
        from stoic.circuit_breaker import CircuitBreaker
    except ImportError as error:
        raise Unavailable(f"stoic.circuit_breaker does not import: {error}") from error
    return lambda i: CircuitBreaker(**options)


def _stoic_shared_config() -> Callable[[int], Any]:
    from stoic.circuit_breaker import CircuitBreaker, CircuitBreakerConfig

    config = CircuitBreakerConfig()
    return lambda i: CircuitBreaker(config)


def _stoic_bulkhead() -> Callable[[int], Any]:
    from stoic.bulkhead import Bulkhead

    return lambda i: Bulkhead(max_concurrent=10)


def _stoic_retry() -> Callable[[int], Any]:
    from stoic.retry import Retry

    return lambda i: Retry()


def _hyx() -> Callable[[int], Any]:
    from hyx.circuitbreaker import consecutive_breaker

    return lambda i: consecutive_breaker()


def _pyresilience() -> Callable[[int], Any]:
    from pyresilience import CircuitBreaker, CircuitBreakerConfig

    return lambda i: CircuitBreaker(CircuitBreakerConfig())


def _stoic_rate_limiter() -> Callable[[int], Any]:
    from stoic.rate_limit import RateLimiter

    return lambda i: RateLimiter(100)


def _aiobreaker() -> Callable[[int], Any]:
    from aiobreaker import CircuitBreaker

    return lambda i: CircuitBreaker()


def _circuitbreaker() -> Callable[[int], Any]:
    from circuitbreaker import CircuitBreaker

    return lambda i: CircuitBreaker()


def _purgatory(count: int) -> Callable[[int], Any]:
    from purgatory import AsyncCircuitBreakerFactory

    factory = AsyncCircuitBreakerFactory()
    names = [f"circuit-{i}" for i in range(-1, count)]
    return lambda i: factory.get_breaker(names[i + 1])


FOOTPRINTS: list[tuple[str, str, Callable[[int], Callable[[int], Any]]]] = [
    ("stoic `CircuitBreaker()` (consecutive)", "stoic", lambda n: _stoic_breaker_maker()),
    (
        "stoic `CircuitBreaker(shared_config)` (consecutive)",
        "stoic",
        lambda n: _stoic_shared_config(),
    ),
    (
        "stoic `CircuitBreaker(trip='rate', window_size=100)`",
        "stoic",
        lambda n: _stoic_breaker_maker(trip="rate", window_size=100),
    ),
    (
        "stoic `CircuitBreaker(trip='rate', window_duration=60)` (10 buckets)",
        "stoic",
        lambda n: _stoic_breaker_maker(trip="rate", window_duration=60.0),
    ),
    ("stoic `Bulkhead(10)` (for scale)", "stoic", lambda n: _stoic_bulkhead()),
    ("stoic `Retry()` (for scale)", "stoic", lambda n: _stoic_retry()),
    ("stoic `RateLimiter(100)` (for scale)", "stoic", lambda n: _stoic_rate_limiter()),
    ("hyx `consecutive_breaker()`", "hyx", lambda n: _hyx()),
    (
        "pyresilience `CircuitBreaker(CircuitBreakerConfig())`",
        "pyresilience",
        lambda n: _pyresilience(),
    ),
    ("aiobreaker `CircuitBreaker()`", "aiobreaker", lambda n: _aiobreaker()),
    ("circuitbreaker `CircuitBreaker()`", "circuitbreaker", lambda n: _circuitbreaker()),
    ("purgatory one circuit (`factory.get_breaker(name)`)", "purgatory", _purgatory),
]


async def measure_footprints(count: int) -> list[Footprint]:
    results = []
    for label, library, factory in FOOTPRINTS:
        footprint = Footprint(label, library)
        try:
            footprint.bytes_per_instance = await _bytes_per_instance(factory(count), count)
        except (ImportError, Unavailable) as error:
            footprint.reason = (
                f"not installed ({error})" if isinstance(error, ImportError) else str(error)
            )
        except Exception as error:
            footprint.reason = f"error: {type(error).__name__}: {error}"
        results.append(footprint)
    return results


@dataclass
class ImportTime:
    runs: list[float] = field(default_factory=list)  # cumulative ms of ``stoic`` per run
    asyncio_ms: list[float] = field(default_factory=list)  # of which ``asyncio`` (cumulative)
    after_asyncio: list[float] = field(default_factory=list)  # ms, ``asyncio`` imported first
    top: list[tuple[str, float]] = field(default_factory=list)  # heaviest modules, self ms
    error: str = ""

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.runs) if self.runs else None


def _parse_importtime(stderr: str) -> tuple[float, float, list[tuple[str, float]]]:
    """(stoic cumulative ms, asyncio cumulative ms, [(module, self ms)] under stoic)."""
    rows: list[tuple[int, str, float, float]] = []  # depth, name, self us, cumulative us
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|", 2)
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append((depth, name.strip(), float(self_us), float(cumulative_us)))
    end = next(i for i, row in enumerate(rows) if row[1] == "stoic" and row[0] == 0)
    begin = end
    while begin > 0 and rows[begin - 1][0] > 0:
        begin -= 1
    subtree = rows[begin : end + 1]
    asyncio_us = sum(row[3] for row in subtree if row[1] == "asyncio")
    top = sorted(((row[1], row[2] / 1000) for row in subtree), key=lambda r: -r[1])[:8]
    return rows[end][3] / 1000, asyncio_us / 1000, top


def measure_import(runs: int) -> ImportTime:
    """Median over ``runs`` fresh interpreters of ``-X importtime -c 'import stoic'``.

    Bytecode is cached (as after any install) in a private ``PYTHONPYCACHEPREFIX`` that a
    first, untimed run fills, so nothing is written into the source tree.
    """
    result = ImportTime()
    command = [sys.executable, "-X", "importtime", "-c", "import stoic"]
    with tempfile.TemporaryDirectory(prefix="stoic-bench-pycache-") as cache:
        env = {**os.environ, "PYTHONPYCACHEPREFIX": cache}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        try:
            subprocess.run(command, capture_output=True, check=True, env=env)
            tops = []
            for _ in range(runs):
                done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
                total, in_asyncio, top = _parse_importtime(done.stderr)
                result.runs.append(total)
                result.asyncio_ms.append(in_asyncio)
                tops.append(dict(top))
            after = [*command[:-1], "import asyncio; import stoic"]
            for _ in range(runs):
                done = subprocess.run(after, capture_output=True, text=True, check=True, env=env)
                result.after_asyncio.append(_parse_importtime(done.stderr)[0])
            names = {name for top in tops for name in top}
            result.top = sorted(
                ((name, statistics.median(top.get(name, 0.0) for top in tops)) for name in names),
                key=lambda r: -r[1],
            )[:8]
        except (subprocess.CalledProcessError, StopIteration, ValueError) as error:
            result.error = f"{type(error).__name__}: {error}"
    return result
