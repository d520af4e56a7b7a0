"""The agent API over real HTTP on 127.0.0.1: auth, lockout, CSRF, tokens, every route, roles, live socket."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import WSMsgType
from yarl import URL

from handoff import api, audit, keys
from handoff.api import API_CSP, ROUTES, STATE, openapi_document, records_csv_text, safe_cell
from handoff.auth import COOKIE, MAX_ADDRESS_FAILURES, MAX_FAILURES, client_address
from handoff.presence import now_ms
from tests.handoff import test_service
from tests.handoff.test_service import (
    PASSWORD,
    Served,
    _wait_until,
    add_agent,
    ask_for_person,
    conversation_id,
    customer,
    expect,
    login,
    make_settings,
    post,
    rate,
    serving,
)

# The shared fixtures (a server with the API mounted, an HTTP client keeping cookies).
server = test_service.server
http = test_service.http
AGENT_ROUTES = [r for r in ROUTES if r.role is not None]


def _concrete(path: str) -> str:
    return re.sub(r"\{\w+\}", "x", path)


async def _queued(
    served: Served, http: aiohttp.ClientSession, text: str = "I want to talk to a person"
) -> str:
    ws = await customer(http, served)
    await ask_for_person(ws, text)
    await expect(ws, "status", lambda d: d.get("position") is not None, state="queued")
    await ws.close()
    return await conversation_id(served)


def _fresh() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


# -- authentication --------------------------------------------------------------------------------


async def test_login_me_logout(server: Served, http: aiohttp.ClientSession) -> None:
    await add_agent(server, "ana", display_name="Ana")
    async with http.post(server.url + "/api/login", json={"name": "ana", "password": PASSWORD}) as r:
        assert r.status == 200
        body = await r.json()
        cookie = r.cookies[COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
        assert r.headers["Content-Security-Policy"] == API_CSP
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert body["agent"]["name"] == "ana" and body["agent"]["display_name"] == "Ana"
    # Signing in is not being available: the console's heartbeat is (the supervisor floor sends none).
    assert body["agent"]["presence"] == "offline"
    async with http.get(server.url + "/api/me") as r:
        me = await r.json()
    assert me["csrf"] == body["csrf"] and me["agent"]["role"] == "agent"
    assert me["max_message_chars"] == server.service.settings.server.max_message_chars

    stolen = cookie.value
    async with http.post(server.url + "/api/logout", headers={"X-Relevo-CSRF": body["csrf"]}) as r:
        assert r.status == 204
    async with http.get(server.url + "/api/me") as r:
        assert r.status == 401 and (await r.json()) == {"error": "unauthenticated"}
    # The old cookie is revoked in Redis, not just cleared in the browser.
    async with _fresh() as other, other.get(server.url + "/api/me", cookies={COOKIE: stolen}) as r:
        assert r.status == 401


async def test_bad_password_forged_cookie_and_disabled_agent(
    server: Served, http: aiohttp.ClientSession
) -> None:
    await add_agent(server, "ana")
    async with http.post(server.url + "/api/login", json={"name": "ana", "password": "nope"}) as r:
        assert r.status == 401
    csrf = await login(http, server)
    sid = http.cookie_jar.filter_cookies(URL(server.url))[COOKIE].value.split(".")[0]
    async with _fresh() as other, other.get(server.url + "/api/me", cookies={COOKIE: sid + ".forged"}) as r:
        assert r.status == 401
    await server.service.directory.disable("ana")
    async with http.get(server.url + "/api/me", headers={"X-Relevo-CSRF": csrf}) as r:
        assert r.status == 401


async def test_a_password_with_spaces_at_its_ends_signs_in_as_it_was_set(
    server: Served, http: aiohttp.ClientSession
) -> None:
    await add_agent(server, "ana")
    await server.service.directory.set_password("ana", "  my secret pass  ")
    async with http.post(server.url + "/api/login", json={"name": "ana", "password": "my secret pass"}) as r:
        assert r.status == 401
    async with http.post(server.url + "/api/login", json={"name": "ana", "password": "  my secret pass  "}) as r:
        assert r.status == 200


async def test_lockout_after_five_failures_per_name_at_an_address(server: Served, http: aiohttp.ClientSession) -> None:
    await add_agent(server, "ana")
    for _ in range(MAX_FAILURES):
        async with http.post(server.url + "/api/login", json={"name": "ana", "password": "wrong"}) as r:
            assert r.status == 401
    async with http.post(server.url + "/api/login", json={"name": "ana", "password": PASSWORD}) as r:
        assert r.status == 429 and r.headers["Retry-After"] == "900"
    # Not the whole address: a colleague behind the same office NAT still signs in.
    await add_agent(server, "bea")
    async with http.post(server.url + "/api/login", json={"name": "bea", "password": PASSWORD}) as r:
        assert r.status == 200


async def test_lockout_behind_a_trusted_proxy_is_per_client(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    settings = make_settings(redis_url, tmp_path)
    proxy = dataclasses.replace(settings.server, trusted_proxies=("127.0.0.1",))
    settings = dataclasses.replace(settings, server=proxy)
    async with serving(settings) as proxied:
        await add_agent(proxied, "ana")
        await add_agent(proxied, "bea")
        attacker = {"X-Forwarded-For": "203.0.113.9"}
        for i in range(MAX_ADDRESS_FAILURES):  # guessing across names locks the address
            body = {"name": f"nobody{i}", "password": "wrong"}
            async with http.post(proxied.url + "/api/login", json=body, headers=attacker) as r:
                assert r.status == 401
        async with http.post(proxied.url + "/api/login", json={"name": "bea", "password": PASSWORD},
                             headers=attacker) as r:
            assert r.status == 429  # the attacking client is locked out ...
        # ... and a colleague behind the same proxy is not; a forged left-most hop does not help the attacker.
        async with _fresh() as colleague, colleague.post(
            proxied.url + "/api/login", json={"name": "ana", "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.7"},
        ) as r:
            assert r.status == 200
        forged = {"X-Forwarded-For": "198.51.100.8, 203.0.113.9"}
        async with http.post(proxied.url + "/api/login", json={"name": "bea", "password": PASSWORD},
                             headers=forged) as r:
            assert r.status == 429


def test_client_address_trusts_only_listed_proxies() -> None:
    assert client_address("10.0.0.5", "1.2.3.4", ()) == "10.0.0.5"  # no proxy configured: header ignored
    assert client_address("10.0.0.5", "1.2.3.4", ("10.0.0.1",)) == "10.0.0.5"  # not from the proxy
    assert client_address("10.0.0.1", "9.9.9.9, 1.2.3.4", ("10.0.0.1",)) == "1.2.3.4"
    assert client_address("10.0.0.1", "1.2.3.4, 10.0.0.2", ("10.0.0.1", "10.0.0.2")) == "1.2.3.4"
    assert client_address("10.0.0.1", "", ("10.0.0.1",)) == "10.0.0.1"



def test_a_forwarded_header_from_a_proxy_not_listed_is_logged_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handoff import auth

    monkeypatch.setattr(auth, "_warned", set())
    caplog.set_level(logging.WARNING, logger="handoff.auth")
    assert client_address("10.0.0.9", "", ()) == "10.0.0.9"
    assert not caplog.records  # no header, no proxy: nothing to say
    for _ in range(3):
        assert client_address("10.0.0.9", "1.2.3.4", ()) == "10.0.0.9"
    [warning] = caplog.records
    assert "10.0.0.9 is not in server.trusted_proxies" in warning.getMessage()


async def test_csrf_is_required_with_the_cookie(server: Served, http: aiohttp.ClientSession) -> None:
    await add_agent(server, "ana")
    csrf = await login(http, server)
    async with http.post(server.url + "/api/presence", json={"state": "away"}) as r:
        assert r.status == 403 and (await r.json())["error"] == "csrf"
    headers = {"X-Relevo-CSRF": "wrong"}
    async with http.post(server.url + "/api/presence", json={"state": "away"}, headers=headers) as r:
        assert r.status == 403
    # Another site, and this server's name over another scheme (a plain-HTTP server here), are other origins.
    for origin in ("http://evil.example", server.url.replace("http://", "https://")):
        headers = {"X-Relevo-CSRF": csrf, "Origin": origin}
        async with http.post(server.url + "/api/presence", json={"state": "away"}, headers=headers) as r:
            assert r.status == 403
    headers = {"X-Relevo-CSRF": csrf, "Origin": server.url}
    async with http.post(server.url + "/api/presence", json={"state": "away"}, headers=headers) as r:
        assert r.status == 204, await r.text()
    assert await server.service.presence.status("ana") == "away"
    await post(http, server, "/api/presence", csrf, {"state": "online"})  # no Origin: not a browser page
    assert await server.service.presence.status("ana") == "online"


async def test_bearer_token_needs_no_csrf(server: Served) -> None:
    await add_agent(server, "ana")
    token = await server.app[STATE].auth.new_token("ana")
    headers = {"Authorization": f"Bearer {token}"}
    async with _fresh() as s:
        async with s.get(server.url + "/api/me", headers=headers) as r:
            assert r.status == 200 and (await r.json())["agent"]["name"] == "ana"
        async with s.post(server.url + "/api/presence", json={"state": "online"}, headers=headers) as r:
            assert r.status == 204
        async with s.get(server.url + "/api/me", headers={"Authorization": "Bearer rlv_forged"}) as r:
            assert r.status == 401


# -- the route table -------------------------------------------------------------------------------


async def test_every_route_refuses_strangers_and_wrong_roles(
    server: Served, http: aiohttp.ClientSession
) -> None:
    assert {r.path for r in AGENT_ROUTES} >= {"/agent", "/supervisor", "/admin", "/api/floor", "/api/agents", "/api/ws"}
    async with _fresh() as stranger:
        for route in AGENT_ROUTES:
            url = server.url + _concrete(route.path)
            async with stranger.request(route.method, url, allow_redirects=False, json={}) as r:
                if route.kind == "page":
                    assert r.status == 302, route.path
                    assert r.headers["Location"] == f"/login?next={route.path}"
                else:
                    assert r.status == 401, f"{route.method} {route.path}: {r.status}"
    await add_agent(server, "ana")
    await add_agent(server, "sam", role="supervisor")
    # Each role is refused every route that needs a higher one (an admin's, too, to a supervisor).
    for name, above in (("ana", ("supervisor", "admin")), ("sam", ("admin",))):
        async with _fresh() as session:
            csrf = await login(session, server, name)
            for route in [r for r in AGENT_ROUTES if r.role in above]:
                async with session.request(route.method, server.url + _concrete(route.path), allow_redirects=False,
                                           headers={"X-Relevo-CSRF": csrf}, json={}) as r:  # fmt: skip
                    assert r.status == 403, f"{name}: {route.method} {route.path}"
                    assert r.headers["X-Frame-Options"] == "DENY"


async def test_pages_and_security_headers(server: Served, http: aiohttp.ClientSession) -> None:
    async with http.get(server.url + "/login") as r:
        assert r.status in (200, 404)  # 404 until the console pages are installed
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert r.headers["Referrer-Policy"] == "no-referrer"
    async with http.get(server.url + "/console/..%2Fservice.py") as r:
        assert r.status == 404
    await add_agent(server, "sam", role="supervisor")
    await login(http, server, "sam")
    async with http.get(server.url + "/supervisor", allow_redirects=False) as r:
        assert r.status in (200, 404) and r.headers["X-Content-Type-Options"] == "nosniff"


async def test_an_agent_refused_a_page_gets_a_page_in_the_console_language(
    server: Served, http: aiohttp.ClientSession
) -> None:
    await add_agent(server, "bob")
    await login(http, server, "bob")
    cases = (
        ({"Accept-Language": "es-ES,es;q=0.9,en;q=0.8"}, "", "es"),
        ({"Accept-Language": "de-DE, en;q=0.3, es;q=0.7"}, "", "es"),  # the best one Relevo speaks
        ({"Accept-Language": "es-ES"}, "?lang=en", "en"),  # the console's chosen language wins
        ({}, "", "en"),
    )
    for headers, query, lang in cases:
        async with http.get(server.url + "/supervisor" + query, headers=headers, allow_redirects=False) as r:
            assert r.status == 403 and r.content_type == "text/html", (headers, query)
            assert r.headers["Content-Language"] == lang
            assert "default-src 'self'" in r.headers["Content-Security-Policy"]
            page = await r.text()
        assert f'<html lang="{lang}">' in page
        assert "forbidden:" not in page
        if lang == "es":
            assert "Tu rol no puede abrir esta página" in page and ">Volver a la consola de agente</a>" in page
        else:
            assert "Your role may not open this page" in page and ">Back to the agent console</a>" in page
        back = "/agent?lang=en" if query else "/agent"
        assert f'id="refused-back" class="btn btn-primary" href="{back}"' in page
    # The language the console remembers (its cookie), and nothing of the address written into the page.
    async with http.get(server.url + '/supervisor?x="><script>', cookies={"relevo_lang": "es"}) as r:
        assert r.status == 403 and "Tu rol no puede" in (page := await r.text())
        assert "<script" not in page


def test_openapi_describes_every_api_route() -> None:
    doc = openapi_document()
    for route in ROUTES:
        if route.path.startswith("/api/"):
            op = doc["paths"][route.path][route.method.lower()]
            assert op["summary"]
            assert op["x-role"] == (route.role or "public")


async def test_openapi_is_served(server: Served, http: aiohttp.ClientSession) -> None:
    await add_agent(server, "ana")
    await login(http, server)
    async with http.get(server.url + "/api/openapi.json") as r:
        doc = await r.json()
    assert "/api/conversations/{id}/reply" in doc["paths"]


# -- work ------------------------------------------------------------------------------------------


async def test_agent_work_routes(server: Served, http: aiohttp.ClientSession) -> None:
    await add_agent(server, "ana", display_name="Ana", capacity=3)
    await add_agent(server, "olga", departments=("orders",))
    cid = await _queued(server, http)
    csrf = await login(http, server)

    async with http.get(server.url + "/api/queues") as r:
        queues = (await r.json())["queues"]
    general = next(q for q in queues if q["department"] == "general" and q["tier"] == 1)
    assert general["length"] == 1
    item = general["items"][0]
    assert item["conversation_id"] == cid and item["reasons"] == ["asked_for_person"]
    assert item["state"] == "queued" and item["agent"] is None and item["summary"]
    assert {q["department"] for q in queues} == {"general", "logistics"}

    async with http.get(server.url + f"/api/conversations/{cid}") as r:
        view = await r.json()
    assert view["state"] == "queued" and view["record"]["reasons"][0]["code"] == "asked_for_person"
    assert any(m["from"] == "customer" for m in view["transcript"])

    # A misnamed field is refused, not read as "the next one": the script meant this conversation.
    async with http.post(server.url + "/api/claim", json={"id": cid}, headers={"X-Relevo-CSRF": csrf}) as r:
        refused = await r.json()
        assert r.status == 400 and refused["message"] == "unknown field 'id' (expected: conversation_id)"
    assert (await post(http, server, "/api/claim", csrf))["conversation_id"] == cid
    async with http.post(server.url + "/api/claim", json={}, headers={"X-Relevo-CSRF": csrf}) as r:
        assert r.status == 409 and (await r.json())["error"] == "empty"
    async with http.get(server.url + "/api/mine") as r:
        assert [c["conversation_id"] for c in (await r.json())["conversations"]] == [cid]

    too_long = "x" * (server.service.settings.server.max_message_chars + 1)
    async with http.post(server.url + f"/api/conversations/{cid}/reply", json={"text": too_long},
                         headers={"X-Relevo-CSRF": csrf}) as r:  # fmt: skip
        assert r.status == 400 and (await r.json())["error"] == "bad_request"
    big = {"text": "y" * (70 * 1024)}
    async with http.post(server.url + f"/api/conversations/{cid}/reply", json=big,
                         headers={"X-Relevo-CSRF": csrf}) as r:  # fmt: skip
        assert r.status == 413
    reply = await post(http, server, f"/api/conversations/{cid}/reply", csrf, {"text": "Hello!"})
    await post(http, server, f"/api/conversations/{cid}/note", csrf, {"text": "VIP customer"})
    async with http.get(server.url + f"/api/conversations/{cid}") as r:
        view = await r.json()
    assert view["transcript"][-1] == {
        **view["transcript"][-1],
        "id": reply["id"],
        "from": "agent",
        "author": "Ana",
    }
    assert [n["text"] for n in view["notes"]] == ["VIP customer"]
    assert all(m["text"] != "VIP customer" for m in view["transcript"])

    # Another department's agent may not read it.
    async with _fresh() as other:
        await login(other, server, "olga")
        async with other.get(server.url + f"/api/conversations/{cid}") as r:
            assert r.status == 403

    await post(http, server, f"/api/conversations/{cid}/escalate", csrf, {"note": "needs tier 2"})
    st = await server.service.queues.state(cid)
    assert st is not None and st.tier == 2 and st.state == "queued"
    async with http.post(
        server.url + f"/api/conversations/{cid}/release", headers={"X-Relevo-CSRF": csrf}
    ) as r:
        assert r.status == 409 and (await r.json())["error"] == "not_yours"


async def test_transfer_release_resolve(server: Served, http: aiohttp.ClientSession) -> None:
    await add_agent(server, "ana", departments=("general", "billing"))
    cid = await _queued(server, http)
    csrf = await login(http, server)
    await post(http, server, "/api/claim", csrf, {"conversation_id": cid})
    await post(http, server, f"/api/conversations/{cid}/release", csrf)
    assert await server.service.queues.position(cid) == 1
    await post(http, server, "/api/claim", csrf)
    async with http.post(server.url + f"/api/conversations/{cid}/transfer", json={"department": "nowhere"},
                         headers={"X-Relevo-CSRF": csrf}) as r:  # fmt: skip
        assert r.status == 409 and (await r.json())["error"] == "unknown_department"
    await post(
        http, server, f"/api/conversations/{cid}/transfer", csrf, {"department": "billing", "note": "invoice"}
    )
    st = await server.service.queues.state(cid)
    assert st is not None and st.department == "billing"
    await post(http, server, "/api/claim", csrf)
    async with http.post(server.url + f"/api/conversations/{cid}/resolve", json={"outcome": "maybe"},
                         headers={"X-Relevo-CSRF": csrf}) as r:  # fmt: skip
        assert r.status == 400
    await post(
        http, server, f"/api/conversations/{cid}/resolve", csrf, {"outcome": "solved", "note": "refunded"}
    )
    assert await server.service.queues.state(cid) is None


async def test_once_ended_a_conversation_opens_to_the_queue_it_ended_in_not_the_one_it_began_in(
    server: Served, http: aiohttp.ClientSession
) -> None:
    await add_agent(server, "ana", departments=("general",), tier=1)
    await add_agent(server, "tom", departments=("general",), tier=3)
    await add_agent(server, "olga", departments=("orders",), tier=1)
    ana, tom, olga = _fresh(), _fresh(), _fresh()
    try:
        csrf = {name: await login(s, server, name) for name, s in (("ana", ana), ("tom", tom), ("olga", olga))}

        async def opens(session: aiohttp.ClientSession, cid: str) -> list[str] | None:
            async with session.get(server.url + f"/api/conversations/{cid}") as r:
                return [n["text"] for n in (await r.json())["notes"]] if r.status == 200 else None

        # Escalated by ana, resolved at tier 2 by tom with a note: tier-1 ana no longer reads it.
        up = await _queued(server, http)
        await post(ana, server, "/api/claim", csrf["ana"], {"conversation_id": up})
        await post(ana, server, f"/api/conversations/{up}/escalate", csrf["ana"], {"note": "for tier 2"})
        await post(tom, server, "/api/claim", csrf["tom"], {"conversation_id": up})
        await post(tom, server, f"/api/conversations/{up}/note", csrf["tom"], {"text": "tier 2 only: legal hold"})
        await post(tom, server, f"/api/conversations/{up}/resolve", csrf["tom"], {"outcome": "solved"})
        assert await opens(ana, up) is None
        async with ana.post(server.url + f"/api/conversations/{up}/note", json={"text": "x"},
                            headers={"X-Relevo-CSRF": csrf["ana"]}) as r:  # fmt: skip
            assert r.status == 403
        notes = await opens(tom, up)
        assert notes is not None and "tier 2 only: legal hold" in notes

        # Transferred by ana to orders and resolved there by olga: olga reads it, ana does not.
        moved = await _queued(server, http)
        await post(ana, server, "/api/claim", csrf["ana"], {"conversation_id": moved})
        await post(ana, server, f"/api/conversations/{moved}/transfer", csrf["ana"], {"department": "orders"})
        await post(olga, server, "/api/claim", csrf["olga"], {"conversation_id": moved})
        await post(olga, server, f"/api/conversations/{moved}/note", csrf["olga"], {"text": "orders only"})
        await post(olga, server, f"/api/conversations/{moved}/resolve", csrf["olga"], {"outcome": "solved"})
        assert await opens(ana, moved) is None
        notes = await opens(olga, moved)
        assert notes is not None and "orders only" in notes
    finally:
        for s in (ana, tom, olga):
            await s.close()


async def test_half_an_emoji_in_a_reply_or_note_is_stored_as_a_replacement_character(
    server: Served, http: aiohttp.ClientSession
) -> None:
    await add_agent(server, "ana")
    cid = await _queued(server, http)
    csrf = await login(http, server)
    await post(http, server, "/api/claim", csrf, {"conversation_id": cid})
    await post(http, server, f"/api/conversations/{cid}/reply", csrf, {"text": "pasted \ud83d half"})
    await post(http, server, f"/api/conversations/{cid}/note", csrf, {"text": "note \ud83d half"})
    async with http.get(server.url + f"/api/conversations/{cid}") as r:
        view = await r.json()
    assert "pasted \ufffd half" in [m["text"] for m in view["transcript"]]
    assert "note \ufffd half" in [n["text"] for n in view["notes"]]


async def test_canned_and_departments(server: Served, http: aiohttp.ClientSession) -> None:
    await add_agent(server, "ana")
    await login(http, server)
    async with http.get(
        server.url + "/api/canned", params={"q": "¿Cuánto tarda el envío?", "lang": "es"}
    ) as r:
        items = (await r.json())["items"]
    assert items and items[0]["lang"] == "es" and "días" in items[0]["text"]
    async with http.get(server.url + "/api/departments", params={"lang": "es"}) as r:
        found = {d["name"]: d["display_name"] for d in (await r.json())["departments"]}
    assert found["logistics"] == "Envíos"


# -- supervisor --------------------------------------------------------------------------------------


async def test_floor_records_and_csv(server: Served, http: aiohttp.ClientSession) -> None:
    await add_agent(server, "ana")
    await add_agent(server, "sam", role="supervisor")
    cid = await _queued(server, http)
    async with _fresh() as agent_http:
        csrf = await login(agent_http, server, "ana")
        await post(agent_http, server, "/api/claim", csrf)
        await post(agent_http, server, f"/api/conversations/{cid}/resolve", csrf, {"outcome": "solved"})

    async def prompted() -> bool:  # as a customer, who rates once asked: the resolution clears older ratings
        return bool(await server.runtime.redis.hget(keys.conv(cid), "awaiting") == "rating")

    await _wait_until(prompted, "the rating prompt after the resolution")
    await server.service.rate(cid, 5, '=HYPERLINK("http://evil")')
    await login(http, server, "sam")

    async with http.get(server.url + "/api/floor") as r:
        floor = await r.json()
    assert {a["name"] for a in floor["agents"]} == {"ana", "sam"}
    assert {(q["department"], q["tier"]) for q in floor["queues"]} == set(server.service.rules.queues())
    assert "breaches" in floor

    async with http.get(server.url + "/api/records", params={"agent": "ana", "outcome": "solved"}) as r:
        rows = (await r.json())["records"]
    assert [(x["conversation_id"], x["agent"], x["rating"], x["department"]) for x in rows] == [
        (cid, "ana", 5, "general")
    ]
    async with http.get(server.url + "/api/records", params={"outcome": "spam"}) as r:
        assert (await r.json())["records"] == []
    for name, found in (("Ana", [cid]), ("ANA", [cid]), (" ana ", [cid]), ("bob", [])):  # display name, case
        async with http.get(server.url + "/api/records", params={"agent": name}) as r:
            assert [x["conversation_id"] for x in (await r.json())["records"]] == found, name
    # Each row names its customer (a web visitor by their widget session) and the e-mail they left; the
    # customer filter finds part of either, or of the conversation id.
    await server.runtime.redis.hset(keys.conv(cid), "email", "Lena.Ruiz@example.com")
    async with http.get(server.url + "/api/records") as r:
        [row] = (await r.json())["records"]
    assert row["customer"].startswith("web:") and row["email"] == "Lena.Ruiz@example.com"
    session = row["customer"][4:10]
    for wanted, found in ((session, [cid]), ("lena.ruiz", [cid]), (cid[3:12].upper(), [cid]), ("bob@", [])):
        async with http.get(server.url + "/api/records", params={"customer": wanted}) as r:
            body = await r.json()
        assert [x["conversation_id"] for x in body["records"]] == found, wanted
        assert body["metrics"]["handoffs"] == len(found), wanted  # the figures are of the rows found
    # Days are the supervisor's when the console sends its time zone: UTC+14 or UTC-11 is on another
    # day than UTC at any hour.
    utc_day = datetime.now(UTC).date()
    zone, day = next((z, d) for z in ("Pacific/Kiritimati", "Pacific/Pago_Pago")
                     if (d := datetime.now(ZoneInfo(z)).date()) != utc_day)
    for params, found in (({"tz": zone}, [cid]), ({}, []), ({"tz": "Mars/Olympus"}, None)):
        async with http.get(server.url + "/api/records", params={"from": str(day), "to": str(day), **params}) as r:
            if found is None:
                assert r.status == 400
            else:
                assert [x["conversation_id"] for x in (await r.json())["records"]] == found, params
    for bad in ({"from": "not-a-date"}, {"from": "0001-01-01"}, {"to": "9999-12-31"}):
        for path in ("/api/records", "/api/records.csv"):
            async with http.get(server.url + path, params=bad) as r:
                assert r.status == 400 and (await r.json())["error"] == "bad_request", (path, bad)
    async with http.get(server.url + "/api/records", params={"from": "1970-01-01", "to": "9998-12-31"}) as r:
        body = await r.json()
    assert [x["conversation_id"] for x in body["records"]] == [cid]
    [row] = body["records"]
    assert row["claimed_at"] >= row["ts"] and row["ended_at"] >= row["claimed_at"]
    assert row["wait_s"] == (row["claimed_at"] - row["ts"]) // 1000 and row["handle_s"] is not None
    metrics = body["metrics"]
    assert (metrics["handoffs"], metrics["solved"], metrics["open"], metrics["rated"]) == (1, 1, 0, 1)
    assert metrics["rating_avg"] == 5 and metrics["median_wait_s"] == row["wait_s"]
    async with http.get(server.url + "/api/records.csv") as r:
        assert r.content_type == "text/csv" and r.charset == "utf-8"
        raw = await r.read()
    # A UTF-8 byte order mark first, so Excel reads accents as accents.
    assert raw.startswith(b'\xef\xbb\xbf"conversation_id",')
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0][0] == "conversation_id" and len(table) == 2  # one row per handoff, none without an id
    assert table[0][-6:] == ["claimed_at", "ended_at", "wait_s", "handle_s", "customer", "email"]
    assert table[1][table[0].index("ended_at")].endswith("+00:00")
    comment = table[1][table[0].index("comment")]
    assert comment.startswith("'=")
    async with http.get(server.url + f"/api/records/{cid}") as r:
        detail = await r.json()
    assert [e["event"] for e in detail["timeline"]] == ["queued", "claimed", "resolved", "rated"]
    assert detail["conversation"]["rating"] == {"score": 5, "comment": '=HYPERLINK("http://evil")'}


async def solved_and_rated(
    http: aiohttp.ClientSession, server: Served, csrf: str, ws: aiohttp.ClientWebSocketResponse, cid: str, stars: int
) -> None:
    """Resolve as solved with the agent logged in with `csrf`; the customer on `ws` is asked and rates."""
    await post(http, server, f"/api/conversations/{cid}/resolve", csrf, {"outcome": "solved"})
    await expect(ws, "message", lambda d: d["text"].startswith("How did we do?"))
    await rate(ws, stars)


async def claimed(
    http: aiohttp.ClientSession, server: Served, csrf: str
) -> tuple[aiohttp.ClientWebSocketResponse, str]:
    """A widget customer who asked for a person, claimed by the agent logged in with `csrf`."""
    ws = await customer(http, server)
    await ask_for_person(ws)
    await expect(ws, "status", lambda d: d.get("position") is not None, state="queued")
    cid = await conversation_id(server)
    await post(http, server, "/api/claim", csrf)
    return ws, cid


async def test_a_conversation_handed_over_again_is_a_new_record_row(
    server: Served, http: aiohttp.ClientSession
) -> None:
    await add_agent(server, "ana", role="supervisor")
    csrf = await login(http, server, "ana")
    ws, cid = await claimed(http, server, csrf)
    await solved_and_rated(http, server, csrf, ws, cid, 2)
    # After the stars, asking for a person is not the comment: it is a new handoff.
    await ws.send_json({"type": "message", "id": "c-3", "text": "I want to talk to a person again"})
    await expect(ws, "status", lambda d: d.get("position") is not None, state="queued")
    async with http.get(server.url + "/api/records") as r:
        rows = (await r.json())["records"]
    assert sorted((x["conversation_id"], x["outcome"], x["rating"]) for x in rows) == [
        (cid, "", None), (cid, "solved", 2)
    ]
    await ws.close()


async def test_the_bot_figures_count_what_the_bot_did(server: Served, http: aiohttp.ClientSession) -> None:
    ws = await customer(http, server)
    await ws.send_json({"type": "message", "id": "c-a", "text": "How long does shipping take?"})
    await expect(ws, "message", lambda d: "Did this help?" in d["text"])
    await ws.send_json({"type": "choose", "id": "c-b", "value": "helpful:yes"})
    await expect(ws, "message", **{"from": "bot"})
    await ask_for_person(ws)
    await expect(ws, "status", state="queued")  # the bot's turn is over
    # Resolved, rated, then back to a person in the same conversation: two handoffs, one conversation.
    await add_agent(server, "sam", role="supervisor")
    csrf = await login(http, server, "sam")
    cid = (await post(http, server, "/api/claim", csrf))["conversation_id"]
    await solved_and_rated(http, server, csrf, ws, cid, 4)
    await ws.send_json({"type": "message", "id": "c-c", "text": "I want to talk to a person again"})
    await expect(ws, "status", lambda d: d.get("position") is not None, state="queued")
    await ws.close()
    other = await customer(http, server)  # the bot alone finishes this one
    await other.send_json({"type": "message", "id": "c-d", "text": "How long does shipping take?"})
    await expect(other, "message", lambda d: "Did this help?" in d["text"])
    await other.close()
    await server.runtime.stats.flush()  # a serving worker does this every few seconds
    async with http.get(server.url + "/api/bot_figures") as r:
        assert r.status == 200
        figures = await r.json()
    assert (figures["conversations"], figures["answered"], figures["helpful_yes"], figures["handed_over"]) == (
        2, 2, 1, 2)
    # "Finished without a person" is of conversations: one of two, however often the other came back.
    assert figures["conversations_handed_over"] == 1 and figures["contained_rate"] == 0.5
    assert figures["helpful_rate"] == 1.0 and figures["days"] == 30
    async with http.get(server.url + "/api/bot_figures?from=2026-02-01&to=2026-01-01") as r:
        assert r.status == 400 and "ends before it starts" in (await r.json())["message"]
    await add_agent(server, "tom")
    async with _fresh() as other:
        await login(other, server, "tom")
        async with other.get(server.url + "/api/bot_figures") as r:
            assert r.status == 403  # a manager's figures


async def test_the_newest_handoff_is_listed_and_opens_however_long_the_audit_stream(
    server: Served, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A busy desk's stream holds up to a million entries; the bounds are made small here, as if it did.
    monkeypatch.setattr("handoff.api.records.AUDIT_READ_MAX", 12)
    monkeypatch.setattr(audit, "HISTORY_PAGE", 5)
    redis = server.runtime.redis
    for n in range(30):  # other conversations' handoffs, before this one
        await audit.append(redis, f"old{n % 10}", "queued", to="general:1", reasons=["asked_for_person"])
    await add_agent(server, "ana", role="supervisor")
    csrf = await login(http, server, "ana")
    ws, cid = await claimed(http, server, csrf)
    for n in range(7):  # and some after it started, so its entries span pages
        await audit.append(redis, f"mid{n}", "queued", to="general:1", reasons=["asked_for_person"])
    await post(http, server, f"/api/conversations/{cid}/resolve", csrf, {"outcome": "solved"})
    async with http.get(server.url + "/api/records") as r:
        rows = (await r.json())["records"]
    (row,) = [r for r in rows if r["conversation_id"] == cid]
    assert row["outcome"] == "solved"
    assert all(r["department"] for r in rows)  # no row cut off from its start
    async with http.get(server.url + f"/api/records/{cid}?handoff={row['handoff']}") as r:
        assert r.status == 200
        events = [e["event"] for e in (await r.json())["timeline"]]
    assert events[0] == "queued" and events[-1] == "resolved" and "claimed" in events
    await ws.close()


async def test_a_record_opens_with_the_queue_its_row_shows(server: Served, http: aiohttp.ClientSession) -> None:
    await add_agent(server, "sam", role="supervisor", tier=3, departments=("general", "billing"))
    cid = await _queued(server, http)
    csrf = await login(http, server, "sam")
    await post(http, server, "/api/claim", csrf)
    await post(http, server, f"/api/conversations/{cid}/transfer", csrf, {"department": "billing"})
    await post(http, server, "/api/claim", csrf)
    await post(http, server, f"/api/conversations/{cid}/escalate", csrf, {"note": "needs tier 2"})
    await post(http, server, "/api/claim", csrf)
    await post(http, server, f"/api/conversations/{cid}/resolve", csrf, {"outcome": "solved"})
    async with http.get(server.url + "/api/records") as r:
        row = (await r.json())["records"][0]
    async with http.get(server.url + f"/api/records/{cid}") as r:
        conv = (await r.json())["conversation"]
    assert (row["department"], row["tier"]) == ("billing", 2)
    assert (conv["department"], conv["tier"]) == ("billing", 2)
    assert (conv["record"]["department"], conv["record"]["tier"]) == ("general", 1)  # where it started


async def test_each_row_of_a_conversation_handed_over_twice_opens_its_own_handoff(
    server: Served, http: aiohttp.ClientSession
) -> None:
    # The tester's steps: handed over, transferred to accounts, solved and rated 5 with a comment; later,
    # in the same conversation, handed over again and resolved "other".
    await add_agent(server, "sam", role="supervisor", tier=3, departments=("general", "accounts"))
    csrf = await login(http, server, "sam")
    ws, cid = await claimed(http, server, csrf)
    await post(http, server, f"/api/conversations/{cid}/transfer", csrf, {"department": "accounts"})
    await post(http, server, "/api/claim", csrf)
    await solved_and_rated(http, server, csrf, ws, cid, 5)
    assert await server.service.comment(cid, "Quick and kind")
    await ws.send_json({"type": "message", "id": "c-3", "text": "I want to talk to a person again"})
    await expect(ws, "status", lambda d: d.get("position") is not None, state="queued")
    await post(http, server, "/api/claim", csrf)
    await post(http, server, f"/api/conversations/{cid}/resolve", csrf, {"outcome": "other"})
    await ws.close()

    async with http.get(server.url + "/api/records") as r:
        rows = sorted((await r.json())["records"], key=lambda x: x["ts"])
    assert [(x["department"], x["outcome"], x["rating"]) for x in rows] == [
        ("accounts", "solved", 5), ("general", "other", None)
    ]
    assert rows[0]["handoff"] != rows[1]["handoff"]
    for row in rows:
        async with http.get(server.url + f"/api/records/{cid}", params={"handoff": row["handoff"]}) as r:
            assert r.status == 200
            detail = await r.json()
        conv = detail["conversation"]
        # The row's handoff: its queue, outcome and rating, and its own timeline (as many events as the
        # row counts); the transcript is the whole conversation's.
        assert (conv["department"], conv["tier"]) == (row["department"], row["tier"])
        assert conv["outcome"] == row["outcome"]
        assert detail["handoff"]["handoff"] == row["handoff"]
        assert len(detail["timeline"]) == row["events"]
        assert [h["handoff"] for h in detail["handoffs"]] == [x["handoff"] for x in rows]
    first = await (await http.get(server.url + f"/api/records/{cid}", params={"handoff": rows[0]["handoff"]})).json()
    assert first["conversation"]["rating"] == {"score": 5, "comment": "Quick and kind"}
    assert [e["event"] for e in first["timeline"]] == [
        "queued", "claimed", "transferred", "claimed", "resolved", "rated", "rated"
    ]
    assert first["conversation"]["agent"] is None
    # The handoff summary kept is the second handoff's: not shown as the first one's.
    assert first["conversation"]["record"] is None and first["handoff"]["reasons"]
    second = await (await http.get(server.url + f"/api/records/{cid}", params={"handoff": rows[1]["handoff"]})).json()
    assert second["conversation"]["rating"] is None
    assert [e["event"] for e in second["timeline"]] == ["queued", "claimed", "resolved"]
    # Without a handoff (a conversation id on the floor): the latest one.
    async with http.get(server.url + f"/api/records/{cid}") as r:
        latest = await r.json()
    assert latest["handoff"] == second["handoff"] and latest["timeline"] == second["timeline"]
    async with http.get(server.url + f"/api/records/{cid}", params={"handoff": "1-0"}) as r:
        assert r.status == 404


async def test_the_resolution_note_shows_in_its_timeline_event(server: Served, http: aiohttp.ClientSession) -> None:
    await add_agent(server, "sam", role="supervisor", tier=3, departments=("general", "billing"))
    cid = await _queued(server, http)
    csrf = await login(http, server, "sam")
    await post(http, server, "/api/claim", csrf)
    await post(http, server, f"/api/conversations/{cid}/transfer", csrf, {"department": "billing", "note": "invoice"})
    await post(http, server, "/api/claim", csrf)
    await post(http, server, f"/api/conversations/{cid}/note", csrf, {"text": "a note of my own"})
    await post(
        http, server, f"/api/conversations/{cid}/resolve", csrf, {"outcome": "solved", "note": "reembolsado"}
    )
    async with http.get(server.url + f"/api/records/{cid}") as r:
        timeline = (await r.json())["timeline"]
    details = {e["event"]: e["detail"] for e in timeline if e["event"] in ("transferred", "resolved")}
    assert details == {"transferred": "invoice", "resolved": "reembolsado"}


async def test_a_resolution_without_a_note_takes_no_one_elses_note(
    server: Served, http: aiohttp.ClientSession
) -> None:
    await add_agent(server, "ana")
    await add_agent(server, "sam", role="supervisor", tier=3)
    cid = await _queued(server, http)
    csrf = await login(http, server, "ana")
    await post(http, server, "/api/claim", csrf)
    await post(http, server, f"/api/conversations/{cid}/resolve", csrf, {"outcome": "solved"})
    async with _fresh() as sam_http:
        sam = await login(sam_http, server, "sam")
        await post(sam_http, server, f"/api/conversations/{cid}/note", sam, {"text": "the supervisor's own"})
        async with sam_http.get(server.url + f"/api/records/{cid}") as r:
            timeline = (await r.json())["timeline"]
    assert [e["detail"] for e in timeline if e["event"] == "resolved"] == [""]


async def test_refusals_say_what_could_not_be_done_and_why(server: Served, http: aiohttp.ClientSession) -> None:
    await add_agent(server, "ana", departments=("general", "billing"))
    await add_agent(server, "bob", departments=("general", "billing"))
    cid = await _queued(server, http)
    csrf = await login(http, server, "ana")
    await post(http, server, "/api/claim", csrf)
    async with _fresh() as bob_http:
        bob = await login(bob_http, server, "bob")
        for action, body, verb in (
            ("resolve", {"outcome": "solved"}, "resolve"), ("release", None, "give back"),
            ("transfer", {"department": "billing"}, "transfer"), ("escalate", None, "escalate"),
            ("return_to_bot", None, "return to the bot"),
        ):  # fmt: skip
            async with bob_http.post(server.url + f"/api/conversations/{cid}/{action}", json=body or {},
                                     headers={"X-Relevo-CSRF": bob}) as r:  # fmt: skip
                refused = await r.json()
            assert r.status == 409 and refused["error"] == "not_yours", (action, refused)
            assert refused["message"] == f"cannot {verb} {cid}: it is not assigned to you", action


async def test_the_agent_filter_finds_everyone_who_had_it_and_the_export_says_so(
    server: Served, http: aiohttp.ClientSession
) -> None:
    await add_agent(server, "ana", departments=("general",), display_name="Ana Ruiz")
    await add_agent(server, "bob", departments=("billing",))
    await add_agent(server, "sam", role="supervisor")
    cid = await _queued(server, http)
    async with _fresh() as ana:
        csrf = await login(ana, server, "ana")
        await post(ana, server, "/api/claim", csrf)
        # Given back and claimed again: still one agent in the row, not ["ana", "ana"].
        await post(ana, server, f"/api/conversations/{cid}/release", csrf)
        await post(ana, server, "/api/claim", csrf)
        await post(ana, server, f"/api/conversations/{cid}/transfer", csrf, {"department": "billing"})
    async with _fresh() as bob:
        csrf = await login(bob, server, "bob")
        await post(bob, server, "/api/claim", csrf)
        await post(bob, server, f"/api/conversations/{cid}/resolve", csrf, {"outcome": "solved"})
    await login(http, server, "sam")
    # Part of a login or display name is enough: the box is typed, not picked from a list.
    for name in ("ANA", "bob", "Ruiz", "bo"):
        async with http.get(server.url + "/api/records", params={"agent": name}) as r:
            rows = (await r.json())["records"]
        assert [(x["agent"], x["agents"]) for x in rows] == [("bob", ["ana", "bob"])], name
    async with http.get(server.url + "/api/records", params={"agent": "zed"}) as r:
        assert (await r.json())["records"] == []
    async with http.get(server.url + "/api/records.csv", params={"agent": "ana"}) as r:
        table = list(csv.DictReader(io.StringIO((await r.read()).decode("utf-8-sig"))))
    assert [(x["agent"], x["agents"]) for x in table] == [("bob", "ana;bob")]


async def test_a_customer_who_blocked_the_bot_shows_as_unreachable(
    server: Served, http: aiohttp.ClientSession
) -> None:
    await add_agent(server, "ana")
    cid = await _queued(server, http)
    csrf = await login(http, server)
    await post(http, server, "/api/claim", csrf)
    async with http.get(server.url + f"/api/conversations/{cid}") as r:
        assert (await r.json())["unreachable"] is False
    await server.runtime.redis.hset(keys.conv(cid), "unreachable", now_ms())  # as the Telegram channel marks it
    async with http.get(server.url + f"/api/conversations/{cid}") as r:
        assert (await r.json())["unreachable"] is True


def test_no_csv_cell_starts_a_formula_whichever_separator_the_spreadsheet_splits_on() -> None:
    row = {"conversation_id": "c1", "ts": 0, "department": "general", "tier": 1, "reasons": ["upset"],
           "agent": "ana", "agents": ["ana"], "outcome": "solved", "rating": 4,
           "comment": 'great;=1+1;\n;=HYPERLINK("http://evil"),@x', "events": 5}  # fmt: skip
    text = records_csv_text([row]).removeprefix("\ufeff")
    for separator in (",", ";"):
        cells = [c for line in csv.reader(io.StringIO(text), delimiter=separator) for c in line]
        assert not [c for c in cells if c.startswith(("=", "+", "-", "@"))], (separator, cells)
    [read] = csv.DictReader(io.StringIO(text))
    assert read["comment"] == 'great;\'=1+1;\n;\'=HYPERLINK("http://evil"),\'@x'


def test_formula_cells_are_neutralised() -> None:
    assert [safe_cell(v) for v in ("=1+1", "+1", "-1", "@x", "ok", None, 3, "a;=b,+c\n-d", "a=b 1-2", "\tx")] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@x",
        "ok",
        "",
        "3",
        "a;'=b,'+c\n'-d",
        "a=b 1-2",
        "'\tx",
    ]


async def test_a_customer_back_after_the_idle_close_is_not_asked_again(
    server: Served, http: aiohttp.ClientSession
) -> None:
    # Tester 21b, T1: "my order still hasn't arrived" to the bot, the conversation closed idle, then "I need
    # to talk to a person": the agent saw only the last line and asked what it was about.
    ws = await customer(http, server)
    await ws.send_json({"type": "message", "id": "c-1", "text": "my order hasn't arrived yet, ordered on monday"})
    await expect(ws, "message", **{"from": "bot"})
    engine = server.runtime.engine
    first = await server.runtime.conversations.get(
        str(await server.runtime.redis.get(keys.customer_last(await _key_of(server))))
    )
    assert first is not None
    assert await engine.close_idle(first.id, now_ms() + 1)
    await expect(ws, "status", state="closed")
    await ws.send_json({"type": "message", "id": "c-2", "text": "I need to talk to a person"})
    await expect(ws, "status", state="queued")
    cid = await conversation_id(server)
    assert cid != first.id
    await add_agent(server, "ana", display_name="Ana")
    await login(http, server)
    async with http.get(server.url + f"/api/conversations/{cid}") as r:
        assert r.status == 200
        view = await r.json()
    record = view["record"]
    assert [ln["text"] for ln in record["before"] if ln["sender"] == "customer"] == [
        "my order hasn't arrived yet, ordered on monday"
    ]
    assert record["before_id"] == first.id and record["before_at"] >= first.created
    assert record["summary_parts"]["wants"] == "my order hasn't arrived yet, ordered on monday"
    assert record["summary_parts"]["before"] == 1
    assert 'Wants: "my order hasn\'t arrived yet' in record["summary"]
    assert "back after a conversation with the bot" in record["summary"]
    await ws.close()


async def test_what_a_waiting_customer_adds_is_on_the_queue_card(server: Served, http: aiohttp.ClientSession) -> None:
    # Tester 21b, T8: the card stayed 'Wants: "hola, quiero hablar con una persona". 1 msg.' after the
    # customer said what it was about while waiting.
    await add_agent(server, "ana", display_name="Ana")
    ws = await customer(http, server, lang="es")
    await ask_for_person(ws, "hola, quiero hablar con una persona")
    await expect(ws, "status", state="queued")
    cid = await conversation_id(server)
    await ws.send_json({"type": "message", "id": "c-2", "text": "es que mi pedido llegó roto y quiero mi dinero"})
    await expect(ws, "ack", lambda d: d.get("id") == "c-2")
    await login(http, server)
    for _ in range(100):  # the relay runs just after the acknowledgement
        async with http.get(server.url + "/api/queues") as r:
            items = [i for q in (await r.json())["queues"] for i in q["items"] if i["conversation_id"] == cid]
        if items and items[0]["summary_parts"]["messages"] == 2:
            break
        await asyncio.sleep(0.05)
    parts = items[0]["summary_parts"]
    assert parts["wants"] == "es que mi pedido llegó roto y quiero mi dinero" and parts["messages"] == 2
    assert 'Wants: "es que mi pedido llegó roto' in items[0]["summary"]
    await ws.close()


async def _key_of(server: Served) -> str:
    """The one widget customer's conversation key (web:<session>)."""
    found = [k async for k in server.runtime.redis.scan_iter(match="ckey:{web:*}:last")]
    assert len(found) == 1, found
    return str(found[0])[len("ckey:{"): -len("}:last")]


