"""Adaptive throttling: refuse calls locally, in proportion, while the dependency refuses them.

The client-side throttling of Google's SRE book ("Handling Overload"): over a sliding window
the client counts the calls it made (``requests``, its own refusals included) and those the
dependency answered (``accepts``), and refuses a new call locally with probability
``max(0, (requests - k * accepts) / (requests + 1))``, at most ``max_rejection``. While the
dependency is healthy nothing is refused; as it starts to fail, the client sheds the excess it
would have sent (with ``k=2``, about half of what the dependency rejects beyond its accepts),
and the refusals cost the dependency nothing. Unlike a breaker it never stops all traffic, so
it recovers as soon as calls are accepted again::

    throttle = AdaptiveThrottle()  # k=2.0, window=30.0, max_rejection=0.8, min_requests=20
    await throttle.call(fetch, url)

Outcomes are classified as the circuit breaker's are: an exception ``record`` matches (and
``ignore`` does not) or a result ``failure_result`` accepts is a rejection by the dependency;
a success is an accept; any other exception, and cancellation, counts as nothing. A local
refusal raises ``Throttled`` (a ``RejectedCall``) with ``retry_after``.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from stoic import _clock, _validate
from stoic._classify import ExceptionFilter, Matcher, check_awaited, compile_matcher, never_handled
from stoic._events import Event, Listener, Severity, emit, validate_listeners
from stoic._slices import SLICES, Slices
from stoic._strategy import Frozen, P, T, set_field as _set
from stoic.exceptions import Throttled

__all__ = ["AdaptiveThrottle", "CallThrottled"]

_DEFAULT_RANDOM = random.random


@dataclass(frozen=True, slots=True)
class CallThrottled(Event):
    """The throttle refused a call locally; the wrapped function was not called.

    ``probability`` is the share of calls it refuses now, from ``requests`` and ``accepts``
    over its window.
    """

    severity: ClassVar[Severity] = Severity.WARNING
    probability: float
    requests: int
    accepts: int


class ThrottleWindow:
    """The throttle's state (its decision core): requests and accepts over the window
    (``Slices``: ten slices of ``window / 10``)."""

    __slots__ = ("slices",)

    def __init__(self, slice_ns: int) -> None:
        self.slices = Slices(slice_ns, 2)  # kinds: requests, accepts

    @property
    def requests(self) -> int:
        return self.slices.totals[0]

    @property
    def accepts(self) -> int:
        return self.slices.totals[1]

    def count(self, now_ns: int, *, accepted: bool) -> None:
        """One call's outcome is known (a local refusal is not accepted)."""
        slices = self.slices
        slot = slices.advance(now_ns)
        slices.add(slot, 0, 1)
        if accepted:
            slices.add(slot, 1, 1)

    def rejection(self, now_ns: int, k: float, min_requests: int, max_rejection: float) -> float:
        """The probability of refusing the next call, from the counts at ``now_ns``."""
        slices = self.slices
        slices.advance(now_ns)
        requests, accepts = slices.totals
        if requests < min_requests:
            return 0.0
        excess = requests - k * accepts
        if excess <= 0:
            return 0.0
        probability = excess / (requests + 1)
        return probability if probability < max_rejection else max_rejection

    def retry_after_ns(self, now_ns: int) -> int:
        """Nanoseconds until the oldest slice expires, and the counts change (the
        probability may take several slices to fall)."""
        slices = self.slices
        return (slices.index + 1) * slices.slice_ns - now_ns


