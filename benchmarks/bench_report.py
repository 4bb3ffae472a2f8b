"""Render the measurements as benchmarks/RESULTS.md."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from bench_extras import IMPORT_TARGET, Footprint, ImportTime
from bench_registry import GROUPS, Group


@dataclass
class CaseResult:
    group: str
    label: str
    library: str
    number: int = 0  # iterations per sample
    # ns per iteration, one slot per repetition (None: not measured in that repetition)
    samples: list[float | None] = field(default_factory=list)
    reason: str = ""  # why it is "n/a"

    @property
    def values(self) -> list[float]:
        return [s for s in self.samples if s is not None]

    @property
    def median(self) -> float | None:
        values = self.values
        return statistics.median(values) if values else None

    @property
    def spread(self) -> float | None:
        """Interquartile range of the samples as a fraction of their median."""
        return _spread(self.values)

    def ratios(self, base: CaseResult) -> list[float]:
        """This case over ``base``, repetition by repetition (both measured minutes apart)."""
        return [
            mine / theirs
            for mine, theirs in zip(self.samples, base.samples, strict=False)
            if mine is not None and theirs
        ]


def _spread(values: list[float]) -> float | None:
    if len(values) < 4:
        return None
    q1, middle, q3 = statistics.quantiles(values, n=4)
    return (q3 - q1) / middle if middle else None


@dataclass
class Report:
    date: str
    machine: dict[str, str]
    versions: dict[str, str]
    method: dict[str, str]
    results: list[CaseResult]
    footprints: list[Footprint]
    imports: ImportTime

    def find(self, group: str, label: str) -> CaseResult | None:
        for result in self.results:
            if result.group == group and result.label == label:
                return result
        return None

    def ratio(self, group: str, label: str, divisor: str | None = None) -> float | None:
        """Median over the repetitions of ``label`` / ``divisor`` (default: the group's bare).

        Dividing within each repetition, then taking the median, cancels slow drifts of the
        machine's speed (other load, frequency scaling) that a ratio of medians would keep.
        """
        ratios = self._ratios(group, label, divisor)
        return statistics.median(ratios) if ratios else None

    def ratio_spread(self, group: str, label: str) -> float | None:
        """Interquartile range of the per-repetition ratios to bare, over their median."""
        return _spread(self._ratios(group, label, None))

    def _ratios(self, group: str, label: str, divisor: str | None) -> list[float]:
        result = self.find(group, label)
        if divisor is None:
            divisor = self._group(group).bare
        base = self.find(group, divisor) if divisor is not None else self.find("bare", _BARE)
        if result is None or base is None:
            return []
        return result.ratios(base)

    def _group(self, key: str) -> Group:
        return next(group for group in GROUPS if group.key == key)


_BARE = "bare `await ok()`"


def _ns(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.0f}%"


# -- targets ----------------------------------------------------------------------------------


@dataclass
class Target:
    goal: str
    rows: list[tuple[str, str, bool | None]]  # (what, figure, met)


def _ratio_target(
    report: Report,
    goal: str,
    group: str,
    labels: list[str],
    limit: float,
    divisor: str | None = None,
) -> Target:
    rows = []
    for label in labels:
        value = report.ratio(group, label, divisor)
        rows.append((label, _x(value), None if value is None else value <= limit))
    return Target(goal, rows)


def targets(report: Report) -> list[Target]:
    result = [
        _ratio_target(
            report,
            "retry, happy path <= 3x bare await",
            "retry_ok",
            ["stoic `@retry(attempts=3)`", "stoic `Retry.call`"],
            3.0,
        ),
        _ratio_target(
            report,
            "retry failing once, zero wait <= 1.2x a hand-written loop",
            "retry_fail",
            ["stoic `@retry(backoff=constant(0))`", "stoic `Retry.call`"],
            1.2,
            divisor="hand-written loop",
        ),
        _ratio_target(
            report,
            "HTTP transport <= 1.05x plain httpx (a localhost GET)",
            "http",
            ["stoic `ResilientTransport()` (the standard HTTP pipeline)"],
            1.05,
        ),
        _ratio_target(
            report,
            "HTTP middleware <= 1.05x plain aiohttp (a localhost GET)",
            "http_aiohttp",
            ["stoic `middleware()` (the standard HTTP pipeline)"],
            1.05,
        ),
        _ratio_target(
            report,
            "breaker closed <= 4x bare await",
            "breaker",
            ["stoic `CircuitBreaker.call`", "stoic `@CircuitBreaker()`"],
            4.0,
        ),
    ]
    bulkhead = _ratio_target(
        report,
        "bulkhead uncontended <= 6x bare await, and faster than `asyncio.Semaphore`",
        "bulkhead",
        ["stoic `Bulkhead.call`", "stoic `async with bulkhead`", "stoic `@Bulkhead(10)`"],
        6.0,
    )
    for i, (label, figure, met) in enumerate(bulkhead.rows):
        versus = report.ratio("bulkhead", label, "`asyncio.Semaphore`")
        faster = None if versus is None else versus < 1.0
        both = None if met is None or faster is None else met and faster
        bulkhead.rows[i] = (label, f"{figure} ({_x(versus)} the Semaphore)", both)
    result.append(bulkhead)
    result.append(
        _ratio_target(
            report,
            "rate limiter, never waiting <= 4x bare await",
            "rate",
            ["stoic `RateLimiter.call`", "stoic `@RateLimiter(...)`", "stoic `async with limiter`"],
            4.0,
        )
    )
    result.append(
        _ratio_target(
            report,
            "retry + breaker + bulkhead <= 8x bare await",
            "stack",
            [
                "stoic `retry.call(breaker.call, bulkhead.call, ok)`",
                "stoic decorators",
                "stoic `Pipeline(retry, breaker, bulkhead).call`",
                "stoic `@Pipeline(retry, breaker, bulkhead)`",
            ],
            8.0,
        )
    )
    result.extend(_architecture_targets(report))
    footprint = next((f for f in report.footprints if f.label.endswith("(consecutive)")), None)
    size = None if footprint is None else footprint.bytes_per_instance
    result.append(
        Target(
            "<= 200 bytes per consecutive-count breaker",
            [
                (
                    "stoic `CircuitBreaker()`",
                    "n/a" if size is None else f"{size:,.0f} B",
                    None if size is None else size <= 200,
                )
            ],
        )
    )
    took = report.imports.median_ms()
    result.append(
        Target(
            "`import stoic` under 30 ms",
            [
                (
                    "fresh interpreter, median (first uses: see below)",
                    "n/a" if took is None else f"{took:.1f} ms",
                    None if took is None else took < 30,
                )
            ],
        )
    )
    return result


_MIN = "hand-written minimum"


def _architecture_targets(report: Report) -> list[Target]:
    """The performance budget of the architecture issue: ratios to hand-written code."""
    within = [
        (
            "retry happy path <= 1.25x its hand-written minimum",
            "retry_ok",
            [
                ("stoic `Retry.call`", _MIN),
                ("stoic `@retry(attempts=3)`", f"{_MIN}, as a decorator"),
            ],
            1.25,
        ),
        (
            "breaker closed <= 1.25x a hand-written counter breaker",
            "breaker",
            [
                ("stoic `CircuitBreaker.call`", _MIN),
                ("stoic `@CircuitBreaker()`", f"{_MIN}, as a decorator"),
            ],
            1.25,
        ),
        (
            "bulkhead uncontended <= 1.25x `if running < limit`",
            "bulkhead",
            [("stoic `Bulkhead.call`", _MIN)],
            1.25,
        ),
        (
            "rate limiter never waiting <= 1.25x an inline GCRA",
            "rate",
            [("stoic `RateLimiter.call`", _MIN)],
            1.25,
        ),
        (
            "`@Pipeline(retry, breaker, bulkhead)` <= 1.5x a hand-written one-coroutine stack",
            "stack",
            [("stoic `@Pipeline(retry, breaker, bulkhead)`", _MIN)],
            1.5,
        ),
        (
            "other forms <= 2x a hand-written equivalent",
            "breaker",
            [
                ("stoic `async with breaker`", f"{_MIN}, `async with`"),
                (
                    "stoic `.call`, `trip='rate'`, `window_size=100`",
                    "hand-written count window (100 calls)",
                ),
                (
                    "stoic `.call`, `trip='rate'`, `window_duration=60`",
                    "hand-written time window (60 s, 10 buckets)",
                ),
            ],
            2.0,
        ),
        (
            "`async for attempt in policy` <= 2x a hand-written attempt loop",
            "retry_ok",
            [("stoic `async for attempt in Retry`", "hand-written `async for attempt` loop")],
            2.0,
        ),
        (
            "retry failing once, any backoff <= 1.5x a hand-written loop yielding once",
            "retry_backoffs",
            [
                ("stoic `Retry.call`, default backoff", _MIN),
                ("stoic `Retry.call`, `deadline=60`", _MIN),
                ("stoic `Retry.call`, `delay_hint=retry_after_hint`", _MIN),
                ("stoic `@retry()`, default backoff", _MIN),
            ],
            1.5,
        ),
        (
            "one listener <= 3x none (`Retry.call` happy path)",
            "telemetry",
            [("happy path, one listener", "happy path, no listener")],
            3.0,
        ),
    ]
    result = []
    for goal, group, pairs, limit in within:
        rows = []
        for label, divisor in pairs:
            value = report.ratio(group, label, divisor)
            rows.append(
                (label, f"{_x(value)} {divisor}", None if value is None else value <= limit)
            )
        result.append(Target(goal, rows))
    cheapest = {
        "stoic `Retry(...)`": [
            "tenacity `AsyncRetrying(...)`",
            "stamina `retry_context(...)`",
            "hyx `retry(...)`",
        ],
        "stoic `CircuitBreaker(...)`": [
            "aiobreaker `CircuitBreaker(...)`",
            "pybreaker `CircuitBreaker(...)`",
            "circuitbreaker `CircuitBreaker(...)`",
        ],
    }
    rows = []
    for label, peers in cheapest.items():
        ratios = [(report.ratio("construction", label, peer), peer) for peer in peers]
        known = [(value, peer) for value, peer in ratios if value is not None]
        if not known:
            rows.append((label, "n/a", None))
            continue
        value, peer = max(known)  # the largest ratio: to the cheapest peer
        rows.append((label, f"{_x(value)} {peer}", value <= 3.0))
    result.append(Target("construction <= 3x the cheapest peer's", rows))
    return result


# -- before and after the architecture work ---------------------------------------------------

#: The same cases measured before the architecture issue's redesign (``make bench`` at commit
#: 2d3687c, bare await 89.7 ns on this kind of machine), in x bare await: (group, label, x).
BEFORE_ARCHITECTURE = "2d3687c"
_BEFORE: list[tuple[str, str, float]] = [
    ("retry_ok", "stoic `Retry.call`", 2.84),
    ("retry_ok", "stoic `@retry(attempts=3)`", 2.83),
    ("retry_ok", "stoic `async for attempt in Retry`", 25.86),
    ("breaker", "stoic `CircuitBreaker.call`", 3.41),
    ("breaker", "stoic `@CircuitBreaker()`", 3.68),
    ("breaker", "stoic `async with breaker`", 23.71),
    ("breaker", "stoic `.call`, `trip='rate'`, `window_size=100`", 10.71),
    ("breaker", "stoic `.call`, `trip='rate'`, `window_duration=60`", 15.91),
    ("bulkhead", "stoic `Bulkhead.call`", 3.42),
    ("bulkhead", "stoic `@Bulkhead(10)`", 3.45),
    ("rate", "stoic `RateLimiter.call`", 3.65),
    ("stack", "stoic `retry.call(breaker.call, bulkhead.call, ok)`", 8.66),
    ("stack", "stoic decorators", 6.30),
    ("stack", "stoic `Pipeline(retry, breaker, bulkhead).call`", 7.32),
    ("stack", "stoic `@Pipeline(retry, breaker, bulkhead)`", 6.35),
    ("stack_timeouts", "stoic `Pipeline(timeout(10), ..., timeout(5)).call`", 126.30),
]


def _render_before_after(report: Report, add: Callable[[str], None]) -> None:
    add("\n## Before and after the architecture work\n")
    add(
        f"x bare `await`: before, `make bench` at commit {BEFORE_ARCHITECTURE} (the last run "
        "before stores, decision cores and open dispatch); after, this run. Before, the "
        "decorators of a breaker and a bulkhead fused by recognising each other's functions, "
        "and a constant backoff had a retry loop of its own; both are gone.\n"
    )
    add("| case | before | after |\n| --- | --- | --- |")
    for group, label, before in _BEFORE:
        add(f"| {label} ({group}) | {before:.2f}x | {_x(report.ratio(group, label))} |")


def _verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("met" if met else "**missed**")


# -- the document -----------------------------------------------------------------------------


def render(report: Report) -> str:
    out: list[str] = []
    add = out.append
    add("# stoic benchmarks\n")
    add(
        f"Generated by `make bench` (`python benchmarks/run.py`) on {report.date}; regenerate "
        "rather than edit: every figure below comes from one run. Ratios to the bare `await` "
        "carry over between machines far better than nanoseconds do.\n"
    )
    add("## Machine\n")
    for key, value in report.machine.items():
        add(f"- {key}: {value}")
    add("\n## Versions\n")
    add("| library | version |\n| --- | --- |")
    for name, version in report.versions.items():
        add(f"| {name} | {version} |")
    add("\n## Method\n")
    for key, value in report.method.items():
        add(f"- **{key}**: {value}")
    bare = report.find("bare", _BARE)
    bare_ns = _ns(bare.median if bare else None)
    add(f"\nBare `await ok()` (`async def ok(): return 1`): **{bare_ns} ns**.")
    add("\n## Targets\n")
    add("| target | stoic | figure | verdict |\n| --- | --- | --- | --- |")
    for target in targets(report):
        for label, figure, met in target.rows:
            add(f"| {target.goal} | {label} | {figure} | {_verdict(met)} |")
    _render_before_after(report, add)
    add("\n## Results\n")
    for group in GROUPS:
        if group.key == "bare":
            continue
        _render_group(report, group, add)
    _render_footprints(report, add)
    _render_imports(report, add)
    return "\n".join(out) + "\n"


def _render_group(report: Report, group: Group, add: Callable[[str], None]) -> None:
    add(f"### {group.title}\n")
    if group.note:
        add(group.note + "\n")
    per = "task" if group.unit == "task" else "call"
    columns = ["case", f"ns/{per}", "x no limiter" if group.bare else "x bare await"]
    if group.reference:
        columns.append(f"x {group.reference}")
    columns += ["spread", "calls/sample" if per == "call" else "tasks/sample"]
    add("| " + " | ".join(columns) + " |")
    add("|" + " --- |" * len(columns))
    for result in report.results:
        if result.group != group.key:
            continue
        if result.median is None:
            cells = [result.label, f"n/a: {result.reason}"] + [""] * (len(columns) - 2)
        else:
            cells = [result.label, _ns(result.median), _x(report.ratio(group.key, result.label))]
            if group.reference:
                cells.append(_x(report.ratio(group.key, result.label, group.reference)))
            cells += [_pct(report.ratio_spread(group.key, result.label)), f"{result.number:,}"]
        add("| " + " | ".join(cells) + " |")
    add("")


def _render_footprints(report: Report, add: Callable[[str], None]) -> None:
    add("### Bytes per instance\n")
    add(
        "tracemalloc: bytes still allocated after creating the instances and keeping them, "
        "divided by their number (the list holding them is allocated beforehand).\n"
    )
    add("| instance | bytes each |\n| --- | --- |")
    for footprint in report.footprints:
        size = footprint.bytes_per_instance
        add(f"| {footprint.label} | {footprint.reason if size is None else f'{size:,.0f}'} |")
    add("")


def _render_imports(report: Report, add: Callable[[str], None]) -> None:
    imports = report.imports
    add("### `import stoic`\n")
    if imports.error:
        add(f"Not measured: {imports.error}\n")
        return
    runs = len(imports.cases[IMPORT_TARGET])
    add(
        f"Each statement timed with `time.perf_counter` in {runs} fresh interpreters (bytecode "
        "compiled beforehand, as after an install); median. `import stoic` loads no strategy: "
        "each public name imports its module on first use, so a program pays at startup for "
        "the strategies it uses. `asyncio` is the bulk of a first use outside an asyncio "
        "program; inside one it is already imported.\n"
    )
    add("| statement | median ms | runs |\n| --- | --- | --- |")
    for label, times in imports.cases.items():
        took = statistics.median(times)
        add(f"| {label} | {took:.1f} | {', '.join(f'{t:.1f}' for t in times)} |")
    add("")
    add(
        "Heaviest stoic modules in `from stoic import *` after `asyncio` "
        "(`-X importtime` self time, median):\n"
    )
    add("| module | self ms |\n| --- | --- |")
    for name, took in imports.top:
        add(f"| {name} | {took:.2f} |")
    add("")
