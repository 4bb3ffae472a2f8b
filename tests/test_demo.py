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
    assert "breaker closed -> open (failure_threshold)" in out
    assert "breaker half_open -> closed (probes_succeeded)" in out
    assert "30 refused by the open breaker" in out
    assert "8 calls started at t+ 0.0, 0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2 s" in out
    assert "GET /items -> 200 after 2.0 s (Retry-After)" in out
    assert "requests sent: ['GET /items', 'GET /items', 'GET /missing', 'POST /orders']" in out
    assert out.rstrip().endswith("done.")
