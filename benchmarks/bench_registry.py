"""The case registry and the timing loops every case is built from.

A *case* is a builder, called once inside the running event loop, that returns a *runner*:
``async def run(n) -> int`` runs ``n`` iterations (calls, or tasks for the contended cases)
and returns the elapsed nanoseconds of ``time.perf_counter_ns``. Setup that must not be
timed (fresh state per sample, creating a limiter) happens inside ``run`` before the clock
starts. A builder raises ``Unavailable`` (or ``ImportError``) when its library is missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any

Runner = Callable[[int], Awaitable[int]]
Builder = Callable[[], "Runner | Awaitable[Runner]"]


class Unavailable(Exception):
    """This case cannot run here; the message says why (shown as "n/a")."""


@dataclass(frozen=True)
class Group:
    """One table of RESULTS.md.

    ``bare`` labels the case each figure is divided by (``None``: the global bare
    ``await ok()``); ``reference`` labels a second divisor shown in its own column;
    ``unit`` is what one iteration is: ``"call"``, or ``"task"`` for the contended cases.
    """

    key: str
    title: str
    note: str
    reference: str | None = None
    bare: str | None = None
    unit: str = "call"


@dataclass(frozen=True)
class Case:
    group: str
    label: str
    library: str  # "stoic", "baseline" or the peer's distribution name
    build: Builder


GROUPS: list[Group] = []
CASES: list[Case] = []


def group(key: str, title: str, note: str = "", **options: Any) -> str:
    GROUPS.append(Group(key, title, note, **options))
    return key


def case(group_key: str, label: str, library: str) -> Callable[[Builder], Builder]:
    """Register the decorated builder as a case of ``group_key``."""

    def register(build: Builder) -> Builder:
        CASES.append(Case(group_key, label, library, build))
        return build

    return register


# -- what is called --------------------------------------------------------------------------


async def ok() -> int:
    return 1


def flaky_once() -> Callable[[], Awaitable[int]]:
    """A coroutine function that fails every other call: each retried call fails once."""
    failing = True

    async def flaky() -> int:
        nonlocal failing
        if failing:
            failing = False
            raise ConnectionError("flaky")
        failing = True
        return 1

    return flaky


async def sleep0() -> None:
    await asyncio.sleep(0)


def hand_retry_loop(wait: Callable[[], Awaitable[Any]]) -> Runner:
    """The hand-written retry loop (3 attempts) around a call that fails once, waiting with
    ``await wait()`` between attempts: the reference of the failing-once groups."""
    fn = flaky_once()

    async def retrying() -> int:
        for attempt in range(3):
            try:
                return await fn()
            except Exception:
                if attempt == 2:
                    raise
            await wait()
        raise AssertionError("unreachable")

    return loop0(retrying)


# -- the timing loops: each shape written out, so no case pays for a generic helper ---------


def loop0(fn: Callable[[], Awaitable[Any]]) -> Runner:
    """``await fn()``, n times: the bare baseline and every decorated function."""

    async def run(n: int) -> int:
        start = perf_counter_ns()
        for _ in range(n):
            await fn()
        return perf_counter_ns() - start

    return run


def loop1(call: Callable[[Any], Awaitable[Any]], fn: Any) -> Runner:
    """``await call(fn)``, n times: the ``strategy.call(fn)`` form."""

    async def run(n: int) -> int:
        start = perf_counter_ns()
        for _ in range(n):
            await call(fn)
        return perf_counter_ns() - start

    return run


def loop_args(call: Callable[..., Awaitable[Any]], *args: Any) -> Runner:
    """``await call(*args)``, n times: nested ``.call`` stacks."""

    async def run(n: int) -> int:
        start = perf_counter_ns()
        for _ in range(n):
            await call(*args)
        return perf_counter_ns() - start

    return run


def loop_with(manager: Any, fn: Callable[[], Awaitable[Any]]) -> Runner:
    """``async with manager: await fn()``, n times."""

    async def run(n: int) -> int:
        start = perf_counter_ns()
        for _ in range(n):
            async with manager:
                await fn()
        return perf_counter_ns() - start

    return run


def loop_tasks(make: Callable[[int], Callable[[], Awaitable[Any]]]) -> Runner:
    """n tasks at once, each ``await one()``; ``make(n)`` builds fresh state per sample."""

    async def run(n: int) -> int:
        one = make(n)
        start = perf_counter_ns()
        await asyncio.gather(*[one() for _ in range(n)])
        return perf_counter_ns() - start

    return run
