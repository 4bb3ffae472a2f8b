"""``middleware()``: an aiohttp client middleware that retries, breaks and bounds, per host.

::

    async with aiohttp.ClientSession(middlewares=(middleware(),)) as session:
        async with session.get("https://api.example.com/items") as response:
            ...

Client middlewares need aiohttp 3.12 or later. On older versions, send through the same
rules with ``ResilientMiddleware.request``::

    resilient = middleware()
    async with await resilient.request(session, "GET", url) as response:
        ...

With no other code, a request follows the rules of ``stoic.integrations.httpx`` (the
module docs of ``stoic.integrations.http`` list them): retried on a transient status and on
aiohttp's connection, timeout and payload errors, after the response's ``Retry-After``;
sent again only when that is safe (an idempotent method, an ``Idempotency-Key``, or a
request that never connected; never a streamed body); one pipeline per (scheme, host,
port); the last response handed over when the retry gives up. A discarded response is read
and released, so retries never hold a pooled connection. TLS errors, a fingerprint
mismatch and malformed URLs are the client's own: neither retried nor a breaker failure.

aiohttp itself sends an idempotent request once more when a kept-alive connection turns
out to be closed (``ServerDisconnectedError``, ``ClientOSError``); after stoic gave up on
one of those, that resend goes out once, as aiohttp meant, not through the pipeline again.
``ClientTimeout(total=...)`` bounds the whole request, stoic's retries and waits included.
The answer handed back when the retry gives up has been read: ``read()``, ``text()`` and
``json()`` give its body; streaming it (``content``, ``iter_chunked``) does not. Needs
``pip install stoic[aiohttp]``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

try:
    import aiohttp
    from aiohttp import payload as _payload
    from multidict import CIMultiDict
    from yarl import URL
except ImportError as error:  # pragma: no cover - the extra is missing
    raise ImportError(
        "stoic.integrations.aiohttp needs aiohttp: pip install stoic[aiohttp]"
    ) from error

from stoic._pipeline import Pipeline
from stoic.integrations.http import (
    ClientErrors,
    HttpPolicy,
    TransientResponse,
    retry_after_seconds,
)
from stoic.integrations.http._classify import Sending, failure_for, host_of, send
from stoic.integrations.http._hosts import HostPipelines
from stoic.integrations.http._pipeline import host_pipeline
from stoic.integrations.http._policy import checked_policy

__all__ = ["ERRORS", "ResilientMiddleware", "is_failure", "middleware"]


def _errors(*names: str) -> tuple[type[BaseException], ...]:
    """aiohttp's exception classes of these names (the ones this version has)."""
    found = (getattr(aiohttp, name, None) for name in names)
    return tuple(cls for cls in found if isinstance(cls, type))


#: aiohttp's exceptions, by what they say (``stoic.integrations.http.ClientErrors``).
ERRORS = ClientErrors(
    # Before anything reached the server: no connection, or none within the timeout.
    not_sent=_errors("ClientConnectorError", "ConnectionTimeoutError"),
    # After the request may have reached it: a dropped or reset connection, a read
    # timeout, a body cut short.
    maybe_sent=_errors(
        "ClientOSError",
        "ClientConnectionResetError",
        "ServerConnectionError",
        "ClientPayloadError",
    ),
    # Not the bare ClientConnectionError: aiohttp raises it for a request body that failed
    # to produce itself (the caller's generator raising), which says nothing of the host.
    failures=_errors(
        "ClientOSError",
        "ClientConnectionResetError",
        "ServerConnectionError",
        "ClientPayloadError",
    ),
    # TLS and fingerprint failures are configuration, which another attempt does not fix.
    own=_errors(
        "ClientSSLError",
        "ServerFingerprintMismatch",
        "InvalidURL",
        "NonHttpUrlClientError",
        "UploadAbortedError",
    ),
)

#: The breaker's ``record=`` for aiohttp, also outside the middleware.
is_failure = failure_for(ERRORS)

_Handler = Callable[[Any], Awaitable[aiohttp.ClientResponse]]
# aiohttp sends an idempotent request once more when its kept-alive connection turns out
# closed (``ClientOSError``, ``ServerDisconnectedError``), through the middlewares again.
# After the pipeline gave up on such an error, that resend is aiohttp's own: it goes out
# once, not through the pipeline's attempts a second time (nor charged to the breaker again).
_STALE = _errors("ClientOSError", "ServerDisconnectedError")
_CONNECTION_CONNECT = _errors("ClientConnectorError", "ConnectionTimeoutError")
_IDEMPOTENT_RESEND = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_resending: ContextVar[tuple[str, str] | None] = ContextVar("stoic_aiohttp_resending", default=None)


