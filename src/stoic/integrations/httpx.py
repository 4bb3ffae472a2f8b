"""``ResilientTransport``: an httpx transport that retries, breaks and bounds, per host.

::

    client = httpx.AsyncClient(transport=ResilientTransport())
    response = await client.get("https://api.example.com/items")

With no other code, a request through it:

- is retried on a transient status (408, 429, 500, 502, 503, 504) and on httpx's connect,
  read, write, protocol and pool errors, after the response's ``Retry-After`` when it has one
  (delta-seconds or an HTTP-date, read against the response's ``Date``), else after a
  jittered exponential backoff; a ``Retry-After`` beyond ``HttpPolicy.max_retry_after``, or
  one that would end past the total timeout, is not waited for;
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

from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, NamedTuple

try:
    import httpx
except ImportError as error:  # pragma: no cover - the extra is missing
    raise ImportError("stoic.integrations.httpx needs httpx: pip install stoic[httpx]") from error

from stoic import _validate
from stoic._bulkhead import Bulkhead
from stoic._circuit_breaker import CircuitBreaker
from stoic._classify import note
from stoic._pipeline import Pipeline
from stoic._retry import Retry, retry_after_hint
from stoic._strategy import Frozen
from stoic._timeout import timeout
from stoic.backoff import Backoff, exponential
from stoic.exceptions import TimeoutExceeded
from stoic.integrations.http import HttpPolicy, TransientResponse, retry_after_seconds

__all__ = ["ResilientTransport", "http_pipeline", "is_failure", "retryable"]

HostKey = tuple[str, str, int]

# Failures before anything reached the server: safe to send again whatever the method. Not
# PoolTimeout: the client's own pool is full, which another attempt would only fill more.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
# Failures after the request may have reached it.
_MAYBE_SENT = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
    TimeoutExceeded,  # the attempt's own timeout
)
# The client's own mistakes and limits, which say nothing about the server's health.
_CLIENT_ERRORS = (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.PoolTimeout)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NOT_REPLAYABLE = "stoic: not retried: the request body is a stream, which cannot be sent again"
_NO_CAP = 86_400.0  # a day: in effect no cap on a single wait


class _Sending(NamedTuple):
    request: httpx.Request
    replayable: bool  # decided before the first attempt reads the body
    policy: HttpPolicy


# What the current task is sending through a ResilientTransport: what the retry's and the
# breaker's predicates, which see only the exception, need to know.
_sending: ContextVar[_Sending | None] = ContextVar("stoic_httpx_sending", default=None)


def retryable(exc: BaseException) -> bool:
    """Whether the request the current task sends through a ``ResilientTransport``, having
    failed with ``exc``, may be sent again: the ``on=`` of its pipeline's retry.

    A transient status (unless its ``Retry-After`` exceeds ``max_retry_after``) or a read,
    write, protocol or attempt-timeout error, after which the server may have acted: for an
    idempotent method or a request with an ``Idempotency-Key``. A connect or pool error,
    before anything was sent: for any method. Never a body that cannot be replayed (a note
    on ``exc`` says so); never outside a ``ResilientTransport``.
    """
    sending = _sending.get()
    if sending is None:
        return False
    request, replayable, policy = sending
    if isinstance(exc, TransientResponse):
        if exc.retry_after is not None and exc.retry_after > policy.max_retry_after:
            return False
        sent = True
    elif isinstance(exc, _NOT_SENT):
        sent = False
    elif isinstance(exc, _MAYBE_SENT):
        sent = True
    else:
        return False
    if sent and not policy.may_send_again(
        request.method, policy.idempotency_header in request.headers
    ):
        return False
    if not replayable:
        note(exc, _NOT_REPLAYABLE, _NOT_REPLAYABLE)
        return False
    return True


def is_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the host is failing: the ``record=`` of its pipeline's breaker.

    A transient status, an attempt timeout, and httpx's transport errors except the client's
    own mistakes and limits (an unsupported scheme, a malformed request, a full pool).
    """
    if isinstance(exc, TransientResponse | TimeoutExceeded):
        return True
    return isinstance(exc, httpx.TransportError) and not isinstance(exc, _CLIENT_ERRORS)


