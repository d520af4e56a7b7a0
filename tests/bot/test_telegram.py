"""The Telegram channel end to end: real python-telegram-bot against a local stand-in of the Bot API."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib
import json
import logging
import pkgutil
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError
from telegram import Update

import bot.channels.telegram as telegram_package
from bot import unanswered
from bot.channels.telegram import (
    PENDING,
    UNREACHABLE_FIELD,
    Retries,
    chunks,
    command_of,
    keyboard,
    lang_of,
    parked_key,
    status_text,
)
from bot.channels.web import WebChannel
from bot.messages import Button, Outbound, StatusUpdate
from bot.runtime import Runtime
from bot.sessions import signer_for
from bot.settings import Settings, load_settings
from bot.telegram_setup import (
    POLL_LEASE,
    WEBHOOK_PATH,
    TelegramService,
    TelegramSetupError,
    Timing,
    add_telegram_routes,
    telegram_ctx,
)
from bot.web import RUNTIME, WEB_CHANNEL, healthz
from handoff import keys
from handoff.agents import Agent
from handoff.conversations import LogEntry, entry_fields, now_ms
from tests.bot.telegram_standin import (
    TOKEN,
    Fault,
    StandIn,
    buttons_of,
    message_update,
    press_update,
    running_standin,
)
from tests.bot.test_engine import KB
from tests.conftest import CONFIG_DIR

CHAT = 4242
SECRET = "webhook-secret_0123456789"
FAST = Timing(lease_s=2.0, lease_retry_s=0.1, poll_timeout_s=1.0, request_timeout_s=1.0,
              connect_retry_s=0.2, drain_s=2.0, webhook_retry_s=0.05, webhook_retry_max_s=0.2)
QUICK = Retries(flood_attempts=3, max_flood_wait_s=5.0, network_attempts=3, backoff_s=0.05, park_s=0.2,
                pending_poll_s=0.05)


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "faq"
    folder.mkdir()
    (folder / "shop.yaml").write_text(KB, encoding="utf-8")
    return folder


def make_settings(redis_url: str, tmp: Path, kb_dir: Path, standin: StandIn, **telegram: Any) -> Settings:
    return load_settings(
        CONFIG_DIR, env={}, business_name="Tienda Sol",
        # A high answer threshold so that a one-word question is clarified with suggestions.
        faq={"dir": str(kb_dir), "answer_threshold": 0.95, "reload": False},
        store={"redis_url": redis_url, "data_dir": str(tmp / "data")},
        telegram={"token": TOKEN, "base_url": standin.base_url, "mode": "polling", **telegram},
    )


@dataclass
class Relevo:
    runtime: Runtime
    service: TelegramService
    url: str


@asynccontextmanager
async def relevo(settings: Settings, *, retries: Retries = QUICK, start: bool = True,
                 runtime: Runtime | None = None, sock: socket.socket | None = None) -> AsyncIterator[Relevo]:
    """A Relevo worker as `relevo serve` wires Telegram: routes plus cleanup_ctx on an aiohttp app."""
    own_runtime = runtime is None
    runtime = runtime or await Runtime.start(settings, background=False)
    app = web.Application()
    app[RUNTIME] = runtime
    signer = signer_for(runtime.settings, runtime.session_secret)
    app[WEB_CHANNEL] = WebChannel(runtime.engine, runtime.settings, signer)
    app.router.add_get("/healthz", healthz)
    service = add_telegram_routes(app, runtime, timing=FAST, retries=retries)
    assert service is not None
    app.cleanup_ctx.append(telegram_ctx)
    runner = web.AppRunner(app)
    try:
        await runner.setup()
        sock = sock or _bound_socket()
        site = web.SockSite(runner, sock)
        await site.start()
        yield Relevo(runtime, service, f"http://127.0.0.1:{sock.getsockname()[1]}")
    finally:
        await runner.cleanup()
        if own_runtime:
            await runtime.close()


def webhook_settings(
    standin: StandIn, redis_url: str, tmp_path: Path, kb_dir: Path
) -> tuple[Settings, socket.socket, str]:
    """Settings of a worker in webhook mode, the socket it will serve on, and its webhook URL."""
    sock = _bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}{WEBHOOK_PATH}"
    settings = make_settings(redis_url, tmp_path, kb_dir, standin, mode="webhook", webhook_url=url,
                             secret_token=SECRET)  # fmt: skip
    return settings, sock, url


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout_s: float = 20.0) -> Any:
    """Poll Redis-side state until `check()` is truthy; the bound only keeps a broken test from hanging."""
    try:
        async with asyncio.timeout(timeout_s):
            while not (result := await check()):  # noqa: ASYNC110 - Redis state has no event to wait on
                await asyncio.sleep(0.02)
            return result
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


async def subscribed(redis: aioredis.Redis, workers: int = 1) -> None:
    async def enough() -> bool:
        counts = await redis.pubsub_numsub(keys.out_channel("telegram"))
        return bool(counts) and counts[0][1] >= workers

    await eventually(enough, "the Telegram outbox pump subscribed")


async def transcript(runtime: Runtime, key: str) -> list[LogEntry]:
    cid = await runtime.conversations.last_id(key)
    assert cid is not None
    return await runtime.conversations.log(cid)


async def emit(runtime: Runtime, key: str, text: str, *, sender: str = "bot", author: str = "",
               buttons: tuple[Button, ...] = ()) -> None:
    """What the agent side / the rating flow will do: append to the transcript, then emit."""
    cid = await runtime.conversations.current_id(key)
    assert cid is not None
    fields = entry_fields(sender, text, ts=now_ms(), lang="es", author=author, buttons=buttons)
    appended = await runtime.conversations.append(cid, fields, sender=sender)
    await runtime.outbox.emit(Outbound(conversation_id=cid, conversation_key=key, channel="telegram",
                                       id=appended.message_id, text=text, sender=sender,  # type: ignore[arg-type]
                                       author=author, buttons=buttons, lang="es"))


async def say(standin: StandIn, chat: int, text: str = "", count: int = 1, **kw: Any) -> list[dict[str, Any]]:
    """Send a customer message and wait for `count` bot messages in reply."""
    before = len(standin.sent(chat))
    await standin.push(message_update(standin, chat, text, **kw))
    await standin.wait_for(lambda: len(standin.sent(chat)) >= before + count, f"{count} replies to {text!r}")
    return standin.sent(chat)[before:]


@pytest.fixture
async def standin() -> AsyncIterator[StandIn]:
    async with running_standin() as s:
        yield s


@pytest.fixture
def settings(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path, kb_dir: Path, standin: StandIn
) -> Settings:
    return make_settings(redis_url, tmp_path, kb_dir, standin)


# -- the conversation ---------------------------------------------------------------------------------

async def test_a_conversation_from_start_to_rating(
    standin: StandIn, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    key = f"telegram:{CHAT}"
    async with relevo(settings) as worker:
        rt = worker.runtime
        await subscribed(rt.redis)
        (greeting,) = await say(standin, CHAT, "/start", lang="es")
        assert greeting["text"].startswith("¡Hola!") and "Tienda Sol" in greeting["text"]

        (answer,) = await say(standin, CHAT, "¿Cuánto cuesta el envío?", lang="es")
        assert "gratis a partir de 50 euros" in answer["text"]
        assert [v for _, v in buttons_of(answer)] == ["helpful:yes", "helpful:no"]

        (clarify,) = await say(standin, CHAT, "envío", lang="es")
        options = dict((v, label) for label, v in buttons_of(clarify))
        assert "faq:shipping-time" in options and list(options)[-1] == "human"

        presses = len(standin.called("answerCallbackQuery"))
        await standin.push(press_update(standin, CHAT, clarify, "faq:shipping-time", lang="es"))
        answer2 = await standin.wait_for(
            lambda: standin.sent(CHAT)[-1] if len(standin.sent(CHAT)) > 3 else None, "the pressed answer")
        assert "2 a 4 días hábiles" in answer2["text"]
        assert len(standin.called("answerCallbackQuery")) == presses + 1
        pressed = [e for e in await transcript(rt, key) if e.kind == "choose"]
        assert pressed[-1].value == "faq:shipping-time" and pressed[-1].text == options["faq:shipping-time"]

        handoff, told = await say(standin, CHAT, "/agent", count=2, lang="es")
        assert "persona" in handoff["text"]
        assert "puesto 1" in told["text"]  # the handoff side's position and estimated wait
        conv = await rt.conversations.get(await rt.conversations.current_id(key) or "")
        assert conv is not None and conv.state == "queued"
        # The notice gave the place: its status is not posted again as a second message saying the same.
        await eventually(lambda: first_status_handled(rt, conv.id), "the first status handled")
        assert len(standin.sent(CHAT)) == 6 and await rt.redis.get(keys.status_message(conv.id)) is None

        # A new place posts the status message; later ones edit it instead of adding messages.
        sent_before = len(standin.sent(CHAT))
        for position in (3, 2, 1):
            queued = StatusUpdate(conv.id, key, "telegram", "queued", position=position, eta_s=120)
            await rt.outbox.emit(queued)
            shown = f"número {position} "
            status_now = await standin.wait_for(
                lambda: next((m for m in standin.sent(CHAT)[sent_before:] if shown in m["text"]), None),  # noqa: B023
                f"{shown} shown")
        assert status_now["text"].startswith("Eres el número 1 en la cola")
        assert status_now["edits"] == 2 and "unos 2 minutos" in status_now["text"]
        # A person taking over ends the status message (the handoff says who joined, once).
        await rt.outbox.emit(StatusUpdate(conv.id, key, "telegram", "assigned", agent="Marta"))
        await standin.wait_for(lambda: "cola" not in status_now["text"] or "Ya no" in status_now["text"],
                               "the status message closed")
        assert status_now["text"] == "Ya no estás esperando en la cola."
        assert len(standin.sent(CHAT)) == sent_before + 1

        # During the handoff a photo reaches the agent's transcript with its kind and caption.
        photo = [{"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90},
                 {"file_id": "big-photo-id", "file_unique_id": "b", "width": 900, "height": 900}]
        await standin.push(message_update(standin, CHAT, photo=photo, caption="la caja rota", lang="es"))
        entry = await eventually(lambda: _last_with_attachment(rt, key), "the photo in the transcript")
        assert (entry.attachments[0].kind, entry.attachments[0].caption, entry.attachments[0].ref) == (
            "photo", "la caja rota", "big-photo-id")

        await emit(rt, key, "Hola, soy Marta. Ya veo tu pedido.", sender="agent", author="Marta")
        agent = await standin.wait_for(lambda: standin.sent(CHAT)[-1] if "Marta:" in standin.sent(CHAT)[-1][
            "text"] else None, "the agent's reply")
        assert agent["text"] == "Marta: Hola, soy Marta. Ya veo tu pedido." and "reply_markup" not in agent

        stars = tuple(Button("★" * n, f"rate:{n}") for n in range(1, 6))
        await emit(rt, key, "¿Cómo valorarías la atención?", buttons=stars)
        rating = await standin.wait_for(
            lambda: standin.sent(CHAT)[-1] if buttons_of(standin.sent(CHAT)[-1]) else None, "the rating")
        assert [v for _, v in buttons_of(rating)] == [f"rate:{n}" for n in range(1, 6)]
        await standin.push(press_update(standin, CHAT, rating, "rate:5", lang="es"))

        async def rated() -> LogEntry | None:
            last = (await transcript(rt, key))[-1]
            return last if last.kind == "choose" and last.value == "rate:5" else None

        entry = await eventually(rated, "the rating stored")
        assert entry.sender == "customer" and entry.text == "★★★★★"
        await standin.wait_for(lambda: len(standin.called("answerCallbackQuery")) == presses + 2,
                               "the rating press answered")
    assert TOKEN not in caplog.text
    assert any("/bot<TELEGRAM_BOT_TOKEN>/" in r.getMessage() for r in caplog.records), \
        "httpx's request lines are logged, with the token redacted"


async def _zero(count: Awaitable[int]) -> bool:
    return await count == 0


async def _last_with_attachment(runtime: Runtime, key: str) -> LogEntry | None:
    found = [e for e in await transcript(runtime, key) if e.attachments]
    return found[-1] if found else None


async def test_help_and_files_outside_a_handoff_are_answered(standin: StandIn, settings: Settings) -> None:
    async with relevo(settings) as worker:
        await subscribed(worker.runtime.redis)
        (help_text,) = await say(standin, CHAT, "/help@relevo_test_bot", lang="en")
        assert "/agent" in help_text["text"] and "Tienda Sol" in help_text["text"]
        contents: list[dict[str, Any]] = [
            {"document": {"file_id": "doc1", "file_unique_id": "d", "file_name": "invoice.pdf"}},
            {"voice": {"file_id": "voice1", "file_unique_id": "v", "duration": 3}},
            {"sticker": {"file_id": "st1", "file_unique_id": "s", "type": "regular", "width": 1, "height": 1,
                         "is_animated": False, "is_video": False, "emoji": "😀"}},
            {"location": {"latitude": 40.4168, "longitude": -3.7038}},
        ]
        said = ("Thanks for the file", "can't listen to voice", "only read text", "only read text")
        for i, content in enumerate(contents):
            replies = await say(standin, CHAT, count=2 if i == 0 else 1, **content)
            assert said[i] in replies[-1]["text"]
            assert [v for _, v in buttons_of(replies[-1])] == ["human"]
        kinds = [(a.kind, a.caption) for e in await transcript(worker.runtime, f"telegram:{CHAT}")
                 for a in e.attachments]
        assert kinds == [("document", "invoice.pdf"), ("voice", ""), ("sticker", "😀"),
                         ("location", "40.416800,-3.703800")]


async def test_a_photo_with_a_caption_is_read_as_the_customers_words(standin: StandIn, settings: Settings) -> None:
    async with relevo(settings) as worker:
        await subscribed(worker.runtime.redis)
        await say(standin, CHAT, "/start")
        photo = [{"file_id": "p1", "file_unique_id": "p", "width": 90, "height": 90}]
        (answer,) = await say(standin, CHAT, photo=photo, caption="How long does shipping take?")
        assert "2–4 business days" in answer["text"]
        [entry] = [e for e in await transcript(worker.runtime, f"telegram:{CHAT}") if e.attachments]
        assert entry.text == "How long does shipping take?"
        assert [(a.kind, a.ref) for a in entry.attachments] == [("photo", "p1")]


async def test_help_speaks_the_conversations_language_and_unknown_commands_get_it(
    standin: StandIn, settings: Settings
) -> None:
    async with relevo(settings) as worker:
        await subscribed(worker.runtime.redis)
        # A Spanish phone, an English conversation: /help follows the conversation.
        await say(standin, CHAT, "How long does shipping take?", count=2, lang="es")
        (help_text,) = await say(standin, CHAT, "/help", lang="es")
        assert help_text["text"].startswith("I'm the Tienda Sol virtual assistant."), help_text["text"]
        # Commands the bot does not have are not questions: no suggestions, no misunderstanding counted.
        for command in ("/settings", "/menu", "/foo"):
            (reply,) = await say(standin, CHAT, command, lang="es")
            assert reply["text"].startswith("I don't know that command.\n\nI'm the Tienda Sol"), reply["text"]
        conv = await worker.runtime.conversations.get(
            str(await worker.runtime.conversations.current_id(f"telegram:{CHAT}"))
        )
        assert conv is not None and conv.state == "bot" and conv.misunderstandings == 0
        # Before any conversation, the phone's language.
        (hola,) = await say(standin, CHAT + 1, "/help", lang="es")
        assert hola["text"].startswith("Soy el asistente virtual de Tienda Sol.")


async def test_edited_messages_and_repeated_updates(standin: StandIn, settings: Settings) -> None:
    async with relevo(settings) as worker:
        await subscribed(worker.runtime.redis)
        await say(standin, CHAT, "How much does shipping cost?", count=2)
        update = message_update(standin, CHAT, "How long does shipping take?", message_id=900)
        await standin.push(update)
        await standin.wait_for(lambda: len(standin.sent(CHAT)) == 3, "the answer")
        # Telegram delivering the same update_id again (a worker switch, a webhook retry).
        bot = worker.service.application.bot
        await worker.service.channel.on_update(Update.de_json(update, bot))
        (edited_reply,) = await say(standin, CHAT, "When will my order arrive?", message_id=900, edited=True)
        assert "2–4 business days" in edited_reply["text"]
        texts = [m["text"] for m in standin.sent(CHAT)]
        assert sum("2–4 business days" in t for t in texts) == 2  # the original once, the edit once
        customer = [e for e in await transcript(worker.runtime, f"telegram:{CHAT}") if e.sender == "customer"]
        assert [e.text for e in customer] == ["How much does shipping cost?", "How long does shipping take?",
                                              "When will my order arrive?"]


async def test_a_polled_update_waits_out_a_store_outage_and_is_answered(
    standin: StandIn, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with relevo(settings) as worker:
        await subscribed(worker.runtime.redis)
        await say(standin, CHAT, "How much does shipping cost?", count=2)
        engine = worker.runtime.engine
        real_receive, failures = engine.receive, []

        async def redis_away(inbound: Any) -> Any:  # Redis restarting: the first tries cannot store it
            if len(failures) < 3:
                failures.append(inbound.text)
                raise RedisConnectionError("Error 111 connecting to 127.0.0.1. Connection refused.")
            return await real_receive(inbound)

        monkeypatch.setattr(engine, "receive", redis_away)
        (answer,) = await say(standin, CHAT, "How long does shipping take?")  # getUpdates moved past it
        assert "2–4 business days" in answer["text"] and len(failures) == 3
        customer = [e.text for e in await transcript(worker.runtime, f"telegram:{CHAT}") if e.sender == "customer"]
        assert customer == ["How much does shipping cost?", "How long does shipping take?"]


async def test_group_chats_are_ignored_unless_allowed(
    standin: StandIn, redis_url: str, tmp_path: Path, kb_dir: Path, redis: aioredis.Redis
) -> None:
    group = -100123
    async with relevo(make_settings(redis_url, tmp_path, kb_dir, standin)) as worker:
        await subscribed(worker.runtime.redis)
        question = "How much does shipping cost?"
        await standin.push(message_update(standin, group, question, chat_type="supergroup"))
        await say(standin, CHAT, "How much does shipping cost?", count=2)  # handled after the group's update
        assert standin.sent(group) == []
        assert await worker.runtime.conversations.current_id(f"telegram:{group}") is None
    await redis.delete(POLL_LEASE)
    allowed = make_settings(redis_url, tmp_path, kb_dir, standin, allow_groups=True)
    async with relevo(allowed) as worker:
        await subscribed(worker.runtime.redis)
        replies = await say(standin, group, "How much does shipping cost?", count=2, chat_type="group")
        assert "Shipping is free" in replies[-1]["text"]


# -- failures -----------------------------------------------------------------------------------------

async def test_flood_limit_is_waited_out_and_the_message_sent_once(
    standin: StandIn, settings: Settings
) -> None:
    async with relevo(settings) as worker:
        await subscribed(worker.runtime.redis)
        standin.fail_next("sendMessage", Fault(429, "Too Many Requests: retry after 1", retry_after=1))
        (greeting,) = await say(standin, CHAT, "/start")
        assert greeting["text"].startswith("Hi!")
        assert len(standin.called("sendMessage")) == 2 and len(standin.sent(CHAT)) == 1


async def test_a_long_flood_limit_parks_the_message_and_sends_it_later(
    standin: StandIn, settings: Settings, redis: aioredis.Redis
) -> None:
    retries = Retries(flood_attempts=3, max_flood_wait_s=0.5, backoff_s=0.05, park_s=0.2, pending_poll_s=0.05)
    async with relevo(settings, retries=retries) as worker:
        await subscribed(worker.runtime.redis)
        standin.fail_next("sendMessage", Fault(429, "Too Many Requests: retry after 1", retry_after=1))
        await standin.push(message_update(standin, CHAT, "/start"))
        await standin.wait_for(lambda: standin.sent(CHAT), "the parked greeting sent")
        await eventually(lambda: _zero(redis.zcard(PENDING)), "nothing left parked")
        assert len(standin.called("sendMessage")) == 2 and await redis.llen(parked_key(CHAT)) == 0


async def test_network_failures_are_retried(standin: StandIn, settings: Settings) -> None:
    async with relevo(settings) as worker:
        await subscribed(worker.runtime.redis)
        standin.fail_next("sendMessage", Fault(502, "Bad Gateway"))
        standin.fail_next("sendMessage", Fault(200, "late", delay_s=2.0))  # beyond the 1 s read timeout
        (greeting,) = await say(standin, CHAT, "/start")
        assert greeting["text"].startswith("Hi!") and len(standin.called("sendMessage")) == 3


async def test_a_blocked_bot_marks_the_customer_unreachable(
    standin: StandIn, settings: Settings, redis: aioredis.Redis
) -> None:
    other = 5151
    async with relevo(settings) as worker:
        await subscribed(worker.runtime.redis)
        standin.blocked.add(CHAT)
        await standin.push(message_update(standin, CHAT, "/start"))
        cid = await eventually(lambda: worker.runtime.conversations.current_id(f"telegram:{CHAT}"), "opened")
        await eventually(lambda: redis.hget(keys.conv(cid), UNREACHABLE_FIELD), "marked unreachable")
        (greeting,) = await say(standin, other, "/start")  # the channel goes on for everyone else
        assert greeting["text"].startswith("Hi!")
        standin.blocked.discard(CHAT)
        await say(standin, CHAT, "How much does shipping cost?", count=1)
        assert await redis.hget(keys.conv(cid), UNREACHABLE_FIELD) is None


async def test_a_wrong_token_never_shows_in_errors_or_logs(
    standin: StandIn, redis_url: str, tmp_path: Path, kb_dir: Path, redis: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    wrong = "987654321:AAE-wrong-Secret-Token_zyxwvutsrqpo"
    settings = make_settings(redis_url, tmp_path, kb_dir, standin, token=wrong)
    with pytest.raises(TelegramSetupError) as raised:
        async with relevo(settings):
            pass
    assert wrong not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__context__ is None
    assert standin.unauthorized == 1 and wrong not in caplog.text


async def test_the_token_is_redacted_in_what_the_channel_itself_logs(
    standin: StandIn, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Every logger of the channel package's modules: a logger's filter does not see its children's records.
    modules = [importlib.import_module(f"{telegram_package.__name__}.{m.name}")
               for m in pkgutil.iter_modules(telegram_package.__path__)]
    loggers = {m.logger for m in modules if isinstance(getattr(m, "logger", None), logging.Logger)}
    assert loggers
    async with relevo(settings):
        for log in loggers:
            log.warning("telegram: a line from %s with the token %s in it", log.name, TOKEN)
        assert keyboard((Button("too long", TOKEN + "x" * 64),)) is None  # logs the value it leaves out
    assert TOKEN not in caplog.text
    redacted = [(r.name, r.getMessage()) for r in caplog.records if "<TELEGRAM_BOT_TOKEN>" in r.getMessage()]
    for log in loggers:
        assert (log.name, f"telegram: a line from {log.name} with the token <TELEGRAM_BOT_TOKEN> in it") in redacted
    assert any("left out: '<TELEGRAM_BOT_TOKEN>xx" in message for _, message in redacted)


async def test_a_chat_with_a_parked_message_keeps_its_order_and_others_go_on(
    standin: StandIn, settings: Settings, redis: aioredis.Redis
) -> None:
    other = 5151
    hold = Retries(network_attempts=3, backoff_s=0.01, park_s=3600.0, pending_poll_s=0.05)  # parked until due
    key = f"telegram:{CHAT}"
    async with relevo(settings, retries=hold) as worker:
        rt = worker.runtime
        await subscribed(rt.redis)
        await say(standin, CHAT, "/start")
        await say(standin, other, "/start")
        standin.fail_next("sendMessage", Fault(502, "Bad Gateway"), times=4)  # one delivery's tries
        await emit(rt, key, "one")
        await eventually(lambda: redis.zscore(PENDING, str(CHAT)), "the first message parked")
        await emit(rt, key, "two")
        await emit(rt, key, "three")
        await emit(rt, f"telegram:{other}", "for the other chat")
        await standin.wait_for(lambda: standin.sent(other)[-1]["text"] == "for the other chat",
                               "the other chat served")

        async def settled() -> bool:
            return await redis.llen(parked_key(CHAT)) == 3 or len(standin.sent(CHAT)) > 1

        await eventually(settled, "the later messages parked or sent")
        assert [m["text"] for m in standin.sent(CHAT)][1:] == []  # nothing overtook "one"

        # Due, and failing again: it stays first, and the others stay behind it.
        calls = len(standin.called("sendMessage"))
        standin.fail_next("sendMessage", Fault(502, "Bad Gateway"), times=4)
        await redis.zadd(PENDING, {str(CHAT): 0})
        await standin.wait_for(lambda: len(standin.called("sendMessage")) == calls + 4, "the retry's tries")
        await eventually(lambda: _tries_of_first(redis, CHAT, 2), "parked again")
        assert len(standin.sent(CHAT)) == 1 and await redis.llen(parked_key(CHAT)) == 3
        assert (await redis.zscore(PENDING, str(CHAT)) or 0) > now_ms()

        await redis.zadd(PENDING, {str(CHAT): 0})
        await standin.wait_for(lambda: len(standin.sent(CHAT)) == 4, "the parked messages sent")
        assert [m["text"] for m in standin.sent(CHAT)][1:] == ["one", "two", "three"]
        await eventually(lambda: _zero(redis.zcard(PENDING)), "nothing left parked")
        (reply,) = await say(standin, CHAT, "How much does shipping cost?")  # straight out again
        assert "Shipping is free" in reply["text"]


async def _tries_of_first(redis: aioredis.Redis, chat: int, tries: int) -> bool:
    first = await redis.lindex(parked_key(chat), 0)
    return first is not None and json.loads(first)["tries"] == tries


async def test_a_long_message_that_fails_half_way_sends_only_the_rest_again(
    standin: StandIn, settings: Settings, redis: aioredis.Redis
) -> None:
    key = f"telegram:{CHAT}"
    text = " ".join(f"step{i}" for i in range(1200))  # three Telegram messages
    parts = chunks(f"Marta: {text}")
    assert len(parts) == 3
    async with relevo(settings) as worker:
        await subscribed(worker.runtime.redis)
        await say(standin, CHAT, "/start")
        standin.fail_next("sendMessage", Fault(502, "Bad Gateway"), times=4, after=1)  # the second part's tries
        await emit(worker.runtime, key, text, sender="agent", author="Marta")
        await standin.wait_for(lambda: standin.sent(CHAT)[-1]["text"] == parts[-1], "the last part")
        await eventually(lambda: _zero(redis.zcard(PENDING)), "nothing left parked")
        assert [m["text"] for m in standin.sent(CHAT)][1:] == parts


# -- a person takes over -------------------------------------------------------------------------------

async def _handed_over(standin: StandIn, worker: Relevo, chat: int) -> tuple[str, dict[str, Any], Agent]:
    """A customer queued for a person (the status message shown), and an agent to take them."""
    rt = worker.runtime
    await say(standin, chat, "/agent", count=2)
    cid = await rt.conversations.current_id(f"telegram:{chat}")
    assert cid is not None
    # Someone came ahead: the place changed from what the handoff's notice said.
    await eventually(lambda: first_status_handled(rt, cid), "the first status handled")
    await rt.outbox.emit(StatusUpdate(cid, f"telegram:{chat}", "telegram", "queued", position=2))
    status_id = await eventually(lambda: rt.redis.get(keys.status_message(cid)), "the status message")
    status = standin.messages[(chat, int(status_id))]
    assert status["text"].startswith("You're number 2 in the queue")
    agent = Agent("ana", tuple(rt.handoff.rules.departments), tier=3, role="supervisor", display_name="Ana G")
    if await rt.handoff.directory.get("ana") is None:
        await rt.handoff.directory.add(agent, "correct horse battery")
    return cid, status, agent


def _event(name: str, cid: str, agent: str = "ana") -> dict[str, Any]:
    """A handoff event as handoff.lua publishes it (the notifier's listener is not running here)."""
    return {"event": name, "conv": cid, "agent": agent, "ts": now_ms()}


async def test_one_joined_notice_and_no_stale_status_message(standin: StandIn, settings: Settings) -> None:
    async with relevo(settings) as worker:
        rt, notifier = worker.runtime, worker.runtime.handoff.notifier
        await subscribed(rt.redis)
        cid, status, ana = await _handed_over(standin, worker, CHAT)
        await rt.handoff.claim(ana, cid)
        await notifier.handle(_event("claimed", cid))
        await standin.wait_for(lambda: "joined" in standin.sent(CHAT)[-1]["text"], "the joined notice")
        await rt.handoff.reply(ana, cid, "Hi, I am Ana.")
        await standin.wait_for(lambda: standin.sent(CHAT)[-1]["text"] == "Ana G: Hi, I am Ana.", "the reply")
        texts = [m["text"] for m in standin.sent(CHAT)]  # the status message with its latest text
        assert [t for t in texts if "joined" in t] == ["Ana G has joined the conversation."]
        assert status["text"] == "You're no longer waiting in the queue."

        await rt.handoff.return_to_bot(ana, cid)
        await notifier.handle(_event("returned_to_bot", cid))
        await standin.wait_for(lambda: "back with the virtual assistant" in standin.sent(CHAT)[-1]["text"],
                               "back with the bot")
        assert status["text"] == "You're no longer waiting in the queue."
        assert not any("in the queue for" in m["text"] for m in standin.sent(CHAT))


async def first_status_handled(rt: Runtime, cid: str) -> bool:
    """The handoff's first status reached the channel: left out after the notice (noted as covered by it),
    or posted as a status message (what the customer then sees is for the test to check)."""
    covered = await rt.redis.hget(keys.telegram_shown(cid), "covered")
    return bool(covered or await rt.redis.get(keys.status_message(cid)))


async def barrier(standin: StandIn, rt: Runtime, chat: int, text: str) -> list[str]:
    """A bot message after whatever was emitted before it: a chat's messages go out in order, so once it
    is in the chat everything before it was delivered (or left out). The chat's texts up to it."""
    await emit(rt, f"telegram:{chat}", text)
    await standin.wait_for(lambda: standin.sent(chat)[-1]["text"] == text, f"{text!r} delivered")
    return [m["text"] for m in standin.sent(chat)]


async def test_a_handoff_shows_the_place_in_the_queue_once(standin: StandIn, settings: Settings) -> None:
    key = f"telegram:{CHAT}"
    async with relevo(settings) as worker:
        rt, notifier = worker.runtime, worker.runtime.handoff.notifier
        await subscribed(rt.redis)
        await say(standin, CHAT, "/start")
        start = len(standin.sent(CHAT))
        handoff, told = await say(standin, CHAT, "/agent", count=2)
        assert "passing you to a person" in handoff["text"]
        assert "number 1 in the queue" in told["text"]  # and the wait, or when the team opens
        cid = await rt.conversations.current_id(key)
        assert cid is not None
        await eventually(lambda: first_status_handled(rt, cid), "the first status handled")
        # The same place again (a refresh; the customer asking again): nothing repeats it.
        await notifier.refresh(cid, force=True)
        assert await barrier(standin, rt, CHAT, "one") == [
            *[m["text"] for m in standin.sent(CHAT)[:start]], handoff["text"], told["text"], "one"]
        (again,) = await say(standin, CHAT, "/agent")
        assert again["text"].startswith("You are still in the queue") and "number 1" in again["text"]
        texts = await barrier(standin, rt, CHAT, "two")
        assert texts[-2:] == [again["text"], "two"] and not any(t.startswith("You're number") for t in texts)
        assert await rt.redis.get(keys.status_message(cid)) is None

        # A new place or wait is news: the status message, edited in place from then on.
        await rt.outbox.emit(StatusUpdate(cid, key, "telegram", "queued", position=2, eta_s=300))
        status = await standin.wait_for(lambda: standin.sent(CHAT)[-1] if standin.sent(CHAT)[-1]["text"]
                                        .startswith("You're number 2") else None, "the status message")
        assert status["text"] == ("You're number 2 in the queue for a person from our team. "
                                  "Estimated wait: about 5 minutes.")
        # Places going back and forth at once (number 1, 2, 1): the same status again is news all the same.
        for position in (1, 2, 1):
            await rt.outbox.emit(StatusUpdate(cid, key, "telegram", "queued", position=position, eta_s=60))
            await standin.wait_for(lambda p=position: status["text"].startswith(f"You're number {p} "),
                                   f"number {position} edited in")

        # The other order: a notice giving the place the status message just above it shows becomes that
        # message (the handoff side's own reminder: its notice, then its status).
        sent = len(standin.sent(CHAT))
        assert await notifier.remind(cid)
        await standin.wait_for(lambda: status["text"].startswith("You are still in the queue"), "the notice")
        texts = await barrier(standin, rt, CHAT, "three")
        assert len(texts) == sent + 1 and texts[-2].startswith("You are still in the queue")
        assert sum("number 1" in t for t in texts[-2:]) == 1

        # A person takes over: the notices stay as they were (nothing to close), who joined is said once.
        ana = Agent("ana", tuple(rt.handoff.rules.departments), tier=3, display_name="Ana G")
        await rt.handoff.directory.add(ana, "correct horse battery")
        await rt.handoff.claim(ana, cid)
        assert await notifier.tell_joined(cid)
        await standin.wait_for(lambda: standin.sent(CHAT)[-1]["text"] == "Ana G has joined the conversation.",
                               "the joined notice")
        assert status["text"].startswith("You are still in the queue")
        assert await rt.redis.get(keys.status_message(cid)) is None
        assert await rt.redis.hget(keys.telegram_shown(cid), "covered") is None  # a new wait starts afresh

        # Back in the queue: the notice without a place is followed by the status message.
        await rt.handoff.release(ana, cid)
        await notifier.handle(_event("released", cid))
        fresh = await standin.wait_for(lambda: standin.sent(CHAT)[-1] if standin.sent(CHAT)[-1]["text"]
                                       .startswith("You're number 1") else None, "a new status message")
        assert "had to leave the conversation" in standin.sent(CHAT)[-2]["text"]
        assert fresh["message_id"] != status["message_id"]


async def _status_message_at_number_1(standin: StandIn, rt: Runtime) -> tuple[str, dict[str, Any]]:
    """A customer handed over, their status message posted and now saying number 1 (the place their
    reminders give): (conversation id, the status message as the stand-in keeps it up to date)."""
    key = f"telegram:{CHAT}"
    await subscribed(rt.redis)
    await say(standin, CHAT, "/start")
    await say(standin, CHAT, "/agent", count=2)
    cid = await rt.conversations.current_id(key)
    assert cid is not None
    await eventually(lambda: first_status_handled(rt, cid), "the first status handled")
    await rt.outbox.emit(StatusUpdate(cid, key, "telegram", "queued", position=2, eta_s=300))
    status = await standin.wait_for(lambda: standin.sent(CHAT)[-1] if standin.sent(CHAT)[-1]["text"]
                                    .startswith("You're number 2") else None, "the status message")
    await rt.outbox.emit(StatusUpdate(cid, key, "telegram", "queued", position=1, eta_s=300))
    await standin.wait_for(lambda: status["text"].startswith("You're number 1"), "number 1 edited in")
    return cid, status


async def _is_status_at_1(last: Awaitable[dict[str, Any]]) -> bool:
    shown = await last
    return shown.get("kind") == "status" and shown.get("position") == 1


async def test_the_answer_to_a_customer_in_the_queue_is_a_new_message_not_an_edit_above(
    standin: StandIn, settings: Settings
) -> None:
    # Tester 21b, T5: "¿hola? ¿sigue alguien ahí?" got no new message: the status message above the
    # question was edited into the answer (Telegram announces no edit, and it is off-screen above).
    async with relevo(settings) as worker:
        _, status = await _status_message_at_number_1(standin, worker.runtime)
        shown = status["text"]
        (answer,) = await say(standin, CHAT, "hello? is anyone there?")
        assert answer["text"].startswith("You are still in the queue") and "number 1" in answer["text"], answer
        assert answer["message_id"] > status["message_id"] and status["text"] == shown


async def test_a_notice_long_after_the_status_message_is_a_message_of_its_own(
    standin: StandIn, settings: Settings
) -> None:
    # Nothing typed since, but the status message was posted a while ago: a notice (an apology, a new
    # wait) is news, not an edit of a message the customer scrolled past.
    async with relevo(settings) as worker:
        rt = worker.runtime
        cid, status = await _status_message_at_number_1(standin, rt)

        async def noted() -> dict[str, Any]:
            return cast(dict[str, Any], json.loads(await rt.redis.hget(keys.telegram_shown(cid), "last") or "{}"))

        await eventually(lambda: _is_status_at_1(noted()), "the edit noted")
        last = await noted()
        await rt.redis.hset(keys.telegram_shown(cid), "last", json.dumps({**last, "at": last["at"] - 60}))
        sent = len(standin.sent(CHAT))
        assert await rt.handoff.notifier.remind(cid)
        notice = await standin.wait_for(lambda: standin.sent(CHAT)[sent] if len(standin.sent(CHAT)) > sent
                                        else None, "the notice as a message of its own")
        assert notice["text"].startswith("You are still in the queue") and status["text"].startswith("You're number 1")


async def test_a_message_with_nothing_visible_is_ignored(standin: StandIn, settings: Settings) -> None:
    async with relevo(settings) as worker:
        rt = worker.runtime
        await subscribed(rt.redis)
        await say(standin, CHAT, "/start")
        for text in ("\u200b\u0000", "\ufeff\u2060", "\u3164"):
            await standin.push(message_update(standin, CHAT, text))
        photo = [{"file_id": "p1", "file_unique_id": "p", "width": 90, "height": 90}]
        await standin.push(message_update(standin, CHAT, photo=photo, caption="\u200b"))
        files, answer = await say(standin, CHAT, "How long does shipping take?", count=2)
        assert "only read text" in files["text"] and "2–4 business days" in answer["text"]
        entries = [e for e in await transcript(rt, f"telegram:{CHAT}") if e.sender == "customer"]
        assert [(e.text, [(a.kind, a.caption) for a in e.attachments]) for e in entries] == [
            ("", [("photo", "")]), ("How long does shipping take?", [])]
        assert await unanswered.read(rt.redis, days=1) == []
        assert len(standin.sent(CHAT)) == 3


async def test_the_joined_notice_never_follows_the_agents_first_reply(
    standin: StandIn, settings: Settings
) -> None:
    other = 5151
    async with relevo(settings) as worker:
        rt, notifier = worker.runtime, worker.runtime.handoff.notifier
        await subscribed(rt.redis)
        # The agent writes before the claim's event reaches the notifier (events go through pub/sub).
        cid, _, ana = await _handed_over(standin, worker, CHAT)
        await rt.handoff.claim(ana, cid)
        await rt.handoff.reply(ana, cid, "Hi, I am Ana.")
        await notifier.handle(_event("claimed", cid))
        await rt.handoff.reply(ana, cid, "Let me check.")
        await standin.wait_for(lambda: standin.sent(CHAT)[-1]["text"] == "Ana G: Let me check.", "the replies")
        log = [(e.sender, e.text) for e in await rt.conversations.log(cid)]
        first = log.index(("agent", "Hi, I am Ana."))
        assert not [t for _, t in log[first:] if "joined" in t]
        chat = [m["text"] for m in standin.sent(CHAT)]
        assert not [t for t in chat[chat.index("Ana G: Hi, I am Ana."):] if "joined" in t]

        # Told by whoever assigns it, at once: before any reply, and once though the event follows.
        cid2, _, _ = await _handed_over(standin, worker, other)
        await rt.handoff.claim(ana, cid2)
        assert await notifier.tell_joined(cid2)
        await notifier.handle(_event("claimed", cid2))
        await rt.handoff.reply(ana, cid2, "Hello!")
        await standin.wait_for(lambda: standin.sent(other)[-1]["text"] == "Ana G: Hello!", "the reply")
        last_two = [e.text for e in await rt.conversations.log(cid2)][-2:]
        assert last_two == ["Ana G has joined the conversation.", "Hello!"]
        chat = [m["text"] for m in standin.sent(other)]
        assert [t for t in chat if "joined" in t] == ["Ana G has joined the conversation."]
        assert chat[-2:] == ["Ana G has joined the conversation.", "Ana G: Hello!"]


async def _queued(standin: StandIn, rt: Runtime, chat: int) -> str:
    """/agent, and the handoff's notice of the place in the queue (or of the opening hours) seen: the id."""
    before = len(standin.sent(chat))
    await standin.push(message_update(standin, chat, "/agent"))
    await standin.wait_for(lambda: any(" in the queue" in m["text"] for m in standin.sent(chat)[before:]),
                           "the queue notice")
    cid = await rt.conversations.current_id(f"telegram:{chat}")
    assert cid is not None
    return cid


async def _resolve(rt: Runtime, cid: str, outcome: str) -> None:
    """An agent resolves the conversation; the notifier is told (its listener is not running here)."""
    await rt.handoff.queues.resolve(None, cid, outcome)
    await rt.handoff.notifier.handle({"event": "resolved", "conv": cid, "outcome": outcome, "ts": now_ms()})


async def _resolved_with_prompt(standin: StandIn, rt: Runtime) -> tuple[str, dict[str, Any]]:
    """A handoff of CHAT resolved as solved: (its conversation id, the rating prompt's message)."""
    cid = await _queued(standin, rt, CHAT)
    await _resolve(rt, cid, "solved")
    prompt = await standin.wait_for(
        lambda: next((m for m in standin.sent(CHAT) if m["text"].startswith("How did we do?")), None),
        "the rating prompt")
    return cid, prompt


async def test_an_old_rating_button_rates_nothing_after_a_resolution_that_asked_for_none(
    standin: StandIn, settings: Settings
) -> None:
    async with relevo(settings) as worker:
        rt = worker.runtime
        await subscribed(rt.redis)
        first, prompt = await _resolved_with_prompt(standin, rt)
        await standin.push(press_update(standin, CHAT, prompt, "rate:5"))
        await standin.wait_for(lambda: standin.sent(CHAT)[-1]["text"] == "Thank you for your rating!", "the thanks")
        await say(standin, CHAT, "thanks, bye")

        # A new handoff, resolved as spam: no rating is asked for; the first one's buttons are still there.
        second = await _queued(standin, rt, CHAT)
        assert second != first
        await _resolve(rt, second, "spam")
        conv = await rt.conversations.get(second)
        assert conv is not None and conv.state == "resolved"
        sent = len(standin.sent(CHAT))
        await standin.push(press_update(standin, CHAT, prompt, "rate:1"))
        (gone,) = await standin.wait_for(lambda: standin.sent(CHAT)[sent:] or None, "the answer to the press")
        assert gone["text"].startswith("Sorry, that option is no longer available")
        assert await rt.redis.hget(keys.conv(second), "rating") is None
        assert await rt.redis.hget(keys.conv(first), "rating") == "5"
        assert [m["text"] for m in standin.sent(CHAT)].count("Thank you for your rating!") == 1


async def test_the_stars_pressed_after_saying_goodbye_rate_the_conversation_that_asked(
    standin: StandIn, settings: Settings
) -> None:
    async with relevo(settings) as worker:
        rt = worker.runtime
        await subscribed(rt.redis)
        cid, prompt = await _resolved_with_prompt(standin, rt)
        await say(standin, CHAT, "thanks, bye")  # the conversation ends; the stars stay in the chat
        sent = len(standin.sent(CHAT))
        await standin.push(press_update(standin, CHAT, prompt, "rate:4"))
        (thanks,) = await standin.wait_for(lambda: standin.sent(CHAT)[sent:] or None, "the answer to the press")
        assert thanks["text"] == "Thank you for your rating!"  # no new conversation's greeting before it
        assert await rt.redis.hget(keys.conv(cid), "rating") == "4"
        assert await rt.conversations.current_id(f"telegram:{CHAT}") is None


# -- webhook mode ---------------------------------------------------------------------------------------

async def test_webhook_mode_checks_the_secret(
    standin: StandIn, redis_url: str, tmp_path: Path, kb_dir: Path, redis: aioredis.Redis
) -> None:
    settings, sock, url = webhook_settings(standin, redis_url, tmp_path, kb_dir)
    async with relevo(settings, sock=sock) as worker:
        await standin.wait_for(lambda: standin.webhook, "the webhook registered")
        assert standin.webhook == {"url": url, "secret_token": SECRET}
        assert standin.called("getUpdates") == [] and worker.service.application.updater is None
        await subscribed(worker.runtime.redis)
        (greeting,) = await say(standin, CHAT, "/start")  # the stand-in posts it with the registered secret
        assert greeting["text"].startswith("Hi!")

        update = message_update(standin, CHAT, "How much does shipping cost?")
        async with aiohttp.ClientSession() as session:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"},
                            {"X-Telegram-Bot-Api-Secret-Token": SECRET[:-1]}):
                async with session.post(url, json=update, headers=headers) as response:
                    assert response.status == 403
            right = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            async with session.post(url, data=b"{" + b" " * 300_000 + b"}", headers=right) as response:
                assert response.status == 413
            async with session.post(url, data=b"[1, 2]", headers=right) as response:
                assert response.status == 400
        customer = [e for e in await transcript(worker.runtime, f"telegram:{CHAT}") if e.sender == "customer"]
        assert customer == []  # nothing refused got in
        (reply,) = await say(standin, CHAT, "How much does shipping cost?")
        assert "Shipping is free" in reply["text"]


