"""``middleware()`` with real aiohttp sessions against real local servers (127.0.0.1).

Real sockets run on real time (``asyncio.run``): a virtual clock would jump while a socket
waits. Pipelines wait 0 s between attempts unless a test is about the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest

aiohttp = pytest.importorskip("aiohttp")

from stoic._circuit_breaker import CircuitState  # noqa: E402
from stoic._pipeline import Pipeline  # noqa: E402
from stoic._retry import Retry  # noqa: E402
from stoic.backoff import constant  # noqa: E402
from stoic.exceptions import CircuitBreakerOpen  # noqa: E402
from stoic.integrations.aiohttp import ERRORS, ResilientMiddleware, middleware  # noqa: E402
from stoic.integrations.http import HttpPolicy, http_pipeline, retryable  # noqa: E402
from stoic.integrations.http._classify import Sending, sending  # noqa: E402
from tests.integrations.servers import flaky_server, scripted_server  # noqa: E402

T = TypeVar("T")


def run(main: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(main(), 60))  # type: ignore[arg-type]


def no_wait(scheme: str, host: str, port: int) -> Pipeline:
    """The standard pipeline, without waits between attempts."""
    return http_pipeline(name=f"{host}:{port}", backoff=constant(0))


@contextlib.asynccontextmanager
async def session(**options: Any) -> AsyncIterator[aiohttp.ClientSession]:
    resilient = options.pop("resilient", None) or middleware(no_wait)
    async with aiohttp.ClientSession(middlewares=(resilient,), **options) as http:
        yield http


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def exchange(*replies: object, method: str = "GET", **options: Any) -> tuple[int, str, int]:
    """One request through ``middleware(no_wait)`` to a server answering ``replies``: the
    status and body the caller got, and how many requests the server saw."""

    async def main() -> tuple[int, str, int]:
        async with (
            scripted_server(*replies) as server,
            session() as http,
            http.request(method, server.url, **options) as response,
        ):
            return response.status, await response.text(), len(server.requests)

    return run(main)


class TestRetries:
    def test_a_503_is_sent_again_and_the_next_answer_returned(self) -> None:
        assert exchange((503, {"Retry-After": "0"}), 200) == (200, "body 200", 2)

    @pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
    def test_transient_statuses_are_retried(self, status: int) -> None:
        assert exchange(status, 200) == (200, "body 200", 2)

    @pytest.mark.parametrize("status", [400, 404, 409, 501, 505])
    def test_other_statuses_are_answers(self, status: int) -> None:
        assert exchange(status, 200) == (status, f"body {status}", 1)

    def test_giving_up_returns_the_servers_last_answer_readable(self) -> None:
        assert exchange(503) == (503, "body 503", 4)

    def test_a_retry_after_is_waited_for(self) -> None:
        async def main() -> tuple[int, float]:
            loop = asyncio.get_running_loop()
            async with scripted_server((503, {"Retry-After": "1"}), 200) as server, session() as h:
                started = loop.time()
                async with h.get(server.url) as response:
                    return response.status, loop.time() - started

        status, waited = run(main)
        assert status == 200
        assert 1.0 <= waited < 1.8

    def test_a_get_whose_connection_dropped_is_sent_again(self) -> None:
        assert exchange("drop", 200) == (200, "body 200", 2)

    def test_a_refused_connection_is_retried_then_raised_with_a_note(self) -> None:
        async def main() -> None:
            async with session() as http:
                await http.get(f"http://127.0.0.1:{free_port()}/")

        with pytest.raises(aiohttp.ClientConnectorError) as info:
            run(main)
        assert any("gave up after 4 attempt(s)" in note for note in info.value.__notes__)


class TestIdempotency:
    def test_a_post_is_not_sent_again_after_a_503(self) -> None:
        assert exchange(503, 200, method="POST", json={"n": 1}) == (503, "body 503", 1)

    def test_a_post_with_an_idempotency_key_is_sent_again(self) -> None:
        async def main() -> tuple[int, list[bytes]]:
            async with (
                scripted_server(503, 200) as server,
                session() as http,
                http.post(server.url, json={"n": 1}, headers={"Idempotency-Key": "k1"}) as response,
            ):
                return response.status, [body for *_, body in server.requests]

        assert run(main) == (200, [b'{"n": 1}', b'{"n": 1}'])  # the same body, twice

    def test_a_post_whose_reply_was_lost_is_not_sent_again(self) -> None:
        async def main() -> int:
            async with scripted_server("drop", 200) as server:
                async with session() as http:
                    with pytest.raises(aiohttp.ServerDisconnectedError):
                        await http.post(server.url, json={"n": 1})
                return len(server.requests)

        assert run(main) == 1

    def test_a_streamed_body_is_never_sent_twice_and_a_note_says_why(self) -> None:
        async def body() -> AsyncIterator[bytes]:
            yield b"chunk"

        async def main() -> int:
            async with scripted_server("drop", 200) as server:
                async with session() as http:
                    with pytest.raises(aiohttp.ServerDisconnectedError) as info:
                        await http.put(server.url, data=body())
                    assert any("cannot be sent again" in n for n in info.value.__notes__)
                return len(server.requests)

        assert run(main) == 1


class TestPerHost:
    def test_one_failing_host_never_opens_another_hosts_breaker(self) -> None:
        resilient = middleware(no_wait)

        async def main() -> tuple[int, int]:
            async with (
                scripted_server("drop") as down,
                scripted_server(200) as up,
                session(resilient=resilient) as http,
            ):
                for _ in range(5):
                    with contextlib.suppress(aiohttp.ClientError, CircuitBreakerOpen):
                        await http.get(down.url)
                async with http.get(up.url) as response:
                    assert response.status == 200
                return len(down.requests), len(up.requests)

        down_requests, up_requests = run(main)
        # 5 failures open the breaker: every later call is refused without a request (aiohttp's
        # own resend of a GET on a dropped connection adds at most one).
        assert down_requests <= 6
        assert up_requests == 1

    def test_scheme_and_port_are_part_of_the_host(self) -> None:
        resilient = middleware()
        pipelines = {
            id(resilient.pipeline_for(url))
            for url in ("https://a.example/", "http://a.example/", "https://a.example:8443/")
        }
        assert len(pipelines) == 3
        assert resilient.pipeline_for("https://a.example:443/x") is resilient.pipeline_for(
            "https://a.example/"
        )

    def test_the_breaker_of_the_failing_host_is_open(self) -> None:
        resilient = middleware(no_wait)

        async def main() -> str:
            async with scripted_server(503) as down, session(resilient=resilient) as http:
                for _ in range(3):
                    with contextlib.suppress(CircuitBreakerOpen):
                        async with http.get(down.url):
                            pass
                return down.url

        url = run(main)
        breaker = resilient.pipeline_for(url).strategies[2]
        assert breaker.state is CircuitState.OPEN  # type: ignore[attr-defined]


class TestNoLeaks:
    def test_ten_thousand_retried_requests_hold_no_more_than_the_pool(self) -> None:
        """aiohttp's pool of 5: each request is first answered 503, which the middleware
        reads, releases and sends again."""

        def fast(scheme: str, host: str, port: int) -> Pipeline:
            # No breaker: half of all answers are 503s, which would rightly open it.
            return Pipeline(Retry(attempts=4, on=retryable, backoff=constant(0)))

        async def main() -> tuple[list[int], int, int]:
            async with flaky_server(fail_first=True) as server:
                connector = aiohttp.TCPConnector(limit=5)
                async with aiohttp.ClientSession(
                    connector=connector, middlewares=(middleware(fast),)
                ) as http:
                    semaphore = asyncio.Semaphore(20)

                    async def one(number: int) -> int:
                        async with semaphore, http.get(f"{server.url}{number}") as response:
                            await response.read()
                            return response.status

                    statuses = await asyncio.gather(*(one(n) for n in range(10_000)))
                return statuses, server.served, server.most_open

        statuses, served, most_open = run(main)  # a leak would hang it until the timeout
        assert statuses == [200] * 10_000
        assert served >= 20_000
        assert most_open <= 5


class TestWithoutMiddlewares:
    """``ResilientMiddleware.request``: the same rules on any aiohttp, middlewares or not."""

    def test_a_503_is_sent_again(self) -> None:
        async def main() -> tuple[int, str, int]:
            resilient = middleware(no_wait)
            async with scripted_server(503, 200) as server, aiohttp.ClientSession() as http:
                response = await resilient.request(http, "get", server.url)
                async with response:
                    return response.status, await response.text(), len(server.requests)

        assert run(main) == (200, "body 200", 2)

    def test_a_post_is_sent_again_only_with_an_idempotency_key(self) -> None:
        async def main() -> tuple[int, int]:
            async with scripted_server(503, 503, 200) as server, aiohttp.ClientSession() as http:
                resilient = middleware(no_wait)
                plain = await resilient.request(http, "POST", server.url, data=b"x")
                keyed = await resilient.request(
                    http, "POST", server.url, data=b"x", headers={"idempotency-key": "k"}
                )
                return plain.status, keyed.status

        assert run(main) == (503, 200)


class TestClassification:
    """aiohttp's exceptions, by what they say about a request and its host."""

    def _retryable(self, exc: BaseException, method: str = "GET") -> bool:
        token = sending.set(Sending(method, False, True, HttpPolicy(), ERRORS))
        try:
            return retryable(exc)
        finally:
            sending.reset(token)

    def test_tls_and_url_errors_are_the_clients_own(self) -> None:
        key: Any = None
        assert not self._retryable(aiohttp.ClientSSLError(key, OSError("bad cert")))
        assert not self._retryable(aiohttp.InvalidURL("not a url"))

    def test_a_refused_connection_is_retried_for_any_method(self) -> None:
        key: Any = None
        assert self._retryable(aiohttp.ClientConnectorError(key, OSError()), method="POST")

    def test_a_read_timeout_is_retried_for_an_idempotent_method_only(self) -> None:
        assert self._retryable(aiohttp.SocketTimeoutError())
        assert not self._retryable(aiohttp.SocketTimeoutError(), method="POST")


