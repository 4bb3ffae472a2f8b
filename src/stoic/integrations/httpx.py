"""``ResilientTransport``: an httpx transport that retries, breaks and bounds, per host.

::

    client = httpx.AsyncClient(transport=ResilientTransport())
    response = await client.get("https://api.example.com/items")

With no other code, a request through it:

- is retried on a transient status (408, 429, 500, 502, 503, 504) and on httpx's connect,
  read, write and protocol errors (never on a full pool: the client's own limit), after the
  response's ``Retry-After`` when it has one (delta-seconds or an HTTP-date, read against
  the response's ``Date``), else after a jittered exponential backoff; a ``Retry-After``
  beyond ``HttpPolicy.max_retry_after``, or one that would end past the total timeout, is not
  waited for;
- is sent again only when that is safe: an idempotent method (RFC 9110), a request carrying
  an ``Idempotency-Key``, or one that failed before anything was sent (connect errors); a
  request body that cannot be replayed (a stream or a generator) is never sent twice;
- runs in its host's own pipeline: breakers, bulkheads and rate limiters are per (scheme,
  host, port), in a bounded LRU, so one failing host never opens another host's breaker;
- ends with the last response when the retry gives up (the caller sees the 503 the server
  sent, its body readable), or with stoic's ``CircuitBreakerOpen`` / ``BulkheadFull`` /
  ``TimeoutExceeded`` when stoic refused or cut the call.

Every discarded response is read and closed, so retries never hold a pooled connection.
A 4xx other than 408 and 429 is a result: never retried, never a breaker failure.
Needs ``pip install stoic[httpx]``.
"""

from __future__ import annotations

from collections.abc import Callable

try:
    import httpx
except ImportError as error:  # pragma: no cover - the extra is missing
    raise ImportError("stoic.integrations.httpx needs httpx: pip install stoic[httpx]") from error

from stoic._pipeline import Pipeline
from stoic.integrations.http import (
    ClientErrors,
    HttpPolicy,
    TransientResponse,
    http_pipeline,
    retry_after_seconds,
    retryable,
)
from stoic.integrations.http._classify import Sending, failure_for, host_of, send
from stoic.integrations.http._hosts import HostPipelines
from stoic.integrations.http._pipeline import host_pipeline
from stoic.integrations.http._policy import checked_policy

__all__ = ["ERRORS", "ResilientTransport", "http_pipeline", "is_failure", "retryable"]

#: httpx's exceptions, by what they say (``stoic.integrations.http.ClientErrors``).
ERRORS = ClientErrors(
    # Before anything reached the server. Not PoolTimeout: the client's own pool is full,
    # which another attempt would only fill more.
    not_sent=(httpx.ConnectError, httpx.ConnectTimeout),
    maybe_sent=(
        httpx.ReadTimeout,
        httpx.WriteTimeout,
        httpx.ReadError,
        httpx.WriteError,
        httpx.RemoteProtocolError,
    ),
    failures=(httpx.TransportError,),
    own=(httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.PoolTimeout),
)
#: The breaker's ``record=`` for httpx: also outside a ``ResilientTransport`` (a breaker of
#: your own around a plain client), httpx's transport errors but its own are failures.
is_failure = failure_for(ERRORS)


class ResilientTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` that runs each request through a stoic pipeline.

    - ``inner``: the transport that sends (default ``httpx.AsyncHTTPTransport()``).
    - ``pipeline``: ``None`` for ``http_pipeline()``; a ``Pipeline``, copied with fresh
      state for each host when ``per_host``; or a function ``(scheme, host, port) ->
      Pipeline``. Its retry and breaker classify with this module's ``retryable`` and
      ``is_failure`` (as ``http_pipeline`` does) to follow the rules above.
    - ``per_host``: one pipeline per (scheme, host, port) (default ``True``), else one for
      every host.
    - ``max_hosts``: how many hosts' pipelines are kept, least recently used dropped first.
    - ``policy``: an ``HttpPolicy`` (transient statuses, idempotency, ``max_retry_after``).
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport | None = None,
        *,
        pipeline: Pipeline | Callable[[str, str, int], Pipeline] | None = None,
        per_host: bool = True,
        max_hosts: int = 1024,
        policy: HttpPolicy | None = None,
    ) -> None:
        if inner is None:
            inner = httpx.AsyncHTTPTransport()
        elif isinstance(inner, type) or not isinstance(inner, httpx.AsyncBaseTransport):
            raise TypeError(f"inner must be an httpx.AsyncBaseTransport instance, got {inner!r}")
        self._inner = inner
        self._policy = checked_policy(policy)
        self._hosts = HostPipelines(pipeline, per_host, max_hosts, host_pipeline)

    def pipeline_for(self, url: httpx.URL) -> Pipeline:
        """The pipeline requests to ``url``'s host run through (made on first use)."""
        return self._hosts.get(*_host(url))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        scheme, host, port = _host(request.url)
        pipeline = self._hosts.get(scheme, host, port)
        # Only bytes in memory can be sent again; a stream (a generator, a file) is read once.
        replayable = isinstance(request.stream, httpx.ByteStream)
        policy = self._policy
        keyed = policy.idempotency_header in request.headers
        sending = Sending(request.method, keyed, replayable, policy, ERRORS)
        response: httpx.Response = await send(pipeline, sending, host, port, self._attempt, request)
        return response

    async def _attempt(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        status = response.status_code
        if status not in self._policy.transient_statuses:
            return response
        headers = response.headers
        try:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
        except httpx.StreamConsumed:
            kept = response  # made from bytes already read (a mock's): complete as it is
        else:
            # What the caller gets should this be the last attempt: the same answer, unread,
            # as the inner transport would have handed it over (raw: still encoded as sent).
            kept = httpx.Response(
                status,
                headers=headers,
                stream=httpx.ByteStream(raw),
                extensions=response.extensions,
            )
        finally:
            await response.aclose()  # the connection goes back to the pool either way
        retry_after = retry_after_seconds(headers.get("Retry-After"), headers.get("Date"))
        raise TransientResponse(kept, status, request.method, request.url.host, retry_after)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _host(url: httpx.URL) -> tuple[str, str, int]:
    return host_of(url.scheme, url.host, url.port)
