"""Agent management from the web (/api/agents, admin only) and one's own password (/api/me/password),
over real HTTP on 127.0.0.1 with a real Redis (the fixtures of test_service)."""

from __future__ import annotations

import io
from typing import Any

import aiohttp
import pytest

from bot.commands import agent as agent_cli
from handoff import agents as agents_module
from handoff.api import ROUTES, STATE, openapi_document
from handoff.auth import MAX_FAILURES
from tests.handoff import test_service
from tests.handoff.test_api import _fresh, _queued
from tests.handoff.test_service import PASSWORD, Served, add_agent, login, post

server = test_service.server
http = test_service.http

NEW_PASSWORD = "a brand new passphrase"
ADMIN_ROUTES = [(r.method, r.path) for r in ROUTES if r.role == "admin"]


async def call(
    session: aiohttp.ClientSession, served: Served, method: str, path: str, csrf: str = "", body: Any = None
) -> tuple[int, Any]:
    """(status, JSON body or None) of one request with the CSRF header."""
    headers = {"X-Relevo-CSRF": csrf} if csrf else {}
    async with session.request(method, served.url + path, json=body, headers=headers) as r:
        data = await r.json() if r.content_type == "application/json" else None
        return r.status, data


async def signed_in(session: aiohttp.ClientSession, served: Served) -> bool:
    async with session.get(served.url + "/api/me") as r:
        return r.status == 200


async def token_status(served: Served, token: str) -> int:
    """The status of GET /api/me for a script holding `token`."""
    bearer = {"Authorization": f"Bearer {token}"}
    async with _fresh() as script, script.get(served.url + "/api/me", headers=bearer) as r:
        return r.status


async def as_admin(served: Served, http: aiohttp.ClientSession, name: str = "ada") -> str:
    await add_agent(served, name, role="admin")
    return await login(http, served, name)


NEW_BEA = {"name": "bea", "display_name": "Bea", "departments": ["general"], "tier": 2, "password": PASSWORD}


# -- who may -----------------------------------------------------------------------------------------


def test_the_admin_routes_are_in_the_table() -> None:
    assert set(ADMIN_ROUTES) == {
        ("GET", "/admin"), ("GET", "/api/agents"), ("POST", "/api/agents"), ("POST", "/api/agents/{name}"),
        ("DELETE", "/api/agents/{name}"), ("POST", "/api/agents/{name}/password"),
        ("POST", "/api/agents/{name}/unlock"),
    }  # fmt: skip


async def test_only_an_admin_manages_agents(server: Served, http: aiohttp.ClientSession) -> None:
    await add_agent(server, "ana")
    await add_agent(server, "sam", role="supervisor")
    requests = [("GET", "/api/agents", None), ("POST", "/api/agents", NEW_BEA),
                ("POST", "/api/agents/ana", {"tier": 2}),
                ("POST", "/api/agents/ana/password", {"password": NEW_PASSWORD}),
                ("POST", "/api/agents/ana/unlock", None), ("DELETE", "/api/agents/ana", None)]  # fmt: skip
    async with _fresh() as stranger:
        for method, path, body in requests:
            assert (await call(stranger, server, method, path, "", body))[0] == 401, (method, path)
    for name in ("ana", "sam"):
        async with _fresh() as session:
            csrf = await login(session, server, name)
            for method, path, body in requests:
                status, data = await call(session, server, method, path, csrf, body)
                assert (status, data) == (403, {"error": "forbidden"}), (name, method, path)
    # Nothing was done by the refused requests.
    assert await server.service.directory.get("bea") is None
    ana = await server.service.directory.get("ana")
    assert ana is not None and ana.tier == 1
    # The admin page too: a supervisor is told it is for admins.
    async with _fresh() as sam:
        await login(sam, server, "sam")
        async with sam.get(server.url + "/admin", allow_redirects=False) as r:
            assert r.status == 403 and "It is for admins." in await r.text()
    async with _fresh() as stranger, stranger.get(server.url + "/admin", allow_redirects=False) as r:
        assert r.status == 302 and r.headers["Location"] == "/login?next=/admin"


# -- the admin's work ------------------------------------------------------------------------------------