async def _post_in_parts(url: str, head: bytes, parts: list[bytes], pause_s: float = 0.3) -> bytes:
    """POST over a raw socket, each part written (and flushed) after a pause: a body in several TCP segments."""
    where = urlsplit(url)
    reader, writer = await asyncio.open_connection("127.0.0.1", where.port)
    try:
        writer.write(f"POST {where.path} HTTP/1.1\r\nHost: {where.netloc}\r\n".encode() + head
                     + f"X-Telegram-Bot-Api-Secret-Token: {SECRET}\r\nConnection: close\r\n\r\n".encode())
        for part in parts:
            await writer.drain()
            await asyncio.sleep(pause_s)
            writer.write(part)
        await writer.drain()
        async with asyncio.timeout(20):
            return await reader.read()
    finally:
        writer.close()


async def test_a_webhook_update_split_across_segments_is_read_whole(
    standin: StandIn, redis_url: str, tmp_path: Path, kb_dir: Path, redis: aioredis.Redis
) -> None:
    settings, sock, url = webhook_settings(standin, redis_url, tmp_path, kb_dir)
    async with relevo(settings, sock=sock) as worker:
        await standin.wait_for(lambda: standin.webhook, "the webhook registered")
        await subscribed(worker.runtime.redis)
        await say(standin, CHAT, "/start")
        # A long message (within the 2000 characters the engine keeps): a proxy may pass it on in pieces.
        question = "Where is my order?" + " It was a present for my sister." * 55
        body = json.dumps(message_update(standin, CHAT, question)).encode()
        before = len(standin.sent(CHAT))
        head = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
        answer = await _post_in_parts(url, head, [body[:1000], body[1000:]])
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        await standin.wait_for(lambda: len(standin.sent(CHAT)) > before, "an answer to the split update")

        # Chunked, in small chunks apart in time.
        body = json.dumps(message_update(standin, CHAT, "Where is my order?")).encode()
        chunks_ = [b"%x\r\n%s\r\n" % (len(body[i:i + 40]), body[i:i + 40]) for i in range(0, len(body), 40)]
        head = b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        answer = await _post_in_parts(url, head, [*chunks_, b"0\r\n\r\n"], pause_s=0.02)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]

        # Too large still says so when the body comes in pieces without a length.
        big = b"{" + b" " * 300_000 + b"}"
        pieces = [b"%x\r\n%s\r\n" % (len(big[i:i + 100_000]), big[i:i + 100_000])
                  for i in range(0, len(big), 100_000)]
        answer = await _post_in_parts(url, b"Transfer-Encoding: chunked\r\n", [*pieces, b"0\r\n\r\n"],
                                      pause_s=0.05)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]

        customer = [e.text for e in await transcript(worker.runtime, f"telegram:{CHAT}") if e.sender == "customer"]
        assert customer == [question, "Where is my order?"]


