"""Exception-group helpers: recoverable leaves returned, critical ones raised with structure."""

from __future__ import annotations

import asyncio
import traceback
from typing import TypeVar, assert_type

import pytest

from stoic.exceptions import TimeoutExceeded
from stoic.groups import handle_exception_group, leaf_exceptions, split_exception_group

E = TypeVar("E", bound=BaseException)


def raised(exc: E) -> E:
    """``exc`` with a real traceback."""
    try:
        raise exc
    except BaseException:
        return exc


async def fail(exc: BaseException) -> None:
    await asyncio.sleep(0)
    raise exc


class TestHandleExceptionGroup:
    """The seed's ``handle_exception_group``, fixed for nesting and tracebacks."""

    def test_all_recoverable_returns_the_leaves(self) -> None:
        a, b = ConnectionError("a"), TimeoutError("b")
        assert handle_exception_group(ExceptionGroup("g", [a, b])) == [a, b]

    def test_critical_leaves_are_raised_as_a_group(self) -> None:
        bad = ValueError("bad")
        group = ExceptionGroup("batch", [ConnectionError("a"), bad])
        with pytest.raises(ExceptionGroup) as info:
            handle_exception_group(group)
        assert info.value.exceptions == (bad,)
        assert info.value.message == "batch"

    def test_nothing_recoverable_raises_the_group_itself(self) -> None:
        group = ExceptionGroup("g", [ValueError(), KeyError()])
        with pytest.raises(ExceptionGroup) as info:
            handle_exception_group(group)
        assert info.value is group

    def test_nested_structure_is_preserved(self) -> None:
        bad = KeyError("k")
        group = ExceptionGroup(
            "outer", [ConnectionError(), ExceptionGroup("inner", [bad, TimeoutError()])]
        )
        with pytest.raises(ExceptionGroup) as info:
            handle_exception_group(group)
        (inner,) = info.value.exceptions
        assert isinstance(inner, ExceptionGroup)
        assert inner.message == "inner"
        assert inner.exceptions == (bad,)

    async def test_tracebacks_of_a_task_group_are_preserved(self) -> None:
        with pytest.raises(ExceptionGroup) as caught:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(fail(ConnectionError("net")))
                tg.create_task(fail(ValueError("data")))
        with pytest.raises(ExceptionGroup) as info:
            handle_exception_group(caught.value)
        (leaf,) = info.value.exceptions
        frames = [frame.name for frame in traceback.extract_tb(leaf.__traceback__)]
        assert "fail" in frames
        assert info.value.__traceback__ is not None

    def test_recovered_leaves_come_back_flat_depth_first(self) -> None:
        a, b, c = ConnectionError("a"), TimeoutError("b"), ConnectionError("c")
        group = ExceptionGroup("g", [a, ExceptionGroup("h", [b, c])])
        assert handle_exception_group(group) == [a, b, c]

    def test_custom_recoverable_types_and_predicates(self) -> None:
        group = ExceptionGroup("g", [KeyError("x"), KeyError("y")])
        assert len(handle_exception_group(group, recoverable=KeyError)) == 2
        predicate = lambda exc: isinstance(exc, KeyError) and exc.args == ("x",)  # noqa: E731
        with pytest.raises(ExceptionGroup) as info:
            handle_exception_group(group, recoverable=predicate)
        assert [e.args for e in info.value.exceptions] == [("y",)]

    def test_cancellation_is_never_recoverable(self) -> None:
        group = BaseExceptionGroup("g", [ConnectionError(), asyncio.CancelledError()])
        with pytest.raises(BaseExceptionGroup) as info:
            handle_exception_group(group, recoverable=BaseException)
        assert isinstance(info.value.exceptions[0], asyncio.CancelledError)

    def test_critical_leaves_are_the_original_objects_with_their_tracebacks(self) -> None:
        bad = raised(ValueError("bad"))
        original_tb = bad.__traceback__
        group = raised(ExceptionGroup("g", [raised(ConnectionError()), bad]))
        with pytest.raises(ExceptionGroup) as info:
            handle_exception_group(group)
        (leaf,) = info.value.exceptions
        assert leaf is bad
        assert leaf.__traceback__ is original_tb
        frames = traceback.extract_tb(info.value.__traceback__)
        assert frames[-1].name == "raised"  # where the group was first raised, kept

    @pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit, GeneratorExit])
    def test_interpreter_exits_are_never_recoverable(self, exc_type: type[BaseException]) -> None:
        exit_ = exc_type()
        group = BaseExceptionGroup("g", [ConnectionError(), exit_])
        with pytest.raises(BaseExceptionGroup) as info:
            handle_exception_group(group, recoverable=lambda exc: True)
        assert info.value.exceptions == (exit_,)
        assert not isinstance(info.value, ExceptionGroup)

    def test_default_recoverable_covers_timeouts_and_connection_errors(self) -> None:
        leaves = [TimeoutExceeded(5.0), ConnectionResetError(), TimeoutError()]
        assert handle_exception_group(ExceptionGroup("g", leaves)) == leaves

    def test_predicate_is_asked_about_leaves_only(self) -> None:
        seen: list[BaseException] = []

        def recoverable(exc: BaseException) -> bool:
            seen.append(exc)
            return True

        a, b = KeyError(), OSError()
        handle_exception_group(ExceptionGroup("g", [a, ExceptionGroup("h", [b])]), recoverable)
        assert seen == [a, b]

    async def test_inside_except_star_the_critical_part_propagates(self) -> None:
        with pytest.raises(ExceptionGroup) as info:
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(fail(ConnectionError("net")))
                    tg.create_task(fail(ValueError("data")))
            except* (ConnectionError, ValueError) as eg:
                handle_exception_group(eg)
        assert [str(e) for e in leaf_exceptions(info.value)] == ["data"]

    async def test_inside_except_star_recoverable_leaves_are_returned(self) -> None:
        recovered: list[OSError] = []
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(fail(ConnectionError("net")))
                tg.create_task(fail(TimeoutError("slow")))
        except* OSError as eg:
            recovered.extend(handle_exception_group(eg))
        assert [str(e) for e in recovered] == ["net", "slow"]

    def test_return_type_follows_the_recoverable_types(self) -> None:
        group = ExceptionGroup("g", [KeyError()])
        assert_type(handle_exception_group(group, KeyError), list[KeyError])
        assert_type(handle_exception_group(ExceptionGroup("g", [ConnectionError()])), list[OSError])
        assert_type(handle_exception_group(group, lambda e: True), list[BaseException])

    @pytest.mark.parametrize(("option", "error"), [((), ValueError), (42, TypeError)])
    def test_bad_recoverable_names_the_parameter(
        self, option: object, error: type[Exception]
    ) -> None:
        with pytest.raises(error, match="recoverable must"):
            handle_exception_group(ExceptionGroup("g", [KeyError()]), option)  # type: ignore[call-overload]

    def test_not_a_group_is_a_type_error(self) -> None:
        with pytest.raises(TypeError, match="expected an exception group"):
            handle_exception_group(ValueError())  # type: ignore[call-overload]


