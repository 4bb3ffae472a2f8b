"""The README's self-contained examples run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = (Path(__file__).parent.parent / "README.md").read_text()


def _examples(heading: str) -> list[str]:
    section = README.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


_HEADINGS = [
    "Shared state: stores",
    "Extending stoic",
    "HTTP clients: httpx",
    "HTTP clients: aiohttp",
]


@pytest.mark.parametrize("heading", _HEADINGS)
def test_the_sections_example_runs(heading: str) -> None:
    (example,) = _examples(heading)
    done = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def _self_contained() -> list[str]:
    """Every example that runs a program of its own (``asyncio.run``), outside the sections
    above."""
    others = {example for heading in _HEADINGS for example in _examples(heading)}
    found = re.findall(r"```python\n(.*?)```", README, re.S)
    return [example for example in found if "asyncio.run(" in example and example not in others]


@pytest.mark.parametrize("example", _self_contained(), ids=lambda e: e.splitlines()[0][:40])
def test_a_self_contained_example_runs(example: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
