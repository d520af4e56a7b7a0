"""The widget WebSocket contract end to end: real server on 127.0.0.1, real engine, real Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import patch

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import WSMsgType, web
from aiohttp.test_utils import make_mocked_request

from bot import unanswered
from bot.channels import web as web_channel
from bot.channels.web import origin_allowed, parse_frame
from bot.messages import Outbound
from bot.runtime import Runtime
from bot.sessions import SessionSigner
from bot.settings import ServerSettings, Settings, load_settings
from bot.web import create_app
from handoff import auth, keys
from tests.conftest import CONFIG_DIR, ROOT

SECRET = "test-session-secret-0123456789abcdef"
FRAME_TIMEOUT_S = 20.0
QUESTION_ES = "¿Cuánto tarda el envío?"


def make_settings(redis_url: str, data_dir: Path, **server: Any) -> Settings:
    server = {"session_secret": SECRET, **server}
    return load_settings(
        CONFIG_DIR, env={}, server=server, store={"redis_url": redis_url, "data_dir": str(data_dir)}
    )


@dataclass
class Served:
    url: str
    runtime: Runtime
    runner: web.AppRunner

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Served]:
    runtime = await Runtime.start(settings, background=False)
    runner = web.AppRunner(create_app(runtime))
    try:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        served = Served(f"http://127.0.0.1:{port}", runtime, runner)
        await _wait_for_pump(runtime.redis)
        yield served
    finally:
        await runner.cleanup()
        await runtime.close()


async def _wait_for_pump(redis: aioredis.Redis) -> None:
    """The outbox pump subscribes in the background; events emitted before that would only be in history."""
    for _ in range(200):
        counts = await redis.pubsub_numsub(keys.out_channel("web"))
        if counts and counts[0][1] > 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the web outbox pump never subscribed")


@pytest.fixture
async def server(redis: aioredis.Redis, redis_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(make_settings(redis_url, tmp_path)) as served:
        yield served


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def frame(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=FRAME_TIMEOUT_S)
    assert msg.type == WSMsgType.TEXT, f"expected a text frame, got {msg.type} {msg.data!r} {msg.extra!r}"
    data: dict[str, Any] = json.loads(msg.data)
    return data


async def expect(ws: aiohttp.ClientWebSocketResponse, kind: str, **match: Any) -> dict[str, Any]:
    """The next frame of `kind` (with the given fields), failing on an unexpected error frame."""
    while True:
        data = await frame(ws)
        if data["type"] == "error" and kind != "error":
            raise AssertionError(f"unexpected error frame {data}")
        if data["type"] == kind and all(data.get(k) == v for k, v in match.items()):
            return data


async def closing_code(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """Read until the server closes; the close code it sent."""
    while (await ws.receive(timeout=FRAME_TIMEOUT_S)).type == WSMsgType.TEXT:
        pass
    return ws.close_code


async def hello(
    http: aiohttp.ClientSession, served: Served | str, session: str | None = None, lang: str = "es"
) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    ws = await http.ws_connect(served if isinstance(served, str) else served.ws_url)
    await ws.send_json({"type": "hello", "session": session, "lang": lang})
    return ws, await expect(ws, "welcome")


async def ask(ws: aiohttp.ClientWebSocketResponse, client_id: str, text: str) -> dict[str, Any]:
    """Send a message; return the bot's first reply after the ack."""
    await ws.send_json({"type": "message", "id": client_id, "text": text})
    ack = await expect(ws, "ack")
    assert ack["id"] == client_id
    return await expect(ws, "message")


# -- the happy path ------------------------------------------------------------------------------------


async def test_hello_gets_a_signed_session_and_the_greeting(
    server: Served, http: aiohttp.ClientSession
) -> None:
    ws, welcome = await hello(http, server)
    signer = SessionSigner(SECRET.encode(), ttl_s=60)
    assert signer.verify(welcome["session"]).id
    greeting = [m for m in welcome["history"] if m["from"] == "bot"]
    if not greeting:  # emitted live when it was not yet in the history that was read
        greeting = [await expect(ws, "message", **{"from": "bot"})]
    assert greeting[0]["text"]
    await ws.close()


