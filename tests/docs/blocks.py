"""The fenced code blocks of the README and the docs pages, as the tests read them.

A block is a fenced code block (```` ``` ```` or ``~~~``, at any indentation); its language
is the first word of the fence's info string. Python blocks (``python``, ``py``,
``python3``) are run by ``test_code_blocks.py``, except one whose line just before the fence
is a marker saying why not: ``<!-- not run: the reason -->``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"

PYTHON = frozenset({"python", "py", "python3"})

_OPENING = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*?)\s*$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*(?P<reason>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a markdown file."""

    path: Path
    #: The line of the block's first line of code, counting from 1.
    line: int
    language: str
    source: str
    #: The line of the closing fence.
    end: int
    #: Why the block is not run (its ``<!-- not run: ... -->`` marker), or None.
    not_run: str | None = None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    """The README and every docs page."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def page_id(path: Path) -> str:
    """A page's name in test ids: ``README.md``, or its path under docs/ (``retry.md``)."""
    return str(path.relative_to(DOCS if path.is_relative_to(DOCS) else ROOT))


def blocks(path: Path) -> list[Block]:
    """Every fenced code block of the markdown file, in order."""
    lines = path.read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _OPENING.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if end == len(lines):
            raise ValueError(f"{path}:{index + 1}: a code fence that is never closed")
        marker = _NOT_RUN.match(lines[index - 1]) if index else None
        found.append(
            Block(
                path=path,
                line=index + 2,
                language=opening["info"].split(" ", 1)[0].strip("{.}").lower(),
                source="".join(line.removeprefix(indent) + "\n" for line in lines[index + 1 : end]),
                end=end + 1,
                not_run=marker["reason"] if marker else None,
            )
        )
        index = end + 1
    return found


def python_blocks(path: Path) -> list[Block]:
    """The Python blocks of the file, those not run included."""
    return [block for block in blocks(path) if block.language in PYTHON]


def in_section(path: Path, heading: str) -> list[Block]:
    """The blocks under the heading (``"## Testing"``, say), up to the next heading of its
    level or above."""
    level = len(heading) - len(heading.lstrip("#"))
    found = blocks(path)
    fenced = {number for block in found for number in range(block.line - 1, block.end + 1)}
    headings = [
        (number, text)
        for number, text in enumerate(path.read_text().splitlines(), 1)
        if number not in fenced and re.match(r"^#{1,6} ", text)
    ]
    starts = [number for number, text in headings if text == heading]
    if not starts:
        raise LookupError(f"{path}: no heading {heading!r}")
    start = starts[0]
    end = next(
        (
            number
            for number, text in headings
            if number > start and len(text) - len(text.lstrip("#")) <= level
        ),
        float("inf"),
    )
    return [block for block in found if start < block.line < end]