class TestHelpers:
    """``leaf_exceptions`` and ``split_exception_group``."""

    def test_leaf_exceptions(self) -> None:
        a, b = ValueError(), KeyError()
        assert leaf_exceptions(ExceptionGroup("g", [a, ExceptionGroup("h", [b])])) == [a, b]
        assert leaf_exceptions(a) == [a]

    def test_split_keeps_structure_on_both_sides(self) -> None:
        group = ExceptionGroup("g", [ValueError(), ExceptionGroup("h", [KeyError(), OSError()])])
        matched, rest = split_exception_group(group, (KeyError, ValueError))
        assert matched is not None
        assert rest is not None
        assert [type(e) for e in leaf_exceptions(matched)] == [ValueError, KeyError]
        assert [type(e) for e in leaf_exceptions(rest)] == [OSError]
        assert isinstance(rest.exceptions[0], ExceptionGroup)

    def test_split_tests_leaves_not_groups(self) -> None:
        group = ExceptionGroup("g", [ValueError()])
        matched, rest = split_exception_group(group, lambda exc: isinstance(exc, ExceptionGroup))
        assert matched is None
        assert rest is not None
        assert rest.exceptions == group.exceptions

    def test_split_never_matches_cancellation(self) -> None:
        cancelled = asyncio.CancelledError()
        group = BaseExceptionGroup("g", [KeyError(), cancelled])
        matched, rest = split_exception_group(group, BaseException)
        assert matched is not None
        assert rest is not None
        assert rest.exceptions == (cancelled,)

    def test_split_with_nothing_matched_has_no_matched_part(self) -> None:
        group = ExceptionGroup("g", [KeyError()])
        matched, rest = split_exception_group(group, OSError)
        assert matched is None
        assert rest is not None
        assert leaf_exceptions(rest) == list(group.exceptions)

    def test_split_bad_option_names_the_parameter(self) -> None:
        with pytest.raises(ValueError, match="matching must name at least one exception type"):
            split_exception_group(ExceptionGroup("g", [KeyError()]), ())

    def test_notes_survive(self) -> None:
        bad = raised(ValueError("bad"))
        group = ExceptionGroup("g", [bad, ConnectionError()])
        group.add_note("from the nightly batch")
        with pytest.raises(ExceptionGroup) as info:
            handle_exception_group(group)
        assert info.value.__notes__ == ["from the nightly batch"]