def http_pipeline(
    *,
    name: str | None = None,
    total: float = 30.0,
    attempt: float = 10.0,
    attempts: int = 4,
    backoff: Backoff | None = None,
    max_concurrent: int = 1000,
) -> Pipeline:
    """The pipeline each host gets by default, after Microsoft's standard resilience handler:
    a total timeout (``total`` s), up to ``attempts`` attempts with jittered exponential
    backoff (or ``backoff``) and ``Retry-After``, a breaker, a concurrency limit
    (``max_concurrent``) and a timeout per attempt (``attempt`` s).

    Where it differs: the breaker opens after 5 consecutive failures (for 5 s) instead of at
    a 10% failure rate over at least 100 calls in 30 s, which a small client never reaches:
    a dead host called once a second is, from its second call on, only probed once per
    5 s break.
    """
    return Pipeline(
        timeout(total),
        Retry(
            attempts=attempts,
            on=retryable,
            backoff=exponential(initial=2.0, max_delay=30.0) if backoff is None else backoff,
            delay_hint=retry_after_hint,
            # A Retry-After is waited for in full or not at all: the policy's max_retry_after
            # (``retryable`` refuses longer ones) and the total timeout bound it, never a cap
            # that would send the request again before the server asked.
            max_delay=_NO_CAP,
        ),
        CircuitBreaker(failure_threshold=5, break_duration=5.0, record=is_failure),
        Bulkhead(max_concurrent),
        timeout(attempt),
        name=name,
    )


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
        if policy is None:
            policy = HttpPolicy()
        elif not isinstance(policy, HttpPolicy):
            raise TypeError(f"policy must be a stoic.integrations.http.HttpPolicy, got {policy!r}")
        if not isinstance(per_host, bool):
            raise TypeError(f"per_host must be True or False, got {per_host!r}")
        self._inner = inner
        self._policy = policy
        self._per_host = per_host
        self._max_hosts = _validate.count(max_hosts, "max_hosts")
        self._make = self._maker(pipeline)
        self._pipelines: OrderedDict[HostKey, Pipeline] = OrderedDict()

    def _maker(self, pipeline: object) -> Callable[[str, str, int], Pipeline]:
        if pipeline is None:
            return lambda scheme, host, port: http_pipeline(name=f"{host}:{port}")
        if isinstance(pipeline, Pipeline):
            if not self._per_host:
                return lambda scheme, host, port: pipeline
            _check_copyable(pipeline)
            return lambda scheme, host, port: _fresh(pipeline)
        if isinstance(pipeline, type) or not callable(pipeline):
            raise TypeError(
                "pipeline must be None, a stoic Pipeline or a function (scheme, host, port) -> "
                f"Pipeline, got {pipeline!r}"
            )
        return pipeline

    def pipeline_for(self, url: httpx.URL) -> Pipeline:
        """The pipeline requests to ``url``'s host run through (made on first use)."""
        scheme = url.scheme
        key: HostKey = (
            (scheme, url.host, url.port or _DEFAULT_PORTS.get(scheme, 0))
            if self._per_host
            else ("", "", 0)
        )
        pipelines = self._pipelines
        pipeline = pipelines.get(key)
        if pipeline is None:
            pipeline = self._make(*key)
            if not isinstance(pipeline, Pipeline):
                raise TypeError(f"the pipeline function returned {pipeline!r}, not a Pipeline")
            pipelines[key] = pipeline
            if len(pipelines) > self._max_hosts:
                pipelines.popitem(last=False)
        else:
            pipelines.move_to_end(key)
        return pipeline

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pipeline = self.pipeline_for(request.url)
        # Only bytes in memory can be sent again; a stream (a generator, a file) is read once.
        replayable = isinstance(request.stream, httpx.ByteStream)
        token = _sending.set(_Sending(request, replayable, self._policy))
        try:
            return await pipeline.call(self._attempt, request)
        except TransientResponse as exc:
            # The retry gave up (or would not retry): the caller gets the server's answer.
            response: httpx.Response = exc.response
            return response
        finally:
            _sending.reset(token)

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


def _check_copyable(pipeline: Pipeline) -> None:
    """Refuse a strategy with a store in a pipeline copied per host: its copies would share
    their state through the store, by name, across every host."""
    for strategy in pipeline.strategies:
        if isinstance(strategy, Pipeline):
            _check_copyable(strategy)
        elif isinstance(strategy, Frozen) and strategy.options().get("store") is not None:
            raise ValueError(
                f"{strategy!r} keeps its state in a store, shared by name: copied for each "
                "host, every host would share it. Pass per_host=False, or pipeline=a function "
                "(scheme, host, port) -> Pipeline that names each host's strategies"
            )


def _fresh(strategy: Any) -> Any:
    """``strategy`` with the same options and state of its own (a pipeline's strategies too);
    a strategy stoic cannot rebuild is shared."""
    if isinstance(strategy, Pipeline):
        return strategy.with_(strategies=[_fresh(inner) for inner in strategy.strategies])
    if isinstance(strategy, Frozen):
        return strategy.with_()
    return strategy
