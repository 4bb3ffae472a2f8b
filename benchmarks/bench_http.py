"""HTTP: what ``stoic.integrations.httpx.ResilientTransport`` adds to a real localhost request.

A keep-alive HTTP/1.1 server on 127.0.0.1 in the same process answers ``200 ok``; each case
sends GETs through one ``httpx.AsyncClient``, one after another, so a figure is a whole
request: the client, the transport, the socket round trip and the server's parsing.
"""

from __future__ import annotations

import asyncio
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


async def _server() -> str:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


def _httpx() -> object:
    try:
        import httpx
    except ImportError as error:
        raise Unavailable("httpx is not installed") from error
    return httpx


async def _loop(transport: object) -> Runner:
    httpx = _httpx()
    url = await _server()
    client = httpx.AsyncClient(transport=transport)  # type: ignore[attr-defined]
    await client.get(url)  # the connection is made before any sample

    async def run(n: int) -> int:
        start = perf_counter_ns()
        for _ in range(n):
            await client.get(url)
        return perf_counter_ns() - start

    return run


@case(HTTP, PLAIN, "baseline")
async def _plain() -> Runner:
    httpx = _httpx()
    return await _loop(httpx.AsyncHTTPTransport())  # type: ignore[attr-defined]


@case(HTTP, "stoic `ResilientTransport()` (the standard HTTP pipeline)", "stoic")
async def _resilient() -> Runner:
    httpx = _httpx()
    from stoic.integrations.httpx import ResilientTransport

    return await _loop(ResilientTransport(httpx.AsyncHTTPTransport()))  # type: ignore[attr-defined]