class AdaptiveThrottle(Frozen):
    """Refuse calls locally while the dependency rejects them (the SRE book's client-side
    throttling).

    - ``k``: how many requests per accept pass before any is refused (a number >= 1;
      lower refuses sooner; 2 lets through about twice what the dependency accepts).
    - ``window``: seconds the counts cover (> 0, at most 600).
    - ``max_rejection``: the highest share of calls refused (in (0, 1]; below 1 so that
      some calls always reach the dependency and see it recover).
    - ``min_requests``: requests in the window before any refusal (an int >= 0).
    - ``record``, ``ignore``, ``failure_result``: which outcomes are the dependency's
      rejections, as for ``CircuitBreaker`` (default: every ``Exception``).
    - ``name``, ``listeners``: carried by events; ``random``: the draw, for tests.
    """

    __slots__ = (
        "_clock",
        "_failure_result",
        "_ignore",
        "_ignored",
        "_k",
        "_listeners",
        "_max_rejection",
        "_min_requests",
        "_name",
        "_random",
        "_record",
        "_recorded",
        "_state",
        "_window",
    )
    _k: float
    _window: float
    _max_rejection: float
    _min_requests: int
    _record: ExceptionFilter
    _ignore: ExceptionFilter | None
    _recorded: Matcher
    _ignored: Matcher | None
    _failure_result: Callable[[Any], bool] | None
    _name: str | None
    _listeners: tuple[Listener, ...]
    _random: Callable[[], float]
    _state: ThrottleWindow
    _clock: Any

    kind = "adaptive_throttle"

    def __init__(
        self,
        k: float = 2.0,
        window: float = 30.0,
        max_rejection: float = 0.8,
        min_requests: int = 20,
        *,
        record: ExceptionFilter = Exception,
        ignore: ExceptionFilter | None = None,
        failure_result: Callable[[Any], bool] | None = None,
        name: str | None = None,
        listeners: Iterable[Listener] = (),
        random: Callable[[], float] = _DEFAULT_RANDOM,
    ) -> None:
        _set(self, "_k", _validate.number(k, "k", minimum=1.0))
        _set(self, "_window", _validate.seconds(window, "window", positive=True, maximum=600.0))
        _set(self, "_max_rejection", _validate.fraction(max_rejection, "max_rejection"))
        _set(self, "_min_requests", _validate.count(min_requests, "min_requests", minimum=0))
        _set(self, "_record", record)
        _set(self, "_recorded", compile_matcher(record, parameter="record"))
        _set(self, "_ignore", ignore)
        _set(
            self,
            "_ignored",
            None if ignore is None else compile_matcher(ignore, parameter="ignore"),
        )
        if failure_result is not None:
            _validate.function(failure_result, "failure_result", "a predicate on the result")
        _set(self, "_failure_result", failure_result)
        _set(self, "_name", _validate.name(name))
        _set(self, "_listeners", validate_listeners(listeners))
        if random is not _DEFAULT_RANDOM:
            _validate.function(
                random, "random", "a function returning floats in [0, 1)", optional=False
            )
        _set(self, "_random", random)
        _set(self, "_state", ThrottleWindow(max(1, int(self._window * _clock.NS) // SLICES)))
        _set(self, "_clock", _clock)

    def options(self) -> dict[str, Any]:
        return {
            "k": self._k,
            "window": self._window,
            "max_rejection": self._max_rejection,
            "min_requests": self._min_requests,
            "record": self._record,
            "ignore": self._ignore,
            "failure_result": self._failure_result,
            "name": self._name,
            "listeners": self._listeners,
            "random": self._random,
        }

    def __repr__(self) -> str:
        name = "" if self._name is None else f", name={self._name!r}"
        return (
            f"AdaptiveThrottle(k={self._k!r}, window={self._window!r}, "
            f"max_rejection={self._max_rejection!r}, min_requests={self._min_requests!r}{name})"
        )

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def counts(self) -> ThrottleWindow:
        """The counts this throttle decides on (``requests``, ``accepts``)."""
        return self._state

    def probability(self) -> float:
        """The share of calls it would refuse now."""
        return self._state.rejection(
            self._clock.now_ns(), self._k, self._min_requests, self._max_rejection
        )

    # -- hooks for pipelines and config ------------------------------------------------------

    def describe(self) -> str:
        name = "" if self._name is None else f" [{self._name}]"
        return (
            f"adaptive throttle: k={self._k:g} over {self._window:g}s, refuses at most "
            f"{self._max_rejection:.0%}{name}"
        )

    def to_config(self) -> dict[str, Any]:
        from stoic._configuration import exception_names, without_none

        if self._failure_result is not None:
            raise ValueError("throttle failure_result is a function, which config cannot express")
        return without_none(
            {
                "k": self._k,
                "window": self._window,
                "max_rejection": self._max_rejection,
                "min_requests": self._min_requests,
                "record": exception_names(self._record, "throttle record"),
                "ignore": None
                if self._ignore is None
                else exception_names(self._ignore, "throttle ignore"),
                "name": self._name,
            }
        )

    @classmethod
    def from_config(cls, options: Mapping[str, Any], where: str) -> AdaptiveThrottle:
        from stoic import _configuration

        allowed = ("k", "window", "max_rejection", "min_requests", "record", "ignore", "name")
        _configuration.check_keys(options, allowed, where)
        options = dict(options)
        for key in ("record", "ignore"):
            if key in options:
                options[key] = _configuration.exceptions(options[key], f"{where}.{key}")
        return cls(**options)

    # -- the call ----------------------------------------------------------------------------

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``await fn(*args, **kwargs)`` unless the throttle refuses it (``Throttled``).

        Returns what ``fn`` returns and raises what it raises.
        """
        state = self._state
        probability = state.rejection(
            self._clock.now_ns(), self._k, self._min_requests, self._max_rejection
        )
        if probability and self._random() < probability:
            # A refusal counts as a request at once: that is what lets the probability
            # settle where the dependency's accepts can carry the load.
            self._count(accepted=False)
            self._refuse(probability)
        # A call is counted when its outcome is known, not when it starts: calls still
        # running are neither accepted nor rejected yet.
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            if type(exc) is TypeError:
                check_awaited(fn, args, exc)  # stoic's failure to await fn counts nowhere
            # Cancellation, or an answer that says nothing of load, counts as nothing; so
            # does a record or ignore predicate that raises (as for the breaker).
            if not never_handled(exc) and self._rejected_by(exc):
                self._count(accepted=False)
            raise
        failure_result = self._failure_result
        self._count(accepted=failure_result is None or not failure_result(result))
        return result

    def _rejected_by(self, exc: BaseException) -> bool:
        ignored = self._ignored
        return self._recorded(exc) and (ignored is None or not ignored(exc))

    def _count(self, *, accepted: bool) -> None:
        self._state.count(self._clock.now_ns(), accepted=accepted)

    def _refuse(self, probability: float) -> None:
        state = self._state
        emit(
            self._listeners,
            CallThrottled(self._name, probability, state.requests, state.accepts),
        )
        label = "throttle" if self._name is None else f"throttle {self._name!r}"
        retry_after = state.retry_after_ns(self._clock.now_ns()) / _clock.NS
        raise Throttled(
            f"{label} refused the call locally: it refuses {probability:.0%} of calls while "
            f"the dependency accepted {state.accepts} of the last {state.requests} "
            "(refusals included)",
            retry_after=retry_after,
            probability=probability,
        )
