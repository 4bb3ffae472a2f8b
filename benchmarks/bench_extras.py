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
        from stoic._circuit_breaker import CircuitBreaker
    except ImportError as error:
        raise Unavailable(f"stoic._circuit_breaker does not import: {error}") from error
    return lambda i: CircuitBreaker(**options)


def _stoic_shared_config() -> Callable[[int], Any]:
    from stoic._circuit_breaker import CircuitBreaker, CircuitBreakerConfig

    config = CircuitBreakerConfig()
    return lambda i: CircuitBreaker(config)


def _stoic_bulkhead() -> Callable[[int], Any]:
    from stoic._bulkhead import Bulkhead

    return lambda i: Bulkhead(max_concurrent=10)


def _stoic_retry() -> Callable[[int], Any]:
    from stoic._retry import Retry

    return lambda i: Retry()


def _hyx() -> Callable[[int], Any]:
    from hyx.circuitbreaker import consecutive_breaker

    return lambda i: consecutive_breaker()


def _pyresilience() -> Callable[[int], Any]:
    from pyresilience import CircuitBreaker, CircuitBreakerConfig

    return lambda i: CircuitBreaker(CircuitBreakerConfig())


def _stoic_rate_limiter() -> Callable[[int], Any]:
    from stoic._rate_limit import RateLimiter

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


# What a program pays to import stoic, each in a fresh interpreter: (label, setup, timed).
# ``import stoic`` loads no strategy until a name is used, so the first use is measured too.
IMPORT_CASES: tuple[tuple[str, str, str], ...] = (
    ("`import stoic`", "", "import stoic"),
    ("`from stoic import Retry` (first use: retry and `asyncio`)", "", "from stoic import Retry"),
    ("`from stoic import *` (every strategy, `asyncio` included)", "", "from stoic import *"),
    ("`import asyncio` alone, for reference", "", "import asyncio"),
    (
        "`from stoic import Retry`, `asyncio` already imported",
        "import asyncio",
        "from stoic import Retry",
    ),
    ("`from stoic import *`, `asyncio` already imported", "import asyncio", "from stoic import *"),
)
IMPORT_TARGET = "`import stoic`"  # the case the 30 ms target names

_TIMED_IMPORT = """
import time
{setup}
began = time.perf_counter()
{timed}
print((time.perf_counter() - began) * 1000)
"""


@dataclass
class ImportTime:
    cases: dict[str, list[float]] = field(default_factory=dict)  # label -> ms per fresh run
    top: list[tuple[str, float]] = field(default_factory=list)  # heaviest stoic modules, self ms
    error: str = ""

    def median_ms(self, label: str = IMPORT_TARGET) -> float | None:
        runs = self.cases.get(label)
        return statistics.median(runs) if runs else None


def _stoic_self_times(stderr: str) -> list[tuple[str, float]]:
    """[(module, self ms)] of every ``stoic`` module in ``-X importtime`` output."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative_us, name = line[len("import time:") :].split("|", 2)
        if name.strip().split(".")[0] == "stoic":
            rows.append((name.strip(), float(self_us) / 1000))
    return rows


def measure_import(runs: int) -> ImportTime:
    """Median over ``runs`` fresh interpreters of the time each ``IMPORT_CASES`` statement takes.

    Timed inside the interpreter with ``time.perf_counter`` (``-X importtime`` inflates what
    it measures); the cases take turns, run after run. Bytecode is cached (as after any
    install) in a private ``PYTHONPYCACHEPREFIX`` that a first, untimed run fills, so nothing
    is written into the source tree. One ``-X importtime`` run per repetition of
    ``from stoic import *`` after ``asyncio`` names the heaviest stoic modules.
    """
    result = ImportTime(cases={label: [] for label, _, _ in IMPORT_CASES})
    with tempfile.TemporaryDirectory(prefix="stoic-bench-pycache-") as cache:
        env = {**os.environ, "PYTHONPYCACHEPREFIX": cache}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        profile = [sys.executable, "-X", "importtime", "-c", "import asyncio; from stoic import *"]
        try:
            subprocess.run(profile, capture_output=True, check=True, env=env)  # fills the cache
            tops: list[dict[str, float]] = []
            for _ in range(runs):
                for label, setup, timed in IMPORT_CASES:
                    code = _TIMED_IMPORT.format(setup=setup, timed=timed)
                    done = subprocess.run(
                        [sys.executable, "-c", code],
                        capture_output=True,
                        text=True,
                        check=True,
                        env=env,
                    )
                    result.cases[label].append(float(done.stdout.split()[-1]))
                done = subprocess.run(profile, capture_output=True, text=True, check=True, env=env)
                tops.append(dict(_stoic_self_times(done.stderr)))
            names = {name for top in tops for name in top}
            result.top = sorted(
                ((name, statistics.median(top.get(name, 0.0) for top in tops)) for name in names),
                key=lambda r: -r[1],
            )[:8]
        except (subprocess.CalledProcessError, ValueError, IndexError) as error:
            result.error = f"{type(error).__name__}: {error}"
    return result
