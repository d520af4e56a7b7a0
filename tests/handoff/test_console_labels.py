"""The console after the third QA pass, in Spanish: the mood words and a Telegram photo in the agent view,
and the supervisor's timeline of one record (who, from where to where, the rating and its comment)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from bot.messages import Attachment
from handoff import audit, keys
from handoff.conversations import entry_fields
from handoff.presence import now_ms
from tests.handoff import test_console_browser as console
from tests.handoff.test_console_browser import (
    ASK_PERSON,
    PHONE,
    PageFactory,
    Server,
    customer_says,
    open_widget,
    sign_in_here,
)

# The browser suite's fixtures: a real server on 127.0.0.1 with Redis, Debian's Chromium, pages.
server = console.server
browser = console.browser
open_page = console.open_page

pytestmark = pytest.mark.browser


def sign_in_in_spanish(page: Any, server: Server, name: str, where: str) -> None:
    page.goto(f"{server.url}/login?next={where}&lang=es")
    sign_in_here(page, name)
    page.wait_for_url(re.compile(re.escape(where) + r"\?lang=es$"))
    page.locator("#conn", has_text="En directo").wait_for()


@pytest.mark.timeout(120)
def test_the_spanish_console_labels_mood_words_files_and_the_record_timeline(
    server: Server, open_page: PageFactory
) -> None:
    server.add_agent("ana", ("general",))
    server.add_agent("sara", ("general",), role="supervisor")
    assert server.service is not None
    service = server.service
    ana = open_page()
    sign_in_in_spanish(ana, server, "ana", "/agent")
    customer = open_page(viewport=PHONE, locale="es-ES")
    open_widget(customer, server.url)
    customer_says(customer, "sois unos inútiles, llevo dos semanas esperando!!! " + ASK_PERSON)
    item = ana.locator("#queue-list .item-button").first
    item.wait_for()
    cid = item.get_attribute("data-conversation") or ""
    assert cid

    # A photo with a caption, as the Telegram channel stores it: no text, the caption with the file.
    photo = Attachment("photo", "mi factura <b>rota</b>", "AgADfile")
    server.call(service.conversations.append(
        cid, entry_fields("customer", "", ts=now_ms(), attachments=[photo]), sender="customer"
    ))  # fmt: skip

    ana.locator("#claim-next").click()
    ana.locator("#actions").wait_for()
    files = ana.locator("#transcript .msg-files li")
    files.first.wait_for()
    assert files.all_inner_texts() == ["Foto: mi factura <b>rota</b>"]
    assert files.locator(".file-kind").inner_text() == "Foto"
    # The detector's labels under "Palabras de enfado" are Spanish, like the reasons beside them.
    words = ana.locator("#ctx-words .word").all_inner_texts()
    assert words and any(w.startswith("insulto: ") for w in words), words
    assert not any(re.match(r"(insult|negative|repeated question|shouting)\b", w) for w in words), words

    # Her first reply is late (as the SLA sweeper notes it: she keeps it); she resolves; the customer
    # gives four stars and then writes a comment.
    async def late_resolved_rated() -> None:
        agent = await service.directory.get("ana")
        assert agent is not None
        await audit.append(service.redis, cid, "sla_breach", from_="ana", to="general:1",
                           detail="first reply overdue")  # fmt: skip
        await service.resolve(agent, cid, "solved")
        for _ in range(250):  # rated once asked, as a customer would: the resolution clears older ratings
            if await service.redis.hget(keys.conv(cid), "awaiting") == "rating":
                break
            await asyncio.sleep(0.02)
        assert await service.rate(cid, 4)
        assert await service.comment(cid, "muy amable")

    server.call(late_resolved_rated())

    sara = open_page()
    sign_in_in_spanish(sara, server, "sara", "/supervisor")
    row = sara.locator("#records-table tbody tr").first
    row.wait_for()
    assert row.locator(".agents-cell").inner_text() == "ana"
    row.locator(".link-button").first.click()
    timeline = sara.locator("#timeline")
    timeline.locator(".tl-rated").nth(1).wait_for()

    queued = timeline.locator(".tl-queued")
    assert queued.locator(".tl-actor").inner_text() == "Por Bot"
    assert queued.locator(".tl-route").inner_text().startswith("con el bot → ")
    assert queued.locator(".tl-route").inner_text().endswith(" · Nivel 1")
    claimed = timeline.locator(".tl-claimed .tl-route").inner_text()
    assert claimed.endswith(" · Nivel 1 → ana") and ":" not in claimed, claimed
    breach = timeline.locator(".tl-sla_breach")
    assert breach.locator(".tl-route").count() == 0  # she kept it: not a move
    assert breach.locator(".tl-actor").inner_text() == "Por Sistema"
    assert breach.locator(".tl-detail").inner_text() == "primera respuesta con retraso"
    assert timeline.locator(".tl-resolved .tl-route").inner_text() == "ana → cerrada"

    # The stars once, then the comment as a comment.
    stars, comment = timeline.locator(".tl-rated").all()
    assert stars.locator(".tl-event").inner_text() == "valorada"
    assert stars.locator(".tl-outcome").inner_text() == "★★★★☆ 4 de 5"
    assert stars.locator(".tl-actor").inner_text() == "Por Cliente"
    assert comment.locator(".tl-event").inner_text() == "comentario"
    assert comment.locator(".tl-outcome").count() == 0
    assert comment.locator(".tl-comment").inner_text() == "Comentario: muy amable"
    assert timeline.inner_text().count("4 de 5") == 1
    text = timeline.inner_text()
    assert not re.search(r"\b(customer|closed|system)\b", text) and "general:1" not in text, text
    # The record's transcript labels the photo the same way.
    assert sara.locator("#detail-transcript .msg-files li").all_inner_texts() == ["Foto: mi factura <b>rota</b>"]
    assert sara.locator("#detail-transcript b").count() == 0
    for page in (ana, sara, customer):
        assert page.problems == [], page.problems
