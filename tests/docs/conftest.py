"""The session's summary says how many of the docs' Python blocks ran, and which were left
out (``<!-- not run: reason -->``) and why."""

from __future__ import annotations

import re

import pytest

from tests.docs.blocks import page_id, pages, python_blocks

#: The pages whose blocks all ran in this session, by test id (``retry.md``).
_PASSED: set[str] = set()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    found = re.search(r"::test_every_python_block_of_the_page_runs\[(.+)\]$", report.nodeid)
    if found and report.when == "call" and report.passed:
        _PASSED.add(found[1])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _PASSED:
        return
    ran = [
        block
        for path in pages()
        if page_id(path) in _PASSED
        for block in python_blocks(path)
        if block.not_run is None
    ]
    left_out = [
        block for path in pages() for block in python_blocks(path) if block.not_run is not None
    ]
    terminalreporter.write_line(
        f"docs: {len(ran)} Python blocks ran, on {len(_PASSED)} pages; "
        f"{len(left_out)} left out{':' if left_out else ''}"
    )
    for block in left_out:
        terminalreporter.write_line(f"  {block.where}: {block.not_run}")
