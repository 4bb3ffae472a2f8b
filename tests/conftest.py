"""stoic's own suite runs every ``async def`` test on virtual time, at two clock origins.

A real monotonic clock is never at 0.0, where float sums of round delays happen to be exact:
each async test, and each test using the ``virtual_clock`` fixture, runs once with the clock
starting at 0.0 (id ``t0``) and once at a large, non-round origin (id ``t1e6``). Assert times
relative to the clock's start (``virtual_clock.time()`` or ``_clock.now()`` read first).
"""

from __future__ import annotations

import inspect
import warnings

import pytest

from tests.forms import Forms, route

#: Where the virtual clock starts: at zero, and at some 11.6 days of uptime.
ORIGINS = {"t0": 0.0, "t1e6": 1_000_003.7231}


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # pytest-asyncio is installed for the inner sessions of test_pytest_plugin.py (which set
    # their own options); this suite has no async fixtures, so its advice on their loop scope
    # does not apply here, and filterwarnings = error would make it abort the run.
    config.addinivalue_line(
        "markers", "forms(*names): run this test only in these forms (see tests/forms.py)"
    )
    warnings.filterwarnings(
        "ignore",
        message='The configuration option "asyncio_default_fixture_loop_scope" is unset',
        category=pytest.PytestDeprecationWarning,
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    _parametrize_forms(metafunc)
    if not (
        inspect.iscoroutinefunction(metafunc.function) or "virtual_clock" in metafunc.fixturenames
    ):
        return
    # The origin reaches the clock through the plugin's marker, as a user's would.
    metafunc.fixturenames.append("_virtual_time_origin")
    metafunc.parametrize(
        "_virtual_time_origin",
        [
            pytest.param(start, id=name, marks=pytest.mark.virtual_time(start=start))
            for name, start in ORIGINS.items()
        ],
    )


def _parametrize_forms(metafunc: pytest.Metafunc) -> None:
    """A module's ``EVERY_FORM``: each of its async tests once per form (see tests/forms.py)."""
    forms: Forms | None = getattr(metafunc.module, "EVERY_FORM", None)
    if forms is None or not inspect.iscoroutinefunction(metafunc.function):
        return
    names = forms.names
    marker = metafunc.definition.get_closest_marker("forms")
    if marker is not None:
        names = tuple(name for name in names if name in marker.args)
    metafunc.fixturenames.append("_form")
    metafunc.parametrize("_form", names)


@pytest.fixture(autouse=True)
def _route_form(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and "_form" in callspec.params:
        route(monkeypatch, request.module.EVERY_FORM, callspec.params["_form"])
