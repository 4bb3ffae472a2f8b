"""Exception-group helpers: recoverable leaves returned, critical ones raised with structure."""

from __future__ import annotations

import asyncio
import traceback

import pytest

from stoic.groups import handle_exception_group, leaf_exceptions, split_exception_group


def raised(exc: BaseException) -> BaseException:
    """``exc`` with a real traceback."""
    try:
        raise exc
    except BaseException as caught:
        return caught


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

    def test_not_a_group_is_a_type_error(self) -> None:
        with pytest.raises(TypeError, match="expected an exception group"):
            handle_exception_group(ValueError())  # type: ignore[arg-type]


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

    def test_notes_survive(self) -> None:
        bad = raised(ValueError("bad"))
        group = ExceptionGroup("g", [bad, ConnectionError()])
        group.add_note("from the nightly batch")
        with pytest.raises(ExceptionGroup) as info:
            handle_exception_group(group)
        assert info.value.__notes__ == ["from the nightly batch"]
