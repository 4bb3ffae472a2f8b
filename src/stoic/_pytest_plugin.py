"""pytest plugin (registered through the ``pytest11`` entry point): virtual time for async tests.

- ``@pytest.mark.virtual_time`` on an ``async def`` test runs it on a fresh virtual-time loop.
- The ``virtual_clock`` fixture gives the ``VirtualClock`` of that loop; requesting it also runs
  the ``async def`` test on virtual time. In a sync test it is a clock to drive ``clock.run``.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from stoic.testing import VirtualClock


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "virtual_time: run this async test on a stoic virtual-time event loop"
    )


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """A fresh ``stoic.testing.VirtualClock`` starting at 0.0."""
    return VirtualClock()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    func = pyfuncitem.obj
    if not inspect.iscoroutinefunction(func):
        return None
    uses_clock = "virtual_clock" in pyfuncitem.fixturenames
    if not uses_clock and pyfuncitem.get_closest_marker("virtual_time") is None:
        return None
    funcargs = pyfuncitem.funcargs
    clock = funcargs["virtual_clock"] if uses_clock else VirtualClock()
    assert isinstance(clock, VirtualClock)
    kwargs: dict[str, Any] = {name: funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    clock.run(func(**kwargs))
    return True
