"""The sign-in routes: log in, why a sign-in ended, log out, who am I."""

from __future__ import annotations

from aiohttp import web

from handoff.api.errors import error_response
from handoff.api.inputs import MAX_NAME_CHARS, max_chars, read_json, text_field
from handoff.api.state import api_state, request_agent, request_session
from handoff.api.views import agent_view
from handoff.auth import COOKIE, LOCKOUT_S, AccountDisabled, LockedOut, client_address


def request_address(request: web.Request) -> str:
    """Who the failures of a password are counted against (the proxy's client, when it is trusted)."""
    trusted = api_state(request).service.settings.server.trusted_proxies
    return client_address(request.remote, request.headers.get("X-Forwarded-For", ""), trusted)


def locked_out(what: str) -> web.Response:
    """429 for `what` ("too many failed logins"), saying when to try again, in words and in Retry-After."""
    response = error_response(429, "locked", f"{what}; try again in {LOCKOUT_S // 60} minutes")
    response.headers["Retry-After"] = str(LOCKOUT_S)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    state = api_state(request)
    data = await read_json(request, ("name", "password"))
    name = text_field(data, "name", MAX_NAME_CHARS)
    # As it was set: `relevo agent passwd` keeps spaces at either end, so the login must too.
    password = text_field(data, "password", MAX_NAME_CHARS, strip=False)
    try:
        found = await state.auth.login(name, password, request_address(request))
    except LockedOut:
        return locked_out("too many failed logins")
    except AccountDisabled:
        # Only after the right password: a wrong one gets the same 401 whether the account exists or not.
        return error_response(403, "account_disabled", "this account is disabled; ask an administrator")
    if found is None:
        return error_response(401, "unauthenticated", "wrong name or password")
    agent, session = found
    # Signing in is not being available: the agent console's heartbeat says that (a supervisor who only
    # watches the floor must not be routed conversations, nor counted in the wait customers are told).
    response = web.json_response({"agent": await agent_view(state.service, agent), "csrf": session.csrf})
    response.set_cookie(
        COOKIE, state.auth.cookie_value(session.id), httponly=True, samesite="Strict", path="/",
        secure=state.auth.secure_cookie(request), max_age=state.auth.ttl_s,
    )  # fmt: skip
    return response


async def login_status(request: web.Request) -> web.StreamResponse:
    """For the login page: why this browser's sign-in ended, when it is its agent's own business to know
    ("disabled"); else null. Nothing without that sign-in's signed cookie."""
    cookie = request.cookies.get(COOKIE, "")
    reason = await api_state(request).auth.signed_out_reason(cookie) if cookie else None
    return web.json_response({"signed_out": reason})


async def logout(request: web.Request) -> web.StreamResponse:
    await api_state(request).auth.logout(request_session(request))
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/")
    return response


async def me(request: web.Request) -> web.StreamResponse:
    service, agent = api_state(request).service, request_agent(request)
    view = await agent_view(service, agent)
    # The console sizes its reply box from max_message_chars: a longer reply would only be refused.
    return web.json_response({"agent": view, "csrf": request_session(request).csrf, "presence": view["presence"],
                              "max_message_chars": max_chars(request)})