class TestConstruction:
    def test_policy_must_be_an_http_policy(self) -> None:
        with pytest.raises(TypeError, match="policy must be a stoic.integrations.http"):
            middleware(policy={"max_retry_after": 5})  # type: ignore[arg-type]

    @pytest.mark.parametrize("value", [0, -1, True, 1.5])
    def test_max_hosts_must_be_a_positive_int(self, value: Any) -> None:
        with pytest.raises(ValueError, match="max_hosts must be an int >= 1"):
            middleware(max_hosts=value)

    @pytest.mark.parametrize("value", [Pipeline, "standard", 3])
    def test_pipeline_must_be_a_pipeline_or_a_function(self, value: Any) -> None:
        with pytest.raises(TypeError, match="pipeline must be None, a stoic Pipeline"):
            middleware(value)

    def test_per_host_must_be_a_bool(self) -> None:
        with pytest.raises(TypeError, match="per_host must be True or False"):
            middleware(per_host=1)  # type: ignore[arg-type]

    def test_it_is_a_resilient_middleware(self) -> None:
        assert isinstance(middleware(), ResilientMiddleware)


class TestTelemetry:
    def test_a_calls_context_names_its_method_and_host_never_its_url(self) -> None:
        import stoic

        seen: list[dict[str, Any]] = []

        def listener(event: object) -> None:
            seen.append(dict(stoic.call_context().attributes))

        async def main() -> int:
            async with scripted_server(503, 200) as server, session() as http:
                stoic.add_listener(listener)
                try:
                    async with http.get(server.url + "items?user=42") as response:
                        assert response.status == 200
                finally:
                    stoic.remove_listener(listener)
                return int(server.url.rsplit(":", 1)[1].strip("/"))

        port = run(main)
        assert seen  # attempts and the retry were reported
        assert all(
            attributes
            == {"http.request.method": "GET", "server.address": "127.0.0.1", "server.port": port}
            for attributes in seen
        )