async def test_an_admin_lists_adds_and_changes_agents(server: Served, http: aiohttp.ClientSession) -> None:
    csrf = await as_admin(server, http)
    async with http.get(server.url + "/admin") as r:
        assert r.status == 200 and 'src="/console/admin.js"' in await r.text()
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp and r.headers["X-Frame-Options"] == "DENY"
    await add_agent(server, "ana", display_name="")
    status, listed = await call(http, server, "GET", "/api/agents")
    assert status == 200 and listed["roles"] == ["agent", "supervisor", "admin"]
    assert [a["name"] for a in listed["agents"]] == ["ada", "ana"]
    assert listed["agents"][1] == {
        "name": "ana", "display_name": "", "label": "ana", "role": "agent", "departments": ["general", "logistics"],
        "tier": 1, "capacity": 3, "disabled": False, "load": 0, "locked_out": False,
    }  # fmt: skip
    assert "password" not in str(listed) and "scrypt" not in str(listed)

    status, added = await call(http, server, "POST", "/api/agents", csrf, NEW_BEA)
    assert status == 201, added
    assert added["agent"] == {
        "name": "bea", "display_name": "Bea", "label": "Bea", "role": "agent", "departments": ["general"],
        "tier": 2, "capacity": 3, "disabled": False, "load": 0, "locked_out": False,
    }  # fmt: skip
    async with _fresh() as bea:
        await login(bea, server, "bea")  # signs in with the password the admin gave
    status, again = await call(http, server, "POST", "/api/agents", csrf, NEW_BEA)
    assert status == 409 and again == {"error": "agent_exists", "message": "agent 'bea' already exists"}

    change = {"display_name": "Bea Ruiz", "role": "supervisor", "departments": ["general", "billing"],
              "tier": 3, "capacity": 5}  # fmt: skip
    status, changed = await call(http, server, "POST", "/api/agents/bea", csrf, change)
    assert status == 200, changed
    assert changed["agent"] == {**added["agent"], **change, "label": "Bea Ruiz"}
    assert changed["sessions_ended"] == 0  # a change of role takes effect at the next request: no sign-out
    stored = await server.service.directory.get("bea")
    assert stored is not None and stored.role == "supervisor" and stored.departments == ("general", "billing")
    # What is not given stays as it was.
    status, changed = await call(http, server, "POST", "/api/agents/bea", csrf, {"tier": 1})
    assert status == 200 and changed["agent"]["display_name"] == "Bea Ruiz" and changed["agent"]["tier"] == 1
    status, missing = await call(http, server, "POST", "/api/agents/nobody", csrf, {"tier": 1})
    assert status == 404 and missing["error"] == "no_such_agent"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**NEW_BEA, "name": "Bea"}, "agent name 'Bea' may hold lower-case letters, digits"),
        ({**NEW_BEA, "name": ""}, "'name' is required"),
        ({**NEW_BEA, "password": "short"}, "a password is 8 to 200 characters, not only spaces"),
        ({**NEW_BEA, "password": " " * 12}, "a password is 8 to 200 characters, not only spaces"),
        ({**NEW_BEA, "password": "x" * 201}, "a password is 8 to 200 characters, not only spaces"),
        ({k: v for k, v in NEW_BEA.items() if k != "password"}, "'password' is required"),
        ({k: v for k, v in NEW_BEA.items() if k != "tier"}, "'tier' is required"),
        ({**NEW_BEA, "departments": ["general", "moon"]}, "unknown department 'moon' (known in the handoff rules:"),
        ({**NEW_BEA, "departments": "general"}, "'departments' must be a list of department names"),
        ({**NEW_BEA, "tier": 4}, "agent 'bea': tier must be 1 to 3, got 4"),
        ({**NEW_BEA, "tier": "2"}, "'tier' must be a whole number"),
        ({**NEW_BEA, "capacity": 0}, "agent 'bea': capacity must be 1 to 100, got 0"),
        ({**NEW_BEA, "capacity": True}, "'capacity' must be a whole number"),
        ({**NEW_BEA, "role": "boss"}, "agent 'bea': role must be one of agent, supervisor, admin, got 'boss'"),
        ({**NEW_BEA, "display_name": "x" * 101}, "'display_name' is longer than 100 characters"),
        ({**NEW_BEA, "passwd": PASSWORD}, "unknown field 'passwd'"),
    ],
)
async def test_a_bad_new_agent_is_refused_saying_why(
    server: Served, http: aiohttp.ClientSession, body: dict[str, Any], message: str
) -> None:
    csrf = await as_admin(server, http)
    status, refused = await call(http, server, "POST", "/api/agents", csrf, body)
    assert status == 400 and refused["error"] == "bad_request", refused
    assert refused["message"].startswith(message), refused
    assert await server.service.directory.get("bea") is None


