"""Backoff policies: how long to wait before each retry.

Policies are small frozen objects; ``policy.delays()`` starts a fresh, per-call iterator of
delays in seconds (the wait before retry 1, 2, 3, ...), so one policy serves any number of
concurrent calls. Where a delay depends on the retry's number alone (every kind but
decorrelated jitter and sums), ``policy.per_retry()`` gives that function too, so a retry
needs no iterator. Build them with the lowercase factories:

=========================================  ==================================================
``constant(delay=1.0)``                    the same wait every time
``linear(initial=1.0, step=1.0, ...)``     ``initial + step * n``, capped at ``max_delay``
``exponential(initial=0.2, ...)``          ``initial * multiplier ** n``, capped, jittered
=========================================  ==================================================

Jitter kinds (``jitter=``), applied to the capped delay ``d``:

- ``"none"``: exactly ``d``.
- ``"full"``: uniform in ``[0, d)`` (AWS's "full jitter"; the default for ``exponential``).
- ``"equal"``: uniform in ``[d/2, d)``.
- ``"decorrelated"`` (``exponential`` only): Polly's ``DecorrelatedJitterBackoffV2``, a smooth
  exponential growth with a random phase, whose median first delay is ``initial``. Once the
  formula passes ``max_delay`` the delay is drawn uniformly from ``[max_delay/2, max_delay)``
  rather than pinned at the cap, so clients never bunch there.

Policies add: ``exponential() + 0.5`` waits half a second more each time; ``a + b`` sums two
policies delay by delay.
"""

from __future__ import annotations

import itertools
import math
import random as _random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, TypeAlias

from stoic import _validate

__all__ = ["Backoff", "Jitter", "constant", "exponential", "linear"]

Jitter: TypeAlias = Literal["none", "full", "equal", "decorrelated"]
_JITTERS = ("none", "full", "equal")
RandomSource: TypeAlias = Callable[[], float]


def _check_seconds(name: str, value: float) -> float:
    return _validate.seconds(value, name)


def _check_jitter(jitter: str, allowed: tuple[str, ...]) -> None:
    if jitter not in allowed:
        kinds = ", ".join(repr(k) for k in allowed)
        raise ValueError(f"jitter must be one of {kinds}, got {jitter!r}")


def _jittered(delay: float, jitter: str, rand: RandomSource) -> float:
    if jitter == "full":
        return delay * rand()
    if jitter == "equal":
        return delay * (0.5 + 0.5 * rand())
    return delay