async def test_question_gets_ack_then_answer_and_history_on_reconnect(
    server: Served, http: aiohttp.ClientSession
) -> None:
    ws, welcome = await hello(http, server)
    greeting_ids = {m["id"] for m in welcome["history"]}
    reply = await ask(ws, "c-1", QUESTION_ES)
    while reply["id"] in greeting_ids:  # the greeting may also arrive live
        reply = await expect(ws, "message")
    assert reply["from"] == "bot" and "días" in reply["text"]
    assert isinstance(reply["buttons"], list)
    await ws.close()

    ws2, again = await hello(http, server, session=welcome["session"])
    history = again["history"]
    ids = [m["id"] for m in history]
    assert len(ids) == len(set(ids)), "history has duplicates"
    customer = [m for m in history if m["from"] == "customer"]
    assert [m["text"] for m in customer] == [QUESTION_ES]
    assert reply["id"] in ids
    assert ids.index(customer[0]["id"]) < ids.index(reply["id"])
    await ws2.close()


async def test_history_marks_the_conversation_before_the_goodbye(
    server: Served, http: aiohttp.ClientSession
) -> None:
    ws, welcome = await hello(http, server)
    await ask(ws, "c-1", QUESTION_ES)
    await ask(ws, "c-2", "adiós")
    await expect(ws, "status", state="closed")
    await ask(ws, "c-3", "¿Hacéis envíos a Portugal?")
    await ws.close()

    ws2, again = await hello(http, server, session=welcome["session"])
    marks = [(m["from"], m["text"], m.get("earlier", False)) for m in again["history"]]
    earlier = [text for _, text, before in marks if before]
    assert QUESTION_ES in earlier and "adiós" in earlier
    # Earlier first, then the conversation now open, unmarked from the question that opened it.
    flags = [before for _, _, before in marks]
    assert flags == sorted(flags, reverse=True)
    current = [(who, text) for who, text, before in marks if not before]
    assert ("customer", "¿Hacéis envíos a Portugal?") in current and current[-1][0] == "bot"
    await ws2.close()


async def test_customer_messages_are_not_echoed_live(
    server: Served, http: aiohttp.ClientSession
) -> None:
    ws, _ = await hello(http, server)
    await ask(ws, "c-1", QUESTION_ES)
    await ws.send_json({"type": "message", "id": "c-2", "text": "¿Cuánto cuesta el envío?"})
    seen = []
    while True:
        data = await frame(ws)
        seen.append(data)
        if data["type"] == "message" and "€" in data["text"]:
            break
    assert all(d.get("from") != "customer" for d in seen)
    await ws.close()


async def test_reconnect_gets_what_was_missed(
    server: Served, http: aiohttp.ClientSession
) -> None:
    ws, welcome = await hello(http, server)
    await ws.send_json({"type": "message", "id": "c-1", "text": QUESTION_ES})
    await expect(ws, "ack", id="c-1")
    await ws.close()  # gone before the answer could arrive live
    ws2, again = await hello(http, server, session=welcome["session"])
    texts = [m["text"] for m in again["history"]]
    for _ in range(100):
        if any("días" in t for t in texts):
            break
        # The engine may still be answering: the answer then arrives live on the new socket.
        texts.append((await expect(ws2, "message"))["text"])
    assert any("días" in t for t in texts)
    await ws2.close()


async def test_resent_message_is_acked_again_and_stored_once(
    server: Served, http: aiohttp.ClientSession
) -> None:
    ws, welcome = await hello(http, server)
    await ask(ws, "same-id", QUESTION_ES)
    await ws.close()
    ws2, again = await hello(http, server, session=welcome["session"])
    await ws2.send_json({"type": "message", "id": "same-id", "text": QUESTION_ES})
    ack = await expect(ws2, "ack", id="same-id")
    assert ack["duplicate"] is True
    assert ack["msg"] in {m["id"] for m in again["history"] if m["from"] == "customer"}
    await ws2.close()
    ws3, third = await hello(http, server, session=welcome["session"])
    assert [m["text"] for m in third["history"] if m["from"] == "customer"] == [QUESTION_ES]
    assert len(third["history"]) == len(again["history"])
    await ws3.close()


