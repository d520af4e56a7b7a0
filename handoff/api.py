"""The agent API under /api/, the console pages, and the live console WebSocket (/api/ws)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import csv
import hmac
import html
import io
import json
import logging
import re
import statistics
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from importlib import resources
from typing import Any, Protocol, cast
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import WSMsgType, web

from bot import stats as bot_stats
from bot import unanswered as unanswered_kb
from bot.bodies import read_bounded
from bot.messages import well_formed
from bot.sessions import load_secret
from handoff import audit, keys, openapi
from handoff.accounts import AgentAdmin, AgentInUse, SignedOut, check_departments
from handoff.agents import (
    MAX_CAPACITY,
    MAX_DISPLAY_NAME_CHARS,
    MAX_PASSWORD_CHARS,
    MAX_TIER,
    MIN_PASSWORD_CHARS,
    NAME_RE,
    ROLES,
    Agent,
    AgentError,
    AgentExists,
    NoSuchAgent,
    Role,
    check_new_password,
)
from handoff.auth import (
    COOKIE,
    CSRF_HEADER,
    LOCKOUT_S,
    AccountDisabled,
    ConsoleAuth,
    ConsoleSession,
    LockedOut,
    client_address,
    is_https,
    role_allows,
    same_origin,
)
from handoff.conversations import LogEntry
from handoff.openapi import NOTE_BODY, TEXT_BODY, Doc
from handoff.presence import now_ms
from handoff.queues import HandoffState, QueueError
from handoff.record import HandoffRecord, load_record
from handoff.service import OUTCOMES, HandoffService
from handoff.summary import issue

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
MAX_NAME_CHARS = 200
QUEUE_LIMIT = 200
RECORDS_LIMIT = 500
RECORDS_MAX = 5000
AUDIT_READ_MAX = 200_000
UNANSWERED_DAYS, UNANSWERED_MAX_DAYS = 30, 3650  # as `relevo faq unanswered`
UNANSWERED_TOP, UNANSWERED_MAX_TOP = 20, 1000
# Grouping costs a comparison per group a question shares a word with (bot/unanswered.group), and leaving out
# what the knowledge base answers by now a match per distinct wording (still_open): the supervisor view does
# both for the newest this many questions of the period, in a worker thread, so that a request takes about
# 1.5 s at worst (2 000 all different: 0.8 s matching, 0.7 s grouping) and the event loop keeps serving the
# live sockets meanwhile.
UNANSWERED_READ_MAX = 2000
# How far into the audit stream, from an earlier conversation's handoff, its ending is looked for: a
# bounded read per conversation instead of a scan of the whole stream at every open.
EARLIER_AUDIT_WINDOW = 2_000
TRANSCRIPT_LIMIT = 500
CANNED_LIMIT = 10
WS_HEARTBEAT_S = 30.0
WS_SEND_QUEUE = 500
# How often a console socket checks that its sign-in still holds (logout, new password, disabled agent,
# revoked token): what an agent may no longer read stops reaching them within this time.
SESSION_CHECK_S = 10.0
SIGNED_OUT = 4401  # close code of a console socket whose sign-in ended
RIGHTS_CHANGED = 4409  # close code of a console socket whose agent's role, tier or departments changed
XREAD_BLOCK_MS = 1000
AT_RISK_SHARE = 0.25  # the last quarter of a first-reply target counts as "at risk"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
API_CSP = "default-src 'none'; frame-ancestors 'none'"
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PAGES = {"/login": "login.html", "/agent": "agent.html", "/supervisor": "supervisor.html", "/admin": "admin.html"}
ASSET_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,100}\.(js|css|svg|png|ico|woff2|json)$")
ASSET_TYPES = {
    "js": "text/javascript", "css": "text/css", "svg": "image/svg+xml", "png": "image/png",
    "ico": "image/x-icon", "woff2": "font/woff2", "json": "application/json",
}  # fmt: skip

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Library(Protocol):
    """What the API needs of faq.library.Library (canned replies; what it answers by now)."""

    @property
    def kb(self) -> Any: ...

    def match(self, text: str, lang: str | None = None, limit: int = 5) -> Any: ...

    def decide(self, text: str, lang: str | None = None) -> Any: ...


class RuntimeLike(Protocol):
    @property
    def library(self) -> Any: ...


@dataclass
class ApiState:
    service: HandoffService
    auth: ConsoleAuth
    library: Library
    hub: LiveHub


STATE = web.AppKey("handoff_api", ApiState)
# The caller of the request being handled (set by `guard`; each request runs in its own task).
CURRENT: contextvars.ContextVar[tuple[Agent, ConsoleSession]] = contextvars.ContextVar("console_caller")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str = "") -> web.Response:
    body: dict[str, Any] = {"error": code}
    if message:
        body["message"] = message
    return web.json_response(body, status=status)


def _state(request: web.Request) -> ApiState:
    return request.app[STATE]


def _agent(request: web.Request) -> Agent:
    return CURRENT.get()[0]


def _session(request: web.Request) -> ConsoleSession:
    return CURRENT.get()[1]


# -- input -----------------------------------------------------------------------------------------


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


def _text(data: dict[str, Any], name: str, limit: int, required: bool = True, strip: bool = True) -> str:
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


def _max_chars(request: web.Request) -> int:
    return _state(request).service.settings.server.max_message_chars


# -- views -----------------------------------------------------------------------------------------


def agent_json(agent: Agent, load: int = 0, presence: str = "offline") -> dict[str, Any]:
    return {
        "name": agent.name, "display_name": agent.label, "departments": list(agent.departments),
        "tier": agent.tier, "role": agent.role, "capacity": agent.capacity, "load": load,
        "presence": presence,
    }  # fmt: skip


async def _agent_view(service: HandoffService, agent: Agent) -> dict[str, Any]:
    load = await service.queues.load(agent.name)
    return agent_json(agent, load, await service.presence.status(agent.name))


def _deadline(service: HandoffService, st: HandoffState) -> tuple[int, int]:
    """(first-reply deadline ms, its length ms) of a handoff; 0 when the first reply came."""
    prio = service.rules.priority(st.priority)
    span = prio.first_reply_s * 1000
    return (0 if st.first_reply_at else st.queued_at + span), span


async def _states(service: HandoffService, ids: list[str]) -> list[HandoffState]:
    if not ids:
        return []
    raw = await service.redis.hmget(keys.STATES, ids)
    return [HandoffState.from_json(str(r)) for r in raw if r]


async def queue_items(service: HandoffService, states: list[HandoffState], now: int) -> list[dict[str, Any]]:
    """QueueItem views of handoff states (customer, summary and SLA risk included)."""
    if not states:
        return []
    pipe = service.redis.pipeline(transaction=False)
    for st in states:
        pipe.hmget(keys.conv(st.conversation_id), ["customer", "key"])
        pipe.get(keys.handoff_record(st.conversation_id))
    found = await pipe.execute()
    items = []
    for i, st in enumerate(states):
        customer, key = found[2 * i] or ("", "")
        raw = found[2 * i + 1]
        record = HandoffRecord.from_json(raw) if raw else None
        deadline, span = _deadline(service, st)
        items.append({
            "conversation_id": st.conversation_id, "customer": customer or key or "", "channel": st.channel,
            "lang": st.lang, "waited_s": max(0, (now - st.queued_at) // 1000), "priority": st.priority,
            "department": st.department, "tier": st.tier, "reasons": list(st.reasons),
            "summary": record.summary if record else "", "summary_parts": summary_parts(record) if record else None,
            "sla_at_risk": bool(deadline) and now >= deadline - span * AT_RISK_SHARE,
            "state": st.state, "agent": st.agent or None,
        })  # fmt: skip
    return items


async def _queue_view(service: HandoffService, department: str, tier: int, now: int) -> dict[str, Any]:
    ids = await service.queues.waiting(department, tier, QUEUE_LIMIT)
    items = await queue_items(service, await _states(service, ids), now)
    return {
        "department": department, "tier": tier, "length": await service.queues.length(department, tier),
        "oldest_wait_s": max((i["waited_s"] for i in items), default=0), "items": items,
    }  # fmt: skip


def transcript_item(entry: LogEntry) -> dict[str, Any]:
    return {
        "id": entry.id, "from": entry.sender, "text": entry.text, "ts": entry.ts, "author": entry.author,
        "kind": entry.kind,
        "attachments": [{"kind": a.kind, "caption": a.caption, "ref": a.ref} for a in entry.attachments],
        # What the customer was offered to press ("Did you mean…?" and its suggestions, "Talk to a person").
        "buttons": [b.label for b in entry.buttons],
    }  # fmt: skip


def summary_parts(record: HandoffRecord) -> dict[str, Any]:
    """What the record's summary says, in pieces: a console in another language than the server's English
    sentence says it with its own words around the customer's, which it shows as they are (as
    handoff.summary.build_summary picks them: the first substantive message, the last one)."""
    first, last = issue(record.transcript)
    return {
        "reasons": [r.to_dict() for r in record.reasons], "mood_score": record.mood_score,
        "mood_words": list(record.mood_words), "wants": first, "last": last,
        "tried": [[c.entry_id, c.score] for c in record.candidates[:2]], "lang": record.lang,
        "channel": record.channel, "messages": sum(1 for ln in record.transcript if ln.sender == "customer"),
        "earlier": len(record.earlier),
    }  # fmt: skip


def record_json(record: HandoffRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {**json.loads(record.to_json()), "summary_parts": summary_parts(record)}


async def may_view(service: HandoffService, agent: Agent, conversation_id: str) -> bool:
    """While handed over: its holder, or while it waits the agents who may take it. Once it ended: who
    held it last and the agents of the queue it ended in, not of the one it was first queued in (an
    escalated or transferred conversation's later notes are not for the first tier or department)."""
    if agent.sees_all:
        return True
    st = await service.queues.state(conversation_id) or await service.queues.ended(conversation_id)
    if st is None:
        return False  # never handed over (or its record is gone): nothing of it is any agent's
    if st.state == "assigned":
        return st.agent == agent.name
    return st.agent == agent.name or agent.may_take(*st.queue)


async def earlier_view(
    service: HandoffService, record: HandoffRecord | None, agent: Agent | None
) -> list[dict[str, Any]]:
    """The customer's earlier conversations that this agent may open, newest first, each with its date,
    queue, reasons and how it ended. One the agent may not open is left out: its id would only lead to a
    refusal (and says nothing to the agent anyway). Without an agent (the supervisor's record view) all."""
    if record is None:
        return []
    ids = [c for c in record.earlier if c and c != record.conversation_id]
    allowed = [c for c in ids if agent is None or await may_view(service, agent, c)]
    if not allowed:
        return []
    records = [await load_record(service.redis, c) for c in allowed]
    found = [r for r in records if r is not None]  # a record past its TTL has nothing to show
    out = []
    for r in found:
        entries = await audit.read(service.redis, start=f"{r.created_at}-0", count=EARLIER_AUDIT_WINDOW,
                                   conversation_id=r.conversation_id)  # fmt: skip
        ending = summarise(r.conversation_id, _handoffs(entries)[0]) if entries else None
        out.append({
            "conversation_id": r.conversation_id, "ts": r.created_at, "department": r.department, "tier": r.tier,
            "reasons": [x.code for x in r.reasons], "outcome": ending["outcome"] if ending else "",
        })  # fmt: skip
    out.sort(key=lambda e: e["ts"], reverse=True)
    return out


async def conversation_view(
    service: HandoffService, conversation_id: str, agent: Agent | None = None
) -> dict[str, Any]:
    """The conversation as `agent` may see it (None: as a supervisor sees it)."""
    conv = await service.conversations.get(conversation_id)
    if conv is None:
        raise ApiError(404, "not_found", "no such conversation")
    st = await service.queues.state(conversation_id)
    record = await load_record(service.redis, conversation_id)
    rating_raw = await service.redis.hmget(
        keys.conv(conversation_id), ["rating", "rating_comment", "email", "unreachable"]
    )
    rating = (
        {"score": int(rating_raw[0]) if rating_raw[0] else None, "comment": rating_raw[1] or ""}
        if rating_raw[0] or rating_raw[1] else None
    )
    log = await service.conversations.log(conversation_id, TRANSCRIPT_LIMIT)
    earlier = await earlier_view(service, record, agent)
    shown = record_json(record)
    if shown is not None:
        shown["earlier"] = [e["conversation_id"] for e in earlier]
        shown["summary_parts"]["earlier"] = len(earlier)
    return {
        "conversation_id": conv.id, "state": conv.state,
        "department": st.department if st else (record.department if record else ""),
        "tier": st.tier if st else (record.tier if record else 0),
        "priority": st.priority if st else (record.priority if record else ""),
        "agent": (st.agent or None) if st else None,
        # Who customers see: an agent's display name (the console says "with Ben", not "with ben").
        "agent_display": await service.display_name(st.agent) if st and st.agent else None,
        "lang": conv.lang, "channel": conv.channel,
        "customer": conv.customer or conv.key, "email": rating_raw[2] or "",
        # The customer blocked the bot (Telegram): replies are stored but cannot reach them.
        "unreachable": bool(rating_raw[3]),
        "record": shown, "earlier": earlier, "transcript": [transcript_item(e) for e in log],
        "notes": await service.notes(conversation_id), "rating": rating,
    }  # fmt: skip


# -- auth routes -------------------------------------------------------------------------------------


def _client_address(request: web.Request) -> str:
    """Who the failures of a password are counted against (the proxy's client, when it is trusted)."""
    trusted = _state(request).service.settings.server.trusted_proxies
    return client_address(request.remote, request.headers.get("X-Forwarded-For", ""), trusted)


def _locked_out(what: str) -> web.Response:
    """429 for `what` ("too many failed logins"), saying when to try again, in words and in Retry-After."""
    response = error_response(429, "locked", f"{what}; try again in {LOCKOUT_S // 60} minutes")
    response.headers["Retry-After"] = str(LOCKOUT_S)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    data = await read_json(request, ("name", "password"))
    name = _text(data, "name", MAX_NAME_CHARS)
    # As it was set: `relevo agent passwd` keeps spaces at either end, so the login must too.
    password = _text(data, "password", MAX_NAME_CHARS, strip=False)
    try:
        found = await state.auth.login(name, password, _client_address(request))
    except LockedOut:
        return _locked_out("too many failed logins")
    except AccountDisabled:
        # Only after the right password: a wrong one gets the same 401 whether the account exists or not.
        return error_response(403, "account_disabled", "this account is disabled; ask a supervisor")
    if found is None:
        return error_response(401, "unauthenticated", "wrong name or password")
    agent, session = found
    await state.service.heartbeat(agent, "online")
    response = web.json_response({"agent": await _agent_view(state.service, agent), "csrf": session.csrf})
    response.set_cookie(
        COOKIE, state.auth.cookie_value(session.id), httponly=True, samesite="Strict", path="/",
        secure=state.auth.secure_cookie(request), max_age=state.auth.ttl_s,
    )  # fmt: skip
    return response


async def login_status(request: web.Request) -> web.StreamResponse:
    """For the login page: why this browser's sign-in ended, when it is its agent's own business to know
    ("disabled"); else null. Nothing without that sign-in's signed cookie."""
    cookie = request.cookies.get(COOKIE, "")
    reason = await _state(request).auth.signed_out_reason(cookie) if cookie else None
    return web.json_response({"signed_out": reason})


async def logout(request: web.Request) -> web.StreamResponse:
    await _state(request).auth.logout(_session(request))
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/")
    return response


async def me(request: web.Request) -> web.StreamResponse:
    service, agent = _state(request).service, _agent(request)
    view = await _agent_view(service, agent)
    # The console sizes its reply box from max_message_chars: a longer reply would only be refused.
    return web.json_response({"agent": view, "csrf": _session(request).csrf, "presence": view["presence"],
                              "max_message_chars": _max_chars(request)})


# -- agents: one's own password, and the admin page's agent management ---------------------------------

NEW_AGENT_FIELDS = ("name", "display_name", "role", "departments", "tier", "capacity", "password")
CHANGE_AGENT_FIELDS = ("display_name", "role", "departments", "tier", "capacity", "disabled")


def _admin(request: web.Request) -> AgentAdmin:
    state = _state(request)
    return AgentAdmin(state.auth, state.service.queues)


def admin_agent_json(agent: Agent, load: int = 0) -> dict[str, Any]:
    """An agent as the admin page edits it: display_name as stored ("" = customers see the login name),
    never the password hash."""
    return {
        "name": agent.name, "display_name": agent.display_name, "label": agent.label, "role": agent.role,
        "departments": list(agent.departments), "tier": agent.tier, "capacity": agent.capacity,
        "disabled": agent.disabled, "load": load,
    }  # fmt: skip


def signed_out_json(out: SignedOut) -> dict[str, Any]:
    return {"sessions_ended": out.sessions, "tokens_revoked": out.tokens, "lockout_lifted": out.lockout_lifted}


@contextlib.contextmanager
def _agent_errors() -> Iterator[None]:
    """handoff.accounts' refusals as answers: its messages already say what to do."""
    try:
        yield
    except NoSuchAgent as exc:
        raise ApiError(404, "no_such_agent", str(exc)) from None
    except AgentExists as exc:
        raise ApiError(409, "agent_exists", str(exc)) from None
    except AgentInUse as exc:
        raise ApiError(409, "agent_in_use", str(exc)) from None
    except AgentError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


def _agent_name(request: web.Request) -> str:
    """The {name} of the path, if it can be an agent's (it becomes part of a Redis key)."""
    name = request.match_info["name"]
    if not NAME_RE.match(name):
        raise ApiError(404, "no_such_agent", f"agent '{name[:64]}' does not exist")
    return name


def _password(data: dict[str, Any], name: str) -> str:
    """A password field as typed (spaces at either end kept, as at login and `relevo agent passwd`)."""
    value = data.get(name)
    if value is None or value == "":
        raise ApiError(400, "bad_request", f"'{name}' is required")
    if not isinstance(value, str):
        raise ApiError(400, "bad_request", f"'{name}' must be text")
    return well_formed(value)


def _whole_number(data: dict[str, Any], name: str) -> int:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, "bad_request", f"'{name}' must be a whole number")
    return value


