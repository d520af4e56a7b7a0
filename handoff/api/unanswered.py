"""The questions the bot could not answer, grouped, for the supervisor view (/api/unanswered)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot import unanswered as unanswered_kb
from handoff.api.errors import ApiError
from handoff.api.state import api_state

UNANSWERED_DAYS, UNANSWERED_MAX_DAYS = 30, 3650  # as `relevo faq unanswered`
UNANSWERED_TOP, UNANSWERED_MAX_TOP = 20, 1000
# Grouping costs a comparison per group a question shares a word with (bot/unanswered.group), and leaving out
# what the knowledge base answers by now a match per distinct wording (still_open): the supervisor view does
# both for the newest this many questions of the period, in a worker thread, so that a request takes about
# 1.5 s at worst (2 000 all different: 0.8 s matching, 0.7 s grouping) and the event loop keeps serving the
# live sockets meanwhile.
UNANSWERED_READ_MAX = 2000


_WHOLE = re.compile(r"[0-9]{1,9}")


def _whole(q: Any, name: str, default: int, most: int) -> int:
    text = q.get(name, "").strip()
    if not text:
        return default
    if not _WHOLE.fullmatch(text) or not 1 <= int(text) <= most:
        raise ApiError(400, "bad_request", f"'{name}' must be a whole number from 1 to {most}")
    return int(text)


@dataclass(frozen=True)
class UnansweredQuery:
    days: int
    top: int

    @classmethod
    def from_query(cls, q: Any) -> UnansweredQuery:
        return cls(_whole(q, "days", UNANSWERED_DAYS, UNANSWERED_MAX_DAYS),
                   _whole(q, "top", UNANSWERED_TOP, UNANSWERED_MAX_TOP))  # fmt: skip


async def _unanswered(
    request: web.Request,
) -> tuple[UnansweredQuery, list[unanswered_kb.Unanswered], list[unanswered_kb.Group], int]:
    """The questions of the asked period (the newest UNANSWERED_READ_MAX), grouped as the CLI groups them,
    without those the knowledge base in use answers by now (how many: the last value)."""
    f = UnansweredQuery.from_query(request.query)
    items = await unanswered_kb.read(api_state(request).service.redis, f.days, limit=UNANSWERED_READ_MAX)
    groups, answered = await asyncio.to_thread(unanswered_kb.open_groups, items, api_state(request).library)
    return f, items, groups[: f.top], answered


async def unanswered_list(request: web.Request) -> web.StreamResponse:
    f, items, groups, answered = await _unanswered(request)
    return web.json_response({
        "days": f.days, "top": f.top, "noted": len(items), "answered_now": answered, "read_max": UNANSWERED_READ_MAX,
        "capped": len(items) >= UNANSWERED_READ_MAX, "groups": [unanswered_kb.to_dict(g) for g in groups],
    })  # fmt: skip


async def unanswered_yaml(request: web.Request) -> web.StreamResponse:
    _, _, groups, _ = await _unanswered(request)
    text = await asyncio.to_thread(unanswered_kb.draft, groups, "the supervisor view (/api/unanswered.yaml)",
                                   api_state(request).library.kb)
    response = web.Response(text=text, content_type="text/yaml", charset="utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="relevo-unanswered.yaml"'
    return response