# -- live ----------------------------------------------------------------------------------------------


async def test_live_socket_streams_queue_events_and_messages(
    server: Served, http: aiohttp.ClientSession
) -> None:
    await add_agent(server, "ana", display_name="Ana Ruiz")
    csrf = await login(http, server)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(server.api_ws_url, headers={"Origin": "http://evil.example"})
    assert refused.value.status == 403
    live = await http.ws_connect(server.api_ws_url)
    ws = await customer(http, server)
    await ask_for_person(ws)
    queued = await _live(live, lambda d: d["type"] == "queue" and d["event"] == "queued")
    cid = queued["conversation_id"]
    assert queued["department"] == "general"
    await post(http, server, "/api/claim", csrf)
    claimed = await _live(live, lambda d: d["type"] == "queue" and d["event"] == "claimed" and d["agent"] == "ana")
    assert claimed["agent_label"] == "Ana Ruiz"  # what other consoles say ("Ana Ruiz claimed this conversation")
    await live.send_json({"type": "watch", "conversation_id": cid})
    await _live(live, lambda d: d["type"] == "watching")
    await ws.send_json({"type": "message", "id": "c-2", "text": "My order is late"})
    got = await _live(live, lambda d: d["type"] == "message" and d["message"]["from"] == "customer")
    assert got["conversation_id"] == cid and got["message"]["text"] == "My order is late"
    await live.send_json({"type": "heartbeat"})
    await _live(live, lambda d: d["type"] == "heartbeat")
    lease = await server.runtime.redis.zscore(keys.LEASES, cid)
    assert lease is not None
    await live.close()
    await ws.close()


