"""An agent's work routes: queues, claims, conversations, replies, notes, transfers, canned replies."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aiohttp import web

from handoff import keys
from handoff.api.errors import ApiError, error_response
from handoff.api.inputs import MAX_NAME_CHARS, max_chars, read_json, text_field
from handoff.api.state import api_state, request_agent
from handoff.api.views import conversation_view, may_view, queue_items, queue_view, recent_view
from handoff.presence import now_ms
from handoff.service import OUTCOMES

CANNED_LIMIT = 10


async def queues(request: web.Request) -> web.StreamResponse:
    service, agent, now = api_state(request).service, request_agent(request), now_ms()
    mine = agent.queues(service.rules.queues())
    return web.json_response({"queues": [await queue_view(service, d, t, now) for d, t in mine]})


async def mine(request: web.Request) -> web.StreamResponse:
    service, agent = api_state(request).service, request_agent(request)
    states = await service.queues.states(await service.queues.assigned_to(agent.name))
    return web.json_response({"conversations": await queue_items(service, states, now_ms())})


async def recent(request: web.Request) -> web.StreamResponse:
    """The conversations this agent held lately and no longer holds (a supervisor's own too), newest first."""
    service, agent = api_state(request).service, request_agent(request)
    return web.json_response({"conversations": await recent_view(service, agent, now_ms())})


async def claim(request: web.Request) -> web.StreamResponse:
    service, agent = api_state(request).service, request_agent(request)
    data = await read_json(request, ("conversation_id",))
    wanted = text_field(data, "conversation_id", MAX_NAME_CHARS, required=False)
    claimed = await service.claim(agent, wanted or None)
    if claimed is None:
        return error_response(409, "empty", "nobody is waiting in your queues")
    api_state(request).hub.watch_for(agent.name, claimed)
    return web.json_response({"conversation_id": claimed})


async def _viewable(request: web.Request) -> str:
    cid = request.match_info["id"]
    if len(cid) > MAX_NAME_CHARS or not await may_view(api_state(request).service, request_agent(request), cid):
        raise ApiError(403, "forbidden", "not your conversation")
    return cid


async def conversation(request: web.Request) -> web.StreamResponse:
    cid = await _viewable(request)
    agent = request_agent(request)
    view = await conversation_view(api_state(request).service, cid, None if agent.sees_all else agent)
    return web.json_response(view)


async def reply(request: web.Request) -> web.StreamResponse:
    text = text_field(await read_json(request, ("text",)), "text", max_chars(request))
    message_id = await api_state(request).service.reply(request_agent(request), request.match_info["id"], text)
    return web.json_response({"id": message_id})


async def note(request: web.Request) -> web.StreamResponse:
    cid = await _viewable(request)
    text = text_field(await read_json(request, ("text",)), "text", max_chars(request))
    return web.json_response({"id": await api_state(request).service.note(request_agent(request), cid, text)})


async def transfer(request: web.Request) -> web.StreamResponse:
    data = await read_json(request, ("department", "note"))
    department = text_field(data, "department", MAX_NAME_CHARS)
    text = text_field(data, "note", max_chars(request), required=False)
    await api_state(request).service.transfer(request_agent(request), request.match_info["id"], department, text)
    return web.Response(status=204)


async def escalate(request: web.Request) -> web.StreamResponse:
    text = text_field(await read_json(request, ("note",)), "note", max_chars(request), required=False)
    await api_state(request).service.escalate_tier(request_agent(request), request.match_info["id"], text)
    return web.Response(status=204)


async def release(request: web.Request) -> web.StreamResponse:
    await api_state(request).service.release(request_agent(request), request.match_info["id"])
    return web.Response(status=204)


async def take_over(request: web.Request) -> web.StreamResponse:
    state, agent = api_state(request), request_agent(request)
    await state.service.take_over(agent, request.match_info["id"])
    state.hub.watch_for(agent.name, request.match_info["id"])
    return web.Response(status=204)


async def return_to_bot(request: web.Request) -> web.StreamResponse:
    await api_state(request).service.return_to_bot(request_agent(request), request.match_info["id"])
    return web.Response(status=204)


async def resolve(request: web.Request) -> web.StreamResponse:
    data = await read_json(request, ("outcome", "note"))
    outcome = text_field(data, "outcome", MAX_NAME_CHARS)
    if outcome not in OUTCOMES:
        raise ApiError(400, "bad_request", f"outcome must be one of {', '.join(OUTCOMES)}")
    text = text_field(data, "note", max_chars(request), required=False)
    await api_state(request).service.resolve(request_agent(request), request.match_info["id"], outcome, text)
    return web.Response(status=204)


async def presence(request: web.Request) -> web.StreamResponse:
    state = text_field(await read_json(request, ("state",)), "state", 20)
    if state not in ("online", "away"):
        raise ApiError(400, "bad_request", "state must be online or away")
    service, agent = api_state(request).service, request_agent(request)
    await service.heartbeat(agent, state)
    event = {"event": "presence", "agent": agent.name, "state": state}
    await service.redis.publish(keys.EVENTS, json.dumps(event))
    return web.Response(status=204)


async def canned(request: web.Request) -> web.StreamResponse:
    q = request.query.get("q", "")[: max_chars(request)]
    lang = request.query.get("lang", "")
    lang = lang if lang in ("en", "es") else api_state(request).service.settings.conversation.default_lang
    library = api_state(request).library
    by_id = library.kb.by_id
    if q.strip():
        ids = [c.entry_id for c in library.match(q, lang, CANNED_LIMIT).candidates]
    else:
        ids = [e.id for e in library.kb.entries[:CANNED_LIMIT]]
    items = []
    for entry_id in ids:
        entry = by_id.get(entry_id)
        if entry is not None:
            text, text_lang = entry.answer_in(lang)
            items.append({"entry_id": entry.id, "title": entry.title(lang), "text": text, "lang": text_lang})
    return web.json_response({"items": items})


async def departments(request: web.Request) -> web.StreamResponse:
    """Each department with whether it is open now and how many agents who take its first tier are
    online: an agent about to transfer sees "Billing (closed now)" before the customer is told so."""
    service = api_state(request).service
    lang = request.query.get("lang", "en")
    online = set(await service.presence.online(now_ms()))
    agents = [a for a in await service.agent_list() if a.name in online and not a.disabled]
    now = datetime.now(UTC)
    found = [
        {"name": d.name, "display_name": d.display_in(lang), "open": d.hours.is_open(now),
         "online": sum(1 for a in agents if a.may_take(d.name, 1))}
        for d in service.rules.departments.values()
    ]  # fmt: skip
    return web.json_response({"departments": found})