async def test_a_bad_change_changes_nothing(server: Served, http: aiohttp.ClientSession) -> None:
    csrf = await as_admin(server, http)
    await add_agent(server, "ana")
    for body, message in (
        ({}, "nothing to change"),
        ({"disabled": "yes"}, "'disabled' must be true or false"),
        ({"tier": 2, "capacity": 0}, "agent 'ana': capacity must be 1 to 100, got 0"),
        ({"disabled": True, "departments": ["moon"]}, "unknown department 'moon'"),
        ({"name": "bob"}, "unknown field 'name'"),
        ({"password": NEW_PASSWORD}, "unknown field 'password'"),
    ):
        status, refused = await call(http, server, "POST", "/api/agents/ana", csrf, body)
        assert status == 400 and refused["message"].startswith(message), (body, refused)
    ana = await server.service.directory.get("ana")
    assert ana is not None and ana.tier == 1 and not ana.disabled


async def test_disabling_signs_the_agent_out_everywhere_and_revokes_their_tokens(
    server: Served, http: aiohttp.ClientSession
) -> None:
    csrf = await as_admin(server, http)
    await add_agent(server, "ana")
    token = await server.app[STATE].auth.new_token("ana")
    async with _fresh() as ana, _fresh() as ana_phone:
        await login(ana, server, "ana")
        await login(ana_phone, server, "ana")
        status, done = await call(http, server, "POST", "/api/agents/ana", csrf, {"disabled": True})
        assert status == 200 and done["agent"]["disabled"] is True
        assert (done["sessions_ended"], done["tokens_revoked"]) == (2, 1)
        assert not await signed_in(ana, server) and not await signed_in(ana_phone, server)
        assert await token_status(server, token) == 401
        async with ana.post(server.url + "/api/login", json={"name": "ana", "password": PASSWORD}) as r:
            assert r.status == 403 and (await r.json())["error"] == "account_disabled"
        # The login page of that console can say why (as after `relevo agent disable`).
        async with ana.get(server.url + "/api/login") as r:
            assert (await r.json()) == {"signed_out": "disabled"}

        status, done = await call(http, server, "POST", "/api/agents/ana", csrf, {"disabled": False})
        assert status == 200 and done["agent"]["disabled"] is False
        await login(ana, server, "ana")  # the same password again
    assert await token_status(server, token) == 401  # a revoked token stays revoked


async def test_a_new_password_from_the_admin_signs_the_agent_out_and_lifts_their_lockout(
    server: Served, http: aiohttp.ClientSession
) -> None:
    csrf = await as_admin(server, http)
    await add_agent(server, "ana")
    token = await server.app[STATE].auth.new_token("ana")
    async with _fresh() as ana:
        await login(ana, server, "ana")
        async with _fresh() as forgetful:
            for _ in range(MAX_FAILURES):
                async with forgetful.post(server.url + "/api/login", json={"name": "ana", "password": "guess"}) as r:
                    assert r.status == 401
            async with forgetful.post(server.url + "/api/login", json={"name": "ana", "password": PASSWORD}) as r:
                assert r.status == 429
            reset = {"password": NEW_PASSWORD}
            status, done = await call(http, server, "POST", "/api/agents/ana/password", csrf, reset)
            assert status == 200 and done == {"sessions_ended": 1, "tokens_revoked": 1, "lockout_lifted": True}
            assert not await signed_in(ana, server)
            async with forgetful.post(server.url + "/api/login", json={"name": "ana", "password": PASSWORD}) as r:
                assert r.status == 401  # the old password no longer works ...
            async with forgetful.post(server.url + "/api/login", json={"name": "ana", "password": NEW_PASSWORD}) as r:
                assert r.status == 200  # ... the new one does, at once
    assert await server.app[STATE].auth.from_bearer(token) is None
    for body, message in (({"password": "short"}, "a password is 8 to 200"), ({}, "'password' is required")):
        status, refused = await call(http, server, "POST", "/api/agents/ana/password", csrf, body)
        assert status == 400 and refused["message"].startswith(message)
    status, refused = await call(http, server, "POST", "/api/agents/nobody/password", csrf, {"password": NEW_PASSWORD})
    assert status == 404


