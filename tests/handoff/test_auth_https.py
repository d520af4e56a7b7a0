"""The console cookie is marked Secure when the login came over HTTPS, also through a TLS-terminating proxy
listed in server.trusted_proxies (its X-Forwarded-Proto), or always when the settings say so. Real HTTP on
127.0.0.1. Answers over HTTPS also tell the browser to stay on HTTPS (Strict-Transport-Security)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from handoff.auth import COOKIE, is_https
from tests.handoff import test_service
from tests.handoff.test_service import PASSWORD, add_agent, make_settings, serving

http = test_service.http
HTTPS = {"X-Forwarded-Proto": "https"}


@asynccontextmanager
async def _asking(trusted: tuple[str, ...]) -> AsyncIterator[str]:
    """A server on 127.0.0.1 answering whether each request came over HTTPS, its proxies `trusted`."""

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"https": is_https(request, trusted)})

    app = web.Application()
    app.router.add_get("/", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


async def _https(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> bool:
    async with http.get(url, headers=headers) as r:
        return bool((await r.json())["https"])


async def test_forwarded_https_is_believed_only_from_a_trusted_proxy(http: aiohttp.ClientSession) -> None:
    async with _asking(("127.0.0.1",)) as behind_proxy:
        assert await _https(http, behind_proxy, HTTPS)
        assert await _https(http, behind_proxy, {"X-Forwarded-Proto": "HTTPS, http"})  # as the client used it
        assert not await _https(http, behind_proxy, {"X-Forwarded-Proto": "http"})
        assert not await _https(http, behind_proxy, {})
    async with _asking(("10.0.0.1",)) as elsewhere, _asking(()) as no_proxy:
        assert not await _https(http, elsewhere, HTTPS)  # the client itself cannot say so
        assert not await _https(http, no_proxy, HTTPS)


async def _login_cookie(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> tuple[Any, bool]:
    """The session cookie, and whether the answer asked the browser to keep to HTTPS."""
    async with http.post(url + "/api/login", json={"name": "ana", "password": PASSWORD}, headers=headers) as r:
        assert r.status == 200
        return r.cookies[COOKIE], "Strict-Transport-Security" in r.headers


@pytest.mark.parametrize(
    ("server", "headers", "secure"),
    [
        ({"trusted_proxies": ("127.0.0.1",)}, HTTPS, True),
        ({"trusted_proxies": ("127.0.0.1",)}, {}, False),
        ({}, HTTPS, False),
        ({"console_cookie_secure": True}, {}, True),
    ],
)
async def test_the_login_cookie_is_secure_over_https(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path, http: aiohttp.ClientSession,
    server: dict[str, Any], headers: dict[str, str], secure: bool,
) -> None:  # fmt: skip
    settings = make_settings(redis_url, tmp_path)
    settings = dataclasses.replace(settings, server=dataclasses.replace(settings.server, **server))
    async with serving(settings) as served:
        await add_agent(served, "ana")
        cookie, hsts = await _login_cookie(http, served.url, headers)
    assert bool(cookie["secure"]) is secure
    assert hsts is (headers == HTTPS and "trusted_proxies" in server)  # only what came over HTTPS
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
