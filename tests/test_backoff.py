"""Backoff policies: shapes, caps, jitter spread, composition and validation."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from stoic.backoff import (
    Backoff,
    Constant,
    Exponential,
    Linear,
    _jittered,
    _SeedExponential as SeedExponential,
    constant,
    exponential,
    linear,
)


def take(policy: Backoff, n: int, seed: int = 0) -> list[float]:
    return list(itertools.islice(policy.delays(random.Random(seed).random), n))


def fixed(value: float):  # type: ignore[no-untyped-def]
    return lambda: value


class TestShapes:
    """Delays without jitter follow the documented formula."""

    def test_constant_repeats_the_delay(self) -> None:
        assert take(constant(1.5), 4) == [1.5, 1.5, 1.5, 1.5]

    def test_linear_grows_by_step_up_to_the_cap(self) -> None:
        assert take(linear(1.0, 2.0, max_delay=6.0), 5) == [1.0, 3.0, 5.0, 6.0, 6.0]

    def test_exponential_doubles_up_to_the_cap(self) -> None:
        policy = exponential(0.5, 2.0, max_delay=3.0, jitter="none")
        assert take(policy, 5) == [0.5, 1.0, 2.0, 3.0, 3.0]

    def test_exponential_never_overflows_after_many_retries(self) -> None:
        delays = take(exponential(1.0, 10.0, max_delay=5.0, jitter="none"), 5000)
        assert delays[-1] == 5.0

    def test_each_call_gets_a_fresh_sequence(self) -> None:
        policy = exponential(1.0, 2.0, max_delay=100.0, jitter="none")
        first = policy.delays()
        next(first), next(first)
        assert next(policy.delays()) == 1.0

    def test_defaults_are_documented_values(self) -> None:
        assert repr(exponential()) == (
            "Exponential(initial=0.2, multiplier=2.0, max_delay=10.0, jitter='full')"
        )


class TestJitter:
    """Jitter kinds stay within their ranges."""

    def test_full_jitter_scales_the_delay_by_the_random_draw(self) -> None:
        policy = exponential(1.0, 2.0, max_delay=10.0, jitter="full")
        assert list(itertools.islice(policy.delays(fixed(0.25)), 3)) == [0.25, 0.5, 1.0]

    def test_equal_jitter_keeps_at_least_half(self) -> None:
        policy = exponential(2.0, 2.0, max_delay=10.0, jitter="equal")
        assert list(itertools.islice(policy.delays(fixed(0.0)), 2)) == [1.0, 2.0]

    def test_decorrelated_median_first_delay_is_near_initial(self) -> None:
        firsts = sorted(
            take(exponential(1.0, jitter="decorrelated"), 1, seed=s)[0] for s in range(2001)
        )
        assert 0.7 < firsts[1000] < 1.2

    def test_decorrelated_spreads_below_the_cap_instead_of_pinning(self) -> None:
        delays = take(exponential(1.0, max_delay=5.0, jitter="decorrelated"), 200)
        late = delays[20:]
        assert all(2.5 <= d <= 5.0 for d in late)
        assert len(set(late)) == len(late)

    def test_seed_jitter_never_exceeds_max_delay(self) -> None:
        policy = SeedExponential(1.0, 4.0, 2.0, True)
        delays = take(policy, 200)
        assert max(delays) <= 4.0
        assert min(delays[5:]) >= 3.0


class TestComposition:
    """``+`` adds delays."""

    def test_adding_a_number_adds_a_fixed_extra(self) -> None:
        policy = exponential(1.0, 2.0, max_delay=10.0, jitter="none") + 0.5
        assert take(policy, 3) == [1.5, 2.5, 4.5]

    def test_number_on_the_left_works_too(self) -> None:
        assert take(0.5 + constant(1.0), 2) == [1.5, 1.5]

    def test_sums_flatten_and_show_their_parts(self) -> None:
        policy = constant(1.0) + constant(2.0) + linear(1.0, 1.0, 10.0)
        assert take(policy, 2) == [4.0, 5.0]
        assert repr(policy).count("+") == 2

    def test_adding_something_else_is_a_type_error(self) -> None:
        with pytest.raises(TypeError):
            constant(1.0) + "soon"  # type: ignore[operator]


class TestValidation:
    """Bad options fail at construction, naming the parameter."""

    @pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
    def test_constant_rejects_bad_delay(self, value: float) -> None:
        with pytest.raises(ValueError, match="delay must be a finite number of seconds >= 0"):
            constant(value)

    def test_unknown_jitter_kind(self) -> None:
        with pytest.raises(ValueError, match="jitter must be one of 'none', 'full', 'equal'"):
            exponential(jitter="gaussian")  # type: ignore[arg-type]

    def test_decorrelated_only_on_exponential(self) -> None:
        with pytest.raises(ValueError, match="jitter must be one of"):
            linear(jitter="decorrelated")

    def test_multiplier_below_one(self) -> None:
        with pytest.raises(ValueError, match="multiplier must be a finite number >= 1"):
            exponential(multiplier=0.5)

    def test_max_delay_below_initial(self) -> None:
        with pytest.raises(ValueError, match=r"max_delay must be >= initial \(5.0\)"):
            exponential(initial=5.0, max_delay=1.0)

    def test_linear_negative_step(self) -> None:
        with pytest.raises(ValueError, match="step must be"):
            linear(step=-1.0)


seconds = st.floats(min_value=0.001, max_value=100.0)
jitters = st.sampled_from(["none", "full", "equal", "decorrelated"])


class TestProperties:
    """Every kind stays within bounds; jittered kinds spread."""

    @settings(max_examples=200, deadline=None)
    @given(
        initial=seconds,
        extra=seconds,
        multiplier=st.floats(1.0, 5.0),
        jitter=jitters,
        seed=st.integers(0, 2**32),
    )
    def test_exponential_stays_within_zero_and_the_cap(
        self, initial: float, extra: float, multiplier: float, jitter: str, seed: int
    ) -> None:
        if jitter == "decorrelated":
            multiplier = max(multiplier, 1.01)
        cap = initial + extra
        policy = exponential(initial, multiplier, cap, jitter)  # type: ignore[arg-type]
        for delay in take(policy, 60, seed):
            assert 0.0 <= delay <= cap

    @settings(max_examples=100, deadline=None)
    @given(
        initial=seconds,
        step=seconds,
        extra=seconds,
        seed=st.integers(0, 2**32),
        jitter=st.sampled_from(["none", "full", "equal"]),
    )
    def test_linear_stays_within_zero_and_the_cap(
        self, initial: float, step: float, extra: float, seed: int, jitter: str
    ) -> None:
        cap = initial + extra
        for delay in take(linear(initial, step, cap, jitter), 60, seed):  # type: ignore[arg-type]
            assert 0.0 <= delay <= cap

    @settings(max_examples=50, deadline=None)
    @given(
        initial=seconds,
        seed=st.integers(0, 2**32),
        jitter=st.sampled_from(["full", "equal", "decorrelated"]),
    )
    def test_jitter_rarely_lands_exactly_on_the_cap(
        self, initial: float, seed: int, jitter: str
    ) -> None:
        cap = initial * 8
        delays = take(exponential(initial, 2.0, cap, jitter), 400, seed)  # type: ignore[arg-type]
        at_cap = sum(1 for d in delays if d == cap)
        assert at_cap <= 0.03 * len(delays)
        assert len(set(delays[10:])) > 0.9 * len(delays[10:])


def growing(initial: float, cap: float, grow):  # type: ignore[no-untyped-def]
    """The capped, unjittered sequence built step by step: what ``per_retry`` computes by n."""
    current = initial
    while True:
        yield min(current, cap)
        if current < cap:
            current = grow(current)


class TestPerRetry:
    """``per_retry`` gives each delay from its retry number, as ``delays`` yields it."""

    @settings(max_examples=200, deadline=None)
    @given(
        initial=seconds,
        extra=seconds,
        multiplier=st.floats(1.0, 5.0),
        jitter=st.sampled_from(["none", "full", "equal"]),
        seed=st.integers(0, 2**32),
    )
    def test_exponential_per_retry_matches_its_delays_and_the_stepwise_formula(
        self, initial: float, extra: float, multiplier: float, jitter: str, seed: int
    ) -> None:
        policy = exponential(initial, multiplier, initial + extra, jitter)  # type: ignore[arg-type]
        delay = policy.per_retry()
        assert delay is not None
        draws = random.Random(seed).random
        by_number = [delay(n, draws) for n in range(1, 41)]
        assert by_number == take(policy, 40, seed)
        if jitter == "none":
            stepwise = itertools.islice(
                growing(initial, initial + extra, lambda d: d * multiplier), 40
            )
            assert by_number == pytest.approx(list(stepwise), rel=1e-9)

    @settings(max_examples=100, deadline=None)
    @given(initial=seconds, step=seconds, extra=seconds, seed=st.integers(0, 2**32))
    def test_linear_per_retry_matches_its_delays_and_the_stepwise_formula(
        self, initial: float, step: float, extra: float, seed: int
    ) -> None:
        policy = linear(initial, step, initial + extra)
        delay = policy.per_retry()
        assert delay is not None
        by_number = [delay(n, random.Random(seed).random) for n in range(1, 41)]
        assert by_number == take(policy, 40, seed)
        stepwise = itertools.islice(growing(initial, initial + extra, lambda d: d + step), 40)
        assert by_number == pytest.approx(list(stepwise), rel=1e-9)

    def test_constant_and_seed_backoffs_have_one_too(self) -> None:
        for policy in (constant(1.5), SeedExponential(1.0, 30.0, 2.0, True)):
            delay = policy.per_retry()
            assert delay is not None
            draws = random.Random(7).random
            assert [delay(n, draws) for n in range(1, 30)] == take(policy, 29, 7)

    def test_far_past_the_cap_the_delay_is_the_cap(self) -> None:
        delay = exponential(1.0, 10.0, max_delay=5.0, jitter="none").per_retry()
        assert delay is not None
        assert delay(10**6, random.random) == 5.0

    def test_far_past_the_cap_the_seed_delay_is_the_cap(self) -> None:
        delay = SeedExponential(1.0, 30.0, 10.0, False).per_retry()
        assert delay is not None
        assert delay(10**6, random.random) == 30.0

    def test_kinds_whose_delays_carry_state_have_none(self) -> None:
        assert exponential(jitter="decorrelated").per_retry() is None
        assert (exponential() + constant(1.0)).per_retry() is None

    @pytest.mark.parametrize(
        ("base", "args"),
        [
            (Constant, (1.5,)),
            (Linear, (1.0, 2.0, 10.0, "none")),
            (Exponential, (1.0, 2.0, 10.0, "none")),
            (SeedExponential, (1.0, 30.0, 2.0, True)),
        ],
        ids=lambda value: value.__name__ if isinstance(value, type) else "",
    )
    def test_a_subclass_that_overrides_delays_has_none(
        self, base: type[Backoff], args: tuple[Any, ...]
    ) -> None:
        class Doubled(base):  # type: ignore[valid-type, misc]
            def delays(self, random=random.random):  # type: ignore[no-untyped-def]
                return (2 * d for d in super().delays(random))

        assert base(*args).per_retry() is not None
        assert Doubled(*args).per_retry() is None

    @pytest.mark.parametrize("jitter", ["none", "full", "equal"])
    def test_exponential_jitter_is_the_shared_jitter(self, jitter: str) -> None:
        policy = exponential(0.3, 1.7, 4.0, jitter)  # type: ignore[arg-type]
        delay = policy.per_retry()
        assert delay is not None
        for n in range(1, 30):
            draw = random.Random(n).random
            expected = _jittered(min(0.3 * 1.7 ** (n - 1), 4.0), jitter, random.Random(n).random)
            assert delay(n, draw) == expected

    def test_decorrelated_jitter_needs_a_multiplier_above_one(self) -> None:
        with pytest.raises(ValueError, match="multiplier must be > 1 with jitter='decorrelated'"):
            exponential(1.0, 1.0, 10.0, "decorrelated")

    def test_decorrelated_delays_far_past_the_range_of_floats_stay_under_the_cap(self) -> None:
        # The smallest float as the first delay: the power overflows before the cap is reached.
        delays = take(exponential(5e-324, 1e10, 30.0, "decorrelated"), 200, 3)
        assert all(0 <= delay <= 30.0 for delay in delays)
        assert len(set(delays[100:])) > 1

    def test_a_zero_initial_stays_zero_past_the_range_of_floats(self) -> None:
        delay = exponential(0.0, 1e10, 10.0, "none").per_retry()
        assert delay is not None
        assert [delay(n, random.random) for n in (1, 30, 40, 2000)] == [0.0] * 4
        seed = SeedExponential(0.0, 60.0, 2.0, False).per_retry()
        assert seed is not None
        assert [seed(n, random.random) for n in (1, 1100, 5000)] == [0.0] * 3

    def test_a_tiny_initial_keeps_growing_past_the_range_of_floats(self) -> None:
        delay = exponential(1e-300, 2.0, 1e10, "none").per_retry()
        assert delay is not None
        assert delay(1025, random.random) == pytest.approx(1e-300 * 2.0**1023 * 2.0, rel=1e-9)
        assert delay(1100, random.random) == 1e10