async def _lock_out(served: Served, name: str) -> None:
    """MAX_FAILURES wrong passwords for `name` from one address: the next login, right or not, gets 429."""
    async with _fresh() as forgetful:
        for _ in range(MAX_FAILURES):
            async with forgetful.post(served.url + "/api/login", json={"name": name, "password": "guess"}) as r:
                assert r.status == 401
        async with forgetful.post(served.url + "/api/login", json={"name": name, "password": PASSWORD}) as r:
            assert r.status == 429


async def _locked(session: aiohttp.ClientSession, served: Served) -> dict[str, bool]:
    status, listed = await call(session, served, "GET", "/api/agents")
    assert status == 200
    return {a["name"]: a["locked_out"] for a in listed["agents"]}


async def test_an_admin_sees_who_is_locked_out_and_unlocks_them_keeping_their_password(
    server: Served, http: aiohttp.ClientSession
) -> None:
    csrf = await as_admin(server, http)
    await add_agent(server, "ana")
    await add_agent(server, "bob")
    token = await server.app[STATE].auth.new_token("ana")
    async with _fresh() as ana:
        await login(ana, server, "ana")
        assert await _locked(http, server) == {"ada": False, "ana": False, "bob": False}
        await _lock_out(server, "ana")
        assert await _locked(http, server) == {"ada": False, "ana": True, "bob": False}
        # An agent's change answers with the lock too.
        status, changed = await call(http, server, "POST", "/api/agents/ana", csrf, {"tier": 2})
        assert status == 200 and changed["agent"]["locked_out"] is True

        status, done = await call(http, server, "POST", "/api/agents/ana/unlock", csrf)
        assert (status, done) == (200, {"lockouts_lifted": 1})
        assert await _locked(http, server) == {"ada": False, "ana": False, "bob": False}
        # Only the lock goes: the same password signs in at once, and nothing else of hers ended.
        assert await signed_in(ana, server)
        async with _fresh() as again:
            await login(again, server, "ana")
        assert await token_status(server, token) == 200
        status, done = await call(http, server, "POST", "/api/agents/ana/unlock", csrf)
        assert (status, done) == (200, {"lockouts_lifted": 0})
    status, refused = await call(http, server, "POST", "/api/agents/nobody/unlock", csrf)
    assert status == 404 and refused["error"] == "no_such_agent"
    unlock = openapi_document()["paths"]["/api/agents/{name}/unlock"]["post"]
    assert unlock["x-role"] == "admin" and set(unlock["responses"]) >= {"200", "401", "403", "404"}


async def test_a_wrong_origin_is_refused_saying_the_origin_was_the_problem(
    server: Served, http: aiohttp.ClientSession
) -> None:
    await add_agent(server, "ana")
    csrf = await login(http, server, "ana")
    headers = {"X-Relevo-CSRF": csrf, "Origin": "http://evil.example"}
    async with http.post(server.url + "/api/claim", json={}, headers=headers) as r:
        refused = await r.json()
    assert r.status == 403 and refused["error"] == "origin", refused
    assert "http://evil.example" in refused["message"] and "X-Relevo-CSRF" not in refused["message"]
    # A missing or wrong token is still told as such, whatever the Origin.
    for sent in ({"Origin": server.url}, {"X-Relevo-CSRF": "wrong", "Origin": "http://evil.example"}):
        async with http.post(server.url + "/api/claim", json={}, headers=sent) as r:
            refused = await r.json()
        assert (r.status, refused["error"]) == (403, "csrf")
        assert refused["message"] == "send the X-Relevo-CSRF header from /api/me"