async def test_live_socket_stops_sending_a_conversation_the_agent_may_no_longer_read(
    server: Served, http: aiohttp.ClientSession
) -> None:
    await add_agent(server, "ana")
    await add_agent(server, "cat")
    await login(http, server, "ana")
    ana = await http.ws_connect(server.api_ws_url)
    ws = await customer(http, server)
    await ask_for_person(ws)
    cid = (await _live(ana, lambda d: d["type"] == "queue" and d["event"] == "queued"))["conversation_id"]
    await ana.send_json({"type": "watch", "conversation_id": cid})  # ana looks at it while it waits
    await _live(ana, lambda d: d["type"] == "watching")
    async with _fresh() as other:
        cat_csrf = await login(other, server, "cat")
        await post(other, server, "/api/claim", cat_csrf, {"conversation_id": cid})
        await _live(ana, lambda d: d["type"] == "unwatched" and d["conversation_id"] == cid)
        cat = await other.ws_connect(server.api_ws_url)  # cat's own socket watches what cat claimed
        await ws.send_json({"type": "message", "id": "c-2", "text": "my card ends in 4242"})
        await _live(cat, lambda d: d["type"] == "message" and d["message"]["from"] == "customer")
        await cat.close()
    # Delivered to cat's socket, so ana's would have had it by now: it gets nothing but its heartbeat.
    await ana.send_json({"type": "heartbeat"})
    seen = await _frames_until(ana, "heartbeat")
    assert not [d for d in seen if d["type"] == "message"], seen
    await ana.close()
    await ws.close()