async def test_choosing_a_button_is_acked_and_answered(
    server: Served, http: aiohttp.ClientSession
) -> None:
    ws, _ = await hello(http, server)
    reply = await ask(ws, "c-1", QUESTION_ES)
    buttons = reply["buttons"]
    while not buttons:
        buttons = (await expect(ws, "message"))["buttons"]
    await ws.send_json({"type": "choose", "id": "c-2", "value": buttons[0]["value"]})
    await expect(ws, "ack", id="c-2")
    answer = await expect(ws, "message")
    assert answer["from"] in ("bot", "system") and answer["text"]
    await ws.close()


async def test_asking_for_a_person_reports_the_queue(
    server: Served, http: aiohttp.ClientSession
) -> None:
    ws, _ = await hello(http, server)
    await ws.send_json({"type": "message", "id": "c-1", "text": "Quiero hablar con una persona"})
    await expect(ws, "ack", id="c-1")
    status = await expect(ws, "status", state="queued")
    assert set(status) >= {"type", "state", "position", "eta_s"}
    # The position is known once the handoff queue holds the conversation.
    assert status["position"] is None or status["position"] >= 1
    await ws.close()


async def test_events_from_the_outbox_reach_the_socket_and_only_it(
    server: Served, http: aiohttp.ClientSession
) -> None:
    ws_a, welcome_a = await hello(http, server)
    ws_b, _ = await hello(http, server)
    key = "web:" + SessionSigner(SECRET.encode(), 60).verify(welcome_a["session"]).id
    text = "<b>agent says hi</b>"
    event = Outbound("conv-x", key, "web", "9999999999999-0", text, sender="agent", author="Ana")
    # Another worker publishing: this process's pump delivers it to the socket it holds.
    await server.runtime.outbox.emit(event)
    got = await expect(ws_a, "message", id="9999999999999-0")
    assert got["text"] == "<b>agent says hi</b>" and got["from"] == "agent"
    await ws_b.send_json({"type": "message", "id": "b-1", "text": QUESTION_ES})
    await expect(ws_b, "ack", id="b-1")
    reply_b = await expect(ws_b, "message")
    assert reply_b["id"] != "9999999999999-0"
    await ws_a.close()
    await ws_b.close()


async def test_two_tabs_of_one_session_both_get_the_replies(
    server: Served, http: aiohttp.ClientSession
) -> None:
    tab1, welcome = await hello(http, server)
    tab2, _ = await hello(http, server, session=welcome["session"])
    reply = await ask(tab1, "c-1", QUESTION_ES)
    assert (await expect(tab2, "message", id=reply["id"]))["text"] == reply["text"]
    await tab1.close()
    await tab2.close()


