"""Agents: one's own password, and the admin page's agent management (/api/agents)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from bot.messages import well_formed
from handoff.accounts import AgentAdmin, AgentInUse, SignedOut, check_departments
from handoff.agents import (
    MAX_DISPLAY_NAME_CHARS,
    NAME_RE,
    ROLES,
    Agent,
    AgentError,
    AgentExists,
    NoSuchAgent,
    check_new_password,
)
from handoff.api.errors import ApiError
from handoff.api.inputs import MAX_NAME_CHARS, read_json, text_field
from handoff.api.login import locked_out, request_address
from handoff.api.state import api_state, request_agent, request_session
from handoff.auth import LockedOut
from handoff.service import HandoffService

NEW_AGENT_FIELDS = ("name", "display_name", "role", "departments", "tier", "capacity", "password")
CHANGE_AGENT_FIELDS = ("display_name", "role", "departments", "tier", "capacity", "disabled")


def _admin(request: web.Request) -> AgentAdmin:
    state = api_state(request)
    return AgentAdmin(state.auth, state.service.queues)


def admin_agent_json(agent: Agent, load: int = 0, locked_out: bool = False) -> dict[str, Any]:
    """An agent as the admin page edits it: display_name as stored ("" = customers see the login name),
    never the password hash. locked_out: too many wrong passwords for their name (anywhere, or at one
    address) refuse their logins now; POST /api/agents/{name}/unlock lifts it."""
    return {
        "name": agent.name, "display_name": agent.display_name, "label": agent.label, "role": agent.role,
        "departments": list(agent.departments), "tier": agent.tier, "capacity": agent.capacity,
        "disabled": agent.disabled, "load": load, "locked_out": locked_out,
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
        fields["display_name"] = text_field(data, "display_name", MAX_DISPLAY_NAME_CHARS, required=False)
    if "role" in data:
        fields["role"] = text_field(data, "role", MAX_NAME_CHARS)
    if "departments" in data:
        fields["departments"] = _departments(service, data["departments"])
    for name in ("tier", "capacity"):
        if name in data:
            fields[name] = _whole_number(data, name)
    return fields


async def _admin_view(service: HandoffService, agent: Agent, locked: set[str] | None = None) -> dict[str, Any]:
    return admin_agent_json(agent, await service.queues.load(agent.name), agent.name in (locked or set()))


async def agents_list(request: web.Request) -> web.StreamResponse:
    service = api_state(request).service
    locked = await api_state(request).auth.locked_names()
    agents = [await _admin_view(service, a, locked) for a in await service.directory.all()]
    return web.json_response({"agents": agents, "roles": list(ROLES)})


async def agent_add(request: web.Request) -> web.StreamResponse:
    service = api_state(request).service
    data = await read_json(request, NEW_AGENT_FIELDS)
    name = text_field(data, "name", MAX_NAME_CHARS)
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
    service, me = api_state(request).service, request_agent(request)
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
    view = await _admin_view(service, agent, await api_state(request).auth.locked_names())
    return web.json_response({"agent": view, **signed_out_json(out)})


async def agent_password(request: web.Request) -> web.StreamResponse:
    name = _agent_name(request)
    password = _password(await read_json(request, ("password",)), "password")
    # An admin setting their own here stays signed in in this browser, as with /api/me/password.
    keep = request_session(request).id if name == request_agent(request).name else ""
    with _agent_errors():
        out = await _admin(request).set_password(name, password, keep=keep, lift_lockout=True)
    return web.json_response(signed_out_json(out))


async def agent_unlock(request: web.Request) -> web.StreamResponse:
    """Lift the login lockouts of an agent's name, at every address, as `relevo agent unlock NAME` does
    (the same handoff/auth.py unlock); their password, sessions and tokens stay as they are."""
    name = _agent_name(request)
    with _agent_errors():
        await _admin(request).get(name)  # 404 for nobody of that name
    lifted = await api_state(request).auth.unlock(name=name)
    return web.json_response({"lockouts_lifted": lifted})


async def agent_delete(request: web.Request) -> web.StreamResponse:
    name = _agent_name(request)
    if name == request_agent(request).name:
        raise ApiError(400, "not_yourself", "you cannot delete yourself; another admin can")
    with _agent_errors():
        await _admin(request).delete(name)
    api_state(request).service.forget_agents()
    return web.Response(status=204)


async def my_password(request: web.Request) -> web.StreamResponse:
    """The agent's own new password, given the current one. This browser stays signed in (its session is
    kept, so its cookie and CSRF token stay valid); every other session and every API token ends."""
    state, me, session = api_state(request), request_agent(request), request_session(request)
    data = await read_json(request, ("current", "new"))
    current, new = _password(data, "current"), _password(data, "new")
    with _agent_errors():
        check_new_password(new)  # before the current one is checked: a short new one costs no attempt
    try:
        right = await state.auth.confirm_password(me.name, current, request_address(request))
    except LockedOut:
        return locked_out("too many wrong passwords")
    if not right:
        raise ApiError(403, "wrong_password", "the current password is wrong")
    with _agent_errors():
        out = await _admin(request).set_password(me.name, new, keep=session.id)
    return web.json_response(signed_out_json(out))
