"""The pytest plugin, in inner pytest sessions: without pytest-asyncio, and under it in both
of its modes (issue 10, items 13 and 14).

Inner tests check that they run on virtual time *before* they wait, so a test that ran on
real time fails at once instead of sleeping.
"""

from __future__ import annotations

import gc
import warnings

import pytest
import pytest_asyncio  # a test dependency: these sessions must run under it

from tests.docs.blocks import DOCS, in_section

pytest_plugins = ["pytester"]

# How the inner session runs async tests: stoic's plugin alone, or pytest-asyncio in a mode.
SETUPS = {
    "no-pytest-asyncio": ["-p", "no:asyncio"],
    "asyncio-auto": ["-o", "asyncio_mode=auto"],
    "asyncio-strict": ["-o", "asyncio_mode=strict"],
}


@pytest.fixture(params=list(SETUPS))
def setup(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run(pytester: pytest.Pytester, setup: str, source: str) -> pytest.RunResult:
    """Run ``source`` as a test module in a fresh inner session under ``setup``."""
    pytester.makeini(
        "[pytest]\n"
        "asyncio_default_fixture_loop_scope = function\n"
        "filterwarnings =\n"
        "    error::RuntimeWarning\n"
        "    error::pytest.PytestUnraisableExceptionWarning\n"
    )
    pytester.makepyfile(test_inner=source)
    # Without hypothesis's plugin: each in-process session would import hypothesis afresh.
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-p", "no:hypothesispytest", *SETUPS[setup]
    )
    if pytest_asyncio.__version__.startswith("0.23."):
        # pytest-asyncio 0.23 itself (without stoic's plugin too) leaves an event loop unclosed
        # when a sync test calls asyncio.run after an async test: collect it here, quietly,
        # rather than as an unraisable warning in whichever test runs next.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "unclosed", ResourceWarning)
            gc.collect()
    return result


#: A module-scoped loop: pytest-asyncio 0.23 calls the option ``scope``, later ``loop_scope``.
MODULE_LOOP = (
    'scope="module"' if pytest_asyncio.__version__.startswith("0.23.") else 'loop_scope="module"'
)


def marks(setup: str) -> str:
    """The decorator line that hands an async test to pytest-asyncio in strict mode."""
    return "@pytest.mark.asyncio" if setup == "asyncio-strict" else ""


ON_VIRTUAL_TIME = """
def on_virtual_time(clock):
    # Fails fast on real time: the loop and stoic both read this clock.
    assert asyncio.get_running_loop().time() == clock.time()
    assert _clock.now() == clock.time()
"""

HEADER = f"""
import asyncio
import pytest
from stoic import _clock
from stoic.testing import VirtualClock
{ON_VIRTUAL_TIME}
"""


