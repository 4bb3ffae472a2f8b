"""pytest plugin (registered through the ``pytest11`` entry point): virtual time for async tests.

- ``@pytest.mark.virtual_time`` on an ``async def`` test runs it on stoic's virtual time.
- The ``virtual_clock`` fixture gives the test's ``VirtualClock``; requesting it also runs the
  ``async def`` test on virtual time. In a sync test it is a clock to drive ``clock.run``.

The clock starts at 0.0. The marker takes the ``VirtualClock`` options, and they configure
the ``virtual_clock`` fixture too::

    @pytest.mark.virtual_time(start=1000.0, autojump_threshold=0.05)
    async def test_reads_a_real_socket(virtual_clock: VirtualClock) -> None: ...

``start`` (seconds, default 0.0) is where the clock starts; ``autojump_threshold`` (real
seconds, default 0.0) is how long the loop waits for real I/O before time jumps (raise it
when a test reads real sockets). Markers on the module, the class and the test combine, the
closest one winning for each option. Bad options fail the test's setup, saying which.

Who runs the test:

- Without pytest-asyncio, or in its strict mode on a test not marked ``asyncio``: this plugin,
  on a fresh virtual-time loop (as ``VirtualClock.run`` does).
- Where pytest-asyncio runs the test (auto mode, or a test marked ``asyncio``): pytest-asyncio,
  on its own loop, which this plugin switches to virtual time for the test's body (as
  ``VirtualClock.switch_running_loop`` does). Async fixtures run before the switch, on the
  loop's real clock: an object that remembers times (a rate limiter, an open breaker) belongs
  in the test, not in such a fixture. pytest-asyncio 0.23 and later are supported (tested
  with 0.23 to 1.5).
- A test this plugin would run on a fresh loop but that uses a fixture pytest-asyncio set up
  on its own loop fails at once, saying to mark it ``asyncio`` (the two loops would not share
  objects); so does a virtual-time test that another plugin has taken over, and an async
  hypothesis ``@given`` test (run each example with ``VirtualClock().run`` in a sync test).
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Coroutine, Generator
from typing import Any

import pytest

from stoic.testing import VirtualClock

_OPTIONS = ("autojump_threshold", "start")
_clock_key = pytest.StashKey[VirtualClock]()
_runs_here_key = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "virtual_time(start=0.0, autojump_threshold=0.0): run this async test on stoic's "
        "virtual time (the clock starts at start seconds)",
    )


@pytest.fixture
def virtual_clock(request: pytest.FixtureRequest) -> VirtualClock:
    """The test's ``stoic.testing.VirtualClock``: starting at 0.0 unless the ``virtual_time``
    marker gives ``start`` (and ``autojump_threshold``)."""
    return _clock_for(request.node)


def _clock_for(item: pytest.Item) -> VirtualClock:
    """The one clock of ``item`` (fixture and runner share it), made from its markers."""
    clock = item.stash.get(_clock_key, None)
    if clock is None:
        options: dict[str, Any] = {}
        for marker in item.iter_markers("virtual_time"):  # closest first
            if marker.args or set(marker.kwargs) - set(_OPTIONS):
                pytest.fail(
                    f"{item.nodeid}: mark.virtual_time takes only the keyword arguments "
                    f"{' and '.join(_OPTIONS)}, got {_describe(marker)}",
                    pytrace=False,
                )
            options = {**marker.kwargs, **options}
        try:
            clock = VirtualClock(**options)
        except ValueError as exc:
            pytest.fail(f"{item.nodeid}: mark.virtual_time: {exc}", pytrace=False)
        item.stash[_clock_key] = clock
    return clock


def _describe(marker: pytest.Mark) -> str:
    given = [repr(arg) for arg in marker.args]
    given += [f"{name}={value!r}" for name, value in marker.kwargs.items()]
    return f"virtual_time({', '.join(given)})"


def _wants_virtual_time(item: pytest.Function) -> bool:
    return (
        "virtual_clock" in item.fixturenames or item.get_closest_marker("virtual_time") is not None
    )


def _run_by_pytest_asyncio(item: pytest.Function) -> bool:
    """Whether pytest-asyncio (0.23+) has collected ``item`` as a test it runs on its loop."""
    plugin = sys.modules.get("pytest_asyncio.plugin")
    item_class = getattr(plugin, "PytestAsyncioFunction", None)
    return isinstance(item_class, type) and isinstance(item, item_class)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if isinstance(item, pytest.Function) and _wants_virtual_time(item):
        _clock_for(item)  # bad marker options fail here, before any fixture runs


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    if not (isinstance(item, pytest.Function) and _wants_virtual_time(item)):
        return (yield)
    if not inspect.iscoroutinefunction(item.obj):
        hypothesis = getattr(item.obj, "hypothesis", None)
        if inspect.iscoroutinefunction(getattr(hypothesis, "inner_test", None)):
            pytest.fail(
                f"{item.nodeid}: stoic's virtual time does not run async @given tests; "
                "make the test sync and run each example with VirtualClock().run(...)",
                pytrace=False,
            )
        return (yield)
    clock = _clock_for(item)
    if not _run_by_pytest_asyncio(item):
        item.stash[_runs_here_key] = True
        return (yield)
    # pytest-asyncio wraps item.obj when the test runs (0.23+: in runtest): hand it a test
    # that switches the loop it runs on to this clock.
    test = item.obj
    item.obj = _switching_to(clock, test)
    try:
        return (yield)
    finally:
        item.obj = test


def _switching_to(
    clock: VirtualClock, test: Callable[..., Coroutine[Any, Any, Any]]
) -> Callable[..., Coroutine[Any, Any, Any]]:
    @functools.wraps(test)
    async def on_virtual_time(*args: Any, **kwargs: Any) -> Any:
        with clock.switch_running_loop():
            return await test(*args, **kwargs)

    return on_virtual_time


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not pyfuncitem.stash.get(_runs_here_key, False):
        return None
    test = pyfuncitem.obj
    if not inspect.iscoroutinefunction(test):
        pytest.fail(
            f"{pyfuncitem.nodeid} asks for stoic's virtual time, but another plugin has "
            f"replaced the async test with {test!r}, so it would run on real time; "
            "pytest-asyncio older than 0.23 does this (upgrade it)",
            pytrace=False,
        )
    for name, definitions in pyfuncitem._fixtureinfo.name2fixturedefs.items():
        if getattr(definitions[-1].func, "_force_asyncio_fixture", False):
            pytest.fail(
                f"{pyfuncitem.nodeid} would run on a fresh virtual-time loop, but its fixture "
                f"{name!r} was set up on pytest-asyncio's loop, and the two cannot share "
                "objects: mark the test @pytest.mark.asyncio too (pytest-asyncio then runs it "
                "on its loop, switched to virtual time)",
                pytrace=False,
            )
    funcargs = pyfuncitem.funcargs
    kwargs = {name: funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    _clock_for(pyfuncitem).run(test(**kwargs))
    return True
