"""The shared, group-aware exception matcher used by retry, breaker and fallback."""

from __future__ import annotations

import asyncio

import pytest

from stoic._classify import compile_matcher, iter_leaves, never_handled


def matcher(option: object):  # type: ignore[no-untyped-def]
    return compile_matcher(option, parameter="on")  # type: ignore[arg-type]


class TestTypes:
    """Types and tuples of types."""

    def test_single_type_and_subclasses(self) -> None:
        match = matcher(OSError)
        assert match(OSError())
        assert match(ConnectionError())
        assert not match(ValueError())

    def test_tuple_of_types(self) -> None:
        match = matcher((KeyError, TimeoutError))
        assert match(KeyError())
        assert match(TimeoutError())
        assert not match(ValueError())


class TestGroups:
    """A group matches as a whole, or when every leaf matches."""

    def test_group_of_matching_leaves(self) -> None:
        group = ExceptionGroup("g", [ConnectionError(), TimeoutError()])
        assert matcher((ConnectionError, TimeoutError))(group)

    def test_group_with_one_other_leaf(self) -> None:
        group = ExceptionGroup("g", [ConnectionError(), ValueError()])
        assert not matcher(ConnectionError)(group)

    def test_nested_groups_are_flattened(self) -> None:
        group = ExceptionGroup("outer", [ExceptionGroup("inner", [ConnectionError()]), OSError()])
        assert matcher(OSError)(group)
        assert not matcher(ConnectionError)(group)

    def test_the_group_type_itself_matches(self) -> None:
        group = ExceptionGroup("g", [ValueError()])
        assert matcher(ExceptionGroup)(group)

    def test_predicate_sees_leaves(self) -> None:
        group = ExceptionGroup("g", [OSError(1, "a"), OSError(2, "b")])
        assert matcher(lambda e: isinstance(e, OSError) and e.errno in (1, 2))(group)
        assert not matcher(lambda e: isinstance(e, OSError) and e.errno == 1)(group)

    def test_predicate_may_accept_the_whole_group(self) -> None:
        group = ExceptionGroup("g", [ValueError()])
        assert matcher(lambda e: isinstance(e, ExceptionGroup))(group)

    def test_iter_leaves_is_depth_first(self) -> None:
        a, b, c = ValueError("a"), KeyError("b"), OSError("c")
        group = ExceptionGroup("g", [a, ExceptionGroup("h", [b]), c])
        assert list(iter_leaves(group)) == [a, b, c]
        assert list(iter_leaves(a)) == [a]


class TestNeverMatched:
    """Cancellation and interpreter exits never match, whatever the option says."""

    @pytest.mark.parametrize(
        "exc", [asyncio.CancelledError(), KeyboardInterrupt(), SystemExit(0), GeneratorExit()]
    )
    def test_even_with_base_exception(self, exc: BaseException) -> None:
        assert not matcher(BaseException)(exc)
        assert not matcher(lambda e: True)(exc)
        assert never_handled(exc)

    def test_group_holding_cancellation(self) -> None:
        group = BaseExceptionGroup("g", [ConnectionError(), asyncio.CancelledError()])
        assert not matcher(BaseException)(group)
        assert not matcher(BaseExceptionGroup)(group)
        assert not matcher(lambda e: True)(group)
        assert never_handled(group)

    def test_ordinary_group_is_handled(self) -> None:
        assert not never_handled(ExceptionGroup("g", [ValueError()]))


class TestValidation:
    """Bad options fail when compiled, naming the parameter."""

    def test_empty_tuple(self) -> None:
        with pytest.raises(ValueError, match="on must name at least one exception type"):
            matcher(())

    def test_non_type_in_tuple(self) -> None:
        with pytest.raises(TypeError, match="on must hold exception types, got 'x'"):
            matcher((ValueError, "x"))

    def test_not_callable(self) -> None:
        with pytest.raises(TypeError, match="on must be an exception type"):
            matcher(42)

    def test_unhashable_option_still_reports_clearly(self) -> None:
        with pytest.raises(TypeError, match="on must be an exception type"):
            matcher([ValueError])

    def test_equal_options_share_a_matcher(self) -> None:
        assert matcher((ValueError,)) is matcher((ValueError,))