async def test_an_admin_may_not_disable_demote_or_delete_themselves(
    server: Served, http: aiohttp.ClientSession
) -> None:
    csrf = await as_admin(server, http)
    for method, path, body in (
        ("POST", "/api/agents/ada", {"disabled": True}),
        ("POST", "/api/agents/ada", {"role": "supervisor"}),
        ("POST", "/api/agents/ada", {"role": "agent", "tier": 2}),
        ("DELETE", "/api/agents/ada", None),
    ):
        status, refused = await call(http, server, method, path, csrf, body)
        assert status == 400 and refused["error"] == "not_yourself", (method, body, refused)
        assert "another admin can" in refused["message"]
    ada = await server.service.directory.get("ada")
    assert ada is not None and ada.role == "admin" and not ada.disabled and ada.tier == 1
    assert await signed_in(http, server)
    # Their own other settings they may change; and another admin may demote them.
    status, _ = await call(http, server, "POST", "/api/agents/ada", csrf, {"role": "admin", "display_name": "Ada L."})
    assert status == 200
    await add_agent(server, "max", role="admin")
    async with _fresh() as other:
        other_csrf = await login(other, server, "max")
        status, done = await call(other, server, "POST", "/api/agents/ada", other_csrf, {"role": "supervisor"})
        assert status == 200 and done["agent"]["role"] == "supervisor"
    status, _ = await call(http, server, "GET", "/api/agents")
    assert status == 403  # at once: the role is read at every request


async def test_deleting_an_agent_needs_them_disabled_and_free_and_keeps_their_name_in_the_records(
    server: Served, http: aiohttp.ClientSession
) -> None:
    csrf = await as_admin(server, http)
    await add_agent(server, "ana", departments=("general",))
    cid = await _queued(server, http)
    async with _fresh() as ana:
        ana_csrf = await login(ana, server, "ana")
        await post(ana, server, "/api/claim", ana_csrf)
        status, refused = await call(http, server, "DELETE", "/api/agents/ana", csrf)
        assert status == 409 and refused == {"error": "agent_in_use", "message": "disable 'ana' before deleting them"}
        # Disabling gives back what she holds at once (the customer is told), rather than at the lease's end.
        await call(http, server, "POST", "/api/agents/ana", csrf, {"disabled": True})
        assert await server.service.queues.assigned_to("ana") == []  # given back at the disable
        assert (await server.service.queues.waiting("general", 1)) == [cid]
        await call(http, server, "POST", "/api/agents/ana", csrf, {"disabled": False})
        ana_csrf = await login(ana, server, "ana")
        await post(ana, server, "/api/claim", ana_csrf)
        await server.service.directory.disable("ana")  # a claim racing the disable: held, yet disabled
        status, refused = await call(http, server, "DELETE", "/api/agents/ana", csrf)
        assert status == 409 and refused["error"] == "agent_in_use"
        assert refused["message"].startswith("'ana' still holds 1 conversation: a supervisor takes them over")
        # Re-enabled to finish the work, then disabled again with nothing held.
        await call(http, server, "POST", "/api/agents/ana", csrf, {"disabled": False})
        ana_csrf = await login(ana, server, "ana")
        await post(ana, server, f"/api/conversations/{cid}/resolve", ana_csrf, {"outcome": "solved"})
    await call(http, server, "POST", "/api/agents/ana", csrf, {"disabled": True})
    token = await server.app[STATE].auth.new_token("ana")  # one a script made after the disable
    async with http.delete(server.url + "/api/agents/ana", headers={"X-Relevo-CSRF": csrf}) as r:
        assert r.status == 204
    assert await server.service.directory.get("ana") is None
    assert await server.app[STATE].auth.from_bearer(token) is None
    status, listed = await call(http, server, "GET", "/api/agents")
    assert [a["name"] for a in listed["agents"]] == ["ada"]
    status, _ = await call(http, server, "DELETE", "/api/agents/ana", csrf)
    assert status == 404
    async with _fresh() as gone, gone.post(server.url + "/api/login", json={"name": "ana", "password": PASSWORD}) as r:
        assert r.status == 401  # as any unknown name
    # The record still says who handled it, and the agent filter still finds them by name.
    async with http.get(server.url + "/api/records", params={"agent": "ana"}) as r:
        rows = (await r.json())["records"]
    assert [(x["conversation_id"], x["agent"], x["outcome"]) for x in rows] == [(cid, "ana", "solved")]
    # The name is free again.
    status, _ = await call(http, server, "POST", "/api/agents", csrf, {**NEW_BEA, "name": "ana"})
    assert status == 201


