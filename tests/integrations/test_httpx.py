"""``ResilientTransport`` against ``httpx.MockTransport``: what a newcomer's client gets."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")

from stoic import _clock  # noqa: E402
from stoic._circuit_breaker import CircuitBreaker, CircuitState  # noqa: E402
from stoic._pipeline import Pipeline  # noqa: E402
from stoic._retry import Retry  # noqa: E402
from stoic.backoff import constant  # noqa: E402
from stoic.exceptions import CircuitBreakerOpen  # noqa: E402
from stoic.integrations.http import HttpPolicy  # noqa: E402
from stoic.integrations.httpx import (  # noqa: E402
    ResilientTransport,
    http_pipeline,
    is_failure,
    retryable,
)
from tests.integrations.servers import flaky_server  # noqa: E402


class Server:
    """A scripted server: each request gets the next (status, headers) of ``replies``, the
    last one repeating; or raises it when it is an exception. Records what it was sent."""

    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []
        self.closed = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        self.times.append(_clock.now())
        reply = self.replies[0] if len(self.replies) == 1 else self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        status, headers = reply if isinstance(reply, tuple) else (reply, {})
        return httpx.Response(status, headers=headers, stream=_Body(self, f"body {status}"))


class _Body(httpx.AsyncByteStream):
    """A response body that counts its closes, as a pooled connection would be released."""

    def __init__(self, server: Server, text: str) -> None:
        self.server = server
        self.text = text.encode()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.text

    async def aclose(self) -> None:
        self.server.closed += 1


def client(server: Server, **options: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=ResilientTransport(httpx.MockTransport(server), **options),
        base_url="https://api.example.com",
    )


def connect_error() -> httpx.ConnectError:
    return httpx.ConnectError("refused")


class TestRetries:
    async def test_a_503_with_retry_after_is_retried_after_it(self) -> None:
        server = Server((503, {"Retry-After": "1"}), 200)
        async with client(server) as http:
            response = await http.get("/items")
        assert response.status_code == 200
        assert len(server.requests) == 2
        assert server.times[1] - server.times[0] == pytest.approx(1.0)

    async def test_an_http_date_retry_after_is_read_against_the_responses_date(self) -> None:
        sent = email.utils.formatdate(1_700_000_000, usegmt=True)
        later = email.utils.formatdate(1_700_000_002, usegmt=True)
        server = Server((503, {"Retry-After": later, "Date": sent}), 200)
        async with client(server) as http:
            assert (await http.get("/items")).status_code == 200
        assert server.times[1] - server.times[0] == pytest.approx(2.0)

    @pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
    async def test_transient_statuses_are_retried(self, status: int) -> None:
        server = Server((status, {"Retry-After": "0"}), 200)
        async with client(server) as http:
            assert (await http.get("/items")).status_code == 200
        assert len(server.requests) == 2

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 501, 505])
    async def test_other_statuses_are_answers(self, status: int) -> None:
        server = Server(status)
        transport = ResilientTransport(httpx.MockTransport(server))
        async with httpx.AsyncClient(transport=transport) as http:
            for _ in range(10):
                assert (await http.get("https://api.example.com/x")).status_code == status
        assert len(server.requests) == 10  # never retried
        breaker = transport.pipeline_for(httpx.URL("https://api.example.com/")).strategies[2]
        assert breaker.statistics().failed_calls == 0  # never a breaker failure

    async def test_connect_errors_are_retried(self) -> None:
        server = Server(connect_error(), 200)
        async with client(server) as http:
            assert (await http.get("/items")).status_code == 200
        assert len(server.requests) == 2

    async def test_giving_up_returns_the_servers_last_answer_readable(self) -> None:
        server = Server((503, {"Retry-After": "0"}))
        async with client(server) as http:
            response = await http.get("/items")
        assert response.status_code == 503
        assert response.text == "body 503"
        assert response.elapsed.total_seconds() >= 0  # a response httpx completed itself
        assert len(server.requests) == 4  # the standard pipeline's four attempts

    async def test_a_given_up_answer_streams_like_any_response(self) -> None:
        server = Server((503, {"Retry-After": "0"}))
        async with client(server) as http, http.stream("GET", "/items") as response:
            assert response.status_code == 503
            assert b"".join([chunk async for chunk in response.aiter_raw()]) == b"body 503"

    async def test_a_full_pool_is_neither_retried_nor_the_hosts_failure(self) -> None:
        server = Server(httpx.PoolTimeout("pool full"))
        transport = ResilientTransport(httpx.MockTransport(server))
        async with httpx.AsyncClient(transport=transport) as http:
            for _ in range(6):
                with pytest.raises(httpx.PoolTimeout):
                    await http.get("https://api.example.com/")
        assert len(server.requests) == 6
        breaker = transport.pipeline_for(httpx.URL("https://api.example.com/")).strategies[2]
        assert breaker.state is CircuitState.CLOSED
        assert breaker.statistics().failed_calls == 0

    async def test_a_retry_after_beyond_max_retry_after_is_not_waited_for(self) -> None:
        # 10 s is well within the 30 s total timeout: only max_retry_after refuses it.
        server = Server((503, {"Retry-After": "10"}), 200)
        started = _clock.now()
        async with client(server, policy=HttpPolicy(max_retry_after=5.0)) as http:
            assert (await http.get("/items")).status_code == 503
        assert len(server.requests) == 1
        assert _clock.now() - started < 1.0

    async def test_a_retry_after_within_max_retry_after_is_waited_for_in_full(self) -> None:
        server = Server((503, {"Retry-After": "10"}), 200)
        async with client(server, policy=HttpPolicy(max_retry_after=20.0)) as http:
            assert (await http.get("/items")).status_code == 200
        assert server.times[1] - server.times[0] == pytest.approx(10.0)

    @pytest.mark.parametrize("value", ["9" * 400, b"\xb2"])  # b"\xb2" reads as "²"
    async def test_a_retry_after_too_long_or_unreadable_never_breaks_the_request(
        self, value: str | bytes
    ) -> None:
        server = Server((503, {"Retry-After": value}), 200)
        async with client(server) as http:
            status = (await http.get("/items")).status_code
        # Too long to wait for: the 503 as sent. Unreadable ("²"): the backoff decides.
        assert status == (503 if value.isascii() else 200)

    async def test_a_retry_after_past_the_total_timeout_gives_up_at_once(self) -> None:
        # 45 s is within max_retry_after (60 s) but past the 30 s total timeout.
        server = Server((503, {"Retry-After": "45"}), 200)
        started = _clock.now()
        async with client(server) as http:
            assert (await http.get("/items")).status_code == 503
        assert len(server.requests) == 1
        assert _clock.now() - started < 1.0


class TestIdempotency:
    async def test_a_post_is_not_sent_again_after_a_503(self) -> None:
        server = Server((503, {"Retry-After": "0"}), 200)
        async with client(server) as http:
            assert (await http.post("/orders", json={"n": 1})).status_code == 503
        assert len(server.requests) == 1

    async def test_a_post_with_an_idempotency_key_is_sent_again(self) -> None:
        server = Server((503, {"Retry-After": "0"}), 200)
        async with client(server) as http:
            response = await http.post(
                "/orders", json={"n": 1}, headers={"Idempotency-Key": "order-1"}
            )
        assert response.status_code == 200
        assert [request.content for request in server.requests] == [b'{"n":1}'] * 2

    async def test_the_idempotency_header_name_is_configurable(self) -> None:
        server = Server((503, {"Retry-After": "0"}), 200)
        policy = HttpPolicy(idempotency_header="X-Request-Id")
        async with client(server, policy=policy) as http:
            response = await http.post("/orders", headers={"X-Request-Id": "r1"})
        assert response.status_code == 200

    async def test_a_post_that_never_connected_is_sent_again(self) -> None:
        server = Server(connect_error(), 200)
        async with client(server) as http:
            assert (await http.post("/orders", json={"n": 1})).status_code == 200
        assert len(server.requests) == 2

    async def test_a_post_whose_reply_was_lost_is_not_sent_again(self) -> None:
        server = Server(httpx.ReadError("connection dropped"), 200)
        async with client(server) as http:
            with pytest.raises(httpx.ReadError):
                await http.post("/orders", json={"n": 1})
        assert len(server.requests) == 1

    async def test_a_streamed_body_is_never_sent_twice_and_a_note_says_why(self) -> None:
        async def body() -> AsyncIterator[bytes]:
            yield b"chunk"

        server = Server(connect_error(), 200)
        async with client(server) as http:
            with pytest.raises(httpx.ConnectError) as info:
                await http.put("/blob", content=body())
        assert len(server.requests) == 1
        assert any("cannot be sent again" in note for note in info.value.__notes__)


class TestPerHost:
    async def test_one_failing_host_never_opens_another_hosts_breaker(self) -> None:
        async def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(503 if request.url.host == "down.example" else 200)

        transport = ResilientTransport(httpx.MockTransport(handler))
        async with httpx.AsyncClient(transport=transport) as http:
            for _ in range(3):
                with contextlib.suppress(CircuitBreakerOpen):
                    await http.get("https://down.example/")
            assert (await http.get("https://up.example/")).status_code == 200
        down = transport.pipeline_for(httpx.URL("https://down.example/")).strategies[2]
        up = transport.pipeline_for(httpx.URL("https://up.example/")).strategies[2]
        assert down.state is CircuitState.OPEN
        assert up.state is CircuitState.CLOSED

    async def test_a_dead_host_at_one_call_a_second_stops_being_called(self) -> None:
        server = Server(connect_error())
        async with client(server) as http:
            for _ in range(60):
                with pytest.raises((httpx.ConnectError, CircuitBreakerOpen)):
                    await http.get("/items")
                await asyncio.sleep(1.0)
        # Without the breaker: 60 calls x 4 attempts = 240 requests. With it: 5 failures
        # open it, then one probe per 5 s break (about 12 in the remaining minute).
        assert len(server.requests) <= 20

    def test_hosts_are_kept_in_a_bounded_lru(self) -> None:
        transport = ResilientTransport(httpx.MockTransport(Server(200)), max_hosts=2)
        a = transport.pipeline_for(httpx.URL("https://a.example/"))
        b = transport.pipeline_for(httpx.URL("https://b.example/"))
        assert transport.pipeline_for(httpx.URL("https://a.example/x")) is a  # a is recent
        c = transport.pipeline_for(httpx.URL("https://c.example/"))  # evicts b
        assert transport.pipeline_for(httpx.URL("https://a.example/")) is a
        assert transport.pipeline_for(httpx.URL("https://c.example/")) is c
        assert transport.pipeline_for(httpx.URL("https://b.example/")) is not b  # made anew

    def test_scheme_and_port_are_part_of_the_host(self) -> None:
        transport = ResilientTransport(httpx.MockTransport(Server(200)))
        pipelines = {
            id(transport.pipeline_for(httpx.URL(url)))
            for url in ("https://a.example/", "http://a.example/", "https://a.example:8443/")
        }
        assert len(pipelines) == 3
        assert transport.pipeline_for(httpx.URL("https://a.example:443/")) is (
            transport.pipeline_for(httpx.URL("https://a.example/"))
        )

    def test_without_per_host_every_host_shares_one_pipeline(self) -> None:
        transport = ResilientTransport(httpx.MockTransport(Server(200)), per_host=False)
        assert transport.pipeline_for(httpx.URL("https://a.example/")) is (
            transport.pipeline_for(httpx.URL("https://b.example/"))
        )

    async def test_a_given_pipeline_is_copied_with_fresh_state_for_each_host(self) -> None:
        async def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(503 if request.url.host == "down.example" else 200)

        template = Pipeline(
            Retry(on=retryable, backoff=constant(0)),
            CircuitBreaker(failure_threshold=2, record=is_failure),
        )
        transport = ResilientTransport(httpx.MockTransport(handler), pipeline=template)
        async with httpx.AsyncClient(transport=transport) as http:
            with pytest.raises(CircuitBreakerOpen):
                await http.get("https://down.example/")
            assert (await http.get("https://up.example/")).status_code == 200
        down = transport.pipeline_for(httpx.URL("https://down.example/")).strategies[1]
        up = transport.pipeline_for(httpx.URL("https://up.example/")).strategies[1]
        assert (down.state, up.state) == (CircuitState.OPEN, CircuitState.CLOSED)
        assert template.strategies[1].state is CircuitState.CLOSED  # the template is untouched

    def test_a_pipeline_with_a_store_is_not_copied_per_host(self) -> None:
        from stoic.stores.memory import MemoryStore

        shared = CircuitBreaker(name="api", store=MemoryStore())
        for pipeline in (Pipeline(shared), Pipeline(Retry(), Pipeline(shared.with_()))):
            with pytest.raises(ValueError, match="shared by name"):
                ResilientTransport(httpx.MockTransport(Server(200)), pipeline=pipeline)

    def test_without_per_host_a_given_pipeline_is_used_as_given(self) -> None:
        mine = Pipeline(CircuitBreaker(record=is_failure))
        transport = ResilientTransport(
            httpx.MockTransport(Server(200)), pipeline=mine, per_host=False
        )
        assert transport.pipeline_for(httpx.URL("https://a.example/")) is mine

    def test_a_strategy_stoic_cannot_rebuild_is_shared_by_the_hosts(self) -> None:
        class Counting:
            async def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
                return await fn(*args, **kwargs)

        own = Counting()
        transport = ResilientTransport(
            httpx.MockTransport(Server(200)), pipeline=Pipeline(Retry(on=retryable), own)
        )
        a = transport.pipeline_for(httpx.URL("https://a.example/"))
        b = transport.pipeline_for(httpx.URL("https://b.example/"))
        assert a.strategies[1] is b.strategies[1] is own
        assert a.strategies[0] is not b.strategies[0]

    async def test_a_pipeline_function_is_asked_once_per_host(self) -> None:
        asked: list[tuple[str, str, int]] = []

        def make(scheme: str, host: str, port: int) -> Pipeline:
            asked.append((scheme, host, port))
            return Pipeline()

        async with httpx.AsyncClient(
            transport=ResilientTransport(httpx.MockTransport(Server(200)), pipeline=make)
        ) as http:
            await http.get("https://a.example/")
            await http.get("https://a.example/again")
        assert asked == [("https", "a.example", 443)]


class TestNoLeaks:
    async def test_every_discarded_response_is_closed(self) -> None:
        server = Server((503, {"Retry-After": "0"}), (502, {"Retry-After": "0"}), 200)
        async with client(server) as http:
            response = await http.get("/items")
            assert response.status_code == 200
        assert server.closed == 3  # two discarded, and the one the client read

    def test_ten_thousand_retried_requests_hold_no_more_than_the_pool(self) -> None:
        """Real sockets (a server on 127.0.0.1, httpx's own pool of 5), real time: each
        request is first answered 503, which the transport discards and sends again."""

        def fast(scheme: str, host: str, port: int) -> Pipeline:
            # No breaker: half of all answers are 503s, which would rightly open it.
            return Pipeline(Retry(attempts=4, on=retryable, backoff=constant(0)))

        async def main() -> tuple[list[int], int, int]:
            async with flaky_server(fail_first=True) as server:
                inner = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=5))
                transport = ResilientTransport(inner, pipeline=fast)
                async with httpx.AsyncClient(transport=transport, timeout=30.0) as http:
                    semaphore = asyncio.Semaphore(20)

                    async def one(number: int) -> int:
                        async with semaphore:
                            return (await http.get(f"{server.url}{number}")).status_code

                    # No PoolTimeout (nor any other error) escapes gather.
                    statuses = await asyncio.gather(*(one(n) for n in range(10_000)))
                return statuses, server.served, server.most_open

        statuses, served, most_open = asyncio.run(main())
        # A leaked connection would leave the pool short until requests time out waiting.
        assert statuses == [200] * 10_000
        assert served >= 20_000  # each answered 503 once (a few more if an attempt timed out)
        assert most_open <= 5  # the pool's own cap, seen from the server


class TestConstruction:
    def test_inner_must_be_a_transport_instance(self) -> None:
        with pytest.raises(TypeError, match="inner must be an httpx.AsyncBaseTransport"):
            ResilientTransport(httpx.AsyncHTTPTransport)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="inner must be"):
            ResilientTransport(object())  # type: ignore[arg-type]

    @pytest.mark.parametrize("value", [0, -1, True, 1.5])
    def test_max_hosts_must_be_a_positive_int(self, value: Any) -> None:
        with pytest.raises((TypeError, ValueError), match="max_hosts"):
            ResilientTransport(max_hosts=value)

    @pytest.mark.parametrize("value", [Pipeline, "standard", 3])
    def test_pipeline_must_be_a_pipeline_or_a_function(self, value: Any) -> None:
        with pytest.raises(TypeError, match="pipeline must be None, a stoic Pipeline"):
            ResilientTransport(pipeline=value)

    def test_policy_and_per_host_are_checked(self) -> None:
        with pytest.raises(TypeError, match="policy must be"):
            ResilientTransport(policy={"max_retry_after": 1})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="per_host must be True or False"):
            ResilientTransport(per_host=1)  # type: ignore[arg-type]

    async def test_a_pipeline_function_returning_something_else_is_a_clear_error(self) -> None:
        bad: Callable[..., Any] = lambda scheme, host, port: None  # noqa: E731
        transport = ResilientTransport(httpx.MockTransport(Server(200)), pipeline=bad)
        async with httpx.AsyncClient(transport=transport) as http:
            with pytest.raises(TypeError, match="returned None, not a Pipeline"):
                await http.get("https://a.example/")


class TestHttpPipeline:
    def test_the_default_stack_is_the_documented_one(self) -> None:
        transport = ResilientTransport(httpx.MockTransport(Server(200)))
        described = transport.pipeline_for(httpx.URL("https://api.example.com/")).describe()
        assert described.splitlines() == [
            "Pipeline 'api.example.com:443', outermost first:",
            "  1. timeout 30s",
            "  2. retry: 4 attempts, backoff Exponential(initial=2.0, multiplier=2.0, "
            "max_delay=30.0, jitter='full')",
            "  3. circuit breaker: opens after 5 consecutive failures, breaks for 5s",
            "  4. bulkhead: 1000 at once, 0 queued",
            "  5. timeout 10s",
        ]

    def test_its_options_change_the_stack(self) -> None:
        pipeline = http_pipeline(total=5.0, attempt=1.0, attempts=2, max_concurrent=8)
        lines = pipeline.describe().splitlines()
        assert lines[1] == "  1. timeout 5s"
        assert "2 attempts" in lines[2]
        assert lines[4:] == ["  4. bulkhead: 8 at once, 0 queued", "  5. timeout 1s"]

    async def test_an_attempt_that_hangs_is_cut_and_sent_again(self) -> None:
        calls = 0

        async def handler(request: httpx.Request) -> httpx.Response:
            nonlocal calls
            calls += 1
            if calls == 1:
                await asyncio.sleep(60)  # a 60 s hang: the 10 s attempt timeout cuts it
            return httpx.Response(200)

        started = _clock.now()
        async with httpx.AsyncClient(
            transport=ResilientTransport(httpx.MockTransport(handler))
        ) as http:
            assert (await http.get("https://api.example.com/")).status_code == 200
        assert calls == 2
        assert 10.0 <= _clock.now() - started < 30.0

    def test_outside_a_transport_is_failure_still_knows_httpxs_errors(self) -> None:
        # A breaker of your own around a plain client: record=is_failure.
        assert is_failure(httpx.ConnectError("refused"))
        assert not is_failure(httpx.PoolTimeout("pool full"))
        assert not is_failure(ValueError())

    def test_outside_a_transport_nothing_is_retryable(self) -> None:
        assert not retryable(httpx.ConnectError("refused"))
