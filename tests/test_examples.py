"""Every example script runs to completion (they are what ``make demo`` shows)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


def test_there_is_one_example_per_seed_pattern() -> None:
    names = {path.stem for path in EXAMPLES}
    assert {
        "retry",
        "circuit_breaker",
        "bulkhead",
        "fallback",
        "partial_failure",
        "exception_groups",
    } <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_runs(path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