async def test_unwatch_stops_a_viewed_conversation_but_not_the_agents_own(
    server: Served, http: aiohttp.ClientSession
) -> None:
    await add_agent(server, "ana")
    csrf = await login(http, server, "ana")
    live = await http.ws_connect(server.api_ws_url)
    ws = await customer(http, server)
    await ask_for_person(ws)
    cid = (await _live(live, lambda d: d["type"] == "queue" and d["event"] == "queued"))["conversation_id"]
    await live.send_json({"type": "watch", "conversation_id": cid})
    await _live(live, lambda d: d["type"] == "watching")
    await live.send_json({"type": "unwatch", "conversation_id": cid})
    await _live(live, lambda d: d["type"] == "unwatched" and d["conversation_id"] == cid)
    await post(http, server, "/api/claim", csrf, {"conversation_id": cid})
    await live.send_json({"type": "unwatch", "conversation_id": cid})  # hers now: it keeps streaming
    await ws.send_json({"type": "message", "id": "c-2", "text": "still there?"})
    got = await _live(live, lambda d: d["type"] in ("message", "unwatched") and d["conversation_id"] == cid
                      and (d["type"] == "unwatched" or d["message"]["from"] == "customer"))
    assert got["type"] == "message" and got["message"]["text"] == "still there?"
    await live.close()
    await ws.close()


