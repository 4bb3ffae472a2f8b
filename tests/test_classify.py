"""The shared group-aware exception matcher: compile_matcher, iter_leaves, never_handled."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, strategies as st

from stoic._classify import compile_matcher, iter_leaves, never_handled

CONTROL_FLOW = [asyncio.CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit]


def group(*excs: BaseException, message: str = "g") -> BaseExceptionGroup[BaseException]:
    return BaseExceptionGroup(message, list(excs))


class TestTypes:
    """A type, or a tuple of types, matches instances of those types."""

    def test_type_matches_instances_and_subclasses(self) -> None:
        matches = compile_matcher(OSError, parameter="on")
        assert matches(OSError())
        assert matches(ConnectionResetError())
        assert not matches(ValueError())

    def test_tuple_matches_any_of_its_types(self) -> None:
        matches = compile_matcher((KeyError, TimeoutError), parameter="on")
        assert matches(KeyError())
        assert matches(TimeoutError())
        assert not matches(ValueError())

    def test_group_matches_when_every_leaf_matches(self) -> None:
        matches = compile_matcher(ConnectionError, parameter="on")
        assert matches(group(ConnectionError(), ConnectionRefusedError()))

    def test_group_with_one_non_matching_leaf_does_not_match(self) -> None:
        matches = compile_matcher(ConnectionError, parameter="on")
        assert not matches(group(ConnectionError(), ValueError()))

    def test_nested_group_matches_by_its_leaves(self) -> None:
        matches = compile_matcher((KeyError, OSError), parameter="on")
        assert matches(group(KeyError(), group(OSError(), group(KeyError()))))
        assert not matches(group(KeyError(), group(OSError(), group(ValueError()))))

    def test_group_type_matches_a_group_as_a_whole(self) -> None:
        matches = compile_matcher(ExceptionGroup, parameter="on")
        assert matches(ExceptionGroup("g", [ValueError()]))
        assert not matches(ValueError())


class TestPredicates:
    """A predicate decides for leaves, and for a group as a whole or leaf by leaf."""

    def test_predicate_decides_for_a_leaf(self) -> None:
        matches = compile_matcher(lambda exc: "retry" in str(exc), parameter="on")
        assert matches(ValueError("please retry"))
        assert not matches(ValueError("fatal"))

    def test_predicate_true_for_the_group_matches_it_whole(self) -> None:
        matches = compile_matcher(lambda exc: isinstance(exc, BaseExceptionGroup), parameter="on")
        assert matches(group(ValueError()))

    def test_predicate_may_look_at_attributes(self) -> None:
        matches = compile_matcher(
            lambda exc: isinstance(exc, OSError) and exc.errno in (1, 2), parameter="on"
        )
        assert matches(OSError(1, "a"))
        assert matches(group(OSError(1, "a"), OSError(2, "b")))
        assert not matches(group(OSError(1, "a"), OSError(3, "c")))

    def test_group_matches_when_the_predicate_holds_for_every_leaf(self) -> None:
        matches = compile_matcher(lambda exc: isinstance(exc, KeyError), parameter="on")
        assert matches(group(KeyError(), group(KeyError())))
        assert not matches(group(KeyError(), group(ValueError())))


class TestControlFlowNeverMatches:
    """Cancellation and interpreter exits never match, whatever the option says."""

    @pytest.mark.parametrize("exc_type", CONTROL_FLOW)
    def test_not_matched_by_base_exception(self, exc_type: type[BaseException]) -> None:
        assert not compile_matcher(BaseException, parameter="on")(exc_type())

    @pytest.mark.parametrize("exc_type", CONTROL_FLOW)
    def test_not_matched_when_named_in_a_tuple(self, exc_type: type[BaseException]) -> None:
        assert not compile_matcher((ValueError, exc_type), parameter="on")(exc_type())

    @pytest.mark.parametrize("exc_type", CONTROL_FLOW)
    def test_not_matched_by_a_predicate_that_says_yes(self, exc_type: type[BaseException]) -> None:
        assert not compile_matcher(lambda exc: True, parameter="on")(exc_type())

    @pytest.mark.parametrize(
        "option", [BaseException, BaseExceptionGroup, (BaseException,), lambda exc: True]
    )
    def test_group_containing_cancellation_is_never_matched(self, option: object) -> None:
        matches = compile_matcher(option, parameter="on")  # type: ignore[arg-type]
        assert not matches(group(ConnectionError(), group(asyncio.CancelledError())))


class TestValidation:
    """Bad options raise at construction, naming the parameter."""

    def test_empty_tuple_is_rejected(self) -> None:
        with pytest.raises(ValueError, match=r"retry_on must name at least one exception type"):
            compile_matcher((), parameter="retry_on")

    @pytest.mark.parametrize("item", [ValueError(), int, "ValueError"])
    def test_non_exception_type_in_a_tuple_is_rejected(self, item: object) -> None:
        with pytest.raises(TypeError, match="on must hold exception types"):
            compile_matcher((KeyError, item), parameter="on")  # type: ignore[arg-type]

    @pytest.mark.parametrize("option", [42, "ValueError", ValueError(), [ValueError]])
    def test_non_callable_is_rejected(self, option: object) -> None:
        with pytest.raises(TypeError, match="on must be an exception type, a tuple of them"):
            compile_matcher(option, parameter="on")  # type: ignore[arg-type]

    @pytest.mark.parametrize("option", [int, str])
    def test_non_exception_class_is_rejected(self, option: object) -> None:
        with pytest.raises(TypeError, match="on must be an exception type"):
            compile_matcher(option, parameter="on")  # type: ignore[arg-type]


class TestCache:
    """Equal options share one compiled matcher; unhashable options still compile."""

    def test_equal_options_share_a_matcher(self) -> None:
        assert compile_matcher((ValueError,), parameter="on") is compile_matcher(
            (ValueError,), parameter="on"
        )

    def test_unhashable_option_is_still_reported_clearly(self) -> None:
        with pytest.raises(TypeError, match="on must be an exception type"):
            compile_matcher([ValueError], parameter="on")  # type: ignore[arg-type]

    def test_unhashable_item_in_a_tuple_is_still_reported_clearly(self) -> None:
        with pytest.raises(TypeError, match=r"on must hold exception types, got \[1\]"):
            compile_matcher((ValueError, [1]), parameter="on")  # type: ignore[arg-type]


class TestIterLeaves:
    """iter_leaves flattens groups depth first."""

    def test_a_leaf_is_its_own_only_leaf(self) -> None:
        exc = ValueError()
        assert list(iter_leaves(exc)) == [exc]

    def test_nested_groups_flatten_depth_first(self) -> None:
        a, b, c, d = ValueError("a"), KeyError("b"), OSError("c"), TypeError("d")
        assert list(iter_leaves(group(a, group(b, group(c)), d))) == [a, b, c, d]


class TestNeverHandled:
    """never_handled spots control flow alone or anywhere in a group."""

    @pytest.mark.parametrize("exc_type", CONTROL_FLOW)
    def test_control_flow_alone(self, exc_type: type[BaseException]) -> None:
        assert never_handled(exc_type())

    def test_control_flow_deep_in_a_group(self) -> None:
        assert never_handled(group(ValueError(), group(KeyError(), group(SystemExit()))))

    def test_ordinary_exceptions_are_handled(self) -> None:
        assert not never_handled(ValueError())
        assert not never_handled(group(ValueError(), group(KeyError())))


LEAF_TYPES = [ValueError, KeyError, ConnectionError, TimeoutError, *CONTROL_FLOW]

leaves = st.sampled_from(LEAF_TYPES).map(lambda exc_type: exc_type())
trees = st.recursive(
    leaves,
    lambda children: st.lists(children, min_size=1, max_size=4).map(
        lambda excs: BaseExceptionGroup("g", excs)
    ),
    max_leaves=12,
)
options = st.lists(st.sampled_from(LEAF_TYPES[:4]), min_size=1, max_size=3).map(tuple)


def expected(exc: BaseException, types: tuple[type[BaseException], ...]) -> bool:
    found = list(iter_leaves(exc))
    if any(isinstance(leaf, tuple(CONTROL_FLOW)) for leaf in found):
        return False
    return all(isinstance(leaf, types) for leaf in found)


class TestProperties:
    """For any tree of exceptions, matching means: no control flow and every leaf matches."""

    @given(trees, options)
    def test_tuple_matcher_matches_by_leaves(
        self, exc: BaseException, types: tuple[type[BaseException], ...]
    ) -> None:
        assert compile_matcher(types, parameter="on")(exc) == expected(exc, types)

    @given(trees, options)
    def test_predicate_matcher_agrees_with_tuple_matcher(
        self, exc: BaseException, types: tuple[type[BaseException], ...]
    ) -> None:
        predicate = compile_matcher(lambda leaf: isinstance(leaf, types), parameter="on")
        assert predicate(exc) == expected(exc, types)
