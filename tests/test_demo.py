"""The demo runs end to end and tells the story it promises."""

from __future__ import annotations

import pytest

from stoic import demo


def test_demo_runs_every_pattern(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main() == 0
    out = capsys.readouterr().out
    assert "alpha -> value-of-alpha" in out
    assert "gave up after 3 attempt(s)" in out
    assert "timed out after 1.0s" in out
    assert "caught ConnectionError at once" in out
    assert out.rstrip().endswith("done.")
