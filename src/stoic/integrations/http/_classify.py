"""What a request is and how it failed: the predicates the HTTP pipelines classify with.

Each client integration says which of its exceptions mean what (``ClientErrors``) and, for
every request it sends, sets ``sending``: the retry's ``on=`` and the breaker's ``record=``
see only an exception, and read the rest (the method, the idempotency key, whether the
body can be sent again, the client's errors) from there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any, NamedTuple

from stoic._classify import note
from stoic._context import attributes_var
from stoic._pipeline import Pipeline
from stoic.exceptions import TimeoutExceeded
from stoic.integrations.http._policy import HttpPolicy, TransientResponse

__all__ = [
    "ClientErrors",
    "Sending",
    "failure_for",
    "host_of",
    "is_failure",
    "retryable",
    "send",
    "sending",
]

_NOT_REPLAYABLE = "stoic: not retried: the request body is a stream, which cannot be sent again"


@dataclass(frozen=True, slots=True)
class ClientErrors:
    """One HTTP client's exceptions, by what they say about a request and its host.

    - ``not_sent``: failed before anything reached the server (a refused connection): safe
      to send again whatever the method.
    - ``maybe_sent``: failed after the request may have reached it (a read timeout, a
      dropped connection): sent again only when that is safe.
    - ``failures``: the base classes of the client's transport errors: a host failure for
      the breaker, unless it is one of
    - ``own``: the client's own mistakes and limits (a bad URL, a full pool), which say
      nothing about the host: neither retried nor counted.
    """

    not_sent: tuple[type[BaseException], ...]
    maybe_sent: tuple[type[BaseException], ...]
    failures: tuple[type[BaseException], ...]
    own: tuple[type[BaseException], ...]


class Sending(NamedTuple):
    """What the current task is sending through an HTTP integration."""

    method: str
    keyed: bool  # carries the policy's idempotency header
    replayable: bool  # its body can be sent again, decided before the first attempt
    policy: HttpPolicy
    errors: ClientErrors


sending: ContextVar[Sending | None] = ContextVar("stoic_http_sending", default=None)

_Tokens = tuple[Token[Sending | None], Token[Any]]


_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_of(scheme: str, host: str | None, port: int | None) -> tuple[str, str, int]:
    """The (scheme, host, port) a request's pipeline is kept under, the port filled in."""
    return scheme, host or "", port or _DEFAULT_PORTS.get(scheme, 0)


async def send(
    pipeline: Pipeline,
    request: Sending,
    host: str,
    port: int,
    attempt: Callable[..., Awaitable[Any]],
    *args: Any,
) -> Any:
    """``attempt(*args)`` through ``pipeline``, the current task sending ``request`` to
    ``host`` meanwhile; a transient answer the retry gave up on is the caller's result."""
    tokens = begin(request, host, port)
    try:
        return await pipeline.call(attempt, *args)
    except TransientResponse as exc:
        # The retry gave up (or would not retry): the caller gets the server's answer.
        return exc.response
    finally:
        end(tokens)


def begin(request: Sending, host: str, port: int) -> _Tokens:
    """The current task sends ``request`` to ``host``: for the predicates, and for telemetry
    (``call_context().attributes``: the method and the host, never the URL). Undo with
    ``end``."""
    described: dict[str, str | int] = {
        "http.request.method": request.method,
        "server.address": host,
        "server.port": port,
    }
    return sending.set(request), attributes_var.set(described)


def end(tokens: _Tokens) -> None:
    """The request ``begin`` started is done."""
    sending.reset(tokens[0])
    attributes_var.reset(tokens[1])


def retryable(exc: BaseException) -> bool:
    """Whether the request the current task sends through an HTTP integration, having
    failed with ``exc``, may be sent again: the ``on=`` of its pipeline's retry.

    A transient status (unless its ``Retry-After`` exceeds ``max_retry_after``), an attempt
    timeout, or a client error after which the server may have acted: for an idempotent
    method or a request with an idempotency key. A client error before anything was sent:
    for any method. Never the client's own errors; never a body that cannot be replayed
    (a note on ``exc`` says so); never outside an integration.
    """
    current = sending.get()
    if current is None:
        return False
    method, keyed, replayable, policy, errors = current
    if isinstance(exc, TransientResponse):
        if exc.retry_after is not None and exc.retry_after > policy.max_retry_after:
            return False
        sent = True
    elif isinstance(exc, errors.own):
        return False
    elif isinstance(exc, errors.not_sent):
        sent = False
    elif isinstance(exc, (TimeoutExceeded, errors.maybe_sent)):
        sent = True
    else:
        return False
    if sent and not policy.may_send_again(method, keyed):
        return False
    if not replayable:
        note(exc, _NOT_REPLAYABLE, _NOT_REPLAYABLE)
        return False
    return True


def is_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the host is failing: the ``record=`` of its pipeline's breaker.

    A transient status, an attempt timeout, and the client's transport errors except its
    own mistakes and limits (an unsupported scheme, a malformed request, a full pool), the
    client being the one the current task sends through. Outside an integration, only the
    first two (each client's module has an ``is_failure`` that knows its errors anyway).
    """
    return _failure(exc, None)


def failure_for(errors: ClientErrors) -> Callable[[BaseException], bool]:
    """``is_failure`` for one client: its ``errors`` decide outside an integration too (a
    breaker of your own around a plain client)."""

    def is_failure(exc: BaseException) -> bool:
        return _failure(exc, errors)

    is_failure.__doc__ = _failure_doc
    return is_failure


_failure_doc = (
    "Whether ``exc`` says the host is failing: a transient status, an attempt timeout, or a "
    "transport error of this client other than its own mistakes and limits."
)


def _failure(exc: BaseException, fallback: ClientErrors | None) -> bool:
    if isinstance(exc, TransientResponse | TimeoutExceeded):
        return True
    current = sending.get()
    errors = fallback if current is None else current.errors
    if errors is None:
        return False
    return isinstance(exc, errors.failures) and not isinstance(exc, errors.own)
