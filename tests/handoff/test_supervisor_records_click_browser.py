"""The supervisor's records table in Debian's Chromium, against a real server, Redis and widget: a click
anywhere on a row opens its record (a reason badge, an agent's name, a plain cell), and the "When" button
still opens it from the keyboard; each row of a conversation handed over twice opens its own handoff; the
list and the open record follow the floor's events without "Apply"; a record is found by its customer.
The supervisor page's layout: every agent of the floor in view, a long unanswered question wrapped."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from bot import unanswered
from faq.library import Library
from handoff.agents import Agent
from handoff.presence import now_ms
from tests.handoff import test_console_browser as console
from tests.handoff.test_console_browser import (
    ASK_PERSON,
    DESKTOP,
    PHONE,
    PageFactory,
    Server,
    customer_says,
    log_in,
    open_widget,
    shot,
)

# The browser suite's fixtures: a real server on 127.0.0.1 with Redis, Debian's Chromium, pages.
server = console.server
browser = console.browser
open_page = console.open_page

pytestmark = pytest.mark.browser


def handed_over_and_resolved(server: Server, open_page: PageFactory, agent: Agent) -> str:
    """A customer on the widget asks for a person; `agent` takes it and resolves it. Its conversation id."""
    customer = open_page(viewport=PHONE, locale="es-ES")
    open_widget(customer, server.url)
    customer_says(customer, ASK_PERSON)
    service = server.service
    assert service is not None
    claimed = server.call(_claim_when_queued(service, agent))
    server.call(service.resolve(agent, claimed, "solved"))
    assert customer.problems == [], customer.problems
    customer.context.close()
    return str(claimed)


async def _claim_when_queued(service: Any, agent: Agent) -> str:
    for _ in range(250):  # the escalation lands in the queue just after the widget shows the notice
        claimed = await service.claim(agent)
        if claimed:
            return str(claimed)
        await asyncio.sleep(0.02)
    raise AssertionError("the conversation never reached the queue")


def opened(page: Any, conversation_id: str) -> None:
    """The record of this row is the one open: its row marked, the detail shown."""
    page.locator(f'.record-row.is-current[data-conversation="{conversation_id}"]').wait_for()
    assert page.locator("#detail-body").is_visible()
    assert page.locator(".record-row.is-current").count() == 1


def test_a_click_anywhere_on_a_record_row_opens_it(server: Server, open_page: PageFactory) -> None:
    server.add_agent("ana", ("general",))
    server.add_agent("sara", ("general",), role="supervisor")
    service = server.service
    assert service is not None
    ana = server.call(service.directory.get("ana"))
    first = handed_over_and_resolved(server, open_page, ana)
    second = handed_over_and_resolved(server, open_page, ana)

    page = open_page()
    log_in(page, server.url, "sara", "/supervisor")
    rows = page.locator("#records-table tbody tr.record-row")
    rows.nth(1).wait_for()
    assert rows.count() == 2
    row = {c: page.locator(f'.record-row[data-conversation="{c}"]') for c in (first, second)}

    # The reason badge ("asked for a person"): a list item inside the cell, not the cell itself.
    badge = row[first].locator(".badges li").first
    assert badge.inner_text().strip()
    badge.click()
    opened(page, first)
    # The agent's name, in bold inside the agents' cell.
    name = row[second].locator(".agents-cell strong")
    assert name.inner_text() == "ana"
    name.click()
    opened(page, second)
    # A plain cell still opens it, as before.
    row[first].locator("td").nth(3).click()
    opened(page, first)
    shot(page, "supervisor-records-click")

    # From the keyboard: the "When" button of a row, focused and pressed.
    page.locator("#detail-close").click()
    assert page.locator("#detail-body").is_hidden()
    when = row[second].locator(".link-button")
    when.focus()
    page.keyboard.press("Enter")
    opened(page, second)
    when = row[first].locator(".link-button")
    when.focus()
    page.keyboard.press("Space")
    opened(page, first)
    assert page.problems == [], page.problems


def test_each_row_of_a_conversation_handed_over_twice_opens_its_own_handoff(
    server: Server, open_page: PageFactory
) -> None:
    server.add_agent("ana", ("general", "accounts"))
    server.add_agent("sara", ("general",), role="supervisor")
    service = server.service
    assert service is not None
    ana = server.call(service.directory.get("ana"))
    # Handed over, transferred to accounts, solved and rated 5 with a comment; then, in the same
    # conversation, handed over again and resolved "other".
    customer = open_page(viewport=PHONE, locale="es-ES")
    open_widget(customer, server.url)
    customer_says(customer, ASK_PERSON)
    cid = server.call(_claim_when_queued(service, ana))
    server.call(service.transfer(ana, cid, "accounts"))
    server.call(service.claim(ana, cid))
    server.call(service.resolve(ana, cid, "solved", "reembolsado"))
    five = customer.locator(".relevo-log .relevo-choice", has_text=re.compile(r"^\s*★ 5\s*$")).last
    five.click()
    customer.locator(".relevo-log .relevo-msg", has_text="Gracias por tu valoración").last.wait_for()
    customer_says(customer, "muy amables")
    customer.locator(".relevo-log .relevo-msg", has_text="hemos anotado tu comentario").last.wait_for()
    customer_says(customer, ASK_PERSON)
    assert server.call(_claim_when_queued(service, ana)) == cid
    server.call(service.resolve(ana, cid, "other"))

    page = open_page()
    log_in(page, server.url, "sara", "/supervisor")
    rows = page.locator("#records-table tbody tr.record-row")
    rows.nth(1).wait_for()
    assert rows.count() == 2
    first, second = rows.nth(1), rows.nth(0)  # newest first
    assert first.locator("td").nth(2).inner_text() == "Accounts"
    assert "5 of 5" in first.locator(".rating-cell").inner_text()

    first.locator("td").nth(3).click()
    page.locator(".record-row.is-current").wait_for()
    assert page.locator(".record-row.is-current").count() == 1
    assert first.get_attribute("class") is not None and "is-current" in (first.get_attribute("class") or "")
    page.locator("#detail-meta", has_text="Accounts · Tier 1 · Solved").wait_for()
    assert page.locator("#detail-rating").inner_text() == "Rating: ★★★★★ 5 of 5 — muy amables"
    assert page.locator("#detail-handoffs").inner_text().startswith("Handover 1 of 2 in this conversation:")
    events = page.locator("#timeline .tl")
    assert events.count() == int(first.locator("td").nth(8).inner_text())
    assert page.locator("#timeline .tl-resolved .tl-detail").inner_text() == "reembolsado"

    second.locator("td").nth(3).click()
    page.locator("#detail-meta", has_text="Customer service · Tier 1 · Other").wait_for()
    assert "is-current" in (second.get_attribute("class") or "")
    assert "is-current" not in (first.get_attribute("class") or "")
    assert page.locator("#detail-rating").inner_text() == "Rating: Not rated"
    assert page.locator("#detail-handoffs").inner_text().startswith("Handover 2 of 2")
    # The other handover opens from the detail too.
    page.locator("#detail-handoffs .handoff-link").click()
    page.locator("#detail-meta", has_text="Accounts · Tier 1 · Solved").wait_for()
    assert "is-current" in (first.get_attribute("class") or "")
    shot(page, "supervisor-record-second-handoff")
    assert page.problems == [], page.problems
    customer.context.close()


def test_the_floor_shows_every_agent_and_a_long_question_wraps(server: Server, open_page: PageFactory) -> None:
    server.add_agent("sara", ("general", "orders"), role="supervisor")
    for i in range(7):
        server.add_agent(f"agent{i}", ("general", "orders", "returns"), display_name=f"Agent Number {i}")
    assert server.service is not None
    redis = server.service.redis
    long_question = "x" * 1500  # one unbroken word; the list keeps 300 characters of it

    async def noted() -> None:
        await unanswered.note(redis, unanswered.Unanswered("not_understood", long_question, "en", now_ms()))
        await unanswered.note(redis, unanswered.Unanswered("not_understood", "do you sell gift cards", "en", now_ms()))

    server.call(noted())
    page = open_page(viewport=DESKTOP)
    log_in(page, server.url, "sara", "/supervisor")
    agents = page.locator("#agents-table tbody tr")
    agents.nth(7).wait_for()
    page.locator("#unanswered-table tbody tr").nth(1).wait_for()
    shot(page, "supervisor-floor-and-unanswered")
    sizes = page.evaluate(
        """() => {
          const box = r => r.getBoundingClientRect();
          const agents = document.getElementById('agents-table'), wrap = agents.closest('.table-wrap');
          const rows = Array.from(agents.tBodies[0].rows);
          const table = document.getElementById('unanswered-table'), uwrap = table.closest('.table-wrap');
          const last = Array.from(table.tHead.rows[0].cells).pop();
          return {
            wrapBottom: box(wrap).bottom, wrapScroll: wrap.scrollHeight, wrapHeight: wrap.clientHeight,
            rowBottoms: rows.map(r => box(r).bottom),
            tableWidth: table.scrollWidth, uwrapWidth: uwrap.clientWidth, uwrapScroll: uwrap.scrollWidth,
            lastRight: box(last).right, page: document.documentElement.scrollWidth,
          };
        }"""
    )
    # Every agent's row inside the agents' box, nothing hidden below a scroll (the 5th, the 8th).
    assert sizes["wrapScroll"] <= sizes["wrapHeight"] + 1, sizes
    assert max(sizes["rowBottoms"]) <= sizes["wrapBottom"] + 0.5, sizes
    assert agents.nth(4).is_visible() and agents.nth(7).is_visible()
    # The long question wraps in its cell: the table fits its box, "Last asked" is on the screen.
    assert sizes["tableWidth"] <= sizes["uwrapWidth"] and sizes["uwrapScroll"] <= sizes["uwrapWidth"], sizes
    assert sizes["lastRight"] <= DESKTOP["width"] and sizes["page"] <= DESKTOP["width"], sizes
    assert page.problems == [], page.problems


def test_a_knowledge_base_edit_that_does_not_load_is_shown_to_the_supervisor(
    server: Server, open_page: PageFactory, tmp_path: Path
) -> None:
    server.add_agent("sara", ("general",), role="supervisor")
    service = server.service
    assert service is not None
    library = service.library
    assert isinstance(library, Library)
    # The server's own folder, copied, with one file broken as an admin's slip would break it.
    broken = tmp_path / "faq"
    shutil.copytree(library.folder, broken)
    (broken / "shipping.yaml").write_text('entries:\n  - id: x\n    questions: {en: ["unclosed]\n', encoding="utf-8")
    original, serving = library.folder, library.kb.version
    library.folder = broken
    try:
        assert library.reload() is False
        page = open_page()
        log_in(page, server.url, "sara", "/supervisor")
        banner = page.locator("#kb-problem")
        banner.wait_for()
        text = banner.inner_text()
        assert text.startswith("Knowledge base not reloaded: ") and "shipping.yaml:3: bad YAML" in text, text
        assert f"still answers from version {serving}" in text
    finally:
        library.folder = original
        library.reload()
    page.reload()
    page.locator("#queues-table").wait_for()
    page.wait_for_function("document.getElementById('kb-problem').hidden")


def test_the_records_and_the_open_record_follow_the_floor_without_apply(
    server: Server, open_page: PageFactory
) -> None:
    server.add_agent("ana", ("general",))
    server.add_agent("sara", ("general",), role="supervisor")
    service = server.service
    assert service is not None
    ana = server.call(service.directory.get("ana"))
    page = open_page()
    log_in(page, server.url, "sara", "/supervisor")
    page.locator("#records-empty").wait_for()
    # A filter being typed is not applied by the reloads the floor's events bring: only by "Apply".
    page.locator("#f-agent").fill("zz")

    customer = open_page(viewport=PHONE, locale="es-ES")
    open_widget(customer, server.url)
    customer_says(customer, ASK_PERSON)
    row = page.locator("#records-table tbody tr.record-row")
    row.first.wait_for()  # the new handoff is listed as it is queued
    assert row.count() == 1 and page.locator("#records-empty").is_hidden()
    assert row.first.locator(".agents-cell").inner_text() == "—"  # nobody has had it yet
    row.first.locator("td").nth(3).click()
    page.locator("#detail-meta", has_text="Customer service · Tier 1").wait_for()

    cid = server.call(_claim_when_queued(service, ana))
    page.locator(f'.record-row[data-conversation="{cid}"] .agents-cell strong', has_text="ana").wait_for()
    page.locator("#detail-meta", has_text="with ana").wait_for()  # the open record follows its own events
    server.call(service.resolve(ana, cid, "solved", "cambio de talla hecho"))
    page.locator(f'.record-row[data-conversation="{cid}"] td', has_text="Solved").wait_for()
    page.locator("#detail-meta", has_text="Solved").wait_for()
    page.locator("#timeline .tl-resolved .tl-detail", has_text="cambio de talla hecho").wait_for()
    # Drawn again, the open record's row is still the marked one; the half-typed filter is still unapplied.
    assert page.locator(f'.record-row.is-current[data-conversation="{cid}"]').count() == 1
    assert page.locator("#f-agent").input_value() == "zz" and "agent=" not in page.url
    page.locator("#records-metrics", has_text="1 solved").wait_for()

    page.locator("#filters button[type=submit]").click()  # now applied: nobody called "zz" had it
    page.locator("#records-empty").wait_for()
    assert "agent=zz" in page.url

    # Found by the customer: part of the e-mail address they left, shown under their name.
    server.call(service.conversations.update(cid, email="lena.ruiz@example.com"))
    page.locator("#f-agent").fill("")
    page.locator("#f-customer").fill("LENA.R")
    page.locator("#filters button[type=submit]").click()
    found = page.locator(f'.record-row[data-conversation="{cid}"] .customer-cell')
    found.wait_for()
    assert found.inner_text().startswith("Web visitor ") and "lena.ruiz@example.com" in found.inner_text()
    page.locator("#f-customer").fill("someone else")
    page.locator("#filters button[type=submit]").click()
    page.locator("#records-empty").wait_for()
    assert page.problems == [], page.problems
    customer.context.close()