class TestVirtualTime:
    """The fixture and the marker run async tests on virtual time in every setup."""

    def test_the_fixture_runs_the_test_on_its_clock_from_zero(
        self, pytester: pytest.Pytester, setup: str
    ) -> None:
        result = run(
            pytester,
            setup,
            HEADER
            + f"""
{marks(setup)}
async def test_sleeps(virtual_clock: VirtualClock) -> None:
    assert virtual_clock.time() == 0.0
    on_virtual_time(virtual_clock)
    await asyncio.sleep(3600)
    assert virtual_clock.time() == 3600.0
    assert virtual_clock.jumps == 1
""",
        )
        result.assert_outcomes(passed=1)

    def test_the_marker_runs_the_test_on_virtual_time(
        self, pytester: pytest.Pytester, setup: str
    ) -> None:
        result = run(
            pytester,
            setup,
            HEADER
            + f"""
@pytest.mark.virtual_time
{marks(setup)}
async def test_sleeps() -> None:
    loop = asyncio.get_running_loop()
    assert loop.time() == 0.0 and _clock.now() == 0.0
    await asyncio.sleep(86400)
    assert loop.time() == 86400.0
""",
        )
        result.assert_outcomes(passed=1)

    def test_marker_options_configure_the_clock_and_the_fixture(
        self, pytester: pytest.Pytester, setup: str
    ) -> None:
        result = run(
            pytester,
            setup,
            HEADER
            + f"""
@pytest.mark.virtual_time(autojump_threshold=0.05, start=1000.0)
{marks(setup)}
async def test_options(virtual_clock: VirtualClock) -> None:
    assert virtual_clock.time() == 1000.0
    assert virtual_clock.autojump_threshold == 0.05
    on_virtual_time(virtual_clock)
    await asyncio.sleep(10)
    assert virtual_clock.time() == 1010.0
""",
        )
        result.assert_outcomes(passed=1)

    def test_markers_combine_the_closest_winning(
        self, pytester: pytest.Pytester, setup: str
    ) -> None:
        result = run(
            pytester,
            setup,
            HEADER
            + f"""
pytestmark = pytest.mark.virtual_time(start=5.0, autojump_threshold=0.01)

class TestCombined:
    pytestmark = pytest.mark.virtual_time(start=7.0)

    @pytest.mark.virtual_time(autojump_threshold=0.02)
    {marks(setup)}
    async def test_closest(self, virtual_clock: VirtualClock) -> None:
        on_virtual_time(virtual_clock)
        assert (virtual_clock.time(), virtual_clock.autojump_threshold) == (7.0, 0.02)
""",
        )
        result.assert_outcomes(passed=1)

    @pytest.mark.parametrize("own_loop_setup", ["no-pytest-asyncio", "asyncio-strict"])
    def test_a_thread_still_running_at_shutdown_is_joined(
        self, pytester: pytest.Pytester, own_loop_setup: str
    ) -> None:
        # Item 13 through the plugin, where it runs the test on a loop of its own (in strict
        # mode: a test not marked asyncio): that loop joins its executor on real time, without
        # "The executor did not finishing joining its threads within 300 seconds".
        result = run(
            pytester,
            own_loop_setup,
            HEADER
            + """
import threading, time

finished = threading.Event()

def work() -> None:
    time.sleep(0.05)
    finished.set()

@pytest.mark.virtual_time
async def test_leaves_a_thread_busy() -> None:
    assert await asyncio.to_thread(lambda: 42) == 42
    asyncio.get_running_loop().run_in_executor(None, work)

def test_the_thread_was_joined() -> None:
    assert finished.is_set()
""",
        )
        result.assert_outcomes(passed=2)

    def test_a_sync_test_gets_a_configured_clock_to_run(
        self, pytester: pytest.Pytester, setup: str
    ) -> None:
        result = run(
            pytester,
            setup,
            HEADER
            + """
@pytest.mark.virtual_time(start=50.0)
def test_drives_its_clock(virtual_clock: VirtualClock) -> None:
    async def main() -> float:
        await asyncio.sleep(5)
        return _clock.now()

    assert virtual_clock.run(main()) == 55.0
""",
        )
        result.assert_outcomes(passed=1)

    @pytest.mark.parametrize("asyncio_setup", ["asyncio-auto", "asyncio-strict"])
    def test_async_tests_without_virtual_time_keep_real_time(
        self, pytester: pytest.Pytester, asyncio_setup: str
    ) -> None:
        result = run(
            pytester,
            asyncio_setup,
            HEADER
            + f"""
import time

{marks(asyncio_setup)}
async def test_real() -> None:
    assert abs(asyncio.get_running_loop().time() - time.monotonic()) < 60
""",
        )
        result.assert_outcomes(passed=1)


def docs_example() -> str:
    """The test module in docs/testing.md, under "A test module"."""
    (example,) = in_section(DOCS / "testing.md", "## A test module")
    return example.source


def test_the_docs_example_passes(pytester: pytest.Pytester, setup: str) -> None:
    result = run(pytester, setup, docs_example())
    result.assert_outcomes(passed=5)


class TestUnderPytestAsyncio:
    """What pytest-asyncio brings: its loop, its fixtures, and what cannot work."""

    def test_the_test_runs_on_the_loop_of_its_async_fixtures(
        self, pytester: pytest.Pytester
    ) -> None:
        result = run(
            pytester,
            "asyncio-strict",
            HEADER
            + """
import pytest_asyncio

@pytest_asyncio.fixture
async def fixture_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()

@pytest.mark.asyncio
@pytest.mark.virtual_time(start=100.0)
async def test_same_loop(fixture_loop, virtual_clock: VirtualClock) -> None:
    assert asyncio.get_running_loop() is fixture_loop
    on_virtual_time(virtual_clock)
    await asyncio.sleep(60)
    assert virtual_clock.time() == 160.0
""",
        )
        result.assert_outcomes(passed=1)

    def test_the_loop_gets_its_own_clock_back_after_the_test(
        self, pytester: pytest.Pytester
    ) -> None:
        result = run(
            pytester,
            "asyncio-auto",
            HEADER
            + f"""
import time

@pytest.fixture(scope="module")
def loops() -> list:
    return []

@pytest.mark.asyncio({MODULE_LOOP})
@pytest.mark.virtual_time
async def test_virtual(loops, virtual_clock: VirtualClock) -> None:
    loops.append(asyncio.get_running_loop())
    on_virtual_time(virtual_clock)
    await asyncio.sleep(3600)

@pytest.mark.asyncio({MODULE_LOOP})
async def test_real_after(loops) -> None:
    assert asyncio.get_running_loop() is loops[0]
    assert abs(asyncio.get_running_loop().time() - time.monotonic()) < 60
""",
        )
        result.assert_outcomes(passed=2)

    def test_a_fresh_loop_test_with_a_pytest_asyncio_fixture_fails_loudly(
        self, pytester: pytest.Pytester
    ) -> None:
        result = run(
            pytester,
            "asyncio-strict",
            HEADER
            + """
import pytest_asyncio

@pytest_asyncio.fixture
async def resource() -> int:
    return 1

@pytest.mark.virtual_time
async def test_not_marked_asyncio(resource) -> None:
    pass
""",
        )
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "*test_not_marked_asyncio would run on a fresh virtual-time loop, but its "
                "fixture 'resource' was set up on pytest-asyncio's loop*mark the test "
                "@pytest.mark.asyncio too*"
            ]
        )


