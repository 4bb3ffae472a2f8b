"""The benchmark suite runs end to end: a tiny ``--quick`` run (peers absent show as n/a)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class TestQuickRun:
    """``python benchmarks/run.py --quick --output PATH``."""

    def test_quick_run_exits_zero_and_writes_a_retry_table(self, tmp_path: Path) -> None:
        output = tmp_path / "R.md"
        done = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--output", output],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        text = output.read_text()
        assert "| stoic `Retry.call` |" in text
        assert "retry" in text.lower()
        assert "| `import stoic` | " in text
        assert "| `from stoic import *`, `asyncio` already imported | " in text