async def test_a_refused_webhook_is_tried_again_in_the_background_and_shown_in_healthz(
    standin: StandIn, redis_url: str, tmp_path: Path, kb_dir: Path, redis: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    settings, sock, _ = webhook_settings(standin, redis_url, tmp_path, kb_dir)
    refused = Fault(400, "Bad Request: bad webhook: Failed to resolve host")
    standin.fail_next("setWebhook", refused, times=1000)
    async with relevo(settings, sock=sock) as worker, aiohttp.ClientSession() as http:
        # Serving already, with Telegram still refusing: start-up did not wait for it.
        await standin.wait_for(lambda: len(standin.called("setWebhook")) >= 3, "setWebhook tried again")
        async with http.get(worker.url + "/healthz") as response:
            assert response.status == 200
            health = await response.json()
        assert health["ok"] is True and health["telegram"] == "not_registered"
        assert "failed to resolve host" in health["telegram_error"].lower()
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert any("webhook not registered" in e and "resolve host" in e for e in errors)
        assert not any("on webhook" in r.getMessage() for r in caplog.records)

        standin.faults["setWebhook"].clear()  # Telegram takes it now
        await standin.wait_for(lambda: standin.webhook, "the webhook registered")

        async def up() -> bool:
            async with http.get(worker.url + "/healthz") as response:
                return (await response.json()).get("telegram") == "up"

        await eventually(up, "/healthz showing Telegram up")
        async with http.get(worker.url + "/healthz") as response:
            assert "telegram_error" not in await response.json()
        assert sum("@relevo_test_bot on webhook" in r.getMessage() for r in caplog.records) == 1
        await subscribed(worker.runtime.redis)
        (greeting,) = await say(standin, CHAT, "/start")
        assert greeting["text"].startswith("Hi!")


def test_webhook_mode_needs_its_url_and_secret(redis_url: str, tmp_path: Path, kb_dir: Path) -> None:
    standin = StandIn(url="http://127.0.0.1:9")
    for bad in ({"webhook_url": "", "secret_token": SECRET}, {"webhook_url": "https://x/telegram/webhook"},
                {"webhook_url": "https://x/telegram/webhook", "secret_token": "has space"},
                {"webhook_url": "https://x/telegram/webhook", "secret_token": "señal_123"}):
        settings = make_settings(redis_url, tmp_path, kb_dir, standin, mode="webhook", **bad)
        with pytest.raises(TelegramSetupError):
            add_telegram_routes(web.Application(), _FakeRuntime(settings))  # type: ignore[arg-type]


@dataclass
class _FakeRuntime:
    settings: Settings


# -- several workers ------------------------------------------------------------------------------------

async def test_two_workers_only_one_polls_and_the_other_takes_over(
    standin: StandIn, settings: Settings, redis: aioredis.Redis
) -> None:
    async with relevo(settings) as first:
        await eventually(lambda: asyncio.sleep(0, first.service.polling), "the first worker polling")
        async with relevo(settings) as second:
            await subscribed(redis, workers=2)
            for chat in range(CHAT, CHAT + 3):  # several renewals and lease attempts
                await say(standin, chat, "How much does shipping cost?", count=2)
            assert first.service.polling and not second.service.polling
            assert await redis.get(POLL_LEASE) == first.service.worker
            assert standin.max_polls_in_flight == 1
            # Every worker hears each event; exactly one sends it.
            await emit(first.runtime, f"telegram:{CHAT}", "one message, once")
            await say(standin, CHAT, "How long does shipping take?")
            assert sum(m["text"] == "one message, once" for m in standin.sent(CHAT)) == 1
            await first.service.stop()  # the poller goes away (it gives the lease back)
            await eventually(lambda: asyncio.sleep(0, second.service.polling), "the second worker polling")
            (reply,) = await say(standin, CHAT, "Is shipping free?")
            assert "Shipping is free" in reply["text"]
            assert await redis.get(POLL_LEASE) == second.service.worker
            assert standin.max_polls_in_flight == 1


async def test_with_two_workers_a_chat_gets_its_messages_in_the_order_they_were_sent(
    standin: StandIn, settings: Settings, redis: aioredis.Redis
) -> None:
    """An agent's quick replies, published by whichever worker took them: every worker hears each one,
    and one worker at a time delivers a chat's messages, so they arrive as they were written."""
    async with relevo(settings) as first, relevo(settings) as second:
        await subscribed(redis, workers=2)
        await say(standin, CHAT, "/start")
        before = len(standin.sent(CHAT))
        standin.send_latency_s = functools.partial(random.Random(7).uniform, 0.0, 0.03)
        written = [f"line {n}" for n in range(30)]
        for n, text in enumerate(written):
            await emit((first, second)[n % 2].runtime, f"telegram:{CHAT}", text, sender="agent", author="Ana")
        await standin.wait_for(lambda: len(standin.sent(CHAT)) >= before + len(written), "every line")
        await asyncio.sleep(0.2)  # nothing more comes: no line twice
        assert [m["text"] for m in standin.sent(CHAT)[before:]] == [f"Ana: {t}" for t in written]
        # The worker delivering to the chat stops: it gives the chat up, the other one delivers at once.
        owner = await redis.get(keys.delivery_owner(CHAT))
        leaving, staying = (first, second) if owner == first.service.worker else (second, first)
        assert owner == leaving.service.worker
        await leaving.service.stop()
        assert await redis.get(keys.delivery_owner(CHAT)) is None
        await emit(staying.runtime, f"telegram:{CHAT}", "still here", sender="agent", author="Ana")
        await standin.wait_for(lambda: standin.sent(CHAT)[-1]["text"] == "Ana: still here", "the next line")
        assert await redis.get(keys.delivery_owner(CHAT)) == staying.service.worker


async def crash(worker: Relevo) -> None:
    """The worker's process dies: its Telegram work ends where it is, and it gives nothing back (no
    `stop`, so no drain and no disown)."""
    channel = worker.service.channel
    channel.closing = True
    tasks = [*worker.service._tasks, *channel._tasks]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_when_the_worker_delivering_a_chat_dies_another_sends_what_it_had_not(
    standin: StandIn, settings: Settings, redis: aioredis.Redis
) -> None:
    retries = dataclasses.replace(QUICK, owner_lease_s=1.0)
    async with relevo(settings, retries=retries) as first, relevo(settings, retries=retries) as second:
        await subscribed(redis, workers=2)
        await say(standin, CHAT, "/start")
        owner = await redis.get(keys.delivery_owner(CHAT))
        dying, staying = (first, second) if owner == first.service.worker else (second, first)
        assert owner == dying.service.worker
        await crash(dying)
        before = len(standin.sent(CHAT))
        written = [f"line {n}" for n in range(5)]
        for text in written:  # the dead worker's lease has not run out yet: it still "delivers" the chat
            await emit(staying.runtime, f"telegram:{CHAT}", text, sender="agent", author="Ana")
        await standin.wait_for(lambda: len(standin.sent(CHAT)) >= before + len(written), "the unsent lines")
        await asyncio.sleep(0.3)  # nothing more comes: no line twice
        assert [m["text"] for m in standin.sent(CHAT)[before:]] == [f"Ana: {t}" for t in written]
        assert await redis.get(keys.delivery_owner(CHAT)) == staying.service.worker


async def test_a_worker_held_up_by_a_flood_limit_keeps_its_chat_and_nothing_is_sent_twice(
    standin: StandIn, settings: Settings, redis: aioredis.Redis
) -> None:
    """A flood wait outlasting the chat's lease: the worker sending renews it, so the other worker,
    holding the same messages, does not take the chat over and send them again."""
    retries = dataclasses.replace(QUICK, owner_lease_s=0.6)
    async with relevo(settings, retries=retries) as first, relevo(settings, retries=retries) as second:
        await subscribed(redis, workers=2)
        await say(standin, CHAT, "/start")
        before = len(standin.sent(CHAT))
        standin.fail_next("sendMessage", Fault(429, "Too Many Requests: retry after 2", retry_after=2))
        written = [f"line {n}" for n in range(3)]
        for n, text in enumerate(written):
            await emit((first, second)[n % 2].runtime, f"telegram:{CHAT}", text, sender="agent", author="Ana")
        await standin.wait_for(lambda: len(standin.sent(CHAT)) >= before + len(written), "every line")
        await asyncio.sleep(2.0)  # past the flood wait, and other leases and checks: nothing more comes
        assert [m["text"] for m in standin.sent(CHAT)[before:]] == [f"Ana: {t}" for t in written]


# -- translation --------------------------------------------------------------------------------------

def test_commands_languages_and_sizes() -> None:
    assert command_of("/start", "relevo_bot") == "start"
    assert command_of("/Agent@Relevo_Bot now", "relevo_bot") == "agent"
    assert command_of("/start@other_bot", "relevo_bot") is None
    assert command_of("/ start", "relevo_bot") is None and command_of("hello /start", "relevo_bot") is None
    assert (lang_of("es-AR"), lang_of("EN"), lang_of("fr"), lang_of(None)) == ("es", "en", None, None)
    parts = chunks("word " * 2000)
    assert len(parts) == 3 and all(len(p) <= 4096 for p in parts)
    assert " ".join(parts).split() == ["word"] * 2000
    markup = keyboard((Button("ok", "rate:1"), Button("too long", "x" * 65)))
    assert markup is not None
    assert [[b.callback_data for b in row] for row in markup.inline_keyboard] == [["rate:1"]]
    queued = StatusUpdate("c", "telegram:1", "telegram", "queued", position=2, eta_s=30)
    # In the notices' words: "less than a minute" under "less than a minute", never "about 1 min." (T16).
    assert status_text(queued, "en") == "You're number 2 in the queue for a person from our team. " \
                                        "Estimated wait: less than a minute."
    assert status_text(dataclasses.replace(queued, eta_s=170), "es").endswith("Espera estimada: unos 3 minutos.")
    assert "Estimated wait" not in (status_text(dataclasses.replace(queued, eta_s=None), "en") or "")
    overnight = StatusUpdate("c", "telegram:1", "telegram", "queued", position=1, eta_s=496 * 60)
    assert status_text(overnight, "es").endswith("Espera estimada: unas 8 h 16 min.")
    assert status_text(StatusUpdate("c", "telegram:1", "telegram", "resolved"), "en") is None
    assert status_text(StatusUpdate("c", "telegram:1", "telegram", "assigned", agent="Ana"), "en") is None