class TestLoudFailures:
    """Where virtual time cannot be had, the test fails saying why."""

    @pytest.mark.parametrize(
        ("marker", "message"),
        [
            pytest.param(
                "virtual_time(1.0)",
                "takes only the keyword arguments autojump_threshold and start",
                id="positional",
            ),
            pytest.param("virtual_time(origin=1.0)", "got virtual_time(origin=1.0)", id="unknown"),
            pytest.param(
                "virtual_time(start=float('nan'))",
                "start must be a finite number of seconds, got nan",
                id="nan-start",
            ),
            pytest.param(
                "virtual_time(autojump_threshold=-1)",
                "autojump_threshold must be a finite number of seconds >= 0, got -1",
                id="negative-threshold",
            ),
            pytest.param(
                "virtual_time(start=True)",
                "start must be a finite number of seconds, got True",
                id="bool-start",
            ),
        ],
    )
    def test_bad_marker_options_fail_the_setup(
        self, pytester: pytest.Pytester, setup: str, marker: str, message: str
    ) -> None:
        result = run(
            pytester,
            setup,
            HEADER
            + f"""
@pytest.mark.{marker}
{marks(setup)}
async def test_marked() -> None:
    raise AssertionError("must not run")
""",
        )
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines([f"*test_marked*mark.virtual_time*{message}*"])

    def test_an_async_hypothesis_test_fails_loudly(
        self, pytester: pytest.Pytester, setup: str
    ) -> None:
        result = run(
            pytester,
            setup,
            HEADER
            + f"""
from hypothesis import given, strategies

@pytest.mark.virtual_time
{marks(setup)}
@given(strategies.integers())
async def test_examples(number: int) -> None:
    on_virtual_time(VirtualClock())
""",
        )
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            ["*test_examples: stoic's virtual time does not run async @given tests*"]
        )

    def test_another_plugin_taking_the_test_over_fails_loudly(
        self, pytester: pytest.Pytester
    ) -> None:
        # What pytest-asyncio < 0.23 did: replace the coroutine function in pytest_pyfunc_call.
        pytester.makeconftest(
            """
import asyncio, functools, pytest

@pytest.hookimpl(hookwrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    test = pyfuncitem.obj

    @functools.wraps(test)
    def run_it(**kwargs):
        asyncio.run(test(**kwargs))

    pyfuncitem.obj = run_it
    yield
"""
        )
        result = run(
            pytester,
            "no-pytest-asyncio",
            HEADER
            + """
@pytest.mark.virtual_time
async def test_taken_over() -> None:
    on_virtual_time(VirtualClock())
""",
        )
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            ["*test_taken_over asks for stoic's virtual time, but another plugin has replaced*"]
        )


@pytest.mark.parametrize(
    ("setup", "mode"), [("asyncio-auto", "auto"), ("asyncio-strict", "strict")]
)
def test_the_asyncio_setups_run_under_pytest_asyncio(
    pytester: pytest.Pytester, setup: str, mode: str
) -> None:
    result = run(pytester, setup, "def test_nothing() -> None:\n    pass\n")
    headers = [line for line in result.outlines if line.startswith("asyncio: mode=")]
    assert len(headers) == 1
    assert mode in headers[0].lower()
    assert pytest_asyncio.__version__ in " ".join(result.outlines)


def test_the_plain_setup_runs_without_pytest_asyncio(pytester: pytest.Pytester) -> None:
    result = run(pytester, "no-pytest-asyncio", "def test_nothing() -> None:\n    pass\n")
    assert not [line for line in result.outlines if line.startswith("asyncio: ")]