class ResilientMiddleware:
    """An aiohttp client middleware that runs each request through a stoic pipeline.

    - ``pipeline``: ``None`` for ``http_pipeline()``; a ``Pipeline``, copied with fresh
      state for each host when ``per_host``; or a function ``(scheme, host, port) ->
      Pipeline``. Its retry and breaker classify with ``stoic.integrations.http``'s
      ``retryable`` and ``is_failure`` (as ``http_pipeline`` does).
    - ``per_host``: one pipeline per (scheme, host, port) (default ``True``), else one for
      every host.
    - ``max_hosts``: how many hosts' pipelines are kept, least recently used dropped first.
    - ``policy``: an ``HttpPolicy`` (transient statuses, idempotency, ``max_retry_after``).

    Pass it in ``ClientSession(middlewares=(...))`` (aiohttp >= 3.12), or send with
    ``request`` on any version. One object per session: its pipelines hold the hosts' state.
    """

    __slots__ = ("_hosts", "_policy")

    def __init__(
        self,
        pipeline: Pipeline | Callable[[str, str, int], Pipeline] | None = None,
        *,
        per_host: bool = True,
        max_hosts: int = 1024,
        policy: HttpPolicy | None = None,
    ) -> None:
        self._policy = checked_policy(policy)
        self._hosts = HostPipelines(pipeline, per_host, max_hosts, host_pipeline)

    def __repr__(self) -> str:
        return f"ResilientMiddleware(policy={self._policy!r})"

    def pipeline_for(self, url: URL | str) -> Pipeline:
        """The pipeline requests to ``url``'s host run through (made on first use)."""
        return self._hosts.get(*_host(URL(url)))

    async def __call__(
        self, request: aiohttp.ClientRequest, handler: _Handler
    ) -> aiohttp.ClientResponse:
        """The middleware: ``handler(request)`` under the host's pipeline."""
        method, url = request.method, request.url
        marker = _resending.get()
        if marker is not None:
            _resending.set(None)
            if marker == (method, str(url)):
                return await handler(request)  # aiohttp's own resend (see _STALE): once
        body = request.body
        # Only bytes in memory can be sent again; a stream (a generator, a file) is read once.
        replayable = body == b"" or isinstance(body, _payload.BytesPayload)
        keyed = self._policy.idempotency_header in request.headers
        try:
            return await self._send(url, method, keyed, replayable, handler, request)
        except _STALE as exc:
            if (
                replayable
                and method in _IDEMPOTENT_RESEND
                and not isinstance(exc, _CONNECTION_CONNECT)
            ):
                _resending.set((method, str(url)))
            raise

    async def request(
        self, session: aiohttp.ClientSession, method: str, url: URL | str, **options: Any
    ) -> aiohttp.ClientResponse:
        """``session.request(method, url, **options)`` under the host's pipeline, for aiohttp
        without client middlewares (before 3.12), or a session made without this one.

        ``url`` must be absolute (the host's pipeline is chosen from it). The session's
        ``raise_for_status`` (or the one in ``options``) applies to the answer handed back,
        not to the attempts; a ``timeout`` in ``options`` bounds each attempt.
        """
        url = URL(url)
        if not url.is_absolute():
            raise ValueError(
                f"url must be absolute (scheme and host) for ResilientMiddleware.request, got "
                f"{str(url)!r}: the host's pipeline is chosen from it"
            )
        data = options.get("data")
        # What aiohttp turns into bytes in memory can be sent again; a stream cannot.
        replayable = data is None or isinstance(data, bytes | bytearray | str | dict)
        headers = CIMultiDict(session.headers)
        headers.update(CIMultiDict(options.get("headers") or {}))
        keyed = self._policy.idempotency_header in headers
        raise_for_status = options.pop("raise_for_status", session.raise_for_status)

        async def send(_: object) -> aiohttp.ClientResponse:
            return await session.request(method, url, raise_for_status=False, **options)

        response = await self._send(url, method.upper(), keyed, replayable, send, None)
        if callable(raise_for_status):
            await raise_for_status(response)
        elif raise_for_status:
            response.raise_for_status()
        return response

    async def _send(
        self,
        url: URL,
        method: str,
        keyed: bool,
        replayable: bool,
        handler: _Handler,
        request: object,
    ) -> aiohttp.ClientResponse:
        scheme, host, port = _host(url)
        pipeline = self._hosts.get(scheme, host, port)
        sending = Sending(method, keyed, replayable, self._policy, ERRORS)
        response: aiohttp.ClientResponse = await send(
            pipeline, sending, host, port, self._attempt, handler, request, method, url
        )
        return response

    async def _attempt(
        self, handler: _Handler, request: object, method: str, url: URL
    ) -> aiohttp.ClientResponse:
        response = await handler(request)
        status = response.status
        if status not in self._policy.transient_statuses:
            return response
        try:
            # Read, so the caller can still read it should this be the last attempt.
            await response.read()
        finally:
            response.release()  # the connection goes back to the pool either way
        headers = response.headers
        retry_after = retry_after_seconds(headers.get("Retry-After"), headers.get("Date"))
        raise TransientResponse(response, status, method, url.host or "", retry_after)


def _host(url: URL) -> tuple[str, str, int]:
    return host_of(url.scheme, url.host, url.port)


def middleware(
    pipeline: Pipeline | Callable[[str, str, int], Pipeline] | None = None,
    *,
    per_host: bool = True,
    max_hosts: int = 1024,
    policy: HttpPolicy | None = None,
) -> ResilientMiddleware:
    """A ``ResilientMiddleware``: ``aiohttp.ClientSession(middlewares=(middleware(),))``."""
    return ResilientMiddleware(pipeline, per_host=per_host, max_hosts=max_hosts, policy=policy)