async def test_a_failing_store_gets_unavailable_and_the_socket_survives(
    server: Served, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, _ = await hello(http, server)

    async def broken(inbound: Any) -> Any:
        raise ConnectionError("redis went away")

    with monkeypatch.context() as patch:
        patch.setattr(server.runtime.engine, "receive", broken)
        await ws.send_json({"type": "message", "id": "c-1", "text": QUESTION_ES})
        error = await expect(ws, "error")
        assert error == {"type": "error", "code": "unavailable", "message": error["message"], "id": "c-1"}
    assert (await ask(ws, "c-1", QUESTION_ES))["text"]  # the widget's resend of the same message
    await ws.close()


# -- bad input ------------------------------------------------------------------------------------------


async def test_frames_before_hello_get_hello_required(
    server: Served, http: aiohttp.ClientSession
) -> None:
    ws = await http.ws_connect(server.ws_url)
    await ws.send_json({"type": "message", "id": "x", "text": "hola"})
    assert (await frame(ws))["code"] == "hello_required"
    await ws.send_str("{not json")
    assert (await frame(ws))["code"] == "bad_json"
    await ws.send_json({"type": "hello", "session": None, "lang": "es"})
    await expect(ws, "welcome")
    await ws.close()


@pytest.mark.parametrize("hello_frame", [
    {"type": "hello", "session": None, "lang": ["es"]},
    {"type": "hello", "session": {"id": 1}, "lang": {}},
    {"type": "hello"},
])
async def test_odd_hello_fields_still_get_a_welcome(
    server: Served, http: aiohttp.ClientSession, hello_frame: dict[str, Any]
) -> None:
    ws = await http.ws_connect(server.ws_url)
    await ws.send_json(hello_frame)
    data = await frame(ws)
    if "session" in hello_frame and hello_frame["session"] is not None:
        assert data["code"] == "bad_session"
        data = await frame(ws)
    assert data["type"] == "welcome"
    await ws.close()


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("{oops", "bad_json"),
        ("[1, 2]", "bad_json"),
        ('"message"', "bad_json"),
        (json.dumps({"type": "dance"}), "unknown_type"),
        (json.dumps({"type": "hello", "session": None, "lang": "en"}), "hello_repeated"),
        (json.dumps({"text": "no type"}), "missing_field"),
        (json.dumps({"type": "message", "text": "no id"}), "missing_field"),
        (json.dumps({"type": "message", "id": "m1"}), "missing_field"),
        (json.dumps({"type": "message", "id": "m1", "text": "   "}), "missing_field"),
        (json.dumps({"type": "message", "id": 5, "text": "id not a string"}), "missing_field"),
        (json.dumps({"type": "choose", "id": "m1"}), "missing_field"),
        (json.dumps({"type": "message", "id": "x" * 500, "text": "long id"}), "too_long"),
        (json.dumps({"type": "message", "id": "m1", "text": "a" * 2001}), "too_long"),
        ("[" * 5000 + "]" * 5000, "bad_json"),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_keeps_working(
    server: Served, http: aiohttp.ClientSession, payload: str, code: str
) -> None:
    ws, _ = await hello(http, server)
    await ws.send_str(payload)
    error = await expect(ws, "error")
    assert error["code"] == code and error["message"]
    reply = await ask(ws, "good-1", QUESTION_ES)
    assert reply["text"]
    await ws.close()


# Nothing to see: NUL and zero-width space (the tester's case), BOM, joiners, bidi marks, a Hangul
# filler, blank braille, a lone variation selector, tags, line breaks.
INVISIBLE = ["\u0000\u200b", "\ufeff", "\u200d\u200c\u2060", "\u202e\u200f", "\u3164", "\u2800", "\ufe0f",
             "\U000e0041\U000e007f", "\r\n\t\u000b", "\u00a0\u3000\u2028"]
# Something to see, however odd: every one of these is a real message.
VISIBLE = ["\U0001F468\u200d\U0001F469\u200d\U0001F467", "\U0001F3F3\ufe0f\u200d\U0001F308", "\u200bhola",
           "\u0661", "\u4f60\u597d", "\u0e01", "?", "\U0001FAE8"]


async def test_text_with_nothing_visible_is_refused_like_a_blank_one_and_never_stored(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    settings = make_settings(redis_url, tmp_path, messages_per_second=100, message_burst=100)
    async with serving(settings) as served:
        await _nothing_visible(served, http)


async def ack_or_error(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The answer to a message frame: stored (ack) or refused (error); other frames are skipped."""
    while (data := await frame(ws))["type"] not in ("ack", "error"):
        pass
    return data


async def _nothing_visible(server: Served, http: aiohttp.ClientSession) -> None:
    ws, welcome = await hello(http, server)
    key = "web:" + welcome["session"].split(".")[0]
    for i, text in enumerate(INVISIBLE):
        await ws.send_json({"type": "message", "id": f"z{i}", "text": text})
        error = await ack_or_error(ws)
        assert (error["type"], error.get("code"), error.get("id")) == ("error", "missing_field", f"z{i}"), text
    await ws.send_json({"type": "choose", "id": "c1", "value": "\u200b"})
    assert (await ack_or_error(ws)).get("code") == "missing_field"
    rt = server.runtime
    cid = await rt.conversations.current_id(key)
    log = await rt.conversations.log(cid) if cid else []
    assert [e for e in log if e.sender == "customer"] == []
    assert await unanswered.read(rt.redis, days=1) == []  # not a question the bot failed to answer

    for i, text in enumerate(VISIBLE):
        await ws.send_json({"type": "message", "id": f"v{i}", "text": text})
        assert (await expect(ws, "ack"))["id"] == f"v{i}", text
    cid = await rt.conversations.current_id(key)
    assert cid is not None
    assert [e.text for e in await rt.conversations.log(cid) if e.sender == "customer"] == VISIBLE
    await ws.close()


async def test_a_lone_surrogate_is_stored_as_a_replacement_character_and_the_next_message_goes_through(
    server: Served, http: aiohttp.ClientSession
) -> None:
    ws, welcome = await hello(http, server)
    key = "web:" + welcome["session"].split(".")[0]
    # What JSON.stringify writes for a text holding half an emoji (a paste cut in the middle).
    await ws.send_str('{"type": "message", "id": "s-1", "text": "my order \\ud83d"}')
    ack = await ack_or_error(ws)
    assert (ack["type"], ack["id"], ack["duplicate"]) == ("ack", "s-1", False), ack
    # A whole pair escaped, and one low half alone after it, in one text.
    await ws.send_str('{"type": "message", "id": "s-2", "text": "ok \\ud83d\\ude00 \\ude00"}')
    assert (await expect(ws, "ack"))["id"] == "s-2"
    reply = await ask(ws, "s-3", QUESTION_ES)
    assert reply["text"]
    rt = server.runtime
    cid = await rt.conversations.current_id(key)
    assert cid is not None
    customer = [e.text for e in await rt.conversations.log(cid) if e.sender == "customer"]
    assert customer == ["my order \ufffd", "ok \U0001F600 \ufffd", QUESTION_ES]
    await ws.close()

    ws2, again = await hello(http, server, session=welcome["session"])
    assert [m["text"] for m in again["history"] if m["from"] == "customer"] == customer
    await ws2.close()


async def test_errors_about_a_frame_with_an_id_carry_it(server: Served, http: aiohttp.ClientSession) -> None:
    ws, _ = await hello(http, server)
    for raw, code in [('{"type": "nope", "id": "e-1"}', "unknown_type"),
                      ('{"type": 3, "id": "e-2"}', "missing_field"),
                      ('{"type": "hello", "id": "e-3"}', "hello_repeated"),
                      ('{"type": "message", "id": "e-4", "text": NaN}', "bad_json"),
                      ('{"type": "message", "id": "e-5\\ud800"}', "missing_field")]:
        await ws.send_str(raw)
        error = await expect(ws, "error")
        assert (error["code"], error.get("id")) == (code, raw.split('"id": "')[1].split('"')[0]
                                                    .replace("\\ud800", "\ufffd")), raw
    await ws.send_str("{not json")
    assert "id" not in await expect(ws, "error", code="bad_json")
    assert (await ask(ws, "e-6", QUESTION_ES))["text"]
    await ws.close()


async def test_binary_frame_gets_bad_json(
    server: Served, http: aiohttp.ClientSession
) -> None:
    ws, _ = await hello(http, server)
    await ws.send_bytes(b"\x00\x01")
    assert (await expect(ws, "error"))["code"] == "bad_json"
    await ws.close()


async def test_oversized_frame_closes_with_1009_and_nothing_is_lost(
    server: Served, http: aiohttp.ClientSession
) -> None:
    ws, welcome = await hello(http, server)
    await ask(ws, "kept-1", QUESTION_ES)
    await ws.send_str(json.dumps({"type": "message", "id": "big", "text": "a" * 50_000}))
    while True:
        msg = await ws.receive(timeout=FRAME_TIMEOUT_S)
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            break
    assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    ws2, again = await hello(http, server, session=welcome["session"])
    assert [m["text"] for m in again["history"] if m["from"] == "customer"] == [QUESTION_ES]
    await ws2.close()


async def test_a_message_at_the_limit_fits_in_a_frame_even_with_every_character_escaped(
    server: Served, http: aiohttp.ClientSession
) -> None:
    limit = server.runtime.settings.server.max_message_chars
    ws, _ = await hello(http, server)
    await ws.send_str(json.dumps({"type": "message", "id": "e-1", "text": "😀" * limit}))  # "\\ud83d\\ude00" each
    await expect(ws, "ack", id="e-1")
    await ws.send_str(json.dumps({"type": "message", "id": "e-2", "text": "😀" * (limit + 1)}))
    error = await expect(ws, "error", id="e-2")
    assert error["code"] == "too_long"
    await ws.close()


async def test_forged_and_expired_sessions_get_a_fresh_one(
    server: Served, http: aiohttp.ClientSession
) -> None:
    ws, welcome = await hello(http, server)
    await ask(ws, "c-1", QUESTION_ES)
    await ws.close()
    sid = welcome["session"].split(".")[0]
    forged = f"{sid}.9999999999.{'A' * 43}"
    expired = SessionSigner(SECRET.encode(), ttl_s=-10).issue(sid).token
    for token in (forged, expired, "garbage", 42):
        ws2 = await http.ws_connect(server.ws_url)
        await ws2.send_json({"type": "hello", "session": token, "lang": "es"})
        assert (await frame(ws2))["code"] == "bad_session"
        fresh = await expect(ws2, "welcome")
        assert fresh["session"].split(".")[0] != sid
        customer = [m for m in fresh["history"] if m["from"] == "customer"]
        assert not customer, "attached to someone else's conversation"
        await ws2.close()


async def test_flooding_gets_rate_limited_without_losing_acked_messages(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    settings = make_settings(redis_url, tmp_path, messages_per_second=0.5, message_burst=3)
    async with serving(settings) as served:
        ws, welcome = await hello(http, served)
        other, _ = await hello(http, served)
        for i in range(8):
            await ws.send_json({"type": "message", "id": f"f-{i}", "text": f"hola {i}"})
        acked: list[str] = []
        limited: list[str] = []
        while len(acked) + len(limited) < 8:
            data = await frame(ws)
            if data["type"] == "ack":
                acked.append(data["id"])
            elif data["type"] == "error":
                assert data["code"] == "rate_limited"
                limited.append(data["id"])
        assert len(acked) == 3 and len(limited) == 5
        # Another customer is not slowed down by this one.
        assert (await ask(other, "o-1", QUESTION_ES))["text"]
        await ws.close()
        await other.close()
        ws2, again = await hello(http, served, session=welcome["session"])
        stored = [m["text"] for m in again["history"] if m["from"] == "customer"]
        assert stored == [f"hola {i}" for i in range(3)]
        await ws2.close()


async def test_new_sessions_from_one_address_are_limited_and_reconnects_are_not(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    settings = make_settings(redis_url, tmp_path, new_sessions_per_minute=3)
    async with serving(settings) as served:
        opened = [await hello(http, served) for _ in range(3)]
        conversations = len(await redis.keys("conv:{*}"))
        ws = await http.ws_connect(served.ws_url)
        await ws.send_json({"type": "hello", "session": None, "lang": "es"})
        assert (await expect(ws, "error"))["code"] == "rate_limited"
        assert await closing_code(ws) == 1013  # try again later: the widget reconnects with backoff
        assert len(await redis.keys("conv:{*}")) == conversations  # nothing stored for it
        # A customer coming back with their session is not a new one: not counted, not refused.
        for sock, welcome in opened:
            await sock.close()
            again, _ = await hello(http, served, session=welcome["session"])
            await again.close()


async def test_sockets_open_at_once_from_one_address_are_limited(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    settings = make_settings(redis_url, tmp_path, sockets_per_address=3)
    async with serving(settings) as served:
        talking = [await hello(http, served) for _ in range(2)]
        silent = await http.ws_connect(served.ws_url)  # no hello yet: it counts as well
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(served.ws_url)
        assert refused.value.status == 429
        # The customers already talking are unaffected, and a socket closed frees its place.
        ws, welcome = talking[0]
        await ws.send_json({"type": "message", "id": "m-1", "text": "hola"})
        await expect(ws, "ack")
        await silent.close()
        for _ in range(50):  # the server notices the close
            try:
                again, _ = await hello(http, served, session=welcome["session"])
                break
            except aiohttp.WSServerHandshakeError:
                await asyncio.sleep(0.02)
        else:
            raise AssertionError("the closed socket's place was never freed")
        await again.close()
        for sock, _ in talking:
            await sock.close()


async def test_origin_outside_the_allowed_list_is_refused(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path, http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(redis_url, tmp_path, allowed_origins=["https://shop.example"])
    caplog.set_level(logging.INFO, logger="bot.channels.web")
    async with serving(settings) as served:
        for _ in range(2):
            # A browser cannot read the status of a refused upgrade: the socket opens to say why, then closes.
            refused = await http.ws_connect(served.ws_url, origin="https://evil.example/")
            assert await expect(refused, "error") == {
                "type": "error", "code": "origin_not_allowed", "message": "chat is not enabled on this site"
            }
            assert await closing_code(refused) == web_channel.ORIGIN_REFUSED
        # The admin is told the fix once per origin, not once per visitor and retry.
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings == ["refused widget socket from origin 'https://evil.example/': to put the widget on "
                            "that page, add 'https://evil.example' to server.allowed_origins"]
        for origin in ("https://shop.example", served.url):
            ws = await http.ws_connect(served.ws_url, origin=origin)
            await ws.send_json({"type": "hello", "session": None, "lang": "en"})
            await expect(ws, "welcome")
            await ws.close()


async def test_silent_or_flooding_sockets_are_closed_with_1008(
    server: Served, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web_channel, "HELLO_TIMEOUT_S", 0.2)
    silent = await http.ws_connect(server.ws_url)
    assert await closing_code(silent) == aiohttp.WSCloseCode.POLICY_VIOLATION
    monkeypatch.setattr(web_channel, "MAX_STRIKES", 5)
    ws, _ = await hello(http, server)
    for _ in range(6):
        await ws.send_str("{")
    assert await closing_code(ws) == aiohttp.WSCloseCode.POLICY_VIOLATION


def test_origin_rules(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(auth, "_warned", set())
    def allowed(origin: str | None, allowed: tuple[str, ...] = (), proto: str = "", remote: str = "") -> bool:
        headers = {"Host": "relevo:8080", **({"X-Forwarded-Proto": proto} if proto else {})}
        request = make_mocked_request("GET", "/ws", headers=headers)
        server = ServerSettings(allowed_origins=allowed, trusted_proxies=(remote,) if remote else ())
        with patch.object(type(request), "remote", remote or "198.51.100.7"):
            return origin_allowed(origin, request, server)

    assert allowed(None)
    assert allowed("http://relevo:8080")
    assert allowed("https://Shop.example/", ("https://shop.example",))
    assert not allowed("http://relevo:8081")
    assert not allowed("null")
    assert not allowed("http://relevo:8080.evil.example")
    # The scheme counts: an HTTPS page of the same name is another origin than this plain-HTTP server ...
    assert not allowed("https://relevo:8080")
    assert not allowed("https://relevo:8080")
    # (said once, with the likely cause: a TLS proxy left out of trusted_proxies)
    [warning] = [r.getMessage() for r in caplog.records if r.name == "handoff.auth"]
    assert "list it in server.trusted_proxies" in warning and "198.51.100.7" in warning
    # ... unless a TLS-terminating proxy of trusted_proxies says the browser came over HTTPS.
    assert allowed("https://relevo:8080", proto="https", remote="10.0.0.2")
    assert not allowed("http://relevo:8080", proto="https", remote="10.0.0.2")


def test_parse_frame_refuses_non_objects() -> None:
    assert parse_frame('{"type": "hello"}') == {"type": "hello"}
    for raw in ("", "null", "3", "[]", "{", '["\\ud800"]', '{"type": "x", "n": NaN, "t": "\\ud800"}',
                "[" * 5000 + '"\\ud800"' + "]" * 5000):
        with pytest.raises(Exception, match="JSON"):
            parse_frame(raw)


def test_parse_frame_replaces_lone_surrogates() -> None:
    raw = '{"type": "message", "\\udfff": ["\\ud83d\\ude00", {"t": "a\\ud83db"}], "id": "\\ud83d"}'
    assert parse_frame(raw) == {"type": "message", "\ufffd": ["\U0001F600", {"t": "a\ufffdb"}], "id": "\ufffd"}


# -- the HTTP side ----------------------------------------------------------------------------------------


async def test_demo_page_is_served_with_strict_headers(
    server: Served, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.url + "/?lang=es") as response:
        body = await response.text()
        assert response.status == 200
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert '<html lang="es">' in body
    assert '<script src="/widget.js" data-lang="es"' in body
    assert "<script>" not in body and "style=" not in body
    for name, kind in (("widget.js", "text/javascript"), ("widget.css", "text/css")):
        async with http.get(f"{server.url}/{name}") as response:
            assert response.status == 200 and response.content_type == kind
            assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_healthz_follows_redis(server: Served, http: aiohttp.ClientSession, monkeypatch: Any) -> None:
    async with http.get(server.url + "/healthz") as response:
        assert response.status == 200 and (await response.json())["ok"] is True
    dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    monkeypatch.setattr(server.runtime, "redis", dead)
    try:
        async with http.get(server.url + "/healthz") as response:
            assert response.status == 503 and (await response.json())["ok"] is False
    finally:
        await dead.aclose()


async def test_shutdown_closes_sockets_with_going_away(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with serving(make_settings(redis_url, tmp_path)) as served:
        ws, _ = await hello(http, served)
        cleanup = asyncio.create_task(served.runner.cleanup())
        assert await closing_code(ws) == aiohttp.WSCloseCode.GOING_AWAY
        await cleanup


# -- `relevo serve` ----------------------------------------------------------------------------------------


async def test_relevo_serve_runs_and_stops_on_sigterm(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "RELEVO_SERVER_SESSION_SECRET": SECRET}
    args = ["--config", str(CONFIG_DIR), "serve", "--port", "0", "--data", str(tmp_path)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    try:
        url = ""
        while not url:
            line = (await proc.stdout.readline()).decode()
            assert line, f"relevo serve exited ({await proc.wait()}) before printing its address"
            if "serving on" in line:
                url = line.split("serving on ", 1)[1].strip()
        async with http.get(url + "/healthz") as response:
            assert response.status == 200
        ws, welcome = await hello(http, url.replace("http://", "ws://") + "/ws")
        assert welcome["session"]
        proc.send_signal(signal.SIGTERM)
        assert await closing_code(ws) == aiohttp.WSCloseCode.GOING_AWAY
        await proc.stdout.read()
        assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_relevo_serve_on_a_busy_port_says_so_and_exits(tmp_path: Path) -> None:
    import socket
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("RELEVO_") and k != "REDIS_URL"}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        args = ["--config", str(CONFIG_DIR), "serve", "--host", "127.0.0.1", "--port", str(port),
                "--data", str(tmp_path)]
        done = subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=30)
    assert done.returncode == 1
    assert f"relevo: cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert list(tmp_path.iterdir()) == [] and "serving on" not in done.stdout  # nothing was started (no Redis)
