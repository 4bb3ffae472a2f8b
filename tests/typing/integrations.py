"""Checked by ``mypy --strict --warn-unused-ignores`` (``make typecheck``), never run: the
HTTP integrations' types as a user's code meets them.

Each ``# type: ignore[...]`` marks a misuse mypy must reject (the check fails if it stops).
"""

from __future__ import annotations

from typing import assert_type

import aiohttp
import httpx

from stoic import Bulkhead, Pipeline, Retry
from stoic.integrations.aiohttp import ResilientMiddleware, middleware
from stoic.integrations.http import HttpPolicy, http_pipeline, is_failure, retryable
from stoic.integrations.httpx import ResilientTransport


def per_host(scheme: str, host: str, port: int) -> Pipeline:
    return http_pipeline(name=f"{host}:{port}")


async def main() -> None:
    # httpx: the transport is an httpx transport.
    transport = ResilientTransport(pipeline=per_host, policy=HttpPolicy(max_retry_after=10.0))
    async with httpx.AsyncClient(transport=transport) as client:
        assert_type(await client.get("https://api.example.com/"), httpx.Response)
    assert_type(transport.pipeline_for(httpx.URL("https://api.example.com/")), Pipeline)

    # aiohttp: the middleware is one of aiohttp's client middlewares.
    resilient = middleware(Pipeline(Retry(on=retryable)), max_hosts=10)
    assert_type(resilient, ResilientMiddleware)
    async with aiohttp.ClientSession(middlewares=(resilient,)) as session:
        response = await resilient.request(session, "GET", "https://api.example.com/")
        assert_type(response, aiohttp.ClientResponse)
    assert_type(is_failure(ValueError()), bool)

    # Misuse: a policy that is not an HttpPolicy, an inner transport class, a bad pipeline.
    middleware(policy={"max_retry_after": 5})  # type: ignore[arg-type]
    ResilientTransport(httpx.AsyncHTTPTransport)  # type: ignore[arg-type]
    middleware(pipeline=Bulkhead)  # type: ignore[arg-type]
