"""The console pages and their scripts and styles, read from handoff/static."""

from __future__ import annotations

import re
from importlib import resources

from aiohttp import web

from handoff.api.state import Handler

PAGES = {"/login": "login.html", "/agent": "agent.html", "/supervisor": "supervisor.html", "/admin": "admin.html"}
ASSET_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,100}\.(js|css|svg|png|ico|woff2|json)$")
ASSET_TYPES = {
    "js": "text/javascript", "css": "text/css", "svg": "image/svg+xml", "png": "image/png",
    "ico": "image/x-icon", "woff2": "font/woff2", "json": "application/json",
}  # fmt: skip


def _static_file(name: str) -> bytes | None:
    try:
        return resources.files("handoff").joinpath("static", name).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def page(name: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        body = _static_file(name)
        if body is None:
            return web.Response(status=404, text="the console pages are not installed")
        response = web.Response(body=body, content_type="text/html", charset="utf-8")
        response.headers["Cache-Control"] = "no-store"
        return response

    return handler


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    m = ASSET_RE.match(name)
    body = _static_file(name) if m else None
    if body is None or m is None:
        return web.Response(status=404, text="not found")
    response = web.Response(body=body, content_type=ASSET_TYPES[m.group(1)])
    response.headers["Cache-Control"] = "no-cache"
    return response
