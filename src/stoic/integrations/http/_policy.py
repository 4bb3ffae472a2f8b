"""The HTTP rules both integrations share: transient statuses, idempotency, Retry-After."""

from __future__ import annotations

import datetime
import email.utils
import time
from collections.abc import Callable, Iterable, Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from stoic import _validate

__all__ = ["HttpPolicy", "TransientResponse", "checked_policy", "retry_after_seconds"]

_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class TransientResponse(Exception):
    """A response with a transient status (503, say), raised so a retry and a breaker see it.

    ``response`` is the client's response object (its body already read, its connection
    released), ``status`` its status code, ``retry_after`` the seconds its ``Retry-After``
    asks for (``None`` when it has none). ``method`` and ``host`` say what was asked of whom.
    """

    def __init__(
        self, response: Any, status: int, method: str, host: str, retry_after: float | None
    ) -> None:
        super().__init__(f"{status} from {method} {host}")
        self.response = response
        self.status = status
        self.method = method
        self.host = host
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class HttpPolicy:
    """Which statuses are transient and which requests may be sent again (see the module doc)."""

    transient_statuses: AbstractSet[int] = _TRANSIENT
    idempotent_methods: AbstractSet[str] = _IDEMPOTENT
    idempotency_header: str = "Idempotency-Key"
    max_retry_after: float = 60.0
    # Normalised copies, for the checks made on every response.
    _methods: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        statuses = _set_of(self.transient_statuses, "transient_statuses", int)
        for status in statuses:
            if not 100 <= status <= 599:
                raise ValueError(
                    f"transient_statuses must hold HTTP status codes (100-599), got {status!r}"
                )
        methods = _set_of(self.idempotent_methods, "idempotent_methods", str)
        if not isinstance(self.idempotency_header, str) or not self.idempotency_header:
            raise TypeError(
                "idempotency_header must be a header name (a non-empty str), got "
                f"{self.idempotency_header!r}"
            )
        seconds = _validate.seconds(self.max_retry_after, "max_retry_after")
        object.__setattr__(self, "transient_statuses", statuses)
        object.__setattr__(self, "idempotent_methods", methods)
        object.__setattr__(self, "max_retry_after", seconds)
        object.__setattr__(self, "_methods", frozenset(method.upper() for method in methods))

    def may_send_again(self, method: str, has_idempotency_key: bool) -> bool:
        """Whether a request that may have reached the server can be sent once more."""
        return method.upper() in self._methods or has_idempotency_key


def checked_policy(policy: object) -> HttpPolicy:
    """A client integration's ``policy=``: ``None`` for the defaults, else an ``HttpPolicy``."""
    if policy is None:
        return HttpPolicy()
    if not isinstance(policy, HttpPolicy):
        raise TypeError(f"policy must be a stoic.integrations.http.HttpPolicy, got {policy!r}")
    return policy


def _set_of(value: object, parameter: str, kind: type) -> frozenset[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{parameter} must be a set of {kind.__name__}, got {value!r}")
    items = frozenset(value)
    for item in items:
        if not isinstance(item, kind) or isinstance(item, bool):
            raise TypeError(f"{parameter} must hold only {kind.__name__} values, got {item!r}")
    return items


def retry_after_seconds(
    value: str | None, date: str | None = None, *, now: Callable[[], float] = time.time
) -> float | None:
    """The seconds a ``Retry-After`` header asks for, or ``None`` when it asks for nothing.

    Delta-seconds (``"120"``) or an HTTP-date. A date is read against the response's own
    ``Date`` header when there is one, so a client whose clock is off waits what the server
    meant; without it, against ``now()`` (the wall clock: an HTTP-date is wall-clock time).
    A date in the past is 0; a number too large for a float is ``math.inf`` (too long to
    wait for); anything unreadable is ``None``.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²": str.isdigit takes Latin-1 digits too
        return float(value)  # inf for hundreds of digits
    when = _http_date(value)
    if when is None:
        return None
    sent = _http_date(date) if date is not None else None
    reference = sent if sent is not None else now()
    return max(0.0, when - reference)


def _http_date(value: str) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": HTTP-dates are GMT whatever they say
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()
