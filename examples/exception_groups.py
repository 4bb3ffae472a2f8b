"""Exception groups: split what a TaskGroup raised into what to retry and what to escalate.

Written the way the founding document shows it: ``except*`` by type, and
``handle_exception_group`` returning the recoverable errors and raising the critical ones
(as a group that keeps their nesting and tracebacks). A simulated service (no network) fails
some jobs with network errors and one with bad data.

Runs on stoic's virtual time:

    python examples/exception_groups.py
"""

from __future__ import annotations

import asyncio
import logging
import sys

from stoic import Retry, constant, handle_exception_group, leaf_exceptions
from stoic.testing import run

logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="  %(levelname)s %(message)s")
logger = logging.getLogger("example")
attempts: dict[str, int] = {}


async def job(name: str) -> str:
    attempts[name] = attempts.get(name, 0) + 1
    await asyncio.sleep(0.5)
    if name == "bad-data":
        raise ValueError(f"{name}: malformed record")
    if name.startswith("flaky") and attempts[name] == 1:
        raise ConnectionError(f"{name}: connection reset")
    return f"{name} done"


async def run_batch(names: list[str]) -> None:
    async with asyncio.TaskGroup() as tg:
        for name in names:
            tg.create_task(job(name))


async def process_with_exception_groups() -> None:
    try:
        await run_batch(["flaky-1", "bad-data", "steady"])
    except* ValueError as data_errors:
        for exc in data_errors.exceptions:
            logger.error("ValueError: %s", exc)
    except* ConnectionError as network_errors:
        for net_exc in network_errors.exceptions:
            logger.warning("ConnectionError: %s", net_exc)


async def run_with_recovery(names: list[str], rounds: int = 3) -> int:
    """Rerun the jobs that failed recoverably; a critical failure propagates as a group.

    Returns how many rounds it took.
    """
    pending = names
    for round_ in range(1, rounds + 1):
        try:
            await run_batch(pending)
            return round_
        except ExceptionGroup as eg:
            recoverable = handle_exception_group(eg)  # raises the critical part, if any
            for exc in recoverable:
                logger.warning("round %d, will retry: %s", round_, exc)
            pending = [str(exc).split(":")[0] for exc in recoverable]
    raise RuntimeError(f"still failing after {rounds} rounds: {pending}")


async def main() -> None:
    print("1. except* by type:")
    await process_with_exception_groups()

    print("2. handle_exception_group: rerun the recoverable, escalate the rest:")
    attempts.clear()
    rounds = await run_with_recovery(["flaky-1", "flaky-2", "steady"])
    logger.info("all jobs done after %d round(s)", rounds)
    attempts.clear()
    try:
        await run_with_recovery(["flaky-1", "bad-data", "steady"])
    except ExceptionGroup as critical:
        logger.error("escalated: %s", [str(exc) for exc in leaf_exceptions(critical)])

    print("3. Retry is group-aware: a group of only network errors is retried as a whole:")
    attempts.clear()
    policy = Retry(attempts=3, on=ConnectionError, backoff=constant(1.0))
    await policy.call(run_batch, ["flaky-1", "flaky-2", "steady"])
    logger.info("batch succeeded after %d attempt(s) of flaky-1", attempts["flaky-1"])


if __name__ == "__main__":
    run(main())
