"""Reading a request: its JSON body, bounded, and the text fields in it."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bot.bodies import read_bounded
from bot.messages import well_formed
from handoff.api.errors import ApiError
from handoff.api.state import api_state

MAX_BODY = 64 * 1024
MAX_NAME_CHARS = 200


async def read_json(request: web.Request, fields: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON object of the body (at most MAX_BODY bytes); {} when there is none. With `fields`, any
    other key is refused: `{"id": …}` for `{"conversation_id": …}` must not claim the next one instead."""
    body = await read_bounded(request, MAX_BODY)
    if body is None:
        raise ApiError(413, "too_large", f"the body is larger than {MAX_BODY} bytes")
    if not body.strip():
        return {}
    if request.content_type != "application/json":
        raise ApiError(415, "bad_request", "send JSON (Content-Type: application/json)")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_request", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    unknown = sorted(str(k)[:40] for k in data if k not in fields) if fields else []
    if unknown:
        raise ApiError(400, "bad_request", f"unknown field '{unknown[0]}' (expected: {', '.join(fields)})")
    return data


def text_field(data: dict[str, Any], name: str, limit: int, required: bool = True, strip: bool = True) -> str:
    value = data.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ApiError(400, "bad_request", f"'{name}' must be text")
    value = well_formed(value)  # half an emoji pasted would fail to store (a 500), not just look odd
    if required and not value.strip():
        raise ApiError(400, "bad_request", f"'{name}' is required")
    if len(value) > limit:
        raise ApiError(400, "bad_request", f"'{name}' is longer than {limit} characters")
    return value.strip() if strip else value


def max_chars(request: web.Request) -> int:
    return api_state(request).service.settings.server.max_message_chars