# -- one's own password ----------------------------------------------------------------------------------


async def test_an_agent_changes_their_own_password_and_stays_signed_in_here_only(
    server: Served, http: aiohttp.ClientSession
) -> None:
    await add_agent(server, "ana")
    csrf = await login(http, server, "ana")
    token = await server.app[STATE].auth.new_token("ana")
    async with _fresh() as other_tab:
        await login(other_tab, server, "ana")
        status, done = await call(http, server, "POST", "/api/me/password", csrf,
                                  {"current": PASSWORD, "new": NEW_PASSWORD})  # fmt: skip
        assert status == 200 and done == {"sessions_ended": 1, "tokens_revoked": 1, "lockout_lifted": False}
        assert not await signed_in(other_tab, server)
    # This browser carries on with the same cookie and CSRF token.
    assert await signed_in(http, server)
    await post(http, server, "/api/presence", csrf, {"state": "away"})
    assert await server.app[STATE].auth.from_bearer(token) is None
    async with _fresh() as s:
        async with s.post(server.url + "/api/login", json={"name": "ana", "password": PASSWORD}) as r:
            assert r.status == 401
        async with s.post(server.url + "/api/login", json={"name": "ana", "password": NEW_PASSWORD}) as r:
            assert r.status == 200


async def test_a_wrong_current_password_is_refused_and_counted_as_a_failed_login(
    server: Served, http: aiohttp.ClientSession
) -> None:
    await add_agent(server, "ana")
    csrf = await login(http, server, "ana")
    # A new password that may not be set is refused first, and costs no attempt.
    for _ in range(MAX_FAILURES + 1):
        body = {"current": "wrong", "new": "short"}
        status, refused = await call(http, server, "POST", "/api/me/password", csrf, body)
        assert status == 400 and refused["message"].startswith("a password is 8 to 200 characters")
    for _ in range(MAX_FAILURES):
        status, refused = await call(http, server, "POST", "/api/me/password", csrf,
                                     {"current": "wrong guess", "new": NEW_PASSWORD})  # fmt: skip
        assert status == 403 and refused == {"error": "wrong_password", "message": "the current password is wrong"}
    right = {"current": PASSWORD, "new": NEW_PASSWORD}
    status, refused = await call(http, server, "POST", "/api/me/password", csrf, right)
    assert status == 429 and refused["error"] == "locked"
    # Locked as after five wrong logins: the right password does not sign in from here either.
    async with _fresh() as s, s.post(server.url + "/api/login", json={"name": "ana", "password": PASSWORD}) as r:
        assert r.status == 429
    assert await signed_in(http, server)  # the console itself stays signed in
    for body, message in (
        ({"new": NEW_PASSWORD}, "'current' is required"),
        ({"current": PASSWORD}, "'new' is required"),
        ({**right, "name": "bob"}, "unknown field 'name'"),
    ):
        status, refused = await call(http, server, "POST", "/api/me/password", csrf, body)
        assert status == 400 and refused["message"].startswith(message), refused
    assert await server.service.directory.verify("ana", PASSWORD) is not None  # never changed


def test_the_cli_refuses_the_passwords_the_web_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    # One rule for `relevo agent add|passwd` and the web: the CLI calls handoff.agents.check_new_password.
    for typed in ("x" * (agents_module.MIN_PASSWORD_CHARS - 1), " " * 10, "y" * (agents_module.MAX_PASSWORD_CHARS + 1)):
        monkeypatch.setattr("sys.stdin", io.StringIO(typed + "\n"))
        with pytest.raises(agents_module.AgentError, match="8 to 200 characters"):
            agent_cli.read_password(True)
    monkeypatch.setattr("sys.stdin", io.StringIO("long enough\n"))
    assert agent_cli.read_password(True) == "long enough"