async def test_live_socket_closes_when_the_sign_in_ends(
    server: Served, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_agent(server, "ana")
    await add_agent(server, "bob")
    await login(http, server, "ana")
    by_heartbeat = await http.ws_connect(server.api_ws_url)
    await server.service.directory.disable("ana")
    await by_heartbeat.send_json({"type": "heartbeat"})
    msg = await by_heartbeat.receive(timeout=10)
    assert msg.type == WSMsgType.CLOSE and msg.data == 4401

    # A script that sends nothing is cut off too, once its token is revoked.
    monkeypatch.setattr("handoff.api.live.SESSION_CHECK_S", 0.2)
    token = await server.app[STATE].auth.new_token("bob")
    async with _fresh() as script:
        quiet = await script.ws_connect(server.api_ws_url, headers={"Authorization": f"Bearer {token}"})
        await server.app[STATE].auth.revoke_tokens("bob")
        msg = await quiet.receive(timeout=10)
        assert msg.type == WSMsgType.CLOSE and msg.data == 4401


async def test_live_socket_follows_a_change_of_role_at_once(server: Served, http: aiohttp.ClientSession) -> None:
    """A supervisor made an agent of another department stops seeing the general queue on the open
    socket: it closes with 4409 (the console reloads), and the next one is chosen by the new rights."""
    sam = await add_agent(server, "sam", role="supervisor", departments=("billing",))
    await add_agent(server, "boss", role="supervisor")
    await login(http, server, "sam")
    live = await http.ws_connect(server.api_ws_url)
    first = await customer(http, server)
    await ask_for_person(first)
    await _live(live, lambda d: d["type"] == "queue" and d["event"] == "queued")  # a supervisor sees it

    await server.service.directory.update(dataclasses.replace(sam, role="agent"))
    await live.send_json({"type": "heartbeat"})
    msg = await live.receive(timeout=10)
    assert msg.type == WSMsgType.CLOSE and msg.data == api.RIGHTS_CHANGED

    again = await http.ws_connect(server.api_ws_url)
    async with _fresh() as other:
        await login(other, server, "boss")
        boss = await other.ws_connect(server.api_ws_url)
        second = await customer(http, server)
        await ask_for_person(second)
        await _live(boss, lambda d: d["type"] == "queue" and d["event"] == "queued")
        await boss.close()
    # Fanned out to boss's socket, so sam's would have it by now: an agent of billing gets nothing.
    await again.send_json({"type": "heartbeat"})
    seen = await _frames_until(again, "heartbeat")
    assert not [d for d in seen if d["type"] == "queue"], seen
    for ws in (again, first, second):
        await ws.close()


async def _frames_until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["type"] != kind:
        msg = await ws.receive(timeout=20)
        assert msg.type == WSMsgType.TEXT, msg
        seen.append(msg.json())
    return seen


async def _live(ws: aiohttp.ClientWebSocketResponse, check: Any) -> dict[str, Any]:
    while True:
        msg = await ws.receive(timeout=20)
        assert msg.type == WSMsgType.TEXT, msg
        data: dict[str, Any] = msg.json()
        if check(data):
            return data


async def test_earlier_conversations_are_those_the_agent_may_open_with_date_queue_and_ending(
    server: Served, http: aiohttp.ClientSession
) -> None:
    from handoff.policy import Reason
    from handoff.record import HandoffRecord, load_record, save_record

    await add_agent(server, "ana", departments=("general",), tier=1)
    await add_agent(server, "sue", role="supervisor")
    cid = await _queued(server, http)
    redis = server.service.redis
    base = now_ms() - 86_400_000

    # Two earlier handoffs of the same customer: one Ana's queues hold (solved), one at orders tier 2.
    async def earlier(eid: str, department: str, tier: int, at: int, outcome: str, moved_to: str = "") -> None:
        reasons = (Reason("asked_for_person", "asked for a person"),)
        await save_record(redis, HandoffRecord(eid, "web", "es", department, tier, "normal", reasons, "s",
                                               created_at=at))  # fmt: skip
        await audit.append(redis, eid, "queued", to=f"{department}:{tier}", reasons=["asked_for_person"], now=at)
        if moved_to:  # transferred: it ended there, and is listed there (tester 21b, T14)
            await audit.append(redis, eid, "transferred", from_=f"{department}:{tier}", to=moved_to, now=at + 1)
        ended_in = moved_to or f"{department}:{tier}"
        await audit.append(redis, eid, "resolved", from_=ended_in, outcome=outcome, now=at + 60_000)
        # Where it ended, as the queues' FINISH script keeps it: who may open it follows that queue.
        ended = {"conv": eid, "state": "resolved", "dept": department, "tier": tier, "prio": "normal",
                 "points": 0, "queued_at": at}  # fmt: skip
        await redis.set(keys.handoff_ended(eid), json.dumps(ended))

    mine, theirs = "e" * 32, "f" * 32
    await earlier(mine, "general", 1, base, "solved")
    await earlier(theirs, "orders", 2, base + 3_600_000, "not_solved", moved_to="billing:1")
    current = await load_record(redis, cid)
    assert current is not None
    await save_record(redis, dataclasses.replace(current, earlier=(theirs, mine)))

    await login(http, server, "ana")
    async with http.get(server.url + f"/api/conversations/{cid}") as r:
        view = await r.json()
    assert view["earlier"] == [{
        "conversation_id": mine, "ts": base, "department": "general", "tier": 1,
        "reasons": ["asked_for_person"], "outcome": "solved",
    }]  # fmt: skip
    assert view["record"]["earlier"] == [mine]  # the other one's id is not handed out either
    async with http.get(server.url + f"/api/conversations/{mine}") as r:
        assert r.status != 403  # what is listed, the agent may open (404 here: only its record was made)

    # A supervisor may open both: both are listed, newest first.
    sue = _fresh()
    try:
        await login(sue, server, "sue")
        async with sue.get(server.url + f"/api/conversations/{cid}") as r:
            found = (await r.json())["earlier"]
    finally:
        await sue.close()
    assert [(e["conversation_id"], e["department"], e["tier"], e["outcome"]) for e in found] == [
        (theirs, "billing", 1, "not_solved"), (mine, "general", 1, "solved")]


async def test_recent_lists_the_conversations_i_handled_with_their_ending_and_rating(
    server: Served, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages of 2: the stream is read newest first in several reads, a rating found before its resolution.
    monkeypatch.setattr("handoff.api.views.RECENT_PAGE", 2)
    await add_agent(server, "ana", display_name="Ana Ruiz")
    await add_agent(server, "bob", departments=("general",))
    await add_agent(server, "sara", role="supervisor")
    csrf = await login(http, server, "ana")

    ws, solved = await claimed(http, server, csrf)
    await solved_and_rated(http, server, csrf, ws, solved, 4)
    assert await server.service.comment(solved, "<b>Quick</b> and kind")
    await ws.close()
    ws, returned = await claimed(http, server, csrf)
    await post(http, server, f"/api/conversations/{returned}/return_to_bot", csrf)
    await ws.close()
    ws, moved = await claimed(http, server, csrf)
    await post(http, server, f"/api/conversations/{moved}/transfer", csrf, {"department": "billing"})
    await ws.close()
    async with _fresh() as bob:  # someone else's conversation is not in ana's list
        bob_csrf = await login(bob, server, "bob")
        ws = await customer(http, server)
        await ask_for_person(ws)
        await expect(ws, "status", lambda d: d.get("position") is not None, state="queued")
        theirs = (await post(bob, server, "/api/claim", bob_csrf))["conversation_id"]
        await post(bob, server, f"/api/conversations/{theirs}/resolve", bob_csrf, {"outcome": "solved"})
        await ws.close()

    async with http.get(server.url + "/api/mine/recent") as r:
        assert r.status == 200
        rows = (await r.json())["conversations"]
    assert [(x["conversation_id"], x["event"], x["outcome"]) for x in rows] == [
        (moved, "transferred", ""), (returned, "returned_to_bot", ""), (solved, "resolved", "solved")
    ]
    first = rows[2]
    assert (first["rating"], first["comment"]) == (4, "<b>Quick</b> and kind")
    assert first["by"] == "ana" and first["by_display"] == "Ana Ruiz" and first["ended_at"] > 0
    assert first["customer"] and first["channel"] == "web"
    assert rows[0]["to"] == "billing:1" and rows[0]["rating"] is None
    # Ended where ana works: she may open them; moved to billing, which she does not take: listed only.
    assert [x["may_open"] for x in rows] == [False, True, True]

    # The newest 2 only, when so bounded; a supervisor sees their own (none here), not ana's.
    monkeypatch.setattr("handoff.api.views.RECENT_LIMIT", 2)
    async with http.get(server.url + "/api/mine/recent") as r:
        assert [x["conversation_id"] for x in (await r.json())["conversations"]] == [moved, returned]
    async with _fresh() as sara:
        await login(sara, server, "sara")
        async with sara.get(server.url + "/api/mine/recent") as r:
            assert r.status == 200 and (await r.json())["conversations"] == []


async def test_recent_reads_a_bounded_part_of_the_audit_stream(
    server: Served, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("handoff.api.views.RECENT_PAGE", 5)
    monkeypatch.setattr("handoff.api.views.RECENT_SCAN_MAX", 10)
    await add_agent(server, "ana")
    csrf = await login(http, server, "ana")
    ws, cid = await claimed(http, server, csrf)
    await post(http, server, f"/api/conversations/{cid}/resolve", csrf, {"outcome": "solved"})
    await ws.close()
    redis = server.runtime.redis
    async with http.get(server.url + "/api/mine/recent") as r:
        assert [x["conversation_id"] for x in (await r.json())["conversations"]] == [cid]
    for n in range(12):  # a busy desk: more than the bound of other entries since
        await audit.append(redis, f"other{n}", "queued", to="general:1", reasons=["asked_for_person"])
    async with http.get(server.url + "/api/mine/recent") as r:
        assert (await r.json())["conversations"] == []


async def test_queue_items_say_when_an_sla_target_is_missed_and_the_order_claim_next_takes(
    server: Served, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_agent(server, "ana")
    first = await _queued(server, http)
    await login(http, server, "ana")

    async def items() -> list[dict[str, Any]]:
        async with http.get(server.url + "/api/queues") as r:
            return [i for q in (await r.json())["queues"] for i in q["items"]]

    (item,) = await items()
    assert item["conversation_id"] == first and item["sla_overdue"] is False and item["overdue_s"] is None
    assert isinstance(item["order"], (int, float))
    # An hour on: past the first-reply target (and its "at risk" share), overdue by how long.
    later = now_ms() + 3_600_000
    monkeypatch.setattr("handoff.api.work.now_ms", lambda: later)
    (item,) = await items()
    assert item["sla_overdue"] is True and item["overdue_s"] > 0 and item["sla_at_risk"] is True
    monkeypatch.undo()
    # "order" is the queue's score, across queues: an urgent handoff in another queue, a little later, is
    # listed first, as Claim next takes it.
    from handoff.policy import Reason, Route

    urgent = "u" * 32
    route = Route("logistics", 1, server.service.rules.priority("urgent"), (Reason("asked_for_person", ""),))
    await server.service.queues.enqueue(urgent, route, channel="web", lang="en")
    found = sorted(await items(), key=lambda i: i["order"])
    assert [i["conversation_id"] for i in found] == [urgent, first]
    assert found[0]["order"] == await server.runtime.redis.zscore(keys.queue("logistics", 1), urgent)
