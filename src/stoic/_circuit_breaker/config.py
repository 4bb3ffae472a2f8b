"""The circuit breaker's options (``CircuitBreakerConfig``, validated once) and its states."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from stoic import _validate
from stoic._classify import ExceptionFilter, compile_matcher
from stoic._events import Listener, validate_listeners

__all__ = [
    "CLOSED",
    "CONFIG_KEYS",
    "DEFAULT_CONFIG",
    "HALF_OPEN",
    "OPEN",
    "CircuitBreakerConfig",
    "CircuitState",
    "Options",
]


class CircuitState(enum.Enum):
    """Where a breaker is: running calls, rejecting them, or probing."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


CLOSED = CircuitState.CLOSED
OPEN = CircuitState.OPEN
HALF_OPEN = CircuitState.HALF_OPEN


# A time-window bucket narrower than this would count calls in buckets no clock can tell apart.
_MIN_BUCKET = 1e-6


@dataclass(frozen=True, slots=True)
class CircuitBreakerConfig:
    """Every option of a ``CircuitBreaker``, validated on construction (``ValueError``).

    Opening, closing and probing:

    - ``failure_threshold``: consecutive failures that open the breaker (default 5; the
      ``trip="consecutive"`` rule).
    - ``success_threshold``: probe successes in HALF_OPEN that close it (default 3).
    - ``timeout``: the break duration, seconds OPEN rejects calls before a probe is allowed
      (default 60.0). It is also each probe's lease: a probe running longer than the break
      duration stops holding its permit and its outcome is ignored.
    - ``half_open_max_calls``: probes allowed to run *at the same time* (default 1).
    - ``break_duration_multiplier``: each re-open straight from HALF_OPEN multiplies the
      break duration by this (>= 1, default 1.0: no growth); it is back to ``timeout`` once
      the breaker closes. ``max_break_duration``: the cap in seconds (>= ``timeout``),
      required when the multiplier is > 1, so the break can never grow without bound.

    Trip rules (``trip``):

    - ``"consecutive"`` (default): ``failure_threshold`` failures in a row open it.
    - ``"rate"``: the failure rate over a sliding window opens it, once the window holds at
      least ``minimum_calls`` (default 10) calls and ``failed / calls >= failure_rate``
      (in (0, 1], default 0.5). Give exactly one window: ``window_size`` (the last N calls)
      or ``window_duration`` (the last N seconds, kept as ``window_buckets`` buckets,
      default 10, so memory does not grow with traffic). ``failure_threshold`` is unused.

    Slow calls (off by default): with ``slow_call_duration`` set (seconds), a call that takes
    at least that long is *slow*, whether it succeeded or failed. Under ``"consecutive"`` a
    slow call counts as a failure; under ``"rate"`` slow calls have their own rate,
    ``slow_call_rate`` (in (0, 1], default 1.0), which opens the breaker like
    ``failure_rate`` does; in HALF_OPEN a slow probe is a failed probe.

    Classification:

    - ``record``: exceptions that count as failures: a type, a tuple of types or a predicate,
      exception-group aware (default ``Exception``).
    - ``ignore``: exceptions that count as nothing, even if ``record`` matches them (default
      ``None``). Exceptions ``record`` does not match count as nothing too (neither success
      nor failure). Either way the exception is re-raised untouched and a probe's permit is
      released.
    - ``failure_result``: a predicate on return values; ``True`` counts the call as a
      failure (the value is still returned). Default ``None``.
    - Cancellation, ``KeyboardInterrupt`` and ``SystemExit`` never count.

    ``name`` is carried by events; ``listeners`` receive every event of the breaker.
    """

    failure_threshold: int = 5
    success_threshold: int = 3
    timeout: float = 60.0
    half_open_max_calls: int = 1
    trip: Literal["consecutive", "rate"] = "consecutive"
    window_size: int | None = None
    window_duration: float | None = None
    window_buckets: int = 10
    minimum_calls: int = 10
    failure_rate: float = 0.5
    slow_call_duration: float | None = None
    slow_call_rate: float = 1.0
    break_duration_multiplier: float = 1.0
    max_break_duration: float | None = None
    record: ExceptionFilter = Exception
    ignore: ExceptionFilter | None = None
    failure_result: Callable[[Any], bool] | None = None
    name: str | None = None
    listeners: Iterable[Listener] = ()

    @property
    def break_duration(self) -> float:
        """``timeout`` by stoic's own name for it (``CircuitBreaker(break_duration=)``)."""
        return self.timeout

    def __post_init__(self) -> None:
        for parameter in ("failure_threshold", "success_threshold", "half_open_max_calls"):
            _validate.count(getattr(self, parameter), parameter)
        self._set("timeout", _validate.seconds(self.timeout, "timeout", positive=True))
        if self.trip not in ("consecutive", "rate"):
            raise ValueError(f"trip must be 'consecutive' or 'rate', got {self.trip!r}")
        windows = (self.window_size is not None) + (self.window_duration is not None)
        if self.trip == "rate" and windows != 1:
            raise ValueError(
                "trip='rate' needs exactly one of window_size (calls) or window_duration "
                f"(seconds), got window_size={self.window_size!r}, "
                f"window_duration={self.window_duration!r}"
            )
        if self.trip == "consecutive" and windows:
            raise ValueError("window_size and window_duration apply only to trip='rate'")
        if self.window_size is not None:
            _validate.count(self.window_size, "window_size")
        _validate.count(self.window_buckets, "window_buckets")
        if self.window_duration is not None:
            duration = _validate.seconds(
                self.window_duration,
                "window_duration",
                positive=True,
                optional=True,
                minimum=_MIN_BUCKET * self.window_buckets,
            )
            self._set("window_duration", duration)
        _validate.count(self.minimum_calls, "minimum_calls")
        if self.window_size is not None and self.minimum_calls > self.window_size:
            raise ValueError(
                f"minimum_calls must be <= window_size ({self.window_size}), "
                f"got {self.minimum_calls!r}"
            )
        _validate.fraction(self.failure_rate, "failure_rate")
        if self.slow_call_duration is not None:
            slow = _validate.seconds(
                self.slow_call_duration, "slow_call_duration", positive=True, optional=True
            )
            self._set("slow_call_duration", slow)
        _validate.fraction(self.slow_call_rate, "slow_call_rate")
        multiplier = _validate.number(
            self.break_duration_multiplier, "break_duration_multiplier", minimum=1.0
        )
        if self.max_break_duration is not None:
            longest = _validate.seconds(
                self.max_break_duration, "max_break_duration", positive=True, optional=True
            )
            self._set("max_break_duration", longest)
            if self.max_break_duration < self.timeout:
                raise ValueError(
                    f"max_break_duration must be >= timeout ({self.timeout}), "
                    f"got {self.max_break_duration!r}"
                )
        elif multiplier > 1:
            raise ValueError(
                "max_break_duration must be set (seconds >= timeout) when "
                "break_duration_multiplier > 1, got None"
            )
        compile_matcher(self.record, parameter="record")
        if self.ignore is not None:
            compile_matcher(self.ignore, parameter="ignore")
        if self.failure_result is not None and not callable(self.failure_result):
            raise TypeError(
                f"failure_result must be a predicate on the result, got {self.failure_result!r}"
            )
        _validate.name(self.name)
        self._set("listeners", validate_listeners(self.listeners))

    def _set(self, field: str, value: object) -> None:
        """Store a field's canonical form (seconds as floats): the one write after init."""
        object.__setattr__(self, field, value)


class Options(TypedDict, total=False):
    """The keyword options of ``CircuitBreaker``: the fields of ``CircuitBreakerConfig``."""

    failure_threshold: int
    success_threshold: int
    timeout: float
    break_duration: float
    half_open_max_calls: int
    trip: Literal["consecutive", "rate"]
    window_size: int | None
    window_duration: float | None
    window_buckets: int
    minimum_calls: int
    failure_rate: float
    slow_call_duration: float | None
    slow_call_rate: float
    break_duration_multiplier: float
    max_break_duration: float | None
    record: ExceptionFilter
    ignore: ExceptionFilter | None
    failure_result: Callable[[Any], bool] | None
    name: str | None
    listeners: Iterable[Listener]


DEFAULT_CONFIG = CircuitBreakerConfig()
# The config fields a config table can set: all but the function and the listeners.
CONFIG_KEYS = tuple(
    field.name
    for field in dataclasses.fields(CircuitBreakerConfig)
    if field.name not in ("failure_result", "listeners")
)
