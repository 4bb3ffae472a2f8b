"""Local HTTP servers for integration tests: real sockets on 127.0.0.1, a free port each."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class LocalServer:
    """What a test reads of a running server: its URL and its connection counts."""

    def __init__(self) -> None:
        self.url = ""
        self.served = 0
        self.open = 0
        self.most_open = 0


@contextlib.asynccontextmanager
async def flaky_server(*, fail_first: bool = False) -> AsyncIterator[LocalServer]:
    """An HTTP/1.1 keep-alive server answering 200, or, with ``fail_first``, ``503`` with
    ``Retry-After: 0`` the first time it is asked for a path."""
    stats = LocalServer()
    seen: set[bytes] = set()
    handlers: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers[writer] = task
        stats.open += 1
        stats.most_open = max(stats.most_open, stats.open)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1]
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                stats.served += 1
                if fail_first and path not in seen:
                    seen.add(path)
                    writer.write(
                        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\n"
                        b"Content-Length: 4\r\n\r\nbusy"
                    )
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            stats.open -= 1
            handlers.pop(writer, None)
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    stats.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        yield stats
    finally:
        server.close()
        # Connections still open (idle keep-alive ones) end as a client's close would end
        # them, so no handler is left to be cancelled by the loop's shutdown.
        for writer in list(handlers):
            writer.close()
        await asyncio.gather(*handlers.values(), return_exceptions=True)
        await server.wait_closed()


class Scripted:
    """What a ``scripted_server`` was asked and answers: ``replies`` are taken in order, the
    last one repeating: a status, ``(status, headers)``, or ``"drop"`` (the connection is
    closed with no answer)."""

    def __init__(self, replies: tuple[object, ...]) -> None:
        self.replies = list(replies)
        self.url = ""
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []

    def next_reply(self) -> object:
        return self.replies[0] if len(self.replies) == 1 else self.replies.pop(0)


@contextlib.asynccontextmanager
async def scripted_server(*replies: object) -> AsyncIterator[Scripted]:
    """A real aiohttp.web server on 127.0.0.1 (a free port), answering from a script."""
    import socket

    from aiohttp import web

    script = Scripted(replies)

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        script.requests.append((request.method, request.path, dict(request.headers), body))
        reply = script.next_reply()
        if reply == "drop":
            assert request.transport is not None
            request.transport.abort()  # the reply is lost: the client sees a dropped connection
            return web.Response()
        status, headers = reply if isinstance(reply, tuple) else (reply, {})
        return web.Response(status=status, headers=headers, text=f"body {status}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    script.url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    try:
        yield script
    finally:
        await runner.cleanup()
