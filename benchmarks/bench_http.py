"""HTTP: what ``ResilientTransport`` (httpx) and ``middleware()`` (aiohttp) add to a real
localhost request.

A keep-alive HTTP/1.1 server on 127.0.0.1 in the same process answers ``200 ok``; each case
sends GETs through one client, one after another, so a figure is a whole
request: the client, the transport, the socket round trip and the server's parsing. Server
and client are made for each sample and closed after it, untimed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from time import perf_counter_ns

from bench_registry import Runner, Unavailable, case, group

PLAIN = "httpx `AsyncHTTPTransport`"

HTTP = group(
    "http",
    "HTTP: a localhost GET through httpx, plain and through `ResilientTransport`",
    "One keep-alive connection to a server on 127.0.0.1 in the same process; ratios are to "
    "the plain transport of the same repetition.",
    bare=PLAIN,
)


async def _server() -> asyncio.Server:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


def _httpx() -> object:
    try:
        import httpx
    except ImportError as error:
        raise Unavailable("httpx is not installed") from error
    return httpx


def _loop(make_transport: Callable[[], object]) -> Runner:
    httpx = _httpx()

    async def run(n: int) -> int:
        # The server and the client live for one sample only: sockets left registered with
        # the event loop would slow every other group's loop iterations.
        server = await _server()
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        async with httpx.AsyncClient(transport=make_transport()) as client:  # type: ignore[attr-defined]
            await client.get(url)  # the connection is made before the clock starts
            start = perf_counter_ns()
            for _ in range(n):
                await client.get(url)
            elapsed = perf_counter_ns() - start
        server.close()
        await server.wait_closed()
        return elapsed

    return run


@case(HTTP, PLAIN, "baseline")
def _plain() -> Runner:
    httpx = _httpx()
    return _loop(httpx.AsyncHTTPTransport)  # type: ignore[attr-defined]


@case(HTTP, "stoic `ResilientTransport()` (the standard HTTP pipeline)", "stoic")
def _resilient() -> Runner:
    _httpx()
    from stoic.integrations.httpx import ResilientTransport

    return _loop(ResilientTransport)


PLAIN_AIOHTTP = "aiohttp `ClientSession`"

AIOHTTP = group(
    "http_aiohttp",
    "HTTP: a localhost GET through aiohttp, plain and through stoic's `middleware()`",
    "The same server; one `aiohttp.ClientSession` per sample, its one keep-alive connection "
    "made before the clock starts. Ratios are to the plain session of the same repetition.",
    bare=PLAIN_AIOHTTP,
)


def _aiohttp_loop(middlewares: Callable[[], tuple[object, ...]]) -> Runner:
    try:
        import aiohttp
    except ImportError as error:
        raise Unavailable("aiohttp is not installed") from error

    async def run(n: int) -> int:
        server = await _server()
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        async with aiohttp.ClientSession(middlewares=middlewares()) as session:  # type: ignore[arg-type]
            async with session.get(url) as response:
                await response.read()
            start = perf_counter_ns()
            for _ in range(n):
                async with session.get(url) as response:
                    await response.read()
            elapsed = perf_counter_ns() - start
        server.close()
        await server.wait_closed()
        return elapsed

    return run


@case(AIOHTTP, PLAIN_AIOHTTP, "baseline")
def _plain_aiohttp() -> Runner:
    return _aiohttp_loop(tuple)


@case(AIOHTTP, "stoic `middleware()` (the standard HTTP pipeline)", "stoic")
def _resilient_aiohttp() -> Runner:
    from stoic.integrations.aiohttp import middleware

    return _aiohttp_loop(lambda: (middleware(),))