def _departments(service: HandoffService, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        raise ApiError(400, "bad_request", "'departments' must be a list of department names")
    departments = tuple(dict.fromkeys(d.strip() for d in value if d.strip()))
    with _agent_errors():
        check_departments(departments, service.rules.departments)
    return departments


def _agent_fields(service: HandoffService, data: dict[str, Any]) -> dict[str, Any]:
    """The agent's settings given in the body, checked as to their type; handoff.agents.Agent checks the
    values (role, tier and capacity ranges) when the record is built."""
    fields: dict[str, Any] = {}
    if "display_name" in data:
        fields["display_name"] = _text(data, "display_name", MAX_DISPLAY_NAME_CHARS, required=False)
    if "role" in data:
        fields["role"] = _text(data, "role", MAX_NAME_CHARS)
    if "departments" in data:
        fields["departments"] = _departments(service, data["departments"])
    for name in ("tier", "capacity"):
        if name in data:
            fields[name] = _whole_number(data, name)
    return fields


async def _admin_view(service: HandoffService, agent: Agent) -> dict[str, Any]:
    return admin_agent_json(agent, await service.queues.load(agent.name))


async def agents_list(request: web.Request) -> web.StreamResponse:
    service = _state(request).service
    agents = [await _admin_view(service, a) for a in await service.directory.all()]
    return web.json_response({"agents": agents, "roles": list(ROLES)})


async def agent_add(request: web.Request) -> web.StreamResponse:
    service = _state(request).service
    data = await read_json(request, NEW_AGENT_FIELDS)
    name = _text(data, "name", MAX_NAME_CHARS)
    password = _password(data, "password")
    missing = [f for f in ("departments", "tier") if f not in data]
    if missing:
        raise ApiError(400, "bad_request", f"'{missing[0]}' is required")
    fields = _agent_fields(service, data)
    with _agent_errors():
        agent = await _admin(request).add(Agent(name, **fields), password)
    service.forget_agents()
    return web.json_response({"agent": admin_agent_json(agent)}, status=201)


async def agent_change(request: web.Request) -> web.StreamResponse:
    service, me = _state(request).service, _agent(request)
    name = _agent_name(request)
    data = await read_json(request, CHANGE_AGENT_FIELDS)
    changes = _agent_fields(service, data)
    disabled = data.get("disabled")
    if disabled is not None and not isinstance(disabled, bool):
        raise ApiError(400, "bad_request", "'disabled' must be true or false")
    if not changes and disabled is None:
        raise ApiError(400, "bad_request", f"nothing to change: give one of {', '.join(CHANGE_AGENT_FIELDS)}")
    # Nobody locks the desk out by accident: another admin has to do it.
    if name == me.name and disabled:
        raise ApiError(400, "not_yourself", "you cannot disable yourself; another admin can")
    if name == me.name and changes.get("role", "admin") != "admin":
        raise ApiError(400, "not_yourself", "you cannot take the admin role from yourself; another admin can")
    admin, out = _admin(request), SignedOut()
    with _agent_errors():
        await admin.change(name, **changes)  # first: a bad value refuses the whole request
        if disabled:
            out = await admin.disable(name)
        elif disabled is False:
            await admin.enable(name)
        agent = await admin.get(name)
    service.forget_agents()
    return web.json_response({"agent": await _admin_view(service, agent), **signed_out_json(out)})


async def agent_password(request: web.Request) -> web.StreamResponse:
    name = _agent_name(request)
    password = _password(await read_json(request, ("password",)), "password")
    # An admin setting their own here stays signed in in this browser, as with /api/me/password.
    keep = _session(request).id if name == _agent(request).name else ""
    with _agent_errors():
        out = await _admin(request).set_password(name, password, keep=keep, lift_lockout=True)
    return web.json_response(signed_out_json(out))


async def agent_delete(request: web.Request) -> web.StreamResponse:
    name = _agent_name(request)
    if name == _agent(request).name:
        raise ApiError(400, "not_yourself", "you cannot delete yourself; another admin can")
    with _agent_errors():
        await _admin(request).delete(name)
    _state(request).service.forget_agents()
    return web.Response(status=204)


async def my_password(request: web.Request) -> web.StreamResponse:
    """The agent's own new password, given the current one. This browser stays signed in (its session is
    kept, so its cookie and CSRF token stay valid); every other session and every API token ends."""
    state, me, session = _state(request), _agent(request), _session(request)
    data = await read_json(request, ("current", "new"))
    current, new = _password(data, "current"), _password(data, "new")
    with _agent_errors():
        check_new_password(new)  # before the current one is checked: a short new one costs no attempt
    try:
        right = await state.auth.confirm_password(me.name, current, _client_address(request))
    except LockedOut:
        return _locked_out("too many wrong passwords")
    if not right:
        raise ApiError(403, "wrong_password", "the current password is wrong")
    with _agent_errors():
        out = await _admin(request).set_password(me.name, new, keep=session.id)
    return web.json_response(signed_out_json(out))


# -- work routes -------------------------------------------------------------------------------------


async def queues(request: web.Request) -> web.StreamResponse:
    service, agent, now = _state(request).service, _agent(request), now_ms()
    mine = agent.queues(service.rules.queues())
    return web.json_response({"queues": [await _queue_view(service, d, t, now) for d, t in mine]})


async def mine(request: web.Request) -> web.StreamResponse:
    service, agent = _state(request).service, _agent(request)
    states = await _states(service, await service.queues.assigned_to(agent.name))
    return web.json_response({"conversations": await queue_items(service, states, now_ms())})


async def claim(request: web.Request) -> web.StreamResponse:
    service, agent = _state(request).service, _agent(request)
    data = await read_json(request, ("conversation_id",))
    wanted = _text(data, "conversation_id", MAX_NAME_CHARS, required=False)
    claimed = await service.claim(agent, wanted or None)
    if claimed is None:
        return error_response(409, "empty", "nobody is waiting in your queues")
    _state(request).hub.watch_for(agent.name, claimed)
    return web.json_response({"conversation_id": claimed})


async def _viewable(request: web.Request) -> str:
    cid = request.match_info["id"]
    if len(cid) > MAX_NAME_CHARS or not await may_view(_state(request).service, _agent(request), cid):
        raise ApiError(403, "forbidden", "not your conversation")
    return cid


async def conversation(request: web.Request) -> web.StreamResponse:
    cid = await _viewable(request)
    agent = _agent(request)
    view = await conversation_view(_state(request).service, cid, None if agent.sees_all else agent)
    return web.json_response(view)


async def reply(request: web.Request) -> web.StreamResponse:
    text = _text(await read_json(request, ("text",)), "text", _max_chars(request))
    message_id = await _state(request).service.reply(_agent(request), request.match_info["id"], text)
    return web.json_response({"id": message_id})


async def note(request: web.Request) -> web.StreamResponse:
    cid = await _viewable(request)
    text = _text(await read_json(request, ("text",)), "text", _max_chars(request))
    return web.json_response({"id": await _state(request).service.note(_agent(request), cid, text)})


async def transfer(request: web.Request) -> web.StreamResponse:
    data = await read_json(request, ("department", "note"))
    department = _text(data, "department", MAX_NAME_CHARS)
    text = _text(data, "note", _max_chars(request), required=False)
    await _state(request).service.transfer(_agent(request), request.match_info["id"], department, text)
    return web.Response(status=204)


async def escalate(request: web.Request) -> web.StreamResponse:
    text = _text(await read_json(request, ("note",)), "note", _max_chars(request), required=False)
    await _state(request).service.escalate_tier(_agent(request), request.match_info["id"], text)
    return web.Response(status=204)


async def release(request: web.Request) -> web.StreamResponse:
    await _state(request).service.release(_agent(request), request.match_info["id"])
    return web.Response(status=204)


async def take_over(request: web.Request) -> web.StreamResponse:
    state, agent = _state(request), _agent(request)
    await state.service.take_over(agent, request.match_info["id"])
    state.hub.watch_for(agent.name, request.match_info["id"])
    return web.Response(status=204)


async def return_to_bot(request: web.Request) -> web.StreamResponse:
    await _state(request).service.return_to_bot(_agent(request), request.match_info["id"])
    return web.Response(status=204)


async def resolve(request: web.Request) -> web.StreamResponse:
    data = await read_json(request, ("outcome", "note"))
    outcome = _text(data, "outcome", MAX_NAME_CHARS)
    if outcome not in OUTCOMES:
        raise ApiError(400, "bad_request", f"outcome must be one of {', '.join(OUTCOMES)}")
    text = _text(data, "note", _max_chars(request), required=False)
    await _state(request).service.resolve(_agent(request), request.match_info["id"], outcome, text)
    return web.Response(status=204)


async def presence(request: web.Request) -> web.StreamResponse:
    state = _text(await read_json(request, ("state",)), "state", 20)
    if state not in ("online", "away"):
        raise ApiError(400, "bad_request", "state must be online or away")
    service, agent = _state(request).service, _agent(request)
    await service.heartbeat(agent, state)
    event = {"event": "presence", "agent": agent.name, "state": state}
    await service.redis.publish(keys.EVENTS, json.dumps(event))
    return web.Response(status=204)


async def canned(request: web.Request) -> web.StreamResponse:
    q = request.query.get("q", "")[: _max_chars(request)]
    lang = request.query.get("lang", "")
    lang = lang if lang in ("en", "es") else _state(request).service.settings.conversation.default_lang
    library = _state(request).library
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
    service = _state(request).service
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


# -- supervisor routes -------------------------------------------------------------------------------


def _overdue(service: HandoffService, st: HandoffState, now: int) -> list[dict[str, Any]]:
    out = []
    deadline, _ = _deadline(service, st)
    if deadline and now > deadline:
        out.append({"conversation_id": st.conversation_id, "kind": "first_reply",
                    "overdue_s": (now - deadline) // 1000})
    resolve_by = st.queued_at + service.rules.priority(st.priority).resolution_s * 1000
    if now > resolve_by:
        out.append({"conversation_id": st.conversation_id, "kind": "resolution",
                    "overdue_s": (now - resolve_by) // 1000})
    return out


async def floor(request: web.Request) -> web.StreamResponse:
    service, now = _state(request).service, now_ms()
    raw = cast(dict[str, str], await service.redis.hgetall(keys.STATES))
    states = [HandoffState.from_json(v) for v in raw.values()]
    rows = []
    for department, tier in service.rules.queues():
        waiting = [s for s in states if s.state == "queued" and s.queue == (department, tier)]
        risk = [_deadline(service, s) for s in waiting]
        rows.append({
            "department": department, "tier": tier, "length": len(waiting),
            "oldest_wait_s": max(((now - s.queued_at) // 1000 for s in waiting), default=0),
            "breached": sum(1 for d, _ in risk if d and now > d),
            "at_risk": sum(1 for d, span in risk if d and d - span * AT_RISK_SHARE <= now <= d),
        })  # fmt: skip
    agents = []
    for agent in await service.directory.all():
        view = await _agent_view(service, agent)
        view["disabled"] = agent.disabled
        view["conversations"] = [s.conversation_id for s in states if s.agent == agent.name]
        agents.append(view)
    breaches = [b for s in states for b in _overdue(service, s, now)]
    # An edit that does not load leaves the bot answering from the version before (and every later edit
    # unread until it is fixed): the supervisor sees it here, not only in the log and /healthz.
    knowledge = service.library.health()
    return web.json_response({"queues": rows, "agents": agents, "breaches": breaches, "knowledge_base": knowledge})


def _day(text: str, name: str) -> date | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ApiError(400, "bad_request", f"'{name}' must be a date like 2026-01-31") from None
    # Years 1970..9998: the records are stream ids in ms since 1970, and a day after 9999-12-31 has no
    # datetime; outside, the answer would be a 500, not "no records".
    if not 1970 <= day.year <= 9998:
        raise ApiError(400, "bad_request", f"'{name}' must be a date between 1970-01-01 and 9998-12-31")
    return day


def _day_ms(text: str, name: str, end: bool = False, zone: tzinfo = UTC) -> int | None:
    day = _day(text, name)
    if day is None:
        return None
    start = datetime(day.year, day.month, day.day, tzinfo=zone) + (timedelta(days=1) if end else timedelta())
    return max(0, int(start.timestamp() * 1000) - (1 if end else 0))


def _zone(name: str) -> tzinfo:
    """The supervisor's time zone (IANA name, e.g. America/Mexico_City): days are theirs. Default UTC."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name[:64])
    except (ZoneInfoNotFoundError, ValueError):
        raise ApiError(400, "bad_request", "'tz' must be a time zone like Europe/Madrid") from None


@dataclass(frozen=True)
class RecordFilter:
    start: int | None
    end: int | None
    department: str
    tier: int | None
    reason: str
    agent: str
    outcome: str
    limit: int

    @classmethod
    def from_query(cls, q: Any) -> RecordFilter:
        tier = q.get("tier", "")
        limit = q.get("limit", "")
        if (tier and not tier.isdigit()) or (limit and not limit.isdigit()):
            raise ApiError(400, "bad_request", "tier and limit are whole numbers")
        zone = _zone(q.get("tz", ""))
        return cls(
            _day_ms(q.get("from", ""), "from", zone=zone), _day_ms(q.get("to", ""), "to", end=True, zone=zone),
            q.get("department", "")[:100], int(tier) if tier else None, q.get("reason", "")[:100],
            q.get("agent", "")[:100], q.get("outcome", "")[:100],
            min(int(limit), RECORDS_MAX) if limit else RECORDS_LIMIT,
        )  # fmt: skip


def summarise(conversation_id: str, entries: list[audit.AuditEntry]) -> dict[str, Any]:
    """One row of the escalation record: where it went, who had it, how it ended, the rating."""
    department, tier, agents, reasons = "", 0, [], []
    outcome, rating, comment = "", None, ""
    claimed_at: int | None = None
    ended_at: int | None = None
    for e in entries:
        for side in (e.to, e.from_):
            if ":" in side and side.rsplit(":", 1)[1].isdigit():
                department, tier = side.rsplit(":", 1)[0], int(side.rsplit(":", 1)[1])
                break
        if e.event in ("claimed", "assigned") and e.to:
            agents.append(e.to)
            claimed_at = claimed_at or e.ts
        if e.event in ENDS:
            ended_at = e.ts
        reasons += [r for r in e.reasons if r not in reasons]
        if e.event == "resolved":
            outcome = e.outcome or "resolved"
        elif e.event in ("returned_to_bot", "abandoned"):
            outcome = e.event
        elif e.event == "rated":
            rating = int(e.outcome) if e.outcome.isdigit() else rating
            comment = e.detail or comment
    return {
        # handoff: the stream id of the handoff's first entry, which GET /api/records/{id}?handoff= opens.
        "conversation_id": conversation_id, "handoff": entries[0].id, "ts": entries[0].ts,
        "department": department, "tier": tier,
        "reasons": reasons, "agent": agents[-1] if agents else None, "agents": agents, "outcome": outcome,
        "rating": rating, "comment": comment, "events": len(entries),
        # Times a manager works with: waited for a person, then handled by people until it ended.
        "claimed_at": claimed_at, "ended_at": ended_at,
        "wait_s": (claimed_at - entries[0].ts) // 1000 if claimed_at else None,
        "handle_s": (ended_at - claimed_at) // 1000 if claimed_at and ended_at else None,
    }  # fmt: skip


def records_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of a set of records: how many, how they ended, the median wait for a person and the
    median handling time, the average rating."""
    waits = [r["wait_s"] for r in rows if r.get("wait_s") is not None]
    handles = [r["handle_s"] for r in rows if r.get("handle_s") is not None]
    ratings = [r["rating"] for r in rows if r.get("rating")]
    return {
        "handoffs": len(rows),
        "solved": sum(1 for r in rows if r["outcome"] == "solved"),
        "abandoned": sum(1 for r in rows if r["outcome"] == "abandoned"),
        "open": sum(1 for r in rows if not r["outcome"]),
        "median_wait_s": int(statistics.median(waits)) if waits else None,
        "median_handle_s": int(statistics.median(handles)) if handles else None,
        "rating_avg": round(sum(ratings) / len(ratings), 2) if ratings else None,
        "rated": len(ratings),
    }


async def collect_records(service: HandoffService, f: RecordFilter) -> list[dict[str, Any]]:
    start = f"{f.start}-0" if f.start is not None else "-"
    grouped: dict[str, list[audit.AuditEntry]] = {}
    found = await audit.read_latest(service.redis, start=start, count=AUDIT_READ_MAX)
    for entry in found:
        grouped.setdefault(entry.conversation_id, []).append(entry)
    # Past the bound, the oldest handoffs read may have lost their start: those rows are left out rather
    # than shown without their queue, wait or reasons.
    cut = len(found) >= AUDIT_READ_MAX
    rows = []
    agents = await _agent_names(service, f.agent)
    for cid, handoff in ((c, h) for c, entries in grouped.items() for h in _handoffs(entries)):
        if cut and handoff[0].event != "queued":
            continue
        row = summarise(cid, handoff)
        if f.end is not None and row["ts"] > f.end:
            continue
        if (f.department and row["department"] != f.department) or (f.tier and row["tier"] != f.tier):
            continue
        if (f.reason and f.reason not in row["reasons"]) or (agents and agents.isdisjoint(row["agents"])):
            continue
        if f.outcome and row["outcome"] != f.outcome:
            continue
        rows.append(row)
    rows.sort(key=lambda r: r["ts"], reverse=True)
    return rows  # every match: the figures are of all of them, the list shows the newest f.limit


ENDS = frozenset({"resolved", "returned_to_bot", "abandoned"})


def _handoffs(entries: list[audit.AuditEntry]) -> list[list[audit.AuditEntry]]:
    """A conversation's audit entries split per handoff: handed over again after it ended (a question
    after the resolution, say), it is a new row with its own outcome and rating."""
    found: list[list[audit.AuditEntry]] = [[]]
    for e in entries:
        if e.event == "queued" and any(x.event in ENDS for x in found[-1]):
            found.append([])
        found[-1].append(e)
    return found


async def _agent_names(service: HandoffService, wanted: str) -> frozenset[str]:
    """Login names an agent filter means: "Tom", "tom" and the display name "Tom Ruiz" all find tom. A
    row matches when any of these had the conversation at some point (its "agents"), not only the last."""
    wanted = wanted.strip().casefold()
    if not wanted:
        return frozenset()
    found = {a.name for a in await service.directory.all() if wanted in (a.name.casefold(), a.label.casefold())}
    return frozenset(found | {wanted})


async def bot_figures(request: web.Request) -> web.StreamResponse:
    """The bot's own figures over a period of UTC days (default: the last 30): conversations, answers,
    "did this help?", not understood, handed to a person, and the shares contained and found helpful."""
    first = _day(request.query.get("from", ""), "from")
    last = _day(request.query.get("to", ""), "to") or datetime.now(UTC).date()
    first = first or last - timedelta(days=29)
    try:
        found = await bot_stats.read(_state(request).service.redis, first, last)
    except ValueError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    return web.json_response(found)


async def records(request: web.Request) -> web.StreamResponse:
    f = RecordFilter.from_query(request.query)
    found = await collect_records(_state(request).service, f)
    return web.json_response({"records": found[: f.limit], "metrics": records_metrics(found)})


# A formula character at the start of the text or after a separator: a spreadsheet whose list separator
# differs from the file's (';' in Spanish, German or French Excel) may split a cell there.
_FORMULA_AT = re.compile(r"^(?=[=+\-@\t\r])|(?<=[;,\t\r\n])(?=[=+\-@])")


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run as a formula, however it splits the line: a "'" before each
    formula character that could begin a cell."""
    text = "" if value is None else str(value)
    return _FORMULA_AT.sub("'", text)


CSV_BOM = "\ufeff"
# agent: the last one who had it; agents: everyone who had it, in order (what the agent filter matches).
CSV_COLUMNS = ("conversation_id", "ts", "department", "tier", "reasons", "agent", "agents", "outcome", "rating",
               "comment", "events", "claimed_at", "ended_at", "wait_s", "handle_s")  # fmt: skip


def _iso(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds") if ms else ""


def records_csv_text(rows: list[dict[str, Any]]) -> str:
    """The records as CSV for a spreadsheet. Every cell is quoted: Excel in a locale whose list separator
    is ';' (Spanish, German, French) splits an unquoted "great;=1+1" into a cell that runs as a formula."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        agents = [a for i, a in enumerate(row["agents"]) if not i or a != row["agents"][i - 1]]
        values = {**row, "ts": _iso(row["ts"]), "reasons": ";".join(row["reasons"]), "agents": ";".join(agents),
                  "claimed_at": _iso(row.get("claimed_at")), "ended_at": _iso(row.get("ended_at"))}
        writer.writerow([safe_cell(values.get(c)) for c in CSV_COLUMNS])
    # The byte order mark tells Excel the file is UTF-8 (without it, "Facturación" opens as mojibake).
    return CSV_BOM + out.getvalue()


async def records_csv(request: web.Request) -> web.StreamResponse:
    f = RecordFilter.from_query(request.query)
    found = (await collect_records(_state(request).service, f))[: f.limit]
    response = web.Response(text=records_csv_text(found), content_type="text/csv", charset="utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="relevo-records.csv"'
    return response


# -- unanswered questions --------------------------------------------------------------------------


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
    items = await unanswered_kb.read(_state(request).service.redis, f.days, limit=UNANSWERED_READ_MAX)
    groups, answered = await asyncio.to_thread(unanswered_kb.open_groups, items, _state(request).library)
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
                                   _state(request).library.kb)
    response = web.Response(text=text, content_type="text/yaml", charset="utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="relevo-unanswered.yaml"'
    return response


async def record_detail(request: web.Request) -> web.StreamResponse:
    """One row of the records: its handoff's timeline, queue, outcome and rating (`handoff`, the row's
    id; without it the latest handoff), with the whole conversation's transcript and notes. A
    conversation handed over again after it ended has a row per handoff (`handoffs`, oldest first)."""
    service, cid = _state(request).service, request.match_info["id"]
    wanted = request.query.get("handoff", "")
    conv = await service.conversations.get(cid)
    entries = await audit.history(service.redis, cid, since_ms=conv.created if conv is not None else 0)
    if not entries and conv is None:
        raise ApiError(404, "not_found", "no such conversation")
    view = await conversation_view(service, cid)
    parts = [h for h in _handoffs(entries) if h]
    chosen = next((h for h in parts if h[0].id == wanted), None) if wanted else (parts[-1] if parts else [])
    if chosen is None:
        raise ApiError(404, "not_found", "no such handoff in this conversation")
    timeline = [
        {"ts": e.ts, "event": e.event, "actor": e.actor, "from": e.from_, "to": e.to,
         "reasons": list(e.reasons), "outcome": e.outcome, "detail": e.detail}
        for e in chosen
    ]  # fmt: skip
    row = summarise(cid, chosen) if chosen else None
    if row is not None:
        # The queue it is in, or ended in, as the record's row says (a handoff transferred and escalated
        # is no longer in the queue its handoff record started in); that one stays in record.department.
        if row["department"]:
            view["department"], view["tier"] = row["department"], row["tier"]
        # This handoff's rating, as its row has it: the conversation's own is only its latest handoff's.
        has_rating = row["rating"] is not None or row["comment"]
        view["rating"] = {"score": row["rating"], "comment": row["comment"]} if has_rating else None
        view["outcome"] = row["outcome"]
        if chosen is not parts[-1]:
            view["agent"] = None  # who has it now is of a later handoff
            record = view["record"]
            if record is not None and record.get("created_at", 0) > chosen[-1].ts:
                view["record"] = None  # the summary kept is of a later handoff; the row has the reasons
    handoffs = [{"handoff": h[0].id, "ts": h[0].ts, "outcome": summarise(cid, h)["outcome"]} for h in parts]
    return web.json_response({"timeline": timeline, "conversation": view, "handoff": row, "handoffs": handoffs})


async def openapi_json(request: web.Request) -> web.StreamResponse:
    return web.json_response(openapi_document())


def openapi_document() -> dict[str, Any]:
    return openapi.build((r.method, r.path, r.role, r.doc) for r in ROUTES if r.path.startswith("/api/"))


# -- pages ---------------------------------------------------------------------------------------------


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


# -- live: /api/ws -------------------------------------------------------------------------------------


@dataclass(eq=False)
class AgentSocket:
    ws: web.WebSocketResponse
    agent: Agent
    queue: asyncio.Queue[str]
    current: Callable[[], Awaitable[Agent | None]]  # the agent as now; None once signed out or disabled

    def send(self, frame: dict[str, Any]) -> bool:
        try:
            self.queue.put_nowait(json.dumps(frame, ensure_ascii=False))
            return True
        except asyncio.QueueFull:
            return False

    def sees(self, event: dict[str, Any]) -> bool:
        a = self.agent
        if a.sees_all or event.get("agent") == a.name or a.name in (event.get("from"), event.get("to")):
            return True
        try:
            return a.may_take(str(event.get("department", "")), int(event.get("tier") or 0))
        except (TypeError, ValueError):
            return False


def _conv_of_stream(stream: str) -> str:
    return stream[stream.index("{") + 1 : stream.index("}")]


class LiveHub:
    """This process's console sockets: handoff events and the transcripts they watch, fanned out."""

    def __init__(self, service: HandoffService) -> None:
        self.service = service
        self.sockets: set[AgentSocket] = set()
        self.watchers: dict[str, set[AgentSocket]] = {}
        self.cursor: dict[str, str] = {}
        self.changed = asyncio.Event()
        self.subscribed = asyncio.Event()
        self._adding: set[asyncio.Task[None]] = set()

    def add(self, sock: AgentSocket) -> None:
        self.sockets.add(sock)

    def drop(self, sock: AgentSocket) -> None:
        self.sockets.discard(sock)
        for cid in [c for c, held in self.watchers.items() if sock in held]:
            self.watchers[cid].discard(sock)
            if not self.watchers[cid]:
                del self.watchers[cid]
                self.cursor.pop(cid, None)

    async def watch(self, sock: AgentSocket, conversation_id: str) -> None:
        if conversation_id not in self.cursor:
            last = await self.service.redis.xrevrange(keys.conv_log(conversation_id), count=1)
            self.cursor[conversation_id] = str(last[0][0]) if last else "0-0"
        self.watchers.setdefault(conversation_id, set()).add(sock)
        self.changed.set()

    def watch_for(self, agent_name: str, conversation_id: str) -> None:
        """Stream a conversation to every socket of this agent on this process (after a claim)."""
        for sock in [s for s in self.sockets if s.agent.name == agent_name]:
            self._later(self.watch(sock, conversation_id))

    def deliver_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "presence":
            frame = {"type": "presence", "agent": event.get("agent"), "state": event.get("state")}
            for sock in self.sockets:
                sock.send(frame)
            return
        frame = {
            "type": "queue", "event": event.get("event"), "conversation_id": event.get("conv"),
            "department": event.get("department"), "tier": event.get("tier"), "state": event.get("state"),
            "agent": event.get("agent") or None, "priority": event.get("priority"), "from": event.get("from"),
            "to": event.get("to"), "ts": event.get("ts"),
        }  # fmt: skip
        for sock in list(self.sockets):
            if sock.sees(event):
                sock.send(frame)
        if event.get("event") in ("claimed", "assigned") and event.get("agent"):
            self.watch_for(str(event["agent"]), str(event.get("conv", "")))
        cid = str(event.get("conv", ""))
        if cid in self.watchers:
            # Claimed by someone else, transferred, escalated, given back: a watcher may have lost the
            # right to read it, and must stop getting its messages.
            self._later(self._recheck(cid))

    def _later(self, step: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(step)
        self._adding.add(task)
        task.add_done_callback(self._adding.discard)

    async def _recheck(self, conversation_id: str) -> None:
        for sock in list(self.watchers.get(conversation_id, ())):
            try:
                allowed = await may_view(self.service, sock.agent, conversation_id)
            except Exception:
                logger.exception("console: could not recheck %s for %s", conversation_id, sock.agent.name)
                allowed = False  # unsure: stop sending; the console can ask to watch again
            if not allowed:
                self.unwatch(sock, conversation_id)
                sock.send({"type": "unwatched", "conversation_id": conversation_id})

    def unwatch(self, sock: AgentSocket, conversation_id: str) -> None:
        held = self.watchers.get(conversation_id)
        if held is None:
            return
        held.discard(sock)
        if not held:
            del self.watchers[conversation_id]
            self.cursor.pop(conversation_id, None)

    async def run_events(self) -> None:
        delay = 0.1
        while True:
            pubsub = self.service.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(keys.EVENTS)
                self.subscribed.set()
                delay = 0.1
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    with contextlib.suppress(ValueError):
                        event = json.loads(message["data"])
                        if isinstance(event, dict):
                            self.deliver_event(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("console events: subscription failed; retrying in %.1fs", delay)
            finally:
                self.subscribed.clear()
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def run_transcripts(self) -> None:
        while True:
            if not self.cursor:
                self.changed.clear()
                await self.changed.wait()
                continue
            streams: dict[Any, Any] = {keys.conv_log(c): i for c, i in self.cursor.items()}
            try:
                found = await self.service.redis.xread(streams, count=100, block=XREAD_BLOCK_MS)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("console transcripts: read failed")
                await asyncio.sleep(1.0)
                continue
            for stream, entries in cast(list[tuple[str, list[Any]]], found or []):
                self._deliver_entries(_conv_of_stream(stream), entries)

    def _deliver_entries(self, cid: str, entries: list[Any]) -> None:
        for entry_id, fields in entries:
            if cid in self.cursor:
                self.cursor[cid] = str(entry_id)
            item = transcript_item(LogEntry.from_stream(str(entry_id), fields))
            for sock in list(self.watchers.get(cid, ())):
                sock.send({"type": "message", "conversation_id": cid, "message": item})


async def live(request: web.Request) -> web.StreamResponse:
    state, agent = _state(request), _agent(request)
    if not same_origin(request.headers.get("Origin"), request, state.auth.trusted_proxies):
        raise ApiError(403, "forbidden", "origin not allowed")
    ws = web.WebSocketResponse(heartbeat=WS_HEARTBEAT_S, max_msg_size=MAX_BODY)
    sock = AgentSocket(ws, agent, asyncio.Queue(WS_SEND_QUEUE), current=lambda: _current_agent(request))
    state.hub.add(sock)
    tasks: list[asyncio.Task[None]] = []
    try:
        # The agent's own conversations are watched before the handshake ends: once the client is
        # connected, nothing written to them is missed (frames wait in the queue for the writer).
        for cid in await state.service.queues.assigned_to(agent.name):
            await state.hub.watch(sock, cid)
        await ws.prepare(request)
        tasks += [asyncio.create_task(_write(sock), name=f"console-ws {agent.name}"),
                  asyncio.create_task(_check_sign_in(sock), name=f"console-ws check {agent.name}")]
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            await _client_frame(state, sock, msg.data)
    finally:
        state.hub.drop(sock)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return ws


async def _current_agent(request: web.Request) -> Agent | None:
    """The agent the socket's cookie or token signs in now (None: signed out, disabled or deleted)."""
    session = await authenticate(request)
    return None if session is None else await _state(request).auth.agent_of(session)


def _rights(agent: Agent) -> tuple[str, int, tuple[str, ...]]:
    """What decides which events and conversations a console socket is sent (AgentSocket.sees)."""
    return agent.role, agent.tier, agent.departments


async def _check_sign_in(sock: AgentSocket) -> None:
    while not sock.ws.closed:
        await asyncio.sleep(SESSION_CHECK_S)
        await _close_if_access_changed(sock)


async def _close_if_access_changed(sock: AgentSocket) -> bool:
    try:
        agent = await sock.current()
    except Exception:
        logger.exception("console: could not check the sign-in of %s", sock.agent.name)
        return False  # the store is away: keep the socket; the next check decides
    if agent is None:
        logger.info("console socket of %s closed: signed out", sock.agent.name)
        await sock.ws.close(code=SIGNED_OUT, message=b"signed out")
        return True
    if _rights(agent) != _rights(sock.agent):
        # The socket's events and watches were chosen by the old rights: a supervisor made an agent
        # must stop seeing every queue now, not at their next login. The console reloads its page.
        logger.info("console socket of %s closed: their role, tier or departments changed", agent.name)
        await sock.ws.close(code=RIGHTS_CHANGED, message=b"access changed")
        return True
    return False


async def _write(sock: AgentSocket) -> None:
    while True:
        data = await sock.queue.get()
        try:
            await sock.ws.send_str(data)
        except ConnectionError:
            return


async def _client_frame(state: ApiState, sock: AgentSocket, raw: str) -> None:
    try:
        frame = json.loads(raw)
    except ValueError:
        frame = None
    if not isinstance(frame, dict):
        sock.send({"type": "error", "code": "bad_json", "message": "frames must be JSON objects"})
        return
    kind = frame.get("type")
    if kind == "heartbeat":
        if await _close_if_access_changed(sock):
            return  # a disabled or signed-out agent renews no presence and no claim
        presence_state = await state.service.heartbeat(sock.agent)
        sock.send({"type": "heartbeat", "presence": presence_state})
    elif kind == "watch":
        cid = frame.get("conversation_id")
        if not isinstance(cid, str) or len(cid) > MAX_NAME_CHARS or not await may_view(
            state.service, sock.agent, cid
        ):
            sock.send({"type": "error", "code": "forbidden", "message": "not your conversation"})
            return
        await state.hub.watch(sock, cid)
        sock.send({"type": "watching", "conversation_id": cid})
    elif kind == "unwatch":
        cid = frame.get("conversation_id")
        if not isinstance(cid, str) or len(cid) > MAX_NAME_CHARS:
            return
        st = await state.service.queues.state(cid)
        if st is not None and st.agent == sock.agent.name:
            return  # an agent's own conversations keep streaming: their list shows what is new
        state.hub.unwatch(sock, cid)
        sock.send({"type": "unwatched", "conversation_id": cid})
    else:
        sock.send({"type": "error", "code": "unknown_type", "message": "unknown frame type"})


# -- the route table and its guard ------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One route: method, path, handler, the least role it requires (None = public), what it is."""

    method: str
    path: str
    handler: Handler
    role: Role | None
    kind: str  # "api" | "page" | "ws" | "asset"
    doc: Doc


def _api(method: str, path: str, handler: Handler, role: Role | None, summary: str,
         body: dict[str, Any] | None = None, query: tuple[str, ...] = (),
         responses: dict[str, str] | None = None) -> Route:  # fmt: skip
    doc = Doc(summary, body, query, responses or {"200": "OK"})
    return Route(method, path, handler, role, "api", doc)


CONV = "/api/conversations/{id}"
RECORD_QUERY = ("from", "to", "tz", "department", "tier", "reason", "agent", "outcome", "limit")
UNANSWERED_QUERY = ("days", "top")
UNANSWERED_RESPONSES = {"200": "OK", "400": "days or top not a whole number in range"}
NO_CONTENT = {"204": "done", "409": "refused by the queue"}
AGENT = "/api/agents/{name}"
_AGENT_PROPS: dict[str, Any] = {
    "display_name": {"type": "string", "maxLength": MAX_DISPLAY_NAME_CHARS},
    "role": {"type": "string", "enum": list(ROLES)},
    "departments": {"type": "array", "items": {"type": "string"}},
    "tier": {"type": "integer", "minimum": 1, "maximum": MAX_TIER},
    "capacity": {"type": "integer", "minimum": 1, "maximum": MAX_CAPACITY},
}
PASSWORD_SCHEMA = {"type": "string", "minLength": MIN_PASSWORD_CHARS, "maxLength": MAX_PASSWORD_CHARS}
AGENT_BODY = {
    "type": "object", "required": ["name", "departments", "tier", "password"],
    "properties": {"name": {"type": "string", "pattern": NAME_RE.pattern}, **_AGENT_PROPS,
                   "password": PASSWORD_SCHEMA},
}  # fmt: skip
CHANGE_AGENT_BODY = {"type": "object", "properties": {**_AGENT_PROPS, "disabled": {"type": "boolean"}}}
ROUTES: tuple[Route, ...] = (
    Route("GET", "/login", page("login.html"), None, "page", Doc("login page")),
    Route("GET", "/agent", page("agent.html"), "agent", "page", Doc("agent console")),
    Route("GET", "/supervisor", page("supervisor.html"), "supervisor", "page", Doc("supervisor view")),
    Route("GET", "/admin", page("admin.html"), "admin", "page", Doc("agent administration")),
    Route("GET", "/console/{name}", asset, None, "asset", Doc("console scripts and styles")),
    _api("POST", "/api/login", login, None, "log in; sets the session cookie",
         {"type": "object", "required": ["name", "password"],
          "properties": {"name": {"type": "string"}, "password": {"type": "string"}}},
         responses={"200": "logged in", "401": "bad credentials",
                    "403": "the right password of a disabled account", "429": "locked out"}),
    _api("GET", "/api/login", login_status, None,
         "why this browser's sign-in ended: signed_out is \"disabled\" (its agent was disabled) or null"),
    _api("POST", "/api/logout", logout, "agent", "log out; revokes the session", responses={"204": "done"}),
    _api("GET", "/api/me", me, "agent", "who am I, my CSRF token and presence"),
    _api("GET", "/api/queues", queues, "agent", "the queues I may take from"),
    _api("GET", "/api/mine", mine, "agent", "conversations assigned to me"),
    _api("POST", "/api/claim", claim, "agent", "claim the next (or one) waiting conversation",
         {"type": "object", "properties": {"conversation_id": {"type": "string"}}},
         responses={"200": "claimed", "409": "nobody waiting / refused"}),
    _api("GET", CONV, conversation, "agent", "a conversation: record, transcript, notes, rating"),
    _api("POST", CONV + "/reply", reply, "agent", "reply to the customer", TEXT_BODY),
    _api("POST", CONV + "/note", note, "agent", "a private note", TEXT_BODY),
    _api("POST", CONV + "/transfer", transfer, "agent", "transfer to another department",
         {"type": "object", "required": ["department"],
          "properties": {"department": {"type": "string"}, "note": {"type": "string"}}},
         responses=NO_CONTENT),
    _api("POST", CONV + "/escalate", escalate, "agent", "escalate one tier up", NOTE_BODY,
         responses=NO_CONTENT),
    _api("POST", CONV + "/release", release, "agent", "give back to the front of the queue",
         responses=NO_CONTENT),
    _api("POST", CONV + "/take_over", take_over, "supervisor",
         "take a conversation another agent holds (supervisors): it becomes yours, the customer is told "
         "you joined", responses={"204": "done", "409": "not assigned / not allowed / at capacity"}),
    _api("POST", CONV + "/return_to_bot", return_to_bot, "agent", "give the conversation back to the bot",
         responses=NO_CONTENT),
    _api("POST", CONV + "/resolve", resolve, "agent", "resolve; the customer is asked to rate",
         {"type": "object", "required": ["outcome"],
          "properties": {"outcome": {"type": "string", "enum": list(OUTCOMES)}, "note": {"type": "string"}}},
         responses=NO_CONTENT),
    _api("POST", "/api/presence", presence, "agent", "set presence (online|away); renews leases",
         {"type": "object", "properties": {"state": {"type": "string", "enum": ["online", "away"]}}},
         responses={"204": "done"}),
    _api("GET", "/api/canned", canned, "agent", "canned replies: FAQ answers, best first",
         query=("q", "lang")),
    _api("GET", "/api/departments", departments, "agent", "departments", query=("lang",)),
    _api("GET", "/api/floor", floor, "supervisor", "queues, agents, SLA breaches and the knowledge base's state"),
    _api("GET", "/api/records", records, "supervisor", "the escalation record", query=RECORD_QUERY),
    _api("GET", "/api/bot_figures", bot_figures, "supervisor",
         "the bot's figures over UTC days from..to (default the last 30): conversations, answered, clarified, "
         "not_understood, helpful_yes/no, handed_over, contained_rate, helpful_rate", query=("from", "to"),
         responses={"200": "OK", "400": "a bad date, the end before the start, or over 400 days"}),
    _api("GET", "/api/records.csv", records_csv, "supervisor", "the escalation record as CSV",
         query=RECORD_QUERY),
    _api("GET", "/api/records/{id}", record_detail, "supervisor",
         "one record row: its handoff's timeline, queue, outcome and rating (handoff: the row's id; "
         "without it the latest), the conversation's transcript and notes",
         query=("handoff",), responses={"200": "OK", "404": "no such conversation or handoff"}),
    _api("GET", "/api/unanswered", unanswered_list, "supervisor",
         "questions the bot could not answer, grouped by wording, the most asked first",
         query=UNANSWERED_QUERY, responses=UNANSWERED_RESPONSES),
    _api("GET", "/api/unanswered.yaml", unanswered_yaml, "supervisor",
         "a draft knowledge-base file (YAML) of those questions, answers left empty",
         query=UNANSWERED_QUERY, responses=UNANSWERED_RESPONSES),
    _api("POST", "/api/me/password", my_password, "agent",
         "change my password: signs out my other sessions and revokes my API tokens; this one stays",
         {"type": "object", "required": ["current", "new"],
          "properties": {"current": {"type": "string"}, "new": PASSWORD_SCHEMA}},
         responses={"200": "changed: sessions_ended, tokens_revoked", "400": "the new password is too short or long",
                    "403": "the current password is wrong (counted as a failed login)", "429": "locked out"}),
    _api("GET", "/api/agents", agents_list, "admin",
         "every agent: name, display_name, role, departments, tier, capacity, disabled, load (no password)"),
    _api("POST", "/api/agents", agent_add, "admin", "add an agent", AGENT_BODY,
         responses={"201": "added", "400": "a bad name, department, tier, role, capacity or password",
                    "409": "an agent of that name exists"}),
    _api("POST", AGENT, agent_change, "admin",
         "change an agent; disabled: true signs them out everywhere and revokes their API tokens",
         CHANGE_AGENT_BODY,
         responses={"200": "changed", "400": "a bad value, or disabling or demoting yourself",
                    "404": "no such agent"}),
    _api("DELETE", AGENT, agent_delete, "admin",
         "delete a disabled agent who holds no conversation; the records keep their name",
         responses={"204": "deleted", "400": "deleting yourself", "404": "no such agent",
                    "409": "still enabled, or still holding conversations"}),
    _api("POST", AGENT + "/password", agent_password, "admin",
         "set an agent's password: signs them out everywhere, revokes their API tokens, lifts their name's lockout",
         {"type": "object", "required": ["password"],
          "properties": {"password": PASSWORD_SCHEMA}},
         responses={"200": "set: sessions_ended, tokens_revoked, lockout_lifted", "400": "too short or long",
                    "404": "no such agent"}),
    _api("GET", "/api/openapi.json", openapi_json, "agent", "this document"),
    Route("GET", "/api/ws", live, "agent", "ws",
          Doc("live events (WebSocket)", responses={"101": "upgraded"})),
)  # fmt: skip


async def authenticate(request: web.Request) -> ConsoleSession | None:
    auth = _state(request).auth
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        return await auth.from_bearer(token.strip()) if scheme.lower() == "bearer" else None
    cookie = request.cookies.get(COOKIE)
    return await auth.from_cookie(cookie) if cookie else None


# The page a signed-in agent gets for a page their role may not open (the supervisor view), in the
# console's language: its ?lang=, the language the console remembers (LANG_COOKIE, set by common.js), else
# the browser's Accept-Language. Its only link leads back to the agent console.
LANG_COOKIE = "relevo_lang"
CONSOLE_LANGS = ("en", "es")
REFUSED_TEXTS = {
    "en": {"title": "Not for your role", "body": "Your role may not open this page. It is for {who}.",
           "back": "Back to the agent console"},
    "es": {"title": "No es para tu rol", "body": "Tu rol no puede abrir esta página. Es para {who}.",
           "back": "Volver a la consola de agente"},
}  # fmt: skip
REFUSED_WHO = {
    "en": {"supervisor": "supervisors", "admin": "admins"},
    "es": {"supervisor": "supervisores", "admin": "administradores"},
}
REFUSED_PAGE = """<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title} — Relevo</title>
<link rel="stylesheet" href="/console/console.css">
</head>
<body class="page-login">
<main class="login-card" id="refused">
  <h1 class="login-brand">Relevo</h1>
  <h2>{title}</h2>
  <p>{body}</p>
  <p><a id="refused-back" class="btn btn-primary" href="{back_href}">{back}</a></p>
</main>
</body>
</html>
"""


def console_lang(request: web.Request) -> str:
    """The console's language for a page the server writes: ?lang=, the remembered choice, the browser's."""
    for chosen in (request.query.get("lang", ""), request.cookies.get(LANG_COOKIE, "")):
        code = chosen[:2].lower()
        if code in CONSOLE_LANGS:
            return code
    ranked = []
    for i, item in enumerate(request.headers.get("Accept-Language", "").split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        q = params.strip()[2:] if params.strip().startswith("q=") else "1"
        try:
            weight = float(q)
        except ValueError:
            continue
        code = tag.strip()[:2].lower()
        if code in CONSOLE_LANGS and weight > 0:
            ranked.append((-weight, i, code))
    return min(ranked)[2] if ranked else "en"


def refused_page(request: web.Request, role: Role = "supervisor") -> web.Response:
    lang = console_lang(request)
    who = REFUSED_WHO[lang].get(role, REFUSED_WHO[lang]["supervisor"])
    texts = {**REFUSED_TEXTS[lang], "body": REFUSED_TEXTS[lang]["body"].format(who=who)}
    back = "/agent?lang=" + lang if request.query.get("lang", "")[:2].lower() == lang else "/agent"
    body = REFUSED_PAGE.format(
        lang=lang, back_href=html.escape(back), **{k: html.escape(v) for k, v in texts.items()}
    )
    response = web.Response(status=403, text=body, content_type="text/html", charset="utf-8")
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Accept-Language, Cookie"
    return response


def _refuse(route: Route, request: web.Request, status: int) -> web.StreamResponse:
    if route.kind == "page":
        if status == 401:
            # With its query: /agent?c=<id> reopens the conversation after signing in again.
            raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='/')}")
        return refused_page(request, route.role or "supervisor")
    return error_response(status, "unauthenticated" if status == 401 else "forbidden")


def _csrf_ok(request: web.Request, session: ConsoleSession) -> bool:
    if request.method in SAFE_METHODS or session.via != "cookie":
        return True
    sent = request.headers.get(CSRF_HEADER, "")
    return bool(sent) and hmac.compare_digest(sent, session.csrf) and same_origin(
        request.headers.get("Origin"), request, _state(request).auth.trusted_proxies
    )


def guard(route: Route) -> Handler:
    """The route's handler behind authentication, role and CSRF checks; errors as JSON."""

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            if route.role is not None:
                session = await authenticate(request)
                agent = await _state(request).auth.agent_of(session) if session else None
                if session is None or agent is None:
                    return _refuse(route, request, 401)
                if not role_allows(agent.role, route.role):
                    return _refuse(route, request, 403)
                if not _csrf_ok(request, session):
                    return error_response(403, "csrf", f"send the {CSRF_HEADER} header from /api/me")
                CURRENT.set((agent, session))
            return await route.handler(request)
        except ApiError as exc:
            return error_response(exc.status, exc.code, exc.message)
        except QueueError as exc:
            return error_response(409, exc.code, str(exc))

    handler.__name__ = route.handler.__name__
    return handler


def _ours(path: str) -> bool:
    return path.startswith(("/api/", "/console/")) or path in PAGES


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if not _ours(request.path):
        return
    is_page = request.path in PAGES or request.path.startswith("/console/")
    response.headers["Content-Security-Policy"] = PAGE_CSP if is_page else API_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")
    state = request.app.get(STATE)
    if state is not None and is_https(request, state.auth.trusted_proxies):
        # Reached over HTTPS: the browser should not try plain http (and send the cookie there) again.
        response.headers["Strict-Transport-Security"] = "max-age=31536000"


async def _live_tasks(app: web.Application) -> AsyncIterator[None]:
    hub = app[STATE].hub
    tasks = [
        asyncio.create_task(hub.run_events(), name="console events"),
        asyncio.create_task(hub.run_transcripts(), name="console transcripts"),
    ]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _close_sockets(app: web.Application) -> None:
    hub = app[STATE].hub
    await asyncio.gather(*(s.ws.close() for s in list(hub.sockets)), return_exceptions=True)


def setup_api(app: web.Application, service: HandoffService, runtime: RuntimeLike) -> None:
    """Mount the console pages, the agent API and /api/ws on `app` (before it starts)."""
    auth = ConsoleAuth(service.redis, load_secret(service.settings), service.directory, server=service.settings.server)
    app[STATE] = ApiState(service, auth, runtime.library, LiveHub(service))
    for route in ROUTES:
        app.router.add_route(route.method, route.path, guard(route))
    app.on_response_prepare.append(security_headers)
    app.cleanup_ctx.append(_live_tasks)
    app.on_shutdown.append(_close_sockets)