class TestAiohttpsOwnResend:
    def test_after_giving_up_on_a_dropped_connection_aiohttp_resends_once_outside(
        self,
    ) -> None:
        async def main() -> int:
            async with scripted_server("drop") as server, session() as http:
                with pytest.raises(aiohttp.ServerDisconnectedError):  # not CircuitBreakerOpen
                    await http.get(server.url)
                return len(server.requests)

        assert run(main) == 5  # the pipeline's 4 attempts, then aiohttp's own resend

    def test_the_next_request_goes_through_the_pipeline_again(self) -> None:
        def retry_only(scheme: str, host: str, port: int) -> Pipeline:
            return Pipeline(Retry(attempts=4, on=retryable, backoff=constant(0)))

        async def main() -> tuple[int, int]:
            replies = ("drop", "drop", "drop", "drop", "drop", 503, 200)
            async with (
                scripted_server(*replies) as server,
                session(resilient=middleware(retry_only)) as http,
            ):
                with pytest.raises(aiohttp.ServerDisconnectedError):
                    await http.get(server.url)
                async with http.get(server.url) as response:  # 503 retried, then 200
                    return response.status, len(server.requests)

        assert run(main) == (200, 7)


class TestWithoutMiddlewaresOptions:
    def test_an_idempotency_key_in_a_list_of_header_pairs_is_seen(self) -> None:
        async def main() -> int:
            async with scripted_server(503, 200) as server, aiohttp.ClientSession() as http:
                response = await middleware(no_wait).request(
                    http, "POST", server.url, data=b"x", headers=[("idempotency-key", "k")]
                )
                return response.status

        assert run(main) == 200

    def test_a_form_dict_is_sent_again(self) -> None:
        async def main() -> tuple[int, int]:
            async with scripted_server(503, 200) as server, aiohttp.ClientSession() as http:
                response = await middleware(no_wait).request(
                    http, "PUT", server.url, data={"a": "1"}
                )
                return response.status, len(server.requests)

        assert run(main) == (200, 2)

    def test_raise_for_status_applies_to_the_answer_not_the_attempts(self) -> None:
        async def main() -> tuple[int, int]:
            async with (
                scripted_server(503, 503, 200) as server,
                aiohttp.ClientSession(raise_for_status=True) as http,
            ):
                ok = await middleware(no_wait).request(http, "GET", server.url)
                return ok.status, len(server.requests)

        assert run(main) == (200, 3)

    def test_a_given_up_answer_raises_when_the_session_says_so(self) -> None:
        async def main() -> None:
            async with (
                scripted_server(503) as server,
                aiohttp.ClientSession(raise_for_status=True) as http,
            ):
                await middleware(no_wait).request(http, "GET", server.url)

        with pytest.raises(aiohttp.ClientResponseError) as info:
            run(main)
        assert info.value.status == 503

    async def test_a_relative_url_is_refused(self) -> None:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(ValueError, match="url must be absolute"):
                await middleware().request(http, "GET", "/items")


class TestFailures:
    def test_is_failure_knows_aiohttps_errors_outside_the_middleware(self) -> None:
        from stoic.integrations import http
        from stoic.integrations.aiohttp import is_failure

        key: Any = None
        refused = aiohttp.ClientConnectorError(key, OSError("refused"))
        assert is_failure(refused)
        assert not is_failure(aiohttp.InvalidURL("nope"))
        assert not http.is_failure(refused)  # the shared one needs to know the client

    def test_a_request_body_that_fails_is_no_failure_of_the_host(self) -> None:
        from stoic import CircuitBreaker, CircuitState

        breaker = CircuitBreaker(failure_threshold=1, record=aiohttp_is_failure())

        async def body() -> AsyncIterator[bytes]:
            raise ValueError("the caller's generator broke")
            yield b""  # pragma: no cover

        async def main() -> None:
            resilient = middleware(Pipeline(breaker))
            async with scripted_server(200) as server, session(resilient=resilient) as http:
                with pytest.raises(aiohttp.ClientError):
                    await http.put(server.url, data=body())

        run(main)
        assert breaker.state is CircuitState.CLOSED


def aiohttp_is_failure() -> Any:
    from stoic.integrations.aiohttp import is_failure

    return is_failure
