"""Request bodies read whole, up to a bound: the console API's JSON and Telegram's webhook updates."""

from __future__ import annotations

from aiohttp import web


async def read_bounded(request: web.BaseRequest, limit: int) -> bytes | None:
    """The whole body, or None once it is over `limit` bytes (by its Content-Length, or as it arrives).

    One `content.read(n)` returns what has arrived so far: a body split across TCP segments or chunks
    (a long message behind a proxy) would be cut, and read as a malformed one.
    """
    if (request.content_length or 0) > limit:
        return None
    body = b""
    while chunk := await request.content.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            return None
    return body
