"""``retry_after_hint``: waits that servers (and stoic's own rejections) ask for."""

from __future__ import annotations

import math

__all__ = ["retry_after_hint"]

_NUMBERS = (int, float)


def retry_after_hint(outcome: object) -> float | None:
    """A ``delay_hint`` that honours servers' and stoic's own "retry after" hints.

    Looks, in order, for a numeric ``retry_after`` attribute (``CircuitBreakerOpen`` has one),
    then a ``Retry-After`` header in delta-seconds on ``outcome.response.headers`` or
    ``outcome.headers`` (httpx, aiohttp, requests shapes). Returns ``None`` (use the backoff)
    when there is none, or for the HTTP-date form, which would need the wall clock.
    """
    value = getattr(outcome, "retry_after", None)
    # ``is not None`` first: the usual case, and cheaper than the isinstance checks.
    if value is not None and isinstance(value, _NUMBERS) and not isinstance(value, bool):
        return _finite_seconds(value)
    # This runs on every retried failure, and a lookup that fails costs more than one that
    # succeeds (an AttributeError made and caught): skip those that cannot succeed.
    response = getattr(outcome, "response", None)
    headers = None if response is None else getattr(response, "headers", None)
    if not headers:
        headers = getattr(outcome, "headers", None)
        if headers is None:
            return None
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    header = getter("Retry-After") or getter("retry-after")
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    if isinstance(header, str) and header.strip().isdigit():
        return _finite_seconds(float(header.strip()))
    return None


def _finite_seconds(value: float) -> float | None:
    """``value`` as finite seconds >= 0, else ``None`` (a hint beyond any float is no hint)."""
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if 0 <= seconds < math.inf else None