class Backoff:
    """Base of every backoff policy: a frozen recipe for a per-call sequence of delays."""

    __slots__ = ()

    def delays(self, random: RandomSource = _random.random) -> Iterator[float]:
        """A fresh, endless iterator of delays in seconds; ``random`` returns floats in [0, 1)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def per_retry(self) -> Callable[[int, RandomSource], float] | None:
        """``delay(n, random)``, the wait before retry ``n`` (1 for the first), when it
        depends on ``n`` alone; ``None`` (the default) when each delay depends on the ones
        before it.

        ``delays(random)`` yields ``delay(1, random), delay(2, random), ...``, drawing from
        ``random`` in the same order, so a retry loop may use either. A subclass that
        overrides ``delays`` gets ``None`` here unless it overrides this as well.
        """
        return None

    def _own_delays(self, cls: type[Backoff]) -> bool:
        # Whether ``delays`` is ``cls``'s own, so that ``per_retry`` describes the sequence.
        return type(self).delays is cls.delays

    def __add__(self, other: Backoff | float) -> Backoff:
        if isinstance(other, int | float):
            other = constant(other)
        if not isinstance(other, Backoff):
            return NotImplemented
        left = self.parts if isinstance(self, _Sum) else (self,)
        right = other.parts if isinstance(other, _Sum) else (other,)
        return _Sum(left + right)

    def __radd__(self, other: float) -> Backoff:
        return constant(other) + self


@dataclass(frozen=True, slots=True)
class Constant(Backoff):
    """The same ``delay`` (seconds) before every retry."""

    delay: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "delay", _check_seconds("delay", self.delay))

    def delays(self, random: RandomSource = _random.random) -> Iterator[float]:
        return itertools.repeat(self.delay)

    def per_retry(self) -> Callable[[int, RandomSource], float] | None:
        return self._delay if self._own_delays(Constant) else None

    def _delay(self, n: int, random: RandomSource) -> float:
        return self.delay


@dataclass(frozen=True, slots=True)
class Linear(Backoff):
    """``initial + step * n`` seconds before retry ``n + 1``, capped at ``max_delay``."""

    initial: float = 1.0
    step: float = 1.0
    max_delay: float = 30.0
    jitter: Jitter = "none"

    def __post_init__(self) -> None:
        for field in ("initial", "step", "max_delay"):
            object.__setattr__(self, field, _check_seconds(field, getattr(self, field)))
        _check_jitter(self.jitter, _JITTERS)

    def delays(self, random: RandomSource = _random.random) -> Iterator[float]:
        return map(self._delay, itertools.count(1), itertools.repeat(random))

    def per_retry(self) -> Callable[[int, RandomSource], float] | None:
        return self._delay if self._own_delays(Linear) else None

    def _delay(self, n: int, random: RandomSource) -> float:
        delay = self.initial + self.step * (n - 1)
        return _jittered(min(delay, self.max_delay), self.jitter, random)


@dataclass(frozen=True, slots=True)
class Exponential(Backoff):
    """``initial * multiplier ** n`` seconds before retry ``n + 1``, capped, then jittered."""

    initial: float = 0.2
    multiplier: float = 2.0
    max_delay: float = 10.0
    jitter: Jitter = "full"

    def __post_init__(self) -> None:
        for field in ("initial", "max_delay"):
            object.__setattr__(self, field, _check_seconds(field, getattr(self, field)))
        multiplier = _validate.number(self.multiplier, "multiplier", minimum=1.0)
        object.__setattr__(self, "multiplier", multiplier)
        if self.max_delay < self.initial:
            raise ValueError(
                f"max_delay must be >= initial ({self.initial}), got {self.max_delay!r}"
            )
        _check_jitter(self.jitter, (*_JITTERS, "decorrelated"))
        if self.jitter == "decorrelated" and self.multiplier <= 1:
            raise ValueError("multiplier must be > 1 with jitter='decorrelated', got 1")

    def delays(self, random: RandomSource = _random.random) -> Iterator[float]:
        if self.jitter == "decorrelated":
            return _decorrelated(self.initial, self.multiplier, self.max_delay, random)
        return map(self._delay, itertools.count(1), itertools.repeat(random))

    def per_retry(self) -> Callable[[int, RandomSource], float] | None:
        if self.jitter == "decorrelated" or not self._own_delays(Exponential):
            return None
        return self._delay

    def _delay(self, n: int, random: RandomSource) -> float:
        cap = self.max_delay
        try:
            delay = self.initial * self.multiplier ** (n - 1)
        except OverflowError:
            delay = _beyond_floats(self.initial, self.multiplier, n, cap)
        jitter = self.jitter
        if delay > cap:
            delay = cap
        # ``_jittered``, inlined: the default backoff is on every retried call's path.
        if jitter == "full":
            return delay * random()
        if jitter == "equal":
            return delay * (0.5 + 0.5 * random())
        return delay


def _beyond_floats(initial: float, multiplier: float, n: int, cap: float) -> float:
    """``min(initial * multiplier ** (n - 1), cap)`` where the power is too large for a
    float: worked out in logarithms, so a zero or tiny ``initial`` keeps its value."""
    if initial == 0 or cap == 0:
        return 0.0
    log = math.log(initial) + (n - 1) * math.log(multiplier)
    return cap if log >= math.log(cap) else math.exp(log)


# Polly's scaling so that the median of the first delay is ``initial``.
_RP_SCALING = 1 / 1.4
_P_FACTOR = 4.0


def _decorrelated(
    initial: float, multiplier: float, cap: float, random: RandomSource
) -> Iterator[float]:
    prev = 0.0
    attempt = 0
    saturated = False
    while True:
        if not saturated:
            t = attempt + random()
            try:
                nxt = math.pow(multiplier, t) * math.tanh(math.sqrt(_P_FACTOR * t))
            except OverflowError:
                nxt = math.inf
            delay = (nxt - prev) * _RP_SCALING * initial
            prev = nxt
            # Once past the cap the formula only grows: stop evaluating it.
            saturated = delay >= cap
            attempt += 1
        if saturated:
            delay = cap * (0.5 + 0.5 * random())
        yield delay


@dataclass(frozen=True, slots=True)
class _Sum(Backoff):
    parts: tuple[Backoff, ...]

    def __repr__(self) -> str:
        return " + ".join(repr(part) for part in self.parts)

    def delays(self, random: RandomSource = _random.random) -> Iterator[float]:
        iterators = [part.delays(random) for part in self.parts]
        while True:
            yield sum(next(it) for it in iterators)


@dataclass(frozen=True, slots=True)
class _SeedExponential(Backoff):
    """The founding document's backoff: ``base * exp_base ** n``, capped, +-25% jitter.

    Fixes the seed's defect that jitter could push a delay 25% past ``max_delay``: at the cap
    the spread becomes ``[0.75 * d, max_delay)`` instead of piling up on the cap.
    """

    base_delay: float
    max_delay: float
    exponential_base: float
    jitter: bool

    def delays(self, random: RandomSource = _random.random) -> Iterator[float]:
        return map(self._delay, itertools.count(1), itertools.repeat(random))

    def per_retry(self) -> Callable[[int, RandomSource], float] | None:
        return self._delay if self._own_delays(_SeedExponential) else None

    def _delay(self, n: int, random: RandomSource) -> float:
        cap = self.max_delay
        try:
            delay = min(self.base_delay * self.exponential_base ** (n - 1), cap)
        except OverflowError:
            delay = _beyond_floats(self.base_delay, self.exponential_base, n, cap)
        if self.jitter:
            low = 0.75 * delay
            delay = low + (min(1.25 * delay, cap) - low) * random()
        return delay


def constant(delay: float = 1.0) -> Backoff:
    """Wait ``delay`` seconds (default 1.0) before every retry."""
    return Constant(delay)


def linear(
    initial: float = 1.0, step: float = 1.0, max_delay: float = 30.0, jitter: Jitter = "none"
) -> Backoff:
    """Wait ``initial``, then ``step`` seconds more each retry, up to ``max_delay``.

    Defaults: ``initial=1.0``, ``step=1.0``, ``max_delay=30.0`` seconds, ``jitter="none"``.
    """
    return Linear(initial, step, max_delay, jitter)


def exponential(
    initial: float = 0.2, multiplier: float = 2.0, max_delay: float = 10.0, jitter: Jitter = "full"
) -> Backoff:
    """Wait ``initial * multiplier ** n`` seconds before retry ``n + 1``, at most ``max_delay``.

    Defaults: ``initial=0.2`` s, ``multiplier=2.0``, ``max_delay=10.0`` s, ``jitter="full"``.
    With ``jitter="decorrelated"``, ``initial`` is the median first delay (Polly's V2 form).
    """
    return Exponential(initial, multiplier, max_delay, jitter)
