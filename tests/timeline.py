"""Time as the tests see it: seconds since the virtual clock started.

The suite runs every async test at two clock origins (``tests/conftest.py``). A test module
that asserts when things happened imports ``clock_origin`` (an autouse fixture) and reads
``elapsed()``, rounded to the nanosecond so that round delays compare exactly at any origin.
"""

from __future__ import annotations

import pytest

from stoic import _clock

_origin = 0.0


def elapsed() -> float:
    """Seconds since the test's virtual clock started, to the nanosecond."""
    return round(_clock.now() - _origin, 9)


@pytest.fixture(autouse=True)
def clock_origin(request: pytest.FixtureRequest) -> float:
    """Where the test's virtual clock starts (the ``virtual_time`` marker's ``start``)."""
    global _origin
    marker = request.node.get_closest_marker("virtual_time")
    _origin = float(marker.kwargs.get("start", 0.0)) if marker is not None else 0.0
    return _origin
