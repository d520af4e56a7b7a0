"""The route table (Route, ROUTES, its OpenAPI document) and its guard: sign-in, role, CSRF, headers."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from handoff import openapi
from handoff.agents import (
    MAX_CAPACITY,
    MAX_DISPLAY_NAME_CHARS,
    MAX_PASSWORD_CHARS,
    MAX_TIER,
    MIN_PASSWORD_CHARS,
    NAME_RE,
    ROLES,
    Role,
)
from handoff.api.admin import (
    agent_add,
    agent_change,
    agent_delete,
    agent_password,
    agent_unlock,
    agents_list,
    my_password,
)
from handoff.api.errors import ApiError, error_response, unavailable_response
from handoff.api.floor import floor
from handoff.api.live import live
from handoff.api.login import login, login_status, logout, me
from handoff.api.pages import PAGES, asset, page
from handoff.api.records import bot_figures, record_detail, records, records_csv
from handoff.api.refused import refused_page
from handoff.api.state import CURRENT, STATE, Handler, api_state, authenticate
from handoff.api.unanswered import unanswered_list, unanswered_yaml
from handoff.api.work import (
    canned,
    claim,
    conversation,
    departments,
    escalate,
    mine,
    note,
    presence,
    queues,
    recent,
    release,
    reply,
    resolve,
    return_to_bot,
    take_over,
    transfer,
)
from handoff.auth import CSRF_HEADER, ConsoleSession, is_https, role_allows, same_origin
from handoff.openapi import NOTE_BODY, TEXT_BODY, Doc
from handoff.outage import REDIS as REDIS_OUTAGE
from handoff.outage import REDIS_DOWN
from handoff.queues import QueueError
from handoff.service import OUTCOMES

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
API_CSP = "default-src 'none'; frame-ancestors 'none'"
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


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


async def openapi_json(request: web.Request) -> web.StreamResponse:
    return web.json_response(openapi_document())


def openapi_document() -> dict[str, Any]:
    return openapi.build((r.method, r.path, r.role, r.doc) for r in ROUTES if r.path.startswith("/api/"))


CONV = "/api/conversations/{id}"
RECORD_QUERY = ("from", "to", "tz", "department", "tier", "reason", "agent", "outcome", "customer", "limit")
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
    _api("GET", "/api/mine/recent", recent, "agent",
         "conversations I held and no longer hold, ended or moved on within the last 7 days (the newest 20), "
         "each with customer, ended_at, event, outcome, to, by, by_display, rating, comment and may_open"),
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
    _api("POST", AGENT + "/unlock", agent_unlock, "admin",
         "lift an agent's login lockouts (their name's, at every address), as `relevo agent unlock NAME`; "
         "an address's own lockout stays", responses={"200": "lockouts_lifted: how many were in force",
                                                      "404": "no such agent"}),
    _api("GET", "/api/openapi.json", openapi_json, "agent", "this document"),
    Route("GET", "/api/ws", live, "agent", "ws",
          Doc("live events (WebSocket)", responses={"101": "upgraded"})),
)  # fmt: skip


def _refuse(route: Route, request: web.Request, status: int) -> web.StreamResponse:
    if route.kind == "page":
        if status == 401:
            # With its query: /agent?c=<id> reopens the conversation after signing in again.
            raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='/')}")
        return refused_page(request, route.role or "supervisor")
    return error_response(status, "unauthenticated" if status == 401 else "forbidden")


def _csrf_refusal(request: web.Request, session: ConsoleSession) -> web.Response | None:
    """403 for an unsafe request with the cookie that lacks this sign-in's CSRF token, or that a page of
    another origin sent; None when it may go on. Each says which of the two was wrong."""
    if request.method in SAFE_METHODS or session.via != "cookie":
        return None
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not hmac.compare_digest(sent, session.csrf):
        return error_response(403, "csrf", f"send the {CSRF_HEADER} header from /api/me")
    origin = request.headers.get("Origin")
    if not same_origin(origin, request, api_state(request).auth.trusted_proxies):
        shown = (origin or "")[:100]
        return error_response(403, "origin", f"the request came from another origin ({shown!r}): unsafe requests "
                              "must come from Relevo's own pages (scheme, host and port), or send no Origin")
    return None


def guard(route: Route) -> Handler:
    """The route's handler behind authentication, role and CSRF checks; errors as JSON."""

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            if route.role is not None:
                session = await authenticate(request)
                agent = await api_state(request).auth.agent_of(session) if session else None
                if session is None or agent is None:
                    return _refuse(route, request, 401)
                if not role_allows(agent.role, route.role):
                    return _refuse(route, request, 403)
                refused = _csrf_refusal(request, session)
                if refused is not None:
                    return refused
                CURRENT.set((agent, session))
            return await route.handler(request)
        except ApiError as exc:
            return error_response(exc.status, exc.code, exc.message)
        except QueueError as exc:
            return error_response(409, exc.code, str(exc))
        except REDIS_DOWN as exc:
            # A known outage, not a bug: no traceback, and aiohttp's plain "500 Server got itself in
            # trouble" would tell the console nothing. The log line is shared with the background loops.
            REDIS_OUTAGE.failed(f"{request.method} {route.path}", exc)
            return unavailable_response(page=route.kind == "page")

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
