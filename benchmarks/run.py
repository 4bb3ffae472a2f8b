"""stoic's overhead versus bare ``await`` and its peers; writes benchmarks/RESULTS.md.

Run with ``make bench`` (a virtualenv with the peers of benchmarks/requirements.txt), or
``python benchmarks/run.py`` anywhere stoic imports: a peer that is not installed shows as
"n/a". Real time on a normal asyncio loop (never stoic.testing's virtual time).

Every case runs in this one process, interleaved: each repetition runs every case once,
round-robin (the starting case rotates each repetition), and the report gives the median of
the repetitions. The garbage collector runs before each sample and is off during it.

    python benchmarks/run.py [--quick] [--output PATH] [--repeat R] [--number N]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import inspect
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import bench_cases  # noqa: F401  (registers the cases)
import bench_http  # noqa: F401  (registers the cases)
import bench_minimums  # noqa: F401  (registers the hand-written minimums, after the cases)
import bench_stacks  # noqa: F401  (registers the cases)
from bench_extras import measure_footprints, measure_import
from bench_registry import CASES, GROUPS, Case, Runner, Unavailable
from bench_report import CaseResult, Report, render

HERE = Path(__file__).resolve().parent
PEERS = [
    "tenacity",
    "stamina",
    "backoff",
    "hyx",
    "pyresilience",
    "aiobreaker",
    "circuitbreaker",
    "purgatory",
    "aiolimiter",
    "limits",
    "httpx",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run, for the smoke test")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--repeat", type=int, help="repetitions of every case (default 40)")
    parser.add_argument(
        "--number",
        type=int,
        help="calls per sample for every case (default: calibrated so a sample takes ~10 ms)",
    )
    parser.add_argument("--tasks", type=int, help="tasks per contended sample (default 10,000)")
    parser.add_argument("--only", help="run only the groups whose key contains this")
    args = parser.parse_args(argv)
    quick = args.quick
    args.repeat = args.repeat or (3 if quick else 40)
    if quick and args.number is None:
        args.number = 100
    args.tasks = args.tasks or (200 if quick else 10_000)
    args.instances = 200 if quick else 10_000
    args.import_runs = 1 if quick else 9
    return args


SAMPLE_NS = 10_000_000  # calibrated samples last about this long
MIN_CALLS, MAX_CALLS, WARM_UP_CALLS = 200, 200_000, 1_000


def _is_tasks(case: Case) -> bool:
    return next(group.unit for group in GROUPS if group.key == case.group) == "task"


async def _sample(runner: Runner, n: int) -> float:
    """One timed sample: ns per iteration, gc collected before and disabled during it."""
    gc.collect()
    gc.disable()
    try:
        elapsed = await runner(n)
    finally:
        gc.enable()
    return elapsed / n


async def _prepare(case: Case, result: CaseResult, args: argparse.Namespace) -> Runner | None:
    """Build the case, warm it up, and choose its iterations per sample; None if n/a."""
    try:
        built = case.build()
        runner = await built if inspect.isawaitable(built) else built
        if _is_tasks(case):
            await runner(min(args.tasks, WARM_UP_CALLS))
            result.number = args.tasks
        else:
            per_call = await _sample(runner, min(args.number or WARM_UP_CALLS, WARM_UP_CALLS))
            calibrated = min(MAX_CALLS, max(MIN_CALLS, round(SAMPLE_NS / max(per_call, 1.0))))
            result.number = args.number or calibrated
    except ImportError as error:
        result.reason = f"not installed ({error.name or error})"
        return None
    except Unavailable as error:
        result.reason = str(error)
        return None
    except Exception as error:
        result.reason = f"error: {type(error).__name__}: {error}"
        return None
    return runner


async def measure(args: argparse.Namespace) -> list[CaseResult]:
    cases = [c for c in CASES if not args.only or args.only in c.group or c.group == "bare"]
    results = [CaseResult(c.group, c.label, c.library) for c in cases]
    runners = [await _prepare(c, r, args) for c, r in zip(cases, results, strict=True)]
    live = [i for i, runner in enumerate(runners) if runner is not None]
    for repetition in range(args.repeat):
        started = time.perf_counter()
        for result in results:
            result.samples.append(None)
        shift = repetition % len(live) if live else 0
        for i in live[shift:] + live[:shift]:
            runner = runners[i]
            if runner is None:  # failed in an earlier repetition
                continue
            try:
                results[i].samples[-1] = await _sample(runner, results[i].number)
            except Exception as error:
                results[i].reason = f"error: {type(error).__name__}: {error}"
                results[i].samples = [None] * len(results[i].samples)
                runners[i] = None
        took = time.perf_counter() - started
        print(f"repetition {repetition + 1}/{args.repeat}: {took:.1f} s", file=sys.stderr)
    return results


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _stoic_version() -> str:
    try:
        version = metadata.version("stoic")
    except metadata.PackageNotFoundError:
        version = "not installed (imported from the path)"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", "../src"], cwd=HERE, capture_output=True
        ).returncode
        version += f" (git {commit}{', with uncommitted changes in src/' if dirty else ''})"
    except (OSError, subprocess.CalledProcessError):
        pass
    return version


def _versions() -> dict[str, str]:
    versions = {"stoic": _stoic_version()}
    for peer in PEERS:
        try:
            versions[peer] = metadata.version(peer)
        except metadata.PackageNotFoundError:
            versions[peer] = "not installed (its cases show n/a)"
    return versions


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    results = asyncio.run(measure(args))
    footprints = asyncio.run(measure_footprints(args.instances))
    imports = measure_import(args.import_runs)
    loop_policy = type(asyncio.get_event_loop_policy()).__name__
    report = Report(
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        machine={
            "platform": platform.platform(),
            "CPU": _cpu_model(),
            "cores": str(os.cpu_count()),
            "Python": f"{platform.python_implementation()} {sys.version.split()[0]}",
            "event loop": f"asyncio, {loop_policy} (no uvloop)",
        },
        versions=_versions(),
        method={
            "timer": "`time.perf_counter_ns`, real time on a normal asyncio loop",
            "samples": (
                "each sample times a fixed number of iterations of one case, after an untimed "
                "warm-up; calls per sample are "
                + (
                    f"{args.number:,} for every case"
                    if args.number
                    else "calibrated from the warm-up so a sample lasts about 10 ms "
                    f"({MIN_CALLS:,} to {MAX_CALLS:,})"
                )
                + f"; the contended bulkhead runs {args.tasks:,} tasks per sample"
            ),
            "interleaving": (
                f"one process; {args.repeat} repetitions, each running every case once, "
                "round-robin, starting one case later each repetition; ns figures are the "
                "median of the repetitions"
            ),
            "gc": "collected before every sample, disabled during it (as `timeit` does)",
            "ratios": (
                "each case over the bare `await ok()` (or the named reference) *of the same "
                "repetition*, then the median of those ratios, so slow drifts in the machine's "
                "speed cancel out; the loop overhead `for _ in range(n)` is in both. Spread is "
                "the interquartile range of those ratios over their median"
            ),
            "quick run": "yes: figures are noise, only the plumbing is checked"
            if args.quick
            else "no",
        },
        results=results,
        footprints=footprints,
        imports=imports,
    )
    args.output.write_text(render(report))
    took = time.perf_counter() - began
    print(f"wrote {args.output} in {took:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
