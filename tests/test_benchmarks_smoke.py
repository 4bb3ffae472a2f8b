"""The benchmark suite runs end to end: a tiny ``--quick`` run (peers absent show as n/a)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``python benchmarks/run.py --quick --output PATH``, run once for this module."""
    output = tmp_path_factory.mktemp("bench") / "R.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--output", output],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return output.read_text()


class TestQuickRun:
    """A quick run writes every table."""

    def test_quick_run_exits_zero_and_writes_a_retry_table(self, quick_results: str) -> None:
        assert "| stoic `Retry.call` |" in quick_results
        assert "retry" in quick_results.lower()
        assert "| `import stoic` | " in quick_results
        assert "| `from stoic import *`, `asyncio` already imported | " in quick_results

    def test_every_stoic_case_runs(self, quick_results: str) -> None:
        broken = [
            line
            for line in quick_results.splitlines()
            if line.startswith("| stoic") and "n/a: error" in line
        ]
        assert broken == []


def test_the_efficacy_simulator_runs_every_scenario_and_policy() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "efficacy.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "%" in line]
    assert len(rows) == 3 * 5  # every scenario, every policy
    outage_naive = next(r for r in rows if "outage" in r and "naive" in r)
    assert "| 4.00x |" in outage_naive  # a dead server: every attempt of every request
