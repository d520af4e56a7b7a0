"""The questions the bot could not answer, in the supervisor view: GET /api/unanswered (grouped, as JSON) and
GET /api/unanswered.yaml (a draft knowledge-base file), over real HTTP on 127.0.0.1 against a real Redis."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import yaml

from bot import unanswered
from bot.unanswered import Unanswered
from faq.loader import load_dir
from handoff import api, keys
from handoff.api import API_CSP, openapi_document
from handoff.presence import now_ms
from tests.handoff import test_service
from tests.handoff.test_service import Served, add_agent, customer, expect, login

# The shared fixtures (a server with the API mounted, an HTTP client keeping cookies).
server = test_service.server
http = test_service.http

HOSTILE = "<img src=x onerror=alert(1)>"
ENDPOINTS = ("/api/unanswered", "/api/unanswered.yaml")


def item(text: str, lang: str = "en", kind: unanswered.Kind = "not_understood", **kw: Any) -> Unanswered:
    return Unanswered(kind=kind, text=text, lang=lang, ts=now_ms(), conversation_id="c-" + text[:8], **kw)


async def noted(redis: aioredis.Redis, *items: Unanswered) -> None:
    for one in items:
        await unanswered.note(redis, one)


async def gift_cards_and_warranty(redis: aioredis.Redis) -> None:
    """Three wordings of one question in English, one in Spanish, and an answer that did not help."""
    await noted(
        redis,
        item("do you sell gift cards", best="islands-shipping", confidence=0.2),
        item("Do you sell gift cards?"),
        item("¿Vendéis tarjetas regalo?", "es"),
        item("do you sell gift cards, please?"),
        # The knowledge base answers it (warranty-period), but that answer did not help: still listed.
        item("how long is my warranty", kind="not_helpful", entry="warranty-period"),
    )


async def as_supervisor(server: Served, http: aiohttp.ClientSession) -> None:
    await add_agent(server, "sam", role="supervisor")
    await login(http, server, "sam")


async def test_a_supervisor_gets_the_questions_grouped_most_asked_first(
    server: Served, http: aiohttp.ClientSession
) -> None:
    redis = server.runtime.redis
    # Asked ten days ago: outside a week, inside a month (the stream id is when it was noted).
    old_ms = int(time.time() * 1000) - 10 * 86_400_000
    await redis.xadd(keys.UNANSWERED, {"kind": "not_understood", "text": "is there a store in valencia", "lang": "en",
                                       "ts": old_ms}, id=f"{old_ms}-0")  # fmt: skip
    before = now_ms()
    await gift_cards_and_warranty(redis)
    await as_supervisor(server, http)

    async with http.get(server.url + "/api/unanswered", params={"days": "7"}) as r:
        assert r.status == 200, await r.text()
        assert r.content_type == "application/json"
        assert r.headers["Content-Security-Policy"] == API_CSP and r.headers["X-Content-Type-Options"] == "nosniff"
        body = await r.json()
    assert body["days"] == 7 and body["top"] == api.UNANSWERED_TOP
    assert body["noted"] == 5 and body["capped"] is False
    assert [(g["count"], g["text"]) for g in body["groups"]] == [
        (3, "do you sell gift cards, please?"),  # the most recent wording stands for its group
        (1, "how long is my warranty"),
        (1, "¿Vendéis tarjetas regalo?"),
    ]
    gifts, warranty, spanish = body["groups"]
    assert gifts["langs"] == ["en"] and gifts["kinds"] == ["not_understood"]
    assert gifts["entries"] == ["islands-shipping"]
    # Its distinct wordings, newest first: "do you sell gift cards" is "Do you sell gift cards?" again.
    assert [e["text"] for e in gifts["examples"]] == ["do you sell gift cards, please?", "Do you sell gift cards?"]
    assert all(e["lang"] == "en" for e in gifts["examples"])
    assert before <= gifts["last_ts"] <= now_ms()
    assert warranty["kinds"] == ["not_helpful"] and warranty["entries"] == ["warranty-period"]
    assert spanish["langs"] == ["es"] and spanish["examples"] == [{"text": "¿Vendéis tarjetas regalo?", "lang": "es"}]

    # A month reaches the older question; top keeps the most asked.
    async with http.get(server.url + "/api/unanswered", params={"days": "30"}) as r:
        month = await r.json()
    assert month["noted"] == 6 and "is there a store in valencia" in [g["text"] for g in month["groups"]]
    async with http.get(server.url + "/api/unanswered", params={"days": "7", "top": "1"}) as r:
        assert [g["count"] for g in (await r.json())["groups"]] == [3]
    # Without parameters: the CLI's defaults (30 days, 20 groups).
    async with http.get(server.url + "/api/unanswered") as r:
        default = await r.json()
    assert (default["days"], default["top"], default["noted"]) == (30, 20, 6)


async def test_only_the_newest_questions_are_grouped_and_the_answer_says_so(
    server: Served, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("handoff.api.unanswered.UNANSWERED_READ_MAX", 3)
    await gift_cards_and_warranty(server.runtime.redis)
    await as_supervisor(server, http)
    async with http.get(server.url + "/api/unanswered") as r:
        body = await r.json()
    assert body["noted"] == 3 and body["capped"] is True and body["read_max"] == 3
    # The newest three: the warranty, the last Iceland question, the Spanish one.
    assert sorted(g["text"] for g in body["groups"]) == [
        "do you sell gift cards, please?", "how long is my warranty", "¿Vendéis tarjetas regalo?",
    ]  # fmt: skip


async def test_nobody_else_may_read_them(server: Served, http: aiohttp.ClientSession) -> None:
    await gift_cards_and_warranty(server.runtime.redis)
    for path in ENDPOINTS:
        async with http.get(server.url + path) as r:
            assert r.status == 401, path
            assert (await r.json()) == {"error": "unauthenticated"}
    await add_agent(server, "ana")  # a plain agent
    await login(http, server, "ana")
    for path in ENDPOINTS:
        async with http.get(server.url + path) as r:
            assert r.status == 403, path
            assert (await r.json()) == {"error": "forbidden"}


BAD = [
    ({"days": "0"}, "days"), ({"days": "abc"}, "days"), ({"days": "1.5"}, "days"), ({"days": "-1"}, "days"),
    ({"days": "3651"}, "days"), ({"days": "²"}, "days"), ({"days": "99999999999999999999"}, "days"),
    ({"top": "0"}, "top"), ({"top": "1001"}, "top"), ({"days": "7", "top": "x"}, "top"),
]  # fmt: skip


async def test_bad_days_or_top_are_refused_with_a_message(server: Served, http: aiohttp.ClientSession) -> None:
    await as_supervisor(server, http)
    for params, named in BAD:
        for path in ENDPOINTS:
            async with http.get(server.url + path, params=params) as r:
                assert r.status == 400, (path, params)
                body = await r.json()
            assert body["error"] == "bad_request"
            assert f"'{named}' must be a whole number from 1 to" in body["message"], body
    async with http.get(server.url + "/api/unanswered", params={"days": "3650", "top": "1000"}) as r:
        assert r.status == 200  # the bounds themselves are fine


async def test_the_draft_downloads_as_a_yaml_file_of_the_grouped_questions(
    server: Served, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    await gift_cards_and_warranty(server.runtime.redis)
    await as_supervisor(server, http)
    async with http.get(server.url + "/api/unanswered.yaml", params={"days": "7"}) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/yaml; charset=utf-8"
        assert r.headers["Content-Disposition"] == 'attachment; filename="relevo-unanswered.yaml"'
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        text = await r.text()
    assert text.startswith("# Drafted by the supervisor view")
    data = yaml.safe_load(text)
    # "how long is my warranty" is "How long is the warranty?" of warranty-period once normalised: listed, as
    # that entry's answer did not help, but not drafted (`relevo faq check` would refuse the same question twice).
    assert [e["id"] for e in data["entries"]] == ["new-question-1", "new-question-2"]
    assert data["entries"][0]["questions"] == {"en": ["do you sell gift cards, please?", "Do you sell gift cards?"]}
    assert data["entries"][0]["answer"] == {"en": ""}
    assert data["entries"][1]["questions"] == {"es": ["¿Vendéis tarjetas regalo?"]}
    # Copied into config/faq as it is, it is refused until someone writes the answers.
    (tmp_path / "new.yaml").write_text(text, encoding="utf-8")
    assert load_dir(tmp_path).kb is None

    async with http.get(server.url + "/api/unanswered.yaml", params={"days": "7", "top": "1"}) as r:
        assert len(yaml.safe_load(await r.text())["entries"]) == 1
    await server.runtime.redis.delete(keys.UNANSWERED)
    async with http.get(server.url + "/api/unanswered.yaml") as r:
        assert yaml.safe_load(await r.text()) == {"entries": []}


async def test_what_the_knowledge_base_answers_by_now_is_left_out_of_the_list_and_the_draft(
    server: Served, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    library = server.runtime.library
    kb_question = library.kb.by_id["warranty-period"].questions["en"][0]  # "How long is the warranty?"
    await noted(
        server.runtime.redis,
        # Noted before the knowledge base had them: one of its questions, in other case and punctuation, and
        # a wording it answers outright.
        item(kb_question.upper().rstrip("?"), kind="not_chosen", suggested=("warranty-period",)),
        item("is the warranty long"),
        item("do you sell gift cards", kind="not_chosen", best="extended-warranty",
             suggested=("extended-warranty", "factory-reset", "international-shipping")),
    )
    await as_supervisor(server, http)
    async with http.get(server.url + "/api/unanswered") as r:
        body = await r.json()
    assert body["noted"] == 3 and body["answered_now"] == 2
    (dog_food,) = body["groups"]
    assert dog_food["text"] == "do you sell gift cards" and dog_food["kinds"] == ["not_chosen"]
    assert dog_food["entries"] == ["extended-warranty", "factory-reset", "international-shipping"]
    async with http.get(server.url + "/api/unanswered.yaml") as r:
        text = await r.text()
    assert [e["questions"] for e in yaml.safe_load(text)["entries"]] == [{"en": ["do you sell gift cards"]}]
    # Copied next to the knowledge base, it is refused for its empty answer only, not as a duplicate.
    kb = tmp_path / "faq"
    kb.mkdir()
    for source in library.folder.glob("*.yaml"):
        (kb / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (kb / "new.yaml").write_text(text, encoding="utf-8")
    errors = load_dir(kb).errors
    assert errors and all("same as" not in e.message for e in errors), errors


async def suggested(ws: aiohttp.ClientWebSocketResponse, text: str) -> list[str]:
    """Ask over the widget; the suggestion buttons the bot offers ("did you mean ...")."""
    await ws.send_json({"type": "message", "id": "q-" + text[:10], "text": text})
    reply = await expect(ws, "message", lambda m: any(b["value"].startswith("faq:") for b in m["buttons"]),
                         **{"from": "bot"})  # fmt: skip
    assert reply["buttons"][-1]["value"] == "human"
    return [b["value"] for b in reply["buttons"][:-1]]


async def test_widget_questions_whose_suggestions_did_not_serve_reach_the_supervisor(
    server: Served, http: aiohttp.ClientSession
) -> None:
    # Questions the shipped knowledge base has no entry for but offers (related) suggestions for.
    first = await customer(http, server)
    await suggested(first, "do you sell gift cards")
    await first.send_json({"type": "choose", "id": "c-1", "value": "human"})  # rather than a suggestion
    await expect(first, "status", state="queued")
    second = await customer(http, server)
    await suggested(second, "can i pay in store")
    await second.send_json({"type": "message", "id": "c-2", "text": "I mean a physical shop"})
    await expect(second, "ack", id="c-2")
    await expect(second, "message", **{"from": "bot"})
    third = await customer(http, server)
    offered = await suggested(third, "do you have a shop in madrid")
    await third.send_json({"type": "choose", "id": "c-3", "value": offered[0]})
    await expect(third, "message", lambda m: [b["value"] for b in m["buttons"]] == ["helpful:yes", "helpful:no"])
    await third.send_json({"type": "choose", "id": "c-4", "value": "helpful:no"})
    await expect(third, "message", lambda m: "rephrase" in [b["value"] for b in m["buttons"]])
    for ws in (first, second, third):
        await ws.close()

    await as_supervisor(server, http)
    async with http.get(server.url + "/api/unanswered") as r:
        groups = {g["text"]: g for g in (await r.json())["groups"]}
    assert groups["do you sell gift cards"]["kinds"] == ["not_chosen"]
    assert groups["can i pay in store"]["kinds"] == ["not_chosen"]
    # "No" to the suggestion chosen: the customer's words, not the entry's own question.
    madrid = groups["do you have a shop in madrid"]
    assert madrid["kinds"] == ["not_helpful"] and offered[0].removeprefix("faq:") in madrid["entries"]
    entry = server.runtime.library.kb.by_id[offered[0].removeprefix("faq:")]
    assert not set(groups) & set(entry.questions["en"])


async def test_a_customers_markup_comes_back_as_data(server: Served, http: aiohttp.ClientSession) -> None:
    await noted(server.runtime.redis, item(HOSTILE), item(HOSTILE + " again", "es"))
    await as_supervisor(server, http)
    async with http.get(server.url + "/api/unanswered") as r:
        assert r.content_type == "application/json"
        assert r.headers["Content-Security-Policy"] == API_CSP
        groups = (await r.json())["groups"]
    assert groups[0]["text"] == HOSTILE + " again" and groups[0]["count"] == 2
    assert {e["text"] for e in groups[0]["examples"]} == {HOSTILE, HOSTILE + " again"}
    async with http.get(server.url + "/api/unanswered.yaml") as r:
        questions = yaml.safe_load(await r.text())["entries"][0]["questions"]
    assert questions == {"es": [HOSTILE + " again"], "en": [HOSTILE]}


def test_the_openapi_document_describes_both_routes() -> None:
    paths = openapi_document()["paths"]
    for path in ENDPOINTS:
        op = paths[path]["get"]
        assert op["x-role"] == "supervisor"
        assert [p["name"] for p in op["parameters"]] == ["days", "top"]
        assert {"200", "400", "401", "403"} <= set(op["responses"])
