"""Every Python block of the README and the docs pages runs, as written, in the page's order.

Each page runs in a fresh interpreter (``run_page.py``): its blocks share one namespace, top-
level ``await`` runs on virtual time, and a block that is a whole program (``asyncio.run``)
runs as written. A block is left out only with a ``<!-- not run: reason -->`` marker on the
line before its fence; those are listed at the end of the test session and kept few.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.blocks import DOCS, README, ROOT, page_id, pages, python_blocks

RUNNER = Path(__file__).with_name("run_page.py")

#: The most blocks that may be left out, over every page.
MAX_NOT_RUN = 2


def run_page(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the page's Python blocks (those not marked as not run) in a fresh interpreter."""
    page = {
        "path": str(path),
        "blocks": [
            {"line": block.line, "source": block.source}
            for block in python_blocks(path)
            if block.not_run is None
        ],
    }
    return subprocess.run(
        [sys.executable, str(RUNNER)],
        input=json.dumps(page),
        capture_output=True,
        text=True,
        cwd=cwd,  # a block that writes a file writes it there
        timeout=120,
        check=False,
    )


PAGES_WITH_PYTHON = [path for path in pages() if python_blocks(path)]


@pytest.mark.parametrize("page", PAGES_WITH_PYTHON, ids=page_id)
def test_every_python_block_of_the_page_runs(page: Path, tmp_path: Path) -> None:
    done = run_page(page, tmp_path)
    assert done.returncode == 0, done.stderr


def test_blocks_left_out_say_why_and_are_few() -> None:
    left_out = [
        block for path in pages() for block in python_blocks(path) if block.not_run is not None
    ]
    assert all(block.not_run for block in left_out), [b.where for b in left_out]
    assert len(left_out) <= MAX_NOT_RUN, [f"{b.where}: {b.not_run}" for b in left_out]


def test_the_readme_and_the_home_page_have_python_to_run() -> None:
    assert python_blocks(README)
    assert python_blocks(DOCS / "index.md")


class TestTheRunner:
    """What the page runner promises, on pages made up for the test."""

    def page(self, tmp_path: Path, *sources: str) -> Path:
        path = tmp_path / "page.md"
        path.write_text(
            "# A page\n\n"
            + "\n".join(f"```python\n{source}```\n\nSome text.\n" for source in sources)
        )
        return path

    def test_a_block_that_raises_fails_the_page_naming_its_line(self, tmp_path: Path) -> None:
        path = self.page(tmp_path, "x = 1\n", "y = 2\nassert x == y, 'x is not y'\n")
        done = run_page(path, tmp_path)
        assert done.returncode == 1
        assert "the block at" in done.stderr
        assert f'File "{path}", line 11' in done.stderr  # the assert's line in the markdown
        assert "AssertionError: x is not y" in done.stderr

    def test_blocks_share_a_namespace_and_await_on_virtual_time(self, tmp_path: Path) -> None:
        path = self.page(
            tmp_path,
            "import asyncio\nimport time\n\nasync def nap():\n    await asyncio.sleep(3600)\n",
            "started = time.monotonic()\nawait nap()\n"
            "assert asyncio.get_running_loop().time() >= 3600\n"
            "assert time.monotonic() - started < 60  # an hour of virtual time\n",
        )
        done = run_page(path, tmp_path)
        assert done.returncode == 0, done.stderr

    def test_a_block_may_be_a_whole_program(self, tmp_path: Path) -> None:
        path = self.page(
            tmp_path,
            "import asyncio\n\nasync def main():\n    return 42\n",
            "assert asyncio.run(main()) == 42\n",
            "await asyncio.sleep(1)\n",
            "assert asyncio.run(main()) == 42\n",
        )
        done = run_page(path, tmp_path)
        assert done.returncode == 0, done.stderr

    def test_a_coroutine_never_awaited_fails_the_page(self, tmp_path: Path) -> None:
        path = self.page(tmp_path, "async def work():\n    pass\n\nwork()\n")
        done = run_page(path, tmp_path)
        assert done.returncode == 1
        assert "was never awaited" in done.stderr

    @pytest.mark.parametrize(
        "source",
        [
            # a task's exception nobody retrieves
            "import asyncio\n\nasync def boom():\n    raise ValueError('in a task')\n\n"
            "async def main():\n    asyncio.get_running_loop().create_task(boom())\n"
            "    await asyncio.sleep(0.01)\n\nasyncio.run(main())\n",
            # a callback that raises
            "import asyncio\n\nasync def main():\n"
            "    asyncio.get_running_loop().call_soon(lambda: 1 / 0)\n"
            "    await asyncio.sleep(0.01)\n\nasyncio.run(main())\n",
            # a thread that raises
            "import threading\n\nthread = threading.Thread(target=lambda: 1 / 0)\n"
            "thread.start()\nthread.join()\n",
        ],
        ids=["task", "callback", "thread"],
    )
    def test_an_error_asyncio_or_a_thread_only_logs_fails_the_page(
        self, tmp_path: Path, source: str
    ) -> None:
        done = run_page(self.page(tmp_path, source), tmp_path)
        assert done.returncode == 1
        assert "raised where Python could only report it" in done.stderr

    def test_a_block_marked_not_run_is_not_run(self, tmp_path: Path) -> None:
        path = tmp_path / "page.md"
        path.write_text(
            "```python\nx = 1\n```\n\n<!-- not run: shows a mistake -->\n"
            "```python\nraise SystemExit('ran')\n```\n"
        )
        (kept, left_out) = python_blocks(path)
        assert (kept.not_run, left_out.not_run) == (None, "shows a mistake")
        assert run_page(path, tmp_path).returncode == 0


def test_every_docs_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text().split("\nnav:\n", 1)[1]
    listed = set(re.findall(r":\s*(\S+\.md)\s*$", nav, re.M))
    assert listed == {page_id(path) for path in DOCS.rglob("*.md")}


def test_the_readmes_links_to_the_docs_lead_to_pages() -> None:
    links = re.findall(r"\]\((docs/[^)#\s]+)", README.read_text())
    assert links
    assert [link for link in links if not (ROOT / link).is_file()] == []
